//! The process-wide state and calls of Linux `kernel/sys.c`: process
//! groups and sessions (`setpgid`, `getpgid`, `getpgrp`, `setsid`,
//! `getsid`), `times`, `getrusage`, `sysinfo`, `getcpu`; and the home of
//! [`ProcSys`], the part of Linux's `signal_struct` these calls, the
//! timers ([`crate::time`]) and wait share.
//!
//! Process groups and sessions: every user process has a process group
//! id and a session id, inherited at fork (Linux `copy_process`'s
//! `init_task_pid(p, PIDTYPE_PGID, task_pgrp(current))`). A program the
//! kernel starts ([`crate::process::spawn_user`]) leads a new session and
//! group of its own, as if its parent had run `setsid` (Linux's
//! `kernel_execve`'d programs inherit the kernel's session 0; ours are
//! each a login, so that `getpgrp` and `kill(0, ...)` behave as under a
//! shell). Kernel threads have group and session 0 and are never in a
//! process group, so `kill` with a group never reaches them.
//! `setpgid` follows Linux's checks and errors, including EACCES for a
//! child that has called execve (Linux's `PF_FORKNOEXEC`) and EPERM for a
//! session leader or a group in another session.
//!
//! Resource usage: a task's CPU time and counts are in
//! [`crate::sched::cputime`]. When a parent reaps a child with wait, the
//! child's own usage and its reaped children's are added to the parent's
//! children's usage (Linux `wait_task_zombie` into `cutime`, `cstime`,
//! `cmin_flt`...), which `RUSAGE_CHILDREN` and `times` report. The peak
//! RSS of an address space is kept when the process drops it (exit,
//! exec: Linux `setmax_mm_hiwater_rss` into `signal->maxrss`), so
//! `ru_maxrss` covers every address space the process had.
//!
//! A process's usage sums its live threads and those that exited (Linux
//! `thread_group_cputime`, `__exit_signal`).
//!
//! Differences from Linux: no
//! controlling terminals (`setsid` detaches nothing); `ru_inblock`,
//! `ru_oublock` are 0 (no per-task I/O accounting); `sysinfo` gives load
//! averages of 0 (no load average is computed) and `bufferram` 0 (no
//! buffer cache, as /proc/meminfo's `Buffers`).
//!
//! Lock order: `PGRP_LOCK` (Linux `tasklist_lock` for groups and
//! sessions) -> a process's `parent` lock, the task list's lock
//! (`setpgid`, `setsid`); [`ProcSys::timers`] -> the hrtimer queue -> a
//! signal lock; the process's thread list -> `exited` (the usage of the
//! threads that left, added and read under the list's lock so that each
//! thread counts once); `children` and `exited` are leaves. All
//! [`SpinLock`]s, process context only.

#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use uapi::errno::Errno;
use uapi::resource::{RUSAGE_CHILDREN, RUSAGE_SELF, RUSAGE_THREAD, Rusage};
use uapi::times::{Tms, USER_HZ};

use crate::arch::x86_64::uaccess::write_user;
use crate::sched::cputime::TaskUsage;
use crate::sched::{self, Pid, Task};
use crate::sync::SpinLock;
use crate::time::itimer::CpuItimers;
use crate::time::{NSEC_PER_SEC, ProcTimers};

/// Serializes changes of process groups and sessions against their
/// checks (Linux takes `tasklist_lock` for writing).
static PGRP_LOCK: SpinLock<()> = SpinLock::new(());

/// Process-wide state of Linux's `signal_struct` for process groups,
/// sessions, timers and resource usage.
#[derive(Default)]
pub struct ProcSys {
    /// Process group id (Linux `pids[PIDTYPE_PGID]`); 0 for kernel threads.
    pgrp: AtomicU32,
    /// Session id (Linux `pids[PIDTYPE_SID]`); 0 for kernel threads.
    session: AtomicU32,
    /// Whether the process leads its session (Linux `signal->leader`).
    leader: AtomicBool,
    /// Whether the process called execve since fork (Linux's
    /// `PF_FORKNOEXEC` cleared).
    did_exec: AtomicBool,
    /// `ITIMER_REAL` and the POSIX timers.
    pub timers: SpinLock<ProcTimers>,
    /// `ITIMER_VIRTUAL` and `ITIMER_PROF` (read by the tick, no lock).
    pub cpu_itimers: CpuItimers,
    /// Usage of the reaped children (Linux `cutime`, `cstime`, `cnvcsw`,
    /// `cnivcsw`, `cmin_flt`, `cmaj_flt`, `cmaxrss`).
    children: SpinLock<(TaskUsage, u64)>,
    /// Peak RSS in pages of the address spaces dropped (Linux
    /// `signal->maxrss`).
    maxrss: AtomicU64,
    /// Usage of the threads that exited (Linux `signal->utime`, `stime`,
    /// `nvcsw`, `nivcsw`, `min_flt`, `maj_flt`, added in
    /// `__exit_signal`).
    exited: SpinLock<TaskUsage>,
    /// Their exact CPU time, ns (Linux `signal->sum_sched_runtime`).
    exited_runtime: AtomicU64,
}

