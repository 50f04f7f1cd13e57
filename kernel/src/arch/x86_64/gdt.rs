//! GDT and TSS (Linux `arch/x86/kernel/cpu/common.c`, `cpu_entry_area`).
//!
//! Long mode ignores segment bases and limits; the GDT holds the kernel code
//! segment and the TSS, whose Interrupt Stack Table gives the exceptions that
//! can arrive on a broken stack a known-good stack of their own: #DF (a fault
//! while delivering a fault, typically a kernel stack overflow into its guard
//! page), NMI and #MC (which can arrive at any instruction, including the
//! first one of a handler before it has a valid stack), as Linux does.
//!
//! The IST stacks are static and belong to CPU 0; SMP bring-up gives every
//! CPU its own GDT/TSS/IST set.

use spin::Lazy;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;

/// IST slot (0-based, as the TSS array is indexed) for #DF.
pub const DOUBLE_FAULT_IST_INDEX: u16 = 0;
/// IST slot for NMI.
pub const NMI_IST_INDEX: u16 = 1;
/// IST slot for #MC.
pub const MACHINE_CHECK_IST_INDEX: u16 = 2;

/// Size of each IST stack (Linux uses 4 KiB << EXCEPTION_STACK_ORDER).
pub const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct IstStack([u8; IST_STACK_SIZE]);

static mut DOUBLE_FAULT_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);
static mut NMI_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);
static mut MACHINE_CHECK_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);

/// An IST stack's address range, for reports that say which stack a handler
/// ran on.
#[derive(Clone, Copy, Debug)]
pub struct IstRange {
    /// What the stack is for, as reports print it.
    pub name: &'static str,
    /// Lowest address.
    pub bottom: u64,
    /// One past the highest address (the initial stack pointer).
    pub top: u64,
}

/// The IST stacks of this CPU.
pub fn ist_ranges() -> [IstRange; 3] {
    let range = |name, bottom: *mut IstStack| {
        let bottom = bottom as u64;
        IstRange { name, bottom, top: bottom + IST_STACK_SIZE as u64 }
    };
    [
        range("#DF IST", &raw mut DOUBLE_FAULT_STACK),
        range("NMI IST", &raw mut NMI_STACK),
        range("#MC IST", &raw mut MACHINE_CHECK_STACK),
    ]
}

static TSS: Lazy<TaskStateSegment> = Lazy::new(|| {
    let mut tss = TaskStateSegment::new();
    for (slot, range) in [DOUBLE_FAULT_IST_INDEX, NMI_IST_INDEX, MACHINE_CHECK_IST_INDEX].into_iter().zip(ist_ranges())
    {
        tss.interrupt_stack_table[usize::from(slot)] = VirtAddr::new(range.top);
    }
    tss
});

struct Gdt {
    table: GlobalDescriptorTable,
    kernel_code: SegmentSelector,
    tss: SegmentSelector,
}

static GDT: Lazy<Gdt> = Lazy::new(|| {
    let mut table = GlobalDescriptorTable::new();
    let kernel_code = table.append(Descriptor::kernel_code_segment());
    let tss = table.append(Descriptor::tss_segment(&TSS));
    Gdt { table, kernel_code, tss }
});

/// The kernel code segment selector, for IDT gates.
pub fn kernel_code_selector() -> u16 {
    GDT.kernel_code.0
}

/// Loads the GDT, reloads the segment registers and loads the TSS.
pub fn init() {
    GDT.table.load();
    // SAFETY: the selectors come from the GDT just loaded: CS is a present
    // 64-bit code segment, the TSS descriptor points at a 'static TSS, and a
    // null selector is valid for SS/DS/ES in 64-bit ring 0.
    unsafe {
        CS::set_reg(GDT.kernel_code);
        SS::set_reg(SegmentSelector(0));
        DS::set_reg(SegmentSelector(0));
        ES::set_reg(SegmentSelector(0));
        load_tss(GDT.tss);
    }
}
