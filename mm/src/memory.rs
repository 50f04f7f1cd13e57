//! Page faults and the page-table side of user address spaces (Linux
//! `mm/memory.c`: `handle_mm_fault`, `do_anonymous_page`, `do_read_fault`,
//! `do_cow_fault`, `do_shared_fault`, `do_fault_around`, `finish_fault`,
//! `do_wp_page`, `wp_page_shared`, `zap_pte_range`, `copy_pte_range`;
//! `mm/mprotect.c`'s `change_pte_range`, `mm/mremap.c`'s `move_ptes`, and
//! the pte half of `mm/rmap.c`'s `page_mkclean_one` for msync).
//!
//! User ptes are 4 KiB leaves in the address space's
//! [`PageTable`](crate::pgtable::PageTable): present with the VMA's rights,
//! or [`PgProt::PROTNONE`] for a page of a `PROT_NONE` VMA (Linux's
//! `_PAGE_PROTNONE`), or none. Faults:
//!
//! - none, anonymous VMA: a read maps the shared zero page read-only, a
//!   write a new zeroed page (Linux `do_anonymous_page`);
//! - none, file VMA: the page comes from the file ([`VmaFile::fault`],
//!   Linux `filemap_fault`), with one reference that becomes the pte's. A
//!   read maps the file's page itself, read-only, and first maps the
//!   cached pages around it that the file gives without I/O
//!   ([`VmaFile::map_pages`], Linux `do_fault_around`: up to
//!   [`fault_around_bytes`] (64 KiB unless set; a page turns it off, as
//!   Linux's `should_fault_around` does) from the aligned start below the fault,
//!   or from the VMA's start if that is later, within the VMA and the pte
//!   table, only into none ptes). A write to a private mapping copies the
//!   file's page into a new anonymous page (Linux `do_cow_fault`); a write
//!   to a shared one has the file ready the page and mark it dirty
//!   ([`VmaFile::page_mkwrite`]) and maps it writable and dirty (Linux
//!   `do_shared_fault`). A page wholly past the end of the file, or a
//!   failed read, is [`FaultError::SigBus`].
//! - present, write to a read-only pte of a writable VMA (Linux
//!   `do_wp_page`): in a shared file mapping, the file's
//!   [`VmaFile::page_mkwrite`] and then the pte made writable and dirty
//!   (Linux `wp_page_shared`); in a private mapping, copy-on-write: the zero page is replaced
//!   by a zeroed page, an anonymous page only we hold (refcount 1) is
//!   reused in place, anything else, a file's page always (Linux checks
//!   `folio_test_anon`), is copied.
//!
//! Shared file mappings track dirtiness through their ptes, as Linux's do
//! when `vma_wants_writenotify`: a pte is writable only once
//! `page_mkwrite` has seen the page, so every pte that is writable is
//! dirty or about to be. A pte found dirty when it is zapped (munmap,
//! exit, `MADV_DONTNEED`), or cleaned by msync (`mkclean_range`:
//! write-protected and cleaned, so the next write goes through
//! `page_mkwrite` again), hands its dirtiness to the file with
//! [`VmaFile::set_page_dirty`] (Linux `zap_pte_range`'s and
//! `page_mkclean_one`'s `folio_mark_dirty`).
//! mprotect gives write back only to dirty ptes of such mappings (Linux
//! `can_change_pte_writable`), and fork gives the child their ptes
//! read-only and clean.
//!
//! Counters ([`crate::vmstat`]): every fault that gets past the VMA and
//! access checks counts `pgfault`; a fault whose file page took I/O
//! ([`FaultPage::major`](crate::vma::FaultPage)) counts `pgmajfault`; a
//! write fault that makes the present page writable in place counts
//! `pgreuse`. Mapped pages count in `nr_anon_pages` and `nr_mapped`
//! through [`crate::rmap`], and in the address space's RSS as
//! [`MmCounter::AnonPages`], [`MmCounter::ShmemPages`] (a file page that
//! is `PG_swapbacked`) or [`MmCounter::FilePages`] (Linux `mm_counter`).
//!
//! Pages unmapped by zapping wait in the [`TlbGather`] until its TLB flush
//! and are put only then (Linux's `mmu_gather` page batch), so no CPU can
//! still write a page that was freed; a copy-on-write fault puts the old
//! page after flushing its one pte. A file keeps its own reference on its
//! cached pages, so putting the mapping's reference leaves the page in the
//! cache.
//!
//! Locking: the caller holds the mmap lock, for reading in
//! [`MmStruct::handle_mm_fault`], [`MmStruct::pte_state`],
//! [`MmStruct::follow_pte`], `mkclean_range`,
//! [`MmStruct::folio_mkclean_one`] and [`MmStruct::unmap_mapping_pages`],
//! for writing everywhere else (`&mut self`). Those under the read lock
//! change ptes only under [`page_table_lock`](MmStruct::page_table_lock),
//! after checking the pte is the one they decided on; a fault that finds
//! its pte changed there (by writeback's clean or truncation's unmap,
//! which Linux runs under the page-table lock alone too) gives up and is
//! retried. Everything else that clears or re-protects ptes holds the
//! write lock, so a fault never races munmap, exit or `mprotect`.
//! Lock order: mmap lock -> the file's locks ([`VmaFile`]; never called
//! with the page-table lock held) or a swap-cache page's lock
//! (`do_swap_page`) -> page-table lock -> page allocator locks.
//!
//! Differences from Linux:
//! - No file reverse map (`i_mmap`) yet: [`MmStruct::folio_mkclean_one`]
//!   and [`MmStruct::unmap_mapping_pages`] find a cache's pages through
//!   this address space's VMAs, and the kernel runs them over every
//!   address space (writeback only those whose mmap lock it gets without
//!   waiting: a pte it skips stays writable, and its dirty bit reaches the
//!   page when it is zapped or msync'ed). Fork gives the child's copies of
//!   shared file ptes no write, so that the child's first write goes
//!   through `page_mkwrite` (Linux keeps them writable and relies on
//!   `folio_mkclean`).
//! - The file's page is not locked across the fault: `fault` returns it
//!   unlocked, `page_mkwrite` does its own locking and marks the page
//!   dirty itself before the pte is installed (Linux holds the folio lock
//!   from `do_page_mkwrite` to `fault_dirty_shared_page`). A private
//!   copy may therefore see a `write(2)` to the page half done, as it may
//!   a store through another process's shared mapping in Linux too.
//! - Fork copies the ptes of every VMA (Linux's `vma_needs_copy` skips
//!   VMAs without an `anon_vma` and lets the child refault them).
//! - A private write fault makes its VMA's `anon_vma` up front, before
//!   it knows whether it will map a new page (Linux calls
//!   `anon_vma_prepare` in each of the three places that do).
//! - A dirty pte's dirtiness reaches the file at the zap, before the TLB
//!   flush (Linux delays the rmap removal past the flush only for
//!   `folio_mkclean`'s sake, which we do not have); msync flushes first.
//! - A swap fault sleeps for its page's lock (its read in flight, or
//!   reclaim's hold) with the mmap lock held for reading (Linux's
//!   `folio_lock_or_retry` drops the mmap lock, waits and retries the
//!   fault); the reverse-map walks only try mmap locks, so they cannot
//!   wait on the faulting task while holding the page lock.

use core::ops::ControlFlow;
use core::sync::atomic::{AtomicU64, Ordering};

use log::error;
use uapi::errno::Errno;

use crate::addr::{PAGE_SIZE, Pfn, VirtAddr};
use crate::filemap::{folio_lock, folio_unlock};
use crate::gfp::{GFP_HIGHUSER_MOVABLE, Gfp};
use crate::highmem;
use crate::mmap::{MmCounter, MmStruct};
use crate::page_flags::PageFlags;
use crate::pgtable::{Entry, Leaf, Level, PTRS_PER_TABLE, PageSize, PgProt, PteFormat, TlbGather};
use crate::rmap::{self, AnonVmaPtr};
use crate::swap_state;
use crate::swapops::{is_migration_entry, is_poisoned_swp_entry, make_poisoned_swp_entry, migration_entry_to_pfn};
use crate::uaddr::{UserAddr, UserRange};
use crate::vma::{FileFaultError, Vma, VmaAlloc, VmaDesc, VmaFile, VmaFlags};
use crate::vmscan;
use crate::vmstat::VmEventItem;

/// The RSS counter a mapped page counts in (Linux `mm_counter`):
/// anonymous, or a file's page, shmem's if `PG_swapbacked` (Linux
/// `mm_counter_file`).
pub(crate) fn mm_counter(page: &crate::page::Page) -> MmCounter {
    if rmap::page_anon(page) {
        MmCounter::AnonPages
    } else if page.test(crate::page_flags::PageFlags::SWAPBACKED) {
        MmCounter::ShmemPages
    } else {
        MmCounter::FilePages
    }
}

/// What a faulting access was (Linux `FAULT_FLAG_*` and the x86 error code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultAccess {
    /// A write.
    pub write: bool,
    /// An instruction fetch.
    pub exec: bool,
}

/// Why a fault could not be resolved (Linux `VM_FAULT_SIGSEGV` with its
/// `si_code`, `VM_FAULT_OOM`, `VM_FAULT_SIGBUS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// No VMA covers the address (`SEGV_MAPERR`).
    MapErr,
    /// The VMA forbids the access (`SEGV_ACCERR`).
    AccErr,
    /// No memory for a page or a page table.
    Oom,
    /// The address is in the gap below a stack VMA, which must grow: a
    /// step that needs the mmap lock for writing (see
    /// [`MmStruct::handle_mm_fault`]). Never the final outcome of a fault.
    ExpandStack,
    /// The pte is a migration entry: the page at this frame is locked
    /// while it moves. The caller drops the mmap lock, waits for the page
    /// to be unlocked ([`folio_wait_locked`](crate::filemap::folio_wait_locked))
    /// and faults again (Linux `VM_FAULT_RETRY` under
    /// `FAULT_FLAG_ALLOW_RETRY`, what a fault that must wait for a locked
    /// folio returns; Linux's `migration_entry_wait` waits with the lock
    /// held, we let writers in meanwhile). Never the final outcome.
    Retry(Pfn),
    /// The file cannot give the page: it is wholly past the end of the
    /// file, or reading or readying it failed (Linux `VM_FAULT_SIGBUS`:
    /// `SIGBUS` with `BUS_ADRERR` for a user access, `EFAULT` for the
    /// kernel's).
    SigBus,
}

impl From<FileFaultError> for FaultError {
    fn from(e: FileFaultError) -> Self {
        match e {
            FileFaultError::Eof | FileFaultError::Io => FaultError::SigBus,
            FileFaultError::NoMemory => FaultError::Oom,
        }
    }
}

/// What a pte tells mincore about its page.
pub(crate) enum PteState {
    /// Resident: a present or protnone pte, or a migration entry.
    Resident,
    /// No pte: the file's cache decides, if the VMA maps one.
    None,
    /// Another swap entry (none exist until swap).
    Other,
}

/// Pages mapped around a read fault of a file page by default, if the
/// file has them cached (Linux `fault_around_bytes`' default, 64 KiB, in
/// pages): a power of two, the window's alignment.
pub const FAULT_AROUND_PAGES: u64 = 16;

/// Bytes mapped around a read fault (Linux `fault_around_bytes`, set
/// through its debugfs file): a power of two from a page (no fault-around)
/// to a pte table's reach. One value for the machine, as in Linux.
#[doc(alias = "fault_around_bytes")]
static FAULT_AROUND_BYTES: AtomicU64 = AtomicU64::new(FAULT_AROUND_PAGES * PAGE_SIZE);

