//! Disk images from the kernel ELF, through the `bootloader` crate.
//!
//! The BIOS image is an MBR disk (boot sector, stage 2 in the first
//! partition, a FAT partition with stages 3/4, the kernel and the ramdisk);
//! the UEFI image is a GPT disk with the bootloader as `bootx64.efi` on its
//! EFI system partition. The bootloader's own log goes to serial at warning
//! level only, so the console shows the kernel's output; nothing is drawn on
//! the framebuffer (slow under emulation, and nobody looks at it headless).

use std::fmt;
use std::path::{Path, PathBuf};

use bootloader::{BootConfig, DiskImageBuilder};

/// The two images made from one kernel.
#[derive(Clone, Debug)]
pub struct Images {
    /// MBR image for BIOS boot.
    pub bios: PathBuf,
    /// GPT image for UEFI boot.
    pub uefi: PathBuf,
}

/// Why an image could not be made.
#[derive(Debug)]
pub enum BootError {
    /// The kernel ELF (or the ramdisk) does not exist.
    MissingInput(PathBuf),
    /// The output directory could not be created.
    OutputDir(PathBuf, std::io::Error),
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

/// Builds `<out_dir>/<name>-bios.img` and `<out_dir>/<name>-uefi.img` from
/// `kernel` and the optional `ramdisk`.
pub fn create_images(kernel: &Path, ramdisk: Option<&Path>, out_dir: &Path, name: &str) -> Result<Images, BootError> {
    for input in std::iter::once(kernel).chain(ramdisk) {
        if !input.exists() {
            return Err(BootError::MissingInput(input.to_path_buf()));
        }
    }
    std::fs::create_dir_all(out_dir).map_err(|e| BootError::OutputDir(out_dir.to_path_buf(), e))?;
    let mut builder = DiskImageBuilder::new(kernel.to_path_buf());
    if let Some(ramdisk) = ramdisk {
        builder.set_ramdisk(ramdisk.to_path_buf());
    }
    builder.set_boot_config(&boot_config());
    let images =
        Images { bios: out_dir.join(format!("{name}-bios.img")), uefi: out_dir.join(format!("{name}-uefi.img")) };
    builder.create_bios_image(&images.bios).map_err(|e| BootError::Image { kind: "BIOS", detail: format!("{e:#}") })?;
    builder.create_uefi_image(&images.uefi).map_err(|e| BootError::Image { kind: "UEFI", detail: format!("{e:#}") })?;
    Ok(images)
}
