//! Reclaim (Linux `mm/vmscan.c`): `try_to_free_pages` as the allocator's
//! slow path runs it, over the node's LRU lists ([`crate::swap`]).
//!
//! [`shrink_page_cache`] is `shrink_node` for the file lists: from
//! priority [`DEF_PRIORITY`] down to 0 it scans `len >> priority` pages of
//! the inactive file list from its cold end until enough pages went,
//! first refilling the inactive list from the active one while the
//! inactive is the smaller (`inactive_is_low`, `shrink_active_list`:
//! pages lose `PG_active`, gain `PG_workingset` and go to the inactive
//! list's hot end).
//! `shrink_folio_list` decides per page, under its lock (never
//! sleeping: `folio_trylock`):
//! - under writeback, locked by someone else (a swap-in whose read is in
//!   flight, for one), or a file page not uptodate: kept; a swap-cache
//!   page no fault has mapped yet (swap readahead's, or one whose read
//!   failed) goes as an anonymous one;
//! - its references (Linux `folio_check_references`): the accessed bits
//!   of the ptes mapping it, harvested and cleared through the reverse
//!   map ([`CacheOwners::folio_referenced`]), and `PG_referenced`. Mapped
//!   by a locked VMA: mlocked and moved to the unevictable list. Used
//!   through a pte: kept the first time, activated the second, or at
//!   once if several ptes used it or it is mapped executable. Only read
//!   (`PG_referenced` without ptes): reclaimed if clean;
//! - anonymous and shmem pages: kept without swap; with swap, an
//!   anonymous page gets a slot and joins the swap cache first
//!   ([`add_to_swap`]); a swap-cache page whose write failed
//!   (`PG_error`): kept (activated) while a pte holds its slot, else
//!   moved to a new slot, the old one marked bad (see
//!   [`crate::swap_state`]'s I/O errors); a lazily freeable anonymous
//!   page (`MADV_FREE`, not `PG_swapbacked`, on the file list):
//!   unmapped if no pte was dirtied and dropped clean (`pglazyfreed`),
//!   or, written since, made swap-backed again and activated;
//! - mapped: unmapped from every pte ([`CacheOwners::try_to_unmap`],
//!   which moves the ptes' dirty bits to the page; an anonymous page's
//!   ptes get its swap entry, a shmem page's are cleared: its file's
//!   index keeps track of it), or activated if some pte stays;
//! - a dirty shmem page: goes to swap ([`shmem_writeout`]: a slot, the
//!   swap cache, its swap entry in its file's index in its place), or is
//!   activated when no slot can be had (Linux's `redirty`);
//! - dirty: a swap-cache page is written to its slot
//!   ([`swap_pageout`]); a file page is activated, for the flusher to
//!   write (only kswapd writes file pages from reclaim in Linux; direct
//!   reclaim activates them); either is marked `PG_reclaim`: when its
//!   writeback ends, it moves to the cold end of the inactive list
//!   (`pgrotated`);
//! - clean and held only by its cache: taken out of the cache
//!   ([`CacheOwners::remove_clean`], Linux `__remove_mapping`), a shadow
//!   entry left at its index ([`crate::workingset`]; none for shmem,
//!   whose clean page holds zeros, as the hole it leaves reads), or out
//!   of the swap cache ([`delete_from_swap_cache`]), and freed.
//!
//! Every eviction and every activation ages the node's non-resident
//! pages ([`crate::workingset::workingset_age_nonresident`]), so that a
//! page coming back can tell how soon it would have been used again.
//!
//! [`reclaim_pages`] runs the same decisions on pages the caller
//! isolated (`MADV_PAGEOUT`), ignoring their references.
//!
//! `shrink_active_list` deactivates pages from the active list's cold
//! end, except mapped executable pages whose ptes were used, which go
//! round again.
//!
//! The reverse-map walks allocate their lists of address spaces; a
//! reclaimer is marked (Linux `PF_MEMALLOC`,
//! [`DirectReclaim::current_is_memalloc`]) so that those allocations take
//! the reserves instead of reclaiming in turn.
//!
//! Taking the page's lock is what makes its cache safe to reach: a file's
//! cache is emptied, page by page under each page's lock, before it goes
//! away (Linux's `evict` and `truncate_inode_pages_final`), so a page
//! still naming its cache under its lock names a live one.
//!
//! Anonymous and shmem pages sit on the anonymous lists, which reclaim
//! scans only while a swap area has a free slot (Linux
//! `can_reclaim_anon_pages`). Each priority pass scans the lists under the reclaiming task's plug
//! ([`crate::swap_state::SwapBackend::start_plug`], Linux
//! `shrink_lruvec`'s `blk_start_plug`), ended before the shrinkers, so
//! that the one-page writes of neighbouring slots merge into large
//! requests.
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
//! counted as reclaimed; nothing bounds the shadow entries' nodes yet
//! (see [`crate::workingset`]); several reclaimers may scan at once,
//! each on the pages it isolated.

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
use crate::rmap::Referenced;
use crate::shmem::{WriteoutError, shmem_writeout};
use crate::swap::{LruList, folio_is_file_lru};
use crate::swap_state::{SwapPlug, add_to_swap, delete_from_swap_cache, swap_pageout};
use crate::swapops::SwpEntry;
use crate::vma::VmaFlags;
use crate::vmstat::VmEventItem;
use crate::workingset::workingset_age_nonresident;

