//! Loop devices (Linux `drivers/block/loop.c` in miniature): a block
//! device whose sectors are a file's bytes, so a file system image kept
//! in a file can be mounted (`losetup /dev/loop0 FILE; mount /dev/loop0
//! DIR`).
//!
//! Requests go through the file's data path ([`super::read_write`]), as
//! Linux's loop driver calls the backing file's `read_iter`/`write_iter`;
//! a flush syncs the backing file. The device holds the file's
//! [`Path`], so the mount holding the image is busy while the device
//! exists.
//!
//! Differences from Linux: devices are made by [`loop_attach`] (the
//! console's `losetup`), not through `/dev/loop-control` and
//! `LOOP_CONFIGURE`; they are never detached; the size is the file's at
//! attach time.

#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::sync::Arc;

use mm::errseq::ErrSeqSample;
use uapi::errno::Errno;

use super::blkdev::{self, BlockDevice};
use super::namespace::Path;
use super::read_write::{file_write_iter, kernel_read, vfs_fsync};
use crate::sync::SpinLock;

/// A loop device over a file.
pub struct LoopDevice {
    backing: Path,
    size: u64,
    read_only: bool,
    /// The backing file's write-back errors seen by flushes (Linux's
    /// loop device holds an open file and its `f_wb_err`).
    wb_err: SpinLock<ErrSeqSample>,
}

impl BlockDevice for LoopDevice {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        if offset.checked_add(buf.len() as u64).is_none_or(|end| end > self.size) {
            return Err(Errno::EIO);
        }
        let mut done = 0;
        while done < buf.len() {
            let n = kernel_read(&self.backing.inode, offset + done as u64, &mut buf[done..])?;
            if n == 0 {
                // A file shrunk under the device reads as zeros, as a hole.
                buf[done..].fill(0);
                break;
            }
            done += n;
        }
        Ok(())
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), Errno> {
        if self.read_only {
            return Err(Errno::EROFS);
        }
        if offset.checked_add(buf.len() as u64).is_none_or(|end| end > self.size) {
            return Err(Errno::EIO);
        }
        let mut done = 0;
        while done < buf.len() {
            let (n, _) = file_write_iter(&self.backing.inode, offset + done as u64, &buf[done..], false)?;
            if n == 0 {
                return Err(Errno::EIO);
            }
            done += n;
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), Errno> {
        let mut since = *self.wb_err.lock();
        let result = vfs_fsync(&self.backing.inode, &mut since);
        *self.wb_err.lock() = since;
        result
    }
}

/// Makes a loop device over the regular file at `backing` and registers
/// it as the first free `loopN`; returns the name.
pub fn loop_attach(backing: Path) -> Result<String, Errno> {
    let attr = backing.inode.getattr()?;
    if !attr.is_reg() {
        return Err(Errno::EINVAL);
    }
    let read_only = backing.mnt.read_only;
    let size = attr.size & !511;
    let name = blkdev::free_name("loop");
    let wb_err = SpinLock::new(backing.inode.i_mapping.as_ref().map(|m| m.sample_wb_err()).unwrap_or_default());
    blkdev::register(&name, Arc::new(LoopDevice { backing, size, read_only, wb_err }))?;
    log::info!("loop: {name} attached ({size} bytes)");
    Ok(name)
}
