//! Host tests of the vmap_area allocator.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::sim::HeapAlloc;

/// Linux's `VMALLOC_START` with 4-level paging.
const START: u64 = 0xffff_c900_0000_0000;
const P: u64 = PAGE_SIZE;
const MIB: u64 = 1 << 20;

/// Node memory from the host heap.
type TestAlloc = HeapAlloc<VmapNode>;

type Areas<'a> = VmapAreas<&'a TestAlloc>;

fn va(addr: u64) -> VirtAddr {
    VirtAddr::expect_canonical(addr)
}

/// A window of `pages` pages at [`START`] on a one-CPU machine.
fn areas(alloc: &TestAlloc, pages: u64) -> Areas<'_> {
    VmapAreas::new(va(START), va(START + pages * P), 1, alloc).unwrap()
}

fn no_flush(start: VirtAddr, end: VirtAddr) {
    panic!("unexpected flush of {start:?}-{end:?}");
}

/// Allocates anywhere in the window, never expecting a flush.
#[track_caller]
fn alloc(v: &mut Areas<'_>, size: u64, align: u64, flags: VmFlags) -> Result<VmapArea, VmallocError> {
    let window = v.start()..v.end();
    v.alloc(size, align, window, flags, Location::caller(), no_flush)
}

/// Allocates inside `[vstart, vend)` (offsets from [`START`]).
#[track_caller]
fn alloc_in(v: &mut Areas<'_>, size: u64, align: u64, vstart: u64, vend: u64) -> Result<VmapArea, VmallocError> {
    v.alloc(size, align, va(START + vstart)..va(START + vend), VmFlags::NO_GUARD, Location::caller(), no_flush)
}

/// `[start, end)` of a tree's nodes as offsets from [`START`].
fn ranges(tree: &Tree) -> Vec<(u64, u64)> {
    tree.iter().map(|n| (n.start() - START, n.end() - START)).collect()
}

fn free_ranges(v: &Areas<'_>) -> Vec<(u64, u64)> {
    ranges(&v.free)
}

/// Everything observable, for "nothing changed" assertions.
#[derive(Debug, PartialEq)]
struct Snapshot {
    free: Vec<(u64, u64)>,
    busy: Vec<(u64, u64)>,
    lazy: Vec<(u64, u64)>,
    counters: (u64, u64, usize),
    vmallocinfo: String,
}

fn snapshot(v: &Areas<'_>) -> Snapshot {
    v.check().unwrap();
    Snapshot {
        free: ranges(&v.free),
        busy: ranges(&v.busy),
        lazy: ranges(&v.lazy),
        counters: (v.nr_free_bytes(), v.lazy_nr(), v.nr_busy()),
        vmallocinfo: Vmallocinfo(v).to_string(),
    }
}

/// Allocates consecutive guardless areas of these page counts from the
/// bottom of an empty window.
fn carve(v: &mut Areas<'_>, pages: &[u64]) -> Vec<VmapArea> {
    pages.iter().map(|&n| alloc(v, n * P, 1, VmFlags::NO_GUARD).unwrap()).collect()
}

/// Frees areas lazily and purges them, expecting one flush.
fn release(v: &mut Areas<'_>, areas: &[&VmapArea]) {
    for area in areas {
        v.free_lazy(area.start).unwrap();
    }
    let flushes = Cell::new(0);
    assert!(v.purge(|_, _| flushes.set(flushes.get() + 1)));
    assert_eq!(flushes.get(), 1);
    v.check().unwrap();
}

#[test]
fn guard_page_is_part_of_the_area_but_not_of_its_usable_size() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let a = alloc(&mut v, 3 * P + 1, 1, VmFlags::ALLOC).unwrap();
    assert_eq!((a.start.as_u64(), a.end.as_u64()), (START, START + 5 * P));
    assert_eq!((a.size(), a.get_vm_area_size()), (5 * P, 4 * P));
    assert_eq!((a.flags, a.nr_pages, a.phys_addr), (VmFlags::ALLOC, 0, PhysAddr::new(0)));
    let b = alloc(&mut v, P, 1, VmFlags::MAP | VmFlags::NO_GUARD).unwrap();
    assert_eq!((b.start.as_u64(), b.end.as_u64()), (START + 5 * P, START + 6 * P));
    assert_eq!((b.size(), b.get_vm_area_size()), (P, P));
    assert_eq!((v.nr_free_bytes(), v.largest_free(), v.nr_busy()), (58 * P, 58 * P, 2));
    assert_eq!(free_ranges(&v), [(6 * P, 64 * P)]);
    v.check().unwrap();
}

