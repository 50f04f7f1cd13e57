//! Open files and descriptor tables (Linux `fs/file.c`, `fs/open.c`,
//! `fs/read_write.c`, and the pseudo files a test program needs:
//! `/dev/console`-like standard streams and the debugfs and sysfs files
//! found by path).
//!
//! Files are VFS inodes (any mounted file system, read and written
//! through [`super::read_write`]), character devices opened through their
//! inodes (served by their drivers, [`super::char_dev`]), the console,
//! pipes, and snapshots of generated text (the debugfs and sysfs files of
//! [`super::proc_sysctl`]), made when opened. An open file (Linux `struct file`)
//! is shared by every descriptor that `fork` or `dup` made from it, with
//! one offset.
//!
//! Locking: `f_pos_lock` (sleeping, Linux's) is held across a read or
//! write of an inode and its offset update, then the inode's `i_rwsem`;
//! the offset itself is a leaf [`SpinLock`]; a capture buffer a sleeping
//! [`Mutex`] (it grows as output is written).

#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use mm::errseq::ErrSeqSample;
use mm::readahead::FileRaState;
use uapi::errno::Errno;

use super::namespace::Path;
use super::pipe::PipeEnd;
use super::proc_sysctl::SysctlStore;
use crate::drivers::mem::MemDev;
use crate::sync::{Mutex, SpinLock};

/// What an open file reads from.
pub enum FileKind {
    /// The serial console: writes go out, reads see end of file.
    Console,
    /// A file, directory or symbolic link (`O_PATH`) of a mounted file
    /// system.
    Inode(Path),
    /// A memory device (`/dev/null`, `/dev/zero` ...) opened through its
    /// inode at `path` (Linux `chrdev_open` giving the file the driver's
    /// operations): reads and writes go to the driver, attributes to the
    /// inode.
    Mem {
        /// The device node.
        path: Path,
        /// The driver.
        dev: MemDev,
    },
    /// Generated text, snapshot at open.
    Text(Vec<u8>),
    /// A settable debugfs or mm sysfs file opened for writing: each
    /// write sets it from the bytes written (Linux `simple_attr_write`,
    /// `kobj_attr_store`); reads see `text`, the value at open.
    Sysctl {
        /// The value at open (empty for a write-only one).
        text: Vec<u8>,
        /// What a write calls.
        store: SysctlStore,
    },
    /// One end of a pipe.
    Pipe(PipeEnd),
}

/// An open file (Linux `struct file`).
pub struct OpenFile {
    /// What it is.
    pub kind: FileKind,
    /// The read/write offset (a directory's: the file system's cookie).
    pub pos: SpinLock<u64>,
    /// Linux `f_pos_lock`: one reader or writer of an inode at a time
    /// moves the offset.
    pub f_pos_lock: Mutex<()>,
    /// The `O_*` flags: those it was opened with, the status flags
    /// changed by `F_SETFL`.
    flags: AtomicU32,
    /// Readahead state of a cached file (Linux `f_ra`): copied out for a
    /// read and back after it, as Linux's is updated without a lock.
    f_ra: SpinLock<FileRaState>,
    /// The page cache's write-back errors this file has seen (Linux
    /// `f_wb_err`), sampled at open.
    pub f_wb_err: SpinLock<ErrSeqSample>,
    /// The directory and the name the file was opened by, when the last
    /// component named it directly (no symbolic link): what Linux's
    /// `f_path.dentry` gives `d_path` for a file that is not a directory
    /// ([`OpenFile::d_path`]).
    f_name: Option<(Path, Vec<u8>)>,
}

/// Where a process's console output also goes (tests capture it).
pub type Capture = Arc<Mutex<Vec<u8>>>;

impl OpenFile {
    /// A new open file.
    pub fn new(kind: FileKind, flags: u32) -> Arc<OpenFile> {
        Self::new_named(kind, flags, None)
    }

