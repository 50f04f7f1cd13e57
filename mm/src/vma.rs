//! Virtual memory areas of a user address space and the tree holding them
//! (Linux `vm_area_struct` of `include/linux/mm_types.h`, `mm/vma.c`, and
//! the gap search of `mm/mmap.c`: `unmapped_area()`,
//! `unmapped_area_topdown()`).
//!
//! A [`Vma`] is a page-aligned range `[start, end)` with one set of
//! [`VmaFlags`], optionally backed by a [`VmaFile`] from page `pgoff` on.
//! [`VmaTree`] (the VMA half of Linux's `mm_struct`: `mm_mt`, `map_count`,
//! `total_vm`) keeps them in an AVL tree ordered by start address, and
//! implements what mmap, munmap, mprotect, mlock, brk and mremap do to it:
//! insertion with merging, splitting, unmapping a range, changing the flags
//! of a range, growing, shrinking and moving a VMA, and finding a free
//! range.
//!
//! # Merging
//!
//! Two VMAs are *compatible* (Linux `is_mergeable_vma()` and
//! `can_vma_merge_before/after()`) if they touch, their flags are equal and
//! contain no [`VmaFlags::DONTEXPAND`] (Linux `VM_SPECIAL`), they map the
//! same file (`core::ptr::addr_eq`) or both none, and their page offsets are
//! contiguous: `prev.pgoff + prev.pages() == next.pgoff`. Anonymous VMAs get
//! `pgoff = start >> PAGE_SHIFT` ([`VmaDesc::anon`]), as in Linux, so
//! neighbouring anonymous mappings merge until one is moved.
//!
//! What is guaranteed: after [`VmaTree::insert`], [`VmaTree::modify_flags`]
//! and [`VmaTree::relocate`] succeed, no VMA overlapping the range they
//! were given is compatible with either neighbour (merging repeats until
//! that holds). Nothing more: like Linux, a split ([`VmaTree::split`])
//! leaves two compatible halves and [`VmaTree::expand`] does not merge with
//! the VMA it reaches, so compatible neighbours can exist elsewhere and
//! [`VmaTree::check`] does not look for them.
//!
//! # The gap search
//!
//! The gap before a VMA is `[prev.end, vm_start_gap(vma))`, where `prev.end`
//! is 0 for the first VMA and `vm_start_gap()` is the start, lowered by
//! [`STACK_GUARD_GAP`] (saturating) for a [`VmaFlags::GROWSDOWN`] stack so
//! that no mapping is placed in the guard gap below it; an empty range if
//! that is below `prev.end`. The gap after the last VMA has no end. Each
//! node caches its predecessor's end and is augmented with the largest gap
//! in its subtree (Linux v4.19 `rb_subtree_gap`); since a gap depends on
//! the predecessor, every change of a VMA's end or of who precedes a VMA
//! refreshes the successor too.
//!
//! [`VmaTree::unmapped_area`] looks for `length = info.length +
//! info.align_mask + info.start_gap` bytes (the worst case of alignment)
//! in the gaps clipped to `[low_limit, high_limit)`: it takes the lowest gap
//! whose clipped part holds `length` bytes, and returns its clipped start
//! plus `start_gap`, rounded up to `align_offset` modulo `align_mask` with
//! Linux's formula `a + ((align_offset - a) & align_mask)`.
//! [`VmaTree::unmapped_area_topdown`] takes the highest such gap and returns
//! its clipped end minus `info.length`, rounded down with `a - ((a -
//! align_offset) & align_mask)`. Both are `O(log n)`: the gap ends, kept
//! monotone by clipping empty gaps, locate the first (or last) gap within
//! the limits by binary search, and the augmented value finds the next gap
//! long enough, past which none fails on the limits.
//!
//! # Invariants
//!
//! After every public method returns, whether it succeeded or failed
//! ([`VmaTree::check`] verifies all of them):
//!
//! 1. Every VMA is non-empty, page aligned and in the user half.
//! 2. VMAs are disjoint and the tree is ordered by start address; it is an
//!    AVL tree (see [`crate::avl`]).
//! 3. Every VMA caches the end of its predecessor (0 for the first), and its
//!    augmented value is the largest gap in its subtree.
//! 4. `map_count` and `total_pages` count the VMAs and their pages.
//! 5. Every VMA was allocated by the tree's [`VmaAlloc`] and goes back to it
//!    exactly once, when it leaves the tree.
//! 6. Every VMA that maps a file holds one reference on it, taken with
//!    [`VmaFile::get_file`] when the VMA got the file and dropped with
//!    [`VmaFile::put_file`] when it goes back to the allocator (see
//!    [`VmaFile`]'s lifetime rules; the file's count is not visible here,
//!    so [`VmaTree::check`] cannot verify it).
//! 7. Every VMA whose file has a reverse map ([`VmaFile::i_mmap`]) is
//!    linked into it, with this tree's owner and its own current start
//!    and page range, exactly while it is in the tree; a VMA leaves the
//!    reverse map before its memory goes back to the allocator. Changes
//!    update the reverse map new coverage first (see
//!    [`crate::interval_tree`]), so a query never misses a mapped page.
//! 8. Every VMA's `anon_vma` chain satisfies [`crate::rmap`]'s
//!    invariants 1 to 3: its AVCs are linked with this tree's owner and
//!    the VMA's current start and page range, updated new coverage first
//!    as in 7. A split gives the upper half a clone of the chain, a merge
//!    keeps the survivor's (adopting the absorbed VMA's if it had none:
//!    VMAs merge only if their `anon_vma`s are the same or one has none
//!    and the other's chain is that `anon_vma` alone, Linux
//!    `is_mergeable_anon_vma`), and a VMA leaves its `anon_vma`s
//!    ([`crate::rmap`]'s `unlink_anon_vmas`) before it is freed.
//!
//! # Locking
//!
//! [`VmaTree`] is a plain value whose changing methods take `&mut self`; the
//! kernel keeps it under the address space's mmap lock (Linux `mmap_lock`,
//! a reader/writer lock: changes under the write lock, lookups such as a
//! page fault's under the read lock, which threads of one process hold
//! at once). Lock
//! order: `mmap_lock -> VMA allocator (slab cache) locks`, so the allocator
//! must never take the mmap lock; `mmap_lock -> i_mmap lock` (the methods
//! take a file's reverse-map lock for each change of one of its VMAs,
//! never while allocating); the callbacks of
//! [`VmaTree::munmap_range`], [`VmaTree::modify_flags`] and
//! [`VmaTree::clear`] run with it held.
//!
//! # Differences from Linux
//!
//! - **An augmented AVL tree instead of the maple tree.** The gap search is
//!   that of Linux v4.19 (the last with `rb_subtree_gap`), plus the newer
//!   `start_gap`. It is a function of the VMAs alone: the maple-tree
//!   version finds a free range first and then retries when a stack guard
//!   gap is in the way, which can pass over a gap this search takes.
//!   `mmap_min_addr` is the caller's to apply to `low_limit`.
//! - **Allocation failure changes nothing.** Splits needed by
//!   [`VmaTree::munmap_range`] and [`VmaTree::modify_flags`] allocate all
//!   their nodes before changing anything (Linux can fail halfway through
//!   an mprotect of several VMAs and leave the first ones changed).
//! - **Merging chains.** Linux merges the new or changed range with its
//!   two neighbours only; we also absorb neighbours of those that are
//!   compatible with them (halves a split left behind), which is what
//!   makes the guarantee above exact.
//! - **No `vm_ops`, `vm_userfaultfd_ctx` or policy** in the
//!   merge test; `VM_SOFTDIRTY` and shadow stacks do not exist. A file's
//!   operations are the [`VmaFile`] trait object itself, not a separate
//!   `vm_ops` table.
//! - **Files are `&'static dyn VmaFile` kept alive by a count** the VMAs
//!   hold (invariant 6) instead of a `struct file *` with its own count:
//!   the mm has no allocator to own files with (see [`VmaFile`]).
//! - **[`VmaFlags::GROWSDOWN`] is fixed at creation**: mprotect and madvise
//!   never change it in Linux either, and [`Vma::set_flags`] and
//!   [`VmaTree::modify_flags`] keep it, since the gap search depends on it.
//! - The stack guard gap is a constant, not the `stack_guard_gap=` boot
//!   parameter.

use core::cell::Cell;
use core::fmt;

use bitflags::bitflags;

use uapi::errno::Errno;

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, Pfn, VirtAddr};
use crate::avl::{AvlAdapter, AvlCheckError, AvlLink, AvlTree, CursorMut, Unlinked};
use crate::interval_tree::{IMmap, IMmapLink, MmId};
use crate::page_alloc::PgData;
use crate::readahead::VmaRaAdvice;
use crate::rmap::{self, AnonVmaAlloc, AnonVmaPtr, AvcCopy, VmaAnonLink};
use crate::slab_common::ObjCache;

/// The guard gap kept free below a [`VmaFlags::GROWSDOWN`] stack (Linux
/// `stack_guard_gap`, 256 pages by default).
#[doc(alias = "stack_guard_gap")]
pub const STACK_GUARD_GAP: u64 = 256 << PAGE_SHIFT;

/// The lock flags (Linux `VM_LOCKED_MASK`).
pub const VM_LOCKED_MASK: VmaFlags = VmaFlags::LOCKED.union(VmaFlags::LOCKONFAULT);

