//! The madvise system call (Linux `mm/madvise.c`): advice about how a
//! range will be used, some of which (`MADV_DONTNEED`, `MADV_DONTFORK`)
//! changes what the program sees.
//!
//! Like Linux's `madvise_walk_vmas`, the advice is applied to each VMA part
//! of the range in address order; a hole in the range does not stop the
//! walk but makes the call return `ENOMEM` at the end, and an error on one
//! VMA stops it there with the earlier parts already advised.
//!
//! `MADV_SEQUENTIAL` and `MADV_RANDOM` set `VM_SEQ_READ` or `VM_RAND_READ`
//! (each clearing the other) and `MADV_NORMAL` clears both, splitting and
//! merging VMAs as any flag change does; a file fault reads ahead as they
//! say ([`crate::vma::VmaFlags::ra_advice`]). `MADV_WILLNEED` on a file
//! mapping reads the range's file pages into the page cache
//! ([`crate::vma::VmaFile::willneed`], Linux's `vfs_fadvise(WILLNEED)`).
//!
//! `MADV_COLD` deactivates the pages only this address space maps
//! (`madvise_cold_or_pageout_pte_range`: accessed bits and
//! `PG_referenced` cleared, `folio_deactivate`). `MADV_PAGEOUT`
//! ([`MmStruct::madvise_pageout`], under the mmap lock held for reading,
//! as Linux takes it, so that the reverse-map walk of reclaim reaches the
//! caller's own page tables) isolates those pages and reclaims them at
//! once whatever their references (`reclaim_pages`): anonymous pages go
//! to swap if there is a free slot (their ptes get swap entries, `VmSwap`
//! and `pswpout` rise; the page itself stays in the swap cache until its
//! write ends and reclaim takes it, as on Linux with an asynchronous
//! disk), clean file pages leave their cache, dirty ones are marked for
//! reclaim after writeback.
//!
//! `MADV_FREE` (Linux `madvise_free_pte_range`) drops the swap entries of
//! the range with their slots, and makes each present anonymous page only
//! this address space maps lazily freeable: its pte clean and old, the
//! page clean (out of the swap cache first if no pte holds its slot), on
//! the inactive file list without `PG_swapbacked` (`folio_mark_lazyfree`,
//! `pglazyfree`). Reclaim then drops such a page instead of swapping it
//! (`pglazyfreed`; the next touch reads zeros), unless it was written
//! since, which makes it anonymous memory again: the program sees either
//! its old data or zeros, and keeps what it wrote after the call.
//! `MADV_DONTNEED` zaps: a swapped-out page's entry goes with its slot
//! count (`free_swap_and_cache`).
//!
//! Differences from Linux:
//! - `MADV_WILLNEED` reads with the mmap lock held (Linux drops it around
//!   `vfs_fadvise`) and does nothing for anonymous memory (no swap-in
//!   readahead). `MADV_DONTDUMP` and `MADV_DODUMP` are accepted and
//!   change nothing (no core dump; Linux records `VM_DONTDUMP`).
//! - `MADV_PAGEOUT` drains every CPU's LRU batches first (Linux drains
//!   the caller's CPU's), and through [`MmStruct::madvise`] (the write
//!   lock held, no reclaim context) it only deactivates, as `MADV_COLD`.
//! - `MADV_FREE` runs with the mmap lock held for writing (Linux: for
//!   reading) and leaves a page whose lock it cannot take as it is.
//! - `MADV_COLLAPSE` and the KSM, THP and memory-failure advice are
//!   `EINVAL`, as in a Linux built without those features.
//! - `MADV_REMOVE` zaps the caller's ptes and frees the file's pages
//!   ([`VmaFile::punch_hole`]) with the mmap lock held (Linux drops it).
//!   The file unmaps them from the other address spaces its reverse map
//!   (`i_mmap`) names, trying each one's mmap lock: a page a space whose
//!   lock was taken still maps is zeroed in place rather than freed, so
//!   every mapper reads zeros, as on Linux.
//!
//! `MADV_DONTNEED` on a shared mapping (a file's, or shared anonymous
//! memory, which is a shmem file's) zaps the ptes: dirty ones hand their
//! dirtiness to the file, which keeps the data, and the next touch maps
//! the file's page again.
//!
//! [`VmaFile::punch_hole`]: crate::vma::VmaFile::punch_hole
//!
//! `MADV_WIPEONFORK` marks private anonymous VMAs `VM_WIPEONFORK` (a file
//! or shared VMA is `EINVAL`), so that a fork child gets them empty;
//! `MADV_KEEPONFORK` clears the mark on any VMA.

#![forbid(unsafe_code)]

use uapi::errno::Errno;
use uapi::mman::*;

