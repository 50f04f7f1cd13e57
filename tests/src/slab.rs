//! SLUB and kmalloc on the real machine: the global allocator, the early
//! heap hand-over, every debug detection triggered on purpose, a random
//! stress run, and slab memory returning to the buddy allocator; and the
//! slab benchmarks.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::hint::black_box;
use core::ptr::NonNull;

use kernel::kbench::Bencher;
use kernel::slab as kslab;
use ktest_macros::{kbench, ktest};
use mm::gfp::GFP_KERNEL;
use mm::slab_common::{CacheHandle, Slab, Slabinfo};
use mm::slub::{POISON_INUSE, SlabError, SlabFlags};

fn slab() -> &'static Slab<'static> {
    kslab::slab().expect("the slab allocator is up")
}

fn debug_cache(name: &'static str, size: u32) -> CacheHandle<'static> {
    slab().kmem_cache_create(name, size, 8, SlabFlags::DEBUG, None).expect("cache")
}

/// Destroys a test cache; one holding a deliberately leaked object is
/// refused, and that refusal is part of what the tests expect.
fn destroy(cache: CacheHandle<'static>, leaked: u64) {
    match slab().kmem_cache_destroy(cache) {
        Ok(()) => assert_eq!(leaked, 0, "a cache with a leaked object was destroyed"),
        // The corrupted object stays out of use for good, and so does its
        // cache (dropping the handle does not destroy it).
        Err((_, SlabError::CacheBusy { objects, .. })) => assert_eq!(objects, leaked),
        Err((_, e)) => panic!("destroy: {e}"),
    }
}

#[ktest]
fn box_vec_and_btreemap_allocate_through_kmalloc() {
    let kmalloc_64 = |slab: &Slab<'_>| {
        let mut active = 0;
        slab.for_each_cache(|c| {
            if c.name() == "kmalloc-64" {
                active = slab.slabinfo_of(c).active_objs;
            }
        });
        active
    };
    let before = kmalloc_64(slab());
    let boxed = Box::new([7u8; 64]);
    assert!(!kslab::is_early(boxed.as_ptr()), "after boot, Box comes from kmalloc");
    assert_eq!(slab().ksize(NonNull::from(&*boxed).cast()), Some(64));
    assert_eq!(kmalloc_64(slab()), before + 1);
    let v: Vec<u64> = (0..10_000).collect();
    assert_eq!(v.iter().sum::<u64>(), 10_000 * 9_999 / 2);
    let map: BTreeMap<u32, Box<u32>> = (0..1000).map(|i| (i, Box::new(i * 2))).collect();
    assert_eq!(*map[&500], 1000);
    drop((boxed, v, map));
    assert_eq!(kmalloc_64(slab()), before);
}

#[ktest]
fn early_heap_allocation_is_freed_after_the_switch_to_kmalloc() {
    let early = kslab::take_early_boot_allocation().expect("boot made an early allocation");
    assert!(kslab::is_early(early.as_ptr().cast()));
    assert_eq!(early[7], 0x0ea7_1e55);
    let used = kslab::early_heap_used();
    drop(early);
    assert!(kslab::early_heap_used() < used, "the free went back to the early heap");
}

#[ktest]
fn red_zone_overwrite_is_detected_on_free() {
    let cache = debug_cache("ktest_redzone", 40);
    let errors = cache.errors();
    let p = slab().kmem_cache_alloc(&cache, GFP_KERNEL).expect("object");
    // SAFETY: the bug under test: one byte past the object, still inside
    // its slot (the right red zone).
    unsafe { p.as_ptr().add(40).write(0x41) };
    // SAFETY: `p` is ours.
    let err = unsafe { slab().kmem_cache_free(&cache, p) }.expect_err("overflow must be caught");
    assert!(matches!(err, SlabError::RedzoneOverwritten { found: 0x41, .. }), "{err}");
    assert_eq!(cache.errors(), errors + 1);
    destroy(cache, 1);
}

#[ktest]
fn use_after_free_write_is_detected_on_the_next_allocation() {
    let cache = debug_cache("ktest_uaf", 64);
    let p = slab().kmem_cache_alloc(&cache, GFP_KERNEL).expect("object");
    // SAFETY: `p` is a fresh 64-byte object.
    assert!(unsafe { core::slice::from_raw_parts(p.as_ptr(), 64) }.iter().all(|&b| b == POISON_INUSE));
    // SAFETY: freed once.
    unsafe { slab().kmem_cache_free(&cache, p) }.expect("free");
    // SAFETY: the bug under test: the slab page is still mapped.
    unsafe { p.as_ptr().add(3).write(0) };
    let q = slab().kmem_cache_alloc(&cache, GFP_KERNEL).expect("another object");
    assert_ne!(q, p, "the corrupted object must not be handed out");
    assert_eq!(cache.errors(), 1);
    // SAFETY: `q` is ours.
    unsafe { slab().kmem_cache_free(&cache, q) }.expect("free");
    // The slab holding the poisoned object was taken out of use whole.
    let per_slab = u64::from(cache.objects_per_slab());
    destroy(cache, per_slab);
}

