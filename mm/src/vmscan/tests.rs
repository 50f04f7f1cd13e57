#![allow(unsafe_code)]

use std::sync::Mutex;

use super::*;
use crate::filemap::AddressSpace;
use crate::gfp::GFP_KERNEL;
use crate::page_writeback::folio_mark_dirty;
use crate::sim::{Sim, SimFolioWaits};

const MIB: u64 = 1 << 20;
const ID: MappingId = match MappingId::new(0x3000) {
    Some(id) => id,
    None => panic!("an aligned, non-zero id"),
};

type Nodes = crate::sim::HeapAlloc<crate::xarray::XaNode<Pfn>>;

/// One file's cache behind a lock, the way the kernel keeps it.
struct OneFile {
    space: Mutex<AddressSpace<Nodes>>,
}

impl CacheOwners for OneFile {
    fn remove_clean(&self, pgdat: &PgData<'_>, id: MappingId, index: u64, pfn: Pfn) -> bool {
        let mut space = self.space.lock().unwrap();
        id == space.id() && space.lookup(index) == Some(pfn) && space.remove_folio(pgdat, index).is_some()
    }
}

fn new_file() -> OneFile {
    OneFile { space: Mutex::new(AddressSpace::new(ID, false, Nodes::default())) }
}

/// A file of `n` cached, clean, uptodate pages, the test's references put.
fn file_of(pgdat: &PgData<'_>, n: u64) -> (OneFile, Vec<Pfn>) {
    fill(pgdat, new_file(), n)
}

/// `file` with `n` cached, clean, uptodate pages added.
fn fill(pgdat: &PgData<'_>, file: OneFile, n: u64) -> (OneFile, Vec<Pfn>) {
    let mut pfns = Vec::new();
    for index in 0..n {
        let pfn = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
        let page = pgdat.pfn_to_page(pfn).unwrap();
        assert!(folio_trylock(page));
        file.space.lock().unwrap().add_folio(pgdat, pfn, index).unwrap();
        pgdat.folio_add_lru(pfn);
        page.set(PageFlags::UPTODATE);
        folio_unlock(page, pfn, &SimFolioWaits);
        // SAFETY: the test's allocation reference; the cache keeps its own.
        unsafe { pgdat.put_page(pfn) }.unwrap();
        pfns.push(pfn);
    }
    (file, pfns)
}

#[test]
fn clean_unused_cache_pages_are_freed_and_busy_ones_are_kept() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let (file, pfns) = file_of(&pgdat, 6);
    let page = |i: usize| pgdat.pfn_to_page(pfns[i]).unwrap();
    // 0: dirty; 1: locked; 2: held by someone; 3: mapped (counted);
    // 4: referenced but unmapped (Linux reclaims it: the flag alone only
    // promotes through a second access); 5: clean and unused.
    folio_mark_dirty(&mut file.space.lock().unwrap(), &pgdat, page(0), 0);
    assert!(folio_trylock(page(1)));
    page(2).get();
    page(3).inc_mapcount();
    page(4).set(PageFlags::REFERENCED);
    let free_before = crate::sim::free_pages_drained(&pgdat);
    let freed = shrink_page_cache(&pgdat, &file, &SimFolioWaits, 32, Reclaimer::Direct, GFP_KERNEL);
    assert_eq!(freed, 2, "the clean, unused, unmapped pages go");
    assert_eq!(crate::sim::free_pages_drained(&pgdat), free_before + 2);
    let space = file.space.lock().unwrap();
    assert_eq!((space.lookup(4), space.lookup(5)), (None, None));
    assert_eq!((0..4).map(|i| space.lookup(i).is_some()).filter(|&c| c).count(), 4);
    space.check(&pgdat).unwrap();
    drop(space);
    assert!(page(0).test(PageFlags::ACTIVE), "the dirty page was activated for the flusher");
    assert!(page(3).test(PageFlags::REFERENCED) && !page(3).test(PageFlags::ACTIVE), "mapped: referenced, kept");
    assert_eq!(pgdat.lru_pages(LruList::InactiveFile) + pgdat.lru_pages(LruList::ActiveFile), 4, "kept on the lists");
    // A second pass finds the mapped page referenced: it goes active.
    assert_eq!(shrink_page_cache(&pgdat, &file, &SimFolioWaits, 32, Reclaimer::Direct, GFP_KERNEL), 0);
    assert!(page(3).test(PageFlags::ACTIVE));
    folio_unlock(page(1), pfns[1], &SimFolioWaits);
    page(3).dec_mapcount();
    // SAFETY: the reference taken above.
    unsafe { pgdat.put_page(pfns[2]) }.unwrap();
}

