//! Raw ext2 disk images made by the host's `mke2fs -t ext2`, empty or
//! filled from a directory with `-d`: `cargo xtask mkdisk`, the
//! initramfs's `/etc/ext2-1k.img`, and the blank ext2 disks of the
//! benchmarks and the persistence test. One [`Ext2Image`] runs mke2fs for
//! all of them.
//!
//! Every image is reproducible: a fixed UUID and directory hash seed, the
//! root directory owned by 0:0, the creation time fixed through
//! `E2FSPROGS_FAKE_TIME`, and no blocks reserved for root (a test disk
//! has no daemons to keep running). The image is a sparse file: the
//! space mke2fs leaves unused costs no host disk.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::Command;

use clap::ValueEnum;

use crate::error::{Error, e2fsprogs, show};

/// What mke2fs gets besides the size, block size, tree and image path:
/// the settings that make the image reproducible.
const FIXED_ARGS: &[&str] = &[
    "-q",
    "-F",
    "-t",
    "ext2",
    "-m",
    "0",
    "-U",
    "6f0c3a3e-1d2b-4c5d-8e9f-0a1b2c3d4e5f",
    "-E",
    "hash_seed=0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0,root_owner=0:0",
];

/// The file system's creation time (seconds since 1970: 2001-09-09).
const FAKE_TIME: &str = "1000000000";

/// An ext2 block size (the two Linux's ext2 and ours are tested with).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum BlockSize {
    /// 1 KiB: the first data block is 1 and small files reach the
    /// indirect blocks soon (12 KiB).
    #[value(name = "1024")]
    K1,
    /// 4 KiB, the page size.
    #[value(name = "4096")]
    K4,
}

impl BlockSize {
    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        match self {
            BlockSize::K1 => 1024,
            BlockSize::K4 => 4096,
        }
    }
}

/// An image to make.
#[derive(Clone, Copy, Debug)]
pub struct Ext2Image<'a> {
    /// Size in MiB.
    pub mib: u32,
    /// Block size.
    pub block_size: BlockSize,
    /// Copy this directory's tree into the file system (`mke2fs -d`).
    pub tree: Option<&'a Path>,
}

