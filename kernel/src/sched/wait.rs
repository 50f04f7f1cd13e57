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
//! Timed sleeps ([`sleep_until_ns`]) go on one global list checked by the
//! timer tick (Linux's timer wheel reduced to a sorted list).
//!
//! Lock order: a wait queue's lock -> run-queue lock (through
//! `wake_up_process`); the sleeper list's lock likewise. Both are taken
//! with interrupts off.

#![forbid(unsafe_code)]

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use spin::Mutex;
use x86_64::instructions::interrupts;

use super::{Task, TaskState, current, schedule, set_current_state, wake_up_process};

/// Tasks waiting for something (Linux `wait_queue_head_t`).
pub struct WaitQueue {
    waiters: Mutex<VecDeque<Arc<Task>>>,
}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> Self {
        WaitQueue { waiters: Mutex::new(VecDeque::new()) }
    }

    /// Queues `task` (the running task) unless it is queued, and sets its
    /// state to `state`, both under the queue's lock (Linux
    /// `prepare_to_wait`). Together, so that a waker that takes the task
    /// off the queue finds it in its sleeping state and wakes it: set
    /// after the lock is dropped, a waker could take it off the queue
    /// while it still ran, find nothing to wake, and leave it to sleep
    /// off the queue for good.
    fn prepare_to_wait(&self, task: &Arc<Task>, state: TaskState) {
        interrupts::without_interrupts(|| {
            let mut w = self.waiters.lock();
            if !w.iter().any(|t| Arc::ptr_eq(t, task)) {
                w.push_back(task.clone());
            }
            set_current_state(state);
        });
    }

    fn remove(&self, task: &Arc<Task>) {
        interrupts::without_interrupts(|| self.waiters.lock().retain(|t| !Arc::ptr_eq(t, task)));
    }

    /// Sleeps until `cond()` is true (Linux `wait_event`). With
    /// `interruptible`, also returns (false) when `interrupted()` says a
    /// signal is pending (Linux `wait_event_interruptible`'s -ERESTARTSYS).
    pub fn wait_event_with(
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

    /// Sleeps uninterruptibly until `cond()` is true.
    pub fn wait_event(&self, cond: impl FnMut() -> bool) {
        self.wait_event_with(false, || false, cond);
    }

    /// Wakes every waiter (Linux `wake_up_all`); they re-test their
    /// conditions.
    pub fn wake_up_all(&self) {
        let waiters: Vec<Arc<Task>> = interrupts::without_interrupts(|| self.waiters.lock().drain(..).collect());
        for t in &waiters {
            wake_up_process(t);
        }
    }
}

/// Sleepers with a deadline, sorted by deadline (ns of the TSC clock).
static SLEEPERS: Mutex<Vec<(u64, Arc<Task>)>> = Mutex::new(Vec::new());

/// Sleeps until the clock reads `deadline_ns` or `interrupted()` turns
/// true (checked whenever the task wakes). Returns false if interrupted.
pub fn sleep_until_ns(deadline_ns: u64, mut interrupted: impl FnMut() -> bool) -> bool {
    let me = current();
    loop {
        if crate::arch::x86_64::tsc::now_ns() >= deadline_ns {
            return true;
        }
        if interrupted() {
            return false;
        }
        interrupts::without_interrupts(|| {
            let mut s = SLEEPERS.lock();
            let at = s.partition_point(|(d, _)| *d <= deadline_ns);
            s.insert(at, (deadline_ns, me.clone()));
            set_current_state(TaskState::Interruptible);
        });
        schedule();
        interrupts::without_interrupts(|| SLEEPERS.lock().retain(|(_, t)| !Arc::ptr_eq(t, &me)));
    }
}

/// Wakes the sleepers whose deadline has passed (from the timer tick).
/// Runs in interrupt context, so it allocates nothing: the sleepers are
/// taken off the list one at a time (a sleeper's own reference keeps the
/// task alive, so dropping this one frees nothing either).
pub(super) fn wake_expired_sleepers() {
    let now = crate::arch::x86_64::tsc::now_ns();
    loop {
        let task = {
            let Some(mut s) = SLEEPERS.try_lock() else { return };
            match s.first() {
                Some(&(deadline, _)) if deadline <= now => s.remove(0).1,
                _ => return,
            }
        };
        wake_up_process(&task);
    }
}

/// Wakes `task` from an interruptible sleep for a signal (Linux
/// `signal_wake_up`): it re-checks its condition and sees the signal.
pub fn signal_wake_up(task: &Arc<Task>) {
    if task.state() == TaskState::Interruptible {
        wake_up_process(task);
    }
}
