//! Reclaim (Linux `mm/vmscan.c`): `try_to_free_pages` as the allocator's
//! slow path runs it, over the node's LRU lists ([`crate::swap`]).
//!
//! [`shrink_page_cache`] is `shrink_node` for the file lists: from
//! priority [`DEF_PRIORITY`] down to 0 it scans `len >> priority` pages of
//! the inactive file list from its cold end until enough pages went,
//! first refilling the inactive list from the active one while the
//! inactive is the smaller (`inactive_is_low`, `shrink_active_list`:
//! pages lose `PG_active` and go to the inactive list's hot end).
//! `shrink_folio_list` decides per page, under its lock (never
//! sleeping: `folio_trylock`):
//! - under writeback, not uptodate, or locked by someone else: kept;
//! - dirty: activated, for the flusher to write (only kswapd writes file
//!   pages from reclaim in Linux; direct reclaim activates them);
//! - mapped: activated if already `PG_referenced`, else marked referenced
//!   and kept (Linux `folio_check_references` with the pte accessed bits
//!   counted as one reference: the rmap walk that reads them comes with
//!   `folio_referenced`);
//! - clean, unmapped and held only by its cache: taken out of the cache
//!   ([`CacheOwners::remove_clean`], Linux `__remove_mapping`) and freed.
//!
//! Taking the page's lock is what makes its cache safe to reach: a file's
//! cache is emptied, page by page under each page's lock, before it goes
//! away (Linux's `evict` and `truncate_inode_pages_final`), so a page
//! still naming its cache under its lock names a live one.
//!
//! Anonymous and shmem pages sit on the anonymous lists, which reclaim
//! leaves alone until there is swap (Linux `can_reclaim_anon_pages`).
//!
//! kswapd ([`balance_pgdat`], the kernel's `kswapd0` thread) is woken
//! at the start of an allocation's slow path ([`Kswapd`]) and reclaims
//! the same way until every zone is above its high watermark; direct
//! reclaim runs when even the min watermark cannot be met.
//!
//! Each priority pass ends with the slab shrinkers
//! ([`crate::shrinker::shrink_slab`] at the pass's priority, under the
//! reclaiming allocation's mask; kswapd's is `GFP_KERNEL`), as Linux's
//! `shrink_node` runs `shrink_slab` after the LRU lists. A file-system
//! shrinker may sleep when the mask allows it (kswapd, or an allocation
//! with `__GFP_FS`).
//!
//! Differences from Linux: no `scan_control` beyond the
//! priority and mask; `vm_swappiness` ([`PgData::vm_swappiness`]) is
//! stored and validated but has no effect until there is swap (Linux's
//! `get_scan_count` reads it to balance anonymous against file pages);
//! no writeback from reclaim; the pages the shrinkers free are not
//! counted as reclaimed; one reclaimer at a time (the kernel's [`DirectReclaim`]
//! serializes and keeps reclaim from recursing into itself, Linux's
//! `PF_MEMALLOC`).

// One `unsafe` call: the free of a page reclaim took from its cache.
#![deny(unsafe_code)]

use crate::addr::Pfn;
use crate::arch::FolioWaitTable;
use crate::filemap::{MappingId, folio_trylock, folio_unlock};
use crate::gfp::{GFP_KERNEL, Gfp};
use crate::mmzone::Watermark;
use crate::page::Page;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::swap::LruList;
use crate::vmstat::VmEventItem;

/// Pages one reclaim call tries to free at least (Linux
/// `SWAP_CLUSTER_MAX`).
pub const SWAP_CLUSTER_MAX: u64 = 32;

/// `vm_swappiness`'s default (Linux's).
pub const DEFAULT_SWAPPINESS: u32 = 60;

/// The largest `vm_swappiness` (Linux's sysctl bound: 200 favours swap
/// over the file cache as far as it goes).
pub const MAX_SWAPPINESS: u32 = 200;

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

/// Who is reclaiming (Linux `current_is_kswapd()`), for the events
/// counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reclaimer {
    /// An allocation, in its slow path.
    Direct,
    /// The node's kswapd thread.
    Kswapd,
}

