//! Timers (kernel/src/time/hrtimer.rs): expiry arithmetic, firing,
//! cancelling and restarting from the callback.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU32, Ordering};

use kernel::sched::wait::{WaitQueue, sleep_until_ns};
use kernel::time::hrtimer::{HrTimer, HrTimerCallback, TICK_NSEC, hrtimer_cancel, hrtimer_forward, hrtimer_start};
use kernel::time::now;
use ktest_macros::ktest;

const MS: u64 = 1_000_000;

/// Counts its expiries and restarts itself until it has `restarts` more.
struct Counter {
    timer: HrTimer,
    fired: AtomicU32,
    restarts: AtomicU32,
    wq: WaitQueue,
}

impl Counter {
    fn new(restarts: u32) -> Arc<Counter> {
        Arc::new(Counter {
            timer: HrTimer::new().expect("a timer's queue slot"),
            fired: AtomicU32::new(0),
            restarts: AtomicU32::new(restarts),
            wq: WaitQueue::new(),
        })
    }

    fn start(self: &Arc<Self>, expires: u64) {
        let owner: Arc<dyn HrTimerCallback> = self.clone();
        hrtimer_start(&owner, expires);
    }
}

impl HrTimerCallback for Counter {
    fn hrtimer(&self) -> &HrTimer {
        &self.timer
    }

    fn expired(self: Arc<Self>, seq: u64) {
        if !self.timer.is_current(seq) {
            return;
        }
        self.fired.fetch_add(1, Ordering::AcqRel);
        if self.restarts.load(Ordering::Acquire) > 0 {
            self.restarts.fetch_sub(1, Ordering::AcqRel);
            let (next, _) = hrtimer_forward(self.timer.expires(), now(), 5 * MS);
            self.start(next);
        }
        self.wq.wake_up_all();
    }
}

#[ktest]
fn hrtimer_forward_moves_an_expiry_past_now_by_whole_intervals() {
    let iv = 10 * MS;
    assert_eq!(hrtimer_forward(100 * MS, 50 * MS, iv), (100 * MS, 0), "an expiry ahead stays");
    assert_eq!(hrtimer_forward(100 * MS, 100 * MS, iv), (110 * MS, 1), "an expiry at now moves one interval");
    assert_eq!(hrtimer_forward(100 * MS, 125 * MS, iv), (130 * MS, 3), "2.5 intervals late: 3 added");
    assert_eq!(hrtimer_forward(100 * MS, 130 * MS, iv), (140 * MS, 4), "exactly 3 late: 4 added, past now");
    assert_eq!(hrtimer_forward(0, TICK_NSEC / 2, 1), (TICK_NSEC, 1), "an interval below a tick counts as a tick");
}

#[ktest]
fn a_started_timer_fires_once() {
    let c = Counter::new(0);
    c.start(now() + 10 * MS);
    c.wq.wait_event(|| c.fired.load(Ordering::Acquire) == 1);
    assert!(!c.timer.is_queued(), "a fired timer is off the queue");
    sleep_until_ns(now() + 20 * MS, || false);
    assert_eq!(c.fired.load(Ordering::Acquire), 1, "a one-shot timer fired again");
}

#[ktest]
fn a_cancelled_timer_never_fires() {
    let c = Counter::new(0);
    c.start(now() + 10 * MS);
    assert!(hrtimer_cancel(&c.timer), "the timer was queued");
    assert!(!hrtimer_cancel(&c.timer), "a second cancel finds nothing queued");
    sleep_until_ns(now() + 30 * MS, || false);
    assert_eq!(c.fired.load(Ordering::Acquire), 0);
}

#[ktest]
fn a_restarted_timer_moves_to_its_new_expiry() {
    let c = Counter::new(0);
    c.start(now() + 10 * MS);
    // Moved far away: the first expiry must not fire it.
    c.start(now() + 10_000 * MS);
    sleep_until_ns(now() + 30 * MS, || false);
    assert_eq!(c.fired.load(Ordering::Acquire), 0, "the earlier expiry fired");
    assert!(c.timer.is_queued());
    assert!(hrtimer_cancel(&c.timer));
}

#[ktest]
fn a_callback_restarts_its_timer() {
    let c = Counter::new(3);
    c.start(now() + 5 * MS);
    c.wq.wait_event(|| c.fired.load(Ordering::Acquire) == 4);
    assert_eq!(c.restarts.load(Ordering::Acquire), 0);
}
