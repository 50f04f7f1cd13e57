//! Host tests of SLUB and kmalloc on simulated machines.

use core::ptr::NonNull;
use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::gfp::GFP_KERNEL;
use crate::sim::{SIM_PERCPU, Sim, SimPercpu, free_pages_drained as free_pages, might_sleep_calls, set_cpu};
use crate::slab_common::{KMALLOC_SIZES, Slab, SlubDebug, ZERO_SIZE_PTR, kmalloc_index};
use crate::vmstat::NodeStatItem;

const MIB: u64 = 1 << 20;

thread_local! {
    /// The "interrupt handler" of this thread, run by [`interrupt_window`].
    static INTERRUPT: core::cell::Cell<Option<*mut (dyn FnMut() + 'static)>> = const { core::cell::Cell::new(None) };
}

/// Called by the fast paths between their reads and their exchange, where
/// a real interrupt may arrive: runs this thread's handler, if one is set
/// and not already running (a handler's own fast paths do not nest it).
pub(super) fn interrupt_window() {
    if let Some(handler) = INTERRUPT.with(core::cell::Cell::take) {
        // SAFETY: `with_interrupts` set this pointer from a live `&mut`
        // that outlives the body running now (it clears the pointer before
        // returning, panics included), and took it out of the cell, so
        // this is the only use of it.
        unsafe { (*handler)() };
        INTERRUPT.with(|i| i.set(Some(handler)));
    }
}

/// Runs `body` with `handler` as an interrupt that strikes inside every
/// fast path on this thread (it decides itself when to do something).
fn with_interrupts(handler: &mut dyn FnMut(), body: impl FnOnce()) {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            INTERRUPT.with(|i| i.set(None));
        }
    }
    let handler: *mut (dyn FnMut() + '_) = handler;
    // SAFETY: only the lifetime is erased; `Clear` removes the pointer
    // before `handler`'s borrow ends, even if `body` panics.
    let handler: *mut (dyn FnMut() + 'static) = unsafe { core::mem::transmute(handler) };
    let _clear = Clear;
    INTERRUPT.with(|i| i.set(Some(handler)));
    body();
}

fn slab<'a>(pgdat: &'a PgData<'a>, debug: &'a str) -> Slab<'a> {
    let debug = if debug.is_empty() { SlubDebug::default() } else { SlubDebug::parse(Some(debug)).unwrap() };
    Slab::new(pgdat, 2, &SIM_PERCPU, debug, false).unwrap()
}

fn fill(p: NonNull<u8>, len: usize, byte: u8) {
    // SAFETY: the test owns the `len`-byte object at `p`.
    unsafe { core::ptr::write_bytes(p.as_ptr(), byte, len) };
}

fn bytes(p: NonNull<u8>, len: usize) -> Vec<u8> {
    // SAFETY: the test owns the `len`-byte object at `p`.
    unsafe { core::slice::from_raw_parts(p.as_ptr(), len).to_vec() }
}

#[test]
fn kmalloc_picks_the_smallest_class_and_aligns_powers_of_two() {
    assert_eq!(kmalloc_index(1), Some(0));
    assert_eq!(kmalloc_index(65), Some(4), "96-byte class");
    assert_eq!(kmalloc_index(129), Some(6), "192-byte class");
    assert_eq!(kmalloc_index(8192), Some(12));
    assert_eq!(kmalloc_index(8193), None);
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    let slab = slab(&pgdat, "");
    for &size in &KMALLOC_SIZES {
        let p = slab.kmalloc(size as usize, GFP_KERNEL).unwrap();
        assert_eq!(slab.ksize(p), Some(size as usize));
        if size.is_power_of_two() {
            assert_eq!(p.as_ptr() as usize % size as usize, 0, "kmalloc-{size} not naturally aligned");
        }
        // SAFETY: allocated above, freed once.
        unsafe { slab.kfree(p.as_ptr()) }.unwrap();
    }
}

#[test]
fn calculate_order_matches_linux_for_common_sizes() {
    // 2 CPUs: min_objects = 4 * (fls(2) + 1) = 12.
    let order = |size| KmemCache::new("t", size, 8, SlabFlags::empty(), None, 2, PerCpuRef::from_slice(&[])).unwrap();
    assert_eq!((order(64).order(), order(64).objects_per_slab()), (0, 64));
    assert_eq!(order(1024).order(), 2, "12 objects of 1 KiB need 16 KiB");
    assert_eq!(order(4096).order(), 3);
    assert_eq!(order(8192).objects_per_slab(), 4);
}

