//! Read-mostly access to the live x86_64 page tables through the direct map.
//!
//! Until the page-table layer in `mm` takes over (it will own the kernel's
//! tables), the kernel runs on the bootloader's 4-level tables. This module
//! walks them to answer "is this address mapped, and how" (for backtraces and
//! tests) and can remove a single 4 KiB kernel mapping (to make a guard page).
//! Entry layout: SDM vol. 3, 4.5 (Linux `asm/pgtable_types.h`).

use bitflags::bitflags;

use super::cpu;
use crate::boot::PAGE_OFFSET;

bitflags! {
    /// Page-table entry bits (Linux `_PAGE_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct PteFlags: u64 {
        /// `_PAGE_PRESENT`.
        const PRESENT = 1 << 0;
        /// `_PAGE_RW`.
        const WRITABLE = 1 << 1;
        /// `_PAGE_USER`.
        const USER = 1 << 2;
        /// `_PAGE_PWT`.
        const WRITE_THROUGH = 1 << 3;
        /// `_PAGE_PCD`.
        const NO_CACHE = 1 << 4;
        /// `_PAGE_ACCESSED`.
        const ACCESSED = 1 << 5;
        /// `_PAGE_DIRTY`.
        const DIRTY = 1 << 6;
        /// `_PAGE_PSE`: a 2 MiB or 1 GiB leaf at PMD/PUD level.
        const HUGE = 1 << 7;
        /// `_PAGE_GLOBAL`.
        const GLOBAL = 1 << 8;
        /// `_PAGE_NX`.
        const NO_EXECUTE = 1 << 63;
    }
}

const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// A resolved translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The physical address `vaddr` maps to.
    pub phys: u64,
    /// Leaf entry flags, with WRITABLE/USER cleared and NO_EXECUTE set when an
    /// upper level restricts them (the effective permission).
    pub flags: PteFlags,
    /// 4 KiB, 2 MiB or 1 GiB.
    pub page_size: u64,
}

/// Errors from [`unmap_kernel_page`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PagingError {
    /// Nothing is mapped there.
    NotMapped,
    /// A 2 MiB or 1 GiB page covers the address; splitting is the page-table
    /// layer's job.
    HugePage,
    /// The address is a user address.
    NotKernel,
}

fn table_entry(table_phys: u64, index: u64) -> u64 {
    let entry = (PAGE_OFFSET + table_phys + index * 8) as *const u64;
    // SAFETY: table_phys is a page-table page taken from CR3 or a present
    // non-leaf entry, the direct map covers all physical memory, and the
    // index is below 512.
    unsafe { core::ptr::read_volatile(entry) }
}

fn indices(vaddr: u64) -> [u64; 4] {
    [(vaddr >> 39) & 0x1ff, (vaddr >> 30) & 0x1ff, (vaddr >> 21) & 0x1ff, (vaddr >> 12) & 0x1ff]
}

/// Walks the current page tables for `vaddr` (Linux `lookup_address`).
pub fn translate(vaddr: u64) -> Option<Translation> {
    let mut table = cpu::read_cr3_phys();
    let mut effective = PteFlags::WRITABLE | PteFlags::USER;
    let mut nx = false;
    for (level, index) in indices(vaddr).into_iter().enumerate() {
        let entry = table_entry(table, index);
        let flags = PteFlags::from_bits_retain(entry);
        if !flags.contains(PteFlags::PRESENT) {
            return None;
        }
        effective &= flags | !(PteFlags::WRITABLE | PteFlags::USER);
        nx |= flags.contains(PteFlags::NO_EXECUTE);
        let page_size = match level {
            1 if flags.contains(PteFlags::HUGE) => Some(1 << 30),
            2 if flags.contains(PteFlags::HUGE) => Some(1 << 21),
            3 => Some(1 << 12),
            _ => None,
        };
        if let Some(page_size) = page_size {
            let mut leaf = (flags - PteFlags::WRITABLE - PteFlags::USER) | effective;
            leaf.set(PteFlags::NO_EXECUTE, nx);
            let base = entry & ADDR_MASK & !(page_size - 1);
            return Some(Translation { phys: base + (vaddr & (page_size - 1)), flags: leaf, page_size });
        }
        table = entry & ADDR_MASK;
    }
    None
}

/// Whether `vaddr` is mapped (readable) right now.
pub fn is_mapped(vaddr: u64) -> bool {
    translate(vaddr).is_some()
}

/// Removes the 4 KiB kernel mapping of `vaddr` and flushes it from this CPU's
/// TLB; returns the physical address that was mapped. The frame is not freed:
/// its owner (a static, today) still holds it.
///
/// # Safety
/// Nothing may access the page afterwards except to fault on purpose (a guard
/// page); any Rust reference into it becomes dangling.
pub unsafe fn unmap_kernel_page(vaddr: u64) -> Result<u64, PagingError> {
    if vaddr >> 63 == 0 {
        return Err(PagingError::NotKernel);
    }
    let mut table = cpu::read_cr3_phys();
    for (level, index) in indices(vaddr).into_iter().enumerate() {
        let entry_addr = PAGE_OFFSET + table + index * 8;
        let entry = table_entry(table, index);
        let flags = PteFlags::from_bits_retain(entry);
        if !flags.contains(PteFlags::PRESENT) {
            return Err(PagingError::NotMapped);
        }
        if level == 3 {
            // SAFETY: entry_addr is the direct-map address of the PTE for
            // vaddr in the live tables; clearing it unmaps exactly that page,
            // and the caller guarantees nothing uses the page any more.
            unsafe { core::ptr::write_volatile(entry_addr as *mut u64, 0) };
            cpu::invlpg(vaddr);
            return Ok(entry & ADDR_MASK);
        }
        if flags.contains(PteFlags::HUGE) {
            return Err(PagingError::HugePage);
        }
        table = entry & ADDR_MASK;
    }
    Err(PagingError::NotMapped)
}
