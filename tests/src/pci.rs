//! PCI enumeration, capabilities and the `lspci -nn` layout.

use alloc::format;
use alloc::vec::Vec;

use kernel::drivers::pci::{self, Bar, LspciLine, PciAddress, cap_id};
use ktest_macros::ktest;

/// q35's host bridge: Intel 82G33/G31/P35/P31 DRAM controller.
const Q35_HOST_BRIDGE: (u16, u16) = (0x8086, 0x29c0);

#[ktest]
fn q35_host_bridge_is_at_00_00_0() {
    let devices = pci::devices();
    let host = devices.first().expect("the PCI scan found nothing");
    assert_eq!(host.address, PciAddress { bus: 0, device: 0, function: 0 });
    assert_eq!((host.vendor_id, host.device_id), Q35_HOST_BRIDGE);
    assert_eq!(host.class_code(), 0x0600, "00:00.0 is not a host bridge");
    assert_eq!(format!("{}", LspciLine(host)), "00:00.0 Host bridge [0600]: Device [8086:29c0]");
}

#[ktest]
fn scan_is_sorted_and_matches_a_fresh_scan_of_bus_0() {
    let devices = pci::devices();
    assert!(devices.windows(2).all(|w| w[0].address < w[1].address), "scan order is not bus:dev.fn order");
    let mut again = Vec::new();
    pci::for_each_function(|f| again.push((f.address, f.vendor_id, f.device_id)));
    let bus0: Vec<_> =
        devices.iter().filter(|d| d.address.bus == 0).map(|d| (d.address, d.vendor_id, d.device_id)).collect();
    assert_eq!(bus0, again, "the boot scan and a new scan of bus 0 disagree");
    // Sizing BARs must leave them as the firmware assigned them.
    for d in devices {
        for (i, bar) in d.bars.iter().enumerate() {
            if let Some(Bar::Memory { base, size, .. }) = bar {
                assert!(size.is_power_of_two(), "{} BAR{i}: size {size:#x}", d.address);
                assert_eq!(base & (size - 1), 0, "{} BAR{i}: base {base:#x} not aligned to its size", d.address);
                let low = pci::read_config_u32(d.address, 0x10 + 4 * i as u8) & !0xf;
                assert_eq!(u64::from(low), base & 0xffff_fff0, "{} BAR{i} changed by sizing", d.address);
            }
        }
    }
}

#[ktest]
fn q35_lpc_and_sata_functions_have_linux_class_names() {
    let lines: Vec<_> = pci::devices().iter().map(|d| format!("{}", LspciLine(d))).collect();
    assert!(lines.iter().any(|l| l == "00:1f.0 ISA bridge [0601]: Device [8086:2918] (rev 02)"), "{lines:#?}");
    assert!(lines.iter().any(|l| l == "00:1f.2 SATA controller [0106]: Device [8086:2922] (rev 02)"), "{lines:#?}");
}

#[ktest(disk = 8)]
fn virtio_blk_is_listed_with_msix_and_virtio_capabilities() {
    let blk = pci::devices()
        .iter()
        .find(|d| d.vendor_id == 0x1af4 && (d.device_id == 0x1042 || d.device_id == 0x1001))
        .expect("no virtio-blk function found");
    let line = format!("{}", LspciLine(blk));
    assert!(line.contains("SCSI storage controller [0100]: Device [1af4:10"), "{line}");
    assert!(blk.find_capability(cap_id::MSIX).is_some(), "virtio-blk without MSI-X: {:?}", blk.capabilities);
    let vendor_caps = blk.capabilities.iter().filter(|c| c.id == cap_id::VNDR).count();
    assert!(vendor_caps >= 4, "virtio-pci modern has common, notify, ISR and device caps: {:?}", blk.capabilities);
    assert!(blk.bars.iter().flatten().any(|b| matches!(b, Bar::Memory { is_64: true, .. })), "{:?}", blk.bars);
}
