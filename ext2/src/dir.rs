//! Directories (Linux `fs/ext2/dir.c`: `ext2_check_page`, `ext2_readdir`,
//! `ext2_find_entry`, `ext2_add_link`, `ext2_delete_entry`, `ext2_set_link`,
//! `ext2_make_empty`, `ext2_empty_dir`).
//!
//! A directory is a file of blocks, each a chain of entries (`inode`,
//! `rec_len`, `name_len`, `file_type`, name) whose `rec_len`s tile the block
//! exactly. An entry with inode 0 is free space; removing an entry merges it
//! into the previous one in its block, or zeroes its inode if it is first.
//! A new entry takes the first free entry or unused tail of an entry large
//! enough, else a new block appended to the directory.
//!
//! Every block is validated as Linux's `ext2_check_page` does before any
//! entry in it is believed: `rec_len` at least 12, a multiple of 4, inside
//! the block and large enough for `name_len`; inode numbers in range. A hole
//! in a directory is corruption.
//!
//! Hash-indexed (`dir_index`) directories are read linearly: their index
//! blocks look like one free entry spanning the block. Changing one clears
//! `EXT2_INDEX_FL`, as Linux's ext2 does (`EXT2_BTREE_FL`), so e2fsck treats
//! it as the linear directory it now is.
//!
//! Differences from Linux: directory blocks live in the block cache instead
//! of the directory's page cache.

use alloc::vec::Vec;

use crate::device::BlockDevice;
use crate::error::{Ext2Error, Location};
use crate::inode::Inode;
use crate::layout::{self, DIRENT_HEADER, EXT2_INDEX_FL, FileType, dir_rec_len, get_u16, get_u32};
use crate::super_block::Ext2Fs;
use crate::{Ino, Result};

/// An entry of a directory, as `getdents` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The inode the name refers to.
    pub ino: Ino,
    /// The type recorded in the entry ([`FileType::Unknown`] without the
    /// filetype feature).
    pub file_type: FileType,
    /// The name, bytes without a terminator.
    pub name: Vec<u8>,
}

/// A validated entry of a directory block.
#[derive(Clone, Debug)]
pub(crate) struct RawEntry {
    pub(crate) offset: usize,
    pub(crate) ino: u32,
    pub(crate) rec_len: usize,
    pub(crate) file_type: u8,
    pub(crate) name: Vec<u8>,
}

/// Where a directory entry was found.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryRef {
    /// The disk block holding it.
    pub(crate) block: u32,
    /// Its offset in the block.
    pub(crate) offset: usize,
    /// The offset of the entry before it in the block, if any.
    pub(crate) prev: Option<usize>,
    /// The inode it names.
    pub(crate) ino: Ino,
}

/// Checks that `name` can be a directory entry: 1 to 255 bytes without
/// `/` or NUL.
pub(crate) fn check_name(name: &[u8]) -> Result<()> {
    if name.len() > layout::NAME_LEN {
        return Err(Ext2Error::NameTooLong);
    }
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(Ext2Error::Invalid);
    }
    Ok(())
}

/// Parses and validates the entries of directory block `data` (Linux
/// `ext2_check_page`).
fn parse_block(data: &[u8], block: u32, inodes_count: u32, filetype: bool) -> Result<Vec<RawEntry>> {
    let bad = |what| Ext2Error::corrupt(what, Location::Block(block));
    let size = data.len();
    let mut entries = Vec::new();
    let mut offset = 0;
    while offset < size {
        if offset + DIRENT_HEADER > size {
            return Err(bad("directory entry header runs off its block"));
        }
        let ino = get_u32(data, offset);
        let mut rec_len = usize::from(get_u16(data, offset + 4));
        if size == 65536 && (rec_len == 0 || rec_len == 65535) {
            rec_len = 65536;
        }
        let name_len = if filetype {
            usize::from(data.get(offset + 6).copied().unwrap_or(0))
        } else {
            usize::from(get_u16(data, offset + 6))
        };
        if rec_len < dir_rec_len(1) {
            return Err(bad("directory entry rec_len too small"));
        }
        if rec_len % 4 != 0 {
            return Err(bad("directory entry rec_len not a multiple of 4"));
        }
        if rec_len < dir_rec_len(name_len) {
            return Err(bad("directory entry name_len exceeds rec_len"));
        }
        if offset + rec_len > size {
            return Err(bad("directory entry runs off its block"));
        }
        if ino > inodes_count {
            return Err(bad("directory entry inode out of range"));
        }
        if ino != 0 && name_len == 0 {
            return Err(bad("directory entry with an empty name"));
        }
        let name = data.get(offset + DIRENT_HEADER..offset + DIRENT_HEADER + name_len).unwrap_or(&[]).to_vec();
        let file_type = if filetype { data.get(offset + 7).copied().unwrap_or(0) } else { 0 };
        entries.push(RawEntry { offset, ino, rec_len, file_type, name });
        offset += rec_len;
    }
    Ok(entries)
}

