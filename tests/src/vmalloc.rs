//! vmalloc on the real machine: memory that works, guard pages the CPU
//! enforces and the fault handler names, lazy purging, vmallocinfo, ioremap,
//! and kernel stacks from vmalloc whose overflow lands on the #DF IST stack.

use alloc::string::String;
use core::hint::black_box;

use kernel::arch::x86_64::extable::read_u8_nofault;
use kernel::arch::x86_64::paging;
use kernel::arch::x86_64::pgtable::{VMALLOC_END, VMALLOC_START};
use kernel::arch::x86_64::traps::PageFaultError;
use kernel::kbench::Bencher;
use kernel::mm as kmm;
use kernel::vmalloc::{self as kvm, THREAD_SIZE};
use ktest_macros::{kbench, ktest};
use mm::gfp::GFP_KERNEL;
use mm::pgtable::{PAGE_KERNEL, PgProt};
use mm::vmalloc::{VmallocError, VmapFault};
use mm::{PAGE_SIZE, PhysAddr, VirtAddr};

#[ktest]
fn vmalloc_memory_is_usable_contiguous_and_followed_by_a_guard_page() {
    let free = kernel::mm::nr_free_pages();
    let size = 1 << 20;
    let addr = kvm::vmalloc(size).expect("vmalloc 1 MiB");
    assert!((VMALLOC_START..VMALLOC_END).contains(&addr.as_u64()));
    let words = (size / 8) as usize;
    // SAFETY: vmalloc returned `size` bytes of mapped, writable memory that
    // only this test uses.
    let slice = unsafe { core::slice::from_raw_parts_mut(addr.as_mut_ptr::<u64>(), words) };
    for (i, w) in slice.iter_mut().enumerate() {
        *w = i as u64 ^ 0x5a5a;
    }
    assert!(slice.iter().enumerate().all(|(i, &w)| w == i as u64 ^ 0x5a5a));
    let leaf = paging::translate(addr.as_u64()).expect("mapped");
    assert_eq!(leaf.prot & (PgProt::WRITE | PgProt::EXEC), PgProt::WRITE, "vmalloc memory is RW+NX");
    let guard = addr.as_u64() + size;
    let fault = read_u8_nofault(guard).expect_err("the guard page is readable");
    assert_eq!((fault.address, PageFaultError::from_bits_retain(fault.error_code)), (guard, PageFaultError::empty()));
    let area = kvm::vm().find_vm_area(addr).expect("area");
    assert_eq!(kvm::vm().fault_info(VirtAddr::new(guard).expect("canonical")), Some(VmapFault::GuardPage(area)));
    assert!(kernel::mm::nr_free_pages() <= free - 256);
    kvm::vfree(addr).expect("vfree");
    assert!(paging::translate(addr.as_u64()).is_none(), "vfree left the mapping");
    // Page tables made for the area stay, as Linux's kernel tables do.
    let after = kernel::mm::nr_free_pages();
    assert!(after + 4 >= free, "vfree did not free the pages: {free} -> {after}");
}

#[ktest]
fn vzalloc_zeroes_and_errors_are_reported_not_fatal() {
    let addr = kvm::vzalloc(3 * PAGE_SIZE + 1).expect("vzalloc");
    // SAFETY: 4 mapped pages from vzalloc.
    let bytes = unsafe { core::slice::from_raw_parts(addr.as_ptr::<u8>(), 4 * PAGE_SIZE as usize) };
    assert!(bytes.iter().all(|&b| b == 0), "vzalloc memory not zeroed");
    kvm::vfree(addr).expect("vfree");
    assert_eq!(kvm::vfree(addr), Err(VmallocError::NotFound(addr)), "double vfree must be refused");
    assert_eq!(kvm::vmalloc(0), Err(VmallocError::BadSize));
    let pt = kernel::arch::x86_64::pgtable::kernel_pgtable().expect("kernel page tables");
    let (free, tables) = (kernel::mm::nr_free_pages(), pt.nr_tables());
    let too_big = free * PAGE_SIZE;
    assert!(matches!(kvm::vmalloc(too_big), Err(VmallocError::NoPages { .. })), "more than all memory");
    // The page tables built on the way stay (kernel tables are kept).
    let new_tables = pt.nr_tables() - tables;
    assert_eq!(kernel::mm::nr_free_pages() + new_tables, free, "a failed vmalloc kept pages");
    kvm::vm().purge_vmap_area_lazy();
    kvm::vm().with_areas(|a| a.check()).expect("vmap areas consistent");
}

