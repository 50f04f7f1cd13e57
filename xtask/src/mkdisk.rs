//! Raw ext2 disk images made by the host's `mke2fs -t ext2`, empty or
//! filled from a directory with `-d`: `cargo xtask mkdisk`, the in-kernel
//! tests' prepared disks (`#[ktest(disk_tree = "NAME")]`, a tree under
//! tests/disks/), the initramfs's `/etc/ext2-1k.img`, and the blank ext2
//! disks of the benchmarks and the persistence test. One [`Ext2Image`]
//! runs mke2fs for all of them. Swap disks (the benchmarks' and the
//! host-made area of the swap check) are made by util-linux `mkswap`
//! through [`SwapImage`].
//!
//! Every image is reproducible: a fixed UUID and directory hash seed, the
//! root directory owned by 0:0, the creation time fixed through
//! `E2FSPROGS_FAKE_TIME`, and no blocks reserved for root (a test disk
//! has no daemons to keep running). The image is a sparse file: the
//! space mke2fs leaves unused costs no host disk.
//!
//! A prepared tree is copied first ([`stage_tree`]) so that a big file
//! need not be checked in: a file `NAME.pattern` holding a length `N`
//! stands for a file `NAME` of `N` bytes of the test pattern
//! ([`crate::diskcheck::pattern_byte`], which the kernel's tests and the
//! host check both know). [`first_data_sector`] finds where a file's data
//! starts on the image, for the blkdebug rule that fails it.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::ValueEnum;

use crate::error::{Error, e2fsprogs, host_tool, show};

/// The directory holding the in-kernel tests' prepared trees.
pub const TREES: &str = "tests/disks";

/// The suffix of a file that stands for a pattern file (see the module
/// documentation).
const PATTERN_SUFFIX: &str = ".pattern";

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
        make_image(Command::new(&mke2fs).args(&args).env("E2FSPROGS_FAKE_TIME", FAKE_TIME), "mke2fs", out, self.mib)
    }
}

/// A raw disk image holding a swap area on the whole disk, made by the
/// host's util-linux `mkswap` (Linux's version-1 header, `SWAPSPACE2`)
/// with a fixed UUID, so that the image is reproducible. The file is
/// sparse: a slot is a hole until swap writes it, and swap reads only
/// slots it wrote.
pub struct SwapImage<'a> {
    /// Size in MiB.
    pub mib: u32,
    /// `mkswap -L`.
    pub label: &'a str,
    /// `mkswap -U`.
    pub uuid: &'a str,
}

impl SwapImage<'_> {
    /// Makes `out` this image, replacing a regular file there; a failed
    /// mkswap leaves no image and its error names mkswap's complaint.
    pub fn make(&self, out: &Path) -> Result<(), Error> {
        let mkswap = host_tool("mkswap", "util-linux")?;
        match fs::symlink_metadata(out) {
            Ok(m) if !m.is_file() => {
                return Err(Error::Usage(format!("{}: exists and is not a regular file", show(out))));
            }
            Ok(_) => fs::remove_file(out).map_err(|e| Error::io(format!("replacing {}", show(out)), e))?,
            Err(_) => {}
        }
        let file = fs::File::create(out).map_err(|e| Error::io(format!("creating {}", show(out)), e))?;
        file.set_len(u64::from(self.mib) << 20).map_err(|e| Error::io(format!("sizing {}", show(out)), e))?;
        make_image(Command::new(&mkswap).args(["-L", self.label, "-U", self.uuid]).arg(out), "mkswap", out, self.mib)
    }
}

