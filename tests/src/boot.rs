//! Boot hand-over: memory map, direct map, image permissions, clock and
//! command line.

use kernel::arch::x86_64::{paging, tsc};
use kernel::boot::{self, DirectMap};
use ktest_macros::ktest;
use mm::arch::{Clock, PhysMemory};
use mm::pgtable::PgProt;
use mm::{PAGE_SIZE, PhysAddr};

use bootloader_api::info::MemoryRegionKind;

#[ktest]
fn memory_map_has_usable_memory_in_sorted_disjoint_regions() {
    let regions = boot::params().memory_regions;
    assert!(!regions.is_empty());
    for pair in regions.windows(2) {
        assert!(pair[0].end <= pair[1].start, "regions overlap or are unsorted: {pair:x?}");
    }
    let summary = boot::summarize(regions);
    assert!(summary.usable >= 16 << 20, "less than 16 MiB usable: {summary:?}");
    assert!(summary.bootloader > 0, "the kernel image must be in a bootloader region");
}

#[ktest]
fn direct_map_translates_both_ways_and_reaches_ram() {
    let region = boot::params()
        .memory_regions
        .iter()
        .find(|r| r.kind == MemoryRegionKind::Usable && r.end - r.start >= PAGE_SIZE)
        .expect("a usable region");
    let phys = PhysAddr::new(region.start);
    let virt = DirectMap.phys_to_virt(phys).expect("usable RAM is in the direct map");
    assert_eq!(DirectMap.virt_to_phys(virt), Some(phys));
    let t = paging::translate(virt.as_u64()).expect("direct map address is mapped");
    assert_eq!(t.phys, phys, "direct map points at the wrong frame");
    // The kernel edits page tables and zeroes frames through the direct map.
    assert!(t.prot.contains(PgProt::WRITE), "direct map is read-only: {:?}", t.prot);
    assert!(!t.prot.contains(PgProt::EXEC), "direct map is executable: {:?}", t.prot);
    assert_eq!(DirectMap.phys_to_virt(boot::params().direct_map_end), None);
}

unsafe extern "C" {
    static __text_start: u8;
    static __rodata_start: u8;
    static __data_start: u8;
}

#[ktest]
fn kernel_image_is_mapped_w_xor_x() {
    let (text, rodata, data) =
        (&raw const __text_start as u64, &raw const __rodata_start as u64, &raw const __data_start as u64);
    let prot = |addr| paging::translate(addr).expect("image mapped").prot;
    let t = prot(text);
    assert!(!t.contains(PgProt::WRITE) && t.contains(PgProt::EXEC), "text must be RX: {t:?}");
    let r = prot(rodata);
    assert!(!r.contains(PgProt::WRITE) && !r.contains(PgProt::EXEC), "rodata must be R+NX: {r:?}");
    let d = prot(data);
    assert!(d.contains(PgProt::WRITE) && !d.contains(PgProt::EXEC), "data must be RW+NX: {d:?}");
}

#[ktest]
fn tsc_clock_is_calibrated_and_monotonic() {
    let khz = tsc::khz();
    assert!(!tsc::calibration_failed(), "PIT calibration failed");
    assert!((100_000..=20_000_000).contains(&khz), "implausible TSC frequency {khz} kHz");
    let clock = tsc::TscClock;
    let mut last = clock.now_ns();
    for _ in 0..1000 {
        let now = clock.now_ns();
        assert!(now >= last, "clock went backwards: {last} -> {now}");
        last = now;
    }
}

#[ktest]
fn command_line_arrives_through_fw_cfg() {
    // xtask always passes a loglevel to test kernels.
    let level = kernel::cmdline::get("loglevel");
    assert!(level.is_some(), "no loglevel in command line {:?}", kernel::cmdline::as_str());
    assert!(kernel::cmdline::has("loglevel"));
    assert!(!kernel::cmdline::has("loglev"), "a prefix must not match a parameter");
}

#[ktest]
fn console_output_is_kept_in_the_log_ring() {
    let marker = alloc::format!("log ring marker {:#x}", tsc::now_ns());
    log::warn!("{marker}");
    let mut buf = alloc::vec![0u8; 4096];
    let n = kernel::printk::LOG_BUF.copy_last(&mut buf);
    assert!(n > marker.len(), "the ring holds {n} bytes");
    let tail = alloc::string::String::from_utf8_lossy(&buf[..n]);
    let line = tail.lines().rev().find(|l| l.contains(&marker));
    let line = line.unwrap_or_else(|| panic!("the last {n} bytes lack {marker:?}"));
    assert!(line.contains("WARN"), "the ring keeps the whole log line: {line:?}");
}

/// The wall clock starts from the CMOS clock, which QEMU sets to the
/// host's time: after 2020 (a clock left at the epoch, or a misread BCD
/// register, lands far from it), and it moves with the TSC clock.
#[ktest]
fn wall_clock_comes_from_the_cmos_clock() {
    use kernel::drivers::rtc::ktime_get_real_ns;
    const JAN_2020: u64 = 1_577_836_800;
    const JAN_2100: u64 = 4_102_444_800;
    let (real, mono) = (ktime_get_real_ns(), kernel::arch::x86_64::tsc::now_ns());
    assert!((JAN_2020..JAN_2100).contains(&(real / 1_000_000_000)), "wall clock {real} ns");
    let ts = kernel::fs::current_time();
    assert!(ts.sec as u64 >= real / 1_000_000_000, "file times use the wall clock");
    while kernel::arch::x86_64::tsc::now_ns() < mono + 1_000_000 {
        core::hint::spin_loop();
    }
    assert!(ktime_get_real_ns() >= real + 1_000_000, "the wall clock follows the TSC clock");
}
