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
//! Argument checks and errno follow Linux's `SYSCALL_DEFINE5(mremap)`,
//! `mremap_to()` and `vma_to_resize()` in order.
//!
//! Differences from Linux:
//! - `old_len == 0` (duplicating a shared mapping) is `EINVAL` for shared
//!   mappings too: without shmem there is nothing to map a second time.
//! - `MREMAP_DONTUNMAP` of a shared anonymous mapping is `EINVAL`: its
//!   pages live only in the page tables, so the old range would lose them
//!   (Linux refaults them from shmem).
//! - No `RLIMIT_MEMLOCK`, `RLIMIT_AS` or overcommit checks (`EAGAIN`,
//!   `ENOMEM` of `mlock_future_ok`/`may_expand_vm`), no userfaultfd, no
//!   sealing.

#![forbid(unsafe_code)]

use uapi::errno::Errno;
use uapi::mman::{MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE};

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, VirtAddr};
use crate::mmap::{MMAP_MIN_ADDR, MmStruct, TASK_SIZE, page_align, vma_err};
use crate::pgtable::PteFormat;
use crate::vma::{VmaAlloc, VmaDesc, VmaFlags};

/// `VM_LOCKED_MASK`.
const VM_LOCKED_MASK: VmaFlags = VmaFlags::LOCKED.union(VmaFlags::LOCKONFAULT);

