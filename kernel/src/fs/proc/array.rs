//! `/proc/PID/status`, `stat` and `statm` (Linux `fs/proc/array.c`:
//! `proc_pid_status`, `do_task_stat`, `proc_pid_statm`, with
//! `task_mem`'s memory lines of `fs/proc/task_mmu.c`).
//!
//! `status` has Linux 6.x's lines in Linux's order, but for those this
//! kernel has nothing to say about: `FDSize`, the `Speculation_*` and
//! `SpeculationIndirectBranch` lines, `Mems_allowed` is one node's
//! mask (Linux prints `MAX_NUMNODES` bits). `VmPeak` is `VmSize` (the
//! peak is not kept).
//!
//! `stat` has Linux's 52 fields, the fault counts and times
//! (`minflt`..`cstime`, 10-17) from the tick's accounting
//! (`crate::sys`). Those that are 0 or fixed on Linux too are so here: `tty_nr` 0 and `tpgid` -1 (no
//! controlling terminal), `itrealvalue`, `nswap`, `cnswap`, the
//! instruction and stack pointers (Linux zeroes them), `rt_priority`,
//! `policy` (`SCHED_NORMAL`), the block I/O delay and guest times;
//! `priority` 20 and `nice` 0 (every task runs at the one priority);
//! `flags` has only `PF_KTHREAD`.

#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write as _;
use core::sync::atomic::Ordering;

use uapi::errno::Errno;
use uapi::signal::{SIG_DFL, SIG_IGN};

use super::TryString;
use super::base;
use crate::sched::{Task, TaskState};

/// Linux `USER_HZ`: the unit of `stat`'s times.
const USER_HZ: u64 = 100;

/// Linux `PF_KTHREAD`.
const PF_KTHREAD: u32 = 0x0020_0000;

/// The state as `status` names it (Linux `task_state_array`).
fn task_state(task: &Task) -> &'static str {
    if task.proc.group.zombie.load(Ordering::Acquire) {
        return "Z (zombie)";
    }
    match task.state() {
        TaskState::Running => "R (running)",
        TaskState::Interruptible => "S (sleeping)",
        TaskState::Uninterruptible => "D (disk sleep)",
        TaskState::Dead => "X (dead)",
    }
}

/// The parent's process id, 0 for none (Linux `task_tgid_nr_ns` of
/// `real_parent`).
fn ppid(task: &Task) -> u32 {
    task.proc.group.parent.lock().upgrade().map_or(0, |p| p.tgid)
}

/// The process group and session ids.
fn pgrp_and_session(task: &Task) -> (u32, u32) {
    (task.proc.group.sys.pgrp(), task.proc.group.sys.session())
}

/// The thread's pending, blocked, ignored and caught signals and the
/// process's pending ones as bit masks (bit `n - 1` for signal `n`;
/// Linux `collect_sigign_sigcatch`).
fn signal_masks(task: &Task) -> [u64; 5] {
    let sig = task.proc.signal.lock();
    let (mut ignored, mut caught) = (0u64, 0u64);
    for (i, action) in sig.action.iter().enumerate() {
        match action.sa_handler {
            SIG_DFL => {}
            SIG_IGN => ignored |= 1 << i,
            _ => caught |= 1 << i,
        }
    }
    let own = task.proc.sigpending.lock();
    [own.pending, own.blocked, ignored, caught, sig.shared_pending]
}

/// The online CPUs as Linux's `%*pb` (hex, as many digits as CPUs need)
/// and `%*pbl` (ranges) print a cpumask.
fn cpus_allowed() -> (String, String) {
    let mask = crate::arch::x86_64::smp::online_mask();
    let bits = u64::BITS - mask.leading_zeros();
    let digits = bits.div_ceil(4).max(1) as usize;
    let mut list = String::new();
    let mut cpu = 0;
    while cpu < u64::BITS {
        if mask & (1 << cpu) == 0 {
            cpu += 1;
            continue;
        }
        let first = cpu;
        while cpu + 1 < u64::BITS && mask & (1 << (cpu + 1)) != 0 {
            cpu += 1;
        }
        let sep = if list.is_empty() { "" } else { "," };
        let _ = if first == cpu { write!(list, "{sep}{first}") } else { write!(list, "{sep}{first}-{cpu}") };
        cpu += 1;
    }
    (alloc::format!("{mask:0digits$x}"), list)
}

