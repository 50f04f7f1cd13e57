//! PCI configuration space through I/O ports 0xcf8/0xcfc ("configuration
//! mechanism #1", Linux `arch/x86/pci/direct.c`). Enough to enumerate devices;
//! ECAM (MMCONFIG) arrives with the virtio drivers.
//!
//! Lock order: the config-space lock is a leaf (address and data port
//! accesses must pair up).

use x86_64::instructions::port::Port;

use crate::sync::SpinLockIrq;

const PCI_CONFIG_ADDRESS: u16 = 0xcf8;
const PCI_CONFIG_DATA: u16 = 0xcfc;

/// Serialises address-then-data sequences (Linux `pci_lock`, taken
/// irqsave): a leaf.
static LOCK: SpinLockIrq<()> = SpinLockIrq::new(());

/// A PCI function address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciAddress {
    /// Bus number.
    pub bus: u8,
    /// Device (slot) number, 0..32.
    pub device: u8,
    /// Function number, 0..8.
    pub function: u8,
}

/// A function found by [`for_each_function`].
#[derive(Clone, Copy, Debug)]
pub struct PciFunction {
    /// Where it is.
    pub address: PciAddress,
    /// Vendor id (offset 0).
    pub vendor_id: u16,
    /// Device id (offset 2).
    pub device_id: u16,
}

/// Reads the 32-bit register at `offset` (4-byte aligned, below 256).
pub fn read_config_u32(addr: PciAddress, offset: u8) -> u32 {
    let address = 0x8000_0000u32
        | u32::from(addr.bus) << 16
        | u32::from(addr.device & 0x1f) << 11
        | u32::from(addr.function & 0x7) << 8
        | u32::from(offset & 0xfc);
    let _guard = LOCK.lock();
    // SAFETY: 0xcf8/0xcfc are the PC's PCI configuration ports; reading a
    // configuration register has no side effects on the devices we enumerate.
    unsafe {
        Port::<u32>::new(PCI_CONFIG_ADDRESS).write(address);
        Port::<u32>::new(PCI_CONFIG_DATA).read()
    }
}

/// Calls `f` for every function present on bus 0 (QEMU's root bus; bridges
/// are not followed yet).
pub fn for_each_function(mut f: impl FnMut(PciFunction)) {
    for device in 0..32 {
        for function in 0..8 {
            let address = PciAddress { bus: 0, device, function };
            let id = read_config_u32(address, 0);
            let vendor_id = (id & 0xffff) as u16;
            if vendor_id == 0xffff {
                if function == 0 {
                    break;
                }
                continue;
            }
            f(PciFunction { address, vendor_id, device_id: (id >> 16) as u16 });
            let header_type = (read_config_u32(address, 0x0c) >> 16) as u8;
            if function == 0 && header_type & 0x80 == 0 {
                break;
            }
        }
    }
}
