//! Exception and interrupt entry (Linux `arch/x86/entry/entry_64.S` and
//! `asm/idtentry.h`).
//!
//! Every IDT vector gets a 16-byte stub at `trap_entry_stubs + 16 * vector`.
//! A stub pushes a zero error code for vectors where the CPU pushes none, so
//! the stack always has the same shape, then the vector number, and jumps to
//! `trap_common`, which saves all general-purpose registers into a
//! [`TrapFrame`] and calls `trap_dispatch` (in `traps.rs`) with a pointer to it.
//! The handler may change the frame (an exception-table fixup rewrites RIP and
//! a few registers, signal delivery rewrites a user frame); `trap_exit`
//! restores whatever the frame then says and returns with IRETQ.
//!
//! GS: in the kernel GS base is the CPU's per-CPU offset; in user mode it
//! is the user's, and the kernel's waits in `KERNEL_GS_BASE`. An entry from
//! ring 3 (the saved CS has RPL 3) executes SWAPGS first and the exit back
//! to ring 3 executes it last (Linux `SWAPGS` in `error_entry` and
//! `swapgs_restore_regs_and_return_to_usermode`). Difference: Linux's
//! paranoid entries (NMI, #MC, #DF) read `MSR_GS_BASE` instead, which is
//! right even for an NMI that arrives between SYSCALL and its SWAPGS; ours
//! trust CS, so such an NMI would run its (logging-only) handler with the
//! user's GS. System calls enter at `entry_SYSCALL_64` (`syscall.rs`) and
//! leave through `trap_exit` too.
//!
//! Stack alignment: in 64-bit mode the CPU aligns RSP to 16 bytes before it
//! pushes SS..RIP (SDM vol. 3, 6.14.2); 7 words of hardware frame, error code
//! and vector plus 15 saved registers make 176 bytes, so RSP is 16-byte
//! aligned at the `call`, as the System V ABI requires.
//!
//! `trap_common` leaves RBP alone, so the frame-pointer chain runs from the
//! handler through `trap_dispatch` into the interrupted code and backtraces
//! cross the exception.

use core::arch::global_asm;

/// Number of IDT vectors.
pub const NR_VECTORS: usize = 256;
/// Bytes between consecutive entry stubs.
pub const STUB_ALIGN: usize = 16;

/// The registers saved on exception or system-call entry, lowest address
/// first (Linux `struct pt_regs`). For a system call `vector` is
/// [`SYSCALL_MARK`] and `error_code` holds the syscall number (Linux
/// `orig_ax`).
#[repr(C)]
#[derive(Clone, Debug)]
#[doc(alias = "pt_regs")]
#[allow(missing_docs)] // register names speak for themselves
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// The IDT vector, pushed by the stub.
    pub vector: u64,
    /// The CPU's error code, or 0 for vectors without one.
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// `vector` of a system call's frame.
pub const SYSCALL_MARK: u64 = u64::MAX;

impl TrapFrame {
    /// Whether the frame was saved on entry from user mode.
    pub fn from_user(&self) -> bool {
        self.cs & 3 == 3
    }
}

unsafe extern "C" {
    /// The first of [`NR_VECTORS`] entry stubs, [`STUB_ALIGN`] bytes apart.
    static trap_entry_stubs: u8;
    static trap_common: u8;
    static trap_common_end: u8;
}

/// Whether `addr` lies in `trap_common`: a return address there marks the
/// boundary between a handler's frames and the interrupted code's.
pub fn is_trap_return(addr: u64) -> bool {
    (&raw const trap_common as u64..&raw const trap_common_end as u64).contains(&addr)
}

/// The address of the entry stub for `vector`.
pub fn stub_address(vector: u8) -> u64 {
    let base = &raw const trap_entry_stubs as u64;
    base + u64::from(vector) * STUB_ALIGN as u64
}

// The vectors for which the CPU pushes an error code (SDM vol. 3, table 6-1):
// #DF 8, #TS 10, #NP 11, #SS 12, #GP 13, #PF 14, #AC 17, #CP 21, #VC 29, #SX 30.
global_asm!(
    r#"
    .section .text.trap_entry, "ax"
    .global trap_entry_stubs
    .p2align 4
trap_entry_stubs:
    .set vec, 0
    .rept 256
    .p2align 4
    .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    pushq $0
    .endif
    pushq $vec
    jmp trap_common
    .set vec, vec + 1
    .endr

    .p2align 4
    .global trap_common
trap_common:
    testb $3, 24(%rsp)
    jz 1f
    swapgs
1:
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
    call trap_dispatch
    .global trap_exit
trap_exit:
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    testb $3, 8(%rsp)
    jz 2f
    swapgs
2:
    iretq
    .global trap_common_end
trap_common_end:
    "#,
    options(att_syntax)
);
