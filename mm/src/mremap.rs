//! The mremap system call (Linux `mm/mremap.c`): shrink a mapping in
//! place, grow it in place when the range after it is free, or move it,
//! page tables and all, to a new address.
//!
//! A move never copies a page: the VMA is relocated
//! ([`crate::vma::VmaTree::relocate`]) and its ptes are moved (Linux
//! `move_page_tables`), so every page keeps its frame, reference count,
//! mapcount and rmap index (the VMA keeps its `pgoff`), and RSS does not
//! change. The page tables move first: if the
//! destination's tables cannot be allocated, nothing has changed.
//!
//! Argument checks and errno follow Linux's `check_mremap_params()` (all
//! checks of the arguments alone, the new address's alignment and the
//! overlap of old and new ranges included, come before the old VMA is
//! looked up, as in Linux 6.16 and later), `mremap_to()` and
//! `vma_to_resize()` (`RLIMIT_MEMLOCK` for a locked VMA, `EAGAIN`;
//! `RLIMIT_AS`/`RLIMIT_DATA`, `ENOMEM`). Growing in place merges with the
//! following VMA when it becomes adjacent and compatible, as Linux's
//! `vma_merge` of the extension does. `MREMAP_DONTUNMAP` clears the lock
//! flags of the whole old VMA, not only of the moved range (Linux
//! `dontunmap_complete`).
//!
//! Differences from Linux:
//! - A move whose old range runs past its VMA is `EFAULT`, found before
//!   anything is unmapped. Linux 6.1 unmaps the `MREMAP_FIXED`
//!   destination first and then fails; Linux 6.17 and later move such a
//!   range when it spans several VMAs (`old_len == new_len`), which we do
//!   not.
//! - No userfaultfd or sealing.
//!
//! Overcommit accounting (see [`crate::mmap`]): a `VM_ACCOUNT` mapping's
//! growth is charged before it happens, in place or by a move (Linux
//! `vrm_charge`/`move_vma`'s `to_account`), and uncharged if the call then
//! fails; `MREMAP_DONTUNMAP` charges the whole new copy, since the old
//! VMA stays charged. A move carries the VMA's charge with it (the VMA is
//! relocated, flags and all); shrinking uncharges the unmapped tail.
//!
//! `old_len == 0` duplicates a shared mapping (Linux's "duplicate shm
//! area" case, refused for private mappings as Linux 6.5 and later do):
//! with `MREMAP_MAYMOVE` a new VMA maps the same file pages from the same
//! offset at the new address and the old one stays. A shared anonymous
//! mapping is its shmem file's ([`crate::shmem`]): moved, duplicated or
//! left behind empty by `MREMAP_DONTUNMAP`, it refaults the file's pages;
//! grown, its pages past the file's end are `SIGBUS`, as on Linux.

#![forbid(unsafe_code)]

use uapi::errno::Errno;
use uapi::mman::{MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE};

use crate::addr::{PAGE_SHIFT, PAGE_SIZE};
use crate::mmap::{MmStruct, TASK_SIZE, page_align, vma_err};
use crate::pgtable::PteFormat;
use crate::uaddr::{UserAddr, UserRange};
use crate::vma::{VM_LOCKED_MASK, VmaAlloc, VmaDesc, VmaFlags};

