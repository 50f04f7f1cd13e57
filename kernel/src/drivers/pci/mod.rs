//! PCI: configuration space, enumeration, BARs and capabilities (Linux
//! `arch/x86/pci/direct.c` for the access, `drivers/pci/probe.c` for the
//! scan, `drivers/pci/pci.c` for capabilities).
//!
//! Configuration space is reached through I/O ports 0xcf8/0xcfc
//! ("configuration mechanism #1"), which covers the first 256 bytes of
//! every function: all that the devices QEMU offers need (ECAM from the
//! ACPI MCFG table would add the extended space; nothing uses it yet).
//!
//! [`init`] scans once at boot, depth first from bus 0 through every
//! PCI-to-PCI bridge's secondary bus (Linux `pci_scan_child_bus` ->
//! `pci_scan_bridge`), sizes each BAR (Linux `__pci_read_base`: decoding
//! off, write all ones, read back the mask, restore) and records the
//! capability list. Drivers and `lspci` read that list afterwards; the
//! firmware's BAR assignment is kept as found (Linux also keeps what the
//! BIOS assigned on x86).
//!
//! Differences from Linux: no hot-plug, no resource reassignment, one PCI
//! segment, no `struct pci_bus` tree (bridges are followed, not modelled).
//!
//! Lock order: the configuration-space lock is a leaf (an address write
//! and its data access must pair up), a [`SpinLockIrq`] so that it could
//! be used from interrupt handlers.

pub mod msi;

use alloc::vec::Vec;
use core::fmt;

use spin::Once;
use x86_64::instructions::port::Port;

use crate::sync::SpinLockIrq;

const PCI_CONFIG_ADDRESS: u16 = 0xcf8;
const PCI_CONFIG_DATA: u16 = 0xcfc;

/// Configuration-space register offsets (Linux `include/uapi/linux/pci_regs.h`).
pub mod regs {
    /// Vendor id (16 bits), device id above it.
    pub const PCI_VENDOR_ID: u8 = 0x00;
    /// Command register (16 bits), status above it.
    pub const PCI_COMMAND: u8 = 0x04;
    /// Revision id (8 bits), then prog-if, subclass, class.
    pub const PCI_CLASS_REVISION: u8 = 0x08;
    /// Cache line, latency, header type, BIST.
    pub const PCI_HEADER_TYPE_DWORD: u8 = 0x0c;
    /// First base address register.
    pub const PCI_BASE_ADDRESS_0: u8 = 0x10;
    /// Primary, secondary, subordinate bus numbers (type 1 headers).
    pub const PCI_PRIMARY_BUS: u8 = 0x18;
    /// Subsystem vendor and id (type 0 headers).
    pub const PCI_SUBSYSTEM_VENDOR_ID: u8 = 0x2c;
    /// Offset of the first capability (8 bits).
    pub const PCI_CAPABILITY_LIST: u8 = 0x34;
    /// Interrupt line and pin.
    pub const PCI_INTERRUPT_LINE: u8 = 0x3c;
    /// Status: the capability list is valid.
    pub const PCI_STATUS_CAP_LIST: u16 = 0x10;
    /// Command: respond to I/O space accesses.
    pub const PCI_COMMAND_IO: u16 = 0x1;
    /// Command: respond to memory space accesses.
    pub const PCI_COMMAND_MEMORY: u16 = 0x2;
    /// Command: bus mastering (DMA).
    pub const PCI_COMMAND_MASTER: u16 = 0x4;
    /// Command: legacy INTx disabled.
    pub const PCI_COMMAND_INTX_DISABLE: u16 = 0x400;
}

/// Capability ids (Linux `PCI_CAP_ID_*`).
pub mod cap_id {
    /// Power management.
    pub const PM: u8 = 0x01;
    /// Message signalled interrupts.
    pub const MSI: u8 = 0x05;
    /// Vendor specific (virtio uses these for its structures).
    pub const VNDR: u8 = 0x09;
    /// PCI Express.
    pub const EXP: u8 = 0x10;
    /// MSI-X.
    pub const MSIX: u8 = 0x11;
}

