//! ext2 under the VFS (Linux `fs/ext2/super.c`, `namei.c`, `file.c`,
//! `dir.c` as they plug into `struct super_operations`,
//! `inode_operations` and `file_operations`), over the host-tested
//! `ext2` crate.
//!
//! The crate's file system takes `&mut self` for every operation, so one
//! sleeping [`Mutex`] serializes the instance (Linux locks per inode and
//! per group; ours is the coarse version of it). A corruption or I/O
//! error the crate reports is logged here with the device, once per
//! operation, and reaches the caller as its errno (EIO), as Linux's
//! `ext2_error` logs and fails the call.
//!
//! Regular files' data goes through the page cache
//! ([`crate::filemap`]): the inode's [`AddressSpaceOperations`] read a
//! page with the crate's `read` (holes and the tail past the end read as
//! zeros), read a readahead batch straight into its pages on a disk of
//! the block layer that has an interrupt (the crate's `get_blocks` maps
//! the batch's blocks, [`mpage`] reads each run with one bio and the
//! completion ends the pages; on other devices, and for a single page,
//! through a buffer with `read`), allocate a write's blocks up front with
//! `get_block` (so ENOSPC
//! comes before any byte is copied, Linux `ext2_write_begin`), record the
//! new size and times with `write_end`, and write a page back with
//! `write_blocks` (Linux `ext2_writepages` over `ext2_get_block`).
//! `read_at`/`write_at` remain for a file whose page cache could not be
//! made.
//!
//! Each [`Ext2Inode`] pins its inode in the crate while it lives (Linux's
//! in-core inode reference): a file unlinked or a directory removed while
//! open stays allocated as an orphan, still usable, and is freed when the
//! last holder lets go (Linux `ext2_evict_inode`). As in Linux's ext2
//! there is no on-disk orphan list: after a crash, e2fsck frees such
//! inodes. `RENAME_EXCHANGE` is EINVAL, as in Linux's ext2.
//!
//! The crate's metadata buffer cache gives clean blocks back under
//! memory pressure through the superblock shrinker
//! ([`SuperOperations::free_cached_objects`], [`super::shrinker`]).
//!
//! Locking: the instance mutex is the "fs lock" of `fs/mod.rs`'s order:
//! after the inode's `i_rwsem`, before the dcache and the mount table,
//! held across device I/O.

#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

use ::ext2::{Ext2Error, Ext2Fs, FileType, MountOptions};
use uapi::errno::Errno;

use super::blkdev::{BdevHandle, BlockDevice};
use super::inode::{
    DirEntry, FileOperations, FsInode, Ino, InodeOperations, Kstat, Kstatfs, Owner, RenameFlags, SetAttr,
    SuperOperations, Timestamp,
};
use super::mpage::{self, BlockRun};
use crate::block::Gendisk;
use crate::filemap::{AddressSpaceOperations, ReadaheadControl};
use crate::sync::Mutex;

/// Metadata blocks the crate's buffer cache keeps per mount.
const CACHE_BLOCKS: usize = 256;

/// The kernel's clock as ext2 timestamps (seconds).
struct KernelClock;

impl ::ext2::Clock for KernelClock {
    fn now(&self) -> u32 {
        super::current_time().sec as u32
    }
}

/// One mounted ext2 file system.
pub struct Ext2Super {
    /// `None` once unmounted.
    fs: Mutex<Option<Ext2Fs<BdevHandle>>>,
    /// The device name, for log lines.
    dev_name: String,
    block_size: u32,
    /// The block layer's disk, when the device reaches one with an
    /// interrupt: readahead reads into the pages through it.
    disk: Option<Arc<Gendisk>>,
    /// Blocks in the crate's buffer cache after the last operation, for
    /// the shrinker's count, which takes no lock.
    cached_blocks: AtomicU64,
}

impl Ext2Super {
    /// Runs `op` on the file system; an error is logged if it is a
    /// corruption or I/O error and becomes its errno.
    fn with<T>(&self, op: impl FnOnce(&mut Ext2Fs<BdevHandle>) -> ::ext2::Result<T>) -> Result<T, Errno> {
        let mut guard = self.fs.lock();
        let fs = guard.as_mut().ok_or(Errno::EIO)?;
        let result = op(fs).map_err(|e| {
            if matches!(e, Ext2Error::Corrupt { .. } | Ext2Error::Io(_)) {
                log::warn!("EXT2-fs ({}): error: {e}", self.dev_name);
            }
            e.errno()
        });
        self.cached_blocks.store(fs.cached_blocks() as u64, Ordering::Relaxed);
        result
    }
}

