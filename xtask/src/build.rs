//! Building the kernel binaries and their disk images.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, show};
use crate::workspace_root;

/// The bare-metal target every kernel binary is built for.
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";

/// Cargo profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// `dev` (opt-level 1, debug assertions).
    Dev,
    /// `release`.
    Release,
}

impl Profile {
    /// From a `--release` flag.
    pub fn from_release(release: bool) -> Self {
        if release { Profile::Release } else { Profile::Dev }
    }

    fn dir(self) -> &'static str {
        match self {
            Profile::Dev => "debug",
            Profile::Release => "release",
        }
    }
}

/// Which kernel binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelBin {
    /// The kernel users boot (`kernel/`).
    Kernel,
    /// The test kernel with every `#[ktest]` suite (`tests/`).
    Ktests,
}

impl KernelBin {
    fn package(self) -> &'static str {
        match self {
            KernelBin::Kernel => "kernel",
            KernelBin::Ktests => "ktests",
        }
    }
}

/// The cargo target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

/// Builds a kernel binary and returns the path of its ELF.
pub fn kernel_elf(bin: KernelBin, profile: Profile) -> Result<PathBuf, Error> {
    let mut cmd = cargo();
    cmd.args(["build", "--package", bin.package(), "--bin", bin.package(), "--target", KERNEL_TARGET]);
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(|e| Error::io("running cargo build", e))?;
    if !status.success() {
        return Err(Error::BuildFailed(bin.package().to_owned()));
    }
    Ok(target_dir().join(KERNEL_TARGET).join(profile.dir()).join(bin.package()))
}

/// BIOS and UEFI images of `elf` (with `ramdisk`, if given), remade only
/// when the ELF or the ramdisk is newer than the images.
pub fn images(elf: &Path, name: &str, ramdisk: Option<&Path>) -> Result<boot::Images, Error> {
    let out_dir = elf.parent().map_or_else(|| target_dir().join("images"), |d| d.join("images"));
    let expected = boot::image_paths(ramdisk, &out_dir, name);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let elf_time = modified(elf).ok_or_else(|| Error::Harness(format!("{} was not built", show(elf))))?;
    let input_time = match ramdisk {
        Some(r) => elf_time.max(modified(r).ok_or_else(|| Error::Harness(format!("{} does not exist", show(r))))?),
        None => elf_time,
    };
    // An image made with a different ramdisk (or none) is stale too.
    let stamp = out_dir.join(format!("{name}.ramdisk"));
    let want_stamp = ramdisk.map(|r| r.display().to_string()).unwrap_or_default();
    let same_ramdisk = std::fs::read_to_string(&stamp).is_ok_and(|s| s == want_stamp);
    let fresh = same_ramdisk
        && [&expected.bios, &expected.uefi, &expected.kernel]
            .iter()
            .all(|img| modified(img).is_some_and(|t| t >= input_time));
    if fresh {
        return Ok(expected);
    }
    let images = boot::create_images(elf, ramdisk, &out_dir, name)?;
    std::fs::write(&stamp, want_stamp).map_err(|e| Error::io(format!("writing {}", show(&stamp)), e))?;
    Ok(images)
}

/// The image for a firmware.
pub trait ImagesExt {
    /// The image that `firmware` boots.
    fn for_firmware(&self, firmware: crate::qemu::Firmware) -> &Path;
}

impl ImagesExt for boot::Images {
    fn for_firmware(&self, firmware: crate::qemu::Firmware) -> &Path {
        match firmware {
            crate::qemu::Firmware::Bios => &self.bios,
            crate::qemu::Firmware::Uefi => &self.uefi,
        }
    }
}
