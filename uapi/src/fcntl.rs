//! File-control flags: Linux's `include/uapi/asm-generic/fcntl.h` (`O_*`,
//! `F_*`, `FD_CLOEXEC`; x86_64 uses it unchanged), `include/uapi/linux/fcntl.h`
//! (`AT_*`, the Linux-specific `F_*`, seals) and `include/uapi/linux/fs.h`
//! (`SEEK_*`).
//!
//! The `O_*` values are octal, as in the header.

/// `O_ACCMODE`: the mask of the access mode.
pub const O_ACCMODE: u32 = 0o3;
/// `O_RDONLY`: open for reading.
pub const O_RDONLY: u32 = 0o0;
/// `O_WRONLY`: open for writing.
pub const O_WRONLY: u32 = 0o1;
/// `O_RDWR`: open for reading and writing.
pub const O_RDWR: u32 = 0o2;
/// `O_CREAT`: create the file if it does not exist.
pub const O_CREAT: u32 = 0o100;
/// `O_EXCL`: with `O_CREAT`, fail if the file exists.
pub const O_EXCL: u32 = 0o200;
/// `O_NOCTTY`: do not make a terminal the controlling terminal.
pub const O_NOCTTY: u32 = 0o400;
/// `O_TRUNC`: truncate a regular file to length zero.
pub const O_TRUNC: u32 = 0o1000;
/// `O_APPEND`: every write appends.
pub const O_APPEND: u32 = 0o2000;
/// `O_NONBLOCK`: non-blocking I/O.
pub const O_NONBLOCK: u32 = 0o4000;
/// `O_DSYNC`: writes wait for data integrity.
pub const O_DSYNC: u32 = 0o10000;
/// `FASYNC`: signal-driven I/O (`O_ASYNC` in libc).
pub const FASYNC: u32 = 0o20000;
/// `O_DIRECT`: bypass the page cache.
pub const O_DIRECT: u32 = 0o40000;
/// `O_LARGEFILE`: allow 64-bit offsets (always on for 64-bit processes).
pub const O_LARGEFILE: u32 = 0o100000;
/// `O_DIRECTORY`: fail unless the path is a directory.
pub const O_DIRECTORY: u32 = 0o200000;
/// `O_NOFOLLOW`: fail if the last component is a symbolic link.
pub const O_NOFOLLOW: u32 = 0o400000;
/// `O_NOATIME`: do not update the access time.
pub const O_NOATIME: u32 = 0o1000000;
/// `O_CLOEXEC`: set `FD_CLOEXEC` on the new descriptor.
pub const O_CLOEXEC: u32 = 0o2000000;
/// `__O_SYNC`: the bit that, with `O_DSYNC`, makes `O_SYNC`.
pub const __O_SYNC: u32 = 0o4000000;
/// `O_SYNC`: writes wait for file integrity.
pub const O_SYNC: u32 = __O_SYNC | O_DSYNC;
/// `O_PATH`: a descriptor for the path only, no I/O.
pub const O_PATH: u32 = 0o10000000;
/// `__O_TMPFILE`: the bit that, with `O_DIRECTORY`, makes `O_TMPFILE`.
pub const __O_TMPFILE: u32 = 0o20000000;
/// `O_TMPFILE`: create an unnamed file in the given directory.
pub const O_TMPFILE: u32 = __O_TMPFILE | O_DIRECTORY;
/// `O_NDELAY`: old name of [`O_NONBLOCK`].
pub const O_NDELAY: u32 = O_NONBLOCK;