#[test]
fn objects_are_distinct_and_memory_returns_after_free_and_shrink() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    let slab = slab(&pgdat, "");
    let baseline = free_pages(&pgdat);
    let mut live = Vec::new();
    for i in 0..5000usize {
        let size = [8, 24, 64, 100, 200, 700, 3000, 9000, 20_000][i % 9];
        let p = slab.kmalloc(size, GFP_KERNEL).unwrap();
        fill(p, size, i as u8);
        live.push((p, size, i as u8));
    }
    for &(p, size, tag) in &live {
        assert!(bytes(p, size).iter().all(|&b| b == tag), "object {p:?} was handed out twice");
    }
    for (p, _, _) in live {
        // SAFETY: allocated above, freed once.
        unsafe { slab.kfree(p.as_ptr()) }.unwrap();
    }
    slab.shrink_all();
    assert_eq!(free_pages(&pgdat), baseline, "slab pages leaked");
    assert_eq!(slab.errors(), 0);
}

#[test]
fn kfree_and_krealloc_follow_linux_semantics() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    let slab = slab(&pgdat, "");
    // SAFETY: null and ZERO_SIZE_PTR are no-ops.
    unsafe {
        slab.kfree(core::ptr::null_mut()).unwrap();
        slab.kfree(ZERO_SIZE_PTR.as_ptr()).unwrap();
    }
    assert_eq!(slab.kmalloc(0, GFP_KERNEL), Some(ZERO_SIZE_PTR));
    let p = slab.kmalloc(20, GFP_KERNEL).unwrap();
    fill(p, 20, 7);
    // SAFETY: `p` is ours; krealloc takes it over.
    let same = unsafe { slab.krealloc(p.as_ptr(), 32, GFP_KERNEL) }.unwrap();
    assert_eq!(same, p, "fits in its class: same pointer");
    // SAFETY: as above.
    let grown = unsafe { slab.krealloc(same.as_ptr(), 5000, GFP_KERNEL) }.unwrap();
    assert_eq!(&bytes(grown, 20), &[7; 20]);
    assert_eq!(slab.ksize(grown), Some(8192));
    // SAFETY: as above.
    let large = unsafe { slab.krealloc(grown.as_ptr(), 100_000, GFP_KERNEL) }.unwrap();
    assert_eq!(slab.ksize(large), Some(128 * 1024), "large kmalloc is whole pages");
    assert_eq!(&bytes(large, 20), &[7; 20]);
    // SAFETY: freed once.
    unsafe { slab.kfree(large.as_ptr()) }.unwrap();
    let zeroed = slab.kzalloc(100, GFP_KERNEL).unwrap();
    assert!(bytes(zeroed, 100).iter().all(|&b| b == 0));
    assert!(slab.kmalloc(crate::slab_common::KMALLOC_MAX_SIZE + 1, GFP_KERNEL | Gfp::NOWARN).is_none());
}

#[test]
fn constructor_runs_per_object_and_destroy_refuses_a_busy_cache() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    let slab = slab(&pgdat, "");
    let baseline = free_pages(&pgdat);
    let cache = slab.kmem_cache_create("test_ctor", 40, 8, SlabFlags::empty(), Some(|obj| obj.fill(0x77))).unwrap();
    let a = slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap();
    let b = slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap();
    assert_eq!(bytes(a, 40), vec![0x77; 40]);
    let (cache, err) = slab.kmem_cache_destroy(cache).unwrap_err();
    assert_eq!(err, SlabError::CacheBusy { cache: "test_ctor", objects: 2 });
    assert!(err.to_string().contains("test_ctor") && err.to_string().contains("2 allocated"));
    // SAFETY: both allocated above, freed once.
    unsafe {
        slab.kmem_cache_free(&cache, a).unwrap();
        slab.kmem_cache_free(&cache, b).unwrap();
    }
    slab.kmem_cache_destroy(cache).unwrap();
    assert_eq!(free_pages(&pgdat), baseline);
}

#[test]
fn red_zone_overwrite_is_caught_on_free_and_the_object_kept_out_of_use() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    let slab = slab(&pgdat, "FZPU");
    let cache = slab.kmem_cache_create("rz", 50, 8, SlabFlags::empty(), None).unwrap();
    let p = slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap();
    // SAFETY: one byte past the object: inside the slot's right red zone.
    unsafe { p.as_ptr().add(50).write(0x41) };
    // SAFETY: `p` is ours.
    let err = unsafe { slab.kmem_cache_free(&cache, p) }.unwrap_err();
    assert!(
        matches!(err, SlabError::RedzoneOverwritten { at, found: 0x41, .. } if at == p.as_ptr() as u64 + 50),
        "{err:?}"
    );
    assert_eq!((cache.errors(), slab.errors()), (1, 1));
    // The object stays allocated: validation sees its broken red zone.
    assert!(slab.validate_slab_cache(&cache).is_err());
}

