use core::mem::MaybeUninit;
use core::ptr::NonNull;

use super::*;
use crate::pgtable::{PAGE_KERNEL_NOCACHE, X86PteFormat};
use crate::sim::{Sim, SimTlb, free_pages_drained as free_pages};
use crate::slab_common::ObjCache;
use crate::vmalloc::VmapNode;

const MB: u64 = 1 << 20;
const START: u64 = 0xffff_c900_0000_0000;
const FMT: X86PteFormat = X86PteFormat::new(true);

struct BoxNodes;

// SAFETY: every node is a fresh, exclusively owned Box allocation of the
// right size and alignment, freed exactly once by `free`.
unsafe impl ObjCache<VmapNode> for BoxNodes {
    fn alloc(&self) -> Option<NonNull<VmapNode>> {
        Some(NonNull::from(Box::leak(Box::new(MaybeUninit::<VmapNode>::uninit()))).cast())
    }

    unsafe fn free(&self, node: NonNull<VmapNode>) {
        // SAFETY: `node` came from `alloc` above (the trait's contract).
        drop(unsafe { Box::from_raw(node.cast::<MaybeUninit<VmapNode>>().as_ptr()) });
    }
}

fn va(addr: u64) -> VirtAddr {
    VirtAddr::new(addr).unwrap()
}

/// Reads the byte at kernel-virtual `addr` of the simulated tree through
/// its translation and the simulated direct map.
fn read(pt: &PageTable<'_, X86PteFormat>, addr: u64) -> u8 {
    let leaf = pt.translate(va(addr)).expect("mapped");
    let page = pt.pgdat().page_address(leaf.phys.pfn()).unwrap();
    // SAFETY: the simulated direct map covers every simulated frame.
    unsafe { *page.as_ptr::<u8>().add(leaf.phys.page_offset() as usize) }
}

fn write(pt: &PageTable<'_, X86PteFormat>, addr: u64, value: u8) {
    let leaf = pt.translate(va(addr)).expect("mapped");
    let page = pt.pgdat().page_address(leaf.phys.pfn()).unwrap();
    // SAFETY: as in `read`; the frame belongs to the area under test.
    unsafe { *page.as_mut_ptr::<u8>().add(leaf.phys.page_offset() as usize) = value };
}

#[test]
fn vzalloc_maps_zeroed_pages_with_a_guard_page_and_vfree_returns_them() {
    let sim = Sim::flat(32 * MB);
    let pgdat = sim.pgdat(1);
    let tlb = SimTlb::default();
    let pt = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
    let vm = Vmalloc::new(&pt, &tlb, va(START), va(START + 64 * MB), 1, BoxNodes).unwrap();
    // Dirty some pages first so zeroing is visible.
    let dirty: Vec<Pfn> = (0..200).map(|_| pgdat.alloc_pages(GFP_KERNEL, 0).unwrap()).collect();
    for &pfn in &dirty {
        sim.ram.fill(pfn, 0xee);
    }
    for pfn in dirty {
        // SAFETY: the test's page, reached only through `sim.ram.fill` above.
        unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
    }
    let before = free_pages(&pgdat);
    let size = 100 * PAGE_SIZE + 5;
    let addr = vm.vzalloc(size).unwrap();
    let line = line!() - 1;
    assert_eq!(addr, va(START));
    let usable = 101 * PAGE_SIZE;
    for off in (0..usable).step_by(PAGE_SIZE as usize / 2) {
        assert_eq!(read(&pt, addr.as_u64() + off), 0, "byte {off:#x} not zeroed");
    }
    assert_eq!(pt.translate(va(START + usable)), None, "the guard page is mapped");
    // Distinct frames.
    let mut frames: Vec<u64> =
        (0..101).map(|i| pt.translate(va(START + i * PAGE_SIZE)).unwrap().phys.as_u64()).collect();
    frames.sort_unstable();
    frames.dedup();
    assert_eq!(frames.len(), 101);
    let area = vm.find_vm_area(addr).unwrap();
    assert_eq!(vm.fault_info(va(START + usable + 8)), Some(VmapFault::GuardPage(area)));
    let mut info = String::new();
    vm.vmallocinfo(&mut info).unwrap();
    let file = file!();
    assert_eq!(
        info,
        format!("0x{START:016x}-0x{:016x}  417792 {file}:{line} pages=101 vmalloc\n", START + usable + PAGE_SIZE)
    );

    // The pages, and (at the next purge) the range come back.
    assert!(free_pages(&pgdat) < before - 100);
    vm.vfree(addr).unwrap();
    assert!(free_pages(&pgdat) >= before - 8, "pages not freed (page-table pages may stay)");
    assert_eq!(pt.translate(addr), None);
    assert!(tlb.take().is_empty(), "vfree flushes lazily");
    assert!(matches!(vm.fault_info(addr), Some(VmapFault::Unpurged { .. })));
    assert!(vm.purge_vmap_area_lazy());
    assert_eq!(tlb.take(), vec![(START, usable + PAGE_SIZE)]);
    assert_eq!(vm.fault_info(addr), Some(VmapFault::NoArea));
    vm.with_areas(|a| a.check()).unwrap();
}

