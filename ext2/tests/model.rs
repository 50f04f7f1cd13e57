//! Model-based property test: random sequences of namespace and data
//! operations run against the driver and against a simple in-memory model
//! of the tree. Each operation's outcome must match the model's (a
//! legitimate `ENOSPC` aside, which leaves the model unchanged); after the
//! sequence the whole tree (names, types, sizes, contents, link counts)
//! must match, before and after a remount, and e2fsck must find nothing to
//! fix.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use common::*;
use ext2::{Ext2Error, Ext2Fs, Ino, MemDisk, Owner};
use proptest::prelude::*;

const ME: Owner = Owner { uid: 0, gid: 0 };

/// Names used by the operations; the long one fills directory blocks fast.
fn name(i: u8) -> Vec<u8> {
    match i % 6 {
        0 => b"a".to_vec(),
        1 => b"b".to_vec(),
        2 => b"c".to_vec(),
        3 => b"dir".to_vec(),
        4 => vec![b'L'; 200],
        _ => vec![b'M'; 150],
    }
}

#[derive(Clone, Debug)]
enum Op {
    Create { dir: u8, name: u8 },
    Mkdir { dir: u8, name: u8 },
    Symlink { dir: u8, name: u8, len: u16 },
    Write { file: u8, offset: u32, len: u16, seed: u8 },
    Truncate { file: u8, size: u32 },
    Unlink { dir: u8, name: u8 },
    Rmdir { dir: u8, name: u8 },
    Link { file: u8, dir: u8, name: u8 },
    Rename { from_dir: u8, from: u8, to_dir: u8, to: u8 },
}