    /// A new open file opened as `name` in directory `dir` (see
    /// [`OpenFile::d_path`]).
    pub fn new_named(kind: FileKind, flags: u32, f_name: Option<(Path, Vec<u8>)>) -> Arc<OpenFile> {
        let wb_err = match &kind {
            FileKind::Inode(p) => p.inode.i_mapping.as_ref().map(|m| m.sample_wb_err()).unwrap_or_default(),
            _ => ErrSeqSample::default(),
        };
        Arc::new(OpenFile {
            kind,
            pos: SpinLock::new(0),
            f_pos_lock: Mutex::new(()),
            flags: AtomicU32::new(flags),
            f_ra: SpinLock::new(FileRaState::default()),
            f_wb_err: SpinLock::new(wb_err),
            f_name,
        })
    }

    /// The file's path from the root (Linux `d_path(&file->f_path)`, what
    /// `/proc/PID/maps` shows): a directory's is found by walking up; any
    /// other file's is its directory's path and the name it was opened
    /// by, with " (deleted)" once that name no longer leads to it (Linux
    /// follows renames through the dentry; this does not, and a VMA keeps
    /// the name its mmap saw). `None` for a file that is not an inode's,
    /// or whose directory is gone.
    pub fn d_path(&self) -> Option<String> {
        let path = self.path()?;
        let Some((dir, name)) = &self.f_name else { return super::namei::d_path(path).ok() };
        let dir_path = super::namei::d_path(dir).ok()?;
        let sep = if dir_path.ends_with('/') { "" } else { "/" };
        let name = String::from_utf8_lossy(name);
        let current = super::namei::lookup_one(dir, name.as_bytes()).is_ok_and(|p| Path::same(&p, path));
        let deleted = if current { "" } else { " (deleted)" };
        Some(alloc::format!("{dir_path}{sep}{name}{deleted}"))
    }

    /// The `O_*` flags now (Linux `f_flags`).
    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// Linux `F_SETFL`: only `O_APPEND` and `O_NONBLOCK` change.
    pub fn set_status_flags(&self, flags: u32) {
        const SETFL_MASK: u32 = uapi::fcntl::O_APPEND | uapi::fcntl::O_NONBLOCK;
        let old = self.flags();
        self.flags.store((old & !SETFL_MASK) | (flags & SETFL_MASK), Ordering::Relaxed);
    }

    fn nonblock(&self) -> bool {
        self.flags() & uapi::fcntl::O_NONBLOCK != 0
    }

    /// Whether the file was opened for reading (Linux `FMODE_READ`).
    pub fn readable(&self) -> bool {
        let f = self.flags();
        f & uapi::fcntl::O_PATH == 0 && f & uapi::fcntl::O_ACCMODE != uapi::fcntl::O_WRONLY
    }

    /// Whether the file was opened for writing (Linux `FMODE_WRITE`).
    pub fn writable(&self) -> bool {
        let f = self.flags();
        f & uapi::fcntl::O_PATH == 0
            && matches!(f & uapi::fcntl::O_ACCMODE, uapi::fcntl::O_WRONLY | uapi::fcntl::O_RDWR)
    }

    /// The place an inode file or device node is at, if it is one.
    pub fn path(&self) -> Option<&Path> {
        match &self.kind {
            FileKind::Inode(p) | FileKind::Mem { path: p, .. } => Some(p),
            _ => None,
        }
    }

