//! Allocation and interrupt context: lock types, `might_sleep`, atomic
//! allocations, allocation-free wake-ups and deferred stack freeing.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kernel::arch::x86_64::tsc;
use kernel::sched::wait::sleep_until_ns;
use kernel::sched::{self, catch_context_bugs, in_atomic, might_sleep};
use kernel::sync::{Mutex, SpinLock, SpinLockIrq, hardirq_allocations, preempt_count};
use ktest_macros::ktest;
use mm::gfp::{GFP_ATOMIC, GFP_KERNEL};
use mm::vmstat::NodeStatItem;
use x86_64::instructions::interrupts;

/// Whether this build checks contexts (debug builds do).
const CHECKED: bool = cfg!(debug_assertions);

#[ktest]
fn boot_and_the_tests_so_far_reported_no_context_bugs() {
    assert_eq!(sched::context_bugs(), 0, "a sleeping function was called from atomic context (see the BUG: lines)");
}

#[ktest]
fn might_sleep_reports_spin_locks_and_interrupts_off_only() {
    let expected = u64::from(CHECKED);
    assert!(!in_atomic(), "a test runs in process context");
    assert_eq!(catch_context_bugs(might_sleep), 0, "process context may sleep");

    let irq_lock = SpinLockIrq::new(0u32);
    let caught = catch_context_bugs(|| {
        let _g = irq_lock.lock();
        assert!(in_atomic());
        might_sleep();
    });
    assert_eq!(caught, expected, "under a SpinLockIrq");

    let lock = SpinLock::new(0u32);
    let caught = catch_context_bugs(|| {
        let _g = lock.lock();
        assert!(interrupts::are_enabled(), "a SpinLock leaves interrupts on");
        assert!(in_atomic());
        might_sleep();
    });
    assert_eq!(caught, expected, "under a SpinLock");

    let caught = catch_context_bugs(|| interrupts::without_interrupts(might_sleep));
    assert_eq!(caught, expected, "with interrupts off");

    let mutex = Mutex::new(0u32);
    let caught = catch_context_bugs(|| {
        let _g = mutex.lock();
        assert!(!in_atomic(), "a sleeping mutex does not make the context atomic");
        might_sleep();
    });
    assert_eq!(caught, 0, "under a sleeping mutex");
    assert!(!in_atomic(), "every lock given back");
}

#[ktest]
fn spin_lock_irq_restores_the_interrupt_state_it_found() {
    let outer = SpinLockIrq::new(());
    let inner = SpinLockIrq::new(());
    let base = preempt_count();
    {
        let _o = outer.lock();
        assert!(!interrupts::are_enabled());
        assert_eq!(preempt_count(), base + 1);
        {
            let _i = inner.lock();
            assert_eq!(preempt_count(), base + 2);
        }
        assert!(!interrupts::are_enabled(), "the inner unlock keeps interrupts off for the outer lock");
        assert!(inner.try_lock().is_some());
        assert!(outer.try_lock().is_none(), "held");
        assert!(!interrupts::are_enabled(), "a failed try_lock keeps the state too");
    }
    assert!(interrupts::are_enabled());
    assert_eq!(preempt_count(), base);
}

#[ktest]
fn a_reclaiming_allocation_in_atomic_context_is_reported_and_an_atomic_one_is_not() {
    let expected = u64::from(CHECKED);
    let pgdat = kernel::mm::pgdat();
    let slab = kernel::slab::slab().expect("slab");
    let lock = SpinLockIrq::new(());

    let mut pfn = None;
    let caught = catch_context_bugs(|| {
        let _g = lock.lock();
        pfn = pgdat.alloc_pages(GFP_KERNEL, 0);
    });
    assert_eq!(caught, expected, "alloc_pages(GFP_KERNEL) under a SpinLockIrq");
    // SAFETY: the test's own page, allocated above and never mapped.
    unsafe { pgdat.free_pages(pfn.expect("a page"), 0) }.expect("free");

    let caught = catch_context_bugs(|| {
        let _g = lock.lock();
        pfn = pgdat.alloc_pages(GFP_ATOMIC, 0);
    });
    assert_eq!(caught, 0, "alloc_pages(GFP_ATOMIC) may run in atomic context");
    // SAFETY: the test's own page, allocated above and never mapped.
    unsafe { pgdat.free_pages(pfn.expect("a page"), 0) }.expect("free");

    // Many objects, so that SLUB also needs a new slab: one report per
    // kmalloc, none from the page allocator underneath.
    let mut objs = Vec::with_capacity(32);
    let caught = catch_context_bugs(|| {
        let _g = lock.lock();
        for _ in 0..32 {
            objs.push(slab.kmalloc(512, GFP_KERNEL).expect("kmalloc"));
        }
    });
    assert_eq!(caught, 32 * expected, "kmalloc(GFP_KERNEL) under a SpinLockIrq, reported once each");
    for obj in objs {
        // SAFETY: each object came from kmalloc above and is not used again.
        unsafe { slab.kfree(obj.as_ptr()) }.expect("kfree");
    }

    let caught = catch_context_bugs(|| {
        let _g = lock.lock();
        let b = Box::new([7u8; 256]);
        assert_eq!(b[255], 7);
    });
    assert_eq!(caught, 0, "Box and Vec pick GFP_ATOMIC in atomic context");
}