#[test]
fn lazy_frees_are_flushed_in_one_batch_past_the_threshold() {
    let sim = Sim::flat(64 * MB);
    let pgdat = sim.pgdat(1);
    let tlb = SimTlb::default();
    let pt = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
    let vm = Vmalloc::new(&pt, &tlb, va(START), va(START + 1024 * MB), 1, BoxNodes).unwrap();
    let max = vm.with_areas(|a| a.lazy_max_pages());
    let per = 256;
    // Each area is `per` pages plus its guard page; a purge is due once
    // more than `max` pages wait.
    let rounds = max / (per + 1) + 1;
    for round in 0..rounds {
        let addr = vm.vmalloc(per * PAGE_SIZE).unwrap();
        write(&pt, addr.as_u64(), round as u8);
        vm.vfree(addr).unwrap();
        let flushes = tlb.take();
        if round + 1 < rounds {
            assert!(flushes.is_empty(), "flushed early at round {round}");
        } else {
            // One flush covering every lazily freed area.
            assert_eq!(flushes.len(), 1);
            let (start, len) = flushes[0];
            assert_eq!(start, START);
            assert_eq!(len, rounds * (per + 1) * PAGE_SIZE);
        }
    }
    assert_eq!(vm.with_areas(|a| (a.lazy_nr(), a.nr_busy())), (0, 0));
}

#[test]
fn vmalloc_out_of_pages_fails_and_keeps_nothing() {
    let sim = Sim::flat(16 * MB);
    let pgdat = sim.pgdat(1);
    let tlb = SimTlb::default();
    let pt = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
    let vm = Vmalloc::new(&pt, &tlb, va(START), va(START + 64 * MB), 1, BoxNodes).unwrap();
    // Take the page tables' pages first so they are not what runs out.
    let probe = vm.vmalloc(PAGE_SIZE).unwrap();
    vm.vfree(probe).unwrap();
    let before = free_pages(&pgdat);
    let tables = pt.nr_tables();
    // More than all of memory: fails after mapping several batches.
    let err = vm.vmalloc(before * PAGE_SIZE).unwrap_err();
    assert_eq!(err, VmallocError::NoPages { size: before * PAGE_SIZE });
    // Page tables made on the way stay, as kernel page tables do.
    let new_tables = pt.nr_tables() - tables;
    assert!(new_tables > 1);
    assert_eq!(free_pages(&pgdat) + new_tables, before, "pages leaked on failure");
    assert_eq!(vm.with_areas(|a| a.nr_busy()), 0);
    vm.purge_vmap_area_lazy();
    vm.with_areas(|a| a.check()).unwrap();
    // And memory is usable again.
    let ok = vm.vmalloc(64 * PAGE_SIZE).unwrap();
    vm.vfree(ok).unwrap();
}