/// The operations of one mount.
pub struct Ext2SuperOps(Arc<Ext2Super>);

/// Mounts the ext2 file system on `dev` (Linux `ext2_fill_super`): a bad
/// superblock or an unsupported feature is refused with a log line naming
/// it, as Linux's "EXT2-fs (dev): error: ..." lines do.
pub fn mount(dev_name: &str, dev: Arc<dyn BlockDevice>, read_only: bool) -> Result<Box<Ext2SuperOps>, Errno> {
    let options = MountOptions { read_only, cache_blocks: CACHE_BLOCKS, clock: Box::new(KernelClock) };
    // A polled disk completes only while someone waits for it, and
    // nobody waits for readahead.
    let disk = dev.gendisk().filter(|d| !d.is_polled());
    match Ext2Fs::mount(BdevHandle(dev), options) {
        Ok(fs) => {
            let block_size = fs.block_size();
            if fs.has_errors() {
                log::warn!("EXT2-fs ({dev_name}): warning: mounting fs with errors, running e2fsck is recommended");
            }
            let cached_blocks = AtomicU64::new(fs.cached_blocks() as u64);
            let sb = Ext2Super {
                fs: Mutex::new(Some(fs)),
                dev_name: String::from(dev_name),
                block_size,
                disk,
                cached_blocks,
            };
            Ok(Box::new(Ext2SuperOps(Arc::new(sb))))
        }
        Err(e) => {
            log::warn!("EXT2-fs ({dev_name}): error: can't mount: {e}");
            Err(e.errno())
        }
    }
}

impl SuperOperations for Ext2SuperOps {
    fn fs_type(&self) -> &'static str {
        "ext2"
    }

    fn root(&self) -> Result<Arc<dyn FsInode>, Errno> {
        Ok(Ext2Inode::new(&self.0, ::ext2::Ino::ROOT))
    }

    fn statfs(&self) -> Kstatfs {
        let s = self.0.with(|fs| Ok(fs.statfs())).ok();
        s.map_or_else(Kstatfs::default, |s| Kstatfs {
            f_type: uapi::fs::EXT2_SUPER_MAGIC,
            bsize: u64::from(s.block_size),
            blocks: u64::from(s.blocks),
            bfree: u64::from(s.free_blocks),
            bavail: u64::from(s.avail_blocks),
            files: u64::from(s.inodes),
            ffree: u64::from(s.free_inodes),
            namelen: u64::from(s.name_max),
        })
    }

    fn sync_fs(&self) -> Result<(), Errno> {
        self.0.with(|fs| fs.sync())
    }

    fn put_super(&self) -> Result<(), Errno> {
        let Some(fs) = self.0.fs.lock().take() else { return Ok(()) };
        fs.unmount().map(drop).map_err(|e| {
            log::warn!("EXT2-fs ({}): error at unmount: {e}", self.0.dev_name);
            e.errno()
        })
    }

    fn cache_lookups(&self) -> bool {
        true
    }

    fn nr_cached_objects(&self) -> u64 {
        self.0.cached_blocks.load(Ordering::Relaxed)
    }

    /// Clean metadata blocks of the crate's buffer cache, least recently
    /// used first. The instance mutex is only tried, as Linux's
    /// `super_cache_scan` only tries `s_umount`: reclaim does not wait
    /// behind a file-system operation's I/O.
    fn free_cached_objects(&self, nr_to_scan: u64) -> u64 {
        let Some(mut guard) = self.0.fs.try_lock() else { return 0 };
        let Some(fs) = guard.as_mut() else { return 0 };
        let freed = fs.shrink_cache(usize::try_from(nr_to_scan).unwrap_or(usize::MAX));
        self.0.cached_blocks.store(fs.cached_blocks() as u64, Ordering::Relaxed);
        freed as u64
    }
}

/// An ext2 inode as the VFS holds it.
pub struct Ext2Inode {
    sb: Arc<Ext2Super>,
    ino: ::ext2::Ino,
}

impl Drop for Ext2Inode {
    /// Unpins the inode: the last holder of an orphan frees it. Takes the
    /// instance mutex, so the VFS drops inodes with no spin lock held.
    fn drop(&mut self) {
        let _ = self.sb.with(|fs| fs.unpin(self.ino));
    }
}

impl Ext2Inode {
    /// The inode `ino`, pinned in the crate until this is dropped. May
    /// sleep (the instance mutex).
    fn new(sb: &Arc<Ext2Super>, ino: ::ext2::Ino) -> Arc<Ext2Inode> {
        // Fails only once the instance is unmounted; then nothing pins.
        let _ = sb.with(|fs| {
            fs.pin(ino);
            Ok(())
        });
        Arc::new(Ext2Inode { sb: sb.clone(), ino })
    }

