//! Exception tables (Linux `arch/x86/mm/extable.c`, `asm/extable.h`).
//!
//! An instruction that may fault on purpose is listed in the `__ex_table`
//! section together with a fixup address. When #PF or #GP hits a listed
//! instruction, [`fixup_exception`] resumes at the fixup instead of treating
//! the fault as a kernel bug, and reports the fault in registers:
//!
//! | register | on fault                              |
//! |----------|---------------------------------------|
//! | RAX      | [`FAULT_FLAG`] \| vector              |
//! | RDX      | faulting address (CR2 for #PF, else 0) |
//! | RCX      | the CPU's error code                   |
//!
//! Linux's `EX_TYPE_*` handlers do the same with `-EFAULT` in a register;
//! `copy_from_user` and friends will use this table when user space exists.
//! Today it gives the kernel [`read_u8_nofault`]/[`write_u8_nofault`]
//! (Linux `get_kernel_nofault`/`copy_to_kernel_nofault`).

use core::arch::asm;

use super::entry::TrapFrame;

/// An `__ex_table` entry. Linux stores 32-bit offsets relative to the entry;
/// our kernel is linked at a fixed address, so absolute addresses are simpler
/// and cost 8 bytes more per entry.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ExceptionTableEntry {
    /// Address of the instruction allowed to fault.
    pub insn: u64,
    /// Where to resume when it does.
    pub fixup: u64,
}

/// Set in RAX by a fixup, above the vector number.
pub const FAULT_FLAG: u64 = 0x100;

unsafe extern "C" {
    static __start___ex_table: ExceptionTableEntry;
    static __stop___ex_table: ExceptionTableEntry;
}

fn table() -> &'static [ExceptionTableEntry] {
    // SAFETY: the linker script places every `__ex_table` input section
    // between these two symbols, 8-aligned; the entries are written by the
    // asm blocks below as pairs of quads, matching the repr(C) layout.
    unsafe {
        crate::section::linker_array(
            (&raw const __start___ex_table).cast::<u8>(),
            (&raw const __stop___ex_table).cast::<u8>(),
        )
    }
}

/// The fixup for a faulting instruction at `rip`, if it has one (Linux
/// `search_exception_tables`).
pub fn search(rip: u64) -> Option<u64> {
    table().iter().find(|e| e.insn == rip).map(|e| e.fixup)
}

/// Applies the fixup for `frame.rip`, if any; returns whether it did.
pub fn fixup_exception(frame: &mut TrapFrame, address: u64) -> bool {
    let Some(fixup) = search(frame.rip) else { return false };
    frame.rax = FAULT_FLAG | (frame.vector & 0xff);
    frame.rdx = address;
    frame.rcx = frame.error_code;
    frame.rip = fixup;
    true
}

/// A fault taken by a `*_nofault` access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Exception vector (14 for #PF, 13 for #GP).
    pub vector: u8,
    /// The CPU's error code.
    pub error_code: u64,
    /// The faulting linear address (CR2) for #PF; 0 for #GP.
    pub address: u64,
}

fn decode(status: u64, address: u64, error_code: u64) -> Result<(), Fault> {
    if status & FAULT_FLAG == 0 { Ok(()) } else { Err(Fault { vector: status as u8, error_code, address }) }
}

/// Reads a byte at `addr`, returning the fault instead of dying if the
/// address is unmapped, not readable or non-canonical.
#[inline(never)]
pub fn read_u8_nofault(addr: u64) -> Result<u8, Fault> {
    let status: u64;
    let address: u64;
    let error_code: u64;
    let value: u64;
    // SAFETY: the only memory access is the load at label 2, which is listed
    // in __ex_table: if it faults, the handler resumes at label 3 with the
    // fault in rax/rdx/rcx, which are declared as outputs here.
    unsafe {
        asm!(
            "xor eax, eax",
            "xor esi, esi",
            "2: movzx esi, byte ptr [rdi]",
            "3:",
            ".pushsection __ex_table, \"a\"",
            ".balign 8",
            ".quad 2b, 3b",
            ".popsection",
            in("rdi") addr,
            out("rax") status,
            out("rsi") value,
            out("rdx") address,
            out("rcx") error_code,
            options(nostack, readonly),
        );
    }
    decode(status, address, error_code).map(|()| value as u8)
}

/// Writes a byte at `addr`, returning the fault instead of dying if the
/// address is unmapped, read-only or non-canonical.
///
/// # Safety
/// If the write succeeds it changes memory at `addr`: the caller must own
/// that byte or know that writing it is harmless.
#[inline(never)]
pub unsafe fn write_u8_nofault(addr: u64, value: u8) -> Result<(), Fault> {
    let status: u64;
    let address: u64;
    let error_code: u64;
    // SAFETY: the store at label 2 is listed in __ex_table (see
    // read_u8_nofault); the caller vouches for the byte it writes.
    unsafe {
        asm!(
            "xor eax, eax",
            "2: mov byte ptr [rdi], sil",
            "3:",
            ".pushsection __ex_table, \"a\"",
            ".balign 8",
            ".quad 2b, 3b",
            ".popsection",
            in("rdi") addr,
            in("sil") value,
            out("rax") status,
            out("rdx") address,
            out("rcx") error_code,
            options(nostack),
        );
    }
    decode(status, address, error_code)
}
