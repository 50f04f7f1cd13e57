//! Host-side checks of what a test kernel wrote to its scratch disk: the
//! host's own e2fsprogs judge the kernel's ext2, util-linux and `file`
//! its swap headers.
//!
//! A test that leaves an ext2 file system on the scratch disk, cleanly
//! unmounted, asks for the check with one console line before it passes:
//!
//! ```text
//! host-check: ext2 /d/big 307200
//! ```
//!
//! The runner then runs `e2fsck -fn` on the disk image (exit status 0 and
//! nothing to fix) and `debugfs -R "cat /d/big"`, whose bytes must be the
//! test pattern ([`pattern_byte`]) for the given length. A failed check
//! fails the test with the tool's output.
//!
//! A test that wrote a swap header (the kernel's mkswap) asks for
//!
//! ```text
//! host-check: swap 01234567-89ab-4def-8123-456789abcdef 4095 kswap
//! ```
//!
//! (UUID, `last_page`, label if any): `blkid -p` must see a version-1
//! swap area with that UUID and label, and `file` a little-endian
//! 4k-page one of that size with no bad pages ([`run_swap`]).
//!
//! The other way round ([`jobs`]'s swap test): a disk the host's
//! util-linux `mkswap` made is turned on by `swap=/dev/vda` on the kernel
//! command line at boot, shows in the console's `swaps` and `meminfo`, and
//! goes off with `swapoff`.
//!
//! The persistence test ([`jobs`]) goes further: on an image the host
//! made with `mke2fs` (4 KiB blocks), one boot writes a tree with
//! tests/user/persist.c and powers off; the host checks the image; a
//! second boot mounts it read-only and checks the tree again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::build::ImagesExt;
use crate::console::{console_machine, record, run_headless, shell_cmdline};
use crate::jobs::{Job, Suite, outln};
use crate::mkdisk::{BlockSize, Ext2Image};
use crate::qemu;
use crate::runner::RunOptions;

/// The console line's prefix.
const PREFIX: &str = "host-check: ext2 ";

/// Byte `i` of the pattern a test writes to the file it asks about (the
/// same formula as tests/src/fs.rs's `host_check_pattern`).
pub fn pattern_byte(i: u64) -> u8 {
    (i.wrapping_mul(31) % 251) as u8
}

/// A check asked for: the file and its length.
#[derive(Debug, PartialEq, Eq)]
pub struct Ext2Check {
    path: String,
    len: u64,
}

/// Runs the check `line` asks for on `image`, if it asks for one: `None`
/// for another line, else the problem found, if any.
pub fn check_line(line: &str, image: &Path) -> Option<Result<(), String>> {
    match (parse(line), parse_swap(line)) {
        (Some(check), _) => Some(run(&check, image)),
        (None, Some(check)) => Some(run_swap(&check, image)),
        (None, None) => None,
    }
}

/// The swap check's console line prefix.
const SWAP_PREFIX: &str = "host-check: swap ";

/// A swap header check asked for: what the header must say.
#[derive(Debug, PartialEq, Eq)]
pub struct SwapCheck {
    uuid: String,
    last_page: u64,
    label: Option<String>,
}

/// The swap check a console line asks for, if it is one.
pub fn parse_swap(line: &str) -> Option<SwapCheck> {
    let mut words = line.trim_end().strip_prefix(SWAP_PREFIX)?.split(' ');
    let uuid = words.next()?.to_owned();
    let last_page = words.next()?.parse().ok()?;
    let label = words.next().map(str::to_owned);
    if words.next().is_some() {
        return None;
    }
    Some(SwapCheck { uuid, last_page, label })
}

/// A util-linux or `file` tool, on PATH or in the sbin directories.
fn host_tool(name: &str, package: &'static str) -> Result<PathBuf, String> {
    crate::error::host_tool(name, package).map_err(|e| e.to_string())
}

