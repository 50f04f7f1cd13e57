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
//! Linux's argument checks in Linux's order and returns Linux's errno,
//! turning its raw `u64` arguments into a [`UserRange`] once (see
//! [`crate::uaddr`]); everything below takes only those types. Then it
//! changes the VMAs and, through [`crate::memory`], the page tables.
//!
//! Resource limits ([`MmLimits`]) are checked where Linux checks them:
//! `RLIMIT_AS` and `RLIMIT_DATA` whenever the address space grows
//! (`may_expand_vm`: mmap, brk, mremap, stack growth), `RLIMIT_MEMLOCK`
//! for locked memory (`mlock_future_ok`, [`crate::mlock`]),
//! `RLIMIT_STACK` for stack growth, and `vm.max_map_count`
//! ([`crate::overcommit::Overcommit::max_map_count`], copied into the
//! VMA tree before each change) for the number of VMAs.
//!
//! Overcommit accounting ([`crate::overcommit`]): a private writable VMA
//! (Linux `accountable_mapping`: `VM_WRITE` without `VM_SHARED` or
//! `VM_NORESERVE`; `MAP_NORESERVE` sets `VM_NORESERVE` only while
//! `vm.overcommit_memory` is not 2) gets `VM_ACCOUNT`, and its pages are
//! charged to the machine's committed total before it exists (Linux
//! `security_vm_enough_memory_mm`, `ENOMEM` when refused) and uncharged
//! when they are unmapped. Charged where Linux charges: mmap (a
//! `MAP_FIXED` mapping's replaced `VM_ACCOUNT` pages pass their charge
//! on, `mmap_region`'s `nr_accounted`), brk's growth, stack growth,
//! mprotect making a private mapping writable for the first time
//! (`mprotect_fixup`, which also uncharges an anonymous VMA made
//! read-only before it had an `anon_vma`), mremap's growth and
//! `MREMAP_DONTUNMAP`'s copy ([`crate::mremap`]), and fork, for each
//! `VM_ACCOUNT` VMA the child gets (`dup_mmap`); munmap, brk's shrinking,
//! mremap's shrinking and exit uncharge (`do_vmi_munmap`, `exit_mmap`).
//! Splits and merges move no charge: merging needs equal flags, so
//! `VM_ACCOUNT` and plain VMAs never merge. Hence the invariant the
//! model-based tests check: the committed total is the sum of the pages
//! of every `VM_ACCOUNT` VMA of every address space.
//!
//! Locking: an `MmStruct` is a plain value; the kernel keeps it behind one
//! reader/writer lock per address space (Linux's `mmap_lock`): the
//! `&mut self` operations here under the write lock, page faults
//! ([`MmStruct::handle_mm_fault`]) and reports under the read lock, which
//! the threads of a process may hold at once (their pte changes are
//! serialised by the page-table lock, see [`crate::memory`]).
//!
//! `MAP_SHARED | MAP_ANONYMOUS` memory is a mapping of a new shmem file
//! (Linux `shmem_zero_setup`, see [`crate::shmem`]), faulted in on
//! demand and shared through the file.
//!
//! Differences from Linux:
//! - Stack growth is charged only for a `VM_ACCOUNT` stack (Linux's
//!   `acct_stack_growth` charges any grows-down VMA and uncharges only
//!   `VM_ACCOUNT` ones); a zero-page charge is not asked for.
//! - `total_vm` is kept; `locked_vm` and `data_vm` are counted from the
//!   VMAs when a limit is checked (Linux keeps them as counters).

#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use uapi::errno::Errno;
use uapi::mman::*;
use uapi::resource::{RLIM_INFINITY, Rlimit};

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, Pfn, VirtAddr};
use crate::arch::TlbFlush;
use crate::gfp::Gfp;
use crate::memory::FaultError;
use crate::overcommit::{CommitRequester, Overcommit, OvercommitPolicy};
use crate::pgtable::{PageTable, PteFormat, TlbGather, USER_TOP};
use crate::shmem::ShmemZeroSetup;
use crate::uaddr::{UserAddr, UserRange};
use crate::vma::{
    STACK_GUARD_GAP, VM_MAY_BITS, VmUnmappedAreaFlags, VmUnmappedAreaInfo, VmaAlloc, VmaDesc, VmaError, VmaFile,
    VmaFlags, VmaTree,
};

pub use crate::uaddr::{TASK_SIZE, page_align};
pub use crate::vma::DEFAULT_MAX_MAP_COUNT;

/// Lowest address mmap hands out or accepts with `MAP_FIXED` (Linux's
/// default `vm.mmap_min_addr`).
pub const MMAP_MIN_ADDR: u64 = 65536;

/// [`MMAP_MIN_ADDR`] as a user address.
const MMAP_MIN: UserAddr = match UserAddr::new(MMAP_MIN_ADDR) {
    Ok(a) => a,
    Err(_) => panic!("mmap_min_addr is a page-aligned user address"),
};

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
    /// Whether the caller has `CAP_SYS_ADMIN`, whose commitments may use
    /// `vm.admin_reserve_kbytes` (Linux `__vm_enough_memory`'s
    /// `cap_sys_admin`).
    pub cap_sys_admin: bool,
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
            cap_sys_admin: true,
        }
    }
}

