//! The scheduler: kernel threads, wait queues, timed sleeps, several CPUs.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use kernel::arch::x86_64::tsc;
use kernel::sched::wait::{WaitQueue, sleep_until_ns};
use kernel::sched::{self, Task};
use ktest_macros::ktest;

/// Waits until `t` has exited and is switched out for good, then drops it.
fn join(t: Arc<Task>) {
    t.proc.group.child_exit.wait_event(|| t.proc.group.zombie.load(Ordering::Acquire));
    t.wait_inactive();
    drop(t);
}

#[ktest]
fn a_kernel_thread_runs_and_exits() {
    let flag = Arc::new(AtomicU32::new(0));
    let f = flag.clone();
    let me = sched::current().pid;
    let t = sched::kthread_run("ktest-thread", move || {
        assert_ne!(sched::current().pid, me, "the thread runs as its own task");
        f.store(42, Ordering::Release);
    })
    .expect("spawn");
    assert!(t.pid > 0);
    join(t);
    assert_eq!(flag.load(Ordering::Acquire), 42);
}

#[ktest]
fn two_threads_ping_pong_through_wait_queues() {
    struct Court {
        ball: AtomicU64,
        wq: WaitQueue,
    }
    const ROUNDS: u64 = 500;
    let court = Arc::new(Court { ball: AtomicU64::new(0), wq: WaitQueue::new() });
    let c = court.clone();
    let t = sched::kthread_run("pong", move || {
        for i in 0..ROUNDS {
            c.wq.wait_event(|| c.ball.load(Ordering::Acquire) == 2 * i + 1);
            c.ball.store(2 * i + 2, Ordering::Release);
            c.wq.wake_up_all();
        }
    })
    .expect("spawn");
    for i in 0..ROUNDS {
        court.ball.store(2 * i + 1, Ordering::Release);
        court.wq.wake_up_all();
        court.wq.wait_event(|| court.ball.load(Ordering::Acquire) == 2 * i + 2);
    }
    join(t);
    assert_eq!(court.ball.load(Ordering::Acquire), 2 * ROUNDS);
}

#[ktest]
fn a_timed_sleep_lasts_at_least_its_time() {
    let start = tsc::now_ns();
    assert!(sleep_until_ns(start + 20_000_000, || false));
    let slept = tsc::now_ns() - start;
    assert!(slept >= 20_000_000, "woke after {slept} ns");
}

/// Runs 16 threads at once; returns the mask of CPUs they ran on. Each
/// stays until all 16 exist (a wait queue, not a time), so no CPU's load
/// drops while the others are placed.
fn spread_threads() -> u64 {
    let mask = Arc::new(AtomicU64::new(0));
    let go = Arc::new((AtomicU32::new(0), WaitQueue::new()));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (m, go) = (mask.clone(), go.clone());
            sched::kthread_run("spread", move || {
                m.fetch_or(1 << kernel::percpu::smp_processor_id(), Ordering::AcqRel);
                go.1.wait_event(|| go.0.load(Ordering::Acquire) != 0);
            })
            .expect("spawn")
        })
        .collect();
    go.0.store(1, Ordering::Release);
    go.1.wake_up_all();
    for t in threads {
        join(t);
    }
    mask.load(Ordering::Acquire)
}

fn free_pages_settled() -> u64 {
    kernel::mm::drop_caches();
    kernel::mm::nr_free_pages()
}

#[ktest(cpus = 4)]
fn threads_spread_over_cpus_and_their_stacks_are_freed() {
    // Warm-up: slab caches and vmalloc page tables get built once.
    spread_threads();
    let free_before = free_pages_settled();
    let mask = spread_threads();
    assert_eq!(mask.count_ones(), 4, "threads ran on CPUs {mask:#b}");
    let free_after = free_pages_settled();
    assert_eq!(free_after, free_before, "16 thread stacks and tasks not given back");
}

#[ktest]
fn the_task_list_holds_live_tasks_and_forgets_freed_ones() {
    let listed = |pid: u32| {
        let mut found = None;
        sched::for_each_task(|t| {
            if t.pid == pid {
                found = Some(alloc::string::String::from(t.comm().as_str()));
            }
        });
        found
    };
    assert!(listed(sched::current().pid).is_some(), "the running task is listed");
    let mut idle = 0;
    sched::for_each_task(|t| idle += usize::from(t.comm().as_str().starts_with("swapper/")));
    assert!(idle >= 1, "the idle tasks are listed");
    let go = Arc::new(AtomicU32::new(0));
    let g = go.clone();
    let t = sched::kthread_run("ktest-listed", move || {
        while g.load(Ordering::Acquire) == 0 {
            sched::schedule();
        }
    })
    .expect("spawn");
    let pid = t.pid;
    assert_eq!(listed(pid).as_deref(), Some("ktest-listed"), "a new thread is listed under its name");
    go.store(1, Ordering::Release);
    join(t);
    // The CPU that ran it drops its last reference just after switching
    // away (finish_task_switch), possibly a moment after `join` returned;
    // a reference never dropped is a hang, for the test's timeout.
    while listed(pid).is_some() {
        sched::schedule();
    }
    assert_eq!(listed(pid), None, "a freed task is gone from the list");
}
