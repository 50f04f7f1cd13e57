//! Mounting, the superblock and the group descriptors (Linux
//! `fs/ext2/super.c`: `ext2_fill_super`, `ext2_check_descriptors`,
//! `ext2_setup_super`, `ext2_sync_fs`, `ext2_put_super`, `ext2_statfs`).
//!
//! Mount reads the primary superblock at byte 1024 and the group descriptor
//! table after it, and validates everything later code relies on: the magic,
//! the revision, the features, the geometry (block size, inode size,
//! per-group counts, the device is large enough) and that each group's
//! bitmaps and inode table lie inside the group, clear of its superblock and
//! descriptor copies and of each other. Past mount, block numbers taken from
//! inodes and indirect blocks are still checked one by one against this
//! geometry ([`Ext2Fs::check_data_block`], Linux's `ext2_data_block_valid`).
//!
//! The free block and inode totals are summed from the group descriptors at
//! mount (as Linux seeds its per-cpu counters) and kept exact from then on;
//! the superblock gets them on every sync.
//!
//! State: a writable mount clears `EXT2_VALID_FS` on disk, counts the mount
//! in `s_mnt_count` and stamps `s_mtime`; unmount writes back the state found
//! at mount, plus `EXT2_ERROR_FS` if corruption was seen meanwhile. Every
//! superblock write stamps `s_wtime`. Only the primary superblock and
//! descriptor table are written; backups are left as mke2fs made them, as
//! Linux's ext2 does.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

use crate::buffer::BufferCache;
use crate::device::BlockDevice;
use crate::error::{Ext2Error, Location};
use crate::layout::{
    self, CompatFeatures, EXT2_ERROR_FS, EXT2_SUPER_MAGIC, EXT2_VALID_FS, GOOD_OLD_FIRST_INO, GOOD_OLD_INODE_SIZE,
    GROUP_DESC_SIZE, IncompatFeatures, RoCompatFeatures, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, gd, get_u16, get_u32,
    put_u16, put_u32, sb,
};
use crate::{Ino, Result};

/// The source of timestamps: seconds since the Unix epoch (ext2 keeps 32
/// bits). The kernel passes its wall clock; tests pass a fixed time.
pub trait Clock {
    /// The current time.
    fn now(&self) -> u32;
}

/// A clock stopped at one time.
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub u32);

impl Clock for FixedClock {
    fn now(&self) -> u32 {
        self.0
    }
}

impl<F: Fn() -> u32> Clock for F {
    fn now(&self) -> u32 {
        self()
    }
}

/// How to mount.
pub struct MountOptions {
    /// Refuse every change (Linux `-o ro`).
    pub read_only: bool,
    /// Most metadata blocks the block cache keeps.
    pub cache_blocks: usize,
    /// Where timestamps come from.
    pub clock: Box<dyn Clock + Send>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions { read_only: false, cache_blocks: 256, clock: Box::new(FixedClock(0)) }
    }
}

/// File system totals, as `statfs(2)` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFs {
    /// Block size in bytes.
    pub block_size: u32,
    /// Blocks in the file system (`s_blocks_count`).
    pub blocks: u32,
    /// Free blocks.
    pub free_blocks: u32,
    /// Free blocks less the root reserve (`s_r_blocks_count`).
    pub avail_blocks: u32,
    /// Inodes in the file system.
    pub inodes: u32,
    /// Free inodes.
    pub free_inodes: u32,
    /// Longest name.
    pub name_max: u32,
}