/// RSS counters (Linux `MM_FILEPAGES`, `MM_ANONPAGES`, `MM_SHMEMPAGES`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmCounter {
    /// Pages of file data.
    FilePages = 0,
    /// Anonymous pages.
    AnonPages = 1,
    /// Pages of shmem files (tmpfs, memfd, shared anonymous memory).
    ShmemPages = 2,
    /// Ptes holding swap entries (`MM_SWAPENTS`, [`crate::swap_state`]):
    /// not part of the RSS.
    SwapEnts = 3,
}

/// How many [`MmCounter`]s there are (Linux `NR_MM_COUNTERS`).
const NR_MM_COUNTERS: usize = 4;

/// A user address space (Linux `struct mm_struct`).
pub struct MmStruct<'a, F: PteFormat, A: VmaAlloc> {
    pub(crate) pgd: PageTable<'a, F>,
    pub(crate) vmas: VmaTree<A>,
    pub(crate) tlb: &'a dyn TlbFlush,
    pub(crate) zero_pfn: Pfn,
    /// Where shared anonymous mappings get their shmem file.
    shmem: &'a dyn ShmemZeroSetup,
    /// Serialises changes of present ptes made under a read hold of the
    /// mmap lock: concurrent faults install under it after checking the
    /// pte they decided on is still there (Linux `mm->page_table_lock`,
    /// one lock for the whole space as Linux without split pte locks).
    /// A spin lock held only for the install, never across an allocation
    /// or a sleep, and never taken in interrupt context.
    pub(crate) page_table_lock: spin::Mutex<()>,
    rss: [AtomicI64; NR_MM_COUNTERS],
    hiwater_rss: AtomicU64,
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

/// Private writable memory that is not a stack (Linux `is_data_mapping`),
/// what `RLIMIT_DATA` limits.
pub(crate) fn is_data_mapping(flags: VmaFlags) -> bool {
    flags & (VmaFlags::WRITE | VmaFlags::SHARED | VmaFlags::GROWSDOWN) == VmaFlags::WRITE
}

/// Where top-down mmap searches start for a stack limit of `stack`
/// bytes (Linux x86 `mmap_base()` without randomisation): the limit plus
/// the stack guard gap, clamped to between 128 MiB and five sixths of
/// user space, below `TASK_SIZE`.
fn mmap_base(stack: u64) -> u64 {
    const MIN_GAP: u64 = 128 << 20;
    const MAX_GAP: u64 = TASK_SIZE / 6 * 5;
    let gap = stack.saturating_add(STACK_GUARD_GAP).clamp(MIN_GAP, MAX_GAP);
    (TASK_SIZE - gap) & !(PAGE_SIZE - 1)
}

/// Whether `len` bytes from page `pgoff` fit in the largest file offset
/// (Linux `file_mmap_ok` with `MAX_LFS_FILESIZE`, the limit of a regular
/// file).
fn file_mmap_ok(pgoff: u64, len: u64) -> bool {
    const MAX_LFS_FILESIZE: u64 = i64::MAX as u64;
    len <= MAX_LFS_FILESIZE && pgoff <= (MAX_LFS_FILESIZE - len) >> PAGE_SHIFT
}

/// Where a VMA starts counting a grows-down stack's guard gap (Linux
/// `vm_start_gap`).
fn vm_start_gap(vma: &crate::vma::Vma) -> u64 {
    let start = vma.start().as_u64();
    if vma.flags().contains(VmaFlags::GROWSDOWN) { start.saturating_sub(STACK_GUARD_GAP) } else { start }
}

/// A file to map, as the kernel's file layer hands it over.
#[derive(Clone, Copy)]
pub struct MapFile {
    /// The file, which the caller holds a reference on for the call (see
    /// [`VmaFile`]'s lifetime rules): the VMA takes its own.
    pub file: &'static dyn VmaFile,
    /// Whether it was opened for writing (Linux `FMODE_WRITE`).
    pub writable: bool,
}

impl<'a, F: PteFormat, A: VmaAlloc> MmStruct<'a, F, A> {
    /// An empty address space sharing `kernel`'s upper half (Linux
    /// `mm_alloc` + `pgd_alloc`). `zero_pfn` is the shared zero page;
    /// `shmem` makes the files of shared anonymous mappings.
    pub fn new(
        kernel: &PageTable<'a, F>,
        root_gfp: Gfp,
        tlb: &'a dyn TlbFlush,
        zero_pfn: Pfn,
        shmem: &'a dyn ShmemZeroSetup,
        alloc: A,
    ) -> Result<Self, Errno> {
        let pgd = PageTable::new_user(kernel, root_gfp).map_err(|_| Errno::ENOMEM)?;
        let owner = crate::interval_tree::MmId(pgd.root().as_u64());
        Ok(MmStruct {
            pgd,
            vmas: VmaTree::with_owner(alloc, owner),
            tlb,
            zero_pfn,
            shmem,
            page_table_lock: spin::Mutex::new(()),
            rss: [const { AtomicI64::new(0) }; NR_MM_COUNTERS],
            hiwater_rss: AtomicU64::new(0),
            mmap_base: mmap_base(MmLimits::init().stack.rlim_cur),
            layout: MmLayout::default(),
            def_flags: VmaFlags::empty(),
            limits: MmLimits::init(),
        })
    }

