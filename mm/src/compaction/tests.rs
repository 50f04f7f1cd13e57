//! Host tests of compaction: a fragmented address space on a simulated
//! machine is compacted into high-order free blocks without losing a byte,
//! by `compact_memory`'s whole-zone run, by direct compaction (which stops
//! at the first block of the order, defers and skips by Linux's rules) and
//! by kcompactd.

use std::cell::RefCell;
use std::ops::ControlFlow;

use crate::interval_tree::MmId;
use crate::rmap::RmapMms;

use uapi::mman::MADV_DONTNEED;

use super::*;
use crate::gfp::{GFP_HIGHUSER_MOVABLE, GFP_KERNEL};
use crate::migrate::tests::{Env, Mms, P, X, pfn_at, with_env};
use crate::mmap::MmCounter;
use crate::mmzone::NR_PAGE_ORDERS;
use crate::vmstat::NodeStatItem;

/// Free memory in blocks of at least pageblock order, in pageblocks, all
/// zones and types.
fn free_pageblocks(env: &Env<'_>) -> u64 {
    env.pgdat.drain_all_pages();
    env.pgdat
        .zones()
        .iter()
        .map(|z| {
            let counts = env.pgdat.free_counts(z.zone_type());
            (PAGEBLOCK_ORDER as usize..NR_PAGE_ORDERS)
                .map(|order| counts.blocks[order].iter().sum::<u64>() << (order - PAGEBLOCK_ORDER as usize))
                .sum::<u64>()
        })
        .sum()
}

fn pattern(i: u64) -> u8 {
    (i % 251) as u8 + 1
}

#[test]
fn compaction_coalesces_a_fragmented_address_space_and_keeps_every_byte() {
    with_env(|env| {
        const PAGES: u64 = 4096; // 16 MiB
        let mm = RefCell::new(env.mm());
        env.populate(&mut mm.borrow_mut(), PAGES, pattern);
        // Every other page goes: 8 MiB of single-page holes.
        for i in (1..PAGES).step_by(2) {
            mm.borrow_mut().madvise(X + i * P, P, MADV_DONTNEED).unwrap();
        }
        let before_blocks = free_pageblocks(env);
        let free_before = crate::sim::free_pages_drained(env.pgdat);
        let anon = env.pgdat.node_page_state(NodeStatItem::NrAnonMapped);
        let stats = compact_node(env.pgdat, &Mms::new(env, &[&mm]));
        let after_blocks = free_pageblocks(env);
        assert!(stats.migrated >= PAGES / 4, "{stats:?}");
        assert_eq!(stats.failed, 0, "{stats:?}");
        assert!(after_blocks >= before_blocks + 2, "free pageblocks {before_blocks} -> {after_blocks} ({stats:?})");
        assert_eq!(env.pgdat.nr_free_pages(), free_before, "compaction neither leaks nor frees user pages");
        assert_eq!(env.pgdat.node_page_state(NodeStatItem::NrAnonMapped), anon);
        let mm = mm.into_inner();
        assert_eq!(mm.counter(MmCounter::AnonPages), PAGES / 2);
        for i in (0..PAGES).step_by(2) {
            let bytes = env.ram.page(pfn_at(&mm, X + i * P));
            assert!(bytes.iter().all(|&b| b == pattern(i)), "page {i} lost its data");
        }
        for zone in env.pgdat.zones() {
            env.pgdat.check_zone(zone.zone_type()).unwrap();
        }
        let ev = |item| env.pgdat.all_vm_events(item);
        assert_eq!(ev(VmEventItem::PgmigrateSuccess), stats.migrated);
        assert_eq!(ev(VmEventItem::CompactMigrateScanned), stats.migrate_scanned);
        assert_eq!(ev(VmEventItem::CompactFreeScanned), stats.free_scanned);
        assert_eq!(ev(VmEventItem::CompactIsolated), stats.isolated);
        assert!(stats.isolated >= 2 * stats.migrated, "both scanners count isolated pages");
        drop(mm);
    });
}

