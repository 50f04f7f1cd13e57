use std::sync::Mutex;
use std::sync::atomic::AtomicBool;

use super::*;
use crate::gfp::GFP_NOFS;
use crate::sim::{Sim, SimFolioWaits};
use crate::vmscan::{CacheOwners, Reclaimer, shrink_page_cache};

const MIB: u64 = 1 << 20;

/// A cache of `objects` identical objects, each freed when scanned; it
/// records every scan request, and behaves like a file-system cache when
/// `needs_fs` (nothing without `__GFP_FS`).
#[derive(Default)]
struct FakeCache {
    objects: AtomicU64,
    empty: AtomicBool,
    needs_fs: bool,
    /// What `scan_objects` sets `nr_scanned` to, if not left alone.
    reports_scanned: Option<u64>,
    counts: AtomicU64,
    scans: Mutex<Vec<u64>>,
}

impl FakeCache {
    fn with(objects: u64) -> FakeCache {
        FakeCache { objects: AtomicU64::new(objects), ..FakeCache::default() }
    }

    fn objects(&self) -> u64 {
        self.objects.load(Ordering::Relaxed)
    }

    fn scans(&self) -> Vec<u64> {
        self.scans.lock().unwrap().clone()
    }
}

impl ShrinkerOps for FakeCache {
    fn count_objects(&self, _sc: &ShrinkControl) -> ShrinkCount {
        self.counts.fetch_add(1, Ordering::Relaxed);
        if self.empty.load(Ordering::Relaxed) { ShrinkCount::Empty } else { ShrinkCount::Objects(self.objects()) }
    }

    fn scan_objects(&self, sc: &mut ShrinkControl) -> ShrinkScan {
        self.scans.lock().unwrap().push(sc.nr_to_scan);
        if self.needs_fs && !sc.gfp.contains(Gfp::FS) {
            return ShrinkScan::Stop;
        }
        let freed = sc.nr_to_scan.min(self.objects());
        self.objects.fetch_sub(freed, Ordering::Relaxed);
        if let Some(n) = self.reports_scanned {
            sc.nr_scanned = n;
        }
        ShrinkScan::Freed(freed)
    }
}

/// A registered-for-life shrinker over a leaked cache.
fn fake(cache: FakeCache) -> (&'static FakeCache, &'static Shrinker) {
    let cache: &'static FakeCache = Box::leak(Box::new(cache));
    (cache, Box::leak(Box::new(Shrinker::new("fake", cache))))
}

fn run(shrinker: &Shrinker, gfp: Gfp, priority: u32) -> ShrinkOutcome {
    do_shrink_slab(&mut ShrinkControl::new(gfp), shrinker, priority)
}

#[test]
fn a_pass_at_the_lowest_priority_scans_a_little_and_defers_less_than_a_batch() {
    // 16384 >> 12 = 4 objects, times 4 / DEFAULT_SEEKS = 8: under a batch
    // and under the cache, so nothing is scanned and the 8 wait.
    let (cache, shrinker) = fake(FakeCache::with(16_384));
    assert_eq!(run(shrinker, GFP_KERNEL, 12), ShrinkOutcome { freed: 0, scanned: 0 });
    assert!(cache.scans().is_empty());
    assert_eq!(shrinker.nr_deferred(), 8);
}

#[test]
fn priority_zero_scans_twice_the_cache_in_batches() {
    // delta = 1000 * 4 / 2 = 2000 = the cap 2 * freeable; 15 batches of
    // 128 go, the last 80 are under a batch and under the cache.
    let (cache, shrinker) = fake(FakeCache::with(1000));
    assert_eq!(run(shrinker, GFP_KERNEL, 0), ShrinkOutcome { freed: 1000, scanned: 1920 });
    assert_eq!(cache.scans(), vec![SHRINK_BATCH; 15]);
    assert_eq!(cache.objects(), 0);
    assert_eq!(shrinker.nr_deferred(), 80);
}

