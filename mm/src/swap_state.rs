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
//!   [`crate::memory`]): the swap cache's page ([`swap_cache_get_folio`]),
//!   or, through readahead ([`readahead`]), a new page put in the swap
//!   cache locked and not uptodate after taking the slot's cache hold
//!   (`swapcache_prepare`), on the LRU, its read started
//!   ([`read_swap_cache_async`]); the read's completion
//!   ([`end_swap_read`]) marks it uptodate, or not on an error, and
//!   unlocks it. The fault locks the page, so it waits for the read,
//!   checks it is still the entry's ([`folio_matches_swap_entry`]; if
//!   not, the fault is retried) and uptodate (if not, `SIGBUS`); the
//!   pte's count goes, and once no pte holds the slot the page leaves the
//!   swap cache and the slot is freed.
//! - A pte holding a swap entry: fork copies it and counts one more
//!   ([`SwapBackend::swap_duplicate`], Linux `copy_nonpresent_pte`);
//!   munmap, exit, `MADV_DONTNEED`, `MADV_FREE` and the OOM reaper clear
//!   it and count one fewer ([`SwapBackend::free_swap_and_cache`]);
//!   mremap moves it; the address space's `MM_SWAPENTS`
//!   ([`crate::mmap::MmCounter::SwapEnts`]) counts them, for `VmSwap` and
//!   the OOM killer's badness; `NR_SWAPCACHE` counts the swap cache
//!   (`SwapCached` in /proc/meminfo).
//!
//! # Locking
//!
//! The page lock guards a swap-cache page's membership: it is added
//! locked, and taken out ([`delete_from_swap_cache`],
//! [`folio_free_swap`]) only by a holder of its lock (reclaim, which holds
//! it from `add_to_swap` to the end of its decision; the fault; swapoff),
//! so a locked page whose read is in flight keeps the cache's reference
//! and stays allocated until its completion unlocks it. Order: mmap lock
//! -> page lock -> page-table lock -> the swap cache's index and the
//! swap areas' locks (the backend's, taken and dropped inside each call).
//! A task never sleeps for a page lock while it holds a locked page whose
//! read it has not submitted: readahead allocates its pages before it
//! locks any ([`readahead`]).
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
//! - **A failed read** ([`end_swap_read`] with an error) leaves the
//!   page in the swap cache not uptodate; the fault that waited for it
//!   fails with `SIGBUS` for the faulting task alone, as Linux's
//!   `do_swap_page` does with a page that is not uptodate, and reclaim
//!   takes the page later. The
//!   pte keeps its entry and its count: another task sharing the slot
//!   (fork) tries the read again at its own fault, and the slot is freed
//!   with its last pte (at the task's exit). swapoff, which must empty
//!   the area, puts a poisoned entry in the pte instead and frees the
//!   slot (Linux `unuse_pte` with `make_poisoned_swp_entry`): the task
//!   gets `SIGBUS` at its next touch of the page, never other data.
//!
//! Differences from Linux: a swap-cache page whose slot no pte holds any
//! more stays until reclaim takes it, unless nothing holds it when its
//! last pte goes (Linux's `free_swap_and_cache` tries harder); a
//! fault waits for the page lock with the mmap lock held (Linux's
//! `folio_lock_or_retry` drops it and retries the fault); no shadow
//! entries (`workingset_refault` for swap); a failed write marks the
//! slot bad (above). (Shmem pages use these paths too, their entries
//! kept in their files' indexes: see [`crate::shmem`].)

// Its tests copy pages in and out of the model's slots (unsafe calls);
// the module itself has no reason for unsafe.
#![cfg_attr(not(test), forbid(unsafe_code))]

pub mod readahead;