/// The bytes fault-around maps now (Linux `fault_around_bytes_get`).
pub fn fault_around_bytes() -> u64 {
    FAULT_AROUND_BYTES.load(Ordering::Relaxed)
}

/// Sets the bytes fault-around maps (Linux `fault_around_bytes_set`):
/// `EINVAL` past a pte table's reach, else rounded down to a power of two
/// and at least a page, which turns fault-around off.
pub fn set_fault_around_bytes(val: u64) -> Result<(), Errno> {
    FAULT_AROUND_BYTES.store(fault_around_bytes_round(val)?, Ordering::Relaxed);
    Ok(())
}

/// What [`set_fault_around_bytes`] stores for `val`.
fn fault_around_bytes_round(val: u64) -> Result<u64, Errno> {
    if val / PAGE_SIZE > PTRS_PER_TABLE as u64 {
        return Err(Errno::EINVAL);
    }
    // Linux `rounddown_pow_of_two`, whose 0 is undefined: a page then.
    Ok(if val > PAGE_SIZE { 1 << val.ilog2() } else { PAGE_SIZE })
}

/// The pte protection for a VMA's flags (Linux `vm_get_page_prot`):
/// readable implied, write and exec as the flags say, `PROT_NONE` as
/// [`PgProt::PROTNONE`]. Private writable mappings are mapped read-only
/// until written (copy-on-write) by the fault code, not here.
pub fn vm_get_page_prot(flags: VmaFlags) -> PgProt {
    let mut prot = PgProt::USER | PgProt::ACCESSED;
    if !flags.intersects(VmaFlags::READ | VmaFlags::WRITE | VmaFlags::EXEC) {
        return prot | PgProt::PROTNONE;
    }
    if flags.contains(VmaFlags::WRITE) {
        prot |= PgProt::WRITE;
    }
    if flags.contains(VmaFlags::EXEC) {
        prot |= PgProt::EXEC;
    }
    prot
}

/// Linux `linear_page_index`: the page index of `addr` in `vma`'s object.
fn linear_page_index(vma: &Vma, addr: u64) -> u64 {
    vma.pgoff() + ((addr - vma.start().as_u64()) >> crate::PAGE_SHIFT)
}

/// [`linear_page_index`] of a VMA's description.
fn linear_page_index_desc(vma: &VmaDesc, addr: u64) -> u64 {
    vma.pgoff + ((addr - vma.start.as_u64()) >> crate::PAGE_SHIFT)
}

impl<'a, F: PteFormat, A: VmaAlloc> MmStruct<'a, F, A> {
    fn leaf(&self, raw: u64) -> Option<Leaf> {
        match self.pgd.format().decode(raw, Level::Pte) {
            Entry::Leaf(leaf) => Some(leaf),
            _ => None,
        }
    }

    fn encode(&self, pfn: Pfn, prot: PgProt) -> u64 {
        self.pgd.format().encode_leaf(Leaf { phys: pfn.phys(), prot, size: PageSize::Size4K })
    }

    fn new_user_page(&self, gfp: Gfp) -> Result<Pfn, FaultError> {
        self.pgd.pgdat().alloc_pages(GFP_HIGHUSER_MOVABLE | gfp, 0).ok_or(FaultError::Oom)
    }

    /// Resolves a fault at `addr` (Linux `handle_mm_fault` with the VMA
    /// lookup and access checks of x86's `do_user_addr_fault`) under a
    /// read hold of the mmap lock: faults on one address space run
    /// concurrently, and each installs its pte under
    /// [`page_table_lock`](MmStruct::page_table_lock) only if the pte it
    /// decided on is still there (Linux `pte_same`); a fault that lost the
    /// race drops what it prepared and returns `Ok`, its access now
    /// resolved by the winner (or faulting again, harmlessly).
    ///
    /// An address in the gap just below a stack VMA needs the VMA to grow,
    /// which changes the tree: that returns [`FaultError::ExpandStack`],
    /// and the caller retakes the lock for writing, calls
    /// [`expand_stack_for_fault`](Self::expand_stack_for_fault) and
    /// retries (Linux `lock_mm_and_find_vma`'s upgrade).
    pub fn handle_mm_fault(&self, addr: VirtAddr, access: FaultAccess) -> Result<(), FaultError> {
        // No VMA lies outside user space.
        let page = UserAddr::page_down(addr.as_u64()).ok_or(FaultError::MapErr)?;
        let addr = page.as_u64();
        let vma = match self.vmas.find_vma(page.virt()) {
            Some(v) if v.start().as_u64() <= addr => v,
            Some(v) if v.flags().contains(VmaFlags::GROWSDOWN) => return Err(FaultError::ExpandStack),
            _ => return Err(FaultError::MapErr),
        };
        let flags = vma.flags();
        let allowed = if access.write {
            flags.contains(VmaFlags::WRITE)
        } else if access.exec {
            flags.contains(VmaFlags::EXEC)
        } else {
            flags.intersects(VmaFlags::READ | VmaFlags::WRITE | VmaFlags::EXEC)
        };
        if !allowed {
            return Err(FaultError::AccErr);
        }
        // Where Linux's arch code hands the fault to `handle_mm_fault`.
        self.pgd.pgdat().count_vm_event(VmEventItem::Pgfault);
        let desc = vma.desc();
        let index = linear_page_index(vma, addr);
        // A private write may map a new anonymous page: its VMA needs an
        // `anon_vma` first (Linux `anon_vma_prepare` in
        // `do_anonymous_page`, `do_cow_fault` and `wp_page_copy`; made here
        // once for all three, a no-op once the VMA has one).
        let anon = if access.write && !flags.contains(VmaFlags::SHARED) {
            Some(self.vmas.anon_vma_prepare(vma).map_err(|_| FaultError::Oom)?)
        } else {
            None
        };
        let slot = self.pgd.pte_offset(page.virt(), true).map_err(|_| FaultError::Oom)?;
        let Some(slot) = slot else { return Err(FaultError::Oom) };
        let raw = slot.load(Ordering::Acquire);
        if let Entry::Swap(entry) = self.pgd.format().decode(raw, Level::Pte) {
            if let Some(pfn) = migration_entry_to_pfn(entry) {
                return Err(FaultError::Retry(pfn));
            }
            // Its data was lost (swapoff could not read it back): Linux's
            // `handle_pte_marker` answers `VM_FAULT_HWPOISON`, a SIGBUS.
            if is_poisoned_swp_entry(entry) {
                return Err(FaultError::SigBus);
            }
            // A swapped-out anonymous page's VMA has its `anon_vma`.
            let anon = self.vmas.anon_vma_prepare(vma).map_err(|_| FaultError::Oom)?;
            return self.do_swap_page(slot, raw, entry, vma, anon, index, addr, access.write);
        }
        match self.leaf(raw) {
            None => self.do_pte_missing(slot, &desc, index, addr, access.write, anon),
            Some(leaf) if leaf.prot.contains(PgProt::PROTNONE) => Err(FaultError::AccErr),
            Some(leaf) if access.write && !leaf.prot.contains(PgProt::WRITE) => {
                self.do_wp_page(slot, raw, leaf, &desc, index, addr, anon)
            }
            // Spurious: another path already fixed it (Linux
            // `flush_tlb_fix_spurious_fault`); the stale TLB entry goes.
            Some(_) => {
                self.flush_one(addr);
                Ok(())
            }
        }
    }

    /// Grows the stack VMA above `addr` down to its page (Linux
    /// `expand_stack_locked`), the write-locked step of a fault that
    /// returned [`FaultError::ExpandStack`]. Nothing to do if the VMA
    /// already covers it (another fault grew it meanwhile).
    pub fn expand_stack_for_fault(&mut self, addr: VirtAddr) -> Result<(), FaultError> {
        let page = UserAddr::page_down(addr.as_u64()).ok_or(FaultError::MapErr)?;
        match self.vmas.find_vma(page.virt()) {
            Some(v) if v.start() <= page.virt() => Ok(()),
            Some(v) if v.flags().contains(VmaFlags::GROWSDOWN) => {
                let start = v.start();
                self.expand_stack(start, page)
            }
            _ => Err(FaultError::MapErr),
        }
    }

    /// [`handle_mm_fault`](Self::handle_mm_fault) for a caller holding the
    /// mmap lock for writing: grows a stack when the fault needs it.
    pub fn handle_mm_fault_exclusive(&mut self, addr: VirtAddr, access: FaultAccess) -> Result<(), FaultError> {
        match self.handle_mm_fault(addr, access) {
            Err(FaultError::ExpandStack) => {
                self.expand_stack_for_fault(addr)?;
                self.handle_mm_fault(addr, access)
            }
            r => r,
        }
    }

    /// A fault on a none pte (Linux `do_pte_missing`): anonymous memory or
    /// a file's page, as the module documentation says. `anon` is the
    /// VMA's `anon_vma` for a private write, else `None`.
    fn do_pte_missing(
        &self,
        slot: &AtomicU64,
        desc: &VmaDesc,
        index: u64,
        addr: u64,
        write: bool,
        anon: Option<AnonVmaPtr>,
    ) -> Result<(), FaultError> {
        match desc.file {
            None => self.do_anonymous_page(slot, desc.flags, index, anon),
            Some(file) if !write => self.do_read_fault(slot, desc, file, index, addr),
            Some(file) if !desc.flags.contains(VmaFlags::SHARED) => {
                self.do_cow_fault(slot, desc.flags, file, index, anon.ok_or(FaultError::Oom)?)
            }
            Some(file) => self.do_shared_fault(slot, desc.flags, file, index),
        }
    }

    /// A fault on a none pte of anonymous memory, which is private (shared
    /// anonymous memory is a shmem file's, see [`crate::shmem`]) (Linux
    /// `do_anonymous_page`): the zero page for a read, else a new zeroed
    /// page.
    fn do_anonymous_page(
        &self,
        slot: &AtomicU64,
        flags: VmaFlags,
        index: u64,
        anon: Option<AnonVmaPtr>,
    ) -> Result<(), FaultError> {
        let prot = vm_get_page_prot(flags);
        let Some(anon) = anon else {
            // The zero page: nothing to undo if another fault was first.
            let _ptl = self.page_table_lock.lock();
            if slot.load(Ordering::Acquire) == 0 {
                slot.store(self.encode(self.zero_pfn, prot - PgProt::WRITE), Ordering::Release);
            }
            return Ok(());
        };
        let pfn = self.new_user_page(Gfp::ZERO)?;
        self.map_new_anon_page(slot, pfn, flags, anon, index)
    }

