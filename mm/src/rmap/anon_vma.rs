//! The anonymous reverse map: `anon_vma` and `anon_vma_chain` (Linux
//! `mm/rmap.c`: `__anon_vma_prepare`, `anon_vma_clone`, `anon_vma_fork`,
//! `unlink_anon_vmas`, `folio_get_anon_vma`; `mm/interval_tree.c`'s
//! `anon_vma_interval_tree_*`).
//!
//! An anonymous page records in `page->mapping` the [`AnonVma`] of the VMA
//! it was created in ([`crate::rmap::page_add_new_anon_rmap`]). Every VMA
//! that may map the page links that `anon_vma` through an
//! [`AnonVmaChain`] (AVC): the VMA it was created in, the halves a split
//! made of it, its copies in fork children, its moved copies. Each
//! `anon_vma` keeps its AVCs in an interval tree keyed by the page range
//! `[vm_pgoff, vm_pgoff + pages - 1]` of their VMA (augmented with the
//! largest last page, as [`crate::interval_tree`]), so that the VMAs that
//! may map page `index` are found in `O(log n)` per VMA.
//!
//! # The fork hierarchy (Linux's rules)
//!
//! A VMA's first private write fault gives it a new root `anon_vma`
//! ([`anon_vma_prepare`]). Fork gives the child's VMA a chain to every
//! `anon_vma` of the parent's VMA ([`anon_vma_clone`]) and then an
//! `anon_vma` of its own, child of the parent VMA's, for the pages its
//! copy-on-write faults make ([`anon_vma_fork`]); so a page is looked for
//! in the VMAs of the process that made it and its descendants only.
//! Unless an `anon_vma` of the chain can be reused: one with no VMA of
//! its own left (`num_active_vmas == 0`) and at most one child
//! (`num_children < 2`), which bounds the hierarchy of a process that
//! forks again and again while its children exit (Linux 6.2's reuse
//! rule). [`unlink_anon_vmas`] takes a VMA's AVCs out of their trees and
//! frees each `anon_vma` whose tree is empty and no other holds a
//! reference on.
//!
//! # Invariants
//!
//! Under the anon_vma lock ([`AnonVmaLock`]), for every `anon_vma` `av`
//! reached through a VMA of an address space using the allocator whose lock
//! it is ([`VmaTree::check`](crate::vma::VmaTree::check) verifies 1 to 3
//! per VMA, the rmap property test 4 to 6 over whole machines):
//!
//! 1. A VMA has an `anon_vma` iff its chain is non-empty, and its chain
//!    holds an AVC naming its `anon_vma`.
//! 2. Every AVC of a VMA's chain is linked into its `anon_vma`'s tree with
//!    the VMA's owner, start and page range, kept up to date new coverage
//!    first, as [`crate::interval_tree`]'s copies are.
//! 3. No two AVCs of one chain name the same `anon_vma`.
//! 4. `num_active_vmas` counts the VMAs whose `anon_vma` is `av`;
//!    `num_children` the `anon_vma`s whose parent is `av`, `av` itself if
//!    it is a root (Linux's self-parent link).
//! 5. `refcount` is 1 while the tree is non-empty, plus one per `anon_vma`
//!    of the hierarchy whose root `av` is (itself excepted), plus one per
//!    pin ([`AnonVmaPin`]); `av` is freed when it reaches 0.
//! 6. A page that is mapped (`_mapcount >= 0`) and names an `anon_vma` in
//!    its `mapping` names a live one, linked by every VMA whose ptes map
//!    the page. That is what makes [`folio_lock_anon_vma`] sound: the walk
//!    holds a reference on the page and the lock, and finds it mapped.
//!
//! # Locking
//!
//! One spin lock per machine, [`AnonVmaLock`], kept by the allocator every
//! address space takes its VMAs and `anon_vma`s from
//! ([`AnonVmaAlloc::anon_vma_lock`]), protects every tree, the counts and
//! the AVC copies. A VMA's chain list and its `anon_vma` field belong to
//! the VMA's owner: changed under its mmap lock held for writing, except
//! that a fault under the read lock installs the first `anon_vma` of a
//! VMA that has none under the anon_vma lock ([`anon_vma_prepare`], where
//! Linux takes `mm->page_table_lock`). Nothing allocates, sleeps or takes
//! an mmap or page lock under it; it is never taken in interrupt context.
//! Lock order: mmap lock -> page lock -> `i_mmap` lock -> anon_vma lock ->
//! page-table lock -> slab and page allocator locks (`anon_vma`s and AVCs
//! are freed under it).
//!
//! # Differences from Linux
//!
//! - **One lock for the machine**, not the root's `rwsem` per hierarchy:
//!   without RCU and `SLAB_TYPESAFE_BY_RCU`, a walk starting from a
//!   page's `mapping` could not reach a root's lock safely while the
//!   hierarchy is being freed; with one lock outside every `anon_vma`,
//!   [`folio_lock_anon_vma`] finds the page mapped under the lock, which
//!   keeps its `anon_vma` alive (invariant 6). A spin lock, as every
//!   holder only relinks nodes.
//! - Every allocation a change needs is made before the lock is taken,
//!   so a clone or fork that runs out of memory changes nothing (Linux
//!   retries with `GFP_KERNEL` outside the lock and unwinds).
//! - No `find_mergeable_anon_vma`: a VMA's first fault always makes a new
//!   `anon_vma`, never borrows a neighbour's, so two neighbours faulted
//!   separately do not merge later (Linux would have them share one).
//! - A merge whose survivor has no `anon_vma` adopts the chain of the VMA
//!   it absorbs ([`anon_vma_adopt`]) instead of cloning it
//!   (`dup_anon_vma`): the absorbed VMA goes away, so nothing allocates.

