//! The page cache as the kernel runs it: the read and write paths of
//! regular files (Linux `mm/filemap.c`: `filemap_read`,
//! `filemap_get_pages`, `generic_perform_write`, `filemap_fdatawrite`,
//! `filemap_write_and_wait_range`; `mm/truncate.c`:
//! `truncate_inode_pages_range`, `invalidate_mapping_pages`;
//! `mm/readahead.c` in [`readahead`]; `mm/page-writeback.c`'s
//! `write_cache_pages`), over the mm crate's [`AddressSpace`],
//! [`mm::page_writeback`] and [`mm::readahead`].
//!
//! A file system whose files have a page cache gives its inodes
//! [`AddressSpaceOperations`] (ext2: blocks through `get_block`); the VFS
//! gives each such inode a [`Mapping`] ([`crate::fs::inode::Inode`]'s
//! `i_mapping`), and `read(2)`, `write(2)`, `truncate`, `fsync` and
//! `sync` of the file go through it:
//! - **read**: [`filemap_read`] copies from cached pages, bringing missing
//!   ones in with [`mm::readahead`]'s on-demand windows (the file's
//!   [`FileRaState`] lives in the open file) and starting the next window
//!   when it reaches a page marked `PG_readahead`. A window's pages are
//!   added locked and not uptodate and their reads started without
//!   waiting ([`readahead`]); a reader that needs a page under a read
//!   sleeps until its lock goes ([`read_cache_page`]), and reads it
//!   itself, with `read_folio`, if that read failed or the page was not
//!   cached at all.
//! - **write**: [`generic_perform_write`] lets the file system allocate
//!   blocks first (`write_begin`, so a full disk is ENOSPC before any
//!   byte is copied), copies into locked cache pages (reading a page first
//!   when only part of it is written), marks them dirty, and records the
//!   new size and times (`write_end`). Dirty pages reach the disk when
//!   [`writeback`] writes the inode: `fsync`, `sync`, unmount, the
//!   flusher ([`crate::fs::fs_writeback`]).
//! - **truncate**: [`truncate_pagecache`] drops the pages past the new end
//!   (dirty or not) after waiting for their writeback, and zeroes the
//!   tail of the last partial page, before the file system frees blocks.
//! - **errors**: a failed read is EIO for the reader that needs the page
//!   (a failed readahead read leaves the page not uptodate in the cache,
//!   and that reader's own read fails; a failed `read_folio` takes the
//!   page out of the cache); a failed write-back is recorded in the mapping's
//!   [`mm::errseq::ErrSeq`] and the next `fsync` of every open file
//!   reports it once (Linux `filemap_check_wb_err`), the data staying in
//!   the cache.
//!
//! A shmem file's cache (tmpfs, memfd, shared anonymous memory: see
//! [`crate::shmem`]) is the file itself: its pages are `PG_swapbacked`
//! and never written back ([`writeback`] finds nothing to write, as
//! Linux's `mapping_can_writeback` is false for shmem), so `fsync` and
//! `sync` have nothing to wait for; `drop_caches`
//! ([`invalidate_mapping_pages`]) leaves them alone; reclaim sends them
//! to swap, leaving each one's swap entry at its index
//! ([`mm::shmem`]'s "Swap"), and every lookup here that finds such an
//! entry swaps the page back in ([`crate::shmem::shmem_get_folio`]):
//! the fault, `write(2)`, a new page's insertion that finds the entry
//! (`add_new_locked`), truncation's partial pages. Truncation, hole
//! punching and the file's end free pages and swap entries alike. A
//! shmem file reads its holes as zeros without adding pages
//! (`shmem::shmem_file_read`) and has no readahead.
//!
//! A [`Mapping`] is reference-counted: the VFS inode holds it (ext2's
//! live as long as that inode), or the file system does (a tmpfs file's
//! lives as long as the file); the last reference empties it ([`Drop`]).
//!
//! Page lock order: `i_rwsem` -> page lock (`PG_locked`) -> the file
//! system's lock -> the mapping's lock. The swap areas' and the swap
//! cache's locks are never taken under it: a shmem swap entry taken out
//! of the index has its slot freed after the lock. The mapping's lock is a leaf
//! `SpinLockIrq` (Linux's `xa_lock_irq` on `i_pages`), held only to look
//! up, add, remove or mark entries; nothing sleeps or calls a file system
//! under it. A page lock taken for a read is released by the read's
//! completion, in interrupt context ([`folio_end_read`]): the folio wait
//! table's queues ([`crate::mmap::FOLIO_WAIT`]) take interrupt-safe locks
//! for that reason.
//!
//! Differences from Linux: `read_folio` (one page) and write-back (runs
//! of up to 32 pages) go through the file system's synchronous calls and
//! a kernel buffer (only readahead reads straight into the pages, and
//! only on a disk with an interrupt);
//! no large folios. Page-cache pages join the LRU lists when cached
//! ([`mm::swap`]); kswapd and an allocation that finds no memory take
//! clean, unused ones back from the inactive file list ([`mm::vmscan`],
//! registered as the allocator's direct reclaim and kswapd), and
//! [`invalidate_mapping_pages`] (`drop_caches`) drops them all, but
//! shmem's.
//!
//! Reclaim leaves a shadow entry where it evicts ([`mm::workingset`]):
//! every lookup here takes it for a hole, a page added at its index for a
//! read (not a write, Linux's `__GFP_WRITE`) is a refault and may join the
//! active list at once, and truncation, [`invalidate_mapping_range`] and
//! the mapping's [`Drop`] (inode eviction) take shadows away with their
//! range.

// Only the page copies of `folio` use `unsafe`, and say so there.
#![deny(unsafe_code)]

pub mod fadvise;
mod folio;
mod readahead;

pub(crate) use folio::with_mapping;
mod vm_file;

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mm::addr::{PAGE_SIZE, Pfn};
use mm::filemap::{AddFolioError, AddressSpace, CacheEntry, MappingId, folio_lock, folio_trylock, folio_unlock};
use mm::gfp::{GFP_HIGHUSER_MOVABLE, Gfp};
use mm::interval_tree::IMmap;
use mm::page_alloc::PgData;
use mm::page_flags::PageFlags;
use mm::page_writeback::{self, SyncMode, WritebackControl};
use mm::readahead::{FileRaState, RaMapping, page_cache_async_ra, page_cache_sync_ra};
use mm::swapops::SwpEntry;
use mm::vmscan::{DirectReclaim, Kswapd, Reclaimer, SWAP_CLUSTER_MAX};
use mm::vmstat::VmEventItem;
use mm::workingset::workingset_refault;
use mm::xarray::{PAGECACHE_TAG_DIRTY, PAGECACHE_TAG_WRITEBACK, XaNode};
use spin::Once;
use uapi::errno::Errno;

pub use self::folio::FolioRef;
pub use self::readahead::{
    RA_TRACE_EVENTS, ReadaheadControl, force_page_cache_readahead, ra_trace_start, ra_trace_stop,
};
use self::readahead::{ra_limits, run_readahead};
pub use self::vm_file::{MappedFile, VmaOpenClose};
use crate::fs::inode::{Ino, Inode};
use crate::mmap::FOLIO_WAIT;
use crate::slab::KmemCacheOf;
use crate::sync::SpinLockIrq;

/// Bytes per cache page.
const PAGE: usize = PAGE_SIZE as usize;

/// How many times an insertion retries after its index's node allocation
/// failed under the lock (each retry first allocates outside it).
const NOMEM_RETRIES: u32 = 3;