/// The process id of `task`.
fn tgid(task: &Task) -> Pid {
    task.proc.tgid()
}

/// Peak RSS of `task`'s address space, pages (0 without one).
fn mm_hiwater_rss(task: &Task) -> u64 {
    task.proc.mm().map_or(0, |mm| mm.mmap_read_lock().hiwater_rss())
}

impl ProcSys {
    /// The process group id.
    pub fn pgrp(&self) -> Pid {
        self.pgrp.load(Ordering::Acquire)
    }

    /// The session id.
    pub fn session(&self) -> Pid {
        self.session.load(Ordering::Acquire)
    }

    /// The child's share of its parent's at fork (Linux `copy_signal` and
    /// `copy_process`): the group and session, nothing else (no timers,
    /// no usage, not a session leader).
    pub fn fork_from(&self, parent: &ProcSys) {
        let _guard = PGRP_LOCK.lock();
        self.pgrp.store(parent.pgrp(), Ordering::Release);
        self.session.store(parent.session(), Ordering::Release);
    }

    /// Makes a program the kernel starts, pid `pid`, lead a new session
    /// and process group.
    pub fn new_session(&self, pid: Pid) {
        let _guard = PGRP_LOCK.lock();
        self.pgrp.store(pid, Ordering::Release);
        self.session.store(pid, Ordering::Release);
        self.leader.store(true, Ordering::Release);
    }

    /// The process's part of execve, before its old address space goes
    /// (Linux `exec_mmap`'s `setmax_mm_hiwater_rss`, `de_thread`'s
    /// `exit_itimers`, and the cleared `PF_FORKNOEXEC`): POSIX timers are
    /// deleted, interval timers kept.
    pub fn exec(&self, task: &Task) {
        self.maxrss.fetch_max(mm_hiwater_rss(task), Ordering::Relaxed);
        self.did_exec.store(true, Ordering::Release);
        self.timers.lock().posix.exit_itimers();
    }

    /// A thread's part of exit before its address space goes (Linux
    /// `exit_mm`'s `setmax_mm_hiwater_rss`).
    pub fn exit_mm(&self, task: &Task) {
        self.maxrss.fetch_max(mm_hiwater_rss(task), Ordering::Relaxed);
    }

    /// Adds an exiting thread's usage to the process's (Linux
    /// `__exit_signal`'s sums). Called under the process's thread-list
    /// lock as the thread leaves the list, so that a reader holding that
    /// lock ([`process_usage`]) counts every thread once.
    pub fn thread_left(&self, task: &Task) {
        self.exited.lock().add(&task.acct.usage());
        // The thread is the one running here.
        self.exited_runtime.fetch_add(task.acct.sum_exec_runtime(true), Ordering::Relaxed);
    }

    /// The exact CPU time of the threads that exited, ns, and the sum of
    /// `live(thread)` over the live ones, read together under the
    /// thread-list lock.
    pub fn group_cputime(&self, group: &crate::process::ThreadGroup, live: impl Fn(&Task) -> u64) -> u64 {
        let threads = group.threads.lock();
        let mut ns = self.exited_runtime.load(Ordering::Relaxed);
        for t in threads.iter() {
            ns = ns.saturating_add(live(t));
        }
        ns
    }

    /// The process's part of exit, by its last thread (Linux `do_exit`'s
    /// `hrtimer_cancel(&sig->real_timer)` and `exit_itimers` when the
    /// group is dead).
    pub fn exit(&self) {
        let mut timers = self.timers.lock();
        timers.real.cancel();
        timers.posix.exit_itimers();
        drop(timers);
        self.cpu_itimers.cancel();
    }

    /// The usage of the exited `child` and its reaped children (what
    /// `wait4` reports, Linux `getrusage(p, RUSAGE_BOTH)`), added to this
    /// process's children's usage (Linux `wait_task_zombie`).
    pub fn reap(&self, child: &Task) -> Rusage {
        let (cusage, cmaxrss) = *child.proc.group.sys.children.lock();
        let mut both = *child.proc.group.sys.exited.lock();
        both.add(&cusage);
        let maxrss = child.proc.group.sys.maxrss.load(Ordering::Relaxed).max(cmaxrss);
        let mut mine = self.children.lock();
        mine.0.add(&both);
        mine.1 = mine.1.max(maxrss);
        to_rusage(&both, maxrss)
    }
}

