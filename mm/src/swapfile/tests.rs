//! The slot allocator and the swap map counts: set-up, cluster order,
//! continuation, and a model-based proptest of allocation, duplication,
//! freeing and the swap cache's hold, checking the module doc's
//! invariants after every step.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::cluster::{ClusterFlags, ClusterList};
use super::*;

/// Where a test's area lives: a header made by our mkswap with `badpages`
/// added, parsed, and storage for it.
fn header_page(device_pages: u64, badpages: &[u32]) -> [u8; PAGE] {
    let mut page = [0; PAGE];
    mkswap(&mut page, device_pages, SwapUuid([1; 16]), b"test").unwrap();
    page[1032..1036].copy_from_slice(&(badpages.len() as u32).to_ne_bytes());
    for (i, bad) in badpages.iter().enumerate() {
        page[1536 + 4 * i..1540 + 4 * i].copy_from_slice(&bad.to_ne_bytes());
    }
    page
}

/// Runs `f` on a new area of `device_pages` pages with `badpages`, for
/// `nr_cpus` CPUs, with a pool of continuation pages.
fn with_area<R>(
    device_pages: u64,
    badpages: &[u32],
    nr_cpus: usize,
    f: impl for<'a> FnOnce(&mut SwapInfo<'a>, &mut Vec<&'a mut SwapContPage<'a>>) -> R,
) -> R {
    let page = header_page(device_pages, badpages);
    let header = SwapHeader::parse(&page, device_pages, 1 << 50).unwrap();
    let sizes = SwapMapSizes::for_maxpages(header.maxpages());
    let mut arena: Vec<SwapContPage<'_>> = (0..8).map(|_| SwapContPage::new()).collect();
    let mut pool: Vec<&mut SwapContPage<'_>> = arena.iter_mut().collect();
    let mut swap_map = vec![0xee; sizes.swap_map];
    let mut cluster_info = vec![SwapClusterInfo::new(); sizes.cluster_info];
    let mut percpu_cluster = vec![PercpuCluster::new(); nr_cpus];
    let mut cont: Vec<SwapContList<'_>> = (0..sizes.cont).map(|_| None).collect();
    let storage = SwapMapStorage {
        swap_map: &mut swap_map,
        cluster_info: &mut cluster_info,
        percpu_cluster: &mut percpu_cluster,
        cont: &mut cont,
    };
    let mut si = SwapInfo::new(0, &header, storage).unwrap();
    check_invariants(&si);
    f(&mut si, &mut pool)
}

fn entry(offset: u32) -> SwpEntry {
    SwpEntry::new(0, u64::from(offset))
}

/// Allocates one slot on `cpu`.
fn alloc(si: &mut SwapInfo<'_>, cpu: usize) -> Option<u32> {
    let mut entries = [SwpEntry::new(0, 0)];
    (si.get_swap_pages(cpu, &mut entries) == 1).then(|| entries[0].offset() as u32)
}

/// Counts one more entry for `offset`, attaching a continuation page from
/// `pool` when asked to.
fn dup<'a>(si: &mut SwapInfo<'a>, pool: &mut Vec<&'a mut SwapContPage<'a>>, offset: u32) -> Result<(), SwapEntryError> {
    match si.swap_duplicate(entry(offset)) {
        Err(SwapEntryError::NoContinuation) => {
            let page = pool.pop().expect("a continuation page in the pool");
            assert!(si.add_swap_count_continuation(entry(offset), page).unwrap().is_none(), "the page was needed");
            si.swap_duplicate(entry(offset))
        }
        result => result,
    }
}

fn members(list: &ClusterList, ci: &[SwapClusterInfo]) -> Vec<u32> {
    let members: Vec<u32> = list.iter(ci).collect();
    assert_eq!(members.len(), list.len as usize);
    members
}

