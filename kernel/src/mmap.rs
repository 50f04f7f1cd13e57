//! The kernel's user address spaces: [`mm::mmap::MmStruct`] over the x86_64
//! page-table format, VMAs and their `anon_vma`s from the
//! "vm_area_struct", "anon_vma" and "anon_vma_chain" slab caches (Linux
//! `vm_area_cachep`, `anon_vma_cachep`, `anon_vma_chain_cachep`), the
//! shared zero page (Linux `empty_zero_page`), and the address space of
//! the running task; and how reverse-map walks reach the address spaces
//! they name ([`MM_LIST`], [`RmapWalk`]), for reclaim, writeback and
//! compaction ([`crate::compaction`]).
//!
//! # Locks
//! Each address space has Linux's `mmap_lock`: a sleeping reader/writer
//! lock ([`RwSem`]). Page faults, `mincore`, `/proc/<pid>/maps`-style
//! reports and the RSS readers take it for reading ([`Mm::mmap_read_lock`]);
//! everything that changes VMAs or clears or re-protects ptes (mmap,
//! munmap, mprotect, mremap, madvise, mlock, brk, exec's setup, fork's copy
//! of the parent, exit) takes it for writing ([`Mm::mmap_write_lock`]).
//! Faults under the read lock serialise their pte installs on the space's
//! page-table lock (see `mm::memory`). Migration holds the read lock too:
//! it locks each page ([`FOLIO_WAIT`] is where waiters sleep), then tries
//! the read lock of every address space the page's reverse map names
//! ([`RmapWalk`]: a fault may hold one while it waits for the page), puts
//! a migration entry in each pte, and a fault that meets one drops the
//! lock, sleeps until the page is unlocked and retries.
//!
//! Lock order: `crate::compaction`'s lock -> a task's `Process::mm` slot (a spin lock,
//! held only to clone the reference, never while taking the mmap lock) ->
//! mmap lock -> page lock -> [`MM_LIST`] -> mmap locks only tried ->
//! `i_mmap` or anon_vma lock -> page-table lock -> page allocator and
//! slab locks.
//!
//! Page locks are released from interrupt context too: a page-cache
//! read's completion ends the page (`filemap::folio_end_read`) and wakes
//! its [`FOLIO_WAIT`] queue there. That is safe because a wait queue's
//! lock is interrupt-safe ([`WaitQueue`]'s rule, `sched::wait`); a task
//! sleeps for a page lock only where it may sleep, with interrupts on.
//!
//! The mmap lock sleeps, so it is never taken with interrupts off, under a
//! spin lock or in interrupt context. A kernel-mode fault on a user address (`copy_to_user` and
//! friends) runs with interrupts on whenever the faulting code had them
//! on, and takes the lock like a user fault; with interrupts off (Linux's
//! `faulthandler_disabled()`) it only tries, and a busy lock makes the
//! access fail with `EFAULT` through the exception table, as does a page
//! under migration. Migration holds the lock while it waits for every
//! CPU's TLB flush: a CPU waiting for the lock sleeps with interrupts on
//! and answers.
//! The compaction lock is a sleeping lock too, as compaction reschedules
//! between pageblocks.

#![forbid(unsafe_code)]

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::ops::ControlFlow;

use mm::gfp::{GFP_KERNEL, Gfp};
use mm::interval_tree::{IMmap, MmId};
use mm::memory::{FaultAccess, FaultError};
use mm::mmap::MmStruct;
use mm::pgtable::X86PteFormat;
use mm::rmap::{AnonVmaLock, RmapMms};
use mm::slub::SlabFlags;
use mm::{Pfn, PhysAddr};
use spin::Once;
use uapi::errno::Errno;

use crate::arch::x86_64::pgtable;
use crate::sched::rwsem::{RwSem, RwSemReadGuard, RwSemWriteGuard};
use crate::sched::wait::WaitQueue;
use crate::slab::{KmemCacheOf, VmaCaches};

/// A user address space as the kernel uses it.
pub type UserMm = MmStruct<'static, X86PteFormat, SlabVmas>;

/// An address space with its lock (Linux's `mm_struct`: `mmap_lock` and
/// the fields it protects, and the page-table root, fixed for life).
pub struct Mm {
    pgd: PhysAddr,
    mmap_lock: RwSem<UserMm>,
    /// What the OOM killer last read of it, and whether it was reaped.
    oom: crate::oom_kill::MmOom,
}

