//! `/dev` (Linux `drivers/base/devtmpfs.c`): one tmpfs instance of type
//! `devtmpfs` holding a node for every character device the kernel
//! serves ([`super::char_dev`]), made at boot, which every
//! `mount -t devtmpfs` shares (Linux mounts its one superblock each time).
//!
//! [`devtmpfs_mount`] runs at boot, after the rootfs is unpacked: it
//! mounts the instance on `/dev` (Linux's `devtmpfs_mount`, with
//! `CONFIG_DEVTMPFS_MOUNT`), then makes `/dev/shm` (mode 1777) in it and
//! mounts a tmpfs there, as a Linux system's init does for `shm_open`.
//!
//! The nodes, owned by root (Linux `devtmpfs_create_node` for each
//! `device_create`): `null` (1,3), `zero` (1,5), `full` (1,7), `random`
//! (1,8), `urandom` (1,9), all 0666 (`mem_devnode`); `tty` (5,0), 0666
//! (`tty_devnode`); `console` (5,1), 0600.
//!
//! Differences from Linux: the nodes are fixed at boot (no device comes
//! or goes later, so none is removed); disks have no nodes (`/dev/vda`
//! and the loop devices are found by name where a path names them,
//! [`super::blkdev`]); Linux mounts devtmpfs on `/dev` by itself only
//! when it mounts a root disk, and leaves it to an initramfs's init, who
//! also makes `/dev/shm`.

#![forbid(unsafe_code)]

use alloc::sync::Arc;

use log::{info, warn};
use spin::Once;
use uapi::errno::Errno;
use uapi::stat::S_IFCHR;

use super::char_dev::{TTYAUX_MAJOR, mkdev};
use super::inode::{InodeOperations, Owner, SuperBlock};
use super::namespace::{self, MountFlags};
use super::ramfs;
use crate::drivers::mem::{DEVLIST, MEM_MAJOR};

/// The instance (Linux devtmpfs's `mnt`), made once.
static DEVTMPFS: Once<Option<Arc<SuperBlock>>> = Once::new();

/// The devtmpfs superblock, made with its nodes on first use (Linux
/// `devtmpfs_init`); ENOMEM if it could not be.
pub fn devtmpfs_sb() -> Result<Arc<SuperBlock>, Errno> {
    DEVTMPFS
        .call_once(|| {
            let dev = namespace::get_anon_dev();
            let fs = ramfs::new_instance("devtmpfs", uapi::fs::TMPFS_MAGIC, 0o755, ramfs::Storage::Shmem { dev });
            let root = fs.root_inode();
            let root_owner = Owner::default();
            let mem = DEVLIST.iter().map(|&(minor, name, mode, _)| (name, mode, mkdev(MEM_MAJOR, minor)));
            let tty = [("tty", 0o666, mkdev(TTYAUX_MAJOR, 0)), ("console", 0o600, mkdev(TTYAUX_MAJOR, 1))];
            for (name, mode, rdev) in mem.chain(tty) {
                if let Err(e) = root.mknod(name.as_bytes(), S_IFCHR | mode, rdev, root_owner) {
                    warn!("devtmpfs: cannot make /dev/{name}: {e}");
                }
            }
            if let Err(e) = root.mkdir(b"shm", 0o1777, root_owner) {
                warn!("devtmpfs: cannot make /dev/shm: {e}");
            }
            Some(SuperBlock::new(dev, fs))
        })
        .clone()
        .ok_or(Errno::ENOMEM)
}

/// Mounts devtmpfs on `/dev` and a tmpfs on `/dev/shm` (boot, once the
/// root is mounted); a failure is logged and boot goes on.
pub fn devtmpfs_mount() {
    let mount = |source: &str, dir: &str, fstype: &str| {
        let result = namespace::root()
            .and_then(|root| super::namei::path_lookupat(&root, dir.as_bytes(), true))
            .and_then(|target| namespace::do_mount(source, target, fstype, MountFlags::default(), ""));
        match result {
            Ok(()) => info!("{fstype}: mounted on {dir}"),
            Err(e) => warn!("{fstype}: cannot mount on {dir}: {e}"),
        }
    };
    mount("devtmpfs", "/dev", "devtmpfs");
    mount("tmpfs", "/dev/shm", "tmpfs");
}
