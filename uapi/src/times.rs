//! Process times: `struct tms` from Linux's `include/uapi/linux/times.h`,
//! what `times` fills in, in clock ticks of `USER_HZ`.

/// `USER_HZ`: the clock ticks per second of `clock_t` values user space
/// sees (`times`, `/proc/PID/stat`), whatever the kernel's `HZ`
/// (`sysconf(_SC_CLK_TCK)` reads it from the `AT_CLKTCK` auxv entry).
pub const USER_HZ: u64 = 100;

/// `struct tms`: the CPU time of the process and of its waited-for
/// children, in `clock_t` ticks of [`USER_HZ`].
#[doc(alias = "tms")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tms {
    /// User CPU time.
    pub tms_utime: i64,
    /// System CPU time.
    pub tms_stime: i64,
    /// User CPU time of the waited-for children.
    pub tms_cutime: i64,
    /// System CPU time of the waited-for children.
    pub tms_cstime: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    /// `sizeof`/`offsetof` from `<linux/times.h>` (four `__kernel_clock_t`).
    #[test]
    fn layouts_match_linux_headers() {
        assert_eq!(size_of::<Tms>(), 32);
        assert_eq!(offset_of!(Tms, tms_utime), 0);
        assert_eq!(offset_of!(Tms, tms_stime), 8);
        assert_eq!(offset_of!(Tms, tms_cutime), 16);
        assert_eq!(offset_of!(Tms, tms_cstime), 24);
    }
}
