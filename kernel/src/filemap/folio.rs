//! A counted reference to a page of a page cache, and the byte copies in
//! and out of it (Linux `folio_get`/`folio_put` and `memcpy_from_folio`,
//! `memcpy_to_folio`, `folio_zero_range`); and the table through which
//! reclaim reaches a page's cache from the page.
//!
//! A [`FolioRef`] is made only for a page the page cache holds or is about
//! to hold, so it is a data page no Rust reference points into: the
//! contract under which [`mm::highmem`]'s part-page copies may run while
//! user mappings or other tasks read or write the same bytes (Linux's
//! page cache races the same way; a reader sees old or new bytes).

#![allow(unsafe_code)]

use alloc::vec::Vec;

use mm::addr::Pfn;
use mm::filemap::MappingId;
use mm::highmem::{self, PageRangeError};
use mm::page::Page;
use mm::page_alloc::PgData;
use mm::rmap::Referenced;
use mm::swapops::SwpEntry;
use mm::vmscan::CacheOwners;
use uapi::errno::Errno;

use super::Mapping;
use crate::sync::SpinLock;

/// One reference to a page-cache page, put when dropped.
pub struct FolioRef {
    pfn: Pfn,
    page: &'static Page,
}

fn range_errno(e: PageRangeError) -> Errno {
    match e {
        PageRangeError::OutOfPage => Errno::EINVAL,
        PageRangeError::NotDirectMapped(_) => Errno::EIO,
    }
}

impl FolioRef {
    /// Takes a reference to `pfn`, a page of a page cache, under the lock
    /// that keeps it there (Linux `folio_try_get` under `xa_lock`).
    pub(super) fn get(pfn: Pfn) -> Option<FolioRef> {
        let page = crate::mm::pgdat().pfn_to_page(pfn)?;
        page.get();
        Some(FolioRef { pfn, page })
    }

    /// Wraps a reference the caller owns to a page of a page cache (or
    /// just allocated for one): the reference is the new value's.
    pub(crate) fn from_new(pfn: Pfn) -> Option<FolioRef> {
        let page = crate::mm::pgdat().pfn_to_page(pfn)?;
        Some(FolioRef { pfn, page })
    }

    /// The page's frame.
    pub fn pfn(&self) -> Pfn {
        self.pfn
    }

    /// Gives the reference away as a frame number (to a pte, which the
    /// mm puts when it unmaps it).
    pub fn into_pfn(self) -> Pfn {
        let pfn = self.pfn;
        core::mem::forget(self);
        pfn
    }

    /// The page's descriptor.
    pub fn page(&self) -> &'static Page {
        self.page
    }

    /// Copies from byte `offset` of the page into `dst`.
    pub fn read(&self, offset: usize, dst: &mut [u8]) -> Result<(), Errno> {
        // SAFETY: a page-cache page (see the module doc), referenced by
        // `self` so it cannot be freed during the copy.
        unsafe { highmem::memcpy_from_page(crate::mm::pgdat(), dst, self.pfn, offset) }.map_err(range_errno)
    }

    /// Copies `src` to byte `offset` of the page. The caller holds the
    /// page lock or the page is not yet visible to anyone else.
    pub(super) fn write(&self, offset: usize, src: &[u8]) -> Result<(), Errno> {
        // SAFETY: as in `read`; the caller is the page's writer.
        unsafe { highmem::memcpy_to_page(crate::mm::pgdat(), self.pfn, offset, src) }.map_err(range_errno)
    }

    /// Zeroes `len` bytes from byte `offset`, as [`FolioRef::write`]
    /// (also the file system's, for the holes of a page it reads).
    pub(crate) fn zero(&self, offset: usize, len: usize) -> Result<(), Errno> {
        // SAFETY: as in `write`.
        unsafe { highmem::memzero_page(crate::mm::pgdat(), self.pfn, offset, len) }.map_err(range_errno)
    }
}

impl Drop for FolioRef {
    fn drop(&mut self) {
        // SAFETY: `self` owns one reference. If it is the last, the page
        // has left its cache (which holds a reference of its own while
        // the page is in it) and every user mapping is gone (each holds
        // one too), so nothing maps or points into it. A bad page is
        // reported by the allocator and leaked.
        let _ = unsafe { crate::mm::pgdat().put_page(self.pfn) };
    }
}

/// Every live [`Mapping`] by id, sorted (ids only grow), as addresses:
/// how reclaim reaches a page's cache from the page (Linux's
/// `folio->mapping` pointer; gdb's `mm-page` names pages through the
/// table too). An entry is added when
/// the mapping is made, in its `Arc`, and removed by [`unregister`] after
/// the mapping's
/// last page left it under that page's lock; a reclaimer holding the lock
/// of a page that still names a mapping therefore finds it alive.
/// Growing the table allocates outside its lock, since the allocation may
/// reclaim, and reclaim reads the table.
static MAPPINGS: SpinLock<Vec<(u64, usize)>> = SpinLock::new(Vec::new());

