//! File systems and the VFS (Linux `fs/`).
//!
//! - [`inode`]: inodes, superblocks and the operations a file system
//!   implements ([`inode::InodeOperations`], [`inode::FileOperations`],
//!   [`inode::SuperOperations`]); [`dcache`]: the lookup cache;
//!   [`namespace`]: mounts and paths; [`namei`]: path walk and the name
//!   space operations; [`read_write`]: the file data path, through the
//!   page cache for regular files; [`file`]: open files and descriptor tables;
//!   [`fs_struct`]: a process's working directory; [`fs_writeback`]: the
//!   dirty inodes of the page cache ([`crate::filemap`]) and the flusher
//!   thread; [`syscalls`]: the system calls.
//! - File systems: [`ramfs`] (the root, `tmpfs` and `ramfs`), [`ext2`] (the
//!   host-tested `ext2` crate under the VFS, reading ahead straight into
//!   the page cache through [`mpage`]); [`shrinker`]: what memory
//!   pressure takes back from their caches; pseudo files: [`pipe`],
//!   [`proc`] (the proc file system on `/proc`, with [`proc_sysctl`]'s
//!   table under `/proc/sys`).
//! - Devices: [`blkdev`] (disks by name, a RAM disk), [`loopdev`];
//!   [`char_dev`] (character devices by number) and [`devtmpfs`] (`/dev`).
//!
//! [`init`] runs once at the end of boot: it registers the superblock
//! shrinker, makes the root, a tmpfs
//! instance, and unpacks the initramfs the bootloader loaded into it,
//! then gives the ramdisk's memory back ([`initramfs`], Linux
//! `init/initramfs.c` `populate_rootfs`); mounts [`devtmpfs`] on `/dev`,
//! a tmpfs on `/dev/shm` and proc on `/proc`; then `mount=DEV:DIR`
//! options of the command line are mounted (ext2).
//!
//! # Lock order (outermost first)
//!
//! 1. an open file's `f_pos_lock` (sleeping);
//! 2. an inode's `i_rwsem` (sleeping, [`inode::Inode`]);
//! 3. the file system's lock: ext2's instance mutex or a ramfs's
//!    `ns_lock` then node mutexes (sleeping, held across I/O);
//! 4. the block device's own locks (a RAM disk's bytes);
//! 5. the inode cache and the dcache of a superblock (spin, leaf-like:
//!    never held across a file-system call);
//! 6. the mount table (spin, [`namespace`]);
//! 7. a block-device registry lookup (spin, [`blkdev`]).
//!
//! A process's `files` and `fs` spin locks are taken only to fetch or
//! install an open file or path, never across a file-system call.

// Only the unpacking of the initramfs reads raw memory (the ramdisk),
// and says so there.
#![deny(unsafe_code)]

pub mod blkdev;
pub mod char_dev;
pub mod dcache;
pub mod devtmpfs;
pub mod ext2;
pub mod file;
pub mod fs_struct;
pub mod fs_writeback;
pub mod initramfs;
pub mod inode;
pub mod loopdev;
pub mod mpage;
pub mod namei;
pub mod namespace;
pub mod pipe;
pub mod proc;
pub mod proc_sysctl;
pub mod ramfs;
pub mod read_write;
pub mod shrinker;
pub mod syscalls;

use log::{info, warn};

/// Makes the root file system from the initramfs and mounts what the
/// command line asks for.
pub fn init() {
    shrinker::register();
    initramfs::populate_rootfs();
    devtmpfs::devtmpfs_mount();
    mount_proc();
    mount_from_cmdline();
}

/// Mounts the proc file system on `/proc` (Linux leaves this to user
/// space's init).
fn mount_proc() {
    let result = namespace::root()
        .and_then(|root| namei::path_lookupat(&root, b"/proc", true))
        .and_then(|target| namespace::do_mount("proc", target, "proc", namespace::MountFlags::default(), ""));
    if let Err(e) = result {
        warn!("mount: cannot mount proc on /proc: {e}");
    }
}

/// Mounts each `mount=DEV:DIR` of the command line as ext2 (the
/// `root=`-like option of this kernel; Linux mounts only the root so).
fn mount_from_cmdline() {
    let Some(spec) = crate::cmdline::get("mount") else { return };
    for one in spec.split(',') {
        let Some((dev, dir)) = one.split_once(':') else {
            warn!("mount=: expected DEV:DIR, got {one}");
            continue;
        };
        let result = namespace::root()
            .and_then(|root| namei::path_lookupat(&root, dir.as_bytes(), true))
            .and_then(|target| namespace::do_mount(dev, target, "ext2", namespace::MountFlags::default(), ""));
        match result {
            Ok(()) => info!("mount: {dev} on {dir} (ext2)"),
            Err(e) => warn!("mount: cannot mount {dev} on {dir}: {e}"),
        }
    }
}

/// The wall-clock time for file time stamps (Linux `current_time`).
pub fn current_time() -> inode::Timestamp {
    let ns = crate::drivers::rtc::ktime_get_real_ns();
    inode::Timestamp { sec: (ns / 1_000_000_000) as i64, nsec: (ns % 1_000_000_000) as u32 }
}