/// The module doc's invariants 1 to 3.
fn check_invariants(si: &SwapInfo<'_>) {
    let max = si.max as usize;
    let cluster = SWAPFILE_CLUSTER as usize;
    for (idx, ci) in si.cluster_info.iter().enumerate() {
        let (start, end) = (idx * cluster, ((idx + 1) * cluster).min(max));
        let used = si.swap_map[start..end].iter().filter(|&&map| map != 0).count() + (start + cluster - end);
        assert_eq!(usize::from(ci.count), used, "cluster {idx}'s count");
        assert_ne!(ci.flags, ClusterFlags::None, "cluster {idx} left off its lists");
    }
    let mut seen = BTreeSet::new();
    for (flags, list) in [
        (ClusterFlags::Free, &si.lists.free),
        (ClusterFlags::Nonfull, &si.lists.nonfull),
        (ClusterFlags::Frag, &si.lists.frag),
        (ClusterFlags::Full, &si.lists.full),
    ] {
        for idx in members(list, si.cluster_info) {
            let ci = &si.cluster_info[idx as usize];
            assert_eq!(ci.flags, flags, "cluster {idx} on the {flags:?} list");
            assert!(seen.insert(idx), "cluster {idx} on two lists");
            match flags {
                ClusterFlags::Full => assert_eq!(u32::from(ci.count), SWAPFILE_CLUSTER),
                ClusterFlags::Free => {}
                _ => assert_ne!(ci.count, 0, "an empty cluster {idx} off the free list"),
            }
            assert_eq!(ci.flags == ClusterFlags::Free, ci.count == 0);
        }
    }
    assert_eq!(seen.len(), si.cluster_info.len());
    let allocated = si.swap_map.iter().filter(|&&map| map != 0 && map != SWAP_MAP_BAD).count();
    assert_eq!(si.inuse_pages as usize, allocated);
    let bad = si.swap_map.iter().filter(|&&map| map == SWAP_MAP_BAD).count();
    assert_eq!(si.pages as usize, max - bad);
}

#[test]
fn setup_marks_the_header_and_bad_pages_and_sorts_the_clusters() {
    // 600 pages: clusters 0 (header, bad 3), 1 (bad 300 listed twice), 2
    // (88 slots and 168 past the end); bad page 599 is the last.
    with_area(600, &[3, 300, 300, 599], 1, |si, _| {
        assert_eq!((si.max(), si.pages(), si.inuse_pages()), (600, 600 - 4, 0));
        assert_eq!(si.swap_map[0], SWAP_MAP_BAD);
        assert_eq!(si.swap_map[3], SWAP_MAP_BAD);
        assert_eq!(si.swap_map[300], SWAP_MAP_BAD);
        assert_eq!(si.swap_map[599], SWAP_MAP_BAD);
        assert_eq!(si.swap_map.iter().filter(|&&m| m != 0).count(), 4, "the rest zeroed");
        let counts: Vec<u16> = si.cluster_info.iter().map(|ci| ci.count).collect();
        assert_eq!(counts, [2, 1, 1 + 168]);
        assert_eq!(members(&si.lists.nonfull, si.cluster_info), [0, 1, 2]);
    });
    with_area(1024, &[], 1, |si, _| {
        assert_eq!(members(&si.lists.nonfull, si.cluster_info), [0]);
        assert_eq!(members(&si.lists.free, si.cluster_info), [1, 2, 3], "in disk order");
    });
}

#[test]
fn setup_refuses_storage_of_the_wrong_size() {
    let page = header_page(600, &[]);
    let header = SwapHeader::parse(&page, 600, 1 << 50).unwrap();
    // Each attempt lends its storage for good: the continuation lists'
    // borrow is as long as the pages they may hold.
    let attempt = |map_len: usize, ty: u32, nr_cpus: usize| {
        let (mut map, mut ci, mut pcp) =
            (vec![0; map_len], vec![SwapClusterInfo::new(); 3], vec![PercpuCluster::new(); nr_cpus]);
        let mut cont: Vec<SwapContList<'_>> = vec![None];
        let storage =
            SwapMapStorage { swap_map: &mut map, cluster_info: &mut ci, percpu_cluster: &mut pcp, cont: &mut cont };
        SwapInfo::new(ty, &header, storage).err()
    };
    assert_eq!(attempt(599, 0, 1), Some(SwapSetupError::StorageSize { what: "swap_map", len: 599, needed: 600 }));
    assert_eq!(attempt(600, MAX_SWAPFILES, 1), Some(SwapSetupError::BadType { ty: MAX_SWAPFILES }));
    assert_eq!(attempt(600, 0, 0), Some(SwapSetupError::StorageSize { what: "percpu_cluster", len: 0, needed: 1 }));
    assert_eq!(attempt(600, MAX_SWAPFILES - 1, 2), None);
}

