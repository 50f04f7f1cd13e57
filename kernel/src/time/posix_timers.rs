//! POSIX timers (Linux `kernel/time/posix-timers.c`): `timer_create`,
//! `timer_settime`, `timer_gettime`, `timer_getoverrun`, `timer_delete`,
//! on `CLOCK_MONOTONIC`, `CLOCK_BOOTTIME`, `CLOCK_REALTIME` and
//! `CLOCK_TAI`, notifying by signal (`SIGEV_SIGNAL`, `SIGEV_THREAD`,
//! `SIGEV_THREAD_ID` naming a thread of the process, which gets the
//! signal alone) or not at all
//! (`SIGEV_NONE`, polled with `timer_gettime`).
//!
//! Each timer (Linux `struct k_itimer`) has an id from 0 up, unique in
//! its process, and an hrtimer ([`super::ProcTimer`]). Expiry
//! ([`PosixTimers::posix_timer_fn`]) sends the signal with `si_code`
//! `SI_TIMER`, `si_timerid`, the `sigev_value` as `si_value` and
//! `si_overrun`; a periodic timer is not restarted then but when its
//! signal is dequeued ([`PosixTimers::posixtimer_rearm`]), forwarded past
//! now by whole periods, the periods skipped becoming the overrun count
//! that the dequeued `si_overrun` and `timer_getoverrun` report (Linux's
//! `it_requeue_pending`, `it_overrun`, `it_overrun_last`). If the signal
//! is ignored, a periodic timer restarts at once and counts overruns.
//!
//! Timers are deleted at exec and exit (Linux `exit_itimers`) and not
//! inherited at fork. A process may have as many as its
//! `RLIMIT_SIGPENDING` (Linux charges each timer's preallocated
//! `sigqueue` to it; EAGAIN beyond).
//!
//! Differences from Linux: the CPU-time clocks and the alarm clocks have
//! no timers (EOPNOTSUPP, which Linux gives for the clocks without
//! timers); one pending instance per signal number (signal.rs), so two
//! timers sharing a signal share its pending slot, and an expiry while
//! the signal is still pending replaces its siginfo (Linux counts it in
//! the queued one's `si_overrun`).

#![forbid(unsafe_code)]

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use uapi::errno::Errno;
use uapi::signal::{SI_TIMER, SIGALRM, SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD, SIGEV_THREAD_ID, SigInfo, Sigevent};
use uapi::time::{Itimerspec, TIMER_ABSTIME};

use super::hrtimer;
use super::{ProcTimer, TimerKind, now, ns_to_timespec, timespec_to_ns};
use crate::arch::x86_64::uaccess::{read_user, write_user};
use crate::sched::{self, Task};

/// One timer (Linux `struct k_itimer`).
struct KItimer {
    id: i32,
    /// The hrtimer; expiries are kept on the TSC clock.
    timer: Arc<ProcTimer>,
    /// On the wall clock: an absolute expiry is converted.
    realtime: bool,
    /// `SIGEV_NONE` or a signal notification.
    sigev_none: bool,
    /// The signal and its `si_value`.
    signo: i32,
    value: u64,
    /// `SIGEV_THREAD_ID`'s thread, which gets the signal alone (musl's
    /// `SIGEV_THREAD` timers name their helper thread so); else the
    /// process gets it.
    thread: Option<Weak<Task>>,
    /// The period, ns (Linux `it_interval`).
    interval: u64,
    /// Armed and not yet expired, or expired with a restart due (Linux
    /// `it_active`).
    active: bool,
    /// Expired with a period, its signal not yet dequeued (Linux's odd
    /// `it_requeue_pending`).
    requeue_pending: bool,
    /// Periods skipped since the last restart, less one (Linux
    /// `it_overrun`, -1 after a restart).
    overrun: i64,
    /// The overrun count at the last restart (Linux `it_overrun_last`).
    overrun_last: i64,
}

