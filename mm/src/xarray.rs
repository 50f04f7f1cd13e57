//! The XArray: the page cache's index from page offsets to entries, a
//! radix tree of 64-slot nodes whose mark bitmaps let searches skip every
//! subtree without a marked entry (Linux `lib/xarray.c` and
//! `include/linux/xarray.h`).
//!
//! An [`XArray`] maps `u64` indices (file page offsets, Linux `pgoff_t`) to
//! entries of a small `Copy` type, and stores up to three marks per entry
//! ([`XaMark`]; the page cache's `PAGECACHE_TAG_DIRTY`, `_WRITEBACK` and
//! `_TOWRITE`). A node ([`XaNode`], Linux `struct xa_node`) has 64 slots
//! (Linux `XA_CHUNK_SHIFT` 6) and a level, its `shift`: a node at shift
//! `s` covers an aligned block of `64 << s` indices and slot `o` of it the
//! sub-block starting at `base + (o << s)`. Entries live in the nodes at
//! shift 0 (the leaves), each slot above holds a child one level down.
//! Besides its slots, a node keeps a bitmap of the occupied ones and, per
//! mark, a bitmap of the slots whose entry (or any entry below whose
//! child) carries the mark; the array keeps one bit per mark for the whole
//! tree. So [`XArray::marked`] is O(1), and finding the dirty pages of a
//! file descends only into subtrees that hold one (Linux's "writeback finds
//! dirty pages without scanning").
//!
//! The tree is as short as its largest index allows: storing an index
//! beyond the top's reach adds levels above it (Linux `xas_expand`),
//! erasing the entries that needed them takes them away again (Linux
//! `xas_shrink`), and a node whose last entry goes is freed (Linux
//! `xas_delete_node`). An array whose only entry is at index 0 keeps it in
//! the head with no node at all, as Linux does, so a one-page file costs
//! no node. Indices cover all of `u64`: eleven levels (shifts 0 to 60; the
//! top level then uses 16 of its slots).
//!
//! Every operation is O(height), at most eleven levels, except the
//! iterators (O(height) per entry returned), [`XArray::next_hole`] and
//! [`XArray::prev_hole`] (O(height) plus one step per full leaf passed) and
//! [`XArray::tag_range`] (O(height) per marked entry in the range). The
//! searches stay O(height) because the bitmaps give the next occupied or
//! marked slot of a node in one instruction and every occupied (marked)
//! slot leads to an entry (a marked entry): only the subtree on the start
//! index's own path can disappoint.
//!
//! # Invariants
//!
//! After every public method returns, whether it succeeded or failed
//! ([`XArray::check`] verifies 1-7):
//!
//! 1. **Head.** An empty array has no head, an array whose only entry is at
//!    index 0 holds it in the head, and any other array has its top node
//!    there.
//! 2. **Levels.** Shifts are multiples of [`XA_CHUNK_SHIFT`] no more than
//!    60, a child's is its parent's minus [`XA_CHUNK_SHIFT`], and nodes at
//!    shift 0 hold entries while those above hold nodes: every entry is at
//!    the bottom, at the index its path spells.
//! 3. **Occupancy.** A node's occupancy bitmap has exactly the bits of its
//!    occupied slots, and no slot of the top node lies beyond `u64::MAX`.
//! 4. **No empty nodes.** Every node has an occupied slot: the node under
//!    an erased last entry is freed, and a failed store frees the nodes it
//!    made.
//! 5. **Minimal height.** The top node has an occupied slot other than
//!    slot 0, so its shift is the least that reaches the largest index.
//!    With 4, the tree (and its node count) is a function of the set of
//!    indices alone.
//! 6. **Marks.** A leaf's mark bit for a slot says whether that entry has
//!    the mark; an upper node's, whether the child has any bit of that mark
//!    set; unoccupied slots have no mark bits. The array's mark bit says
//!    whether any entry has the mark (Linux `XA_FLAGS_MARK` in `xa_flags`).
//! 7. **Count.** [`XArray::len`] is the number of entries.
//! 8. **Node ownership.** Every node is owned by exactly one slot, or by the
//!    head, of one array (through a `NodeBox`, unique like a `Box`), was
//!    allocated from that array's node cache, and goes back to that cache,
//!    once, only after it has been taken out of the tree. The `unsafe` code,
//!    all in the private `node` module, relies on this.
//!
//! # Locking
//!
//! None inside: an [`XArray`] is a plain value, changed through `&mut self`
//! and read through `&self`. The kernel wraps each file's array
//! (`address_space.i_pages`) in a lock of its own, where Linux reads under
//! RCU and writes under the spin lock inside the array (`xa_lock`, taken
//! with interrupts off for the page cache because writeback completion
//! clears `PAGECACHE_TAG_WRITEBACK` from interrupt context). Lock order:
//! `i_pages lock -> node cache`. [`XArray::store`] allocates under the
//! caller's lock, so when that lock is a spin lock the node cache must not
//! sleep or enter reclaim, which would take `i_pages` locks itself (Linux
//! allocates with `GFP_NOWAIT` under `xa_lock`).
//!
//! # Differences from Linux
//!
//! - **Typed entries.** An entry is any `T: Copy`. Linux stores tagged
//!   words and tells pointers from value entries (shadow and swap entries)
//!   by their low bit; here the user's type says which is which (the page
//!   cache's [`crate::filemap::CacheEntry`] is a page or a workingset
//!   shadow), and the array never looks inside an entry.
//!   There are no internal entries (retry, sibling, zero), no `nr_values`
//!   in the nodes (Linux's workingset shadow-node tracking), no multi-index
//!   entries (`xa_store_range`, large folios), no ID allocation
//!   (`XA_FLAGS_ALLOC`, `xa_alloc`), and no `xa_cmpxchg`, `xa_insert` or
//!   `xa_reserve`. A slot is an `Option<T>`: a `T` with a niche (a
//!   `NonZeroU64` inside) keeps a leaf at Linux's 64 words.
//! - **Occupancy bitmaps instead of `count`.** A node records which slots
//!   are occupied, not how many (the count is the bitmap's popcount), so a
//!   search finds the next entry of a node in one step where Linux scans
//!   the slots. Nodes have no parent pointer or offset: there is no
//!   `xa_state` cursor, and iteration starts each step again from the root
//!   (O(height) with the bitmaps).
//! - **Allocation failure changes nothing.** [`XArray::store`] allocates
//!   the nodes it needs one by one and, when one fails, frees those it made
//!   and returns [`XaError::NoMemory`]; the caller may reclaim and retry.
//!   Linux drops `xa_lock` to allocate with the caller's GFP and retries
//!   (`__xas_nomem`).
//! - **Nodes are freed at once**, not after an RCU grace period.
//! - **[`XArray::tag_range`]** (Linux `tag_pages_for_writeback`) tags the
//!   whole range in one call; Linux drops the lock every
//!   `XA_CHECK_SCHED` (4096) entries to reschedule.
//! - **Holes.** [`XArray::next_hole`] and [`XArray::prev_hole`] return the
//!   first absent index of an inclusive range, or `None`, where Linux's
//!   `page_cache_next_miss`/`page_cache_prev_miss` return an index outside
//!   the scanned range; those also count a value entry as a miss, which
//!   the page cache adds ([`crate::filemap::AddressSpace::next_hole`]).
//! - **[`XArray::len`]** counts entries; Linux leaves that to the user
//!   (`mapping->nrpages`).