/// Writes an entry header and name at `offset` of `data`.
fn write_entry(data: &mut [u8], offset: usize, ino: u32, rec_len: usize, name: &[u8], file_type: u8) {
    layout::put_u32(data, offset, ino);
    // 65536 wraps to 0, the on-disk spelling of a 64 KiB block's rec_len.
    layout::put_u16(data, offset + 4, rec_len as u16);
    if let Some(b) = data.get_mut(offset + 6) {
        *b = name.len() as u8;
    }
    if let Some(b) = data.get_mut(offset + 7) {
        *b = file_type;
    }
    if let Some(dst) = data.get_mut(offset + DIRENT_HEADER..offset + DIRENT_HEADER + name.len()) {
        dst.copy_from_slice(name);
    }
}

impl<D: BlockDevice> Ext2Fs<D> {
    /// Number of blocks of directory `dir`.
    fn dir_blocks(&self, dir: &Inode) -> u64 {
        dir.size >> self.geo.block_bits
    }

    /// The disk block of directory block `n`; a hole is corruption.
    fn dir_block(&mut self, dir: &mut Inode, n: u64) -> Result<u32> {
        match self.get_block_inode(dir, n, false)? {
            Some(m) => Ok(m.block.0),
            None => Err(dir.corrupt("hole in a directory")),
        }
    }

    /// The validated entries of directory block `block`.
    pub(crate) fn dir_entries(&mut self, block: u32) -> Result<Vec<RawEntry>> {
        let (inodes_count, filetype) = (self.geo.inodes_count, self.geo.filetype);
        let data = self.cache.bread(block)?;
        parse_block(data, block, inodes_count, filetype)
    }

    /// The `file_type` byte for an entry naming an inode of type `ft`.
    fn dirent_type(&self, ft: FileType) -> u8 {
        if self.geo.filetype { ft.dirent_byte() } else { 0 }
    }

    /// Reads directory `dir`, checking that it is one.
    pub(crate) fn iget_dir(&mut self, dir: Ino) -> Result<Inode> {
        let inode = self.iget(dir)?;
        if !inode.is_dir() {
            return Err(Ext2Error::NotDir);
        }
        // A removed directory still pinned open: nothing can be looked
        // up or made in it (Linux's `IS_DEADDIR`: ENOENT).
        if inode.links == 0 {
            return Err(Ext2Error::NotFound);
        }
        Ok(inode)
    }

    /// Finds `name` in directory `dir` (Linux `ext2_find_entry`).
    pub(crate) fn find_entry(&mut self, dir: &mut Inode, name: &[u8]) -> Result<Option<EntryRef>> {
        for n in 0..self.dir_blocks(dir) {
            let block = self.dir_block(dir, n)?;
            let mut prev = None;
            for e in self.dir_entries(block)? {
                if e.ino != 0 && e.name == name {
                    return Ok(Some(EntryRef { block, offset: e.offset, prev, ino: Ino(e.ino) }));
                }
                prev = Some(e.offset);
            }
        }
        Ok(None)
    }

