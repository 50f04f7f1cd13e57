//! The Linux side of `cargo xtask bench --vs-linux`: the user-space
//! benchmark programs (tests/user, static musl binaries) and the in-kernel
//! operations (tests/linux-module, built by crate::linux_module) run under a
//! real Linux kernel in the same QEMU configuration, so each figure of ours
//! has Linux's beside it.
//!
//! - Initramfs: the one every boot gets (crate::initramfs) with a second
//!   archive appended that holds `/linux_kbench.ko` and, in `/modules`,
//!   the kernel's own modules the benchmark disks need ([`DISK_MODULES`]).
//!   Its `/init` (tests/user/init.c) loads those, mounts devtmpfs and proc,
//!   loads the benchmark module with finit_module, whose init prints
//!   `kbench: result` lines as our kbench does, then runs each program in
//!   `/bench` and powers off; `/dev/console` makes its output reach the
//!   serial console.
//! - Disks: the benchmark machine's, attached as for our boots
//!   ([`Machine::attach_disks`]): a blank raw scratch disk (vda), a fresh
//!   ext2 disk (vdb) and, when the swap benchmark runs, a swap disk made
//!   by mkswap (vdc), all virtio-blk-pci over raw files.
//! - Command line: [`BASE_CMDLINE`], plus [`COMPARABLE_CMDLINE`] unless the
//!   distribution's defaults are asked for: Debian's kernel zeroes every
//!   page and object it allocates (`CONFIG_INIT_ON_ALLOC_DEFAULT_ON`) and
//!   pays for CPU mitigations on every entry, neither of which ours does.
//! - Kernel: a bzImage given on the command line, or Debian's
//!   `linux-image-amd64` fetched with `apt-get download` and unpacked with
//!   `dpkg -x` into target/linux/.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::bench::Figure;
use crate::error::{Error, show, which};
use crate::qemu::{Headless, Machine};

/// The modules of the Linux kernel the benchmark disks need, each after
/// the ones its `depends=` modinfo names: virtio-blk over virtio-pci, and
/// ext4, which serves ext2 in Debian's kernel (`CONFIG_EXT4_USE_FOR_EXT2`,
/// no ext2 driver of its own) and refuses to mount without a crc32c
/// driver, which it asks the crypto API for by name. Debian builds all of
/// them as modules; one a kernel has built in is simply not found.
const DISK_MODULES: [&str; 11] = [
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_blk",
    "crc16",
    "mbcache",
    "jbd2",
    "crc32c_generic",
    "ext4",
];

/// Where the init finds them (tests/user/init.c `DISK_MODULE_DIR`).
const DISK_MODULE_DIR: &str = "modules";

/// Time allowed for Linux to boot and run every program under TCG.
const LINUX_TIMEOUT: Duration = Duration::from_secs(600);