/// The geometry the superblock describes, validated at mount.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub(crate) block_size: u32,
    pub(crate) block_bits: u32,
    pub(crate) blocks_count: u32,
    pub(crate) first_data_block: u32,
    pub(crate) blocks_per_group: u32,
    pub(crate) inodes_per_group: u32,
    pub(crate) inodes_count: u32,
    pub(crate) inode_size: u32,
    pub(crate) first_ino: u32,
    pub(crate) groups: u32,
    pub(crate) gdt_blocks: u32,
    pub(crate) reserved_gdt_blocks: u32,
    pub(crate) inode_table_blocks: u32,
    pub(crate) sparse_super: bool,
    pub(crate) filetype: bool,
    /// Block pointers per indirect block.
    pub(crate) addr_per_block: u32,
    /// Largest file size (Linux `ext2_max_size`).
    pub(crate) max_file_size: u64,
}

impl Geometry {
    /// First block of `group`.
    pub(crate) fn group_first_block(&self, group: u32) -> u32 {
        self.first_data_block + group * self.blocks_per_group
    }

    /// One past the last block of `group`.
    pub(crate) fn group_end_block(&self, group: u32) -> u32 {
        let end = u64::from(self.group_first_block(group)) + u64::from(self.blocks_per_group);
        end.min(u64::from(self.blocks_count)) as u32
    }

    /// The group holding `block` (which must be a valid block number).
    pub(crate) fn block_group(&self, block: u32) -> u32 {
        (block - self.first_data_block) / self.blocks_per_group
    }

    /// Whether `group` holds a superblock and descriptor copy (Linux
    /// `ext2_group_sparse`: groups 0, 1 and powers of 3, 5 and 7).
    pub(crate) fn group_has_super(&self, group: u32) -> bool {
        fn power_of(mut n: u32, base: u32) -> bool {
            while n > 1 && n.is_multiple_of(base) {
                n /= base;
            }
            n == 1
        }
        !self.sparse_super || group <= 1 || power_of(group, 3) || power_of(group, 5) || power_of(group, 7)
    }

    /// One past the superblock, descriptor and reserved descriptor blocks at
    /// the start of `group`.
    pub(crate) fn group_meta_end(&self, group: u32) -> u32 {
        let first = self.group_first_block(group);
        if self.group_has_super(group) {
            // For 4 KiB blocks in group 0 the superblock shares block 0 with
            // the boot sector; first_data_block is 0 then, and the copy still
            // takes one block.
            first.saturating_add(1 + self.gdt_blocks + self.reserved_gdt_blocks)
        } else {
            first
        }
    }

    /// The group and index within it of inode `ino` (valid number).
    pub(crate) fn inode_group(&self, ino: u32) -> (u32, u32) {
        ((ino - 1) / self.inodes_per_group, (ino - 1) % self.inodes_per_group)
    }
}

/// A block group descriptor (Linux `struct ext2_group_desc`).
#[derive(Clone, Debug)]
pub(crate) struct GroupDesc {
    pub(crate) block_bitmap: u32,
    pub(crate) inode_bitmap: u32,
    pub(crate) inode_table: u32,
    pub(crate) free_blocks: u16,
    pub(crate) free_inodes: u16,
    pub(crate) used_dirs: u16,
    raw: [u8; GROUP_DESC_SIZE],
}

impl GroupDesc {
    fn parse(raw: &[u8]) -> GroupDesc {
        let mut bytes = [0u8; GROUP_DESC_SIZE];
        if let Some(src) = raw.get(..GROUP_DESC_SIZE) {
            bytes.copy_from_slice(src);
        }
        GroupDesc {
            block_bitmap: get_u32(&bytes, gd::BLOCK_BITMAP),
            inode_bitmap: get_u32(&bytes, gd::INODE_BITMAP),
            inode_table: get_u32(&bytes, gd::INODE_TABLE),
            free_blocks: get_u16(&bytes, gd::FREE_BLOCKS_COUNT),
            free_inodes: get_u16(&bytes, gd::FREE_INODES_COUNT),
            used_dirs: get_u16(&bytes, gd::USED_DIRS_COUNT),
            raw: bytes,
        }
    }

