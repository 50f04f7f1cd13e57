//! Path walk and the name-space operations on it (Linux `fs/namei.c`:
//! `path_lookupat`, `link_path_walk`, `follow_dotdot`, `vfs_mkdir` ...,
//! and `fs/d_path.c` for `getcwd`).
//!
//! A path is split at `/` (repeated slashes count as one); an absolute
//! one starts at the root, a relative one at the caller's directory (the
//! cwd or a directory descriptor). Each component but the last must be a
//! directory (ENOTDIR) and is looked up in the dcache, then the file
//! system; a mount on it is entered ([`super::namespace::lookup_mnt`]);
//! `..` at a mount's root goes to its mount point first, and `..` at the
//! root stays there. Symbolic links inside the path are always followed,
//! the last component's only when asked (no `O_NOFOLLOW`,
//! `AT_SYMLINK_NOFOLLOW`) or when a slash follows it; more than
//! [`MAXSYMLINKS`] links in one walk is ELOOP, a component longer than
//! `NAME_MAX` is ENAMETOOLONG (`PATH_MAX` is checked where the path is
//! copied in). A trailing slash makes the last component a directory:
//! ENOTDIR if it is anything else.
//!
//! The operations check what Linux's `do_*at` and `vfs_*` check before
//! the file system is asked: the kind of the last component (`.`, `..`),
//! a read-only mount (EROFS), a mount point (EBUSY), a cross-mount link
//! or rename (EXDEV), a directory moved below itself (EINVAL); then they
//! invalidate the dcache entries they changed.
//!
//! Differences from Linux: no permission checks (every caller acts as
//! root); no RCU walk, no `LOOKUP_*` beyond follow and directory.

#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use uapi::errno::Errno;
use uapi::fs::NAME_MAX;

use super::inode::{Inode, Kstat, Owner, RenameFlags};
use super::namespace::{self, Path};

/// Most symbolic links one walk follows (Linux `MAXSYMLINKS`).
pub const MAXSYMLINKS: u32 = 40;

/// The last component of a path (Linux `last_type`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Last {
    /// An ordinary name.
    Norm(Vec<u8>),
    /// `.`.
    Dot,
    /// `..`.
    DotDot,
    /// The path was `/` (or only slashes).
    Root,
}

/// The parent directory of a path and its last component (Linux
/// `filename_parentat`'s result).
pub struct Parent {
    /// The directory holding the last component.
    pub dir: Path,
    /// The last component.
    pub last: Last,
    /// Whether a slash followed it.
    pub trailing_slash: bool,
}

impl Parent {
    /// The last component's name if it is an ordinary one, else `err`
    /// (Linux's per-call `LAST_NORM` checks).
    pub fn name_or(&self, err: Errno) -> Result<&[u8], Errno> {
        match &self.last {
            Last::Norm(n) => Ok(n),
            _ => Err(err),
        }
    }
}

/// Steps into whatever is mounted on `path`, repeatedly (Linux
/// `follow_mount`).
fn follow_mount(mut path: Path) -> Path {
    while let Some(m) = namespace::lookup_mnt(&path) {
        path = Path { inode: m.root.clone(), mnt: m };
    }
    path
}

/// `..` of `path` (Linux `follow_dotdot`).
fn follow_dotdot(path: &Path, root: &Path) -> Result<Path, Errno> {
    let mut cur = path.clone();
    loop {
        if Path::same(&cur, root) {
            return Ok(cur);
        }
        if !cur.is_mnt_root() {
            break;
        }
        match &cur.mnt.mountpoint {
            Some(mp) => cur = mp.clone(),
            None => return Ok(cur),
        }
    }
    let parent = cur.inode.ops.lookup(b"..")?;
    let inode = cur.inode.sb.iget(parent);
    Ok(follow_mount(Path { mnt: cur.mnt.clone(), inode }))
}

/// Looks `name` up in directory `dir` (Linux `lookup_fast` then
/// `lookup_slow`): the dcache first where the file system uses it.
pub fn lookup_one(dir: &Path, name: &[u8]) -> Result<Path, Errno> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let attr = dir.inode.getattr()?;
    if !attr.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let sb = &dir.inode.sb;
    let cache = sb.ops.cache_lookups();
    let cached = if cache { sb.dcache.lookup(dir.inode.ino, name) } else { None };
    let inode = match cached {
        Some(Some(inode)) => inode,
        Some(None) => return Err(Errno::ENOENT),
        None => match dir.inode.ops.lookup(name) {
            Ok(fs_inode) => {
                let inode = sb.iget(fs_inode);
                if cache {
                    sb.dcache.add(dir.inode.ino, name, Some(inode.clone()));
                }
                inode
            }
            Err(Errno::ENOENT) => {
                if cache {
                    sb.dcache.add(dir.inode.ino, name, None);
                }
                return Err(Errno::ENOENT);
            }
            Err(e) => return Err(e),
        },
    };
    Ok(follow_mount(Path { mnt: dir.mnt.clone(), inode }))
}

