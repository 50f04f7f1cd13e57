//! Per-CPU memory: every CPU reaches its own copy through GS, dynamic
//! allocations are zeroed per CPU and independent, and the buddy
//! allocator's per-cpu lists live in per-CPU memory.

use core::hint::black_box;
use core::sync::atomic::{AtomicU64, Ordering};

use kernel::arch::x86_64::smp::{num_online_cpus, run_on_cpu, smp_processor_id, wait_on_cpu};
use kernel::kbench::Bencher;
use kernel::percpu::{self as kpcpu, PerCpu, PercpuPtr, UNIT_SIZE, alloc_percpu, free_percpu};
use ktest_macros::{kbench, ktest};
use mm::percpu::PcpuError;

fn bump(ptr: u64) -> u64 {
    let ptr = PercpuPtr::from_unit0(mm::VirtAddr::new(ptr).expect("canonical"));
    for _ in 0..1000 {
        // SAFETY: the allocation starts with a u64 (16 bytes were asked for).
        unsafe { ptr.this_cpu_add_u64(1) };
    }
    ptr.this_cpu_ptr().as_u64()
}

#[ktest(cpus = 4)]
fn each_cpu_adds_to_its_own_copy_only() {
    let n = num_online_cpus();
    let ptr = alloc_percpu(16, 8).expect("alloc_percpu");
    for cpu in 0..n {
        // SAFETY: 16 bytes per CPU, just allocated.
        let copy = unsafe { core::slice::from_raw_parts(ptr.per_cpu_ptr(cpu).as_ptr::<u64>(), 2) };
        assert_eq!(copy, [0, 0], "CPU{cpu}'s copy is not zeroed");
    }
    for cpu in 1..n {
        assert!(run_on_cpu(cpu, bump, ptr.unit0().as_u64()));
    }
    let mine = bump(ptr.unit0().as_u64());
    assert_eq!(mine, ptr.per_cpu_ptr(smp_processor_id()).as_u64(), "this_cpu_ptr is not this CPU's copy");
    for cpu in 1..n {
        assert_eq!(wait_on_cpu(cpu), ptr.per_cpu_ptr(cpu).as_u64(), "CPU{cpu}'s this_cpu_ptr");
    }
    for cpu in 0..n {
        // SAFETY: as above; every CPU has finished.
        let value = unsafe { ptr.per_cpu_ptr(cpu).as_ptr::<u64>().read_volatile() };
        assert_eq!(value, 1000, "CPU{cpu}'s counter");
    }
    assert_eq!(ptr.per_cpu_ptr(1).as_u64() - ptr.per_cpu_ptr(0).as_u64(), UNIT_SIZE);
    free_percpu(ptr).expect("free_percpu");
    assert!(matches!(free_percpu(ptr), Err(PcpuError::NotAllocated(_))), "double free_percpu must be refused");
}

#[unsafe(link_section = ".data..percpu")]
// SAFETY: in .data..percpu; an integer, copied bitwise into every unit.
static TEST_PER_CPU: PerCpu<AtomicU64> = unsafe { PerCpu::new(AtomicU64::new(0)) };

/// Stores `tag` in this CPU's copy of [`TEST_PER_CPU`] through `write`,
/// checks `get` sees it, and returns the copy's address.
fn tag_static_copy(tag: u64) -> u64 {
    TEST_PER_CPU.write(tag);
    let copy = TEST_PER_CPU.get();
    assert_eq!(copy.load(Ordering::Relaxed), tag, "get() is not the copy write() wrote");
    copy.fetch_add(1, Ordering::Relaxed);
    assert_eq!(TEST_PER_CPU.read(), tag + 1, "read() is not the copy get() returned");
    core::ptr::from_ref(copy) as u64
}

#[ktest(cpus = 2)]
fn static_per_cpu_accessors_reach_this_cpus_own_copy() {
    let me = smp_processor_id();
    assert!(run_on_cpu(1 - me, tag_static_copy, 200));
    let mine = tag_static_copy(100);
    let theirs = wait_on_cpu(1 - me);
    for (cpu, addr) in [(me, mine), (1 - me, theirs)] {
        let unit = kpcpu::per_cpu_offset(cpu).wrapping_add(kpcpu::section_start());
        assert!((unit..unit + UNIT_SIZE).contains(&addr), "CPU{cpu}'s copy at {addr:#x} outside its unit {unit:#x}");
    }
    assert_eq!(TEST_PER_CPU.read(), 101, "the other CPU's writes reached this CPU's copy");
}

