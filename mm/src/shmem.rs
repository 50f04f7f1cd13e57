//! Shared anonymous memory's object (Linux `mm/shmem.c`'s
//! `shmem_zero_setup`, the one part of shmem the mm calls itself).
//!
//! A `MAP_SHARED | MAP_ANONYMOUS` mapping is, as in Linux, a mapping of
//! an unlinked shmem file exactly as long as the mapping (it shows as
//! `/dev/zero (deleted)` in `/proc/PID/maps`), which
//! [`MmStruct::do_mmap`](crate::mmap::MmStruct::do_mmap) asks a
//! [`ShmemZeroSetup`] for when it creates the VMA. From there on the
//! mapping is an ordinary shared file mapping ([`crate::memory`]): its
//! pages are the file's page-cache pages, allocated at the first touch,
//! shared with every VMA that maps the file (fork children, `mremap`
//! copies and moves), counted in the address space's
//! [`MmCounter::ShmemPages`](crate::mmap::MmCounter::ShmemPages), and
//! freed with the file when its last VMA goes. `MADV_DONTNEED` drops the
//! ptes and the next touch finds the file's page again; `MADV_REMOVE`
//! frees the pages themselves ([`VmaFile::punch_hole`]). A page past the
//! file's end, which a mapping grown by `mremap` has, is `SIGBUS`, as on
//! Linux.
//!
//! The file is the kernel's (tmpfs's page cache, `kernel/src/shmem.rs`);
//! host tests give a simulated one. The page cache side of shmem
//! (swapbacked pages, never written back) is [`crate::filemap`]'s,
//! [`crate::page_writeback`]'s and [`crate::vmscan`]'s.
//!
//! # Swap (Linux `shmem_writeout`, `shmem_swapin_folio`, `shmem_free_swap`)
//!
//! A shmem page's data goes to swap as an anonymous page's does, but the
//! swap entry that remembers where stays in the file's index, not in
//! ptes (see "Swap entries" in [`crate::filemap`]):
//! - **out** ([`shmem_writeout`], from reclaim's `pageout` of a dirty
//!   shmem page it unmapped, [`crate::vmscan`]): the page gets a slot and
//!   joins the swap cache ([`add_to_swap`]), the slot one count for the
//!   index (Linux `swap_shmem_alloc`), and the file's index trades the
//!   page for the entry
//!   ([`AddressSpace::shmem_delete_from_page_cache`](crate::filemap::AddressSpace::shmem_delete_from_page_cache)):
//!   from then on the page is a swap-cache page like an anonymous one,
//!   written by reclaim's swap pageout and freed once clean. No slot
//!   (swap full or off): the page stays, dirty, and is activated.
//! - **in** ([`shmem_swapin_folio`], for every lookup that finds the
//!   entry: fault, read, write, truncation's partial page, swapoff): the
//!   swap cache's page, or a new one read from the slot; under the page's
//!   lock, once its write is done, the index trades the entry back for
//!   the page
//!   ([`AddressSpace::shmem_add_to_page_cache`](crate::filemap::AddressSpace::shmem_add_to_page_cache)),
//!   the page leaves the swap cache and the index's count of the slot is
//!   freed. The page lock and the index's compare-and-swap under its lock
//!   serialize two lookups of one index: the loser finds the page in the
//!   index when it looks again.
//! - **gone** ([`shmem_free_swap`]): truncation, hole punching and the
//!   file's end take the entries of their range out of the index and free
//!   the slots, dropping a swap-cache page nothing needs any more.
//!
//! Locks: page lock -> the file's index lock (each of the swap areas',
//! the swap cache's and the LRU's locks is taken on its own, never under
//! the index lock).

// The page references a swap-in drops, and its tests' simulated files,
// need `put_page` (an unsafe call); each use says why it is sound.
#![deny(unsafe_code)]

use uapi::errno::Errno;

use crate::addr::Pfn;
use crate::arch::FolioWaitTable;
use crate::filemap::{folio_lock, folio_unlock, folio_wait_writeback};
use crate::gfp::Gfp;
use crate::page::Page;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::swap_state::{
    SwapBackend, SwapinError, add_to_swap, delete_from_swap_cache, folio_swap_entry, free_swap_cache,
    read_swap_cache_async,
};
use crate::swapops::SwpEntry;
use crate::vma::VmaFile;

