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
//! Differences from Linux: one list for all devices, one flusher thread
//! (Linux has a `bdi_writeback` and a worker per device); no `I_DIRTY`
//! inode-metadata states (ext2's metadata lives in its own buffer cache,
//! written by `sync_fs`).
//!
//! Locking: the list is a leaf spin lock, never held across a write-back;
//! a pass takes the inodes out of it first. [`SETTINGS`] is a leaf spin
//! lock.

#![forbid(unsafe_code)]

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use mm::page_writeback::{self, DirtySettings, WritebackControl};
use spin::Once;
use uapi::errno::Errno;

use super::inode::{Inode, SuperBlock};
use crate::sync::SpinLock;

/// An inode with dirty pages and when it got its first one.
struct DirtyInode {
    inode: Arc<Inode>,
    dirtied_when_ns: u64,
}

/// Inodes with dirty pages, oldest first (Linux `wb->b_dirty`).
static DIRTY: SpinLock<Vec<DirtyInode>> = SpinLock::new(Vec::new());

/// The `vm.dirty_*` tunables.
pub static SETTINGS: SpinLock<DirtySettings> = SpinLock::new(DirtySettings::DEFAULT);

/// Pages a background pass writes per inode before moving on (Linux
/// `MAX_WRITEBACK_PAGES`, 1024 pages = 4 MiB).
const MAX_WRITEBACK_PAGES: u64 = 1024;

fn now_ns() -> u64 {
    crate::arch::x86_64::tsc::now_ns()
}

/// Records that `inode`'s cache has dirty pages (Linux
/// `__mark_inode_dirty(I_DIRTY_PAGES)`). If the list cannot grow, the
/// inode is written back at once instead, so no dirty page is ever held
/// by an inode nothing will write.
pub fn mark_inode_dirty(inode: &Arc<Inode>) {
    if inode.i_mapping.as_ref().is_some_and(|m| m.is_swapbacked()) {
        return;
    }
    {
        let mut dirty = DIRTY.lock();
        if dirty.iter().any(|d| Arc::ptr_eq(&d.inode, inode)) {
            return;
        }
        if dirty.try_reserve(1).is_ok() {
            dirty.push(DirtyInode { inode: inode.clone(), dirtied_when_ns: now_ns() });
            return;
        }
    }
    if let Err(e) = crate::filemap::write_and_wait(inode) {
        log::warn!("writeback: inode {} could not be listed dirty and failed to write: {e}", inode.ino);
    }
}

/// Inodes on the list now that `pick` chooses, taken off it.
fn take(pick: impl Fn(&DirtyInode) -> bool) -> Vec<Arc<Inode>> {
    let mut dirty = DIRTY.lock();
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

/// Puts back an inode that still has dirty pages after a pass.
fn requeue(inode: Arc<Inode>) {
    if inode.i_mapping.as_ref().is_some_and(|m| m.has_dirty()) {
        mark_inode_dirty(&inode);
    }
}

/// Writes every dirty page of `sb`'s inodes and waits for them (Linux
/// `sync_inodes_sb`); the first error is returned after all were tried.
pub fn sync_inodes_sb(sb: &Arc<SuperBlock>) -> Result<(), Errno> {
    write_all(take(|d| Arc::ptr_eq(&d.inode.sb, sb)))
}

/// Writes every dirty page of every inode (`sync(2)`'s first half).
pub fn sync_all_inodes() -> Result<(), Errno> {
    write_all(take(|_| true))
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

/// One background pass (Linux `wb_do_writeback`): inodes dirty for longer
/// than `dirty_expire_centisecs`, or all of them while dirty memory is
/// over the background threshold; up to [`MAX_WRITEBACK_PAGES`] each.
/// Returns the pages written.
pub fn background_pass() -> u64 {
    let settings = *SETTINGS.lock();
    let pgdat = crate::mm::pgdat();
    let (background, _) = page_writeback::dirty_limits(&settings, page_writeback::global_dirtyable_memory(pgdat));
    let over = page_writeback::nr_dirty_and_writeback(pgdat) > background;
    let expire_ns = u64::from(settings.expire_centisecs) * 10_000_000;
    let now = now_ns();
    let inodes = take(|d| over || now.saturating_sub(d.dirtied_when_ns) >= expire_ns);
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

/// Throttles a writer that dirtied pages of `inode` (Linux
/// `balance_dirty_pages`): past `vm.dirty_ratio` of dirtyable memory, the
/// writer writes the inode's dirty pages itself before going on (Linux
/// sleeps while the flusher writes; ours has no I/O-less throttling), and
/// past the background threshold it wakes the flusher.
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
        wakeup_flusher();
    }
}

static FLUSHER: Once<Option<Arc<crate::sched::Task>>> = Once::new();

/// Set to make the flusher run a pass before its period is up.
static KICK: AtomicBool = AtomicBool::new(false);

/// Wakes the flusher thread early (Linux `wb_start_background_writeback`).
pub fn wakeup_flusher() {
    if let Some(Some(task)) = FLUSHER.get() {
        KICK.store(true, Ordering::Release);
        crate::sched::wake_up_process(task);
    }
}

/// Starts the flusher thread (Linux's `writeback` workqueue worker for
/// the one device domain): it wakes every `dirty_writeback_centisecs`, or
/// when woken, and runs [`background_pass`].
pub fn start_flusher() {
    FLUSHER.call_once(|| {
        let spawned = crate::sched::kthread_run("flush", || {
            loop {
                let period_ns = u64::from(SETTINGS.lock().writeback_centisecs).max(1) * 10_000_000;
                let deadline = now_ns().saturating_add(period_ns);
                crate::sched::wait::sleep_until_ns(deadline, || KICK.swap(false, Ordering::AcqRel));
                background_pass();
            }
        });
        spawned.map_err(|e| log::error!("writeback: no flusher thread: {e:?}")).ok()
    });
}

/// Inodes on the dirty list (for reports and tests).
pub fn nr_dirty_inodes() -> usize {
    DIRTY.lock().len()
}
