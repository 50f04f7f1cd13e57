//! Swap page I/O (Linux `mm/page_io.c`: `swap_writepage` /
//! `__swap_writepage` / `swap_writepage_bdev_async`, `swap_read_folio` /
//! `swap_read_folio_bdev_async` and `_sync`, `end_swap_bio_write`,
//! `end_swap_bio_read`, `swap_page_sector`).
//!
//! A slot of a swap area is one page of its disk: slot `offset` is the
//! sectors from `offset * 8` on (4096-byte pages, 512-byte sectors; areas
//! are whole disks, so Linux's extent map is the identity). A write or
//! read is one bio of one page straight from or into the page frame,
//! submitted through the block layer and finished by its completion, in
//! interrupt context: there a failure is logged as Linux logs it
//! (`Write-error on swap-device (MAJOR:MINOR:SECTOR)`), then the caller's
//! `end_io` gets the result. Any number may be in flight; bios for
//! neighbouring slots merge in the disk's queue, the more so under a
//! [`BlkPlug`] (Linux's per-task plug), which the caller may pass.
//!
//! What a failure means is the caller's (the mm core's): a failed write
//! keeps the page in memory, dirty, and the slot should not be used again;
//! a failed read leaves the page not uptodate, and the task that faulted
//! gets SIGBUS. `end_io` runs in interrupt context and must not sleep or
//! take the swap areas' locks ([`crate::swapfile`]).
//!
//! Counted as Linux counts them, when the bio is submitted: `pswpout` and
//! `pgpgout` (4 KiB) per page written, `pswpin` and `pgpgin` per page
//! read (Linux counts `pgpgin`/`pgpgout` in `submit_bio`; this kernel's
//! block layer leaves that to its callers).
//!
//! Differences from Linux: one page per call (no large folios, so no
//! multi-page bios; merging in the queue makes the large requests); no
//! zswap, no `SWP_FS_OPS` (swap files over a file system), no
//! `SWP_SYNCHRONOUS_IO` shortcut; reads are not accounted as memory
//! stalls (no PSI); the page's flags (`PG_writeback`, `PG_uptodate`, the
//! page lock) are the caller's to set and clear in `end_io`.
//!
//! `unsafe`: the bio's claim on the page ([`Bio::add_page`]), passed on
//! to the callers of [`swap_writepage`] and [`swap_read_folio`] as their
//! contract.

#![allow(unsafe_code)]

use alloc::sync::Arc;

use mm::swapfile::{SWAP_MAP_BAD, SwapEntryError};
use mm::swapops::SwpEntry;
use mm::vmstat::VmEventItem;
use mm::{PAGE_SIZE, Pfn};

use crate::block::{Bio, BlkError, BlkPlug, Gendisk, ReqOp, SECTOR_SIZE, submit_bio, submit_bio_wait};

/// Sectors per page (`PAGE_SIZE / SECTOR_SIZE`, Linux
/// `PAGE_SECTORS`).
const PAGE_SECTORS: u64 = PAGE_SIZE / SECTOR_SIZE;

/// Why a swap I/O did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapIoError {
    /// The entry names no usable slot of an area in use: nothing was
    /// submitted.
    Entry(SwapEntryError),
    /// The block layer or the disk failed the bio.
    Blk(BlkError),
}

impl core::fmt::Display for SwapIoError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SwapIoError::Entry(e) => write!(f, "{e}"),
            SwapIoError::Blk(e) => write!(f, "{e}"),
        }
    }
}

/// The disk of `entry`'s area and the first sector of its slot (Linux
/// `swap_page_sector`): the slot must lie in the area and not be the
/// header or a bad page. The area need not be open to allocation (a
/// swapoff reads its pages back).
pub fn swap_page_sector(entry: SwpEntry) -> Result<(Arc<Gendisk>, u64), SwapEntryError> {
    let info = crate::swapfile::swap_info(entry.ty()).ok_or(SwapEntryError::BadFile)?;
    if crate::swapfile::SwapAreas.swap_count(entry)? == SWAP_MAP_BAD {
        return Err(SwapEntryError::BadSlot);
    }
    // Below the area's `max`, a u32: no overflow.
    Ok((info.disk, entry.offset() * PAGE_SECTORS))
}

/// A one-page bio for `op` of `pfn` at `sector`, whose completion logs a
/// failure as Linux's `end_swap_bio_*` does and then calls `end_io`; or
/// the error if it cannot be allocated.
///
/// # Safety
/// As for [`Bio::add_page`] on the whole page.
unsafe fn swap_bio<F: FnOnce(Result<(), BlkError>) + Send + 'static>(
    disk: &Arc<Gendisk>,
    op: ReqOp,
    sector: u64,
    pfn: Pfn,
    end_io: F,
) -> Result<Bio, (BlkError, F)> {
    let mut bio = match Bio::with_capacity(disk, op, sector, 1) {
        Ok(bio) => bio,
        Err(e) => return Err((e, end_io)),
    };
    // SAFETY: the caller's contract.
    unsafe { bio.add_page(pfn, 0, PAGE_SIZE as u32) };
    let (major, minor) = (disk.major(), disk.first_minor());
    bio.set_end_io(move |result| {
        if result.is_err() {
            let what = if op == ReqOp::Write { "Write" } else { "Read" };
            log::error!("{what}-error on swap-device ({major}:{minor}:{sector})");
        }
        end_io(result);
    });
    Ok(bio)
}

