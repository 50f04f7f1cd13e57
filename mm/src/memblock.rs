//! Early-boot physical memory management (Linux `mm/memblock.c`).
//!
//! Before the buddy allocator exists, the kernel still has to find room for
//! page tables, the `struct page` array and the boot allocator's own metadata.
//! memblock answers that need with two lists of physical ranges:
//!
//! - `memory`: the RAM the firmware reported (E820 or the UEFI memory map),
//! - `reserved`: the parts of that RAM already in use (kernel image, initrd,
//!   boot page tables, firmware tables, and every memblock allocation).
//!
//! The free memory is `memory` minus `reserved`. An allocation
//! ([`Memblock::phys_alloc_range`]) searches the free memory from the top down,
//! takes the highest aligned block that fits below the caller's limit, and
//! records it by adding it to `reserved`. Nothing is ever handed back to the
//! buddy allocator from here; page_alloc later walks [`Memblock::free_ranges`]
//! and releases those pages, which is where memblock's job ends.
//!
//! # Invariants
//!
//! For each of the two arrays ([`MemblockType`]), after every operation
//! returns, whether it succeeded or failed:
//!
//! 1. regions are sorted by base address;
//! 2. regions do not overlap;
//! 3. no two regions touch: if one ends where the next begins they have been
//!    merged into one;
//! 4. every region has a non-zero size and its end fits in 64 bits.
//!
//! Together these make the array the unique, shortest description of its set
//! of addresses, so two memblocks describing the same memory compare equal
//! region by region, and lookups can binary-search on base or end.
//!
//! # Locking
//!
//! None. memblock runs while boot is still single-threaded (Linux marks it
//! `__init`); a [`Memblock`] is a plain value and `&mut self` serializes its
//! users. The kernel keeps one in a static behind its own lock if it ever needs
//! to share it; tests build one per test.
//!
//! # Differences from Linux
//!
//! - **Fixed capacity.** Each array holds [`INIT_MEMBLOCK_REGIONS`] regions.
//!   Linux doubles a full array with `memblock_double_array()`, allocating the
//!   new array from memblock itself; this crate has no `alloc` and memblock is
//!   what comes before any allocator, so an operation that would need a
//!   129th region fails with [`MemblockError::TooManyRegions`] and leaves both
//!   arrays exactly as they were. Capacity is checked against the count *after*
//!   merging, so an add that bridges existing regions, or a remove that trims
//!   rather than splits, still succeeds on a full array (Linux checks before
//!   merging and would double needlessly).
//! - **No region flags and no NUMA node ids.** There is no `MEMBLOCK_NOMAP`,
//!   `MEMBLOCK_HOTPLUG`, `MEMBLOCK_MIRROR` or `MEMBLOCK_DRIVER_MANAGED`, and no
//!   `nid`; `dump` always prints `flags: 0x0` and never `on node N`. Because
//!   every region is alike, any two touching regions merge; `add` therefore
//!   computes the merged region directly instead of Linux's insert-then-
//!   `memblock_merge_regions()` two-pass scheme.
//! - **Overflow is an error.** Linux silently trims a range that runs past the
//!   end of the address space (`memblock_cap_size()`); here `add`, `remove`,
//!   `reserve` and `free` reject it with [`MemblockError::Overflow`].
//! - **Allocation arguments.** Linux warns on `align == 0` and substitutes
//!   `SMP_CACHE_BYTES`, and silently misbehaves on a non-power-of-two
//!   alignment; both are [`MemblockError::BadAlign`] here. A zero-size request
//!   is [`MemblockError::NoSpace`]: there is no block to reserve, and an
//!   unreserved address would look owned to two callers. The search `end` is
//!   always clamped to the current limit (Linux clamps only when passed
//!   `MEMBLOCK_ALLOC_ACCESSIBLE`). Linux never returns page 0 because 0 is its
//!   failure value; a `Result` has no such need, so the arch setup code
//!   reserves low memory itself, as x86 does anyway for the BIOS areas.
//! - **Left out:** the `physmem` array, bottom-up allocation
//!   (`memblock_set_bottom_up()`), virtual-address allocators
//!   (`memblock_alloc()`), kmemleak hooks, and the `total_size` cache (totals
//!   are summed on demand from at most [`INIT_MEMBLOCK_REGIONS`] entries).

#![forbid(unsafe_code)]

use core::fmt;
use core::iter::FusedIterator;
use core::ops::Range;

use crate::addr::PhysAddr;

/// Capacity of each region array (Linux `INIT_MEMBLOCK_REGIONS`).
pub const INIT_MEMBLOCK_REGIONS: usize = 128;

/// "No limit" for [`Memblock::set_current_limit`] and the default limit
/// (Linux `MEMBLOCK_ALLOC_ANYWHERE`).
pub const MEMBLOCK_ALLOC_ANYWHERE: PhysAddr = PhysAddr::new(u64::MAX);

/// One contiguous physical range `[base, base + size)` (Linux `struct memblock_region`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[doc(alias = "memblock_region")]
pub struct MemblockRegion {
    /// First byte of the range.
    pub base: PhysAddr,
    /// Length in bytes.
    pub size: u64,
}

impl MemblockRegion {
    const EMPTY: Self = Self { base: PhysAddr::new(0), size: 0 };

    /// The exclusive end, `base + size`.
    ///
    /// # Panics
    /// If `base + size` overflows, which no region stored in a [`Memblock`] does.
    pub fn end(&self) -> PhysAddr {
        self.base + self.size
    }
}

/// One sorted array of regions: `memory` or `reserved` (Linux `struct memblock_type`).
#[doc(alias = "memblock_type")]
pub struct MemblockType {
    regions: [MemblockRegion; INIT_MEMBLOCK_REGIONS],
    cnt: usize,
    name: &'static str,
}

impl MemblockType {
    const fn new(name: &'static str) -> Self {
        Self { regions: [MemblockRegion::EMPTY; INIT_MEMBLOCK_REGIONS], cnt: 0, name }
    }

    /// The regions in use, sorted by base, non-overlapping and non-touching.
    pub fn regions(&self) -> &[MemblockRegion] {
        &self.regions[..self.cnt]
    }

