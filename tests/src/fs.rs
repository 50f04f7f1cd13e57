//! The VFS, the rootfs, tmpfs and ext2 on loop and RAM disks: the
//! user-space file test (tests/user/file_test.c, which also passes on
//! Linux) on each file system, and the cases a user program cannot set
//! up: large sparse files, corrupt images, persistence across unmount.
//!
//! ext2 also runs on the virtio disk (`/dev/vda`, through the block
//! layer); what the kernel wrote there is judged by the host's
//! `e2fsck -fn` and `debugfs` after the test (xtask/src/diskcheck.rs).
//! That disk can come prepared by the host's mke2fs from a tree of
//! tests/disks/ (`disk_tree`), and can fail one file's data block
//! (`disk_eio_file`), which a program must see as EIO.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use kernel::fs::blkdev::{self, RamDisk};
use kernel::fs::namei;
use kernel::fs::namespace::{self, MountFlags};
use kernel::fs::syscalls::{kern, kern_path};
use kernel::process::run_user;
use ktest_macros::ktest;
use uapi::errno::Errno;

/// The ext2 image xtask puts in the initramfs (1 KiB blocks).
const IMAGE: &str = "/etc/ext2-1k.img";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh directory below the root.
fn fresh_dir(what: &str) -> String {
    let dir = format!("/{what}{}", NEXT.fetch_add(1, Ordering::Relaxed));
    kern::mkdir(&dir).unwrap_or_else(|e| panic!("mkdir {dir}: {e:?}"));
    dir
}

/// A copy of the test image on a new loop device, mounted on a fresh
/// directory; returns (device, mount point).
fn mount_ext2_copy() -> (String, String) {
    let image = kern::read_file(IMAGE).expect("the initramfs holds the ext2 image");
    let copy = format!("/ext2-{}.img", NEXT.fetch_add(1, Ordering::Relaxed));
    kern::write_file(&copy, &image).expect("copying the image");
    let dev = kern::losetup(&copy).expect("losetup");
    let dir = fresh_dir("mnt-ext2-");
    kern::mount(&dev, &dir, "ext2", false).unwrap_or_else(|e| panic!("mount {dev} on {dir}: {e:?}"));
    (dev, dir)
}

fn run_file_test(dir: &str, mode: Option<&str>) {
    let mut argv = alloc::vec!["/bin/file_test", dir];
    argv.extend(mode);
    let (status, out) = run_user("/bin/file_test", &argv).expect("running file_test");
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(status == 0 && out.contains("PASS file_test"), "file_test in {dir}: status {status:#x}\n{out}");
}

/// Boot mounts devtmpfs on /dev with its device nodes and a tmpfs on
/// /dev/shm; `mount -t devtmpfs` elsewhere shows the same instance, and a
/// tmpfs takes Linux's options (an unknown one is EINVAL).
#[ktest]
fn dev_is_devtmpfs_with_a_tmpfs_on_dev_shm() {
    let mounts = namespace::proc_mounts();
    assert!(mounts.contains("devtmpfs /dev devtmpfs rw 0 0\n"), "{mounts}");
    assert!(mounts.contains("tmpfs /dev/shm tmpfs rw 0 0\n"), "{mounts}");
    let null = kern_path("/dev/null").expect("/dev/null").inode.getattr().expect("stat");
    assert_eq!((null.mode, null.rdev), (uapi::stat::S_IFCHR | 0o666, (1 << 8) | 3), "/dev/null");
    let dir = fresh_dir("devtmpfs-");
    kern::mount("devtmpfs", &dir, "devtmpfs", false).expect("mount devtmpfs again");
    let zero = kern_path(&format!("{dir}/zero")).expect("zero in the second mount").inode;
    assert!(zero.sb.dev == kern_path("/dev/zero").expect("/dev/zero").inode.sb.dev, "one instance");
    drop(zero);
    kern::umount(&dir).expect("umount");
    let target = || kern_path(&dir).expect("the directory");
    let flags = namespace::MountFlags::default();
    assert_eq!(namespace::do_mount("tmpfs", target(), "tmpfs", flags, "size=1m,bogus"), Err(Errno::EINVAL));
    namespace::do_mount("tmpfs", target(), "tmpfs", flags, "size=50%,mode=700,uid=5").expect("tmpfs options");
    let root = kern_path(&dir).expect("the tmpfs root").inode.getattr().expect("stat");
    assert_eq!((root.mode & 0o7777, root.uid), (0o700, 5), "mode= and uid= set the root");
    kern::umount(&dir).expect("umount the tmpfs");
}