/// Walks all but the last component of `path` from `start` (Linux
/// `link_path_walk`); `depth` counts the links followed so far.
fn link_path_walk(start: &Path, path: &[u8], depth: &mut u32) -> Result<Parent, Errno> {
    let root = namespace::root()?;
    let mut dir = if path.first() == Some(&b'/') { root.clone() } else { start.clone() };
    let mut components = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).peekable();
    let trailing_slash = path.len() > 1 && path.last() == Some(&b'/');
    let Some(mut component) = components.next() else {
        return Ok(Parent { dir, last: Last::Root, trailing_slash: false });
    };
    loop {
        let Some(next) = components.next() else {
            let last = match component {
                b"." => Last::Dot,
                b".." => Last::DotDot,
                name => {
                    if name.len() > NAME_MAX {
                        return Err(Errno::ENAMETOOLONG);
                    }
                    Last::Norm(name.to_vec())
                }
            };
            if !dir.inode.getattr()?.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            return Ok(Parent { dir, last, trailing_slash });
        };
        dir = match component {
            b"." => dir,
            b".." => follow_dotdot(&dir, &root)?,
            name => {
                let child = lookup_one(&dir, name)?;
                let child = follow_link(&dir, child, depth)?;
                if !child.inode.getattr()?.is_dir() {
                    return Err(Errno::ENOTDIR);
                }
                child
            }
        };
        component = next;
    }
}

/// If `child` (found in `dir`) is a symbolic link, where it leads
/// (Linux `pick_link` + `step_into`); ELOOP past [`MAXSYMLINKS`].
fn follow_link(dir: &Path, child: Path, depth: &mut u32) -> Result<Path, Errno> {
    if !child.inode.getattr()?.is_symlink() {
        return Ok(child);
    }
    *depth += 1;
    if *depth > MAXSYMLINKS {
        return Err(Errno::ELOOP);
    }
    let target = child.inode.ops.readlink()?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    walk(dir, &target, true, depth)
}

/// Resolves the last component found by [`link_path_walk`].
fn walk_last(parent: Parent, follow: bool, depth: &mut u32) -> Result<Path, Errno> {
    let root = namespace::root()?;
    let path = match &parent.last {
        Last::Root | Last::Dot => parent.dir,
        Last::DotDot => follow_dotdot(&parent.dir, &root)?,
        Last::Norm(name) => {
            let child = lookup_one(&parent.dir, name)?;
            if follow || parent.trailing_slash { follow_link(&parent.dir, child, depth)? } else { child }
        }
    };
    if parent.trailing_slash && !path.inode.getattr()?.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    Ok(path)
}

fn walk(start: &Path, path: &[u8], follow: bool, depth: &mut u32) -> Result<Path, Errno> {
    let parent = link_path_walk(start, path, depth)?;
    walk_last(parent, follow, depth)
}

/// The place `path` names from `start` (Linux `path_lookupat`); `follow`
/// says whether a final symbolic link is followed.
pub fn path_lookupat(start: &Path, path: &[u8], follow: bool) -> Result<Path, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    walk(start, path, follow, &mut 0)
}

/// The directory holding `path`'s last component, and that component
/// (Linux `filename_parentat`).
pub fn path_parentat(start: &Path, path: &[u8]) -> Result<Parent, Errno> {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    link_path_walk(start, path, &mut 0)
}

/// Resolves the last component of `parent` as [`path_lookupat`] would.
pub fn lookup_last(parent: Parent, follow: bool) -> Result<Path, Errno> {
    walk_last(parent, follow, &mut 0)
}

fn invalidate(dir: &Path, name: &[u8]) {
    dir.inode.sb.dcache.invalidate(dir.inode.ino, name);
}

/// The caller's ids for new files.
pub fn current_owner() -> Owner {
    let c = crate::cred::current_cred();
    Owner { uid: c.fsuid.0, gid: c.fsgid.0 }
}