    /// Sum of the region sizes (Linux `type->total_size`).
    pub fn total_size(&self) -> u64 {
        // Cannot overflow: the regions are disjoint subranges of [0, u64::MAX].
        self.regions().iter().map(|r| r.size).sum()
    }

    /// `"memory"` or `"reserved"`, as printed by [`Memblock::dump`].
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Adds `[base, base + size)`, merging with every region it overlaps or
    /// touches (Linux `memblock_add_range()`).
    fn add_range(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        if size == 0 {
            return Ok(());
        }
        let end = checked_end(base, size)?;
        // Regions ending before `base` or starting after `end` stay; the run
        // in between touches the new range and is absorbed by it.
        let first = self.regions().partition_point(|r| r.end() < base);
        let last = self.regions().partition_point(|r| r.base <= end);
        let (mut merged_base, mut merged_end) = (base, end);
        if first < last {
            merged_base = merged_base.min(self.regions[first].base);
            merged_end = merged_end.max(self.regions[last - 1].end());
        }
        let merged = MemblockRegion { base: merged_base, size: merged_end - merged_base };
        self.splice(first..last, &[merged])
    }

    /// Removes `[base, base + size)`, trimming or splitting the regions it
    /// overlaps (Linux `memblock_isolate_range()` + `memblock_remove_range()`).
    fn remove_range(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        if size == 0 {
            return Ok(());
        }
        let end = checked_end(base, size)?;
        let first = self.regions().partition_point(|r| r.end() <= base);
        let last = self.regions().partition_point(|r| r.base < end);
        if first == last {
            return Ok(());
        }
        // Only the first and last overlapped regions can stick out of the
        // range; what sticks out survives.
        let (head, tail) = (self.regions[first], self.regions[last - 1]);
        let mut keep = [MemblockRegion::EMPTY; 2];
        let mut kept = 0;
        if head.base < base {
            keep[kept] = MemblockRegion { base: head.base, size: base - head.base };
            kept += 1;
        }
        if tail.end() > end {
            keep[kept] = MemblockRegion { base: end, size: tail.end() - end };
            kept += 1;
        }
        self.splice(first..last, &keep[..kept])
    }

    /// Replaces the regions at indices `old` with `new`, or fails without
    /// touching the array if the result would not fit.
    ///
    /// The caller guarantees that `new` fits between `old`'s neighbours
    /// without overlapping or touching them, so the invariants survive.
    fn splice(&mut self, old: Range<usize>, new: &[MemblockRegion]) -> Result<(), MemblockError> {
        let cnt = self.cnt - old.len() + new.len();
        if cnt > INIT_MEMBLOCK_REGIONS {
            return Err(MemblockError::TooManyRegions { array: self.name });
        }
        self.regions.copy_within(old.end..self.cnt, old.start + new.len());
        self.regions[old.start..old.start + new.len()].copy_from_slice(new);
        self.cnt = cnt;
        Ok(())
    }

    /// Whether any region overlaps `[base, end)`.
    fn overlaps(&self, base: PhysAddr, end: PhysAddr) -> bool {
        let first = self.regions().partition_point(|r| r.end() <= base);
        self.regions().get(first).is_some_and(|r| r.base < end)
    }
}

impl fmt::Debug for MemblockType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemblockType").field("name", &self.name).field("regions", &self.regions()).finish()
    }
}

/// `base + size`, or [`MemblockError::Overflow`] if that passes 2^64 - 1.
fn checked_end(base: PhysAddr, size: u64) -> Result<PhysAddr, MemblockError> {
    match base.as_u64().checked_add(size) {
        Some(end) => Ok(PhysAddr::new(end)),
        None => Err(MemblockError::Overflow { base, size }),
    }
}

/// Why a memblock operation failed. Linux returns `-ENOMEM`/`-EINVAL` or a
/// zero address; the variants say which limit was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemblockError {
    /// The named array (`"memory"` or `"reserved"`) would need more than
    /// [`INIT_MEMBLOCK_REGIONS`] regions. Nothing was changed.
    TooManyRegions {
        /// Name of the full array.
        array: &'static str,
    },
    /// `base + size` does not fit in a 64-bit physical address.
    Overflow {
        /// Start of the rejected range.
        base: PhysAddr,
        /// Length of the rejected range.
        size: u64,
    },
    /// The allocation alignment is zero or not a power of two.
    BadAlign {
        /// The rejected alignment.
        align: u64,
    },
    /// No free block of `size` bytes aligned to `align` ends at or below `limit`
    /// (or `size` was zero). Nothing was changed.
    NoSpace {
        /// Requested size in bytes.
        size: u64,
        /// Requested alignment in bytes.
        align: u64,
        /// The effective exclusive end of the search: the caller's `end`
        /// clamped to the current limit.
        limit: PhysAddr,
    },
}

impl fmt::Display for MemblockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooManyRegions { array } => {
                write!(f, "memblock {array} array is full ({INIT_MEMBLOCK_REGIONS} regions)")
            }
            Self::Overflow { base, size } => {
                write!(f, "range of {size:#x} bytes at {base:#x} runs past the end of the physical address space")
            }
            Self::BadAlign { align } => write!(f, "alignment {align:#x} is not a power of two"),
            Self::NoSpace { size, align, limit } => {
                write!(f, "no free {size:#x}-byte block aligned to {align:#x} below {limit:#x}")
            }
        }
    }
}

impl core::error::Error for MemblockError {}

/// The boot-time memory map and allocator (Linux `struct memblock`).
#[derive(Debug)]
#[doc(alias = "memblock")]
pub struct Memblock {
    /// RAM reported by the firmware.
    pub memory: MemblockType,
    /// Ranges of `memory` (or outside it) already in use.
    pub reserved: MemblockType,
    current_limit: PhysAddr,
}

impl Memblock {
    /// An empty memblock with no limit on allocations.
    pub const fn new() -> Self {
        Self {
            memory: MemblockType::new("memory"),
            reserved: MemblockType::new("reserved"),
            current_limit: MEMBLOCK_ALLOC_ANYWHERE,
        }
    }

