//! The Linux side of `cargo xtask bench --vs-linux`: the user-space
//! benchmark programs (tests/user, static musl binaries) and the in-kernel
//! operations (tests/linux-module, built by crate::linux_module) run under a
//! real Linux kernel in the same QEMU configuration, so each figure of ours
//! has Linux's beside it.
//!
//! - Initramfs: the one every boot gets (crate::initramfs) with a second
//!   archive appended that holds `/linux_kbench.ko`. Its `/init`
//!   (tests/user/init.c) loads the module with finit_module, whose init
//!   prints `kbench: result` lines as our kbench does, then runs each
//!   program in `/bench` and powers off; `/dev/console` makes its output
//!   reach the serial console.
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

/// Boots `bzimage` on `machine` (the same QEMU configuration as our
/// benchmark boots) with `cmdline`, the benchmark initramfs and the module
/// `module`, and collects the figures.
pub fn run(bzimage: &Path, module: &Path, machine: &Machine, cmdline: &str) -> Result<LinuxFigures, Error> {
    let base = crate::initramfs::build()?;
    let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io(format!("reading {}", show(p)), e));
    let mut cpio = read(&base)?;
    cpio.extend(crate::initramfs::extra_archive(vec![(crate::linux_module::MODULE_FILE.to_owned(), read(module)?)]));
    let cpio_path = crate::build::target_dir().join("linux/initramfs-linux.cpio");
    crate::initramfs::write_if_changed(&cpio_path, &cpio)?;
    let mut cmd = machine.base_command()?;
    cmd.arg("-kernel").arg(bzimage).arg("-initrd").arg(&cpio_path);
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
