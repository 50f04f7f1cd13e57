//! The IDT and exception handling (Linux `arch/x86/kernel/idt.c`,
//! `traps.c` and `arch/x86/mm/fault.c`).
//!
//! What happens per vector:
//! - #BP (int3): counted, logged, execution continues after the `int3`.
//! - #PF and #GP: an exception-table fixup (see `extable.rs`) resumes at the
//!   fixup address with the fault reported in registers, as Linux's
//!   `fixup_exception` does for `copy_from_kernel_nofault`. Without a fixup the
//!   fault is fatal: [`die`].
//! - NMI: logged; the interrupted code continues.
//! - Every other exception: fatal.
//! - Device vectors (0x30..0xec, MSI-X messages): the handler registered
//!   with `irq::request_irq`, then EOI (see `irq.rs`).
//! - The system vectors: the local APIC timer, IPIs, spurious.
//! - Any other vector is unexpected; it is logged and ignored.
//!
//! #DF, NMI and #MC run on their own IST stacks (see `gdt.rs`), so a kernel
//! stack overflow into a guard page ends in a #DF report, not a triple fault.
//!
//! A fatal exception prints Linux-style oops information (vector, error code
//! decoded for #PF, RIP, RSP, RFLAGS, CR2, CR3, all registers, which stack the
//! handler runs on) and then panics; the panic handler prints the backtrace
//! and, in the test kernel, reports the running test.

use core::sync::atomic::{AtomicU64, Ordering};

use bitflags::bitflags;
use spin::Once;
use x86_64::VirtAddr;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;

use super::entry::{self, NR_VECTORS, TrapFrame};
use super::{cpu, extable, gdt, paging};
use crate::printk::emergency;
use crate::sync::HardirqContext;

/// Exception vectors (SDM vol. 3, table 6-1).
#[allow(missing_docs)]
pub mod vector {
    pub const DIVIDE_ERROR: u8 = 0;
    pub const DEBUG: u8 = 1;
    pub const NMI: u8 = 2;
    pub const BREAKPOINT: u8 = 3;
    pub const DOUBLE_FAULT: u8 = 8;
    pub const GENERAL_PROTECTION: u8 = 13;
    pub const PAGE_FAULT: u8 = 14;
    pub const MACHINE_CHECK: u8 = 18;
    pub const FIRST_EXTERNAL: u8 = 32;
}

/// Names of the 32 architectural exception vectors, as reports print them.
const EXCEPTION_NAMES: [&str; 32] = [
    "#DE Divide Error",
    "#DB Debug",
    "NMI Non-Maskable Interrupt",
    "#BP Breakpoint",
    "#OF Overflow",
    "#BR Bound Range Exceeded",
    "#UD Invalid Opcode",
    "#NM Device Not Available",
    "#DF Double Fault",
    "Coprocessor Segment Overrun",
    "#TS Invalid TSS",
    "#NP Segment Not Present",
    "#SS Stack-Segment Fault",
    "#GP General Protection",
    "#PF Page Fault",
    "Reserved (15)",
    "#MF x87 Floating-Point Error",
    "#AC Alignment Check",
    "#MC Machine Check",
    "#XM SIMD Floating-Point",
    "#VE Virtualization Exception",
    "#CP Control Protection",
    "Reserved (22)",
    "Reserved (23)",
    "Reserved (24)",
    "Reserved (25)",
    "Reserved (26)",
    "Reserved (27)",
    "#HV Hypervisor Injection",
    "#VC VMM Communication",
    "#SX Security Exception",
    "Reserved (31)",
];

/// The name of `vector` as reports print it.
pub fn vector_name(vector: u8) -> &'static str {
    EXCEPTION_NAMES.get(usize::from(vector)).copied().unwrap_or("external interrupt")
}

