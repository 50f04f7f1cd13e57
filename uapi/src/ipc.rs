//! System V IPC: the flags and commands of Linux's
//! `include/uapi/linux/ipc.h` and `include/uapi/linux/shm.h`, and the
//! x86_64 structures `shmctl` fills in (`asm-generic/ipcbuf.h`'s
//! `struct ipc64_perm`, `asm-generic/shmbuf.h`'s `struct shmid64_ds` and
//! `struct shminfo64`, `linux/shm.h`'s `struct shm_info`).
//!
//! On x86_64 `shmctl` takes its command as is: `IPC_64` is not parsed off
//! (Linux has no `CONFIG_ARCH_WANT_IPC_PARSE_VERSION` there), so a
//! command with it is EINVAL, and the 64-bit structures are the only ones.

/// `IPC_PRIVATE`: the key of a segment no other `shmget` finds.
pub const IPC_PRIVATE: i32 = 0;
/// `IPC_CREAT`: create the object if the key has none.
pub const IPC_CREAT: u32 = 0o1000;
/// `IPC_EXCL`: with `IPC_CREAT`, fail if the key has one.
pub const IPC_EXCL: u32 = 0o2000;
/// `IPC_NOWAIT`: return an error rather than wait.
pub const IPC_NOWAIT: u32 = 0o4000;

/// `IPC_RMID`: remove the object.
pub const IPC_RMID: i32 = 0;
/// `IPC_SET`: set the owner and mode.
pub const IPC_SET: i32 = 1;
/// `IPC_STAT`: read the object's state.
pub const IPC_STAT: i32 = 2;
/// `IPC_INFO`: read the system's limits.
pub const IPC_INFO: i32 = 3;
/// `IPC_64`: the "new" structures' flag in a command (x86_64 takes none).
pub const IPC_64: i32 = 0x0100;

/// `SHMMIN`: the smallest segment in bytes.
pub const SHMMIN: u64 = 1;
/// `SHMMNI`: the default most segments (`kernel.shmmni`).
pub const SHMMNI: u64 = 4096;
/// `SHMMAX`: the default largest segment in bytes (`kernel.shmmax`),
/// `ULONG_MAX - (1UL << 24)`.
pub const SHMMAX: u64 = u64::MAX - (1 << 24);
/// `SHMALL`: the default most pages of all segments (`kernel.shmall`),
/// `ULONG_MAX - (1UL << 24)`.
pub const SHMALL: u64 = u64::MAX - (1 << 24);

/// `SHM_RDONLY`: attach read-only.
pub const SHM_RDONLY: u32 = 0o10000;
/// `SHM_RND`: round the attach address down to `SHMLBA`.
pub const SHM_RND: u32 = 0o20000;
/// `SHM_REMAP`: take over the range at the attach address.
pub const SHM_REMAP: u32 = 0o40000;
/// `SHM_EXEC`: attach executable.
pub const SHM_EXEC: u32 = 0o100000;
/// `SHM_HUGETLB`: a segment of huge pages.
pub const SHM_HUGETLB: u32 = 0o4000;
/// `SHM_NORESERVE`: no swap reservation.
pub const SHM_NORESERVE: u32 = 0o10000;

/// `SHM_LOCK`: keep the segment's pages in memory.
pub const SHM_LOCK: i32 = 11;
/// `SHM_UNLOCK`: let them go to swap again.
pub const SHM_UNLOCK: i32 = 12;
/// `SHM_STAT`: `IPC_STAT` by index, returning the id.
pub const SHM_STAT: i32 = 13;
/// `SHM_INFO`: the system's usage.
pub const SHM_INFO: i32 = 14;
/// `SHM_STAT_ANY`: `SHM_STAT` without the read permission check.
pub const SHM_STAT_ANY: i32 = 15;