#[test]
fn sequential_allocation_on_one_cpu_takes_consecutive_slots_of_its_cluster() {
    with_area(4 * 256, &[], 1, |si, _| {
        let offsets: Vec<u32> = (0..3 * 256 + 255).map(|_| alloc(si, 0).unwrap()).collect();
        // Free clusters first (Linux puts cluster 0, whose header page
        // counts as used, on the nonfull list at swapon), then cluster 0.
        let expected: Vec<u32> = (256..1024).chain(1..256).collect();
        assert_eq!(offsets, expected);
        assert_eq!(members(&si.lists.full, si.cluster_info), [1, 2, 3, 0]);
        check_invariants(si);
    });
}

#[test]
fn two_cpus_allocate_from_clusters_of_their_own() {
    with_area(4 * 256, &[], 2, |si, _| {
        for i in 0..100 {
            assert_eq!(alloc(si, 0), Some(256 + i));
            assert_eq!(alloc(si, 1), Some(512 + i));
        }
        // CPU 2 of a 2-CPU area shares CPU 0's.
        assert_eq!(alloc(si, 2), Some(356));
        check_invariants(si);
    });
}

#[test]
fn header_and_bad_pages_are_never_allocated_and_a_full_area_says_so() {
    let bad = [1, 2, 255, 256, 400, 700];
    with_area(701, &bad, 3, |si, _| {
        let mut entries = vec![SwpEntry::new(0, 0); 1000];
        let got = si.get_swap_pages(1, &mut entries);
        assert_eq!(got, 701 - 1 - bad.len());
        let offsets: BTreeSet<u64> = entries[..got].iter().map(|e| e.offset()).collect();
        assert_eq!(offsets.len(), got, "no slot twice");
        let expected: BTreeSet<u64> = (1..701).filter(|o| !bad.contains(&(*o as u32))).collect();
        assert_eq!(offsets, expected);
        assert_eq!(si.inuse_pages(), si.pages());
        assert_eq!(alloc(si, 0), None);
        check_invariants(si);
    });
}

#[test]
fn freed_slots_are_allocated_again_once_the_free_clusters_are_gone() {
    with_area(3 * 256, &[], 1, |si, _| {
        let all: Vec<u32> = (0..767).map(|_| alloc(si, 0).unwrap()).collect();
        assert_eq!(alloc(si, 0), None);
        for offset in [5, 300, 301, 700] {
            si.swapcache_clear(entry(offset)).unwrap();
        }
        assert_eq!(members(&si.lists.nonfull, si.cluster_info), [0, 1, 2]);
        check_invariants(si);
        let mut again: Vec<u32> = (0..4).map(|_| alloc(si, 0).unwrap()).collect();
        again.sort();
        assert_eq!(again, [5, 300, 301, 700]);
        assert_eq!(alloc(si, 0), None);
        // Emptied, a cluster is free and is taken whole.
        assert_eq!(all[..256], (256..512).collect::<Vec<_>>()[..]);
        for &offset in &all[..256] {
            si.swapcache_clear(entry(offset)).unwrap();
        }
        assert_eq!(members(&si.lists.free, si.cluster_info), [1]);
        assert_eq!(alloc(si, 0), Some(256));
        assert_eq!(alloc(si, 0), Some(257));
        check_invariants(si);
    });
}

#[test]
fn a_slot_lives_while_an_entry_or_the_swap_cache_holds_it() {
    with_area(256, &[], 1, |si, _| {
        let slot = alloc(si, 0).unwrap();
        assert_eq!(si.swap_map[slot as usize], SWAP_HAS_CACHE, "allocated to the swap cache");
        assert_eq!(si.swap_count(entry(slot)), Ok(0));
        si.swap_duplicate(entry(slot)).unwrap();
        si.swap_duplicate(entry(slot)).unwrap();
        assert_eq!(si.swap_count(entry(slot)), Ok(2));
        assert_eq!(si.swapcache_prepare(entry(slot)), Err(SwapEntryError::Exists));
        si.swapcache_clear(entry(slot)).unwrap();
        assert_eq!(si.swap_map[slot as usize], 2);
        si.swap_free(entry(slot)).unwrap();
        // Swap-in: the cache claims it again before reading.
        si.swapcache_prepare(entry(slot)).unwrap();
        si.swap_free(entry(slot)).unwrap();
        assert_eq!(si.swap_map[slot as usize], SWAP_HAS_CACHE);
        assert_eq!(si.swap_free(entry(slot)), Err(SwapEntryError::NoCount));
        assert_eq!(si.inuse_pages(), 1);
        si.swapcache_clear(entry(slot)).unwrap();
        assert_eq!((si.swap_map[slot as usize], si.inuse_pages()), (0, 0));
        check_invariants(si);
    });
}

