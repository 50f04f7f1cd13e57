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

type Nodes = crate::sim::HeapAlloc<crate::xarray::XaNode<crate::filemap::CacheEntry>>;

/// One file's cache behind a lock, the way the kernel keeps it.
struct OneFile {
    space: Mutex<AddressSpace<Nodes>>,
}

/// No address space maps the file's pages (a page's mapcount, when a
/// test raises it, stands for a mapper the walk cannot reach).
impl CacheOwners for OneFile {
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
    // 0: dirty; 1: locked; 2: held by someone; 3: mapped where the walk
    // cannot reach (an address space it could not lock);
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
    assert!(page(3).test(PageFlags::ACTIVE), "still mapped after try_to_unmap: activated");
    assert_eq!(pgdat.lru_pages(LruList::InactiveFile) + pgdat.lru_pages(LruList::ActiveFile), 4, "kept on the lists");
    folio_unlock(page(1), pfns[1], &SimFolioWaits);
    page(3).dec_mapcount();
    // SAFETY: the reference taken above.
    unsafe { pgdat.put_page(pfns[2]) }.unwrap();
}

#[test]
fn without_swap_shmem_pages_are_never_reclaimed_clean_or_dirty() {
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
    let space = file.space.lock().unwrap();
    assert_eq!((space.nrpages(), space.nr_shadows()), (0, 8), "each evicted page left a shadow");
    for index in 0..8 {
        let Some(crate::filemap::CacheEntry::Shadow(shadow)) = space.lookup_entry(index) else {
            panic!("no shadow at {index}")
        };
        assert!(shadow.unpack().workingset, "deactivated pages were PG_workingset when evicted");
    }
    space.check(&pgdat).unwrap();
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

/// Frees from one file, as the kernel's reclaim does from its caches,
/// marked as reclaiming meanwhile; with `nested`, allocates a page in the
/// middle, as a reverse-map walk's list would.
struct CacheReclaimer {
    file: OneFile,
    memalloc: std::sync::atomic::AtomicBool,
    nested: bool,
    calls: std::sync::atomic::AtomicU64,
    nested_got: Mutex<Vec<Option<Pfn>>>,
}

impl CacheReclaimer {
    fn new(file: OneFile, nested: bool) -> &'static CacheReclaimer {
        Box::leak(Box::new(CacheReclaimer {
            file,
            memalloc: false.into(),
            nested,
            calls: 0.into(),
            nested_got: Mutex::new(Vec::new()),
        }))
    }
}

impl DirectReclaim for CacheReclaimer {
    fn try_to_free_pages(&self, pgdat: &PgData<'_>, _gfp: Gfp, _order: u32) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        self.calls.fetch_add(1, Relaxed);
        self.memalloc.store(true, Relaxed);
        if self.nested {
            let got = pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0);
            self.nested_got.lock().unwrap().push(got);
        }
        let freed =
            shrink_page_cache(pgdat, &self.file, &SimFolioWaits, SWAP_CLUSTER_MAX, Reclaimer::Direct, GFP_KERNEL);
        self.memalloc.store(false, Relaxed);
        freed
    }

    fn current_is_memalloc(&self) -> bool {
        self.memalloc.load(std::sync::atomic::Ordering::Relaxed)
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
    let reclaimer = CacheReclaimer::new(file, false);
    pgdat.set_direct_reclaim(reclaimer);
    assert!(
        pgdat.alloc_pages(crate::gfp::GFP_NOWAIT | Gfp::NOWARN, 0).is_none(),
        "an allocation that may not block does not reclaim"
    );
    let pfn = pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0).expect("reclaim made room");
    let left = reclaimer.file.space.lock().unwrap().nrpages();
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

/// A reclaimer's own allocation (Linux `PF_MEMALLOC`) takes the reserves
/// below the min watermark and never enters reclaim again: one call of
/// reclaim, however full memory is.
#[test]
fn an_allocation_made_while_reclaiming_takes_the_reserves_and_does_not_recurse() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let file = new_file();
    fill_memory(&pgdat, &file);
    let reclaimer = CacheReclaimer::new(file, true);
    pgdat.set_direct_reclaim(reclaimer);
    let pfn = pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0).expect("reclaim made room");
    assert_eq!(
        reclaimer.calls.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "reclaim ran once, not from within itself"
    );
    let nested = reclaimer.nested_got.lock().unwrap().clone();
    assert_eq!(nested.len(), 1);
    let got = nested[0].expect("the reclaimer's allocation was served from the reserves");
    // SAFETY: the test's pages.
    unsafe {
        pgdat.put_page(got).unwrap();
        pgdat.put_page(pfn).unwrap();
    }
}

