//! Swap: anonymous pages written to swap slots and read back (Linux
//! `mm/swap_state.c`, the swap half of `mm/vmscan.c` and `mm/memory.c`'s
//! `do_swap_page`, and the pte half of `mm/swapfile.c`'s
//! `swap_duplicate`/`free_swap_and_cache`), against the kernel's swap
//! areas ([`SwapBackend`], registered with [`PgData::set_swap_backend`]):
//! their slot counts, the swap cache's index and the I/O.
//!
//! - Swap-out, in reclaim ([`crate::vmscan`]): an anonymous page not used
//!   since the last look gets a slot and joins the swap cache
//!   ([`add_to_swap`]: `PG_swapcache`, the entry in `private`, a
//!   reference of the cache's, dirty); `try_to_unmap` puts the entry in
//!   each pte, one count per pte; the page is written
//!   ([`swap_pageout`]) and, clean and unmapped, leaves the swap cache
//!   and is freed ([`delete_from_swap_cache`]).
//! - Swap-in, at a fault on the entry (`do_swap_page` in
//!   [`crate::memory`]): the swap cache's page, or a new page read from
//!   the slot ([`swapin_folio`]) after taking the slot's cache hold
//!   (`swapcache_prepare`); the pte's count goes, and once no pte holds
//!   the slot the page leaves the swap cache and the slot is freed.
//! - A pte holding a swap entry: fork copies it and counts one more
//!   ([`SwapBackend::swap_duplicate`], Linux `copy_nonpresent_pte`);
//!   munmap, exit, `MADV_DONTNEED`, `MADV_FREE` and the OOM reaper clear
//!   it and count one fewer ([`SwapBackend::free_swap_and_cache`]);
//!   mremap moves it; the address space's `MM_SWAPENTS`
//!   ([`crate::mmap::MmCounter::SwapEnts`]) counts them, for `VmSwap` and
//!   the OOM killer's badness; `NR_SWAPCACHE` counts the swap cache
//!   (`SwapCached` in /proc/meminfo).
//!
//! # I/O errors
//!
//! - **A failed write** ([`end_swap_writeback`] with an error) leaves the
//!   page in memory, dirty, in the swap cache under its entry, and sets
//!   `PG_error` on it: the slot holds nothing good, so it must never be
//!   read, and never be used again. The ptes that `try_to_unmap` gave the
//!   entry still name it, and the page is the only copy of their data, so
//!   the page cannot move to another slot while any of them is left
//!   (there is no reverse map from a slot to its ptes). Hence, while a
//!   pte holds the slot, reclaim keeps the page (activates it: it is
//!   neither written again nor freed, and `try_to_unmap` is not run, so
//!   no further pte gets the entry) and faults on those ptes find it in
//!   the swap cache, as they would during writeback. Once no pte holds
//!   the slot (the ptes faulted the page back, were zapped, or swapoff
//!   brought the page in), the page leaves the swap cache and the slot
//!   becomes bad ([`delete_from_swap_cache`] ->
//!   [`SwapBackend::put_swap_folio_bad`]: `SWAP_MAP_BAD`, out of the
//!   area's slots as the header's bad pages are, until the next swapon
//!   reads the header afresh). Reclaim does that itself for a page whose
//!   slot no pte holds and then gives it a new slot at once. No pte ever
//!   names a bad slot, and the data never exists only in a bad slot.
//!   Linux (since 6.9, without `PG_error`) re-dirties the page and writes
//!   the same slot again at the next reclaim; kernels up to 5.x also set
//!   `PG_error`, which nothing read for swap.
//! - **A failed read** (at a fault, [`swapin_folio`] ->
//!   [`SwapinError::Io`]) gives the new page and the slot's cache hold
//!   back and fails the fault with `SIGBUS` for the faulting task alone,
//!   as Linux's `do_swap_page` does with a page that is not uptodate. The
//!   pte keeps its entry and its count: another task sharing the slot
//!   (fork) tries the read again at its own fault, and the slot is freed
//!   with its last pte (at the task's exit). swapoff, which must empty
//!   the area, puts a poisoned entry in the pte instead and frees the
//!   slot (Linux `unuse_pte` with `make_poisoned_swp_entry`): the task
//!   gets `SIGBUS` at its next touch of the page, never other data.
//!
//! Differences from Linux: the swap-in path does not lock the page (see
//! `do_swap_page`); no readahead; a swap-cache page whose slot no pte
//! holds any more stays until reclaim takes it (Linux's
//! `free_swap_and_cache` tries to free it at once); a write fault on a
//! page still shared through the swap cache copies it; shmem pages do
//! not go to swap; a failed write marks the slot bad (above).

