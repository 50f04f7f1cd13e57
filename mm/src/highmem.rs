//! Page copies and clears through the direct map (Linux
//! `include/linux/highmem.h`: `copy_highpage`, `clear_highpage`, and the
//! part-page `memcpy_from_page`, `memcpy_to_page`, `memzero_page` the page
//! cache copies file data with).
//!
//! Linux routes every whole-page access of a `struct page` through these
//! helpers so that one place knows how a frame is reached (`kmap_local_page`
//! on 32-bit highmem machines, the direct map on x86_64). Here every frame
//! the memory map describes is in the direct map ([`PhysMemory`]), so the
//! helpers are the raw copy and fill, written once for the allocator's
//! `__GFP_ZERO`, copy-on-write and page migration.
//!
//! # Differences from Linux
//! No highmem and no `kmap`: a frame outside the direct map is an arch bug,
//! returned as [`NotDirectMapped`] instead of mapped on demand. No
//! `arch_clear_page`/`copy_user_highpage` cache tricks (x86_64 uses plain
//! `rep stosb`/`rep movsb` in Linux too).
//!
//! [`PhysMemory`]: crate::arch::PhysMemory

use core::fmt;

use crate::addr::{PAGE_SIZE, Pfn};
use crate::page_alloc::{Pages, PgData};

/// A frame the direct map does not cover. The memory map only describes
/// frames the direct map covers, so this is an arch bug worth a loud
/// message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotDirectMapped(pub Pfn);

impl fmt::Display for NotDirectMapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pfn {:#x} has no direct-map address", self.0.as_u64())
    }
}

/// Zeroes the page `pfn` (Linux `clear_highpage`).
///
/// # Safety
/// The caller has the page to itself for the call: it owns it (a page just
/// allocated, say) and nothing else reads or writes it meanwhile, through
/// the direct map, a pte or a DMA engine.
#[doc(alias = "clear_highpage")]
pub unsafe fn clear_page(pgdat: &PgData<'_>, pfn: Pfn) -> Result<(), NotDirectMapped> {
    let virt = pgdat.page_address(pfn).ok_or(NotDirectMapped(pfn))?;
    // SAFETY: `PhysMemory` keeps `virt` mapped read-write for 4096 bytes for
    // the implementor's lifetime; the caller guarantees no concurrent access.
    unsafe { core::ptr::write_bytes(virt.as_mut_ptr::<u8>(), 0, PAGE_SIZE as usize) };
    Ok(())
}

/// Copies the page `src` into the page `dst` (Linux `copy_highpage`).
/// Nothing is written if either page is outside the direct map.
///
/// # Safety
/// `dst` and `src` are distinct pages; the caller has `dst` to itself for
/// the call (as for [`clear_page`]) and nothing writes `src` meanwhile
/// (it is mapped read-only, or unmapped and flushed, or under a lock every
/// writer takes).
#[doc(alias = "copy_highpage")]
pub unsafe fn copy_page(pgdat: &PgData<'_>, dst: Pfn, src: Pfn) -> Result<(), NotDirectMapped> {
    debug_assert_ne!(dst, src, "copy_page onto itself");
    let from = pgdat.page_address(src).ok_or(NotDirectMapped(src))?;
    let to = pgdat.page_address(dst).ok_or(NotDirectMapped(dst))?;
    // SAFETY: `PhysMemory` keeps both mapped read-write for 4096 bytes; the
    // pages are distinct frames, so the ranges do not overlap; the caller
    // guarantees nothing else writes either or reads `dst` during the copy.
    unsafe { core::ptr::copy_nonoverlapping(from.as_ptr::<u8>(), to.as_mut_ptr::<u8>(), PAGE_SIZE as usize) };
    Ok(())
}

/// Why a part-page copy was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageRangeError {
    /// The frame has no direct-map address.
    NotDirectMapped(Pfn),
    /// `offset + len` runs past the page.
    OutOfPage,
}