use core::fmt;
use core::iter::FusedIterator;
use core::mem;

use crate::slab_common::ObjCache;

use self::node::{NodeBox, NodeMem};

/// log2 of the slots per node (Linux `XA_CHUNK_SHIFT` without
/// `CONFIG_BASE_SMALL`).
pub const XA_CHUNK_SHIFT: u32 = 6;
/// Slots per node (Linux `XA_CHUNK_SIZE`).
pub const XA_CHUNK_SIZE: usize = 1 << XA_CHUNK_SHIFT;

/// The most nodes one [`XArray::store`] can need: a path from a new root
/// down to a leaf for a 64-bit index (Linux sizes its per-CPU
/// `radix_tree_preload` pool by the height the same way).
pub const XA_MAX_STORE_NODES: usize = 64usize.div_ceil(XA_CHUNK_SHIFT as usize);
/// Mask of a slot offset (Linux `XA_CHUNK_MASK`).
const XA_CHUNK_MASK: u64 = XA_CHUNK_SIZE as u64 - 1;
/// Marks per entry (Linux `XA_MAX_MARKS`).
pub const XA_MAX_MARKS: usize = 3;
/// The top level's shift when indices reach `u64::MAX`.
const XA_MAX_SHIFT: u32 = (u64::BITS - 1) / XA_CHUNK_SHIFT * XA_CHUNK_SHIFT;

/// One of an entry's marks (Linux `xa_mark_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[doc(alias = "xa_mark_t")]
pub enum XaMark {
    /// `XA_MARK_0`.
    Mark0 = 0,
    /// `XA_MARK_1`.
    Mark1 = 1,
    /// `XA_MARK_2`.
    Mark2 = 2,
}

/// Linux `XA_MARK_0`.
pub const XA_MARK_0: XaMark = XaMark::Mark0;
/// Linux `XA_MARK_1`.
pub const XA_MARK_1: XaMark = XaMark::Mark1;
/// Linux `XA_MARK_2`.
pub const XA_MARK_2: XaMark = XaMark::Mark2;
/// The highest mark (Linux `XA_MARK_MAX`).
pub const XA_MARK_MAX: XaMark = XA_MARK_2;
/// A page with data not yet written back (Linux `PAGECACHE_TAG_DIRTY`,
/// `include/linux/fs.h`).
pub const PAGECACHE_TAG_DIRTY: XaMark = XA_MARK_0;
/// A page under writeback I/O (Linux `PAGECACHE_TAG_WRITEBACK`).
pub const PAGECACHE_TAG_WRITEBACK: XaMark = XA_MARK_1;
/// A dirty page an integrity sync has to write, tagged when it starts so
/// pages dirtied meanwhile cannot keep it going forever (Linux
/// `PAGECACHE_TAG_TOWRITE`).
pub const PAGECACHE_TAG_TOWRITE: XaMark = XA_MARK_2;

impl XaMark {
    /// Every mark, in order.
    pub const ALL: [XaMark; XA_MAX_MARKS] = [XaMark::Mark0, XaMark::Mark1, XaMark::Mark2];

    /// The mark's bit in a set of marks.
    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Why a store failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XaError {
    /// The node cache could not supply a node (Linux `-ENOMEM`); the array
    /// is unchanged.
    NoMemory,
}

impl fmt::Display for XaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XaError::NoMemory => f.write_str("xarray: out of memory for a node"),
        }
    }
}

/// A broken invariant, found by [`XArray::check`]. `base` is the first
/// index a node covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XaCheckError {
    /// Invariant 1: the head holds a node whose only entry is at index 0.
    EntryZeroInNode,
    /// Invariant 2: the top node's shift is not a multiple of
    /// [`XA_CHUNK_SHIFT`] up to 60.
    BadTopShift {
        /// Its shift.
        shift: u32,
    },
    /// Invariant 2: a node's shift is not its parent's minus
    /// [`XA_CHUNK_SHIFT`].
    BadShift {
        /// The node's first index.
        base: u64,
        /// Its shift.
        shift: u32,
        /// The shift it should have.
        expected: u32,
    },
    /// Invariant 2: a node holds entries above shift 0, or nodes at it.
    WrongKind {
        /// The node's first index.
        base: u64,
        /// Its shift.
        shift: u32,
    },
    /// Invariant 3: the occupancy bitmap disagrees with the slots, or a
    /// slot beyond `u64::MAX` is occupied.
    BadOccupancy {
        /// The node's first index.
        base: u64,
        /// Its shift.
        shift: u32,
    },
    /// Invariant 4: a node has no occupied slot.
    EmptyNode {
        /// The node's first index.
        base: u64,
        /// Its shift.
        shift: u32,
    },
    /// Invariant 5: the top node uses only slot 0, so the tree is a level
    /// too tall.
    NotShrunk {
        /// The top's shift.
        shift: u32,
    },
    /// Invariant 6: a slot's mark bit disagrees with what is below it.
    BadMark {
        /// The node's first index.
        base: u64,
        /// Its shift.
        shift: u32,
        /// The slot.
        offset: usize,
        /// The mark.
        mark: XaMark,
    },
    /// Invariant 6: the array's mark bits disagree with the tree.
    BadRootMarks {
        /// The bits held.
        stored: u8,
        /// The bits the tree has.
        computed: u8,
    },
    /// Invariant 7: the entry count is wrong.
    BadCount {
        /// The count held.
        stored: usize,
        /// The entries found.
        computed: usize,
    },
}

