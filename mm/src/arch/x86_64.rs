//! The x86_64 encodings mm needs (Linux `arch/x86/include/asm/`:
//! `pgtable_types.h`, `page_64_types.h`, `pgtable_64_types.h`), in one
//! file so that every mechanism file stays arch-neutral.
//!
//! These are pure bit layouts, not machine access: host tests run the real
//! mm code with them, which is why they live in mm and not in the kernel.
//! Machine access goes through the traits of [`crate::arch`].
//!
//! What is here: the page-table entry format ([`X86PteFormat`], SDM vol. 3
//! section 4.5), the size of the user half ([`USER_TOP`], [`TASK_SIZE`])
//! and canonical form ([`is_canonical`]), for 4-level paging (48-bit
//! virtual addresses; no LA57), and the swap-entry layout of non-present
//! ptes (Linux `pgtable_64.h`'s `__swp_entry`), used today by migration
//! entries.
//!
//! The mechanism modules re-export what they use (`pgtable::X86PteFormat`,
//! `pgtable::USER_TOP`, `uaddr::TASK_SIZE`), so callers name those.

#![forbid(unsafe_code)]

use crate::addr::{PAGE_SIZE, PhysAddr};
use crate::pgtable::{Entry, Leaf, Level, PageSize, PgProt, PteFormat};
use crate::swapops::SwpEntry;

/// Virtual address bits of 4-level paging (Linux `__VIRTUAL_MASK_SHIFT` + 1).
pub const VIRTUAL_ADDRESS_BITS: u32 = 48;

/// The end of the lower (user) half of the four-level address space: the
/// start of the non-canonical hole.
pub const USER_TOP: u64 = 1 << (VIRTUAL_ADDRESS_BITS - 1);

/// End of the user address space (Linux `TASK_SIZE_MAX` for 4-level
/// paging: the last page below the canonical hole is left unmapped).
pub const TASK_SIZE: u64 = USER_TOP - PAGE_SIZE;

/// Whether `addr` is canonical: bits 63..47 all equal (SDM vol. 1 section
/// 3.3.7.1), so a page table can map it.
pub const fn is_canonical(addr: u64) -> bool {
    let top = addr >> (VIRTUAL_ADDRESS_BITS - 1);
    top == 0 || top == (1 << (64 - VIRTUAL_ADDRESS_BITS + 1)) - 1
}

/// Bits of an x86_64 swap pte's type field, at the top of the entry
/// (Linux `SWP_TYPE_BITS`; arch/x86/include/asm/pgtable_64.h).
const X86_SWP_TYPE_BITS: u32 = crate::swapops::MAX_SWAPFILES_SHIFT;
/// The offset starts above the protnone bit (Linux `SWP_OFFSET_FIRST_BIT`)
/// and is stored inverted, so that a swap pte never points at real memory
/// for a speculative L1TF access (Linux's `__swp_entry`).
const X86_SWP_OFFSET_SHIFT: u32 = 9 + X86_SWP_TYPE_BITS;

/// x86_64 4-level entries (SDM vol. 3 section 4.5; Linux `_PAGE_BIT_*`).
#[derive(Clone, Copy, Debug)]
pub struct X86PteFormat {
    nx: bool,
}

pub(crate) const X86_PRESENT: u64 = 1 << 0;
pub(crate) const X86_RW: u64 = 1 << 1;
pub(crate) const X86_USER: u64 = 1 << 2;
const X86_PWT: u64 = 1 << 3;
const X86_PCD: u64 = 1 << 4;
pub(crate) const X86_ACCESSED: u64 = 1 << 5;
pub(crate) const X86_DIRTY: u64 = 1 << 6;
/// `_PAGE_PSE` at pmd/pud level; the PAT bit in a pte.
const X86_PSE: u64 = 1 << 7;
pub(crate) const X86_GLOBAL: u64 = 1 << 8;
const X86_NX: u64 = 1 << 63;
/// Protection bits that map one to one onto entry bits.
const X86_PROT_BITS: [(PgProt, u64); 7] = [
    (PgProt::WRITE, X86_RW),
    (PgProt::USER, X86_USER),
    (PgProt::WRITE_THROUGH, X86_PWT),
    (PgProt::NO_CACHE, X86_PCD),
    (PgProt::ACCESSED, X86_ACCESSED),
    (PgProt::DIRTY, X86_DIRTY),
    (PgProt::GLOBAL, X86_GLOBAL),
];
/// Physical address bits of an entry (52-bit physical addresses).
const X86_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

