//! Interval timers (Linux `kernel/time/itimer.c`, and the process-wide
//! CPU itimer checks of `kernel/time/posix-cpu-timers.c`): `setitimer`,
//! `getitimer`, `alarm`.
//!
//! - `ITIMER_REAL` counts the TSC clock on an hrtimer ([`super::ProcTimer`]);
//!   its expiry sends `SIGALRM`, and a periodic one is restarted when that
//!   `SIGALRM` is dequeued, forwarded past now by whole intervals (Linux
//!   `it_real_fn` and `dequeue_signal`). A process that ignores
//!   `SIGALRM` therefore stops its periodic timer, as on Linux.
//! - `ITIMER_VIRTUAL` (user time, `SIGVTALRM`) and `ITIMER_PROF` (user
//!   plus system time, `SIGPROF`) count the tick-sampled CPU time of
//!   [`crate::sched::cputime`]. The tick compares the running task's
//!   time with the armed expiries ([`run_posix_cpu_timers`], Linux's
//!   `fastpath_timer_check`) and, when one passed, marks the process;
//!   the signal is sent in process context on its way back to user mode
//!   ([`handle_posix_cpu_timers`], Linux's `posix_cpu_timers_work` task
//!   work), where the expiry also moves on by its interval. Resolution:
//!   a tick; setting one adds a tick, as Linux does, so it never fires
//!   early.
//!
//! Inheritance: none at fork (the child starts with all three off, Linux
//! `copy_signal`); all three survive exec (POSIX); exit cancels them.
//!
//! Differences from Linux: the tick compares the expiries of
//! `ITIMER_VIRTUAL` and `ITIMER_PROF` with the CPU time of the thread it
//! samples, not the thread group's sum (Linux
//! `thread_group_sample_cputime`), and the time of threads that exited
//! does not count (see `cpu_sample`).

#![forbid(unsafe_code)]

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use uapi::errno::Errno;
use uapi::signal::{SIGALRM, SIGPROF, SIGVTALRM};
use uapi::time::{ITIMER_PROF, ITIMER_REAL, ITIMER_VIRTUAL, Itimerval};

use super::hrtimer::{self, TICK_NSEC};
use super::{NSEC_PER_SEC, NSEC_PER_USEC, ProcTimer, TimerKind, now, ns_to_timeval, timeval_to_ns};
use crate::arch::x86_64::uaccess::{read_user, write_user};
use crate::sched::{self, Task};

/// An itimer's setting: time to the next expiry and the period, ns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ItimerValue {
    /// Time to the next expiry; 0 for disarmed.
    pub value: u64,
    /// The period; 0 for one shot.
    pub interval: u64,
}

impl ItimerValue {
    fn to_user(self) -> Itimerval {
        Itimerval { it_interval: ns_to_timeval(self.interval), it_value: ns_to_timeval(self.value) }
    }
}

/// `ITIMER_REAL` (Linux `signal->real_timer`, `it_real_incr`), under the
/// process's timer lock.
#[derive(Default)]
pub struct RealItimer {
    /// The hrtimer, made at the first `setitimer`.
    timer: Option<Arc<ProcTimer>>,
    /// The period, ns (Linux `it_real_incr`).
    incr: u64,
}

impl RealItimer {
    /// Time left and period (Linux `itimer_get_remtime`): a queued timer
    /// whose expiry just passed shows 1 µs, so it does not look disarmed.
    fn get(&self, now: u64) -> ItimerValue {
        let value = match &self.timer {
            Some(t) if t.timer().is_queued() => {
                u64::try_from(t.timer().remaining(now)).ok().filter(|&r| r > 0).unwrap_or(NSEC_PER_USEC)
            }
            _ => 0,
        };
        ItimerValue { value, interval: self.incr }
    }

    /// Disarms it (exit; Linux `hrtimer_cancel(&sig->real_timer)`).
    pub fn cancel(&mut self) {
        if let Some(t) = &self.timer {
            hrtimer::hrtimer_cancel(t.timer());
        }
        self.incr = 0;
    }

    /// Restarts a periodic timer whose `SIGALRM` was just dequeued, past
    /// `now` by whole periods (Linux `dequeue_signal`).
    pub fn rearm(&mut self, now: u64) {
        let Some(t) = &self.timer else { return };
        if self.incr == 0 || t.timer().is_queued() {
            return;
        }
        let (next, _) = hrtimer::hrtimer_forward(t.timer().expires(), now, self.incr);
        t.start(next);
    }
}