    /// Adds the entry `name` -> `ino` of type `ft` to directory `dir`, which
    /// must not hold `name` (Linux `ext2_add_link`). Writes `dir`.
    pub(crate) fn add_link(&mut self, dir: Ino, name: &[u8], ino: Ino, ft: FileType) -> Result<()> {
        let mut dir = self.iget_dir(dir)?;
        let needed = dir_rec_len(name.len());
        let file_type = self.dirent_type(ft);
        let mut slot = None;
        'search: for n in 0..self.dir_blocks(&dir) {
            let block = self.dir_block(&mut dir, n)?;
            for e in self.dir_entries(block)? {
                let used = if e.ino == 0 { 0 } else { dir_rec_len(e.name.len()) };
                if e.rec_len - used >= needed {
                    slot = Some((block, e, used));
                    break 'search;
                }
            }
        }
        match slot {
            Some((block, e, used)) => {
                let data = self.cache.bread_mut(block)?;
                if used == 0 {
                    write_entry(data, e.offset, ino.0, e.rec_len, name, file_type);
                } else {
                    write_entry(data, e.offset, e.ino, used, &e.name, e.file_type);
                    write_entry(data, e.offset + used, ino.0, e.rec_len - used, name, file_type);
                }
            }
            None => {
                let n = self.dir_blocks(&dir);
                let m = self.get_block_inode(&mut dir, n, true);
                let m = match m {
                    Ok(Some(m)) => m,
                    Ok(None) => return Err(Ext2Error::NoSpace),
                    Err(e) => {
                        // Indirect blocks may have been attached: keep i_blocks right.
                        self.write_inode(&dir)?;
                        return Err(e);
                    }
                };
                let bs = self.geo.block_size as usize;
                let data = self.cache.getblk_zeroed(m.block.0)?;
                write_entry(data, 0, ino.0, bs, name, file_type);
                dir.size += bs as u64;
            }
        }
        self.touch_dir(&mut dir);
        self.write_inode(&dir)
    }

    /// Stamps a changed directory and drops its hash index flag.
    fn touch_dir(&self, dir: &mut Inode) {
        let now = self.now();
        dir.mtime = now;
        dir.ctime = now;
        dir.flags &= !EXT2_INDEX_FL;
    }

    /// Removes the entry `at` from directory `dir` (Linux
    /// `ext2_delete_entry`). Writes `dir`.
    pub(crate) fn delete_entry(&mut self, dir: Ino, at: EntryRef) -> Result<()> {
        let mut dir = self.iget_dir(dir)?;
        let data = self.cache.bread_mut(at.block)?;
        match at.prev {
            Some(prev) => {
                let rec_len = usize::from(get_u16(data, at.offset + 4));
                let prev_len = usize::from(get_u16(data, prev + 4));
                layout::put_u16(data, prev + 4, (prev_len + rec_len) as u16);
            }
            None => layout::put_u32(data, at.offset, 0),
        }
        self.touch_dir(&mut dir);
        self.write_inode(&dir)
    }

    /// Points the entry `at` of directory `dir` at `ino` of type `ft`
    /// (Linux `ext2_set_link`). Writes `dir`.
    pub(crate) fn set_link(
        &mut self,
        dir: Ino,
        at: EntryRef,
        ino: Ino,
        ft: FileType,
        update_times: bool,
    ) -> Result<()> {
        let mut dir = self.iget_dir(dir)?;
        let file_type = self.dirent_type(ft);
        let data = self.cache.bread_mut(at.block)?;
        layout::put_u32(data, at.offset, ino.0);
        if let Some(b) = data.get_mut(at.offset + 7) {
            *b = file_type;
        }
        if update_times {
            self.touch_dir(&mut dir);
        } else {
            dir.flags &= !EXT2_INDEX_FL;
        }
        self.write_inode(&dir)
    }

    /// Gives new directory `dir` its first block holding `.` and `..`
    /// pointing at `parent` (Linux `ext2_make_empty`). Changes `dir` in
    /// memory only.
    pub(crate) fn make_empty(&mut self, dir: &mut Inode, parent: Ino) -> Result<()> {
        let m = self.get_block_inode(dir, 0, true)?.ok_or(Ext2Error::NoSpace)?;
        let bs = self.geo.block_size as usize;
        let file_type = self.dirent_type(FileType::Directory);
        let ino = dir.ino.0;
        let data = self.cache.getblk_zeroed(m.block.0)?;
        write_entry(data, 0, ino, dir_rec_len(1), b".", file_type);
        write_entry(data, dir_rec_len(1), parent.0, bs - dir_rec_len(1), b"..", file_type);
        dir.size = bs as u64;
        Ok(())
    }

    /// Whether directory `dir` holds nothing but `.` and `..` (Linux
    /// `ext2_empty_dir`).
    pub(crate) fn empty_dir(&mut self, dir: &mut Inode) -> Result<bool> {
        for n in 0..self.dir_blocks(dir) {
            let block = self.dir_block(dir, n)?;
            for e in self.dir_entries(block)? {
                if e.ino != 0 && e.name != b"." && e.name != b".." {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The `..` entry of directory `dir` (Linux `ext2_dotdot`).
    pub(crate) fn dotdot(&mut self, dir: &mut Inode) -> Result<EntryRef> {
        self.find_entry(dir, b"..")?.ok_or(dir.corrupt("directory without .."))
    }

    /// Looks `name` up in directory `dir` (Linux `ext2_lookup`).
    pub fn lookup(&mut self, dir: Ino, name: &[u8]) -> Result<Ino> {
        let result = self.lookup_checked(dir, name);
        self.note(result)
    }

    fn lookup_checked(&mut self, dir: Ino, name: &[u8]) -> Result<Ino> {
        let mut dir = self.iget_dir(dir)?;
        check_name(name)?;
        self.find_entry(&mut dir, name)?.map(|e| e.ino).ok_or(Ext2Error::NotFound)
    }

    /// The first entry of directory `dir` at or after byte position `pos`,
    /// with the position of the next one; `None` at the end (Linux
    /// `ext2_readdir`, one entry per call). Start at 0; positions are byte
    /// offsets in the directory, stable while it is not changed, and a
    /// position inside an entry resumes at the next entry.
    pub fn read_dir(&mut self, dir: Ino, pos: u64) -> Result<Option<(DirEntry, u64)>> {
        let result = self.read_dir_checked(dir, pos);
        self.note(result)
    }

    fn read_dir_checked(&mut self, dir: Ino, pos: u64) -> Result<Option<(DirEntry, u64)>> {
        let mut dir = self.iget_dir(dir)?;
        let bs = u64::from(self.geo.block_size);
        for n in pos / bs..self.dir_blocks(&dir) {
            let block = self.dir_block(&mut dir, n)?;
            for e in self.dir_entries(block)? {
                let at = n * bs + e.offset as u64;
                if e.ino != 0 && at >= pos {
                    let entry =
                        DirEntry { ino: Ino(e.ino), file_type: FileType::from_dirent(e.file_type), name: e.name };
                    return Ok(Some((entry, at + e.rec_len as u64)));
                }
            }
        }
        Ok(None)
    }

    /// All entries of directory `dir`, `.` and `..` included.
    pub fn read_dir_all(&mut self, dir: Ino) -> Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        let mut pos = 0;
        while let Some((entry, next)) = self.read_dir(dir, pos)? {
            entries.push(entry);
            pos = next;
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_with(entries: &[(u32, usize, &[u8])]) -> Vec<u8> {
        let mut data = alloc::vec![0u8; 1024];
        let mut off = 0;
        for &(ino, rec_len, name) in entries {
            write_entry(&mut data, off, ino, rec_len, name, 1);
            off += rec_len;
        }
        data
    }

    #[test]
    fn valid_block_parses() {
        let data = block_with(&[(2, 12, b"."), (2, 12, b".."), (12, 1000, b"file")]);
        let entries = parse_block(&data, 5, 100, true).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2].name, b"file");
        assert_eq!(entries[2].rec_len, 1000);
    }

    #[test]
    fn bad_rec_lens_are_corruption() {
        for (rec_len, what) in [
            (0, "directory entry rec_len too small"),
            (14, "directory entry rec_len not a multiple of 4"),
            (2048, "directory entry runs off its block"),
        ] {
            let mut data = block_with(&[(2, 1024, b"x")]);
            layout::put_u16(&mut data, 4, rec_len);
            let err = parse_block(&data, 5, 100, true).unwrap_err();
            assert_eq!(err, Ext2Error::Corrupt { what, at: Location::Block(5) });
        }
    }

    #[test]
    fn name_len_beyond_rec_len_is_corruption() {
        let mut data = block_with(&[(2, 12, b"."), (2, 1012, b"..")]);
        data[6] = 200;
        assert!(parse_block(&data, 5, 100, true).is_err());
    }

    #[test]
    fn inode_out_of_range_is_corruption() {
        let data = block_with(&[(101, 1024, b"x")]);
        assert!(parse_block(&data, 5, 100, true).is_err());
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name(b""), Err(Ext2Error::Invalid));
        assert_eq!(check_name(b"a/b"), Err(Ext2Error::Invalid));
        assert_eq!(check_name(&[b'a'; 256]), Err(Ext2Error::NameTooLong));
        assert!(check_name(&[b'a'; 255]).is_ok());
    }
}
