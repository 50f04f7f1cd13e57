//! The driver against images made by the host's mke2fs: reading what the
//! host wrote, writing what e2fsck accepts and debugfs reads back.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::symlink;
use std::path::Path;

use common::*;
use ext2::{Ext2Error, FileType, IncompatFeatures, Ino, MemDisk, Owner, SetAttr};

const ME: Owner = Owner { uid: 1000, gid: 1000 };

/// File blocks where the single, double and triple indirect trees start.
fn indirect_starts(block_size: u64) -> [u64; 3] {
    let p = block_size / 4;
    [12, 12 + p, 12 + p + p * p]
}

/// A host directory with small and sparse files, symlinks and nested dirs.
fn host_tree(dir: &Path, block_size: u64, with_triple: bool) {
    std::fs::write(dir.join("small.txt"), b"hello, ext2\n").unwrap();
    std::fs::write(dir.join("empty"), b"").unwrap();
    std::fs::write(dir.join("blocks"), pattern(3 * block_size as usize + 17, 1)).unwrap();
    let mut sparse = std::fs::File::create(dir.join("sparse")).unwrap();
    let starts = indirect_starts(block_size);
    let count = if with_triple { 3 } else { 2 };
    for (i, start) in starts.iter().take(count).enumerate() {
        sparse.seek(SeekFrom::Start((start - 1) * block_size + 100)).unwrap();
        sparse.write_all(&pattern(2 * block_size as usize, 10 + i as u32)).unwrap();
    }
    let end = sparse.stream_position().unwrap();
    sparse.set_len(end + 5000).unwrap();
    std::fs::create_dir_all(dir.join("a/b/c")).unwrap();
    std::fs::write(dir.join("a/b/c/deep"), b"deep file").unwrap();
    symlink("small.txt", dir.join("fast-link")).unwrap();
    let long_target = "x/".repeat(100) + "target";
    symlink(&long_target, dir.join("a/slow-link")).unwrap();
}

/// Compares every file, directory and symlink under `host` with the
/// mounted tree.
fn assert_tree_matches_host(fs: &mut ext2::Ext2Fs<MemDisk>, host: &Path) {
    let tree = walk(fs);
    let mut seen = 0;
    for entry in walkdir(host) {
        let rel = entry.strip_prefix(host).unwrap();
        let path = format!("/{}", rel.display());
        let node = tree.get(&path).unwrap_or_else(|| panic!("{path} missing"));
        let meta = std::fs::symlink_metadata(&entry).unwrap();
        match node {
            Node::File { data, .. } => assert!(*data == std::fs::read(&entry).unwrap(), "{path} differs"),
            Node::Dir { .. } => assert!(meta.is_dir()),
            Node::Symlink(target) => {
                assert_eq!(target.as_slice(), std::fs::read_link(&entry).unwrap().as_os_str().as_encoded_bytes())
            }
            Node::Other(t) => panic!("{path}: unexpected {t:?}"),
        }
        seen += 1;
    }
    let ours = tree.keys().filter(|k| !k.starts_with("/lost+found")).count();
    assert_eq!(ours, seen, "the image holds paths the host tree lacks");
}

fn walkdir(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            out.extend(walkdir(&path));
        }
        out.push(path);
    }
    out
}

fn reads_host_tree(block_size: u32, with_triple: bool) {
    let host = tempfile::tempdir().unwrap();
    host_tree(host.path(), u64::from(block_size), with_triple);
    let image = mkfs(block_size, 8192, Some(host.path()), &[]);
    let mut fs = mount_with(image, true);
    assert_tree_matches_host(&mut fs, host.path());
    let sparse = resolve(&mut fs, "/sparse").unwrap();
    // A hole reads as zeros, and get_block reports it as unmapped.
    assert_eq!(fs.get_block(sparse, 5, false).unwrap(), None);
    let start = indirect_starts(u64::from(block_size))[1];
    assert!(fs.get_block(sparse, start, false).unwrap().is_some());
    assert_eq!(fs.stat(Ino::ROOT).unwrap().file_type, FileType::Directory);
}

