use std::ops::ControlFlow;

use proptest::prelude::*;

use super::*;
use crate::arch::x86_64::{X86_ACCESSED, X86_DIRTY, X86_GLOBAL, X86_PRESENT, X86_RW, X86_USER};
use crate::gfp::GFP_KERNEL;
use crate::pagewalk::{PageWalkOps, walk_page_range};
use crate::ptdump::{AddrMarker, check_wx, ptdump};
use crate::sim::{Sim, SimTlb, free_pages_drained};
use crate::vmstat::NodeStatItem;

const KB: u64 = 1 << 10;
const MB: u64 = 1 << 20;
const GB: u64 = 1 << 30;
/// A kernel-half base aligned to 512 GiB (a whole pgd entry).
const BASE: u64 = 0xffff_c900_0000_0000;
const FMT: X86PteFormat = X86PteFormat::new(true);

fn va(addr: u64) -> VirtAddr {
    VirtAddr::new(addr).unwrap()
}

/// Every leaf in `[start, end)`: (start, end, phys of start, prot, size).
fn leaves(pt: &PageTable<'_, X86PteFormat>, start: u64, end: u64) -> Vec<(u64, u64, u64, PgProt, PageSize)> {
    struct Collect(Vec<(u64, u64, u64, PgProt, PageSize)>);
    impl PageWalkOps for Collect {
        fn leaf(&mut self, start: u64, end: u64, leaf: Leaf) -> ControlFlow<()> {
            self.0.push((start, end, leaf.phys.as_u64(), leaf.prot, leaf.size));
            ControlFlow::Continue(())
        }
    }
    let mut c = Collect(Vec::new());
    let _ = walk_page_range(pt, va(start), end, &mut c);
    c.0
}

fn finish(gather: TlbGather, tlb: &SimTlb, pgdat: &PgData<'_>) {
    gather.finish(tlb, pgdat);
}

/// `nr_page_table_pages`.
fn counted_tables(pgdat: &PgData<'_>) -> u64 {
    pgdat.node_page_state(NodeStatItem::NrPagetable)
}

#[test]
fn x86_entries_round_trip_every_protection_and_size() {
    for nx in [true, false] {
        let fmt = X86PteFormat::new(nx);
        for bits in 0..=PgProt::all().bits() {
            let prot = PgProt::from_bits_truncate(bits);
            for size in [PageSize::Size4K, PageSize::Size2M, PageSize::Size1G] {
                // PROTNONE lives in the global bit of a 4 KiB pte only.
                if prot.contains(PgProt::PROTNONE) && (size != PageSize::Size4K || prot.contains(PgProt::GLOBAL)) {
                    continue;
                }
                let phys = PhysAddr::new(0x12_4000_0000);
                let raw = fmt.encode_leaf(Leaf { phys, prot, size });
                assert_eq!(raw & 1 == 0, prot.contains(PgProt::PROTNONE), "a PROTNONE leaf is not present to the CPU");
                let expect = if nx { prot } else { prot | PgProt::EXEC };
                assert_eq!(fmt.decode(raw, size.level()), Entry::Leaf(Leaf { phys, prot: expect, size }));
                assert_eq!(raw >> 63, u64::from(nx && !prot.contains(PgProt::EXEC)), "NX bit only with NX support");
            }
        }
        let table = fmt.encode_table(PhysAddr::new(0x5000), false);
        assert_eq!(fmt.decode(table, Level::Pmd), Entry::Table(PhysAddr::new(0x5000)));
        assert_eq!(fmt.decode(table, Level::Pgd), Entry::Table(PhysAddr::new(0x5000)));
        assert_eq!(table & X86_USER, 0);
        assert_ne!(fmt.encode_table(PhysAddr::new(0x5000), true) & X86_USER, 0);
        assert_eq!(fmt.decode(0, Level::Pte), Entry::None, "zero is none");
        assert_eq!(fmt.decode(X86_ACCESSED | X86_DIRTY, Level::Pte), Entry::None, "pte_none ignores A and D");
        assert_eq!(fmt.decode(0x5000 | X86_RW, Level::Pmd), Entry::None, "a non-present table entry is none");
        for ty in [
            0,
            5,
            crate::swapops::SWP_MIGRATION_READ,
            crate::swapops::SWP_MIGRATION_WRITE,
            crate::swapops::SWP_PTE_MARKER,
        ] {
            for offset in [0, 1, 0x12345, (1 << 50) - 2] {
                let entry = SwpEntry::new(ty, offset);
                let raw = fmt.encode_swp(entry);
                assert_eq!(raw & (X86_PRESENT | X86_GLOBAL), 0, "a swap pte is neither present nor protnone");
                assert_eq!(fmt.decode(raw, Level::Pte), Entry::Swap(entry), "type {ty} offset {offset:#x}");
            }
        }
    }
    // The exact bits of Linux's __PAGE_KERNEL at a 4 KiB pte: P RW A D G NX.
    let raw = FMT.encode_leaf(Leaf { phys: PhysAddr::new(0x1000), prot: PAGE_KERNEL, size: PageSize::Size4K });
    assert_eq!(raw, 0x8000_0000_0000_1163);
}

