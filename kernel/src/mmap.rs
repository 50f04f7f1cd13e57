//! The kernel's user address spaces: [`mm::mmap::MmStruct`] over the x86_64
//! page-table format, VMAs from the "vm_area_struct" slab cache (Linux
//! `vm_area_cachep`), the shared zero page (Linux `empty_zero_page`), and
//! the address space of the running task; and memory compaction over
//! every address space ([`compact_memory`], Linux's `compact_memory`
//! sysctl).
//!
//! Lock order: `COMPACTION` -> a task's `Process::mm` slot -> the address
//! space's lock (Linux `mmap_lock`) -> page allocator and slab locks.
//!
//! Never take an address space's lock with interrupts off except through
//! [`smp::spin_lock_serving_calls`](crate::arch::x86_64::smp::spin_lock_serving_calls):
//! page migration holds it while it waits for every CPU to flush its TLB
//! (`flush_tlb_mm_range_all_cpus`, a cross-CPU call), and a CPU spinning on
//! it with interrupts off would never answer. The kernel-mode page fault on
//! a user address (`copy_to_user` and friends) is the one path that
//! waits for it with interrupts off, and it serves calls while it waits;
//! everything else (syscalls, exec, fork, the console) takes it with
//! interrupts on. `COMPACTION` is a sleeping lock, as compaction
//! reschedules between pageblocks.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::ControlFlow;
use core::ptr::NonNull;

use mm::compaction::CompactStats;
use mm::gfp::{GFP_KERNEL, Gfp};
use mm::migrate::MmWalk;
use mm::mmap::MmStruct;
use mm::pgtable::X86PteFormat;
use mm::slab_common::{CacheHandle, Slab};
use mm::slub::SlabFlags;
use mm::vma::{Vma, VmaAlloc};
use mm::{Pfn, PhysAddr};
use spin::{Mutex, Once};
use uapi::errno::Errno;

use crate::arch::x86_64::pgtable;

/// A user address space as the kernel uses it.
pub type UserMm = MmStruct<'static, X86PteFormat, SlabVmas>;

/// A shared handle to an address space and its lock (Linux's refcounted
/// `mm_struct` with `mmap_lock`).
pub type MmRef = Arc<Mutex<UserMm>>;

/// VMA nodes from the "vm_area_struct" cache.
pub struct SlabVmas {
    slab: &'static Slab<'static>,
    cache: &'static CacheHandle<'static>,
}

// SAFETY: objects of the cache are size_of::<Vma>() bytes aligned for a
// Vma (the cache is created so), exclusively the caller's until freed.
unsafe impl VmaAlloc for SlabVmas {
    fn alloc(&self) -> Option<NonNull<Vma>> {
        self.slab.kmem_cache_alloc(self.cache, GFP_KERNEL).map(NonNull::cast)
    }

    unsafe fn free(&self, vma: NonNull<Vma>) {
        // SAFETY: `vma` came from `alloc` of this cache (trait contract).
        if let Err(e) = unsafe { self.slab.kmem_cache_free(self.cache, vma.cast()) } {
            log::error!("vm_area_struct {vma:p}: {e:?}");
        }
    }
}

struct Globals {
    cache: CacheHandle<'static>,
    zero_pfn: Pfn,
}

static GLOBALS: Once<Globals> = Once::new();

/// Creates the VMA cache and the zero page (Linux `proc_caches_init`,
/// `paging_init`'s zero page).
///
/// # Panics
/// If either cannot be allocated at boot.
pub fn init() {
    let slab = crate::slab::slab().expect("mmap::init before slab::init");
    let cache = slab
        .kmem_cache_create(
            "vm_area_struct",
            size_of::<Vma>() as u32,
            align_of::<Vma>() as u32,
            SlabFlags::empty(),
            None,
        )
        .unwrap_or_else(|e| panic!("mmap: cannot create the vm_area_struct cache: {e:?}"));
    let zero_pfn = crate::mm::alloc_pages(GFP_KERNEL | Gfp::ZERO, 0).expect("mmap: no zero page");
    GLOBALS.call_once(|| Globals { cache, zero_pfn });
}

/// The shared zero page.
pub fn zero_pfn() -> Option<Pfn> {
    GLOBALS.get().map(|g| g.zero_pfn)
}

/// A new, empty address space (Linux `mm_alloc`).
pub fn mm_alloc() -> Result<MmRef, Errno> {
    let g = GLOBALS.get().ok_or(Errno::ENOMEM)?;
    let slab = crate::slab::slab().ok_or(Errno::ENOMEM)?;
    let kernel = pgtable::kernel_pgtable().ok_or(Errno::ENOMEM)?;
    let mm = MmStruct::new(
        kernel,
        mm::gfp::GFP_DMA32,
        pgtable::kernel_tlb(),
        g.zero_pfn,
        SlabVmas { slab, cache: &g.cache },
    )?;
    Ok(Arc::new(Mutex::new(mm)))
}

/// The page-table root of an address space.
pub fn root_of(mm: &MmRef) -> PhysAddr {
    mm.lock().pgd_root()
}

/// Serializes compaction runs: the migrate scanner isolates a page only
/// by listing it, so two runs could pick the same page (Linux takes it
/// off the LRU, which keeps a second run away). A sleeping mutex: a run
/// reschedules while it holds it, so a second caller sleeps rather than
/// spins.
static COMPACTION: crate::sync::Mutex<()> = crate::sync::Mutex::new(());

/// Every user address space alive when the run started, for migration's
/// walk to a page's mapper (there is no `anon_vma`; see `mm::migrate`),
/// and the caller's test for stopping. Holding the references keeps
/// exiting spaces alive until the run ends; the last drop tears them down
/// then. Each lock is taken with interrupts on (see the module doc).
struct AllMms<'s> {
    mms: Vec<MmRef>,
    stop: &'s dyn Fn() -> bool,
}

impl MmWalk<'static, X86PteFormat, SlabVmas> for AllMms<'_> {
    fn for_each_mm(&self, f: &mut dyn FnMut(&mut UserMm) -> ControlFlow<()>) {
        for mm in &self.mms {
            if f(&mut mm.lock()).is_break() {
                return;
            }
        }
    }

    /// The kernel is not preemptible: a run over a large zone gives the
    /// CPU away here when the tick asked for it.
    fn cond_resched(&self) -> ControlFlow<()> {
        crate::sched::cond_resched();
        if (self.stop)() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }
}

/// Compacts every zone, moving user pages so that free memory coalesces
/// (what `echo 1 > /proc/sys/vm/compact_memory` does: Linux
/// `compact_nodes`). `stop` is asked before each pageblock of the migrate
/// scanner, after a chance to reschedule; when it says so the run ends
/// early ([`CompactStats::contended`]). One run at a time; a second caller
/// sleeps until the first ends. Must not be called with interrupts off or
/// a spin lock held.
pub fn compact_memory(stop: &dyn Fn() -> bool) -> CompactStats {
    let serial = COMPACTION.lock();
    let mut mms: Vec<MmRef> = Vec::new();
    crate::sched::for_each_task(|t| {
        if let Some(mm) = t.proc.mm()
            && !mms.iter().any(|m| Arc::ptr_eq(m, &mm))
        {
            mms.push(mm);
        }
    });
    let stats = mm::compaction::compact_node(crate::mm::pgdat(), &AllMms { mms, stop });
    drop(serial);
    stats
}
