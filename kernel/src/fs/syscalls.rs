//! The file-system system calls (Linux `fs/open.c`, `fs/namei.c`,
//! `fs/read_write.c`, `fs/stat.c`, `fs/readdir.c`, `fs/statfs.c`,
//! `fs/sync.c`, `fs/d_path.c`, `fs/namespace.c`'s `SYSCALL_DEFINE`s).
//!
//! Values from user space are checked here, once, in Linux's order:
//! flags first (EINVAL), then the path is copied (EFAULT,
//! ENAMETOOLONG past `PATH_MAX`, ENOENT if empty without
//! `AT_EMPTY_PATH`), then the walk ([`super::namei`]).
//!
//! Differences from Linux: no permission checks (EACCES never comes from
//! mode bits; every caller is treated as root); `O_DIRECT` is EINVAL at
//! open, as tmpfs gives it before Linux 6.6, for every file: a file with a
//! page cache (ext2) refuses it rather than have reads and writes bypass
//! the cache (Linux's ext2 supports it; the issue allows the refusal); `O_TMPFILE` is EOPNOTSUPP; `mmap` maps files with a
//! page cache (ext2, tmpfs and the rootfs, memfd; ENODEV for a ramfs
//! file), and `/dev/zero` ([`crate::drivers::mem`]). `mknod` makes device
//! nodes, FIFOs and sockets where the file system can hold them (tmpfs,
//! devtmpfs; EPERM elsewhere); a FIFO or socket node opens as ENXIO.

#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use uapi::errno::Errno;
use uapi::fcntl::*;

use super::char_dev::CharDev;
use super::file::{FileKind, OpenFile};
use super::inode::{Kstat, RenameFlags, SetAttr};
use super::namei::{self, Last};
use super::namespace::{self, MountFlags, Path};
use crate::arch::x86_64::uaccess::{copy_to_user, strncpy_from_user, write_user};
use crate::resource;
use crate::sched;
use crate::syscall::zeroed_buf;

type SysResult = Result<u64, Errno>;

fn efault<T>(_: T) -> Errno {
    Errno::EFAULT
}

/// A path from user memory (Linux `getname`): EFAULT, ENAMETOOLONG if it
/// does not end within `PATH_MAX` bytes; may be empty.
pub fn user_path(ptr: u64) -> Result<Vec<u8>, Errno> {
    let mut buf = zeroed_buf(uapi::fs::PATH_MAX)?;
    let n = strncpy_from_user(&mut buf, ptr).map_err(efault)?;
    if n == buf.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    buf.truncate(n);
    Ok(buf)
}

/// The directory a `*at` call starts from: the cwd for `AT_FDCWD`, else
/// the directory open at `dirfd` (EBADF, ENOTDIR).
fn start_dir(dirfd: i32, path: &[u8]) -> Result<Path, Errno> {
    if path.first() == Some(&b'/') {
        return namespace::root();
    }
    if dirfd == AT_FDCWD {
        return sched::current().proc.fs.lock().pwd();
    }
    let f = sched::current().proc.files.lock().get(dirfd)?;
    let p = f.path().ok_or(Errno::ENOTDIR)?.clone();
    if !p.inode.getattr()?.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(p)
}

/// The file at `dirfd` itself, for `AT_EMPTY_PATH` (any descriptor).
fn fd_path(dirfd: i32) -> Result<Path, Errno> {
    if dirfd == AT_FDCWD {
        return sched::current().proc.fs.lock().pwd();
    }
    let f = sched::current().proc.files.lock().get(dirfd)?;
    f.path().cloned().ok_or(Errno::EBADF)
}

/// Resolves `path` from `dirfd` (Linux `user_path_at`).
pub(crate) fn user_path_at(dirfd: i32, path: &[u8], follow: bool) -> Result<Path, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let start = start_dir(dirfd, path)?;
    namei::path_lookupat(&start, path, follow)
}

fn parent_at(dirfd: i32, path: &[u8]) -> Result<namei::Parent, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let start = start_dir(dirfd, path)?;
    namei::path_parentat(&start, path)
}

fn umask() -> u32 {
    sched::current().proc.fs.lock().umask
}

