use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;

use super::*;
use crate::filemap::{MappingId, folio_trylock, folio_unlock};
use crate::gfp::GFP_KERNEL;
use crate::sim::{Sim, SimFolioWaits};

const MIB: u64 = 1 << 20;

type Nodes = crate::sim::HeapAlloc<crate::xarray::XaNode<crate::filemap::CacheEntry>>;
type Space = AddressSpace<Nodes>;
const ID: MappingId = match MappingId::new(0x2000) {
    Some(id) => id,
    None => panic!("an aligned, non-zero id"),
};

/// Counts wake-ups, to see that the end of writeback wakes waiters.
#[derive(Default)]
struct CountingWaits(AtomicUsize);

impl FolioWaitTable for CountingWaits {
    fn wait_event(&self, _pfn: Pfn, cond: &mut dyn FnMut() -> bool) {
        assert!(cond(), "nothing in these tests waits");
    }

    fn wake_up(&self, _pfn: Pfn) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

fn state(pgdat: &PgData<'_>, item: NodeStatItem) -> u64 {
    pgdat.node_page_state_pages(item)
}

/// A cached, uptodate, unlocked page at `index`.
fn cached_page(space: &mut Space, pgdat: &PgData<'_>, index: u64) -> Pfn {
    let pfn = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    let page = pgdat.pfn_to_page(pfn).unwrap();
    assert!(folio_trylock(page));
    space.add_folio(pgdat, pfn, index).unwrap();
    page.set(PageFlags::UPTODATE);
    folio_unlock(page, pfn, &SimFolioWaits);
    pfn
}

/// The seed's questions, answered in order on one page: uptodate without
/// dirty after a read; dirty after a write; writeback during write-back;
/// clean and not under writeback after it.
#[test]
fn a_page_goes_clean_dirty_writeback_clean_with_flags_marks_and_counters() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let waits = CountingWaits::default();
    let mut space = AddressSpace::new(ID, false, Nodes::default());
    let pfn = cached_page(&mut space, &pgdat, 5);
    let page = pgdat.pfn_to_page(pfn).unwrap();
    assert!(page.test(PageFlags::UPTODATE) && !page.test(PageFlags::DIRTY), "read: uptodate, not dirty");

    assert!(folio_mark_dirty(&mut space, &pgdat, page, 5));
    assert!(!folio_mark_dirty(&mut space, &pgdat, page, 5), "dirtying a dirty page counts nothing");
    assert!(page.test(PageFlags::DIRTY) && space.tagged(PAGECACHE_TAG_DIRTY));
    assert_eq!((state(&pgdat, NodeStatItem::NrFileDirty), state(&pgdat, NodeStatItem::NrDirtied)), (1, 1));
    space.check(&pgdat).unwrap();

    let wbc = WritebackControl::sync_all();
    assert_eq!(writeback_prepare(&mut space, &wbc), 1);
    assert_eq!(writeback_next(&space, &wbc, 0), Some((5, pfn)));
    assert!(folio_trylock(page));
    assert!(folio_clear_dirty_for_io(&pgdat, page));
    folio_start_writeback(&mut space, &pgdat, page, 5, false).unwrap();
    assert_eq!(folio_start_writeback(&mut space, &pgdat, page, 5, false), Err(WritebackError::Busy));
    folio_unlock(page, pfn, &SimFolioWaits);
    assert!(page.test(PageFlags::WRITEBACK) && !page.test(PageFlags::DIRTY), "writeback: PG_writeback, clean");
    assert!(!space.tagged(PAGECACHE_TAG_DIRTY) && !space.tagged(PAGECACHE_TAG_TOWRITE));
    assert!(space.tagged(PAGECACHE_TAG_WRITEBACK));
    assert_eq!(writeback_next(&space, &wbc, 0), None, "the pass is done once the page is under writeback");
    assert_eq!((state(&pgdat, NodeStatItem::NrFileDirty), state(&pgdat, NodeStatItem::NrWriteback)), (0, 1));
    space.check(&pgdat).unwrap();

