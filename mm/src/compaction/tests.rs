//! Host tests of compaction: a fragmented address space on a simulated
//! machine is compacted into high-order free blocks without losing a byte.

use std::cell::RefCell;
use std::ops::ControlFlow;

use crate::interval_tree::MmId;
use crate::rmap::RmapMms;

use uapi::mman::MADV_DONTNEED;

use super::*;
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
        let free_before = env.pgdat.nr_free_pages();
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
        env.pgdat.drain_all_pages();
        let free_before = env.pgdat.nr_free_pages();
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
