//! A sleeping lock (Linux `struct mutex`, `kernel/locking/mutex.c`, without
//! optimistic spinning): a contended locker sleeps on the lock's wait
//! queue instead of spinning, so the holder may itself sleep (reschedule,
//! wait for I/O) while holding it. Taking it may sleep, so it is taken
//! only where sleeping is allowed ([`crate::sched::might_sleep`] checks);
//! it does not count in the preempt count.
//!
//! **Hand-off** (Linux `MUTEX_FLAG_HANDOFF`): a free lock goes to whoever
//! takes it first, so a task that unlocks and relocks at once keeps it
//! while the waiter it woke has not run yet, again and again. A waiter
//! that was woken and still found the lock taken is starving: it asks for
//! a hand-off (one waiter at a time), and the next unlock gives the lock
//! to it directly instead of freeing it (Linux's `MUTEX_FLAG_PICKUP`):
//! no one else can take it until it does. So a starving waiter gets the
//! lock after at most one more holder.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::panic::Location;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use crate::sched::wait::WaitQueue;

/// `state`: a task holds the lock.
const LOCKED: u32 = 1;
/// `state`: a starving waiter, `handoff_to`, asked the holder to hand the
/// lock over at unlock.
const HANDOFF: u32 = 2;
/// `state`: the lock was handed to `handoff_to`, which has not picked it
/// up yet; it is taken for everyone else.
const PICKUP: u32 = 4;

/// A lock whose waiters sleep (Linux `struct mutex`).
pub struct Mutex<T: ?Sized> {
    /// 0 (free), [`LOCKED`], `LOCKED | HANDOFF` or [`PICKUP`].
    state: AtomicU32,
    /// The waiter a hand-off is for (the address of its task, never 0),
    /// while `state` has [`HANDOFF`] or [`PICKUP`]; 0 otherwise.
    handoff_to: AtomicUsize,
    waiters: WaitQueue,
    data: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and one guard exists
// at a time (the lock is taken with an Acquire compare-exchange of
// `state`, from free or, by the hand-off's waiter alone, from `PICKUP`,
// and given back with a Release one).
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
// SAFETY: as above; the lock holds nothing tied to a CPU.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

/// Holds a [`Mutex`]; dropping it unlocks and wakes the waiters.
pub struct MutexGuard<'a, T: ?Sized> {
    lock: &'a Mutex<T>,
}

impl<T> Mutex<T> {
    /// An unlocked mutex around `value`.
    pub const fn new(value: T) -> Self {
        Mutex {
            state: AtomicU32::new(0),
            handoff_to: AtomicUsize::new(0),
            waiters: WaitQueue::new(),
            data: UnsafeCell::new(value),
        }
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Takes the lock, sleeping while another task holds it (Linux
    /// `mutex_lock`). Must not be called from atomic context.
    #[track_caller]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        crate::sched::might_sleep_at(Location::caller());
        if let Some(guard) = self.try_lock() {
            return guard;
        }
        let me = crate::sched::with_current(|t| core::ptr::from_ref(t).addr());
        let mut guard = None;
        let mut woken = false;
        self.waiters.wait_event(|| {
            guard = self.try_pickup(me).or_else(|| self.try_lock());
            if guard.is_none() && woken {
                self.ask_handoff(me);
            }
            woken = true;
            guard.is_some()
        });
        guard.unwrap_or_else(|| unreachable!("wait_event returned before its condition held"))
    }

    /// Takes the lock if it is free (Linux `mutex_trylock`); never sleeps.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            // Lazily: a guard built and dropped on failure would unlock.
            .then(|| MutexGuard { lock: self })
    }

    /// Takes the lock handed to `me`, if it was.
    fn try_pickup(&self, me: usize) -> Option<MutexGuard<'_, T>> {
        if self.state.load(Ordering::Acquire) != PICKUP || self.handoff_to.load(Ordering::Relaxed) != me {
            return None;
        }
        self.handoff_to.store(0, Ordering::Relaxed);
        self.state.compare_exchange(PICKUP, LOCKED, Ordering::Acquire, Ordering::Relaxed).ok()?;
        Some(MutexGuard { lock: self })
    }

    /// Asks the holder to hand the lock to `me` at unlock, unless another
    /// waiter asked first or the lock is not simply held.
    fn ask_handoff(&self, me: usize) {
        if self.handoff_to.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return;
        }
        if self.state.compare_exchange(LOCKED, LOCKED | HANDOFF, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            // Freed (or handed over) meanwhile: the next try takes it.
            self.handoff_to.store(0, Ordering::Relaxed);
        }
    }

    /// Whether some task holds the lock (Linux `mutex_is_locked`); a lock
    /// handed to a waiter that has not picked it up counts as held.
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) != 0
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    /// Unlocks, or hands the lock to the starving waiter that asked, and
    /// wakes the waiters (Linux `__mutex_unlock_slowpath`).
    fn drop(&mut self) {
        let state = &self.lock.state;
        let handed = state.compare_exchange(LOCKED | HANDOFF, PICKUP, Ordering::Release, Ordering::Relaxed).is_ok();
        if !handed {
            state.store(0, Ordering::Release);
        }
        self.lock.waiters.wake_up_all();
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard is the one holder of the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard is the one holder of the lock.
        unsafe { &mut *self.lock.data.get() }
    }
}
