//! Block devices by name (Linux `block/genhd.c`'s disk registry and
//! `register_blkdev`, `fs/block_dev.c`'s lookup by path), and a RAM disk
//! (Linux `drivers/block/brd.c`) made from bytes.
//!
//! A driver registers each disk it finds under its Linux name (`vda`,
//! `loop0`, `ram0`); `mount(2)` finds the device for a source path
//! `/dev/NAME` here. The [`BlockDevice`] trait is the byte-addressed
//! boundary file systems reach disks through; [`BdevHandle`] adapts it to
//! the `ext2` crate's.
//!
//! Differences from Linux: `/dev` has no device nodes for these disks;
//! `/dev/NAME` names the registered disk directly (Linux resolves the
//! path to a block-special inode and its `dev_t`). Device numbers are
//! Linux's `BLOCK_EXT_MAJOR` (259) with minors in registration order.
//!
//! Locking: the registry is one leaf spin lock; a RAM disk's bytes are a
//! sleeping mutex (a request copies up to a block under it).

#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use uapi::errno::Errno;

use crate::block::Gendisk;
use crate::sync::{Mutex, SpinLock};

/// A disk: byte-addressed requests of whole 512-byte sectors (Linux
/// `struct block_device` as `submit_bio` reaches it).
pub trait BlockDevice: Send + Sync {
    /// Size in bytes.
    fn size(&self) -> u64;
    /// Reads `buf.len()` bytes at `offset`: EIO on a device error or a
    /// request past the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Writes `buf` at `offset`.
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), Errno>;
    /// Makes earlier writes durable (Linux `REQ_PREFLUSH`).
    fn flush(&self) -> Result<(), Errno>;
    /// The block layer's disk behind it, for bios straight into memory
    /// (Linux `bdev->bd_disk`); `None` for a device that copies bytes (a
    /// loop device, a RAM disk), which only the byte calls above reach.
    fn gendisk(&self) -> Option<Arc<Gendisk>> {
        None
    }
}

/// Linux `BLOCK_EXT_MAJOR`: the major of dynamically numbered disks.
pub const BLOCK_EXT_MAJOR: u64 = 259;

struct Disk {
    name: String,
    devt: u64,
    dev: Arc<dyn BlockDevice>,
}

static DISKS: SpinLock<Vec<Disk>> = SpinLock::new(Vec::new());

/// Registers `dev` as `name` (Linux `add_disk`); EEXIST if the name is
/// taken. Returns its device number.
pub fn register(name: &str, dev: Arc<dyn BlockDevice>) -> Result<u64, Errno> {
    let mut disks = DISKS.lock();
    if disks.iter().any(|d| d.name == name) {
        return Err(Errno::EEXIST);
    }
    let devt = (BLOCK_EXT_MAJOR << 8) | disks.len() as u64;
    disks.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
    disks.push(Disk { name: String::from(name), devt, dev });
    Ok(devt)
}

/// The disk registered as `name`, with its device number.
pub fn lookup(name: &str) -> Option<(Arc<dyn BlockDevice>, u64)> {
    DISKS.lock().iter().find(|d| d.name == name).map(|d| (d.dev.clone(), d.devt))
}

/// The disk a mount source names: `/dev/NAME` or `NAME` (ENOENT if no
/// disk has that name).
pub fn lookup_path(source: &str) -> Result<(Arc<dyn BlockDevice>, u64), Errno> {
    let name = source.strip_prefix("/dev/").unwrap_or(source);
    lookup(name).ok_or(Errno::ENOENT)
}

/// The names of the registered disks, in registration order.
pub fn names() -> Vec<String> {
    DISKS.lock().iter().map(|d| d.name.clone()).collect()
}

/// The first free name `prefix0`, `prefix1`, ...
pub fn free_name(prefix: &str) -> String {
    let disks = DISKS.lock();
    (0..).map(|i| alloc::format!("{prefix}{i}")).find(|n| !disks.iter().any(|d| &d.name == n)).unwrap_or_default()
}

/// A disk in memory (Linux brd, filled from bytes instead of zeros).
pub struct RamDisk {
    data: Mutex<Vec<u8>>,
}

impl RamDisk {
    /// A RAM disk holding `data` (rounded down to whole sectors).
    pub fn new(mut data: Vec<u8>) -> Arc<RamDisk> {
        data.truncate(data.len() & !511);
        Arc::new(RamDisk { data: Mutex::new(data) })
    }

    /// A copy of the disk's bytes.
    pub fn contents(&self) -> Vec<u8> {
        self.data.lock().clone()
    }
}

fn span(len: usize, offset: u64, n: usize) -> Result<core::ops::Range<usize>, Errno> {
    let start = usize::try_from(offset).map_err(|_| Errno::EIO)?;
    let end = start.checked_add(n).filter(|&e| e <= len).ok_or(Errno::EIO)?;
    Ok(start..end)
}

impl BlockDevice for RamDisk {
    fn size(&self) -> u64 {
        self.data.lock().len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let data = self.data.lock();
        let r = span(data.len(), offset, buf.len())?;
        buf.copy_from_slice(&data[r]);
        Ok(())
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<(), Errno> {
        let mut data = self.data.lock();
        let r = span(data.len(), offset, buf.len())?;
        data[r].copy_from_slice(buf);
        Ok(())
    }

    fn flush(&self) -> Result<(), Errno> {
        Ok(())
    }
}

/// A registered disk as the `ext2` crate's device.
pub struct BdevHandle(pub Arc<dyn BlockDevice>);

impl ext2::BlockDevice for BdevHandle {
    fn size(&self) -> u64 {
        self.0.size()
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ext2::IoError> {
        self.0.read_at(offset, buf).map_err(|_| ext2::IoError { kind: ext2::IoErrorKind::Read, offset })
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), ext2::IoError> {
        self.0.write_at(offset, buf).map_err(|_| ext2::IoError { kind: ext2::IoErrorKind::Write, offset })
    }

    fn flush(&mut self) -> Result<(), ext2::IoError> {
        self.0.flush().map_err(|_| ext2::IoError { kind: ext2::IoErrorKind::Flush, offset: 0 })
    }
}