impl Mm {
    /// Takes the mmap lock for reading (Linux `mmap_read_lock`); sleeps.
    pub fn mmap_read_lock(&self) -> RwSemReadGuard<'_, UserMm> {
        self.mmap_lock.read()
    }

    /// Takes the mmap lock for reading if free of writers, without
    /// sleeping (Linux `mmap_read_trylock`).
    pub fn mmap_read_trylock(&self) -> Option<RwSemReadGuard<'_, UserMm>> {
        self.mmap_lock.try_read()
    }

    /// Takes the mmap lock for writing (Linux `mmap_write_lock`); sleeps.
    pub fn mmap_write_lock(&self) -> RwSemWriteGuard<'_, UserMm> {
        self.mmap_lock.write()
    }

    /// Its counters as the OOM killer weighs them (Linux reads them
    /// without the mmap lock). Taken under the lock if it is free without
    /// waiting (the caller may hold it, or be the OOM killer that a
    /// holder waits on), else the last ones read.
    pub fn oom_mm(&self) -> mm::oom_kill::OomMm {
        self.oom.read(self.mmap_lock.try_read().as_deref())
    }

    /// Marks it reaped or torn down (Linux `MMF_OOM_SKIP`): the OOM
    /// killer passes it over from now on.
    pub fn set_oom_skip(&self) {
        self.oom.set_skip();
    }

    /// The page-table root (what CR3 holds while this space runs); needs
    /// no lock.
    pub fn pgd_root(&self) -> PhysAddr {
        self.pgd
    }

    /// The address space, the last reference being gone.
    pub fn into_inner(self) -> UserMm {
        self.mmap_lock.into_inner()
    }
}

/// A shared handle to an address space (Linux's refcounted `mm_struct`).
/// Each task using the space holds one (its threads, a vfork child), so
/// the strong count is Linux's `mm_users`, plus the short-lived handles
/// of reverse-map walks and reports; the last one tears the space down
/// (`exit_mmap`). There is no `mm_count`: no kernel thread borrows a
/// user space lazily (a switch to one loads the kernel's tables), and
/// the walks reach spaces through [`MM_LIST`]'s weak handles.
pub type MmRef = Arc<Mm>;

/// VMAs and `anon_vma`s from their slab caches, shared by every address
/// space (Linux `vm_area_cachep`, `anon_vma_cachep`,
/// `anon_vma_chain_cachep`), with the anon_vma lock.
pub type SlabVmas = &'static VmaCaches;

struct Globals {
    caches: VmaCaches,
    zero_pfn: Pfn,
}

static GLOBALS: Once<Globals> = Once::new();

/// Creates the VMA and `anon_vma` caches and the zero page (Linux
/// `proc_caches_init`, `anon_vma_init`, `paging_init`'s zero page).
///
/// # Panics
/// If any cannot be allocated at boot.
pub fn init() {
    let slab = crate::slab::slab().expect("mmap::init before slab::init");
    fn create<T>(slab: &'static mm::slab_common::Slab<'static>, name: &'static str) -> KmemCacheOf<T> {
        KmemCacheOf::create(slab, name, SlabFlags::empty())
            .unwrap_or_else(|e| panic!("mmap: cannot create the {name} cache: {e:?}"))
    }
    let caches = VmaCaches {
        vmas: create(slab, "vm_area_struct"),
        anon_vmas: create(slab, "anon_vma"),
        avcs: create(slab, "anon_vma_chain"),
        lock: AnonVmaLock::new(),
    };
    let zero_pfn = crate::mm::alloc_pages(GFP_KERNEL | Gfp::ZERO, 0).expect("mmap: no zero page");
    GLOBALS.call_once(|| Globals { caches, zero_pfn });
}

/// The shared zero page.
pub fn zero_pfn() -> Option<Pfn> {
    GLOBALS.get().map(|g| g.zero_pfn)
}