    fn serialize(&self) -> [u8; GROUP_DESC_SIZE] {
        let mut raw = self.raw;
        put_u16(&mut raw, gd::FREE_BLOCKS_COUNT, self.free_blocks);
        put_u16(&mut raw, gd::FREE_INODES_COUNT, self.free_inodes);
        put_u16(&mut raw, gd::USED_DIRS_COUNT, self.used_dirs);
        raw
    }
}

/// A mounted ext2 file system (Linux `struct ext2_sb_info` with its
/// `super_block`).
#[doc(alias = "ext2_sb_info")]
pub struct Ext2Fs<D: BlockDevice> {
    pub(crate) geo: Geometry,
    pub(crate) groups: Vec<GroupDesc>,
    pub(crate) cache: BufferCache<D>,
    /// The superblock as read, patched on write.
    sb_raw: Vec<u8>,
    pub(crate) free_blocks: u32,
    pub(crate) free_inodes: u32,
    pub(crate) read_only: bool,
    /// `s_state` found at mount, plus `EXT2_ERROR_FS` once corruption is seen.
    mount_state: u16,
    dirty: bool,
    clock: Box<dyn Clock + Send>,
    pub(crate) ro_compat: RoCompatFeatures,
    pub(crate) next_generation: u32,
    /// Inodes the caller holds open, with their counts ([`Ext2Fs::pin`]):
    /// one whose last link goes stays allocated, an orphan, until its
    /// last unpin (Linux frees it in `ext2_evict_inode`, at the last
    /// `iput`).
    pub(crate) pins: alloc::collections::BTreeMap<Ino, u32>,
}

/// Linux `ext2_max_size`: the largest file `i_block` can map, also bounded
/// by `i_blocks` (32 bits of 512-byte units) counting the indirect blocks.
fn max_file_size(block_bits: u32) -> u64 {
    let ptrs = 1u64 << (block_bits - 2);
    let addressable = 12 + ptrs + ptrs * ptrs + ptrs * ptrs * ptrs;
    let by_i_blocks = (u64::from(u32::MAX) >> (block_bits - 9)).saturating_sub(3 + 2 * ptrs + ptrs * ptrs);
    addressable.min(by_i_blocks) << block_bits
}