/// Adds `mapping` under `id`; false if there was no memory (the mapping
/// then works, but reclaim cannot take its pages).
pub(super) fn register(id: MappingId, mapping: &Mapping) -> bool {
    let entry = (id.as_u64(), core::ptr::from_ref(mapping) as usize);
    loop {
        let need = {
            let mut table = MAPPINGS.lock();
            if table.len() < table.capacity() {
                table.push(entry);
                return true;
            }
            table.capacity() * 2 + 16
        };
        let mut bigger = Vec::new();
        if bigger.try_reserve_exact(need).is_err() {
            return false;
        }
        let old = {
            let mut table = MAPPINGS.lock();
            if table.capacity() >= need {
                continue;
            }
            bigger.extend(table.drain(..));
            core::mem::replace(&mut *table, bigger)
        };
        drop(old);
    }
}

/// Removes `id`, once its mapping has no page left (see [`MAPPINGS`]).
pub(super) fn unregister(id: MappingId) {
    let mut table = MAPPINGS.lock();
    if let Ok(i) = table.binary_search_by_key(&id.as_u64(), |e| e.0) {
        table.remove(i);
    }
}

/// Calls `f` with the live page cache `id`, if any: how a reverse-map
/// walk reaches a page's `i_mmap` and migration its cache entry
/// ([`crate::mmap::RmapWalk`]). The caller holds the lock of a page that
/// names `id` ([`MAPPINGS`]'s rule).
pub(crate) fn with_mapping<R>(id: u64, f: impl FnOnce(&Mapping) -> R) -> Option<R> {
    let table = MAPPINGS.lock();
    let i = table.binary_search_by_key(&id, |e| e.0).ok()?;
    // SAFETY: the caller holds the lock of a page naming this mapping, so
    // the mapping still has that page and has not been unregistered
    // ([`MAPPINGS`]'s rule): the address is a live, boxed `Mapping`, used
    // here only through shared references (its state is behind its own
    // lock).
    let mapping = unsafe { &*(table[i].1 as *const Mapping) };
    drop(table);
    Some(f(mapping))
}

/// Reclaim's way to the page caches and, through the reverse map, to
/// the address spaces mapping their pages. Must be dropped with no page
/// lock held (its walker's rule, [`crate::mmap::RmapWalk`]).
pub(super) struct KernelCaches {
    walk: Option<crate::mmap::RmapWalk<'static>>,
}

impl KernelCaches {
    /// For one reclaim call. In atomic context (an allocation that may
    /// block, made with interrupts off: SLUB refills its CPU slab so) the
    /// reverse map is out of reach, since its walks take sleeping locks:
    /// mapped pages count as in use and stay, and only unmapped clean
    /// pages are reclaimed.
    pub(super) fn new() -> Self {
        let walk = if crate::sched::in_atomic() { None } else { crate::mmap::RmapWalk::for_reclaim() };
        KernelCaches { walk }
    }
}

impl CacheOwners for KernelCaches {
    /// Before the address spaces exist, a mapped page counts as in use.
    fn folio_referenced(&self, pgdat: &PgData<'_>, pfn: Pfn, is_locked: bool) -> Referenced {
        match &self.walk {
            Some(walk) => mm::rmap::folio_referenced(walk, pgdat, pfn, is_locked),
            None => Referenced { referenced: 1, ..Referenced::default() },
        }
    }

    /// Not without the reverse map (atomic context).
    fn may_swap(&self) -> bool {
        self.walk.is_some()
    }

    fn try_to_unmap(&self, pgdat: &PgData<'_>, pfn: Pfn) -> bool {
        self.walk.as_ref().is_some_and(|walk| mm::rmap::try_to_unmap(walk, pgdat, pfn))
    }

    fn remove_clean(&self, pgdat: &PgData<'_>, id: MappingId, index: u64, pfn: Pfn) -> bool {
        let table = MAPPINGS.lock();
        let Ok(i) = table.binary_search_by_key(&id.as_u64(), |e| e.0) else { return false };
        // SAFETY: the caller holds the lock of a page naming this mapping,
        // so the mapping still has that page and has not been unregistered
        // ([`MAPPINGS`]'s rule): the address is a live, boxed `Mapping`,
        // used here only through shared references (its state is behind
        // its own lock).
        let mapping = unsafe { &*(table[i].1 as *const Mapping) };
        drop(table);
        mapping.remove_clean(pgdat, index, pfn)
    }

    fn shmem_delete_from_page_cache(
        &self,
        pgdat: &PgData<'_>,
        id: MappingId,
        index: u64,
        pfn: Pfn,
        entry: SwpEntry,
    ) -> bool {
        // The caller holds the page's lock: `with_mapping`'s rule.
        with_mapping(id.as_u64(), |mapping| mapping.shmem_delete_from_page_cache(pgdat, index, pfn, entry))
            .unwrap_or(false)
    }
}