/// A new, empty address space (Linux `mm_alloc`).
pub fn mm_alloc() -> Result<MmRef, Errno> {
    mmput_async_drain();
    let g = GLOBALS.get().ok_or(Errno::ENOMEM)?;
    let kernel = pgtable::kernel_pgtable().ok_or(Errno::ENOMEM)?;
    let zero = &crate::shmem::SHMEM_ZERO;
    // The root below 4 GiB, as the kernel's; a blocking mask, so that a
    // fork or exec under memory pressure reclaims for it (Linux
    // `pgd_alloc`'s `GFP_PGTABLE_USER`) rather than failing with ENOMEM.
    let root_gfp = mm::gfp::GFP_KERNEL.union(mm::gfp::GFP_DMA32);
    let mm = MmStruct::new(kernel, root_gfp, pgtable::kernel_tlb(), g.zero_pfn, zero, &g.caches)?;
    let id = mm.vmas().owner();
    let mm = Arc::new(Mm { pgd: mm.pgd_root(), mmap_lock: RwSem::new(mm), oom: crate::oom_kill::MmOom::new() });
    let entry = (id, Arc::downgrade(&mm));
    loop {
        let mut list = MM_LIST.lock();
        list.retain(|(_, weak)| weak.strong_count() > 0);
        if list.len() < list.capacity() {
            list.push(entry);
            return Ok(mm);
        }
        // No allocation under the lock (see `MM_LIST`): a larger list is
        // made outside it and takes the entries over if still needed.
        let want = list.len() * 2 + 8;
        drop(list);
        let mut bigger = Vec::new();
        bigger.try_reserve_exact(want).map_err(|_| Errno::ENOMEM)?;
        let mut list = MM_LIST.lock();
        if list.len() == list.capacity() && list.len() < want {
            bigger.append(&mut list);
            *list = bigger;
        }
    }
}

/// Resolves a fault at `addr` in `mm` (Linux `lock_mm_and_find_vma` then
/// `handle_mm_fault`): under the mmap lock held for reading; a fault
/// that must grow a stack retakes it for writing, grows the stack,
/// downgrades to reading and resolves the fault. May sleep.
///
/// A fault that meets a page under migration ([`FaultError::Retry`])
/// drops the lock, sleeps until the page is unlocked and faults again
/// (Linux `VM_FAULT_RETRY`).
pub fn handle_user_fault(mm: &Mm, addr: mm::VirtAddr, access: FaultAccess) -> Result<(), FaultError> {
    loop {
        let result = mm.mmap_read_lock().handle_mm_fault(addr, access);
        match result {
            Err(FaultError::Retry(pfn)) => wait_on_page_locked(pfn),
            Err(FaultError::ExpandStack) => break,
            done => return done,
        }
    }
    let mut write = mm.mmap_write_lock();
    write.expand_stack_for_fault(addr)?;
    let read = write.downgrade();
    loop {
        match read.handle_mm_fault(addr, access) {
            // The stack covers `addr` and no writer got in since.
            Err(FaultError::ExpandStack) => return Err(FaultError::MapErr),
            // Migration holds the mmap lock for reading too, so it may
            // have started on the page: wait for it with the lock held
            // (Linux `migration_entry_wait`), as dropping it would let the
            // stack shrink again.
            Err(FaultError::Retry(pfn)) => wait_on_page_locked(pfn),
            done => return done,
        }
    }
}

/// Sleeps until the page at `pfn` is unlocked (Linux `folio_wait_locked`).
fn wait_on_page_locked(pfn: Pfn) {
    if let Some(page) = crate::mm::pgdat().pfn_to_page(pfn) {
        mm::filemap::folio_wait_locked(page, pfn, &FOLIO_WAIT);
    }
}

/// Wait queues for page locks (Linux `folio_wait_table`): pages hash onto
/// [`FOLIO_WAIT_QUEUES`] queues, so a wake-up may wake waiters for
/// another page, which re-test and sleep again. Woken from interrupt
/// context too (see the module doc).
pub struct FolioWaitQueues([WaitQueue; FOLIO_WAIT_QUEUES]);

/// Queues of the page-lock wait table (Linux `PAGE_WAIT_TABLE_SIZE`, 256).
const FOLIO_WAIT_QUEUES: usize = 64;

impl FolioWaitQueues {
    fn queue(&self, pfn: Pfn) -> &WaitQueue {
        // Fibonacci hashing of the frame number (Linux `hash_ptr`).
        let hash = pfn.as_u64().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - FOLIO_WAIT_QUEUES.trailing_zeros());
        &self.0[hash as usize % FOLIO_WAIT_QUEUES]
    }
}

