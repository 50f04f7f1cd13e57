//! The page cache's index of one file and the folio lock (Linux
//! `mm/filemap.c`: `__filemap_add_folio`, `__filemap_remove_folio`,
//! `filemap_get_entry`, `folio_lock`, `folio_unlock`, `folio_wait_locked`,
//! `folio_wait_writeback`; `include/linux/pagemap.h`'s `folio_trylock`).
//!
//! # The page cache
//!
//! An [`AddressSpace`] is one file's cached pages (Linux `struct
//! address_space`): an [`XArray`] from page index to page, with the
//! dirty, writeback and towrite marks that writeback searches by
//! (`i_pages`), the page count (`nrpages`) and the writeback error
//! sequence (`wb_err`, see [`crate::errseq`]). A page in the cache holds
//! one reference for the cache, `PG_locked` while its contents are being
//! read, and `mapping`/`index` naming its place. The dirty and writeback
//! transitions are [`crate::page_writeback`]'s.
//!
//! A shmem space (`swapbacked`: tmpfs files, memfds, shared anonymous
//! memory) is the only copy of its file's data: there is no disk behind
//! it, so nothing is ever written back from it (Linux
//! `mapping_can_writeback` is false for shmem's backing device). Its pages
//! carry `PG_swapbacked` and count in `NR_SHMEM` as Linux's do; `PG_dirty`
//! on them says only that they hold data (Linux's `noop_dirty_folio`):
//! it is neither counted in `NR_FILE_DIRTY` nor marked in the index.
//! `drop_caches` leaves them alone; reclaim drops a clean one (it holds
//! zeros: a hole reads the same) and sends a dirty one to swap
//! ([`crate::shmem::shmem_writeout`]), which leaves the page's swap entry
//! in the index in its place.
//!
//! # Swap entries
//!
//! A shmem page that went to swap leaves a [`CacheEntry::Swap`] at its
//! index (Linux's `swp_to_radix_entry` value entry), which holds one
//! count of its slot, and the space counts it in [`AddressSpace::swapped`]
//! (Linux `shmem_inode_info.swapped`) instead of `nrpages`
//! ([`AddressSpace::shmem_delete_from_page_cache`]). To the page lookups
//! a swap entry is no page ([`AddressSpace::lookup`], [`AddressSpace::find`]);
//! [`AddressSpace::add_folio`] refuses to replace one
//! ([`AddFolioError::Swap`]): the caller swaps the page in instead, and
//! that puts it back in the entry's place
//! ([`AddressSpace::shmem_add_to_page_cache`], Linux
//! `shmem_add_to_page_cache` with the expected entry). Truncation, hole
//! punching and the file's end take the entries out with their range
//! ([`AddressSpace::shmem_take_swap`]) and free their slots.
//!
//! # Shadow entries
//!
//! When reclaim evicts a clean page ([`AddressSpace::remove_mapping`],
//! Linux `__remove_mapping`), the index keeps a [`Shadow`] at its place
//! ([`CacheEntry::Shadow`], Linux's value entry from
//! `workingset_eviction`), and a page added there later finds it
//! ([`AddressSpace::add_folio`] returns it, for
//! [`crate::workingset::workingset_refault`]). To every lookup a shadow
//! is a hole: [`AddressSpace::lookup`] and [`AddressSpace::find`] return
//! pages only, [`AddressSpace::next_hole`] stops at shadows (Linux
//! `page_cache_next_miss`). Shadows carry no mark and are not counted in
//! `nrpages`. Truncation and invalidation take them away with their
//! range ([`AddressSpace::clear_shadows`], Linux
//! `truncate_folio_batch_exceptionals` and `clear_shadow_entries`), and
//! none is planted in a cache that is going away
//! ([`AddressSpace::set_exiting`], Linux `AS_EXITING`), so that the
//! index is empty, every node freed, when its file goes.
//!
//! The structure is not synchronized: the kernel keeps each one under a
//! lock that interrupts cannot take while it is held, since writeback
//! completes in interrupt context (Linux's `xa_lock_irq` on `i_pages`).
//! Lookups take that lock too; Linux's are RCU walks instead.
//!
//! # Invariants ([`AddressSpace::check`] verifies them)
//!
//! 1. `nrpages` is the number of pages in the index.
//! 2. Every page in the index has `mapping` equal to the space's
//!    [`MappingId`], `index` equal to its key, and a reference for the
//!    cache.
//! 3. A page's entry has the dirty mark exactly when its page is `PG_dirty`, or
//!    was when it went under writeback (and, while the page is locked,
//!    between `folio_clear_dirty_for_io` and `folio_start_writeback`); the
//!    writeback mark exactly when it is `PG_writeback`. In a shmem space
//!    no entry has any mark and no page is under writeback.
//! 4. A shadow entry has no mark, and a shmem space has no shadow.
//! 5. Only a shmem space holds swap entries; they have no mark, and
//!    `swapped` is their number.
//!
//! # The folio lock
//!
//! `PG_locked` is a sleeping lock on one page: taken by whoever must keep
//! the page's identity still while it works without the page-table lock
//! (migration now; page-cache reads, writeback and swap-in later). A task
//! that finds it taken sets `PG_waiters` and sleeps on the page's wait
//! queue in the [`FolioWaitTable`] (Linux hashes pages onto 256 queues);
//! the unlocker wakes that queue only when `PG_waiters` is set, so the
//! uncontended unlock is one atomic operation.
//!
//! Lock order: mmap lock -> folio lock -> page-table lock (Linux's, per
//! the top of mm/rmap.c). Sleeping for the lock needs a context that may
//! sleep; [`folio_trylock`] never sleeps.

