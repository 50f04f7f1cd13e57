//! MSI-X: a device's interrupts as memory writes to a local APIC (Linux
//! `drivers/pci/msi/msi.c` `msix_capability_init`, the x86 message format
//! of `arch/x86/kernel/apic/msi.c`).
//!
//! The MSI-X capability names a BAR and offset holding a table of 16-byte
//! entries (message address, data, vector control) and a size. Enabling
//! follows Linux: function-masked while the entries are written, then
//! MSI-X enabled, then the function mask cleared. The message is the x86
//! one (Intel SDM vol. 3 11.11): address 0xfee00000 with the destination
//! APIC id in bits 12..19, physical destination mode; data is the vector,
//! fixed delivery, edge triggered. INTx is disabled while MSI-X is on, as
//! the PCI spec requires.
//!
//! Differences from Linux: entries are programmed once and never moved
//! (no affinity changes, no interrupt remapping), and the table stays
//! mapped for the life of the device.

use mm::PhysAddr;

use super::{Bar, PciDev, cap_id, read_config_u16, read_config_u32, regs, write_config_u16};

/// Message control register, at capability + 2.
const PCI_MSIX_FLAGS: u8 = 2;
/// Table offset and BIR, at capability + 4.
const PCI_MSIX_TABLE: u8 = 4;
const PCI_MSIX_FLAGS_QSIZE: u16 = 0x07ff;
const PCI_MSIX_FLAGS_MASKALL: u16 = 1 << 14;
const PCI_MSIX_FLAGS_ENABLE: u16 = 1 << 15;
const PCI_MSIX_TABLE_BIR: u32 = 0x7;
/// Bytes per table entry and the offsets in it (Linux `PCI_MSIX_ENTRY_*`).
const PCI_MSIX_ENTRY_SIZE: u64 = 16;
const PCI_MSIX_ENTRY_LOWER_ADDR: u64 = 0;
const PCI_MSIX_ENTRY_UPPER_ADDR: u64 = 4;
const PCI_MSIX_ENTRY_DATA: u64 = 8;
const PCI_MSIX_ENTRY_VECTOR_CTRL: u64 = 12;
const PCI_MSIX_ENTRY_CTRL_MASKBIT: u32 = 1;
/// x86 MSI address base (SDM vol. 3 11.11.1; Linux `X86_MSI_BASE_ADDRESS_LOW`).
const X86_MSI_BASE_ADDRESS_LOW: u32 = 0xfee0_0000;
const X86_MSI_DEST_ID_SHIFT: u32 = 12;

/// Why MSI-X could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsixError {
    /// The function has no MSI-X capability.
    NoCapability,
    /// The table's BAR is missing or not memory.
    BadTableBar,
    /// The table lies outside its BAR, or the entry asked for is past its end.
    BadEntry,
    /// The APIC id does not fit an MSI message without remapping.
    DestinationTooHigh,
    /// The table could not be mapped.
    NoMemory,
}

impl core::fmt::Display for MsixError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MsixError::NoCapability => "no MSI-X capability",
            MsixError::BadTableBar => "MSI-X table BAR missing or not memory",
            MsixError::BadEntry => "MSI-X table entry out of range",
            MsixError::DestinationTooHigh => "APIC id above 255 needs interrupt remapping",
            MsixError::NoMemory => "cannot map the MSI-X table",
        })
    }
}

/// A function's MSI-X table, mapped.
pub struct MsixTable {
    cap: u8,
    base: u64,
    nr_entries: u16,
}

impl MsixTable {
    /// Maps `dev`'s table and masks the function while entries are set.
    pub fn new(dev: &PciDev) -> Result<MsixTable, MsixError> {
        let cap = dev.find_capability(cap_id::MSIX).ok_or(MsixError::NoCapability)?;
        let flags = read_config_u16(dev.address, cap + PCI_MSIX_FLAGS);
        let nr_entries = (flags & PCI_MSIX_FLAGS_QSIZE) + 1;
        let table = read_config_u32(dev.address, cap + PCI_MSIX_TABLE);
        let bir = (table & PCI_MSIX_TABLE_BIR) as usize;
        let offset = u64::from(table & !PCI_MSIX_TABLE_BIR);
        let Some(Some(Bar::Memory { base, size, .. })) = dev.bars.get(bir).copied() else {
            return Err(MsixError::BadTableBar);
        };
        let len = u64::from(nr_entries) * PCI_MSIX_ENTRY_SIZE;
        if base == 0 || offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(MsixError::BadEntry);
        }
        let virt = crate::vmalloc::ioremap(PhysAddr::new(base + offset), len).map_err(|_| MsixError::NoMemory)?;
        write_config_u16(dev.address, cap + PCI_MSIX_FLAGS, flags | PCI_MSIX_FLAGS_MASKALL);
        Ok(MsixTable { cap, base: virt.as_u64(), nr_entries })
    }

    fn write(&self, entry: u16, reg: u64, value: u32) {
        let addr = self.base + u64::from(entry) * PCI_MSIX_ENTRY_SIZE + reg;
        // SAFETY: `base` maps the whole table uncached (`new`), `entry` is
        // below its size (checked by the callers) and registers are 32-bit
        // aligned.
        unsafe { (addr as *mut u32).write_volatile(value) };
    }

    /// Points entry `entry` at `vector` on the CPU with APIC id `apic_id`
    /// and unmasks it.
    pub fn set_entry(&self, entry: u16, vector: u8, apic_id: u32) -> Result<(), MsixError> {
        if entry >= self.nr_entries {
            return Err(MsixError::BadEntry);
        }
        if apic_id > 0xff {
            return Err(MsixError::DestinationTooHigh);
        }
        self.write(entry, PCI_MSIX_ENTRY_VECTOR_CTRL, PCI_MSIX_ENTRY_CTRL_MASKBIT);
        self.write(entry, PCI_MSIX_ENTRY_LOWER_ADDR, X86_MSI_BASE_ADDRESS_LOW | apic_id << X86_MSI_DEST_ID_SHIFT);
        self.write(entry, PCI_MSIX_ENTRY_UPPER_ADDR, 0);
        self.write(entry, PCI_MSIX_ENTRY_DATA, u32::from(vector));
        self.write(entry, PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
        Ok(())
    }

    /// Number of entries in the table.
    pub fn nr_entries(&self) -> u16 {
        self.nr_entries
    }

    /// Enables MSI-X, clears the function mask and turns INTx off.
    pub fn enable(&self, dev: &PciDev) {
        let flags = read_config_u16(dev.address, self.cap + PCI_MSIX_FLAGS);
        write_config_u16(
            dev.address,
            self.cap + PCI_MSIX_FLAGS,
            flags | PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL,
        );
        let cmd = super::read_command(dev.address);
        super::write_command(dev.address, cmd | regs::PCI_COMMAND_INTX_DISABLE);
        write_config_u16(
            dev.address,
            self.cap + PCI_MSIX_FLAGS,
            (flags | PCI_MSIX_FLAGS_ENABLE) & !PCI_MSIX_FLAGS_MASKALL,
        );
    }
}