impl mm::arch::FolioWaitTable for FolioWaitQueues {
    fn wait_event(&self, pfn: Pfn, cond: &mut dyn FnMut() -> bool) {
        self.queue(pfn).wait_event(cond);
    }

    fn wake_up(&self, pfn: Pfn) {
        self.queue(pfn).wake_up_all();
    }
}

/// The page-lock wait table.
pub static FOLIO_WAIT: FolioWaitQueues = FolioWaitQueues([const { WaitQueue::new() }; FOLIO_WAIT_QUEUES]);

/// Every address space [`mm_alloc`] made, by page-table root, held
/// weakly (Linux's `mmlist`, and the `vma->vm_mm` a reverse-map walk
/// follows): how a walk that found an address space by its [`MmId`]
/// reaches it. Entries of dead spaces are dropped at the next
/// [`mm_alloc`]. A sleeping mutex, taken with no spin lock held and
/// never in interrupt context; it nests inside page locks (writeback's
/// `folio_mkclean`, rmap walks) and outside mmap locks. Nothing allocates
/// while holding it: an allocation may reclaim, and reclaim walks the
/// reverse map, which takes it.
static MM_LIST: crate::sync::Mutex<Vec<(MmId, Weak<Mm>)>> = crate::sync::Mutex::new(Vec::new());

/// The live address spaces named in `ids`, or every live one if `all`.
/// On allocation failure it returns those it has room for, with a
/// warning.
fn mms_by_id(ids: &[MmId], all: bool) -> Vec<MmRef> {
    // Room first, outside the lock (see `MM_LIST`), again if a space came
    // meanwhile (a fork child may map what the caller looks for).
    let mut mms: Vec<MmRef> = Vec::new();
    let list = loop {
        let want = if all { MM_LIST.lock().len() } else { ids.len() };
        if mms.try_reserve(want).is_err() {
            log::warn!("mm: no memory to list {want} address spaces for a reverse-map walk");
            break MM_LIST.lock();
        }
        let list = MM_LIST.lock();
        if !all || list.len() <= mms.capacity() {
            break list;
        }
    };
    for (id, weak) in list.iter() {
        if mms.len() < mms.capacity()
            && (all || ids.contains(id))
            && let Some(mm) = weak.upgrade()
        {
            mms.push(mm);
        }
    }
    drop(list);
    mms
}

/// Address spaces [`mms_mapping`] names before it gives up and names
/// them all.
const MAPPERS: usize = 16;

/// The address spaces with a VMA mapping a page in `[first, last]` of the
/// file whose reverse map is `i_mmap` (the address-space half of Linux's
/// `rmap_walk_file`). The reverse map names each by its page-table root;
/// past [`MAPPERS`] distinct ones, every address space is returned (each
/// caller looks its VMAs up again under the mmap lock, so more is only
/// slower). A VMA mapped after the query is not seen: its ptes come from
/// faults that check the file's state themselves.
fn mms_mapping(i_mmap: &IMmap, first: u64, last: u64) -> Vec<MmRef> {
    let (mut ids, mut n, mut overflow) = ([MmId(0); MAPPERS], 0, false);
    i_mmap.for_each_vma(first, last, |vma| {
        if ids[..n].contains(&vma.mm) {
            return;
        }
        match ids.get_mut(n) {
            Some(slot) => {
                *slot = vma.mm;
                n += 1;
            }
            None => overflow = true,
        }
    });
    if n == 0 {
        return Vec::new();
    }
    mms_by_id(&ids[..n], overflow)
}

/// Write-protects and cleans the shared ptes mapping `pfn`, page `index`
/// of the cache `mapping`, in every address space its reverse map
/// `i_mmap` names (Linux `folio_mkclean`); true if one was dirty.
/// Writeback calls it with the page locked, so it only tries each mmap
/// lock (a fault may hold it and wait for the page): an address space it
/// cannot lock keeps its pte, whose dirty bit still reaches the page at
/// unmap or msync.
pub fn folio_mkclean(mapping: u64, i_mmap: &IMmap, index: u64, pfn: Pfn) -> bool {
    let mut dirty = false;
    for mm in mms_mapping(i_mmap, index, index) {
        if let Some(guard) = mm.mmap_read_trylock() {
            dirty |= guard.folio_mkclean_one(mapping, index, pfn);
        }
    }
    dirty
}