impl fmt::Display for XaCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            XaCheckError::EntryZeroInNode => f.write_str("xarray: a lone entry at index 0 is in a node"),
            XaCheckError::BadTopShift { shift } => write!(f, "xarray: top node has shift {shift}"),
            XaCheckError::WrongKind { base, shift } => {
                write!(f, "xarray: node at {base:#x} shift {shift} holds the wrong kind of slot")
            }
            XaCheckError::BadShift { base, shift, expected } => {
                write!(f, "xarray: node at {base:#x} has shift {shift}, its level needs {expected}")
            }
            XaCheckError::BadOccupancy { base, shift } => {
                write!(f, "xarray: node at {base:#x} shift {shift}: occupancy bitmap disagrees with its slots")
            }
            XaCheckError::EmptyNode { base, shift } => write!(f, "xarray: node at {base:#x} shift {shift} is empty"),
            XaCheckError::NotShrunk { shift } => write!(f, "xarray: top node at shift {shift} uses only slot 0"),
            XaCheckError::BadMark { base, shift, offset, mark } => {
                write!(f, "xarray: node at {base:#x} shift {shift} slot {offset}: wrong {mark:?} bit")
            }
            XaCheckError::BadRootMarks { stored, computed } => {
                write!(f, "xarray: array marks {stored:#b}, the tree has {computed:#b}")
            }
            XaCheckError::BadCount { stored, computed } => {
                write!(f, "xarray: {stored} entries counted, {computed} found")
            }
        }
    }
}

/// Storage for an [`XArray`]'s nodes (Linux allocates `struct xa_node`
/// from `radix_tree_node_cachep`): any [`ObjCache<XaNode<T>>`]. The kernel
/// backs it with a slab cache; host tests with the heap, where they can
/// make an allocation fail. [`XArray`] writes through the memory on
/// `ObjCache`'s promise.
pub trait XaNodeAlloc<T>: ObjCache<XaNode<T>> {}

impl<T, C: ObjCache<XaNode<T>> + ?Sized> XaNodeAlloc<T> for C {}

/// One node of an [`XArray`] (Linux `struct xa_node`). Opaque: only
/// [`XaNodeAlloc`] handles its memory.
#[doc(alias = "xa_node")]
pub struct XaNode<T> {
    /// Index bits below this node's slots (Linux `shift`).
    shift: u32,
    /// Occupied slots (Linux keeps their number, `count`).
    present: u64,
    /// Per mark, the slots that have it (Linux `marks`).
    marks: Marks,
    slots: Slots<T>,
}

/// A node's slots: entries in a leaf, children above (Linux `slots`, where
/// one array holds both and the level tells them apart).
// The lint sizes the generic leaf variant at 0 bytes; with a real entry
// type it is as large as the other or larger (1 KiB for a `u64`), and both
// are the node's slots, in slab memory, where boxing one would only add a
// pointer to chase.
#[allow(clippy::large_enum_variant)]
enum Slots<T> {
    Leaf([Option<T>; XA_CHUNK_SIZE]),
    Interior([Option<NodeBox<T>>; XA_CHUNK_SIZE]),
}

/// One bitmap of slots per mark.
#[derive(Clone, Copy, Default)]
struct Marks([u64; XA_MAX_MARKS]);

impl Marks {
    fn get(&self, mark: XaMark, offset: usize) -> bool {
        self.0[mark as usize] & (1 << offset) != 0
    }

    fn assign(&mut self, mark: XaMark, offset: usize, on: bool) {
        let bits = &mut self.0[mark as usize];
        if on {
            *bits |= 1 << offset;
        } else {
            *bits &= !(1 << offset);
        }
    }

    /// Whether any slot has `mark`.
    fn any(&self, mark: XaMark) -> bool {
        self.0[mark as usize] != 0
    }

    /// The marks of one slot, as a set.
    fn at(&self, offset: usize) -> u8 {
        XaMark::ALL.iter().filter(|&&m| self.get(m, offset)).fold(0, |set, m| set | m.bit())
    }

    /// Gives one slot the marks of `set`.
    fn set_at(&mut self, offset: usize, set: u8) {
        for mark in XaMark::ALL {
            self.assign(mark, offset, set & mark.bit() != 0);
        }
    }

    /// The marks any slot has, as a set: what the parent's slot (or the
    /// array, for the top) says of this node.
    fn summary(&self) -> u8 {
        XaMark::ALL.iter().filter(|&&m| self.any(m)).fold(0, |set, m| set | m.bit())
    }
}

impl<T: Copy> XaNode<T> {
    /// An empty node at `shift`.
    fn new(shift: u32) -> Self {
        let slots = if shift == 0 {
            Slots::Leaf([None; XA_CHUNK_SIZE])
        } else {
            Slots::Interior([const { None }; XA_CHUNK_SIZE])
        };
        XaNode { shift, present: 0, marks: Marks::default(), slots }
    }

    /// A leaf holding the head's entry at index 0, with its marks.
    fn leaf_with_entry_zero(entry: T, marks: u8) -> Self {
        let mut entries = [None; XA_CHUNK_SIZE];
        entries[0] = Some(entry);
        let mut node = XaNode { shift: 0, present: 1, marks: Marks::default(), slots: Slots::Leaf(entries) };
        node.marks.set_at(0, marks);
        node
    }