#[test]
fn compaction_moves_pages_shared_after_fork_and_both_keep_their_data() {
    with_env(|env| {
        const PAGES: u64 = 2048;
        let parent = RefCell::new(env.mm());
        env.populate(&mut parent.borrow_mut(), PAGES, pattern);
        for i in (1..PAGES).step_by(2) {
            parent.borrow_mut().madvise(X + i * P, P, MADV_DONTNEED).unwrap();
        }
        let child = RefCell::new(env.mm());
        parent.borrow_mut().dup_mmap(&mut child.borrow_mut()).unwrap();
        let pfns: Vec<Pfn> = (0..PAGES).step_by(2).map(|i| pfn_at(&parent.borrow(), X + i * P)).collect();
        let stats = compact_node(env.pgdat, &Mms::new(env, &[&parent, &child]));
        assert!(stats.migrated >= PAGES / 4, "{stats:?}");
        assert_eq!(stats.failed, 0, "{stats:?}");
        assert_eq!(env.pgdat.all_vm_events(VmEventItem::PgmigrateSuccess), stats.migrated);
        let mut moved = 0;
        env.pgdat.lru_add_drain_all();
        for (n, &pfn) in pfns.iter().enumerate() {
            let i = 2 * n as u64;
            let now = pfn_at(&parent.borrow(), X + i * P);
            assert_eq!(pfn_at(&child.borrow(), X + i * P), now, "page {i} shared by both still");
            assert!(env.ram.page(now).iter().all(|&b| b == pattern(i)), "page {i} kept its data");
            let page = env.pgdat.pfn_to_page(now).unwrap();
            assert_eq!((page.refcount(), page.mapcount()), (2, 2), "page {i}");
            moved += u64::from(now != pfn);
        }
        assert_eq!(moved, stats.migrated);
        // Copy-on-write still separates them.
        crate::mmap::tests::write(env, &mut child.borrow_mut(), X, 0xee).unwrap();
        assert!(env.ram.page(pfn_at(&parent.borrow(), X)).iter().all(|&b| b == pattern(0)));
    });
}

/// A walk that asks compaction to stop at its `stop_at`-th pageblock.
struct Stopping<'m, 'a> {
    mms: Mms<'m, 'a>,
    calls: std::cell::Cell<u32>,
    stop_at: u32,
}

impl<'a> RmapMms<'a, crate::pgtable::X86PteFormat, &'a crate::migrate::tests::TestAlloc> for Stopping<'_, 'a> {
    fn vma_alloc(&self) -> &&'a crate::migrate::tests::TestAlloc {
        self.mms.vma_alloc()
    }

    fn with_mms(
        &self,
        ids: &[MmId],
        all: bool,
        f: &mut crate::rmap::WithMms<'_, 'a, crate::pgtable::X86PteFormat, &'a crate::migrate::tests::TestAlloc>,
    ) {
        self.mms.with_mms(ids, all, f);
    }

    fn folio_waits(&self) -> &dyn crate::arch::FolioWaitTable {
        self.mms.folio_waits()
    }

    fn cond_resched(&self) -> ControlFlow<()> {
        self.calls.set(self.calls.get() + 1);
        if self.calls.get() == self.stop_at { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }
}

/// Maps `pages` pages at [`X`] with [`pattern`] and frees every other one.
fn fragment<'a>(env: &Env<'a>, mm: &RefCell<crate::migrate::tests::Mm<'a>>, pages: u64) {
    env.populate(&mut mm.borrow_mut(), pages, pattern);
    for i in (1..pages).step_by(2) {
        mm.borrow_mut().madvise(X + i * P, P, MADV_DONTNEED).unwrap();
    }
}