bitflags! {
    /// The #PF error code (Linux `enum x86_pf_error_code`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct PageFaultError: u64 {
        /// 0: no page found, 1: protection fault (`X86_PF_PROT`).
        const PROT = 1 << 0;
        /// 0: read access, 1: write access (`X86_PF_WRITE`).
        const WRITE = 1 << 1;
        /// 0: kernel-mode access, 1: user-mode access (`X86_PF_USER`).
        const USER = 1 << 2;
        /// A reserved bit was set in a paging entry (`X86_PF_RSVD`).
        const RSVD = 1 << 3;
        /// Fault was an instruction fetch (`X86_PF_INSTR`).
        const INSTR = 1 << 4;
        /// Protection keys block access (`X86_PF_PK`).
        const PK = 1 << 5;
        /// Shadow-stack access (`X86_PF_SHSTK`).
        const SHSTK = 1 << 6;
        /// SGX-specific access-control violation (`X86_PF_SGX`).
        const SGX = 1 << 15;
    }
}

/// An IDT gate descriptor (SDM vol. 3, figure 6-8; Linux `struct gate_struct`).
#[repr(C)]
#[derive(Clone, Copy)]
struct GateDesc {
    offset_low: u16,
    segment: u16,
    /// Bits 0..3: IST slot + 1 (0 = no stack switch).
    ist: u8,
    /// Present, DPL 0, 64-bit interrupt gate (interrupts disabled on entry).
    type_attr: u8,
    offset_middle: u16,
    offset_high: u32,
    reserved: u32,
}

const GATE_INTERRUPT_DPL0: u8 = 0x8e;

impl GateDesc {
    fn new(handler: u64, segment: u16, ist_slot: Option<u16>) -> Self {
        GateDesc {
            offset_low: handler as u16,
            segment,
            ist: ist_slot.map_or(0, |slot| slot as u8 + 1),
            type_attr: GATE_INTERRUPT_DPL0,
            offset_middle: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            reserved: 0,
        }
    }
}

static IDT: Once<[GateDesc; NR_VECTORS]> = Once::new();

static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

/// How many int3 breakpoints have been handled since boot.
pub fn breakpoint_count() -> u64 {
    BREAKPOINTS.load(Ordering::Relaxed)
}

fn ist_slot(vector: u8) -> Option<u16> {
    match vector {
        vector::DOUBLE_FAULT => Some(gdt::DOUBLE_FAULT_IST_INDEX),
        vector::NMI => Some(gdt::NMI_IST_INDEX),
        vector::MACHINE_CHECK => Some(gdt::MACHINE_CHECK_IST_INDEX),
        _ => None,
    }
}

/// Builds and loads the IDT. Requires the GDT (for the code selector).
pub fn init() {
    let idt = IDT.call_once(|| {
        let cs = gdt::kernel_code_selector();
        core::array::from_fn(|v| {
            let v = v as u8;
            GateDesc::new(entry::stub_address(v), cs, ist_slot(v))
        })
    });
    let pointer = DescriptorTablePointer {
        limit: (core::mem::size_of_val(idt) - 1) as u16,
        base: VirtAddr::from_ptr(idt.as_ptr()),
    };
    // SAFETY: `idt` lives in a 'static Once and holds a valid gate for every
    // vector, each pointing at its entry stub with the loaded code selector.
    unsafe { lidt(&pointer) };
}

/// Called by `trap_common` (entry.rs) with interrupts disabled.
#[unsafe(no_mangle)]
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    let vector = frame.vector as u8;
    // An external interrupt's handler runs in hard-IRQ context (until the
    // guard goes, before any reschedule on the way to user mode).
    let context = (vector >= vector::FIRST_EXTERNAL).then(HardirqContext::enter);
    if frame.from_user() && vector < vector::FIRST_EXTERNAL && vector != vector::NMI && vector != vector::MACHINE_CHECK
    {
        user_exception(frame, vector);
        drop(context);
        crate::syscall::exit_to_user_mode(frame);
        return;
    }
    match vector {
        vector::BREAKPOINT => {
            BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
            log::debug!("int3 breakpoint at RIP {:#x}", frame.rip);
        }
        vector::PAGE_FAULT | vector::GENERAL_PROTECTION => {
            let address = if vector == vector::PAGE_FAULT { cpu::read_cr2() } else { 0 };
            // A user-memory access from the kernel (copy_from_user and
            // friends, all listed in the exception table) first gets the
            // fault resolved like a user access would.
            if vector == vector::PAGE_FAULT
                && address < mm::mmap::TASK_SIZE
                && extable::search(frame.rip).is_some()
                && kernel_user_fault(frame, address).is_ok()
            {
                return;
            }
            if !extable::fixup_exception(frame, address) {
                die(frame);
            }
        }
        vector::NMI => log::warn!("NMI received at RIP {:#x}; continuing", frame.rip),
        super::smp::CALL_FUNCTION_VECTOR => super::smp::call_function_interrupt(),
        super::apic::LOCAL_TIMER_VECTOR => super::apic::timer_interrupt(frame.from_user()),
        crate::sched::RESCHEDULE_VECTOR => crate::sched::reschedule_interrupt(),
        // Spurious interrupts need no EOI (SDM vol. 3 10.9).
        super::apic::SPURIOUS_VECTOR => {}
        0..vector::FIRST_EXTERNAL => die(frame),
        v if super::irq::is_device_vector(v) => super::irq::handle(v),
        _ => log::warn!("unexpected interrupt on vector {vector}"),
    }
    drop(context);
    if frame.from_user() {
        crate::syscall::exit_to_user_mode(frame);
    }
}

