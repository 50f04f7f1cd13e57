//! A map of physical memory, one character per pageblock: what each block
//! holds and how full it is (the console's `kmemmap` command, which
//! `cargo xtask memmap` renders as a picture).
//!
//! Linux has no such file; the nearest are `/proc/pagetypeinfo`'s block
//! counts per migratetype and the page-types tool over
//! `/proc/kpageflags`. The data are the same: each pageblock's migratetype
//! (Linux `get_pageblock_migratetype`), its pages counted as free (on the
//! buddy lists, `PageBuddy`), reserved or in use, and those in use counted
//! again if they are on an LRU list (`PageLRU`, page-types' `KPF_LRU`).
//!
//! The text format, which `xtask/src/memmap.rs` parses:
//!
//! ```text
//! kmemmap: 256 pageblocks of 2048 KiB (order 9), 64 per row
//! legend: u/U unmovable  m/M movable  ...
//! zone DMA      0x0000000000000000-0x0000000000ffffff
//! zone Normal   empty
//! 0x0000000000000000 |RMMMmmmm...| -9520000... -4310000...
//! kmemmap: end
//! ```
//!
//! Each row starts with the physical address of its first block. Between
//! the bars, one character per block: the migratetype's letter (Linux's
//! `show_migration_types` letters, U M E H I) in lower case when every
//! present page of the block is free, upper case when some page is in use
//! or reserved; `R` when every present page is reserved (firmware, the
//! kernel image, the memory map) and none is free; a space when the block
//! has no memory. After the bars, one digit per block: the part in use,
//! `ceil(9 * used / present)` (0 all free, 9 all used), or `-` where the
//! block has no memory or only reserved pages. After a space, one more
//! digit per block: the part on an LRU list, `ceil(9 * lru / present)`,
//! `-` where the fill is; never above the fill digit, as a page on a list
//! is in use.
//!
//! Pages on the per-cpu lists are not on the buddy lists and count as in
//! use: drain them first (`PgData::drain_all_pages`) for an exact map.
//! Pages still in a per-CPU LRU batch are not on a list yet: drain those
//! too (`PgData::lru_add_drain_all`). The LRU count reads `PG_lru` without
//! the list lock (as page-types reads `/proc/kpageflags`), so pages that
//! join or leave a list meanwhile may or may not be counted; a page that
//! has the flag is never free, so the count stays within the block's used
//! pages. The lists hold single pages here, each with its own `PG_lru`.

// Its tests free pages they allocated (an unsafe call); the module
// itself has no reason for unsafe.
#![cfg_attr(not(test), forbid(unsafe_code))]

use core::fmt::{self, Write as _};

use crate::addr::{PAGE_SIZE, Pfn, PhysAddr};
use crate::memblock::Memblock;
use crate::mmzone::{MAX_PAGE_ORDER, MigrateType};
use crate::page::{PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER};
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;

/// The pages of one pageblock, counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockState {
    /// Pages backed by memory (memblock.memory).
    pub present: u64,
    /// Present pages on the buddy free lists.
    pub free: u64,
    /// Present pages marked reserved.
    pub reserved: u64,
    /// Present pages on an LRU list (`PG_lru`), all of them in use.
    pub lru: u64,
    /// The pageblock's migratetype.
    pub migratetype: MigrateType,
}

impl BlockState {
    /// Present pages that are not free (reserved ones included).
    pub fn used(&self) -> u64 {
        self.present - self.free
    }

    /// The block's character in the map.
    pub fn symbol(&self) -> char {
        if self.present == 0 {
            return ' ';
        }
        if self.free == 0 && self.reserved == self.present {
            return 'R';
        }
        let letter = match self.migratetype {
            MigrateType::Unmovable => 'U',
            MigrateType::Movable => 'M',
            MigrateType::Reclaimable => 'E',
            MigrateType::HighAtomic => 'H',
            MigrateType::Isolate => 'I',
        };
        if self.used() == 0 { letter.to_ascii_lowercase() } else { letter }
    }

    /// The block's fill digit: `ceil(9 * used / present)`, or `-`.
    pub fn fill(&self) -> char {
        self.ninths(self.used())
    }

    /// The block's LRU digit: `ceil(9 * lru / present)`, or `-` where the
    /// fill is `-`.
    pub fn lru_fill(&self) -> char {
        self.ninths(self.lru)
    }

    /// `ceil(9 * pages / present)` as a digit, or `-` for a block with no
    /// memory or only reserved pages.
    fn ninths(&self, pages: u64) -> char {
        if self.present == 0 || (self.free == 0 && self.reserved == self.present) {
            return '-';
        }
        let ninths = (9 * pages).div_ceil(self.present);
        char::from_digit(ninths as u32, 10).unwrap_or('9')
    }
}

