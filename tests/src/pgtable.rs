//! The kernel's own page tables: W^X enforced by the CPU, no lower-half
//! mappings, a direct map of RAM only, protection changes that split huge
//! pages, and the page-table dump.

use alloc::string::String;
use core::ops::ControlFlow;

use kernel::arch::x86_64::extable::{read_u8_nofault, write_u8_nofault};
use kernel::arch::x86_64::pgtable::{self as kpgtable, kernel_pgtable};
use kernel::arch::x86_64::traps::PageFaultError;
use kernel::arch::x86_64::{cpu, paging};
use kernel::boot::{DirectMap, PAGE_OFFSET};
use kernel::mm as kmm;
use ktest_macros::ktest;
use log::info;
use mm::arch::PhysMemory;
use mm::gfp::GFP_KERNEL;
use mm::pagewalk::{PageWalkOps, walk_page_range};
use mm::pgtable::{Leaf, PAGE_KERNEL, PAGE_KERNEL_RO, PageSize, PgProt};
use mm::{PAGE_SIZE, PhysAddr, VirtAddr};
use x86_64::registers::control::{Cr4, Cr4Flags};

unsafe extern "C" {
    static __text_start: u8;
}

fn expect_fault(result: Result<(), kernel::arch::x86_64::extable::Fault>, address: u64, error: PageFaultError) {
    let fault = result.expect_err("the access did not fault");
    assert_eq!(fault.address, address, "CR2");
    assert_eq!(PageFaultError::from_bits_retain(fault.error_code), error, "#PF error code");
}

#[ktest]
fn kernel_runs_on_its_own_page_tables() {
    let pt = kernel_pgtable().expect("the kernel switched to its own page tables");
    assert_eq!(cpu::read_cr3_phys(), pt.root().as_u64(), "CR3 is not the kernel's root");
    assert!(pt.root().as_u64() < 1 << 32, "the root must be below 4 GiB for 32-bit trampolines");
}

#[ktest]
fn write_to_kernel_text_faults_as_protection_violation() {
    let text = &raw const __text_start as u64;
    // SAFETY: text is mapped read-only and CR0.WP is set, so the write
    // faults before changing anything.
    let result = unsafe { write_u8_nofault(text, 0xcc) };
    expect_fault(result, text, PageFaultError::PROT | PageFaultError::WRITE);
}

#[ktest]
fn nothing_is_mapped_in_the_lower_half_and_address_zero_faults() {
    struct Count(u64);
    impl PageWalkOps for Count {
        fn leaf(&mut self, _start: u64, _end: u64, _leaf: Leaf) -> ControlFlow<()> {
            self.0 += 1;
            ControlFlow::Continue(())
        }
    }
    let pt = kernel_pgtable().expect("kernel page tables");
    let mut count = Count(0);
    let _ = walk_page_range(pt, VirtAddr::expect_canonical(0), 0x0000_8000_0000_0000, &mut count);
    assert_eq!(count.0, 0, "lower-half mappings exist");
    expect_fault(read_u8_nofault(0).map(drop), 0, PageFaultError::empty());
}

/// A `ret` instruction in writable data.
static mut RET_IN_DATA: [u8; 1] = [0xc3];

#[ktest(should_panic = "supervisor instruction fetch at")]
fn executing_kernel_data_faults_with_instruction_fetch() {
    let target = &raw mut RET_IN_DATA as u64;
    assert!(!paging::translate(target).expect("data is mapped").prot.contains(PgProt::EXEC));
    // SAFETY: deliberately invalid: .data is mapped no-execute, so the call
    // faults on the instruction fetch and the fault handler panics.
    let f: extern "C" fn() = unsafe { core::mem::transmute(target as *const u8) };
    f();
}

#[ktest(should_panic = "supervisor instruction fetch at 0xffff888")]
fn executing_direct_map_memory_faults_with_instruction_fetch() {
    let pfn = kmm::alloc_pages(GFP_KERNEL, 0).expect("a page");
    let addr = kmm::page_address(pfn);
    // SAFETY: the page was just allocated for this test and is mapped
    // writable through the direct map.
    unsafe { addr.as_mut_ptr::<u8>().write(0xc3) };
    // SAFETY: deliberately invalid: the direct map is no-execute, so the
    // call faults on the instruction fetch and the handler panics.
    let f: extern "C" fn() = unsafe { core::mem::transmute(addr.as_ptr::<u8>()) };
    f();
}

#[ktest]
fn cpu_protection_features_are_on_where_supported() {
    let features = cpu::features();
    let cr4 = Cr4::read();
    for (feature, flag) in [
        (cpu::CpuFeatures::PGE, Cr4Flags::PAGE_GLOBAL),
        (cpu::CpuFeatures::SMEP, Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION),
        (cpu::CpuFeatures::SMAP, Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION),
    ] {
        assert_eq!(cr4.contains(flag), features.contains(feature), "{flag:?} vs CPUID {feature:?}");
    }
}

