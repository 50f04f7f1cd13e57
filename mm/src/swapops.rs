//! Swap entries: what a non-present pte holds when it is not empty (Linux
//! `include/linux/swapops.h` and the `swp_entry_t` of `swap.h`).
//!
//! A swap entry is a type and an offset. Types below [`MAX_SWAPFILES`]
//! name swap areas (the kernel's `swap_info[]`, indexed by type); the
//! types above are special. [`SWP_MIGRATION_READ`] and [`SWP_MIGRATION_WRITE`]
//! are migration entries: the pte of a page being migrated, whose offset
//! is the page's frame number, and which a fault waits on until the page
//! is unlocked (Linux `migration_entry_wait`). [`SWP_PTE_MARKER`] holds
//! pte markers: of Linux's, only the poisoned one
//! ([`make_poisoned_swp_entry`]), which swapoff leaves where a page could
//! not be read back and which a fault answers with `SIGBUS`.
//!
//! The pte encoding is the architecture's
//! ([`PteFormat::encode_swp`](crate::pgtable::PteFormat::encode_swp) and
//! `decode`); this module is the arch-neutral half.
//!
//! Differences from Linux: no `SWP_MIGRATION_READ_EXCLUSIVE` (we have no
//! `PG_anon_exclusive`: exclusivity is the page's refcount), no hwpoison
//! or device entries, and of the pte markers only `PTE_MARKER_POISONED`,
//! so [`MAX_SWAPFILES`] is 29 rather than Linux's 32 minus its special
//! types.

use crate::addr::Pfn;

/// Bits of the type field (Linux `MAX_SWAPFILES_SHIFT`).
pub const MAX_SWAPFILES_SHIFT: u32 = 5;

/// Swap area types `0..MAX_SWAPFILES`; the special types follow (two
/// for migration, one for pte markers).
pub const MAX_SWAPFILES: u32 = (1 << MAX_SWAPFILES_SHIFT) - 3;

/// A page under migration that was mapped read-only.
pub const SWP_MIGRATION_READ: u32 = MAX_SWAPFILES;

/// A page under migration that was mapped writable.
pub const SWP_MIGRATION_WRITE: u32 = MAX_SWAPFILES + 1;

/// A pte marker: a non-present pte that is no page's and no slot's, its
/// offset the marker's bits (Linux `SWP_PTE_MARKER`).
pub const SWP_PTE_MARKER: u32 = MAX_SWAPFILES + 2;

/// The marker of a page whose data was lost (Linux
/// `PTE_MARKER_POISONED`, Linux's `BIT(1)`).
pub const PTE_MARKER_POISONED: u64 = 1 << 1;

/// A swap entry (Linux `swp_entry_t`): a type and an offset, the offset
/// limited to what the pte encoding holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwpEntry {
    ty: u32,
    offset: u64,
}

impl SwpEntry {
    /// An entry of type `ty` (below `1 << MAX_SWAPFILES_SHIFT`) at
    /// `offset` (Linux `swp_entry`).
    pub const fn new(ty: u32, offset: u64) -> Self {
        SwpEntry { ty: ty & ((1 << MAX_SWAPFILES_SHIFT) - 1), offset }
    }

    /// The type (Linux `swp_type`).
    pub const fn ty(self) -> u32 {
        self.ty
    }

    /// The offset (Linux `swp_offset`).
    pub const fn offset(self) -> u64 {
        self.offset
    }
}

/// Offset bits of a migration entry that hold the frame number (Linux
/// `SWP_PFN_BITS`: 52-bit physical addresses, 4 KiB pages).
pub const SWP_PFN_BITS: u32 = 40;

/// Offset bit of a migration entry recording that the pte it replaced was
/// young (accessed) (Linux `SWP_MIG_YOUNG_BIT`).
pub const SWP_MIG_YOUNG_BIT: u64 = 1 << SWP_PFN_BITS;

/// Offset bit of a migration entry recording that the pte it replaced was
/// dirty (Linux `SWP_MIG_DIRTY_BIT`).
pub const SWP_MIG_DIRTY_BIT: u64 = 1 << (SWP_PFN_BITS + 1);

