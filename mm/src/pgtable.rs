//! Page tables: entry encoding, the four-level table tree, and mapping,
//! unmapping and re-protecting ranges in it (Linux
//! `include/linux/pgtable.h`, `mm/pgtable-generic.c`, the kernel-mapping
//! walkers of `mm/vmalloc.c` (`vmap_range_noflush`, `vunmap_range_noflush`),
//! large-page splitting from `arch/x86/mm/pat/set_memory.c`, and the entry
//! bits of `arch/x86/include/asm/pgtable_types.h`).
//!
//! A [`PageTable`] owns a root table (Linux's `pgd`) and every table below
//! it; the frames its leaves point at are the caller's. Levels are Linux's
//! names on 4-level x86_64 paging: pgd -> pud -> pmd -> pte (`p4d` is folded,
//! as Linux folds it without LA57). A leaf can sit at the pud (1 GiB), pmd
//! (2 MiB) or pte (4 KiB) level.
//!
//! Operations take ranges and walk the tree level by level the way Linux's
//! `p*d_range` loops do:
//! - [`PageTable::map`] maps a physically contiguous range with the largest
//!   pages that alignment and the caller's limit allow (Linux's
//!   `vmap_try_huge_pud`/`pmd`); [`PageTable::map_pages`] maps a list of
//!   frames with 4 KiB pages (`vmap_pages_range`). Mapping over an existing
//!   entry is an error and the call undoes what it mapped.
//! - [`PageTable::unmap`] clears a range; a huge leaf only partly inside is
//!   split first (Linux `split_large_page`), and with
//!   [`FreeTables::Yes`] pte and pmd tables left empty are unhooked (Linux
//!   `free_pgd_range`/`pte_free_kernel`). The kernel's pud tables are never
//!   freed: every address space will share them (Linux
//!   `preallocate_vmalloc_pages` keeps top-level kernel entries constant).
//! - [`PageTable::protect`] rewrites the protection of mapped leaves,
//!   splitting huge leaves it only partly covers (Linux `change_page_attr`).
//!
//! Invalidation is batched in a [`TlbGather`] (Linux `struct mmu_gather`):
//! operations record the ranges whose translations went away or lost
//! rights, the tables they unhooked and the pages whose ptes they cleared;
//! [`TlbGather::finish`] flushes once and only then frees the tables and
//! puts the pages, so no CPU can walk a freed table or write a freed page.
//!
//! Concurrency: installing a table into an empty entry is a compare-and-swap
//! (a racing installer frees its own table and uses the winner's, as Linux's
//! `pmd_populate_kernel` under `init_mm.page_table_lock` ends up doing), so
//! callers mapping disjoint ranges need no lock. Unmapping with table
//! freeing, splitting and re-protecting need the covered tables to
//! themselves: callers serialise those on overlapping ranges (the kernel
//! holds its page-table lock, user address spaces the mmap lock).
//!
//! Differences from Linux: entries are read and written as `AtomicU64`
//! through the direct map rather than with `READ_ONCE`/`set_pte`; non-present
//! entries are all "none" until swap entries exist; there is no `p4d` level.

use core::cell::Cell;
use core::ops::ControlFlow;
use core::sync::atomic::{AtomicU64, Ordering};

use bitflags::bitflags;
use log::error;

use crate::addr::{PAGE_SIZE, Pfn, PhysAddr, VirtAddr};
use crate::arch::TlbFlush;
pub use crate::arch::x86_64::{USER_TOP, X86PteFormat};
use crate::gfp::{GFP_KERNEL, Gfp};
use crate::list::PageList;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::swapops::SwpEntry;
use crate::vmstat::NodeStatItem;

/// Entries per table at every level (Linux `PTRS_PER_PTE` and friends).
pub const PTRS_PER_TABLE: usize = 512;

/// Allocation mask of page-table pages (Linux `GFP_PGTABLE_KERNEL`).
pub const GFP_PGTABLE_KERNEL: Gfp = GFP_KERNEL.union(Gfp::ZERO);

/// A level of the tree, named as Linux names the table at that level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Entries map 4 KiB pages.
    Pte = 1,
    /// Entries map 2 MiB or point at a pte table.
    Pmd = 2,
    /// Entries map 1 GiB or point at a pmd table.
    Pud = 3,
    /// The root; entries point at pud tables and cover 512 GiB each.
    Pgd = 4,
}

impl Level {
    /// log2 of the bytes one entry at this level covers (Linux
    /// `PAGE_SHIFT`, `PMD_SHIFT`, `PUD_SHIFT`, `PGDIR_SHIFT`).
    pub const fn shift(self) -> u32 {
        12 + 9 * (self as u32 - 1)
    }

    /// Bytes one entry covers.
    pub const fn entry_size(self) -> u64 {
        1 << self.shift()
    }

    /// The index of `va`'s entry in a table at this level.
    pub const fn index(self, va: u64) -> usize {
        ((va >> self.shift()) & (PTRS_PER_TABLE as u64 - 1)) as usize
    }

    /// The level below, or `None` at the pte level.
    pub const fn lower(self) -> Option<Level> {
        match self {
            Level::Pgd => Some(Level::Pud),
            Level::Pud => Some(Level::Pmd),
            Level::Pmd => Some(Level::Pte),
            Level::Pte => None,
        }
    }

    /// The Linux name of the table at this level.
    pub const fn name(self) -> &'static str {
        match self {
            Level::Pte => "pte",
            Level::Pmd => "pmd",
            Level::Pud => "pud",
            Level::Pgd => "pgd",
        }
    }
}