/// The `VM_MAY*` flags, which sit four bits above the `VM_READ|WRITE|EXEC`
/// they allow (Linux's `newflags >> 4` in mprotect).
pub const VM_MAY_BITS: VmaFlags = VmaFlags::MAYREAD.union(VmaFlags::MAYWRITE).union(VmaFlags::MAYEXEC);

pub use crate::overcommit::DEFAULT_MAX_MAP_COUNT;

bitflags! {
    /// What a VMA allows and how it behaves (Linux `VM_*` of
    /// `vm_area_struct.vm_flags`, with Linux's values).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    #[doc(alias = "vm_flags_t")]
    pub struct VmaFlags: u64 {
        /// `VM_READ`.
        const READ = 0x1;
        /// `VM_WRITE`.
        const WRITE = 0x2;
        /// `VM_EXEC`.
        const EXEC = 0x4;
        /// `VM_SHARED`: writes go to the file, not a private copy.
        const SHARED = 0x8;
        /// `VM_MAYREAD`: mprotect may add [`VmaFlags::READ`].
        const MAYREAD = 0x10;
        /// `VM_MAYWRITE`.
        const MAYWRITE = 0x20;
        /// `VM_MAYEXEC`.
        const MAYEXEC = 0x40;
        /// `VM_MAYSHARE`.
        const MAYSHARE = 0x80;
        /// `VM_GROWSDOWN`: a stack, growing down on faults below it and
        /// kept [`STACK_GUARD_GAP`] bytes clear of mappings below.
        const GROWSDOWN = 0x100;
        /// `VM_LOCKED`: mlocked.
        const LOCKED = 0x2000;
        /// `VM_SEQ_READ`: `MADV_SEQUENTIAL`, faults read ahead
        /// sequentially. Part of the flags, so VMAs with different advice
        /// do not merge (as in Linux).
        const SEQ_READ = 0x8000;
        /// `VM_RAND_READ`: `MADV_RANDOM`, faults read no more than the
        /// page.
        const RAND_READ = 0x10000;
        /// `VM_DONTCOPY`: not inherited by fork.
        const DONTCOPY = 0x20000;
        /// `VM_DONTEXPAND`: cannot be grown by mremap, never merged.
        const DONTEXPAND = 0x40000;
        /// `VM_LOCKONFAULT`: mlock pages as they are faulted in.
        const LOCKONFAULT = 0x80000;
        /// `VM_ACCOUNT`: counted against the commit limit.
        const ACCOUNT = 0x100000;
        /// `VM_NORESERVE`: not counted against the commit limit.
        const NORESERVE = 0x200000;
        /// `VM_WIPEONFORK`: a fork child gets the VMA empty
        /// (`MADV_WIPEONFORK`).
        const WIPEONFORK = 0x2000000;
    }
}

/// The read hints (Linux `VM_READHINTMASK`).
pub const VM_READHINTMASK: VmaFlags = VmaFlags::SEQ_READ.union(VmaFlags::RAND_READ);

impl VmaFlags {
    /// The readahead advice these flags give a file fault (Linux's tests
    /// of `VM_RAND_READ` and `VM_SEQ_READ` in `do_sync_mmap_readahead`).
    pub fn ra_advice(self) -> VmaRaAdvice {
        if self.contains(VmaFlags::RAND_READ) {
            VmaRaAdvice::Random
        } else if self.contains(VmaFlags::SEQ_READ) {
            VmaRaAdvice::Sequential
        } else {
            VmaRaAdvice::Normal
        }
    }
}

/// What a file-backed VMA maps (Linux `struct file` with its
/// `vm_operations_struct` for a page-cache file: `filemap_fault`,
/// `filemap_map_pages`, `filemap_page_mkwrite`; the mapping's
/// `dirty_folio`; `vfs_fsync_range`). Two references are the same file
/// iff `core::ptr::addr_eq` says so (VMA merging compares files that way).
///
/// # Pages
///
/// Page indices are in pages from the start of the file (Linux `pgoff_t`:
/// a VMA's `pgoff` plus the page's offset in it). A page the file hands
/// over ([`fault`](Self::fault), [`map_pages`](Self::map_pages)) comes
/// with one reference that becomes the mm's: the pte's reference while it
/// is mapped, put by the mm when it is zapped or, if the page was not
/// mapped after all (another fault was first, or a private write copied
/// it), at once. The file keeps its own reference for its cache; a page it
/// drops from the cache (truncation, reclaim) while it is mapped stays
/// valid through the mm's reference, and the mm may still pass it to
/// [`set_page_dirty`](Self::set_page_dirty), which must then ignore it.
/// A page is mapped writable only in a `VM_SHARED` mapping, and only after
/// [`page_mkwrite`](Self::page_mkwrite) accepted it; a private mapping
/// maps it read-only and copies it on the first write (Linux
/// `do_cow_fault`, `wp_page_copy`), so the file's page never holds a
/// private write.
///
/// # Context
///
/// The mm calls every method with the address space's mmap lock held (for
/// reading in a fault, for writing in munmap, exit, fork, mprotect,
/// madvise, msync) and never with its page-table lock held: the methods
/// may sleep (I/O, the folio lock, allocation that reclaims). Lock order:
/// mmap lock -> the file's locks -> page-table lock (the callback of
/// [`map_pages`](Self::map_pages) takes the page-table lock; it does not
/// sleep).
///
/// # Lifetime
///
/// Real files are reference-counted (the kernel's inode and its mapping),
/// so a VMA holds a reference of its own (Linux `get_file`/`fput` on
/// `vma->vm_file`): [`VmaTree`] calls [`get_file`](Self::get_file) when a
/// VMA starts mapping the file (a VMA inserted without merging, the upper
/// half of a split, a fork's copy, mremap's `MREMAP_DONTUNMAP` copy) and
/// [`put_file`](Self::put_file) when that VMA is freed (unmapped, merged
/// into a neighbour, exit), so that after every [`VmaTree`] method the
/// count the mm holds is the number of VMAs mapping the file. The mm keeps
/// the `&'static dyn VmaFile` only in those VMAs and, for the length of a
/// call, in a caller's [`VmaDesc`]: it uses the reference only while a VMA
/// holding one exists or the caller holds its own (an mmap call holds the
/// file it maps). That is the promise a kernel relies on when it hands the
/// mm a `&'static` to an object that lives only as long as its count: it
/// may free the object after the last `put_file` of the mm's references
/// and its own. Code outside the mm that reads [`Vma::file`] must likewise
/// use it only while the VMA exists (under the mmap lock).
#[doc(alias = "vm_operations_struct")]
pub trait VmaFile: Sync {
    /// The file's name, for reports (`/proc/PID/maps`).
    fn name(&self) -> &str;

    /// The page cache the file's pages are in, if it has one (Linux
    /// `vma->vm_file->f_mapping`): the identity by which an address space
    /// finds its VMAs mapping a cache's page
    /// ([`crate::mmap::MmStruct::folio_mkclean_one`],
    /// [`crate::mmap::MmStruct::unmap_mapping_pages`]). Two VMAs of
    /// different opens of one file name the same cache.
    fn mapping_id(&self) -> Option<u64> {
        None
    }

    /// The file's reverse map (Linux `f_mapping->i_mmap`), shared by every
    /// open of the file, if it has one: [`VmaTree`] links each VMA mapping
    /// the file into it (invariant 7). It must name the same map for as
    /// long as any VMA holds a reference on the file.
    fn i_mmap(&self) -> Option<&IMmap> {
        None
    }

    /// Takes a reference on the file for a VMA (Linux `get_file`).
    fn get_file(&self);

    /// Drops a reference [`get_file`](Self::get_file) took (Linux `fput`);
    /// after the last one the mm never touches the file again.
    fn put_file(&self);

