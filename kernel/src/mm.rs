//! Boot-time memory set-up: memblock from the firmware memory map, the
//! memory map of page descriptors, and the hand-over to the buddy allocator
//! (Linux `arch/x86/kernel/e820.c` `e820__memblock_setup`,
//! `arch/x86/kernel/setup.c` `setup_arch`'s reservations, `mm/mm_init.c`
//! `free_area_init` and `mm_core_init`).
//!
//! 1. memblock.memory gets every RAM region of the bootloader's map (usable
//!    and bootloader-used); memblock.reserved gets what is in use: the first
//!    MiB (as Linux x86 reserves it for BIOS and real-mode data), everything
//!    the bootloader used (the kernel image, its page tables, boot info, the
//!    boot stack, the ramdisk), and, explicitly, the kernel image and the
//!    ramdisk again so that a bootloader mislabelling them cannot hand them
//!    out.
//! 2. The memory map ([`Page`] per frame, FLATMEM from pfn 0 to the end of
//!    RAM) and the pageblock flags are allocated from memblock, top-down,
//!    and initialised in place as reserved pages.
//! 3. Zones are sized, every free memblock range is released to the buddy
//!    allocator, and watermarks and per-cpu list sizes are computed.
//!
//! memblock is kept afterwards behind a lock, for reports (Linux
//! `ARCH_KEEP_MEMBLOCK`). Once the initramfs is unpacked, the ramdisk's
//! frames go to the buddy allocator ([`free_initrd_mem`]) and leave
//! memblock's reserved array.
//!
//! A machine with too little memory for all this stops here, before the
//! first allocation that would fail, with one line naming the RAM found and
//! the RAM needed ([`out_of_memory_at_boot`]); QEMU then exits through
//! isa-debug-exit with the failure status instead of sitting halted. The
//! BIOS bootloader needs more than the kernel (see the `boot` crate), so
//! under xtask this is reached with `mem=` (Linux's parameter), or from a
//! bootloader that leaves less below the kernel.

use core::fmt;
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use log::{debug, info};
use mm::arch::{CpuOps, IrqFlags, PhysMemory};
use mm::gfp::Gfp;
use mm::memblock::Memblock;
use mm::meminfo::{Meminfo, MeminfoKernel};
use mm::mmzone::{MAX_NR_ZONES, NR_PAGE_ORDERS, ZoneType};
use mm::page::{MemMap, Page, pageblock_flags_len};
use mm::page_alloc::{BadPage, Pages, PgData};
use mm::vmstat::Buddyinfo;
use mm::{PAGE_SIZE, Pfn, PhysAddr, VirtAddr};
use spin::Once;

use crate::boot::{BootParams, DirectMap, Ramdisk};
use crate::sync::{Mutex, MutexGuard};

/// Linux x86 reserves the first MiB: BIOS data, EBDA, real-mode trampolines.
const LOW_RESERVE: u64 = 1 << 20;

/// Free memory the kernel needs at boot beyond the memory map, pageblock
/// flags, early heap and per-CPU chunk it sizes itself: the kmalloc caches,
/// its own page tables (about 80 pages), vmalloc'd stacks, the console
/// thread, and a user program with its page tables. Measured with `mem=`:
/// `run /bin/hello` passes with 1876 KiB left after those allocations and
/// is OOM-killed with 852 KiB.
const MIN_FREE_AFTER_BOOT: u64 = 2 << 20;

const KIB: u64 = 1024;
const MIB: u64 = 1 << 20;

/// The executing CPU for mm: interrupt masking through RFLAGS.IF.
pub struct KernelCpu;

impl CpuOps for KernelCpu {
    /// A GS-relative load of the CPU number (see `smp`).
    fn cpu_id(&self) -> u32 {
        crate::arch::x86_64::smp::smp_processor_id()
    }

