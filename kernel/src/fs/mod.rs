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
//! - File systems: [`ramfs`] (the root and `tmpfs`), [`ext2`] (the
//!   host-tested `ext2` crate under the VFS, reading ahead straight into
//!   the page cache through [`mpage`]); pseudo files: [`pipe`],
//!   [`proc_sysctl`] and the `/proc` texts of [`syscalls`].
//! - Devices: [`blkdev`] (disks by name, a RAM disk), [`loopdev`].
//!
//! [`init`] runs once at the end of boot: it parses the initramfs (the
//! newc cpio archive the bootloader loaded) and unpacks it into the root,
//! a ramfs (Linux `init/initramfs.c` `populate_rootfs` into rootfs). A
//! missing ramdisk leaves an empty root, as Linux boots without an
//! initramfs; a corrupt one is refused with the reason and the kernel
//! carries on without it, as Linux logs "Initramfs unpacking failed" for
//! a bad external initrd and continues. Then `mount=DEV:DIR` options of
//! the command line are mounted (ext2).
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

pub mod blkdev;
pub mod dcache;
pub mod ext2;
pub mod file;
pub mod fs_struct;
pub mod fs_writeback;
pub mod inode;
pub mod loopdev;
pub mod mpage;
pub mod namei;
pub mod namespace;
pub mod pipe;
pub mod proc_sysctl;
pub mod ramfs;
pub mod read_write;
pub mod syscalls;

use log::{info, warn};
use spin::Once;

/// The newc cpio format of the initramfs (the parser is the host-tested
/// `formats` crate's).
pub use formats::cpio;
pub use formats::cpio::{CpioError, Entry, Initramfs};

static INITRAMFS: Once<Initramfs<'static>> = Once::new();

/// The rootfs's device number (Linux gives rootfs an anonymous one).
const ROOTFS_DEV: u64 = 1;

/// Parses the ramdisk the bootloader loaded, if any, as the initramfs,
/// and unpacks it into the root file system.
pub fn init() {
    parse_initramfs();
    let rootfs = ramfs::new_instance("rootfs", uapi::fs::RAMFS_MAGIC, 0o755, ramfs::Storage::Heap);
    let root = rootfs.root_inode();
    let mut unpacked = 0usize;
    for f in file::ram_files() {
        match root.populate(&f.path, f) {
            Ok(()) => unpacked += 1,
            Err(e) => warn!("initramfs: cannot unpack {}: {e}", f.path),
        }
    }
    if let Err(e) = root.populate_dir("proc") {
        warn!("rootfs: cannot make /proc: {e}");
    }
    let sb = inode::SuperBlock::new(ROOTFS_DEV, rootfs);
    match namespace::mount_root(sb, "rootfs") {
        Ok(()) => info!("rootfs: {unpacked} initramfs entries unpacked"),
        Err(e) => warn!("rootfs: cannot mount the root: {e}"),
    }
    fs_writeback::start_flusher();
    mount_from_cmdline();
}

fn parse_initramfs() {
    let Some((addr, len)) = crate::boot::params().ramdisk else {
        info!("initramfs: no ramdisk loaded");
        return;
    };
    let Ok(len) = usize::try_from(len) else {
        warn!("initramfs: ramdisk of {len} bytes does not fit the address space; ignored");
        return;
    };
    // SAFETY: the bootloader mapped the `len` bytes at `addr` for the
    // kernel's lifetime; the kernel's page tables keep them mapped
    // read-only (arch pgtable::init) and mm reserves their frames, so
    // nothing writes to or frees them.
    let ramdisk: &'static [u8] = unsafe { core::slice::from_raw_parts(addr.as_ptr::<u8>(), len) };
    match Initramfs::parse(ramdisk) {
        Ok(initramfs) => {
            let (files, bytes) =
                initramfs.iter().filter(|(_, e)| e.is_file()).fold((0, 0), |(n, b), (_, e)| (n + 1, b + e.size));
            info!("initramfs: {files} files, {bytes} bytes ({} entries)", initramfs.len());
            INITRAMFS.call_once(|| initramfs);
        }
        Err(e) => warn!("initramfs: ramdisk refused: {e}; continuing without it"),
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
            .and_then(|target| namespace::do_mount(dev, target, "ext2", namespace::MountFlags::default()));
        match result {
            Ok(()) => info!("mount: {dev} on {dir} (ext2)"),
            Err(e) => warn!("mount: cannot mount {dev} on {dir}: {e}"),
        }
    }
}

/// The initramfs, if [`init`] found a valid one.
pub fn initramfs() -> Option<&'static Initramfs<'static>> {
    INITRAMFS.get()
}

/// The wall-clock time for file time stamps (Linux `current_time`).
pub fn current_time() -> inode::Timestamp {
    let ns = crate::drivers::rtc::ktime_get_real_ns();
    inode::Timestamp { sec: (ns / 1_000_000_000) as i64, nsec: (ns % 1_000_000_000) as u32 }
}
