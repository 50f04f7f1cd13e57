//! Inodes and the file block map (Linux `fs/ext2/inode.c`: `ext2_iget`,
//! `ext2_write_inode`, `ext2_get_block`, `ext2_truncate_blocks`,
//! `ext2_evict_inode`, `ext2_setattr`).
//!
//! A file's blocks are mapped by `i_block`: 12 direct pointers, then one
//! single, one double and one triple indirect block; a zero pointer is a
//! hole. [`Ext2Fs::get_block`] walks that tree for one file block and, when
//! asked, allocates the missing indirect blocks (zeroed, through the block
//! cache) and the data block (not zeroed: [`Mapping::new`] tells the caller
//! to zero what it does not write, Linux's `buffer_new`). Every pointer read
//! from the disk is checked to lie in the data area and not to point at the
//! block holding it.
//!
//! Truncation frees the data blocks past the new end and every indirect
//! block left without pointers, and zeroes the tail of the last partial
//! block so a later extension reads zeros. `i_blocks` counts data and
//! indirect blocks (and the extended attribute block) in 512-byte units.
//!
//! Inodes are not cached: each operation reads the on-disk inode through the
//! block cache, changes it and writes it back. The bytes past the 128-byte
//! base of a large inode are kept as they are, except that a new inode is
//! zeroed whole, as Linux's ext2 does.
//!
//! [`Ext2Fs::get_blocks`] maps a run at once for a reader (Linux
//! `ext2_get_blocks` with `maxblocks` and without `create`): the blocks
//! from a file block on that follow each other on the disk, or the holes
//! that follow each other, so that a page cache reads each run with one
//! request straight into its pages.
//!
//! Differences from Linux: no block preallocation or reservation windows,
//! allocation maps one block at a time (`maxblocks` is one with
//! `create`), a run is found by walking the tree for each of its blocks
//! (Linux scans the indirect block it reached), and `atime` is not updated
//! by reads (the VFS decides its atime policy and calls
//! [`Ext2Fs::setattr`]).

use alloc::vec;
use alloc::vec::Vec;

use crate::device::BlockDevice;
use crate::error::{Ext2Error, Location};
use crate::layout::{self, FileType, N_BLOCKS, NDIR_BLOCKS, RoCompatFeatures, get_u16, get_u32, ino, put_u16, put_u32};
use crate::super_block::Ext2Fs;
use crate::{Ino, PhysBlock, Result};

/// A file block mapped to the disk: the result of [`Ext2Fs::get_block`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The disk block holding the file block.
    pub block: PhysBlock,
    /// The block was just allocated and holds garbage: the caller must
    /// write or zero all of it (Linux `buffer_new`).
    pub new: bool,
}

/// File blocks in a row as they lie on the disk: the result of
/// [`Ext2Fs::get_blocks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// The disk block holding the first file block, the others following
    /// it on the disk; `None` for a run of holes.
    pub block: Option<PhysBlock>,
    /// File blocks in the run, at least 1.
    pub count: u32,
}

/// An inode's attributes, as `stat(2)` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Inode number.
    pub ino: Ino,
    /// The kind of file.
    pub file_type: FileType,
    /// Type and permission bits (`i_mode`).
    pub mode: u16,
    /// Hard links.
    pub nlink: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Allocated space in 512-byte units (`i_blocks`).
    pub blocks: u32,
    /// Last access.
    pub atime: u32,
    /// Last data change.
    pub mtime: u32,
    /// Last inode change.
    pub ctime: u32,
    /// Inode flags (`i_flags`, `EXT2_*_FL`).
    pub flags: u32,
}

/// Attribute changes for [`Ext2Fs::setattr`] (Linux `struct iattr`,
/// without the size: use [`Ext2Fs::truncate`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits (the low 12 bits of the mode; the type stays).
    pub mode: Option<u16>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New access time.
    pub atime: Option<u32>,
    /// New modification time.
    pub mtime: Option<u32>,
}

/// An inode as read from the inode table (Linux `struct ext2_inode_info`).
#[derive(Clone, Debug)]
pub(crate) struct Inode {
    pub(crate) ino: Ino,
    pub(crate) mode: u16,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) size: u64,
    pub(crate) atime: u32,
    pub(crate) ctime: u32,
    pub(crate) mtime: u32,
    pub(crate) dtime: u32,
    pub(crate) links: u16,
    pub(crate) blocks: u32,
    pub(crate) flags: u32,
    pub(crate) block: [u32; N_BLOCKS],
    pub(crate) generation: u32,
    pub(crate) file_acl: u32,
    /// The on-disk bytes (`s_inode_size` of them), patched on write.
    pub(crate) raw: Vec<u8>,
}