/// Runs `cmd`, the host's `tool` making the image `out` of `mib` MiB; on
/// failure the image goes and the error carries the tool's complaint.
fn make_image(cmd: &mut Command, tool: &'static str, out: &Path, mib: u32) -> Result<(), Error> {
    let output = cmd.output().map_err(|e| Error::io(format!("running {tool}"), e))?;
    if !output.status.success() {
        let _ = fs::remove_file(out);
        return Err(Error::ToolFailed {
            tool,
            task: format!("making {} ({mib} MiB)", show(out)),
            output: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// The prepared tree `tests/disks/NAME` of the in-kernel tests.
pub fn tree_dir(name: &str) -> PathBuf {
    crate::workspace_root().join(TREES).join(name)
}

/// Copies the tree at `src` to `dst` (which must not exist), expanding
/// each `NAME.pattern` file into `NAME`, and copying symlinks as symlinks.
pub fn stage_tree(src: &Path, dst: &Path) -> Result<(), Error> {
    fs::create_dir_all(dst).map_err(|e| Error::io(format!("creating {}", show(dst)), e))?;
    let entries = fs::read_dir(src).map_err(|e| Error::io(format!("reading {}", show(src)), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("reading {}", show(src)), e))?;
        let from = entry.path();
        let name = entry.file_name();
        let kind = entry.file_type().map_err(|e| Error::io(format!("examining {}", show(&from)), e))?;
        if kind.is_dir() {
            stage_tree(&from, &dst.join(&name))?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&from).map_err(|e| Error::io(format!("reading {}", show(&from)), e))?;
            let to = dst.join(&name);
            std::os::unix::fs::symlink(&target, &to).map_err(|e| Error::io(format!("creating {}", show(&to)), e))?;
        } else if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(PATTERN_SUFFIX)) {
            let to = dst.join(stem);
            fs::write(&to, pattern_file(&from)?).map_err(|e| Error::io(format!("writing {}", show(&to)), e))?;
        } else if kind.is_file() {
            let to = dst.join(&name);
            fs::copy(&from, &to).map_err(|e| Error::io(format!("copying {}", show(&from)), e))?;
        } else {
            return Err(Error::Usage(format!("{}: not a file, directory or symlink", show(&from))));
        }
    }
    Ok(())
}

/// The contents a `.pattern` file stands for.
fn pattern_file(spec: &Path) -> Result<Vec<u8>, Error> {
    let text = fs::read_to_string(spec).map_err(|e| Error::io(format!("reading {}", show(spec)), e))?;
    let len: u64 = text
        .trim()
        .parse()
        .map_err(|_| Error::Usage(format!("{}: expected a length in bytes, found {:?}", show(spec), text.trim())))?;
    Ok((0..len).map(crate::diskcheck::pattern_byte).collect())
}

/// The first 512-byte sector of the data of `path` (absolute, in the file
/// system) on `image`: its block 0 as `debugfs -R "bmap PATH 0"` maps it.
/// The caller makes sure `path` is a regular file with data (bmap reads a
/// fast symlink's target as a block number); a hole at block 0 is refused.
pub fn first_data_sector(image: &Path, path: &str, block_size: BlockSize) -> Result<u64, Error> {
    let debugfs = e2fsprogs("debugfs")?;
    let output = Command::new(&debugfs)
        .arg("-R")
        .arg(format!("bmap {path} 0"))
        .arg(image)
        .output()
        .map_err(|e| Error::io(format!("running {}", show(&debugfs)), e))?;
    let failed = |why: &str| Error::ToolFailed {
        tool: "debugfs",
        task: format!("bmap {path} 0 on {}", show(image)),
        output: format!("{why}; debugfs said: {}", String::from_utf8_lossy(&output.stderr).trim()),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let block: u64 = stdout.trim().parse().map_err(|_| failed("no block number"))?;
    if block == 0 {
        return Err(failed("block 0 of the file is a hole"));
    }
    Ok(block * (block_size.bytes() / 512))
}

#[cfg(test)]
mod tests {
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

    /// A tree with a file, a subdirectory, a symlink and a pattern file.
    fn sample_tree(root: &Path) {
        fs::create_dir_all(root.join("dir")).unwrap();
        fs::write(root.join("hello.txt"), "hello\n").unwrap();
        fs::write(root.join("dir/a.txt"), "file a\n").unwrap();
        fs::write(root.join("dir/big.pattern"), "70000\n").unwrap();
        std::os::unix::fs::symlink("dir/a.txt", root.join("link")).unwrap();
    }

    #[test]
    fn a_staged_tree_expands_pattern_files_and_keeps_symlinks() {
        let tmp = TempDir::new("stage");
        sample_tree(&tmp.0.join("src"));
        let dst = tmp.0.join("dst");
        stage_tree(&tmp.0.join("src"), &dst).unwrap();
        assert_eq!(fs::read(dst.join("hello.txt")).unwrap(), b"hello\n");
        let big = fs::read(dst.join("dir/big")).unwrap();
        assert_eq!(big.len(), 70000);
        assert!(big.iter().enumerate().all(|(i, &b)| b == crate::diskcheck::pattern_byte(i as u64)));
        assert!(!dst.join("dir/big.pattern").exists(), "the spec itself is not copied");
        assert_eq!(fs::read_link(dst.join("link")).unwrap(), Path::new("dir/a.txt"));
        fs::write(tmp.0.join("src/bad.pattern"), "lots").unwrap();
        let err = stage_tree(&tmp.0.join("src"), &tmp.0.join("dst2")).unwrap_err();
        assert!(err.to_string().contains("expected a length in bytes"), "{err}");
    }

    /// An image made from a tree passes `e2fsck -fn` and holds the tree:
    /// debugfs gives each file back, the symlink's target, and the data
    /// sector found for a file holds that file's bytes.
    #[test]
    fn an_image_made_from_a_tree_holds_it_for_the_host_tools() {
        if !have_e2fsprogs("an_image_made_from_a_tree_holds_it_for_the_host_tools") {
            return;
        }
        let tmp = TempDir::new("image");
        let tree = tmp.0.join("tree");
        sample_tree(&tree);
        let staged = tmp.0.join("staged");
        stage_tree(&tree, &staged).unwrap();
        for block_size in [BlockSize::K1, BlockSize::K4] {
            let image = tmp.0.join("disk.img");
            Ext2Image { mib: 4, block_size, tree: Some(&staged) }.make(&image).unwrap();
            assert_eq!(fs::metadata(&image).unwrap().len(), 4 << 20);
            let fsck = Command::new(e2fsprogs("e2fsck").unwrap()).arg("-fn").arg(&image).output().unwrap();
            assert!(fsck.status.success(), "e2fsck -fn: {}", String::from_utf8_lossy(&fsck.stdout));
            assert_eq!(debugfs(&image, "cat /hello.txt"), b"hello\n");
            assert_eq!(debugfs(&image, "cat /dir/big"), fs::read(staged.join("dir/big")).unwrap());
            let stat = String::from_utf8_lossy(&debugfs(&image, "stat /link")).into_owned();
            assert!(stat.contains("Fast link dest: \"dir/a.txt\""), "{stat}");
            let sector = first_data_sector(&image, "/dir/big", block_size).unwrap();
            let bytes = fs::read(&image).unwrap();
            let at = (sector * 512) as usize;
            assert_eq!(&bytes[at..at + 4096], &fs::read(staged.join("dir/big")).unwrap()[..4096]);
            assert!(first_data_sector(&image, "/missing", block_size).is_err());
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