fn run_tool(cmd: &mut Command, what: &str) -> Result<String, Error> {
    let out = cmd.output().map_err(|e| Error::io(what.to_owned(), e))?;
    if !out.status.success() {
        return Err(Error::Harness(format!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A Linux kernel image: `given`, else one unpacked earlier, else Debian's.
pub fn bzimage(given: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(path) = given {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(Error::Harness(format!("{} does not exist", show(path))))
        };
    }
    let dir = crate::build::target_dir().join("linux");
    let extract = dir.join("root");
    let find = || -> Option<PathBuf> {
        std::fs::read_dir(extract.join("boot"))
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
    };
    if let Some(found) = find() {
        return Ok(found);
    }
    let help = "no Linux kernel image: pass one (cargo xtask bench --vs-linux /path/to/bzImage), \
                or on Debian/Ubuntu make sure `apt-get download linux-image-amd64` works";
    if which("apt-get").is_none() || which("dpkg").is_none() {
        return Err(Error::Harness(help.into()));
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", show(&dir)), e))?;
    let depends = run_tool(Command::new("apt-cache").args(["depends", "linux-image-amd64"]), "apt-cache depends")?;
    let versioned = depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .ok_or_else(|| Error::Harness(format!("{help} (linux-image-amd64 names no kernel package)")))?
        .to_owned();
    eprintln!("bench: fetching {versioned} with apt-get download");
    run_tool(Command::new("apt-get").current_dir(&dir).args(["download", &versioned]), "apt-get download")
        .map_err(|e| Error::Harness(format!("{help} ({e})")))?;
    let deb = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(format!("reading {}", show(&dir)), e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("{versioned}_"))))
        .ok_or_else(|| Error::Harness(format!("{help} (no .deb after download)")))?;
    run_tool(Command::new("dpkg").arg("-x").arg(&deb).arg(&extract), "dpkg -x")?;
    find().ok_or_else(|| Error::Harness(format!("{help} ({} holds no boot/vmlinuz-*)", show(&deb))))
}

/// Parses a `name value unit` figure line from a user benchmark.
pub fn parse_figure(line: &str) -> Option<(String, f64, String)> {
    let mut w = line.split_whitespace();
    let (name, value, unit) = (w.next()?, w.next()?, w.next()?);
    if w.next().is_some() || !name.starts_with("user::") {
        return None;
    }
    Some((name.to_owned(), value.parse().ok()?, unit.to_owned()))
}

/// What Linux always gets: the serial console, boot messages only at
/// warning level, and no reboot loop on a panic.
pub const BASE_CMDLINE: &str = "console=ttyS0 quiet panic=-1";
/// What makes Linux's figures comparable with ours (the choice):
/// no zeroing of every allocation, no speculation mitigations.
pub const COMPARABLE_CMDLINE: &str = "init_on_alloc=0 mitigations=off";

/// The command line Linux boots with: comparable unless `stock`, and
/// `kbench_filter=` (handed to init in its environment, and by it to the
/// module) when only some in-kernel benchmarks should run.
pub fn cmdline(stock: bool, filter: Option<&str>) -> String {
    let mut cmdline = BASE_CMDLINE.to_owned();
    if !stock {
        cmdline = format!("{cmdline} {COMPARABLE_CMDLINE}");
    }
    if let Some(f) = filter {
        cmdline = format!("{cmdline} kbench_filter={f}");
    }
    cmdline
}

/// Linux's figures: the user-space ones (`user::` names) and those of the
/// module, named as our `#[kbench]` results.
pub struct LinuxFigures {
    /// User-space benchmark figures.
    pub user: Vec<Figure>,
    /// In-kernel figures from the module.
    pub kernel: Vec<Figure>,
}

/// The `kbench: ...` part of a console line, whatever printk put before it
/// (a timestamp, a `pr_fmt` prefix that may itself end in `kbench: `).
fn module_line(line: &str) -> Option<&str> {
    line.rfind("kbench: ").map(|at| &line[at..])
}

/// Every module file below `dir` (`<name>.ko`, `<name>.ko.xz`, ...), as
/// (name, path).
fn module_files(dir: &Path, found: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        if path.is_dir() {
            module_files(&path, found);
        } else if let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned())
            && let Some((module, _)) = name.split_once(".ko")
        {
            found.push((module.to_owned(), path.clone()));
        }
    }
}

/// The [`DISK_MODULES`] of the kernel in `bzimage`, numbered in load order
/// under [`DISK_MODULE_DIR`]: from the tree the image came with
/// (`<image>/../../lib/modules/<release>`, as Debian's package unpacks), or
/// the host's `/lib/modules/<release>`; none if neither exists (a kernel
/// with the drivers built in).
fn disk_modules(bzimage: &Path) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let image = std::fs::read(bzimage).map_err(|e| Error::io(format!("reading {}", show(bzimage)), e))?;
    let Some(release) = crate::linux_module::kernel_release(&image) else { return Ok(Vec::new()) };
    let beside = bzimage.parent().and_then(Path::parent).map(|root| root.join("lib/modules").join(&release));
    let host = PathBuf::from("/lib/modules").join(&release);
    let Some(dir) = beside.into_iter().chain([host]).find(|d| d.is_dir()) else { return Ok(Vec::new()) };
    let mut found = Vec::new();
    module_files(&dir, &mut found);
    let mut files = Vec::new();
    for (i, module) in DISK_MODULES.iter().enumerate() {
        let Some((_, path)) = found.iter().find(|(name, _)| name == module) else { continue };
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let body = std::fs::read(path).map_err(|e| Error::io(format!("reading {}", show(path)), e))?;
        files.push((format!("{DISK_MODULE_DIR}/{i:02}-{file}"), body));
    }
    Ok(files)
}