// Its tests copy pages in and out of the model's slots (unsafe calls);
// the module itself has no reason for unsafe.
#![cfg_attr(not(test), forbid(unsafe_code))]

use crate::addr::Pfn;
use crate::page::Page;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::swapops::{MAX_SWAPFILES, SwpEntry};
use crate::vmstat::NodeStatItem;

/// Why a swap entry could not be counted once more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapDupError {
    /// No area, or no slot in use, at that entry (a corrupt pte).
    BadEntry,
    /// The count needs a continuation page and none could be had.
    NoMemory,
}

/// Why a swap cache could not take a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapCacheError {
    /// A page is there already.
    Exists,
    /// No memory for the index's nodes.
    NoMemory,
}

/// A swap slot's I/O failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapIoError;

/// Why a swap write did not reach its slot ([`end_swap_writeback`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapWriteError {
    /// The device failed it: the slot is not to be trusted again.
    Io,
    /// It never reached the device (no memory for the request): the page
    /// is written again later, to the same slot, as Linux does.
    NotIssued,
}

/// The kernel's swap areas (Linux's `swap_info[]` entry points, the swap
/// cache's index and `page_io.c`). The count methods are called with
/// page-table and mmap locks held and must not sleep; the I/O ones may.
pub trait SwapBackend: Sync {
    /// One more pte holds `entry` (Linux `swap_duplicate`).
    fn swap_duplicate(&self, entry: SwpEntry) -> Result<(), SwapDupError>;

    /// One pte fewer holds `entry` (Linux `free_swap_and_cache`): the
    /// slot is freed with its last reference.
    fn free_swap_and_cache(&self, entry: SwpEntry);

    /// A free slot for a page going to swap, held by the swap cache
    /// (`SWAP_HAS_CACHE`; Linux `folio_alloc_swap`), or none.
    fn get_swap_page(&self) -> Option<SwpEntry>;

    /// Drops the swap cache's hold on `entry` (Linux `put_swap_folio`,
    /// `swapcache_clear`): the slot is freed if no pte holds it.
    fn put_swap_folio(&self, entry: SwpEntry);

    /// Drops the swap cache's hold on `entry`, whose write failed and
    /// which no pte holds, and marks the slot bad for the area's life
    /// (`SWAP_MAP_BAD`; see the module's I/O errors). No Linux
    /// counterpart: Linux writes the slot again.
    fn put_swap_folio_bad(&self, entry: SwpEntry);

    /// The ptes holding `entry` (Linux `__swap_count`).
    fn swap_count(&self, entry: SwpEntry) -> u32;

    /// Free slots of the areas open to allocation (Linux
    /// `get_nr_swap_pages`): reclaim scans anonymous pages only while
    /// there are some.
    fn nr_swap_pages(&self) -> u64;

    /// Takes the swap cache's hold on an in-use slot before a page is
    /// read into it (Linux `swapcache_prepare`): `Exists` if someone holds
    /// it already (the page is in the cache, or being read).
    fn swapcache_prepare(&self, entry: SwpEntry) -> Result<(), SwapCacheError>;

    /// Puts `pfn` in the swap cache at `entry` (the index half of Linux
    /// `add_to_swap_cache`).
    fn swap_cache_add(&self, entry: SwpEntry, pfn: Pfn) -> Result<(), SwapCacheError>;

    /// The page the swap cache holds at `entry` (Linux
    /// `swap_cache_get_folio`'s lookup), without a reference.
    fn swap_cache_lookup(&self, entry: SwpEntry) -> Option<Pfn>;

    /// Takes `pfn` out of the swap cache at `entry` if it is there
    /// (Linux `__delete_from_swap_cache`); whether it was.
    fn swap_cache_delete(&self, entry: SwpEntry, pfn: Pfn) -> bool;