/// Sends the expired `ITIMER_REAL`'s `SIGALRM` (Linux `it_real_fn`),
/// under the process's timer lock.
pub(super) fn it_real_fn(task: &Arc<Task>) {
    crate::signal::send_signal(task, SIGALRM, None);
}

/// `ITIMER_VIRTUAL` and `ITIMER_PROF` (Linux `signal->it[]`): expiries
/// in the process's CPU time and periods, ns, 0 when off. Atomics, as
/// the tick reads the expiries; written in process context under the
/// process's timer lock.
#[derive(Default)]
pub struct CpuItimers {
    expires: [AtomicU64; 2],
    incr: [AtomicU64; 2],
    /// Set by the tick when an expiry passed (Linux's
    /// `posix_cputimers_work.scheduled`).
    fired: AtomicBool,
}

/// Index into [`CpuItimers`] of `ITIMER_VIRTUAL` (Linux `CPUCLOCK_VIRT`).
const VIRT: usize = 0;
/// Index of `ITIMER_PROF` (Linux `CPUCLOCK_PROF`).
const PROF: usize = 1;

/// The CPU time that `which` counts, ns, of the thread the tick samples
/// (Linux `thread_group_sample_cputime` sums the process's threads; the
/// tick runs in interrupt context, where the thread list's lock may not
/// be taken, so each thread's time counts against the process's timers
/// as it runs, and the exited threads' time not at all).
fn cpu_sample(task: &Task, which: usize) -> u64 {
    if which == VIRT { task.acct.utime() } else { task.acct.prof_time() }
}

impl CpuItimers {
    /// Disarms both (exit).
    pub fn cancel(&self) {
        for i in [VIRT, PROF] {
            self.expires[i].store(0, Ordering::Relaxed);
            self.incr[i].store(0, Ordering::Relaxed);
        }
    }

    /// Time left and period of `which` (Linux `get_cpu_itimer`): an
    /// expiry already passed but not yet handled shows a tick.
    fn get(&self, task: &Task, which: usize) -> ItimerValue {
        let expires = self.expires[which].load(Ordering::Relaxed);
        let value = match expires {
            0 => 0,
            e => e.checked_sub(cpu_sample(task, which)).filter(|&left| left > 0).unwrap_or(TICK_NSEC),
        };
        ItimerValue { value, interval: self.incr[which].load(Ordering::Relaxed) }
    }

    /// Arms `which` to expire after `new.value` more of its CPU time, one
    /// tick later so that it cannot fire early (Linux `set_cpu_itimer`).
    fn set(&self, task: &Task, which: usize, new: ItimerValue) {
        let expires = match new.value {
            0 => 0,
            v => v.saturating_add(TICK_NSEC).saturating_add(cpu_sample(task, which)),
        };
        self.expires[which].store(expires, Ordering::Relaxed);
        self.incr[which].store(new.interval, Ordering::Relaxed);
    }
}

/// The tick's check of the running task's CPU itimers (Linux
/// `run_posix_cpu_timers`'s fast path): marks its process if one expired,
/// for [`handle_posix_cpu_timers`] on the way back to user mode. Interrupt
/// context: atomics only.
pub fn run_posix_cpu_timers(task: &Task) {
    let cpu = &task.proc.group.sys.cpu_itimers;
    for which in [VIRT, PROF] {
        let expires = cpu.expires[which].load(Ordering::Relaxed);
        if expires != 0 && cpu_sample(task, which) >= expires {
            cpu.fired.store(true, Ordering::Release);
        }
    }
}

/// Sends the signals of the running task's expired CPU itimers and moves
/// them on by their periods (Linux `check_cpu_itimer` from
/// `handle_posix_cpu_timers`). Process context, on the way to user mode.
pub fn handle_posix_cpu_timers(task: &Arc<Task>) {
    let cpu = &task.proc.group.sys.cpu_itimers;
    if !cpu.fired.swap(false, Ordering::AcqRel) {
        return;
    }
    let _timers = task.proc.group.sys.timers.lock();
    for (which, sig) in [(VIRT, SIGVTALRM), (PROF, SIGPROF)] {
        let expires = cpu.expires[which].load(Ordering::Relaxed);
        if expires == 0 || cpu_sample(task, which) < expires {
            continue;
        }
        let incr = cpu.incr[which].load(Ordering::Relaxed);
        let next = if incr != 0 { expires.saturating_add(incr) } else { 0 };
        cpu.expires[which].store(next, Ordering::Relaxed);
        crate::signal::send_signal(task, sig, None);
    }
}

