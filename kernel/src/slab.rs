//! The kernel heap: SLUB's kmalloc behind `#[global_allocator]`, with an
//! early heap for the time before the slab allocator exists (Linux
//! `mm/slab_common.c`'s kmalloc as the kernel's allocator; the early heap
//! plays the part of Linux's memblock_alloc for boot-time objects).
//!
//! Before [`init`], `Box`, `Vec` and friends allocate from a
//! `linked_list_allocator` heap on a memblock region reserved for good at
//! boot. After it, every allocation is kmalloc; pointers from the early heap
//! stay valid, and freeing one returns it to the early heap (the free
//! recognises its address range), so nothing allocated early must be kept
//! forever or freed specially.
//!
//! A large allocation in a context that may sleep falls back to vmalloc
//! when no physically contiguous block is free (Linux `kvmalloc`, which
//! Linux asks for explicitly; a `Box` or `Vec` cannot ask, and nothing
//! needs their memory physically contiguous: DMA goes through pages the
//! block layer allocates itself). The free recognises a vmalloc address.
//!
//! Lock order: `EARLY_HEAP` is a leaf lock, taken with interrupts off by
//! the allocator (an interrupt handler may free memory); kmalloc's fast
//! paths take no lock and leave interrupts on (SLUB's module doc says why
//! an interrupt inside one is safe), its slow paths disable interrupts
//! themselves. Whether a pointer is
//! the early heap's is answered without a lock.

use core::alloc::{GlobalAlloc, Layout};
use core::fmt;
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use linked_list_allocator::Heap;
use log::{error, info, warn};
use mm::gfp::{GFP_KERNEL, GFP_NOWAIT, Gfp};
use mm::slab_common::{CacheHandle, ObjCache, Slab, SlubDebug};
use mm::slub::{SlabError, SlabFlags};
use spin::{Mutex, Once};

use crate::arch::x86_64::pgtable::{VMALLOC_END, VMALLOC_START};
use crate::cmdline;

/// Size of the early heap.
pub const EARLY_HEAP_SIZE: usize = 256 * 1024;

static EARLY_HEAP: Mutex<Heap> = Mutex::new(Heap::empty());

/// The early heap's range `[start, end)`, fixed at [`init_early_heap`]:
/// every `dealloc` asks whether a pointer lies in it, interrupt handlers
/// included, so the question takes no lock (a timer tick freeing memory
/// while the interrupted code held `EARLY_HEAP` hung the kernel).
static EARLY_RANGE: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
static SLAB: Once<Slab<'static>> = Once::new();
/// An allocation made from the early heap during boot and kept, so that a
/// test can free it after the switch to kmalloc.
static EARLY_BOOT_ALLOCATION: Mutex<Option<alloc::boxed::Box<[u64; 8]>>> = Mutex::new(None);

/// Hands the early heap its memory.
///
/// # Safety
/// `[start, start + len)` is mapped, writable, reserved for good and used
/// for nothing else.
pub unsafe fn init_early_heap(start: *mut u8, len: usize) {
    // SAFETY: the caller's guarantee.
    unsafe { EARLY_HEAP.lock().init(start, len) };
    EARLY_RANGE[0].store(start as usize, Ordering::Release);
    EARLY_RANGE[1].store((start as usize).wrapping_add(len), Ordering::Release);
    *EARLY_BOOT_ALLOCATION.lock() = Some(alloc::boxed::Box::new([0x0ea7_1e55_u64; 8]));
}

/// Whether `ptr` lies in the early heap.
pub fn is_early(ptr: *const u8) -> bool {
    let range = EARLY_RANGE[0].load(Ordering::Acquire)..EARLY_RANGE[1].load(Ordering::Acquire);
    range.contains(&(ptr as usize))
}

/// Bytes in use in the early heap.
pub fn early_heap_used() -> usize {
    EARLY_HEAP.lock().used()
}

/// Takes the boot-time early-heap allocation (for the test that frees it).
pub fn take_early_boot_allocation() -> Option<alloc::boxed::Box<[u64; 8]>> {
    EARLY_BOOT_ALLOCATION.lock().take()
}

