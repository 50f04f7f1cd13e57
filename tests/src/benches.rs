//! Benchmarks of the machine paths every later mm figure stands on: the cost
//! of an exception round trip (the floor under every page fault) and of
//! reading the clock.

use kernel::arch::x86_64::extable::read_u8_nofault;
use kernel::arch::x86_64::tsc;
use kernel::kbench::Bencher;
use ktest_macros::kbench;

/// A lower-half address that nothing maps.
const UNMAPPED: u64 = 0x0000_5eed_dead_b000;

/// #PF on an unmapped address, exception-table fixup, IRETQ: the entry and
/// exit cost of a kernel page fault without any mm work.
#[kbench]
fn page_fault_fixup_round_trip(b: &mut Bencher) {
    b.iter(|| read_u8_nofault(UNMAPPED).is_err());
}

/// int3 through the IDT to the breakpoint handler and back.
#[kbench]
fn int3_trap_round_trip(b: &mut Bencher) {
    // SAFETY: int3 traps to the breakpoint handler, which counts it and
    // returns to the next instruction.
    b.iter(|| unsafe { core::arch::asm!("int3") });
}

/// One RDTSC, the kernel clock's read.
#[kbench]
fn tsc_read(b: &mut Bencher) {
    b.iter(tsc::rdtsc);
}