    /// A node at `shift` above the old top `child`, in its slot 0 (Linux
    /// `xas_expand`'s step).
    fn above(shift: u32, child: NodeBox<T>) -> Self {
        let marks = child.marks.summary();
        let mut children = [const { None }; XA_CHUNK_SIZE];
        children[0] = Some(child);
        let mut node = XaNode { shift, present: 1, marks: Marks::default(), slots: Slots::Interior(children) };
        node.marks.set_at(0, marks);
        node
    }

    /// The slot of `index` (Linux `get_offset`).
    fn offset(&self, index: u64) -> usize {
        ((index >> self.shift) & XA_CHUNK_MASK) as usize
    }

    /// The first index under slot `offset`, this node starting at `base`.
    fn slot_base(&self, base: u64, offset: usize) -> u64 {
        base | ((offset as u64) << self.shift)
    }

    /// The last index under slot `offset`.
    fn slot_last(&self, base: u64, offset: usize) -> u64 {
        self.slot_base(base, offset) | ((1 << self.shift) - 1)
    }

    /// How many slots can hold something: 64, but 16 for a top node at
    /// shift 60, whose other slots would lie beyond `u64::MAX`.
    fn nr_slots(&self) -> usize {
        if self.shift + XA_CHUNK_SHIFT > u64::BITS { 1 << (u64::BITS - self.shift) } else { XA_CHUNK_SIZE }
    }

    /// The child's shift (Linux `shift - XA_CHUNK_SHIFT`). Only interior
    /// nodes have children, and their shift is at least
    /// [`XA_CHUNK_SHIFT`] (invariant 2).
    fn child_shift(&self) -> u32 {
        self.shift.saturating_sub(XA_CHUNK_SHIFT)
    }
}

/// The largest index a top node at `shift` reaches (Linux `max_index`).
const fn max_index(shift: u32) -> u64 {
    if shift + XA_CHUNK_SHIFT >= u64::BITS { u64::MAX } else { (1 << (shift + XA_CHUNK_SHIFT)) - 1 }
}

/// The least top shift that reaches `index`.
const fn shift_for(index: u64) -> u32 {
    let bits = u64::BITS - index.leading_zeros();
    bits.saturating_sub(XA_CHUNK_SHIFT).div_ceil(XA_CHUNK_SHIFT) * XA_CHUNK_SHIFT
}

/// What the array's head holds (Linux `xa_head`).
enum Head<T> {
    Empty,
    /// The only entry, at index 0 (invariant 1).
    Entry(T),
    Node(NodeBox<T>),
}

/// A sparse array of `T` indexed by `u64`, with three marks per entry: the
/// page cache's index (Linux `struct xarray`, the `i_pages` of an
/// `address_space`). Nodes come from the cache `A`. Not synchronized: see
/// the module documentation's locking section.
#[doc(alias = "xarray")]
pub struct XArray<T: Copy, A: XaNodeAlloc<T>> {
    head: Head<T>,
    /// The marks some entry has (Linux `XA_FLAGS_MARK` bits of `xa_flags`).
    marks: u8,
    count: usize,
    nodes: A,
}

impl<T: Copy, A: XaNodeAlloc<T>> XArray<T, A> {
    /// An empty array taking its nodes from `nodes` (Linux `xa_init`).
    pub const fn new(nodes: A) -> Self {
        XArray { head: Head::Empty, marks: 0, count: 0, nodes }
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there is no entry (Linux `xa_empty`).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The entry at `index` (Linux `xa_load`).
    pub fn load(&self, index: u64) -> Option<T> {
        let mut node = match &self.head {
            Head::Empty => return None,
            Head::Entry(entry) => return (index == 0).then_some(*entry),
            Head::Node(top) if index > max_index(top.shift) => return None,
            Head::Node(top) => top,
        };
        loop {
            let offset = node.offset(index);
            match &node.slots {
                Slots::Leaf(entries) => return entries[offset],
                Slots::Interior(children) => node = children[offset].as_ref()?,
            }
        }
    }

    /// Stores `entry` at `index` and returns the entry it replaces (Linux
    /// `xa_store`). A replaced entry's marks stay; a new entry has none.
    ///
    /// # Errors
    /// [`XaError::NoMemory`] if a node could not be allocated; the array is
    /// then unchanged.
    pub fn store(&mut self, index: u64, entry: T) -> Result<Option<T>, XaError> {
        if index == 0 {
            match &mut self.head {
                Head::Empty => {
                    self.head = Head::Entry(entry);
                    self.count += 1;
                    return Ok(None);
                }
                Head::Entry(old) => return Ok(Some(mem::replace(old, entry))),
                Head::Node(_) => {}
            }
        }
        let mut top = self.take_top_for(index)?;
        let stored = store_in(&mut top, index, entry, &self.nodes);
        self.head = Head::Node(top);
        match stored {
            Ok(old) => {
                if old.is_none() {
                    self.count += 1;
                }
                Ok(old)
            }
            Err(err) => {
                // `store_in` freed the nodes it made; what `take_top_for`
                // added (an empty top, or levels above the old top using
                // only slot 0) goes now.
                self.shrink();
                Err(err)
            }
        }
    }

    /// Removes the entry at `index`, its marks with it, and returns it
    /// (Linux `xa_erase`). Nodes left empty are freed and the tree loses
    /// the levels it no longer needs.
    pub fn erase(&mut self, index: u64) -> Option<T> {
        let old = match &mut self.head {
            Head::Empty => None,
            Head::Entry(entry) => {
                let entry = *entry;
                if index != 0 {
                    return None;
                }
                self.head = Head::Empty;
                self.marks = 0;
                Some(entry)
            }
            Head::Node(top) => {
                if index > max_index(top.shift) {
                    return None;
                }
                let old = erase_in(top, index, &self.nodes)?;
                self.marks = top.marks.summary();
                self.shrink();
                Some(old)
            }
        };
        if old.is_some() {
            self.count -= 1;
        }
        old
    }

    /// Sets `mark` on the entry at `index`; nothing if there is none
    /// (Linux `xa_set_mark`).
    pub fn set_mark(&mut self, index: u64, mark: XaMark) {
        let found = match &mut self.head {
            Head::Empty => false,
            Head::Entry(_) => index == 0,
            Head::Node(top) => index <= max_index(top.shift) && set_mark_in(top, index, mark),
        };
        if found {
            self.marks |= mark.bit();
        }
    }

    /// Clears `mark` on the entry at `index`, if any (Linux
    /// `xa_clear_mark`).
    pub fn clear_mark(&mut self, index: u64, mark: XaMark) {
        match &mut self.head {
            Head::Empty => {}
            Head::Entry(_) => {
                if index == 0 {
                    self.marks &= !mark.bit();
                }
            }
            Head::Node(top) => {
                if index <= max_index(top.shift) && clear_mark_in(top, index, mark) {
                    self.marks = top.marks.summary();
                }
            }
        }
    }

    /// Whether the entry at `index` has `mark` (Linux `xa_get_mark`);
    /// false if there is no entry.
    pub fn get_mark(&self, index: u64, mark: XaMark) -> bool {
        let mut node = match &self.head {
            Head::Empty => return false,
            Head::Entry(_) => return index == 0 && self.marked(mark),
            Head::Node(top) if index > max_index(top.shift) => return false,
            Head::Node(top) => top,
        };
        loop {
            let offset = node.offset(index);
            if !node.marks.get(mark, offset) {
                return false;
            }
            match &node.slots {
                Slots::Leaf(_) => return true,
                Slots::Interior(children) => match &children[offset] {
                    Some(child) => node = child,
                    None => return false,
                },
            }
        }
    }

    /// Whether any entry has `mark` (Linux `xa_marked`), in O(1).
    pub fn marked(&self, mark: XaMark) -> bool {
        self.marks & mark.bit() != 0
    }

    /// The entry with the lowest index in `[start, max]` that passes
    /// `filter` (`None`: any entry, Linux `XA_PRESENT`; `Some(mark)`: only
    /// entries with `mark`), with its index (Linux `xa_find`).
    pub fn find(&self, start: u64, max: u64, filter: Option<XaMark>) -> Option<(u64, T)> {
        if start > max {
            return None;
        }
        match &self.head {
            Head::Empty => None,
            Head::Entry(entry) => (start == 0 && filter.is_none_or(|mark| self.marked(mark))).then_some((0, *entry)),
            Head::Node(top) if start > max_index(top.shift) => None,
            Head::Node(top) => find_in(top, 0, start, max, filter),
        }
    }

    /// As [`XArray::find`], from just above `index` (Linux
    /// `xa_find_after`): the next entry of a walk that returned `index`.
    pub fn find_after(&self, index: u64, max: u64, filter: Option<XaMark>) -> Option<(u64, T)> {
        self.find(index.checked_add(1)?, max, filter)
    }

    /// Every entry with its index, in index order (Linux `xa_for_each`).
    pub fn iter(&self) -> XaIter<'_, T, A> {
        self.iter_range(0, u64::MAX, None)
    }

