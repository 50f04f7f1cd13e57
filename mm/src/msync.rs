//! The msync system call (Linux `mm/msync.c`): write a mapped range back
//! to its file.
//!
//! Nothing is ever dirty in a file yet (files are read-only, shared
//! writable mappings keep their data in anonymous pages), so after Linux's
//! argument checks and VMA walk there is nothing to write: the call reports
//! only `EINVAL`, `ENOMEM` for holes and `EBUSY` for `MS_INVALIDATE` of a
//! locked mapping, in Linux's order.

#![forbid(unsafe_code)]

use uapi::errno::Errno;
use uapi::mman::{MS_ASYNC, MS_INVALIDATE, MS_SYNC};

use crate::addr::PAGE_SIZE;
use crate::mmap::MmStruct;
use crate::pgtable::PteFormat;
use crate::vma::{VmaAlloc, VmaFlags};

impl<F: PteFormat, A: VmaAlloc> MmStruct<'_, F, A> {
    /// The msync system call (Linux `SYSCALL_DEFINE3(msync)`).
    pub fn msync(&self, start: u64, len: u64, flags: u32) -> Result<(), Errno> {
        if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0
            || start & (PAGE_SIZE - 1) != 0
            || (flags & MS_ASYNC != 0 && flags & MS_SYNC != 0)
        {
            return Err(Errno::EINVAL);
        }
        // Linux rounds with wrapping arithmetic: a length in the last page
        // becomes 0 and the range ends below its start.
        let len = len.wrapping_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        if end == start {
            return Ok(());
        }
        // Holes are skipped but reported at the end (at once for a plain
        // MS_ASYNC, whose answer would be ENOMEM anyway).
        let mut unmapped = false;
        let mut at = start;
        loop {
            let Some(vma) = self.find_vma_user(at) else { return Err(Errno::ENOMEM) };
            if at < vma.start().as_u64() {
                if flags == MS_ASYNC {
                    return Err(Errno::ENOMEM);
                }
                at = vma.start().as_u64();
                if at >= end {
                    return Err(Errno::ENOMEM);
                }
                unmapped = true;
            }
            if flags & MS_INVALIDATE != 0 && vma.flags().contains(VmaFlags::LOCKED) {
                return Err(Errno::EBUSY);
            }
            at = vma.end().as_u64();
            if at >= end {
                return if unmapped { Err(Errno::ENOMEM) } else { Ok(()) };
            }
        }
    }
}
