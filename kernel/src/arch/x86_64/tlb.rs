//! TLB flushing for kernel mappings (Linux `arch/x86/mm/tlb.c`
//! `flush_tlb_kernel_range`, `__flush_tlb_all`).
//!
//! Up to [`TLB_SINGLE_PAGE_FLUSH_CEILING`] pages are flushed one INVLPG at a
//! time; larger kernel ranges flush everything, global entries included, by
//! toggling CR4.PGE (Linux `__native_flush_tlb_global`), larger user ranges
//! reload CR3, which keeps the global kernel entries. Kernel mappings
//! are shared by every CPU, so a kernel-range flush runs on all online CPUs:
//! locally, then on the others through a cross-CPU call that waits for
//! every one of them (Linux `flush_tlb_kernel_range` -> `on_each_cpu`).
//! User ranges are flushed where the address space is loaded, which is
//! this CPU for every caller but page migration; migration flushes on all
//! CPUs (`flush_tlb_mm_range_all_cpus`).

use mm::arch::TlbFlush;
use mm::{PhysAddr, VirtAddr};
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

    /// A user address space is loaded on at most one CPU, the one running
    /// its task (processes are single-threaded, vfork's parent sleeps, and
    /// every switch to another address space reloads CR3, which drops all
    /// non-global entries). So a flush is local when the space is loaded
    /// here and unnecessary otherwise (Linux tracks `mm_cpumask` and sends
    /// IPIs to the CPUs in it).
    fn flush_tlb_mm_range(&self, root: PhysAddr, start: VirtAddr, len: u64) {
        if cpu::read_cr3_phys() == root.as_u64() {
            flush_tlb_user_range_local(start.as_u64(), len);
        }
    }

    /// Without an `mm_cpumask` we do not know where the space is loaded, so
    /// every CPU flushes the range; on a CPU running another address space
    /// that drops at most a few unrelated user entries. The caller may
    /// hold the address space's mmap lock: a CPU waiting for it sleeps
    /// with interrupts on, so it answers.
    fn flush_tlb_mm_range_all_cpus(&self, _root: PhysAddr, start: VirtAddr, len: u64) {
        flush_tlb_user_range_local(start.as_u64(), len);
        super::smp::call_function_many(u64::MAX, flush_tlb_user_range_ipi, start.as_u64(), len);
    }
}