#[ktest]
fn rootfs_is_the_initramfs_unpacked_and_writable() {
    assert_eq!(kern::read_file("/etc/initramfs-check").map(|d| d.len()), Ok(12_345));
    let dir = fresh_dir("rootfs-");
    let file = format!("{dir}/note");
    kern::write_file(&file, b"written at run time").expect("a file in the root");
    assert_eq!(kern::read_file(&file).as_deref(), Ok(&b"written at run time"[..]));
    assert!(namespace::proc_mounts().starts_with("rootfs / rootfs rw 0 0\n"), "{}", namespace::proc_mounts());
    let (status, _) = run_user("/bin/hello", &["hello"]).expect("exec from the rootfs");
    assert_eq!(status, 0, "programs still run from the rootfs");
}

#[ktest]
fn file_test_passes_on_the_rootfs() {
    run_file_test("/", None);
}

#[ktest]
fn file_test_passes_on_tmpfs() {
    let dir = fresh_dir("tmpfs-");
    kern::mount("tmpfs", &dir, "tmpfs", false).expect("mount tmpfs");
    run_file_test(&dir, None);
    kern::umount(&dir).expect("umount tmpfs");
}

#[ktest(timeout = 300)]
fn file_test_passes_on_ext2_over_a_loop_device() {
    let (dev, dir) = mount_ext2_copy();
    assert!(namespace::proc_mounts().contains(&format!("{dev} {dir} ext2 rw 0 0")), "{}", namespace::proc_mounts());
    assert_eq!(kern::read_file(&format!("{dir}/hello.txt")).as_deref(), Ok(&b"hello from ext2\n"[..]));
    run_file_test(&dir, None);
    kern::umount(&dir).expect("umount");
}

#[ktest(timeout = 120)]
fn two_processes_appending_lose_no_record_on_ext2_and_rootfs() {
    let (_, dir) = mount_ext2_copy();
    run_file_test(&dir, Some("append"));
    kern::umount(&dir).expect("umount");
    run_file_test("/", Some("append"));
}

#[ktest(timeout = 120)]
fn ext2_sparse_file_crosses_the_triple_indirect_boundary() {
    let (dev, dir) = mount_ext2_copy();
    let file = format!("{dir}/sparse");
    kern::write_file(&file, b"").expect("create");
    // 1 KiB blocks: 12 direct, 256 indirect, 65536 double indirect; block
    // 65804 is the first one mapped through the triple indirect block.
    let boundary: u64 = (12 + 256 + 65_536) * 1024;
    let data: Vec<u8> = (0..2048u32).map(|i| (i * 7 + 1) as u8).collect();
    assert_eq!(kern::pwrite(&file, boundary - 1024, &data), Ok(2048), "a write across the boundary");
    assert_eq!(kern::pread(&file, boundary - 1024, 2048).as_deref(), Ok(&data[..]));
    assert_eq!(kern::pread(&file, 40 << 20, 64), Ok(alloc::vec![0; 64]), "the hole reads as zeros");
    kern::umount(&dir).expect("umount");
    kern::mount(&dev, &dir, "ext2", false).expect("remount");
    assert_eq!(kern::pread(&file, boundary - 1024, 2048).as_deref(), Ok(&data[..]), "after remount");
    let p = kernel::fs::syscalls::kern_path(&file).expect("stat");
    let attr = p.inode.getattr().expect("getattr");
    assert_eq!(attr.size, boundary + 1024);
    assert!(attr.blocks < 64, "sparse: {} sectors allocated", attr.blocks);
    drop(p);
    kern::umount(&dir).expect("umount");
}

#[ktest(timeout = 120)]
fn ext2_persists_across_umount_and_remount_and_umount_waits_for_users() {
    let (dev, dir) = mount_ext2_copy();
    kern::mkdir(&format!("{dir}/tree")).expect("mkdir");
    for i in 0..20 {
        kern::write_file(&format!("{dir}/tree/f{i}"), format!("file {i}\n").as_bytes()).expect("write");
    }
    let busy = kernel::fs::syscalls::kern_path(&format!("{dir}/tree/f3")).expect("a file held");
    assert_eq!(kern::umount(&dir), Err(Errno::EBUSY), "a user inside: EBUSY");
    assert_eq!(kern::mount(&dev, &fresh_dir("again-"), "ext2", false), Err(Errno::EBUSY), "mounted once");
    drop(busy);
    kern::umount(&dir).expect("umount once unused");
    assert_eq!(kern::read_file(&format!("{dir}/tree/f3")), Err(Errno::ENOENT), "the mount point is empty again");
    kern::mount(&dev, &dir, "ext2", true).expect("remount read-only");
    for i in 0..20 {
        assert_eq!(kern::read_file(&format!("{dir}/tree/f{i}")), Ok(format!("file {i}\n").into_bytes()));
    }
    assert_eq!(kern::write_file(&format!("{dir}/new"), b"x"), Err(Errno::EROFS), "read-only mount: EROFS");
    assert!(namespace::proc_mounts().contains(&format!("{dev} {dir} ext2 ro 0 0")));
    kern::umount(&dir).expect("umount");
}