#[test]
fn use_after_free_write_is_caught_on_the_next_allocation() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    let slab = slab(&pgdat, "FZPU");
    let cache = slab.kmem_cache_create("uaf", 64, 8, SlabFlags::empty(), None).unwrap();
    let p = slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap();
    assert!(bytes(p, 64).iter().all(|&b| b == POISON_INUSE), "new objects are filled with 0x5a");
    // SAFETY: `p` is ours until freed here.
    unsafe { slab.kmem_cache_free(&cache, p) }.unwrap();
    let mut poison = vec![POISON_FREE; 64];
    poison[63] = POISON_END;
    assert_eq!(bytes(p, 64), poison, "free objects are poisoned");
    // The bug: a write after free.
    // SAFETY: the object is free but its memory is still a mapped slab.
    unsafe { p.as_ptr().add(10).write(0) };
    let q = slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap();
    assert_ne!(q, p, "the corrupted object is never handed out");
    assert_eq!(cache.errors(), 1);
}

#[test]
fn double_free_and_foreign_pointers_are_refused() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    for debug in ["", "F", "FZPU"] {
        let slab = slab(&pgdat, debug);
        let a = slab.kmem_cache_create("a", 32, 8, SlabFlags::empty(), None).unwrap();
        let b = slab.kmem_cache_create("b", 32, 8, SlabFlags::empty(), None).unwrap();
        let p = slab.kmem_cache_alloc(&a, GFP_KERNEL).unwrap();
        // SAFETY: deliberate misuse the allocator must refuse; the memory
        // involved stays mapped.
        unsafe {
            slab.kmem_cache_free(&a, p).unwrap();
            let err = slab.kmem_cache_free(&a, p).unwrap_err();
            assert!(matches!(err, SlabError::DoubleFree { .. }), "{debug}: {err:?}");
            let q = slab.kmem_cache_alloc(&a, GFP_KERNEL).unwrap();
            let err = slab.kmem_cache_free(&b, q).unwrap_err();
            assert_eq!(err, SlabError::WrongCache { addr: q.as_ptr() as u64, expected: "b", actual: "a" });
            let inside = NonNull::new(q.as_ptr().add(4)).unwrap();
            assert!(matches!(slab.kmem_cache_free(&a, inside), Err(SlabError::InvalidPointer { .. })));
            let page = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
            let raw = pgdat.page_address(page).unwrap().as_mut_ptr::<u8>();
            assert_eq!(slab.kfree(raw), Err(SlabError::NotSlabObject { addr: raw as u64 }));
            let mut on_stack = 0u8;
            assert!(slab.kfree(&mut on_stack).is_err());
            slab.kmem_cache_free(&a, q).unwrap();
        }
        assert!(slab.errors() >= 4, "{debug}");
    }
}

#[test]
fn store_user_records_the_allocating_and_freeing_call_sites() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    let slab = slab(&pgdat, "U");
    let cache = slab.kmem_cache_create("track", 48, 8, SlabFlags::empty(), None).unwrap();
    let line = line!() + 1;
    let p = slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap();
    let ctx = SlubCtx { pgdat: &pgdat, page_offset: 0, panic_on_error: false, errors: &AtomicU64::new(0) };
    let (loc, cpu) = ctx.track(&cache, p.as_ptr() as u64, 0).expect("alloc track");
    assert_eq!((loc.file(), loc.line(), cpu), (file!(), line, 0));
    let line = line!() + 2;
    // SAFETY: freed once.
    unsafe { slab.kmem_cache_free(&cache, p) }.unwrap();
    let (loc, _) = ctx.track(&cache, p.as_ptr() as u64, 1).expect("free track");
    assert_eq!(loc.line(), line);
}

#[test]
#[should_panic(expected = "slab corruption in rz")]
fn corruption_panics_when_configured_to() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    let slab = Slab::new(&pgdat, 2, &SIM_PERCPU, SlubDebug::parse(Some("Z")).unwrap(), true).unwrap();
    let cache = slab.kmem_cache_create("rz", 16, 8, SlabFlags::empty(), None).unwrap();
    let p = slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap();
    // SAFETY: writes the red zone right after the object, inside the slot.
    unsafe { p.as_ptr().add(16).write(0) };
    // SAFETY: `p` is ours.
    let _ = unsafe { slab.kmem_cache_free(&cache, p) };
}

#[test]
fn slub_debug_option_parses_like_linux() {
    assert_eq!(SlubDebug::parse(None).unwrap(), SlubDebug { flags: SlabFlags::DEBUG, caches: None });
    let d = SlubDebug::parse(Some("FZ,kmalloc-64,dentry")).unwrap();
    assert_eq!(d.flags, SlabFlags::CONSISTENCY_CHECKS | SlabFlags::RED_ZONE);
    assert_eq!(d.caches, Some("kmalloc-64,dentry"));
    assert_eq!(SlubDebug::parse(Some("-")).unwrap().flags, SlabFlags::empty());
    assert_eq!(SlubDebug::parse(Some("FQ")).unwrap_err().0, 'Q');
}

