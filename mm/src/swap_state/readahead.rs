//! Swap readahead (Linux `mm/swap_state.c`'s `swapin_readahead`,
//! `swap_cluster_readahead`, `swap_vma_readahead`, `swapin_nr_pages`,
//! `swap_vma_ra_win` and `swap_update_readahead`, and `page_cluster`):
//! a fault that must read its page from swap reads, in the same batch,
//! the pages it will likely want next, each into the swap cache locked
//! and not uptodate ([`super::read_swap_cache_async`]'s way), so that
//! their reads merge and a later fault finds them there.
//!
//! - VMA-based, the default ([`PgData::swap_vma_ra_enabled`], Linux's
//!   `/sys/kernel/mm/swap/vma_ra_enabled`): the swap entries of the ptes
//!   around the faulting address, within its VMA and its pte table (one
//!   pmd's reach), in a window from the VMA's last fault
//!   ([`Vma`]`::swap_readahead_info`: its address, window and hits):
//!   ahead of a fault one page past the last, behind one a page before
//!   it, centred otherwise. At most `2^min(page_cluster, 5)` pages.
//! - Cluster-based: the `2^page_cluster`-aligned block of slots around
//!   the entry's offset in its area (the header slot and slots past the
//!   area left out), sized from the machine's hits since the last
//!   cluster readahead.
//! - The window (Linux `__swapin_nr_pages`): hits + 2 rounded up to a
//!   power of two, at least 4; with no hits, one page unless the fault
//!   is next to the last one; at most the maximum; never below half the
//!   last window.
//! - Each page read besides the faulting one gets `PG_readahead` and
//!   counts `swap_ra`; a fault that finds a page with it clears it,
//!   counts `swap_ra_hit` and adds a hit to its VMA (VMA-based) or to the
//!   machine's (cluster-based) ([`swap_update_readahead`]).
//! - `vm.page-cluster` ([`PgData::page_cluster`]: 0 to
//!   [`PAGE_CLUSTER_MAX`], [`DEFAULT_PAGE_CLUSTER`]): 0 turns both off,
//!   the window being one page.
//! - Slots that are free, bad or already in the swap cache are skipped;
//!   a readahead page is allocated with the fault's mask
//!   (`GFP_HIGHUSER_MOVABLE`, which may reclaim, as Linux's readahead
//!   allocates), and one that cannot be had is skipped.
//!
//! A batch (up to [`SWAP_RA_BATCH`] slots) allocates its pages first,
//! then claims each slot and adds its page to the swap cache locked, and
//! only then submits all the reads together
//! ([`SwapBackend::swap_read_folios`], under one block plug). Linux
//! allocates, claims and submits page by page under a plug it flushes
//! whenever the task sleeps; ours is flushed at the end only, so the
//! allocations, which may sleep in reclaim, come before any page is
//! locked: no one can wait for a locked page whose read is not yet
//! submitted while its reader sleeps.
//!
//! Differences from Linux: VMA-based readahead is not turned off by a
//! rotating swap disk (Linux `nr_rotate_swap`; our disks do not say);
//! the faulting page of a window is read in its batch like the others,
//! then looked up again (as Linux does); a VMA split or copied starts
//! its readahead state afresh; the cluster window's batches are plugged
//! separately, 32 slots each.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::{
    SwapBackend, SwapinError, add_new_folio_to_swap_cache, is_swap_entry, read_swap_cache_async, swapin_alloc,
};
use crate::PAGE_SHIFT;
use crate::addr::{PAGE_SIZE, Pfn};
use crate::gfp::Gfp;
use crate::mmap::MmStruct;
use crate::mmzone::RangeError;
use crate::page::Page;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::pgtable::{Entry, Level, PageSize, PteFormat};
use crate::swapops::SwpEntry;
use crate::vma::{Vma, VmaAlloc};
use crate::vmstat::VmEventItem;

/// `vm.page-cluster`'s default (Linux `swap_setup`'s for machines of 16
/// MiB and more): readahead of up to 8 pages.
pub const DEFAULT_PAGE_CLUSTER: u32 = 3;

/// The largest `vm.page-cluster` (Linux `page_cluster_max`).
pub const PAGE_CLUSTER_MAX: u32 = 31;

/// The VMA window's largest order (Linux `SWAP_RA_ORDER_CEILING`).
const SWAP_RA_ORDER_CEILING: u32 = 5;