    /// Places the mmap area below the room the stack may take (Linux
    /// x86 `arch_pick_mmap_layout` with `mmap_base()`), from the current
    /// `RLIMIT_STACK`: called once at exec, after the limits are set, as
    /// Linux reads the limit when exec starts; later setrlimit calls do
    /// not move it, and fork copies it.
    pub fn arch_pick_mmap_layout(&mut self) {
        self.mmap_base = mmap_base(self.limits.stack.rlim_cur);
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
        if delta < 0 {
            // The peak is sampled before RSS goes down (Linux calls
            // `update_hiwater_rss` before unmapping), not at every rise.
            self.update_hiwater_rss();
        }
        self.rss[counter as usize].fetch_add(delta, Ordering::Relaxed);
    }

    /// Records the current RSS in the peak if it is higher (Linux
    /// `update_hiwater_rss`).
    fn update_hiwater_rss(&self) {
        self.hiwater_rss.fetch_max(self.rss_pages(), Ordering::Relaxed);
    }

    /// Resident pages of one kind (Linux `get_mm_counter`).
    pub fn counter(&self, counter: MmCounter) -> u64 {
        self.rss[counter as usize].load(Ordering::Relaxed).max(0) as u64
    }

    /// Peak resident pages (Linux `get_mm_hiwater_rss`, VmHWM): the peak
    /// recorded before RSS last went down, or RSS now if higher.
    pub fn hiwater_rss(&self) -> u64 {
        self.hiwater_rss.load(Ordering::Relaxed).max(self.rss_pages())
    }

    /// Resident pages (Linux `get_mm_rss`).
    pub fn rss_pages(&self) -> u64 {
        [MmCounter::FilePages, MmCounter::AnonPages, MmCounter::ShmemPages].into_iter().map(|c| self.counter(c)).sum()
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

    /// The machine's overcommit accounting and sysctls.
    fn overcommit(&self) -> &'a Overcommit {
        self.pgd.pgdat().overcommit()
    }

    /// Charges `pages` to the committed total if the overcommit policy
    /// allows this address space to (Linux `security_vm_enough_memory_mm`:
    /// the caller's `CAP_SYS_ADMIN` and `total_vm`); `ENOMEM` if not.
    pub(crate) fn security_vm_enough_memory_mm(&self, pages: u64) -> Result<(), Errno> {
        if pages == 0 {
            return Ok(());
        }
        let who = CommitRequester { cap_sys_admin: self.limits.cap_sys_admin, total_vm: Some(self.total_vm()) };
        self.pgd.pgdat().vm_enough_memory(pages, who).map_err(|_| Errno::ENOMEM)
    }

    /// Takes `pages` off the committed total (Linux `vm_unacct_memory`).
    pub(crate) fn vm_unacct_memory(&self, pages: u64) {
        self.overcommit().vm_unacct_memory(pages);
    }

    /// Copies `vm.max_map_count` into the VMA tree, which checks it at
    /// every split: called before each change, since the sysctl may have
    /// changed since the last (Linux reads `sysctl_max_map_count` at each
    /// check). Returns it.
    pub(crate) fn sync_max_map_count(&mut self) -> usize {
        let max = self.overcommit().max_map_count();
        self.vmas.set_max_map_count(max);
        max
    }

    /// Where a mapping of `len` bytes (page-aligned) goes (Linux
    /// `get_unmapped_area` and `arch_get_unmapped_area_topdown`): with
    /// `fixed`, exactly at `hint` after Linux's checks (`ENOMEM` beyond
    /// user space, `EINVAL` unaligned, `EPERM` below `mmap_min_addr`);
    /// else the hint if it is free, else the highest free range below
    /// `mmap_base`, else the lowest anywhere.
    pub fn get_unmapped_area(&self, hint: u64, len: u64, fixed: bool) -> Result<UserRange, Errno> {
        if len > TASK_SIZE {
            return Err(Errno::ENOMEM);
        }
        if fixed {
            if hint > TASK_SIZE - len {
                return Err(Errno::ENOMEM);
            }
            let start = UserAddr::new(hint).map_err(|_| Errno::EINVAL)?;
            // Linux `security_mmap_addr`.
            if hint < MMAP_MIN_ADDR {
                return Err(Errno::EPERM);
            }
            return UserRange::at(start, len).ok_or(Errno::ENOMEM);
        }
        if len > TASK_SIZE - MMAP_MIN_ADDR {
            return Err(Errno::ENOMEM);
        }
        // Linux `round_hint_to_min`: the hint's page, raised to
        // mmap_min_addr.
        if hint != 0
            && let Some(range) = UserAddr::page_down(hint.max(MMAP_MIN_ADDR)).and_then(|a| UserRange::at(a, len))
            && self.range_free(range)
        {
            return Ok(range);
        }
        let base = UserAddr::page_down(self.mmap_base).unwrap_or(UserAddr::TASK_SIZE);
        let mut info = VmUnmappedAreaInfo {
            flags: VmUnmappedAreaFlags::TOPDOWN,
            length: len,
            low_limit: MMAP_MIN.virt(),
            high_limit: base.virt(),
            align_mask: 0,
            align_offset: 0,
            start_gap: 0,
        };
        let found = self.vmas.vm_unmapped_area(&info).or_else(|| {
            info.flags = VmUnmappedAreaFlags::empty();
            info.high_limit = UserAddr::TASK_SIZE.virt();
            self.vmas.vm_unmapped_area(&info)
        });
        found.and_then(UserAddr::of).and_then(|a| UserRange::at(a, len)).ok_or(Errno::ENOMEM)
    }