/// A process's POSIX timers (Linux `signal->posix_timers`), under the
/// process's timer lock.
#[derive(Default)]
pub struct PosixTimers {
    timers: Vec<KItimer>,
    /// The next id to try (Linux `next_posix_timer_id`).
    next_id: i32,
}

impl KItimer {
    /// The signal's siginfo (Linux's preallocated `sigq->info`).
    fn siginfo(&self, overrun: i32) -> SigInfo {
        let mut info = SigInfo::new(self.signo, SI_TIMER);
        info.set_si_timerid(self.id);
        info.set_si_overrun(overrun);
        info.set_si_value(self.value);
        info
    }

    /// Moves the expiry past `now` by whole periods and restarts the
    /// hrtimer, counting the periods as overruns (Linux
    /// `common_hrtimer_rearm`).
    fn forward_and_restart(&mut self, now: u64) {
        let (next, orun) = hrtimer::hrtimer_forward(self.timer.timer().expires(), now, self.interval);
        self.overrun = self.overrun.saturating_add(i64::try_from(orun).unwrap_or(i64::MAX));
        self.timer.start(next);
    }

    /// The overrun count as `timer_getoverrun` gives it (Linux
    /// `timer_overrun_to_int`): clamped to `INT_MAX`.
    fn overrun_to_int(&self, base: i32) -> i32 {
        self.overrun_last.saturating_add(i64::from(base)).min(i64::from(i32::MAX)) as i32
    }

    /// Time left and period (Linux `common_timer_get`). A periodic timer
    /// whose signal is pending, or a polled one, is first moved past now,
    /// counting overruns; a signalled timer that expired but whose signal
    /// is not yet delivered shows 1 ns; an expired one-shot shows 0.
    fn get(&mut self, now: u64) -> Itimerspec {
        let mut cur = Itimerspec { it_interval: ns_to_timespec(self.interval), ..Itimerspec::default() };
        if self.interval == 0 && !self.active && !self.sigev_none {
            return cur;
        }
        if self.interval != 0 && (self.requeue_pending || self.sigev_none) {
            let (next, orun) = hrtimer::hrtimer_forward(self.timer.timer().expires(), now, self.interval);
            self.overrun = self.overrun.saturating_add(i64::try_from(orun).unwrap_or(i64::MAX));
            // The hrtimer is not queued here: only its expiry moves.
            self.timer.timer().set_expires(next);
        }
        let remaining = self.timer.timer().remaining(now);
        if remaining <= 0 {
            if !self.sigev_none {
                cur.it_value.tv_nsec = 1;
            }
        } else {
            cur.it_value = ns_to_timespec(remaining as u64);
        }
        cur
    }

    /// Disarms it (the first half of Linux `common_timer_set`).
    fn disarm(&mut self) {
        self.interval = 0;
        hrtimer::hrtimer_cancel(self.timer.timer());
        self.active = false;
        self.requeue_pending = false;
        self.overrun_last = 0;
    }
}

impl PosixTimers {
    fn find(&mut self, id: i32) -> Result<&mut KItimer, Errno> {
        self.timers.iter_mut().find(|t| t.id == id).ok_or(Errno::EINVAL)
    }

    /// An unused id (Linux `posix_timer_add`), counting up from the last.
    fn alloc_id(&mut self) -> i32 {
        loop {
            let id = self.next_id;
            self.next_id = if id == i32::MAX { 0 } else { id + 1 };
            if self.timers.iter().all(|t| t.id != id) {
                return id;
            }
        }
    }

    /// Deletes every timer (Linux `exit_itimers`, at exec and exit).
    pub fn exit_itimers(&mut self) {
        for t in &mut self.timers {
            t.disarm();
        }
        self.timers.clear();
    }

