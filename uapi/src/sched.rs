//! Process creation and scheduling policy: the `CLONE_*` flags, `struct
//! clone_args` and `SCHED_*` policies of Linux's
//! `include/uapi/linux/sched.h`.
//!
//! `clone` takes the flags in its first argument with the exit signal in
//! the low byte ([`CSIGNAL`]); `clone3` takes a [`CloneArgs`] whose
//! `flags` may use all 64 bits and whose `exit_signal` is separate.

/// `CSIGNAL`: the mask of the exit signal in `clone` flags.
pub const CSIGNAL: u64 = 0x0000_00ff;
/// `CLONE_NEWTIME`: new time namespace (`clone3` and `unshare` only).
pub const CLONE_NEWTIME: u64 = 0x0000_0080;
/// `CLONE_VM`: share the address space.
pub const CLONE_VM: u64 = 0x0000_0100;
/// `CLONE_FS`: share root, cwd and umask.
pub const CLONE_FS: u64 = 0x0000_0200;
/// `CLONE_FILES`: share the file descriptor table.
pub const CLONE_FILES: u64 = 0x0000_0400;
/// `CLONE_SIGHAND`: share signal handlers.
pub const CLONE_SIGHAND: u64 = 0x0000_0800;
/// `CLONE_PIDFD`: store a pidfd for the child in the parent.
pub const CLONE_PIDFD: u64 = 0x0000_1000;
/// `CLONE_PTRACE`: the child is traced too if the parent is.
pub const CLONE_PTRACE: u64 = 0x0000_2000;
/// `CLONE_VFORK`: the parent sleeps until the child execs or exits.
pub const CLONE_VFORK: u64 = 0x0000_4000;
/// `CLONE_PARENT`: the child's parent is the caller's parent.
pub const CLONE_PARENT: u64 = 0x0000_8000;
/// `CLONE_THREAD`: the child joins the caller's thread group.
pub const CLONE_THREAD: u64 = 0x0001_0000;
/// `CLONE_NEWNS`: new mount namespace.
pub const CLONE_NEWNS: u64 = 0x0002_0000;
/// `CLONE_SYSVSEM`: share System V semaphore undo lists.
pub const CLONE_SYSVSEM: u64 = 0x0004_0000;
/// `CLONE_SETTLS`: set the child's TLS (FS base on x86_64).
pub const CLONE_SETTLS: u64 = 0x0008_0000;
/// `CLONE_PARENT_SETTID`: store the child's tid at `parent_tid`.
pub const CLONE_PARENT_SETTID: u64 = 0x0010_0000;
/// `CLONE_CHILD_CLEARTID`: clear `child_tid` and futex-wake it when the
/// child exits.
pub const CLONE_CHILD_CLEARTID: u64 = 0x0020_0000;
/// `CLONE_DETACHED`: ignored.
pub const CLONE_DETACHED: u64 = 0x0040_0000;
/// `CLONE_UNTRACED`: a tracer cannot force `CLONE_PTRACE`.
pub const CLONE_UNTRACED: u64 = 0x0080_0000;
/// `CLONE_CHILD_SETTID`: store the child's tid at `child_tid` in the child.
pub const CLONE_CHILD_SETTID: u64 = 0x0100_0000;
/// `CLONE_NEWCGROUP`: new cgroup namespace.
pub const CLONE_NEWCGROUP: u64 = 0x0200_0000;
/// `CLONE_NEWUTS`: new UTS namespace.
pub const CLONE_NEWUTS: u64 = 0x0400_0000;
/// `CLONE_NEWIPC`: new IPC namespace.
pub const CLONE_NEWIPC: u64 = 0x0800_0000;
/// `CLONE_NEWUSER`: new user namespace.
pub const CLONE_NEWUSER: u64 = 0x1000_0000;
/// `CLONE_NEWPID`: new PID namespace.
pub const CLONE_NEWPID: u64 = 0x2000_0000;
/// `CLONE_NEWNET`: new network namespace.
pub const CLONE_NEWNET: u64 = 0x4000_0000;
/// `CLONE_IO`: share the I/O context.
pub const CLONE_IO: u64 = 0x8000_0000;
/// `CLONE_CLEAR_SIGHAND`: reset all handlers to default (`clone3` only).
pub const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;
/// `CLONE_INTO_CGROUP`: start the child in `cgroup` (`clone3` only).
pub const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args`: the argument of `clone3`. Callers pass its size,
/// which tells the kernel which version they know.
#[doc(alias = "clone_args")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CloneArgs {
    /// `CLONE_*` flags.
    pub flags: u64,
    /// Where to store the pidfd (`CLONE_PIDFD`).
    pub pidfd: u64,
    /// Where to store the child's tid in the child (`CLONE_CHILD_SETTID`,
    /// `CLONE_CHILD_CLEARTID`).
    pub child_tid: u64,
    /// Where to store the child's tid in the parent (`CLONE_PARENT_SETTID`).
    pub parent_tid: u64,
    /// The signal sent to the parent when the child exits.
    pub exit_signal: u64,
    /// The lowest address of the child's stack.
    pub stack: u64,
    /// The size of the child's stack.
    pub stack_size: u64,
    /// The child's TLS (`CLONE_SETTLS`).
    pub tls: u64,
    /// An array of tids to request, one per PID namespace level.
    pub set_tid: u64,
    /// The number of elements at `set_tid`.
    pub set_tid_size: u64,
    /// A cgroup fd (`CLONE_INTO_CGROUP`).
    pub cgroup: u64,
}

/// `CLONE_ARGS_SIZE_VER0`: `struct clone_args` up to `tls` (Linux 5.3).
pub const CLONE_ARGS_SIZE_VER0: usize = 64;
/// `CLONE_ARGS_SIZE_VER1`: up to `set_tid_size` (Linux 5.5).
pub const CLONE_ARGS_SIZE_VER1: usize = 80;
/// `CLONE_ARGS_SIZE_VER2`: up to `cgroup` (Linux 5.7).
pub const CLONE_ARGS_SIZE_VER2: usize = 88;

/// `SCHED_NORMAL`: the default time-sharing policy (`SCHED_OTHER`).
#[doc(alias = "SCHED_OTHER")]
pub const SCHED_NORMAL: i32 = 0;
/// `SCHED_FIFO`: real-time first-in first-out.
pub const SCHED_FIFO: i32 = 1;
/// `SCHED_RR`: real-time round robin.
pub const SCHED_RR: i32 = 2;
/// `SCHED_BATCH`: CPU-bound batch work.
pub const SCHED_BATCH: i32 = 3;
/// `SCHED_IDLE`: run only when nothing else would.
pub const SCHED_IDLE: i32 = 5;
/// `SCHED_DEADLINE`: earliest-deadline-first.
pub const SCHED_DEADLINE: i32 = 6;
/// `SCHED_RESET_ON_FORK`: or-ed into the policy; children get
/// `SCHED_NORMAL`.
pub const SCHED_RESET_ON_FORK: i32 = 0x4000_0000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;
    use core::mem::offset_of;

    /// Every constant against the host's `<linux/sched.h>` and the headers they include.
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/sched.h"];
            CSIGNAL, CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND, CLONE_PIDFD, CLONE_PTRACE, CLONE_VFORK,
            CLONE_PARENT, CLONE_THREAD, CLONE_NEWNS, CLONE_SYSVSEM, CLONE_SETTLS, CLONE_PARENT_SETTID,
            CLONE_CHILD_CLEARTID, CLONE_DETACHED, CLONE_UNTRACED, CLONE_CHILD_SETTID, CLONE_NEWCGROUP,
            CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_IO,
            CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP, CLONE_NEWTIME, CLONE_ARGS_SIZE_VER0, CLONE_ARGS_SIZE_VER1,
            CLONE_ARGS_SIZE_VER2, SCHED_NORMAL, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE,
            SCHED_RESET_ON_FORK,
        );
    }

    /// `sizeof`/`offsetof` of `struct clone_args` from `<linux/sched.h>`.
    #[test]
    fn clone_args_layout_matches_linux_headers() {
        assert_eq!(size_of::<CloneArgs>(), 88);
        assert_eq!(offset_of!(CloneArgs, flags), 0);
        assert_eq!(offset_of!(CloneArgs, pidfd), 8);
        assert_eq!(offset_of!(CloneArgs, child_tid), 16);
        assert_eq!(offset_of!(CloneArgs, parent_tid), 24);
        assert_eq!(offset_of!(CloneArgs, exit_signal), 32);
        assert_eq!(offset_of!(CloneArgs, stack), 40);
        assert_eq!(offset_of!(CloneArgs, stack_size), 48);
        assert_eq!(offset_of!(CloneArgs, tls), 56);
        assert_eq!(offset_of!(CloneArgs, set_tid), 64);
        assert_eq!(offset_of!(CloneArgs, set_tid_size), 72);
        assert_eq!(offset_of!(CloneArgs, cgroup), 80);
    }
}
