use super::*;
use crate::gfp::GFP_KERNEL;
use crate::sim::Sim;

const MIB: u64 = 1 << 20;

type Nodes = crate::sim::HeapAlloc<crate::xarray::XaNode<crate::filemap::CacheEntry>>;

const ID: MappingId = match MappingId::new(0x1000) {
    Some(id) => id,
    None => panic!("an aligned, non-zero id"),
};

/// A new page, locked, as a reader would add it.
fn new_locked_page(pgdat: &PgData<'_>) -> Pfn {
    let pfn = pgdat.alloc_pages(GFP_KERNEL, 0).expect("a page");
    assert!(folio_trylock(pgdat.pfn_to_page(pfn).unwrap()));
    pfn
}

#[test]
fn mapping_ids_are_aligned_and_never_the_anon_marker() {
    assert_eq!(MappingId::new(0), None);
    assert_eq!(MappingId::new(crate::rmap::PAGE_MAPPING_ANON), None);
    assert_eq!(MappingId::new(0x1004), None);
    assert_eq!(MappingId::new(0x1008).map(MappingId::as_u64), Some(0x1008));
}

#[test]
fn a_page_added_is_found_named_and_counted_and_removed_gives_back_the_reference() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let mut space = AddressSpace::new(ID, false, Nodes::default());
    let pfn = new_locked_page(&pgdat);
    space.add_folio(&pgdat, pfn, 7).unwrap();
    let page = pgdat.pfn_to_page(pfn).unwrap();
    assert_eq!((page.mapping(), page.index(), page.refcount()), (ID.as_u64(), 7, 2));
    assert!(!page.test(PageFlags::SWAPBACKED));
    assert_eq!((space.lookup(7), space.lookup(6), space.nrpages()), (Some(pfn), None, 1));
    assert_eq!(pgdat.node_page_state_pages(NodeStatItem::NrFilePages), 1);
    assert_eq!(space.find(0, u64::MAX, None), Some((7, pfn)));
    assert_eq!(space.next_hole(7, 10), Some(8));
    space.check(&pgdat).unwrap();

    // A second page for the same index loses the race.
    let other = new_locked_page(&pgdat);
    assert_eq!(space.add_folio(&pgdat, other, 7), Err(AddFolioError::Exists(pfn)));
    assert_eq!(pgdat.pfn_to_page(other).unwrap().mapping(), 0);

    assert_eq!(space.remove_folio(&pgdat, 7), Some(pfn));
    assert_eq!((page.mapping(), space.nrpages(), space.lookup(7)), (0, 0, None));
    assert_eq!(pgdat.node_page_state_pages(NodeStatItem::NrFilePages), 0);
    assert_eq!(page.refcount(), 2, "the cache's reference is the caller's to put");
    assert_eq!(space.remove_folio(&pgdat, 7), None);
    space.check(&pgdat).unwrap();
}

#[test]
fn shmem_pages_are_swapbacked_and_counted_as_shmem() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let mut space = AddressSpace::new(ID, true, Nodes::default());
    let pfn = new_locked_page(&pgdat);
    space.add_folio(&pgdat, pfn, 0).unwrap();
    assert!(pgdat.pfn_to_page(pfn).unwrap().test(PageFlags::SWAPBACKED));
    assert_eq!(pgdat.node_page_state_pages(NodeStatItem::NrShmem), 1);
    let _ = space.remove_folio(&pgdat, 0);
    assert_eq!(pgdat.node_page_state_pages(NodeStatItem::NrShmem), 0);
}

#[test]
fn check_catches_a_page_whose_index_disagrees() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let mut space = AddressSpace::new(ID, false, Nodes::default());
    let pfn = new_locked_page(&pgdat);
    space.add_folio(&pgdat, pfn, 3).unwrap();
    pgdat.pfn_to_page(pfn).unwrap().set_index(4);
    assert!(space.check(&pgdat).is_err());
}

#[test]
fn migrate_folio_swaps_a_page_only_held_by_the_cache_and_the_caller_marks_kept() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let mut space = AddressSpace::new(ID, false, Nodes::default());
    let old = new_locked_page(&pgdat);
    space.add_folio(&pgdat, old, 3).unwrap();
    space.set_mark(3, PAGECACHE_TAG_DIRTY);
    let new = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    let (oldpage, newpage) = (pgdat.pfn_to_page(old).unwrap(), pgdat.pfn_to_page(new).unwrap());
    oldpage.get();
    assert!(!space.migrate_folio(&pgdat, 3, old, new), "a third reference pins it");
    // SAFETY: the extra reference just taken; the cache and ours remain.
    unsafe { pgdat.put_page(old) }.unwrap();
    assert!(!space.migrate_folio(&pgdat, 4, old, new), "not at that index");
    // As migration copies it: a dirty page's flag goes with it.
    newpage.set_mapping(ID.as_u64());
    newpage.set_index(3);
    newpage.set(PageFlags::DIRTY);
    assert!(space.migrate_folio(&pgdat, 3, old, new));
    assert_eq!(space.lookup(3), Some(new));
    assert!(space.get_mark(3, PAGECACHE_TAG_DIRTY), "the index keeps its marks");
    assert_eq!((oldpage.refcount(), newpage.refcount()), (1, 2), "the cache's reference moved");
    assert_eq!((space.nrpages(), pgdat.node_page_state_pages(NodeStatItem::NrFilePages)), (1, 1));
    space.check(&pgdat).unwrap();
    oldpage.set_mapping(0);
    oldpage.clear_unlock(PageFlags::LOCKED);
    // SAFETY: ours, the last: the cache let go of the page.
    unsafe { pgdat.put_page(old) }.unwrap();
    space.clear_mark(3, PAGECACHE_TAG_DIRTY);
    newpage.clear(PageFlags::DIRTY);
    assert_eq!(space.remove_folio(&pgdat, 3), Some(new));
    // SAFETY: the cache's reference, handed back, and the allocation's.
    unsafe { pgdat.put_page(new) }.unwrap();
    // SAFETY: as above.
    unsafe { pgdat.put_page(new) }.unwrap();
}