/// What a file system does for its files' page caches (Linux `struct
/// address_space_operations`, with the `write_begin`/`write_end` pair
/// reduced to what block allocation and the size need).
pub trait AddressSpaceOperations: Send + Sync {
    /// Fills `buf` with page `index` of the file: zeros in holes and past
    /// the end (Linux `read_folio`).
    fn read_folio(&self, index: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Gets the file ready for `len` bytes at `pos`: allocates the blocks
    /// under them (Linux `write_begin`'s `get_block` with `create`).
    /// ENOSPC here fails the write before anything was copied.
    fn write_begin(&self, pos: u64, len: u64) -> Result<(), Errno>;
    /// Records a write that ended at byte `end`: the size grows to it,
    /// the modification time is now (Linux `generic_write_end` and
    /// `file_update_time`).
    fn write_end(&self, end: u64) -> Result<(), Errno>;
    /// Writes `data`, the bytes of the pages from `index` on up to the end
    /// of the file with the rest of its last block zero, to their blocks
    /// (Linux `writepages` over `get_block`: pages in a row go in as few
    /// requests as their blocks allow).
    fn writepages(&self, index: u64, data: &[u8]) -> Result<(), Errno>;
    /// Starts reading the batch's new pages, locked and not uptodate
    /// (Linux `readahead`): every page it takes it ends with
    /// [`folio_end_read`], now or when its read completes, without the
    /// caller waiting; pages left in the batch leave the cache. By
    /// default the pages are read before it returns, one
    /// [`read_folio`](Self::read_folio) each.
    fn readahead(&self, rac: ReadaheadControl<'_>) -> Result<(), Errno> {
        rac.read_with(|index, buf| {
            buf.chunks_mut(PAGE)
                .enumerate()
                .try_for_each(|(i, page)| self.read_folio(index.saturating_add(i as u64), page))
        })
    }
}

/// Pages read or written back with one call of the file system at most
/// (Linux's bio of a readahead window or a `writepages` batch, 128 KiB).
const MAX_RUN: usize = 32;

/// The page cache's index nodes (Linux `radix_tree_node_cachep`),
/// allocated with `GFP_NOWAIT` under the mapping lock.
pub type PageCacheNodes = &'static KmemCacheOf<XaNode<CacheEntry>>;

static XA_NODES: Once<Option<KmemCacheOf<XaNode<CacheEntry>>>> = Once::new();

pub(crate) fn xa_nodes() -> Result<PageCacheNodes, Errno> {
    XA_NODES
        .call_once(|| {
            let slab = crate::slab::slab()?;
            KmemCacheOf::create(slab, "radix_tree_node", mm::slub::SlabFlags::RECLAIM_ACCOUNT)
                .map(KmemCacheOf::nowait)
                .map_err(|e| log::error!("page cache: cannot create the radix_tree_node cache: {e:?}"))
                .ok()
        })
        .as_ref()
        .ok_or(Errno::ENOMEM)
}

/// Mapping ids: distinct, non-zero, 8-byte aligned words.
static NEXT_MAPPING_ID: AtomicU64 = AtomicU64::new(8);

/// One file's page cache in the kernel: the mm crate's [`AddressSpace`]
/// under its interrupt-safe lock. In an `Arc`, so that reclaim can find
/// it by its id at a fixed address until its drop unregisters it.
pub struct Mapping {
    space: SpinLockIrq<AddressSpace<PageCacheNodes>>,
    id: MappingId,
    /// shmem's: never written back; reclaimed to swap.
    swapbacked: bool,
    /// The file's size as the VFS knows it (Linux `inode->i_size`): a
    /// write grows it page by page under each page's lock, before the
    /// page can be written back, so write-back never takes a new page
    /// for one past the end; the file system learns it at `write_end`.
    i_size: AtomicU64,
    /// The cached file's device (its superblock's `st_dev`) and inode
    /// number: what Linux reaches through `mapping->host`, kept as the
    /// two numbers that name the file in logs and in gdb/mm.py's
    /// `mm-page` and `mm-pagecache` (which find a page's `Mapping` by its
    /// id through `folio::MAPPINGS`).
    dev: u64,
    ino: Ino,
    /// The VMAs mapping the file, by page offset (Linux `i_mmap`): what
    /// writeback's `folio_mkclean` and truncation's unmap walk.
    i_mmap: IMmap,
}

/// A cached file as messages name it, "inode INO (dev MAJ:MIN)": the
/// words of gdb/mm.py's `mm-page`, the device as
/// [`crate::fs::inode::SuperBlock::dev_name`] shows it.
struct Host {
    dev: u64,
    ino: Ino,
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "inode {} (dev {}:{})", self.ino, self.dev >> 8, self.dev & 0xff)
    }
}

/// Reclaim as the allocator runs it (see [`mm::vmscan`]): clean,
/// unused page-cache pages from the LRU's inactive file list, unmapped
/// through the reverse map, then the slab shrinkers. The task is marked
/// as reclaiming meanwhile (Linux `PF_MEMALLOC`), so that the walks'
/// allocations take the reserves and never reclaim in turn; it never
/// waits on a lock. The shrinkers get the allocation's mask without
/// `__GFP_FS`, because this kernel has no `memalloc_nofs_save` scopes and
/// an allocation made under a file system's lock asks `GFP_KERNEL` (see
/// [`crate::fs::shrinker`]); what the file-system shrinkers cannot do
/// here is deferred to kswapd. A pass that freed nothing while pages
/// are under writeback waits for some of it ([`reclaim_throttle`]).
struct KernelReclaim;

impl DirectReclaim for KernelReclaim {
    fn try_to_free_pages(&self, pgdat: &PgData<'_>, gfp: Gfp, _order: u32) -> u64 {
        let gfp = gfp.difference(Gfp::FS);
        let freed = {
            let _memalloc = crate::sched::memalloc_noreclaim_save();
            let caches = folio::KernelCaches::new();
            mm::vmscan::shrink_page_cache(pgdat, &caches, &FOLIO_WAIT, SWAP_CLUSTER_MAX, Reclaimer::Direct, gfp)
        };
        if freed == 0 && !crate::sched::in_atomic() {
            reclaim_throttle(pgdat);
        }
        freed
    }

    fn current_is_memalloc(&self) -> bool {
        crate::sched::current_is_memalloc()
    }
}

static RECLAIM: KernelReclaim = KernelReclaim;

/// `madvise(MADV_PAGEOUT)` on the address space `mm` (Linux
/// `madvise_pageout` -> `reclaim_pages`): under its mmap lock held for
/// reading, the pages only it maps are reclaimed at once through the
/// reverse map ([`mm::mmap::MmStruct::madvise_pageout`]), the task marked
/// as reclaiming meanwhile (Linux `memalloc_noreclaim_save` in
/// `reclaim_pages`). Sleeps (the mmap lock).
pub fn madvise_pageout(mm: &crate::mmap::Mm, start: u64, len: u64) -> Result<(), Errno> {
    let guard = mm.mmap_read_lock();
    let _memalloc = crate::sched::memalloc_noreclaim_save();
    let caches = folio::KernelCaches::new();
    guard.madvise_pageout(start, len, &caches, &FOLIO_WAIT)
}

/// A direct reclaimer that freed nothing waits for the writeback in
/// flight (Linux `reclaim_throttle(pgdat, VMSCAN_THROTTLE_WRITEBACK)`):
/// until `SWAP_CLUSTER_MAX` pages finished it, or all did, or 100 ms
/// (`HZ/10`) passed. The pages reclaim wrote (swap-outs above all, which
/// the disk takes longer to finish than reclaim takes to go round its
/// lists) are then freeable, where without the wait the allocation's
/// retries run out and the OOM killer fires with swap free. Linux
/// throttles when `shrink_node` met pages it had marked for reclaim
/// still under writeback (`nr.immediate`) and is woken by the writeback's
/// end (`__acct_reclaim_writeback`); this kernel throttles on no progress
/// with writeback pending and polls every 5 ms. May sleep.
fn reclaim_throttle(pgdat: &PgData<'_>) {
    const TIMEOUT_NS: u64 = 100_000_000;
    const POLL_NS: u64 = 5_000_000;
    let writeback = || pgdat.node_page_state(mm::vmstat::NodeStatItem::NrWriteback);
    let start = writeback();
    if start == 0 {
        return;
    }
    let now = crate::arch::x86_64::tsc::now_ns;
    let deadline = now().saturating_add(TIMEOUT_NS);
    while now() < deadline {
        crate::sched::wait::sleep_until_ns(now().saturating_add(POLL_NS).min(deadline), || false);
        let left = writeback();
        if left == 0 || start.saturating_sub(left) >= SWAP_CLUSTER_MAX {
            return;
        }
    }
}

