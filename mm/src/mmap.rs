//! User address spaces and the mmap family (Linux `mm/mmap.c`,
//! `mm/mprotect.c`, `kernel/fork.c`'s `dup_mmap`, and
//! `fs/proc/task_mmu.c`'s maps and status lines). The other VMA system
//! calls are methods of [`MmStruct`] in their own modules, named for their
//! Linux files: [`crate::mremap`], [`crate::madvise`], [`crate::mincore`],
//! [`crate::mlock`], [`crate::msync`].
//!
//! An [`MmStruct`] is a page-table tree ([`PageTable::new_user`]), the VMAs
//! in a [`VmaTree`], the layout of the program (code, data, brk, stack,
//! arguments) and RSS counters. Each system call's entry point here does
//! Linux's argument checks in Linux's order and returns Linux's errno, then
//! changes the VMAs and, through [`crate::memory`], the page tables.
//!
//! Locking: an `MmStruct` is a plain value; the kernel keeps it behind one
//! lock per address space (Linux's `mmap_lock`, taken for writing by every
//! operation here, page faults included: processes are single-threaded).
//!
//! Differences from Linux:
//! - `MAP_SHARED | MAP_ANONYMOUS` memory is populated at mmap time (and
//!   when mremap grows it), whatever its protection, so that fork shares
//!   every page (Linux backs it by a shmem file and shares through the
//!   page cache; we have none yet).
//! - mprotect over a hole returns `ENOMEM` before changing anything; Linux
//!   changes the VMAs before the hole first.
//! - No overcommit accounting (`VM_ACCOUNT` is never set or charged).

use core::cell::Cell;
use core::fmt::{self, Write as _};

use uapi::errno::Errno;
use uapi::mman::*;
use uapi::resource::{RLIM_INFINITY, Rlimit};

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, Pfn, VirtAddr, align_down, align_up};
use crate::arch::TlbFlush;
use crate::gfp::Gfp;
use crate::memory::FaultError;
use crate::pgtable::{PageTable, PteFormat, TlbGather, USER_TOP};
use crate::vma::{
    STACK_GUARD_GAP, VmUnmappedAreaFlags, VmUnmappedAreaInfo, VmaAlloc, VmaDesc, VmaError, VmaFile, VmaFlags, VmaTree,
};

/// End of the user address space (Linux `TASK_SIZE_MAX` for 4-level
/// paging: the last page below the canonical hole is left unmapped).
pub const TASK_SIZE: u64 = (1 << 47) - PAGE_SIZE;

/// Lowest address mmap hands out or accepts with `MAP_FIXED` (Linux's
/// default `vm.mmap_min_addr`).
pub const MMAP_MIN_ADDR: u64 = 65536;

/// Default stack size limit (Linux `_STK_LIM`, `RLIMIT_STACK` 8 MiB).
pub const STACK_RLIMIT: u64 = 8 << 20;

/// Default locked-memory limit (Linux `MLOCK_LIMIT`, 8 MiB since 5.16).
pub const MLOCK_LIMIT: u64 = 8 << 20;

/// The caller's resource limits and privilege that the mm checks (Linux
/// reads `rlimit(RLIMIT_*)` of `current->signal` and asks
/// `capable(CAP_IPC_LOCK)` at each check). The kernel keeps the process's
/// limits here (set at fork, exec and setrlimit), since the mm has no
/// notion of tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmLimits {
    /// `RLIMIT_AS`: the largest `total_vm`, in bytes (Linux `may_expand_vm`).
    pub address_space: Rlimit,
    /// `RLIMIT_DATA`: the largest private writable memory (`data_vm`) and
    /// the brk area, in bytes.
    pub data: Rlimit,
    /// `RLIMIT_STACK`: the largest stack VMA, in bytes, and the gap kept
    /// below it by the mmap layout.
    pub stack: Rlimit,
    /// `RLIMIT_MEMLOCK`: the most locked memory, in bytes.
    pub memlock: Rlimit,
    /// Whether the caller has `CAP_IPC_LOCK`, which lifts `RLIMIT_MEMLOCK`.
    pub cap_ipc_lock: bool,
}