/// Linux `open` / `openat` / `creat`.
pub fn sys_openat(dirfd: i32, path: u64, flags: u32, mode: u32) -> SysResult {
    if flags & O_DIRECT != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & __O_TMPFILE != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let path = user_path(path)?;
    let me = sched::current();
    let nofile = resource::current_nofile();
    // Linux takes the descriptor before it looks the path up
    // (`do_sys_openat2`), so a full table is EMFILE whatever the path.
    me.proc.files.lock().get_unused_fd(0, nofile)?;
    let (kind, name) = match proc_file(&path, flags)? {
        Some(kind) => (kind, None),
        None => do_filp_open(dirfd, &path, flags, mode & 0o7777 & !umask())?,
    };
    let cloexec = flags & O_CLOEXEC != 0;
    let stored = flags & !(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC);
    me.proc.files.lock().install(OpenFile::new_named(kind, stored, name), cloexec, nofile).map(|fd| fd as u64)
}

/// The debugfs and mm sysfs files, which have no inodes and are found
/// by their paths (see [`super::proc_sysctl`]); `/proc` is a mounted file
/// system ([`super::proc`]).
fn proc_file(path: &[u8], flags: u32) -> Result<Option<FileKind>, Errno> {
    let Ok(abs) = core::str::from_utf8(path) else { return Ok(None) };
    if !abs.starts_with("/sys/") {
        return Ok(None);
    }
    let Some(sysctl) = super::proc_sysctl::lookup(abs) else { return Ok(None) };
    let writing = flags & O_ACCMODE != O_RDONLY;
    let reading = flags & O_ACCMODE != O_WRONLY;
    // Linux's mode bits, which bind root too: 0444, 0644 or 0200.
    if reading && !sysctl.readable || writing && sysctl.store.is_none() {
        return Err(Errno::EACCES);
    }
    let text = if reading { (sysctl.show)().into_bytes() } else { Vec::new() };
    Ok(Some(match sysctl.store {
        Some(store) if writing => FileKind::Sysctl { text, store },
        _ => FileKind::Text(text),
    }))
}

/// What an open names the file by: its directory and last component
/// (see [`OpenFile::d_path`]).
type OpenName = Option<(Path, Vec<u8>)>;

/// Linux `do_filp_open`: walks, creates with `O_CREAT`, checks the
/// result against the flags and truncates with `O_TRUNC`. Also returns
/// the directory and name the file was found by, unless a symbolic link
/// led elsewhere.
fn do_filp_open(dirfd: i32, path: &[u8], flags: u32, mode: u32) -> Result<(FileKind, OpenName), Errno> {
    let write = matches!(flags & O_ACCMODE, O_WRONLY | O_RDWR) && flags & O_PATH == 0;
    let parent = parent_at(dirfd, path)?;
    let named = match &parent.last {
        Last::Norm(n) => Some((parent.dir.clone(), n.clone())),
        _ => None,
    };
    let target = if flags & O_CREAT != 0 {
        let name = match &parent.last {
            Last::Norm(n) => n.clone(),
            _ => return Err(Errno::EISDIR),
        };
        if parent.trailing_slash {
            return Err(Errno::EISDIR);
        }
        match namei::lookup_one(&parent.dir, &name) {
            Ok(existing) => {
                if flags & O_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                drop(existing);
                namei::lookup_last(parent, flags & O_NOFOLLOW == 0)?
            }
            Err(Errno::ENOENT) => {
                parent.dir.want_write()?;
                let fs_inode = parent.dir.inode.ops.create(&name, mode, namei::current_owner());
                parent.dir.inode.sb.dcache.invalidate(parent.dir.inode.ino, &name);
                let inode = parent.dir.inode.sb.iget(fs_inode?);
                return Ok((FileKind::Inode(Path { mnt: parent.dir.mnt.clone(), inode }), named));
            }
            Err(e) => return Err(e),
        }
    } else {
        namei::lookup_last(parent, flags & O_NOFOLLOW == 0)?
    };
    let attr = target.inode.getattr()?;
    if attr.is_symlink() && flags & O_PATH == 0 {
        return Err(Errno::ELOOP);
    }
    if flags & O_DIRECTORY != 0 && !attr.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    if attr.is_dir() && (write || flags & O_CREAT != 0 && flags & O_PATH == 0) {
        return Err(Errno::EISDIR);
    }
    // The name leads to the file itself, not through a symbolic link.
    let named = named.filter(|(dir, name)| namei::lookup_one(dir, name).is_ok_and(|p| Path::same(&p, &target)));
    if flags & O_PATH != 0 {
        return Ok((FileKind::Inode(target), named));
    }
    match attr.file_type() {
        // Linux `chrdev_open`: the driver's operations replace the file's
        // (a device file on a read-only mount is still written).
        uapi::stat::S_IFCHR => {
            return match super::char_dev::chrdev_open(attr.rdev)? {
                CharDev::Console => Ok((FileKind::Console, None)),
                CharDev::Mem(dev) => Ok((FileKind::Mem { path: target, dev }, named)),
            };
        }
        uapi::stat::S_IFBLK | uapi::stat::S_IFIFO | uapi::stat::S_IFSOCK => return Err(Errno::ENXIO),
        _ => {}
    }
    let mask = if flags & O_ACCMODE != O_WRONLY { super::proc::MAY_READ } else { 0 };
    target.inode.ops.permission(mask | if write { super::proc::MAY_WRITE } else { 0 })?;
    if write {
        target.want_write()?;
    }
    if flags & O_TRUNC != 0 && attr.is_reg() {
        target.want_write()?;
        super::read_write::do_truncate(&target.inode, 0)?;
    }
    Ok((FileKind::Inode(target), named))
}

