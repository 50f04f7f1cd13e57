//! The mlock family (Linux `mm/mlock.c`): `mlock`, `mlock2`, `munlock`,
//! `mlockall`, `munlockall`.
//!
//! Locking sets [`VmaFlags::LOCKED`] (and [`VmaFlags::LOCKONFAULT`] for
//! `MLOCK_ONFAULT` / `MCL_ONFAULT`) on the VMAs of the range, splitting and
//! merging as mprotect does, then faults every page in unless locking on
//! fault (Linux `__mm_populate`). `mlockall(MCL_FUTURE)` puts the flags in
//! the address space's `def_flags`, which mmap and brk give every new VMA.
//!
//! Like Linux's `apply_vma_lock_flags`, the VMAs are changed in address
//! order up to a hole, which ends the call with `ENOMEM`, the VMAs before
//! it already changed.
//!
//! Differences from Linux:
//! - Nothing is ever reclaimed yet, so a locked page is only a page that
//!   is present: there is no `PG_mlocked`, unevictable LRU or `locked_vm`
//!   count, and no `RLIMIT_MEMLOCK` (every caller may lock everything).
//! - `PROT_NONE` VMAs are locked but not populated (Linux faults them in
//!   with `FOLL_FORCE`); the call succeeds either way.

#![forbid(unsafe_code)]

use uapi::errno::Errno;
use uapi::mman::{MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, MLOCK_ONFAULT};

use crate::addr::{PAGE_SIZE, VirtAddr, align_down};
use crate::memory::FaultError;
use crate::mmap::{MmStruct, TASK_SIZE, page_align, vma_err};
use crate::pgtable::PteFormat;
use crate::vma::{VmaAlloc, VmaFlags};

/// `VM_LOCKED_MASK`.
const VM_LOCKED_MASK: VmaFlags = VmaFlags::LOCKED.union(VmaFlags::LOCKONFAULT);

