//! Readahead as the page cache runs it (Linux `mm/readahead.c`:
//! `page_cache_ra_unbounded`, `read_pages`, `force_page_cache_ra`, and
//! `struct readahead_control`), the decisions being [`mm::readahead`]'s.
//!
//! A decision's request becomes batches of new pages: each page is added
//! to the cache locked and not uptodate, the one the decision names gets
//! `PG_readahead`, and a batch of up to [`MAX_RUN`] pages in a row goes
//! to the file system's [`AddressSpaceOperations::readahead`] as a
//! [`ReadaheadControl`]. The file system starts the reads and returns: on
//! a disk with interrupts ext2 reads the blocks straight into the pages
//! ([`crate::fs::mpage`]), and the I/O completion, in interrupt context,
//! ends each page with [`folio_end_read`]: uptodate, or not on an error,
//! and unlocked. A reader that needs one of the pages waits for its lock
//! and then checks `PG_uptodate` (see [`super::read_cache_page`]); a page
//! whose read failed stays in the cache, not uptodate, and the reader
//! reads it again itself, so the error reaches it as EIO. So the reader
//! that triggered an asynchronous window (at a `PG_readahead` page) does
//! not wait for it at all, and the one that triggered a synchronous
//! window (on a miss) waits only for the page it needs.
//!
//! Readahead is a hint: a page that cannot be added ends the batch, and
//! the pages of a batch the file system did not take (no memory for its
//! I/O) leave the cache again, unlocked (Linux `read_pages`), for the
//! reader to read one by one.
//!
//! Differences from Linux: no large folios; a batch is at most
//! [`MAX_RUN`] pages (Linux's is the whole window, up to the device's
//! `ra_pages`); `readahead(2)`, `POSIX_FADV_WILLNEED` and
//! `MADV_WILLNEED` are read before the call returns on a device without
//! interrupts (a loop device, a RAM disk), as every read is there.

use alloc::vec::Vec;

use mm::addr::PAGE_SIZE;
use mm::filemap::{AddressSpace, folio_unlock};
use mm::gfp::GFP_HIGHUSER_MOVABLE;
use mm::page_flags::PageFlags;
use mm::readahead::{self, FileRaState, RaCache, RaLimits, RaMapping, RaRequest, RaTraceLog};
use uapi::errno::Errno;

use super::{AddressSpaceOperations, FolioRef, MAX_RUN, Mapping, PAGE, PageCacheNodes, folio_end_read, parts};
use crate::fs::inode::Inode;
use crate::mmap::FOLIO_WAIT;
use crate::sync::{SpinLock, SpinLockIrq};

impl RaCache for SpinLockIrq<AddressSpace<PageCacheNodes>> {
    fn next_miss(&self, index: u64, max_scan: u64) -> Option<u64> {
        let last = index.saturating_add(max_scan.saturating_sub(1));
        self.lock().next_hole(index, last)
    }

    fn prev_miss(&self, index: u64, max_scan: u64) -> Option<u64> {
        let first = index.saturating_sub(max_scan.saturating_sub(1));
        let space = self.lock();
        (first..=index).rev().find(|&i| space.lookup(i).is_none())
    }
}

/// A readahead batch for the file system (Linux `struct
/// readahead_control`): pages `index..index + nr_pages()` of a cache, in
/// a row, just added, locked and not uptodate. The file system takes
/// them with [`ReadaheadControl::into_folios`] and ends each with
/// [`folio_end_read`], now or when its read completes, or reads them all
/// at once with [`ReadaheadControl::read_with`]. Pages still here when
/// it is dropped leave the cache, unlocked (Linux `read_pages`' cleanup).
pub struct ReadaheadControl<'a> {
    mapping: &'a Mapping,
    index: u64,
    folios: Vec<FolioRef>,
}

