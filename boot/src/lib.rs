//! Disk images from the kernel ELF, through the `bootloader` crate.
//!
//! The BIOS image is an MBR disk (boot sector, stage 2 in the first
//! partition, a FAT partition with stages 3/4, the kernel and the ramdisk);
//! the UEFI image is a GPT disk with the bootloader as `bootx64.efi` on its
//! EFI system partition. The bootloader's own log goes to serial at warning
//! level only, so the console shows the kernel's output; nothing is drawn on
//! the framebuffer (slow under emulation, and nobody looks at it headless).
//!
//! The images carry the kernel without its DWARF (`llvm-objcopy
//! --strip-debug`; symbols stay, and xtask and gdb read the unstripped ELF):
//! BIOS stage 2 copies the whole kernel file into RAM, and a debug build's
//! DWARF is twenty times its loaded size (12 MiB of 12.6 MiB).
//!
//! # Memory the BIOS boot needs
//!
//! bootloader 0.11.17's BIOS path fixes where it puts things, so a machine
//! too small for it fails inside the bootloader: stage 2 copies the kernel
//! file to [`BIOS_KERNEL_LOAD_ADDR`] (16 MiB) and the ramdisk right after it
//! (past the end of RAM the copy check fails and stage 2 halts, printing on
//! VGA only: a silent hang on serial); stage 4 then takes every frame it
//! needs from above the ramdisk: the kernel's .bss, the boot stack, boot
//! info and page tables, including those of its map of all physical memory
//! in 2 MiB pages up to the highest address in the firmware's map (QEMU
//! lists AMD's HyperTransport hole just below 1 TiB for AMD CPUs with 40 or
//! more address bits, TCG's `max` among them: 1 GiB of mapping per 4 KiB
//! table, 4 MiB in all). When those run out it panics
//! ("FrameAllocationFailed") and halts: the bootloader panic and hung QEMU
//! of issue 17. [`Images::bios_min_mem`] adds these up so that xtask can
//! refuse such a machine before starting it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use bootloader::{BootConfig, DiskImageBuilder};

/// The two images made from one kernel.
#[derive(Clone, Debug)]
pub struct Images {
    /// MBR image for BIOS boot.
    pub bios: PathBuf,
    /// GPT image for UEFI boot.
    pub uefi: PathBuf,
    /// The kernel ELF as the images carry it (without DWARF).
    pub kernel: PathBuf,
    /// The ramdisk the images carry, if any.
    pub ramdisk: Option<PathBuf>,
}

/// Where BIOS stage 2 copies the kernel file (bootloader 0.11.17,
/// `bios/stage-2/src/main.rs` `KERNEL_DST`); the ramdisk follows it.
pub const BIOS_KERNEL_LOAD_ADDR: u64 = 16 << 20;

/// The highest physical address in QEMU's e820 map on AMD CPUs: the end of
/// the HyperTransport hole at 1 TiB (QEMU 7.1+ `hw/i386/pc.c`, `AMD_HT_END`).
const AMD_HT_END: u64 = 1 << 40;

/// Stage 4's frames besides .bss and the physical-memory map: the boot stack
/// (the kernel asks for 128 KiB, kernel/src/boot.rs) and its guard, boot
/// info with the memory map, the GDT, and page tables for the kernel image,
/// stack, ramdisk, framebuffer and boot info: 224 KiB measured at 23 MiB.
const BIOS_STAGE4_OTHER: u64 = 384 << 10;

/// What QEMU's SeaBIOS keeps at the top of RAM (ACPI tables and its own
/// data): 132 KiB measured at 23 MiB on q35.
const BIOS_FIRMWARE_TOP: u64 = 256 << 10;

const PAGE: u64 = 4096;
const MIB: u64 = 1 << 20;

/// Why the minimum could not be computed.
#[derive(Debug)]
pub struct MinMemError(String);

impl fmt::Display for MinMemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MinMemError {}

