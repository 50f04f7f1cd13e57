//! Memory compaction: moving movable pages out of the way so that free
//! memory coalesces into large blocks (Linux `mm/compaction.c`:
//! `compact_zone`, `isolate_migratepages_block`, `isolate_freepages_block`,
//! `compaction_alloc`/`compaction_free`, `__compact_finished`,
//! `compaction_suitable`, the deferral of `defer_compaction`/
//! `compaction_deferred`/`compaction_defer_reset`, `try_to_compact_pages`
//! for the allocator's direct compaction, kcompactd's
//! `wakeup_kcompactd`/`kcompactd_do_work`, and `compact_node` behind
//! `/proc/sys/vm/compact_memory`).
//!
//! # The two scanners
//! Per zone, a migrate scanner walks up from the zone's first page
//! collecting user pages that can move ([`crate::migrate`]), up to
//! [`COMPACT_CLUSTER_MAX`] at a time and at most one pageblock per round;
//! a free scanner walks down from the zone's last pageblock taking free
//! buddy blocks off the free lists ([`PgData::isolate_free_page`], which
//! keeps the zone above its min watermark) as targets for those pages,
//! when migration asks for one and none is left, and only until it holds
//! as many as the round has pages still to move (Linux
//! `isolate_freepages_block` stops at `nr_freepages >= nr_migratepages`).
//! Each round migrates the collected pages into the isolated free pages;
//! the pages left behind are freed and merge with their free neighbours.
//! The free scanner only takes pages from MOVABLE pageblocks and leaves a
//! pageblock alone whose first page is a free block of the wanted order
//! (a whole pageblock for `compact_memory`), so compaction never breaks
//! up what it tries to build (Linux `suitable_migration_target`); at the
//! highest priority it takes from pageblocks of every type
//! (`ignore_block_suitable`). The migrate scanner takes pages from
//! pageblocks of every type, except in asynchronous direct compaction,
//! which only empties pageblocks of the allocation's own type (Linux
//! `suitable_migration_source`).
//!
//! # When a run ends
//! [`compact_finished`](CompactControl::compact_finished) (Linux
//! `__compact_finished`) is asked before each round: the run is complete
//! when the scanners meet (their pageblocks cross, Linux
//! `compact_scanners_met`) or the free scanner finds nothing more; a run
//! for an allocation succeeds, at a pageblock boundary of the migrate
//! scanner, as soon as the zone has a free block of the wanted order of
//! the allocation's migratetype or of a type it may claim; the caller's
//! [`RmapMms::cond_resched`], called before each pageblock the migrate
//! scanner starts, may stop it ([`CompactResult::Contended`]). Per-cpu
//! lists are drained at those boundaries once something moved, so the
//! freed pages merge where the check can see them (Linux drains when the
//! migrate scanner leaves the order-aligned block it migrated from).
//!
//! # Direct compaction and its deferral
//! An allocation of order above 0 that may block reaches
//! [`try_to_compact_pages`] through the kernel's registered
//! [`DirectCompaction`] (see [`crate::page_alloc`]'s slow path for when,
//! and at which [`CompactPriority`]). Each zone the allocation may use,
//! highest first: skipped while its compaction is deferred (below the
//! highest priority); a run ends at once if the allocation would already
//! succeed, or with [`CompactResult::Skipped`] when the zone has too few
//! free pages for migration targets or, for a costly order, when its free
//! memory is too scarce rather than too fragmented
//! ([`compaction_suitable`], Linux's `fragmentation_index` against
//! `extfrag_threshold`). A success stops the walk; a synchronous run that
//! completed without one defers the zone.
//!
//! Deferral, per zone (Linux's rules): after a failure at order `o` the
//! next `1 << compact_defer_shift` attempts at `o` or above are skipped,
//! the shift growing by one per failure up to [`COMPACT_MAX_DEFER_SHIFT`]
//! (64 attempts); orders below the lowest that failed are never
//! deferred. A success at order `o` lets orders up to `o` through, and an
//! allocation that got its page resets the count.
//!
//! # kcompactd
//! kswapd, done balancing the node, hands the order it was woken for to
//! [`wakeup_kcompactd`] ([`wakeup_kcompactd_from_kswapd`], Linux's call in
//! `kswapd_try_to_sleep`), which records it and wakes the kernel's
//! registered [`Kcompactd`] thread if some zone cannot serve that order
//! and compaction would have room there. The thread runs
//! [`kcompactd_do_work`]: each zone not deferred, not already able to
//! serve the order and suitable is compacted with `MIGRATE_SYNC_LIGHT`
//! until a block of the order is free, deferring it after a complete run
//! without one (`compact_daemon_wake`, `compact_daemon_migrate_scanned`,
//! `compact_daemon_free_scanned`).
//!
//! Counters: `compact_migrate_scanned` and `compact_free_scanned` per page
//! looked at (a free block the migrate scanner steps over counts all its
//! pages, as in Linux), `compact_isolated` per page either scanner
//! isolated, and the migration's `pgmigrate_success`/`pgmigrate_fail`
//! (a listed page found unmapped when isolated is skipped, counted in
//! neither: [`CompactStats::skipped`]); the allocator counts
//! `compact_stall`, `compact_fail` and `compact_success`.
//!
//! # Locking
//! No lock is held across a round, nor when [`RmapMms::cond_resched`] may
//! reschedule (isolated free pages stay isolated meanwhile, as in Linux).
//! The free scanner's lockless look at a page is rechecked under the zone
//! lock when the block is taken; the migrate scanner's under the page
//! lock and the owning address space's page-table lock when the page is
//! moved. Lock order (through [`crate::migrate`]): mmap lock (read) ->
//! page lock -> page-table lock -> zone lock. Page and mmap locks are
//! only tried, so a direct compaction never waits for a lock its own
//! allocating caller may hold. Two compactions of one zone at once are
//! the caller's to prevent (Linux serializes `compact_memory` writers on
//! nothing either, but its isolation flags keep them off each other's
//! pages; the kernel runs one at a time). The deferral counters and
//! kcompactd's request are read and written without a lock, as in
//! Linux: a lost update only changes how soon compaction runs again.
//!
//! # Differences from Linux
//! - Every run scans the whole zone from its ends: no cached scanner
//!   positions, no pageblock skip bits, no fast searches for free or
//!   movable blocks; so a run never ends `COMPACT_PARTIAL_SKIPPED`, and
//!   `COMPACT_PRIO_SYNC_FULL` differs from `SYNC_LIGHT` only in taking
//!   migration targets from pageblocks of every type.
//! - Migration itself is the same in every [`MigrateMode`]: page and mmap
//!   locks are only tried and nothing waits for writeback (Linux's
//!   asynchronous migration); the mode only chooses the migrate
//!   scanner's pageblocks.
//! - No `compaction_capture`: the page a direct compaction frees is taken
//!   from the free lists afterwards by [`crate::page_alloc`], where
//!   another allocation may take it first.
//! - No proactive compaction (kcompactd only runs when kswapd wakes it),
//!   and kcompactd is not woken by `wakeup_kswapd` for allocations that
//!   may not block on a balanced node, only by kswapd going to sleep.
//! - The caller's chance to reschedule or stop comes once per migrate
//!   scanner pageblock (Linux's every `COMPACT_CLUSTER_MAX` pages, and
//!   with the zone and LRU locks dropped, which we never hold there).
//! - Movable pages are user pages, anonymous or page cache, however many
//!   ptes map them (found through [`crate::rmap`]); see
//!   [`crate::migrate`] for what it cannot move.
//! - Isolated migrate pages are not taken off an LRU (there is none) and
//!   `NR_ISOLATED_*` is not counted; a page is isolated only in the sense
//!   that the scanner listed it.
//! - Per-cpu lists of every CPU are drained before the free scanner starts
//!   and after the run, so that free pages sitting there are seen and the
//!   freed pages merge at once (Linux drains this CPU's in the direct
//!   compaction path).

