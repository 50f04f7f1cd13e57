//! The OOM killer's policy and the OOM reaper's unmap (Linux
//! `mm/oom_kill.c`; `fs/proc/base.c`'s `oom_score` and `oom_score_adj`).
//!
//! When an allocation that may reclaim finds no memory and reclaim gives
//! none back, the page allocator's slow path asks the registered
//! [`OutOfMemory`] (the kernel's `out_of_memory`) to free some by killing
//! a task. This module is the part of that which needs no tasks:
//!
//! - [`oom_badness`]: how much memory killing a task would give back,
//!   its RSS plus swap entries plus page-table pages, moved by its
//!   `oom_score_adj` in thousandths of all memory (`adj * totalpages /
//!   1000`). A task with `oom_score_adj` [`OOM_SCORE_ADJ_MIN`], init, a
//!   kernel thread, a task without an address space, a vfork child and
//!   an address space already reaped ([`OomMm::oom_skip`], Linux
//!   `MMF_OOM_SKIP`) have none: they are never chosen.
//! - [`select_bad_process`]: Linux `select_bad_process` over
//!   `oom_evaluate_task`: the highest badness wins (a later task wins a
//!   tie); a task already chosen whose memory has not been reaped yet
//!   aborts the selection (its memory is on its way back; killing a
//!   second task would be one too many), one already reaped is passed over.
//! - [`proc_oom_score`]: `/proc/PID/oom_score`, the badness scaled to
//!   0..2000 as Linux has shown it since 5.9; [`parse_oom_score_adj`] and
//!   [`may_set_oom_score_adj`]: writes of `/proc/PID/oom_score_adj`.
//! - [`MmStruct::oom_reap_task_mm`]: the OOM reaper's unmap (Linux
//!   `__oom_reap_task_mm`): every private VMA that is not locked loses its
//!   pages, under the mmap lock held for reading, without waiting for
//!   the victim to run.
//!
//! The kernel side (`kernel/src/oom_kill.rs`) finds the tasks, prints
//! Linux's report, sends `SIGKILL` and runs the reaper thread.
//!
//! Differences from Linux: no memory cgroups, cpusets or mempolicies
//! (every OOM is global, `constraint=CONSTRAINT_NONE`); no
//! `oom_task_origin` (no `swapoff` or KSM).

// Its tests free pages they allocated (an unsafe call).
#![cfg_attr(not(test), forbid(unsafe_code))]

use core::fmt;

use uapi::errno::Errno;

use crate::addr::{PAGE_SHIFT, PAGE_SIZE};
use crate::gfp::Gfp;
use crate::mmap::{MmCounter, MmStruct};
use crate::mmzone::PAGE_ALLOC_COSTLY_ORDER;
use crate::page_alloc::PgData;
use crate::pgtable::{PteFormat, TlbGather};
use crate::vma::{VmaAlloc, VmaFlags};

/// `oom_score_adj` that makes a task unkillable (Linux `OOM_SCORE_ADJ_MIN`).
pub const OOM_SCORE_ADJ_MIN: i16 = -1000;
/// The largest `oom_score_adj`: kill this task first (Linux
/// `OOM_SCORE_ADJ_MAX`).
pub const OOM_SCORE_ADJ_MAX: i16 = 1000;

/// The address space of a candidate as the OOM killer sees it (Linux
/// reads these from `mm_struct`: `total_vm`, the RSS counters,
/// `pgtables_bytes`, `MMF_OOM_SKIP`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OomMm {
    /// Mapped pages (`total_vm`).
    pub total_vm: u64,
    /// Anonymous pages mapped (`MM_ANONPAGES`).
    pub rss_anon: u64,
    /// File pages mapped (`MM_FILEPAGES`).
    pub rss_file: u64,
    /// Shmem pages mapped (`MM_SHMEMPAGES`).
    pub rss_shmem: u64,
    /// Swap entries (`MM_SWAPENTS`): 0 until there is swap.
    pub swapents: u64,
    /// Bytes of page tables (`mm_pgtables_bytes`).
    pub pgtables_bytes: u64,
    /// Already reaped, or torn down by its exit (`MMF_OOM_SKIP`): nothing
    /// more to gain from it.
    pub oom_skip: bool,
}