    /// Records `[base, base + size)` as RAM (Linux `memblock_add()`).
    ///
    /// Overlapping and touching regions merge; adding a range already covered
    /// changes nothing.
    ///
    /// # Errors
    /// [`MemblockError::Overflow`] if the range passes the top of the address
    /// space; [`MemblockError::TooManyRegions`] if `memory` is full and the
    /// range touches no existing region.
    #[doc(alias = "memblock_add")]
    pub fn add(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.memory.add_range(base, size)
    }

    /// Forgets that `[base, base + size)` is RAM (Linux `memblock_remove()`).
    ///
    /// A region partly inside the range is trimmed; one that contains it with
    /// room on both sides is split in two. `reserved` is not touched.
    ///
    /// # Errors
    /// [`MemblockError::Overflow`] as for [`add`](Self::add);
    /// [`MemblockError::TooManyRegions`] if `memory` is full and the removal
    /// would split a region.
    #[doc(alias = "memblock_remove")]
    pub fn remove(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.memory.remove_range(base, size)
    }

    /// Marks `[base, base + size)` as in use (Linux `memblock_reserve()`).
    ///
    /// The range need not lie inside `memory`: firmware tables often do not.
    ///
    /// # Errors
    /// As for [`add`](Self::add), on the `reserved` array.
    #[doc(alias = "memblock_reserve")]
    pub fn reserve(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.reserved.add_range(base, size)
    }

    /// Releases a reservation (Linux `memblock_phys_free()`), trimming or
    /// splitting reserved regions as [`remove`](Self::remove) does for memory.
    ///
    /// # Errors
    /// As for [`remove`](Self::remove), on the `reserved` array.
    #[doc(alias = "memblock_phys_free")]
    pub fn free(&mut self, base: PhysAddr, size: u64) -> Result<(), MemblockError> {
        self.reserved.remove_range(base, size)
    }

    /// Caps every later allocation below `limit`, typically the end of what
    /// the early page tables map (Linux `memblock_set_current_limit()`).
    /// [`MEMBLOCK_ALLOC_ANYWHERE`] lifts the cap.
    #[doc(alias = "memblock_set_current_limit")]
    pub fn set_current_limit(&mut self, limit: PhysAddr) {
        self.current_limit = limit;
    }

    /// The allocation cap (Linux `memblock_get_current_limit()`).
    #[doc(alias = "memblock_get_current_limit")]
    pub fn current_limit(&self) -> PhysAddr {
        self.current_limit
    }

    /// Allocates `size` bytes aligned to `align` from free memory inside
    /// `[start, end)` and reserves them (Linux `memblock_phys_alloc_range()`).
    ///
    /// `end` is first clamped to [`current_limit`](Self::current_limit). The
    /// search is top-down: the result is the highest `align`-aligned address
    /// `a` with `[a, a + size)` inside `[start, end)`, inside one `memory`
    /// region and clear of `reserved`.
    ///
    /// # Errors
    /// [`MemblockError::BadAlign`] if `align` is zero or not a power of two;
    /// [`MemblockError::NoSpace`] if `size` is zero or no block fits;
    /// [`MemblockError::TooManyRegions`] if the block was found but `reserved`
    /// is full. On any error nothing is changed.
    #[doc(alias = "memblock_phys_alloc_range")]
    pub fn phys_alloc_range(
        &mut self,
        size: u64,
        align: u64,
        start: PhysAddr,
        end: PhysAddr,
    ) -> Result<PhysAddr, MemblockError> {
        if !align.is_power_of_two() {
            return Err(MemblockError::BadAlign { align });
        }
        let end = end.min(self.current_limit);
        let no_space = MemblockError::NoSpace { size, align, limit: end };
        if size == 0 || start >= end {
            return Err(no_space);
        }
        let base = self.find_in_range(size, align, start, end).ok_or(no_space)?;
        self.reserve(base, size)?;
        Ok(base)
    }

    /// Allocates anywhere below the current limit (Linux `memblock_phys_alloc()`).
    ///
    /// # Errors
    /// As for [`phys_alloc_range`](Self::phys_alloc_range).
    #[doc(alias = "memblock_phys_alloc")]
    pub fn phys_alloc(&mut self, size: u64, align: u64) -> Result<PhysAddr, MemblockError> {
        self.phys_alloc_range(size, align, PhysAddr::new(0), MEMBLOCK_ALLOC_ANYWHERE)
    }

    /// The highest `align`-aligned free block of `size` bytes inside
    /// `[start, end)`, where `0 < size`, `start < end` and `align` is a power
    /// of two (Linux `memblock_find_in_range_node()`, top-down).
    ///
    /// Linux walks the free ranges downwards and stops at the first fit. This
    /// walks them upwards and keeps the last fit, which is the same block:
    /// free ranges ascend, and each range's candidate is its highest fit.
    fn find_in_range(&self, size: u64, align: u64, start: PhysAddr, end: PhysAddr) -> Option<PhysAddr> {
        let mut found = None;
        for (range_start, range_end) in self.free_ranges() {
            if range_start >= end {
                break;
            }
            let this_start = range_start.clamp(start, end);
            let this_end = range_end.clamp(start, end);
            if this_end - this_start < size {
                continue;
            }
            let candidate = PhysAddr::new(this_end.as_u64() - size).align_down(align);
            if candidate >= this_start {
                found = Some(candidate);
            }
        }
        found
    }

