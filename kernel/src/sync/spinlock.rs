//! Spin locks that say their interrupt policy (Linux `spin_lock` and
//! `spin_lock_irqsave`); see the module doc of [`crate::sync`].
//!
//! Both wrap `spin`'s `SpinMutex` in a field named `inner`, the layout of
//! `spin::Mutex`, so gdb/mm.py reads either the same way.

use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::panic::Location;

use spin::mutex::{SpinMutex, SpinMutexGuard};
use x86_64::instructions::interrupts;

use super::{in_hardirq, preempt_disable, preempt_enable};

/// A spin lock that leaves interrupts as they are (Linux `spinlock_t`
/// taken with `spin_lock`). Never taken in interrupt context: debug builds
/// report it (an interrupt handler spinning on a lock the code it
/// interrupted holds never returns). While held, the CPU must not sleep.
pub struct SpinLock<T: ?Sized> {
    inner: SpinMutex<T>,
}

/// Holds a [`SpinLock`]; dropping it unlocks.
pub struct SpinLockGuard<'a, T: ?Sized> {
    guard: ManuallyDrop<SpinMutexGuard<'a, T>>,
}

impl<T> SpinLock<T> {
    /// An unlocked lock around `value`.
    pub const fn new(value: T) -> Self {
        SpinLock { inner: SpinMutex::new(value) }
    }
}

impl<T: ?Sized> SpinLock<T> {
    /// Spins until the lock is free and takes it (Linux `spin_lock`).
    #[track_caller]
    #[inline]
    pub fn lock(&self) -> SpinLockGuard<'_, T> {
        check_not_in_hardirq(Location::caller());
        preempt_disable();
        SpinLockGuard { guard: ManuallyDrop::new(self.inner.lock()) }
    }

    /// Takes the lock if it is free (Linux `spin_trylock`).
    #[track_caller]
    #[inline]
    pub fn try_lock(&self) -> Option<SpinLockGuard<'_, T>> {
        check_not_in_hardirq(Location::caller());
        preempt_disable();
        let guard = self.inner.try_lock();
        if guard.is_none() {
            preempt_enable();
        }
        guard.map(|g| SpinLockGuard { guard: ManuallyDrop::new(g) })
    }

    /// The value, through exclusive access (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }
}

impl<T: ?Sized> Drop for SpinLockGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard is dropped once, here, and not used after.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        preempt_enable();
    }
}

/// A spin lock that disables interrupts while held (Linux `spinlock_t`
/// taken with `spin_lock_irqsave`, restored by `spin_unlock_irqrestore`):
/// the lock for data an interrupt handler touches.
pub struct SpinLockIrq<T: ?Sized> {
    inner: SpinMutex<T>,
}

/// Holds a [`SpinLockIrq`]; dropping it unlocks and restores the
/// interrupt state found at locking.
pub struct SpinLockIrqGuard<'a, T: ?Sized> {
    guard: ManuallyDrop<SpinMutexGuard<'a, T>>,
    irqs_were_on: bool,
}

impl<T> SpinLockIrq<T> {
    /// An unlocked lock around `value`.
    pub const fn new(value: T) -> Self {
        SpinLockIrq { inner: SpinMutex::new(value) }
    }
}

impl<T: ?Sized> SpinLockIrq<T> {
    /// Disables interrupts, then spins until the lock is free and takes it
    /// (Linux `spin_lock_irqsave`).
    #[inline]
    pub fn lock(&self) -> SpinLockIrqGuard<'_, T> {
        let irqs_were_on = interrupts::are_enabled();
        interrupts::disable();
        preempt_disable();
        SpinLockIrqGuard { guard: ManuallyDrop::new(self.inner.lock()), irqs_were_on }
    }

    /// Takes the lock if it is free, interrupts off while held (Linux
    /// `spin_trylock_irqsave`).
    #[inline]
    pub fn try_lock(&self) -> Option<SpinLockIrqGuard<'_, T>> {
        let irqs_were_on = interrupts::are_enabled();
        interrupts::disable();
        preempt_disable();
        match self.inner.try_lock() {
            Some(g) => Some(SpinLockIrqGuard { guard: ManuallyDrop::new(g), irqs_were_on }),
            None => {
                preempt_enable();
                if irqs_were_on {
                    interrupts::enable();
                }
                None
            }
        }
    }

    /// The value, through exclusive access (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut()
    }
}

impl<T: ?Sized> Drop for SpinLockIrqGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard is dropped once, here, and not used after.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        preempt_enable();
        if self.irqs_were_on {
            interrupts::enable();
        }
    }
}

macro_rules! guard_deref {
    ($guard:ident) => {
        impl<T: ?Sized> Deref for $guard<'_, T> {
            type Target = T;
            #[inline]
            fn deref(&self) -> &T {
                &self.guard
            }
        }

        impl<T: ?Sized> DerefMut for $guard<'_, T> {
            #[inline]
            fn deref_mut(&mut self) -> &mut T {
                &mut self.guard
            }
        }
    };
}

guard_deref!(SpinLockGuard);
guard_deref!(SpinLockIrqGuard);

impl<T: Default> Default for SpinLock<T> {
    fn default() -> Self {
        SpinLock::new(T::default())
    }
}

impl<T: Default> Default for SpinLockIrq<T> {
    fn default() -> Self {
        SpinLockIrq::new(T::default())
    }
}

/// Reports a [`SpinLock`] taken by an interrupt handler (debug builds).
#[inline]
fn check_not_in_hardirq(caller: &'static Location<'static>) {
    if cfg!(debug_assertions) && in_hardirq() {
        crate::sched::report_invalid_context("SpinLock taken in interrupt context (needs SpinLockIrq)", caller);
    }
}
