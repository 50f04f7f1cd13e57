//! Waiting on a futex word and waking its waiters (Linux
//! `kernel/futex/waitwake.c`: `futex_wait`, `futex_wait_setup`,
//! `futex_wait_queue`, `futex_wake`).
//!
//! The waiter reads the word under the bucket lock and queues itself
//! before dropping it; the waker changes the word first and takes the
//! same lock to find its waiters. So either the waiter sees the new value
//! (and returns `EAGAIN`) or the waker finds it queued: no wake-up is
//! lost (Linux's "basic futex operation and ordering guarantees"; without
//! Linux's lockless "no waiters" check, the bucket lock alone orders the
//! two).

#![forbid(unsafe_code)]

use alloc::sync::Arc;

use mm::futex::{FutexAddr, FutexKey};
use uapi::errno::Errno;

use super::core::{
    FutexQ, FutexQNode, FutexWaiter, fault_in_word, futex_get_value_locked, futex_hash, futex_unqueue, futex_wake_mark,
    get_futex_key, lock_bucket, wake_up_q,
};
use crate::arch::x86_64::tsc;
use crate::sched::{self, TaskState, set_current_state, wait};
use crate::signal::signal_pending;

/// `FUTEX_WAIT` and `FUTEX_WAIT_BITSET` (Linux `futex_wait`): sleeps while
/// the word at `uaddr` holds `val`, until a wake-up whose mask meets
/// `bitset`, the monotonic clock passing `deadline_ns`, or a signal.
/// Returns 0 when woken.
///
/// Errors: `EINVAL` for an empty `bitset` (before the address is looked
/// at) or an unaligned word; `EFAULT` for a word that cannot be read;
/// `EAGAIN` if the word does not hold `val`; `ETIMEDOUT`; `EINTR` for a
/// signal. Linux returns `ERESTARTSYS` for the signal, which becomes
/// `EINTR` for a handler without `SA_RESTART` and restarts the wait for
/// one with it; we have no restart, so the caller always sees `EINTR`.
pub fn futex_wait(uaddr: u64, shared: bool, val: u32, deadline_ns: Option<u64>, bitset: u32) -> Result<u64, Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let uaddr = FutexAddr::new(uaddr)?;
    let me = sched::current();
    let waiter = FutexWaiter::current();
    loop {
        futex_wait_setup(uaddr, shared, val, bitset, &waiter)?;
        // Linux's schedule() does not sleep in TASK_INTERRUPTIBLE with a
        // signal pending; ours does not look, so look here, with the state
        // set: a signal sent after this finds the task sleeping and wakes
        // it.
        if signal_pending(&me) {
            set_current_state(TaskState::Running);
        } else {
            wait::schedule_hrtimeout(deadline_ns);
        }
        if !futex_unqueue(&waiter) {
            return Ok(0);
        }
        if deadline_ns.is_some_and(|deadline| tsc::now_ns() >= deadline) {
            return Err(Errno::ETIMEDOUT);
        }
        if signal_pending(&me) {
            return Err(Errno::EINTR);
        }
        // Woken for something else while still queued: wait again.
    }
}

/// Queues `waiter` on the word at `uaddr` if it holds `val` (Linux
/// `futex_wait_setup` and `futex_queue`), with the task's state set to
/// interruptible sleep under the bucket lock, before a waker can find it.
/// A word that is not present is faulted in with no lock held, and the
/// key computed again for a shared futex (the mapping may have changed
/// meanwhile).
fn futex_wait_setup(
    uaddr: FutexAddr,
    shared: bool,
    val: u32,
    bitset: u32,
    waiter: &Arc<FutexWaiter>,
) -> Result<(), Errno> {
    'retry: loop {
        let key = get_futex_key(uaddr, shared)?;
        let bucket = futex_hash(&key);
        // Allocated before the lock, relinked under it.
        let node = FutexQNode::new(FutexQ { key, bitset, waiter: waiter.clone() });
        loop {
            let mut chain = lock_bucket(bucket);
            match futex_get_value_locked(uaddr) {
                Ok(uval) if uval != val => return Err(Errno::EAGAIN),
                Ok(_) => {
                    set_current_state(TaskState::Interruptible);
                    waiter.set_queued_on(bucket);
                    chain.queue(node);
                    return Ok(());
                }
                Err(_) => {
                    drop(chain);
                    fault_in_word(uaddr)?;
                    if shared {
                        continue 'retry;
                    }
                }
            }
        }
    }
}

/// `FUTEX_WAKE` and `FUTEX_WAKE_BITSET` (Linux `futex_wake`): wakes up to
/// `nr_wake` waiters on the word at `uaddr` whose mask meets `bitset`, at
/// least one if there is one (Linux counts in an `int`: 0 and negative
/// counts wake one). Returns how many it woke.
///
/// Errors: `EINVAL` for an empty `bitset` or an unaligned word; `EFAULT`
/// for a shared futex in no readable mapping (a private one needs no
/// mapping: nobody waits there, and 0 is returned).
pub fn futex_wake(uaddr: u64, shared: bool, nr_wake: i32, bitset: u32) -> Result<u64, Errno> {
    if bitset == 0 {
        return Err(Errno::EINVAL);
    }
    let key = get_futex_key(FutexAddr::new(uaddr)?, shared)?;
    Ok(wake_up_q(wake_key(&key, bitset, nr_wake)))
}

/// Takes the waiters [`futex_wake`] wakes off their chain.
fn wake_key(key: &FutexKey, bitset: u32, nr_wake: i32) -> super::core::FutexWakeQ<Arc<FutexWaiter>> {
    let mut chain = lock_bucket(futex_hash(key));
    let woken = chain.wake(key, bitset, nr_wake);
    futex_wake_mark(&woken);
    woken
}
