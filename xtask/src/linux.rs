//! The Linux side of `cargo xtask bench --vs-linux`: the user-space
//! benchmark programs (tests/user, static musl binaries) run under a real
//! Linux kernel in the same QEMU configuration, so each figure of ours has
//! Linux's beside it.
//!
//! - Programs: every `tests/user/bench/*.c` is built with `musl-gcc -static`;
//!   `tests/user/init.c` becomes `/init`, which runs each program in `/bench`
//!   and powers off.
//! - Initramfs: a newc cpio written here (format: the kernel's
//!   Documentation/driver-api/early-userspace/buffer-format.rst), with
//!   `/dev/console` so init's output reaches the serial console.
//! - Kernel: a bzImage given on the command line, or Debian's
//!   `linux-image-amd64` fetched with `apt-get download` and unpacked with
//!   `dpkg -x` into target/linux/.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::bench::Figure;
use crate::error::{Error, show, which};
use crate::qemu::{Headless, Machine};
use crate::workspace_root;

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

/// Builds `/init` and the benchmark programs; returns (init, [(name, path)]).
pub fn build_user_programs() -> Result<(PathBuf, Vec<(String, PathBuf)>), Error> {
    let cc = which("musl-gcc").ok_or(Error::MissingTool { tool: "musl-gcc".into(), package: "musl-tools" })?;
    let src = workspace_root().join("tests/user");
    let out = crate::build::target_dir().join("user");
    std::fs::create_dir_all(&out).map_err(|e| Error::io(format!("creating {}", show(&out)), e))?;
    let compile = |source: &Path, name: &str| -> Result<PathBuf, Error> {
        let binary = out.join(name);
        let status = Command::new(&cc)
            .args(["-static", "-O2", "-Wall", "-Werror", "-o"])
            .arg(&binary)
            .arg(source)
            .status()
            .map_err(|e| Error::io("running musl-gcc", e))?;
        if !status.success() {
            return Err(Error::BuildFailed(show(source)));
        }
        Ok(binary)
    };
    let init = compile(&src.join("init.c"), "init")?;
    let mut programs = Vec::new();
    let mut sources: Vec<PathBuf> = std::fs::read_dir(src.join("bench"))
        .map_err(|e| Error::io("reading tests/user/bench", e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    sources.sort();
    for source in sources {
        let name = source.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        programs.push((name.clone(), compile(&source, &name)?));
    }
    Ok((init, programs))
}

/// A newc cpio archive being written.
struct Cpio {
    data: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), body: &[u8]) {
        self.ino += 1;
        let fields = [self.ino, mode, 0, 0, 1, 0, body.len() as u32, 0, 0, rdev.0, rdev.1, name.len() as u32 + 1, 0];
        self.data.extend_from_slice(b"070701");
        for f in fields {
            self.data.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.data.extend_from_slice(name.as_bytes());
        self.data.push(0);
        self.pad();
        self.data.extend_from_slice(body);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
    }
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;

/// A newc initramfs with /init, /dev/console and the programs in /bench.
fn initramfs(init: &Path, programs: &[(String, PathBuf)]) -> Result<Vec<u8>, Error> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io(format!("reading {}", show(p)), e));
    let mut cpio = Cpio { data: Vec::new(), ino: 0 };
    cpio.entry("dev", S_IFDIR | 0o755, (0, 0), &[]);
    cpio.entry("dev/console", S_IFCHR | 0o600, (5, 1), &[]);
    cpio.entry("bench", S_IFDIR | 0o755, (0, 0), &[]);
    cpio.entry("init", S_IFREG | 0o755, (0, 0), &read(init)?);
    for (name, path) in programs {
        cpio.entry(&format!("bench/{name}"), S_IFREG | 0o755, (0, 0), &read(path)?);
    }
    cpio.entry("TRAILER!!!", 0, (0, 0), &[]);
    Ok(cpio.data)
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

/// Boots `bzimage` on `machine` (the same QEMU configuration as our
/// benchmark boots) with the benchmark initramfs and collects the figures.
pub fn run(bzimage: &Path, machine: &Machine) -> Result<Vec<Figure>, Error> {
    let (init, programs) = build_user_programs()?;
    let workdir = crate::build::target_dir().join("xtask/linux");
    std::fs::create_dir_all(&workdir).map_err(|e| Error::io(format!("creating {}", show(&workdir)), e))?;
    let cpio_path = workdir.join("initramfs.cpio");
    std::fs::write(&cpio_path, initramfs(&init, &programs)?).map_err(|e| Error::io("writing the initramfs", e))?;
    let mut cmd = machine.base_command()?;
    cmd.arg("-kernel").arg(bzimage).arg("-initrd").arg(&cpio_path);
    cmd.args(["-append", "console=ttyS0 quiet panic=-1"]);
    let console =
        Headless::spawn(cmd)?.lines_until(LINUX_TIMEOUT, |l| l.contains("bench-init: done")).map_err(|e| {
            Error::Harness(format!(
                "Linux stopped before its benchmarks finished: {}; console:\n{}",
                e.why,
                e.console.join("\n")
            ))
        })?;
    Ok(console
        .iter()
        .filter_map(|l| parse_figure(l))
        .map(|(name, value, unit)| Figure { name, median: value, min: value, max: value, unit, ops: 0 })
        .collect())
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
    fn cpio_entries_are_newc_with_aligned_names_and_bodies() {
        let mut c = Cpio { data: Vec::new(), ino: 0 };
        c.entry("init", S_IFREG | 0o755, (0, 0), b"abc");
        assert!(c.data.starts_with(b"070701"));
        // 110-byte header + "init\0" = 115, padded to 116; body 3, padded to 4.
        assert_eq!(c.data.len(), 120);
        assert_eq!(&c.data[116..119], b"abc");
        let header = String::from_utf8_lossy(&c.data[6..110]).into_owned();
        assert_eq!(&header[8..16], "000081ed", "mode field");
        assert_eq!(&header[48..56], "00000003", "filesize field");
        assert_eq!(&header[88..96], "00000005", "namesize includes the NUL");
    }
}