impl Inode {
    /// Parses the raw bytes of inode `ino`.
    pub(crate) fn parse(ino: Ino, raw: Vec<u8>) -> Inode {
        let mut block = [0u32; N_BLOCKS];
        for (i, b) in block.iter_mut().enumerate() {
            *b = get_u32(&raw, ino::BLOCK + 4 * i);
        }
        let mode = get_u16(&raw, ino::MODE);
        let mut size = u64::from(get_u32(&raw, ino::SIZE));
        if mode & layout::S_IFMT == layout::S_IFREG {
            size |= u64::from(get_u32(&raw, ino::SIZE_HIGH)) << 32;
        }
        Inode {
            ino,
            mode,
            uid: u32::from(get_u16(&raw, ino::UID)) | u32::from(get_u16(&raw, ino::UID_HIGH)) << 16,
            gid: u32::from(get_u16(&raw, ino::GID)) | u32::from(get_u16(&raw, ino::GID_HIGH)) << 16,
            size,
            atime: get_u32(&raw, ino::ATIME),
            ctime: get_u32(&raw, ino::CTIME),
            mtime: get_u32(&raw, ino::MTIME),
            dtime: get_u32(&raw, ino::DTIME),
            links: get_u16(&raw, ino::LINKS_COUNT),
            blocks: get_u32(&raw, ino::BLOCKS),
            flags: get_u32(&raw, ino::FLAGS),
            block,
            generation: get_u32(&raw, ino::GENERATION),
            file_acl: get_u32(&raw, ino::FILE_ACL),
            raw,
        }
    }

    /// The raw bytes with every field written back.
    fn serialize(&self) -> Vec<u8> {
        let mut raw = self.raw.clone();
        put_u16(&mut raw, ino::MODE, self.mode);
        put_u16(&mut raw, ino::UID, self.uid as u16);
        put_u16(&mut raw, ino::UID_HIGH, (self.uid >> 16) as u16);
        put_u16(&mut raw, ino::GID, self.gid as u16);
        put_u16(&mut raw, ino::GID_HIGH, (self.gid >> 16) as u16);
        put_u32(&mut raw, ino::SIZE, self.size as u32);
        if self.is_reg() {
            put_u32(&mut raw, ino::SIZE_HIGH, (self.size >> 32) as u32);
        }
        put_u32(&mut raw, ino::ATIME, self.atime);
        put_u32(&mut raw, ino::CTIME, self.ctime);
        put_u32(&mut raw, ino::MTIME, self.mtime);
        put_u32(&mut raw, ino::DTIME, self.dtime);
        put_u16(&mut raw, ino::LINKS_COUNT, self.links);
        put_u32(&mut raw, ino::BLOCKS, self.blocks);
        put_u32(&mut raw, ino::FLAGS, self.flags);
        for (i, b) in self.block.iter().enumerate() {
            put_u32(&mut raw, ino::BLOCK + 4 * i, *b);
        }
        put_u32(&mut raw, ino::GENERATION, self.generation);
        put_u32(&mut raw, ino::FILE_ACL, self.file_acl);
        raw
    }

    pub(crate) fn file_type(&self) -> Option<FileType> {
        FileType::from_mode(self.mode)
    }

    pub(crate) fn is_dir(&self) -> bool {
        self.mode & layout::S_IFMT == layout::S_IFDIR
    }

    pub(crate) fn is_reg(&self) -> bool {
        self.mode & layout::S_IFMT == layout::S_IFREG
    }

    pub(crate) fn is_symlink(&self) -> bool {
        self.mode & layout::S_IFMT == layout::S_IFLNK
    }

    /// The corruption error for this inode.
    pub(crate) fn corrupt(&self, what: &'static str) -> Ext2Error {
        Ext2Error::corrupt(what, Location::Inode(self.ino.0))
    }
}

/// Where file block `iblock` sits in the tree: the index in `i_block`, then
/// the index in each indirect block, and the number of levels (Linux
/// `ext2_block_to_path`).
fn block_to_path(iblock: u64, addr_per_block: u32) -> Result<([u32; 4], usize)> {
    let p = u64::from(addr_per_block);
    let direct = NDIR_BLOCKS as u64;
    let mut i = iblock;
    if i < direct {
        return Ok(([i as u32, 0, 0, 0], 1));
    }
    i -= direct;
    if i < p {
        return Ok(([12, i as u32, 0, 0], 2));
    }
    i -= p;
    if i < p * p {
        return Ok(([13, (i / p) as u32, (i % p) as u32, 0], 3));
    }
    i -= p * p;
    if i < p * p * p {
        return Ok(([14, (i / (p * p)) as u32, ((i / p) % p) as u32, (i % p) as u32], 4));
    }
    Err(Ext2Error::FileTooBig)
}