use crate::addr::Pfn;
use crate::arch::FolioWaitTable;
use crate::errseq::ErrSeq;
use crate::page::Page;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::swapops::SwpEntry;
use crate::vmstat::NodeStatItem;
use crate::workingset::{Shadow, workingset_eviction};
use crate::xarray::{
    PAGECACHE_TAG_DIRTY, PAGECACHE_TAG_TOWRITE, PAGECACHE_TAG_WRITEBACK, XArray, XaError, XaMark, XaNodeAlloc,
};

#[cfg(test)]
mod tests;

/// What `page->mapping` holds for a page of one [`AddressSpace`]: a
/// non-zero word with the low bits clear, so that it is never taken for
/// [`crate::rmap::PAGE_MAPPING_ANON`] (Linux stores the `address_space`
/// pointer, which is aligned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappingId(u64);

impl MappingId {
    /// The id `word` makes, if it is non-zero and 8-byte aligned (the
    /// kernel passes the address of the space's owner).
    pub const fn new(word: u64) -> Option<MappingId> {
        if word != 0 && word & 7 == 0 { Some(MappingId(word)) } else { None }
    }

    /// The word as `page->mapping` holds it.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

/// What a cache's index holds at an index (Linux: a folio pointer, or a
/// value entry: a shadow or, in shmem's index, a swap entry; no DAX
/// entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheEntry {
    /// A cached page.
    Folio(Pfn),
    /// Where a page was until reclaim evicted it (Linux `xa_is_value`,
    /// see [`crate::workingset`]): a hole to every lookup.
    Shadow(Shadow),
    /// Where a shmem page's data is while it is in swap (see "Swap
    /// entries" in the module doc).
    Swap(RadixSwap),
}

impl CacheEntry {
    /// The page, if the entry is one.
    pub const fn folio(self) -> Option<Pfn> {
        match self {
            CacheEntry::Folio(pfn) => Some(pfn),
            CacheEntry::Shadow(_) | CacheEntry::Swap(_) => None,
        }
    }

    /// The swap entry, if the entry is one (Linux `radix_to_swp_entry`
    /// after `xa_is_value`).
    pub const fn swap(self) -> Option<SwpEntry> {
        match self {
            CacheEntry::Swap(radix) => Some(radix.entry()),
            CacheEntry::Folio(_) | CacheEntry::Shadow(_) => None,
        }
    }
}