fn enomem(_: core::fmt::Error) -> Errno {
    Errno::ENOMEM
}

/// `/proc/PID/status` (Linux `proc_pid_status`).
pub fn proc_pid_status(task: &Arc<Task>) -> Result<Vec<u8>, Errno> {
    let mut s = TryString::default();
    let pid = task.pid;
    let tgid = base::tgid(task);
    let cred = *task.proc.cred.lock();
    let umask = task.proc.fs.lock().umask;
    let (pgrp, session) = pgrp_and_session(task);
    let mm_ref = task.proc.mm();
    write!(
        s,
        "Name:\t{}\nUmask:\t{umask:04o}\nState:\t{}\nTgid:\t{tgid}\nNgid:\t0\nPid:\t{pid}\nPPid:\t{}\nTracerPid:\t0\n\
         Uid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nGroups:\t \nNStgid:\t{tgid}\nNSpid:\t{pid}\nNSpgid:\t{pgrp}\n\
         NSsid:\t{session}\nKthread:\t{}\n",
        task.comm(),
        task_state(task),
        ppid(task),
        cred.uid.0,
        cred.euid.0,
        cred.suid.0,
        cred.fsuid.0,
        cred.gid.0,
        cred.egid.0,
        cred.sgid.0,
        cred.fsgid.0,
        u8::from(mm_ref.is_none()),
    )
    .map_err(enomem)?;
    if let Some(m) = mm_ref.as_ref() {
        task_mem(&mut s, &m.mmap_read_lock()).map_err(enomem)?;
    }
    let [pending, blocked, ignored, caught, shared] = signal_masks(task);
    let switches = task.acct.usage();
    let sigpending =
        task.proc.group.rlim.lock().cur(crate::resource::Resource::new(uapi::resource::RLIMIT_SIGPENDING)?);
    let full = crate::cred::KernelCap::FULL.bits();
    let (cpus, cpu_list) = cpus_allowed();
    write!(
        s,
        "CoreDumping:\t0\nTHP_enabled:\t0\nuntag_mask:\t{:#x}\nThreads:\t{}\nSigQ:\t{}/{sigpending}\n\
         SigPnd:\t{pending:016x}\nShdPnd:\t{:016x}\nSigBlk:\t{blocked:016x}\nSigIgn:\t{ignored:016x}\n\
         SigCgt:\t{caught:016x}\nCapInh:\t{:016x}\nCapPrm:\t{:016x}\nCapEff:\t{:016x}\nCapBnd:\t{full:016x}\n\
         CapAmb:\t{:016x}\nNoNewPrivs:\t0\nSeccomp:\t0\nSeccomp_filters:\t0\nCpus_allowed:\t{cpus}\n\
         Cpus_allowed_list:\t{cpu_list}\nMems_allowed:\t1\nMems_allowed_list:\t0\nvoluntary_ctxt_switches:\t{}\n\
         nonvoluntary_ctxt_switches:\t{}\n",
        u64::MAX,
        base::thread_group(task).len(),
        (pending | shared).count_ones(),
        shared,
        0,
        cred.cap_permitted.bits(),
        cred.cap_effective.bits(),
        0,
        switches.nvcsw,
        switches.nivcsw,
    )
    .map_err(enomem)?;
    Ok(s.0.into_bytes())
}

/// `status`'s memory lines (Linux `task_mem`), `HugetlbPages` included.
fn task_mem(s: &mut TryString, m: &crate::mmap::UserMm) -> core::fmt::Result {
    use mm::mmap::MmCounter;
    let kb = |pages: u64| pages << (mm::PAGE_SHIFT - 10);
    let text_kb = kb(m.text_pages());
    write!(
        s,
        "VmPeak:\t{:8} kB\nVmSize:\t{:8} kB\nVmLck:\t{:8} kB\nVmPin:\t{:8} kB\nVmHWM:\t{:8} kB\nVmRSS:\t{:8} kB\n\
         RssAnon:\t{:8} kB\nRssFile:\t{:8} kB\nRssShmem:\t{:8} kB\nVmData:\t{:8} kB\nVmStk:\t{:8} kB\n\
         VmExe:\t{:8} kB\nVmLib:\t{:8} kB\nVmPTE:\t{:8} kB\nVmSwap:\t{:8} kB\nHugetlbPages:\t{:8} kB\n",
        kb(m.total_vm()),
        kb(m.total_vm()),
        kb(m.locked_vm()),
        0,
        kb(m.hiwater_rss()),
        kb(m.rss_pages()),
        kb(m.counter(MmCounter::AnonPages)),
        kb(m.counter(MmCounter::FilePages)),
        kb(m.counter(MmCounter::ShmemPages)),
        kb(m.data_vm()),
        kb(m.stack_vm()),
        text_kb,
        kb(m.exec_vm()).saturating_sub(text_kb),
        kb(m.nr_ptes()),
        kb(m.counter(MmCounter::SwapEnts)),
        0,
    )
}

