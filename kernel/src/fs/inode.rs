//! Inodes and superblocks (Linux `fs/inode.c`, `fs/super.c`,
//! `include/linux/fs.h`'s `inode_operations`, `file_operations` and
//! `super_operations`).
//!
//! A file system implements three traits: [`SuperOperations`] for the
//! whole instance, [`InodeOperations`] for the namespace and attributes of
//! one inode, [`FileOperations`] for its data. The VFS wraps each file
//! system inode in an [`Inode`] that it caches per superblock by inode
//! number (Linux's inode hash, `iget_locked`), so every opener of a file
//! shares one [`Inode::i_rwsem`]: writers and truncation take it, which is
//! what makes `O_APPEND` atomic between appenders.
//!
//! Differences from Linux: the inode cache holds weak references, so an
//! inode lives exactly as long as a dentry, open file, cwd or mount uses
//! it (no LRU of unused inodes: an inode only the dcache holds is what
//! Linux keeps on that LRU, and the superblock shrinker evicts it by
//! pruning its entries, [`super::dcache`], [`super::shrinker`]); there is
//! no per-inode attribute copy, the file system answers
//! [`InodeOperations::getattr`] itself.
//!
//! Locking: [`Inode::i_rwsem`] (sleeping) is taken before anything in the
//! file system; the inode cache lock ([`SuperBlock`]'s `icache`) is a
//! leaf spin lock held only to find or drop an entry. See `fs/mod.rs` for
//! the whole order.

#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;

use uapi::errno::Errno;

use super::dcache::Dcache;
use crate::filemap::{AddressSpaceOperations, Mapping};
use crate::shmem::ShmemInode;
use crate::sync::{Mutex, SpinLock};

/// An inode number (Linux `ino_t`).
pub type Ino = u64;

/// A time stamp: seconds and nanoseconds since the epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timestamp {
    /// Seconds.
    pub sec: i64,
    /// Nanoseconds.
    pub nsec: u32,
}

/// An inode's attributes (Linux `struct kstat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kstat {
    /// Inode number.
    pub ino: Ino,
    /// Type and permission bits (`S_IF*` | mode).
    pub mode: u32,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number of a device file (Linux encoding: major << 8 | minor
    /// for small numbers).
    pub rdev: u64,
    /// Size in bytes.
    pub size: u64,
    /// Allocated 512-byte units.
    pub blocks: u64,
    /// Preferred I/O size.
    pub blksize: u32,
    /// Last access.
    pub atime: Timestamp,
    /// Last data change.
    pub mtime: Timestamp,
    /// Last inode change.
    pub ctime: Timestamp,
}

impl Kstat {
    /// The `S_IFMT` bits.
    pub fn file_type(&self) -> u32 {
        self.mode & uapi::stat::S_IFMT
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == uapi::stat::S_IFDIR
    }

    /// Whether it is a regular file.
    pub fn is_reg(&self) -> bool {
        self.file_type() == uapi::stat::S_IFREG
    }

    /// Whether it is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.file_type() == uapi::stat::S_IFLNK
    }
}

/// Attribute changes (Linux `struct iattr`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits (the low 12 bits of the mode).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (truncate or extend with zeros).
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<Timestamp>,
    /// New modification time.
    pub mtime: Option<Timestamp>,
}

/// Who creates a file: the caller's fs ids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    /// User id (Linux `current_fsuid`).
    pub uid: u32,
    /// Group id (Linux `current_fsgid`).
    pub gid: u32,
}

/// One directory entry as `readdir` yields it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Inode number.
    pub ino: Ino,
    /// `DT_*` type.
    pub d_type: u8,
    /// The name.
    pub name: Vec<u8>,
}

/// The `DT_*` value for a mode's type bits.
pub fn dt_of_mode(mode: u32) -> u8 {
    ((mode & uapi::stat::S_IFMT) >> 12) as u8
}

/// `renameat2` flags, validated at the system call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenameFlags {
    /// `RENAME_NOREPLACE`.
    pub noreplace: bool,
    /// `RENAME_EXCHANGE`.
    pub exchange: bool,
}

