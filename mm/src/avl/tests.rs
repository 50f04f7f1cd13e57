//! Host tests of the intrusive AVL tree against a sorted-vector model.

use std::cell::Cell;

use proptest::prelude::*;

use super::*;

/// A test node: a key and a weight, augmented with the largest weight in
/// the subtree.
struct Item {
    link: AvlLink<ItemAdapter>,
    key: Cell<u64>,
    weight: Cell<u64>,
}

struct ItemAdapter;

// SAFETY: `link` returns the node's own `link` field.
unsafe impl AvlAdapter for ItemAdapter {
    type Node = Item;
    type Aug = u64;

    fn link(node: &Item) -> &AvlLink<Self> {
        &node.link
    }

    fn key(node: &Item) -> u64 {
        node.key.get()
    }

    fn augment(node: &Item, left: Option<u64>, right: Option<u64>) -> u64 {
        node.weight.get().max(left.unwrap_or(0)).max(right.unwrap_or(0))
    }
}

type Tree = AvlTree<ItemAdapter>;

fn item(key: u64, weight: u64) -> Unlinked<ItemAdapter> {
    let mem = NonNull::from(Box::leak(Box::new(std::mem::MaybeUninit::<Item>::uninit()))).cast();
    let node = Item { link: AvlLink::new(), key: Cell::new(key), weight: Cell::new(weight) };
    // SAFETY: fresh, leaked heap memory for one `Item`, freed by `free`.
    unsafe { Unlinked::new_in(mem, node) }
}

fn free(node: Unlinked<ItemAdapter>) {
    // SAFETY: `item` made the node with `Box::leak` of this layout.
    drop(unsafe { Box::from_raw(node.into_raw().as_ptr().cast::<std::mem::MaybeUninit<Item>>()) });
}

fn keys(tree: &Tree) -> Vec<(u64, u64)> {
    tree.iter().map(|n| (n.key.get(), n.weight.get())).collect()
}

fn empty(tree: &mut Tree) {
    tree.drain(free);
    assert!(tree.is_empty());
}

#[test]
fn sequential_inserts_stay_balanced_and_ordered() {
    let mut tree = Tree::new();
    for key in 0..1000 {
        tree.insert(item(key, key % 7));
    }
    tree.check().unwrap();
    assert_eq!(tree.len(), 1000);
    // An AVL tree of 1000 nodes is at most 1.44 log2(1002) < 15 high.
    assert!(tree.root().map_or(0, |r| A::link(r).height.get()) <= 14);
    assert_eq!(tree.augmented(tree.root().unwrap()), 6);
    assert_eq!(tree.first().unwrap().key.get(), 0);
    assert_eq!(tree.last().unwrap().key.get(), 999);
    assert_eq!(tree.lower_bound(500).unwrap().key.get(), 500);
    assert!(tree.lower_bound(1000).is_none());
    empty(&mut tree);
}

type A = ItemAdapter;

#[test]
fn equal_keys_keep_insertion_order() {
    let mut tree = Tree::new();
    for weight in 0..5 {
        tree.insert(item(7, weight));
    }
    tree.insert(item(3, 9));
    assert_eq!(keys(&tree), [(3, 9), (7, 0), (7, 1), (7, 2), (7, 3), (7, 4)]);
    empty(&mut tree);
}

#[test]
fn cursor_removes_and_moves_to_the_next_node() {
    let mut tree = Tree::new();
    for key in [5, 1, 9, 3, 7] {
        tree.insert(item(key, 0));
    }
    let mut cursor = tree.cursor_mut_lower_bound(4);
    assert_eq!(cursor.get().map(|n| n.key.get()), Some(5));
    assert_eq!(cursor.peek_prev().map(|n| n.key.get()), Some(3));
    let removed = cursor.remove().unwrap();
    assert_eq!(removed.key.get(), 5);
    assert_eq!(cursor.get().map(|n| n.key.get()), Some(7));
    cursor.move_next();
    cursor.move_next();
    assert!(cursor.get().is_none());
    cursor.move_next();
    assert_eq!(cursor.get().map(|n| n.key.get()), Some(1));
    free(removed);
    tree.check().unwrap();
    assert_eq!(keys(&tree), [(1, 0), (3, 0), (7, 0), (9, 0)]);
    empty(&mut tree);
}

#[test]
fn propagate_refreshes_augmented_values_and_check_sees_when_it_is_missed() {
    let mut tree = Tree::new();
    for key in 0..31 {
        tree.insert(item(key, 1));
    }
    let mut cursor = tree.cursor_mut_lower_bound(17);
    cursor.get().unwrap().weight.set(50);
    assert!(matches!(cursor.tree().check(), Err(AvlCheckError::BadAugment { .. })));
    cursor.propagate();
    tree.check().unwrap();
    assert_eq!(tree.augmented(tree.root().unwrap()), 50);
    empty(&mut tree);
}