/// `get_blocks` against `get_block`, block by block: every block of a
/// run is where the run says, and the block after a run shorter than
/// asked breaks it (a hole after data, data after a hole, or a block not
/// next on the disk, as at each indirect block the tree puts in between).
fn get_blocks_agrees_with_get_block(block_size: u32) {
    let host = tempfile::tempdir().unwrap();
    host_tree(host.path(), u64::from(block_size), false);
    let image = mkfs(block_size, 8192, Some(host.path()), &[]);
    let mut fs = mount_with(image, true);
    let starts = indirect_starts(u64::from(block_size));
    let mut runs_seen = (0, 0);
    for path in ["/sparse", "/blocks", "/small.txt", "/empty"] {
        let ino = resolve(&mut fs, path).unwrap();
        let blocks = fs.stat(ino).unwrap().size.div_ceil(u64::from(block_size)) + 2;
        let block_of = |fs: &mut ext2::Ext2Fs<MemDisk>, i: u64| fs.get_block(ino, i, false).unwrap().map(|m| m.block.0);
        for max in [1, 3, 64] {
            let mut iblock = 0;
            while iblock < blocks {
                let run = fs.get_blocks(ino, iblock, max).unwrap();
                assert!(run.count >= 1 && run.count <= max, "{path} at {iblock}: {run:?}");
                for j in 0..u64::from(run.count) {
                    let want = run.block.map(|b| b.0 + j as u32);
                    assert_eq!(block_of(&mut fs, iblock + j), want, "{path}: block {} in {run:?}", iblock + j);
                }
                let next = iblock + u64::from(run.count);
                if run.count < max {
                    let after = block_of(&mut fs, next);
                    let continues = match (run.block, after) {
                        (None, None) => true,
                        (Some(b), Some(a)) => b.0 + run.count == a,
                        _ => false,
                    };
                    assert!(!continues, "{path}: the run {run:?} at {iblock} stopped early");
                }
                if max == 64 {
                    if run.block.is_some() { runs_seen.0 += 1 } else { runs_seen.1 += 1 }
                }
                iblock = next;
            }
        }
    }
    assert!(runs_seen.0 > 2 && runs_seen.1 > 2, "too few runs to mean anything: {runs_seen:?}");
    // A run of data stops before the first indirect block's first block:
    // the indirect block itself lies between them on the disk.
    let sparse = resolve(&mut fs, "/sparse").unwrap();
    let run = fs.get_blocks(sparse, starts[0] - 1, 64).unwrap();
    assert!(run.block.is_some() && run.count == 1, "{run:?}");
    // max 0 maps one block.
    assert_eq!(fs.get_blocks(sparse, 0, 0).unwrap().count, 1);
}

#[test]
fn get_blocks_agrees_with_get_block_1k() {
    get_blocks_agrees_with_get_block(1024);
}

#[test]
fn get_blocks_agrees_with_get_block_4k() {
    get_blocks_agrees_with_get_block(4096);
}

#[test]
fn reads_host_tree_1k_through_triple_indirect() {
    reads_host_tree(1024, true);
}

#[test]
fn reads_host_tree_4k() {
    reads_host_tree(4096, false);
}

