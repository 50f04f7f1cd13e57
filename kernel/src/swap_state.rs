//! The kernel's half of swap (Linux `mm/swap_state.c`'s `swapper_spaces`
//! and the swap entry points the mm calls): [`KernelSwap`], the
//! [`SwapBackend`] the mm's swap paths ([`mm::swap_state`]) run against,
//! over the swap areas ([`crate::swapfile::SwapAreas`]), the swap cache's
//! index ([`SWAP_CACHE`]) and the page I/O ([`crate::page_io`]). It is
//! registered with the allocator at the first swapon; from then on
//! reclaim swaps anonymous and shmem pages out while some area has a
//! free slot. Swap-in's reads (a fault's page and its readahead) are submitted as
//! one plugged batch each ([`SwapBackend::swap_read_folios`]); each
//! completion, in interrupt context, marks its page uptodate or not and
//! unlocks it ([`mm::swap_state::end_swap_read`]), waking the faults that
//! wait for it in the page wait table ([`crate::mmap::FOLIO_WAIT`]).
//! Its writes go to the reclaiming task's plug
//! ([`crate::block::blk_start_plug`], which reclaim starts through
//! [`SwapBackend::start_plug`]), where neighbouring slots merge.
//!
//! Differences from Linux: one index for every area, keyed by the whole
//! entry (Linux has an `address_space` per 64 MiB of each area); a count
//! that needs a continuation page while a page-table lock is held is
//! taken with an atomic allocation only (Linux drops the lock and
//! retries with `GFP_KERNEL`): if that fails, fork fails with ENOMEM and
//! reclaim keeps the page; a write the disk failed marks the slot bad
//! once the page leaves the swap cache (see [`mm::swap_state`]'s I/O
//! errors; Linux writes the same slot again), while a write that never
//! reached the disk (no memory for the request) is retried as Linux
//! retries every failed one.

// The page I/O's contract: the page stays allocated and untouched until
// its `end_io` ran.
#![allow(unsafe_code)]

use mm::Pfn;
use mm::filemap::CacheEntry;
use mm::page_alloc::PgData;
use mm::swap_state::{SwapBackend, SwapCacheError, SwapDupError, SwapIoError, SwapWriteError};
use mm::swapfile::SwapEntryError;
use mm::swapops::SwpEntry;
use mm::workingset::Shadow;
use mm::xarray::XArray;

use crate::filemap::PageCacheNodes;
use crate::swapfile::SwapAreas;
use crate::sync::SpinLockIrq;

/// The swap cache's index (Linux `swapper_spaces`): page by swap entry,
/// its key the entry as one word. Behind a spin lock with interrupts
/// off, taken under page-table locks and never around an I/O; its nodes
/// come from the page cache's node cache, without waiting.
static SWAP_CACHE: SpinLockIrq<Option<XArray<CacheEntry, PageCacheNodes>>> = SpinLockIrq::new(None);

/// The index key of `entry` (Linux `swp_entry_t.val`).
fn key(entry: SwpEntry) -> u64 {
    (u64::from(entry.ty()) << 58) | entry.offset()
}

/// The kernel's swap areas as the mm uses them.
pub struct KernelSwap;

/// The one [`KernelSwap`].
pub static KERNEL_SWAP: KernelSwap = KernelSwap;

/// Registers [`KERNEL_SWAP`] with the allocator and makes the swap
/// cache's index, once; called by swapon.
pub fn init() -> Result<(), uapi::errno::Errno> {
    let nodes = crate::filemap::xa_nodes()?;
    let mut cache = SWAP_CACHE.lock();
    if cache.is_none() {
        *cache = Some(XArray::new(nodes));
    }
    drop(cache);
    crate::mm::pgdat().set_swap_backend(&KERNEL_SWAP);
    Ok(())
}

impl SwapBackend for KernelSwap {
    fn folio_waits(&self) -> &dyn mm::arch::FolioWaitTable {
        &crate::mmap::FOLIO_WAIT
    }

    fn swap_max(&self, ty: u32) -> Option<u64> {
        SwapAreas.swap_max(ty).map(u64::from)
    }

    fn swap_duplicate(&self, entry: SwpEntry) -> Result<(), SwapDupError> {
        match SwapAreas.swap_duplicate(entry) {
            Ok(()) => Ok(()),
            Err(SwapEntryError::NoContinuation) => Err(SwapDupError::NoMemory),
            Err(_) => Err(SwapDupError::BadEntry),
        }
    }

    fn free_swap_and_cache(&self, entry: SwpEntry) {
        // A bad entry is logged by the areas (Linux's "Bad swap file
        // entry" messages).
        let _ = SwapAreas.swap_free(entry);
    }

