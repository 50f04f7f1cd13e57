//! Page faults and the page-table side of user address spaces (Linux
//! `mm/memory.c`: `handle_mm_fault`, `do_anonymous_page`, `do_wp_page`,
//! `do_read_fault`/`do_cow_fault`, `zap_pte_range`, `copy_pte_range`; and
//! `mm/mprotect.c`'s `change_pte_range`, `mm/mremap.c`'s `move_ptes`).
//!
//! User ptes are 4 KiB leaves in the address space's
//! [`PageTable`](crate::pgtable::PageTable): present with the VMA's rights,
//! or [`PgProt::PROTNONE`] for a page of a `PROT_NONE` VMA (Linux's
//! `_PAGE_PROTNONE`), or none. Faults:
//!
//! - none, anonymous VMA: a read maps the shared zero page read-only, a
//!   write a new zeroed page (Linux `do_anonymous_page`);
//! - none, file VMA: a new page filled from the file (zeroed past its end).
//!   A read of a private mapping maps it read-only and leaves it a "file"
//!   page; a write maps it writable as an anonymous page. Linux maps the
//!   page-cache page on a read and copies on the write; without a page
//!   cache each mapping gets its own copy at once.
//! - present, write to a read-only pte of a writable VMA: copy-on-write
//!   (Linux `do_wp_page`): the zero page is replaced by a zeroed page; a page
//!   only we hold (refcount 1) is reused in place; anything else is copied.
//!
//! Counters ([`crate::vmstat`]): every fault that gets past the VMA and
//! access checks counts `pgfault`; a fault that reads file data counts
//! `pgmajfault` (without a page cache every file fault reads, which Linux
//! calls major); a write fault that makes the present page writable in
//! place counts `pgreuse`. Mapped pages count in `nr_anon_pages` and
//! `nr_mapped` through [`crate::rmap`].
//!
//! Pages freed by zapping are returned at once, before the TLB flush that
//! `TlbGather::finish` does: safe because an address space is loaded on at
//! most one CPU, the one doing the zap, which touches no user memory until
//! the flush (Linux batches the pages in the `mmu_gather` instead).

use core::ops::ControlFlow;
use core::sync::atomic::{AtomicU64, Ordering};

use log::error;
use uapi::errno::Errno;

use crate::addr::{PAGE_SIZE, Pfn, VirtAddr};
use crate::gfp::{GFP_HIGHUSER_MOVABLE, Gfp};
use crate::highmem;
use crate::mmap::{MmCounter, MmStruct};
use crate::pgtable::{Entry, Leaf, Level, PTRS_PER_TABLE, PageSize, PgProt, PteFormat, TlbGather};
use crate::rmap;
use crate::uaddr::{UserAddr, UserRange};
use crate::vma::{Vma, VmaAlloc, VmaFlags};
use crate::vmstat::VmEventItem;

/// What a faulting access was (Linux `FAULT_FLAG_*` and the x86 error code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultAccess {
    /// A write.
    pub write: bool,
    /// An instruction fetch.
    pub exec: bool,
}

/// Why a fault could not be resolved (Linux `VM_FAULT_SIGSEGV` with its
/// `si_code`, `VM_FAULT_OOM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// No VMA covers the address (`SEGV_MAPERR`).
    MapErr,
    /// The VMA forbids the access (`SEGV_ACCERR`).
    AccErr,
    /// No memory for a page or a page table.
    Oom,
}

/// The pte protection for a VMA's flags (Linux `vm_get_page_prot`):
/// readable implied, write and exec as the flags say, `PROT_NONE` as
/// [`PgProt::PROTNONE`]. Private writable mappings are mapped read-only
/// until written (copy-on-write) by the fault code, not here.
pub fn vm_get_page_prot(flags: VmaFlags) -> PgProt {
    let mut prot = PgProt::USER | PgProt::ACCESSED;
    if !flags.intersects(VmaFlags::READ | VmaFlags::WRITE | VmaFlags::EXEC) {
        return prot | PgProt::PROTNONE;
    }
    if flags.contains(VmaFlags::WRITE) {
        prot |= PgProt::WRITE;
    }
    if flags.contains(VmaFlags::EXEC) {
        prot |= PgProt::EXEC;
    }
    prot
}