/// The node's kswapd thread, `kswapd0` (Linux `kswapd`): it sleeps until
/// an allocation's slow path wakes it, then reclaims from the page
/// cache and the slab shrinkers (with `GFP_KERNEL`: it holds no lock, so
/// the file-system shrinkers may sleep in it) until every zone is above
/// its high watermark ([`mm::vmscan::balance_pgdat`]), hands the order it
/// was woken for to kcompactd
/// ([`mm::compaction::wakeup_kcompactd_from_kswapd`]), and sleeps again.
struct KernelKswapd {
    task: Once<Option<Arc<crate::sched::Task>>>,
    /// Set by a wakeup, cleared by kswapd before each run: a wakeup
    /// during a run makes another.
    woken: AtomicBool,
}

impl Kswapd for KernelKswapd {
    /// Safe in any context: a flag and `wake_up_process`, which takes
    /// only interrupt-safe spin locks and allocates nothing.
    fn wakeup(&self, _order: u32) {
        if !self.woken.swap(true, Ordering::AcqRel)
            && let Some(Some(task)) = self.task.get()
        {
            crate::sched::wake_up_process(task);
        }
    }
}

static KSWAPD: KernelKswapd = KernelKswapd { task: Once::new(), woken: AtomicBool::new(false) };

/// Wakes kswapd for the work it does after each run besides reclaim
/// (dropping the address-space references reclaim walks left,
/// [`crate::mmap::mmput_async_drain`]). Safe in any context.
pub(crate) fn wake_kswapd() {
    KSWAPD.wakeup(0);
}

/// kswapd between runs (Linux `kswapd_try_to_sleep`): once the node is
/// balanced (or hopeless), a nap of 100 ms (`HZ/10`), then, if nothing
/// woke it and the node is still balanced, sleep until woken. Woken
/// during the nap counts `kswapd_low_wmark_hit_quickly`; the node out of
/// balance when the nap ends, `kswapd_high_wmark_hit_quickly`.
fn kswapd_try_to_sleep(pgdat: &PgData<'_>) {
    /// Linux's `HZ/10`.
    const NAP_NS: u64 = 100_000_000;
    let woken = || KSWAPD.woken.load(Ordering::Acquire);
    if woken() || !mm::vmscan::prepare_kswapd_sleep(pgdat) {
        return;
    }
    let deadline = crate::arch::x86_64::tsc::now_ns().saturating_add(NAP_NS);
    if !crate::sched::wait::sleep_until_ns(deadline, woken) {
        pgdat.count_vm_event(VmEventItem::KswapdLowWmarkHitQuickly);
        return;
    }
    if !mm::vmscan::prepare_kswapd_sleep(pgdat) {
        pgdat.count_vm_event(VmEventItem::KswapdHighWmarkHitQuickly);
        return;
    }
    crate::sched::wait::sleep_until_ns(u64::MAX, woken);
}

/// Whether the running task is kswapd (Linux `current_is_kswapd`).
pub fn current_is_kswapd() -> bool {
    KSWAPD.task.get().and_then(Option::as_ref).is_some_and(|task| Arc::ptr_eq(task, &crate::sched::current()))
}

/// Starts kswapd and registers it with the allocator, once.
fn start_kswapd() {
    KSWAPD.task.call_once(|| {
        let spawned = crate::sched::kthread_run("kswapd0", || {
            // Linux's kswapd runs with `PF_MEMALLOC` for good.
            let _memalloc = crate::sched::memalloc_noreclaim_save();
            loop {
                kswapd_try_to_sleep(crate::mm::pgdat());
                KSWAPD.woken.store(false, Ordering::Release);
                let caches = folio::KernelCaches::new();
                mm::vmscan::balance_pgdat(crate::mm::pgdat(), &caches, &FOLIO_WAIT);
                drop(caches);
                crate::mmap::mmput_async_drain();
                mm::compaction::wakeup_kcompactd_from_kswapd(crate::mm::pgdat());
                crate::sched::cond_resched();
            }
        });
        spawned.map_err(|e| log::error!("vmscan: no kswapd thread: {e:?}")).ok()
    });
    crate::mm::pgdat().set_kswapd(&KSWAPD);
}

impl Mapping {
    /// An empty cache of file `ino` of device `dev`, `size` bytes long;
    /// `swapbacked` for shmem files. The first one registers page-cache
    /// reclaim with the allocator.
    pub fn new(dev: u64, ino: Ino, swapbacked: bool, size: u64) -> Result<Arc<Mapping>, Errno> {
        let nodes = xa_nodes()?;
        crate::mm::pgdat().set_direct_reclaim(&RECLAIM);
        start_kswapd();
        let id = NEXT_MAPPING_ID.fetch_add(8, Ordering::Relaxed);
        let id = MappingId::new(id).ok_or(Errno::ENOMEM)?;
        let space = SpinLockIrq::new(AddressSpace::new(id, swapbacked, nodes));
        let mapping =
            Arc::new(Mapping { space, id, swapbacked, i_size: AtomicU64::new(size), dev, ino, i_mmap: IMmap::new() });
        // swapoff must find every shmem file that may hold swap entries.
        if swapbacked {
            crate::shmem::shmem_swaplist_add(&mapping)?;
        }
        if !folio::register(id, &mapping) {
            log::warn!("page cache: no memory to list {} for reclaim", mapping.host());
        }
        Ok(mapping)
    }

    /// Whether it is a shmem file's (Linux `shmem_mapping`): the only
    /// copy of the data, never written back.
    pub fn is_swapbacked(&self) -> bool {
        self.swapbacked
    }

    /// Marks `folio`, this cache's page at `index`, dirty if it still is
    /// (Linux `filemap_dirty_folio`).
    fn mark_dirty(&self, folio: &FolioRef, index: u64) {
        let mut space = self.space.lock();
        if space.lookup(index) == Some(folio.pfn()) {
            page_writeback::folio_mark_dirty(&mut space, crate::mm::pgdat(), folio.page(), index);
        }
    }

    /// Takes the locked, clean `pfn` out at `index` for reclaim, leaving
    /// its shadow (Linux `__remove_mapping`); the cache's reference
    /// becomes the caller's.
    fn remove_clean(&self, pgdat: &PgData<'_>, index: u64, pfn: Pfn) -> bool {
        self.space.lock().remove_mapping(pgdat, index, pfn)
    }

    /// Trades the locked shmem page `pfn` at `index`, which reclaim is
    /// sending to swap, for its swap entry (see
    /// `mm::filemap::AddressSpace::shmem_delete_from_page_cache`).
    fn shmem_delete_from_page_cache(&self, pgdat: &PgData<'_>, index: u64, pfn: Pfn, entry: SwpEntry) -> bool {
        self.space.lock().shmem_delete_from_page_cache(pgdat, index, pfn, entry, mm::shmem::SHMEM_WRITEOUT_REFS)
    }