    /// A fault on a pte holding the swap entry `entry` (Linux
    /// `do_swap_page`): the page from the swap cache
    /// ([`swap_state::swap_cache_get_folio`], a readahead hit counted), or
    /// read through readahead ([`MmStruct::swapin_readahead`], a major
    /// fault), with a reference. The page is locked, which waits for its
    /// read, and must still be the swap cache's for `entry` (reclaim or
    /// swapoff may have taken it out meanwhile: the fault is retried);
    /// under the page-table lock, if the pte still holds the entry, a page
    /// whose read failed is `SIGBUS` (logged; Linux `VM_FAULT_SIGBUS`),
    /// else it is mapped in place of the entry and the pte's count on the
    /// slot goes. Once no pte holds the slot, the page leaves the swap
    /// cache and the slot is freed (Linux `should_try_to_free_swap` and
    /// `folio_free_swap`) if swap is more than half full
    /// ([`swap_state::vm_swap_full`]), the page is locked in memory, its
    /// slot's write failed, or this is a write fault on a page only the
    /// pte and the cache hold, and not while it is under writeback: the
    /// page is plain anonymous memory again, mapped writable. Otherwise it
    /// stays in the swap cache with its slot, mapped read-only, so that
    /// reclaim can drop it again without a write; a write fault then
    /// frees the slot ([`MmStruct::do_wp_page`]). The pte of a failed read
    /// keeps its entry and its count on the slot.
    #[allow(clippy::too_many_arguments, reason = "the fault's state, as Linux's `struct vm_fault` carries it")]
    fn do_swap_page(
        &self,
        slot: &AtomicU64,
        raw: u64,
        entry: crate::swapops::SwpEntry,
        vma: &Vma,
        anon: AnonVmaPtr,
        index: u64,
        addr: u64,
        write: bool,
    ) -> Result<(), FaultError> {
        let pgdat = self.pgd.pgdat();
        let flags = vma.flags();
        let Some(backend) = pgdat.swap_backend() else {
            error!("fault at {addr:#x}: swap pte {raw:#x} and no swap areas");
            return Err(FaultError::SigBus);
        };
        // Our reference on the page.
        let pfn = match swap_state::swap_cache_get_folio(pgdat, backend, entry) {
            Some(pfn) => {
                if let Some(page) = pgdat.pfn_to_page(pfn) {
                    swap_state::readahead::swap_update_readahead(pgdat, page, Some((vma, addr)));
                }
                pfn
            }
            None => match self.swapin_readahead(backend, entry, vma, addr, GFP_HIGHUSER_MOVABLE) {
                Ok(pfn) => {
                    // Linux: "Had to read the page from swap area: Major
                    // fault".
                    pgdat.count_major_fault();
                    pfn
                }
                // Someone else is bringing the page in: go round again.
                Err(swap_state::SwapinError::Raced) => return Ok(()),
                Err(e) => {
                    // Linux backs out if another fault changed the pte
                    // meanwhile; else the fault has no memory.
                    let _ptl = self.page_table_lock.lock();
                    if slot.load(Ordering::Acquire) != raw {
                        return Ok(());
                    }
                    error!("fault at {addr:#x}: swap-in of {entry:?} failed: {e:?}");
                    return Err(FaultError::Oom);
                }
            },
        };
        let page = pgdat.pfn_to_page(pfn).ok_or(FaultError::Oom)?;
        let waits = backend.folio_waits();
        folio_lock(page, pfn, waits);
        // Drops the lock and our reference: the page went into no pte.
        let release = || {
            folio_unlock(page, pfn, waits);
            // SAFETY: our reference; the page is in no pte of ours.
            unsafe { self.put_page(pfn) };
        };
        if !swap_state::folio_matches_swap_entry(page, entry) {
            // Reclaim or swapoff took it out of the swap cache while we
            // waited: go round again.
            release();
            return Ok(());
        }
        let ptl = self.page_table_lock.lock();
        if slot.load(Ordering::Acquire) != raw {
            drop(ptl);
            release();
            return Ok(());
        }
        if !page.test(PageFlags::UPTODATE) {
            drop(ptl);
            release();
            error!("fault at {addr:#x}: swap-in of {entry:?} failed: read error");
            return Err(FaultError::SigBus);
        }
        if page.mapping() == 0 {
            // A page other ptes still name (the slot's count is more than
            // ours: fork shared it) may be mapped by them later, in other
            // address spaces of the hierarchy: it names the root
            // `anon_vma`, which all of them link (Linux `__folio_set_anon`
            // when not exclusive); a page only this pte names, the VMA's own.
            let av = if backend.swap_count(entry) > 1 { rmap::anon_vma_root(self.vmas.alloc(), anon) } else { anon };
            rmap::page_add_new_anon_rmap(pgdat, page, av, index);
        } else {
            rmap::page_dup_rmap(pgdat, page);
        }
        // The swap cache put the page on the LRU when it read it.
        if flags.contains(VmaFlags::LOCKED) {
            pgdat.mlock_folio(pfn);
        }
        self.add_rss(MmCounter::AnonPages, 1);
        self.add_rss(MmCounter::SwapEnts, -1);
        backend.free_swap_and_cache(entry);
        // Linux `should_try_to_free_swap`: once no pte holds the slot, the
        // page leaves the swap cache and frees it if swap is more than half
        // full, the page is locked in memory, or a write fault finds it
        // held only by this pte and the cache; otherwise the slot keeps
        // the data and the page is mapped read-only, so that reclaim
        // sends it back without a write unless it is written first (the
        // write fault frees the slot then, `do_wp_page`).
        // (A slot whose write failed holds nothing good: it goes too.)
        let should_free = swap_state::vm_swap_full(backend)
            || swap_state::folio_swap_write_failed(page)
            || flags.contains(VmaFlags::LOCKED)
            || page.test(PageFlags::MLOCKED)
            || (write && page.refcount() == 2);
        let exclusive = should_free
            && backend.swap_count(entry) == 0
            && page.mapcount() == 1
            && !page.test(PageFlags::WRITEBACK)
            && swap_state::delete_from_swap_cache(pgdat, backend, pfn, page);
        if exclusive {
            // The swap cache's reference goes; the pte's is ours.
            let last = page.put_testzero();
            debug_assert!(!last, "the swap cache held the last reference of a mapped page");
        }
        let prot =
            if exclusive { vm_get_page_prot(flags) | PgProt::DIRTY } else { vm_get_page_prot(flags) - PgProt::WRITE };
        // Our reference becomes the pte's.
        slot.store(self.encode(pfn, prot), Ordering::Release);
        drop(ptl);
        folio_unlock(page, pfn, waits);
        Ok(())
    }

    /// Maps `pfn`, a page this fault allocated and filled, into the none
    /// pte `slot` of a VMA with `flags`, writable and dirty, as a new
    /// anonymous page (Linux `set_pte_range` with
    /// `folio_add_new_anon_rmap` and `folio_add_lru_vma`). If another
    /// fault filled the pte first, the page is freed instead.
    fn map_new_anon_page(
        &self,
        slot: &AtomicU64,
        pfn: Pfn,
        flags: VmaFlags,
        anon: AnonVmaPtr,
        index: u64,
    ) -> Result<(), FaultError> {
        let pgdat = self.pgd.pgdat();
        let Some(page) = pgdat.pfn_to_page(pfn) else {
            // SAFETY: this fault allocated the page and never mapped it.
            unsafe { self.put_page(pfn) };
            return Err(FaultError::Oom);
        };
        self.set_pte_if_none(slot, pfn, vm_get_page_prot(flags) | PgProt::DIRTY, || {
            rmap::page_add_new_anon_rmap(pgdat, page, anon, index);
            pgdat.folio_add_lru_vma(pfn, flags.contains(VmaFlags::LOCKED));
            self.add_rss(MmCounter::AnonPages, 1);
        });
        Ok(())
    }

    /// Stores `pfn` with `prot` in the pte `slot` if it is still none,
    /// `account`ing the new mapping (rmap, RSS) under the page-table lock;
    /// if another fault filled it first (Linux's `pte_none` recheck under
    /// the pte lock), puts the reference the caller holds for the pte
    /// instead, ours never having been visible.
    fn set_pte_if_none(&self, slot: &AtomicU64, pfn: Pfn, prot: PgProt, account: impl FnOnce()) {
        let ptl = self.page_table_lock.lock();
        if slot.load(Ordering::Acquire) != 0 {
            drop(ptl);
            // SAFETY: the caller's reference to a page this fault never
            // mapped: if it is the last (a file dropped its page
            // meanwhile), nothing maps the page.
            unsafe { self.put_page(pfn) };
            return;
        }
        account();
        slot.store(self.encode(pfn, prot), Ordering::Release);
    }

    /// Maps the file page `pfn` at `index`, whose reference the caller
    /// hands over, into the pte `slot` of a VMA with `flags`, with `prot`,
    /// if it is still none (Linux `finish_fault` -> `set_pte_range` with
    /// `folio_add_file_rmap_ptes`, which mlocks the page in a locked VMA);
    /// else puts the reference. A frame outside the memory map is the
    /// file's bug: logged, and the access fails with `SIGBUS`.
    fn finish_fault(
        &self,
        slot: &AtomicU64,
        pfn: Pfn,
        prot: PgProt,
        flags: VmaFlags,
        index: u64,
    ) -> Result<(), FaultError> {
        let pgdat = self.pgd.pgdat();
        let Some(page) = pgdat.pfn_to_page(pfn) else {
            error!("file fault: page {index} is pfn {:#x}, outside the memory map", pfn.as_u64());
            return Err(FaultError::SigBus);
        };
        self.set_pte_if_none(slot, pfn, prot, || {
            rmap::page_add_file_rmap(pgdat, page, index);
            if flags.contains(VmaFlags::LOCKED) {
                pgdat.mlock_folio(pfn);
            }
            self.add_rss(mm_counter(page), 1);
        });
        Ok(())
    }

    /// The file's page at `index`, counting a major fault (Linux
    /// `__do_fault`; `filemap_fault` counts `pgmajfault` when it reads).
    fn file_fault(&self, file: &dyn VmaFile, flags: VmaFlags, index: u64) -> Result<Pfn, FaultError> {
        let pgdat = self.pgd.pgdat();
        let page = file.fault(pgdat, index, flags.ra_advice())?;
        if page.major {
            pgdat.count_major_fault();
        }
        Ok(page.pfn)
    }

    /// A read fault on a none pte of a file VMA, private or shared (Linux
    /// `do_read_fault`): the cached pages around it first, then, unless
    /// that mapped it, the file's page, read-only.
    fn do_read_fault(
        &self,
        slot: &AtomicU64,
        desc: &VmaDesc,
        file: &dyn VmaFile,
        index: u64,
        addr: u64,
    ) -> Result<(), FaultError> {
        let prot = vm_get_page_prot(desc.flags) - PgProt::WRITE;
        // Linux `should_fault_around`: more than one page. `VM_RAND_READ`
        // does not turn it off (Linux 6.1 reads the advice only for
        // readahead).
        let nr_pages = fault_around_bytes() / PAGE_SIZE;
        if nr_pages > 1 {
            self.do_fault_around(desc, file, index, addr, prot, nr_pages);
            // Linux's `VM_FAULT_NOPAGE` from `filemap_map_pages`.
            if slot.load(Ordering::Acquire) != 0 {
                return Ok(());
            }
        }
        let pfn = self.file_fault(file, desc.flags, index)?;
        self.finish_fault(slot, pfn, prot, desc.flags, index)
    }