/// Validates the superblock fields into a geometry.
fn parse_geometry(raw: &[u8], dev_size: u64) -> Result<Geometry> {
    let bad = |what| Ext2Error::corrupt(what, Location::Super);
    if get_u16(raw, sb::MAGIC) != EXT2_SUPER_MAGIC {
        return Err(Ext2Error::BadMagic);
    }
    let rev = get_u32(raw, sb::REV_LEVEL);
    if rev > layout::DYNAMIC_REV {
        return Err(Ext2Error::Unsupported("revision level above 1"));
    }
    let log = get_u32(raw, sb::LOG_BLOCK_SIZE);
    if log > 6 {
        return Err(bad("s_log_block_size above 64 KiB blocks"));
    }
    let block_bits = 10 + log;
    let block_size = 1u32 << block_bits;
    let (inode_size, first_ino) = if rev == 0 {
        (u32::from(GOOD_OLD_INODE_SIZE), GOOD_OLD_FIRST_INO)
    } else {
        (u32::from(get_u16(raw, sb::INODE_SIZE)), get_u32(raw, sb::FIRST_INO))
    };
    if inode_size < u32::from(GOOD_OLD_INODE_SIZE) || !inode_size.is_power_of_two() || inode_size > block_size {
        return Err(bad("s_inode_size"));
    }
    let blocks_count = get_u32(raw, sb::BLOCKS_COUNT);
    let first_data_block = get_u32(raw, sb::FIRST_DATA_BLOCK);
    let blocks_per_group = get_u32(raw, sb::BLOCKS_PER_GROUP);
    let inodes_per_group = get_u32(raw, sb::INODES_PER_GROUP);
    let inodes_count = get_u32(raw, sb::INODES_COUNT);
    if first_data_block != u32::from(block_size == 1024) {
        return Err(bad("s_first_data_block"));
    }
    if blocks_per_group == 0
        || blocks_per_group > block_size * 8
        || get_u32(raw, sb::FRAGS_PER_GROUP) != blocks_per_group
    {
        return Err(bad("s_blocks_per_group"));
    }
    let inodes_per_block = block_size / inode_size;
    if inodes_per_group == 0 || inodes_per_group > block_size * 8 || !inodes_per_group.is_multiple_of(inodes_per_block)
    {
        return Err(bad("s_inodes_per_group"));
    }
    if blocks_count <= first_data_block {
        return Err(bad("s_blocks_count"));
    }
    if u64::from(blocks_count) << block_bits > dev_size {
        return Err(bad("s_blocks_count beyond the end of the device"));
    }
    let groups = (blocks_count - first_data_block).div_ceil(blocks_per_group);
    if u64::from(groups) * u64::from(inodes_per_group) != u64::from(inodes_count) {
        return Err(bad("s_inodes_count"));
    }
    if first_ino < GOOD_OLD_FIRST_INO || first_ino > inodes_count {
        return Err(bad("s_first_ino"));
    }
    let gdt_blocks = (u64::from(groups) * GROUP_DESC_SIZE as u64).div_ceil(u64::from(block_size));
    let compat = CompatFeatures::from_bits_retain(get_u32(raw, sb::FEATURE_COMPAT));
    let reserved_gdt_blocks = if compat.contains(CompatFeatures::RESIZE_INODE) {
        u32::from(get_u16(raw, sb::RESERVED_GDT_BLOCKS))
    } else {
        0
    };
    if reserved_gdt_blocks > block_size / 4 {
        return Err(bad("s_reserved_gdt_blocks"));
    }
    // The superblock and descriptor copies must leave room in a group;
    // this also keeps every group_meta_end inside its group.
    if 1 + gdt_blocks + u64::from(reserved_gdt_blocks) >= u64::from(blocks_per_group) {
        return Err(bad("group descriptor table larger than a group"));
    }
    let gdt_blocks = gdt_blocks as u32;
    let incompat = IncompatFeatures::from_bits_retain(get_u32(raw, sb::FEATURE_INCOMPAT));
    let ro_compat = RoCompatFeatures::from_bits_retain(get_u32(raw, sb::FEATURE_RO_COMPAT));
    let inode_table_blocks = inodes_per_group / inodes_per_block;
    let geo = Geometry {
        block_size,
        block_bits,
        blocks_count,
        first_data_block,
        blocks_per_group,
        inodes_per_group,
        inodes_count,
        inode_size,
        first_ino,
        groups,
        gdt_blocks,
        reserved_gdt_blocks,
        inode_table_blocks,
        sparse_super: ro_compat.contains(RoCompatFeatures::SPARSE_SUPER),
        filetype: incompat.contains(IncompatFeatures::FILETYPE),
        addr_per_block: block_size / 4,
        // Revision 0 has no large_file feature to turn on: files stay below 2 GiB.
        max_file_size: if rev == 0 { 0x7fff_ffff } else { max_file_size(block_bits) },
    };
    // Group 0's metadata must fit in it.
    if u64::from(geo.group_meta_end(0)) + 2 + u64::from(inode_table_blocks) > u64::from(geo.group_end_block(0)) {
        return Err(bad("group 0 too small for its metadata"));
    }
    Ok(geo)
}