#[ktest(should_panic = "vmalloc out-of-bounds access at")]
fn access_to_a_vmalloc_guard_page_is_reported_naming_the_area() {
    let addr = kvm::vmalloc(2 * PAGE_SIZE).expect("vmalloc");
    let past_end = addr.as_u64() + 2 * PAGE_SIZE + 16;
    // SAFETY: deliberately invalid: one past the area, in its guard page,
    // with no exception-table entry, so the fault handler reports and
    // panics.
    black_box(unsafe { core::ptr::read_volatile(past_end as *const u8) });
}

#[ktest]
fn vmap_aliases_pages_and_ioremap_maps_uncached() {
    let pages = [kmm::alloc_pages(GFP_KERNEL, 0).expect("page"), kmm::alloc_pages(GFP_KERNEL, 0).expect("page")];
    let addr = kvm::vmap(&[pages[1], pages[0]], PAGE_KERNEL).expect("vmap");
    // SAFETY: the second vmapped page is pages[0], which this test owns.
    unsafe { addr.as_mut_ptr::<u8>().add(PAGE_SIZE as usize + 3).write_volatile(0x42) };
    // SAFETY: pages[0] is ours and direct-mapped.
    assert_eq!(unsafe { kmm::page_address(pages[0]).as_ptr::<u8>().add(3).read_volatile() }, 0x42);
    kvm::vunmap(addr).expect("vunmap");
    for pfn in pages {
        // SAFETY: the test's pages; their vmap is gone (vunmap above).
        unsafe { kmm::free_pages(pfn, 0) }.expect("vunmap left the pages to their owner");
    }
    // The local APIC's ID register: MMIO the direct map does not cover.
    let io = kvm::ioremap(PhysAddr::new(0xfee0_0020), 4).expect("ioremap");
    let leaf = paging::translate(io.as_u64()).expect("mapped");
    assert!(leaf.prot.contains(PgProt::NO_CACHE), "ioremap must be uncached: {:?}", leaf.prot);
    // SAFETY: the APIC ID register is readable MMIO; the read has no side effects.
    let id = unsafe { io.as_ptr::<u32>().read_volatile() } >> 24;
    assert_eq!(id, kernel::arch::x86_64::cpu::initial_apic_id(), "ioremap reads the APIC id");
    kvm::iounmap(io).expect("iounmap");
}

#[ktest]
fn vmallocinfo_lists_areas_in_linux_format() {
    let a = kvm::vmalloc(5 * PAGE_SIZE).expect("vmalloc");
    let line = line!() - 1;
    let mut info = String::new();
    kvm::vm().vmallocinfo(&mut info).expect("format");
    log::info!("/proc/vmallocinfo:\n{info}");
    let expected = alloc::format!(
        "0x{:016x}-0x{:016x}   24576 {}:{line} pages=5 vmalloc",
        a.as_u64(),
        a.as_u64() + 6 * PAGE_SIZE,
        file!()
    );
    assert!(info.lines().any(|l| l == expected), "no line {expected:?} in\n{info}");
    kvm::vfree(a).expect("vfree");
}

#[ktest(should_panic = "handled on the #DF IST stack: kernel stack overflow into a guard page")]
fn overflowing_a_vmalloc_kernel_stack_is_caught_on_the_double_fault_stack() {
    let stack = kvm::alloc_thread_stack().expect("stack");
    assert!(stack.is_aligned(THREAD_SIZE));
    assert!(!paging::is_mapped(stack.as_u64() - 1), "the page below a vmalloc stack must be unmapped");
    let top = stack.as_u64() + THREAD_SIZE;
    // SAFETY: a fresh vmalloc stack, unused, with unmapped pages below.
    unsafe { crate::exceptions::overflow_stack_at(top) }
}

#[kbench]
fn vmalloc_vfree(b: &mut Bencher<'_>) {
    for size in [PAGE_SIZE, 1 << 20] {
        b.iter_with(size, || {
            let addr = kvm::vmalloc(size);
            addr.map(|a| kvm::vfree(black_box(a)).is_ok())
        });
    }
}
