//! Timers that fire at an absolute time of the TSC clock (Linux
//! `kernel/time/hrtimer.c`), at the timer tick's resolution.
//!
//! A timer is an [`HrTimer`] inside an object implementing
//! [`HrTimerCallback`]; [`hrtimer_start`] queues it, in expiry order, on
//! one global queue (Linux's per-CPU `hrtimer_clock_base` red-black
//! trees reduced to a sorted vector), and the `ktimers` kernel thread runs
//! the callbacks of expired timers in process context (Linux's
//! `HRTIMER_MODE_SOFT` timers run from the timer softirq; PREEMPT_RT runs
//! that in `ktimers/N` threads). The thread sleeps until the first expiry
//! on the scheduler's sleeper list, which the timer tick checks, so a
//! timer fires at the first tick at or after its expiry, plus the time
//! the thread waits for its CPU: the resolution is one tick
//! ([`TICK_NSEC`], 4 ms), Linux's `hrtimer_resolution` without
//! `CONFIG_HIGH_RES_TIMERS` (`LOW_RES_NSEC`), which `clock_getres`
//! reports.
//!
//! Cancelling never waits for a running callback (Linux's
//! `hrtimer_cancel` does): every start and cancel bumps the timer's
//! sequence number, the queue remembers the number a timer was queued
//! with, and the callback gets it. Owners start and cancel their timers
//! under a lock of their own, and their callback takes that lock and
//! does nothing if the number is no longer the timer's ([`HrTimer::is_current`]):
//! the start or cancel came after the expiry, and wins.
//!
//! The queue never allocates when a timer is started: every [`HrTimer`]
//! reserves its slot when it is made ([`HrTimer::new`], which can fail
//! with ENOMEM), and a timer is queued at most once. The last timer to go
//! frees the queue's memory.
//!
//! Lock order: an owner's lock -> the queue's lock (`BASE`, a
//! [`SpinLock`]: process context only, never an interrupt handler) ->
//! run-queue locks (waking the thread). Callbacks run with no lock held.

#![forbid(unsafe_code)]

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use spin::Once;
use uapi::errno::Errno;

use crate::arch::x86_64::tsc;
pub use crate::sched::cputime::TICK_NSEC;
use crate::sched::{self, Task};
use crate::sync::SpinLock;

/// What a timer's owner does when it expires.
pub trait HrTimerCallback: Send + Sync {
    /// The timer inside the owner.
    fn hrtimer(&self) -> &HrTimer;

    /// Runs in the `ktimers` thread, no lock held, when the timer queued
    /// with sequence number `seq` expired. To repeat, the callback starts
    /// the timer again (Linux's `HRTIMER_RESTART` after `hrtimer_forward`).
    fn expired(self: Arc<Self>, seq: u64);
}

/// A timer's state (Linux `struct hrtimer`); its owner implements
/// [`HrTimerCallback`].
pub struct HrTimer {
    /// Bumped by every start and cancel, under the queue's lock.
    seq: AtomicU64,
    /// The expiry (ns of the TSC clock) of the last start.
    expires: AtomicU64,
    /// On the queue (Linux `HRTIMER_STATE_ENQUEUED`), under its lock.
    queued: AtomicBool,
}

struct Queued {
    expires: u64,
    seq: u64,
    timer: Arc<dyn HrTimerCallback>,
}

struct Base {
    /// Queued timers by expiry; equal expiries in the order queued.
    queue: Vec<Queued>,
    /// Timers alive: the queue's capacity is at least this.
    timers: usize,
}

static BASE: SpinLock<Base> = SpinLock::new(Base { queue: Vec::new(), timers: 0 });

/// The thread that runs the callbacks.
static KTIMERS: Once<Arc<Task>> = Once::new();

/// Set when the first expiry moved earlier: the thread recomputes its
/// sleep.
static REPROGRAM: AtomicBool = AtomicBool::new(false);

impl HrTimer {
    /// A timer, not queued (Linux `hrtimer_init`), with its queue slot
    /// reserved; ENOMEM without memory for it.
    pub fn new() -> Result<Self, Errno> {
        let mut base = BASE.lock();
        let want = base.timers + 1;
        let len = base.queue.len();
        base.queue.try_reserve(want - len).map_err(|_| Errno::ENOMEM)?;
        base.timers = want;
        Ok(HrTimer { seq: AtomicU64::new(0), expires: AtomicU64::new(0), queued: AtomicBool::new(false) })
    }

    /// Whether `seq`, the number an expiry was queued with, is still the
    /// timer's: no start or cancel came after it.
    pub fn is_current(&self, seq: u64) -> bool {
        self.seq.load(Ordering::Acquire) == seq
    }

    /// Whether the timer is queued (Linux `hrtimer_is_queued`).
    pub fn is_queued(&self) -> bool {
        self.queued.load(Ordering::Acquire)
    }

    /// The expiry of the last start (Linux `hrtimer_get_expires`).
    pub fn expires(&self) -> u64 {
        self.expires.load(Ordering::Relaxed)
    }

    /// Sets the expiry of a timer that is not queued (Linux
    /// `hrtimer_set_expires`: a polled POSIX timer keeps its expiry here
    /// without being queued).
    pub fn set_expires(&self, expires: u64) {
        self.expires.store(expires, Ordering::Relaxed);
    }

