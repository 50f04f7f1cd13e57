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
//! Pages unmapped by zapping wait in the [`TlbGather`] until its TLB flush
//! and are put only then (Linux's `mmu_gather` page batch), so no CPU can
//! still write a page that was freed; a copy-on-write fault puts the old
//! page after flushing its one pte.
//!
//! Locking: the caller holds the mmap lock, for reading in
//! [`MmStruct::handle_mm_fault`], [`MmStruct::page_resident`] and
//! [`MmStruct::follow_pte`], for writing everywhere else (`&mut self`).
//! Faults under the read lock change ptes only under
//! [`page_table_lock`](MmStruct::page_table_lock), after checking the pte
//! is the one they decided on; everything that clears or re-protects ptes
//! holds the write lock, so a fault never races a zap or `mprotect`. Lock
//! order: mmap lock -> page-table lock -> page allocator locks.

use core::ops::ControlFlow;
use core::sync::atomic::{AtomicU64, Ordering};

use log::error;
use uapi::errno::Errno;

use crate::addr::{PAGE_SIZE, Pfn, VirtAddr};
use crate::gfp::{GFP_HIGHUSER_MOVABLE, Gfp};
use crate::mmap::{MmCounter, MmStruct};
use crate::pgtable::{Entry, Leaf, Level, PTRS_PER_TABLE, PageSize, PgProt, PteFormat, TlbGather};
use crate::rmap;
use crate::swapops::{is_migration_entry, migration_entry_to_pfn};
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
    /// The address is in the gap below a stack VMA, which must grow: a
    /// step that needs the mmap lock for writing (see
    /// [`MmStruct::handle_mm_fault`]). Never the final outcome of a fault.
    ExpandStack,
    /// The pte is a migration entry: the page at this frame is locked
    /// while it moves. The caller drops the mmap lock, waits for the page
    /// to be unlocked ([`folio_wait_locked`](crate::filemap::folio_wait_locked))
    /// and faults again (Linux `VM_FAULT_RETRY` under
    /// `FAULT_FLAG_ALLOW_RETRY`, what a fault that must wait for a locked
    /// folio returns; Linux's `migration_entry_wait` waits with the lock
    /// held, we let writers in meanwhile). Never the final outcome.
    Retry(Pfn),
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
    /// lookup and access checks of x86's `do_user_addr_fault`) under a
    /// read hold of the mmap lock: faults on one address space run
    /// concurrently, and each installs its pte under
    /// [`page_table_lock`](MmStruct::page_table_lock) only if the pte it
    /// decided on is still there (Linux `pte_same`); a fault that lost the
    /// race drops what it prepared and returns `Ok`, its access now
    /// resolved by the winner (or faulting again, harmlessly).
    ///
    /// An address in the gap just below a stack VMA needs the VMA to grow,
    /// which changes the tree: that returns [`FaultError::ExpandStack`],
    /// and the caller retakes the lock for writing, calls
    /// [`expand_stack_for_fault`](Self::expand_stack_for_fault) and
    /// retries (Linux `lock_mm_and_find_vma`'s upgrade).
    pub fn handle_mm_fault(&self, addr: VirtAddr, access: FaultAccess) -> Result<(), FaultError> {
        // No VMA lies outside user space.
        let page = UserAddr::page_down(addr.as_u64()).ok_or(FaultError::MapErr)?;
        let addr = page.as_u64();
        let vma = match self.vmas.find_vma(page.virt()) {
            Some(v) if v.start().as_u64() <= addr => v,
            Some(v) if v.flags().contains(VmaFlags::GROWSDOWN) => return Err(FaultError::ExpandStack),
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
        if let Entry::Swap(entry) = self.pgd.format().decode(raw, Level::Pte) {
            return match migration_entry_to_pfn(entry) {
                Some(pfn) => Err(FaultError::Retry(pfn)),
                None => {
                    // No swap areas exist yet, so no other entry is valid.
                    error!("fault at {addr:#x}: bad swap pte {raw:#x}");
                    Err(FaultError::MapErr)
                }
            };
        }
        match self.leaf(raw) {
            None => self.do_pte_missing(slot, &desc, index, access.write),
            Some(leaf) if leaf.prot.contains(PgProt::PROTNONE) => Err(FaultError::AccErr),
            Some(leaf) if access.write && !leaf.prot.contains(PgProt::WRITE) => {
                self.do_wp_page(slot, raw, leaf, desc.flags, index, addr)
            }
            // Spurious: another path already fixed it (Linux
            // `flush_tlb_fix_spurious_fault`); the stale TLB entry goes.
            Some(_) => {
                self.flush_one(addr);
                Ok(())
            }
        }
    }

    /// Grows the stack VMA above `addr` down to its page (Linux
    /// `expand_stack_locked`), the write-locked step of a fault that
    /// returned [`FaultError::ExpandStack`]. Nothing to do if the VMA
    /// already covers it (another fault grew it meanwhile).
    pub fn expand_stack_for_fault(&mut self, addr: VirtAddr) -> Result<(), FaultError> {
        let page = UserAddr::page_down(addr.as_u64()).ok_or(FaultError::MapErr)?;
        match self.vmas.find_vma(page.virt()) {
            Some(v) if v.start() <= page.virt() => Ok(()),
            Some(v) if v.flags().contains(VmaFlags::GROWSDOWN) => {
                let start = v.start();
                self.expand_stack(start, page)
            }
            _ => Err(FaultError::MapErr),
        }
    }

    /// [`handle_mm_fault`](Self::handle_mm_fault) for a caller holding the
    /// mmap lock for writing: grows a stack when the fault needs it.
    pub fn handle_mm_fault_exclusive(&mut self, addr: VirtAddr, access: FaultAccess) -> Result<(), FaultError> {
        match self.handle_mm_fault(addr, access) {
            Err(FaultError::ExpandStack) => {
                self.expand_stack_for_fault(addr)?;
                self.handle_mm_fault(addr, access)
            }
            r => r,
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
        if !write && !shared && desc.file.is_none() {
            // The zero page: nothing to undo if another fault was first.
            let _ptl = self.page_table_lock.lock();
            if slot.load(Ordering::Acquire) == 0 {
                slot.store(self.encode(self.zero_pfn, prot - PgProt::WRITE), Ordering::Release);
            }
            return Ok(());
        }
        let (pfn, file_read) = match desc.file {
            Some(file) => {
                let pfn = self.new_user_page(Gfp::empty())?;
                // SAFETY: `pfn` was just allocated and is mapped nowhere
                // yet, so this is the only reference to its 4096 bytes,
                // which the direct map covers read-write.
                let buf = unsafe { core::slice::from_raw_parts_mut(self.page_ptr(pfn)?, PAGE_SIZE as usize) };
                // An index past 2^64 bytes is past the end of any file.
                let offset = index.saturating_mul(PAGE_SIZE);
                let n = if offset < file.size() { file.read(offset, buf) } else { 0 };
                buf[n..].fill(0);
                (pfn, offset < file.size())
            }
            None => (self.new_user_page(Gfp::ZERO)?, false),
        };
        let Some(page) = pgdat.pfn_to_page(pfn) else {
            self.put_unmapped_page(pfn);
            return Err(FaultError::Oom);
        };
        let anon = desc.file.is_none() || write || shared;
        let pte = match (desc.file, anon) {
            (None, _) => self.encode(pfn, prot | PgProt::DIRTY),
            (Some(_), true) => self.encode(pfn, prot),
            (Some(_), false) => self.encode(pfn, prot - PgProt::WRITE),
        };
        let ptl = self.page_table_lock.lock();
        if slot.load(Ordering::Acquire) != 0 {
            // Another fault on this page won (Linux's `pte_none` recheck
            // under the pte lock): ours was never visible.
            drop(ptl);
            self.put_unmapped_page(pfn);
            return Ok(());
        }
        if anon {
            rmap::page_add_new_anon_rmap(pgdat, page, index);
            self.add_rss(MmCounter::AnonPages, 1);
        } else {
            rmap::page_add_file_rmap(pgdat, page, index);
            self.add_rss(MmCounter::FilePages, 1);
        }
        slot.store(pte, Ordering::Release);
        drop(ptl);
        if file_read {
            // No page cache: every file fault reads, a major fault.
            pgdat.count_vm_event(VmEventItem::Pgmajfault);
        }
        Ok(())
    }

    /// Frees a page this fault allocated but did not map.
    fn put_unmapped_page(&self, pfn: Pfn) {
        // A bad page is reported by the allocator and leaked.
        let _ = self.pgd.pgdat().put_page(pfn);
    }

    /// Write to a present read-only pte of a writable VMA (Linux
    /// `do_wp_page`). `raw` is the pte the fault saw; every change is made
    /// under the page-table lock and only if the pte is still `raw`.
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
        // The page being replaced, with a reference of ours taken under
        // the lock while the pte still mapped it (Linux `folio_get` in
        // `do_wp_page`): a racing fault may unmap and put it while we copy.
        let mut old_page = None;
        if old != self.zero_pfn {
            let page = pgdat.pfn_to_page(old).ok_or(FaultError::Oom)?;
            let ptl = self.page_table_lock.lock();
            if slot.load(Ordering::Acquire) != raw {
                return Ok(());
            }
            // A shared page is written in place by every sharer (Linux
            // `wp_page_shared`, which reuses through `wp_page_reuse`); a
            // private one only we hold (refcount 1) is reused too (Linux
            // `wp_can_reuse_anon_folio`). The refcount cannot rise under
            // us: fork takes the mmap lock for writing, and another fault
            // reaches the page only through this pte, under this lock.
            if flags.contains(VmaFlags::SHARED) || page.refcount() == 1 {
                if !flags.contains(VmaFlags::SHARED) && !rmap::page_anon(page) {
                    rmap::page_make_anon(pgdat, page, index);
                    self.add_rss(MmCounter::FilePages, -1);
                    self.add_rss(MmCounter::AnonPages, 1);
                }
                slot.store(self.encode(old, prot), Ordering::Release);
                drop(ptl);
                self.flush_one(addr);
                pgdat.count_vm_event(VmEventItem::Pgreuse);
                return Ok(());
            }
            page.get();
            old_page = Some(page);
        }
        // Copy (Linux `wp_page_copy`).
        let result = self.wp_page_copy(slot, raw, old, prot, index, addr);
        if old_page.is_some() {
            self.put_unmapped_page(old);
        }
        result
    }

    /// The copying half of [`do_wp_page`](Self::do_wp_page): a new page
    /// with `old`'s data (zeroed for the zero page) replaces it in the pte
    /// if the pte is still `raw`. The caller holds a reference on `old`.
    fn wp_page_copy(
        &self,
        slot: &AtomicU64,
        raw: u64,
        old: Pfn,
        prot: PgProt,
        index: u64,
        addr: u64,
    ) -> Result<(), FaultError> {
        let pgdat = self.pgd.pgdat();
        let new = self.new_user_page(if old == self.zero_pfn { Gfp::ZERO } else { Gfp::empty() })?;
        let copied = if old == self.zero_pfn {
            Ok(())
        } else {
            self.page_ptr(old).and_then(|src| Ok((src, self.page_ptr(new)?))).map(|(src, dst)| {
                // SAFETY: both are 4096-byte pages in the direct map,
                // distinct since `new` was just allocated; `new` is mapped
                // nowhere yet, and `old` cannot be freed while the caller's
                // reference holds it.
                unsafe { core::ptr::copy_nonoverlapping(src, dst, PAGE_SIZE as usize) }
            })
        };
        let page = match copied.and_then(|()| pgdat.pfn_to_page(new).ok_or(FaultError::Oom)) {
            Ok(page) => page,
            Err(e) => {
                self.put_unmapped_page(new);
                return Err(e);
            }
        };
        let ptl = self.page_table_lock.lock();
        if slot.load(Ordering::Acquire) != raw {
            drop(ptl);
            self.put_unmapped_page(new);
            return Ok(());
        }
        rmap::page_add_new_anon_rmap(pgdat, page, index);
        self.add_rss(MmCounter::AnonPages, 1);
        slot.store(self.encode(new, prot), Ordering::Release);
        drop(ptl);
        // The old page loses this mapping only after no TLB can still
        // reach it through this pte.
        self.flush_one(addr);
        self.drop_mapped_page(old);
        Ok(())
    }

    /// Flushes the translation of the page at `addr` from every CPU that
    /// may hold it.
    fn flush_one(&self, addr: u64) {
        let mut gather = TlbGather::for_mm(self.pgd.root());
        gather.add_range(addr, addr + PAGE_SIZE);
        gather.finish(self.tlb, self.pgd.pgdat());
    }

    /// Takes away one mapping of `pfn` (its pte is already cleared): rmap,
    /// RSS and the page reference (Linux `zap_present_ptes`' per-page part).
    /// Only for a pte whose flush is done; a zap hands the reference to its
    /// [`TlbGather`] instead ([`zap_mapped_page`](Self::zap_mapped_page)).
    fn drop_mapped_page(&self, pfn: Pfn) {
        if self.zap_rmap(pfn) {
            self.put_unmapped_page(pfn);
        }
    }

    /// The rmap and RSS half of unmapping `pfn`; whether there is a page
    /// reference to put (not for the zero page or a frame outside the
    /// memory map).
    fn zap_rmap(&self, pfn: Pfn) -> bool {
        if pfn == self.zero_pfn {
            return false;
        }
        let pgdat = self.pgd.pgdat();
        let Some(page) = pgdat.pfn_to_page(pfn) else {
            error!("zap: pte maps pfn {:#x} outside the memory map", pfn.as_u64());
            return false;
        };
        let counter = if rmap::page_anon(page) { MmCounter::AnonPages } else { MmCounter::FilePages };
        self.add_rss(counter, -1);
        rmap::page_remove_rmap(pgdat, page);
        true
    }

    /// Clears every pte of `[start, end)` and drops the pages (Linux
    /// `zap_page_range_single`/`unmap_page_range`): rmap and RSS at once,
    /// the page references through the gather, after the flush (Linux
    /// `zap_present_ptes` + `tlb_flush_mmu`). Flushes once per
    /// [`GATHER_BATCH`] pages.
    pub(crate) fn zap_range(&mut self, range: UserRange) {
        let end = range.end().as_u64();
        let mut gather = TlbGather::for_mm(self.pgd.root());
        let mut va = range.start().as_u64();
        let fmt = self.pgd.format();
        while va < end {
            let mut resume = end;
            let _ = self.pgd.try_for_each_pte(va, end, &mut |addr, slot| {
                if gather.full() {
                    resume = addr;
                    return ControlFlow::Break(());
                }
                let raw = slot.load(Ordering::Acquire);
                if let Entry::Leaf(leaf) = fmt.decode(raw, Level::Pte) {
                    slot.store(0, Ordering::Release);
                    gather.add_range(addr, addr + PAGE_SIZE);
                    let pfn = leaf.phys.pfn();
                    if self.zap_rmap(pfn) {
                        gather.remove_page(pfn);
                    }
                }
                ControlFlow::Continue(())
            });
            if gather.full() {
                gather.flush_mmu(self.tlb, self.pgd.pgdat());
            }
            va = resume;
        }
        gather.finish(self.tlb, self.pgd.pgdat());
    }

    /// Rewrites the ptes of `[start, end)` for the VMA flags `flags`
    /// (Linux `change_pte_range`). Write permission is given back only to
    /// pages this address space holds alone; a shared (copy-on-write) page
    /// stays read-only until written.
    ///
    /// Each pte is rewritten with bit operations (Linux `pte_modify`): the
    /// new protection's bits are encoded once, and the page descriptor is
    /// read only where write permission is being given. One walk of the
    /// upper levels per pte table.
    pub(crate) fn change_protection(&mut self, range: UserRange, flags: VmaFlags) {
        let (start, end) = (range.start().as_u64(), range.end().as_u64());
        let prot = vm_get_page_prot(flags);
        let fmt = self.pgd.format();
        let bits = |prot: PgProt| fmt.encode_leaf(Leaf { phys: crate::PhysAddr::new(0), prot, size: PageSize::Size4K });
        let (new_bits, ro_bits) = (bits(prot), bits(prot - PgProt::WRITE));
        let (keep, dirty) = (fmt.pte_chg_mask(), bits(PgProt::DIRTY) & fmt.pte_chg_mask());
        // Private writable: only exclusive anonymous pages get write back.
        let check_exclusive = !flags.contains(VmaFlags::SHARED) && prot.contains(PgProt::WRITE);
        let pgdat = self.pgd.pgdat();
        let zero = self.zero_pfn;
        let mut gather = TlbGather::for_mm(self.pgd.root());
        let mut va = start;
        while va < end {
            let table_end = ((va | (Level::Pmd.entry_size() - 1)) + 1).min(end);
            if let Some(table) =
                UserAddr::page_down(va).and_then(|a| self.pgd.pte_table(a.virt(), false).ok().flatten())
            {
                let first = Level::Pte.index(va);
                let slots = &table[first..first + ((table_end - va) / PAGE_SIZE) as usize];
                for (i, slot) in slots.iter().enumerate() {
                    let raw = slot.load(Ordering::Acquire);
                    if !fmt.pte_present(raw) {
                        continue;
                    }
                    let mut new = (raw & keep) | new_bits;
                    if check_exclusive {
                        let pfn = crate::PhysAddr::new(raw & keep & !dirty).pfn();
                        let exclusive = pfn != zero
                            && pgdat.pfn_to_page(pfn).is_some_and(|p| p.refcount() == 1 && rmap::page_anon(p));
                        if !exclusive {
                            new = (raw & keep) | ro_bits;
                        }
                    }
                    if new != raw {
                        slot.store(new, Ordering::Release);
                        let addr = va + i as u64 * PAGE_SIZE;
                        gather.add_range(addr, addr + PAGE_SIZE);
                    }
                }
            }
            va = table_end;
        }
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
                        self.handle_mm_fault_exclusive(addr.virt(), FaultAccess { write, exec: false })?;
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
    /// a present or protnone pte, or a migration entry).
    pub(crate) fn page_resident(&self, addr: UserAddr) -> bool {
        let Some(slot) = self.pgd.pte_offset(addr.virt(), false).ok().flatten() else { return false };
        match self.pgd.format().decode(slot.load(Ordering::Acquire), Level::Pte) {
            Entry::Leaf(_) => true,
            Entry::Swap(entry) => is_migration_entry(entry),
            Entry::None | Entry::Table(_) => false,
        }
    }

    /// The leaf mapping `addr`, if any (for reports and tests).
    pub fn follow_pte(&self, addr: VirtAddr) -> Option<Leaf> {
        let slot = self.pgd.pte_offset(addr, false).ok().flatten()?;
        self.leaf(slot.load(Ordering::Acquire))
    }
}
