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
//! `RLIMIT_MEMLOCK` is enforced as Linux does for a caller without
//! `CAP_IPC_LOCK` ([`crate::mmap::MmLimits`]): `EPERM` when the limit is
//! 0, `ENOMEM` past it (mlock, mlock2, mlockall with `MCL_CURRENT` against
//! `total_vm`); mmap with `MAP_LOCKED` and mremap of a locked VMA refuse
//! with `EAGAIN` (`mlock_future_ok`).
//!
//! The pages: a VMA turning locked mlocks the pages it maps (Linux
//! `mlock_vma_pages_range`), and a fault in a locked VMA mlocks the page
//! it maps; both put the page on the unevictable LRU list
//! ([`crate::swap`]'s `mlock_folio`). munlock and the unmapping of a
//! locked VMA munlock them.
//!
//! Differences from Linux:
//! - No per-page `mlock_count` (see `PgData::mlock_folio`): the first
//!   munlock or unmap from a locked VMA clears `PG_mlocked`, and reclaim
//!   marks the page again if its reverse-map walk finds another locked
//!   VMA mapping it.
//! - `locked_vm` is counted from the VMAs when a limit is checked rather
//!   than kept.
//! - `PROT_NONE` VMAs are locked but not populated (Linux faults them in
//!   with `FOLL_FORCE`); the call succeeds either way.

#![forbid(unsafe_code)]

use uapi::errno::Errno;
use uapi::mman::{MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, MLOCK_ONFAULT};