#[test]
fn compaction_stops_when_the_walk_says_so_and_loses_nothing() {
    with_env(|env| {
        const PAGES: u64 = 4096;
        let mm = RefCell::new(env.mm());
        fragment(env, &mm, PAGES);
        let free_before = crate::sim::free_pages_drained(env.pgdat);
        let mms = [&mm];
        let stopping = Stopping { mms: Mms::new(env, &mms), calls: std::cell::Cell::new(0), stop_at: 3 };
        let stats = compact_node(env.pgdat, &stopping);
        assert!(stats.contended, "{stats:?}");
        assert_eq!(stopping.calls.get(), 3, "asked once per pageblock, and no zone after the stop");
        assert_eq!(env.pgdat.nr_free_pages(), free_before, "the isolated free pages went back");
        // A full run afterwards finds the pages where the stopped one left
        // them, and every byte is still there.
        let stats = compact_node(env.pgdat, &Mms::new(env, &[&mm]));
        assert!(!stats.contended && stats.migrated > 0, "{stats:?}");
        for i in (0..PAGES).step_by(2) {
            assert!(env.ram.page(pfn_at(&mm.borrow(), X + i * P)).iter().all(|&b| b == pattern(i)), "page {i}");
        }
        for zone in env.pgdat.zones() {
            env.pgdat.check_zone(zone.zone_type()).unwrap();
        }
    });
}

#[test]
fn free_scanner_takes_only_as_many_pages_as_the_round_needs() {
    with_env(|env| {
        let mm = RefCell::new(env.mm());
        fragment(env, &mm, 2048);
        let zone = env.pgdat.pfn_to_page(pfn_at(&mm.borrow(), X)).unwrap().zone();
        let mut cc = CompactControl::new(env.pgdat, zone, CompactFor::COMPACT_MEMORY).unwrap();
        env.pgdat.drain_all_pages();
        for want in [1, 5, 20] {
            cc.nr_migratepages = want;
            cc.isolate_freepages();
            assert!(cc.nr_freepages >= want, "wanted {want}, isolated {}", cc.nr_freepages);
            let (_, last) = cc.freepages[cc.nr_ranges - 1];
            assert!(cc.nr_freepages - last < want, "wanted {want}, went on to isolate {} pages", cc.nr_freepages);
            cc.release_freepages();
        }
    });
}

#[test]
fn migrate_scanner_counts_every_page_of_a_free_block_it_steps_over() {
    with_env(|env| {
        // Nothing to move: the migrate scanner crosses the whole zone, most
        // of it free blocks of high order.
        for zone in env.pgdat.zones().iter().filter(|z| z.present_pages() > 0) {
            let mut cc = CompactControl::new(env.pgdat, zone.zone_type(), CompactFor::COMPACT_MEMORY).unwrap();
            cc.compact(&Mms::new(env, &[]));
            assert_eq!(cc.stats.migrated, 0);
            assert!(
                cc.stats.migrate_scanned >= cc.migrate_pfn - cc.zone_start,
                "{} pages scanned over {} pfns",
                cc.stats.migrate_scanned,
                cc.migrate_pfn - cc.zone_start
            );
        }
    });
}

#[test]
fn deferral_skips_one_then_two_then_up_to_64_attempts_and_a_success_lets_orders_through() {
    let sim = crate::sim::Sim::flat(32 << 20);
    let pgdat = sim.pgdat(1);
    let zone = pgdat.zone(ZoneType::Dma32);
    // Never failed: nothing is deferred.
    assert!(!compaction_deferred(zone, 4));
    // Each failure doubles the attempts skipped before the next run.
    for shift in 1..=COMPACT_MAX_DEFER_SHIFT + 2 {
        defer_compaction(zone, 4);
        let skipped = (0..).take_while(|_| compaction_deferred(zone, 4)).count();
        let expected = (1usize << shift.min(COMPACT_MAX_DEFER_SHIFT)) - 1;
        assert_eq!(skipped, expected, "after {shift} failures");
    }
    assert_eq!(zone.compact_defer_shift.load(Relaxed), COMPACT_MAX_DEFER_SHIFT);
    // Until a success, every order is deferred (Linux's field starts at
    // 0); after one, orders below the lowest that failed since are not.
    defer_compaction(zone, 4);
    assert!(compaction_deferred(zone, 1));
    compaction_defer_reset(zone, 5, false);
    defer_compaction(zone, 4);
    assert!(!compaction_deferred(zone, 3));
    assert!(compaction_deferred(zone, 9));
    // A compaction that made an order-6 block lets orders up to 6 through,
    // but leaves the count: the allocation may still fail.
    compaction_defer_reset(zone, 6, false);
    assert!(!compaction_deferred(zone, 6));
    assert!(compaction_deferred(zone, 7));
    assert_eq!(zone.compact_defer_shift.load(Relaxed), COMPACT_MAX_DEFER_SHIFT);
    // An allocation that got its page resets the count.
    compaction_defer_reset(zone, 6, true);
    assert_eq!(zone.compact_defer_shift.load(Relaxed), 0);
    assert!(!compaction_deferred(zone, 7));
}

