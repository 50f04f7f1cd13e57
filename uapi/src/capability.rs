//! Capabilities: the numbers of Linux's `include/uapi/linux/capability.h`
//! that the kernel checks (`CAP_*`), and `CAP_LAST_CAP`, which sizes a
//! full capability set.

/// `CAP_DAC_OVERRIDE`: bypass file read, write and execute permission checks.
pub const CAP_DAC_OVERRIDE: u32 = 1;
/// `CAP_KILL`: send signals to processes of other users.
pub const CAP_KILL: u32 = 5;
/// `CAP_SETGID`: set any group id (`setgid`, `setregid`, `setresgid`).
pub const CAP_SETGID: u32 = 6;
/// `CAP_SETUID`: set any user id (`setuid`, `setreuid`, `setresuid`).
pub const CAP_SETUID: u32 = 7;
/// `CAP_IPC_LOCK`: lock memory beyond `RLIMIT_MEMLOCK`.
pub const CAP_IPC_LOCK: u32 = 14;
/// `CAP_IPC_OWNER`: pass System V IPC permission checks.
pub const CAP_IPC_OWNER: u32 = 15;
/// `CAP_SYS_RESOURCE`: raise hard resource limits, among others.
pub const CAP_SYS_RESOURCE: u32 = 24;
/// `CAP_SYS_NICE`: set other users' processes' scheduling and affinity.
pub const CAP_SYS_NICE: u32 = 23;
/// `CAP_SYS_ADMIN`: mount and unmount, among much else.
pub const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_MKNOD`: make device nodes.
pub const CAP_MKNOD: u32 = 27;
/// `CAP_LAST_CAP`: the highest capability (`CAP_CHECKPOINT_RESTORE` since
/// Linux 5.9).
pub const CAP_LAST_CAP: u32 = 40;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;

    /// Every capability number as the host's `<linux/capability.h>` defines it.
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/capability.h"]; CAP_DAC_OVERRIDE, CAP_KILL, CAP_SETGID, CAP_SETUID,
            CAP_IPC_LOCK, CAP_IPC_OWNER, CAP_SYS_RESOURCE, CAP_SYS_NICE, CAP_SYS_ADMIN, CAP_MKNOD, CAP_LAST_CAP);
    }
}
