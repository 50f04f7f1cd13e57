//! The memory of an area's slot allocator: its swap map, cluster array,
//! per-CPU current clusters and continuation lists, allocated at swapon
//! (Linux `vzalloc(maxpages)` for `swap_map`, `kvcalloc` for
//! `cluster_info`, `alloc_percpu` for `percpu_cluster`) and freed at
//! swapoff, with the continuation pages (Linux `alloc_page` in
//! `add_swap_count_continuation`, `free_swap_count_continuations`).
//!
//! mm's [`SwapInfo`](mm::swapfile::SwapInfo) borrows this memory for its
//! life; the kernel keeps an area's `SwapInfo` in a static table, so the
//! memory is leaked into `&'static mut` slices here and taken back into
//! its boxes when `SwapInfo::into_storage` returns it. Large arrays come
//! through the global allocator, which falls back to vmalloc as Linux's
//! `kvmalloc` does, so a 1 GiB area's 256 KiB swap map needs no
//! contiguous memory. A continuation page is a [`SwapContPage`] (a page
//! of digits and the list link: 8 bytes more than a page), boxed.
//!
//! `unsafe` is the return of each leaked slice to its box: see
//! [`free_storage`] and [`free_cont_page`].

#![allow(unsafe_code)]

use alloc::boxed::Box;
use alloc::vec::Vec;

use mm::swapfile::{PercpuCluster, SwapClusterInfo, SwapContList, SwapContPage, SwapMapSizes, SwapMapStorage};
use uapi::errno::Errno;

/// `len` values from `f` in a box of their own, or ENOMEM.
fn boxed<T>(len: usize, f: impl FnMut() -> T) -> Result<Box<[T]>, Errno> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
    v.extend(core::iter::repeat_with(f).take(len));
    Ok(v.into_boxed_slice())
}

/// The memory for an area of `maxpages` pages with `nr_cpus` per-CPU
/// clusters: ENOMEM, with nothing kept, if any part cannot be allocated.
pub(super) fn alloc_storage(maxpages: u32, nr_cpus: usize) -> Result<SwapMapStorage<'static>, Errno> {
    let sizes = SwapMapSizes::for_maxpages(maxpages);
    let swap_map = boxed(sizes.swap_map, || 0u8)?;
    let cluster_info = boxed(sizes.cluster_info, SwapClusterInfo::new)?;
    let percpu_cluster = boxed(nr_cpus.max(1), PercpuCluster::new)?;
    let cont = boxed(sizes.cont, || -> SwapContList<'static> { None })?;
    Ok(SwapMapStorage {
        swap_map: Box::leak(swap_map),
        cluster_info: Box::leak(cluster_info),
        percpu_cluster: Box::leak(percpu_cluster),
        cont: Box::leak(cont),
    })
}

/// Frees what [`alloc_storage`] made, and every continuation page on its
/// lists.
pub(super) fn free_storage(mut storage: SwapMapStorage<'static>) {
    storage.free_swap_count_continuations(free_cont_page);
    let SwapMapStorage { swap_map, cluster_info, percpu_cluster, cont } = storage;
    // SAFETY: each slice is the whole of a box that `alloc_storage`
    // leaked, handed back unchanged by `SwapInfo::into_storage` (mm keeps
    // the slices it is given and returns them as they are); the
    // `SwapInfo` that borrowed them is gone, so these are the only
    // references left, and each box is rebuilt and dropped once.
    unsafe {
        drop(Box::from_raw(core::ptr::from_mut(swap_map)));
        drop(Box::from_raw(core::ptr::from_mut(cluster_info)));
        drop(Box::from_raw(core::ptr::from_mut(percpu_cluster)));
        drop(Box::from_raw(core::ptr::from_mut(cont)));
    }
}

/// A continuation page for `SwapInfo::add_swap_count_continuation`, or
/// `None` out of memory. The allocation's mask comes from the context
/// (`GFP_ATOMIC` under a spin lock, as Linux's first try in
/// `swap_duplicate`; `GFP_KERNEL` elsewhere, as its retry after the page
/// table lock is dropped).
pub(super) fn alloc_cont_page() -> Option<&'static mut SwapContPage<'static>> {
    let page = boxed(1, SwapContPage::new).ok()?;
    Box::leak(page).first_mut()
}

/// Frees a page from [`alloc_cont_page`].
pub(super) fn free_cont_page(page: &'static mut SwapContPage<'static>) {
    // SAFETY: `page` is the one element of a one-element box leaked by
    // `alloc_cont_page` (continuation pages come from nowhere else), and
    // its owner gave it up: it is off every continuation list, so nothing
    // else refers to it.
    drop(unsafe { Box::from_raw(core::ptr::slice_from_raw_parts_mut(core::ptr::from_mut(page), 1)) });
}
