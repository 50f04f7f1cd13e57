//! The kernel virtual address allocator behind vmalloc, vmap and ioremap:
//! `vmap_area`s (Linux `mm/vmalloc.c`, its "global kva allocator" half).
//!
//! [`VmapAreas`] hands out page-aligned ranges of a fixed virtual window
//! (the kernel's `VMALLOC_START..VMALLOC_END`) and takes them back. Every
//! byte of the window is in exactly one of three address-ordered trees:
//!
//! - **free** (Linux `free_vmap_area_root`): ranges nobody uses, merged
//!   with their neighbours so no two touch, each node augmented with
//!   `subtree_max_size`, the largest free range in its subtree;
//! - **busy** (Linux `vmap_area_root`, per `vmap_node` `busy`): allocated
//!   areas, each with its descriptor ([`VmapArea`], Linux's `vm_struct`);
//! - **lazy** (Linux 6.1's `purge_vmap_area_root`, the purge list): areas
//!   freed with [`VmapAreas::free_lazy`] whose page tables are already torn
//!   down but whose stale TLB entries may survive on other CPUs, merged on
//!   the way in with the lazy ranges they touch, as Linux 6.1's
//!   `free_vmap_area_noflush()` does (so a purge after many small frees of
//!   neighbouring areas merges a few ranges, not thousands). Their ranges
//!   are not reusable until [`VmapAreas::purge`] has had the caller flush
//!   the TLB for all of them at once, which is the point of freeing lazily:
//!   one global flush per [`VmapAreas::lazy_max_pages`] pages instead of one
//!   per free.
//!
//! # Allocation: which free range
//!
//! An allocation of `size` bytes (guard page included) aligned to `align`
//! inside `[vstart, vend)` takes the lowest-addressed free range `R` such
//! that `size(R) >= length` and an `align`-aligned block of `size` bytes
//! starting at or above `vstart` fits in `R`, where `length` is
//! `size + align - 1` if `align > PAGE_SIZE` (the worst-case alignment
//! loss, so any range that long surely fits), except when `vend - vstart ==
//! size` (then only the block at `vstart` can do and `length` is `size`),
//! and `length` is `size` otherwise. The block is placed at the lowest
//! aligned address in `R` at or above `vstart`, and must end by `vend`.
//! The search is `O(log n)`: the free range containing `vstart` is checked
//! first, then the first range above `vstart` with `size >= length` is found
//! by descending on `subtree_max_size` (Linux `find_vmap_lowest_match()`),
//! and such a range always fits. The chosen range is clipped in one of
//! Linux's four ways (`classify_va_fit_type()`): the whole range, its left
//! edge, its right edge, or its middle, which splits it in two and needs
//! one more node.
//!
//! # Invariants
//!
//! After every public method returns, whether it succeeded or failed
//! ([`VmapAreas::check`] verifies all of them):
//!
//! 1. Every range is non-empty, page aligned and inside the window; the
//!    window lies in one canonical half, so every address in it is a valid
//!    [`VirtAddr`].
//! 2. The free, busy and lazy ranges are disjoint and together cover the
//!    window exactly.
//! 3. No two free ranges touch, and no two lazy ranges: freed ranges have
//!    been merged.
//! 4. Each tree is an AVL tree ordered by start address: stored heights and
//!    parent links are right and sibling heights differ by at most one, so
//!    every operation is `O(log n)` in the worst case.
//! 5. Every node's `subtree_max_size` is the largest size in its subtree.
//! 6. Busy nodes carry their descriptor; free and lazy nodes carry none
//!    (Linux clears `va->vm` when it frees an area).
//! 7. The free-byte and lazy-page counters match the trees.
//! 8. **Node ownership.** Every node linked into a tree was returned by the
//!    node allocator, is linked into exactly one tree of one [`VmapAreas`]
//!    (or, inside one method, held by that method alone between unlinking
//!    and relinking or freeing), and goes back to the allocator only once
//!    unlinked, after which no pointer to it is used. The `unsafe` code,
//!    all in the private `tree` module, relies on this and on `&mut self`
//!    excluding every other access.
//!
//! # Locking
//!
//! Linux takes `free_vmap_area_lock`, then a node's `busy.lock` or
//! `lazy.lock` (never two at once), and serializes purges with the
//! `vmap_purge_lock` mutex. We have one lock: [`VmapAreas`] is a plain
//! value whose methods take `&mut self`, and the kernel keeps it behind one
//! spin lock, the "vmap_area_lock". Lock order: `vmap_area_lock -> node
//! allocator (slab cache) locks`; the node allocator must therefore never
//! call back into vmalloc. The flush callbacks of [`VmapAreas::purge`] and
//! [`VmapAreas::alloc`] run with the lock held: as in Linux, whose vmap
//! locks are plain `spin_lock`, never `_irqsave`, the lock must be taken
//! with interrupts enabled so that a TLB shootdown IPI cannot wait on a CPU
//! spinning for it.
//!
//! # Differences from Linux
//!
//! - **The search is a function of the free ranges alone.** Linux's descent
//!   also accepts a range shorter than `length` when it happens to lie on
//!   the search path and the aligned block fits in it, so its choice can
//!   depend on the tree's shape; we accept only ranges of at least
//!   `length`, plus the one containing `vstart`. With `align <= PAGE_SIZE`
//!   the two agree exactly (pure first fit); above it both may pass over a
//!   short but well-aligned hole.
//! - **Node-allocation failure changes nothing.** The node a middle split
//!   needs is allocated after the search and before anything is clipped
//!   (Linux preloads it per CPU before taking the lock and falls back to
//!   `GFP_NOWAIT` under it); failure returns [`VmallocError::NoMemory`]
//!   without purging.
//! - **Purging is the caller's.** [`VmapAreas::needs_purge`] reports what
//!   Linux answers by scheduling `drain_vmap_work`; [`VmapAreas::purge`]
//!   and the one retry of [`VmapAreas::alloc`] call the caller's flush.
//!   There is no `vmap_notify_list` notifier retry.
//! - **`vm_struct` lives in the area.** The descriptor is stored in the
//!   busy node and returned by value; nothing is allocated for it.
//! - **Freeing takes the start address.** Linux finds the area containing
//!   the address; [`VmapAreas::free_lazy`] wants the area's start.
//! - **Left out:** `vmap_node` sharding and its size-segregated pools, the
//!   per-CPU `vmap_block`s of `vm_map_ram`, percpu `pcpu_get_vm_areas`,
//!   KASAN shadow, and `VM_IOREMAP`'s alignment policy (the caller's, in
//!   Linux's `__get_vm_area_node()`). AVL trees replace red-black trees.
//! - **Reports.** [`Vmallocinfo`] prints the caller as `file:line` where
//!   Linux prints `symbol+offset/size`, prints real addresses (Linux's
//!   `%pK`), and has no `vm_map_ram`, `user`, `vpages` or NUMA fields.
//!   [`VmapAreas::fault_info`] is ours: it lets the page-fault handler name
//!   the area whose guard page was hit.