#[test]
fn slabinfo_counts_objects_and_slabs_in_linux_format() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    let slab = slab(&pgdat, "");
    let cache = slab.kmem_cache_create("widget", 200, 8, SlabFlags::empty(), None).unwrap();
    let live: Vec<_> = (0..50).map(|_| slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap()).collect();
    let info = slab.slabinfo_of(&cache);
    assert_eq!(info.active_objs, 50);
    assert_eq!(info.num_objs, info.num_slabs * u64::from(info.objperslab));
    assert!(info.num_slabs >= 50u64.div_ceil(u64::from(info.objperslab)));
    let text = crate::slab_common::Slabinfo(&slab).to_string();
    assert!(text.starts_with("slabinfo - version: 2.1\n# name "));
    let line = text.lines().find(|l| l.starts_with("widget ")).unwrap();
    assert!(
        line.contains(&format!("     50 {:>6}    200 ", info.num_objs))
            && line.contains(" : tunables    0    0    0 : slabdata "),
        "{line}"
    );
    for p in live {
        // SAFETY: freed once.
        unsafe { slab.kmem_cache_free(&cache, p) }.unwrap();
    }
    assert_eq!(slab.slabinfo_of(&cache).active_objs, 0);
}

/// Bytes of every slab of every cache, from the caches' own counts.
fn slab_bytes(slab: &Slab<'_>, reclaimable: bool) -> u64 {
    let mut bytes = 0;
    slab.for_each_cache(|c| {
        if c.flags().contains(SlabFlags::RECLAIM_ACCOUNT) == reclaimable {
            bytes += slab.slabinfo_of(c).num_slabs * (PAGE_SIZE << c.order());
        }
    });
    bytes
}

#[test]
fn slab_pages_and_large_kmalloc_count_in_the_slab_counters() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    let unreclaimable = || pgdat.node_page_state(NodeStatItem::NrSlabUnreclaimableB);
    let reclaimable = || pgdat.node_page_state(NodeStatItem::NrSlabReclaimableB);
    let slab = slab(&pgdat, "");
    assert_eq!(unreclaimable(), slab_bytes(&slab, false));
    assert!(unreclaimable() > 0, "the kmalloc caches' first slabs");
    let mut live = Vec::new();
    for i in 0..3000usize {
        set_cpu((i % 2) as u32);
        let size = [8, 96, 700, 3000, 8192][i % 5];
        live.push(slab.kmalloc(size, GFP_KERNEL).unwrap());
    }
    assert_eq!(unreclaimable(), slab_bytes(&slab, false));
    // kmalloc_large blocks count too, as whole compound pages.
    let before = unreclaimable();
    let big = slab.kmalloc(20_000, GFP_KERNEL).unwrap();
    assert_eq!(unreclaimable(), before + 8 * PAGE_SIZE, "20000 bytes take an order-3 block");
    // SAFETY: allocated above, freed once.
    unsafe { slab.kfree(big.as_ptr()) }.unwrap();
    assert_eq!(unreclaimable(), before);
    // Frees on the other CPU, then shrinking: slabs discarded count down.
    for (i, p) in live.into_iter().enumerate() {
        set_cpu(((i + 1) % 2) as u32);
        // SAFETY: allocated above, freed once.
        unsafe { slab.kfree(p.as_ptr()) }.unwrap();
    }
    set_cpu(0);
    assert!(slab.shrink_all() > 0);
    assert_eq!(unreclaimable(), slab_bytes(&slab, false));
    // A SLAB_RECLAIM_ACCOUNT cache counts apart.
    let cache = slab.kmem_cache_create("dentry", 192, 8, SlabFlags::RECLAIM_ACCOUNT, None).unwrap();
    let before = unreclaimable();
    let obj = slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap();
    assert_eq!(reclaimable(), PAGE_SIZE << cache.order());
    assert_eq!(reclaimable(), slab_bytes(&slab, true));
    assert_eq!(unreclaimable(), before);
    // SAFETY: allocated above, freed once.
    unsafe { slab.kmem_cache_free(&cache, obj) }.unwrap();
    assert!(slab.kmem_cache_destroy(cache).is_ok());
    assert_eq!(reclaimable(), 0);
}

#[test]
fn cross_cpu_frees_keep_every_slab_consistent() {
    let sim = Sim::flat(128 * MIB);
    let pgdat = sim.pgdat(4);
    for debug in ["", "FZPU"] {
        let slab = Slab::new(
            &pgdat,
            4,
            &SIM_PERCPU,
            if debug.is_empty() { SlubDebug::default() } else { SlubDebug::parse(Some(debug)).unwrap() },
            false,
        )
        .unwrap();
        let baseline = free_pages(&pgdat);
        let (tx, rx) = std::sync::mpsc::channel::<Vec<usize>>();
        std::thread::scope(|s| {
            let slab = &slab;
            s.spawn(move || {
                set_cpu(0);
                for round in 0..40 {
                    let batch: Vec<usize> = (0..200)
                        .map(|i| slab.kmalloc(8 + (i * 13 + round) % 600, GFP_KERNEL).unwrap().as_ptr() as usize)
                        .collect();
                    tx.send(batch).unwrap();
                }
            });
            s.spawn(move || {
                set_cpu(3);
                for batch in rx {
                    for p in batch {
                        // SAFETY: allocated by the other thread and handed over.
                        unsafe { slab.kfree(p as *mut u8) }.unwrap();
                    }
                }
            });
        });
        set_cpu(0);
        slab.for_each_cache(|c| {
            slab.validate_slab_cache(c).unwrap();
        });
        slab.shrink_all();
        assert_eq!(free_pages(&pgdat), baseline, "{debug}");
        assert_eq!(slab.errors(), 0);
    }
}