impl OomMm {
    /// The counters of `mm` now. They are atomics: the caller may hold
    /// the mmap lock either way.
    pub fn of<F: PteFormat, A: VmaAlloc>(mm: &MmStruct<'_, F, A>) -> OomMm {
        OomMm {
            total_vm: mm.total_vm(),
            rss_anon: mm.counter(MmCounter::AnonPages),
            rss_file: mm.counter(MmCounter::FilePages),
            rss_shmem: mm.counter(MmCounter::ShmemPages),
            swapents: mm.counter(MmCounter::SwapEnts),
            pgtables_bytes: mm.nr_ptes() << PAGE_SHIFT,
            oom_skip: false,
        }
    }

    /// Resident pages (Linux `get_mm_rss`).
    pub fn rss(&self) -> u64 {
        self.rss_anon.saturating_add(self.rss_file).saturating_add(self.rss_shmem)
    }
}

/// Whether a task was chosen by the OOM killer before (Linux
/// `tsk_is_oom_victim` and its `oom_mm`'s `MMF_OOM_SKIP`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OomVictim {
    /// Never chosen.
    #[default]
    No,
    /// Chosen and killed; its memory is not back yet.
    Pending,
    /// Chosen, and its memory was reaped or freed by its exit.
    Reaped,
}

/// A task as the OOM killer sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OomTask {
    /// Its pid: 1 is init, never killed.
    pub pid: u32,
    /// A kernel thread (Linux `PF_KTHREAD`): never killed.
    pub kthread: bool,
    /// Its `oom_score_adj`.
    pub oom_score_adj: i16,
    /// Its address space, if it has one.
    pub mm: Option<OomMm>,
    /// A vfork child still on its parent's address space (Linux
    /// `in_vfork`): killing it frees nothing of its own.
    pub in_vfork: bool,
    /// Whether the OOM killer chose it before.
    pub victim: OomVictim,
}

/// Linux `oom_unkillable_task`: init and kernel threads.
fn oom_unkillable_task(task: &OomTask) -> bool {
    task.pid == 1 || task.kthread
}

/// How good a victim `task` is, in pages, out of `totalpages` (RAM plus
/// swap); `None` if it must not be chosen (Linux `oom_badness`'s
/// `LONG_MIN`). Badness can be negative: a small task with a negative
/// `oom_score_adj` still counts, below every task without one.
pub fn oom_badness(task: &OomTask, totalpages: u64) -> Option<i64> {
    if oom_unkillable_task(task) {
        return None;
    }
    let mm = task.mm?;
    if task.oom_score_adj <= OOM_SCORE_ADJ_MIN || mm.oom_skip || task.in_vfork {
        return None;
    }
    let pages = mm.rss().saturating_add(mm.swapents).saturating_add(mm.pgtables_bytes / PAGE_SIZE);
    let points = i64::try_from(pages).unwrap_or(i64::MAX);
    let unit = i64::try_from(totalpages / 1000).unwrap_or(i64::MAX);
    Some(points.saturating_add(i64::from(task.oom_score_adj).saturating_mul(unit)))
}

/// What [`select_bad_process`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OomChoice<T> {
    /// Kill this task, whose badness is `points`.
    Victim {
        /// The task.
        task: T,
        /// Its badness.
        points: i64,
    },
    /// A victim chosen before is still giving its memory back: kill no one
    /// and let the allocation retry (Linux's `(void *)-1UL`).
    Abort,
    /// No task may be killed.
    NoVictim,
}

