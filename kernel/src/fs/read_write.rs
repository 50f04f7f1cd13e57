//! The file data path (Linux `fs/read_write.c`'s `vfs_read`/`vfs_write`,
//! `mm/filemap.c`'s `generic_file_write_iter`, `fs/open.c`'s
//! `do_truncate`, `fs/sync.c`'s `vfs_fsync_range`).
//!
//! Every byte a system call, exec or the loop device reads from or
//! writes to a file goes through [`generic_file_read`] and
//! [`generic_perform_write`]. A regular file with a page cache
//! ([`Inode::i_mapping`]) is served by [`crate::filemap`] (a shmem file's
//! reads by [`crate::shmem`], which reads holes without filling them);
//! other files by the file system's
//! [`FileOperations::read_at`](super::inode::FileOperations::read_at) and
//! `write_at`.
//!
//! `O_APPEND` writes take the inode's `i_rwsem` across reading the size
//! and writing (Linux `generic_file_write_iter` under `inode_lock`), so
//! two appenders never write at the same offset; every write to a file
//! takes it, as Linux's do.

#![forbid(unsafe_code)]

use alloc::sync::Arc;

use mm::errseq::ErrSeqSample;
use mm::readahead::FileRaState;
use uapi::errno::Errno;

use super::inode::Inode;

/// Reads file data at `pos` (Linux `filemap_read` for a cached file),
/// with the reader's readahead state.
pub fn generic_file_read(inode: &Inode, ra: &mut FileRaState, pos: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    match inode.i_mapping.as_ref() {
        Some(mapping) if mapping.is_swapbacked() => crate::shmem::shmem_file_read(mapping, pos, buf),
        Some(_) => crate::filemap::filemap_read(inode, ra, pos, buf),
        None => inode.ops.read_at(pos, buf),
    }
}

/// Reads file data at `pos` for a kernel reader without an open file
/// (exec, the loop device): a fresh readahead state.
pub fn kernel_read(inode: &Inode, pos: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    generic_file_read(inode, &mut FileRaState::default(), pos, buf)
}

/// Writes file data at `pos`; the caller holds `inode.i_rwsem` (Linux
/// `generic_perform_write`).
pub fn generic_perform_write(inode: &Arc<Inode>, pos: u64, buf: &[u8]) -> Result<usize, Errno> {
    if inode.i_mapping.is_some() {
        let n = crate::filemap::generic_perform_write(inode, pos, buf)?;
        super::fs_writeback::balance_dirty_pages(inode);
        Ok(n)
    } else {
        inode.ops.write_at(pos, buf)
    }
}

/// Writes `buf` at `pos`, or at the end of the file if `append`, under
/// the inode lock; returns the bytes written and the position after them
/// (Linux `generic_file_write_iter`).
pub fn file_write_iter(inode: &Arc<Inode>, pos: u64, buf: &[u8], append: bool) -> Result<(usize, u64), Errno> {
    let _guard = inode.i_rwsem.lock();
    let pos = match (append, inode.i_mapping.as_ref()) {
        (false, _) => pos,
        (true, Some(mapping)) => mapping.i_size(),
        (true, None) => inode.getattr()?.size,
    };
    let n = generic_perform_write(inode, pos, buf)?;
    Ok((n, pos + n as u64))
}

/// Sets the file's size (Linux `do_truncate`), under the inode lock: a
/// cached file loses its pages past the new end first (Linux
/// `truncate_setsize`), then the file system frees the blocks. A shmem
/// file's cache is the file: the file system checks the change (seals)
/// and sets the size first, then the pages past it go (Linux
/// `shmem_setattr`).
pub fn do_truncate(inode: &Inode, size: u64) -> Result<(), Errno> {
    let _guard = inode.i_rwsem.lock();
    let attr = super::inode::SetAttr { size: Some(size), ..Default::default() };
    let Some(mapping) = inode.i_mapping.as_ref() else {
        return inode.ops.setattr(&attr);
    };
    let old = mapping.i_size();
    if mapping.is_swapbacked() {
        inode.ops.setattr(&attr)?;
        return if size < old { crate::filemap::truncate_pagecache(inode, size) } else { Ok(()) };
    }
    if size < old {
        mapping.set_i_size(size);
        crate::filemap::truncate_pagecache(inode, size)?;
    }
    let result = inode.ops.setattr(&attr);
    match result {
        Ok(()) => mapping.set_i_size(size),
        // The pages past the end are gone either way; the size is what
        // the file system kept.
        Err(_) => mapping.set_i_size(inode.getattr().map_or(old.min(size), |st| st.size)),
    }
    result
}

/// Makes the file's data and metadata durable (Linux `vfs_fsync`): its
/// dirty pages are written and waited for, then the file system syncs;
/// a write-back error since `since` (the open file's sample) is reported
/// once, even if it happened in the background. A shmem file has nothing
/// to make durable: it succeeds (Linux `noop_fsync`).
pub fn vfs_fsync(inode: &Inode, since: &mut ErrSeqSample) -> Result<(), Errno> {
    let Some(mapping) = inode.i_mapping.as_ref() else { return inode.ops.fsync() };
    let written = crate::filemap::write_and_wait(inode);
    let synced = inode.ops.fsync();
    let reported = mapping.check_and_advance_wb_err(since);
    reported.and(written.map_err(|_| Errno::EIO)).and(synced)
}