/// Pages one reclaim call tries to free at least (Linux
/// `SWAP_CLUSTER_MAX`).
pub const SWAP_CLUSTER_MAX: u64 = 32;

/// `vm_swappiness`'s default (Linux's).
pub const DEFAULT_SWAPPINESS: u32 = 60;

/// The largest `vm_swappiness` (Linux's sysctl bound: 200 favours swap
/// over the file cache as far as it goes).
pub const MAX_SWAPPINESS: u32 = 200;

/// Where the page caches and the address spaces mapping their pages
/// live: the kernel's files and tasks.
pub trait CacheOwners {
    /// Takes `pfn` out of the cache `id` at `index` if it is still there,
    /// with that cache's lock held and its page counts updated, leaving a
    /// shadow entry in its place (Linux `__remove_mapping`,
    /// [`crate::filemap::AddressSpace::remove_mapping`]); true if it did, and then the cache's
    /// reference to the page is the caller's. The caller holds the page's
    /// lock, so the cache is alive.
    fn remove_clean(&self, pgdat: &PgData<'_>, id: MappingId, index: u64, pfn: Pfn) -> bool;

    /// [`crate::rmap::folio_referenced`] over the address spaces the
    /// kernel has: harvests the accessed bits of every pte mapping
    /// `pfn`. With `is_locked` the caller holds the page's lock. May
    /// allocate (the reclaimer's allocations take the reserves and never
    /// reclaim, see [`DirectReclaim::current_is_memalloc`]); never sleeps.
    fn folio_referenced(&self, pgdat: &PgData<'_>, pfn: Pfn, is_locked: bool) -> Referenced;

    /// Whether this reclaim may swap (Linux `scan_control.may_swap`): a
    /// reclaim that cannot walk the reverse map cannot unmap an
    /// anonymous page.
    fn may_swap(&self) -> bool {
        true
    }

    /// [`crate::rmap::try_to_unmap`] over the kernel's address spaces:
    /// unmaps the locked file page `pfn` everywhere, handing dirty ptes'
    /// dirtiness to the page; whether no pte maps it any more. As
    /// [`CacheOwners::folio_referenced`] for allocation and sleep.
    fn try_to_unmap(&self, pgdat: &PgData<'_>, pfn: Pfn) -> bool;

    /// Puts the swap entry `entry` in place of the locked, unmapped shmem
    /// page `pfn` at `index` of the cache `id` under that cache's lock
    /// ([`crate::filemap::AddressSpace::shmem_delete_from_page_cache`]
    /// with [`crate::shmem::SHMEM_WRITEOUT_REFS`]); true if it did, and
    /// then the page is the swap cache's alone. The caller holds the
    /// page's lock, so the cache is alive. Owners without shmem files
    /// never have such a page.
    fn shmem_delete_from_page_cache(
        &self,
        _pgdat: &PgData<'_>,
        _id: MappingId,
        _index: u64,
        _pfn: Pfn,
        _entry: SwpEntry,
    ) -> bool {
        false
    }
}

/// The allocator's way into reclaim (Linux `__perform_reclaim`), which
/// the kernel registers with [`PgData::set_direct_reclaim`].
pub trait DirectReclaim: Sync {
    /// Frees at least `SWAP_CLUSTER_MAX` pages if it can, for an
    /// allocation of `order` with `gfp`; returns how many it freed.
    /// Called in the allocation slow path with a mask that allows
    /// blocking.
    fn try_to_free_pages(&self, pgdat: &PgData<'_>, gfp: Gfp, order: u32) -> u64;

    /// Whether the allocating task is itself reclaiming (Linux
    /// `PF_MEMALLOC` outside an interrupt): its allocations (a reverse-map
    /// walk's lists) may take the reserves below the min watermark and
    /// never reclaim themselves, which would recurse.
    fn current_is_memalloc(&self) -> bool;
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

/// Runs of kswapd in a row that free nothing before the node counts as
/// hopeless (Linux `MAX_RECLAIM_RETRIES`).
pub const MAX_RECLAIM_RETRIES: u32 = 16;

/// Whether kswapd gave up on the node (Linux `kswapd_failures >=
/// MAX_RECLAIM_RETRIES`): the slow path stops waking it, and it sleeps,
/// until some reclaim frees a page again.
pub fn pgdat_unreclaimable(pgdat: &PgData<'_>) -> bool {
    pgdat.kswapd_failures().load(core::sync::atomic::Ordering::Relaxed) >= MAX_RECLAIM_RETRIES
}

/// Whether kswapd may go to sleep (Linux `prepare_kswapd_sleep`): the
/// node is balanced, or hopeless.
pub fn prepare_kswapd_sleep(pgdat: &PgData<'_>) -> bool {
    pgdat_unreclaimable(pgdat) || pgdat_balanced(pgdat)
}

/// kswapd's work (Linux `balance_pgdat`): reclaims until every zone is
/// back above its high watermark or a pass frees nothing, with
/// `GFP_KERNEL` for the shrinkers (which may sleep); a run that frees
/// nothing counts as a failure ([`pgdat_unreclaimable`]). Returns the
/// pages freed.
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
    if total == 0 && !pgdat_balanced(pgdat) {
        pgdat.kswapd_failures().fetch_add(1, core::sync::atomic::Ordering::Relaxed);
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
/// list to the inactive one (Linux `shrink_active_list`), except the
/// mapped executable pages in use, which go round the active list again
/// (Linux keeps program text in memory so).
fn shrink_active_list<O: CacheOwners + ?Sized>(pgdat: &PgData<'_>, owners: &O, active: LruList, nr_to_scan: u64) {
    let mut batch = [Pfn::new(0); SWAP_CLUSTER_MAX as usize];
    let (scanned, taken) = pgdat.isolate_lru_folios(active, nr_to_scan, &mut batch);
    pgdat.count_vm_events(VmEventItem::Pgrefill, scanned);
    let mut deactivated = 0;
    for &pfn in &batch[..taken] {
        if let Some(page) = pgdat.pfn_to_page(pfn) {
            let rotate = page.mapcount() > 0 && {
                let found = owners.folio_referenced(pgdat, pfn, false);
                found.referenced > 0 && found.vm_flags.contains(VmaFlags::EXEC) && folio_is_file_lru(page)
            };
            if !rotate {
                page.clear(PageFlags::ACTIVE);
                page.clear(PageFlags::REFERENCED);
                // Once active, it is part of the workingset: its shadow
                // will say so if it is evicted (Linux
                // `folio_set_workingset`).
                page.set(PageFlags::WORKINGSET);
                deactivated += 1;
            }
        }
        pgdat.folio_putback_lru(pfn);
    }
    pgdat.count_vm_events(VmEventItem::Pgdeactivate, deactivated);
}

/// What `shrink_folio_list` does with one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Back to the inactive list.
    Keep,
    /// To the active list.
    Activate,
    /// Mapped by a locked VMA: mlocked, to the unevictable list.
    Cull,
    /// Out of its cache; the cache's reference is now the caller's.
    Freed,
    /// A clean lazily freeable page (`MADV_FREE`), unmapped: the
    /// isolation's reference is the last.
    Discarded,
}

/// What the references to a page say (Linux `enum folio_references`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FolioReferences {
    /// Reclaim it.
    Reclaim,
    /// Reclaim it if it is clean (a page read lately but not mapped).
    ReclaimClean,
    /// Leave it on the inactive list.
    Keep,
    /// Move it to the active list.
    Activate,
    /// A locked VMA maps it.
    Mlocked,
}

/// Linux `folio_check_references`: the accessed bits of the ptes mapping
/// the locked page (harvested and cleared) and its `PG_referenced`
/// (cleared). A page mapped and used since the last look is kept the
/// first time and activated the second (or at once when several ptes
/// used it, or it is mapped executable); a page only read is reclaimed
/// if clean.
fn folio_check_references<O: CacheOwners + ?Sized>(
    pgdat: &PgData<'_>,
    owners: &O,
    pfn: Pfn,
    page: &Page,
) -> FolioReferences {
    let found = if page.mapcount() > 0 { owners.folio_referenced(pgdat, pfn, true) } else { Referenced::default() };
    let referenced_folio = page.test_and_clear(PageFlags::REFERENCED);
    if found.vm_flags.contains(VmaFlags::LOCKED) {
        return FolioReferences::Mlocked;
    }
    if found.referenced > 0 {
        page.set(PageFlags::REFERENCED);
        if referenced_folio || found.referenced > 1 {
            return FolioReferences::Activate;
        }
        if found.vm_flags.contains(VmaFlags::EXEC) && folio_is_file_lru(page) {
            return FolioReferences::Activate;
        }
        return FolioReferences::Keep;
    }
    if referenced_folio && folio_is_file_lru(page) {
        return FolioReferences::ReclaimClean;
    }
    FolioReferences::Reclaim
}

/// Decides for one isolated page (Linux `shrink_folio_list`'s body);
/// with `ignore_references` (Linux's `reclaim_pages`) the ptes' accessed
/// bits and `PG_referenced` are not looked at.
fn shrink_folio<O: CacheOwners + ?Sized>(
    pgdat: &PgData<'_>,
    owners: &O,
    waits: &dyn FolioWaitTable,
    pfn: Pfn,
    page: &Page,
    ignore_references: bool,
) -> Verdict {
    if !folio_trylock(page) {
        return Verdict::Keep;
    }
    let verdict = shrink_locked_folio(pgdat, owners, pfn, page, ignore_references);
    folio_unlock(page, pfn, waits);
    verdict
}

/// [`shrink_folio`] under the page's lock.
fn shrink_locked_folio<O: CacheOwners + ?Sized>(
    pgdat: &PgData<'_>,
    owners: &O,
    pfn: Pfn,
    page: &Page,
    ignore_references: bool,
) -> Verdict {
    let flags = page.flags();
    let anon = crate::rmap::page_anon(page);
    // A swap-cache page no fault has mapped yet (swap readahead's, or one
    // whose read failed) is not anonymous yet, but goes as one (Linux
    // tests `folio_test_swapcache` through `folio_mapping`).
    let swapcache = flags.contains(PageFlags::SWAPCACHE);
    // An anonymous page holds its data from its first fault, a swap-cache
    // page from its read's end (the lock we hold waited for it); a file
    // page may still be on its way from the disk.
    if flags.contains(PageFlags::WRITEBACK) || (!anon && !swapcache && !flags.contains(PageFlags::UPTODATE)) {
        return Verdict::Keep;
    }
    let references =
        if ignore_references { FolioReferences::Reclaim } else { folio_check_references(pgdat, owners, pfn, page) };
    match references {
        FolioReferences::Mlocked => return Verdict::Cull,
        FolioReferences::Activate => return Verdict::Activate,
        FolioReferences::Keep => return Verdict::Keep,
        FolioReferences::ReclaimClean if page.test(PageFlags::DIRTY) => return Verdict::Keep,
        FolioReferences::Reclaim | FolioReferences::ReclaimClean => {}
    }
    // Anonymous and shmem pages (`PG_swapbacked`; a shmem page that went
    // to swap is a swap-cache page of no file) need swap: an anonymous
    // page gets its slot now (Linux `add_to_swap`), a shmem page after
    // its ptes are gone ([`shmem_writeout`]).
    let swapbacked = flags.contains(PageFlags::SWAPBACKED);
    let swap = if swapbacked && owners.may_swap() { pgdat.swap_backend() } else { None };
    if swapbacked {
        let Some(backend) = swap else { return Verdict::Keep };
        if crate::swap_state::folio_swap_write_failed(page) {
            // Its slot failed a write: the ptes holding the slot need
            // this page; once none does, the slot goes bad and the page
            // gets another one (see `crate::swap_state`'s I/O errors).
            let Some(entry) = crate::swap_state::folio_swap_entry(page) else { return Verdict::Keep };
            if backend.swap_count(entry) > 0 || !delete_from_swap_cache(pgdat, backend, pfn, page) {
                return Verdict::Activate;
            }
            // The swap cache's reference; the isolation's is left.
            let last = page.put_testzero();
            debug_assert!(!last, "the swap cache held the last reference of an isolated page");
        }
        if anon && !page.test(PageFlags::SWAPCACHE) && add_to_swap(pgdat, backend, pfn, page).is_none() {
            return Verdict::Activate;
        }
    }
    // Unmapping moves the ptes' dirty bits to the page (an anonymous
    // page's ptes get its swap entry, a file page's are cleared; a
    // lazily freeable page's are cleared if none is dirty, else the page
    // is anonymous memory again); a page still mapped somewhere (an
    // address space the walk could not lock) is activated, as Linux
    // does when `try_to_unmap` fails.
    if page.mapcount() > 0 && !owners.try_to_unmap(pgdat, pfn) {
        return Verdict::Activate;
    }
    if anon && !page.test(PageFlags::SWAPBACKED) {
        return shrink_lazyfree_folio(pgdat, page);
    }
    // A dirty shmem page still in its file (Linux `pageout` ->
    // `shmem_writeout`); a clean one holds zeros and is dropped below.
    if let Some(backend) = swap
        && !anon
        && !page.test(PageFlags::SWAPCACHE)
        && page.test(PageFlags::DIRTY)
    {
        let Some(id) = MappingId::new(page.mapping()) else { return Verdict::Keep };
        let index = page.index();
        let written = shmem_writeout(pgdat, backend, pfn, page, |entry| {
            owners.shmem_delete_from_page_cache(pgdat, id, index, pfn, entry)
        });
        match written {
            Ok(_) => {}
            Err(WriteoutError::NoSwap) => return Verdict::Activate,
            Err(WriteoutError::Busy) => return Verdict::Keep,
        }
    }
    if page.test(PageFlags::DIRTY) {
        // Linux `folio_set_reclaim`: when its writeback ends, the page
        // goes to the cold end of the inactive list, freed at the next
        // scan.
        page.set(PageFlags::RECLAIM);
        return match swap {
            // Linux `pageout`: anonymous pages are written from reclaim.
            Some(backend) if swap_pageout(pgdat, backend, pfn, page) => Verdict::Keep,
            _ => Verdict::Activate,
        };
    }
    // The cache's reference and the isolation's: nothing else uses it.
    if page.refcount() != 2 {
        return Verdict::Keep;
    }
    let removed = match swap {
        // Linux `__remove_mapping` for the swap cache: the slot keeps the
        // data for the ptes or the shmem index that hold its entry.
        Some(backend) if page.test(PageFlags::SWAPCACHE) => {
            crate::swap_state::delete_from_swap_cache_evicted(pgdat, backend, pfn, page)
        }
        _ => MappingId::new(page.mapping()).is_some_and(|id| owners.remove_clean(pgdat, id, page.index(), pfn)),
    };
    if removed { Verdict::Freed } else { Verdict::Keep }
}

/// The end of [`shrink_locked_folio`] for a lazily freeable anonymous
/// page that no pte maps (Linux `shrink_folio_list`'s
/// `folio_ref_freeze(folio, 1)` branch): discarded if clean and held by
/// the isolation alone (`pglazyfreed`); written since `MADV_FREE`, it is
/// anonymous memory again (`PG_swapbacked`, activated); held by someone
/// else, kept.
fn shrink_lazyfree_folio(pgdat: &PgData<'_>, page: &Page) -> Verdict {
    if page.test(PageFlags::DIRTY) {
        page.set(PageFlags::SWAPBACKED);
        return Verdict::Activate;
    }
    if page.refcount() != 1 {
        return Verdict::Keep;
    }
    pgdat.count_vm_events(VmEventItem::Pglazyfreed, 1);
    Verdict::Discarded
}

/// Puts an isolated page where `shrink_folio` decided (Linux
/// `shrink_folio_list`'s ends and `move_folios_to_lru`); whether it was
/// freed.
fn finish_folio(pgdat: &PgData<'_>, pfn: Pfn, page: &Page, verdict: Verdict) -> bool {
    match verdict {
        Verdict::Keep => pgdat.folio_putback_lru(pfn),
        Verdict::Activate => {
            page.set(PageFlags::ACTIVE);
            pgdat.count_vm_events(VmEventItem::Pgactivate, 1);
            pgdat.folio_putback_lru(pfn);
            // Linux `move_folios_to_lru`: an activation ages the
            // inactive list.
            workingset_age_nonresident(pgdat, 1);
        }
        Verdict::Cull => {
            pgdat.mlock_folio(pfn);
            pgdat.folio_putback_lru(pfn);
        }
        Verdict::Freed => {
            // SAFETY: the cache's reference, which `remove_clean`
            // or `delete_from_swap_cache` handed over; out of its
            // cache no one finds the page, and it had no other
            // user.
            #[allow(unsafe_code)]
            let put = unsafe { pgdat.put_page(pfn) };
            // The isolation's, the last: this frees the page.
            pgdat.put_lru_ref(pfn);
            return put.is_ok();
        }
        Verdict::Discarded => {
            // The isolation's, the last: this frees the page.
            pgdat.put_lru_ref(pfn);
            return true;
        }
    }
    false
}

/// Reclaims the isolated pages `pfns` at once, whatever their references
/// say (Linux `reclaim_pages` -> `reclaim_folio_list` with
/// `ignore_references`, for `MADV_PAGEOUT`): anonymous pages go to swap
/// if there is a free slot, clean file pages leave their cache, the rest
/// go back to their lists. Returns the pages freed; a page written out
/// stays in the swap cache until its write ends and reclaim takes it
/// (as in Linux, for a disk that completes asynchronously).
pub fn reclaim_pages<O: CacheOwners + ?Sized>(
    pgdat: &PgData<'_>,
    owners: &O,
    waits: &dyn FolioWaitTable,
    pfns: &[Pfn],
) -> u64 {
    let mut freed = 0;
    for &pfn in pfns {
        let Some(page) = pgdat.pfn_to_page(pfn) else { continue };
        let verdict = shrink_folio(pgdat, owners, waits, pfn, page, true);
        if finish_folio(pgdat, pfn, page, verdict) {
            freed += 1;
        }
    }
    freed
}

/// Scans up to `to_scan` pages of the cold end of `lru` (Linux
/// `shrink_inactive_list`), freeing at most `nr_to_free`; returns the
/// pages freed.
fn shrink_inactive_list<O: CacheOwners + ?Sized>(
    pgdat: &PgData<'_>,
    owners: &O,
    waits: &dyn FolioWaitTable,
    lru: LruList,
    mut to_scan: u64,
    nr_to_free: u64,
    who: Reclaimer,
) -> u64 {
    let mut freed = 0;
    let mut batch = [Pfn::new(0); SWAP_CLUSTER_MAX as usize];
    while to_scan > 0 && freed < nr_to_free {
        let (scanned, taken) = pgdat.isolate_lru_folios(lru, to_scan, &mut batch);
        if scanned == 0 {
            break;
        }
        to_scan = to_scan.saturating_sub(scanned);
        pgdat.count_vm_events(who.scan_event(), scanned);
        for &pfn in &batch[..taken] {
            let Some(page) = pgdat.pfn_to_page(pfn) else { continue };
            let verdict = shrink_folio(pgdat, owners, waits, pfn, page, false);
            if finish_folio(pgdat, pfn, page, verdict) {
                freed += 1;
                pgdat.count_vm_events(who.steal_event(), 1);
            }
        }
    }
    freed
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
    // Linux `get_scan_count`, reduced: with swap, the anonymous lists are
    // scanned too, `vm_swappiness / 200` of each priority's share against
    // `(200 - vm_swappiness) / 200` of the file lists' (Linux weighs
    // these by the lists' recent reclaim costs too); without, all of the
    // file lists'.
    // Linux `can_reclaim_anon_pages`: a free slot somewhere; and
    // `may_swap` with `__GFP_IO` (swap-out writes: an allocation made for
    // I/O must not wait for more).
    let swap = pgdat.swap_backend().filter(|b| owners.may_swap() && gfp.contains(Gfp::IO) && b.nr_swap_pages() > 0);
    let swappiness = if swap.is_some() { u64::from(pgdat.vm_swappiness()) } else { 0 };
    let lists = [
        (LruList::InactiveFile, LruList::ActiveFile, 200 - swappiness),
        (LruList::InactiveAnon, LruList::ActiveAnon, swappiness),
    ];
    for priority in (0..=DEF_PRIORITY).rev() {
        if freed >= nr_to_free {
            break;
        }
        // Linux `shrink_lruvec`: the lists are scanned under the task's
        // plug, so that the swap writes of neighbouring slots merge into
        // large requests; it ends before the shrinkers, which may sleep.
        let plug = SwapPlug::start(swap);
        for (inactive, active, weight) in lists {
            if weight == 0 || freed >= nr_to_free {
                continue;
            }
            if inactive_is_low(pgdat, inactive, active) {
                let refill = (pgdat.lru_pages(active) >> priority).max(SWAP_CLUSTER_MAX);
                shrink_active_list(pgdat, owners, active, refill);
            }
            let to_scan = ((pgdat.lru_pages(inactive) >> priority) * weight).div_ceil(200);
            freed += shrink_inactive_list(pgdat, owners, waits, inactive, to_scan, nr_to_free - freed, who);
        }
        drop(plug);
        crate::shrinker::shrink_slab(pgdat, gfp, priority);
    }
    if freed > 0 {
        // Linux `shrink_node`: progress makes the node hopeful again.
        pgdat.kswapd_failures().store(0, core::sync::atomic::Ordering::Relaxed);
    }
    freed
}

#[cfg(test)]
mod tests;