    /// The entries with `mark`, in index order (Linux
    /// `xa_for_each_marked`).
    pub fn iter_marked(&self, mark: XaMark) -> XaIter<'_, T, A> {
        self.iter_range(0, u64::MAX, Some(mark))
    }

    /// The entries in `[start, max]` that pass `filter` (as in
    /// [`XArray::find`]), in index order (Linux `xa_for_each_range`, and
    /// `xas_for_each_marked` from `start` to `max`).
    pub fn iter_range(&self, start: u64, max: u64, filter: Option<XaMark>) -> XaIter<'_, T, A> {
        XaIter { xa: self, next: Some(start), max, filter }
    }

    /// The lowest index in `[start, max]` without an entry, or `None` if
    /// every one has an entry (the search of Linux `page_cache_next_miss`,
    /// for readahead).
    #[doc(alias = "page_cache_next_miss")]
    pub fn next_hole(&self, start: u64, max: u64) -> Option<u64> {
        if start > max {
            return None;
        }
        match &self.head {
            Head::Empty => Some(start),
            Head::Entry(_) if start == 0 => (max > 0).then_some(1),
            Head::Entry(_) => Some(start),
            Head::Node(top) => {
                let top_max = max_index(top.shift);
                if start > top_max {
                    return Some(start);
                }
                // Beyond the top's reach everything is a hole.
                next_hole_in(top, 0, start, max).or_else(|| (top_max < max).then(|| top_max + 1))
            }
        }
    }

    /// The highest index in `[min, start]` without an entry, or `None` if
    /// every one has an entry (the search of Linux `page_cache_prev_miss`).
    #[doc(alias = "page_cache_prev_miss")]
    pub fn prev_hole(&self, start: u64, min: u64) -> Option<u64> {
        if start < min {
            return None;
        }
        match &self.head {
            Head::Empty => Some(start),
            Head::Entry(_) => (start > 0).then_some(start),
            Head::Node(top) if start > max_index(top.shift) => Some(start),
            Head::Node(top) => prev_hole_in(top, 0, start, min),
        }
    }

    /// Sets `to` on every entry in `[start, end]` that has `from`, and
    /// returns how many have `from` (Linux `tag_pages_for_writeback` with
    /// `PAGECACHE_TAG_DIRTY` and `PAGECACHE_TAG_TOWRITE`, once
    /// `radix_tree_range_tag_if_tagged`). Only subtrees with a `from` entry
    /// are visited.
    #[doc(alias = "tag_pages_for_writeback")]
    pub fn tag_range(&mut self, start: u64, end: u64, from: XaMark, to: XaMark) -> usize {
        if start > end || !self.marked(from) {
            return 0;
        }
        match &mut self.head {
            Head::Empty => 0,
            Head::Entry(_) => {
                if start != 0 {
                    return 0;
                }
                self.marks |= to.bit();
                1
            }
            Head::Node(top) => {
                if start > max_index(top.shift) {
                    return 0;
                }
                let tagged = tag_in(top, 0, start, end, from, to);
                self.marks = top.marks.summary();
                tagged
            }
        }
    }

    /// Removes every entry and frees every node (Linux `xa_destroy`).
    pub fn destroy(&mut self) {
        if let Head::Node(top) = mem::replace(&mut self.head, Head::Empty) {
            free_subtree(top, &self.nodes);
        }
        self.marks = 0;
        self.count = 0;
    }

    /// Checks invariants 1-7 of the module documentation.
    ///
    /// # Errors
    /// The first broken invariant found.
    pub fn check(&self) -> Result<(), XaCheckError> {
        let mut count = 0;
        let computed = match &self.head {
            Head::Empty => 0,
            Head::Entry(_) => {
                count = 1;
                self.marks
            }
            Head::Node(top) => {
                if top.shift % XA_CHUNK_SHIFT != 0 || top.shift > XA_MAX_SHIFT {
                    return Err(XaCheckError::BadTopShift { shift: top.shift });
                }
                check_node(top, 0, top.shift, &mut count)?;
                if top.present == 1 {
                    return Err(match top.slots {
                        Slots::Leaf(_) => XaCheckError::EntryZeroInNode,
                        Slots::Interior(_) => XaCheckError::NotShrunk { shift: top.shift },
                    });
                }
                top.marks.summary()
            }
        };
        if computed != self.marks {
            return Err(XaCheckError::BadRootMarks { stored: self.marks, computed });
        }
        if count != self.count {
            return Err(XaCheckError::BadCount { stored: self.count, computed: count });
        }
        Ok(())
    }

    /// Takes the top node out of the head, first adding the levels `index`
    /// needs (Linux `xas_expand`); the caller puts it back. Allocation
    /// failure restores the head and frees the levels added.
    fn take_top_for(&mut self, index: u64) -> Result<NodeBox<T>, XaError> {
        let mut top = match mem::replace(&mut self.head, Head::Empty) {
            Head::Node(top) => top,
            Head::Empty => {
                return NodeMem::alloc(&self.nodes)
                    .map(|mem| mem.init(XaNode::new(shift_for(index))))
                    .ok_or(XaError::NoMemory);
            }
            Head::Entry(entry) => match NodeMem::alloc(&self.nodes) {
                Some(mem) => mem.init(XaNode::leaf_with_entry_zero(entry, self.marks)),
                None => {
                    self.head = Head::Entry(entry);
                    return Err(XaError::NoMemory);
                }
            },
        };
        while max_index(top.shift) < index {
            let Some(mem) = NodeMem::alloc(&self.nodes) else {
                self.head = Head::Node(top);
                self.shrink();
                return Err(XaError::NoMemory);
            };
            top = mem.init(XaNode::above(top.shift + XA_CHUNK_SHIFT, top));
        }
        Ok(top)
    }

    /// Frees an empty top node, and takes away top levels that use only
    /// slot 0, down to an entry at index 0 in the head (Linux `xas_shrink`
    /// and `xas_delete_node` at the top). The array's marks stay right: a
    /// top using only slot 0 has that slot's marks.
    fn shrink(&mut self) {
        loop {
            let mut top = match mem::replace(&mut self.head, Head::Empty) {
                Head::Node(top) if top.present & !1 == 0 => top,
                head => {
                    self.head = head;
                    return;
                }
            };
            self.head = match &mut top.slots {
                Slots::Leaf(entries) => entries[0].take().map_or(Head::Empty, Head::Entry),
                Slots::Interior(children) => children[0].take().map_or(Head::Empty, Head::Node),
            };
            top.free_in(&self.nodes);
            if let Head::Empty = self.head {
                self.marks = 0;
            }
        }
    }

    /// The number of nodes in the tree.
    #[cfg(test)]
    fn nr_nodes(&self) -> usize {
        fn count<T>(node: &XaNode<T>) -> usize {
            match &node.slots {
                Slots::Leaf(_) => 1,
                Slots::Interior(children) => 1 + children.iter().flatten().map(|c| count(c)).sum::<usize>(),
            }
        }
        match &self.head {
            Head::Node(top) => count(top),
            _ => 0,
        }
    }
}

