//! The file reverse map: a file's `i_mmap`, an interval tree of the VMAs
//! that map it, keyed by file page offset (Linux `mm/interval_tree.c`'s
//! `vma_interval_tree_*` over `address_space.i_mmap`, with
//! `i_mmap_rwsem`).
//!
//! Every VMA mapping a file that has an [`IMmap`]
//! ([`crate::vma::VmaFile::i_mmap`]) is linked into it while it is in its
//! address space's [`crate::vma::VmaTree`], covering the file pages
//! `[vm_pgoff, vm_pgoff + pages - 1]`. A query
//! ([`IMmap::for_each_vma`]) finds the VMAs that map any page of a range
//! of the file in `O(log n)` per VMA found, however many VMAs map other
//! parts of the file, across every address space: what writeback's
//! `folio_mkclean` and truncation's `unmap_mapping_range` need, and what
//! the reclaim issue's `rmap_walk_file` will walk.
//!
//! The tree's node ([`IMmapLink`]) is embedded in the [`crate::vma::Vma`]
//! (Linux `vm_area_struct.shared.rb` and `rb_subtree_last`), so linking
//! never allocates and cannot fail. It keeps its own copy of what a query
//! reports (the address space, the start address and the page range),
//! written only under the tree's lock: the VMA tree changes a VMA's bounds
//! under the mmap lock alone, then brings the copy up to date
//! ([`IMmap::update`]) before its method returns, adding new coverage
//! before it takes old coverage away (a split links the upper half before
//! shrinking the lower one; a merge grows the survivor before the other
//! leaves), so a query never misses a page a VMA maps across a change.
//!
//! # Locking
//!
//! One spin lock per file (Linux's `i_mmap_rwsem` is a sleeping
//! read-write lock). It is taken under the mmap lock by the VMA tree, and
//! by queries with a page lock held; it is held only to read or relink
//! nodes and never across an allocation or a sleep, and never in
//! interrupt context. Lock order: mmap lock -> folio lock -> `i_mmap`
//! lock -> page-table lock. A query's callback runs under the lock: it
//! must not sleep or take the mmap lock.
//!
//! # Differences from Linux
//!
//! - A query reports each VMA's address space as an [`MmId`] (its
//!   page-table root), not a pointer: the kernel finds the address space,
//!   takes its mmap lock after the query and looks the VMA up again there.
//!   Linux's rmap walk instead keeps the VMA alive with `i_mmap_rwsem`
//!   and reaches its page tables under the page-table lock alone (see
//!   [`crate::rmap`]'s walk, which locks each address space).
//! - The `anon_vma` interval tree is [`crate::rmap`]'s, built the same
//!   way.

#![allow(unsafe_code)]

use core::cell::Cell;

use crate::avl::{AvlAdapter, AvlCheckError, AvlLink, AvlTree};

/// An address space as the reverse map names it: its page-table root,
/// fixed for its life and unique among live address spaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MmId(pub u64);

/// A VMA's node in its file's [`IMmap`] (Linux `vm_area_struct.shared`):
/// the tree links and the copy of what a query reports. Every field is
/// written only with the tree's lock held, or while the node is linked
/// nowhere.
pub struct IMmapLink {
    link: AvlLink<IMmapAdapter>,
    mm: Cell<MmId>,
    start: Cell<u64>,
    first: Cell<u64>,
    last: Cell<u64>,
    linked: Cell<bool>,
}

impl IMmapLink {
    /// The node of a VMA in no tree.
    pub(crate) fn new() -> Self {
        IMmapLink {
            link: AvlLink::new(),
            mm: Cell::new(MmId(0)),
            start: Cell::new(0),
            first: Cell::new(0),
            last: Cell::new(0),
            linked: Cell::new(false),
        }
    }

    /// Whether the node is in a tree (read by the VMA tree that owns the
    /// VMA, under its mmap lock: only that owner links or unlinks it).
    pub(crate) fn is_linked(&self) -> bool {
        self.linked.get()
    }

    /// The node's copy `(mm, start, first, last)`, for the VMA tree's
    /// check (under the owner's mmap lock, which excludes its updates).
    pub(crate) fn copy(&self) -> (MmId, u64, u64, u64) {
        (self.mm.get(), self.start.get(), self.first.get(), self.last.get())
    }
}

/// Keyed by first page offset, augmented with the largest last page
/// offset in the subtree (Linux `rb_subtree_last`).
struct IMmapAdapter;

// SAFETY: `link` returns the `link` field of the node itself.
unsafe impl AvlAdapter for IMmapAdapter {
    type Node = IMmapLink;
    type Aug = u64;

    fn link(node: &IMmapLink) -> &AvlLink<Self> {
        &node.link
    }

