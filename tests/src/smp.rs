//! SMP on 1, 2 and 4 CPUs: every CPU comes up with its own identity and
//! tables, kernel TLB shootdowns reach every CPU, and the buddy allocator,
//! SLUB, vmalloc and percpu stay consistent when all CPUs hammer them at
//! once.

use core::hint::black_box;
use core::sync::atomic::{AtomicU64, Ordering};

use kernel::arch::x86_64::extable::read_u8_nofault;
use kernel::arch::x86_64::smp::{self, num_online_cpus, run_on_cpu, smp_processor_id, wait_on_cpu};
use kernel::arch::x86_64::{apic, gdt};
use kernel::kbench::Bencher;
use kernel::mm as kmm;
use kernel::slab as kslab;
use kernel::vmalloc as kvm;
use ktest_macros::{kbench, ktest};
use mm::gfp::{GFP_KERNEL, Gfp};
use mm::mmzone::ZoneType;
use mm::pgtable::PAGE_KERNEL;
use mm::{PAGE_SIZE, VirtAddr};

/// Runs `f(arg)` on every online CPU at once (the APs through their idle
/// loops, this CPU inline) and returns the results by CPU number.
fn on_all_cpus(f: fn(u64) -> u64, arg: u64) -> [u64; 8] {
    let n = num_online_cpus();
    for cpu in 1..n {
        assert!(run_on_cpu(cpu, f, arg), "CPU{cpu} did not take work");
    }
    let mut out = [0; 8];
    out[0] = f(arg);
    for cpu in 1..n {
        out[cpu as usize] = wait_on_cpu(cpu);
    }
    out
}

fn identity(_: u64) -> u64 {
    let ist = gdt::ist_ranges()[0];
    u64::from(smp_processor_id()) | u64::from(apic::id()) << 8 | (ist.top & 0xffff_ffff) << 16
}

fn check_cpus_come_up(expected: u32) {
    assert_eq!(num_online_cpus(), expected, "online CPUs");
    assert_eq!(smp::nr_cpu_ids(), expected, "MADT CPU count");
    let ids = on_all_cpus(identity, 0);
    for cpu in 0..expected as usize {
        assert_eq!(ids[cpu] & 0xff, cpu as u64, "CPU{cpu} reads another CPU number");
        assert_eq!((ids[cpu] >> 8) & 0xff, cpu as u64, "CPU{cpu}'s APIC id (QEMU numbers them from 0)");
        for other in 0..cpu {
            assert_ne!(ids[cpu] >> 16, ids[other] >> 16, "CPU{cpu} and CPU{other} share a #DF IST stack");
        }
    }
}

#[ktest]
fn one_cpu_boots_alone() {
    check_cpus_come_up(1);
}

#[ktest(cpus = 2)]
fn two_cpus_come_up_with_their_own_ids_and_stacks() {
    check_cpus_come_up(2);
}

#[ktest(cpus = 4)]
fn four_cpus_come_up_with_their_own_ids_and_stacks() {
    check_cpus_come_up(4);
}

fn read_or_fault(addr: u64) -> u64 {
    match read_u8_nofault(addr) {
        Ok(v) => u64::from(v),
        Err(_) => u64::MAX,
    }
}

