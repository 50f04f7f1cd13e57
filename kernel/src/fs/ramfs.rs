//! An in-memory file system: the root (Linux `init/do_mounts.c`'s rootfs,
//! a tmpfs that `init/initramfs.c` unpacks the initramfs into, see
//! [`super::initramfs`]), every `tmpfs` and `ramfs` mount (Linux
//! `fs/ramfs/inode.c`, `mm/shmem.c`'s name space half), and the kernel's
//! internal tmpfs of memfds and shared anonymous memory
//! ([`crate::shmem`]).
//!
//! Directories hold their entries as a map of name -> inode, so a path
//! walk needs no cache here. Where a regular file's bytes live is the
//! instance's [`Storage`]:
//! - a tmpfs's files, the rootfs's among them, are shmem files
//!   ([`Storage::Shmem`]): their data is their swapbacked page cache
//!   ([`crate::shmem::ShmemInode`]), which the VFS reads, writes and maps
//!   like any cached file, and which lives as long as the file here does
//!   (not as long as a VFS inode);
//! - a ramfs's ([`Storage::Heap`]) are maps of 4 KiB heap pages, holes
//!   missing (sparse files as tmpfs keeps them).
//!
//! Differences from Linux: a ramfs's file data is not in the page cache,
//! so `mmap` of a ramfs file is ENODEV and exec of one ENOEXEC; no size
//! or inode limits (`size=`, `nr_inodes=`), heap allocation failure is
//! ENOSPC as tmpfs gives.
//!
//! Locking: `ns_lock` (one per instance, sleeping; Linux's per-directory
//! `i_rwsem` plus `s_vfs_rename_mutex`) serializes every change to the
//! name space, so rename and rmdir see a stable tree; then a node's own
//! `data` mutex, parent before child, one directory at a time except
//! rename, which holds `ns_lock` and so cannot deadlock with another
//! locker of two. A shmem file's page cache and seals have their own
//! locks, taken after `data` when both are.

#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicU64, Ordering};

use formats::cpio::Entry;
use uapi::errno::Errno;
use uapi::stat::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};

use super::inode::{
    DirEntry, FileOperations, FsInode, Ino, InodeOperations, Kstat, Kstatfs, Owner, RenameFlags, SetAttr,
    SuperOperations, Timestamp, dt_of_mode,
};
use alloc::string::String;
use mm::memfd::Seals;

use crate::filemap::AddressSpaceOperations;
use crate::shmem::ShmemInode;
use crate::sync::Mutex;

/// Largest file (Linux `MAX_LFS_FILESIZE`; memory runs out long before).
const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// Most links to one inode (Linux tmpfs has no limit below `u32`).
const LINK_MAX: u32 = u32::MAX - 1;

/// Bytes per data page of a file.
const PAGE: usize = mm::PAGE_SIZE as usize;

/// Where an instance keeps its regular files' bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// Heap pages the file system keeps ([`FileData::Pages`]): ramfs.
    Heap,
    /// Shmem files ([`FileData::Shmem`]): tmpfs and the rootfs, mounted
    /// as device `dev` (which its files' page caches name).
    Shmem {
        /// The instance's device number.
        dev: u64,
    },
}

/// A file's bytes.
pub enum FileData {
    /// Pages by index; a missing page is a hole and reads as zeros.
    Pages {
        /// Index -> the page's bytes.
        pages: PageMap,
        /// The file's size.
        size: u64,
    },
    /// A shmem file: its page cache, which the VFS reads and writes, and
    /// its seals.
    Shmem(Arc<ShmemInode>),
}

/// A file's pages by index.
type PageMap = BTreeMap<u64, Box<[u8]>>;

/// A zeroed page, or ENOSPC (tmpfs's answer to a failed allocation).
fn new_page() -> Result<Box<[u8]>, Errno> {
    let mut v = Vec::new();
    v.try_reserve_exact(PAGE).map_err(|_| Errno::ENOSPC)?;
    v.resize(PAGE, 0);
    Ok(v.into_boxed_slice())
}

impl FileData {
    fn empty() -> FileData {
        FileData::Pages { pages: BTreeMap::new(), size: 0 }
    }

