//! Boot: from the bootloader's hand-over to a running kernel (Linux
//! `init/main.c` start_kernel, `arch/x86/kernel/setup.c` setup_arch).
//!
//! The `bootloader` crate enters us in long mode on its own page tables with
//! all physical memory mapped at [`PAGE_OFFSET`] (our direct map, Linux's
//! `page_offset_base`), the kernel image at its link address in the top
//! 2 GiB, a boot stack with a guard page, and its other mappings (boot info,
//! framebuffer, ramdisk) in the "boot area" between 0xffff_8000_0000_0000 and
//! the direct map. See docs/x86_64-memory-map.md.

use bootloader_api::config::Mapping;
use bootloader_api::info::{MemoryRegion, MemoryRegionKind};
use bootloader_api::{BootInfo, BootloaderConfig};
use log::{debug, info, warn};
use mm::{PhysAddr, VirtAddr};
use spin::Once;

use crate::arch::x86_64::{self as arch, cpu, paging, tsc};
use crate::{cmdline, printk};

/// Base of the direct map of all physical memory (Linux `page_offset_base`
/// without KASLR on 4-level paging).
pub const PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;

/// Lowest address the bootloader may pick for its own mappings.
const BOOT_AREA_START: u64 = 0xffff_8000_0000_0000;
/// Highest such address: the last page below the direct map.
const BOOT_AREA_END: u64 = PAGE_OFFSET - 0x1000;

/// Size of the boot stack the bootloader maps (Linux's kernel stacks are
/// 16 KiB; tests and unoptimised builds get headroom).
const BOOT_STACK_SIZE: u64 = 128 * 1024;

/// The bootloader configuration shared by every kernel binary.
pub const BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::FixedAddress(PAGE_OFFSET));
    config.mappings.dynamic_range_start = Some(BOOT_AREA_START);
    config.mappings.dynamic_range_end = Some(BOOT_AREA_END);
    config.kernel_stack_size = BOOT_STACK_SIZE;
    config
};

/// Most memory-map ranges kept (after merging neighbours of one kind).
const MAX_MEMORY_REGIONS: usize = 256;

/// The memory map, copied out of the bootloader's boot info (which lives in
/// the boot area and is not mapped once the kernel runs on its own page
/// tables).
struct RegionTable {
    regions: [MemoryRegion; MAX_MEMORY_REGIONS],
    len: usize,
}

static REGION_TABLE: Once<RegionTable> = Once::new();

/// What the kernel keeps of the bootloader's hand-over.
#[derive(Debug)]
pub struct BootParams {
    /// The firmware memory map as the bootloader reports it, neighbouring
    /// ranges of one kind merged.
    pub memory_regions: &'static [MemoryRegion],
    /// Physical address of the bootloader's boot info (reserved RAM).
    pub boot_info_phys: PhysAddr,
    /// Physical range of the kernel image.
    pub kernel_phys: (PhysAddr, u64),
    /// Virtual range of the boot stack (bottom, length), guard page below.
    pub boot_stack: (VirtAddr, u64),
    /// The ramdisk, if one was loaded: the initramfs, unpacked into the
    /// rootfs and then freed ([`crate::mm::free_initrd_mem`]).
    pub ramdisk: Option<Ramdisk>,
    /// Physical address of the ACPI RSDP, if the firmware has one.
    pub rsdp: Option<PhysAddr>,
    /// End of the direct map: the bootloader maps at least 4 GiB and at
    /// least up to the end of the highest memory region.
    pub direct_map_end: PhysAddr,
}

/// Where the bootloader put the ramdisk (Linux `initrd_start` and
/// `phys_initrd_start`/`phys_initrd_size`).
#[derive(Clone, Copy, Debug)]
pub struct Ramdisk {
    /// Its mapping in the boot area, read-only (the kernel's page tables
    /// copy it) until [`crate::mm::free_initrd_mem`] unmaps it.
    pub virt: VirtAddr,
    /// Its first byte in physical memory: the bootloader loads it as one
    /// contiguous range.
    pub phys: PhysAddr,
    /// Its length in bytes.
    pub len: u64,
}

static BOOT_PARAMS: Once<BootParams> = Once::new();

/// The boot parameters ([`init`] must have run).
///
/// # Panics
/// If called before [`init`]: a kernel bug.
pub fn params() -> &'static BootParams {
    BOOT_PARAMS.get().expect("boot::params() before boot::init()")
}

