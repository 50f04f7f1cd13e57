//! The scratch disk: the first virtio-blk disk of a boot (`vda`), made
//! anew in the boot's work directory ([`SCRATCH_IMAGE`]) each time, so a
//! test may write it freely and the host can judge what it wrote
//! afterwards (xtask/src/diskcheck.rs).
//!
//! It is blank, or holds an ext2 file system of a prepared tree
//! (tests/disks/NAME, staged and made by [`crate::mkdisk`] with 4 KiB
//! blocks). Either can fail the requests covering one sector with EIO
//! through QEMU's blkdebug driver (QEMU docs/devel/blkdebug.rst); on a
//! tree's disk the sector can be named by a file, whose first data block
//! `debugfs` finds on the image just made. A blank disk can also fail
//! only its reads or only its writes, over several 4 KiB pages (the swap
//! tests' failing slots: [`EioAt::Pages`]).
//!
//! A test may ask for more disks of the same size (`#[ktest(disks = N)]`):
//! blank ones, attached after it (`vdb`, ...), each made anew as
//! `scratch1.img`, ... (two swap areas need two disks).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, show};
use crate::mkdisk::{self, BlockSize, Ext2Image};

/// The scratch disk's file in the boot's work directory.
pub const SCRATCH_IMAGE: &str = "scratch.img";

/// The block size of a prepared tree's file system: the page size, and
/// what mke2fs picks for all but tiny disks.
const TREE_BLOCK_SIZE: BlockSize = BlockSize::K4;

/// A scratch disk to make.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScratchDisk {
    /// Size in MiB.
    pub mib: u32,
    /// What it holds.
    pub contents: Contents,
    /// Fail every read and write covering this place with EIO.
    pub eio: Option<EioAt>,
    /// Blank disks of the same size attached after it (`vdb`, ...), in
    /// the work directory as `scratch1.img`, ...
    pub extra: u32,
}

/// What a scratch disk holds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Contents {
    /// Zeros, a sparse file on the host.
    Blank,
    /// Zeros written out: reads of a hole cost the host far more, and far
    /// less steadily, than reads of written blocks (benchmarks want the
    /// latter).
    Allocated,
    /// An ext2 file system holding this tree (a directory of
    /// [`mkdisk::TREES`]).
    Tree(PathBuf),
}

/// Where a scratch disk fails.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EioAt {
    /// This 512-byte sector.
    Sector(u64),
    /// The `pages` 4 KiB pages from this sector on (a rule at each
    /// page's first sector), for the requests `ops` names.
    Pages {
        /// The first page's first sector.
        sector: u64,
        /// How many pages.
        pages: u32,
        /// Which requests fail.
        ops: EioOps,
    },
    /// The first sector of this file's first data block (an absolute path
    /// in a tree's file system; the file must be a regular file with data
    /// at offset 0).
    FileData(String),
}

/// Which requests fail where a scratch disk fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EioOps {
    /// Reads and writes.
    Both,
    /// Reads only.
    Read,
    /// Writes only.
    Write,
}

impl EioOps {
    /// blkdebug's events arming the rules for these requests (raised by
    /// the raw driver), each with the I/O type of its requests.
    fn events(self) -> &'static [(&'static str, &'static str)] {
        match self {
            EioOps::Both => &[("read_aio", "read"), ("write_aio", "write")],
            EioOps::Read => &[("read_aio", "read")],
            EioOps::Write => &[("write_aio", "write")],
        }
    }

    /// The suffix in a disk's name: `r`, `w`, or none for both.
    fn letter(self) -> &'static str {
        match self {
            EioOps::Both => "",
            EioOps::Read => "r",
            EioOps::Write => "w",
        }
    }
}

/// Sectors per 4 KiB page.
const PAGE_SECTORS: u64 = 8;

impl ScratchDisk {
    /// A blank disk of `mib` MiB.
    pub fn blank(mib: u32) -> ScratchDisk {
        ScratchDisk { mib, contents: Contents::Blank, eio: None, extra: 0 }
    }

    /// A short description for suite and log directory names:
    /// `disk8M`, `disk8M-basic-eio4096`, `disk8M-basic-eio-big`,
    /// `disk16Mx2` (two disks), `disk16M-eio2048w4` (writes of four
    /// pages fail).
    pub fn name(&self) -> String {
        let tree = match &self.contents {
            Contents::Tree(dir) => format!("-{}", dir.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()),
            Contents::Blank | Contents::Allocated => String::new(),
        };
        let eio = match &self.eio {
            None => String::new(),
            Some(EioAt::Sector(s)) => format!("-eio{s}"),
            Some(EioAt::Pages { sector, pages, ops }) => {
                let count = if *pages > 1 { pages.to_string() } else { String::new() };
                format!("-eio{sector}{}{count}", ops.letter())
            }
            Some(EioAt::FileData(path)) => {
                let flat: String = path.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
                format!("-eio{flat}")
            }
        };
        let count = if self.extra > 0 { format!("x{}", self.extra + 1) } else { String::new() };
        format!("disk{}M{count}{tree}{eio}", self.mib)
    }