/// What the loaded kernel takes from the loader, in bytes.
struct LoaderNeeds {
    kernel_file: u64,
    ramdisk: u64,
    bss: u64,
    phys_map_tables: u64,
}

impl LoaderNeeds {
    /// Everything the bootloader must find room for, page-rounded, with
    /// the stage-4 allowance.
    fn total(&self) -> u64 {
        self.kernel_file.next_multiple_of(PAGE)
            + self.ramdisk.next_multiple_of(PAGE)
            + self.bss
            + self.phys_map_tables
            + BIOS_STAGE4_OTHER
    }

    fn describe(&self) -> String {
        format!(
            "kernel file {} KiB, ramdisk {} KiB, kernel .bss {} KiB, page tables of the physical-memory map {} KiB, \
             boot stack and tables {} KiB",
            self.kernel_file >> 10,
            self.ramdisk >> 10,
            self.bss >> 10,
            self.phys_map_tables >> 10,
            BIOS_STAGE4_OTHER >> 10,
        )
    }
}

/// Memory OVMF (Debian 12's, QEMU q35) keeps for itself before a UEFI
/// application may allocate: measured, not derived (the UEFI image with a
/// 6.4 MiB need boots in 42 MiB and fails to allocate the kernel file in
/// 41 MiB; at 32 MiB OVMF finds no boot device at all).
const OVMF_OWN: u64 = 35 * MIB + MIB / 2;

impl Images {
    fn loader_needs(&self) -> Result<LoaderNeeds, MinMemError> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| MinMemError(format!("reading {}: {e}", p.display())));
        let kernel = read(&self.kernel)?;
        let bss = elf_bss_bytes(&kernel)
            .ok_or_else(|| MinMemError(format!("{} is not an x86_64 ELF file", self.kernel.display())))?;
        let ramdisk = match &self.ramdisk {
            Some(r) => std::fs::metadata(r).map_err(|e| MinMemError(format!("reading {}: {e}", r.display())))?.len(),
            None => 0,
        };
        // One page directory per GiB of the map, one PDPT per 512 GiB.
        let phys_map_tables = (AMD_HT_END >> 30) * PAGE + (AMD_HT_END >> 39) * PAGE;
        Ok(LoaderNeeds { kernel_file: kernel.len() as u64, ramdisk, bss, phys_map_tables })
    }

    /// The least memory, in MiB, with which the BIOS image gets through the
    /// bootloader (see the crate documentation for the sum), and the sum in
    /// words for a refusal message.
    ///
    /// # Errors
    /// If the kernel or the ramdisk cannot be read or the kernel is not an
    /// ELF64 file.
    pub fn bios_min_mem(&self) -> Result<(u32, String), MinMemError> {
        let needs = self.loader_needs()?;
        let total = BIOS_KERNEL_LOAD_ADDR + needs.total() + BIOS_FIRMWARE_TOP;
        let why = format!(
            "bootloader 0.11.17's BIOS stages load the kernel at {} MiB and need {} KiB above it: {}; SeaBIOS keeps \
             up to {} KiB at the top",
            BIOS_KERNEL_LOAD_ADDR / MIB,
            needs.total() >> 10,
            needs.describe(),
            BIOS_FIRMWARE_TOP >> 10,
        );
        Ok((u32::try_from(total.div_ceil(MIB)).unwrap_or(u32::MAX), why))
    }

    /// As [`Images::bios_min_mem`] for the UEFI image: OVMF's own memory
    /// (measured) plus what the UEFI loader allocates, the same as the BIOS
    /// stages' but anywhere in RAM.
    ///
    /// # Errors
    /// As [`Images::bios_min_mem`].
    pub fn uefi_min_mem(&self) -> Result<(u32, String), MinMemError> {
        let needs = self.loader_needs()?;
        let total = OVMF_OWN + needs.total();
        let why = format!(
            "OVMF keeps about {} KiB for itself and bootloader 0.11.17's UEFI loader needs {} KiB: {}",
            OVMF_OWN >> 10,
            needs.total() >> 10,
            needs.describe(),
        );
        Ok((u32::try_from(total.div_ceil(MIB)).unwrap_or(u32::MAX), why))
    }
}