impl MmLimits {
    /// Linux's boot-time limits (`INIT_RLIMITS`) for a privileged process.
    pub const fn init() -> Self {
        let unlimited = Rlimit { rlim_cur: RLIM_INFINITY, rlim_max: RLIM_INFINITY };
        MmLimits {
            address_space: unlimited,
            data: unlimited,
            stack: Rlimit { rlim_cur: STACK_RLIMIT, rlim_max: RLIM_INFINITY },
            memlock: Rlimit { rlim_cur: MLOCK_LIMIT, rlim_max: MLOCK_LIMIT },
            cap_ipc_lock: true,
        }
    }
}

/// RSS counters (Linux `MM_FILEPAGES`, `MM_ANONPAGES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmCounter {
    /// Pages of file data.
    FilePages = 0,
    /// Anonymous pages.
    AnonPages = 1,
}

/// A user address space (Linux `struct mm_struct`).
pub struct MmStruct<'a, F: PteFormat, A: VmaAlloc> {
    pub(crate) pgd: PageTable<'a, F>,
    pub(crate) vmas: VmaTree<A>,
    pub(crate) tlb: &'a dyn TlbFlush,
    pub(crate) zero_pfn: Pfn,
    rss: [Cell<i64>; 2],
    hiwater_rss: Cell<u64>,
    /// Where top-down mmap searches start (Linux `mmap_base`).
    pub mmap_base: u64,
    /// Program layout (Linux `start_code` .. `env_end`).
    pub layout: MmLayout,
    /// Flags every new VMA gets (Linux `def_flags`: `VM_LOCKED` after
    /// `mlockall(MCL_FUTURE)`).
    pub def_flags: VmaFlags,
    /// The resource limits checked by mmap, brk, mremap, mlock and stack
    /// growth; the kernel sets them from the process's.
    pub limits: MmLimits,
}

/// Where the program's pieces are (Linux `mm_struct`'s `start_code`,
/// `end_code`, `start_data`, `end_data`, `start_brk`, `brk`,
/// `start_stack`, `arg_start`, `arg_end`, `env_start`, `env_end`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct MmLayout {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub brk: u64,
    pub start_stack: u64,
    pub arg_start: u64,
    pub arg_end: u64,
    pub env_start: u64,
    pub env_end: u64,
}

pub(crate) fn vma_err(e: VmaError) -> Errno {
    match e {
        VmaError::NoMemory => Errno::ENOMEM,
        VmaError::Overlap => Errno::EEXIST,
        VmaError::BadRange | VmaError::NotFound => Errno::EINVAL,
    }
}

fn fault_err(e: FaultError) -> Errno {
    match e {
        FaultError::Oom => Errno::ENOMEM,
        FaultError::MapErr | FaultError::AccErr => Errno::EFAULT,
    }
}

/// `PROT_*` to `VM_READ|WRITE|EXEC` (Linux `calc_vm_prot_bits`).
fn calc_vm_prot_bits(prot: u32) -> VmaFlags {
    let mut f = VmaFlags::empty();
    if prot & PROT_READ != 0 {
        f |= VmaFlags::READ;
    }
    if prot & PROT_WRITE != 0 {
        f |= VmaFlags::WRITE;
    }
    if prot & PROT_EXEC != 0 {
        f |= VmaFlags::EXEC;
    }
    f
}

const PROT_BITS: VmaFlags = VmaFlags::READ.union(VmaFlags::WRITE).union(VmaFlags::EXEC);

/// A file to map, as the kernel's file layer hands it over.
#[derive(Clone, Copy)]
pub struct MapFile {
    /// The file's data.
    pub file: &'static dyn VmaFile,
    /// Whether it was opened for writing (Linux `FMODE_WRITE`).
    pub writable: bool,
}

