//! The metadata block cache: Linux's buffer cache (`fs/buffer.c`,
//! `sb_bread`, `mark_buffer_dirty`, `sync_dirty_buffer`, `bforget`) as
//! ext2 uses it.
//!
//! Every metadata block (bitmaps, inode table blocks, indirect blocks,
//! directory blocks, slow symlink blocks) is read through here, changed in
//! place and marked dirty; [`BufferCache::sync`] writes the dirty ones back
//! in block order and flushes the device. File data never comes here: it is
//! mapped with `get_block` and read or written by the caller (later the page
//! cache), as Linux's ext2 does.
//!
//! The cache is bounded: it holds at most `capacity` blocks. Inserting into
//! a full cache evicts the least recently used block, writing it back first
//! if it is dirty, so memory use is fixed however large the file system.
//! A freed block is dropped from the cache without write-back
//! ([`BufferCache::forget`], Linux's `bforget`), so a stale metadata copy
//! can never overwrite the block once it holds file data.
//!
//! Differences from Linux: buffers are not shared or reference-counted (the
//! file system owns the only cache and is itself behind one lock), and there
//! is no background write-back; dirty buffers reach the disk on eviction and
//! on `sync`.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use crate::device::{BlockDevice, IoError};

/// One cached block.
struct Buffer {
    data: Vec<u8>,
    dirty: bool,
    last_use: u64,
}

/// A bounded write-back cache of fs blocks over a [`BlockDevice`].
pub(crate) struct BufferCache<D> {
    dev: D,
    block_size: usize,
    capacity: usize,
    buffers: BTreeMap<u32, Buffer>,
    clock: u64,
}

impl<D: BlockDevice> BufferCache<D> {
    /// A cache of at most `capacity` (at least 4) blocks of `block_size`
    /// bytes over `dev`.
    pub(crate) fn new(dev: D, block_size: usize, capacity: usize) -> Self {
        BufferCache { dev, block_size, capacity: capacity.max(4), buffers: BTreeMap::new(), clock: 0 }
    }

    /// The device, for file data I/O that bypasses the cache.
    pub(crate) fn dev(&mut self) -> &mut D {
        &mut self.dev
    }

    /// The device, read-only.
    pub(crate) fn device(&self) -> &D {
        &self.dev
    }

    /// Gives the device back, dropping the cache (call [`Self::sync`] first).
    pub(crate) fn into_dev(self) -> D {
        self.dev
    }

    /// The device byte offset of `block`.
    fn offset(&self, block: u32) -> u64 {
        u64::from(block) * self.block_size as u64
    }

    /// Makes room for one more buffer, writing back the evicted one if dirty.
    fn make_room(&mut self) -> Result<(), IoError> {
        while self.buffers.len() >= self.capacity {
            let Some(victim) = self.buffers.iter().min_by_key(|(_, b)| b.last_use).map(|(&n, _)| n) else {
                return Ok(());
            };
            if let Some(buf) = self.buffers.get(&victim)
                && buf.dirty
            {
                let offset = self.offset(victim);
                self.dev.write_at(offset, &buf.data)?;
            }
            self.buffers.remove(&victim);
        }
        Ok(())
    }

    /// Loads `block` into the cache (reading it unless `zero`) and returns
    /// its buffer.
    fn get(&mut self, block: u32, zero: bool) -> Result<&mut Buffer, IoError> {
        self.clock += 1;
        let now = self.clock;
        if !self.buffers.contains_key(&block) {
            let mut data = vec![0u8; self.block_size];
            if !zero {
                let offset = self.offset(block);
                self.dev.read_at(offset, &mut data)?;
            }
            self.make_room()?;
            self.buffers.insert(block, Buffer { data, dirty: false, last_use: now });
        }
        let buf = self.buffers.entry(block).or_insert_with(|| Buffer { data: Vec::new(), dirty: false, last_use: now });
        buf.last_use = now;
        if zero {
            buf.data.clear();
            buf.data.resize(self.block_size, 0);
            buf.dirty = true;
        }
        Ok(buf)
    }

    /// The contents of `block` (Linux `sb_bread`).
    pub(crate) fn bread(&mut self, block: u32) -> Result<&[u8], IoError> {
        Ok(&self.get(block, false)?.data)
    }

    /// The contents of `block`, marked dirty for the caller to change
    /// (`sb_bread` followed by `mark_buffer_dirty`).
    pub(crate) fn bread_mut(&mut self, block: u32) -> Result<&mut [u8], IoError> {
        let buf = self.get(block, false)?;
        buf.dirty = true;
        Ok(&mut buf.data)
    }