    /// The file's page at `index`, uptodate, with one reference for the
    /// caller, reading it in if it is not cached (Linux `vm_ops->fault`,
    /// `filemap_fault`); [`FaultPage::major`] says whether that took I/O
    /// (`VM_FAULT_MAJOR`: the mm counts `pgmajfault`). Bytes past the end
    /// of the file in the last page read as zero. `pgdat` is the node the
    /// mm maps from; the page must be in its memory map.
    ///
    /// Errors: [`FileFaultError::Eof`] for a page wholly past the end of
    /// the file and [`FileFaultError::Io`] for a failed read (both
    /// `VM_FAULT_SIGBUS`), [`FileFaultError::NoMemory`] (`VM_FAULT_OOM`).
    ///
    /// `advice` is the VMA's `MADV_SEQUENTIAL`/`MADV_RANDOM` hint
    /// ([`VmaFlags::ra_advice`]), which steers the readahead a file with a
    /// cache does around the fault (Linux reads `vmf->vma->vm_flags`).
    fn fault(&self, pgdat: &PgData<'_>, index: u64, advice: VmaRaAdvice) -> Result<FaultPage, FileFaultError>;

    /// Calls `f(index, pfn)` for the pages at indices in `[start, end)`
    /// that are cached and uptodate and can be had without waiting (not
    /// locked, not past the end of the file), each with one reference
    /// that `f` takes over (Linux `vm_ops->map_pages`,
    /// `filemap_map_pages`). No I/O. The mm maps them read-only around a
    /// read fault where nothing is mapped (fault-around); `f` takes the
    /// page-table lock and never sleeps, so the file may call it under its
    /// own locks. A file without a cache maps nothing.
    fn map_pages(&self, pgdat: &PgData<'_>, start: u64, end: u64, f: &mut dyn FnMut(u64, Pfn));

    /// The page `pfn` at `index`, which the caller holds a reference on,
    /// is about to become writable through a pte of a `VM_SHARED`
    /// mapping: on the first write fault of a page not yet mapped, or a
    /// write to a read-only shared pte (Linux `vm_ops->page_mkwrite` and
    /// the `folio_mark_dirty` of `fault_dirty_shared_page`). The file
    /// checks the page is still its page at `index`, readies the blocks
    /// behind it and marks it dirty, all under its own locking; the mm
    /// then maps it writable and dirty.
    ///
    /// Errors: the write fails with `SIGBUS` on [`FileFaultError::Eof`]
    /// (the page left the file meanwhile: truncation unmaps it as well,
    /// so a retried fault would find the end of the file; Linux retries)
    /// and [`FileFaultError::Io`] (no space, a failed read), `OOM` on
    /// [`FileFaultError::NoMemory`].
    fn page_mkwrite(&self, pgdat: &PgData<'_>, index: u64, pfn: Pfn) -> Result<(), FileFaultError>;

    /// A pte mapping the page `pfn` at `index` was found dirty as it was
    /// zapped (munmap, exit, `MADV_DONTNEED`; Linux `zap_pte_range`'s
    /// `folio_mark_dirty`) or cleaned by msync: the file marks the page
    /// dirty if it is still its page at `index` (Linux
    /// `folio_mark_dirty`), else ignores it. The mm holds a reference on
    /// the page for the call.
    fn set_page_dirty(&self, pgdat: &PgData<'_>, index: u64, pfn: Pfn);

    /// Writes the dirty pages of bytes `[start, end)` of the file back and
    /// waits for them (Linux `vfs_fsync_range(file, start, end - 1, 1)`,
    /// what `msync(MS_SYNC)` calls for a shared mapping after handing the
    /// mapping's dirty ptes over with [`set_page_dirty`](Self::set_page_dirty)).
    ///
    /// Errors: the errno msync returns (`EIO`, `ENOSPC`, ...).
    fn fsync_range(&self, start: u64, end: u64) -> Result<(), Errno>;

    /// `MADV_WILLNEED` over `len` bytes of the file from byte `offset`:
    /// start reading them into the cache (Linux `madvise_willneed`'s
    /// `vfs_fadvise(file, offset, len, POSIX_FADV_WILLNEED)`). A hint: a
    /// file without a cache does nothing, and failures are not reported.
    fn willneed(&self, offset: u64, len: u64);

    /// Whether the file's page at `index` is in its cache and uptodate
    /// (Linux `mincore_page`), for `mincore` of a page no pte maps. A file
    /// without a cache has none.
    fn mincore_page(&self, index: u64) -> bool;

    /// Frees the file's pages of bytes `[start, end)`, which then read as
    /// zeros, keeping the size: the middle pages go and the partial pages
    /// at the ends are zeroed over the range (Linux
    /// `vfs_fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)`, what
    /// `MADV_REMOVE` calls). The mm has zapped the caller's ptes of the
    /// range first and holds the caller's mmap lock, so the file can only
    /// try other address spaces' mmap locks to unmap their ptes (Linux's
    /// `unmap_mapping_range` needs none): a page still mapped by one it
    /// could not lock must not leave the file, which zeroes it in place
    /// instead, so that every mapper reads zeros as on Linux.
    ///
    /// Errors: `EOPNOTSUPP` for a file that cannot (the default, as for a
    /// file system without `fallocate`), `EPERM` for a write-sealed memfd.
    fn punch_hole(&self, pgdat: &PgData<'_>, start: u64, end: u64) -> Result<(), Errno> {
        let _ = (pgdat, start, end);
        Err(Errno::EOPNOTSUPP)
    }
}

/// A page a file's [`fault`](VmaFile::fault) hands over (Linux
/// `vmf->page` and `VM_FAULT_MAJOR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultPage {
    /// The page, uptodate, with one reference for the caller.
    pub pfn: Pfn,
    /// Whether reading it took I/O (a major fault).
    pub major: bool,
}

/// Why a file could not give or ready a page (the `VM_FAULT_*` error bits
/// of a file's fault handlers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFaultError {
    /// The page is wholly past the end of the file, or left it
    /// (`VM_FAULT_SIGBUS`).
    Eof,
    /// Reading the page or readying its blocks failed (`VM_FAULT_SIGBUS`).
    Io,
    /// No memory for the page or the cache (`VM_FAULT_OOM`).
    NoMemory,
}

fn same_file(a: Option<&'static dyn VmaFile>, b: Option<&'static dyn VmaFile>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => core::ptr::addr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// A description of a VMA, to create one ([`VmaTree::insert`]) or report it
/// ([`Vma::desc`]).
#[derive(Clone, Copy)]
pub struct VmaDesc {
    /// First byte, page aligned.
    pub start: VirtAddr,
    /// End, exclusive, page aligned.
    pub end: VirtAddr,
    /// Flags.
    pub flags: VmaFlags,
    /// Page offset in the file of `start` (Linux `vm_pgoff`).
    pub pgoff: u64,
    /// The file mapped, or `None` for anonymous memory.
    pub file: Option<&'static dyn VmaFile>,
}

impl VmaDesc {
    /// An anonymous mapping, whose `pgoff` is `start >> PAGE_SHIFT` as Linux
    /// sets it in `mmap_region()`.
    pub fn anon(start: VirtAddr, end: VirtAddr, flags: VmaFlags) -> Self {
        VmaDesc { start, end, flags, pgoff: start.as_u64() >> PAGE_SHIFT, file: None }
    }
}

impl PartialEq for VmaDesc {
    fn eq(&self, other: &Self) -> bool {
        (self.start, self.end, self.flags, self.pgoff) == (other.start, other.end, other.flags, other.pgoff)
            && same_file(self.file, other.file)
    }
}

impl Eq for VmaDesc {}

impl fmt::Debug for VmaDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VmaDesc")
            .field("start", &self.start)
            .field("end", &self.end)
            .field("flags", &self.flags)
            .field("pgoff", &self.pgoff)
            .field("file", &self.file.map(|file| file.name()))
            .finish()
    }
}

/// A virtual memory area (Linux `struct vm_area_struct`). Linked into a
/// [`VmaTree`], which is the only place VMAs are found; its range changes
/// only through the tree's methods.
#[doc(alias = "vm_area_struct")]
pub struct Vma {
    link: AvlLink<VmaAdapter>,
    vm_start: Cell<u64>,
    vm_end: Cell<u64>,
    vm_flags: Cell<VmaFlags>,
    vm_pgoff: Cell<u64>,
    vm_file: Cell<Option<&'static dyn VmaFile>>,
    /// End of the previous VMA, 0 for the first (Linux v4.19 reached it
    /// through `vm_prev`): the start of the gap before this one.
    prev_end: Cell<u64>,
    /// The node in the file's reverse map (Linux `shared.rb`).
    shared: IMmapLink,
    /// The anonymous reverse map (Linux `anon_vma`, `anon_vma_chain`).
    pub(crate) anon: VmaAnonLink,
    /// Swap readahead's state for this VMA (Linux
    /// `swap_readahead_info`): the last fault's address, window and hits,
    /// packed as [`crate::swap_state::readahead`] says; changed by faults
    /// under the mmap lock held for reading, so atomic.
    pub(crate) swap_readahead_info: core::sync::atomic::AtomicU64,
}

impl Vma {
    fn new(desc: &VmaDesc) -> Self {
        Vma {
            link: AvlLink::new(),
            vm_start: Cell::new(desc.start.as_u64()),
            vm_end: Cell::new(desc.end.as_u64()),
            vm_flags: Cell::new(desc.flags),
            vm_pgoff: Cell::new(desc.pgoff),
            vm_file: Cell::new(desc.file),
            prev_end: Cell::new(0),
            shared: IMmapLink::new(),
            anon: VmaAnonLink::new(),
            swap_readahead_info: core::sync::atomic::AtomicU64::new(0),
        }
    }

    /// First byte (Linux `vm_start`).
    pub fn start(&self) -> VirtAddr {
        VirtAddr::expect_canonical(self.vm_start.get())
    }

    /// End, exclusive (Linux `vm_end`).
    pub fn end(&self) -> VirtAddr {
        VirtAddr::expect_canonical(self.vm_end.get())
    }

    /// Flags (Linux `vm_flags`).
    pub fn flags(&self) -> VmaFlags {
        self.vm_flags.get()
    }

    /// Replaces the flags (Linux `vm_flags_reset()`), keeping
    /// [`VmaFlags::GROWSDOWN`] as it was (see the module documentation).
    /// Unlike [`VmaTree::modify_flags`], it does not merge.
    ///
    /// Only [`VmaTree::modify_flags`] (which holds the tree mutably) calls
    /// it on a VMA in a tree: [`VmaTree`]'s `Sync` rests on that.
    pub(crate) fn set_flags(&self, flags: VmaFlags) {
        let growsdown = self.flags() & VmaFlags::GROWSDOWN;
        self.vm_flags.set((flags - VmaFlags::GROWSDOWN) | growsdown);
    }