/// Where shared anonymous memory gets its file (Linux
/// `shmem_zero_setup`). An address space holds one for its life
/// ([`MmStruct::new`](crate::mmap::MmStruct::new)).
pub trait ShmemZeroSetup: Sync {
    /// A new, empty shmem file of `size` bytes (every page reads as
    /// zeros), with one reference for the caller, who drops it with
    /// [`VmaFile::put_file`] once the VMA took its own (Linux
    /// `shmem_kernel_file_setup("dev/zero", size, ...)`).
    ///
    /// Errors: `ENOMEM` without memory for the file.
    fn shmem_zero_setup(&self, size: u64) -> Result<&'static dyn VmaFile, Errno>;
}

/// The references a shmem page holds when reclaim trades it for its swap
/// entry: the page cache's, the swap cache's ([`add_to_swap`]) and
/// reclaim's isolation. One more is a lookup that found the page and is
/// about to map or copy it.
pub const SHMEM_WRITEOUT_REFS: i32 = 3;

/// Why [`shmem_writeout`] left a page in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteoutError {
    /// No free slot, or none that could be counted (Linux's `redirty`:
    /// the page is activated).
    NoSwap,
    /// Someone took a reference to the page, or the file let go of it,
    /// meanwhile: it stays for another look.
    Busy,
}

/// Sends the locked, dirty, unmapped shmem page `pfn` (`page`) to swap
/// (Linux `shmem_writeout` up to its `swap_writeout`): a slot and a place
/// in the swap cache ([`add_to_swap`]), one count of the slot for the
/// file's index (Linux `swap_shmem_alloc`), and `delete_from_page_cache`
/// (the page's file under its index lock:
/// [`AddressSpace::shmem_delete_from_page_cache`](crate::filemap::AddressSpace::shmem_delete_from_page_cache)
/// with [`SHMEM_WRITEOUT_REFS`]) trades the page for the entry. The page
/// is then a dirty swap-cache page in no file, for the caller to write
/// ([`crate::swap_state::swap_pageout`]). On failure nothing changed: the
/// slot is free again and the page is still the file's.
pub fn shmem_writeout(
    pgdat: &PgData<'_>,
    backend: &dyn SwapBackend,
    pfn: Pfn,
    page: &Page,
    delete_from_page_cache: impl FnOnce(SwpEntry) -> bool,
) -> Result<SwpEntry, WriteoutError> {
    let entry = add_to_swap(pgdat, backend, pfn, page).ok_or(WriteoutError::NoSwap)?;
    let undo = |counted: bool| {
        if counted {
            backend.free_swap_and_cache(entry);
        }
        if delete_from_swap_cache(pgdat, backend, pfn, page) {
            // The swap cache's reference, taken by `add_to_swap`.
            let last = page.put_testzero();
            debug_assert!(!last, "the page cache still holds the page");
        }
        page.set(PageFlags::DIRTY);
    };
    if backend.swap_duplicate(entry).is_err() {
        undo(false);
        return Err(WriteoutError::NoSwap);
    }
    if !delete_from_page_cache(entry) {
        undo(true);
        return Err(WriteoutError::Busy);
    }
    Ok(entry)
}

/// What [`shmem_swapin_folio`] came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShmemSwapin {
    /// The page is back at its index, uptodate and dirty, unlocked, with a
    /// reference for the caller.
    Done(Pfn),
    /// The index no longer holds the entry (another lookup brought the
    /// page back, or truncation took the entry), or another task holds
    /// the slot for a read of its own: the caller looks at the index
    /// again, after letting that task run.
    Retry,
}

