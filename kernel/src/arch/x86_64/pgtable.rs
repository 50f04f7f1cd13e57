//! The kernel's own page tables, built at boot (Linux
//! `arch/x86/mm/init_64.c` `kernel_physical_mapping_init`, `init.c`
//! `init_mem_mapping`, and `mark_rodata_ro`'s final permissions).
//!
//! The bootloader enters us on its tables, which map all of the first 4 GiB
//! and more, writable, plus its own boot-area mappings. Once the buddy
//! allocator runs, [`init`] builds a fresh tree from mm's page-table layer:
//! - the direct map of every RAM range in memblock at `PAGE_OFFSET`, with
//!   1 GiB pages where alignment allows and the CPU has them, else 2 MiB,
//!   read-write, no-execute, global; holes (MMIO, firmware) stay unmapped
//!   (Linux maps RAM only, too);
//! - the kernel image page by page with its section's rights: text RX,
//!   rodata R+NX, data and bss RW+NX;
//! - the two boot-area ranges still in use: the boot stack (its guard page
//!   stays unmapped) and the ramdisk, read-only, until the initramfs is
//!   unpacked ([`crate::mm::free_initrd_mem`] unmaps it);
//! - pud tables for the whole vmalloc area, so the kernel half of the root
//!   never changes after boot (Linux `preallocate_vmalloc_pages`);
//! - nothing in the lower half: address 0 faults.
//!
//! Then CR3 switches to it, global pages are flushed, and NX, global pages,
//! SMEP and SMAP are enabled as the CPU allows. The root is allocated below
//! 4 GiB so that 32-bit trampoline code (AP start-up) can load it.
//! `docs/x86_64-memory-map.md` documents the layout.
//!
//! Locking: mapping into empty entries needs no lock (mm installs tables
//! with compare-and-swap); [`protect_kernel_range`] and
//! [`unmap_kernel_range`], which may split huge pages, hold `CPA_LOCK`
//! (Linux `cpa_lock`). It is a sleeping [`Mutex`]: splitting allocates
//! page tables with `GFP_PGTABLE_KERNEL` under it (Linux's spin lock is
//! dropped around that allocation), so callers must be able to sleep.

use log::info;
use mm::gfp::GFP_DMA32;
use mm::pgtable::{
    FreeTables, PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_KERNEL_ROX, PageSize, PageTable, PgProt, PgtableError, TlbGather,
    X86PteFormat,
};
use mm::ptdump::{AddrMarker, WxReport};
use mm::{PAGE_SIZE, PhysAddr, VirtAddr};
use spin::Once;
use x86_64::registers::control::{Cr3, Cr3Flags, Cr4, Cr4Flags, Efer, EferFlags};
use x86_64::structures::paging::PhysFrame;

use super::cpu::{self, CpuFeatures};
use super::paging;
use super::tlb::{self, KernelTlb};
use crate::boot::{BootParams, PAGE_OFFSET};
use crate::sync::Mutex;

/// Start of the vmalloc area (Linux `VMALLOC_START` without KASLR).
pub const VMALLOC_START: u64 = 0xffff_c900_0000_0000;
/// End of the vmalloc area, exclusive (Linux: 32 TiB on 4-level paging).
pub const VMALLOC_END: u64 = 0xffff_e900_0000_0000;

/// The kernel's page tables.
pub type KernelPageTable = PageTable<'static, X86PteFormat>;

static FORMAT: Once<X86PteFormat> = Once::new();
static KERNEL_PGTABLE: Once<KernelPageTable> = Once::new();
static CPA_LOCK: Mutex<()> = Mutex::new(());
static KERNEL_TLB: KernelTlb = KernelTlb;

/// The kernel's page tables, once [`init`] has switched to them.
pub fn kernel_pgtable() -> Option<&'static KernelPageTable> {
    KERNEL_PGTABLE.get()
}

/// The kernel's TLB flusher.
pub fn kernel_tlb() -> &'static KernelTlb {
    &KERNEL_TLB
}

unsafe extern "C" {
    static __kernel_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __kernel_end: u8;
}

/// The address markers of a kernel page-table dump (Linux
/// `address_markers`).
pub const MARKERS: [AddrMarker; 4] = [
    AddrMarker { start: 0xffff_8000_0000_0000, name: "Boot area (boot stack, ramdisk)" },
    AddrMarker { start: PAGE_OFFSET, name: "Low Kernel Mapping" },
    AddrMarker { start: VMALLOC_START, name: "vmalloc() Area" },
    AddrMarker { start: 0xffff_ffff_8000_0000, name: "High Kernel Mapping" },
];

