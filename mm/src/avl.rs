//! Intrusive AVL trees augmented with a per-subtree value: the balanced
//! search tree under the VMA tree ([`crate::vma`]) (Linux `lib/rbtree.c`
//! and `include/linux/rbtree_augmented.h`). [`crate::vmalloc`] still has
//! its own copy, which its tests reach into; it is meant to move here.
//!
//! A node is the user's struct; it embeds an [`AvlLink`] (parent, two
//! children, height and the augmented value) and an [`AvlAdapter`] tells the
//! tree where the link is, what the node's key is and how to recompute the
//! augmented value of a node from the node and its children's values (Linux
//! `RB_DECLARE_CALLBACKS` with its `compute` function). The tree is ordered
//! by key, equal keys in insertion order.
//!
//! # Invariants
//!
//! After every public method returns ([`AvlTree::check`] verifies 1-4):
//!
//! 1. Parent links are right: a node's children point back at it, and the
//!    root has no parent.
//! 2. A node's stored height is one more than its taller child's, and the
//!    children's heights differ by at most one, so the height is at most
//!    `1.44 log2(n + 2)` and every operation is `O(log n)`.
//! 3. Keys do not decrease in in-order.
//! 4. Every node's augmented value is what [`AvlAdapter::augment`] computes
//!    from it and its children's values, as long as the user called
//!    [`CursorMut::propagate`] after changing anything `augment` reads (the
//!    tree cannot see such changes; `check` reports what was missed).
//! 5. **Node ownership.** Every pointer in a link or in the root points to
//!    a live node linked into the same tree; a node is linked into at most
//!    one tree and is handed out unlinked only as an [`Unlinked`], which is
//!    its unique owner. The tree never frees memory: nodes come in and go
//!    out as [`Unlinked`] values whose storage the user manages.
//!
//! # Safety model
//!
//! All raw pointer work of the AVL users lives here. Node references handed
//! out are shared (`&Node`) and borrow the tree (or the cursor), so while
//! one exists the tree cannot change and the node cannot be freed; links are
//! `Cell`s, so the tree rewrites them through shared references, and node
//! fields the user wants to change while linked must be `Cell`s too. Nothing
//! hands out `&mut` to a linked node. Invariant 5 is kept by the safe API
//! alone; the user's `unsafe` is limited to creating an [`Unlinked`] from
//! fresh memory ([`Unlinked::new_in`]) and giving its memory back
//! ([`Unlinked::into_raw`] then the allocator's free), plus the one-line
//! `unsafe impl AvlAdapter`. Misbehaving callbacks (a key that changes
//! while linked, an `augment` that panics) cost correctness, which `check`
//! reports, never memory safety: callbacks run only while the links are
//! consistent.
//!
//! # Locking
//!
//! None: a tree is a plain value and its owner serializes access
//! (`&mut self` for every change).
//!
//! # Differences from Linux
//!
//! - **AVL instead of red-black.** Lookups are a little faster (a tree at
//!   most 1.44 log n high instead of 2 log n) and erase is simpler; updates
//!   recompute heights and augmented values on the whole path to the root,
//!   where Linux's `augment_propagate` stops early once a value is
//!   unchanged.
//! - **Keys are part of the tree.** Linux leaves the descent to each user
//!   (`rb_find()`, open-coded walks); here [`AvlAdapter::key`] orders
//!   insertion and the searches ([`AvlTree::lower_bound`],
//!   [`AvlTree::first_where`]). Augmented searches
//!   ([`AvlTree::next_match`], [`AvlTree::prev_match`]) replace the
//!   open-coded descents of `find_vmap_lowest_match()` and the old
//!   `unmapped_area()`.
//! - **Changes go through a cursor** ([`CursorMut`]), Linux's
//!   `rb_erase_augmented()` and `augment->propagate()` on a node the caller
//!   found.

use core::cell::Cell;
use core::fmt;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;

/// How a node type lives in an [`AvlTree`] (Linux's `rb_node` embedding,
/// `container_of()` and `struct rb_augment_callbacks`).
///
/// # Safety
/// [`AvlAdapter::link`] must return a link embedded in `node` itself (a
/// field of it), the same one on every call, and never a link shared with
/// another node: the tree stores pointers to `node` in it and relies on
/// reaching exactly the links it wrote.
pub unsafe trait AvlAdapter: Sized {
    /// The node type.
    type Node;
    /// The augmented value of a subtree (Linux `rb_subtree_gap`,
    /// `subtree_max_size`); `()` for a plain tree.
    type Aug: Copy + Default + PartialEq + fmt::Debug;