#[ktest]
fn the_timer_tick_wakes_sleepers_without_allocating() {
    const THREADS: usize = 16;
    const SLEEPS: u64 = 10;
    let before = hardirq_allocations();
    let wakeups = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let w = wakeups.clone();
            sched::kthread_run("tick-sleeper", move || {
                for _ in 0..SLEEPS {
                    // Woken by the tick (wake_expired_sleepers ->
                    // wake_up_process -> the run queue).
                    sleep_until_ns(tsc::now_ns() + 1_000_000, || false);
                    w.fetch_add(1, Ordering::Relaxed);
                }
            })
            .expect("spawn")
        })
        .collect();
    for t in threads {
        t.proc.group.child_exit.wait_event(|| t.proc.group.zombie.load(Ordering::Acquire));
        t.wait_inactive();
    }
    sched::release_dead_tasks();
    assert_eq!(wakeups.load(Ordering::Relaxed), THREADS as u64 * SLEEPS);
    assert_eq!(hardirq_allocations(), before, "interrupt handlers allocated while waking and queueing tasks");
}

/// Starts `n` kernel threads and lets go of each at once, so that the
/// last reference to each is the one its CPU drops while switching away
/// from it, interrupts off; returns when all of them are freed. The
/// threads wait until every handle is dropped: one that ran to its end on
/// another CPU before `kthread_run` returned would leave the last
/// reference to this task instead.
fn run_and_forget_threads(n: usize) {
    let go = Arc::new(AtomicBool::new(false));
    let weak: Vec<_> = (0..n)
        .map(|_| {
            let go = go.clone();
            let t = sched::kthread_run("forgotten", move || {
                while !go.load(Ordering::Acquire) {
                    sched::yield_now();
                }
            })
            .expect("spawn");
            Arc::downgrade(&t)
        })
        .collect();
    go.store(true, Ordering::Release);
    let deadline = tsc::now_ns() + 5_000_000_000;
    while weak.iter().any(|w| w.strong_count() > 0) {
        assert!(tsc::now_ns() < deadline, "threads still referenced after 5 s");
        sched::yield_now();
    }
    sched::release_dead_tasks();
}

/// vmalloc's page count once it has not moved for 200 ms: a CPU may still
/// be inside the last drop of a thread (between its count reaching 0 and
/// its stack being queued) when the threads look gone, and under TCG on a
/// loaded host a virtual CPU can stall there for milliseconds.
fn settled_vmalloc_pages() -> u64 {
    let deadline = tsc::now_ns() + 3_000_000_000;
    let mut last = kernel::vmalloc::vmalloc_nr_pages();
    let mut since = tsc::now_ns();
    while tsc::now_ns() - since < 200_000_000 && tsc::now_ns() < deadline {
        sched::yield_now();
        sched::release_dead_tasks();
        let now = kernel::vmalloc::vmalloc_nr_pages();
        if now != last {
            (last, since) = (now, tsc::now_ns());
        }
    }
    last
}

