//! Symbolic links (Linux `fs/ext2/symlink.c` and `ext2_symlink` in
//! `namei.c`).
//!
//! A target shorter than 60 bytes is a fast symlink, kept in the 60 bytes
//! of `i_block` with no block allocated; a longer one, up to a block less
//! one byte, is a slow symlink whose single data block holds it. A symlink
//! is fast exactly when it owns no blocks besides an extended attribute
//! block (Linux `ext2_inode_is_fast_symlink`); that is how it is read back.

use alloc::vec::Vec;

use crate::device::BlockDevice;
use crate::error::Ext2Error;
use crate::inode::Inode;
use crate::layout::{self, I_BLOCK_BYTES};
use crate::namei::Owner;
use crate::super_block::Ext2Fs;
use crate::{Ino, Result};

/// The bytes of `i_block` as a fast symlink stores them.
fn i_block_bytes(inode: &Inode) -> [u8; I_BLOCK_BYTES] {
    let mut bytes = [0u8; I_BLOCK_BYTES];
    for (chunk, word) in bytes.as_chunks_mut::<4>().0.iter_mut().zip(inode.block.iter()) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    bytes
}

impl<D: BlockDevice> Ext2Fs<D> {
    /// Creates symlink `name` in `dir` pointing at `target` (Linux
    /// `ext2_symlink`).
    pub fn symlink(&mut self, dir: Ino, name: &[u8], target: &[u8], owner: Owner) -> Result<Ino> {
        let result = self.symlink_checked(dir, name, target, owner);
        self.note(result)
    }

    fn symlink_checked(&mut self, dir: Ino, name: &[u8], target: &[u8], owner: Owner) -> Result<Ino> {
        if target.is_empty() {
            return Err(Ext2Error::NotFound);
        }
        if target.len() >= self.geo.block_size as usize {
            return Err(Ext2Error::NameTooLong);
        }
        if target.contains(&0) {
            return Err(Ext2Error::Invalid);
        }
        self.check_new_name(dir, name)?;
        let mut inode = self.new_inode(dir, layout::S_IFLNK | 0o777, owner.uid, owner.gid)?;
        inode.links = 1;
        inode.size = target.len() as u64;
        if target.len() < I_BLOCK_BYTES {
            let mut bytes = [0u8; I_BLOCK_BYTES];
            if let Some(dst) = bytes.get_mut(..target.len()) {
                dst.copy_from_slice(target);
            }
            for (word, chunk) in inode.block.iter_mut().zip(bytes.as_chunks::<4>().0) {
                *word = u32::from_le_bytes(*chunk);
            }
        } else {
            let mapping = match self.get_block_inode(&mut inode, 0, true) {
                Ok(Some(m)) => m,
                Ok(None) => return Err(Ext2Error::NoSpace),
                Err(e) => {
                    self.delete_inode(inode)?;
                    return Err(e);
                }
            };
            let data = self.cache.getblk_zeroed(mapping.block.0)?;
            if let Some(dst) = data.get_mut(..target.len()) {
                dst.copy_from_slice(target);
            }
        }
        self.add_new_inode(dir, name, inode)
    }

    /// The target of symlink `ino` (Linux `ext2_get_link`).
    pub fn readlink(&mut self, ino: Ino) -> Result<Vec<u8>> {
        let result = self.readlink_checked(ino);
        self.note(result)
    }

    fn readlink_checked(&mut self, ino: Ino) -> Result<Vec<u8>> {
        let mut inode = self.iget(ino)?;
        if !inode.is_symlink() {
            return Err(Ext2Error::Invalid);
        }
        let len = inode.size as usize;
        if self.has_no_data_blocks(&inode) {
            let bytes = i_block_bytes(&inode);
            return Ok(bytes.get(..len).ok_or(inode.corrupt("fast symlink longer than i_block"))?.to_vec());
        }
        if len >= self.geo.block_size as usize {
            return Err(inode.corrupt("symlink longer than a block"));
        }
        let m = self.get_block_inode(&mut inode, 0, false)?.ok_or(inode.corrupt("symlink without its block"))?;
        let data = self.cache.bread(m.block.0)?;
        Ok(data.get(..len).unwrap_or(&[]).to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ino;

    #[test]
    fn fast_symlink_bytes_round_trip_through_i_block() {
        let mut raw = alloc::vec![0u8; 128];
        raw[layout::ino::BLOCK..layout::ino::BLOCK + 5].copy_from_slice(b"hello");
        let inode = Inode::parse(Ino(12), raw);
        assert_eq!(&i_block_bytes(&inode)[..6], b"hello\0");
    }
}