impl<'a, F: PteFormat, A: VmaAlloc> MmStruct<'a, F, A> {
    /// An empty address space sharing `kernel`'s upper half (Linux
    /// `mm_alloc` + `pgd_alloc`). `zero_pfn` is the shared zero page.
    pub fn new(
        kernel: &PageTable<'a, F>,
        root_gfp: Gfp,
        tlb: &'a dyn TlbFlush,
        zero_pfn: Pfn,
        alloc: A,
    ) -> Result<Self, Errno> {
        let pgd = PageTable::new_user(kernel, root_gfp).map_err(|_| Errno::ENOMEM)?;
        Ok(MmStruct {
            pgd,
            vmas: VmaTree::new(alloc),
            tlb,
            zero_pfn,
            rss: [Cell::new(0), Cell::new(0)],
            hiwater_rss: Cell::new(0),
            mmap_base: TASK_SIZE - STACK_RLIMIT - STACK_GUARD_GAP,
            layout: MmLayout::default(),
            def_flags: VmaFlags::empty(),
            limits: MmLimits::init(),
        })
    }

    /// The page-table root (what CR3 holds while this space runs).
    pub fn pgd_root(&self) -> crate::PhysAddr {
        self.pgd.root()
    }

    /// The VMAs.
    pub fn vmas(&self) -> &VmaTree<A> {
        &self.vmas
    }

    pub(crate) fn add_rss(&self, counter: MmCounter, delta: i64) {
        let c = &self.rss[counter as usize];
        c.set(c.get() + delta);
        self.hiwater_rss.set(self.hiwater_rss.get().max(self.rss_pages()));
    }

    /// Resident pages of one kind (Linux `get_mm_counter`).
    pub fn counter(&self, counter: MmCounter) -> u64 {
        self.rss[counter as usize].get().max(0) as u64
    }

    /// Peak resident pages (Linux `hiwater_rss`, VmHWM).
    pub fn hiwater_rss(&self) -> u64 {
        self.hiwater_rss.get()
    }

    /// Resident pages (Linux `get_mm_rss`).
    pub fn rss_pages(&self) -> u64 {
        self.counter(MmCounter::FilePages) + self.counter(MmCounter::AnonPages)
    }

    /// Mapped pages (Linux `total_vm`).
    pub fn total_vm(&self) -> u64 {
        self.vmas.total_pages()
    }

    /// Page-table pages in the lower half (Linux `mm_pgtables_bytes` / 4K,
    /// root included).
    pub fn nr_ptes(&self) -> u64 {
        self.pgd.nr_tables()
    }

    /// A free range of `len` bytes (Linux `get_unmapped_area` /
    /// `arch_get_unmapped_area_topdown`): the hint if it is free, else the
    /// highest free range below `mmap_base`, else the lowest anywhere.
    pub fn get_unmapped_area(&self, hint: u64, len: u64) -> Result<u64, Errno> {
        if len > TASK_SIZE - MMAP_MIN_ADDR {
            return Err(Errno::ENOMEM);
        }
        if hint != 0 {
            let addr = align_up(hint, PAGE_SIZE).unwrap_or(u64::MAX);
            if addr >= MMAP_MIN_ADDR
                && addr.checked_add(len).is_some_and(|e| e <= TASK_SIZE)
                && self.range_free(addr, addr + len)
            {
                return Ok(addr);
            }
        }
        let mut info = VmUnmappedAreaInfo {
            flags: VmUnmappedAreaFlags::TOPDOWN,
            length: len,
            low_limit: VirtAddr::new_const(MMAP_MIN_ADDR),
            high_limit: VirtAddr::new_const(self.mmap_base),
            align_mask: 0,
            align_offset: 0,
            start_gap: 0,
        };
        if let Some(a) = self.vmas.vm_unmapped_area(&info) {
            return Ok(a.as_u64());
        }
        info.flags = VmUnmappedAreaFlags::empty();
        info.high_limit = VirtAddr::new_const(TASK_SIZE);
        self.vmas.vm_unmapped_area(&info).map(VirtAddr::as_u64).ok_or(Errno::ENOMEM)
    }

    /// [`VmaTree::find_vma`] for an address from user space, which may be
    /// non-canonical (no VMA is there).
    pub(crate) fn find_vma_user(&self, addr: u64) -> Option<&crate::vma::Vma> {
        VirtAddr::new(addr).and_then(|a| self.vmas.find_vma(a))
    }