    /// The free memory, `memory` minus `reserved`, as ascending non-empty
    /// `(start, end)` pairs with `end` exclusive (Linux
    /// `for_each_free_mem_range()`).
    #[doc(alias = "for_each_free_mem_range")]
    pub fn free_ranges(&self) -> FreeRanges<'_> {
        FreeRanges { memory: self.memory.regions(), reserved: self.reserved.regions(), idx_a: 0, idx_b: 0 }
    }

    /// Total RAM in bytes (Linux `memblock_phys_mem_size()`).
    #[doc(alias = "memblock_phys_mem_size")]
    pub fn phys_mem_size(&self) -> u64 {
        self.memory.total_size()
    }

    /// Total reserved bytes (Linux `memblock_reserved_size()`).
    #[doc(alias = "memblock_reserved_size")]
    pub fn reserved_size(&self) -> u64 {
        self.reserved.total_size()
    }

    /// Base of the lowest memory region, or `None` before any
    /// [`add`](Self::add) (Linux `memblock_start_of_DRAM()`).
    #[doc(alias = "memblock_start_of_DRAM")]
    pub fn start_of_dram(&self) -> Option<PhysAddr> {
        self.memory.regions().first().map(|r| r.base)
    }

    /// Exclusive end of the highest memory region, or `None` before any
    /// [`add`](Self::add) (Linux `memblock_end_of_DRAM()`).
    #[doc(alias = "memblock_end_of_DRAM")]
    pub fn end_of_dram(&self) -> Option<PhysAddr> {
        self.memory.regions().last().map(MemblockRegion::end)
    }

    /// Whether `addr` lies in a memory region (Linux `memblock_is_memory()`).
    #[doc(alias = "memblock_is_memory")]
    pub fn is_memory(&self, addr: PhysAddr) -> bool {
        // A one-byte range cannot overflow except at u64::MAX, which no
        // region can contain (region ends fit in 64 bits).
        addr.as_u64().checked_add(1).is_some_and(|end| self.memory.overlaps(addr, PhysAddr::new(end)))
    }

    /// Whether any byte of `[base, base + size)` is reserved (Linux
    /// `memblock_is_region_reserved()`). An empty range overlaps nothing; a
    /// range past the top of the address space is cut at 2^64 - 1, as
    /// Linux's `memblock_cap_size()` does.
    #[doc(alias = "memblock_is_region_reserved")]
    pub fn is_region_reserved(&self, base: PhysAddr, size: u64) -> bool {
        let end = PhysAddr::new(base.as_u64().saturating_add(size));
        size != 0 && self.reserved.overlaps(base, end)
    }

    /// Both arrays in the format of Linux's `__memblock_dump_all()`, for the
    /// boot log.
    #[doc(alias = "__memblock_dump_all")]
    pub fn dump(&self) -> Dump<'_> {
        Dump(self)
    }
}

impl Default for Memblock {
    fn default() -> Self {
        Self::new()
    }
}

/// Iterator over free memory returned by [`Memblock::free_ranges`].
///
/// Walks `memory` against the gaps between `reserved` regions, as Linux's
/// `__next_mem_range()` does: gap `idx_b` runs from the end of reserved region
/// `idx_b - 1` (or 0) to the base of reserved region `idx_b` (or the top of the
/// address space). Both indices only move forward because both arrays are
/// sorted, so the whole walk is linear.
pub struct FreeRanges<'a> {
    memory: &'a [MemblockRegion],
    reserved: &'a [MemblockRegion],
    idx_a: usize,
    idx_b: usize,
}

impl Iterator for FreeRanges<'_> {
    type Item = (PhysAddr, PhysAddr);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(m) = self.memory.get(self.idx_a) {
            let (m_start, m_end) = (m.base, m.end());
            while self.idx_b <= self.reserved.len() {
                let gap_start = self
                    .idx_b
                    .checked_sub(1)
                    .and_then(|i| self.reserved.get(i))
                    .map_or(PhysAddr::new(0), MemblockRegion::end);
                let gap_end = self.reserved.get(self.idx_b).map_or(MEMBLOCK_ALLOC_ANYWHERE, |r| r.base);
                if gap_start >= m_end {
                    // This gap and all later ones lie above the memory region.
                    break;
                }
                if m_start < gap_end {
                    let range = (m_start.max(gap_start), m_end.min(gap_end));
                    // Advance whichever of the two ends first; the other may
                    // still overlap the next one.
                    if m_end <= gap_end {
                        self.idx_a += 1;
                    } else {
                        self.idx_b += 1;
                    }
                    return Some(range);
                }
                self.idx_b += 1;
            }
            self.idx_a += 1;
        }
        None
    }
}

impl FusedIterator for FreeRanges<'_> {}

/// [`Display`](fmt::Display) adapter returned by [`Memblock::dump`].
///
/// Prints Linux's format, one line per region with inclusive ends and a tab
/// (shown here as spaces) after the region index:
///
/// ```text
/// MEMBLOCK configuration:
///  memory size = 0x000000007ff9e000 reserved size = 0x0000000000002000
///  memory.cnt  = 0x2
///  memory[0x0]    [0x0000000000001000-0x000000000009efff], 0x000000000009e000 bytes flags: 0x0
///  ...
///  reserved.cnt  = 0x1
///  reserved[0x0]    [0x0000000001000000-0x0000000001001fff], 0x0000000000002000 bytes flags: 0x0
/// ```
pub struct Dump<'a>(&'a Memblock);

impl Dump<'_> {
    /// One array (Linux `memblock_dump()`).
    fn dump_type(f: &mut fmt::Formatter<'_>, ty: &MemblockType) -> fmt::Result {
        writeln!(f, " {}.cnt  = {:#x}", ty.name, ty.cnt)?;
        for (idx, r) in ty.regions().iter().enumerate() {
            // Regions are never empty, so the inclusive end cannot underflow.
            let last = r.base + (r.size - 1);
            writeln!(f, " {}[{idx:#x}]\t[{:#018x}-{last:#018x}], {:#018x} bytes flags: 0x0", ty.name, r.base, r.size)?;
        }
        Ok(())
    }
}