use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

use crate::addr::Pfn;
use crate::gfp::{GFP_KERNEL, Gfp};
use crate::migrate::{self, MigrationTarget};
use crate::mmzone::{
    FreeCounts, MAX_NR_ZONES, MAX_PAGE_ORDER, MigrateType, NR_PAGE_ORDERS, PAGE_ALLOC_COSTLY_ORDER, Watermark, Zone,
    ZoneType,
};
use crate::page::{PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER};
use crate::page_alloc::{AllocFlags, PgData};
use crate::page_flags::PageFlags;
use crate::pgtable::PteFormat;
use crate::rmap::RmapMms;
use crate::vma::VmaAlloc;
use crate::vmstat::VmEventItem;

/// Pages the migrate scanner isolates per round (Linux
/// `COMPACT_CLUSTER_MAX`, which is `SWAP_CLUSTER_MAX`).
pub const COMPACT_CLUSTER_MAX: usize = 32;

/// Free blocks the free scanner holds at once (each a range of order-0
/// pages); Linux keeps one list per order, we keep ranges so that no
/// allocation is needed.
const FREE_RANGES: usize = 32;

/// The most a zone's compaction is deferred: `1 << 6` attempts (Linux
/// `COMPACT_MAX_DEFER_SHIFT`).
pub const COMPACT_MAX_DEFER_SHIFT: u32 = 6;

/// The fragmentation index at or below which a costly allocation's
/// failure is put down to a lack of memory, not fragmentation, and
/// compaction is not tried (Linux `sysctl_extfrag_threshold`'s default).
pub const EXTFRAG_THRESHOLD: i64 = 500;

/// How migration may wait (Linux `enum migrate_mode`); here it only
/// chooses the migrate scanner's pageblocks (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateMode {
    /// `MIGRATE_ASYNC`: direct compaction's first, optimistic try.
    Async,
    /// `MIGRATE_SYNC_LIGHT`: direct compaction's later tries and
    /// kcompactd.
    SyncLight,
    /// `MIGRATE_SYNC`: `compact_memory`.
    Sync,
}

/// How hard a direct compaction tries (Linux `enum compact_priority`):
/// the lower, the harder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CompactPriority {
    /// `COMPACT_PRIO_SYNC_FULL`: synchronous, ignoring deferral, targets
    /// in pageblocks of every type.
    SyncFull,
    /// `COMPACT_PRIO_SYNC_LIGHT`: synchronous.
    SyncLight,
    /// `COMPACT_PRIO_ASYNC`: asynchronous.
    Async,
}

impl CompactPriority {
    /// The next harder priority, if any (Linux's `(*compact_priority)--`).
    pub fn raise(self) -> Option<CompactPriority> {
        match self {
            CompactPriority::Async => Some(CompactPriority::SyncLight),
            CompactPriority::SyncLight => Some(CompactPriority::SyncFull),
            CompactPriority::SyncFull => None,
        }
    }
}