use core::fmt;
use core::ops::Range;
use core::panic::Location;

use bitflags::bitflags;

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, PhysAddr, VirtAddr, align_up};
use crate::slab_common::ObjCache;

use self::tree::{NodePtr, Tree};

/// Lazily freed address space gathered before a purge, per step of
/// `fls(nr_cpus)` (Linux `lazy_max_pages()`: 32 MiB of pages).
const LAZY_MAX_BYTES_PER_STEP: u64 = 32 << 20;

bitflags! {
    /// What an area is for (Linux `VM_*` of `vm_struct.flags`, with Linux's
    /// values).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct VmFlags: u64 {
        /// `VM_IOREMAP`: maps device memory (ioremap); `phys_addr` is set.
        const IOREMAP = 0x1;
        /// `VM_ALLOC`: backed by pages vmalloc allocated.
        const ALLOC = 0x2;
        /// `VM_MAP`: maps pages the caller passed to vmap.
        const MAP = 0x4;
        /// `VM_NO_GUARD`: no guard page after the area.
        const NO_GUARD = 0x40;
    }
}

/// An allocated area (Linux `struct vm_struct`, with its `vmap_area`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[doc(alias = "vm_struct")]
pub struct VmapArea {
    /// First byte (Linux `vm->addr`, `va->va_start`).
    pub start: VirtAddr,
    /// End, exclusive, after the guard page unless [`VmFlags::NO_GUARD`]
    /// (Linux `va->va_end`, `vm->addr + vm->size`).
    pub end: VirtAddr,
    /// What the area is for.
    pub flags: VmFlags,
    /// Who allocated it (Linux `vm->caller`, a return address).
    pub caller: &'static Location<'static>,
    /// Pages mapped into it, set with [`VmapAreas::set_nr_pages`].
    pub nr_pages: u64,
    /// Physical address an ioremap maps, set with
    /// [`VmapAreas::set_phys_addr`]; 0 for none.
    pub phys_addr: PhysAddr,
}

impl VmapArea {
    /// Bytes including the guard page (Linux `vm->size`).
    pub fn size(&self) -> u64 {
        self.end.as_u64() - self.start.as_u64()
    }

    /// Bytes usable by the caller: [`VmapArea::size`] minus the guard page
    /// (Linux `get_vm_area_size()`).
    pub fn get_vm_area_size(&self) -> u64 {
        self.size() - self.guard_size()
    }

    fn guard_size(&self) -> u64 {
        if self.flags.contains(VmFlags::NO_GUARD) { 0 } else { PAGE_SIZE }
    }
}

/// Where a faulting address lies, for the page-fault handler's report
/// ("vmalloc out-of-bounds access at ADDR: guard page of area START-END
/// (SIZE bytes) allocated at CALLER").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmapFault {
    /// In an area's usable part.
    Mapped(VmapArea),
    /// In an area's guard page: an access just past its end.
    GuardPage(VmapArea),
    /// In an area freed with [`VmapAreas::free_lazy`] and not yet purged: a
    /// use after free.
    Unpurged {
        /// Start of the freed range holding it (neighbouring freed areas
        /// are merged).
        start: VirtAddr,
        /// Its end, exclusive.
        end: VirtAddr,
    },
    /// In no area.
    NoArea,
}

/// Why a vmap operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmallocError {
    /// The size is 0, or too large to be page aligned with a guard page.
    BadSize,
    /// The alignment is not a power of two.
    BadAlign,
    /// An empty address range, or a window that is not page aligned or
    /// spans the non-canonical hole.
    BadRange,
    /// No free range fits, even after purging (Linux's `-EBUSY` and its
    /// "vmalloc_node_range for size ... failed" warning).
    NoSpace {
        /// Bytes asked for, guard page included.
        size: u64,
        /// Lowest allowed start.
        vstart: VirtAddr,
        /// End of the allowed range, exclusive.
        vend: VirtAddr,
    },
    /// The node allocator failed (Linux `-ENOMEM`); nothing was changed.
    NoMemory,
    /// No allocated area starts at this address (Linux's "Trying to vfree()
    /// nonexistent vm area" warning).
    NotFound(VirtAddr),
    /// The buddy allocator could not supply the pages (Linux's "vmalloc
    /// error: size N, failed to allocate pages"); nothing was kept.
    NoPages {
        /// Bytes asked for.
        size: u64,
    },
    /// The page tables could not be extended; nothing was kept.
    Map(crate::pgtable::PgtableError),
    /// The area at this address was made by a different call than the one
    /// undoing it (vfree of a vmap, vunmap of a vmalloc, ...), which Linux
    /// answers with a WARN.
    WrongKind(VirtAddr),
}

impl fmt::Display for VmallocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            VmallocError::BadSize => f.write_str("vmalloc: invalid size"),
            VmallocError::BadAlign => f.write_str("vmalloc: alignment is not a power of two"),
            VmallocError::BadRange => f.write_str("vmalloc: invalid address range"),
            VmallocError::NoSpace { size, vstart, vend } => write!(
                f,
                "vmalloc_node_range for size {size} failed: Address range restricted to {:#x} - {:#x}",
                vstart.as_u64(),
                vend.as_u64()
            ),
            VmallocError::NoMemory => f.write_str("vmalloc: out of memory for a vmap_area"),
            VmallocError::NotFound(addr) => {
                write!(f, "Trying to vfree() nonexistent vm area ({:#x})", addr.as_u64())
            }
            VmallocError::NoPages { size } => write!(f, "vmalloc error: size {size}, failed to allocate pages"),
            VmallocError::Map(e) => write!(f, "vmalloc error: mapping pages: {e}"),
            VmallocError::WrongKind(addr) => {
                write!(f, "area at {:#x} was not made by the call that frees it", addr.as_u64())
            }
        }
    }
}

