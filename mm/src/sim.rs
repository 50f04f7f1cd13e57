//! A simulated machine for host tests: RAM in an ordinary allocation behind
//! [`PhysMemory`], CPUs as threads behind [`CpuOps`], and a memory map and
//! memblock built over them as the kernel builds its own at boot.
//!
//! Each test makes its own [`Sim`]; nothing is global.

use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::cell::Cell;

use crate::addr::{PAGE_SIZE, Pfn, PhysAddr, VirtAddr};
use crate::arch::{CpuOps, FolioWaitTable, IrqFlags, PhysMemory, TlbFlush};
use crate::memblock::Memblock;
use crate::mmzone::{MAX_NR_ZONES, PerCpuPageset, ZoneType};
use crate::page::{MemMap, PAGEBLOCK_NR_PAGES, Page, pageblock_flags_len};
use crate::page_alloc::PgData;
use crate::percpu::PerCpuRef;
use crate::slab_common::ObjCache;
use crate::vmstat::{PerCpuNodeStat, VmEventState};

thread_local! {
    static CPU_ID: Cell<u32> = const { Cell::new(0) };
    static MIGHT_SLEEP_CALLS: Cell<u64> = const { Cell::new(0) };
}

/// How many times mm said, on this thread, that it might sleep
/// ([`CpuOps::might_sleep`]).
pub(crate) fn might_sleep_calls() -> u64 {
    MIGHT_SLEEP_CALLS.with(Cell::get)
}

/// Makes the calling thread "CPU `id`" for [`SimCpu`].
pub(crate) fn set_cpu(id: u32) {
    CPU_ID.with(|c| c.set(id));
}

/// CPU identity from a thread-local; interrupts do not exist.
pub(crate) struct SimCpu;

impl CpuOps for SimCpu {
    fn cpu_id(&self) -> u32 {
        CPU_ID.with(Cell::get)
    }

    fn irq_save(&self) -> IrqFlags {
        IrqFlags(0)
    }

    fn irq_restore(&self, _flags: IrqFlags) {}

    fn might_sleep(&self, _caller: &'static core::panic::Location<'static>) {
        MIGHT_SLEEP_CALLS.with(|c| c.set(c.get() + 1));
    }
}

/// Per-CPU memory from the heap: one block per allocation, CPU copies
/// `stride` bytes apart. Live blocks are tracked so frees can be checked.
pub(crate) struct SimPercpu {
    live: std::sync::Mutex<Vec<(usize, std::alloc::Layout)>>,
}

/// The simulated machines' per-CPU memory (stateless apart from its
/// bookkeeping, so one serves every test).
pub(crate) static SIM_PERCPU: SimPercpu = SimPercpu::new();

impl SimPercpu {
    /// No blocks yet.
    pub(crate) const fn new() -> Self {
        SimPercpu { live: std::sync::Mutex::new(Vec::new()) }
    }

    /// Blocks allocated and not freed.
    pub(crate) fn nr_live(&self) -> usize {
        self.live.lock().unwrap().len()
    }
}

// SAFETY: each allocation is a fresh zeroed heap block of nr_cpus strides,
// each stride a multiple of `align` and at least `size`; freed once.
unsafe impl crate::percpu::PercpuAlloc for SimPercpu {
    fn alloc(&self, size: usize, align: usize, nr_cpus: usize) -> Option<(core::ptr::NonNull<u8>, usize)> {
        let stride = size.next_multiple_of(align).max(align);
        let layout = std::alloc::Layout::from_size_align(stride * nr_cpus.max(1), align).ok()?;
        // SAFETY: the layout has a non-zero size.
        let base = core::ptr::NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        self.live.lock().unwrap().push((base.as_ptr() as usize, layout));
        Some((base, stride))
    }

    unsafe fn free(&self, base: core::ptr::NonNull<u8>) {
        let mut live = self.live.lock().unwrap();
        let at = live.iter().position(|&(b, _)| b == base.as_ptr() as usize).expect("free of an unknown percpu block");
        let (_, layout) = live.swap_remove(at);
        // SAFETY: allocated above with this layout, freed once.
        unsafe { std::alloc::dealloc(base.as_ptr(), layout) };
    }
}

/// Free pages with every per-cpu list drained back to the buddy lists.
pub(crate) fn free_pages_drained(pgdat: &PgData<'_>) -> u64 {
    pgdat.lru_add_drain_all();
    pgdat.drain_all_pages();
    pgdat.nr_free_pages()
}