    fn irq_save(&self) -> IrqFlags {
        let enabled = x86_64::instructions::interrupts::are_enabled();
        x86_64::instructions::interrupts::disable();
        IrqFlags(u64::from(enabled))
    }

    fn irq_restore(&self, flags: IrqFlags) {
        if flags.0 != 0 {
            x86_64::instructions::interrupts::enable();
        }
    }

    fn might_sleep(&self, caller: &'static core::panic::Location<'static>) {
        crate::sched::might_sleep_at(caller);
    }

    /// Faults run in the faulting task's context (never an interrupt
    /// handler's), so the running task is the one to charge.
    fn account_major_fault(&self) {
        if let Some(task) = crate::sched::try_current() {
            task.acct.count_fault(true);
        }
    }
}

static KERNEL_CPU: KernelCpu = KernelCpu;
static DIRECT_MAP: DirectMap = DirectMap;
static MEMBLOCK: Once<Mutex<Memblock>> = Once::new();
static PGDAT: Once<PgData<'static>> = Once::new();
static BOOT_FREE: Once<[[u64; NR_PAGE_ORDERS]; MAX_NR_ZONES]> = Once::new();

/// The page allocator ([`init`] must have run).
///
/// # Panics
/// If called before [`init`]: a kernel bug.
pub fn pgdat() -> &'static PgData<'static> {
    PGDAT.get().expect("mm::pgdat() before mm::init()")
}

/// The page allocator, or `None` before [`init`] (for code that may run
/// before memory is up and has a fallback).
pub fn try_pgdat() -> Option<&'static PgData<'static>> {
    PGDAT.get()
}

/// The boot memblock, kept for reports: as it was when memory went to
/// the buddy allocator, less what was freed since (the initrd). Its lock
/// sleeps.
pub fn memblock() -> Option<MutexGuard<'static, Memblock>> {
    MEMBLOCK.get().map(Mutex::lock)
}

/// Records the boot-time free blocks, once boot has made every allocation
/// it keeps (the slab allocator's caches included), with the slabs boot
/// left empty given back first, as a check against the snapshot does
/// (unpacking the initramfs frees many buffers).
pub fn record_boot_free_blocks() {
    if let Some(slab) = crate::slab::slab() {
        slab.shrink_all();
    }
    BOOT_FREE.call_once(free_blocks);
}

/// Free blocks per order per zone at the end of boot (the boot-time
/// /proc/buddyinfo), for tests that must leave the allocator as they found
/// it.
pub fn boot_free_blocks() -> Option<&'static [[u64; NR_PAGE_ORDERS]; MAX_NR_ZONES]> {
    BOOT_FREE.get()
}

/// Free blocks per order per zone now, per-cpu lists drained first.
pub fn free_blocks() -> [[u64; NR_PAGE_ORDERS]; MAX_NR_ZONES] {
    let pgdat = pgdat();
    pgdat.drain_all_pages();
    ZoneType::ALL.map(|zone| {
        let counts = pgdat.free_counts(zone);
        core::array::from_fn(|order| counts.nr_free(order))
    })
}

/// What [`drop_caches`] gave back.
#[derive(Clone, Copy, Debug)]
pub struct DroppedCaches {
    /// Clean, unused page-cache pages dropped.
    pub pagecache_pages: u64,
    /// Objects the slab shrinkers freed (dentries, evicted inodes, ext2
    /// metadata blocks).
    pub slab_objects: u64,
    /// Empty slab pages returned to the buddy allocator.
    pub slab_pages: u64,
    /// Whether lazily freed vmalloc areas were purged.
    pub purged: bool,
}

