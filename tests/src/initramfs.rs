//! The initramfs (kernel/src/fs/cpio.rs) on the real ramdisk xtask builds
//! (xtask/src/initramfs.rs), and the parser's answers to corrupt archives.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

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

/// A newc archive of `(name, mode, body)` entries and the trailer, as xtask
/// writes one (inode numbers from 1, mtime 0); `magic` 070702 adds
/// checksums.
fn newc(magic: &str, entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let trailer: (&str, u32, &[u8]) = ("TRAILER!!!", 0, &[]);
    for (ino, &(name, mode, body)) in entries.iter().chain([&trailer]).enumerate() {
        let check = if magic == "070702" { body.iter().map(|&b| u32::from(b)).sum() } else { 0 };
        let fields = [ino as u32 + 1, mode, 0, 0, 1, 0, body.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, check];
        out.extend_from_slice(magic.as_bytes());
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(body);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    out
}

const FILE: u32 = cpio::S_IFREG | 0o644;
const DIR: u32 = cpio::S_IFDIR | 0o755;

/// Two entries: header 0 at 0 ("a", body "xyz") and header 1 at 120.
fn sample() -> Vec<u8> {
    newc("070701", &[("a", FILE, b"xyz"), ("d", DIR, b"")])
}

/// Offset of header 1 in [`sample`]: 110 + "a\0" = 112; body 3 padded to 4.
const SECOND: usize = 116;

fn set_field(data: &mut [u8], header: usize, field: usize, value: u32) {
    let at = header + 6 + 8 * field;
    data[at..at + 8].copy_from_slice(format!("{value:08x}").as_bytes());
}

#[ktest]
fn well_formed_archives_parse_and_may_be_concatenated() {
    let data = sample();
    let fs = Initramfs::parse(&data).expect("sample");
    assert_eq!(fs.len(), 2);
    assert_eq!(fs.end(), data.len());
    let a = fs.lookup("/a").expect("/a");
    assert_eq!((a.data, a.size, a.ino, a.name), (&b"xyz"[..], 3, 1, "a"));
    assert!(fs.lookup("/d").is_some_and(|d| d.is_dir()));

    // A second archive after zero padding: later entries replace earlier.
    let mut two = data.clone();
    two.extend_from_slice(&[0; 512]);
    let second = newc("070702", &[("./a", FILE, b"new")]);
    two.extend_from_slice(&second);
    let fs = Initramfs::parse(&two).expect("two archives");
    assert_eq!(fs.lookup("a").map(|e| e.data), Some(&b"new"[..]));
    assert_eq!(fs.end(), two.len());
    two.extend_from_slice(&[0; 3]);
    assert_eq!(Initramfs::parse(&two).map(|f| f.end()).ok(), Some(two.len() - 3), "trailing zeros are padding");
}

#[ktest]
fn corrupt_headers_are_refused_with_their_offset() {
    let good = sample();
    let mut cases: Vec<(String, Vec<u8>, CpioError)> = Vec::new();
    let mut bad_magic = good.clone();
    bad_magic[5] = b'7';
    cases.push(("flipped magic".into(), bad_magic, CpioError::BadMagic { offset: 0 }));
    let mut second_magic = good.clone();
    second_magic[SECOND] = b'1';
    cases.push(("second header's magic".into(), second_magic, CpioError::BadMagic { offset: SECOND }));
    cases.push(("truncated header".into(), good[..60].into(), CpioError::Truncated { offset: 0 }));
    cases.push((
        "truncated second header".into(),
        good[..SECOND + 100].into(),
        CpioError::Truncated { offset: SECOND },
    ));
    let mut bad_hex = good.clone();
    bad_hex[6 + 8 + 3] = b'g';
    cases.push(("non-hex digit in mode".into(), bad_hex, CpioError::BadHex { offset: 14 }));
    let mut long_name = good.clone();
    set_field(&mut long_name, 0, 11, 0x10_0000);
    cases.push(("namesize past the end".into(), long_name, CpioError::Truncated { offset: 0 }));
    let mut long_body = good.clone();
    set_field(&mut long_body, SECOND, 6, 0xffff_ffff);
    cases.push(("filesize past the end".into(), long_body, CpioError::Truncated { offset: SECOND }));
    let mut no_nul = good.clone();
    no_nul[111] = b'b';
    cases.push(("name without NUL".into(), no_nul, CpioError::NameNotTerminated { offset: 0 }));
    let mut empty_name = good.clone();
    set_field(&mut empty_name, 0, 11, 0);
    cases.push(("namesize 0".into(), empty_name, CpioError::NameNotTerminated { offset: 0 }));
    cases.push((
        "no trailer".into(),
        newc("070701", &[("a", FILE, b"xyz")])[..SECOND].into(),
        CpioError::MissingTrailer { offset: SECOND },
    ));
    let mut junk = good.clone();
    junk.extend_from_slice(b"\x1f\x8b\x08\x00");
    cases.push(("gzip after the trailer".into(), junk, CpioError::Junk { offset: good.len() }));
    let mut bad_sum = newc("070702", &[("a", FILE, b"xyz")]);
    set_field(&mut bad_sum, 0, 12, 1);
    cases.push(("wrong 070702 checksum".into(), bad_sum, CpioError::BadChecksum { offset: 0 }));
    cases.push((
        "a `..` component".into(),
        newc("070701", &[("bin/../../x", FILE, b"")]),
        CpioError::BadName { offset: 0 },
    ));
    cases.push(("empty data".into(), Vec::new(), CpioError::MissingTrailer { offset: 0 }));
    for (what, data, expected) in cases {
        assert_eq!(Initramfs::parse(&data).err(), Some(expected), "{what}");
    }
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
