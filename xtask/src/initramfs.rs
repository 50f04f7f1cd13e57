//! The initramfs every boot gets: the user-space programs of tests/user,
//! static musl binaries, in a newc cpio archive (format: the Linux kernel's
//! Documentation/driver-api/early-userspace/buffer-format.rst, read by its
//! `init/initramfs.c` and by our `formats/src/cpio.rs`).
//!
//! - Programs: `tests/user/init.c` becomes `/init`, each `tests/user/*.c` a
//!   test program in `/bin`, each `tests/user/bench/*.c` a benchmark in
//!   `/bench`. All are built with `musl-gcc -static -no-pie` (ET_EXEC, no
//!   PT_INTERP: the kernel loads no interpreter), each only when its source
//!   or a header it includes from tests/user is newer than the binary, or
//!   the flags changed (target/user/cflags records them).
//! - `/etc/initramfs-check`: [`CHECK_LEN`] bytes of a fixed pattern
//!   ([`check_file`]) that the in-kernel tests verify, proving the archive
//!   arrived intact and the kernel's parser finds file bodies.
//! - `/dev/console` (char 5,1), so Linux's init has a console.
//! - `/etc/ext2-1k.img`: an ext2 image ([`EXT2_IMAGE_MIB`] MiB, 1 KiB
//!   blocks) made by the host's `mke2fs -t ext2 -d` from a small tree
//!   ([`EXT2_TREE`]), which the in-kernel tests mount through a loop
//!   device (reproducible, as every image [`crate::mkdisk`] makes).
//!
//! The archive is deterministic (entries sorted, mtime 0, inode numbers in
//! order) and written to `target/initramfs.cpio` only when its bytes change,
//! so disk images carrying it are not remade needlessly. It is the ramdisk
//! of the test kernel, of `cargo xtask run` and `bench`, and the initramfs
//! Linux boots for `bench --vs-linux`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::error::{Error, show, which};
use crate::mkdisk::{BlockSize, Ext2Image};
use crate::workspace_root;

/// Flags of every user program: static, not position-independent (the
/// kernel loads ET_EXEC only for now), warnings are errors.
const CFLAGS: [&str; 5] = ["-static", "-no-pie", "-O2", "-Wall", "-Werror"];

/// Length of `/etc/initramfs-check`: odd, so a length rounded anywhere shows.
pub const CHECK_LEN: usize = 12_345;
/// The first bytes of `/etc/initramfs-check`.
pub const CHECK_MAGIC: &[u8; 16] = b"INITRAMFS-CHECK1";

/// `/etc/initramfs-check`: [`CHECK_MAGIC`], then byte `i` of the file is
/// `(i * 7 + 3) % 251`. tests/src/initramfs.rs checks exactly this.
pub fn check_file() -> Vec<u8> {
    let mut data: Vec<u8> = (0..CHECK_LEN).map(|i| ((i * 7 + 3) % 251) as u8).collect();
    data[..CHECK_MAGIC.len()].copy_from_slice(CHECK_MAGIC);
    data
}

/// Size of `/etc/ext2-1k.img` in MiB.
pub const EXT2_IMAGE_MIB: u32 = 2;

/// The files of `/etc/ext2-1k.img`: (path, contents).
pub const EXT2_TREE: &[(&str, &str)] =
    &[("hello.txt", "hello from ext2\n"), ("dir/a.txt", "file a\n"), ("dir/b.txt", "file b\n")];

