//! The madvise system call (Linux `mm/madvise.c`): advice about how a
//! range will be used, some of which (`MADV_DONTNEED`, `MADV_DONTFORK`)
//! changes what the program sees.
//!
//! Like Linux's `madvise_walk_vmas`, the advice is applied to each VMA part
//! of the range in address order; a hole in the range does not stop the
//! walk but makes the call return `ENOMEM` at the end, and an error on one
//! VMA stops it there with the earlier parts already advised.
//!
//! Differences from Linux:
//! - `MADV_NORMAL`, `MADV_RANDOM`, `MADV_SEQUENTIAL`, `MADV_WILLNEED`,
//!   `MADV_COLD`, `MADV_PAGEOUT`, `MADV_DONTDUMP` and `MADV_DODUMP` are
//!   accepted and change nothing: there is no readahead, swap, reclaim or
//!   core dump to steer (Linux records `VM_RAND_READ`, `VM_SEQ_READ`,
//!   `VM_DONTDUMP`).
//! - `MADV_FREE` frees at once, as `MADV_DONTNEED` does (Linux frees
//!   lazily, which its contract allows either way).
//! - `MADV_DONTNEED` leaves `VM_SHARED` mappings alone: their pages live
//!   only in the page tables (no shmem or page cache to refault them
//!   from), and keeping them is what a Linux program sees after the refault.
//! - `MADV_REMOVE`, `MADV_WIPEONFORK`/`KEEPONFORK`, `MADV_COLLAPSE` and the
//!   KSM, THP and memory-failure advice are `EINVAL`, as in a Linux built
//!   without those features.

#![forbid(unsafe_code)]

use uapi::errno::Errno;
use uapi::mman::*;

use crate::addr::{PAGE_SIZE, VirtAddr};
use crate::memory::{FaultAccess, FaultError};
use crate::mmap::{MmStruct, page_align, vma_err};
use crate::pgtable::PteFormat;
use crate::vma::{VmaAlloc, VmaFlags};

/// Whether `advice` is one we know (Linux `madvise_behavior_valid`).
fn madvise_behavior_valid(advice: i32) -> bool {
    matches!(
        advice,
        MADV_NORMAL
            | MADV_RANDOM
            | MADV_SEQUENTIAL
            | MADV_WILLNEED
            | MADV_DONTNEED
            | MADV_DONTNEED_LOCKED
            | MADV_FREE
            | MADV_COLD
            | MADV_PAGEOUT
            | MADV_POPULATE_READ
            | MADV_POPULATE_WRITE
            | MADV_DONTFORK
            | MADV_DOFORK
            | MADV_DONTDUMP
            | MADV_DODUMP
    )
}

impl<F: PteFormat, A: VmaAlloc> MmStruct<'_, F, A> {
    /// The madvise system call (Linux `do_madvise`).
    pub fn madvise(&mut self, start: u64, len: u64, advice: i32) -> Result<(), Errno> {
        if !madvise_behavior_valid(advice) || start & (PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        // Linux's PAGE_ALIGN wraps a length in the last page to 0.
        let aligned = page_align(len).unwrap_or(0);
        if len != 0 && aligned == 0 {
            return Err(Errno::EINVAL);
        }
        let end = start.checked_add(aligned).ok_or(Errno::EINVAL)?;
        if end == start {
            return Ok(());
        }
        let mut unmapped = false;
        let mut at = start;
        loop {
            let (vma_start, vma_end) = match self.find_vma_user(at) {
                Some(v) => (v.start().as_u64(), v.end().as_u64()),
                None => return Err(Errno::ENOMEM),
            };
            if at < vma_start {
                unmapped = true;
                at = vma_start;
                if at >= end {
                    break;
                }
            }
            let part_end = vma_end.min(end);
            self.madvise_vma(at, part_end, advice)?;
            at = part_end;
            if at >= end {
                break;
            }
        }
        if unmapped { Err(Errno::ENOMEM) } else { Ok(()) }
    }

    /// Applies `advice` to `[start, end)`, inside one VMA (Linux
    /// `madvise_vma_behavior`).
    fn madvise_vma(&mut self, start: u64, end: u64, advice: i32) -> Result<(), Errno> {
        let (flags, file) = match self.vmas.vma_lookup(VirtAddr::new_const(start)) {
            Some(v) => (v.flags(), v.file()),
            None => return Err(Errno::ENOMEM),
        };
        match advice {
            MADV_DONTNEED | MADV_DONTNEED_LOCKED | MADV_FREE => {
                // Linux `madvise_dontneed_free_valid_vma`.
                if advice != MADV_DONTNEED_LOCKED && flags.contains(VmaFlags::LOCKED) {
                    return Err(Errno::EINVAL);
                }
                let shared = flags.contains(VmaFlags::SHARED);
                // Linux `madvise_free_single_vma`: anonymous memory only.
                if advice == MADV_FREE && (file.is_some() || flags.contains(VmaFlags::MAYSHARE)) {
                    return Err(Errno::EINVAL);
                }
                if !shared {
                    self.zap_range(start, end);
                }
                Ok(())
            }
            // Linux `can_madv_lru_vma`.
            MADV_COLD | MADV_PAGEOUT if flags.contains(VmaFlags::LOCKED) => Err(Errno::EINVAL),
            MADV_POPULATE_READ | MADV_POPULATE_WRITE => {
                self.madvise_populate(start, end, advice == MADV_POPULATE_WRITE)
            }
            MADV_DONTFORK => self
                .vmas
                .modify_flags(VirtAddr::new_const(start), VirtAddr::new_const(end), |v| v.flags() | VmaFlags::DONTCOPY)
                .map_err(vma_err),
            MADV_DOFORK => self
                .vmas
                .modify_flags(VirtAddr::new_const(start), VirtAddr::new_const(end), |v| v.flags() - VmaFlags::DONTCOPY)
                .map_err(vma_err),
            _ => Ok(()),
        }
    }

    /// Faults in `[start, end)` for reading or writing (Linux
    /// `madvise_populate`): `EINVAL` where the VMA does not allow it.
    fn madvise_populate(&mut self, start: u64, end: u64, write: bool) -> Result<(), Errno> {
        let mut addr = start;
        while addr < end {
            let present = self.follow_pte(VirtAddr::new_const(addr)).is_some_and(|l| {
                !l.prot.contains(crate::pgtable::PgProt::PROTNONE)
                    && (!write || l.prot.contains(crate::pgtable::PgProt::WRITE))
            });
            if !present {
                self.handle_mm_fault(VirtAddr::new_const(addr), FaultAccess { write, exec: false }).map_err(
                    |e| match e {
                        FaultError::AccErr => Errno::EINVAL,
                        FaultError::MapErr | FaultError::Oom => Errno::ENOMEM,
                    },
                )?;
            }
            addr += PAGE_SIZE;
        }
        Ok(())
    }
}
