#![allow(unsafe_code)]

use proptest::prelude::*;

use super::*;
use crate::addr::Pfn;
use crate::filemap::{AddressSpace, CacheEntry, MappingId, folio_trylock, folio_unlock};
use crate::gfp::GFP_KERNEL;
use crate::sim::{HeapAlloc, Sim, SimFolioWaits};
use crate::swap::LruList;
use crate::xarray::{PAGECACHE_TAG_DIRTY, XaNode};

const MIB: u64 = 1 << 20;
const ID: MappingId = match MappingId::new(0x5000) {
    Some(id) => id,
    None => panic!("an aligned, non-zero id"),
};

type Nodes = HeapAlloc<XaNode<CacheEntry>>;

proptest! {
    #[test]
    fn a_shadow_unpacks_to_what_was_packed(nid in 0u32..(1 << NODES_SHIFT), eviction: u64, workingset: bool) {
        let info = Shadow::pack(nid, eviction, workingset).unpack();
        prop_assert_eq!(info, ShadowInfo { nid, eviction: eviction & EVICTION_MASK, workingset });
    }

    #[test]
    fn the_refault_distance_is_the_ageing_since_the_eviction_across_the_wrap(eviction: u64, aged in 0..=EVICTION_MASK) {
        let stored = Shadow::pack(0, eviction, false).unpack().eviction;
        prop_assert_eq!(refault_distance(stored, eviction.wrapping_add(aged)), aged);
    }
}

#[test]
fn the_timestamp_keeps_all_bits_above_the_node_and_workingset_bits() {
    assert_eq!(EVICTION_SHIFT, 7);
    assert_eq!(EVICTION_MASK.count_ones(), 57);
    let top = Shadow::pack(63, EVICTION_MASK, true).unpack();
    assert_eq!(top, ShadowInfo { nid: 63, eviction: EVICTION_MASK, workingset: true });
}

/// A new page, locked and referenced by the caller, added to `space` at
/// `index`; returns it and the shadow it replaced.
fn add_locked(pgdat: &PgData<'_>, space: &mut AddressSpace<&Nodes>, index: u64) -> (Pfn, Option<Shadow>) {
    let pfn = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    assert!(folio_trylock(pgdat.pfn_to_page(pfn).unwrap()));
    let shadow = space.add_folio(pgdat, pfn, index).unwrap();
    (pfn, shadow)
}

/// Evicts the locked page `pfn` at `index` as reclaim does (it is on no
/// list) and frees it.
fn evict(pgdat: &PgData<'_>, space: &mut AddressSpace<&Nodes>, index: u64, pfn: Pfn) {
    assert!(space.remove_mapping(pgdat, index, pfn));
    folio_unlock(pgdat.pfn_to_page(pfn).unwrap(), pfn, &SimFolioWaits);
    // SAFETY: the cache's reference and the caller's, the last two.
    unsafe { pgdat.put_page(pfn) }.unwrap();
    // SAFETY: as above.
    unsafe { pgdat.put_page(pfn) }.unwrap();
}

/// `n` pages on the active file list, in no cache (the workingset a
/// refault competes with); the caller puts them.
fn active_pages(pgdat: &PgData<'_>, n: usize) -> Vec<Pfn> {
    let pfns: Vec<Pfn> = (0..n).map(|_| pgdat.alloc_pages(GFP_KERNEL, 0).unwrap()).collect();
    for &pfn in &pfns {
        pgdat.folio_add_lru(pfn);
    }
    pgdat.lru_add_drain();
    for &pfn in &pfns {
        pgdat.folio_mark_accessed(pfn);
        pgdat.folio_mark_accessed(pfn);
    }
    pgdat.lru_add_drain();
    assert_eq!(pgdat.lru_pages(LruList::ActiveFile), n as u64);
    pfns
}

fn put_all(pgdat: &PgData<'_>, pfns: Vec<Pfn>) {
    for pfn in pfns {
        // SAFETY: the test's allocation reference, the last.
        unsafe { pgdat.put_page(pfn) }.unwrap();
    }
}

fn age(pgdat: &PgData<'_>) -> u64 {
    pgdat.lruvec_nonresident_age().load(core::sync::atomic::Ordering::Relaxed)
}

