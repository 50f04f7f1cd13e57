//! Finding the CPUs: the ACPI RSDP, RSDT/XSDT and MADT (Linux
//! `drivers/acpi/tables.c`, `arch/x86/kernel/acpi/boot.c`
//! `acpi_parse_madt`, `acpi_parse_lapic`, `acpi_parse_x2apic`).
//!
//! Parsed once, early in boot, while the bootloader's page tables still map
//! every firmware range at `PAGE_OFFSET` (Linux parses the MADT this early
//! too, through `early_memremap`). Every table's signature, length and
//! checksum are checked; a table that fails is refused with a message and
//! the kernel carries on with the boot CPU alone, as Linux does without a
//! usable MADT.
//!
//! Hand-written rather than the `acpi` crate: we need four structures, all
//! before any heap exists, and their layouts are fixed by the ACPI spec
//! (6.5, sections 5.2.5 RSDP, 5.2.7 RSDT, 5.2.8 XSDT, 5.2.12 MADT).

use core::fmt;

use crate::boot::PAGE_OFFSET;

/// Most CPUs the kernel brings up (mm's `NR_CPUS`).
pub const MAX_CPUS: usize = mm::mmzone::NR_CPUS;

/// What the MADT says about the machine's interrupt controllers.
#[derive(Clone, Copy, Debug)]
pub struct Madt {
    /// Physical address of the local APICs' registers.
    pub lapic_phys: u64,
    /// APIC ids of the enabled CPUs, in MADT order; the boot CPU is among
    /// them.
    pub apic_ids: [u32; MAX_CPUS],
    /// How many entries of `apic_ids` are valid.
    pub nr_cpus: usize,
    /// Enabled CPUs the MADT listed beyond [`MAX_CPUS`].
    pub ignored_cpus: usize,
}

impl Madt {
    /// The APIC ids.
    pub fn apic_ids(&self) -> &[u32] {
        &self.apic_ids[..self.nr_cpus]
    }
}

/// Why the tables were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// The bootloader found no RSDP.
    NoRsdp,
    /// A structure's signature is wrong.
    BadSignature(&'static str, u64),
    /// A structure's checksum does not sum to zero.
    BadChecksum(&'static str, u64),
    /// A length field is implausible.
    BadLength(&'static str, u64),
    /// No MADT ("APIC") in the RSDT/XSDT.
    NoMadt,
}

impl fmt::Display for AcpiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcpiError::NoRsdp => f.write_str("no RSDP"),
            AcpiError::BadSignature(what, at) => write!(f, "{what} at {at:#x}: bad signature"),
            AcpiError::BadChecksum(what, at) => write!(f, "{what} at {at:#x}: bad checksum"),
            AcpiError::BadLength(what, at) => write!(f, "{what} at {at:#x}: bad length"),
            AcpiError::NoMadt => f.write_str("no MADT (APIC) table"),
        }
    }
}

/// Longest table we accept (the MADT of a 64-CPU machine is ~1 KiB).
const MAX_TABLE_LEN: u32 = 1 << 20;

/// `len` bytes of physical memory at `phys`, through the bootloader's
/// direct map.
fn phys_bytes(phys: u64, len: usize) -> &'static [u8] {
    // SAFETY: called only before the switch to the kernel's page tables,
    // while the bootloader maps all physical memory below
    // `direct_map_end` (which covers every range of the memory map,
    // firmware tables included) at PAGE_OFFSET; the firmware's tables are
    // never written by anyone. Lengths are bounded by MAX_TABLE_LEN.
    unsafe { core::slice::from_raw_parts((PAGE_OFFSET + phys) as *const u8, len) }
}

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |sum, &b| sum.wrapping_add(b)) == 0
}

fn u32_at(bytes: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([bytes[off], bytes[off + 1], bytes[off + 2], bytes[off + 3]])
}