#[test]
fn fit_types_follow_linux_classification() {
    let classify = |nva_start, size| classify_va_fit_type(0x1000, 0x5000, nva_start, size);
    assert_eq!(classify(0x1000, 0x4000), FitType::Full);
    assert_eq!(classify(0x1000, 0x1000), FitType::LeftEdge);
    assert_eq!(classify(0x4000, 0x1000), FitType::RightEdge);
    assert_eq!(classify(0x2000, 0x1000), FitType::NoEdge);
}

#[test]
fn full_fit_takes_the_whole_hole_and_frees_its_node() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let carved = carve(&mut v, &[4, 2, 4]);
    release(&mut v, &[&carved[1]]);
    assert_eq!(free_ranges(&v), [(4 * P, 6 * P), (10 * P, 64 * P)]);
    assert_eq!(node_alloc.live(), 4);
    let a = alloc(&mut v, 2 * P, 1, VmFlags::NO_GUARD).unwrap();
    assert_eq!(a.start.as_u64(), START + 4 * P);
    assert_eq!(free_ranges(&v), [(10 * P, 64 * P)]);
    // One busy node more, one free node less.
    assert_eq!(node_alloc.live(), 4);
    v.check().unwrap();
}

#[test]
fn left_edge_fit_shrinks_the_hole_from_below() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let carved = carve(&mut v, &[4, 4, 4]);
    release(&mut v, &[&carved[1]]);
    let a = alloc(&mut v, P, 1, VmFlags::NO_GUARD).unwrap();
    assert_eq!(a.start.as_u64(), START + 4 * P);
    assert_eq!(free_ranges(&v), [(5 * P, 8 * P), (12 * P, 64 * P)]);
    v.check().unwrap();
}

#[test]
fn right_edge_fit_shrinks_the_hole_from_above() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let carved = carve(&mut v, &[4, 4, 4]);
    release(&mut v, &[&carved[1]]);
    let a = alloc_in(&mut v, 2 * P, 1, 6 * P, 64 * P).unwrap();
    assert_eq!(a.start.as_u64(), START + 6 * P);
    assert_eq!(free_ranges(&v), [(4 * P, 6 * P), (12 * P, 64 * P)]);
    v.check().unwrap();
}

#[test]
fn no_edge_fit_splits_the_hole_with_one_more_node() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let carved = carve(&mut v, &[4, 8, 4]);
    release(&mut v, &[&carved[1]]);
    let live = node_alloc.live();
    let a = alloc_in(&mut v, 2 * P, 1, 6 * P, 64 * P).unwrap();
    assert_eq!(a.start.as_u64(), START + 6 * P);
    assert_eq!(free_ranges(&v), [(4 * P, 6 * P), (8 * P, 12 * P), (16 * P, 64 * P)]);
    assert_eq!(node_alloc.live(), live + 2);
    v.check().unwrap();
}

#[test]
fn large_alignment_takes_the_lowest_hole_that_surely_fits() {
    let node_alloc = TestAlloc::default();
    // 16 MiB; 2 MiB is 512 pages.
    let mut v = areas(&node_alloc, 4096);
    let carved = carve(&mut v, &[1, 512, 1, 1022, 1, 2559]);
    release(&mut v, &[&carved[1], &carved[3], &carved[5]]);
    assert_eq!(free_ranges(&v), [(P, 513 * P), (514 * P, 1536 * P), (1537 * P, 4096 * P)]);
    // The first hole holds no aligned 2 MiB block. The second holds one
    // exactly at 4 MiB, but is shorter than 2 MiB + align - 1, so the
    // search passes it over (as Linux's does unless it happens to sit on
    // the search path). The third is long enough: its aligned block at
    // 8 MiB splits it.
    let a = alloc(&mut v, 2 * MIB, 2 * MIB, VmFlags::NO_GUARD).unwrap();
    assert_eq!(a.start.as_u64(), START + 8 * MIB);
    assert_eq!(free_ranges(&v), [(P, 513 * P), (514 * P, 1536 * P), (1537 * P, 8 * MIB), (10 * MIB, 16 * MIB)]);
    // A window exactly the block's size is searched without the
    // alignment allowance (Linux's `adjust_search_size`), so the block at
    // 4 MiB is found: a right-edge fit.
    let b = alloc_in(&mut v, 2 * MIB, 2 * MIB, 4 * MIB, 6 * MIB).unwrap();
    assert_eq!(b.start.as_u64(), START + 4 * MIB);
    assert_eq!(free_ranges(&v), [(P, 513 * P), (514 * P, 4 * MIB), (1537 * P, 8 * MIB), (10 * MIB, 16 * MIB)]);
    for area in [a, b] {
        assert!(area.start.is_aligned(2 * MIB));
    }
    v.check().unwrap();
}