/// Most capabilities followed in one function's list: the list lives in
/// 192 bytes of 4-byte aligned entries, so a longer chain is a loop
/// (Linux `PCI_FIND_CAP_TTL`).
const PCI_FIND_CAP_TTL: usize = 48;

/// Serialises address-then-data sequences (Linux `pci_lock`, taken
/// irqsave): a leaf.
static LOCK: SpinLockIrq<()> = SpinLockIrq::new(());

/// A PCI function address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PciAddress {
    /// Bus number.
    pub bus: u8,
    /// Device (slot) number, 0..32.
    pub device: u8,
    /// Function number, 0..8.
    pub function: u8,
}

impl fmt::Display for PciAddress {
    /// `bb:dd.f`, as lspci prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{:x}", self.bus, self.device, self.function)
    }
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

fn config_address(addr: PciAddress, offset: u8) -> u32 {
    0x8000_0000u32
        | u32::from(addr.bus) << 16
        | u32::from(addr.device & 0x1f) << 11
        | u32::from(addr.function & 0x7) << 8
        | u32::from(offset & 0xfc)
}

/// Reads the 32-bit register at `offset` (4-byte aligned, below 256).
pub fn read_config_u32(addr: PciAddress, offset: u8) -> u32 {
    let _guard = LOCK.lock();
    // SAFETY: 0xcf8/0xcfc are the PC's PCI configuration ports; reading a
    // configuration register has no side effects on the devices we enumerate.
    unsafe {
        Port::<u32>::new(PCI_CONFIG_ADDRESS).write(config_address(addr, offset));
        Port::<u32>::new(PCI_CONFIG_DATA).read()
    }
}

/// Writes the 32-bit register at `offset` (4-byte aligned, below 256).
/// Configuration writes change how a device decodes and interrupts: only
/// the enumeration and drivers of the function call this.
pub fn write_config_u32(addr: PciAddress, offset: u8, value: u32) {
    let _guard = LOCK.lock();
    // SAFETY: as in `read_config_u32`; the caller owns the function whose
    // register it writes.
    unsafe {
        Port::<u32>::new(PCI_CONFIG_ADDRESS).write(config_address(addr, offset));
        Port::<u32>::new(PCI_CONFIG_DATA).write(value);
    }
}

/// Reads the 16-bit register at `offset` (2-byte aligned).
pub fn read_config_u16(addr: PciAddress, offset: u8) -> u16 {
    (read_config_u32(addr, offset & !3) >> ((offset & 2) * 8)) as u16
}

/// Reads the 8-bit register at `offset`.
pub fn read_config_u8(addr: PciAddress, offset: u8) -> u8 {
    (read_config_u32(addr, offset & !3) >> ((offset & 3) * 8)) as u8
}

/// Writes the 16-bit register at `offset` (2-byte aligned), keeping the
/// other half of its dword. The other half must not be write-1-to-clear
/// (status, for instance): this reads and writes it back.
pub fn write_config_u16(addr: PciAddress, offset: u8, value: u16) {
    let _guard = LOCK.lock();
    let shift = (offset & 2) * 8;
    // SAFETY: as in `write_config_u32`.
    unsafe {
        Port::<u32>::new(PCI_CONFIG_ADDRESS).write(config_address(addr, offset));
        let old = Port::<u32>::new(PCI_CONFIG_DATA).read();
        let new = (old & !(0xffff << shift)) | u32::from(value) << shift;
        Port::<u32>::new(PCI_CONFIG_DATA).write(new);
    }
}

/// Sets the command register to `command` (16 bits at 0x04). The status
/// half of the dword is write-1-to-clear, so it is written as zero.
pub fn write_command(addr: PciAddress, command: u16) {
    write_config_u32(addr, regs::PCI_COMMAND, u32::from(command));
}

