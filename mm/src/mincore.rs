//! The mincore system call (Linux `mm/mincore.c`): which pages of a range
//! are resident, one byte per page.
//!
//! The vector is produced in chunks of at most [`MINCORE_CHUNK`] bytes
//! ([`MmStruct::mincore_chunk`]), which the caller copies to user memory
//! between taking the address-space lock, as Linux fills a temporary page
//! under `mmap_read_lock` and `copy_to_user`s it after dropping the lock:
//! no allocation whatever the length.
//!
//! A page is resident if a pte maps it, the shared zero page and
//! `PROT_NONE` pages included, or a migration entry stands for it (Linux
//! `mincore_pte_range`). Where no pte maps a page of a file VMA, the
//! file's page cache answers: resident if the page is cached and uptodate
//! ([`crate::vma::VmaFile::mincore_page`], Linux `mincore_unmapped_range`
//! -> `mincore_page`), so a file read ahead or read with `read(2)` shows
//! up before it is touched, and one dropped from the cache does not. A
//! swapped-out page (a swap entry in its pte) is resident while the swap
//! cache holds it (Linux `mincore_swap`), else not.
//!
//! Checks in Linux's order: the start's alignment (`EINVAL`), the range in
//! user space (`ENOMEM`), the vector in user space (`EFAULT`, Linux's
//! `access_ok`), then the VMAs (`ENOMEM` at the first hole) and the copies
//! (`EFAULT` from the callback). So a vector that is a user address but
//! unmapped, over an unmapped range, gives `ENOMEM`, and a kernel or
//! non-canonical vector gives `EFAULT`, as on Linux.

#![forbid(unsafe_code)]

use uapi::errno::Errno;

use crate::addr::PAGE_SHIFT;
use crate::memory::PteState;
use crate::mmap::{MmStruct, TASK_SIZE};
use crate::pgtable::PteFormat;
use crate::uaddr::{RangeError, UserRange};
use crate::vma::VmaAlloc;

/// Where [`MmStruct::mincore`] hands the vector: `(index, bytes)` for the
/// entries of pages `index..index + bytes.len()`.
pub type MincoreOut<'f> = dyn FnMut(usize, &[u8]) -> Result<(), Errno> + 'f;

/// Bytes of the vector produced per callback at most.
pub const MINCORE_CHUNK: usize = 256;

/// The mincore system call's argument checks, in Linux's order: the
/// range to report on, or the errno.
pub fn mincore_check(start: u64, len: u64, vec: u64) -> Result<UserRange, Errno> {
    let range = match UserRange::from_user(start, len) {
        Ok(r) => r,
        Err(RangeError::Unaligned) => return Err(Errno::EINVAL),
        // Linux `access_ok(start, len)`.
        Err(RangeError::LenWraps | RangeError::EndWraps | RangeError::BeyondTaskSize) => return Err(Errno::ENOMEM),
    };
    // Linux `access_ok` of the vector.
    if vec.checked_add(range.pages()).is_none_or(|e| e > TASK_SIZE) {
        return Err(Errno::EFAULT);
    }
    Ok(range)
}

impl<F: PteFormat, A: VmaAlloc> MmStruct<'_, F, A> {
    /// One chunk of the vector (Linux `do_mincore`): the entries of the
    /// first pages of `range`, at most [`MINCORE_CHUNK`] and within the
    /// VMA at its start, into `out`. Returns how many; `ENOMEM` if no VMA
    /// holds `range`'s start.
    pub fn mincore_chunk(&self, range: UserRange, out: &mut [u8; MINCORE_CHUNK]) -> Result<usize, Errno> {
        let (part, desc) = match self.vmas.vma_lookup(range.start().virt()) {
            Some(v) => (range.clip_virt(v.start(), v.end()), v.desc()),
            None => return Err(Errno::ENOMEM),
        };
        let n = part.pages().min(MINCORE_CHUNK as u64) as usize;
        for (byte, addr) in out[..n].iter_mut().zip(part.addrs()) {
            *byte = u8::from(match self.pte_state(addr) {
                PteState::Resident => true,
                PteState::None => desc.file.is_some_and(|file| {
                    let index = desc.pgoff + ((addr.as_u64() - desc.start.as_u64()) >> PAGE_SHIFT);
                    file.mincore_page(index)
                }),
                PteState::Other => false,
            });
        }
        Ok(n)
    }

    /// The mincore system call in one go, the lock held throughout
    /// (for tests; the kernel drops the lock between chunks): see
    /// [`mincore_check`] and [`mincore_loop`].
    pub fn mincore(&self, start: u64, len: u64, vec: u64, out: &mut MincoreOut<'_>) -> Result<(), Errno> {
        mincore_loop(mincore_check(start, len, vec)?, &mut |r, buf| self.mincore_chunk(r, buf), out)
    }
}

/// Fills a vector chunk for the start of a range: [`MmStruct::mincore_chunk`]
/// under whatever lock the caller takes.
pub type MincoreChunk<'f> = dyn FnMut(UserRange, &mut [u8; MINCORE_CHUNK]) -> Result<usize, Errno> + 'f;

/// The mincore system call's loop over `range` (from [`mincore_check`]):
/// `chunk` produces the entries of the next pages, `out(index, bytes)`
/// copies them to the vector, in order. An error from either ends the
/// call, the entries before it handed out.
pub fn mincore_loop(range: UserRange, chunk: &mut MincoreChunk<'_>, out: &mut MincoreOut<'_>) -> Result<(), Errno> {
    let mut at = range.start();
    let mut index = 0;
    let mut buf = [0u8; MINCORE_CHUNK];
    while at < range.end() {
        let n = chunk(range.from(at), &mut buf)?;
        if n == 0 {
            return Err(Errno::ENOMEM);
        }
        out(index, &buf[..n])?;
        index += n;
        at = at.checked_add((n as u64) << PAGE_SHIFT).ok_or(Errno::ENOMEM)?;
    }
    Ok(())
}