#[test]
fn vstart_and_vend_bound_the_search() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let a = alloc_in(&mut v, 4 * P, 1, 10 * P, 20 * P).unwrap();
    assert_eq!(a.start.as_u64(), START + 10 * P);
    // An unaligned vstart is rounded up to the alignment.
    let b = alloc_in(&mut v, P, 1, 14 * P + 0x123, 20 * P).unwrap();
    assert_eq!(b.start.as_u64(), START + 15 * P);
    assert_eq!(
        alloc_in(&mut v, 5 * P, 1, 10 * P, 20 * P),
        Err(VmallocError::NoSpace { size: 5 * P, vstart: va(START + 10 * P), vend: va(START + 20 * P) })
    );
    // Above the window: no free range, no flush (nothing is lazy).
    assert!(matches!(alloc_in(&mut v, P, 1, 64 * P, 80 * P), Err(VmallocError::NoSpace { .. })));
    v.check().unwrap();
}

#[test]
fn purge_merges_with_neither_neighbour() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let carved = carve(&mut v, &[4, 4, 4]);
    release(&mut v, &[&carved[1]]);
    assert_eq!(free_ranges(&v), [(4 * P, 8 * P), (12 * P, 64 * P)]);
    assert_eq!(node_alloc.live(), 4);
}

#[test]
fn purge_merges_with_the_right_neighbour() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let carved = carve(&mut v, &[4, 4, 4]);
    release(&mut v, &[&carved[2]]);
    assert_eq!(free_ranges(&v), [(8 * P, 64 * P)]);
    assert_eq!(node_alloc.live(), 3);
}

#[test]
fn purge_merges_with_the_left_neighbour() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let carved = carve(&mut v, &[4, 4, 4]);
    release(&mut v, &[&carved[0]]);
    release(&mut v, &[&carved[1]]);
    assert_eq!(free_ranges(&v), [(0, 8 * P), (12 * P, 64 * P)]);
    assert_eq!(node_alloc.live(), 3);
}

#[test]
fn purge_merges_with_both_neighbours() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let carved = carve(&mut v, &[4, 4, 4]);
    release(&mut v, &[&carved[0], &carved[2]]);
    assert_eq!(free_ranges(&v), [(0, 4 * P), (8 * P, 64 * P)]);
    release(&mut v, &[&carved[1]]);
    assert_eq!(free_ranges(&v), [(0, 64 * P)]);
    assert_eq!((node_alloc.live(), v.nr_free_bytes(), v.largest_free()), (1, 64 * P, 64 * P));
}

#[test]
fn one_purge_merges_adjacent_lazy_areas_into_one_range() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let carved = carve(&mut v, &[4, 4, 4]);
    release(&mut v, &[&carved[1], &carved[0], &carved[2]]);
    assert_eq!(free_ranges(&v), [(0, 64 * P)]);
    assert_eq!(node_alloc.live(), 1);
}