/// Linux `linear_page_index`: the page index of `addr` in `vma`'s object.
fn linear_page_index(vma: &Vma, addr: u64) -> u64 {
    vma.pgoff() + ((addr - vma.start().as_u64()) >> crate::PAGE_SHIFT)
}

impl<'a, F: PteFormat, A: VmaAlloc> MmStruct<'a, F, A> {
    fn leaf(&self, raw: u64) -> Option<Leaf> {
        match self.pgd.format().decode(raw, Level::Pte) {
            Entry::Leaf(leaf) => Some(leaf),
            _ => None,
        }
    }

    fn encode(&self, pfn: Pfn, prot: PgProt) -> u64 {
        self.pgd.format().encode_leaf(Leaf { phys: pfn.phys(), prot, size: PageSize::Size4K })
    }

    fn new_user_page(&self, gfp: Gfp) -> Result<Pfn, FaultError> {
        self.pgd.pgdat().alloc_pages(GFP_HIGHUSER_MOVABLE | gfp, 0).ok_or(FaultError::Oom)
    }

    /// The direct-map address of a user page's first byte.
    fn page_ptr(&self, pfn: Pfn) -> Result<*mut u8, FaultError> {
        let virt = self.pgd.pgdat().page_address(pfn).ok_or(FaultError::Oom)?;
        Ok(virt.as_mut_ptr::<u8>())
    }

    /// Resolves a fault at `addr` (Linux `handle_mm_fault` with the VMA
    /// lookup and access checks of x86's `do_user_addr_fault`), growing a
    /// stack VMA first if `addr` is just below one.
    pub fn handle_mm_fault(&mut self, addr: VirtAddr, access: FaultAccess) -> Result<(), FaultError> {
        // No VMA lies outside user space.
        let page = UserAddr::page_down(addr.as_u64()).ok_or(FaultError::MapErr)?;
        let addr = page.as_u64();
        let vma = match self.vmas.find_vma(page.virt()) {
            Some(v) if v.start().as_u64() <= addr => v,
            Some(v) if v.flags().contains(VmaFlags::GROWSDOWN) => {
                let start = v.start();
                self.expand_stack(start, page)?;
                self.vmas.vma_lookup(page.virt()).ok_or(FaultError::MapErr)?
            }
            _ => return Err(FaultError::MapErr),
        };
        let flags = vma.flags();
        let allowed = if access.write {
            flags.contains(VmaFlags::WRITE)
        } else if access.exec {
            flags.contains(VmaFlags::EXEC)
        } else {
            flags.intersects(VmaFlags::READ | VmaFlags::WRITE | VmaFlags::EXEC)
        };
        if !allowed {
            return Err(FaultError::AccErr);
        }
        // Where Linux's arch code hands the fault to `handle_mm_fault`.
        self.pgd.pgdat().count_vm_event(VmEventItem::Pgfault);
        let desc = vma.desc();
        let index = linear_page_index(vma, addr);
        let slot = self.pgd.pte_offset(page.virt(), true).map_err(|_| FaultError::Oom)?;
        let Some(slot) = slot else { return Err(FaultError::Oom) };
        let raw = slot.load(Ordering::Acquire);
        match self.leaf(raw) {
            None => self.do_pte_missing(slot, &desc, index, access.write),
            Some(leaf) if leaf.prot.contains(PgProt::PROTNONE) => Err(FaultError::AccErr),
            Some(leaf) if access.write && !leaf.prot.contains(PgProt::WRITE) => {
                self.do_wp_page(slot, raw, leaf, desc.flags, index, addr)
            }
            // Spurious: another path already fixed it (Linux
            // `flush_tlb_fix_spurious_fault`); the stale TLB entry goes.
            Some(_) => {
                let mut gather = TlbGather::for_mm(self.pgd.root());
                gather.add_range(addr, addr + PAGE_SIZE);
                gather.finish(self.tlb, self.pgd.pgdat());
                Ok(())
            }
        }
    }