/// Picks the task to kill among `tasks` (Linux `select_bad_process` with
/// `oom_evaluate_task`): the highest [`oom_badness`], the later one on a
/// tie; [`OomChoice::Abort`] as soon as a killable task is a victim not
/// yet reaped. Each task comes with what the caller wants back for it.
pub fn select_bad_process<T>(tasks: impl IntoIterator<Item = (T, OomTask)>, totalpages: u64) -> OomChoice<T> {
    let mut chosen: Option<(T, i64)> = None;
    for (handle, task) in tasks {
        if oom_unkillable_task(&task) {
            continue;
        }
        match task.victim {
            OomVictim::Pending => return OomChoice::Abort,
            OomVictim::Reaped => continue,
            OomVictim::No => {}
        }
        let Some(points) = oom_badness(&task, totalpages) else { continue };
        if chosen.as_ref().is_none_or(|&(_, best)| points >= best) {
            chosen = Some((handle, points));
        }
    }
    match chosen {
        Some((task, points)) => OomChoice::Victim { task, points },
        None => OomChoice::NoVictim,
    }
}

/// `/proc/PID/oom_score` (Linux `proc_oom_score`): 0 for a task that is
/// never chosen, else the badness as a share of `totalpages` scaled into
/// 0..=2000, so that `oom_score_adj` 0 reads about 666 plus the task's
/// thousandths of memory times 2/3.
pub fn proc_oom_score(task: &OomTask, totalpages: u64) -> u64 {
    let Some(badness) = oom_badness(task, totalpages) else { return 0 };
    let total = i64::try_from(totalpages.max(1)).unwrap_or(i64::MAX);
    let share = i128::from(badness) * 1000 / i128::from(total);
    let points = (1000 + share) * 2 / 3;
    u64::try_from(points.clamp(0, 2000)).unwrap_or(0)
}

/// The bytes a write to `oom_score_adj` looks at (Linux's
/// `PROC_NUMBUF` buffer less its terminating NUL).
pub const OOM_SCORE_ADJ_WRITE_MAX: usize = 12;

/// Parses a write to `/proc/PID/oom_score_adj` as Linux's
/// `oom_score_adj_write` does: the first [`OOM_SCORE_ADJ_WRITE_MAX`]
/// bytes, white space stripped, an `int` in C notation (`kstrtoint` with
/// base 0: decimal, `0x` hex, `0` octal, an optional sign); `EINVAL` for
/// anything else and for a value outside -1000..=1000, `ERANGE` for one
/// that does not fit an `int`.
pub fn parse_oom_score_adj(buf: &[u8]) -> Result<i16, Errno> {
    let buf = &buf[..buf.len().min(OOM_SCORE_ADJ_WRITE_MAX)];
    // A NUL ends the string, as in Linux's zeroed buffer.
    let buf = buf.split(|&b| b == 0).next().unwrap_or(&[]);
    let text = core::str::from_utf8(buf).map_err(|_| Errno::EINVAL)?.trim();
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        (16, hex)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(Errno::EINVAL);
    }
    let magnitude = i64::from_str_radix(digits, radix).map_err(|_| Errno::ERANGE)?;
    let value = if negative { -magnitude } else { magnitude };
    let value = i32::try_from(value).map_err(|_| Errno::ERANGE)?;
    if !(i32::from(OOM_SCORE_ADJ_MIN)..=i32::from(OOM_SCORE_ADJ_MAX)).contains(&value) {
        return Err(Errno::EINVAL);
    }
    i16::try_from(value).map_err(|_| Errno::EINVAL)
}

/// A task's `oom_score_adj` and the floor below which only a privileged
/// writer may take it (Linux `signal->oom_score_adj` and
/// `oom_score_adj_min`), inherited at fork.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OomScoreAdj {
    /// The adjustment.
    pub adj: i16,
    /// The lowest value an unprivileged write may set.
    pub min: i16,
}