    /// Page offset in the file of [`Vma::start`] (Linux `vm_pgoff`).
    pub fn pgoff(&self) -> u64 {
        self.vm_pgoff.get()
    }

    /// The file mapped, `None` for anonymous memory (Linux `vm_file`).
    pub fn file(&self) -> Option<&'static dyn VmaFile> {
        self.vm_file.get()
    }

    /// Pages covered (Linux `vma_pages()`).
    pub fn pages(&self) -> u64 {
        (self.vm_end.get() - self.vm_start.get()) >> PAGE_SHIFT
    }

    /// Whether `addr` is inside.
    pub fn contains(&self, addr: VirtAddr) -> bool {
        (self.vm_start.get()..self.vm_end.get()).contains(&addr.as_u64())
    }

    /// The description of this VMA.
    pub fn desc(&self) -> VmaDesc {
        VmaDesc { start: self.start(), end: self.end(), flags: self.flags(), pgoff: self.pgoff(), file: self.file() }
    }

    /// The start lowered by the stack guard gap (Linux `vm_start_gap()`).
    fn vm_start_gap(&self) -> u64 {
        let start = self.vm_start.get();
        if self.flags().contains(VmaFlags::GROWSDOWN) { start.saturating_sub(STACK_GUARD_GAP) } else { start }
    }

    /// The clipped end of the gap before this VMA: monotone in address
    /// order, unlike [`Vma::vm_start_gap`].
    fn gap_end(&self) -> u64 {
        self.vm_start_gap().max(self.prev_end.get())
    }

    /// Bytes in the gap before this VMA (Linux v4.19 `vma_compute_gap()`).
    fn gap(&self) -> u64 {
        self.gap_end() - self.prev_end.get()
    }
}

impl fmt::Debug for Vma {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.desc().fmt(f)
    }
}

/// The AVL adapter of [`Vma`]: keyed by start, augmented with the largest
/// gap in the subtree (Linux v4.19 `rb_subtree_gap`).
struct VmaAdapter;

// SAFETY: `link` returns the `link` field of the node itself.
unsafe impl AvlAdapter for VmaAdapter {
    type Node = Vma;
    type Aug = u64;

    fn link(node: &Vma) -> &AvlLink<Self> {
        &node.link
    }

    fn key(node: &Vma) -> u64 {
        node.vm_start.get()
    }

    fn augment(node: &Vma, left: Option<u64>, right: Option<u64>) -> u64 {
        node.gap().max(left.unwrap_or(0)).max(right.unwrap_or(0))
    }
}

/// Storage for [`Vma`]s (Linux's `vm_area_cachep`) and their
/// `anon_vma`s: any [`ObjCache<Vma>`] that is also an [`AnonVmaAlloc`].
/// The kernel backs it with slab caches named "vm_area_struct",
/// "anon_vma" and "anon_vma_chain"; host tests with the heap.
/// [`VmaTree`] writes through the memory on `ObjCache`'s promise.
pub trait VmaAlloc: ObjCache<Vma> + AnonVmaAlloc {}

impl<C: ObjCache<Vma> + AnonVmaAlloc + ?Sized> VmaAlloc for C {}

/// Why a VMA tree operation failed. Every failure leaves the tree as it
/// was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaError {
    /// A range that is empty, not page aligned or not in the user half.
    BadRange,
    /// The range overlaps a VMA (Linux's `-ENOMEM` of `mmap` with
    /// `MAP_FIXED_NOREPLACE`, `mremap`'s failed expansion).
    Overlap,
    /// No memory for a VMA (Linux `-ENOMEM`).
    NoMemory,
    /// No VMA is where the operation needs one.
    NotFound,
}

impl fmt::Display for VmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VmaError::BadRange => "vma: invalid address range",
            VmaError::Overlap => "vma: range overlaps a mapping",
            VmaError::NoMemory => "vma: out of memory for a vm_area_struct",
            VmaError::NotFound => "vma: no mapping there",
        })
    }
}

/// An invariant [`VmaTree::check`] found broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaCheckError {
    /// The AVL tree itself is broken.
    Tree(AvlCheckError),
    /// A VMA is empty, unaligned or outside the user half.
    BadRange {
        /// Its start.
        start: u64,
        /// Its end.
        end: u64,
    },
    /// A VMA overlaps the one before it.
    Overlap {
        /// Its start.
        start: u64,
    },
    /// A VMA's cached predecessor end is wrong.
    BadPrevEnd {
        /// Its start.
        start: u64,
        /// The cached value.
        stored: u64,
        /// The predecessor's end.
        computed: u64,
    },
    /// A VMA is missing from its file's reverse map, or is there with a
    /// stale copy, or the reverse map's tree is broken.
    BadIMmap {
        /// The VMA's start.
        start: u64,
    },
    /// A VMA's `anon_vma` chain is inconsistent, stale in its trees or
    /// misses its own `anon_vma` (see [`crate::rmap`]'s invariants).
    BadAnonVma {
        /// The VMA's start.
        start: u64,
    },
    /// A counter disagrees with the tree.
    BadCounter {
        /// `"map_count"` or `"total_pages"`.
        counter: &'static str,
        /// Stored value.
        stored: u64,
        /// Recounted value.
        computed: u64,
    },
}

impl fmt::Display for VmaCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            VmaCheckError::Tree(err) => err.fmt(f),
            VmaCheckError::BadRange { start, end } => write!(f, "vma: bad range {start:#x}-{end:#x}"),
            VmaCheckError::Overlap { start } => write!(f, "vma: {start:#x} overlaps its predecessor"),
            VmaCheckError::BadPrevEnd { start, stored, computed } => {
                write!(f, "vma: {start:#x}: cached previous end {stored:#x}, should be {computed:#x}")
            }
            VmaCheckError::BadIMmap { start } => write!(f, "vma: {start:#x}: wrong in its file's i_mmap"),
            VmaCheckError::BadAnonVma { start } => write!(f, "vma: {start:#x}: bad anon_vma chain"),
            VmaCheckError::BadCounter { counter, stored, computed } => {
                write!(f, "vma: {counter} {stored}, should be {computed}")
            }
        }
    }
}

bitflags! {
    /// How to search (Linux `VM_UNMAPPED_AREA_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct VmUnmappedAreaFlags: u32 {
        /// `VM_UNMAPPED_AREA_TOPDOWN`: the highest fit, not the lowest.
        const TOPDOWN = 1;
    }
}

/// A free-range request (Linux `struct vm_unmapped_area_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[doc(alias = "vm_unmapped_area_info")]
pub struct VmUnmappedAreaInfo {
    /// [`VmUnmappedAreaFlags::TOPDOWN`] for [`VmaTree::vm_unmapped_area`].
    pub flags: VmUnmappedAreaFlags,
    /// Bytes wanted; 0 finds nothing.
    pub length: u64,
    /// The range must start at or above this.
    pub low_limit: VirtAddr,
    /// The range must end at or below this.
    pub high_limit: VirtAddr,
    /// Bits of the start that must equal those of `align_offset`.
    pub align_mask: u64,
    /// See `align_mask`.
    pub align_offset: u64,
    /// Bytes that must stay free below the start (Linux's shadow-stack
    /// guard).
    pub start_gap: u64,
}

/// Bytes of `[gap_start, gap_end)` clipped to `[low, high)`.
fn clipped(gap_start: u64, gap_end: u64, low: u64, high: u64) -> u64 {
    gap_end.min(high).saturating_sub(gap_start.max(low))
}

fn user_addr(addr: u64) -> VirtAddr {
    VirtAddr::expect_canonical(addr)
}

/// The VMAs of one address space (Linux `mm_struct`'s `mm_mt`, `map_count`
/// and `total_vm`).
#[doc(alias = "mm_mt")]
pub struct VmaTree<A: VmaAlloc> {
    tree: AvlTree<VmaAdapter>,
    total_pages: u64,
    alloc: A,
    /// The address space, as the files' reverse maps name it.
    owner: MmId,
    /// Most VMAs it may have (Linux `sysctl_max_map_count`, which the
    /// owner copies in from `vm.max_map_count` before each change,
    /// [`VmaTree::set_max_map_count`]): a split that would pass it fails
    /// with [`VmaError::NoMemory`], as Linux's `split_vma` does.
    max_map_count: usize,
}

// SAFETY: through `&VmaTree` the tree and its VMAs are only read. Every
// write to a VMA's cells (bounds, flags, page offset, cached gap) and to
// the tree's links happens through `&mut VmaTree` (`insert`, `split`,
// `munmap_range`, `modify_flags`, `expand`, `shrink`, `relocate`,
// `clear`) or on a node not yet in the tree, so CPUs sharing a `&VmaTree`
// (faults under the mmap lock held for reading) never race a write. The
// one write through `&VmaTree`, `anon_vma_prepare`, sets a VMA's atomic
// `anon_vma` fields under the anon_vma lock (see `crate::rmap`). The
// allocator is shared along with it.
unsafe impl<A: VmaAlloc + Sync> Sync for VmaTree<A> {}