/// Unmaps the pages at `first` and beyond of the cache `mapping` from
/// every address space its reverse map `i_mmap` names (Linux
/// `unmap_mapping_range` for truncation, private copies included). The
/// caller holds the file's `i_rwsem` and no page lock; each mmap lock is
/// taken for reading.
pub fn unmap_mapping_pages(mapping: u64, i_mmap: &IMmap, first: u64) {
    for mm in mms_mapping(i_mmap, first, u64::MAX) {
        mm.mmap_read_lock().unmap_mapping_pages(mapping, first);
    }
}

/// Unmaps the file's own pages at indices `[first, last]` of the cache
/// `mapping` from every address space its reverse map names whose mmap
/// lock is free, private copies left alone (Linux `unmap_mapping_range`
/// with `even_cows` 0, as shmem's hole punching does). For a caller that
/// holds its own mmap lock (`MADV_REMOVE`), so it only tries each one:
/// its own, and any another task holds, keep their ptes.
pub fn unmap_mapping_range_trylock(mapping: u64, i_mmap: &IMmap, first: u64, last: u64) {
    for mm in mms_mapping(i_mmap, first, last) {
        if let Some(guard) = mm.mmap_read_trylock() {
            guard.unmap_mapping_range(mapping, first, last, false);
        }
    }
}

/// How reverse-map walks reach the address spaces the reverse maps name
/// (Linux follows `vma->vm_mm`): through [`MM_LIST`], trying each one's
/// mmap lock for reading, since the walker holds page locks (see
/// `mm::rmap`'s walk). `stop` is compaction's test for ending a run.
///
/// The references a walk takes are kept until the walker is dropped: an
/// address space whose last other reference went meanwhile is torn down
/// then, with no page lock held, not in the middle of a walk that holds
/// page locks. A reclaim walker hands them to [`mmput_async`] instead:
/// reclaim runs inside an allocation whose caller may hold locks that a
/// teardown needs (a file's, through its last reference).
pub struct RmapWalk<'s> {
    caches: SlabVmas,
    stop: &'s dyn Fn() -> bool,
    held: crate::sync::Mutex<Vec<MmRef>>,
    defer_put: bool,
}

impl<'s> RmapWalk<'s> {
    /// A walker; `None` before [`init`]. Must be dropped with no page lock
    /// held.
    pub fn new(stop: &'s dyn Fn() -> bool) -> Option<Self> {
        GLOBALS.get().map(|g| RmapWalk {
            caches: &g.caches,
            stop,
            held: crate::sync::Mutex::new(Vec::new()),
            defer_put: false,
        })
    }

    /// The walker, dropping its references through [`mmput_async`]: for
    /// walks inside an allocation (reclaim, direct compaction).
    pub fn defer_puts(mut self) -> Self {
        self.defer_put = true;
        self
    }
}

/// Reclaim's walks never stop early (compaction's may).
fn never_stop() -> bool {
    false
}

impl RmapWalk<'static> {
    /// A walker for reclaim, which drops its references through
    /// [`mmput_async`]; `None` before [`init`].
    pub fn for_reclaim() -> Option<Self> {
        RmapWalk::new(&never_stop).map(RmapWalk::defer_puts)
    }
}

impl Drop for RmapWalk<'_> {
    fn drop(&mut self) {
        if self.defer_put {
            mmput_async(core::mem::take(&mut *self.held.lock()));
        }
    }
}

/// Address spaces whose references reclaim walks held (Linux
/// `mmput_async`), to be dropped, and torn down if they were the last,
/// by [`mmput_async_drain`] in a context that holds no lock of an
/// allocation's caller: kswapd, which [`mmput_async`] wakes for it and
/// which drains after each run (Linux's system workqueue), or the next
/// `mm_alloc`. A process that exited while a walk held its address
/// space has its memory back soon after, not at the next reclaim. A sleeping
/// mutex; allocating under it is allowed (a reclaimer's allocations never
/// reclaim, so never come back here).
static MMPUT_ASYNC: crate::sync::Mutex<Vec<MmRef>> = crate::sync::Mutex::new(Vec::new());