/// An invariant [`VmapAreas::check`] found broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmapCheckError {
    /// A node's parent link does not point at the node linking to it.
    BadParent {
        /// `"free"`, `"busy"` or `"lazy"`.
        tree: &'static str,
        /// Start of the node's range.
        start: u64,
    },
    /// A node's stored AVL height is wrong.
    BadHeight {
        /// The tree.
        tree: &'static str,
        /// Start of the node's range.
        start: u64,
        /// Stored height.
        stored: u32,
        /// Height of its subtree.
        computed: u32,
    },
    /// A node's subtrees differ in height by more than one.
    Unbalanced {
        /// The tree.
        tree: &'static str,
        /// Start of the node's range.
        start: u64,
    },
    /// A node's `subtree_max_size` is wrong.
    BadSubtreeMaxSize {
        /// The tree.
        tree: &'static str,
        /// Start of the node's range.
        start: u64,
        /// Stored value.
        stored: u64,
        /// Largest size in its subtree.
        computed: u64,
    },
    /// A range is empty, not page aligned, or outside the window.
    BadRange {
        /// The tree.
        tree: &'static str,
        /// Start of the range.
        start: u64,
        /// End of the range.
        end: u64,
    },
    /// A range overlaps or precedes the one before it in tree order.
    Unsorted {
        /// The tree.
        tree: &'static str,
        /// Start of the out-of-order range.
        start: u64,
    },
    /// Two free or two lazy ranges touch at `at` and were not merged.
    Unmerged {
        /// The tree.
        tree: &'static str,
        /// Where they touch.
        at: u64,
    },
    /// A busy node without descriptor, or a free or lazy node with one.
    BadDescriptor {
        /// The tree.
        tree: &'static str,
        /// Start of the node's range.
        start: u64,
    },
    /// A counter disagrees with the trees.
    BadCounter {
        /// Which: `"free bytes"`, `"lazy pages"` or a tree's node count.
        counter: &'static str,
        /// Stored value.
        stored: u64,
        /// Recounted value.
        computed: u64,
    },
    /// No tree covers the address.
    Hole {
        /// First uncovered address.
        at: u64,
    },
    /// Two trees cover the address.
    Overlap {
        /// First doubly covered address.
        at: u64,
    },
}

impl fmt::Display for VmapCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            VmapCheckError::BadParent { tree, start } => write!(f, "{tree} tree: {start:#x}: bad parent link"),
            VmapCheckError::BadHeight { tree, start, stored, computed } => {
                write!(f, "{tree} tree: {start:#x}: height {stored}, should be {computed}")
            }
            VmapCheckError::Unbalanced { tree, start } => write!(f, "{tree} tree: {start:#x}: not AVL balanced"),
            VmapCheckError::BadSubtreeMaxSize { tree, start, stored, computed } => {
                write!(f, "{tree} tree: {start:#x}: subtree_max_size {stored:#x}, should be {computed:#x}")
            }
            VmapCheckError::BadRange { tree, start, end } => write!(f, "{tree} tree: bad range {start:#x}-{end:#x}"),
            VmapCheckError::Unsorted { tree, start } => {
                write!(f, "{tree} tree: {start:#x} overlaps or precedes its predecessor")
            }
            VmapCheckError::Unmerged { tree, at } => write!(f, "{tree} ranges touching at {at:#x} were not merged"),
            VmapCheckError::BadDescriptor { tree, start } => write!(f, "{tree} tree: {start:#x}: bad vm descriptor"),
            VmapCheckError::BadCounter { counter, stored, computed } => {
                write!(f, "{counter}: {stored}, should be {computed}")
            }
            VmapCheckError::Hole { at } => write!(f, "{at:#x} is in no tree"),
            VmapCheckError::Overlap { at } => write!(f, "{at:#x} is in two trees"),
        }
    }
}

/// Storage for the nodes of [`VmapAreas`]' trees (Linux allocates `struct
/// vmap_area` from `vmap_area_cachep`): any [`ObjCache<VmapNode>`]. The
/// kernel backs it with a slab cache named "vmap_area"; host tests with
/// the heap. [`VmapAreas`] writes through the memory on `ObjCache`'s
/// promise.
pub trait VmapNodeAlloc: ObjCache<VmapNode> {}

impl<C: ObjCache<VmapNode> + ?Sized> VmapNodeAlloc for C {}

/// One node of a [`VmapAreas`] tree: a range, its tree links and, while
/// busy, its descriptor (Linux `struct vmap_area`; not Linux's `struct
/// vmap_node`, the per-CPU-group shard we do not have). Opaque: only
/// [`VmapNodeAlloc`] handles its memory.
#[doc(alias = "vmap_area")]
pub struct VmapNode {
    va_start: u64,
    va_end: u64,
    subtree_max_size: u64,
    height: u32,
    parent: Option<NodePtr>,
    left: Option<NodePtr>,
    right: Option<NodePtr>,
    vm: Option<VmStruct>,
}

/// The descriptor of a busy area (Linux `struct vm_struct` minus what the
/// node already holds).
#[derive(Clone, Copy)]
struct VmStruct {
    flags: VmFlags,
    caller: &'static Location<'static>,
    nr_pages: u64,
    phys_addr: PhysAddr,
}

/// How an allocated block sits in the free range it is cut from (Linux
/// `enum fit_type`; `NOTHING_FIT` cannot happen, the search checked it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FitType {
    /// `FL_FIT_TYPE`: the whole range.
    Full,
    /// `LE_FIT_TYPE`: its left edge; the rest stays on the right.
    LeftEdge,
    /// `RE_FIT_TYPE`: its right edge; the rest stays on the left.
    RightEdge,
    /// `NE_FIT_TYPE`: its middle; the range splits in two.
    NoEdge,
}

/// Linux `classify_va_fit_type()`.
fn classify_va_fit_type(va_start: u64, va_end: u64, nva_start: u64, size: u64) -> FitType {
    match (va_start == nva_start, va_end == nva_start + size) {
        (true, true) => FitType::Full,
        (true, false) => FitType::LeftEdge,
        (false, true) => FitType::RightEdge,
        (false, false) => FitType::NoEdge,
    }
}

/// An address inside the window as a [`VirtAddr`]; canonical by
/// invariant 1, so this never panics.
fn vaddr(addr: u64) -> VirtAddr {
    VirtAddr::expect_canonical(addr)
}

/// The kernel virtual address allocator: free, busy and lazily freed
/// areas of one window (Linux `vmap_area_root`, `free_vmap_area_root` and
/// the lazy/purge lists).
#[doc(alias = "vmap_area_root")]
pub struct VmapAreas<A: VmapNodeAlloc> {
    start: u64,
    end: u64,
    free: Tree,
    busy: Tree,
    lazy: Tree,
    free_bytes: u64,
    lazy_nr: u64,
    lazy_max_pages: u64,
    node_alloc: A,
}

// SAFETY: the nodes are reachable only through this value (invariant 8),
// so moving it to another thread moves every access to them along; the
// node allocator moves too, hence `A: Send`.
unsafe impl<A: VmapNodeAlloc + Send> Send for VmapAreas<A> {}