/// The direct map as seen by mm (Linux `__va`/`__pa`).
pub struct DirectMap;

/// Most RAM ranges the direct map holds (memblock's limit).
const MAX_DIRECT_RANGES: usize = mm::memblock::INIT_MEMBLOCK_REGIONS;

/// The page-aligned RAM ranges `[start, end)` of the kernel's direct map,
/// set when the kernel switches to its own page tables. Until then the
/// bootloader's direct map covers everything below `direct_map_end`.
struct DirectRanges {
    ranges: [(u64, u64); MAX_DIRECT_RANGES],
    len: usize,
}

static DIRECT_RANGES: Once<DirectRanges> = Once::new();

impl DirectMap {
    fn covers(phys: PhysAddr) -> bool {
        let phys = phys.as_u64();
        match DIRECT_RANGES.get() {
            // A handful of ranges on real machines: a scan beats a search.
            Some(table) => table.ranges[..table.len].iter().any(|&(start, end)| (start..end).contains(&phys)),
            None => phys < params().direct_map_end.as_u64(),
        }
    }
}

/// Builds the kernel's page tables over the RAM in memblock (whole pages
/// only, as Linux maps `PFN_UP(start)..PFN_DOWN(end)`) and switches to them.
fn switch_to_kernel_page_tables(params: &BootParams) {
    let memblock = crate::mm::memblock();
    let regions = memblock.as_ref().map(|m| m.memory.regions()).unwrap_or_default();
    let table = DirectRanges {
        ranges: core::array::from_fn(|i| {
            regions
                .get(i)
                .and_then(|r| {
                    let start = r.base.align_up(mm::PAGE_SIZE)?.as_u64();
                    let end = r.end().align_down(mm::PAGE_SIZE).as_u64();
                    (end > start).then_some((start, end))
                })
                .unwrap_or((0, 0))
        }),
        len: regions.len().min(MAX_DIRECT_RANGES),
    };
    drop(memblock);
    let ram = table.ranges[..table.len].iter().filter(|(s, e)| e > s).map(|&(s, e)| (PhysAddr::new(s), e - s));
    arch::pgtable::init(params, ram);
    DIRECT_RANGES.call_once(|| table);
}

// SAFETY: the bootloader maps all physical memory up to `direct_map_end`
// read-write at PAGE_OFFSET (checked in `record_boot_params`); the kernel's
// own tables map exactly the DIRECT_RANGES pages there (arch pgtable::init)
// and `covers` admits only those after the switch. Neither unmaps the
// direct map.
unsafe impl mm::arch::PhysMemory for DirectMap {
    fn phys_to_virt(&self, phys: PhysAddr) -> Option<VirtAddr> {
        if !Self::covers(phys) {
            return None;
        }
        VirtAddr::new(PAGE_OFFSET + phys.as_u64())
    }

    fn virt_to_phys(&self, virt: VirtAddr) -> Option<PhysAddr> {
        let offset = virt.as_u64().checked_sub(PAGE_OFFSET)?;
        let phys = PhysAddr::new(offset);
        Self::covers(phys).then_some(phys)
    }
}

