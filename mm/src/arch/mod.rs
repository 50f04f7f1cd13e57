//! The arch boundary: what mm needs from the machine.
//!
//! Linux reaches the hardware through `arch/x86/include/asm/` headers
//! (`__va`/`__pa`, `local_irq_save`, `smp_processor_id`, `sched_clock`). We put
//! the same needs behind traits, kept small and boring, so the kernel provides
//! them for x86_64 and host tests provide a simulated machine. Page-table
//! entry encoding is [`crate::pgtable::PteFormat`]; flushing the TLB is
//! [`TlbFlush`] here. The x86_64 encodings themselves (pte bits, the user
//! half's size, canonical form) are pure bit layouts, kept in [`x86_64`] so
//! host tests use the real ones.

pub mod x86_64;

use core::panic::Location;

use crate::addr::{Pfn, PhysAddr, VirtAddr};

/// Access to physical memory through a linear direct map (Linux `__va`/`__pa`
/// over `page_offset_base`).
///
/// # Safety
/// `phys_to_virt` must return, for every page of physical memory it accepts,
/// an address at which that page is mapped readable and writable, and that
/// address must stay mapped for the lifetime of the implementor. mm writes
/// through it (zeroing pages it owns) on the strength of this promise.
pub unsafe trait PhysMemory: Sync {
    /// The virtual address at which `phys` is mapped, or `None` if `phys` lies
    /// outside the memory this machine maps.
    fn phys_to_virt(&self, phys: PhysAddr) -> Option<VirtAddr>;

    /// The physical address behind a direct-map address, or `None` if `virt`
    /// is not inside the direct map.
    fn virt_to_phys(&self, virt: VirtAddr) -> Option<PhysAddr>;
}

/// Saved interrupt state (Linux's `unsigned long flags` of
/// `local_irq_save`); opaque to mm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqFlags(pub u64);

/// The executing CPU and its interrupt state (Linux `smp_processor_id`,
/// `local_irq_save`/`local_irq_restore`).
pub trait CpuOps: Sync {
    /// The id of the executing CPU, dense from 0 and below
    /// [`crate::mmzone::NR_CPUS`].
    fn cpu_id(&self) -> u32;

    /// Disables interrupts on this CPU and returns the previous state.
    fn irq_save(&self) -> IrqFlags;

    /// Restores the state returned by [`CpuOps::irq_save`].
    fn irq_restore(&self, flags: IrqFlags);

    /// Says that the caller, at `caller`, may sleep (Linux `might_sleep`;
    /// mm calls it as Linux's `might_alloc` does, for every allocation
    /// whose mask allows direct reclaim, in debug builds only, as Linux
    /// checks only with `CONFIG_DEBUG_ATOMIC_SLEEP`). The kernel reports a call from
    /// atomic context in debug builds; a machine without atomic contexts
    /// (the host simulation) need not implement it.
    fn might_sleep(&self, caller: &'static Location<'static>) {
        let _ = caller;
    }

    /// Charges a major fault (one whose page needed I/O) to the task
    /// running on this CPU (Linux `mm_account_fault`'s
    /// `current->maj_flt++`, which `getrusage` reports). A machine
    /// without tasks (the host simulation) need not implement it.
    fn account_major_fault(&self) {}
}

/// Where tasks sleep until a page is unlocked (Linux's hashed
/// `folio_wait_table`): the scheduler's half of the folio lock in
/// [`crate::filemap`].
pub trait FolioWaitTable: Sync {
    /// Sleeps until `cond()` holds, re-testing it after every
    /// [`wake_up`](FolioWaitTable::wake_up) for `pfn` (or one hashing
    /// alike). Must be called where sleeping is allowed.
    fn wait_event(&self, pfn: Pfn, cond: &mut dyn FnMut() -> bool);

    /// Wakes the tasks waiting on `pfn`; they re-test their conditions.
    fn wake_up(&self, pfn: Pfn);
}

/// A monotonic clock (Linux `sched_clock`/`ktime_get_ns`).
pub trait Clock {
    /// Nanoseconds since an arbitrary fixed point, never decreasing.
    fn now_ns(&self) -> u64;
}

/// TLB maintenance for kernel mappings (Linux `flush_tlb_kernel_range`).
///
/// The page-table layer calls this after clearing or downgrading entries
/// and before freeing the page-table pages it unhooked, so that no CPU can
/// still translate through either.
pub trait TlbFlush: Sync {
    /// Invalidates every translation of `[start, start + len)` on every CPU
    /// that may cache it, and the paging-structure caches that may point at
    /// freed tables. The implementation picks page-by-page or a full flush.
    fn flush_tlb_kernel_range(&self, start: VirtAddr, len: u64);

    /// Invalidates the user translations of `[start, start + len)` in the
    /// address space whose root table is `root` (Linux
    /// `flush_tlb_mm_range`) on every CPU that may cache it: the caller's
    /// own and any other that has it loaded, its threads' CPUs or the CPU
    /// of a process whose page reclaim or migration unmaps. Returns only
    /// when no CPU can still translate through the old entries.
    fn flush_tlb_mm_range(&self, root: PhysAddr, start: VirtAddr, len: u64);
}