    /// Reads at the file offset (Linux `vfs_read`).
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        let data: &[u8] = match &self.kind {
            FileKind::Console => return Ok(0),
            FileKind::Inode(p) => {
                let _pos_guard = self.f_pos_lock.lock();
                let pos = *self.pos.lock();
                let n = self.pread(p, buf, pos)?;
                *self.pos.lock() = pos + n as u64;
                return Ok(n);
            }
            FileKind::Text(t) | FileKind::Sysctl { text: t, .. } => t,
            FileKind::Pipe(p) => return p.read(buf, self.nonblock()),
            FileKind::Mem { dev, .. } => return Ok(dev.read(buf)),
        };
        let mut pos = self.pos.lock();
        let start = usize::try_from(*pos).unwrap_or(usize::MAX).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        *pos += n as u64;
        Ok(n)
    }

    fn pread(&self, p: &Path, buf: &mut [u8], pos: u64) -> Result<usize, Errno> {
        if p.inode.getattr()?.is_dir() {
            return Err(Errno::EISDIR);
        }
        let mut ra = *self.f_ra.lock();
        let n = super::read_write::generic_file_read(&p.inode, &mut ra, pos, buf);
        *self.f_ra.lock() = ra;
        n
    }

    /// Runs `f` on the file's readahead state (Linux `file->f_ra`), for
    /// fadvise and readahead(2), under a spin lock: `f` must not sleep.
    pub fn with_ra<R>(&self, f: impl FnOnce(&mut FileRaState) -> R) -> R {
        f(&mut self.f_ra.lock())
    }

    /// Makes the file durable and reports a write-back error this file
    /// has not seen yet (Linux `vfs_fsync`): EINVAL for what cannot be
    /// synced.
    pub fn fsync(&self) -> Result<(), Errno> {
        let FileKind::Inode(p) = &self.kind else { return Err(Errno::EINVAL) };
        let mut since = *self.f_wb_err.lock();
        let result = super::read_write::vfs_fsync(&p.inode, &mut since);
        *self.f_wb_err.lock() = since;
        result
    }

    /// Reads at `pos` without moving the offset (Linux `pread64`):
    /// ESPIPE for pipes and the console.
    pub fn read_at(&self, buf: &mut [u8], pos: u64) -> Result<usize, Errno> {
        if !self.readable() {
            return Err(Errno::EBADF);
        }
        match &self.kind {
            FileKind::Inode(p) => self.pread(p, buf, pos),
            FileKind::Text(t) | FileKind::Sysctl { text: t, .. } => {
                let start = usize::try_from(pos).unwrap_or(usize::MAX).min(t.len());
                let n = buf.len().min(t.len() - start);
                buf[..n].copy_from_slice(&t[start..start + n]);
                Ok(n)
            }
            FileKind::Mem { dev, .. } => Ok(dev.read(buf)),
            FileKind::Console | FileKind::Pipe(_) => Err(Errno::ESPIPE),
        }
    }

    /// Writes at `pos` without moving the offset (Linux `pwrite64`; with
    /// `O_APPEND` the data still goes to the end, as Linux does).
    pub fn write_at(&self, buf: &[u8], pos: u64) -> Result<usize, Errno> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        match &self.kind {
            FileKind::Inode(p) => {
                let append = self.flags() & uapi::fcntl::O_APPEND != 0;
                super::read_write::file_write_iter(&p.inode, pos, buf, append).map(|(n, _)| n)
            }
            FileKind::Mem { dev, .. } => dev.write(buf.len()),
            FileKind::Console | FileKind::Pipe(_) => Err(Errno::ESPIPE),
            FileKind::Text(_) => Err(Errno::EINVAL),
            FileKind::Sysctl { store, .. } => sysctl_write(*store, buf),
        }
    }

    /// Gives back the tail of a read that could not be delivered: a pipe
    /// takes the bytes back, a file moves its offset back.
    pub fn unread(&self, bytes: &[u8]) {
        match &self.kind {
            FileKind::Pipe(p) => p.unread(bytes),
            FileKind::Inode(_) | FileKind::Text(_) | FileKind::Sysctl { .. } => {
                let mut pos = self.pos.lock();
                *pos = pos.saturating_sub(bytes.len() as u64);
            }
            FileKind::Console | FileKind::Mem { .. } => {}
        }
    }

    /// Writes (Linux `vfs_write`) at the offset, or at the end with
    /// `O_APPEND`.
    pub fn write(&self, buf: &[u8], capture: Option<&Capture>) -> Result<usize, Errno> {
        if !self.writable() {
            return Err(Errno::EBADF);
        }
        match self.kind {
            FileKind::Inode(ref p) => {
                let _pos_guard = self.f_pos_lock.lock();
                let pos = *self.pos.lock();
                let append = self.flags() & uapi::fcntl::O_APPEND != 0;
                let (n, end) = super::read_write::file_write_iter(&p.inode, pos, buf, append)?;
                *self.pos.lock() = end;
                Ok(n)
            }
            FileKind::Console => {
                if let Some(c) = capture {
                    // The copy grows with the program's output: without
                    // memory for it, the bytes still reach the console.
                    let mut c = c.lock();
                    if c.try_reserve(buf.len()).is_ok() {
                        c.extend_from_slice(buf);
                    }
                }
                crate::printk::write_raw(buf);
                Ok(buf.len())
            }
            FileKind::Pipe(ref p) => p.write(buf, self.nonblock()),
            FileKind::Mem { dev, .. } => dev.write(buf.len()),
            FileKind::Text(_) => Err(Errno::EBADF),
            FileKind::Sysctl { store, .. } => sysctl_write(store, buf),
        }
    }

    /// The file's size, for lseek.
    pub fn size(&self) -> Result<u64, Errno> {
        Ok(match &self.kind {
            FileKind::Console | FileKind::Pipe(_) | FileKind::Mem { .. } => 0,
            FileKind::Inode(p) => p.inode.getattr()?.size,
            FileKind::Text(t) | FileKind::Sysctl { text: t, .. } => t.len() as u64,
        })
    }
}

