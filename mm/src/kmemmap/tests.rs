//! Host tests of the pageblock map on simulated machines.

use super::*;
use crate::gfp::{GFP_HIGHUSER_MOVABLE, GFP_KERNEL};
use crate::sim::Sim;

const MIB: u64 = 1 << 20;

/// The map's rows (between the header lines and the end line).
fn rows(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("0x")).collect()
}

#[test]
fn a_fresh_machine_is_free_movable_memory_with_its_holes_and_reservations() {
    // Memory 1..17 MiB of an 18 MiB map; the page at 16 MiB is reserved.
    let sim = Sim::new(0, 18 * MIB, &[(MIB, 16 * MIB)], &[(16 * MIB, 4096)]);
    let pgdat = sim.pgdat(1);
    let text = format!("{}", Kmemmap { pgdat: &pgdat, memblock: &sim.memblock, per_row: 4 });
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "kmemmap: 9 pageblocks of 2048 KiB (order 9), 4 per row");
    assert!(lines[1].starts_with("legend: u/U unmovable"));
    assert_eq!(lines[2], "zone DMA      0x0000000000100000-0x0000000000ffffff");
    assert_eq!(lines[3], "zone DMA32    0x0000000001000000-0x00000000010fffff");
    assert_eq!(lines[4], "zone Normal   empty");
    // Block 8 (16..18 MiB) has 256 present pages, one reserved: in use,
    // ceil(9 * 1 / 256) = 1. Blocks 2..7 lie inside order-10 free blocks
    // whose head is in the block before.
    assert_eq!(
        rows(&text),
        ["0x0000000000000000 |mmmm| 0000 0000", "0x0000000000800000 |mmmm| 0000 0000", "0x0000000001000000 |M| 1 0"]
    );
    assert_eq!(text.lines().last(), Some("kmemmap: end"));
    let state = pageblock_state(&pgdat, &sim.memblock, Pfn::new(0));
    assert_eq!(state, BlockState { present: 256, free: 256, reserved: 0, lru: 0, migratetype: MigrateType::Movable });
}

#[test]
fn allocations_show_their_migratetype_and_fill() {
    let sim = Sim::flat(16 * MIB);
    let pgdat = sim.pgdat(1);
    let block = pgdat.alloc_pages(GFP_HIGHUSER_MOVABLE, PAGEBLOCK_ORDER).unwrap();
    let state = pageblock_state(&pgdat, &sim.memblock, block);
    assert_eq!((state.symbol(), state.fill(), state.free), ('M', '9', 0));
    // One unmovable page steals a movable block for the unmovable lists.
    let page = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    pgdat.drain_all_pages();
    let state = pageblock_state(&pgdat, &sim.memblock, page);
    assert_eq!(state.symbol(), 'U');
    assert_eq!(state.fill(), '1');
    assert_eq!(state.used(), 1);
    // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
    unsafe { pgdat.free_pages(page, 0) }.unwrap();
    // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
    unsafe { pgdat.free_pages(block, PAGEBLOCK_ORDER) }.unwrap();
    pgdat.drain_all_pages();
    let state = pageblock_state(&pgdat, &sim.memblock, page);
    assert_eq!((state.symbol(), state.fill()), ('u', '0'), "the stolen block stays unmovable once free");
    let state = pageblock_state(&pgdat, &sim.memblock, block);
    assert_eq!((state.symbol(), state.fill()), ('m', '0'));
}

#[test]
fn free_pages_of_the_map_add_up_to_the_allocators_count() {
    let sim = Sim::new(0, 64 * MIB, &[(0, 40 * MIB), (44 * MIB, 20 * MIB)], &[(0, 3 * MIB), (50 * MIB, 12345)]);
    let pgdat = sim.pgdat(2);
    let held: Vec<_> = (0..300).filter_map(|i| pgdat.alloc_pages(GFP_KERNEL, i % 4)).collect();
    pgdat.drain_all_pages();
    let end = pgdat.mem_map().end_pfn().as_u64();
    let (mut free, mut present) = (0, 0);
    for block in (0..end).step_by(PAGEBLOCK_NR_PAGES as usize) {
        let state = pageblock_state(&pgdat, &sim.memblock, Pfn::new(block));
        free += state.free;
        present += state.present;
    }
    assert_eq!(free, pgdat.nr_free_pages());
    assert_eq!(present, 60 * MIB / PAGE_SIZE);
    // 40..44 MiB is a hole: two blocks of spaces.
    let text = format!("{}", Kmemmap { pgdat: &pgdat, memblock: &sim.memblock, per_row: 32 });
    let row = &rows(&text)[0][20..52];
    assert_eq!(row.find(' '), Some(20));
    assert_eq!(row.rfind(' '), Some(21));
    assert!(row.starts_with('R'), "0..2 MiB is reserved: {row}");
    // 300 unmovable allocations steal some blocks; the rest stay movable.
    assert!(row.contains('U') && row.contains('m'), "{row}");
    for (i, pfn) in held.into_iter().enumerate() {
        // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
        unsafe { pgdat.free_pages(pfn, i as u32 % 4) }.unwrap();
    }
}