    /// The node's link.
    fn link(node: &Self::Node) -> &AvlLink<Self>;

    /// The key the tree is ordered by. It must not change while the node
    /// is linked, except to a value that keeps the order.
    fn key(node: &Self::Node) -> u64;

    /// The augmented value of the subtree rooted at `node`, given its
    /// children's (Linux `RBCOMPUTE`).
    fn augment(node: &Self::Node, left: Option<Self::Aug>, right: Option<Self::Aug>) -> Self::Aug;
}

/// A pointer to a node under invariant 5.
struct NodePtr<A: AvlAdapter>(NonNull<A::Node>);

impl<A: AvlAdapter> Clone for NodePtr<A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<A: AvlAdapter> Copy for NodePtr<A> {}

impl<A: AvlAdapter> PartialEq for NodePtr<A> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

// SAFETY: a `NodePtr` is only ever stored in the links and root of one tree
// (invariant 5), so it moves to another thread only with the whole tree,
// which moves every access to the nodes along; the node must be `Send` for
// that.
unsafe impl<A: AvlAdapter> Send for NodePtr<A> where A::Node: Send {}

impl<A: AvlAdapter> NodePtr<A> {
    fn from_ref(node: &A::Node) -> Self {
        NodePtr(NonNull::from(node))
    }

    /// The node. The caller ties `'a` to a borrow of the tree the node is
    /// linked into (or of its owning [`Unlinked`]).
    fn get<'a>(self) -> &'a A::Node {
        // SAFETY: invariant 5: the node is live while its tree is borrowed,
        // and every caller bounds `'a` by such a borrow. Only shared
        // references to nodes exist while they are linked (the module
        // documentation's safety model).
        unsafe { self.0.as_ref() }
    }

    fn link<'a>(self) -> &'a AvlLink<A> {
        A::link(self.get())
    }

    fn parent(self) -> Option<Self> {
        self.link().parent.get()
    }

    fn child(self, dir: usize) -> Option<Self> {
        self.link().children[dir].get()
    }

    /// Sets a child and the child's parent link.
    fn set_child(self, dir: usize, child: Option<Self>) {
        self.link().children[dir].set(child);
        if let Some(child) = child {
            child.link().parent.set(Some(self));
        }
    }

    fn height(node: Option<Self>) -> u8 {
        node.map_or(0, |n| n.link().height.get())
    }

    fn aug(node: Option<Self>) -> Option<A::Aug> {
        node.map(|n| n.link().aug.get())
    }

    /// Recomputes height and augmented value from the children.
    fn update(self) {
        let (left, right) = (self.child(LEFT), self.child(RIGHT));
        let link = self.link();
        link.height.set(1 + Self::height(left).max(Self::height(right)));
        link.aug.set(A::augment(self.get(), Self::aug(left), Self::aug(right)));
    }

    /// The extreme node of this subtree on side `dir`.
    fn extreme(mut self, dir: usize) -> Self {
        while let Some(c) = self.child(dir) {
            self = c;
        }
        self
    }

    /// The in-order neighbour on side `dir` (`RIGHT`: successor).
    fn step(self, dir: usize) -> Option<Self> {
        if let Some(c) = self.child(dir) {
            return Some(c.extreme(1 - dir));
        }
        let mut child = self;
        while let Some(parent) = child.parent() {
            if parent.child(1 - dir) == Some(child) {
                return Some(parent);
            }
            child = parent;
        }
        None
    }

    /// Resets the links of a node leaving its tree.
    fn clear(self) {
        let link = self.link();
        link.parent.set(None);
        link.children[LEFT].set(None);
        link.children[RIGHT].set(None);
        link.height.set(1);
    }
}

const LEFT: usize = 0;
const RIGHT: usize = 1;

/// The tree links embedded in a node (Linux `struct rb_node`, plus the
/// augmented field Linux keeps next to it).
pub struct AvlLink<A: AvlAdapter> {
    parent: Cell<Option<NodePtr<A>>>,
    children: [Cell<Option<NodePtr<A>>>; 2],
    height: Cell<u8>,
    aug: Cell<A::Aug>,
}