/// Runs the swap check on `image`; the problem, if any.
pub fn run_swap(check: &SwapCheck, image: &Path) -> Result<(), String> {
    let blkid = host_tool("blkid", "util-linux")?;
    let out = Command::new(&blkid)
        .args(["-p", "-o", "export"])
        .arg(image)
        .output()
        .map_err(|e| format!("running blkid: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('='));
    let want = [("TYPE", Some("swap")), ("VERSION", Some("1")), ("UUID", Some(check.uuid.as_str()))];
    for (key, expected) in want.into_iter().chain([("LABEL", check.label.as_deref())]) {
        if value(key) != expected {
            return Err(format!(
                "blkid -p on the scratch disk: {key} is {:?}, expected {expected:?}:\n{text}",
                value(key)
            ));
        }
    }
    let file = host_tool("file", "file")?;
    let out = Command::new(&file).arg("-b").arg(image).output().map_err(|e| format!("running file: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let expected =
        format!("Linux swap file, 4k page size, little endian, version 1, size {} pages, 0 bad pages", check.last_page);
    if !text.starts_with(&expected) || !text.contains(&format!("UUID={}", check.uuid)) {
        return Err(format!(
            "file on the scratch disk said: {}; expected {expected}, UUID={}",
            text.trim(),
            check.uuid
        ));
    }
    Ok(())
}

/// The check a console line asks for, if it is one.
pub fn parse(line: &str) -> Option<Ext2Check> {
    let rest = line.trim_end().strip_prefix(PREFIX)?;
    let (path, len) = rest.split_once(' ')?;
    Some(Ext2Check { path: path.to_owned(), len: len.parse().ok()? })
}

fn sbin_tool(name: &str) -> Result<PathBuf, String> {
    crate::error::e2fsprogs(name).map_err(|e| e.to_string())
}

/// Runs the check on `image`; the problem, if any.
pub fn run(check: &Ext2Check, image: &Path) -> Result<(), String> {
    let e2fsck = sbin_tool("e2fsck")?;
    let out = Command::new(&e2fsck).arg("-fn").arg(image).output().map_err(|e| format!("running e2fsck: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "e2fsck -fn on the scratch disk: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let debugfs = sbin_tool("debugfs")?;
    let out = Command::new(&debugfs)
        .arg("-R")
        .arg(format!("cat {}", check.path))
        .arg(image)
        .output()
        .map_err(|e| format!("running debugfs: {e}"))?;
    let want: Vec<u8> = (0..check.len).map(pattern_byte).collect();
    if out.stdout != want {
        let first_diff = out.stdout.iter().zip(&want).position(|(a, b)| a != b);
        return Err(format!(
            "debugfs cat {}: {} bytes, expected {} of the test pattern (first difference at {first_diff:?}); debugfs said: {}",
            check.path,
            out.stdout.len(),
            want.len(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// The persistence test's name.
const PERSIST: &str = "disk::ext2_persists_across_a_power_off";

/// Size of the persistence test's disk: the tree's sparse file ends at
/// 40 MiB + 4 KiB.
const PERSIST_DISK_MIB: u32 = 64;

/// A boot that writes or checks 5 MiB takes seconds under TCG; the bound
/// is for a loaded host. A hang is what it catches.
const PERSIST_TIMEOUT: Duration = Duration::from_secs(120);

/// The boot-time swap test's name.
const HOST_SWAP: &str = "swap::a_host_mkswap_area_is_turned_on_by_the_command_line";

/// `cargo xtask test`'s persistence test and boot-time swap test, a job
/// each.
pub fn jobs<'s>(images: &'s boot::Images, options: &'s RunOptions, filter: Option<&str>) -> Vec<Job<'s>> {
    let mut jobs = Vec::new();
    if filter.is_none_or(|f| PERSIST.contains(f)) {
        jobs.push(Job::new(PERSIST, move |suite: &mut Suite| {
            outln!(suite, "(kernel image, {}, an ext2 disk made by mke2fs, two boots)", options.accel);
            let start = Instant::now();
            let workdir = options.logs.join(PERSIST.replace("::", "-"));
            let verdict = persist(images, options, &workdir);
            record(suite, PERSIST, start, verdict, Some(&workdir));
            Ok(())
        }));
    }
    if filter.is_none_or(|f| HOST_SWAP.contains(f)) {
        jobs.push(Job::new(HOST_SWAP, move |suite: &mut Suite| {
            outln!(suite, "(kernel image, {}, a 16 MiB disk made by mkswap, swap= on the command line)", options.accel);
            let start = Instant::now();
            let workdir = options.logs.join(HOST_SWAP.replace("::", "-"));
            let verdict = host_swap(images, options, &workdir);
            record(suite, HOST_SWAP, start, verdict, Some(&workdir.join("console.log")));
            Ok(())
        }));
    }
    jobs
}

/// Boots with a 16 MiB disk util-linux `mkswap` made as vda and
/// `swap=/dev/vda`: the area must be on at once, with the priority -2 and
/// 4095 pages (the header page is not for swapping), in `swaps` and in
/// `meminfo`, and `swapoff` must take it away again.
fn host_swap(images: &boot::Images, options: &RunOptions, workdir: &Path) -> Result<(), String> {
    use crate::build::ImagesExt;
    std::fs::create_dir_all(workdir).map_err(|e| format!("creating {}: {e}", workdir.display()))?;
    let image = workdir.join("swap.img");
    crate::mkdisk::SwapImage { mib: 16, label: "hostswap", uuid: "0b5e55ed-0000-4000-8000-00000000c0de" }
        .make(&image)
        .map_err(|e| e.to_string())?;
    let cmdline = shell_cmdline("swap=/dev/vda", "swaps; meminfo; swapoff /dev/vda; swaps; poweroff")
        .map_err(|e| e.to_string())?;
    let mut machine = console_machine(options, 1, qemu::DEFAULT_MEM_MIB, cmdline);
    machine.disks = vec![image];
    let (console, status) = run_headless(&machine, images.for_firmware(machine.firmware), workdir, PERSIST_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let _ = std::fs::write(workdir.join("console.log"), console.join("\n"));
    match status {
        None => return Err(format!("timed out after {} s", PERSIST_TIMEOUT.as_secs())),
        Some(s) if s.code() != Some(qemu::EXIT_SUCCESS) => return Err(format!("QEMU {}", qemu::describe_exit(&s))),
        Some(_) => {}
    }
    if !console.iter().any(|l| l.contains("Adding 16380k swap on /dev/vda.  Priority:-2 extents:1 across:16380k")) {
        return Err("no `Adding 16380k swap on /dev/vda.  Priority:-2` line at boot".into());
    }
    let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority";
    let area = format!("/dev/vda{:32}partition\t16380\t\t0\t\t-2", "");
    let sections = crate::console::sections(&console);
    let output = |cmd: &str, nth: usize| sections.iter().filter(|(c, _)| c == cmd).nth(nth).map(|(_, out)| out.clone());
    if output("swaps", 0) != Some(vec![header.to_owned(), area]) {
        return Err(format!("swaps at boot: {:?}", output("swaps", 0)));
    }
    let meminfo = crate::console::parse_meminfo(&output("meminfo", 0).unwrap_or_default())?;
    if (meminfo.get("SwapTotal"), meminfo.get("SwapFree")) != (Some(&16380), Some(&16380)) {
        return Err(format!(
            "meminfo: SwapTotal {:?}, SwapFree {:?}",
            meminfo.get("SwapTotal"),
            meminfo.get("SwapFree")
        ));
    }
    if output("swaps", 1) != Some(vec![header.to_owned()]) {
        return Err(format!("swaps after swapoff: {:?}", output("swaps", 1)));
    }
    Ok(())
}

fn persist(images: &boot::Images, options: &RunOptions, workdir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(workdir).map_err(|e| format!("creating {}: {e}", workdir.display()))?;
    let image = workdir.join("disk.img");
    Ext2Image { mib: PERSIST_DISK_MIB, block_size: BlockSize::K4, tree: None }
        .make(&image)
        .map_err(|e| e.to_string())?;
    boot_running(images, options, workdir, &image, "write")?;
    run(&Ext2Check { path: "/tree/big".into(), len: 5 << 20 }, &image)?;
    boot_running(images, options, workdir, &image, "check")
}

/// Boots with `image` as vda, runs `persist MODE /dev/vda /mnt-persist`
/// and powers off; the program must pass.
fn boot_running(
    images: &boot::Images,
    options: &RunOptions,
    workdir: &Path,
    image: &Path,
    mode: &str,
) -> Result<(), String> {
    let commands = format!("run persist {mode} /dev/vda /mnt-persist; poweroff");
    let cmdline = shell_cmdline("loglevel=warn", &commands).map_err(|e| e.to_string())?;
    let mut machine = console_machine(options, 1, qemu::DEFAULT_MEM_MIB, cmdline);
    machine.disks = vec![image.to_path_buf()];
    let bootdir = workdir.join(format!("boot-{mode}"));
    let (console, status) = run_headless(&machine, images.for_firmware(machine.firmware), &bootdir, PERSIST_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let log = bootdir.join("console.log");
    let _ = std::fs::write(&log, console.join("\n"));
    let passed = console.iter().any(|l| l.trim_end() == "PASS persist");
    match status {
        None => Err(format!(
            "persist {mode}: timed out after {} s (console in {})",
            PERSIST_TIMEOUT.as_secs(),
            log.display()
        )),
        Some(s) if s.code() != Some(qemu::EXIT_SUCCESS) => {
            Err(format!("persist {mode}: QEMU {} (console in {})", qemu::describe_exit(&s), log.display()))
        }
        Some(_) if !passed => {
            let failed: Vec<&String> =
                console.iter().filter(|l| l.starts_with("not ok") || l.starts_with("FAIL")).collect();
            Err(format!("persist {mode} did not pass: {failed:?} (console in {})", log.display()))
        }
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_request_line_only() {
        assert_eq!(parse("host-check: ext2 /d/big 307200\n"), Some(Ext2Check { path: "/d/big".into(), len: 307200 }));
        assert_eq!(parse("host-check: ext2 /d/big"), None);
        assert_eq!(parse("host-check: ext2 /d/big x"), None);
        assert_eq!(parse("[ 1.0] host-check: ext2 /a 1"), None);
        let swap = |uuid: &str, last_page, label: Option<&str>| SwapCheck {
            uuid: uuid.into(),
            last_page,
            label: label.map(str::to_owned),
        };
        assert_eq!(parse_swap("host-check: swap 0123-45 4095 kswap\n"), Some(swap("0123-45", 4095, Some("kswap"))));
        assert_eq!(parse_swap("host-check: swap 0123-45 4095"), Some(swap("0123-45", 4095, None)));
        assert_eq!(parse_swap("host-check: swap 0123-45 x"), None);
        assert_eq!(parse_swap("host-check: swap 0123-45 1 a b"), None);
        assert_eq!(parse_swap("host-check: ext2 /a 1"), None);
    }

    /// A header util-linux's mkswap made passes its check; a wrong UUID,
    /// size or label, or a broken signature, does not.
    #[test]
    fn blkid_and_file_judge_a_swap_header() {
        let Ok(mkswap) = host_tool("mkswap", "util-linux") else {
            eprintln!("skipping blkid_and_file_judge_a_swap_header: no mkswap");
            return;
        };
        if host_tool("blkid", "util-linux").and(host_tool("file", "file")).is_err() {
            eprintln!("skipping blkid_and_file_judge_a_swap_header: no blkid or file");
            return;
        }
        let dir = std::env::temp_dir().join(format!("xtask-swapcheck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let image = dir.join("swap.img");
        std::fs::File::create(&image).unwrap().set_len(1 << 20).unwrap();
        let uuid = "01234567-89ab-4def-8123-456789abcdef";
        let made = Command::new(mkswap).args(["-L", "kswap", "-U", uuid]).arg(&image).output().unwrap();
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        let check = SwapCheck { uuid: uuid.into(), last_page: 255, label: Some("kswap".into()) };
        assert_eq!(run_swap(&check, &image), Ok(()));
        let line = format!("host-check: swap {uuid} 255 kswap");
        assert_eq!(check_line(&line, &image), Some(Ok(())));
        assert!(run_swap(&SwapCheck { last_page: 256, ..check }, &image).is_err(), "size");
        let check = SwapCheck { uuid: uuid.into(), last_page: 255, label: None };
        assert!(run_swap(&check, &image).is_err(), "label");
        let other =
            SwapCheck { uuid: "01234567-89ab-4def-8123-456789abcde0".into(), label: Some("kswap".into()), ..check };
        assert!(run_swap(&other, &image).is_err(), "uuid");
        let mut bytes = std::fs::read(&image).unwrap();
        bytes[4095] = b'3';
        std::fs::write(&image, bytes).unwrap();
        let check = SwapCheck { uuid: uuid.into(), last_page: 255, label: Some("kswap".into()) };
        assert!(run_swap(&check, &image).unwrap_err().starts_with("blkid -p"), "signature");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// An image made and filled by the host's tools passes; the same
    /// image with its superblock's block marked free in the bitmap does
    /// not.
    #[test]
    fn e2fsck_and_debugfs_judge_an_image() {
        let dir = std::env::temp_dir().join(format!("xtask-diskcheck-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("tree/d")).unwrap();
        let data: Vec<u8> = (0..5000).map(pattern_byte).collect();
        std::fs::write(dir.join("tree/d/big"), &data).unwrap();
        let image = dir.join("disk.img");
        let tree = dir.join("tree");
        Ext2Image { mib: 1, block_size: BlockSize::K1, tree: Some(&tree) }.make(&image).unwrap();
        assert_eq!(run(&Ext2Check { path: "/d/big".into(), len: 5000 }, &image), Ok(()));
        assert!(run(&Ext2Check { path: "/d/big".into(), len: 4999 }, &image).is_err(), "wrong length");
        // Group 0's block bitmap (bg_block_bitmap, the descriptor's first
        // word at block 2): block 1, the superblock, marked free.
        let mut bytes = std::fs::read(&image).unwrap();
        let bitmap = u32::from_le_bytes(bytes[2048..2052].try_into().unwrap()) as usize;
        bytes[bitmap * 1024] &= !1;
        std::fs::write(&image, bytes).unwrap();
        let err = run(&Ext2Check { path: "/d/big".into(), len: 5000 }, &image).unwrap_err();
        assert!(err.starts_with("e2fsck -fn"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