    /// Maps read-only, into none ptes, the pages the file has cached in
    /// the window around the fault at `addr` (Linux `do_fault_around`'s,
    /// filled by `filemap_map_pages`): `nr_pages` (a power of two) from
    /// the aligned start below the fault or from the VMA's start if that
    /// is later, clipped to the VMA's end and the pte table's.
    fn do_fault_around(&self, desc: &VmaDesc, file: &dyn VmaFile, index: u64, addr: u64, prot: PgProt, nr_pages: u64) {
        let Some(table) = UserAddr::page_down(addr).and_then(|a| self.pgd.pte_table(a.virt(), false).ok().flatten())
        else {
            return;
        };
        let pte_off = Level::Pte.index(addr) as u64;
        let vma_off = (addr - desc.start.as_u64()) >> crate::PAGE_SHIFT;
        let vma_pages = (desc.end.as_u64() - desc.start.as_u64()) >> crate::PAGE_SHIFT;
        // Window slots `[from, to)` of the table: aligned, not below the
        // VMA's start, not past the table or the VMA's end.
        let from = (pte_off & !(nr_pages - 1)).max(pte_off - pte_off.min(vma_off));
        let to = (from + nr_pages).min(PTRS_PER_TABLE as u64).min(pte_off + (vma_pages - vma_off));
        // `index - vma_off` is the VMA's pgoff, and the window lies in the
        // VMA, whose last index mmap checked fits (`file_mmap_ok`).
        let start = index - (pte_off - from);
        let end = index + (to - pte_off);
        file.map_pages(self.pgd.pgdat(), start, end, &mut |i, pfn| {
            let slot = if (start..end).contains(&i) { table.get((from + (i - start)) as usize) } else { None };
            match slot {
                Some(slot) => {
                    // An error is logged; the fault itself goes on.
                    let _ = self.finish_fault(slot, pfn, prot, desc.flags, i);
                }
                None => {
                    error!("fault-around: file gave page {i} outside [{start}, {end})");
                    // SAFETY: the reference the file handed over, never
                    // mapped.
                    unsafe { self.put_page(pfn) };
                }
            }
        });
    }

    /// A write fault on a none pte of a private file VMA (Linux
    /// `do_cow_fault`): a new anonymous page with a copy of the file's
    /// page, which stays as it was.
    fn do_cow_fault(
        &self,
        slot: &AtomicU64,
        flags: VmaFlags,
        file: &dyn VmaFile,
        index: u64,
        anon: AnonVmaPtr,
    ) -> Result<(), FaultError> {
        let pgdat = self.pgd.pgdat();
        let new = self.new_user_page(Gfp::empty())?;
        let cached = match self.file_fault(file, flags, index) {
            Ok(pfn) => pfn,
            Err(e) => {
                // SAFETY: this fault allocated the page and never mapped it.
                unsafe { self.put_page(new) };
                return Err(e);
            }
        };
        // SAFETY: distinct pages: `new` was just allocated and is mapped
        // nowhere; `cached` is the file's page, held by our reference,
        // which no kernel path writes without the file's locks except
        // through ptes of shared mappings (user stores, which may race the
        // copy as they do in Linux: see the module documentation).
        let copied = unsafe { highmem::copy_page(pgdat, new, cached) };
        // SAFETY: the reference `fault` handed over, never mapped.
        unsafe { self.put_page(cached) };
        if copied.is_err() {
            // SAFETY: this fault allocated the page and never mapped it.
            unsafe { self.put_page(new) };
            return Err(FaultError::Oom);
        }
        self.map_new_anon_page(slot, new, flags, anon, index)
    }

    /// A write fault on a none pte of a shared file VMA (Linux
    /// `do_shared_fault`): the file's page, readied and dirtied by
    /// [`VmaFile::page_mkwrite`], mapped writable and dirty.
    fn do_shared_fault(
        &self,
        slot: &AtomicU64,
        flags: VmaFlags,
        file: &dyn VmaFile,
        index: u64,
    ) -> Result<(), FaultError> {
        let pgdat = self.pgd.pgdat();
        let pfn = self.file_fault(file, flags, index)?;
        if let Err(e) = file.page_mkwrite(pgdat, index, pfn) {
            // SAFETY: the reference `fault` handed over, never mapped.
            unsafe { self.put_page(pfn) };
            return Err(e.into());
        }
        self.finish_fault(slot, pfn, vm_get_page_prot(flags) | PgProt::DIRTY, flags, index)
    }

    /// Drops a page reference the caller holds (Linux `folio_put`).
    ///
    /// # Safety
    /// As [`PgData::put_page`](crate::page_alloc::PgData::put_page): the
    /// caller owns the reference, and if it is the last, no pte or TLB
    /// entry maps the page and nothing uses it again.
    unsafe fn put_page(&self, pfn: Pfn) {
        // A bad page is reported by the allocator and leaked.
        // SAFETY: the caller's contract.
        let _ = unsafe { self.pgd.pgdat().put_page(pfn) };
    }

    /// Write to a present read-only pte of a writable VMA (Linux
    /// `do_wp_page`). `raw` is the pte the fault saw; every change is made
    /// under the page-table lock and only if the pte is still `raw`.
    #[allow(clippy::too_many_arguments, reason = "the fault's state, as Linux's `struct vm_fault` carries it")]
    fn do_wp_page(
        &self,
        slot: &AtomicU64,
        raw: u64,
        leaf: Leaf,
        desc: &VmaDesc,
        index: u64,
        addr: u64,
        anon: Option<AnonVmaPtr>,
    ) -> Result<(), FaultError> {
        let old = leaf.phys.pfn();
        let prot = vm_get_page_prot(desc.flags) | PgProt::DIRTY;
        if desc.flags.contains(VmaFlags::SHARED)
            && let Some(file) = desc.file
        {
            return self.wp_page_shared(slot, raw, old, file, prot, index, addr);
        }
        let pgdat = self.pgd.pgdat();
        // The page being replaced, with a reference of ours taken under
        // the lock while the pte still mapped it (Linux `folio_get` in
        // `do_wp_page`): a racing fault may unmap and put it while we copy.
        let mut old_page = None;
        if old != self.zero_pfn {
            let page = pgdat.pfn_to_page(old).ok_or(FaultError::Oom)?;
            let ptl = self.page_table_lock.lock();
            if slot.load(Ordering::Acquire) != raw {
                return Ok(());
            }
            // A private anonymous page only we hold (refcount 1) is reused
            // (Linux `wp_can_reuse_anon_folio`), never a file's page, which
            // a private mapping must not write. The refcount cannot rise
            // under us: fork takes the mmap lock for writing, and another
            // fault reaches the page only through this pte, under this lock.
            // A reference of this CPU's LRU batch is drained first; one in
            // another CPU's batch, or reclaim's, makes us copy, as in Linux.
            if rmap::page_anon(page)
                && page.refcount() > 1
                && page.refcount() <= 3
                && !page.test(crate::page_flags::PageFlags::LRU)
            {
                pgdat.lru_add_drain();
            }
            // A page the swap cache holds besides this pte gives its slot
            // up, the page being written (Linux `wp_can_reuse_anon_folio`
            // -> `folio_free_swap`); one whose lock is taken is copied.
            if rmap::page_anon(page)
                && page.refcount() == 2
                && page.test(PageFlags::SWAPCACHE)
                && let Some(backend) = pgdat.swap_backend()
                && crate::filemap::folio_trylock(page)
            {
                swap_state::folio_free_swap(pgdat, backend, old, page);
                crate::filemap::folio_unlock(page, old, backend.folio_waits());
            }
            if rmap::page_anon(page) && page.refcount() == 1 {
                slot.store(self.encode(old, prot), Ordering::Release);
                drop(ptl);
                self.flush_one(addr);
                pgdat.count_vm_event(VmEventItem::Pgreuse);
                return Ok(());
            }
            page.get();
            old_page = Some(page);
        }
        // Copy (Linux `wp_page_copy`).
        let result = match anon {
            Some(anon) => self.wp_page_copy(slot, raw, old, desc.flags, anon, index, addr),
            None => Err(FaultError::Oom),
        };
        if old_page.is_some() {
            // SAFETY: the reference taken above under the page-table lock.
            // If it is the last, the pte no longer maps the page: the copy
            // replaced it and flushed the translation first.
            unsafe { self.put_page(old) };
        }
        result
    }

    /// Write to a read-only pte of a shared file VMA (Linux
    /// `wp_page_shared`): the file readies and dirties the page
    /// ([`VmaFile::page_mkwrite`], called without the page-table lock and
    /// with a reference of ours on the page), then the pte, if it is still
    /// `raw`, becomes writable and dirty (Linux `finish_mkwrite_fault` ->
    /// `wp_page_reuse`).
    #[allow(clippy::too_many_arguments, reason = "the fault's state, as Linux's `struct vm_fault` carries it")]
    fn wp_page_shared(
        &self,
        slot: &AtomicU64,
        raw: u64,
        pfn: Pfn,
        file: &dyn VmaFile,
        prot: PgProt,
        index: u64,
        addr: u64,
    ) -> Result<(), FaultError> {
        let pgdat = self.pgd.pgdat();
        let page = pgdat.pfn_to_page(pfn).ok_or(FaultError::Oom)?;
        {
            let _ptl = self.page_table_lock.lock();
            if slot.load(Ordering::Acquire) != raw {
                return Ok(());
            }
            page.get();
        }
        let result = file.page_mkwrite(pgdat, index, pfn).map_err(FaultError::from);
        if result.is_ok() {
            let ptl = self.page_table_lock.lock();
            if slot.load(Ordering::Acquire) == raw {
                slot.store(self.encode(pfn, prot), Ordering::Release);
                drop(ptl);
                self.flush_one(addr);
                pgdat.count_vm_event(VmEventItem::Pgreuse);
            }
        }
        // SAFETY: the reference taken above under the page-table lock. If
        // it is the last, a zap took the pte meanwhile (truncation's
        // `unmap_mapping_pages` runs under the read lock) and its gather
        // has flushed and put the pte's own reference: nothing maps the
        // page any more.
        unsafe { self.put_page(pfn) };
        result
    }

    /// The copying half of [`do_wp_page`](Self::do_wp_page): a new page
    /// with `old`'s data (zeroed for the zero page) replaces it, writable
    /// and dirty, in the pte of a VMA with `flags` if the pte is still
    /// `raw`. The caller holds a reference on `old`.
    #[allow(clippy::too_many_arguments, reason = "the fault's state, as Linux's `struct vm_fault` carries it")]
    fn wp_page_copy(
        &self,
        slot: &AtomicU64,
        raw: u64,
        old: Pfn,
        flags: VmaFlags,
        anon: AnonVmaPtr,
        index: u64,
        addr: u64,
    ) -> Result<(), FaultError> {
        let pgdat = self.pgd.pgdat();
        let new = self.new_user_page(if old == self.zero_pfn { Gfp::ZERO } else { Gfp::empty() })?;
        let copied = if old == self.zero_pfn {
            Ok(())
        } else {
            // SAFETY: distinct pages, since `new` was just allocated; `new`
            // is mapped nowhere yet, and `old` cannot be freed while the
            // caller's reference holds it.
            unsafe { highmem::copy_page(pgdat, new, old) }.map_err(|_| FaultError::Oom)
        };
        let page = match copied.and_then(|()| pgdat.pfn_to_page(new).ok_or(FaultError::Oom)) {
            Ok(page) => page,
            Err(e) => {
                // SAFETY: this fault allocated the page and never mapped it.
                unsafe { self.put_page(new) };
                return Err(e);
            }
        };
        let ptl = self.page_table_lock.lock();
        if slot.load(Ordering::Acquire) != raw {
            drop(ptl);
            // SAFETY: this fault allocated the page and never mapped it.
            unsafe { self.put_page(new) };
            return Ok(());
        }
        rmap::page_add_new_anon_rmap(pgdat, page, anon, index);
        pgdat.folio_add_lru_vma(new, flags.contains(VmaFlags::LOCKED));
        self.add_rss(MmCounter::AnonPages, 1);
        slot.store(self.encode(new, vm_get_page_prot(flags) | PgProt::DIRTY), Ordering::Release);
        drop(ptl);
        // The old page loses this mapping only after no TLB can still
        // reach it through this pte.
        self.flush_one(addr);
        self.drop_mapped_page(old, flags);
        Ok(())
    }

