//! Reclaim's stand-in until the LRU exists (Linux `mm/vmscan.c`'s
//! `try_to_free_pages` and `shrink_folio_list`, reduced to the one case
//! the page cache needs now): when an allocation that may reclaim finds
//! no free page, clean page-cache pages nothing else uses are taken out
//! of their files' caches and freed, as `drop_caches` would drop them.
//!
//! There are no LRU lists yet (the reclaim issue brings them), so the
//! scan walks the memory map with a clock hand that moves on between
//! calls, and takes a page only if it is, under its lock:
//! - in a page cache (`mapping` set, not anonymous) and uptodate;
//! - not `PG_swapbacked`: a shmem page (tmpfs, memfd, shared anonymous
//!   memory) is its file's only copy, clean or not, and could only go to
//!   swap (Linux keeps such pages on the anonymous LRU, which reclaim
//!   scans only when there is swap);
//! - clean and not under writeback (dirty pages wait for the flusher);
//! - unmapped, and held only by its cache (refcount 1);
//! - not `PG_referenced`: a page used since the hand last passed gets a
//!   second chance (the flag is cleared and the page kept), the clock
//!   algorithm's approximation of Linux's active list.
//!
//! Taking the page's lock (never sleeping: `folio_trylock`) is what makes
//! its cache safe to reach: a file's cache is emptied, page by page under
//! each page's lock, before it goes away (Linux's `evict` and
//! `truncate_inode_pages_final`), so a page still naming its cache under
//! its lock names a live one. [`CacheOwners`] finds that cache.
//!
//! Differences from Linux: no LRU, no `scan_control` priorities, no
//! writeback of dirty pages from reclaim, no shrinkers, no kswapd; one
//! reclaimer at a time (the kernel's [`DirectReclaim`] serializes and
//! keeps reclaim from recursing into itself, Linux's `PF_MEMALLOC`).

// One `unsafe` call: the free of a page reclaim took from its cache.
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use crate::addr::Pfn;
use crate::arch::FolioWaitTable;
use crate::filemap::{MappingId, folio_trylock, folio_unlock};
use crate::gfp::Gfp;
use crate::page::Page;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::rmap::PAGE_MAPPING_ANON;

/// Pages one reclaim call tries to free at least (Linux
/// `SWAP_CLUSTER_MAX`).
pub const SWAP_CLUSTER_MAX: u64 = 32;

/// Where the page caches live: the kernel's files.
pub trait CacheOwners {
    /// Takes `pfn` out of the cache `id` at `index` if it is still there,
    /// with that cache's lock held and its page counts updated (Linux
    /// `__remove_mapping`); true if it did, and then the cache's
    /// reference to the page is the caller's. The caller holds the page's
    /// lock, so the cache is alive.
    fn remove_clean(&self, pgdat: &PgData<'_>, id: MappingId, index: u64, pfn: Pfn) -> bool;
}

/// The allocator's way into reclaim (Linux `__perform_reclaim`), which
/// the kernel registers with [`PgData::set_direct_reclaim`].
pub trait DirectReclaim: Sync {
    /// Frees at least `SWAP_CLUSTER_MAX` pages if it can, for an
    /// allocation of `order` with `gfp`; returns how many it freed.
    /// Called in the allocation slow path with a mask that allows
    /// blocking.
    fn try_to_free_pages(&self, pgdat: &PgData<'_>, gfp: Gfp, order: u32) -> u64;
}

/// The clock scan's state: where the hand is.
#[derive(Debug, Default)]
pub struct ClockHand(AtomicU64);

impl ClockHand {
    /// The hand at the first page.
    pub const fn new() -> ClockHand {
        ClockHand(AtomicU64::new(0))
    }
}

/// Whether `page` looks like a clean, unused cache page, before its lock.
fn candidate(page: &Page) -> bool {
    let flags = page.flags();
    let mapping = page.mapping();
    mapping != 0
        && mapping & PAGE_MAPPING_ANON == 0
        && flags.contains(PageFlags::UPTODATE)
        && !flags.intersects(
            PageFlags::DIRTY
                | PageFlags::SWAPBACKED
                | PageFlags::WRITEBACK
                | PageFlags::LOCKED
                | PageFlags::BUDDY
                | PageFlags::SLAB
                | PageFlags::TABLE
                | PageFlags::RESERVED,
        )
        && page.refcount() == 1
        && page.mapcount() == 0
}

/// Frees clean, unused page-cache pages with the clock hand until
/// `nr_to_free` went or the hand went round once (Linux
/// `shrink_folio_list` over a clock instead of the inactive list).
/// Returns the pages freed. Never sleeps; allocates nothing.
pub fn shrink_page_cache<O: CacheOwners + ?Sized>(
    pgdat: &PgData<'_>,
    owners: &O,
    waits: &dyn FolioWaitTable,
    hand: &ClockHand,
    nr_to_free: u64,
) -> u64 {
    let map = pgdat.mem_map();
    let (start, end) = (map.start_pfn().as_u64(), map.end_pfn().as_u64());
    let span = end - start;
    if span == 0 {
        return 0;
    }
    let mut freed = 0;
    for _ in 0..span {
        if freed >= nr_to_free {
            break;
        }
        let at = hand.0.fetch_add(1, Ordering::Relaxed) % span;
        let pfn = Pfn::new(start + at);
        let Some(page) = map.pfn_to_page(pfn) else { continue };
        if !candidate(page) {
            continue;
        }
        if page.test_and_clear(PageFlags::REFERENCED) {
            continue;
        }
        if !folio_trylock(page) {
            continue;
        }
        // Under the lock: the page is still what it seemed, and its
        // cache cannot go away.
        let Some(id) = MappingId::new(page.mapping()) else {
            folio_unlock(page, pfn, waits);
            continue;
        };
        let removed = candidate_locked(page) && owners.remove_clean(pgdat, id, page.index(), pfn);
        folio_unlock(page, pfn, waits);
        if removed {
            // SAFETY: the cache's reference became ours, and it is the only
            // one: the page had refcount 1 and no mapping under its lock,
            // and out of the cache no one can find it. A bad page is
            // reported by the allocator and leaked.
            #[allow(unsafe_code)]
            let put = unsafe { pgdat.put_page(pfn) };
            if put.is_ok() {
                freed += 1;
            }
        }
    }
    freed
}

/// [`candidate`] under the page lock (the lock itself set).
fn candidate_locked(page: &Page) -> bool {
    let flags = page.flags();
    !flags.intersects(PageFlags::DIRTY | PageFlags::WRITEBACK | PageFlags::SWAPBACKED)
        && flags.contains(PageFlags::UPTODATE)
        && page.refcount() == 1
        && page.mapcount() == 0
}

#[cfg(test)]
mod tests;