/// Map a page, read it on every CPU (each caches the translation), unmap
/// it: every CPU must then fault. A missing shootdown leaves a stale
/// translation on some CPU, which then reads the old value.
fn check_shootdown() {
    let pfn = kmm::alloc_pages(GFP_KERNEL, 0).expect("page");
    // SAFETY: the page was just allocated for this test.
    unsafe { kmm::page_address(pfn).as_mut_ptr::<u8>().write_volatile(0x3c) };
    let addr = kvm::vmap(&[pfn], PAGE_KERNEL).expect("vmap");
    let n = num_online_cpus() as usize;
    let before = on_all_cpus(read_or_fault, addr.as_u64());
    assert!(before[..n].iter().all(|&v| v == 0x3c), "not every CPU reads the page: {:?}", &before[..n]);
    kvm::vunmap(addr).expect("vunmap");
    // vunmap is lazy; the purge is what flushes every CPU.
    assert!(kvm::vm().purge_vmap_area_lazy());
    let after = on_all_cpus(read_or_fault, addr.as_u64());
    assert!(after[..n].iter().all(|&v| v == u64::MAX), "a CPU still reads an unmapped page: {:?}", &after[..n]);
    // SAFETY: the test's page; its vmap is gone and the lazy purge flushed every CPU.
    unsafe { kmm::free_pages(pfn, 0) }.expect("free");
}

#[ktest(cpus = 2)]
fn tlb_shootdown_reaches_the_other_cpu() {
    check_shootdown();
}

#[ktest(cpus = 4)]
fn tlb_shootdown_reaches_every_cpu() {
    check_shootdown();
}

static ERRORS: AtomicU64 = AtomicU64::new(0);