/// Gives back what the kernel keeps for reuse (what `echo 3 >
/// /proc/sys/vm/drop_caches` does here, and what tests do before counting
/// free pages): the clean page-cache pages nothing uses, never shmem's (Linux
/// `drop_pagecache_sb` on every file system), what the slab shrinkers
/// can free (Linux `drop_slab`: unused dentries and inodes, ext2's clean
/// metadata blocks), the stacks of tasks that
/// died in atomic context, the lazy vmalloc areas, the empty slabs, the
/// per-CPU page lists. In that order: dropping pages frees index nodes
/// and leaves unused inodes without pages, so the shrinkers can evict
/// them; freeing a stack or purging an area frees `vmap_area` objects,
/// all of whose slabs can only be given back after. May sleep; the
/// caller holds no file-system lock.
pub fn drop_caches() -> DroppedCaches {
    // Pages in an LRU batch hold the batch's reference (Linux's
    // `drop_pagecache_sb` runs after `lru_add_drain_all` for the same
    // reason, through `invalidate_mapping_pages`).
    if let Some(pgdat) = try_pgdat() {
        pgdat.lru_add_drain_all();
    }
    let mut pagecache_pages = 0;
    for sb in crate::fs::namespace::superblocks() {
        for inode in sb.cached_inodes() {
            if let Some(mapping) = inode.i_mapping.as_ref() {
                pagecache_pages += crate::filemap::invalidate_mapping_pages(mapping);
            }
        }
    }
    let slab_objects = try_pgdat().map_or(0, mm::shrinker::drop_slab);
    crate::sched::release_dead_tasks();
    let purged = crate::vmalloc::vm_if_ready().is_some_and(|vm| vm.purge_vmap_area_lazy());
    let slab_pages = crate::slab::slab().map_or(0, |s| s.shrink_all());
    if let Some(pgdat) = try_pgdat() {
        pgdat.drain_all_pages();
    }
    DroppedCaches { pagecache_pages, slab_objects, slab_pages, purged }
}

/// Free pages in the buddy allocator, per-cpu lists drained first (for
/// tests that must leave memory as they found it).
pub fn nr_free_pages() -> u64 {
    let pgdat = pgdat();
    // A page whose last reference is an LRU batch's is freed by the drain.
    pgdat.lru_add_drain_all();
    pgdat.drain_all_pages();
    pgdat.nr_free_pages()
}

/// /proc/meminfo now: the node's counters, the kernel's vmalloc window
/// and per-CPU memory, and the swap areas ([`init`] must have run).
pub fn meminfo() -> Meminfo<'static, 'static> {
    let (swap_total_pages, swap_free_pages) = crate::swapfile::si_swapinfo();
    Meminfo {
        pgdat: pgdat(),
        kernel: MeminfoKernel {
            vmalloc_total: crate::vmalloc::VMALLOC_TOTAL,
            vmalloc_used_pages: crate::vmalloc::vmalloc_nr_pages(),
            percpu_pages: crate::percpu::pcpu_nr_pages(),
            swap_total_pages,
            swap_free_pages,
        },
    }
}

/// Allocates 2^`order` pages (Linux `alloc_pages`).
pub fn alloc_pages(gfp: Gfp, order: u32) -> Option<Pfn> {
    pgdat().alloc_pages(gfp, order)
}

/// [`alloc_pages`] as an owning handle that frees the block when dropped.
pub fn alloc_pages_owned(gfp: Gfp, order: u32) -> Option<Pages<'static, 'static>> {
    pgdat().alloc_pages_owned(gfp, order)
}

/// Frees pages from [`alloc_pages`] (Linux `__free_pages`).
///
/// # Safety
/// As for [`mm::page_alloc::PgData::free_pages`]: the caller owns the
/// reference, and nothing maps or points into the block afterwards.
pub unsafe fn free_pages(pfn: Pfn, order: u32) -> Result<(), BadPage> {
    // SAFETY: the caller's contract, passed on.
    unsafe { pgdat().free_pages(pfn, order) }
}

/// The direct-map address of a page (Linux `page_address`).
pub fn page_address(pfn: Pfn) -> VirtAddr {
    VirtAddr::expect_canonical(crate::boot::PAGE_OFFSET + pfn.phys().as_u64())
}