/// A mix of every writing operation, checked by e2fsck and debugfs.
fn writes_pass_fsck(block_size: u32, extra: &[&str]) {
    let image = mkfs(block_size, 8192, None, extra);
    let mut fs = mount(image);
    let bs = u64::from(block_size);
    let root = Ino::ROOT;

    let small = fs.create(root, b"small", 0o644, ME).unwrap();
    assert_eq!(fs.write(small, 0, b"hello").unwrap(), 5);
    assert_eq!(fs.write(small, 3, b"p me").unwrap(), 4);

    // Data across the indirect and double indirect boundaries, with holes.
    let big = fs.create(root, b"big", 0o600, ME).unwrap();
    let starts = indirect_starts(bs);
    let chunk = pattern(bs as usize + 300, 7);
    for start in &starts[..2] {
        fs.write(big, (start - 1) * bs + 50, &chunk).unwrap();
    }
    // A triple indirect block on 1 KiB blocks (64 MiB in, sparse).
    if block_size == 1024 {
        fs.write(big, starts[2] * bs + 7, b"triple").unwrap();
    }

    let dir = fs.mkdir(root, b"dir", 0o755, ME).unwrap();
    let sub = fs.mkdir(dir, b"sub", 0o700, ME).unwrap();
    let inner = fs.create(sub, b"inner", 0o644, ME).unwrap();
    fs.write(inner, 0, &pattern(5000, 3)).unwrap();
    fs.symlink(dir, b"fast", b"../small", ME).unwrap();
    let slow_target = vec![b'y'; 300];
    fs.symlink(dir, b"slow", &slow_target, ME).unwrap();
    fs.link(small, sub, b"small-link").unwrap();

    // Many entries: the directory grows past one block.
    for i in 0..150 {
        let name = format!("entry-with-a-longish-name-{i:04}");
        fs.create(dir, name.as_bytes(), 0o644, ME).unwrap();
    }
    for i in (0..150).step_by(3) {
        let name = format!("entry-with-a-longish-name-{i:04}");
        fs.unlink(dir, name.as_bytes()).unwrap();
    }

    // Shrink into the middle of a block: the tail must read back as zeros.
    let shrink = fs.create(root, b"shrink", 0o644, ME).unwrap();
    fs.write(shrink, 0, &pattern(40 * bs as usize, 9)).unwrap();
    fs.truncate(shrink, 13 * bs + 10).unwrap();
    fs.truncate(shrink, 14 * bs).unwrap();

    fs.rename(sub, b"inner", root, b"moved").unwrap();
    fs.rename(dir, b"sub", root, b"sub2").unwrap();
    let gone = fs.mkdir(root, b"gone", 0o755, ME).unwrap();
    fs.create(gone, b"x", 0o644, ME).unwrap();
    assert_eq!(fs.rmdir(root, b"gone"), Err(Ext2Error::NotEmpty));
    fs.unlink(gone, b"x").unwrap();
    fs.rmdir(root, b"gone").unwrap();
    fs.setattr(small, SetAttr { mode: Some(0o600), uid: Some(70000), gid: Some(5), atime: Some(1), mtime: Some(2) })
        .unwrap();

    let expected_big = read_all(&mut fs, big);
    let expected_shrink = read_all(&mut fs, shrink);
    assert!(expected_shrink[13 * bs as usize + 10..].iter().all(|&b| b == 0));
    let image = unmount(fs);
    assert_fsck_clean(&image);

    assert_eq!(debugfs(&image, "cat /small"), b"help me");
    assert_eq!(debugfs(&image, "cat /big"), expected_big);
    assert_eq!(debugfs(&image, "cat /shrink"), expected_shrink);
    assert_eq!(debugfs(&image, "cat /moved"), pattern(5000, 3));
    assert_eq!(debugfs(&image, "cat /sub2/small-link"), b"help me");
    let stat = String::from_utf8(debugfs(&image, "stat /small")).unwrap();
    assert!(stat.contains("User: 70000") && stat.contains("Mode:  0600"), "{stat}");
    let link = String::from_utf8(debugfs(&image, "stat /dir/fast")).unwrap();
    assert!(link.contains("Fast link dest: \"../small\""), "{link}");

    // And our own view survives a remount.
    let mut fs = mount(image);
    let big = resolve(&mut fs, "/big").unwrap();
    assert_eq!(read_all(&mut fs, big), expected_big);
    let slow = resolve(&mut fs, "/dir/slow").unwrap();
    assert_eq!(fs.readlink(slow).unwrap(), slow_target);
    assert_eq!(resolve(&mut fs, "/sub2/inner"), Err(Ext2Error::NotFound));
}

#[test]
fn writes_pass_fsck_1k() {
    writes_pass_fsck(1024, &[]);
}

#[test]
fn writes_pass_fsck_4k() {
    writes_pass_fsck(4096, &[]);
}

#[test]
fn writes_pass_fsck_128_byte_inodes_without_sparse_super() {
    writes_pass_fsck(1024, &["-I", "128", "-O", "^sparse_super,^resize_inode"]);
}

#[test]
fn writes_pass_fsck_without_filetype() {
    writes_pass_fsck(4096, &["-O", "^filetype,^dir_index"]);
}