/// A swap entry as a shmem index holds it (Linux `swp_to_radix_entry`):
/// type and offset packed in one word, so that an index slot stays as
/// small as a page's or a shadow's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RadixSwap(u64);

/// Bit of the type in a [`RadixSwap`]: swap offsets stay below it (the
/// pte encoding holds fewer bits).
const RADIX_SWAP_TYPE_SHIFT: u32 = 58;

impl RadixSwap {
    /// `entry` packed (Linux `swp_to_radix_entry`).
    pub const fn new(entry: SwpEntry) -> RadixSwap {
        let offset = entry.offset() & ((1 << RADIX_SWAP_TYPE_SHIFT) - 1);
        RadixSwap(((entry.ty() as u64) << RADIX_SWAP_TYPE_SHIFT) | offset)
    }

    /// The entry (Linux `radix_to_swp_entry`).
    pub const fn entry(self) -> SwpEntry {
        SwpEntry::new((self.0 >> RADIX_SWAP_TYPE_SHIFT) as u32, self.0 & ((1 << RADIX_SWAP_TYPE_SHIFT) - 1))
    }
}

/// Why a page could not join a cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddFolioError {
    /// Another page holds the index (Linux `-EEXIST`): the caller lost a
    /// race and uses that one.
    Exists(Pfn),
    /// The index could not grow (Linux `-ENOMEM`).
    NoMemory,
    /// The index holds the swap entry of a shmem page that went to swap
    /// (Linux `-EEXIST` from `shmem_add_to_page_cache`): the caller
    /// swaps that page in instead of adding a new one.
    Swap(SwpEntry),
}

/// One file's page cache (Linux `struct address_space`), its index's
/// nodes from `A`.
pub struct AddressSpace<A: XaNodeAlloc<CacheEntry>> {
    /// Pages and shadows by index, with the writeback marks (Linux
    /// `i_pages`).
    i_pages: XArray<CacheEntry, A>,
    /// Pages in `i_pages`, shadows and swap entries not counted (Linux
    /// `nrpages`).
    nrpages: u64,
    /// Swap entries in `i_pages`: a shmem file's pages in swap (Linux
    /// `shmem_inode_info.swapped`).
    swapped: u64,
    /// The file is going away: reclaim leaves no shadow (Linux
    /// `AS_EXITING`).
    exiting: bool,
    /// What the pages' `mapping` says.
    id: MappingId,
    /// shmem: pages are `PG_swapbacked` and counted in `NR_SHMEM`.
    swapbacked: bool,
    /// Writeback errors (Linux `wb_err`); readable without the lock.
    pub wb_err: ErrSeq,
}

impl<A: XaNodeAlloc<CacheEntry>> AddressSpace<A> {
    /// An empty cache whose pages will say `id`, its index's nodes from
    /// `nodes`; `swapbacked` for shmem.
    pub const fn new(id: MappingId, swapbacked: bool, nodes: A) -> Self {
        AddressSpace {
            i_pages: XArray::new(nodes),
            nrpages: 0,
            swapped: 0,
            exiting: false,
            id,
            swapbacked,
            wb_err: ErrSeq::new(),
        }
    }

    /// Its pages' `mapping` word.
    pub fn id(&self) -> MappingId {
        self.id
    }

    /// Whether it is shmem's (Linux `mapping_use_writeback_tags` is the
    /// opposite).
    pub fn is_swapbacked(&self) -> bool {
        self.swapbacked
    }

    /// Whether its pages are ever written back (Linux
    /// `mapping_can_writeback`): not a shmem space's, which has no
    /// backing store.
    pub fn can_writeback(&self) -> bool {
        !self.swapbacked
    }

    /// Pages cached (Linux `mapping->nrpages`).
    pub fn nrpages(&self) -> u64 {
        self.nrpages
    }

    /// Shadow entries in the index (Linux counted them in
    /// `nrexceptional`).
    pub fn nr_shadows(&self) -> u64 {
        (self.i_pages.len() as u64).saturating_sub(self.nrpages).saturating_sub(self.swapped)
    }

