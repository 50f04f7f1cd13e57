//! Memory compaction: moving movable pages out of the way so that free
//! memory coalesces into large blocks (Linux `mm/compaction.c`:
//! `compact_zone`, `isolate_migratepages_block`, `isolate_freepages_block`,
//! `compaction_alloc`/`compaction_free`, `compact_node` behind
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
//! The run ends when the scanners meet (their pageblocks cross, Linux
//! `compact_scanners_met`), the free scanner finds nothing more, or the
//! caller's [`RmapMms::cond_resched`], called before each pageblock the
//! migrate scanner starts, stops it ([`CompactStats::contended`]). The free
//! scanner only takes pages from MOVABLE pageblocks and leaves a free block
//! of a whole pageblock or more alone (Linux `suitable_migration_target`),
//! so compaction never breaks up what it tries to build. Like
//! `compact_memory` (`MIGRATE_SYNC`, whole zone, skip hints ignored), the
//! migrate scanner takes pages from pageblocks of every type.
//!
//! Counters: `compact_migrate_scanned` and `compact_free_scanned` per page
//! looked at (a free block the migrate scanner steps over counts all its
//! pages, as in Linux), `compact_isolated` per page either scanner
//! isolated, and the migration's `pgmigrate_success`/`pgmigrate_fail`
//! (a listed page found unmapped when isolated is skipped, counted in
//! neither: [`CompactStats::skipped`]).
//!
//! # Locking
//! No lock is held across a round, nor when [`RmapMms::cond_resched`] may
//! reschedule (isolated free pages stay isolated meanwhile, as in Linux).
//! The free scanner's lockless look at a page is rechecked under the zone
//! lock when the block is taken; the migrate scanner's under the page
//! lock and the owning address space's page-table lock when the page is
//! moved. Lock order (through [`crate::migrate`]): mmap lock (read) ->
//! page lock -> page-table lock -> zone lock. Two compactions of one zone at once are the caller's to
//! prevent (Linux serializes `compact_memory` writers on nothing either,
//! but its isolation flags keep them off each other's pages; the kernel
//! runs one at a time).
//!
//! # Differences from Linux
//! - Only on request (the console's `compact`, Linux's `compact_memory`):
//!   no direct compaction in the allocation slow path, no kcompactd, no
//!   proactive compaction, no deferral or skip bits, no `compact_stall`
//!   family of counters.
//! - The caller's chance to reschedule or stop comes once per migrate
//!   scanner pageblock (Linux's every `COMPACT_CLUSTER_MAX` pages, and
//!   with the zone and LRU locks dropped, which we never hold there).
//! - Movable pages are user pages, anonymous or page cache, however many
//!   ptes map them (found through [`crate::rmap`]); see
//!   [`crate::migrate`] for what it cannot move.
//! - Isolated migrate pages are not taken off an LRU (there is none) and
//!   `NR_ISOLATED_*` is not counted; a page is isolated only in the sense
//!   that the scanner listed it.
//! - Per-cpu lists are drained before the free scanner starts and after
//!   the run, so that free pages sitting there are seen and the freed
//!   pages merge at once (Linux drains in the direct-compaction path).

use crate::addr::Pfn;
use crate::migrate::{self, MigrationTarget};
use crate::mmzone::{MAX_PAGE_ORDER, MigrateType, ZoneType};
use crate::page::{PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER};
use crate::page_alloc::PgData;
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

/// One zone's compaction in progress (Linux `struct compact_control`).
struct CompactControl<'p, 'a> {
    pgdat: &'p PgData<'a>,
    zone_start: u64,
    zone_end: u64,
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
    stats: CompactStats,
}

fn pageblock_start(pfn: u64) -> u64 {
    pfn & !(PAGEBLOCK_NR_PAGES - 1)
}

impl<'p, 'a> CompactControl<'p, 'a> {
    /// A compaction of `zone_type` from its ends; `None` for an empty zone.
    fn new(pgdat: &'p PgData<'a>, zone_type: ZoneType) -> Option<Self> {
        let zone = pgdat.zone(zone_type);
        if zone.present_pages() == 0 {
            return None;
        }
        let zone_start = zone.start_pfn();
        let zone_end = zone_start + zone.spanned_pages();
        let last_block = pageblock_start(zone_end - 1);
        Some(CompactControl {
            pgdat,
            zone_start,
            zone_end,
            migrate_pfn: zone_start,
            free_pfn: last_block,
            free_cursor: last_block.max(zone_start),
            freepages: [(0, 0); FREE_RANGES],
            nr_ranges: 0,
            nr_freepages: 0,
            nr_migratepages: 0,
            free_exhausted: false,
            stats: CompactStats::default(),
        })
    }

    /// Linux `compact_scanners_met`: the free scanner's pageblock is at or
    /// below the migrate scanner's.
    fn scanners_met(&self) -> bool {
        (self.free_pfn >> PAGEBLOCK_ORDER) <= (self.migrate_pfn >> PAGEBLOCK_ORDER)
    }

    /// Linux `isolate_migratepages` for one round: lists up to
    /// [`COMPACT_CLUSTER_MAX`] movable-looking pages from the rest of the
    /// migrate scanner's pageblock.
    fn isolate_migratepages(&mut self, list: &mut [Pfn; COMPACT_CLUSTER_MAX]) -> usize {
        let block_end = (pageblock_start(self.migrate_pfn) + PAGEBLOCK_NR_PAGES).min(self.zone_end);
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

    /// Linux `suitable_migration_target`: a MOVABLE pageblock that is not
    /// one free block already.
    fn suitable_migration_target(&self, block: u64) -> bool {
        let Some(page) = self.pgdat.pfn_to_page(Pfn::new(block)) else { return false };
        if page.test(PageFlags::BUDDY) && page.order() >= PAGEBLOCK_ORDER {
            return false;
        }
        self.pgdat.mem_map().pageblock_migratetype(Pfn::new(block)) == MigrateType::Movable
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

    /// Linux `compact_zone`'s loop: rounds of isolating and migrating until
    /// the scanners meet, the free scanner runs dry, or `mms` stops the
    /// run; then the unused free pages go back and the events are counted.
    fn compact<'m, F: PteFormat + 'm, A: VmaAlloc + 'm>(&mut self, mms: &dyn RmapMms<'m, F, A>) {
        self.pgdat.drain_all_pages();
        let mut list = [Pfn::new(0); COMPACT_CLUSTER_MAX];
        while !self.scanners_met() && !self.free_exhausted {
            let block_start =
                self.migrate_pfn == self.zone_start || self.migrate_pfn == pageblock_start(self.migrate_pfn);
            if block_start && mms.cond_resched().is_break() {
                self.stats.contended = true;
                break;
            }
            let n = self.isolate_migratepages(&mut list);
            if n == 0 {
                continue;
            }
            self.nr_migratepages = n as u64;
            let done = migrate::migrate_pages(self.pgdat, mms, &list[..n], self);
            self.nr_migratepages = 0;
            self.stats.migrated += done.succeeded;
            self.stats.failed += done.failed;
            self.stats.skipped += done.skipped;
        }
        self.release_freepages();
        self.pgdat.drain_all_pages();
        self.pgdat.count_vm_events(VmEventItem::CompactMigrateScanned, self.stats.migrate_scanned);
        self.pgdat.count_vm_events(VmEventItem::CompactFreeScanned, self.stats.free_scanned);
        self.pgdat.count_vm_events(VmEventItem::CompactIsolated, self.stats.isolated);
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
    let Some(mut cc) = CompactControl::new(pgdat, zone_type) else { return CompactStats::default() };
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

#[cfg(test)]
mod tests;