impl<A: VmapNodeAlloc> VmapAreas<A> {
    /// An allocator for `[start, end)`, all free (Linux `vmalloc_init()`
    /// and `vmap_init_free_space()`). `nr_cpus` scales the lazy-free
    /// threshold ([`VmapAreas::lazy_max_pages`]); 0 counts as 1.
    ///
    /// Fails with [`VmallocError::BadRange`] unless `start < end`, both
    /// are page aligned and in one canonical half, and with
    /// [`VmallocError::NoMemory`] if the first node cannot be allocated.
    pub fn new(start: VirtAddr, end: VirtAddr, nr_cpus: u32, node_alloc: A) -> Result<Self, VmallocError> {
        if start >= end
            || !start.is_aligned(PAGE_SIZE)
            || !end.is_aligned(PAGE_SIZE)
            || start.is_user() != end.is_user()
        {
            return Err(VmallocError::BadRange);
        }
        let steps = u64::from(u32::BITS - nr_cpus.max(1).leading_zeros());
        let mut this = VmapAreas {
            start: start.as_u64(),
            end: end.as_u64(),
            free: Tree::default(),
            busy: Tree::default(),
            lazy: Tree::default(),
            free_bytes: 0,
            lazy_nr: 0,
            lazy_max_pages: steps * (LAZY_MAX_BYTES_PER_STEP / PAGE_SIZE),
            node_alloc,
        };
        let node = NodePtr::alloc(&this.node_alloc, this.start, this.end, None).ok_or(VmallocError::NoMemory)?;
        this.free.insert(node);
        this.free_bytes = this.end - this.start;
        Ok(this)
    }

    /// Reserves `size` bytes (rounded up to pages, plus a guard page
    /// unless `flags` has [`VmFlags::NO_GUARD`]) aligned to `align` inside
    /// `range` (Linux `__get_vm_area_node()` and `alloc_vmap_area()`). See
    /// the module documentation for which free range is taken.
    ///
    /// If nothing fits and areas wait in the lazy tree, they are purged
    /// first ([`VmapAreas::purge`], calling `flush` once) and the search is
    /// retried once, as Linux's `purged` retry does. `flush` is not called
    /// otherwise.
    ///
    /// Errors: [`VmallocError::BadSize`], [`VmallocError::BadAlign`],
    /// [`VmallocError::BadRange`] (empty `range`), [`VmallocError::NoSpace`],
    /// and [`VmallocError::NoMemory`] when a node cannot be allocated, in
    /// which case nothing changed except a purge that already happened.
    #[doc(alias = "alloc_vmap_area")]
    #[doc(alias = "get_vm_area")]
    pub fn alloc(
        &mut self,
        size: u64,
        align: u64,
        range: Range<VirtAddr>,
        flags: VmFlags,
        caller: &'static Location<'static>,
        flush: impl FnOnce(VirtAddr, VirtAddr),
    ) -> Result<VmapArea, VmallocError> {
        if !align.is_power_of_two() {
            return Err(VmallocError::BadAlign);
        }
        let guard = if flags.contains(VmFlags::NO_GUARD) { 0 } else { PAGE_SIZE };
        let size = align_up(size, PAGE_SIZE)
            .filter(|&size| size != 0)
            .and_then(|size| size.checked_add(guard))
            .ok_or(VmallocError::BadSize)?;
        if range.start >= range.end {
            return Err(VmallocError::BadRange);
        }
        // Addresses are page aligned, so a smaller alignment is no alignment.
        let align = align.max(PAGE_SIZE);
        let (vstart, vend) = (range.start.as_u64(), range.end.as_u64());

        let va = NodePtr::alloc(&self.node_alloc, 0, 0, None).ok_or(VmallocError::NoMemory)?;
        let mut addr = self.alloc_range(size, align, vstart, vend);
        if matches!(addr, Ok(None)) && self.purge(flush) {
            addr = self.alloc_range(size, align, vstart, vend);
        }
        let addr = match addr {
            Ok(Some(addr)) => addr,
            Ok(None) => {
                va.free(&self.node_alloc);
                return Err(VmallocError::NoSpace { size, vstart: range.start, vend: range.end });
            }
            Err(err) => {
                va.free(&self.node_alloc);
                return Err(err);
            }
        };
        let vm = VmStruct { flags, caller, nr_pages: 0, phys_addr: PhysAddr::new(0) };
        va.set_range(addr, addr + size);
        va.set_vm(Some(vm));
        self.busy.insert(va);
        Ok(area_of(addr, addr + size, vm))
    }

    /// Cuts `size` bytes aligned to `align` out of the free tree and
    /// returns their start, or `None` if no free range fits (Linux
    /// `__alloc_vmap_area()`, `va_alloc()`, `va_clip()`). Changes nothing
    /// unless it succeeds.
    fn alloc_range(&mut self, size: u64, align: u64, vstart: u64, vend: u64) -> Result<Option<u64>, VmallocError> {
        let adjust_search_size = align > PAGE_SIZE && vend - vstart != size;
        let length = if adjust_search_size { size.checked_add(align - 1) } else { Some(size) };
        let Some((va, nva_start)) =
            length.and_then(|length| self.free.find_vmap_lowest_match(size, align, vstart, length))
        else {
            return Ok(None);
        };
        if nva_start + size > vend {
            return Ok(None);
        }
        match classify_va_fit_type(va.start(), va.end(), nva_start, size) {
            FitType::Full => {
                self.free.remove(va);
                va.free(&self.node_alloc);
            }
            FitType::LeftEdge => {
                va.set_range(nva_start + size, va.end());
                self.free.propagate(va);
            }
            FitType::RightEdge => {
                va.set_range(va.start(), nva_start);
                self.free.propagate(va);
            }
            FitType::NoEdge => {
                // Allocated before anything is clipped, so failure leaves
                // the tree as it was.
                let lva =
                    NodePtr::alloc(&self.node_alloc, va.start(), nva_start, None).ok_or(VmallocError::NoMemory)?;
                va.set_range(nva_start + size, va.end());
                self.free.propagate(va);
                self.free.insert(lva);
            }
        }
        self.free_bytes -= size;
        Ok(Some(nva_start))
    }

    /// Moves the area starting at `start` from the busy to the lazy tree
    /// and returns its descriptor (Linux `remove_vm_area()` and
    /// `free_vmap_area_noflush()`). The caller has already unmapped it; its
    /// range becomes reusable at the next [`VmapAreas::purge`], which the
    /// caller should run when [`VmapAreas::needs_purge`] says so.
    #[doc(alias = "free_vmap_area_noflush")]
    #[doc(alias = "remove_vm_area")]
    pub fn free_lazy(&mut self, start: VirtAddr) -> Result<VmapArea, VmallocError> {
        let (va, vm) = self.busy_at(start)?;
        self.busy.remove(va);
        va.set_vm(None);
        let (start, end) = (va.start(), va.end());
        merge_or_add_vmap_area(&mut self.lazy, &self.node_alloc, va);
        self.lazy_nr += (end - start) >> PAGE_SHIFT;
        Ok(area_of(start, end, vm))
    }