#[test]
fn fault_info_tells_usable_part_from_guard_page() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let a = alloc(&mut v, 2 * P, 1, VmFlags::ALLOC).unwrap();
    let b = alloc(&mut v, P, 1, VmFlags::MAP | VmFlags::NO_GUARD).unwrap();
    let at = |off: u64| v.fault_info(va(START + off));
    assert_eq!(v.find(va(START)), Some(a));
    assert_eq!(at(0), VmapFault::Mapped(a));
    assert_eq!(at(2 * P - 1), VmapFault::Mapped(a));
    assert_eq!(at(2 * P), VmapFault::GuardPage(a));
    assert_eq!(at(3 * P - 1), VmapFault::GuardPage(a));
    assert_eq!(v.find(va(START + 3 * P - 1)), Some(a));
    // `b` has no guard page: its last page is usable.
    assert_eq!(at(3 * P), VmapFault::Mapped(b));
    assert_eq!(at(4 * P - 1), VmapFault::Mapped(b));
    assert_eq!(at(4 * P), VmapFault::NoArea);
    assert_eq!(v.find(va(START + 4 * P)), None);
    assert_eq!(v.fault_info(va(START - 1)), VmapFault::NoArea);

    v.free_lazy(a.start).unwrap();
    let unpurged = VmapFault::Unpurged { start: va(START), end: va(START + 3 * P) };
    assert_eq!(v.fault_info(va(START + P)), unpurged);
    assert_eq!(v.find(va(START + P)), None);
    v.purge(|_, _| ());
    assert_eq!(v.fault_info(va(START + P)), VmapFault::NoArea);
}

#[test]
fn lazy_max_pages_scales_with_fls_of_the_cpu_count() {
    let node_alloc = TestAlloc::default();
    let pages_32mib = 32 * MIB / P;
    for (nr_cpus, steps) in [(0, 1), (1, 1), (2, 2), (3, 2), (4, 3), (64, 7)] {
        let v = VmapAreas::new(va(START), va(START + 16 * P), nr_cpus, &node_alloc).unwrap();
        assert_eq!(v.lazy_max_pages(), steps * pages_32mib, "{nr_cpus} cpus");
    }
}

#[test]
fn purge_is_due_above_lazy_max_pages_and_flushes_the_union_once() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 20000);
    assert_eq!(v.lazy_max_pages(), 8192);
    // 8191 pages and the guard page.
    let a = alloc(&mut v, 8191 * P, 1, VmFlags::ALLOC).unwrap();
    let c = alloc(&mut v, P, 1, VmFlags::NO_GUARD).unwrap();
    let b = alloc(&mut v, P, 1, VmFlags::NO_GUARD).unwrap();
    assert_eq!(v.free_lazy(a.start), Ok(a));
    assert_eq!((v.lazy_nr(), v.needs_purge()), (8192, false));
    v.free_lazy(b.start).unwrap();
    assert_eq!((v.lazy_nr(), v.needs_purge()), (8193, true));
    assert_eq!(v.nr_free_bytes(), (20000 - 8194) * P);
    v.check().unwrap();

    let flushes = RefCell::new(Vec::new());
    assert!(v.purge(|start, end| flushes.borrow_mut().push((start.as_u64(), end.as_u64()))));
    // One flush over both, and over `c` between them, as Linux does.
    assert_eq!(flushes.take(), [(START, START + 8194 * P)]);
    assert_eq!((v.lazy_nr(), v.needs_purge()), (0, false));
    assert_eq!(free_ranges(&v), [(0, 8192 * P), (8193 * P, 20000 * P)]);
    assert_eq!(v.find(c.start), Some(c));
    assert!(!v.purge(no_flush));
    v.check().unwrap();
}

#[test]
fn allocation_purges_and_retries_once_when_nothing_fits() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 16);
    let a = alloc(&mut v, 15 * P, 1, VmFlags::ALLOC).unwrap();
    assert_eq!(v.nr_free_bytes(), 0);
    v.free_lazy(a.start).unwrap();
    let flushes = RefCell::new(Vec::new());
    let window = v.start()..v.end();
    let b = v
        .alloc(4 * P, 1, window, VmFlags::ALLOC, Location::caller(), |s, e| {
            flushes.borrow_mut().push((s.as_u64(), e.as_u64()))
        })
        .unwrap();
    assert_eq!(flushes.take(), [(START, START + 16 * P)]);
    assert_eq!(b.start.as_u64(), START);
    assert_eq!((v.lazy_nr(), v.nr_free_bytes()), (0, 11 * P));
    v.check().unwrap();
}

