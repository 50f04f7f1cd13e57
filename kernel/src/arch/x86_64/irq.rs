//! Device interrupt vectors: allocation, handler registration and dispatch
//! (Linux `arch/x86/kernel/apic/vector.c` for the allocator,
//! `kernel/irq/manage.c` `request_irq`/`free_irq`, `kernel/irq/handle.c`
//! for the dispatch).
//!
//! Vectors [`FIRST_DEVICE_VECTOR`]..[`LAST_DEVICE_VECTOR`] are handed to
//! drivers by [`alloc_vector`]; each carries at most one handler, a plain
//! function with a word of data, registered with [`request_irq`]. A
//! handler runs in hard-IRQ context with interrupts off: it must not sleep
//! and must not allocate with anything but `GFP_ATOMIC` (the global
//! allocator does that by itself in this context); it may take
//! [`SpinLockIrq`]s and wake wait queues. The local APIC's EOI is sent
//! after the handler returns (MSI is edge triggered, so a message arriving
//! meanwhile is latched, not lost).
//!
//! Differences from Linux: no irq domains or descriptors, no shared
//! vectors, no per-CPU vector spaces (a vector means the same on every
//! CPU; all device messages target the boot CPU), no threaded handlers.
//!
//! Lock order: the handler table's lock is a leaf; [`handle`] copies the
//! handler out and calls it with the lock dropped.

#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use crate::sync::SpinLockIrq;

/// First vector handed to devices (Linux `FIRST_EXTERNAL_VECTOR` + the
/// legacy ISA range, 0x20..0x30, that the 8259 would use).
pub const FIRST_DEVICE_VECTOR: u8 = 0x30;
/// One past the last device vector: the system vectors (timer 0xec, IPIs
/// 0xfb.., spurious 0xff) sit above (Linux `FIRST_SYSTEM_VECTOR`).
pub const LAST_DEVICE_VECTOR: u8 = 0xec;

const NR_DEVICE_VECTORS: usize = (LAST_DEVICE_VECTOR - FIRST_DEVICE_VECTOR) as usize;

/// A registered handler (Linux `struct irqaction`).
#[derive(Clone, Copy)]
struct IrqAction {
    handler: fn(usize),
    data: usize,
    name: &'static str,
}

/// Per device vector: allocated, and its handler if one is registered.
#[derive(Clone, Copy)]
enum Slot {
    Free,
    Allocated(Option<IrqAction>),
}

static VECTORS: SpinLockIrq<[Slot; NR_DEVICE_VECTORS]> = SpinLockIrq::new([Slot::Free; NR_DEVICE_VECTORS]);
/// Interrupts taken per device vector (Linux `kstat_irqs`).
static COUNTS: [AtomicU64; NR_DEVICE_VECTORS] = [const { AtomicU64::new(0) }; NR_DEVICE_VECTORS];

/// Errors of the vector API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqError {
    /// Every device vector is in use (Linux `-ENOSPC`).
    NoVector,
    /// The vector is not a device vector this module handed out (`-EINVAL`).
    BadVector,
    /// The vector already has a handler (`-EBUSY`).
    Busy,
}

fn index(vector: u8) -> Option<usize> {
    (FIRST_DEVICE_VECTOR..LAST_DEVICE_VECTOR).contains(&vector).then(|| usize::from(vector - FIRST_DEVICE_VECTOR))
}

/// Reserves a free device vector (Linux `irq_matrix_alloc`).
pub fn alloc_vector() -> Result<u8, IrqError> {
    let mut vectors = VECTORS.lock();
    let i = vectors.iter().position(|s| matches!(s, Slot::Free)).ok_or(IrqError::NoVector)?;
    vectors[i] = Slot::Allocated(None);
    Ok(FIRST_DEVICE_VECTOR + i as u8)
}

/// Registers `handler(data)` for `vector`, which [`alloc_vector`] gave
/// (Linux `request_irq`). The handler runs in hard-IRQ context: see the
/// module doc.
pub fn request_irq(vector: u8, handler: fn(usize), data: usize, name: &'static str) -> Result<(), IrqError> {
    let i = index(vector).ok_or(IrqError::BadVector)?;
    let mut vectors = VECTORS.lock();
    match vectors[i] {
        Slot::Free => Err(IrqError::BadVector),
        Slot::Allocated(Some(_)) => Err(IrqError::Busy),
        Slot::Allocated(None) => {
            vectors[i] = Slot::Allocated(Some(IrqAction { handler, data, name }));
            Ok(())
        }
    }
}

/// Removes `vector`'s handler and frees the vector (Linux `free_irq`).
/// The device must no longer send it.
pub fn free_irq(vector: u8) -> Result<(), IrqError> {
    let i = index(vector).ok_or(IrqError::BadVector)?;
    let mut vectors = VECTORS.lock();
    match vectors[i] {
        Slot::Free => Err(IrqError::BadVector),
        Slot::Allocated(_) => {
            vectors[i] = Slot::Free;
            Ok(())
        }
    }
}

/// Interrupts taken on `vector` since boot.
pub fn count(vector: u8) -> u64 {
    index(vector).map_or(0, |i| COUNTS[i].load(Ordering::Relaxed))
}

/// Name and count of each vector with a handler, for reports
/// (Linux `/proc/interrupts`).
pub fn for_each_action(mut f: impl FnMut(u8, &'static str, u64)) {
    let vectors = *VECTORS.lock();
    for (i, slot) in vectors.iter().enumerate() {
        if let Slot::Allocated(Some(action)) = slot {
            f(FIRST_DEVICE_VECTOR + i as u8, action.name, COUNTS[i].load(Ordering::Relaxed));
        }
    }
}

/// Whether `vector` is a device vector (for the trap dispatcher).
pub fn is_device_vector(vector: u8) -> bool {
    index(vector).is_some()
}

/// Runs `vector`'s handler and signals end of interrupt (Linux
/// `common_interrupt` -> `handle_irq`). Called by the trap dispatcher in
/// hard-IRQ context.
pub fn handle(vector: u8) {
    let Some(i) = index(vector) else { return };
    COUNTS[i].fetch_add(1, Ordering::Relaxed);
    let action = match VECTORS.lock()[i] {
        Slot::Allocated(Some(action)) => Some(action),
        _ => None,
    };
    match action {
        Some(action) => (action.handler)(action.data),
        None => log::warn!("spurious device interrupt on vector {vector:#x}: no handler"),
    }
    super::apic::eoi();
}
