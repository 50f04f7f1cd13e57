//! Task switching (Linux `arch/x86/entry/entry_64.S` `__switch_to_asm` and
//! `ret_from_fork_asm`, `arch/x86/kernel/process_64.c` `__switch_to`, and
//! the FPU state switch of `arch/x86/kernel/fpu/core.c`).
//!
//! A task switched out is a kernel stack whose top holds its callee-saved
//! registers and a return address; [`switch_to`] saves the current stack
//! pointer, loads the next task's and returns on the next task's stack. The
//! stack of a task that never ran is prepared by [`prepare_stack`] so that
//! this return lands in `ret_from_fork_asm`, which finishes the switch
//! and then either calls a kernel thread's function or leaves for user mode
//! through the trap frame at the top of the stack (`trap_exit`).
//!
//! FPU/SSE state: the kernel is built without SSE, so only user tasks have
//! FPU state. It is saved with FXSAVE when a user task is switched out and
//! restored with FXRSTOR when one is switched in (Linux's eager FPU switch;
//! no XSAVE, so no AVX state: [`init_fpu`] leaves XCR0 alone and user code
//! that probes CPUID sees OSXSAVE clear).

use core::arch::global_asm;

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};

use super::entry::TrapFrame;

/// FXSAVE area (SDM vol. 1 10.5.1), 16-byte aligned.
#[repr(C, align(16))]
#[derive(Clone)]
pub struct FxArea(pub [u8; 512]);

impl FxArea {
    /// The state FNINIT and a default MXCSR give (Linux `fpstate_init_fx`):
    /// FCW 0x37f, MXCSR 0x1f80, all registers zero.
    pub const fn initial() -> Self {
        let mut a = [0u8; 512];
        a[0] = 0x7f;
        a[1] = 0x03;
        a[24] = 0x80;
        a[25] = 0x1f;
        FxArea(a)
    }
}

/// Enables SSE for user code on this CPU: CR0.MP set and EM/TS clear,
/// CR4.OSFXSR and OSXMMEXCPT set (Linux `fpu__init_cpu`).
pub fn init_fpu() {
    // SAFETY: these bits only enable FXSAVE/FXRSTOR and SSE instructions and
    // SIMD exceptions; the kernel itself executes no SSE instruction.
    unsafe {
        Cr0::update(|f| {
            f.insert(Cr0Flags::MONITOR_COPROCESSOR);
            f.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
        });
        Cr4::update(|f| f.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE));
    }
}

/// Saves this CPU's FPU/SSE registers into `area`.
pub fn fxsave(area: &mut FxArea) {
    // SAFETY: `area` is 512 writable bytes, 16-byte aligned (the type's
    // alignment), as FXSAVE requires; CR4.OSFXSR is set by `init_fpu`.
    unsafe { core::arch::asm!("fxsave64 [{0}]", in(reg) area.0.as_mut_ptr(), options(nostack, preserves_flags)) };
}

/// Loads this CPU's FPU/SSE registers from `area`.
pub fn fxrstor(area: &FxArea) {
    // SAFETY: as for `fxsave`; `area` holds an image FXSAVE wrote or
    // `FxArea::initial` (reserved MXCSR bits clear, so no #GP).
    unsafe { core::arch::asm!("fxrstor64 [{0}]", in(reg) area.0.as_ptr(), options(nostack, preserves_flags)) };
}

global_asm!(
    r#"
    .section .text.switch, "ax"
    .global __switch_to_asm
// __switch_to_asm(rdi: *mut u64 save prev rsp, rsi: next rsp, rdx: prev task) -> rax: prev task
__switch_to_asm:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    movq %rdx, %rax
    ret

    .global ret_from_fork_asm
// First return of a new task: rax = the task switched out, r12 = kernel
// thread function (0 for a user task), r13 = its argument.
ret_from_fork_asm:
    movq %rax, %rdi
    call schedule_tail
    testq %r12, %r12
    jz 1f
    movq %r13, %rdi
    call *%r12
    ud2
1:
    jmp trap_exit
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    fn __switch_to_asm(prev_sp: *mut u64, next_sp: u64, prev: *const u8) -> *const u8;
    static ret_from_fork_asm: u8;
}

/// Switches stacks: saves the current stack pointer in `*prev_sp`, resumes
/// the task whose saved stack pointer is `next_sp`, and, when the current
/// task is resumed later, returns the task that was running just before
/// (the `prev` of that later switch).
///
/// # Safety
/// Interrupts must be off. `next_sp` must be a stack pointer saved by this
/// function or made by [`prepare_stack`] for a stack nothing else runs on.
/// `prev_sp` must stay valid until the current task is resumed.
pub unsafe fn switch_to(prev_sp: *mut u64, next_sp: u64, prev: *const u8) -> *const u8 {
    // SAFETY: the caller's contract is the asm's.
    unsafe { __switch_to_asm(prev_sp, next_sp, prev) }
}

/// Words `__switch_to_asm` pops before its `ret`, plus the return address.
const SWITCH_FRAME_WORDS: usize = 7;

/// Prepares a new task's kernel stack ending at `top` (16-byte aligned):
/// a trap frame `frame` at the very top (where entries from user mode put
/// theirs) and under it a switch frame that returns into
/// `ret_from_fork_asm` with `r12 = func`, `r13 = arg`. Returns the stack
/// pointer to hand to [`switch_to`].
///
/// # Safety
/// `[top - 256, top)` must be writable memory owned by the new task's stack.
pub unsafe fn prepare_stack(top: u64, frame: &TrapFrame, func: u64, arg: u64) -> u64 {
    let frame_at = top - size_of::<TrapFrame>() as u64;
    let sp = frame_at - (SWITCH_FRAME_WORDS * 8) as u64;
    // Pop order of __switch_to_asm: r15, r14, r13, r12, rbx, rbp, ret.
    let words: [u64; SWITCH_FRAME_WORDS] = [0, 0, arg, func, 0, 0, &raw const ret_from_fork_asm as u64];
    // SAFETY: both writes are inside [top - 256, top) (176 + 56 bytes),
    // which the caller gives us; both addresses are 8-byte aligned.
    unsafe {
        (frame_at as *mut TrapFrame).write(frame.clone());
        (sp as *mut [u64; SWITCH_FRAME_WORDS]).write(words);
    }
    sp
}

/// Leaves for user mode through the running task's trap frame at the top
/// of its kernel stack (the tail of Linux `ret_from_fork` after a kernel
/// thread's `kernel_execve` succeeded).
pub fn return_to_user() -> ! {
    x86_64::instructions::interrupts::disable();
    let top = crate::sched::TOP_OF_STACK.read();
    let frame = pt_regs_at(top);
    // SAFETY: the frame at the top of our own kernel stack was filled by
    // execve for user mode; nothing below it is needed any more, so the
    // stack pointer may jump there and `trap_exit` pops it.
    unsafe { core::arch::asm!("mov rsp, {0}", "jmp trap_exit", in(reg) frame, options(noreturn)) }
}

/// The trap frame at the top of a task's kernel stack (Linux
/// `task_pt_regs`): where a user task's registers are saved on every entry.
pub fn pt_regs_at(top: u64) -> *mut TrapFrame {
    (top - size_of::<TrapFrame>() as u64) as *mut TrapFrame
}