#[test]
fn allocation_fails_when_full_and_changes_nothing() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 16);
    carve(&mut v, &[8, 8]);
    let before = snapshot(&v);
    let live = node_alloc.live();
    assert_eq!(
        alloc(&mut v, P, 1, VmFlags::ALLOC),
        Err(VmallocError::NoSpace { size: 2 * P, vstart: va(START), vend: va(START + 16 * P) })
    );
    assert_eq!(snapshot(&v), before);
    assert_eq!(node_alloc.live(), live);
}

#[test]
fn allocation_that_does_not_fit_even_after_purging_fails() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 16);
    let carved = carve(&mut v, &[2, 14]);
    v.free_lazy(carved[0].start).unwrap();
    let flushes = Cell::new(0);
    let window = v.start()..v.end();
    let err = v.alloc(4 * P, 1, window, VmFlags::ALLOC, Location::caller(), |_, _| flushes.set(flushes.get() + 1));
    assert!(matches!(err, Err(VmallocError::NoSpace { size, .. }) if size == 5 * P));
    // The purge happened; its range is free now.
    assert_eq!((flushes.get(), v.lazy_nr()), (1, 0));
    assert_eq!(free_ranges(&v), [(0, 2 * P)]);
    v.check().unwrap();
}

#[test]
fn node_allocation_failure_in_new_is_an_error() {
    let node_alloc = TestAlloc::default();
    node_alloc.fail_nth(0);
    assert!(matches!(VmapAreas::new(va(START), va(START + P), 1, &node_alloc), Err(VmallocError::NoMemory)));
    assert_eq!(node_alloc.live(), 0);
}

#[test]
fn node_allocation_failure_for_the_area_changes_nothing() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let carved = carve(&mut v, &[4, 8, 4]);
    release(&mut v, &[&carved[1]]);
    let before = snapshot(&v);
    let live = node_alloc.live();
    node_alloc.fail_nth(0);
    assert_eq!(alloc(&mut v, P, 1, VmFlags::ALLOC), Err(VmallocError::NoMemory));
    assert_eq!(snapshot(&v), before);
    assert_eq!(node_alloc.live(), live);
}

#[test]
fn node_allocation_failure_for_a_middle_split_changes_nothing() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let carved = carve(&mut v, &[4, 8, 4]);
    release(&mut v, &[&carved[1]]);
    let before = snapshot(&v);
    let live = node_alloc.live();
    // The second allocation is the split's node.
    node_alloc.fail_nth(1);
    assert_eq!(alloc_in(&mut v, 2 * P, 1, 6 * P, 64 * P), Err(VmallocError::NoMemory));
    assert_eq!(snapshot(&v), before);
    assert_eq!(node_alloc.live(), live);
    // An edge fit needs no second node.
    node_alloc.fail_nth(1);
    let a = alloc_in(&mut v, 2 * P, 1, 4 * P, 64 * P).unwrap();
    assert_eq!(a.start.as_u64(), START + 4 * P);
    assert_eq!(node_alloc.live(), live + 1);
    v.check().unwrap();
}

#[test]
fn freeing_a_nonexistent_area_is_an_error() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let a = alloc(&mut v, 2 * P, 1, VmFlags::ALLOC).unwrap();
    let inside = va(START + P);
    assert_eq!(v.free_lazy(inside), Err(VmallocError::NotFound(inside)));
    assert_eq!(v.set_nr_pages(inside, 1), Err(VmallocError::NotFound(inside)));
    assert_eq!(v.set_phys_addr(va(START + 32 * P), PhysAddr::new(P)), Err(VmallocError::NotFound(va(START + 32 * P))));
    assert_eq!(v.free_lazy(va(START - P)), Err(VmallocError::NotFound(va(START - P))));
    assert_eq!(
        VmallocError::NotFound(inside).to_string(),
        "Trying to vfree() nonexistent vm area (0xffffc90000001000)"
    );
    v.free_lazy(a.start).unwrap();
    assert_eq!(v.free_lazy(a.start), Err(VmallocError::NotFound(a.start)));
    v.check().unwrap();
}