use crate::addr::{PAGE_SHIFT, PAGE_SIZE};
use crate::memory::FaultError;
use crate::mmap::{MmStruct, page_align, vma_err};
use crate::pgtable::PteFormat;
use crate::uaddr::{UserAddr, UserRange};
use crate::vma::{VM_LOCKED_MASK, VmaAlloc, VmaFlags};

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
        self.apply_vma_lock_flags(start, len, VmaFlags::empty()).map(drop)
    }

    /// The mlockall system call: with `MCL_CURRENT`, `ENOMEM` if the
    /// whole address space (`total_vm`, as Linux compares) is over
    /// `RLIMIT_MEMLOCK` without `CAP_IPC_LOCK`.
    pub fn mlockall(&mut self, flags: u32) -> Result<(), Errno> {
        if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT {
            return Err(Errno::EINVAL);
        }
        if !self.can_do_mlock() {
            return Err(Errno::EPERM);
        }
        let limit = self.limits.memlock.rlim_cur >> PAGE_SHIFT;
        if flags & MCL_CURRENT != 0 && self.total_vm() > limit && !self.limits.cap_ipc_lock {
            return Err(Errno::ENOMEM);
        }
        self.apply_mlockall_flags(flags);
        if flags & MCL_CURRENT != 0 {
            let _ = self.mm_populate(UserRange::ALL, true);
        }
        Ok(())
    }

    /// The munlockall system call.
    pub fn munlockall(&mut self) -> Result<(), Errno> {
        self.apply_mlockall_flags(0);
        Ok(())
    }

    /// Linux `do_mlock`: `EPERM` if the caller may not lock at all,
    /// `ENOMEM` if the pages locked after the call (those of the range
    /// already locked not counted twice) would pass `RLIMIT_MEMLOCK`
    /// without `CAP_IPC_LOCK`.
    fn do_mlock(&mut self, start: u64, len: u64, flags: VmaFlags) -> Result<(), Errno> {
        if !self.can_do_mlock() {
            return Err(Errno::EPERM);
        }
        let (start, len) = lock_range(start, len);
        let limit = self.limits.memlock.rlim_cur >> PAGE_SHIFT;
        let mut locked = (len >> PAGE_SHIFT).saturating_add(self.locked_pages(UserRange::ALL));
        if locked > limit && !self.limits.cap_ipc_lock {
            let (range, _) = UserRange::from_user_cut(start, len).unwrap_or((UserRange::EMPTY, false));
            locked -= self.locked_pages(range).min(locked);
            if locked > limit {
                return Err(Errno::ENOMEM);
            }
        }
        let range = self.apply_vma_lock_flags(start, len, flags)?;
        // Linux `__mlock_posix_error_return`: EFAULT becomes ENOMEM and
        // ENOMEM EAGAIN.
        self.mm_populate(range, false).map_err(|e| match e {
            FaultError::Oom => Errno::EAGAIN,
            FaultError::MapErr
            | FaultError::AccErr
            | FaultError::ExpandStack
            | FaultError::Retry(_)
            | FaultError::SigBus => Errno::ENOMEM,
        })
    }

    /// Gives the VMAs of `[start, start + len)` the lock flags `flags`,
    /// stopping with `ENOMEM` at a hole (Linux `apply_vma_lock_flags`):
    /// `start` and `len` are page-aligned. Returns the range changed
    /// (empty for a zero length).
    fn apply_vma_lock_flags(&mut self, start: u64, len: u64, flags: VmaFlags) -> Result<UserRange, Errno> {
        if start.checked_add(len).is_none() {
            return Err(Errno::EINVAL);
        }
        // A range past user space runs out of VMAs there.
        let (range, cut) = match UserRange::from_user_cut(start, len) {
            Ok(r) => r,
            Err(_) if len == 0 => return Ok(UserRange::EMPTY),
            Err(_) => return Err(Errno::ENOMEM),
        };
        let mut at = range.start();
        while at < range.end() {
            let part = match self.vmas.vma_lookup(at.virt()) {
                Some(v) => range.from(at).clip_virt(v.start(), v.end()),
                None => return Err(Errno::ENOMEM),
            };
            self.mlock_fixup(part, flags)?;
            at = part.end();
        }
        if cut { Err(Errno::ENOMEM) } else { Ok(range) }
    }

    /// Sets the lock flags of `range`, inside one VMA (Linux
    /// `mlock_fixup`). `VM_SPECIAL` VMAs are never locked. When
    /// `VM_LOCKED` turns on or off, the pages present in the range are
    /// mlocked or munlocked (Linux `mlock_vma_pages_range`); the others
    /// are when they are faulted in.
    fn mlock_fixup(&mut self, range: UserRange, flags: VmaFlags) -> Result<(), Errno> {
        let Some(old) = self.vmas.vma_lookup(range.start().virt()).map(|v| v.flags()) else {
            return Err(Errno::ENOMEM);
        };
        if (old - VM_LOCKED_MASK) | flags == old || old.contains(VmaFlags::DONTEXPAND) {
            return Ok(());
        }
        self.sync_max_map_count();
        self.vmas
            .modify_flags(range.start().virt(), range.end().virt(), |v| (v.flags() - VM_LOCKED_MASK) | flags)
            .map_err(vma_err)?;
        let locking = flags.contains(VmaFlags::LOCKED);
        if old.contains(VmaFlags::LOCKED) != locking {
            self.mlock_pte_range(range, locking);
        }
        Ok(())
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
        let mut at = UserAddr::ZERO;
        while let Some(part) = self.vmas.find_vma(at.virt()).and_then(|v| UserRange::of(v.start(), v.end())) {
            let _ = self.mlock_fixup(part, to_add);
            at = part.end();
        }
    }

    /// Faults in the locked VMAs of `range` that do not lock on fault
    /// (Linux `__mm_populate`); holes are skipped, and so are errors if
    /// `ignore_errors`.
    fn mm_populate(&mut self, range: UserRange, ignore_errors: bool) -> Result<(), FaultError> {
        let mut at = range.start();
        while at < range.end() {
            let Some((part, flags)) =
                self.vmas.find_vma(at.virt()).map(|v| (range.from(at).clip_virt(v.start(), v.end()), v.flags()))
            else {
                break;
            };
            if part.is_empty() {
                break;
            }
            if !flags.contains(VmaFlags::LOCKONFAULT)
                && let Err(e) = self.populate(part)
                && !ignore_errors
            {
                return Err(e);
            }
            at = part.end();
        }
        Ok(())
    }
}

/// The page-aligned range an mlock call covers (Linux `do_mlock`'s
/// `PAGE_ALIGN(len + offset_in_page(start))`, wrapping as Linux's does).
fn lock_range(start: u64, len: u64) -> (u64, u64) {
    let len = page_align(len.wrapping_add(start & (PAGE_SIZE - 1))).unwrap_or(0);
    (start & !(PAGE_SIZE - 1), len)
}
