//! Mounts (Linux `fs/namespace.c`, `fs/proc_namespace.c`): the table of
//! mounted file systems, each attached at a directory of another, and
//! [`Path`], a place in the tree (Linux `struct path`: a mount and an
//! inode).
//!
//! The first mount is the root (the rootfs unpacked from the initramfs,
//! [`super::init`]); every later one covers a directory, its mount point.
//! Path walk steps from a mount point into the mount on it
//! ([`lookup_mnt`]), and from a mount's root back to its mount point for
//! `..` ([`super::namei`]).
//!
//! `umount2` refuses a busy mount (EBUSY): one that an open file, a
//! working directory, a loop device's backing file or another mount
//! still uses, counted by the references to the [`Mount`] those hold.
//!
//! Differences from Linux: one mount name space; no bind, move, remount
//! or propagation (`MS_BIND`, `MS_MOVE`, `MS_REMOUNT`, shared subtrees are
//! EINVAL); `MNT_DETACH` unmounts only what is not busy (EBUSY
//! otherwise, where Linux detaches at once and finishes later);
//! `/proc/mounts` lists `rw` or `ro` and no other options.
//!
//! Locking: the mount table is a spin lock, the last in `fs/mod.rs`'s
//! order; it is never held across file-system calls.

#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicU32, Ordering};

use uapi::errno::Errno;

use super::inode::{Inode, SuperBlock};
use crate::sync::SpinLock;

/// A mounted file system (Linux `struct mount`/`vfsmount`).
pub struct Mount {
    /// Mount id (`/proc/self/mountinfo`'s first field, statx's `stx_mnt_id`).
    pub id: u32,
    /// The file system.
    pub sb: Arc<SuperBlock>,
    /// Its root directory.
    pub root: Arc<Inode>,
    /// Where it is attached; `None` for the root mount.
    pub mountpoint: Option<Path>,
    /// The source as given to mount (`/dev/loop0`, `tmpfs`).
    pub source: String,
    /// The mount point's path when mounted.
    pub target: String,
    /// `MS_RDONLY`.
    pub read_only: bool,
}

/// A place in the tree (Linux `struct path`).
#[derive(Clone)]
pub struct Path {
    /// The mount it is in.
    pub mnt: Arc<Mount>,
    /// The inode.
    pub inode: Arc<Inode>,
}

impl Path {
    /// Whether this is the root of its mount.
    pub fn is_mnt_root(&self) -> bool {
        Inode::same(&self.inode, &self.mnt.root)
    }

    /// Whether both name the same place.
    pub fn same(a: &Path, b: &Path) -> bool {
        Arc::ptr_eq(&a.mnt, &b.mnt) && Inode::same(&a.inode, &b.inode)
    }

    /// EROFS if the mount is read-only (Linux `mnt_want_write`).
    pub fn want_write(&self) -> Result<(), Errno> {
        if self.mnt.read_only { Err(Errno::EROFS) } else { Ok(()) }
    }
}

static MOUNTS: SpinLock<Vec<Arc<Mount>>> = SpinLock::new(Vec::new());

static NEXT_MNT_ID: AtomicU32 = AtomicU32::new(1);

/// The root of the tree (Linux `current->fs->root`; there is no chroot).
pub fn root() -> Result<Path, Errno> {
    let mounts = MOUNTS.lock();
    let root = mounts.first().ok_or(Errno::ENOENT)?;
    Ok(Path { mnt: root.clone(), inode: root.root.clone() })
}

/// Makes `sb` the root mount (boot).
pub fn mount_root(sb: Arc<SuperBlock>, source: &str) -> Result<(), Errno> {
    let root = sb.root()?;
    let mnt = Mount {
        id: NEXT_MNT_ID.fetch_add(1, Ordering::Relaxed),
        sb,
        root,
        mountpoint: None,
        source: String::from(source),
        target: String::from("/"),
        read_only: false,
    };
    let mut mounts = MOUNTS.lock();
    if !mounts.is_empty() {
        return Err(Errno::EBUSY);
    }
    mounts.push(Arc::new(mnt));
    Ok(())
}

