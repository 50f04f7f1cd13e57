//! Byte-addressed access to a disk through the block layer (Linux
//! `block/fops.c` for a block device file, reduced to what a file system
//! needs: `sb_bread`/`submit_bh` in bytes).
//!
//! Each transfer goes through the handle's own buffer ([`BounceBuf`]) in
//! sector-aligned bios of up to 64 KiB, waited for with
//! [`submit_bio_wait`](super::submit_bio_wait); a write that covers part of
//! a sector reads it first. This is the path for ext2 before the page
//! cache takes its place between file system and block layer.

#![forbid(unsafe_code)]

use alloc::sync::Arc;

use uapi::errno::Errno;

use super::bounce::BounceBuf;
use super::genhd::Gendisk;
use super::{BlkError, ReqOp, SECTOR_SIZE};
use crate::sync::Mutex;

/// Pages in a handle's transfer buffer, as an order (64 KiB).
const BOUNCE_ORDER: u32 = 4;

/// An open disk (Linux `struct block_device` as `bdev_file_open_by_path`
/// gives it).
pub struct BlockDevice {
    disk: Arc<Gendisk>,
    buf: BounceBuf,
}

impl BlockDevice {
    /// Opens `disk`. Allocates the transfer buffer; may sleep.
    pub fn open(disk: &Arc<Gendisk>) -> Result<BlockDevice, BlkError> {
        Ok(BlockDevice { disk: disk.clone(), buf: BounceBuf::new(BOUNCE_ORDER)? })
    }

    /// The disk.
    pub fn disk(&self) -> &Arc<Gendisk> {
        &self.disk
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.disk.capacity() * SECTOR_SIZE
    }

    fn check(&self, offset: u64, len: usize) -> Result<(), BlkError> {
        match offset.checked_add(len as u64) {
            Some(end) if end <= self.size() => Ok(()),
            _ => Err(BlkError::BeyondEnd),
        }
    }

    /// Reads `buf.len()` bytes at byte `offset`. Sleeps.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), BlkError> {
        self.check(offset, buf.len())?;
        let mut done = 0;
        while done < buf.len() {
            let pos = offset + done as u64;
            let inner = (pos % SECTOR_SIZE) as usize;
            let want = (buf.len() - done).min(self.buf.len() - inner);
            let span = (inner + want).next_multiple_of(SECTOR_SIZE as usize);
            self.buf.transfer(&self.disk, ReqOp::Read, pos / SECTOR_SIZE, span)?;
            buf[done..done + want].copy_from_slice(&self.buf.as_slice()[inner..inner + want]);
            done += want;
        }
        Ok(())
    }

    /// Writes `buf` at byte `offset`. Sleeps.
    pub fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), BlkError> {
        self.check(offset, buf.len())?;
        let mut done = 0;
        while done < buf.len() {
            let pos = offset + done as u64;
            let sector = pos / SECTOR_SIZE;
            let inner = (pos % SECTOR_SIZE) as usize;
            let want = (buf.len() - done).min(self.buf.len() - inner);
            let span = (inner + want).next_multiple_of(SECTOR_SIZE as usize);
            if inner != 0 || span != inner + want {
                // Part of a sector: keep the rest of it (read-modify-write).
                self.buf.transfer(&self.disk, ReqOp::Read, sector, span)?;
            }
            self.buf.as_mut_slice()[inner..inner + want].copy_from_slice(&buf[done..done + want]);
            self.buf.transfer(&self.disk, ReqOp::Write, sector, span)?;
            done += want;
        }
        Ok(())
    }

    /// Flushes the disk's write cache. Sleeps.
    pub fn flush(&mut self) -> Result<(), BlkError> {
        super::submit_bio_wait(super::Bio::new(&self.disk, ReqOp::Flush, 0))
    }
}

fn io_error(e: BlkError, kind: ext2::IoErrorKind, offset: u64) -> ext2::IoError {
    let kind = if e == BlkError::BeyondEnd { ext2::IoErrorKind::OutOfRange } else { kind };
    ext2::IoError { kind, offset }
}

impl ext2::BlockDevice for BlockDevice {
    fn size(&self) -> u64 {
        BlockDevice::size(self)
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ext2::IoError> {
        BlockDevice::read_at(self, offset, buf).map_err(|e| io_error(e, ext2::IoErrorKind::Read, offset))
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), ext2::IoError> {
        BlockDevice::write_at(self, offset, buf).map_err(|e| io_error(e, ext2::IoErrorKind::Write, offset))
    }

    fn flush(&mut self) -> Result<(), ext2::IoError> {
        BlockDevice::flush(self).map_err(|e| io_error(e, ext2::IoErrorKind::Flush, 0))
    }
}

/// A disk as the file systems find it by name ([`crate::fs::blkdev`], where
/// `mount /dev/vda` looks): its [`BlockDevice`] handle behind a sleeping
/// lock, one transfer at a time.
pub struct DiskFile {
    size: u64,
    disk: Arc<Gendisk>,
    bdev: Mutex<BlockDevice>,
}

impl DiskFile {
    /// Opens `disk` for the registry. May sleep.
    pub fn open(disk: &Arc<Gendisk>) -> Result<DiskFile, BlkError> {
        let bdev = BlockDevice::open(disk)?;
        Ok(DiskFile { size: bdev.size(), disk: disk.clone(), bdev: Mutex::new(bdev) })
    }
}

impl crate::fs::blkdev::BlockDevice for DiskFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.bdev.lock().read_at(offset, buf).map_err(BlkError::errno)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), Errno> {
        self.bdev.lock().write_at(offset, buf).map_err(BlkError::errno)
    }

    fn flush(&self) -> Result<(), Errno> {
        self.bdev.lock().flush().map_err(BlkError::errno)
    }

    fn gendisk(&self) -> Option<Arc<Gendisk>> {
        Some(self.disk.clone())
    }
}