impl<A: VmaAlloc> VmaTree<A> {
    /// An empty address space taking VMAs from `alloc`, named
    /// `MmId(0)` in the files' reverse maps.
    pub fn new(alloc: A) -> Self {
        Self::with_owner(alloc, MmId(0))
    }

    /// An empty address space taking VMAs from `alloc`, named `owner` in
    /// the reverse maps of the files it maps.
    pub fn with_owner(alloc: A, owner: MmId) -> Self {
        VmaTree { tree: AvlTree::new(), total_pages: 0, alloc, owner, max_map_count: DEFAULT_MAX_MAP_COUNT }
    }

    /// Sets the most VMAs splits may make (`vm.max_map_count`, read by
    /// Linux at each check; the mm copies it in before each change). A
    /// tree that has more already keeps them.
    pub fn set_max_map_count(&mut self, count: usize) {
        self.max_map_count = count;
    }

    /// The most VMAs splits may make.
    pub fn max_map_count(&self) -> usize {
        self.max_map_count
    }

    /// The name of this address space in the files' reverse maps.
    pub fn owner(&self) -> MmId {
        self.owner
    }

    /// The allocator of its VMAs and `anon_vma`s.
    pub fn alloc(&self) -> &A {
        &self.alloc
    }

    /// VMAs (Linux `mm->map_count`).
    pub fn map_count(&self) -> usize {
        self.tree.len()
    }

    /// Pages mapped (Linux `mm->total_vm`).
    #[doc(alias = "total_vm")]
    pub fn total_pages(&self) -> u64 {
        self.total_pages
    }