/// The mount attached at `path`, if any (Linux `lookup_mnt`; the last
/// mounted wins where several are stacked).
pub fn lookup_mnt(path: &Path) -> Option<Arc<Mount>> {
    MOUNTS.lock().iter().rev().find(|m| m.mountpoint.as_ref().is_some_and(|mp| Path::same(mp, path))).cloned()
}

/// Attaches `sb` at `target` (Linux `do_new_mount` + `graft_tree`);
/// `target_name` is the path `/proc/mounts` shows.
pub fn do_add_mount(
    sb: Arc<SuperBlock>,
    target: Path,
    target_name: String,
    source: &str,
    read_only: bool,
) -> Result<(), Errno> {
    if !target.inode.getattr()?.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let root = sb.root()?;
    let mnt = Arc::new(Mount {
        id: NEXT_MNT_ID.fetch_add(1, Ordering::Relaxed),
        sb,
        root,
        mountpoint: Some(target),
        source: String::from(source),
        target: target_name,
        read_only,
    });
    let mut mounts = MOUNTS.lock();
    mounts.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
    mounts.push(mnt);
    Ok(())
}

/// Whether a mount of `source` exists (a disk is mounted once).
pub fn source_mounted(source: &str) -> bool {
    MOUNTS.lock().iter().any(|m| m.source == source)
}

/// Detaches the mount whose root `path` is (Linux `do_umount`): EINVAL
/// if `path` is not a mount's root, EBUSY for the root mount or a mount
/// still in use. The file system is synced and released
/// ([`super::inode::SuperOperations::put_super`]); an error there is
/// logged and returned, the mount being gone all the same.
pub fn do_umount(path: Path) -> Result<(), Errno> {
    if !path.is_mnt_root() {
        return Err(Errno::EINVAL);
    }
    let mnt = {
        let mut mounts = MOUNTS.lock();
        let i = mounts.iter().position(|m| Arc::ptr_eq(m, &path.mnt)).ok_or(Errno::EINVAL)?;
        if path.mnt.mountpoint.is_none() {
            return Err(Errno::EBUSY);
        }
        // The table's reference and the caller's `path`; anything more is
        // a user (open file, cwd, loop device, a mount on top of it).
        if Arc::strong_count(&path.mnt) > 2 {
            return Err(Errno::EBUSY);
        }
        mounts.remove(i)
    };
    drop(path);
    let written = super::fs_writeback::sync_inodes_sb(&mnt.sb);
    mnt.sb.dcache.clear();
    let result = written.and(mnt.sb.ops.put_super());
    drop(mnt);
    result
}

/// Syncs every mounted file system (Linux `ksys_sync`); the first error
/// is returned after all have been tried.
pub fn sync_all() -> Result<(), Errno> {
    let mut result = super::fs_writeback::sync_all_inodes();
    let mounts: Vec<Arc<Mount>> = MOUNTS.lock().clone();
    for m in mounts {
        if let Err(e) = m.sb.ops.sync_fs()
            && result.is_ok()
        {
            result = Err(e);
        }
    }
    result
}

/// The mounted file systems, each once (Linux `iterate_supers`).
pub fn superblocks() -> Vec<Arc<SuperBlock>> {
    let mounts = MOUNTS.lock();
    let mut sbs: Vec<Arc<SuperBlock>> = Vec::new();
    if sbs.try_reserve(mounts.len()).is_err() {
        return sbs;
    }
    for m in mounts.iter() {
        if !sbs.iter().any(|sb| Arc::ptr_eq(sb, &m.sb)) {
            sbs.push(m.sb.clone());
        }
    }
    sbs
}

/// The superblock of the `i`th mount, if there is one: the superblock
/// shrinker's way through the mounts, which may not allocate (a
/// superblock mounted twice comes twice).
pub fn superblock_at(i: usize) -> Option<Arc<SuperBlock>> {
    MOUNTS.lock().get(i).map(|m| m.sb.clone())
}

/// Runs `f` on the superblock of every mount under the mount table's
/// lock (a spin lock: `f` must not sleep or take a lock ordered before
/// the mount table, see `fs/mod.rs`).
pub fn for_each_superblock_locked(mut f: impl FnMut(&SuperBlock)) {
    for m in MOUNTS.lock().iter() {
        f(&m.sb);
    }
}

