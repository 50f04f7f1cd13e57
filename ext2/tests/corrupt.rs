//! Corrupt images: each targeted corruption must make mount refuse or the
//! affected operation fail with a corruption error while other files stay
//! readable; random byte flips must never panic or hang the driver.

mod common;

use std::collections::BTreeSet;
use std::sync::OnceLock;

use common::*;
use ext2::{Ext2Error, Ext2Fs, FileType, FixedClock, Ino, MemDisk, MountOptions, Owner};
use proptest::prelude::*;

const BS: usize = 1024;
const ME: Owner = Owner { uid: 0, gid: 0 };

/// Where things are in the base image.
struct Base {
    image: Vec<u8>,
    /// `/keep`, a file no corruption touches, and its contents.
    keep: (Ino, Vec<u8>),
    /// `/small`, a one-block file.
    small: Ino,
    /// `/dir`, a directory holding `big`.
    dir: Ino,
    /// `/dir/big`, a file with a single indirect block.
    big: Ino,
    /// `/dir/sub`, an empty directory.
    sub: Ino,
}

/// A 1 KiB-block image with a few files, made by the driver and checked by
/// e2fsck once.
fn base() -> &'static Base {
    static BASE: OnceLock<Base> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut fs = mount(mkfs(1024, 1024, None, &[]));
        let root = Ino::ROOT;
        let keep = fs.create(root, b"keep", 0o644, ME).unwrap();
        let keep_data = pattern(20_000, 4);
        fs.write(keep, 0, &keep_data).unwrap();
        let small = fs.create(root, b"small", 0o644, ME).unwrap();
        fs.write(small, 0, b"small file").unwrap();
        let dir = fs.mkdir(root, b"dir", 0o755, ME).unwrap();
        let big = fs.create(dir, b"big", 0o644, ME).unwrap();
        fs.write(big, 0, &pattern(30_000, 5)).unwrap();
        let sub = fs.mkdir(dir, b"sub", 0o755, ME).unwrap();
        fs.symlink(root, b"link", b"keep", ME).unwrap();
        let image = unmount(fs);
        assert_fsck_clean(&image);
        Base { image, keep: (keep, keep_data), small, dir, big, sub }
    })
}