impl fmt::Display for Dump<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mb = self.0;
        writeln!(f, "MEMBLOCK configuration:")?;
        writeln!(f, " memory size = {:#018x} reserved size = {:#018x}", mb.phys_mem_size(), mb.reserved_size())?;
        Self::dump_type(f, &mb.memory)?;
        Self::dump_type(f, &mb.reserved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::PAGE_SIZE;
    use proptest::prelude::*;

    fn pa(addr: u64) -> PhysAddr {
        PhysAddr::new(addr)
    }

    /// The array as `(base, end)` pairs, easier to read in assertions.
    fn spans(ty: &MemblockType) -> Vec<(u64, u64)> {
        ty.regions().iter().map(|r| (r.base.as_u64(), r.end().as_u64())).collect()
    }

    fn free(mb: &Memblock) -> Vec<(u64, u64)> {
        mb.free_ranges().map(|(s, e)| (s.as_u64(), e.as_u64())).collect()
    }

    /// A memblock holding `memory` and `reserved`, given as `(base, end)`.
    fn memblock(memory: &[(u64, u64)], reserved: &[(u64, u64)]) -> Memblock {
        let mut mb = Memblock::new();
        for &(base, end) in memory {
            mb.add(pa(base), end - base).unwrap();
        }
        for &(base, end) in reserved {
            mb.reserve(pa(base), end - base).unwrap();
        }
        mb
    }

    /// Fills `memory` to capacity with one-page regions two pages apart.
    fn full_memory() -> Memblock {
        let mut mb = Memblock::new();
        for i in 0..INIT_MEMBLOCK_REGIONS as u64 {
            mb.add(pa(i * 2 * PAGE_SIZE), PAGE_SIZE).unwrap();
        }
        assert_eq!(mb.memory.regions().len(), INIT_MEMBLOCK_REGIONS);
        mb
    }

    #[test]
    fn new_memblock_is_empty_with_no_limit() {
        let mb = Memblock::default();
        assert!(mb.memory.regions().is_empty());
        assert!(mb.reserved.regions().is_empty());
        assert_eq!(mb.current_limit(), MEMBLOCK_ALLOC_ANYWHERE);
        assert_eq!(mb.start_of_dram(), None);
        assert_eq!(mb.end_of_dram(), None);
        assert_eq!(free(&mb), []);
        assert_eq!((mb.memory.name(), mb.reserved.name()), ("memory", "reserved"));
    }

    #[test]
    fn add_keeps_disjoint_regions_sorted() {
        let mb = memblock(&[(0x5000, 0x6000), (0x1000, 0x2000), (0x3000, 0x4000)], &[]);
        assert_eq!(spans(&mb.memory), [(0x1000, 0x2000), (0x3000, 0x4000), (0x5000, 0x6000)]);
        assert_eq!(mb.phys_mem_size(), 0x3000);
    }

    #[test]
    fn add_merges_adjacent_regions() {
        let mut mb = memblock(&[(0x2000, 0x3000)], &[]);
        mb.add(pa(0x3000), 0x1000).unwrap();
        assert_eq!(spans(&mb.memory), [(0x2000, 0x4000)]);
        mb.add(pa(0x1000), 0x1000).unwrap();
        assert_eq!(spans(&mb.memory), [(0x1000, 0x4000)]);
    }

    #[test]
    fn add_merges_overlapping_regions_into_one() {
        let mut mb = memblock(&[(0x1000, 0x3000), (0x5000, 0x7000), (0x8000, 0x9000), (0xa000, 0xb000)], &[]);
        // Overlaps the first two, touches the third, leaves the fourth alone.
        mb.add(pa(0x2000), 0x6000).unwrap();
        assert_eq!(spans(&mb.memory), [(0x1000, 0x9000), (0xa000, 0xb000)]);
        assert_eq!(mb.phys_mem_size(), 0x9000);
    }

    #[test]
    fn add_inside_existing_region_is_a_no_op() {
        let mut mb = memblock(&[(0x1000, 0x5000)], &[]);
        mb.add(pa(0x2000), 0x1000).unwrap();
        mb.add(pa(0x1000), 0x4000).unwrap();
        assert_eq!(spans(&mb.memory), [(0x1000, 0x5000)]);
    }

    #[test]
    fn remove_splits_a_region_in_two() {
        let mut mb = memblock(&[(0x1000, 0x9000)], &[]);
        mb.remove(pa(0x4000), 0x2000).unwrap();
        assert_eq!(spans(&mb.memory), [(0x1000, 0x4000), (0x6000, 0x9000)]);
        assert!(mb.is_memory(pa(0x3fff)));
        assert!(!mb.is_memory(pa(0x4000)));
        assert!(!mb.is_memory(pa(0x5fff)));
        assert!(mb.is_memory(pa(0x6000)));
    }

    #[test]
    fn remove_spanning_several_regions_trims_the_ends_and_drops_the_middle() {
        let mut mb = memblock(&[(0x1000, 0x3000), (0x4000, 0x5000), (0x6000, 0x7000), (0x8000, 0xa000)], &[]);
        mb.remove(pa(0x2000), 0x7000).unwrap();
        assert_eq!(spans(&mb.memory), [(0x1000, 0x2000), (0x9000, 0xa000)]);
    }

    #[test]
    fn remove_of_range_without_memory_is_a_no_op() {
        let mut mb = memblock(&[(0x1000, 0x2000), (0x4000, 0x5000)], &[]);
        mb.remove(pa(0x2000), 0x2000).unwrap();
        mb.remove(pa(0x9000), 0x1000).unwrap();
        assert_eq!(spans(&mb.memory), [(0x1000, 0x2000), (0x4000, 0x5000)]);
    }

    #[test]
    fn remove_does_not_touch_reserved() {
        let mut mb = memblock(&[(0x1000, 0x4000)], &[(0x2000, 0x3000)]);
        mb.remove(pa(0x1000), 0x3000).unwrap();
        assert_eq!(spans(&mb.memory), []);
        assert_eq!(spans(&mb.reserved), [(0x2000, 0x3000)]);
    }

    #[test]
    fn reserve_then_free_round_trips() {
        let mut mb = memblock(&[(0x0, 0x10_0000)], &[(0x1000, 0x2000)]);
        mb.reserve(pa(0x8000), 0x4000).unwrap();
        assert_eq!(spans(&mb.reserved), [(0x1000, 0x2000), (0x8000, 0xc000)]);
        assert_eq!(mb.reserved_size(), 0x5000);
        assert!(mb.is_region_reserved(pa(0xb000), 0x1000));

        mb.free(pa(0x8000), 0x4000).unwrap();
        assert_eq!(spans(&mb.reserved), [(0x1000, 0x2000)]);
        assert_eq!(mb.reserved_size(), 0x1000);
        assert!(!mb.is_region_reserved(pa(0x8000), 0x4000));
        assert_eq!(spans(&mb.memory), [(0x0, 0x10_0000)]);
    }

    #[test]
    fn free_of_part_of_a_reservation_keeps_the_rest() {
        let mut mb = memblock(&[], &[(0x1000, 0x5000)]);
        mb.free(pa(0x2000), 0x1000).unwrap();
        assert_eq!(spans(&mb.reserved), [(0x1000, 0x2000), (0x3000, 0x5000)]);
    }

    #[test]
    fn zero_size_operations_are_no_ops() {
        let mut mb = memblock(&[(0x1000, 0x3000)], &[(0x1000, 0x2000)]);
        mb.add(pa(0x8000), 0).unwrap();
        mb.remove(pa(0x2000), 0).unwrap();
        mb.reserve(pa(0x2000), 0).unwrap();
        mb.free(pa(0x1000), 0).unwrap();
        mb.add(pa(u64::MAX), 0).unwrap();
        assert_eq!(spans(&mb.memory), [(0x1000, 0x3000)]);
        assert_eq!(spans(&mb.reserved), [(0x1000, 0x2000)]);
        assert!(!mb.is_region_reserved(pa(0x1800), 0));
    }

    #[test]
    fn ranges_past_the_top_of_the_address_space_are_rejected() {
        let mut mb = Memblock::new();
        let base = pa(u64::MAX - 0xfff);
        let overflow = Err(MemblockError::Overflow { base, size: 0x1001 });
        assert_eq!(mb.add(base, 0x1001), overflow);
        assert_eq!(mb.reserve(base, 0x1001), overflow);
        assert_eq!(mb.remove(base, 0x1001), overflow);
        assert_eq!(mb.free(base, 0x1001), overflow);
        assert_eq!(spans(&mb.memory), []);

        // Ending exactly at u64::MAX still fits.
        mb.add(base, 0xfff).unwrap();
        assert_eq!(mb.end_of_dram(), Some(pa(u64::MAX)));
        assert!(mb.is_memory(pa(u64::MAX - 1)));
        assert!(!mb.is_memory(pa(u64::MAX)));
        mb.reserve(base, 0xfff).unwrap();
        assert!(mb.is_region_reserved(pa(u64::MAX - 1), u64::MAX));
    }

    #[test]
    fn start_and_end_of_dram_span_all_memory() {
        let mb = memblock(&[(0x10_0000, 0x20_0000), (0x1000, 0x9f000)], &[]);
        assert_eq!(mb.start_of_dram(), Some(pa(0x1000)));
        assert_eq!(mb.end_of_dram(), Some(pa(0x20_0000)));
    }

    #[test]
    fn is_region_reserved_detects_any_overlap() {
        let mb = memblock(&[], &[(0x2000, 0x3000)]);
        assert!(!mb.is_region_reserved(pa(0x1000), 0x1000));
        assert!(mb.is_region_reserved(pa(0x1000), 0x1001));
        assert!(mb.is_region_reserved(pa(0x2fff), 1));
        assert!(!mb.is_region_reserved(pa(0x3000), 0x1000));
        assert!(mb.is_region_reserved(pa(0), u64::MAX));
    }

    #[test]
    fn phys_alloc_returns_the_highest_aligned_fit_and_reserves_it() {
        let mut mb = memblock(&[(0x10_0000, 0x20_0000), (0x40_0000, 0x40_3800)], &[]);
        // The top region has room for 0x2000 bytes only at 0x40_1000 once
        // aligned to 0x1000: the highest aligned start with the block inside.
        let a = mb.phys_alloc(0x2000, 0x1000).unwrap();
        assert_eq!(a, pa(0x40_1000));
        assert_eq!(spans(&mb.reserved), [(0x40_1000, 0x40_3000)]);
        // 0x4000 bytes no longer fit up there, so it comes from the region below.
        let b = mb.phys_alloc(0x4000, 0x10_000).unwrap();
        assert_eq!(b, pa(0x1f_0000));
        assert_eq!(spans(&mb.reserved), [(0x1f_0000, 0x1f_4000), (0x40_1000, 0x40_3000)]);
    }

    #[test]
    fn phys_alloc_skips_reserved_ranges() {
        let mut mb = memblock(&[(0x0, 0x10_000)], &[(0xe000, 0x10_000), (0x9000, 0xb000)]);
        // Free: [0, 0x9000) and [0xb000, 0xe000). 0x4000 only fits in the first.
        assert_eq!(mb.phys_alloc(0x4000, PAGE_SIZE), Ok(pa(0x5000)));
        assert_eq!(mb.phys_alloc(0x3000, PAGE_SIZE), Ok(pa(0xb000)));
        // The last allocation touched the reservation above it and merged.
        assert_eq!(spans(&mb.reserved), [(0x5000, 0x10_000)]);
        assert_eq!(free(&mb), [(0x0, 0x5000)]);
    }

    #[test]
    fn phys_alloc_range_stays_inside_start_and_end() {
        let mut mb = memblock(&[(0x0, 0x100_000)], &[]);
        let a = mb.phys_alloc_range(0x2000, PAGE_SIZE, pa(0x10_000), pa(0x20_000)).unwrap();
        assert_eq!(a, pa(0x1e_000));
        // Only [0x10_000, 0x1e_000) is left in the window; 0xe000 bytes fill it.
        let b = mb.phys_alloc_range(0xe000, PAGE_SIZE, pa(0x10_000), pa(0x20_000)).unwrap();
        assert_eq!(b, pa(0x10_000));
        assert_eq!(
            mb.phys_alloc_range(0x1000, PAGE_SIZE, pa(0x10_000), pa(0x20_000)),
            Err(MemblockError::NoSpace { size: 0x1000, align: PAGE_SIZE, limit: pa(0x20_000) })
        );
        // A start above the end finds nothing.
        assert!(matches!(
            mb.phys_alloc_range(0x1000, PAGE_SIZE, pa(0x30_000), pa(0x20_000)),
            Err(MemblockError::NoSpace { .. })
        ));
    }

    #[test]
    fn phys_alloc_respects_current_limit() {
        let mut mb = memblock(&[(0x0, 0x100_000)], &[]);
        mb.set_current_limit(pa(0x8000));
        assert_eq!(mb.current_limit(), pa(0x8000));
        assert_eq!(mb.phys_alloc(0x1000, PAGE_SIZE), Ok(pa(0x7000)));
        // An explicit end above the limit is clamped to it.
        assert_eq!(mb.phys_alloc_range(0x1000, PAGE_SIZE, pa(0), pa(0x80_000)), Ok(pa(0x6000)));
        mb.set_current_limit(MEMBLOCK_ALLOC_ANYWHERE);
        assert_eq!(mb.phys_alloc(0x1000, PAGE_SIZE), Ok(pa(0xff_000)));
    }

    #[test]
    fn failed_allocation_returns_no_space_and_leaves_arrays_unchanged() {
        let mut mb = memblock(&[(0x1000, 0x5000), (0x8000, 0x9000)], &[(0x2000, 0x3000)]);
        let (memory, reserved) = (spans(&mb.memory), spans(&mb.reserved));
        let err = mb.phys_alloc(0x3000, PAGE_SIZE);
        assert_eq!(err, Err(MemblockError::NoSpace { size: 0x3000, align: PAGE_SIZE, limit: MEMBLOCK_ALLOC_ANYWHERE }));
        // Fits by size in [0x3000, 0x5000) but not at this alignment.
        assert!(matches!(mb.phys_alloc(0x1000, 0x4000_0000), Err(MemblockError::NoSpace { .. })));
        assert!(matches!(mb.phys_alloc(0, PAGE_SIZE), Err(MemblockError::NoSpace { size: 0, .. })));
        assert_eq!((spans(&mb.memory), spans(&mb.reserved)), (memory, reserved));
    }

    #[test]
    fn phys_alloc_rejects_zero_and_non_power_of_two_alignment() {
        let mut mb = memblock(&[(0x0, 0x10_000)], &[]);
        assert_eq!(mb.phys_alloc(0x1000, 0), Err(MemblockError::BadAlign { align: 0 }));
        assert_eq!(mb.phys_alloc(0x1000, 0x3000), Err(MemblockError::BadAlign { align: 0x3000 }));
        assert_eq!(spans(&mb.reserved), []);
        // Byte alignment is fine.
        assert_eq!(mb.phys_alloc(3, 1), Ok(pa(0xfffd)));
    }

    #[test]
    fn full_array_returns_too_many_regions_and_stays_unchanged() {
        let mut mb = full_memory();
        let before = spans(&mb.memory);
        let full = Err(MemblockError::TooManyRegions { array: "memory" });

        // A region touching nothing needs a 129th slot.
        assert_eq!(mb.add(pa(0x1000_0000), PAGE_SIZE), full);
        // Splitting a region does too.
        assert_eq!(mb.remove(pa(0x400), 0x800), full);
        assert_eq!(spans(&mb.memory), before);

        // Operations that do not grow the array still work when it is full.
        mb.add(pa(PAGE_SIZE), PAGE_SIZE).unwrap();
        assert_eq!(spans(&mb.memory)[0], (0, 3 * PAGE_SIZE));
        assert_eq!(mb.memory.regions().len(), INIT_MEMBLOCK_REGIONS - 1);
        mb.remove(pa(0), 0x800).unwrap();
        assert_eq!(spans(&mb.memory)[0], (0x800, 3 * PAGE_SIZE));
    }

    #[test]
    fn allocation_with_full_reserved_array_fails_without_reserving() {
        let mut mb = memblock(&[(0x0, 0x1000_0000)], &[]);
        for i in 0..INIT_MEMBLOCK_REGIONS as u64 {
            mb.reserve(pa(i * 2 * PAGE_SIZE), PAGE_SIZE).unwrap();
        }
        let reserved = spans(&mb.reserved);
        assert_eq!(mb.phys_alloc(PAGE_SIZE, PAGE_SIZE), Err(MemblockError::TooManyRegions { array: "reserved" }));
        assert_eq!(spans(&mb.reserved), reserved);
        // A block that merges with an existing reservation needs no new slot.
        assert_eq!(mb.phys_alloc_range(PAGE_SIZE, PAGE_SIZE, pa(0), pa(2 * PAGE_SIZE)), Ok(pa(PAGE_SIZE)));
    }

    #[test]
    fn free_ranges_yield_memory_minus_reserved() {
        let mb = memblock(
            &[(0x0, 0x4000), (0x6000, 0x10_000), (0x20_000, 0x30_000)],
            &[(0x0, 0x1000), (0x3000, 0x7000), (0x8000, 0x9000), (0xf000, 0x21_000), (0x40_000, 0x50_000)],
        );
        assert_eq!(free(&mb), [(0x1000, 0x3000), (0x7000, 0x8000), (0x9000, 0xf000), (0x21_000, 0x30_000)]);
    }

    #[test]
    fn free_ranges_without_reservations_are_the_memory_regions() {
        let mb = memblock(&[(0x1000, 0x2000), (0x3000, 0x5000)], &[]);
        assert_eq!(free(&mb), spans(&mb.memory));
        let all_reserved = memblock(&[(0x1000, 0x2000), (0x3000, 0x5000)], &[(0x0, 0x10_000)]);
        assert_eq!(free(&all_reserved), []);
    }

    #[test]
    fn dump_prints_linux_memblock_configuration() {
        let mb = memblock(&[(0x1000, 0x9f000), (0x10_0000, 0x8000_0000)], &[(0x100_0000, 0x100_2000)]);
        let expected = "MEMBLOCK configuration:\n \
             memory size = 0x000000007ff9e000 reserved size = 0x0000000000002000\n \
             memory.cnt  = 0x2\n \
             memory[0x0]\t[0x0000000000001000-0x000000000009efff], 0x000000000009e000 bytes flags: 0x0\n \
             memory[0x1]\t[0x0000000000100000-0x000000007fffffff], 0x000000007ff00000 bytes flags: 0x0\n \
             reserved.cnt  = 0x1\n \
             reserved[0x0]\t[0x0000000001000000-0x0000000001001fff], 0x0000000000002000 bytes flags: 0x0\n";
        assert_eq!(mb.dump().to_string(), expected);
    }

    #[test]
    fn dump_of_empty_memblock_prints_zero_counts() {
        let expected = "MEMBLOCK configuration:\n \
             memory size = 0x0000000000000000 reserved size = 0x0000000000000000\n \
             memory.cnt  = 0x0\n \
             reserved.cnt  = 0x0\n";
        assert_eq!(Memblock::new().dump().to_string(), expected);
    }

    #[test]
    fn errors_display_the_failing_values() {
        let msgs = [
            MemblockError::TooManyRegions { array: "reserved" }.to_string(),
            MemblockError::Overflow { base: pa(0xffff_ffff_ffff_f000), size: 0x2000 }.to_string(),
            MemblockError::BadAlign { align: 0x3000 }.to_string(),
            MemblockError::NoSpace { size: 0x1000, align: 0x200000, limit: pa(0x8000) }.to_string(),
        ];
        assert_eq!(msgs[0], "memblock reserved array is full (128 regions)");
        assert_eq!(
            msgs[1],
            "range of 0x2000 bytes at 0xfffffffffffff000 runs past the end of the physical address space"
        );
        assert_eq!(msgs[2], "alignment 0x3000 is not a power of two");
        assert_eq!(msgs[3], "no free 0x1000-byte block aligned to 0x200000 below 0x8000");
    }

    // The model: one bit per page of a 128-page window starting at `base`.
    const MODEL_PAGES: u64 = 128;

    #[derive(Clone, Debug)]
    enum Op {
        Add(u64, u64),
        Remove(u64, u64),
        Reserve(u64, u64),
        Free(u64, u64),
        Alloc { pages: u64, align_shift: u32, start: u64, end: u64 },
        SetLimit(Option<u64>),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Ranges stay inside the window: first page below 100, at most 20 pages.
        let range = (0..100u64, 0..=20u64);
        prop_oneof![
            3 => range.clone().prop_map(|(p, n)| Op::Add(p, n)),
            2 => range.clone().prop_map(|(p, n)| Op::Remove(p, n)),
            2 => range.clone().prop_map(|(p, n)| Op::Reserve(p, n)),
            2 => range.prop_map(|(p, n)| Op::Free(p, n)),
            2 => (1..8u64, 0..3u32, 0..=MODEL_PAGES, 0..=MODEL_PAGES)
                .prop_map(|(pages, align_shift, start, end)| Op::Alloc { pages, align_shift, start, end }),
            1 => proptest::option::of(0..=MODEL_PAGES).prop_map(Op::SetLimit),
        ]
    }

    /// Pages `[p, p + n)` as a bitmap.
    fn mask(p: u64, n: u64) -> u128 {
        if n == 0 { 0 } else { (u128::MAX >> (128 - n)) << p }
    }

    /// Maximal runs of set bits as `(base, end)` byte addresses.
    fn runs(bits: u128, base: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut p = 0;
        while p < MODEL_PAGES {
            if (bits >> p) & 1 == 1 {
                let start = p;
                while p < MODEL_PAGES && (bits >> p) & 1 == 1 {
                    p += 1;
                }
                out.push((base + start * PAGE_SIZE, base + p * PAGE_SIZE));
            } else {
                p += 1;
            }
        }
        out
    }

    /// The highest page `p` whose address is aligned, whose block lies in
    /// `[start, end)` and whose pages are all free.
    fn model_alloc(free: u128, base: u64, pages: u64, align: u64, start: u64, end: u64) -> Option<u64> {
        (0..=MODEL_PAGES - pages).rev().map(|p| base + p * PAGE_SIZE).find(|&addr| {
            let p = (addr - base) / PAGE_SIZE;
            addr % align == 0
                && addr >= start
                && addr + pages * PAGE_SIZE <= end
                && free & mask(p, pages) == mask(p, pages)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_operations_match_a_page_bitmap_model(
            // Low memory, above 4 GiB, and the top of the address space (the
            // window ends one page below 2^64 so every page index has an address).
            base in prop_oneof![Just(0u64), Just(1u64 << 32), Just(0u64.wrapping_sub((MODEL_PAGES + 1) * PAGE_SIZE))],
            ops in proptest::collection::vec(op(), 1..40),
        ) {
            let mut mb = Memblock::new();
            let (mut memory, mut reserved) = (0u128, 0u128);
            let mut limit = MEMBLOCK_ALLOC_ANYWHERE;
            let addr = |p: u64| pa(base + p * PAGE_SIZE);

            for op in ops {
                match op {
                    Op::Add(p, n) => {
                        mb.add(addr(p), n * PAGE_SIZE).unwrap();
                        memory |= mask(p, n);
                    }
                    Op::Remove(p, n) => {
                        mb.remove(addr(p), n * PAGE_SIZE).unwrap();
                        memory &= !mask(p, n);
                    }
                    Op::Reserve(p, n) => {
                        mb.reserve(addr(p), n * PAGE_SIZE).unwrap();
                        reserved |= mask(p, n);
                    }
                    Op::Free(p, n) => {
                        mb.free(addr(p), n * PAGE_SIZE).unwrap();
                        reserved &= !mask(p, n);
                    }
                    Op::Alloc { pages, align_shift, start, end } => {
                        let align = PAGE_SIZE << align_shift;
                        let (start, end) = (addr(start), addr(end));
                        let got = mb.phys_alloc_range(pages * PAGE_SIZE, align, start, end);
                        let want = model_alloc(
                            memory & !reserved,
                            base,
                            pages,
                            align,
                            start.as_u64(),
                            end.min(limit).as_u64(),
                        );
                        match want {
                            Some(a) => {
                                prop_assert_eq!(got, Ok(pa(a)));
                                reserved |= mask((a - base) / PAGE_SIZE, pages);
                            }
                            None => prop_assert!(matches!(got, Err(MemblockError::NoSpace { .. })), "{got:?}"),
                        }
                    }
                    Op::SetLimit(p) => {
                        limit = p.map_or(MEMBLOCK_ALLOC_ANYWHERE, addr);
                        mb.set_current_limit(limit);
                    }
                }
                prop_assert_eq!(spans(&mb.memory), runs(memory, base));
                prop_assert_eq!(spans(&mb.reserved), runs(reserved, base));
                prop_assert_eq!(free(&mb), runs(memory & !reserved, base));
                prop_assert_eq!(mb.phys_mem_size(), u64::from(memory.count_ones()) * PAGE_SIZE);
                prop_assert_eq!(mb.reserved_size(), u64::from(reserved.count_ones()) * PAGE_SIZE);
            }
        }
    }
}
