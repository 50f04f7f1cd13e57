//! File status: the x86_64 `struct stat` of Linux's
//! `arch/x86/include/uapi/asm/stat.h` (what `stat`, `fstat`, `lstat` and
//! `newfstatat` fill in) and the mode bits of `include/uapi/linux/stat.h`.

/// The x86_64 `struct stat`, 144 bytes.
#[doc(alias = "stat")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat {
    /// The device holding the file.
    pub st_dev: u64,
    /// The inode number.
    pub st_ino: u64,
    /// The number of hard links.
    pub st_nlink: u64,
    /// File type (`S_IFMT` bits) and permissions.
    pub st_mode: u32,
    /// The owner's uid.
    pub st_uid: u32,
    /// The owner's gid.
    pub st_gid: u32,
    /// Padding, zero.
    pub __pad0: u32,
    /// The device a special file stands for.
    pub st_rdev: u64,
    /// The size in bytes.
    pub st_size: i64,
    /// The preferred I/O block size.
    pub st_blksize: i64,
    /// The number of 512-byte blocks allocated.
    pub st_blocks: i64,
    /// Last access, seconds.
    pub st_atime: u64,
    /// Last access, nanoseconds.
    pub st_atime_nsec: u64,
    /// Last modification, seconds.
    pub st_mtime: u64,
    /// Last modification, nanoseconds.
    pub st_mtime_nsec: u64,
    /// Last status change, seconds.
    pub st_ctime: u64,
    /// Last status change, nanoseconds.
    pub st_ctime_nsec: u64,
    /// Reserved, zero.
    pub __unused: [i64; 3],
}

/// `S_IFMT`: the mask of the file type bits.
pub const S_IFMT: u32 = 0o170000;
/// `S_IFSOCK`: a socket.
pub const S_IFSOCK: u32 = 0o140000;
/// `S_IFLNK`: a symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// `S_IFREG`: a regular file.
pub const S_IFREG: u32 = 0o100000;
/// `S_IFBLK`: a block device.
pub const S_IFBLK: u32 = 0o060000;
/// `S_IFDIR`: a directory.
pub const S_IFDIR: u32 = 0o040000;
/// `S_IFCHR`: a character device.
pub const S_IFCHR: u32 = 0o020000;
/// `S_IFIFO`: a FIFO.
pub const S_IFIFO: u32 = 0o010000;
/// `S_ISUID`: set-user-id on execution.
pub const S_ISUID: u32 = 0o4000;
/// `S_ISGID`: set-group-id on execution.
pub const S_ISGID: u32 = 0o2000;
/// `S_ISVTX`: sticky bit (restricted deletion in directories).
pub const S_ISVTX: u32 = 0o1000;
/// `S_IRWXU`: owner read, write and execute.
pub const S_IRWXU: u32 = 0o700;
/// `S_IRUSR`: owner read.
pub const S_IRUSR: u32 = 0o400;
/// `S_IWUSR`: owner write.
pub const S_IWUSR: u32 = 0o200;
/// `S_IXUSR`: owner execute.
pub const S_IXUSR: u32 = 0o100;
/// `S_IRWXG`: group read, write and execute.
pub const S_IRWXG: u32 = 0o070;
/// `S_IRGRP`: group read.
pub const S_IRGRP: u32 = 0o040;
/// `S_IWGRP`: group write.
pub const S_IWGRP: u32 = 0o020;
/// `S_IXGRP`: group execute.
pub const S_IXGRP: u32 = 0o010;
/// `S_IRWXO`: others read, write and execute.
pub const S_IRWXO: u32 = 0o007;
/// `S_IROTH`: others read.
pub const S_IROTH: u32 = 0o004;
/// `S_IWOTH`: others write.
pub const S_IWOTH: u32 = 0o002;
/// `S_IXOTH`: others execute.
pub const S_IXOTH: u32 = 0o001;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;
    use core::mem::offset_of;

    /// Every constant against the host's `<linux/stat.h>` and the headers they include.
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/stat.h"];
            S_IFMT, S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO, S_ISUID, S_ISGID, S_ISVTX,
            S_IRWXU, S_IRUSR, S_IWUSR, S_IXUSR, S_IRWXG, S_IRGRP, S_IWGRP, S_IXGRP, S_IRWXO, S_IROTH, S_IWOTH,
            S_IXOTH,
        );
    }

    /// `sizeof`/`offsetof` of `struct stat` from the host's `<asm/stat.h>`.
    #[test]
    fn layout_matches_linux_headers() {
        assert_eq!(size_of::<Stat>(), 144);
        assert_eq!(offset_of!(Stat, st_dev), 0);
        assert_eq!(offset_of!(Stat, st_ino), 8);
        assert_eq!(offset_of!(Stat, st_nlink), 16);
        assert_eq!(offset_of!(Stat, st_mode), 24);
        assert_eq!(offset_of!(Stat, st_uid), 28);
        assert_eq!(offset_of!(Stat, st_gid), 32);
        assert_eq!(offset_of!(Stat, __pad0), 36);
        assert_eq!(offset_of!(Stat, st_rdev), 40);
        assert_eq!(offset_of!(Stat, st_size), 48);
        assert_eq!(offset_of!(Stat, st_blksize), 56);
        assert_eq!(offset_of!(Stat, st_blocks), 64);
        assert_eq!(offset_of!(Stat, st_atime), 72);
        assert_eq!(offset_of!(Stat, st_atime_nsec), 80);
        assert_eq!(offset_of!(Stat, st_mtime), 88);
        assert_eq!(offset_of!(Stat, st_mtime_nsec), 96);
        assert_eq!(offset_of!(Stat, st_ctime), 104);
        assert_eq!(offset_of!(Stat, st_ctime_nsec), 112);
        assert_eq!(offset_of!(Stat, __unused), 120);
    }
}