    fn do_pte_missing(
        &self,
        slot: &AtomicU64,
        desc: &crate::vma::VmaDesc,
        index: u64,
        write: bool,
    ) -> Result<(), FaultError> {
        let prot = vm_get_page_prot(desc.flags);
        let shared = desc.flags.contains(VmaFlags::SHARED);
        let pgdat = self.pgd.pgdat();
        if let Some(file) = desc.file {
            let pfn = self.new_user_page(Gfp::empty())?;
            // SAFETY: `pfn` was just allocated and is mapped nowhere yet, so
            // this is the only reference to its 4096 bytes, which the direct
            // map covers read-write.
            let buf = unsafe { core::slice::from_raw_parts_mut(self.page_ptr(pfn)?, PAGE_SIZE as usize) };
            // An index past 2^64 bytes is past the end of any file.
            let offset = index.saturating_mul(PAGE_SIZE);
            let n = if offset < file.size() {
                // No page cache: every file fault reads, a major fault.
                pgdat.count_vm_event(VmEventItem::Pgmajfault);
                file.read(offset, buf)
            } else {
                0
            };
            buf[n..].fill(0);
            let page = pgdat.pfn_to_page(pfn).ok_or(FaultError::Oom)?;
            let prot = if write || shared {
                rmap::page_add_new_anon_rmap(pgdat, page, index);
                self.add_rss(MmCounter::AnonPages, 1);
                prot
            } else {
                rmap::page_add_file_rmap(pgdat, page, index);
                self.add_rss(MmCounter::FilePages, 1);
                prot - PgProt::WRITE
            };
            slot.store(self.encode(pfn, prot), Ordering::Release);
            return Ok(());
        }
        if !write && !shared {
            slot.store(self.encode(self.zero_pfn, prot - PgProt::WRITE), Ordering::Release);
            return Ok(());
        }
        let pfn = self.new_user_page(Gfp::ZERO)?;
        let page = pgdat.pfn_to_page(pfn).ok_or(FaultError::Oom)?;
        rmap::page_add_new_anon_rmap(pgdat, page, index);
        self.add_rss(MmCounter::AnonPages, 1);
        slot.store(self.encode(pfn, prot | PgProt::DIRTY), Ordering::Release);
        Ok(())
    }

    /// Write to a present read-only pte of a writable VMA (Linux
    /// `do_wp_page`).
    fn do_wp_page(
        &self,
        slot: &AtomicU64,
        raw: u64,
        leaf: Leaf,
        flags: VmaFlags,
        index: u64,
        addr: u64,
    ) -> Result<(), FaultError> {
        let old = leaf.phys.pfn();
        let prot = vm_get_page_prot(flags) | PgProt::DIRTY;
        let pgdat = self.pgd.pgdat();
        let mut gather = TlbGather::for_mm(self.pgd.root());
        gather.add_range(addr, addr + PAGE_SIZE);
        if flags.contains(VmaFlags::SHARED) && old != self.zero_pfn {
            // A shared page is written in place by every sharer (Linux
            // `wp_page_shared`, which reuses through `wp_page_reuse`).
            slot.store(self.encode(old, prot), Ordering::Release);
            gather.finish(self.tlb, pgdat);
            pgdat.count_vm_event(VmEventItem::Pgreuse);
            return Ok(());
        }
        if old != self.zero_pfn {
            let page = pgdat.pfn_to_page(old).ok_or(FaultError::Oom)?;
            if page.refcount() == 1 {
                // Only we hold it: reuse (Linux `wp_can_reuse_anon_folio`).
                if !rmap::page_anon(page) {
                    rmap::page_make_anon(pgdat, page, index);
                    self.add_rss(MmCounter::FilePages, -1);
                    self.add_rss(MmCounter::AnonPages, 1);
                }
                slot.store(self.encode(old, prot), Ordering::Release);
                gather.finish(self.tlb, pgdat);
                pgdat.count_vm_event(VmEventItem::Pgreuse);
                return Ok(());
            }
        }
        // Copy (Linux `wp_page_copy`).
        let new = self.new_user_page(if old == self.zero_pfn { Gfp::ZERO } else { Gfp::empty() })?;
        if old != self.zero_pfn {
            // SAFETY: distinct pages, since `new` was just allocated; `new`
            // is mapped nowhere yet and `old` is only read, under the mmap
            // lock, through a read-only pte.
            unsafe { highmem::copy_page(pgdat, new, old) }.map_err(|_| FaultError::Oom)?;
        }
        let page = pgdat.pfn_to_page(new).ok_or(FaultError::Oom)?;
        rmap::page_add_new_anon_rmap(pgdat, page, index);
        if slot.compare_exchange(raw, self.encode(new, prot), Ordering::AcqRel, Ordering::Acquire).is_err() {
            error!("do_wp_page: pte at {addr:#x} changed under the mmap lock");
        }
        gather.finish(self.tlb, pgdat);
        self.add_rss(MmCounter::AnonPages, 1);
        if old != self.zero_pfn {
            self.drop_mapped_page(old);
        }
        Ok(())
    }