use crate::addr::Pfn;
use crate::arch::FolioWaitTable;
use crate::filemap::{folio_trylock, folio_unlock};
use crate::gfp::Gfp;
use crate::page::Page;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::swapops::{MAX_SWAPFILES, SwpEntry};
use crate::vmstat::NodeStatItem;
use crate::workingset::{Shadow, workingset_eviction, workingset_refault};

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
    /// A page is there already, or someone holds the slot for one.
    Exists,
    /// No memory for the index's nodes.
    NoMemory,
    /// No slot in use there: free, bad, or of no area (Linux `-ENOENT`
    /// from `swapcache_prepare`).
    NoEntry,
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
    /// Where tasks wait for swap-cache pages' locks (the kernel's page
    /// wait table), woken by whoever unlocks them.
    fn folio_waits(&self) -> &dyn FolioWaitTable;

    /// The slots of area `ty`, its header's included (Linux `si->max`),
    /// if it is in use: readahead's bound.
    fn swap_max(&self, ty: u32) -> Option<u64>;

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

    /// Slots of the areas open to allocation, free or not (Linux
    /// `total_swap_pages`).
    fn total_swap_pages(&self) -> u64;

    /// Takes the swap cache's hold on an in-use slot before a page is
    /// read into it (Linux `swapcache_prepare`): `Exists` if someone holds
    /// it already (the page is in the cache, or being read).
    fn swapcache_prepare(&self, entry: SwpEntry) -> Result<(), SwapCacheError>;

    /// Puts `pfn` in the swap cache at `entry` (the index half of Linux
    /// `add_to_swap_cache`), in place of the shadow an eviction left there,
    /// if any, which it returns (Linux's `shadowp`).
    fn swap_cache_add(&self, entry: SwpEntry, pfn: Pfn) -> Result<Option<Shadow>, SwapCacheError>;

    /// The page the swap cache holds at `entry` (Linux
    /// `swap_cache_get_folio`'s lookup), without a reference.
    fn swap_cache_lookup(&self, entry: SwpEntry) -> Option<Pfn>;

    /// Takes `pfn` out of the swap cache at `entry` if it is there,
    /// leaving `shadow` in its place if given (Linux
    /// `__delete_from_swap_cache`); whether it was.
    fn swap_cache_delete(&self, entry: SwpEntry, pfn: Pfn, shadow: Option<Shadow>) -> bool;

    /// Starts writing `pfn` to its slot (Linux `swap_writepage`): the
    /// page is locked and under writeback; the completion calls
    /// [`end_swap_writeback`].
    fn swap_writepage(&self, pgdat: &PgData<'_>, entry: SwpEntry, pfn: Pfn) -> Result<(), SwapIoError>;

    /// Starts reading each slot of `reads` into its page (Linux
    /// `swap_read_folio` without `synchronous`, between
    /// `blk_start_plug` and `blk_finish_plug`, so that neighbouring slots
    /// merge): each page is new, locked, not uptodate and in the swap
    /// cache, which keeps it. Each read's completion, in interrupt context
    /// or before this returns (a read that cannot start), calls
    /// [`end_swap_read`]. May sleep (allocating its requests).
    fn swap_read_folios(&self, pgdat: &PgData<'_>, reads: &[(SwpEntry, Pfn)]);
    /// Starts holding the running task's swap writes back, so that the
    /// writes of neighbouring slots merge into large requests before the
    /// disk sees any (Linux `blk_start_plug`: the task's plug); false if
    /// the task has a plug already, which then stays (Linux's nested
    /// calls leave the outer one). The task must not sleep until
    /// [`SwapBackend::finish_plug`]. By default nothing is held.
    fn start_plug(&self) -> bool {
        false
    }

    /// Submits the writes the running task's plug holds and ends it
    /// (Linux `blk_finish_plug`); once for each
    /// [`SwapBackend::start_plug`] that returned true.
    fn finish_plug(&self) {}
}

/// The running task's plug for swap writes while this lives (Linux's
/// on-stack `struct blk_plug` between `blk_start_plug` and
/// `blk_finish_plug`, [`SwapBackend::start_plug`]).
pub(crate) struct SwapPlug(Option<&'static dyn SwapBackend>);

impl SwapPlug {
    /// Starts `backend`'s plug, if there is swap.
    pub(crate) fn start(backend: Option<&'static dyn SwapBackend>) -> SwapPlug {
        SwapPlug(backend.filter(|b| b.start_plug()))
    }
}

impl Drop for SwapPlug {
    fn drop(&mut self) {
        if let Some(backend) = self.0 {
            backend.finish_plug();
        }
    }
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
/// swap cache, dirty and uptodate (Linux `add_to_swap` /
/// `folio_alloc_swap` + `add_to_swap_cache`): the cache holds a reference
/// of its own, and the page, under `PG_swapcache`, names its entry. `None` if there is no
/// free slot or no room in the index; nothing changed then.
pub fn add_to_swap(pgdat: &PgData<'_>, backend: &dyn SwapBackend, pfn: Pfn, page: &Page) -> Option<SwpEntry> {
    let entry = backend.get_swap_page()?;
    // A shadow at a free slot is stale (its page's ptes went): replaced.
    if backend.swap_cache_add(entry, pfn).is_err() {
        backend.put_swap_folio(entry);
        return None;
    }
    page.get();
    page.set_private(swp_entry_to_raw(entry));
    // Uptodate: the page has its data (Linux's anonymous pages are from
    // their first fault, `__folio_mark_uptodate`; ours are marked here,
    // where a fault that finds them in the swap cache looks).
    page.set(PageFlags::SWAPCACHE | PageFlags::UPTODATE);
    // Linux `folio_mark_dirty`: the slot has nothing yet.
    page.set(PageFlags::DIRTY);
    pgdat.mod_node_page_state(NodeStatItem::NrSwapcache, 1);
    Some(entry)
}

/// Why a swap-in found no page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapinError {
    /// Someone holds the slot for the swap cache but its page is not
    /// there yet, or no more (a read being set up, a page leaving): the
    /// caller tries again (Linux waits a tick in `__read_swap_cache_async`
    /// and looks again).
    Raced,
    /// No pte holds the slot any more, or it is bad.
    Unused,
    /// No page, or no room in the swap cache's index.
    NoMemory,
    /// The slot could not be read: the swap cache's page is not uptodate
    /// (its finder gets `SIGBUS` or `EIO`).
    Io,
}

/// The page the swap cache holds at `entry`, with a reference, unlocked
/// (Linux `swap_cache_get_folio`): the caller locks it and checks it is
/// still the entry's ([`folio_matches_swap_entry`]) before using it.
pub fn swap_cache_get_folio(pgdat: &PgData<'_>, backend: &dyn SwapBackend, entry: SwpEntry) -> Option<Pfn> {
    let pfn = backend.swap_cache_lookup(entry)?;
    pgdat.pfn_to_page(pfn).filter(|p| p.try_get()).map(|_| pfn)
}

/// Whether the locked page is still the swap cache's at `entry` (Linux
/// `folio_matches_swap_entry`): reclaim or swapoff may have taken it out
/// while its finder waited for the lock.
pub fn folio_matches_swap_entry(page: &Page, entry: SwpEntry) -> bool {
    folio_swap_entry(page) == Some(entry)
}

/// A new page for the slot `entry`, unless the swap cache has one or no
/// pte holds the slot: what Linux's `__read_swap_cache_async` allocates
/// before it claims the slot, so that no one waits on a claimed slot for
/// an allocation that may reclaim.
fn swapin_alloc<'p, 'a>(
    pgdat: &'p PgData<'a>,
    backend: &dyn SwapBackend,
    entry: SwpEntry,
    gfp: Gfp,
) -> Option<crate::page_alloc::Pages<'p, 'a>> {
    if backend.swap_cache_lookup(entry).is_some() || backend.swap_count(entry) == 0 {
        return None;
    }
    pgdat.alloc_pages_owned(gfp, 0)
}

/// Claims the slot `entry` for the new page `new` and puts the page in
/// the swap cache, locked and not uptodate, swap-backed, with the
/// cache's reference, and on the LRU (Linux `__read_swap_cache_async`
/// after its allocation: `swapcache_prepare`, `__folio_set_locked`,
/// `add_to_swap_cache`, `folio_add_lru`), with `PG_readahead` if
/// `readahead` read it: the caller starts its read. On failure the page
/// is untouched and freed with its handle; on success the handle's
/// reference is the caller's.
fn add_new_folio_to_swap_cache(
    pgdat: &PgData<'_>,
    backend: &dyn SwapBackend,
    entry: SwpEntry,
    new: crate::page_alloc::Pages<'_, '_>,
    readahead: bool,
) -> Result<Pfn, SwapinError> {
    let pfn = new.pfn();
    let page = pgdat.pfn_to_page(pfn).ok_or(SwapinError::NoMemory)?;
    match backend.swapcache_prepare(entry) {
        Ok(()) => {}
        Err(SwapCacheError::Exists) => return Err(SwapinError::Raced),
        Err(SwapCacheError::NoEntry) => return Err(SwapinError::Unused),
        Err(SwapCacheError::NoMemory) => return Err(SwapinError::NoMemory),
    }
    // Locked and named before the index shows it to anyone.
    let flags = PageFlags::LOCKED | PageFlags::SWAPBACKED | PageFlags::SWAPCACHE;
    page.set(if readahead { flags | PageFlags::READAHEAD } else { flags });
    page.set_private(swp_entry_to_raw(entry));
    let Ok(shadow) = backend.swap_cache_add(entry, pfn) else {
        page.clear(flags | PageFlags::READAHEAD);
        page.set_private(0);
        backend.put_swap_folio(entry);
        return Err(SwapinError::NoMemory);
    };
    // The cache's reference.
    page.get();
    pgdat.mod_node_page_state(NodeStatItem::NrSwapcache, 1);
    // Evicted from the swap cache before: a refault (Linux
    // `__read_swap_cache_async` -> `workingset_refault`), which may put
    // the page on the active list.
    if let Some(shadow) = shadow {
        workingset_refault(pgdat, page, shadow);
    }
    pgdat.folio_add_lru(pfn);
    Ok(new.into_raw())
}

/// The page for the slot `entry` with a reference (Linux
/// `read_swap_cache_async`): the swap cache's, or a new one allocated
/// with `gfp`, put in the swap cache locked and not uptodate, its read
/// started; its completion ([`end_swap_read`]) unlocks it. The caller
/// locks the page to wait for the read, then checks it.
pub fn read_swap_cache_async(
    pgdat: &PgData<'_>,
    backend: &dyn SwapBackend,
    entry: SwpEntry,
    gfp: Gfp,
) -> Result<Pfn, SwapinError> {
    if let Some(pfn) = swap_cache_get_folio(pgdat, backend, entry) {
        return Ok(pfn);
    }
    if backend.swap_cache_lookup(entry).is_some() {
        // Found but being freed: as if someone else held the slot.
        return Err(SwapinError::Raced);
    }
    if backend.swap_count(entry) == 0 {
        return Err(SwapinError::Unused);
    }
    let new = pgdat.alloc_pages_owned(gfp, 0).ok_or(SwapinError::NoMemory)?;
    let pfn = add_new_folio_to_swap_cache(pgdat, backend, entry, new, false)?;
    backend.swap_read_folios(pgdat, &[(entry, pfn)]);
    Ok(pfn)
}

/// A swap read finished (Linux `end_swap_bio_read`): the page is
/// uptodate if it succeeded, not if it failed (the faults that find it
/// give `SIGBUS`), and unlocked either way, waking its waiters. Runs in
/// interrupt context.
pub fn end_swap_read(pgdat: &PgData<'_>, pfn: Pfn, result: Result<(), SwapIoError>, waits: &dyn FolioWaitTable) {
    let Some(page) = pgdat.pfn_to_page(pfn) else { return };
    if result.is_ok() {
        // Before the unlock's release: whoever locks next sees the data.
        page.set(PageFlags::UPTODATE);
    }
    folio_unlock(page, pfn, waits);
}

/// Takes the locked page `pfn` out of the swap cache and gives its slot
/// the cache's hold back (Linux `delete_from_swap_cache`, or
/// `__remove_mapping`'s swap half); the cache's reference is the
/// caller's. A slot whose write failed (`PG_error`, which no pte may
/// hold by then) is marked bad rather than freed. False, changing
/// nothing, if the page is not in it.
pub fn delete_from_swap_cache(pgdat: &PgData<'_>, backend: &dyn SwapBackend, pfn: Pfn, page: &Page) -> bool {
    delete_from_swap_cache_shadow(pgdat, backend, pfn, page, None)
}

/// [`delete_from_swap_cache`] for reclaim, which evicts the page: its
/// shadow stays at the slot's index (Linux `__remove_mapping` ->
/// `workingset_eviction`), for the refault of a swap-in to find. The page
/// is locked and off the LRU.
pub fn delete_from_swap_cache_evicted(pgdat: &PgData<'_>, backend: &dyn SwapBackend, pfn: Pfn, page: &Page) -> bool {
    // A page whose slot's write failed leaves no shadow: the slot goes bad.
    let shadow = (!page.test(PageFlags::ERROR)).then(|| workingset_eviction(pgdat, page));
    delete_from_swap_cache_shadow(pgdat, backend, pfn, page, shadow)
}

fn delete_from_swap_cache_shadow(
    pgdat: &PgData<'_>,
    backend: &dyn SwapBackend,
    pfn: Pfn,
    page: &Page,
    shadow: Option<Shadow>,
) -> bool {
    let Some(entry) = folio_swap_entry(page) else { return false };
    if !backend.swap_cache_delete(entry, pfn, shadow) {
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

/// Takes the locked page `pfn` out of the swap cache if no pte or index
/// holds its slot any more and it is not under writeback (Linux
/// `folio_free_swap`): the slot is freed, the page, mapped or not, is
/// dirty (it alone has the data now) and the cache's reference goes.
/// Whether it did. A fault that found the page meanwhile sees, under the
/// lock, that it left the cache.
pub fn folio_free_swap(pgdat: &PgData<'_>, backend: &dyn SwapBackend, pfn: Pfn, page: &Page) -> bool {
    let Some(entry) = folio_swap_entry(page) else { return false };
    if page.test(PageFlags::WRITEBACK)
        || backend.swap_count(entry) != 0
        || !delete_from_swap_cache(pgdat, backend, pfn, page)
    {
        return false;
    }
    page.set(PageFlags::DIRTY);
    let last = page.put_testzero();
    debug_assert!(!last, "the swap cache held the last reference");
    true
}

/// [`folio_free_swap`] for an unmapped swap-cache page, if its lock is
/// free (Linux `free_swap_cache`): a locked page is someone else's to
/// decide on, a read in flight among them.
pub fn free_swap_cache(pgdat: &PgData<'_>, backend: &dyn SwapBackend, pfn: Pfn) {
    let Some(page) = pgdat.pfn_to_page(pfn) else { return };
    if !page.test(PageFlags::SWAPCACHE) || page.mapcount() > 0 || !folio_trylock(page) {
        return;
    }
    folio_free_swap(pgdat, backend, pfn, page);
    folio_unlock(page, pfn, backend.folio_waits());
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

/// Whether swap is more than half full (Linux `vm_swap_full`): then a
/// page read back leaves the swap cache at once and frees its slot, where
/// otherwise the slot keeps the page's data until the page is written
/// again, so that a clean page goes back to swap without a write.
pub fn vm_swap_full(backend: &dyn SwapBackend) -> bool {
    backend.nr_swap_pages().saturating_mul(2) < backend.total_swap_pages()
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