fn u64_at(bytes: &[u8], off: usize) -> u64 {
    u64::from(u32_at(bytes, off)) | u64::from(u32_at(bytes, off + 4)) << 32
}

/// A system description table: header checked, bytes returned.
fn sdt(phys: u64, what: &'static str, signature: &[u8; 4]) -> Result<&'static [u8], AcpiError> {
    let header = phys_bytes(phys, 36);
    if &header[..4] != signature {
        return Err(AcpiError::BadSignature(what, phys));
    }
    let len = u32_at(header, 4);
    if !(36..=MAX_TABLE_LEN).contains(&len) {
        return Err(AcpiError::BadLength(what, phys));
    }
    let table = phys_bytes(phys, len as usize);
    if !checksum_ok(table) {
        return Err(AcpiError::BadChecksum(what, phys));
    }
    Ok(table)
}

/// Finds and parses the MADT from the RSDP at `rsdp_phys`.
pub fn parse_madt(rsdp_phys: Option<u64>) -> Result<Madt, AcpiError> {
    let rsdp_phys = rsdp_phys.ok_or(AcpiError::NoRsdp)?;
    let rsdp = phys_bytes(rsdp_phys, 20);
    if &rsdp[..8] != b"RSD PTR " {
        return Err(AcpiError::BadSignature("RSDP", rsdp_phys));
    }
    if !checksum_ok(rsdp) {
        return Err(AcpiError::BadChecksum("RSDP", rsdp_phys));
    }
    // Revision 2+ has the XSDT and an extended checksum over 36 bytes.
    let (root, entry_size, what, sig) = if rsdp[15] >= 2 {
        let ext = phys_bytes(rsdp_phys, 36);
        if !checksum_ok(ext) {
            return Err(AcpiError::BadChecksum("RSDP (extended)", rsdp_phys));
        }
        (u64_at(ext, 24), 8, "XSDT", b"XSDT")
    } else {
        (u64::from(u32_at(rsdp, 16)), 4, "RSDT", b"RSDT")
    };
    let root_table = sdt(root, what, sig)?;
    let entries = &root_table[36..];
    let madt_phys = entries
        .chunks_exact(entry_size)
        .map(|e| if entry_size == 8 { u64_at(e, 0) } else { u64::from(u32_at(e, 0)) })
        .find(|&phys| phys_bytes(phys, 4) == b"APIC")
        .ok_or(AcpiError::NoMadt)?;
    let madt = sdt(madt_phys, "MADT", b"APIC")?;
    let mut out =
        Madt { lapic_phys: u64::from(u32_at(madt, 36)), apic_ids: [0; MAX_CPUS], nr_cpus: 0, ignored_cpus: 0 };
    let mut off = 44;
    while off + 2 <= madt.len() {
        let (kind, len) = (madt[off], usize::from(madt[off + 1]));
        if len < 2 || off + len > madt.len() {
            return Err(AcpiError::BadLength("MADT entry", madt_phys + off as u64));
        }
        let entry = &madt[off..off + len];
        // Flags bit 0: enabled. Bit 1 (online capable, ACPI 6.3+) marks a
        // CPU that may be hot-added later; Linux does not start those at
        // boot, nor do we.
        let cpu = match (kind, len) {
            (0, 8) => Some((u32::from(entry[3]), u32_at(entry, 4))),
            (9, 16) => Some((u32_at(entry, 4), u32_at(entry, 8))),
            (5, 12) => {
                out.lapic_phys = u64_at(entry, 4);
                None
            }
            _ => None,
        };
        if let Some((apic_id, flags)) = cpu
            && flags & 1 != 0
            && !out.apic_ids().contains(&apic_id)
        {
            if out.nr_cpus < MAX_CPUS {
                out.apic_ids[out.nr_cpus] = apic_id;
                out.nr_cpus += 1;
            } else {
                out.ignored_cpus += 1;
            }
        }
        off += len;
    }
    Ok(out)
}