    /// Time left to the expiry at `now`, negative once it passed (Linux
    /// `hrtimer_get_remaining`).
    pub fn remaining(&self, now: u64) -> i64 {
        let expires = self.expires();
        if expires >= now {
            i64::try_from(expires - now).unwrap_or(i64::MAX)
        } else {
            i64::try_from(now - expires).map_or(i64::MIN, |d| -d)
        }
    }
}

impl Drop for HrTimer {
    /// Gives up the timer's slot; the last timer frees the queue's
    /// memory, so that no allocation outlives the timers that needed it.
    fn drop(&mut self) {
        // A queued timer is held by the queue, so it is not queued here.
        let mut base = BASE.lock();
        base.timers = base.timers.saturating_sub(1);
        let unused = if base.timers == 0 { core::mem::take(&mut base.queue) } else { Vec::new() };
        drop(base);
        drop(unused);
    }
}

/// Where a timer expiring at `expires` goes, after those expiring no later.
fn position(queue: &[Queued], expires: u64) -> usize {
    queue.partition_point(|q| q.expires <= expires)
}

/// Takes `timer` off the queue if it is on it, handing back the queue's
/// reference to its owner, to be dropped once the lock is released (the
/// last reference drops the timer, whose `Drop` takes the lock).
fn dequeue_locked(base: &mut Base, timer: &HrTimer) -> Option<Arc<dyn HrTimerCallback>> {
    if !timer.queued.swap(false, Ordering::AcqRel) {
        return None;
    }
    let at = base.queue.iter().position(|q| core::ptr::eq(q.timer.hrtimer(), timer))?;
    Some(base.queue.remove(at).timer)
}

/// Queues `owner`'s timer to expire at `expires` (ns of the TSC clock),
/// taking it off the queue first if it was on it (Linux `hrtimer_start`
/// in `HRTIMER_MODE_ABS`). An expiry in the past fires at once. Returns
/// the new sequence number.
pub fn hrtimer_start(owner: &Arc<dyn HrTimerCallback>, expires: u64) -> u64 {
    let timer = owner.hrtimer();
    let (seq, first, old) = {
        let mut base = BASE.lock();
        let old = dequeue_locked(&mut base, timer);
        let seq = timer.seq.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        timer.expires.store(expires, Ordering::Relaxed);
        let at = position(&base.queue, expires);
        // The slot was reserved by `HrTimer::new`: no allocation.
        base.queue.insert(at, Queued { expires, seq, timer: owner.clone() });
        timer.queued.store(true, Ordering::Release);
        (seq, at == 0, old)
    };
    drop(old);
    if first {
        REPROGRAM.store(true, Ordering::Release);
        if let Some(thread) = KTIMERS.get() {
            sched::wake_up_process(thread);
        }
    }
    seq
}

/// Takes the timer off the queue (Linux `hrtimer_try_to_cancel`, which
/// here never fails: an expiry already taken off runs its callback, which
/// sees the new sequence number and does nothing). Returns whether it was
/// queued.
pub fn hrtimer_cancel(timer: &HrTimer) -> bool {
    let old = {
        let mut base = BASE.lock();
        timer.seq.fetch_add(1, Ordering::AcqRel);
        dequeue_locked(&mut base, timer)
    };
    old.is_some()
}

/// Moves an expiry of `expires` forward by whole `interval`s until it is
/// past `now` (Linux `hrtimer_forward`); returns the new expiry and the
/// number of intervals added (0 if `expires` was still ahead of `now`).
/// An interval below the resolution counts as one tick.
pub fn hrtimer_forward(expires: u64, now: u64, interval: u64) -> (u64, u64) {
    if now < expires {
        return (expires, 0);
    }
    let interval = interval.max(TICK_NSEC);
    let delta = now - expires;
    let mut orun = delta / interval;
    let mut next = expires.saturating_add(orun.saturating_mul(interval));
    if next <= now {
        next = next.saturating_add(interval);
        orun += 1;
    }
    (next, orun)
}

/// The next expired timer, taken off the queue, or the first expiry to
/// wait for (`u64::MAX` for none).
fn next_expired(now: u64) -> Result<Queued, u64> {
    let mut base = BASE.lock();
    match base.queue.first() {
        Some(q) if q.expires <= now => {
            let q = base.queue.remove(0);
            q.timer.hrtimer().queued.store(false, Ordering::Release);
            Ok(q)
        }
        Some(q) => Err(q.expires),
        None => Err(u64::MAX),
    }
}

/// The `ktimers` thread: runs expired timers' callbacks, then sleeps until
/// the next expiry or until an earlier one is queued.
fn ktimers() {
    loop {
        let now = tsc::now_ns();
        let next = loop {
            match next_expired(now) {
                Ok(q) => q.timer.expired(q.seq),
                Err(next) => break next,
            }
        };
        crate::sched::wait::sleep_until_ns(next, || REPROGRAM.swap(false, Ordering::AcqRel));
    }
}

/// Starts the `ktimers` thread (Linux `hrtimers_init` and the softirq's
/// thread). Without it, timers are queued but never fire; the boot log
/// says so.
pub fn init() {
    match sched::kthread_run("ktimers", ktimers) {
        Ok(task) => {
            KTIMERS.call_once(|| task);
        }
        Err(e) => log::warn!("ktimers: cannot start: {e:?}; timers will not fire"),
    }
}