impl<F: PteFormat, A: VmaAlloc> MmStruct<'_, F, A> {
    /// The mremap system call: resizes `[addr, addr + old_len)` to
    /// `new_len` bytes, moving it if `MREMAP_MAYMOVE` allows and it must
    /// (or to `new_addr` with `MREMAP_FIXED`). Returns the new address.
    pub fn mremap(&mut self, addr: u64, old_len: u64, new_len: u64, flags: u64, new_addr: u64) -> Result<u64, Errno> {
        // Linux `check_mremap_params`; the flags are an unsigned long.
        let known = u64::from(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
        if flags & !known != 0 {
            return Err(Errno::EINVAL);
        }
        let flags = (flags & known) as u32;
        if addr & (PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        // Linux's PAGE_ALIGN wraps a length in the last page to 0.
        let old_len = page_align(old_len).unwrap_or(0);
        let new_len = page_align(new_len).unwrap_or(0);
        if new_len == 0 || new_len > TASK_SIZE {
            return Err(Errno::EINVAL);
        }
        let max_map_count = self.sync_max_map_count();
        let implies_new_addr = flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0;
        let mut target = None;
        if implies_new_addr {
            if new_addr > TASK_SIZE - new_len {
                return Err(Errno::EINVAL);
            }
            let start = UserAddr::new(new_addr).map_err(|_| Errno::EINVAL)?;
            if flags & MREMAP_MAYMOVE == 0 || (flags & MREMAP_DONTUNMAP != 0 && old_len != new_len) {
                return Err(Errno::EINVAL);
            }
            let new = UserRange::at(start, new_len).ok_or(Errno::EINVAL)?;
            // The ranges may not overlap (Linux `vrm_overlaps`, on sums
            // that wrap as Linux's unsigned longs do).
            if addr.wrapping_add(old_len) > new.start().as_u64() && new.end().as_u64() > addr {
                return Err(Errno::EINVAL);
            }
            if self.vmas.map_count() + 2 >= max_map_count.saturating_sub(3) {
                return Err(Errno::ENOMEM);
            }
            target = Some(new);
        }
        // Beyond user space there is no VMA either.
        let addr = UserAddr::new(addr).map_err(|_| Errno::EFAULT)?;
        if self.vmas.vma_lookup(addr.virt()).is_none() {
            return Err(Errno::EFAULT);
        }
        if let Some(new) = target {
            return self.mremap_to(addr, old_len, new, flags);
        }
        // Always allow a shrinking remap.
        if old_len >= new_len {
            if old_len > new_len {
                let tail = addr.checked_add(new_len).zip(addr.checked_add(old_len));
                let tail = tail.and_then(|(s, e)| UserRange::new(s, e)).ok_or(Errno::EINVAL)?;
                self.munmap_range(tail)?;
            }
            return Ok(addr.as_u64());
        }
        let vma = self.vma_to_resize(addr, old_len, new_len, flags)?;
        // Grow in place if the range ends the VMA and the pages after it
        // are free (Linux `vma_expandable`).
        if let Some(old_end) = addr.checked_add(old_len).filter(|e| e.virt() == vma.end)
            && let Some(grown) = addr.checked_add(new_len).and_then(|new_end| UserRange::new(old_end, new_end))
            && !self.vmas.range(grown.start().virt(), grown.end().virt()).any(|_| true)
        {
            let charged = if vma.flags.contains(VmaFlags::ACCOUNT) { grown.pages() } else { 0 };
            self.security_vm_enough_memory_mm(charged)?;
            if self.vmas.expand(vma.start, grown.end().virt()).is_ok() {
                self.mremap_populate(&vma, grown);
                return Ok(addr.as_u64());
            }
            self.vm_unacct_memory(charged);
        }
        if flags & MREMAP_MAYMOVE == 0 {
            return Err(Errno::ENOMEM);
        }
        let new = self.get_unmapped_area(0, new_len, false)?;
        let old = UserRange::at(addr, old_len).ok_or(Errno::EFAULT)?;
        self.move_vma(old, new, flags)
    }

    /// The `MREMAP_FIXED` / `MREMAP_DONTUNMAP` path (Linux `mremap_to`):
    /// `new` is checked against the old range already. The old VMA is
    /// checked before anything is unmapped (Linux 6.17+ `check_prep_vma`),
    /// so a call that fails leaves the destination mapped.
    fn mremap_to(&mut self, addr: UserAddr, old_len: u64, new: UserRange, flags: u32) -> Result<u64, Errno> {
        let kept = old_len.min(new.len());
        let vma = self.vma_to_resize(addr, kept, new.len(), flags)?;
        if flags & MREMAP_FIXED != 0 {
            self.munmap_range(new)?;
        }
        if old_len > new.len() {
            // Linux `do_munmap` of the old tail: EINVAL past user space.
            let tail = addr.checked_add(new.len()).zip(addr.checked_add(old_len));
            self.munmap_range(tail.and_then(|(s, e)| UserRange::new(s, e)).ok_or(Errno::EINVAL)?)?;
        }
        let old_len = kept;
        // MREMAP_DONTUNMAP grows the address space by the whole length.
        if flags & MREMAP_DONTUNMAP != 0 && !self.may_expand_vm(vma.flags, old_len >> PAGE_SHIFT) {
            return Err(Errno::ENOMEM);
        }
        let new = self.get_unmapped_area(new.start().as_u64(), new.len(), flags & MREMAP_FIXED != 0)?;
        let old = UserRange::at(addr, old_len).ok_or(Errno::EFAULT)?;
        self.move_vma(old, new, flags)
    }

    /// The VMA `[addr, addr + old_len)` lies in, if it may become
    /// `new_len` bytes (Linux `vma_to_resize`).
    fn vma_to_resize(&self, addr: UserAddr, old_len: u64, new_len: u64, flags: u32) -> Result<VmaDesc, Errno> {
        let vma = self.vmas.vma_lookup(addr.virt()).ok_or(Errno::EFAULT)?;
        let desc = vma.desc();
        // Only a shared mapping can be duplicated (Linux `check_prep_vma`).
        if old_len == 0 && !desc.flags.intersects(VmaFlags::SHARED | VmaFlags::MAYSHARE) {
            return Err(Errno::EINVAL);
        }
        if flags & MREMAP_DONTUNMAP != 0 && desc.flags.contains(VmaFlags::DONTEXPAND) {
            return Err(Errno::EINVAL);
        }
        // No remapping across VMA boundaries.
        if old_len > desc.end.as_u64() - addr.as_u64() {
            return Err(Errno::EFAULT);
        }
        if new_len == old_len {
            return Ok(desc);
        }
        let pgoff = desc.pgoff + ((addr.as_u64() - desc.start.as_u64()) >> PAGE_SHIFT);
        if pgoff.checked_add(new_len >> PAGE_SHIFT).is_none() {
            return Err(Errno::EINVAL);
        }
        if desc.flags.contains(VmaFlags::DONTEXPAND) {
            return Err(Errno::EFAULT);
        }
        let grow = new_len.saturating_sub(old_len);
        if desc.flags.contains(VmaFlags::LOCKED) && !self.mlock_future_ok(desc.flags, grow) {
            return Err(Errno::EAGAIN);
        }
        if !self.may_expand_vm(desc.flags, grow >> PAGE_SHIFT) {
            return Err(Errno::ENOMEM);
        }
        Ok(desc)
    }

    /// Moves `old`, which lies in one VMA, to `new`, a free range at least
    /// as long (Linux `move_vma`); the part of `new` past `old`'s length is
    /// the growth.
    fn move_vma(&mut self, old: UserRange, new: UserRange, flags: u32) -> Result<u64, Errno> {
        // Room for the splits (Linux's `map_count >= max - 3`).
        if self.vmas.map_count() >= self.vmas.max_map_count().saturating_sub(3) {
            return Err(Errno::ENOMEM);
        }
        if old.is_empty() {
            return self.dup_vma(old.start(), new);
        }
        // The growth is charged, or all of the copy that MREMAP_DONTUNMAP
        // leaves beside the old VMA (Linux `move_vma`'s `to_account`).
        let accounted = self.vmas.vma_lookup(old.start().virt()).is_some_and(|v| v.flags().contains(VmaFlags::ACCOUNT));
        let to_account = match (accounted, flags & MREMAP_DONTUNMAP != 0) {
            (false, _) => 0,
            (true, true) => new.pages(),
            (true, false) => new.pages() - old.pages(),
        };
        self.security_vm_enough_memory_mm(to_account)?;
        self.move_vma_charged(old, new, flags).inspect_err(|_| self.vm_unacct_memory(to_account))
    }

    /// [`Self::move_vma`] once the move is charged.
    fn move_vma_charged(&mut self, old: UserRange, new: UserRange, flags: u32) -> Result<u64, Errno> {
        let whole = self.vmas.vma_lookup(old.start().virt()).map(|v| (v.start(), v.end())).ok_or(Errno::EFAULT)?;
        // Make the old range a VMA of its own.
        for at in [old.start(), old.end()] {
            if self.vmas.vma_lookup(at.virt()).is_some_and(|v| v.start() != at.virt()) {
                self.vmas.split(at.virt()).map_err(vma_err)?;
            }
        }
        let desc = self.vmas.vma_lookup(old.start().virt()).map(|v| v.desc()).ok_or(Errno::EFAULT)?;
        let moved = old.moved_to(new.start()).ok_or(Errno::EFAULT)?;
        self.move_ptes(old, moved)?;
        let mut copied = false;
        let relinked = if flags & MREMAP_DONTUNMAP != 0 {
            // The old VMA stays mapped, empty and unlocked, all of it.
            let copy = VmaDesc { start: moved.start().virt(), end: moved.end().virt(), ..desc };
            self.vmas.insert_copy(copy, desc.start).and_then(|()| {
                copied = true;
                self.vmas.modify_flags(whole.0, whole.1, |v| v.flags() - VM_LOCKED_MASK)
            })
        } else {
            self.vmas.relocate(desc.start, desc.end, moved.start().virt())
        };
        if let Err(e) = relinked {
            // The old range's tables exist, so moving back cannot fail;
            // the copy, empty again, goes.
            let _ = self.move_ptes(moved, old);
            if copied {
                let _ = self.vmas.munmap_range(moved.start().virt(), moved.end().virt(), |_| {});
            }
            return Err(vma_err(e));
        }
        if new.len() > old.len() {
            let start = self.vmas.vma_lookup(new.start().virt()).map(|v| v.start()).ok_or(Errno::EFAULT)?;
            self.vmas.expand(start, new.end().virt()).map_err(vma_err)?;
            self.mremap_populate(&desc, new.from(moved.end()));
        }
        Ok(new.start().as_u64())
    }

    /// Maps the file pages that the shared VMA maps at `addr` onward a
    /// second time, at `new` (Linux `move_vma` of zero bytes: `copy_vma`
    /// makes the new VMA, no pte moves and the old VMA stays). The new VMA
    /// faults the file's pages in itself; a locked one is populated.
    fn dup_vma(&mut self, addr: UserAddr, new: UserRange) -> Result<u64, Errno> {
        let desc = self.vmas.vma_lookup(addr.virt()).map(|v| v.desc()).ok_or(Errno::EFAULT)?;
        let pgoff = desc.pgoff + ((addr.as_u64() - desc.start.as_u64()) >> PAGE_SHIFT);
        let copy = VmaDesc { start: new.start().virt(), end: new.end().virt(), pgoff, ..desc };
        self.vmas.insert(copy).map_err(vma_err)?;
        self.mremap_populate(&desc, new);
        Ok(new.start().as_u64())
    }

    /// Faults in the pages a mapping grew by if it is locked (Linux
    /// `mm_populate` after mremap, errors ignored).
    fn mremap_populate(&mut self, vma: &VmaDesc, grown: UserRange) {
        if vma.flags & VM_LOCKED_MASK == VmaFlags::LOCKED {
            let _ = self.populate(grown);
        }
    }
}
