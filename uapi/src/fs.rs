//! File-system calls' vocabulary beyond `struct stat`: `renameat2` flags
//! (`include/uapi/linux/fs.h`), `mount`/`umount2` flags
//! (`include/uapi/linux/mount.h`), `struct statx` (`linux/stat.h`),
//! `struct statfs` (`asm-generic/statfs.h` as x86_64 lays it out),
//! `struct linux_dirent64` (`linux/dirent.h`), the `d_type` values and
//! the file-system magic numbers of `linux/magic.h`.

/// `RENAME_NOREPLACE`: fail with EEXIST instead of replacing the target.
pub const RENAME_NOREPLACE: u32 = 1 << 0;
/// `RENAME_EXCHANGE`: swap the two names atomically.
pub const RENAME_EXCHANGE: u32 = 1 << 1;
/// `RENAME_WHITEOUT`: leave a whiteout at the source (overlayfs).
pub const RENAME_WHITEOUT: u32 = 1 << 2;

/// `MS_RDONLY`: mount read-only.
pub const MS_RDONLY: u64 = 1;
/// `MS_NOSUID`: ignore set-user-id bits.
pub const MS_NOSUID: u64 = 2;
/// `MS_NODEV`: no device files.
pub const MS_NODEV: u64 = 4;
/// `MS_NOEXEC`: no program execution.
pub const MS_NOEXEC: u64 = 8;
/// `MS_SYNCHRONOUS`: writes are synchronous.
pub const MS_SYNCHRONOUS: u64 = 16;
/// `MS_REMOUNT`: change the flags of a mount.
pub const MS_REMOUNT: u64 = 32;
/// `MS_NOATIME`: no access-time updates.
pub const MS_NOATIME: u64 = 1024;
/// `MS_NODIRATIME`: no directory access-time updates.
pub const MS_NODIRATIME: u64 = 2048;
/// `MS_BIND`: a bind mount.
pub const MS_BIND: u64 = 4096;
/// `MS_MOVE`: move a mount.
pub const MS_MOVE: u64 = 8192;
/// `MS_SILENT`: quieter errors.
pub const MS_SILENT: u64 = 32768;
/// `MS_RELATIME`: access times relative to modification times.
pub const MS_RELATIME: u64 = 1 << 21;
/// `MS_MGC_VAL`: the old magic in the upper 16 bits of the flags.
pub const MS_MGC_VAL: u64 = 0xC0ED_0000;
/// `MS_MGC_MSK`: the mask of that magic.
pub const MS_MGC_MSK: u64 = 0xffff_0000;

/// `MNT_FORCE`: force an unmount.
pub const MNT_FORCE: u32 = 1;
/// `MNT_DETACH`: lazy unmount.
pub const MNT_DETACH: u32 = 2;
/// `MNT_EXPIRE`: mark for expiry.
pub const MNT_EXPIRE: u32 = 4;
/// `UMOUNT_NOFOLLOW`: do not follow a symbolic link target.
pub const UMOUNT_NOFOLLOW: u32 = 8;

/// `STATX_TYPE`: `stx_mode & S_IFMT`.
pub const STATX_TYPE: u32 = 0x1;
/// `STATX_MODE`: `stx_mode & !S_IFMT`.
pub const STATX_MODE: u32 = 0x2;
/// `STATX_NLINK`.
pub const STATX_NLINK: u32 = 0x4;
/// `STATX_UID`.
pub const STATX_UID: u32 = 0x8;
/// `STATX_GID`.
pub const STATX_GID: u32 = 0x10;
/// `STATX_ATIME`.
pub const STATX_ATIME: u32 = 0x20;
/// `STATX_MTIME`.
pub const STATX_MTIME: u32 = 0x40;
/// `STATX_CTIME`.
pub const STATX_CTIME: u32 = 0x80;
/// `STATX_INO`.
pub const STATX_INO: u32 = 0x100;
/// `STATX_SIZE`.
pub const STATX_SIZE: u32 = 0x200;
/// `STATX_BLOCKS`.
pub const STATX_BLOCKS: u32 = 0x400;
/// `STATX_BASIC_STATS`: everything `struct stat` has.
pub const STATX_BASIC_STATS: u32 = 0x7ff;
/// `STATX__RESERVED`: a mask bit reserved for extending the struct.
pub const STATX__RESERVED: u32 = 0x8000_0000;

/// `struct statx_timestamp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatxTimestamp {
    /// Seconds since the epoch.
    pub tv_sec: i64,
    /// Nanoseconds.
    pub tv_nsec: u32,
    /// Reserved, zero.
    pub __reserved: i32,
}