    /// The VMAs in address order.
    pub fn iter(&self) -> impl Iterator<Item = &Vma> + '_ {
        self.tree.iter()
    }

    /// The VMAs intersecting `[start, end)`, in address order.
    pub fn range(&self, start: VirtAddr, end: VirtAddr) -> impl Iterator<Item = &Vma> + '_ {
        let end = end.as_u64();
        core::iter::successors(self.find_vma(start), |vma| self.tree.next(vma))
            .take_while(move |vma| vma.vm_start.get() < end)
    }

    /// The first VMA ending above `addr`: the one containing it or else the
    /// next (Linux `find_vma()`).
    pub fn find_vma(&self, addr: VirtAddr) -> Option<&Vma> {
        let addr = addr.as_u64();
        self.tree.first_where(|vma| vma.vm_end.get() > addr)
    }

    /// The VMA containing `addr` (Linux `vma_lookup()`).
    pub fn vma_lookup(&self, addr: VirtAddr) -> Option<&Vma> {
        self.find_vma(addr).filter(|vma| vma.contains(addr))
    }

    /// [`VmaTree::find_vma`] and the VMA before it, which ends at or below
    /// `addr` (Linux `find_vma_prev()`).
    pub fn find_vma_prev(&self, addr: VirtAddr) -> (Option<&Vma>, Option<&Vma>) {
        let vma = self.find_vma(addr);
        let prev = match vma {
            Some(vma) => self.tree.prev(vma),
            None => self.tree.last(),
        };
        (vma, prev)
    }

    /// The VMA before `vma` (Linux `vma_prev()`).
    pub fn prev<'a>(&'a self, vma: &'a Vma) -> Option<&'a Vma> {
        self.tree.prev(vma)
    }

    /// The VMA after `vma` (Linux `vma_next()`).
    pub fn next<'a>(&'a self, vma: &'a Vma) -> Option<&'a Vma> {
        self.tree.next(vma)
    }

    /// Whether `[start, end)` has no hole: every page in it is in a VMA
    /// (true for an empty range).
    pub fn covers(&self, start: VirtAddr, end: VirtAddr) -> bool {
        let (mut at, end) = (start.as_u64(), end.as_u64());
        let mut vma = self.find_vma(start);
        while at < end {
            match vma {
                Some(v) if v.vm_start.get() <= at => {
                    at = v.vm_end.get();
                    vma = self.tree.next(v);
                }
                _ => return false,
            }
        }
        true
    }

    /// `[start, end)` as raw addresses if it is a valid VMA range.
    fn user_range(start: VirtAddr, end: VirtAddr) -> Result<(u64, u64), VmaError> {
        if start < end && start.is_aligned(PAGE_SIZE) && end.is_aligned(PAGE_SIZE) && end.is_user() {
            Ok((start.as_u64(), end.as_u64()))
        } else {
            Err(VmaError::BadRange)
        }
    }

    /// Whether any VMA intersects `[start, end)`.
    fn intersects(&self, start: u64, end: u64) -> bool {
        self.find_vma(user_addr(start)).is_some_and(|vma| vma.vm_start.get() < end)
    }

    /// Maps `desc`, merging it with compatible neighbours (Linux
    /// `mmap_region()` and `vma_merge_new_range()`): into the VMA before it,
    /// the one after it, or both, which frees one node. Allocates one node
    /// if nothing merges.
    ///
    /// Errors: [`VmaError::BadRange`], [`VmaError::Overlap`] if any VMA
    /// intersects the range, and [`VmaError::NoMemory`]; none changes
    /// anything.
    #[doc(alias = "mmap_region")]
    #[doc(alias = "vma_merge_new_range")]
    pub fn insert(&mut self, desc: VmaDesc) -> Result<(), VmaError> {
        let (start, end) = Self::user_range(desc.start, desc.end)?;
        if self.intersects(start, end) {
            return Err(VmaError::Overlap);
        }
        self.insert_merge(&desc, None)
    }

    /// Links `desc`'s range, which overlaps nothing, merging it with its
    /// neighbours; `node` is used if nothing merges and freed otherwise.
    fn insert_merge(&mut self, desc: &VmaDesc, node: Option<Unlinked<VmaAdapter>>) -> Result<(), VmaError> {
        let (start, end) = (desc.start.as_u64(), desc.end.as_u64());
        let (next, prev) = self.find_vma_prev(desc.start);
        let anon = node.as_ref().map(|node| &node.anon);
        if let Some(prev) = prev.filter(|prev| compatible(&prev.desc(), desc) && anon_mergeable(Some(&prev.anon), anon))
        {
            // `merge_range` then merges `next` too if it is compatible.
            if let Some(node) = &node {
                adopt_anon(node, prev);
            }
            let prev = prev.vm_start.get();
            self.set_range(prev, prev, end);
            self.rmap_sync_at(prev);
        } else if let Some(next) =
            next.filter(|next| compatible(desc, &next.desc()) && anon_mergeable(anon, Some(&next.anon)))
        {
            if let Some(node) = &node {
                adopt_anon(node, next);
            }
            next.vm_pgoff.set(desc.pgoff);
            let (next, next_end) = (next.vm_start.get(), next.vm_end.get());
            self.set_range(next, start, next_end);
            self.rmap_sync_at(start);
        } else {
            let node = match node {
                Some(node) => node,
                None => self.alloc_vma(desc)?,
            };
            self.link(node);
            return Ok(());
        }
        self.total_pages += (end - start) >> PAGE_SHIFT;
        if let Some(node) = node {
            self.free_vma(node);
        }
        self.merge_range(start, end);
        Ok(())
    }

    /// Splits the VMA that has `addr` strictly inside into `[start, addr)`
    /// and `[addr, end)`, the upper part's `pgoff` advanced (Linux
    /// `__split_vma()`). Allocates one node. Does not merge.
    ///
    /// Errors: [`VmaError::BadRange`] for an unaligned or kernel `addr`,
    /// [`VmaError::NotFound`] if no VMA has it strictly inside, and
    /// [`VmaError::NoMemory`]; none changes anything.
    #[doc(alias = "__split_vma")]
    pub fn split(&mut self, addr: VirtAddr) -> Result<(), VmaError> {
        if !addr.is_aligned(PAGE_SIZE) || !addr.is_user() {
            return Err(VmaError::BadRange);
        }
        let vma = self.vma_lookup(addr).filter(|vma| vma.start() != addr).ok_or(VmaError::NotFound)?;
        if self.map_count() >= self.max_map_count {
            return Err(VmaError::NoMemory);
        }
        // The node takes the file's reference in `split_with`.
        let node = self.alloc_split_node(vma, addr.as_u64())?;
        self.split_with(addr.as_u64(), node);
        Ok(())
    }

    /// A node for the upper part `[addr, end)` of a split of `vma`, which
    /// has `addr` strictly inside: linked to every `anon_vma` of `vma`'s
    /// chain (Linux `__split_vma`'s `anon_vma_clone`), mapping no file yet.
    fn alloc_split_node(&self, vma: &Vma, addr: u64) -> Result<Unlinked<VmaAdapter>, VmaError> {
        let template = VmaDesc { file: None, ..vma.desc() };
        let node = self.alloc_vma(&template)?;
        let pgoff = vma.pgoff() + ((addr - vma.vm_start.get()) >> PAGE_SHIFT);
        let copy = AvcCopy {
            mm: self.owner,
            start: addr,
            first: pgoff,
            last: pgoff + ((vma.vm_end.get() - addr) >> PAGE_SHIFT) - 1,
        };
        if rmap::anon_vma_clone(&self.alloc, &node.anon, &vma.anon, copy).is_err() {
            self.free_vma(node);
            return Err(VmaError::NoMemory);
        }
        Ok(node)
    }

    /// Splits at `addr`, strictly inside a VMA, using `node`, which maps no
    /// file and is on the VMA's `anon_vma`s, for the upper part.
    fn split_with(&mut self, addr: u64, node: Unlinked<VmaAdapter>) {
        let Some(vma) = self.vma_lookup(user_addr(addr)) else {
            self.free_vma(node);
            return;
        };
        let (start, end) = (vma.vm_start.get(), vma.vm_end.get());
        node.vm_start.set(addr);
        node.vm_end.set(end);
        node.vm_flags.set(vma.flags());
        node.vm_pgoff.set(vma.pgoff() + ((addr - start) >> PAGE_SHIFT));
        if let Some(file) = vma.file() {
            // The upper half maps the file too (Linux `__split_vma`'s
            // `get_file`).
            file.get_file();
            node.vm_file.set(Some(file));
        }
        self.set_range(start, start, addr);
        self.total_pages -= (end - addr) >> PAGE_SHIFT;
        // `link` puts the upper half in the reverse map before the lower
        // half's copy shrinks.
        self.link(node);
        self.rmap_sync_at(start);
    }

    /// Allocates the nodes needed to split at `start` and `end` where they
    /// fall strictly inside VMAs, then splits there: all or nothing.
    /// The VMA count may not pass [`VmaTree::max_map_count`]: for a change of the
    /// range (`unmap` false) each split counts, as each of Linux's
    /// `split_vma` calls checks; for an unmap only the one VMA that
    /// straddles both ends adds one once the range is gone (Linux
    /// `do_vmi_align_munmap`).
    fn split_range(&mut self, start: u64, end: u64, unmap: bool) -> Result<(), VmaError> {
        let inside = |addr: u64| self.vma_lookup(user_addr(addr)).filter(|vma| vma.vm_start.get() != addr);
        let (at_start, at_end) = (inside(start), inside(end));
        let (split_start, split_end) = (at_start.is_some(), at_end.is_some());
        if !split_start && !split_end {
            // Nothing to split: not even a transient excess from
            // `split_for_munmap` fails the unmap that follows it.
            return Ok(());
        }
        let added = if unmap {
            usize::from(at_start.zip(at_end).is_some_and(|(a, b)| core::ptr::eq(a, b)))
        } else {
            usize::from(split_start) + usize::from(split_end)
        };
        if self.map_count() + added > self.max_map_count {
            return Err(VmaError::NoMemory);
        }
        let node_start = match at_start {
            Some(vma) => Some(self.alloc_split_node(vma, start)?),
            None => None,
        };
        let node_end = if let Some(vma) = at_end {
            match self.alloc_split_node(vma, end) {
                Ok(node) => Some(node),
                Err(err) => {
                    if let Some(node) = node_start {
                        self.free_vma(node);
                    }
                    return Err(err);
                }
            }
        } else {
            None
        };
        if let Some(node) = node_start {
            self.split_with(start, node);
        }
        if let Some(node) = node_end {
            self.split_with(end, node);
        }
        Ok(())
    }

    /// Splits the VMAs that straddle `start` or `end` as
    /// [`VmaTree::munmap_range`] would, without unmapping anything (Linux
    /// `vms_gather_munmap_vmas()`' splits): the caller zaps the page tables
    /// of the VMAs inside while they, and their files, are still there
    /// (Linux `unmap_region()` before `remove_vma()`), then calls
    /// [`VmaTree::munmap_range`], which has nothing left to split.
    ///
    /// Errors: as [`VmaTree::munmap_range`]'s; neither changes anything.
    pub fn split_for_munmap(&mut self, start: VirtAddr, end: VirtAddr) -> Result<(), VmaError> {
        let (start, end) = Self::user_range(start, end)?;
        self.split_range(start, end, true)
    }

    /// Unmaps `[start, end)` (Linux `do_vmi_align_munmap()`): splits the
    /// VMAs that straddle `start` or `end` (allocating up to two nodes,
    /// both before anything changes), then unlinks each VMA inside, calls
    /// `f` on it (to zap its page tables) and frees it. Holes are fine.
    /// Returns how many VMAs were removed.
    ///
    /// Errors: [`VmaError::BadRange`] and [`VmaError::NoMemory`]; neither
    /// changes anything.
    #[doc(alias = "do_vmi_align_munmap")]
    pub fn munmap_range(&mut self, start: VirtAddr, end: VirtAddr, mut f: impl FnMut(&Vma)) -> Result<usize, VmaError> {
        let (start, end) = Self::user_range(start, end)?;
        self.split_range(start, end, true)?;
        let mut removed = 0;
        while let Some(vma) = self.find_vma(user_addr(start)).filter(|vma| vma.vm_start.get() < end) {
            let vma = self.unlink(vma.vm_start.get());
            self.total_pages -= vma.pages();
            f(&vma);
            self.free_vma(vma);
            removed += 1;
        }
        Ok(removed)
    }

    /// Gives every VMA in `[start, end)` the flags `f` returns for it
    /// (Linux `vma_modify_flags()`, for mprotect, mlock and madvise),
    /// keeping [`VmaFlags::GROWSDOWN`] as it was. Splits the VMAs that
    /// straddle `start` or `end` first (allocating up to two nodes, both
    /// before anything changes), and afterwards merges every VMA in the
    /// range with compatible neighbours, which only frees nodes. Holes are
    /// skipped; see [`VmaTree::covers`].
    ///
    /// Errors: [`VmaError::BadRange`] and [`VmaError::NoMemory`]; neither
    /// changes anything.
    #[doc(alias = "vma_modify_flags")]
    #[doc(alias = "mprotect_fixup")]
    pub fn modify_flags(
        &mut self,
        start: VirtAddr,
        end: VirtAddr,
        mut f: impl FnMut(&Vma) -> VmaFlags,
    ) -> Result<(), VmaError> {
        let (start, end) = Self::user_range(start, end)?;
        self.split_range(start, end, false)?;
        for vma in self.range(user_addr(start), user_addr(end)) {
            vma.set_flags(f(vma));
        }
        self.merge_range(start, end);
        Ok(())
    }

    /// Merges the VMAs overlapping `[start, end)`, which no VMA straddles,
    /// with every compatible neighbour, and those with theirs: afterwards
    /// no VMA overlapping the range is compatible with either neighbour.
    fn merge_range(&mut self, start: u64, end: u64) {
        let Some(first) = self.find_vma(user_addr(start)).filter(|vma| vma.vm_start.get() < end) else { return };
        // Compatibility with the previous VMA depends only on a VMA's
        // start, flags, file and pgoff, which merging into it keeps: the
        // chain of compatible VMAs ending at `first` merges as a whole.
        let mut vma = first;
        while let Some(prev) = self.tree.prev(vma).filter(|prev| mergeable(prev, vma)) {
            vma = prev;
        }
        let mut at = vma.vm_start.get();
        loop {
            let Some(vma) = self.tree.lower_bound(at).filter(|vma| vma.vm_start.get() < end) else { return };
            let Some(next) = self.tree.next(vma) else { return };
            if mergeable(vma, next) {
                adopt_anon(next, vma);
                let next = self.unlink(next.vm_start.get());
                let next_end = next.vm_end.get();
                // The survivor covers `next`'s pages in the reverse maps
                // before `next` leaves them.
                self.set_range(at, at, next_end);
                self.rmap_sync_at(at);
                self.free_vma(next);
            } else {
                at = next.vm_start.get();
            }
        }
    }

    /// Grows the VMA starting at `vma_start` up to `new_end` (Linux
    /// `vma_expand()`, and `vma_merge()` of the extension in an in-place
    /// mremap): merges with the VMA it may now touch if compatible.
    /// Allocates nothing.
    ///
    /// Errors: [`VmaError::BadRange`] if `new_end` is unaligned, in the
    /// kernel half or below the VMA's end, [`VmaError::NotFound`] if no
    /// VMA starts at `vma_start`, and [`VmaError::Overlap`] if the next VMA
    /// starts below `new_end`; none changes anything.
    #[doc(alias = "vma_expand")]
    pub fn expand(&mut self, vma_start: VirtAddr, new_end: VirtAddr) -> Result<(), VmaError> {
        let vma = self.vma_at(vma_start)?;
        let (start, end) = (vma.vm_start.get(), vma.vm_end.get());
        let (_, new_end) = Self::user_range(vma_start, new_end)?;
        if new_end < end {
            return Err(VmaError::BadRange);
        }
        if self.tree.next(vma).is_some_and(|next| next.vm_start.get() < new_end) {
            return Err(VmaError::Overlap);
        }
        self.set_range(start, start, new_end);
        self.rmap_sync_at(start);
        self.total_pages += (new_end - end) >> PAGE_SHIFT;
        self.merge_range(start, new_end);
        Ok(())
    }

    /// Shrinks the VMA starting at `vma_start` to end at `new_end` (Linux
    /// `vma_shrink()`, for brk and mremap); the caller zaps `[new_end,
    /// old end)`. Allocates nothing.
    ///
    /// Errors: [`VmaError::BadRange`] unless `vma_start < new_end <= end`
    /// and `new_end` is aligned, [`VmaError::NotFound`] if no VMA starts at
    /// `vma_start`; neither changes anything.
    #[doc(alias = "vma_shrink")]
    pub fn shrink(&mut self, vma_start: VirtAddr, new_end: VirtAddr) -> Result<(), VmaError> {
        let vma = self.vma_at(vma_start)?;
        let (start, end) = (vma.vm_start.get(), vma.vm_end.get());
        let (_, new_end) = Self::user_range(vma_start, new_end)?;
        if new_end > end {
            return Err(VmaError::BadRange);
        }
        self.set_range(start, start, new_end);
        self.rmap_sync_at(start);
        self.total_pages -= (end - new_end) >> PAGE_SHIFT;
        Ok(())
    }

    /// Moves the VMA that covers exactly `[old_start, old_end)` to start at
    /// `new_start`, keeping its flags, `pgoff` and file, and merges it with
    /// compatible neighbours there (Linux `copy_vma()` and the unmap of the
    /// old range in `move_vma()`; the caller moves the page tables and
    /// splits the VMA beforehand). Reuses the node: allocates nothing, and
    /// frees it if it merges.
    ///
    /// Errors: [`VmaError::BadRange`] if the new range is unaligned or
    /// outside the user half, [`VmaError::NotFound`] if no VMA is exactly
    /// `[old_start, old_end)`, and [`VmaError::Overlap`] if the new range
    /// intersects a VMA (the old one included, unless `new_start ==
    /// old_start`, which changes nothing); none changes anything.
    #[doc(alias = "copy_vma")]
    #[doc(alias = "move_vma")]
    pub fn relocate(&mut self, old_start: VirtAddr, old_end: VirtAddr, new_start: VirtAddr) -> Result<(), VmaError> {
        let vma = self.vma_at(old_start).ok().filter(|vma| vma.end() == old_end).ok_or(VmaError::NotFound)?;
        let mut desc = vma.desc();
        let len = old_end.as_u64() - old_start.as_u64();
        let new_end = new_start.as_u64().checked_add(len).and_then(VirtAddr::new).ok_or(VmaError::BadRange)?;
        let (start, end) = Self::user_range(new_start, new_end)?;
        if new_start == old_start {
            return Ok(());
        }
        if self.intersects(start, end) {
            return Err(VmaError::Overlap);
        }
        // The node stays in its file's reverse map while it moves: its copy
        // there still names the old range, which the caller's page tables
        // map until they move.
        let node = self.unlink(old_start.as_u64());
        self.total_pages -= node.pages();
        node.vm_start.set(start);
        node.vm_end.set(end);
        (desc.start, desc.end) = (new_start, new_end);
        self.insert_merge(&desc, Some(node))
    }

    /// Finds room for `info.length` bytes, the lowest that fits (Linux
    /// `unmapped_area()`; see the module documentation). `O(log n)`.
    pub fn unmapped_area(&self, info: &VmUnmappedAreaInfo) -> Option<VirtAddr> {
        let (length, low, high) = search_limits(info)?;
        // Gaps ending below this are too short once clipped at `low`; the
        // first gap ending at or above it may straddle `low`, the later
        // ones start above it and need only be long enough.
        let low_end = low + length;
        let mut vma = self.tree.first_where(|vma| vma.gap_end() >= low_end);
        loop {
            let (gap_start, gap_end) = match vma {
                Some(vma) => (vma.prev_end.get(), vma.gap_end()),
                None => (self.tree.last().map_or(0, |last| last.vm_end.get()), u64::MAX),
            };
            if gap_start > high - length {
                return None;
            }
            if clipped(gap_start, gap_end, low, high) >= length {
                let gap = gap_start.max(low) + info.start_gap;
                return Some(user_addr(gap + (info.align_offset.wrapping_sub(gap) & info.align_mask)));
            }
            vma = self.tree.next_match(Some(vma?), |max_gap| max_gap >= length, |vma| vma.gap() >= length);
        }
    }

    /// Finds room for `info.length` bytes, the highest that fits (Linux
    /// `unmapped_area_topdown()`; see the module documentation).
    /// `O(log n)`.
    pub fn unmapped_area_topdown(&self, info: &VmUnmappedAreaInfo) -> Option<VirtAddr> {
        let (length, low, high) = search_limits(info)?;
        // Gaps starting above this are too short once clipped at `high`;
        // the last gap starting at or below it may straddle `high`, the
        // earlier ones end below it and need only be long enough.
        let high_start = high - length;
        let last_end = self.tree.last().map_or(0, |last| last.vm_end.get());
        let mut vma = None;
        if last_end > high_start {
            vma = match self.tree.first_where(|vma| vma.prev_end.get() > high_start) {
                Some(above) => self.tree.prev(above),
                None => self.tree.last(),
            };
            vma?;
        }
        loop {
            let (gap_start, gap_end) = match vma {
                Some(vma) => (vma.prev_end.get(), vma.gap_end()),
                None => (last_end, u64::MAX),
            };
            if gap_end < low + length {
                return None;
            }
            if clipped(gap_start, gap_end, low, high) >= length {
                let gap = gap_end.min(high) - info.length;
                return Some(user_addr(gap - (gap.wrapping_sub(info.align_offset) & info.align_mask)));
            }
            vma = Some(self.tree.prev_match(Some(vma?), |max_gap| max_gap >= length, |vma| vma.gap() >= length)?);
        }
    }

    /// [`VmaTree::unmapped_area_topdown`] if `info.flags` has
    /// [`VmUnmappedAreaFlags::TOPDOWN`], else [`VmaTree::unmapped_area`]
    /// (Linux `vm_unmapped_area()`).
    pub fn vm_unmapped_area(&self, info: &VmUnmappedAreaInfo) -> Option<VirtAddr> {
        if info.flags.contains(VmUnmappedAreaFlags::TOPDOWN) {
            self.unmapped_area_topdown(info)
        } else {
            self.unmapped_area(info)
        }
    }

    /// Unlinks every VMA, calls `f` on it and frees it (Linux
    /// `exit_mmap()`).
    #[doc(alias = "exit_mmap")]
    pub fn clear(&mut self, mut f: impl FnMut(&Vma)) {
        let alloc = &self.alloc;
        self.tree.drain(|vma| {
            f(&vma);
            free_vma(alloc, vma);
        });
        self.total_pages = 0;
    }

    /// Verifies every invariant of the module documentation.
    pub fn check(&self) -> Result<(), VmaCheckError> {
        self.tree.check().map_err(VmaCheckError::Tree)?;
        let (mut prev_end, mut pages) = (0, 0);
        for vma in self.iter() {
            let (start, end) = (vma.vm_start.get(), vma.vm_end.get());
            if start >= end
                || start % PAGE_SIZE != 0
                || end % PAGE_SIZE != 0
                || VirtAddr::new(end).is_none_or(|end| !end.is_user())
            {
                return Err(VmaCheckError::BadRange { start, end });
            }
            if start < prev_end {
                return Err(VmaCheckError::Overlap { start });
            }
            if vma.prev_end.get() != prev_end {
                return Err(VmaCheckError::BadPrevEnd { start, stored: vma.prev_end.get(), computed: prev_end });
            }
            let in_i_mmap = match vma.file().and_then(|file| file.i_mmap()) {
                Some(i_mmap) => {
                    let copy = (self.owner, start, vma.pgoff(), vma.pgoff().saturating_add(vma.pages() - 1));
                    vma.shared.is_linked() && vma.shared.copy() == copy && i_mmap.check().is_ok()
                }
                None => !vma.shared.is_linked(),
            };
            if !in_i_mmap {
                return Err(VmaCheckError::BadIMmap { start });
            }
            if !rmap::check_chain(&self.alloc, &vma.anon, self.avc_copy(vma)) {
                return Err(VmaCheckError::BadAnonVma { start });
            }
            prev_end = end;
            pages += vma.pages();
        }
        if pages != self.total_pages {
            return Err(VmaCheckError::BadCounter {
                counter: "total_pages",
                stored: self.total_pages,
                computed: pages,
            });
        }
        Ok(())
    }

    /// The VMA starting at `start`.
    fn vma_at(&self, start: VirtAddr) -> Result<&Vma, VmaError> {
        self.tree.lower_bound(start.as_u64()).filter(|vma| vma.start() == start).ok_or(VmaError::NotFound)
    }

    /// What the VMA's AVCs must say of it (invariant 8).
    fn avc_copy(&self, vma: &Vma) -> AvcCopy {
        AvcCopy {
            mm: self.owner,
            start: vma.vm_start.get(),
            first: vma.pgoff(),
            last: vma.pgoff().saturating_add(vma.pages() - 1),
        }
    }

    /// The `anon_vma` of `vma`, a VMA of this tree, made if it has none
    /// (Linux `anon_vma_prepare`), for a fault about to map a new
    /// anonymous page there. Callable with `&self` (a fault under the
    /// mmap read lock; see [`crate::rmap`]).
    ///
    /// Errors: [`VmaError::NoMemory`], nothing changed.
    pub fn anon_vma_prepare(&self, vma: &Vma) -> Result<AnonVmaPtr, VmaError> {
        // The fault path's common case: one load.
        if let Some(av) = vma.anon.anon_vma() {
            return Ok(av);
        }
        rmap::anon_vma_prepare(&self.alloc, &vma.anon, self.avc_copy(vma)).map_err(|_| VmaError::NoMemory)
    }

    /// Adds the copy of `src`, a VMA of the fork parent `parent`, to this
    /// (child) tree with the flags `flags`, without merging (Linux
    /// `dup_mmap`'s `vm_area_dup` + `anon_vma_fork` + link): the copy is
    /// on every `anon_vma` of `src` and gets its own for its copy-on-write
    /// pages (see [`crate::rmap`]), unless `wipe` (`VM_WIPEONFORK`: it
    /// starts empty, with none).
    ///
    /// Errors: [`VmaError::Overlap`] if the range is taken,
    /// [`VmaError::NoMemory`] (also if the two trees do not share their
    /// allocator's anon_vma lock, which `anon_vma`s shared between them
    /// need); none changes anything.
    pub fn insert_fork(&mut self, parent: &VmaTree<A>, src: &Vma, flags: VmaFlags, wipe: bool) -> Result<(), VmaError> {
        let desc = VmaDesc { flags, ..src.desc() };
        let (start, end) = Self::user_range(desc.start, desc.end)?;
        if self.intersects(start, end) {
            return Err(VmaError::Overlap);
        }
        if !core::ptr::eq(self.alloc.anon_vma_lock(), parent.alloc.anon_vma_lock()) {
            return Err(VmaError::NoMemory);
        }
        let node = self.alloc_vma(&desc)?;
        if !wipe {
            let copy = self.avc_copy(&node);
            if rmap::anon_vma_fork(&self.alloc, &node.anon, &src.anon, copy).is_err() {
                self.free_vma(node);
                return Err(VmaError::NoMemory);
            }
        }
        self.link(node);
        Ok(())
    }

    /// Maps `desc`, a copy of part of the VMA starting at `src_start`
    /// whose pages are about to move there, on every `anon_vma` of it
    /// (Linux `copy_vma`'s `anon_vma_clone`, for `MREMAP_DONTUNMAP`),
    /// merging as [`VmaTree::insert`] does.
    ///
    /// Errors: as [`VmaTree::insert`]'s, and [`VmaError::NotFound`] if no
    /// VMA starts at `src_start`; none changes anything.
    pub fn insert_copy(&mut self, desc: VmaDesc, src_start: VirtAddr) -> Result<(), VmaError> {
        let (start, end) = Self::user_range(desc.start, desc.end)?;
        if self.intersects(start, end) {
            return Err(VmaError::Overlap);
        }
        let src = self.vma_at(src_start)?;
        let node = self.alloc_vma(&desc)?;
        let copy = self.avc_copy(&node);
        if rmap::anon_vma_clone(&self.alloc, &node.anon, &src.anon, copy).is_err() {
            self.free_vma(node);
            return Err(VmaError::NoMemory);
        }
        self.insert_merge(&desc, Some(node))
    }

    /// A new VMA for `desc`, holding a reference on its file (invariant 6).
    fn alloc_vma(&self, desc: &VmaDesc) -> Result<Unlinked<VmaAdapter>, VmaError> {
        let mem = self.alloc.alloc().ok_or(VmaError::NoMemory)?;
        if let Some(file) = desc.file {
            file.get_file();
        }
        // SAFETY: `ObjCache::alloc` returned memory aligned and valid for a
        // `Vma` that nothing else uses until it is freed (invariant 5),
        // which happens only after the node has left the tree.
        Ok(unsafe { Unlinked::new_in(mem, Vma::new(desc)) })
    }

    fn free_vma(&self, vma: Unlinked<VmaAdapter>) {
        free_vma(&self.alloc, vma);
    }

    /// Links an unlinked VMA, overlapping none, and refreshes the gaps of
    /// it and its successor.
    fn link(&mut self, vma: Unlinked<VmaAdapter>) {
        self.total_pages += vma.pages();
        let start = vma.vm_start.get();
        let mut cursor = self.tree.insert(vma);
        refresh_gap(&mut cursor);
        cursor.move_next();
        refresh_gap(&mut cursor);
        self.rmap_sync_at(start);
    }

    /// Brings the reverse-map copies of the VMA starting at `start` up to
    /// date (invariants 7 and 8), linking it into its file's if it is new
    /// there.
    fn rmap_sync_at(&self, start: u64) {
        let Some(vma) = self.tree.lower_bound(start).filter(|vma| vma.vm_start.get() == start) else { return };
        rmap::anon_vma_update(&self.alloc, &vma.anon, self.avc_copy(vma));
        let Some(i_mmap) = vma.file().and_then(|file| file.i_mmap()) else { return };
        let first = vma.pgoff();
        let last = first.saturating_add(vma.pages() - 1);
        // SAFETY: invariant 7: the node is linked into its file's reverse
        // map (the file never changes while the VMA lives, and
        // `VmaFile::i_mmap` always names the same map) or into none, and
        // `free_vma` unlinks it before the slab object it lives in is
        // freed; slab objects do not move.
        unsafe { i_mmap.update(&vma.shared, self.owner, start, first, last) };
    }

    /// Unlinks the VMA starting at `start`, which exists, and refreshes the
    /// gap of its successor. Leaves `total_pages` to the caller.
    fn unlink(&mut self, start: u64) -> Unlinked<VmaAdapter> {
        let mut cursor = self.tree.cursor_mut_lower_bound(start);
        let vma = cursor.remove();
        refresh_gap(&mut cursor);
        match vma {
            Some(vma) => vma,
            // Callers pass the start of a linked VMA.
            None => unreachable!("vma: unlinking a missing VMA at {start:#x}"),
        }
    }

    /// Gives the VMA starting at `key` the range `[start, end)`, which
    /// keeps its place in address order and overlaps no other VMA, and
    /// refreshes the gaps of it and its successor. Leaves `total_pages` to
    /// the caller.
    fn set_range(&mut self, key: u64, start: u64, end: u64) {
        let mut cursor = self.tree.cursor_mut_lower_bound(key);
        if let Some(vma) = cursor.get() {
            vma.vm_start.set(start);
            vma.vm_end.set(end);
        }
        cursor.propagate();
        cursor.move_next();
        refresh_gap(&mut cursor);
    }
}