/// Linux `pread64`.
pub fn sys_pread64(fd: i32, buf: u64, len: u64, pos: i64) -> SysResult {
    let f = file(fd)?;
    if pos < 0 {
        return Err(Errno::EINVAL);
    }
    let mut tmp = zeroed_buf(len.min(crate::syscall::IO_CHUNK) as usize)?;
    let n = f.read_at(&mut tmp, pos as u64)?;
    copy_to_user(buf, &tmp[..n]).map_err(efault)?;
    Ok(n as u64)
}

/// Linux `pwrite64`.
pub fn sys_pwrite64(fd: i32, buf: u64, len: u64, pos: i64) -> SysResult {
    let f = file(fd)?;
    if pos < 0 {
        return Err(Errno::EINVAL);
    }
    let mut tmp = zeroed_buf(len.min(crate::syscall::IO_CHUNK) as usize)?;
    crate::arch::x86_64::uaccess::copy_from_user(&mut tmp, buf).map_err(efault)?;
    f.write_at(&tmp, pos as u64).map(|n| n as u64)
}

fn file(fd: i32) -> Result<Arc<OpenFile>, Errno> {
    sched::current().proc.files.lock().get(fd)
}

/// Linux `lseek`, SEEK_DATA and SEEK_HOLE as for a file without holes
/// (Linux `generic_file_llseek_size`).
pub fn sys_lseek(fd: i32, off: i64, whence: u32) -> SysResult {
    let f = file(fd)?;
    if matches!(f.kind, FileKind::Console | FileKind::Pipe(_)) {
        return Err(Errno::ESPIPE);
    }
    if let FileKind::Mem { dev, .. } = f.kind {
        // Linux `null_lseek` or `noop_llseek`, whatever the arguments.
        let mut pos = f.pos.lock();
        if dev.lseek_resets() {
            *pos = 0;
        }
        return Ok(*pos);
    }
    let size = f.size()? as i64;
    let _guard = f.f_pos_lock.lock();
    let mut pos = f.pos.lock();
    let new = match whence {
        SEEK_SET => off,
        SEEK_CUR => (*pos as i64).checked_add(off).ok_or(Errno::EOVERFLOW)?,
        SEEK_END => size.checked_add(off).ok_or(Errno::EOVERFLOW)?,
        SEEK_DATA if off < 0 || off >= size => return Err(Errno::ENXIO),
        SEEK_DATA => off,
        SEEK_HOLE if off < 0 || off >= size => return Err(Errno::ENXIO),
        SEEK_HOLE => size,
        _ => return Err(Errno::EINVAL),
    };
    if new < 0 {
        return Err(Errno::EINVAL);
    }
    *pos = new as u64;
    Ok(new as u64)
}

/// `struct stat` of a file (Linux `cp_new_stat`).
fn to_stat(st: &Kstat, dev: u64) -> uapi::stat::Stat {
    uapi::stat::Stat {
        st_dev: dev,
        st_ino: st.ino,
        st_nlink: u64::from(st.nlink),
        st_mode: st.mode,
        st_uid: st.uid,
        st_gid: st.gid,
        st_rdev: st.rdev,
        st_size: st.size as i64,
        st_blksize: i64::from(st.blksize),
        st_blocks: st.blocks as i64,
        st_atime: st.atime.sec as u64,
        st_atime_nsec: u64::from(st.atime.nsec),
        st_mtime: st.mtime.sec as u64,
        st_mtime_nsec: u64::from(st.mtime.nsec),
        st_ctime: st.ctime.sec as u64,
        st_ctime_nsec: u64::from(st.ctime.nsec),
        ..Default::default()
    }
}

