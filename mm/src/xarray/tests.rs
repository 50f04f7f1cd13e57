//! Host tests of the XArray: each operation and its edges (the entry at
//! index 0 in the head, `u64::MAX`, growing and shrinking, failed node
//! allocations), and a model-based proptest against a `BTreeMap` that
//! checks every invariant and the exact node count after each step.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::sim::HeapAlloc;

type Nodes = HeapAlloc<XaNode<u32>>;
type Xa<'a> = XArray<u32, &'a Nodes>;

/// What an array should hold: per index, the entry and its set of marks.
type Model = BTreeMap<u64, (u32, u8)>;

const DIRTY: XaMark = PAGECACHE_TAG_DIRTY;
const WRITEBACK: XaMark = PAGECACHE_TAG_WRITEBACK;
const TOWRITE: XaMark = PAGECACHE_TAG_TOWRITE;

/// Runs `f` on an empty array over a fresh node cache, checks the array
/// after it, and that dropping the array gives every node back.
fn with_xa(f: impl FnOnce(&mut Xa<'_>, &Nodes)) {
    let nodes = Nodes::default();
    let mut xa = XArray::new(&nodes);
    f(&mut xa, &nodes);
    xa.check().unwrap();
    assert_eq!(xa.nr_nodes(), nodes.live());
    drop(xa);
    assert_eq!(nodes.live(), 0, "nodes leaked");
}

/// The nodes the tree of `indices` must have (invariants 4 and 5 make it a
/// function of the indices): one node per level per distinct prefix, from
/// the leaves up to the least top that reaches the largest index; none if
/// the only index is 0.
fn expected_nodes(indices: &BTreeSet<u64>) -> usize {
    let top = match indices.last() {
        None | Some(0) => return 0,
        Some(&largest) => shift_for(largest),
    };
    (0..=top)
        .step_by(XA_CHUNK_SHIFT as usize)
        .map(|shift| {
            let prefixes: BTreeSet<u64> =
                indices.iter().map(|&i| i.checked_shr(shift + XA_CHUNK_SHIFT).unwrap_or(0)).collect();
            prefixes.len()
        })
        .sum()
}

fn marks_of(xa: &Xa<'_>, index: u64) -> u8 {
    XaMark::ALL.iter().filter(|&&m| xa.get_mark(index, m)).fold(0, |set, m| set | m.bit())
}

/// Every entry with its marks, in index order.
fn contents(xa: &Xa<'_>) -> Model {
    xa.iter().map(|(index, entry)| (index, (entry, marks_of(xa, index)))).collect()
}

/// Checks the array against `model`: invariants, contents, marks, count,
/// and the node count against both the cache and the minimal tree.
fn assert_matches(xa: &Xa<'_>, model: &Model, nodes: &Nodes) {
    if let Err(err) = xa.check() {
        panic!("{err}");
    }
    assert_eq!(contents(xa), *model);
    assert_eq!(xa.len(), model.len());
    assert_eq!(xa.is_empty(), model.is_empty());
    for mark in XaMark::ALL {
        assert_eq!(xa.marked(mark), model.values().any(|&(_, m)| m & mark.bit() != 0), "{mark:?}");
        let marked: Vec<u64> = model.iter().filter(|(_, (_, m))| m & mark.bit() != 0).map(|(&i, _)| i).collect();
        assert_eq!(xa.iter_marked(mark).map(|(i, _)| i).collect::<Vec<_>>(), marked, "{mark:?}");
    }
    for (&index, &(entry, _)) in model {
        assert_eq!(xa.load(index), Some(entry), "load({index:#x})");
    }
    let indices: BTreeSet<u64> = model.keys().copied().collect();
    assert_eq!(nodes.live(), expected_nodes(&indices), "nodes for {indices:x?}");
    assert_eq!(xa.nr_nodes(), nodes.live());
}

/// Stores `indices` with entries equal to their low bits.
fn store_all(xa: &mut Xa<'_>, indices: impl IntoIterator<Item = u64>) {
    for index in indices {
        xa.store(index, index as u32).unwrap();
    }
}

#[test]
fn empty_array_holds_nothing_and_is_all_hole() {
    with_xa(|xa, nodes| {
        assert_eq!((xa.len(), xa.is_empty()), (0, true));
        assert_eq!((xa.load(0), xa.load(u64::MAX)), (None, None));
        assert_eq!(xa.find(0, u64::MAX, None), None);
        assert_eq!(xa.iter().next(), None);
        assert_eq!(xa.erase(3), None);
        xa.set_mark(0, DIRTY);
        assert!(!xa.marked(DIRTY) && !xa.get_mark(0, DIRTY));
        assert_eq!(xa.next_hole(0, u64::MAX), Some(0));
        assert_eq!(xa.next_hole(5, 3), None);
        assert_eq!(xa.prev_hole(u64::MAX, 0), Some(u64::MAX));
        assert_eq!(xa.tag_range(0, u64::MAX, DIRTY, TOWRITE), 0);
        assert_eq!(nodes.live(), 0);
    });
}

#[test]
fn lone_entry_at_index_zero_needs_no_node() {
    with_xa(|xa, nodes| {
        assert_eq!(xa.store(0, 7), Ok(None));
        assert_eq!((xa.load(0), xa.load(1), nodes.live()), (Some(7), None, 0));
        xa.set_mark(0, DIRTY);
        assert!(xa.marked(DIRTY) && xa.get_mark(0, DIRTY));
        assert_eq!(xa.store(0, 8), Ok(Some(7)));
        assert!(xa.get_mark(0, DIRTY), "replacing an entry keeps its marks");
        xa.check().unwrap();

        // A second entry moves index 0 into a leaf, marks and all ...
        assert_eq!(xa.store(1, 9), Ok(None));
        assert_eq!(nodes.live(), 1);
        assert!(xa.get_mark(0, DIRTY) && !xa.get_mark(1, DIRTY));
        xa.check().unwrap();
        // ... and erasing it brings index 0 back to the head.
        assert_eq!(xa.erase(1), Some(9));
        assert_eq!(nodes.live(), 0);
        assert!(xa.get_mark(0, DIRTY));
        xa.check().unwrap();

        assert_eq!(xa.erase(0), Some(8));
        assert!(xa.is_empty() && !xa.marked(DIRTY));
    });
}

#[test]
fn store_returns_the_replaced_entry_and_keeps_its_marks() {
    with_xa(|xa, _| {
        assert_eq!(xa.store(1000, 1), Ok(None));
        xa.set_mark(1000, WRITEBACK);
        assert_eq!(xa.store(1000, 2), Ok(Some(1)));
        assert_eq!((xa.load(1000), xa.len()), (Some(2), 1));
        assert!(xa.get_mark(1000, WRITEBACK));
    });
}

#[test]
fn index_u64_max_takes_eleven_levels_and_erasing_it_frees_them() {
    with_xa(|xa, nodes| {
        assert_eq!(xa.store(u64::MAX, 1), Ok(None));
        assert_eq!(nodes.live(), 11);
        xa.check().unwrap();
        assert_eq!((xa.load(u64::MAX), xa.load(u64::MAX - 1), xa.load(0)), (Some(1), None, None));
        assert_eq!(xa.find(0, u64::MAX, None), Some((u64::MAX, 1)));
        assert_eq!(xa.find_after(u64::MAX, u64::MAX, None), None);
        assert_eq!(xa.next_hole(u64::MAX, u64::MAX), None);
        assert_eq!(xa.next_hole(u64::MAX - 1, u64::MAX), Some(u64::MAX - 1));
        assert_eq!(xa.prev_hole(u64::MAX, 0), Some(u64::MAX - 1));
        xa.set_mark(u64::MAX, DIRTY);
        assert_eq!(xa.iter_marked(DIRTY).collect::<Vec<_>>(), [(u64::MAX, 1)]);
        assert_eq!(xa.erase(u64::MAX), Some(1));
        assert_eq!(nodes.live(), 0);
        assert!(!xa.marked(DIRTY));
    });
}

#[test]
fn tree_grows_and_shrinks_with_the_largest_index() {
    with_xa(|xa, nodes| {
        store_all(xa, [0, 63]);
        assert_eq!(nodes.live(), 1, "one leaf");
        store_all(xa, [64]);
        assert_eq!(nodes.live(), 3, "two leaves under a shift-6 top");
        store_all(xa, [4096]);
        // Leaves for 0-63, 64-127, 4096-4159; their parents at shift 6;
        // the top at shift 12.
        assert_eq!(nodes.live(), 6);
        xa.check().unwrap();
        assert_eq!(xa.erase(4096), Some(4096));
        assert_eq!(nodes.live(), 3);
        assert_eq!(xa.erase(64), Some(64));
        assert_eq!(nodes.live(), 1);
        assert_eq!(xa.erase(63), Some(63));
        assert_eq!(nodes.live(), 0, "index 0 back in the head");
        assert_eq!(xa.load(0), Some(0));
    });
}

#[test]
fn erasing_every_entry_frees_every_node() {
    with_xa(|xa, nodes| {
        let indices: Vec<u64> = (0..3000).map(|i| i * 7).chain([1 << 20, 1 << 40, u64::MAX - 5, u64::MAX]).collect();
        store_all(xa, indices.iter().copied());
        assert_eq!(xa.len(), indices.len());
        xa.check().unwrap();
        // Erase from both ends towards the middle.
        for (n, &index) in indices.iter().enumerate().step_by(2).chain(indices.iter().enumerate().skip(1).step_by(2)) {
            assert_eq!(xa.erase(index), Some(index as u32), "erase #{n}");
            assert_eq!(xa.erase(index), None);
        }
        xa.check().unwrap();
        assert!(xa.is_empty());
        assert_eq!(nodes.live(), 0);
    });
}

#[test]
fn marks_propagate_to_the_root_and_go_with_the_last_marked_entry() {
    with_xa(|xa, _| {
        store_all(xa, [5, 70, 100_000]);
        xa.set_mark(70, DIRTY);
        xa.set_mark(100_000, DIRTY);
        xa.check().unwrap();
        assert!(xa.marked(DIRTY) && !xa.marked(WRITEBACK));
        xa.clear_mark(70, DIRTY);
        xa.check().unwrap();
        assert!(xa.marked(DIRTY) && !xa.get_mark(70, DIRTY) && xa.get_mark(100_000, DIRTY));
        xa.clear_mark(100_000, DIRTY);
        xa.check().unwrap();
        assert!(!xa.marked(DIRTY));

        xa.set_mark(5, TOWRITE);
        assert_eq!(xa.erase(5), Some(5));
        xa.check().unwrap();
        assert!(!xa.marked(TOWRITE), "erasing an entry clears its marks");
        assert_eq!(xa.store(5, 6), Ok(None));
        assert!(!xa.get_mark(5, TOWRITE), "a new entry starts unmarked");
    });
}

#[test]
fn marking_a_hole_does_nothing() {
    with_xa(|xa, nodes| {
        store_all(xa, [10]);
        for index in [0, 11, 64, 1 << 40, u64::MAX] {
            xa.set_mark(index, DIRTY);
            assert!(!xa.get_mark(index, DIRTY));
        }
        assert!(!xa.marked(DIRTY));
        assert_eq!((xa.len(), nodes.live()), (1, 1));
    });
}

#[test]
fn find_respects_start_max_and_filter() {
    with_xa(|xa, _| {
        store_all(xa, [10, 20, 1 << 33]);
        xa.set_mark(1 << 33, DIRTY);
        assert_eq!(xa.find(11, 19, None), None);
        assert_eq!(xa.find(11, 20, None), Some((20, 20)));
        assert_eq!(xa.find(21, u64::MAX, None), Some((1 << 33, 0)));
        assert_eq!(xa.find(5, 3, None), None);
        assert_eq!(xa.find(0, u64::MAX, Some(DIRTY)), Some((1 << 33, 0)));
        assert_eq!(xa.find(0, (1 << 33) - 1, Some(DIRTY)), None);
        assert_eq!(xa.find(0, u64::MAX, Some(WRITEBACK)), None);
        assert_eq!(xa.find_after(10, u64::MAX, None), Some((20, 20)));
        assert_eq!(xa.find_after(20, u64::MAX, None), Some((1 << 33, 0)));
        assert_eq!(xa.find_after(1 << 33, u64::MAX, None), None);
        assert_eq!(xa.find_after(u64::MAX, u64::MAX, None), None);
    });
}

#[test]
fn a_marked_entry_is_found_among_many_unmarked() {
    with_xa(|xa, _| {
        store_all(xa, 0..65536);
        xa.set_mark(40_000, DIRTY);
        xa.set_mark(65_535, DIRTY);
        assert_eq!(xa.find(0, u64::MAX, Some(DIRTY)), Some((40_000, 40_000)));
        assert_eq!(xa.find_after(40_000, u64::MAX, Some(DIRTY)), Some((65_535, 65_535)));
        assert_eq!(xa.iter_marked(DIRTY).count(), 2);
    });
}

#[test]
fn iterators_go_in_index_order_within_their_range() {
    with_xa(|xa, _| {
        let indices = [u64::MAX, 3, 1 << 50, 64, 0, 4095, 4096];
        store_all(xa, indices);
        let mut sorted = indices.to_vec();
        sorted.sort_unstable();
        assert_eq!(xa.iter().map(|(i, _)| i).collect::<Vec<_>>(), sorted);
        assert_eq!(xa.iter_range(3, 4096, None).map(|(i, _)| i).collect::<Vec<_>>(), [3, 64, 4095, 4096]);
        assert_eq!(xa.iter_range(4097, u64::MAX - 1, None).map(|(i, _)| i).collect::<Vec<_>>(), [1 << 50]);
        xa.set_mark(0, TOWRITE);
        xa.set_mark(u64::MAX, TOWRITE);
        assert_eq!(xa.iter_marked(TOWRITE).map(|(i, _)| i).collect::<Vec<_>>(), [0, u64::MAX]);
        assert_eq!(xa.iter_range(1, u64::MAX, Some(TOWRITE)).map(|(i, _)| i).collect::<Vec<_>>(), [u64::MAX]);
    });
}

#[test]
fn holes_are_found_across_full_leaves_and_beyond_the_top() {
    with_xa(|xa, _| {
        store_all(xa, 0..200);
        assert_eq!(xa.next_hole(0, u64::MAX), Some(200));
        assert_eq!(xa.next_hole(5, 199), None);
        assert_eq!(xa.prev_hole(199, 0), None);
        assert_eq!(xa.prev_hole(250, 0), Some(250));
        store_all(xa, 300..=400);
        assert_eq!(xa.prev_hole(400, 0), Some(299));
        assert_eq!(xa.prev_hole(400, 300), None);
        assert_eq!(xa.next_hole(300, 1000), Some(401));
        assert_eq!(xa.next_hole(150, 350), Some(200));
        assert_eq!(xa.prev_hole(350, 150), Some(299));
    });
    with_xa(|xa, _| {
        // Full up to the top's reach: the hole is the first index past it.
        store_all(xa, 0..4096);
        assert_eq!(xa.next_hole(0, 4095), None);
        assert_eq!(xa.next_hole(0, u64::MAX), Some(4096));
        assert_eq!(xa.prev_hole(4095, 0), None);
        assert_eq!(xa.prev_hole(5000, 0), Some(5000));
    });
    with_xa(|xa, _| {
        store_all(xa, [0]);
        assert_eq!((xa.next_hole(0, 0), xa.next_hole(0, 9)), (None, Some(1)));
        assert_eq!((xa.prev_hole(0, 0), xa.prev_hole(3, 0)), (None, Some(3)));
        store_all(xa, [u64::MAX - 1, u64::MAX]);
        assert_eq!(xa.next_hole(u64::MAX - 1, u64::MAX), None);
        assert_eq!(xa.prev_hole(u64::MAX, u64::MAX - 1), None);
        assert_eq!(xa.prev_hole(u64::MAX, 0), Some(u64::MAX - 2));
    });
}

#[test]
fn tag_range_tags_the_marked_entries_in_range_only() {
    with_xa(|xa, _| {
        store_all(xa, 0..300);
        for index in (0..300).step_by(3) {
            xa.set_mark(index, DIRTY);
        }
        // Multiples of 3 in [10, 200]: 12, 15, ..., 198.
        assert_eq!(xa.tag_range(10, 200, DIRTY, TOWRITE), 63);
        xa.check().unwrap();
        let towrite: Vec<u64> = xa.iter_marked(TOWRITE).map(|(i, _)| i).collect();
        assert_eq!(towrite, (12..=198).step_by(3).collect::<Vec<_>>());
        assert_eq!(xa.tag_range(10, 200, DIRTY, TOWRITE), 63, "counts entries already tagged");
        assert_eq!(xa.tag_range(201, 10, DIRTY, TOWRITE), 0);
        assert_eq!(xa.tag_range(0, u64::MAX, WRITEBACK, TOWRITE), 0);
    });
    with_xa(|xa, _| {
        store_all(xa, [0]);
        xa.set_mark(0, DIRTY);
        assert_eq!(xa.tag_range(1, 5, DIRTY, TOWRITE), 0);
        assert_eq!(xa.tag_range(0, 5, DIRTY, TOWRITE), 1);
        assert!(xa.get_mark(0, TOWRITE));
    });
}

/// Makes each node allocation of `store(index)` fail in turn and checks the
/// array is unchanged each time, then that the store succeeds with exactly
/// the nodes the minimal tree needs.
fn assert_failed_stores_change_nothing(xa: &mut Xa<'_>, nodes: &Nodes, index: u64) {
    let before = contents(xa);
    let mut indices: BTreeSet<u64> = before.keys().copied().collect();
    let live = nodes.live();
    indices.insert(index);
    let needed = expected_nodes(&indices) - live;
    assert!(needed > 0, "the store should need nodes");
    for n in 0..needed {
        nodes.fail_nth(n);
        assert_eq!(xa.store(index, 99), Err(XaError::NoMemory), "allocation {n} of {needed} failed");
        nodes.fail_none();
        assert_matches(xa, &before, nodes);
    }
    nodes.fail_nth(needed);
    assert_eq!(xa.store(index, 99), Ok(None), "needs no more than {needed} nodes");
    nodes.fail_none();
    let mut after = before;
    after.insert(index, (99, 0));
    assert_matches(xa, &after, nodes);
}

#[test]
fn failed_node_allocation_leaves_the_array_unchanged() {
    // From empty: all eleven levels.
    with_xa(|xa, nodes| assert_failed_stores_change_nothing(xa, nodes, u64::MAX));
    // From an entry in the head, which must move into a leaf first.
    with_xa(|xa, nodes| {
        store_all(xa, [0]);
        xa.set_mark(0, DIRTY);
        assert_failed_stores_change_nothing(xa, nodes, 1 << 20);
    });
    // From a tree that must grow and make a new path down.
    with_xa(|xa, nodes| {
        store_all(xa, [0, 5, 64, 4097]);
        xa.set_mark(64, WRITEBACK);
        xa.set_mark(4097, DIRTY);
        assert_failed_stores_change_nothing(xa, nodes, 3 << 30);
    });
    // Into a tree tall enough, along a path partly there.
    with_xa(|xa, nodes| {
        store_all(xa, [1, 1 << 30]);
        assert_failed_stores_change_nothing(xa, nodes, (1 << 30) + (5 << 12));
    });
}

#[test]
fn destroy_frees_every_node_and_leaves_a_usable_array() {
    with_xa(|xa, nodes| {
        store_all(xa, (0..1000).map(|i| i * 1000));
        xa.set_mark(5000, DIRTY);
        assert!(nodes.live() > 0);
        xa.destroy();
        xa.check().unwrap();
        assert!(xa.is_empty() && !xa.marked(DIRTY));
        assert_eq!(nodes.live(), 0);
        store_all(xa, [77]);
        assert_eq!(xa.load(77), Some(77));
    });
}

#[test]
fn dropping_a_populated_array_frees_its_nodes() {
    let nodes = Nodes::default();
    let mut xa = XArray::new(&nodes);
    store_all(&mut xa, (0..5000).map(|i| i * 97));
    assert!(nodes.live() > 0);
    drop(xa);
    assert_eq!(nodes.live(), 0);
}

/// Builds an array of `indices` with 64 marked `WRITEBACK` (if present),
/// breaks it with `corrupt`, and returns what `check` says of it.
fn check_after(indices: &[u64], corrupt: impl FnOnce(&mut Xa<'_>, &Nodes)) -> Result<(), XaCheckError> {
    let nodes = Nodes::default();
    let mut xa = XArray::new(&nodes);
    store_all(&mut xa, indices.iter().copied());
    xa.set_mark(64, WRITEBACK);
    xa.check().unwrap();
    corrupt(&mut xa, &nodes);
    let found = xa.check();
    drop(xa);
    assert_eq!(nodes.live(), 0);
    found
}

fn top<'x>(xa: &'x mut Xa<'_>) -> &'x mut XaNode<u32> {
    match &mut xa.head {
        Head::Node(top) => top,
        _ => panic!("no top node"),
    }
}

fn child(node: &mut XaNode<u32>, offset: usize) -> &mut XaNode<u32> {
    match &mut node.slots {
        Slots::Interior(children) => children[offset].as_mut().expect("no child there"),
        Slots::Leaf(_) => panic!("a leaf has no children"),
    }
}

fn take_entry(leaf: &mut XaNode<u32>, offset: usize) {
    match &mut leaf.slots {
        Slots::Leaf(entries) => entries[offset] = None,
        Slots::Interior(_) => panic!("not a leaf"),
    }
    leaf.present &= !(1 << offset);
}

/// `check` reports each kind of damage it promises to find (every other
/// test runs it on sound trees only).
#[test]
fn check_reports_each_broken_invariant() {
    use XaCheckError::*;
    let (dirty, writeback) = (DIRTY.bit(), WRITEBACK.bit());
    // [5, 64]: a top at shift 6 over the leaves of 0-63 and 64-127.
    assert_eq!(
        check_after(&[5, 64], |xa, _| xa.marks |= dirty),
        Err(BadRootMarks { stored: dirty | writeback, computed: writeback })
    );
    assert_eq!(check_after(&[5, 64], |xa, _| xa.count += 1), Err(BadCount { stored: 3, computed: 2 }));
    assert_eq!(
        check_after(&[5, 64], |xa, _| child(top(xa), 0).marks.assign(DIRTY, 6, true)),
        Err(BadMark { base: 0, shift: 0, offset: 6, mark: DIRTY })
    );
    assert_eq!(
        check_after(&[5, 64], |xa, _| top(xa).marks.assign(WRITEBACK, 1, false)),
        Err(BadMark { base: 0, shift: 6, offset: 1, mark: WRITEBACK })
    );
    assert_eq!(
        check_after(&[5, 64], |xa, _| child(top(xa), 0).present |= 1 << 7),
        Err(BadOccupancy { base: 0, shift: 0 })
    );
    assert_eq!(check_after(&[5, 64], |xa, _| take_entry(child(top(xa), 0), 5)), Err(EmptyNode { base: 0, shift: 0 }));
    assert_eq!(
        check_after(&[5, 64], |xa, _| child(top(xa), 1).shift = 6),
        Err(BadShift { base: 64, shift: 6, expected: 0 })
    );
    assert_eq!(check_after(&[5, 64], |xa, _| top(xa).shift = 7), Err(BadTopShift { shift: 7 }));
    assert_eq!(
        check_after(&[5, 64], |xa, _| child(top(xa), 0).slots = Slots::Interior([const { None }; XA_CHUNK_SIZE])),
        Err(WrongKind { base: 0, shift: 0 })
    );
    // [0, 1]: one leaf; without 1, index 0 belongs in the head.
    assert_eq!(check_after(&[0, 1], |xa, _| take_entry(top(xa), 1)), Err(EntryZeroInNode));
    // [5, 4096]: a top at shift 12; without its slot 1 it is a level too tall.
    assert_eq!(
        check_after(&[5, 4096], |xa, nodes| {
            let top = top(xa);
            if let Slots::Interior(children) = &mut top.slots
                && let Some(subtree) = children[1].take()
            {
                free_subtree(subtree, nodes);
            }
            top.present = 1;
        }),
        Err(NotShrunk { shift: 12 })
    );
}

#[test]
fn xarray_can_live_behind_a_lock_shared_between_cpus() {
    fn send_and_sync<S: Send + Sync>() {}
    send_and_sync::<Xa<'static>>();
}

/// An index: one of the model's, by position, or any.
#[derive(Clone, Copy, Debug)]
enum Pick {
    Present(usize),
    Index(u64),
}

impl Pick {
    fn resolve(self, model: &Model) -> u64 {
        match self {
            Pick::Present(n) if !model.is_empty() => model.keys().nth(n % model.len()).copied().unwrap_or(0),
            Pick::Present(n) => n as u64,
            Pick::Index(index) => index,
        }
    }
}

/// Indices that share leaves, sit on level boundaries, or reach the top of
/// the range.
fn index() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0..130u64,
        3 => (0..3u64, 0..130u64).prop_map(|(block, i)| (block << 12) | i),
        1 => (0..64u32).prop_map(|bit| 1 << bit),
        1 => (1..64u32).prop_map(|bit| (1 << bit) - 1),
        1 => (0..130u64).prop_map(|i| u64::MAX - i),
        1 => any::<u64>(),
    ]
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![2 => any::<usize>().prop_map(Pick::Present), 3 => index().prop_map(Pick::Index)]
}