/// The size of a leaf mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PageSize {
    /// A pte.
    Size4K,
    /// A huge pmd (Linux `PMD_SIZE`).
    Size2M,
    /// A huge pud (Linux `PUD_SIZE`).
    Size1G,
}

impl PageSize {
    /// The level a leaf of this size sits at.
    pub const fn level(self) -> Level {
        match self {
            PageSize::Size4K => Level::Pte,
            PageSize::Size2M => Level::Pmd,
            PageSize::Size1G => Level::Pud,
        }
    }

    /// Bytes.
    pub const fn bytes(self) -> u64 {
        self.level().entry_size()
    }

    /// The leaf size at `level`, if leaves can sit there.
    pub const fn at_level(level: Level) -> Option<PageSize> {
        match level {
            Level::Pte => Some(PageSize::Size4K),
            Level::Pmd => Some(PageSize::Size2M),
            Level::Pud => Some(PageSize::Size1G),
            Level::Pgd => None,
        }
    }

    /// Short name as page-table dumps print it.
    pub const fn name(self) -> &'static str {
        match self {
            PageSize::Size4K => "4K",
            PageSize::Size2M => "2M",
            PageSize::Size1G => "1G",
        }
    }
}

bitflags! {
    /// What a leaf allows, independent of the hardware encoding (Linux
    /// `pgprot_t`, whose bits on x86 are the `_PAGE_*` below). Present and
    /// readable are implied: a leaf exists or it does not.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[doc(alias = "pgprot_t")]
    pub struct PgProt: u32 {
        /// Writable (`_PAGE_RW`).
        const WRITE = 1 << 0;
        /// Executable (the absence of `_PAGE_NX`).
        const EXEC = 1 << 1;
        /// Reachable from user mode (`_PAGE_USER`).
        const USER = 1 << 2;
        /// Kept in the TLB across address-space switches (`_PAGE_GLOBAL`).
        const GLOBAL = 1 << 3;
        /// Set by the CPU on access (`_PAGE_ACCESSED`).
        const ACCESSED = 1 << 4;
        /// Set by the CPU on write (`_PAGE_DIRTY`).
        const DIRTY = 1 << 5;
        /// Write-through caching (`_PAGE_PWT`).
        const WRITE_THROUGH = 1 << 6;
        /// Caching disabled (`_PAGE_PCD`).
        const NO_CACHE = 1 << 7;
        /// Mapped but inaccessible (Linux `_PAGE_PROTNONE`): the entry is
        /// not present for the CPU, so every access faults, but it still
        /// holds the frame, as a `PROT_NONE` user page must. 4 KiB leaves
        /// only; never [`PgProt::GLOBAL`] (x86 keeps it in the global bit).
        const PROTNONE = 1 << 8;
    }
}

/// Kernel data: read-write, no-execute (Linux `PAGE_KERNEL`).
pub const PAGE_KERNEL: PgProt = PgProt::WRITE.union(PgProt::GLOBAL).union(PgProt::ACCESSED).union(PgProt::DIRTY);
/// Kernel read-only data (Linux `PAGE_KERNEL_RO`).
pub const PAGE_KERNEL_RO: PgProt = PgProt::GLOBAL.union(PgProt::ACCESSED);
/// Kernel text: read, execute (Linux `PAGE_KERNEL_ROX`).
pub const PAGE_KERNEL_ROX: PgProt = PAGE_KERNEL_RO.union(PgProt::EXEC);
/// Device memory: uncached (Linux `PAGE_KERNEL_NOCACHE`, `_PAGE_CACHE_MODE_UC`
/// with the power-on PAT: PCD and PWT).
pub const PAGE_KERNEL_NOCACHE: PgProt = PAGE_KERNEL.union(PgProt::NO_CACHE).union(PgProt::WRITE_THROUGH);

/// A leaf: where it points, what it allows and how much it maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// Start of the mapped frame (aligned to `size`).
    pub phys: PhysAddr,
    /// Protection.
    pub prot: PgProt,
    /// Page size.
    pub size: PageSize,
}

/// A decoded entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Not present (Linux `p*d_none`).
    None,
    /// Points at the next level's table.
    Table(PhysAddr),
    /// Maps memory (Linux `pte_present`, `pmd_leaf`, `pud_leaf`).
    Leaf(Leaf),
    /// A non-present pte that is not empty: a swap entry (Linux
    /// `is_swap_pte`), for now only migration entries. Only at the pte
    /// level.
    Swap(SwpEntry),
}

/// The hardware encoding of entries: the arch boundary of the page-table
/// layer. Pure bit manipulation, so host tests use the real x86_64 format.
pub trait PteFormat: Sync {
    /// Encodes a leaf.
    fn encode_leaf(&self, leaf: Leaf) -> u64;

    /// Encodes an entry pointing at a table. Non-leaf entries grant every
    /// right (the leaf decides), and `user` ones allow user mode through.
    fn encode_table(&self, table: PhysAddr, user: bool) -> u64;

    /// Encodes a swap entry as a non-present pte (Linux `swp_entry_to_pte`).
    fn encode_swp(&self, entry: SwpEntry) -> u64;

    /// Whether the pte `raw` maps a page, present or protnone (Linux
    /// `pte_present`, which counts `_PAGE_PROTNONE` as present).
    fn pte_present(&self, raw: u64) -> bool;

    /// The bits of a pte that survive a protection change: the frame and
    /// the dirty bit (Linux `_PAGE_CHG_MASK`). `pte_modify` is then
    /// `(raw & pte_chg_mask()) | encode_leaf` of the new protection at
    /// frame 0, which callers rewriting many ptes compute once.
    fn pte_chg_mask(&self) -> u64;

