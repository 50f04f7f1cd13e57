//! Resource limits and usage: Linux's `include/uapi/asm-generic/resource.h`
//! (`RLIMIT_*`, `RLIM_INFINITY`) and `include/uapi/linux/resource.h`
//! (`struct rlimit`, `struct rusage`, `RUSAGE_*`, `PRIO_*`).

use crate::time::Timeval;

/// `RLIMIT_CPU`: CPU time in seconds.
pub const RLIMIT_CPU: u32 = 0;
/// `RLIMIT_FSIZE`: the largest file size.
pub const RLIMIT_FSIZE: u32 = 1;
/// `RLIMIT_DATA`: the largest data segment (heap and private mappings).
pub const RLIMIT_DATA: u32 = 2;
/// `RLIMIT_STACK`: the largest main-thread stack.
pub const RLIMIT_STACK: u32 = 3;
/// `RLIMIT_CORE`: the largest core file.
pub const RLIMIT_CORE: u32 = 4;
/// `RLIMIT_RSS`: the largest resident set (not enforced).
pub const RLIMIT_RSS: u32 = 5;
/// `RLIMIT_NPROC`: the most processes per real uid.
pub const RLIMIT_NPROC: u32 = 6;
/// `RLIMIT_NOFILE`: one more than the highest file descriptor.
pub const RLIMIT_NOFILE: u32 = 7;
/// `RLIMIT_MEMLOCK`: the most locked memory.
pub const RLIMIT_MEMLOCK: u32 = 8;
/// `RLIMIT_AS`: the largest address space.
pub const RLIMIT_AS: u32 = 9;
/// `RLIMIT_LOCKS`: the most file locks.
pub const RLIMIT_LOCKS: u32 = 10;
/// `RLIMIT_SIGPENDING`: the most pending signals.
pub const RLIMIT_SIGPENDING: u32 = 11;
/// `RLIMIT_MSGQUEUE`: the most bytes in POSIX message queues.
pub const RLIMIT_MSGQUEUE: u32 = 12;
/// `RLIMIT_NICE`: the ceiling of the nice value, as `20 - nice`.
pub const RLIMIT_NICE: u32 = 13;
/// `RLIMIT_RTPRIO`: the ceiling of the real-time priority.
pub const RLIMIT_RTPRIO: u32 = 14;
/// `RLIMIT_RTTIME`: CPU time in microseconds under a real-time policy
/// without blocking.
pub const RLIMIT_RTTIME: u32 = 15;
/// `RLIM_NLIMITS`: the number of resource limits.
pub const RLIM_NLIMITS: u32 = 16;

/// `RLIM_INFINITY`: no limit.
pub const RLIM_INFINITY: u64 = u64::MAX;

/// `struct rlimit`: a soft and a hard limit (`getrlimit`, `prlimit64`).
#[doc(alias = "rlimit")]
#[doc(alias = "rlimit64")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rlimit {
    /// The soft limit, enforced.
    pub rlim_cur: u64,
    /// The hard limit, the ceiling of the soft limit.
    pub rlim_max: u64,
}

/// `RUSAGE_SELF`: `getrusage` of the calling process.
pub const RUSAGE_SELF: i32 = 0;
/// `RUSAGE_CHILDREN`: `getrusage` of the waited-for children.
pub const RUSAGE_CHILDREN: i32 = -1;
/// `RUSAGE_BOTH`: self and children (kernel-internal use).
pub const RUSAGE_BOTH: i32 = -2;
/// `RUSAGE_THREAD`: `getrusage` of the calling thread.
pub const RUSAGE_THREAD: i32 = 1;

/// `PRIO_PROCESS`: `getpriority`/`setpriority` of a process.
pub const PRIO_PROCESS: i32 = 0;
/// `PRIO_PGRP`: of a process group.
pub const PRIO_PGRP: i32 = 1;
/// `PRIO_USER`: of a user's processes.
pub const PRIO_USER: i32 = 2;