/// Sets the cached predecessor end of the VMA at the cursor and propagates
/// its gap.
fn refresh_gap(cursor: &mut CursorMut<'_, VmaAdapter>) {
    let prev_end = cursor.peek_prev().map_or(0, |prev| prev.vm_end.get());
    if let Some(vma) = cursor.get() {
        vma.prev_end.set(prev_end);
        cursor.propagate();
    }
}

/// Frees a VMA that left the tree, dropping its file reference
/// (invariant 6) after its last use of the file.
fn free_vma<A: VmaAlloc>(alloc: &A, vma: Unlinked<VmaAdapter>) {
    rmap::unlink_anon_vmas(alloc, &vma.anon);
    if let Some(file) = vma.vm_file.take() {
        if let Some(i_mmap) = file.i_mmap() {
            // SAFETY: invariant 7: linked into this file's map or none.
            unsafe { i_mmap.remove(&vma.shared) };
        }
        file.put_file();
    }
    // SAFETY: invariant 5: the node came from `alloc` (each tree uses one
    // allocator), is linked nowhere, and `into_raw` consumed its only
    // owner.
    unsafe { alloc.free(vma.into_raw()) }
}

/// Whether two VMAs' `anon_vma`s let them merge (Linux
/// `is_mergeable_anon_vma`); `None` is a new range, which has none.
fn anon_mergeable(a: Option<&VmaAnonLink>, b: Option<&VmaAnonLink>) -> bool {
    let none = VmaAnonLink::new();
    rmap::is_mergeable_anon_vma(a.unwrap_or(&none), b.unwrap_or(&none))
}

