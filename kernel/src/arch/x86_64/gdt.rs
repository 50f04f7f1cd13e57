//! GDT and TSS (Linux `arch/x86/kernel/cpu/common.c`, `cpu_entry_area`).
//!
//! Long mode ignores segment bases and limits; the GDT holds the code and
//! data segments of ring 0 and ring 3 in the order SYSCALL and SYSRET
//! require (kernel code, kernel data, user data, user code: Linux's
//! `GDT_ENTRY_KERNEL_CS` .. `GDT_ENTRY_DEFAULT_USER_CS` order, see
//! [`USER_CS`]) and the TSS. The TSS's `rsp0` is the stack the CPU switches
//! to when an interrupt arrives in user mode (the running task's kernel
//! stack, set by the scheduler through [`set_rsp0`]); its Interrupt Stack Table gives the exceptions that
//! can arrive on a broken stack a known-good stack of their own: #DF (a fault
//! while delivering a fault, typically a kernel stack overflow into its guard
//! page), NMI and #MC (which can arrive at any instruction, including the
//! first one of a handler before it has a valid stack), as Linux does.
//!
//! The boot CPU's tables and IST stacks are static; every other CPU gets
//! its own GDT and TSS from kmalloc and IST stacks from vmalloc (with guard
//! pages) in [`init_ap`], laid out like the boot CPU's so selectors match.

use core::sync::atomic::AtomicU64;

use spin::Lazy;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::registers::segmentation::SegmentSelector;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable};
use x86_64::structures::tss::TaskStateSegment;

use crate::percpu::PerCpu;

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
    super::smp::this_cpu_ist().unwrap_or_else(bsp_ist_ranges)
}

/// The boot CPU's IST stacks.
pub fn bsp_ist_ranges() -> [IstRange; 3] {
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
    for (slot, range) in
        [DOUBLE_FAULT_IST_INDEX, NMI_IST_INDEX, MACHINE_CHECK_IST_INDEX].into_iter().zip(bsp_ist_ranges())
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

/// Kernel code selector (GDT entry 1).
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data selector (entry 2): SYSCALL loads SS with `KERNEL_CS + 8`.
pub const KERNEL_DS: u16 = 0x10;
/// User data selector (entry 3, RPL 3): SYSRET loads SS with `STAR[63:48] + 8`.
pub const USER_DS: u16 = 0x18 | 3;
/// User 64-bit code selector (entry 4, RPL 3): SYSRET loads CS with
/// `STAR[63:48] + 16`. Linux has a 32-bit user code segment between
/// the two; we run no 32-bit code, so `STAR[63:48]` is [`KERNEL_DS`].
pub const USER_CS: u16 = 0x20 | 3;

fn build_gdt(tss: &'static TaskStateSegment) -> Gdt {
    let mut table = GlobalDescriptorTable::new();
    let kernel_code = table.append(Descriptor::kernel_code_segment());
    let kernel_data = table.append(Descriptor::kernel_data_segment());
    let user_data = table.append(Descriptor::user_data_segment());
    let user_code = table.append(Descriptor::user_code_segment());
    let tss = table.append(Descriptor::tss_segment(tss));
    debug_assert_eq!(
        [kernel_code.0, kernel_data.0, user_data.0, user_code.0],
        [KERNEL_CS, KERNEL_DS, USER_DS, USER_CS],
        "GDT layout must match the SYSCALL/SYSRET selectors"
    );
    Gdt { table, kernel_code, tss }
}

static GDT: Lazy<Gdt> = Lazy::new(|| build_gdt(&TSS));

/// This CPU's TSS (Linux `cpu_tss_rw`), for [`set_rsp0`].
#[unsafe(link_section = ".data..percpu")]
// SAFETY: in .data..percpu; an address, copied bitwise into every unit.
static THIS_TSS: PerCpu<AtomicU64> = unsafe { PerCpu::new(AtomicU64::new(0)) };

/// Makes `top` the stack the CPU switches to on an interrupt or exception
/// from user mode (Linux `update_task_stack`, TSS `sp0`).
pub fn set_rsp0(top: u64) {
    let tss = THIS_TSS.read() as *mut TaskStateSegment;
    if tss.is_null() {
        return;
    }
    // SAFETY: THIS_TSS holds this CPU's TSS, which lives forever (static or
    // leaked) and which only this CPU writes; the CPU reads rsp0 only when
    // it changes privilege level, which cannot happen during this store
    // (we are in ring 0 and the caller has interrupts off or owns the task).
    // The TSS is packed: rsp0 sits at offset 4, so the store is unaligned.
    unsafe { (&raw mut (*tss).privilege_stack_table[0]).write_unaligned(VirtAddr::new(top)) };
}

/// The kernel code segment selector, for IDT gates.
pub fn kernel_code_selector() -> u16 {
    GDT.kernel_code.0
}

/// Loads the GDT, reloads the segment registers and loads the TSS.
pub fn init() {
    load(&GDT, &TSS);
}

fn load(gdt: &'static Gdt, tss: &'static TaskStateSegment) {
    THIS_TSS.write(core::ptr::from_ref(tss) as u64);
    gdt.table.load();
    // SAFETY: the selectors come from the GDT just loaded: CS is a present
    // 64-bit code segment, the TSS descriptor points at a 'static TSS, and a
    // null selector is valid for SS/DS/ES in 64-bit ring 0.
    unsafe {
        CS::set_reg(gdt.kernel_code);
        SS::set_reg(SegmentSelector(0));
        DS::set_reg(SegmentSelector(0));
        ES::set_reg(SegmentSelector(0));
        load_tss(gdt.tss);
    }
}

/// Why an application processor's tables could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoMemory;

/// Allocates and loads this (application) CPU's GDT, TSS and IST stacks;
/// returns the IST ranges. They are never freed: CPUs do not go offline.
pub fn init_ap() -> Result<[IstRange; 3], NoMemory> {
    let mut stacks = [0u64; 3];
    for stack in &mut stacks {
        *stack = crate::vmalloc::vmalloc(IST_STACK_SIZE as u64).map_err(|_| NoMemory)?.as_u64();
    }
    let names = ["#DF IST", "NMI IST", "#MC IST"];
    let ranges: [IstRange; 3] = core::array::from_fn(|i| IstRange {
        name: names[i],
        bottom: stacks[i],
        top: stacks[i] + IST_STACK_SIZE as u64,
    });
    let mut tss = TaskStateSegment::new();
    for (slot, range) in [DOUBLE_FAULT_IST_INDEX, NMI_IST_INDEX, MACHINE_CHECK_IST_INDEX].into_iter().zip(ranges) {
        tss.interrupt_stack_table[usize::from(slot)] = VirtAddr::new(range.top);
    }
    let tss: &'static TaskStateSegment = alloc::boxed::Box::leak(alloc::boxed::Box::new(tss));
    let gdt: &'static Gdt = alloc::boxed::Box::leak(alloc::boxed::Box::new(build_gdt(tss)));
    load(gdt, tss);
    Ok(ranges)
}