#[test]
fn map_picks_the_largest_page_alignment_allows() {
    let sim = Sim::flat(32 * MB);
    let pgdat = sim.pgdat(1);
    let tlb = SimTlb::default();
    let pt = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
    // 4K head, 2M run, 1G, 2M run, 4K tail: virt and phys share alignment.
    let start = BASE + GB - 2 * MB - 8 * KB;
    let size = 8 * KB + 2 * MB + GB + 2 * MB + 12 * KB;
    let phys = 0x40_0000_0000 + GB - 2 * MB - 8 * KB;
    let mut gather = TlbGather::new();
    pt.map(va(start), PhysAddr::new(phys), size, PAGE_KERNEL, PageSize::Size1G, &mut gather).unwrap();
    assert_eq!(gather.range(), None, "mapping into empty entries needs no flush");
    finish(gather, &tlb, &pgdat);
    let sizes: Vec<PageSize> = leaves(&pt, start, start + size).iter().map(|l| l.4).collect();
    let count = |s| sizes.iter().filter(|&&x| x == s).count();
    assert_eq!((count(PageSize::Size4K), count(PageSize::Size2M), count(PageSize::Size1G)), (5, 2, 1));
    for probe in [start, start + 8 * KB, start + 3 * MB, start + size - 1] {
        let leaf = pt.translate(va(probe)).unwrap();
        assert_eq!(leaf.phys.as_u64(), phys + (probe - start));
        assert_eq!(leaf.prot, PAGE_KERNEL);
    }
    assert_eq!(pt.translate(va(start - 1)), None);
    assert_eq!(pt.translate(va(start + size)), None);

    // A 4K limit gives only ptes; misaligned phys gives only ptes too.
    let pt4 = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
    let mut gather = TlbGather::new();
    pt4.map(va(BASE), PhysAddr::new(0), 4 * MB, PAGE_KERNEL, PageSize::Size4K, &mut gather).unwrap();
    pt4.map(va(BASE + GB), PhysAddr::new(4 * KB), 4 * MB, PAGE_KERNEL, PageSize::Size1G, &mut gather).unwrap();
    finish(gather, &tlb, &pgdat);
    assert!(leaves(&pt4, BASE, BASE + 2 * GB).iter().all(|l| l.4 == PageSize::Size4K));
    assert_eq!(leaves(&pt4, BASE, BASE + 2 * GB).len(), 2048);
}

#[test]
fn map_over_a_mapping_fails_and_undoes_only_its_own_work() {
    let sim = Sim::flat(32 * MB);
    let pgdat = sim.pgdat(1);
    let tlb = SimTlb::default();
    let pt = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
    let mut gather = TlbGather::new();
    pt.map(va(BASE + 64 * KB), PhysAddr::new(0x9000_0000), 4 * KB, PAGE_KERNEL_RO, PageSize::Size4K, &mut gather)
        .unwrap();
    let err = pt.map(va(BASE), PhysAddr::new(0x1000_0000), 128 * KB, PAGE_KERNEL, PageSize::Size4K, &mut gather);
    assert_eq!(err, Err(PgtableError::AlreadyMapped(va(BASE + 64 * KB))));
    finish(gather, &tlb, &pgdat);
    assert_eq!(tlb.take(), vec![(BASE, 64 * KB)], "the undone pages are flushed");
    assert_eq!(
        leaves(&pt, BASE, BASE + 128 * KB),
        vec![(BASE + 64 * KB, BASE + 68 * KB, 0x9000_0000, PAGE_KERNEL_RO, PageSize::Size4K)]
    );
    // A huge leaf in the way is reported too.
    let mut gather = TlbGather::new();
    pt.map(va(BASE + 2 * MB), PhysAddr::new(0), 2 * MB, PAGE_KERNEL, PageSize::Size2M, &mut gather).unwrap();
    let err = pt.map(va(BASE + 3 * MB), PhysAddr::new(0), 4 * KB, PAGE_KERNEL, PageSize::Size4K, &mut gather);
    assert_eq!(err, Err(PgtableError::AlreadyMapped(va(BASE + 3 * MB))));
    finish(gather, &tlb, &pgdat);
}