/// Makes (or reuses) the ext2 test image in target/user.
fn ext2_image() -> Result<Vec<u8>, Error> {
    let out = crate::build::target_dir().join("user");
    let image = out.join("ext2-1k.img");
    let stamp = out.join("ext2-1k.args");
    let tree = out.join("ext2-tree");
    let spec = Ext2Image { mib: EXT2_IMAGE_MIB, block_size: BlockSize::K1, tree: Some(&tree) };
    let recipe = format!("{} {EXT2_TREE:?}", spec.recipe());
    let io = |what: &str, p: &Path, e| Error::io(format!("{what} {}", show(p)), e);
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(recipe.as_str()) || !image.is_file() {
        let _ = std::fs::remove_dir_all(&tree);
        for (path, body) in EXT2_TREE {
            let file = tree.join(path);
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
            }
            std::fs::write(&file, body).map_err(|e| io("writing", &file, e))?;
        }
        spec.make(&image)?;
        std::fs::write(&stamp, recipe).map_err(|e| io("writing", &stamp, e))?;
    }
    std::fs::read(&image).map_err(|e| io("reading", &image, e))
}

/// The built user programs.
pub struct Programs {
    /// `/init`.
    pub init: PathBuf,
    /// Test programs for `/bin`: (name, binary).
    pub bin: Vec<(String, PathBuf)>,
    /// Benchmarks for `/bench`: (name, binary).
    pub bench: Vec<(String, PathBuf)>,
}

/// The `.c` files directly in `dir`, sorted.
fn c_sources(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading {}", show(dir)), e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "c"))
        .collect();
    sources.sort();
    Ok(sources)
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The headers `source` includes with `#include "..."` that exist next to
/// it (the only headers that change with the tree; system headers do not).
fn local_includes(source: &Path, text: &str) -> Vec<PathBuf> {
    let dir = source.parent().unwrap_or(Path::new("."));
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix('#'))
        .filter_map(|l| l.trim_start().strip_prefix("include"))
        .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
        .map(|name| dir.join(name))
        .filter(|p| p.is_file())
        .collect()
}

/// Whether `output` exists and is at least as new as every input.
fn up_to_date(output: &Path, inputs: &[PathBuf]) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = modified(output) else { return false };
    inputs.iter().all(|i| modified(i).is_some_and(|t: SystemTime| t <= built))
}