    folio_end_writeback(&mut space, &pgdat, page, pfn, 5, &waits);
    assert!(!page.test(PageFlags::WRITEBACK) && !space.tagged(PAGECACHE_TAG_WRITEBACK));
    assert_eq!((state(&pgdat, NodeStatItem::NrWriteback), state(&pgdat, NodeStatItem::NrWritten)), (0, 1));
    assert_eq!(waits.0.load(Ordering::Relaxed), 1, "waiters for the writeback are woken");
    folio_end_writeback(&mut space, &pgdat, page, pfn, 5, &waits);
    assert_eq!(state(&pgdat, NodeStatItem::NrWritten), 1, "a second end is nothing");
    space.check(&pgdat).unwrap();
}

#[test]
fn a_page_dirtied_again_during_writeback_keeps_its_dirty_mark_and_is_written_again() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let mut space = AddressSpace::new(ID, false, Nodes::default());
    let pfn = cached_page(&mut space, &pgdat, 0);
    let page = pgdat.pfn_to_page(pfn).unwrap();
    folio_mark_dirty(&mut space, &pgdat, page, 0);
    assert!(folio_trylock(page));
    assert!(folio_clear_dirty_for_io(&pgdat, page));
    // A write lands between clearing and starting writeback.
    folio_mark_dirty(&mut space, &pgdat, page, 0);
    folio_start_writeback(&mut space, &pgdat, page, 0, false).unwrap();
    folio_unlock(page, pfn, &SimFolioWaits);
    assert!(space.tagged(PAGECACHE_TAG_DIRTY), "still dirty: the next pass writes it again");
    let background = WritebackControl::background(16);
    assert_eq!(writeback_next(&space, &background, 0), Some((0, pfn)));
    folio_end_writeback(&mut space, &pgdat, page, pfn, 0, &SimFolioWaits);
    assert!(page.test(PageFlags::DIRTY));
    assert_eq!(state(&pgdat, NodeStatItem::NrFileDirty), 1);
    space.check(&pgdat).unwrap();
}

#[test]
fn a_sync_pass_skips_pages_dirtied_after_it_started() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let mut space = AddressSpace::new(ID, false, Nodes::default());
    let a = cached_page(&mut space, &pgdat, 1);
    let b = cached_page(&mut space, &pgdat, 9);
    folio_mark_dirty(&mut space, &pgdat, pgdat.pfn_to_page(a).unwrap(), 1);
    let wbc = WritebackControl { start: 0, end: 100, ..WritebackControl::sync_all() };
    assert_eq!(writeback_prepare(&mut space, &wbc), 1);
    folio_mark_dirty(&mut space, &pgdat, pgdat.pfn_to_page(b).unwrap(), 9);
    assert_eq!(writeback_next(&space, &wbc, 0), Some((1, a)));
    assert_eq!(writeback_next(&space, &wbc, 2), None, "page 9 was dirtied after the pass began");
    assert_eq!(writeback_next(&space, &WritebackControl::background(8), 2), Some((9, b)));
}

#[test]
fn truncation_cancels_dirtiness_and_removal_drops_it_from_the_counters() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let mut space = AddressSpace::new(ID, false, Nodes::default());
    let a = cached_page(&mut space, &pgdat, 0);
    let b = cached_page(&mut space, &pgdat, 1);
    let (pa, pb) = (pgdat.pfn_to_page(a).unwrap(), pgdat.pfn_to_page(b).unwrap());
    folio_mark_dirty(&mut space, &pgdat, pa, 0);
    folio_mark_dirty(&mut space, &pgdat, pb, 1);
    assert!(folio_trylock(pa) && folio_trylock(pb));
    folio_cancel_dirty(&mut space, &pgdat, pa, 0);
    assert!(!pa.test(PageFlags::DIRTY) && !space.get_mark(0, PAGECACHE_TAG_DIRTY));
    assert_eq!(space.remove_folio(&pgdat, 1), Some(b), "a dirty page removed");
    assert_eq!(state(&pgdat, NodeStatItem::NrFileDirty), 0);
    assert!(!pb.test(PageFlags::DIRTY));
    folio_unlock(pa, a, &SimFolioWaits);
    folio_unlock(pb, b, &SimFolioWaits);
    space.check(&pgdat).unwrap();
}