/// Brings the kernel up. Every binary calls this first.
pub fn init(boot_info: &'static mut BootInfo) {
    crate::percpu::init_boot_gs();
    printk::init();
    tsc::calibrate();
    cmdline::init();
    let level = printk::apply_cmdline_level(cmdline::get("loglevel"));

    info!(
        "mm kernel {} ({} build) booting",
        env!("CARGO_PKG_VERSION"),
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    if let Err(bad) = level {
        warn!("loglevel={bad} not understood (error|warn|info|debug|trace); using info");
    }
    match cmdline::as_str() {
        "" => info!("command line: (empty)"),
        line => info!("command line: {line}"),
    }
    for word in cmdline::unknown() {
        warn!("unknown command line parameter {word:?} ignored");
    }
    if cmdline::truncated() {
        warn!("command line longer than the kernel keeps; the rest was ignored");
    }
    info!("CPU: {} features {:?}", cpu::vendor(), cpu::features());
    if tsc::calibration_failed() {
        warn!("TSC: PIT calibration failed; assuming {} kHz", tsc::khz());
    } else {
        info!("TSC: {}.{:03} MHz (PIT calibrated)", tsc::khz() / 1000, tsc::khz() % 1000);
    }

    arch::init_cpu_tables();
    debug!("GDT, TSS (IST for #DF/NMI/#MC) and IDT loaded; 8259 PIC masked");

    let boot_info: &'static BootInfo = boot_info;
    let params = BOOT_PARAMS.call_once(|| record_boot_params(boot_info));
    print_memory_map(params.memory_regions);
    if let Some(rd) = params.ramdisk {
        info!(
            "ramdisk: {} bytes at [mem {:#x}-{:#x}] mapped at {:#x}",
            rd.len,
            rd.phys,
            rd.phys + (rd.len - 1),
            rd.virt
        );
    }
    match arch::acpi::parse_madt(params.rsdp.map(PhysAddr::as_u64)) {
        Ok(madt) => {
            info!(
                "ACPI: MADT: {} CPUs (APIC ids {:?}), local APIC at {:#x}",
                madt.nr_cpus,
                madt.apic_ids(),
                madt.lapic_phys
            );
            arch::smp::set_madt(madt);
        }
        Err(e) => warn!("ACPI: {e}; running on the boot CPU only"),
    }
    crate::mm::init(params);
    crate::slab::init();
    switch_to_kernel_page_tables(params);
    crate::vmalloc::init(arch::smp::nr_cpu_ids());
    crate::mmap::init();
    arch::uaccess::init(arch::cpu::features().contains(arch::cpu::CpuFeatures::SMAP));
    arch::apic::init_bsp();
    let (stack_bottom, stack_len) = params.boot_stack;
    crate::sched::init(0, stack_bottom.as_u64() + stack_len);
    arch::smp::smp_init();
    crate::oom_kill::init();
    crate::compaction::init();
    crate::time::hrtimer::init();
    crate::drivers::rtc::init();
    crate::drivers::pci::init();
    crate::drivers::virtio::blk::init();
    crate::fs::init();
    crate::swapfile::swapon::swapon_from_cmdline();
    crate::mm::record_boot_free_blocks();
    crate::sched::set_system_running();
}

fn record_boot_params(boot_info: &'static BootInfo) -> BootParams {
    let offset = boot_info.physical_memory_offset.into_option();
    // Everything in the kernel computes direct-map addresses from
    // PAGE_OFFSET; a bootloader that ignored the fixed mapping request would
    // make every one of them wrong, so stop here with the reason.
    assert_eq!(offset, Some(PAGE_OFFSET), "bootloader mapped physical memory at {offset:x?}, not at PAGE_OFFSET");
    let table = REGION_TABLE.call_once(|| {
        let mut table = RegionTable { regions: [MemoryRegion::empty(); MAX_MEMORY_REGIONS], len: 0 };
        for_each_merged_region(&boot_info.memory_regions, |start, end, kind| {
            assert!(table.len < MAX_MEMORY_REGIONS, "memory map has more than {MAX_MEMORY_REGIONS} ranges");
            table.regions[table.len] = MemoryRegion { start, end, kind };
            table.len += 1;
        });
        table
    });
    let regions: &'static [MemoryRegion] = &table.regions[..table.len];
    let highest = regions.iter().map(|r| r.end).max().unwrap_or(0);
    let boot_info_virt = core::ptr::from_ref(boot_info) as u64;
    let boot_info_phys = paging::translate(boot_info_virt).map_or(PhysAddr::new(0), |leaf| leaf.phys);
    let ramdisk = boot_info
        .ramdisk_addr
        .into_option()
        .filter(|_| boot_info.ramdisk_len > 0)
        .and_then(|addr| ramdisk_phys(addr, boot_info.ramdisk_len));
    BootParams {
        memory_regions: regions,
        boot_info_phys,
        kernel_phys: (PhysAddr::new(boot_info.kernel_addr), boot_info.kernel_len),
        boot_stack: (VirtAddr::new(boot_info.kernel_stack_bottom).unwrap_or_default(), boot_info.kernel_stack_len),
        ramdisk,
        rsdp: boot_info.rsdp_addr.into_option().map(PhysAddr::new),
        direct_map_end: PhysAddr::new(highest.max(1 << 32)),
    }
}

/// The ramdisk the bootloader mapped at `virt`, `len` bytes, with the
/// physical range behind it, which must be contiguous (bootloader 0.11
/// loads it so); one that is not, or not mapped, is ignored with a
/// warning, its frames left to the bootloader's reservation.
fn ramdisk_phys(virt: u64, len: u64) -> Option<Ramdisk> {
    let ignored = |why: &str| warn!("ramdisk at {virt:#x} ({len} bytes) {why}; ignored");
    let Some(virt_addr) = VirtAddr::new(virt) else {
        ignored("is not a canonical address");
        return None;
    };
    let Some(phys) = paging::translate(virt).map(|leaf| leaf.phys) else {
        ignored("is not mapped");
        return None;
    };
    let ends = [virt, phys.as_u64()].map(|start| start.checked_add(len)?.checked_next_multiple_of(mm::PAGE_SIZE));
    if ends.contains(&None) {
        ignored("runs past the end of the address space");
        return None;
    }
    // Every page, from the first one's start: the leaf of each must
    // continue where the first one's frame is.
    let base = virt & !(mm::PAGE_SIZE - 1);
    let contiguous = (base..virt + len).step_by(mm::PAGE_SIZE as usize).all(|va| {
        paging::translate(va)
            .is_some_and(|leaf| leaf.phys.as_u64().wrapping_sub(phys.as_u64()) == va.wrapping_sub(virt))
    });
    if !contiguous {
        ignored("is not physically contiguous");
        return None;
    }
    Some(Ramdisk { virt: virt_addr, phys, len })
}

fn kind_name(kind: MemoryRegionKind) -> &'static str {
    match kind {
        MemoryRegionKind::Usable => "usable",
        MemoryRegionKind::Bootloader => "bootloader",
        MemoryRegionKind::UnknownBios(_) | MemoryRegionKind::UnknownUefi(_) => "reserved",
        _ => "unknown",
    }
}