/// The hardest priority (Linux `MIN_COMPACT_PRIORITY`).
pub const MIN_COMPACT_PRIORITY: CompactPriority = CompactPriority::SyncFull;
/// The hardest priority a costly order gets (Linux
/// `MIN_COMPACT_COSTLY_PRIORITY`).
pub const MIN_COMPACT_COSTLY_PRIORITY: CompactPriority = CompactPriority::SyncLight;
/// The priority of the slow path's rounds (Linux `DEF_COMPACT_PRIORITY`).
pub const DEF_COMPACT_PRIORITY: CompactPriority = CompactPriority::SyncLight;
/// The priority of the slow path's first try (Linux
/// `INIT_COMPACT_PRIORITY`).
pub const INIT_COMPACT_PRIORITY: CompactPriority = CompactPriority::Async;

/// How a compaction went (Linux `enum compact_result`, in Linux's order:
/// [`try_to_compact_pages`] reports the greatest over the zones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CompactResult {
    /// `COMPACT_SKIPPED`: not run, for lack of free pages to migrate into
    /// (or, for a costly order, of fragmentation), or because the caller
    /// may not compact.
    Skipped,
    /// `COMPACT_DEFERRED`: not run, as recent runs failed.
    Deferred,
    /// `COMPACT_COMPLETE`: the whole zone was scanned without making a
    /// block of the order.
    Complete,
    /// `COMPACT_CONTENDED`: stopped early by [`RmapMms::cond_resched`].
    Contended,
    /// `COMPACT_SUCCESS`: a block of the order is free (or was already).
    Success,
}

/// What an allocation asks direct compaction for (Linux's arguments to
/// `try_to_compact_pages`): its mask, order, allocation flags and the
/// priority. Built by the allocator; the kernel hands it on.
#[derive(Clone, Copy, Debug)]
pub struct CompactRequest {
    pub(crate) gfp: Gfp,
    pub(crate) order: u32,
    pub(crate) alloc_flags: AllocFlags,
    pub(crate) prio: CompactPriority,
}

impl CompactRequest {
    /// The allocation's mask.
    pub fn gfp(&self) -> Gfp {
        self.gfp
    }

    /// The allocation's order.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// How hard to try.
    pub fn prio(&self) -> CompactPriority {
        self.prio
    }
}

/// The allocator's way into compaction (Linux `try_to_compact_pages` as
/// `__alloc_pages_direct_compact` calls it), which the kernel registers
/// with [`PgData::set_direct_compaction`]: it runs
/// [`try_to_compact_pages`] with its reverse-map walk, or returns
/// [`CompactResult::Skipped`] where it may not (atomic context, or an
/// allocation compaction itself makes: Linux's `PF_MEMALLOC`).
pub trait DirectCompaction: Sync {
    /// Compacts for `request`, in the allocation slow path, with a mask
    /// that allows blocking.
    fn try_to_compact_pages(&self, pgdat: &PgData<'_>, request: &CompactRequest) -> CompactResult;
}

/// The node's kcompactd thread as the kernel runs it, registered with
/// [`PgData::set_kcompactd`].
pub trait Kcompactd: Sync {
    /// Wakes the thread, which then calls [`kcompactd_do_work`]; a no-op
    /// if it is awake. Called by kswapd; must not sleep.
    fn wakeup(&self);
}

/// What kcompactd was asked for (Linux `pgdat->kcompactd_max_order` and
/// `kcompactd_highest_zoneidx`) and the thread to wake.
pub(crate) struct KcompactdState {
    max_order: AtomicU32,
    highest_zoneidx: AtomicU32,
    thread: spin::Once<&'static dyn Kcompactd>,
}

impl KcompactdState {
    pub(crate) const fn new() -> Self {
        KcompactdState {
            max_order: AtomicU32::new(0),
            highest_zoneidx: AtomicU32::new(MAX_NR_ZONES as u32 - 1),
            thread: spin::Once::new(),
        }
    }

    pub(crate) fn register(&self, thread: &'static dyn Kcompactd) {
        self.thread.call_once(|| thread);
    }

    fn highest_zoneidx(&self) -> ZoneType {
        ZoneType::from_index(self.highest_zoneidx.load(Relaxed) as usize).unwrap_or(ZoneType::Normal)
    }
}

/// What a compaction run did (the per-run part of Linux's
/// `compact_control` and the events it counts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Pages the migrate scanner looked at.
    pub migrate_scanned: u64,
    /// Pages the free scanner looked at.
    pub free_scanned: u64,
    /// Pages isolated by either scanner.
    pub isolated: u64,
    /// Pages moved.
    pub migrated: u64,
    /// Pages tried and left in place.
    pub failed: u64,
    /// Pages listed that were unmapped by the time they were isolated:
    /// left alone, and not failures (Linux would not have isolated them).
    pub skipped: u64,
    /// The run stopped early because [`RmapMms::cond_resched`] asked it to
    /// (Linux `cc->contended`, `COMPACT_CONTENDED`).
    pub contended: bool,
}

impl CompactStats {
    fn add(&mut self, other: CompactStats) {
        self.migrate_scanned += other.migrate_scanned;
        self.free_scanned += other.free_scanned;
        self.isolated += other.isolated;
        self.migrated += other.migrated;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.contended |= other.contended;
    }
}