/// Sets a debugfs or sysfs file from the bytes of one write: the whole
/// buffer is taken.
fn sysctl_write(store: SysctlStore, buf: &[u8]) -> Result<usize, Errno> {
    store(core::str::from_utf8(buf).map_err(|_| Errno::EINVAL)?)?;
    Ok(buf.len())
}

/// A descriptor table (Linux `struct fdtable`): descriptor -> open file,
/// close-on-exec bit.
///
/// Every allocation is bounded by the caller's `RLIMIT_NOFILE` soft limit,
/// `nofile` (Linux `alloc_fd`'s `end`, `ksys_dup3`'s check): the table
/// itself has no other bound, since setrlimit keeps that limit at most
/// `sysctl_nr_open`. Descriptors already at or above a lowered limit stay
/// usable, as in Linux. Growing the table can fail with ENOMEM (Linux
/// `expand_files`); where Linux's `kvmalloc` would fall back to vmalloc
/// for a very large table, ours is one kmalloc'd array.
#[derive(Clone, Default)]
pub struct FdTable {
    fds: Vec<Option<(Arc<OpenFile>, bool)>>,
}

impl FdTable {
    /// Descriptors 0, 1 and 2 on the console.
    pub fn with_console() -> FdTable {
        let console = OpenFile::new(FileKind::Console, uapi::fcntl::O_RDWR);
        FdTable {
            fds: alloc::vec![Some((console.clone(), false)), Some((console.clone(), false)), Some((console, false))],
        }
    }

    /// The file behind `fd` (Linux `fget`).
    pub fn get(&self, fd: i32) -> Result<Arc<OpenFile>, Errno> {
        self.slot(fd).map(|(f, _)| f.clone())
    }

    /// The lowest free descriptor at or above `start`, below `nofile`
    /// (Linux `alloc_fd` without the install): EMFILE if there is none.
    pub fn get_unused_fd(&self, start: usize, nofile: usize) -> Result<usize, Errno> {
        let fd = (start..self.fds.len()).find(|&i| self.fds[i].is_none()).unwrap_or(self.fds.len().max(start));
        if fd < nofile { Ok(fd) } else { Err(Errno::EMFILE) }
    }

    /// Puts `file` at `fd`, growing the table (Linux `expand_files` +
    /// `fd_install`); ENOMEM if the table cannot grow.
    /// Puts `file` at `fd`; returns the descriptor and the file it
    /// replaced, for the caller to drop after the table's lock.
    fn install_at(
        &mut self,
        fd: usize,
        file: Arc<OpenFile>,
        cloexec: bool,
    ) -> Result<(i32, Option<Arc<OpenFile>>), Errno> {
        let as_fd = i32::try_from(fd).map_err(|_| Errno::EMFILE)?;
        if self.fds.len() <= fd {
            self.fds.try_reserve(fd + 1 - self.fds.len()).map_err(|_| Errno::ENOMEM)?;
            self.fds.resize(fd + 1, None);
        }
        let old = self.fds[fd].replace((file, cloexec));
        Ok((as_fd, old.map(|(f, _)| f)))
    }