    /// Whether the lazily freed pages exceed [`VmapAreas::lazy_max_pages`]
    /// (where Linux's `free_vmap_area_noflush()` schedules a purge).
    pub fn needs_purge(&self) -> bool {
        self.lazy_nr > self.lazy_max_pages
    }

    /// Makes every lazily freed range reusable (Linux
    /// `__purge_vmap_area_lazy()`): calls `flush(start, end)` once with the
    /// smallest range covering them all, for the caller to flush the TLB
    /// there (Linux `flush_tlb_kernel_range()`), then merges each into the
    /// free tree (Linux `merge_or_add_vmap_area_augment()`). Returns
    /// whether there was anything to purge; `flush` is not called if not.
    #[doc(alias = "__purge_vmap_area_lazy")]
    pub fn purge(&mut self, flush: impl FnOnce(VirtAddr, VirtAddr)) -> bool {
        let (Some(first), Some(last)) = (self.lazy.first(), self.lazy.last()) else {
            return false;
        };
        flush(vaddr(first.start()), vaddr(last.end()));
        while let Some(va) = self.lazy.first() {
            self.lazy.remove(va);
            self.free_bytes += va.end() - va.start();
            merge_or_add_vmap_area(&mut self.free, &self.node_alloc, va);
        }
        self.lazy_nr = 0;
        true
    }

    /// The busy node starting at `start` and its descriptor.
    fn busy_at(&self, start: VirtAddr) -> Result<(NodePtr, VmStruct), VmallocError> {
        let addr = start.as_u64();
        self.busy
            .find(addr)
            .filter(|va| va.start() == addr)
            .and_then(|va| Some((va, va.vm()?)))
            .ok_or(VmallocError::NotFound(start))
    }

    /// Records how many pages the area starting at `start` maps (Linux
    /// `vm->nr_pages`, shown as `pages=` in [`Vmallocinfo`]).
    pub fn set_nr_pages(&mut self, start: VirtAddr, nr_pages: u64) -> Result<(), VmallocError> {
        let (va, vm) = self.busy_at(start)?;
        va.set_vm(Some(VmStruct { nr_pages, ..vm }));
        Ok(())
    }

    /// Records the physical address the ioremap area starting at `start`
    /// maps (Linux `vm->phys_addr`, shown as `phys=`).
    pub fn set_phys_addr(&mut self, start: VirtAddr, phys_addr: PhysAddr) -> Result<(), VmallocError> {
        let (va, vm) = self.busy_at(start)?;
        va.set_vm(Some(VmStruct { phys_addr, ..vm }));
        Ok(())
    }

    /// The allocated area containing `addr`, guard page included (Linux
    /// `find_vmap_area()`).
    #[doc(alias = "find_vmap_area")]
    pub fn find(&self, addr: VirtAddr) -> Option<VmapArea> {
        let va = self.busy.find(addr.as_u64())?;
        Some(area_of(va.start(), va.end(), va.vm()?))
    }

    /// Where `addr` lies: in an area's usable part, in its guard page, in a
    /// lazily freed area, or in none.
    pub fn fault_info(&self, addr: VirtAddr) -> VmapFault {
        if let Some(area) = self.find(addr) {
            if addr.as_u64() >= area.end.as_u64() - area.guard_size() {
                VmapFault::GuardPage(area)
            } else {
                VmapFault::Mapped(area)
            }
        } else if let Some(va) = self.lazy.find(addr.as_u64()) {
            VmapFault::Unpurged { start: vaddr(va.start()), end: vaddr(va.end()) }
        } else {
            VmapFault::NoArea
        }
    }

    /// Start of the window.
    pub fn start(&self) -> VirtAddr {
        vaddr(self.start)
    }

    /// End of the window, exclusive.
    pub fn end(&self) -> VirtAddr {
        vaddr(self.end)
    }

    /// Free bytes, not counting lazily freed areas.
    pub fn nr_free_bytes(&self) -> u64 {
        self.free_bytes
    }

    /// The largest free range's size: the free tree root's
    /// `subtree_max_size`.
    pub fn largest_free(&self) -> u64 {
        self.free.root().map_or(0, NodePtr::subtree_max_size)
    }

    /// Allocated areas.
    pub fn nr_busy(&self) -> usize {
        self.busy.len()
    }

    /// Pages in lazily freed areas, guard pages included (Linux
    /// `vmap_lazy_nr`).
    #[doc(alias = "vmap_lazy_nr")]
    pub fn lazy_nr(&self) -> u64 {
        self.lazy_nr
    }

    /// Lazily freed pages tolerated before a purge is due (Linux
    /// `lazy_max_pages()`): 32 MiB of pages times `fls(nr_cpus)`.
    pub fn lazy_max_pages(&self) -> u64 {
        self.lazy_max_pages
    }

    /// Verifies every invariant of the module documentation.
    pub fn check(&self) -> Result<(), VmapCheckError> {
        for (name, tree) in [("free", &self.free), ("busy", &self.busy), ("lazy", &self.lazy)] {
            tree.check(name)?;
            let mut prev_end = None;
            let mut count = 0;
            for va in tree.iter() {
                let (start, end) = (va.start(), va.end());
                count += 1;
                if start >= end
                    || start < self.start
                    || end > self.end
                    || start % PAGE_SIZE != 0
                    || end % PAGE_SIZE != 0
                {
                    return Err(VmapCheckError::BadRange { tree: name, start, end });
                }
                if prev_end.is_some_and(|prev_end| prev_end > start) {
                    return Err(VmapCheckError::Unsorted { tree: name, start });
                }
                if name != "busy" && prev_end == Some(start) {
                    return Err(VmapCheckError::Unmerged { tree: name, at: start });
                }
                if va.vm().is_some() != (name == "busy") {
                    return Err(VmapCheckError::BadDescriptor { tree: name, start });
                }
                prev_end = Some(end);
            }
            if count != tree.len() {
                return Err(VmapCheckError::BadCounter {
                    counter: name,
                    stored: tree.len() as u64,
                    computed: count as u64,
                });
            }
        }
        let free_bytes = self.free.iter().map(|va| va.end() - va.start()).sum();
        if free_bytes != self.free_bytes {
            let (stored, computed) = (self.free_bytes, free_bytes);
            return Err(VmapCheckError::BadCounter { counter: "free bytes", stored, computed });
        }
        let lazy_nr = self.lazy.iter().map(|va| (va.end() - va.start()) >> PAGE_SHIFT).sum();
        if lazy_nr != self.lazy_nr {
            let (stored, computed) = (self.lazy_nr, lazy_nr);
            return Err(VmapCheckError::BadCounter { counter: "lazy pages", stored, computed });
        }
        self.check_tiling()
    }