/// Linux `do_mkdirat` after the walk.
pub fn vfs_mkdir(parent: &Parent, mode: u32) -> Result<(), Errno> {
    let name = parent.name_or(Errno::EEXIST)?;
    match lookup_one(&parent.dir, name) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    parent.dir.want_write()?;
    let r = parent.dir.inode.ops.mkdir(name, mode, current_owner());
    invalidate(&parent.dir, name);
    r
}

/// The checks before a new name is made in `parent` (Linux
/// `filename_create` and `may_create`): the name (EEXIST for `.`, `..`
/// or none), no trailing slash (ENOENT), not taken (EEXIST), a writable
/// mount. Returns the name.
fn may_create(parent: &Parent) -> Result<&[u8], Errno> {
    let name = parent.name_or(Errno::EEXIST)?;
    if parent.trailing_slash {
        return Err(Errno::ENOENT);
    }
    match lookup_one(&parent.dir, name) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    parent.dir.want_write()?;
    Ok(name)
}

/// Linux `do_mknodat` after the walk, for `mode`'s type already checked
/// (`may_mknod`) and the umask applied: a regular file (type 0 or
/// `S_IFREG`, Linux `vfs_create`) or a node (`vfs_mknod`; a device needs
/// `CAP_MKNOD`, EPERM without it).
pub fn vfs_mknod(parent: &Parent, mode: u32, rdev: u64) -> Result<(), Errno> {
    use uapi::stat::{S_IFBLK, S_IFCHR, S_IFMT, S_IFREG};
    let name = may_create(parent)?;
    let ops = &parent.dir.inode.ops;
    let r = match mode & S_IFMT {
        0 | S_IFREG => ops.create(name, mode & 0o7777, current_owner()).map(drop),
        S_IFCHR | S_IFBLK if !crate::cred::capable(uapi::capability::CAP_MKNOD) => Err(Errno::EPERM),
        S_IFCHR | S_IFBLK => ops.mknod(name, mode, rdev, current_owner()),
        _ => ops.mknod(name, mode, 0, current_owner()),
    };
    invalidate(&parent.dir, name);
    r
}

/// Linux `do_symlinkat` after the walk.
pub fn vfs_symlink(parent: &Parent, target: &[u8]) -> Result<(), Errno> {
    let name = may_create(parent)?;
    let r = parent.dir.inode.ops.symlink(name, target, current_owner());
    invalidate(&parent.dir, name);
    r
}

/// Linux `do_unlinkat` after the walk.
pub fn vfs_unlink(parent: &Parent) -> Result<(), Errno> {
    let name = parent.name_or(Errno::EISDIR)?;
    let victim = lookup_one(&parent.dir, name)?;
    let attr = victim.inode.getattr()?;
    if parent.trailing_slash {
        return Err(if attr.is_dir() { Errno::EISDIR } else { Errno::ENOTDIR });
    }
    if attr.is_dir() {
        return Err(Errno::EISDIR);
    }
    parent.dir.want_write()?;
    if namespace::lookup_mnt(&victim).is_some() {
        return Err(Errno::EBUSY);
    }
    let r = parent.dir.inode.ops.unlink(name);
    invalidate(&parent.dir, name);
    r?;
    Ok(())
}

/// Linux `do_rmdir` after the walk.
pub fn vfs_rmdir(parent: &Parent) -> Result<(), Errno> {
    let name = match &parent.last {
        Last::Norm(n) => n.as_slice(),
        Last::Dot => return Err(Errno::EINVAL),
        Last::DotDot => return Err(Errno::ENOTEMPTY),
        Last::Root => return Err(Errno::EBUSY),
    };
    let victim = lookup_one(&parent.dir, name)?;
    if !victim.inode.getattr()?.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    parent.dir.want_write()?;
    if victim.is_mnt_root() || namespace::lookup_mnt(&victim).is_some() {
        return Err(Errno::EBUSY);
    }
    let r = parent.dir.inode.ops.rmdir(name);
    invalidate(&parent.dir, name);
    r?;
    Ok(())
}

/// Linux `do_linkat` after both walks: `old` is the existing file.
pub fn vfs_link(old: &Path, new: &Parent) -> Result<(), Errno> {
    let name = new.name_or(Errno::EEXIST)?;
    if !Arc::ptr_eq(&old.mnt, &new.dir.mnt) {
        return Err(Errno::EXDEV);
    }
    if old.inode.getattr()?.is_dir() {
        return Err(Errno::EPERM);
    }
    if new.trailing_slash {
        return Err(Errno::ENOENT);
    }
    match lookup_one(&new.dir, name) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    new.dir.want_write()?;
    let r = new.dir.inode.ops.link(&*old.inode.ops, name);
    invalidate(&new.dir, name);
    r
}

