//! Per-CPU areas (Linux `mm/percpu.c` `setup_per_cpu_areas` with the embed
//! first chunk, `arch/x86/kernel/setup_percpu.c`, and the `this_cpu_*`
//! accessors of `arch/x86/include/asm/percpu.h`).
//!
//! Static per-CPU variables live in the linker section `.data..percpu`
//! (`#[unsafe(link_section = ".data..percpu")]`), each wrapped in a
//! [`PerCpu`] whose accessors reach the executing CPU's copy, so the code
//! that uses them needs no `unsafe` (Linux `DEFINE_PER_CPU` with
//! `this_cpu_read`/`this_cpu_write`/`this_cpu_ptr`). Early in boot, while GS
//! base is 0, `gs:[var]` is the section itself: CPU 0's copy. Then
//! [`setup_per_cpu_areas`] takes `nr_cpus` units of [`UNIT_SIZE`] bytes
//! from memblock (direct-mapped, Linux's embed first chunk), copies the
//! section into each unit, and points each CPU's GS base at its
//! `__per_cpu_offset` (unit address minus `__per_cpu_start`), so the same
//! `gs:[var]` reaches the CPU's own copy, and a dynamic allocation at
//! unit-0 address `p` is `gs:[p - unit0 + __per_cpu_start]` likewise. The
//! rest of each unit is the dynamic area of mm's chunk allocator; further
//! chunks come from vmalloc.
//!
//! Differences: one unit size for all chunks and units laid out
//! contiguously per chunk (Linux spreads units over NUMA groups); no
//! reserved area for modules.

use core::mem::{align_of, size_of};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use mm::memblock::Memblock;
use mm::mmzone::{MAX_NR_ZONES, PerCpuPageset};
use mm::percpu::{PcpuAllocator, PcpuBackend, PcpuError, PerCpuRef, PercpuAlloc as PcpuAllocTrait};
use mm::vmstat::{PerCpuNodeStat, VmEventState};
use mm::{PAGE_SIZE, VirtAddr};
use x86_64::registers::model_specific::GsBase;

use crate::arch::x86_64::acpi::MAX_CPUS;
use crate::sync::Mutex;

/// Bytes per CPU per chunk (the static section, the per-cpu page lists and
/// the dynamic area).
pub const UNIT_SIZE: u64 = 32 * 1024;

/// This CPU's number (Linux `pcpu_hot.cpu_number`).
#[unsafe(link_section = ".data..percpu")]
static CPU_NUMBER: u32 = 0;

/// This CPU's `__per_cpu_offset` (Linux `this_cpu_off`).
#[unsafe(link_section = ".data..percpu")]
static THIS_CPU_OFF: u64 = 0;

unsafe extern "C" {
    static __per_cpu_start: u8;
    static __per_cpu_end: u8;
}

static PER_CPU_OFFSET: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// Unit 0 of the first chunk (0 until set up).
static FIRST_UNIT: AtomicU64 = AtomicU64::new(0);

/// Dynamic chunks from vmalloc (once it is up).
pub struct VmallocChunks;

// SAFETY: vzalloc returns zeroed, mapped, writable memory owned by the
// caller until vfree.
unsafe impl PcpuBackend for VmallocChunks {
    fn alloc_chunk(&self, bytes: u64) -> Option<VirtAddr> {
        crate::vmalloc::vm_if_ready()?.vzalloc(bytes).ok()
    }

    unsafe fn free_chunk(&self, base: VirtAddr, _bytes: u64) {
        if let Some(vm) = crate::vmalloc::vm_if_ready()
            && let Err(e) = vm.vfree(base)
        {
            log::error!("percpu: freeing chunk {:#x}: {e}", base.as_u64());
        }
    }
}

/// The dynamic allocator, in static storage: it is ~64 KiB (fixed chunk
/// bitmaps), too large to build on the boot stack and move. A sleeping
/// mutex (Linux `pcpu_alloc_mutex`): a new chunk is vmalloc'd under it, so
/// per-CPU memory is allocated and freed only where sleeping is allowed.
static ALLOCATOR: Mutex<PcpuAllocator<VmallocChunks>> = Mutex::new(PcpuAllocator::empty(VmallocChunks));

