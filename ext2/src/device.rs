//! The block device the file system sits on: the narrow machine boundary
//! (Linux's `struct block_device` as ext2 reaches it through `sb_bread` and
//! `submit_bh`).
//!
//! The device is byte-addressed, but the file system only asks for whole fs
//! blocks at block-aligned offsets, and for the superblock (1024 bytes at
//! byte 1024), so a driver with 512-byte sectors needs no read-modify-write
//! of its own. [`MemDisk`] is a device in memory with
//! injectable I/O errors, for tests and for a RAM disk.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

/// What failed on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoErrorKind {
    /// A read failed.
    Read,
    /// A write failed.
    Write,
    /// Flushing the device's write cache failed.
    Flush,
    /// The request reaches past the end of the device.
    OutOfRange,
}

/// An I/O error from a [`BlockDevice`] (Linux reports these as `EIO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoError {
    /// What failed.
    pub kind: IoErrorKind,
    /// Byte offset of the failed request.
    pub offset: u64,
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} error at byte offset {}", self.kind, self.offset)
    }
}

/// A disk: the only way the file system reaches the machine.
pub trait BlockDevice {
    /// Size of the device in bytes.
    fn size(&self) -> u64;
    /// Reads `buf.len()` bytes at byte `offset`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError>;
    /// Writes `buf` at byte `offset`.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError>;
    /// Makes earlier writes durable (a cache flush / FUA barrier).
    fn flush(&mut self) -> Result<(), IoError>;
}

/// A disk in memory, with I/O errors injectable by byte range.
#[derive(Clone, Debug, Default)]
pub struct MemDisk {
    data: Vec<u8>,
    failing_reads: Vec<Range<u64>>,
    failing_writes: Vec<Range<u64>>,
    writes: u64,
}

impl MemDisk {
    /// A disk holding `data`.
    pub fn new(data: Vec<u8>) -> Self {
        MemDisk { data, ..MemDisk::default() }
    }

    /// The disk's bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Takes the disk's bytes.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// Makes every read that touches `range` fail.
    pub fn fail_reads(&mut self, range: Range<u64>) {
        self.failing_reads.push(range);
    }

    /// Makes every write that touches `range` fail.
    pub fn fail_writes(&mut self, range: Range<u64>) {
        self.failing_writes.push(range);
    }

    /// Removes all injected errors.
    pub fn clear_failures(&mut self) {
        self.failing_reads.clear();
        self.failing_writes.clear();
    }

    /// How many writes reached the disk.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// The byte range of a request, checked against the disk size.
    fn span(&self, offset: u64, len: usize) -> Result<Range<usize>, IoError> {
        let out_of_range = IoError { kind: IoErrorKind::OutOfRange, offset };
        let start = usize::try_from(offset).map_err(|_| out_of_range)?;
        let end = start.checked_add(len).ok_or(out_of_range)?;
        if end > self.data.len() {
            return Err(out_of_range);
        }
        Ok(start..end)
    }
}

/// Whether `[offset, offset + len)` meets any of `ranges`.
fn hits(ranges: &[Range<u64>], offset: u64, len: usize) -> bool {
    let end = offset.saturating_add(len as u64);
    ranges.iter().any(|r| r.start < end && offset < r.end)
}

impl BlockDevice for MemDisk {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        let span = self.span(offset, buf.len())?;
        if hits(&self.failing_reads, offset, buf.len()) {
            return Err(IoError { kind: IoErrorKind::Read, offset });
        }
        let src = self.data.get(span).ok_or(IoError { kind: IoErrorKind::OutOfRange, offset })?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        let span = self.span(offset, buf.len())?;
        if hits(&self.failing_writes, offset, buf.len()) {
            return Err(IoError { kind: IoErrorKind::Write, offset });
        }
        let dst = self.data.get_mut(span).ok_or(IoError { kind: IoErrorKind::OutOfRange, offset })?;
        dst.copy_from_slice(buf);
        self.writes += 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_errors_hit_only_their_range() {
        let mut disk = MemDisk::new(alloc::vec![0; 4096]);
        disk.fail_reads(1024..2048);
        let mut buf = [0u8; 512];
        assert!(disk.read_at(0, &mut buf).is_ok());
        assert_eq!(disk.read_at(1536, &mut buf).unwrap_err().kind, IoErrorKind::Read);
        assert!(disk.write_at(1536, &buf).is_ok());
        disk.fail_writes(0..1);
        assert_eq!(disk.write_at(0, &buf).unwrap_err().kind, IoErrorKind::Write);
    }

    #[test]
    fn requests_past_the_end_fail() {
        let mut disk = MemDisk::new(alloc::vec![0; 1024]);
        let mut buf = [0u8; 512];
        assert_eq!(disk.read_at(768, &mut buf).unwrap_err().kind, IoErrorKind::OutOfRange);
        assert_eq!(disk.write_at(u64::MAX, &buf).unwrap_err().kind, IoErrorKind::OutOfRange);
    }
}
