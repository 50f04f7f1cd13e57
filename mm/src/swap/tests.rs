//! Host tests of the LRU lists: batching, the two-touch promotion,
//! isolation and putback, removal at free, and the counters, checked
//! against the lists themselves after every step of a random sequence.

#![allow(unsafe_code)]

use proptest::prelude::*;

use super::*;
use crate::gfp::GFP_KERNEL;
use crate::sim::Sim;

const MIB: u64 = 1 << 20;

fn state(pgdat: &PgData<'_>, lru: LruList) -> u64 {
    pgdat.node_page_state_pages(lru.stat())
}

/// Every list's pages have `PG_lru` and the flags of that list, and each
/// counter equals its list's length.
fn check(pgdat: &PgData<'_>) {
    let lruvec = pgdat.lruvec().lock();
    for lru in LruList::ALL {
        let mut n = 0;
        for pfn in lruvec.pages(pgdat, lru) {
            let page = pgdat.pfn_to_page(pfn).unwrap();
            assert!(page.test(PageFlags::LRU), "{pfn:?} on {lru:?} without PG_lru");
            assert_eq!(folio_lru_list(page), lru, "{pfn:?} on the wrong list");
            n += 1;
        }
        assert_eq!(lruvec.len(lru), n);
    }
    drop(lruvec);
    for lru in LruList::ALL {
        assert_eq!(state(pgdat, lru), pgdat.lru_pages(lru), "{lru:?} counter");
    }
}

fn new_page(pgdat: &PgData<'_>, anon: bool) -> Pfn {
    let pfn = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    if anon {
        pgdat.pfn_to_page(pfn).unwrap().set(PageFlags::SWAPBACKED);
    }
    pfn
}

#[test]
fn pages_join_their_lists_when_the_batch_fills_or_drains() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let pfns: Vec<Pfn> = (0..FOLIO_BATCH_SIZE as u64 - 1).map(|i| new_page(&pgdat, i % 2 == 0)).collect();
    for &pfn in &pfns {
        pgdat.folio_add_lru(pfn);
    }
    assert_eq!(pgdat.lru_pages(LruList::InactiveFile) + pgdat.lru_pages(LruList::InactiveAnon), 0, "still batched");
    assert_eq!(pgdat.pfn_to_page(pfns[0]).unwrap().refcount(), 2, "the batch holds a reference");
    let last = new_page(&pgdat, false);
    pgdat.folio_add_lru(last);
    assert_eq!(pgdat.lru_pages(LruList::InactiveAnon), 7);
    assert_eq!(pgdat.lru_pages(LruList::InactiveFile), 8, "a full batch moved at once");
    assert_eq!(pgdat.pfn_to_page(last).unwrap().refcount(), 1, "and dropped its references");
    check(&pgdat);
    let one = new_page(&pgdat, false);
    pgdat.folio_add_lru(one);
    pgdat.lru_add_drain_all();
    assert_eq!(pgdat.lru_pages(LruList::InactiveFile), 9, "a drain moves a part batch");
    check(&pgdat);
}

#[test]
fn a_second_access_activates_an_inactive_page() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let pfn = new_page(&pgdat, false);
    pgdat.folio_add_lru(pfn);
    pgdat.lru_add_drain();
    let page = pgdat.pfn_to_page(pfn).unwrap();
    pgdat.folio_mark_accessed(pfn);
    assert!(page.test(PageFlags::REFERENCED) && !page.test(PageFlags::ACTIVE), "one touch: referenced");
    pgdat.folio_mark_accessed(pfn);
    pgdat.lru_add_drain();
    assert!(page.test(PageFlags::ACTIVE) && !page.test(PageFlags::REFERENCED), "two: active, flag cleared");
    assert_eq!(pgdat.lru_pages(LruList::ActiveFile), 1);
    assert_eq!(pgdat.all_vm_events(VmEventItem::Pgactivate), 1);
    check(&pgdat);
    // A page still in the add batch joins the active list directly.
    let young = new_page(&pgdat, true);
    pgdat.folio_add_lru(young);
    pgdat.folio_mark_accessed(young);
    pgdat.folio_mark_accessed(young);
    pgdat.lru_add_drain();
    assert_eq!(pgdat.lru_pages(LruList::ActiveAnon), 1);
    check(&pgdat);
}