/// Checks that `desc`'s bitmaps and inode table lie inside `group`, after
/// its superblock copy, and do not overlap (Linux `ext2_check_descriptors`,
/// made stricter so later writes cannot land on metadata).
fn check_descriptor(geo: &Geometry, group: u32, desc: &GroupDesc) -> Result<()> {
    let bad = |what| Ext2Error::corrupt(what, Location::Group(group));
    let start = geo.group_meta_end(group);
    let end = geo.group_end_block(group);
    let inside = |b: u32| b >= start && b < end;
    if !inside(desc.block_bitmap) {
        return Err(bad("block bitmap outside its group"));
    }
    if !inside(desc.inode_bitmap) || desc.inode_bitmap == desc.block_bitmap {
        return Err(bad("inode bitmap outside its group"));
    }
    let table_end = u64::from(desc.inode_table) + u64::from(geo.inode_table_blocks);
    if !inside(desc.inode_table) || table_end > u64::from(end) {
        return Err(bad("inode table outside its group"));
    }
    let in_table = |b: u32| b >= desc.inode_table && u64::from(b) < table_end;
    if in_table(desc.block_bitmap) || in_table(desc.inode_bitmap) {
        return Err(bad("inode table overlaps a bitmap"));
    }
    if u32::from(desc.free_blocks) > end - geo.group_first_block(group)
        || u32::from(desc.free_inodes) > geo.inodes_per_group
        || u32::from(desc.used_dirs) > geo.inodes_per_group
    {
        return Err(bad("free counts above the group size"));
    }
    Ok(())
}

impl<D: BlockDevice> Ext2Fs<D> {
    /// Mounts the ext2 file system on `dev` (Linux `ext2_fill_super`).
    pub fn mount(mut dev: D, options: MountOptions) -> Result<Self> {
        let mut sb_raw = vec![0u8; SUPERBLOCK_SIZE];
        if dev.size() < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE as u64 {
            return Err(Ext2Error::BadMagic);
        }
        dev.read_at(SUPERBLOCK_OFFSET, &mut sb_raw)?;
        let geo = parse_geometry(&sb_raw, dev.size())?;

        let incompat = IncompatFeatures::from_bits_retain(get_u32(&sb_raw, sb::FEATURE_INCOMPAT));
        let unsupported = incompat.difference(layout::SUPPORTED_INCOMPAT);
        if !unsupported.is_empty() {
            return Err(Ext2Error::UnsupportedFeatures(unsupported));
        }
        let ro_compat = RoCompatFeatures::from_bits_retain(get_u32(&sb_raw, sb::FEATURE_RO_COMPAT));
        let unsupported = ro_compat.difference(layout::SUPPORTED_RO_COMPAT);
        if !unsupported.is_empty() && !options.read_only {
            return Err(Ext2Error::UnsupportedRoCompat(unsupported));
        }

        let mut cache = BufferCache::new(dev, geo.block_size as usize, options.cache_blocks);
        let mut groups = Vec::with_capacity(geo.groups as usize);
        let per_block = geo.block_size as usize / GROUP_DESC_SIZE;
        for g in 0..geo.groups {
            let block = geo.first_data_block + 1 + g / per_block as u32;
            let offset = (g as usize % per_block) * GROUP_DESC_SIZE;
            let data = cache.bread(block)?;
            let desc = GroupDesc::parse(data.get(offset..).unwrap_or(&[]));
            check_descriptor(&geo, g, &desc)?;
            groups.push(desc);
        }
        let free_blocks = groups.iter().map(|d| u32::from(d.free_blocks)).sum();
        let free_inodes = groups.iter().map(|d| u32::from(d.free_inodes)).sum();

        let mut fs = Ext2Fs {
            geo,
            groups,
            cache,
            mount_state: get_u16(&sb_raw, sb::STATE),
            sb_raw,
            free_blocks,
            free_inodes,
            read_only: options.read_only,
            dirty: false,
            clock: options.clock,
            ro_compat,
            next_generation: 0,
            pins: alloc::collections::BTreeMap::new(),
        };
        fs.next_generation = fs.now();
        let root = fs.iget(Ino::ROOT)?;
        if !root.is_dir() {
            return Err(Ext2Error::corrupt("root inode is not a directory", Location::Inode(layout::ROOT_INO)));
        }
        if !fs.read_only {
            fs.setup_super()?;
        }
        Ok(fs)
    }