impl<T: Copy, A: XaNodeAlloc<T>> Drop for XArray<T, A> {
    fn drop(&mut self) {
        self.destroy();
    }
}

/// Stores `entry` at `index` under `node`, making the nodes missing on the
/// way from `cache` (Linux `xas_create` and `xas_store`). On failure the
/// nodes made are freed again: no node is left empty (invariant 4).
fn store_in<T: Copy, A: XaNodeAlloc<T> + ?Sized>(
    node: &mut XaNode<T>,
    index: u64,
    entry: T,
    cache: &A,
) -> Result<Option<T>, XaError> {
    let offset = node.offset(index);
    let child_shift = node.child_shift();
    let stored = match &mut node.slots {
        Slots::Leaf(entries) => Ok(entries[offset].replace(entry)),
        Slots::Interior(children) => {
            let child = match &mut children[offset] {
                Some(child) => child,
                empty => {
                    let mem = NodeMem::alloc(cache).ok_or(XaError::NoMemory)?;
                    empty.insert(mem.init(XaNode::new(child_shift)))
                }
            };
            let stored = store_in(child, index, entry, cache);
            if let Some(child) = children[offset].take_if(|child| child.present == 0) {
                child.free_in(cache);
            }
            stored
        }
    };
    if stored.is_ok() {
        node.present |= 1 << offset;
    }
    stored
}

/// Removes the entry at `index` under `node`, freeing the nodes it leaves
/// empty below `node` and updating the marks on the way up (Linux
/// `xas_store` of NULL, `xas_init_marks`, `update_node` and
/// `xas_delete_node`).
fn erase_in<T: Copy, A: XaNodeAlloc<T> + ?Sized>(node: &mut XaNode<T>, index: u64, cache: &A) -> Option<T> {
    let offset = node.offset(index);
    let old = match &mut node.slots {
        Slots::Leaf(entries) => entries[offset].take()?,
        Slots::Interior(children) => {
            let child = children[offset].as_mut()?;
            let old = erase_in(child, index, cache)?;
            if child.present != 0 {
                let marks = child.marks.summary();
                node.marks.set_at(offset, marks);
                return Some(old);
            }
            if let Some(child) = children[offset].take() {
                child.free_in(cache);
            }
            old
        }
    };
    node.present &= !(1 << offset);
    node.marks.set_at(offset, 0);
    Some(old)
}