/// One CPU's share of the stress test: pages, kmalloc objects and vmalloc
/// areas, each patterned with the CPU and step and checked before release.
fn stress(seed: u64) -> u64 {
    let cpu = u64::from(smp_processor_id());
    let mut x = seed ^ (cpu + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let slab = kslab::slab().expect("slab");
    let mut pages = [(0u64, 0u32); 16];
    let mut objs = [(0u64, 0usize); 16];
    let mut areas = [0u64; 4];
    let mut ops = 0;
    for step in 0..400u64 {
        let slot = (next() % 16) as usize;
        // Pages of order 0..3.
        if pages[slot].0 != 0 {
            let (pfn, order) = pages[slot];
            // SAFETY: this CPU owns the block and patterned its first word.
            let got = unsafe { kmm::page_address(mm::Pfn::new(pfn)).as_ptr::<u64>().read_volatile() };
            if got != pfn ^ tag_of(pfn) {
                ERRORS.fetch_add(1, Ordering::Relaxed);
            }
            // SAFETY: this CPU owns the block; the read above was its last use.
            if unsafe { kmm::free_pages(mm::Pfn::new(pfn), order) }.is_err() {
                ERRORS.fetch_add(1, Ordering::Relaxed);
            }
            pages[slot] = (0, 0);
        } else {
            let order = (next() % 4) as u32;
            if let Some(pfn) = kmm::alloc_pages(GFP_KERNEL | Gfp::NOWARN, order) {
                // SAFETY: freshly allocated block of ours.
                unsafe {
                    kmm::page_address(pfn).as_mut_ptr::<u64>().write_volatile(pfn.as_u64() ^ tag_of(pfn.as_u64()))
                };
                pages[slot] = (pfn.as_u64(), order);
            }
        }
        // kmalloc objects of 8..4096 bytes.
        let slot = (next() % 16) as usize;
        if objs[slot].0 != 0 {
            let (p, size) = objs[slot];
            // SAFETY: our object, patterned at both ends below.
            let (a, b) = unsafe { ((p as *const u8).read_volatile(), (p as *const u8).add(size - 1).read_volatile()) };
            if (a, b) != (p as u8, !(p as u8)) {
                ERRORS.fetch_add(1, Ordering::Relaxed);
            }
            // SAFETY: allocated by kmalloc below, freed once.
            if unsafe { slab.kfree(p as *mut u8) }.is_err() {
                ERRORS.fetch_add(1, Ordering::Relaxed);
            }
            objs[slot] = (0, 0);
        } else {
            let size = 8usize << (next() % 10);
            if let Some(p) = slab.kmalloc(size, GFP_KERNEL) {
                let p = p.as_ptr();
                // SAFETY: `size` bytes of ours.
                unsafe {
                    p.write_volatile(p as u8);
                    p.add(size - 1).write_volatile(!(p as u8));
                }
                objs[slot] = (p as u64, size);
            }
        }
        // A per-CPU counter: allocated, bumped on this CPU, checked, freed.
        if step % 16 == 0 {
            match kernel::percpu::alloc_percpu(8 << (next() % 6), 8) {
                Ok(p) => {
                    // SAFETY: the allocation starts with a u64.
                    unsafe { p.this_cpu_add_u64(step + 1) };
                    // SAFETY: this CPU's copy, written just above.
                    let mine = unsafe { p.this_cpu_ptr().as_ptr::<u64>().read_volatile() };
                    if mine != step + 1 || kernel::percpu::free_percpu(p).is_err() {
                        ERRORS.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(_) => {
                    ERRORS.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        // vmalloc areas of 1..4 pages (their frees drive TLB shootdowns).
        if step % 8 == 0 {
            let slot = (next() % 4) as usize;
            if areas[slot] != 0 {
                let a = areas[slot];
                // SAFETY: our vmalloc area, tagged when allocated.
                if unsafe { (a as *const u64).read_volatile() } != a ^ (cpu << 56) {
                    ERRORS.fetch_add(1, Ordering::Relaxed);
                }
                if kvm::vfree(VirtAddr::new(a).expect("canonical")).is_err() {
                    ERRORS.fetch_add(1, Ordering::Relaxed);
                }
                areas[slot] = 0;
            } else if let Ok(a) = kvm::vmalloc((1 + next() % 4) * PAGE_SIZE) {
                // SAFETY: at least one page of ours.
                unsafe { a.as_mut_ptr::<u64>().write_volatile(a.as_u64() ^ (cpu << 56)) };
                areas[slot] = a.as_u64();
            }
        }
        ops += 1;
    }
    for (pfn, order) in pages {
        // SAFETY: this CPU owns the blocks it still holds.
        if pfn != 0 && unsafe { kmm::free_pages(mm::Pfn::new(pfn), order) }.is_err() {
            ERRORS.fetch_add(1, Ordering::Relaxed);
        }
    }
    for (p, _) in objs {
        // SAFETY: our live kmalloc objects, freed once.
        if p != 0 && unsafe { slab.kfree(p as *mut u8) }.is_err() {
            ERRORS.fetch_add(1, Ordering::Relaxed);
        }
    }
    for a in areas {
        if a != 0 && kvm::vfree(VirtAddr::new(a).expect("canonical")).is_err() {
            ERRORS.fetch_add(1, Ordering::Relaxed);
        }
    }
    ops
}

fn tag_of(pfn: u64) -> u64 {
    pfn.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[ktest(cpus = 4, timeout = 300)]
fn all_cpus_hammering_buddy_slub_vmalloc_and_percpu_leave_them_consistent() {
    let pgdat = kmm::pgdat();
    let slab = kslab::slab().expect("slab");
    // Warm-up round: caches and page tables the stress needs get built.
    on_all_cpus(stress, 1);
    kernel::mm::drop_caches();
    let free = kernel::mm::nr_free_pages();
    ERRORS.store(0, Ordering::Relaxed);
    for round in 0..3 {
        let ops = on_all_cpus(stress, 100 + round);
        assert!(ops[..4].iter().all(|&n| n == 400), "a CPU did not finish: {ops:?}");
    }
    assert_eq!(ERRORS.load(Ordering::Relaxed), 0, "corrupted data or refused frees under concurrency");
    for zone in ZoneType::ALL {
        pgdat.check_zone(zone).unwrap_or_else(|e| panic!("zone {zone:?} inconsistent: {e}"));
    }
    let mut invalid = 0;
    slab.for_each_cache(|c| invalid += u32::from(slab.validate_slab_cache(c).is_err()));
    assert_eq!(invalid, 0, "slab caches fail validation");
    kvm::vm().with_areas(|a| a.check()).expect("vmap areas consistent");
    kernel::percpu::with_allocator(|a| a.check()).expect("percpu is up").expect("percpu allocator consistent");
    kernel::mm::drop_caches();
    let after = kernel::mm::nr_free_pages();
    // Page tables for new vmalloc addresses and slabs kept on partial
    // lists (min_partial per cache) may stay; everything else is back.
    assert!(after.abs_diff(free) <= 64, "free pages {free} -> {after}");
}

fn flush_one_page(_: u64, _: u64) {}

/// A one-page kernel TLB shootdown on 1 (local flush only), 2, 3 or 4
/// CPUs: the local invalidation plus the cross-CPU call round trip
/// (`cargo xtask bench smp --cpus 4`).
#[kbench]
fn tlb_shootdown_round_trip(b: &mut Bencher<'_>) {
    for others in 0..num_online_cpus() {
        let mask = ((1u64 << others) - 1) << 1;
        b.iter_with(u64::from(others + 1), || {
            smp::call_function_many(mask, flush_one_page, 0, 0);
            kernel::arch::x86_64::tlb::flush_tlb_range_local(0xffff_c900_0000_0000, PAGE_SIZE);
        });
    }
}

fn page_batch(n: u64) -> u64 {
    for _ in 0..n {
        if let Some(pfn) = kmm::alloc_pages(GFP_KERNEL, 0) {
            // SAFETY: allocated just above and never used.
            let _ = unsafe { kmm::free_pages(black_box(pfn), 0) };
        }
    }
    n
}

fn kmalloc_batch(n: u64) -> u64 {
    let slab = kslab::slab().expect("slab");
    for _ in 0..n {
        if let Some(p) = slab.kmalloc(64, GFP_KERNEL) {
            // SAFETY: freed once, right after allocation.
            let _ = unsafe { slab.kfree(black_box(p.as_ptr())) };
        }
    }
    n
}

fn scaling(b: &mut Bencher<'_>, f: fn(u64) -> u64) {
    const BATCH: u64 = 256;
    for cpus in 1..=num_online_cpus() {
        b.iter_with(u64::from(cpus), || {
            for cpu in 1..cpus {
                run_on_cpu(cpu, f, BATCH);
            }
            f(BATCH);
            for cpu in 1..cpus {
                wait_on_cpu(cpu);
            }
        });
    }
}

/// 256 order-0 alloc+free pairs on each of 1..N CPUs at once: flat is
/// perfect scaling (`cargo xtask bench smp --cpus 4`).
#[kbench]
fn alloc_free_order0_256_per_cpu(b: &mut Bencher<'_>) {
    scaling(b, page_batch);
}

/// 256 kmalloc(64)+kfree pairs on each of 1..N CPUs at once.
#[kbench]
fn kmalloc64_kfree_256_per_cpu(b: &mut Bencher<'_>) {
    scaling(b, kmalloc_batch);
}

/// Spins until this CPU has taken `ticks` timer ticks; returns how many
/// it took meanwhile. No clock bounds the wait: a CPU whose timer never
/// fires hangs here, and the test's timeout reports it.
fn spin_until_ticks(ticks: u64) -> u64 {
    let cpu = smp_processor_id();
    let before = apic::cpu_ticks(cpu);
    while apic::cpu_ticks(cpu) - before < ticks {
        core::hint::spin_loop();
    }
    apic::cpu_ticks(cpu) - before
}

#[ktest(cpus = 4)]
fn every_cpu_takes_timer_ticks() {
    /// Enough to show the timer is periodic, not a single shot.
    const TICKS: u64 = 3;
    let jiffies = apic::jiffies();
    let ticks = on_all_cpus(spin_until_ticks, TICKS);
    for (cpu, &n) in ticks[..4].iter().enumerate() {
        assert!(n >= TICKS, "CPU{cpu} came back after {n} ticks");
    }
    assert!(apic::jiffies() > jiffies, "jiffies did not advance");
}
