//! Dirty inodes and their write-back (Linux `fs/fs-writeback.c` in
//! miniature): the list of inodes whose page cache holds dirty pages (a
//! backing device's `b_dirty`), the syncs that write them
//! (`sync_inodes_sb`, `sync`), and the flusher thread that writes them
//! in the background (`wb_workfn`: expired inodes every
//! `dirty_writeback_centisecs`, everything while dirty memory is over
//! the background threshold).
//!
//! An inode joins the list when a write dirties its cache
//! ([`mark_inode_dirty`]) and the list holds a reference to it, so an
//! inode with dirty pages is never evicted before they are written (Linux
//! keeps such inodes off the LRU the same way); it leaves when a pass
//! finds it clean. A shmem file (tmpfs, memfd) never joins it and never
//! throttles its writers: its pages have nowhere to be written (Linux's
//! shmem dirties pages with `noop_dirty_folio` on a backing device
//! without `BDI_CAP_WRITEBACK`), so `sync` and the flusher never meet it.
//!
//! Each superblock has its own write-back domain ([`BdiWriteback`],
//! Linux's `bdi_writeback` of the device behind it): its dirty list and
//! its flusher thread, `flush-MAJ:MIN` (the name Linux's per-device
//! flusher threads had before they became workqueue items), started when
//! the first inode of the file system is dirtied and stopped when the
//! superblock goes. A slow or stuck disk holds up only its own flusher.
//!
//! Differences from Linux: one domain per superblock, not per backing
//! device shared by the file systems on it (each of ours has one device);
//! the background threshold is checked against all dirty memory, not the
//! device's share of it; no `I_DIRTY` inode-metadata states (ext2's
//! metadata lives in its own buffer cache, written by `sync_fs`).
//!
//! Locking: each dirty list is a leaf spin lock, never held across a
//! write-back; a pass takes the inodes out of it first. [`SETTINGS`] is a
//! leaf spin lock. The list of domains is a sleeping mutex held only to
//! scan or change it.

#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use mm::page_writeback::{self, DirtySettings, WritebackControl};
use uapi::errno::Errno;

use super::inode::{Inode, SuperBlock};
use crate::sched::Task;
use crate::sync::{Mutex, SpinLock};

/// An inode with dirty pages and when it got its first one.
struct DirtyInode {
    inode: Arc<Inode>,
    dirtied_when_ns: u64,
}

/// One file system's write-back domain (Linux `struct bdi_writeback`):
/// its inodes with dirty pages and its flusher thread.
pub struct BdiWriteback {
    /// The device, "MAJ:MIN", as the flusher's name shows it.
    name: String,
    /// Inodes with dirty pages, oldest first (Linux `wb->b_dirty`).
    b_dirty: SpinLock<Vec<DirtyInode>>,
    /// The flusher, once started.
    task: SpinLock<Option<Arc<Task>>>,
    /// Set to make the flusher run a pass before its period is up.
    kick: AtomicBool,
    /// Set when the superblock goes: the flusher exits.
    stop: AtomicBool,
}

/// Every live write-back domain, for `sync(2)` and reports.
static DOMAINS: Mutex<Vec<Weak<BdiWriteback>>> = Mutex::new(Vec::new());

/// The `vm.dirty_*` tunables.
pub static SETTINGS: SpinLock<DirtySettings> = SpinLock::new(DirtySettings::DEFAULT);

/// Pages a background pass writes per inode before moving on (Linux
/// `MAX_WRITEBACK_PAGES`, 1024 pages = 4 MiB).
const MAX_WRITEBACK_PAGES: u64 = 1024;

fn now_ns() -> u64 {
    crate::arch::x86_64::tsc::now_ns()
}