    /// [`VmaTree::find_vma`] for an address from user space, which may be
    /// non-canonical (no VMA is there).
    pub(crate) fn find_vma_user(&self, addr: u64) -> Option<&crate::vma::Vma> {
        VirtAddr::new(addr).and_then(|a| self.vmas.find_vma(a))
    }

    /// Whether `range` is free, counting a stack's guard gap as used
    /// (Linux `find_vma_intersection` + `vm_start_gap`).
    fn range_free(&self, range: UserRange) -> bool {
        match self.vmas.find_vma(range.start().virt()) {
            None => true,
            Some(v) => vm_start_gap(v) >= range.end().as_u64(),
        }
    }

    /// Pages of the VMAs whose flags satisfy `pred` (Linux keeps these
    /// sums as `locked_vm`, `data_vm`, `stack_vm`; we count them when a
    /// limit is checked, which only the system calls that grow do).
    fn vm_pages(&self, range: UserRange, pred: impl Fn(VmaFlags) -> bool) -> u64 {
        self.vmas
            .range(range.start().virt(), range.end().virt())
            .filter(|v| pred(v.flags()))
            .map(|v| range.clip_virt(v.start(), v.end()).pages())
            .sum()
    }

    /// Pages of `VM_LOCKED` VMAs in `range` (Linux `locked_vm` over all of
    /// user space, `count_mm_mlocked_page_nr` over a range).
    pub(crate) fn locked_pages(&self, range: UserRange) -> u64 {
        self.vm_pages(range, |f| f.contains(VmaFlags::LOCKED))
    }

    /// Whether the address space may grow by `pages` pages of a VMA with
    /// `flags` (Linux `may_expand_vm`): `RLIMIT_AS` over `total_vm`, and
    /// `RLIMIT_DATA` over private writable memory (`data_vm`), with
    /// Linux's exception for a zero soft limit under a larger hard one.
    pub(crate) fn may_expand_vm(&self, flags: VmaFlags, pages: u64) -> bool {
        let limit_pages = |bytes: u64| bytes >> PAGE_SHIFT;
        let l = self.limits;
        if self.total_vm().saturating_add(pages) > limit_pages(l.address_space.rlim_cur) {
            return false;
        }
        // Counting data_vm walks every VMA: only done under a limit.
        if is_data_mapping(flags) && l.data.rlim_cur != RLIM_INFINITY {
            let data = self.vm_pages(UserRange::ALL, is_data_mapping).saturating_add(pages);
            if data > limit_pages(l.data.rlim_cur) && !(l.data.rlim_cur == 0 && data <= limit_pages(l.data.rlim_max)) {
                return false;
            }
        }
        true
    }

    /// Whether `bytes` more of memory with `flags` may be locked (Linux
    /// `mlock_future_ok`): always unless `VM_LOCKED`, else within
    /// `RLIMIT_MEMLOCK` or with `CAP_IPC_LOCK`.
    pub(crate) fn mlock_future_ok(&self, flags: VmaFlags, bytes: u64) -> bool {
        if !flags.contains(VmaFlags::LOCKED) || self.limits.cap_ipc_lock {
            return true;
        }
        let locked = self.locked_pages(UserRange::ALL).saturating_add(bytes >> PAGE_SHIFT);
        locked <= self.limits.memlock.rlim_cur >> PAGE_SHIFT
    }

    /// Whether the caller may lock memory at all (Linux `can_do_mlock`).
    pub(crate) fn can_do_mlock(&self) -> bool {
        self.limits.memlock.rlim_cur != 0 || self.limits.cap_ipc_lock
    }