    /// Invariant 2: walks the three trees in address order at once.
    fn check_tiling(&self) -> Result<(), VmapCheckError> {
        let mut cursors = [self.free.first(), self.busy.first(), self.lazy.first()];
        let mut at = self.start;
        loop {
            let lowest = cursors.iter_mut().filter(|c| c.is_some()).min_by_key(|c| c.map(NodePtr::start));
            let Some(cursor) = lowest else { break };
            let Some(va) = *cursor else { break };
            if va.start() > at {
                return Err(VmapCheckError::Hole { at });
            }
            if va.start() < at {
                return Err(VmapCheckError::Overlap { at: va.start() });
            }
            at = va.end();
            *cursor = Tree::next(va);
        }
        if at != self.end {
            return Err(VmapCheckError::Hole { at });
        }
        Ok(())
    }
}

impl<A: VmapNodeAlloc> Drop for VmapAreas<A> {
    fn drop(&mut self) {
        for tree in [&mut self.free, &mut self.busy, &mut self.lazy] {
            tree.free_all(&self.node_alloc);
        }
    }
}

/// Links the unlinked range `va` into `tree` (the free or the lazy tree),
/// merging it with the ranges there it touches (Linux
/// `__merge_or_add_vmap_area()`); a node merged away goes back to
/// `node_alloc`.
fn merge_or_add_vmap_area<A: VmapNodeAlloc>(tree: &mut Tree, node_alloc: &A, va: NodePtr) {
    let (start, end) = (va.start(), va.end());
    let next = tree.lower_bound(start);
    let prev = match next {
        Some(next) => Tree::prev(next),
        None => tree.last(),
    };
    debug_assert!(prev.is_none_or(|p| p.end() <= start) && next.is_none_or(|n| n.start() >= end));
    match (prev.filter(|p| p.end() == start), next.filter(|n| n.start() == end)) {
        (Some(prev), Some(next)) => {
            // Unlink `next` before growing `prev`, so the rebalancing
            // of the removal works on settled sizes.
            let next_end = next.end();
            tree.remove(next);
            next.free(node_alloc);
            prev.set_range(prev.start(), next_end);
            tree.propagate(prev);
            va.free(node_alloc);
        }
        (Some(prev), None) => {
            prev.set_range(prev.start(), end);
            tree.propagate(prev);
            va.free(node_alloc);
        }
        (None, Some(next)) => {
            next.set_range(start, next.end());
            tree.propagate(next);
            va.free(node_alloc);
        }
        (None, None) => tree.insert(va),
    }
}

/// The descriptor of a busy node.
fn area_of(start: u64, end: u64, vm: VmStruct) -> VmapArea {
    VmapArea {
        start: vaddr(start),
        end: vaddr(end),
        flags: vm.flags,
        caller: vm.caller,
        nr_pages: vm.nr_pages,
        phys_addr: vm.phys_addr,
    }
}

/// /proc/vmallocinfo (Linux `vmalloc_info_show()` and
/// `show_purge_info()`): one line per allocated area in address order,
/// then one per lazily freed area.
///
/// ```text
/// 0xffffc90000000000-0xffffc90000005000   20480 mm/src/foo.rs:12 pages=4 vmalloc
/// 0xffffc90000005000-0xffffc90000007000    8192 mm/src/bar.rs:34 phys=0x00000000fed00000 ioremap
/// 0xffffc90000007000-0xffffc90000009000    8192 unpurged vm_area
/// ```
///
/// Sizes include the guard page. `pages=` appears when pages are mapped,
/// `phys=` when a physical address is set, then `ioremap`, `vmalloc` and
/// `vmap` for the flags, in Linux's order.
#[doc(alias = "vmalloc_info_show")]
pub struct Vmallocinfo<'v, A: VmapNodeAlloc>(pub &'v VmapAreas<A>);

impl<A: VmapNodeAlloc> fmt::Display for Vmallocinfo<'_, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for va in self.0.busy.iter() {
            let Some(vm) = va.vm() else { continue };
            let (start, end) = (va.start(), va.end());
            write!(f, "0x{start:016x}-0x{end:016x} {:>7}", end - start)?;
            write!(f, " {}:{}", vm.caller.file(), vm.caller.line())?;
            if vm.nr_pages != 0 {
                write!(f, " pages={}", vm.nr_pages)?;
            }
            if vm.phys_addr.as_u64() != 0 {
                // Linux `%pa`: 0x and every digit of a 64-bit phys_addr_t.
                write!(f, " phys=0x{:016x}", vm.phys_addr.as_u64())?;
            }
            for (flag, name) in [(VmFlags::IOREMAP, " ioremap"), (VmFlags::ALLOC, " vmalloc"), (VmFlags::MAP, " vmap")]
            {
                if vm.flags.contains(flag) {
                    f.write_str(name)?;
                }
            }
            writeln!(f)?;
        }
        for va in self.0.lazy.iter() {
            let (start, end) = (va.start(), va.end());
            writeln!(f, "0x{start:016x}-0x{end:016x} {:>7} unpurged vm_area", end - start)?;
        }
        Ok(())
    }
}

/// The intrusive AVL trees, augmented with `subtree_max_size`: the only
/// code that touches node memory.
mod vmap;
pub use vmap::Vmalloc;

mod tree {
    use core::ptr::NonNull;

    use super::{VmStruct, VmapCheckError, VmapNode, VmapNodeAlloc};
    use crate::addr::align_up;

    /// A pointer to a node under invariant 8 of the module documentation.
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub(super) struct NodePtr(NonNull<VmapNode>);

    impl NodePtr {
        /// A new unlinked node for `[start, end)`.
        pub(super) fn alloc<A: VmapNodeAlloc>(alloc: &A, start: u64, end: u64, vm: Option<VmStruct>) -> Option<Self> {
            let ptr = alloc.alloc()?;
            let node = VmapNode {
                va_start: start,
                va_end: end,
                subtree_max_size: end - start,
                height: 1,
                parent: None,
                left: None,
                right: None,
                vm,
            };
            // SAFETY: `ObjCache::alloc` returned memory aligned and
            // valid for a `VmapNode` that nothing else uses.
            unsafe { ptr.as_ptr().write(node) };
            Some(NodePtr(ptr))
        }

        /// Gives an unlinked node back to the allocator it came from.
        pub(super) fn free<A: VmapNodeAlloc>(self, alloc: &A) {
            // SAFETY: invariant 8: the node came from `alloc` (each
            // `VmapAreas` uses one allocator), is linked nowhere, and the
            // caller drops its last pointer to it here.
            unsafe { alloc.free(self.0) }
        }

        fn read<R>(self, f: impl FnOnce(&VmapNode) -> R) -> R {
            // SAFETY: invariant 8: the node is live and owned by the
            // `VmapAreas` the caller borrows. No `&mut` to it exists: node
            // references live only inside these closures, which touch
            // only the node they are given.
            f(unsafe { self.0.as_ref() })
        }

