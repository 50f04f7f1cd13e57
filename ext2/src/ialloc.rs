//! Inode allocation (Linux `fs/ext2/ialloc.c`: `ext2_new_inode`,
//! `ext2_free_inode`, `find_group_dir`, `find_group_other`).
//!
//! A directory goes to the group with the most free blocks among those with
//! at least the average number of free inodes (Linux's `find_group_dir`,
//! the policy before Orlov; Orlov, Linux's default, additionally keeps
//! subdirectories near their parent). Any other inode goes to its parent's
//! group if it has free inodes and blocks, else to a group found by a
//! quadratic hash, else to the first group with a free inode
//! (`find_group_other`).
//!
//! The inode bitmap, `bg_free_inodes_count`, `bg_used_dirs_count` and the
//! total for `s_free_inodes_count` change together. A new inode is zeroed
//! whole (all `s_inode_size` bytes) before its fields are set, as Linux's
//! ext2 does, and inherits no flags from its directory.

use crate::Result;
use crate::balloc::{find_next_zero_bit, set_bit, test_bit};
use crate::device::BlockDevice;
use crate::error::{Ext2Error, Location};
use crate::inode::Inode;
use crate::super_block::Ext2Fs;
use crate::{Ino, layout};

impl<D: BlockDevice> Ext2Fs<D> {
    /// Linux `find_group_dir`.
    fn find_group_dir(&self) -> Option<u32> {
        let average = self.free_inodes / self.geo.groups.max(1);
        let mut best: Option<(u32, u16)> = None;
        for (g, desc) in self.groups.iter().enumerate() {
            if desc.free_inodes == 0 || u32::from(desc.free_inodes) < average {
                continue;
            }
            if best.is_none_or(|(_, free)| desc.free_blocks > free) {
                best = Some((g as u32, desc.free_blocks));
            }
        }
        best.map(|(g, _)| g).or_else(|| self.groups.iter().position(|d| d.free_inodes > 0).map(|g| g as u32))
    }

    /// Linux `find_group_other`.
    fn find_group_other(&self, parent: Ino) -> Option<u32> {
        let n = self.geo.groups;
        let usable = |g: u32| self.groups.get(g as usize).is_some_and(|d| d.free_inodes > 0 && d.free_blocks > 0);
        let parent_group = self.geo.inode_group(parent.0).0;
        if usable(parent_group) {
            return Some(parent_group);
        }
        let mut group = ((u64::from(parent_group) + u64::from(parent.0)) % u64::from(n)) as u32;
        let mut step = 1;
        while step < n {
            group = ((u64::from(group) + u64::from(step)) % u64::from(n)) as u32;
            if usable(group) {
                return Some(group);
            }
            step <<= 1;
        }
        (0..n).map(|i| (parent_group + i) % n).find(|&g| self.groups.get(g as usize).is_some_and(|d| d.free_inodes > 0))
    }

    /// Allocates an inode of type and permissions `mode` in directory
    /// `dir` and returns it zeroed, with mode, owner, times and generation
    /// set and no links (Linux `ext2_new_inode`).
    pub(crate) fn new_inode(&mut self, dir: Ino, mode: u16, uid: u32, gid: u32) -> Result<Inode> {
        if self.free_inodes == 0 {
            return Err(Ext2Error::NoSpace);
        }
        let is_dir = mode & layout::S_IFMT == layout::S_IFDIR;
        let first = if is_dir { self.find_group_dir() } else { self.find_group_other(dir) };
        let first = first.ok_or(Ext2Error::NoSpace)?;
        for i in 0..self.geo.groups {
            let group = (first + i) % self.geo.groups;
            let Some(desc) = self.groups.get(group as usize) else { continue };
            if desc.free_inodes == 0 {
                continue;
            }
            let bitmap_block = desc.inode_bitmap;
            // Inodes below s_first_ino are reserved.
            let base = group * self.geo.inodes_per_group;
            let from = (self.geo.first_ino - 1).saturating_sub(base);
            let bitmap = self.cache.bread(bitmap_block)?;
            let Some(bit) = find_next_zero_bit(bitmap, from, self.geo.inodes_per_group) else { continue };
            set_bit(self.cache.bread_mut(bitmap_block)?, bit, true);
            if let Some(desc) = self.groups.get_mut(group as usize) {
                desc.free_inodes -= 1;
                if is_dir {
                    desc.used_dirs = desc.used_dirs.saturating_add(1);
                }
            }
            self.free_inodes = self.free_inodes.saturating_sub(1);
            self.mark_dirty();

            let ino = Ino(base + bit + 1);
            let mut inode = self.read_inode(ino)?;
            inode.raw.fill(0);
            let mut inode = Inode::parse(ino, inode.raw);
            let now = self.now();
            inode.mode = mode;
            inode.uid = uid;
            inode.gid = gid;
            inode.atime = now;
            inode.ctime = now;
            inode.mtime = now;
            self.next_generation = self.next_generation.wrapping_add(1);
            inode.generation = self.next_generation;
            return Ok(inode);
        }
        Err(Ext2Error::NoSpace)
    }

    /// Returns inode `ino` to its group (Linux `ext2_free_inode`).
    pub(crate) fn free_inode(&mut self, ino: Ino, was_dir: bool) -> Result<()> {
        let (group, bit) = self.geo.inode_group(ino.0);
        let desc = self.groups.get(group as usize).ok_or(Ext2Error::corrupt("no group", Location::Inode(ino.0)))?;
        let bitmap_block = desc.inode_bitmap;
        let bitmap = self.cache.bread_mut(bitmap_block)?;
        if !test_bit(bitmap, bit) {
            return Err(Ext2Error::corrupt("freeing a free inode", Location::Inode(ino.0)));
        }
        set_bit(bitmap, bit, false);
        if let Some(desc) = self.groups.get_mut(group as usize) {
            desc.free_inodes = desc.free_inodes.saturating_add(1);
            if was_dir {
                desc.used_dirs = desc.used_dirs.saturating_sub(1);
            }
        }
        self.free_inodes = self.free_inodes.saturating_add(1);
        self.mark_dirty();
        Ok(())
    }
}