/// Bytes of zero-filled memory (.bss) the kernel's loadable segments need
/// beyond their file contents, in whole pages; `None` if `elf` is not an
/// ELF64 little-endian file.
fn elf_bss_bytes(elf: &[u8]) -> Option<u64> {
    const PT_LOAD: u32 = 1;
    let u16_at = |off: usize| Some(u16::from_le_bytes(elf.get(off..off + 2)?.try_into().ok()?));
    let u32_at = |off: usize| Some(u32::from_le_bytes(elf.get(off..off + 4)?.try_into().ok()?));
    let u64_at = |off: usize| Some(u64::from_le_bytes(elf.get(off..off + 8)?.try_into().ok()?));
    // e_ident: magic, ELFCLASS64, ELFDATA2LSB.
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    let mut bss = 0;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(ph)? == PT_LOAD {
            let (filesz, memsz) = (u64_at(ph + 0x20)?, u64_at(ph + 0x28)?);
            // A page shared by file data and .bss is copied: one more frame.
            bss += memsz.saturating_sub(filesz).next_multiple_of(PAGE) + PAGE;
        }
    }
    Some(bss)
}

/// Why an image could not be made.
#[derive(Debug)]
pub enum BootError {
    /// The kernel ELF (or the ramdisk) does not exist.
    MissingInput(PathBuf),
    /// The output directory could not be created.
    OutputDir(PathBuf, std::io::Error),
    /// `llvm-objcopy` could not strip the kernel.
    Strip(String),
    /// The bootloader crate failed to build an image.
    Image {
        /// Which image.
        kind: &'static str,
        /// The bootloader's error chain.
        detail: String,
    },
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootError::MissingInput(p) => write!(f, "{} does not exist", p.display()),
            BootError::OutputDir(p, e) => write!(f, "cannot create {}: {e}", p.display()),
            BootError::Strip(why) => write!(f, "cannot strip the kernel's debug info: {why}"),
            BootError::Image { kind, detail } => write!(f, "cannot create the {kind} image: {detail}"),
        }
    }
}

impl std::error::Error for BootError {}

fn boot_config() -> BootConfig {
    let mut config = BootConfig::default();
    config.log_level = bootloader_boot_config::LevelFilter::Warn;
    config.frame_buffer_logging = false;
    config.serial_logging = true;
    config
}

/// The images [`create_images`] makes from `ramdisk` in `out_dir` under
/// `name`, whether or not they exist yet.
pub fn image_paths(ramdisk: Option<&Path>, out_dir: &Path, name: &str) -> Images {
    Images {
        bios: out_dir.join(format!("{name}-bios.img")),
        uefi: out_dir.join(format!("{name}-uefi.img")),
        kernel: out_dir.join(format!("{name}.elf")),
        ramdisk: ramdisk.map(Path::to_path_buf),
    }
}

/// `llvm-objcopy` of the Rust toolchain (the `llvm-tools-preview` component
/// rust-toolchain.toml asks for), else one on PATH.
fn llvm_objcopy() -> PathBuf {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output().ok().filter(|o| o.status.success());
    let in_toolchain = sysroot.and_then(|o| {
        let lib = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("lib/rustlib");
        std::fs::read_dir(lib).ok()?.flatten().map(|host| host.path().join("bin/llvm-objcopy")).find(|p| p.is_file())
    });
    in_toolchain.unwrap_or_else(|| PathBuf::from("llvm-objcopy"))
}