impl<A: AvlAdapter> AvlLink<A> {
    /// The links of a node in no tree.
    pub fn new() -> Self {
        AvlLink {
            parent: Cell::new(None),
            children: [Cell::new(None), Cell::new(None)],
            height: Cell::new(1),
            aug: Cell::new(A::Aug::default()),
        }
    }
}

impl<A: AvlAdapter> Default for AvlLink<A> {
    fn default() -> Self {
        Self::new()
    }
}

/// The unique owner of a node in no tree: what [`AvlTree::insert`] takes
/// and [`CursorMut::remove`] gives back. Dropping it leaks the node; give
/// its memory back with [`Unlinked::into_raw`].
#[must_use = "an unlinked node leaks unless inserted or freed"]
pub struct Unlinked<A: AvlAdapter>(NodePtr<A>);

impl<A: AvlAdapter> Unlinked<A> {
    /// Writes `node` into `mem` and takes ownership of it.
    ///
    /// # Safety
    /// `mem` is aligned and valid for reads and writes of an `A::Node`,
    /// used by nothing else until [`Unlinked::into_raw`] returns it, and
    /// outlives every tree the node is inserted into.
    pub unsafe fn new_in(mem: NonNull<A::Node>, node: A::Node) -> Self {
        // SAFETY: the caller's promise: `mem` is valid, aligned and unused.
        unsafe { mem.as_ptr().write(node) };
        Unlinked(NodePtr(mem))
    }

    /// Gives up ownership; the node is initialized and linked nowhere, and
    /// its memory may be freed.
    pub fn into_raw(self) -> NonNull<A::Node> {
        self.0.0
    }
}

impl<A: AvlAdapter> Deref for Unlinked<A> {
    type Target = A::Node;

    fn deref(&self) -> &A::Node {
        self.0.get()
    }
}

impl<A: AvlAdapter> DerefMut for Unlinked<A> {
    fn deref_mut(&mut self) -> &mut A::Node {
        // SAFETY: an `Unlinked` is the node's unique owner (invariant 5),
        // and `&mut self` excludes every other reference to it. Its links
        // are all empty, so whatever is written there links nothing.
        unsafe { &mut *self.0.0.as_ptr() }
    }
}

/// An invariant [`AvlTree::check`] found broken; `key` names the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AvlCheckError {
    /// A node's parent link does not point at the node linking to it.
    BadParent {
        /// The node's key.
        key: u64,
    },
    /// A node's stored height is wrong.
    BadHeight {
        /// The node's key.
        key: u64,
        /// Stored height.
        stored: u8,
        /// Height of its subtree.
        computed: u8,
    },
    /// A node's subtrees differ in height by more than one.
    Unbalanced {
        /// The node's key.
        key: u64,
    },
    /// A node's augmented value is not what `augment` computes.
    BadAugment {
        /// The node's key.
        key: u64,
    },
    /// A key is smaller than its in-order predecessor's.
    Unsorted {
        /// The node's key.
        key: u64,
    },
    /// The node count is wrong.
    BadLen {
        /// Stored count.
        stored: usize,
        /// Nodes reachable from the root.
        computed: usize,
    },
}

impl fmt::Display for AvlCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AvlCheckError::BadParent { key } => write!(f, "avl: node {key:#x}: bad parent link"),
            AvlCheckError::BadHeight { key, stored, computed } => {
                write!(f, "avl: node {key:#x}: height {stored}, should be {computed}")
            }
            AvlCheckError::Unbalanced { key } => write!(f, "avl: node {key:#x}: unbalanced"),
            AvlCheckError::BadAugment { key } => write!(f, "avl: node {key:#x}: stale augmented value"),
            AvlCheckError::Unsorted { key } => write!(f, "avl: node {key:#x}: below its predecessor"),
            AvlCheckError::BadLen { stored, computed } => write!(f, "avl: {stored} nodes counted, {computed} linked"),
        }
    }
}

/// An intrusive augmented AVL tree (Linux `struct rb_root`). It does not
/// own its nodes' memory: dropping a non-empty tree leaks them, so owners
/// empty it with [`AvlTree::drain`] first.
pub struct AvlTree<A: AvlAdapter> {
    root: Option<NodePtr<A>>,
    len: usize,
}