#[test]
fn the_last_reference_takes_a_page_off_its_list() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let free = pgdat.nr_free_pages();
    let pfn = new_page(&pgdat, false);
    pgdat.folio_add_lru(pfn);
    pgdat.lru_add_drain();
    assert_eq!(pgdat.lru_pages(LruList::InactiveFile), 1);
    // SAFETY: the test's allocation reference, the page's last.
    unsafe { pgdat.put_page(pfn) }.unwrap();
    assert_eq!(pgdat.lru_pages(LruList::InactiveFile), 0);
    assert!(!pgdat.pfn_to_page(pfn).unwrap().test(PageFlags::LRU));
    pgdat.drain_all_pages();
    assert_eq!(pgdat.nr_free_pages(), free, "freed, not reported bad");
    check(&pgdat);
}

#[test]
fn isolation_takes_a_reference_and_putback_gives_the_page_back() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let pfn = new_page(&pgdat, false);
    pgdat.folio_add_lru(pfn);
    pgdat.lru_add_drain();
    assert!(pgdat.isolate_lru_folio(pfn));
    assert!(!pgdat.isolate_lru_folio(pfn), "not on a list any more");
    assert_eq!(pgdat.pfn_to_page(pfn).unwrap().refcount(), 2);
    assert_eq!(pgdat.lru_pages(LruList::InactiveFile), 0);
    check(&pgdat);
    pgdat.pfn_to_page(pfn).unwrap().set(PageFlags::ACTIVE);
    pgdat.folio_putback_lru(pfn);
    assert_eq!(pgdat.lru_pages(LruList::ActiveFile), 1, "back on the list its flags say");
    assert_eq!(pgdat.pfn_to_page(pfn).unwrap().refcount(), 1);
    check(&pgdat);
}

#[derive(Clone, Debug)]
enum Op {
    Add { anon: bool },
    Access(usize),
    Isolate(usize),
    Putback,
    Put(usize),
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<bool>().prop_map(|anon| Op::Add { anon }),
        4 => any::<usize>().prop_map(Op::Access),
        2 => any::<usize>().prop_map(Op::Isolate),
        1 => Just(Op::Putback),
        2 => any::<usize>().prop_map(Op::Put),
        1 => Just(Op::Drain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random adds, accesses, isolations, putbacks and frees on two CPUs'
    /// batches: the lists, flags and counters agree after every step, and
    /// every page comes back to the allocator.
    #[test]
    fn lists_flags_and_counters_agree(ops in prop::collection::vec(op(), 1..120)) {
        let sim = Sim::flat(32 * MIB);
        let pgdat = sim.pgdat(2);
        let free = { pgdat.drain_all_pages(); pgdat.nr_free_pages() };
        let mut live: Vec<Pfn> = Vec::new();
        let mut isolated: Vec<Pfn> = Vec::new();
        for op in ops {
            match op {
                Op::Add { anon } => {
                    let pfn = new_page(&pgdat, anon);
                    pgdat.folio_add_lru(pfn);
                    live.push(pfn);
                }
                Op::Access(i) if !live.is_empty() => pgdat.folio_mark_accessed(live[i % live.len()]),
                Op::Isolate(i) if !live.is_empty() => {
                    let pfn = live[i % live.len()];
                    if pgdat.isolate_lru_folio(pfn) {
                        isolated.push(pfn);
                    }
                }
                Op::Putback => {
                    if let Some(pfn) = isolated.pop() {
                        pgdat.folio_putback_lru(pfn);
                    }
                }
                Op::Put(i) if !live.is_empty() => {
                    let pfn = live.swap_remove(i % live.len());
                    // SAFETY: the test's allocation reference.
                    unsafe { pgdat.put_page(pfn) }.unwrap();
                }
                Op::Drain => pgdat.lru_add_drain_all(),
                _ => {}
            }
            check(&pgdat);
        }
        for pfn in isolated {
            pgdat.folio_putback_lru(pfn);
        }
        for pfn in live {
            // SAFETY: as above.
            unsafe { pgdat.put_page(pfn) }.unwrap();
        }
        pgdat.lru_add_drain_all();
        check(&pgdat);
        for lru in LruList::ALL {
            prop_assert_eq!(pgdat.lru_pages(lru), 0);
        }
        pgdat.drain_all_pages();
        prop_assert_eq!(pgdat.nr_free_pages(), free);
    }
}