/// Writes page `pfn` to `entry`'s slot (Linux `swap_writepage` down to
/// `swap_writepage_bdev_async`): submitted at once, or added to `plug`
/// to be submitted with its batch; `end_io` gets the result in interrupt
/// context (or here, before this returns, if the bio could not be made or
/// the block layer refused it). `Err` if the entry names no usable slot:
/// then nothing was submitted and `end_io` is not called.
///
/// # Safety
/// From this call until `end_io` has run, the page belongs to the
/// device: it stays allocated and nothing writes it (Linux holds it
/// locked, or under `PG_writeback`, with a reference).
pub unsafe fn swap_writepage(
    entry: SwpEntry,
    pfn: Pfn,
    plug: Option<&mut BlkPlug>,
    end_io: impl FnOnce(Result<(), BlkError>) + Send + 'static,
) -> Result<(), SwapEntryError> {
    // SAFETY: the caller's contract.
    unsafe { swap_page_io(ReqOp::Write, entry, pfn, plug, end_io) }
}

/// Reads `entry`'s slot into page `pfn` (Linux `swap_read_folio` down to
/// `swap_read_folio_bdev_async`), as [`swap_writepage`] writes it.
///
/// # Safety
/// From this call until `end_io` has run, the page belongs to the
/// device: it stays allocated and nothing reads or writes it (Linux holds
/// it locked and not uptodate, with a reference).
pub unsafe fn swap_read_folio(
    entry: SwpEntry,
    pfn: Pfn,
    plug: Option<&mut BlkPlug>,
    end_io: impl FnOnce(Result<(), BlkError>) + Send + 'static,
) -> Result<(), SwapEntryError> {
    // SAFETY: the caller's contract.
    unsafe { swap_page_io(ReqOp::Read, entry, pfn, plug, end_io) }
}

/// The body of [`swap_writepage`] and [`swap_read_folio`]: the bio of
/// `op` for `entry`'s slot, counted and submitted.
///
/// # Safety
/// As for those two.
unsafe fn swap_page_io(
    op: ReqOp,
    entry: SwpEntry,
    pfn: Pfn,
    plug: Option<&mut BlkPlug>,
    end_io: impl FnOnce(Result<(), BlkError>) + Send + 'static,
) -> Result<(), SwapEntryError> {
    let (disk, sector) = swap_page_sector(entry)?;
    // SAFETY: the caller's contract, for the whole page.
    let bio = unsafe { swap_bio(&disk, op, sector, pfn, end_io) };
    if op == ReqOp::Write {
        let pgdat = crate::mm::pgdat();
        pgdat.count_vm_events(VmEventItem::Pswpout, 1);
        pgdat.count_vm_events(VmEventItem::Pgpgout, PAGE_SIZE / 1024);
    } else {
        count_read();
    }
    submit(bio, plug);
    Ok(())
}

/// Reads `entry`'s slot into page `pfn` and waits for it (Linux
/// `swap_read_folio_bdev_sync`, for tests).
/// Sleeps.
///
/// # Safety
/// Until this returns nothing else reads or writes the page, and it
/// stays allocated.
pub unsafe fn swap_read_folio_sync(entry: SwpEntry, pfn: Pfn) -> Result<(), SwapIoError> {
    let (disk, sector) = swap_page_sector(entry).map_err(SwapIoError::Entry)?;
    let mut bio = Bio::with_capacity(&disk, ReqOp::Read, sector, 1).map_err(SwapIoError::Blk)?;
    // SAFETY: the caller's contract, and `submit_bio_wait` returns only
    // once the bio has completed.
    unsafe { bio.add_page(pfn, 0, PAGE_SIZE as u32) };
    count_read();
    submit_bio_wait(bio).map_err(|e| {
        log::error!("Read-error on swap-device ({}:{}:{sector})", disk.major(), disk.first_minor());
        SwapIoError::Blk(e)
    })
}

fn count_read() {
    let pgdat = crate::mm::pgdat();
    pgdat.count_vm_events(VmEventItem::Pswpin, 1);
    pgdat.count_vm_events(VmEventItem::Pgpgin, PAGE_SIZE / 1024);
}

/// Submits a bio from [`swap_bio`], or ends it with its allocation
/// error.
fn submit<F: FnOnce(Result<(), BlkError>)>(bio: Result<Bio, (BlkError, F)>, plug: Option<&mut BlkPlug>) {
    match (bio, plug) {
        (Ok(bio), Some(plug)) => plug.add(bio),
        (Ok(bio), None) => submit_bio(bio),
        (Err((e, end_io)), _) => end_io(Err(e)),
    }
}