/// Copies `kernel` to `out` without its DWARF sections.
fn strip_debug(kernel: &Path, out: &Path) -> Result<(), BootError> {
    let objcopy = llvm_objcopy();
    let output = Command::new(&objcopy)
        .arg("--strip-debug")
        .arg(kernel)
        .arg(out)
        .output()
        .map_err(|e| BootError::Strip(format!("running {}: {e}", objcopy.display())))?;
    if !output.status.success() {
        return Err(BootError::Strip(String::from_utf8_lossy(&output.stderr).trim().to_owned()));
    }
    Ok(())
}

/// Builds `<out_dir>/<name>-bios.img` and `<out_dir>/<name>-uefi.img` from
/// `kernel` (stripped of DWARF into `<out_dir>/<name>.elf`) and the optional
/// `ramdisk`.
pub fn create_images(kernel: &Path, ramdisk: Option<&Path>, out_dir: &Path, name: &str) -> Result<Images, BootError> {
    for input in std::iter::once(kernel).chain(ramdisk) {
        if !input.exists() {
            return Err(BootError::MissingInput(input.to_path_buf()));
        }
    }
    std::fs::create_dir_all(out_dir).map_err(|e| BootError::OutputDir(out_dir.to_path_buf(), e))?;
    let images = image_paths(ramdisk, out_dir, name);
    strip_debug(kernel, &images.kernel)?;
    let mut builder = DiskImageBuilder::new(images.kernel.clone());
    if let Some(ramdisk) = ramdisk {
        builder.set_ramdisk(ramdisk.to_path_buf());
    }
    builder.set_boot_config(&boot_config());
    builder.create_bios_image(&images.bios).map_err(|e| BootError::Image { kind: "BIOS", detail: format!("{e:#}") })?;
    builder.create_uefi_image(&images.uefi).map_err(|e| BootError::Image { kind: "UEFI", detail: format!("{e:#}") })?;
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF64 header and program headers: `(p_type, filesz, memsz)` each.
    fn elf(segments: &[(u32, u64, u64)]) -> Vec<u8> {
        let mut e = vec![0u8; 64];
        e[..6].copy_from_slice(b"\x7fELF\x02\x01");
        e[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        e[0x38..0x3a].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        for &(p_type, filesz, memsz) in segments {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&p_type.to_le_bytes());
            ph[0x20..0x28].copy_from_slice(&filesz.to_le_bytes());
            ph[0x28..0x30].copy_from_slice(&memsz.to_le_bytes());
            e.extend(ph);
        }
        e
    }

    #[test]
    fn bss_counts_whole_pages_of_load_segments_only() {
        // 10000 bytes of .bss: three pages, plus the page shared with file data.
        let image = elf(&[(1, 0x1540, 0x1540 + 10000), (4, 0, 1 << 20)]);
        assert_eq!(elf_bss_bytes(&image), Some(4 * PAGE));
    }

    #[test]
    fn not_an_elf_has_no_bss() {
        assert_eq!(elf_bss_bytes(b"MZ not an ELF"), None);
        assert_eq!(elf_bss_bytes(&elf(&[(1, 0, 8)])[..70]), None);
    }

    #[test]
    fn bios_minimum_grows_with_the_ramdisk_and_names_its_parts() {
        let dir = std::env::temp_dir().join(format!("boot-min-mem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kernel = dir.join("kernel.elf");
        let ramdisk = dir.join("ramdisk");
        std::fs::write(&kernel, elf(&[(1, 0x1000, 0x1000)])).unwrap();
        std::fs::write(&ramdisk, vec![0u8; 3 << 20]).unwrap();
        let mut images = image_paths(None, &dir, "t");
        images.kernel = kernel;
        let (without, _) = images.bios_min_mem().unwrap();
        images.ramdisk = Some(ramdisk);
        let (with, why) = images.bios_min_mem().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(without, 21, "16 MiB + 4 MiB of page tables + the rest: {why}");
        assert_eq!(with, without + 3);
        assert!(why.contains("ramdisk 3072 KiB"), "{why}");
    }
}