impl<D: BlockDevice> Ext2Fs<D> {
    /// The inode table block and byte offset of inode `ino`.
    fn inode_location(&self, ino: Ino) -> Result<(u32, usize)> {
        if ino.0 == 0 || ino.0 > self.geo.inodes_count {
            return Err(Ext2Error::corrupt("inode number out of range", Location::Inode(ino.0)));
        }
        let (group, index) = self.geo.inode_group(ino.0);
        let desc = self.groups.get(group as usize).ok_or(Ext2Error::corrupt("no group", Location::Inode(ino.0)))?;
        let byte = u64::from(index) * u64::from(self.geo.inode_size);
        let block = desc.inode_table + (byte >> self.geo.block_bits) as u32;
        Ok((block, (byte % u64::from(self.geo.block_size)) as usize))
    }

    /// Reads inode `ino` whatever its state (Linux `ext2_get_inode`).
    pub(crate) fn read_inode(&mut self, ino: Ino) -> Result<Inode> {
        let (block, offset) = self.inode_location(ino)?;
        let size = self.geo.inode_size as usize;
        let data = self.cache.bread(block)?;
        let raw = data.get(offset..offset + size).ok_or(Ext2Error::corrupt("inode", Location::Inode(ino.0)))?;
        Ok(Inode::parse(ino, raw.to_vec()))
    }

    /// Reads inode `ino`, which a directory entry or the caller refers to,
    /// checking it is in use and sane (Linux `ext2_iget`).
    pub(crate) fn iget(&mut self, ino: Ino) -> Result<Inode> {
        let inode = self.read_inode(ino)?;
        // An orphan (pinned, last link gone) is still in use.
        if inode.links == 0 && !self.pins.contains_key(&ino) {
            return Err(inode.corrupt("reference to a deleted inode"));
        }
        if inode.file_type().is_none() {
            return Err(inode.corrupt("invalid file type in i_mode"));
        }
        if inode.size > self.geo.max_file_size {
            return Err(inode.corrupt("i_size beyond the largest file"));
        }
        if inode.is_dir() && inode.size % u64::from(self.geo.block_size) != 0 {
            return Err(inode.corrupt("directory size not a multiple of the block size"));
        }
        Ok(inode)
    }

    /// [`Self::iget`] for the data paths: EISDIR for a directory, EINVAL
    /// for anything else that is not a regular file.
    fn iget_regular(&mut self, ino: Ino) -> Result<Inode> {
        let inode = self.iget(ino)?;
        if inode.is_dir() {
            return Err(Ext2Error::IsDir);
        }
        if !inode.is_reg() {
            return Err(Ext2Error::Invalid);
        }
        Ok(inode)
    }

    /// Writes `inode` into its inode table block (Linux `ext2_write_inode`),
    /// turning on `large_file` for a file of 2 GiB or more.
    pub(crate) fn write_inode(&mut self, inode: &Inode) -> Result<()> {
        if inode.is_reg() && inode.size > 0x7fff_ffff && !self.ro_compat.contains(RoCompatFeatures::LARGE_FILE) {
            self.ro_compat |= RoCompatFeatures::LARGE_FILE;
            self.mark_dirty();
        }
        let (block, offset) = self.inode_location(inode.ino)?;
        let raw = inode.serialize();
        let data = self.cache.bread_mut(block)?;
        let dst = data.get_mut(offset..offset + raw.len()).ok_or(inode.corrupt("inode"))?;
        dst.copy_from_slice(&raw);
        self.mark_dirty();
        Ok(())
    }

    /// 512-byte units per fs block, the `i_blocks` step.
    pub(crate) fn sectors_per_block(&self) -> u32 {
        self.geo.block_size / 512
    }

    /// Reads pointer `index` of indirect block `block`.
    fn indirect_entry(&mut self, block: u32, index: u32) -> Result<u32> {
        let data = self.cache.bread(block)?;
        Ok(layout::get_u32(data, index as usize * 4))
    }