/// One step of the property test.
#[derive(Clone, Debug)]
enum Op {
    Kmalloc(usize),
    CacheAlloc(usize),
    Free(usize),
    Shrink,
    Cpu(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => prop_oneof![1usize..300, 300usize..9000, 9000usize..40_000].prop_map(Op::Kmalloc),
        3 => (0usize..3).prop_map(Op::CacheAlloc),
        6 => any::<usize>().prop_map(Op::Free),
        1 => Just(Op::Shrink),
        1 => (0u32..2).prop_map(Op::Cpu),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random kmalloc, cache and shrink sequences, with and without debug:
    /// no object is handed out twice (each holds its tag until freed), every
    /// slab validates, and freeing everything then shrinking returns every
    /// page to the buddy allocator.
    #[test]
    fn random_slab_sequences_never_share_objects_and_return_all_memory(
        ops in prop::collection::vec(op(), 1..250),
        debug in prop_oneof![Just(""), Just("FZPU")],
    ) {
        let sim = Sim::flat(64 * MIB);
        let pgdat = sim.pgdat(2);
        let slab = slab(&pgdat, debug);
        let caches = [24u32, 200, 1000].map(|size| slab.kmem_cache_create("prop", size, 8, SlabFlags::empty(), None).unwrap());
        let baseline = free_pages(&pgdat);
        let mut live: BTreeMap<usize, (usize, Option<usize>, u8)> = BTreeMap::new();
        let mut tag = 0u8;
        for op in ops {
            match op {
                Op::Kmalloc(size) => {
                    let p = slab.kmalloc(size, GFP_KERNEL).unwrap();
                    tag = tag.wrapping_add(1);
                    fill(p, size, tag);
                    prop_assert!(live.insert(p.as_ptr() as usize, (size, None, tag)).is_none());
                }
                Op::CacheAlloc(i) => {
                    let p = slab.kmem_cache_alloc(&caches[i], GFP_KERNEL).unwrap();
                    let size = caches[i].object_size() as usize;
                    tag = tag.wrapping_add(1);
                    fill(p, size, tag);
                    prop_assert!(live.insert(p.as_ptr() as usize, (size, Some(i), tag)).is_none());
                }
                Op::Free(index) if !live.is_empty() => {
                    let (&addr, &(size, cache, tag)) = live.iter().nth(index % live.len()).unwrap();
                    live.remove(&addr);
                    let p = NonNull::new(addr as *mut u8).unwrap();
                    prop_assert!(bytes(p, size).iter().all(|&b| b == tag), "object {:#x} overwritten", addr);
                    // SAFETY: allocated above, freed once.
                    let freed = unsafe {
                        match cache {
                            Some(i) => slab.kmem_cache_free(&caches[i], p),
                            None => slab.kfree(p.as_ptr()),
                        }
                    };
                    prop_assert_eq!(freed, Ok(()));
                }
                Op::Free(_) => {}
                Op::Shrink => {
                    slab.shrink_all();
                }
                Op::Cpu(cpu) => set_cpu(cpu),
            }
        }
        for c in &caches {
            prop_assert!(slab.validate_slab_cache(c).is_ok());
        }
        for (addr, (_, cache, _)) in live {
            // SAFETY: allocated above, freed once.
            let freed = unsafe {
                match cache {
                    Some(i) => slab.kmem_cache_free(&caches[i], NonNull::new(addr as *mut u8).unwrap()),
                    None => slab.kfree(addr as *mut u8),
                }
            };
            prop_assert_eq!(freed, Ok(()));
        }
        set_cpu(0);
        slab.shrink_all();
        prop_assert_eq!(free_pages(&pgdat), baseline);
        prop_assert_eq!(slab.errors(), 0);
        for c in caches {
            prop_assert!(slab.kmem_cache_destroy(c).is_ok());
        }
    }
}

#[test]
fn per_cpu_slabs_live_in_per_cpu_memory_and_go_with_the_cache() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    let percpu = SimPercpu::new();
    let slab = Slab::new(&pgdat, 2, &percpu, SlubDebug::default(), false).unwrap();
    // kmem_cache and the 13 kmalloc caches.
    assert_eq!(percpu.nr_live(), 1 + KMALLOC_SIZES.len());
    let cache = slab.kmem_cache_create("pc", 40, 8, SlabFlags::empty(), None).unwrap();
    assert_eq!(percpu.nr_live(), 2 + KMALLOC_SIZES.len());
    let cpus = cache.cpu_slabs();
    assert_eq!(cpus.len(), 2);
    assert!(!core::ptr::eq(&cpus[0], &cpus[1]), "CPUs share a slab state");
    // Each CPU allocates through its own state.
    set_cpu(1);
    let p = slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap();
    assert!(cpus[1].slab().is_some() && cpus[0].slab().is_none());
    set_cpu(0);
    // SAFETY: allocated above, freed once.
    unsafe { slab.kmem_cache_free(&cache, p) }.unwrap();
    slab.kmem_cache_destroy(cache).map_err(|(_, e)| e).unwrap();
    assert_eq!(percpu.nr_live(), 1 + KMALLOC_SIZES.len(), "destroy must free the per-CPU slabs");
}

