//! Host-side checks of what a test kernel wrote to its scratch disk: the
//! host's own e2fsprogs judge the kernel's ext2.
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

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::which;

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

/// The check a console line asks for, if it is one.
pub fn parse(line: &str) -> Option<Ext2Check> {
    let rest = line.trim_end().strip_prefix(PREFIX)?;
    let (path, len) = rest.split_once(' ')?;
    Some(Ext2Check { path: path.to_owned(), len: len.parse().ok()? })
}

fn sbin_tool(name: &str) -> Result<PathBuf, String> {
    which(name)
        .or_else(|| ["/sbin", "/usr/sbin"].iter().map(|d| Path::new(d).join(name)).find(|p| p.is_file()))
        .ok_or_else(|| format!("{name} not found: install e2fsprogs"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_request_line_only() {
        assert_eq!(parse("host-check: ext2 /d/big 307200\n"), Some(Ext2Check { path: "/d/big".into(), len: 307200 }));
        assert_eq!(parse("host-check: ext2 /d/big"), None);
        assert_eq!(parse("host-check: ext2 /d/big x"), None);
        assert_eq!(parse("[ 1.0] host-check: ext2 /a 1"), None);
    }

    /// An image made and filled by the host's tools passes; the same
    /// image with its superblock's block marked free in the bitmap does
    /// not.
    #[test]
    fn e2fsck_and_debugfs_judge_an_image() {
        let Ok(mke2fs) = sbin_tool("mke2fs") else { panic!("the scratch-disk check needs e2fsprogs (mke2fs)") };
        let dir = std::env::temp_dir().join(format!("xtask-diskcheck-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("tree/d")).unwrap();
        let data: Vec<u8> = (0..5000).map(pattern_byte).collect();
        std::fs::write(dir.join("tree/d/big"), &data).unwrap();
        let image = dir.join("disk.img");
        let status = Command::new(mke2fs)
            .args(["-q", "-F", "-t", "ext2", "-b", "1024", "-d"])
            .arg(dir.join("tree"))
            .arg(&image)
            .arg("1024")
            .status()
            .unwrap();
        assert!(status.success());
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