    /// Flushes the translation of the page at `addr` from every CPU that
    /// may hold it (Linux `flush_tlb_page`: no gather, nothing to free after it).
    fn flush_one(&self, addr: u64) {
        if let Some(va) = VirtAddr::new(addr) {
            self.tlb.flush_tlb_mm_range(self.pgd.root(), va, PAGE_SIZE);
        }
    }

    /// Takes away one mapping of `pfn` (its pte is already cleared): rmap,
    /// RSS and the page reference (Linux `zap_present_ptes`' per-page part).
    /// Only for a pte whose flush is done; a zap hands the reference to its
    /// [`TlbGather`] instead ([`zap_mapped_page`](Self::zap_mapped_page)).
    fn drop_mapped_page(&self, pfn: Pfn, flags: VmaFlags) {
        if self.zap_rmap(pfn, flags) {
            // SAFETY: the reference of the cleared pte, whose translation
            // the caller flushed (this function's rule).
            unsafe { self.put_page(pfn) };
        }
    }

    /// `MADV_COLD` over `range` (Linux `madvise_cold_or_pageout_pte_range`
    /// for cold): each present page only this address space maps loses
    /// its pte's accessed bit and `PG_referenced` and moves to its
    /// inactive list (`folio_deactivate`), so reclaim takes it sooner.
    /// The accessed bit is cleared under the page-table lock without a
    /// flush, as Linux's `ptep_test_and_clear_young` does: a CPU that
    /// still caches the translation only makes the page look used later.
    pub(crate) fn madvise_cold(&self, range: UserRange) {
        let pgdat = self.pgd.pgdat();
        let fmt = self.pgd.format();
        let _ = self.pgd.try_for_each_pte(range.start().as_u64(), range.end().as_u64(), &mut |_, slot| {
            let _ptl = self.page_table_lock.lock();
            let raw = slot.load(Ordering::Acquire);
            if let Some(leaf) = self.leaf(raw)
                && leaf.phys.pfn() != self.zero_pfn
                && let Some(page) = pgdat.pfn_to_page(leaf.phys.pfn())
                && page.mapcount() == 1
            {
                if leaf.prot.contains(PgProt::ACCESSED) {
                    // Only the accessed bit goes: a dirty bit a CPU sets
                    // meanwhile is kept by the atomic and.
                    let young = fmt.encode_leaf(Leaf { prot: PgProt::ACCESSED, ..leaf })
                        & !fmt.encode_leaf(Leaf { prot: PgProt::empty(), ..leaf });
                    slot.fetch_and(!young, Ordering::AcqRel);
                }
                page.clear(crate::page_flags::PageFlags::REFERENCED);
                pgdat.folio_deactivate(leaf.phys.pfn());
            }
            ControlFlow::Continue(())
        });
    }

    /// `MADV_PAGEOUT` over `range` (Linux `madvise_cold_or_pageout_pte_range`
    /// for pageout, then `reclaim_pages`): each present page only this
    /// address space maps loses its pte's accessed bit and
    /// `PG_referenced` (an active one becomes `PG_workingset`) and is
    /// isolated from its list; each batch of [`SWAP_CLUSTER_MAX`] goes to
    /// [`vmscan::reclaim_pages`], which reclaims them whatever their
    /// references (anonymous pages to swap, clean file pages out of their
    /// cache), with the page-table walk's lock dropped. `owners` is the
    /// reclaim context, which must reach this address space's page tables
    /// while the caller holds its mmap lock for reading (the kernel's
    /// reverse-map walk tries it for reading).
    ///
    /// [`SWAP_CLUSTER_MAX`]: crate::vmscan::SWAP_CLUSTER_MAX
    pub(crate) fn madvise_pageout_range<O: vmscan::CacheOwners + ?Sized>(
        &self,
        range: UserRange,
        owners: &O,
        waits: &dyn crate::arch::FolioWaitTable,
    ) {
        let pgdat = self.pgd.pgdat();
        let fmt = self.pgd.format();
        // Pages still in an LRU batch are on no list to isolate them from
        // (Linux drains this CPU's; a fault may have run on another).
        pgdat.lru_add_drain_all();
        let (mut from, end) = (range.start().as_u64(), range.end().as_u64());
        while from < end {
            let mut batch = [Pfn::new(0); vmscan::SWAP_CLUSTER_MAX as usize];
            let (mut n, mut resume) = (0, end);
            let _ = self.pgd.try_for_each_pte(from, end, &mut |addr, slot| {
                if n == batch.len() {
                    resume = addr;
                    return ControlFlow::Break(());
                }
                let _ptl = self.page_table_lock.lock();
                let raw = slot.load(Ordering::Acquire);
                let Some(leaf) = self.leaf(raw) else { return ControlFlow::Continue(()) };
                let pfn = leaf.phys.pfn();
                let Some(page) = pgdat.pfn_to_page(pfn).filter(|p| pfn != self.zero_pfn && p.mapcount() == 1) else {
                    return ControlFlow::Continue(());
                };
                if leaf.prot.contains(PgProt::ACCESSED) {
                    let young = fmt.encode_leaf(Leaf { prot: PgProt::ACCESSED, ..leaf })
                        & !fmt.encode_leaf(Leaf { prot: PgProt::empty(), ..leaf });
                    slot.fetch_and(!young, Ordering::AcqRel);
                }
                page.clear(crate::page_flags::PageFlags::REFERENCED);
                if page.test(crate::page_flags::PageFlags::ACTIVE) {
                    page.set(crate::page_flags::PageFlags::WORKINGSET);
                }
                if pgdat.isolate_lru_folio(pfn) {
                    if page.test(crate::page_flags::PageFlags::UNEVICTABLE) {
                        pgdat.folio_putback_lru(pfn);
                    } else {
                        batch[n] = pfn;
                        n += 1;
                    }
                }
                ControlFlow::Continue(())
            });
            vmscan::reclaim_pages(pgdat, owners, waits, &batch[..n]);
            from = resume;
        }
    }

    /// `MADV_FREE` over `range`, in a private anonymous VMA (Linux
    /// `madvise_free_pte_range`): a swapped-out page's entry is dropped
    /// with its slot count ([`Self::zap_swap_pte`], Linux
    /// `free_swap_and_cache`; a poisoned entry is cleared too); a present
    /// page only this address space maps has its pte cleaned and made old
    /// (the translations flushed before returning, so that a later write
    /// dirties the pte again) and becomes lazily freeable
    /// ([`PgData::folio_mark_lazyfree`](crate::page_alloc::PgData)):
    /// reclaim drops it rather than swap it, unless it is written first.
    /// A page in the swap cache leaves it first if no pte holds its slot
    /// and it is not under writeback (Linux `folio_free_swap`), else it
    /// stays as it is; so does a page whose lock is taken. The caller
    /// holds the mmap lock for writing.
    pub(crate) fn madvise_free(&self, range: UserRange) {
        let pgdat = self.pgd.pgdat();
        let fmt = self.pgd.format();
        // Linux `madvise_free_single_vma`: pages of this CPU's LRU batch
        // reach their list first.
        pgdat.lru_add_drain();
        let mut cleaned = false;
        let _ = self.pgd.try_for_each_pte(range.start().as_u64(), range.end().as_u64(), &mut |_, slot| {
            let raw = slot.load(Ordering::Acquire);
            if !fmt.pte_present(raw) {
                self.zap_swap_pte(slot, raw);
                return ControlFlow::Continue(());
            }
            let _ptl = self.page_table_lock.lock();
            let raw = slot.load(Ordering::Acquire);
            let Some(leaf) = self.leaf(raw) else { return ControlFlow::Continue(()) };
            let pfn = leaf.phys.pfn();
            let Some(page) = pgdat.pfn_to_page(pfn) else { return ControlFlow::Continue(()) };
            // Linux skips a folio mapped elsewhere too
            // (`folio_likely_mapped_shared`).
            if pfn == self.zero_pfn || !rmap::page_anon(page) || page.mapcount() != 1 {
                return ControlFlow::Continue(());
            }
            let needs_lock =
                page.test(crate::page_flags::PageFlags::SWAPCACHE) || page.test(crate::page_flags::PageFlags::DIRTY);
            if needs_lock && !self.madvise_free_clean_folio(pfn, page) {
                return ControlFlow::Continue(());
            }
            if leaf.prot.intersects(PgProt::ACCESSED | PgProt::DIRTY) {
                let bits = fmt.encode_leaf(Leaf { prot: PgProt::ACCESSED | PgProt::DIRTY, ..leaf })
                    & !fmt.encode_leaf(Leaf { prot: PgProt::empty(), ..leaf });
                slot.fetch_and(!bits, Ordering::AcqRel);
                cleaned = true;
            }
            pgdat.folio_mark_lazyfree(pfn);
            ControlFlow::Continue(())
        });
        if cleaned && let Some(va) = VirtAddr::new(range.start().as_u64()) {
            self.tlb.flush_tlb_mm_range(self.pgd.root(), va, range.len());
        }
    }

    /// The locked half of [`Self::madvise_free`] for a page in the swap
    /// cache or dirty: under the page's lock (tried), the page leaves the
    /// swap cache if nothing needs it there (Linux `folio_free_swap`) and
    /// loses `PG_dirty`. False, changing nothing, if it must stay as it is.
    fn madvise_free_clean_folio(&self, pfn: Pfn, page: &crate::page::Page) -> bool {
        use crate::page_flags::PageFlags;
        let pgdat = self.pgd.pgdat();
        let Some(waits) = pgdat.folio_waits() else { return false };
        if !crate::filemap::folio_trylock(page) {
            return false;
        }
        let freed = match (swap_state::folio_swap_entry(page), pgdat.swap_backend()) {
            (None, _) => true,
            (Some(entry), Some(backend)) => {
                let unused = !page.test(PageFlags::WRITEBACK)
                    && backend.swap_count(entry) == 0
                    && swap_state::delete_from_swap_cache(pgdat, backend, pfn, page);
                if unused {
                    // The swap cache's reference; the pte's stays.
                    let last = page.put_testzero();
                    debug_assert!(!last, "the swap cache held the last reference of a mapped page");
                }
                unused
            }
            (Some(_), None) => false,
        };
        if freed {
            page.clear(PageFlags::DIRTY);
        }
        crate::filemap::folio_unlock(page, pfn, waits);
        freed
    }

    /// Brings back every page of this address space whose pte holds an
    /// entry of swap area `ty` (Linux `unuse_mm`, for swapoff's
    /// `try_to_unuse`), each through the fault path, for reading: the
    /// page comes from the swap cache or the slot, the pte's count on the
    /// slot goes. A page whose slot cannot be read is lost: its pte gets
    /// a poisoned entry, which is `SIGBUS` at the next touch, and the
    /// slot's count goes (Linux `unuse_pte` for a folio that is not
    /// uptodate). The caller holds the mmap lock for reading. Returns the
    /// pages brought back. A page in a VMA that allows no access (a
    /// `PROT_NONE` range swapped out before its mprotect) stays, and
    /// keeps its slot (Linux's `unuse_pte` ignores the protection).
    pub fn unuse_swap_area(&self, ty: u32) -> Result<u64, FaultError> {
        /// Addresses collected per walk of the page tables.
        const BATCH: usize = 64;
        let fmt = self.pgd.format();
        let mut done = 0;
        for vma in self.vmas.iter() {
            let (mut from, end) = (vma.start().as_u64(), vma.end().as_u64());
            while from < end {
                let mut found = [0u64; BATCH];
                let mut n = 0;
                let mut resume = end;
                self.pgd.for_each_pte(from, end, &mut |addr, slot| {
                    if n == BATCH {
                        resume = resume.min(addr);
                        return;
                    }
                    if let Entry::Swap(entry) = fmt.decode(slot.load(Ordering::Acquire), Level::Pte)
                        && swap_state::is_swap_entry(entry)
                        && entry.ty() == ty
                    {
                        found[n] = addr;
                        n += 1;
                    }
                });
                for &addr in &found[..n] {
                    let Some(va) = VirtAddr::new(addr) else { continue };
                    match self.handle_mm_fault(va, FaultAccess { write: false, exec: false }) {
                        Ok(()) => done += 1,
                        Err(FaultError::AccErr) => {}
                        Err(FaultError::SigBus) => self.poison_swap_pte(addr, ty),
                        Err(e) => return Err(e),
                    }
                }
                from = resume;
            }
        }
        Ok(done)
    }