#[test]
fn a_shmem_page_traded_for_its_swap_entry_is_no_page_and_comes_back_in_its_place() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let mut space = AddressSpace::new(ID, true, Nodes::default());
    let pfn = new_locked_page(&pgdat);
    space.add_folio(&pgdat, pfn, 3).unwrap();
    let page = pgdat.pfn_to_page(pfn).unwrap();
    let entry = SwpEntry::new(1, 0x1234);
    // The cache's and the allocation's references: refused for any other
    // count, and while a pte maps the page.
    assert!(!space.shmem_delete_from_page_cache(&pgdat, 3, pfn, entry, 3), "a reference more than expected");
    page.inc_mapcount();
    assert!(!space.shmem_delete_from_page_cache(&pgdat, 3, pfn, entry, 2), "still mapped");
    page.dec_mapcount();
    // A page cache that cannot write back takes no swap entry either.
    let mut file = AddressSpace::new(MappingId::new(0x2000).unwrap(), false, Nodes::default());
    assert!(!file.shmem_delete_from_page_cache(&pgdat, 3, pfn, entry, 2), "not a shmem space");
    page.get();
    assert!(space.shmem_delete_from_page_cache(&pgdat, 3, pfn, entry, 3));
    assert_eq!((page.mapping(), page.refcount()), (0, 2), "the page cache let go of it");
    assert!(page.test(PageFlags::SWAPBACKED));
    assert_eq!(space.lookup_entry(3), Some(CacheEntry::Swap(RadixSwap::new(entry))));
    assert_eq!(space.lookup_entry(3).and_then(CacheEntry::swap), Some(entry), "the entry round-trips");
    assert_eq!((space.lookup(3), space.find(0, u64::MAX, None), space.next_hole(3, 5)), (None, None, Some(3)));
    assert_eq!((space.nrpages(), space.swapped(), space.nr_shadows()), (0, 1, 0));
    assert_eq!(pgdat.node_page_state_pages(NodeStatItem::NrShmem), 0);
    assert_eq!(pgdat.node_page_state_pages(NodeStatItem::NrFilePages), 0);
    space.check(&pgdat).unwrap();
    assert_eq!(space.find_swap(0, u64::MAX, Some(1)), Some((3, entry)));
    assert_eq!(space.find_swap(0, u64::MAX, Some(0)), None, "another area's");
    assert_eq!(space.find_swap(4, u64::MAX, None), None);

    // A new page may not take the entry's place: the data is in swap.
    let other = new_locked_page(&pgdat);
    assert_eq!(space.add_folio(&pgdat, other, 3), Err(AddFolioError::Swap(entry)));
    assert!(!space.shmem_add_to_page_cache(&pgdat, other, 3, SwpEntry::new(1, 0x1235)), "not the entry expected");
    assert!(space.shmem_add_to_page_cache(&pgdat, other, 3, entry));
    let otherpage = pgdat.pfn_to_page(other).unwrap();
    assert_eq!((otherpage.mapping(), otherpage.index(), otherpage.refcount()), (ID.as_u64(), 3, 2));
    assert!(otherpage.test(PageFlags::SWAPBACKED));
    assert_eq!((space.lookup(3), space.nrpages(), space.swapped()), (Some(other), 1, 0));
    assert_eq!(pgdat.node_page_state_pages(NodeStatItem::NrShmem), 1);
    space.check(&pgdat).unwrap();
    assert!(!space.shmem_add_to_page_cache(&pgdat, pfn, 3, entry), "the entry is gone: a second swap-in loses");

    // Truncation takes the entries out, pages stay.
    let cached = space.remove_folio(&pgdat, 3);
    assert_eq!(cached, Some(other));
    assert!(space.add_folio(&pgdat, pfn, 3).is_ok());
    assert!(space.shmem_delete_from_page_cache(&pgdat, 3, pfn, entry, 3));
    let kept = new_locked_page(&pgdat);
    space.add_folio(&pgdat, kept, 9).unwrap();
    assert_eq!(space.shmem_take_swap(0, u64::MAX), Some((3, entry)));
    assert_eq!(space.shmem_take_swap(0, u64::MAX), None);
    assert_eq!((space.lookup_entry(3), space.swapped(), space.lookup(9)), (None, 0, Some(kept)));
    space.check(&pgdat).unwrap();
}

#[test]
fn check_catches_a_swap_entry_outside_shmem_or_miscounted() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let mut space = AddressSpace::new(ID, true, Nodes::default());
    let pfn = new_locked_page(&pgdat);
    space.add_folio(&pgdat, pfn, 0).unwrap();
    assert!(space.shmem_delete_from_page_cache(&pgdat, 0, pfn, SwpEntry::new(0, 1), 2));
    space.swapped = 0;
    assert_eq!(space.check(&pgdat), Err("5: swapped is not the number of swap entries"));
    let mut file = AddressSpace::new(ID, false, Nodes::default());
    file.i_pages.store(0, CacheEntry::Swap(RadixSwap::new(SwpEntry::new(0, 1)))).unwrap();
    file.swapped = 1;
    assert_eq!(file.check(&pgdat), Err("5: a swap entry outside a shmem space"));
}