#![allow(unsafe_code)]

use core::cell::{Cell, UnsafeCell};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};

use crate::avl::{AvlAdapter, AvlLink, AvlTree};
use crate::interval_tree::MmId;
use crate::page::Page;
use crate::slab_common::ObjCache;

use super::PAGE_MAPPING_ANON;

/// The lock of every `anon_vma` of a machine (Linux's root
/// `anon_vma->rwsem`; see the module doc for why there is one).
pub struct AnonVmaLock(spin::Mutex<()>);

impl Default for AnonVmaLock {
    fn default() -> Self {
        Self::new()
    }
}

impl AnonVmaLock {
    /// An unlocked lock.
    pub const fn new() -> Self {
        AnonVmaLock(spin::Mutex::new(()))
    }

    pub(crate) fn lock(&self) -> AnonVmaGuard<'_> {
        AnonVmaGuard(self.0.lock())
    }
}

/// Proof that the anon_vma lock is held.
pub(crate) struct AnonVmaGuard<'l>(#[allow(dead_code, reason = "held for its drop")] spin::MutexGuard<'l, ()>);

/// Where `anon_vma`s and AVCs come from (Linux's `anon_vma_cachep` and
/// `anon_vma_chain_cachep`), with the machine's [`AnonVmaLock`]. The
/// kernel backs it with the slab caches "anon_vma" and "anon_vma_chain";
/// host tests with the heap. Every address space of a machine uses the
/// same allocator (a fork child its parent's), since `anon_vma`s are
/// shared among them and freed by whichever drops the last use.
pub trait AnonVmaAlloc: ObjCache<AnonVma> + ObjCache<AnonVmaChain> {
    /// The lock of every `anon_vma` this allocator hands out.
    fn anon_vma_lock(&self) -> &AnonVmaLock;
}

impl<C: AnonVmaAlloc + ?Sized> AnonVmaAlloc for &C {
    fn anon_vma_lock(&self) -> &AnonVmaLock {
        (**self).anon_vma_lock()
    }
}

/// No memory for an `anon_vma` or an AVC (Linux `-ENOMEM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnonVmaNoMem;

/// An anonymous reverse map (Linux `struct anon_vma`). Every field is
/// read and written only under the anon_vma lock.
pub struct AnonVma {
    root: Cell<NonNull<AnonVma>>,
    parent: Cell<NonNull<AnonVma>>,
    refcount: Cell<u64>,
    /// `anon_vma`s whose parent this is, itself if a root (Linux
    /// `num_children`).
    num_children: Cell<u64>,
    /// VMAs whose `anon_vma` this is (Linux `num_active_vmas`).
    num_active_vmas: Cell<u64>,
    rb_root: UnsafeCell<AvlTree<AvcAdapter>>,
}

/// A link between a VMA and an `anon_vma` it may map pages of (Linux
/// `struct anon_vma_chain`): a node of the `anon_vma`'s tree and of the
/// VMA's chain. Its copy of the VMA (owner, start, page range) is what a
/// walk reports, written only under the anon_vma lock.
pub struct AnonVmaChain {
    rb: AvlLink<AvcAdapter>,
    anon_vma: NonNull<AnonVma>,
    /// The next AVC of the same VMA (Linux `same_vma`), the VMA's owner's.
    same_vma: Cell<Option<NonNull<AnonVmaChain>>>,
    copy: Cell<AvcCopy>,
    linked: Cell<bool>,
}

/// What an AVC says of its VMA: the address space, start address and
/// page range `[first, last]` (its `vm_pgoff` and last page).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AvcCopy {
    /// The VMA's address space.
    pub mm: MmId,
    /// Its start address.
    pub start: u64,
    /// Its `vm_pgoff`.
    pub first: u64,
    /// Its last page index.
    pub last: u64,
}

impl AvcCopy {
    /// The address where the VMA maps page `index`, which it covers
    /// (Linux `vma_address`).
    pub fn address(&self, index: u64) -> u64 {
        self.start + ((index - self.first) << crate::addr::PAGE_SHIFT)
    }
}

/// Keyed by first page, augmented with the largest last page of the
/// subtree (Linux `anon_vma_interval_tree`, `rb_subtree_last`).
pub(crate) struct AvcAdapter;