/// The executing CPU's number: one GS-relative load (Linux
/// `raw_smp_processor_id`).
#[inline]
pub fn smp_processor_id() -> u32 {
    let id: u32;
    // SAFETY: GS base is 0 (the section is CPU 0's copy) or this CPU's
    // per-CPU offset, so gs:[CPU_NUMBER] is this CPU's u32 CPU_NUMBER;
    // reading it has no side effects.
    unsafe {
        core::arch::asm!("mov {0:e}, dword ptr gs:[{1}]", out(reg) id, sym CPU_NUMBER,
            options(nostack, preserves_flags, readonly));
    }
    id
}

/// This CPU's `__per_cpu_offset`: one GS-relative load of
/// [`THIS_CPU_OFF`] (Linux `this_cpu_off`).
#[inline]
fn this_cpu_off() -> u64 {
    let off: u64;
    // SAFETY: GS base is 0 (the section is CPU 0's copy, whose offset is
    // 0) or this CPU's per-CPU offset, so gs:[THIS_CPU_OFF] is this CPU's
    // u64 THIS_CPU_OFF; reading it has no side effects.
    unsafe {
        core::arch::asm!("mov {0}, qword ptr gs:[{1}]", out(reg) off, sym THIS_CPU_OFF,
            options(nostack, preserves_flags, readonly));
    }
    off
}

/// A static per-CPU variable (Linux `DEFINE_PER_CPU`): declared once as a
/// static in `.data..percpu`, it has one copy per CPU, and its accessors
/// reach the executing CPU's copy. The one promise (the placement) is
/// made at the declaration, so uses need no `unsafe`:
///
/// ```ignore
/// #[unsafe(link_section = ".data..percpu")]
/// // SAFETY: in .data..percpu; an integer, copied bitwise into every unit.
/// static NEED_RESCHED: PerCpu<AtomicU64> = unsafe { PerCpu::new(AtomicU64::new(0)) };
///
/// NEED_RESCHED.write(1);
/// ```
///
/// A reference from [`PerCpu::get`] stays valid for ever (units are never
/// freed) but names the CPU the caller ran on when it took it: a task
/// that moves to another CPU keeps using the old CPU's copy (nothing
/// migrates yet), which is why `T` must be `Sync`.
#[repr(transparent)]
pub struct PerCpu<T>(T);

impl<T> PerCpu<T> {
    /// The initial value of every CPU's copy.
    ///
    /// # Safety
    /// The result must initialise a `static` placed in `.data..percpu`
    /// (`#[unsafe(link_section = ".data..percpu")]`): the accessors find
    /// each CPU's copy at the static's address plus that CPU's offset.
    /// [`setup_per_cpu_areas`] copies CPU 0's copy bitwise into every
    /// unit, so `T` must hold nothing a bitwise copy would duplicate
    /// ownership of (atomics and plain data are fine; a `Vec` is not).
    pub const unsafe fn new(value: T) -> Self {
        PerCpu(value)
    }
}

impl<T: Sync> PerCpu<T> {
    /// The executing CPU's copy (Linux `this_cpu_ptr`).
    pub fn get(&'static self) -> &'static T {
        let addr = core::ptr::from_ref(self).cast::<T>() as u64;
        // SAFETY: `self` is in .data..percpu (`new`'s contract), so its
        // link address plus this CPU's offset is this CPU's copy: the
        // section itself (offset 0) before setup_per_cpu_areas, then a
        // unit that setup filled from the section and that is never freed.
        // The copy is a valid `T` (a bitwise copy, which `new` allows),
        // only ever shared (`&T`, `T: Sync`).
        unsafe { &*(addr.wrapping_add(this_cpu_off()) as *const T) }
    }
}

impl PerCpu<AtomicU64> {
    /// Reads this CPU's copy in one GS-relative load, which an interrupt
    /// or a migration cannot split (Linux `this_cpu_read`).
    #[inline]
    pub fn read(&'static self) -> u64 {
        let value: u64;
        // SAFETY: `self`'s link address is inside the static section
        // (`new`'s contract), so gs:[self] is this CPU's copy, an
        // AtomicU64 (`PerCpu` is transparent) read by one instruction.
        unsafe {
            core::arch::asm!("mov {0}, qword ptr gs:[{1}]", out(reg) value, in(reg) self.0.as_ptr(),
                options(nostack, preserves_flags, readonly));
        }
        value
    }

