//! Dirty pages and writeback (Linux `mm/page-writeback.c`): the state
//! transitions of a page-cache page between clean, dirty and under
//! writeback, their counters, the dirty thresholds and which page
//! writeback takes next.
//!
//! A page's life, as Linux's:
//! - **Clean and uptodate**: `PG_uptodate`, no `PG_dirty`; its contents
//!   are what the backing store holds.
//! - **Dirty** ([`folio_mark_dirty`]): written by `write(2)` or through a
//!   shared mapping; `PG_dirty`, the index's dirty mark, counted in
//!   `NR_FILE_DIRTY` and once in `NR_DIRTIED`.
//! - **Under writeback**: under the page lock, [`folio_clear_dirty_for_io`]
//!   clears `PG_dirty` (the page may be dirtied again from here on, and
//!   then is written again later) and [`folio_start_writeback`] sets
//!   `PG_writeback` and the writeback mark; the dirty mark goes unless the
//!   page was dirtied again. Counted in `NR_WRITEBACK`.
//! - **Written** ([`folio_end_writeback`], from the I/O completion):
//!   `PG_writeback` and its mark go, `NR_WRITTEN` counts it and waiters in
//!   `folio_wait_writeback` wake. A failed write leaves the page's data in
//!   the cache (marked dirty again by the caller or reported through
//!   `wb_err`, see [`crate::errseq`]).
//!
//! A shmem space ([`AddressSpace::is_swapbacked`]) has none of this:
//! its pages have no backing store to be clean against, so
//! [`folio_mark_dirty`] only sets `PG_dirty` (Linux `noop_dirty_folio`),
//! nothing counts them in `NR_FILE_DIRTY` or the thresholds, and a pass
//! finds nothing to write in it ([`writeback_prepare`],
//! [`writeback_next`]; Linux `mapping_can_writeback`).
//!
//! Differences from Linux: no per-cgroup or per-device (`bdi`) dirty
//! domains, one global one; `folio_clear_dirty_for_io` leaves the
//! write-protection of the page's mappings to its caller (the kernel's
//! writeback runs [`crate::mmap::MmStruct::folio_mkclean_one`] over the
//! address spaces first, see [`crate::memory`]).

#![forbid(unsafe_code)]

use crate::addr::Pfn;
use crate::arch::FolioWaitTable;
use crate::filemap::{AddressSpace, CacheEntry};
use crate::page::Page;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::vmstat::NodeStatItem;
use crate::xarray::{PAGECACHE_TAG_DIRTY, PAGECACHE_TAG_TOWRITE, PAGECACHE_TAG_WRITEBACK, XaNodeAlloc};

#[cfg(test)]
mod tests;

/// Marks the cached page `pfn` at `index` of `space` dirty (Linux
/// `filemap_dirty_folio` / `__folio_mark_dirty`; a shmem page only gets
/// `PG_dirty`, Linux `noop_dirty_folio`); true if it was clean. The
/// caller holds the space's lock; the page is in `space`.
pub fn folio_mark_dirty<A: XaNodeAlloc<CacheEntry>>(
    space: &mut AddressSpace<A>,
    pgdat: &PgData<'_>,
    page: &Page,
    index: u64,
) -> bool {
    if page.test_and_set(PageFlags::DIRTY) {
        return false;
    }
    if !space.can_writeback() {
        return true;
    }
    if page.mapping() == space.id().as_u64() {
        pgdat.mod_node_page_state(NodeStatItem::NrFileDirty, 1);
        pgdat.mod_node_page_state(NodeStatItem::NrDirtied, 1);
        space.set_mark(index, PAGECACHE_TAG_DIRTY);
    }
    true
}

/// Clears `PG_dirty` before the page is written (Linux
/// `folio_clear_dirty_for_io`); true if it was dirty, and then the caller
/// must write it. The page is locked; its dirty mark stays until
/// [`folio_start_writeback`].
pub fn folio_clear_dirty_for_io(pgdat: &PgData<'_>, page: &Page) -> bool {
    debug_assert!(crate::filemap::folio_test_locked(page), "folio_clear_dirty_for_io of an unlocked page");
    if page.test_and_clear(PageFlags::DIRTY) {
        pgdat.mod_node_page_state(NodeStatItem::NrFileDirty, -1);
        true
    } else {
        false
    }
}