impl Ext2Image<'_> {
    /// mke2fs's arguments but for the tree and the image: what decides the
    /// image's bytes beside the tree, to tell when a kept image is stale.
    pub fn recipe(&self) -> String {
        format!("{FIXED_ARGS:?} -b {} {} MiB", self.block_size.bytes(), self.mib)
    }

    /// Makes `out` this image, replacing a regular file there. A failed
    /// mke2fs (a tree too big for the size, say) leaves no image and its
    /// error names mke2fs's complaint.
    pub fn make(&self, out: &Path) -> Result<(), Error> {
        if let Some(tree) = self.tree
            && !tree.is_dir()
        {
            return Err(Error::Usage(format!("{}: no such directory", show(tree))));
        }
        let mke2fs = e2fsprogs("mke2fs")?;
        match fs::symlink_metadata(out) {
            Ok(m) if !m.is_file() => {
                return Err(Error::Usage(format!("{}: exists and is not a regular file", show(out))));
            }
            Ok(_) => fs::remove_file(out).map_err(|e| Error::io(format!("replacing {}", show(out)), e))?,
            Err(_) => {}
        }
        let file = fs::File::create(out).map_err(|e| Error::io(format!("creating {}", show(out)), e))?;
        file.set_len(u64::from(self.mib) << 20).map_err(|e| Error::io(format!("sizing {}", show(out)), e))?;
        let mut args: Vec<OsString> = FIXED_ARGS.iter().map(OsString::from).collect();
        args.extend(["-b".into(), self.block_size.bytes().to_string().into()]);
        if let Some(tree) = self.tree {
            args.extend(["-d".into(), tree.into()]);
        }
        args.push(out.into());
        let output = Command::new(&mke2fs)
            .args(&args)
            .env("E2FSPROGS_FAKE_TIME", FAKE_TIME)
            .output()
            .map_err(|e| Error::io(format!("running {}", show(&mke2fs)), e))?;
        if !output.status.success() {
            let _ = fs::remove_file(out);
            return Err(Error::ToolFailed {
                tool: "mke2fs",
                task: format!("making {} ({} MiB)", show(out), self.mib),
                output: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// A directory under the system's temporary directory, removed when
    /// dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(what: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("xtask-mkdisk-{what}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// Whether the host has e2fsprogs; if not, says why the test does
    /// nothing.
    fn have_e2fsprogs(test: &str) -> bool {
        match ["mke2fs", "e2fsck", "debugfs"].into_iter().map(e2fsprogs).find_map(Result::err) {
            None => true,
            Some(e) => {
                eprintln!("skipping {test}: {e}");
                false
            }
        }
    }

    fn debugfs(image: &Path, request: &str) -> Vec<u8> {
        Command::new(e2fsprogs("debugfs").unwrap()).arg("-R").arg(request).arg(image).output().unwrap().stdout
    }

    /// An image made from a tree passes `e2fsck -fn` and holds the tree:
    /// debugfs gives each file back, and the symlink's target.
    #[test]
    fn an_image_made_from_a_tree_holds_it_for_the_host_tools() {
        if !have_e2fsprogs("an_image_made_from_a_tree_holds_it_for_the_host_tools") {
            return;
        }
        let tmp = TempDir::new("image");
        let tree = tmp.0.join("tree");
        fs::create_dir_all(tree.join("dir")).unwrap();
        fs::write(tree.join("hello.txt"), "hello\n").unwrap();
        let big: Vec<u8> = (0..70000u32).map(|i| (i % 251) as u8).collect();
        fs::write(tree.join("dir/big"), &big).unwrap();
        std::os::unix::fs::symlink("hello.txt", tree.join("link")).unwrap();
        for block_size in [BlockSize::K1, BlockSize::K4] {
            let image = tmp.0.join("disk.img");
            Ext2Image { mib: 4, block_size, tree: Some(&tree) }.make(&image).unwrap();
            assert_eq!(fs::metadata(&image).unwrap().len(), 4 << 20);
            let fsck = Command::new(e2fsprogs("e2fsck").unwrap()).arg("-fn").arg(&image).output().unwrap();
            assert!(fsck.status.success(), "e2fsck -fn: {}", String::from_utf8_lossy(&fsck.stdout));
            assert_eq!(debugfs(&image, "cat /hello.txt"), b"hello\n");
            assert_eq!(debugfs(&image, "cat /dir/big"), big);
            let stat = String::from_utf8_lossy(&debugfs(&image, "stat /link")).into_owned();
            assert!(stat.contains("Fast link dest: \"hello.txt\""), "{stat}");
        }
    }

    #[test]
    fn mke2fs_failures_and_bad_arguments_are_errors_that_say_why() {
        if !have_e2fsprogs("mke2fs_failures_and_bad_arguments_are_errors_that_say_why") {
            return;
        }
        let tmp = TempDir::new("errors");
        let image = tmp.0.join("disk.img");
        let missing = Ext2Image { mib: 4, block_size: BlockSize::K4, tree: Some(&tmp.0.join("nowhere")) };
        let err = missing.make(&image).unwrap_err().to_string();
        assert!(err.ends_with("nowhere: no such directory"), "{err}");
        let tree = tmp.0.join("tree");
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join("big"), vec![1u8; 2 << 20]).unwrap();
        let err = Ext2Image { mib: 1, block_size: BlockSize::K4, tree: Some(&tree) }.make(&image).unwrap_err();
        assert!(matches!(err, Error::ToolFailed { tool: "mke2fs", .. }), "{err}");
        assert!(err.to_string().contains("Could not allocate block"), "mke2fs's own words: {err}");
        assert!(!image.exists(), "no half-made image is left");
        let err = Ext2Image { mib: 4, block_size: BlockSize::K4, tree: None }.make(&tmp.0).unwrap_err();
        assert!(err.to_string().ends_with("exists and is not a regular file"), "{err}");
    }
}
