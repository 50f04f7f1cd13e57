//! Advice about a file's future reads (Linux `mm/fadvise.c`: the
//! `fadvise64` system call and `generic_fadvise`; `mm/readahead.c`'s
//! `readahead(2)`, `ksys_readahead`).
//!
//! - `POSIX_FADV_NORMAL`, `SEQUENTIAL`, `RANDOM` change the open file's
//!   readahead state ([`mm::readahead::fadvise`]: the window, doubled for
//!   sequential, and `FMODE_RANDOM`), so they last as long as the open
//!   file and are shared by every descriptor `dup` or `fork` made of it.
//! - `POSIX_FADV_WILLNEED` and `readahead(2)` read the range into the
//!   page cache in 2 MiB chunks ([`super::force_page_cache_readahead`]).
//! - `POSIX_FADV_DONTNEED` writes the range's dirty pages back without
//!   waiting for busy ones and drops the clean, unmapped pages wholly
//!   inside it ([`super::fadvise_dontneed`]).
//! - `POSIX_FADV_NOREUSE` is accepted and does nothing, as in Linux 6.1.
//!
//! Errors in Linux's order: `EBADF` for a descriptor that is not open (or
//! `O_PATH`), `ESPIPE` for a pipe, `EINVAL` for a negative length, then
//! `EINVAL` for unknown advice. A file without a page cache (a rootfs
//! file, the console, `/proc`) or whose cache is its only copy (a shmem
//! file: tmpfs, memfd) takes the advice and ignores it, as a file on
//! Linux's no-op backing device does. `readahead(2)` wants a file open
//! for reading (else `EBADF`) and regular (else `EINVAL`).
//!
//! `WILLNEED` starts the reads and returns, as Linux's does, on a disk
//! with an interrupt (see [`super::readahead`]).
//!
//! Differences from Linux: `WILLNEED` on a loop device or RAM disk reads
//! the pages before it returns; `DONTNEED`'s write-back is synchronous,
//! so the pages it wrote are
//! clean by the time the range is dropped, and go (Linux's are still under
//! writeback then and stay cached).

#![forbid(unsafe_code)]

use alloc::sync::Arc;

use mm::readahead::{self, FadviseAdvice, RaLimits};
use uapi::errno::Errno;
use uapi::fcntl::*;

use crate::fs::file::{FileKind, OpenFile};
use crate::fs::inode::Inode;

/// The largest file offset (Linux `LLONG_MAX`).
const LLONG_MAX: u64 = i64::MAX as u64;

/// A checked `fadvise64` advice (Linux `generic_fadvise`'s switch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Advice {
    /// A readahead mode for the open file.
    Mode(FadviseAdvice),
    WillNeed,
    DontNeed,
    NoReuse,
}

impl Advice {
    fn from_user(advice: i32) -> Result<Advice, Errno> {
        Ok(match advice {
            POSIX_FADV_NORMAL => Advice::Mode(FadviseAdvice::Normal),
            POSIX_FADV_RANDOM => Advice::Mode(FadviseAdvice::Random),
            POSIX_FADV_SEQUENTIAL => Advice::Mode(FadviseAdvice::Sequential),
            POSIX_FADV_WILLNEED => Advice::WillNeed,
            POSIX_FADV_DONTNEED => Advice::DontNeed,
            POSIX_FADV_NOREUSE => Advice::NoReuse,
            _ => return Err(Errno::EINVAL),
        })
    }
}

/// The open file behind `fd`, not `O_PATH` (Linux `fdget`, which skips
/// `FMODE_PATH` files).
fn fdget(fd: i32) -> Result<Arc<OpenFile>, Errno> {
    let file = crate::sched::current().proc.files.lock().get(fd)?;
    if file.flags() & O_PATH != 0 {
        return Err(Errno::EBADF);
    }
    Ok(file)
}

/// The inode whose page cache the advice is about, if the file has one
/// over a backing store (not shmem's, which has nothing to read ahead or
/// drop).
fn cached_inode(file: &OpenFile) -> Option<&Arc<Inode>> {
    match &file.kind {
        FileKind::Inode(p)
            if p.inode.i_mapping.as_ref().is_some_and(|m| !m.is_swapbacked()) && p.inode.ops.a_ops().is_some() =>
        {
            Some(&p.inode)
        }
        _ => None,
    }
}

/// Linux `fadvise64(fd, offset, len, advice)` (x86_64's, the 64-bit
/// `fadvise64_64`): `offset` and `len` are the bits of `loff_t`s.
pub fn sys_fadvise64(fd: i32, offset: u64, len: u64, advice: i32) -> Result<u64, Errno> {
    let file = fdget(fd)?;
    vfs_fadvise(&file, offset, len, advice).map(|()| 0)
}

/// Linux `vfs_fadvise` -> `generic_fadvise`.
fn vfs_fadvise(file: &OpenFile, offset: u64, len: u64, advice: i32) -> Result<(), Errno> {
    if matches!(file.kind, FileKind::Pipe(_)) {
        return Err(Errno::ESPIPE);
    }
    if len > LLONG_MAX {
        return Err(Errno::EINVAL);
    }
    let advice = Advice::from_user(advice)?;
    let Some(inode) = cached_inode(file) else {
        // Linux's no-op backing device: valid advice, ignored.
        return Ok(());
    };
    // Linux: a length of 0, or a range past the largest offset, runs to it.
    let endbyte = match offset.checked_add(len) {
        Some(end) if len != 0 && end <= LLONG_MAX => end - 1,
        _ => LLONG_MAX,
    };
    match advice {
        Advice::Mode(mode) => file.with_ra(|ra| readahead::fadvise(ra, RaLimits::default(), mode)),
        Advice::WillNeed => {
            let ra = file.with_ra(|ra| *ra);
            super::force_page_cache_readahead(inode, &ra, offset, len);
        }
        Advice::DontNeed => super::fadvise_dontneed(inode, offset, endbyte),
        Advice::NoReuse => {}
    }
    Ok(())
}

/// Linux `readahead(fd, offset, count)`: `POSIX_FADV_WILLNEED` for a
/// regular file with a page cache open for reading.
pub fn sys_readahead(fd: i32, offset: u64, count: u64) -> Result<u64, Errno> {
    let file = fdget(fd)?;
    if !file.readable() {
        return Err(Errno::EBADF);
    }
    // `/proc` files are regular files in Linux.
    let regular = match &file.kind {
        FileKind::Inode(p) => p.inode.getattr()?.is_reg(),
        FileKind::Text(_) | FileKind::Sysctl { .. } => true,
        FileKind::Console | FileKind::Pipe(_) | FileKind::Mem { .. } => false,
    };
    if !regular {
        return Err(Errno::EINVAL);
    }
    vfs_fadvise(&file, offset, count, POSIX_FADV_WILLNEED).map(|()| 0)
}