use crate::addr::{PAGE_SHIFT, VirtAddr};
use crate::arch::FolioWaitTable;
use crate::memory::{FaultAccess, FaultError};
use crate::mmap::{MmStruct, vma_err};
use crate::pgtable::PteFormat;
use crate::uaddr::{RangeError, UserRange};
use crate::vma::{VM_READHINTMASK, VmaAlloc, VmaDesc, VmaFlags};
use crate::vmscan::CacheOwners;

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
            | MADV_REMOVE
            | MADV_COLD
            | MADV_PAGEOUT
            | MADV_POPULATE_READ
            | MADV_POPULATE_WRITE
            | MADV_DONTFORK
            | MADV_DOFORK
            | MADV_DONTDUMP
            | MADV_DODUMP
            | MADV_WIPEONFORK
            | MADV_KEEPONFORK
    )
}

/// The range a madvise call names (Linux `do_madvise`'s checks), with
/// whether its end was cut at the top of user space; `None` for an empty
/// one, which is advised at once.
fn madvise_range(start: u64, len: u64) -> Result<Option<(UserRange, bool)>, Errno> {
    let (range, cut) = match UserRange::from_user_cut(start, len) {
        Ok(r) => r,
        Err(RangeError::Unaligned | RangeError::LenWraps | RangeError::EndWraps) => return Err(Errno::EINVAL),
        // A zero length anywhere is fine; past user space there is
        // no VMA to advise (Linux's walk finds none: ENOMEM).
        Err(RangeError::BeyondTaskSize) if len == 0 => return Ok(None),
        Err(RangeError::BeyondTaskSize) => return Err(Errno::ENOMEM),
    };
    Ok((!range.is_empty()).then_some((range, cut)))
}

/// Linux `madvise_walk_vmas`: calls `visit` on `mm` with each VMA part of
/// `range` in address order (`vma_of` gives the bounds of the first VMA
/// ending above an address); a hole makes the result `ENOMEM` once the
/// walk is done, an error from `visit` stops it.
fn madvise_walk_vmas<M>(
    mm: &mut M,
    range: UserRange,
    cut: bool,
    vma_of: impl Fn(&M, VirtAddr) -> Option<(VirtAddr, VirtAddr)>,
    mut visit: impl FnMut(&mut M, UserRange) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let mut unmapped = cut;
    let mut at = range.start();
    while at < range.end() {
        let Some((vma_start, vma_end)) = vma_of(mm, at.virt()) else { return Err(Errno::ENOMEM) };
        let part = range.from(at).clip_virt(vma_start, vma_end);
        if part.is_empty() {
            unmapped = true;
            break;
        }
        if part.start() > at {
            unmapped = true;
        }
        visit(mm, part)?;
        at = part.end();
    }
    if unmapped { Err(Errno::ENOMEM) } else { Ok(()) }
}