/// Queues references for [`mmput_async_drain`]; without room for them,
/// drops them at once, with a warning.
fn mmput_async(mms: Vec<MmRef>) {
    if mms.is_empty() {
        return;
    }
    let mut list = MMPUT_ASYNC.lock();
    if list.try_reserve(mms.len()).is_ok() {
        list.extend(mms);
        drop(list);
        crate::filemap::wake_kswapd();
    } else {
        drop(list);
        log::warn!("mm: no memory to defer {} address-space references; dropping them in reclaim", mms.len());
    }
}

/// Brings back, in every address space, the pages swapped out to area
/// `ty` (Linux `try_to_unuse`'s walk over `init_mm.mmlist`): each under
/// its mmap lock held for reading. Returns the pages brought back; a
/// failure (no memory, a read error) is logged and ends the walk.
pub(crate) fn unuse_swap_area(ty: u32) -> u64 {
    let mut done = 0;
    for mm in mms_by_id(&[], true) {
        match mm.mmap_read_lock().unuse_swap_area(ty) {
            Ok(n) => done += n,
            Err(e) => {
                log::warn!("swapoff: bringing pages back from swap area {ty}: {e:?}");
                break;
            }
        }
    }
    done
}

/// Drops the references reclaim walks left (see [`MMPUT_ASYNC`]).
pub fn mmput_async_drain() {
    let mms = core::mem::take(&mut *MMPUT_ASYNC.lock());
    drop(mms);
}

impl RmapMms<'static, X86PteFormat, SlabVmas> for RmapWalk<'_> {
    fn vma_alloc(&self) -> &SlabVmas {
        &self.caches
    }

    /// Each lock is only tried: an address space someone else holds for
    /// writing (or a writer waits on) is left out. On allocation failure
    /// fewer are passed, with a warning; the walk then reports itself
    /// incomplete.
    fn with_mms(&self, ids: &[MmId], all: bool, f: &mut mm::rmap::WithMms<'_, 'static, X86PteFormat, SlabVmas>) {
        let mms = mms_by_id(ids, all);
        let mut guards = Vec::new();
        let mut refs: Vec<&UserMm> = Vec::new();
        if guards.try_reserve(mms.len()).is_err() || refs.try_reserve(mms.len()).is_err() {
            log::warn!("mm: no memory to lock {} address spaces for a reverse-map walk", mms.len());
        }
        for mm in &mms {
            if guards.len() < guards.capacity()
                && let Some(guard) = mm.mmap_read_trylock()
            {
                guards.push(guard);
            }
        }
        refs.extend(guards.iter().map(|guard| &**guard));
        f(&refs);
        drop(refs);
        drop(guards);
        let mut held = self.held.lock();
        for mm in mms {
            // Without room to keep it, a reference that may be the last
            // is dropped at once. A teardown then could wait for the lock
            // of the file page the walker holds (reclaim's), if it
            // truncated that file; reclaim walkers allocate from the
            // reserves (`PF_MEMALLOC`), so this needs them exhausted too.
            if held.iter().any(|h| Arc::ptr_eq(h, &mm)) || held.try_reserve(1).is_err() {
                continue;
            }
            held.push(mm);
        }
    }

    /// Through the table of page caches by id; the walker holds the lock
    /// of a page of `mapping`, which keeps the cache alive.
    fn i_mmap(&self, mapping: u64, f: &mut dyn FnMut(&IMmap)) {
        let _ = crate::filemap::with_mapping(mapping, |cache| f(cache.i_mmap()));
    }

    fn migrate_mapping(&self, mapping: u64, index: u64, old: Pfn, new: Pfn) -> bool {
        crate::filemap::with_mapping(mapping, |cache| cache.migrate_folio(index, old, new)).unwrap_or(false)
    }

    fn folio_waits(&self) -> &dyn mm::arch::FolioWaitTable {
        &FOLIO_WAIT
    }

    /// The kernel is not preemptible: a run over a large zone gives the
    /// CPU away here when the tick asked for it.
    fn cond_resched(&self) -> ControlFlow<()> {
        crate::sched::cond_resched();
        if (self.stop)() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }
}