    /// A shmem file's pages in swap: the swap entries in its index
    /// (Linux `shmem_inode_info.swapped`).
    pub fn swapped(&self) -> u64 {
        self.swapped
    }

    /// The entry at `index`, page, shadow or swap entry (Linux
    /// `filemap_get_entry`).
    pub fn lookup_entry(&self, index: u64) -> Option<CacheEntry> {
        self.i_pages.load(index)
    }

    /// The page at `index`, a shadow being none (Linux `filemap_get_entry`
    /// as `filemap_get_folio` uses it). The caller takes its own reference
    /// before letting go of the lock.
    pub fn lookup(&self, index: u64) -> Option<Pfn> {
        self.i_pages.load(index).and_then(CacheEntry::folio)
    }

    /// The first page at or after `start` and at most `max` (Linux
    /// `find_get_entries`' walk, shadows skipped as `filemap_get_folios`
    /// skips value entries), marked `mark` if given.
    pub fn find(&self, start: u64, max: u64, mark: Option<XaMark>) -> Option<(u64, Pfn)> {
        let mut from = start;
        loop {
            let (index, entry) = self.i_pages.find(from, max, mark)?;
            if let CacheEntry::Folio(pfn) = entry {
                return Some((index, pfn));
            }
            from = index.checked_add(1)?;
        }
    }

    /// The first index in `start..=max` with no page, a shadow or swap
    /// entry counting as none, if any (Linux `page_cache_next_miss`).
    pub fn next_hole(&self, start: u64, max: u64) -> Option<u64> {
        let mut expected = start;
        for (index, entry) in self.i_pages.iter_range(start, max, None) {
            if index != expected || entry.folio().is_none() {
                return Some(expected);
            }
            expected = index.checked_add(1)?;
        }
        (expected <= max).then_some(expected)
    }

    /// Whether any page has `mark` (Linux `mapping_tagged`).
    pub fn tagged(&self, mark: XaMark) -> bool {
        self.i_pages.marked(mark)
    }

    /// Marks every dirty page in `start..=end` towrite, so that a
    /// data-integrity writeback writes what is dirty now and not what
    /// gets dirtied while it runs (Linux `tag_pages_for_writeback`).
    pub fn tag_pages_for_writeback(&mut self, start: u64, end: u64) -> usize {
        self.i_pages.tag_range(start, end, PAGECACHE_TAG_DIRTY, PAGECACHE_TAG_TOWRITE)
    }

    /// Puts `pfn` in the cache at `index` (Linux `__filemap_add_folio`):
    /// the page is new, locked by the caller (it is not uptodate yet) and
    /// holds the caller's reference; the cache takes one more. Counts it
    /// in `NR_FILE_PAGES` (and `NR_SHMEM`). Returns the shadow the page
    /// replaced, if any, for [`crate::workingset::workingset_refault`].
    pub fn add_folio(&mut self, pgdat: &PgData<'_>, pfn: Pfn, index: u64) -> Result<Option<Shadow>, AddFolioError> {
        let page = pgdat.pfn_to_page(pfn).ok_or(AddFolioError::NoMemory)?;
        debug_assert!(folio_test_locked(page), "a page joins the cache locked");
        match self.i_pages.load(index) {
            Some(CacheEntry::Folio(other)) => return Err(AddFolioError::Exists(other)),
            Some(CacheEntry::Swap(radix)) => return Err(AddFolioError::Swap(radix.entry())),
            Some(CacheEntry::Shadow(_)) | None => {}
        }
        let old =
            self.i_pages.store(index, CacheEntry::Folio(pfn)).map_err(|XaError::NoMemory| AddFolioError::NoMemory)?;
        page.get();
        page.set_mapping(self.id.as_u64());
        page.set_index(index);
        if self.swapbacked {
            page.set(PageFlags::SWAPBACKED);
            pgdat.mod_node_page_state(NodeStatItem::NrShmem, 1);
        }
        pgdat.mod_node_page_state(NodeStatItem::NrFilePages, 1);
        self.nrpages += 1;
        Ok(match old {
            Some(CacheEntry::Shadow(shadow)) => Some(shadow),
            _ => None,
        })
    }

