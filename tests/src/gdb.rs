//! The kernel side of the GDB test (xtask/src/gdb.rs): opt-in, run only
//! when xtask asks for it with gdb attached. It prints the kernel's own
//! /proc/buddyinfo and stops at [`ktest_gdb_checkpoint`] with interrupts
//! off, so that gdb's `mm-buddyinfo` reads the very state printed; then it
//! writes a file on ext2, whose pages stay in the page cache, names its
//! inode on the console, and runs /bin/gdb_fault on it: the program maps
//! the file's first two pages, then makes a first write to 0x50000000,
//! which gdb catches in `do_user_addr_fault` and where it reads the
//! file's cache with `mm-pagecache` and `mm-page`.

use alloc::vec::Vec;

use kernel::fs::namespace::Path;
use kernel::fs::syscalls::{kern, kern_path};
use kernel::ktest::ktest_gdb_checkpoint;
use kernel::process::run_user;
use ktest_macros::ktest;

/// The ext2 image xtask puts in the initramfs.
const IMAGE: &str = "/etc/ext2-1k.img";
/// Where a copy of it is mounted.
const EXT2_DIR: &str = "/gdb-ext2";
/// The file gdb reads the cache of (xtask/src/gdb.rs names it too).
const CACHED_FILE: &str = "/gdb-ext2/cached";
/// Its size: three whole pages and part of a fourth.
const CACHED_SIZE: usize = 3 * 4096 + 1000;

#[ktest(opt_in, timeout = 300)]
fn a_user_fault_at_a_known_address() {
    x86_64::instructions::interrupts::without_interrupts(|| {
        kernel::kprintln!(
            "gdb-test: buddyinfo begin\n{}gdb-test: buddyinfo end",
            mm::vmstat::Buddyinfo(kernel::mm::pgdat())
        );
        if let Some(slab) = kernel::slab::slab() {
            kernel::kprintln!("gdb-test: slabinfo begin\n{}gdb-test: slabinfo end", mm::slab_common::Slabinfo(slab));
        }
        ktest_gdb_checkpoint();
    });
    // Held until the program is done, so the inode and its cache stay.
    let cached = cache_a_file();
    let (status, out) =
        run_user("/bin/gdb_fault", &["gdb_fault", CACHED_FILE]).unwrap_or_else(|e| panic!("gdb_fault: {e:?}"));
    let out = alloc::string::String::from_utf8_lossy(&out);
    assert!(status == 0 && out.contains("PASS gdb_fault"), "gdb_fault failed (status {status:#x}):\n{out}");
    drop(cached);
}

/// Mounts a copy of the ext2 image on [`EXT2_DIR`], writes
/// [`CACHED_FILE`] through the page cache and prints its inode and
/// device, which xtask compares with what gdb shows.
fn cache_a_file() -> Path {
    let image = kern::read_file(IMAGE).expect("the initramfs holds the ext2 image");
    kern::write_file("/gdb-ext2.img", &image).expect("copying the image");
    let dev = kern::losetup("/gdb-ext2.img").expect("losetup");
    kern::mkdir(EXT2_DIR).expect("mkdir");
    kern::mount(&dev, EXT2_DIR, "ext2", false).unwrap_or_else(|e| panic!("mount {dev} on {EXT2_DIR}: {e:?}"));
    let data: Vec<u8> = (0..CACHED_SIZE).map(|i| (i % 251) as u8).collect();
    kern::write_file(CACHED_FILE, &data).expect("writing the file");
    let path = kern_path(CACHED_FILE).expect("the file just written");
    kernel::kprintln!("gdb-test: cached file {CACHED_FILE} inode {} dev {}", path.inode.ino, path.inode.sb.dev_name());
    path
}