    fn key(node: &IMmapLink) -> u64 {
        node.first.get()
    }

    fn augment(node: &IMmapLink, left: Option<u64>, right: Option<u64>) -> u64 {
        node.last.get().max(left.unwrap_or(0)).max(right.unwrap_or(0))
    }
}

/// The tree, movable between CPUs with its lock.
struct IMmapTree(AvlTree<IMmapAdapter>);

// SAFETY: the nodes are `IMmapLink`s embedded in VMAs of address spaces
// that may run on any CPU. Every field of a linked node (links and copy)
// is read and written only under the `IMmap` lock, which the tree lives
// in, and a node leaves the tree (under the lock) before its VMA's memory
// is freed ([`IMmap::update`]'s and [`IMmap::remove`]'s contracts); so
// the CPU holding the lock is the only one touching them.
unsafe impl Send for IMmapTree {}

/// One VMA a query found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IMmapVma {
    /// The address space it is in.
    pub mm: MmId,
    /// Its start address (`vm_start`).
    pub start: u64,
    /// The file page at `start` (`vm_pgoff`).
    pub pgoff: u64,
    /// Its last file page.
    pub last: u64,
}

impl IMmapVma {
    /// The address where the VMA maps file page `index`, which it covers
    /// (Linux `vma_address`).
    pub fn address(&self, index: u64) -> u64 {
        self.start + ((index - self.pgoff) << crate::addr::PAGE_SHIFT)
    }
}

/// A file's reverse map (Linux `address_space.i_mmap` and its
/// `i_mmap_rwsem`).
#[doc(alias = "i_mmap")]
pub struct IMmap {
    tree: spin::Mutex<IMmapTree>,
}

impl Default for IMmap {
    fn default() -> Self {
        Self::new()
    }
}

impl IMmap {
    /// A file nothing maps.
    pub const fn new() -> Self {
        IMmap { tree: spin::Mutex::new(IMmapTree(AvlTree::new())) }
    }

    /// VMAs linked (Linux `mapping_mapped` is `len() != 0`).
    pub fn len(&self) -> usize {
        self.tree.lock().0.len()
    }

    /// Whether no VMA maps the file (Linux `!mapping_mapped`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` for every VMA mapping a page in `[first, last]`, in order
    /// of their first page (Linux `vma_interval_tree_foreach`). `f` runs
    /// under the tree's lock: it must not sleep.
    #[doc(alias = "vma_interval_tree_foreach")]
    pub fn for_each_vma(&self, first: u64, last: u64, mut f: impl FnMut(IMmapVma)) {
        let tree = self.tree.lock();
        let tree = &tree.0;
        let mut after = None;
        while let Some(node) = tree.next_match(after, |max_last| max_last >= first, |n| n.last.get() >= first) {
            if node.first.get() > last {
                break;
            }
            f(IMmapVma { mm: node.mm.get(), start: node.start.get(), pgoff: node.first.get(), last: node.last.get() });
            after = Some(node);
        }
    }

    /// Links `node` with the copy `(mm, start, first, last)`, or relinks
    /// it if its copy changed (Linux `vma_interval_tree_insert`, and the
    /// remove-and-insert of `vma_prepare`/`vma_complete`).
    ///
    /// # Safety
    /// `node` is linked into this tree or none, and, once linked, stays
    /// alive and unmoved until [`IMmap::remove`] unlinks it.
    pub(crate) unsafe fn update(&self, node: &IMmapLink, mm: MmId, start: u64, first: u64, last: u64) {
        let mut tree = self.tree.lock();
        if node.linked.get() {
            if node.copy() == (mm, start, first, last) {
                return;
            }
            // SAFETY: linked into this tree (the caller's promise).
            unsafe { tree.0.remove_ref(node) };
        }
        node.mm.set(mm);
        node.start.set(start);
        node.first.set(first);
        node.last.set(last);
        // SAFETY: linked nowhere now; the caller keeps it alive until
        // `remove`, and its fields change only here, under the lock.
        unsafe { tree.0.insert_ref(node) };
        node.linked.set(true);
    }

    /// Unlinks `node` if it is linked (Linux `vma_interval_tree_remove`).
    ///
    /// # Safety
    /// `node` is linked into this tree or none.
    pub(crate) unsafe fn remove(&self, node: &IMmapLink) {
        let mut tree = self.tree.lock();
        if node.linked.get() {
            // SAFETY: linked, into this tree (the caller's promise).
            unsafe { tree.0.remove_ref(node) };
            node.linked.set(false);
        }
    }

    /// Verifies the tree's invariants (order, balance, the largest last
    /// page of every subtree).
    pub fn check(&self) -> Result<(), AvlCheckError> {
        self.tree.lock().0.check()
    }
}

#[cfg(test)]
mod tests;