    /// Replaces the swap entry of area `ty` in the pte at `addr`, whose
    /// slot could not be read, by a poisoned entry, and gives the slot
    /// its count back (Linux `unuse_pte` with `make_poisoned_swp_entry`).
    /// Logged, as the read error was.
    fn poison_swap_pte(&self, addr: u64, ty: u32) {
        let Some(slot) = VirtAddr::new(addr).and_then(|va| self.pgd.pte_offset(va, false).ok().flatten()) else {
            return;
        };
        let fmt = self.pgd.format();
        let ptl = self.page_table_lock.lock();
        let raw = slot.load(Ordering::Acquire);
        let Entry::Swap(entry) = fmt.decode(raw, Level::Pte) else { return };
        if !swap_state::is_swap_entry(entry) || entry.ty() != ty {
            return;
        }
        slot.store(fmt.encode_swp(make_poisoned_swp_entry()), Ordering::Release);
        drop(ptl);
        self.add_rss(MmCounter::SwapEnts, -1);
        if let Some(backend) = self.pgd.pgdat().swap_backend() {
            backend.free_swap_and_cache(entry);
            self.free_unused_swap_cache(backend, entry);
        }
        error!("swapoff: the page at {addr:#x} could not be read back from {entry:?}: poisoned (SIGBUS on access)");
    }

    /// Clears the non-present pte `slot` (read as `raw`) if it holds a
    /// swap entry, handing the slot's reference back (Linux
    /// `zap_nonpresent_ptes` -> `free_swap_and_cache`) and counting one
    /// swap entry fewer, or a poisoned entry; whether it did. Migration entries stay: their
    /// migration puts the page back. The caller holds the mmap lock for
    /// writing, or the page-table lock.
    fn zap_swap_pte(&self, slot: &AtomicU64, raw: u64) -> bool {
        let Entry::Swap(entry) = self.pgd.format().decode(raw, Level::Pte) else { return false };
        if is_poisoned_swp_entry(entry) {
            // Nothing behind it (Linux `zap_nonpresent_ptes` clears it).
            return slot.compare_exchange(raw, 0, Ordering::AcqRel, Ordering::Acquire).is_ok();
        }
        if !swap_state::is_swap_entry(entry)
            || slot.compare_exchange(raw, 0, Ordering::AcqRel, Ordering::Acquire).is_err()
        {
            return false;
        }
        match self.pgd.pgdat().swap_backend() {
            Some(backend) => {
                backend.free_swap_and_cache(entry);
                self.free_unused_swap_cache(backend, entry);
            }
            None => error!("zap: swap entry {entry:?} with no swap areas"),
        }
        self.add_rss(MmCounter::SwapEnts, -1);
        true
    }

    /// The cache half of Linux `free_swap_and_cache`: once no pte holds
    /// the slot, an unmapped page the swap cache keeps for it leaves the
    /// cache, which frees the slot, and is freed
    /// ([`swap_state::free_swap_cache`]). A locked or mapped page is left
    /// to reclaim, a write fault or swapoff.
    fn free_unused_swap_cache(&self, backend: &dyn swap_state::SwapBackend, entry: crate::swapops::SwpEntry) {
        let pgdat = self.pgd.pgdat();
        if backend.swap_count(entry) != 0 {
            return;
        }
        let Some(pfn) = backend.swap_cache_lookup(entry) else { return };
        if !pgdat.pfn_to_page(pfn).is_some_and(|p| p.try_get()) {
            return;
        }
        swap_state::free_swap_cache(pgdat, backend, pfn);
        // SAFETY: the reference taken above; the ptes that map the page,
        // if any, hold their own.
        unsafe { self.put_page(pfn) };
    }

    /// The rmap and RSS half of unmapping `pfn` from a VMA with `flags`
    /// (munlocking it if the VMA is locked, as Linux's
    /// `folio_remove_rmap_ptes` does); whether there is a page reference
    /// to put (not for the zero page or a frame outside the memory map).
    fn zap_rmap(&self, pfn: Pfn, flags: VmaFlags) -> bool {
        if pfn == self.zero_pfn {
            return false;
        }
        let pgdat = self.pgd.pgdat();
        let Some(page) = pgdat.pfn_to_page(pfn) else {
            error!("zap: pte maps pfn {:#x} outside the memory map", pfn.as_u64());
            return false;
        };
        self.add_rss(mm_counter(page), -1);
        if flags.contains(VmaFlags::LOCKED) {
            pgdat.munlock_folio(pfn);
        }
        rmap::page_remove_rmap(pgdat, page);
        true
    }

    /// Clears every pte of `range`, which lies in the VMA `vma`, and
    /// drops the pages (Linux `zap_page_range_single`/`unmap_page_range`):
    /// rmap and RSS at once, the page references through the gather, after
    /// the flush (Linux `zap_present_ptes` + `tlb_flush_mmu`). Flushes once
    /// per [`GATHER_BATCH`](crate::pgtable::GATHER_BATCH) pages. A dirty
    /// pte of a file's page hands its dirtiness to the file
    /// ([`VmaFile::set_page_dirty`], Linux `zap_present_folio_ptes`'
    /// `folio_mark_dirty`) while the gather still holds the page.
    pub(crate) fn zap_range(&mut self, vma: &VmaDesc, range: UserRange) {
        let end = range.end().as_u64();
        let mut gather = TlbGather::for_mm(self.pgd.root());
        let mut va = range.start().as_u64();
        let fmt = self.pgd.format();
        let pgdat = self.pgd.pgdat();
        while va < end {
            let mut resume = end;
            let _ = self.pgd.try_for_each_pte(va, end, &mut |addr, slot| {
                if gather.full() {
                    resume = addr;
                    return ControlFlow::Break(());
                }
                let raw = slot.load(Ordering::Acquire);
                if !fmt.pte_present(raw) {
                    self.zap_swap_pte(slot, raw);
                    return ControlFlow::Continue(());
                }
                // Atomically, so that a dirty bit a CPU sets meanwhile is
                // not lost (Linux `ptep_get_and_clear`).
                let raw = slot.swap(0, Ordering::AcqRel);
                let Entry::Leaf(leaf) = fmt.decode(raw, Level::Pte) else { return ControlFlow::Continue(()) };
                gather.add_range(addr, addr + PAGE_SIZE);
                let pfn = leaf.phys.pfn();
                if leaf.prot.contains(PgProt::DIRTY)
                    && let Some(file) = vma.file
                    && pfn != self.zero_pfn
                    && pgdat.pfn_to_page(pfn).is_some_and(|page| !rmap::page_anon(page))
                {
                    file.set_page_dirty(pgdat, linear_page_index_desc(vma, addr), pfn);
                }
                if self.zap_rmap(pfn, vma.flags) {
                    // SAFETY: the reference of the pte just cleared;
                    // the gather puts it only after its flush.
                    unsafe { gather.remove_page(pfn) };
                }
                ControlFlow::Continue(())
            });
            if gather.full() {
                gather.flush_mmu(self.tlb, pgdat);
            }
            va = resume;
        }
        gather.finish(self.tlb, pgdat);
    }

    /// Marks every page mapped in `range` mlocked, or takes the mark away
    /// (Linux `mlock_vma_pages_range` -> `mlock_pte_range`): what a VMA's
    /// `VM_LOCKED` turning on or off does to its present pages. Each pte
    /// is read under the page-table lock, which keeps its page mapped.
    pub(crate) fn mlock_pte_range(&self, range: UserRange, lock: bool) {
        let pgdat = self.pgd.pgdat();
        let _ = self.pgd.try_for_each_pte(range.start().as_u64(), range.end().as_u64(), &mut |_, slot| {
            let _ptl = self.page_table_lock.lock();
            if let Some(leaf) = self.leaf(slot.load(Ordering::Acquire))
                && leaf.phys.pfn() != self.zero_pfn
                && pgdat.pfn_to_page(leaf.phys.pfn()).is_some()
            {
                if lock {
                    pgdat.mlock_folio(leaf.phys.pfn());
                } else {
                    pgdat.munlock_folio(leaf.phys.pfn());
                }
            }
            ControlFlow::Continue(())
        });
    }

    /// Write-protects and cleans every dirty pte of a file's page in
    /// `range`, which lies in the shared file VMA `vma`, and hands each
    /// page's dirtiness to `file` ([`VmaFile::set_page_dirty`]) once the
    /// TLB no longer holds a writable translation of it (msync; the pte
    /// half of Linux `folio_mkclean` -> `page_mkclean_one`, by range
    /// instead of by page). The next write to such a page faults and goes
    /// through [`VmaFile::page_mkwrite`] again. The caller holds the mmap
    /// lock (for reading is enough: each pte changes under the page-table
    /// lock), which keeps every page mapped, so referenced, until the
    /// file has seen it.
    #[doc(alias = "page_mkclean_one")]
    pub(crate) fn mkclean_range(&self, vma: &VmaDesc, file: &dyn VmaFile, range: UserRange) {
        /// Pages cleaned per TLB flush.
        const BATCH: usize = 64;
        let fmt = self.pgd.format();
        let pgdat = self.pgd.pgdat();
        let end = range.end().as_u64();
        let mut va = range.start().as_u64();
        let mut cleaned = [(0u64, Pfn::new(0)); BATCH];
        while va < end {
            let mut resume = end;
            let mut n = 0;
            let mut gather = TlbGather::for_mm(self.pgd.root());
            let _ = self.pgd.try_for_each_pte(va, end, &mut |addr, slot| {
                if n == BATCH {
                    resume = addr;
                    return ControlFlow::Break(());
                }
                let Some(leaf) = self.leaf(slot.load(Ordering::Acquire)) else { return ControlFlow::Continue(()) };
                let pfn = leaf.phys.pfn();
                if !leaf.prot.contains(PgProt::DIRTY)
                    || pfn == self.zero_pfn
                    || pgdat.pfn_to_page(pfn).is_none_or(rmap::page_anon)
                {
                    return ControlFlow::Continue(());
                }
                {
                    let _ptl = self.page_table_lock.lock();
                    // Reread under the lock: a fault may have changed the
                    // pte. A CPU can only set the accessed bit meanwhile
                    // (the dirty one is set already), which may be lost.
                    match self.leaf(slot.load(Ordering::Acquire)) {
                        Some(now) if now.phys == leaf.phys && now.prot.contains(PgProt::DIRTY) => {
                            let clean = Leaf { prot: now.prot - PgProt::WRITE - PgProt::DIRTY, ..now };
                            slot.store(fmt.encode_leaf(clean), Ordering::Release);
                        }
                        _ => return ControlFlow::Continue(()),
                    }
                }
                gather.add_range(addr, addr + PAGE_SIZE);
                cleaned[n] = (linear_page_index_desc(vma, addr), pfn);
                n += 1;
                ControlFlow::Continue(())
            });
            // No CPU may write through a stale writable translation once
            // the file has taken the page as dirty and may write it back.
            gather.finish(self.tlb, pgdat);
            for &(index, pfn) in &cleaned[..n] {
                file.set_page_dirty(pgdat, index, pfn);
            }
            va = resume;
        }
    }