/// Slots one batch reads at most: the VMA window's largest.
pub const SWAP_RA_BATCH: usize = 1 << SWAP_RA_ORDER_CEILING;

/// Bits of the hits in `swap_readahead_info`, and the shift of the window
/// above them (Linux `SWAP_RA_WIN_SHIFT`); the address's page above both.
const SWAP_RA_WIN_SHIFT: u32 = PAGE_SHIFT / 2;

/// Linux `SWAP_RA_HITS_MASK`, also the most hits counted.
const SWAP_RA_HITS_MASK: u64 = (1 << SWAP_RA_WIN_SHIFT) - 1;

/// Linux `SWAP_RA_WIN_MASK`.
const SWAP_RA_WIN_MASK: u64 = (PAGE_SIZE - 1) & !SWAP_RA_HITS_MASK;

/// The hits a fresh VMA starts with, for a small first window (Linux
/// `GET_SWAP_RA_VAL`'s 4).
const SWAP_RA_INITIAL_HITS: u64 = 4;

/// Linux `SWAP_RA_VAL`: a fault's address, window and hits as one word.
const fn swap_ra_val(addr: u64, win: u64, hits: u64) -> u64 {
    (addr & !(PAGE_SIZE - 1)) | ((win << SWAP_RA_WIN_SHIFT) & SWAP_RA_WIN_MASK) | (hits & SWAP_RA_HITS_MASK)
}

/// Linux `GET_SWAP_RA_VAL`: the VMA's state, or a fresh one's.
fn get_swap_ra_val(vma: &Vma) -> u64 {
    match vma.swap_readahead_info.load(Ordering::Relaxed) {
        0 => SWAP_RA_INITIAL_HITS,
        v => v,
    }
}

/// The machine's swap readahead state (Linux's `page_cluster`,
/// `enable_vma_readahead`, `swapin_readahead_hits` and the statics of
/// `swapin_nr_pages`), kept with the node so that each simulated machine
/// has its own. Atomics, read and written without a lock, as Linux's.
#[derive(Debug)]
pub(crate) struct SwapRaState {
    page_cluster: AtomicU32,
    vma_ra_enabled: AtomicBool,
    /// Hits on cluster readahead's pages since its last window.
    swapin_readahead_hits: AtomicU64,
    /// The offset of the last cluster readahead that had no hits.
    prev_offset: AtomicU64,
    /// The last cluster window.
    last_readahead_pages: AtomicU64,
}

impl SwapRaState {
    pub(crate) const fn new() -> Self {
        SwapRaState {
            page_cluster: AtomicU32::new(DEFAULT_PAGE_CLUSTER),
            vma_ra_enabled: AtomicBool::new(true),
            swapin_readahead_hits: AtomicU64::new(SWAP_RA_INITIAL_HITS),
            prev_offset: AtomicU64::new(0),
            last_readahead_pages: AtomicU64::new(0),
        }
    }
}

impl PgData<'_> {
    /// `vm.page-cluster` (Linux `page_cluster`): swap readahead reads up
    /// to `2^page_cluster` pages (the VMA window at most 32); 0 turns it
    /// off.
    pub fn page_cluster(&self) -> u32 {
        self.swap_ra().page_cluster.load(Ordering::Relaxed)
    }

    /// Sets `vm.page-cluster` (0 to [`PAGE_CLUSTER_MAX`], Linux's
    /// `proc_dointvec_minmax` bounds). Out of range, nothing changes.
    pub fn set_page_cluster(&self, value: u64) -> Result<(), RangeError> {
        let value = u32::try_from(value).ok().filter(|&v| v <= PAGE_CLUSTER_MAX);
        let value = value.ok_or(RangeError { min: 0, max: u64::from(PAGE_CLUSTER_MAX) })?;
        self.swap_ra().page_cluster.store(value, Ordering::Relaxed);
        Ok(())
    }

    /// Whether swap readahead is VMA-based rather than cluster-based
    /// (Linux `/sys/kernel/mm/swap/vma_ra_enabled`, on by default).
    pub fn swap_vma_ra_enabled(&self) -> bool {
        self.swap_ra().vma_ra_enabled.load(Ordering::Relaxed)
    }

    /// Chooses VMA-based (true) or cluster-based swap readahead.
    pub fn set_swap_vma_ra_enabled(&self, enabled: bool) {
        self.swap_ra().vma_ra_enabled.store(enabled, Ordering::Relaxed);
    }
}