// SAFETY: `link` returns the `rb` field of the node itself.
unsafe impl AvlAdapter for AvcAdapter {
    type Node = AnonVmaChain;
    type Aug = u64;

    fn link(node: &AnonVmaChain) -> &AvlLink<Self> {
        &node.rb
    }

    fn key(node: &AnonVmaChain) -> u64 {
        node.copy.get().first
    }

    fn augment(node: &AnonVmaChain, left: Option<u64>, right: Option<u64>) -> u64 {
        node.copy.get().last.max(left.unwrap_or(0)).max(right.unwrap_or(0))
    }
}

/// An `anon_vma` as a VMA or a page names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AnonVmaPtr(NonNull<AnonVma>);

impl AnonVmaPtr {
    /// The value of `page->mapping` of an anonymous page of this
    /// `anon_vma` (Linux `folio->mapping = anon_vma + PAGE_MAPPING_ANON`).
    pub fn mapping(self) -> u64 {
        self.0.as_ptr() as u64 | PAGE_MAPPING_ANON
    }

    /// The `anon_vma` a page's `mapping` names, if it is anonymous and
    /// names one (Linux `folio_anon_vma`). Not a proof that it is alive.
    pub fn from_mapping(mapping: u64) -> Option<Self> {
        if mapping & PAGE_MAPPING_ANON == 0 {
            return None;
        }
        NonNull::new((mapping & !PAGE_MAPPING_ANON) as *mut AnonVma).map(AnonVmaPtr)
    }

    /// The `anon_vma`, which the caller knows is alive.
    ///
    /// # Safety
    /// Under the anon_vma lock `_g`, `self` is linked by some VMA or held by
    /// a reference (invariant 5: it is not freed until the lock is
    /// dropped), and the reference is used only while the lock is held.
    unsafe fn get<'x>(self, _g: &AnonVmaGuard<'_>) -> &'x AnonVma {
        // SAFETY: the caller's promise; `AnonVma` fields are cells read
        // under the lock `_g` proves held, and the caller uses the
        // reference only while it holds it.
        unsafe { &*self.0.as_ptr() }
    }
}

/// A VMA's half of the anonymous reverse map (Linux `vm_area_struct`'s
/// `anon_vma` and `anon_vma_chain`). Atomic so that a fault under the
/// mmap read lock can install the first `anon_vma` while others read.
pub(crate) struct VmaAnonLink {
    anon_vma: AtomicPtr<AnonVma>,
    chain: AtomicPtr<AnonVmaChain>,
}

// SAFETY: the `anon_vma` and AVCs the pointers name are shared between
// address spaces on every CPU and touched only under the anon_vma lock,
// except a chain's `same_vma` links, which only the VMA's owner follows
// under its mmap lock (see the module doc).
unsafe impl Send for AnonVma {}
// SAFETY: as for `Send`: every field is read and written under the lock.
unsafe impl Sync for AnonVma {}
// SAFETY: as for `AnonVma`.
unsafe impl Send for AnonVmaChain {}
// SAFETY: as for `AnonVma`.
unsafe impl Sync for AnonVmaChain {}

impl VmaAnonLink {
    /// A VMA with no `anon_vma`.
    pub(crate) fn new() -> Self {
        VmaAnonLink { anon_vma: AtomicPtr::new(core::ptr::null_mut()), chain: AtomicPtr::new(core::ptr::null_mut()) }
    }

    /// The VMA's `anon_vma` (Linux `vma->anon_vma`).
    pub(crate) fn anon_vma(&self) -> Option<AnonVmaPtr> {
        NonNull::new(self.anon_vma.load(Ordering::Acquire)).map(AnonVmaPtr)
    }

    fn head(&self) -> Option<NonNull<AnonVmaChain>> {
        NonNull::new(self.chain.load(Ordering::Acquire))
    }

    /// The AVCs of the chain, first to last. The caller is the VMA's
    /// owner (see the module doc).
    fn chain(&self) -> impl Iterator<Item = &AnonVmaChain> + '_ {
        // SAFETY: AVCs of a chain stay allocated while they are on it, and
        // only the owner, who is iterating, takes them off.
        core::iter::successors(self.head().map(|p| unsafe { &*p.as_ptr() }), |avc| {
            // SAFETY: as above.
            avc.same_vma.get().map(|p| unsafe { &*p.as_ptr() })
        })
    }

    /// Whether the chain holds exactly one AVC (Linux
    /// `list_is_singular(&vma->anon_vma_chain)`).
    pub(crate) fn is_singular(&self) -> bool {
        self.chain().take(2).count() == 1
    }

    /// AVCs on the chain.
    fn chain_len(&self) -> usize {
        self.chain().count()
    }
}

/// Whether two VMAs' `anon_vma`s let them merge (Linux
/// `is_mergeable_anon_vma`): the same one, or one has none and the
/// other's chain is that `anon_vma` alone.
pub(crate) fn is_mergeable_anon_vma(a: &VmaAnonLink, b: &VmaAnonLink) -> bool {
    match (a.anon_vma(), b.anon_vma()) {
        (None, None) => true,
        (Some(_), None) => a.is_singular(),
        (None, Some(_)) => b.is_singular(),
        (Some(x), Some(y)) => x == y,
    }
}

