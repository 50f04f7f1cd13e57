//! Memory compaction as the kernel runs it ([`mm::compaction`]'s
//! mechanism over the kernel's address spaces, found through
//! [`RmapWalk`]): on request ([`compact_memory`], Linux's
//! `compact_memory` sysctl, the console's `compact`), in the allocator's
//! slow path ([`KernelCompaction`], Linux's direct compaction), and in
//! the node's `kcompactd0` thread, which kswapd wakes when it goes back
//! to sleep after an allocation of order above 0 woke it (Linux
//! `kcompactd`).
//!
//! # Locks
//! [`COMPACTION`] serializes the runs: the migrate scanner isolates a
//! page only by listing it, so two runs could pick the same page (Linux
//! takes it off the LRU, which keeps a second run away). A sleeping
//! mutex: a run reschedules while it holds it, so a second caller sleeps
//! rather than spins. Its holder is recorded ([`COMPACTION_OWNER`]): an
//! allocation the run makes itself (its reverse-map walk allocates) does
//! not compact (Linux's `PF_MEMALLOC`, which direct compaction sets), and
//! so never waits for the lock it holds.
//!
//! A direct compaction waits for the lock with its caller's locks held.
//! That cannot deadlock: a run takes the locks of the pages and address
//! spaces it moves only by trying ([`mm::migrate`]), and the locks it
//! does wait for ([`crate::mmap`]'s address-space list, the anon_vma,
//! `i_mmap` and page-table spin locks) are never held across an
//! allocation that may block. An allocation in atomic context (interrupts
//! off, a spin lock held: SLUB's refill of a CPU slab) does not compact:
//! compaction sleeps. Lock order: [`COMPACTION`] -> everything
//! [`crate::mmap`] lists.
//!
//! Differences from Linux: one compaction runs at a time (Linux runs
//! any number, each on the pages it isolated); direct compaction skips
//! allocations in atomic context (Linux's SLUB allocates its slabs with
//! interrupts on); no proactive compaction, and kcompactd never times
//! out of its sleep.

#![forbid(unsafe_code)]

use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use mm::compaction::{CompactRequest, CompactResult, CompactStats, DirectCompaction, Kcompactd};
use mm::page_alloc::PgData;
use spin::Once;

use crate::mmap::RmapWalk;
use crate::sched::Task;
use crate::sync::{Mutex, MutexGuard};

/// Serializes compaction runs (see the module doc).
static COMPACTION: Mutex<()> = Mutex::new(());

/// The task holding [`COMPACTION`], by its address; 0 when none.
static COMPACTION_OWNER: AtomicUsize = AtomicUsize::new(0);

/// [`COMPACTION`] held, its owner recorded until the guard goes.
struct CompactionGuard {
    _lock: MutexGuard<'static, ()>,
}

impl Drop for CompactionGuard {
    fn drop(&mut self) {
        // Before the lock goes (fields drop after this body).
        COMPACTION_OWNER.store(0, Ordering::Release);
    }
}

/// A task's identity for [`COMPACTION_OWNER`].
fn task_id(task: &Task) -> usize {
    core::ptr::from_ref(task).addr()
}

/// Takes [`COMPACTION`], sleeping while another task holds it; `None` if
/// the calling task holds it already (an allocation made by its own
/// compaction). Must not be called in atomic context.
fn lock_compaction() -> Option<CompactionGuard> {
    let me = crate::sched::with_current(task_id);
    if COMPACTION_OWNER.load(Ordering::Acquire) == me {
        return None;
    }
    let lock = COMPACTION.lock();
    COMPACTION_OWNER.store(me, Ordering::Release);
    Some(CompactionGuard { _lock: lock })
}

/// Compacts every zone, moving user pages so that free memory coalesces
/// (what `echo 1 > /proc/sys/vm/compact_memory` does: Linux
/// `compact_nodes`). `stop` is asked before each pageblock of the migrate
/// scanner, after a chance to reschedule; when it says so the run ends
/// early ([`CompactStats::contended`]). One run at a time; a second caller
/// sleeps until the first ends. Must not be called with interrupts off or
/// a spin lock held.
pub fn compact_memory(stop: &dyn Fn() -> bool) -> CompactStats {
    let Some(serial) = lock_compaction() else { return CompactStats::default() };
    // A page in an LRU batch has a reference migration does not expect
    // (Linux `compact_nodes` drains them with `lru_add_drain_all`).
    crate::mm::pgdat().lru_add_drain_all();
    let stats = match RmapWalk::new(stop) {
        Some(walk) => mm::compaction::compact_node(crate::mm::pgdat(), &walk),
        None => CompactStats::default(),
    };
    drop(serial);
    stats
}