impl<A: AvlAdapter> Default for AvlTree<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: AvlAdapter> AvlTree<A> {
    /// An empty tree (Linux `RB_ROOT`).
    pub const fn new() -> Self {
        AvlTree { root: None, len: 0 }
    }

    /// Linked nodes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no node is linked.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// The root node, where augmented descents start.
    pub fn root(&self) -> Option<&A::Node> {
        self.root.map(NodePtr::get)
    }

    /// A node's left child. Every navigation method takes a node of this
    /// tree, borrowed from it; given a node of another tree it navigates
    /// that one.
    pub fn left<'a>(&'a self, node: &'a A::Node) -> Option<&'a A::Node> {
        NodePtr::<A>::from_ref(node).child(LEFT).map(NodePtr::get)
    }

    /// A node's right child.
    pub fn right<'a>(&'a self, node: &'a A::Node) -> Option<&'a A::Node> {
        NodePtr::<A>::from_ref(node).child(RIGHT).map(NodePtr::get)
    }

    /// A node's parent.
    pub fn parent<'a>(&'a self, node: &'a A::Node) -> Option<&'a A::Node> {
        NodePtr::<A>::from_ref(node).parent().map(NodePtr::get)
    }

    /// The augmented value of the subtree rooted at `node`.
    pub fn augmented(&self, node: &A::Node) -> A::Aug {
        A::link(node).aug.get()
    }

    /// The node with the smallest key (Linux `rb_first()`).
    pub fn first(&self) -> Option<&A::Node> {
        Some(self.root?.extreme(LEFT).get())
    }

    /// The node with the largest key (Linux `rb_last()`).
    pub fn last(&self) -> Option<&A::Node> {
        Some(self.root?.extreme(RIGHT).get())
    }

    /// The in-order successor (Linux `rb_next()`).
    pub fn next<'a>(&'a self, node: &'a A::Node) -> Option<&'a A::Node> {
        NodePtr::<A>::from_ref(node).step(RIGHT).map(NodePtr::get)
    }

    /// The in-order predecessor (Linux `rb_prev()`).
    pub fn prev<'a>(&'a self, node: &'a A::Node) -> Option<&'a A::Node> {
        NodePtr::<A>::from_ref(node).step(LEFT).map(NodePtr::get)
    }