    /// Takes the page at `index` out of the cache (Linux
    /// `__filemap_remove_folio` with no shadow): it must be locked and not
    /// under writeback; a dirty page's dirtiness is dropped with it (Linux
    /// `folio_account_cleaned`, as truncation does; a shmem page's was
    /// never counted). Returns the page, whose cache reference the caller
    /// now owns and puts after letting go of the lock; `None` if no page
    /// is there (a shadow stays).
    #[must_use = "the cache's reference to the page is the caller's to put"]
    pub fn remove_folio(&mut self, pgdat: &PgData<'_>, index: u64) -> Option<Pfn> {
        self.lookup(index)?;
        let pfn = self.i_pages.erase(index).and_then(CacheEntry::folio)?;
        self.page_cache_delete(pgdat, pfn);
        Some(pfn)
    }

    /// Takes the locked, clean page `pfn` out at `index` for reclaim, if
    /// it is still there, leaving its shadow in its place (Linux
    /// `__remove_mapping`'s part under the cache's lock:
    /// `workingset_eviction` and `__filemap_remove_folio` with the
    /// shadow). No shadow is left in a shmem space (its pages are not on
    /// the file lists) or one going away. True if it took the page; the
    /// cache's reference is then the caller's.
    #[must_use = "the cache's reference to the page is the caller's to put"]
    pub fn remove_mapping(&mut self, pgdat: &PgData<'_>, index: u64, pfn: Pfn) -> bool {
        if self.lookup(index) != Some(pfn) {
            return false;
        }
        let Some(page) = pgdat.pfn_to_page(pfn) else { return false };
        if self.swapbacked || self.exiting {
            return self.remove_folio(pgdat, index).is_some();
        }
        let shadow = CacheEntry::Shadow(workingset_eviction(pgdat, page));
        // Replacing an entry allocates nothing: its nodes exist.
        if self.i_pages.store(index, shadow).is_err() {
            return self.remove_folio(pgdat, index).is_some();
        }
        for mark in XaMark::ALL {
            self.i_pages.clear_mark(index, mark);
        }
        self.page_cache_delete(pgdat, pfn);
        true
    }

    /// What leaving the cache does to a page and the counts (Linux
    /// `page_cache_delete`'s and `filemap_unaccount_folio`'s part after
    /// the index lost it).
    fn page_cache_delete(&mut self, pgdat: &PgData<'_>, pfn: Pfn) {
        self.nrpages = self.nrpages.saturating_sub(1);
        if let Some(page) = pgdat.pfn_to_page(pfn) {
            debug_assert!(!page.test(PageFlags::WRITEBACK), "a page under writeback left the cache");
            if page.test_and_clear(PageFlags::DIRTY) && self.can_writeback() {
                pgdat.mod_node_page_state(NodeStatItem::NrFileDirty, -1);
            }
            page.set_mapping(0);
            if self.swapbacked {
                pgdat.mod_node_page_state(NodeStatItem::NrShmem, -1);
            }
        }
        pgdat.mod_node_page_state(NodeStatItem::NrFilePages, -1);
    }