fn offset() -> impl Strategy<Value = u32> {
    // Around the start of the single and double indirect trees of 1 KiB
    // and 4 KiB blocks, and anywhere below 400 KiB.
    prop_oneof![
        0..4096u32,
        11 * 1024..14 * 1024u32,
        266 * 1024..270 * 1024u32,
        45 * 1024..52 * 1024u32,
        0..400 * 1024u32
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let small = || any::<u8>();
    prop_oneof![
        3 => (small(), small()).prop_map(|(dir, name)| Op::Create { dir, name }),
        2 => (small(), small()).prop_map(|(dir, name)| Op::Mkdir { dir, name }),
        1 => (small(), small(), 1..400u16).prop_map(|(dir, name, len)| Op::Symlink { dir, name, len }),
        6 => (small(), offset(), prop_oneof![0..3000u16, 0..60000u16], small()).prop_map(|(file, offset, len, seed)| Op::Write { file, offset, len, seed }),
        2 => (small(), prop_oneof![0..5000u32, 0..400 * 1024u32]).prop_map(|(file, size)| Op::Truncate { file, size }),
        2 => (small(), small()).prop_map(|(dir, name)| Op::Unlink { dir, name }),
        1 => (small(), small()).prop_map(|(dir, name)| Op::Rmdir { dir, name }),
        1 => (small(), small(), small()).prop_map(|(file, dir, name)| Op::Link { file, dir, name }),
        2 => (small(), small(), small(), small()).prop_map(|(from_dir, from, to_dir, to)| Op::Rename { from_dir, from, to_dir, to }),
    ]
}

/// A node of the model, keyed by the inode number the driver gave it.
#[derive(Clone, Debug)]
enum MNode {
    File(Vec<u8>),
    Dir { entries: BTreeMap<Vec<u8>, u32>, parent: u32 },
    Symlink(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Model {
    nodes: BTreeMap<u32, MNode>,
}

type Res<T> = Result<T, Ext2Error>;

impl Model {
    /// The tree mke2fs makes: the root and lost+found.
    fn new() -> Model {
        let mut nodes = BTreeMap::new();
        nodes.insert(2, MNode::Dir { entries: BTreeMap::from([(b"lost+found".to_vec(), 11)]), parent: 2 });
        nodes.insert(11, MNode::Dir { entries: BTreeMap::new(), parent: 2 });
        Model { nodes }
    }

    fn dirs(&self) -> Vec<u32> {
        self.nodes.iter().filter(|(_, n)| matches!(n, MNode::Dir { .. })).map(|(&i, _)| i).collect()
    }

    fn files(&self) -> Vec<u32> {
        self.nodes.iter().filter(|(_, n)| matches!(n, MNode::File(_))).map(|(&i, _)| i).collect()
    }

    fn entries(&self, dir: u32) -> &BTreeMap<Vec<u8>, u32> {
        match self.nodes.get(&dir) {
            Some(MNode::Dir { entries, .. }) => entries,
            _ => unreachable!("not a dir"),
        }
    }

    fn entries_mut(&mut self, dir: u32) -> &mut BTreeMap<Vec<u8>, u32> {
        match self.nodes.get_mut(&dir) {
            Some(MNode::Dir { entries, .. }) => entries,
            _ => unreachable!("not a dir"),
        }
    }

    fn is_dir(&self, ino: u32) -> bool {
        matches!(self.nodes.get(&ino), Some(MNode::Dir { .. }))
    }

    fn lookup(&self, dir: u32, name: &[u8]) -> Option<u32> {
        self.entries(dir).get(name).copied()
    }

    fn links(&self, ino: u32) -> usize {
        self.nodes
            .values()
            .filter_map(|n| if let MNode::Dir { entries, .. } = n { Some(entries) } else { None })
            .flat_map(|e| e.values())
            .filter(|&&i| i == ino)
            .count()
    }

    /// Drops `ino` if no entry names it any more.
    fn gc(&mut self, ino: u32) {
        if self.links(ino) == 0 {
            self.nodes.remove(&ino);
        }
    }

    /// Whether `ancestor` is `dir` or above it.
    fn is_ancestor(&self, ancestor: u32, mut dir: u32) -> bool {
        loop {
            if dir == ancestor {
                return true;
            }
            if dir == 2 {
                return false;
            }
            dir = match self.nodes.get(&dir) {
                Some(MNode::Dir { parent, .. }) => *parent,
                _ => return false,
            };
        }
    }

    /// The outcome rename should have.
    fn rename_outcome(&self, from_dir: u32, from: &[u8], to_dir: u32, to: &[u8]) -> Res<()> {
        let old = self.lookup(from_dir, from).ok_or(Ext2Error::NotFound)?;
        let new = self.lookup(to_dir, to);
        if new == Some(old) {
            return Ok(());
        }
        if self.is_dir(old) && self.is_ancestor(old, to_dir) {
            return Err(Ext2Error::Invalid);
        }
        if let Some(new) = new {
            match (self.is_dir(old), self.is_dir(new)) {
                (true, false) => return Err(Ext2Error::NotDir),
                (true, true) if !self.entries(new).is_empty() => return Err(Ext2Error::NotEmpty),
                (false, true) => return Err(Ext2Error::IsDir),
                _ => {}
            }
        }
        Ok(())
    }

    fn rename(&mut self, from_dir: u32, from: &[u8], to_dir: u32, to: &[u8]) {
        let old = self.lookup(from_dir, from).unwrap();
        if self.lookup(to_dir, to) == Some(old) {
            return;
        }
        self.entries_mut(from_dir).remove(from);
        let replaced = self.entries_mut(to_dir).insert(to.to_vec(), old);
        if let Some(MNode::Dir { parent, .. }) = self.nodes.get_mut(&old) {
            *parent = to_dir;
        }
        if let Some(r) = replaced {
            self.gc(r);
        }
    }

    /// The tree as the walk helper reports it.
    fn tree(&self) -> BTreeMap<String, Node> {
        let mut out = BTreeMap::new();
        self.tree_into(2, String::new(), &mut out);
        out
    }

    fn tree_into(&self, dir: u32, prefix: String, out: &mut BTreeMap<String, Node>) {
        for (name, &ino) in self.entries(dir) {
            let path = format!("{prefix}/{}", String::from_utf8_lossy(name));
            let node = match &self.nodes[&ino] {
                MNode::File(data) => Node::File { data: data.clone(), links: self.links(ino) as u16 },
                MNode::Dir { entries, .. } => {
                    self.tree_into(ino, path.clone(), out);
                    let subdirs = entries.values().filter(|&&i| self.is_dir(i)).count();
                    Node::Dir { links: 2 + subdirs as u16 }
                }
                MNode::Symlink(t) => Node::Symlink(t.clone()),
            };
            out.insert(path, node);
        }
    }
}

/// Picks an element of `list` by `i`.
fn pick(list: &[u32], i: u8) -> Option<u32> {
    if list.is_empty() { None } else { Some(list[i as usize % list.len()]) }
}

/// Checks an outcome against the model's: equal, or ENOSPC where the model
/// expected success. Returns whether the model should apply the change.
fn agree<T: std::fmt::Debug>(op: &Op, expected: Res<()>, got: &Res<T>) -> bool {
    match (&expected, got) {
        (Ok(()), Ok(_)) => true,
        (Ok(()), Err(Ext2Error::NoSpace)) => false,
        (Err(e), Err(g)) if e == g => false,
        _ => panic!("{op:?}: model expects {expected:?}, driver gave {got:?}"),
    }
}

fn exists(model: &Model, dir: u32, name: &[u8]) -> Res<()> {
    if model.lookup(dir, name).is_some() { Err(Ext2Error::Exists) } else { Ok(()) }
}

fn apply(fs: &mut Ext2Fs<MemDisk>, model: &mut Model, op: &Op) {
    let dirs = model.dirs();
    let files = model.files();
    match *op {
        Op::Create { dir, name: n } => {
            let (dir, name) = (pick(&dirs, dir).unwrap(), name(n));
            let got = fs.create(Ino(dir), &name, 0o644, ME);
            if agree(op, exists(model, dir, &name), &got) {
                let ino = got.unwrap().0;
                model.nodes.insert(ino, MNode::File(Vec::new()));
                model.entries_mut(dir).insert(name, ino);
            }
        }
        Op::Mkdir { dir, name: n } => {
            let (dir, name) = (pick(&dirs, dir).unwrap(), name(n));
            let got = fs.mkdir(Ino(dir), &name, 0o755, ME);
            if agree(op, exists(model, dir, &name), &got) {
                let ino = got.unwrap().0;
                model.nodes.insert(ino, MNode::Dir { entries: BTreeMap::new(), parent: dir });
                model.entries_mut(dir).insert(name, ino);
            }
        }
        Op::Symlink { dir, name: n, len } => {
            let (dir, name) = (pick(&dirs, dir).unwrap(), name(n));
            let target = pattern(len as usize, u32::from(len)).iter().map(|b| b'a' + b % 26).collect::<Vec<_>>();
            let got = fs.symlink(Ino(dir), &name, &target, ME);
            if agree(op, exists(model, dir, &name), &got) {
                let ino = got.unwrap().0;
                model.nodes.insert(ino, MNode::Symlink(target));
                model.entries_mut(dir).insert(name, ino);
            }
        }
        Op::Write { file, offset, len, seed } => {
            let Some(file) = pick(&files, file) else { return };
            let data = pattern(len as usize, u32::from(seed));
            let got = fs.write(Ino(file), u64::from(offset), &data);
            let written = match got {
                Ok(n) => n,
                Err(Ext2Error::NoSpace) => 0,
                Err(e) => panic!("{op:?}: {e:?}"),
            };
            if let Some(MNode::File(content)) = model.nodes.get_mut(&file)
                && written > 0
            {
                let end = offset as usize + written;
                if content.len() < end {
                    content.resize(end, 0);
                }
                content[offset as usize..end].copy_from_slice(&data[..written]);
            }
        }
        Op::Truncate { file, size } => {
            let Some(file) = pick(&files, file) else { return };
            fs.truncate(Ino(file), u64::from(size)).unwrap();
            if let Some(MNode::File(content)) = model.nodes.get_mut(&file) {
                content.resize(size as usize, 0);
            }
        }
        Op::Unlink { dir, name: n } => {
            let (dir, name) = (pick(&dirs, dir).unwrap(), name(n));
            let expected = match model.lookup(dir, &name) {
                None => Err(Ext2Error::NotFound),
                Some(i) if model.is_dir(i) => Err(Ext2Error::IsDir),
                Some(_) => Ok(()),
            };
            let got = fs.unlink(Ino(dir), &name);
            if agree(op, expected, &got) {
                let ino = model.entries_mut(dir).remove(&name).unwrap();
                model.gc(ino);
            }
        }
        Op::Rmdir { dir, name: n } => {
            let (dir, name) = (pick(&dirs, dir).unwrap(), name(n));
            let expected = match model.lookup(dir, &name) {
                None => Err(Ext2Error::NotFound),
                Some(i) if !model.is_dir(i) => Err(Ext2Error::NotDir),
                Some(i) if !model.entries(i).is_empty() => Err(Ext2Error::NotEmpty),
                Some(_) => Ok(()),
            };
            let got = fs.rmdir(Ino(dir), &name);
            if agree(op, expected, &got) {
                let ino = model.entries_mut(dir).remove(&name).unwrap();
                model.gc(ino);
            }
        }
        Op::Link { file, dir, name: n } => {
            let Some(file) = pick(&files, file) else { return };
            let (dir, name) = (pick(&dirs, dir).unwrap(), name(n));
            let got = fs.link(Ino(file), Ino(dir), &name);
            if agree(op, exists(model, dir, &name), &got) {
                model.entries_mut(dir).insert(name, file);
            }
        }
        Op::Rename { from_dir, from, to_dir, to } => {
            let (from_dir, from) = (pick(&dirs, from_dir).unwrap(), name(from));
            let (to_dir, to) = (pick(&dirs, to_dir).unwrap(), name(to));
            let expected = model.rename_outcome(from_dir, &from, to_dir, &to);
            let got = fs.rename(Ino(from_dir), &from, Ino(to_dir), &to);
            if agree(op, expected, &got) {
                model.rename(from_dir, &from, to_dir, &to);
            }
        }
    }
}

/// The pristine images, made once: 1 KiB and 4 KiB blocks, few inodes so
/// both blocks and inodes can run out.
fn image(block_size: u32) -> Vec<u8> {
    static SMALL: OnceLock<Vec<u8>> = OnceLock::new();
    static LARGE: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = if block_size == 1024 { &SMALL } else { &LARGE };
    let size_kib = if block_size == 1024 { 256 } else { 512 };
    cell.get_or_init(|| mkfs(block_size, size_kib, None, &["-N", "32"])).clone()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn driver_matches_the_model(large in any::<bool>(), ops in prop::collection::vec(op(), 1..64)) {
        let mut fs = mount(image(if large { 4096 } else { 1024 }));
        let mut model = Model::new();
        for op in &ops {
            apply(&mut fs, &mut model, op);
        }
        let expected = model.tree();
        prop_assert_eq!(&walk(&mut fs), &expected);
        let image = unmount(fs);
        let mut fs = mount(image);
        prop_assert_eq!(&walk(&mut fs), &expected);
        let image = unmount(fs);
        assert_fsck_clean(&image);
    }
}