/// Applies a write of `new` to `current` (Linux `__set_oom_adj`, not the
/// legacy `oom_adj`): below the floor needs `CAP_SYS_RESOURCE`
/// (`privileged`), else `EACCES`; a privileged write also moves the floor
/// to the new value.
pub fn may_set_oom_score_adj(current: OomScoreAdj, new: i16, privileged: bool) -> Result<OomScoreAdj, Errno> {
    if new < current.min && !privileged {
        return Err(Errno::EACCES);
    }
    Ok(OomScoreAdj { adj: new, min: if privileged { new } else { current.min } })
}

/// Whether an allocation that found no memory after reclaim may call the
/// OOM killer (Linux `__alloc_pages_may_oom`'s and `out_of_memory`'s
/// early returns): it must be allowed to block and to call into file
/// systems, not ask to fail rather than kill (`__GFP_NORETRY`,
/// `__GFP_RETRY_MAYFAIL`, `__GFP_THISNODE`), and not be of a costly
/// order, which the OOM killer would not help.
pub fn gfp_may_oom(gfp: Gfp, order: u32) -> bool {
    gfp.allows_blocking()
        && gfp.contains(Gfp::FS)
        && !gfp.intersects(Gfp::NORETRY | Gfp::RETRY_MAYFAIL | Gfp::THISNODE)
        && order <= PAGE_ALLOC_COSTLY_ORDER
}

/// The OOM killer as the page allocator calls it; the kernel registers
/// it with [`PgData::set_oom_killer`].
pub trait OutOfMemory: Sync {
    /// Linux `out_of_memory`: frees memory by killing a task, or finds a
    /// victim's memory already on its way back. True if the allocation
    /// should retry (reclaim, then the free lists, then here again);
    /// false if nothing can be done and it should fail. Called with a
    /// mask for which [`gfp_may_oom`] holds. May sleep.
    fn out_of_memory(&self, pgdat: &PgData<'_>, gfp: Gfp, order: u32) -> bool;

    /// Whether the calling task is itself a victim (Linux
    /// `tsk_is_oom_victim(current)`): its allocations fail rather than
    /// wait, so that it can exit.
    fn current_is_victim(&self) -> bool;
}

/// What [`MmStruct::oom_reap_task_mm`] took away.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Ptes cleared.
    pub ptes: u64,
    /// VMAs passed over: shared or locked.
    pub skipped_vmas: u64,
}

impl fmt::Display for Reaped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ptes cleared, {} VMAs kept", self.ptes, self.skipped_vmas)
    }
}

impl<F: PteFormat, A: VmaAlloc> MmStruct<'_, F, A> {
    /// Unmaps the pages of every private VMA that is not `VM_LOCKED`
    /// (Linux `__oom_reap_task_mm`): anonymous memory, and private copies
    /// and mappings of file pages (the page cache keeps the file's own
    /// pages). Shared mappings stay: their pages belong to their file and
    /// would not be freed. The caller holds the mmap lock for reading,
    /// as Linux's reaper does (taken with a trylock, so it never waits
    /// for the victim); each pte goes under the page-table lock, so the
    /// victim may still fault meanwhile. The VMAs stay: the victim's exit
    /// tears them down and finds the ptes empty.
    pub fn oom_reap_task_mm(&self) -> Reaped {
        let mut reaped = Reaped::default();
        let mut gather = TlbGather::for_mm(self.pgd.root());
        for vma in self.vmas.iter() {
            let flags = vma.flags();
            if flags.intersects(VmaFlags::LOCKED | VmaFlags::SHARED) {
                reaped.skipped_vmas += 1;
                continue;
            }
            reaped.ptes +=
                self.zap_pte_range_shared(vma.start().as_u64(), vma.end().as_u64(), vma.flags(), None, &mut gather);
        }
        gather.finish(self.tlb, self.pgd.pgdat());
        reaped
    }
}

#[cfg(test)]
mod tests;
