//! Locks and the context they run in (Linux `include/linux/preempt.h`,
//! `include/linux/spinlock.h`, `kernel/locking/mutex.c`).
//!
//! Which context may sleep is modelled, not left to comments. Each CPU
//! keeps a [`preempt_count`], Linux's: the spin locks it holds plus
//! [`HARDIRQ_OFFSET`] per interrupt handler it is running. A context is
//! atomic ([`in_atomic`]) when that count is not zero or interrupts are
//! off; an atomic context must not sleep, and allocates with `GFP_ATOMIC`
//! or not at all. [`crate::sched::might_sleep`] checks this in debug builds.
//!
//! The lock types say their interrupt policy:
//! - [`SpinLock`] (Linux `spin_lock`) leaves interrupts alone, so an
//!   interrupt handler must never take it (the handler could spin on a
//!   lock its own CPU holds); debug builds report one taken in hard-IRQ
//!   context.
//! - [`SpinLockIrq`] (Linux `spin_lock_irqsave`) disables interrupts while
//!   held: the only kind an interrupt handler may take, and the kind for
//!   data an interrupt handler shares with process context.
//! - [`Mutex`] (Linux `struct mutex`) sleeps while contended, may be held
//!   across a sleep, and may only be taken where sleeping is allowed; so
//!   does the reader/writer [`RwSem`](crate::sched::rwsem::RwSem) of the
//!   mmap lock.
//!
//! Both spin locks add one to the preempt count while held, so sleeping
//! under one is reported. Lock order between two locks is written at the
//! top of the module that defines them.
//!
//! Differences from Linux: the kernel is never preempted
//! (`PREEMPT_NONE`), so the count serves the debug checks only; softirq
//! and NMI counts do not exist; [`in_atomic`] also answers true with
//! interrupts off (Linux's omits that; its callers then also ask
//! `irqs_disabled()`, ours ask the one question).

mod mutex;
mod spinlock;

use core::sync::atomic::{AtomicU64, Ordering};

use mm::gfp::{GFP_ATOMIC, GFP_KERNEL, Gfp};
use x86_64::instructions::interrupts;

pub use mutex::{Mutex, MutexGuard};
pub use spinlock::{SpinLock, SpinLockGuard, SpinLockIrq, SpinLockIrqGuard};

use crate::percpu::PerCpu;

/// What one interrupt handler adds to [`preempt_count`] (Linux
/// `HARDIRQ_OFFSET`); spin locks add one each, so the low 16 bits count
/// locks and the bits above count nested handlers.
pub const HARDIRQ_OFFSET: u64 = 1 << 16;

/// This CPU's count of held spin locks and running interrupt handlers
/// (Linux `pcpu_hot.preempt_count`). Early in boot, GS is 0 and this is
/// CPU 0's copy, so locks work before the per-CPU areas do; the areas are
/// copied from it while nothing holds a lock.
#[unsafe(link_section = ".data..percpu")]
// SAFETY: in .data..percpu; an integer, copied bitwise into every unit.
static PREEMPT_COUNT: PerCpu<AtomicU64> = unsafe { PerCpu::new(AtomicU64::new(0)) };

/// This CPU's preempt count (Linux `preempt_count`).
#[inline]
pub fn preempt_count() -> u64 {
    PREEMPT_COUNT.read()
}

/// Adds `delta` (wrapping, so a negative step is its two's complement) to
/// this CPU's preempt count in one instruction.
#[inline]
fn preempt_count_add(delta: u64) {
    PREEMPT_COUNT.add(delta);
}

/// Linux `preempt_disable`: one more reason this CPU must not sleep.
#[inline]
pub fn preempt_disable() {
    preempt_count_add(1);
}

/// Linux `preempt_enable` (without the preemption point: `PREEMPT_NONE`).
#[inline]
pub fn preempt_enable() {
    preempt_count_add(1u64.wrapping_neg());
}

/// Entering an interrupt handler (Linux `irq_enter`).
#[inline]
pub fn irq_enter() {
    preempt_count_add(HARDIRQ_OFFSET);
}

/// Leaving an interrupt handler (Linux `irq_exit`).
#[inline]
pub fn irq_exit() {
    preempt_count_add(HARDIRQ_OFFSET.wrapping_neg());
}

/// Whether this CPU runs an interrupt handler (Linux `in_hardirq`).
#[inline]
pub fn in_hardirq() -> bool {
    preempt_count() >= HARDIRQ_OFFSET
}

/// Whether interrupts are off on this CPU (Linux `irqs_disabled`).
#[inline]
pub fn irqs_disabled() -> bool {
    !interrupts::are_enabled()
}

/// Whether this context must not sleep: a spin lock held, an interrupt
/// handler running, or interrupts off (Linux `in_atomic() ||
/// irqs_disabled()`, see the module doc).
#[inline]
pub fn in_atomic() -> bool {
    preempt_count() != 0 || irqs_disabled()
}

/// Hard-IRQ context, from an external interrupt's entry until the guard
/// drops ([`irq_enter`] / [`irq_exit`]); the guard must go before the
/// handler reschedules on its way back to user mode.
pub struct HardirqContext(());

impl HardirqContext {
    /// Enters an external interrupt's handler.
    #[inline]
    pub fn enter() -> Self {
        irq_enter();
        HardirqContext(())
    }
}

impl Drop for HardirqContext {
    #[inline]
    fn drop(&mut self) {
        irq_exit();
    }
}

/// Allocations made in hard-IRQ context through [`gfp_for_context`]
/// (debug builds count them: the tick path must make none).
static HARDIRQ_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// The mask for an allocation that cannot pass one (the global allocator
/// behind `Box` and `Vec`): `GFP_ATOMIC` in atomic context, which may not
/// sleep or reclaim, `GFP_KERNEL` elsewhere (Linux makes every caller
/// choose; Rust's allocation API has no place for the choice).
#[inline]
pub fn gfp_for_context() -> Gfp {
    if !in_atomic() {
        return GFP_KERNEL;
    }
    if cfg!(debug_assertions) && in_hardirq() {
        HARDIRQ_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
    GFP_ATOMIC
}

/// Allocations [`gfp_for_context`] served in hard-IRQ context since boot
/// (0 in release builds, which do not count).
pub fn hardirq_allocations() -> u64 {
    HARDIRQ_ALLOCATIONS.load(Ordering::Relaxed)
}