/// What a file system's inode does to its name space and attributes
/// (Linux `struct inode_operations` plus `getattr`/`setattr`). A
/// directory operation takes the name of one entry, never `.` or `..`
/// (the VFS handles those), except [`InodeOperations::lookup`], which
/// must answer `..`.
pub trait InodeOperations: Send + Sync {
    /// The inode for downcasting by the file system that made it (Linux
    /// `container_of`, for `link` and `rename`'s second inode).
    fn as_any(&self) -> &dyn Any;
    /// The inode number.
    fn ino(&self) -> Ino;
    /// Attributes now (Linux `getattr`).
    fn getattr(&self) -> Result<Kstat, Errno>;
    /// Changes attributes, the size included (Linux `setattr`).
    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno>;
    /// The inode `name` names in this directory (Linux `lookup`): ENOENT
    /// if there is none.
    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn FsInode>, Errno>;
    /// A new regular file (Linux `create`): EEXIST if the name is taken.
    fn create(&self, name: &[u8], mode: u32, owner: Owner) -> Result<Arc<dyn FsInode>, Errno>;
    /// A new directory (Linux `mkdir`).
    fn mkdir(&self, name: &[u8], mode: u32, owner: Owner) -> Result<(), Errno>;
    /// A new symbolic link to `target` (Linux `symlink`).
    fn symlink(&self, name: &[u8], target: &[u8], owner: Owner) -> Result<(), Errno>;
    /// A new device node, FIFO or socket of `mode` (type and permission
    /// bits) for device `rdev` (Linux `mknod`): EPERM for a file system
    /// that cannot hold one, as Linux's `vfs_mknod` without the operation.
    fn mknod(&self, name: &[u8], mode: u32, rdev: u64, owner: Owner) -> Result<(), Errno> {
        let _ = (name, mode, rdev, owner);
        Err(Errno::EPERM)
    }
    /// A new name for `inode`, of the same file system (Linux `link`).
    fn link(&self, inode: &dyn FsInode, name: &[u8]) -> Result<(), Errno>;
    /// Removes a non-directory's name (Linux `unlink`).
    fn unlink(&self, name: &[u8]) -> Result<(), Errno>;
    /// Removes an empty directory (Linux `rmdir`).
    fn rmdir(&self, name: &[u8]) -> Result<(), Errno>;
    /// Moves `old_name` of this directory to `new_name` of `new_dir`, of
    /// the same file system (Linux `rename`), replacing what is there
    /// unless `flags` say otherwise.
    fn rename(&self, old_name: &[u8], new_dir: &dyn FsInode, new_name: &[u8], flags: RenameFlags) -> Result<(), Errno>;
    /// A symbolic link's target (Linux `get_link`).
    fn readlink(&self) -> Result<Vec<u8>, Errno>;
    /// Whether the caller may open the file for `mask` (`MAY_READ` 4,
    /// `MAY_WRITE` 2; Linux `permission`), for a file system that checks
    /// (proc): EACCES if not. The others leave it to the VFS, which does
    /// not check mode bits.
    fn permission(&self, mask: u32) -> Result<(), Errno> {
        let _ = mask;
        Ok(())
    }
}

/// What a file system's inode does with its data (Linux `struct
/// file_operations` and the `address_space_operations` under them).
pub trait FileOperations: Send + Sync {
    /// Reads at byte `offset`; short at the end of the file.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Writes at byte `offset`, extending the file.
    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno>;
    /// The entry at directory position `pos` and the position after it
    /// (Linux `iterate_shared`), `None` at the end; `.` and `..` included.
    fn readdir(&self, pos: u64) -> Result<Option<(DirEntry, u64)>, Errno>;
    /// Makes the file's data and metadata durable (Linux `fsync`).
    fn fsync(&self) -> Result<(), Errno>;
    /// The page cache operations of a regular file whose data goes
    /// through the page cache (Linux `inode->i_mapping->a_ops`); `None`
    /// for data the file system keeps itself (read_at and write_at serve
    /// it).
    fn a_ops(&self) -> Option<&dyn AddressSpaceOperations> {
        None
    }
    /// A shmem file's state (tmpfs, memfd): its page cache, which is the
    /// file and lives as long as it, and its seals (Linux
    /// `SHMEM_I(inode)`). The VFS inode uses that cache rather than
    /// making one of its own.
    fn shmem(&self) -> Option<Arc<ShmemInode>> {
        None
    }
}

/// A file system's inode: both sets of operations.
pub trait FsInode: InodeOperations + FileOperations {}

impl<T: InodeOperations + FileOperations> FsInode for T {}