impl X86PteFormat {
    /// The format for a CPU with or without no-execute support. Without
    /// it (or before `EFER.NXE` is set) bit 63 is reserved and every leaf is
    /// executable.
    pub const fn new(nx: bool) -> Self {
        X86PteFormat { nx }
    }
}

impl PteFormat for X86PteFormat {
    #[inline]
    fn encode_leaf(&self, leaf: Leaf) -> u64 {
        let p = leaf.prot;
        let present = if p.contains(PgProt::PROTNONE) { X86_GLOBAL } else { X86_PRESENT };
        let mut raw = (leaf.phys.as_u64() & X86_ADDR_MASK) | present;
        for (flag, bit) in X86_PROT_BITS {
            if p.contains(flag) {
                raw |= bit;
            }
        }
        if self.nx && !p.contains(PgProt::EXEC) {
            raw |= X86_NX;
        }
        if leaf.size != PageSize::Size4K {
            raw |= X86_PSE;
        }
        raw
    }

    fn encode_table(&self, table: PhysAddr, user: bool) -> u64 {
        // Linux _KERNPG_TABLE / _PAGE_TABLE.
        let raw = (table.as_u64() & X86_ADDR_MASK) | X86_PRESENT | X86_RW | X86_ACCESSED | X86_DIRTY;
        if user { raw | X86_USER } else { raw }
    }

    fn pte_present(&self, raw: u64) -> bool {
        raw & X86_PRESENT != 0 || raw & (X86_PRESENT | X86_GLOBAL) == X86_GLOBAL
    }

    fn pte_chg_mask(&self) -> u64 {
        X86_ADDR_MASK | X86_DIRTY
    }

    fn encode_swp(&self, entry: SwpEntry) -> u64 {
        (!entry.offset() << X86_SWP_OFFSET_SHIFT >> X86_SWP_TYPE_BITS)
            | (u64::from(entry.ty()) << (64 - X86_SWP_TYPE_BITS))
    }

    #[inline]
    fn decode(&self, raw: u64, level: Level) -> Entry {
        let protnone = raw & (X86_PRESENT | X86_GLOBAL) == X86_GLOBAL && level == Level::Pte;
        if raw & X86_PRESENT == 0 && !protnone {
            // Linux `pte_none` ignores the accessed and dirty bits, which
            // some CPUs set in non-present entries (`_PAGE_KNL_ERRATUM_MASK`).
            if raw & !(X86_ACCESSED | X86_DIRTY) == 0 || level != Level::Pte {
                return Entry::None;
            }
            let ty = (raw >> (64 - X86_SWP_TYPE_BITS)) as u32;
            let offset = !raw << X86_SWP_TYPE_BITS >> X86_SWP_OFFSET_SHIFT;
            return Entry::Swap(SwpEntry::new(ty, offset));
        }
        let size = match level {
            Level::Pte => PageSize::Size4K,
            Level::Pgd => return Entry::Table(PhysAddr::new(raw & X86_ADDR_MASK)),
            Level::Pmd | Level::Pud if raw & X86_PSE == 0 => {
                return Entry::Table(PhysAddr::new(raw & X86_ADDR_MASK));
            }
            Level::Pmd => PageSize::Size2M,
            Level::Pud => PageSize::Size1G,
        };
        let mut prot = if protnone { PgProt::PROTNONE } else { PgProt::empty() };
        for (flag, bit) in X86_PROT_BITS {
            if raw & bit != 0 && !(protnone && flag == PgProt::GLOBAL) {
                prot |= flag;
            }
        }
        if !self.nx || raw & X86_NX == 0 {
            prot |= PgProt::EXEC;
        }
        let phys = PhysAddr::new(raw & X86_ADDR_MASK & !(size.bytes() - 1));
        Entry::Leaf(Leaf { phys, prot, size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_half_ends_at_the_non_canonical_hole() {
        assert!(is_canonical(USER_TOP - 1) && !is_canonical(USER_TOP));
        assert!(!is_canonical(0xffff_7fff_ffff_ffff) && is_canonical(0xffff_8000_0000_0000));
        assert!(is_canonical(u64::MAX) && is_canonical(0));
        assert_eq!(TASK_SIZE, 0x7fff_ffff_f000, "Linux TASK_SIZE_MAX");
    }
}