/// Linux `defer_compaction`: a compaction of `order` failed in `zone`;
/// skip the next `1 << compact_defer_shift` attempts at `order` or above.
pub(crate) fn defer_compaction(zone: &Zone<'_>, order: u32) {
    zone.compact_considered.store(0, Relaxed);
    let shift = zone.compact_defer_shift.load(Relaxed);
    zone.compact_defer_shift.store((shift + 1).min(COMPACT_MAX_DEFER_SHIFT), Relaxed);
    zone.compact_order_failed.fetch_min(order, Relaxed);
}

/// Linux `compaction_deferred`: whether this attempt at `order` in `zone`
/// is to be skipped; each call counts as an attempt considered.
pub(crate) fn compaction_deferred(zone: &Zone<'_>, order: u32) -> bool {
    if order < zone.compact_order_failed.load(Relaxed) {
        return false;
    }
    let limit = 1u32 << zone.compact_defer_shift.load(Relaxed).min(COMPACT_MAX_DEFER_SHIFT);
    let considered = zone.compact_considered.load(Relaxed).saturating_add(1);
    if considered >= limit {
        zone.compact_considered.store(limit, Relaxed);
        return false;
    }
    zone.compact_considered.store(considered, Relaxed);
    true
}

/// Linux `compaction_defer_reset`: compaction of `order` in `zone`
/// succeeded (and the allocation got its page, if `alloc_success`).
pub(crate) fn compaction_defer_reset(zone: &Zone<'_>, order: u32, alloc_success: bool) {
    if alloc_success {
        zone.compact_considered.store(0, Relaxed);
        zone.compact_defer_shift.store(0, Relaxed);
    }
    if order >= zone.compact_order_failed.load(Relaxed) {
        zone.compact_order_failed.store(order + 1, Relaxed);
    }
}

/// Free pages compaction wants above the watermark for an `order`
/// allocation: room for the pages it migrates and for the block (Linux
/// `compact_gap`).
fn compact_gap(order: u32) -> u64 {
    2 << order
}

/// Linux `__fragmentation_index` over a zone's free blocks: -1000 if a
/// block of `order` is free; otherwise from 0 (the allocation fails for
/// lack of memory) towards 1000 (it fails for fragmentation); 0 with no
/// free memory at all.
pub fn fragmentation_index(counts: &FreeCounts, order: u32) -> i64 {
    let (mut free_pages, mut blocks_total, mut blocks_suitable) = (0u64, 0u64, 0u64);
    for o in 0..NR_PAGE_ORDERS {
        let blocks = counts.nr_free(o);
        free_pages += blocks << o;
        blocks_total += blocks;
        if o as u32 >= order {
            blocks_suitable += blocks << (o as u32 - order);
        }
    }
    if blocks_total == 0 {
        return 0;
    }
    if blocks_suitable > 0 {
        return -1000;
    }
    // Every free block is below `order`, so free_pages < blocks_total << order
    // and the quotient stays below 2000.
    let quotient = (1000 + free_pages * 1000 / (1 << order)) / blocks_total;
    1000 - quotient as i64
}

/// Linux `compaction_suitable`: whether `zone` has the free base pages a
/// compaction for `order` needs as migration targets (above the min
/// watermark, the low one for a costly order, plus [`compact_gap`] and
/// the reserve kept against `highest`), and, for a costly order, whether
/// its free memory is fragmented rather than short ([`fragmentation_index`]
/// above [`EXTFRAG_THRESHOLD`]).
pub fn compaction_suitable(pgdat: &PgData<'_>, zone_type: ZoneType, order: u32, highest: ZoneType) -> bool {
    let zone = pgdat.zone(zone_type);
    let wmark = if order > PAGE_ALLOC_COSTLY_ORDER { Watermark::Low } else { Watermark::Min };
    let mark = zone.watermark(wmark) + compact_gap(order);
    if !pgdat.zone_watermark_ok(zone, 0, mark, highest, AllocFlags::MIN) {
        return false;
    }
    if order > PAGE_ALLOC_COSTLY_ORDER {
        let fragindex = fragmentation_index(&pgdat.free_counts(zone_type), order);
        if (0..=EXTFRAG_THRESHOLD).contains(&fragindex) {
            return false;
        }
    }
    true
}

/// What a run is for: an allocation (Linux's `cc->order` and the rest of
/// `compact_control` a direct compaction or kcompactd fills in), or
/// `compact_memory` (order -1: the whole zone, whatever is free).
#[derive(Clone, Copy, Debug)]
struct CompactFor {
    /// The order wanted; `None` for `compact_memory`.
    order: Option<u32>,
    /// The allocation's migratetype (Linux `cc->migratetype`).
    migratetype: MigrateType,
    /// The allocation's highest zone (Linux `cc->highest_zoneidx`).
    highest_zoneidx: ZoneType,
    /// Its allocation flags (Linux `cc->alloc_flags`).
    alloc_flags: AllocFlags,
    mode: MigrateMode,
    /// Run in an allocation's slow path (Linux `cc->direct_compaction`).
    direct_compaction: bool,
    /// Targets from pageblocks of every type (Linux
    /// `cc->ignore_block_suitable`).
    ignore_block_suitable: bool,
}

impl CompactFor {
    /// `compact_memory`'s control: order -1, `MIGRATE_SYNC`.
    const COMPACT_MEMORY: CompactFor = CompactFor {
        order: None,
        migratetype: MigrateType::Unmovable,
        highest_zoneidx: ZoneType::Normal,
        alloc_flags: AllocFlags::MIN,
        mode: MigrateMode::Sync,
        direct_compaction: false,
        ignore_block_suitable: false,
    };
}