#[test]
fn shmem_pages_are_dirty_without_counting_or_marks_and_never_written_back() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let mut space = AddressSpace::new(ID, true, Nodes::default());
    let a = cached_page(&mut space, &pgdat, 0);
    let b = cached_page(&mut space, &pgdat, 1);
    let (pa, pb) = (pgdat.pfn_to_page(a).unwrap(), pgdat.pfn_to_page(b).unwrap());
    assert!(folio_mark_dirty(&mut space, &pgdat, pa, 0));
    assert!(!folio_mark_dirty(&mut space, &pgdat, pa, 0));
    folio_mark_dirty(&mut space, &pgdat, pb, 1);
    assert!(pa.test(PageFlags::DIRTY) && pb.test(PageFlags::DIRTY), "PG_dirty: the pages hold data");
    assert!(!space.tagged(PAGECACHE_TAG_DIRTY), "but nothing marks them for writeback");
    assert_eq!((state(&pgdat, NodeStatItem::NrFileDirty), state(&pgdat, NodeStatItem::NrDirtied)), (0, 0));
    assert_eq!(nr_dirty_and_writeback(&pgdat), 0, "shmem never throttles writers");
    let free = pgdat.nr_free_pages().saturating_sub(pgdat.totalreserve_pages());
    assert_eq!(global_dirtyable_memory(&pgdat), free, "nor counts as dirtyable memory");
    for wbc in [WritebackControl::sync_all(), WritebackControl::background(16)] {
        assert_eq!(writeback_prepare(&mut space, &wbc), 0);
        assert_eq!(writeback_next(&space, &wbc, 0), None, "a pass finds nothing to write");
    }
    space.check(&pgdat).unwrap();
    // Truncation and removal drop the pages' data without counters going
    // below zero.
    assert!(folio_trylock(pa) && folio_trylock(pb));
    folio_cancel_dirty(&mut space, &pgdat, pa, 0);
    assert!(!pa.test(PageFlags::DIRTY));
    assert_eq!(space.remove_folio(&pgdat, 1), Some(b));
    assert_eq!(state(&pgdat, NodeStatItem::NrFileDirty), 0);
    folio_unlock(pa, a, &SimFolioWaits);
    folio_unlock(pb, b, &SimFolioWaits);
    space.check(&pgdat).unwrap();
}

#[test]
fn a_shmem_page_with_a_writeback_mark_breaks_the_invariants() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let mut space = AddressSpace::new(ID, true, Nodes::default());
    cached_page(&mut space, &pgdat, 3);
    space.check(&pgdat).unwrap();
    space.set_mark(3, PAGECACHE_TAG_TOWRITE);
    assert!(space.check(&pgdat).is_err());
}