impl BdiWriteback {
    /// The domain of the file system on device `dev` (Linux
    /// `bdi_register`); its flusher starts with its first dirty inode.
    pub fn new(dev: u64) -> Arc<BdiWriteback> {
        let wb = Arc::new(BdiWriteback {
            name: format!("{}:{}", dev >> 8, dev & 0xff),
            b_dirty: SpinLock::new(Vec::new()),
            task: SpinLock::new(None),
            kick: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let mut domains = DOMAINS.lock();
        domains.retain(|d| d.strong_count() > 0);
        // Without room in the list, `sync(2)` misses the domain; its own
        // flusher, fsync and unmount still write it.
        if domains.try_reserve(1).is_ok() {
            domains.push(Arc::downgrade(&wb));
        }
        wb
    }

    /// The flusher thread's name.
    pub fn flusher_name(&self) -> String {
        format!("flush-{}", self.name)
    }

    /// Inodes on the dirty list (for reports and tests).
    pub fn nr_dirty_inodes(&self) -> usize {
        self.b_dirty.lock().len()
    }

    /// Inodes on the list now that `pick` chooses, taken off it.
    fn take(&self, pick: impl Fn(&DirtyInode) -> bool) -> Vec<Arc<Inode>> {
        let mut dirty = self.b_dirty.lock();
        let mut taken = Vec::new();
        if taken.try_reserve(dirty.len()).is_err() {
            return taken;
        }
        dirty.retain(|d| {
            if pick(d) {
                taken.push(d.inode.clone());
                false
            } else {
                true
            }
        });
        taken
    }

    /// Wakes the flusher early (Linux `wb_start_background_writeback`).
    pub fn wakeup(&self) {
        self.kick.store(true, Ordering::Release);
        if let Some(task) = &*self.task.lock() {
            crate::sched::wake_up_process(task);
        }
    }

    /// Starts the flusher if it is not running: it wakes every
    /// `dirty_writeback_centisecs`, or when woken, runs
    /// [`BdiWriteback::background_pass`], and exits once the domain is
    /// stopped. False if no thread could be started.
    fn start_flusher(self: &Arc<Self>) -> bool {
        if self.task.lock().is_some() {
            return true;
        }
        let wb = self.clone();
        let spawned = crate::sched::kthread_run(&self.flusher_name(), move || {
            while !wb.stop.load(Ordering::Acquire) {
                let period_ns = u64::from(SETTINGS.lock().writeback_centisecs).max(1) * 10_000_000;
                let deadline = now_ns().saturating_add(period_ns);
                crate::sched::wait::sleep_until_ns(deadline, || {
                    wb.kick.swap(false, Ordering::AcqRel) || wb.stop.load(Ordering::Acquire)
                });
                wb.background_pass();
            }
        });
        match spawned {
            Ok(task) => {
                let mut slot = self.task.lock();
                if slot.is_none() {
                    *slot = Some(task);
                }
                true
            }
            Err(e) => {
                log::error!("writeback: no flusher thread for {}: {e:?}", self.name);
                false
            }
        }
    }

    /// One background pass (Linux `wb_do_writeback`): inodes dirty for
    /// longer than `dirty_expire_centisecs`, or all of them while dirty
    /// memory is over the background threshold; up to
    /// [`MAX_WRITEBACK_PAGES`] each. Returns the pages written.
    pub fn background_pass(&self) -> u64 {
        let settings = *SETTINGS.lock();
        let pgdat = crate::mm::pgdat();
        let (background, _) = page_writeback::dirty_limits(&settings, page_writeback::global_dirtyable_memory(pgdat));
        let over = page_writeback::nr_dirty_and_writeback(pgdat) > background;
        let expire_ns = u64::from(settings.expire_centisecs) * 10_000_000;
        let now = now_ns();
        let inodes = self.take(|d| over || now.saturating_sub(d.dirtied_when_ns) >= expire_ns);
        let mut written = 0;
        for inode in inodes {
            let mut wbc = WritebackControl::background(MAX_WRITEBACK_PAGES);
            if let Err(e) = crate::filemap::writeback(&inode, &mut wbc) {
                log::warn!("writeback: inode {}: {e}", inode.ino);
            }
            written += MAX_WRITEBACK_PAGES - wbc.nr_to_write;
            requeue(inode);
        }
        written
    }

    /// Stops the flusher (Linux `bdi_unregister`): the superblock is
    /// going, and with it every inode the list could hold.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        self.wakeup();
    }
}

/// Records that `inode`'s cache has dirty pages (Linux
/// `__mark_inode_dirty(I_DIRTY_PAGES)`) on its file system's list. If the
/// list cannot grow or the flusher cannot start, the inode is written
/// back at once instead, so no dirty page is ever held by an inode
/// nothing will write.
pub fn mark_inode_dirty(inode: &Arc<Inode>) {
    if inode.i_mapping.as_ref().is_some_and(|m| m.is_swapbacked()) {
        return;
    }
    let wb = &inode.sb.wb;
    let listed = {
        let mut dirty = wb.b_dirty.lock();
        if dirty.iter().any(|d| Arc::ptr_eq(&d.inode, inode)) {
            return;
        }
        dirty.try_reserve(1).is_ok() && {
            dirty.push(DirtyInode { inode: inode.clone(), dirtied_when_ns: now_ns() });
            true
        }
    };
    if listed && wb.start_flusher() {
        return;
    }
    if let Err(e) = crate::filemap::write_and_wait(inode) {
        log::warn!("writeback: inode {} could not be listed dirty and failed to write: {e}", inode.ino);
    }
}

/// Puts back an inode that still has dirty pages after a pass.
fn requeue(inode: Arc<Inode>) {
    if inode.i_mapping.as_ref().is_some_and(|m| m.has_dirty()) {
        mark_inode_dirty(&inode);
    }
}

/// Writes every dirty page of `sb`'s inodes and waits for them (Linux
/// `sync_inodes_sb`); the first error is returned after all were tried.
pub fn sync_inodes_sb(sb: &Arc<SuperBlock>) -> Result<(), Errno> {
    write_all(sb.wb.take(|_| true))
}

/// Writes every dirty page of every inode (`sync(2)`'s first half).
pub fn sync_all_inodes() -> Result<(), Errno> {
    let mut result = Ok(());
    for wb in domains() {
        let r = write_all(wb.take(|_| true));
        if result.is_ok() {
            result = r;
        }
    }
    result
}

/// The live write-back domains.
fn domains() -> Vec<Arc<BdiWriteback>> {
    DOMAINS.lock().iter().filter_map(Weak::upgrade).collect()
}

fn write_all(inodes: Vec<Arc<Inode>>) -> Result<(), Errno> {
    let mut result = Ok(());
    for inode in inodes {
        if let Err(e) = crate::filemap::write_and_wait(&inode)
            && result.is_ok()
        {
            result = Err(e);
        }
        requeue(inode);
    }
    result
}

/// Throttles a writer that dirtied pages of `inode` (Linux
/// `balance_dirty_pages`): past `vm.dirty_ratio` of dirtyable memory, the
/// writer writes the inode's dirty pages itself before going on (Linux
/// sleeps while the flusher writes; ours has no I/O-less throttling), and
/// past the background threshold it wakes its file system's flusher.
pub fn balance_dirty_pages(inode: &Arc<Inode>) {
    if inode.i_mapping.as_ref().is_some_and(|m| m.is_swapbacked()) {
        return;
    }
    let settings = *SETTINGS.lock();
    let pgdat = crate::mm::pgdat();
    let (background, thresh) = page_writeback::dirty_limits(&settings, page_writeback::global_dirtyable_memory(pgdat));
    let dirty = page_writeback::nr_dirty_and_writeback(pgdat);
    if dirty > thresh {
        let mut wbc = WritebackControl::background(MAX_WRITEBACK_PAGES);
        if let Err(e) = crate::filemap::writeback(inode, &mut wbc) {
            log::warn!("writeback: inode {}: {e}", inode.ino);
        }
    } else if dirty > background {
        inode.sb.wb.wakeup();
    }
}

/// Inodes on every dirty list (for reports and tests).
pub fn nr_dirty_inodes() -> usize {
    domains().iter().map(|wb| wb.nr_dirty_inodes()).sum()
}
