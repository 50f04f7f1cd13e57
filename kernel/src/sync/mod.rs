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
//!   across a sleep, and may only be taken where sleeping is allowed.
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

use crate::percpu;

/// What one interrupt handler adds to [`preempt_count`] (Linux
/// `HARDIRQ_OFFSET`); spin locks add one each, so the low 16 bits count
/// locks and the bits above count nested handlers.
pub const HARDIRQ_OFFSET: u64 = 1 << 16;

/// This CPU's count of held spin locks and running interrupt handlers
/// (Linux `pcpu_hot.preempt_count`). Early in boot, GS is 0 and this is
/// CPU 0's copy, so locks work before the per-CPU areas do; the areas are
/// copied from it while nothing holds a lock.
#[unsafe(link_section = ".data..percpu")]
static PREEMPT_COUNT: AtomicU64 = AtomicU64::new(0);

/// This CPU's preempt count (Linux `preempt_count`).
#[inline]
pub fn preempt_count() -> u64 {
    // SAFETY: PREEMPT_COUNT is in .data..percpu.
    unsafe { percpu::this_cpu_read_u64(&PREEMPT_COUNT) }
}

/// Adds `delta` (wrapping, so a negative step is its two's complement) to
/// this CPU's preempt count in one instruction.
#[inline]
fn preempt_count_add(delta: u64) {
    // SAFETY: PREEMPT_COUNT is in .data..percpu.
    unsafe { percpu::this_cpu_add_u64_static(&PREEMPT_COUNT, delta) };
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

/// Exceptions this CPU is handling that were taken from code running with
/// interrupts on (see [`TrapContext`]).
#[unsafe(link_section = ".data..percpu")]
static EXCEPTION_IRQS_ON: AtomicU64 = AtomicU64::new(0);

/// Whether this context must not sleep: a spin lock held, an interrupt
/// handler running, or interrupts off (Linux `in_atomic() ||
/// irqs_disabled()`, see the module doc), except that interrupts left off
/// only by the exception gate do not count (see [`TrapContext`]).
#[inline]
pub fn in_atomic() -> bool {
    // SAFETY: EXCEPTION_IRQS_ON is in .data..percpu.
    preempt_count() != 0 || (irqs_disabled() && unsafe { percpu::this_cpu_read_u64(&EXCEPTION_IRQS_ON) } == 0)
}

/// The context a trap handler runs in, from entry until the guard drops
/// (which must happen before the handler schedules on its way back to
/// user mode): for an external interrupt, hard-IRQ context ([`irq_enter`]);
/// for an exception taken where interrupts were on, process context.
///
/// Every gate of our IDT is an interrupt gate, so exception handlers
/// start with interrupts off; Linux's (`exc_page_fault` and friends) turn
/// them back on when the interrupted code had them on
/// (`cond_local_irq_enable`) and may then sleep. Ours do for exceptions
/// from user mode, not yet for a kernel-mode fault on user memory
/// (`copy_from_user`), whose handler takes the address-space lock with
/// interrupts off; it allocates as Linux's does, so a kernel-mode
/// exception taken with interrupts on counts as the context it
/// interrupted rather than as atomic (`kernel_irqs_on`). One taken with
/// interrupts off (under a [`SpinLockIrq`]) stays atomic. Should such a
/// handler sleep, the switch keeps the mark with its task
/// ([`exception_context_save`]).
pub struct TrapContext {
    hardirq: bool,
    exception_irqs_on: bool,
}

impl TrapContext {
    /// Enters the handler of an external interrupt (`hardirq`) or of an
    /// exception; `kernel_irqs_on` says the exception interrupted kernel
    /// code running with interrupts on.
    #[inline]
    pub fn enter(hardirq: bool, kernel_irqs_on: bool) -> Self {
        let exception_irqs_on = !hardirq && kernel_irqs_on;
        if hardirq {
            irq_enter();
        } else if exception_irqs_on {
            // SAFETY: EXCEPTION_IRQS_ON is in .data..percpu.
            unsafe { percpu::this_cpu_add_u64_static(&EXCEPTION_IRQS_ON, 1) };
        }
        TrapContext { hardirq, exception_irqs_on }
    }
}

/// Takes this CPU's exception mark (see [`TrapContext`]) off it before a
/// context switch; the switched-out task gives it back with
/// [`exception_context_restore`] when it runs again, so the mark stays
/// with the task whose handler slept.
#[inline]
pub fn exception_context_save() -> u64 {
    // SAFETY: EXCEPTION_IRQS_ON is in .data..percpu.
    unsafe {
        let saved = percpu::this_cpu_read_u64(&EXCEPTION_IRQS_ON);
        percpu::this_cpu_write_u64(&EXCEPTION_IRQS_ON, 0);
        saved
    }
}

/// Puts back what [`exception_context_save`] took.
#[inline]
pub fn exception_context_restore(saved: u64) {
    // SAFETY: EXCEPTION_IRQS_ON is in .data..percpu.
    unsafe { percpu::this_cpu_write_u64(&EXCEPTION_IRQS_ON, saved) };
}

impl Drop for TrapContext {
    #[inline]
    fn drop(&mut self) {
        if self.hardirq {
            irq_exit();
        } else if self.exception_irqs_on {
            // SAFETY: EXCEPTION_IRQS_ON is in .data..percpu.
            unsafe { percpu::this_cpu_add_u64_static(&EXCEPTION_IRQS_ON, 1u64.wrapping_neg()) };
        }
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