/// Starts the slab allocator on the page allocator (Linux
/// `kmem_cache_init`), with `slub_debug=` and `slub_debug_panic` from the
/// command line. From here on the global allocator is kmalloc.
///
/// # Panics
/// If there is no memory for the kmalloc caches at boot, or the CPU lacks
/// CMPXCHG16B, which SLUB's fast path is built on (Linux keeps a locked
/// fallback for such CPUs; QEMU's `-cpu max` and `-cpu host`, the models
/// this kernel runs on, have it).
pub fn init() {
    assert!(
        crate::arch::x86_64::cpu::features().contains(crate::arch::x86_64::cpu::CpuFeatures::CX16),
        "SLUB needs CMPXCHG16B (CPUID.01H:ECX.CX16), which this CPU lacks"
    );
    let debug = match cmdline::has("slub_debug").then(|| SlubDebug::parse(cmdline::get("slub_debug"))) {
        None => SlubDebug::default(),
        Some(Ok(debug)) => debug,
        Some(Err(e)) => {
            warn!("{e}; slab debugging off");
            SlubDebug::default()
        }
    };
    let panic_on_error = cmdline::has("slub_debug_panic");
    let nr_cpus = crate::arch::x86_64::smp::nr_cpu_ids();
    let slab = Slab::new(crate::mm::pgdat(), nr_cpus, &crate::percpu::KERNEL_PERCPU, debug, panic_on_error)
        .unwrap_or_else(|e| panic!("cannot start the slab allocator: {e}"));
    SLAB.call_once(|| slab);
    if debug.flags.is_empty() {
        info!("SLUB: kmalloc caches up; early heap {} of {EARLY_HEAP_SIZE} bytes in use", early_heap_used());
    } else {
        info!(
            "SLUB: kmalloc caches up with slub_debug {:?} for {}{}",
            debug.flags,
            debug.caches.unwrap_or("all caches"),
            if panic_on_error { ", panicking on corruption" } else { "" }
        );
    }
}

/// The slab allocator, once [`init`] has run.
pub fn slab() -> Option<&'static Slab<'static>> {
    SLAB.get()
}

/// A slab cache made for objects of type `T` (Linux `KMEM_CACHE(struct,
/// flags)`), which the kernel's intrusive trees take their nodes from
/// through [`ObjCache`]: VMAs ("vm_area_struct"), vmap areas
/// ("vmap_area"), and the rmap and xarray nodes to come.
pub struct KmemCacheOf<T> {
    slab: &'static Slab<'static>,
    cache: CacheHandle<'static>,
    /// How objects are allocated: `GFP_KERNEL`, or `GFP_NOWAIT` for a
    /// cache used under spin locks ([`KmemCacheOf::nowait`]).
    gfp: Gfp,
    _objects: PhantomData<fn() -> T>,
}

impl<T> KmemCacheOf<T> {
    /// Creates the cache `name` in `slab`, its objects sized and aligned
    /// for a `T`.
    ///
    /// # Errors
    /// As [`Slab::kmem_cache_create`].
    pub fn create(slab: &'static Slab<'static>, name: &'static str, flags: SlabFlags) -> Result<Self, SlabError> {
        let cache = slab.kmem_cache_create(name, size_of::<T>() as u32, align_of::<T>() as u32, flags, None)?;
        Ok(KmemCacheOf { slab, cache, gfp: GFP_KERNEL, _objects: PhantomData })
    }

    /// The cache allocating with `GFP_NOWAIT`: never sleeping nor
    /// reclaiming, and failing instead (Linux's allocations under
    /// `xa_lock`, whose callers retry outside it).
    pub fn nowait(self) -> Self {
        KmemCacheOf { gfp: GFP_NOWAIT, ..self }
    }

