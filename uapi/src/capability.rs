//! Capabilities: the numbers of Linux's `include/uapi/linux/capability.h`
//! that the kernel checks (`CAP_*`), and `CAP_LAST_CAP`, which sizes a
//! full capability set.

/// `CAP_SETGID`: set any group id (`setgid`, `setregid`, `setresgid`).
pub const CAP_SETGID: u32 = 6;
/// `CAP_SETUID`: set any user id (`setuid`, `setreuid`, `setresuid`).
pub const CAP_SETUID: u32 = 7;
/// `CAP_IPC_LOCK`: lock memory beyond `RLIMIT_MEMLOCK`.
pub const CAP_IPC_LOCK: u32 = 14;
/// `CAP_SYS_RESOURCE`: raise hard resource limits, among others.
pub const CAP_SYS_RESOURCE: u32 = 24;
/// `CAP_LAST_CAP`: the highest capability (`CAP_CHECKPOINT_RESTORE` since
/// Linux 5.9).
pub const CAP_LAST_CAP: u32 = 40;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers;

    #[test]
    fn constants_match_linux_headers() {
        assert_eq!((CAP_SETGID, CAP_SETUID, CAP_IPC_LOCK, CAP_SYS_RESOURCE, CAP_LAST_CAP), (6, 7, 14, 24, 40));
    }

    /// The same numbers in the host's `<linux/capability.h>`.
    #[test]
    fn constants_match_host_capability_h() {
        let Some(defines) = host_headers::defines("/usr/include/linux/capability.h") else { return };
        let value = |name: &str| defines.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        assert_eq!(value("CAP_SETGID").as_deref(), Some("6"));
        assert_eq!(value("CAP_SETUID").as_deref(), Some("7"));
        assert_eq!(value("CAP_IPC_LOCK").as_deref(), Some("14"));
        assert_eq!(value("CAP_SYS_RESOURCE").as_deref(), Some("24"));
        assert_eq!(value("CAP_LAST_CAP").as_deref(), Some("CAP_CHECKPOINT_RESTORE"));
        assert_eq!(value("CAP_CHECKPOINT_RESTORE").as_deref(), Some("40"));
    }
}