/// Whether `dir` is `ancestor` or below it, within one mount.
fn is_subdir(dir: &Path, ancestor: &Path) -> Result<bool, Errno> {
    let mut cur = dir.clone();
    for _ in 0..4096 {
        if Path::same(&cur, ancestor) {
            return Ok(true);
        }
        if cur.is_mnt_root() {
            return Ok(false);
        }
        let parent = cur.inode.sb.iget(cur.inode.ops.lookup(b"..")?);
        cur = Path { mnt: cur.mnt.clone(), inode: parent };
    }
    Err(Errno::ELOOP)
}

/// Linux `do_renameat2` after both walks.
pub fn vfs_rename(old: &Parent, new: &Parent, flags: RenameFlags) -> Result<(), Errno> {
    let old_name = old.name_or(Errno::EBUSY)?;
    let new_name = new.name_or(Errno::EBUSY)?;
    if !Arc::ptr_eq(&old.dir.mnt, &new.dir.mnt) {
        return Err(Errno::EXDEV);
    }
    let source = lookup_one(&old.dir, old_name)?;
    let source_attr: Kstat = source.inode.getattr()?;
    if (old.trailing_slash || new.trailing_slash) && !source_attr.is_dir() {
        return Err(Errno::ENOTDIR);
    }
    let target = match lookup_one(&new.dir, new_name) {
        Ok(t) => Some(t),
        Err(Errno::ENOENT) if !flags.exchange => None,
        Err(e) => return Err(e),
    };
    if let Some(t) = &target {
        if flags.noreplace {
            return Err(Errno::EEXIST);
        }
        let target_attr = t.inode.getattr()?;
        if !flags.exchange {
            if source_attr.is_dir() && !target_attr.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if !source_attr.is_dir() && target_attr.is_dir() {
                return Err(Errno::EISDIR);
            }
        }
        if namespace::lookup_mnt(t).is_some() || t.is_mnt_root() {
            return Err(Errno::EBUSY);
        }
        if Inode::same(&t.inode, &source.inode) {
            return Ok(());
        }
        if flags.exchange && target_attr.is_dir() && is_subdir(&old.dir, t)? {
            return Err(Errno::EINVAL);
        }
    }
    if source_attr.is_dir() && is_subdir(&new.dir, &source)? {
        return Err(Errno::EINVAL);
    }
    if namespace::lookup_mnt(&source).is_some() || source.is_mnt_root() {
        return Err(Errno::EBUSY);
    }
    old.dir.want_write()?;
    let r = old.dir.inode.ops.rename(old_name, &*new.dir.inode.ops, new_name, flags);
    invalidate(&old.dir, old_name);
    invalidate(&new.dir, new_name);
    r
}

/// The path of `path` from the root (Linux `d_path`, which `getcwd`
/// uses): found by asking each parent directory for the name of its
/// child, crossing mount points. ENOENT if a directory on the way was
/// removed.
pub fn d_path(path: &Path) -> Result<String, Errno> {
    let root = namespace::root()?;
    let mut names: Vec<Vec<u8>> = Vec::new();
    let mut len = 0;
    let mut cur = path.clone();
    loop {
        if Path::same(&cur, &root) {
            break;
        }
        if cur.is_mnt_root() {
            match &cur.mnt.mountpoint {
                Some(mp) => {
                    cur = mp.clone();
                    continue;
                }
                None => break,
            }
        }
        let parent = Path { mnt: cur.mnt.clone(), inode: cur.inode.sb.iget(cur.inode.ops.lookup(b"..")?) };
        let name = name_in(&parent, cur.inode.ino)?;
        len += name.len() + 1;
        if len >= uapi::fs::PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        names.push(name);
        cur = parent;
    }
    if names.is_empty() {
        return Ok(String::from("/"));
    }
    let mut s = String::new();
    for n in names.iter().rev() {
        s.push('/');
        s.push_str(&String::from_utf8_lossy(n));
    }
    Ok(s)
}

/// The name under which directory `dir` holds inode `ino`.
fn name_in(dir: &Path, ino: u64) -> Result<Vec<u8>, Errno> {
    let mut pos = 0;
    while let Some((e, next)) = dir.inode.ops.readdir(pos)? {
        if e.ino == ino && e.name != b"." && e.name != b".." {
            return Ok(e.name);
        }
        if next <= pos {
            break;
        }
        pos = next;
    }
    Err(Errno::ENOENT)
}