    /// The nodes in key order.
    pub fn iter(&self) -> impl Iterator<Item = &A::Node> + '_ {
        core::iter::successors(self.first(), |n| self.next(n))
    }

    fn first_where_ptr(&self, mut pred: impl FnMut(&A::Node) -> bool) -> Option<NodePtr<A>> {
        let (mut cursor, mut found) = (self.root, None);
        while let Some(n) = cursor {
            if pred(n.get()) {
                found = Some(n);
                cursor = n.child(LEFT);
            } else {
                cursor = n.child(RIGHT);
            }
        }
        found
    }

    /// The first node in key order for which `pred` holds, where `pred` is
    /// false for a prefix of the nodes and true for the rest (a partition
    /// point, as [`slice::partition_point`]).
    pub fn first_where(&self, pred: impl FnMut(&A::Node) -> bool) -> Option<&A::Node> {
        self.first_where_ptr(pred).map(NodePtr::get)
    }

    /// The first node whose key is at least `key`.
    pub fn lower_bound(&self, key: u64) -> Option<&A::Node> {
        self.first_where(|n| A::key(n) >= key)
    }

    /// Augmented search: the first node after `after` in key order (from
    /// the first node if `None`) for which `hit` holds. `may_hit(aug)`
    /// must be true for every subtree holding such a node; subtrees it
    /// rejects are skipped. If it is exact (true only for those subtrees,
    /// as "largest gap >= length" is for "gap >= length"), the search is
    /// `O(log n)`.
    pub fn next_match<'a>(
        &'a self,
        after: Option<&'a A::Node>,
        may_hit: impl FnMut(A::Aug) -> bool,
        hit: impl FnMut(&A::Node) -> bool,
    ) -> Option<&'a A::Node> {
        self.search(after, RIGHT, may_hit, hit)
    }

    /// The mirror of [`AvlTree::next_match`]: the last node before
    /// `before` (from the last node if `None`) for which `hit` holds.
    pub fn prev_match<'a>(
        &'a self,
        before: Option<&'a A::Node>,
        may_hit: impl FnMut(A::Aug) -> bool,
        hit: impl FnMut(&A::Node) -> bool,
    ) -> Option<&'a A::Node> {
        self.search(before, LEFT, may_hit, hit)
    }

    /// [`AvlTree::next_match`] walking in direction `dir`.
    fn search<'a>(
        &'a self,
        from: Option<&'a A::Node>,
        dir: usize,
        mut may_hit: impl FnMut(A::Aug) -> bool,
        mut hit: impl FnMut(&A::Node) -> bool,
    ) -> Option<&'a A::Node> {
        let Some(from) = from else {
            return Self::first_in(self.root?, dir, &mut may_hit, &mut hit).map(NodePtr::get);
        };
        let mut cur = NodePtr::<A>::from_ref(from);
        loop {
            if let Some(c) = cur.child(dir)
                && let Some(found) = Self::first_in(c, dir, &mut may_hit, &mut hit)
            {
                return Some(found.get());
            }
            // Climb to the first ancestor that comes after `cur`.
            loop {
                let parent = cur.parent()?;
                let from_before = parent.child(1 - dir) == Some(cur);
                cur = parent;
                if from_before {
                    break;
                }
            }
            if hit(cur.get()) {
                return Some(cur.get());
            }
        }
    }

    /// The first node of `root`'s subtree in direction `dir` for which
    /// `hit` holds, pruning subtrees `may_hit` rejects.
    fn first_in(
        root: NodePtr<A>,
        dir: usize,
        may_hit: &mut impl FnMut(A::Aug) -> bool,
        hit: &mut impl FnMut(&A::Node) -> bool,
    ) -> Option<NodePtr<A>> {
        let promising =
            |n: Option<NodePtr<A>>, may_hit: &mut dyn FnMut(A::Aug) -> bool| n.filter(|n| may_hit(n.link().aug.get()));
        let mut cur = promising(Some(root), may_hit)?;
        'down: loop {
            while let Some(c) = promising(cur.child(1 - dir), may_hit) {
                cur = c;
            }
            loop {
                if hit(cur.get()) {
                    return Some(cur);
                }
                if let Some(c) = promising(cur.child(dir), may_hit) {
                    cur = c;
                    continue 'down;
                }
                // Climb to the first ancestor after `cur`, within `root`.
                loop {
                    if cur == root {
                        return None;
                    }
                    let parent = cur.parent()?;
                    let from_before = parent.child(1 - dir) == Some(cur);
                    cur = parent;
                    if from_before {
                        break;
                    }
                }
            }
        }
    }

    /// Links `node` after every node with a key at most its own (Linux
    /// `rb_link_node()` and `rb_insert_augmented()`), and returns a cursor
    /// at it.
    pub fn insert(&mut self, node: Unlinked<A>) -> CursorMut<'_, A> {
        let node = node.0;
        let key = A::key(node.get());
        let (mut parent, mut cursor, mut dir) = (None, self.root, LEFT);
        while let Some(c) = cursor {
            parent = Some(c);
            dir = if key < A::key(c.get()) { LEFT } else { RIGHT };
            cursor = c.child(dir);
        }
        node.clear();
        node.link().parent.set(parent);
        node.update();
        match parent {
            None => self.root = Some(node),
            Some(p) => p.set_child(dir, Some(node)),
        }
        self.len += 1;
        self.fix_up(parent);
        CursorMut { tree: self, cur: Some(node) }
    }

    /// Links `node`, whose memory some other owner manages, as
    /// [`AvlTree::insert`] does (Linux's second `rb_node` in a structure
    /// that lives in two trees: `vm_area_struct`'s `shared.rb` in the
    /// file's `i_mmap` beside its place in the mm's tree).
    ///
    /// # Safety
    /// `node` is linked into no tree of this adapter, and stays alive and
    /// unmoved until [`AvlTree::remove_ref`] unlinks it from this tree,
    /// which must happen before its memory is freed or reused. While it is
    /// linked, nothing else writes the fields [`AvlAdapter::key`] and
    /// [`AvlAdapter::augment`] read, and the tree is reached only by the
    /// threads that may also reach the node.
    pub unsafe fn insert_ref(&mut self, node: &A::Node) {
        let _ = self.insert(Unlinked(NodePtr::from_ref(node)));
    }

    /// Unlinks `node`, which [`AvlTree::insert_ref`] linked into this tree.
    ///
    /// # Safety
    /// `node` is linked into this tree (not another of the same adapter).
    pub unsafe fn remove_ref(&mut self, node: &A::Node) {
        self.erase(NodePtr::from_ref(node));
    }

    /// A cursor at [`AvlTree::first_where`]`(pred)`, or at no node.
    pub fn cursor_mut_where(&mut self, pred: impl FnMut(&A::Node) -> bool) -> CursorMut<'_, A> {
        let cur = self.first_where_ptr(pred);
        CursorMut { tree: self, cur }
    }

    /// A cursor at [`AvlTree::lower_bound`]`(key)`, or at no node.
    pub fn cursor_mut_lower_bound(&mut self, key: u64) -> CursorMut<'_, A> {
        self.cursor_mut_where(|n| A::key(n) >= key)
    }

    /// A cursor at the first node, or at no node if the tree is empty.
    pub fn cursor_mut_first(&mut self) -> CursorMut<'_, A> {
        let cur = self.root.map(|r| r.extreme(LEFT));
        CursorMut { tree: self, cur }
    }

    /// Unlinks every node without rebalancing, in no particular order,
    /// handing each to `f` (to free it).
    pub fn drain(&mut self, mut f: impl FnMut(Unlinked<A>)) {
        let mut cursor = self.root.take();
        self.len = 0;
        while let Some(n) = cursor {
            if let Some(c) = n.child(LEFT).or(n.child(RIGHT)) {
                let dir = if n.child(LEFT).is_some() { LEFT } else { RIGHT };
                n.link().children[dir].set(None);
                cursor = Some(c);
            } else {
                cursor = n.parent();
                n.clear();
                f(Unlinked(n));
            }
        }
    }

    /// Unlinks `node`, a node of this tree (Linux `rb_erase_augmented()`).
    fn erase(&mut self, node: NodePtr<A>) {
        let (left, right, parent) = (node.child(LEFT), node.child(RIGHT), node.parent());
        let fix_from = match (left, right) {
            (Some(left), Some(right)) => {
                // The successor, which has no left child, takes the node's
                // place.
                let succ = right.extreme(LEFT);
                let fix_from = match succ.parent() {
                    Some(succ_parent) if succ != right => {
                        succ_parent.set_child(LEFT, succ.child(RIGHT));
                        succ.set_child(RIGHT, Some(right));
                        succ_parent
                    }
                    _ => succ,
                };
                succ.set_child(LEFT, Some(left));
                self.replace_child(parent, node, Some(succ));
                Some(fix_from)
            }
            (child, None) | (None, child) => {
                self.replace_child(parent, node, child);
                parent
            }
        };
        node.clear();
        self.len -= 1;
        self.fix_up(fix_from);
    }

    /// Puts `new` where `old`, a child of `parent` (or the root), was.
    fn replace_child(&mut self, parent: Option<NodePtr<A>>, old: NodePtr<A>, new: Option<NodePtr<A>>) {
        match parent {
            None => {
                self.root = new;
                if let Some(new) = new {
                    new.link().parent.set(None);
                }
            }
            Some(p) => {
                let dir = if p.child(LEFT) == Some(old) { LEFT } else { RIGHT };
                p.set_child(dir, new);
            }
        }
    }

    /// Rebalances and refreshes every node from `node` to the root.
    fn fix_up(&mut self, mut node: Option<NodePtr<A>>) {
        while let Some(n) = node {
            node = self.rebalance(n).parent();
        }
    }

    /// Restores the AVL property at `node`, whose subtrees are AVL trees
    /// differing in height by at most two; returns the subtree's new root.
    fn rebalance(&mut self, node: NodePtr<A>) -> NodePtr<A> {
        node.update();
        let (hl, hr) = (NodePtr::height(node.child(LEFT)), NodePtr::height(node.child(RIGHT)));
        if hl.abs_diff(hr) < 2 {
            return node;
        }
        let heavy = if hl > hr { LEFT } else { RIGHT };
        let Some(child) = node.child(heavy) else { return node };
        if NodePtr::height(child.child(1 - heavy)) > NodePtr::height(child.child(heavy)) {
            self.rotate(child, heavy);
        }
        self.rotate(node, 1 - heavy)
    }

    /// Rotates `x` down to side `dir`, its child on the other side taking
    /// its place; returns that child.
    fn rotate(&mut self, x: NodePtr<A>, dir: usize) -> NodePtr<A> {
        let Some(y) = x.child(1 - dir) else { return x };
        let parent = x.parent();
        x.set_child(1 - dir, y.child(dir));
        self.replace_child(parent, x, Some(y));
        y.set_child(dir, Some(x));
        x.update();
        y.update();
        y
    }

    /// Verifies invariants 1-4 of the module documentation.
    pub fn check(&self) -> Result<(), AvlCheckError> {
        let mut count = 0;
        if let Some(root) = self.root {
            if root.parent().is_some() {
                return Err(AvlCheckError::BadParent { key: A::key(root.get()) });
            }
            Self::check_subtree(root, &mut count)?;
        }
        if count != self.len {
            return Err(AvlCheckError::BadLen { stored: self.len, computed: count });
        }
        let mut prev_key = None;
        for node in self.iter() {
            let key = A::key(node);
            if prev_key.is_some_and(|prev| prev > key) {
                return Err(AvlCheckError::Unsorted { key });
            }
            prev_key = Some(key);
        }
        Ok(())
    }

    /// Checks a subtree, counting its nodes; returns its height.
    fn check_subtree(node: NodePtr<A>, count: &mut usize) -> Result<u8, AvlCheckError> {
        let key = A::key(node.get());
        *count += 1;
        let mut heights = [0; 2];
        for dir in [LEFT, RIGHT] {
            if let Some(child) = node.child(dir) {
                if child.parent() != Some(node) {
                    return Err(AvlCheckError::BadParent { key: A::key(child.get()) });
                }
                heights[dir] = Self::check_subtree(child, count)?;
            }
        }
        let height = 1 + heights[LEFT].max(heights[RIGHT]);
        let stored = node.link().height.get();
        if stored != height {
            return Err(AvlCheckError::BadHeight { key, stored, computed: height });
        }
        if heights[LEFT].abs_diff(heights[RIGHT]) > 1 {
            return Err(AvlCheckError::Unbalanced { key });
        }
        let aug = A::augment(node.get(), NodePtr::aug(node.child(LEFT)), NodePtr::aug(node.child(RIGHT)));
        if node.link().aug.get() != aug {
            return Err(AvlCheckError::BadAugment { key });
        }
        Ok(height)
    }
}