/// Free counts with `blocks[order]` free blocks of type movable.
fn counts(blocks: &[(usize, u64)]) -> FreeCounts {
    let mut counts = FreeCounts::default();
    for &(order, n) in blocks {
        counts.blocks[order][MigrateType::Movable as usize] = n;
    }
    counts
}

#[test]
fn fragmentation_index_tells_fragmentation_from_a_lack_of_memory() {
    assert_eq!(fragmentation_index(&counts(&[]), 4), 0, "no free memory");
    assert_eq!(fragmentation_index(&counts(&[(0, 100), (5, 1)]), 4), -1000, "a block is free");
    // 1024 single pages: 1000 - (1000 + 1024 * 1000 / 16) / 1024 = 937.
    assert_eq!(fragmentation_index(&counts(&[(0, 1024)]), 4), 937);
    // Two order-3 blocks: half an order-4 block's memory at all.
    assert_eq!(fragmentation_index(&counts(&[(3, 2)]), 4), 0);
    assert!(fragmentation_index(&counts(&[(3, 2)]), 4) <= EXTFRAG_THRESHOLD);
}

/// Takes every free block of `order` or more the allocator gives to
/// `gfp` (without `__GFP_MEMALLOC`, zones keep the blocks below their
/// watermarks): what is left free is frag-style holes.
fn take_free_blocks(pgdat: &PgData<'_>, gfp: Gfp, order: u32) -> Vec<Pfn> {
    let mut taken = Vec::new();
    while let Some(pfn) = pgdat.alloc_pages(gfp, order) {
        taken.push(pfn);
    }
    taken
}

fn free_blocks(pgdat: &PgData<'_>, taken: Vec<Pfn>, order: u32) {
    for pfn in taken {
        // SAFETY: the test's block, never mapped or pointed into.
        unsafe { pgdat.free_pages(pfn, order) }.unwrap();
    }
}

/// The zone user pages come from.
fn user_zone(env: &Env<'_>, mm: &RefCell<crate::migrate::tests::Mm<'_>>) -> ZoneType {
    env.pgdat.pfn_to_page(pfn_at(&mm.borrow(), X)).unwrap().zone()
}

fn request(gfp: Gfp, order: u32, prio: CompactPriority) -> CompactRequest {
    CompactRequest { gfp, order, alloc_flags: AllocFlags::MIN, prio }
}

#[test]
fn direct_compaction_stops_as_soon_as_a_block_of_the_order_is_free_and_keeps_every_byte() {
    with_env(|env| {
        const PAGES: u64 = 4096;
        let mm = RefCell::new(env.mm());
        fragment(env, &mm, PAGES);
        let zone = user_zone(env, &mm);
        let taken = take_free_blocks(env.pgdat, Gfp::NOWARN | Gfp::MEMALLOC, 4);
        assert!(compaction_suitable(env.pgdat, zone, 4, zone), "holes enough to migrate into");
        let list = [&mm];
        let mms = Mms::new(env, &list);
        let req = request(GFP_HIGHUSER_MOVABLE, 4, CompactPriority::SyncLight);
        let result = try_to_compact_pages(env.pgdat, &req, &mms);
        assert_eq!(result, CompactResult::Success);
        let migrated = env.pgdat.all_vm_events(VmEventItem::PgmigrateSuccess);
        assert!(migrated > 0 && migrated < PAGES / 8, "stopped early: {migrated} pages moved");
        assert!(env.pgdat.compact_block_ready(zone, 4, MigrateType::Movable));
        let pfn = env.pgdat.alloc_pages(GFP_HIGHUSER_MOVABLE, 4).expect("the block compaction made");
        // A success lets order 4 through at once next time.
        assert_eq!(env.pgdat.zone(zone).compact_order_failed.load(Relaxed), 5);
        for i in (0..PAGES).step_by(2) {
            assert!(env.ram.page(pfn_at(&mm.borrow(), X + i * P)).iter().all(|&b| b == pattern(i)), "page {i}");
        }
        // SAFETY: the test's block.
        unsafe { env.pgdat.free_pages(pfn, 4) }.unwrap();
        free_blocks(env.pgdat, taken, 4);
        for zone in env.pgdat.zones() {
            env.pgdat.check_zone(zone.zone_type()).unwrap();
        }
    });
}

