//! Copies between kernel and user memory (Linux
//! `arch/x86/include/asm/uaccess.h`, `arch/x86/lib/copy_user_64.S`,
//! `strncpy_from_user`, `clear_user`).
//!
//! A user pointer is checked against [`TASK_SIZE`] first (Linux
//! `access_ok`), then touched with one `rep movsb`/`rep stosb` between
//! STAC and CLAC (SMAP lets the kernel reach user pages only inside such a
//! window). The string instruction is listed in the exception table: a
//! fault the page-fault handler cannot resolve (it first tries
//! `handle_mm_fault`, so demand paging and copy-on-write work under the
//! copy) resumes after it with the fault flag set, and the call returns
//! [`Efault`]. Differences: Linux reports how many bytes were left; we
//! return only success or EFAULT, which is all our callers need.
//!
//! [`pagefault_disable`] makes a fault fail the access at once instead of
//! being resolved, for accesses under a spin lock.

use core::arch::asm;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering, compiler_fence};

use mm::mmap::TASK_SIZE;

use super::extable::FAULT_FLAG;
use crate::percpu::PerCpu;

/// Page faults this CPU's kernel code has said it cannot take (Linux
/// `current->pagefault_disabled`; see [`pagefault_disable`]).
#[unsafe(link_section = ".data..percpu")]
// SAFETY: in .data..percpu; an integer, copied bitwise into every unit.
static PAGEFAULT_DISABLED: PerCpu<AtomicU64> = unsafe { PerCpu::new(AtomicU64::new(0)) };

/// While it lives, a fault on a user address in a user access of this
/// CPU is not resolved: the access fails with [`Efault`] at once (Linux
/// `pagefault_disable`, whose faults `faulthandler_disabled()` sends
/// straight to the exception table). For reading user memory under a
/// spin lock, where the fault handler must not sleep for the mmap lock:
/// the caller drops its lock, faults the page in with a plain access and
/// retries (the futex's `futex_get_value_locked`). Linux counts it per
/// task; ours is per CPU, which is the same while it is held only where
/// the task cannot sleep or be switched out (under a spin lock), the one
/// use it is for.
pub struct PagefaultDisabled(PhantomData<*const ()>);

/// Disables page-fault handling for user accesses until the guard drops.
pub fn pagefault_disable() -> PagefaultDisabled {
    PAGEFAULT_DISABLED.add(1);
    // Linux's barrier(): no user access moves above the count.
    compiler_fence(Ordering::SeqCst);
    PagefaultDisabled(PhantomData)
}

impl Drop for PagefaultDisabled {
    fn drop(&mut self) {
        compiler_fence(Ordering::SeqCst);
        PAGEFAULT_DISABLED.add(1u64.wrapping_neg());
    }
}

/// Whether a [`PagefaultDisabled`] guard is live on this CPU.
pub fn pagefault_disabled() -> bool {
    PAGEFAULT_DISABLED.read() != 0
}

/// A user pointer was bad (Linux `-EFAULT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Efault;

static SMAP: AtomicBool = AtomicBool::new(false);

/// Records whether STAC/CLAC exist (CPUID SMAP), once, at boot.
pub fn init(smap: bool) {
    SMAP.store(smap, Ordering::Relaxed);
}

/// Linux `access_ok`: `[addr, addr + len)` lies in the user half.
pub fn access_ok(addr: u64, len: u64) -> bool {
    addr.checked_add(len).is_some_and(|end| end <= TASK_SIZE)
}

fn stac() {
    if SMAP.load(Ordering::Relaxed) {
        // SAFETY: STAC only sets RFLAGS.AC; the CPU has SMAP (checked).
        unsafe { asm!("stac", options(nomem, nostack)) };
    }
}

fn clac() {
    if SMAP.load(Ordering::Relaxed) {
        // SAFETY: CLAC only clears RFLAGS.AC.
        unsafe { asm!("clac", options(nomem, nostack)) };
    }
}

/// `rep movsb` of `len` bytes from `src` to `dst`, one of which is a user
/// address; returns the fault status (0 or FAULT_FLAG | vector).
///
/// # Safety
/// The kernel-side range must be valid for the access.
unsafe fn copy_raw(dst: u64, src: u64, len: u64) -> u64 {
    let status: u64;
    stac();
    // SAFETY: the kernel side is the caller's; the user side is in the
    // user half (checked by callers) and a fault there is fixed up by the
    // exception-table entry for label 2 (resume at 3, status in rax).
    unsafe {
        asm!(
            "xor eax, eax",
            "2: rep movsb",
            "3:",
            ".pushsection __ex_table, \"a\"",
            ".balign 8",
            ".quad 2b, 3b",
            ".popsection",
            inout("rdi") dst => _,
            inout("rsi") src => _,
            inout("rcx") len => _,
            out("rax") status,
            out("rdx") _,
            options(nostack),
        );
    }
    clac();
    status
}

