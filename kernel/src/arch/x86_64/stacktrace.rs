//! Frame-pointer stack traces (Linux `arch/x86/kernel/dumpstack.c` with
//! `CONFIG_UNWINDER_FRAME_POINTER`).
//!
//! Kernel code is built with `-C force-frame-pointers=yes`, so every frame
//! starts with `push rbp; mov rbp, rsp`: `[rbp]` holds the caller's RBP and
//! `[rbp + 8]` the return address. The walk checks that each frame is mapped
//! before reading it, that frames move up the stack, and stops after
//! [`MAX_FRAMES`], so a corrupt chain ends the trace instead of faulting.
//! The one place the chain may jump to another stack is an exception entry
//! (a handler on an IST stack called from code on the kernel stack), which
//! the walk recognises by the return address into `trap_common`.
//!
//! Addresses are printed raw, one per line as `  [ n] 0x...`; xtask resolves
//! them to function, file and line from the kernel ELF.

use super::{entry, paging};
use crate::printk::emergency;

/// Longest trace printed.
pub const MAX_FRAMES: usize = 64;

/// Calls `f` with each return address found by walking the frame-pointer
/// chain from `rbp`, innermost first.
pub fn walk(mut rbp: u64, mut f: impl FnMut(u64)) {
    for _ in 0..MAX_FRAMES {
        // The chain ends at the kernel stack: a user frame pointer (an
        // exception or syscall from user mode) is not followed, and
        // reading user memory here would fault under SMAP anyway.
        if rbp < 0xffff_8000_0000_0000
            || !rbp.is_multiple_of(8)
            || !paging::is_mapped(rbp)
            || !paging::is_mapped(rbp + 8)
        {
            return;
        }
        // SAFETY: both words were just checked to be mapped, and reading
        // kernel stack memory has no side effects.
        let (next, ret) =
            unsafe { (core::ptr::read_volatile(rbp as *const u64), core::ptr::read_volatile((rbp + 8) as *const u64)) };
        if ret == 0 {
            return;
        }
        f(ret);
        if next <= rbp && !entry::is_trap_return(ret) {
            return;
        }
        rbp = next;
    }
}

/// Prints a backtrace starting at frame pointer `rbp`.
pub fn print_backtrace(rbp: u64) {
    emergency(format_args!("backtrace:\n"));
    let mut n = 0;
    walk(rbp, |ret| {
        emergency(format_args!("  [{n:2}] {ret:#018x}\n"));
        n += 1;
    });
    if n == 0 {
        emergency(format_args!("  (no frames: frame-pointer chain empty or unreadable)\n"));
    }
}