/// The next window in pages (Linux `__swapin_nr_pages`), from the last
/// fault's `prev_offset` and this one's `offset` (slots or pages), the
/// `hits` since, the largest window and the last one.
fn swapin_nr_pages_for(prev_offset: u64, offset: u64, hits: u64, max_pages: u64, prev_win: u64) -> u64 {
    // Linux: "please don't ask what the + 2 means, it just happens to
    // work well".
    let pages = match hits.saturating_add(2) {
        // No hits to judge by: read ahead only next to the last fault.
        2 if offset != prev_offset.wrapping_add(1) && offset != prev_offset.wrapping_sub(1) => 1,
        2 => 2,
        pages => pages.checked_next_power_of_two().unwrap_or(u64::MAX).max(4),
    };
    // Not shrunk too fast.
    pages.min(max_pages).max(prev_win / 2)
}

/// The cluster window for a fault on slot `offset` (Linux
/// `swapin_nr_pages`): the hits go back to 0.
fn swapin_nr_pages(pgdat: &PgData<'_>, offset: u64) -> u64 {
    let state = pgdat.swap_ra();
    let max_pages = 1u64 << pgdat.page_cluster();
    if max_pages <= 1 {
        return 1;
    }
    let hits = state.swapin_readahead_hits.swap(0, Ordering::Relaxed);
    let pages = swapin_nr_pages_for(
        state.prev_offset.load(Ordering::Relaxed),
        offset,
        hits,
        max_pages,
        state.last_readahead_pages.load(Ordering::Relaxed),
    );
    if hits == 0 {
        state.prev_offset.store(offset, Ordering::Relaxed);
    }
    state.last_readahead_pages.store(pages, Ordering::Relaxed);
    pages
}