    fn child(&self, ino: ::ext2::Ino) -> Arc<dyn FsInode> {
        Ext2Inode::new(&self.sb, ino)
    }

    fn same_fs(&self, other: &dyn FsInode) -> Result<::ext2::Ino, Errno> {
        let other = other.as_any().downcast_ref::<Ext2Inode>().ok_or(Errno::EXDEV)?;
        if Arc::ptr_eq(&other.sb, &self.sb) { Ok(other.ino) } else { Err(Errno::EXDEV) }
    }
}

fn owner(o: Owner) -> ::ext2::Owner {
    ::ext2::Owner { uid: o.uid, gid: o.gid }
}

fn ts(sec: u32) -> Timestamp {
    Timestamp { sec: i64::from(sec), nsec: 0 }
}

fn dt_of(ft: FileType) -> u8 {
    use uapi::fs::*;
    match ft {
        FileType::Regular => DT_REG,
        FileType::Directory => DT_DIR,
        FileType::Symlink => DT_LNK,
        FileType::CharDevice => DT_CHR,
        FileType::BlockDevice => DT_BLK,
        FileType::Fifo => DT_FIFO,
        FileType::Socket => DT_SOCK,
        FileType::Unknown => DT_UNKNOWN,
    }
}

impl InodeOperations for Ext2Inode {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn ino(&self) -> Ino {
        u64::from(self.ino.0)
    }

    fn getattr(&self) -> Result<Kstat, Errno> {
        let s = self.sb.with(|fs| fs.stat(self.ino))?;
        Ok(Kstat {
            ino: u64::from(s.ino.0),
            mode: u32::from(s.mode),
            nlink: u32::from(s.nlink),
            uid: s.uid,
            gid: s.gid,
            rdev: 0,
            size: s.size,
            blocks: u64::from(s.blocks),
            blksize: self.sb.block_size,
            atime: ts(s.atime),
            mtime: ts(s.mtime),
            ctime: ts(s.ctime),
        })
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        if let Some(size) = attr.size {
            self.sb.with(|fs| fs.truncate(self.ino, size))?;
        }
        let a = ::ext2::SetAttr {
            mode: attr.mode.map(|m| (m & 0o7777) as u16),
            uid: attr.uid,
            gid: attr.gid,
            atime: attr.atime.map(|t| t.sec as u32),
            mtime: attr.mtime.map(|t| t.sec as u32),
        };
        if a != ::ext2::SetAttr::default() || attr.size.is_none() {
            self.sb.with(|fs| fs.setattr(self.ino, a))?;
        }
        Ok(())
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn FsInode>, Errno> {
        let ino = self.sb.with(|fs| fs.lookup(self.ino, name))?;
        Ok(self.child(ino))
    }

    fn create(&self, name: &[u8], mode: u32, o: Owner) -> Result<Arc<dyn FsInode>, Errno> {
        let ino = self.sb.with(|fs| fs.create(self.ino, name, (mode & 0o7777) as u16, owner(o)))?;
        Ok(self.child(ino))
    }

    fn mkdir(&self, name: &[u8], mode: u32, o: Owner) -> Result<(), Errno> {
        self.sb.with(|fs| fs.mkdir(self.ino, name, (mode & 0o7777) as u16, owner(o))).map(drop)
    }

    fn symlink(&self, name: &[u8], target: &[u8], o: Owner) -> Result<(), Errno> {
        self.sb.with(|fs| fs.symlink(self.ino, name, target, owner(o))).map(drop)
    }

    fn link(&self, inode: &dyn FsInode, name: &[u8]) -> Result<(), Errno> {
        let target = self.same_fs(inode)?;
        self.sb.with(|fs| fs.link(target, self.ino, name))
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        self.sb.with(|fs| fs.unlink(self.ino, name))
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        self.sb.with(|fs| fs.rmdir(self.ino, name))
    }

    fn rename(&self, old_name: &[u8], new_dir: &dyn FsInode, new_name: &[u8], flags: RenameFlags) -> Result<(), Errno> {
        if flags.exchange {
            return Err(Errno::EINVAL);
        }
        let new_dir = self.same_fs(new_dir)?;
        self.sb.with(|fs| {
            if flags.noreplace && fs.lookup(new_dir, new_name).is_ok() {
                return Err(Ext2Error::Exists);
            }
            fs.rename(self.ino, old_name, new_dir, new_name)
        })
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        self.sb.with(|fs| fs.readlink(self.ino))
    }
}

impl FileOperations for Ext2Inode {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.sb.with(|fs| fs.read(self.ino, offset, buf))
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.sb.with(|fs| fs.write(self.ino, offset, buf))
    }