/// Refuses a binary the kernel could not run: anything but a static
/// ET_EXEC (`e_type` 2, no PT_INTERP program header).
fn check_static_exec(binary: &Path, elf: &[u8]) -> Result<(), Error> {
    let bad = |why: &str| Error::Harness(format!("{} is not a static ET_EXEC: {why}", show(binary)));
    let bytes = |o: usize, n: usize| elf.get(o..o.checked_add(n)?);
    let u16_at = |o| bytes(o, 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o| bytes(o, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at = |o| bytes(o, 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    if !elf.starts_with(b"\x7fELF") {
        return Err(bad("no ELF magic"));
    }
    if u16_at(16) != Some(2) {
        return Err(bad("e_type is not ET_EXEC"));
    }
    let phoff = u64_at(32).ok_or_else(|| bad("truncated header"))? as usize;
    let phnum = u16_at(56).ok_or_else(|| bad("truncated header"))?;
    for i in 0..usize::from(phnum) {
        const PT_INTERP: u32 = 3;
        match phoff.checked_add(i * 56).and_then(u32_at) {
            Some(PT_INTERP) => return Err(bad("it has PT_INTERP")),
            Some(_) => {}
            None => return Err(bad("program headers out of bounds")),
        }
    }
    Ok(())
}

/// Compiles `source` to `binary` unless the binary is up to date (and
/// `force` is false).
fn compile(cc: &Path, source: &Path, binary: &Path, force: bool) -> Result<(), Error> {
    let text = std::fs::read_to_string(source).map_err(|e| Error::io(format!("reading {}", show(source)), e))?;
    let mut inputs = local_includes(source, &text);
    inputs.push(source.to_path_buf());
    if force || !up_to_date(binary, &inputs) {
        let status = Command::new(cc)
            .args(CFLAGS)
            .arg("-o")
            .arg(binary)
            .arg(source)
            .status()
            .map_err(|e| Error::io("running musl-gcc", e))?;
        if !status.success() {
            return Err(Error::BuildFailed(show(source)));
        }
    }
    let elf = std::fs::read(binary).map_err(|e| Error::io(format!("reading {}", show(binary)), e))?;
    check_static_exec(binary, &elf)
}

/// Builds `/init`, the test programs and the benchmarks into target/user.
pub fn build_programs() -> Result<Programs, Error> {
    let cc = which("musl-gcc").ok_or(Error::MissingTool { tool: "musl-gcc".into(), package: "musl-tools" })?;
    let src = workspace_root().join("tests/user");
    let out = crate::build::target_dir().join("user");
    let bench_out = out.join("bench");
    std::fs::create_dir_all(&bench_out).map_err(|e| Error::io(format!("creating {}", show(&bench_out)), e))?;
    // Binaries built with other flags are stale whatever their age.
    let stamp = out.join("cflags");
    let flags = CFLAGS.join(" ");
    let force = std::fs::read_to_string(&stamp).map_or(true, |old| old != flags);
    let init = out.join("init");
    compile(&cc, &src.join("init.c"), &init, force)?;
    let mut bin = Vec::new();
    for source in c_sources(&src)? {
        let name = stem(&source);
        if name != "init" {
            let binary = out.join(&name);
            compile(&cc, &source, &binary, force)?;
            bin.push((name, binary));
        }
    }
    let mut bench = Vec::new();
    for source in c_sources(&src.join("bench"))? {
        let name = stem(&source);
        let binary = bench_out.join(&name);
        compile(&cc, &source, &binary, force)?;
        bench.push((name, binary));
    }
    std::fs::write(&stamp, flags).map_err(|e| Error::io(format!("writing {}", show(&stamp)), e))?;
    Ok(Programs { init, bin, bench })
}

/// File type bits of `st_mode` (Linux include/uapi/linux/stat.h).
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;

/// `/dev/console`'s device number (Documentation/admin-guide/devices.txt).
const CONSOLE_RDEV: (u32, u32) = (5, 1);

/// A newc cpio archive being written.
struct Cpio {
    data: Vec<u8>,
    ino: u32,
}

impl Cpio {
    fn new() -> Self {
        Cpio { data: Vec::new(), ino: 0 }
    }

    /// Appends one entry; inode numbers count up from 1 (0 for the trailer).
    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), body: &[u8]) {
        let ino = if name == TRAILER {
            0
        } else {
            self.ino += 1;
            self.ino
        };
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor
        // rdevminor namesize check
        let fields = [ino, mode, 0, 0, nlink, 0, body.len() as u32, 0, 0, rdev.0, rdev.1, name.len() as u32 + 1, 0];
        self.data.extend_from_slice(b"070701");
        for f in fields {
            self.data.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.data.extend_from_slice(name.as_bytes());
        self.data.push(0);
        self.pad();
        self.data.extend_from_slice(body);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.data.len().is_multiple_of(4) {
            self.data.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry(TRAILER, 0, (0, 0), &[]);
        self.data
    }
}

/// The name of the entry that ends a newc archive.
const TRAILER: &str = "TRAILER!!!";

/// One file of the archive before it is written.
struct Node {
    name: String,
    mode: u32,
    rdev: (u32, u32),
    body: Vec<u8>,
}

impl Node {
    fn dir(name: &str) -> Self {
        Node { name: name.into(), mode: S_IFDIR | 0o755, rdev: (0, 0), body: Vec::new() }
    }

    fn file(name: String, mode: u32, body: Vec<u8>) -> Self {
        Node { name, mode: S_IFREG | mode, rdev: (0, 0), body }
    }
}

/// The archive's bytes: `nodes` sorted by name (parents sort before their
/// children) so the same inputs always give the same bytes.
fn archive(mut nodes: Vec<Node>) -> Vec<u8> {
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut cpio = Cpio::new();
    for n in &nodes {
        cpio.entry(&n.name, n.mode, n.rdev, &n.body);
    }
    cpio.finish()
}

/// The initramfs holding `programs`.
fn initramfs_bytes(programs: &Programs) -> Result<Vec<u8>, Error> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io(format!("reading {}", show(p)), e));
    let mut nodes = vec![
        Node::dir("bench"),
        Node::dir("bin"),
        Node::dir("dev"),
        Node { name: "dev/console".into(), mode: S_IFCHR | 0o600, rdev: CONSOLE_RDEV, body: Vec::new() },
        Node::dir("etc"),
        Node::file("etc/initramfs-check".into(), 0o644, check_file()),
        Node::file("etc/ext2-1k.img".into(), 0o644, ext2_image()?),
        Node::file("init".into(), 0o755, read(&programs.init)?),
    ];
    for (name, path) in &programs.bin {
        nodes.push(Node::file(format!("bin/{name}"), 0o755, read(path)?));
    }
    for (name, path) in &programs.bench {
        nodes.push(Node::file(format!("bench/{name}"), 0o755, read(path)?));
    }
    Ok(archive(nodes))
}

/// A second archive of plain files (mode 0644) to append to the one
/// [`build`] writes: Linux unpacks concatenated newc archives in turn
/// (init/initramfs.c), so a boot can get files the others do not. Each
/// directory a name passes through gets its own entry, since Linux's
/// unpacker makes no missing parents.
pub fn extra_archive(files: Vec<(String, Vec<u8>)>) -> Vec<u8> {
    let mut dirs: Vec<String> = Vec::new();
    for (name, _) in &files {
        let mut at = 0;
        while let Some(slash) = name[at..].find('/') {
            let dir = &name[..at + slash];
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_owned());
            }
            at += slash + 1;
        }
    }
    let mut nodes: Vec<Node> = dirs.iter().map(|d| Node::dir(d)).collect();
    nodes.extend(files.into_iter().map(|(name, body)| Node::file(name, 0o644, body)));
    archive(nodes)
}