    /// The goal for a block allocated at `index` of an indirect block (or of
    /// `i_block` when `indirect` is `None`): just after the nearest mapped
    /// block before it, else just after the indirect block, else the start
    /// of the inode's group (Linux `ext2_find_near`).
    fn find_near(&mut self, inode: &Inode, indirect: Option<u32>, index: u32) -> Result<u32> {
        match indirect {
            None => {
                let before = inode.block.iter().take(index as usize).rev().find(|&&b| b != 0);
                if let Some(&b) = before {
                    return Ok(b.saturating_add(1));
                }
                let (group, _) = self.geo.inode_group(inode.ino.0);
                Ok(self.geo.group_first_block(group))
            }
            Some(block) => {
                let data = self.cache.bread(block)?;
                let before = (0..index as usize).rev().map(|i| layout::get_u32(data, i * 4)).find(|&b| b != 0);
                Ok(before.unwrap_or(block).saturating_add(1))
            }
        }
    }

    /// Maps file block `iblock` of `inode`, allocating when `create` (Linux
    /// `ext2_get_block` for one block). Changes `inode` in memory only.
    pub(crate) fn get_block_inode(&mut self, inode: &mut Inode, iblock: u64, create: bool) -> Result<Option<Mapping>> {
        let (path, depth) = block_to_path(iblock, self.geo.addr_per_block)?;
        let mut parent: Option<u32> = None;
        let mut new = false;
        let mut current = 0;
        for (level, &index) in path.iter().enumerate().take(depth) {
            let is_data = level + 1 == depth;
            let existing = match parent {
                None => inode.block.get(index as usize).copied().unwrap_or(0),
                Some(p) => self.indirect_entry(p, index)?,
            };
            if existing != 0 {
                self.check_data_block(existing, inode.ino)?;
                if Some(existing) == parent {
                    return Err(inode.corrupt("indirect block points to itself"));
                }
                current = existing;
                parent = Some(existing);
                continue;
            }
            if !create {
                return Ok(None);
            }
            let goal = self.find_near(inode, parent, index)?;
            let block = self.new_block(goal, inode)?;
            if !is_data {
                self.cache.getblk_zeroed(block)?;
            }
            match parent {
                None => {
                    if let Some(slot) = inode.block.get_mut(index as usize) {
                        *slot = block;
                    }
                }
                Some(p) => {
                    let data = self.cache.bread_mut(p)?;
                    layout::put_u32(data, index as usize * 4, block);
                }
            }
            new = is_data;
            current = block;
            parent = Some(block);
        }
        Ok(Some(Mapping { block: PhysBlock(current), new }))
    }

    /// Maps file block `iblock` of inode `ino` to a disk block, allocating
    /// it and any missing indirect blocks when `create` (Linux
    /// `ext2_get_block`): the hook through which a page cache reads and
    /// writes file data. `Ok(None)` is a hole (only when not `create`).
    pub fn get_block(&mut self, ino: Ino, iblock: u64, create: bool) -> Result<Option<Mapping>> {
        let result = self.get_block_checked(ino, iblock, create);
        self.note(result)
    }

    fn get_block_checked(&mut self, ino: Ino, iblock: u64, create: bool) -> Result<Option<Mapping>> {
        if create {
            self.check_writable()?;
        }
        let mut inode = self.iget_regular(ino)?;
        let before = inode.blocks;
        let mapping = self.get_block_inode(&mut inode, iblock, create);
        if inode.blocks != before {
            self.write_inode(&inode)?;
        }
        mapping
    }

    /// Maps file blocks `iblock..iblock + max` of regular file `ino` as far
    /// as they lie in one run (Linux `ext2_get_blocks` without `create`):
    /// the first block's disk block and how many blocks after it follow it
    /// on the disk, or how many holes follow each other from `iblock`.
    /// `max` of 0 is taken as 1.
    pub fn get_blocks(&mut self, ino: Ino, iblock: u64, max: u32) -> Result<Extent> {
        let result = self.get_blocks_checked(ino, iblock, max);
        self.note(result)
    }

    fn get_blocks_checked(&mut self, ino: Ino, iblock: u64, max: u32) -> Result<Extent> {
        let mut inode = self.iget_regular(ino)?;
        let first = self.get_block_inode(&mut inode, iblock, false)?.map(|m| m.block);
        let mut count = 1;
        while count < max {
            let Some(next) = iblock.checked_add(u64::from(count)) else { break };
            let mapped = self.get_block_inode(&mut inode, next, false)?.map(|m| m.block);
            let follows = match (first, mapped) {
                (None, None) => true,
                (Some(f), Some(m)) => f.0.checked_add(count) == Some(m.0),
                _ => false,
            };
            if !follows {
                break;
            }
            count += 1;
        }
        Ok(Extent { block: first, count })
    }