/// Builds memblock, the memory map and the zones, and releases free memory
/// to the buddy allocator.
///
/// # Panics
/// If memblock cannot describe the memory map or there is no memory for
/// the page descriptors: the kernel cannot run without them (Linux panics
/// in the same places).
pub fn init(params: &BootParams) {
    let mut memblock = Memblock::new();
    memblock_setup(&mut memblock, params);
    if let Some(arg) = crate::cmdline::get("mem") {
        match crate::cmdline::memparse(arg) {
            Some(limit) => enforce_memory_limit(&mut memblock, limit),
            None => log::warn!("mem={arg} is not a size; ignored"),
        }
    }
    let nr_cpus = crate::arch::x86_64::smp::nr_cpu_ids();
    check_boot_memory(&memblock, nr_cpus);
    setup_early_heap(&mut memblock);
    debug!("{}", memblock.dump());

    let end_pfn = memblock.end_of_dram().map_or(0, |end| end.as_u64() / PAGE_SIZE);
    let pages = alloc_mem_map(&mut memblock, end_pfn);
    let blocks = alloc_pageblock_flags(&mut memblock, end_pfn);
    let mem_map = match MemMap::new(Pfn::new(0), pages, blocks) {
        Ok(map) => map,
        Err(e) => panic!("memory map: {e}"),
    };
    crate::percpu::setup_per_cpu_areas(&mut memblock, nr_cpus);
    let pcp = crate::percpu::alloc_zone_pagesets(nr_cpus);
    let events = crate::percpu::alloc_vm_events(nr_cpus);
    let node_stats = crate::percpu::alloc_node_stats(nr_cpus);
    let lru_batches = crate::percpu::alloc_lru_batches(nr_cpus);
    let per_cpu = mm::page_alloc::NodePerCpu { pcp, vm_events: events, node_stats, lru_batches };
    let pgdat = PgData::new(mem_map, &memblock, &DIRECT_MAP, &KERNEL_CPU, per_cpu);
    let released = pgdat.memblock_free_all(&memblock);
    let pgdat = PGDAT.call_once(|| pgdat);
    pgdat.set_folio_waits(&crate::mmap::FOLIO_WAIT);
    let reserved_at_hand_over = memblock.reserved_size();
    MEMBLOCK.call_once(|| Mutex::new(memblock));
    print_zones(pgdat);

    let present: u64 = pgdat.zones().iter().map(|z| z.present_pages()).sum();
    let memmap_kib = (end_pfn * core::mem::size_of::<Page>() as u64).div_ceil(KIB);
    info!(
        "Memory: {}K/{}K available ({}K kernel, {}K mem_map for {} pages of {} bytes, {}K reserved)",
        released * PAGE_SIZE / KIB,
        present * PAGE_SIZE / KIB,
        params.kernel_phys.1.div_ceil(KIB),
        memmap_kib,
        end_pfn,
        core::mem::size_of::<Page>(),
        (present - released) * PAGE_SIZE / KIB,
    );
    debug!("memblock reserved at hand-over: {reserved_at_hand_over:#x} bytes");
    debug!("buddyinfo:\n{}", Buddyinfo(pgdat));
}