/// Copies `dst.len()` bytes from user address `src` (Linux
/// `copy_from_user`).
pub fn copy_from_user(dst: &mut [u8], src: u64) -> Result<(), Efault> {
    if !access_ok(src, dst.len() as u64) {
        return Err(Efault);
    }
    // SAFETY: `dst` is a valid kernel buffer of that length.
    let status = unsafe { copy_raw(dst.as_mut_ptr() as u64, src, dst.len() as u64) };
    if status & FAULT_FLAG != 0 { Err(Efault) } else { Ok(()) }
}

/// Copies `src` to user address `dst` (Linux `copy_to_user`).
pub fn copy_to_user(dst: u64, src: &[u8]) -> Result<(), Efault> {
    if !access_ok(dst, src.len() as u64) {
        return Err(Efault);
    }
    // SAFETY: `src` is a valid kernel buffer of that length; the copy only
    // reads it.
    let status = unsafe { copy_raw(dst, src.as_ptr() as u64, src.len() as u64) };
    if status & FAULT_FLAG != 0 { Err(Efault) } else { Ok(()) }
}

/// Zeroes `len` bytes at user address `dst` (Linux `clear_user`).
pub fn clear_user(dst: u64, len: u64) -> Result<(), Efault> {
    if !access_ok(dst, len) {
        return Err(Efault);
    }
    let status: u64;
    stac();
    // SAFETY: the range is in the user half; a fault is fixed up (see
    // `copy_raw`).
    unsafe {
        asm!(
            "xor eax, eax",
            "2: rep stosb",
            "3:",
            ".pushsection __ex_table, \"a\"",
            ".balign 8",
            ".quad 2b, 3b",
            ".popsection",
            inout("rdi") dst => _,
            inout("rcx") len => _,
            inout("rax") 0u64 => status,
            out("rdx") _,
            options(nostack),
        );
    }
    clac();
    if status & FAULT_FLAG != 0 { Err(Efault) } else { Ok(()) }
}

/// Copies a NUL-terminated string of at most `dst.len()` bytes from user
/// address `src` (Linux `strncpy_from_user`); returns its length without
/// the NUL, or `Ok(dst.len())` if no NUL came within `dst.len()` bytes
/// (callers treat that as too long).
pub fn strncpy_from_user(dst: &mut [u8], src: u64) -> Result<usize, Efault> {
    let mut done = 0;
    while done < dst.len() {
        // Copy up to the end of the current page, so a string that ends
        // before an unmapped page is still read in full.
        let at = src.checked_add(done as u64).ok_or(Efault)?;
        let chunk = ((mm::PAGE_SIZE - (at & (mm::PAGE_SIZE - 1))) as usize).min(dst.len() - done);
        copy_from_user(&mut dst[done..done + chunk], at)?;
        if let Some(nul) = dst[done..done + chunk].iter().position(|&b| b == 0) {
            return Ok(done + nul);
        }
        done += chunk;
    }
    Ok(dst.len())
}

/// Reads a `T` (plain data) from user memory (Linux `get_user`/
/// `copy_from_user` of a struct).
pub fn read_user<T: Copy + Default>(src: u64) -> Result<T, Efault> {
    let mut value = T::default();
    // SAFETY: `value` is a T, viewed as its bytes for the copy; T is plain
    // data (Copy, and every type we read is a repr(C) integer struct) so
    // any byte pattern written into it is valid.
    let bytes = unsafe { core::slice::from_raw_parts_mut((&raw mut value).cast::<u8>(), size_of::<T>()) };
    copy_from_user(bytes, src)?;
    Ok(value)
}

/// Writes a `T` (plain data, padding explicit) to user memory.
pub fn write_user<T: Copy>(dst: u64, value: &T) -> Result<(), Efault> {
    // SAFETY: viewing a T as bytes for reading; the uapi structs have no
    // implicit padding, so no uninitialised byte is read.
    let bytes = unsafe { core::slice::from_raw_parts(core::ptr::from_ref(value).cast::<u8>(), size_of::<T>()) };
    copy_to_user(dst, bytes)
}
