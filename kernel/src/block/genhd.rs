//! Disks: registration, names and statistics (Linux `block/genhd.c`,
//! `include/linux/part_stat.h`, `/proc/diskstats` from `diskstats_show`).
//!
//! Drivers register each disk with [`add_disk`] under a name prefix; the
//! disk gets the next name in Linux's scheme (`vda`..`vdz`, `vdaa`..), so
//! disks registered in PCI order are named in PCI order.
//!
//! Lock order: the disk list's lock is a leaf, taken in process context
//! only (interrupt handlers reach their disk through their own data).

#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};

use super::BlkError;
use super::blk_mq::{BlkMqOps, Limits, RequestQueue};
use crate::sync::SpinLock;

/// Major number of virtio-blk disks (Linux allocates one dynamically;
/// 254 is what it usually gets).
pub const VIRTBLK_MAJOR: u32 = 254;
/// Minors per disk (Linux virtio_blk `PART_BITS` = 4).
const MINORS_PER_DISK: u32 = 16;

/// Per-disk counters (Linux `struct disk_stats`), index 0 reads, 1
/// writes, 2 flushes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Requests completed.
    pub ios: [u64; 3],
    /// Bios merged into a queued request.
    pub merges: [u64; 2],
    /// Sectors transferred.
    pub sectors: [u64; 2],
    /// Time from queueing to completion, summed over requests, ns.
    pub nsecs: [u64; 3],
    /// Requests queued or in flight now.
    pub in_flight: u64,
    /// Time with at least one request outstanding, ns.
    pub io_ticks_ns: u64,
}

/// A disk (Linux `struct gendisk` with its `block_device`).
#[doc(alias = "gendisk")]
pub struct Gendisk {
    name: String,
    major: u32,
    first_minor: u32,
    /// Size in sectors.
    capacity: u64,
    read_only: bool,
    /// No interrupt: waiters poll ([`super::submit_bio_wait`]).
    polled: AtomicBool,
    queue: RequestQueue,
}

impl Gendisk {
    /// The name, `vda`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device number's major (Linux `disk->major`).
    pub fn major(&self) -> u32 {
        self.major
    }

    /// The device number's first minor (Linux `disk->first_minor`).
    pub fn first_minor(&self) -> u32 {
        self.first_minor
    }

    /// Size in 512-byte sectors (Linux `get_capacity`).
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Whether writes are refused.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Largest request in sectors.
    pub fn max_sectors(&self) -> u32 {
        self.queue.limits().max_sectors
    }

    /// Most physically contiguous memory segments in one request.
    pub fn max_segments(&self) -> usize {
        self.queue.limits().max_segments
    }

    /// The request queue.
    pub fn queue(&self) -> &RequestQueue {
        &self.queue
    }

    /// Whether completions are polled for (no interrupt).
    pub fn is_polled(&self) -> bool {
        self.polled.load(Ordering::Relaxed)
    }

    /// Statistics now.
    pub fn stats(&self) -> DiskStats {
        self.queue.stats()
    }

    /// The disk's `/proc/diskstats` line.
    pub fn diskstats_line(&self) -> DiskstatsLine<'_> {
        DiskstatsLine { disk: self, stats: self.stats() }
    }
}

/// One `/proc/diskstats` line (Linux `diskstats_show`): major, minor,
/// name, then reads completed, merged, sectors, ms; the same for writes;
/// in flight, io_ticks ms, time_in_queue ms; discards (none here);
/// flushes completed and ms.
pub struct DiskstatsLine<'a> {
    disk: &'a Gendisk,
    stats: DiskStats,
}

impl fmt::Display for DiskstatsLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        let ms = |ns: u64| ns / 1_000_000;
        write!(
            f,
            "{:4} {:7} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}",
            self.disk.major,
            self.disk.first_minor,
            self.disk.name,
            s.ios[0],
            s.merges[0],
            s.sectors[0],
            ms(s.nsecs[0]),
            s.ios[1],
            s.merges[1],
            s.sectors[1],
            ms(s.nsecs[1]),
            s.in_flight,
            ms(s.io_ticks_ns),
            ms(s.nsecs[0] + s.nsecs[1] + s.nsecs[2]),
            0,
            0,
            0,
            0,
            s.ios[2],
            ms(s.nsecs[2]),
        )
    }
}

static DISKS: SpinLock<Vec<Arc<Gendisk>>> = SpinLock::new(Vec::new());

/// Linux `sd_format_disk_name`: `prefix` + a, b, .. z, aa, ab, ..
fn disk_name(prefix: &str, mut index: u32) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'a' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    let mut name = String::from(prefix);
    name.extend(letters.iter().rev().map(|&b| char::from(b)));
    name
}

/// What a driver tells [`add_disk`] about a disk.
pub struct DiskInfo {
    /// Name prefix (`vd`).
    pub prefix: &'static str,
    /// Major number.
    pub major: u32,
    /// Size in sectors.
    pub capacity: u64,
    /// Writes refused.
    pub read_only: bool,
    /// Largest request, sectors.
    pub max_sectors: u32,
    /// Most physically contiguous memory segments per request (1: the
    /// driver hands the device one buffer per request).
    pub max_segments: usize,
    /// No interrupt: completions are polled for.
    pub polled: bool,
}

/// Registers a disk and names it (Linux `device_add_disk`).
pub fn add_disk(info: DiskInfo, ops: Box<dyn BlkMqOps>) -> Arc<Gendisk> {
    let mut disks = DISKS.lock();
    let index = disks.iter().filter(|d| d.major == info.major).count() as u32;
    let name = disk_name(info.prefix, index);
    let disk = Arc::new(Gendisk {
        queue: RequestQueue::new(ops, Limits { max_sectors: info.max_sectors, max_segments: info.max_segments }, &name),
        name,
        major: info.major,
        first_minor: index * MINORS_PER_DISK,
        capacity: info.capacity,
        read_only: info.read_only,
        polled: AtomicBool::new(info.polled),
    });
    disks.push(disk.clone());
    drop(disks);
    // File systems find disks by name in fs::blkdev (`mount /dev/vda`).
    let registered = super::bdev::DiskFile::open(&disk)
        .map_err(BlkError::errno)
        .and_then(|file| crate::fs::blkdev::register(&disk.name, Arc::new(file)));
    if let Err(e) = registered {
        log::warn!("{}: not registered for mounting: {e:?}", disk.name);
    }
    disk
}

/// Every disk, in registration order.
pub fn disks() -> Vec<Arc<Gendisk>> {
    DISKS.lock().clone()
}

/// The disk named `name` (`vda`, or `/dev/vda`).
pub fn disk_by_name(name: &str) -> Option<Arc<Gendisk>> {
    let name = name.strip_prefix("/dev/").unwrap_or(name);
    DISKS.lock().iter().find(|d| d.name == name).cloned()
}
