//! The process side of a task (Linux `task_struct`'s family, exit and
//! address-space fields; `kernel/fork.c`, `kernel/exit.c`).
//!
//! Filled in by the system-call layer; a kernel thread has an empty one.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use spin::Mutex;

use crate::sched::Task;
use crate::sched::wait::WaitQueue;

/// Family links and exit status (Linux `real_parent`, `children`,
/// `exit_code`, `exit_state`, `signal->wait_chldexit`).
pub struct Process {
    /// The parent, if any.
    pub parent: Mutex<Weak<Task>>,
    /// Children not yet reaped.
    pub children: Mutex<Vec<Arc<Task>>>,
    /// Set when the task has exited and waits to be reaped (`EXIT_ZOMBIE`).
    pub zombie: AtomicBool,
    /// Wait status for the parent (Linux `exit_code`, encoded as wait4
    /// reports it).
    pub exit_status: AtomicU32,
    /// Where this task's parent sleeps in wait4 (woken when a child exits).
    pub child_exit: WaitQueue,
}

impl Default for Process {
    fn default() -> Self {
        Self::new()
    }
}

impl Process {
    /// A process with no family.
    pub fn new() -> Self {
        Process {
            parent: Mutex::new(Weak::new()),
            children: Mutex::new(Vec::new()),
            zombie: AtomicBool::new(false),
            exit_status: AtomicU32::new(0),
            child_exit: WaitQueue::new(),
        }
    }

    /// A kernel thread is ending: mark it reaped-by-nobody and wake anyone
    /// waiting for it.
    pub fn exit_notify_kthread(&self) {
        self.zombie.store(true, Ordering::Release);
        self.child_exit.wake_up_all();
    }
}