/// `/proc/PID/stat` and `/proc/PID/task/TID/stat` (Linux `do_task_stat`,
/// `whole` for the process's): 52 fields, see the module doc.
pub fn proc_pid_stat(task: &Arc<Task>, whole: bool) -> Result<Vec<u8>, Errno> {
    let mut s = TryString::default();
    let mm_ref = task.proc.mm();
    let threads = base::thread_group(task).len();
    let (pgrp, session) = pgrp_and_session(task);
    let (own, children) = crate::sys::proc_stat_usage(task, whole);
    let ticks = |ns: u64| ns / (1_000_000_000 / USER_HZ);
    let state = task_state(task).as_bytes()[0] as char;
    let flags = if mm_ref.is_none() { PF_KTHREAD } else { 0 };
    let start_time = task.proc.group.proc_info.start_boottime() / (1_000_000_000 / USER_HZ);
    let rsslim = task.proc.group.rlim.lock().cur(crate::resource::Resource::new(uapi::resource::RLIMIT_RSS)?);
    let [pending, blocked, ignored, caught, _] = signal_masks(task).map(|m| m & 0x7fff_ffff);
    // Linux shows whether there is a wait channel: a task not running.
    let wchan = u8::from((!whole || threads < 2) && task.state() != TaskState::Running);
    let exit_code = if task.proc.group.zombie.load(Ordering::Acquire) {
        task.proc.group.exit_status.load(Ordering::Acquire)
    } else {
        0
    };
    let guard = mm_ref.as_ref().map(|m| m.mmap_read_lock());
    let (vsize, rss, l) = match guard.as_deref() {
        Some(m) => (m.total_vm() << mm::PAGE_SHIFT, m.rss_pages(), m.layout),
        None => (0, 0, mm::mmap::MmLayout::default()),
    };
    writeln!(
        s,
        "{} ({}) {state} {} {pgrp} {session} 0 -1 {flags} {} {} {} {} {} {} {} {} 20 0 {threads} 0 {start_time} {vsize} \
         {rss} \
         {rsslim} {} {} {} 0 0 {pending} {blocked} {ignored} {caught} {wchan} 0 0 {} {} 0 0 0 0 0 {} {} {} {} {} {} {} \
         {exit_code}",
        task.pid,
        task.comm(),
        ppid(task),
        own.min_flt,
        children.min_flt,
        own.maj_flt,
        children.maj_flt,
        ticks(own.utime),
        ticks(own.stime),
        ticks(children.utime),
        ticks(children.stime),
        l.start_code,
        l.end_code,
        l.start_stack,
        task.proc.group.exit_signal.load(Ordering::Relaxed) as i32,
        task.cpu(),
        l.start_data,
        l.end_data,
        l.start_brk,
        l.arg_start,
        l.arg_end,
        l.env_start,
        l.env_end,
    )
    .map_err(enomem)?;
    drop(guard);
    Ok(s.0.into_bytes())
}

/// `/proc/PID/statm` (Linux `proc_pid_statm`): size, resident, shared,
/// text, lib (0), data, dt (0), in pages; all 0 without an address
/// space.
pub fn proc_pid_statm(task: &Task) -> Result<Vec<u8>, Errno> {
    let statm = task.proc.mm().map(|mm| mm.mmap_read_lock().task_statm()).unwrap_or_default();
    let (size, resident, shared, text, data) = (statm.size, statm.resident, statm.shared, statm.text, statm.data);
    super::proc_text(&format_args!("{size} {resident} {shared} {text} 0 {data} 0\n")).map(String::into_bytes)
}