#[ktest]
fn double_free_is_detected() {
    let cache = debug_cache("ktest_double", 32);
    let p = slab().kmem_cache_alloc(&cache, GFP_KERNEL).expect("object");
    // SAFETY: the first free is legitimate; the second is the bug under
    // test and must be refused.
    unsafe {
        slab().kmem_cache_free(&cache, p).expect("first free");
        let err = slab().kmem_cache_free(&cache, p).expect_err("double free must be caught");
        assert!(matches!(err, SlabError::DoubleFree { .. }), "{err}");
    }
    assert_eq!(cache.errors(), 1);
    destroy(cache, 0);
}

#[ktest]
fn foreign_pointers_are_refused() {
    let a = debug_cache("ktest_foreign_a", 48);
    let b = debug_cache("ktest_foreign_b", 48);
    let p = slab().kmem_cache_alloc(&a, GFP_KERNEL).expect("object");
    let local = 0u64;
    // SAFETY: deliberate misuse that must be refused without touching the
    // memory; `p` is freed properly at the end.
    unsafe {
        let err = slab().kmem_cache_free(&b, p).expect_err("wrong cache");
        assert_eq!(
            err,
            SlabError::WrongCache { addr: p.as_ptr() as u64, expected: "ktest_foreign_b", actual: "ktest_foreign_a" }
        );
        let inside = NonNull::new(p.as_ptr().add(8)).expect("non-null");
        assert!(matches!(slab().kmem_cache_free(&a, inside), Err(SlabError::InvalidPointer { .. })));
        let on_stack = &local as *const u64 as *mut u8;
        assert_eq!(slab().kfree(on_stack), Err(SlabError::NotSlabObject { addr: on_stack as u64 }));
        slab().kmem_cache_free(&a, p).expect("proper free");
    }
    destroy(a, 0);
    destroy(b, 0);
}

#[ktest]
fn busy_cache_destroy_is_refused_with_its_name_and_count() {
    let cache = slab().kmem_cache_create("ktest_busy", 100, 8, SlabFlags::empty(), None).expect("cache");
    let objs: Vec<NonNull<u8>> = (0..3).map(|_| slab().kmem_cache_alloc(&cache, GFP_KERNEL).expect("object")).collect();
    let (cache, err) = slab().kmem_cache_destroy(cache).expect_err("busy");
    assert_eq!(err, SlabError::CacheBusy { cache: "ktest_busy", objects: 3 });
    for p in objs {
        // SAFETY: allocated above, freed once.
        unsafe { slab().kmem_cache_free(&cache, p) }.expect("free");
    }
    slab().kmem_cache_destroy(cache).map_err(|(_, e)| e).expect("now empty");
}

/// xorshift: reproducible sizes and lifetimes.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[ktest(timeout = 120)]
fn random_sizes_and_lifetimes_return_every_page_after_shrink() {
    const SLOTS: usize = 512;
    let mut slots: Vec<Option<(NonNull<u8>, usize, u8)>> = alloc::vec![None; SLOTS];
    slab().shrink_all();
    let baseline = kernel::mm::nr_free_pages();
    let mut rng = 0x1234_5678_9abc_def1u64;
    for step in 0..20_000u32 {
        let r = next(&mut rng);
        let slot = (r % SLOTS as u64) as usize;
        if let Some((p, size, tag)) = slots[slot].take() {
            // SAFETY: the slot's object, `size` bytes, ours.
            let bytes = unsafe { core::slice::from_raw_parts(p.as_ptr(), size) };
            assert!(bytes.iter().all(|&b| b == tag), "object {p:?} ({size} bytes) was overwritten");
            // SAFETY: allocated below, freed once.
            unsafe { slab().kfree(p.as_ptr()) }.expect("free");
        } else {
            let size = match (r >> 8) % 10 {
                0..=5 => 1 + (r >> 16) % 256,
                6..=8 => 256 + (r >> 16) % 4000,
                _ => 4096 + (r >> 16) % 60_000,
            } as usize;
            let p = slab().kmalloc(size, GFP_KERNEL).expect("memory");
            let tag = step as u8;
            // SAFETY: a fresh `size`-byte allocation.
            unsafe { core::ptr::write_bytes(p.as_ptr(), tag, size) };
            slots[slot] = Some((p, size, tag));
        }
    }
    for (p, _, _) in slots.iter_mut().filter_map(Option::take) {
        // SAFETY: freed once.
        unsafe { slab().kfree(p.as_ptr()) }.expect("free");
    }
    // The kmalloc caches this test used; other tests' caches may hold
    // deliberately corrupted objects.
    slab().for_each_cache(|c| {
        if c.name().starts_with("kmalloc-") {
            slab().validate_slab_cache(c).unwrap_or_else(|e| panic!("{}: {e}", c.name()));
        }
    });
    slab().shrink_all();
    assert_eq!(kernel::mm::nr_free_pages(), baseline, "slab pages did not all return to the buddy allocator");
}

