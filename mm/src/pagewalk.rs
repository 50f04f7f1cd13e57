//! Walking a range of a page-table tree with callbacks (Linux
//! `mm/pagewalk.c` `walk_page_range` with `struct mm_walk_ops`).
//!
//! Linux's ops have one callback per level (`pud_entry`, `pmd_entry`,
//! `pte_entry`) plus `pte_hole`; ours have one [`PageWalkOps::leaf`] that
//! receives the leaf's size, and [`PageWalkOps::hole`] with the level at
//! which the walk found nothing. Either may stop the walk by returning
//! [`ControlFlow::Break`]. The walk reads entries without locks: callers
//! that need a stable picture hold the lock that serialises changes.

use core::ops::ControlFlow;
use core::sync::atomic::Ordering;

use crate::addr::{PhysAddr, VirtAddr};
use crate::pgtable::{Entry, Leaf, Level, PageTable, PteFormat, entry_ranges};

/// What a walk does at each leaf and hole.
pub trait PageWalkOps {
    /// `[start, end)` (clipped to the walked range) is mapped by `leaf`,
    /// whose `phys` is the frame address of `start`.
    fn leaf(&mut self, start: u64, end: u64, leaf: Leaf) -> ControlFlow<()>;

    /// Nothing is mapped in `[start, end)`; the walk found an empty entry
    /// at `level` (Linux `pte_hole`'s depth).
    fn hole(&mut self, _start: u64, _end: u64, _level: Level) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// Walks `[start, end)` of `pt` in address order (Linux
/// `walk_page_range`). `end` is exclusive and may be `start`'s half's end;
/// a range that is empty or leaves `start`'s half of the address space is
/// walked only up to the end of that half.
pub fn walk_page_range<F: PteFormat>(
    pt: &PageTable<'_, F>,
    start: VirtAddr,
    end: u64,
    ops: &mut impl PageWalkOps,
) -> ControlFlow<()> {
    let half_end = if start.is_user() { 0x0000_8000_0000_0000 } else { u64::MAX };
    let end = end.min(half_end);
    if end <= start.as_u64() {
        return ControlFlow::Continue(());
    }
    walk_level(pt, pt.root(), Level::Pgd, start.as_u64(), end, ops)
}

fn walk_level<F: PteFormat>(
    pt: &PageTable<'_, F>,
    table: PhysAddr,
    level: Level,
    start: u64,
    end: u64,
    ops: &mut impl PageWalkOps,
) -> ControlFlow<()> {
    let entries = pt.table(table);
    let size = level.entry_size();
    for (index, va, entry_end) in entry_ranges(level, start, end) {
        match pt.format().decode(entries[index].load(Ordering::Acquire), level) {
            // A swap entry maps nothing the walker could reach.
            Entry::None | Entry::Swap(_) => ops.hole(va, entry_end, level)?,
            Entry::Leaf(leaf) => {
                let offset = va & (size - 1);
                ops.leaf(va, entry_end, Leaf { phys: PhysAddr::new(leaf.phys.as_u64() + offset), ..leaf })?;
            }
            Entry::Table(lower_table) => {
                let Some(lower) = level.lower() else { return ControlFlow::Continue(()) };
                walk_level(pt, lower_table, lower, va, entry_end, ops)?;
            }
        }
    }
    ControlFlow::Continue(())
}