    /// The mmap system call (Linux `do_mmap` + `mmap_region`). `len` in
    /// bytes, `pgoff` in pages. The checks come in Linux's order, so the
    /// mapping type is judged only after the placement (a
    /// `MAP_FIXED_NOREPLACE` without a type over a mapping is `EEXIST`).
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
        // Linux forces MAP_FIXED handling for MAP_FIXED_NOREPLACE.
        let fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) != 0;
        let len = page_align(len).ok_or(Errno::ENOMEM)?;
        if pgoff.checked_add(len >> PAGE_SHIFT).is_none() {
            return Err(Errno::EOVERFLOW);
        }
        if self.vmas.map_count() > self.sync_max_map_count() {
            return Err(Errno::ENOMEM);
        }
        let range = self.get_unmapped_area(addr, len, fixed)?;
        if flags & MAP_FIXED_NOREPLACE != 0 && !self.range_free_exact(range) {
            return Err(Errno::EEXIST);
        }
        let mut vm_flags =
            calc_vm_prot_bits(prot) | self.def_flags | VmaFlags::MAYREAD | VmaFlags::MAYWRITE | VmaFlags::MAYEXEC;
        if flags & MAP_GROWSDOWN != 0 {
            vm_flags |= VmaFlags::GROWSDOWN;
        }
        if flags & MAP_LOCKED != 0 {
            if !self.can_do_mlock() {
                return Err(Errno::EPERM);
            }
            vm_flags |= VmaFlags::LOCKED;
        }
        if !self.mlock_future_ok(vm_flags, len) {
            return Err(Errno::EAGAIN);
        }
        // MAP_NORESERVE is honoured only while overcommit is allowed.
        if flags & MAP_NORESERVE != 0 && self.overcommit().policy() != OvercommitPolicy::Never {
            vm_flags |= VmaFlags::NORESERVE;
        }
        let map_type = flags & MAP_TYPE;
        let vma_file = match file {
            Some(f) => {
                if !file_mmap_ok(pgoff, len) {
                    return Err(Errno::EOVERFLOW);
                }
                // A file mapping cannot grow (Linux's MAP_PRIVATE case).
                if vm_flags.contains(VmaFlags::GROWSDOWN) {
                    return Err(Errno::EINVAL);
                }
                if !matches!(map_type, MAP_SHARED | MAP_PRIVATE | MAP_SHARED_VALIDATE) {
                    return Err(Errno::EINVAL);
                }
                if map_type != MAP_PRIVATE {
                    vm_flags |= VmaFlags::SHARED | VmaFlags::MAYSHARE;
                    if !f.writable {
                        if prot & PROT_WRITE != 0 {
                            return Err(Errno::EACCES);
                        }
                        vm_flags -= VmaFlags::MAYWRITE | VmaFlags::SHARED;
                    }
                }
                Some(f.file)
            }
            None => match map_type {
                MAP_SHARED | MAP_SHARED_VALIDATE if vm_flags.contains(VmaFlags::GROWSDOWN) => {
                    return Err(Errno::EINVAL);
                }
                MAP_SHARED | MAP_SHARED_VALIDATE => {
                    vm_flags |= VmaFlags::SHARED | VmaFlags::MAYSHARE;
                    None
                }
                MAP_PRIVATE => None,
                _ => return Err(Errno::EINVAL),
            },
        };
        // Linux `mmap_region`: a MAP_FIXED mapping's replaced pages do not
        // count against RLIMIT_AS.
        let replaced = if fixed { self.vm_pages(range, |_| true) } else { 0 };
        if !self.may_expand_vm(vm_flags, range.pages() - replaced) {
            return Err(Errno::ENOMEM);
        }
        // Private writable memory is charged, less what the replaced
        // VM_ACCOUNT pages were charged, which passes to it (Linux
        // `accountable_mapping`, `vms.nr_accounted`).
        let accountable = vm_flags & (VmaFlags::NORESERVE | VmaFlags::SHARED | VmaFlags::WRITE) == VmaFlags::WRITE;
        let replaced_accounted = if fixed && accountable { self.vm_pages(range, Self::accounted) } else { 0 };
        let charged = if accountable { range.pages() - replaced_accounted } else { 0 };
        if accountable {
            self.security_vm_enough_memory_mm(charged)?;
            vm_flags |= VmaFlags::ACCOUNT;
        }
        // Shared anonymous memory maps a new shmem file from its start
        // (Linux `mmap_region` -> `shmem_zero_setup`), made before anything
        // is unmapped so that without memory for it nothing changes.
        let zero_file = match vma_file {
            None if vm_flags.contains(VmaFlags::SHARED) => match self.shmem.shmem_zero_setup(len) {
                Ok(zero) => Some(zero),
                Err(e) => {
                    self.vm_unacct_memory(charged);
                    return Err(e);
                }
            },
            _ => None,
        };
        let (vma_file, pgoff) = match (zero_file, vma_file) {
            (Some(zero), _) => (Some(zero), 0),
            (None, Some(file)) => (Some(file), pgoff),
            (None, None) => (None, range.start().pfn_index()),
        };
        let desc =
            VmaDesc { start: range.start().virt(), end: range.end().virt(), flags: vm_flags, pgoff, file: vma_file };
        // MAP_FIXED replaces what was there (Linux `mmap_region` unmaps
        // first); if the mapping then cannot be made, the replaced pages'
        // charge goes with the new one's.
        let mapped = match self.unmap_range(range, !accountable) {
            Ok(()) => self.vmas.insert(desc).map_err(|e| {
                self.vm_unacct_memory(charged + replaced_accounted);
                vma_err(e)
            }),
            Err(e) => {
                self.vm_unacct_memory(charged);
                Err(e)
            }
        };
        if let Some(zero) = zero_file {
            // The VMA holds its own reference now, if it was made.
            zero.put_file();
        }
        mapped?;
        // Linux `do_mmap`'s `*populate`: locked (not on fault) or
        // MAP_POPULATE without MAP_NONBLOCK; errors are not the caller's.
        let locked = vm_flags & (VmaFlags::LOCKED | VmaFlags::LOCKONFAULT) == VmaFlags::LOCKED;
        if locked || flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE {
            let _ = self.populate(range);
        }
        Ok(range.start().as_u64())
    }

    /// Whether no VMA intersects `range`.
    fn range_free_exact(&self, range: UserRange) -> bool {
        self.vmas.find_vma(range.start().virt()).is_none_or(|v| v.start().as_u64() >= range.end().as_u64())
    }

    /// The munmap system call (Linux `__vm_munmap`'s checks, then
    /// [`Self::munmap_range`]).
    pub fn do_munmap(&mut self, start: u64, len: u64) -> Result<(), Errno> {
        // Linux `do_vmi_munmap`: EINVAL for a bad start, a range past
        // user space or a zero length, in any order.
        let range = UserRange::from_user(start, len).map_err(|_| Errno::EINVAL)?;
        if range.is_empty() {
            return Err(Errno::EINVAL);
        }
        self.munmap_range(range)
    }

    /// Removes every VMA part inside `range` and frees its pages and the
    /// page tables only they used (Linux `do_vmi_munmap`). Holes are fine.
    /// As in Linux, the VMAs are split first, then their page tables
    /// zapped while they and their files are still there (dirty ptes of a
    /// file's pages reach the file), then they are freed.
    /// The `VM_ACCOUNT` VMAs' pages are uncharged (Linux
    /// `vms_complete_munmap_vmas`' `vm_unacct_memory(nr_accounted)`).
    pub fn munmap_range(&mut self, range: UserRange) -> Result<(), Errno> {
        self.unmap_range(range, true)
    }

    /// [`Self::munmap_range`], uncharging the unmapped `VM_ACCOUNT` pages
    /// only if `unaccount` (a `MAP_FIXED` mapping that is charged itself
    /// takes their charge over).
    fn unmap_range(&mut self, range: UserRange, unaccount: bool) -> Result<(), Errno> {
        if range.is_empty() {
            return Ok(());
        }
        self.sync_max_map_count();
        let (start, end) = (range.start().virt(), range.end().virt());
        self.vmas.split_for_munmap(start, end).map_err(vma_err)?;
        let mut at = start;
        let mut nr_accounted = 0;
        while let Some(desc) = self.vmas.find_vma(at).map(|v| v.desc()).filter(|d| d.start < end) {
            if let Some(part) = UserRange::of(desc.start, desc.end) {
                self.zap_range(&desc, part);
                if Self::accounted(desc.flags) {
                    nr_accounted += part.pages();
                }
            }
            at = desc.end;
        }
        self.vmas.munmap_range(start, end, |_| {}).map_err(vma_err)?;
        if unaccount {
            self.vm_unacct_memory(nr_accounted);
        }
        self.free_pgtables(range);
        Ok(())
    }

    /// Whether a VMA's pages are charged to the committed total.
    fn accounted(flags: VmaFlags) -> bool {
        flags.contains(VmaFlags::ACCOUNT)
    }

    /// Frees the page tables that served only the unmapped `range`
    /// (Linux `free_pgtables` in `unmap_region`): those between the VMAs
    /// around it.
    fn free_pgtables(&mut self, range: UserRange) {
        let floor = self.vmas.find_vma_prev(range.start().virt()).1.map_or(0, |p| p.end().as_u64());
        let ceiling = self.vmas.find_vma(range.end().virt()).map_or(USER_TOP, |n| n.start().as_u64());
        let mut gather = TlbGather::for_mm(self.pgd.root());
        self.pgd.free_pgtables(range.start().as_u64(), range.end().as_u64(), floor, ceiling, &mut gather);
        gather.finish(self.tlb, self.pgd.pgdat());
    }

    /// The mprotect system call (Linux `do_mprotect_pkey`), checks in
    /// Linux's order: both grow bits, alignment, a zero length (success,
    /// whatever the other bits), the end's wrap, then unknown bits. The
    /// change is applied VMA by VMA in address order; a hole or a VMA
    /// that may not take the protection (`EACCES`) ends the call with the
    /// VMAs before it already changed, as Linux does.
    pub fn mprotect(&mut self, start: u64, len: u64, prot: u64) -> Result<(), Errno> {
        let grows = (prot & u64::from(PROT_GROWSDOWN | PROT_GROWSUP)) as u32;
        let prot = prot & !u64::from(grows);
        if grows == PROT_GROWSDOWN | PROT_GROWSUP || start & (PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(());
        }
        let end = page_align(len).and_then(|l| start.checked_add(l)).filter(|&e| e > start).ok_or(Errno::ENOMEM)?;
        // Linux `arch_validate_prot`: the prot is an unsigned long.
        let Ok(prot) = u32::try_from(prot) else { return Err(Errno::EINVAL) };
        if prot & !(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM) != 0 {
            return Err(Errno::EINVAL);
        }
        // Beyond user space no VMA is found (Linux `vma_find`: ENOMEM).
        let (mut range, cut) = UserRange::from_user_cut(start, end - start).map_err(|_| Errno::ENOMEM)?;
        let first = self.vmas.find_vma(range.start().virt()).filter(|v| v.start() < range.end().virt());
        let first = first.ok_or(Errno::ENOMEM)?;
        if grows & PROT_GROWSDOWN != 0 {
            // The change extends to the start of the grows-down VMA.
            if !first.flags().contains(VmaFlags::GROWSDOWN) {
                return Err(Errno::EINVAL);
            }
            let vma_start = UserAddr::of(first.start()).ok_or(Errno::ENOMEM)?;
            range = UserRange::new(vma_start, range.end()).ok_or(Errno::ENOMEM)?;
        } else if first.start() > range.start().virt() {
            return Err(Errno::ENOMEM);
        } else if grows & PROT_GROWSUP != 0 {
            // x86_64 has no grows-up VMAs.
            return Err(Errno::EINVAL);
        }
        let new = calc_vm_prot_bits(prot);
        let mut at = range.start();
        while at < range.end() {
            let (vma_start, vma_end, flags) = match self.vmas.find_vma(at.virt()) {
                Some(v) => (v.start(), v.end(), v.flags()),
                None => return Err(Errno::ENOMEM),
            };
            if vma_start > at.virt() {
                return Err(Errno::ENOMEM);
            }
            // VM_MAY* shifted onto VM_READ|WRITE|EXEC.
            let may = VmaFlags::from_bits_retain((flags & VM_MAY_BITS).bits() >> 4);
            if !may.contains(new) {
                return Err(Errno::EACCES);
            }
            let part = range.from(at).clip_virt(vma_start, vma_end);
            if part.is_empty() {
                return Err(Errno::ENOMEM);
            }
            self.mprotect_fixup(part, new)?;
            at = part.end();
        }
        // A range past user space runs out of VMAs there.
        if cut { Err(Errno::ENOMEM) } else { Ok(()) }
    }

    /// Gives `range`, inside one VMA, the protection `new` (Linux
    /// `mprotect_fixup`): splits, merges and rewrites the ptes. The whole
    /// range gets the same flags, whatever it merged with.
    ///
    /// A private mapping made writable for the first time is charged
    /// and gets `VM_ACCOUNT`. Made read-only, it keeps its charge (its
    /// pages may have been written), except an anonymous VMA that has no
    /// `anon_vma` yet, which has no page to keep.
    fn mprotect_fixup(&mut self, range: UserRange, new: VmaFlags) -> Result<(), Errno> {
        let vma = self.vmas.vma_lookup(range.start().virt()).ok_or(Errno::ENOMEM)?;
        let old = vma.flags();
        let never_faulted = vma.file().is_none() && vma.anon.anon_vma().is_none();
        let mut account = old & VmaFlags::ACCOUNT;
        let mut charged = 0;
        if new.contains(VmaFlags::WRITE) {
            let charged_already = VmaFlags::ACCOUNT | VmaFlags::WRITE | VmaFlags::SHARED | VmaFlags::NORESERVE;
            if !old.intersects(charged_already) {
                charged = range.pages();
                self.security_vm_enough_memory_mm(charged)?;
                account = VmaFlags::ACCOUNT;
            }
        } else if old.contains(VmaFlags::ACCOUNT) && never_faulted {
            account = VmaFlags::empty();
        }
        self.sync_max_map_count();
        let modified = self.vmas.modify_flags(range.start().virt(), range.end().virt(), |v| {
            (v.flags() - PROT_BITS - VmaFlags::ACCOUNT) | new | account
        });
        if let Err(e) = modified {
            self.vm_unacct_memory(charged);
            return Err(vma_err(e));
        }
        if old.contains(VmaFlags::ACCOUNT) && account.is_empty() {
            self.vm_unacct_memory(range.pages());
        }
        let vma = self.vmas.vma_lookup(range.start().virt()).map(|v| v.desc()).ok_or(Errno::ENOMEM)?;
        self.change_protection(range, &vma);
        Ok(())
    }

    /// The brk system call (Linux `sys_brk`): returns the new break, or
    /// the old one if the request cannot be met (below the heap's start,
    /// over `RLIMIT_DATA`, into another mapping or its guard gap, over
    /// `RLIMIT_AS`).
    pub fn brk(&mut self, requested: u64) -> u64 {
        let l = self.layout;
        if requested < l.start_brk || requested > TASK_SIZE {
            return l.brk;
        }
        // Linux `check_data_rlimit`: the heap plus the data segment.
        let data = self.limits.data.rlim_cur;
        if data != RLIM_INFINITY
            && (requested - l.start_brk).saturating_add(l.end_data.saturating_sub(l.start_data)) > data
        {
            return l.brk;
        }
        let (Some(new_aligned), Some(old_aligned)) = (
            page_align(requested).and_then(|a| UserAddr::new(a).ok()),
            page_align(l.brk).and_then(|a| UserAddr::new(a).ok()),
        ) else {
            return l.brk;
        };
        if new_aligned == old_aligned {
            self.layout.brk = requested;
            return requested;
        }
        if requested < l.brk {
            let Some(freed) = UserRange::new(new_aligned, old_aligned) else { return l.brk };
            if self.munmap_range(freed).is_err() {
                return l.brk;
            }
            self.layout.brk = requested;
            return requested;
        }
        let Some(grown) = UserRange::new(old_aligned, new_aligned) else { return l.brk };
        // Growing: a page past the new break and a stack's guard gap must
        // be free (Linux checks `newbrk + PAGE_SIZE` against
        // `vm_start_gap(next)`).
        if let Some(next) = self.vmas.find_vma(grown.start().virt())
            && new_aligned.as_u64() + PAGE_SIZE > vm_start_gap(next)
        {
            return l.brk;
        }
        let flags = VmaFlags::READ
            | VmaFlags::WRITE
            | VmaFlags::MAYREAD
            | VmaFlags::MAYWRITE
            | VmaFlags::MAYEXEC
            | VmaFlags::ACCOUNT
            | self.def_flags;
        // Linux `check_brk_limits` (mmap_min_addr, a locked heap's
        // RLIMIT_MEMLOCK), then `do_brk_flags` (RLIMIT_AS and _DATA, the
        // map count, the commit charge).
        if grown.start().as_u64() < MMAP_MIN_ADDR
            || !self.mlock_future_ok(self.def_flags, grown.len())
            || !self.may_expand_vm(flags, grown.pages())
            || self.vmas.map_count() > self.sync_max_map_count()
            || self.security_vm_enough_memory_mm(grown.pages()).is_err()
        {
            return l.brk;
        }
        if self.vmas.insert(VmaDesc::anon(grown.start().virt(), grown.end().virt(), flags)).is_err() {
            self.vm_unacct_memory(grown.pages());
            return l.brk;
        }
        self.layout.brk = requested;
        // After mlockall(MCL_FUTURE) the heap is locked: fault it in
        // (Linux `mm_populate`, errors ignored).
        if self.def_flags & (VmaFlags::LOCKED | VmaFlags::LOCKONFAULT) == VmaFlags::LOCKED {
            let _ = self.populate(grown);
        }
        requested
    }

    /// Grows the stack VMA starting at `vma_start` down to `addr` (Linux
    /// `expand_downwards` and `acct_stack_growth`): not below
    /// `mmap_min_addr`, keeping the guard gap to the VMA below, within
    /// `RLIMIT_AS`, `RLIMIT_STACK` and, for a locked stack,
    /// `RLIMIT_MEMLOCK`.
    pub(crate) fn expand_stack(&mut self, vma_start: VirtAddr, addr: UserAddr) -> Result<(), FaultError> {
        let (vma, prev) = self.vmas.find_vma_prev(vma_start);
        let vma = vma.ok_or(FaultError::MapErr)?;
        let desc = vma.desc();
        let grown = UserRange::of(addr.virt(), vma_start).ok_or(FaultError::MapErr)?;
        let size = desc.end.as_u64() - addr.as_u64();
        if addr.as_u64() < MMAP_MIN_ADDR {
            return Err(FaultError::MapErr);
        }
        // The guard gap is kept only to an accessible VMA that is not a
        // stack itself (Linux `expand_downwards`); no VMA may be overlapped.
        if let Some(p) = prev {
            let gap = if !p.flags().contains(VmaFlags::GROWSDOWN) && p.flags().intersects(PROT_BITS) {
                STACK_GUARD_GAP
            } else {
                0
            };
            if p.end().as_u64().saturating_add(gap) > addr.as_u64() {
                return Err(FaultError::MapErr);
            }
        }
        if !self.may_expand_vm(desc.flags, grown.pages())
            || size > self.limits.stack.rlim_cur
            || !self.mlock_future_ok(desc.flags, grown.len())
        {
            return Err(FaultError::MapErr);
        }
        let pgoff = desc.pgoff.checked_sub(grown.pages()).ok_or(FaultError::MapErr)?;
        // Linux `acct_stack_growth`'s last check, the commit charge.
        let charged = if Self::accounted(desc.flags) { grown.pages() } else { 0 };
        self.security_vm_enough_memory_mm(charged).map_err(|_| FaultError::MapErr)?;
        self.vmas.insert(VmaDesc { start: addr.virt(), end: vma_start, pgoff, ..desc }).map_err(|_| {
            self.vm_unacct_memory(charged);
            FaultError::Oom
        })
    }

    /// Copies this address space for a fork child (Linux `dup_mmap`):
    /// every VMA without `VM_DONTCOPY`, its ptes (copy-on-write) unless
    /// `VM_WIPEONFORK`, layout and flags, memory locks excepted. Each
    /// `VM_ACCOUNT` copy is charged first, as this space's commitment
    /// (`ENOMEM` if refused); what the child got by then is uncharged
    /// when the caller drops it.
    pub fn dup_mmap(&mut self, child: &mut MmStruct<'a, F, A>) -> Result<(), Errno> {
        child.mmap_base = self.mmap_base;
        child.layout = self.layout;
        child.limits = self.limits;
        // Memory locks are not inherited (Linux `mm_init` keeps only
        // `VM_INIT_DEF_MASK` of `def_flags`, `dup_mmap` clears
        // `VM_LOCKED_MASK`).
        let unlocked = crate::vma::VM_LOCKED_MASK;
        child.def_flags = self.def_flags - unlocked;
        for v in self.vmas.iter() {
            if v.flags().contains(VmaFlags::DONTCOPY) {
                continue;
            }
            let desc = v.desc();
            // A wipe-on-fork VMA starts empty in the child (Linux skips
            // `copy_page_range` and the anon_vma for it).
            let wipe = desc.flags.contains(VmaFlags::WIPEONFORK);
            let charged = if Self::accounted(desc.flags) { v.pages() } else { 0 };
            self.security_vm_enough_memory_mm(charged)?;
            if let Err(e) = child.vmas.insert_fork(&self.vmas, v, desc.flags - unlocked, wipe) {
                self.vm_unacct_memory(charged);
                return Err(vma_err(e));
            }
            if !wipe {
                child.copy_page_range(self, v)?;
            }
        }
        Ok(())
    }

    /// Tears everything down (Linux `exit_mmap`): every VMA and page,
    /// the `VM_ACCOUNT` ones' charge; the page tables go with the value.
    /// Must not be the loaded address space.
    pub fn exit_mmap(&mut self) {
        let _ = self.munmap_range(UserRange::ALL);
    }
}

impl<F: PteFormat, A: VmaAlloc> Drop for MmStruct<'_, F, A> {
    /// Frees every page still mapped (Linux `mmput` -> `exit_mmap`); the
    /// page tables and VMAs go with their own values.
    fn drop(&mut self) {
        self.exit_mmap();
    }
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod arbitrary_tests;

#[cfg(test)]
mod overcommit_tests;
