//! The initramfs: a newc cpio archive the bootloader loads as the ramdisk
//! (Linux `init/initramfs.c` unpack_to_rootfs; the format is Linux's
//! Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! An archive is a run of entries, each a 110-byte ASCII header (the magic
//! `070701`, or `070702` when the header carries a checksum, then thirteen
//! 8-digit hex fields), the NUL-terminated name padded to a multiple of 4
//! bytes from the start of the header, and the file body padded likewise.
//! The entry named `TRAILER!!!` ends an archive; zero bytes between and
//! after archives are padding, and further archives may follow (Linux
//! unpacks each in turn, later entries replacing earlier ones).
//!
//! Every header is validated before anything is believed: magic, hex digits,
//! bounds of the name and body, the name's NUL, and for `070702` the body
//! checksum (the byte sum Linux checks in do_copy). Corrupt input gives a
//! [`CpioError`] naming the offset, never a panic.
//!
//! Differences from Linux:
//! - Linux unpacks as it parses; here the whole archive is parsed (and
//!   validated) first, each [`Entry`] borrowing its body from the archive,
//!   and the kernel then unpacks the entries into its rootfs and frees the
//!   ramdisk (`kernel/src/fs/initramfs.rs`).
//! - Compressed archives (gzip, xz, ...) are refused as junk: xtask writes
//!   uncompressed ones.
//! - Names are normalised to absolute paths (`bin/hello` and `./bin/hello`
//!   become `/bin/hello`, `.` becomes `/`); a name with a `..` component is
//!   refused, where Linux would resolve it inside rootfs.
//! - Hard links (entries sharing an inode, Linux's find_link) are kept as
//!   separate entries, each with the body the archive gives it.

#![forbid(unsafe_code)]

use alloc::collections::BTreeMap;
use alloc::string::String;
use core::fmt;

/// Length of a newc header: the 6-byte magic and thirteen 8-digit fields.
const HEADER_LEN: usize = 110;
/// The magic of a header without checksum.
const MAGIC_NEWC: &[u8; 6] = b"070701";
/// The magic of a header whose `check` field is the body's byte sum.
const MAGIC_CRC: &[u8; 6] = b"070702";
/// The name of the entry that ends an archive.
const TRAILER: &str = "TRAILER!!!";

/// File type bits of `mode` (Linux `S_IFMT`).
pub const S_IFMT: u32 = 0o170_000;
/// A directory (Linux `S_IFDIR`).
pub const S_IFDIR: u32 = 0o040_000;
/// A regular file (Linux `S_IFREG`).
pub const S_IFREG: u32 = 0o100_000;
/// A symbolic link, whose body is the target (Linux `S_IFLNK`).
pub const S_IFLNK: u32 = 0o120_000;
/// A character device (Linux `S_IFCHR`).
pub const S_IFCHR: u32 = 0o020_000;

/// Why an archive was refused. Offsets are from the start of the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpioError {
    /// A header does not start with `070701` or `070702`.
    BadMagic {
        /// Offset of the header.
        offset: usize,
    },
    /// A header, name or body runs past the end of the data.
    Truncated {
        /// Offset of the header whose entry is cut short.
        offset: usize,
    },
    /// A header field holds something other than 8 hex digits.
    BadHex {
        /// Offset of the field.
        offset: usize,
    },
    /// The name is empty or its last byte (per namesize) is not NUL.
    NameNotTerminated {
        /// Offset of the header.
        offset: usize,
    },
    /// The name is not UTF-8, holds a NUL, or has a `..` component.
    BadName {
        /// Offset of the header.
        offset: usize,
    },
    /// A `070702` entry's body does not sum to its header's checksum.
    BadChecksum {
        /// Offset of the header.
        offset: usize,
    },
    /// Bytes that are neither padding nor a header where an archive should
    /// start (a compressed archive looks like this).
    Junk {
        /// Offset of the first such byte.
        offset: usize,
    },
    /// The data ends inside an archive, before its `TRAILER!!!`.
    MissingTrailer {
        /// Where the data ended.
        offset: usize,
    },
}

impl fmt::Display for CpioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CpioError::BadMagic { offset } => write!(f, "bad cpio magic at offset {offset}"),
            CpioError::Truncated { offset } => write!(f, "entry at offset {offset} runs past the end"),
            CpioError::BadHex { offset } => write!(f, "bad hex field at offset {offset}"),
            CpioError::NameNotTerminated { offset } => write!(f, "name of entry at offset {offset} lacks its NUL"),
            CpioError::BadName { offset } => write!(f, "unusable name in entry at offset {offset}"),
            CpioError::BadChecksum { offset } => write!(f, "bad data checksum in entry at offset {offset}"),
            CpioError::Junk { offset } => write!(f, "junk in archive at offset {offset} (compressed?)"),
            CpioError::MissingTrailer { offset } => write!(f, "archive ends at offset {offset} without TRAILER!!!"),
        }
    }
}