/// One zone's compaction in progress (Linux `struct compact_control`).
struct CompactControl<'p, 'a> {
    pgdat: &'p PgData<'a>,
    zone_type: ZoneType,
    zone_start: u64,
    zone_end: u64,
    cc: CompactFor,
    /// Next page the migrate scanner looks at.
    migrate_pfn: u64,
    /// First pfn of the pageblock the free scanner is in (it moves down).
    free_pfn: u64,
    /// Next page the free scanner looks at, inside that pageblock.
    free_cursor: u64,
    /// Isolated free pages not handed out yet: `(first pfn, count)`.
    freepages: [(u64, u64); FREE_RANGES],
    nr_ranges: usize,
    /// Pages in `freepages` (Linux `cc->nr_freepages`).
    nr_freepages: u64,
    /// Pages of the round being migrated that have no target page yet
    /// (Linux `cc->nr_migratepages`, which counts the whole list).
    nr_migratepages: u64,
    /// The free scanner has nothing more to give.
    free_exhausted: bool,
    /// Pages moved since the per-cpu lists were last drained.
    migrated_since_drain: bool,
    stats: CompactStats,
}

fn pageblock_start(pfn: u64) -> u64 {
    pfn & !(PAGEBLOCK_NR_PAGES - 1)
}

impl<'p, 'a> CompactControl<'p, 'a> {
    /// A compaction of `zone_type` from its ends; `None` for an empty zone.
    fn new(pgdat: &'p PgData<'a>, zone_type: ZoneType, cc: CompactFor) -> Option<Self> {
        let zone = pgdat.zone(zone_type);
        if zone.present_pages() == 0 {
            return None;
        }
        let zone_start = zone.start_pfn();
        let zone_end = zone_start + zone.spanned_pages();
        let last_block = pageblock_start(zone_end - 1);
        Some(CompactControl {
            pgdat,
            zone_type,
            zone_start,
            zone_end,
            cc,
            migrate_pfn: zone_start,
            free_pfn: last_block,
            free_cursor: last_block.max(zone_start),
            freepages: [(0, 0); FREE_RANGES],
            nr_ranges: 0,
            nr_freepages: 0,
            nr_migratepages: 0,
            free_exhausted: false,
            migrated_since_drain: false,
            stats: CompactStats::default(),
        })
    }

    /// Linux `compact_scanners_met`: the free scanner's pageblock is at or
    /// below the migrate scanner's.
    fn scanners_met(&self) -> bool {
        (self.free_pfn >> PAGEBLOCK_ORDER) <= (self.migrate_pfn >> PAGEBLOCK_ORDER)
    }

    /// Whether the migrate scanner is at the start of a pageblock (or of
    /// the zone).
    fn migrate_at_block_start(&self) -> bool {
        self.migrate_pfn == self.zone_start || self.migrate_pfn == pageblock_start(self.migrate_pfn)
    }

    /// Linux `__compact_finished` with `compact_finished`'s mapping of
    /// `COMPACT_NO_SUITABLE_PAGE` to going on: `None` to go on, or how
    /// the run ended.
    fn compact_finished(&self) -> Option<CompactResult> {
        if self.scanners_met() || self.free_exhausted {
            return Some(CompactResult::Complete);
        }
        let order = self.cc.order?;
        // Always finish a pageblock: fewer pageblocks left half used.
        if self.migrate_pfn != pageblock_start(self.migrate_pfn) {
            return None;
        }
        if self.pgdat.compact_block_ready(self.zone_type, order, self.cc.migratetype) {
            return Some(CompactResult::Success);
        }
        None
    }

    /// Linux `suitable_migration_source`: asynchronous direct compaction
    /// only empties pageblocks of the allocation's type (movable ones for
    /// a movable allocation); every other run takes any.
    fn suitable_migration_source(&self, block: u64) -> bool {
        if self.cc.mode != MigrateMode::Async || !self.cc.direct_compaction {
            return true;
        }
        let block_mt = self.pgdat.mem_map().pageblock_migratetype(Pfn::new(block));
        block_mt == self.cc.migratetype
    }

    /// Linux `isolate_migratepages` for one round: lists up to
    /// [`COMPACT_CLUSTER_MAX`] movable-looking pages from the rest of the
    /// migrate scanner's pageblock, or skips a pageblock that is no
    /// suitable source.
    fn isolate_migratepages(&mut self, list: &mut [Pfn; COMPACT_CLUSTER_MAX]) -> usize {
        let block_end = (pageblock_start(self.migrate_pfn) + PAGEBLOCK_NR_PAGES).min(self.zone_end);
        if self.migrate_at_block_start() && !self.suitable_migration_source(pageblock_start(self.migrate_pfn)) {
            self.migrate_pfn = block_end;
            return 0;
        }
        let mut n = 0;
        while self.migrate_pfn < block_end && n < list.len() {
            let pfn = self.migrate_pfn;
            self.stats.migrate_scanned += 1;
            self.migrate_pfn += 1;
            let Some(page) = self.pgdat.pfn_to_page(Pfn::new(pfn)) else { continue };
            if page.test(PageFlags::BUDDY) {
                // Racy read of a free block's order, as in Linux; a wrong
                // value only makes the scan skip or revisit pages. The
                // whole block counts as scanned, even past the pageblock
                // (Linux `isolate_migratepages_block`).
                let order = page.order();
                if order <= MAX_PAGE_ORDER {
                    self.stats.migrate_scanned += (1 << order) - 1;
                    self.migrate_pfn = (pfn + (1 << order)).min(block_end);
                }
                continue;
            }
            if migrate::page_movable(page) {
                list[n] = Pfn::new(pfn);
                n += 1;
            }
        }
        self.stats.isolated += n as u64;
        n
    }