/// Linux `e820__memblock_setup` plus `setup_arch`'s early reservations.
fn memblock_setup(memblock: &mut Memblock, params: &BootParams) {
    use bootloader_api::info::MemoryRegionKind;
    let fail = |what: &str, e: mm::memblock::MemblockError| -> ! { panic!("memblock: {what}: {e}") };
    crate::boot::for_each_merged_region(params.memory_regions, |start, end, kind| {
        if matches!(kind, MemoryRegionKind::Usable | MemoryRegionKind::Bootloader) {
            memblock.add(PhysAddr::new(start), end - start).unwrap_or_else(|e| fail("adding RAM", e));
        }
        if kind == MemoryRegionKind::Bootloader {
            memblock.reserve(PhysAddr::new(start), end - start).unwrap_or_else(|e| fail("reserving bootloader", e));
        }
    });
    memblock.reserve(PhysAddr::new(0), LOW_RESERVE).unwrap_or_else(|e| fail("reserving low memory", e));
    let (kernel, kernel_len) = params.kernel_phys;
    memblock.reserve(kernel, kernel_len).unwrap_or_else(|e| fail("reserving the kernel", e));
    if let Some(rd) = params.ramdisk {
        // Linux `reserve_initrd`: whole frames, the last one too.
        let (start, end) = initrd_frames(&rd);
        memblock.reserve(start, end.as_u64() - start.as_u64()).unwrap_or_else(|e| fail("reserving the ramdisk", e));
    }
}

/// The frames the ramdisk occupies, `[start, end)`, whole pages: the
/// bootloader allocated them for it alone (its BIOS stages put their
/// config file just after it, read before the kernel starts).
fn initrd_frames(rd: &Ramdisk) -> (PhysAddr, PhysAddr) {
    (rd.phys.align_down(PAGE_SIZE), PhysAddr::new((rd.phys.as_u64() + rd.len).next_multiple_of(PAGE_SIZE)))
}

/// Gives the ramdisk's frames to the buddy allocator once the initramfs
/// is unpacked (Linux `free_initrd_mem`: x86's `free_init_pages("initrd")`,
/// with the `memblock_free` of `ARCH_KEEP_MEMBLOCK` kernels): its mapping
/// is taken down first, so a stale use faults rather than reading pages
/// someone else owns, then its reservation leaves memblock and its pages
/// become free and managed (`MemTotal` and `MemFree` grow by its size).
/// Logs Linux's `Freeing initrd memory: NK`. If the mapping cannot be
/// taken down, the frames stay reserved.
///
/// # Safety
/// Nothing reads the ramdisk afterwards: every reference into its mapping
/// is gone. May sleep.
pub unsafe fn free_initrd_mem(rd: &Ramdisk) {
    let (start, end) = initrd_frames(rd);
    let virt = rd.virt.align_down(PAGE_SIZE);
    let va_len = end.as_u64() - start.as_u64();
    // SAFETY: the caller guarantees nothing uses the ramdisk's mapping any
    // more; it is the boot area's own, which nothing else shares.
    if let Err(e) = unsafe { crate::arch::x86_64::pgtable::unmap_kernel_range(virt, va_len) } {
        log::warn!("initrd: cannot unmap {virt:#x}+{va_len:#x}: {e}; its memory stays reserved");
        return;
    }
    if let Some(mut memblock) = memblock()
        && let Err(e) = memblock.free(start, va_len)
    {
        log::warn!("initrd: memblock keeps [mem {start:#x}-{:#x}] reserved: {e}", end.as_u64() - 1);
    }
    // SAFETY: the frames are the ramdisk's alone (`initrd_frames`), nothing
    // maps them any more (unmapped and flushed above), and the caller holds
    // no reference into them.
    unsafe { pgdat().free_reserved_area(start, end, "initrd") };
}