    /// Installs `file` at the lowest free descriptor below `nofile`
    /// (Linux `get_unused_fd_flags` + `fd_install`); EMFILE if none is.
    pub fn install(&mut self, file: Arc<OpenFile>, cloexec: bool, nofile: usize) -> Result<i32, Errno> {
        let fd = self.get_unused_fd(0, nofile)?;
        self.install_at(fd, file, cloexec).map(|(fd, _unused_slot)| fd)
    }

    /// Whether `fd` is closed on exec (Linux `F_GETFD`'s `FD_CLOEXEC`).
    pub fn cloexec(&self, fd: i32) -> Result<bool, Errno> {
        self.slot(fd).map(|(_, c)| *c)
    }

    /// Sets or clears `fd`'s close-on-exec bit (Linux `F_SETFD`).
    pub fn set_cloexec(&mut self, fd: i32, cloexec: bool) -> Result<(), Errno> {
        let slot = usize::try_from(fd).ok().and_then(|i| self.fds.get_mut(i)).and_then(|s| s.as_mut());
        slot.map(|(_, c)| *c = cloexec).ok_or(Errno::EBADF)
    }

    fn slot(&self, fd: i32) -> Result<&(Arc<OpenFile>, bool), Errno> {
        usize::try_from(fd).ok().and_then(|i| self.fds.get(i)).and_then(|s| s.as_ref()).ok_or(Errno::EBADF)
    }

    /// Closes `fd` (Linux `close_fd`) and hands back its file, for the
    /// caller to drop once the table's lock is released (Linux's
    /// `filp_close` after `file_lock`): the last close may sleep.
    #[must_use = "drop the file after releasing the table's lock"]
    pub fn close(&mut self, fd: i32) -> Result<Arc<OpenFile>, Errno> {
        let slot = usize::try_from(fd).ok().and_then(|i| self.fds.get_mut(i)).ok_or(Errno::EBADF)?;
        slot.take().map(|(f, _)| f).ok_or(Errno::EBADF)
    }

    /// Closes the close-on-exec descriptors (Linux `do_close_on_exec`).
    pub fn close_on_exec(&mut self) {
        for slot in &mut self.fds {
            if slot.as_ref().is_some_and(|(_, cloexec)| *cloexec) {
                *slot = None;
            }
        }
    }

    /// Duplicates `fd` onto the lowest free descriptor at or above `min`
    /// (Linux `F_DUPFD`'s `f_dupfd`): EBADF for a bad `fd`, EINVAL if
    /// `min` is at or above `nofile`, EMFILE if no descriptor below it is
    /// free.
    pub fn dup_from(&mut self, fd: i32, min: u32, cloexec: bool, nofile: usize) -> Result<i32, Errno> {
        let file = self.get(fd)?;
        let min = usize::try_from(min).unwrap_or(usize::MAX);
        if min >= nofile {
            return Err(Errno::EINVAL);
        }
        let slot = self.get_unused_fd(min, nofile)?;
        self.install_at(slot, file, cloexec).map(|(fd, _unused_slot)| fd)
    }

    /// Makes `new` refer to `old`'s file, closing what `new` had (Linux
    /// `do_dup2`; the caller handles `old == new`): EBADF if `new` is not
    /// below `nofile` (checked first, as `ksys_dup3` does) or `old` is not
    /// open. Hands back the file `new` had, for the caller to drop after
    /// the table's lock.
    pub fn dup_to(
        &mut self,
        old: i32,
        new: i32,
        cloexec: bool,
        nofile: usize,
    ) -> Result<(i32, Option<Arc<OpenFile>>), Errno> {
        let slot = usize::try_from(new).ok().filter(|&i| i < nofile).ok_or(Errno::EBADF)?;
        let file = self.get(old)?;
        self.install_at(slot, file, cloexec)
    }
}