#[ktest]
fn mount_refuses_what_it_cannot_do() {
    let dir = fresh_dir("mnt-err-");
    assert_eq!(kern::mount("/dev/nosuchdisk", &dir, "ext2", false), Err(Errno::ENOENT));
    assert_eq!(kern::mount("none", &dir, "nosuchfs", false), Err(Errno::ENODEV));
    assert_eq!(kern::mount("tmpfs", "/etc/initramfs-check", "tmpfs", false), Err(Errno::ENOTDIR));
    assert_eq!(MountFlags::from_user(uapi::fs::MS_BIND), Err(Errno::EINVAL));
    assert_eq!(MountFlags::from_user(uapi::fs::MS_MGC_VAL | uapi::fs::MS_RDONLY), Ok(MountFlags { read_only: true }));
    assert_eq!(kern::umount(&dir), Err(Errno::EINVAL), "not a mount point");
    assert_eq!(kern::umount("/"), Err(Errno::EBUSY), "the root stays");
}

/// The byte offset of inode `ino`'s `i_block[0]` in a 1 KiB-block image
/// (group 0 only).
fn i_block_offset(image: &[u8], ino: u32) -> usize {
    let le32 = |o: usize| u32::from_le_bytes([image[o], image[o + 1], image[o + 2], image[o + 3]]);
    let inodes_per_group = le32(1024 + 40);
    let inode_size = u32::from(u16::from_le_bytes([image[1024 + 88], image[1024 + 89]]));
    assert!(ino <= inodes_per_group, "inode in group 0");
    let inode_table = le32(2048 + 8) as usize;
    inode_table * 1024 + (ino as usize - 1) * inode_size as usize + 40
}

#[ktest(timeout = 120)]
fn corrupt_ext2_is_refused_at_mount_or_gives_eio_and_the_rest_works() {
    let image = kern::read_file(IMAGE).expect("image");
    // Bad magic: refused at mount.
    let mut bad = image.clone();
    bad[1024 + 56] ^= 0xff;
    let name = blkdev::free_name("ram");
    blkdev::register(&name, RamDisk::new(bad)).expect("ram disk");
    let dir = fresh_dir("corrupt-");
    assert_eq!(kern::mount(&format!("/dev/{name}"), &dir, "ext2", false), Err(Errno::EINVAL), "bad magic");

    // A block pointer past the end of the disk in dir/b.txt: EIO there only.
    let (_, mnt) = mount_ext2_copy();
    let ino = kernel::fs::syscalls::kern_path(&format!("{mnt}/dir/b.txt")).expect("b.txt").inode.ino as u32;
    kern::umount(&mnt).expect("umount");
    let mut bad = image.clone();
    let at = i_block_offset(&bad, ino);
    bad[at..at + 4].copy_from_slice(&0x00ff_ff00u32.to_le_bytes());
    let name = blkdev::free_name("ram");
    blkdev::register(&name, RamDisk::new(bad)).expect("ram disk");
    let dir = fresh_dir("corrupt-");
    kern::mount(&format!("/dev/{name}"), &dir, "ext2", false).expect("the superblock is fine");
    assert_eq!(kern::read_file(&format!("{dir}/dir/b.txt")), Err(Errno::EIO), "the corrupt file: EIO");
    assert_eq!(kern::read_file(&format!("{dir}/dir/a.txt")).as_deref(), Ok(&b"file a\n"[..]), "its neighbour");
    assert_eq!(kern::read_file(&format!("{dir}/hello.txt")).as_deref(), Ok(&b"hello from ext2\n"[..]));
    kern::write_file(&format!("{dir}/after"), b"still writable").expect("other files work");
    kern::umount(&dir).expect("umount");
}