/// `/proc/mounts` (Linux `show_vfsmnt`): `source target type options 0 0`.
pub fn proc_mounts() -> String {
    let mut s = String::new();
    for m in MOUNTS.lock().iter() {
        let opts = if m.read_only { "ro" } else { "rw" };
        let _ = writeln!(s, "{} {} {} {opts} 0 0", m.source, m.target, m.sb.fs_type());
    }
    s
}

/// Every mount, root first.
pub fn mounts() -> Vec<Arc<Mount>> {
    MOUNTS.lock().clone()
}

/// Mount flags, validated (Linux `path_mount`'s flag handling, for what
/// this kernel supports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountFlags {
    /// `MS_RDONLY`.
    pub read_only: bool,
}

impl MountFlags {
    /// Checks `mount(2)`'s flags: the old magic in the upper half is
    /// dropped (Linux `MS_MGC_VAL`), flags that only tune behaviour we do
    /// not have are accepted, and operations we lack (remount, bind,
    /// move, propagation) are EINVAL.
    pub fn from_user(flags: u64) -> Result<MountFlags, Errno> {
        use uapi::fs::*;
        let flags = if flags & MS_MGC_MSK == MS_MGC_VAL { flags & !MS_MGC_MSK } else { flags };
        const ACCEPTED: u64 = MS_RDONLY
            | MS_NOSUID
            | MS_NODEV
            | MS_NOEXEC
            | MS_SYNCHRONOUS
            | MS_NOATIME
            | MS_NODIRATIME
            | MS_SILENT
            | MS_RELATIME;
        if flags & !ACCEPTED != 0 {
            return Err(Errno::EINVAL);
        }
        Ok(MountFlags { read_only: flags & MS_RDONLY != 0 })
    }
}

/// Anonymous device numbers (Linux `get_anon_bdev`), major 0.
static NEXT_ANON_DEV: AtomicU32 = AtomicU32::new(2);

/// A new anonymous device number, for a file system on no device (Linux
/// `get_anon_bdev`).
pub fn get_anon_dev() -> u64 {
    u64::from(NEXT_ANON_DEV.fetch_add(1, Ordering::Relaxed))
}

/// A mount of `sb` attached nowhere and outside the table, for files the
/// kernel makes for itself (Linux `kern_mount`, as shmem's `shm_mnt`):
/// no path leads into it, `/proc/mounts`, `sync` and `umount` never meet
/// it, and its files are reached only through what holds them.
pub fn kern_mount(sb: Arc<SuperBlock>, source: &str) -> Result<Arc<Mount>, Errno> {
    let root = sb.root()?;
    Ok(Arc::new(Mount {
        id: NEXT_MNT_ID.fetch_add(1, Ordering::Relaxed),
        sb,
        root,
        mountpoint: None,
        source: String::from(source),
        target: String::new(),
        read_only: false,
    }))
}

