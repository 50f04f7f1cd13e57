//! Namespace operations (Linux `fs/ext2/namei.c`: `ext2_create`,
//! `ext2_mknod`, `ext2_mkdir`, `ext2_rmdir`, `ext2_unlink`, `ext2_link`,
//! `ext2_rename`), each on a directory inode and a name.
//!
//! Link counts follow Linux: a directory has 2 plus one per subdirectory
//! (their `..`), capped at `EXT2_LINK_MAX`; the last link going frees the
//! inode and its blocks at once (see the crate documentation on open files).
//!
//! The VFS checks that Linux does before calling in are done here too, so
//! the errno is the one Linux returns: `.` and `..` cannot be created,
//! removed or renamed, and a directory cannot move into its own subtree.
//!
//! Each step re-reads the inodes it changes, so an operation whose two
//! directories are the same inode (a rename within one directory) updates
//! it consistently.

use crate::device::BlockDevice;
use crate::dir::check_name;
use crate::error::Ext2Error;
use crate::inode::Inode;
use crate::layout::{self, FileType, LINK_MAX};
use crate::super_block::Ext2Fs;
use crate::{Ino, Result};

/// Owner of a new inode: the caller's fsuid and fsgid (or the directory's
/// group for setgid directories, the VFS's decision).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// Whether `name` is `.` or `..`.
fn is_dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

impl<D: BlockDevice> Ext2Fs<D> {
    /// Checks that directory `dir` can take a new entry `name`.
    pub(crate) fn check_new_name(&mut self, dir: Ino, name: &[u8]) -> Result<Inode> {
        self.check_writable()?;
        let mut dir_inode = self.iget_dir(dir)?;
        check_name(name)?;
        if is_dot(name) || self.find_entry(&mut dir_inode, name)?.is_some() {
            return Err(Ext2Error::Exists);
        }
        Ok(dir_inode)
    }

    /// Writes new inode `inode` and links it into `dir` as `name`; frees it
    /// again if the directory cannot take the entry (Linux
    /// `ext2_add_nondir`).
    pub(crate) fn add_new_inode(&mut self, dir: Ino, name: &[u8], inode: Inode) -> Result<Ino> {
        let ino = inode.ino;
        let ft = inode.file_type().unwrap_or(FileType::Unknown);
        self.write_inode(&inode)?;
        if let Err(e) = self.add_link(dir, name, ino, ft) {
            let inode = self.read_inode(ino)?;
            if inode.is_dir() {
                self.adjust_links(dir, -1)?;
            }
            self.delete_inode(inode)?;
            return Err(e);
        }
        Ok(ino)
    }

    /// Changes the link count of `ino` by `delta` and stamps its ctime;
    /// frees it when no links remain, unless it is pinned: then it lives
    /// on as an orphan until its last [`Ext2Fs::unpin`].
    pub(crate) fn adjust_links(&mut self, ino: Ino, delta: i32) -> Result<()> {
        let mut inode = self.iget(ino)?;
        let links = i32::from(inode.links) + delta;
        inode.links = links.clamp(0, i32::from(u16::MAX)) as u16;
        inode.ctime = self.now();
        if inode.links == 0 && !self.pins.contains_key(&ino) {
            self.delete_inode(inode)
        } else {
            self.write_inode(&inode)
        }
    }

    /// Says that the caller holds `ino` open (Linux's in-core inode
    /// reference): its last unlink leaves it allocated, an orphan that
    /// still reads and writes, until the matching [`Ext2Fs::unpin`].
    /// Pins nest.
    pub fn pin(&mut self, ino: Ino) {
        *self.pins.entry(ino).or_insert(0) += 1;
    }

    /// Drops a [`Ext2Fs::pin`]; the last one frees an orphan (Linux
    /// `ext2_evict_inode`: `i_nlink` is zero, so truncate and free).
    pub fn unpin(&mut self, ino: Ino) -> Result<()> {
        let result = self.unpin_checked(ino);
        self.note(result)
    }

    fn unpin_checked(&mut self, ino: Ino) -> Result<()> {
        match self.pins.get_mut(&ino) {
            Some(n) if *n > 1 => {
                *n -= 1;
                return Ok(());
            }
            Some(_) => {
                self.pins.remove(&ino);
            }
            None => return Err(Ext2Error::Invalid),
        }
        if self.read_only {
            return Ok(());
        }
        let inode = self.read_inode(ino)?;
        if inode.links == 0 && inode.file_type().is_some() {
            self.delete_inode(inode)?;
        }
        Ok(())
    }

    /// Creates a regular file `name` in `dir` with permissions `perm`
    /// (Linux `ext2_create`).
    pub fn create(&mut self, dir: Ino, name: &[u8], perm: u16, owner: Owner) -> Result<Ino> {
        self.mknod(dir, name, layout::S_IFREG | (perm & 0o7777), owner, 0)
    }