    /// Takes away one mapping of `pfn` (its pte is already cleared and the
    /// TLB flushed; both callers do so first): rmap, RSS and the page
    /// reference (Linux `zap_present_ptes`' per-page part).
    fn drop_mapped_page(&self, pfn: Pfn) {
        if pfn == self.zero_pfn {
            return;
        }
        let pgdat = self.pgd.pgdat();
        let Some(page) = pgdat.pfn_to_page(pfn) else {
            error!("zap: pte maps pfn {:#x} outside the memory map", pfn.as_u64());
            return;
        };
        let counter = if rmap::page_anon(page) { MmCounter::AnonPages } else { MmCounter::FilePages };
        self.add_rss(counter, -1);
        rmap::page_remove_rmap(pgdat, page);
        // A bad page is reported by the allocator and leaked.
        // SAFETY: the reference dropped is the one the cleared pte held;
        // the callers flushed the TLB before calling, so no translation of
        // this mapping survives, and under the mmap lock nothing else
        // keeps a pointer from it.
        let _ = unsafe { pgdat.put_page(pfn) };
    }

    /// Clears every pte of `[start, end)` and drops the pages (Linux
    /// `zap_page_range_single`/`unmap_page_range`); flushes once.
    pub(crate) fn zap_range(&mut self, range: UserRange) {
        let end = range.end().as_u64();
        let mut victims: [Pfn; 64] = [Pfn::new(0); 64];
        let mut va = range.start().as_u64();
        while va < end {
            // Collect up to 64 pages, then drop them: the walk borrows the
            // page table, dropping needs `&mut self`.
            let mut n = 0;
            let mut resume = end;
            let mut gather = TlbGather::for_mm(self.pgd.root());
            {
                let fmt = self.pgd.format();
                let _ = self.pgd.try_for_each_pte(va, end, &mut |addr, slot| {
                    if n == victims.len() {
                        resume = addr;
                        return ControlFlow::Break(());
                    }
                    let raw = slot.load(Ordering::Acquire);
                    if let Entry::Leaf(leaf) = fmt.decode(raw, Level::Pte) {
                        slot.store(0, Ordering::Release);
                        gather.add_range(addr, addr + PAGE_SIZE);
                        victims[n] = leaf.phys.pfn();
                        n += 1;
                    }
                    ControlFlow::Continue(())
                });
            }
            gather.finish(self.tlb, self.pgd.pgdat());
            for &pfn in &victims[..n] {
                self.drop_mapped_page(pfn);
            }
            va = resume;
        }
    }

