//! Host tests of shmem's swap (Linux `shmem_writeout`,
//! `shmem_swapin_folio`, `shmem_free_swap`): reclaim sends a shmem
//! file's dirty pages to the swap model and drops its clean ones, the
//! file's index keeps each page's swap entry, a lookup brings the page
//! back into its index and frees the slot, and no slot outlives a race
//! with truncation, a refused slot or a busy page.

#![allow(unsafe_code)]

use std::sync::Mutex;

use super::*;
use crate::filemap::{AddressSpace, CacheEntry, MappingId, folio_trylock};
use crate::gfp::{GFP_KERNEL, Gfp};
use crate::page_writeback::folio_mark_dirty;
use crate::rmap::Referenced;
use crate::sim::{HeapAlloc, Sim, SimFolioWaits, free_pages_drained};
use crate::swap_state::swap_pageout;
use crate::swap_state::tests::SimSwap;
use crate::vmscan::{CacheOwners, Reclaimer, shrink_page_cache};
use crate::vmstat::NodeStatItem;
use crate::xarray::XaNode;

const MIB: u64 = 1 << 20;
const PAGE: usize = crate::addr::PAGE_SIZE as usize;
const ID: MappingId = match MappingId::new(0x5000) {
    Some(id) => id,
    None => panic!("an aligned, non-zero id"),
};

/// One shmem file's cache behind a lock, as the kernel keeps it; no
/// address space maps its pages.
struct ShmemFile {
    space: Mutex<AddressSpace<HeapAlloc<XaNode<CacheEntry>>>>,
}

impl CacheOwners for ShmemFile {
    fn remove_clean(&self, pgdat: &PgData<'_>, id: MappingId, index: u64, pfn: Pfn) -> bool {
        let mut space = self.space.lock().unwrap();
        id == space.id() && space.remove_mapping(pgdat, index, pfn)
    }

    fn folio_referenced(&self, _: &PgData<'_>, _: Pfn, _: bool) -> Referenced {
        Referenced { complete: true, ..Referenced::default() }
    }

    fn try_to_unmap(&self, _: &PgData<'_>, _: Pfn) -> bool {
        false
    }

    fn shmem_delete_from_page_cache(
        &self,
        pgdat: &PgData<'_>,
        id: MappingId,
        index: u64,
        pfn: Pfn,
        entry: SwpEntry,
    ) -> bool {
        let mut space = self.space.lock().unwrap();
        id == space.id() && space.shmem_delete_from_page_cache(pgdat, index, pfn, entry, SHMEM_WRITEOUT_REFS)
    }
}

/// A machine with the swap model registered.
fn machine(slots: u64) -> (Sim, &'static SimSwap) {
    let swap = SimSwap::leaked(slots);
    (Sim::flat(32 * MIB), swap)
}

/// A shmem file of `n` pages: page `i` holds byte `i + 1` and is dirty
/// if `dirty(i)`, else it holds zeros and is clean (a hole a read fault
/// filled); on the LRU, the test's references put.
fn shmem_file(pgdat: &PgData<'_>, n: u64, dirty: impl Fn(u64) -> bool) -> (ShmemFile, Vec<Pfn>) {
    let file = ShmemFile { space: Mutex::new(AddressSpace::new(ID, true, HeapAlloc::default())) };
    let mut pfns = Vec::new();
    for index in 0..n {
        let pfn = pgdat.alloc_pages(GFP_KERNEL | Gfp::ZERO, 0).unwrap();
        let page = pgdat.pfn_to_page(pfn).unwrap();
        assert!(folio_trylock(page));
        let mut space = file.space.lock().unwrap();
        space.add_folio(pgdat, pfn, index).unwrap();
        if dirty(index) {
            // SAFETY: a new page only this test reaches.
            unsafe { crate::highmem::memcpy_to_page(pgdat, pfn, 0, &[index as u8 + 1; PAGE]) }.unwrap();
            folio_mark_dirty(&mut space, pgdat, page, index);
        }
        drop(space);
        page.set(PageFlags::UPTODATE);
        pgdat.folio_add_lru(pfn);
        folio_unlock(page, pfn, &SimFolioWaits);
        // SAFETY: the test's allocation reference; the cache keeps its own.
        unsafe { pgdat.put_page(pfn) }.unwrap();
        pfns.push(pfn);
    }
    pgdat.lru_add_drain();
    (file, pfns)
}