    /// Frees a block that belonged to `inode`, dropping it from `i_blocks`.
    pub(crate) fn free_inode_block(&mut self, inode: &mut Inode, block: u32) -> Result<()> {
        self.check_data_block(block, inode.ino)?;
        self.free_block(block)?;
        inode.blocks = inode.blocks.saturating_sub(self.sectors_per_block());
        Ok(())
    }

    /// Frees everything under `*ptr`, a block at `depth` levels of
    /// indirection (0: a data block) mapping file blocks from `base`, that
    /// maps blocks at or past `first_kill`; frees the indirect block itself
    /// when it is left without pointers (Linux `ext2_free_branches`).
    fn truncate_branch(
        &mut self,
        inode: &mut Inode,
        ptr: &mut u32,
        depth: u32,
        base: u64,
        first_kill: u64,
    ) -> Result<()> {
        if *ptr == 0 {
            return Ok(());
        }
        let p = u64::from(self.geo.addr_per_block);
        let span = p.pow(depth);
        if base.saturating_add(span) <= first_kill {
            return Ok(());
        }
        if depth == 0 {
            self.free_inode_block(inode, *ptr)?;
            *ptr = 0;
            return Ok(());
        }
        self.check_data_block(*ptr, inode.ino)?;
        let block = *ptr;
        let mut entries: Vec<u32> = {
            let data = self.cache.bread(block)?;
            data.as_chunks::<4>().0.iter().map(|c| u32::from_le_bytes(*c)).collect()
        };
        let child_span = p.pow(depth - 1);
        let mut changed = false;
        for (i, entry) in entries.iter_mut().enumerate() {
            if *entry == block {
                return Err(inode.corrupt("indirect block points to itself"));
            }
            let before = *entry;
            self.truncate_branch(inode, entry, depth - 1, base + i as u64 * child_span, first_kill)?;
            changed |= *entry != before;
        }
        if entries.iter().all(|&e| e == 0) {
            self.free_inode_block(inode, block)?;
            *ptr = 0;
        } else if changed {
            let data = self.cache.bread_mut(block)?;
            for (i, e) in entries.iter().enumerate() {
                layout::put_u32(data, i * 4, *e);
            }
        }
        Ok(())
    }

    /// Frees every block of `inode` mapping file blocks at or past
    /// `first_kill` (Linux `ext2_truncate_blocks`).
    pub(crate) fn truncate_blocks(&mut self, inode: &mut Inode, first_kill: u64) -> Result<()> {
        let p = u64::from(self.geo.addr_per_block);
        let mut bases = [0u64; N_BLOCKS];
        for (i, base) in bases.iter_mut().enumerate().take(NDIR_BLOCKS) {
            *base = i as u64;
        }
        bases[12] = 12;
        bases[13] = 12 + p;
        bases[14] = 12 + p + p * p;
        for (slot, &base) in bases.iter().enumerate() {
            let depth = slot.saturating_sub(NDIR_BLOCKS - 1) as u32;
            let mut ptr = inode.block[slot];
            self.truncate_branch(inode, &mut ptr, depth, base, first_kill)?;
            inode.block[slot] = ptr;
        }
        Ok(())
    }

    /// Sets the size of regular file `ino` (Linux `ext2_setsize`): growing
    /// leaves a hole, shrinking frees the blocks past the end and zeroes the
    /// rest of the last partial block.
    pub fn truncate(&mut self, ino: Ino, size: u64) -> Result<()> {
        let result = self.truncate_checked(ino, size);
        self.note(result)
    }

    fn truncate_checked(&mut self, ino: Ino, size: u64) -> Result<()> {
        self.check_writable()?;
        let mut inode = self.iget_regular(ino)?;
        if size > self.geo.max_file_size {
            return Err(Ext2Error::FileTooBig);
        }
        let bs = u64::from(self.geo.block_size);
        if size < inode.size {
            let tail = (size % bs) as usize;
            if tail != 0
                && let Some(m) = self.get_block_inode(&mut inode, size / bs, false)?
            {
                let mut buf = vec![0u8; bs as usize];
                let offset = u64::from(m.block.0) * bs;
                self.cache.dev().read_at(offset, &mut buf)?;
                buf.iter_mut().skip(tail).for_each(|b| *b = 0);
                self.cache.dev().write_at(offset, &buf)?;
            }
            self.truncate_blocks(&mut inode, size.div_ceil(bs))?;
        }
        inode.size = size;
        let now = self.now();
        inode.mtime = now;
        inode.ctime = now;
        self.write_inode(&inode)
    }