#[test]
fn check_reports_a_key_changed_out_of_order() {
    let mut tree = Tree::new();
    for key in 0..8 {
        tree.insert(item(key * 10, 0));
    }
    tree.lower_bound(30).unwrap().key.set(55);
    assert_eq!(tree.check(), Err(AvlCheckError::Unsorted { key: 40 }));
    tree.lower_bound(55).unwrap().key.set(30);
    tree.check().unwrap();
    empty(&mut tree);
}

#[test]
fn drain_hands_out_every_node_unlinked() {
    let mut tree = Tree::new();
    for key in 0..100 {
        tree.insert(item(key * 3 % 100, 0));
    }
    let mut seen = Vec::new();
    tree.drain(|node| {
        assert!(A::link(&node).parent.get().is_none());
        seen.push(node.key.get());
        free(node);
    });
    seen.sort_unstable();
    assert_eq!(seen, (0..100).collect::<Vec<_>>());
    assert_eq!((tree.len(), tree.check()), (0, Ok(())));
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u64, u64),
    Remove(u64),
    Reweigh(u64, u64),
    NextMatch(Option<u64>, u64),
    PrevMatch(Option<u64>, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..64u64, 0..100u64).prop_map(|(k, w)| Op::Insert(k, w)),
        2 => (0..64u64).prop_map(Op::Remove),
        1 => (0..64u64, 0..100u64).prop_map(|(k, w)| Op::Reweigh(k, w)),
        1 => (prop::option::of(0..64u64), 0..100u64).prop_map(|(k, w)| Op::NextMatch(k, w)),
        1 => (prop::option::of(0..64u64), 0..100u64).prop_map(|(k, w)| Op::PrevMatch(k, w)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random operations against a sorted vector, checking every invariant
    /// after each.
    #[test]
    fn random_operations_match_a_sorted_vector(ops in prop::collection::vec(op(), 1..200)) {
        let mut tree = Tree::new();
        let mut model: Vec<(u64, u64)> = Vec::new();
        for op in ops {
            match op {
                Op::Insert(k, w) => {
                    tree.insert(item(k, w));
                    let at = model.partition_point(|&(mk, _)| mk <= k);
                    model.insert(at, (k, w));
                }
                Op::Remove(k) => {
                    let removed = tree.cursor_mut_lower_bound(k).remove();
                    let at = model.partition_point(|&(mk, _)| mk < k);
                    prop_assert_eq!(removed.as_ref().map(|n| n.key.get()), model.get(at).map(|m| m.0));
                    if let Some(node) = removed {
                        model.remove(at);
                        free(node);
                    }
                }
                Op::Reweigh(k, w) => {
                    let mut cursor = tree.cursor_mut_lower_bound(k);
                    if let Some(node) = cursor.get() {
                        node.weight.set(w);
                        cursor.propagate();
                        let at = model.partition_point(|&(mk, _)| mk < k);
                        model[at].1 = w;
                    }
                }
                Op::NextMatch(after, min) => {
                    let from = after.and_then(|k| tree.lower_bound(k));
                    // `None` (also when `after` has no node) starts at the first.
                    let start = match (after, from) {
                        (Some(k), Some(_)) => model.partition_point(|&(mk, _)| mk < k) + 1,
                        _ => 0,
                    };
                    let found = tree.next_match(from, |aug| aug >= min, |n| n.weight.get() >= min);
                    let expected = model.iter().skip(start).find(|m| m.1 >= min).copied();
                    prop_assert_eq!(found.map(|n| (n.key.get(), n.weight.get())), expected);
                }
                Op::PrevMatch(before, min) => {
                    let from = before.and_then(|k| tree.lower_bound(k));
                    let end = match (before, from) {
                        (Some(k), Some(_)) => model.partition_point(|&(mk, _)| mk < k),
                        _ => model.len(),
                    };
                    let found = tree.prev_match(from, |aug| aug >= min, |n| n.weight.get() >= min);
                    let expected = model[..end].iter().rev().find(|m| m.1 >= min).copied();
                    prop_assert_eq!(found.map(|n| (n.key.get(), n.weight.get())), expected);
                }
            }
            prop_assert_eq!(tree.check(), Ok(()));
            prop_assert_eq!(keys(&tree), model.clone());
        }
        empty(&mut tree);
    }
}