#[test]
fn bad_entries_and_slots_are_refused_without_a_change() {
    with_area(256, &[9], 1, |si, _| {
        let slot = alloc(si, 0).unwrap();
        assert_eq!(si.swap_duplicate(SwpEntry::new(1, 1)), Err(SwapEntryError::BadFile));
        assert_eq!(si.swap_free(entry(256)), Err(SwapEntryError::BadOffset));
        assert_eq!(si.swap_duplicate(entry(0)), Err(SwapEntryError::BadSlot));
        assert_eq!(si.swapcache_prepare(entry(9)), Err(SwapEntryError::BadSlot));
        assert_eq!(si.swap_free(entry(9)), Err(SwapEntryError::BadSlot));
        assert_eq!(si.swapcache_clear(entry(9)), Err(SwapEntryError::NotCached));
        assert_eq!(si.swp_swapcount(entry(0)), Err(SwapEntryError::BadSlot));
        assert_eq!(si.swap_duplicate(entry(200)), Err(SwapEntryError::Unused));
        assert_eq!(si.swapcache_prepare(entry(200)), Err(SwapEntryError::Unused));
        assert_eq!(si.swap_free(entry(200)), Err(SwapEntryError::Unused));
        assert_eq!(si.swapcache_clear(entry(200)), Err(SwapEntryError::NotCached));
        assert_eq!(si.swap_map[slot as usize], SWAP_HAS_CACHE);
        assert_eq!(si.inuse_pages(), 1);
        check_invariants(si);
    });
}

#[test]
fn counts_past_swap_map_max_continue_in_pages_and_come_back_down() {
    // Digits 5, 2, 2: the second page holds 2, so a borrow through the
    // first leaves it continued.
    let top: u32 = 5 + 63 * (2 + 128 * 2);
    with_area(256, &[], 1, |si, pool| {
        let slot = alloc(si, 0).unwrap();
        let e = entry(slot);
        for count in 1..=top {
            dup(si, pool, slot).unwrap();
            assert_eq!(si.swp_swapcount(e), Ok(u64::from(count)));
        }
        assert_eq!(pool.len(), 8 - 2, "two pages taken");
        // Linux's bytes.
        assert_eq!(si.swap_map[slot as usize], 5 | COUNT_CONTINUED | SWAP_HAS_CACHE);
        let first = si.cont[0].as_deref().unwrap();
        assert_eq!(first.count[slot as usize], 2 | COUNT_CONTINUED);
        assert_eq!(first.next.as_deref().unwrap().count[slot as usize], 2);
        // A page is handed back when the count is not at a digit's end.
        let spare = pool.pop().unwrap();
        let spare = si.add_swap_count_continuation(e, spare).unwrap().expect("not needed");
        pool.push(spare);
        for count in (0..top).rev() {
            si.swap_free(e).unwrap();
            assert_eq!(si.swp_swapcount(e), Ok(u64::from(count)));
        }
        assert_eq!(si.swap_map[slot as usize], SWAP_HAS_CACHE);
        si.swapcache_clear(e).unwrap();
        assert_eq!(si.inuse_pages(), 0);
        check_invariants(si);
    });
}

#[test]
fn a_count_at_swap_map_max_waits_for_a_page_and_changes_nothing() {
    with_area(256, &[], 1, |si, pool| {
        let slot = alloc(si, 0).unwrap();
        for _ in 0..SWAP_MAP_MAX {
            si.swap_duplicate(entry(slot)).unwrap();
        }
        assert_eq!(si.swap_duplicate(entry(slot)), Err(SwapEntryError::NoContinuation));
        assert_eq!(si.swap_map[slot as usize], SWAP_MAP_MAX | SWAP_HAS_CACHE);
        // Linux does not zero a continuation page: digits not in use yet
        // are garbage until a carry reaches them.
        let page = pool.pop().unwrap();
        page.count.fill(SWAP_CONT_MAX | COUNT_CONTINUED);
        assert!(si.add_swap_count_continuation(entry(slot), page).unwrap().is_none());
        si.swap_duplicate(entry(slot)).unwrap();
        assert_eq!(si.swp_swapcount(entry(slot)), Ok(63));
        // The page serves every slot of its swap map page: another slot at
        // SWAP_MAP_MAX needs no second one.
        let other = alloc(si, 0).unwrap();
        for _ in 0..SWAP_MAP_MAX {
            si.swap_duplicate(entry(other)).unwrap();
        }
        let spare = pool.pop().unwrap();
        assert!(si.add_swap_count_continuation(entry(other), spare).unwrap().is_some(), "not needed");
        si.swap_duplicate(entry(other)).unwrap();
        assert_eq!(si.swp_swapcount(entry(other)), Ok(63));
        assert_eq!(si.swp_swapcount(entry(slot)), Ok(63));
    });
}