#[ktest]
fn path_walk_follows_dotdot_across_mounts_and_caches_negative_lookups() {
    let (_, mnt) = mount_ext2_copy();
    let up = kernel::fs::syscalls::kern_path(&format!("{mnt}/dir/../..")).expect("..");
    let root = namespace::root().expect("root");
    assert!(namespace::Path::same(&up, &root), ".. from a mount's root reaches the parent mount");
    drop((up, root));
    let missing = format!("{mnt}/later");
    assert_eq!(kern::read_file(&missing), Err(Errno::ENOENT));
    kern::write_file(&missing, b"now").expect("create invalidates the negative entry");
    assert_eq!(kern::read_file(&missing).as_deref(), Ok(&b"now"[..]));
    assert_eq!(kernel::fs::syscalls::kern_path(&format!("{mnt}/hello.txt/x")).err(), Some(Errno::ENOTDIR));
    kern::umount(&mnt).expect("umount");
}

/// ext2 on the virtio disk, end to end: the test image is written to
/// `vda` through the block layer, mounted as `/dev/vda` (the name the
/// driver registered), written through the VFS, unmounted, mounted again
/// and read back; the disk's statistics show the traffic went through it.
#[ktest(disk = 8)]
fn ext2_on_the_virtio_disk_mounts_by_name_and_keeps_its_files() {
    let image = kern::read_file(IMAGE).expect("the initramfs holds the ext2 image");
    let (vda, _) = blkdev::lookup("vda").expect("the virtio disk is registered for mounting");
    assert!(vda.size() >= image.len() as u64, "8 MiB disk holds the {} byte image", image.len());
    vda.write_at(0, &image).expect("writing the image to vda");
    vda.flush().expect("flush");
    let disk = kernel::block::disk_by_name("vda").expect("vda");
    let writes_before = disk.stats().ios[1];
    let dir = fresh_dir("mnt-vda-");
    kern::mount("/dev/vda", &dir, "ext2", false).expect("mount /dev/vda");
    assert!(namespace::proc_mounts().contains(&format!("/dev/vda {dir} ext2 rw 0 0")), "{}", namespace::proc_mounts());
    // 300 KiB crosses into the indirect blocks of a 1 KiB-block file.
    let data: Vec<u8> = (0..300 * 1024u64).map(host_check_pattern).collect();
    kern::mkdir(&format!("{dir}/d")).expect("mkdir");
    kern::write_file(&format!("{dir}/d/big"), &data).expect("write");
    kern::umount(&dir).expect("umount");
    assert!(disk.stats().ios[1] > writes_before, "the file system wrote to vda");
    kern::mount("/dev/vda", &dir, "ext2", true).expect("mount again, read-only");
    assert!(kern::read_file(&format!("{dir}/d/big")) == Ok(data), "the file reads back whole after a remount");
    kern::umount(&dir).expect("umount");
    // xtask runs e2fsck -fn on the disk image and compares debugfs's
    // copy of the file with the pattern (xtask/src/diskcheck.rs).
    kernel::kprintln!("host-check: ext2 /d/big {}", 300 * 1024);
}

/// Byte `i` of the file the host checks (xtask/src/diskcheck.rs's
/// `pattern_byte`, the same formula).
fn host_check_pattern(i: u64) -> u8 {
    (i.wrapping_mul(31) % 251) as u8
}

/// The tree tests/disks/basic as its tests know it: the small files'
/// bytes from the tree itself; the big file is the pattern of
/// [`host_check_pattern`] for the length its `.pattern` file gives
/// (xtask/src/mkdisk.rs).
mod basic {
    pub const HELLO: &[u8] = include_bytes!("../disks/basic/hello.txt");
    pub const A: &[u8] = include_bytes!("../disks/basic/dir/a.txt");
    pub const DEEP: &[u8] = include_bytes!("../disks/basic/dir/sub/deep.txt");
    const BIG_PATTERN: &str = include_str!("../disks/basic/big.pattern");

    /// The length of `/big`.
    pub fn big_len() -> u64 {
        BIG_PATTERN.trim().parse().expect("big.pattern holds a length")
    }
}

/// The names in directory `path`, `.` and `..` left out, sorted.
fn dir_names(path: &str) -> Vec<String> {
    let dir = kernel::fs::syscalls::kern_path(path).expect("the directory");
    let mut names = Vec::new();
    let mut pos = 0;
    while let Some((entry, next)) = dir.inode.ops.readdir(pos).expect("readdir") {
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        if name != "." && name != ".." {
            names.push(name);
        }
        pos = next;
    }
    names.sort();
    names
}

