//! CPU time and scheduling statistics of a task (Linux
//! `kernel/sched/cputime.c`'s tick-based accounting, the
//! `sum_exec_runtime` of `kernel/sched/fair.c`'s `update_curr`, the
//! `nvcsw`/`nivcsw` counts of `__schedule`, and `mm/memory.c`
//! `mm_account_fault`'s `min_flt`/`maj_flt`).
//!
//! User and system time are sampled by the timer tick, as Linux does
//! without `CONFIG_VIRT_CPU_ACCOUNTING`: each tick charges a whole
//! [`TICK_NSEC`] to the running task, as user time when the tick
//! interrupted user mode, else as system time ([`TaskAcct::account_process_tick`],
//! Linux `account_process_tick`). Idle tasks are not charged. So the two
//! figures have the tick's resolution (4 ms at `HZ` 250) and a task that
//! runs between ticks is charged nothing.
//!
//! The exact CPU time (`CLOCK_PROCESS_CPUTIME_ID`,
//! `CLOCK_THREAD_CPUTIME_ID`) is measured at the context switch instead:
//! the TSC clock when a task was switched in (`exec_start`) and the sum
//! of its completed stints (Linux `se.sum_exec_runtime`).
//!
//! Differences from Linux: `getrusage` and `times` report the tick
//! samples as they are (Linux's `cputime_adjust` scales them so that
//! they add up to `sum_exec_runtime`); no guest, steal, irq or idle time.
//!
//! Every field is an atomic that only the task's own CPU writes (the
//! tick, the switch and the task's own faults); readers elsewhere see a
//! slightly stale figure, never a torn one. No lock.

#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::x86_64::apic::HZ;
use crate::arch::x86_64::tsc;

/// The length of a tick in nanoseconds (Linux `TICK_NSEC`).
pub const TICK_NSEC: u64 = 1_000_000_000 / HZ;

/// A task's CPU time and scheduling counts (Linux `task_struct`'s
/// `utime`, `stime`, `se.sum_exec_runtime`, `se.exec_start`, `nvcsw`,
/// `nivcsw`, `min_flt`, `maj_flt`).
#[derive(Default)]
pub struct TaskAcct {
    utime: AtomicU64,
    stime: AtomicU64,
    sum_exec_runtime: AtomicU64,
    exec_start: AtomicU64,
    nvcsw: AtomicU64,
    nivcsw: AtomicU64,
    min_flt: AtomicU64,
    maj_flt: AtomicU64,
}

/// A snapshot of a task's usage, in the units `getrusage` reports before
/// conversion (Linux's `task_cputime` plus the counts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskUsage {
    /// User time, ns.
    pub utime: u64,
    /// System time, ns.
    pub stime: u64,
    /// Voluntary context switches.
    pub nvcsw: u64,
    /// Involuntary context switches.
    pub nivcsw: u64,
    /// Faults served without I/O.
    pub min_flt: u64,
    /// Faults that waited for I/O.
    pub maj_flt: u64,
}

impl TaskUsage {
    /// Adds `other` (Linux `wait_task_zombie`'s sums into `cutime` and co).
    pub fn add(&mut self, other: &TaskUsage) {
        self.utime = self.utime.saturating_add(other.utime);
        self.stime = self.stime.saturating_add(other.stime);
        self.nvcsw = self.nvcsw.saturating_add(other.nvcsw);
        self.nivcsw = self.nivcsw.saturating_add(other.nivcsw);
        self.min_flt = self.min_flt.saturating_add(other.min_flt);
        self.maj_flt = self.maj_flt.saturating_add(other.maj_flt);
    }
}

impl TaskAcct {
    /// Nothing charged yet.
    pub const fn new() -> Self {
        TaskAcct {
            utime: AtomicU64::new(0),
            stime: AtomicU64::new(0),
            sum_exec_runtime: AtomicU64::new(0),
            exec_start: AtomicU64::new(0),
            nvcsw: AtomicU64::new(0),
            nivcsw: AtomicU64::new(0),
            min_flt: AtomicU64::new(0),
            maj_flt: AtomicU64::new(0),
        }
    }

    /// Charges one tick to the running task (Linux
    /// `account_process_tick`): user time if the tick interrupted user
    /// mode, system time otherwise.
    pub fn account_process_tick(&self, user_tick: bool) {
        let field = if user_tick { &self.utime } else { &self.stime };
        field.fetch_add(TICK_NSEC, Ordering::Relaxed);
    }

    /// User time so far, ns.
    pub fn utime(&self) -> u64 {
        self.utime.load(Ordering::Relaxed)
    }

    /// User plus system time so far, ns (Linux's `CPUCLOCK_PROF` sample).
    pub fn prof_time(&self) -> u64 {
        self.utime().saturating_add(self.stime.load(Ordering::Relaxed))
    }

    /// The task stops running at `now` (ns of the TSC clock): its stint
    /// joins `sum_exec_runtime` (Linux `update_curr` at `put_prev_task`).
    pub fn switch_out(&self, now: u64, voluntary: bool) {
        let ran = now.saturating_sub(self.exec_start.load(Ordering::Relaxed));
        self.sum_exec_runtime.fetch_add(ran, Ordering::Relaxed);
        let count = if voluntary { &self.nvcsw } else { &self.nivcsw };
        count.fetch_add(1, Ordering::Relaxed);
    }

    /// The task starts running at `now` (Linux `set_next_entity`'s
    /// `exec_start`).
    pub fn switch_in(&self, now: u64) {
        self.exec_start.store(now, Ordering::Relaxed);
    }

    /// CPU time so far, ns, counting the running stint if the task is the
    /// one running on this CPU (Linux `task_sched_runtime`).
    pub fn sum_exec_runtime(&self, running_here: bool) -> u64 {
        let done = self.sum_exec_runtime.load(Ordering::Relaxed);
        if running_here {
            done.saturating_add(tsc::now_ns().saturating_sub(self.exec_start.load(Ordering::Relaxed)))
        } else {
            done
        }
    }

    /// Counts a page fault the task took (Linux `mm_account_fault`).
    pub fn count_fault(&self, major: bool) {
        let count = if major { &self.maj_flt } else { &self.min_flt };
        count.fetch_add(1, Ordering::Relaxed);
    }

    /// Major faults so far.
    pub fn maj_flt(&self) -> u64 {
        self.maj_flt.load(Ordering::Relaxed)
    }

    /// The task's usage now.
    pub fn usage(&self) -> TaskUsage {
        TaskUsage {
            utime: self.utime(),
            stime: self.stime.load(Ordering::Relaxed),
            nvcsw: self.nvcsw.load(Ordering::Relaxed),
            nivcsw: self.nivcsw.load(Ordering::Relaxed),
            min_flt: self.min_flt.load(Ordering::Relaxed),
            maj_flt: self.maj_flt(),
        }
    }
}