/// Objects of type `T` from the host heap, the [`ObjCache`] of the
/// intrusive trees' nodes in host tests (VMAs, vmap areas): counts the
/// live ones and fails the allocation it is told to.
pub(crate) struct HeapAlloc<T> {
    /// Objects allocated and not yet freed.
    live: AtomicUsize,
    /// `anon_vma`s and AVCs allocated and not yet freed (a VMA allocator
    /// hands those out too, with their lock).
    anon_live: AtomicUsize,
    anon_lock: crate::rmap::AnonVmaLock,
    allocs: AtomicUsize,
    /// The allocation that fails, `usize::MAX` for none.
    fail_at: AtomicUsize,
    // Hands out `T`s without holding any: Send and Sync whatever `T` is.
    _objects: PhantomData<fn() -> T>,
}

impl<T> Default for HeapAlloc<T> {
    fn default() -> Self {
        HeapAlloc {
            live: AtomicUsize::new(0),
            anon_live: AtomicUsize::new(0),
            anon_lock: crate::rmap::AnonVmaLock::new(),
            allocs: AtomicUsize::new(0),
            fail_at: AtomicUsize::new(usize::MAX),
            _objects: PhantomData,
        }
    }
}

impl<T> HeapAlloc<T> {
    /// Makes the `n`th allocation from now (0: the next) fail.
    pub(crate) fn fail_nth(&self, n: usize) {
        self.fail_at.store(self.allocs.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    /// Cancels a failure [`HeapAlloc::fail_nth`] planned.
    pub(crate) fn fail_none(&self) {
        self.fail_at.store(usize::MAX, Ordering::Relaxed);
    }

    /// Objects allocated and not yet freed.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// `anon_vma`s and AVCs allocated and not yet freed.
    pub(crate) fn anon_live(&self) -> usize {
        self.anon_live.load(Ordering::Relaxed)
    }

    /// Memory for a `U` from the heap, counted in `count`, unless this is
    /// the allocation [`HeapAlloc::fail_nth`] planned to fail.
    fn heap_alloc<U>(&self, count: &AtomicUsize) -> Option<NonNull<U>> {
        let n = self.allocs.fetch_add(1, Ordering::Relaxed);
        if self.fail_at.load(Ordering::Relaxed) == n {
            return None;
        }
        count.fetch_add(1, Ordering::Relaxed);
        Some(NonNull::from(Box::leak(Box::new(MaybeUninit::<U>::uninit()))).cast())
    }

    /// Gives back what [`HeapAlloc::heap_alloc`] gave.
    ///
    /// # Safety
    /// `obj` came from `heap_alloc::<U>` with the same `count`, freed once.
    unsafe fn heap_free<U>(&self, count: &AtomicUsize, obj: NonNull<U>) {
        count.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: made with `Box::leak` of this type (the caller's promise).
        drop(unsafe { Box::from_raw(obj.as_ptr().cast::<MaybeUninit<U>>()) });
    }
}

// SAFETY: fresh heap objects of the type, freed once (`heap_alloc`).
unsafe impl ObjCache<crate::rmap::AnonVma> for HeapAlloc<crate::vma::Vma> {
    fn alloc(&self) -> Option<NonNull<crate::rmap::AnonVma>> {
        self.heap_alloc(&self.anon_live)
    }

    unsafe fn free(&self, obj: NonNull<crate::rmap::AnonVma>) {
        // SAFETY: the caller's promise: from `alloc` above.
        unsafe { self.heap_free(&self.anon_live, obj) }
    }
}

// SAFETY: fresh heap objects of the type, freed once (`heap_alloc`).
unsafe impl ObjCache<crate::rmap::AnonVmaChain> for HeapAlloc<crate::vma::Vma> {
    fn alloc(&self) -> Option<NonNull<crate::rmap::AnonVmaChain>> {
        self.heap_alloc(&self.anon_live)
    }

    unsafe fn free(&self, obj: NonNull<crate::rmap::AnonVmaChain>) {
        // SAFETY: the caller's promise: from `alloc` above.
        unsafe { self.heap_free(&self.anon_live, obj) }
    }
}

impl crate::rmap::AnonVmaAlloc for HeapAlloc<crate::vma::Vma> {
    fn anon_vma_lock(&self) -> &crate::rmap::AnonVmaLock {
        &self.anon_lock
    }
}

// SAFETY: every object is a fresh `Box` allocation of a `T`, leaked until
// `free` takes it back.
unsafe impl<T> ObjCache<T> for HeapAlloc<T> {
    fn alloc(&self) -> Option<NonNull<T>> {
        self.heap_alloc(&self.live)
    }

    unsafe fn free(&self, obj: NonNull<T>) {
        // SAFETY: `alloc` made `obj` with `heap_alloc` of this type, and the
        // caller promises it is freed once.
        unsafe { self.heap_free(&self.live, obj) }
    }
}

/// A TLB that records what it was asked to flush.
#[derive(Default)]
pub(crate) struct SimTlb {
    flushes: std::sync::Mutex<Vec<(u64, u64)>>,
}

impl SimTlb {
    /// The `(start, len)` of every flush so far, oldest first; clears the
    /// record.
    pub(crate) fn take(&self) -> Vec<(u64, u64)> {
        std::mem::take(&mut *self.flushes.lock().unwrap())
    }
}

impl TlbFlush for SimTlb {
    fn flush_tlb_kernel_range(&self, start: VirtAddr, len: u64) {
        self.flushes.lock().unwrap().push((start.as_u64(), len));
    }

    fn flush_tlb_mm_range(&self, _root: crate::PhysAddr, start: VirtAddr, len: u64) {
        self.flushes.lock().unwrap().push((start.as_u64(), len));
    }
}

/// Alignment of simulated RAM: the largest buddy block.
const BASE_ALIGN: usize = (PAGE_SIZE as usize) << crate::mmzone::MAX_PAGE_ORDER;

/// RAM for the physical range `[start, start + len)`, zeroed at creation.
/// `base` is aligned to the largest buddy block inside an allocation
/// `alloc` that much larger, so virtual addresses keep the natural alignment
/// of buddy blocks as the kernel's direct map does.
pub(crate) struct SimRam {
    start: u64,
    len: usize,
    alloc: *mut u8,
    base: *mut u8,
}

// SAFETY: the buffer is plain memory owned by `SimRam`; concurrent access
// through it is governed by page ownership in the allocator, exactly as for
// real RAM behind the kernel's direct map.
unsafe impl Sync for SimRam {}
// SAFETY: as above; the buffer has no thread affinity.
unsafe impl Send for SimRam {}

impl SimRam {
    /// Word alignment: the system allocator serves it with `calloc`, whose
    /// fresh pages the OS zero-fills lazily, so gigabytes of simulated RAM
    /// cost nothing until touched (page alignment would force a memset);
    /// a spare [`BASE_ALIGN`] lets `base` be aligned like the direct map.
    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(len + BASE_ALIGN, 16).unwrap()
    }

    fn new(start: u64, len: usize) -> SimRam {
        // SAFETY: the layout has a non-zero size.
        let alloc = unsafe { std::alloc::alloc_zeroed(Self::layout(len)) };
        assert!(!alloc.is_null(), "simulated RAM allocation failed");
        let skew = (BASE_ALIGN - alloc as usize % BASE_ALIGN) % BASE_ALIGN;
        // SAFETY: `skew` < BASE_ALIGN, inside the allocation's spare room.
        let base = unsafe { alloc.add(skew) };
        SimRam { start, len, alloc, base }
    }

    fn contains(&self, phys: PhysAddr) -> bool {
        phys.as_u64() >= self.start && phys.as_u64() - self.start < self.len as u64
    }

    /// A copy of a simulated page's bytes.
    pub(crate) fn page(&self, pfn: Pfn) -> Vec<u8> {
        let offset = (pfn.phys().as_u64() - self.start) as usize;
        assert!(offset + PAGE_SIZE as usize <= self.len);
        // SAFETY: in bounds (checked above) of the live allocation; the
        // caller owns the page, so nothing writes it meanwhile.
        unsafe { core::slice::from_raw_parts(self.base.add(offset), PAGE_SIZE as usize).to_vec() }
    }

    /// Fills a simulated page with `byte`.
    pub(crate) fn fill(&self, pfn: Pfn, byte: u8) {
        let offset = (pfn.phys().as_u64() - self.start) as usize;
        assert!(offset + PAGE_SIZE as usize <= self.len);
        // SAFETY: in bounds (checked above); the caller owns the page.
        unsafe { core::ptr::write_bytes(self.base.add(offset), byte, PAGE_SIZE as usize) };
    }
}

impl Drop for SimRam {
    fn drop(&mut self) {
        // SAFETY: `alloc` came from `alloc_zeroed` with this layout.
        unsafe { std::alloc::dealloc(self.alloc, Self::layout(self.len)) };
    }
}

// SAFETY: the buffer is allocated once and freed only on drop, so every page
// of `[start, start + len)` stays mapped, readable and writable, at one
// address for the lifetime of `SimRam`.
unsafe impl PhysMemory for SimRam {
    fn phys_to_virt(&self, phys: PhysAddr) -> Option<VirtAddr> {
        if !self.contains(phys) {
            return None;
        }
        VirtAddr::new(self.base as u64 + (phys.as_u64() - self.start))
    }

    fn virt_to_phys(&self, virt: VirtAddr) -> Option<PhysAddr> {
        let offset = virt.as_u64().checked_sub(self.base as u64)?;
        let phys = PhysAddr::new(self.start + offset);
        self.contains(phys).then_some(phys)
    }
}

/// A simulated machine's memory: RAM, descriptors and memblock.
pub(crate) struct Sim {
    pub(crate) ram: SimRam,
    pages: Vec<Page>,
    blocks: Vec<AtomicU8>,
    pub(crate) memblock: Memblock,
    cpu: SimCpu,
    pcp: Vec<PerCpuPageset>,
    events: Vec<VmEventState>,
    node_stats: Vec<PerCpuNodeStat>,
    lru_batches: Vec<crate::swap::LruBatches>,
    start_pfn: u64,
}

/// Most simulated CPUs a test may use.
const SIM_CPUS: usize = 8;

impl Sim {
    /// A machine whose memory map covers `[start, end)` (bytes, pageblock
    /// aligned start), with memblock memory `memory` and reservations
    /// `reserved` (each `(base, size)` in bytes).
    pub(crate) fn new(start: u64, end: u64, memory: &[(u64, u64)], reserved: &[(u64, u64)]) -> Sim {
        assert_eq!(start % (PAGEBLOCK_NR_PAGES * PAGE_SIZE), 0);
        let start_pfn = start / PAGE_SIZE;
        let nr_pages = (end - start) / PAGE_SIZE;
        let mut memblock = Memblock::new();
        for &(base, size) in memory {
            memblock.add(PhysAddr::new(base), size).unwrap();
        }
        for &(base, size) in reserved {
            memblock.reserve(PhysAddr::new(base), size).unwrap();
        }
        let pages =
            (start_pfn..start_pfn + nr_pages).map(|pfn| Page::new_reserved(ZoneType::for_pfn(Pfn::new(pfn)))).collect();
        let blocks = (0..pageblock_flags_len(nr_pages)).map(|_| AtomicU8::new(0)).collect();
        let ram = SimRam::new(start, (end - start) as usize);
        let pcp = (0..MAX_NR_ZONES * SIM_CPUS).map(|_| PerCpuPageset::new()).collect();
        let events = (0..SIM_CPUS).map(|_| VmEventState::new()).collect();
        let node_stats = (0..SIM_CPUS).map(|_| PerCpuNodeStat::new()).collect();
        let lru_batches = (0..SIM_CPUS).map(|_| crate::swap::LruBatches::new()).collect();
        Sim { ram, pages, blocks, memblock, cpu: SimCpu, pcp, events, node_stats, lru_batches, start_pfn }
    }

    /// `size` bytes of memory from 0, nothing reserved.
    pub(crate) fn flat(size: u64) -> Sim {
        Sim::new(0, size, &[(0, size)], &[])
    }

    /// Zones and allocator over the machine, free memory released, for
    /// `nr_cpus` CPUs. Call once per machine.
    pub(crate) fn pgdat(&self, nr_cpus: usize) -> PgData<'_> {
        let map = MemMap::new(Pfn::new(self.start_pfn), &self.pages, &self.blocks).unwrap();
        // Zone-major: each zone's pagesets for CPUs 0..nr_cpus in a row.
        let pcp = core::array::from_fn(|z| PerCpuRef::from_slice(&self.pcp[z * SIM_CPUS..z * SIM_CPUS + nr_cpus]));
        let events = PerCpuRef::from_slice(&self.events[..nr_cpus]);
        let node_stats = PerCpuRef::from_slice(&self.node_stats[..nr_cpus]);
        let lru = PerCpuRef::from_slice(&self.lru_batches[..nr_cpus]);
        let per_cpu = crate::page_alloc::NodePerCpu { pcp, vm_events: events, node_stats, lru_batches: lru };
        let pgdat = PgData::new(map, &self.memblock, &self.ram, &self.cpu, per_cpu);
        pgdat.memblock_free_all(&self.memblock);
        pgdat
    }
}

/// Page-lock waits for host tests: a waiter yields its thread until the
/// condition holds (a wake-up has nothing to do).
#[derive(Default)]
pub(crate) struct SimFolioWaits;

impl FolioWaitTable for SimFolioWaits {
    fn wait_event(&self, _pfn: Pfn, cond: &mut dyn FnMut() -> bool) {
        while !cond() {
            std::thread::yield_now();
        }
    }

    fn wake_up(&self, _pfn: Pfn) {}
}
