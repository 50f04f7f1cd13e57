//! Making a swap area on a disk (util-linux `mkswap DEVICE` on a whole
//! disk, for the console's `mkswap`): the header bytes are mm's
//! [`mkswap`], written over the disk's first page with its first 1024
//! bytes (`bootbits`) kept, and flushed.
//!
//! Refused, as util-linux refuses them: a disk holding an active swap
//! area or mounted (its exclusive open fails: EBUSY), a disk too small
//! or a label too long ([`MkswapError`]). A path that is not a disk with
//! a request queue is refused too: the areas this kernel can use are
//! whole virtio disks. Unlike util-linux there is no bad-block check
//! (`-c`) and no wiping of other signatures beyond the header page.

#![forbid(unsafe_code)]

use core::fmt;

use mm::swapfile::{MkswapError, SwapUuid, mkswap};
use uapi::errno::Errno;

use super::swapon::{SwapPath, disk_mounted, lookup_swap_path};
use crate::block::{BlkError, BlockDevice, SECTOR_SIZE};

/// Why [`mkswap_disk`] wrote nothing (or, for [`MkswapDiskError::Io`],
/// not all of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MkswapDiskError {
    /// The path's lookup failed.
    Path(Errno),
    /// The path names no disk with a request queue.
    NotDisk,
    /// The disk holds an active swap area or is mounted.
    Busy,
    /// mm's header writer refused.
    Format(MkswapError),
    /// Reading or writing the disk failed.
    Io(BlkError),
}

impl fmt::Display for MkswapDiskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MkswapDiskError::Path(e) => write!(f, "{e}"),
            MkswapDiskError::NotDisk => f.write_str("not a disk (swap areas are whole disks, /dev/vdX)"),
            MkswapDiskError::Busy => f.write_str("device is in use (an active swap area, or mounted)"),
            MkswapDiskError::Format(e) => write!(f, "{e}"),
            MkswapDiskError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// What [`mkswap_disk`] made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadeSwap {
    /// The header's `last_page`.
    pub last_page: u32,
    /// Pages for swapping: all but the header (no bad pages are listed).
    pub pages: u32,
    /// The area's UUID.
    pub uuid: SwapUuid,
}

/// Writes a swap header with `label` and `uuid` on the disk at `path`
/// (`/dev/NAME`). Sleeps.
pub fn mkswap_disk(path: &[u8], label: &[u8], uuid: SwapUuid) -> Result<MadeSwap, MkswapDiskError> {
    let disk = match lookup_swap_path(path).map_err(MkswapDiskError::Path)? {
        SwapPath::Disk(disk) => disk,
        SwapPath::NoQueue | SwapPath::File | SwapPath::Other => return Err(MkswapDiskError::NotDisk),
    };
    if super::disk_is_swap(&disk) || disk_mounted(&disk) {
        return Err(MkswapDiskError::Busy);
    }
    let device_pages = disk.capacity() / (mm::PAGE_SIZE / SECTOR_SIZE);
    let mut bdev = BlockDevice::open(&disk).map_err(MkswapDiskError::Io)?;
    let mut page = [0u8; mm::PAGE_SIZE as usize];
    if device_pages > 0 {
        bdev.read_at(0, &mut page).map_err(MkswapDiskError::Io)?;
    }
    let last_page = mkswap(&mut page, device_pages, uuid, label).map_err(MkswapDiskError::Format)?;
    bdev.write_at(0, &page).map_err(MkswapDiskError::Io)?;
    bdev.flush().map_err(MkswapDiskError::Io)?;
    Ok(MadeSwap { last_page, pages: last_page, uuid })
}

/// A random (version 4) UUID, as util-linux's `uuid_generate` makes for
/// mkswap, from the kernel's random bytes (what `getrandom` gives it).
pub fn random_uuid() -> SwapUuid {
    let mut uuid = [0u8; 16];
    crate::drivers::random::get_random_bytes(&mut uuid);
    // RFC 4122: version 4, variant 10.
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    SwapUuid(uuid)
}