        fn write<R>(self, f: impl FnOnce(&mut VmapNode) -> R) -> R {
            // SAFETY: as in `read`; writers run under the owner's `&mut`
            // borrow, so no other reference to the node exists.
            f(unsafe { &mut *self.0.as_ptr() })
        }

        pub(super) fn start(self) -> u64 {
            self.read(|n| n.va_start)
        }

        pub(super) fn end(self) -> u64 {
            self.read(|n| n.va_end)
        }

        fn size(self) -> u64 {
            self.read(|n| n.va_end - n.va_start)
        }

        pub(super) fn subtree_max_size(self) -> u64 {
            self.read(|n| n.subtree_max_size)
        }

        pub(super) fn vm(self) -> Option<VmStruct> {
            self.read(|n| n.vm)
        }

        pub(super) fn set_vm(self, vm: Option<VmStruct>) {
            self.write(|n| n.vm = vm);
        }

        /// Changes the range; a linked node must keep its place in address
        /// order, and the caller then calls [`Tree::propagate`].
        pub(super) fn set_range(self, start: u64, end: u64) {
            self.write(|n| (n.va_start, n.va_end) = (start, end));
        }

        fn height(self) -> u32 {
            self.read(|n| n.height)
        }

        fn parent(self) -> Option<NodePtr> {
            self.read(|n| n.parent)
        }

        fn left(self) -> Option<NodePtr> {
            self.read(|n| n.left)
        }

        fn right(self) -> Option<NodePtr> {
            self.read(|n| n.right)
        }

        fn set_parent(self, parent: Option<NodePtr>) {
            self.write(|n| n.parent = parent);
        }

        fn set_left(self, left: Option<NodePtr>) {
            self.write(|n| n.left = left);
            if let Some(left) = left {
                left.set_parent(Some(self));
            }
        }

        fn set_right(self, right: Option<NodePtr>) {
            self.write(|n| n.right = right);
            if let Some(right) = right {
                right.set_parent(Some(self));
            }
        }

        /// Recomputes height and `subtree_max_size` from the children
        /// (Linux `compute_subtree_max_size()`).
        fn update(self) {
            let (left, right) = (self.left(), self.right());
            let height = 1 + height(left).max(height(right));
            let max = self.size().max(max_size(left)).max(max_size(right));
            self.write(|n| (n.height, n.subtree_max_size) = (height, max));
        }

        fn balance(self) -> i64 {
            i64::from(height(self.left())) - i64::from(height(self.right()))
        }

        /// The aligned start of a `size`-byte block at or above `vstart`
        /// in this range, if it fits (Linux `is_within_this_va()`).
        pub(super) fn fit(self, size: u64, align: u64, vstart: u64) -> Option<u64> {
            let nva_start = align_up(self.start().max(vstart), align)?;
            (nva_start.checked_add(size)? <= self.end()).then_some(nva_start)
        }
    }

    fn height(node: Option<NodePtr>) -> u32 {
        node.map_or(0, NodePtr::height)
    }

    fn max_size(node: Option<NodePtr>) -> u64 {
        node.map_or(0, NodePtr::subtree_max_size)
    }

    /// An AVL tree of nodes ordered by start address.
    #[derive(Default)]
    pub(super) struct Tree {
        root: Option<NodePtr>,
        len: usize,
    }

    impl Tree {
        pub(super) fn root(&self) -> Option<NodePtr> {
            self.root
        }

        pub(super) fn len(&self) -> usize {
            self.len
        }

        /// Links an unlinked node whose range overlaps none in the tree.
        pub(super) fn insert(&mut self, node: NodePtr) {
            let start = node.start();
            let (mut parent, mut cursor, mut go_left) = (None, self.root, false);
            while let Some(c) = cursor {
                parent = Some(c);
                go_left = start < c.start();
                cursor = if go_left { c.left() } else { c.right() };
            }
            node.write(|n| (n.left, n.right, n.parent) = (None, None, parent));
            node.update();
            match parent {
                None => self.root = Some(node),
                Some(p) if go_left => p.set_left(Some(node)),
                Some(p) => p.set_right(Some(node)),
            }
            self.len += 1;
            self.fix_up(parent);
        }

        /// Unlinks a node of this tree.
        pub(super) fn remove(&mut self, node: NodePtr) {
            let (left, right, parent) = (node.left(), node.right(), node.parent());
            let fix_from = match (left, right) {
                (Some(left), Some(right)) => {
                    // The successor, which has no left child, takes the
                    // node's place.
                    let mut succ = right;
                    while let Some(l) = succ.left() {
                        succ = l;
                    }
                    let fix_from = if succ == right {
                        succ
                    } else {
                        let succ_parent = succ.parent().unwrap_or(right);
                        succ_parent.set_left(succ.right());
                        succ.set_right(Some(right));
                        succ_parent
                    };
                    succ.set_left(Some(left));
                    self.replace_child(parent, node, Some(succ));
                    Some(fix_from)
                }
                (child, None) | (None, child) => {
                    self.replace_child(parent, node, child);
                    parent
                }
            };
            node.write(|n| (n.left, n.right, n.parent) = (None, None, None));
            self.len -= 1;
            self.fix_up(fix_from);
        }

        /// Refreshes `subtree_max_size` from `node` up after its size
        /// changed (Linux `augment_tree_propagate_from()`).
        pub(super) fn propagate(&mut self, node: NodePtr) {
            let mut cursor = Some(node);
            while let Some(c) = cursor {
                c.update();
                cursor = c.parent();
            }
        }

        /// Puts `new` where `old`, a child of `parent` (or the root), was.
        fn replace_child(&mut self, parent: Option<NodePtr>, old: NodePtr, new: Option<NodePtr>) {
            match parent {
                None => {
                    self.root = new;
                    if let Some(new) = new {
                        new.set_parent(None);
                    }
                }
                Some(p) if p.left() == Some(old) => p.set_left(new),
                Some(p) => p.set_right(new),
            }
        }

        /// Rebalances and refreshes every node from `node` to the root.
        fn fix_up(&mut self, mut node: Option<NodePtr>) {
            while let Some(n) = node {
                node = self.rebalance(n).parent();
            }
        }

        /// Restores the AVL property at `node`, whose subtrees are AVL
        /// trees differing in height by at most two; returns the subtree's
        /// new root.
        fn rebalance(&mut self, node: NodePtr) -> NodePtr {
            node.update();
            match (node.balance(), node.left(), node.right()) {
                (2.., Some(left), _) => {
                    if left.balance() < 0 {
                        self.rotate_left(left);
                    }
                    self.rotate_right(node)
                }
                (..=-2, _, Some(right)) => {
                    if right.balance() > 0 {
                        self.rotate_right(right);
                    }
                    self.rotate_left(node)
                }
                _ => node,
            }
        }

