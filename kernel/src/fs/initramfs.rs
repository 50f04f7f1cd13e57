//! The rootfs and the initramfs unpacked into it (Linux
//! `init/initramfs.c` `populate_rootfs`, `unpack_to_rootfs`, `do_name`,
//! `do_copy` and `free_initrd`; `init/do_mounts.c` `init_rootfs`).
//!
//! The rootfs is a tmpfs instance, as Linux's is when it has tmpfs
//! (`rootfs_init_fs_context` calls `shmem_init_fs_context`): its regular
//! files are shmem files. [`populate_rootfs`] parses the ramdisk the
//! bootloader loaded as a newc cpio archive (the host-tested
//! `formats::cpio` parser validates all of it first) and makes each entry
//! in the root, parents first: directories, symbolic links and device
//! nodes with the archive's mode, and regular files whose bytes are
//! written through the page cache as `write(2)` writes (Linux `do_copy`'s
//! `xwrite`), into swapbacked pages counted in `Shmem:` and `Cached:`.
//! So exec and `mmap` of an initramfs program map its cached pages,
//! which every process running it shares, and a fault on one is minor
//! (Linux `shmem_fault` on a cached page): `pgmajfault` counts reads from
//! a disk only.
//!
//! A file that cannot be unpacked (no memory for its pages) is left out
//! with a warning naming it, and boot goes on; a file is linked into its
//! directory only once all its bytes are in. A missing ramdisk leaves an
//! empty root, as Linux boots without an initramfs; a corrupt one is
//! refused with the reason and nothing of it is unpacked, as Linux logs
//! "Initramfs unpacking failed" for a bad external initrd and goes on.
//!
//! Then the ramdisk is done with, good or bad: its mapping is taken down
//! and its frames go to the buddy allocator ([`crate::mm::free_initrd_mem`],
//! Linux `free_initrd_mem`, logging `Freeing initrd memory: NK`), so
//! nothing reads the archive after boot.
//!
//! Differences from Linux: the archive is parsed whole before anything is
//! unpacked (Linux unpacks as it parses, and keeps what came before a bad
//! header); owners are root and times the boot's (Linux applies the
//! archive's uid, gid and mtime); hard links are separate files;
//! compressed archives are refused.

// The one `unsafe`: the ramdisk as a byte slice, see `unpack_to_rootfs`.
#![allow(unsafe_code)]

use alloc::sync::Arc;

use formats::cpio::Initramfs;
use log::{info, warn};
use uapi::errno::Errno;

use super::inode::{Inode, SuperBlock};
use super::namespace;
use super::ramfs::{self, RamInode};
use super::read_write::file_write_iter;
use crate::boot::Ramdisk;

/// The rootfs's device number (Linux gives rootfs an anonymous one; ours
/// are numbered from 2).
const ROOTFS_DEV: u64 = 1;

/// Makes the rootfs, unpacks the initramfs into it, frees the ramdisk
/// and mounts the rootfs as `/` (boot, once).
pub fn populate_rootfs() {
    let storage = ramfs::Storage::Shmem { dev: ROOTFS_DEV };
    let rootfs = ramfs::new_instance("rootfs", uapi::fs::TMPFS_MAGIC, 0o755, storage);
    let root = rootfs.root_inode();
    let sb = SuperBlock::new(ROOTFS_DEV, rootfs);
    match crate::boot::params().ramdisk {
        Some(rd) => {
            unpack_to_rootfs(&rd, &root, &sb);
            // SAFETY: `unpack_to_rootfs` returned, and with it every
            // reference into the ramdisk: the files hold copies.
            unsafe { crate::mm::free_initrd_mem(&rd) };
        }
        None => info!("initramfs: no ramdisk loaded"),
    }
    for dir in ["proc", "dev"] {
        if let Err(e) = root.populate_dir(dir) {
            warn!("rootfs: cannot make /{dir}: {e}");
        }
    }
    if let Err(e) = namespace::mount_root(sb, "rootfs") {
        warn!("rootfs: cannot mount the root: {e}");
    }
}

/// Parses the ramdisk `rd` and unpacks every entry below `root`, whose
/// superblock is `sb` (Linux `unpack_to_rootfs`).
fn unpack_to_rootfs(rd: &Ramdisk, root: &Arc<RamInode>, sb: &Arc<SuperBlock>) {
    let Ok(len) = usize::try_from(rd.len) else {
        warn!("initramfs: ramdisk of {} bytes does not fit the address space; ignored", rd.len);
        return;
    };
    // SAFETY: the bootloader mapped the `len` bytes at `rd.virt`; the
    // kernel's page tables keep them mapped read-only (arch pgtable::init)
    // and mm keeps their frames reserved until `free_initrd_mem`, which
    // runs only after this function, and so this borrow, has ended.
    let ramdisk: &[u8] = unsafe { core::slice::from_raw_parts(rd.virt.as_ptr::<u8>(), len) };
    let initramfs = match Initramfs::parse(ramdisk) {
        Ok(initramfs) => initramfs,
        Err(e) => {
            warn!("initramfs: ramdisk refused: {e}; continuing without it");
            return;
        }
    };
    let (files, bytes) =
        initramfs.iter().filter(|(_, e)| e.is_file()).fold((0, 0), |(n, b), (_, e)| (n + 1, b + e.size));
    info!("initramfs: {files} files, {bytes} bytes ({} entries)", initramfs.len());
    let mut unpacked = 0usize;
    for (path, entry) in initramfs.iter() {
        let fill = |node: &Arc<RamInode>| do_copy(&sb.iget(node.clone()), entry.data);
        match root.populate(path, entry, fill) {
            Ok(()) => unpacked += 1,
            Err(e) => warn!("initramfs: cannot unpack {path} ({} bytes): {e}; left out", entry.size),
        }
    }
    info!("rootfs: {unpacked} initramfs entries unpacked");
}

/// Writes `data` into the new file `inode` from its start, through its
/// page cache (Linux `do_copy`).
fn do_copy(inode: &Arc<Inode>, data: &[u8]) -> Result<(), Errno> {
    let mut done = 0;
    while let Some(rest) = data.get(done..).filter(|rest| !rest.is_empty()) {
        let (n, _) = file_write_iter(inode, done as u64, rest, false)?;
        if n == 0 {
            // Nothing taken and no error: treat it as a full file system.
            return Err(Errno::ENOSPC);
        }
        done += n;
    }
    Ok(())
}
