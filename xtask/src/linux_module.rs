//! The Linux module behind the in-kernel half of `cargo xtask bench
//! --vs-linux`: tests/linux-module/linux_kbench.c, our `#[kbench]`
//! operations timed inside Linux, built with kbuild against the headers of
//! exactly the kernel that boots (a module for another release is refused
//! by its vermagic and symbol versions).
//!
//! - Release: read from the bzImage itself (the boot protocol's
//!   `kernel_version` string, Linux Documentation/arch/x86/boot.rst), so a
//!   kernel given on the command line is matched too.
//! - Headers: the installed ones if they are for that release
//!   (`/lib/modules/<release>/build`, `/usr/src/linux-headers-<release>`),
//!   else Debian's `linux-headers-<release>` with the `-common` and
//!   `linux-kbuild-*` packages it depends on, fetched with `apt-get
//!   download` and unpacked with `dpkg -x` into target/linux/headers/, as
//!   linux.rs does for the image. The arch package's Makefile includes the
//!   common one by absolute path under /usr/src; in the unpacked copy that
//!   line is pointed at the unpacked tree.
//! - Build: the sources are copied to target/linux/module/ (kbuild writes
//!   next to them) and built with `make -C <headers> M=<dir> modules`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, show, which};

/// The module's source directory, relative to the workspace root.
const SOURCE_DIR: &str = "tests/linux-module";
/// The files kbuild needs from it.
const SOURCES: [&str; 2] = ["Kbuild", "linux_kbench.c"];
/// The module kbuild produces.
pub const MODULE_FILE: &str = "linux_kbench.ko";

/// Offset of the boot protocol's `HdrS` magic in a bzImage.
const HDRS_OFFSET: usize = 0x202;
/// Offset of `kernel_version`: a pointer to the version string, minus 0x200.
const KERNEL_VERSION_OFFSET: usize = 0x20e;

/// The release (`uname -r`) a bzImage reports, from the version string its
/// setup header points at ("6.1.0-57-amd64 (debian-kernel@...) #1 SMP ...").
pub fn kernel_release(bzimage: &[u8]) -> Option<String> {
    if bzimage.get(HDRS_OFFSET..HDRS_OFFSET + 4)? != b"HdrS" {
        return None;
    }
    let ptr = bzimage.get(KERNEL_VERSION_OFFSET..KERNEL_VERSION_OFFSET + 2)?;
    let at = usize::from(u16::from_le_bytes([ptr[0], ptr[1]])) + 0x200;
    let text = bzimage.get(at..)?;
    let text = &text[..text.iter().position(|&b| b == 0)?];
    let release = std::str::from_utf8(text).ok()?.split_whitespace().next()?;
    (!release.is_empty()).then(|| release.to_owned())
}