/// `usage` and a peak RSS in pages as `struct rusage` (times in µs,
/// RSS in KiB).
fn to_rusage(usage: &TaskUsage, maxrss_pages: u64) -> Rusage {
    let tv = crate::time::ns_to_timeval;
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Rusage {
        ru_utime: tv(usage.utime),
        ru_stime: tv(usage.stime),
        ru_maxrss: count(maxrss_pages.saturating_mul(mm::PAGE_SIZE / 1024)),
        ru_minflt: count(usage.min_flt),
        ru_majflt: count(usage.maj_flt),
        ru_nvcsw: count(usage.nvcsw),
        ru_nivcsw: count(usage.nivcsw),
        ..Rusage::default()
    }
}

/// The usage of `task`'s process: its exited threads' and its live
/// ones' (Linux `thread_group_cputime` and `getrusage`'s
/// `RUSAGE_SELF` loop).
fn process_usage(task: &Task) -> TaskUsage {
    let threads = task.proc.group.threads.lock();
    let mut usage = *task.proc.group.sys.exited.lock();
    for t in threads.iter() {
        usage.add(&t.acct.usage());
    }
    usage
}

/// The usage `/proc/PID/stat` shows of `task`: its process's (`whole`)
/// or its own, and its process's reaped children's.
pub fn proc_stat_usage(task: &Task, whole: bool) -> (TaskUsage, TaskUsage) {
    let own = if whole { process_usage(task) } else { task.acct.usage() };
    (own, task.proc.group.sys.children.lock().0)
}

/// Linux `getrusage`: the process's own usage (`RUSAGE_SELF`, every
/// thread's; the caller's alone for `RUSAGE_THREAD`) or its reaped
/// children's (`RUSAGE_CHILDREN`); EINVAL for anything else.
pub fn sys_getrusage(who: i32, ru: u64) -> Result<u64, Errno> {
    let me = sched::current();
    let sys = &me.proc.group.sys;
    let r = match who {
        RUSAGE_SELF | RUSAGE_THREAD => {
            let maxrss = sys.maxrss.load(Ordering::Relaxed).max(mm_hiwater_rss(&me));
            let usage = if who == RUSAGE_SELF { process_usage(&me) } else { me.acct.usage() };
            to_rusage(&usage, maxrss)
        }
        RUSAGE_CHILDREN => {
            let (usage, maxrss) = *sys.children.lock();
            to_rusage(&usage, maxrss)
        }
        _ => return Err(Errno::EINVAL),
    };
    write_user(ru, &r).map_err(|_| Errno::EFAULT)?;
    Ok(0)
}

/// ns as `clock_t` ticks of `USER_HZ` (Linux `nsec_to_clock_t`).
fn nsec_to_clock_t(ns: u64) -> i64 {
    i64::try_from(ns / (NSEC_PER_SEC / USER_HZ)).unwrap_or(i64::MAX)
}

/// Linux `times`: the process's and its reaped children's CPU time in
/// `USER_HZ` ticks at `tbuf` (if given); returns the ticks since boot
/// (Linux returns jiffies from an arbitrary start).
pub fn sys_times(tbuf: u64) -> Result<u64, Errno> {
    if tbuf != 0 {
        let me = sched::current();
        let own = process_usage(&me);
        let (children, _) = *me.proc.group.sys.children.lock();
        let tms = Tms {
            tms_utime: nsec_to_clock_t(own.utime),
            tms_stime: nsec_to_clock_t(own.stime),
            tms_cutime: nsec_to_clock_t(children.utime),
            tms_cstime: nsec_to_clock_t(children.stime),
        };
        write_user(tbuf, &tms).map_err(|_| Errno::EFAULT)?;
    }
    Ok(crate::arch::x86_64::apic::jiffies() * USER_HZ / crate::arch::x86_64::apic::HZ)
}

/// The user process `pid` (0: the caller), or ESRCH.
fn find_process(pid: i32) -> Result<alloc::sync::Arc<Task>, Errno> {
    match pid {
        0 => Ok(sched::current()),
        p if p > 0 => {
            let task = sched::find_task_by_pid(p as u32).ok_or(Errno::ESRCH)?;
            if task.proc.group.sys.session() == 0 {
                return Err(Errno::ESRCH);
            }
            Ok(task)
        }
        _ => Err(Errno::ESRCH),
    }
}

/// Calls `f` for every user process (zombies not yet reaped included,
/// as Linux's pid hashes keep them): the task of its first thread.
pub fn for_each_process(mut f: impl FnMut(&alloc::sync::Arc<Task>)) {
    sched::for_each_task(|t| {
        if t.proc.group.sys.session() != 0 && t.pid == t.proc.tgid() {
            f(t);
        }
    });
}

