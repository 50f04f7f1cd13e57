//! TLB flushing (Linux `arch/x86/mm/tlb.c`: `flush_tlb_kernel_range`,
//! `flush_tlb_mm_range`, `__flush_tlb_all`).
//!
//! Up to [`TLB_SINGLE_PAGE_FLUSH_CEILING`] pages are flushed one INVLPG at a
//! time; larger kernel ranges flush everything, global entries included, by
//! toggling CR4.PGE (Linux `__native_flush_tlb_global`), larger user ranges
//! reload CR3, which keeps the global kernel entries. Kernel mappings
//! are shared by every CPU, so a kernel-range flush runs on all online CPUs:
//! locally, then on the others through a cross-CPU call that waits for
//! every one of them (Linux `flush_tlb_kernel_range` -> `on_each_cpu`).
//!
//! User ranges are flushed on the CPUs that have the address space
//! loaded: the threads of a process run on several CPUs at once, and
//! reclaim and migration unmap pages of processes running elsewhere.
//! Each CPU records the user root it loads ([`LOADED_ROOT`], Linux
//! `cpu_tlbstate.loaded_mm`), and the set of CPUs whose record names an
//! address space is its `mm_cpumask` ([`mm_cpumask`]). Without PCIDs a
//! CR3 write drops every non-global entry, so a CPU that switched away
//! keeps nothing of the old space and leaves the mask at once (Linux
//! x86 clears its bit in `switch_mm_irqs_off` too).
//!
//! Ordering: a CPU stores its record (sequentially consistent) before
//! it writes CR3; a flusher changes the ptes, then reads the records
//! after a full fence. So either the flusher sees the CPU in the mask and
//! interrupts it, or the CPU's CR3 write, and every walk after it, comes
//! after the pte change. A CPU that left the space but is still named
//! flushes a few entries for nothing.

use core::sync::atomic::{AtomicU64, Ordering, fence};

use mm::arch::TlbFlush;
use mm::{PhysAddr, VirtAddr};

use super::acpi::MAX_CPUS;
use crate::percpu::smp_processor_id;
use x86_64::registers::control::{Cr4, Cr4Flags};

use super::cpu;

/// Beyond this many pages a full flush is cheaper (Linux
/// `tlb_single_page_flush_ceiling`, 33).
pub const TLB_SINGLE_PAGE_FLUSH_CEILING: u64 = 33;

/// Flushes every translation on this CPU, global ones included.
pub fn flush_tlb_all_local() {
    let cr4 = Cr4::read();
    if cr4.contains(Cr4Flags::PAGE_GLOBAL) {
        // SAFETY: clearing and restoring CR4.PGE only flushes the TLB
        // (SDM vol. 3 4.10.4.1); no other state changes.
        unsafe {
            Cr4::write(cr4 - Cr4Flags::PAGE_GLOBAL);
            Cr4::write(cr4);
        }
    } else {
        x86_64::instructions::tlb::flush_all();
    }
}

/// Flushes `[start, start + len)` on this CPU.
pub fn flush_tlb_range_local(start: u64, len: u64) {
    flush_pages_or(start, len, flush_tlb_all_local);
}

/// INVLPG for each page of `[start, start + len)`, or `full()` beyond the
/// ceiling.
fn flush_pages_or(start: u64, len: u64, full: fn()) {
    let pages = len.div_ceil(mm::PAGE_SIZE);
    if pages > TLB_SINGLE_PAGE_FLUSH_CEILING {
        full();
    } else {
        for i in 0..pages {
            cpu::invlpg(start + i * mm::PAGE_SIZE);
        }
    }
}

/// Flushes user addresses `[start, start + len)` on this CPU. Beyond the
/// ceiling, a CR3 reload drops every non-global entry and keeps the
/// kernel's global ones (Linux `flush_tlb_local`), which a user flush has
/// no reason to lose.
pub fn flush_tlb_user_range_local(start: u64, len: u64) {
    flush_pages_or(start, len, x86_64::instructions::tlb::flush_all);
}

/// The user root each CPU has loaded, 0 while it runs on the kernel's
/// tables.
static LOADED_ROOT: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

/// Records that this CPU is about to load `cr3` (a user root, or 0 for
/// the kernel's tables). Called by `switch_mm` before its CR3 write.
pub fn set_loaded_root(cr3: u64) {
    LOADED_ROOT[smp_processor_id() as usize].store(cr3, Ordering::SeqCst);
}

/// The CPUs that have the address space with root `root` loaded (Linux
/// `mm_cpumask`), as a bit mask of CPU numbers.
pub fn mm_cpumask(root: PhysAddr) -> u64 {
    fence(Ordering::SeqCst);
    let mut mask = 0;
    for (cpu, loaded) in LOADED_ROOT.iter().enumerate() {
        if loaded.load(Ordering::SeqCst) == root.as_u64() {
            mask |= 1 << cpu;
        }
    }
    mask
}

/// The kernel's [`TlbFlush`].
pub struct KernelTlb;

fn flush_tlb_range_ipi(start: u64, len: u64) {
    flush_tlb_range_local(start, len);
}

fn flush_tlb_user_range_ipi(start: u64, len: u64) {
    flush_tlb_user_range_local(start, len);
}

impl TlbFlush for KernelTlb {
    fn flush_tlb_kernel_range(&self, start: VirtAddr, len: u64) {
        flush_tlb_range_local(start.as_u64(), len);
        super::smp::call_function_many(u64::MAX, flush_tlb_range_ipi, start.as_u64(), len);
    }

    /// Locally if this CPU has the space loaded, and through a cross-CPU
    /// call on the others in its [`mm_cpumask`] (Linux
    /// `flush_tlb_multi`). The caller may hold the space's mmap lock or
    /// a page-table lock: a CPU waiting for either sleeps or spins with
    /// interrupts on, so it answers.
    fn flush_tlb_mm_range(&self, root: PhysAddr, start: VirtAddr, len: u64) {
        let mask = mm_cpumask(root);
        let me = 1u64 << smp_processor_id();
        if mask & me != 0 {
            flush_tlb_user_range_local(start.as_u64(), len);
        }
        if mask & !me != 0 {
            super::smp::call_function_many(mask, flush_tlb_user_range_ipi, start.as_u64(), len);
        }
    }
}