    /// Makes the disk in `workdir` and adds it to `cmd` as a virtio-blk
    /// disk, behind blkdebug if it is to fail.
    pub fn attach(&self, cmd: &mut Command, workdir: &Path) -> Result<(), Error> {
        let disk = workdir.join(SCRATCH_IMAGE);
        match self.make(&disk, workdir)? {
            None => {
                cmd.arg("-drive").arg(format!("if=none,id=scratch0,format=raw,file={}", show(&disk)));
            }
            Some(rules) => {
                // raw over blkdebug over the file: the raw driver raises
                // blkdebug's read_aio/write_aio events, which arm the rules
                // for the requests covering each rule's sector.
                let config = workdir.join("blkdebug.conf");
                std::fs::write(&config, blkdebug_config(&rules))
                    .map_err(|e| Error::io(format!("writing {}", show(&config)), e))?;
                cmd.arg("-drive").arg(format!(
                    "if=none,id=scratch0,format=raw,file.driver=blkdebug,file.config={},\
                     file.image.driver=file,file.image.filename={}",
                    show(&config),
                    show(&disk)
                ));
            }
        }
        cmd.args(["-device", "virtio-blk-pci,drive=scratch0"]);
        for i in 1..=self.extra {
            let extra = workdir.join(format!("scratch{i}.img"));
            ScratchDisk::blank(self.mib).make_zeros(&extra)?;
            cmd.arg("-drive").arg(format!("if=none,id=scratch{i},format=raw,file={}", show(&extra)));
            cmd.arg("-device").arg(format!("virtio-blk-pci,drive=scratch{i}"));
        }
        Ok(())
    }

    /// Makes the image `disk` (a tree is staged in `workdir` first);
    /// returns the rules for blkdebug (a sector and the requests that
    /// fail there), if the disk is to fail.
    fn make(&self, disk: &Path, workdir: &Path) -> Result<Option<Vec<(u64, EioOps)>>, Error> {
        let staged = match &self.contents {
            Contents::Blank | Contents::Allocated => {
                self.make_zeros(disk)?;
                None
            }
            Contents::Tree(dir) => {
                let staged = workdir.join("tree");
                let _ = std::fs::remove_dir_all(&staged);
                if !dir.is_dir() {
                    return Err(Error::Usage(format!("prepared disk tree {}: no such directory", show(dir))));
                }
                mkdisk::stage_tree(dir, &staged)?;
                Ext2Image { mib: self.mib, block_size: TREE_BLOCK_SIZE, tree: Some(&staged) }.make(disk)?;
                Some(staged)
            }
        };
        let rules = match (&self.eio, &staged) {
            (None, _) => None,
            (Some(EioAt::Sector(s)), _) => Some(vec![(*s, EioOps::Both)]),
            (Some(EioAt::Pages { sector, pages, ops }), _) => {
                Some((0..u64::from(*pages)).map(|i| (sector + i * PAGE_SECTORS, *ops)).collect())
            }
            (Some(EioAt::FileData(path)), Some(staged)) => {
                Some(vec![(file_data_sector(disk, staged, path)?, EioOps::Both)])
            }
            (Some(EioAt::FileData(path)), None) => {
                return Err(Error::Usage(format!("the scratch disk fails at {path}'s data, but it holds no tree")));
            }
        };
        if let Some(staged) = staged {
            std::fs::remove_dir_all(&staged).map_err(|e| Error::io(format!("removing {}", show(&staged)), e))?;
        }
        Ok(rules)
    }

    /// Makes `disk` this many MiB of zeros.
    fn make_zeros(&self, disk: &Path) -> Result<(), Error> {
        let size = u64::from(self.mib) << 20;
        let file = std::fs::File::create(disk).map_err(|e| Error::io(format!("creating {}", show(disk)), e))?;
        file.set_len(size).map_err(|e| Error::io(format!("sizing {}", show(disk)), e))?;
        if self.contents == Contents::Allocated {
            let zeros = vec![0u8; size as usize];
            std::fs::write(disk, zeros).map_err(|e| Error::io(format!("writing {}", show(disk)), e))?;
        }
        Ok(())
    }
}

/// The first sector of `path`'s data on `disk`, made from the tree
/// `staged`: refused unless the tree holds `path` as a regular file with
/// data (debugfs's bmap would read a fast symlink's target as a block
/// number).
fn file_data_sector(disk: &Path, staged: &Path, path: &str) -> Result<u64, Error> {
    match std::fs::symlink_metadata(staged.join(path.trim_start_matches('/'))) {
        Ok(m) if m.is_file() && m.len() > 0 => mkdisk::first_data_sector(disk, path, TREE_BLOCK_SIZE),
        _ => Err(Error::Usage(format!("{path} is not a regular file with data in the prepared tree"))),
    }
}

