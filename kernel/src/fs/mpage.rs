//! Reading a readahead batch straight into its pages (Linux `fs/mpage.c`:
//! `mpage_readahead`, `do_mpage_readpage`, `mpage_end_io`), for a file
//! system whose blocks map through a `get_blocks` (ext2).
//!
//! The file system maps the batch's blocks first, into [`BlockRun`]s:
//! blocks in a row on the disk, or holes (and the blocks past the end of
//! the file, which Linux's `last_block_in_file` treats as holes too).
//! Each run of disk blocks becomes one bio whose segments are the pages'
//! bytes it covers, `(page, offset, length)` as Linux's `bio_add_folio`
//! gives them, so the device reads into the page frames with no buffer
//! and no copy; a hole's bytes are zeroed in the page before any I/O. A
//! page may take bytes from several runs (blocks smaller than a page that
//! do not follow each other on the disk: Linux's "confused" page, which
//! it reads through buffer heads), so each page counts the bios still
//! reading it; the one that brings the count to zero ends the page with
//! [`folio_end_read`], in the completion's interrupt context: uptodate,
//! or not if any of its bios failed. Until every bio is submitted the
//! submitter holds one count of each page, so no page ends early.
//!
//! Errors are the pages': a run that could not be mapped (the file
//! system's error), a bio whose segment list could not be allocated, or
//! one the block layer refused or the device failed, fails the pages it
//! covers, which end not uptodate; the reader that needs one reads it
//! again itself and gets the error (see [`crate::filemap`]). The batch's
//! shared bookkeeping and each bio's end-io closure are still allocated
//! as the block layer allocates its own (`Arc`, `Box`), which panics if
//! the heap is exhausted.
//!
//! `unsafe` is the bio's claim on the pages ([`Bio::add_page`]); the
//! argument is at the call.

#![allow(unsafe_code)]

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Range;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use mm::addr::PAGE_SIZE;
use uapi::errno::Errno;

use crate::block::{Bio, Gendisk, ReqOp, SECTOR_SIZE, submit_bio};
use crate::filemap::{FolioRef, ReadaheadControl, folio_end_read};

/// Blocks of a file in a row, from where the previous run ended: on the
/// disk from `block` on, or a hole (Linux's mapped or unmapped buffer of
/// `get_block`, `b_size` long).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRun {
    /// Blocks.
    pub count: u64,
    /// The disk block of the first, in file-system blocks; `None` for a
    /// hole.
    pub block: Option<u64>,
}

/// One page of the batch and its reads.
struct BatchPage {
    folio: FolioRef,
    /// Bios still reading into the page, plus the submitter's count until
    /// every bio is out.
    pending: AtomicU32,
    /// A read into it failed, or part of it could not be read.
    failed: AtomicBool,
}

/// A batch's pages, shared by its bios' completions.
struct ReadBatch {
    /// The file byte the first page holds.
    start: u64,
    pages: Vec<BatchPage>,
}

impl ReadBatch {
    /// One reader of page `k` is done; the last ends the page. Safe in
    /// interrupt context.
    fn put(&self, k: usize, failed: bool) {
        let Some(page) = self.pages.get(k) else { return };
        if failed {
            page.failed.store(true, Ordering::Release);
        }
        if page.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            folio_end_read(&page.folio, !page.failed.load(Ordering::Acquire));
        }
    }

    fn fail(&self, pages: Range<usize>) {
        for page in self.pages.get(pages).unwrap_or(&[]) {
            page.failed.store(true, Ordering::Release);
        }
    }

    /// The pages holding bytes `from..to` of the file.
    fn page_range(&self, from: u64, to: u64) -> Range<usize> {
        ((from - self.start) / PAGE_SIZE) as usize..(to - self.start).div_ceil(PAGE_SIZE) as usize
    }

    /// The pieces of bytes `from..to` of the file, page by page: the
    /// page, and the offset and length in it.
    fn pieces(&self, from: u64, to: u64) -> impl Iterator<Item = (usize, u32, u32)> {
        let start = self.start;
        self.page_range(from, to).map(move |k| {
            let page_start = start + k as u64 * PAGE_SIZE;
            let (s, e) = (from.max(page_start), to.min(page_start + PAGE_SIZE));
            (k, (s - page_start) as u32, (e - s) as u32)
        })
    }
}