/// Linux `mem=`: keeps only the memory below the address where `limit`
/// bytes of it are reached (Linux `memblock_enforce_memory_limit`). Unlike
/// Linux, reserved ranges above that address stay: the bootloader put the
/// kernel image and the ramdisk at 16 MiB and above, where Linux's kernel
/// never lies; only free memory there is removed.
fn enforce_memory_limit(memblock: &mut Memblock, limit: u64) {
    let mut seen = 0;
    let mut max_addr = None;
    for r in memblock.memory.regions() {
        if seen + r.size >= limit {
            // Whole pages: the direct map holds no partial ones.
            max_addr = Some((r.base.as_u64() + (limit - seen)) / PAGE_SIZE * PAGE_SIZE);
            break;
        }
        seen += r.size;
    }
    let Some(max_addr) = max_addr else { return };
    let mut cut = [(0, 0); mm::memblock::INIT_MEMBLOCK_REGIONS];
    let mut nr_cut = 0;
    for (start, end) in memblock.free_ranges() {
        let (start, end) = (start.as_u64().max(max_addr), end.as_u64());
        if end > start && nr_cut < cut.len() {
            cut[nr_cut] = (start, end - start);
            nr_cut += 1;
        }
    }
    for &(start, len) in &cut[..nr_cut] {
        if let Err(e) = memblock.remove(PhysAddr::new(start), len) {
            log::warn!("mem=: cannot remove [{start:#x}, {:#x}): {e}", start + len);
        }
    }
    info!("mem={}K: memory above {max_addr:#x} not used but for what the bootloader put there", limit / KIB);
}

/// The least RAM this machine needs, computed by [`check_boot_memory`]
/// for the early out-of-memory paths' report.
static BOOT_RAM_NEEDED: AtomicU64 = AtomicU64::new(0);

/// Stops a boot without enough free memory for [`init`] and the first user
/// program, before anything fails for lack of it. The need is what boot
/// allocates from memblock (memory map, pageblock flags, early heap,
/// per-CPU chunk) plus [`MIN_FREE_AFTER_BOOT`]; the RAM that takes is that
/// plus what firmware and bootloader hold.
fn check_boot_memory(memblock: &Memblock, nr_cpus: u32) {
    let end_pfn = memblock.end_of_dram().map_or(0, |end| end.as_u64() / PAGE_SIZE);
    let boot_allocations = (end_pfn * core::mem::size_of::<Page>() as u64).next_multiple_of(PAGE_SIZE)
        + (pageblock_flags_len(end_pfn) as u64).next_multiple_of(PAGE_SIZE)
        + crate::slab::EARLY_HEAP_SIZE as u64
        + crate::percpu::UNIT_SIZE * u64::from(nr_cpus);
    let needed = boot_allocations + MIN_FREE_AFTER_BOOT;
    let free = free_bytes(memblock);
    let held = memblock.phys_mem_size().saturating_sub(free);
    BOOT_RAM_NEEDED.store(held + needed, Ordering::Relaxed);
    if free < needed {
        out_of_memory_at_boot(
            memblock,
            format_args!(
                "{} KiB free after the firmware's and bootloader's {} KiB, {} KiB needed: {} KiB for the memory \
                 map, early heap and per-CPU areas, {} KiB to run",
                free / KIB,
                held / KIB,
                needed / KIB,
                boot_allocations / KIB,
                MIN_FREE_AFTER_BOOT / KIB
            ),
        );
    }
}

fn free_bytes(memblock: &Memblock) -> u64 {
    memblock.free_ranges().map(|(start, end)| end.as_u64() - start.as_u64()).sum()
}

/// The end of a boot that lacks memory: one line naming the RAM found and
/// the least RAM this machine needs, then the failure exit through
/// isa-debug-exit (a halt where there is none) rather than a panic's halt
/// that leaves QEMU running.
fn out_of_memory_at_boot(memblock: &Memblock, why: fmt::Arguments<'_>) -> ! {
    crate::printk::emergency(format_args!(
        "\nKernel panic - not enough memory to boot: {} MiB of RAM found, at least {} MiB needed ({why})\n",
        memblock.phys_mem_size() / MIB,
        BOOT_RAM_NEEDED.load(Ordering::Relaxed).div_ceil(MIB),
    ));
    crate::drivers::qemu_exit::exit_qemu(crate::drivers::qemu_exit::QemuExitCode::Failed)
}