#[test]
fn bad_ranges_are_refused() {
    let sim = Sim::flat(16 * MB);
    let pgdat = sim.pgdat(1);
    let pt = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
    let mut g = TlbGather::new();
    let p = PhysAddr::new(0);
    assert_eq!(pt.map(va(BASE + 1), p, 4 * KB, PAGE_KERNEL, PageSize::Size4K, &mut g), Err(PgtableError::BadRange));
    assert_eq!(
        pt.map(va(BASE), PhysAddr::new(8), 4 * KB, PAGE_KERNEL, PageSize::Size4K, &mut g),
        Err(PgtableError::BadRange)
    );
    assert_eq!(pt.map(va(BASE), p, 0, PAGE_KERNEL, PageSize::Size4K, &mut g), Err(PgtableError::BadRange));
    assert_eq!(pt.map(va(BASE), p, 100, PAGE_KERNEL, PageSize::Size4K, &mut g), Err(PgtableError::BadRange));
    // Crossing from the user half into the hole.
    assert_eq!(
        pt.map(va(0x7fff_ffff_f000), p, 8 * KB, PAGE_KERNEL, PageSize::Size4K, &mut g),
        Err(PgtableError::BadRange)
    );
    // Wrapping past the top of the address space.
    assert_eq!(pt.unmap(va(0xffff_ffff_ffff_f000), 8 * KB, FreeTables::No, &mut g), Err(PgtableError::BadRange));
    assert_eq!(pt.nr_tables(), 1, "nothing was allocated");
    assert_eq!(g.range(), None);
}

#[test]
fn map_pages_maps_scattered_frames() {
    let sim = Sim::flat(16 * MB);
    let pgdat = sim.pgdat(1);
    let tlb = SimTlb::default();
    let pt = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
    let frames: Vec<Pfn> = [7, 3, 900, 12, 12].iter().map(|&n| Pfn::new(n)).collect();
    let mut gather = TlbGather::new();
    pt.map_pages(va(BASE + 2 * MB - 8 * KB), &frames, PAGE_KERNEL, &mut gather).unwrap();
    finish(gather, &tlb, &pgdat);
    for (i, pfn) in frames.iter().enumerate() {
        let leaf = pt.translate(va(BASE + 2 * MB - 8 * KB + i as u64 * 4 * KB + 5)).unwrap();
        assert_eq!(leaf.phys, PhysAddr::new(pfn.phys().as_u64() + 5));
    }
    // Two pte tables (the range crosses a 2 MiB boundary), a pmd, a pud, the root.
    assert_eq!(pt.nr_tables(), 5);
}

#[test]
fn unmapping_inside_a_huge_leaf_splits_it_down_to_4k() {
    let sim = Sim::flat(32 * MB);
    let pgdat = sim.pgdat(1);
    let tlb = SimTlb::default();
    let pt = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
    let mut gather = TlbGather::new();
    pt.map(va(BASE), PhysAddr::new(4 * GB), GB, PAGE_KERNEL, PageSize::Size1G, &mut gather).unwrap();
    finish(gather, &tlb, &pgdat);
    let hole = BASE + 5 * MB + 4 * KB;
    let mut gather = TlbGather::new();
    assert_eq!(pt.unmap(va(hole), 8 * KB, FreeTables::No, &mut gather), Ok(8 * KB));
    finish(gather, &tlb, &pgdat);
    // The split flushes the whole 1 GiB leaf it replaced.
    assert_eq!(tlb.take(), vec![(BASE, GB)]);
    let l = leaves(&pt, BASE, BASE + GB);
    assert_eq!(l.iter().filter(|x| x.4 == PageSize::Size2M).count(), 511);
    assert_eq!(l.iter().filter(|x| x.4 == PageSize::Size4K).count(), 510);
    assert_eq!(counted_tables(&pgdat), pt.nr_tables(), "tables made by splits are counted");
    assert_eq!(pt.translate(va(hole)), None);
    assert_eq!(pt.translate(va(hole + 4 * KB + 17)), None);
    for probe in [BASE, hole - 1, hole + 8 * KB, BASE + GB - 1] {
        let leaf = pt.translate(va(probe)).unwrap();
        assert_eq!(leaf.phys.as_u64(), 4 * GB + (probe - BASE), "{probe:#x}");
        assert_eq!(leaf.prot, PAGE_KERNEL);
    }
}