impl Reclaimer {
    fn scan_event(self) -> VmEventItem {
        match self {
            Reclaimer::Direct => VmEventItem::PgscanDirect,
            Reclaimer::Kswapd => VmEventItem::PgscanKswapd,
        }
    }

    fn steal_event(self) -> VmEventItem {
        match self {
            Reclaimer::Direct => VmEventItem::PgstealDirect,
            Reclaimer::Kswapd => VmEventItem::PgstealKswapd,
        }
    }
}

/// The allocator's way to wake the node's kswapd (Linux
/// `wakeup_kswapd`), which the kernel registers with
/// [`PgData::set_kswapd`]. Called at the start of the slow path of an
/// allocation allowed to (`__GFP_KSWAPD_RECLAIM`), in any context, so
/// it must not sleep or allocate.
pub trait Kswapd: Sync {
    /// Wakes kswapd for an allocation of `order`, unless it is awake.
    fn wakeup(&self, order: u32);
}

/// Whether every zone with memory has its high watermark of free pages
/// (Linux `pgdat_balanced` for order 0).
pub fn pgdat_balanced(pgdat: &PgData<'_>) -> bool {
    pgdat.zones().iter().filter(|z| z.managed_pages() > 0).all(|z| z.free_pages() >= z.watermark(Watermark::High))
}

/// kswapd's work (Linux `balance_pgdat`): reclaims until every zone is
/// back above its high watermark or a pass frees nothing, with
/// `GFP_KERNEL` for the shrinkers (which may sleep). Returns the pages
/// freed. Allocates nothing.
pub fn balance_pgdat<O: CacheOwners + ?Sized>(pgdat: &PgData<'_>, owners: &O, waits: &dyn FolioWaitTable) -> u64 {
    pgdat.count_vm_events(VmEventItem::Pageoutrun, 1);
    let mut total = 0;
    while !pgdat_balanced(pgdat) {
        let wanted: u64 = pgdat
            .zones()
            .iter()
            .filter(|z| z.managed_pages() > 0)
            .map(|z| z.watermark(Watermark::High).saturating_sub(z.free_pages()))
            .sum();
        let freed =
            shrink_page_cache(pgdat, owners, waits, wanted.max(SWAP_CLUSTER_MAX), Reclaimer::Kswapd, GFP_KERNEL);
        if freed == 0 {
            break;
        }
        total += freed;
        pgdat.drain_all_pages();
    }
    total
}

/// The scan priority reclaim starts at (Linux `DEF_PRIORITY`): a pass
/// at priority `p` scans `len >> p` pages of a list.
pub const DEF_PRIORITY: u32 = 12;

/// Whether the inactive list of a kind is too small beside its active
/// one (Linux `inactive_is_low` with the ratio of a machine under 1 GiB:
/// inactive below active).
fn inactive_is_low(pgdat: &PgData<'_>, inactive: LruList, active: LruList) -> bool {
    pgdat.lru_pages(inactive) < pgdat.lru_pages(active)
}

/// Moves up to `nr_to_scan` pages from the cold end of the active file
/// list to the inactive one (Linux `shrink_active_list`).
fn shrink_active_list(pgdat: &PgData<'_>, nr_to_scan: u64) {
    let mut batch = [Pfn::new(0); SWAP_CLUSTER_MAX as usize];
    let (scanned, taken) = pgdat.isolate_lru_folios(LruList::ActiveFile, nr_to_scan, &mut batch);
    pgdat.count_vm_events(VmEventItem::Pgrefill, scanned);
    for &pfn in &batch[..taken] {
        if let Some(page) = pgdat.pfn_to_page(pfn) {
            page.clear(PageFlags::ACTIVE);
            page.clear(PageFlags::REFERENCED);
        }
        pgdat.folio_putback_lru(pfn);
    }
    pgdat.count_vm_events(VmEventItem::Pgdeactivate, taken as u64);
}

/// What `shrink_folio_list` does with one page.
enum Verdict {
    /// Back to the inactive list.
    Keep,
    /// To the active list.
    Activate,
    /// Out of its cache; the cache's reference is now the caller's.
    Freed,
}