    /// Allocates `n` objects (at most [`PRELOAD_MAX`]) with `GFP_KERNEL`
    /// and frees them again, so that the [`KmemCacheOf::nowait`]
    /// allocations of one operation under a lock find them free (Linux
    /// `xas_nomem`'s allocation outside the lock, or `radix_tree_preload`'s
    /// pool: an XArray store may need a node per level,
    /// [`mm::xarray::XA_MAX_STORE_NODES`], and a failed store frees the
    /// ones it took); false if they could not all be had.
    pub fn preload(&self, n: usize) -> bool {
        let mut objs = [None; PRELOAD_MAX];
        let n = n.min(PRELOAD_MAX);
        for obj in &mut objs[..n] {
            *obj = self.slab.kmem_cache_alloc(&self.cache, GFP_KERNEL);
        }
        let all = objs[..n].iter().all(Option::is_some);
        for obj in objs[..n].iter().flatten() {
            // SAFETY: `obj` was just allocated from this cache and is used
            // by no one.
            if let Err(e) = unsafe { self.slab.kmem_cache_free(&self.cache, *obj) } {
                error!("{} {obj:p}: {e:?}", self.cache.name());
            }
        }
        all
    }
}

/// The most objects one [`KmemCacheOf::preload`] readies.
pub const PRELOAD_MAX: usize = 16;

// SAFETY: `create` made the cache with objects of `size_of::<T>()` bytes
// aligned to `align_of::<T>()`; an object is the caller's alone until it is
// freed, and `free` hands it back to the same cache.
unsafe impl<T> ObjCache<T> for KmemCacheOf<T> {
    fn alloc(&self) -> Option<NonNull<T>> {
        self.slab.kmem_cache_alloc(&self.cache, self.gfp).map(NonNull::cast)
    }

    unsafe fn free(&self, obj: NonNull<T>) {
        // SAFETY: `obj` came from `alloc`, so it is an object of this cache
        // not freed since (the trait's contract).
        if let Err(e) = unsafe { self.slab.kmem_cache_free(&self.cache, obj.cast()) } {
            error!("{} {obj:p}: {e:?}", self.cache.name());
        }
    }
}

/// The caches of VMAs and of their anonymous reverse map (Linux
/// `vm_area_cachep`, `anon_vma_cachep`, `anon_vma_chain_cachep`) with the
/// machine's anon_vma lock: the allocator every address space takes its
/// VMAs and `anon_vma`s from ([`mm::vma::VmaAlloc`]).
pub struct VmaCaches {
    /// "vm_area_struct".
    pub vmas: KmemCacheOf<mm::vma::Vma>,
    /// "anon_vma".
    pub anon_vmas: KmemCacheOf<mm::rmap::AnonVma>,
    /// "anon_vma_chain".
    pub avcs: KmemCacheOf<mm::rmap::AnonVmaChain>,
    /// The lock of every `anon_vma`.
    pub lock: mm::rmap::AnonVmaLock,
}

// SAFETY: forwards to the "vm_area_struct" cache, which upholds the
// contract.
unsafe impl ObjCache<mm::vma::Vma> for VmaCaches {
    fn alloc(&self) -> Option<NonNull<mm::vma::Vma>> {
        self.vmas.alloc()
    }

    unsafe fn free(&self, obj: NonNull<mm::vma::Vma>) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.vmas.free(obj) }
    }
}

// SAFETY: forwards to the "anon_vma" cache, which upholds the contract.
unsafe impl ObjCache<mm::rmap::AnonVma> for VmaCaches {
    fn alloc(&self) -> Option<NonNull<mm::rmap::AnonVma>> {
        self.anon_vmas.alloc()
    }

    unsafe fn free(&self, obj: NonNull<mm::rmap::AnonVma>) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.anon_vmas.free(obj) }
    }
}

// SAFETY: forwards to the "anon_vma_chain" cache, which upholds the
// contract.
unsafe impl ObjCache<mm::rmap::AnonVmaChain> for VmaCaches {
    fn alloc(&self) -> Option<NonNull<mm::rmap::AnonVmaChain>> {
        self.avcs.alloc()
    }

    unsafe fn free(&self, obj: NonNull<mm::rmap::AnonVmaChain>) {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.avcs.free(obj) }
    }
}