/// The attributes of an open file, whatever it is.
fn file_stat(f: &OpenFile) -> Result<(Kstat, u64), Errno> {
    let mut st = Kstat { nlink: 1, blksize: 4096, ..Kstat::default() };
    match &f.kind {
        FileKind::Console => {
            st.mode = uapi::stat::S_IFCHR | 0o600;
            st.rdev = (5 << 8) | 1;
        }
        FileKind::Inode(p) | FileKind::Mem { path: p, .. } => return Ok((p.inode.getattr()?, p.inode.sb.dev)),
        FileKind::Text(t) => {
            st.mode = uapi::stat::S_IFREG | 0o444;
            st.size = t.len() as u64;
        }
        FileKind::Sysctl { .. } => st.mode = uapi::stat::S_IFREG | 0o644,
        FileKind::Pipe(_) => st.mode = uapi::stat::S_IFIFO | 0o600,
    }
    Ok((st, 0))
}

/// Linux `fstat`.
pub fn sys_fstat(fd: i32, buf: u64) -> SysResult {
    let (st, dev) = file_stat(&*file(fd)?)?;
    write_user(buf, &to_stat(&st, dev)).map_err(efault)?;
    Ok(0)
}

/// What `*stat*at` stat: the path, or the descriptor with
/// `AT_EMPTY_PATH` and an empty path.
fn stat_target(dirfd: i32, path: u64, flags: u32) -> Result<(Kstat, u64, u32), Errno> {
    let path = user_path(path)?;
    if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        if dirfd == AT_FDCWD {
            let p = fd_path(dirfd)?;
            return Ok((p.inode.getattr()?, p.inode.sb.dev, p.mnt.id));
        }
        let (st, dev) = file_stat(&*file(dirfd)?)?;
        let id = file(dirfd)?.path().map_or(0, |p| p.mnt.id);
        return Ok((st, dev, id));
    }
    let p = user_path_at(dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?;
    Ok((p.inode.getattr()?, p.inode.sb.dev, p.mnt.id))
}

/// Linux `newfstatat` (and `stat`, `lstat`).
pub fn sys_newfstatat(dirfd: i32, path: u64, buf: u64, flags: u32) -> SysResult {
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let (st, dev, _) = stat_target(dirfd, path, flags)?;
    write_user(buf, &to_stat(&st, dev)).map_err(efault)?;
    Ok(0)
}

/// Linux `statx`: the basic fields whatever the mask asks.
pub fn sys_statx(dirfd: i32, path: u64, flags: u32, mask: u32, buf: u64) -> SysResult {
    use uapi::fs::*;
    if flags & !(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE) != 0
        || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE
        || mask & STATX__RESERVED != 0
    {
        return Err(Errno::EINVAL);
    }
    let (st, dev, mnt_id) = stat_target(dirfd, path, flags)?;
    let t = |ts: super::inode::Timestamp| StatxTimestamp { tv_sec: ts.sec, tv_nsec: ts.nsec, __reserved: 0 };
    let sx = Statx {
        stx_mask: STATX_BASIC_STATS,
        stx_blksize: st.blksize,
        stx_nlink: st.nlink,
        stx_uid: st.uid,
        stx_gid: st.gid,
        stx_mode: st.mode as u16,
        stx_ino: st.ino,
        stx_size: st.size,
        stx_blocks: st.blocks,
        stx_atime: t(st.atime),
        stx_ctime: t(st.ctime),
        stx_mtime: t(st.mtime),
        stx_rdev_major: (st.rdev >> 8) as u32,
        stx_rdev_minor: (st.rdev & 0xff) as u32,
        stx_dev_major: (dev >> 8) as u32,
        stx_dev_minor: (dev & 0xff) as u32,
        stx_mnt_id: u64::from(mnt_id),
        ..Statx::default()
    };
    write_user(buf, &sx).map_err(efault)?;
    Ok(0)
}