#[test]
fn protect_changes_only_the_range_and_flushes_it() {
    let sim = Sim::flat(32 * MB);
    let pgdat = sim.pgdat(1);
    let tlb = SimTlb::default();
    let pt = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
    let mut gather = TlbGather::new();
    pt.map(va(BASE), PhysAddr::new(0), 4 * MB, PAGE_KERNEL, PageSize::Size2M, &mut gather).unwrap();
    finish(gather, &tlb, &pgdat);
    // Whole 2 MiB leaf: rewritten in place, no split.
    let mut gather = TlbGather::new();
    assert_eq!(pt.protect(va(BASE), 2 * MB, PAGE_KERNEL_RO, &mut gather), Ok(2 * MB));
    finish(gather, &tlb, &pgdat);
    assert_eq!(tlb.take(), vec![(BASE, 2 * MB)]);
    assert_eq!(pt.translate(va(BASE + 5)).unwrap().size, PageSize::Size2M);
    // One page of the second leaf: split, one pte changed.
    let mut gather = TlbGather::new();
    assert_eq!(pt.protect(va(BASE + 3 * MB), 4 * KB, PAGE_KERNEL_ROX, &mut gather), Ok(4 * KB));
    finish(gather, &tlb, &pgdat);
    assert_eq!(tlb.take(), vec![(BASE + 2 * MB, 2 * MB)]);
    let changed = pt.translate(va(BASE + 3 * MB)).unwrap();
    assert_eq!((changed.prot, changed.size), (PAGE_KERNEL_ROX, PageSize::Size4K));
    assert_eq!(pt.translate(va(BASE + 3 * MB + 4 * KB)).unwrap().prot, PAGE_KERNEL);
    // Same protection again: nothing to flush.
    let mut gather = TlbGather::new();
    assert_eq!(pt.protect(va(BASE), 4 * MB, PAGE_KERNEL_RO, &mut gather), Ok(4 * MB));
    assert_eq!(pt.protect(va(BASE), 4 * MB, PAGE_KERNEL_RO, &mut gather), Ok(4 * MB));
    finish(gather, &tlb, &pgdat);
    assert_eq!(tlb.take().len(), 1);
    // Holes are skipped and not counted.
    let mut gather = TlbGather::new();
    assert_eq!(pt.protect(va(BASE + 2 * GB), 4 * MB, PAGE_KERNEL, &mut gather), Ok(0));
    finish(gather, &tlb, &pgdat);
}

#[test]
fn freeing_tables_returns_every_page_after_the_flush() {
    let sim = Sim::flat(32 * MB);
    let pgdat = sim.pgdat(1);
    let tlb = SimTlb::default();
    let free_before = free_pages_drained(&pgdat);
    {
        let pt = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
        let mut gather = TlbGather::new();
        pt.map(va(BASE + 4 * KB), PhysAddr::new(4 * KB), 3 * GB, PAGE_KERNEL, PageSize::Size4K, &mut gather).unwrap();
        finish(gather, &tlb, &pgdat);
        // 3 GiB of ptes: 1537 pte tables, 4 pmd tables, 1 pud, 1 root.
        assert_eq!(pt.nr_tables(), 1537 + 4 + 2);
        assert_eq!(counted_tables(&pgdat), 1537 + 4 + 2);
        let mut gather = TlbGather::new();
        assert_eq!(pt.unmap(va(BASE), 4 * GB, FreeTables::Yes, &mut gather), Ok(3 * GB));
        assert_eq!(gather.nr_tables(), 1537 + 4);
        assert_eq!(free_pages_drained(&pgdat), free_before - pt.nr_tables() - 1541, "freed only after the flush");
        assert_eq!(counted_tables(&pgdat), 1537 + 4 + 2, "tables waiting for the flush still count");
        finish(gather, &tlb, &pgdat);
        assert_eq!(tlb.take(), vec![(BASE, 4 * GB)]);
        assert_eq!(pt.nr_tables(), 2, "the pud table stays (kernel pgd entries never change)");
        assert_eq!(counted_tables(&pgdat), 2);
        // FreeTables::No keeps them.
        let mut gather = TlbGather::new();
        pt.map(va(BASE), PhysAddr::new(0), 4 * KB, PAGE_KERNEL, PageSize::Size4K, &mut gather).unwrap();
        pt.unmap(va(BASE), 4 * KB, FreeTables::No, &mut gather).unwrap();
        finish(gather, &tlb, &pgdat);
        assert_eq!(pt.nr_tables(), 4);
    }
    assert_eq!(free_pages_drained(&pgdat), free_before, "dropping the tree frees its tables");
    assert_eq!(counted_tables(&pgdat), 0);
}

