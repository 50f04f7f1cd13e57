//! Sleeping reader/writer locks (Linux `kernel/locking/rwsem.c`,
//! `struct rw_semaphore`): many readers or one writer; a task that cannot
//! get the lock sleeps on a wait queue instead of spinning.
//!
//! State: one atomic word, [`WRITER`] when a writer holds it, else the
//! number of readers. A writer that has to wait announces itself in
//! `writers_waiting`; from then on new readers queue behind it (Linux's
//! `RWSEM_FLAG_WAITERS` plus handoff: readers arriving after a waiting
//! writer do not steal the lock, so a stream of faults cannot starve
//! `munmap`). Readers already inside finish; the last one out wakes the
//! queue.
//!
//! Rules: may sleep, so never taken with interrupts off, under a spin lock
//! or in interrupt context; the `try_*` forms never sleep and serve the
//! contexts that must not (Linux `mmap_read_trylock` in a kernel-mode
//! fault with page faults disabled). A guard must be released by the task
//! that took it (no hand-over between tasks). [`RwSem::write`]'s guard can
//! be [downgraded](RwSemWriteGuard::downgrade) to a read guard without
//! letting a writer in between (Linux `downgrade_write`).
//!
//! Lock order: an rwsem is taken before any spin lock; its wait queue's
//! own lock is internal.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::panic::Location;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::might_sleep_at;
use super::wait::WaitQueue;

/// The state word's value while a writer holds the lock.
const WRITER: usize = usize::MAX;

/// A sleeping reader/writer lock around a `T` (Linux `rw_semaphore`).
pub struct RwSem<T> {
    /// [`WRITER`], or the number of readers holding the lock.
    state: AtomicUsize,
    /// Writers sleeping for the lock; while non-zero, new readers wait.
    writers_waiting: AtomicUsize,
    waiters: WaitQueue,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out `&mut T` to one writer at a time and `&T` to
// readers only while no writer holds it, so sharing the lock between CPUs
// is sound when `T` may be sent (the writer's `&mut`) and shared (the
// readers' `&`) between them.
unsafe impl<T: Send + Sync> Sync for RwSem<T> {}
// SAFETY: moving the lock moves the `T` it owns.
unsafe impl<T: Send> Send for RwSem<T> {}

impl<T> RwSem<T> {
    /// An unlocked lock around `data` (Linux `init_rwsem`).
    pub const fn new(data: T) -> Self {
        RwSem {
            state: AtomicUsize::new(0),
            writers_waiting: AtomicUsize::new(0),
            waiters: WaitQueue::new(),
            data: UnsafeCell::new(data),
        }
    }

    /// One attempt at a read hold. `fair` makes it yield to waiting
    /// writers.
    fn read_once(&self, fair: bool) -> bool {
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            if cur == WRITER || (fair && self.writers_waiting.load(Ordering::Acquire) != 0) {
                return false;
            }
            match self.state.compare_exchange_weak(cur, cur + 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    fn write_once(&self) -> bool {
        self.state.compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    /// Takes the lock for reading, sleeping while a writer holds it or
    /// waits for it (Linux `down_read`).
    #[track_caller]
    pub fn read(&self) -> RwSemReadGuard<'_, T> {
        might_sleep_at(Location::caller());
        if !self.read_once(true) {
            self.waiters.wait_event(|| self.read_once(true));
        }
        RwSemReadGuard { sem: self }
    }

    /// Takes the lock for reading if that needs no sleep (Linux
    /// `down_read_trylock`). Does not defer to waiting writers: it never
    /// waits, so it cannot make one starve.
    pub fn try_read(&self) -> Option<RwSemReadGuard<'_, T>> {
        // `then`, not `then_some`: a guard built for nothing would unlock
        // when dropped.
        self.read_once(false).then(|| RwSemReadGuard { sem: self })
    }

    /// Takes the lock for writing, sleeping until the readers and any
    /// writer have left (Linux `down_write`).
    #[track_caller]
    pub fn write(&self) -> RwSemWriteGuard<'_, T> {
        might_sleep_at(Location::caller());
        if !self.write_once() {
            self.writers_waiting.fetch_add(1, Ordering::AcqRel);
            self.waiters.wait_event(|| self.write_once());
            self.writers_waiting.fetch_sub(1, Ordering::AcqRel);
            // Readers that queued behind this writer may go once it
            // releases; they are woken then.
        }
        RwSemWriteGuard { sem: self }
    }

    /// Takes the lock for writing if that needs no sleep (Linux
    /// `down_write_trylock`).
    pub fn try_write(&self) -> Option<RwSemWriteGuard<'_, T>> {
        self.write_once().then(|| RwSemWriteGuard { sem: self })
    }

    /// The protected value, the lock being gone.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }

    /// Whether anyone holds the lock (for assertions and reports).
    pub fn is_locked(&self) -> bool {
        self.state.load(Ordering::Relaxed) != 0
    }

    fn read_unlock(&self) {
        if self.state.fetch_sub(1, Ordering::Release) == 1 {
            self.waiters.wake_up_all();
        }
    }

    fn write_unlock(&self) {
        self.state.store(0, Ordering::Release);
        self.waiters.wake_up_all();
    }
}

/// A read hold on an [`RwSem`]; releases it when dropped (Linux `up_read`).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwSemReadGuard<'a, T> {
    sem: &'a RwSem<T>,
}

impl<T> Deref for RwSemReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a read hold excludes writers (state is a reader count,
        // not WRITER), so no `&mut T` exists while this `&T` lives.
        unsafe { &*self.sem.data.get() }
    }
}

impl<T> Drop for RwSemReadGuard<'_, T> {
    fn drop(&mut self) {
        self.sem.read_unlock();
    }
}

/// A write hold on an [`RwSem`]; releases it when dropped (Linux
/// `up_write`).
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwSemWriteGuard<'a, T> {
    sem: &'a RwSem<T>,
}

impl<'a, T> RwSemWriteGuard<'a, T> {
    /// Turns the write hold into a read hold with no writer able to get in
    /// between (Linux `downgrade_write`); readers waiting are let in.
    pub fn downgrade(self) -> RwSemReadGuard<'a, T> {
        let sem = self.sem;
        core::mem::forget(self);
        sem.state.store(1, Ordering::Release);
        sem.waiters.wake_up_all();
        RwSemReadGuard { sem }
    }
}

impl<T> Deref for RwSemWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the write hold is exclusive (state is WRITER).
        unsafe { &*self.sem.data.get() }
    }
}

impl<T> DerefMut for RwSemWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write hold is exclusive (state is WRITER), and this
        // guard is borrowed mutably, so this is the only reference.
        unsafe { &mut *self.sem.data.get() }
    }
}

impl<T> Drop for RwSemWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.sem.write_unlock();
    }
}