/// `struct statx`, 256 bytes.
#[doc(alias = "statx")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statx {
    /// What is filled in (`STATX_*`).
    pub stx_mask: u32,
    /// Preferred I/O size.
    pub stx_blksize: u32,
    /// `STATX_ATTR_*` flags.
    pub stx_attributes: u64,
    /// Hard links.
    pub stx_nlink: u32,
    /// Owner.
    pub stx_uid: u32,
    /// Group.
    pub stx_gid: u32,
    /// Type and permissions.
    pub stx_mode: u16,
    /// Padding.
    pub __spare0: u16,
    /// Inode number.
    pub stx_ino: u64,
    /// Size in bytes.
    pub stx_size: u64,
    /// 512-byte blocks allocated.
    pub stx_blocks: u64,
    /// Which `stx_attributes` bits are supported.
    pub stx_attributes_mask: u64,
    /// Last access.
    pub stx_atime: StatxTimestamp,
    /// Creation.
    pub stx_btime: StatxTimestamp,
    /// Last status change.
    pub stx_ctime: StatxTimestamp,
    /// Last modification.
    pub stx_mtime: StatxTimestamp,
    /// Device of a device file: major.
    pub stx_rdev_major: u32,
    /// Device of a device file: minor.
    pub stx_rdev_minor: u32,
    /// Device holding the file: major.
    pub stx_dev_major: u32,
    /// Device holding the file: minor.
    pub stx_dev_minor: u32,
    /// Mount id.
    pub stx_mnt_id: u64,
    /// Direct I/O memory alignment.
    pub stx_dio_mem_align: u32,
    /// Direct I/O offset alignment.
    pub stx_dio_offset_align: u32,
    /// Reserved.
    pub __spare3: [u64; 12],
}

/// The x86_64 `struct statfs`, 120 bytes.
#[doc(alias = "statfs")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statfs {
    /// File-system magic (`linux/magic.h`).
    pub f_type: i64,
    /// Block size.
    pub f_bsize: i64,
    /// Blocks in the file system.
    pub f_blocks: u64,
    /// Free blocks.
    pub f_bfree: u64,
    /// Blocks free to unprivileged users.
    pub f_bavail: u64,
    /// Inodes.
    pub f_files: u64,
    /// Free inodes.
    pub f_ffree: u64,
    /// File-system id.
    pub f_fsid: [i32; 2],
    /// Longest name.
    pub f_namelen: i64,
    /// Fragment size.
    pub f_frsize: i64,
    /// Mount flags (`ST_*`).
    pub f_flags: i64,
    /// Reserved.
    pub f_spare: [i64; 4],
}

/// `ST_RDONLY`: `statfs`'s `f_flags` bit for a read-only mount.
pub const ST_RDONLY: i64 = 1;
/// `ST_VALID`: `f_flags` is filled in.
pub const ST_VALID: i64 = 0x20;

/// `offsetof(struct linux_dirent64, d_name)`: inode (8), offset (8),
/// record length (2), type (1).
pub const DIRENT64_NAME_OFFSET: usize = 19;

/// `DT_UNKNOWN`.
pub const DT_UNKNOWN: u8 = 0;
/// `DT_FIFO`.
pub const DT_FIFO: u8 = 1;
/// `DT_CHR`.
pub const DT_CHR: u8 = 2;
/// `DT_DIR`.
pub const DT_DIR: u8 = 4;
/// `DT_BLK`.
pub const DT_BLK: u8 = 6;
/// `DT_REG`.
pub const DT_REG: u8 = 8;
/// `DT_LNK`.
pub const DT_LNK: u8 = 10;
/// `DT_SOCK`.
pub const DT_SOCK: u8 = 12;

/// `EXT2_SUPER_MAGIC`.
pub const EXT2_SUPER_MAGIC: i64 = 0xEF53;
/// `RAMFS_MAGIC`.
pub const RAMFS_MAGIC: i64 = 0x8584_58f6;
/// `TMPFS_MAGIC`.
pub const TMPFS_MAGIC: i64 = 0x0102_1994;

/// `PATH_MAX`: the longest path, its NUL included.
pub const PATH_MAX: usize = 4096;
/// `NAME_MAX`: the longest file name.
pub const NAME_MAX: usize = 255;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;
    use core::mem::offset_of;

    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/fs.h"]; RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT);
        assert_defines_match!(&["linux/mount.h"];
            MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_SYNCHRONOUS, MS_REMOUNT, MS_NOATIME, MS_NODIRATIME,
            MS_BIND, MS_MOVE, MS_SILENT, MS_RELATIME, MS_MGC_VAL, MS_MGC_MSK,
        );
        assert_defines_match!(&["linux/stat.h"];
            STATX_TYPE, STATX_MODE, STATX_NLINK, STATX_UID, STATX_GID, STATX_ATIME, STATX_MTIME, STATX_CTIME,
            STATX_INO, STATX_SIZE, STATX_BLOCKS, STATX_BASIC_STATS, STATX__RESERVED,
        );
        assert_defines_match!(&["linux/magic.h"]; EXT2_SUPER_MAGIC, RAMFS_MAGIC, TMPFS_MAGIC);
        assert_defines_match!(&["linux/limits.h"]; PATH_MAX, NAME_MAX);
    }

    #[test]
    fn layouts_match_linux() {
        assert_eq!(size_of::<Statx>(), 256);
        assert_eq!(offset_of!(Statx, stx_ino), 32);
        assert_eq!(offset_of!(Statx, stx_atime), 64);
        assert_eq!(offset_of!(Statx, stx_rdev_major), 128);
        assert_eq!(offset_of!(Statx, stx_mnt_id), 144);
        assert_eq!(size_of::<Statfs>(), 120);
        assert_eq!(offset_of!(Statfs, f_fsid), 56);
        assert_eq!(offset_of!(Statfs, f_namelen), 64);
    }
}