    /// Creates a regular file, FIFO, socket or device node `name` in `dir`;
    /// `mode` holds type and permissions, `rdev` the device number of a
    /// device node in Linux's `new_encode_dev` form (Linux `ext2_mknod`).
    pub fn mknod(&mut self, dir: Ino, name: &[u8], mode: u16, owner: Owner, rdev: u32) -> Result<Ino> {
        let result = self.mknod_checked(dir, name, mode, owner, rdev);
        self.note(result)
    }

    fn mknod_checked(&mut self, dir: Ino, name: &[u8], mode: u16, owner: Owner, rdev: u32) -> Result<Ino> {
        let ft = FileType::from_mode(mode).ok_or(Ext2Error::Invalid)?;
        if matches!(ft, FileType::Directory | FileType::Symlink | FileType::Unknown) {
            return Err(Ext2Error::Invalid);
        }
        self.check_new_name(dir, name)?;
        let mut inode = self.new_inode(dir, mode, owner.uid, owner.gid)?;
        inode.links = 1;
        if matches!(ft, FileType::CharDevice | FileType::BlockDevice) {
            // Linux ext2_set_inode: new encoding in i_block[1].
            inode.block[1] = rdev;
        }
        self.add_new_inode(dir, name, inode)
    }

    /// Creates directory `name` in `dir` (Linux `ext2_mkdir`).
    pub fn mkdir(&mut self, dir: Ino, name: &[u8], perm: u16, owner: Owner) -> Result<Ino> {
        let result = self.mkdir_checked(dir, name, perm, owner);
        self.note(result)
    }

    fn mkdir_checked(&mut self, dir: Ino, name: &[u8], perm: u16, owner: Owner) -> Result<Ino> {
        let parent = self.check_new_name(dir, name)?;
        if parent.links >= LINK_MAX {
            return Err(Ext2Error::TooManyLinks);
        }
        let mut inode = self.new_inode(dir, layout::S_IFDIR | (perm & 0o7777), owner.uid, owner.gid)?;
        inode.links = 2;
        if let Err(e) = self.make_empty(&mut inode, dir) {
            self.delete_inode(inode)?;
            return Err(e);
        }
        self.adjust_links(dir, 1)?;
        self.add_new_inode(dir, name, inode)
    }

    /// Removes regular file, symlink or node `name` from `dir`, freeing its
    /// inode with its last link (Linux `ext2_unlink`).
    pub fn unlink(&mut self, dir: Ino, name: &[u8]) -> Result<()> {
        let result = self.unlink_checked(dir, name);
        self.note(result)
    }

    fn unlink_checked(&mut self, dir: Ino, name: &[u8]) -> Result<()> {
        self.check_writable()?;
        let mut dir_inode = self.iget_dir(dir)?;
        check_name(name)?;
        if is_dot(name) {
            return Err(Ext2Error::IsDir);
        }
        let at = self.find_entry(&mut dir_inode, name)?.ok_or(Ext2Error::NotFound)?;
        let inode = self.iget(at.ino)?;
        if inode.is_dir() {
            return Err(Ext2Error::IsDir);
        }
        self.delete_entry(dir, at)?;
        self.adjust_links(at.ino, -1)
    }

    /// Removes empty directory `name` from `dir` (Linux `ext2_rmdir`).
    pub fn rmdir(&mut self, dir: Ino, name: &[u8]) -> Result<()> {
        let result = self.rmdir_checked(dir, name);
        self.note(result)
    }

    fn rmdir_checked(&mut self, dir: Ino, name: &[u8]) -> Result<()> {
        self.check_writable()?;
        let mut dir_inode = self.iget_dir(dir)?;
        check_name(name)?;
        if name == b"." {
            return Err(Ext2Error::Invalid);
        }
        if name == b".." {
            return Err(Ext2Error::NotEmpty);
        }
        let at = self.find_entry(&mut dir_inode, name)?.ok_or(Ext2Error::NotFound)?;
        let mut inode = self.iget(at.ino)?;
        if !inode.is_dir() {
            return Err(Ext2Error::NotDir);
        }
        if !self.empty_dir(&mut inode)? {
            return Err(Ext2Error::NotEmpty);
        }
        self.delete_entry(dir, at)?;
        if self.pins.contains_key(&at.ino) {
            // Still open (a working directory): an orphan until its last
            // unpin, as Linux keeps it until `ext2_evict_inode`.
            inode.links = 0;
            inode.ctime = self.now();
            self.write_inode(&inode)?;
        } else {
            self.delete_inode(inode)?;
        }
        self.adjust_links(dir, -1)
    }

    /// Adds the name `name` in `dir` for the existing non-directory `ino`
    /// (Linux `ext2_link`).
    pub fn link(&mut self, ino: Ino, dir: Ino, name: &[u8]) -> Result<()> {
        let result = self.link_checked(ino, dir, name);
        self.note(result)
    }

