//! Block allocation (Linux `fs/ext2/balloc.c`: `ext2_new_blocks`,
//! `ext2_free_blocks`).
//!
//! Each group has a block bitmap, one bit per block of the group, bit set
//! for in use. Allocation takes the first free block at or after the goal
//! in the goal's group, then scans the following groups from their start,
//! and last the goal group before the goal. Every allocation and free keeps
//! three counts exact together: the bitmap, the group's
//! `bg_free_blocks_count` and the file system total written to
//! `s_free_blocks_count`.
//!
//! A bitmap that calls a metadata block free, or a free of a block already
//! free (a block mapped twice, or an indirect cycle), is corruption.
//!
//! Differences from Linux: one block per call, no reservation windows, no
//! root reserve (see the crate documentation).

use crate::Result;
use crate::device::BlockDevice;
use crate::error::{Ext2Error, Location};
use crate::inode::Inode;
use crate::super_block::Ext2Fs;

/// The first clear bit in `bitmap` in `[from, to)`, if any (Linux
/// `find_next_zero_bit`).
pub(crate) fn find_next_zero_bit(bitmap: &[u8], from: u32, to: u32) -> Option<u32> {
    let mut bit = from;
    while bit < to {
        let byte = *bitmap.get((bit / 8) as usize)?;
        if bit.is_multiple_of(8) && byte == 0xff {
            bit += 8;
            continue;
        }
        if byte & (1 << (bit % 8)) == 0 {
            return Some(bit);
        }
        bit += 1;
    }
    None
}

/// Whether bit `bit` of `bitmap` is set (out of range reads as set).
pub(crate) fn test_bit(bitmap: &[u8], bit: u32) -> bool {
    bitmap.get((bit / 8) as usize).is_none_or(|b| b & (1 << (bit % 8)) != 0)
}

/// Sets (`value`) or clears bit `bit` of `bitmap`.
pub(crate) fn set_bit(bitmap: &mut [u8], bit: u32, value: bool) {
    if let Some(b) = bitmap.get_mut((bit / 8) as usize) {
        if value {
            *b |= 1 << (bit % 8);
        } else {
            *b &= !(1 << (bit % 8));
        }
    }
}

impl<D: BlockDevice> Ext2Fs<D> {
    /// Takes the first free block of `group` in `[from, to)` (offsets in
    /// the group), if any.
    fn claim_in_group(&mut self, group: u32, from: u32, to: u32) -> Result<Option<u32>> {
        let Some(desc) = self.groups.get(group as usize) else { return Ok(None) };
        if desc.free_blocks == 0 {
            return Ok(None);
        }
        let bitmap_block = desc.block_bitmap;
        let bitmap = self.cache.bread(bitmap_block)?;
        let Some(bit) = find_next_zero_bit(bitmap, from, to) else { return Ok(None) };
        let block = self.geo.group_first_block(group) + bit;
        if self.is_system_block(block) {
            return Err(Ext2Error::corrupt("block bitmap marks metadata free", Location::Block(bitmap_block)));
        }
        set_bit(self.cache.bread_mut(bitmap_block)?, bit, true);
        if let Some(desc) = self.groups.get_mut(group as usize) {
            desc.free_blocks -= 1;
        }
        self.free_blocks = self.free_blocks.saturating_sub(1);
        self.mark_dirty();
        Ok(Some(block))
    }

    /// Allocates one block for `inode` near `goal` and counts it in its
    /// `i_blocks` (Linux `ext2_new_blocks` with a count of one).
    pub(crate) fn new_block(&mut self, goal: u32, inode: &mut Inode) -> Result<u32> {
        let geo = self.geo;
        let goal = if goal < geo.first_data_block || goal >= geo.blocks_count { geo.first_data_block } else { goal };
        let goal_group = geo.block_group(goal);
        let goal_offset = goal - geo.group_first_block(goal_group);
        let group_len = |g: u32| geo.group_end_block(g) - geo.group_first_block(g);
        let mut found = self.claim_in_group(goal_group, goal_offset, group_len(goal_group))?;
        for i in 1..geo.groups {
            if found.is_some() {
                break;
            }
            let g = (goal_group + i) % geo.groups;
            found = self.claim_in_group(g, 0, group_len(g))?;
        }
        if found.is_none() {
            found = self.claim_in_group(goal_group, 0, goal_offset)?;
        }
        let block = found.ok_or(Ext2Error::NoSpace)?;
        // A stale copy of a block freed earlier must not come back as metadata.
        self.cache.forget(block);
        inode.blocks = inode.blocks.saturating_add(self.sectors_per_block());
        Ok(block)
    }

    /// Frees `block`, a valid data-area block (Linux `ext2_free_blocks`).
    pub(crate) fn free_block(&mut self, block: u32) -> Result<()> {
        let group = self.geo.block_group(block);
        let bit = block - self.geo.group_first_block(group);
        let desc = self.groups.get(group as usize).ok_or(Ext2Error::corrupt("no group", Location::Block(block)))?;
        let bitmap_block = desc.block_bitmap;
        let bitmap = self.cache.bread_mut(bitmap_block)?;
        if !test_bit(bitmap, bit) {
            return Err(Ext2Error::corrupt("freeing a free block", Location::Block(block)));
        }
        set_bit(bitmap, bit, false);
        if let Some(desc) = self.groups.get_mut(group as usize) {
            desc.free_blocks = desc.free_blocks.saturating_add(1);
        }
        self.free_blocks = self.free_blocks.saturating_add(1);
        self.cache.forget(block);
        self.mark_dirty();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_bit_search_skips_full_bytes_and_honours_bounds() {
        let bitmap = [0xff, 0xff, 0b1110_1111, 0x00];
        assert_eq!(find_next_zero_bit(&bitmap, 0, 32), Some(20));
        assert_eq!(find_next_zero_bit(&bitmap, 21, 32), Some(24));
        assert_eq!(find_next_zero_bit(&bitmap, 0, 20), None);
        assert_eq!(find_next_zero_bit(&bitmap, 0, 1000), Some(20));
        assert_eq!(find_next_zero_bit(&[0xff], 0, 1000), None);
    }

    #[test]
    fn bits_set_and_clear() {
        let mut bitmap = [0u8; 2];
        set_bit(&mut bitmap, 9, true);
        assert!(test_bit(&bitmap, 9));
        assert_eq!(bitmap, [0, 2]);
        set_bit(&mut bitmap, 9, false);
        assert!(!test_bit(&bitmap, 9));
        assert!(test_bit(&bitmap, 100));
    }
}