/// Gives the early heap (the global allocator until SLUB is up) a
/// memblock region, reserved for good.
fn setup_early_heap(memblock: &mut Memblock) {
    let size = crate::slab::EARLY_HEAP_SIZE;
    let phys = memblock.phys_alloc(size as u64, PAGE_SIZE).unwrap_or_else(|e| {
        out_of_memory_at_boot(memblock, format_args!("cannot allocate the early heap ({size} bytes): {e}"))
    });
    let virt = DIRECT_MAP.phys_to_virt(phys).expect("memblock memory outside the direct map");
    // SAFETY: memblock just reserved these bytes for good; the direct map
    // maps them writable; nothing else uses them.
    unsafe { crate::slab::init_early_heap(virt.as_mut_ptr::<u8>(), size) };
}

/// Allocates and initialises one reserved [`Page`] per frame below
/// `end_pfn` (Linux `alloc_node_mem_map` + `memmap_init`).
fn alloc_mem_map(memblock: &mut Memblock, end_pfn: u64) -> &'static [Page] {
    let bytes = end_pfn * core::mem::size_of::<Page>() as u64;
    let phys = memblock.phys_alloc(bytes.max(1), PAGE_SIZE).unwrap_or_else(|e| {
        out_of_memory_at_boot(memblock, format_args!("cannot allocate the memory map ({bytes} bytes): {e}"))
    });
    let virt = DIRECT_MAP.phys_to_virt(phys).expect("memblock memory outside the direct map");
    let base = virt.as_mut_ptr::<Page>();
    for pfn in 0..end_pfn {
        // SAFETY: `base` is the direct-map address of `bytes` bytes just
        // reserved in memblock for the memory map (never freed), page
        // aligned and so aligned for `Page`; element `pfn` lies inside it.
        unsafe { base.add(pfn as usize).write(Page::new_reserved(ZoneType::for_pfn(Pfn::new(pfn)))) };
    }
    // SAFETY: all `end_pfn` elements were initialised above; the memory is
    // reserved for good, so the slice may live for 'static; only shared
    // references to it are ever created (its fields are atomics).
    unsafe { core::slice::from_raw_parts(base, end_pfn as usize) }
}

/// Allocates the pageblock flags for pfns below `end_pfn` (Linux
/// `setup_usemap`).
fn alloc_pageblock_flags(memblock: &mut Memblock, end_pfn: u64) -> &'static [AtomicU8] {
    let len = pageblock_flags_len(end_pfn);
    let phys = memblock.phys_alloc((len as u64).max(1), 64).unwrap_or_else(|e| {
        out_of_memory_at_boot(memblock, format_args!("cannot allocate pageblock flags ({len} bytes): {e}"))
    });
    let base = DIRECT_MAP.phys_to_virt(phys).expect("memblock memory outside the direct map").as_mut_ptr::<AtomicU8>();
    for i in 0..len {
        // SAFETY: `len` bytes were reserved at `base` for these flags.
        unsafe { base.add(i).write(AtomicU8::new(0)) };
    }
    // SAFETY: initialised above, reserved for good, shared access only.
    unsafe { core::slice::from_raw_parts(base, len) }
}

/// Linux's boot report of zone ranges and the zonelist build.
fn print_zones(pgdat: &PgData<'_>) {
    info!("Zone ranges:");
    for zone in pgdat.zones() {
        if zone.present_pages() == 0 {
            info!("  {:<8} empty", zone.name());
        } else {
            let start = zone.start_pfn() * PAGE_SIZE;
            let end = (zone.start_pfn() + zone.spanned_pages()) * PAGE_SIZE - 1;
            info!(
                "  {:<8} [mem {start:#018x}-{end:#018x}] present {} managed {} wmark min/low/high {}/{}/{}",
                zone.name(),
                zone.present_pages(),
                zone.managed_pages(),
                zone.watermark(mm::mmzone::Watermark::Min),
                zone.watermark(mm::mmzone::Watermark::Low),
                zone.watermark(mm::mmzone::Watermark::High),
            );
        }
    }
    info!("Built 1 zonelists, mobility grouping on.  Total pages: {}", pgdat.totalram_pages());
}