/// Builds the kernel's page tables, switches to them and turns on the
/// protection features the CPU has.
///
/// # Panics
/// If memory for the tables runs out or a boot range cannot be mapped: the
/// kernel cannot go on without its address space (Linux panics in
/// `alloc_low_pages` likewise).
pub fn init(params: &BootParams, ram: impl Iterator<Item = (PhysAddr, u64)>) {
    let features = cpu::features();
    let nx = features.contains(CpuFeatures::NX);
    let fmt = FORMAT.call_once(|| X86PteFormat::new(nx));
    let pgdat = crate::mm::pgdat();
    let pt = PageTable::new(pgdat, fmt, GFP_DMA32, false).unwrap_or_else(|e| panic!("kernel page tables: {e}"));
    let mut gather = TlbGather::new();
    let fail = |what: &str, e: PgtableError| -> ! { panic!("kernel page tables: mapping {what}: {e}") };

    let max = if features.contains(CpuFeatures::GBPAGES) { PageSize::Size1G } else { PageSize::Size2M };
    let mut direct = 0;
    for (base, size) in ram {
        let virt = VirtAddr::expect_canonical(PAGE_OFFSET + base.as_u64());
        pt.map(virt, base, size, PAGE_KERNEL, max, &mut gather).unwrap_or_else(|e| fail("the direct map", e));
        direct += size;
    }

    let image = (&raw const __kernel_start as u64, &raw const __kernel_end as u64);
    let (text_end, rodata_end) = (&raw const __text_end as u64, &raw const __rodata_end as u64);
    let text_end = text_end.next_multiple_of(PAGE_SIZE);
    copy_boot_mapping(&pt, image.0, image.1, &mut gather, |va| {
        if va < text_end {
            PAGE_KERNEL_ROX
        } else if va < rodata_end {
            PAGE_KERNEL_RO
        } else {
            PAGE_KERNEL
        }
    });
    let (stack, stack_len) = params.boot_stack;
    copy_boot_mapping(&pt, stack.as_u64(), stack.as_u64() + stack_len, &mut gather, |_| PAGE_KERNEL);
    if let Some(rd) = params.ramdisk {
        let start = rd.virt.align_down(PAGE_SIZE).as_u64();
        copy_boot_mapping(&pt, start, rd.virt.as_u64() + rd.len, &mut gather, |_| PAGE_KERNEL_RO);
    }

    let mut va = VMALLOC_START;
    while va < VMALLOC_END {
        pt.preallocate(VirtAddr::expect_canonical(va)).unwrap_or_else(|e| fail("the vmalloc area", e));
        va += 1 << 39;
    }
    // Mapping into empty entries queued nothing to flush.
    gather.finish(&KERNEL_TLB, pgdat);

    enable_protection(features);
    let root = PhysFrame::from_start_address(x86_64::PhysAddr::new(pt.root().as_u64()))
        .unwrap_or_else(|_| panic!("kernel page-table root {:#x} not page aligned", pt.root().as_u64()));
    // SAFETY: the new tree maps everything the kernel touches from here on:
    // its image (with the rights the linker script gives each section, so
    // code keeps running), the stack we are on, the direct map of all RAM
    // (where every kernel data structure lives) and the ramdisk. The
    // bootloader's other mappings (boot info, its page tables) are not used
    // after boot::init copied what it needs.
    unsafe { Cr3::write(root, Cr3Flags::empty()) };
    tlb::flush_tlb_all_local();
    let pt = KERNEL_PGTABLE.call_once(|| pt);

    info!(
        "x86/mm: kernel page tables: {} MiB direct-mapped (pages up to {}), {} table pages, root {:#x}; NX {}, SMEP {}, SMAP {}, PGE {}",
        direct >> 20,
        max.name(),
        pt.nr_tables(),
        pt.root().as_u64(),
        on_off(nx),
        on_off(features.contains(CpuFeatures::SMEP)),
        on_off(features.contains(CpuFeatures::SMAP)),
        on_off(features.contains(CpuFeatures::PGE)),
    );
    let wx = check_wx();
    if wx.wx_pages == 0 {
        info!("x86/mm: Checked W+X mappings: passed, no W+X pages found.");
    } else {
        log::warn!(
            "x86/mm: Checked W+X mappings: FAILED, {} W+X pages found (first at {:#x}).",
            wx.wx_pages,
            wx.first.unwrap_or(0)
        );
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

/// Maps `[start, end)` to the frames the bootloader's tables (still live)
/// map it to, page by page, with `prot(va)`; runs of contiguous frames
/// with equal rights go in one call.
fn copy_boot_mapping(pt: &KernelPageTable, start: u64, end: u64, gather: &mut TlbGather, prot: impl Fn(u64) -> PgProt) {
    let mut run: Option<(u64, u64, u64, PgProt)> = None;
    let flush = |run: (u64, u64, u64, PgProt), gather: &mut TlbGather| {
        let (va, phys, len, p) = run;
        pt.map(VirtAddr::expect_canonical(va), PhysAddr::new(phys), len, p, PageSize::Size4K, gather)
            .unwrap_or_else(|e| panic!("kernel page tables: mapping boot range {va:#x}+{len:#x}: {e}"));
    };
    let mut va = start & !(PAGE_SIZE - 1);
    while va < end {
        let leaf = paging::translate(va)
            .unwrap_or_else(|| panic!("kernel page tables: boot range page {va:#x} is not mapped by the bootloader"));
        let (phys, p) = (leaf.phys.as_u64(), prot(va));
        run = match run {
            Some((rva, rphys, len, rp)) if rp == p && rphys + len == phys && rva + len == va => {
                Some((rva, rphys, len + PAGE_SIZE, rp))
            }
            Some(done) => {
                flush(done, gather);
                Some((va, phys, PAGE_SIZE, p))
            }
            None => Some((va, phys, PAGE_SIZE, p)),
        };
        va += PAGE_SIZE;
    }
    if let Some(done) = run {
        flush(done, gather);
    }
}

/// Turns on NXE, PGE, SMEP and SMAP as CPUID allows (every CPU runs this).
pub fn enable_protection(features: CpuFeatures) {
    if features.contains(CpuFeatures::NX) {
        // SAFETY: setting EFER.NXE only makes bit 63 of entries meaningful;
        // our format sets it exactly when NX is supported.
        unsafe { Efer::update(|f| f.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    }
    let mut cr4 = Cr4::read();
    for (feature, flag) in [
        (CpuFeatures::PGE, Cr4Flags::PAGE_GLOBAL),
        (CpuFeatures::SMEP, Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION),
        (CpuFeatures::SMAP, Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION),
    ] {
        if features.contains(feature) {
            cr4.insert(flag);
        }
    }
    // SAFETY: each bit is set only when CPUID reports the feature. SMEP and
    // SMAP forbid kernel execution of and access to user pages; the kernel
    // maps no user pages yet, and user-copy code will bracket its accesses
    // with STAC/CLAC.
    unsafe { Cr4::write(cr4) };
}

/// Unmaps `[start, start + len)` of kernel address space and flushes it,
/// splitting huge pages at the ends (Linux `set_memory_np`). Returns the
/// bytes that were mapped.
///
/// # Safety
/// Nothing may use the range afterwards except to fault on purpose; Rust
/// references into it become dangling.
pub unsafe fn unmap_kernel_range(start: VirtAddr, len: u64) -> Result<u64, PgtableError> {
    let pt = kernel_pgtable().ok_or(PgtableError::BadRange)?;
    if start.is_user() {
        return Err(PgtableError::BadRange);
    }
    let _cpa = CPA_LOCK.lock();
    let mut gather = TlbGather::new();
    let result = pt.unmap(start, len, FreeTables::No, &mut gather);
    gather.finish(&KERNEL_TLB, pt.pgdat());
    result
}

/// Changes the rights of the mapped pages of `[start, start + len)` and
/// flushes them (Linux `set_memory_ro`/`set_memory_rw`/`set_memory_x`...).
///
/// # Safety
/// Taking rights away from memory the kernel still uses with them faults
/// at the next such use; granting write or execute rights can break W^X.
pub unsafe fn protect_kernel_range(start: VirtAddr, len: u64, prot: PgProt) -> Result<u64, PgtableError> {
    let pt = kernel_pgtable().ok_or(PgtableError::BadRange)?;
    if start.is_user() {
        return Err(PgtableError::BadRange);
    }
    let _cpa = CPA_LOCK.lock();
    let mut gather = TlbGather::new();
    let result = pt.protect(start, len, prot, &mut gather);
    gather.finish(&KERNEL_TLB, pt.pgdat());
    result
}

/// Counts W+X pages in the kernel half (Linux `ptdump_check_wx`).
pub fn check_wx() -> WxReport {
    match kernel_pgtable() {
        Some(pt) => mm::ptdump::check_wx(pt, VirtAddr::expect_canonical(0xffff_8000_0000_0000), u64::MAX),
        None => WxReport::default(),
    }
}

/// Writes the kernel half of the page tables in Linux's
/// /sys/kernel/debug/page_tables/kernel format.
pub fn dump_kernel(out: &mut impl core::fmt::Write) -> core::fmt::Result {
    match kernel_pgtable() {
        Some(pt) => mm::ptdump::ptdump(pt, VirtAddr::expect_canonical(0xffff_8000_0000_0000), u64::MAX, &MARKERS, out),
        None => Ok(()),
    }
}

/// Loads the page-table root `cr3` (0: the kernel's own tables) on this
/// CPU (Linux `switch_mm_irqs_off` without PCID: the CR3 write flushes every
/// non-global translation, so a CPU never keeps another address space's
/// user entries).
pub fn switch_mm(cr3: u64) {
    let root = if cr3 == 0 { kernel_pgtable().map_or(0, |pt| pt.root().as_u64()) } else { cr3 };
    if root == 0 {
        return;
    }
    let Ok(frame) = PhysFrame::from_start_address(x86_64::PhysAddr::new(root)) else {
        log::error!("switch_mm: page-table root {root:#x} is not page aligned; staying on the current tables");
        return;
    };
    // Before the write: see `tlb`'s ordering rule.
    super::tlb::set_loaded_root(cr3);
    // SAFETY: `root` is the kernel's root or a user root whose kernel half
    // was copied from the kernel's (`PageTable::new_user`), so the kernel
    // (this code, its stack, the direct map) stays mapped across the write.
    unsafe { Cr3::write(frame, Cr3Flags::empty()) };
}

/// The entry format of every page table (kernel and user).
pub fn format() -> &'static X86PteFormat {
    FORMAT.get().expect("page-table format used before pgtable::init")
}