    /// Linux `suitable_migration_target`: not a pageblock starting with a
    /// free block of the wanted order (a whole pageblock for
    /// `compact_memory`), and a MOVABLE one unless every type will do.
    fn suitable_migration_target(&self, block: u64) -> bool {
        let Some(page) = self.pgdat.pfn_to_page(Pfn::new(block)) else { return false };
        let order = self.cc.order.filter(|&order| order > 0).unwrap_or(PAGEBLOCK_ORDER);
        if page.test(PageFlags::BUDDY) && page.order() >= order {
            return false;
        }
        self.cc.ignore_block_suitable
            || self.pgdat.mem_map().pageblock_migratetype(Pfn::new(block)) == MigrateType::Movable
    }

    /// Linux `isolate_freepages`: takes free blocks, walking pageblocks
    /// down from the free scanner's position, until it holds a page for
    /// each page of the round still to move (at least one), its range
    /// array is full, or it meets the migrate scanner. The next call goes
    /// on where this one stopped, inside a pageblock if need be.
    fn isolate_freepages(&mut self) {
        let want = self.nr_migratepages.max(1);
        while self.nr_ranges < FREE_RANGES && self.nr_freepages < want && !self.scanners_met() {
            let block_end = (self.free_pfn + PAGEBLOCK_NR_PAGES).min(self.zone_end);
            if self.free_cursor == self.free_pfn.max(self.zone_start) && !self.suitable_migration_target(self.free_pfn)
            {
                self.free_cursor = block_end;
            }
            while self.free_cursor < block_end && self.nr_ranges < FREE_RANGES && self.nr_freepages < want {
                let pfn = self.free_cursor;
                self.stats.free_scanned += 1;
                self.free_cursor += 1;
                let Some(page) = self.pgdat.pfn_to_page(Pfn::new(pfn)) else { continue };
                if !page.test(PageFlags::BUDDY) {
                    continue;
                }
                if let Some(order) = self.pgdat.isolate_free_page(Pfn::new(pfn)) {
                    self.freepages[self.nr_ranges] = (pfn, 1 << order);
                    self.nr_ranges += 1;
                    self.nr_freepages += 1 << order;
                    self.stats.isolated += 1 << order;
                    self.free_cursor = pfn + (1 << order);
                }
            }
            if self.free_cursor >= block_end {
                // On to the pageblock below; at the zone's first block the
                // scanners have met (the migrate scanner is in or above it).
                self.free_pfn = self.free_pfn.saturating_sub(PAGEBLOCK_NR_PAGES);
                self.free_cursor = self.free_pfn.max(self.zone_start);
            }
        }
    }

    /// Gives back every isolated free page not used (Linux
    /// `release_free_list`).
    fn release_freepages(&mut self) {
        for &(start, count) in &self.freepages[..self.nr_ranges] {
            for pfn in start..start + count {
                // The pages are ours and clean; a report would mean a bug
                // elsewhere, and the allocator logs and leaks the page.
                // SAFETY: isolated free pages are owned by this control
                // (one reference each) and were never handed out.
                let _ = unsafe { self.pgdat.free_pages(Pfn::new(pfn), 0) };
            }
        }
        self.nr_ranges = 0;
        self.nr_freepages = 0;
    }

    /// Linux `compact_zone`: for an allocation, success at once if it
    /// would already succeed and [`CompactResult::Skipped`] if compaction
    /// has no room ([`compaction_suitable`]); then rounds of isolating and
    /// migrating until [`CompactControl::compact_finished`] or `mms` ends
    /// the run; then the unused free pages go back and the events are
    /// counted.
    fn compact<'m, F: PteFormat + 'm, A: VmaAlloc + 'm>(&mut self, mms: &dyn RmapMms<'m, F, A>) -> CompactResult {
        if let Some(order) = self.cc.order {
            let zone = self.pgdat.zone(self.zone_type);
            let mark = zone.watermark(self.cc.alloc_flags.watermark());
            if self.pgdat.zone_watermark_ok(zone, order, mark, self.cc.highest_zoneidx, self.cc.alloc_flags) {
                return CompactResult::Success;
            }
            if !compaction_suitable(self.pgdat, self.zone_type, order, self.cc.highest_zoneidx) {
                return CompactResult::Skipped;
            }
        }
        self.pgdat.lru_add_drain();
        self.pgdat.drain_all_pages();
        let mut list = [Pfn::new(0); COMPACT_CLUSTER_MAX];
        let result = loop {
            if let Some(result) = self.compact_finished() {
                break result;
            }
            if self.migrate_at_block_start() && mms.cond_resched().is_break() {
                self.stats.contended = true;
                break CompactResult::Contended;
            }
            let n = self.isolate_migratepages(&mut list);
            if n > 0 {
                self.nr_migratepages = n as u64;
                let done = migrate::migrate_pages(self.pgdat, mms, &list[..n], self);
                self.nr_migratepages = 0;
                self.stats.migrated += done.succeeded;
                self.stats.failed += done.failed;
                self.stats.skipped += done.skipped;
                self.migrated_since_drain |= done.succeeded > 0;
            }
            // Linux's `check_drain`: the pages freed behind the scanner
            // merge where compact_finished looks.
            if self.cc.order.is_some()
                && self.migrated_since_drain
                && self.migrate_pfn == pageblock_start(self.migrate_pfn)
            {
                self.pgdat.drain_all_pages();
                self.migrated_since_drain = false;
            }
        };
        self.release_freepages();
        self.pgdat.drain_all_pages();
        self.pgdat.count_vm_events(VmEventItem::CompactMigrateScanned, self.stats.migrate_scanned);
        self.pgdat.count_vm_events(VmEventItem::CompactFreeScanned, self.stats.free_scanned);
        self.pgdat.count_vm_events(VmEventItem::CompactIsolated, self.stats.isolated);
        result
    }
}