/// The command register.
pub fn read_command(addr: PciAddress) -> u16 {
    read_config_u16(addr, regs::PCI_COMMAND)
}

/// A base address register as sized at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bar {
    /// I/O ports `[base, base + size)`.
    Io {
        /// First port.
        base: u32,
        /// Bytes decoded.
        size: u32,
    },
    /// Memory `[base, base + size)`.
    Memory {
        /// Physical base address.
        base: u64,
        /// Bytes decoded (a power of two).
        size: u64,
        /// A 64-bit BAR (it takes the next slot too).
        is_64: bool,
        /// Prefetchable memory.
        prefetchable: bool,
    },
}

impl Bar {
    /// Physical base and size of a memory BAR.
    pub fn memory(&self) -> Option<(u64, u64)> {
        match *self {
            Bar::Memory { base, size, .. } => Some((base, size)),
            Bar::Io { .. } => None,
        }
    }
}

/// A capability in a function's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capability {
    /// `PCI_CAP_ID_*`.
    pub id: u8,
    /// Offset in configuration space.
    pub offset: u8,
}

/// A function found by [`init`] (Linux `struct pci_dev`, the parts we use).
#[doc(alias = "pci_dev")]
#[derive(Clone, Debug)]
pub struct PciDev {
    /// Where it is.
    pub address: PciAddress,
    /// Vendor id.
    pub vendor_id: u16,
    /// Device id.
    pub device_id: u16,
    /// Base class, subclass and programming interface (24 bits).
    pub class: u32,
    /// Revision id.
    pub revision: u8,
    /// Header type without the multi-function bit (0 device, 1 bridge).
    pub header_type: u8,
    /// Subsystem vendor and device (type 0 headers; 0 otherwise).
    pub subsystem: (u16, u16),
    /// Interrupt pin (1 = INTA#, 0 = none) and the line the firmware set.
    pub irq_pin: u8,
    /// The legacy interrupt line the firmware wrote.
    pub irq_line: u8,
    /// The six BARs (two for a bridge), `None` where unimplemented or the
    /// upper half of a 64-bit BAR.
    pub bars: [Option<Bar>; 6],
    /// The capability list, in list order.
    pub capabilities: Vec<Capability>,
}

impl PciDev {
    /// Base class and subclass, as `lspci -nn` prints them in brackets.
    pub fn class_code(&self) -> u16 {
        (self.class >> 8) as u16
    }

    /// The first capability with id `id` (Linux `pci_find_capability`).
    pub fn find_capability(&self, id: u8) -> Option<u8> {
        self.capabilities.iter().find(|c| c.id == id).map(|c| c.offset)
    }

    /// Turns on memory decoding and bus mastering (Linux
    /// `pci_enable_device_mem` + `pci_set_master`).
    pub fn enable_mem_and_master(&self) {
        let cmd = read_command(self.address);
        write_command(self.address, cmd | regs::PCI_COMMAND_MEMORY | regs::PCI_COMMAND_MASTER);
    }
}

/// Every function found at boot, in scan order (bus, device, function,
/// bridges' buses after the bridge's own bus).
static DEVICES: Once<Vec<PciDev>> = Once::new();

/// Scans the bus (once; later calls return the first scan).
pub fn init() -> &'static [PciDev] {
    DEVICES.call_once(|| {
        let mut devices = Vec::new();
        let mut visited = [false; 256];
        scan_bus(0, &mut devices, &mut visited);
        devices.sort_by_key(|d| d.address);
        log::info!("PCI: {} functions on {} buses", devices.len(), visited.iter().filter(|v| **v).count());
        devices
    })
}

/// The functions found by [`init`] (empty before it).
pub fn devices() -> &'static [PciDev] {
    DEVICES.get().map_or(&[], Vec::as_slice)
}