#[test]
fn rename_follows_posix() {
    let mut fs = mount(mkfs(1024, 4096, None, &[]));
    let root = Ino::ROOT;
    let a = fs.mkdir(root, b"a", 0o755, ME).unwrap();
    let b = fs.mkdir(a, b"b", 0o755, ME).unwrap();
    let f = fs.create(root, b"f", 0o644, ME).unwrap();
    let g = fs.create(root, b"g", 0o644, ME).unwrap();
    fs.write(g, 0, b"gggg").unwrap();
    let empty = fs.mkdir(root, b"empty", 0o755, ME).unwrap();

    assert_eq!(fs.rename(root, b"a", b, b"inside"), Err(Ext2Error::Invalid));
    assert_eq!(fs.rename(root, b"a", a, b"self"), Err(Ext2Error::Invalid));
    assert_eq!(fs.rename(root, b"f", root, b"a"), Err(Ext2Error::IsDir));
    assert_eq!(fs.rename(root, b"a", root, b"f"), Err(Ext2Error::NotDir));
    assert_eq!(fs.rename(root, b"empty", a, b".."), Err(Ext2Error::Busy));
    assert_eq!(fs.rename(root, b"nope", root, b"x"), Err(Ext2Error::NotFound));
    fs.mkdir(b, b"c", 0o755, ME).unwrap();
    assert_eq!(fs.rename(root, b"empty", root, b"a"), Err(Ext2Error::NotEmpty));

    // Replacing a file frees it; the same file under two names is a no-op.
    fs.rename(root, b"f", root, b"g").unwrap();
    assert_eq!(fs.lookup(root, b"g").unwrap(), f);
    assert_eq!(fs.lookup(root, b"f"), Err(Ext2Error::NotFound));
    fs.link(f, a, b"f2").unwrap();
    fs.rename(root, b"g", a, b"f2").unwrap();
    assert_eq!(fs.lookup(root, b"g").unwrap(), f);

    // Moving a directory fixes `..` and both parents' link counts.
    let root_links = fs.stat(root).unwrap().nlink;
    fs.rename(a, b"b", root, b"b").unwrap();
    assert_eq!(fs.lookup(b, b"..").unwrap(), root);
    assert_eq!(fs.stat(root).unwrap().nlink, root_links + 1);
    assert_eq!(fs.stat(a).unwrap().nlink, 2);
    // Replacing an empty directory.
    fs.rename(root, b"b", root, b"empty").unwrap();
    assert_eq!(fs.lookup(root, b"empty").unwrap(), b);
    assert_eq!(fs.stat(root).unwrap().nlink, root_links);
    assert!(fs.stat(empty).is_err(), "the replaced directory is freed");

    let image = unmount(fs);
    assert_fsck_clean(&image);
}

#[test]
fn namespace_errors_match_linux() {
    let mut fs = mount(mkfs(1024, 2048, None, &[]));
    let root = Ino::ROOT;
    let f = fs.create(root, b"f", 0o644, ME).unwrap();
    let d = fs.mkdir(root, b"d", 0o755, ME).unwrap();
    assert_eq!(fs.create(root, b"f", 0o644, ME), Err(Ext2Error::Exists));
    assert_eq!(fs.mkdir(root, b"..", 0o755, ME), Err(Ext2Error::Exists));
    assert_eq!(fs.create(f, b"x", 0o644, ME), Err(Ext2Error::NotDir));
    assert_eq!(fs.create(root, &[b'n'; 256], 0o644, ME), Err(Ext2Error::NameTooLong));
    assert_eq!(fs.create(root, b"a/b", 0o644, ME), Err(Ext2Error::Invalid));
    assert_eq!(fs.unlink(root, b"d"), Err(Ext2Error::IsDir));
    assert_eq!(fs.rmdir(root, b"f"), Err(Ext2Error::NotDir));
    assert_eq!(fs.rmdir(d, b"."), Err(Ext2Error::Invalid));
    assert_eq!(fs.rmdir(d, b".."), Err(Ext2Error::NotEmpty));
    assert_eq!(fs.link(d, root, b"d2"), Err(Ext2Error::NotPermitted));
    assert_eq!(fs.read(d, 0, &mut [0; 4]), Err(Ext2Error::IsDir));
    assert_eq!(fs.symlink(root, b"s", &[b'x'; 1024], ME), Err(Ext2Error::NameTooLong));
    assert_eq!(fs.readlink(f), Err(Ext2Error::Invalid));
    assert_eq!(fs.lookup(root, b"missing"), Err(Ext2Error::NotFound));
    assert_eq!(Ext2Error::NotEmpty.errno(), uapi::Errno::ENOTEMPTY);
    let image = unmount(fs);
    assert_fsck_clean(&image);
}