fn bytes(pgdat: &PgData<'_>, pfn: Pfn) -> Vec<u8> {
    let mut data = vec![0u8; PAGE];
    // SAFETY: a page the test holds a reference to; nothing writes it.
    unsafe { crate::highmem::memcpy_from_page(pgdat, &mut data, pfn, 0) }.unwrap();
    data
}

/// Reclaim, several rounds (a page written in one is freed in the
/// next); the pages freed.
fn reclaim(pgdat: &PgData<'_>, file: &ShmemFile, n: u64) -> u64 {
    (0..32).map(|_| shrink_page_cache(pgdat, file, &SimFolioWaits, n, Reclaimer::Direct, GFP_KERNEL)).sum()
}

fn swap_entry(file: &ShmemFile, index: u64) -> Option<SwpEntry> {
    file.space.lock().unwrap().lookup_entry(index).and_then(CacheEntry::swap)
}

/// A lookup's swap-in of the page at `index`: the page, with our
/// reference.
fn swapin(pgdat: &PgData<'_>, swap: &SimSwap, file: &ShmemFile, index: u64) -> Pfn {
    let entry = swap_entry(file, index).expect("a swap entry");
    let came = shmem_swapin_folio(pgdat, swap, &SimFolioWaits, entry, GFP_KERNEL, |pfn| {
        file.space.lock().unwrap().shmem_add_to_page_cache(pgdat, pfn, index, entry)
    });
    match came {
        Ok(ShmemSwapin::Done(pfn)) => pfn,
        other => panic!("swap-in of page {index}: {other:?}"),
    }
}

/// Takes every swap entry out of the file and frees its slot, as
/// truncation does.
fn truncate_swap(pgdat: &PgData<'_>, swap: &SimSwap, file: &ShmemFile) {
    while let Some((_, entry)) = file.space.lock().unwrap().shmem_take_swap(0, u64::MAX) {
        shmem_free_swap(pgdat, swap, entry);
    }
}

#[test]
fn reclaim_sends_dirty_shmem_pages_to_swap_and_drops_clean_ones() {
    let (sim, swap) = machine(64);
    let pgdat = sim.pgdat(1);
    pgdat.set_swap_backend(swap);
    let free = free_pages_drained(&pgdat);
    let (file, _) = shmem_file(&pgdat, 16, |i| i < 12);
    assert_eq!(pgdat.node_page_state(NodeStatItem::NrShmem), 16);
    assert_eq!(reclaim(&pgdat, &file, 16), 16, "every page left memory");
    assert_eq!(free_pages_drained(&pgdat), free);
    let space = file.space.lock().unwrap();
    assert_eq!((space.nrpages(), space.swapped(), space.nr_shadows()), (0, 12, 0));
    space.check(&pgdat).unwrap();
    drop(space);
    for index in 0..16 {
        match swap_entry(&file, index) {
            Some(entry) => {
                assert!(index < 12, "clean page {index} went to swap");
                assert_eq!(swap.count(entry), 1, "the index holds its slot once");
                assert_eq!(swap.data(entry), Some(vec![index as u8 + 1; PAGE]), "page {index}'s data");
            }
            None => {
                assert!(index >= 12, "dirty page {index} has no swap entry");
                assert_eq!(file.space.lock().unwrap().lookup_entry(index), None, "a clean page leaves a hole");
            }
        }
    }
    assert_eq!(swap.in_use(), 12);
    for item in [NodeStatItem::NrShmem, NodeStatItem::NrFilePages, NodeStatItem::NrSwapcache] {
        assert_eq!(pgdat.node_page_state(item), 0, "{item:?}");
    }
    truncate_swap(&pgdat, swap, &file);
    assert_eq!((swap.in_use(), file.space.lock().unwrap().swapped()), (0, 0));
}

