//! Swap entries in page tables and the swap areas behind them (the pte
//! half of Linux `mm/swap_state.c` and `mm/swapfile.c`'s
//! `swap_duplicate`/`free_swap_and_cache` as `mm/memory.c` calls them).
//!
//! A pte holding a swap entry of an area (type below
//! [`MAX_SWAPFILES`]) stands for an anonymous page written to that slot:
//! the slot's count in the area's `swap_map` counts the ptes holding the
//! entry. The areas live in the kernel ([`SwapBackend`], registered with
//! [`PgData::set_swap_backend`]); this module is what the mm's page-table
//! paths do with such a pte:
//! - fork copies it to the child and counts one more pte
//!   ([`SwapBackend::swap_duplicate`], Linux `copy_nonpresent_pte`);
//! - munmap, exit, `MADV_DONTNEED` and the OOM reaper clear it and count
//!   one fewer ([`SwapBackend::free_swap_and_cache`], Linux
//!   `zap_nonpresent_ptes`);
//! - mremap moves it as any pte;
//! - the address space's `MM_SWAPENTS` ([`crate::mmap::MmCounter::SwapEnts`])
//!   counts them, for `VmSwap` and the OOM killer's badness.
//!
//! Differences from Linux: no swap cache, no swap-out or swap-in yet
//! (reclaim keeps anonymous pages; a fault on a swap pte is `SIGBUS`),
//! so only a test puts swap entries in page tables today.

#![forbid(unsafe_code)]

use crate::page_alloc::PgData;
use crate::swapops::{MAX_SWAPFILES, SwpEntry};

/// Why a swap entry could not be counted once more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapDupError {
    /// No area, or no slot in use, at that entry (a corrupt pte).
    BadEntry,
    /// The count needs a continuation page and none could be had.
    NoMemory,
}

/// The kernel's swap areas as the page-table paths use them (Linux's
/// `swap_info[]` entry points). Called with page-table and mmap locks
/// held: the methods must not sleep.
pub trait SwapBackend: Sync {
    /// One more pte holds `entry` (Linux `swap_duplicate`).
    fn swap_duplicate(&self, entry: SwpEntry) -> Result<(), SwapDupError>;

    /// One pte fewer holds `entry` (Linux `free_swap_and_cache`): the
    /// slot is freed with its last reference.
    fn free_swap_and_cache(&self, entry: SwpEntry);
}

/// Whether `entry` names a swap area's slot (not a migration entry).
pub const fn is_swap_entry(entry: SwpEntry) -> bool {
    entry.ty() < MAX_SWAPFILES
}

impl PgData<'_> {
    /// Registers the kernel's swap areas; the first registration stays.
    pub fn set_swap_backend(&self, backend: &'static dyn SwapBackend) {
        self.swap_backend_once().call_once(|| backend);
    }

    /// The registered swap areas, if any.
    pub fn swap_backend(&self) -> Option<&'static dyn SwapBackend> {
        self.swap_backend_once().get().copied()
    }
}

#[cfg(test)]
mod tests;