#[test]
fn disk_full_is_enospc_and_leaves_a_consistent_fs() {
    let mut fs = mount(mkfs(1024, 1024, None, &["-N", "64"]));
    let root = Ino::ROOT;
    let f = fs.create(root, b"fill", 0o644, ME).unwrap();
    let data = vec![0xab; 64 * 1024];
    let mut offset = 0u64;
    loop {
        match fs.write(f, offset, &data) {
            Ok(n) if n == data.len() => offset += n as u64,
            Ok(n) => {
                offset += n as u64;
                assert_eq!(fs.write(f, offset, &data), Err(Ext2Error::NoSpace));
                break;
            }
            Err(e) => {
                assert_eq!(e, Ext2Error::NoSpace);
                break;
            }
        }
    }
    assert_eq!(fs.statfs().free_blocks, 0);
    assert_eq!(fs.stat(f).unwrap().size, offset);
    // Inodes run out too.
    let mut made = 0;
    let err = loop {
        match fs.create(root, format!("n{made}").as_bytes(), 0o644, ME) {
            Ok(_) => made += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, Ext2Error::NoSpace);
    let image = unmount(fs);
    assert_fsck_clean(&image);
    let mut fs = mount(image);
    fs.unlink(root, b"fill").unwrap();
    assert!(fs.statfs().free_blocks > 900);
    assert_fsck_clean(&unmount(fs));
}

#[test]
fn modifying_an_indexed_directory_clears_its_index_flag() {
    let host = tempfile::tempdir().unwrap();
    std::fs::create_dir(host.path().join("big")).unwrap();
    for i in 0..200 {
        std::fs::write(host.path().join(format!("big/file-with-a-long-name-{i:05}")), b"x").unwrap();
    }
    let image = mkfs(1024, 4096, Some(host.path()), &[]);
    // e2fsck -D builds hash indexes for the multi-block directory.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image");
    std::fs::write(&path, &image).unwrap();
    let status = std::process::Command::new(tool("e2fsck")).arg("-fyD").arg(&path).output().unwrap().status;
    assert!(status.code().unwrap_or(8) <= 1, "e2fsck -fyD failed: {status}");
    let image = std::fs::read(&path).unwrap();
    let mut fs = mount(image);
    let big = resolve(&mut fs, "/big").unwrap();
    assert_ne!(fs.stat(big).unwrap().flags & 0x1000, 0, "e2fsck -D did not index /big");
    for i in (0..200).step_by(17) {
        fs.lookup(big, format!("file-with-a-long-name-{i:05}").as_bytes()).unwrap();
    }
    assert_eq!(fs.read_dir_all(big).unwrap().len(), 202);
    fs.create(big, b"new", 0o644, ME).unwrap();
    assert_eq!(fs.stat(big).unwrap().flags & 0x1000, 0);
    let image = unmount(fs);
    assert_fsck_clean(&image);
}

#[test]
fn mount_state_and_counts_follow_linux() {
    let image = mkfs(1024, 2048, None, &[]);
    let state = |img: &[u8]| u16::from_le_bytes([img[1024 + 58], img[1024 + 59]]);
    let mnt_count = |img: &[u8]| u16::from_le_bytes([img[1024 + 52], img[1024 + 53]]);
    let wtime = |img: &[u8]| u32::from_le_bytes(img[1024 + 48..1024 + 52].try_into().unwrap());
    assert_eq!(state(&image), 1);
    let count = mnt_count(&image);

    let mut fs = mount(image);
    fs.create(Ino::ROOT, b"x", 0o644, ME).unwrap();
    fs.sync().unwrap();
    let on_disk = fs.device().data();
    assert_eq!(state(on_disk), 0, "a mounted fs is not clean on disk");
    assert_eq!(mnt_count(on_disk), count + 1);
    assert_eq!(wtime(on_disk), NOW);
    // e2fsck -n of a crashed image reports the in-use state but the
    // metadata after sync is consistent.
    let (status, text) = fsck_output(on_disk);
    assert_eq!(status, 0, "{text}");

    let image = unmount(fs);
    assert_eq!(state(&image), 1, "unmount restores the clean state");
    assert_fsck_clean(&image);

    // Corruption seen while mounted leaves EXT2_ERROR_FS behind.
    let mut fs = mount(image);
    let f = fs.create(Ino::ROOT, b"f", 0o644, ME).unwrap();
    let mut image = unmount(fs);
    // Group 0's inode table, from the descriptor in block 2.
    let table = u32::from_le_bytes(image[2048 + 8..2048 + 12].try_into().unwrap()) as usize;
    // An invalid file type in the new inode's mode.
    image[table * 1024 + (f.0 as usize - 1) * 256 + 1] = 0xf0;
    let mut fs = mount(image);
    assert!(matches!(fs.stat(f), Err(Ext2Error::Corrupt { .. })));
    assert!(fs.has_errors());
    let image = unmount(fs);
    assert_eq!(state(&image), 1 | 2);
}

#[test]
fn refuses_unsupported_features() {
    let image = mkfs(4096, 4096, None, &["-O", "extent,flex_bg"]);
    let err = ext2::Ext2Fs::mount(MemDisk::new(image), Default::default()).err().unwrap();
    let Ext2Error::UnsupportedFeatures(features) = err else { panic!("{err:?}") };
    assert!(features.contains(IncompatFeatures::EXTENTS | IncompatFeatures::FLEX_BG));
    assert!(err.to_string().contains("extents"), "{err}");

    let image = mkfs(4096, 4096, None, &["-O", "dir_nlink"]);
    let err = ext2::Ext2Fs::mount(MemDisk::new(image.clone()), Default::default()).err().unwrap();
    assert!(matches!(err, Ext2Error::UnsupportedRoCompat(_)), "{err:?}");
    let mut fs = mount_with(image, true);
    assert_eq!(fs.create(Ino::ROOT, b"x", 0o644, ME), Err(Ext2Error::ReadOnly));
    assert!(fs.read_dir_all(Ino::ROOT).is_ok());
}

#[test]
fn io_errors_propagate() {
    let image = mkfs(1024, 2048, None, &[]);
    let mut fs = mount(image.clone());
    let f = fs.create(Ino::ROOT, b"f", 0o644, ME).unwrap();
    fs.write(f, 0, &pattern(4096, 1)).unwrap();
    let image = unmount(fs);

    // A failing data block read.
    let mut fs = mount(image.clone());
    let f = resolve(&mut fs, "/f").unwrap();
    let block = fs.get_block(f, 1, false).unwrap().unwrap().block.0;
    let mut disk = fs.unmount().unwrap();
    disk.fail_reads(u64::from(block) * 1024..u64::from(block + 1) * 1024);
    let mut fs = ext2::Ext2Fs::mount(disk, Default::default()).unwrap();
    assert!(matches!(fs.read(f, 0, &mut [0; 4096]), Err(Ext2Error::Io(_))));
    assert_eq!(fs.read(f, 2048, &mut [0; 1024]).unwrap(), 1024, "other blocks still read");

    // Failing writes surface at sync.
    let mut disk = MemDisk::new(image);
    disk.fail_writes(0..u64::MAX);
    let err = ext2::Ext2Fs::mount(disk, Default::default()).err().unwrap();
    assert!(matches!(err, Ext2Error::Io(_)), "{err:?}");
}

#[test]
fn the_fsck_check_catches_a_wrong_free_count() {
    let mut fs = mount(mkfs(1024, 2048, None, &[]));
    let f = fs.create(Ino::ROOT, b"f", 0o644, ME).unwrap();
    fs.write(f, 0, &[1; 3000]).unwrap();
    let mut image = unmount(fs);
    assert_fsck_clean(&image);
    // Group 0's bg_free_blocks_count, off by one.
    image[2048 + 12] ^= 1;
    let (status, text) = fsck_output(&image);
    assert_ne!(status, 0, "{text}");
}

/// An unlinked file that is pinned (held open) stays allocated and keeps
/// reading and writing; its last unpin frees it and its blocks, and the
/// image is clean for e2fsck at each step. An orphan cannot be linked
/// back, and an unpin without a pin is refused.
#[test]
fn an_unlinked_pinned_file_lives_until_its_last_unpin() {
    let mut fs = mount(mkfs(1024, 4096, None, &[]));
    let root = Ino::ROOT;
    let before = fs.statfs();
    let f = fs.create(root, b"tmp", 0o644, ME).unwrap();
    fs.write(f, 0, &pattern(40_000, 3)).unwrap();
    fs.pin(f);
    fs.pin(f);
    fs.unlink(root, b"tmp").unwrap();
    assert_eq!(fs.lookup(root, b"tmp"), Err(Ext2Error::NotFound));
    assert_eq!(read_all(&mut fs, f), pattern(40_000, 3), "an orphan still reads");
    fs.write(f, 40_000, b"more").unwrap();
    assert_eq!(fs.link(f, root, b"back"), Err(Ext2Error::NotFound), "an orphan cannot be linked back");
    let held = fs.statfs();
    assert!(held.free_blocks < before.free_blocks && held.free_inodes < before.free_inodes);
    fs.unpin(f).unwrap();
    assert_eq!(fs.statfs().free_inodes, held.free_inodes, "still pinned once");
    fs.unpin(f).unwrap();
    let after = fs.statfs();
    assert_eq!((after.free_blocks, after.free_inodes), (before.free_blocks, before.free_inodes), "all given back");
    assert_eq!(fs.unpin(f), Err(Ext2Error::Invalid), "unpin without a pin");
    // A removed directory still pinned (a working directory) is dead:
    // nothing is found or made in it, and its last unpin frees it.
    let d = fs.mkdir(root, b"cwd", 0o755, ME).unwrap();
    fs.pin(d);
    fs.rmdir(root, b"cwd").unwrap();
    assert_eq!(fs.lookup(d, b"."), Err(Ext2Error::NotFound));
    assert_eq!(fs.create(d, b"new", 0o644, ME), Err(Ext2Error::NotFound));
    fs.unpin(d).unwrap();
    let after = fs.statfs();
    assert_eq!((after.free_blocks, after.free_inodes), (before.free_blocks, before.free_inodes), "the dir too");
    assert_fsck_clean(&unmount(fs));
}

/// The page cache's way of writing (Linux `write_begin`'s `get_block`,
/// `generic_write_end`, then `writepages`): blocks allocated first, the
/// size set by `write_end`, the data written later as whole blocks with
/// the tail past the end of the file zero; e2fsck and debugfs agree.
fn page_cache_writes_pass_fsck(block_size: u32) {
    let mut fs = mount(mkfs(block_size, 8192, None, &[]));
    let bs = u64::from(block_size);
    let page = 4096u64;
    let f = fs.create(Ino::ROOT, b"cached", 0o644, ME).unwrap();
    // write_begin of 3 pages + 100 bytes at 2 pages in: blocks first.
    let (pos, len) = (2 * page, 3 * page + 100);
    for iblock in pos / bs..(pos + len).div_ceil(bs) {
        assert!(fs.get_block(f, iblock, true).unwrap().is_some());
    }
    fs.write_end(f, pos + len).unwrap();
    assert_eq!(fs.stat(f).unwrap().size, pos + len);
    // writepages: each page up to the end of the file, whole blocks.
    let data = pattern(len as usize, 5);
    for (i, chunk) in data.chunks(page as usize).enumerate() {
        let mut buf = chunk.to_vec();
        buf.resize(chunk.len().div_ceil(bs as usize) * bs as usize, 0);
        fs.write_blocks(f, (pos + i as u64 * page) / bs, &buf).unwrap();
    }
    // A page dirtied through a mapping over a hole: write_blocks allocates.
    fs.write_end(f, 9 * page).unwrap();
    fs.write_blocks(f, 8 * page / bs, &vec![0xab; page as usize]).unwrap();
    assert_eq!(fs.write_blocks(f, 0, &[1, 2, 3]), Err(Ext2Error::Invalid), "not whole blocks");
    let mut expected = vec![0u8; pos as usize];
    expected.extend_from_slice(&data);
    expected.resize(8 * page as usize, 0);
    expected.extend_from_slice(&[0xab; 4096]);
    assert_eq!(read_all(&mut fs, f), expected);
    let image = unmount(fs);
    assert_fsck_clean(&image);
    assert_eq!(debugfs(&image, "cat /cached"), expected);
}

#[test]
fn page_cache_writes_pass_fsck_1k() {
    page_cache_writes_pass_fsck(1024);
}

#[test]
fn page_cache_writes_pass_fsck_4k() {
    page_cache_writes_pass_fsck(4096);
}

/// Blocks that follow each other on the disk go to it in one request,
/// for a page cache's write-back and its readahead alike.
#[test]
fn contiguous_blocks_are_written_with_one_request() {
    let mut fs = mount(mkfs(4096, 8192, None, &[]));
    let f = fs.create(Ino::ROOT, b"run", 0o644, ME).unwrap();
    for iblock in 0..8 {
        fs.get_block(f, iblock, true).unwrap();
    }
    fs.write_end(f, 8 * 4096).unwrap();
    let before = fs.device().writes();
    fs.write_blocks(f, 0, &pattern(8 * 4096, 11)).unwrap();
    assert_eq!(fs.device().writes(), before + 1, "eight blocks in a row, one request");
    assert_eq!(read_all(&mut fs, f), pattern(8 * 4096, 11));
    let image = unmount(fs);
    assert_fsck_clean(&image);
}
