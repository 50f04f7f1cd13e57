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
//!   munmap, exit, `MADV_DONTNEED` and the OOM reaper clear it and count
//!   one fewer ([`SwapBackend::free_swap_and_cache`]); mremap moves it;
//!   the address space's `MM_SWAPENTS`
//!   ([`crate::mmap::MmCounter::SwapEnts`]) counts them, for `VmSwap` and
//!   the OOM killer's badness; `NR_SWAPCACHE` counts the swap cache
//!   (`SwapCached` in /proc/meminfo).
//!
//! Differences from Linux: the swap-in path does not lock the page (see
//! `do_swap_page`); no readahead; a swap-cache page whose slot no pte
//! holds any more stays until reclaim takes it (Linux's
//! `free_swap_and_cache` tries to free it at once); a write fault on a
//! page still shared through the swap cache copies it; the kernel
//! registers no swap areas yet, so only host tests swap. (Shmem pages
//! use these paths too, their entries kept in their files' indexes: see
//! [`crate::shmem`].)

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
/// caller's. False, changing nothing, if the page is not in it.
pub fn delete_from_swap_cache(pgdat: &PgData<'_>, backend: &dyn SwapBackend, pfn: Pfn, page: &Page) -> bool {
    let Some(entry) = folio_swap_entry(page) else { return false };
    if !backend.swap_cache_delete(entry, pfn) {
        return false;
    }
    page.clear(PageFlags::SWAPCACHE);
    page.set_private(0);
    pgdat.mod_node_page_state(NodeStatItem::NrSwapcache, -1);
    backend.put_swap_folio(entry);
    true
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
/// (`PG_reclaim`); on failure it is dirty again and stays (Linux keeps
/// the page and retries later). Runs in interrupt context.
pub fn end_swap_writeback(
    pgdat: &PgData<'_>,
    pfn: Pfn,
    result: Result<(), SwapIoError>,
    waits: &dyn crate::arch::FolioWaitTable,
) {
    let Some(page) = pgdat.pfn_to_page(pfn) else { return };
    if result.is_err() {
        page.set(PageFlags::DIRTY);
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
pub(crate) mod tests;