    /// Decodes an entry found at `level`.
    fn decode(&self, raw: u64, level: Level) -> Entry;
}

/// Why a page-table operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgtableError {
    /// An address or size is not page aligned, the range is empty, wraps,
    /// or leaves its half of the address space.
    BadRange,
    /// Something is already mapped at this address (Linux's
    /// `WARN_ON(!pte_none(...))` in `vmap_pte_range`).
    AlreadyMapped(VirtAddr),
    /// No page for a page table (or a split).
    NoMemory,
}

impl core::fmt::Display for PgtableError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PgtableError::BadRange => f.write_str("bad address range"),
            PgtableError::AlreadyMapped(va) => write!(f, "address {va:#x} is already mapped"),
            PgtableError::NoMemory => f.write_str("out of memory for page tables"),
        }
    }
}

/// Whether [`PageTable::unmap`] frees pte and pmd tables it leaves empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeTables {
    /// Keep them (Linux's vunmap: kernel tables stay for the next mapping).
    No,
    /// Unhook and free them after the flush (Linux `free_pgtables`).
    Yes,
}

/// Pages a [`TlbGather`] holds before it must flush (Linux
/// `MAX_GATHER_BATCH`, there a page of pointers).
pub const GATHER_BATCH: usize = 64;

/// Pending TLB invalidation, table frees and page puts (Linux `struct
/// mmu_gather`).
///
/// Must be [`finish`](TlbGather::finish)ed: dropping one that still holds
/// work logs an error and leaks the tables and pages, because freeing them
/// unflushed could let a CPU walk a reused table or write a reused page.
#[must_use = "a TlbGather must be finished to flush the TLB and free tables"]
#[derive(Debug)]
pub struct TlbGather {
    start: u64,
    end: u64,
    tables: PageList,
    /// References to pages whose ptes were cleared, put after the flush
    /// (Linux's `mmu_gather_batch`).
    pages: [Pfn; GATHER_BATCH],
    nr_pages: usize,
    /// The user address space flushed, or `None` for kernel mappings.
    mm_root: Option<PhysAddr>,
}

impl Default for TlbGather {
    fn default() -> Self {
        Self::new()
    }
}

impl TlbGather {
    /// Nothing to flush yet (Linux `tlb_gather_mmu`).
    pub const fn new() -> Self {
        TlbGather::with_root(None)
    }

    const fn with_root(mm_root: Option<PhysAddr>) -> Self {
        TlbGather {
            start: u64::MAX,
            end: 0,
            tables: PageList::new(),
            pages: [Pfn::new(0); GATHER_BATCH],
            nr_pages: 0,
            mm_root,
        }
    }

    /// Nothing to flush yet in the user address space with root `root`
    /// (Linux `tlb_gather_mmu(tlb, mm)`).
    pub const fn for_mm(root: PhysAddr) -> Self {
        TlbGather::with_root(Some(root))
    }

    /// Records that translations of `[start, end)` must be invalidated
    /// (Linux `tlb_flush_*_range`).
    pub fn add_range(&mut self, start: u64, end: u64) {
        self.start = self.start.min(start);
        self.end = self.end.max(end);
    }

    /// The range to flush, if any.
    pub fn range(&self) -> Option<(u64, u64)> {
        (self.start < self.end).then_some((self.start, self.end))
    }

    /// Tables waiting to be freed.
    pub fn nr_tables(&self) -> u64 {
        self.tables.len()
    }

    /// Takes over a reference to `pfn`, whose pte the caller cleared and
    /// recorded with [`add_range`](Self::add_range), to put it after the
    /// flush (Linux `__tlb_remove_page`). The caller must
    /// [`flush_mmu`](Self::flush_mmu) first when [`full`](Self::full).
    ///
    /// # Safety
    /// The caller owns the reference it hands over (the cleared pte's),
    /// and nothing but that pte's stale translations reaches the page.
    pub unsafe fn remove_page(&mut self, pfn: Pfn) {
        debug_assert!(!self.full(), "TlbGather::remove_page on a full batch");
        if let Some(slot) = self.pages.get_mut(self.nr_pages) {
            *slot = pfn;
            self.nr_pages += 1;
        }
    }

    /// Whether the page batch is full.
    pub fn full(&self) -> bool {
        self.nr_pages == GATHER_BATCH
    }

    /// Flushes the recorded range, then frees the unhooked tables and puts
    /// the pages (Linux `tlb_flush_mmu`); the gather stays usable.
    pub fn flush_mmu(&mut self, tlb: &dyn TlbFlush, pgdat: &PgData<'_>) {
        if let Some((start, end)) = self.range()
            && let Some(start) = VirtAddr::new(start)
        {
            match self.mm_root {
                Some(root) => tlb.flush_tlb_mm_range(root, start, end - start.as_u64()),
                None => tlb.flush_tlb_kernel_range(start, end - start.as_u64()),
            }
        }
        while let Some(pfn) = self.tables.pop_front(pgdat.mem_map()) {
            free_table(pgdat, pfn);
        }
        for &pfn in &self.pages[..self.nr_pages] {
            // Linux `free_pages_and_swap_cache`: a page whose last pte
            // went leaves the swap cache if no pte holds its slot and no
            // one holds its lock.
            if let Some(backend) = pgdat.swap_backend() {
                crate::swap_state::free_swap_cache(pgdat, backend, pfn);
            }
            // A bad page is reported by the allocator and leaked.
            // SAFETY: `remove_page`'s rule: the reference is the cleared
            // pte's, handed over to the gather, and the flush above removed
            // every translation through that pte.
            let _ = unsafe { pgdat.put_page(pfn) };
        }
        self.nr_pages = 0;
        self.start = u64::MAX;
        self.end = 0;
    }

