//! The OOM killer under real exhaustion (Linux `mm/oom_kill.c`; the
//! policy is host-tested in `mm/src/oom_kill/tests.rs`): at 64 MiB without
//! swap, a memory hog is killed and not a smaller process protected by
//! `oom_score_adj` -1000; a sleeping victim's memory is reaped before it
//! runs, so a protected allocation completes; several hogs at once and a
//! fork bomb end with the kernel alive; every test prints Linux's report
//! and gives every page back (free + slab + kernel page-table pages, as
//! `process::memory_state` counts them). The programs are
//! tests/user/oom_hog.c and tests/user/oom_score_test.c.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use kernel::fs::file::Capture;
use kernel::process::{do_wait, spawn_user};
use kernel::sched::Task;
use kernel::sync::Mutex;
use ktest_macros::ktest;
use mm::vmstat::VmEventItem;
use uapi::signal::SIGKILL;

use crate::process::{nr_tasks, settled_memory_state};

/// /proc/vmstat's `oom_kill`.
fn oom_kills() -> u64 {
    kernel::mm::pgdat().all_vm_events(VmEventItem::OomKill)
}

/// `/bin/oom_hog` with `args`, its output captured.
fn spawn(args: &[&str]) -> (Arc<Task>, Capture) {
    let capture: Capture = Arc::new(Mutex::new(Vec::new()));
    let mut argv = alloc::vec!["oom_hog"];
    argv.extend_from_slice(args);
    let task = spawn_user("/bin/oom_hog", &argv, Some(capture.clone())).expect("spawn oom_hog");
    (task, capture)
}

fn output(capture: &Capture) -> String {
    String::from_utf8_lossy(&capture.lock()).into_owned()
}

/// Waits for the child `pid`; its wait status.
fn wait(pid: u32) -> u32 {
    loop {
        match do_wait(pid as i32, false) {
            Ok(Some(r)) => return r.status,
            Ok(None) | Err(uapi::errno::Errno::EINTR) => continue,
            Err(e) => panic!("wait for {pid}: {e:?}"),
        }
    }
}

/// Waits until `capture` shows `line` (the test's timeout bounds it).
fn wait_for_output(capture: &Capture, line: &str) {
    while !output(capture).contains(line) {
        kernel::sched::wait::sleep_until_ns(kernel::arch::x86_64::tsc::now_ns() + 10_000_000, || false);
    }
}

