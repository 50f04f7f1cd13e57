//! Compaction without being asked (Linux `mm/compaction.c`; the mechanism
//! is host-tested in `mm/src/compaction/tests.rs`, the slow path's order
//! in `mm/src/page_alloc/tests.rs`): a blocking order-4 allocation on
//! memory with no free block of order 4 compacts in its slow path (direct
//! compaction) and succeeds; an allocation that may not block wakes
//! kswapd, which wakes kcompactd on its way back to sleep, and kcompactd
//! makes the block. frag (tests/user/frag.c) keeps the pages that move and
//! checks every byte of them at the end. Each test has a boot of its own,
//! as the console suite's compaction tests do: where earlier tests left
//! unmovable pages decides what can be compacted.

use alloc::vec::Vec;

use kernel::shell::Shell;
use ktest_macros::ktest;
use mm::gfp::{GFP_KERNEL, GFP_NOWAIT, Gfp};
use mm::page_alloc::Pages;
use mm::vmstat::VmEventItem;

use crate::console::{sh, start_frag};

/// The order the tests ask for: above `PAGE_ALLOC_COSTLY_ORDER`.
const ORDER: u32 = 4;

/// Sends frag SIGUSR1 and checks that it found every byte it kept.
fn finish_frag(pid: u32, task: alloc::sync::Arc<kernel::sched::Task>) {
    kernel::signal::send_signal(&task, uapi::signal::SIGUSR1, None);
    drop(task);
    let reaped = kernel::process::do_wait(pid as i32, false).expect("wait").expect("reaped");
    assert_eq!(reaped.status, 0, "frag found its data changed (exit status {:#x})", reaped.status);
}

/// Takes every free block of [`ORDER`] or more the allocator will give
/// without reclaim, compaction or kswapd, so that what is left free is
/// smaller blocks (frag's holes among them). Returns the blocks.
fn take_free_blocks() -> Vec<Pages<'static, 'static>> {
    let pgdat = kernel::mm::pgdat();
    // Room first: growing the list while taking would free and take pages.
    let mut taken = Vec::with_capacity(8192);
    while taken.len() < taken.capacity() {
        match pgdat.alloc_pages_owned(Gfp::NOWARN, ORDER) {
            Some(block) => taken.push(block),
            None => break,
        }
    }
    taken
}

/// The largest order with a free block in the largest zone, frag's (a
/// smaller zone keeps the blocks its lowmem reserve holds back from these
/// allocations).
fn largest_free_order() -> Option<usize> {
    let pgdat = kernel::mm::pgdat();
    let zone = pgdat.zones().iter().max_by_key(|z| z.managed_pages())?;
    let counts = pgdat.free_counts(zone.zone_type());
    (0..mm::mmzone::NR_PAGE_ORDERS).rev().find(|&order| counts.nr_free(order) > 0)
}

/// A vmstat counter as the console's `vmstat` (/proc/vmstat) prints it.
fn vmstat(shell: &mut Shell, name: &str) -> u64 {
    let text = sh(shell, "vmstat");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in vmstat:\n{text}"))
}