/// The direct-map address of byte `offset` of `pfn`, with `len` bytes
/// inside the page.
fn page_range(pgdat: &PgData<'_>, pfn: Pfn, offset: usize, len: usize) -> Result<*mut u8, PageRangeError> {
    match offset.checked_add(len) {
        Some(end) if end <= PAGE_SIZE as usize => {}
        _ => return Err(PageRangeError::OutOfPage),
    }
    let virt = pgdat.page_address(pfn).ok_or(PageRangeError::NotDirectMapped(pfn))?;
    Ok(virt.as_mut_ptr::<u8>().wrapping_add(offset))
}

/// Copies `dst.len()` bytes from byte `offset` of page `pfn` (Linux
/// `memcpy_from_page`). Nothing is copied if the range leaves the page.
///
/// # Safety
/// `pfn` is a page the caller holds a reference to that no Rust reference
/// points into (a page-cache or user page). Others may write it
/// meanwhile (a user mapping, say); the copy then sees some mix of old
/// and new bytes, as Linux's does.
pub unsafe fn memcpy_from_page(
    pgdat: &PgData<'_>,
    dst: &mut [u8],
    pfn: Pfn,
    offset: usize,
) -> Result<(), PageRangeError> {
    let from = page_range(pgdat, pfn, offset, dst.len())?;
    // SAFETY: `page_range` checked the bytes lie in the page, which
    // `PhysMemory` keeps mapped; `dst` is a distinct Rust buffer; the
    // caller's contract rules out Rust references into the page.
    unsafe { core::ptr::copy_nonoverlapping(from.cast_const(), dst.as_mut_ptr(), dst.len()) };
    Ok(())
}

/// Copies `src` to byte `offset` of page `pfn` (Linux `memcpy_to_page`).
/// Nothing is copied if the range leaves the page.
///
/// # Safety
/// As for [`memcpy_from_page`]; and the page's owner expects the write
/// (the caller holds its lock, or the page is newly allocated).
pub unsafe fn memcpy_to_page(pgdat: &PgData<'_>, pfn: Pfn, offset: usize, src: &[u8]) -> Result<(), PageRangeError> {
    let to = page_range(pgdat, pfn, offset, src.len())?;
    // SAFETY: as in `memcpy_from_page`, in the other direction.
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), to, src.len()) };
    Ok(())
}

/// Zeroes `len` bytes from byte `offset` of page `pfn` (Linux
/// `memzero_page`).
///
/// # Safety
/// As for [`memcpy_to_page`].
pub unsafe fn memzero_page(pgdat: &PgData<'_>, pfn: Pfn, offset: usize, len: usize) -> Result<(), PageRangeError> {
    let to = page_range(pgdat, pfn, offset, len)?;
    // SAFETY: as in `memcpy_to_page`.
    unsafe { core::ptr::write_bytes(to, 0, len) };
    Ok(())
}

/// Copies `src` into the block `page` owns, from byte `offset` on (Linux
/// `memcpy_to_page` on a block the caller owns); returns the bytes
/// copied, fewer than `src.len()` if the block ends first (Linux's
/// `VM_BUG_ON` of a copy past the page). Safe: the handle holds the block's only reference, so nothing else
/// maps it, and code that reached its memory through the direct map on
/// its own did so under `unsafe`, bound not to race the handle's owner
/// (see [`Pages`]).
pub fn memcpy_to_owned(page: &mut Pages<'_, '_>, offset: usize, src: &[u8]) -> Result<usize, NotDirectMapped> {
    let size = (PAGE_SIZE as usize) << page.order();
    let n = src.len().min(size.saturating_sub(offset));
    if n == 0 {
        return Ok(0);
    }
    let virt = page.pgdat().page_address(page.pfn()).ok_or(NotDirectMapped(page.pfn()))?;
    // SAFETY: `PhysMemory` keeps the block's `size` bytes mapped
    // read-write, and `offset + n <= size`; the `&mut` handle owns the
    // block's only reference (see above), so nothing else reads or writes
    // it, and `src`, memory the caller can read, is not part of it.
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), virt.as_mut_ptr::<u8>().add(offset), n) };
    Ok(n)
}

#[cfg(test)]
mod tests;