/// How far a range reaches from its start.
fn span() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0..200u64, 1 => any::<u64>()]
}

fn mark() -> impl Strategy<Value = XaMark> {
    (0..XA_MAX_MARKS).prop_map(|m| XaMark::ALL[m])
}

#[derive(Clone, Debug)]
enum Op {
    Store {
        at: Pick,
        entry: u32,
        /// Which node allocation of this store fails, if any.
        fail: Option<usize>,
    },
    Erase(Pick),
    /// Stores `len` consecutive indices (up to `u64::MAX`), filling leaves.
    StoreRun {
        start: Pick,
        len: u64,
    },
    /// Erases `len` consecutive indices.
    EraseRun {
        start: Pick,
        len: u64,
    },
    SetMark(Pick, XaMark),
    ClearMark(Pick, XaMark),
    Load(Pick),
    Find {
        start: Pick,
        span: u64,
        filter: Option<XaMark>,
        after: bool,
    },
    Iter {
        start: Pick,
        span: u64,
        filter: Option<XaMark>,
    },
    TagRange {
        start: Pick,
        span: u64,
        from: XaMark,
        to: XaMark,
    },
    NextHole {
        start: Pick,
        span: u64,
    },
    PrevHole {
        start: Pick,
        span: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (pick(), any::<u32>(), prop::option::weighted(0.15, 0usize..6))
            .prop_map(|(at, entry, fail)| Op::Store { at, entry, fail }),
        4 => pick().prop_map(Op::Erase),
        1 => (pick(), 1..200u64).prop_map(|(start, len)| Op::StoreRun { start, len }),
        1 => (pick(), 1..200u64).prop_map(|(start, len)| Op::EraseRun { start, len }),
        4 => (pick(), mark()).prop_map(|(at, mark)| Op::SetMark(at, mark)),
        2 => (pick(), mark()).prop_map(|(at, mark)| Op::ClearMark(at, mark)),
        1 => pick().prop_map(Op::Load),
        3 => (pick(), span(), prop::option::of(mark()), any::<bool>())
            .prop_map(|(start, span, filter, after)| Op::Find { start, span, filter, after }),
        2 => (pick(), span(), prop::option::of(mark())).prop_map(|(start, span, filter)| Op::Iter { start, span, filter }),
        2 => (pick(), span(), mark(), mark()).prop_map(|(start, span, from, to)| Op::TagRange { start, span, from, to }),
        2 => (pick(), span()).prop_map(|(start, span)| Op::NextHole { start, span }),
        2 => (pick(), span()).prop_map(|(start, span)| Op::PrevHole { start, span }),
    ]
}