#[ktest(fresh_boot)]
fn a_blocking_order_4_allocation_compacts_fragmented_memory_and_keeps_the_data() {
    let mut shell = Shell::new();
    let (pid, task) = start_frag(&mut shell);
    // Little for reclaim to find: the block must come from compaction.
    kernel::mm::drop_caches();
    let before: Vec<u64> =
        ["compact_stall", "compact_fail", "compact_success", "pgmigrate_success", "allocstall_normal"]
            .iter()
            .map(|name| vmstat(&mut shell, name))
            .collect();
    let taken = take_free_blocks();
    assert!(largest_free_order().is_some_and(|o| o < ORDER as usize), "free order-{ORDER} blocks left");
    let pgdat = kernel::mm::pgdat();
    let block = pgdat.alloc_pages_owned(GFP_KERNEL, ORDER).expect("direct compaction made an order-4 block");
    let after: Vec<u64> =
        ["compact_stall", "compact_fail", "compact_success", "pgmigrate_success", "allocstall_normal"]
            .iter()
            .map(|name| vmstat(&mut shell, name))
            .collect();
    log::info!(
        "order-{ORDER} GFP_KERNEL after taking {} free blocks: compact_stall +{}, compact_fail +{}, \
         compact_success +{}, pgmigrate_success +{}, allocstall_normal +{}",
        taken.len(),
        after[0] - before[0],
        after[1] - before[1],
        after[2] - before[2],
        after[3] - before[3],
        after[4] - before[4]
    );
    assert!(after[0] > before[0], "the slow path compacted (compact_stall)");
    assert!(after[2] > before[2], "a compaction gave the allocation its block (compact_success)");
    assert!(after[3] > before[3], "compaction moved pages (pgmigrate_success)");
    drop(block);
    drop(taken);
    for zone in pgdat.zones().iter().filter(|z| z.present_pages() > 0) {
        pgdat.check_zone(zone.zone_type()).expect("free lists consistent after compaction");
    }
    finish_frag(pid, task);
}

/// kswapd, woken by an order-4 allocation that may not block, wakes
/// kcompactd, which scans and makes the block. A block that forms on its
/// own meanwhile (kswapd's reclaim or a shrinker freeing pages next to
/// free ones) leaves kcompactd nothing to do (Linux `kcompactd_do_work`
/// skips a zone whose order is already free): it is taken too and the
/// round repeated, a few times at most.
#[ktest(fresh_boot)]
fn kswapd_wakes_kcompactd_which_makes_the_block_an_atomic_allocation_could_not() {
    const ROUNDS: u32 = 5;
    let mut shell = Shell::new();
    let (pid, task) = start_frag(&mut shell);
    kernel::mm::drop_caches();
    let pgdat = kernel::mm::pgdat();
    // Each round's blocks in a list of their own: moving them into one
    // would free the old list's memory, maybe an order-4 block.
    let mut taken = Vec::with_capacity(ROUNDS as usize);
    let mut round = 0;
    loop {
        round += 1;
        let wakes = vmstat(&mut shell, "compact_daemon_wake");
        let scanned = vmstat(&mut shell, "compact_daemon_migrate_scanned");
        taken.push(take_free_blocks());
        // May not block: fails, waking kswapd for order 4 on its way.
        assert!(pgdat.alloc_pages(GFP_NOWAIT, ORDER).is_none(), "no free order-{ORDER} block, and no compaction");
        // kswapd finds the node balanced and wakes kcompactd, which counts
        // its wakeup under the compaction lock; a hang is the timeout's.
        while pgdat.all_vm_events(VmEventItem::CompactDaemonWake) == wakes {
            kernel::sched::wait::sleep_until_ns(kernel::arch::x86_64::tsc::now_ns() + 10_000_000, || false);
        }
        // Waits for kcompactd's run to end (one run at a time), then stops
        // at once.
        let stopped = kernel::compaction::compact_memory(&|| true);
        assert!(stopped.contended && stopped.migrated == 0, "{stopped:?}");
        let (wakes_now, scanned_now) =
            (vmstat(&mut shell, "compact_daemon_wake"), vmstat(&mut shell, "compact_daemon_migrate_scanned"));
        let largest = largest_free_order();
        log::info!(
            "kcompactd: round {round}: compact_daemon_wake {wakes} -> {wakes_now}, compact_daemon_migrate_scanned \
             {scanned} -> {scanned_now}, largest free order {largest:?}"
        );
        assert!(wakes_now > wakes, "kcompactd ran");
        if scanned_now > scanned {
            break;
        }
        assert!(
            largest.is_some_and(|o| o >= ORDER as usize),
            "kcompactd neither scanned nor found an order-{ORDER} block"
        );
        assert!(round < ROUNDS, "a block formed on its own in each of {ROUNDS} rounds; kcompactd never scanned");
    }
    let block = pgdat.alloc_pages_owned(Gfp::NOWARN, ORDER).expect("kcompactd made an order-4 block");
    drop(block);
    drop(taken);
    finish_frag(pid, task);
}