/// Linux `setpgid`: moves process `pid` (0: the caller) into group
/// `pgid` (0: `pid`).
pub fn sys_setpgid(pid: i32, pgid: i32) -> Result<u64, Errno> {
    let me = sched::current();
    let pid = if pid == 0 { tgid(&me) as i32 } else { pid };
    let pgid = if pgid == 0 { pid } else { pgid };
    if pgid < 0 {
        return Err(Errno::EINVAL);
    }
    let p = find_process(pid)?;
    let _guard = PGRP_LOCK.lock();
    let is_child =
        p.proc.group.parent.lock().upgrade().is_some_and(|parent| alloc::sync::Arc::ptr_eq(&parent, &me.proc.group));
    if is_child {
        if p.proc.group.sys.session() != me.proc.group.sys.session() {
            return Err(Errno::EPERM);
        }
        if p.proc.group.sys.did_exec.load(Ordering::Acquire) {
            return Err(Errno::EACCES);
        }
    } else if !alloc::sync::Arc::ptr_eq(&p.proc.group, &me.proc.group) {
        return Err(Errno::ESRCH);
    }
    if p.proc.group.sys.leader.load(Ordering::Acquire) {
        return Err(Errno::EPERM);
    }
    if pgid != pid {
        let mut found = false;
        let session = me.proc.group.sys.session();
        for_each_process(|t| found |= t.proc.group.sys.pgrp() == pgid as u32 && t.proc.group.sys.session() == session);
        if !found {
            return Err(Errno::EPERM);
        }
    }
    p.proc.group.sys.pgrp.store(pgid as u32, Ordering::Release);
    Ok(0)
}

/// Linux `getpgid`: the process group of `pid` (0: the caller).
pub fn sys_getpgid(pid: i32) -> Result<u64, Errno> {
    Ok(u64::from(find_process(pid)?.proc.group.sys.pgrp()))
}

/// Linux `getsid`: the session of `pid` (0: the caller).
pub fn sys_getsid(pid: i32) -> Result<u64, Errno> {
    Ok(u64::from(find_process(pid)?.proc.group.sys.session()))
}

/// Linux `setsid`: the caller leads a new session and group with its own
/// id; EPERM if it leads a session already or a group with that id
/// exists (it leads a group).
pub fn sys_setsid() -> Result<u64, Errno> {
    let me = sched::current();
    let sid = tgid(&me);
    let _guard = PGRP_LOCK.lock();
    if me.proc.group.sys.leader.load(Ordering::Acquire) {
        return Err(Errno::EPERM);
    }
    let mut taken = false;
    for_each_process(|t| taken |= t.proc.group.sys.pgrp() == sid);
    if taken {
        return Err(Errno::EPERM);
    }
    me.proc.group.sys.leader.store(true, Ordering::Release);
    me.proc.group.sys.session.store(sid, Ordering::Release);
    me.proc.group.sys.pgrp.store(sid, Ordering::Release);
    Ok(u64::from(sid))
}

/// Linux `sysinfo` (`do_sysinfo`): uptime in whole seconds rounded up,
/// memory and swap from the page allocator and the swap areas (as
/// /proc/meminfo's), the number of tasks; the memory figures are in
/// bytes (`mem_unit` 1), as Linux converts them when they fit.
pub fn sys_sysinfo(info: u64) -> Result<u64, Errno> {
    let pgdat = crate::mm::pgdat();
    let uptime_ns = crate::time::now();
    let (swap_total, swap_free) = crate::swapfile::si_swapinfo();
    let mut procs = 0u16;
    sched::for_each_task(|t| {
        if t.pid != 0 {
            procs = procs.saturating_add(1);
        }
    });
    let bytes = |pages: u64| pages.saturating_mul(mm::PAGE_SIZE);
    let si = uapi::sysinfo::Sysinfo {
        uptime: i64::try_from(uptime_ns.div_ceil(NSEC_PER_SEC)).unwrap_or(i64::MAX),
        totalram: bytes(pgdat.totalram_pages()),
        freeram: bytes(pgdat.nr_free_pages()),
        sharedram: bytes(pgdat.node_page_state_pages(mm::vmstat::NodeStatItem::NrShmem)),
        totalswap: bytes(swap_total),
        freeswap: bytes(swap_free),
        procs,
        mem_unit: 1,
        ..Default::default()
    };
    write_user(info, &si).map_err(|_| Errno::EFAULT)?;
    Ok(0)
}

/// Linux `getcpu`: the CPU the caller runs on and its NUMA node (0: one
/// node); either pointer may be null.
pub fn sys_getcpu(cpu: u64, node: u64) -> Result<u64, Errno> {
    let id = crate::arch::x86_64::smp::smp_processor_id();
    if cpu != 0 {
        write_user(cpu, &id).map_err(|_| Errno::EFAULT)?;
    }
    if node != 0 {
        write_user(node, &0u32).map_err(|_| Errno::EFAULT)?;
    }
    Ok(0)
}
