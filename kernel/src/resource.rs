//! Resource limits (Linux `signal_struct::rlim`, `INIT_RLIMITS` of
//! `include/asm-generic/resource.h`, and `kernel/sys.c`'s `do_prlimit`,
//! `getrlimit`, `setrlimit`, `prlimit64`).
//!
//! Every process has all [`RLIM_NLIMITS`] limits. The first process gets
//! Linux's boot values (`INIT_RLIMITS`, with `fork_init`'s
//! `RLIMIT_NPROC` and `RLIMIT_SIGPENDING` from the memory size); a child
//! copies its parent's at fork; exec keeps them.
//!
//! Who enforces what: the mm checks `RLIMIT_AS`, `RLIMIT_DATA`,
//! `RLIMIT_STACK` and `RLIMIT_MEMLOCK` (with `CAP_IPC_LOCK`) from its own
//! copy, [`mm::mmap::MmLimits`], which [`sync_mm_limits`] refreshes
//! whenever the process's limits or credentials change (setrlimit,
//! prlimit64, set*id, fork, exec); the descriptor table checks
//! `RLIMIT_NOFILE` at every allocation (Linux `alloc_fd`, `dup2`,
//! `F_DUPFD`). The other limits are kept and reported but not enforced:
//! no CPU-time timers, file sizes, core dumps, process counts per user
//! or pending-signal counts.
//!
//! Lock order: `Process::mm` slot (alone, to clone the reference) ->
//! the address space's mmap lock -> `Process::rlim` -> `Process::cred`.
//! The mmap lock sleeps, so no spin lock is held when it is taken.
//! [`sync_mm_limits`] reads `rlim` under the mmap lock, so two concurrent
//! changes (a process's own setrlimit and another's prlimit64) cannot
//! leave the older values in the mm.

#![forbid(unsafe_code)]

use uapi::capability::{CAP_IPC_LOCK, CAP_SYS_RESOURCE};
use uapi::errno::Errno;
use uapi::resource::*;

use crate::process::Process;
use crate::sched::Task;

/// Default `RLIMIT_STACK` soft limit (Linux `_STK_LIM`, 8 MiB): the mm's.
pub use mm::mmap::STACK_RLIMIT as STK_LIM;

/// Default `RLIMIT_MEMLOCK` (Linux `MLOCK_LIMIT`, 8 MiB since 5.16): the mm's.
pub use mm::mmap::MLOCK_LIMIT;

/// Default `RLIMIT_NOFILE` soft limit (Linux `INR_OPEN_CUR`).
pub const INR_OPEN_CUR: u64 = 1024;

/// Default `RLIMIT_NOFILE` hard limit (Linux `INR_OPEN_MAX`).
pub const INR_OPEN_MAX: u64 = 4096;

/// Default `RLIMIT_MSGQUEUE` (Linux `MQ_BYTES_MAX`, 800 KiB).
pub const MQ_BYTES_MAX: u64 = 819_200;

/// The highest `RLIMIT_NOFILE` hard limit (Linux `sysctl_nr_open`,
/// `/proc/sys/fs/nr_open`).
pub const SYSCTL_NR_OPEN: u64 = 1024 * 1024;

/// Linux `MIN_THREADS` and `MAX_THREADS` (`FUTEX_TID_MASK`): the bounds
/// of `max_threads`.
const MIN_THREADS: u64 = 20;
const MAX_THREADS: u64 = 0x3fff_ffff;

/// A valid `RLIMIT_*` number (below [`RLIM_NLIMITS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource(u32);

impl Resource {
    /// `resource` if it names a limit, else EINVAL (Linux `do_prlimit`'s
    /// first check).
    pub fn new(resource: u32) -> Result<Resource, Errno> {
        if resource < RLIM_NLIMITS { Ok(Resource(resource)) } else { Err(Errno::EINVAL) }
    }

    /// `RLIMIT_DATA`.
    pub const DATA: Resource = Resource(RLIMIT_DATA);
    /// `RLIMIT_STACK`.
    pub const STACK: Resource = Resource(RLIMIT_STACK);
    /// `RLIMIT_MEMLOCK`.
    pub const MEMLOCK: Resource = Resource(RLIMIT_MEMLOCK);
    /// `RLIMIT_AS`.
    pub const AS: Resource = Resource(RLIMIT_AS);
    /// `RLIMIT_NOFILE`.
    pub const NOFILE: Resource = Resource(RLIMIT_NOFILE);

    fn index(self) -> usize {
        self.0 as usize
    }
}

/// Linux `max_threads` (`set_max_threads`): the number of kernel stacks
/// that fill an eighth of RAM, within [`MIN_THREADS`, `MAX_THREADS`]
/// (`/proc/sys/kernel/threads-max`; half of it is the boot
/// `RLIMIT_NPROC`). Our stacks are 64 KiB, not Linux's 16 KiB
/// `THREAD_SIZE`, so the figure is a quarter of Linux's for the same RAM.
pub fn max_threads() -> u64 {
    let ram = crate::mm::try_pgdat().map_or(0, |p| p.totalram_pages().saturating_mul(mm::PAGE_SIZE));
    (ram / (crate::vmalloc::THREAD_SIZE * 8)).clamp(MIN_THREADS, MAX_THREADS)
}

/// A process's limits (Linux `signal_struct::rlim`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimits([Rlimit; RLIM_NLIMITS as usize]);

impl Default for Rlimits {
    fn default() -> Self {
        Rlimits::init()
    }
}