/// `F_DUPFD`: duplicate to the lowest free descriptor `>= arg`.
pub const F_DUPFD: u32 = 0;
/// `F_GETFD`: get the descriptor flags (`FD_CLOEXEC`).
pub const F_GETFD: u32 = 1;
/// `F_SETFD`: set the descriptor flags.
pub const F_SETFD: u32 = 2;
/// `F_GETFL`: get the file status flags and access mode.
pub const F_GETFL: u32 = 3;
/// `F_SETFL`: set the file status flags.
pub const F_SETFL: u32 = 4;
/// `F_GETLK`: test for a POSIX record lock.
pub const F_GETLK: u32 = 5;
/// `F_SETLK`: take or release a POSIX record lock without waiting.
pub const F_SETLK: u32 = 6;
/// `F_SETLKW`: take a POSIX record lock, waiting for it.
pub const F_SETLKW: u32 = 7;
/// `F_SETOWN`: set the process receiving `SIGIO`.
pub const F_SETOWN: u32 = 8;
/// `F_GETOWN`: get the process receiving `SIGIO`.
pub const F_GETOWN: u32 = 9;
/// `F_SETSIG`: set the signal sent for I/O readiness.
pub const F_SETSIG: u32 = 10;
/// `F_GETSIG`: get the signal sent for I/O readiness.
pub const F_GETSIG: u32 = 11;
/// `F_SETOWN_EX`: set the `SIGIO` owner (thread, process or group).
pub const F_SETOWN_EX: u32 = 15;
/// `F_GETOWN_EX`: get the `SIGIO` owner.
pub const F_GETOWN_EX: u32 = 16;
/// `F_GETOWNER_UIDS`: get the uids of the `SIGIO` owner.
pub const F_GETOWNER_UIDS: u32 = 17;
/// `F_OFD_GETLK`: test for an open-file-description lock.
pub const F_OFD_GETLK: u32 = 36;
/// `F_OFD_SETLK`: take or release an open-file-description lock.
pub const F_OFD_SETLK: u32 = 37;
/// `F_OFD_SETLKW`: take an open-file-description lock, waiting for it.
pub const F_OFD_SETLKW: u32 = 38;
/// `F_LINUX_SPECIFIC_BASE`: the first Linux-only command.
pub const F_LINUX_SPECIFIC_BASE: u32 = 1024;
/// `F_SETLEASE`: take or release a lease.
pub const F_SETLEASE: u32 = F_LINUX_SPECIFIC_BASE;
/// `F_GETLEASE`: get the lease type held.
pub const F_GETLEASE: u32 = F_LINUX_SPECIFIC_BASE + 1;
/// `F_NOTIFY`: directory change notification (dnotify).
pub const F_NOTIFY: u32 = F_LINUX_SPECIFIC_BASE + 2;
/// `F_CANCELLK`: cancel a blocked lock request.
pub const F_CANCELLK: u32 = F_LINUX_SPECIFIC_BASE + 5;
/// `F_DUPFD_CLOEXEC`: `F_DUPFD` setting `FD_CLOEXEC` on the copy.
pub const F_DUPFD_CLOEXEC: u32 = F_LINUX_SPECIFIC_BASE + 6;
/// `F_SETPIPE_SZ`: set a pipe's capacity.
pub const F_SETPIPE_SZ: u32 = F_LINUX_SPECIFIC_BASE + 7;
/// `F_GETPIPE_SZ`: get a pipe's capacity.
pub const F_GETPIPE_SZ: u32 = F_LINUX_SPECIFIC_BASE + 8;
/// `F_ADD_SEALS`: add `F_SEAL_*` seals to a memfd.
pub const F_ADD_SEALS: u32 = F_LINUX_SPECIFIC_BASE + 9;
/// `F_GET_SEALS`: get a memfd's seals.
pub const F_GET_SEALS: u32 = F_LINUX_SPECIFIC_BASE + 10;

/// `F_SEAL_SEAL`: no further seals may be added.
pub const F_SEAL_SEAL: u32 = 0x0001;
/// `F_SEAL_SHRINK`: the file cannot shrink.
pub const F_SEAL_SHRINK: u32 = 0x0002;
/// `F_SEAL_GROW`: the file cannot grow.
pub const F_SEAL_GROW: u32 = 0x0004;
/// `F_SEAL_WRITE`: the contents cannot change.
pub const F_SEAL_WRITE: u32 = 0x0008;
/// `F_SEAL_FUTURE_WRITE`: no new writable mappings or writes.
pub const F_SEAL_FUTURE_WRITE: u32 = 0x0010;

/// `FD_CLOEXEC`: the descriptor closes on `execve`.
pub const FD_CLOEXEC: u32 = 1;

/// `F_RDLCK`: a read lock (`struct flock::l_type`).
pub const F_RDLCK: i16 = 0;
/// `F_WRLCK`: a write lock.
pub const F_WRLCK: i16 = 1;
/// `F_UNLCK`: remove the lock.
pub const F_UNLCK: i16 = 2;

/// `AT_FDCWD`: the `dirfd` meaning "the current working directory".
pub const AT_FDCWD: i32 = -100;
/// `AT_SYMLINK_NOFOLLOW`: do not follow a final symbolic link.
pub const AT_SYMLINK_NOFOLLOW: u32 = 0x100;
/// `AT_EACCESS`: `faccessat` checks with the effective ids.
pub const AT_EACCESS: u32 = 0x200;
/// `AT_REMOVEDIR`: `unlinkat` removes a directory.
pub const AT_REMOVEDIR: u32 = 0x200;
/// `AT_SYMLINK_FOLLOW`: `linkat` follows a final symbolic link.
pub const AT_SYMLINK_FOLLOW: u32 = 0x400;
/// `AT_NO_AUTOMOUNT`: do not trigger an automount.
pub const AT_NO_AUTOMOUNT: u32 = 0x800;
/// `AT_EMPTY_PATH`: an empty path names `dirfd` itself.
pub const AT_EMPTY_PATH: u32 = 0x1000;
/// `AT_STATX_SYNC_TYPE`: the mask of the `statx` sync mode.
pub const AT_STATX_SYNC_TYPE: u32 = 0x6000;
/// `AT_STATX_SYNC_AS_STAT`: `statx` syncs as `stat` does.
pub const AT_STATX_SYNC_AS_STAT: u32 = 0x0000;
/// `AT_STATX_FORCE_SYNC`: `statx` forces a sync with the server.
pub const AT_STATX_FORCE_SYNC: u32 = 0x2000;
/// `AT_STATX_DONT_SYNC`: `statx` uses whatever is cached.
pub const AT_STATX_DONT_SYNC: u32 = 0x4000;
/// `AT_RECURSIVE`: apply to the whole subtree (`open_tree`, `mount_setattr`).
pub const AT_RECURSIVE: u32 = 0x8000;

