//! Helpers shared by the integration tests: images made by the host's
//! e2fsprogs, e2fsck and debugfs run on what the driver wrote, and a walk of
//! a mounted tree.
//!
//! The tools are required: a test that needs one fails with a message
//! saying how to install e2fsprogs rather than skipping.

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ext2::{Ext2Fs, FileType, FixedClock, Ino, MemDisk, MountOptions};

/// The path of e2fsprogs tool `name`, searched in PATH and the sbin dirs.
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(["/sbin", "/usr/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` not found: the ext2 tests need e2fsprogs (mke2fs, e2fsck, debugfs); install it, e.g. `apt-get install -y e2fsprogs`"
    );
}

/// An image of `size_kib` KiB made by `mke2fs -t ext2 -b block_size` with
/// `extra` arguments, populated from `populate` if given.
pub fn mkfs(block_size: u32, size_kib: u64, populate: Option<&Path>, extra: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("image");
    let mut cmd = Command::new(tool("mke2fs"));
    cmd.args(["-q", "-F", "-t", "ext2", "-b", &block_size.to_string()]);
    cmd.args(extra);
    if let Some(src) = populate {
        cmd.arg("-d").arg(src);
    }
    cmd.arg(&image).arg(format!("{size_kib}k"));
    cmd.env("MKE2FS_CONFIG", "/etc/mke2fs.conf");
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "mke2fs failed: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(&image).unwrap()
}

/// Runs `e2fsck -fn` on `image`: the status and the output.
pub fn fsck_output(image: &[u8]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image");
    std::fs::write(&path, image).unwrap();
    let out = Command::new(tool("e2fsck")).arg("-fn").arg(&path).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    // The image's random temporary path says nothing (and once held
    // "fix", which read as a complaint).
    (out.status.code().unwrap_or(-1), text.replace(&*path.to_string_lossy(), "IMAGE"))
}

/// Asserts that `e2fsck -fn` finds nothing to fix in `image`.
pub fn assert_fsck_clean(image: &[u8]) {
    let (status, text) = fsck_output(image);
    let complaint = text.lines().find(|l| l.contains("? no") || l.contains("Fix") || l.contains("fix"));
    assert!(status == 0 && complaint.is_none(), "e2fsck -fn exited {status}:\n{text}");
}

/// Runs debugfs `request` on `image` and returns its standard output.
pub fn debugfs(image: &[u8], request: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image");
    std::fs::write(&path, image).unwrap();
    let out = Command::new(tool("debugfs")).arg("-R").arg(request).arg(&path).output().unwrap();
    assert!(out.status.success(), "debugfs failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The time every test mount stamps.
pub const NOW: u32 = 1_700_000_000;

/// Mounts `image` read-write at [`NOW`].
pub fn mount(image: Vec<u8>) -> Ext2Fs<MemDisk> {
    mount_with(image, false)
}

/// Mounts `image`, read-only if `read_only`.
pub fn mount_with(image: Vec<u8>, read_only: bool) -> Ext2Fs<MemDisk> {
    let options = MountOptions { read_only, cache_blocks: 64, clock: Box::new(FixedClock(NOW)) };
    Ext2Fs::mount(MemDisk::new(image), options).unwrap()
}

/// Unmounts and returns the image bytes.
pub fn unmount(fs: Ext2Fs<MemDisk>) -> Vec<u8> {
    fs.unmount().unwrap().into_data()
}

/// What a path holds, for comparing trees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A regular file: its contents and link count.
    File { data: Vec<u8>, links: u16 },
    /// A directory and its link count.
    Dir { links: u16 },
    /// A symlink and its target.
    Symlink(Vec<u8>),
    /// Anything else.
    Other(FileType),
}

/// Every path under `dir` (as `/a/b`) with what it holds, reading all
/// files whole; checks that each entry's type matches its inode.
pub fn walk(fs: &mut Ext2Fs<MemDisk>) -> BTreeMap<String, Node> {
    let mut tree = BTreeMap::new();
    walk_into(fs, Ino::ROOT, String::new(), &mut tree);
    tree
}

fn walk_into(fs: &mut Ext2Fs<MemDisk>, dir: Ino, prefix: String, tree: &mut BTreeMap<String, Node>) {
    for entry in fs.read_dir_all(dir).unwrap() {
        if entry.name == b"." || entry.name == b".." {
            continue;
        }
        let path = format!("{prefix}/{}", String::from_utf8_lossy(&entry.name));
        let stat = fs.stat(entry.ino).unwrap();
        assert_eq!(entry.file_type, stat.file_type, "{path}: entry type differs from inode");
        let node = match stat.file_type {
            FileType::Regular => {
                let mut data = vec![0; stat.size as usize];
                assert_eq!(fs.read(entry.ino, 0, &mut data).unwrap(), data.len());
                Node::File { data, links: stat.nlink }
            }
            FileType::Directory => {
                walk_into(fs, entry.ino, path.clone(), tree);
                Node::Dir { links: stat.nlink }
            }
            FileType::Symlink => Node::Symlink(fs.readlink(entry.ino).unwrap()),
            other => Node::Other(other),
        };
        tree.insert(path, node);
    }
}

/// Looks up `path` (`/a/b`) from the root.
pub fn resolve(fs: &mut Ext2Fs<MemDisk>, path: &str) -> ext2::Result<Ino> {
    let mut ino = Ino::ROOT;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        ino = fs.lookup(ino, part.as_bytes())?;
    }
    Ok(ino)
}

/// Reads file `ino` whole.
pub fn read_all(fs: &mut Ext2Fs<MemDisk>, ino: Ino) -> Vec<u8> {
    let size = fs.stat(ino).unwrap().size as usize;
    let mut data = vec![0; size];
    assert_eq!(fs.read(ino, 0, &mut data).unwrap(), size);
    data
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}