/// Linux `getdents64`: as many whole records as fit; EINVAL if not even
/// one does.
pub fn sys_getdents64(fd: i32, buf: u64, count: u64) -> SysResult {
    let f = file(fd)?;
    let p = f.path().ok_or(Errno::ENOTDIR)?.clone();
    if f.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    if !p.inode.getattr()?.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let count = count.min(crate::syscall::IO_CHUNK) as usize;
    let mut out = zeroed_buf(count)?;
    let mut used = 0;
    let _guard = f.f_pos_lock.lock();
    let mut pos = *f.pos.lock();
    while let Some((e, next)) = p.inode.ops.readdir(pos)? {
        let reclen = (uapi::fs::DIRENT64_NAME_OFFSET + e.name.len() + 1).next_multiple_of(8);
        if used + reclen > count {
            if used == 0 {
                return Err(Errno::EINVAL);
            }
            break;
        }
        let rec = &mut out[used..used + reclen];
        rec[0..8].copy_from_slice(&e.ino.to_ne_bytes());
        rec[8..16].copy_from_slice(&next.to_ne_bytes());
        rec[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
        rec[18] = e.d_type;
        rec[19..19 + e.name.len()].copy_from_slice(&e.name);
        used += reclen;
        pos = next;
    }
    copy_to_user(buf, &out[..used]).map_err(efault)?;
    *f.pos.lock() = pos;
    Ok(used as u64)
}

/// Linux `mkdirat`.
pub fn sys_mkdirat(dirfd: i32, path: u64, mode: u32) -> SysResult {
    let path = user_path(path)?;
    let parent = parent_at(dirfd, &path)?;
    namei::vfs_mkdir(&parent, mode & 0o7777 & !umask()).map(|()| 0)
}

/// Linux `mknodat` (and `mknod`): a regular file, device node, FIFO or
/// socket; EPERM for a directory and EINVAL for any other type, before
/// the path is looked at (Linux `may_mknod`). `dev` is the encoded device
/// number, kept as given (`new_decode_dev` then `new_encode_dev` at stat).
pub fn sys_mknodat(dirfd: i32, path: u64, mode: u32, dev: u32) -> SysResult {
    use uapi::stat::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT, S_IFREG, S_IFSOCK};
    match mode & S_IFMT {
        0 | S_IFREG | S_IFCHR | S_IFBLK | S_IFIFO | S_IFSOCK => {}
        S_IFDIR => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    }
    let path = user_path(path)?;
    let parent = parent_at(dirfd, &path)?;
    let mode = (mode & S_IFMT) | (mode & 0o7777 & !umask());
    namei::vfs_mknod(&parent, mode, u64::from(dev)).map(|()| 0)
}

/// Linux `unlinkat` (and `unlink`, `rmdir`).
pub fn sys_unlinkat(dirfd: i32, path: u64, flags: u32) -> SysResult {
    if flags & !AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    let parent = parent_at(dirfd, &path)?;
    if flags & AT_REMOVEDIR != 0 { namei::vfs_rmdir(&parent) } else { namei::vfs_unlink(&parent) }.map(|()| 0)
}

/// Linux `renameat2` (and `rename`, `renameat`).
pub fn sys_renameat2(olddfd: i32, old: u64, newdfd: i32, new: u64, flags: u32) -> SysResult {
    use uapi::fs::{RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT};
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & RENAME_EXCHANGE != 0 && flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & RENAME_WHITEOUT != 0 {
        return Err(Errno::EINVAL);
    }
    let old = user_path(old)?;
    let new = user_path(new)?;
    let old = parent_at(olddfd, &old)?;
    let new = parent_at(newdfd, &new)?;
    let flags = RenameFlags { noreplace: flags & RENAME_NOREPLACE != 0, exchange: flags & RENAME_EXCHANGE != 0 };
    namei::vfs_rename(&old, &new, flags).map(|()| 0)
}

