//! The byte API's transfer buffer: a few contiguous pages the block layer
//! owns, so that [`super::bdev`] can serve any byte range without
//! lending caller memory to the device (Linux `block/bounce.c` bounces
//! for addressing limits; this one exists for sector alignment).

use mm::gfp::{GFP_NOIO, Gfp};
use mm::page_alloc::Pages;

use super::{Bio, BlkError, ReqOp, submit_bio_wait};
use crate::block::genhd::Gendisk;

/// Contiguous, direct-mapped pages owned by this value.
pub(super) struct BounceBuf {
    pages: Pages<'static, 'static>,
    len: usize,
}

impl BounceBuf {
    /// 2^`order` pages, allocated with `GFP_NOIO` (an I/O path must not
    /// recurse into I/O to reclaim memory).
    pub(super) fn new(order: u32) -> Result<BounceBuf, BlkError> {
        let pages = crate::mm::alloc_pages_owned(GFP_NOIO | Gfp::ZERO, order).ok_or(BlkError::NoMemory)?;
        Ok(BounceBuf { pages, len: (mm::PAGE_SIZE << order) as usize })
    }

    /// Bytes in the buffer.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn ptr(&self) -> *mut u8 {
        crate::mm::page_address(self.pages.pfn()).as_mut_ptr()
    }

    pub(super) fn as_slice(&self) -> &[u8] {
        // SAFETY: the pages are RAM in the direct map, owned by `self` and
        // zeroed at allocation; the device writes them only inside
        // `transfer`, which holds `&mut self`, so no shared borrow exists
        // then.
        unsafe { core::slice::from_raw_parts(self.ptr(), self.len) }
    }

    pub(super) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes this borrow the
        // only one.
        unsafe { core::slice::from_raw_parts_mut(self.ptr(), self.len) }
    }

    /// Reads or writes the first `bytes` of the buffer at `sector`, and
    /// sleeps until done.
    pub(super) fn transfer(
        &mut self,
        disk: &alloc::sync::Arc<Gendisk>,
        op: ReqOp,
        sector: u64,
        bytes: usize,
    ) -> Result<(), BlkError> {
        if bytes == 0 || bytes > self.len {
            return Err(BlkError::Invalid);
        }
        let mut bio = Bio::new(disk, op, sector);
        // SAFETY: the pages belong to `self`, which stays mutably borrowed
        // (so neither read, written nor freed by anyone else) until
        // submit_bio_wait returns, and it returns only after the bio has
        // completed.
        unsafe { bio.add_page(self.pages.pfn(), 0, bytes as u32) };
        submit_bio_wait(bio)
    }
}