#[test]
fn a_lookup_swaps_a_shmem_page_back_into_its_index_and_frees_the_slot() {
    let (sim, swap) = machine(64);
    let pgdat = sim.pgdat(1);
    pgdat.set_swap_backend(swap);
    let (file, _) = shmem_file(&pgdat, 8, |_| true);
    assert_eq!(reclaim(&pgdat, &file, 8), 8);
    for index in (0..8).rev() {
        let pfn = swapin(&pgdat, swap, &file, index);
        let page = pgdat.pfn_to_page(pfn).unwrap();
        assert_eq!(bytes(&pgdat, pfn), vec![index as u8 + 1; PAGE], "page {index} came back intact");
        assert_eq!((page.mapping(), page.index()), (ID.as_u64(), index));
        let flags = page.flags();
        assert!(flags.contains(PageFlags::UPTODATE | PageFlags::DIRTY | PageFlags::SWAPBACKED), "{flags:?}");
        assert!(!flags.intersects(PageFlags::SWAPCACHE | PageFlags::LOCKED), "{flags:?}");
        assert_eq!(file.space.lock().unwrap().lookup(index), Some(pfn));
        // SAFETY: the swap-in's reference to us; the cache keeps its own.
        unsafe { pgdat.put_page(pfn) }.unwrap();
    }
    let space = file.space.lock().unwrap();
    assert_eq!((space.nrpages(), space.swapped()), (8, 0));
    space.check(&pgdat).unwrap();
    drop(space);
    assert_eq!(swap.in_use(), 0, "every slot freed");
    assert_eq!(pgdat.node_page_state(NodeStatItem::NrShmem), 8);
    assert_eq!(pgdat.node_page_state(NodeStatItem::NrSwapcache), 0);
    // Dirty again (the slot's copy is gone): out again on the next reclaim.
    pgdat.lru_add_drain();
    assert_eq!(reclaim(&pgdat, &file, 8), 8);
    assert_eq!((file.space.lock().unwrap().swapped(), swap.in_use()), (8, 8));
    truncate_swap(&pgdat, swap, &file);
    assert_eq!(swap.in_use(), 0);
}

#[test]
fn a_swap_in_that_loses_its_entry_to_truncation_leaks_no_slot() {
    let (sim, swap) = machine(64);
    let pgdat = sim.pgdat(1);
    pgdat.set_swap_backend(swap);
    let free = free_pages_drained(&pgdat);
    let (file, _) = shmem_file(&pgdat, 1, |_| true);
    assert_eq!(reclaim(&pgdat, &file, 1), 1);
    let entry = swap_entry(&file, 0).unwrap();
    // Truncation takes the entry while the swap-in reads the slot.
    let came = shmem_swapin_folio(&pgdat, swap, &SimFolioWaits, entry, GFP_KERNEL, |pfn| {
        truncate_swap(&pgdat, swap, &file);
        file.space.lock().unwrap().shmem_add_to_page_cache(&pgdat, pfn, 0, entry)
    });
    assert_eq!(came, Ok(ShmemSwapin::Retry), "the index no longer holds the entry");
    let space = file.space.lock().unwrap();
    assert_eq!((space.lookup_entry(0), space.nrpages(), space.swapped()), (None, 0, 0));
    drop(space);
    // The page read meanwhile is the swap cache's alone now; reclaim
    // drops it and its slot.
    pgdat.lru_add_drain();
    reclaim(&pgdat, &file, 1);
    assert_eq!((swap.in_use(), pgdat.node_page_state(NodeStatItem::NrSwapcache)), (0, 0));
    assert_eq!(free_pages_drained(&pgdat), free);
}