fn has(filter: Option<XaMark>, marks: u8) -> bool {
    filter.is_none_or(|mark| marks & mark.bit() != 0)
}

/// The model's first index in `[start, max]` without an entry.
fn model_next_hole(model: &Model, start: u64, max: u64) -> Option<u64> {
    let mut index = start;
    while index <= max {
        if !model.contains_key(&index) {
            return Some(index);
        }
        index = index.checked_add(1)?;
    }
    None
}

/// The model's last index in `[min, start]` without an entry.
fn model_prev_hole(model: &Model, start: u64, min: u64) -> Option<u64> {
    let mut index = start;
    while index >= min {
        if !model.contains_key(&index) {
            return Some(index);
        }
        index = index.checked_sub(1)?;
    }
    None
}

fn run_ops(ops: &[Op]) {
    let nodes = Nodes::default();
    let mut xa: Xa<'_> = XArray::new(&nodes);
    let mut model = Model::new();
    for op in ops {
        match *op {
            Op::Store { at, entry, fail } => {
                let index = at.resolve(&model);
                let mut indices: BTreeSet<u64> = model.keys().copied().collect();
                let before = expected_nodes(&indices);
                indices.insert(index);
                let needed = expected_nodes(&indices) - before;
                if let Some(n) = fail {
                    nodes.fail_nth(n);
                }
                let stored = xa.store(index, entry);
                nodes.fail_none();
                if fail.is_some_and(|n| n < needed) {
                    assert_eq!(stored, Err(XaError::NoMemory), "store at {index:#x}");
                } else {
                    let old = model.get(&index).map(|&(old, _)| old);
                    assert_eq!(stored, Ok(old), "store at {index:#x}");
                    model.entry(index).or_insert((0, 0)).0 = entry;
                }
            }
            Op::Erase(at) => {
                let index = at.resolve(&model);
                assert_eq!(xa.erase(index), model.remove(&index).map(|(entry, _)| entry), "erase {index:#x}");
            }
            Op::StoreRun { start, len } => {
                let start = start.resolve(&model);
                for index in (start..=start.saturating_add(len - 1)).take(len as usize) {
                    let old = model.get(&index).map(|&(old, _)| old);
                    assert_eq!(xa.store(index, index as u32), Ok(old), "store at {index:#x}");
                    model.entry(index).or_insert((0, 0)).0 = index as u32;
                }
            }
            Op::EraseRun { start, len } => {
                let start = start.resolve(&model);
                for index in (start..=start.saturating_add(len - 1)).take(len as usize) {
                    assert_eq!(xa.erase(index), model.remove(&index).map(|(entry, _)| entry), "erase {index:#x}");
                }
            }
            Op::SetMark(at, mark) => {
                let index = at.resolve(&model);
                xa.set_mark(index, mark);
                if let Some((_, marks)) = model.get_mut(&index) {
                    *marks |= mark.bit();
                }
            }
            Op::ClearMark(at, mark) => {
                let index = at.resolve(&model);
                xa.clear_mark(index, mark);
                if let Some((_, marks)) = model.get_mut(&index) {
                    *marks &= !mark.bit();
                }
            }
            Op::Load(at) => {
                let index = at.resolve(&model);
                assert_eq!(xa.load(index), model.get(&index).map(|&(entry, _)| entry));
                for mark in XaMark::ALL {
                    assert_eq!(xa.get_mark(index, mark), model.get(&index).is_some_and(|&(_, m)| has(Some(mark), m)));
                }
            }
            Op::Find { start, span, filter, after } => {
                let start = start.resolve(&model);
                let max = start.saturating_add(span);
                let (found, from) = if after {
                    (xa.find_after(start, max, filter), start.checked_add(1))
                } else {
                    (xa.find(start, max, filter), Some(start))
                };
                let want = from.filter(|&from| from <= max).and_then(|from| {
                    model.range(from..=max).find(|&(_, &(_, m))| has(filter, m)).map(|(&i, &(entry, _))| (i, entry))
                });
                assert_eq!(found, want, "find from {start:#x} to {max:#x} after {after} {filter:?}");
            }
            Op::Iter { start, span, filter } => {
                let start = start.resolve(&model);
                let max = start.saturating_add(span);
                let want: Vec<(u64, u32)> = model
                    .range(start..=max)
                    .filter(|&(_, &(_, m))| has(filter, m))
                    .map(|(&i, &(e, _))| (i, e))
                    .collect();
                assert_eq!(xa.iter_range(start, max, filter).collect::<Vec<_>>(), want);
            }
            Op::TagRange { start, span, from, to } => {
                let start = start.resolve(&model);
                let end = start.saturating_add(span);
                let mut want = 0;
                for (_, marks) in model.range_mut(start..=end).map(|(_, v)| v).filter(|(_, m)| has(Some(from), *m)) {
                    *marks |= to.bit();
                    want += 1;
                }
                assert_eq!(xa.tag_range(start, end, from, to), want);
            }
            Op::NextHole { start, span } => {
                let start = start.resolve(&model);
                let max = start.saturating_add(span);
                assert_eq!(xa.next_hole(start, max), model_next_hole(&model, start, max), "{start:#x}..={max:#x}");
            }
            Op::PrevHole { start, span } => {
                let start = start.resolve(&model);
                let min = start.saturating_sub(span);
                assert_eq!(xa.prev_hole(start, min), model_prev_hole(&model, start, min), "{min:#x}..={start:#x}");
            }
        }
        assert_matches(&xa, &model, &nodes);
    }
    drop(xa);
    assert_eq!(nodes.live(), 0, "nodes leaked");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random operation sequences, with node allocations failing now and
    /// then, give exactly the model's results, keep every invariant, and
    /// hold exactly the nodes of the minimal tree.
    #[test]
    fn random_operations_match_a_btreemap_model(ops in prop::collection::vec(op(), 1..120)) {
        run_ops(&ops);
    }
}
