//! Sleeping and waking (Linux `kernel/sched/wait.c`, `completion.c` and the
//! sleeping half of `kernel/time/sleep_timeout.c`).
//!
//! A [`WaitQueue`] holds the tasks waiting for a condition. [`WaitQueue::wait_event`]
//! follows Linux's `___wait_event` loop: queue yourself and set your
//! state in one step under the queue's lock (`prepare_to_wait`), test the
//! condition, sleep; the waker changes the condition first and then calls
//! [`WaitQueue::wake_up_all`], so either the sleeper sees the new
//! condition or the waker finds it queued in its sleeping state and
//! wakes it.
//!
//! Timed sleeps ([`sleep_until_ns`], and [`schedule_hrtimeout`] for a
//! sleeper queued elsewhere, as a futex waiter is on its hash bucket) go on
//! one global list checked by the timer tick (Linux's timer wheel reduced
//! to a sorted list).
//!
//! Both kinds of queue are intrusive lists through `Task::wait_list` (a
//! task sleeps on one at a time), so queueing and waking allocate nothing
//! and interrupt handlers may wake. Sleeping checks
//! [`might_sleep`](super::might_sleep).
//!
//! Lock order: a wait queue's lock -> run-queue lock (through
//! `wake_up_process`); the sleeper list's lock likewise. Both are
//! [`SpinLockIrq`]s.

use alloc::sync::Arc;
use core::panic::Location;
use core::sync::atomic::Ordering;

use super::list::{TaskLink, TaskList};
use super::{Task, TaskState, current, might_sleep_at, schedule, set_current_state, wake_up_process};
use crate::sync::SpinLockIrq;

fn wait_list(task: &Task) -> &TaskLink {
    &task.wait_list
}

/// Tasks waiting for something (Linux `wait_queue_head_t`).
pub struct WaitQueue {
    waiters: SpinLockIrq<TaskList>,
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        WaitQueue { waiters: SpinLockIrq::new(TaskList::new(wait_list)) }
    }

    /// Queues `task` (the running task) unless it is queued, and sets its
    /// state to `state`, both under the queue's lock (Linux
    /// `prepare_to_wait`). Together, so that a waker that takes the task
    /// off the queue finds it in its sleeping state and wakes it: set
    /// after the lock is dropped, a waker could take it off the queue
    /// while it still ran, find nothing to wake, and leave it to sleep
    /// off the queue for good.
    fn prepare_to_wait(&self, task: &Arc<Task>, state: TaskState) {
        let mut waiters = self.waiters.lock();
        waiters.push_back(task.clone());
        set_current_state(state);
    }

    fn remove(&self, task: &Task) {
        let removed = self.waiters.lock().remove(task);
        drop(removed);
    }

    /// Sleeps until `cond()` is true (Linux `wait_event`). With
    /// `interruptible`, also returns (false) when `interrupted()` says a
    /// signal is pending (Linux `wait_event_interruptible`'s -ERESTARTSYS).
    /// May sleep, even when `cond()` already holds.
    #[track_caller]
    pub fn wait_event_with(
        &self,
        interruptible: bool,
        interrupted: impl FnMut() -> bool,
        cond: impl FnMut() -> bool,
    ) -> bool {
        might_sleep_at(Location::caller());
        self.wait_event_common(interruptible, interrupted, cond)
    }

    fn wait_event_common(
        &self,
        interruptible: bool,
        mut interrupted: impl FnMut() -> bool,
        mut cond: impl FnMut() -> bool,
    ) -> bool {
        if cond() {
            return true;
        }
        let me = current();
        let state = if interruptible { TaskState::Interruptible } else { TaskState::Uninterruptible };
        loop {
            self.prepare_to_wait(&me, state);
            if cond() {
                break;
            }
            if interruptible && interrupted() {
                set_current_state(TaskState::Running);
                self.remove(&me);
                return false;
            }
            schedule();
        }
        set_current_state(TaskState::Running);
        self.remove(&me);
        true
    }

    /// Sleeps uninterruptibly until `cond()` is true. May sleep.
    #[track_caller]
    pub fn wait_event(&self, cond: impl FnMut() -> bool) {
        might_sleep_at(Location::caller());
        self.wait_event_common(false, || false, cond);
    }

    /// Wakes every waiter (Linux `wake_up_all`); they re-test their
    /// conditions. Allocates nothing: interrupt handlers may call it.
    pub fn wake_up_all(&self) {
        let mut waiters = self.waiters.lock();
        while let Some(t) = waiters.pop_front() {
            wake_up_process(&t);
        }
    }
}