#[ktest]
fn dynamic_allocations_fill_chunks_and_come_back() {
    let before = kpcpu::with_allocator(|a| (a.nr_chunks(), a.free_bytes())).expect("percpu is up");
    // More than a unit's dynamic area: forces a second chunk from vmalloc.
    let mut ptrs = alloc::vec::Vec::new();
    for _ in 0..(2 * UNIT_SIZE / 1024) {
        ptrs.push(alloc_percpu(1024, 64).expect("alloc_percpu 1 KiB"));
    }
    assert!(ptrs.iter().all(|p| p.unit0().as_u64() % 64 == 0), "alignment");
    let grown = kpcpu::with_allocator(|a| a.nr_chunks()).expect("percpu");
    assert!(grown > before.0, "no chunk was added ({grown} chunks)");
    for p in ptrs {
        free_percpu(p).expect("free_percpu");
    }
    let after = kpcpu::with_allocator(|a| {
        a.check().expect("percpu allocator consistent");
        (a.nr_chunks(), a.free_bytes())
    });
    let (chunks, free) = after.expect("percpu");
    assert!(chunks <= before.0 + 1, "empty chunks were kept: {chunks}");
    assert!(free >= before.1, "free bytes {} -> {free}", before.1);
    assert!(alloc_percpu(UNIT_SIZE + 1, 8).is_err(), "larger than a unit");
}

#[ktest]
fn per_cpu_page_lists_live_in_per_cpu_memory() {
    let pgdat = kernel::mm::pgdat();
    let zone = pgdat.zone(mm::mmzone::ZoneType::Dma32);
    let addr = zone.pcp_address(0);
    let first = kpcpu::per_cpu_offset(0).wrapping_add(kpcpu::section_start());
    assert!((first..first + UNIT_SIZE).contains(&addr), "CPU0's pcp list at {addr:#x}, unit at {first:#x}");
}

#[kbench]
fn alloc_percpu_free_percpu(b: &mut Bencher<'_>) {
    b.iter(|| {
        let p = alloc_percpu(black_box(64), 8);
        p.map(|p| free_percpu(p).is_ok())
    });
}

/// `this_cpu_add` (one GS-relative add) against a shared atomic add.
#[kbench]
fn this_cpu_add(b: &mut Bencher<'_>) {
    let ptr = alloc_percpu(8, 8).expect("alloc_percpu");
    // SAFETY: the allocation holds a u64.
    b.iter(|| unsafe { ptr.this_cpu_add_u64(black_box(1)) });
    let _ = free_percpu(ptr);
}

#[ktest]
fn page_events_are_counted_on_the_allocating_cpu_in_per_cpu_memory() {
    use mm::vmstat::VmEventItem;
    let pgdat = kernel::mm::pgdat();
    let cpu = smp_processor_id() as usize;
    let events = pgdat.vm_events(cpu).expect("this CPU's counters");
    let addr = core::ptr::from_ref(events) as u64;
    let unit = kpcpu::per_cpu_offset(cpu as u32).wrapping_add(kpcpu::section_start());
    assert!((unit..unit + UNIT_SIZE).contains(&addr), "counters at {addr:#x} outside CPU{cpu}'s unit {unit:#x}");
    let (alloc, free) = (events.get(VmEventItem::PgallocDma32), events.get(VmEventItem::Pgfree));
    kernel::mm::alloc_pages_owned(mm::gfp::GFP_KERNEL, 3).expect("pages").free().expect("free");
    assert_eq!(events.get(VmEventItem::PgallocDma32), alloc + 8);
    assert_eq!(events.get(VmEventItem::Pgfree), free + 8);
    log::info!("/proc/vmstat:\n{}", mm::vmstat::Vmstat(pgdat));
}

#[ktest(cpus = 2)]
fn slub_per_cpu_slabs_live_in_per_cpu_memory() {
    let slab = kernel::slab::slab().expect("slab");
    let mut caches = 0;
    let mut misplaced = 0;
    slab.for_each_cache(|c| {
        caches += 1;
        if c.cpu_slab_address(1).wrapping_sub(c.cpu_slab_address(0)) != UNIT_SIZE {
            misplaced += 1;
        }
    });
    assert!(caches > 13, "only {caches} caches");
    assert_eq!(misplaced, 0, "caches whose CPU slabs are not one unit apart");
    // A new cache's CPU slabs come from, and go back to, the allocator.
    let before = kpcpu::with_allocator(|a| a.free_bytes()).expect("percpu");
    let cache = slab.kmem_cache_create("pcpu_test", 48, 8, mm::slub::SlabFlags::empty(), None).expect("cache");
    let during = kpcpu::with_allocator(|a| a.free_bytes()).expect("percpu");
    assert!(during < before, "creating a cache took no per-CPU memory");
    slab.kmem_cache_destroy(cache).map_err(|(_, e)| e).expect("destroy");
    assert_eq!(kpcpu::with_allocator(|a| a.free_bytes()), Some(before), "destroy did not give it back");
}