/// Decides for one isolated page (Linux `shrink_folio_list`'s body).
fn shrink_folio<O: CacheOwners + ?Sized>(
    pgdat: &PgData<'_>,
    owners: &O,
    waits: &dyn FolioWaitTable,
    pfn: Pfn,
    page: &Page,
) -> Verdict {
    if !folio_trylock(page) {
        return Verdict::Keep;
    }
    let flags = page.flags();
    let verdict = if flags.contains(PageFlags::WRITEBACK) || !flags.contains(PageFlags::UPTODATE) {
        Verdict::Keep
    } else if flags.contains(PageFlags::DIRTY) {
        Verdict::Activate
    } else if page.mapcount() > 0 {
        if page.test_and_set(PageFlags::REFERENCED) { Verdict::Activate } else { Verdict::Keep }
    } else {
        // The cache's reference and the isolation's: nothing else uses it.
        let unused = page.refcount() == 2 && !flags.contains(PageFlags::SWAPBACKED);
        let removed = unused
            && MappingId::new(page.mapping()).is_some_and(|id| owners.remove_clean(pgdat, id, page.index(), pfn));
        if removed { Verdict::Freed } else { Verdict::Keep }
    };
    folio_unlock(page, pfn, waits);
    verdict
}

/// Reclaims clean file pages from the LRU until `nr_to_free` went or
/// every priority was tried (Linux `shrink_node` for the file lists,
/// then `shrink_inactive_list` and `shrink_folio_list`), running the
/// slab shrinkers after each priority pass under `gfp`. Returns the LRU
/// pages freed. Allocates nothing; sleeps only in a shrinker `gfp`
/// lets sleep.
pub fn shrink_page_cache<O: CacheOwners + ?Sized>(
    pgdat: &PgData<'_>,
    owners: &O,
    waits: &dyn FolioWaitTable,
    nr_to_free: u64,
    who: Reclaimer,
    gfp: Gfp,
) -> u64 {
    pgdat.lru_add_drain();
    let mut freed = 0;
    let mut batch = [Pfn::new(0); SWAP_CLUSTER_MAX as usize];
    for priority in (0..=DEF_PRIORITY).rev() {
        if freed >= nr_to_free {
            break;
        }
        if inactive_is_low(pgdat, LruList::InactiveFile, LruList::ActiveFile) {
            shrink_active_list(pgdat, (pgdat.lru_pages(LruList::ActiveFile) >> priority).max(SWAP_CLUSTER_MAX));
        }
        let mut to_scan = pgdat.lru_pages(LruList::InactiveFile) >> priority;
        while to_scan > 0 && freed < nr_to_free {
            let (scanned, taken) = pgdat.isolate_lru_folios(LruList::InactiveFile, to_scan, &mut batch);
            if scanned == 0 {
                break;
            }
            to_scan = to_scan.saturating_sub(scanned);
            pgdat.count_vm_events(who.scan_event(), scanned);
            for &pfn in &batch[..taken] {
                let Some(page) = pgdat.pfn_to_page(pfn) else { continue };
                match shrink_folio(pgdat, owners, waits, pfn, page) {
                    Verdict::Keep => pgdat.folio_putback_lru(pfn),
                    Verdict::Activate => {
                        page.set(PageFlags::ACTIVE);
                        pgdat.count_vm_events(VmEventItem::Pgactivate, 1);
                        pgdat.folio_putback_lru(pfn);
                    }
                    Verdict::Freed => {
                        // SAFETY: the cache's reference, which
                        // `remove_clean` handed over; out of the cache no
                        // one finds the page, and it had no other user.
                        #[allow(unsafe_code)]
                        let put = unsafe { pgdat.put_page(pfn) };
                        // The isolation's, the last: this frees the page.
                        pgdat.put_lru_ref(pfn);
                        if put.is_ok() {
                            freed += 1;
                            pgdat.count_vm_events(who.steal_event(), 1);
                        }
                    }
                }
            }
        }
        crate::shrinker::shrink_slab(pgdat, gfp, priority);
    }
    freed
}

#[cfg(test)]
mod tests;