    /// Flushes, frees and puts what is pending (Linux `tlb_finish_mmu`).
    pub fn finish(mut self, tlb: &dyn TlbFlush, pgdat: &PgData<'_>) {
        self.flush_mmu(tlb, pgdat);
    }
}

impl Drop for TlbGather {
    fn drop(&mut self) {
        if self.range().is_some() || !self.tables.is_empty() || self.nr_pages != 0 {
            error!(
                "TlbGather dropped unfinished: range {:#x}-{:#x} not flushed, {} page tables and {} pages leaked",
                self.start,
                self.end,
                self.tables.len(),
                self.nr_pages
            );
        }
    }
}

/// Every page-table page of every tree comes from here and goes back
/// through [`free_table`] (Linux `pagetable_alloc` with the ctor's
/// `NR_PAGETABLE` accounting), so `nr_page_table_pages` counts them all.
fn alloc_table(pgdat: &PgData<'_>, gfp: Gfp) -> Option<PhysAddr> {
    let pfn = pgdat.alloc_pages(gfp, 0)?;
    if let Some(page) = pgdat.pfn_to_page(pfn) {
        page.set(PageFlags::TABLE);
    }
    pgdat.mod_node_page_state(NodeStatItem::NrPagetable, 1);
    Some(pfn.phys())
}

fn free_table(pgdat: &PgData<'_>, pfn: Pfn) {
    if let Some(page) = pgdat.pfn_to_page(pfn) {
        page.clear(PageFlags::TABLE);
    }
    pgdat.mod_node_page_state(NodeStatItem::NrPagetable, -1);
    // A table page we allocated ourselves cannot fail the free checks
    // unless something else corrupted its descriptor; that is reported by
    // the allocator (and the page leaked), which is all that can be done.
    // SAFETY: a table is freed only when it was never linked (a lost
    // populate or split race), after TlbGather::finish flushed its unlinked
    // range (paging-structure caches included), or when its whole tree is
    // in no CPU's CR3 (PageTable's drop), so nothing walks or points into it.
    let _ = unsafe { pgdat.free_pages(pfn, 0) };
}

/// The entries of a table at `level` that `[start, end)` touches, in
/// order: each entry's index and the part of the range it covers (Linux's
/// `p*d_addr_end` loops). `end` of 0 is never produced: ranges never wrap.
pub(crate) fn entry_ranges(level: Level, start: u64, end: u64) -> impl Iterator<Item = (usize, u64, u64)> {
    let size = level.entry_size();
    let mut va = start;
    core::iter::from_fn(move || {
        (va < end).then(|| {
            let next = (va & !(size - 1)).wrapping_add(size);
            let entry_end = if next == 0 || next > end { end } else { next };
            let item = (level.index(va), va, entry_end);
            va = entry_end;
            item
        })
    })
}

/// A page-table tree and the allocator its tables come from.
pub struct PageTable<'a, F: PteFormat> {
    root: PhysAddr,
    user: bool,
    fmt: &'a F,
    pgdat: &'a PgData<'a>,
}

/// What [`PageTable::change_level`] does to the leaves of a range.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeOp {
    /// Clear them, freeing emptied tables or not.
    Unmap(FreeTables),
    /// Give them this protection.
    Protect(PgProt),
}

/// Where [`PageTable::map`]'s leaves point.
#[derive(Clone, Copy)]
enum Source<'s> {
    /// `base` plus the offset into the range.
    Contiguous(PhysAddr),
    /// One frame per 4 KiB page.
    Frames(&'s [Pfn]),
}

impl Source<'_> {
    fn phys(&self, offset: u64) -> PhysAddr {
        match self {
            Source::Contiguous(base) => PhysAddr::new(base.as_u64() + offset),
            Source::Frames(pfns) => pfns[(offset / PAGE_SIZE) as usize].phys(),
        }
    }
}

struct MapArgs<'s> {
    start: u64,
    src: Source<'s>,
    prot: PgProt,
    max: PageSize,
    /// End of what has been mapped so far, for undoing a failed call.
    done: Cell<u64>,
}

impl<'a, F: PteFormat> PageTable<'a, F> {
    /// An empty tree whose root comes from `pgdat` with `root_gfp` (the
    /// kernel asks for a root below 4 GiB, where 32-bit code can load it).
    /// `user` makes table entries pass user-mode accesses through.
    pub fn new(pgdat: &'a PgData<'a>, fmt: &'a F, root_gfp: Gfp, user: bool) -> Result<Self, PgtableError> {
        let root = alloc_table(pgdat, root_gfp | Gfp::ZERO).ok_or(PgtableError::NoMemory)?;
        Ok(PageTable { root, user, fmt, pgdat })
    }

    /// A user address space's tree (Linux `pgd_alloc`): its own lower half,
    /// and the kernel half of the root copied from `kernel` (Linux
    /// `clone_pgd_range` from `swapper_pg_dir`), which stays valid because
    /// the kernel never changes its root entries after boot. Every
    /// operation on the tree is limited to the lower half, and dropping it
    /// frees only lower-half tables.
    pub fn new_user(kernel: &PageTable<'a, F>, root_gfp: Gfp) -> Result<Self, PgtableError> {
        let pt = PageTable::new(kernel.pgdat, kernel.fmt, root_gfp, true)?;
        let root = pt.table(pt.root);
        for (index, slot) in root.iter().enumerate().skip(PTRS_PER_TABLE / 2) {
            slot.store(kernel.root_entry(index), Ordering::Relaxed);
        }
        Ok(pt)
    }