/// A kernel-mode fault on a user address (Linux `do_user_addr_fault` for
/// a fault in `copy_from_user` and friends). With interrupts on where it
/// struck, the handler runs with them on and may sleep for the mmap lock,
/// like a user fault. With them off (Linux's `faulthandler_disabled()`)
/// it must not sleep: it only tries the lock, and a busy lock, or a stack
/// that would need the lock for writing, fails the access (`EFAULT`
/// through the exception table). Under
/// [`pagefault_disable`](super::uaccess::pagefault_disable) every such
/// fault fails the access.
fn kernel_user_fault(frame: &TrapFrame, address: u64) -> Result<(), mm::memory::FaultError> {
    // Linux `faulthandler_disabled()`: the caller cannot take a fault
    // (it holds a spin lock) and faults the page in itself after.
    if super::uaccess::pagefault_disabled() {
        return Err(mm::memory::FaultError::MapErr);
    }
    let error = PageFaultError::from_bits_retain(frame.error_code);
    if frame.rflags & RFLAGS_IF == 0 {
        return do_user_addr_fault(address, error, FaultContext::Atomic);
    }
    x86_64::instructions::interrupts::enable();
    let result = do_user_addr_fault(address, error, FaultContext::MaySleep);
    x86_64::instructions::interrupts::disable();
    result
}

/// The interrupt flag in RFLAGS (SDM vol. 1 3.4.3).
const RFLAGS_IF: u64 = 1 << 9;

/// Whether a fault handler may sleep for the mmap lock.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FaultContext {
    /// Interrupts are on and no spin lock is held: sleeping is allowed.
    MaySleep,
    /// Interrupts were off where the fault struck: only try the lock.
    Atomic,
}

/// Resolves a page fault at a user address against the running task's
/// address space (Linux `do_user_addr_fault` -> `handle_mm_fault`). Kept
/// out of line under Linux's name, so that `break do_user_addr_fault`
/// stops at every user page fault (gdb/mm.py's `mm-fault` reads its
/// arguments).
#[unsafe(no_mangle)]
#[inline(never)]
fn do_user_addr_fault(
    address: u64,
    error: PageFaultError,
    context: FaultContext,
) -> Result<(), mm::memory::FaultError> {
    use mm::memory::FaultError;
    let mm = crate::sched::try_current().and_then(|t| t.proc.mm()).ok_or(FaultError::MapErr)?;
    let access = mm::memory::FaultAccess {
        write: error.contains(PageFaultError::WRITE),
        exec: error.contains(PageFaultError::INSTR),
    };
    let Some(addr) = mm::VirtAddr::new(address) else { return Err(FaultError::MapErr) };
    let task = crate::sched::current();
    let majors = task.acct.maj_flt();
    let result = match context {
        FaultContext::MaySleep => crate::mmap::handle_user_fault(&mm, addr, access),
        FaultContext::Atomic => match mm.mmap_read_trylock() {
            Some(guard) => match guard.handle_mm_fault(addr, access) {
                // Growing a stack or waiting for a page under migration
                // would sleep.
                Err(FaultError::ExpandStack | FaultError::Retry(_)) => Err(FaultError::MapErr),
                r => r,
            },
            None => Err(FaultError::MapErr),
        },
    };
    // Linux `mm_account_fault`: a resolved fault that was not major (the
    // mm charged those as it read) is minor; failed ones count neither.
    if result.is_ok() && task.acct.maj_flt() == majors {
        task.acct.count_fault(false);
    }
    result
}