    /// The page at `index` with a reference, or the swap entry a shmem
    /// page in swap left there; `None` for a hole (Linux
    /// `filemap_get_entry`).
    pub(crate) fn get_entry(&self, index: u64) -> Option<Result<FolioRef, SwpEntry>> {
        let space = self.space.lock();
        match space.lookup_entry(index)? {
            CacheEntry::Folio(pfn) => FolioRef::get(pfn).map(Ok),
            CacheEntry::Swap(radix) => Some(Err(radix.entry())),
            CacheEntry::Shadow(_) => None,
        }
    }

    /// Puts the locked page `pfn`, swapped in from `expected`, back at
    /// `index` if the index still holds that entry (see
    /// `mm::filemap::AddressSpace::shmem_add_to_page_cache`).
    pub(crate) fn shmem_add_to_page_cache(&self, pfn: Pfn, index: u64, expected: SwpEntry) -> bool {
        self.space.lock().shmem_add_to_page_cache(crate::mm::pgdat(), pfn, index, expected)
    }

    /// Takes the first swap entry in `start..=end` out of the index (its
    /// slot's count is the caller's to free).
    pub(crate) fn shmem_take_swap(&self, start: u64, end: u64) -> Option<(u64, SwpEntry)> {
        self.space.lock().shmem_take_swap(start, end)
    }

    /// The first swap entry in `start..=end`, of area `ty` if given.
    pub(crate) fn find_swap(&self, start: u64, end: u64, ty: Option<u32>) -> Option<(u64, SwpEntry)> {
        self.space.lock().find_swap(start, end, ty)
    }

    /// A shmem file's pages in swap (Linux `shmem_inode_info.swapped`).
    pub fn swapped(&self) -> u64 {
        self.space.lock().swapped()
    }

    /// The cached file, for messages.
    fn host(&self) -> Host {
        Host { dev: self.dev, ino: self.ino }
    }

    /// The file's size (Linux `i_size_read`).
    pub fn i_size(&self) -> u64 {
        self.i_size.load(Ordering::Acquire)
    }

    /// Sets the file's size (Linux `i_size_write`); the caller holds
    /// `i_rwsem`.
    pub fn set_i_size(&self, size: u64) {
        self.i_size.store(size, Ordering::Release);
    }