/// A dirty page reclaim meets is activated and marked `PG_reclaim`; when
/// its writeback ends it moves to the cold end of the inactive list
/// (Linux `folio_rotate_reclaimable`, `pgrotated`), and the next scan
/// frees it.
#[test]
fn a_dirty_page_reclaim_met_is_rotated_when_written_and_freed_next() {
    use crate::page_writeback::{folio_clear_dirty_for_io, folio_end_writeback, folio_start_writeback};
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let (file, pfns) = file_of(&pgdat, 1);
    let page = pgdat.pfn_to_page(pfns[0]).unwrap();
    folio_mark_dirty(&mut file.space.lock().unwrap(), &pgdat, page, 0);
    assert_eq!(shrink_page_cache(&pgdat, &file, &SimFolioWaits, 32, Reclaimer::Direct, crate::gfp::GFP_KERNEL), 0);
    assert!(page.test(PageFlags::ACTIVE) && page.test(PageFlags::RECLAIM), "activated, marked for rotation");
    // The flusher writes it.
    assert!(folio_trylock(page));
    assert!(folio_clear_dirty_for_io(&pgdat, page));
    folio_start_writeback(&mut file.space.lock().unwrap(), &pgdat, page, 0, false).unwrap();
    folio_unlock(page, pfns[0], &SimFolioWaits);
    folio_end_writeback(&mut file.space.lock().unwrap(), &pgdat, page, pfns[0], 0, &SimFolioWaits);
    assert!(!page.test(PageFlags::ACTIVE) && !page.test(PageFlags::RECLAIM));
    assert_eq!(pgdat.all_vm_events(VmEventItem::Pgrotated), 1);
    assert_eq!(pgdat.lru_pages(LruList::InactiveFile), 1, "on the inactive list, at its cold end");
    assert_eq!(
        shrink_page_cache(&pgdat, &file, &SimFolioWaits, 32, Reclaimer::Direct, crate::gfp::GFP_KERNEL),
        1,
        "freed at the next scan"
    );
    assert_eq!(file.space.lock().unwrap().nrpages(), 0);
}

/// kswapd runs that free nothing make the node hopeless after
/// `MAX_RECLAIM_RETRIES` (Linux `kswapd_failures`): the slow path stops
/// waking kswapd and zoneinfo says `node_unreclaimable`; a reclaim that
/// frees a page again makes it hopeful.
#[test]
fn a_node_kswapd_cannot_balance_turns_hopeless_until_reclaim_frees_again() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let kswapd: &'static CountingKswapd = Box::leak(Box::new(CountingKswapd(std::sync::atomic::AtomicU64::new(0))));
    pgdat.set_kswapd(kswapd);
    // Memory full of pages no reclaim can take, and one cache page.
    let mut held = Vec::new();
    while let Some(pfn) = pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0) {
        held.push(pfn);
    }
    let file = new_file();
    for _ in 0..MAX_RECLAIM_RETRIES {
        assert!(!pgdat_unreclaimable(&pgdat));
        assert_eq!(balance_pgdat(&pgdat, &file, &SimFolioWaits), 0);
    }
    assert!(pgdat_unreclaimable(&pgdat) && prepare_kswapd_sleep(&pgdat));
    assert!(crate::vmstat::Zoneinfo(&pgdat).to_string().contains("node_unreclaimable:  1"));
    let wakeups = kswapd.0.load(std::sync::atomic::Ordering::Relaxed);
    assert!(pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0).is_none());
    assert_eq!(kswapd.0.load(std::sync::atomic::Ordering::Relaxed), wakeups, "a hopeless node's kswapd is left asleep");
    // One cache page comes and reclaim frees it: hopeful again.
    // SAFETY: one of the test's pages, given back to become a cache page.
    unsafe { pgdat.put_page(held.pop().unwrap()) }.unwrap();
    let file = fill(&pgdat, file, 1).0;
    assert_eq!(shrink_page_cache(&pgdat, &file, &SimFolioWaits, 1, Reclaimer::Direct, crate::gfp::GFP_KERNEL), 1);
    assert!(!pgdat_unreclaimable(&pgdat));
    for pfn in held {
        // SAFETY: the test's pages.
        unsafe { pgdat.put_page(pfn) }.unwrap();
    }
}