    /// Linux `ext2_setup_super`: warn about an unchecked file system, mark it
    /// in use and count the mount.
    fn setup_super(&mut self) -> Result<()> {
        if self.mount_state & EXT2_VALID_FS == 0 {
            log::warn!("ext2: mounting unchecked fs, running e2fsck is recommended");
        } else if self.mount_state & EXT2_ERROR_FS != 0 {
            log::warn!("ext2: mounting fs with errors, running e2fsck is recommended");
        }
        let count = get_u16(&self.sb_raw, sb::MNT_COUNT).wrapping_add(1);
        put_u16(&mut self.sb_raw, sb::MNT_COUNT, count);
        let now = self.now();
        put_u32(&mut self.sb_raw, sb::MTIME, now);
        self.write_super(self.mount_state & !EXT2_VALID_FS)
    }

    /// The current time from the mount's clock.
    pub(crate) fn now(&self) -> u32 {
        self.clock.now()
    }

    /// Refuses changes on a read-only mount.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.read_only { Err(Ext2Error::ReadOnly) } else { Ok(()) }
    }

    /// Records the outcome of a public operation: corruption marks the file
    /// system with errors (Linux `ext2_error`).
    pub(crate) fn note<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(Ext2Error::Corrupt { what, at }) = &result {
            log::error!("ext2: {what} at {at:?}");
            if self.mount_state & EXT2_ERROR_FS == 0 {
                self.mount_state |= EXT2_ERROR_FS;
                if !self.read_only {
                    // Best effort, as in ext2_error: the operation's own
                    // error is the one to report.
                    let _ = self.write_super(self.mount_state & !EXT2_VALID_FS);
                }
            }
        }
        result
    }

    /// Marks the superblock and group descriptors changed (written on sync).
    pub(crate) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Writes the group descriptors into their cached blocks and the
    /// superblock to the disk with `state` (Linux `ext2_sync_super`).
    fn write_super(&mut self, state: u16) -> Result<()> {
        let per_block = self.geo.block_size as usize / GROUP_DESC_SIZE;
        for (g, desc) in self.groups.iter().enumerate() {
            let block = self.geo.first_data_block + 1 + (g / per_block) as u32;
            let offset = (g % per_block) * GROUP_DESC_SIZE;
            let data = self.cache.bread_mut(block)?;
            if let Some(dst) = data.get_mut(offset..offset + GROUP_DESC_SIZE) {
                dst.copy_from_slice(&desc.serialize());
            }
        }
        put_u32(&mut self.sb_raw, sb::FREE_BLOCKS_COUNT, self.free_blocks);
        put_u32(&mut self.sb_raw, sb::FREE_INODES_COUNT, self.free_inodes);
        put_u32(&mut self.sb_raw, sb::FEATURE_RO_COMPAT, self.ro_compat.bits());
        put_u16(&mut self.sb_raw, sb::STATE, state);
        let now = self.now();
        put_u32(&mut self.sb_raw, sb::WTIME, now);
        self.cache.sync()?;
        self.cache.dev().write_at(SUPERBLOCK_OFFSET, &self.sb_raw)?;
        self.cache.dev().flush()?;
        self.dirty = false;
        Ok(())
    }

    /// Metadata blocks cached now.
    pub fn cached_blocks(&self) -> usize {
        self.cache.len()
    }

    /// Drops up to `nr` clean cached metadata blocks, least recently used
    /// first, for memory pressure; returns how many went. Allocates
    /// nothing.
    pub fn shrink_cache(&mut self, nr: usize) -> usize {
        self.cache.shrink(nr)
    }

    /// Writes every change to the disk (Linux `ext2_sync_fs`); the file
    /// system stays marked in use.
    pub fn sync(&mut self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.write_super(self.mount_state & !EXT2_VALID_FS)
    }

    /// Writes everything back, records the clean (or erroneous) state and
    /// gives the device back (Linux `ext2_put_super`).
    pub fn unmount(mut self) -> Result<D> {
        if !self.read_only {
            self.write_super(self.mount_state)?;
        }
        Ok(self.cache.into_dev())
    }

    /// The device, for inspection (writing to it behind the file system's
    /// back is not supported).
    pub fn device(&self) -> &D {
        self.cache.device()
    }

    /// Whether changes are waiting for a sync.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Whether the mount is read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Whether corruption has been seen (`EXT2_ERROR_FS`).
    pub fn has_errors(&self) -> bool {
        self.mount_state & EXT2_ERROR_FS != 0
    }

    /// File system totals (Linux `ext2_statfs`, without its `minixdf`
    /// overhead subtraction: `blocks` is `s_blocks_count`).
    pub fn statfs(&self) -> StatFs {
        let reserved = get_u32(&self.sb_raw, sb::R_BLOCKS_COUNT);
        StatFs {
            block_size: self.geo.block_size,
            blocks: self.geo.blocks_count,
            free_blocks: self.free_blocks,
            avail_blocks: self.free_blocks.saturating_sub(reserved),
            inodes: self.geo.inodes_count,
            free_inodes: self.free_inodes,
            name_max: layout::NAME_LEN as u32,
        }
    }

    /// The block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.geo.block_size
    }

    /// Whether `block` is metadata: a superblock or descriptor copy, a
    /// bitmap or inode table block (Linux's system zone).
    pub(crate) fn is_system_block(&self, block: u32) -> bool {
        let group = self.geo.block_group(block);
        let Some(desc) = self.groups.get(group as usize) else { return true };
        block < self.geo.group_meta_end(group)
            || block == desc.block_bitmap
            || block == desc.inode_bitmap
            || (block >= desc.inode_table && block - desc.inode_table < self.geo.inode_table_blocks)
    }

    /// Checks a block number read from an inode or indirect block (Linux
    /// `ext2_data_block_valid`): inside the file system, not metadata.
    pub(crate) fn check_data_block(&self, block: u32, owner: Ino) -> Result<()> {
        if block < self.geo.first_data_block || block >= self.geo.blocks_count || self.is_system_block(block) {
            return Err(Ext2Error::corrupt("block pointer outside the data area", Location::Inode(owner.0)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_groups_are_powers_of_three_five_seven() {
        let mut raw = vec![0u8; SUPERBLOCK_SIZE];
        put_u16(&mut raw, sb::MAGIC, EXT2_SUPER_MAGIC);
        put_u32(&mut raw, sb::REV_LEVEL, 1);
        put_u16(&mut raw, sb::INODE_SIZE, 256);
        put_u32(&mut raw, sb::FIRST_INO, 11);
        put_u32(&mut raw, sb::BLOCKS_COUNT, 8192 * 50 + 1);
        put_u32(&mut raw, sb::FIRST_DATA_BLOCK, 1);
        put_u32(&mut raw, sb::BLOCKS_PER_GROUP, 8192);
        put_u32(&mut raw, sb::FRAGS_PER_GROUP, 8192);
        put_u32(&mut raw, sb::INODES_PER_GROUP, 128);
        put_u32(&mut raw, sb::INODES_COUNT, 128 * 50);
        put_u32(&mut raw, sb::FEATURE_RO_COMPAT, 1);
        let geo = parse_geometry(&raw, u64::MAX).unwrap();
        let with: Vec<u32> = (0..50).filter(|&g| geo.group_has_super(g)).collect();
        assert_eq!(with, [0, 1, 3, 5, 7, 9, 25, 27, 49]);
        assert_eq!(geo.groups, 50);
    }

    #[test]
    fn max_size_matches_linux() {
        // 1 KiB blocks: limited by the triple indirect tree.
        assert_eq!(max_file_size(10), (12 + 256 + 256 * 256 + 256 * 256 * 256) << 10);
        // 4 KiB blocks: limited by i_blocks, about 2 TiB.
        let max = max_file_size(12);
        assert!(max < 2 << 40 && max > (2 << 40) - (8 << 30));
    }
}
