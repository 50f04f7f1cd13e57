//! Swap's integrity run (issue 21's promise): several processes fill four
//! times the machine's memory with per-page checksummed patterns
//! (private anonymous memory, memory shared copy-on-write after fork, and
//! a memfd's shmem), read them back in a different order each round and
//! rewrite a quarter of them (tests/user/swap_stress.c). No page may be
//! wrong, the OOM killer must not run while swap has room, swapoff must
//! then bring the pages the processes keep back intact, and at exit every
//! anonymous and shmem page and every swap slot comes back.
//!
//! The default suite runs it at 64 MiB; the run (128 MiB with a
//! 1 GiB swap disk) is opt-in: `cargo xtask test --suite swapstress`.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use kernel::arch::x86_64::tsc::now_ns;
use kernel::fs::file::Capture;
use kernel::swapfile::mkswap::mkswap_disk;
use kernel::swapfile::swapon::{SwapOnFlags, do_swapoff, do_swapon};
use ktest_macros::ktest;
use mm::swapfile::SwapUuid;
use mm::vmstat::{NodeStatItem, VmEventItem};

const UUID: SwapUuid = SwapUuid([0x5a, 0x11, 0x0c, 0x3e, 0x9d, 0x27, 0x4b, 0x18, 0x8f, 0x04, 0x6a, 0x7c, 5, 6, 7, 8]);

/// The anonymous and shmem pages in memory or in swap.
fn user_pages() -> (u64, u64) {
    let pgdat = kernel::mm::pgdat();
    (pgdat.node_page_state(NodeStatItem::NrAnonMapped), pgdat.node_page_state(NodeStatItem::NrShmem))
}

/// Runs `swap_stress MIB ROUNDS KEEP` with `/dev/vda` as the only swap
/// area: the program must pass, the OOM killer must not run, swapoff
/// while it holds KEEP MiB must succeed, and once it exited every page
/// and slot must be back.
fn integrity_run(mib: u32, rounds: u32, keep: u32) {
    let pgdat = kernel::mm::pgdat();
    mkswap_disk(b"/dev/vda", b"stress", UUID).expect("mkswap /dev/vda");
    let before = user_pages();
    do_swapon(b"/dev/vda", SwapOnFlags::with_prio(None).expect("no priority")).expect("swapon /dev/vda");
    let events = |item| pgdat.all_vm_events(item);
    let (out0, in0, oom0) = (events(VmEventItem::Pswpout), events(VmEventItem::Pswpin), events(VmEventItem::OomKill));
    let capture: Capture = Arc::new(kernel::sync::Mutex::new(Vec::new()));
    let (mib_arg, rounds_arg, keep_arg) =
        (alloc::format!("{mib}"), alloc::format!("{rounds}"), alloc::format!("{keep}"));
    let start = now_ns();
    let task = kernel::process::spawn_user(
        "/bin/swap_stress",
        &["swap_stress", &mib_arg, &rounds_arg, &keep_arg],
        Some(capture.clone()),
    )
    .expect("spawn swap_stress");
    let pid = task.pid;
    let output = || String::from_utf8_lossy(&capture.lock()).into_owned();
    while !output().contains("holding") {
        let out = output();
        assert!(!out.contains("FAIL"), "swap_stress failed:\n{out}");
        // A program that died before holding leaves a zombie to reap.
        if let Some(reaped) = kernel::process::do_wait(pid as i32, true).expect("wait") {
            panic!("swap_stress ended with status {:#x} before holding:\n{}", reaped.status, output());
        }
        kernel::sched::wait::sleep_until_ns(now_ns() + 20_000_000, || false);
    }
    let rounds_ns = now_ns() - start;
    let (swapped_out, swapped_in) = (events(VmEventItem::Pswpout) - out0, events(VmEventItem::Pswpin) - in0);
    assert!(swapped_out > 0 && swapped_in > 0, "the run must have swapped: out {swapped_out}, in {swapped_in}");
    assert_eq!(events(VmEventItem::OomKill), oom0, "the OOM killer ran with swap free");
    let off_start = now_ns();
    do_swapoff(b"/dev/vda").expect("swapoff brings the kept pages back");
    let swapoff_ns = now_ns() - off_start;
    kernel::signal::send_signal(&task, uapi::signal::SIGUSR1, None);
    drop(task);
    let reaped = kernel::process::do_wait(pid as i32, false).expect("wait").expect("reaped");
    let out = output();
    assert_eq!(reaped.status, 0, "swap_stress failed:\n{out}");
    assert!(out.contains(&alloc::format!("PASS swap_stress {mib} {rounds} kept")), "{out}");
    log::info!(
        "swap_stress {mib} MiB x {rounds} rounds: {} ms, {swapped_out} pages written, {swapped_in} read; \
         swapoff of {keep} MiB kept: {} ms",
        rounds_ns / 1_000_000,
        swapoff_ns / 1_000_000
    );
    assert_eq!(pgdat.node_page_state(NodeStatItem::NrSwapcache), 0, "a page left in the swap cache");
    assert_eq!(user_pages(), before, "(anonymous, shmem) pages not given back at exit");
    assert_eq!(kernel::swapfile::si_swapinfo(), (0, 0), "a swap area outlived swapoff");
}

/// Four times RAM at 64 MiB with a 384 MiB swap disk, two rounds; the
/// workers keep 32 MiB for swapoff.
#[ktest(mem = 64, disk = 384, timeout = 900)]
fn four_times_ram_of_anon_cow_and_shmem_pages_swap_intact() {
    integrity_run(256, 2, 32);
}

/// The run: four times RAM at 128 MiB with a 1 GiB swap disk,
/// three rounds; the workers keep 64 MiB for swapoff.
#[ktest(opt_in, mem = 128, disk = 1024, timeout = 3000)]
fn four_times_ram_at_128_mib_with_a_gib_of_swap() {
    integrity_run(512, 3, 64);
}