#[test]
fn an_evicted_page_leaves_a_shadow_that_every_lookup_takes_for_a_hole() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let nodes = Nodes::default();
    let mut space = AddressSpace::new(ID, false, &nodes);
    let (a, _) = add_locked(&pgdat, &mut space, 3);
    let (b, _) = add_locked(&pgdat, &mut space, 4);
    space.set_mark(3, PAGECACHE_TAG_DIRTY);
    let before = age(&pgdat);
    evict(&pgdat, &mut space, 3, a);
    assert_eq!(age(&pgdat), before + 1, "an eviction ages the inactive list");
    let Some(CacheEntry::Shadow(shadow)) = space.lookup_entry(3) else { panic!("no shadow at 3") };
    assert_eq!(shadow.unpack(), ShadowInfo { nid: 0, eviction: before, workingset: false });
    assert_eq!((space.lookup(3), space.nrpages(), space.nr_shadows()), (None, 1, 1));
    assert!(!space.get_mark(3, PAGECACHE_TAG_DIRTY), "the shadow has none of the page's marks");
    assert_eq!(space.find(0, u64::MAX, None), Some((4, b)), "find skips the shadow");
    assert_eq!(space.next_hole(3, 10), Some(3), "the shadow is a hole to readahead");
    assert_eq!(space.next_hole(4, 4), None);
    assert_eq!(pgdat.node_page_state(NodeStatItem::NrFilePages), 1);
    space.check(&pgdat).unwrap();
    // A page added at the shadow's index replaces it and gets it back.
    let (c, replaced) = add_locked(&pgdat, &mut space, 3);
    assert_eq!(replaced, Some(shadow));
    assert_eq!((space.nrpages(), space.nr_shadows()), (2, 0));
    space.check(&pgdat).unwrap();
    for (index, pfn) in [(3, c), (4, b)] {
        assert_eq!(space.remove_folio(&pgdat, index), Some(pfn));
        folio_unlock(pgdat.pfn_to_page(pfn).unwrap(), pfn, &SimFolioWaits);
        // SAFETY: the cache's reference and the test's.
        unsafe { pgdat.put_page(pfn) }.unwrap();
        // SAFETY: as above.
        unsafe { pgdat.put_page(pfn) }.unwrap();
    }
}

#[test]
fn a_refault_within_the_active_list_is_activated_and_one_beyond_it_is_not() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let nodes = Nodes::default();
    let mut space = AddressSpace::new(ID, false, &nodes);
    let active = active_pages(&pgdat, 8);
    let (a, _) = add_locked(&pgdat, &mut space, 0);
    let (b, _) = add_locked(&pgdat, &mut space, 1);
    evict(&pgdat, &mut space, 0, a);
    evict(&pgdat, &mut space, 1, b);
    // Page 0's distance is now 2 (its eviction and page 1's); 6 more
    // make it 8, the active list's size: still within.
    workingset_age_nonresident(&pgdat, 6);
    let (a, shadow) = add_locked(&pgdat, &mut space, 0);
    workingset_refault(&pgdat, pgdat.pfn_to_page(a).unwrap(), shadow.unwrap());
    assert!(pgdat.pfn_to_page(a).unwrap().test(PageFlags::ACTIVE), "distance 8 <= 8 active pages");
    assert_eq!(pgdat.node_page_state(NodeStatItem::WorkingsetActivateFile), 1);
    // The activation aged the list too: page 1's distance is 1 + 6 + 1
    // = 8 as well; one more eviction's worth puts it beyond.
    workingset_age_nonresident(&pgdat, 1);
    let (b, shadow) = add_locked(&pgdat, &mut space, 1);
    workingset_refault(&pgdat, pgdat.pfn_to_page(b).unwrap(), shadow.unwrap());
    assert!(!pgdat.pfn_to_page(b).unwrap().test(PageFlags::ACTIVE), "distance 9 > 8 active pages");
    assert_eq!(pgdat.node_page_state(NodeStatItem::WorkingsetRefaultFile), 2, "both refaults counted");
    assert_eq!(pgdat.node_page_state(NodeStatItem::WorkingsetActivateFile), 1);
    assert_eq!(pgdat.node_page_state(NodeStatItem::WorkingsetRestoreFile), 0, "neither was PG_workingset");
    for (index, pfn) in [(0, a), (1, b)] {
        pgdat.pfn_to_page(pfn).unwrap().clear(PageFlags::ACTIVE);
        evict(&pgdat, &mut space, index, pfn);
    }
    space.clear_shadows(0, u64::MAX);
    put_all(&pgdat, active);
}