/// Memory for `n` AVCs, all or none, threaded through `same_vma`.
fn alloc_avcs<A: AnonVmaAlloc + ?Sized>(alloc: &A, n: usize) -> Result<Option<NonNull<AnonVmaChain>>, AnonVmaNoMem> {
    let mut list: Option<NonNull<AnonVmaChain>> = None;
    for _ in 0..n {
        let Some(mem) = ObjCache::<AnonVmaChain>::alloc(alloc) else {
            free_avcs(alloc, list);
            return Err(AnonVmaNoMem);
        };
        // SAFETY: fresh memory for one AVC from its cache, unused by
        // anything else.
        unsafe {
            mem.as_ptr().write(AnonVmaChain {
                rb: AvlLink::new(),
                anon_vma: NonNull::dangling(),
                same_vma: Cell::new(list),
                copy: Cell::new(AvcCopy::default()),
                linked: Cell::new(false),
            })
        };
        list = Some(mem);
    }
    Ok(list)
}

/// Frees a list of AVCs linked into no tree and on no VMA's chain.
fn free_avcs<A: AnonVmaAlloc + ?Sized>(alloc: &A, mut list: Option<NonNull<AnonVmaChain>>) {
    while let Some(avc) = list {
        // SAFETY: the caller owns the list; each AVC is initialized.
        list = unsafe { avc.as_ref() }.same_vma.get();
        // SAFETY: allocated by `alloc_avcs` from this cache, linked nowhere.
        unsafe { ObjCache::<AnonVmaChain>::free(alloc, avc) };
    }
}

/// A new root `anon_vma` with one reference and no VMA yet (Linux
/// `anon_vma_alloc`).
fn alloc_anon_vma<A: AnonVmaAlloc + ?Sized>(alloc: &A) -> Result<NonNull<AnonVma>, AnonVmaNoMem> {
    let mem = ObjCache::<AnonVma>::alloc(alloc).ok_or(AnonVmaNoMem)?;
    // SAFETY: fresh memory for one `anon_vma`, unused by anything else.
    unsafe {
        mem.as_ptr().write(AnonVma {
            root: Cell::new(mem),
            parent: Cell::new(mem),
            refcount: Cell::new(1),
            num_children: Cell::new(0),
            num_active_vmas: Cell::new(0),
            rb_root: UnsafeCell::new(AvlTree::new()),
        })
    };
    Ok(mem)
}

impl AnonVma {
    /// The tree, under the lock.
    fn tree<'g>(&'g self, _g: &'g AnonVmaGuard<'_>) -> &'g AvlTree<AvcAdapter> {
        // SAFETY: the tree is only reached under the lock, mutably only
        // through `tree_mut`, whose borrow of the guard excludes this one.
        unsafe { &*self.rb_root.get() }
    }

    /// The tree, mutably, under the lock.
    #[allow(clippy::mut_from_ref, reason = "the exclusive borrow of the guard is the exclusion")]
    fn tree_mut<'g>(&'g self, _g: &'g mut AnonVmaGuard<'_>) -> &'g mut AvlTree<AvcAdapter> {
        // SAFETY: the lock is held and the guard borrowed exclusively, so
        // no other reference to any tree exists now.
        unsafe { &mut *self.rb_root.get() }
    }
}

/// Links `avc` into `anon_vma`'s tree with `copy` and appends it to the
/// chain whose last AVC is `*tail` (Linux `anon_vma_chain_link`).
///
/// # Safety
/// `avc` is initialized, linked into no tree and on no chain but the list
/// the caller is building; `anon_vma` is alive under `g`.
unsafe fn avc_link(g: &mut AnonVmaGuard<'_>, avc: NonNull<AnonVmaChain>, anon_vma: NonNull<AnonVma>, copy: AvcCopy) {
    // SAFETY: the caller owns `avc`; nothing else reaches it yet.
    unsafe { (*avc.as_ptr()).anon_vma = anon_vma };
    // SAFETY: as above; shared from now on, under the lock.
    let node = unsafe { avc.as_ref() };
    node.copy.set(copy);
    node.same_vma.set(None);
    // SAFETY: `anon_vma` is alive (the caller's promise).
    let av = unsafe { anon_vma.as_ref() };
    // SAFETY: linked nowhere; stays allocated and unmoved until
    // `unlink_anon_vmas` removes it under the lock (invariant 2).
    unsafe { av.tree_mut(g).insert_ref(node) };
    node.linked.set(true);
}

/// Puts the chain `list` (built by [`alloc_avcs`]) on `vma`, which has
/// none, in order.
fn set_chain(vma: &VmaAnonLink, first: Option<NonNull<AnonVmaChain>>) {
    vma.chain.store(first.map_or(core::ptr::null_mut(), NonNull::as_ptr), Ordering::Release);
}

