//! The kernel's vmalloc: mm's [`Vmalloc`] over the kernel page tables and
//! the vmalloc window (Linux `mm/vmalloc.c` `vmalloc_init` and the exported
//! calls), vmalloc'd kernel stacks (Linux `kernel/fork.c`
//! `alloc_thread_stack_node` with `CONFIG_VMAP_STACK`), and the page-fault
//! report for vmalloc addresses.
//!
//! The `vmap_area` tree nodes come from a slab cache, as Linux's
//! `vmap_area_cachep`. Lock order: `vmap_area_lock -> slab cache locks`.

use core::fmt;
use core::panic::Location;
use core::sync::atomic::{AtomicU64, Ordering};

use log::info;
use mm::pgtable::{PAGE_KERNEL_NOCACHE, PgProt, X86PteFormat};
use mm::slub::SlabFlags;
use mm::vmalloc::{Vmalloc, VmallocError, VmapFault, VmapNode};
use mm::vmstat::NodeStatItem;
use mm::{PAGE_SIZE, Pfn, PhysAddr, VirtAddr};
use spin::Once;

use crate::arch::x86_64::pgtable::{self, VMALLOC_END, VMALLOC_START};
use crate::slab::KmemCacheOf;

/// Size of a kernel task stack (Linux `THREAD_SIZE` is 16 KiB; unoptimised
/// builds and tests get headroom, as the boot stack does).
pub const THREAD_SIZE: u64 = 64 * 1024;

/// Bytes of the vmalloc window (Linux `VMALLOC_TOTAL`; Linux's x86
/// `VMALLOC_END` is inclusive, so its figure is one byte less).
pub const VMALLOC_TOTAL: u64 = VMALLOC_END - VMALLOC_START;

/// `vmap_area` nodes from the "vmap_area" slab cache (Linux
/// `vmap_area_cachep`).
pub type SlabNodes = KmemCacheOf<VmapNode>;

/// The kernel's vmalloc allocator type.
pub type KernelVmalloc = Vmalloc<'static, X86PteFormat, SlabNodes>;

static VMALLOC: Once<KernelVmalloc> = Once::new();

/// Sets vmalloc up over the kernel page tables (Linux `vmalloc_init`).
///
/// # Panics
/// If the kernel page tables or the slab allocator are missing (boot
/// order), or the cache cannot be created.
pub fn init(nr_cpus: u32) {
    let pt = pgtable::kernel_pgtable().expect("vmalloc::init before the kernel page tables");
    let slab = crate::slab::slab().expect("vmalloc::init before slab::init");
    let nodes = KmemCacheOf::create(slab, "vmap_area", SlabFlags::empty())
        .unwrap_or_else(|e| panic!("vmalloc: cannot create the vmap_area cache: {e:?}"));
    let vm = Vmalloc::new(
        pt,
        pgtable::kernel_tlb(),
        VirtAddr::expect_canonical(VMALLOC_START),
        VirtAddr::expect_canonical(VMALLOC_END),
        nr_cpus,
        nodes,
    )
    .unwrap_or_else(|e| panic!("vmalloc: {e}"));
    VMALLOC.call_once(|| vm);
    info!("{:#x}-{:#x} ({} TiB)", VMALLOC_START, VMALLOC_END, (VMALLOC_END - VMALLOC_START) >> 40);
}

/// The allocator.
///
/// # Panics
/// Before [`init`].
pub fn vm() -> &'static KernelVmalloc {
    VMALLOC.get().expect("vmalloc used before vmalloc::init")
}

/// The allocator, if [`init`] has run.
pub fn vm_if_ready() -> Option<&'static KernelVmalloc> {
    VMALLOC.get()
}

/// Linux `vmalloc`.
#[track_caller]
pub fn vmalloc(size: u64) -> Result<VirtAddr, VmallocError> {
    vm().vmalloc(size)
}

/// Linux `vzalloc`.
#[track_caller]
pub fn vzalloc(size: u64) -> Result<VirtAddr, VmallocError> {
    vm().vzalloc(size)
}

/// Linux `vfree`.
pub fn vfree(addr: VirtAddr) -> Result<(), VmallocError> {
    vm().vfree(addr)
}

/// Pages vmalloc holds (Linux `vmalloc_nr_pages`); 0 before [`init`].
pub fn vmalloc_nr_pages() -> u64 {
    vm_if_ready().map_or(0, |vm| vm.vmalloc_nr_pages())
}

/// Linux `vmap` with `PAGE_KERNEL`-style rights given by `prot`.
#[track_caller]
pub fn vmap(pages: &[Pfn], prot: PgProt) -> Result<VirtAddr, VmallocError> {
    vm().vmap(pages, prot)
}

/// Linux `vunmap`.
pub fn vunmap(addr: VirtAddr) -> Result<(), VmallocError> {
    vm().vunmap(addr)
}

/// Linux `ioremap`: uncached device memory.
#[track_caller]
pub fn ioremap(phys: PhysAddr, size: u64) -> Result<VirtAddr, VmallocError> {
    vm().ioremap_prot(phys, size, PAGE_KERNEL_NOCACHE)
}

/// Linux `iounmap`.
pub fn iounmap(addr: VirtAddr) -> Result<(), VmallocError> {
    vm().iounmap(addr)
}

/// KiB of one kernel stack, as `nr_kernel_stack` counts it.
const THREAD_SIZE_KB: i64 = (THREAD_SIZE / 1024) as i64;