#[test]
fn the_storage_comes_back_with_its_continuation_pages() {
    let page = header_page(5000, &[]);
    let header = SwapHeader::parse(&page, 5000, 1 << 50).unwrap();
    let sizes = SwapMapSizes::for_maxpages(5000);
    assert_eq!(sizes, SwapMapSizes { swap_map: 5000, cluster_info: 20, cont: 2 });
    let mut arena: Vec<SwapContPage<'_>> = (0..2).map(|_| SwapContPage::new()).collect();
    let mut pages = arena.iter_mut();
    let (mut map, mut ci, mut pcp) = (vec![0; 5000], vec![SwapClusterInfo::new(); 20], vec![PercpuCluster::new(); 1]);
    let mut cont: Vec<SwapContList<'_>> = vec![None, None];
    let storage =
        SwapMapStorage { swap_map: &mut map, cluster_info: &mut ci, percpu_cluster: &mut pcp, cont: &mut cont };
    let mut si = SwapInfo::new(3, &header, storage).unwrap();
    let mut entries = [SwpEntry::new(0, 0); 4200];
    assert_eq!(si.get_swap_pages(0, &mut entries), 4200);
    // Clusters 1 to 18 are free; 0 (the header) and 19 (the area ends in
    // it) come after.
    assert_eq!((entries[0], entries[4199]), (SwpEntry::new(3, 256), SwpEntry::new(3, 4455)));
    for e in [entries[0], entries[4199]] {
        for _ in 0..SWAP_MAP_MAX {
            si.swap_duplicate(e).unwrap();
        }
        assert!(si.add_swap_count_continuation(e, pages.next().unwrap()).unwrap().is_none());
    }
    let mut storage = si.into_storage();
    let mut freed = 0;
    storage.free_swap_count_continuations(|_| freed += 1);
    assert_eq!(freed, 2, "one page for each page of the swap map");
    assert!(storage.cont.iter().all(Option::is_none));
}

/// One step of the proptest. A slot is picked among those allocated
/// (`live`) or anywhere in the area.
#[derive(Clone, Debug)]
enum Op {
    Alloc { cpu: usize, n: usize },
    Dup { slot: (bool, u32), times: u32 },
    Free { slot: (bool, u32), times: u32 },
    CacheAdd { slot: (bool, u32) },
    CacheClear { slot: (bool, u32) },
    CacheClearBad { slot: (bool, u32) },
}

fn op() -> impl Strategy<Value = Op> {
    let slot = (any::<bool>(), any::<u32>());
    // Now and then past the first continuation page's carry (62 + 63 * 127).
    let times = || prop_oneof![30 => 1..3u32, 10 => 60..140u32, 1 => 8100..8200u32];
    prop_oneof![
        3 => (0..4usize, 1..6usize).prop_map(|(cpu, n)| Op::Alloc { cpu, n }),
        3 => (slot, times()).prop_map(|(slot, times)| Op::Dup { slot, times }),
        4 => (slot, times()).prop_map(|(slot, times)| Op::Free { slot, times }),
        1 => slot.prop_map(|slot| Op::CacheAdd { slot }),
        2 => slot.prop_map(|slot| Op::CacheClear { slot }),
        1 => slot.prop_map(|slot| Op::CacheClearBad { slot }),
    ]
}