#[ktest]
fn slabinfo_lists_every_kmalloc_cache_in_linux_format() {
    let text = alloc::format!("{}", Slabinfo(slab()));
    assert!(text.starts_with("slabinfo - version: 2.1\n"));
    for name in ["kmem_cache ", "kmalloc-8 ", "kmalloc-96 ", "kmalloc-192 ", "kmalloc-8k "] {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name}line:\n{text}"));
        assert!(line.contains(" : tunables    0    0    0 : slabdata "), "{line}");
    }
}

// Benchmarks.

/// kmalloc+kfree pairs on the hot path, per size.
#[kbench]
fn kmalloc_kfree(b: &mut Bencher<'_>) {
    for size in [8usize, 64, 512, 4096] {
        b.iter_with(size as u64, || {
            let p = slab().kmalloc(size, GFP_KERNEL);
            // SAFETY: freed once, right after allocation.
            p.map(|p| unsafe { slab().kfree(black_box(p).as_ptr()) }.is_ok())
        });
    }
}

fn cache_alloc_free(b: &mut Bencher<'_>, name: &'static str, flags: SlabFlags) {
    let cache = slab().kmem_cache_create(name, 192, 8, flags, None).expect("cache");
    b.iter(|| {
        let p = slab().kmem_cache_alloc(&cache, GFP_KERNEL);
        // SAFETY: freed once, right after allocation.
        p.map(|p| unsafe { slab().kmem_cache_free(&cache, black_box(p)) }.is_ok())
    });
    let _ = slab().kmem_cache_destroy(cache);
}

/// kmem_cache_alloc+free on a 192-byte cache.
#[kbench]
fn cache_192_alloc_free(b: &mut Bencher<'_>) {
    cache_alloc_free(b, "bench_192", SlabFlags::empty());
}

/// The same with slub_debug=FZPU on the cache.
#[kbench]
fn cache_192_alloc_free_debug(b: &mut Bencher<'_>) {
    cache_alloc_free(b, "bench_192_debug", SlabFlags::DEBUG);
}

/// Box<[u8; 64]> allocation and drop through the global allocator.
#[kbench]
fn box_64_alloc_drop(b: &mut Bencher<'_>) {
    b.iter(|| drop(black_box(Box::new([0u8; 64]))));
}

/// A `Vec` larger than the buddy allocator's largest block (8 MiB, past
/// order 10) cannot come from kmalloc: it falls back to vmalloc (Linux
/// `kvmalloc`), is usable whole, and its pages go back when it is dropped.
#[ktest]
fn a_vec_beyond_the_largest_block_falls_back_to_vmalloc() {
    const SIZE: usize = 8 << 20;
    let vmalloc_pages = kernel::vmalloc::vmalloc_nr_pages();
    let mut v: Vec<u8> = Vec::new();
    v.try_reserve_exact(SIZE).expect("8 MiB through the vmalloc fallback");
    let addr = v.as_ptr() as u64;
    use kernel::arch::x86_64::pgtable::{VMALLOC_END, VMALLOC_START};
    assert!((VMALLOC_START..VMALLOC_END).contains(&addr), "{addr:#x} is not a vmalloc address");
    assert_eq!(kernel::vmalloc::vmalloc_nr_pages(), vmalloc_pages + (SIZE / 4096) as u64);
    v.extend((0..SIZE).map(|i| (i % 251) as u8));
    assert!(v.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    drop(v);
    assert_eq!(kernel::vmalloc::vmalloc_nr_pages(), vmalloc_pages, "vfree'd on drop");
}
