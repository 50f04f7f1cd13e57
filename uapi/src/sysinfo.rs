//! System statistics: `struct sysinfo` from Linux's
//! `include/uapi/linux/sysinfo.h`, what `sysinfo` fills in.

/// `SI_LOAD_SHIFT`: the load averages are fixed point with this many
/// fraction bits.
pub const SI_LOAD_SHIFT: u32 = 16;

/// `struct sysinfo` on x86_64 (the `_f` libc5 padding is empty with 8-byte
/// longs; the implicit C padding is explicit here).
#[doc(alias = "sysinfo")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sysinfo {
    /// Seconds since boot.
    pub uptime: i64,
    /// 1, 5 and 15 minute load averages, shifted by [`SI_LOAD_SHIFT`].
    pub loads: [u64; 3],
    /// Usable memory, in `mem_unit`s.
    pub totalram: u64,
    /// Free memory.
    pub freeram: u64,
    /// Shared memory (shmem and tmpfs pages).
    pub sharedram: u64,
    /// Memory used by block-device buffers.
    pub bufferram: u64,
    /// Swap space.
    pub totalswap: u64,
    /// Free swap space.
    pub freeswap: u64,
    /// Number of tasks (Linux counts threads).
    pub procs: u16,
    /// Explicit padding for m68k.
    pub pad: u16,
    /// Implicit C padding before `totalhigh`.
    pub __pad1: u32,
    /// High memory (none on x86_64).
    pub totalhigh: u64,
    /// Free high memory.
    pub freehigh: u64,
    /// Bytes per unit of the memory figures.
    pub mem_unit: u32,
    /// Implicit C padding at the end.
    pub __pad2: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;
    use core::mem::offset_of;

    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/sysinfo.h"]; SI_LOAD_SHIFT);
    }

    /// `sizeof`/`offsetof` of `<linux/sysinfo.h>` on x86_64.
    #[test]
    fn layouts_match_linux_headers() {
        assert_eq!(size_of::<Sysinfo>(), 112);
        assert_eq!(offset_of!(Sysinfo, uptime), 0);
        assert_eq!(offset_of!(Sysinfo, loads), 8);
        assert_eq!(offset_of!(Sysinfo, totalram), 32);
        assert_eq!(offset_of!(Sysinfo, freeram), 40);
        assert_eq!(offset_of!(Sysinfo, sharedram), 48);
        assert_eq!(offset_of!(Sysinfo, bufferram), 56);
        assert_eq!(offset_of!(Sysinfo, totalswap), 64);
        assert_eq!(offset_of!(Sysinfo, freeswap), 72);
        assert_eq!(offset_of!(Sysinfo, procs), 80);
        assert_eq!(offset_of!(Sysinfo, pad), 82);
        assert_eq!(offset_of!(Sysinfo, totalhigh), 88);
        assert_eq!(offset_of!(Sysinfo, freehigh), 96);
        assert_eq!(offset_of!(Sysinfo, mem_unit), 104);
    }
}