impl<'a> ReadaheadControl<'a> {
    /// An empty batch from page `index` on, with room for [`MAX_RUN`]
    /// pages (ENOMEM).
    fn new(mapping: &'a Mapping, index: u64) -> Result<ReadaheadControl<'a>, Errno> {
        let mut folios = Vec::new();
        folios.try_reserve_exact(MAX_RUN).map_err(|_| Errno::ENOMEM)?;
        Ok(ReadaheadControl { mapping, index, folios })
    }

    /// Whether the batch holds [`MAX_RUN`] pages.
    fn is_full(&self) -> bool {
        self.folios.len() >= MAX_RUN
    }

    /// Adds the next page, locked and new, into the room reserved for
    /// it (the caller checked [`Self::is_full`]).
    fn push(&mut self, folio: FolioRef) {
        self.folios.push(folio);
    }

    /// The first page's index (Linux `readahead_index`).
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Pages in the batch (Linux `readahead_count`).
    pub fn nr_pages(&self) -> usize {
        self.folios.len()
    }

    /// The file's size now (Linux `i_size_read(rac->mapping->host)`).
    pub fn i_size(&self) -> u64 {
        self.mapping.i_size()
    }

    /// Hands the pages over, in order: the caller ends each with
    /// [`folio_end_read`] (Linux `readahead_folio` for each).
    pub fn into_folios(mut self) -> Vec<FolioRef> {
        core::mem::take(&mut self.folios)
    }

    /// Reads the whole batch with `read(index, buf)`, which fills `buf`
    /// with the pages from `index` on, through one buffer, and ends every
    /// page: uptodate, or not if the read failed (for a file system whose
    /// device cannot read into the pages). Without memory for the buffer
    /// the pages leave the cache (ENOMEM).
    pub fn read_with(self, read: impl FnOnce(u64, &mut [u8]) -> Result<(), Errno>) -> Result<(), Errno> {
        let mut buf = Vec::new();
        buf.try_reserve_exact(self.folios.len() * PAGE).map_err(|_| Errno::ENOMEM)?;
        buf.resize(self.folios.len() * PAGE, 0);
        let index = self.index;
        let folios = self.into_folios();
        let read = read(index, &mut buf)
            .and_then(|()| folios.iter().zip(buf.chunks(PAGE)).try_for_each(|(folio, bytes)| folio.write(0, bytes)));
        for folio in &folios {
            folio_end_read(folio, read.is_ok());
        }
        if read.is_ok() {
            crate::mm::pgdat().count_vm_events(mm::vmstat::VmEventItem::Pgpgin, (buf.len() / 1024) as u64);
        }
        read
    }
}

impl Drop for ReadaheadControl<'_> {
    fn drop(&mut self) {
        for (i, folio) in self.folios.drain(..).enumerate() {
            self.mapping.remove(&folio, self.index + i as u64);
            folio_unlock(folio.page(), folio.pfn(), &FOLIO_WAIT);
        }
    }
}

/// The readahead limits of a file's device (Linux's `bdi` defaults: 128
/// KiB windows).
pub(super) fn ra_limits() -> RaLimits {
    RaLimits::default()
}

/// Brings in the pages of `req` that are not cached, marking `req.mark`
/// `PG_readahead` if this adds it (Linux `page_cache_ra_unbounded`): new
/// pages in a row go to the file system in batches, which it reads
/// without waiting where it can. A page that cannot be added, or a batch
/// the file system refuses, ends the request: readahead is a hint.
fn do_readahead(mapping: &Mapping, a_ops: &dyn AddressSpaceOperations, req: RaRequest) {
    let end = req.start.saturating_add(req.nr);
    let mut index = req.start;
    while index < end {
        if mapping.find_get(index).is_some() {
            index += 1;
            continue;
        }
        let Ok(mut rac) = ReadaheadControl::new(mapping, index) else { return };
        while index < end && !rac.is_full() && mapping.find_get(index).is_none() {
            let Ok(Ok(folio)) = mapping.add_new_locked(index, GFP_HIGHUSER_MOVABLE) else { break };
            if req.mark == Some(index) {
                folio.page().set(PageFlags::READAHEAD);
            }
            rac.push(folio);
            index += 1;
        }
        if rac.nr_pages() == 0 || a_ops.readahead(rac).is_err() {
            return;
        }
    }
}

/// Runs a readahead decision's requests, recording the decision in the
/// trace if one is on.
pub(super) fn run_readahead(mapping: &Mapping, a_ops: &dyn AddressSpaceOperations, ra: readahead::Readahead) {
    if let Some(trace) = RA_TRACE.lock().as_mut() {
        trace.record(&ra);
    }
    for req in ra.requests {
        do_readahead(mapping, a_ops, req);
    }
}

/// Readahead decisions kept by [`ra_trace_start`].
pub const RA_TRACE_EVENTS: usize = 64;

/// The readahead trace: every decision of every file while it is on
/// (Linux has no such tracepoint in 6.1; see [`mm::readahead`]).
static RA_TRACE: SpinLock<Option<RaTraceLog<RA_TRACE_EVENTS>>> = SpinLock::new(None);

/// Starts recording readahead decisions, forgetting earlier ones.
pub fn ra_trace_start() {
    *RA_TRACE.lock() = Some(RaTraceLog::new());
}

/// Stops recording and hands back what was recorded.
pub fn ra_trace_stop() -> Option<RaTraceLog<RA_TRACE_EVENTS>> {
    RA_TRACE.lock().take()
}

/// `POSIX_FADV_WILLNEED`, `readahead(2)` and `MADV_WILLNEED` over `len`
/// bytes from `offset` (0: to the end): starts reading the range's pages
/// that are not cached, in 2 MiB chunks, capped as Linux's
/// `force_page_cache_ra` caps it, and returns (on a device without
/// interrupts, once they are read). Errors are dropped: it is a hint.
pub fn force_page_cache_readahead(inode: &Inode, ra: &FileRaState, offset: u64, len: u64) {
    let Ok((mapping, a_ops)) = parts(inode) else { return };
    let ra_mapping =
        RaMapping { cache: &mapping.space, nr_pages: mapping.i_size().div_ceil(PAGE_SIZE), bdi: ra_limits() };
    run_readahead(mapping, a_ops, readahead::fadvise_willneed(ra, &ra_mapping, offset, len));
}