#[test]
fn an_allocation_that_would_already_succeed_compacts_nothing() {
    with_env(|env| {
        let mm = RefCell::new(env.mm());
        fragment(env, &mm, 1024);
        let req = request(GFP_HIGHUSER_MOVABLE, 4, CompactPriority::SyncFull);
        assert_eq!(try_to_compact_pages(env.pgdat, &req, &Mms::new(env, &[&mm])), CompactResult::Success);
        assert_eq!(env.pgdat.all_vm_events(VmEventItem::CompactMigrateScanned), 0);
        // Nor does one that may not do I/O.
        let req = request(GFP_HIGHUSER_MOVABLE - Gfp::IO, 4, CompactPriority::SyncFull);
        assert_eq!(try_to_compact_pages(env.pgdat, &req, &Mms::new(env, &[&mm])), CompactResult::Skipped);
    });
}

#[test]
fn asynchronous_compaction_for_an_unmovable_allocation_leaves_movable_pageblocks_alone() {
    with_env(|env| {
        let mm = RefCell::new(env.mm());
        fragment(env, &mm, 2048);
        let taken = take_free_blocks(env.pgdat, Gfp::NOWARN | Gfp::MEMALLOC, 4);
        let list = [&mm];
        let mms = Mms::new(env, &list);
        let result = try_to_compact_pages(env.pgdat, &request(GFP_KERNEL, 4, CompactPriority::Async), &mms);
        assert_eq!(result, CompactResult::Complete, "the user pages sit in movable pageblocks");
        assert_eq!(env.pgdat.all_vm_events(VmEventItem::PgmigrateSuccess), 0);
        let zone = env.pgdat.zone(user_zone(env, &mm));
        assert_eq!(zone.compact_defer_shift.load(Relaxed), 0, "an asynchronous failure defers nothing");
        // Synchronously it takes pages from every pageblock.
        let result = try_to_compact_pages(env.pgdat, &request(GFP_KERNEL, 4, CompactPriority::SyncLight), &mms);
        assert_eq!(result, CompactResult::Success);
        free_blocks(env.pgdat, taken, 4);
    });
}

#[test]
fn a_synchronous_run_that_completes_without_a_block_defers_the_zone_until_the_highest_priority() {
    with_env(|env| {
        // Free memory in single pages between pages nothing can move.
        let mut pinned = Vec::new();
        while let Some(pfn) = env.pgdat.alloc_pages(Gfp::NOWARN | Gfp::MEMALLOC, 0) {
            pinned.push(pfn);
        }
        let (holes, pinned): (Vec<Pfn>, Vec<Pfn>) = pinned.into_iter().partition(|pfn| pfn.as_u64() % 2 == 0);
        free_blocks(env.pgdat, holes, 0);
        let mms = Mms::new(env, &[]);
        let req = request(GFP_KERNEL, 2, CompactPriority::SyncLight);
        assert_eq!(try_to_compact_pages(env.pgdat, &req, &mms), CompactResult::Complete);
        let deferred: Vec<_> = env.pgdat.zones().iter().map(|z| z.compact_defer_shift.load(Relaxed)).collect();
        assert!(deferred.contains(&1), "a zone deferred: {deferred:?}");
        assert_eq!(try_to_compact_pages(env.pgdat, &req, &mms), CompactResult::Deferred);
        let scanned = env.pgdat.all_vm_events(VmEventItem::CompactMigrateScanned);
        // COMPACT_PRIO_SYNC_FULL ignores deferral.
        let req = request(GFP_KERNEL, 2, CompactPriority::SyncFull);
        assert_eq!(try_to_compact_pages(env.pgdat, &req, &mms), CompactResult::Complete);
        assert!(env.pgdat.all_vm_events(VmEventItem::CompactMigrateScanned) > scanned);
        free_blocks(env.pgdat, pinned, 0);
    });
}