    fn size(&self) -> u64 {
        match self {
            FileData::Pages { size, .. } => *size,
            FileData::Shmem(shmem) => shmem.size(),
        }
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        // Bytes available at `offset`, up to the buffer's length.
        let len = buf.len();
        let available = |size: u64| len.min(size.saturating_sub(offset).min(usize::MAX as u64) as usize);
        match self {
            FileData::Shmem(shmem) => crate::shmem::shmem_file_read(shmem.mapping(), offset, buf),
            FileData::Pages { pages, size } => {
                let n = available(*size);
                let mut done = 0;
                while done < n {
                    let pos = offset + done as u64;
                    let (index, in_page) = (pos / PAGE as u64, (pos % PAGE as u64) as usize);
                    let k = (PAGE - in_page).min(n - done);
                    match pages.get(&index) {
                        Some(page) => buf[done..done + k].copy_from_slice(&page[in_page..in_page + k]),
                        None => buf[done..done + k].fill(0),
                    }
                    done += k;
                }
                Ok(n)
            }
        }
    }

    /// The pages; EINVAL for a shmem file, whose pages are its page
    /// cache.
    fn pages(&mut self) -> Result<(&mut PageMap, &mut u64), Errno> {
        match self {
            FileData::Pages { pages, size } => Ok((pages, size)),
            FileData::Shmem(_) => Err(Errno::EINVAL),
        }
    }

    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), Errno> {
        let (pages, size) = self.pages()?;
        let mut done = 0;
        while done < buf.len() {
            let pos = offset + done as u64;
            let (index, in_page) = (pos / PAGE as u64, (pos % PAGE as u64) as usize);
            let k = (PAGE - in_page).min(buf.len() - done);
            let page = match pages.entry(index) {
                alloc::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                alloc::collections::btree_map::Entry::Vacant(e) => e.insert(new_page()?),
            };
            page[in_page..in_page + k].copy_from_slice(&buf[done..done + k]);
            done += k;
            *size = (*size).max(pos + k as u64);
        }
        Ok(())
    }

    fn truncate(&mut self, new_size: u64) -> Result<(), Errno> {
        if let FileData::Shmem(shmem) = self {
            // The VFS drops the pages past a smaller size next.
            return shmem.set_size(new_size);
        }
        let (pages, size) = self.pages()?;
        if new_size < *size {
            let keep = new_size.div_ceil(PAGE as u64);
            let _gone = pages.split_off(&keep);
            let tail = (new_size % PAGE as u64) as usize;
            if tail != 0
                && let Some(page) = pages.get_mut(&(new_size / PAGE as u64))
            {
                page[tail..].fill(0);
            }
        }
        *size = new_size;
        Ok(())
    }

    fn allocated_sectors(&self) -> u64 {
        match self {
            FileData::Pages { pages, .. } => pages.len() as u64 * (PAGE as u64 / 512),
            // Pages in swap count, as Linux's `shmem_getattr` counts
            // `info->alloced`.
            FileData::Shmem(shmem) => {
                let mapping = shmem.mapping();
                (mapping.nrpages() + mapping.swapped()) * (PAGE as u64 / 512)
            }
        }
    }
}

enum Content {
    File(FileData),
    Dir {
        entries: BTreeMap<Vec<u8>, Arc<RamInode>>,
        parent: Weak<RamInode>,
    },
    Symlink(Vec<u8>),
    /// A device node, FIFO or socket: attributes only.
    Special,
}

struct RamData {
    mode: u32,
    nlink: u32,
    uid: u32,
    gid: u32,
    rdev: u64,
    atime: Timestamp,
    mtime: Timestamp,
    ctime: Timestamp,
    content: Content,
}

/// What the inodes of one instance share.
struct Shared {
    next_ino: AtomicU64,
    ns_lock: Mutex<()>,
    storage: Storage,
}

/// One inode of a ramfs.
pub struct RamInode {
    ino: Ino,
    /// Itself, for the parent pointers of new children and links.
    me: Weak<RamInode>,
    shared: Arc<Shared>,
    data: Mutex<RamData>,
}

/// A ramfs instance.
pub struct Ramfs {
    name: &'static str,
    magic: i64,
    root: Arc<RamInode>,
}

