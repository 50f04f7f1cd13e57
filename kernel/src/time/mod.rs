//! Clocks and timers for user space (Linux `kernel/time/`): the time of
//! day (`time.c`: `gettimeofday`, `time`), clock resolutions
//! (`posix-timers.c`'s `clock_getres`), and the timers of a process:
//! interval timers ([`itimer`]) and POSIX timers ([`posix_timers`]), both
//! on [`hrtimer`]s.
//!
//! Clocks: the TSC clock (`CLOCK_MONOTONIC`, `CLOCK_BOOTTIME` with no
//! suspend, `CLOCK_MONOTONIC_RAW` without NTP) and the wall clock, which
//! is the TSC clock plus a constant offset set at boot from the RTC
//! (`CLOCK_REALTIME`, `CLOCK_TAI` without leap seconds): nothing sets the
//! wall clock afterwards, so a timer on `CLOCK_REALTIME` is kept on the
//! TSC clock and never needs Linux's `clock_was_set` re-programming.
//! The CPU-time clocks are the task's `sum_exec_runtime`
//! ([`crate::sched::cputime`]).
//!
//! A process's timers live in [`ProcTimers`], under the lock of its
//! [`crate::sys::ProcSys`] (Linux keeps them in `signal_struct` under
//! `siglock` and each timer's `it_lock`). An expiry runs in the
//! `ktimers` thread ([`hrtimer`]), which takes that lock, checks the
//! expiry is still current and sends the signal. Periodic timers are
//! re-armed when their signal is dequeued ([`signal_dequeued`], Linux
//! `dequeue_signal`'s `it_real_incr` restart and `posixtimer_rearm`),
//! so a process that does not take its signals is not sent more: the
//! missed expiries are counted as overruns instead.
//!
//! Lock order: the process's timer lock -> the hrtimer queue; the
//! process's timer lock -> its signal lock (sending). The signal lock is
//! never held while the timer lock is taken.

#![forbid(unsafe_code)]

pub mod hrtimer;
pub mod itimer;
pub mod posix_timers;

use alloc::sync::{Arc, Weak};

use uapi::errno::Errno;
use uapi::signal::SigInfo;
use uapi::time::{Timespec, Timeval};

use self::hrtimer::{HrTimer, HrTimerCallback, TICK_NSEC};
use crate::arch::x86_64::tsc;
use crate::arch::x86_64::uaccess::write_user;
use crate::process::ThreadGroup;
use crate::sched::{self, Task};

/// Nanoseconds per second.
pub const NSEC_PER_SEC: u64 = 1_000_000_000;
/// Nanoseconds per microsecond.
pub const NSEC_PER_USEC: u64 = 1_000;

/// A process's timers (Linux `signal_struct`'s `real_timer`,
/// `it_real_incr` and `posix_timers`), under its [`crate::sys::ProcSys`]
/// timer lock.
#[derive(Default)]
pub struct ProcTimers {
    /// `ITIMER_REAL`.
    pub real: itimer::RealItimer,
    /// `timer_create`'s timers.
    pub posix: posix_timers::PosixTimers,
}

/// Which of its process's timers an [`ProcTimer`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// `ITIMER_REAL` (Linux `signal->real_timer`).
    Real,
    /// A POSIX timer (found by its hrtimer among the process's).
    Posix,
}

/// The hrtimer of one of a process's timers: what the queue holds, and
/// what finds the process again when it expires. It names the process,
/// not the thread that set it (Linux keeps the timers in `signal_struct`
/// and signals the group): the timer outlives that thread.
pub struct ProcTimer {
    hrtimer: HrTimer,
    group: Weak<ThreadGroup>,
    kind: TimerKind,
}

impl ProcTimer {
    /// A timer of `task`'s process; ENOMEM without memory.
    pub fn new(task: &Arc<Task>, kind: TimerKind) -> Result<Arc<ProcTimer>, Errno> {
        let hrtimer = HrTimer::new()?;
        Ok(Arc::new(ProcTimer { hrtimer, group: Arc::downgrade(&task.proc.group), kind }))
    }

    /// The hrtimer.
    pub fn timer(&self) -> &HrTimer {
        &self.hrtimer
    }

    /// Queues it to expire at `expires` (TSC clock); returns the sequence
    /// number its expiry will carry.
    pub fn start(self: &Arc<Self>, expires: u64) -> u64 {
        let owner: Arc<dyn HrTimerCallback> = self.clone();
        hrtimer::hrtimer_start(&owner, expires)
    }
}

impl HrTimerCallback for ProcTimer {
    fn hrtimer(&self) -> &HrTimer {
        &self.hrtimer
    }

    fn expired(self: Arc<Self>, seq: u64) {
        // The signal goes to the process through its first live thread
        // (the leader while it lives, Linux's `it_pid`), taken before the
        // timer lock; none once the process has ended.
        let Some(group) = self.group.upgrade() else { return };
        let Some(task) = group.threads.lock().first().cloned() else { return };
        let mut timers = group.sys.timers.lock();
        if !self.hrtimer.is_current(seq) {
            return;
        }
        match self.kind {
            TimerKind::Real => itimer::it_real_fn(&task),
            TimerKind::Posix => timers.posix.posix_timer_fn(&task, &self),
        }
    }
}