/// A slot of the model: its entries and whether the swap cache holds it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Slot {
    count: u64,
    cache: bool,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_allocator_and_counts_follow_a_model(
        device_pages in 10u64..1100,
        bad in prop::collection::vec(1u32..1100, 0..12),
        nr_cpus in 1usize..4,
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let bad: Vec<u32> = bad.into_iter().filter(|&b| u64::from(b) < device_pages).collect();
        let mut bad_set: BTreeSet<u32> = bad.iter().copied().chain([0]).collect();
        prop_assume!(bad_set.len() < device_pages as usize);
        with_area(device_pages, &bad, nr_cpus, |si, pool| {
            let mut model: BTreeMap<u32, Slot> = BTreeMap::new();
            let max = si.max();
            let pick = |model: &BTreeMap<u32, Slot>, (live, n): (bool, u32)| {
                if live && !model.is_empty() { *model.keys().nth(n as usize % model.len()).unwrap() } else { n % max }
            };
            for op in ops {
                match op {
                    Op::Alloc { cpu, n } => {
                        let mut entries = vec![SwpEntry::new(0, 0); n];
                        let got = si.get_swap_pages(cpu, &mut entries);
                        let free = si.pages() as usize - (model.len());
                        assert_eq!(got, n.min(free), "allocation fails only when the area is full");
                        for e in &entries[..got] {
                            let offset = e.offset() as u32;
                            assert!(offset < max && !bad_set.contains(&offset), "slot {offset} is bad");
                            assert!(model.insert(offset, Slot { count: 0, cache: true }).is_none(), "slot {offset} was in use");
                        }
                    }
                    Op::Dup { slot, times } => {
                        let offset = pick(&model, slot);
                        for _ in 0..times {
                            let expected = match model.get_mut(&offset) {
                                _ if bad_set.contains(&offset) => Err(SwapEntryError::BadSlot),
                                None => Err(SwapEntryError::Unused),
                                Some(s) => { s.count += 1; Ok(()) }
                            };
                            assert_eq!(dup(si, pool, offset), expected);
                        }
                    }
                    Op::Free { slot, times } => {
                        let offset = pick(&model, slot);
                        for _ in 0..times {
                            let expected = match model.get_mut(&offset) {
                                _ if bad_set.contains(&offset) => Err(SwapEntryError::BadSlot),
                                None => Err(SwapEntryError::Unused),
                                Some(Slot { count: 0, .. }) => Err(SwapEntryError::NoCount),
                                Some(s) => { s.count -= 1; Ok(()) }
                            };
                            assert_eq!(si.swap_free(entry(offset)), expected);
                            if model.get(&offset) == Some(&Slot { count: 0, cache: false }) {
                                model.remove(&offset);
                            }
                        }
                    }
                    Op::CacheAdd { slot } => {
                        let offset = pick(&model, slot);
                        let expected = match model.get_mut(&offset) {
                            _ if bad_set.contains(&offset) => Err(SwapEntryError::BadSlot),
                            None => Err(SwapEntryError::Unused),
                            Some(Slot { cache: true, .. }) => Err(SwapEntryError::Exists),
                            Some(s) => { s.cache = true; Ok(()) }
                        };
                        assert_eq!(si.swapcache_prepare(entry(offset)), expected);
                    }
                    Op::CacheClear { slot } => {
                        let offset = pick(&model, slot);
                        let expected = match model.get_mut(&offset) {
                            Some(s) if s.cache => { s.cache = false; Ok(()) }
                            _ => Err(SwapEntryError::NotCached),
                        };
                        assert_eq!(si.swapcache_clear(entry(offset)), expected);
                    }
                    Op::CacheClearBad { slot } => {
                        // A slot whose write failed: bad from now on, if
                        // only the swap cache held it.
                        let offset = pick(&model, slot);
                        let expected = match model.get(&offset) {
                            Some(s) if s.cache && s.count > 0 => Err(SwapEntryError::InUse),
                            Some(s) if s.cache => Ok(()),
                            _ => Err(SwapEntryError::NotCached),
                        };
                        assert_eq!(si.swapcache_clear_bad(entry(offset)), expected);
                        if expected.is_ok() {
                            model.remove(&offset);
                            bad_set.insert(offset);
                        }
                    }
                }
                model.retain(|_, s| s.count > 0 || s.cache);
                for offset in 0..max {
                    let map = si.swap_map[offset as usize];
                    match model.get(&offset) {
                        Some(s) => {
                            assert_eq!(si.swp_swapcount(entry(offset)), Ok(s.count), "slot {offset}");
                            assert_eq!(map & SWAP_HAS_CACHE != 0, s.cache, "slot {offset}'s cache bit");
                        }
                        None if bad_set.contains(&offset) => assert_eq!(map, SWAP_MAP_BAD),
                        None => assert_eq!(map, 0, "slot {offset} should be free"),
                    }
                }
                assert_eq!(si.inuse_pages() as usize, model.len());
                check_invariants(si);
            }
        });
    }
}