    /// Puts the swap entry `entry` in place of the locked shmem page
    /// `pfn` at `index`, which reclaim unmapped and gave a slot and a place
    /// in the swap cache (Linux `shmem_delete_from_page_cache` with
    /// `swp_to_radix_entry`): only if the page is still there, mapped by
    /// no pte, and held by exactly `refs` references (reclaim's count of
    /// the page cache's, the swap cache's and its own: a lookup takes its
    /// reference under the cache's lock, so a fault or read that found
    /// the page keeps it here). The page leaves `nrpages`,
    /// `NR_FILE_PAGES` and `NR_SHMEM` and names no mapping any more (it
    /// stays dirty, for the swap write); `swapped` counts the entry, which
    /// holds the count of the slot the caller took for it. The page
    /// cache's reference is put (the swap cache holds its own). Returns
    /// whether it did it; if not, nothing changed.
    pub fn shmem_delete_from_page_cache(
        &mut self,
        pgdat: &PgData<'_>,
        index: u64,
        pfn: Pfn,
        entry: SwpEntry,
        refs: i32,
    ) -> bool {
        let Some(page) = pgdat.pfn_to_page(pfn) else { return false };
        if !self.swapbacked || self.lookup(index) != Some(pfn) || page.refcount() != refs || page.mapcount() > 0 {
            return false;
        }
        debug_assert!(folio_test_locked(page), "a shmem page goes to swap locked");
        // Replacing an entry allocates nothing: its nodes exist.
        if self.i_pages.store(index, CacheEntry::Swap(RadixSwap::new(entry))).is_err() {
            return false;
        }
        self.nrpages = self.nrpages.saturating_sub(1);
        self.swapped += 1;
        page.set_mapping(0);
        pgdat.mod_node_page_state(NodeStatItem::NrFilePages, -1);
        pgdat.mod_node_page_state(NodeStatItem::NrShmem, -1);
        let last = page.put_testzero();
        debug_assert!(!last, "the swap cache and reclaim hold the page too");
        true
    }

    /// Puts the locked page `pfn`, swapped in from `expected`, back at
    /// `index` in place of that swap entry (Linux `shmem_add_to_page_cache`
    /// with `expected`): only if the index still holds it (truncation or
    /// another swap-in may have taken it). The page gets a reference for
    /// the cache, its `mapping` and `index`, `PG_swapbacked`, and counts
    /// in `nrpages`, `NR_FILE_PAGES` and `NR_SHMEM` again; `swapped`
    /// counts one entry fewer (its slot's count is the caller's to free).
    /// Returns whether it did it.
    pub fn shmem_add_to_page_cache(&mut self, pgdat: &PgData<'_>, pfn: Pfn, index: u64, expected: SwpEntry) -> bool {
        let Some(page) = pgdat.pfn_to_page(pfn) else { return false };
        debug_assert!(folio_test_locked(page), "a page joins the cache locked");
        if self.i_pages.load(index) != Some(CacheEntry::Swap(RadixSwap::new(expected))) {
            return false;
        }
        if self.i_pages.store(index, CacheEntry::Folio(pfn)).is_err() {
            return false;
        }
        page.get();
        page.set_mapping(self.id.as_u64());
        page.set_index(index);
        page.set(PageFlags::SWAPBACKED);
        self.swapped = self.swapped.saturating_sub(1);
        self.nrpages += 1;
        pgdat.mod_node_page_state(NodeStatItem::NrShmem, 1);
        pgdat.mod_node_page_state(NodeStatItem::NrFilePages, 1);
        true
    }

    /// Takes the first swap entry in `start..=end` out of the index, if
    /// any, with its index (Linux `shmem_free_swap`'s `xa_cmpxchg` to
    /// nothing); the slot's count it held is the caller's to free.
    pub fn shmem_take_swap(&mut self, start: u64, end: u64) -> Option<(u64, SwpEntry)> {
        let (index, entry) = self.find_swap(start, end, None)?;
        self.i_pages.erase(index);
        self.swapped = self.swapped.saturating_sub(1);
        Some((index, entry))
    }

    /// The first swap entry in `start..=end`, of swap area `ty` if given,
    /// with its index (Linux `shmem_find_swap_entries`, one at a time).
    pub fn find_swap(&self, start: u64, end: u64, ty: Option<u32>) -> Option<(u64, SwpEntry)> {
        if self.swapped == 0 {
            return None;
        }
        let mut from = start;
        loop {
            let (index, entry) = self.i_pages.find(from, end, None)?;
            if let Some(swap) = entry.swap()
                && ty.is_none_or(|ty| swap.ty() == ty)
            {
                return Some((index, swap));
            }
            from = index.checked_add(1)?;
        }
    }