/// Linux `do_getitimer`.
fn do_getitimer(task: &Task, which: i32) -> Result<ItimerValue, Errno> {
    match which {
        ITIMER_REAL => Ok(task.proc.group.sys.timers.lock().real.get(now())),
        ITIMER_VIRTUAL => Ok(task.proc.group.sys.cpu_itimers.get(task, VIRT)),
        ITIMER_PROF => Ok(task.proc.group.sys.cpu_itimers.get(task, PROF)),
        _ => Err(Errno::EINVAL),
    }
}

/// Linux `do_setitimer`: sets `which` to `new`, returning the old setting.
pub fn do_setitimer(task: &Arc<Task>, which: i32, new: ItimerValue) -> Result<ItimerValue, Errno> {
    match which {
        ITIMER_REAL => {
            // Made before the lock: the queue slot may need memory.
            let made = {
                let exists = task.proc.group.sys.timers.lock().real.timer.is_some();
                if exists || new.value == 0 { None } else { Some(ProcTimer::new(task, TimerKind::Real)?) }
            };
            let mut timers = task.proc.group.sys.timers.lock();
            let real = &mut timers.real;
            let now = now();
            let old = real.get(now);
            if real.timer.is_none() {
                real.timer = made;
            }
            if let Some(t) = &real.timer {
                hrtimer::hrtimer_cancel(t.timer());
                if new.value != 0 {
                    t.start(now.saturating_add(new.value));
                }
            }
            real.incr = if new.value != 0 { new.interval } else { 0 };
            Ok(old)
        }
        ITIMER_VIRTUAL | ITIMER_PROF => {
            let i = if which == ITIMER_VIRTUAL { VIRT } else { PROF };
            let _timers = task.proc.group.sys.timers.lock();
            let cpu = &task.proc.group.sys.cpu_itimers;
            let old = cpu.get(task, i);
            cpu.set(task, i, new);
            Ok(old)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// Linux `getitimer`.
pub fn sys_getitimer(which: i32, value: u64) -> Result<u64, Errno> {
    let cur = do_getitimer(&sched::current(), which)?;
    write_user(value, &cur.to_user()).map_err(|_| Errno::EFAULT)?;
    Ok(0)
}

/// Linux `setitimer`: the new value is read and checked first (EFAULT,
/// EINVAL); a null one disarms (a Linux misfeature kept for
/// compatibility); the old one is stored after the change.
pub fn sys_setitimer(which: i32, value: u64, ovalue: u64) -> Result<u64, Errno> {
    let new = if value != 0 {
        let v: Itimerval = read_user(value).map_err(|_| Errno::EFAULT)?;
        ItimerValue {
            value: timeval_to_ns(&v.it_value).ok_or(Errno::EINVAL)?,
            interval: timeval_to_ns(&v.it_interval).ok_or(Errno::EINVAL)?,
        }
    } else {
        ItimerValue::default()
    };
    let old = do_setitimer(&sched::current(), which, new)?;
    if ovalue != 0 {
        write_user(ovalue, &old.to_user()).map_err(|_| Errno::EFAULT)?;
    }
    Ok(0)
}

/// Linux `alarm`: `ITIMER_REAL` one shot in `seconds` (0 disarms);
/// returns the seconds the previous alarm had left, rounded to the
/// nearest and at least 1 if any time was left (Linux `alarm_setitimer`).
pub fn sys_alarm(seconds: u32) -> Result<u64, Errno> {
    let new = ItimerValue { value: u64::from(seconds) * NSEC_PER_SEC, interval: 0 };
    let old = do_setitimer(&sched::current(), ITIMER_REAL, new)?;
    let (secs, nsec) = (old.value / NSEC_PER_SEC, old.value % NSEC_PER_SEC);
    let round_up = (secs == 0 && nsec != 0) || nsec >= NSEC_PER_SEC / 2;
    Ok(secs + u64::from(round_up))
}
