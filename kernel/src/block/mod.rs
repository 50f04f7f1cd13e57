//! The block layer: bios, request queues, disks and their statistics
//! (Linux `block/` in miniature: `bio.c`, `blk-core.c`, `blk-merge.c`,
//! `blk-mq.c`, `genhd.c`).
//!
//! A [`Bio`] names a disk, a start sector, an operation and the memory to
//! transfer as (page frame, offset, length) segments. [`submit_bio`]
//! checks it, cuts it where it exceeds the disk's limits, and
//! hands the pieces to the disk's request queue ([`blk_mq`]), which merges
//! each with a queued request it continues (back merge) or precedes
//! (front merge), dispatches requests while the driver takes them, and
//! completes them from the driver's interrupt: statistics, error report,
//! then each bio's completion ([`Bio::set_end_io`], or the waiter of
//! [`submit_bio_wait`]). A [`BlkPlug`] holds a batch of bios back so that
//! they merge before the device sees any of them (Linux `blk_start_plug`).
//!
//! Errors are values ([`BlkError`]): a bio that fails, for any reason from
//! a bad argument to a device error, completes with one, and
//! [`BlkError::errno`] gives the errno Linux would return. Device errors
//! are logged like Linux's `blk_print_req_error`.
//!
//! A request carries a run of sectors and its memory as a list of
//! physically contiguous segments, up to the disk's `max_segments` (the
//! virtio driver gives the device one descriptor per segment), so a bio
//! over scattered pages, such as a readahead window's page-cache pages,
//! is one request (Linux `blk_rq_map_sg`).
//!
//! Differences from Linux: one hardware queue per disk and no I/O
//! scheduler (requests go out in arrival order, merged on the way); no
//! `max_segment_size` or segment boundary limits; no partitions, no
//! discard, no integrity or crypto; plugs are explicit values, and a
//! task's own plug (Linux `current->plug`, [`blk_start_plug`]) takes only
//! swap writes and is not flushed when the task sleeps.
//!
//! Contexts: [`submit_bio`] may be called from any context that may
//! allocate with `GFP_ATOMIC` (it does not sleep); [`submit_bio_wait`]
//! sleeps. End-io callbacks run in hard-IRQ context (or in the submitter,
//! for bios refused before queueing) and must not sleep.
//!
//! `unsafe` lives in `bio.rs` (the contract of [`Bio::add_page`]: the
//! memory stays the bio's until it completes) and `bounce.rs` (the byte
//! API's own buffer); the other files forbid it.

pub mod bdev;
mod bio;
pub mod blk_mq;
mod bounce;
pub mod genhd;

pub use bdev::BlockDevice;
pub use bio::{
    Bio, BioVec, BlkPlug, EndIo, PLUG_MAX_BIOS, blk_finish_plug, blk_start_plug, submit_bio, submit_bio_wait,
    with_current_plug,
};
pub use genhd::{Gendisk, disk_by_name, disks};

use uapi::errno::Errno;

/// Bytes per sector, the unit of block addresses (Linux `SECTOR_SIZE`).
pub const SECTOR_SIZE: u64 = 512;
/// log2 of [`SECTOR_SIZE`] (Linux `SECTOR_SHIFT`).
pub const SECTOR_SHIFT: u32 = 9;

/// What a bio asks of the disk (Linux `enum req_op`; the values are
/// Linux's, as error reports print them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReqOp {
    /// Read sectors into memory (`REQ_OP_READ`, 0).
    Read,
    /// Write memory to sectors (`REQ_OP_WRITE`, 1).
    Write,
    /// Make completed writes durable (`REQ_OP_FLUSH`, 2); carries no data.
    Flush,
}

impl ReqOp {
    /// Linux's number for the operation.
    pub const fn code(self) -> u32 {
        match self {
            ReqOp::Read => 0,
            ReqOp::Write => 1,
            ReqOp::Flush => 2,
        }
    }

    /// Linux's name (`blk_op_str`).
    pub const fn name(self) -> &'static str {
        match self {
            ReqOp::Read => "READ",
            ReqOp::Write => "WRITE",
            ReqOp::Flush => "FLUSH",
        }
    }
}

/// Why a bio failed (Linux `blk_status_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// The device reported an I/O error (`BLK_STS_IOERR`: EIO).
    Io,
    /// The bio reaches past the end of the disk (Linux logs "attempt to
    /// access beyond end of device" and fails it with EIO).
    BeyondEnd,
    /// A length or offset that is not a whole number of sectors, or a
    /// bio without data (Linux: EINVAL from the submitter's checks).
    Invalid,
    /// The device does not support the operation (`BLK_STS_NOTSUPP`: EOPNOTSUPP).
    NotSupported,
    /// A write to a read-only disk (Linux: EPERM from `bio_check_ro`... the
    /// syscall layer turns it into EROFS; here EROFS directly).
    ReadOnly,
    /// Memory for the request could not be allocated (`BLK_STS_RESOURCE`: ENOMEM).
    NoMemory,
}

impl BlkError {
    /// The errno a system call returns for it.
    pub const fn errno(self) -> Errno {
        match self {
            BlkError::Io | BlkError::BeyondEnd => Errno::EIO,
            BlkError::Invalid => Errno::EINVAL,
            BlkError::NotSupported => Errno::EOPNOTSUPP,
            BlkError::ReadOnly => Errno::EROFS,
            BlkError::NoMemory => Errno::ENOMEM,
        }
    }

    /// Linux's word for the status in error reports (`blk_errors[]`).
    pub const fn name(self) -> &'static str {
        match self {
            BlkError::Io | BlkError::BeyondEnd => "I/O",
            BlkError::Invalid => "invalid",
            BlkError::NotSupported => "operation not supported",
            BlkError::ReadOnly => "read-only",
            BlkError::NoMemory => "resource",
        }
    }
}

impl core::fmt::Display for BlkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} error ({})", self.name(), self.errno().name())
    }
}