        fn rotate_left(&mut self, x: NodePtr) -> NodePtr {
            let Some(y) = x.right() else { return x };
            let parent = x.parent();
            x.set_right(y.left());
            self.replace_child(parent, x, Some(y));
            y.set_left(Some(x));
            x.update();
            y.update();
            y
        }

        fn rotate_right(&mut self, x: NodePtr) -> NodePtr {
            let Some(y) = x.left() else { return x };
            let parent = x.parent();
            x.set_left(y.right());
            self.replace_child(parent, x, Some(y));
            y.set_right(Some(x));
            x.update();
            y.update();
            y
        }

        pub(super) fn first(&self) -> Option<NodePtr> {
            let mut node = self.root?;
            while let Some(left) = node.left() {
                node = left;
            }
            Some(node)
        }

        pub(super) fn last(&self) -> Option<NodePtr> {
            let mut node = self.root?;
            while let Some(right) = node.right() {
                node = right;
            }
            Some(node)
        }

        /// The in-order successor.
        pub(super) fn next(node: NodePtr) -> Option<NodePtr> {
            if let Some(mut n) = node.right() {
                while let Some(left) = n.left() {
                    n = left;
                }
                return Some(n);
            }
            let mut child = node;
            while let Some(parent) = child.parent() {
                if parent.left() == Some(child) {
                    return Some(parent);
                }
                child = parent;
            }
            None
        }

        /// The in-order predecessor.
        pub(super) fn prev(node: NodePtr) -> Option<NodePtr> {
            if let Some(mut n) = node.left() {
                while let Some(right) = n.right() {
                    n = right;
                }
                return Some(n);
            }
            let mut child = node;
            while let Some(parent) = child.parent() {
                if parent.right() == Some(child) {
                    return Some(parent);
                }
                child = parent;
            }
            None
        }

        /// The nodes in address order.
        pub(super) fn iter(&self) -> impl Iterator<Item = NodePtr> + '_ {
            core::iter::successors(self.first(), |&n| Tree::next(n))
        }

        /// The node whose range contains `addr` (Linux
        /// `__find_vmap_area()`).
        pub(super) fn find(&self, addr: u64) -> Option<NodePtr> {
            let mut cursor = self.root;
            while let Some(n) = cursor {
                if addr < n.start() {
                    cursor = n.left();
                } else if addr >= n.end() {
                    cursor = n.right();
                } else {
                    return Some(n);
                }
            }
            None
        }

        /// The first node starting at or above `addr`.
        pub(super) fn lower_bound(&self, addr: u64) -> Option<NodePtr> {
            let (mut cursor, mut found) = (self.root, None);
            while let Some(n) = cursor {
                if n.start() >= addr {
                    found = Some(n);
                    cursor = n.left();
                } else {
                    cursor = n.right();
                }
            }
            found
        }

        /// The lowest range of at least `length` bytes that holds a
        /// `size`-byte block aligned to `align` at or above `vstart`, and
        /// that block's start (Linux `find_vmap_lowest_match()`; see the
        /// module documentation).
        pub(super) fn find_vmap_lowest_match(
            &self,
            size: u64,
            align: u64,
            vstart: u64,
            length: u64,
        ) -> Option<(NodePtr, u64)> {
            // Below `vstart` nothing fits; the range containing it may.
            if let Some(va) = self.find(vstart).filter(|va| va.size() >= length)
                && let Some(nva_start) = va.fit(size, align, vstart)
            {
                return Some((va, nva_start));
            }
            // Above it, any range of `length` bytes fits: find the lowest.
            // Walk towards `vstart`, remembering the last node (so the
            // lowest) above it whose own range or right subtree is long
            // enough; everything below that node and above `vstart` lies
            // in the left subtrees the walk enters.
            let (mut cursor, mut anchor) = (self.root, None);
            while let Some(n) = cursor.filter(|n| n.subtree_max_size() >= length) {
                if n.start() > vstart {
                    if n.size() >= length || max_size(n.right()) >= length {
                        anchor = Some(n);
                    }
                    cursor = n.left();
                } else {
                    cursor = n.right();
                }
            }
            let mut va = anchor?;
            if va.size() < length {
                va = va.right()?;
                // Leftmost long-enough node of a subtree that has one.
                loop {
                    match va.left() {
                        Some(left) if left.subtree_max_size() >= length => va = left,
                        _ if va.size() >= length => break,
                        _ => va = va.right()?,
                    }
                }
            }
            // Only fails when `length` was not adjusted for alignment.
            Some((va, va.fit(size, align, vstart)?))
        }

        /// Frees every node without rebalancing: the tree is dropped.
        pub(super) fn free_all<A: VmapNodeAlloc>(&mut self, alloc: &A) {
            let mut cursor = self.root.take();
            while let Some(n) = cursor {
                if let Some(left) = n.left() {
                    n.write(|n| n.left = None);
                    cursor = Some(left);
                } else if let Some(right) = n.right() {
                    n.write(|n| n.right = None);
                    cursor = Some(right);
                } else {
                    cursor = n.parent();
                    n.free(alloc);
                }
            }
            self.len = 0;
        }

        /// Invariants 4 and 5 for every node.
        pub(super) fn check(&self, tree: &'static str) -> Result<(), VmapCheckError> {
            if let Some(root) = self.root {
                if root.parent().is_some() {
                    return Err(VmapCheckError::BadParent { tree, start: root.start() });
                }
                check_subtree(tree, root)?;
            }
            Ok(())
        }
    }

    /// Checks a subtree; returns its height and largest range.
    fn check_subtree(tree: &'static str, node: NodePtr) -> Result<(u32, u64), VmapCheckError> {
        let start = node.start();
        let mut heights = [0; 2];
        let mut max = node.size();
        for (i, child) in [node.left(), node.right()].into_iter().enumerate() {
            if let Some(child) = child {
                if child.parent() != Some(node) {
                    return Err(VmapCheckError::BadParent { tree, start: child.start() });
                }
                let (height, child_max) = check_subtree(tree, child)?;
                heights[i] = height;
                max = max.max(child_max);
            }
        }
        let height = 1 + heights[0].max(heights[1]);
        if node.height() != height {
            return Err(VmapCheckError::BadHeight { tree, start, stored: node.height(), computed: height });
        }
        if heights[0].abs_diff(heights[1]) > 1 {
            return Err(VmapCheckError::Unbalanced { tree, start });
        }
        if node.subtree_max_size() != max {
            return Err(VmapCheckError::BadSubtreeMaxSize {
                tree,
                start,
                stored: node.subtree_max_size(),
                computed: max,
            });
        }
        Ok((height, max))
    }
}

#[cfg(test)]
mod tests;