impl<F: PteFormat, A: VmaAlloc> MmStruct<'_, F, A> {
    /// The mremap system call: resizes `[addr, addr + old_len)` to
    /// `new_len` bytes, moving it if `MREMAP_MAYMOVE` allows and it must
    /// (or to `new_addr` with `MREMAP_FIXED`). Returns the new address.
    pub fn mremap(&mut self, addr: u64, old_len: u64, new_len: u64, flags: u32, new_addr: u64) -> Result<u64, Errno> {
        if flags & !(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP) != 0
            || (flags & MREMAP_FIXED != 0 && flags & MREMAP_MAYMOVE == 0)
            || (flags & MREMAP_DONTUNMAP != 0 && (flags & MREMAP_MAYMOVE == 0 || old_len != new_len))
        {
            return Err(Errno::EINVAL);
        }
        if addr & (PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        // Linux's PAGE_ALIGN wraps a length in the last page to 0.
        let old_len = page_align(old_len).unwrap_or(0);
        let new_len = page_align(new_len).unwrap_or(0);
        if new_len == 0 {
            return Err(Errno::EINVAL);
        }
        if self.find_vma_user(addr).is_none_or(|v| v.start().as_u64() > addr) {
            return Err(Errno::EFAULT);
        }
        if flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 {
            return self.mremap_to(addr, old_len, new_addr, new_len, flags);
        }
        // Always allow a shrinking remap.
        if old_len >= new_len {
            if old_len > new_len {
                self.do_munmap(addr + new_len, old_len - new_len)?;
            }
            return Ok(addr);
        }
        let vma = self.vma_to_resize(addr, old_len, new_len, flags)?;
        // Grow in place if the range ends the VMA and the pages after it
        // are free (Linux `vma_expandable`).
        if old_len == vma.end.as_u64() - addr
            && let Some(new_end) = addr.checked_add(new_len).filter(|&e| e <= TASK_SIZE)
            && self.vmas.expand(vma.start, VirtAddr::new_const(new_end)).is_ok()
        {
            self.mremap_populate(&vma, addr + old_len, new_end);
            return Ok(addr);
        }
        if flags & MREMAP_MAYMOVE == 0 {
            return Err(Errno::ENOMEM);
        }
        let new_addr = self.get_unmapped_area(0, new_len)?;
        self.move_vma(addr, old_len, new_len, new_addr, flags)
    }

    /// The `MREMAP_FIXED` / `MREMAP_DONTUNMAP` path (Linux `mremap_to`).
    fn mremap_to(&mut self, addr: u64, old_len: u64, new_addr: u64, new_len: u64, flags: u32) -> Result<u64, Errno> {
        if new_addr & (PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        if new_len > TASK_SIZE || new_addr > TASK_SIZE - new_len {
            return Err(Errno::EINVAL);
        }
        // The old and new ranges may not overlap.
        if addr.saturating_add(old_len) > new_addr && new_addr + new_len > addr {
            return Err(Errno::EINVAL);
        }
        if flags & MREMAP_FIXED != 0 {
            self.do_munmap(new_addr, new_len)?;
        }
        let mut old_len = old_len;
        if old_len > new_len {
            self.do_munmap(addr + new_len, old_len - new_len)?;
            old_len = new_len;
        }
        self.vma_to_resize(addr, old_len, new_len, flags)?;
        let new_addr = if flags & MREMAP_FIXED != 0 {
            // Linux `get_unmapped_area` with MAP_FIXED: `security_mmap_addr`.
            if new_addr < MMAP_MIN_ADDR {
                return Err(Errno::EPERM);
            }
            new_addr
        } else {
            self.get_unmapped_area(new_addr, new_len)?
        };
        self.move_vma(addr, old_len, new_len, new_addr, flags)
    }

    /// The VMA `[addr, addr + old_len)` lies in, if it may become
    /// `new_len` bytes (Linux `vma_to_resize`).
    fn vma_to_resize(&self, addr: u64, old_len: u64, new_len: u64, flags: u32) -> Result<VmaDesc, Errno> {
        let vma = self.find_vma_user(addr).filter(|v| v.start().as_u64() <= addr).ok_or(Errno::EFAULT)?;
        let desc = vma.desc();
        if old_len == 0 {
            return Err(Errno::EINVAL);
        }
        if flags & MREMAP_DONTUNMAP != 0
            && (desc.flags.contains(VmaFlags::DONTEXPAND)
                || (desc.flags.contains(VmaFlags::SHARED) && desc.file.is_none()))
        {
            return Err(Errno::EINVAL);
        }
        // No remapping across VMA boundaries.
        if old_len > desc.end.as_u64() - addr {
            return Err(Errno::EFAULT);
        }
        if new_len == old_len {
            return Ok(desc);
        }
        let pgoff = desc.pgoff + ((addr - desc.start.as_u64()) >> PAGE_SHIFT);
        if pgoff.checked_add(new_len >> PAGE_SHIFT).is_none() {
            return Err(Errno::EINVAL);
        }
        if desc.flags.contains(VmaFlags::DONTEXPAND) {
            return Err(Errno::EFAULT);
        }
        Ok(desc)
    }

    /// Moves `[addr, addr + old_len)`, which lies in one VMA, to
    /// `new_addr`, a free range of `new_len` bytes (Linux `move_vma`).
    fn move_vma(&mut self, addr: u64, old_len: u64, new_len: u64, new_addr: u64, flags: u32) -> Result<u64, Errno> {
        let old_end = addr + old_len;
        // Make the old range a VMA of its own.
        for at in [addr, old_end] {
            if self.vmas.vma_lookup(VirtAddr::new_const(at)).is_some_and(|v| v.start().as_u64() != at) {
                self.vmas.split(VirtAddr::new_const(at)).map_err(vma_err)?;
            }
        }
        let desc = self.vmas.vma_lookup(VirtAddr::new_const(addr)).map(|v| v.desc()).ok_or(Errno::EFAULT)?;
        self.move_ptes(addr, new_addr, old_len)?;
        let moved = if flags & MREMAP_DONTUNMAP != 0 {
            // The old range stays mapped, empty and unlocked.
            let new =
                VmaDesc { start: VirtAddr::new_const(new_addr), end: VirtAddr::new_const(new_addr + old_len), ..desc };
            self.vmas
                .insert(new)
                .and_then(|()| self.vmas.modify_flags(desc.start, desc.end, |v| v.flags() - VM_LOCKED_MASK))
        } else {
            self.vmas.relocate(desc.start, desc.end, VirtAddr::new_const(new_addr))
        };
        if let Err(e) = moved {
            // The old range's tables exist, so moving back cannot fail.
            let _ = self.move_ptes(new_addr, addr, old_len);
            return Err(vma_err(e));
        }
        if new_len > old_len {
            let start = self.vmas.vma_lookup(VirtAddr::new_const(new_addr)).map(|v| v.start()).ok_or(Errno::EFAULT)?;
            self.vmas.expand(start, VirtAddr::new_const(new_addr + new_len)).map_err(vma_err)?;
            self.mremap_populate(&desc, new_addr + old_len, new_addr + new_len);
        }
        Ok(new_addr)
    }

    /// Faults in the pages a mapping grew by if it is locked (Linux
    /// `mm_populate` after mremap, errors ignored) or shared anonymous
    /// memory, which [`MmStruct::do_mmap`] populates so that fork shares
    /// every page.
    fn mremap_populate(&mut self, vma: &VmaDesc, start: u64, end: u64) {
        if vma.flags.contains(VmaFlags::SHARED) && vma.file.is_none() {
            let _ = self.populate_shared_anon(start, end);
        } else if vma.flags & VM_LOCKED_MASK == VmaFlags::LOCKED {
            let _ = self.populate(start, end);
        }
    }
}