/// An exception in user mode: resolve a page fault, or signal the task
/// (Linux `do_user_addr_fault`'s bad-area path and the `do_trap` family).
fn user_exception(frame: &mut TrapFrame, vector: u8) {
    use uapi::signal::*;
    if frame.rflags & RFLAGS_IF != 0 {
        x86_64::instructions::interrupts::enable();
    }
    let (sig, code, addr, why) = match vector {
        vector::PAGE_FAULT => {
            let address = cpu::read_cr2();
            let error = PageFaultError::from_bits_retain(frame.error_code);
            // User mode runs with interrupts on, so they are on here.
            match do_user_addr_fault(address, error, FaultContext::MaySleep) {
                Ok(()) => return,
                Err(mm::memory::FaultError::Oom) => {
                    crate::oom_kill::pagefault_out_of_memory(address);
                    return;
                }
                Err(
                    mm::memory::FaultError::MapErr
                    | mm::memory::FaultError::ExpandStack
                    | mm::memory::FaultError::Retry(_),
                ) => (SIGSEGV, SEGV_MAPERR, address, "segfault"),
                Err(mm::memory::FaultError::AccErr) => (SIGSEGV, SEGV_ACCERR, address, "segfault"),
                // Linux `do_sigbus`: a mapped file page that cannot be
                // had (past the end of the file, an I/O error).
                Err(mm::memory::FaultError::SigBus) => (SIGBUS, BUS_ADRERR, address, "bus error"),
            }
        }
        vector::BREAKPOINT => (SIGTRAP, SI_KERNEL, frame.rip, "trap int3"),
        0 => (SIGFPE, FPE_INTDIV, frame.rip, "trap divide error"),
        6 => (SIGILL, ILL_ILLOPN, frame.rip, "trap invalid opcode"),
        16 | 19 => (SIGFPE, 0, frame.rip, "trap floating point"),
        _ => (SIGSEGV, SI_KERNEL, 0, "general protection"),
    };
    let me = crate::sched::current();
    let handled = me.proc.signal.lock().action[(sig - 1) as usize].sa_handler > SIG_IGN;
    if !handled {
        // Linux `show_signal_msg`.
        log::info!(
            "{}[{}]: {why} at {addr:#x} ip {:#x} sp {:#x} error {:#x}",
            me.comm(),
            me.pid,
            frame.rip,
            frame.rsp,
            frame.error_code
        );
    }
    crate::signal::force_sig_fault(sig, code, addr);
}

/// Whether a #DF looks like a stack overflow: the last page fault (CR2) hit
/// an unmapped page within a page of the interrupted stack pointer.
fn hit_stack_guard(rsp: u64, cr2: u64) -> bool {
    rsp.abs_diff(cr2) < mm::PAGE_SIZE && !paging::is_mapped(cr2)
}

/// Names the stack the handler is running on.
fn current_stack_name() -> &'static str {
    let rsp = cpu::read_rsp();
    gdt::ist_ranges().into_iter().find(|r| (r.bottom..r.top).contains(&rsp)).map_or("kernel", |r| r.name)
}