    /// Erases the shadow entries in `start..=end`, freeing the index
    /// nodes they leave empty (Linux `truncate_folio_batch_exceptionals`
    /// for truncation, `clear_shadow_entries` for invalidation); pages
    /// stay. Returns how many went.
    pub fn clear_shadows(&mut self, start: u64, end: u64) -> u64 {
        let mut cleared = 0;
        let mut from = start;
        while let Some((index, entry)) = self.i_pages.find(from, end, None) {
            if let CacheEntry::Shadow(_) = entry {
                self.i_pages.erase(index);
                cleared += 1;
            }
            match index.checked_add(1) {
                Some(next) => from = next,
                None => break,
            }
        }
        cleared
    }

    /// Marks the cache as going away: reclaim leaves no shadow in it from
    /// now on (Linux `mapping_set_exiting`, which `evict` calls before
    /// `truncate_inode_pages_final`).
    pub fn set_exiting(&mut self) {
        self.exiting = true;
    }

    /// Puts `new` in the cache in place of `old` at `index`, its marks
    /// kept (Linux `__folio_migrate_mapping` for a page cache, under the
    /// cache's lock as `xas_lock_irq`): only if `old` is still there, not
    /// under writeback, and held by nobody but the cache and the caller
    /// (its expected count, 2: a lookup takes its reference under the
    /// cache's lock, so none can come between the check and the swap).
    /// The caller holds `old` locked and has copied it, `mapping`,
    /// `index` and flags included, into `new`, a page nothing else
    /// reaches. The cache's reference moves to `new`, and the counters do
    /// not change. Returns whether it did it; if not, nothing changed.
    #[doc(alias = "folio_migrate_mapping")]
    pub fn migrate_folio(&mut self, pgdat: &PgData<'_>, index: u64, old: Pfn, new: Pfn) -> bool {
        let (Some(oldpage), Some(newpage)) = (pgdat.pfn_to_page(old), pgdat.pfn_to_page(new)) else { return false };
        if self.lookup(index) != Some(old) || oldpage.refcount() != 2 || oldpage.test(PageFlags::WRITEBACK) {
            return false;
        }
        if self.i_pages.store(index, CacheEntry::Folio(new)).is_err() {
            return false;
        }
        newpage.get();
        // The cache's reference on `old`; the caller's keeps it.
        let last = oldpage.put_testzero();
        debug_assert!(!last, "the caller holds a reference on the page it migrates");
        true
    }

    /// Sets `mark` on the page at `index`; a shadow gets none
    /// (invariant 4).
    pub(crate) fn set_mark(&mut self, index: u64, mark: XaMark) {
        if self.lookup(index).is_some() {
            self.i_pages.set_mark(index, mark);
        }
    }

    pub(crate) fn clear_mark(&mut self, index: u64, mark: XaMark) {
        self.i_pages.clear_mark(index, mark);
    }

    /// Whether the page at `index` has `mark` (Linux `xa_get_mark`, e.g.
    /// `folio_test_dirty`'s twin in the index).
    pub fn get_mark(&self, index: u64, mark: XaMark) -> bool {
        self.i_pages.get_mark(index, mark)
    }