/// Gives the VMA `vma`, whose copy is `copy`, an `anon_vma` if it has none
/// (Linux `anon_vma_prepare` / `__anon_vma_prepare`), for its first
/// private page: a new root, since neighbours' are never borrowed (see the
/// module doc). Callable under the mmap read lock: a racing fault that
/// installed one first wins and ours is freed.
///
/// Errors: [`AnonVmaNoMem`], nothing changed (the fault is `OOM`).
pub(crate) fn anon_vma_prepare<A: AnonVmaAlloc + ?Sized>(
    alloc: &A,
    vma: &VmaAnonLink,
    copy: AvcCopy,
) -> Result<AnonVmaPtr, AnonVmaNoMem> {
    if let Some(av) = vma.anon_vma() {
        return Ok(av);
    }
    let avc = alloc_avcs(alloc, 1)?.ok_or(AnonVmaNoMem)?;
    let av = match alloc_anon_vma(alloc) {
        Ok(av) => av,
        Err(e) => {
            free_avcs(alloc, Some(avc));
            return Err(e);
        }
    };
    let mut g = alloc.anon_vma_lock().lock();
    if let Some(won) = vma.anon_vma() {
        drop(g);
        free_avcs(alloc, Some(avc));
        // SAFETY: never published.
        unsafe { ObjCache::<AnonVma>::free(alloc, av) };
        return Ok(won);
    }
    {
        // SAFETY: just initialized, reached by nothing else yet.
        let a = unsafe { av.as_ref() };
        // The self-parent link of a root (Linux).
        a.num_children.set(1);
        a.num_active_vmas.set(1);
    }
    // SAFETY: `avc` is fresh and `av` alive (ours).
    unsafe { avc_link(&mut g, avc, av, copy) };
    set_chain(vma, Some(avc));
    vma.anon_vma.store(av.as_ptr(), Ordering::Release);
    Ok(AnonVmaPtr(av))
}

/// Gives `dst`, a VMA with an empty chain whose copy is `copy`, an AVC to
/// every `anon_vma` of `src`'s chain, in the same order (Linux
/// `anon_vma_clone`). For a split or a move (`fork` false) `dst` gets
/// `src`'s `anon_vma`; for a fork it gets the root-most one that can be
/// reused (no VMA of its own, fewer than two children), or none. Returns
/// whether `dst` has an `anon_vma`.
///
/// Errors: [`AnonVmaNoMem`], nothing changed.
fn clone_chain<A: AnonVmaAlloc + ?Sized>(
    alloc: &A,
    dst: &VmaAnonLink,
    src: &VmaAnonLink,
    copy: AvcCopy,
    fork: bool,
) -> Result<bool, AnonVmaNoMem> {
    let n = src.chain_len();
    if n == 0 {
        return Ok(false);
    }
    let mut avcs = alloc_avcs(alloc, n)?;
    let mut g = alloc.anon_vma_lock().lock();
    let mut anon_vma = if fork { None } else { src.anon_vma() };
    let (mut first, mut tail): (Option<NonNull<AnonVmaChain>>, Option<NonNull<AnonVmaChain>>) = (None, None);
    for pavc in src.chain() {
        let Some(avc) = avcs else { break };
        // SAFETY: ours, from `alloc_avcs`.
        avcs = unsafe { avc.as_ref() }.same_vma.get();
        // SAFETY: `avc` is fresh; `pavc.anon_vma` is linked by `src`.
        unsafe { avc_link(&mut g, avc, pavc.anon_vma, copy) };
        match tail {
            // SAFETY: the previous AVC of the list being built.
            Some(t) => unsafe { t.as_ref() }.same_vma.set(Some(avc)),
            None => first = Some(avc),
        }
        tail = Some(avc);
        // SAFETY: linked by `src` (invariant 1), so alive under `g`.
        let av = unsafe { AnonVmaPtr(pavc.anon_vma).get(&g) };
        // Linux walks the chain root first and takes the first reusable
        // one; ours runs from the VMA's own to the root, so the last wins.
        // A root is never reusable: its self-parent link and a child make
        // two children.
        if fork && src.anon_vma().is_some() && av.num_children.get() < 2 && av.num_active_vmas.get() == 0 {
            anon_vma = Some(AnonVmaPtr(pavc.anon_vma));
        }
    }
    if let Some(av) = anon_vma {
        // SAFETY: on `src`'s chain, so alive under `g`.
        let a = unsafe { av.get(&g) };
        a.num_active_vmas.set(a.num_active_vmas.get() + 1);
        dst.anon_vma.store(av.0.as_ptr(), Ordering::Release);
    }
    set_chain(dst, first);
    drop(g);
    // `src`'s chain cannot have grown meanwhile (its owner holds its mmap
    // lock), so nothing is left; free whatever is, to be safe.
    free_avcs(alloc, avcs);
    Ok(anon_vma.is_some())
}