#[test]
fn deferred_work_is_carried_to_later_calls_and_scaled_by_their_priority() {
    let (cache, shrinker) = fake(FakeCache { needs_fs: true, ..FakeCache::with(4096) });
    // Without __GFP_FS the cache stops at once: delta = 1024 * 4 / 2.
    assert_eq!(run(shrinker, GFP_NOFS, 2), ShrinkOutcome::default());
    assert_eq!(cache.scans(), vec![SHRINK_BATCH], "asked once, and it stopped");
    assert_eq!(shrinker.nr_deferred(), 2048);
    // Priority 12: 2048 >> 12 = 0 of the deferred work, delta 2: under a
    // batch, so it all waits.
    assert_eq!(run(shrinker, GFP_KERNEL, 12), ShrinkOutcome::default());
    assert_eq!(shrinker.nr_deferred(), 2050);
    // Priority 4: 2050 >> 4 = 128 deferred plus delta 4096 >> 4 * 2 = 512.
    assert_eq!(run(shrinker, GFP_KERNEL, 4), ShrinkOutcome { freed: 640, scanned: 640 });
    assert_eq!(cache.scans().len(), 1 + 5);
    assert_eq!(shrinker.nr_deferred(), 2050 + 512 - 640);
}

#[test]
fn deferred_work_is_capped_at_twice_the_cache() {
    let (cache, shrinker) = fake(FakeCache { needs_fs: true, ..FakeCache::with(100) });
    for _ in 0..5 {
        run(shrinker, GFP_NOFS, 0);
        assert_eq!(shrinker.nr_deferred(), 200);
    }
    assert_eq!(cache.objects(), 100, "a stopped cache frees nothing");
}

#[test]
fn a_cache_smaller_than_a_batch_is_scanned_whole_when_memory_is_tight() {
    let (cache, shrinker) = fake(FakeCache::with(10));
    // Priority 12 asks for 0: nothing scanned, nothing deferred.
    assert_eq!(run(shrinker, GFP_KERNEL, 12), ShrinkOutcome::default());
    assert_eq!(shrinker.nr_deferred(), 0);
    // Priority 0 asks for 2 * 10, more than the cache holds: one call.
    assert_eq!(run(shrinker, GFP_KERNEL, 0), ShrinkOutcome { freed: 10, scanned: 20 });
    assert_eq!(cache.scans(), vec![20]);
}

#[test]
fn seeks_zero_trims_half_the_cache_whatever_the_priority() {
    let cache: &'static FakeCache = Box::leak(Box::new(FakeCache::with(1000)));
    let shrinker: &'static Shrinker = Box::leak(Box::new(Shrinker::new("cheap", cache).with_seeks(0)));
    assert_eq!(run(shrinker, GFP_KERNEL, 12), ShrinkOutcome { freed: 384, scanned: 384 });
    assert_eq!(shrinker.nr_deferred(), 500 - 384);
}

#[test]
fn the_batch_is_the_shrinkers_own_when_it_sets_one() {
    let cache: &'static FakeCache = Box::leak(Box::new(FakeCache::with(100)));
    let shrinker: &'static Shrinker = Box::leak(Box::new(Shrinker::new("small-batch", cache).with_batch(30)));
    // delta 200, capped at 200: six calls of 30, then the 20 left are
    // under a batch and under the cache of 100.
    assert_eq!(run(shrinker, GFP_KERNEL, 0), ShrinkOutcome { freed: 100, scanned: 180 });
    assert_eq!(cache.scans(), vec![30; 6]);
    assert_eq!(shrinker.nr_deferred(), 20);
}

#[test]
fn empty_and_zero_counts_are_never_scanned() {
    let (cache, shrinker) = fake(FakeCache::with(0));
    assert_eq!(run(shrinker, GFP_KERNEL, 0), ShrinkOutcome::default());
    cache.objects.store(50, Ordering::Relaxed);
    cache.empty.store(true, Ordering::Relaxed);
    assert_eq!(run(shrinker, GFP_KERNEL, 0), ShrinkOutcome::default());
    assert!(cache.scans().is_empty());
    assert_eq!(shrinker.nr_deferred(), 0, "no objects, no work to defer");
}

#[test]
fn what_a_shrinker_reports_scanned_is_what_counts() {
    // Each call reports 64 of its 128 scanned: 2000 takes 30 calls
    // (2000 - 29 * 64 = 144 still >= 128; after the 30th, 80 remain).
    let (cache, shrinker) = fake(FakeCache { reports_scanned: Some(64), ..FakeCache::with(1000) });
    assert_eq!(run(shrinker, GFP_KERNEL, 0).scanned, 30 * 64);
    assert_eq!(cache.scans().len(), 30);
    assert_eq!(shrinker.nr_deferred(), 2000 - 30 * 64);
    // One reporting nothing scanned ends the loop instead of spinning.
    let (cache, shrinker) = fake(FakeCache { reports_scanned: Some(0), ..FakeCache::with(1000) });
    assert_eq!(run(shrinker, GFP_KERNEL, 0), ShrinkOutcome { freed: 128, scanned: 0 });
    assert_eq!(cache.scans().len(), 1);
}

