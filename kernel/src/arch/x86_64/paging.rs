//! Reading the live page tables: whatever CR3 points at, the bootloader's
//! tables early in boot or the kernel's own (see [`super::pgtable`]) after.
//!
//! Backtraces, the fault handler and tests ask "is this address mapped, and
//! how"; this answers without locks or allocation, decoding entries with
//! mm's x86_64 format. Non-leaf entries are taken to grant every right: the
//! kernel's tables are built that way and the bootloader's are too, so the
//! leaf's protection is the effective one.

use core::sync::atomic::{AtomicU64, Ordering};

use mm::pgtable::{Entry, Leaf, Level, PteFormat, X86PteFormat};
use mm::{PhysAddr, VirtAddr};

use super::cpu;
use crate::boot::PAGE_OFFSET;

/// Decodes entries as the hardware does: NX honoured (the bootloader turns
/// EFER.NXE on and so does the kernel).
const FORMAT: X86PteFormat = X86PteFormat::new(true);

fn entry(table_phys: u64, index: usize) -> u64 {
    let entry = (PAGE_OFFSET + table_phys + index as u64 * 8) as *const AtomicU64;
    // SAFETY: table_phys is a page-table page taken from CR3 or a present
    // non-leaf entry; page-table pages are RAM, which the direct map
    // covers (before and after the switch to the kernel's tables), and the
    // index is below 512. The CPU updates entries atomically, so we read
    // them atomically.
    unsafe { (*entry).load(Ordering::Relaxed) }
}

/// Walks the current page tables for `vaddr` (Linux `lookup_address`); the
/// leaf's `phys` is the address of `vaddr`'s byte.
pub fn translate(vaddr: u64) -> Option<Leaf> {
    let va = VirtAddr::new(vaddr)?.as_u64();
    let mut table = cpu::read_cr3_phys();
    let mut level = Level::Pgd;
    loop {
        match FORMAT.decode(entry(table, level.index(va)), level) {
            Entry::None | Entry::Swap(_) => return None,
            Entry::Table(t) => {
                table = t.as_u64();
                level = level.lower()?;
            }
            Entry::Leaf(leaf) => {
                let offset = va & (leaf.size.bytes() - 1);
                return Some(Leaf { phys: PhysAddr::new(leaf.phys.as_u64() + offset), ..leaf });
            }
        }
    }
}

/// Whether `vaddr` is mapped (readable) right now.
pub fn is_mapped(vaddr: u64) -> bool {
    translate(vaddr).is_some()
}