/// The x86_64 `struct ipc64_perm`, 48 bytes.
#[doc(alias = "ipc64_perm")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ipc64Perm {
    /// The key (`IPC_PRIVATE` once removed).
    pub key: i32,
    /// The owner's uid.
    pub uid: u32,
    /// The owner's gid.
    pub gid: u32,
    /// The creator's uid.
    pub cuid: u32,
    /// The creator's gid.
    pub cgid: u32,
    /// Permission bits, and `SHM_DEST`/`SHM_LOCKED` for a segment.
    pub mode: u32,
    /// The slot's sequence number.
    pub seq: u16,
    /// Padding, zero.
    pub __pad2: u16,
    /// Padding, zero.
    pub __pad3: u32,
    /// Reserved, zero.
    pub __unused1: u64,
    /// Reserved, zero.
    pub __unused2: u64,
}

/// The x86_64 `struct shmid64_ds`, 112 bytes.
#[doc(alias = "shmid64_ds")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shmid64Ds {
    /// Owner, creator and mode.
    pub shm_perm: Ipc64Perm,
    /// The size in bytes, as asked.
    pub shm_segsz: u64,
    /// Last attach, seconds.
    pub shm_atime: i64,
    /// Last detach, seconds.
    pub shm_dtime: i64,
    /// Last change, seconds.
    pub shm_ctime: i64,
    /// The creator's pid.
    pub shm_cpid: i32,
    /// The pid of the last attach or detach.
    pub shm_lpid: i32,
    /// Attaches now.
    pub shm_nattch: u64,
    /// Reserved, zero.
    pub __unused4: u64,
    /// Reserved, zero.
    pub __unused5: u64,
}

/// The x86_64 `struct shminfo64` (`IPC_INFO`), 72 bytes.
#[doc(alias = "shminfo64")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shminfo64 {
    /// `kernel.shmmax`.
    pub shmmax: u64,
    /// `SHMMIN`.
    pub shmmin: u64,
    /// `kernel.shmmni`.
    pub shmmni: u64,
    /// Most attaches per process (Linux reports `SHMSEG`, `SHMMNI`).
    pub shmseg: u64,
    /// `kernel.shmall`.
    pub shmall: u64,
    /// Reserved, zero.
    pub __unused: [u64; 4],
}

/// The x86_64 `struct shm_info` (`SHM_INFO`), 48 bytes.
#[doc(alias = "shm_info")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShmInfo {
    /// Segments in use.
    pub used_ids: i32,
    /// Padding, zero.
    pub __pad: u32,
    /// Pages of all segments.
    pub shm_tot: u64,
    /// Of them, in memory.
    pub shm_rss: u64,
    /// Of them, in swap.
    pub shm_swp: u64,
    /// Unused since Linux 2.4: zero.
    pub swap_attempts: u64,
    /// Unused since Linux 2.4: zero.
    pub swap_successes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;
    use core::mem::offset_of;

    /// Every constant against the host's `<linux/shm.h>` and the headers
    /// it includes (`SHMMAX` and `SHMALL` are written with `ULONG_MAX`,
    /// which the header reader does not know: checked by value below).
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/shm.h"];
            IPC_PRIVATE, IPC_CREAT, IPC_EXCL, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT, IPC_INFO, IPC_64,
            SHMMIN, SHMMNI, SHM_RDONLY, SHM_RND, SHM_REMAP, SHM_EXEC, SHM_HUGETLB, SHM_NORESERVE,
            SHM_LOCK, SHM_UNLOCK, SHM_STAT, SHM_INFO, SHM_STAT_ANY,
        );
        assert_eq!(SHMMAX, 18_446_744_073_692_774_399);
        assert_eq!(SHMALL, SHMMAX);
    }

    #[test]
    fn layouts_match_linux() {
        assert_eq!(size_of::<Ipc64Perm>(), 48);
        assert_eq!(offset_of!(Ipc64Perm, mode), 20);
        assert_eq!(offset_of!(Ipc64Perm, seq), 24);
        assert_eq!(size_of::<Shmid64Ds>(), 112);
        assert_eq!(offset_of!(Shmid64Ds, shm_segsz), 48);
        assert_eq!(offset_of!(Shmid64Ds, shm_cpid), 80);
        assert_eq!(offset_of!(Shmid64Ds, shm_nattch), 88);
        assert_eq!(size_of::<Shminfo64>(), 72);
        assert_eq!(size_of::<ShmInfo>(), 48);
        assert_eq!(offset_of!(ShmInfo, shm_tot), 8);
    }
}