    /// Reads from regular file `ino` at `offset` into `buf`; returns the
    /// bytes read, short at the end of the file. Holes read as zeros.
    pub fn read(&mut self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let result = self.read_checked(ino, offset, buf);
        self.note(result)
    }

    fn read_checked(&mut self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let mut inode = self.iget_regular(ino)?;
        if offset >= inode.size {
            return Ok(0);
        }
        let len = (inode.size - offset).min(buf.len() as u64) as usize;
        let bs = u64::from(self.geo.block_size);
        let mut block_buf = vec![0u8; bs as usize];
        // Whole blocks that follow each other on the disk are read with one
        // request (Linux's `mpage_readahead` builds one bio for them): the
        // run's first disk block, its start in `buf` and its length.
        let mut run: Option<(u64, usize, usize)> = None;
        let mut done = 0;
        while done < len {
            let pos = offset + done as u64;
            let within = (pos % bs) as usize;
            let n = (bs as usize - within).min(len - done);
            let mapped = self.get_block_inode(&mut inode, pos / bs, false)?;
            if let (Some(m), true) = (mapped, n == bs as usize) {
                let block = u64::from(m.block.0);
                match run {
                    Some((first, start, count)) if first + count as u64 == block && start + count * n == done => {
                        run = Some((first, start, count + 1));
                    }
                    _ => {
                        self.read_run(run.take(), buf)?;
                        run = Some((block, done, 1));
                    }
                }
                done += n;
                continue;
            }
            self.read_run(run.take(), buf)?;
            let dst = buf.get_mut(done..done + n).ok_or(Ext2Error::Invalid)?;
            match mapped {
                None => dst.fill(0),
                Some(m) => {
                    let disk = u64::from(m.block.0) * bs;
                    self.cache.dev().read_at(disk, &mut block_buf)?;
                    dst.copy_from_slice(block_buf.get(within..within + n).ok_or(Ext2Error::Invalid)?);
                }
            }
            done += n;
        }
        self.read_run(run, buf)?;
        Ok(len)
    }

    /// Reads a run of whole blocks `(first disk block, start in buf,
    /// blocks)` with one request.
    fn read_run(&mut self, run: Option<(u64, usize, usize)>, buf: &mut [u8]) -> Result<()> {
        let Some((first, start, count)) = run else { return Ok(()) };
        let bs = self.geo.block_size as usize;
        let dst = buf.get_mut(start..start + count * bs).ok_or(Ext2Error::Invalid)?;
        self.cache.dev().read_at(first * bs as u64, dst)?;
        Ok(())
    }

    /// Writes `buf` to regular file `ino` at `offset`, allocating blocks and
    /// growing the file as needed; returns the bytes written, short only if
    /// the disk filled up after some were written.
    pub fn write(&mut self, ino: Ino, offset: u64, buf: &[u8]) -> Result<usize> {
        let result = self.write_checked(ino, offset, buf);
        self.note(result)
    }

    fn write_checked(&mut self, ino: Ino, offset: u64, buf: &[u8]) -> Result<usize> {
        self.check_writable()?;
        let mut inode = self.iget_regular(ino)?;
        if buf.is_empty() {
            return Ok(0);
        }
        if offset >= self.geo.max_file_size {
            return Err(Ext2Error::FileTooBig);
        }
        let len = (self.geo.max_file_size - offset).min(buf.len() as u64) as usize;
        let bs = u64::from(self.geo.block_size);
        let mut block_buf = vec![0u8; bs as usize];
        let mut done = 0;
        let mut failure = None;
        while done < len {
            let pos = offset + done as u64;
            let within = (pos % bs) as usize;
            let n = (bs as usize - within).min(len - done);
            let src = buf.get(done..done + n).ok_or(Ext2Error::Invalid)?;
            let m = match self.get_block_inode(&mut inode, pos / bs, true) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            let disk = u64::from(m.block.0) * bs;
            let io = if n == bs as usize {
                self.cache.dev().write_at(disk, src)
            } else {
                if m.new {
                    block_buf.fill(0);
                } else if let Err(e) = self.cache.dev().read_at(disk, &mut block_buf) {
                    failure = Some(e.into());
                    break;
                }
                if let Some(dst) = block_buf.get_mut(within..within + n) {
                    dst.copy_from_slice(src);
                }
                self.cache.dev().write_at(disk, &block_buf)
            };
            if let Err(e) = io {
                failure = Some(e.into());
                break;
            }
            done += n;
        }
        if done > 0 {
            inode.size = inode.size.max(offset + done as u64);
            let now = self.now();
            inode.mtime = now;
            inode.ctime = now;
        }
        // The inode goes back even on failure: blocks may have been mapped.
        self.write_inode(&inode)?;
        match failure {
            Some(e) if done == 0 => Err(e),
            _ => Ok(done),
        }
    }