/// Whether the VMA `prev` is followed by a compatible `next`, `anon_vma`s
/// included.
fn mergeable(prev: &Vma, next: &Vma) -> bool {
    compatible(&prev.desc(), &next.desc()) && anon_mergeable(Some(&prev.anon), Some(&next.anon))
}

/// Before `from` is absorbed by `into`: if only `from` has an `anon_vma`,
/// `into` takes its chain (see [`crate::rmap`]).
fn adopt_anon(from: &Vma, into: &Vma) {
    if into.anon.anon_vma().is_none() && from.anon.anon_vma().is_some() {
        rmap::anon_vma_adopt(&from.anon, &into.anon);
    }
}

/// Whether a mapping `prev` is followed by a compatible `next` (see the
/// module documentation).
fn compatible(prev: &VmaDesc, next: &VmaDesc) -> bool {
    prev.end == next.start
        && prev.flags == next.flags
        && !prev.flags.contains(VmaFlags::DONTEXPAND)
        && same_file(prev.file, next.file)
        && prev.pgoff.checked_add((prev.end.as_u64() - prev.start.as_u64()) >> PAGE_SHIFT) == Some(next.pgoff)
}

/// The search length (worst-case alignment included) and limits, or `None`
/// if nothing can fit.
fn search_limits(info: &VmUnmappedAreaInfo) -> Option<(u64, u64, u64)> {
    let length = info.length.checked_add(info.align_mask)?.checked_add(info.start_gap)?;
    let (low, high) = (info.low_limit.as_u64(), info.high_limit.as_u64());
    if info.length == 0 || !info.high_limit.is_user() || high < length || low > high - length {
        return None;
    }
    Some((length, low, high))
}

impl<A: VmaAlloc> Drop for VmaTree<A> {
    fn drop(&mut self) {
        self.clear(|_| {});
    }
}

#[cfg(test)]
mod tests;