    /// The timer whose hrtimer is `node` expired (Linux
    /// `posix_timer_fn`): sends its signal; if the signal is ignored, a
    /// periodic timer restarts now.
    pub(super) fn posix_timer_fn(&mut self, task: &Arc<Task>, node: &ProcTimer) {
        let Some(t) = self.timers.iter_mut().find(|t| core::ptr::eq(Arc::as_ptr(&t.timer), node)) else { return };
        t.active = false;
        if t.sigev_none {
            return;
        }
        t.requeue_pending = t.interval != 0;
        let target = t.thread.as_ref().and_then(Weak::upgrade);
        let sent = match &target {
            Some(thread) => crate::signal::send_signal_thread(thread, t.signo, Some(t.siginfo(0))),
            None => crate::signal::send_signal(task, t.signo, Some(t.siginfo(0))),
        };
        if !sent && t.interval != 0 {
            t.requeue_pending = false;
            t.forward_and_restart(now());
            t.active = true;
        }
    }

    /// The signal of a timer was dequeued with `info` (Linux
    /// `posixtimer_rearm`): a periodic timer restarts past now, and the
    /// periods it skipped become its overrun count, added to `info`'s.
    pub fn posixtimer_rearm(&mut self, info: &mut SigInfo) {
        let Ok(t) = self.find(info.si_timerid()) else { return };
        if t.interval == 0 || !t.requeue_pending || t.signo != info.si_signo {
            return;
        }
        t.forward_and_restart(now());
        t.active = true;
        t.overrun_last = t.overrun;
        t.overrun = -1;
        t.requeue_pending = false;
        let overrun = t.overrun_to_int(info.si_overrun());
        info.set_si_overrun(overrun);
    }
}

/// The clocks that have timers; the rest are EOPNOTSUPP or, outside the
/// table, EINVAL (Linux `clockid_to_kclock` and a `k_clock` without
/// `timer_create`).
fn timer_clock_offset(clock: i32) -> Result<bool, Errno> {
    use uapi::time::{CLOCK_BOOTTIME, CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_TAI};
    match clock {
        CLOCK_MONOTONIC | CLOCK_BOOTTIME => Ok(false),
        CLOCK_REALTIME | CLOCK_TAI => Ok(true),
        c if super::clock_valid(c) => Err(Errno::EOPNOTSUPP),
        _ => Err(Errno::EINVAL),
    }
}

/// Linux `timer_create`: `event` null means `SIGEV_SIGNAL` with
/// `SIGALRM` and the timer's id as `si_value`; stores the id at
/// `created_timer_id` (EFAULT leaves no timer).
pub fn sys_timer_create(clock: i32, event: u64, created_timer_id: u64) -> Result<u64, Errno> {
    let realtime = timer_clock_offset(clock)?;
    let ev = if event != 0 { Some(read_user::<Sigevent>(event).map_err(|_| Errno::EFAULT)?) } else { None };
    let me = sched::current();
    // Linux `good_sigevent`.
    let mut thread = None;
    let (sigev_none, signo) = match ev {
        None => (false, SIGALRM),
        Some(ev) => {
            match ev.sigev_notify {
                SIGEV_NONE | SIGEV_SIGNAL | SIGEV_THREAD => {}
                n if n == SIGEV_SIGNAL | SIGEV_THREAD_ID => {
                    // A thread of the caller's process.
                    let tid = u32::try_from(ev.sigev_notify_thread_id).map_err(|_| Errno::EINVAL)?;
                    let found = me.proc.group.thread_list().into_iter().find(|t| t.pid == tid);
                    thread = Some(Arc::downgrade(&found.ok_or(Errno::EINVAL)?));
                }
                _ => return Err(Errno::EINVAL),
            }
            if ev.sigev_notify != SIGEV_NONE && !(1..=uapi::signal::SIGRTMAX).contains(&ev.sigev_signo) {
                return Err(Errno::EINVAL);
            }
            (ev.sigev_notify == SIGEV_NONE, ev.sigev_signo)
        }
    };
    let limit = {
        let rlim = me.proc.group.rlim.lock();
        crate::resource::Resource::new(uapi::resource::RLIMIT_SIGPENDING).map(|r| rlim.cur(r))?
    };
    // Made before the lock: the hrtimer's queue slot may need memory.
    let timer = ProcTimer::new(&me, TimerKind::Posix).map_err(|_| Errno::EAGAIN)?;
    let id = {
        let mut timers = me.proc.group.sys.timers.lock();
        let posix = &mut timers.posix;
        if posix.timers.len() as u64 >= limit {
            return Err(Errno::EAGAIN);
        }
        posix.timers.try_reserve(1).map_err(|_| Errno::EAGAIN)?;
        let id = posix.alloc_id();
        let value = ev.map_or(id as u64, |e| e.sigev_value);
        posix.timers.push(KItimer {
            id,
            timer,
            realtime,
            sigev_none,
            signo,
            value,
            thread,
            interval: 0,
            active: false,
            requeue_pending: false,
            overrun: 0,
            overrun_last: 0,
        });
        id
    };
    if write_user(created_timer_id, &id).is_err() {
        let removed = {
            let mut timers = me.proc.group.sys.timers.lock();
            let posix = &mut timers.posix;
            posix.timers.iter().position(|t| t.id == id).map(|i| posix.timers.swap_remove(i))
        };
        drop(removed);
        return Err(Errno::EFAULT);
    }
    Ok(0)
}