    /// Starts writing `pfn` to its slot (Linux `swap_writepage`): the
    /// page is locked and under writeback; the completion calls
    /// [`end_swap_writeback`].
    fn swap_writepage(&self, pgdat: &PgData<'_>, entry: SwpEntry, pfn: Pfn) -> Result<(), SwapIoError>;

    /// Reads the slot into `pfn` and waits (Linux `swap_read_folio` with
    /// `synchronous`). May sleep.
    fn swap_read_folio(&self, pgdat: &PgData<'_>, entry: SwpEntry, pfn: Pfn) -> Result<(), SwapIoError>;
}

/// A swap entry as one word (Linux `swp_entry_t.val`): what a swap-cache
/// page keeps in `private` (Linux `folio->swap`).
const fn swp_entry_to_raw(entry: SwpEntry) -> u64 {
    ((entry.ty() as u64) << SWP_TYPE_SHIFT) | entry.offset()
}

/// Bit of the type in [`swp_entry_to_raw`]: offsets stay below it.
const SWP_TYPE_SHIFT: u32 = 58;

/// The swap entry a swap-cache page holds (Linux `folio->swap`), if it
/// is in the swap cache.
pub fn folio_swap_entry(page: &Page) -> Option<SwpEntry> {
    if !page.test(PageFlags::SWAPCACHE) {
        return None;
    }
    let raw = page.private();
    Some(SwpEntry::new((raw >> SWP_TYPE_SHIFT) as u32, raw & ((1 << SWP_TYPE_SHIFT) - 1)))
}

/// Gives the locked anonymous page `pfn` a swap slot and puts it in the
/// swap cache, dirty (Linux `add_to_swap` / `folio_alloc_swap` +
/// `add_to_swap_cache`): the cache holds a reference of its own, and the
/// page, under `PG_swapcache`, names its entry. `None` if there is no
/// free slot or no room in the index; nothing changed then.
pub fn add_to_swap(pgdat: &PgData<'_>, backend: &dyn SwapBackend, pfn: Pfn, page: &Page) -> Option<SwpEntry> {
    let entry = backend.get_swap_page()?;
    if backend.swap_cache_add(entry, pfn).is_err() {
        backend.put_swap_folio(entry);
        return None;
    }
    page.get();
    page.set_private(swp_entry_to_raw(entry));
    page.set(PageFlags::SWAPCACHE);
    // Linux `folio_mark_dirty`: the slot has nothing yet.
    page.set(PageFlags::DIRTY);
    pgdat.mod_node_page_state(NodeStatItem::NrSwapcache, 1);
    Some(entry)
}

/// Why a swap-in failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapinError {
    /// The slot could not be read.
    Io,
    /// No room in the swap cache's index.
    NoMemory,
}

/// Reads the slot `entry` into the new page `pfn`, whose slot hold the
/// caller took ([`SwapBackend::swapcache_prepare`]), and puts it in the
/// swap cache with a reference of the cache's (Linux
/// `__read_swap_cache_async` + `swap_read_folio`). On failure the hold
/// goes back and the page is the caller's to free, found by no one.
pub fn swapin_folio(
    pgdat: &PgData<'_>,
    backend: &dyn SwapBackend,
    entry: SwpEntry,
    pfn: Pfn,
) -> Result<(), SwapinError> {
    let Some(page) = pgdat.pfn_to_page(pfn) else {
        backend.put_swap_folio(entry);
        return Err(SwapinError::NoMemory);
    };
    if backend.swap_read_folio(pgdat, entry, pfn).is_err() {
        backend.put_swap_folio(entry);
        return Err(SwapinError::Io);
    }
    if backend.swap_cache_add(entry, pfn).is_err() {
        backend.put_swap_folio(entry);
        return Err(SwapinError::NoMemory);
    }
    page.get();
    page.set_private(swp_entry_to_raw(entry));
    page.set(PageFlags::SWAPCACHE);
    pgdat.mod_node_page_state(NodeStatItem::NrSwapcache, 1);
    Ok(())
}

/// Takes the page `pfn` out of the swap cache and gives its slot the
/// cache's hold back (reclaim holds the page's lock; a swap-in, the
/// page-table lock of the only pte mapping it) (Linux `delete_from_swap_cache`, or
/// `__remove_mapping`'s swap half); the cache's reference is the
/// caller's. A slot whose write failed (`PG_error`, which no pte may
/// hold by then) is marked bad rather than freed. False, changing
/// nothing, if the page is not in it.
pub fn delete_from_swap_cache(pgdat: &PgData<'_>, backend: &dyn SwapBackend, pfn: Pfn, page: &Page) -> bool {
    let Some(entry) = folio_swap_entry(page) else { return false };
    if !backend.swap_cache_delete(entry, pfn) {
        return false;
    }
    page.clear(PageFlags::SWAPCACHE);
    page.set_private(0);
    pgdat.mod_node_page_state(NodeStatItem::NrSwapcache, -1);
    if page.test_and_clear(PageFlags::ERROR) {
        backend.put_swap_folio_bad(entry);
    } else {
        backend.put_swap_folio(entry);
    }
    true
}

/// Whether the swap-cache page's slot failed its write (`PG_error`).
pub fn folio_swap_write_failed(page: &Page) -> bool {
    page.test(PageFlags::SWAPCACHE) && page.test(PageFlags::ERROR)
}

/// Takes the page `pfn` out of the swap cache if nothing needs it there
/// any more (Linux `free_swap_cache` -> `folio_free_swap`): unmapped, not
/// under writeback, no pte holding its slot, and no reference on it but
/// the cache's and the caller's `held` (the caller's included); the
/// cache's reference goes, the caller's stays. Without the page lock
/// (Linux tries it): the reference count rules out anyone else at work
/// on the page, reclaim included, which holds one while it decides.
pub fn free_swap_cache(pgdat: &PgData<'_>, backend: &dyn SwapBackend, pfn: Pfn, held: i32) {
    let Some(page) = pgdat.pfn_to_page(pfn) else { return };
    let Some(entry) = folio_swap_entry(page) else { return };
    let unused = page.mapcount() <= 0
        && !page.test(PageFlags::WRITEBACK)
        && page.refcount() == held
        && backend.swap_count(entry) == 0;
    if unused && delete_from_swap_cache(pgdat, backend, pfn, page) {
        let last = page.put_testzero();
        debug_assert!(!last, "the swap cache held the last reference");
    }
}

/// A swap write finished (Linux `end_swap_bio_write` ->
/// `folio_end_writeback`): on success the page leaves writeback, going
/// to the cold end of its inactive list if reclaim asked
/// (`PG_reclaim`); on failure it is dirty again and stays; a device
/// error gives it `PG_error`, so that its slot is never read nor used again (see the
/// module's I/O errors; Linux keeps the page and writes the slot again
/// later). Runs in interrupt context: the slot itself is marked bad
/// later, in process context, when the page leaves the swap cache.
pub fn end_swap_writeback(
    pgdat: &PgData<'_>,
    pfn: Pfn,
    result: Result<(), SwapWriteError>,
    waits: &dyn crate::arch::FolioWaitTable,
) {
    let Some(page) = pgdat.pfn_to_page(pfn) else { return };
    if let Err(e) = result {
        page.set(PageFlags::DIRTY);
        // Writeback keeps the page in the swap cache (nothing takes a
        // page under writeback out), so `PG_error` reaches its slot.
        if e == SwapWriteError::Io && page.test(PageFlags::SWAPCACHE) {
            page.set(PageFlags::ERROR);
        }
        page.clear(PageFlags::RECLAIM);
    }
    if !page.test_and_clear(PageFlags::WRITEBACK) {
        return;
    }
    pgdat.mod_node_page_state(NodeStatItem::NrWriteback, -1);
    if page.test_and_clear(PageFlags::RECLAIM) {
        pgdat.folio_rotate_reclaimable(pfn);
    }
    waits.wake_up(pfn);
}

/// Writes the locked, dirty swap-cache page `pfn` out (Linux `pageout`
/// for an anonymous page): clean and under writeback until
/// [`end_swap_writeback`]. False if the write could not start (the page
/// stays dirty).
pub fn swap_pageout(pgdat: &PgData<'_>, backend: &dyn SwapBackend, pfn: Pfn, page: &Page) -> bool {
    let Some(entry) = folio_swap_entry(page) else { return false };
    if !page.test_and_clear(PageFlags::DIRTY) {
        return true;
    }
    page.set(PageFlags::WRITEBACK);
    pgdat.mod_node_page_state(NodeStatItem::NrWriteback, 1);
    if backend.swap_writepage(pgdat, entry, pfn).is_err() {
        page.clear(PageFlags::WRITEBACK);
        pgdat.mod_node_page_state(NodeStatItem::NrWriteback, -1);
        page.set(PageFlags::DIRTY);
        return false;
    }
    true
}

/// Whether `entry` names a swap area's slot (not a migration entry).
pub const fn is_swap_entry(entry: SwpEntry) -> bool {
    entry.ty() < MAX_SWAPFILES
}

impl PgData<'_> {
    /// Registers the kernel's swap areas; the first registration stays.
    pub fn set_swap_backend(&self, backend: &'static dyn SwapBackend) {
        self.swap_backend_once().call_once(|| backend);
    }

    /// The registered swap areas, if any.
    pub fn swap_backend(&self) -> Option<&'static dyn SwapBackend> {
        self.swap_backend_once().get().copied()
    }
}

#[cfg(test)]
mod tests;