#[test]
fn running_out_of_memory_for_tables_fails_cleanly() {
    let sim = Sim::flat(16 * MB);
    let pgdat = sim.pgdat(1);
    let tlb = SimTlb::default();
    let pt = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
    let mut hoard = Vec::new();
    while let Some(pfn) = pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0) {
        hoard.push(pfn);
    }
    // Three tables are left: enough for pud, pmd and one pte table.
    for pfn in hoard.drain(..3) {
        // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
        unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
    }
    let mut gather = TlbGather::new();
    let err = pt.map(va(BASE + 2 * MB - 4 * KB), PhysAddr::new(0), 8 * KB, PAGE_KERNEL, PageSize::Size4K, &mut gather);
    assert_eq!(err, Err(PgtableError::NoMemory));
    finish(gather, &tlb, &pgdat);
    assert_eq!(pt.translate(va(BASE + 2 * MB - 4 * KB)), None, "the page mapped before the failure was undone");
    // A split that cannot get its table leaves the huge leaf intact.
    for pfn in hoard.drain(..) {
        // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
        unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
    }
    let mut gather = TlbGather::new();
    pt.map(va(BASE + 4 * MB), PhysAddr::new(0), 2 * MB, PAGE_KERNEL, PageSize::Size2M, &mut gather).unwrap();
    finish(gather, &tlb, &pgdat);
    while let Some(pfn) = pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0) {
        hoard.push(pfn);
    }
    let mut gather = TlbGather::new();
    assert_eq!(pt.unmap(va(BASE + 4 * MB), 4 * KB, FreeTables::No, &mut gather), Err(PgtableError::NoMemory));
    finish(gather, &tlb, &pgdat);
    assert_eq!(pt.translate(va(BASE + 4 * MB)).unwrap().size, PageSize::Size2M);
    for pfn in hoard {
        // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
        unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
    }
}

#[test]
fn ptdump_merges_runs_and_check_wx_counts_writable_text() {
    let sim = Sim::flat(16 * MB);
    let pgdat = sim.pgdat(1);
    let tlb = SimTlb::default();
    let pt = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
    let mut gather = TlbGather::new();
    pt.map(va(BASE), PhysAddr::new(0), 2 * GB, PAGE_KERNEL, PageSize::Size1G, &mut gather).unwrap();
    let text = 0xffff_ffff_8000_0000;
    pt.map(va(text), PhysAddr::new(0x20_0000), 8 * KB, PAGE_KERNEL_ROX, PageSize::Size4K, &mut gather).unwrap();
    pt.map(va(text + 8 * KB), PhysAddr::new(0x20_2000), 4 * KB, PAGE_KERNEL_RO, PageSize::Size4K, &mut gather).unwrap();
    finish(gather, &tlb, &pgdat);
    let markers =
        [AddrMarker { start: BASE, name: "vmalloc() area" }, AddrMarker { start: text, name: "High Kernel Mapping" }];
    let mut out = String::new();
    ptdump(&pt, va(0xffff_8000_0000_0000), u64::MAX, &markers, &mut out).unwrap();
    let expected = "\
---[ vmalloc() area ]---
0xffffc90000000000-0xffffc90080000000           2G     RW         PSE     GLB NX pud
---[ High Kernel Mapping ]---
0xffffffff80000000-0xffffffff80002000           8K     ro                 GLB x  pte
0xffffffff80002000-0xffffffff80003000           4K     ro                 GLB NX pte
";
    assert_eq!(out, expected);
    let report = check_wx(&pt, va(0xffff_8000_0000_0000), u64::MAX);
    assert_eq!(report.wx_pages, 0);
    assert_eq!(report.checked_pages, 2 * GB / (4 * KB) + 3);
    let mut gather = TlbGather::new();
    pt.protect(va(text + 4 * KB), 4 * KB, PAGE_KERNEL | PgProt::EXEC, &mut gather).unwrap();
    finish(gather, &tlb, &pgdat);
    let report = check_wx(&pt, va(0xffff_8000_0000_0000), u64::MAX);
    assert_eq!((report.wx_pages, report.first), (1, Some(text + 4 * KB)));
}