/// [`clone_chain`] for a split or a move: `dst` gets `src`'s `anon_vma`
/// (Linux `anon_vma_clone`).
pub(crate) fn anon_vma_clone<A: AnonVmaAlloc + ?Sized>(
    alloc: &A,
    dst: &VmaAnonLink,
    src: &VmaAnonLink,
    copy: AvcCopy,
) -> Result<(), AnonVmaNoMem> {
    clone_chain(alloc, dst, src, copy, false).map(|_| ())
}

/// Gives a fork child's VMA `dst` the parent VMA `src`'s chain and an
/// `anon_vma` of its own, child of `src`'s, unless one could be reused
/// (Linux `anon_vma_fork`). Nothing to do if `src` has no `anon_vma`.
///
/// Errors: [`AnonVmaNoMem`], with `dst`'s chain empty again.
pub(crate) fn anon_vma_fork<A: AnonVmaAlloc + ?Sized>(
    alloc: &A,
    dst: &VmaAnonLink,
    src: &VmaAnonLink,
    copy: AvcCopy,
) -> Result<(), AnonVmaNoMem> {
    let Some(parent) = src.anon_vma() else { return Ok(()) };
    if clone_chain(alloc, dst, src, copy, true)? {
        return Ok(());
    }
    let prepared = alloc_avcs(alloc, 1).and_then(|avc| {
        let avc = avc.ok_or(AnonVmaNoMem)?;
        match alloc_anon_vma(alloc) {
            Ok(av) => Ok((avc, av)),
            Err(e) => {
                free_avcs(alloc, Some(avc));
                Err(e)
            }
        }
    });
    let (avc, av) = match prepared {
        Ok(p) => p,
        Err(e) => {
            unlink_anon_vmas(alloc, dst);
            return Err(e);
        }
    };
    let mut g = alloc.anon_vma_lock().lock();
    {
        // SAFETY: `parent` is `src`'s, alive under `g`.
        let p = unsafe { parent.get(&g) };
        let root = p.root.get();
        // SAFETY: `av` is fresh and ours.
        let a = unsafe { av.as_ref() };
        a.root.set(root);
        a.parent.set(parent.0);
        a.num_active_vmas.set(1);
        // The lock Linux keeps in the root pins it; ours pins it too, so
        // that the hierarchy's shape stays what invariant 5 says.
        // SAFETY: the root of a live `anon_vma` is alive (invariant 5).
        let r = unsafe { AnonVmaPtr(root).get(&g) };
        r.refcount.set(r.refcount.get() + 1);
        p.num_children.set(p.num_children.get() + 1);
    }
    // SAFETY: `avc` fresh, `av` ours.
    unsafe { avc_link(&mut g, avc, av, copy) };
    // Our own comes first on the chain (Linux `list_add`).
    // SAFETY: ours.
    unsafe { avc.as_ref() }.same_vma.set(dst.head());
    set_chain(dst, Some(avc));
    dst.anon_vma.store(av.as_ptr(), Ordering::Release);
    Ok(())
}

/// Drops one reference on `av` under the lock, freeing it, and dropping
/// its reference on its root, at the last (Linux `put_anon_vma` and
/// `__put_anon_vma`).
///
/// # Safety
/// The caller owns the reference dropped; `av` is alive under `g`.
unsafe fn put_anon_vma_locked<A: AnonVmaAlloc + ?Sized>(alloc: &A, g: &AnonVmaGuard<'_>, av: NonNull<AnonVma>) {
    // SAFETY: the caller's promise.
    let a = unsafe { AnonVmaPtr(av).get(g) };
    let left = a.refcount.get().saturating_sub(1);
    a.refcount.set(left);
    if left != 0 {
        return;
    }
    let root = a.root.get();
    // SAFETY: the last reference is gone and its tree is empty (the
    // tree's reference is the first put): nothing reaches it any more.
    unsafe { ObjCache::<AnonVma>::free(alloc, av) };
    if root != av {
        // SAFETY: the reference `av` held on its root.
        unsafe { put_anon_vma_locked(alloc, g, root) };
    }
}