#[test]
fn a_refaulting_workingset_page_is_restored_as_workingset() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let nodes = Nodes::default();
    let mut space = AddressSpace::new(ID, false, &nodes);
    let active = active_pages(&pgdat, 4);
    let (a, _) = add_locked(&pgdat, &mut space, 9);
    pgdat.pfn_to_page(a).unwrap().set(PageFlags::WORKINGSET);
    evict(&pgdat, &mut space, 9, a);
    let (a, shadow) = add_locked(&pgdat, &mut space, 9);
    assert!(shadow.unwrap().unpack().workingset);
    let page = pgdat.pfn_to_page(a).unwrap();
    workingset_refault(&pgdat, page, shadow.unwrap());
    assert!(page.test(PageFlags::ACTIVE) && page.test(PageFlags::WORKINGSET));
    assert_eq!(pgdat.node_page_state(NodeStatItem::WorkingsetRestoreFile), 1);
    // Anonymous counters stay for anonymous pages.
    assert_eq!(pgdat.node_page_state(NodeStatItem::WorkingsetRefaultAnon), 0);
    page.clear(PageFlags::ACTIVE);
    evict(&pgdat, &mut space, 9, a);
    space.clear_shadows(0, u64::MAX);
    put_all(&pgdat, active);
}

#[test]
fn a_second_access_ages_the_inactive_list() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let before = age(&pgdat);
    let pages = active_pages(&pgdat, 5);
    assert_eq!(age(&pgdat), before + 5, "each promotion is an activation");
    put_all(&pgdat, pages);
}

#[test]
fn clearing_the_shadows_of_a_range_frees_the_nodes_only_they_held() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let nodes = Nodes::default();
    let mut space = AddressSpace::new(ID, false, &nodes);
    // 300 pages over five leaves; all but the last one evicted.
    let pfns: Vec<Pfn> = (0..300).map(|i| add_locked(&pgdat, &mut space, i).0).collect();
    let nodes_full = nodes.live();
    for (index, &pfn) in pfns.iter().enumerate().take(299) {
        evict(&pgdat, &mut space, index as u64, pfn);
    }
    assert_eq!((space.nrpages(), space.nr_shadows()), (1, 299));
    assert_eq!(nodes.live(), nodes_full, "the shadows keep their nodes");
    // Truncating 64..=255: three leaves of shadows go.
    assert_eq!(space.clear_shadows(64, 255), 192);
    assert_eq!(nodes.live(), nodes_full - 3);
    space.check(&pgdat).unwrap();
    // A shadow-only space that is going away keeps no shadow at all.
    space.set_exiting();
    assert_eq!(space.clear_shadows(0, u64::MAX), 107);
    let last = pfns[299];
    assert!(space.remove_mapping(&pgdat, 299, last), "reclaim of a page of an exiting file");
    assert_eq!((space.nrpages(), space.nr_shadows()), (0, 0), "no shadow planted while exiting");
    assert_eq!(nodes.live(), 0, "every node freed with the last entry");
    folio_unlock(pgdat.pfn_to_page(last).unwrap(), last, &SimFolioWaits);
    // SAFETY: the cache's reference and the test's.
    unsafe { pgdat.put_page(last) }.unwrap();
    // SAFETY: as above.
    unsafe { pgdat.put_page(last) }.unwrap();
}

#[test]
fn a_shmem_page_leaves_no_shadow() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let nodes = Nodes::default();
    let mut space = AddressSpace::new(ID, true, &nodes);
    let (a, _) = add_locked(&pgdat, &mut space, 0);
    evict(&pgdat, &mut space, 0, a);
    assert_eq!((space.nrpages(), space.nr_shadows()), (0, 0));
}