/// Operations of the property test, on page indices inside the window.
#[derive(Clone, Debug)]
enum Op {
    Map { page: u64, pages: u64, phys_page: u64, max: PageSize, ro: bool },
    Unmap { page: u64, pages: u64, free: bool },
    Protect { page: u64, pages: u64, ro: bool },
}

const WINDOW_PAGES: u64 = 2 * GB / (4 * KB);

fn op() -> impl Strategy<Value = Op> {
    // Sizes and positions biased to 2 MiB / 1 GiB boundaries so huge leaves
    // and splits happen often.
    let pos = prop_oneof![0..WINDOW_PAGES, (0..8u64).prop_map(|n| n * 512), (0..2u64).prop_map(|n| n * 262_144)];
    let len = prop_oneof![4 => 1..2048u64, 2 => (1..4u64).prop_map(|n| n * 512), 1 => Just(262_144u64)];
    let max = prop_oneof![Just(PageSize::Size4K), Just(PageSize::Size2M), Just(PageSize::Size1G)];
    prop_oneof![
        (pos.clone(), len.clone(), 0..4u64, max, any::<bool>()).prop_map(|(page, pages, phys_gb, max, ro)| Op::Map {
            page,
            pages,
            phys_page: phys_gb * 262_144 + page % 262_144,
            max,
            ro
        }),
        (pos.clone(), len.clone(), any::<bool>()).prop_map(|(page, pages, free)| Op::Unmap { page, pages, free }),
        (pos, len, any::<bool>()).prop_map(|(page, pages, ro)| Op::Protect { page, pages, ro }),
    ]
}

/// A run of pages `[start, end)` mapped to `phys..` (page indices).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    start: u64,
    end: u64,
    phys: u64,
    ro: bool,
}

/// The model: sorted, disjoint runs.
#[derive(Clone, Debug, Default)]
struct Model(Vec<Run>);

impl Model {
    fn first_overlap(&self, s: u64, e: u64) -> Option<u64> {
        self.0.iter().find(|r| r.start < e && s < r.end).map(|r| r.start.max(s))
    }

    /// Applies `f` to the parts of runs inside `[s, e)`; returns the parts
    /// (clipped, before `f`).
    fn edit(&mut self, s: u64, e: u64, f: impl Fn(Run) -> Option<Run>) -> Vec<Run> {
        let mut out = Vec::new();
        let mut touched = Vec::new();
        for r in std::mem::take(&mut self.0) {
            if r.end <= s || e <= r.start {
                out.push(r);
                continue;
            }
            if r.start < s {
                out.push(Run { end: s, ..r });
            }
            let (cs, ce) = (r.start.max(s), r.end.min(e));
            let mid = Run { start: cs, end: ce, phys: r.phys + (cs - r.start), ro: r.ro };
            touched.push(mid);
            out.extend(f(mid));
            if e < r.end {
                out.push(Run { start: e, phys: r.phys + (e - r.start), ..r });
            }
        }
        out.sort_by_key(|r| r.start);
        self.0 = out;
        touched
    }

    fn canonical(&self) -> Vec<Run> {
        canonical(self.0.clone())
    }
}

fn canonical(runs: Vec<Run>) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    for r in runs {
        match out.last_mut() {
            Some(l) if l.end == r.start && l.phys + (l.end - l.start) == r.phys && l.ro == r.ro => l.end = r.end,
            _ => out.push(r),
        }
    }
    out
}