/// A disk prepared by the host from tests/disks/basic (mke2fs -d, 4 KiB
/// blocks) holds the tree byte for byte: files in the root and two
/// directories down, a symlink, and a 300 KiB file mapped through the
/// indirect block. Files the test then writes, and the big file beside
/// them, are judged by the host's e2fsck and debugfs after it.
#[ktest(disk = 8, disk_tree = "basic", timeout = 120)]
fn ext2_prepared_disk_holds_its_tree_byte_for_byte() {
    let dir = fresh_dir("mnt-tree-");
    kern::mount("/dev/vda", &dir, "ext2", false).expect("mount the prepared disk");
    let at = |p: &str| format!("{dir}/{p}");
    assert_eq!(dir_names(&dir), ["big", "dir", "hello.txt", "link", "lost+found"]);
    assert_eq!(dir_names(&at("dir")), ["a.txt", "sub"]);
    assert_eq!(kern::read_file(&at("hello.txt")).as_deref(), Ok(basic::HELLO));
    assert_eq!(kern::read_file(&at("dir/a.txt")).as_deref(), Ok(basic::A));
    assert_eq!(kern::read_file(&at("dir/sub/deep.txt")).as_deref(), Ok(basic::DEEP));
    let parent = kernel::fs::syscalls::kern_parent(&at("link")).expect("the link's directory");
    let link = namei::lookup_one(&parent.dir, b"link").expect("lookup of the link itself");
    assert!(link.inode.getattr().expect("stat").is_symlink(), "link is a symlink");
    assert_eq!(link.inode.ops.readlink().as_deref(), Ok(&b"dir/a.txt"[..]));
    drop((parent, link));
    assert_eq!(kern::read_file(&at("link")).as_deref(), Ok(basic::A), "the symlink leads to its target");

    let big_len = basic::big_len();
    let big: Vec<u8> = (0..big_len).map(host_check_pattern).collect();
    assert!(kern::read_file(&at("big")) == Ok(big), "big differs from the pattern");
    let attr = kernel::fs::syscalls::kern_path(&at("big")).and_then(|p| p.inode.getattr()).expect("stat big");
    assert_eq!(attr.size, big_len);
    // Every 4 KiB data block (the last one partial) and the indirect
    // block that maps all but the first 12, in 512-byte sectors.
    assert_eq!(attr.blocks, (big_len.div_ceil(4096) + 1) * 8, "big is mapped through its indirect block");

    let written_len = 123_457;
    let written: Vec<u8> = (0..written_len).map(host_check_pattern).collect();
    kern::mkdir(&at("written")).expect("mkdir on the prepared disk");
    kern::write_file(&at("written/data"), &written).expect("write on the prepared disk");
    kern::umount(&dir).expect("umount");
    kern::mount("/dev/vda", &dir, "ext2", true).expect("mount again, read-only");
    assert!(kern::read_file(&at("written/data")) == Ok(written), "the new file reads back after a remount");
    kern::umount(&dir).expect("umount");
    kernel::kprintln!("host-check: ext2 /written/data {written_len}");
    kernel::kprintln!("host-check: ext2 /big {big_len}");
}

/// The prepared disk fails every read of /big's first data block
/// (blkdebug, at the sector xtask found with debugfs's bmap): a program
/// reading /big gets EIO, reads past that block and of other files
/// succeed (tests/user/eio_test.c, which also passes on Linux over such a
/// disk). The error is logged by the block layer and by ext2, for the
/// same place; the file system stays mounted, unmounts cleanly, and the
/// host finds it intact.
#[ktest(disk = 8, disk_tree = "basic", disk_eio_file = "/big", timeout = 120)]
fn a_failing_block_of_a_file_reaches_the_program_as_eio() {
    let dir = fresh_dir("mnt-eio-");
    kern::mount("/dev/vda", &dir, "ext2", false).expect("mount: the metadata is readable");
    let (big, hello) = (format!("{dir}/big"), format!("{dir}/hello.txt"));
    let text = core::str::from_utf8(basic::HELLO).expect("hello.txt is text");
    let (status, out) = run_user("/bin/eio_test", &["eio_test", &big, &hello, text]).expect("running eio_test");
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(status == 0 && out.contains("PASS eio_test"), "eio_test: status {status:#x}\n{out}");

    let log = crate::block::log_tail();
    let sector: u64 = log
        .lines()
        .find_map(|l| l.split("I/O error, dev vda, sector ").nth(1)?.split_once(" op 0x0:(READ)")?.0.parse().ok())
        .unwrap_or_else(|| panic!("no blk_print_req_error line for the read:\n{log}"));
    let ext2_line = format!("EXT2-fs (vda): error: I/O error: Read error at byte offset {}", sector * 512);
    assert!(log.contains(&ext2_line), "no {ext2_line:?} in the log:\n{log}");

    assert_eq!(kern::read_file(&format!("{dir}/dir/a.txt")).as_deref(), Ok(basic::A), "the disk still serves");
    kern::umount(&dir).expect("umount after the error");
    kernel::kprintln!("host-check: ext2 /big {}", basic::big_len());
}