    /// Adds `value` (wrapping) to this CPU's copy in one GS-relative
    /// read-modify-write instruction, which an interrupt sees whole (Linux
    /// `this_cpu_add`).
    #[inline]
    pub fn add(&'static self, value: u64) {
        // SAFETY: as in `read`; one instruction, so an interrupt sees the
        // old or the new value.
        unsafe {
            core::arch::asm!("add qword ptr gs:[{0}], {1}", in(reg) self.0.as_ptr(), in(reg) value,
                options(nostack));
        }
    }

    /// Writes this CPU's copy in one GS-relative store (Linux
    /// `this_cpu_write`).
    #[inline]
    pub fn write(&'static self, value: u64) {
        // SAFETY: as in `read`; the store is one instruction, so an
        // interrupt sees the old or the new value.
        unsafe {
            core::arch::asm!("mov qword ptr gs:[{0}], {1}", in(reg) self.0.as_ptr(), in(reg) value,
                options(nostack, preserves_flags));
        }
    }
}

/// CPU `cpu`'s `__per_cpu_offset`.
pub fn per_cpu_offset(cpu: u32) -> u64 {
    PER_CPU_OFFSET.get(cpu as usize).map_or(0, |o| o.load(Ordering::Relaxed))
}

/// Points GS at the static section for the boot CPU (the first thing boot
/// does; GS may hold anything on entry).
pub fn init_boot_gs() {
    GsBase::write(x86_64::VirtAddr::new(0));
}

/// Points this CPU's GS at CPU `cpu`'s area (APs, at start-up).
pub fn load_gs(cpu: u32) {
    GsBase::write(x86_64::VirtAddr::new(per_cpu_offset(cpu)));
}

/// `__per_cpu_start`: the link address of the static section, which
/// `__per_cpu_offset` values are relative to.
pub fn section_start() -> u64 {
    section().0
}

fn section() -> (u64, u64) {
    (&raw const __per_cpu_start as u64, &raw const __per_cpu_end as u64)
}

/// Sets up the first chunk from memblock for `nr_cpus` CPUs and switches
/// the boot CPU to its unit (Linux `setup_per_cpu_areas`).
///
/// # Panics
/// If memblock cannot supply the chunk or the static section outgrows a
/// unit: the kernel cannot run without per-CPU data.
pub fn setup_per_cpu_areas(memblock: &mut Memblock, nr_cpus: u32) {
    let (start, end) = section();
    let static_size = end - start;
    assert!(
        static_size < UNIT_SIZE / 2,
        "static per-CPU section ({static_size} bytes) too large for {UNIT_SIZE}-byte units"
    );
    let bytes = UNIT_SIZE * u64::from(nr_cpus);
    let phys = memblock
        .phys_alloc(bytes, PAGE_SIZE)
        .unwrap_or_else(|e| panic!("percpu: cannot allocate the first chunk ({bytes} bytes): {e}"));
    let base = crate::mm::page_address(phys.pfn()).as_u64();
    for cpu in 0..nr_cpus {
        let unit = base + u64::from(cpu) * UNIT_SIZE;
        let offset = unit.wrapping_sub(start);
        // SAFETY: memblock just reserved `bytes` bytes at `base` for good,
        // direct-mapped and writable; each unit gets the load image
        // (`static_size` bytes, readable in .data..percpu), then zeroes,
        // then its CPU number and offset at the variables' offsets.
        unsafe {
            core::ptr::copy_nonoverlapping(start as *const u8, unit as *mut u8, static_size as usize);
            core::ptr::write_bytes((unit + static_size) as *mut u8, 0, (UNIT_SIZE - static_size) as usize);
            ((&raw const CPU_NUMBER as u64).wrapping_add(offset) as *mut u32).write(cpu);
            ((&raw const THIS_CPU_OFF as u64).wrapping_add(offset) as *mut u64).write(offset);
        }
        PER_CPU_OFFSET[cpu as usize].store(offset, Ordering::Relaxed);
    }
    FIRST_UNIT.store(base, Ordering::Relaxed);
    load_gs(0);
    // SAFETY: the chunk is ours (reserved above) and only the static part
    // of each unit is used outside the allocator.
    unsafe {
        ALLOCATOR.lock().init(VirtAddr::expect_canonical(base), UNIT_SIZE, nr_cpus, static_size.next_multiple_of(64))
    }
    .unwrap_or_else(|e| panic!("percpu: {e}"));
    log::info!(
        "Embedded {} pages/cpu s{static_size} d{} u{UNIT_SIZE} for {nr_cpus} CPUs at {base:#x}",
        UNIT_SIZE / PAGE_SIZE,
        UNIT_SIZE - static_size
    );
}

/// A dynamic per-CPU allocation: the address of CPU 0's copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PercpuPtr(VirtAddr);

impl PercpuPtr {
    /// The allocation whose CPU 0 copy is at `unit0` (for passing one
    /// through an integer, e.g. to another CPU's work function).
    pub fn from_unit0(unit0: VirtAddr) -> Self {
        PercpuPtr(unit0)
    }

