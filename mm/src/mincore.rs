//! The mincore system call (Linux `mm/mincore.c`): which pages of a range
//! are resident, one byte per page.
//!
//! The vector is produced in chunks of at most [`MINCORE_CHUNK`] bytes on
//! the stack, handed to a callback that copies them to user memory, as
//! Linux fills a temporary page and `copy_to_user`s it: no allocation, and
//! the mmap lock is the caller's to drop between chunks if it wants.
//!
//! A page is resident if a pte maps it, the shared zero page and
//! `PROT_NONE` pages included (Linux `mincore_pte_range`). A missing pte
//! reads 0: there is no page cache or swap cache to look in (Linux
//! `mincore_unmapped_range` would find cached file pages).
//!
//! Differences from Linux: the vector's `access_ok` check (`EFAULT`) is
//! the callback's to make when it copies the first chunk, so a bad vector
//! with an unmapped range reports `ENOMEM` rather than `EFAULT`.

#![forbid(unsafe_code)]

use uapi::errno::Errno;

use crate::addr::{PAGE_SHIFT, PAGE_SIZE};
use crate::mmap::{MmStruct, TASK_SIZE};
use crate::pgtable::PteFormat;
use crate::vma::VmaAlloc;

/// Where [`MmStruct::mincore`] hands the vector: `(index, bytes)` for the
/// entries of pages `index..index + bytes.len()`.
pub type MincoreOut<'f> = dyn FnMut(usize, &[u8]) -> Result<(), Errno> + 'f;

/// Bytes of the vector produced per callback at most.
pub const MINCORE_CHUNK: usize = 256;

impl<F: PteFormat, A: VmaAlloc> MmStruct<'_, F, A> {
    /// The mincore system call: calls `out(index, bytes)` with the vector
    /// entries for pages `index..index + bytes.len()` of
    /// `[start, start + len)`, in order, each byte 1 if the page is
    /// resident and 0 if not. An error from `out` (`EFAULT` for a bad
    /// vector) ends the call. `ENOMEM` if part of the range is unmapped,
    /// after the entries before the hole were handed out.
    pub fn mincore(&self, start: u64, len: u64, out: &mut MincoreOut<'_>) -> Result<(), Errno> {
        if start & (PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        // Linux `access_ok`: the range must be in user space.
        if start > TASK_SIZE || len > TASK_SIZE - start {
            return Err(Errno::ENOMEM);
        }
        let mut pages = (len >> PAGE_SHIFT) + u64::from(len & (PAGE_SIZE - 1) != 0);
        let mut addr = start;
        let mut index = 0;
        let mut chunk = [0u8; MINCORE_CHUNK];
        while pages > 0 {
            // Linux `do_mincore`: one VMA at a time.
            let vma_end = match self.find_vma_user(addr) {
                Some(v) if v.start().as_u64() <= addr => v.end().as_u64(),
                _ => return Err(Errno::ENOMEM),
            };
            let n = pages.min(MINCORE_CHUNK as u64).min((vma_end - addr) >> PAGE_SHIFT) as usize;
            for (i, byte) in chunk[..n].iter_mut().enumerate() {
                *byte = u8::from(self.page_resident(addr + ((i as u64) << PAGE_SHIFT)));
            }
            out(index, &chunk[..n])?;
            index += n;
            pages -= n as u64;
            addr += (n as u64) << PAGE_SHIFT;
        }
        Ok(())
    }
}
