//! The initramfs on the real ramdisk xtask builds (xtask/src/initramfs.rs),
//! and the parser's answers to a corrupted copy of it; the parser's own
//! tests (formats/src/cpio.rs) run on the host.

use kernel::fs::{CpioError, Initramfs, cpio};
use ktest_macros::ktest;

fn initramfs() -> &'static Initramfs<'static> {
    kernel::fs::initramfs().expect("the test kernel boots with a valid initramfs")
}

#[ktest]
fn initramfs_holds_init_dev_console_and_the_program_directories() {
    let fs = initramfs();
    let init = fs.lookup("/init").expect("/init");
    assert!(init.is_file() && init.mode & 0o111 != 0, "/init is an executable file: {:o}", init.mode);
    let console = fs.lookup("/dev/console").expect("/dev/console");
    assert_eq!((console.mode & cpio::S_IFMT, console.rdev), (cpio::S_IFCHR, (5, 1)), "/dev/console is char 5,1");
    for dir in ["/", "/bin", "/bench", "/dev", "/etc"] {
        if dir != "/" {
            assert!(fs.lookup(dir).is_some_and(|e| e.is_dir()), "{dir} is a directory");
        }
        assert!(fs.iter().any(|(path, _)| path.starts_with(dir)), "nothing under {dir}");
    }
    assert!(fs.lookup("/bin/hello").is_some_and(|e| e.is_file() && e.size > 0), "/bin/hello");
    assert!(fs.iter().all(|(path, e)| path.starts_with('/') && e.size == e.data.len()));
}

#[ktest]
fn check_file_arrives_with_its_pattern() {
    // xtask::initramfs::check_file: a 16-byte magic, then byte i of the file
    // is (i * 7 + 3) % 251, over an odd length.
    let check = initramfs().lookup("etc/initramfs-check").expect("/etc/initramfs-check");
    assert!(check.is_file());
    assert!(check.size > 16 && check.size % 2 == 1, "odd length beyond the magic: {}", check.size);
    assert_eq!(&check.data[..16], b"INITRAMFS-CHECK1", "magic");
    for (i, &b) in check.data.iter().enumerate().skip(16) {
        assert_eq!(b, ((i * 7 + 3) % 251) as u8, "byte {i}");
    }
}

#[ktest]
fn lookup_normalizes_paths() {
    let fs = initramfs();
    let hello = fs.lookup("/bin/hello").expect("/bin/hello");
    for path in ["bin/hello", "./bin/hello", "//bin/./hello"] {
        assert_eq!(fs.lookup(path), Some(hello), "{path}");
    }
    assert_eq!(fs.lookup("/bin/../bin/hello"), None, "`..` is never resolved");
    assert_eq!(fs.lookup("/bin/hell"), None);
}

#[ktest]
fn corrupt_copy_of_the_real_ramdisk_is_refused() {
    let (addr, len) = kernel::boot::params().ramdisk.expect("test kernels boot with a ramdisk");
    // SAFETY: the bootloader mapped `len` bytes of ramdisk at `addr` for the
    // kernel's lifetime, and nothing writes to it.
    let ramdisk = unsafe { core::slice::from_raw_parts(addr.as_ptr::<u8>(), len as usize) };
    let mut copy = ramdisk.to_vec();
    assert_eq!(Initramfs::parse(&copy).map(|f| f.len()).ok(), Some(initramfs().len()), "an intact copy parses");
    copy[0] = b'1';
    assert_eq!(Initramfs::parse(&copy).err(), Some(CpioError::Junk { offset: 0 }), "not a header at offset 0");
    copy[0] = b'0';
    copy[5] = b'9';
    assert_eq!(Initramfs::parse(&copy).err(), Some(CpioError::BadMagic { offset: 0 }));
    copy[5] = ramdisk[5];
    let cut = len as usize / 2;
    assert!(
        matches!(Initramfs::parse(&copy[..cut]), Err(CpioError::Truncated { .. } | CpioError::MissingTrailer { .. })),
        "half an archive is refused"
    );
}