#[test]
fn bad_arguments_are_rejected() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    assert_eq!(alloc(&mut v, 0, 1, VmFlags::ALLOC), Err(VmallocError::BadSize));
    assert_eq!(alloc(&mut v, u64::MAX - P, 1, VmFlags::ALLOC), Err(VmallocError::BadSize));
    assert_eq!(alloc(&mut v, P, 0, VmFlags::ALLOC), Err(VmallocError::BadAlign));
    assert_eq!(alloc(&mut v, P, 3 * P, VmFlags::ALLOC), Err(VmallocError::BadAlign));
    assert_eq!(alloc_in(&mut v, P, 1, 8 * P, 8 * P), Err(VmallocError::BadRange));
    // Too big to fit is no space, not an error of arguments.
    assert!(matches!(alloc(&mut v, 1 << 46, 1 << 46, VmFlags::ALLOC), Err(VmallocError::NoSpace { .. })));
    let new = |start, end| VmapAreas::new(va(start), va(end), 1, &node_alloc).map(drop);
    assert_eq!(new(START, START), Err(VmallocError::BadRange));
    assert_eq!(new(START + 1, START + P), Err(VmallocError::BadRange));
    assert_eq!(new(0x7fff_ffff_0000, 0xffff_8000_0000_1000), Err(VmallocError::BadRange));
    assert_eq!(node_alloc.live(), 1);
    v.check().unwrap();
}

#[test]
fn vmallocinfo_prints_linux_lines_busy_then_unpurged() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let window = v.start()..v.end();
    let caller_a = Location::caller();
    let caller_b = Location::caller();
    let caller_d = Location::caller();
    let a = v.alloc(4 * P, 1, window.clone(), VmFlags::ALLOC, caller_a, no_flush).unwrap();
    let b = v.alloc(P, 1, window.clone(), VmFlags::IOREMAP, caller_b, no_flush).unwrap();
    let c = alloc(&mut v, P, 1, VmFlags::MAP).unwrap();
    let d = v.alloc(2 * P, 1, window, VmFlags::MAP | VmFlags::NO_GUARD, caller_d, no_flush).unwrap();
    v.set_nr_pages(a.start, 4).unwrap();
    v.set_phys_addr(b.start, PhysAddr::new(0xfed0_0000)).unwrap();
    v.set_nr_pages(d.start, 2).unwrap();
    v.free_lazy(c.start).unwrap();
    let (a_line, b_line, d_line) = (caller_a.line(), caller_b.line(), caller_d.line());
    let expected = format!(
        "0xffffc90000000000-0xffffc90000005000   20480 mm/src/vmalloc/tests.rs:{a_line} pages=4 vmalloc\n\
         0xffffc90000005000-0xffffc90000007000    8192 mm/src/vmalloc/tests.rs:{b_line} phys=0x00000000fed00000 ioremap\n\
         0xffffc90000009000-0xffffc9000000b000    8192 mm/src/vmalloc/tests.rs:{d_line} pages=2 vmap\n\
         0xffffc90000007000-0xffffc90000009000    8192 unpurged vm_area\n"
    );
    assert_eq!(Vmallocinfo(&v).to_string(), expected);
}

#[test]
fn check_reports_corruption() {
    let node_alloc = TestAlloc::default();
    let mut v = areas(&node_alloc, 64);
    let carved = carve(&mut v, &[4, 4, 4]);
    release(&mut v, &[&carved[1]]);
    let Some(hole) = v.free.first() else { panic!("no free range") };
    // Shrunk without propagating: the stored maximum is stale.
    hole.set_range(4 * P + START, 7 * P + START);
    assert_eq!(
        v.check(),
        Err(VmapCheckError::BadSubtreeMaxSize { tree: "free", start: START + 4 * P, stored: 4 * P, computed: 3 * P })
    );
    // Propagated, the page lost from every tree shows.
    v.free.propagate(hole);
    v.free_bytes -= P;
    assert_eq!(v.check(), Err(VmapCheckError::Hole { at: START + 7 * P }));
    hole.set_range(4 * P + START, 8 * P + START);
    v.free.propagate(hole);
    v.free_bytes += P;
    v.check().unwrap();
}