impl Ramfs {
    /// An empty instance whose root has `mode`, keeping file data in
    /// `storage`; `name` is its type for `/proc/mounts` and `magic` its
    /// `statfs` type.
    pub fn new(name: &'static str, magic: i64, mode: u32, storage: Storage) -> Ramfs {
        let shared = Arc::new(Shared { next_ino: AtomicU64::new(2), ns_lock: Mutex::new(()), storage });
        let now = super::current_time();
        let root = Arc::new_cyclic(|me| RamInode {
            ino: 1,
            me: me.clone(),
            shared,
            data: Mutex::new(RamData {
                mode: S_IFDIR | (mode & 0o7777),
                nlink: 2,
                uid: 0,
                gid: 0,
                rdev: 0,
                atime: now,
                mtime: now,
                ctime: now,
                content: Content::Dir { entries: BTreeMap::new(), parent: Weak::new() },
            }),
        });
        Ramfs { name, magic, root }
    }

    /// The root directory.
    pub fn root_inode(&self) -> Arc<RamInode> {
        self.root.clone()
    }
}

impl SuperOperations for Ramfs {
    fn fs_type(&self) -> &'static str {
        self.name
    }

    fn root(&self) -> Result<Arc<dyn FsInode>, Errno> {
        Ok(self.root.clone())
    }

    fn statfs(&self) -> Kstatfs {
        Kstatfs { f_type: self.magic, bsize: mm::PAGE_SIZE, namelen: uapi::fs::NAME_MAX as u64, ..Kstatfs::default() }
    }
}

fn ram(inode: &dyn FsInode) -> Result<&RamInode, Errno> {
    inode.as_any().downcast_ref::<RamInode>().ok_or(Errno::EXDEV)
}

impl RamInode {
    fn new_child(
        &self,
        mode: u32,
        owner: Owner,
        content: Content,
        parent_dir: Option<Weak<RamInode>>,
    ) -> Arc<RamInode> {
        let now = super::current_time();
        let mut content = content;
        if let (Content::Dir { parent, .. }, Some(p)) = (&mut content, parent_dir) {
            *parent = p;
        }
        Arc::new_cyclic(|me| RamInode {
            ino: self.shared.next_ino.fetch_add(1, Ordering::Relaxed),
            me: me.clone(),
            shared: self.shared.clone(),
            data: Mutex::new(RamData {
                mode,
                nlink: if mode & S_IFMT == S_IFDIR { 2 } else { 1 },
                uid: owner.uid,
                gid: owner.gid,
                rdev: 0,
                atime: now,
                mtime: now,
                ctime: now,
                content,
            }),
        })
    }

    /// Adds `child` as `name` under this directory; the caller holds
    /// `ns_lock`.
    fn add_entry_locked(&self, name: &[u8], child: Arc<RamInode>) -> Result<(), Errno> {
        let mut d = self.data.lock();
        let is_dir = child.data.lock().mode & S_IFMT == S_IFDIR;
        let Content::Dir { entries, .. } = &mut d.content else { return Err(Errno::ENOTDIR) };
        if entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let mut key = Vec::new();
        key.try_reserve_exact(name.len()).map_err(|_| Errno::ENOSPC)?;
        key.extend_from_slice(name);
        entries.insert(key, child);
        if is_dir {
            d.nlink += 1;
        }
        let now = super::current_time();
        d.mtime = now;
        d.ctime = now;
        Ok(())
    }