#[test]
fn shmem_pages_are_never_reclaimed_clean_or_dirty() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let shmem = OneFile { space: Mutex::new(AddressSpace::new(ID, true, Nodes::default())) };
    let (file, pfns) = fill(&pgdat, shmem, 4);
    // Page 0 holds data; 1..4 are clean, as a read fault of a hole leaves them.
    folio_mark_dirty(&mut file.space.lock().unwrap(), &pgdat, pgdat.pfn_to_page(pfns[0]).unwrap(), 0);
    pgdat.lru_add_drain();
    assert_eq!(pgdat.lru_pages(LruList::InactiveAnon), 4, "shmem pages are on the anonymous list");
    assert_eq!(shrink_page_cache(&pgdat, &file, &SimFolioWaits, 32, Reclaimer::Direct, GFP_KERNEL), 0);
    assert_eq!(
        shrink_page_cache(&pgdat, &file, &SimFolioWaits, 32, Reclaimer::Direct, GFP_KERNEL),
        0,
        "not on a second round either"
    );
    let mut space = file.space.lock().unwrap();
    assert_eq!(space.nrpages(), 4);
    space.check(&pgdat).unwrap();
    for (index, pfn) in pfns.into_iter().enumerate() {
        let page = pgdat.pfn_to_page(pfn).unwrap();
        assert!(folio_trylock(page));
        assert_eq!(space.remove_folio(&pgdat, index as u64), Some(pfn));
        folio_unlock(page, pfn, &SimFolioWaits);
        // SAFETY: the cache's reference, handed over: the last one.
        unsafe { pgdat.put_page(pfn) }.unwrap();
    }
}

#[test]
fn the_scan_stops_once_enough_pages_went_and_takes_the_coldest_first() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let (file, _) = file_of(&pgdat, 40);
    // Pages 0..32 went to the list first (a full batch, then the rest at
    // the drain): the cold end holds the oldest.
    let first = shrink_page_cache(&pgdat, &file, &SimFolioWaits, 4, Reclaimer::Direct, GFP_KERNEL);
    assert!((4..40).contains(&first), "{first} freed: enough, and it stopped");
    let space = file.space.lock().unwrap();
    assert_eq!(space.nrpages(), 40 - first);
    assert!((0..first).all(|i| space.lookup(i).is_none()), "the {first} oldest pages went");
    drop(space);
    assert_eq!(shrink_page_cache(&pgdat, &file, &SimFolioWaits, 100, Reclaimer::Direct, GFP_KERNEL), 40 - first);
    assert_eq!(file.space.lock().unwrap().nrpages(), 0);
    assert_eq!(shrink_page_cache(&pgdat, &file, &SimFolioWaits, 100, Reclaimer::Direct, GFP_KERNEL), 0, "nothing left");
    assert_eq!(pgdat.all_vm_events(VmEventItem::PgstealDirect), 40);
}

#[test]
fn an_inactive_list_smaller_than_the_active_is_refilled_from_it() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let (file, pfns) = file_of(&pgdat, 8);
    pgdat.lru_add_drain();
    for &pfn in &pfns {
        pgdat.folio_mark_accessed(pfn);
        pgdat.folio_mark_accessed(pfn);
    }
    pgdat.lru_add_drain();
    assert_eq!(pgdat.lru_pages(LruList::ActiveFile), 8, "all active after two accesses");
    assert_eq!(
        shrink_page_cache(&pgdat, &file, &SimFolioWaits, 8, Reclaimer::Direct, GFP_KERNEL),
        8,
        "deactivated, then reclaimed"
    );
    assert_eq!(pgdat.all_vm_events(VmEventItem::Pgdeactivate), 8);
    assert_eq!(file.space.lock().unwrap().nrpages(), 0);
}