    fn get_swap_page(&self) -> Option<SwpEntry> {
        SwapAreas.folio_alloc_swap()
    }

    fn put_swap_folio(&self, entry: SwpEntry) {
        let _ = SwapAreas.swapcache_clear(entry);
    }

    fn put_swap_folio_bad(&self, entry: SwpEntry) {
        // Refused only if a pte still held the slot, which the mm core
        // rules out: then the slot is at least not lost.
        if let Err(e) = SwapAreas.swapcache_clear_bad(entry) {
            log::error!("swap: slot {:02}:{:#x} not marked bad: {e}", entry.ty(), entry.offset());
            let _ = SwapAreas.swapcache_clear(entry);
        }
    }

    fn swap_count(&self, entry: SwpEntry) -> u32 {
        SwapAreas.swp_swapcount(entry).map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn nr_swap_pages(&self) -> u64 {
        u64::try_from(SwapAreas.nr_swap_pages()).unwrap_or(0)
    }

    fn total_swap_pages(&self) -> u64 {
        SwapAreas.total_swap_pages()
    }

    fn swapcache_prepare(&self, entry: SwpEntry) -> Result<(), SwapCacheError> {
        match SwapAreas.swapcache_prepare(entry) {
            Ok(()) => Ok(()),
            Err(SwapEntryError::Exists) => Err(SwapCacheError::Exists),
            // Free, bad, past the area, of no area.
            Err(_) => Err(SwapCacheError::NoEntry),
        }
    }

    /// The index's nodes come without waiting, under its lock; when none
    /// is free, one is allocated with `GFP_KERNEL` outside the lock and
    /// the store retried (Linux `xas_nomem`), unless the caller may not
    /// sleep.
    fn swap_cache_add(&self, entry: SwpEntry, pfn: Pfn) -> Result<Option<Shadow>, SwapCacheError> {
        /// Preloads before giving up (the page cache's are as many).
        const NOMEM_RETRIES: u32 = 3;
        for _ in 0..=NOMEM_RETRIES {
            let mut cache = SWAP_CACHE.lock();
            let index = cache.as_mut().ok_or(SwapCacheError::NoMemory)?;
            let shadow = match index.load(key(entry)) {
                None => None,
                Some(CacheEntry::Shadow(shadow)) => Some(shadow),
                Some(_) => return Err(SwapCacheError::Exists),
            };
            if index.store(key(entry), CacheEntry::Folio(pfn)).is_ok() {
                return Ok(shadow);
            }
            drop(cache);
            let preloaded = !crate::sched::in_atomic()
                && crate::filemap::xa_nodes().is_ok_and(|nodes| nodes.preload(mm::xarray::XA_MAX_STORE_NODES));
            if !preloaded {
                break;
            }
        }
        Err(SwapCacheError::NoMemory)
    }

    fn swap_cache_lookup(&self, entry: SwpEntry) -> Option<Pfn> {
        SWAP_CACHE.lock().as_ref()?.load(key(entry))?.folio()
    }

    fn swap_cache_delete(&self, entry: SwpEntry, pfn: Pfn, shadow: Option<Shadow>) -> bool {
        let mut cache = SWAP_CACHE.lock();
        let Some(index) = cache.as_mut() else { return false };
        if !matches!(index.load(key(entry)), Some(CacheEntry::Folio(p)) if p == pfn) {
            return false;
        }
        // Replacing an entry allocates nothing; should it fail, no shadow.
        let shadowed = shadow.is_some_and(|shadow| index.store(key(entry), CacheEntry::Shadow(shadow)).is_ok());
        if !shadowed {
            index.erase(key(entry));
        }
        true
    }

    fn swap_writepage(&self, _pgdat: &PgData<'_>, entry: SwpEntry, pfn: Pfn) -> Result<(), SwapIoError> {
        let end_io = move |result: Result<(), crate::block::BlkError>| {
            let result = result.map_err(|e| match e {
                crate::block::BlkError::NoMemory => SwapWriteError::NotIssued,
                _ => SwapWriteError::Io,
            });
            mm::swap_state::end_swap_writeback(crate::mm::pgdat(), pfn, result, &crate::mmap::FOLIO_WAIT);
        };
        crate::block::with_current_plug(|plug| {
            // SAFETY: the page is locked, in the swap cache and under
            // writeback: reclaim's isolation reference keeps it
            // allocated, and no one writes it (no pte maps it; the swap
            // cache hands it out only to faults that map it) until
            // `end_io` ended the writeback.
            unsafe { crate::page_io::swap_writepage(entry, pfn, plug, end_io) }
        })
        .map_err(|_| SwapIoError)
    }

    fn start_plug(&self) -> bool {
        crate::block::blk_start_plug()
    }

    fn finish_plug(&self) {
        crate::block::blk_finish_plug();
    }

    fn swap_read_folios(&self, pgdat: &PgData<'_>, reads: &[(SwpEntry, Pfn)]) {
        let mut plug = crate::block::BlkPlug::new();
        for &(entry, pfn) in reads {
            let end_io = move |result: Result<(), crate::block::BlkError>| {
                let result = result.map_err(|_| SwapIoError);
                mm::swap_state::end_swap_read(crate::mm::pgdat(), pfn, result, &crate::mmap::FOLIO_WAIT);
            };
            // SAFETY: the page is new, locked, not uptodate and in the swap
            // cache: the cache's reference keeps it (only a holder of its
            // lock takes it out), no pte maps it (a fault maps it only
            // once it is unlocked and uptodate) and no one else reads or
            // writes it until `end_io` unlocked it.
            if let Err(e) = unsafe { crate::page_io::swap_read_folio(entry, pfn, Some(&mut plug), end_io) } {
                // Nothing was submitted, and `end_io` will not run.
                log::error!("swap-in of {entry:?}: {e}");
                mm::swap_state::end_swap_read(pgdat, pfn, Err(SwapIoError), &crate::mmap::FOLIO_WAIT);
            }
        }
        plug.finish();
    }
}

/// Erases the shadows in the swap cache's index between keys `from` and
/// `to`, a batch per hold of its lock: swapoff leaves none of its area's
/// (Linux clears a slot's shadow when the slot is freed).
fn clear_shadows(from: u64, to: u64) {
    let mut next = from;
    loop {
        let mut keys = [0u64; UNUSE_BATCH];
        let mut n = 0;
        let mut cache = SWAP_CACHE.lock();
        let Some(index) = cache.as_mut() else { return };
        for (k, entry) in index.iter_range(next, to, None) {
            if n == UNUSE_BATCH {
                break;
            }
            if matches!(entry, CacheEntry::Shadow(_)) {
                keys[n] = k;
                n += 1;
            }
        }
        for &k in &keys[..n] {
            index.erase(k);
        }
        drop(cache);
        match keys[..n].last() {
            Some(&k) if n == UNUSE_BATCH && k < to => next = k + 1,
            _ => return,
        }
    }
}

/// Swap-cache pages looked at per hold of the index's lock.
const UNUSE_BATCH: usize = 64;

/// Frees the slots of area `ty` that only the swap cache holds: each of
/// its pages whose slot no pte holds leaves the cache, under its lock
/// (mapped or not: a pte maps the page itself),
/// once its read or write is done (Linux `try_to_unuse`'s step over the
/// swap cache, and what reclaim would do later). Pages someone else
/// holds meanwhile stay. May sleep.
pub fn drop_unused_swap_cache(ty: u32) {
    let pgdat = crate::mm::pgdat();
    // The per-CPU LRU batches hold references of their own.
    pgdat.lru_add_drain_all();
    let first = key(SwpEntry::new(ty, 0));
    let last = first | ((1 << 58) - 1);
    let mut next = first;
    loop {
        let mut batch = [(0u64, Pfn::new(0)); UNUSE_BATCH];
        let mut n = 0;
        {
            let cache = SWAP_CACHE.lock();
            let Some(index) = cache.as_ref() else { return };
            for (k, entry) in index.iter_range(next, last, None) {
                if n == UNUSE_BATCH {
                    break;
                }
                if let CacheEntry::Folio(pfn) = entry {
                    batch[n] = (k, pfn);
                    n += 1;
                }
            }
        }
        clear_shadows(first.max(next), batch[..n].last().map_or(last, |&(k, _)| k));
        for &(_, pfn) in &batch[..n] {
            let Some(page) = pgdat.pfn_to_page(pfn).filter(|p| p.try_get()) else { continue };
            // Linux `try_to_unuse`: the page locked (a read in flight
            // ends first), its write done.
            mm::filemap::folio_lock(page, pfn, &crate::mmap::FOLIO_WAIT);
            mm::filemap::folio_wait_writeback(page, pfn, &crate::mmap::FOLIO_WAIT);
            mm::swap_state::folio_free_swap(pgdat, &KERNEL_SWAP, pfn, page);
            mm::filemap::folio_unlock(page, pfn, &crate::mmap::FOLIO_WAIT);
            // SAFETY: the reference taken above: a page still mapped
            // keeps its ptes' references, and one that was the swap
            // cache's alone is in no pte.
            let _ = unsafe { pgdat.put_page(pfn) };
        }
        match batch[..n].last() {
            Some(&(k, _)) if n == UNUSE_BATCH && k < last => next = k + 1,
            _ => return,
        }
    }
}