    /// CPU 0's copy.
    pub fn unit0(self) -> VirtAddr {
        self.0
    }

    /// CPU `cpu`'s copy (Linux `per_cpu_ptr`).
    pub fn per_cpu_ptr(self, cpu: u32) -> VirtAddr {
        VirtAddr::expect_canonical(self.0.as_u64() + u64::from(cpu) * UNIT_SIZE)
    }

    /// The address `gs:` resolves to this CPU's copy (Linux's `__percpu`
    /// pointer value).
    fn gs_address(self) -> u64 {
        self.0.as_u64().wrapping_sub(FIRST_UNIT.load(Ordering::Relaxed)).wrapping_add(section().0)
    }

    /// This CPU's copy (Linux `this_cpu_ptr`). The caller must not migrate
    /// between getting and using it (nothing migrates yet).
    pub fn this_cpu_ptr(self) -> VirtAddr {
        VirtAddr::expect_canonical(self.gs_address().wrapping_add(this_cpu_off()))
    }

    /// Adds `value` to this CPU's u64 at this pointer in one instruction,
    /// safe against interrupts (Linux `this_cpu_add`).
    ///
    /// # Safety
    /// The allocation must hold a u64 at its start.
    pub unsafe fn this_cpu_add_u64(self, value: u64) {
        // SAFETY: gs:[gs_address] is this CPU's copy of the allocation,
        // which the caller says holds a u64.
        unsafe {
            core::arch::asm!("add qword ptr gs:[{0}], {1}", in(reg) self.gs_address(), in(reg) value,
                options(nostack));
        }
    }
}

/// Allocates `size` zeroed bytes per CPU aligned to `align` (Linux
/// `__alloc_percpu`).
pub fn alloc_percpu(size: u64, align: u64) -> Result<PercpuPtr, PcpuError> {
    ALLOCATOR.lock().alloc(size, align).map(PercpuPtr)
}

/// Frees an allocation of [`alloc_percpu`] (Linux `free_percpu`).
pub fn free_percpu(ptr: PercpuPtr) -> Result<(), PcpuError> {
    ALLOCATOR.lock().free(ptr.0).map(drop)
}

/// Pages of per-CPU memory in use, every unit of every chunk (Linux
/// `pcpu_nr_pages`, /proc/meminfo's `Percpu`); 0 before
/// [`setup_per_cpu_areas`].
pub fn pcpu_nr_pages() -> u64 {
    with_allocator(PcpuAllocator::pcpu_nr_pages).unwrap_or(0)
}

/// Runs `f` on the allocator, locked (statistics, checks).
pub fn with_allocator<R>(f: impl FnOnce(&PcpuAllocator<VmallocChunks>) -> R) -> Option<R> {
    let allocator = ALLOCATOR.lock();
    (allocator.nr_chunks() > 0).then(|| f(&allocator))
}

/// mm's [`PercpuAlloc`] (SLUB's per-CPU slabs) over [`alloc_percpu`].
pub struct KernelPercpu;

/// The kernel's per-CPU memory for mm.
pub static KERNEL_PERCPU: KernelPercpu = KernelPercpu;

// SAFETY: alloc_percpu returns memory zeroed in every unit, aligned as
// asked, CPU n's copy UNIT_SIZE * n bytes after CPU 0's, for every CPU the
// first chunk was made for (checked against nr_cpus), kept until
// free_percpu.
unsafe impl PcpuAllocTrait for KernelPercpu {
    fn alloc(&self, size: usize, align: usize, nr_cpus: usize) -> Option<(NonNull<u8>, usize)> {
        let units = with_allocator(|a| a.nr_units() as usize)?;
        if nr_cpus > units {
            return None;
        }
        let ptr = alloc_percpu(size as u64, align as u64).ok()?;
        Some((NonNull::new(ptr.unit0().as_mut_ptr::<u8>())?, UNIT_SIZE as usize))
    }