    fn entry(&self, name: &[u8]) -> Result<Arc<RamInode>, Errno> {
        match &self.data.lock().content {
            Content::Dir { entries, .. } => entries.get(name).cloned().ok_or(Errno::ENOENT),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn is_dir(&self) -> bool {
        self.data.lock().mode & S_IFMT == S_IFDIR
    }

    fn dir_is_empty(&self) -> bool {
        matches!(&self.data.lock().content, Content::Dir { entries, .. } if entries.is_empty())
    }

    /// Removes `name` from this directory; the caller holds `ns_lock`.
    fn remove_entry_locked(&self, name: &[u8]) -> Option<Arc<RamInode>> {
        let mut d = self.data.lock();
        let Content::Dir { entries, .. } = &mut d.content else { return None };
        let child = entries.remove(name)?;
        let now = super::current_time();
        d.mtime = now;
        d.ctime = now;
        drop(d);
        let was_dir = {
            let mut c = child.data.lock();
            if c.mode & S_IFMT == S_IFDIR {
                c.nlink = 0;
                true
            } else {
                c.nlink = c.nlink.saturating_sub(1);
                c.ctime = now;
                false
            }
        };
        if was_dir {
            self.data.lock().nlink -= 1;
        }
        Some(child)
    }

    /// Whether `self` is `other` or one of its ancestors.
    fn is_ancestor_of(self: &RamInode, other: &Arc<RamInode>) -> bool {
        let mut cur = Some(other.clone());
        while let Some(node) = cur {
            if node.ino == self.ino {
                return true;
            }
            cur = match &node.data.lock().content {
                Content::Dir { parent, .. } => parent.upgrade(),
                _ => None,
            };
        }
        false
    }

    fn set_parent(&self, parent: &Arc<RamInode>) {
        if let Content::Dir { parent: p, .. } = &mut self.data.lock().content {
            *p = Arc::downgrade(parent);
        }
    }

    /// Unpacks one initramfs entry below this root (Linux
    /// `init/initramfs.c` `do_name`): directories, regular files, symlinks
    /// and device nodes, with the entry's mode; parents must come first,
    /// as cpio archives list them. A regular file is made in no directory,
    /// a shmem file on a tmpfs instance, and handed to `fill` to be given
    /// its bytes (Linux `do_copy`); only once that succeeded is it linked,
    /// so a file that could not be filled leaves nothing behind.
    pub fn populate(
        self: &Arc<RamInode>,
        path: &str,
        entry: &Entry<'_>,
        fill: impl FnOnce(&Arc<RamInode>) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let mut dir = self.clone();
        let mut parts = path.split('/').filter(|c| !c.is_empty() && *c != ".");
        // The root itself (`.` in the archive) is there already.
        let Some(mut name) = parts.next() else { return Ok(()) };
        for next in parts {
            dir = dir.entry(name.as_bytes())?;
            name = next;
        }
        let mode = entry.mode;
        let content = match mode & S_IFMT {
            S_IFDIR => Content::Dir { entries: BTreeMap::new(), parent: Weak::new() },
            S_IFREG => Content::File(FileData::empty()),
            S_IFLNK => {
                let mut target = Vec::new();
                target.try_reserve_exact(entry.data.len()).map_err(|_| Errno::ENOSPC)?;
                target.extend_from_slice(entry.data);
                Content::Symlink(target)
            }
            _ => Content::Special,
        };
        let child = dir.new_child(mode, Owner::default(), content, Some(Arc::downgrade(&dir)));
        child.data.lock().rdev = (u64::from(entry.rdev.0) << 8) | u64::from(entry.rdev.1);
        if mode & S_IFMT == S_IFREG {
            // A tmpfs file takes no seals (Linux `shmem_get_inode`).
            dir.make_shmem(&child, Seals::SEAL, None)?;
            fill(&child)?;
        }
        // An entry listed twice (concatenated archives) replaces the first.
        let _ns = dir.shared.ns_lock.lock();
        if let Ok(old) = dir.entry(name.as_bytes()) {
            if old.is_dir() && mode & S_IFMT == S_IFDIR {
                return Ok(());
            }
            dir.remove_entry_locked(name.as_bytes());
        }
        dir.add_entry_locked(name.as_bytes(), child)
    }
}

impl InodeOperations for RamInode {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn ino(&self) -> Ino {
        self.ino
    }

    fn getattr(&self) -> Result<Kstat, Errno> {
        let d = self.data.lock();
        let size = match &d.content {
            Content::File(f) => f.size(),
            Content::Symlink(t) => t.len() as u64,
            Content::Dir { entries, .. } => (entries.len() as u64 + 2) * 20,
            Content::Special => 0,
        };
        let blocks = match &d.content {
            Content::File(f) => f.allocated_sectors(),
            _ => 0,
        };
        Ok(Kstat {
            ino: self.ino,
            mode: d.mode,
            nlink: d.nlink,
            uid: d.uid,
            gid: d.gid,
            rdev: d.rdev,
            size,
            blocks,
            blksize: mm::PAGE_SIZE as u32,
            atime: d.atime,
            mtime: d.mtime,
            ctime: d.ctime,
        })
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        let mut d = self.data.lock();
        if let Some(size) = attr.size {
            let Content::File(f) = &mut d.content else { return Err(Errno::EINVAL) };
            if size > MAX_FILE_SIZE {
                return Err(Errno::EFBIG);
            }
            f.truncate(size)?;
            d.mtime = super::current_time();
        }
        if let Some(mode) = attr.mode {
            d.mode = (d.mode & S_IFMT) | (mode & 0o7777);
        }
        if let Some(uid) = attr.uid {
            d.uid = uid;
        }
        if let Some(gid) = attr.gid {
            d.gid = gid;
        }
        if let Some(t) = attr.atime {
            d.atime = t;
        }
        if let Some(t) = attr.mtime {
            d.mtime = t;
        }
        d.ctime = super::current_time();
        Ok(())
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn FsInode>, Errno> {
        let d = self.data.lock();
        let Content::Dir { entries, parent } = &d.content else { return Err(Errno::ENOTDIR) };
        if name == b".." {
            // The root's parent is itself (the VFS crosses mounts before asking).
            return match parent.upgrade() {
                Some(p) => Ok(p),
                None => Err(Errno::ENOENT),
            };
        }
        entries.get(name).cloned().map(|c| c as Arc<dyn FsInode>).ok_or(Errno::ENOENT)
    }

    fn create(&self, name: &[u8], mode: u32, owner: Owner) -> Result<Arc<dyn FsInode>, Errno> {
        let _ns = self.shared.ns_lock.lock();
        let child = self.new_child(S_IFREG | (mode & 0o7777), owner, Content::File(FileData::empty()), None);
        // A tmpfs file takes no seals (Linux `shmem_get_inode`).
        self.make_shmem(&child, Seals::SEAL, None)?;
        self.add_entry_locked(name, child.clone())?;
        Ok(child)
    }

    fn mkdir(&self, name: &[u8], mode: u32, owner: Owner) -> Result<(), Errno> {
        let _ns = self.shared.ns_lock.lock();
        let parent = self.me.clone();
        let child = self.new_child(
            S_IFDIR | (mode & 0o7777),
            owner,
            Content::Dir { entries: BTreeMap::new(), parent: Weak::new() },
            Some(parent),
        );
        self.add_entry_locked(name, child)
    }

    fn symlink(&self, name: &[u8], target: &[u8], owner: Owner) -> Result<(), Errno> {
        let _ns = self.shared.ns_lock.lock();
        let mut t = Vec::new();
        t.try_reserve_exact(target.len()).map_err(|_| Errno::ENOSPC)?;
        t.extend_from_slice(target);
        let child = self.new_child(S_IFLNK | 0o777, owner, Content::Symlink(t), None);
        self.add_entry_locked(name, child)
    }

    fn mknod(&self, name: &[u8], mode: u32, rdev: u64, owner: Owner) -> Result<(), Errno> {
        let _ns = self.shared.ns_lock.lock();
        let child = self.new_child(mode, owner, Content::Special, None);
        child.data.lock().rdev = rdev;
        self.add_entry_locked(name, child)
    }

    fn link(&self, inode: &dyn FsInode, name: &[u8]) -> Result<(), Errno> {
        let target = ram(inode)?;
        let _ns = self.shared.ns_lock.lock();
        if !Arc::ptr_eq(&target.shared, &self.shared) {
            return Err(Errno::EXDEV);
        }
        let node = target.arc_of()?;
        {
            let mut d = node.data.lock();
            if d.mode & S_IFMT == S_IFDIR {
                return Err(Errno::EPERM);
            }
            if d.nlink == 0 {
                return Err(Errno::ENOENT);
            }
            if d.nlink >= LINK_MAX {
                return Err(Errno::EMLINK);
            }
            d.nlink += 1;
            d.ctime = super::current_time();
        }
        self.add_entry_locked(name, node.clone()).inspect_err(|_| node.data.lock().nlink -= 1)
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        let _ns = self.shared.ns_lock.lock();
        if self.entry(name)?.is_dir() {
            return Err(Errno::EISDIR);
        }
        self.remove_entry_locked(name).map(drop).ok_or(Errno::ENOENT)
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        let _ns = self.shared.ns_lock.lock();
        let child = self.entry(name)?;
        if !child.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if !child.dir_is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.remove_entry_locked(name).map(drop).ok_or(Errno::ENOENT)
    }

    fn rename(&self, old_name: &[u8], new_dir: &dyn FsInode, new_name: &[u8], flags: RenameFlags) -> Result<(), Errno> {
        let new_dir = ram(new_dir)?;
        let _ns = self.shared.ns_lock.lock();
        if !Arc::ptr_eq(&new_dir.shared, &self.shared) {
            return Err(Errno::EXDEV);
        }
        let old_parent = self.arc_of()?;
        let new_parent = new_dir.arc_of()?;
        let source = self.entry(old_name)?;
        let target = match new_dir.entry(new_name) {
            Ok(t) => Some(t),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        if flags.exchange {
            let target = target.ok_or(Errno::ENOENT)?;
            if source.is_dir() && source.is_ancestor_of(&new_parent)
                || target.is_dir() && target.is_ancestor_of(&old_parent)
            {
                return Err(Errno::EINVAL);
            }
            self.replace_entry_locked(old_name, target.clone())?;
            new_dir.replace_entry_locked(new_name, source.clone())?;
            let (sd, td) = (source.is_dir(), target.is_dir());
            if sd {
                source.set_parent(&new_parent);
            }
            if td {
                target.set_parent(&old_parent);
            }
            if sd != td && !Arc::ptr_eq(&old_parent, &new_parent) {
                let (gain, lose) = if sd { (&new_parent, &old_parent) } else { (&old_parent, &new_parent) };
                gain.data.lock().nlink += 1;
                lose.data.lock().nlink -= 1;
            }
            return Ok(());
        }
        if let Some(target) = &target {
            if flags.noreplace {
                return Err(Errno::EEXIST);
            }
            if Arc::ptr_eq(target, &source) {
                return Ok(());
            }
            match (source.is_dir(), target.is_dir()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !target.dir_is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        if source.is_dir() && source.is_ancestor_of(&new_parent) {
            return Err(Errno::EINVAL);
        }
        if target.is_some() {
            new_dir.remove_entry_locked(new_name);
        }
        let moved = self.remove_entry_locked(old_name).ok_or(Errno::ENOENT)?;
        {
            // remove_entry_locked counted the source as unlinked.
            let mut m = moved.data.lock();
            m.nlink = if m.mode & S_IFMT == S_IFDIR { 2 } else { m.nlink + 1 };
            m.ctime = super::current_time();
        }
        if moved.is_dir() {
            moved.set_parent(&new_parent);
        }
        new_dir.add_entry_locked(new_name, moved)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match &self.data.lock().content {
            Content::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }
}

impl RamInode {
    /// This inode as an `Arc` (ENOENT while it is being freed).
    fn arc_of(&self) -> Result<Arc<RamInode>, Errno> {
        self.me.upgrade().ok_or(Errno::ENOENT)
    }

    /// Replaces the inode `name` names; the caller holds `ns_lock`.
    fn replace_entry_locked(&self, name: &[u8], node: Arc<RamInode>) -> Result<(), Errno> {
        let mut d = self.data.lock();
        let Content::Dir { entries, .. } = &mut d.content else { return Err(Errno::ENOTDIR) };
        let slot = entries.get_mut(name).ok_or(Errno::ENOENT)?;
        *slot = node;
        d.ctime = super::current_time();
        Ok(())
    }
}

impl FileOperations for RamInode {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let d = self.data.lock();
        let Content::File(f) = &d.content else { return Err(Errno::EISDIR) };
        f.read(offset, buf)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        offset.checked_add(buf.len() as u64).filter(|&e| e <= MAX_FILE_SIZE).ok_or(Errno::EFBIG)?;
        let mut d = self.data.lock();
        let Content::File(f) = &mut d.content else { return Err(Errno::EISDIR) };
        f.write(offset, buf)?;
        let now = super::current_time();
        d.mtime = now;
        d.ctime = now;
        Ok(buf.len())
    }

    fn readdir(&self, pos: u64) -> Result<Option<(DirEntry, u64)>, Errno> {
        let d = self.data.lock();
        let Content::Dir { entries, parent } = &d.content else { return Err(Errno::ENOTDIR) };
        let entry = match pos {
            0 => DirEntry { ino: self.ino, d_type: uapi::fs::DT_DIR, name: b".".to_vec() },
            1 => {
                let ino = parent.upgrade().map_or(self.ino, |p| p.ino);
                DirEntry { ino, d_type: uapi::fs::DT_DIR, name: b"..".to_vec() }
            }
            // Positions past `..` are an index into the sorted entries:
            // stable while nothing changes, as Linux's dcache cursors are.
            n => match entries.iter().nth((n - 2) as usize) {
                Some((name, node)) => {
                    let mode = node.data.lock().mode;
                    DirEntry { ino: node.ino, d_type: dt_of_mode(mode), name: name.clone() }
                }
                None => return Ok(None),
            },
        };
        Ok(Some((entry, pos + 1)))
    }

    fn fsync(&self) -> Result<(), Errno> {
        Ok(())
    }

    fn a_ops(&self) -> Option<&dyn AddressSpaceOperations> {
        self.shmem().map(|_| self as &dyn AddressSpaceOperations)
    }

    fn shmem(&self) -> Option<Arc<ShmemInode>> {
        match &self.data.lock().content {
            Content::File(FileData::Shmem(shmem)) => Some(shmem.clone()),
            _ => None,
        }
    }
}

/// A shmem file's page-cache operations (Linux `shmem_aops` and
/// `shmem_write_begin`/`shmem_write_end`): only ever asked of a shmem
/// file, whose cache is its data.
impl AddressSpaceOperations for RamInode {
    /// A page not in the cache is a hole: zeros (Linux `shmem_get_folio`
    /// clearing a new folio).
    fn read_folio(&self, _index: u64, buf: &mut [u8]) -> Result<(), Errno> {
        buf.fill(0);
        Ok(())
    }

    /// Nothing to allocate beyond the pages (no size limit, so never
    /// ENOSPC); refused with EPERM by a write seal, or a grow seal past
    /// the end.
    fn write_begin(&self, pos: u64, len: u64) -> Result<(), Errno> {
        self.shmem().ok_or(Errno::EINVAL)?.check_write(pos, len)
    }

    /// The VFS has grown the size; the times change (Linux
    /// `file_update_time`).
    fn write_end(&self, _end: u64) -> Result<(), Errno> {
        let mut d = self.data.lock();
        let now = super::current_time();
        d.mtime = now;
        d.ctime = now;
        Ok(())
    }

    /// Never asked: a shmem file's pages are never written back (see
    /// [`crate::shmem`]); there is nothing to write them to.
    fn writepages(&self, _index: u64, _data: &[u8]) -> Result<(), Errno> {
        Ok(())
    }
}

/// A new instance of type `name` (`rootfs`, `ramfs` or `tmpfs`) keeping
/// file data in `storage`, as a superblock's operations.
pub fn new_instance(name: &'static str, magic: i64, mode: u32, storage: Storage) -> Box<Ramfs> {
    Box::new(Ramfs::new(name, magic, mode, storage))
}

impl RamInode {
    /// A regular file of mode `mode` in no directory (`nlink` 0), a shmem
    /// file with `seals` named `name`: a file the kernel makes for itself
    /// on its internal tmpfs (Linux `shmem_file_setup` on `shm_mnt`),
    /// alive while held. EINVAL on an instance without shmem files.
    pub fn new_unlinked_file(
        &self,
        mode: u32,
        owner: Owner,
        seals: Seals,
        name: String,
    ) -> Result<Arc<RamInode>, Errno> {
        let child = self.new_child(S_IFREG | (mode & 0o7777), owner, Content::File(FileData::empty()), None);
        if !self.make_shmem(&child, seals, Some(name))? {
            return Err(Errno::EINVAL);
        }
        child.data.lock().nlink = 0;
        Ok(child)
    }

    /// Makes the new regular file `child` a shmem file with `seals` on a
    /// tmpfs instance (its page cache names it by its inode number);
    /// whether it did (not on a rootfs or ramfs instance).
    fn make_shmem(&self, child: &RamInode, seals: Seals, name: Option<String>) -> Result<bool, Errno> {
        let Storage::Shmem { dev } = self.shared.storage else { return Ok(false) };
        let shmem = ShmemInode::new(dev, child.ino, seals, name)?;
        child.data.lock().content = Content::File(FileData::Shmem(shmem));
        Ok(true)
    }
}

impl RamInode {
    /// Makes directory `name` below this one unless it exists (boot).
    pub fn populate_dir(&self, name: &str) -> Result<(), Errno> {
        match self.mkdir(name.as_bytes(), 0o555, Owner::default()) {
            Err(Errno::EEXIST) => Ok(()),
            r => r,
        }
    }
}