/// Takes `vma`'s AVCs out of their trees and frees them, and each
/// `anon_vma` whose tree empties and whose last reference that was
/// (Linux `unlink_anon_vmas`). The VMA's ptes are gone (zapped first,
/// invariant 6).
pub(crate) fn unlink_anon_vmas<A: AnonVmaAlloc + ?Sized>(alloc: &A, vma: &VmaAnonLink) {
    let Some(mut next) = vma.head() else {
        vma.anon_vma.store(core::ptr::null_mut(), Ordering::Release);
        return;
    };
    let mut g = alloc.anon_vma_lock().lock();
    if let Some(own) = vma.anon_vma() {
        // SAFETY: on the chain, so alive.
        let a = unsafe { own.get(&g) };
        a.num_active_vmas.set(a.num_active_vmas.get().saturating_sub(1));
    }
    vma.anon_vma.store(core::ptr::null_mut(), Ordering::Release);
    set_chain(vma, None);
    // The chain runs from the VMA's own `anon_vma` to the root: a parent
    // is unlinked after its child, so it is alive while the child's empty
    // tree tells it it has one child fewer.
    loop {
        // SAFETY: the chain's AVCs are the caller's (the VMA's owner).
        let avc = unsafe { next.as_ref() };
        let after = avc.same_vma.get();
        let av = avc.anon_vma;
        // SAFETY: linked by this VMA until now, so alive.
        let a = unsafe { AnonVmaPtr(av).get(&g) };
        if avc.linked.get() {
            // SAFETY: linked into this `anon_vma`'s tree (invariant 2).
            unsafe { a.tree_mut(&mut g).remove_ref(avc) };
            avc.linked.set(false);
        }
        // SAFETY: re-borrow after the mutable use of the guard.
        let a = unsafe { AnonVmaPtr(av).get(&g) };
        if a.tree(&g).is_empty() {
            // SAFETY: the parent of an `anon_vma` whose tree just emptied
            // is later on this chain, so alive.
            let p = unsafe { AnonVmaPtr(a.parent.get()).get(&g) };
            p.num_children.set(p.num_children.get().saturating_sub(1));
            // SAFETY: the tree's reference (invariant 5).
            unsafe { put_anon_vma_locked(alloc, &g, av) };
        }
        // SAFETY: out of its tree and off the chain.
        unsafe { ObjCache::<AnonVmaChain>::free(alloc, next) };
        match after {
            Some(n) => next = n,
            None => break,
        }
    }
}

/// Brings the copies of `vma`'s AVCs up to `copy` (Linux
/// `anon_vma_interval_tree_pre_update_vma` / `post_update_vma`, done at
/// once under the lock).
pub(crate) fn anon_vma_update<A: AnonVmaAlloc + ?Sized>(alloc: &A, vma: &VmaAnonLink, copy: AvcCopy) {
    if vma.head().is_none() {
        return;
    }
    let mut g = alloc.anon_vma_lock().lock();
    for avc in vma.chain() {
        if avc.copy.get() == copy && avc.linked.get() {
            continue;
        }
        // SAFETY: linked by this VMA, so alive.
        let a = unsafe { AnonVmaPtr(avc.anon_vma).get(&g) };
        let tree = a.tree_mut(&mut g);
        if avc.linked.get() {
            // SAFETY: linked into this tree (invariant 2).
            unsafe { tree.remove_ref(avc) };
        }
        avc.copy.set(copy);
        // SAFETY: linked nowhere now; stays allocated until unlinked.
        unsafe { tree.insert_ref(avc) };
        avc.linked.set(true);
    }
}

/// Moves the chain and `anon_vma` of `from`, a VMA about to be freed, to
/// `into`, which has none (a merge's survivor; see the module doc). The
/// copies still name `from`'s range until the caller updates them to
/// `into`'s.
pub(crate) fn anon_vma_adopt(from: &VmaAnonLink, into: &VmaAnonLink) {
    into.chain.store(from.chain.swap(core::ptr::null_mut(), Ordering::AcqRel), Ordering::Release);
    into.anon_vma.store(from.anon_vma.swap(core::ptr::null_mut(), Ordering::AcqRel), Ordering::Release);
}

/// Checks invariants 1 to 3 for `vma`, whose copy is `copy`.
pub(crate) fn check_chain<A: AnonVmaAlloc + ?Sized>(alloc: &A, vma: &VmaAnonLink, copy: AvcCopy) -> bool {
    let own = vma.anon_vma();
    if own.is_some() != vma.head().is_some() {
        return false;
    }
    let g = alloc.anon_vma_lock().lock();
    let mut has_own = own.is_none();
    for (i, avc) in vma.chain().enumerate() {
        if !avc.linked.get() || avc.copy.get() != copy {
            return false;
        }
        if vma.chain().take(i).any(|other| other.anon_vma == avc.anon_vma) {
            return false;
        }
        has_own |= own == Some(AnonVmaPtr(avc.anon_vma));
        // SAFETY: linked by this VMA, so alive.
        let a = unsafe { AnonVmaPtr(avc.anon_vma).get(&g) };
        if a.tree(&g).check().is_err() {
            return false;
        }
    }
    has_own
}

/// An `anon_vma`'s counts `(refcount, num_children, num_active_vmas, AVCs
/// in its tree, root, parent)`, for tests checking invariants 4 and 5
/// over a whole machine.
#[cfg(test)]
pub(crate) fn anon_vma_counts<A: AnonVmaAlloc + ?Sized>(
    alloc: &A,
    av: AnonVmaPtr,
) -> (u64, u64, u64, usize, AnonVmaPtr, AnonVmaPtr) {
    let g = alloc.anon_vma_lock().lock();
    // SAFETY: the test names an `anon_vma` some VMA links.
    let a = unsafe { av.get(&g) };
    (
        a.refcount.get(),
        a.num_children.get(),
        a.num_active_vmas.get(),
        a.tree(&g).len(),
        AnonVmaPtr(a.root.get()),
        AnonVmaPtr(a.parent.get()),
    )
}