#[test]
fn without_a_slot_or_with_the_page_in_use_a_dirty_shmem_page_stays() {
    let (sim, swap) = machine(64);
    let pgdat = sim.pgdat(1);
    pgdat.set_swap_backend(swap);
    let (file, pfns) = shmem_file(&pgdat, 2, |_| true);
    let page = |i: usize| pgdat.pfn_to_page(pfns[i]).unwrap();
    // Page 1 is held by a lookup about to map or copy it.
    page(1).get();
    // The slot cannot be counted for the index (Linux's `redirty`).
    swap.refuse.store(true, core::sync::atomic::Ordering::Relaxed);
    assert_eq!(shrink_page_cache(&pgdat, &file, &SimFolioWaits, 2, Reclaimer::Direct, GFP_KERNEL), 0);
    assert!(page(0).test(PageFlags::ACTIVE), "a page that found no slot is activated");
    for i in 0..2 {
        assert!(page(i).test(PageFlags::DIRTY) && !page(i).test(PageFlags::SWAPCACHE), "page {i}");
    }
    assert_eq!((swap.in_use(), pgdat.node_page_state(NodeStatItem::NrSwapcache)), (0, 0), "the slots went back");
    swap.refuse.store(false, core::sync::atomic::Ordering::Relaxed);
    assert_eq!(reclaim(&pgdat, &file, 2), 1, "the unused page goes, the busy one stays");
    let space = file.space.lock().unwrap();
    assert_eq!((space.lookup(1), space.swapped()), (Some(pfns[1]), 1));
    space.check(&pgdat).unwrap();
    drop(space);
    assert!(page(1).test(PageFlags::DIRTY) && !page(1).test(PageFlags::SWAPCACHE));
    assert_eq!(page(1).mapping(), ID.as_u64(), "still the file's");
    assert_eq!(swap.in_use(), 1, "only the page that went holds a slot");
    // SAFETY: the reference taken above.
    unsafe { pgdat.put_page(pfns[1]) }.unwrap();
    truncate_swap(&pgdat, swap, &file);
    assert_eq!(swap.in_use(), 0);
}

#[test]
fn freeing_a_swap_entry_drops_its_clean_swap_cache_page_at_once() {
    let (sim, swap) = machine(64);
    let pgdat = sim.pgdat(1);
    pgdat.set_swap_backend(swap);
    let free = free_pages_drained(&pgdat);
    let (file, pfns) = shmem_file(&pgdat, 1, |_| true);
    let (pfn, page) = (pfns[0], pgdat.pfn_to_page(pfns[0]).unwrap());
    // Reclaim's part by hand: its reference, the lock, out and written.
    page.get();
    assert!(folio_trylock(page));
    let entry =
        shmem_writeout(&pgdat, swap, pfn, page, |entry| file.shmem_delete_from_page_cache(&pgdat, ID, 0, pfn, entry))
            .expect("a slot");
    assert_eq!(page.mapping(), 0, "a swap-cache page of no file");
    assert_eq!(crate::swap_state::folio_swap_entry(page), Some(entry));
    assert!(swap_pageout(&pgdat, swap, pfn, page));
    folio_unlock(page, pfn, &SimFolioWaits);
    // SAFETY: the reference taken above; the swap cache keeps its own.
    unsafe { pgdat.put_page(pfn) }.unwrap();
    assert_eq!((swap.count(entry), pgdat.node_page_state(NodeStatItem::NrSwapcache)), (1, 1));
    truncate_swap(&pgdat, swap, &file);
    assert_eq!((swap.in_use(), pgdat.node_page_state(NodeStatItem::NrSwapcache)), (0, 0));
    assert_eq!(free_pages_drained(&pgdat), free, "the page went with its slot");
}