/// Reads `rac`'s pages from `disk`, whose file-system blocks are
/// `block_size` bytes, with `runs` mapping the blocks from the one holding
/// the batch's first byte on (Linux `mpage_readahead`). Returns once
/// every bio is submitted; the pages end as their bios complete. Pages
/// the runs do not reach end not uptodate. ENOMEM (nothing started, the
/// pages leave the cache) if the batch's bookkeeping cannot be allocated.
pub fn mpage_readahead(
    rac: ReadaheadControl<'_>,
    disk: &Arc<Gendisk>,
    block_size: u32,
    runs: &[BlockRun],
) -> Result<(), Errno> {
    let bs = u64::from(block_size);
    if bs == 0 || !bs.is_multiple_of(SECTOR_SIZE) {
        return Err(Errno::EINVAL);
    }
    let mut pages = Vec::new();
    pages.try_reserve_exact(rac.nr_pages()).map_err(|_| Errno::ENOMEM)?;
    let start = rac.index().checked_mul(PAGE_SIZE).ok_or(Errno::EFBIG)?;
    let end = (rac.nr_pages() as u64).checked_mul(PAGE_SIZE).and_then(|n| start.checked_add(n)).ok_or(Errno::EFBIG)?;
    pages.extend(rac.into_folios().into_iter().map(|folio| BatchPage {
        folio,
        pending: AtomicU32::new(1),
        failed: AtomicBool::new(false),
    }));
    let batch = Arc::new(ReadBatch { start, pages });
    // The byte of the file the next run starts at.
    let mut pos = start - start % bs;
    for run in runs {
        let Some(run_end) = run.count.checked_mul(bs).and_then(|n| pos.checked_add(n)) else { break };
        let (from, to) = (pos.max(start), run_end.min(end));
        if from < to {
            match run.block {
                None => zero(&batch, from, to),
                // Both offsets are whole sectors: blocks are, and so are
                // pages.
                Some(block) => match block.checked_mul(bs).and_then(|b| b.checked_add(from - pos)) {
                    Some(byte) if byte.is_multiple_of(SECTOR_SIZE) => read(&batch, disk, from, to, byte / SECTOR_SIZE),
                    _ => batch.fail(batch.page_range(from, to)),
                },
            }
        }
        pos = run_end;
        if pos >= end {
            break;
        }
    }
    if pos < end {
        // What the runs do not reach could not be mapped.
        batch.fail(batch.page_range(pos.max(start), end));
    }
    for k in 0..batch.pages.len() {
        batch.put(k, false);
    }
    Ok(())
}

/// Zeroes bytes `from..to` of the file in the batch's pages: a hole. The
/// pages are locked and no bio reads into these bytes.
fn zero(batch: &ReadBatch, from: u64, to: u64) {
    for (k, offset, len) in batch.pieces(from, to) {
        let zeroed = batch.pages.get(k).map(|p| p.folio.zero(offset as usize, len as usize));
        if !matches!(zeroed, Some(Ok(()))) {
            batch.fail(k..k + 1);
        }
    }
}

/// Reads bytes `from..to` of the file, which lie on the disk from
/// `sector` on, into the batch's pages with one bio (Linux
/// `do_mpage_readpage`'s bio, grown page by page with `bio_add_folio`).
fn read(batch: &Arc<ReadBatch>, disk: &Arc<Gendisk>, from: u64, to: u64, sector: u64) {
    let pages = batch.page_range(from, to);
    let Ok(mut bio) = Bio::with_capacity(disk, ReqOp::Read, sector, pages.len()) else {
        batch.fail(pages);
        return;
    };
    for (k, offset, len) in batch.pieces(from, to) {
        let Some(page) = batch.pages.get(k) else { continue };
        page.pending.fetch_add(1, Ordering::AcqRel);
        // SAFETY: `Bio::add_page`'s contract holds until the bio's end-io
        // has run. The page stays allocated: the batch holds a reference
        // to it, and the end-io owns a count of the batch. Nothing else
        // reads or writes these bytes meanwhile: the page is locked and
        // not uptodate until the end-io (or a later one of its bios)
        // ends it, every page-cache reader waits for `PG_uptodate` or
        // skips a locked page (fault-around), every writer (write(2),
        // truncation, reclaim, write-back) takes the page lock first,
        // and the submitter zeroes only holes, which no bio covers.
        unsafe { bio.add_page(page.folio.pfn(), offset, len) };
    }
    let ended = batch.clone();
    let range = pages.clone();
    bio.set_end_io(move |result| {
        for k in range {
            ended.put(k, result.is_err());
        }
    });
    crate::mm::pgdat().count_vm_events(mm::vmstat::VmEventItem::Pgpgin, (to - from) / 1024);
    submit_bio(bio);
}