/// One file of the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The name as the archive spells it (without the NUL).
    pub name: &'a str,
    /// Type and permission bits (`st_mode`).
    pub mode: u32,
    /// Hard link count.
    pub nlink: u32,
    /// Length of the body in bytes.
    pub size: usize,
    /// The body: file contents, or a symbolic link's target.
    pub data: &'a [u8],
    /// Inode number within the archive.
    pub ino: u32,
    /// Device number (major, minor) of a device special file.
    pub rdev: (u32, u32),
}

impl Entry<'_> {
    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// Whether this is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }
}

/// A parsed initramfs: its entries by normalised absolute path.
#[derive(Debug)]
pub struct Initramfs<'a> {
    entries: BTreeMap<String, Entry<'a>>,
    end: usize,
}

/// `n` rounded up to a multiple of 4 (the newc alignment).
fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|n| n & !3)
}

/// Parses the 8 hex digits at `offset`.
fn hex_field(data: &[u8], offset: usize) -> Result<u32, CpioError> {
    let digits = data.get(offset..offset + 8).ok_or(CpioError::Truncated { offset })?;
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = char::from(d).to_digit(16).ok_or(CpioError::BadHex { offset })?;
        Ok((acc << 4) | v)
    })
}

/// `name` as an absolute path without `.` components or repeated slashes;
/// `None` if it has a `..` component.
fn normalize(name: &str) -> Option<String> {
    let mut path = String::new();
    for part in name.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            return None;
        }
        path.push('/');
        path.push_str(part);
    }
    if path.is_empty() {
        path.push('/');
    }
    Some(path)
}

/// The fields of a newc header, in order after the magic.
#[derive(Clone, Copy)]
enum Field {
    Ino = 0,
    Mode,
    Nlink = 4,
    FileSize = 6,
    RdevMajor = 9,
    RdevMinor,
    NameSize,
    Check,
}

/// One header parsed at `offset`: the entry and the offset after its body.
fn parse_entry(data: &[u8], offset: usize) -> Result<(Entry<'_>, usize), CpioError> {
    let header = data.get(offset..).ok_or(CpioError::Truncated { offset })?;
    if header.len() < MAGIC_NEWC.len() {
        return Err(CpioError::Truncated { offset });
    }
    let crc = match &header[..MAGIC_NEWC.len()] {
        m if m == MAGIC_NEWC => false,
        m if m == MAGIC_CRC => true,
        _ => return Err(CpioError::BadMagic { offset }),
    };
    if header.len() < HEADER_LEN {
        return Err(CpioError::Truncated { offset });
    }
    let field = |f: Field| hex_field(data, offset + MAGIC_NEWC.len() + 8 * f as usize);
    let namesize = field(Field::NameSize)? as usize;
    let size = field(Field::FileSize)? as usize;
    let truncated = CpioError::Truncated { offset };
    let name_end = (offset + HEADER_LEN).checked_add(namesize).ok_or(truncated)?;
    let raw_name = data.get(offset + HEADER_LEN..name_end).ok_or(truncated)?;
    let name = match raw_name.split_last() {
        Some((0, name)) => name,
        _ => return Err(CpioError::NameNotTerminated { offset }),
    };
    let name = core::str::from_utf8(name)
        .ok()
        .filter(|n| !n.is_empty() && !n.contains('\0'))
        .ok_or(CpioError::BadName { offset })?;
    let body_start = align4(name_end).ok_or(truncated)?;
    let body_end = body_start.checked_add(size).ok_or(truncated)?;
    let body = data.get(body_start..body_end).ok_or(truncated)?;
    let entry = Entry {
        name,
        mode: field(Field::Mode)?,
        nlink: field(Field::Nlink)?,
        size,
        data: body,
        ino: field(Field::Ino)?,
        rdev: (field(Field::RdevMajor)?, field(Field::RdevMinor)?),
    };
    if crc && entry.is_file() {
        let sum = body.iter().fold(0u32, |s, &b| s.wrapping_add(b.into()));
        if sum != field(Field::Check)? {
            return Err(CpioError::BadChecksum { offset });
        }
    }
    // The body's padding may be cut off at the very end of the data.
    Ok((entry, align4(body_end).ok_or(truncated)?.min(data.len())))
}

impl<'a> Initramfs<'a> {
    /// Parses every archive in `data`, validating every header.
    pub fn parse(data: &'a [u8]) -> Result<Self, CpioError> {
        let mut entries = BTreeMap::new();
        let mut offset = 0;
        let mut end = 0;
        let mut in_archive = false;
        while offset < data.len() {
            if !in_archive {
                // Between archives: zero padding, or the next header, which
                // starts 4-byte aligned (Linux's do_start/do_skip).
                match data[offset] {
                    0 => {
                        offset += 1;
                        continue;
                    }
                    b'0' if offset % 4 == 0 => in_archive = true,
                    _ => return Err(CpioError::Junk { offset }),
                }
            }
            let (entry, next) = parse_entry(data, offset)?;
            if entry.name == TRAILER {
                in_archive = false;
                end = next;
            } else {
                let path = normalize(entry.name).ok_or(CpioError::BadName { offset })?;
                entries.insert(path, entry);
            }
            offset = next;
        }
        if in_archive || end == 0 {
            return Err(CpioError::MissingTrailer { offset: data.len() });
        }
        Ok(Initramfs { entries, end })
    }