/// A named corruption of an image.
type Corruption = (&'static str, fn(&mut Vec<u8>));

fn sb_u32(image: &[u8], field: usize) -> u32 {
    u32::from_le_bytes(image[1024 + field..1024 + field + 4].try_into().unwrap())
}

fn put32(image: &mut [u8], at: usize, v: u32) {
    image[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put16(image: &mut [u8], at: usize, v: u16) {
    image[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// Byte offset of inode `ino` in a single-group image.
fn inode_at(image: &[u8], ino: Ino) -> usize {
    let table = u32::from_le_bytes(image[2048 + 8..2048 + 12].try_into().unwrap()) as usize;
    let inode_size = u16::from_le_bytes([image[1024 + 88], image[1024 + 89]]) as usize;
    table * BS + (ino.0 as usize - 1) * inode_size
}

/// `i_block[index]` of `ino`.
fn i_block(image: &[u8], ino: Ino, index: usize) -> u32 {
    let at = inode_at(image, ino) + 40 + 4 * index;
    u32::from_le_bytes(image[at..at + 4].try_into().unwrap())
}

fn try_mount(image: Vec<u8>) -> Result<Ext2Fs<MemDisk>, Ext2Error> {
    Ext2Fs::mount(MemDisk::new(image), MountOptions { clock: Box::new(FixedClock(NOW)), ..Default::default() })
}

fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, Ext2Error>) {
    assert!(matches!(result, Err(Ext2Error::Corrupt { .. })), "expected a corruption error, got {result:?}");
}

/// Mounting `image` must fail with a corruption error (or `want`).
fn assert_mount_refused(image: Vec<u8>) -> Ext2Error {
    let err = try_mount(image).err().expect("mount accepted a corrupt image");
    assert_eq!(err.errno(), if err == Ext2Error::BadMagic { uapi::Errno::EINVAL } else { err.errno() });
    err
}

/// `/keep` still reads back whole.
fn assert_keep_readable(fs: &mut Ext2Fs<MemDisk>) {
    let (keep, data) = &base().keep;
    assert_eq!(fs.lookup(Ino::ROOT, b"keep").unwrap(), *keep);
    assert_eq!(&read_all(fs, *keep), data);
}

/// A copy of the base image with `corrupt` applied.
fn corrupted(corrupt: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut image = base().image.clone();
    corrupt(&mut image);
    image
}

#[test]
fn bad_magic_is_not_ext2() {
    let err = assert_mount_refused(corrupted(|i| i[1024 + 56] = 0));
    assert_eq!(err, Ext2Error::BadMagic);
    assert_eq!(err.errno(), uapi::Errno::EINVAL);
}

#[test]
fn superblock_geometry_is_validated() {
    let cases: [Corruption; 8] = [
        ("absurd s_log_block_size", |i| put32(i, 1024 + 24, 20)),
        ("blocks past the device", |i| {
            let n = sb_u32(i, 4);
            put32(i, 1024 + 4, n * 4)
        }),
        ("zero inodes per group", |i| put32(i, 1024 + 40, 0)),
        ("zero blocks per group", |i| put32(i, 1024 + 32, 0)),
        ("inode size not a power of two", |i| put16(i, 1024 + 88, 200)),
        ("inodes count inconsistent", |i| put32(i, 1024, 7)),
        ("first data block wrong", |i| put32(i, 1024 + 20, 5)),
        ("revision from the future", |i| put32(i, 1024 + 76, 9)),
    ];
    for (what, corrupt) in cases {
        let err = try_mount(corrupted(corrupt)).err();
        assert!(err.is_some(), "{what}: mount accepted it");
    }
}

#[test]
fn unknown_incompat_features_are_named() {
    let err = assert_mount_refused(corrupted(|i| put32(i, 1024 + 96, 0x2 | 0x8000_0000)));
    assert_eq!(err.to_string(), "unsupported incompat features: 0x80000000");
}

#[test]
fn group_descriptors_are_validated() {
    let cases: [Corruption; 5] = [
        ("block bitmap past the end", |i| put32(i, 2048, 999_999)),
        ("block bitmap on the superblock", |i| put32(i, 2048, 1)),
        ("inode bitmap on the block bitmap", |i| {
            let b = u32::from_le_bytes(i[2048..2052].try_into().unwrap());
            put32(i, 2048 + 4, b)
        }),
        ("inode table over the descriptors", |i| put32(i, 2048 + 8, 2)),
        ("inode table running off the group", |i| {
            let n = sb_u32(i, 4);
            put32(i, 2048 + 8, n - 3)
        }),
    ];
    for (what, corrupt) in cases {
        let err = try_mount(corrupted(corrupt)).err();
        assert!(matches!(err, Some(Ext2Error::Corrupt { .. })), "{what}: {err:?}");
    }
}

#[test]
fn root_must_be_a_directory() {
    assert_mount_refused(corrupted(|i| {
        let at = inode_at(i, Ino::ROOT);
        put16(i, at, 0o100_644);
    }));
}

/// Corrupts the first block of `/dir` with `corrupt(block bytes)` and checks
/// that reading `/dir` fails while the rest stays readable.
fn dir_block_corruption(corrupt: fn(&mut [u8])) {
    let b = base();
    let image = corrupted(|i| {
        let block = i_block(i, b.dir, 0) as usize;
        corrupt(&mut i[block * BS..(block + 1) * BS]);
    });
    let mut fs = try_mount(image).unwrap();
    assert_corrupt(fs.lookup(b.dir, b"big"));
    assert_corrupt(fs.read_dir_all(b.dir));
    assert_corrupt(fs.create(b.dir, b"new", 0o644, ME));
    assert_keep_readable(&mut fs);
    assert!(fs.has_errors());
    assert_eq!(fs.read_dir_all(Ino::ROOT).unwrap().len(), 7);
}

#[test]
fn dirent_rec_len_zero() {
    dir_block_corruption(|b| put16(b, 4, 0));
}

#[test]
fn dirent_rec_len_past_the_block() {
    dir_block_corruption(|b| put16(b, 12 + 4, 2000));
}

#[test]
fn dirent_rec_len_misaligned() {
    dir_block_corruption(|b| put16(b, 4, 14));
}

#[test]
fn dirent_name_len_past_rec_len() {
    dir_block_corruption(|b| b[6] = 200);
}

#[test]
fn dirent_inode_out_of_range() {
    dir_block_corruption(|b| put32(b, 0, 0x00ff_ffff));
}

#[test]
fn directory_with_a_hole() {
    let b = base();
    let mut fs = try_mount(corrupted(|i| {
        let at = inode_at(i, b.dir) + 40;
        put32(i, at, 0);
    }))
    .unwrap();
    assert_corrupt(fs.lookup(b.dir, b"big"));
    assert_keep_readable(&mut fs);
}

#[test]
fn directory_size_not_whole_blocks() {
    let b = base();
    let mut fs = try_mount(corrupted(|i| {
        let at = inode_at(i, b.dir) + 4;
        put32(i, at, 1000);
    }))
    .unwrap();
    assert_corrupt(fs.read_dir_all(b.dir));
    assert_keep_readable(&mut fs);
}

/// Sets entry 0 of `/dir/big`'s indirect block to `value`.
fn indirect_entry(value: fn(u32) -> u32) -> Ext2Fs<MemDisk> {
    let b = base();
    try_mount(corrupted(|i| {
        let ind = i_block(i, b.big, 12);
        put32(i, ind as usize * BS, value(ind));
    }))
    .unwrap()
}

#[test]
fn indirect_block_pointing_to_itself() {
    let b = base();
    let mut fs = indirect_entry(|ind| ind);
    assert_corrupt(fs.read(b.big, 12 * 1024, &mut [0; 100]));
    assert_corrupt(fs.truncate(b.big, 0));
    assert_keep_readable(&mut fs);
    // The direct blocks before it still read.
    assert_eq!(fs.read(b.big, 0, &mut [0; 100]).unwrap(), 100);
}

#[test]
fn indirect_block_pointing_past_the_end() {
    let b = base();
    let mut fs = indirect_entry(|_| 9_999_999);
    assert_corrupt(fs.read(b.big, 12 * 1024, &mut [0; 100]));
    assert_corrupt(fs.unlink(b.dir, b"big"));
    assert_keep_readable(&mut fs);
}

#[test]
fn direct_pointer_into_the_inode_table() {
    let b = base();
    let mut fs = try_mount(corrupted(|i| {
        let table = u32::from_le_bytes(i[2048 + 8..2048 + 12].try_into().unwrap());
        let at = inode_at(i, b.small) + 40;
        put32(i, at, table);
    }))
    .unwrap();
    assert_corrupt(fs.read(b.small, 0, &mut [0; 10]));
    // Writing must not scribble over the inode table either.
    assert_corrupt(fs.write(b.small, 0, b"x"));
    assert_keep_readable(&mut fs);
}

#[test]
fn huge_i_size() {
    let b = base();
    let mut fs = try_mount(corrupted(|i| {
        let at = inode_at(i, b.small) + 108;
        put32(i, at, 0xffff_ffff);
    }))
    .unwrap();
    assert_corrupt(fs.stat(b.small));
    assert_corrupt(fs.read(b.small, 0, &mut [0; 10]));
    assert_keep_readable(&mut fs);
}

#[test]
fn deleted_inode_referenced_by_a_directory() {
    let b = base();
    let mut fs = try_mount(corrupted(|i| {
        let at = inode_at(i, b.small) + 26;
        put16(i, at, 0);
    }))
    .unwrap();
    assert_eq!(fs.lookup(Ino::ROOT, b"small").unwrap(), b.small);
    assert_corrupt(fs.stat(b.small));
    assert_corrupt(fs.unlink(Ino::ROOT, b"small"));
    assert_keep_readable(&mut fs);
}

#[test]
fn block_shared_by_two_files_is_caught_when_freed_twice() {
    let b = base();
    let mut fs = try_mount(corrupted(|i| {
        let shared = i_block(i, b.keep.0, 0);
        let at = inode_at(i, b.small) + 40;
        put32(i, at, shared);
    }))
    .unwrap();
    fs.unlink(Ino::ROOT, b"small").unwrap();
    assert_corrupt(fs.unlink(Ino::ROOT, b"keep"));
}

#[test]
fn dotdot_cycle_is_caught_by_rename() {
    let b = base();
    let mut fs = try_mount(corrupted(|i| {
        // /dir/sub's `..` names itself.
        let block = i_block(i, b.sub, 0) as usize;
        put32(i, block * BS + 12, b.sub.0);
    }))
    .unwrap();
    fs.mkdir(Ino::ROOT, b"mover", 0o755, ME).unwrap();
    assert_corrupt(fs.rename(Ino::ROOT, b"mover", b.sub, b"moved"));
    assert_keep_readable(&mut fs);
}

#[test]
fn bitmap_marking_metadata_free_is_caught() {
    let mut fs = try_mount(corrupted(|i| {
        let bitmap = u32::from_le_bytes(i[2048..2052].try_into().unwrap()) as usize;
        // Blocks 1..8 (superblock, descriptors, ...) marked free.
        i[bitmap * BS] = 0;
    }))
    .unwrap();
    let f = fs.create(Ino::ROOT, b"new", 0o644, ME).unwrap();
    assert_corrupt(fs.write(f, 0, b"data"));
    assert_keep_readable(&mut fs);
}

#[test]
fn unmount_after_corruption_records_errors() {
    let b = base();
    let mut fs = indirect_entry(|ind| ind);
    assert_corrupt(fs.read(b.big, 12 * 1024, &mut [0; 10]));
    let image = fs.unmount().unwrap().into_data();
    assert_eq!(image[1024 + 58] & 2, 2, "EXT2_ERROR_FS");
}

/// Walks everything reachable, reading each file and symlink, bounded so
/// cyclic or huge corrupt trees end; errors are fine, panics are not.
fn walk_everything(fs: &mut Ext2Fs<MemDisk>) {
    let mut seen = BTreeSet::new();
    let mut stack = vec![Ino::ROOT];
    let mut budget = 2000;
    while let Some(dir) = stack.pop() {
        if !seen.insert(dir) {
            continue;
        }
        let mut pos = 0;
        while let Ok(Some((entry, next))) = fs.read_dir(dir, pos) {
            budget -= 1;
            if budget == 0 {
                return;
            }
            pos = next;
            if entry.name == b"." || entry.name == b".." {
                continue;
            }
            let _ = fs.lookup(dir, &entry.name);
            let Ok(stat) = fs.stat(entry.ino) else { continue };
            match stat.file_type {
                FileType::Directory => stack.push(entry.ino),
                FileType::Symlink => {
                    let _ = fs.readlink(entry.ino);
                }
                FileType::Regular => {
                    let mut buf = vec![0; 64 * 1024];
                    let mut offset = 0;
                    while offset < stat.size.min(1 << 20) {
                        match fs.read(entry.ino, offset, &mut buf) {
                            Ok(n) if n > 0 => offset += n as u64,
                            _ => break,
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// A small image rich in metadata for the flipping test, with the byte
/// ranges worth flipping: superblock, descriptors, bitmaps, the used part
/// of the inode table, directory and indirect blocks.
fn fuzz_base() -> &'static (Vec<u8>, Vec<std::ops::Range<usize>>) {
    static IMAGE: OnceLock<(Vec<u8>, Vec<std::ops::Range<usize>>)> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let mut fs = mount(mkfs(1024, 256, None, &["-N", "32"]));
        let root = Ino::ROOT;
        let d = fs.mkdir(root, b"d", 0o755, ME).unwrap();
        for i in 0..12 {
            let f = fs.create(d, format!("file-with-long-name-{i}").as_bytes(), 0o644, ME).unwrap();
            fs.write(f, (i * 3000) as u64, &pattern(2000, i)).unwrap();
        }
        let big = fs.create(root, b"big", 0o644, ME).unwrap();
        fs.write(big, 270 * 1024, b"double indirect").unwrap();
        fs.write(big, 13 * 1024, b"single indirect").unwrap();
        fs.symlink(root, b"fast", b"d/file-with-long-name-1", ME).unwrap();
        fs.symlink(root, b"slow", &[b's'; 100], ME).unwrap();
        let image = unmount(fs);
        assert_fsck_clean(&image);

        let desc =
            |field: usize| u32::from_le_bytes(image[2048 + field..2048 + field + 4].try_into().unwrap()) as usize;
        let block = |b: u32| b as usize * BS..(b as usize + 1) * BS;
        let mut hot = vec![1024..1024 + 264, 2048..2048 + 32, block(desc(0) as u32), block(desc(4) as u32)];
        hot.push(inode_at(&image, Ino(1))..inode_at(&image, Ino(32)));
        for ino in [Ino::ROOT, d] {
            hot.push(block(i_block(&image, ino, 0)));
        }
        let dir_block = i_block(&image, d, 1);
        if dir_block != 0 {
            hot.push(block(dir_block));
        }
        hot.push(block(i_block(&image, big, 12)));
        hot.push(block(i_block(&image, big, 13)));
        hot.push(0..image.len());
        (image, hot)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random byte flips, mostly in the metadata at the start of the image:
    /// mount, walk, read everything, try some changes and unmount; any
    /// outcome but a panic or a hang is fine.
    #[test]
    fn random_flips_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>()), 1..12),
        read_only in any::<bool>(),
    ) {
        let (base, hot) = fuzz_base();
        let mut image = base.clone();
        for (range, at, xor) in flips {
            let range = &hot[range.index(hot.len())];
            image[range.start + at.index(range.len())] ^= xor.max(1);
        }
        let options = MountOptions { read_only, cache_blocks: 16, clock: Box::new(FixedClock(NOW)) };
        let Ok(mut fs) = Ext2Fs::mount(MemDisk::new(image), options) else { return Ok(()) };
        walk_everything(&mut fs);
        let _ = fs.statfs();
        if !read_only {
            let root = Ino::ROOT;
            if let Ok(f) = fs.create(root, b"new", 0o644, ME) {
                let _ = fs.write(f, 5000, &[7; 3000]);
                let _ = fs.truncate(f, 100);
            }
            let _ = fs.mkdir(root, b"newdir", 0o755, ME);
            let _ = fs.rename(root, b"d", root, b"newdir");
            let _ = fs.unlink(root, b"big");
            if let Ok(d) = fs.lookup(root, b"d") {
                let _ = fs.unlink(d, b"file-with-long-name-3");
                let _ = fs.rmdir(root, b"d");
            }
            let _ = fs.symlink(root, b"s2", &[b'x'; 200], ME);
        }
        let _ = fs.unmount();
    }
}