#[test]
fn many_areas_keep_the_trees_balanced_and_every_node_is_freed() {
    let node_alloc = TestAlloc::default();
    {
        let mut v = areas(&node_alloc, 4096);
        let carved = carve(&mut v, &[1; 2000]);
        v.check().unwrap();
        for area in carved.iter().step_by(2) {
            v.free_lazy(area.start).unwrap();
        }
        v.check().unwrap();
        v.purge(|_, _| ());
        v.check().unwrap();
        assert_eq!(v.free.len(), 1001);
        for area in carved.iter().skip(1).step_by(4) {
            v.free_lazy(area.start).unwrap();
        }
        v.check().unwrap();
        assert!(node_alloc.live() > 2000);
    }
    assert_eq!(node_alloc.live(), 0);
}

/// The model of the proptest: busy and lazy ranges; the free ranges are the
/// rest of the window.
const WINDOW_PAGES: u64 = 16384;
const END: u64 = START + WINDOW_PAGES * P;

#[derive(Default)]
struct Model {
    busy: BTreeMap<u64, u64>,
    lazy: BTreeMap<u64, u64>,
    lazy_nr: u64,
}

impl Model {
    fn free_ranges(&self) -> Vec<(u64, u64)> {
        let mut used: Vec<(u64, u64)> = self.busy.iter().chain(&self.lazy).map(|(&s, &e)| (s, e)).collect();
        used.sort_unstable();
        let (mut free, mut at) = (Vec::new(), START);
        for (start, end) in used {
            if start > at {
                free.push((at, start));
            }
            at = end;
        }
        if at < END {
            free.push((at, END));
        }
        free
    }

    /// First fit by linear scan: the lowest free range of at least
    /// `length` bytes that holds the aligned block; the block must end by
    /// `vend`. Returns the block's start and the range it is cut from.
    fn search(&self, size: u64, align: u64, vstart: u64, vend: u64) -> Option<(u64, (u64, u64))> {
        let align = align.max(P);
        let length = if align > P && vend - vstart != size { size + align - 1 } else { size };
        for (start, end) in self.free_ranges() {
            let nva_start = align_up(start.max(vstart), align).unwrap();
            if end - start >= length && nva_start + size <= end {
                return (nva_start + size <= vend).then_some((nva_start, (start, end)));
            }
        }
        None
    }

    fn purge(&mut self) -> Option<(u64, u64)> {
        let union = (*self.lazy.first_key_value()?.0, *self.lazy.last_key_value()?.1);
        self.lazy.clear();
        self.lazy_nr = 0;
        Some(union)
    }
}

/// Where an allocation may go.
#[derive(Clone, Debug)]
enum Window {
    /// The whole window.
    Full,
    /// From a first page plus a byte offset, for a length in pages.
    Fixed(u64, u64, u64),
    /// From the end of the picked free range minus the size, so the block
    /// takes that range's right edge.
    FreeRangeEnd(usize),
}

#[derive(Clone, Debug)]
enum Op {
    Alloc {
        pages: u64,
        align_shift: u32,
        no_guard: bool,
        window: Window,
        /// Which node allocation of this call fails, if any.
        fail: Option<usize>,
    },
    Free {
        pick: usize,
    },
    Purge,
}

