//! The msync system call (Linux `mm/msync.c`): write a mapped range back
//! to its file.
//!
//! After Linux's argument checks, the range's VMAs are walked in address
//! order. For each part of a shared file mapping (`VM_SHARED` with a
//! file), `MS_ASYNC` and `MS_SYNC` first hand the dirtiness of its dirty
//! ptes to the file, write-protecting and cleaning them
//! (`MmStruct::mkclean_range`), and `MS_SYNC` then has the file write
//! the part's bytes back and wait ([`VmaFile::fsync_range`], Linux
//! `vfs_fsync_range`), whose error ends the call. Holes are `ENOMEM`
//! (at once for a plain `MS_ASYNC`, else at the end) and `MS_INVALIDATE`
//! of a locked mapping `EBUSY`, in Linux's order.
//!
//! Differences from Linux: Linux's `MS_ASYNC` does nothing, since the
//! pages of a shared mapping are marked dirty by `page_mkwrite` and their
//! ptes cleaned by writeback's `folio_mkclean`; we have no
//! `folio_mkclean` (see [`crate::memory`]), so both flags clean the ptes
//! here, which is what lets writeback see pages written again through a
//! pte that stayed writable. The mmap lock stays held across the
//! writeback (Linux drops it around `vfs_fsync_range`, holding a file
//! reference instead).

#![forbid(unsafe_code)]

use uapi::errno::Errno;
use uapi::mman::{MS_ASYNC, MS_INVALIDATE, MS_SYNC};

use crate::addr::PAGE_SIZE;
use crate::mmap::MmStruct;
use crate::pgtable::PteFormat;
use crate::uaddr::UserRange;
use crate::vma::{VmaAlloc, VmaFile, VmaFlags};

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
            let desc = vma.desc();
            if let Some(file) = desc.file
                && desc.flags.contains(VmaFlags::SHARED)
                && flags & (MS_ASYNC | MS_SYNC) != 0
            {
                // `at` is in the VMA, which is in user space.
                let part_end = end.min(desc.end.as_u64());
                if let Ok(part) = UserRange::from_user(at, part_end - at) {
                    self.mkclean_range(&desc, file, part);
                }
                if flags & MS_SYNC != 0 {
                    msync_fsync(file, desc.pgoff, at - desc.start.as_u64(), part_end - at)?;
                }
            }
            at = vma.end().as_u64();
            if at >= end {
                return if unmapped { Err(Errno::ENOMEM) } else { Ok(()) };
            }
        }
    }
}

/// Writes back `len` bytes from byte `offset` of a VMA mapping `file`
/// from page `pgoff` on (Linux msync's `fstart`/`fend` and
/// `vfs_fsync_range`). mmap checked the mapping's last byte fits in a
/// file offset (`file_mmap_ok`); saturating keeps a bug from wrapping.
fn msync_fsync(file: &dyn VmaFile, pgoff: u64, offset: u64, len: u64) -> Result<(), Errno> {
    let fstart = pgoff.saturating_mul(PAGE_SIZE).saturating_add(offset);
    file.fsync_range(fstart, fstart.saturating_add(len))
}