/// The last 48 KiB of the kernel log. Dropped before a test counts its
/// pages: the copy is a large kmalloc block.
fn log_tail() -> String {
    let mut buf = alloc::vec![0u8; 48 << 10];
    let n = kernel::printk::LOG_BUF.copy_last(&mut buf);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn killed_by_sigkill(status: u32) -> bool {
    status & 0x7f == SIGKILL as u32
}

/// Free memory now, in MiB.
fn free_mib() -> u64 {
    (kernel::mm::nr_free_pages() * mm::PAGE_SIZE) >> 20
}

#[ktest(mem = 64, timeout = 60)]
fn the_oom_killer_kills_the_hog_not_a_protected_process() {
    let tasks = nr_tasks();
    let (pages, _) = settled_memory_state(tasks);
    let kills = oom_kills();
    let (protected, held) = spawn(&["hold", "4", "60", "-1000"]);
    wait_for_output(&held, "holding");
    let (hog, _) = spawn(&["hog"]);
    let status = wait(hog.pid);
    assert!(killed_by_sigkill(status), "the hog ended with wait status {status:#x}, not SIGKILL");
    assert!(!protected.proc.group.zombie.load(Ordering::Acquire), "the protected process was killed");
    assert_eq!(oom_kills(), kills + 1, "vmstat oom_kill");
    let log = log_tail();
    for line in [
        "oom_hog invoked oom-killer: gfp_mask=",
        "Mem-Info:",
        "slab_reclaimable:",
        "pagetables:",
        "Node 0 DMA32 free:",
        "Tasks state (memory values in pages):",
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
        &alloc::format!("Out of memory: Killed process {} (oom_hog) total-vm:", hog.pid),
        "UID:0 pgtables:",
    ] {
        assert!(log.contains(line), "the report lacks {line:?}; log:\n{log}");
    }
    let protected_row =
        log.lines().any(|l| l.contains(&alloc::format!("[{:7}]", protected.pid)) && l.contains("-1000 oom_hog"));
    assert!(protected_row, "the task table lacks the protected process; log:\n{log}");
    kernel::signal::send_signal(&protected, SIGKILL, None);
    assert!(killed_by_sigkill(wait(protected.pid)));
    drop((log, protected, hog));
    let (pages_after, _) = settled_memory_state(tasks);
    assert_eq!(pages_after, pages, "free + slab + kernel page-table pages after the OOM kill");
}

#[ktest(mem = 64, timeout = 60)]
fn the_reaper_frees_a_sleeping_victim_and_a_protected_allocation_completes() {
    let tasks = nr_tasks();
    let (pages, _) = settled_memory_state(tasks);
    let free = free_mib();
    let (sleeper, held) = spawn(&["hold", &alloc::format!("{}", free / 2), "60"]);
    wait_for_output(&held, "holding");
    let (filler, filled) = spawn(&["fill", &alloc::format!("{}", free * 3 / 4), "-1000"]);
    let status = wait(filler.pid);
    assert_eq!(status, 0, "the protected filler; output:\n{}", output(&filled));
    assert!(killed_by_sigkill(wait(sleeper.pid)), "the sleeper was not killed");
    let log = log_tail();
    let reaped = alloc::format!("oom_reaper: reaped process {} (oom_hog), now anon-rss:", sleeper.pid);
    assert!(log.contains(&reaped), "no {reaped:?} in the log:\n{log}");
    drop((log, sleeper, filler));
    let (pages_after, _) = settled_memory_state(tasks);

    assert_eq!(pages_after, pages, "free + slab + kernel page-table pages after the reap");
}

#[ktest(mem = 64, cpus = 2, timeout = 90)]
fn several_hogs_at_once_are_all_killed_and_the_kernel_lives() {
    let tasks = nr_tasks();
    let (pages, _) = settled_memory_state(tasks);
    let kills = oom_kills();
    let hogs: Vec<_> = (0..3).map(|_| spawn(&["hog"]).0).collect();
    for hog in &hogs {
        let status = wait(hog.pid);
        assert!(killed_by_sigkill(status), "hog {} ended with wait status {status:#x}", hog.pid);
    }
    assert!(oom_kills() >= kills + 3, "vmstat oom_kill: {} kills for 3 hogs", oom_kills() - kills);
    drop(hogs);
    let (pages_after, _) = settled_memory_state(tasks);
    assert_eq!(pages_after, pages, "free + slab + kernel page-table pages after three hogs");
}

#[ktest(mem = 64, timeout = 90)]
fn a_fork_bomb_to_the_memory_limit_leaves_the_kernel_alive() {
    let tasks = nr_tasks();
    let (pages, _) = settled_memory_state(tasks);
    let kills = oom_kills();
    let (bomb, out) = spawn(&["forkbomb", "48", "2"]);
    let status = wait(bomb.pid);
    let out = output(&out);
    assert_eq!(status, 0, "the fork bomb's parent; output:\n{out}");
    assert!(out.contains("PASS oom_hog forkbomb"), "output:\n{out}");
    assert!(oom_kills() > kills, "48 children of 2 MiB in 64 MiB killed none; output:\n{out}");
    drop(bomb);
    let (pages_after, _) = settled_memory_state(tasks);
    assert_eq!(pages_after, pages, "free + slab + kernel page-table pages after the fork bomb");
}

#[ktest(timeout = 60)]
fn oom_score_and_oom_score_adj_behave_as_on_linux() {
    let (status, out) = kernel::process::run_user("/bin/oom_score_test", &["oom_score_test"]).expect("run");
    let out = String::from_utf8_lossy(&out);
    assert!(status == 0 && out.contains("PASS oom_score_test"), "status {status:#x}; output:\n{out}");
}