fn scan_bus(bus: u8, devices: &mut Vec<PciDev>, visited: &mut [bool; 256]) {
    // A bridge whose secondary bus loops back (firmware bug) is not
    // followed twice.
    if core::mem::replace(&mut visited[usize::from(bus)], true) {
        return;
    }
    for_each_function_on(bus, |f| {
        let dev = probe_function(f);
        let secondary = (dev.header_type == 1).then(|| (read_config_u32(f.address, regs::PCI_PRIMARY_BUS) >> 8) as u8);
        devices.push(dev);
        if let Some(secondary) = secondary
            && secondary != 0
        {
            scan_bus(secondary, devices, visited);
        }
    });
}

fn for_each_function_on(bus: u8, mut f: impl FnMut(PciFunction)) {
    for device in 0..32 {
        for function in 0..8 {
            let address = PciAddress { bus, device, function };
            let id = read_config_u32(address, regs::PCI_VENDOR_ID);
            let vendor_id = (id & 0xffff) as u16;
            if vendor_id == 0xffff || vendor_id == 0 {
                if function == 0 {
                    break;
                }
                continue;
            }
            f(PciFunction { address, vendor_id, device_id: (id >> 16) as u16 });
            let header_type = (read_config_u32(address, regs::PCI_HEADER_TYPE_DWORD) >> 16) as u8;
            if function == 0 && header_type & 0x80 == 0 {
                break;
            }
        }
    }
}

/// Calls `f` for every function present on bus 0 (a direct scan, usable
/// before [`init`]).
pub fn for_each_function(f: impl FnMut(PciFunction)) {
    for_each_function_on(0, f);
}

fn probe_function(f: PciFunction) -> PciDev {
    let a = f.address;
    let class_rev = read_config_u32(a, regs::PCI_CLASS_REVISION);
    let header_type = ((read_config_u32(a, regs::PCI_HEADER_TYPE_DWORD) >> 16) & 0x7f) as u8;
    let nr_bars = match header_type {
        0 => 6,
        1 => 2,
        _ => 0,
    };
    let subsystem = if header_type == 0 {
        let s = read_config_u32(a, regs::PCI_SUBSYSTEM_VENDOR_ID);
        ((s & 0xffff) as u16, (s >> 16) as u16)
    } else {
        (0, 0)
    };
    let irq = read_config_u32(a, regs::PCI_INTERRUPT_LINE);
    PciDev {
        address: a,
        vendor_id: f.vendor_id,
        device_id: f.device_id,
        class: class_rev >> 8,
        revision: class_rev as u8,
        header_type,
        subsystem,
        irq_pin: (irq >> 8) as u8,
        irq_line: irq as u8,
        bars: read_bars(a, nr_bars),
        capabilities: read_capabilities(a),
    }
}

/// Sizes the first `nr` BARs (Linux `pci_read_bases`), with I/O and
/// memory decoding off meanwhile so the all-ones probe never decodes.
fn read_bars(a: PciAddress, nr: usize) -> [Option<Bar>; 6] {
    let mut bars = [None; 6];
    if nr == 0 {
        return bars;
    }
    let cmd = read_command(a);
    write_command(a, cmd & !(regs::PCI_COMMAND_IO | regs::PCI_COMMAND_MEMORY));
    let mut i = 0;
    while i < nr {
        let reg = regs::PCI_BASE_ADDRESS_0 + 4 * i as u8;
        let orig = read_config_u32(a, reg);
        write_config_u32(a, reg, !0);
        let mask = read_config_u32(a, reg);
        write_config_u32(a, reg, orig);
        if orig & 1 == 1 {
            // I/O BAR: bits 2.. hold the address (16 bits on x86).
            let size_mask = mask & 0xffff_fffc & 0xffff;
            if size_mask != 0 {
                bars[i] = Some(Bar::Io { base: orig & 0xffff_fffc, size: (!size_mask & 0xffff).wrapping_add(1) });
            }
            i += 1;
            continue;
        }
        let is_64 = orig & 0b110 == 0b100;
        let prefetchable = orig & 0b1000 != 0;
        let mut base = u64::from(orig & 0xffff_fff0);
        let mut size_mask = u64::from(mask & 0xffff_fff0);
        if is_64 && i + 1 < nr {
            let upper_reg = reg + 4;
            let upper = read_config_u32(a, upper_reg);
            write_config_u32(a, upper_reg, !0);
            let upper_mask = read_config_u32(a, upper_reg);
            write_config_u32(a, upper_reg, upper);
            base |= u64::from(upper) << 32;
            size_mask |= u64::from(upper_mask) << 32;
        } else if size_mask != 0 {
            size_mask |= 0xffff_ffff_0000_0000;
        }
        if size_mask != 0 {
            bars[i] = Some(Bar::Memory { base, size: (!size_mask).wrapping_add(1), is_64, prefetchable });
        }
        i += if is_64 { 2 } else { 1 };
    }
    write_command(a, cmd);
    bars
}