/// Reports a fatal exception and panics.
fn die(frame: &TrapFrame) -> ! {
    let vector = frame.vector as u8;
    let name = vector_name(vector);
    let stack = current_stack_name();
    let cr2 = cpu::read_cr2();
    emergency(format_args!(
        "\nEXCEPTION: {name} (vector {vector}) on CPU{}\n  error code: {:#06x}\n",
        crate::percpu::smp_processor_id(),
        frame.error_code
    ));
    let pf = (vector == vector::PAGE_FAULT)
        .then(|| PageFaultDesc { error: PageFaultError::from_bits_retain(frame.error_code), cr2 });
    if let Some(desc) = &pf {
        print_page_fault_error(desc);
    }
    // Linux's "BUG: stack guard page was hit" (handle_stack_overflow).
    let overflow = vector == vector::DOUBLE_FAULT && hit_stack_guard(frame.rsp, cr2);
    if overflow {
        emergency(format_args!(
            "  kernel stack overflow: RSP {:#x} and CR2 {cr2:#x} are in an unmapped guard page\n",
            frame.rsp
        ));
    }
    emergency(format_args!(
        "  RIP: {:#018x}  CS: {:#06x}  RFLAGS: {:#010x}\n  RSP: {:#018x}  SS: {:#06x}\n  \
         CR2: {:#018x}  CR3: {:#018x}\n",
        frame.rip,
        frame.cs,
        frame.rflags,
        frame.rsp,
        frame.ss,
        cr2,
        cpu::read_cr3_phys()
    ));
    emergency(format_args!(
        "  RAX: {:#018x} RBX: {:#018x} RCX: {:#018x}\n  RDX: {:#018x} RSI: {:#018x} RDI: {:#018x}\n  \
         RBP: {:#018x} R8:  {:#018x} R9:  {:#018x}\n  R10: {:#018x} R11: {:#018x} R12: {:#018x}\n  \
         R13: {:#018x} R14: {:#018x} R15: {:#018x}\n  handler stack: {stack}\n",
        frame.rax,
        frame.rbx,
        frame.rcx,
        frame.rdx,
        frame.rsi,
        frame.rdi,
        frame.rbp,
        frame.r8,
        frame.r9,
        frame.r10,
        frame.r11,
        frame.r12,
        frame.r13,
        frame.r14,
        frame.r15
    ));
    let vmalloc = pf.as_ref().and_then(|_| crate::vmalloc::fault_report(cr2));
    if let Some(report) = &vmalloc {
        emergency(format_args!("  {report}\n"));
    }
    panic!(
        "{name} (vector {vector}) in kernel mode at RIP {:#x}, handled on the {stack} stack{}",
        frame.rip,
        DieDetail { pf: pf.as_ref(), vmalloc: vmalloc.as_ref(), overflow }
    );
}

/// What a fatal exception's panic message adds after the stack name: the
/// decoded #PF and the vmalloc area it hit, or the stack-overflow verdict.
struct DieDetail<'a> {
    pf: Option<&'a PageFaultDesc>,
    vmalloc: Option<&'a crate::vmalloc::FaultReport>,
    overflow: bool,
}

impl core::fmt::Display for DieDetail<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if let Some(desc) = self.pf {
            write!(f, ": {desc}")?;
        }
        if let Some(report) = self.vmalloc {
            write!(f, "; {report}")?;
        }
        if self.overflow {
            f.write_str(": kernel stack overflow into a guard page")?;
        }
        Ok(())
    }
}

/// A #PF error code and address in Linux's `show_fault_oops` words:
/// "supervisor write access at ADDR: permissions violation".
struct PageFaultDesc {
    error: PageFaultError,
    cr2: u64,
}

impl core::fmt::Display for PageFaultDesc {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let e = self.error;
        let who = if e.contains(PageFaultError::USER) { "user" } else { "supervisor" };
        let what = if e.contains(PageFaultError::INSTR) {
            "instruction fetch"
        } else if e.contains(PageFaultError::WRITE) {
            "write access"
        } else {
            "read access"
        };
        let why = if e.contains(PageFaultError::RSVD) {
            "reserved bit violation"
        } else if e.contains(PageFaultError::PK) {
            "protection keys violation"
        } else if e.contains(PageFaultError::PROT) {
            "permissions violation"
        } else {
            "not-present page"
        };
        write!(f, "{who} {what} at {:#x}: {why}", self.cr2)
    }
}

/// Prints the decoded #PF error code plus its individual bits.
fn print_page_fault_error(desc: &PageFaultDesc) {
    let e = desc.error;
    emergency(format_args!(
        "  #PF: {desc}\n  #PF: bits [P={} W={} U={} RSVD={} I={} PK={}]\n",
        u8::from(e.contains(PageFaultError::PROT)),
        u8::from(e.contains(PageFaultError::WRITE)),
        u8::from(e.contains(PageFaultError::USER)),
        u8::from(e.contains(PageFaultError::RSVD)),
        u8::from(e.contains(PageFaultError::INSTR)),
        u8::from(e.contains(PageFaultError::PK)),
    ));
}