/// Sleepers with a deadline, sorted by deadline (`Task::wake_at_ns`).
static SLEEPERS: SpinLockIrq<TaskList> = SpinLockIrq::new(TaskList::new(wait_list));

/// Sleeps until the clock reads `deadline_ns` or `interrupted()` turns
/// true (checked whenever the task wakes). Returns false if interrupted.
/// May sleep.
///
/// `interrupted()` is tested after the task is queued in its sleeping
/// state, as `wait_event` tests its condition: a waker that makes it true
/// and then wakes the task (a signal, a timer start) either is seen by
/// the test or finds the task asleep and wakes it.
#[track_caller]
pub fn sleep_until_ns(deadline_ns: u64, mut interrupted: impl FnMut() -> bool) -> bool {
    might_sleep_at(Location::caller());
    let me = current();
    loop {
        if crate::arch::x86_64::tsc::now_ns() >= deadline_ns {
            return true;
        }
        {
            let mut s = SLEEPERS.lock();
            me.wake_at_ns.store(deadline_ns, Ordering::Relaxed);
            s.insert_before(me.clone(), |t| t.wake_at_ns.load(Ordering::Relaxed) > deadline_ns);
            set_current_state(TaskState::Interruptible);
        }
        let stop = interrupted();
        if !stop {
            schedule();
        }
        set_current_state(TaskState::Running);
        let removed = SLEEPERS.lock().remove(&me);
        drop(removed);
        if stop {
            return false;
        }
    }
}

/// Sleeps in the state the caller set until woken, or until the clock
/// reads `deadline_ns` if there is one (Linux `schedule()` with an armed
/// hrtimer sleeper, as `futex_wait_queue` sleeps). For a sleeper whose
/// waker does not use a [`WaitQueue`]: the caller sets its state
/// ([`set_current_state`]), makes itself findable by its waker and checks
/// its condition, then calls this; a wake-up in between is not lost
/// (`schedule` keeps a task whose state went back to running). Returns
/// whether the deadline has passed; leaves the task running. May sleep.
#[track_caller]
pub fn schedule_hrtimeout(deadline_ns: Option<u64>) -> bool {
    might_sleep_at(Location::caller());
    let Some(deadline_ns) = deadline_ns else {
        schedule();
        set_current_state(TaskState::Running);
        return false;
    };
    let now = || crate::arch::x86_64::tsc::now_ns();
    if now() >= deadline_ns {
        set_current_state(TaskState::Running);
        return true;
    }
    let me = current();
    {
        let mut s = SLEEPERS.lock();
        me.wake_at_ns.store(deadline_ns, Ordering::Relaxed);
        s.insert_before(me.clone(), |t| t.wake_at_ns.load(Ordering::Relaxed) > deadline_ns);
    }
    schedule();
    let removed = SLEEPERS.lock().remove(&me);
    drop(removed);
    set_current_state(TaskState::Running);
    now() >= deadline_ns
}

/// Wakes the sleepers whose deadline has passed (from the timer tick).
/// Runs in interrupt context and allocates nothing; a sleeper's own
/// reference keeps its task alive, so dropping the list's frees nothing
/// either (and if it did, a task freed in atomic context defers its stack).
pub(super) fn wake_expired_sleepers() {
    let now = crate::arch::x86_64::tsc::now_ns();
    loop {
        let task = {
            let Some(mut s) = SLEEPERS.try_lock() else { return };
            match s.front() {
                Some(t) if t.wake_at_ns.load(Ordering::Relaxed) <= now => s.pop_front(),
                _ => return,
            }
        };
        if let Some(task) = task {
            wake_up_process(&task);
        }
    }
}

/// Wakes `task` from an interruptible sleep for a signal (Linux
/// `signal_wake_up`): it re-checks its condition and sees the signal. A
/// task running on another CPU is interrupted instead, so that it takes
/// the signal on its way back to user mode now rather than at its next
/// tick or system call (Linux `kick_process`).
pub fn signal_wake_up(task: &Arc<Task>) {
    if task.state() == TaskState::Interruptible {
        wake_up_process(task);
    } else {
        super::kick_process(task);
    }
}