/// Counts the pages of the pageblock that starts at `start` (pageblock
/// aligned), holding its zone's lock, interrupts off, for the count so the
/// free blocks do not change under it.
pub fn pageblock_state(pgdat: &PgData<'_>, memblock: &Memblock, start: Pfn) -> BlockState {
    let map = pgdat.mem_map();
    let start = start.as_u64() & !(PAGEBLOCK_NR_PAGES - 1);
    let end = (start + PAGEBLOCK_NR_PAGES).min(map.end_pfn().as_u64());
    let first = start.max(map.start_pfn().as_u64());
    let mut state = BlockState { present: 0, free: 0, reserved: 0, lru: 0, migratetype: MigrateType::Unmovable };
    if first >= end {
        return state;
    }
    state.migratetype = map.pageblock_migratetype(Pfn::new(first));
    let zone = pgdat.zones().iter().find(|z| z.present_pages() > 0 && z.spans_pfn(first));
    let count = |state: &mut BlockState| {
        let mut pfn = first;
        // A free block of an order above the pageblock's that began in an
        // earlier block covers this one whole; its head is the only page
        // marked PageBuddy (Linux `find_large_buddy` looks the same way).
        let covered = (PAGEBLOCK_ORDER + 1..=MAX_PAGE_ORDER).any(|order| {
            let head = first & !((1u64 << order) - 1);
            head < first
                && map.pfn_to_page(Pfn::new(head)).is_some_and(|page| {
                    page.test(PageFlags::BUDDY) && page.order() >= order && head + (1 << page.order()) > first
                })
        });
        while pfn < end {
            let present = memblock.is_memory(PhysAddr::new(pfn * PAGE_SIZE));
            let page = map.page(pfn);
            if present {
                state.present += 1;
                if covered {
                    state.free += 1;
                } else if page.test(PageFlags::RESERVED) {
                    state.reserved += 1;
                } else if page.test(PageFlags::LRU) {
                    state.lru += 1;
                }
            }
            if !covered && page.test(PageFlags::BUDDY) {
                let run = (1u64 << page.order()).min(end - pfn);
                state.free += run;
                state.present += run - 1;
                pfn += run;
                continue;
            }
            pfn += 1;
        }
    };
    match zone {
        Some(zone) => pgdat.with_irqs_off(|| {
            let _free = zone.lock.lock();
            count(&mut state);
        }),
        None => count(&mut state),
    }
    state
}

/// The map of all physical memory the memory map covers (see the module
/// documentation for the format). Formatting takes each zone's lock once per
/// pageblock ([`pageblock_state`]).
pub struct Kmemmap<'p, 'a, 'm> {
    /// The page allocator.
    pub pgdat: &'p PgData<'a>,
    /// Which frames are memory.
    pub memblock: &'m Memblock,
    /// Blocks per row, 1 to [`MAX_PER_ROW`] (others are clamped).
    pub per_row: u64,
}

/// Most blocks in one row of the map.
pub const MAX_PER_ROW: u64 = 256;

impl fmt::Display for Kmemmap<'_, '_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_row = self.per_row.clamp(1, MAX_PER_ROW);
        let end_pfn = self.pgdat.mem_map().end_pfn().as_u64();
        let nr_blocks = end_pfn.div_ceil(PAGEBLOCK_NR_PAGES);
        let block_kib = PAGEBLOCK_NR_PAGES * PAGE_SIZE / 1024;
        writeln!(f, "kmemmap: {nr_blocks} pageblocks of {block_kib} KiB (order {PAGEBLOCK_ORDER}), {per_row} per row")?;
        writeln!(
            f,
            "legend: u/U unmovable  m/M movable  e/E reclaimable  h/H highatomic  i/I isolated  \
             (lowercase: every page free, uppercase: some in use)  R reserved  ' ' no memory  \
             digits: ninths of the pages in use, then ninths on LRU lists"
        )?;
        for zone in self.pgdat.zones() {
            if zone.present_pages() == 0 {
                writeln!(f, "zone {:<8} empty", zone.name())?;
            } else {
                let start = zone.start_pfn() * PAGE_SIZE;
                let end = (zone.start_pfn() + zone.spanned_pages()) * PAGE_SIZE - 1;
                writeln!(f, "zone {:<8} {start:#018x}-{end:#018x}", zone.name())?;
            }
        }
        let mut fills = [b'-'; MAX_PER_ROW as usize];
        let mut lru_fills = [b'-'; MAX_PER_ROW as usize];
        let mut block = 0;
        while block < nr_blocks {
            let row_end = (block + per_row).min(nr_blocks);
            write!(f, "{:#018x} |", block * PAGEBLOCK_NR_PAGES * PAGE_SIZE)?;
            for (i, b) in (block..row_end).enumerate() {
                let state = pageblock_state(self.pgdat, self.memblock, Pfn::new(b * PAGEBLOCK_NR_PAGES));
                f.write_char(state.symbol())?;
                fills[i] = state.fill() as u8;
                lru_fills[i] = state.lru_fill() as u8;
            }
            let n = (row_end - block) as usize;
            let fills = core::str::from_utf8(&fills[..n]).map_err(|_| fmt::Error)?;
            let lru_fills = core::str::from_utf8(&lru_fills[..n]).map_err(|_| fmt::Error)?;
            writeln!(f, "| {fills} {lru_fills}")?;
            block = row_end;
        }
        writeln!(f, "kmemmap: end")
    }
}

#[cfg(test)]
mod tests;