/// A kernel task stack: [`THREAD_SIZE`] bytes, zeroed, aligned to its
/// size, with unmapped pages below and above it (the guard page of the
/// area under it, or free space, and its own guard page). Returns the
/// lowest address; the initial stack pointer is that plus [`THREAD_SIZE`].
/// The stack counts in `nr_kernel_stack` until [`free_thread_stack`]
/// (Linux `account_kernel_stack`); stacks never freed, as the APs' are,
/// count for good, as Linux's idle tasks' do.
#[track_caller]
pub fn alloc_thread_stack() -> Result<VirtAddr, VmallocError> {
    let stack = vm().vmalloc_node_range(THREAD_SIZE, THREAD_SIZE, mm::gfp::Gfp::ZERO, Location::caller())?;
    crate::mm::pgdat().mod_node_page_state(NodeStatItem::NrKernelStackKb, THREAD_SIZE_KB);
    Ok(stack)
}

/// Frees a stack from [`alloc_thread_stack`] (Linux `free_thread_stack`
/// with `account_kernel_stack(tsk, -1)`).
pub fn free_thread_stack(stack: VirtAddr) -> Result<(), VmallocError> {
    vfree(stack)?;
    crate::mm::pgdat().mod_node_page_state(NodeStatItem::NrKernelStackKb, -THREAD_SIZE_KB);
    Ok(())
}

/// Stacks of tasks freed in atomic context, waiting for
/// [`drain_deferred_thread_stacks`]: a lock-free list (Linux's
/// `vfree_deferred` llist) whose links are the first word of each dead
/// stack, so queueing allocates nothing and takes no lock.
static DEFERRED_STACKS: AtomicU64 = AtomicU64::new(0);

/// Stacks freed through [`DEFERRED_STACKS`] since boot.
static DEFERRED_STACKS_FREED: AtomicU64 = AtomicU64::new(0);

/// Stacks [`drain_deferred_thread_stacks`] has freed since boot.
pub fn deferred_thread_stacks_freed() -> u64 {
    DEFERRED_STACKS_FREED.load(Ordering::Relaxed)
}

/// Queues a stack from [`alloc_thread_stack`] for freeing from a context
/// where vfree's rule holds (Linux `vfree_atomic`): vmalloc's lock is
/// taken with interrupts on, and the last reference to a task may go with
/// them off. Allocates nothing; interrupt handlers may call it.
///
/// # Safety
/// Nothing uses the stack any more (its task is being freed).
pub unsafe fn free_thread_stack_deferred(stack: VirtAddr) {
    let link = stack.as_u64() as *mut u64;
    let mut head = DEFERRED_STACKS.load(Ordering::Relaxed);
    loop {
        // SAFETY: the stack is mapped (THREAD_SIZE bytes from `stack`) and
        // unused (the caller's promise); its first word is the link.
        unsafe { link.write(head) };
        match DEFERRED_STACKS.compare_exchange_weak(head, stack.as_u64(), Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(now) => head = now,
        }
    }
}

/// Frees the stacks [`free_thread_stack_deferred`] queued (Linux
/// `delayed_vfree_work`). Call with interrupts on and no spin lock held.
pub fn drain_deferred_thread_stacks() {
    if DEFERRED_STACKS.load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut next = DEFERRED_STACKS.swap(0, Ordering::Acquire);
    while next != 0 {
        let Some(stack) = VirtAddr::new(next) else {
            log::error!("deferred kernel stack list corrupt: {next:#x}");
            return;
        };
        // SAFETY: `stack` was queued by `free_thread_stack_deferred`,
        // which wrote the next link into its first word; the swap made
        // this CPU its only owner.
        next = unsafe { (stack.as_u64() as *const u64).read() };
        if let Err(e) = free_thread_stack(stack) {
            log::error!("freeing deferred kernel stack {:#x}: {e}", stack.as_u64());
        }
        DEFERRED_STACKS_FREED.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the page-fault handler prints for an address in the vmalloc window
/// (ours; Linux leaves it to KASAN): which area, and whether the access hit
/// its guard page.
pub struct FaultReport(VmapFault, VirtAddr);

impl fmt::Display for FaultReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = self.1.as_u64();
        match self.0 {
            VmapFault::GuardPage(a) => write!(
                f,
                "vmalloc out-of-bounds access at {addr:#x}: guard page of area {:#x}-{:#x} ({} bytes) allocated at {}",
                a.start.as_u64(),
                a.end.as_u64() - PAGE_SIZE,
                a.get_vm_area_size(),
                a.caller
            ),
            VmapFault::Mapped(a) => write!(
                f,
                "vmalloc access at {addr:#x} inside area {:#x}-{:#x} allocated at {}",
                a.start.as_u64(),
                a.end.as_u64(),
                a.caller
            ),
            VmapFault::Unpurged { start, end } => write!(
                f,
                "vmalloc use-after-free at {addr:#x}: area {:#x}-{:#x} was freed",
                start.as_u64(),
                end.as_u64()
            ),
            VmapFault::NoArea => write!(f, "vmalloc access at {addr:#x} outside any allocated area"),
        }
    }
}

/// The report for a fault at `addr`, if it lies in the vmalloc window and
/// vmalloc is up (and its lock free).
pub fn fault_report(addr: u64) -> Option<FaultReport> {
    if !(VMALLOC_START..VMALLOC_END).contains(&addr) {
        return None;
    }
    let addr = VirtAddr::new(addr)?;
    VMALLOC.get()?.fault_info(addr).map(|f| FaultReport(f, addr))
}