impl Rlimits {
    /// Linux's boot limits: `INIT_RLIMITS`, then `fork_init`'s
    /// `RLIMIT_NPROC` = `RLIMIT_SIGPENDING` = `max_threads / 2`.
    pub fn init() -> Rlimits {
        let both = |v: u64| Rlimit { rlim_cur: v, rlim_max: v };
        let mut r = [both(RLIM_INFINITY); RLIM_NLIMITS as usize];
        r[RLIMIT_STACK as usize] = Rlimit { rlim_cur: STK_LIM, rlim_max: RLIM_INFINITY };
        r[RLIMIT_CORE as usize] = Rlimit { rlim_cur: 0, rlim_max: RLIM_INFINITY };
        let half_threads = both(max_threads() / 2);
        r[RLIMIT_NPROC as usize] = half_threads;
        r[RLIMIT_NOFILE as usize] = Rlimit { rlim_cur: INR_OPEN_CUR, rlim_max: INR_OPEN_MAX };
        r[RLIMIT_MEMLOCK as usize] = both(MLOCK_LIMIT);
        r[RLIMIT_SIGPENDING as usize] = half_threads;
        r[RLIMIT_MSGQUEUE as usize] = both(MQ_BYTES_MAX);
        r[RLIMIT_NICE as usize] = both(0);
        r[RLIMIT_RTPRIO as usize] = both(0);
        Rlimits(r)
    }

    /// One limit.
    pub fn get(&self, resource: Resource) -> Rlimit {
        self.0[resource.index()]
    }

    /// The soft limit of `resource` (Linux `rlimit()`).
    pub fn cur(&self, resource: Resource) -> u64 {
        self.get(resource).rlim_cur
    }

    /// The soft `RLIMIT_NOFILE` as a descriptor bound (at most
    /// [`SYSCTL_NR_OPEN`], which setrlimit enforces).
    pub fn nofile(&self) -> usize {
        usize::try_from(self.cur(Resource::NOFILE).min(SYSCTL_NR_OPEN)).unwrap_or(usize::MAX)
    }

    /// What the mm checks, with `CAP_IPC_LOCK` (locked memory) and
    /// `CAP_SYS_ADMIN` (overcommit's admin reserve) from the credentials.
    pub fn mm_limits(&self, cap_ipc_lock: bool, cap_sys_admin: bool) -> mm::mmap::MmLimits {
        mm::mmap::MmLimits {
            address_space: self.get(Resource::AS),
            data: self.get(Resource::DATA),
            stack: self.get(Resource::STACK),
            memlock: self.get(Resource::MEMLOCK),
            cap_ipc_lock,
            cap_sys_admin,
        }
    }
}

/// The soft `RLIMIT_NOFILE` of the running task, as a descriptor bound.
pub fn current_nofile() -> usize {
    crate::sched::current().proc.group.rlim.lock().nofile()
}

/// Copies `proc`'s memory limits, `CAP_IPC_LOCK` and `CAP_SYS_ADMIN` into its address
/// space, if it has one. The mmap lock sleeps, so it is taken first, with
/// no spin lock held; `rlim` and `cred` are read under it, so two updates
/// racing store the later limits last.
pub fn sync_mm_limits(proc: &Process) {
    if let Some(mm) = proc.mm() {
        let mut space = mm.mmap_write_lock();
        let rlim = proc.group.rlim.lock();
        let (cap_ipc_lock, cap_sys_admin) = {
            let cred = proc.cred.lock();
            (cred.capable(CAP_IPC_LOCK), cred.capable(uapi::capability::CAP_SYS_ADMIN))
        };
        space.limits = rlim.mm_limits(cap_ipc_lock, cap_sys_admin);
    }
}

/// Linux `do_prlimit`: returns `task`'s old limit of `resource` and, if
/// `new` is given, sets it. EINVAL for an unknown resource or a soft
/// limit above the hard one; EPERM for an `RLIMIT_NOFILE` hard limit
/// above [`SYSCTL_NR_OPEN`] or for raising a hard limit without
/// `CAP_SYS_RESOURCE` (the caller's capability, as Linux checks
/// `capable()` of current).
pub fn do_prlimit(task: &Task, resource: u32, new: Option<Rlimit>) -> Result<Rlimit, Errno> {
    let resource = Resource::new(resource)?;
    if let Some(new) = new {
        if new.rlim_cur > new.rlim_max {
            return Err(Errno::EINVAL);
        }
        if resource == Resource::NOFILE && new.rlim_max > SYSCTL_NR_OPEN {
            return Err(Errno::EPERM);
        }
    }
    // Asked before taking the target's lock: the caller may be the target.
    let may_raise = crate::cred::capable(CAP_SYS_RESOURCE);
    let old = {
        let mut rlim = task.proc.group.rlim.lock();
        let old = rlim.get(resource);
        if let Some(new) = new {
            if new.rlim_max > old.rlim_max && !may_raise {
                return Err(Errno::EPERM);
            }
            rlim.0[resource.index()] = new;
        }
        old
    };
    if new.is_some() {
        sync_mm_limits(&task.proc);
    }
    Ok(old)
}

/// Linux `check_prlimit_permission`: another process's limits may be
/// read or changed when its real, effective and saved ids all equal the
/// caller's real ids, or with `CAP_SYS_RESOURCE`.
pub fn check_prlimit_permission(task: &Task) -> Result<(), Errno> {
    let me = crate::sched::current();
    if core::ptr::eq(task, &*me) {
        return Ok(());
    }
    let cred = *me.proc.cred.lock();
    let tcred = *task.proc.cred.lock();
    let id_match = [tcred.uid, tcred.euid, tcred.suid].iter().all(|&u| u == cred.uid)
        && [tcred.gid, tcred.egid, tcred.sgid].iter().all(|&g| g == cred.gid);
    if id_match || cred.capable(CAP_SYS_RESOURCE) { Ok(()) } else { Err(Errno::EPERM) }
}