/// File-system totals (Linux `struct kstatfs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kstatfs {
    /// Magic number (`linux/magic.h`).
    pub f_type: i64,
    /// Block size.
    pub bsize: u64,
    /// Blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Blocks free to unprivileged users.
    pub bavail: u64,
    /// Inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Longest name.
    pub namelen: u64,
}

/// What a mounted file system does as a whole (Linux `struct
/// super_operations` and `file_system_type`).
pub trait SuperOperations: Send + Sync {
    /// The type name `/proc/mounts` shows (`ext2`, `rootfs`, `tmpfs`).
    fn fs_type(&self) -> &'static str;
    /// The root directory.
    fn root(&self) -> Result<Arc<dyn FsInode>, Errno>;
    /// Totals (Linux `statfs`).
    fn statfs(&self) -> Kstatfs;
    /// Writes everything dirty back (Linux `sync_fs`); nothing to do for
    /// a file system in memory (Linux leaves the operation out).
    fn sync_fs(&self) -> Result<(), Errno> {
        Ok(())
    }
    /// Syncs and lets go of the device (Linux `put_super`); nothing is
    /// called on the file system afterwards. Nothing to do without one.
    fn put_super(&self) -> Result<(), Errno> {
        Ok(())
    }
    /// Whether lookups are worth caching in the dcache: not for a file
    /// system whose directories are themselves in memory, the default.
    fn cache_lookups(&self) -> bool {
        false
    }
    /// Objects of the file system's own caches that memory pressure
    /// could free (Linux `nr_cached_objects`). Read by reclaim at every
    /// pass: no lock, no sleep.
    fn nr_cached_objects(&self) -> u64 {
        0
    }
    /// Frees up to `nr_to_scan` of them and returns how many went (Linux
    /// `free_cached_objects`). Called by the superblock shrinker only when
    /// reclaim may enter file systems (`__GFP_FS`); allocates nothing.
    fn free_cached_objects(&self, nr_to_scan: u64) -> u64 {
        let _ = nr_to_scan;
        0
    }
}

/// A mounted file system instance (Linux `struct super_block`).
pub struct SuperBlock {
    /// Device number (`st_dev`).
    pub dev: u64,
    /// The file system.
    pub ops: Box<dyn SuperOperations>,
    /// Inode number -> the VFS inode while something uses it.
    icache: SpinLock<BTreeMap<Ino, Weak<Inode>>>,
    /// The lookup cache.
    pub dcache: Dcache,
    /// The write-back domain: dirty inodes and their flusher.
    pub wb: Arc<super::fs_writeback::BdiWriteback>,
}

impl SuperBlock {
    /// A superblock for `ops` on device `dev`.
    pub fn new(dev: u64, ops: Box<dyn SuperOperations>) -> Arc<SuperBlock> {
        let wb = super::fs_writeback::BdiWriteback::new(dev);
        Arc::new(SuperBlock { dev, ops, icache: SpinLock::new(BTreeMap::new()), dcache: Dcache::new(), wb })
    }

    /// The VFS inode for the file system's `fs_inode` (Linux `iget_locked`):
    /// the cached one if some user still holds it.
    pub fn iget(self: &Arc<SuperBlock>, fs_inode: Arc<dyn FsInode>) -> Arc<Inode> {
        let ino = fs_inode.ino();
        if let Some(inode) = self.icache_get(ino) {
            drop(fs_inode);
            return inode;
        }
        // A miss: the page cache is made outside the lock (it asks the
        // file system for the type, which may sleep), then the cache is
        // asked again in case another task was quicker.
        let i_mapping = new_mapping(self.dev, &*fs_inode);
        let new = Arc::new(Inode { sb: self.clone(), ino, ops: fs_inode, i_rwsem: Mutex::new(()), i_mapping });
        // What is dropped here may be the last reference to an inode (whose
        // drop takes this lock) or our unused `new` (whose drop may sleep):
        // both go after the lock.
        let mut icache = self.icache.lock();
        let cached = icache.get(&ino).and_then(Weak::upgrade);
        if let Some(inode) = cached.as_ref() {
            let inode = inode.clone();
            drop(icache);
            drop((cached, new));
            return inode;
        }
        icache.insert(ino, Arc::downgrade(&new));
        drop(icache);
        drop(cached);
        new
    }