fn op() -> impl Strategy<Value = Op> {
    let pages = prop_oneof![4 => 1u64..=8, 2 => 9u64..=64, 1 => 65u64..=4096];
    let align_shift = prop_oneof![3 => Just(0u32), 2 => 1u32..=10];
    let window = prop_oneof![
        6 => Just(Window::Full),
        2 => (0..WINDOW_PAGES, 1..WINDOW_PAGES, 0..P)
            .prop_map(|(first, len, offset)| Window::Fixed(first, len, offset)),
        2 => any::<usize>().prop_map(Window::FreeRangeEnd),
    ];
    let fail = prop::option::weighted(0.05, 0usize..2);
    prop_oneof![
        12 => (pages, align_shift, any::<bool>(), window, fail)
            .prop_map(|(pages, align_shift, no_guard, window, fail)| {
                Op::Alloc { pages, align_shift, no_guard, window, fail }
            }),
        7 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        1 => Just(Op::Purge),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random allocation, lazy free and purge sequences return exactly the
    /// addresses a linear first-fit model predicts, flush exactly the
    /// model's ranges, and keep every invariant.
    #[test]
    fn random_sequences_match_the_first_fit_model(ops in prop::collection::vec(op(), 150..=250)) {
        let node_alloc = TestAlloc::default();
        let mut v = VmapAreas::new(va(START), va(END), 1, &node_alloc).unwrap();
        let mut model = Model::default();
        let mut live = Vec::new();
        for op in ops {
            let flushes = RefCell::new(Vec::new());
            let flush = |s: VirtAddr, e: VirtAddr| flushes.borrow_mut().push((s.as_u64(), e.as_u64()));
            let mut expected_flushes = Vec::new();
            match op {
                Op::Alloc { pages, align_shift, no_guard, window, fail } => {
                    let flags = if no_guard { VmFlags::NO_GUARD } else { VmFlags::ALLOC };
                    let size = (pages + u64::from(!no_guard)) * P;
                    let align = 1u64 << (PAGE_SHIFT + align_shift);
                    let (vstart, vend) = match window {
                        Window::Full => (START, END),
                        Window::Fixed(first, len, offset) => {
                            let vstart = START + first * P + offset;
                            (vstart, vstart + len * P)
                        }
                        Window::FreeRangeEnd(pick) => {
                            let free = model.free_ranges();
                            let end = free.get(pick % free.len().max(1)).map_or(END, |&(_, end)| end);
                            (end.saturating_sub(size).max(START), END)
                        }
                    };
                    if let Some(n) = fail {
                        node_alloc.fail_nth(n);
                    }
                    let got = v.alloc(pages * P, align, va(vstart)..va(vend), flags, Location::caller(), flush);
                    let mut found = None;
                    if fail != Some(0) {
                        found = model.search(size, align, vstart, vend);
                        if found.is_none() && let Some(union) = model.purge() {
                            expected_flushes.push(union);
                            found = model.search(size, align, vstart, vend);
                        }
                    }
                    let split = found.is_some_and(|(a, (s, e))| a > s && a + size < e);
                    match found {
                        _ if fail == Some(0) || (fail == Some(1) && split) => {
                            prop_assert_eq!(got, Err(VmallocError::NoMemory));
                        }
                        None => prop_assert!(matches!(got, Err(VmallocError::NoSpace { .. })), "{:?}", got),
                        Some((addr, _)) => {
                            let area = got.map_err(|e| TestCaseError::fail(format!("{e}")))?;
                            prop_assert_eq!((area.start.as_u64(), area.size()), (addr, size));
                            model.busy.insert(addr, addr + size);
                            live.push(area.start);
                        }
                    }
                    node_alloc.fail_none();
                }
                Op::Free { pick } => {
                    if live.is_empty() {
                        prop_assert_eq!(v.free_lazy(va(START + P)), Err(VmallocError::NotFound(va(START + P))));
                    } else {
                        let start = live.swap_remove(pick % live.len());
                        let area = v.free_lazy(start).map_err(|e| TestCaseError::fail(format!("{e}")))?;
                        let end = model.busy.remove(&start.as_u64()).unwrap_or(0);
                        prop_assert_eq!(area.end.as_u64(), end);
                        model.lazy.insert(start.as_u64(), end);
                        model.lazy_nr += (end - start.as_u64()) / P;
                        prop_assert_eq!(v.needs_purge(), model.lazy_nr > 8192);
                        if v.needs_purge() {
                            prop_assert!(v.purge(flush));
                            expected_flushes.extend(model.purge());
                        }
                    }
                }
                Op::Purge => {
                    prop_assert_eq!(v.purge(flush), !model.lazy.is_empty());
                    expected_flushes.extend(model.purge());
                }
            }
            prop_assert_eq!(flushes.take(), expected_flushes);
            if let Err(err) = v.check() {
                return Err(TestCaseError::fail(format!("{err}")));
            }
            let free = model.free_ranges();
            prop_assert_eq!(ranges(&v.free), free.iter().map(|&(s, e)| (s - START, e - START)).collect::<Vec<_>>());
            prop_assert_eq!(v.nr_free_bytes(), free.iter().map(|&(s, e)| e - s).sum::<u64>());
            prop_assert_eq!(v.largest_free(), free.iter().map(|&(s, e)| e - s).max().unwrap_or(0));
            prop_assert_eq!((v.nr_busy(), v.lazy_nr()), (model.busy.len(), model.lazy_nr));
        }
        drop(v);
        prop_assert_eq!(node_alloc.live(), 0);
    }
}