fn tree_runs(pt: &PageTable<'_, X86PteFormat>) -> Vec<Run> {
    let runs = leaves(pt, BASE, BASE + WINDOW_PAGES * 4 * KB)
        .into_iter()
        .map(|(s, e, phys, prot, _)| Run {
            start: (s - BASE) / (4 * KB),
            end: (e - BASE) / (4 * KB),
            phys: phys / (4 * KB),
            ro: !prot.contains(PgProt::WRITE),
        })
        .collect();
    canonical(runs)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random map/unmap/protect sequences agree with a model of runs of
    /// pages, every operation's flush covers every page whose translation
    /// went away or lost write permission, and tearing everything down
    /// frees every table.
    #[test]
    fn page_table_matches_a_model(ops in proptest::collection::vec(op(), 1..24)) {
        let sim = Sim::flat(64 * MB);
        let pgdat = sim.pgdat(1);
        let tlb = SimTlb::default();
        let free_before = free_pages_drained(&pgdat);
        let pt = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
        pt.preallocate(va(BASE)).unwrap();
        let mut model = Model::default();
        for op in ops {
            let mut gather = TlbGather::new();
            // Pages whose translation must have been flushed.
            let mut weakened = Vec::new();
            match op {
                Op::Map { page, pages, phys_page, max, ro } => {
                    let pages = pages.min(WINDOW_PAGES - page);
                    let prot = if ro { PAGE_KERNEL_RO } else { PAGE_KERNEL };
                    let res = pt.map(va(BASE + page * 4 * KB), PhysAddr::new(phys_page * 4 * KB), pages * 4 * KB, prot, max, &mut gather);
                    match model.first_overlap(page, page + pages) {
                        None => {
                            prop_assert_eq!(res, Ok(()));
                            model.0.push(Run { start: page, end: page + pages, phys: phys_page, ro });
                            model.0.sort_by_key(|r| r.start);
                        }
                        // The walk stops at the first entry in the way,
                        // which may be a table entry covering the clash.
                        Some(first) => prop_assert!(
                            matches!(res, Err(PgtableError::AlreadyMapped(a)) if a.as_u64() <= BASE + first * 4 * KB),
                            "{:?} vs first clash page {}", res, first
                        ),
                    }
                }
                Op::Unmap { page, pages, free } => {
                    let pages = pages.min(WINDOW_PAGES - page);
                    let free = if free { FreeTables::Yes } else { FreeTables::No };
                    let res = pt.unmap(va(BASE + page * 4 * KB), pages * 4 * KB, free, &mut gather);
                    weakened = model.edit(page, page + pages, |_| None);
                    let mapped: u64 = weakened.iter().map(|r| r.end - r.start).sum();
                    prop_assert_eq!(res, Ok(mapped * 4 * KB));
                }
                Op::Protect { page, pages, ro } => {
                    let pages = pages.min(WINDOW_PAGES - page);
                    let prot = if ro { PAGE_KERNEL_RO } else { PAGE_KERNEL };
                    let res = pt.protect(va(BASE + page * 4 * KB), pages * 4 * KB, prot, &mut gather);
                    let touched = model.edit(page, page + pages, |r| Some(Run { ro, ..r }));
                    let mapped: u64 = touched.iter().map(|r| r.end - r.start).sum();
                    prop_assert_eq!(res, Ok(mapped * 4 * KB));
                    if ro {
                        weakened = touched.into_iter().filter(|r| !r.ro).collect();
                    }
                }
            }
            let flushed = gather.range();
            for r in &weakened {
                let (s, e) = (BASE + r.start * 4 * KB, BASE + r.end * 4 * KB);
                prop_assert!(matches!(flushed, Some((fs, fe)) if fs <= s && e <= fe), "{:#x}-{:#x} changed unflushed ({:x?})", s, e, flushed);
            }
            gather.finish(&tlb, &pgdat);
            prop_assert_eq!(tree_runs(&pt), model.canonical());
            prop_assert_eq!(counted_tables(&pgdat), pt.nr_tables());
        }
        let mut gather = TlbGather::new();
        pt.unmap(va(BASE), WINDOW_PAGES * 4 * KB, FreeTables::Yes, &mut gather).unwrap();
        gather.finish(&tlb, &pgdat);
        prop_assert_eq!(pt.nr_tables(), 2);
        drop(pt);
        prop_assert_eq!(free_pages_drained(&pgdat), free_before);
        prop_assert_eq!(counted_tables(&pgdat), 0);
    }
}