    /// Whether `[start, end)` is free, counting a stack's guard gap as used
    /// (Linux `find_vma_intersection` + `vm_start_gap`).
    fn range_free(&self, start: u64, end: u64) -> bool {
        match self.vmas.find_vma(VirtAddr::new_const(start)) {
            None => true,
            Some(v) => {
                let gap_start = if v.flags().contains(VmaFlags::GROWSDOWN) {
                    v.start().as_u64().saturating_sub(STACK_GUARD_GAP)
                } else {
                    v.start().as_u64()
                };
                gap_start >= end
            }
        }
    }

    /// The mmap system call (Linux `do_mmap` + `mmap_region`). `len` in
    /// bytes, `pgoff` in pages.
    pub fn do_mmap(
        &mut self,
        addr: u64,
        len: u64,
        prot: u32,
        flags: u32,
        file: Option<MapFile>,
        pgoff: u64,
    ) -> Result<u64, Errno> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let len = align_up(len, PAGE_SIZE).ok_or(Errno::ENOMEM)?;
        if len > TASK_SIZE {
            return Err(Errno::ENOMEM);
        }
        if pgoff.checked_add(len >> PAGE_SHIFT).is_none() {
            return Err(Errno::EOVERFLOW);
        }
        let map_type = flags & MAP_TYPE;
        if !matches!(map_type, MAP_SHARED | MAP_PRIVATE | MAP_SHARED_VALIDATE) {
            return Err(Errno::EINVAL);
        }
        let shared = map_type != MAP_PRIVATE;
        let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
        let addr = if fixed {
            if addr & (PAGE_SIZE - 1) != 0 {
                return Err(Errno::EINVAL);
            }
            if addr.checked_add(len).is_none_or(|e| e > TASK_SIZE) {
                return Err(Errno::ENOMEM);
            }
            if addr < MMAP_MIN_ADDR {
                return Err(Errno::EPERM);
            }
            if flags & MAP_FIXED_NOREPLACE != 0 && flags & MAP_FIXED == 0 && !self.range_free_exact(addr, addr + len) {
                return Err(Errno::EEXIST);
            }
            addr
        } else {
            self.get_unmapped_area(addr, len)?
        };
        let mut vm_flags =
            calc_vm_prot_bits(prot) | self.def_flags | VmaFlags::MAYREAD | VmaFlags::MAYWRITE | VmaFlags::MAYEXEC;
        if flags & MAP_GROWSDOWN != 0 {
            vm_flags |= VmaFlags::GROWSDOWN;
        }
        if flags & MAP_LOCKED != 0 {
            vm_flags |= VmaFlags::LOCKED;
        }
        if flags & MAP_NORESERVE != 0 {
            vm_flags |= VmaFlags::NORESERVE;
        }
        if shared {
            vm_flags |= VmaFlags::SHARED | VmaFlags::MAYSHARE;
        }
        let vma_file = match file {
            Some(f) => {
                if shared && !f.writable {
                    if prot & PROT_WRITE != 0 {
                        return Err(Errno::EACCES);
                    }
                    vm_flags -= VmaFlags::MAYWRITE | VmaFlags::SHARED;
                }
                Some(f.file)
            }
            None => None,
        };
        // MAP_FIXED replaces what was there (Linux `mmap_region` unmaps first).
        self.do_munmap(addr, len)?;
        let pgoff = if vma_file.is_some() { pgoff } else { addr >> PAGE_SHIFT };
        let desc = VmaDesc {
            start: VirtAddr::new_const(addr),
            end: VirtAddr::new_const(addr + len),
            flags: vm_flags,
            pgoff,
            file: vma_file,
        };
        self.vmas.insert(desc).map_err(vma_err)?;
        if shared && vma_file.is_none() {
            if let Err(e) = self.populate_shared_anon(addr, addr + len) {
                // Without its pages a shared mapping cannot be shared.
                let _ = self.do_munmap(addr, len);
                return Err(fault_err(e));
            }
            return Ok(addr);
        }
        // Linux `do_mmap`'s `*populate`: locked (not on fault) or
        // MAP_POPULATE without MAP_NONBLOCK; errors are not the caller's.
        let locked = vm_flags & (VmaFlags::LOCKED | VmaFlags::LOCKONFAULT) == VmaFlags::LOCKED;
        if locked || flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE {
            let _ = self.populate(addr, addr + len);
        }
        Ok(addr)
    }

    /// Whether no VMA intersects `[start, end)`.
    fn range_free_exact(&self, start: u64, end: u64) -> bool {
        self.vmas.find_vma(VirtAddr::new_const(start)).is_none_or(|v| v.start().as_u64() >= end)
    }

    /// The munmap system call (Linux `do_munmap`): removes every VMA part
    /// inside the range and frees its pages. Holes are fine.
    pub fn do_munmap(&mut self, start: u64, len: u64) -> Result<(), Errno> {
        if start & (PAGE_SIZE - 1) != 0 || start > TASK_SIZE || len > TASK_SIZE - start {
            return Err(Errno::EINVAL);
        }
        let len = align_up(len, PAGE_SIZE).ok_or(Errno::EINVAL)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let end = start + len;
        let mut removed: [(u64, u64); 16] = [(0, 0); 16];
        loop {
            // Zap after detaching, 16 VMAs at a time (the tree's callback
            // cannot borrow the page tables mutably).
            let mut n = 0;
            let mut limit = end;
            if let Some(v) = self.vmas.range(VirtAddr::new_const(start), VirtAddr::new_const(end)).nth(removed.len()) {
                limit = v.start().as_u64();
            }
            self.vmas
                .munmap_range(VirtAddr::new_const(start), VirtAddr::new_const(limit), |v| {
                    removed[n] = (v.start().as_u64(), v.end().as_u64());
                    n += 1;
                })
                .map_err(vma_err)?;
            for &(s, e) in &removed[..n] {
                self.zap_range(s, e);
            }
            if limit == end {
                break;
            }
        }
        self.free_pgtables(start, end);
        Ok(())
    }

    /// Frees the page tables that served only the unmapped `[start, end)`
    /// (Linux `free_pgtables` in `unmap_region`): those between the VMAs
    /// around it.
    fn free_pgtables(&mut self, start: u64, end: u64) {
        let floor = self.vmas.find_vma_prev(VirtAddr::new_const(start)).1.map_or(0, |p| p.end().as_u64());
        let ceiling = self.vmas.find_vma(VirtAddr::new_const(end)).map_or(USER_TOP, |n| n.start().as_u64());
        let mut gather = TlbGather::for_mm(self.pgd.root());
        self.pgd.free_pgtables(start, end, floor, ceiling, &mut gather);
        gather.finish(self.tlb, self.pgd.pgdat());
    }

    /// The mprotect system call (Linux `do_mprotect_pkey`).
    pub fn mprotect(&mut self, start: u64, len: u64, prot: u32) -> Result<(), Errno> {
        if start & (PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM | PROT_GROWSDOWN | PROT_GROWSUP) != 0
            || prot & (PROT_GROWSDOWN | PROT_GROWSUP) == (PROT_GROWSDOWN | PROT_GROWSUP)
        {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let len = align_up(len, PAGE_SIZE).ok_or(Errno::ENOMEM)?;
        let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
        let mut start = start;
        if prot & (PROT_GROWSDOWN | PROT_GROWSUP) != 0 {
            // The change extends to the start of the grows-down VMA the
            // range begins in; x86_64 has no grows-up VMAs, so
            // PROT_GROWSUP always fails (Linux `do_mprotect_pkey`).
            let vma = self
                .vmas
                .find_vma(VirtAddr::new_const(start))
                .filter(|v| v.start().as_u64() < end)
                .ok_or(Errno::ENOMEM)?;
            if prot & PROT_GROWSUP != 0 {
                // The range must start inside a VMA (ENOMEM), which then
                // cannot grow up (EINVAL).
                return Err(if vma.start().as_u64() > start { Errno::ENOMEM } else { Errno::EINVAL });
            }
            if !vma.flags().contains(VmaFlags::GROWSDOWN) {
                return Err(Errno::EINVAL);
            }
            start = vma.start().as_u64();
        }
        if end > TASK_SIZE || !self.vmas.covers(VirtAddr::new_const(start), VirtAddr::new_const(end)) {
            return Err(Errno::ENOMEM);
        }
        let new = calc_vm_prot_bits(prot);
        for v in self.vmas.range(VirtAddr::new_const(start), VirtAddr::new_const(end)) {
            let may = VmaFlags::from_bits_retain((v.flags().bits() & 0x70) >> 4);
            if !may.contains(new) {
                return Err(Errno::EACCES);
            }
        }
        self.vmas
            .modify_flags(VirtAddr::new_const(start), VirtAddr::new_const(end), |v| (v.flags() - PROT_BITS) | new)
            .map_err(vma_err)?;
        let mut ranges: [(u64, u64, VmaFlags); 16] = [(0, 0, VmaFlags::empty()); 16];
        let mut at = start;
        while at < end {
            let mut n = 0;
            for v in self.vmas.range(VirtAddr::new_const(at), VirtAddr::new_const(end)).take(ranges.len()) {
                ranges[n] = (v.start().as_u64().max(at), v.end().as_u64().min(end), v.flags());
                n += 1;
            }
            for &(s, e, f) in &ranges[..n] {
                self.change_protection(s, e, f);
                at = e;
            }
            if n == 0 {
                break;
            }
        }
        Ok(())
    }

    /// The brk system call (Linux `sys_brk`): returns the new break, or
    /// the old one if the request cannot be met.
    pub fn brk(&mut self, requested: u64) -> u64 {
        let l = self.layout;
        if requested < l.start_brk || requested > TASK_SIZE {
            return l.brk;
        }
        let new_aligned = align_up(requested, PAGE_SIZE).unwrap_or(u64::MAX);
        let old_aligned = align_up(l.brk, PAGE_SIZE).unwrap_or(u64::MAX);
        if new_aligned == old_aligned {
            self.layout.brk = requested;
            return requested;
        }
        if requested < l.brk {
            if self.do_munmap(new_aligned, old_aligned - new_aligned).is_err() {
                return l.brk;
            }
            self.layout.brk = requested;
            return requested;
        }
        // Growing: the new pages and a stack's guard gap must be free.
        if !self.range_free(old_aligned, new_aligned) {
            return l.brk;
        }
        let desc = VmaDesc::anon(
            VirtAddr::new_const(old_aligned),
            VirtAddr::new_const(new_aligned),
            VmaFlags::READ
                | VmaFlags::WRITE
                | VmaFlags::MAYREAD
                | VmaFlags::MAYWRITE
                | VmaFlags::MAYEXEC
                | self.def_flags,
        );
        if self.vmas.insert(desc).is_err() {
            return l.brk;
        }
        self.layout.brk = requested;
        // After mlockall(MCL_FUTURE) the heap is locked: fault it in
        // (Linux `mm_populate`, errors ignored).
        if self.def_flags & (VmaFlags::LOCKED | VmaFlags::LOCKONFAULT) == VmaFlags::LOCKED {
            let _ = self.populate(old_aligned, new_aligned);
        }
        requested
    }

    /// Grows the stack VMA starting at `vma_start` down to `addr` (Linux
    /// `expand_downwards`), within the stack limit and keeping the guard
    /// gap to the VMA below.
    pub(crate) fn expand_stack(&mut self, vma_start: VirtAddr, addr: u64) -> Result<(), FaultError> {
        let (vma, prev) = self.vmas.find_vma_prev(vma_start);
        let vma = vma.ok_or(FaultError::MapErr)?;
        if addr < MMAP_MIN_ADDR || vma.end().as_u64() - addr > STACK_RLIMIT {
            return Err(FaultError::MapErr);
        }
        if let Some(p) = prev
            && p.end().as_u64() + STACK_GUARD_GAP > addr
            && p.end().as_u64() <= vma_start.as_u64()
        {
            return Err(FaultError::MapErr);
        }
        let desc = VmaDesc { start: VirtAddr::new_const(addr), end: vma_start, ..vma.desc() };
        let desc = VmaDesc { pgoff: vma.pgoff().saturating_sub((vma_start.as_u64() - addr) >> PAGE_SHIFT), ..desc };
        self.vmas.insert(desc).map_err(|_| FaultError::Oom)
    }

    /// Copies this address space for a fork child (Linux `dup_mmap`):
    /// every VMA without `VM_DONTCOPY`, its ptes (copy-on-write), layout
    /// and flags, memory locks excepted.
    pub fn dup_mmap(&mut self, child: &mut MmStruct<'a, F, A>) -> Result<(), Errno> {
        child.mmap_base = self.mmap_base;
        child.layout = self.layout;
        // Memory locks are not inherited (Linux `mm_init` keeps only
        // `VM_INIT_DEF_MASK` of `def_flags`, `dup_mmap` clears
        // `VM_LOCKED_MASK`).
        let unlocked = VmaFlags::LOCKED | VmaFlags::LOCKONFAULT;
        child.def_flags = self.def_flags - unlocked;
        for v in self.vmas.iter() {
            if v.flags().contains(VmaFlags::DONTCOPY) {
                continue;
            }
            let desc = v.desc();
            child.vmas.insert(VmaDesc { flags: desc.flags - unlocked, ..desc }).map_err(vma_err)?;
            child.copy_page_range(self, v)?;
        }
        Ok(())
    }

    /// Tears everything down (Linux `exit_mmap`): every VMA and page; the
    /// page tables go with the value. Must not be the loaded address space.
    pub fn exit_mmap(&mut self) {
        let _ = self.do_munmap(0, TASK_SIZE);
    }

    /// /proc/PID/maps lines (Linux `show_map_vma`).
    pub fn show_maps(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        for v in self.vmas.iter() {
            let f = v.flags();
            let flag = |b: VmaFlags, c: char| if f.contains(b) { c } else { '-' };
            let (offset, name): (u64, &str) = match v.file() {
                Some(file) => (v.pgoff() << PAGE_SHIFT, file.name()),
                None => (0, ""),
            };
            let start = v.start().as_u64();
            let end = v.end().as_u64();
            let label = if v.file().is_some() {
                name
            } else if start <= self.layout.start_brk && end >= self.layout.brk && self.layout.brk > 0 {
                "[heap]"
            } else if start <= self.layout.start_stack && end >= self.layout.start_stack {
                "[stack]"
            } else {
                ""
            };
            // Linux pads the fixed part to 73 columns before a name
            // (`seq_setwidth(m, 25 + sizeof(void *) * 6 - 1)`, `seq_pad`).
            let mut head = LineBuf::new();
            let _ = write!(
                head,
                "{start:08x}-{end:08x} {}{}{}{} {offset:08x} 00:00 0",
                flag(VmaFlags::READ, 'r'),
                flag(VmaFlags::WRITE, 'w'),
                flag(VmaFlags::EXEC, 'x'),
                if f.contains(VmaFlags::MAYSHARE) { 's' } else { 'p' },
            );
            out.write_str(head.as_str())?;
            if label.is_empty() {
                writeln!(out)?;
            } else {
                let pad = 73usize.saturating_sub(head.len).max(1);
                writeln!(out, "{:pad$}{label}", "")?;
            }
        }
        Ok(())
    }
}

impl<F: PteFormat, A: VmaAlloc> Drop for MmStruct<'_, F, A> {
    /// Frees every page still mapped (Linux `mmput` -> `exit_mmap`); the
    /// page tables and VMAs go with their own values.
    fn drop(&mut self) {
        self.exit_mmap();
    }
}

/// A line of at most 96 bytes built on the stack (mm has no allocator).
struct LineBuf {
    buf: [u8; 96],
    len: usize,
}

impl LineBuf {
    fn new() -> Self {
        LineBuf { buf: [0; 96], len: 0 }
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Rounds `len` up to pages, `None` on overflow (Linux `PAGE_ALIGN`).
pub fn page_align(len: u64) -> Option<u64> {
    align_up(len, PAGE_SIZE)
}

/// The page containing `addr` (Linux `PAGE_MASK`).
pub fn page_down(addr: u64) -> u64 {
    align_down(addr, PAGE_SIZE)
}

#[cfg(test)]
pub(crate) mod tests;