    /// A zeroed, dirty buffer for a newly allocated `block`, not read from
    /// the disk (`sb_getblk` and `memset`).
    pub(crate) fn getblk_zeroed(&mut self, block: u32) -> Result<&mut [u8], IoError> {
        Ok(&mut self.get(block, true)?.data)
    }

    /// Drops `block` without writing it (`bforget`): it was freed.
    pub(crate) fn forget(&mut self, block: u32) {
        self.buffers.remove(&block);
    }

    /// Writes every dirty buffer back in block order, then flushes the
    /// device. A buffer whose write fails stays dirty.
    pub(crate) fn sync(&mut self) -> Result<(), IoError> {
        let block_size = self.block_size as u64;
        for (&block, buf) in self.buffers.iter_mut().filter(|(_, b)| b.dirty) {
            self.dev.write_at(u64::from(block) * block_size, &buf.data)?;
            buf.dirty = false;
        }
        self.dev.flush()
    }

    /// Number of cached buffers.
    pub(crate) fn len(&self) -> usize {
        self.buffers.len()
    }

    /// Drops up to `nr` clean buffers, least recently used first, and
    /// returns how many went: what memory pressure takes back (Linux
    /// reclaims clean buffers with the block device's page cache,
    /// `try_to_free_buffers`). Dirty ones stay for `sync`. Allocates
    /// nothing.
    pub(crate) fn shrink(&mut self, nr: usize) -> usize {
        let mut freed = 0;
        while freed < nr {
            let victim = self.buffers.iter().filter(|(_, b)| !b.dirty).min_by_key(|(_, b)| b.last_use).map(|(&n, _)| n);
            let Some(victim) = victim else { break };
            self.buffers.remove(&victim);
            freed += 1;
        }
        freed
    }

    /// Number of dirty buffers.
    #[cfg(test)]
    pub(crate) fn dirty_count(&self) -> usize {
        self.buffers.values().filter(|b| b.dirty).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDisk;

    #[test]
    fn dirty_buffers_reach_the_disk_only_on_sync() {
        let mut cache = BufferCache::new(MemDisk::new(vec![0; 8 * 1024]), 1024, 8);
        cache.bread_mut(3).unwrap()[5] = 42;
        assert_eq!(cache.dev().data()[3 * 1024 + 5], 0);
        assert_eq!(cache.dirty_count(), 1);
        cache.sync().unwrap();
        assert_eq!(cache.dev().data()[3 * 1024 + 5], 42);
        assert_eq!(cache.dirty_count(), 0);
    }

    #[test]
    fn eviction_writes_back_and_bounds_the_cache() {
        let mut cache = BufferCache::new(MemDisk::new(vec![0; 64 * 1024]), 1024, 4);
        for block in 0..16u32 {
            cache.bread_mut(block).unwrap()[0] = block as u8 + 1;
        }
        assert!(cache.buffers.len() <= 4);
        for block in 0..12usize {
            assert_eq!(cache.dev().data()[block * 1024], block as u8 + 1);
        }
        assert_eq!(cache.bread(15).unwrap()[0], 16);
    }

    #[test]
    fn shrink_drops_the_oldest_clean_buffers_and_keeps_dirty_ones() {
        let mut cache = BufferCache::new(MemDisk::new(vec![0; 16 * 1024]), 1024, 16);
        cache.bread_mut(0).unwrap()[0] = 9;
        for block in 1..6u32 {
            cache.bread(block).unwrap();
        }
        assert_eq!(cache.shrink(2), 2);
        assert_eq!(
            cache.buffers.keys().copied().collect::<Vec<_>>(),
            [0, 3, 4, 5],
            "blocks 1 and 2 were the oldest clean"
        );
        assert_eq!(cache.shrink(100), 3);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.dirty_count(), 1, "the dirty buffer stays");
        cache.sync().unwrap();
        assert_eq!(cache.dev().data()[0], 9);
    }

    #[test]
    fn forgotten_blocks_are_not_written() {
        let mut cache = BufferCache::new(MemDisk::new(vec![0; 8 * 1024]), 1024, 8);
        cache.getblk_zeroed(2).unwrap()[0] = 7;
        cache.forget(2);
        cache.sync().unwrap();
        assert_eq!(cache.dev().data()[2 * 1024], 0);
    }

    #[test]
    fn read_errors_leave_nothing_cached() {
        let mut disk = MemDisk::new(vec![0; 8 * 1024]);
        disk.fail_reads(1024..2048);
        let mut cache = BufferCache::new(disk, 1024, 8);
        assert!(cache.bread(1).is_err());
        assert!(cache.buffers.is_empty());
    }
}