/// Sets `mark` on the entry at `index` under `node` and on its path
/// (Linux `xas_set_mark`); false if there is no entry.
fn set_mark_in<T: Copy>(node: &mut XaNode<T>, index: u64, mark: XaMark) -> bool {
    let offset = node.offset(index);
    let found = match &mut node.slots {
        Slots::Leaf(entries) => entries[offset].is_some(),
        Slots::Interior(children) => children[offset].as_mut().is_some_and(|child| set_mark_in(child, index, mark)),
    };
    if found {
        node.marks.assign(mark, offset, true);
    }
    found
}

/// Clears `mark` on the entry at `index` under `node`, and on its path as
/// far as nothing else below has it (Linux `xas_clear_mark`); false if
/// there is no entry.
fn clear_mark_in<T: Copy>(node: &mut XaNode<T>, index: u64, mark: XaMark) -> bool {
    let offset = node.offset(index);
    let still_marked = match &mut node.slots {
        Slots::Leaf(entries) if entries[offset].is_some() => false,
        Slots::Leaf(_) => return false,
        Slots::Interior(children) => {
            let Some(child) = children[offset].as_mut() else {
                return false;
            };
            if !clear_mark_in(child, index, mark) {
                return false;
            }
            child.marks.any(mark)
        }
    };
    node.marks.assign(mark, offset, still_marked);
    true
}

/// The first entry in `[start, max]` under `node` (which starts at `base`
/// and reaches `start`) passing `filter` (Linux `xas_find` and
/// `xas_find_marked`).
fn find_in<T: Copy>(node: &XaNode<T>, base: u64, start: u64, max: u64, filter: Option<XaMark>) -> Option<(u64, T)> {
    let first = node.offset(start);
    let bitmap = filter.map_or(node.present, |mark| node.marks.0[mark as usize]);
    let mut candidates = bitmap & (u64::MAX << first);
    while candidates != 0 {
        let offset = candidates.trailing_zeros() as usize;
        let slot_base = node.slot_base(base, offset);
        if offset > first && slot_base > max {
            return None;
        }
        match &node.slots {
            Slots::Leaf(entries) => {
                if let Some(entry) = entries[offset] {
                    return Some((slot_base, entry));
                }
            }
            Slots::Interior(children) => {
                let from = if offset == first { start } else { slot_base };
                if let Some(found) = children[offset].as_ref().and_then(|c| find_in(c, slot_base, from, max, filter)) {
                    return Some(found);
                }
            }
        }
        candidates &= candidates - 1;
    }
    None
}

/// The first index in `[start, max]` under `node` (which starts at `base`
/// and reaches `start`) without an entry.
fn next_hole_in<T: Copy>(node: &XaNode<T>, base: u64, start: u64, max: u64) -> Option<u64> {
    let first = node.offset(start);
    let children = match &node.slots {
        Slots::Leaf(_) => {
            let holes = !node.present & (u64::MAX << first);
            if holes == 0 {
                return None;
            }
            let hole = base | u64::from(holes.trailing_zeros());
            return (hole <= max).then_some(hole);
        }
        Slots::Interior(children) => children,
    };
    for (offset, child) in children.iter().enumerate().take(node.nr_slots()).skip(first) {
        let from = if offset == first { start } else { node.slot_base(base, offset) };
        if from > max {
            return None;
        }
        match child {
            None => return Some(from),
            Some(child) => {
                if let Some(hole) = next_hole_in(child, node.slot_base(base, offset), from, max) {
                    return Some(hole);
                }
            }
        }
    }
    None
}

/// The last index in `[min, start]` under `node` (which starts at `base`
/// and reaches `start`) without an entry.
fn prev_hole_in<T: Copy>(node: &XaNode<T>, base: u64, start: u64, min: u64) -> Option<u64> {
    let first = node.offset(start);
    let children = match &node.slots {
        Slots::Leaf(_) => {
            let holes = !node.present & (u64::MAX >> (XA_CHUNK_MASK - first as u64));
            if holes == 0 {
                return None;
            }
            let hole = base | u64::from(u64::BITS - 1 - holes.leading_zeros());
            return (hole >= min).then_some(hole);
        }
        Slots::Interior(children) => children,
    };
    for (offset, child) in children.iter().enumerate().take(first + 1).rev() {
        let from = if offset == first { start } else { node.slot_last(base, offset) };
        if from < min {
            return None;
        }
        match child {
            None => return Some(from),
            Some(child) => {
                if let Some(hole) = prev_hole_in(child, node.slot_base(base, offset), from, min) {
                    return Some(hole);
                }
            }
        }
    }
    None
}

/// Sets `to` on the entries in `[start, end]` under `node` (which starts
/// at `base` and reaches `start`) that have `from`, visiting only slots
/// marked `from`; returns how many there are.
fn tag_in<T: Copy>(node: &mut XaNode<T>, base: u64, start: u64, end: u64, from: XaMark, to: XaMark) -> usize {
    let first = node.offset(start);
    let mut candidates = node.marks.0[from as usize] & (u64::MAX << first);
    let mut tagged = 0;
    while candidates != 0 {
        let offset = candidates.trailing_zeros() as usize;
        candidates &= candidates - 1;
        let slot_base = node.slot_base(base, offset);
        if offset > first && slot_base > end {
            break;
        }
        let has_to = match &mut node.slots {
            Slots::Leaf(_) => {
                tagged += 1;
                true
            }
            Slots::Interior(children) => match children[offset].as_mut() {
                Some(child) => {
                    let child_start = if offset == first { start } else { slot_base };
                    tagged += tag_in(child, slot_base, child_start, end, from, to);
                    child.marks.any(to)
                }
                None => false,
            },
        };
        node.marks.assign(to, offset, has_to);
    }
    tagged
}