    /// The cached inode `ino`, if something still uses it.
    fn icache_get(&self, ino: Ino) -> Option<Arc<Inode>> {
        let icache = self.icache.lock();
        let cached = icache.get(&ino).and_then(Weak::upgrade);
        drop(icache);
        cached
    }

    /// The inodes in use now, for a pass over their page caches
    /// (`drop_caches`); taken under the cache lock, used after it.
    pub fn cached_inodes(&self) -> Vec<Arc<Inode>> {
        let icache = self.icache.lock();
        let mut all = Vec::new();
        if all.try_reserve(icache.len()).is_ok() {
            all.extend(icache.values().filter_map(Weak::upgrade));
        }
        all
    }

    /// The root directory's VFS inode.
    pub fn root(self: &Arc<SuperBlock>) -> Result<Arc<Inode>, Errno> {
        Ok(self.iget(self.ops.root()?))
    }

    /// Name of the type, for reports.
    pub fn fs_type(&self) -> &'static str {
        self.ops.fs_type()
    }

    /// The device as `major:minor`.
    pub fn dev_name(&self) -> String {
        alloc::format!("{}:{}", self.dev >> 8, self.dev & 0xff)
    }
}

/// The VFS's inode (Linux `struct inode`): the file system's inode and
/// the lock writers take.
pub struct Inode {
    /// The page cache of a regular file whose file system has
    /// [`FileOperations::a_ops`] (Linux `i_mapping`): this inode's own,
    /// emptied when the inode goes, or a shmem file's, which lives as
    /// long as the file. Declared first so that it is dropped first: the
    /// cache empties before the file system and the superblock let go of
    /// the inode (Linux `evict` truncates before `evict_inode`).
    pub i_mapping: Option<Arc<Mapping>>,
    /// The file system it belongs to.
    pub sb: Arc<SuperBlock>,
    /// Its number.
    pub ino: Ino,
    /// The file system's operations on it.
    pub ops: Arc<dyn FsInode>,
    /// Linux `i_rwsem`: serializes writes, appends and truncation of the
    /// file (taken before the file system's own lock).
    pub i_rwsem: Mutex<()>,
}

/// A page cache for a regular file with page cache operations, on device
/// `dev` (the VFS inode does not exist yet: the cache is made first): a
/// shmem file's own, or a new one. Without memory for a new one, the file
/// is served by the file system directly, which is slower but correct
/// (one inode, one way, for its whole life).
fn new_mapping(dev: u64, fs_inode: &dyn FsInode) -> Option<Arc<Mapping>> {
    if let Some(shmem) = fs_inode.shmem() {
        return Some(shmem.mapping().clone());
    }
    fs_inode.a_ops()?;
    let st = fs_inode.getattr().ok().filter(Kstat::is_reg)?;
    let ino = fs_inode.ino();
    Mapping::new(dev, ino, false, st.size).map_err(|e| log::warn!("inode {ino}: no page cache: {e}")).ok()
}

impl Inode {
    /// Attributes, with the device filled in.
    pub fn getattr(&self) -> Result<Kstat, Errno> {
        let mut st = self.ops.getattr()?;
        if let Some(mapping) = self.i_mapping.as_ref() {
            // The VFS's size leads the file system's during a write.
            st.size = mapping.i_size();
        }
        Ok(st)
    }

    /// Whether both are the same inode.
    pub fn same(a: &Inode, b: &Inode) -> bool {
        Arc::ptr_eq(&a.sb, &b.sb) && a.ino == b.ino
    }
}

impl Drop for SuperBlock {
    /// The file system is gone: so is its flusher (nothing can be on its
    /// dirty list, which holds its inodes and so the superblock).
    fn drop(&mut self) {
        self.wb.shutdown();
    }
}

impl Drop for Inode {
    /// Leaves the inode cache (Linux `evict`). The page cache goes with
    /// its last reference: this inode's own is emptied right after this,
    /// before the other fields go (Linux `truncate_inode_pages_final`;
    /// an inode with dirty pages is on the dirty list, which holds it, so
    /// what is dropped then is clean or was never going to be written, a
    /// failed write-back); a shmem file keeps its own.
    fn drop(&mut self) {
        let mut icache = self.sb.icache.lock();
        if icache.get(&self.ino).is_some_and(|w| w.strong_count() == 0) {
            icache.remove(&self.ino);
        }
    }
}