/// Follows the capability list (Linux `__pci_find_next_cap_ttl`): at most
/// [`PCI_FIND_CAP_TTL`] entries, each at a 4-byte aligned offset of at
/// least 0x40.
fn read_capabilities(a: PciAddress) -> Vec<Capability> {
    let mut caps = Vec::new();
    let status = read_config_u16(a, regs::PCI_COMMAND + 2);
    if status & regs::PCI_STATUS_CAP_LIST == 0 {
        return caps;
    }
    let mut pos = read_config_u8(a, regs::PCI_CAPABILITY_LIST);
    for _ in 0..PCI_FIND_CAP_TTL {
        if pos < 0x40 {
            break;
        }
        pos &= !3;
        let header = read_config_u16(a, pos);
        let id = header as u8;
        if id == 0xff {
            break;
        }
        caps.push(Capability { id, offset: pos });
        pos = (header >> 8) as u8;
    }
    caps
}

/// The name `lspci` gives a class (pciutils' `pci.ids`, the classes a PC
/// or QEMU machine has; others fall back to their base class's name).
pub fn class_name(class_code: u16) -> &'static str {
    match class_code {
        0x0000 => "Non-VGA unclassified device",
        0x0100 => "SCSI storage controller",
        0x0101 => "IDE interface",
        0x0105 => "ATA controller",
        0x0106 => "SATA controller",
        0x0107 => "Serial Attached SCSI controller",
        0x0108 => "Non-Volatile memory controller",
        0x0200 => "Ethernet controller",
        0x0280 => "Network controller",
        0x0300 => "VGA compatible controller",
        0x0302 => "3D controller",
        0x0380 => "Display controller",
        0x0401 => "Multimedia audio controller",
        0x0403 => "Audio device",
        0x0500 => "RAM memory",
        0x0600 => "Host bridge",
        0x0601 => "ISA bridge",
        0x0604 => "PCI bridge",
        0x0680 => "Bridge",
        0x0700 => "Serial controller",
        0x0780 => "Communication controller",
        0x0880 => "System peripheral",
        0x0c03 => "USB controller",
        0x0c05 => "SMBus",
        0x00ff => "Unclassified device",
        _ => match class_code >> 8 {
            0x01 => "Mass storage controller",
            0x02 => "Network controller",
            0x03 => "Display controller",
            0x04 => "Multimedia controller",
            0x05 => "Memory controller",
            0x06 => "Bridge",
            0x07 => "Communication controller",
            0x08 => "Generic system peripheral",
            0x0c => "Serial bus controller",
            _ => "Unassigned class",
        },
    }
}

/// One `lspci -nn` line: `00:1f.2 SATA controller [0106]: Device
/// [8086:2922] (rev 02)` (vendor and device names are not kept: "Device").
pub struct LspciLine<'a>(pub &'a PciDev);

impl fmt::Display for LspciLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(
            f,
            "{} {} [{:04x}]: Device [{:04x}:{:04x}]",
            d.address,
            class_name(d.class_code()),
            d.class_code(),
            d.vendor_id,
            d.device_id
        )?;
        if d.revision != 0 {
            write!(f, " (rev {:02x})", d.revision)?;
        }
        Ok(())
    }
}