    /// Writes whole blocks of regular file `ino` from file block `iblock`
    /// on, allocating those that are holes, without touching its size or
    /// times (Linux `ext2_writepages`: `get_block` with `create`, then the
    /// data goes to the blocks): how a page cache writes a page back.
    /// `data` is a whole number of blocks; the caller keeps what lies past
    /// the end of the file zero.
    pub fn write_blocks(&mut self, ino: Ino, iblock: u64, data: &[u8]) -> Result<()> {
        let result = self.write_blocks_checked(ino, iblock, data);
        self.note(result)
    }

    fn write_blocks_checked(&mut self, ino: Ino, iblock: u64, data: &[u8]) -> Result<()> {
        self.check_writable()?;
        let bs = self.geo.block_size as usize;
        if !data.len().is_multiple_of(bs) {
            return Err(Ext2Error::Invalid);
        }
        let blocks = data.chunks_exact(bs);
        let mut inode = self.iget_regular(ino)?;
        let before = inode.blocks;
        // Blocks that follow each other on the disk go in one request:
        // the run's first disk block, first index in `data`, length.
        let mut run: Option<(u64, usize, usize)> = None;
        let mut result = Ok(());
        for (i, _) in blocks.enumerate() {
            let mapped = iblock
                .checked_add(i as u64)
                .ok_or(Ext2Error::FileTooBig)
                .and_then(|b| self.get_block_inode(&mut inode, b, true));
            let block = match mapped {
                Ok(Some(m)) => u64::from(m.block.0),
                Ok(None) => {
                    result = Err(Ext2Error::FileTooBig);
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            match run {
                Some((first, start, count)) if first + count as u64 == block && start + count == i => {
                    run = Some((first, start, count + 1));
                }
                _ => {
                    if let Err(e) = self.write_run(run.take(), data) {
                        result = Err(e);
                        break;
                    }
                    run = Some((block, i, 1));
                }
            }
        }
        if result.is_ok() {
            result = self.write_run(run, data);
        }
        // Blocks may have been mapped before a failure: the inode goes back.
        if inode.blocks != before {
            self.write_inode(&inode)?;
        }
        result
    }

    /// Writes a run of whole blocks `(first disk block, first block index
    /// in data, blocks)` with one request.
    fn write_run(&mut self, run: Option<(u64, usize, usize)>, data: &[u8]) -> Result<()> {
        let Some((first, start, count)) = run else { return Ok(()) };
        let bs = self.geo.block_size as usize;
        let src = data.get(start * bs..(start + count) * bs).ok_or(Ext2Error::Invalid)?;
        self.cache.dev().write_at(first * bs as u64, src)?;
        Ok(())
    }

    /// Records a write that ended at byte `end` of regular file `ino`:
    /// the size grows to `end` if it was smaller, and the modification and
    /// change times become now (Linux `generic_write_end`'s `i_size_write`
    /// and `file_update_time`). Blocks are the page cache's business
    /// ([`Ext2Fs::get_block`], [`Ext2Fs::write_blocks`]).
    pub fn write_end(&mut self, ino: Ino, end: u64) -> Result<()> {
        let result = self.write_end_checked(ino, end);
        self.note(result)
    }

    fn write_end_checked(&mut self, ino: Ino, end: u64) -> Result<()> {
        self.check_writable()?;
        let mut inode = self.iget_regular(ino)?;
        if end > self.geo.max_file_size {
            return Err(Ext2Error::FileTooBig);
        }
        inode.size = inode.size.max(end);
        let now = self.now();
        inode.mtime = now;
        inode.ctime = now;
        self.write_inode(&inode)
    }

    /// The attributes of inode `ino` (Linux `ext2_getattr`).
    pub fn stat(&mut self, ino: Ino) -> Result<Stat> {
        let result = self.iget(ino);
        let inode = self.note(result)?;
        Ok(Stat {
            ino,
            file_type: inode.file_type().unwrap_or(FileType::Unknown),
            mode: inode.mode,
            nlink: inode.links,
            uid: inode.uid,
            gid: inode.gid,
            size: inode.size,
            blocks: inode.blocks,
            atime: inode.atime,
            mtime: inode.mtime,
            ctime: inode.ctime,
            flags: inode.flags,
        })
    }

    /// Changes mode, owner or times of `ino` and stamps its ctime (Linux
    /// `ext2_setattr` without the size).
    pub fn setattr(&mut self, ino: Ino, attr: SetAttr) -> Result<()> {
        let result = self.setattr_checked(ino, attr);
        self.note(result)
    }

    fn setattr_checked(&mut self, ino: Ino, attr: SetAttr) -> Result<()> {
        self.check_writable()?;
        let mut inode = self.iget(ino)?;
        if let Some(mode) = attr.mode {
            inode.mode = (inode.mode & layout::S_IFMT) | (mode & 0o7777);
        }
        if let Some(uid) = attr.uid {
            inode.uid = uid;
        }
        if let Some(gid) = attr.gid {
            inode.gid = gid;
        }
        if let Some(atime) = attr.atime {
            inode.atime = atime;
        }
        if let Some(mtime) = attr.mtime {
            inode.mtime = mtime;
        }
        inode.ctime = self.now();
        self.write_inode(&inode)
    }

    /// Whether `inode` keeps no blocks of its own: a fast symlink (target in
    /// `i_block`) or a device, FIFO or socket (Linux
    /// `ext2_inode_is_fast_symlink` and `ext2_evict_inode`'s test).
    pub(crate) fn has_no_data_blocks(&self, inode: &Inode) -> bool {
        let ea_blocks = if inode.file_acl != 0 { self.sectors_per_block() } else { 0 };
        match inode.file_type() {
            Some(FileType::Regular | FileType::Directory) => false,
            Some(FileType::Symlink) => inode.blocks.saturating_sub(ea_blocks) == 0,
            _ => true,
        }
    }

    /// Frees an inode whose last link is gone: its blocks, its extended
    /// attribute block reference and its number (Linux `ext2_evict_inode`
    /// and `ext2_free_inode`).
    pub(crate) fn delete_inode(&mut self, mut inode: Inode) -> Result<()> {
        let now = self.now();
        inode.dtime = now;
        inode.links = 0;
        if !self.has_no_data_blocks(&inode) {
            self.truncate_blocks(&mut inode, 0)?;
        }
        inode.size = 0;
        if inode.file_acl != 0 {
            self.release_xattr_block(&mut inode)?;
        }
        let was_dir = inode.is_dir();
        self.write_inode(&inode)?;
        self.free_inode(inode.ino, was_dir)
    }

    /// Drops `inode`'s reference on its extended attribute block, freeing it
    /// with the last reference (Linux `ext2_xattr_delete_inode`).
    fn release_xattr_block(&mut self, inode: &mut Inode) -> Result<()> {
        let block = inode.file_acl;
        self.check_data_block(block, inode.ino)?;
        let data = self.cache.bread(block)?;
        if layout::get_u32(data, 0) != layout::XATTR_MAGIC {
            return Err(inode.corrupt("bad extended attribute block"));
        }
        let refcount = layout::get_u32(data, 4);
        if refcount > 1 {
            let data = self.cache.bread_mut(block)?;
            layout::put_u32(data, 4, refcount - 1);
            inode.blocks = inode.blocks.saturating_sub(self.sectors_per_block());
        } else {
            self.free_inode_block(inode, block)?;
        }
        inode.file_acl = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cross_the_indirect_boundaries() {
        assert_eq!(block_to_path(11, 256).unwrap(), ([11, 0, 0, 0], 1));
        assert_eq!(block_to_path(12, 256).unwrap(), ([12, 0, 0, 0], 2));
        assert_eq!(block_to_path(12 + 255, 256).unwrap(), ([12, 255, 0, 0], 2));
        assert_eq!(block_to_path(12 + 256, 256).unwrap(), ([13, 0, 0, 0], 3));
        assert_eq!(block_to_path(12 + 256 + 65536, 256).unwrap(), ([14, 0, 0, 0], 4));
        let last = 12 + 256 + 65536 + 256 * 65536 - 1;
        assert_eq!(block_to_path(last, 256).unwrap(), ([14, 255, 255, 255], 4));
        assert_eq!(block_to_path(last + 1, 256), Err(Ext2Error::FileTooBig));
        assert_eq!(block_to_path(u64::MAX, 1024), Err(Ext2Error::FileTooBig));
    }
}