/// Boots `bzimage` on `machine` (the same QEMU configuration as our
/// benchmark boots) with `cmdline`, the benchmark initramfs and the module
/// `module`, and collects the figures.
pub fn run(bzimage: &Path, module: &Path, machine: &Machine, cmdline: &str) -> Result<LinuxFigures, Error> {
    let base = crate::initramfs::build()?;
    let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io(format!("reading {}", show(p)), e));
    let mut cpio = read(&base)?;
    let mut files = disk_modules(bzimage)?;
    files.push((crate::linux_module::MODULE_FILE.to_owned(), read(module)?));
    cpio.extend(crate::initramfs::extra_archive(files));
    let dir = crate::build::target_dir().join("linux");
    let cpio_path = dir.join("initramfs-linux.cpio");
    crate::initramfs::write_if_changed(&cpio_path, &cpio)?;
    let mut cmd = machine.base_command()?;
    cmd.arg("-kernel").arg(bzimage).arg("-initrd").arg(&cpio_path);
    let disks = dir.join("disks");
    std::fs::create_dir_all(&disks).map_err(|e| Error::io(format!("creating {}", show(&disks)), e))?;
    machine.attach_disks(&mut cmd, &disks)?;
    cmd.args(["-append", cmdline]);
    let console =
        Headless::spawn(cmd)?.lines_until(LINUX_TIMEOUT, |l| l.contains("bench-init: done")).map_err(|e| {
            Error::Harness(format!(
                "Linux stopped before its benchmarks finished: {}; console:\n{}",
                e.why,
                e.console.join("\n")
            ))
        })?;
    let log = crate::build::target_dir().join("linux/console.log");
    std::fs::write(&log, console.join("\n")).map_err(|e| Error::io(format!("writing {}", show(&log)), e))?;
    let module_lines: Vec<&str> = console.iter().filter_map(|l| module_line(l)).collect();
    if !module_lines.contains(&"kbench: done") {
        let why = console.iter().find(|l| l.contains("finit_module")).map_or("it printed no `kbench: done`", |l| l);
        return Err(Error::Harness(format!("the Linux module did not finish: {why}; console in {}", show(&log))));
    }
    if let Some(failed) = module_lines.iter().find(|l| l.starts_with("kbench: FAILED")) {
        return Err(Error::Harness(format!("Linux module: {failed}")));
    }
    let kernel = module_lines
        .iter()
        .filter_map(|l| crate::bench::parse_result(l))
        .filter(|r| !r.name.starts_with("user::"))
        .map(|r| Figure::from(&r))
        .collect();
    let user = console
        .iter()
        .filter_map(|l| parse_figure(l))
        .map(|(name, value, unit)| Figure { name, median: value, min: value, max: value, unit, ops: 0 })
        .collect();
    Ok(LinuxFigures { user, kernel })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_lines_parse_and_other_output_does_not() {
        assert_eq!(
            parse_figure("user::anon_first_touch_fault 2125.180 ns/page"),
            Some(("user::anon_first_touch_fault".into(), 2125.18, "ns/page".into()))
        );
        assert_eq!(parse_figure("[    1.23] Run /init as init process"), None);
        assert_eq!(parse_figure("user::x fast ns"), None);
        assert_eq!(parse_figure("bench-init: done"), None);
    }

    #[test]
    fn module_lines_are_found_behind_the_printk_prefix() {
        assert_eq!(
            module_line("[    5.123456] linux_kbench: kbench: result vmalloc::vmalloc_vfree/4096 1 1 1 3"),
            Some("kbench: result vmalloc::vmalloc_vfree/4096 1 1 1 3")
        );
        assert_eq!(module_line("[    5.2] kbench: done"), Some("kbench: done"));
        assert_eq!(module_line("bench-init: done"), None);
    }

    #[test]
    fn comparable_command_line_is_the_default() {
        assert_eq!(cmdline(false, None), "console=ttyS0 quiet panic=-1 init_on_alloc=0 mitigations=off");
        assert_eq!(cmdline(true, Some("vmalloc")), "console=ttyS0 quiet panic=-1 kbench_filter=vmalloc");
    }
}