#[test]
fn a_wholly_reserved_block_is_r_and_rows_are_clamped() {
    let sim = Sim::new(0, 4 * MIB, &[(0, 4 * MIB)], &[(0, 2 * MIB)]);
    let pgdat = sim.pgdat(1);
    let state = pageblock_state(&pgdat, &sim.memblock, Pfn::new(0));
    assert_eq!((state.symbol(), state.fill(), state.lru_fill(), state.reserved), ('R', '-', '-', 512));
    let text = format!("{}", Kmemmap { pgdat: &pgdat, memblock: &sim.memblock, per_row: 0 });
    assert_eq!(rows(&text), ["0x0000000000000000 |R| - -", "0x0000000000200000 |m| 0 0"]);
}

#[test]
fn a_map_starting_off_the_largest_order_alignment_counts_every_free_page() {
    // The memory map starts at 2 MiB: pageblock aligned, not aligned to the
    // largest buddy order (4 MiB), so the look-back for a covering free
    // block must stay inside the map.
    let sim = Sim::new(2 * MIB, 18 * MIB, &[(2 * MIB, 16 * MIB)], &[]);
    let pgdat = sim.pgdat(1);
    let (start, end) = (pgdat.mem_map().start_pfn().as_u64(), pgdat.mem_map().end_pfn().as_u64());
    let free: u64 = (start..end)
        .step_by(PAGEBLOCK_NR_PAGES as usize)
        .map(|pfn| pageblock_state(&pgdat, &sim.memblock, Pfn::new(pfn)).free)
        .sum();
    assert_eq!(free, pgdat.nr_free_pages());
    assert_eq!(free, 16 * MIB / PAGE_SIZE);
    let text = format!("{}", Kmemmap { pgdat: &pgdat, memblock: &sim.memblock, per_row: 16 });
    // Block 0 (below the map) has no memory; the rest is free and movable.
    assert_eq!(rows(&text), ["0x0000000000000000 | mmmmmmmm| -00000000 -00000000"]);
}

#[test]
fn pages_on_the_lru_lists_show_in_the_second_digits() {
    let sim = Sim::flat(16 * MIB);
    let pgdat = sim.pgdat(1);
    // 300 single pages split from one free pageblock; 100 of them join
    // the LRU, the rest stay in use off the lists.
    let pfns: Vec<Pfn> = (0..300).map(|_| pgdat.alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap()).collect();
    let block = pfns[0].as_u64() / PAGEBLOCK_NR_PAGES;
    assert!(pfns.iter().all(|pfn| pfn.as_u64() / PAGEBLOCK_NR_PAGES == block), "one pageblock");
    let (on_lru, off_lru) = pfns.split_at(100);
    for &pfn in on_lru {
        pgdat.folio_add_lru(pfn);
    }
    pgdat.lru_add_drain_all();
    pgdat.drain_all_pages();
    let state = pageblock_state(&pgdat, &sim.memblock, pfns[0]);
    assert_eq!((state.used(), state.lru), (300, 100));
    // ceil(9 * 300 / 512) = 6 in use, ceil(9 * 100 / 512) = 2 on the lists.
    assert_eq!((state.symbol(), state.fill(), state.lru_fill()), ('M', '6', '2'));
    let text = format!("{}", Kmemmap { pgdat: &pgdat, memblock: &sim.memblock, per_row: 8 });
    let row = rows(&text)[0];
    let (fills, lru_fills) = row.rsplit_once("| ").unwrap().1.split_once(' ').unwrap();
    let digit = |digits: &str| digits.chars().nth(block as usize).unwrap();
    assert_eq!((digit(fills), digit(lru_fills)), ('6', '2'), "{row}");
    assert_eq!(lru_fills.chars().filter(|&c| c != '0').count(), 1, "no other block has LRU pages: {row}");
    for &pfn in on_lru {
        // SAFETY: the test's allocation reference, the page's last; the LRU batch dropped its own.
        unsafe { pgdat.put_page(pfn) }.unwrap();
    }
    for &pfn in off_lru {
        // SAFETY: the test allocated the page and never mapped it or made a pointer into it.
        unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
    }
    pgdat.drain_all_pages();
    let state = pageblock_state(&pgdat, &sim.memblock, pfns[0]);
    assert_eq!((state.symbol(), state.fill(), state.lru_fill(), state.lru), ('m', '0', '0', 0));
}