fn run_tool(cmd: &mut Command, what: &str) -> Result<String, Error> {
    let out = cmd.output().map_err(|e| Error::io(what.to_owned(), e))?;
    if !out.status.success() {
        return Err(Error::Harness(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A kbuild tree for `release`: installed, unpacked earlier, or fetched.
fn headers(release: &str) -> Result<PathBuf, Error> {
    let installed = [
        PathBuf::from(format!("/lib/modules/{release}/build")),
        PathBuf::from(format!("/usr/src/linux-headers-{release}")),
    ];
    if let Some(dir) = installed.into_iter().find(|d| d.join("Makefile").is_file()) {
        return Ok(dir);
    }
    let root = crate::build::target_dir().join("linux/headers").join(release);
    let tree = root.join(format!("usr/src/linux-headers-{release}"));
    if tree.join("Makefile").is_file() {
        return Ok(tree);
    }
    let package = format!("linux-headers-{release}");
    let help = format!(
        "no kbuild tree for Linux {release}: install `{package}` (or on Debian/Ubuntu make sure \
         `apt-get download {package}` works)"
    );
    for tool in ["apt-get", "apt-cache", "dpkg"] {
        if which(tool).is_none() {
            return Err(Error::Harness(format!("{help}; {tool} not found")));
        }
    }
    // linux-headers-<release> holds the arch part; the rest of the tree is
    // in linux-headers-<version>-common and the host tools in linux-kbuild.
    let depends = run_tool(Command::new("apt-cache").args(["depends", &package]), "apt-cache depends")
        .map_err(|e| Error::Harness(format!("{help} ({e})")))?;
    let mut packages = vec![package.clone()];
    packages.extend(
        depends
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .filter(|p| p.starts_with("linux-headers-") || p.starts_with("linux-kbuild-"))
            .map(str::to_owned),
    );
    let debs = root.join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| Error::io(format!("creating {}", show(&debs)), e))?;
    eprintln!("bench: fetching {} with apt-get download", packages.join(" "));
    run_tool(Command::new("apt-get").current_dir(&debs).arg("download").args(&packages), "apt-get download")
        .map_err(|e| Error::Harness(format!("{help} ({e})")))?;
    for entry in std::fs::read_dir(&debs).map_err(|e| Error::io(format!("reading {}", show(&debs)), e))? {
        let deb = entry.map_err(|e| Error::io(format!("reading {}", show(&debs)), e))?.path();
        if deb.extension().is_some_and(|x| x == "deb") {
            run_tool(Command::new("dpkg").arg("-x").arg(&deb).arg(&root), "dpkg -x")?;
        }
    }
    let makefile = tree.join("Makefile");
    let text =
        std::fs::read_to_string(&makefile).map_err(|e| Error::Harness(format!("{help} ({}: {e})", show(&makefile))))?;
    let usr_src = root.join("usr/src/");
    let text = text.replace("include /usr/src/", &format!("include {}", usr_src.display()));
    std::fs::write(&makefile, text).map_err(|e| Error::io(format!("writing {}", show(&makefile)), e))?;
    Ok(tree)
}

/// Builds the module for the kernel in `bzimage`; returns the `.ko`.
pub fn build(bzimage: &Path) -> Result<PathBuf, Error> {
    let image = std::fs::read(bzimage).map_err(|e| Error::io(format!("reading {}", show(bzimage)), e))?;
    let release = kernel_release(&image)
        .ok_or_else(|| Error::Harness(format!("{} is not a bzImage with a kernel version string", show(bzimage))))?;
    let make = which("make").ok_or(Error::MissingTool { tool: "make".into(), package: "make" })?;
    if which("gcc").is_none() {
        return Err(Error::MissingTool { tool: "gcc".into(), package: "gcc" });
    }
    let tree = headers(&release)?;
    let dir = crate::build::target_dir().join("linux/module");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", show(&dir)), e))?;
    let src = crate::workspace_root().join(SOURCE_DIR);
    for name in SOURCES {
        let (from, to) = (src.join(name), dir.join(name));
        // Copy only changed bytes, so kbuild sees an unchanged source as such.
        let text = std::fs::read(&from).map_err(|e| Error::io(format!("reading {}", show(&from)), e))?;
        if std::fs::read(&to).ok().as_ref() != Some(&text) {
            std::fs::write(&to, &text).map_err(|e| Error::io(format!("writing {}", show(&to)), e))?;
        }
    }
    eprintln!("bench: building {SOURCE_DIR} against {}", show(&tree));
    let out = Command::new(make)
        .arg("-C")
        .arg(&tree)
        .arg(format!("M={}", dir.display()))
        .arg("modules")
        .output()
        .map_err(|e| Error::io("running make", e))?;
    if !out.status.success() {
        return Err(Error::Harness(format!(
            "building the Linux module failed (make -C {} M={} modules):\n{}{}",
            show(&tree),
            show(&dir),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let ko = dir.join(MODULE_FILE);
    if ko.is_file() { Ok(ko) } else { Err(Error::Harness(format!("make left no {}", show(&ko)))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_comes_from_the_setup_header_version_string() {
        let mut image = vec![0u8; 0x1000];
        image[HDRS_OFFSET..HDRS_OFFSET + 4].copy_from_slice(b"HdrS");
        image[KERNEL_VERSION_OFFSET..KERNEL_VERSION_OFFSET + 2].copy_from_slice(&0x300u16.to_le_bytes());
        let version = b"6.1.0-57-amd64 (debian-kernel@lists.debian.org) #1 SMP\0";
        image[0x500..0x500 + version.len()].copy_from_slice(version);
        assert_eq!(kernel_release(&image).as_deref(), Some("6.1.0-57-amd64"));
        image[HDRS_OFFSET] = b'X';
        assert_eq!(kernel_release(&image), None, "no boot-protocol header");
    }
}