#[ktest(mem = 4096)]
fn direct_map_holds_all_ram_and_no_holes() {
    let memblock = kmm::memblock().expect("memblock");
    let regions = memblock.memory.regions();
    assert!(regions.len() >= 2, "expected a hole below 4 GiB with 4 GiB of RAM: {regions:x?}");
    for r in regions {
        // Whole pages of RAM are mapped (Linux PFN_UP(start)..PFN_DOWN(end)).
        let first = r.base.align_up(PAGE_SIZE).expect("aligned");
        let last = PhysAddr::new(r.end().align_down(PAGE_SIZE).as_u64() - PAGE_SIZE);
        for phys in [first, last] {
            let leaf = paging::translate(PAGE_OFFSET + phys.as_u64()).expect("RAM is direct-mapped");
            assert_eq!(leaf.phys, phys);
            assert_eq!(leaf.prot & (PgProt::WRITE | PgProt::EXEC | PgProt::GLOBAL), PgProt::WRITE | PgProt::GLOBAL);
        }
    }
    let hole = regions[0].end().align_up(PAGE_SIZE).expect("aligned");
    assert!(!memblock.is_memory(hole));
    assert!(paging::translate(PAGE_OFFSET + hole.as_u64()).is_none(), "the hole at {hole:?} is mapped");
    assert_eq!(DirectMap.phys_to_virt(hole), None, "__va of a hole");
    let top = PhysAddr::new(memblock.end_of_dram().expect("RAM").as_u64() - PAGE_SIZE);
    assert!(top.as_u64() >= 4 << 30, "4 GiB of RAM reaches above 4 GiB");
    assert!(paging::translate(PAGE_OFFSET + top.as_u64()).is_some());
    let sizes = [0x4000_0000u64, 0x20_0000].map(|size| {
        regions.iter().any(|r| {
            let start = PAGE_OFFSET + r.base.as_u64().next_multiple_of(size);
            start + size <= PAGE_OFFSET + r.end().as_u64()
                && paging::translate(start).is_some_and(|l| l.size.bytes() == size)
        })
    });
    assert_eq!(sizes, [cpu::features().contains(cpu::CpuFeatures::GBPAGES), true], "huge pages in the direct map");
}

#[ktest]
fn protecting_one_direct_map_page_splits_the_huge_page_around_it() {
    let pfn = kmm::alloc_pages(GFP_KERNEL, 0).expect("a page");
    let addr = kmm::page_address(pfn);
    let neighbour = kmm::alloc_pages(GFP_KERNEL, 0).expect("a page");
    let before = paging::translate(addr.as_u64()).expect("mapped");
    // SAFETY: only this test uses the page; it gets its rights back below.
    let changed = unsafe { kpgtable::protect_kernel_range(addr, PAGE_SIZE, PAGE_KERNEL_RO) };
    assert_eq!(changed, Ok(PAGE_SIZE));
    let after = paging::translate(addr.as_u64()).expect("still mapped");
    assert_eq!((after.phys, after.size, after.prot & PgProt::WRITE), (before.phys, PageSize::Size4K, PgProt::empty()));
    // SAFETY: the page is read-only now; the write must fault, not land.
    let result = unsafe { write_u8_nofault(addr.as_u64() + 5, 1) };
    expect_fault(result, addr.as_u64() + 5, PageFaultError::PROT | PageFaultError::WRITE);
    // Neighbours keep their rights.
    let n = kmm::page_address(neighbour);
    // SAFETY: the neighbour page was allocated for this test.
    unsafe { write_u8_nofault(n.as_u64(), 7) }.expect("neighbour stays writable");
    // SAFETY: restores the direct map's rights for our own page.
    let restored = unsafe { kpgtable::protect_kernel_range(addr, PAGE_SIZE, PAGE_KERNEL) };
    assert_eq!(restored, Ok(PAGE_SIZE));
    // SAFETY: writable again.
    unsafe { write_u8_nofault(addr.as_u64() + 5, 1) }.expect("writable again");
    // SAFETY: the test allocated the block; nothing maps it or points into it any more.
    unsafe { kmm::free_pages(pfn, 0) }.expect("free");
    // SAFETY: the test allocated the block; nothing maps it or points into it any more.
    unsafe { kmm::free_pages(neighbour, 0) }.expect("free");
    assert_eq!(kpgtable::check_wx().wx_pages, 0);
}

#[ktest]
fn page_table_dump_shows_w_xor_x_and_the_layout() {
    let mut dump = String::new();
    kpgtable::dump_kernel(&mut dump).expect("dump");
    info!("kernel page tables:\n{dump}");
    for marker in ["---[ Low Kernel Mapping ]---", "---[ High Kernel Mapping ]---"] {
        assert!(dump.contains(marker), "{marker} missing");
    }
    let lines: alloc::vec::Vec<&str> = dump.lines().filter(|l| l.starts_with("0x")).collect();
    assert!(lines.iter().all(|l| !(l.contains(" RW ") && l.contains(" x  "))), "a W+X line:\n{dump}");
    let text = &raw const __text_start as u64;
    let text_line = lines
        .iter()
        .find(|l| l.starts_with(&alloc::format!("{text:#018x}")))
        .unwrap_or_else(|| panic!("no line starts at text {text:#x}:\n{dump}"));
    assert!(text_line.contains(" ro ") && text_line.contains(" x  "), "text: {text_line}");
    let direct: alloc::vec::Vec<&&str> =
        lines.iter().filter(|l| (PAGE_OFFSET..PAGE_OFFSET + (1 << 46)).contains(&line_start(l))).collect();
    assert!(!direct.is_empty());
    assert!(direct.iter().all(|l| l.contains(" RW ") && l.contains("GLB NX")), "direct map lines: {direct:?}");
    assert_eq!(kpgtable::check_wx().wx_pages, 0);
}

fn line_start(line: &str) -> u64 {
    u64::from_str_radix(line.get(2..18).unwrap_or("0"), 16).unwrap_or(0)
}