#[test]
fn kmalloc_index_table_matches_the_smallest_fitting_class() {
    for size in 0..=KMALLOC_SIZES[KMALLOC_SIZES.len() - 1] as usize + 100 {
        let linear = KMALLOC_SIZES.iter().position(|&class| size <= class as usize);
        assert_eq!(kmalloc_index(size), linear, "size {size}");
    }
}

/// A small deterministic generator for the interrupt handlers.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn an_interrupt_inside_the_fast_path_makes_it_retry_with_the_new_head() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    let slab = slab(&pgdat, "");
    set_cpu(0);
    let cache = slab.kmem_cache_create("irq", 48, 8, SlabFlags::empty(), None).unwrap();
    // Warm the cpu slab so the next allocation is a pure fast path.
    let warm = slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap();
    let mut stolen = Vec::new();
    let mut handler = || {
        if stolen.is_empty() {
            // The interrupted allocation read this object as the head.
            stolen.push(slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap());
        }
    };
    let mut got = None;
    with_interrupts(&mut handler, || got = slab.kmem_cache_alloc(&cache, GFP_KERNEL));
    let got = got.unwrap();
    assert_eq!(stolen.len(), 1);
    assert_ne!(got, stolen[0], "the interrupted allocation must not return the interrupt's object");
    assert_ne!(got, warm);
    let c = &cache.cpu_slabs()[0];
    assert_eq!(u64::from(c.nr_free()) + 3, u64::from(cache.objects_per_slab()));
    for p in [warm, got, stolen[0]] {
        // SAFETY: allocated above, freed once.
        unsafe { slab.kmem_cache_free(&cache, p) }.unwrap();
    }
    assert_eq!(u64::from(c.nr_free()), u64::from(cache.objects_per_slab()));
    slab.validate_slab_cache(&cache).unwrap();
    assert!(slab.kmem_cache_destroy(cache).is_ok());
    assert_eq!(slab.errors(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Random allocations and frees while an "interrupt" strikes between
    /// the fast path's reads and its exchange, itself allocating, freeing
    /// and shrinking (which flushes the interrupted CPU's freelist): no
    /// object is handed out twice or lost, counts stay exact, every slab
    /// validates and all memory comes back.
    #[test]
    fn fast_paths_stay_correct_when_interrupts_allocate_free_and_flush(
        ops in prop::collection::vec((0usize..4, 1usize..400), 1..300),
        seed in 1u64..u64::MAX,
        rate in 1u64..8,
    ) {
        let sim = Sim::flat(64 * MIB);
        let pgdat = sim.pgdat(2);
        let slab = slab(&pgdat, "");
        set_cpu(0);
        let cache = slab.kmem_cache_create("irqprop", 40, 8, SlabFlags::empty(), None).unwrap();
        let baseline = free_pages(&pgdat);
        let kmalloc_active = || {
            let mut active = 0;
            slab.for_each_cache(|c| if c.name().starts_with("kmalloc-") { active += slab.slabinfo_of(c).active_objs });
            active
        };
        let active_before = kmalloc_active();
        let irq_live = core::cell::RefCell::new(Vec::<(usize, usize, u8)>::new());
        let mut rng = XorShift(seed);
        let mut irq_tag = 0x80u8;
        let mut handler = || {
            let roll = rng.next();
            if !roll.is_multiple_of(rate) {
                return;
            }
            let mut irq_live = irq_live.borrow_mut();
            match (roll >> 8) % 8 {
                0..=3 => {
                    let size = 1 + (roll >> 16) as usize % 300;
                    let p = slab.kmalloc(size, GFP_KERNEL).unwrap();
                    irq_tag = irq_tag.wrapping_add(1) | 0x80;
                    fill(p, size, irq_tag);
                    irq_live.push((p.as_ptr() as usize, size, irq_tag));
                }
                4..=6 if !irq_live.is_empty() => {
                    let victim = (roll >> 16) as usize % irq_live.len();
                    let (addr, size, tag) = irq_live.swap_remove(victim);
                    let p = NonNull::new(addr as *mut u8).unwrap();
                    assert!(bytes(p, size).iter().all(|&b| b == tag), "interrupt's object {addr:#x} overwritten");
                    // SAFETY: the handler allocated it and frees it once.
                    unsafe { slab.kfree(p.as_ptr()) }.unwrap();
                }
                _ => {
                    slab.kmem_cache_shrink(&cache);
                    slab.shrink_all();
                }
            }
        };
        let mut live: Vec<(usize, usize, Option<()>, u8)> = Vec::new();
        let mut tag = 0u8;
        let mut failure = None;
        with_interrupts(&mut handler, || {
            for (kind, n) in ops {
                match kind {
                    0 | 1 => {
                        let (p, size, from_cache) = if kind == 0 {
                            (slab.kmalloc(n, GFP_KERNEL).unwrap(), n, None)
                        } else {
                            (slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap(), 40, Some(()))
                        };
                        tag = tag.wrapping_add(1) & 0x7f;
                        fill(p, size, tag);
                        live.push((p.as_ptr() as usize, size, from_cache, tag));
                    }
                    _ if !live.is_empty() => {
                        let (addr, size, from_cache, tag) = live.swap_remove(n % live.len());
                        let p = NonNull::new(addr as *mut u8).unwrap();
                        if !bytes(p, size).iter().all(|&b| b == tag) {
                            failure = Some(addr);
                        }
                        // SAFETY: allocated above, freed once.
                        let freed = unsafe {
                            match from_cache {
                                Some(()) => slab.kmem_cache_free(&cache, p),
                                None => slab.kfree(p.as_ptr()),
                            }
                        };
                        freed.unwrap();
                    }
                    _ => {}
                }
            }
        });
        prop_assert_eq!(failure, None, "an object was handed out twice");
        prop_assert!(slab.validate_slab_cache(&cache).is_ok());
        slab.for_each_cache(|c| assert!(slab.validate_slab_cache(c).is_ok(), "{}", c.name()));
        prop_assert_eq!(
            kmalloc_active() + slab.slabinfo_of(&cache).active_objs,
            (live.len() + irq_live.borrow().len()) as u64 + active_before
        );
        for (addr, _, from_cache, _) in live {
            // SAFETY: allocated above, freed once.
            unsafe {
                match from_cache {
                    Some(()) => slab.kmem_cache_free(&cache, NonNull::new(addr as *mut u8).unwrap()),
                    None => slab.kfree(addr as *mut u8),
                }
            }
            .unwrap();
        }
        for (addr, _, _) in irq_live.take() {
            // SAFETY: the handler allocated it; it no longer runs.
            unsafe { slab.kfree(addr as *mut u8) }.unwrap();
        }
        slab.shrink_all();
        prop_assert_eq!(free_pages(&pgdat), baseline);
        prop_assert_eq!(slab.errors(), 0);
        prop_assert!(slab.kmem_cache_destroy(cache).is_ok());
    }
}

#[test]
fn remote_flushes_and_cross_cpu_frees_race_the_lockless_fast_paths_safely() {
    let sim = Sim::flat(128 * MIB);
    let pgdat = sim.pgdat(4);
    let slab = Slab::new(&pgdat, 4, &SIM_PERCPU, SlubDebug::default(), false).unwrap();
    let cache = slab.kmem_cache_create("race", 192, 8, SlabFlags::empty(), None).unwrap();
    let baseline = free_pages(&pgdat);
    let done = std::sync::atomic::AtomicBool::new(false);
    let corrupt = std::sync::atomic::AtomicU64::new(0);
    let (tx, rx) = std::sync::mpsc::channel::<Vec<(usize, u8)>>();
    std::thread::scope(|s| {
        let (slab, cache, done, corrupt) = (&slab, &cache, &done, &corrupt);
        // CPUs 0 and 1 allocate and free on their own fast paths; CPU 0
        // hands some objects to CPU 1, whose frees of them are remote.
        s.spawn(move || {
            set_cpu(0);
            let mut rng = XorShift(0x1234_5678);
            let mut kept = Vec::new();
            for round in 0..3000u32 {
                let tag = round as u8;
                let p = slab.kmem_cache_alloc(cache, GFP_KERNEL).unwrap();
                fill(p, 192, tag);
                kept.push((p.as_ptr() as usize, tag));
                if rng.next().is_multiple_of(3) && !kept.is_empty() {
                    let (addr, tag) = kept.swap_remove(rng.next() as usize % kept.len());
                    let p = NonNull::new(addr as *mut u8).unwrap();
                    if !bytes(p, 192).iter().all(|&b| b == tag) {
                        corrupt.fetch_add(1, Relaxed);
                    }
                    // SAFETY: allocated by this thread, freed once.
                    unsafe { slab.kmem_cache_free(cache, p) }.unwrap();
                }
                if kept.len() >= 64 {
                    tx.send(core::mem::take(&mut kept)).unwrap();
                }
            }
            tx.send(kept).unwrap();
            drop(tx);
        });
        s.spawn(move || {
            set_cpu(1);
            let mut own = Vec::new();
            for batch in rx {
                for (addr, tag) in batch {
                    let p = NonNull::new(addr as *mut u8).unwrap();
                    if !bytes(p, 192).iter().all(|&b| b == tag) {
                        corrupt.fetch_add(1, Relaxed);
                    }
                    // SAFETY: handed over by CPU 0, freed once.
                    unsafe { slab.kmem_cache_free(cache, p) }.unwrap();
                    let q = slab.kmalloc(64, GFP_KERNEL).unwrap();
                    fill(q, 64, tag);
                    own.push((q, tag));
                    if own.len() > 32 {
                        let (q, tag) = own.remove(0);
                        if !bytes(q, 64).iter().all(|&b| b == tag) {
                            corrupt.fetch_add(1, Relaxed);
                        }
                        // SAFETY: allocated by this thread, freed once.
                        unsafe { slab.kfree(q.as_ptr()) }.unwrap();
                    }
                }
            }
            for (q, _) in own {
                // SAFETY: allocated by this thread, freed once.
                unsafe { slab.kfree(q.as_ptr()) }.unwrap();
            }
            done.store(true, Relaxed);
        });
        // CPU 3 flushes every CPU's slabs and reads the counts meanwhile.
        s.spawn(move || {
            set_cpu(3);
            while !done.load(Relaxed) {
                slab.kmem_cache_shrink(cache);
                let info = slab.slabinfo_of(cache);
                assert!(info.active_objs <= info.num_objs);
                std::thread::yield_now();
            }
        });
    });
    assert_eq!(corrupt.load(Relaxed), 0, "an object was handed out twice");
    set_cpu(0);
    slab.validate_slab_cache(&cache).unwrap();
    assert_eq!(slab.slabinfo_of(&cache).active_objs, 0);
    slab.shrink_all();
    assert_eq!(free_pages(&pgdat), baseline);
    assert_eq!(slab.errors(), 0);
    assert!(slab.kmem_cache_destroy(cache).is_ok());
}

#[test]
fn installing_onto_a_non_empty_cpu_freelist_links_both_lists() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    let slab = slab(&pgdat, "");
    set_cpu(0);
    let cache = slab.kmem_cache_create("link", 64, 8, SlabFlags::empty(), None).unwrap();
    let first = slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap();
    let c = &cache.cpu_slabs()[0];
    let ctx = slab.ctx();
    let _lock = c.lock.lock();
    let (head, nr) = c.take_freelist_locked();
    assert!(nr >= 2 && c.nr_free() == 0);
    // Put the list back as two pieces: its head alone, then the rest in
    // front of it, as a racing free would have left it.
    let rest = ctx.get_freepointer(&cache, head);
    ctx.set_freepointer(&cache, head, 0);
    ctx.install_freelist_locked(&cache, c, head, 1);
    ctx.install_freelist_locked(&cache, c, rest, nr - 1);
    assert_eq!(c.nr_free(), nr);
    drop(_lock);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..nr {
        let p = slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap();
        assert!(seen.insert(p.as_ptr() as usize) && p != first, "object handed out twice");
    }
    assert!(seen.contains(&(head as usize)));
    for p in seen {
        // SAFETY: allocated above, freed once.
        unsafe { slab.kmem_cache_free(&cache, NonNull::new(p as *mut u8).unwrap()) }.unwrap();
    }
    // SAFETY: allocated above, freed once.
    unsafe { slab.kmem_cache_free(&cache, first) }.unwrap();
    slab.validate_slab_cache(&cache).unwrap();
    assert!(slab.kmem_cache_destroy(cache).is_ok());
    assert_eq!(slab.errors(), 0);
}

#[test]
fn kmalloc_says_once_that_it_might_sleep_even_when_it_makes_a_new_slab() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    let slab = slab(&pgdat, "");
    let before = might_sleep_calls();
    // More than a slab's worth of 4 KiB objects: new slabs underneath.
    let objs: Vec<_> = (0..32).map(|_| slab.kmalloc(4096, GFP_KERNEL).unwrap()).collect();
    assert_eq!(might_sleep_calls(), before + 32, "one check per kmalloc, none from its new slabs");
    let large = slab.kmalloc(64 * 1024, GFP_KERNEL).unwrap();
    assert_eq!(might_sleep_calls(), before + 33, "a kmalloc_large block checks once too");
    let atomic = slab.kmalloc(64, crate::gfp::GFP_ATOMIC).unwrap();
    assert_eq!(might_sleep_calls(), before + 33);
    for p in objs.into_iter().chain([large, atomic]) {
        // SAFETY: each pointer came from kmalloc above and is not used again.
        unsafe { slab.kfree(p.as_ptr()) }.unwrap();
    }
}