    /// Physical address of the root table (what CR3 holds).
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// The entry format.
    pub fn format(&self) -> &'a F {
        self.fmt
    }

    /// The allocator tables come from.
    pub fn pgdat(&self) -> &'a PgData<'a> {
        self.pgdat
    }

    /// The entries of a table page.
    pub(crate) fn table(&self, table: PhysAddr) -> &[AtomicU64; PTRS_PER_TABLE] {
        let virt = self.pgdat.page_address(table.pfn()).expect("page-table page outside the direct map");
        // SAFETY: `table` is the root or was read from a present non-leaf
        // entry of this tree, so it is a page-table page this tree owns
        // (allocated by `alloc_table`, freed only after being unhooked and
        // flushed). PhysMemory maps it read-write, it is 4 KiB aligned, and
        // every access to it, by us or by the CPU's walker, is an atomic
        // 64-bit access, so shared references to AtomicU64s are sound.
        unsafe { &*virt.as_ptr::<[AtomicU64; PTRS_PER_TABLE]>() }
    }

    fn check_range(&self, start: VirtAddr, size: u64) -> Result<u64, PgtableError> {
        let self_is_user = self.user;
        let end = start.as_u64().checked_add(size).ok_or(PgtableError::BadRange)?;
        let last = VirtAddr::new(end.wrapping_sub(1)).ok_or(PgtableError::BadRange)?;
        if size == 0
            || !start.is_aligned(PAGE_SIZE)
            || !size.is_multiple_of(PAGE_SIZE)
            || last.is_user() != start.is_user()
            || (self_is_user && !start.is_user())
        {
            return Err(PgtableError::BadRange);
        }
        Ok(end)
    }

    /// Maps `[virt, virt + size)` to the physically contiguous
    /// `[phys, phys + size)` with pages of at most `max` (Linux
    /// `vmap_range_noflush` with huge mappings allowed up to `max`). Nothing
    /// may be mapped there yet. On failure, what this call mapped is
    /// unmapped into `gather` (finish it either way).
    pub fn map(
        &self,
        virt: VirtAddr,
        phys: PhysAddr,
        size: u64,
        prot: PgProt,
        max: PageSize,
        gather: &mut TlbGather,
    ) -> Result<(), PgtableError> {
        if !phys.is_aligned(PAGE_SIZE) {
            return Err(PgtableError::BadRange);
        }
        self.map_source(
            virt,
            size,
            MapArgs { start: virt.as_u64(), src: Source::Contiguous(phys), prot, max, done: Cell::new(virt.as_u64()) },
            gather,
        )
    }

    /// Maps `frames.len()` pages at `virt`, one frame per 4 KiB page (Linux
    /// `vmap_pages_range`). Failure as for [`PageTable::map`].
    pub fn map_pages(
        &self,
        virt: VirtAddr,
        frames: &[Pfn],
        prot: PgProt,
        gather: &mut TlbGather,
    ) -> Result<(), PgtableError> {
        let size = frames.len() as u64 * PAGE_SIZE;
        let args = MapArgs {
            start: virt.as_u64(),
            src: Source::Frames(frames),
            prot,
            max: PageSize::Size4K,
            done: Cell::new(virt.as_u64()),
        };
        self.map_source(virt, size, args, gather)
    }

    fn map_source(
        &self,
        virt: VirtAddr,
        size: u64,
        args: MapArgs<'_>,
        gather: &mut TlbGather,
    ) -> Result<(), PgtableError> {
        let end = self.check_range(virt, size)?;
        let result = self.map_level(self.root, Level::Pgd, virt.as_u64(), end, &args, gather);
        let done = args.done.get();
        if result.is_err() && done > virt.as_u64() {
            // Undo: the range [virt, done) holds only what this call mapped.
            // Splitting cannot be needed (leaves were placed on aligned
            // boundaries inside the range), so this cannot fail.
            let _ =
                self.change_level(self.root, Level::Pgd, virt.as_u64(), done, RangeOp::Unmap(FreeTables::No), gather);
        }
        result
    }

    fn map_level(
        &self,
        table: PhysAddr,
        level: Level,
        start: u64,
        end: u64,
        args: &MapArgs<'_>,
        gather: &mut TlbGather,
    ) -> Result<(), PgtableError> {
        let entries = self.table(table);
        let size = level.entry_size();
        for (index, va, entry_end) in entry_ranges(level, start, end) {
            let slot = &entries[index];
            let offset = va - args.start;
            let phys = args.src.phys(offset);
            let leaf_size = PageSize::at_level(level).filter(|&s| {
                s <= args.max && va.is_multiple_of(size) && entry_end - va == size && phys.is_aligned(size)
            });
            let current = slot.load(Ordering::Acquire);
            if let Some(leaf_size) = leaf_size
                && self.clear_empty_subtree(slot, current, level, va, gather)
            {
                let raw = self.fmt.encode_leaf(Leaf { phys, prot: args.prot, size: leaf_size });
                if slot.compare_exchange(0, raw, Ordering::AcqRel, Ordering::Acquire).is_err() {
                    return Err(PgtableError::AlreadyMapped(VirtAddr::expect_canonical(va)));
                }
                args.done.set(entry_end);
            } else {
                // At the pte level a leaf fits whenever we get here, so a
                // full slot is in the way.
                let lower = level.lower().ok_or(PgtableError::AlreadyMapped(VirtAddr::expect_canonical(va)))?;
                let next_table = match self.fmt.decode(current, level) {
                    Entry::Table(t) => t,
                    Entry::Leaf(_) | Entry::Swap(_) => {
                        return Err(PgtableError::AlreadyMapped(VirtAddr::expect_canonical(va)));
                    }
                    Entry::None => self.populate(slot, level, va)?,
                };
                self.map_level(next_table, lower, va, entry_end, args, gather)?;
            }
        }
        Ok(())
    }

    /// Makes `slot` (holding `current`) empty so a huge leaf can go there:
    /// true if it already is, or if it points at tables that map nothing,
    /// which are then unhooked and queued for freeing after the flush
    /// (Linux `pmd_free_pte_page`/`pud_free_pmd_page` in
    /// `vmap_try_huge_pmd`/`pud`). False if anything is mapped below.
    fn clear_empty_subtree(
        &self,
        slot: &AtomicU64,
        current: u64,
        level: Level,
        va: u64,
        gather: &mut TlbGather,
    ) -> bool {
        let Entry::Table(table) = self.fmt.decode(current, level) else {
            return current == 0;
        };
        if !self.maps_nothing(table, level) {
            return false;
        }
        if slot.compare_exchange(current, 0, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return false;
        }
        let base = va & !(level.entry_size() - 1);
        gather.add_range(base, base + level.entry_size());
        self.queue_subtree(table, level, gather);
        true
    }

    /// Whether the table below an entry at `level` maps nothing.
    fn maps_nothing(&self, table: PhysAddr, level: Level) -> bool {
        let Some(lower) = level.lower() else { return true };
        self.table(table).iter().all(|e| match self.fmt.decode(e.load(Ordering::Acquire), lower) {
            Entry::None => true,
            Entry::Leaf(_) | Entry::Swap(_) => false,
            Entry::Table(t) => self.maps_nothing(t, lower),
        })
    }

    /// Frees the tables under `[start, end)` that serve no address outside
    /// `[floor, ceiling)` (Linux `free_pgd_range` / `free_pgtables`): after
    /// munmap has zapped a range, `floor` is the end of the VMA below it (0
    /// if none) and `ceiling` the start of the VMA above (the top of the
    /// user half if none), so every such table is empty. Only a user
    /// tree's lower half; the root stays. The unhooked tables wait in
    /// `gather` for its flush. A table in the window that still maps
    /// something is kept and reported: a caller left ptes outside its VMAs.
    /// Takes `&mut self`: no `pte_offset` reference may outlive a freed
    /// table.
    pub(crate) fn free_pgtables(&mut self, start: u64, end: u64, floor: u64, ceiling: u64, gather: &mut TlbGather) {
        if self.user {
            self.free_range(self.root, Level::Pgd, start, end.min(USER_TOP), floor, ceiling, gather);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn free_range(
        &self,
        table: PhysAddr,
        level: Level,
        start: u64,
        end: u64,
        floor: u64,
        ceiling: u64,
        gather: &mut TlbGather,
    ) {
        let Some(lower) = level.lower() else { return };
        let size = level.entry_size();
        for (index, va, entry_end) in entry_ranges(level, start, end) {
            let slot = &self.table(table)[index];
            let Entry::Table(t) = self.fmt.decode(slot.load(Ordering::Acquire), level) else { continue };
            self.free_range(t, lower, va, entry_end, floor, ceiling, gather);
            let base = va & !(size - 1);
            if base < floor || base + size > ceiling {
                continue;
            }
            if self.table(t).iter().any(|e| e.load(Ordering::Acquire) != 0) {
                error!("free_pgtables: table at {base:#x} ({lower:?}) outside every VMA still maps something; kept");
                continue;
            }
            slot.store(0, Ordering::Release);
            gather.add_range(base, base + size);
            gather.tables.push_back(self.pgdat.mem_map(), t.pfn());
        }
    }

    /// Queues `table` (below an entry at `level`) and every table under it.
    fn queue_subtree(&self, table: PhysAddr, level: Level, gather: &mut TlbGather) {
        if let Some(lower) = level.lower() {
            for e in self.table(table) {
                if let Entry::Table(t) = self.fmt.decode(e.load(Ordering::Acquire), lower) {
                    self.queue_subtree(t, lower, gather);
                }
            }
        }
        gather.tables.push_back(self.pgdat.mem_map(), table.pfn());
    }

    /// Installs a new empty table in the empty `slot` (Linux
    /// `__pte_alloc_kernel`/`pmd_populate_kernel`), or returns the table a
    /// racing CPU installed first.
    fn populate(&self, slot: &AtomicU64, level: Level, va: u64) -> Result<PhysAddr, PgtableError> {
        let new = alloc_table(self.pgdat, GFP_PGTABLE_KERNEL).ok_or(PgtableError::NoMemory)?;
        let raw = self.fmt.encode_table(new, self.user);
        match slot.compare_exchange(0, raw, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(new),
            Err(current) => {
                free_table(self.pgdat, new.pfn());
                match self.fmt.decode(current, level) {
                    Entry::Table(t) => Ok(t),
                    _ => Err(PgtableError::AlreadyMapped(VirtAddr::expect_canonical(va))),
                }
            }
        }
    }

    /// Replaces the huge leaf in `slot` with a table of the next smaller
    /// leaves mapping the same memory with the same protection (Linux
    /// `split_large_page`). The old translation is queued for flushing.
    fn split(&self, slot: &AtomicU64, level: Level, va: u64, gather: &mut TlbGather) -> Result<PhysAddr, PgtableError> {
        let raw = slot.load(Ordering::Acquire);
        let Entry::Leaf(leaf) = self.fmt.decode(raw, level) else {
            return Err(PgtableError::BadRange);
        };
        let lower = level.lower().ok_or(PgtableError::BadRange)?;
        let small = PageSize::at_level(lower).ok_or(PgtableError::BadRange)?;
        let new = alloc_table(self.pgdat, GFP_PGTABLE_KERNEL).ok_or(PgtableError::NoMemory)?;
        for (i, entry) in self.table(new).iter().enumerate() {
            let phys = PhysAddr::new(leaf.phys.as_u64() + i as u64 * small.bytes());
            entry.store(self.fmt.encode_leaf(Leaf { phys, prot: leaf.prot, size: small }), Ordering::Relaxed);
        }
        if slot
            .compare_exchange(raw, self.fmt.encode_table(new, self.user), Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            free_table(self.pgdat, new.pfn());
            return Err(PgtableError::AlreadyMapped(VirtAddr::expect_canonical(va)));
        }
        let base = va & !(level.entry_size() - 1);
        gather.add_range(base, base + level.entry_size());
        Ok(new)
    }

    /// Unmaps every leaf in `[virt, virt + size)`, splitting huge leaves that
    /// straddle its ends, and queues the flush (and, with
    /// [`FreeTables::Yes`], the tables left empty) in `gather`. Returns the
    /// bytes that were mapped. Holes are skipped (Linux's vunmap and
    /// zap walkers skip none entries too).
    pub fn unmap(
        &self,
        virt: VirtAddr,
        size: u64,
        free: FreeTables,
        gather: &mut TlbGather,
    ) -> Result<u64, PgtableError> {
        let end = self.check_range(virt, size)?;
        self.change_level(self.root, Level::Pgd, virt.as_u64(), end, RangeOp::Unmap(free), gather)
    }

    /// Sets the protection of every mapped leaf in `[virt, virt + size)` to
    /// `prot`, splitting huge leaves that straddle the range's ends (Linux
    /// `change_page_attr_set_clr`). Queues a flush for what changed and
    /// returns the bytes changed; holes are skipped.
    pub fn protect(
        &self,
        virt: VirtAddr,
        size: u64,
        prot: PgProt,
        gather: &mut TlbGather,
    ) -> Result<u64, PgtableError> {
        let end = self.check_range(virt, size)?;
        self.change_level(self.root, Level::Pgd, virt.as_u64(), end, RangeOp::Protect(prot), gather)
    }

    /// The walk behind [`PageTable::unmap`] and [`PageTable::protect`]:
    /// leaves wholly inside the range get `op`, leaves straddling its ends
    /// are split first, tables are descended. Returns the bytes the range
    /// had mapped.
    fn change_level(
        &self,
        table: PhysAddr,
        level: Level,
        start: u64,
        end: u64,
        op: RangeOp,
        gather: &mut TlbGather,
    ) -> Result<u64, PgtableError> {
        let entries = self.table(table);
        let size = level.entry_size();
        let mut done = 0;
        for (index, va, entry_end) in entry_ranges(level, start, end) {
            let slot = &entries[index];
            let whole = va.is_multiple_of(size) && entry_end - va == size;
            let lower_table = match (self.fmt.decode(slot.load(Ordering::Acquire), level), op) {
                // Swap entries stand for user pages, which these range
                // operations (kernel mappings, user page-table teardown
                // after the zap) never meet; leave one as it is.
                (Entry::None | Entry::Swap(_), _) => continue,
                (Entry::Leaf(_), RangeOp::Unmap(_)) if whole => {
                    slot.store(0, Ordering::Release);
                    gather.add_range(va, entry_end);
                    done += size;
                    continue;
                }
                (Entry::Leaf(leaf), RangeOp::Protect(prot)) if whole || leaf.prot == prot => {
                    if leaf.prot != prot {
                        slot.store(self.fmt.encode_leaf(Leaf { prot, ..leaf }), Ordering::Release);
                        gather.add_range(va, entry_end);
                    }
                    done += entry_end - va;
                    continue;
                }
                (Entry::Leaf(_), _) => self.split(slot, level, va, gather)?,
                (Entry::Table(lower_table), _) => lower_table,
            };
            let lower = level.lower().ok_or(PgtableError::BadRange)?;
            done += self.change_level(lower_table, lower, va, entry_end, op, gather)?;
            if op == RangeOp::Unmap(FreeTables::Yes)
                && matches!(level, Level::Pud | Level::Pmd)
                && self.table(lower_table).iter().all(|e| e.load(Ordering::Acquire) == 0)
            {
                slot.store(0, Ordering::Release);
                let base = va & !(size - 1);
                gather.add_range(base, base + size);
                gather.tables.push_back(self.pgdat.mem_map(), lower_table.pfn());
            }
        }
        Ok(done)
    }

    /// The translation of `virt`: the leaf covering it, with `phys` moved to
    /// `virt`'s byte (Linux `lookup_address` + offset).
    pub fn translate(&self, virt: VirtAddr) -> Option<Leaf> {
        let va = virt.as_u64();
        let mut table = self.root;
        let mut level = Level::Pgd;
        loop {
            let raw = self.table(table)[level.index(va)].load(Ordering::Acquire);
            match self.fmt.decode(raw, level) {
                Entry::None | Entry::Swap(_) => return None,
                Entry::Table(t) => {
                    table = t;
                    level = level.lower()?;
                }
                Entry::Leaf(leaf) => {
                    let offset = va & (leaf.size.bytes() - 1);
                    return Some(Leaf { phys: PhysAddr::new(leaf.phys.as_u64() + offset), ..leaf });
                }
            }
        }
    }

    /// The pte slot mapping `va` (Linux `pte_offset_map`), allocating
    /// missing tables when `alloc` (Linux `pte_alloc`). `None` when a
    /// table is missing and `alloc` is false. A huge leaf on the way is
    /// [`PgtableError::AlreadyMapped`]: user trees use 4 KiB pages only.
    pub(crate) fn pte_offset(&self, va: VirtAddr, alloc: bool) -> Result<Option<&AtomicU64>, PgtableError> {
        let table = self.pte_table(va, alloc)?;
        Ok(table.map(|t| &t[Level::Pte.index(va.as_u64())]))
    }

    /// The whole pte table covering `va` (the 2 MiB around it), allocating
    /// missing levels when `alloc`: a walker filling consecutive ptes
    /// walks the upper levels once per table, as Linux's `copy_pte_range`
    /// does per pmd.
    pub(crate) fn pte_table(
        &self,
        va: VirtAddr,
        alloc: bool,
    ) -> Result<Option<&[AtomicU64; PTRS_PER_TABLE]>, PgtableError> {
        let va = va.as_u64();
        let mut table = self.root;
        let mut level = Level::Pgd;
        while let Some(lower) = level.lower() {
            let slot = &self.table(table)[level.index(va)];
            table = match self.fmt.decode(slot.load(Ordering::Acquire), level) {
                Entry::Table(t) => t,
                Entry::None if alloc => self.populate(slot, level, va)?,
                Entry::None => return Ok(None),
                Entry::Leaf(_) | Entry::Swap(_) => {
                    return Err(PgtableError::AlreadyMapped(VirtAddr::expect_canonical(va)));
                }
            };
            level = lower;
        }
        Ok(Some(self.table(table)))
    }

    /// Calls `f(va, slot)` for every pte slot of `[start, end)` whose pte
    /// table exists (Linux's `p*d_range` walkers with `p*d_none_or_clear_bad`
    /// skipping). Huge leaves are skipped: user trees have none.
    pub(crate) fn for_each_pte(&self, start: u64, end: u64, f: &mut dyn FnMut(u64, &AtomicU64)) {
        let _ = self.try_for_each_pte(start, end, &mut |va, slot| {
            f(va, slot);
            ControlFlow::Continue(())
        });
    }

    /// [`PageTable::for_each_pte`] that stops as soon as `f` breaks
    /// (Linux's `zap_pte_range` leaving its loop to flush a full batch).
    pub(crate) fn try_for_each_pte(
        &self,
        start: u64,
        end: u64,
        f: &mut dyn FnMut(u64, &AtomicU64) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        self.walk_ptes(self.root, Level::Pgd, start, end, f)
    }

    fn walk_ptes(
        &self,
        table: PhysAddr,
        level: Level,
        start: u64,
        end: u64,
        f: &mut dyn FnMut(u64, &AtomicU64) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let entries = self.table(table);
        for (index, va, entry_end) in entry_ranges(level, start, end) {
            match level.lower() {
                None => f(va, &entries[index])?,
                Some(lower) => {
                    if let Entry::Table(t) = self.fmt.decode(entries[index].load(Ordering::Acquire), level) {
                        self.walk_ptes(t, lower, va, entry_end, f)?;
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// The raw entry at `index` of the root (for sharing kernel entries
    /// with other trees).
    pub fn root_entry(&self, index: usize) -> u64 {
        self.table(self.root)[index].load(Ordering::Acquire)
    }

    /// Makes sure the root entry covering `virt` points at a table, so that
    /// the root's kernel half never changes after boot (Linux
    /// `preallocate_vmalloc_pages`).
    pub fn preallocate(&self, virt: VirtAddr) -> Result<(), PgtableError> {
        let slot = &self.table(self.root)[Level::Pgd.index(virt.as_u64())];
        match self.fmt.decode(slot.load(Ordering::Acquire), Level::Pgd) {
            Entry::None => self.populate(slot, Level::Pgd, virt.as_u64()).map(drop),
            _ => Ok(()),
        }
    }

    /// Pages of page tables in the tree, root included; for a user tree,
    /// the kernel half it shares is not counted (Linux `mm_pgtables_bytes`).
    pub fn nr_tables(&self) -> u64 {
        self.count_tables(self.root, Level::Pgd)
    }

    fn count_tables(&self, table: PhysAddr, level: Level) -> u64 {
        let Some(lower) = level.lower() else { return 1 };
        let limit = if self.user && level == Level::Pgd { PTRS_PER_TABLE / 2 } else { PTRS_PER_TABLE };
        1 + self.table(table)[..limit]
            .iter()
            .filter_map(|e| match self.fmt.decode(e.load(Ordering::Acquire), level) {
                Entry::Table(t) => Some(self.count_tables(t, lower)),
                _ => None,
            })
            .sum::<u64>()
    }

    fn free_tree(&self, table: PhysAddr, level: Level) {
        if let Some(lower) = level.lower() {
            // A user tree shares the kernel half of its root: not ours.
            let limit = if self.user && level == Level::Pgd { PTRS_PER_TABLE / 2 } else { PTRS_PER_TABLE };
            for e in &self.table(table)[..limit] {
                if let Entry::Table(t) = self.fmt.decode(e.load(Ordering::Acquire), level) {
                    self.free_tree(t, lower);
                }
            }
        }
        free_table(self.pgdat, table.pfn());
    }
}

impl<F: PteFormat> Drop for PageTable<'_, F> {
    /// Frees every table (not the frames the leaves map). The tree must not
    /// be loaded in any CPU's CR3 any more.
    fn drop(&mut self) {
        self.free_tree(self.root, Level::Pgd);
    }
}

#[cfg(test)]
mod tests;