/// Linux `timer_settime`: the new setting is read (EFAULT; null is
/// EINVAL) and checked (EINVAL), the timer looked up (EINVAL), disarmed
/// and, unless the new value is zero, armed at the value from now or, with
/// `TIMER_ABSTIME`, at the value on its clock (a time past fires at
/// once); the old setting is stored last.
pub fn sys_timer_settime(id: i32, flags: u32, new: u64, old: u64) -> Result<u64, Errno> {
    if new == 0 {
        return Err(Errno::EINVAL);
    }
    let spec: Itimerspec = read_user(new).map_err(|_| Errno::EFAULT)?;
    let value = timespec_to_ns(&spec.it_value).ok_or(Errno::EINVAL)?;
    let interval = timespec_to_ns(&spec.it_interval).ok_or(Errno::EINVAL)?;
    let me = sched::current();
    let previous = {
        let mut timers = me.proc.group.sys.timers.lock();
        let t = timers.posix.find(id)?;
        let now = now();
        let previous = t.get(now);
        t.disarm();
        if value != 0 {
            t.interval = interval;
            let expires = if flags & TIMER_ABSTIME != 0 {
                if t.realtime { value.saturating_sub(crate::drivers::rtc::offs_real_ns()) } else { value }
            } else {
                now.saturating_add(value)
            };
            if t.sigev_none {
                t.timer.timer().set_expires(expires);
            } else {
                t.timer.start(expires);
            }
            t.active = !t.sigev_none;
        }
        previous
    };
    if old != 0 {
        write_user(old, &previous).map_err(|_| Errno::EFAULT)?;
    }
    Ok(0)
}

/// Linux `timer_gettime`: EINVAL for an unknown id.
pub fn sys_timer_gettime(id: i32, setting: u64) -> Result<u64, Errno> {
    let cur = sched::current().proc.group.sys.timers.lock().posix.find(id)?.get(now());
    write_user(setting, &cur).map_err(|_| Errno::EFAULT)?;
    Ok(0)
}

/// Linux `timer_getoverrun`: the overrun count at the last restart.
pub fn sys_timer_getoverrun(id: i32) -> Result<u64, Errno> {
    let overrun = sched::current().proc.group.sys.timers.lock().posix.find(id)?.overrun_to_int(0);
    Ok(overrun as u64)
}

/// Linux `timer_delete`: a signal already pending stays pending.
pub fn sys_timer_delete(id: i32) -> Result<u64, Errno> {
    let me = sched::current();
    let removed = {
        let mut timers = me.proc.group.sys.timers.lock();
        let posix = &mut timers.posix;
        let i = posix.timers.iter().position(|t| t.id == id).ok_or(Errno::EINVAL)?;
        let mut t = posix.timers.swap_remove(i);
        t.disarm();
        t
    };
    drop(removed);
    Ok(0)
}
