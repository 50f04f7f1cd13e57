//! The harness itself: per-test machine configuration reaches the machine.

use bootloader_api::info::MemoryRegionKind;
use kernel::boot;
use kernel::drivers::{fw_cfg, pci};
use kernel::ktest;
use ktest_macros::ktest;

/// PCI vendor id of virtio devices.
const VIRTIO_VENDOR: u16 = 0x1af4;
/// virtio-blk device ids: transitional and modern (virtio 1.x, 0x1040 + 2).
const VIRTIO_BLK_IDS: [u16; 2] = [0x1001, 0x1042];

#[ktest(mem = 192)]
fn memory_size_request_is_applied() {
    let regions = boot::params().memory_regions;
    let ram: u64 = regions
        .iter()
        .filter(|r| matches!(r.kind, MemoryRegionKind::Usable | MemoryRegionKind::Bootloader))
        .map(|r| r.end - r.start)
        .sum();
    let mib = ram >> 20;
    // Firmware keeps a few MiB (BIOS area, ACPI tables) out of the RAM kinds.
    assert!((160..=192).contains(&mib), "asked for 192 MiB, the memory map shows {mib} MiB of RAM");
}

#[ktest(cpus = 2)]
fn cpu_count_request_is_applied() {
    assert_eq!(fw_cfg::cpu_count(), Some(2));
}

#[ktest(disk = 8)]
fn scratch_disk_request_attaches_a_virtio_blk_device() {
    let mut found = 0;
    pci::for_each_function(|f| {
        if f.vendor_id == VIRTIO_VENDOR && VIRTIO_BLK_IDS.contains(&f.device_id) {
            found += 1;
        }
    });
    assert_eq!(found, 1, "expected one virtio-blk device on the PCI bus");
}

#[ktest]
fn default_machine_has_no_scratch_disk() {
    let mut found = 0;
    pci::for_each_function(|f| {
        if f.vendor_id == VIRTIO_VENDOR && VIRTIO_BLK_IDS.contains(&f.device_id) {
            found += 1;
        }
    });
    assert_eq!(found, 0, "a test without `disk` got a virtio-blk device");
}

#[ktest(fresh_boot)]
fn fresh_boot_test_runs_first_in_its_boot() {
    assert_eq!(ktest::tests_started_this_boot(), 1, "another test ran before this one in the same boot");
}