impl<F: PteFormat, A: VmaAlloc> MmStruct<'_, F, A> {
    /// The mlock system call.
    pub fn mlock(&mut self, start: u64, len: u64) -> Result<(), Errno> {
        self.do_mlock(start, len, VmaFlags::LOCKED)
    }

    /// The mlock2 system call: `flags` may hold `MLOCK_ONFAULT`.
    pub fn mlock2(&mut self, start: u64, len: u64, flags: u32) -> Result<(), Errno> {
        if flags & !MLOCK_ONFAULT != 0 {
            return Err(Errno::EINVAL);
        }
        let mut vm_flags = VmaFlags::LOCKED;
        if flags & MLOCK_ONFAULT != 0 {
            vm_flags |= VmaFlags::LOCKONFAULT;
        }
        self.do_mlock(start, len, vm_flags)
    }

    /// The munlock system call.
    pub fn munlock(&mut self, start: u64, len: u64) -> Result<(), Errno> {
        let (start, len) = lock_range(start, len);
        self.apply_vma_lock_flags(start, len, VmaFlags::empty())
    }

    /// The mlockall system call.
    pub fn mlockall(&mut self, flags: u32) -> Result<(), Errno> {
        if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT {
            return Err(Errno::EINVAL);
        }
        self.apply_mlockall_flags(flags);
        if flags & MCL_CURRENT != 0 {
            let _ = self.mm_populate(0, TASK_SIZE, true);
        }
        Ok(())
    }

    /// The munlockall system call.
    pub fn munlockall(&mut self) -> Result<(), Errno> {
        self.apply_mlockall_flags(0);
        Ok(())
    }

    /// Linux `do_mlock`.
    fn do_mlock(&mut self, start: u64, len: u64, flags: VmaFlags) -> Result<(), Errno> {
        let (start, len) = lock_range(start, len);
        self.apply_vma_lock_flags(start, len, flags)?;
        // Linux `__mlock_posix_error_return`: EFAULT becomes ENOMEM and
        // ENOMEM EAGAIN.
        self.mm_populate(start, start + len, false).map_err(|e| match e {
            FaultError::Oom => Errno::EAGAIN,
            FaultError::MapErr | FaultError::AccErr => Errno::ENOMEM,
        })
    }

    /// Gives the VMAs of `[start, start + len)` the lock flags `flags`,
    /// stopping with `ENOMEM` at a hole (Linux `apply_vma_lock_flags`).
    fn apply_vma_lock_flags(&mut self, start: u64, len: u64, flags: VmaFlags) -> Result<(), Errno> {
        let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
        let mut at = start;
        while at < end {
            let vma_end = match self.find_vma_user(at) {
                Some(v) if v.start().as_u64() <= at => v.end().as_u64(),
                _ => return Err(Errno::ENOMEM),
            };
            let part_end = vma_end.min(end);
            self.mlock_fixup(at, part_end, flags)?;
            at = part_end;
        }
        Ok(())
    }

    /// Sets the lock flags of `[start, end)`, inside one VMA (Linux
    /// `mlock_fixup`). `VM_SPECIAL` VMAs are never locked.
    fn mlock_fixup(&mut self, start: u64, end: u64, flags: VmaFlags) -> Result<(), Errno> {
        let Some(old) = self.vmas.vma_lookup(VirtAddr::new_const(start)).map(|v| v.flags()) else {
            return Err(Errno::ENOMEM);
        };
        if (old - VM_LOCKED_MASK) | flags == old || old.contains(VmaFlags::DONTEXPAND) {
            return Ok(());
        }
        self.vmas
            .modify_flags(VirtAddr::new_const(start), VirtAddr::new_const(end), |v| {
                (v.flags() - VM_LOCKED_MASK) | flags
            })
            .map_err(vma_err)
    }

    /// Linux `apply_mlockall_flags`: `def_flags` for `MCL_FUTURE`, every
    /// VMA for `MCL_CURRENT` (or unlocked when `flags` is 0), errors
    /// ignored.
    fn apply_mlockall_flags(&mut self, flags: u32) {
        let onfault = if flags & MCL_ONFAULT != 0 { VmaFlags::LOCKONFAULT } else { VmaFlags::empty() };
        self.def_flags -= VM_LOCKED_MASK;
        if flags & MCL_FUTURE != 0 {
            self.def_flags |= VmaFlags::LOCKED | onfault;
            if flags & MCL_CURRENT == 0 {
                return;
            }
        }
        let to_add = if flags & MCL_CURRENT != 0 { VmaFlags::LOCKED | onfault } else { VmaFlags::empty() };
        let mut at = 0;
        while let Some(v) = self.find_vma_user(at) {
            let (start, end) = (v.start().as_u64().max(at), v.end().as_u64());
            let _ = self.mlock_fixup(start, end, to_add);
            at = end;
        }
    }

    /// Faults in the locked VMAs of `[start, end)` that do not lock on
    /// fault (Linux `__mm_populate`); holes are skipped, and so are
    /// errors if `ignore_errors`.
    fn mm_populate(&mut self, start: u64, end: u64, ignore_errors: bool) -> Result<(), FaultError> {
        let mut at = start;
        while let Some(v) = self.find_vma_user(at).filter(|v| v.start().as_u64() < end) {
            let (vma_start, vma_end, flags) = (v.start().as_u64(), v.end().as_u64(), v.flags());
            let part_end = vma_end.min(end);
            if !flags.contains(VmaFlags::LOCKONFAULT)
                && let Err(e) = self.populate(vma_start.max(at), part_end)
                && !ignore_errors
            {
                return Err(e);
            }
            at = part_end;
            if at >= end {
                break;
            }
        }
        Ok(())
    }
}

/// The page-aligned range an mlock call covers (Linux `do_mlock`'s
/// `PAGE_ALIGN(len + offset_in_page(start))`, wrapping as Linux's does).
fn lock_range(start: u64, len: u64) -> (u64, u64) {
    let len = page_align(len.wrapping_add(start & (PAGE_SIZE - 1))).unwrap_or(0);
    (align_down(start, PAGE_SIZE), len)
}