/// The migration entry standing for `pfn` while it moves (Linux
/// `make_readable_migration_entry` / `make_writable_migration_entry`).
pub const fn make_migration_entry(pfn: Pfn, writable: bool) -> SwpEntry {
    SwpEntry::new(if writable { SWP_MIGRATION_WRITE } else { SWP_MIGRATION_READ }, pfn.as_u64())
}

/// The migration entry of a pte that was `writable`, `young` and `dirty`
/// (Linux `make_*_migration_entry` + `make_migration_entry_young` /
/// `make_migration_entry_dirty`, which x86 supports: the bits come back
/// in the new pte).
pub const fn make_migration_entry_ad(pfn: Pfn, writable: bool, young: bool, dirty: bool) -> SwpEntry {
    let mut offset = pfn.as_u64();
    if young {
        offset |= SWP_MIG_YOUNG_BIT;
    }
    if dirty {
        offset |= SWP_MIG_DIRTY_BIT;
    }
    SwpEntry::new(if writable { SWP_MIGRATION_WRITE } else { SWP_MIGRATION_READ }, offset)
}

/// Whether the pte a migration entry replaced was young (Linux
/// `is_migration_entry_young`).
pub const fn is_migration_entry_young(entry: SwpEntry) -> bool {
    entry.offset & SWP_MIG_YOUNG_BIT != 0
}

/// Whether the pte a migration entry replaced was dirty (Linux
/// `is_migration_entry_dirty`).
pub const fn is_migration_entry_dirty(entry: SwpEntry) -> bool {
    entry.offset & SWP_MIG_DIRTY_BIT != 0
}

/// Whether `entry` is a migration entry (Linux `is_migration_entry`).
pub const fn is_migration_entry(entry: SwpEntry) -> bool {
    entry.ty == SWP_MIGRATION_READ || entry.ty == SWP_MIGRATION_WRITE
}

/// Whether a migration entry stands for a writable mapping (Linux
/// `is_writable_migration_entry`).
pub const fn is_writable_migration_entry(entry: SwpEntry) -> bool {
    entry.ty == SWP_MIGRATION_WRITE
}

/// The page a migration entry stands for (Linux `pfn_swap_entry_to_page`),
/// or `None` for another kind of entry.
pub const fn migration_entry_to_pfn(entry: SwpEntry) -> Option<Pfn> {
    if is_migration_entry(entry) { Some(Pfn::new(entry.offset & ((1 << SWP_PFN_BITS) - 1))) } else { None }
}

/// The entry swapoff leaves in a pte whose page could not be read back
/// from its slot (Linux `make_poisoned_swp_entry`): a fault on it is
/// `SIGBUS`, fork copies it, unmapping clears it.
pub const fn make_poisoned_swp_entry() -> SwpEntry {
    SwpEntry::new(SWP_PTE_MARKER, PTE_MARKER_POISONED)
}

/// Whether `entry` is a poisoned pte marker (Linux
/// `is_poisoned_swp_entry`).
pub const fn is_poisoned_swp_entry(entry: SwpEntry) -> bool {
    entry.ty == SWP_PTE_MARKER && entry.offset & PTE_MARKER_POISONED != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_entries_carry_their_page_and_writability() {
        let pfn = Pfn::new(0x12345);
        for writable in [false, true] {
            let e = make_migration_entry(pfn, writable);
            assert!(is_migration_entry(e));
            assert_eq!(is_writable_migration_entry(e), writable);
            assert_eq!(migration_entry_to_pfn(e), Some(pfn));
        }
        let e = make_migration_entry_ad(pfn, true, true, false);
        assert_eq!(migration_entry_to_pfn(e), Some(pfn));
        assert!(is_migration_entry_young(e) && !is_migration_entry_dirty(e) && is_writable_migration_entry(e));
        let e = make_migration_entry_ad(pfn, false, false, true);
        assert!(!is_migration_entry_young(e) && is_migration_entry_dirty(e) && !is_writable_migration_entry(e));
        let area = SwpEntry::new(3, 77);
        assert!(!is_migration_entry(area) && !is_poisoned_swp_entry(area));
        let poisoned = make_poisoned_swp_entry();
        assert!(is_poisoned_swp_entry(poisoned) && !is_migration_entry(poisoned));
        assert_eq!(migration_entry_to_pfn(poisoned), None);
        assert_eq!(migration_entry_to_pfn(area), None);
        assert_eq!((area.ty(), area.offset()), (3, 77));
    }
}