    fn link_checked(&mut self, ino: Ino, dir: Ino, name: &[u8]) -> Result<()> {
        self.check_new_name(dir, name)?;
        let inode = self.iget(ino)?;
        if inode.is_dir() {
            return Err(Ext2Error::NotPermitted);
        }
        // An orphan cannot be linked back (Linux `vfs_link`: ENOENT).
        if inode.links == 0 {
            return Err(Ext2Error::NotFound);
        }
        if inode.links >= LINK_MAX {
            return Err(Ext2Error::TooManyLinks);
        }
        let ft = inode.file_type().unwrap_or(FileType::Unknown);
        self.add_link(dir, name, ino, ft)?;
        self.adjust_links(ino, 1)
    }

    /// Whether directory `ancestor` is `dir` or one of its ancestors,
    /// following `..` up to the root.
    fn is_ancestor(&mut self, ancestor: Ino, dir: Ino) -> Result<bool> {
        let mut current = dir;
        for _ in 0..=self.geo.inodes_count {
            if current == ancestor {
                return Ok(true);
            }
            if current == Ino::ROOT {
                return Ok(false);
            }
            let mut inode = self.iget_dir(current)?;
            current = self.dotdot(&mut inode)?.ino;
        }
        Err(Ext2Error::corrupt("directory tree has a cycle", crate::Location::Inode(dir.0)))
    }

    /// Renames `old_name` in `old_dir` to `new_name` in `new_dir`, replacing
    /// what `new_name` named if POSIX allows it (Linux `ext2_rename`
    /// without flags).
    pub fn rename(&mut self, old_dir: Ino, old_name: &[u8], new_dir: Ino, new_name: &[u8]) -> Result<()> {
        let result = self.rename_checked(old_dir, old_name, new_dir, new_name);
        self.note(result)
    }

    fn rename_checked(&mut self, old_dir: Ino, old_name: &[u8], new_dir: Ino, new_name: &[u8]) -> Result<()> {
        self.check_writable()?;
        let mut old_dir_inode = self.iget_dir(old_dir)?;
        let mut new_dir_inode = self.iget_dir(new_dir)?;
        check_name(old_name)?;
        check_name(new_name)?;
        if is_dot(old_name) || is_dot(new_name) {
            return Err(Ext2Error::Busy);
        }
        let old_at = self.find_entry(&mut old_dir_inode, old_name)?.ok_or(Ext2Error::NotFound)?;
        let old_inode = self.iget(old_at.ino)?;
        let ft = old_inode.file_type().unwrap_or(FileType::Unknown);
        let is_dir = old_inode.is_dir();
        let new_at = self.find_entry(&mut new_dir_inode, new_name)?;
        if new_at.is_some_and(|at| at.ino == old_at.ino) {
            return Ok(());
        }
        if is_dir && self.is_ancestor(old_at.ino, new_dir)? {
            return Err(Ext2Error::Invalid);
        }
        match new_at {
            Some(at) => {
                let mut target = self.iget(at.ino)?;
                if is_dir {
                    if !target.is_dir() {
                        return Err(Ext2Error::NotDir);
                    }
                    if !self.empty_dir(&mut target)? {
                        return Err(Ext2Error::NotEmpty);
                    }
                } else if target.is_dir() {
                    return Err(Ext2Error::IsDir);
                }
                self.set_link(new_dir, at, old_at.ino, ft, true)?;
                self.adjust_links(at.ino, if target.is_dir() { -2 } else { -1 })?;
            }
            None => {
                if is_dir && old_dir != new_dir && new_dir_inode.links >= LINK_MAX {
                    return Err(Ext2Error::TooManyLinks);
                }
                self.add_link(new_dir, new_name, old_at.ino, ft)?;
                if is_dir {
                    self.adjust_links(new_dir, 1)?;
                }
            }
        }
        self.adjust_links(old_at.ino, 0)?;
        // The old entry may have moved if the new one went into the same
        // block: find it again.
        let mut old_dir_inode = self.iget_dir(old_dir)?;
        let old_at = self.find_entry(&mut old_dir_inode, old_name)?.ok_or(Ext2Error::NotFound)?;
        self.delete_entry(old_dir, old_at)?;
        if is_dir {
            if old_dir != new_dir {
                let mut moved = self.iget_dir(old_at.ino)?;
                let dotdot = self.dotdot(&mut moved)?;
                self.set_link(old_at.ino, dotdot, new_dir, FileType::Directory, false)?;
            }
            self.adjust_links(old_dir, -1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dot_and_dotdot_are_dots() {
        assert!(is_dot(b".") && is_dot(b".."));
        assert!(!is_dot(b"...") && !is_dot(b".a"));
    }
}