/// The `anon_vma`s on `vma`'s chain, first to last (tests).
#[cfg(test)]
pub(crate) fn chain_of(vma: &VmaAnonLink) -> Vec<AnonVmaPtr> {
    vma.chain().map(|avc| AnonVmaPtr(avc.anon_vma)).collect()
}

/// The anon_vma lock held on a page's `anon_vma`, found mapped (Linux
/// `folio_lock_anon_vma_read`).
pub(crate) struct LockedAnonVma<'l> {
    g: AnonVmaGuard<'l>,
    av: AnonVmaPtr,
}

/// The root of the hierarchy `av` belongs to (Linux `anon_vma->root`):
/// every VMA of the processes forked from the one that made it links the
/// root, so a page several of them may map names the root (Linux
/// `__folio_set_anon` for a page not exclusive), which lives as long as
/// any of them.
///
/// `av` is the `anon_vma` of a VMA of the caller's, whose mmap lock it
/// holds: the VMA links it (invariant 1), so it is alive.
pub(crate) fn anon_vma_root<A: AnonVmaAlloc + ?Sized>(alloc: &A, av: AnonVmaPtr) -> AnonVmaPtr {
    let g = alloc.anon_vma_lock().lock();
    // SAFETY: linked by the caller's VMA, under the lock `g`.
    let a = unsafe { av.get(&g) };
    AnonVmaPtr(a.root.get())
}

/// Locks the anon_vma lock and returns the page's `anon_vma` if the page
/// is anonymous, names one and is mapped (Linux
/// `folio_lock_anon_vma_read`), or is held by `pin` (a walk after
/// migration unmapped it).
///
/// # Safety
/// The caller holds a reference on `page` (it cannot be freed and reused
/// meanwhile), and `alloc` is the allocator of the address spaces that
/// map it.
pub(crate) unsafe fn folio_lock_anon_vma<'l, A: AnonVmaAlloc + ?Sized>(
    alloc: &'l A,
    page: &Page,
    pin: Option<&AnonVmaPin<'_, A>>,
) -> Option<LockedAnonVma<'l>> {
    let g = alloc.anon_vma_lock().lock();
    if let Some(pin) = pin {
        return Some(LockedAnonVma { g, av: pin.av });
    }
    // The mapcount first: a page mapped under the lock has a live
    // `anon_vma` (invariant 6), and its `mapping` was set before its first
    // mapping was counted.
    if page.mapcount() <= 0 {
        return None;
    }
    core::sync::atomic::fence(Ordering::Acquire);
    let av = AnonVmaPtr::from_mapping(page.mapping())?;
    Some(LockedAnonVma { g, av })
}

impl LockedAnonVma<'_> {
    /// Calls `f` on the copy of every AVC whose VMA covers page `index`
    /// (Linux `anon_vma_interval_tree_foreach` in `rmap_walk_anon`). `f`
    /// runs under the anon_vma lock: it must not sleep or allocate.
    pub(crate) fn for_each_avc(&self, index: u64, mut f: impl FnMut(AvcCopy)) {
        // SAFETY: `folio_lock_anon_vma` found the page mapped (or pinned)
        // under the lock held in `g`: alive until the lock is dropped.
        let a = unsafe { self.av.get(&self.g) };
        let tree = a.tree(&self.g);
        let mut after = None;
        while let Some(node) = tree.next_match(after, |max| max >= index, |n| n.copy.get().last >= index) {
            let copy = node.copy.get();
            if copy.first > index {
                break;
            }
            f(copy);
            after = Some(node);
        }
    }
}

/// A reference on a page's `anon_vma` that keeps it alive while the page
/// is unmapped (Linux `folio_get_anon_vma`, held by migration between
/// `try_to_migrate` and `remove_migration_ptes`); dropped with
/// `put_anon_vma`.
pub struct AnonVmaPin<'a, A: AnonVmaAlloc + ?Sized> {
    alloc: &'a A,
    av: AnonVmaPtr,
}

/// Pins the `anon_vma` of a mapped anonymous page (Linux
/// `folio_get_anon_vma`); `None` if the page is not mapped or not
/// anonymous.
///
/// # Safety
/// As [`folio_lock_anon_vma`]'s.
pub(crate) unsafe fn folio_get_anon_vma<'a, A: AnonVmaAlloc + ?Sized>(
    alloc: &'a A,
    page: &Page,
) -> Option<AnonVmaPin<'a, A>> {
    // SAFETY: the caller's promise.
    let locked = unsafe { folio_lock_anon_vma(alloc, page, None) }?;
    // SAFETY: alive under the lock (`folio_lock_anon_vma`).
    let a = unsafe { locked.av.get(&locked.g) };
    a.refcount.set(a.refcount.get() + 1);
    Some(AnonVmaPin { alloc, av: locked.av })
}

impl<A: AnonVmaAlloc + ?Sized> Drop for AnonVmaPin<'_, A> {
    fn drop(&mut self) {
        let g = self.alloc.anon_vma_lock().lock();
        // SAFETY: our reference keeps it alive until this put.
        unsafe { put_anon_vma_locked(self.alloc, &g, self.av.0) };
    }
}