/// A fault found `page` in the swap cache (Linux `swap_update_readahead`):
/// if readahead read it, the flag goes and it counts `swap_ra_hit`, a hit
/// for `vma` (the VMA and address of a fault, for VMA-based readahead)
/// or for the machine; the VMA remembers the fault's address either way.
pub fn swap_update_readahead(pgdat: &PgData<'_>, page: &Page, vma: Option<(&Vma, u64)>) {
    let readahead = page.test_and_clear(PageFlags::READAHEAD);
    let vma_ra = pgdat.swap_vma_ra_enabled();
    if vma_ra && let Some((vma, addr)) = vma {
        let ra_val = get_swap_ra_val(vma);
        let win = (ra_val & SWAP_RA_WIN_MASK) >> SWAP_RA_WIN_SHIFT;
        let mut hits = ra_val & SWAP_RA_HITS_MASK;
        if readahead {
            hits = (hits + 1).min(SWAP_RA_HITS_MASK);
        }
        vma.swap_readahead_info.store(swap_ra_val(addr, win, hits), Ordering::Relaxed);
    }
    if readahead {
        pgdat.count_vm_event(VmEventItem::SwapRaHit);
        if vma.is_none() || !vma_ra {
            pgdat.swap_ra().swapin_readahead_hits.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The VMA window around a fault at `faddr` (Linux `swap_vma_ra_win`):
/// `[start, end)` within `vma` and the fault's pmd, or `None` for a
/// window of one page. The VMA keeps the window, its hits back to 0.
fn swap_vma_ra_win(pgdat: &PgData<'_>, vma: &Vma, faddr: u64) -> Option<(u64, u64)> {
    let max_win = 1u64 << pgdat.page_cluster().min(SWAP_RA_ORDER_CEILING);
    if max_win == 1 {
        return None;
    }
    let ra_val = get_swap_ra_val(vma);
    let prev_pfn = ra_val >> PAGE_SHIFT;
    let prev_win = (ra_val & SWAP_RA_WIN_MASK) >> SWAP_RA_WIN_SHIFT;
    let hits = ra_val & SWAP_RA_HITS_MASK;
    let fpfn = faddr >> PAGE_SHIFT;
    let win = swapin_nr_pages_for(prev_pfn, fpfn, hits, max_win, prev_win);
    vma.swap_readahead_info.store(swap_ra_val(faddr, win, 0), Ordering::Relaxed);
    if win == 1 {
        return None;
    }
    // Ahead of a fault one page past the last, behind one a page before
    // it, else around it.
    let (lpfn, rpfn) = if fpfn == prev_pfn + 1 {
        (fpfn, fpfn + win)
    } else if prev_pfn == fpfn + 1 {
        ((fpfn + 1).saturating_sub(win), fpfn + 1)
    } else {
        let left = (win - 1) / 2;
        (fpfn.saturating_sub(left), fpfn + win - left)
    };
    let pmd = PageSize::Size2M.bytes();
    let pmd_start = faddr & !(pmd - 1);
    let start = (lpfn << PAGE_SHIFT).max(vma.start().as_u64()).max(pmd_start);
    let end = (rpfn << PAGE_SHIFT).min(vma.end().as_u64()).min(pmd_start + pmd);
    Some((start, end))
}

/// Reads the slots `entries` into the swap cache as one batch (the loop
/// of Linux's `swap_cluster_readahead` and `swap_vma_readahead` between
/// `blk_start_plug` and `blk_finish_plug`): a page for each slot in use
/// and not cached, allocated with `gfp`, then each slot claimed and its
/// page added locked, then every read submitted. Pages other than
/// `target`'s get `PG_readahead` and count `swap_ra`. Slots that cannot
/// be had are skipped.
fn swap_ra_batch(pgdat: &PgData<'_>, backend: &dyn SwapBackend, entries: &[SwpEntry], target: SwpEntry, gfp: Gfp) {
    let entries = &entries[..entries.len().min(SWAP_RA_BATCH)];
    let mut new: [Option<crate::page_alloc::Pages<'_, '_>>; SWAP_RA_BATCH] = [const { None }; SWAP_RA_BATCH];
    for (page, &entry) in new.iter_mut().zip(entries) {
        *page = swapin_alloc(pgdat, backend, entry, gfp);
    }
    let mut reads = [(SwpEntry::new(0, 0), Pfn::new(0)); SWAP_RA_BATCH];
    let mut n = 0;
    for (page, &entry) in new.iter_mut().zip(entries) {
        let Some(page) = page.take() else { continue };
        let readahead = entry != target;
        let Ok(pfn) = add_new_folio_to_swap_cache(pgdat, backend, entry, page, readahead) else { continue };
        if readahead {
            pgdat.count_vm_event(VmEventItem::SwapRa);
        }
        // Our reference goes now: the locked page keeps the cache's,
        // which no one takes before its read's completion unlocks it.
        if let Some(page) = pgdat.pfn_to_page(pfn) {
            let last = page.put_testzero();
            debug_assert!(!last, "a locked swap-cache page lost the cache's reference");
        }
        reads[n] = (entry, pfn);
        n += 1;
    }
    if n > 0 {
        backend.swap_read_folios(pgdat, &reads[..n]);
    }
}

/// Swap-in with cluster readahead (Linux `swap_cluster_readahead`): the
/// aligned block of slots around `entry`'s is read in batches, then
/// `entry`'s page is looked up, or read if it was skipped.
pub fn swap_cluster_readahead(
    pgdat: &PgData<'_>,
    backend: &dyn SwapBackend,
    entry: SwpEntry,
    gfp: Gfp,
) -> Result<Pfn, SwapinError> {
    let offset = entry.offset();
    let mask = swapin_nr_pages(pgdat, offset) - 1;
    if mask != 0
        && let Some(max) = backend.swap_max(entry.ty())
    {
        // The header is slot 0.
        let start = (offset & !mask).max(1);
        let end = (offset | mask).min(max.saturating_sub(1));
        let mut from = start;
        while from <= end {
            let mut entries = [SwpEntry::new(0, 0); SWAP_RA_BATCH];
            let n = usize::try_from(end - from + 1).map_or(SWAP_RA_BATCH, |n| n.min(SWAP_RA_BATCH));
            for (i, e) in entries[..n].iter_mut().enumerate() {
                *e = SwpEntry::new(entry.ty(), from + i as u64);
            }
            swap_ra_batch(pgdat, backend, &entries[..n], entry, gfp);
            from += n as u64;
        }
        // Linux: "Push any new pages onto the LRU now".
        pgdat.lru_add_drain();
    }
    read_swap_cache_async(pgdat, backend, entry, gfp)
}

impl<F: PteFormat, A: VmaAlloc> MmStruct<'_, F, A> {
    /// Swap-in of `entry` for a fault at `addr` in `vma`, reading ahead as
    /// the machine is set to (Linux `swapin_readahead`): VMA-based or
    /// cluster-based. The page comes with a reference, maybe locked for
    /// its read. The caller holds the mmap lock for reading.
    pub(crate) fn swapin_readahead(
        &self,
        backend: &dyn SwapBackend,
        entry: SwpEntry,
        vma: &Vma,
        addr: u64,
        gfp: Gfp,
    ) -> Result<Pfn, SwapinError> {
        let pgdat = self.pgd.pgdat();
        if pgdat.swap_vma_ra_enabled() {
            self.swap_vma_readahead(backend, entry, vma, addr, gfp)
        } else {
            swap_cluster_readahead(pgdat, backend, entry, gfp)
        }
    }

    /// Swap-in with VMA readahead (Linux `swap_vma_readahead`): the swap
    /// entries of the ptes in the window around `addr` are read as one
    /// batch, then `entry`'s page is looked up, or read if it was skipped.
    fn swap_vma_readahead(
        &self,
        backend: &dyn SwapBackend,
        entry: SwpEntry,
        vma: &Vma,
        addr: u64,
        gfp: Gfp,
    ) -> Result<Pfn, SwapinError> {
        let pgdat = self.pgd.pgdat();
        if let Some((start, end)) = swap_vma_ra_win(pgdat, vma, addr) {
            let fmt = self.pgd.format();
            let mut entries = [SwpEntry::new(0, 0); SWAP_RA_BATCH];
            let mut n = 0;
            // Read without the page-table lock, as Linux's
            // `ptep_get_lockless`: an entry that changed meanwhile names
            // a slot the claim then finds free or cached.
            self.pgd.for_each_pte(start, end, &mut |_, slot| {
                if n < SWAP_RA_BATCH
                    && let Entry::Swap(e) = fmt.decode(slot.load(Ordering::Acquire), Level::Pte)
                    && is_swap_entry(e)
                {
                    entries[n] = e;
                    n += 1;
                }
            });
            swap_ra_batch(pgdat, backend, &entries[..n], entry, gfp);
            pgdat.lru_add_drain();
        }
        read_swap_cache_async(pgdat, backend, entry, gfp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux's window: 1 page without hits away from the last fault, 2
    /// next to it, hits + 2 rounded up to a power of two (at least 4),
    /// capped, and never below half the last window.
    #[test]
    fn the_window_grows_with_hits_and_shrinks_by_halves() {
        assert_eq!(swapin_nr_pages_for(100, 200, 0, 8, 0), 1, "no hits, far from the last fault");
        assert_eq!(swapin_nr_pages_for(100, 101, 0, 8, 0), 2, "no hits, next to it");
        assert_eq!(swapin_nr_pages_for(100, 99, 0, 8, 0), 2, "no hits, just below it");
        assert_eq!(swapin_nr_pages_for(0, 500, 1, 8, 0), 4, "1 + 2 rounds up to 4");
        assert_eq!(swapin_nr_pages_for(0, 500, 4, 8, 0), 8);
        assert_eq!(swapin_nr_pages_for(0, 500, 7, 32, 0), 16);
        assert_eq!(swapin_nr_pages_for(0, 500, 63, 8, 0), 8, "capped at the largest");
        assert_eq!(swapin_nr_pages_for(100, 200, 0, 32, 32), 16, "half the last window");
        assert_eq!(swapin_nr_pages_for(100, 200, 0, 32, 3), 1);
    }

    /// `swap_readahead_info` packs the address's page, the window and the
    /// hits as Linux's `SWAP_RA_VAL` does.
    #[test]
    fn swap_ra_val_packs_address_window_and_hits() {
        let v = swap_ra_val(0x7000_1234, 16, 5);
        assert_eq!(v & !(PAGE_SIZE - 1), 0x7000_1000);
        assert_eq!((v & SWAP_RA_WIN_MASK) >> SWAP_RA_WIN_SHIFT, 16);
        assert_eq!(v & SWAP_RA_HITS_MASK, 5);
        assert_eq!(swap_ra_val(0, 0, 100) & SWAP_RA_HITS_MASK, 100 & SWAP_RA_HITS_MASK);
    }
}