impl mm::rmap::AnonVmaAlloc for VmaCaches {
    fn anon_vma_lock(&self) -> &mm::rmap::AnonVmaLock {
        &self.lock
    }
}

impl<T> fmt::Debug for KmemCacheOf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cache.fmt(f)
    }
}

/// The global allocator: the early heap, then kmalloc (or vmalloc, for a
/// large block with no contiguous memory free).
pub struct KernelAllocator;

/// The size from which a failed allocation falls back to vmalloc: beyond
/// `PAGE_ALLOC_COSTLY_ORDER`, where the buddy allocator may fail for
/// fragmentation with plenty of memory free.
const KVMALLOC_MIN: usize = PAGE_SIZE << mm::mmzone::PAGE_ALLOC_COSTLY_ORDER;

const PAGE_SIZE: usize = mm::PAGE_SIZE as usize;

/// kmalloc's size for a layout: power-of-two classes are naturally aligned,
/// so an alignment above the 8 bytes every class has rounds the size up to
/// a power of two at least as large as the alignment.
fn kmalloc_size(layout: Layout) -> usize {
    if layout.align() <= 8 { layout.size() } else { layout.size().max(layout.align()).next_power_of_two() }
}

// SAFETY: `alloc` returns memory of at least `layout.size()` bytes aligned
// to `layout.align()` (kmalloc classes and large blocks are aligned as
// `kmalloc_size` arranges; the early heap honours layouts) or null;
// `dealloc` returns it to whichever allocator it came from.
unsafe impl GlobalAlloc for KernelAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match SLAB.get() {
            // Box and Vec cannot say whether they may sleep: the context
            // decides (GFP_ATOMIC under a spin lock, in an interrupt
            // handler or with interrupts off).
            Some(slab) => {
                let gfp = crate::sync::gfp_for_context();
                let size = kmalloc_size(layout);
                let kvmalloc = size >= KVMALLOC_MIN && layout.align() <= PAGE_SIZE && gfp.allows_blocking();
                // The fallback stays quiet about the first failure, as
                // kvmalloc asks kmalloc with __GFP_NOWARN.
                let first = if kvmalloc { gfp | mm::gfp::Gfp::NOWARN } else { gfp };
                match slab.kmalloc(size, first) {
                    Some(p) => p.as_ptr(),
                    None if kvmalloc => crate::vmalloc::vm_if_ready()
                        .and_then(|vm| vm.vmalloc(size as u64).ok())
                        .map_or(core::ptr::null_mut(), |va| va.as_u64() as *mut u8),
                    None => core::ptr::null_mut(),
                }
            }
            None => x86_64::instructions::interrupts::without_interrupts(|| {
                EARLY_HEAP.lock().allocate_first_fit(layout).map_or(core::ptr::null_mut(), NonNull::as_ptr)
            }),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_early(ptr) {
            if let Some(ptr) = NonNull::new(ptr) {
                // Interrupts off: a handler may free too.
                x86_64::instructions::interrupts::without_interrupts(|| {
                    // SAFETY: `ptr` came from the early heap with `layout`
                    // (the caller's GlobalAlloc contract).
                    unsafe { EARLY_HEAP.lock().deallocate(ptr, layout) }
                });
            }
            return;
        }
        if (VMALLOC_START..VMALLOC_END).contains(&(ptr as u64)) {
            // The kvmalloc fallback's block (the range is canonical).
            if let Some(va) = mm::VirtAddr::new(ptr as u64)
                && let Err(e) = crate::vmalloc::vfree(va)
            {
                error!("global allocator: freeing {ptr:p}: {e}");
            }
            return;
        }
        let Some(slab) = SLAB.get() else {
            error!("global allocator: freeing {ptr:p} before the slab allocator exists");
            return;
        };
        // SAFETY: `ptr` came from kmalloc and the caller gives it up.
        if let Err(e) = unsafe { slab.kfree(ptr) } {
            error!("global allocator: freeing {ptr:p}: {e}");
        }
    }
}

#[global_allocator]
static GLOBAL: KernelAllocator = KernelAllocator;
