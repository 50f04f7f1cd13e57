//! A sleeping lock (Linux `struct mutex`, `kernel/locking/mutex.c`, without
//! optimistic spinning or handoff): a contended locker sleeps on the
//! lock's wait queue instead of spinning, so the holder may itself sleep
//! (reschedule, wait for I/O) while holding it. Taking it may sleep, so it
//! is taken only where sleeping is allowed ([`crate::sched::might_sleep`]
//! checks); it does not count in the preempt count.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::panic::Location;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::sched::wait::WaitQueue;

/// A lock whose waiters sleep (Linux `struct mutex`).
pub struct Mutex<T: ?Sized> {
    locked: AtomicBool,
    waiters: WaitQueue,
    data: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and one guard exists
// at a time (`locked` is taken with an Acquire compare-exchange and given
// back with a Release store).
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
        Mutex { locked: AtomicBool::new(false), waiters: WaitQueue::new(), data: UnsafeCell::new(value) }
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Takes the lock, sleeping while another task holds it (Linux
    /// `mutex_lock`). Must not be called from atomic context.
    #[track_caller]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        crate::sched::might_sleep_at(Location::caller());
        let mut guard = None;
        self.waiters.wait_event(|| {
            guard = self.try_lock();
            guard.is_some()
        });
        guard.unwrap_or_else(|| unreachable!("wait_event returned before its condition held"))
    }

    /// Takes the lock if it is free (Linux `mutex_trylock`); never sleeps.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.locked
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            // Lazily: a guard built and dropped on failure would unlock.
            .then(|| MutexGuard { lock: self })
    }

    /// Whether some task holds the lock (Linux `mutex_is_locked`).
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Relaxed)
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
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