/// Writes `data` to `path` unless the file already holds exactly it.
pub fn write_if_changed(path: &Path, data: &[u8]) -> Result<(), Error> {
    if std::fs::read(path).is_ok_and(|old| old == data) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", show(dir)), e))?;
    }
    std::fs::write(path, data).map_err(|e| Error::io(format!("writing {}", show(path)), e))
}

/// Builds the programs and the archive; returns `target/initramfs.cpio`.
pub fn build() -> Result<PathBuf, Error> {
    let programs = build_programs()?;
    let path = crate::build::target_dir().join("initramfs.cpio");
    write_if_changed(&path, &initramfs_bytes(&programs)?)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory under target/ removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = crate::build::target_dir().join("xtask/test-scratch").join(name);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("creating a scratch directory");
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn set_mtime(path: &Path, secs: u64) {
        let file = std::fs::File::options().write(true).open(path).expect("opening");
        file.set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs)).expect("setting mtime");
    }

    #[test]
    fn cpio_entries_are_newc_with_aligned_names_and_bodies() {
        let mut c = Cpio::new();
        c.entry("init", S_IFREG | 0o755, (0, 0), b"abc");
        assert!(c.data.starts_with(b"070701"));
        // 110-byte header + "init\0" = 115, padded to 116; body 3, padded to 4.
        assert_eq!(c.data.len(), 120);
        assert_eq!(&c.data[116..119], b"abc");
        let header = String::from_utf8_lossy(&c.data[6..110]).into_owned();
        assert_eq!(&header[8..16], "000081ed", "mode field");
        assert_eq!(&header[48..56], "00000003", "filesize field");
        assert_eq!(&header[88..96], "00000005", "namesize includes the NUL");
    }

    #[test]
    fn archive_is_sorted_deterministic_and_ends_with_the_trailer() {
        let nodes = || vec![Node::file("init".into(), 0o755, b"x".to_vec()), Node::dir("bin"), Node::dir("dev")];
        let a = archive(nodes());
        assert_eq!(a, archive(nodes()), "same inputs, same bytes");
        let text = String::from_utf8_lossy(&a);
        let (bin, dev, init) = (text.find("bin\0"), text.find("dev\0"), text.find("init\0"));
        assert!(bin < dev && dev < init, "entries are sorted by name");
        assert!(a.ends_with(b"TRAILER!!!\0\0\0\0"), "trailer, its NUL and padding to 4 bytes");
        assert!(a.len().is_multiple_of(4));
        // Second entry (dev, ino 2): header at 116 = 110 + "bin\0" padded.
        assert_eq!(&a[116 + 6..116 + 14], b"00000002", "inode numbers count up in order");
    }

    #[test]
    fn extra_archive_makes_each_parent_directory_once() {
        let a = extra_archive(vec![("m/a.ko".into(), b"a".to_vec()), ("m/b.ko".into(), b"b".to_vec())]);
        let text = String::from_utf8_lossy(&a);
        assert_eq!(text.matches("m\0").count(), 1, "one entry for the directory");
        assert!(text.find("m\0") < text.find("m/a.ko\0"), "the directory comes first");
        // The directory's mode field (S_IFDIR | 0755).
        assert_eq!(&a[6 + 8..6 + 16], b"000041ed");
    }

    #[test]
    fn check_file_has_magic_pattern_and_odd_length() {
        let data = check_file();
        assert_eq!(data.len(), CHECK_LEN);
        assert_eq!(&data[..16], CHECK_MAGIC);
        assert_eq!(data[100], ((100 * 7 + 3) % 251) as u8);
    }

    #[test]
    fn binary_is_rebuilt_only_when_source_or_local_header_is_newer() {
        let dir = Scratch::new("up-to-date");
        let source = dir.0.join("prog.c");
        let header = dir.0.join("utest.h");
        let binary = dir.0.join("prog");
        let text = "#include <stdio.h>\n#include \"utest.h\"\n # include \"missing.h\"\nint main(void) {}\n";
        std::fs::write(&source, text).expect("writing source");
        std::fs::write(&header, "").expect("writing header");
        let includes = local_includes(&source, text);
        assert_eq!(includes, vec![header.clone()], "only headers next to the source count");
        let mut inputs = includes;
        inputs.push(source.clone());

        assert!(!up_to_date(&binary, &inputs), "a missing binary is stale");
        std::fs::write(&binary, "").expect("writing binary");
        for p in [&source, &header] {
            set_mtime(p, 1000);
        }
        set_mtime(&binary, 2000);
        assert!(up_to_date(&binary, &inputs));
        set_mtime(&header, 3000);
        assert!(!up_to_date(&binary, &inputs), "a newer header makes the binary stale");
        set_mtime(&header, 1000);
        set_mtime(&source, 3000);
        assert!(!up_to_date(&binary, &inputs), "a newer source makes the binary stale");
    }

    #[test]
    fn archive_file_is_rewritten_only_when_its_bytes_change() {
        let dir = Scratch::new("write-if-changed");
        let path = dir.0.join("a.cpio");
        write_if_changed(&path, b"one").expect("first write");
        set_mtime(&path, 1000);
        write_if_changed(&path, b"one").expect("same bytes");
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).expect("mtime");
        assert_eq!(mtime(&path), SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000));
        write_if_changed(&path, b"two").expect("new bytes");
        assert_eq!(std::fs::read(&path).expect("reading"), b"two");
    }

    #[test]
    fn only_static_et_exec_binaries_pass_the_check() {
        let mut elf = vec![0u8; 64 + 56];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[16] = 2; // ET_EXEC
        elf[32] = 64; // e_phoff
        elf[56] = 1; // e_phnum
        elf[64] = 1; // PT_LOAD
        let p = Path::new("prog");
        assert!(check_static_exec(p, &elf).is_ok());
        elf[64] = 3; // PT_INTERP
        assert!(check_static_exec(p, &elf).is_err());
        elf[64] = 1;
        elf[16] = 3; // ET_DYN
        assert!(check_static_exec(p, &elf).is_err());
        elf[16] = 2;
        elf[56] = 2; // a second header past the end
        assert!(check_static_exec(p, &elf).is_err());
    }
}