/// Brings the shmem page whose swap entry `entry` a file's index holds
/// back into that index (Linux `shmem_swapin_folio`): the swap cache's
/// page, or a new one allocated with `gfp` and read from the slot
/// ([`read_swap_cache_async`]: it joins the swap cache locked and the
/// LRU, its read started), locked (which waits for its read) and after
/// its write; then `add_to_page_cache` (the file's index lock:
/// [`AddressSpace::shmem_add_to_page_cache`](crate::filemap::AddressSpace::shmem_add_to_page_cache))
/// puts the page back in the entry's place; the page leaves the swap
/// cache, is marked dirty (the slot will not keep its data) and the
/// index's count of the slot is freed (Linux `swap_free`). Sleeps.
///
/// Errors: the slot could not be read ([`SwapinError::Io`]; the entry
/// stays, the data in the slot), no memory for the page or the swap
/// cache's index ([`SwapinError::NoMemory`]).
pub fn shmem_swapin_folio(
    pgdat: &PgData<'_>,
    backend: &dyn SwapBackend,
    waits: &dyn FolioWaitTable,
    entry: SwpEntry,
    gfp: Gfp,
    add_to_page_cache: impl FnOnce(Pfn) -> bool,
) -> Result<ShmemSwapin, SwapinError> {
    // Drops our reference.
    let put = |pfn: Pfn| {
        // SAFETY: a reference this call took; if it is the last, the page
        // is in no cache and no pte (a shmem swap-cache page is never
        // mapped), so nothing points into it.
        #[allow(unsafe_code)]
        let _ = unsafe { pgdat.put_page(pfn) };
    };
    let pfn = match read_swap_cache_async(pgdat, backend, entry, gfp) {
        Ok(pfn) => pfn,
        // Another task is reading the slot, or its count is gone
        // (truncation took the entry): look again.
        Err(SwapinError::Raced | SwapinError::Unused) => return Ok(ShmemSwapin::Retry),
        Err(e) => return Err(e),
    };
    let Some(page) = pgdat.pfn_to_page(pfn) else {
        put(pfn);
        return Err(SwapinError::NoMemory);
    };
    folio_lock(page, pfn, waits);
    if folio_swap_entry(page) != Some(entry) {
        // It left the swap cache meanwhile (another swap-in finished).
        folio_unlock(page, pfn, waits);
        put(pfn);
        return Ok(ShmemSwapin::Retry);
    }
    if !page.test(PageFlags::UPTODATE) {
        // The read failed (Linux `shmem_swapin_folio`'s `-EIO`): the
        // entry and the slot's data stay; reclaim takes the page.
        folio_unlock(page, pfn, waits);
        put(pfn);
        return Err(SwapinError::Io);
    }
    folio_wait_writeback(page, pfn, waits);
    if !add_to_page_cache(pfn) {
        folio_unlock(page, pfn, waits);
        // Truncation took the entry: the page goes, unless someone else
        // holds it too (then reclaim takes it later).
        free_swap_cache(pgdat, backend, pfn);
        put(pfn);
        return Ok(ShmemSwapin::Retry);
    }
    if delete_from_swap_cache(pgdat, backend, pfn, page) {
        // The swap cache's reference; the page cache holds its own.
        let last = page.put_testzero();
        debug_assert!(!last, "the page cache and the caller hold the page");
    }
    page.set(PageFlags::DIRTY);
    backend.free_swap_and_cache(entry);
    folio_unlock(page, pfn, waits);
    Ok(ShmemSwapin::Done(pfn))
}

/// Frees the slot count a shmem index's swap entry held, the entry taken
/// out of the index already (Linux `shmem_free_swap` ->
/// `free_swap_and_cache`): once no one counts the slot, its swap-cache
/// page, if unused and not under writeback, leaves the swap cache so
/// that the slot is free at once (Linux `__try_to_reclaim_swap`); a busy
/// one goes at reclaim's next look. Never sleeps.
pub fn shmem_free_swap(pgdat: &PgData<'_>, backend: &dyn SwapBackend, entry: SwpEntry) {
    backend.free_swap_and_cache(entry);
    if backend.swap_count(entry) != 0 {
        return;
    }
    let Some(pfn) = backend.swap_cache_lookup(entry) else { return };
    let Some(page) = pgdat.pfn_to_page(pfn).filter(|p| p.try_get()) else { return };
    if folio_swap_entry(page) == Some(entry) {
        // Unless its lock is taken (someone at work on it: reclaim
        // takes it later).
        free_swap_cache(pgdat, backend, pfn);
    }
    // SAFETY: the reference taken above; a page it was the last of is in
    // no cache and no pte.
    #[allow(unsafe_code)]
    let _ = unsafe { pgdat.put_page(pfn) };
}

#[cfg(test)]
mod swap_tests;
#[cfg(test)]
pub(crate) mod tests;