/// Linux `linkat` (and `link`).
pub fn sys_linkat(olddfd: i32, old: u64, newdfd: i32, new: u64, flags: u32) -> SysResult {
    if flags & !(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old = user_path(old)?;
    let new = user_path(new)?;
    let old = if old.is_empty() && flags & AT_EMPTY_PATH != 0 {
        fd_path(olddfd)?
    } else {
        user_path_at(olddfd, &old, flags & AT_SYMLINK_FOLLOW != 0)?
    };
    let new = parent_at(newdfd, &new)?;
    namei::vfs_link(&old, &new).map(|()| 0)
}

/// Linux `symlinkat` (and `symlink`).
pub fn sys_symlinkat(target: u64, newdfd: i32, path: u64) -> SysResult {
    let target = user_path(target)?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let path = user_path(path)?;
    let parent = parent_at(newdfd, &path)?;
    namei::vfs_symlink(&parent, &target).map(|()| 0)
}

/// Linux `readlinkat` (and `readlink`): EINVAL for a bad size or a file
/// that is not a link; the target is not NUL-terminated.
pub fn sys_readlinkat(dirfd: i32, path: u64, buf: u64, size: i32) -> SysResult {
    if size <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    let p = if path.is_empty() { fd_path(dirfd)? } else { user_path_at(dirfd, &path, false)? };
    if !p.inode.getattr()?.is_symlink() {
        return Err(Errno::EINVAL);
    }
    let target = p.inode.ops.readlink()?;
    let n = target.len().min(size as usize);
    copy_to_user(buf, &target[..n]).map_err(efault)?;
    Ok(n as u64)
}

fn truncate_path(p: &Path, len: i64) -> SysResult {
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let attr = p.inode.getattr()?;
    if attr.is_dir() {
        return Err(Errno::EISDIR);
    }
    if !attr.is_reg() {
        return Err(Errno::EINVAL);
    }
    p.want_write()?;
    super::read_write::do_truncate(&p.inode, len as u64).map(|()| 0)
}

/// Linux `truncate`.
pub fn sys_truncate(path: u64, len: i64) -> SysResult {
    let path = user_path(path)?;
    let p = user_path_at(AT_FDCWD, &path, true)?;
    truncate_path(&p, len)
}

/// Linux `ftruncate`: EINVAL unless a regular file open for writing.
pub fn sys_ftruncate(fd: i32, len: i64) -> SysResult {
    let f = file(fd)?;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let p = f.path().ok_or(Errno::EINVAL)?;
    if !f.writable() || !p.inode.getattr()?.is_reg() {
        return Err(Errno::EINVAL);
    }
    truncate_path(p, len)
}

/// Linux `fsync` and `fdatasync`: EINVAL for files that cannot be synced.
pub fn sys_fsync(fd: i32) -> SysResult {
    file(fd)?.fsync().map(|()| 0)
}

/// Linux `syncfs`.
pub fn sys_syncfs(fd: i32) -> SysResult {
    let f = file(fd)?;
    match f.path() {
        Some(p) => {
            let written = super::fs_writeback::sync_inodes_sb(&p.inode.sb);
            let synced = p.inode.sb.ops.sync_fs();
            written.and(synced).map(|()| 0)
        }
        None => Ok(0),
    }
}

/// Linux `sync`: never fails.
pub fn sys_sync() -> SysResult {
    let _ = namespace::sync_all();
    Ok(0)
}

/// Linux `chdir`.
pub fn sys_chdir(path: u64) -> SysResult {
    let path = user_path(path)?;
    let p = user_path_at(AT_FDCWD, &path, true)?;
    set_pwd(p)
}

fn set_pwd(p: Path) -> SysResult {
    if !p.inode.getattr()?.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let old = sched::current().proc.fs.lock().set_pwd(p);
    drop(old);
    Ok(0)
}

/// Linux `fchdir`.
pub fn sys_fchdir(fd: i32) -> SysResult {
    let f = file(fd)?;
    let p = f.path().ok_or(Errno::ENOTDIR)?.clone();
    set_pwd(p)
}

/// Linux `getcwd`: ERANGE if the path and its NUL do not fit, ENOENT if
/// the directory was removed.
pub fn sys_getcwd(buf: u64, size: u64) -> SysResult {
    let pwd = sched::current().proc.fs.lock().pwd()?;
    let mut path = namei::d_path(&pwd)?.into_bytes();
    path.push(0);
    if path.len() as u64 > size {
        return Err(Errno::ERANGE);
    }
    copy_to_user(buf, &path).map_err(efault)?;
    Ok(path.len() as u64)
}

/// Linux `umask`.
pub fn sys_umask(mask: u32) -> SysResult {
    let me = sched::current();
    let mut fs = me.proc.fs.lock();
    let old = fs.umask;
    fs.umask = mask & 0o777;
    Ok(u64::from(old))
}

/// Linux `faccessat` (and `access`, `faccessat2` without flags): the file
/// must exist; `W_OK` on a read-only mount is EROFS; no mode-bit checks.
pub fn sys_faccessat(dirfd: i32, path: u64, mode: u32, flags: u32) -> SysResult {
    const W_OK: u32 = 2;
    if mode & !7 != 0 || flags & !(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let path = user_path(path)?;
    let p = if path.is_empty() && flags & AT_EMPTY_PATH != 0 {
        fd_path(dirfd)?
    } else {
        user_path_at(dirfd, &path, flags & AT_SYMLINK_NOFOLLOW == 0)?
    };
    let attr = p.inode.getattr()?;
    if mode & W_OK != 0 && !attr.is_symlink() && (attr.is_reg() || attr.is_dir()) {
        p.want_write()?;
    }
    Ok(0)
}

/// Linux `fchmodat`/`chmod`/`fchmod` in one: sets permission bits.
pub fn sys_fchmod_path(p: &Path, mode: u32) -> SysResult {
    p.want_write()?;
    p.inode.ops.setattr(&SetAttr { mode: Some(mode & 0o7777), ..Default::default() }).map(|()| 0)
}

/// Linux `chmod`.
pub fn sys_chmod(path: u64, mode: u32) -> SysResult {
    let path = user_path(path)?;
    sys_fchmod_path(&user_path_at(AT_FDCWD, &path, true)?, mode)
}

/// Linux `fchmod`.
pub fn sys_fchmod(fd: i32, mode: u32) -> SysResult {
    let f = file(fd)?;
    sys_fchmod_path(f.path().ok_or(Errno::EINVAL)?, mode)
}

fn to_statfs(p: &Path) -> uapi::fs::Statfs {
    let s = p.inode.sb.ops.statfs();
    let dev = p.inode.sb.dev;
    uapi::fs::Statfs {
        f_type: s.f_type,
        f_bsize: s.bsize as i64,
        f_blocks: s.blocks,
        f_bfree: s.bfree,
        f_bavail: s.bavail,
        f_files: s.files,
        f_ffree: s.ffree,
        f_fsid: [dev as i32, (dev >> 32) as i32],
        f_namelen: s.namelen as i64,
        f_frsize: s.bsize as i64,
        f_flags: uapi::fs::ST_VALID | if p.mnt.read_only { uapi::fs::ST_RDONLY } else { 0 },
        f_spare: [0; 4],
    }
}

/// Linux `statfs`.
pub fn sys_statfs(path: u64, buf: u64) -> SysResult {
    let path = user_path(path)?;
    let p = user_path_at(AT_FDCWD, &path, true)?;
    write_user(buf, &to_statfs(&p)).map_err(efault)?;
    Ok(0)
}

/// Linux `fstatfs`.
pub fn sys_fstatfs(fd: i32, buf: u64) -> SysResult {
    let f = file(fd)?;
    let p = f.path().ok_or(Errno::EINVAL)?;
    write_user(buf, &to_statfs(p)).map_err(efault)?;
    Ok(0)
}

/// A short string argument (`mount`'s source and type).
fn user_str(ptr: u64) -> Result<String, Errno> {
    let bytes = user_path(ptr)?;
    String::from_utf8(bytes).map_err(|_| Errno::EINVAL)
}

/// Linux `mount`: a new mount of `fstype` from `source` on `target`
/// (needs `CAP_SYS_ADMIN`: EPERM without it), with the options string
/// `data` (a file system's own, NUL-terminated).
pub fn sys_mount(source: u64, target: u64, fstype: u64, flags: u64, data: u64) -> SysResult {
    if !crate::cred::current_cred().capable(uapi::capability::CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let flags = MountFlags::from_user(flags)?;
    let target = user_path(target)?;
    let fstype = user_str(fstype)?;
    let source = if source == 0 { String::from("none") } else { user_str(source)? };
    let data = if data == 0 { String::new() } else { user_str(data)? };
    let target = user_path_at(AT_FDCWD, &target, true)?;
    namespace::do_mount(&source, target, &fstype, flags, &data).map(|()| 0)
}

/// Linux `umount2`.
pub fn sys_umount2(target: u64, flags: u32) -> SysResult {
    use uapi::fs::{MNT_DETACH, MNT_EXPIRE, MNT_FORCE, UMOUNT_NOFOLLOW};
    if flags & !(MNT_FORCE | MNT_DETACH | MNT_EXPIRE | UMOUNT_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MNT_EXPIRE != 0 && flags & (MNT_FORCE | MNT_DETACH) != 0 {
        return Err(Errno::EINVAL);
    }
    if !crate::cred::current_cred().capable(uapi::capability::CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let target = user_path(target)?;
    let p = user_path_at(AT_FDCWD, &target, flags & UMOUNT_NOFOLLOW == 0)?;
    namespace::do_umount(p).map(|()| 0)
}

/// Resolves `path` from the cwd of the running task (for exec and the
/// console).
pub fn kern_path(path: &str) -> Result<Path, Errno> {
    user_path_at(AT_FDCWD, path.as_bytes(), true)
}

/// Resolves `path`'s parent from the cwd of the running task.
pub fn kern_parent(path: &str) -> Result<namei::Parent, Errno> {
    parent_at(AT_FDCWD, path.as_bytes())
}

/// Kernel entry points on paths from the running task's cwd (the
/// console's commands and the in-kernel tests use them; Linux's
/// `kern_path`, `vfs_mkdir`, `kernel_read_file` family).
pub mod kern {
    use alloc::string::String;
    use alloc::vec::Vec;

    use uapi::errno::Errno;

    use super::super::inode::DirEntry;
    use super::super::namei;
    use super::super::namespace::{self, MountFlags};
    use super::super::read_write::{do_truncate, file_write_iter, kernel_read};
    use super::{kern_parent, kern_path};

    /// Makes directory `path` (mode 0755).
    pub fn mkdir(path: &str) -> Result<(), Errno> {
        namei::vfs_mkdir(&kern_parent(path)?, 0o755)
    }

    /// Creates or truncates the file `path` and writes `data` to it.
    pub fn write_file(path: &str, data: &[u8]) -> Result<(), Errno> {
        let parent = kern_parent(path)?;
        let name = parent.name_or(Errno::EISDIR)?.to_vec();
        let p = match namei::lookup_one(&parent.dir, &name) {
            Ok(p) => p,
            Err(Errno::ENOENT) => {
                parent.dir.want_write()?;
                let fs_inode = parent.dir.inode.ops.create(&name, 0o644, namei::current_owner());
                parent.dir.inode.sb.dcache.invalidate(parent.dir.inode.ino, &name);
                kern_path(path).or_else(|e| fs_inode.map(drop).and(Err(e)))?
            }
            Err(e) => return Err(e),
        };
        p.want_write()?;
        do_truncate(&p.inode, 0)?;
        let mut done = 0;
        while done < data.len() {
            let (n, _) = file_write_iter(&p.inode, done as u64, &data[done..], false)?;
            done += n;
        }
        Ok(())
    }

    /// Writes `data` at `offset` of the existing file `path`.
    pub fn pwrite(path: &str, offset: u64, data: &[u8]) -> Result<usize, Errno> {
        let p = kern_path(path)?;
        p.want_write()?;
        file_write_iter(&p.inode, offset, data, false).map(|(n, _)| n)
    }

    /// Reads `len` bytes (fewer at the end) at `offset` of `path`.
    pub fn pread(path: &str, offset: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let p = kern_path(path)?;
        let mut buf = crate::syscall::zeroed_buf(len)?;
        let mut done = 0;
        while done < len {
            let n = kernel_read(&p.inode, offset + done as u64, &mut buf[done..])?;
            if n == 0 {
                break;
            }
            done += n;
        }
        buf.truncate(done);
        Ok(buf)
    }

    /// The whole of file `path`.
    pub fn read_file(path: &str) -> Result<Vec<u8>, Errno> {
        let size = kern_path(path)?.inode.getattr()?.size;
        pread(path, 0, usize::try_from(size).map_err(|_| Errno::EFBIG)?)
    }

    /// The entries of directory `path` but `.` and `..`, in the file
    /// system's order (Linux `iterate_dir` for a kernel reader).
    pub fn read_dir(path: &str) -> Result<Vec<DirEntry>, Errno> {
        let p = kern_path(path)?;
        if !p.inode.getattr()?.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let mut entries = Vec::new();
        let mut pos = 0;
        while let Some((entry, next)) = p.inode.ops.readdir(pos)? {
            if entry.name != b"." && entry.name != b".." {
                entries.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
                entries.push(entry);
            }
            pos = next;
        }
        Ok(entries)
    }

    /// Mounts `source` of type `fstype` on `target`.
    pub fn mount(source: &str, target: &str, fstype: &str, read_only: bool) -> Result<(), Errno> {
        namespace::do_mount(source, kern_path(target)?, fstype, MountFlags { read_only }, "")
    }

    /// Unmounts the file system mounted on `target`.
    pub fn umount(target: &str) -> Result<(), Errno> {
        namespace::do_umount(kern_path(target)?)
    }

    /// Makes a loop device over file `path`; returns its `/dev` path.
    pub fn losetup(path: &str) -> Result<String, Errno> {
        super::super::loopdev::loop_attach(kern_path(path)?).map(|name| alloc::format!("/dev/{name}"))
    }
}