    /// Rewrites the ptes of `[start, end)` for the VMA flags `flags`
    /// (Linux `change_pte_range`). Write permission is given back only to
    /// pages this address space holds alone; a shared (copy-on-write) page
    /// stays read-only until written.
    pub(crate) fn change_protection(&mut self, range: UserRange, flags: VmaFlags) {
        let (start, end) = (range.start().as_u64(), range.end().as_u64());
        let prot = vm_get_page_prot(flags);
        let private = !flags.contains(VmaFlags::SHARED);
        let mut gather = TlbGather::for_mm(self.pgd.root());
        let fmt = self.pgd.format();
        let pgdat = self.pgd.pgdat();
        let zero = self.zero_pfn;
        self.pgd.for_each_pte(start, end, &mut |addr, slot| {
            let raw = slot.load(Ordering::Acquire);
            let Entry::Leaf(leaf) = fmt.decode(raw, Level::Pte) else { return };
            let pfn = leaf.phys.pfn();
            let mut new = prot | (leaf.prot & PgProt::DIRTY);
            let exclusive =
                pfn != zero && pgdat.pfn_to_page(pfn).is_some_and(|p| p.refcount() == 1 && rmap::page_anon(p));
            if private && !exclusive {
                new -= PgProt::WRITE;
            }
            if new != leaf.prot {
                slot.store(fmt.encode_leaf(Leaf { prot: new, ..leaf }), Ordering::Release);
                gather.add_range(addr, addr + PAGE_SIZE);
            }
        });
        gather.finish(self.tlb, pgdat);
    }

    /// Copies the ptes of `vma` from `src` into this (new, child) address
    /// space (Linux `copy_page_range`): private writable pages become
    /// read-only in both so the first write copies.
    pub(crate) fn copy_page_range(&mut self, src: &MmStruct<'a, F, A>, vma: &Vma) -> Result<(), Errno> {
        let cow = !vma.flags().contains(VmaFlags::SHARED);
        let mut src_gather = TlbGather::for_mm(src.pgd.root());
        let fmt = src.pgd.format();
        let pgdat = src.pgd.pgdat();
        let mut result = Ok(());
        let mut added = [0i64; 2];
        let mut dst_table: Option<(u64, &[AtomicU64; PTRS_PER_TABLE])> = None;
        src.pgd.for_each_pte(vma.start().as_u64(), vma.end().as_u64(), &mut |addr, slot| {
            if result.is_err() {
                return;
            }
            let raw = slot.load(Ordering::Acquire);
            let Entry::Leaf(mut leaf) = fmt.decode(raw, Level::Pte) else { return };
            if cow && leaf.prot.contains(PgProt::WRITE) {
                leaf.prot -= PgProt::WRITE;
                slot.store(fmt.encode_leaf(leaf), Ordering::Release);
                src_gather.add_range(addr, addr + PAGE_SIZE);
            }
            // One walk of the child's upper levels per pte table.
            let block = addr >> Level::Pmd.shift();
            let table = match dst_table {
                Some((b, t)) if b == block => t,
                _ => match UserAddr::page_down(addr).map(|a| self.pgd.pte_table(a.virt(), true)) {
                    Some(Ok(Some(t))) => {
                        dst_table = Some((block, t));
                        t
                    }
                    _ => {
                        result = Err(Errno::ENOMEM);
                        return;
                    }
                },
            };
            let dst = &table[Level::Pte.index(addr)];
            let pfn = leaf.phys.pfn();
            if pfn != src.zero_pfn
                && let Some(page) = pgdat.pfn_to_page(pfn)
            {
                page.get();
                rmap::page_dup_rmap(pgdat, page);
                added[usize::from(rmap::page_anon(page))] += 1;
            }
            dst.store(fmt.encode_leaf(leaf), Ordering::Release);
        });
        src_gather.finish(src.tlb, pgdat);
        self.add_rss(MmCounter::FilePages, added[0]);
        self.add_rss(MmCounter::AnonPages, added[1]);
        result
    }