impl<F: PteFormat, A: VmaAlloc> MmStruct<'_, F, A> {
    /// The madvise system call (Linux `do_madvise`), with the mmap lock
    /// held for writing; `MADV_PAGEOUT` needs a reclaim context and the
    /// lock held for reading ([`Self::madvise_pageout`]), and here only
    /// deactivates, as `MADV_COLD`.
    pub fn madvise(&mut self, start: u64, len: u64, advice: i32) -> Result<(), Errno> {
        if !madvise_behavior_valid(advice) {
            return Err(Errno::EINVAL);
        }
        let Some((range, cut)) = madvise_range(start, len)? else { return Ok(()) };
        madvise_walk_vmas(
            self,
            range,
            cut,
            |mm, at| mm.vmas.find_vma(at).map(|v| (v.start(), v.end())),
            |mm, part| mm.madvise_vma(part, advice),
        )
    }

    /// `madvise(MADV_PAGEOUT)` (Linux `madvise_pageout`), with the mmap
    /// lock held for reading: the pages only this address space maps are
    /// reclaimed at once through `owners` ([`Self::madvise_pageout_range`]).
    /// Errors as [`Self::madvise`]'s: `EINVAL` for a locked VMA
    /// (`can_madv_lru_vma`), `ENOMEM` for a hole. A shared file mapping
    /// the caller may not write is skipped (Linux's `can_do_file_pageout`
    /// also lets the file's owner through).
    pub fn madvise_pageout<O: CacheOwners + ?Sized>(
        &self,
        start: u64,
        len: u64,
        owners: &O,
        waits: &dyn FolioWaitTable,
    ) -> Result<(), Errno> {
        let Some((range, cut)) = madvise_range(start, len)? else { return Ok(()) };
        let mut mm = self;
        madvise_walk_vmas(
            &mut mm,
            range,
            cut,
            |mm, at| mm.vmas.find_vma(at).map(|v| (v.start(), v.end())),
            |mm, part| {
                let Some(flags) = mm.vmas.vma_lookup(part.start().virt()).map(|v| v.flags()) else {
                    return Err(Errno::ENOMEM);
                };
                if flags.contains(VmaFlags::LOCKED) {
                    return Err(Errno::EINVAL);
                }
                if !flags.contains(VmaFlags::MAYSHARE) || flags.contains(VmaFlags::MAYWRITE) {
                    mm.madvise_pageout_range(part, owners, waits);
                }
                Ok(())
            },
        )
    }

    /// Applies `advice` to `range`, inside one VMA (Linux
    /// `madvise_vma_behavior`).
    fn madvise_vma(&mut self, range: UserRange, advice: i32) -> Result<(), Errno> {
        let desc = match self.vmas.vma_lookup(range.start().virt()) {
            Some(v) => v.desc(),
            None => return Err(Errno::ENOMEM),
        };
        let (flags, file) = (desc.flags, desc.file);
        let set_flags = |mm: &mut Self, f: &dyn Fn(VmaFlags) -> VmaFlags| {
            mm.sync_max_map_count();
            mm.vmas.modify_flags(range.start().virt(), range.end().virt(), |v| f(v.flags())).map_err(vma_err)
        };
        match advice {
            MADV_DONTNEED | MADV_DONTNEED_LOCKED | MADV_FREE => {
                // Linux `madvise_dontneed_free_valid_vma`.
                if advice != MADV_DONTNEED_LOCKED && flags.contains(VmaFlags::LOCKED) {
                    return Err(Errno::EINVAL);
                }
                // Linux `madvise_free_single_vma`: anonymous memory only.
                if advice == MADV_FREE && (file.is_some() || flags.contains(VmaFlags::MAYSHARE)) {
                    return Err(Errno::EINVAL);
                }
                if advice == MADV_FREE {
                    self.madvise_free(range);
                } else {
                    self.zap_range(&desc, range);
                }
                Ok(())
            }
            MADV_REMOVE => self.madvise_remove(&desc, range),
            // Linux `can_madv_lru_vma`.
            MADV_COLD | MADV_PAGEOUT if flags.contains(VmaFlags::LOCKED) => Err(Errno::EINVAL),
            MADV_COLD | MADV_PAGEOUT => {
                self.madvise_cold(range);
                Ok(())
            }
            MADV_POPULATE_READ | MADV_POPULATE_WRITE => self.madvise_populate(range, advice == MADV_POPULATE_WRITE),
            MADV_DONTFORK => set_flags(self, &|f| f | VmaFlags::DONTCOPY),
            MADV_DOFORK => set_flags(self, &|f| f - VmaFlags::DONTCOPY),
            MADV_WIPEONFORK if file.is_some() || flags.contains(VmaFlags::SHARED) => Err(Errno::EINVAL),
            MADV_WIPEONFORK => set_flags(self, &|f| f | VmaFlags::WIPEONFORK),
            MADV_KEEPONFORK => set_flags(self, &|f| f - VmaFlags::WIPEONFORK),
            MADV_NORMAL => set_flags(self, &|f| f - VM_READHINTMASK),
            MADV_SEQUENTIAL => set_flags(self, &|f| (f - VmaFlags::RAND_READ) | VmaFlags::SEQ_READ),
            MADV_RANDOM => set_flags(self, &|f| (f - VmaFlags::SEQ_READ) | VmaFlags::RAND_READ),
            MADV_WILLNEED => {
                if let Some(file) = file {
                    // Linux `madvise_willneed`: the range's file offset.
                    let offset = (range.start().as_u64() - desc.start.as_u64()) + (desc.pgoff << PAGE_SHIFT);
                    file.willneed(offset, range.len());
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Frees the file pages behind `range`, inside the VMA `desc` (Linux
    /// `madvise_remove`): `EINVAL` for a locked VMA or one without a
    /// file, `EACCES` unless it is shared and may be written, then what
    /// the file's hole punching says. The caller's ptes go first.
    fn madvise_remove(&mut self, desc: &VmaDesc, range: UserRange) -> Result<(), Errno> {
        if desc.flags.contains(VmaFlags::LOCKED) {
            return Err(Errno::EINVAL);
        }
        let Some(file) = desc.file else { return Err(Errno::EINVAL) };
        if !desc.flags.contains(VmaFlags::SHARED | VmaFlags::MAYWRITE) {
            return Err(Errno::EACCES);
        }
        let start = (desc.pgoff << PAGE_SHIFT) + (range.start().as_u64() - desc.start.as_u64());
        self.zap_range(desc, range);
        file.punch_hole(self.pgd.pgdat(), start, start + range.len())
    }

    /// Faults in `[start, end)` for reading or writing (Linux
    /// `madvise_populate`): `EINVAL` where the VMA does not allow it.
    fn madvise_populate(&mut self, range: UserRange, write: bool) -> Result<(), Errno> {
        for addr in range.addrs() {
            let present = self.follow_pte(addr.virt()).is_some_and(|l| {
                !l.prot.contains(crate::pgtable::PgProt::PROTNONE)
                    && (!write || l.prot.contains(crate::pgtable::PgProt::WRITE))
            });
            if !present {
                self.handle_mm_fault_exclusive(addr.virt(), FaultAccess { write, exec: false }).map_err(
                    |e| match e {
                        FaultError::AccErr => Errno::EINVAL,
                        // Linux: `VM_FAULT_SIGBUS` is EFAULT.
                        FaultError::SigBus => Errno::EFAULT,
                        FaultError::MapErr | FaultError::Oom | FaultError::ExpandStack | FaultError::Retry(_) => {
                            Errno::ENOMEM
                        }
                    },
                )?;
            }
        }
        Ok(())
    }
}