    fn readdir(&self, pos: u64) -> Result<Option<(DirEntry, u64)>, Errno> {
        let next = self.sb.with(|fs| fs.read_dir(self.ino, pos))?;
        Ok(next.map(|(e, pos)| (DirEntry { ino: u64::from(e.ino.0), d_type: dt_of(e.file_type), name: e.name }, pos)))
    }

    fn fsync(&self) -> Result<(), Errno> {
        self.sb.with(|fs| fs.sync())
    }

    fn a_ops(&self) -> Option<&dyn AddressSpaceOperations> {
        Some(self)
    }
}

impl AddressSpaceOperations for Ext2Inode {
    /// Reads `buf.len()` bytes from page `index` on, through the crate's
    /// `read`, which reads blocks in a row with one request each run: one
    /// page, or a readahead batch on a device without [`mpage`].
    fn read_folio(&self, index: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let offset = index.checked_mul(mm::PAGE_SIZE).ok_or(Errno::EFBIG)?;
        let n = self.sb.with(|fs| fs.read(self.ino, offset, buf))?;
        if let Some(tail) = buf.get_mut(n..) {
            tail.fill(0);
        }
        Ok(())
    }

    fn write_begin(&self, pos: u64, len: u64) -> Result<(), Errno> {
        let bs = u64::from(self.sb.block_size);
        let end = pos.checked_add(len).ok_or(Errno::EFBIG)?;
        self.sb.with(|fs| {
            for iblock in pos / bs..end.div_ceil(bs) {
                fs.get_block(self.ino, iblock, true)?;
            }
            Ok(())
        })
    }

    fn write_end(&self, end: u64) -> Result<(), Errno> {
        self.sb.with(|fs| fs.write_end(self.ino, end))
    }

    /// Reads the batch straight into its pages where the device allows
    /// (Linux `ext2_readahead`: `mpage_readahead` over `ext2_get_block`),
    /// else through one buffer.
    fn readahead(&self, rac: ReadaheadControl<'_>) -> Result<(), Errno> {
        let Some(disk) = self.sb.disk.as_ref() else {
            return rac.read_with(|index, buf| self.read_folio(index, buf));
        };
        let bs = u64::from(self.sb.block_size);
        let start = rac.index().checked_mul(mm::PAGE_SIZE).ok_or(Errno::EFBIG)?;
        let bytes = (rac.nr_pages() as u64).checked_mul(mm::PAGE_SIZE).ok_or(Errno::EFBIG)?;
        let (first, end) = (start / bs, start.checked_add(bytes).ok_or(Errno::EFBIG)?.div_ceil(bs));
        // Blocks past the end of the file are holes (Linux
        // `last_block_in_file`).
        let in_file = rac.i_size().div_ceil(bs).clamp(first, end);
        let mut runs: Vec<BlockRun> = Vec::new();
        runs.try_reserve_exact((end - first) as usize).map_err(|_| Errno::ENOMEM)?;
        // A block that cannot be mapped ends the runs early: mpage fails
        // the pages they do not reach, and the reader's own read of one
        // reports the error (logged here).
        let mapped = self.sb.with(|fs| {
            let mut iblock = first;
            while iblock < in_file {
                let max = u32::try_from(in_file - iblock).unwrap_or(u32::MAX);
                let run = fs.get_blocks(self.ino, iblock, max)?;
                runs.push(BlockRun { count: u64::from(run.count), block: run.block.map(|b| u64::from(b.0)) });
                iblock += u64::from(run.count);
            }
            Ok(())
        });
        if mapped.is_ok() && in_file < end {
            runs.push(BlockRun { count: end - in_file, block: None });
        }
        mpage::mpage_readahead(rac, disk, self.sb.block_size, &runs)
    }

    fn writepages(&self, index: u64, data: &[u8]) -> Result<(), Errno> {
        let bs = self.sb.block_size as usize;
        let offset = index.checked_mul(mm::PAGE_SIZE).ok_or(Errno::EFBIG)?;
        let whole = data.len().div_ceil(bs) * bs;
        let mut blocks = Vec::new();
        blocks.try_reserve_exact(whole).map_err(|_| Errno::ENOMEM)?;
        blocks.extend_from_slice(data);
        blocks.resize(whole, 0);
        self.sb.with(|fs| fs.write_blocks(self.ino, offset / bs as u64, &blocks))
    }
}