/// Fills memory with clean cache pages of `file` until an allocation
/// that may not dip below the min watermark fails; returns how many.
fn fill_memory(pgdat: &PgData<'_>, file: &OneFile) -> u64 {
    let mut n = 0;
    while let Some(pfn) = pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0) {
        let page = pgdat.pfn_to_page(pfn).unwrap();
        assert!(folio_trylock(page));
        file.space.lock().unwrap().add_folio(pgdat, pfn, n).unwrap();
        pgdat.folio_add_lru(pfn);
        page.set(PageFlags::UPTODATE);
        folio_unlock(page, pfn, &SimFolioWaits);
        // SAFETY: the test's reference; the cache keeps its own.
        unsafe { pgdat.put_page(pfn) }.unwrap();
        n += 1;
    }
    n
}

/// Frees from one file, as the kernel's reclaim does from its caches.
struct CacheReclaimer(OneFile);

impl DirectReclaim for CacheReclaimer {
    fn try_to_free_pages(&self, pgdat: &PgData<'_>, _gfp: Gfp, _order: u32) -> u64 {
        shrink_page_cache(pgdat, &self.0, &SimFolioWaits, SWAP_CLUSTER_MAX, Reclaimer::Direct, GFP_KERNEL)
    }
}

#[test]
fn an_allocation_that_may_block_gets_pages_back_from_the_cache() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    // Fill memory with cache pages until nothing is left above the min
    // watermark for GFP_KERNEL.
    let file = new_file();
    let n = fill_memory(&pgdat, &file);
    assert!(pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0).is_none(), "memory is full of cache");
    let reclaimer: &'static CacheReclaimer = Box::leak(Box::new(CacheReclaimer(file)));
    pgdat.set_direct_reclaim(reclaimer);
    assert!(
        pgdat.alloc_pages(crate::gfp::GFP_NOWAIT | Gfp::NOWARN, 0).is_none(),
        "an allocation that may not block does not reclaim"
    );
    let pfn = pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0).expect("reclaim made room");
    let left = reclaimer.0.space.lock().unwrap().nrpages();
    assert!(left < n && left + SWAP_CLUSTER_MAX * 2 >= n, "one round of reclaim from the cache: {n} -> {left}");
    // SAFETY: the test's page.
    unsafe { pgdat.put_page(pfn) }.unwrap();
}

/// Counts its wakeups, as the kernel's kswapd thread would be woken.
struct CountingKswapd(std::sync::atomic::AtomicU64);

impl Kswapd for CountingKswapd {
    fn wakeup(&self, _order: u32) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn the_slow_path_wakes_kswapd_and_balance_pgdat_restores_the_high_watermark() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let kswapd: &'static CountingKswapd = Box::leak(Box::new(CountingKswapd(std::sync::atomic::AtomicU64::new(0))));
    pgdat.set_kswapd(kswapd);
    let file = new_file();
    let n = fill_memory(&pgdat, &file);
    assert!(kswapd.0.load(std::sync::atomic::Ordering::Relaxed) > 0, "the slow path woke kswapd");
    assert!(!pgdat_balanced(&pgdat), "memory is full of cache");
    let freed = balance_pgdat(&pgdat, &file, &SimFolioWaits);
    assert!(freed > 0 && freed < n, "{freed} of {n} cache pages freed");
    assert!(pgdat_balanced(&pgdat), "every zone above its high watermark again");
    assert_eq!(pgdat.all_vm_events(VmEventItem::PgstealKswapd), freed);
    assert_eq!(pgdat.all_vm_events(VmEventItem::PgstealDirect), 0, "kswapd's, not direct reclaim's");
    assert_eq!(file.space.lock().unwrap().nrpages(), n - freed);
}