    /// The entry at `path` (absolute or relative to `/`; `.` components
    /// and repeated slashes are ignored).
    pub fn lookup(&self, path: &str) -> Option<&Entry<'a>> {
        self.entries.get(&normalize(path)?)
    }

    /// Every entry with its normalised path, sorted by path.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry<'a>)> {
        self.entries.iter().map(|(path, entry)| (path.as_str(), entry))
    }

    /// Number of entries (the trailers not counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the archive holds no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Offset just past the last archive's `TRAILER!!!` entry and its
    /// padding: the archive's length when nothing follows it.
    pub fn end(&self) -> usize {
        self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A newc archive of `(name, mode, body)` entries and the trailer, as xtask
    /// writes one (inode numbers from 1, mtime 0); `magic` 070702 adds
    /// checksums.
    fn newc(magic: &str, entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let trailer: (&str, u32, &[u8]) = ("TRAILER!!!", 0, &[]);
        for (ino, &(name, mode, body)) in entries.iter().chain([&trailer]).enumerate() {
            let check = if magic == "070702" { body.iter().map(|&b| u32::from(b)).sum() } else { 0 };
            let fields =
                [ino as u32 + 1, mode, 0, 0, 1, 0, body.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, check];
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

    const FILE: u32 = S_IFREG | 0o644;
    const DIR: u32 = S_IFDIR | 0o755;

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

    #[test]
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

    #[test]
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

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        // The trailer's empty body ends the archive: no padding follows it
        // that a cut could remove harmlessly.
        let data = newc("070702", &[("a", FILE, b"xyz"), ("d", DIR, b""), ("d/f", FILE, &[7; 33])]);
        assert_eq!(Initramfs::parse(&data).map(|f| f.len()).ok(), Some(3));
        for cut in 0..data.len() {
            assert!(Initramfs::parse(&data[..cut]).is_err(), "cut at {cut} of {}", data.len());
        }
    }

    #[test]
    fn sizes_at_the_field_maximum_are_refused_without_overflow() {
        for field in [6, 11] {
            for header in [0, SECOND] {
                let mut data = sample();
                set_field(&mut data, header, field, u32::MAX);
                assert_eq!(
                    Initramfs::parse(&data).err(),
                    Some(CpioError::Truncated { offset: header }),
                    "field {field} of header at {header}"
                );
            }
        }
    }

    #[test]
    fn names_that_are_not_utf8_or_hold_a_nul_are_refused() {
        let mut not_utf8 = sample();
        not_utf8[HEADER_LEN] = 0xff;
        assert_eq!(Initramfs::parse(&not_utf8).err(), Some(CpioError::BadName { offset: 0 }));
        let mut inner_nul = newc("070701", &[("ab", FILE, b"")]);
        inner_nul[HEADER_LEN] = 0;
        assert_eq!(Initramfs::parse(&inner_nul).err(), Some(CpioError::BadName { offset: 0 }));
    }

    #[test]
    fn a_header_must_start_aligned_between_archives() {
        let mut data = vec![0u8; 2];
        data.extend_from_slice(&sample());
        assert_eq!(Initramfs::parse(&data).err(), Some(CpioError::Junk { offset: 2 }));
    }

    proptest! {
        /// Any bytes at all: an answer, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Initramfs::parse(&data);
        }

        /// A valid archive with one byte changed: an answer, never a panic;
        /// and when it still parses, every entry's body lies inside it.
        #[test]
        fn one_corrupted_byte_never_panics(at in 0usize..1000, value in any::<u8>()) {
            let mut data = newc("070702", &[("bin/x", FILE, b"hello"), ("bin", DIR, b""), ("e", FILE, b"")]);
            let at = at % data.len();
            data[at] = value;
            if let Ok(fs) = Initramfs::parse(&data) {
                prop_assert!(fs.iter().all(|(_, e)| e.size == e.data.len()));
            }
        }

        /// Archives of random files parse back to those files, a later entry
        /// of the same name replacing an earlier one.
        #[test]
        fn random_archives_round_trip(
            files in proptest::collection::vec(("[a-c]{1,3}(/[a-c]{1,3})?", proptest::collection::vec(any::<u8>(), 0..40)), 0..8),
            magic in prop_oneof!["070701", "070702"],
        ) {
            let entries: Vec<(&str, u32, &[u8])> =
                files.iter().map(|(name, body)| (name.as_str(), FILE, body.as_slice())).collect();
            let data = newc(&magic, &entries);
            let fs = Initramfs::parse(&data);
            prop_assert!(fs.is_ok(), "{:?}", fs.err());
            let Ok(fs) = fs else { return Ok(()) };
            prop_assert_eq!(fs.end(), data.len());
            for (name, body) in &files {
                let last = files.iter().rev().find(|(n, _)| n == name).map(|(_, b)| b.as_slice());
                prop_assert_eq!(fs.lookup(name).map(|e| e.data), last, "{}", name);
                prop_assert!(body.len() <= data.len());
            }
        }
    }
}
