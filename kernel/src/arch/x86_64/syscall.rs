//! The SYSCALL entry (Linux `arch/x86/entry/entry_64.S`
//! `entry_SYSCALL_64` and `arch/x86/kernel/cpu/common.c`
//! `syscall_init`).
//!
//! SYSCALL leaves the user RIP in RCX and RFLAGS in R11, masks RFLAGS with
//! `IA32_FMASK` (interrupts, direction, trap and alignment-check flags
//! off) and jumps to `entry_SYSCALL_64` in ring 0 with the user's stack.
//! The entry swaps GS, parks the user RSP in a per-CPU slot, switches to
//! the task's kernel stack and builds the same [`TrapFrame`] an interrupt
//! from user mode would (vector [`SYSCALL_MARK`], `error_code` = the syscall
//! number, Linux's `orig_ax`), so signal delivery, fork and execve see one
//! frame layout. It returns through `trap_exit` (IRETQ); Linux prefers
//! SYSRET when the frame allows, which is faster but has sharp edges
//! (non-canonical RCX); we always take the IRET path.

use core::arch::global_asm;
use core::sync::atomic::AtomicU64;

use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;

#[allow(unused_imports)] // named in the docs
use super::entry::SYSCALL_MARK;
use super::entry::TrapFrame;
use super::gdt;

/// The user RSP while the entry switches stacks (Linux
/// `cpu_tss_rw.x86_tss.sp2` scratch slot).
#[unsafe(link_section = ".data..percpu")]
static USER_RSP_SCRATCH: AtomicU64 = AtomicU64::new(0);

global_asm!(
    r#"
    .section .text.syscall_entry, "ax"
    .global entry_SYSCALL_64
    .p2align 4
entry_SYSCALL_64:
    swapgs
    movq %rsp, %gs:{scratch}
    movq %gs:{top}, %rsp
    pushq ${user_ds}
    pushq %gs:{scratch}
    pushq %r11
    pushq ${user_cs}
    pushq %rcx
    pushq %rax
    pushq $-1
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    cld
    call do_syscall_64
    jmp trap_exit
    "#,
    scratch = sym USER_RSP_SCRATCH,
    top = sym crate::sched::TOP_OF_STACK,
    user_ds = const gdt::USER_DS,
    user_cs = const gdt::USER_CS,
    options(att_syntax)
);

unsafe extern "C" {
    fn entry_SYSCALL_64();
}

/// Points SYSCALL at `entry_SYSCALL_64` on this CPU (Linux `syscall_init`).
pub fn syscall_init() {
    let star = Star::write(
        x86_64::structures::gdt::SegmentSelector(gdt::USER_CS),
        x86_64::structures::gdt::SegmentSelector(gdt::USER_DS),
        x86_64::structures::gdt::SegmentSelector(gdt::KERNEL_CS),
        x86_64::structures::gdt::SegmentSelector(gdt::KERNEL_DS),
    );
    if let Err(e) = star {
        log::error!("syscall_init: STAR selectors refused: {e}");
        return;
    }
    LStar::write(x86_64::VirtAddr::new(entry_SYSCALL_64 as *const () as u64));
    SFMask::write(
        RFlags::INTERRUPT_FLAG
            | RFlags::DIRECTION_FLAG
            | RFlags::TRAP_FLAG
            | RFlags::ALIGNMENT_CHECK
            | RFlags::NESTED_TASK
            | RFlags::IOPL_HIGH
            | RFlags::IOPL_LOW,
    );
    // SAFETY: enabling SYSCALL/SYSRET only makes the SYSCALL instruction
    // usable; LSTAR/STAR/FMASK were programmed above.
    unsafe { Efer::update(|f| f.insert(EferFlags::SYSTEM_CALL_EXTENSIONS)) };
}

/// The frame type system calls see.
pub type SyscallFrame = TrapFrame;