/// `SEEK_SET`: `lseek` to the offset.
pub const SEEK_SET: u32 = 0;
/// `SEEK_CUR`: `lseek` relative to the current position.
pub const SEEK_CUR: u32 = 1;
/// `SEEK_END`: `lseek` relative to the end.
pub const SEEK_END: u32 = 2;
/// `SEEK_DATA`: `lseek` to the next data at or after the offset.
pub const SEEK_DATA: u32 = 3;
/// `SEEK_HOLE`: `lseek` to the next hole at or after the offset.
pub const SEEK_HOLE: u32 = 4;
/// `SEEK_MAX`: the largest valid `whence`.
pub const SEEK_MAX: u32 = SEEK_HOLE;

/// `POSIX_FADV_NORMAL`: no advice; the device's readahead window.
pub const POSIX_FADV_NORMAL: i32 = 0;
/// `POSIX_FADV_RANDOM`: reads are random, read only what is asked for.
pub const POSIX_FADV_RANDOM: i32 = 1;
/// `POSIX_FADV_SEQUENTIAL`: reads are sequential, twice the window.
pub const POSIX_FADV_SEQUENTIAL: i32 = 2;
/// `POSIX_FADV_WILLNEED`: read the range into the page cache now.
pub const POSIX_FADV_WILLNEED: i32 = 3;
/// `POSIX_FADV_DONTNEED`: write the range back and drop its clean pages
/// (4 on every architecture but s390x).
pub const POSIX_FADV_DONTNEED: i32 = 4;
/// `POSIX_FADV_NOREUSE`: the data will be used once (accepted, no effect
/// in Linux 6.1).
pub const POSIX_FADV_NOREUSE: i32 = 5;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;

    /// Every constant against the host's `<linux/fcntl.h>`, `<linux/fs.h>` and the headers they include.
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/fcntl.h", "linux/fs.h"];
            O_ACCMODE, O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC, O_APPEND, O_NONBLOCK,
            O_DSYNC, FASYNC, O_DIRECT, O_LARGEFILE, O_DIRECTORY, O_NOFOLLOW, O_NOATIME, O_CLOEXEC, __O_SYNC,
            O_SYNC, O_PATH, __O_TMPFILE, O_TMPFILE, O_NDELAY, F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL,
            F_GETLK, F_SETLK, F_SETLKW, F_SETOWN, F_GETOWN, F_SETSIG, F_GETSIG, F_SETOWN_EX, F_GETOWN_EX,
            F_GETOWNER_UIDS, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, F_LINUX_SPECIFIC_BASE, F_SETLEASE,
            F_GETLEASE, F_NOTIFY, F_CANCELLK, F_DUPFD_CLOEXEC, F_SETPIPE_SZ, F_GETPIPE_SZ, F_ADD_SEALS,
            F_GET_SEALS, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE, F_SEAL_FUTURE_WRITE, FD_CLOEXEC,
            F_RDLCK, F_WRLCK, F_UNLCK, AT_FDCWD, AT_SYMLINK_NOFOLLOW, AT_EACCESS, AT_REMOVEDIR,
            AT_SYMLINK_FOLLOW, AT_NO_AUTOMOUNT, AT_EMPTY_PATH, AT_STATX_SYNC_TYPE, AT_STATX_SYNC_AS_STAT,
            AT_STATX_FORCE_SYNC, AT_STATX_DONT_SYNC, AT_RECURSIVE, SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA,
            SEEK_HOLE, SEEK_MAX,
        );
    }

    /// The `fadvise64` advice against the host's `<linux/fadvise.h>`.
    /// `POSIX_FADV_DONTNEED` and `POSIX_FADV_NOREUSE` sit behind an
    /// `__s390x__` conditional the header reader does not evaluate (it
    /// would take s390x's 6 and 7), so they are checked by value.
    #[test]
    fn fadvise_constants_match_linux_headers() {
        assert_defines_match!(&["linux/fadvise.h"];
            POSIX_FADV_NORMAL, POSIX_FADV_RANDOM, POSIX_FADV_SEQUENTIAL, POSIX_FADV_WILLNEED,
        );
        assert_eq!((POSIX_FADV_DONTNEED, POSIX_FADV_NOREUSE), (4, 5));
    }
}