    /// Moves the ptes of `[old, old + len)` to `new` (Linux
    /// `move_page_tables`): the pages stay where they are, only their
    /// addresses change. The destination must hold no ptes. Its page
    /// tables are allocated first, so on `ENOMEM` nothing has moved.
    pub(crate) fn move_ptes(&mut self, old: UserRange, new: UserRange) -> Result<(), Errno> {
        if old.len() != new.len() {
            return Err(Errno::EINVAL);
        }
        let fmt = self.pgd.format();
        let mut result = Ok(());
        // The destination of the pte at `addr` (inside `old`): inside `new`.
        let dst_of = |addr: u64| UserAddr::new(addr - old.start().as_u64() + new.start().as_u64()).ok();
        let (start, end) = (old.start().as_u64(), old.end().as_u64());
        self.pgd.for_each_pte(start, end, &mut |addr, slot| {
            if result.is_ok()
                && let Entry::Leaf(_) = fmt.decode(slot.load(Ordering::Acquire), Level::Pte)
                && !dst_of(addr).is_some_and(|d| matches!(self.pgd.pte_offset(d.virt(), true), Ok(Some(_))))
            {
                result = Err(Errno::ENOMEM);
            }
        });
        result?;
        let mut gather = TlbGather::for_mm(self.pgd.root());
        self.pgd.for_each_pte(start, end, &mut |addr, slot| {
            let raw = slot.load(Ordering::Acquire);
            if let Entry::Leaf(_) = fmt.decode(raw, Level::Pte)
                && let Some(d) = dst_of(addr)
                && let Ok(Some(dst)) = self.pgd.pte_offset(d.virt(), false)
            {
                dst.store(raw, Ordering::Release);
                slot.store(0, Ordering::Release);
                gather.add_range(addr, addr + PAGE_SIZE);
            }
        });
        gather.finish(self.tlb, self.pgd.pgdat());
        Ok(())
    }

    /// Faults in every page of `[start, end)` (Linux `populate_vma_page_range`
    /// through `handle_mm_fault`): written if the VMA is writable.
    pub(crate) fn populate(&mut self, range: UserRange) -> Result<(), FaultError> {
        let mut at = range.start();
        while at < range.end() {
            let Some(vma) = self.vmas.vma_lookup(at.virt()) else {
                return Err(FaultError::MapErr);
            };
            let flags = vma.flags();
            let part = range.from(at).clip_virt(vma.start(), vma.end());
            if part.is_empty() {
                return Err(FaultError::MapErr);
            }
            if flags.intersects(VmaFlags::READ | VmaFlags::WRITE | VmaFlags::EXEC) {
                let write = flags.contains(VmaFlags::WRITE);
                for addr in part.addrs() {
                    let present = self
                        .pgd
                        .pte_offset(addr.virt(), false)
                        .ok()
                        .flatten()
                        .and_then(|s| self.leaf(s.load(Ordering::Acquire)))
                        .is_some_and(|l| !write || l.prot.contains(PgProt::WRITE));
                    if !present {
                        self.handle_mm_fault(addr.virt(), FaultAccess { write, exec: false })?;
                    }
                }
            }
            at = part.end();
        }
        Ok(())
    }

    /// Gives every page of `[start, end)`, which shared anonymous VMAs
    /// cover, its own zeroed page whatever the VMAs' protection (PROT_NONE
    /// gets a protnone pte). This stands in for shmem: the pages must exist
    /// before a fork so that parent and child map the same ones, even if
    /// the protection allows access only later.
    pub(crate) fn populate_shared_anon(&mut self, range: UserRange) -> Result<(), FaultError> {
        for addr in range.addrs() {
            let vma = self.vmas.vma_lookup(addr.virt()).ok_or(FaultError::MapErr)?;
            let desc = vma.desc();
            let index = linear_page_index(vma, addr.as_u64());
            let slot = self.pgd.pte_offset(addr.virt(), true).map_err(|_| FaultError::Oom)?;
            let slot = slot.ok_or(FaultError::Oom)?;
            if self.leaf(slot.load(Ordering::Acquire)).is_none() {
                self.do_pte_missing(slot, &desc, index, true)?;
            }
        }
        Ok(())
    }

    /// Whether the page at `addr` is resident (Linux `mincore_pte_range`:
    /// a present or protnone pte).
    pub(crate) fn page_resident(&self, addr: UserAddr) -> bool {
        self.pgd
            .pte_offset(addr.virt(), false)
            .ok()
            .flatten()
            .is_some_and(|s| self.leaf(s.load(Ordering::Acquire)).is_some())
    }

    /// The leaf mapping `addr`, if any (for reports and tests).
    pub fn follow_pte(&self, addr: VirtAddr) -> Option<Leaf> {
        let slot = self.pgd.pte_offset(addr, false).ok().flatten()?;
        self.leaf(slot.load(Ordering::Acquire))
    }
}