#[test]
fn dirty_limits_follow_the_ratios_and_keep_background_below_the_throttle() {
    let d = DirtySettings::DEFAULT;
    assert_eq!(dirty_limits(&d, 1000), (100, 200));
    let mut s = d;
    s.set_background_ratio(30).unwrap();
    assert_eq!(dirty_limits(&s, 1000), (100, 200), "background >= throttle: half of it");
    assert_eq!(s.set_ratio(101), Err(DirtySettingError::RatioOutOfRange));
    assert_eq!(s.ratio, 20, "a refused value changes nothing");
    assert_eq!(dirty_limits(&d, u64::MAX).1, u64::MAX / 100, "no overflow");
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Dirty(u64),
    StartWriteback(u64),
    EndWriteback(u64),
    Truncate(u64),
    Add(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let index = 0..6u64;
    prop_oneof![
        index.clone().prop_map(Op::Dirty),
        index.clone().prop_map(Op::StartWriteback),
        index.clone().prop_map(Op::EndWriteback),
        index.clone().prop_map(Op::Truncate),
        index.prop_map(Op::Add),
    ]
}

/// The model: per index, (dirty, under writeback).
type Model = BTreeMap<u64, (bool, bool)>;

proptest! {
    /// Random sequences of the transitions keep the flags, the marks and
    /// the counters what a model of (dirty, writeback) per page says.
    #[test]
    fn transitions_match_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let sim = Sim::flat(32 * MIB);
        let pgdat = sim.pgdat(1);
        let mut space = AddressSpace::new(ID, false, Nodes::default());
        let mut model = Model::new();
        let mut removed = Vec::new();
        for op in ops {
            match op {
                Op::Add(i) => {
                    if let std::collections::btree_map::Entry::Vacant(e) = model.entry(i) {
                        cached_page(&mut space, &pgdat, i);
                        e.insert((false, false));
                    }
                }
                Op::Dirty(i) => {
                    if let Some(m) = model.get_mut(&i) {
                        let page = pgdat.pfn_to_page(space.lookup(i).unwrap()).unwrap();
                        prop_assert_eq!(folio_mark_dirty(&mut space, &pgdat, page, i), !m.0);
                        m.0 = true;
                    }
                }
                Op::StartWriteback(i) => {
                    if let Some(m) = model.get_mut(&i) {
                        let page = pgdat.pfn_to_page(space.lookup(i).unwrap()).unwrap();
                        // write_cache_pages: busy pages are skipped, clean ones too.
                        if !m.1 && folio_trylock(page) {
                            if folio_clear_dirty_for_io(&pgdat, page) {
                                folio_start_writeback(&mut space, &pgdat, page, i, false).unwrap();
                                *m = (false, true);
                            } else {
                                prop_assert!(!m.0);
                            }
                            folio_unlock(page, space.lookup(i).unwrap(), &SimFolioWaits);
                        }
                    }
                }
                Op::EndWriteback(i) => {
                    if let Some(m) = model.get_mut(&i) {
                        let pfn = space.lookup(i).unwrap();
                        let page = pgdat.pfn_to_page(pfn).unwrap();
                        folio_end_writeback(&mut space, &pgdat, page, pfn, i, &SimFolioWaits);
                        m.1 = false;
                    }
                }
                Op::Truncate(i) => {
                    // truncate_inode_pages waits for writeback first; here
                    // only pages not under writeback go.
                    if model.get(&i).is_some_and(|m| !m.1) {
                        let pfn = space.lookup(i).unwrap();
                        let page = pgdat.pfn_to_page(pfn).unwrap();
                        prop_assert!(folio_trylock(page));
                        folio_cancel_dirty(&mut space, &pgdat, page, i);
                        prop_assert_eq!(space.remove_folio(&pgdat, i), Some(pfn));
                        folio_unlock(page, pfn, &SimFolioWaits);
                        removed.push(pfn);
                        model.remove(&i);
                    }
                }
            }
            space.check(&pgdat).map_err(TestCaseError::fail)?;
            let dirty = model.values().filter(|m| m.0).count() as u64;
            let writeback = model.values().filter(|m| m.1).count() as u64;
            prop_assert_eq!(state(&pgdat, NodeStatItem::NrFileDirty), dirty);
            prop_assert_eq!(state(&pgdat, NodeStatItem::NrWriteback), writeback);
            prop_assert_eq!(state(&pgdat, NodeStatItem::NrFilePages), model.len() as u64);
            prop_assert_eq!(space.tagged(PAGECACHE_TAG_DIRTY), dirty > 0);
            prop_assert_eq!(space.tagged(PAGECACHE_TAG_WRITEBACK), writeback > 0);
            for pfn in &removed {
                prop_assert_eq!(pgdat.pfn_to_page(*pfn).unwrap().mapping(), 0);
            }
        }
    }
}