impl MigrationTarget for CompactControl<'_, '_> {
    /// Linux `compaction_alloc`: an isolated free page, isolating more when
    /// none is left.
    fn alloc(&mut self) -> Option<Pfn> {
        if self.nr_ranges == 0 {
            self.isolate_freepages();
        }
        let Some(last) = self.nr_ranges.checked_sub(1) else {
            self.free_exhausted = true;
            return None;
        };
        let (start, count) = &mut self.freepages[last];
        let pfn = *start;
        *start += 1;
        *count -= 1;
        if *count == 0 {
            self.nr_ranges = last;
        }
        self.nr_freepages -= 1;
        self.nr_migratepages = self.nr_migratepages.saturating_sub(1);
        Some(Pfn::new(pfn))
    }

    /// Linux `compaction_free`: back on the isolated list.
    unsafe fn free(&mut self, pfn: Pfn) {
        if self.nr_ranges < FREE_RANGES {
            self.freepages[self.nr_ranges] = (pfn.as_u64(), 1);
            self.nr_ranges += 1;
            self.nr_freepages += 1;
        } else {
            // Returned at once; see release_freepages.
            // SAFETY: the trait's contract: migration hands back a page of
            // ours that it neither mapped nor keeps a pointer to.
            let _ = unsafe { self.pgdat.free_pages(pfn, 0) };
        }
    }
}

/// Compacts one zone until its scanners meet (Linux `compact_zone` with
/// `compact_memory`'s control: order -1, `MIGRATE_SYNC`, whole zone) or
/// `mms` stops it. `mms` reaches the address spaces the pages' reverse
/// maps name.
pub fn compact_zone<'a, F: PteFormat + 'a, A: VmaAlloc + 'a>(
    pgdat: &PgData<'_>,
    zone_type: ZoneType,
    mms: &dyn RmapMms<'a, F, A>,
) -> CompactStats {
    let Some(mut cc) = CompactControl::new(pgdat, zone_type, CompactFor::COMPACT_MEMORY) else {
        return CompactStats::default();
    };
    cc.compact(mms);
    cc.stats
}

/// Compacts every populated zone, lowest first (Linux `compact_node`, what
/// writing to `/proc/sys/vm/compact_memory` does for each node), until
/// `mms` stops the run.
pub fn compact_node<'a, F: PteFormat + 'a, A: VmaAlloc + 'a>(
    pgdat: &PgData<'_>,
    mms: &dyn RmapMms<'a, F, A>,
) -> CompactStats {
    let mut stats = CompactStats::default();
    for zone in pgdat.zones() {
        stats.add(compact_zone(pgdat, zone.zone_type(), mms));
        if stats.contended {
            break;
        }
    }
    stats
}

/// Linux `compact_zone_order`: one zone's direct compaction for
/// `request`.
fn compact_zone_order<'a, F: PteFormat + 'a, A: VmaAlloc + 'a>(
    pgdat: &PgData<'_>,
    zone_type: ZoneType,
    request: &CompactRequest,
    mms: &dyn RmapMms<'a, F, A>,
) -> CompactResult {
    let cc = CompactFor {
        order: Some(request.order),
        migratetype: request.gfp.migratetype(),
        highest_zoneidx: request.gfp.zone(),
        alloc_flags: request.alloc_flags,
        mode: if request.prio == CompactPriority::Async { MigrateMode::Async } else { MigrateMode::SyncLight },
        direct_compaction: true,
        ignore_block_suitable: request.prio == MIN_COMPACT_PRIORITY,
    };
    match CompactControl::new(pgdat, zone_type, cc) {
        Some(mut cc) => cc.compact(mms),
        None => CompactResult::Skipped,
    }
}

/// Linux `try_to_compact_pages`: direct compaction for an allocation,
/// each zone it may use from the highest down (see the module doc); the
/// greatest [`CompactResult`] over the zones. An allocation that may not
/// do I/O is skipped (migration might need it, Linux says). `mms`
/// reaches the address spaces the pages' reverse maps name.
pub fn try_to_compact_pages<'a, F: PteFormat + 'a, A: VmaAlloc + 'a>(
    pgdat: &PgData<'_>,
    request: &CompactRequest,
    mms: &dyn RmapMms<'a, F, A>,
) -> CompactResult {
    if !request.gfp.contains(Gfp::IO) {
        return CompactResult::Skipped;
    }
    let mut rc = CompactResult::Skipped;
    let highest = request.gfp.zone();
    for zone in pgdat.zones()[..=highest as usize].iter().rev().filter(|z| z.managed_pages() > 0) {
        if request.prio > MIN_COMPACT_PRIORITY && compaction_deferred(zone, request.order) {
            rc = rc.max(CompactResult::Deferred);
            continue;
        }
        let status = compact_zone_order(pgdat, zone.zone_type(), request, mms);
        rc = rc.max(status);
        match status {
            CompactResult::Success => {
                // Likely, not certain: the allocator resets the count if
                // it gets its page.
                compaction_defer_reset(zone, request.order, false);
                break;
            }
            CompactResult::Complete if request.prio != CompactPriority::Async => {
                defer_compaction(zone, request.order);
            }
            CompactResult::Contended => break,
            _ => {}
        }
    }
    rc
}