#[test]
fn vmalloc_nr_pages_counts_live_vmalloc_areas_only() {
    let sim = Sim::flat(16 * MB);
    let pgdat = sim.pgdat(1);
    let tlb = SimTlb::default();
    let pt = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
    let vm = Vmalloc::new(&pt, &tlb, va(START), va(START + 64 * MB), 1, BoxNodes).unwrap();
    let a = vm.vmalloc(3 * PAGE_SIZE + 1).unwrap();
    let b = vm.vzalloc(PAGE_SIZE).unwrap();
    assert_eq!(vm.vmalloc_nr_pages(), 5, "four pages and one, guard pages not counted");
    // vmap and ioremap map memory vmalloc does not own.
    let page = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    let mapped = vm.vmap(&[page], PAGE_KERNEL).unwrap();
    let io = vm.ioremap_prot(PhysAddr::new(0xfee0_0000), PAGE_SIZE, PAGE_KERNEL_NOCACHE).unwrap();
    assert_eq!(vm.vmalloc_nr_pages(), 5);
    // A failed vmalloc counts nothing.
    let free = free_pages(&pgdat);
    assert!(vm.vmalloc(free * PAGE_SIZE).is_err());
    assert_eq!(vm.vmalloc_nr_pages(), 5);
    vm.vfree(a).unwrap();
    assert_eq!(vm.vmalloc_nr_pages(), 1);
    assert!(vm.vfree(a).is_err());
    assert_eq!(vm.vmalloc_nr_pages(), 1, "a refused vfree counts nothing");
    vm.vfree(b).unwrap();
    vm.vunmap(mapped).unwrap();
    vm.iounmap(io).unwrap();
    assert_eq!(vm.vmalloc_nr_pages(), 0);
    // SAFETY: the test's page; its vmap is gone (vunmap above, flushed).
    unsafe { pgdat.free_pages(page, 0) }.unwrap();
}

#[test]
fn vmap_and_ioremap_map_the_callers_memory_and_undo_only_their_own_kind() {
    let sim = Sim::flat(16 * MB);
    let pgdat = sim.pgdat(1);
    let tlb = SimTlb::default();
    let pt = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
    let vm = Vmalloc::new(&pt, &tlb, va(START), va(START + 64 * MB), 1, BoxNodes).unwrap();
    let pages: Vec<Pfn> = (0..3).map(|_| pgdat.alloc_pages(GFP_KERNEL, 0).unwrap()).collect();
    let addr = vm.vmap(&[pages[2], pages[0], pages[1]], PAGE_KERNEL).unwrap();
    write(&pt, addr.as_u64() + PAGE_SIZE + 9, 0x77);
    assert_eq!(sim.ram.page(pages[0])[9], 0x77, "vmap aliases the caller's page");
    assert_eq!(vm.vfree(addr), Err(VmallocError::WrongKind(addr)));
    assert_eq!(vm.vfree(va(START + 32 * MB)), Err(VmallocError::NotFound(va(START + 32 * MB))));
    vm.vunmap(addr).unwrap();
    assert_eq!(pt.translate(addr), None);
    for pfn in pages {
        assert_eq!(pgdat.pfn_to_page(pfn).unwrap().refcount(), 1, "vunmap must not free the caller's pages");
        // SAFETY: the test's page; its vmap is gone (vunmap above, flushed).
        unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
    }

    let mmio = PhysAddr::new(0xfee0_0000 + 0x20);
    let io = vm.ioremap_prot(mmio, 0x10, PAGE_KERNEL_NOCACHE).unwrap();
    assert_eq!(io.as_u64() & 0xfff, 0x20, "ioremap keeps the page offset");
    let leaf = pt.translate(io).unwrap();
    assert_eq!((leaf.phys, leaf.prot), (mmio, PAGE_KERNEL_NOCACHE));
    let mut info = String::new();
    vm.vmallocinfo(&mut info).unwrap();
    assert!(info.contains(" phys=0x00000000fee00000 ioremap\n"), "{info}");
    assert_eq!(vm.vunmap(io.align_down(PAGE_SIZE)), Err(VmallocError::WrongKind(io.align_down(PAGE_SIZE))));
    vm.iounmap(io).unwrap();
    assert_eq!(pt.translate(io), None);
    assert_eq!(vm.ioremap_prot(mmio, 0, PAGE_KERNEL_NOCACHE), Err(VmallocError::BadSize));
}