/// A position in an [`AvlTree`] that may change it: at a node, or at no
/// node (past either end), from where [`CursorMut::move_next`] goes to the
/// first node and [`CursorMut::move_prev`] to the last.
pub struct CursorMut<'t, A: AvlAdapter> {
    tree: &'t mut AvlTree<A>,
    cur: Option<NodePtr<A>>,
}

impl<A: AvlAdapter> CursorMut<'_, A> {
    /// The node at the cursor.
    pub fn get(&self) -> Option<&A::Node> {
        self.cur.map(NodePtr::get)
    }

    /// The tree, for reading.
    pub fn tree(&self) -> &AvlTree<A> {
        self.tree
    }

    fn neighbour(&self, dir: usize) -> Option<NodePtr<A>> {
        match self.cur {
            Some(n) => n.step(dir),
            None => self.tree.root.map(|r| r.extreme(1 - dir)),
        }
    }

    /// The node after the cursor.
    pub fn peek_next(&self) -> Option<&A::Node> {
        self.neighbour(RIGHT).map(NodePtr::get)
    }

    /// The node before the cursor.
    pub fn peek_prev(&self) -> Option<&A::Node> {
        self.neighbour(LEFT).map(NodePtr::get)
    }

    /// Moves to the next node.
    pub fn move_next(&mut self) {
        self.cur = self.neighbour(RIGHT);
    }

    /// Moves to the previous node.
    pub fn move_prev(&mut self) {
        self.cur = self.neighbour(LEFT);
    }

    /// Recomputes the augmented values from the node at the cursor up to
    /// the root, after the user changed something [`AvlAdapter::augment`]
    /// reads (Linux `augment->propagate()`).
    pub fn propagate(&mut self) {
        let mut cursor = self.cur;
        while let Some(n) = cursor {
            n.update();
            cursor = n.parent();
        }
    }

    /// Unlinks the node at the cursor and moves to the next one.
    pub fn remove(&mut self) -> Option<Unlinked<A>> {
        let node = self.cur?;
        self.cur = node.step(RIGHT);
        self.tree.erase(node);
        Some(Unlinked(node))
    }
}

#[cfg(test)]
mod tests;