/// Totals of the memory map, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryMapSummary {
    /// Number of regions after merging neighbours of the same kind.
    pub regions: usize,
    /// Free RAM handed to the kernel.
    pub usable: u64,
    /// RAM the bootloader used for the kernel image, page tables, boot info,
    /// stack and ramdisk.
    pub bootloader: u64,
    /// Ranges of everything else the firmware lists (ACPI, firmware code,
    /// MMIO holes). Counted, not summed: they are address space, not RAM
    /// (q35 on AMD hosts reserves 12 GiB below 1 TiB).
    pub reserved_ranges: usize,
}

/// Calls `f` with each run of adjacent regions of the same kind, merged.
pub fn for_each_merged_region(regions: &[MemoryRegion], mut f: impl FnMut(u64, u64, MemoryRegionKind)) {
    let mut current: Option<(u64, u64, MemoryRegionKind)> = None;
    for r in regions {
        match current {
            Some((start, end, kind)) if end == r.start && kind == r.kind => current = Some((start, r.end, kind)),
            _ => {
                if let Some((start, end, kind)) = current {
                    f(start, end, kind);
                }
                current = Some((r.start, r.end, r.kind));
            }
        }
    }
    if let Some((start, end, kind)) = current {
        f(start, end, kind);
    }
}

/// Sums the memory map by kind.
pub fn summarize(regions: &[MemoryRegion]) -> MemoryMapSummary {
    let mut s = MemoryMapSummary::default();
    for_each_merged_region(regions, |start, end, kind| {
        s.regions += 1;
        let len = end - start;
        match kind {
            MemoryRegionKind::Usable => s.usable += len,
            MemoryRegionKind::Bootloader => s.bootloader += len,
            _ => s.reserved_ranges += 1,
        }
    });
    s
}

/// Prints the map like Linux's `e820__print_table` (debug level) and a
/// one-line summary (info level).
fn print_memory_map(regions: &[MemoryRegion]) {
    debug!("bootloader memory map:");
    for_each_merged_region(regions, |start, end, kind| {
        debug!("  [mem {start:#018x}-{:#018x}] {}", end - 1, kind_name(kind));
    });
    let s = summarize(regions);
    const MIB: u64 = 1 << 20;
    info!(
        "memory map: {} regions, {} MiB usable, {} MiB used by the bootloader, {} reserved ranges",
        s.regions,
        s.usable / MIB,
        s.bootloader / MIB,
        s.reserved_ranges
    );
}

/// The idle loop: the boot task becomes CPU 0's idle task, running
/// whatever is runnable (the console thread, programs) and halting
/// otherwise.
pub fn idle() -> ! {
    info!("boot complete; entering idle loop");
    crate::sched::idle_loop()
}