/// Mounts a file system of type `fstype` from `source` on the directory
/// `target` (Linux `do_new_mount`): `ext2` needs a block device
/// ([`super::blkdev::lookup_path`]; ENOENT without one, EBUSY if it is
/// mounted already or holds a swap area), `tmpfs` and `ramfs` make an
/// empty instance, `tmpfs` with the options of `data`
/// ([`TmpfsOptions`]), `devtmpfs` mounts the one instance of
/// [`super::devtmpfs`], `proc` a view of the proc file system
/// ([`super::proc`]); any other type is ENODEV. `data` is ignored by the
/// other types.
pub fn do_mount(source: &str, target: Path, fstype: &str, flags: MountFlags, data: &str) -> Result<(), Errno> {
    let target_name = super::namei::d_path(&target)?;
    if !target.inode.getattr()?.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let sb = match fstype {
        "ext2" => {
            let (dev, devt) = super::blkdev::lookup_path(source)?;
            // A disk holding a swap area is claimed (Linux's exclusive
            // open of the block device fails).
            let swap = crate::block::disk_by_name(source).is_some_and(|d| crate::swapfile::disk_is_swap(&d));
            if source_mounted(source) || swap {
                return Err(Errno::EBUSY);
            }
            let name = source.strip_prefix("/dev/").unwrap_or(source);
            SuperBlock::new(devt, super::ext2::mount(name, dev, flags.read_only)?)
        }
        "tmpfs" => {
            let options = TmpfsOptions::parse(data)?;
            let dev = get_anon_dev();
            let storage = super::ramfs::Storage::Shmem { dev };
            let fs = super::ramfs::new_instance("tmpfs", uapi::fs::TMPFS_MAGIC, 0o1777, storage);
            options.apply(&*fs.root_inode())?;
            SuperBlock::new(dev, fs)
        }
        "devtmpfs" => super::devtmpfs::devtmpfs_sb()?,
        "ramfs" => SuperBlock::new(
            get_anon_dev(),
            super::ramfs::new_instance("ramfs", uapi::fs::RAMFS_MAGIC, 0o1777, super::ramfs::Storage::Heap),
        ),
        "proc" => SuperBlock::new(get_anon_dev(), super::proc::new_instance()),
        _ => return Err(Errno::ENODEV),
    };
    let result = do_add_mount(sb.clone(), target, target_name, source, flags.read_only);
    if result.is_err() {
        let _ = sb.ops.put_super();
    }
    result
}

/// The options of a `tmpfs` mount (Linux `shmem_fs_parameters`), from
/// `mount(2)`'s data: `mode=`, `uid=` and `gid=` set the root directory's
/// (mode 1777, root's otherwise); `size=`, `nr_blocks=`, `nr_inodes=`,
/// `huge=`, `mpol=`, `noswap`, `inode32` and `inode64` are accepted and
/// have no effect (no limits here, see [`crate::shmem`]). Any other
/// option, or a value that is not a number where one is needed, is
/// EINVAL, as Linux's "tmpfs: Unknown parameter" and "Bad value".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TmpfsOptions {
    /// `mode=`: the root's permission bits (octal).
    pub mode: Option<u32>,
    /// `uid=`: the root's owner.
    pub uid: Option<u32>,
    /// `gid=`: the root's group.
    pub gid: Option<u32>,
}

impl TmpfsOptions {
    /// Parses comma-separated options (Linux `shmem_parse_one`).
    pub fn parse(data: &str) -> Result<TmpfsOptions, Errno> {
        let mut options = TmpfsOptions::default();
        for option in data.split(',').filter(|o| !o.is_empty()) {
            let (key, value) = option.split_once('=').map_or((option, None), |(k, v)| (k, Some(v)));
            let number =
                |v: Option<&str>, radix| v.and_then(|v| u32::from_str_radix(v, radix).ok()).ok_or(Errno::EINVAL);
            match key {
                "mode" => options.mode = Some(number(value, 8)? & 0o7777),
                "uid" => options.uid = Some(number(value, 10)?),
                "gid" => options.gid = Some(number(value, 10)?),
                "size" | "nr_blocks" | "nr_inodes" => size_value(value.ok_or(Errno::EINVAL)?)?,
                "huge" | "mpol" if value.is_some() => {}
                "noswap" | "inode32" | "inode64" if value.is_none() => {}
                _ => return Err(Errno::EINVAL),
            }
        }
        Ok(options)
    }

    /// Gives the new instance's root the options' mode and owner.
    fn apply(&self, root: &dyn super::inode::InodeOperations) -> Result<(), Errno> {
        if *self == TmpfsOptions::default() {
            return Ok(());
        }
        root.setattr(&super::inode::SetAttr { mode: self.mode, uid: self.uid, gid: self.gid, ..Default::default() })
    }
}

/// Checks a `size=`-like value: a number with an optional `k`, `m`, `g`,
/// `t`, `p`, `e` suffix or a `%` (Linux `memparse` and the percentage of
/// `size=`).
fn size_value(value: &str) -> Result<(), Errno> {
    let digits = value.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G', 't', 'T', 'p', 'P', 'e', 'E', '%']);
    if digits.is_empty() || value.len() - digits.len() > 1 || digits.parse::<u64>().is_err() {
        return Err(Errno::EINVAL);
    }
    Ok(())
}