    /// Checks the invariants of the module documentation.
    pub fn check(&self, pgdat: &PgData<'_>) -> Result<(), &'static str> {
        let mut count = 0u64;
        let mut swapped = 0u64;
        for (index, entry) in self.i_pages.iter() {
            let pfn = match entry {
                CacheEntry::Folio(pfn) => pfn,
                CacheEntry::Swap(_) => {
                    if !self.swapbacked {
                        return Err("5: a swap entry outside a shmem space");
                    }
                    if XaMark::ALL.into_iter().any(|mark| self.i_pages.get_mark(index, mark)) {
                        return Err("5: a swap entry has a mark");
                    }
                    swapped += 1;
                    continue;
                }
                CacheEntry::Shadow(_) => {
                    if self.swapbacked {
                        return Err("4: a shmem space holds a shadow");
                    }
                    if XaMark::ALL.into_iter().any(|mark| self.i_pages.get_mark(index, mark)) {
                        return Err("4: a shadow entry has a mark");
                    }
                    continue;
                }
            };
            count += 1;
            let page = pgdat.pfn_to_page(pfn).ok_or("2: a cached pfn has no page")?;
            if page.mapping() != self.id.as_u64() || page.index() != index {
                return Err("2: a cached page's mapping or index is wrong");
            }
            if page.refcount() < 1 {
                return Err("2: a cached page holds no reference");
            }
            let dirty_mark = self.i_pages.get_mark(index, PAGECACHE_TAG_DIRTY);
            let writeback = page.test(PageFlags::WRITEBACK);
            if self.swapbacked {
                let marked = [PAGECACHE_TAG_DIRTY, PAGECACHE_TAG_TOWRITE, PAGECACHE_TAG_WRITEBACK]
                    .into_iter()
                    .any(|mark| self.i_pages.get_mark(index, mark));
                if marked || writeback {
                    return Err("3: a shmem page is marked for or under writeback");
                }
            } else if page.test(PageFlags::DIRTY) && !dirty_mark {
                return Err("3: a dirty page lacks the dirty mark");
            }
            if dirty_mark && !page.test(PageFlags::DIRTY) && !writeback && !folio_test_locked(page) {
                return Err("3: a clean page not under writeback has the dirty mark");
            }
            if writeback != self.i_pages.get_mark(index, PAGECACHE_TAG_WRITEBACK) {
                return Err("3: the writeback mark disagrees with PG_writeback");
            }
        }
        if count != self.nrpages {
            return Err("1: nrpages is not the number of entries");
        }
        if swapped != self.swapped {
            return Err("5: swapped is not the number of swap entries");
        }
        Ok(())
    }
}

/// Takes `page`'s lock if it is free (Linux `folio_trylock`).
pub fn folio_trylock(page: &Page) -> bool {
    !page.test_and_set_lock(PageFlags::LOCKED)
}

/// Whether `page` is locked (Linux `folio_test_locked`).
pub fn folio_test_locked(page: &Page) -> bool {
    page.test(PageFlags::LOCKED)
}

/// Takes `page`'s lock, sleeping in `table` until it is free (Linux
/// `folio_lock`).
pub fn folio_lock(page: &Page, pfn: Pfn, table: &dyn FolioWaitTable) {
    while !folio_trylock(page) {
        folio_wait_locked(page, pfn, table);
    }
}

/// Releases `page`'s lock and wakes its waiters, if any (Linux
/// `folio_unlock`).
pub fn folio_unlock(page: &Page, pfn: Pfn, table: &dyn FolioWaitTable) {
    let before = page.clear_unlock(PageFlags::LOCKED | PageFlags::WAITERS);
    debug_assert!(before.contains(PageFlags::LOCKED), "folio_unlock of an unlocked page {:#x}", pfn.as_u64());
    if before.contains(PageFlags::WAITERS) {
        table.wake_up(pfn);
    }
}

/// Sleeps until `page` is not under writeback (Linux
/// `folio_wait_writeback`). [`crate::page_writeback::folio_end_writeback`]
/// wakes the page's queue every time (Linux only when `PG_waiters` says
/// someone waits; our waiters would have to share the bit with the lock's).
pub fn folio_wait_writeback(page: &Page, pfn: Pfn, table: &dyn FolioWaitTable) {
    table.wait_event(pfn, &mut || !page.test(PageFlags::WRITEBACK));
}

/// Sleeps until `page` is unlocked, without taking the lock (Linux
/// `folio_wait_locked`).
pub fn folio_wait_locked(page: &Page, pfn: Pfn, table: &dyn FolioWaitTable) {
    // `PG_waiters` is set at every test, after the waiter is queued, and
    // only together with a set `PG_locked`: whoever unlocks after a test
    // that found the page locked sees it and wakes the queue (an unlock
    // clears both), and a page unlocked meanwhile, maybe freed, is left
    // untouched.
    table.wait_event(pfn, &mut || !page.set_waiters_if_locked());
}
