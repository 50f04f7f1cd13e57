//! Host tests of compaction: a fragmented address space on a simulated
//! machine is compacted into high-order free blocks without losing a byte.

use std::cell::RefCell;

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
        let stats = compact_node(env.pgdat, &Mms(&[&mm]));
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
fn compaction_leaves_pages_shared_after_fork_and_reports_them_failed() {
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
        let stats = compact_node(env.pgdat, &Mms(&[&parent, &child]));
        assert_eq!(stats.migrated, 0, "{stats:?}");
        assert!(stats.failed >= PAGES / 4, "{stats:?}");
        assert_eq!(env.pgdat.all_vm_events(VmEventItem::PgmigrateFail), stats.failed);
        for (n, &pfn) in pfns.iter().enumerate() {
            let i = 2 * n as u64;
            assert_eq!(pfn_at(&parent.borrow(), X + i * P), pfn);
            assert_eq!(pfn_at(&child.borrow(), X + i * P), pfn);
            assert!(env.ram.page(pfn).iter().all(|&b| b == pattern(i)));
        }
    });
}