#[test]
fn the_registry_lists_each_shrinker_once_until_unregistered() {
    let registry = ShrinkerRegistry::new();
    let (_, a) = fake(FakeCache::with(1));
    let (_, b) = fake(FakeCache::with(1));
    assert_eq!(registry.register(a), Ok(()));
    assert_eq!(registry.register(a), Err(ShrinkerError::AlreadyRegistered));
    assert_eq!(registry.register(b), Ok(()));
    assert_eq!(registry.names().count(), 2);
    assert_eq!(registry.unregister(a), Ok(()));
    assert_eq!(registry.unregister(a), Err(ShrinkerError::NotRegistered));
    assert!(!a.is_running());
    assert_eq!(registry.names().count(), 1);
    for _ in 1..SHRINKER_MAX {
        assert_eq!(registry.register(fake(FakeCache::with(1)).1), Ok(()));
    }
    assert_eq!(registry.register(a), Err(ShrinkerError::Full));
}

#[test]
fn shrink_slab_runs_every_registered_shrinker_and_counts_slabs_scanned() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let (first, a) = fake(FakeCache::with(1000));
    let (second, b) = fake(FakeCache::with(10));
    let (gone, c) = fake(FakeCache::with(1000));
    for s in [a, b, c] {
        pgdat.shrinkers().register(s).unwrap();
    }
    pgdat.shrinkers().unregister(c).unwrap();
    assert_eq!(shrink_slab(&pgdat, GFP_KERNEL, 0), 1010);
    assert_eq!((first.objects(), second.objects(), gone.objects()), (0, 0, 1000));
    assert!(gone.scans().is_empty(), "an unregistered shrinker is not called");
    assert_eq!(pgdat.all_vm_events(VmEventItem::SlabsScanned), 1920 + 20);
}

#[test]
fn drop_slab_empties_every_cache() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let (big, a) = fake(FakeCache::with(100_000));
    let (small, b) = fake(FakeCache::with(3));
    pgdat.shrinkers().register(a).unwrap();
    pgdat.shrinkers().register(b).unwrap();
    assert_eq!(drop_slab(&pgdat), 100_003);
    assert_eq!((big.objects(), small.objects()), (0, 0));
}

/// No page cache at all.
struct NoCaches;

impl CacheOwners for NoCaches {
    fn remove_clean(&self, _: &PgData<'_>, _: crate::filemap::MappingId, _: u64, _: crate::addr::Pfn) -> bool {
        false
    }

    fn folio_referenced(&self, _: &PgData<'_>, _: crate::addr::Pfn, _: bool) -> crate::rmap::Referenced {
        crate::rmap::Referenced::default()
    }

    fn try_to_unmap(&self, _: &PgData<'_>, _: crate::addr::Pfn) -> bool {
        false
    }
}

#[test]
fn reclaim_runs_the_shrinkers_once_per_priority_pass_under_its_mask() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let (fs_cache, fs) = fake(FakeCache { needs_fs: true, ..FakeCache::with(1 << 20) });
    pgdat.shrinkers().register(fs).unwrap();
    // Nothing on the LRU: every priority from 12 to 0 is tried, each
    // ending with the shrinkers. Without __GFP_FS the cache stops and
    // its work is deferred.
    assert_eq!(shrink_page_cache(&pgdat, &NoCaches, &SimFolioWaits, 32, Reclaimer::Direct, GFP_NOFS), 0);
    assert_eq!(fs_cache.counts.load(Ordering::Relaxed), 13);
    assert_eq!(fs_cache.objects(), 1 << 20);
    assert_eq!(pgdat.all_vm_events(VmEventItem::SlabsScanned), 0);
    assert!(fs.nr_deferred() > 0);
    // kswapd's mask allows it: the deferred work is done.
    shrink_page_cache(&pgdat, &NoCaches, &SimFolioWaits, 32, Reclaimer::Kswapd, GFP_KERNEL);
    assert!(fs_cache.objects() < 1 << 20);
    assert!(pgdat.all_vm_events(VmEventItem::SlabsScanned) > 0);
}
