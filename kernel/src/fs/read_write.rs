//! The file data path (Linux `mm/filemap.c`'s `filemap_read` and
//! `generic_perform_write`, `fs/read_write.c`'s `vfs_read`/`vfs_write`).
//!
//! Every byte a system call, exec or the loop device reads from or
//! writes to a file goes through [`generic_file_read`] and
//! [`generic_perform_write`]. Today they call the file system's
//! [`FileOperations::read_at`](super::inode::FileOperations::read_at) and
//! `write_at`; the page cache will sit here, between the VFS and the file
//! system (looking up folios by index, calling the file system's
//! `read_folio`/`writepages` over `get_block`), without any caller
//! changing.
//!
//! `O_APPEND` writes take the inode's `i_rwsem` across reading the size
//! and writing (Linux `generic_file_write_iter` under `inode_lock`), so
//! two appenders never write at the same offset; every write to a file
//! takes it, as Linux's do.

#![forbid(unsafe_code)]

use uapi::errno::Errno;

use super::inode::Inode;

/// Reads file data at `pos` (Linux `filemap_read`).
pub fn generic_file_read(inode: &Inode, pos: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    inode.ops.read_at(pos, buf)
}

/// Writes file data at `pos`; the caller holds `inode.i_rwsem` (Linux
/// `generic_perform_write`).
pub fn generic_perform_write(inode: &Inode, pos: u64, buf: &[u8]) -> Result<usize, Errno> {
    inode.ops.write_at(pos, buf)
}

/// Writes `buf` at `pos`, or at the end of the file if `append`, under
/// the inode lock; returns the bytes written and the position after them
/// (Linux `generic_file_write_iter`).
pub fn file_write_iter(inode: &Inode, pos: u64, buf: &[u8], append: bool) -> Result<(usize, u64), Errno> {
    let _guard = inode.i_rwsem.lock();
    let pos = if append { inode.getattr()?.size } else { pos };
    let n = generic_perform_write(inode, pos, buf)?;
    Ok((n, pos + n as u64))
}

/// Sets the file's size (Linux `do_truncate`), under the inode lock.
pub fn do_truncate(inode: &Inode, size: u64) -> Result<(), Errno> {
    let _guard = inode.i_rwsem.lock();
    inode.ops.setattr(&super::inode::SetAttr { size: Some(size), ..Default::default() })
}