/// Drops a page's dirtiness without writing it, as truncation does
/// (Linux `folio_cancel_dirty`). The page is locked and in `space`.
pub fn folio_cancel_dirty<A: XaNodeAlloc<CacheEntry>>(
    space: &mut AddressSpace<A>,
    pgdat: &PgData<'_>,
    page: &Page,
    index: u64,
) {
    if page.test_and_clear(PageFlags::DIRTY) && space.can_writeback() {
        pgdat.mod_node_page_state(NodeStatItem::NrFileDirty, -1);
    }
    space.clear_mark(index, PAGECACHE_TAG_DIRTY);
}

/// Why a page cannot start writeback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WritebackError {
    /// It is under writeback already (Linux's `VM_BUG_ON`).
    Busy,
}

/// The page goes under writeback (Linux `__folio_start_writeback`): sets
/// `PG_writeback` and the writeback mark, drops the dirty mark unless
/// the page was dirtied again, and the towrite mark unless `keep_towrite`.
/// The page is locked and in `space`, whose lock the caller holds.
pub fn folio_start_writeback<A: XaNodeAlloc<CacheEntry>>(
    space: &mut AddressSpace<A>,
    pgdat: &PgData<'_>,
    page: &Page,
    index: u64,
    keep_towrite: bool,
) -> Result<(), WritebackError> {
    if page.test_and_set(PageFlags::WRITEBACK) {
        return Err(WritebackError::Busy);
    }
    space.set_mark(index, PAGECACHE_TAG_WRITEBACK);
    if !page.test(PageFlags::DIRTY) {
        space.clear_mark(index, PAGECACHE_TAG_DIRTY);
    }
    if !keep_towrite {
        space.clear_mark(index, PAGECACHE_TAG_TOWRITE);
    }
    pgdat.mod_node_page_state(NodeStatItem::NrWriteback, 1);
    Ok(())
}

/// The page's write finished (Linux `folio_end_writeback`): clears
/// `PG_writeback` and its mark, counts it written, moves it to the cold
/// end of the inactive list if reclaim asked (`PG_reclaim`,
/// [`PgData::folio_rotate_reclaimable`]) and wakes whoever waits for
/// it. Runs in interrupt context; the caller holds the space's lock.
/// Does nothing to a page not under writeback.
pub fn folio_end_writeback<A: XaNodeAlloc<CacheEntry>>(
    space: &mut AddressSpace<A>,
    pgdat: &PgData<'_>,
    page: &Page,
    pfn: Pfn,
    index: u64,
    waits: &dyn FolioWaitTable,
) {
    if !page.test_and_clear(PageFlags::WRITEBACK) {
        return;
    }
    if page.mapping() == space.id().as_u64() {
        space.clear_mark(index, PAGECACHE_TAG_WRITEBACK);
    }
    pgdat.mod_node_page_state(NodeStatItem::NrWriteback, -1);
    pgdat.mod_node_page_state(NodeStatItem::NrWritten, 1);
    if page.test_and_clear(PageFlags::RECLAIM) {
        pgdat.folio_rotate_reclaimable(pfn);
    }
    waits.wake_up(pfn);
}

/// What writeback is for (Linux `enum writeback_sync_modes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Background and periodic writeback: write what is dirty, skip what
    /// is busy (`WB_SYNC_NONE`).
    None,
    /// Data integrity (`fsync`, `sync`): every page dirty when it started
    /// is written and waited for (`WB_SYNC_ALL`).
    All,
}

/// One writeback pass over a file (Linux `struct writeback_control`, the
/// fields we use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WritebackControl {
    /// The mode.
    pub sync_mode: SyncMode,
    /// Pages still to write; the pass stops at 0 (`nr_to_write`; `All`
    /// passes ignore it, as Linux's do).
    pub nr_to_write: u64,
    /// First page index (`range_start >> PAGE_SHIFT`).
    pub start: u64,
    /// Last page index, inclusive.
    pub end: u64,
}

impl WritebackControl {
    /// A data-integrity pass over the whole file.
    pub const fn sync_all() -> WritebackControl {
        WritebackControl { sync_mode: SyncMode::All, nr_to_write: u64::MAX, start: 0, end: u64::MAX }
    }

    /// A background pass writing up to `nr` pages.
    pub const fn background(nr: u64) -> WritebackControl {
        WritebackControl { sync_mode: SyncMode::None, nr_to_write: nr, start: 0, end: u64::MAX }
    }

    /// The mark the pass looks for: towrite for data integrity (set first
    /// by [`writeback_prepare`]), dirty otherwise (Linux
    /// `wbc_to_tag`).
    pub fn tag(&self) -> crate::xarray::XaMark {
        match self.sync_mode {
            SyncMode::All => PAGECACHE_TAG_TOWRITE,
            SyncMode::None => PAGECACHE_TAG_DIRTY,
        }
    }
}