#[ktest(cpus = 2)]
fn stacks_of_exited_threads_are_freed_with_interrupts_on() {
    let pgdat = kernel::mm::pgdat();
    run_and_forget_threads(4);
    let vmalloc_before = settled_vmalloc_pages();
    let stacks_before = pgdat.node_page_state(NodeStatItem::NrKernelStackKb);
    let tasks_before = sched::TASKS.lock().len();
    let deferred_before = kernel::vmalloc::deferred_thread_stacks_freed();
    run_and_forget_threads(32);
    // A CPU may still be inside the last drop of a thread (between the
    // count reaching 0 and the stack being queued) when the loop above
    // sees it gone: give it a moment.
    let deadline = tsc::now_ns() + 1_000_000_000;
    let settled = || kernel::vmalloc::vmalloc_nr_pages() == vmalloc_before && sched::TASKS.lock().len() == tasks_before;
    while !settled() && tsc::now_ns() < deadline {
        sched::yield_now();
        sched::release_dead_tasks();
    }
    assert_eq!(kernel::vmalloc::vmalloc_nr_pages(), vmalloc_before, "vmalloc pages of dead threads' stacks");
    assert_eq!(pgdat.node_page_state(NodeStatItem::NrKernelStackKb), stacks_before, "nr_kernel_stack");
    assert_eq!(sched::TASKS.lock().len(), tasks_before, "the task list keeps entries of freed tasks");
    assert!(
        kernel::vmalloc::deferred_thread_stacks_freed() > deferred_before,
        "no stack went through the deferred free (the test lost its point)"
    );
}

#[ktest]
fn a_mutex_holder_may_sleep_and_a_contender_sleeps_until_it_is_free() {
    let m = Arc::new(Mutex::new(0u64));
    let held = Arc::new(AtomicBool::new(false));
    let (m2, h2) = (m.clone(), held.clone());
    let t = sched::kthread_run("mutex-holder", move || {
        let mut g = m2.lock();
        h2.store(true, Ordering::Release);
        sleep_until_ns(tsc::now_ns() + 10_000_000, || false);
        *g += 1;
    })
    .expect("spawn");
    while !held.load(Ordering::Acquire) {
        sched::yield_now();
    }
    let caught = catch_context_bugs(|| *m.lock() += 1);
    assert_eq!(caught, 0);
    assert_eq!(*m.lock(), 2, "the contender ran after the holder's increment");
    // Joined, so that no stack of this test is freed during a later one.
    t.proc.group.child_exit.wait_event(|| t.proc.group.zombie.load(Ordering::Acquire));
    t.wait_inactive();
    drop(t);
    sched::release_dead_tasks();
}

#[ktest]
fn a_failed_try_lock_leaves_the_holders_lock_held() {
    use kernel::sched::rwsem::RwSem;
    let m = Mutex::new(());
    let held = m.lock();
    assert!(m.try_lock().is_none());
    assert!(m.is_locked(), "a failed Mutex::try_lock released the holder's lock");
    drop(held);

    let sem = RwSem::new(());
    let writer = sem.write();
    assert!(sem.try_read().is_none());
    assert!(sem.try_write().is_none());
    assert!(sem.try_read().is_none(), "a failed try_write or try_read released the writer's hold");
    drop(writer);
    let reader = sem.read();
    assert!(sem.try_write().is_none());
    assert!(sem.try_write().is_none(), "a failed try_write released the reader's hold");
    drop(reader);
    assert!(!sem.is_locked(), "every hold given back");
}

/// A waiter is not starved by a holder that unlocks and relocks at once
/// (Linux's mutex hand-off): on one CPU the holder keeps running after
/// its unlock wakes the waiter, so without the hand-off it would win the
/// lock back every time, for all of its rounds. With it, the waiter,
/// woken once and still finding the lock taken, asks for the lock and
/// gets it at the holder's next unlock.
#[ktest]
fn a_starving_mutex_waiter_gets_the_lock_handed_over() {
    const ROUNDS: u64 = 200;
    let m = Arc::new(Mutex::new(()));
    let rounds = Arc::new(AtomicU64::new(0));
    let started = Arc::new(AtomicBool::new(false));
    let (m2, r2, s2) = (m.clone(), rounds.clone(), started.clone());
    let t = sched::kthread_run("mutex-hog", move || {
        let mut g = m2.lock();
        s2.store(true, Ordering::Release);
        for _ in 0..ROUNDS {
            // Hold the lock across a reschedule, then drop and retake it
            // without giving the CPU away.
            sched::yield_now();
            drop(g);
            g = m2.lock();
            r2.fetch_add(1, Ordering::AcqRel);
        }
        drop(g);
    })
    .expect("spawn");
    while !started.load(Ordering::Acquire) {
        sched::yield_now();
    }
    let before = rounds.load(Ordering::Acquire);
    let g = m.lock();
    let waited = rounds.load(Ordering::Acquire) - before;
    drop(g);
    assert!(waited <= 3, "the waiter got the lock only after {waited} of the holder's rounds");
    t.proc.group.child_exit.wait_event(|| t.proc.group.zombie.load(Ordering::Acquire));
    t.wait_inactive();
    drop(t);
    sched::release_dead_tasks();
    assert_eq!(rounds.load(Ordering::Acquire), ROUNDS);
}