/// Linux `kcompactd_node_suitable`: some zone up to `highest` cannot
/// serve `order` at its min watermark, and compaction would have room
/// there.
fn kcompactd_node_suitable(pgdat: &PgData<'_>, order: u32, highest: ZoneType) -> bool {
    pgdat.zones()[..=highest as usize].iter().filter(|z| z.present_pages() > 0).any(|zone| {
        let mark = zone.watermark(Watermark::Min);
        !pgdat.zone_watermark_ok(zone, order, mark, highest, AllocFlags::MIN)
            && compaction_suitable(pgdat, zone.zone_type(), order, highest)
    })
}

/// Linux `wakeup_kcompactd`: records that an allocation of `order` with
/// `highest` as its highest zone wants kcompactd, and wakes the
/// registered thread if the node needs it ([`kcompactd_node_suitable`]).
/// Never sleeps.
pub fn wakeup_kcompactd(pgdat: &PgData<'_>, order: u32, highest: ZoneType) {
    if order == 0 {
        return;
    }
    let state = pgdat.kcompactd();
    state.max_order.fetch_max(order, Relaxed);
    state.highest_zoneidx.fetch_min(highest as u32, Relaxed);
    let Some(thread) = state.thread.get() else { return };
    if kcompactd_node_suitable(pgdat, state.max_order.load(Relaxed), state.highest_zoneidx()) {
        thread.wakeup();
    }
}

/// What kswapd does on its way back to sleep for kcompactd (Linux's call
/// of `wakeup_kcompactd` in `kswapd_try_to_sleep`): once the node is
/// balanced, the order and highest zone allocations woke kswapd for since
/// it last looked go to [`wakeup_kcompactd`]. Never sleeps.
pub fn wakeup_kcompactd_from_kswapd(pgdat: &PgData<'_>) {
    let (order, highest) = pgdat.take_kswapd_order();
    if crate::vmscan::pgdat_balanced(pgdat) {
        wakeup_kcompactd(pgdat, order, highest);
    }
}

/// kcompactd's work (Linux `kcompactd_do_work`): for the order and
/// highest zone it was woken for, every zone up to that one that is not
/// deferred, cannot serve the order at its min watermark and has room
/// ([`compaction_suitable`]) is compacted with `MIGRATE_SYNC_LIGHT`
/// until a block of the order is free; a complete run without one drains
/// the per-cpu lists and defers the zone. Then the request is cleared,
/// unless a larger one came meanwhile. `mms` reaches the address spaces
/// the pages' reverse maps name, and may stop the work.
pub fn kcompactd_do_work<'a, F: PteFormat + 'a, A: VmaAlloc + 'a>(
    pgdat: &PgData<'_>,
    mms: &dyn RmapMms<'a, F, A>,
) -> CompactStats {
    let state = pgdat.kcompactd();
    let order = state.max_order.load(Relaxed);
    let highest = state.highest_zoneidx();
    pgdat.count_vm_event(VmEventItem::CompactDaemonWake);
    let mut stats = CompactStats::default();
    for zone in pgdat.zones()[..=highest as usize].iter().filter(|z| z.present_pages() > 0) {
        let zone_type = zone.zone_type();
        if compaction_deferred(zone, order)
            || pgdat.zone_watermark_ok(zone, order, zone.watermark(Watermark::Min), zone_type, AllocFlags::MIN)
            || !compaction_suitable(pgdat, zone_type, order, zone_type)
        {
            continue;
        }
        let cc = CompactFor {
            order: Some(order),
            migratetype: GFP_KERNEL.migratetype(),
            highest_zoneidx: highest,
            alloc_flags: AllocFlags::MIN,
            mode: MigrateMode::SyncLight,
            direct_compaction: false,
            ignore_block_suitable: false,
        };
        let Some(mut cc) = CompactControl::new(pgdat, zone_type, cc) else { continue };
        match cc.compact(mms) {
            CompactResult::Success => compaction_defer_reset(zone, order, false),
            CompactResult::Complete => {
                pgdat.drain_all_pages();
                defer_compaction(zone, order);
            }
            _ => {}
        }
        pgdat.count_vm_events(VmEventItem::CompactDaemonMigrateScanned, cc.stats.migrate_scanned);
        pgdat.count_vm_events(VmEventItem::CompactDaemonFreeScanned, cc.stats.free_scanned);
        stats.add(cc.stats);
        if stats.contended {
            break;
        }
    }
    let _ = state.max_order.try_update(Relaxed, Relaxed, |now| (now <= order).then_some(0));
    let _ = state
        .highest_zoneidx
        .try_update(Relaxed, Relaxed, |now| (now >= highest as u32).then_some(MAX_NR_ZONES as u32 - 1));
    stats
}

#[cfg(test)]
mod tests;
