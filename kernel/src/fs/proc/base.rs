//! `/proc/PID/` and `/proc/PID/task/TID/` (Linux `fs/proc/base.c`): which
//! processes and threads there are, the files each has
//! ([`PID_ENTRIES`], in Linux's `tgid_base_stuff` order), their owners,
//! and the files of this module: `cmdline`, `environ`, `comm`, `mounts`,
//! `oom_score` and `oom_score_adj`. `status`, `stat` and `statm` are
//! [`super::array`]'s, the address-space files [`super::task_mmu`]'s.
//!
//! A process is named by its thread group id, its threads by their ids
//! ([`thread_group`], the one place that knows what a process's threads
//! are).
//!
//! Differences from Linux: `cmdline` of a process that rewrote the end
//! of its arguments (`setproctitle`) shows at most a page up to the
//! first NUL of its argument area (Linux `get_mm_proctitle` also looks
//! into the environment); reading another process's `environ` or
//! `cmdline` needs no `ptrace` access check (every caller is root or the
//! owner here); a task's start time ([`ProcInfo`]) is taken when its
//! process side is made, where Linux stamps `start_boottime` in
//! `copy_process`.

#![forbid(unsafe_code)]

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use uapi::errno::Errno;

use super::super::inode::Owner;
use crate::sched::{self, Comm, Pid, Task};

/// Process-wide `/proc` state (Linux keeps `start_boottime` in the
/// `task_struct`; one field on [`crate::process::Process`] so that it
/// moves with the rest of `signal_struct`'s when threads share one).
pub struct ProcInfo {
    /// When the process was made, in ns of the boot clock.
    start_boottime: AtomicU64,
}

impl Default for ProcInfo {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcInfo {
    /// Stamped now.
    pub fn new() -> Self {
        ProcInfo { start_boottime: AtomicU64::new(crate::arch::x86_64::tsc::now_ns()) }
    }

    /// When the process was made (Linux `start_boottime`), ns since boot.
    pub fn start_boottime(&self) -> u64 {
        self.start_boottime.load(Ordering::Relaxed)
    }
}

/// What a pid file shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidFileKind {
    /// `environ`.
    Environ,
    /// `status`.
    Status,
    /// `comm`.
    Comm,
    /// `cmdline`.
    Cmdline,
    /// `stat`.
    Stat,
    /// `statm`.
    Statm,
    /// `maps`.
    Maps,
    /// `mounts`.
    Mounts,
    /// `smaps`.
    Smaps,
    /// `smaps_rollup`.
    SmapsRollup,
    /// `pagemap`.
    Pagemap,
    /// `oom_score`.
    OomScore,
    /// `oom_score_adj`.
    OomScoreAdj,
}

/// A file of `/proc/PID/` (Linux `struct pid_entry`).
pub struct PidEntry {
    /// Its name.
    pub name: &'static str,
    /// Its permission bits.
    pub mode: u32,
    /// What it shows.
    pub kind: PidFileKind,
}

const fn entry(name: &'static str, mode: u32, kind: PidFileKind) -> PidEntry {
    PidEntry { name, mode, kind }
}

/// The files of `/proc/PID/` after `task/`, and of `/proc/PID/task/TID/`,
/// in Linux's order with Linux's modes.
pub static PID_ENTRIES: &[PidEntry] = &[
    entry("environ", 0o400, PidFileKind::Environ),
    entry("status", 0o444, PidFileKind::Status),
    entry("comm", 0o644, PidFileKind::Comm),
    entry("cmdline", 0o444, PidFileKind::Cmdline),
    entry("stat", 0o444, PidFileKind::Stat),
    entry("statm", 0o444, PidFileKind::Statm),
    entry("maps", 0o444, PidFileKind::Maps),
    entry("mounts", 0o444, PidFileKind::Mounts),
    entry("smaps", 0o444, PidFileKind::Smaps),
    entry("smaps_rollup", 0o444, PidFileKind::SmapsRollup),
    entry("pagemap", 0o400, PidFileKind::Pagemap),
    entry("oom_score", 0o444, PidFileKind::OomScore),
    entry("oom_score_adj", 0o644, PidFileKind::OomScoreAdj),
];