#[test]
fn compaction_without_room_for_migration_targets_is_skipped() {
    with_env(|env| {
        let mm = RefCell::new(env.mm());
        fragment(env, &mm, 1024);
        let zone = user_zone(env, &mm);
        // Everything but the min watermark's worth taken.
        let mut taken = Vec::new();
        while let Some(pfn) = env.pgdat.alloc_pages(Gfp::NOWARN, 0) {
            taken.push(pfn);
        }
        assert!(!compaction_suitable(env.pgdat, zone, 2, zone));
        let req = request(GFP_HIGHUSER_MOVABLE, 2, CompactPriority::SyncFull);
        assert_eq!(try_to_compact_pages(env.pgdat, &req, &Mms::new(env, &[&mm])), CompactResult::Skipped);
        free_blocks(env.pgdat, taken, 0);
    });
}

/// Counts its wakeups, as the kernel's kcompactd thread would be woken.
struct CountingKcompactd(std::sync::atomic::AtomicU64);

impl Kcompactd for CountingKcompactd {
    fn wakeup(&self) {
        self.0.fetch_add(1, Relaxed);
    }
}

#[test]
fn kswapd_going_to_sleep_wakes_kcompactd_which_compacts_until_the_order_is_free() {
    with_env(|env| {
        let kcompactd: &'static CountingKcompactd =
            Box::leak(Box::new(CountingKcompactd(std::sync::atomic::AtomicU64::new(0))));
        env.pgdat.set_kcompactd(kcompactd);
        let woken = || kcompactd.0.load(Relaxed);
        let mm = RefCell::new(env.mm());
        fragment(env, &mm, 4096);
        // Order 4 is there to take: nothing to do.
        wakeup_kcompactd(env.pgdat, 4, ZoneType::Normal);
        assert_eq!(woken(), 0);
        let taken = take_free_blocks(env.pgdat, Gfp::NOWARN, 4);
        wakeup_kcompactd(env.pgdat, 0, ZoneType::Normal);
        assert_eq!(woken(), 0, "order 0 needs no compaction");
        // An allocation that may not block fails and tells kswapd its order;
        // kswapd, done, hands it on.
        assert!(env.pgdat.alloc_pages(crate::gfp::GFP_NOWAIT, 4).is_none());
        wakeup_kcompactd_from_kswapd(env.pgdat);
        assert_eq!(woken(), 1);
        let stats = kcompactd_do_work(env.pgdat, &Mms::new(env, &[&mm]));
        assert!(stats.migrated > 0, "{stats:?}");
        let ev = |item| env.pgdat.all_vm_events(item);
        assert_eq!(ev(VmEventItem::CompactDaemonWake), 1);
        assert_eq!(ev(VmEventItem::CompactDaemonMigrateScanned), stats.migrate_scanned);
        assert_eq!(ev(VmEventItem::CompactDaemonFreeScanned), stats.free_scanned);
        assert_eq!(ev(VmEventItem::CompactMigrateScanned), stats.migrate_scanned, "counted in both");
        assert_eq!(env.pgdat.kcompactd().max_order.load(Relaxed), 0, "the request is done");
        let pfn = env.pgdat.alloc_pages(Gfp::NOWARN, 4).expect("kcompactd made the block");
        // SAFETY: the test's block.
        unsafe { env.pgdat.free_pages(pfn, 4) }.unwrap();
        free_blocks(env.pgdat, taken, 4);
        for i in (0..4096).step_by(2) {
            assert!(env.ram.page(pfn_at(&mm.borrow(), X + i * P)).iter().all(|&b| b == pattern(i)), "page {i}");
        }
    });
}