/// Whether the running task was killed: a direct compaction for it stops
/// (Linux checks `fatal_signal_pending(current)`).
fn current_killed() -> bool {
    crate::sched::try_current().is_some_and(|task| crate::signal::fatal_signal_pending(&task))
}

/// Direct compaction as the allocator runs it (Linux
/// `try_to_compact_pages` under `__alloc_pages_direct_compact`'s
/// `memalloc_noreclaim_save`).
pub struct KernelCompaction;

impl DirectCompaction for KernelCompaction {
    /// Skipped in atomic context and for allocations a compaction makes;
    /// otherwise waits its turn and compacts, stopping if the task is
    /// killed.
    fn try_to_compact_pages(&self, pgdat: &PgData<'_>, request: &CompactRequest) -> CompactResult {
        if crate::sync::in_atomic() {
            return CompactResult::Skipped;
        }
        let Some(serial) = lock_compaction() else { return CompactResult::Skipped };
        // Linux `compact_zone` drains this CPU's LRU batches; pages in
        // other CPUs' batches are pinned for migration, and it is cheap
        // to drain them all here.
        pgdat.lru_add_drain_all();
        // Inside an allocation: no teardown here (see `mmput_async`).
        let result = match RmapWalk::new(&current_killed).map(RmapWalk::defer_puts) {
            Some(walk) => mm::compaction::try_to_compact_pages(pgdat, request, &walk),
            None => CompactResult::Skipped,
        };
        drop(serial);
        result
    }
}

static KERNEL_COMPACTION: KernelCompaction = KernelCompaction;

/// The node's kcompactd thread, `kcompactd0` (Linux `kcompactd`): it
/// sleeps until kswapd wakes it ([`mm::compaction::wakeup_kcompactd`]),
/// then compacts for the order it was woken for
/// ([`mm::compaction::kcompactd_do_work`]), and sleeps again.
struct KernelKcompactd {
    task: Once<Option<Arc<Task>>>,
    /// Set by a wakeup, cleared by kcompactd before each run: a wakeup
    /// during a run makes another.
    woken: AtomicBool,
}

impl Kcompactd for KernelKcompactd {
    /// Safe in any context: a flag and `wake_up_process`, which takes
    /// only interrupt-safe spin locks and allocates nothing.
    fn wakeup(&self) {
        if !self.woken.swap(true, Ordering::AcqRel)
            && let Some(Some(task)) = self.task.get()
        {
            crate::sched::wake_up_process(task);
        }
    }
}

static KCOMPACTD: KernelKcompactd = KernelKcompactd { task: Once::new(), woken: AtomicBool::new(false) };

/// kcompactd's loop.
fn kcompactd() {
    let never = || false;
    loop {
        crate::sched::wait::sleep_until_ns(u64::MAX, || KCOMPACTD.woken.load(Ordering::Acquire));
        KCOMPACTD.woken.store(false, Ordering::Release);
        if let Some(serial) = lock_compaction() {
            let pgdat = crate::mm::pgdat();
            pgdat.lru_add_drain_all();
            if let Some(walk) = RmapWalk::new(&never) {
                mm::compaction::kcompactd_do_work(pgdat, &walk);
            }
            drop(serial);
        }
        crate::sched::cond_resched();
    }
}

/// Registers direct compaction with the page allocator and starts
/// kcompactd (Linux `kcompactd_init`). Without memory for the thread,
/// only direct compaction runs.
pub fn init() {
    let pgdat = crate::mm::pgdat();
    pgdat.set_direct_compaction(&KERNEL_COMPACTION);
    KCOMPACTD.task.call_once(|| {
        crate::sched::kthread_run("kcompactd0", kcompactd)
            .map_err(|e| log::warn!("kcompactd: cannot start: {e:?}"))
            .ok()
    });
    pgdat.set_kcompactd(&KCOMPACTD);
}