/// The index of the pid file `name`.
pub fn entry_named(name: &str) -> Option<usize> {
    PID_ENTRIES.iter().position(|e| e.name == name)
}

/// The process id of a task (Linux `task_tgid_nr`).
pub fn tgid(task: &Task) -> Pid {
    task.proc.tgid()
}

/// The running task's process id, what `/proc/self` names.
pub fn current_tgid() -> Pid {
    tgid(&sched::current())
}

/// The live threads of `task`'s process, in creation order (the leader
/// first while it lives; Linux `for_each_thread`), or the task itself if
/// it is on no thread list (a kernel thread, a process that ended).
pub fn thread_group(task: &Arc<Task>) -> Vec<Arc<Task>> {
    let threads = task.proc.group.thread_list();
    if threads.is_empty() { alloc::vec![task.clone()] } else { threads }
}

/// The process `pid`, if it exists (Linux `find_task_by_pid_ns` of a
/// thread group leader): pid 0 (the idle tasks) is none.
pub fn find_process(pid: Pid) -> Option<Arc<Task>> {
    sched::find_task_by_pid(pid).filter(|t| tgid(t) == t.pid)
}

/// A directory name as a pid (Linux `name_to_int`: decimal digits, no
/// sign, no leading zero but for "0").
fn name_to_pid(name: &str) -> Option<Pid> {
    if name.is_empty() || name.len() > 1 && name.starts_with('0') || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// The process `/proc/NAME` names, if it exists (Linux `proc_pid_lookup`).
pub fn lookup_tgid(name: &str) -> Option<Pid> {
    name_to_pid(name).and_then(find_process).map(|t| t.pid)
}

/// The lowest process id at or above `from` (Linux `next_tgid`), for
/// `/proc`'s listing in pid order.
pub fn next_tgid(from: u64) -> Option<Pid> {
    let mut best: Option<Pid> = None;
    sched::for_each_task(|t| {
        if t.pid != 0 && tgid(t) == t.pid && u64::from(t.pid) >= from && best.is_none_or(|b| t.pid < b) {
            best = Some(t.pid);
        }
    });
    best
}

/// The thread `/proc/PID/task/NAME` names, if it is one of `pid`'s
/// (Linux `proc_task_lookup`).
pub fn lookup_tid(pid: Pid, name: &str) -> Option<Pid> {
    let tid = name_to_pid(name)?;
    thread_group(&find_process(pid)?).iter().any(|t| t.pid == tid).then_some(tid)
}

/// The lowest thread id of `pid` at or above `from` (Linux
/// `first_tid`/`next_tid`).
pub fn next_tid(pid: Pid, from: u64) -> Option<Pid> {
    thread_group(&find_process(pid)?).iter().map(|t| t.pid).filter(|&tid| u64::from(tid) >= from).min()
}

/// The task a pid file is about: the thread under `task/`, else the
/// process; ENOENT once it is gone (Linux `get_proc_task`'s ESRCH comes
/// out of a read as ENOENT at the next lookup).
fn proc_task(pid: Pid, tid: Option<Pid>) -> Result<Arc<Task>, Errno> {
    let process = find_process(pid).ok_or(Errno::ENOENT)?;
    match tid {
        None => Ok(process),
        Some(tid) => thread_group(&process).into_iter().find(|t| t.pid == tid).ok_or(Errno::ENOENT),
    }
}

/// Who owns a process's directory and files (Linux `task_dump_owner`:
/// the effective ids).
pub fn task_dump_owner(pid: Pid) -> Result<Owner, Errno> {
    let task = find_process(pid).ok_or(Errno::ENOENT)?;
    let cred = *task.proc.cred.lock();
    Ok(Owner { uid: cred.euid.0, gid: cred.egid.0 })
}

/// The text of a pid file now.
pub fn show(pid: Pid, tid: Option<Pid>, entry: &PidEntry) -> Result<Vec<u8>, Errno> {
    let task = proc_task(pid, tid)?;
    let line =
        |v: &dyn core::fmt::Display| super::proc_text(&format_args!("{v}\n")).map(alloc::string::String::into_bytes);
    match entry.kind {
        PidFileKind::Environ => mm_area(&task, |l| (l.env_start, l.env_end)),
        PidFileKind::Cmdline => proc_pid_cmdline(&task),
        PidFileKind::Comm => line(&task.comm()),
        PidFileKind::Status => super::array::proc_pid_status(&task),
        PidFileKind::Stat => super::array::proc_pid_stat(&task, tid.is_none()),
        PidFileKind::Statm => super::array::proc_pid_statm(&task),
        PidFileKind::Maps => super::task_mmu::show(&task, super::task_mmu::Report::Maps),
        PidFileKind::Smaps => super::task_mmu::show(&task, super::task_mmu::Report::Smaps),
        PidFileKind::SmapsRollup => super::task_mmu::show(&task, super::task_mmu::Report::SmapsRollup),
        PidFileKind::Mounts => Ok(super::super::namespace::proc_mounts().into_bytes()),
        PidFileKind::OomScore => line(&crate::oom_kill::proc_oom_score(&task)),
        PidFileKind::OomScoreAdj => line(&task.proc.group.oom.score_adj().adj),
        // Read in pieces by offset (`task_mmu::pagemap_read`), never whole.
        PidFileKind::Pagemap => Err(Errno::EINVAL),
    }
}

/// A write to a pid file: `oom_score_adj` (Linux `oom_score_adj_write`),
/// `comm` (Linux `comm_write`: the caller's own threads only, EINVAL for
/// others, cut to 15 bytes); EINVAL for a file with no write handler.
pub fn write(pid: Pid, tid: Option<Pid>, entry: &PidEntry, buf: &[u8]) -> Result<usize, Errno> {
    let task = proc_task(pid, tid)?;
    match entry.kind {
        PidFileKind::OomScoreAdj => crate::oom_kill::write_oom_score_adj(task.pid, buf)?,
        PidFileKind::Comm => {
            let me = sched::current();
            if !thread_group(&me).iter().any(|t| Arc::ptr_eq(t, &task)) {
                return Err(Errno::EINVAL);
            }
            let name = buf.strip_suffix(b"\n").unwrap_or(buf);
            task.set_comm(Comm::new(name));
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(buf.len())
}

/// `[start, end)` of the process's memory as `layout` gives it (Linux
/// `environ_read`'s `access_remote_vm`); empty for a task without an
/// address space.
fn mm_area(task: &Task, range: impl Fn(&mm::mmap::MmLayout) -> (u64, u64)) -> Result<Vec<u8>, Errno> {
    let Some(mm) = task.proc.mm() else { return Ok(Vec::new()) };
    let m = mm.mmap_read_lock();
    let (start, end) = range(&m.layout);
    let len = usize::try_from(end.saturating_sub(start)).map_err(|_| Errno::ENOMEM)?;
    let mut buf = crate::syscall::zeroed_buf(len)?;
    let n = m.access_remote_vm(start, &mut buf);
    buf.truncate(n);
    Ok(buf)
}

/// `/proc/PID/cmdline` (Linux `get_mm_cmdline`): the argument strings as
/// exec laid them out, each with its NUL; if the last NUL was
/// overwritten, what comes before the first NUL, at most a page.
fn proc_pid_cmdline(task: &Task) -> Result<Vec<u8>, Errno> {
    let mut args = mm_area(task, |l| (l.arg_start, l.arg_end))?;
    if args.last().is_some_and(|&b| b != 0) {
        let end = args.iter().position(|&b| b == 0).unwrap_or(args.len()).min(mm::PAGE_SIZE as usize);
        args.truncate(end);
    }
    Ok(args)
}