/// Frees `node` and every node below it.
fn free_subtree<T: Copy, A: XaNodeAlloc<T> + ?Sized>(mut node: NodeBox<T>, cache: &A) {
    if let Slots::Interior(children) = &mut node.slots {
        for child in children.iter_mut().filter_map(Option::take) {
            free_subtree(child, cache);
        }
    }
    node.free_in(cache);
}

/// Checks invariants 2-6 for `node` (starting at `base`, expected at
/// `shift`) and below, adding its entries to `count`.
fn check_node<T: Copy>(node: &XaNode<T>, base: u64, shift: u32, count: &mut usize) -> Result<(), XaCheckError> {
    if node.shift != shift {
        return Err(XaCheckError::BadShift { base, shift: node.shift, expected: shift });
    }
    if matches!(node.slots, Slots::Leaf(_)) != (shift == 0) {
        return Err(XaCheckError::WrongKind { base, shift });
    }
    if node.present == 0 {
        return Err(XaCheckError::EmptyNode { base, shift });
    }
    for offset in 0..XA_CHUNK_SIZE {
        let occupied = match &node.slots {
            Slots::Leaf(entries) => entries[offset].is_some(),
            Slots::Interior(children) => children[offset].is_some(),
        };
        if occupied != (node.present & (1 << offset) != 0) || (occupied && offset >= node.nr_slots()) {
            return Err(XaCheckError::BadOccupancy { base, shift });
        }
        let below = match &node.slots {
            Slots::Leaf(_) => {
                *count += usize::from(occupied);
                if occupied { node.marks.at(offset) } else { 0 }
            }
            Slots::Interior(children) => match &children[offset] {
                Some(child) => {
                    let child_base = node.slot_base(base, offset);
                    check_node(child, child_base, node.child_shift(), count)?;
                    child.marks.summary()
                }
                None => 0,
            },
        };
        if let Some(&mark) = XaMark::ALL.iter().find(|&&m| node.marks.get(m, offset) != (below & m.bit() != 0)) {
            return Err(XaCheckError::BadMark { base, shift, offset, mark });
        }
    }
    Ok(())
}

/// The entries of an index range in index order, optionally only those
/// with a mark: [`XArray::iter`], [`XArray::iter_marked`],
/// [`XArray::iter_range`]. Each step is an [`XArray::find`].
pub struct XaIter<'a, T: Copy, A: XaNodeAlloc<T>> {
    xa: &'a XArray<T, A>,
    /// The next index to look from; `None` once past `max`.
    next: Option<u64>,
    max: u64,
    filter: Option<XaMark>,
}

impl<T: Copy, A: XaNodeAlloc<T>> Iterator for XaIter<'_, T, A> {
    type Item = (u64, T);

    fn next(&mut self) -> Option<(u64, T)> {
        let found = self.xa.find(self.next?, self.max, self.filter);
        self.next = found.and_then(|(index, _)| index.checked_add(1));
        found
    }
}

impl<T: Copy, A: XaNodeAlloc<T>> FusedIterator for XaIter<'_, T, A> {}

/// The only place nodes are reached through raw pointers.
mod node {
    use core::ops::{Deref, DerefMut};
    use core::ptr::NonNull;

    use super::{XaNode, XaNodeAlloc};

    /// Memory for one node, allocated and not yet initialized; the first
    /// step of making a [`NodeBox`], so that a caller can get the memory
    /// before it gives up the values the node will hold.
    pub(super) struct NodeMem<T>(NonNull<XaNode<T>>);

    impl<T> NodeMem<T> {
        /// Memory from `cache`, the array's node cache (invariant 8), or
        /// `None` if it has none.
        pub(super) fn alloc<A: XaNodeAlloc<T> + ?Sized>(cache: &A) -> Option<Self> {
            cache.alloc().map(NodeMem)
        }

        /// Writes `node` into the memory and takes ownership of it.
        pub(super) fn init(self, node: XaNode<T>) -> NodeBox<T> {
            // SAFETY: `ObjCache::alloc` returned memory aligned and valid
            // for writes of one `XaNode<T>` that nothing else uses, and
            // `self`, consumed here, was its only handle.
            unsafe { self.0.write(node) };
            NodeBox(self.0)
        }
    }

    /// The owner of one node of an array: a `Box` whose allocator is the
    /// array's node cache (invariant 8). Dropping one without
    /// [`NodeBox::free_in`] leaks the node, which the tests' node count
    /// would catch.
    pub(super) struct NodeBox<T>(NonNull<XaNode<T>>);

    impl<T> NodeBox<T> {
        /// Gives the node's memory back to `cache`, the array's node cache,
        /// once the node is out of the tree. Children still in its slots
        /// leak.
        pub(super) fn free_in<A: XaNodeAlloc<T> + ?Sized>(self, cache: &A) {
            // SAFETY: invariant 8: the node came from `cache` (every array
            // passes its own), and `self`, consumed here, was the only
            // handle to it. `XaNode` has nothing to drop: entries are
            // `Copy` and `NodeBox` has no destructor.
            unsafe { cache.free(self.0) }
        }
    }

    impl<T> Deref for NodeBox<T> {
        type Target = XaNode<T>;

        fn deref(&self) -> &XaNode<T> {
            // SAFETY: `init` wrote the node, and it stays allocated until
            // `free_in` consumes `self`, its only handle; `&self` excludes
            // a `&mut` through it.
            unsafe { self.0.as_ref() }
        }
    }

    impl<T> DerefMut for NodeBox<T> {
        fn deref_mut(&mut self) -> &mut XaNode<T> {
            // SAFETY: as in `deref`; `&mut self` makes this the only
            // reference to the node.
            unsafe { self.0.as_mut() }
        }
    }

    // SAFETY: a `NodeBox` owns its node as a `Box` owns its value: moving
    // it to another thread moves every access to the node along.
    unsafe impl<T: Send> Send for NodeBox<T> {}

    // SAFETY: `&NodeBox` gives only `&XaNode`, as `&Box` does, and nodes
    // have no interior mutability.
    unsafe impl<T: Sync> Sync for NodeBox<T> {}
}

#[cfg(test)]
mod tests;