    unsafe fn free(&self, base: NonNull<u8>) {
        let Some(unit0) = VirtAddr::new(base.as_ptr() as u64) else { return };
        if let Err(e) = free_percpu(PercpuPtr(unit0)) {
            log::error!("{e}");
        }
    }
}

/// One `T` per CPU in per-CPU memory, each initialised with `init`, kept
/// for good (Linux `alloc_percpu(T)` for boot-time structures).
///
/// # Panics
/// Before [`setup_per_cpu_areas`], or if the first chunk cannot hold them.
fn alloc_percpu_array<T, const N: usize>(nr_cpus: u32, init: impl Fn() -> T) -> [PerCpuRef<'static, T>; N] {
    let size = (size_of::<T>() * N) as u64;
    let ptr = alloc_percpu(size, align_of::<T>() as u64)
        .unwrap_or_else(|e| panic!("percpu: {size} bytes per CPU for boot structures: {e}"));
    for cpu in 0..nr_cpus {
        let items = ptr.per_cpu_ptr(cpu).as_mut_ptr::<T>();
        for i in 0..N {
            // SAFETY: the allocation holds N `T`s per CPU, aligned for
            // them, freshly allocated and never freed.
            unsafe { items.add(i).write(init()) };
        }
    }
    core::array::from_fn(|i| {
        let base = ptr.unit0().as_u64() + (i * size_of::<T>()) as u64;
        let base = NonNull::new(base as *mut T).unwrap_or(NonNull::dangling());
        // SAFETY: CPU n's item i is at base + n * UNIT_SIZE, initialised
        // above, never freed; `T`'s own synchronisation guards access.
        unsafe { PerCpuRef::from_raw(base, UNIT_SIZE as usize, nr_cpus as usize) }
    })
}

/// The buddy allocator's per-cpu pagesets of every zone, in per-CPU
/// memory (Linux `setup_zone_pageset`: `alloc_percpu(struct
/// per_cpu_pages)`).
pub fn alloc_zone_pagesets(nr_cpus: u32) -> [PerCpuRef<'static, PerCpuPageset>; MAX_NR_ZONES] {
    alloc_percpu_array(nr_cpus, PerCpuPageset::new)
}

/// The per-CPU event counters (Linux `DEFINE_PER_CPU(struct
/// vm_event_state, vm_event_states)`).
pub fn alloc_vm_events(nr_cpus: u32) -> PerCpuRef<'static, VmEventState> {
    let [events] = alloc_percpu_array(nr_cpus, VmEventState::new);
    events
}

/// The per-CPU node state counters (Linux `pgdat->per_cpu_nodestats`,
/// `alloc_percpu(struct per_cpu_nodestat)`).
pub fn alloc_node_stats(nr_cpus: u32) -> PerCpuRef<'static, PerCpuNodeStat> {
    let [stats] = alloc_percpu_array(nr_cpus, PerCpuNodeStat::new);
    stats
}

/// Each CPU's LRU batches (Linux's per-CPU `cpu_fbatches`), empty.
pub fn alloc_lru_batches(nr_cpus: u32) -> PerCpuRef<'static, mm::swap::LruBatches> {
    let [batches] = alloc_percpu_array(nr_cpus, mm::swap::LruBatches::new);
    batches
}