/// A blkdebug configuration failing with EIO (errno 5), every time, each
/// request of the kinds a rule names that covers its sector (QEMU
/// docs/devel/blkdebug.rst). A rule is armed by its event (the first
/// read or write anywhere) and then fails the requests its `iotype`
/// allows, all of them when it has none: a read-only or write-only rule
/// says so.
fn blkdebug_config(rules: &[(u64, EioOps)]) -> String {
    rules
        .iter()
        .flat_map(|&(sector, ops)| ops.events().iter().map(move |&(event, iotype)| (sector, event, iotype, ops)))
        .map(|(sector, event, iotype, ops)| {
            let iotype = if ops == EioOps::Both { String::new() } else { format!("iotype = \"{iotype}\"\n") };
            format!(
                "[inject-error]\nevent = \"{event}\"\n{iotype}errno = \"5\"\nsector = \"{sector}\"\nonce = \"off\"\n\n"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tell_disks_apart() {
        let mut disk = ScratchDisk::blank(8);
        assert_eq!(disk.name(), "disk8M");
        disk.eio = Some(EioAt::Sector(4096));
        assert_eq!(disk.name(), "disk8M-eio4096");
        disk.contents = Contents::Tree(PathBuf::from("/repo/tests/disks/basic"));
        disk.eio = Some(EioAt::FileData("/dir/big".into()));
        assert_eq!(disk.name(), "disk8M-basic-eio-dir-big");
        assert_eq!(ScratchDisk { extra: 1, ..ScratchDisk::blank(16) }.name(), "disk16Mx2");
        let pages =
            |ops| ScratchDisk { eio: Some(EioAt::Pages { sector: 2048, pages: 4, ops }), ..ScratchDisk::blank(16) };
        assert_eq!(pages(EioOps::Write).name(), "disk16M-eio2048w4");
        assert_eq!(pages(EioOps::Read).name(), "disk16M-eio2048r4");
    }

    /// Failing pages get a rule at each page's first sector, for the
    /// requests asked for only.
    #[test]
    fn failing_pages_make_one_rule_per_page_and_request_kind() {
        let work = std::env::temp_dir().join(format!("xtask-scratch-pages-{}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        let disk = ScratchDisk {
            eio: Some(EioAt::Pages { sector: 2048, pages: 3, ops: EioOps::Write }),
            ..ScratchDisk::blank(4)
        };
        disk.attach(&mut Command::new("true"), &work).unwrap();
        let config = std::fs::read_to_string(work.join("blkdebug.conf")).unwrap();
        let sectors: Vec<&str> = config.lines().filter_map(|l| l.strip_prefix("sector = ")).collect();
        assert_eq!(sectors, ["\"2048\"", "\"2056\"", "\"2064\""]);
        assert_eq!(config.matches("write_aio").count(), 3);
        assert_eq!(config.matches("iotype = \"write\"").count(), 3, "reads of those pages work");
        assert!(!config.contains("read"));
        std::fs::remove_dir_all(&work).unwrap();
    }

    /// The disk a boot gets from a tree whose file is to fail: the sector
    /// blkdebug is told is where that file's bytes are on the image.
    #[test]
    fn a_tree_disk_fails_at_the_named_files_data() {
        if let Err(e) = crate::error::e2fsprogs("mke2fs").and(crate::error::e2fsprogs("debugfs")) {
            eprintln!("skipping a_tree_disk_fails_at_the_named_files_data: {e}");
            return;
        }
        let work = std::env::temp_dir().join(format!("xtask-scratch-{}", std::process::id()));
        let tree = work.join("src");
        std::fs::create_dir_all(tree.join("d")).unwrap();
        std::fs::write(tree.join("d/victim"), b"the bytes that fail").unwrap();
        let disk = ScratchDisk {
            mib: 4,
            contents: Contents::Tree(tree.clone()),
            eio: Some(EioAt::FileData("/d/victim".into())),
            extra: 0,
        };
        let mut cmd = Command::new("true");
        disk.attach(&mut cmd, &work).unwrap();
        let config = std::fs::read_to_string(work.join("blkdebug.conf")).unwrap();
        let sector: u64 = config.split("sector = \"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        let image = std::fs::read(work.join(SCRATCH_IMAGE)).unwrap();
        let at = (sector * 512) as usize;
        assert_eq!(&image[at..at + 19], b"the bytes that fail");
        assert!(!work.join("tree").exists(), "the staged copy is gone");
        let missing = ScratchDisk { eio: Some(EioAt::FileData("/d".into())), ..disk };
        let err = missing.attach(&mut cmd, &work).unwrap_err();
        assert!(err.to_string().contains("/d is not a regular file with data"), "{err}");
        std::fs::remove_dir_all(&work).unwrap();
    }
}