/// Starts a pass (the first half of Linux `write_cache_pages`): a data
/// integrity pass marks the range's dirty pages towrite, so that pages
/// dirtied while it runs cannot keep it going for ever. Returns how many
/// pages it marked (none of a shmem space, which is never written back).
pub fn writeback_prepare<A: XaNodeAlloc<CacheEntry>>(space: &mut AddressSpace<A>, wbc: &WritebackControl) -> usize {
    if !space.can_writeback() {
        return 0;
    }
    match wbc.sync_mode {
        SyncMode::All => space.tag_pages_for_writeback(wbc.start, wbc.end),
        SyncMode::None => 0,
    }
}

/// The next page the pass writes, at or after `from` (Linux
/// `filemap_get_folios_tag` in `write_cache_pages`): index and page;
/// never one of a shmem space.
pub fn writeback_next<A: XaNodeAlloc<CacheEntry>>(
    space: &AddressSpace<A>,
    wbc: &WritebackControl,
    from: u64,
) -> Option<(u64, Pfn)> {
    if from > wbc.end || !space.can_writeback() {
        return None;
    }
    space.find(from, wbc.end, Some(wbc.tag()))
}

/// The dirty-memory tunables (Linux `vm.dirty_*` sysctls), validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirtySettings {
    /// `vm.dirty_background_ratio`: percent of dirtyable memory at which
    /// the flusher starts writing in the background.
    pub background_ratio: u32,
    /// `vm.dirty_ratio`: percent at which writers are throttled.
    pub ratio: u32,
    /// `vm.dirty_expire_centisecs`: age at which dirty data is written by
    /// the periodic flush.
    pub expire_centisecs: u32,
    /// `vm.dirty_writeback_centisecs`: how often the flusher wakes.
    pub writeback_centisecs: u32,
}

/// Why a tunable was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirtySettingError {
    /// A ratio above 100 (Linux's `proc_dointvec_minmax` bound).
    RatioOutOfRange,
}

impl DirtySettings {
    /// Linux's defaults: 10, 20, 3000 and 500.
    pub const DEFAULT: DirtySettings =
        DirtySettings { background_ratio: 10, ratio: 20, expire_centisecs: 3000, writeback_centisecs: 500 };

    /// Sets `vm.dirty_ratio` (0..=100).
    pub fn set_ratio(&mut self, ratio: u32) -> Result<(), DirtySettingError> {
        if ratio > 100 {
            return Err(DirtySettingError::RatioOutOfRange);
        }
        self.ratio = ratio;
        Ok(())
    }

    /// Sets `vm.dirty_background_ratio` (0..=100).
    pub fn set_background_ratio(&mut self, ratio: u32) -> Result<(), DirtySettingError> {
        if ratio > 100 {
            return Err(DirtySettingError::RatioOutOfRange);
        }
        self.background_ratio = ratio;
        Ok(())
    }
}

/// Memory that may hold dirty page-cache data, in pages (Linux
/// `global_dirtyable_memory`): free pages and file pages, less the
/// reserves the allocator keeps. Shmem pages are not in it: they can
/// never be cleaned by writeback (Linux counts the file LRU, which they
/// are not on).
pub fn global_dirtyable_memory(pgdat: &PgData<'_>) -> u64 {
    let free = pgdat.nr_free_pages().saturating_sub(pgdat.totalreserve_pages());
    let file = pgdat.node_page_state_pages(NodeStatItem::NrFilePages);
    free + file.saturating_sub(pgdat.node_page_state_pages(NodeStatItem::NrShmem))
}

/// The background and throttling thresholds in pages for `dirtyable`
/// pages (Linux `domain_dirty_limits`): each ratio's share, the
/// background one at most half the other when it would reach it.
pub fn dirty_limits(settings: &DirtySettings, dirtyable: u64) -> (u64, u64) {
    let thresh = dirtyable.saturating_mul(u64::from(settings.ratio)) / 100;
    let mut bg = dirtyable.saturating_mul(u64::from(settings.background_ratio)) / 100;
    if bg >= thresh {
        bg = thresh / 2;
    }
    (bg, thresh)
}

/// Pages that count against the thresholds (Linux `global_node_page_state`
/// of `NR_FILE_DIRTY` plus `NR_WRITEBACK`).
pub fn nr_dirty_and_writeback(pgdat: &PgData<'_>) -> u64 {
    pgdat.node_page_state_pages(NodeStatItem::NrFileDirty) + pgdat.node_page_state_pages(NodeStatItem::NrWriteback)
}
