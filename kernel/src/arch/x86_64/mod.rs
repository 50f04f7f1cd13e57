//! x86_64 support (Linux `arch/x86/`).

pub mod acpi;
pub mod apic;
pub mod cpu;
pub mod entry;
pub mod extable;
pub mod gdt;
pub mod irq;
pub mod paging;
pub mod pgtable;
pub mod pic;
pub mod smp;
pub mod stacktrace;
pub mod switch;
pub mod syscall;
pub mod tlb;
pub mod traps;
pub mod tsc;
pub mod uaccess;

/// Loads the GDT/TSS and IDT and masks the legacy PIC. Interrupts stay
/// disabled: no interrupt controller is programmed yet.
pub fn init_cpu_tables() {
    gdt::init();
    traps::init();
    pic::mask_all();
}
