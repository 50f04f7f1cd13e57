//! Time: `struct timespec`, `struct timeval`, `struct timezone`,
//! `struct itimerspec`, `struct itimerval`, clock ids and timer flags from
//! Linux's `include/uapi/linux/time.h` (`struct timespec` is also
//! `struct __kernel_timespec` of `linux/time_types.h` on 64-bit).

/// `struct timespec`: seconds and nanoseconds.
#[doc(alias = "timespec")]
#[doc(alias = "__kernel_timespec")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timespec {
    /// Seconds.
    pub tv_sec: i64,
    /// Nanoseconds, `0..1_000_000_000` when valid.
    pub tv_nsec: i64,
}

/// `struct timeval`: seconds and microseconds.
#[doc(alias = "timeval")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeval {
    /// Seconds.
    pub tv_sec: i64,
    /// Microseconds, `0..1_000_000` when valid.
    pub tv_usec: i64,
}

/// `struct timezone`: the obsolete `gettimeofday` time zone.
#[doc(alias = "timezone")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timezone {
    /// Minutes west of Greenwich.
    pub tz_minuteswest: i32,
    /// Type of DST correction.
    pub tz_dsttime: i32,
}

/// `struct itimerspec`: a POSIX timer's period and next expiry.
#[doc(alias = "itimerspec")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Itimerspec {
    /// The period; zero for a one-shot timer.
    pub it_interval: Timespec,
    /// The time to the next expiry; zero disarms.
    pub it_value: Timespec,
}

/// `struct itimerval`: an interval timer's period and next expiry
/// (`setitimer`).
#[doc(alias = "itimerval")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Itimerval {
    /// The period; zero for a one-shot timer.
    pub it_interval: Timeval,
    /// The time to the next expiry; zero disarms.
    pub it_value: Timeval,
}

/// `CLOCK_REALTIME`: wall-clock time.
pub const CLOCK_REALTIME: i32 = 0;
/// `CLOCK_MONOTONIC`: time since boot, not counting suspend.
pub const CLOCK_MONOTONIC: i32 = 1;
/// `CLOCK_PROCESS_CPUTIME_ID`: CPU time of the process.
pub const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
/// `CLOCK_THREAD_CPUTIME_ID`: CPU time of the thread.
pub const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
/// `CLOCK_MONOTONIC_RAW`: monotonic time without NTP slewing.
pub const CLOCK_MONOTONIC_RAW: i32 = 4;
/// `CLOCK_REALTIME_COARSE`: fast, tick-resolution `CLOCK_REALTIME`.
pub const CLOCK_REALTIME_COARSE: i32 = 5;
/// `CLOCK_MONOTONIC_COARSE`: fast, tick-resolution `CLOCK_MONOTONIC`.
pub const CLOCK_MONOTONIC_COARSE: i32 = 6;
/// `CLOCK_BOOTTIME`: monotonic time including suspend.
pub const CLOCK_BOOTTIME: i32 = 7;
/// `CLOCK_REALTIME_ALARM`: `CLOCK_REALTIME` that wakes the system.
pub const CLOCK_REALTIME_ALARM: i32 = 8;
/// `CLOCK_BOOTTIME_ALARM`: `CLOCK_BOOTTIME` that wakes the system.
pub const CLOCK_BOOTTIME_ALARM: i32 = 9;
/// `CLOCK_TAI`: International Atomic Time.
pub const CLOCK_TAI: i32 = 11;
/// `MAX_CLOCKS`: one past the largest clock id.
pub const MAX_CLOCKS: i32 = 16;

/// `TIMER_ABSTIME`: the time given to `clock_nanosleep` or
/// `timer_settime` is absolute.
pub const TIMER_ABSTIME: u32 = 0x01;

/// `ITIMER_REAL`: `setitimer` timer counting real time (`SIGALRM`).
pub const ITIMER_REAL: i32 = 0;
/// `ITIMER_VIRTUAL`: timer counting user CPU time (`SIGVTALRM`).
pub const ITIMER_VIRTUAL: i32 = 1;
/// `ITIMER_PROF`: timer counting user and system CPU time (`SIGPROF`).
pub const ITIMER_PROF: i32 = 2;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;
    use core::mem::offset_of;

    /// Every constant against the host's `<linux/time.h>` and the headers they include.
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/time.h"];
            CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID,
            CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE, CLOCK_BOOTTIME,
            CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM, CLOCK_TAI, MAX_CLOCKS, TIMER_ABSTIME, ITIMER_REAL,
            ITIMER_VIRTUAL, ITIMER_PROF,
        );
    }

    /// `sizeof`/`offsetof` from the host's `<linux/time.h>`.
    #[test]
    fn layouts_match_linux_headers() {
        assert_eq!(size_of::<Timespec>(), 16);
        assert_eq!(offset_of!(Timespec, tv_sec), 0);
        assert_eq!(offset_of!(Timespec, tv_nsec), 8);
        assert_eq!(size_of::<Timeval>(), 16);
        assert_eq!(offset_of!(Timeval, tv_sec), 0);
        assert_eq!(offset_of!(Timeval, tv_usec), 8);
        assert_eq!(size_of::<Timezone>(), 8);
        assert_eq!(offset_of!(Timezone, tz_minuteswest), 0);
        assert_eq!(offset_of!(Timezone, tz_dsttime), 4);
        assert_eq!(size_of::<Itimerspec>(), 32);
        assert_eq!(offset_of!(Itimerspec, it_interval), 0);
        assert_eq!(offset_of!(Itimerspec, it_value), 16);
        assert_eq!(size_of::<Itimerval>(), 32);
        assert_eq!(offset_of!(Itimerval, it_interval), 0);
        assert_eq!(offset_of!(Itimerval, it_value), 16);
    }
}