/// `struct rusage`: resource usage (`getrusage`, `wait4`). Linux fills
/// the times, `ru_maxrss`, the fault counts, the block counts and the
/// context-switch counts; the rest stay zero.
#[doc(alias = "rusage")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rusage {
    /// User CPU time.
    pub ru_utime: Timeval,
    /// System CPU time.
    pub ru_stime: Timeval,
    /// Largest resident set, KiB.
    pub ru_maxrss: i64,
    /// Integral shared memory size (unused).
    pub ru_ixrss: i64,
    /// Integral unshared data size (unused).
    pub ru_idrss: i64,
    /// Integral unshared stack size (unused).
    pub ru_isrss: i64,
    /// Page faults served without I/O.
    pub ru_minflt: i64,
    /// Page faults that needed I/O.
    pub ru_majflt: i64,
    /// Swaps (unused).
    pub ru_nswap: i64,
    /// Block input operations.
    pub ru_inblock: i64,
    /// Block output operations.
    pub ru_oublock: i64,
    /// IPC messages sent (unused).
    pub ru_msgsnd: i64,
    /// IPC messages received (unused).
    pub ru_msgrcv: i64,
    /// Signals received (unused).
    pub ru_nsignals: i64,
    /// Voluntary context switches.
    pub ru_nvcsw: i64,
    /// Involuntary context switches.
    pub ru_nivcsw: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;
    use core::mem::offset_of;

    /// Every constant against the host's `<linux/resource.h>` and the headers they include.
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/resource.h"];
            RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_DATA, RLIMIT_STACK, RLIMIT_CORE, RLIMIT_RSS, RLIMIT_NPROC,
            RLIMIT_NOFILE, RLIMIT_MEMLOCK, RLIMIT_AS, RLIMIT_LOCKS, RLIMIT_SIGPENDING, RLIMIT_MSGQUEUE,
            RLIMIT_NICE, RLIMIT_RTPRIO, RLIMIT_RTTIME, RLIM_NLIMITS, RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_BOTH,
            RUSAGE_THREAD, PRIO_PROCESS, PRIO_PGRP, PRIO_USER, RLIM_INFINITY,
        );
    }

    /// `sizeof`/`offsetof` from the host's `<linux/resource.h>`.
    #[test]
    fn layouts_match_linux_headers() {
        assert_eq!(size_of::<Rusage>(), 144);
        assert_eq!(offset_of!(Rusage, ru_utime), 0);
        assert_eq!(offset_of!(Rusage, ru_stime), 16);
        assert_eq!(offset_of!(Rusage, ru_maxrss), 32);
        assert_eq!(offset_of!(Rusage, ru_ixrss), 40);
        assert_eq!(offset_of!(Rusage, ru_idrss), 48);
        assert_eq!(offset_of!(Rusage, ru_isrss), 56);
        assert_eq!(offset_of!(Rusage, ru_minflt), 64);
        assert_eq!(offset_of!(Rusage, ru_majflt), 72);
        assert_eq!(offset_of!(Rusage, ru_nswap), 80);
        assert_eq!(offset_of!(Rusage, ru_inblock), 88);
        assert_eq!(offset_of!(Rusage, ru_oublock), 96);
        assert_eq!(offset_of!(Rusage, ru_msgsnd), 104);
        assert_eq!(offset_of!(Rusage, ru_msgrcv), 112);
        assert_eq!(offset_of!(Rusage, ru_nsignals), 120);
        assert_eq!(offset_of!(Rusage, ru_nvcsw), 128);
        assert_eq!(offset_of!(Rusage, ru_nivcsw), 136);
        assert_eq!(size_of::<Rlimit>(), 16);
        assert_eq!(offset_of!(Rlimit, rlim_cur), 0);
        assert_eq!(offset_of!(Rlimit, rlim_max), 8);
    }
}
