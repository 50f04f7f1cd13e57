//! CPU exceptions: handled ones continue, faults are reported with the right
//! CR2 and error code, and fatal ones end in a report instead of a triple
//! fault.

use core::hint::black_box;

use kernel::arch::x86_64::extable::{Fault, read_u8_nofault, write_u8_nofault};
use kernel::arch::x86_64::paging;
use kernel::arch::x86_64::traps::{PageFaultError, breakpoint_count, vector};
use ktest_macros::ktest;

/// A lower-half address that nothing maps (no user space exists yet).
const UNMAPPED: u64 = 0x0000_5eed_dead_b000;

#[ktest]
fn int3_is_handled_and_execution_continues() {
    let before = breakpoint_count();
    let mut value = black_box(20u64);
    // SAFETY: int3 traps to the breakpoint handler, which counts it and
    // returns to the next instruction; no registers or memory change.
    unsafe { core::arch::asm!("int3") };
    value += 22;
    assert_eq!(breakpoint_count(), before + 1, "the #BP handler did not run exactly once");
    assert_eq!(black_box(value), 42, "execution did not continue correctly after int3");
}

fn expect_page_fault(result: Result<(), Fault>, address: u64, error: PageFaultError) {
    let fault = match result {
        Ok(()) => panic!("access to {address:#x} did not fault"),
        Err(f) => f,
    };
    assert_eq!(fault.vector, vector::PAGE_FAULT, "wrong vector: {fault:?}");
    assert_eq!(fault.address, address, "CR2 does not hold the faulting address");
    assert_eq!(PageFaultError::from_bits_retain(fault.error_code), error, "wrong #PF error code");
}

#[ktest]
fn read_of_unmapped_address_faults_with_cr2_and_not_present_read_code() {
    assert!(paging::translate(UNMAPPED).is_none(), "test address {UNMAPPED:#x} is mapped");
    expect_page_fault(read_u8_nofault(UNMAPPED).map(|_| ()), UNMAPPED, PageFaultError::empty());
}

#[ktest]
fn write_to_unmapped_address_faults_with_write_bit() {
    let address = UNMAPPED + 0x123;
    assert!(paging::translate(address).is_none());
    // SAFETY: the address is unmapped (just checked), so the write cannot
    // change memory; it can only fault.
    let result = unsafe { write_u8_nofault(address, 0xaa) };
    expect_page_fault(result, address, PageFaultError::WRITE);
}

static READ_ONLY: u8 = 0x5a;

#[ktest]
fn write_to_kernel_rodata_faults_as_protection_violation() {
    let address = core::ptr::from_ref(&READ_ONLY) as u64;
    let t = paging::translate(address).expect("rodata is mapped");
    assert!(!t.prot.contains(mm::pgtable::PgProt::WRITE), "rodata is mapped writable");
    // SAFETY: rodata is mapped read-only (just checked) and CR0.WP makes the
    // kernel honour that, so the write faults instead of changing memory.
    let result = unsafe { write_u8_nofault(address, 0) };
    expect_page_fault(result, address, PageFaultError::PROT | PageFaultError::WRITE);
    assert_eq!(black_box(READ_ONLY), 0x5a);
}

#[ktest]
fn non_canonical_access_raises_general_protection() {
    let fault = read_u8_nofault(0x8000_0000_0000_0000).expect_err("a non-canonical read succeeded");
    assert_eq!(fault.vector, vector::GENERAL_PROTECTION, "{fault:?}");
    assert_eq!(fault.error_code, 0, "#GP for a non-canonical address has error code 0");
}

#[ktest]
fn mapped_kernel_memory_reads_without_fault() {
    static VALUE: u8 = 0xc3;
    let address = core::ptr::from_ref(&VALUE) as u64;
    assert_eq!(read_u8_nofault(address), Ok(0xc3));
}

#[ktest(should_panic = "#PF Page Fault (vector 14) in kernel mode")]
fn unhandled_kernel_page_fault_is_reported_and_panics() {
    // SAFETY: deliberately invalid: the address is unmapped and has no
    // exception-table entry, so the fault handler reports it and panics.
    let value = unsafe { core::ptr::read_volatile(UNMAPPED as *const u8) };
    black_box(value);
}

/// A stack for the overflow test: 16 pages, the lowest unmapped as a guard.
#[repr(C, align(4096))]
struct GuardedStack([u8; 16 * 4096]);

static mut OVERFLOW_STACK: GuardedStack = GuardedStack([0; 16 * 4096]);

/// Recurses until the stack runs into its guard page.
#[allow(unconditional_recursion)] // the point: overflow the stack
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    recurse(black_box(depth + 1)) + frame[7]
}

extern "C" fn overflow_entry() -> ! {
    let n = recurse(0);
    panic!("recursion returned {n}; the guard page did not stop it");
}

#[ktest(should_panic = "handled on the #DF IST stack: kernel stack overflow into a guard page")]
fn kernel_stack_overflow_is_caught_on_the_double_fault_ist_stack() {
    let base = &raw mut OVERFLOW_STACK as u64;
    let top = base + core::mem::size_of::<GuardedStack>() as u64;
    let guard = mm::VirtAddr::new(base).expect("canonical");
    // SAFETY: the lowest page of OVERFLOW_STACK becomes the guard; only the
    // recursion below touches this stack, and only by faulting on the guard.
    unsafe { kernel::arch::x86_64::pgtable::unmap_kernel_range(guard, mm::PAGE_SIZE) }.expect("unmap guard page");
    assert!(paging::translate(base).is_none());
    // SAFETY: the stack below `top` is ours and ends in the guard page.
    unsafe { overflow_stack_at(top) }
}

/// Switches to the stack whose top is `top` (16-byte aligned) and recurses
/// until it overflows. The page fault on the unmapped page below cannot be
/// delivered on the same stack, so the CPU raises #DF, which runs on its
/// IST stack, reports and panics; nothing returns here. Shared with the
/// vmalloc-stack test.
///
/// # Safety
/// The stack below `top` must be unused and end in an unmapped page.
pub(crate) unsafe fn overflow_stack_at(top: u64) -> ! {
    // SAFETY: the caller provides an unused stack; the call never returns.
    unsafe {
        core::arch::asm!(
            "mov rsp, {top}",
            "xor ebp, ebp",
            "call {entry}",
            top = in(reg) top,
            entry = sym overflow_entry,
            options(noreturn),
        );
    }
}