    /// This address space's VMAs that map the cache `mapping`.
    fn mapping_vmas(&self, mapping: u64) -> impl Iterator<Item = VmaDesc> + '_ {
        self.vmas
            .iter()
            .map(|vma| vma.desc())
            .filter(move |desc| desc.file.is_some_and(|f| f.mapping_id() == Some(mapping)))
    }

    /// The VMAs of this address space mapping page `index` of the cache
    /// `mapping`, with the address each maps it at (the file's `i_mmap`
    /// names the address spaces; this finds the VMAs within one).
    fn file_vmas_at(&self, mapping: u64, index: u64, mut f: impl FnMut(&VmaDesc, u64)) {
        for desc in self.mapping_vmas(mapping) {
            let pages = (desc.end.as_u64() - desc.start.as_u64()) >> crate::addr::PAGE_SHIFT;
            if let Some(offset) = index.checked_sub(desc.pgoff).filter(|&o| o < pages) {
                f(&desc, desc.start.as_u64() + (offset << crate::addr::PAGE_SHIFT));
            }
        }
    }

    /// Write-protects and cleans the ptes of this address space's shared
    /// mappings of page `pfn`, page `index` of the cache `mapping`, and
    /// says whether any was dirty (Linux `folio_mkclean` ->
    /// `page_mkclean_one`, for one address space). Writeback calls it
    /// before clearing a mapped page's dirty flag, so a write through a
    /// mapping after the page was written faults, goes through
    /// [`VmaFile::page_mkwrite`] and dirties the page again; the caller
    /// marks the page dirty when this returns true. The caller holds the
    /// mmap lock for reading (each pte changes under the page-table lock)
    /// and the page's lock.
    pub fn folio_mkclean_one(&self, mapping: u64, index: u64, pfn: Pfn) -> bool {
        let fmt = self.pgd.format();
        let mut dirty = false;
        self.file_vmas_at(mapping, index, |desc, addr| {
            if !desc.flags.contains(VmaFlags::SHARED) {
                return;
            }
            let Some(va) = VirtAddr::new(addr) else { return };
            let Ok(Some(slot)) = self.pgd.pte_offset(va, false) else { return };
            let changed = {
                let _ptl = self.page_table_lock.lock();
                match self.leaf(slot.load(Ordering::Acquire)) {
                    Some(leaf) if leaf.phys.pfn() == pfn && leaf.prot.intersects(PgProt::WRITE | PgProt::DIRTY) => {
                        dirty |= leaf.prot.contains(PgProt::DIRTY);
                        let clean = Leaf { prot: leaf.prot - PgProt::WRITE - PgProt::DIRTY, ..leaf };
                        slot.store(fmt.encode_leaf(clean), Ordering::Release);
                        true
                    }
                    _ => false,
                }
            };
            if changed {
                self.flush_one(addr);
            }
        });
        dirty
    }

    /// Unmaps every page at index `first` or beyond of the cache `mapping`
    /// from this address space: file pages and, in private mappings, the
    /// private copies made of them (Linux `unmap_mapping_range` with
    /// `even_cows`, what truncation does before dropping the pages). A
    /// later touch of such a page faults, and past the end of the file
    /// raises `SIGBUS`. The caller holds the mmap lock for reading: each
    /// pte is cleared under the page-table lock (a racing fault rechecks
    /// its pte there), and the pages are put after the TLB flush.
    pub fn unmap_mapping_pages(&self, mapping: u64, first: u64) {
        self.unmap_mapping_range(mapping, first, u64::MAX, true);
    }

    /// Unmaps the pages at indices `[first, last]` of the cache `mapping`
    /// from this address space (Linux `unmap_mapping_range`): the file's
    /// own pages, and with `even_cows` also the private copies made of
    /// them in private mappings (truncation); without, a private copy
    /// stays (hole punching, Linux `shmem_fallocate`'s `even_cows` 0).
    /// Locking as [`MmStruct::unmap_mapping_pages`].
    pub fn unmap_mapping_range(&self, mapping: u64, first: u64, last: u64, even_cows: bool) {
        let pgdat = self.pgd.pgdat();
        let mut gather = TlbGather::for_mm(self.pgd.root());
        for desc in self.mapping_vmas(mapping) {
            let pages = (desc.end.as_u64() - desc.start.as_u64()) >> crate::addr::PAGE_SHIFT;
            let skip = first.saturating_sub(desc.pgoff);
            let Some(upto) = last.checked_sub(desc.pgoff).map(|l| l.saturating_add(1).min(pages)) else { continue };
            if skip >= upto {
                continue;
            }
            let start = desc.start.as_u64() + (skip << crate::addr::PAGE_SHIFT);
            let end = desc.start.as_u64() + (upto << crate::addr::PAGE_SHIFT);
            self.zap_pte_range_shared(start, end, desc.flags, (!even_cows).then_some(mapping), &mut gather);
        }
        gather.finish(self.tlb, pgdat);
    }

    /// Clears every present pte in `[start, end)` and drops its page,
    /// under the mmap lock held for reading (Linux `unmap_page_range` as
    /// truncation and the OOM reaper run it): each pte is taken under the
    /// page-table lock, so a racing fault rechecks it there; rmap and RSS
    /// go at once, the page references through `gather` after its flush.
    /// Returns the ptes cleared. `flags` are the VMA's, which the range
    /// lies in. With `only`, a pte is cleared only if it maps a page of
    /// the cache `only` (hole punching leaves private copies alone).
    pub(crate) fn zap_pte_range_shared(
        &self,
        start: u64,
        end: u64,
        flags: VmaFlags,
        only: Option<u64>,
        gather: &mut TlbGather,
    ) -> u64 {
        let fmt = self.pgd.format();
        let pgdat = self.pgd.pgdat();
        let mut zapped = 0;
        let mut va = start;
        while va < end {
            let mut resume = end;
            let _ = self.pgd.try_for_each_pte(va, end, &mut |addr, slot| {
                if gather.full() {
                    resume = addr;
                    return ControlFlow::Break(());
                }
                let raw = {
                    let _ptl = self.page_table_lock.lock();
                    let raw = slot.load(Ordering::Acquire);
                    if !fmt.pte_present(raw) {
                        // Hole punching leaves private (anonymous) copies,
                        // swapped out ones too.
                        if only.is_none() && self.zap_swap_pte(slot, raw) {
                            zapped += 1;
                        }
                        return ControlFlow::Continue(());
                    }
                    if let Some(mapping) = only {
                        let own = match fmt.decode(raw, Level::Pte) {
                            Entry::Leaf(leaf) => {
                                pgdat.pfn_to_page(leaf.phys.pfn()).is_some_and(|p| p.mapping() == mapping)
                            }
                            _ => false,
                        };
                        if !own {
                            return ControlFlow::Continue(());
                        }
                    }
                    slot.swap(0, Ordering::AcqRel)
                };
                let Entry::Leaf(leaf) = fmt.decode(raw, Level::Pte) else { return ControlFlow::Continue(()) };
                gather.add_range(addr, addr + PAGE_SIZE);
                zapped += 1;
                if self.zap_rmap(leaf.phys.pfn(), flags) {
                    // SAFETY: the reference of the pte just cleared;
                    // the gather puts it only after its flush.
                    unsafe { gather.remove_page(leaf.phys.pfn()) };
                }
                ControlFlow::Continue(())
            });
            if gather.full() {
                gather.flush_mmu(self.tlb, pgdat);
            }
            va = resume;
        }
        zapped
    }

    /// Rewrites the ptes of `[start, end)` for the flags of `vma`, which
    /// they lie in (Linux `change_pte_range`). In a private mapping write
    /// permission is given back only to anonymous pages this address space
    /// holds alone; a shared (copy-on-write) or file page stays read-only
    /// until written. In a shared file mapping only dirty ptes get it back
    /// (Linux `can_change_pte_writable`): a clean one must fault for
    /// [`VmaFile::page_mkwrite`].
    ///
    /// Each pte is rewritten with bit operations (Linux `pte_modify`): the
    /// new protection's bits are encoded once, and the page descriptor is
    /// read only where write permission is being given. One walk of the
    /// upper levels per pte table.
    pub(crate) fn change_protection(&mut self, range: UserRange, vma: &VmaDesc) {
        let flags = vma.flags;
        let (start, end) = (range.start().as_u64(), range.end().as_u64());
        let prot = vm_get_page_prot(flags);
        let fmt = self.pgd.format();
        let bits = |prot: PgProt| fmt.encode_leaf(Leaf { phys: crate::PhysAddr::new(0), prot, size: PageSize::Size4K });
        let (new_bits, ro_bits) = (bits(prot), bits(prot - PgProt::WRITE));
        let (keep, dirty) = (fmt.pte_chg_mask(), bits(PgProt::DIRTY) & fmt.pte_chg_mask());
        // Private writable: only exclusive anonymous pages get write back.
        let check_exclusive = !flags.contains(VmaFlags::SHARED) && prot.contains(PgProt::WRITE);
        // Shared file, writable: only dirty ptes (Linux
        // `vma_wants_writenotify`).
        let check_dirty = flags.contains(VmaFlags::SHARED) && vma.file.is_some() && prot.contains(PgProt::WRITE);
        if check_exclusive {
            // This CPU's LRU batch holds a reference on the pages it
            // faulted in lately, which would make them look shared
            // (Linux asks `PageAnonExclusive` instead).
            self.pgd.pgdat().lru_add_drain();
        }
        let pgdat = self.pgd.pgdat();
        let zero = self.zero_pfn;
        let mut gather = TlbGather::for_mm(self.pgd.root());
        let mut va = start;
        while va < end {
            let table_end = ((va | (Level::Pmd.entry_size() - 1)) + 1).min(end);
            if let Some(table) =
                UserAddr::page_down(va).and_then(|a| self.pgd.pte_table(a.virt(), false).ok().flatten())
            {
                let first = Level::Pte.index(va);
                let slots = &table[first..first + ((table_end - va) / PAGE_SIZE) as usize];
                for (i, slot) in slots.iter().enumerate() {
                    let raw = slot.load(Ordering::Acquire);
                    if !fmt.pte_present(raw) {
                        continue;
                    }
                    let mut new = (raw & keep) | new_bits;
                    if check_exclusive {
                        let pfn = crate::PhysAddr::new(raw & keep & !dirty).pfn();
                        let exclusive = pfn != zero
                            && pgdat.pfn_to_page(pfn).is_some_and(|p| p.refcount() == 1 && rmap::page_anon(p));
                        if !exclusive {
                            new = (raw & keep) | ro_bits;
                        }
                    }
                    if check_dirty && raw & dirty == 0 {
                        new = (raw & keep) | ro_bits;
                    }
                    if new != raw {
                        slot.store(new, Ordering::Release);
                        let addr = va + i as u64 * PAGE_SIZE;
                        gather.add_range(addr, addr + PAGE_SIZE);
                    }
                }
            }
            va = table_end;
        }
        gather.finish(self.tlb, pgdat);
    }

    /// Copies the ptes of `vma` from `src` into this (new, child) address
    /// space (Linux `copy_page_range`): each page gets one more reference
    /// and mapping, a file's page too (its cache keeps its own). Private
    /// writable pages become read-only in both so the first write copies;
    /// the child's ptes of a shared file mapping are read-only and clean,
    /// so its first write goes through [`VmaFile::page_mkwrite`] (see the
    /// module documentation).
    pub(crate) fn copy_page_range(&mut self, src: &MmStruct<'a, F, A>, vma: &Vma) -> Result<(), Errno> {
        let cow = !vma.flags().contains(VmaFlags::SHARED);
        let writenotify = !cow && vma.file().is_some();
        let mut src_gather = TlbGather::for_mm(src.pgd.root());
        let fmt = src.pgd.format();
        let pgdat = src.pgd.pgdat();
        let mut result = Ok(());
        let mut added = [
            (MmCounter::FilePages, 0i64),
            (MmCounter::AnonPages, 0),
            (MmCounter::ShmemPages, 0),
            (MmCounter::SwapEnts, 0),
        ];
        let mut dst_table: Option<(u64, &[AtomicU64; PTRS_PER_TABLE])> = None;
        src.pgd.for_each_pte(vma.start().as_u64(), vma.end().as_u64(), &mut |addr, slot| {
            if result.is_err() {
                return;
            }
            let raw = slot.load(Ordering::Acquire);
            let mut leaf = match fmt.decode(raw, Level::Pte) {
                Entry::Leaf(leaf) => leaf,
                // Linux `copy_nonpresent_pte`: one more pte holds the
                // slot (migration entries never meet fork, which holds
                // the mmap lock for writing).
                Entry::Swap(entry) if swap_state::is_swap_entry(entry) => {
                    let counted = match pgdat.swap_backend() {
                        Some(backend) => backend.swap_duplicate(entry),
                        None => Err(swap_state::SwapDupError::BadEntry),
                    };
                    let dst = match counted {
                        Ok(()) => UserAddr::page_down(addr).map(|a| self.pgd.pte_offset(a.virt(), true)),
                        Err(e) => {
                            error!("fork: swap entry {entry:?} at {addr:#x} not duplicated: {e:?}");
                            result = Err(Errno::ENOMEM);
                            return;
                        }
                    };
                    match dst {
                        Some(Ok(Some(dst))) => {
                            dst.store(raw, Ordering::Release);
                            added[MmCounter::SwapEnts as usize].1 += 1;
                        }
                        _ => {
                            // No page table for the child's pte: the
                            // count taken above goes back.
                            if let Some(backend) = pgdat.swap_backend() {
                                backend.free_swap_and_cache(entry);
                            }
                            result = Err(Errno::ENOMEM);
                        }
                    }
                    return;
                }
                // Linux `copy_pte_marker`: the child's page is lost too.
                Entry::Swap(entry) if is_poisoned_swp_entry(entry) => {
                    match UserAddr::page_down(addr).map(|a| self.pgd.pte_offset(a.virt(), true)) {
                        Some(Ok(Some(dst))) => dst.store(raw, Ordering::Release),
                        _ => result = Err(Errno::ENOMEM),
                    }
                    return;
                }
                _ => return,
            };
            if cow && leaf.prot.contains(PgProt::WRITE) {
                leaf.prot -= PgProt::WRITE;
                slot.store(fmt.encode_leaf(leaf), Ordering::Release);
                src_gather.add_range(addr, addr + PAGE_SIZE);
            }
            // One walk of the child's upper levels per pte table.
            let block = addr >> Level::Pmd.shift();
            let table = match dst_table {
                Some((b, t)) if b == block => t,
                _ => match UserAddr::page_down(addr).map(|a| self.pgd.pte_table(a.virt(), true)) {
                    Some(Ok(Some(t))) => {
                        dst_table = Some((block, t));
                        t
                    }
                    _ => {
                        result = Err(Errno::ENOMEM);
                        return;
                    }
                },
            };
            let dst = &table[Level::Pte.index(addr)];
            let pfn = leaf.phys.pfn();
            if writenotify {
                leaf.prot -= PgProt::WRITE | PgProt::DIRTY;
            }
            if pfn != src.zero_pfn
                && let Some(page) = pgdat.pfn_to_page(pfn)
            {
                page.get();
                rmap::page_dup_rmap(pgdat, page);
                added[mm_counter(page) as usize].1 += 1;
            }
            dst.store(fmt.encode_leaf(leaf), Ordering::Release);
        });
        src_gather.finish(src.tlb, pgdat);
        for (counter, pages) in added {
            self.add_rss(counter, pages);
        }
        result
    }

    /// Moves the ptes of `[old, old + len)` to `new` (Linux
    /// `move_page_tables`): the pages stay where they are, only their
    /// addresses change. The destination must hold no ptes. Its page
    /// tables are allocated first, so on `ENOMEM` nothing has moved.
    pub(crate) fn move_ptes(&mut self, old: UserRange, new: UserRange) -> Result<(), Errno> {
        if old.len() != new.len() {
            return Err(Errno::EINVAL);
        }
        let fmt = self.pgd.format();
        let mut result = Ok(());
        // The destination of the pte at `addr` (inside `old`): inside `new`.
        let dst_of = |addr: u64| UserAddr::new(addr - old.start().as_u64() + new.start().as_u64()).ok();
        let (start, end) = (old.start().as_u64(), old.end().as_u64());
        self.pgd.for_each_pte(start, end, &mut |addr, slot| {
            if result.is_ok()
                && let Entry::Leaf(_) | Entry::Swap(_) = fmt.decode(slot.load(Ordering::Acquire), Level::Pte)
                && !dst_of(addr).is_some_and(|d| matches!(self.pgd.pte_offset(d.virt(), true), Ok(Some(_))))
            {
                result = Err(Errno::ENOMEM);
            }
        });
        result?;
        let mut gather = TlbGather::for_mm(self.pgd.root());
        self.pgd.for_each_pte(start, end, &mut |addr, slot| {
            let raw = slot.load(Ordering::Acquire);
            // A swap entry moves with the others (Linux `move_ptes`);
            // only a present pte needs its translation flushed.
            let entry = fmt.decode(raw, Level::Pte);
            if let Entry::Leaf(_) | Entry::Swap(_) = entry
                && let Some(d) = dst_of(addr)
                && let Ok(Some(dst)) = self.pgd.pte_offset(d.virt(), false)
            {
                dst.store(raw, Ordering::Release);
                slot.store(0, Ordering::Release);
                if let Entry::Leaf(_) = entry {
                    gather.add_range(addr, addr + PAGE_SIZE);
                }
            }
        });
        gather.finish(self.tlb, self.pgd.pgdat());
        Ok(())
    }

    /// Faults in every page of `[start, end)` (Linux `populate_vma_page_range`
    /// through `handle_mm_fault`): written if the VMA is private and
    /// writable, to break copy-on-write; read otherwise, so that a shared
    /// file mapping's pages are not all dirtied.
    pub(crate) fn populate(&mut self, range: UserRange) -> Result<(), FaultError> {
        let mut at = range.start();
        while at < range.end() {
            let Some(vma) = self.vmas.vma_lookup(at.virt()) else {
                return Err(FaultError::MapErr);
            };
            let flags = vma.flags();
            let part = range.from(at).clip_virt(vma.start(), vma.end());
            if part.is_empty() {
                return Err(FaultError::MapErr);
            }
            if flags.intersects(VmaFlags::READ | VmaFlags::WRITE | VmaFlags::EXEC) {
                let write = flags & (VmaFlags::WRITE | VmaFlags::SHARED) == VmaFlags::WRITE;
                for addr in part.addrs() {
                    let present = self
                        .pgd
                        .pte_offset(addr.virt(), false)
                        .ok()
                        .flatten()
                        .and_then(|s| self.leaf(s.load(Ordering::Acquire)))
                        .is_some_and(|l| !write || l.prot.contains(PgProt::WRITE));
                    if !present {
                        self.handle_mm_fault_exclusive(addr.virt(), FaultAccess { write, exec: false })?;
                    }
                }
            }
            at = part.end();
        }
        Ok(())
    }

    /// What the pte at `addr` says for mincore (Linux
    /// `mincore_pte_range`).
    pub(crate) fn pte_state(&self, addr: UserAddr) -> PteState {
        let Some(slot) = self.pgd.pte_offset(addr.virt(), false).ok().flatten() else { return PteState::None };
        match self.pgd.format().decode(slot.load(Ordering::Acquire), Level::Pte) {
            Entry::Leaf(_) => PteState::Resident,
            Entry::Swap(entry) if is_migration_entry(entry) => PteState::Resident,
            // Linux `mincore_swap`: resident while the swap cache has it.
            Entry::Swap(entry)
                if self.pgd.pgdat().swap_backend().is_some_and(|b| b.swap_cache_lookup(entry).is_some()) =>
            {
                PteState::Resident
            }
            Entry::Swap(_) => PteState::Other,
            Entry::None | Entry::Table(_) => PteState::None,
        }
    }

    /// The leaf mapping `addr`, if any (for reports and tests).
    pub fn follow_pte(&self, addr: VirtAddr) -> Option<Leaf> {
        let slot = self.pgd.pte_offset(addr, false).ok().flatten()?;
        self.leaf(slot.load(Ordering::Acquire))
    }

    /// Reads `buf.len()` bytes of this address space at `addr` from
    /// another task (Linux `access_remote_vm` without `FOLL_WRITE` or
    /// `FOLL_FORCE`, as `/proc/PID/cmdline` reads the arguments): each
    /// page of a readable VMA is faulted in for reading if no pte maps it
    /// and copied under the page-table lock, which keeps the pte, and so
    /// the page, in place. Returns the bytes read: fewer at the first
    /// page that is not readable or cannot be faulted in. The caller
    /// holds the mmap lock for reading.
    pub fn access_remote_vm(&self, addr: u64, buf: &mut [u8]) -> usize {
        let pgdat = self.pgd.pgdat();
        let mut done = 0;
        while done < buf.len() {
            let Some(at) = addr.checked_add(done as u64).and_then(VirtAddr::new) else { break };
            let readable = self.vmas.vma_lookup(at).is_some_and(|v| v.flags().contains(VmaFlags::READ));
            if !readable {
                break;
            }
            let offset = (at.as_u64() % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - offset).min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            let mut copied = false;
            for _ in 0..2 {
                if let Some(slot) = self.pgd.pte_offset(at, false).ok().flatten() {
                    let _ptl = self.page_table_lock.lock();
                    if let Some(leaf) = self.leaf(slot.load(Ordering::Acquire))
                        && !leaf.prot.contains(PgProt::PROTNONE)
                    {
                        // SAFETY: the pte maps the page and holds a
                        // reference to it, and the page-table lock keeps
                        // the pte until the copy is done; no Rust
                        // reference points into a user page. Its owner may
                        // write it meanwhile, which the contract allows.
                        copied = unsafe { highmem::memcpy_from_page(pgdat, dst, leaf.phys.pfn(), offset) }.is_ok();
                        break;
                    }
                }
                if self.handle_mm_fault(at, FaultAccess { write: false, exec: false }).is_err() {
                    break;
                }
            }
            if !copied {
                break;
            }
            done += n;
        }
        done
    }
}

#[cfg(test)]
mod tests;