/// The timers' part of dequeuing signal `sig` with `info` for `task`
/// (Linux `dequeue_signal`): a periodic `ITIMER_REAL` restarts at its
/// `SIGALRM`, a periodic POSIX timer at its `SI_TIMER` signal, which then
/// carries its overrun count. Called with the signal lock released.
pub fn signal_dequeued(task: &Arc<Task>, sig: i32, info: &mut SigInfo) {
    if sig == uapi::signal::SIGALRM {
        task.proc.group.sys.timers.lock().real.rearm(now());
    }
    if info.si_code == uapi::signal::SI_TIMER {
        task.proc.group.sys.timers.lock().posix.posixtimer_rearm(info);
    }
}

/// The TSC clock now, ns (Linux `ktime_get`).
pub fn now() -> u64 {
    tsc::now_ns()
}

/// A timespec as ns, saturating (Linux `timespec64_to_ktime`, which
/// clamps at `KTIME_MAX`); `None` if invalid (Linux `timespec64_valid`:
/// negative seconds, nanoseconds outside 0..1e9).
pub fn timespec_to_ns(ts: &Timespec) -> Option<u64> {
    if ts.tv_sec < 0 || !(0..NSEC_PER_SEC as i64).contains(&ts.tv_nsec) {
        return None;
    }
    Some((ts.tv_sec as u64).saturating_mul(NSEC_PER_SEC).saturating_add(ts.tv_nsec as u64).min(i64::MAX as u64))
}

/// A timeval as ns, saturating; `None` if invalid (Linux `timeval_valid`).
pub fn timeval_to_ns(tv: &Timeval) -> Option<u64> {
    if tv.tv_sec < 0 || !(0..1_000_000).contains(&tv.tv_usec) {
        return None;
    }
    Some(
        (tv.tv_sec as u64)
            .saturating_mul(NSEC_PER_SEC)
            .saturating_add(tv.tv_usec as u64 * NSEC_PER_USEC)
            .min(i64::MAX as u64),
    )
}

/// ns as a timespec (Linux `ns_to_timespec64`).
pub fn ns_to_timespec(ns: u64) -> Timespec {
    Timespec { tv_sec: (ns / NSEC_PER_SEC) as i64, tv_nsec: (ns % NSEC_PER_SEC) as i64 }
}

/// ns as a timeval, microseconds rounded down (Linux `put_itimerval`).
pub fn ns_to_timeval(ns: u64) -> Timeval {
    Timeval { tv_sec: (ns / NSEC_PER_SEC) as i64, tv_usec: (ns % NSEC_PER_SEC / NSEC_PER_USEC) as i64 }
}

/// The running thread's CPU time, ns (`CLOCK_THREAD_CPUTIME_ID`), or
/// with `process` its process's (`CLOCK_PROCESS_CPUTIME_ID`, Linux
/// `thread_group_cputime`): every live thread's exact time and the
/// sampled time of those that exited.
pub fn current_cputime(process: bool) -> u64 {
    let me = sched::current();
    if !process {
        return me.acct.sum_exec_runtime(true);
    }
    me.proc.group.sys.group_cputime(&me.proc.group, |t| t.acct.sum_exec_runtime(core::ptr::eq(t, &*me)))
}

/// Linux `gettimeofday`: the wall clock in microseconds; the time zone,
/// if asked for, is Linux's `sys_tz`, zero here (nothing sets it).
pub fn sys_gettimeofday(tv: u64, tz: u64) -> Result<u64, Errno> {
    if tv != 0 {
        let real = ns_to_timeval(crate::drivers::rtc::ktime_get_real_ns());
        write_user(tv, &real).map_err(|_| Errno::EFAULT)?;
    }
    if tz != 0 {
        write_user(tz, &uapi::time::Timezone::default()).map_err(|_| Errno::EFAULT)?;
    }
    Ok(0)
}

/// Linux `time`: seconds of the wall clock, also stored at `tloc` if
/// given.
pub fn sys_time(tloc: u64) -> Result<u64, Errno> {
    let secs = (crate::drivers::rtc::ktime_get_real_ns() / NSEC_PER_SEC) as i64;
    if tloc != 0 {
        write_user(tloc, &secs).map_err(|_| Errno::EFAULT)?;
    }
    Ok(secs as u64)
}

/// Whether `clock` is one `clock_gettime` accepts (Linux's
/// `posix_clocks` table; 10 is a hole, its `CLOCK_SGI_CYCLE` is gone).
pub fn clock_valid(clock: i32) -> bool {
    (0..=uapi::time::CLOCK_TAI).contains(&clock) && clock != 10
}

/// Linux `clock_getres`: what a clock's timers resolve. The hrtimer
/// clocks resolve a tick here (Linux's `hrtimer_resolution` without high
/// resolution timers) as do the coarse ones (Linux `LOW_RES_NSEC`); the
/// CPU-time clocks count nanoseconds (Linux reports 1 ns for the
/// scheduler's clock). `res` may be null.
pub fn sys_clock_getres(clock: i32, res: u64) -> Result<u64, Errno> {
    use uapi::time::{CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID};
    if !clock_valid(clock) {
        return Err(Errno::EINVAL);
    }
    let ns = match clock {
        CLOCK_PROCESS_CPUTIME_ID | CLOCK_THREAD_CPUTIME_ID => 1,
        _ => TICK_NSEC,
    };
    if res != 0 {
        write_user(res, &ns_to_timespec(ns)).map_err(|_| Errno::EFAULT)?;
    }
    Ok(0)
}