    /// Checks the cache's invariants ([`AddressSpace::check`]), for tests.
    pub fn check(&self) -> Result<(), &'static str> {
        self.space.lock().check(crate::mm::pgdat())
    }

    /// The id its pages' `mapping` holds (Linux's `address_space` pointer).
    pub fn id(&self) -> MappingId {
        self.id
    }

    /// Puts `new` in place of `old` at `index` for migration (Linux
    /// `filemap_migrate_folio`; see `mm::filemap::AddressSpace::migrate_folio`).
    pub(crate) fn migrate_folio(&self, index: u64, old: Pfn, new: Pfn) -> bool {
        self.space.lock().migrate_folio(crate::mm::pgdat(), index, old, new)
    }

    /// The VMAs mapping the file (Linux `i_mmap`).
    pub fn i_mmap(&self) -> &IMmap {
        &self.i_mmap
    }

    /// Pages cached.
    pub fn nrpages(&self) -> u64 {
        self.space.lock().nrpages()
    }

    /// Shadow entries of evicted pages in the index (see
    /// [`mm::workingset`]).
    pub fn nr_shadows(&self) -> u64 {
        self.space.lock().nr_shadows()
    }

    /// Whether any page is dirty (Linux `mapping_tagged(PAGECACHE_TAG_DIRTY)`).
    pub fn has_dirty(&self) -> bool {
        self.space.lock().tagged(PAGECACHE_TAG_DIRTY)
    }

    /// The writeback error sequence's sample for a new opener (Linux
    /// `filemap_sample_wb_err`).
    pub fn sample_wb_err(&self) -> mm::errseq::ErrSeqSample {
        self.space.lock().wb_err.sample()
    }

    /// The writeback error since `since`, reported once per sample
    /// (Linux `file_check_and_advance_wb_err`).
    pub fn check_and_advance_wb_err(&self, since: &mut mm::errseq::ErrSeqSample) -> Result<(), Errno> {
        match self.space.lock().wb_err.check_and_advance(since) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The page at `index` with a reference, if cached (Linux
    /// `filemap_get_folio` without `FGP_LOCK`).
    pub fn find_get(&self, index: u64) -> Option<FolioRef> {
        let space = self.space.lock();
        space.lookup(index).and_then(FolioRef::get)
    }

    /// Whether `folio` is still this cache's page at `index` (a page
    /// truncated meanwhile has left it).
    fn owns(&self, folio: &FolioRef, index: u64) -> bool {
        self.space.lock().lookup(index) == Some(folio.pfn())
    }

    /// Puts a new page, locked, at `index`: `Ok(Ok(page))` with the
    /// caller's reference, or `Ok(Err(page))` if another task was first
    /// (its page, referenced). Linux `filemap_add_folio` with its
    /// `xas_nomem` retry: the index's nodes are allocated without sleeping
    /// under the lock, and with `GFP_KERNEL` outside it when that fails.
    /// A page replacing the shadow of one reclaim evicted is a refault
    /// ([`workingset_refault`], which may activate it), unless `gfp` has
    /// `__GFP_WRITE`: a page about to be overwritten says nothing about
    /// the workingset.
    fn add_new_locked(&self, index: u64, gfp: Gfp) -> Result<Result<FolioRef, FolioRef>, Errno> {
        let pgdat = crate::mm::pgdat();
        let pfn = pgdat.alloc_pages(gfp, 0).ok_or(Errno::ENOMEM)?;
        let folio = FolioRef::from_new(pfn).ok_or(Errno::ENOMEM)?;
        if !folio_trylock(folio.page()) {
            return Err(Errno::EIO);
        }
        for _ in 0..=NOMEM_RETRIES {
            let mut space = self.space.lock();
            match space.add_folio(pgdat, pfn, index) {
                Ok(shadow) => {
                    drop(space);
                    if let Some(shadow) = shadow
                        && !gfp.contains(Gfp::WRITE)
                    {
                        workingset_refault(pgdat, folio.page(), shadow);
                    }
                    // Linux `filemap_add_folio`'s `folio_add_lru`.
                    pgdat.folio_add_lru(pfn);
                    return Ok(Ok(folio));
                }
                Err(AddFolioError::Exists(other)) => {
                    let other = FolioRef::get(other).ok_or(Errno::EIO);
                    drop(space);
                    folio_unlock(folio.page(), pfn, &FOLIO_WAIT);
                    return other.map(Err);
                }
                Err(AddFolioError::NoMemory) => {
                    drop(space);
                    if !xa_nodes()?.preload(mm::xarray::XA_MAX_STORE_NODES) {
                        break;
                    }
                }
                Err(AddFolioError::Swap(_)) => {
                    drop(space);
                    // A shmem page went to swap since the caller looked:
                    // it comes back instead of a new page (Linux
                    // `shmem_get_folio_gfp` finding the swap entry).
                    match crate::shmem::shmem_get_folio(self, index) {
                        // Truncated meanwhile: a hole again, for our page.
                        Ok(None) => {}
                        found => {
                            folio_unlock(folio.page(), pfn, &FOLIO_WAIT);
                            return found.and_then(|theirs| theirs.map(|(f, _)| Err(f)).ok_or(Errno::EIO));
                        }
                    }
                }
            }
        }
        folio_unlock(folio.page(), pfn, &FOLIO_WAIT);
        Err(Errno::ENOMEM)
    }

    /// Takes the locked `folio` at `index` out of the cache, if it is
    /// still there (Linux `filemap_remove_folio`).
    fn remove(&self, folio: &FolioRef, index: u64) {
        let removed = {
            let mut space = self.space.lock();
            if space.lookup(index) == Some(folio.pfn()) {
                space.remove_folio(crate::mm::pgdat(), index).and_then(FolioRef::from_new)
            } else {
                None
            }
        };
        // The cache's reference goes here, after the lock.
        drop(removed);
    }
}

/// The inode's cache and its file system's operations.
fn parts(inode: &Inode) -> Result<(&Mapping, &dyn AddressSpaceOperations), Errno> {
    match (inode.i_mapping.as_ref(), inode.ops.a_ops()) {
        (Some(m), Some(a)) => Ok((m, a)),
        _ => Err(Errno::EINVAL),
    }
}

/// Reads page `index` into the locked, not uptodate `folio`, and marks it
/// uptodate; on failure takes it out of the cache. Unlocks it either way.
fn fill_locked(
    mapping: &Mapping,
    a_ops: &dyn AddressSpaceOperations,
    folio: &FolioRef,
    index: u64,
) -> Result<(), Errno> {
    let result = read_into(a_ops, folio, index);
    match result {
        Ok(()) => folio.page().set(PageFlags::UPTODATE),
        Err(e) => {
            log::warn!("page cache: read of page {index} of {} failed: {e}", mapping.host());
            mapping.remove(folio, index);
        }
    }
    folio_unlock(folio.page(), folio.pfn(), &FOLIO_WAIT);
    result
}

fn read_into(a_ops: &dyn AddressSpaceOperations, folio: &FolioRef, index: u64) -> Result<(), Errno> {
    let mut buf = page_buffer()?;
    a_ops.read_folio(index, &mut buf)?;
    folio.write(0, &buf)?;
    crate::mm::pgdat().count_vm_events(mm::vmstat::VmEventItem::Pgpgin, (PAGE / 1024) as u64);
    Ok(())
}

/// A page-sized kernel buffer for one transfer (ENOMEM, not a panic).
fn page_buffer() -> Result<Box<[u8]>, Errno> {
    let mut v = alloc::vec::Vec::new();
    v.try_reserve_exact(PAGE).map_err(|_| Errno::ENOMEM)?;
    v.resize(PAGE, 0);
    Ok(v.into_boxed_slice())
}

/// Ends a read of `folio`, locked and not uptodate: marks it uptodate if
/// the read succeeded, and unlocks it, waking its waiters (Linux
/// `folio_end_read`, as `mpage_end_io` calls it). A failed read leaves it
/// not uptodate in the cache: the next reader reads it again and gets
/// the error (Linux clears `PG_uptodate` and sets `PG_error`; ours was
/// never set). Called from the I/O's completion, in interrupt context:
/// the folio wait table's queues take interrupt-safe locks.
pub fn folio_end_read(folio: &FolioRef, success: bool) {
    if success {
        folio.page().set(PageFlags::UPTODATE);
    }
    folio_unlock(folio.page(), folio.pfn(), &FOLIO_WAIT);
}

/// The uptodate page at `index`, read if it is not cached (Linux
/// `read_cache_folio` / `filemap_get_pages` for one page). Sleeps.
pub fn read_cache_page(inode: &Inode, index: u64) -> Result<FolioRef, Errno> {
    read_cache_page_major(inode, index).map(|(folio, _)| folio)
}

/// [`read_cache_page`], and whether this call read the page from the
/// file system or, a shmem page, from swap (a major fault, for
/// `filemap_fault`; a shmem hole filled with zeros is minor).
fn read_cache_page_major(inode: &Inode, index: u64) -> Result<(FolioRef, bool), Errno> {
    let (mapping, a_ops) = parts(inode)?;
    loop {
        let folio = match find_get_or_swapin(mapping, index)? {
            Some((folio, true)) => return Ok((folio, true)),
            Some((folio, false)) => folio,
            None => match mapping.add_new_locked(index, GFP_HIGHUSER_MOVABLE)? {
                Ok(new) => {
                    fill_locked(mapping, a_ops, &new, index)?;
                    return Ok((new, !mapping.swapbacked));
                }
                Err(theirs) => theirs,
            },
        };
        if folio.page().test(PageFlags::UPTODATE) {
            return Ok((folio, false));
        }
        // A read is in flight (readahead's I/O, or another task's read),
        // or one failed: wait for the lock to go, without taking it, and
        // look again (Linux `filemap_update_page`'s `folio_wait_locked`).
        mm::filemap::folio_wait_locked(folio.page(), folio.pfn(), &FOLIO_WAIT);
        if folio.page().test(PageFlags::UPTODATE) {
            return Ok((folio, false));
        }
        // Not uptodate with nobody reading it: its read failed, so read
        // it again here, which reports the error (Linux
        // `filemap_read_folio` after `folio_lock`).
        folio_lock(folio.page(), folio.pfn(), &FOLIO_WAIT);
        if !mapping.owns(&folio, index) {
            folio_unlock(folio.page(), folio.pfn(), &FOLIO_WAIT);
            continue;
        }
        if folio.page().test(PageFlags::UPTODATE) {
            folio_unlock(folio.page(), folio.pfn(), &FOLIO_WAIT);
            return Ok((folio, false));
        }
        fill_locked(mapping, a_ops, &folio, index)?;
        return Ok((folio, true));
    }
}

/// The cached page at `index`, or a shmem page swapped in from the
/// swap entry there (then with `true`); `None` for a hole.
fn find_get_or_swapin(mapping: &Mapping, index: u64) -> Result<Option<(FolioRef, bool)>, Errno> {
    if mapping.swapbacked {
        crate::shmem::shmem_get_folio(mapping, index)
    } else {
        Ok(mapping.find_get(index).map(|f| (f, false)))
    }
}

/// `POSIX_FADV_DONTNEED` over bytes `offset..=endbyte` (Linux
/// `generic_fadvise`): starts write-back of the range's dirty pages
/// (`WB_SYNC_NONE`: busy pages are skipped), then drops the clean,
/// unmapped, unused pages wholly inside the range, and the last partial
/// page when the range reaches the end of the file. Our write-back is
/// synchronous, so the pages it wrote are clean and go too (Linux's are
/// still under writeback then and stay).
pub fn fadvise_dontneed(inode: &Inode, offset: u64, endbyte: u64) {
    let Ok((mapping, _)) = parts(inode) else { return };
    let mut wbc = WritebackControl {
        sync_mode: SyncMode::None,
        nr_to_write: u64::MAX,
        start: offset / PAGE_SIZE,
        end: endbyte / PAGE_SIZE,
    };
    // An error is recorded in the mapping for the next fsync.
    let _ = writeback(inode, &mut wbc);
    let start_index = offset.div_ceil(PAGE_SIZE);
    let mut end_index = endbyte / PAGE_SIZE;
    // A partial last page stays, unless it is the file's last page.
    if endbyte % PAGE_SIZE != PAGE_SIZE - 1 && Some(endbyte) != mapping.i_size().checked_sub(1) {
        let Some(before) = end_index.checked_sub(1) else { return };
        end_index = before;
    }
    if end_index >= start_index {
        invalidate_mapping_range(mapping, start_index, end_index);
    }
}

/// Reads file data at `pos` into `buf` through the cache (Linux
/// `filemap_read`): short at the end of the file; an error after some
/// bytes were copied returns those bytes.
pub fn filemap_read(inode: &Inode, ra: &mut FileRaState, pos: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let (mapping, a_ops) = parts(inode)?;
    let size = mapping.i_size();
    if pos >= size || buf.is_empty() {
        return Ok(0);
    }
    let end = size.min(pos.saturating_add(buf.len() as u64));
    let last_index = (end - 1) / PAGE_SIZE;
    let nr_pages = size.div_ceil(PAGE_SIZE);
    let mut done = 0usize;
    while pos + (done as u64) < end {
        let at = pos + done as u64;
        let index = at / PAGE_SIZE;
        let req_count = last_index - index + 1;
        let ra_mapping = RaMapping { cache: &mapping.space, nr_pages, bdi: ra_limits() };
        let folio = match mapping.find_get(index) {
            Some(f) => {
                if f.page().test(PageFlags::READAHEAD) {
                    let decision =
                        page_cache_async_ra(ra, &ra_mapping, index, req_count, f.page().test(PageFlags::WRITEBACK));
                    if decision.clear_readahead {
                        f.page().clear(PageFlags::READAHEAD);
                    }
                    run_readahead(mapping, a_ops, decision);
                }
                Some(f)
            }
            None => {
                run_readahead(mapping, a_ops, page_cache_sync_ra(ra, &ra_mapping, index, req_count));
                None
            }
        };
        // A page not uptodate is under a read (readahead's, maybe just
        // started) or its read failed: this waits for the read, and reads
        // it again after a failure (Linux `filemap_update_page`).
        let folio = match folio {
            Some(f) if f.page().test(PageFlags::UPTODATE) => Ok(f),
            _ => read_cache_page(inode, index),
        };
        let folio = match folio {
            Ok(f) => f,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        let offset = (at % PAGE_SIZE) as usize;
        let n = (PAGE - offset).min((end - at) as usize);
        let Some(dst) = buf.get_mut(done..done + n) else { break };
        folio.read(offset, dst)?;
        // Linux `folio_mark_accessed`, once per page: not again for a read
        // that goes on in the page the last one ended in.
        let same_as_last =
            done == 0 && ra.prev_pos.is_some_and(|p| p.checked_sub(1).map(|b| b / PAGE_SIZE) == Some(index));
        if !same_as_last {
            crate::mm::pgdat().folio_mark_accessed(folio.pfn());
        }
        done += n;
    }
    ra.prev_pos = Some(pos + done as u64);
    Ok(done)
}

/// Writes `buf` at `pos` through the cache (Linux
/// `generic_perform_write`); the caller holds `i_rwsem`. Returns the
/// bytes written: short only if an error came after some were.
pub fn generic_perform_write(inode: &alloc::sync::Arc<Inode>, pos: u64, buf: &[u8]) -> Result<usize, Errno> {
    let (mapping, a_ops) = parts(inode)?;
    if buf.is_empty() {
        return Ok(0);
    }
    let len = buf.len() as u64;
    pos.checked_add(len).ok_or(Errno::EFBIG)?;
    a_ops.write_begin(pos, len)?;
    let size = mapping.i_size();
    let mut done = 0usize;
    let mut failure = None;
    while done < buf.len() {
        let at = pos + done as u64;
        let index = at / PAGE_SIZE;
        let offset = (at % PAGE_SIZE) as usize;
        let n = (PAGE - offset).min(buf.len() - done);
        let folio = match grab_page_for_write(mapping, a_ops, index, offset, n, size) {
            Ok(f) => f,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        let copied = buf.get(done..done + n).ok_or(Errno::EFAULT).and_then(|src| folio.write(offset, src));
        if let Err(e) = copied {
            folio_unlock(folio.page(), folio.pfn(), &FOLIO_WAIT);
            failure = Some(e);
            break;
        }
        folio.page().set(PageFlags::UPTODATE);
        mapping.mark_dirty(&folio, index);
        // The size covers the page before anyone can write it back
        // (Linux `generic_write_end`'s `i_size_write` under the page lock).
        mapping.i_size.fetch_max(at + n as u64, Ordering::AcqRel);
        folio_unlock(folio.page(), folio.pfn(), &FOLIO_WAIT);
        done += n;
    }
    if done > 0 {
        a_ops.write_end(pos + done as u64)?;
        crate::fs::fs_writeback::mark_inode_dirty(inode);
    }
    match failure {
        Some(e) if done == 0 => Err(e),
        _ => Ok(done),
    }
}

/// The locked page at `index` ready for `n` bytes at `offset` (Linux
/// `grab_cache_page_write_begin` plus `block_write_begin`'s read of a
/// partly written page): uptodate already, or read first when the write
/// leaves part of it, or zeroed around the write when it lies wholly past
/// the old end of file `size`.
fn grab_page_for_write(
    mapping: &Mapping,
    a_ops: &dyn AddressSpaceOperations,
    index: u64,
    offset: usize,
    n: usize,
    size: u64,
) -> Result<FolioRef, Errno> {
    loop {
        let folio = match find_get_or_swapin(mapping, index)? {
            Some((f, _)) => {
                folio_lock(f.page(), f.pfn(), &FOLIO_WAIT);
                if !mapping.owns(&f, index) {
                    folio_unlock(f.page(), f.pfn(), &FOLIO_WAIT);
                    continue;
                }
                f
            }
            // Linux `grab_cache_page_write_begin`'s `FGP_WRITE`.
            None => match mapping.add_new_locked(index, GFP_HIGHUSER_MOVABLE | Gfp::WRITE)? {
                Ok(new) => new,
                Err(_) => continue,
            },
        };
        if folio.page().test(PageFlags::UPTODATE) || n == PAGE {
            return Ok(folio);
        }
        let prepared = if index.saturating_mul(PAGE_SIZE) >= size {
            // Nothing of this page is in the file yet: zeros around the write.
            folio.zero(0, offset).and_then(|()| folio.zero(offset + n, PAGE - offset - n))
        } else {
            read_into(a_ops, &folio, index)
        };
        if let Err(e) = prepared {
            mapping.remove(&folio, index);
            folio_unlock(folio.page(), folio.pfn(), &FOLIO_WAIT);
            return Err(e);
        }
        return Ok(folio);
    }
}

/// Writes the inode's dirty pages back (Linux `filemap_fdatawrite_wbc`
/// over `write_cache_pages`): for [`SyncMode::All`], every page dirty when
/// it starts, waiting for pages already under writeback; for
/// [`SyncMode::None`], up to `wbc.nr_to_write` pages, skipping busy ones.
/// Write errors are recorded in the mapping's `wb_err` and returned.
pub fn writeback(inode: &Inode, wbc: &mut WritebackControl) -> Result<(), Errno> {
    let (mapping, a_ops) = parts(inode)?;
    if mapping.swapbacked {
        // Nowhere to write to (Linux `filemap_fdatawrite_wbc` returns at
        // once when `!mapping_can_writeback`).
        return Ok(());
    }
    let pgdat = crate::mm::pgdat();
    page_writeback::writeback_prepare(&mut mapping.space.lock(), wbc);
    let mut run = WriteRun::new()?;
    let mut from = Some(wbc.start);
    let mut result = Ok(());
    while let Some(start) = from {
        if wbc.sync_mode == SyncMode::None && wbc.nr_to_write == 0 {
            break;
        }
        let next = {
            let space = mapping.space.lock();
            page_writeback::writeback_next(&space, wbc, start).and_then(|(i, pfn)| Some((i, FolioRef::get(pfn)?)))
        };
        let Some((index, folio)) = next else { break };
        from = index.checked_add(1);
        let page = folio.page();
        if wbc.sync_mode == SyncMode::None {
            if !folio_trylock(page) {
                continue;
            }
        } else {
            folio_lock(page, folio.pfn(), &FOLIO_WAIT);
        }
        if !mapping.owns(&folio, index) {
            folio_unlock(page, folio.pfn(), &FOLIO_WAIT);
            continue;
        }
        if page.test(PageFlags::WRITEBACK) {
            if wbc.sync_mode == SyncMode::None {
                folio_unlock(page, folio.pfn(), &FOLIO_WAIT);
                continue;
            }
            mm::filemap::folio_wait_writeback(page, folio.pfn(), &FOLIO_WAIT);
        }
        // Linux `folio_clear_dirty_for_io`: a mapped page's ptes are
        // write-protected first, so a later write through them dirties it
        // again, and a dirty pte's bit moves to the page.
        if page.mapcount() > 0 && crate::mmap::folio_mkclean(mapping.id.as_u64(), &mapping.i_mmap, index, folio.pfn()) {
            mapping.mark_dirty(&folio, index);
        }
        if !page_writeback::folio_clear_dirty_for_io(pgdat, page) {
            folio_unlock(page, folio.pfn(), &FOLIO_WAIT);
            continue;
        }
        let started = page_writeback::folio_start_writeback(&mut mapping.space.lock(), pgdat, page, index, false);
        if started.is_err() {
            folio_unlock(page, folio.pfn(), &FOLIO_WAIT);
            continue;
        }
        if !run.continues(index)
            && let Err(e) = run.flush(mapping, a_ops)
        {
            result = Err(e);
        }
        // The page's bytes are taken while it is locked, so the write is
        // of one version of it; it stays under writeback until the write
        // ends, and a write meanwhile dirties it again.
        if let Err(e) = run.push(index, folio) {
            result = Err(e);
        }
        wbc.nr_to_write = wbc.nr_to_write.saturating_sub(1);
    }
    if let Err(e) = run.flush(mapping, a_ops) {
        result = Err(e);
    }
    result
}

/// Pages under writeback in a row, their bytes gathered for one
/// [`AddressSpaceOperations::writepages`] call (Linux's writeback bio).
struct WriteRun {
    first: u64,
    pages: alloc::vec::Vec<FolioRef>,
    buf: alloc::vec::Vec<u8>,
}

impl WriteRun {
    fn new() -> Result<WriteRun, Errno> {
        let mut pages = alloc::vec::Vec::new();
        let mut buf = alloc::vec::Vec::new();
        pages.try_reserve_exact(MAX_RUN).map_err(|_| Errno::ENOMEM)?;
        buf.try_reserve_exact(MAX_RUN * PAGE).map_err(|_| Errno::ENOMEM)?;
        Ok(WriteRun { first: 0, pages, buf })
    }

    /// Whether page `index` can join the run.
    fn continues(&self, index: u64) -> bool {
        self.pages.len() < MAX_RUN && (self.pages.is_empty() || self.first + self.pages.len() as u64 == index)
    }

    /// Adds the locked page `index`, under writeback, with its bytes, and
    /// unlocks it.
    fn push(&mut self, index: u64, folio: FolioRef) -> Result<(), Errno> {
        if self.pages.is_empty() {
            self.first = index;
        }
        let at = self.buf.len();
        self.buf.resize(at + PAGE, 0);
        let copied = folio.read(0, &mut self.buf[at..]);
        folio_unlock(folio.page(), folio.pfn(), &FOLIO_WAIT);
        self.pages.push(folio);
        copied
    }

    /// Writes the run: its bytes up to the end of the file (the rest of the
    /// last block zero), then ends every page's writeback, recording an
    /// error in the mapping (Linux `mapping_set_error`).
    fn flush(&mut self, mapping: &Mapping, a_ops: &dyn AddressSpaceOperations) -> Result<(), Errno> {
        if self.pages.is_empty() {
            return Ok(());
        }
        let start = self.first.saturating_mul(PAGE_SIZE);
        let len = mapping.i_size().saturating_sub(start).min(self.buf.len() as u64) as usize;
        let written = if len == 0 {
            // Truncated meanwhile: nothing of it is in the file.
            Ok(())
        } else {
            self.buf[len..].fill(0);
            a_ops.writepages(self.first, &self.buf[..len.next_multiple_of(PAGE)])
        };
        let pgdat = crate::mm::pgdat();
        if written.is_ok() {
            pgdat.count_vm_events(mm::vmstat::VmEventItem::Pgpgout, len.div_ceil(1024) as u64);
        }
        {
            let mut space = mapping.space.lock();
            if let Err(e) = written {
                space.wb_err.set(e);
            }
            for (i, folio) in self.pages.iter().enumerate() {
                let index = self.first + i as u64;
                page_writeback::folio_end_writeback(&mut space, pgdat, folio.page(), folio.pfn(), index, &FOLIO_WAIT);
            }
        }
        if let Err(e) = written {
            log::warn!(
                "page cache: write-back of pages {}..{} of {} failed: {e}",
                self.first,
                self.first + self.pages.len() as u64,
                mapping.host()
            );
        }
        // The references go after the lock.
        self.pages.clear();
        self.buf.clear();
        written
    }
}

/// Writes every dirty page of the inode and waits for them, and for the
/// pages another task's write-back had already taken (Linux
/// `filemap_write_and_wait`: `filemap_fdatawrite` then
/// `filemap_fdatawait` over the writeback mark), so that when it returns
/// every byte written before the call is on the disk or its error
/// recorded.
pub fn write_and_wait(inode: &Inode) -> Result<(), Errno> {
    let written = writeback(inode, &mut WritebackControl::sync_all());
    if let Some(mapping) = inode.i_mapping.as_ref() {
        fdatawait(mapping);
    }
    written
}

/// Waits for every page under writeback now (Linux
/// `__filemap_fdatawait_range` over the whole file).
fn fdatawait(mapping: &Mapping) {
    let mut from = Some(0);
    while let Some(start) = from {
        let next = {
            let space = mapping.space.lock();
            space
                .find(start, u64::MAX, Some(PAGECACHE_TAG_WRITEBACK))
                .and_then(|(i, pfn)| Some((i, FolioRef::get(pfn)?)))
        };
        let Some((index, folio)) = next else { break };
        mm::filemap::folio_wait_writeback(folio.page(), folio.pfn(), &FOLIO_WAIT);
        from = index.checked_add(1);
    }
}

/// Drops every page from `new_size` on and zeroes the rest of the page
/// `new_size` falls in (Linux `truncate_pagecache`:
/// `truncate_inode_pages` after waiting for each page's writeback, and
/// `folio_zero_range` of the partial page). The caller holds `i_rwsem`
/// and has set the size already or does right after.
pub fn truncate_pagecache(inode: &Inode, new_size: u64) -> Result<(), Errno> {
    let Some(mapping) = inode.i_mapping.as_ref() else { return Ok(()) };
    let first = new_size.div_ceil(PAGE_SIZE);
    // Unmap first, so that mapped pages can go, and again after, for a
    // fault that mapped one meanwhile (Linux `truncate_pagecache`).
    crate::mmap::unmap_mapping_pages(mapping.id.as_u64(), &mapping.i_mmap, first);
    let truncated = truncate_inode_pages_range(mapping, new_size, u64::MAX, MappedPage::Drop);
    crate::mmap::unmap_mapping_pages(mapping.id.as_u64(), &mapping.i_mmap, first);
    truncated
}

/// What [`truncate_inode_pages_range`] does with a whole page that a
/// user mapping still maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MappedPage {
    /// It leaves the cache like the others: truncation unmapped the range
    /// from every address space before, and does again after for a fault
    /// that raced it.
    Drop,
    /// It is zeroed and stays in the cache (hole punching under the
    /// caller's mmap lock, which cannot walk the other address spaces to
    /// unmap it: that walk takes each mmap lock): every mapper reads the
    /// zeros Linux's unmap and refault would give, and no mapping is left
    /// with a page the file no longer has.
    ZeroInPlace,
}

/// Drops the pages wholly inside bytes `lstart..=lend` and zeroes the
/// parts of the partial pages at either end that lie inside it (Linux
/// `truncate_inode_pages_range`; `lend` is `u64::MAX` for "to the end of
/// the file"). Each page goes under its lock, after its writeback, its
/// dirtiness dropped with it; `mapped` says what happens to a page a user
/// mapping still maps. The caller holds `i_rwsem`, or punches a hole
/// ([`MappedPage::ZeroInPlace`]): the page locks keep a racing write,
/// truncation or fault consistent, each seeing the page before or after.
/// A shmem file's swap entries in the range go too, their slots freed
/// (Linux `shmem_undo_range`'s `shmem_free_swap`): before the pages, so
/// that no swap-in racing this puts a page back, and after, for the
/// pages reclaim sent to swap while this waited for their locks; a
/// partial page in swap is swapped in to be zeroed.
pub fn truncate_inode_pages_range(mapping: &Mapping, lstart: u64, lend: u64, mapped: MappedPage) -> Result<(), Errno> {
    let pgdat = crate::mm::pgdat();
    // Whole pages: from the first that starts in the range to the last
    // that ends in it.
    let first = lstart.div_ceil(PAGE_SIZE);
    let end = lend.checked_add(1).map_or(u64::MAX, |e| e / PAGE_SIZE);
    let free_swap = || {
        if mapping.swapbacked && first < end {
            crate::shmem::shmem_free_swap_range(mapping, first, end - 1);
        }
    };
    free_swap();
    let mut from = first;
    while from < end {
        let next = {
            let space = mapping.space.lock();
            space.find(from, end - 1, None).and_then(|(i, pfn)| Some((i, FolioRef::get(pfn)?)))
        };
        let Some((index, folio)) = next else { break };
        let page = folio.page();
        folio_lock(page, folio.pfn(), &FOLIO_WAIT);
        mm::filemap::folio_wait_writeback(page, folio.pfn(), &FOLIO_WAIT);
        let zeroed = if mapped == MappedPage::ZeroInPlace && page.mapcount() > 0 {
            Some(folio.zero(0, PAGE))
        } else {
            {
                let mut space = mapping.space.lock();
                if space.lookup(index) == Some(folio.pfn()) {
                    page_writeback::folio_cancel_dirty(&mut space, pgdat, page, index);
                }
            }
            mapping.remove(&folio, index);
            None
        };
        folio_unlock(page, folio.pfn(), &FOLIO_WAIT);
        zeroed.transpose()?;
        match index.checked_add(1) {
            Some(n) => from = n,
            None => break,
        }
    }
    free_swap();
    // The shadows of evicted pages go with the range (Linux
    // `truncate_folio_batch_exceptionals`), their nodes freed.
    if first < end {
        mapping.space.lock().clear_shadows(first, end - 1);
    }
    // Partial pages.
    let (start_index, start_offset) = (lstart / PAGE_SIZE, (lstart % PAGE_SIZE) as usize);
    match lend.checked_add(1) {
        None if start_offset != 0 => zero_cached(mapping, start_index, start_offset, PAGE),
        None => Ok(()),
        Some(e) => {
            let (end_index, end_offset) = (e / PAGE_SIZE, (e % PAGE_SIZE) as usize);
            if start_index == end_index {
                if start_offset < end_offset {
                    zero_cached(mapping, start_index, start_offset, end_offset)?;
                }
                return Ok(());
            }
            if start_offset != 0 {
                zero_cached(mapping, start_index, start_offset, PAGE)?;
            }
            if end_offset != 0 {
                zero_cached(mapping, end_index, 0, end_offset)?;
            }
            Ok(())
        }
    }
}

/// Zeroes bytes `from..to` of the cached page at `index`, if it is
/// cached (a shmem page in swap is swapped in: Linux `shmem_undo_range`'s
/// `shmem_get_folio`), under its lock (Linux `folio_zero_range` in
/// `truncate_inode_partial_folio`).
fn zero_cached(mapping: &Mapping, index: u64, from: usize, to: usize) -> Result<(), Errno> {
    let Some((folio, _)) = find_get_or_swapin(mapping, index)? else { return Ok(()) };
    folio_lock(folio.page(), folio.pfn(), &FOLIO_WAIT);
    let zeroed = if mapping.owns(&folio, index) { folio.zero(from, to - from) } else { Ok(()) };
    folio_unlock(folio.page(), folio.pfn(), &FOLIO_WAIT);
    zeroed
}

/// Drops the clean, unlocked pages nothing else uses (Linux
/// `invalidate_mapping_pages`, what `drop_caches` runs on every inode),
/// never a shmem page, which is its file's only copy; returns how many
/// went.
pub fn invalidate_mapping_pages(mapping: &Mapping) -> u64 {
    invalidate_mapping_range(mapping, 0, u64::MAX)
}

/// [`invalidate_mapping_pages`] over the pages `start..=end` only (Linux
/// `invalidate_mapping_pages(mapping, start, end)`): a page that is
/// dirty, under writeback, locked, mapped or referenced by anyone but the
/// cache stays. The LRU batches are drained first, so that their
/// references do not keep pages (Linux's fadvise `DONTNEED` and
/// `drop_caches` drain them too).
pub fn invalidate_mapping_range(mapping: &Mapping, start: u64, end: u64) -> u64 {
    crate::mm::pgdat().lru_add_drain_all();
    let mut dropped = 0;
    let mut from = start;
    loop {
        let next = {
            let space = mapping.space.lock();
            space.find(from, end, None).and_then(|(i, pfn)| Some((i, FolioRef::get(pfn)?)))
        };
        let Some((index, folio)) = next else { break };
        let page = folio.page();
        if folio_trylock(page) {
            // The cache's reference and ours: no one else holds it.
            let unused = page.refcount() == 2 && page.mapcount() == 0;
            let clean = !page.flags().intersects(PageFlags::DIRTY | PageFlags::WRITEBACK | PageFlags::SWAPBACKED);
            if unused && clean {
                mapping.remove(&folio, index);
                dropped += 1;
            }
            folio_unlock(page, folio.pfn(), &FOLIO_WAIT);
        }
        match index.checked_add(1) {
            Some(n) => from = n,
            None => break,
        }
    }
    // Linux `mapping_try_invalidate`'s `clear_shadow_entries`: the range
    // forgets its evictions too.
    mapping.space.lock().clear_shadows(start, end);
    dropped
}

impl Drop for Mapping {
    /// Empties the cache of a file that is going away and unlists it for
    /// reclaim (Linux `evict`'s `truncate_inode_pages_final`): the
    /// shadows first, then every page
    /// leaves under its lock, dirty ones too (the VFS wrote back what had
    /// to reach a disk: an inode with dirty pages is on the dirty list,
    /// which holds it; a shmem file's data goes with it). Taking each
    /// page's lock is what lets reclaim, which holds a page's lock while
    /// it reaches the page's cache, rely on the cache being alive. May
    /// sleep.
    fn drop(&mut self) {
        let pgdat = crate::mm::pgdat();
        {
            // Linux `evict`'s `mapping_set_exiting`: reclaim evicting a
            // page meanwhile leaves no shadow behind; those left before go.
            let mut space = self.space.lock();
            space.set_exiting();
            space.clear_shadows(0, u64::MAX);
        }
        loop {
            let next = {
                let space = self.space.lock();
                space.find(0, u64::MAX, None).and_then(|(i, pfn)| Some((i, FolioRef::get(pfn)?)))
            };
            let Some((index, folio)) = next else { break };
            let page = folio.page();
            folio_lock(page, folio.pfn(), &FOLIO_WAIT);
            mm::filemap::folio_wait_writeback(page, folio.pfn(), &FOLIO_WAIT);
            {
                let mut space = self.space.lock();
                if space.lookup(index) == Some(folio.pfn()) {
                    page_writeback::folio_cancel_dirty(&mut space, pgdat, page, index);
                }
            }
            self.remove(&folio, index);
            folio_unlock(page, folio.pfn(), &FOLIO_WAIT);
        }
        if self.swapbacked {
            // The file's pages in swap go with it; reclaim sent none there
            // after the loop, which left no page to send.
            crate::shmem::shmem_free_swap_range(self, 0, u64::MAX);
            crate::shmem::shmem_swaplist_del(self);
        }
        folio::unregister(self.id);
    }
}
