//! A read-write ext2 file system (Linux `fs/ext2`) over an abstract block
//! device, built for the kernel and tested on the host.
//!
//! # Layers
//!
//! - [`BlockDevice`] is the machine boundary: byte-addressed `read_at`,
//!   `write_at` and `flush`. Every request is one whole fs block at a
//!   block-aligned offset, except the superblock (1024 bytes at byte 1024),
//!   so all are multiples of a 512-byte sector. [`MemDisk`] is a device in
//!   memory with injectable I/O errors.
//! - A bounded metadata block cache (`buffer.rs`, the buffer cache's role in
//!   Linux) holds superblock-adjacent structures, bitmaps, inode table
//!   blocks, indirect blocks and directory blocks; they are changed in place,
//!   marked dirty and written back on eviction or [`Ext2Fs::sync`].
//! - File data is mapped, not cached: [`Ext2Fs::get_block`] is
//!   `ext2_get_block`, mapping a file block to a disk block through the
//!   direct, indirect, double and triple indirect pointers and allocating
//!   when asked; [`Ext2Fs::get_blocks`] maps a run of blocks that follow
//!   each other on the disk (or a run of holes) for a reader. A page cache
//!   reads and writes data blocks itself through these hooks;
//!   [`Ext2Fs::read`] and [`Ext2Fs::write`] are conveniences built on
//!   them (holes read as zeros, partial blocks are read-modify-written).
//! - Namespace operations ([`Ext2Fs::lookup`], [`Ext2Fs::create`],
//!   [`Ext2Fs::mkdir`], [`Ext2Fs::rename`], ...) take a directory inode and a
//!   name, as Linux's `inode_operations` do; path walking is the VFS's job.
//!
//! # Supported and refused
//!
//! What `mke2fs -t ext2` makes by default: revision 0 or 1, blocks of 1 KiB
//! to 64 KiB, 128-byte or larger inodes, and the features `ext_attr`,
//! `resize_inode` (its reserved GDT blocks are accounted as metadata and the
//! resize inode is never touched), `dir_index` (hash indexes are ignored:
//! an indexed directory is also a valid linear one, and as Linux's ext2 does
//! we clear `EXT2_INDEX_FL` on a directory we modify, so e2fsck accepts it),
//! `filetype`, `sparse_super` (or a backup in every group without it) and
//! `large_file`. Mount refuses any other incompat feature
//! ([`Ext2Error::UnsupportedFeatures`] names them) and a writable mount with
//! an unknown ro_compat feature. Extended attribute blocks are kept as they
//! are; deleting an inode drops its reference on its attribute block.
//!
//! Everything read from the disk is untrusted: a corrupt image produces
//! [`Ext2Error::Corrupt`] naming what is wrong and where, never a panic, a
//! loop or an allocation sized by disk data. The first corruption found on
//! a writable mount sets `EXT2_ERROR_FS` in the superblock, as
//! `ext2_error` does.
//!
//! # Allocation policy
//!
//! Inodes (Linux `ext2_new_inode`): a directory goes to the group with the
//! most free blocks among those with at least the average number of free
//! inodes (Linux's `find_group_dir`, its policy before Orlov; Orlov, now the
//! default, also spreads top-level directories but keeps subdirectories near
//! their parent); any other inode goes to its parent's group if that group
//! has free inodes and blocks, else a quadratic hash of groups, else a
//! linear scan (Linux's `find_group_other`).
//!
//! Blocks (Linux `ext2_new_blocks`): the goal is the block after the
//! nearest mapped block before the one being mapped (in the same indirect
//! block or `i_block`), else the block after the indirect block being
//! filled, else the start of the inode's group; the search takes the first
//! free block at or after the goal in its group, then scans the following
//! groups. Linux additionally keeps per-inode reservation windows and
//! preallocates; we allocate one block at a time. The root-reserved blocks
//! (`s_r_blocks_count`) are not enforced, since the caller has no
//! credentials to check; [`StatFs::avail_blocks`] reports them.
//!
//! # Testing
//!
//! Unit tests cover each module's pure parts; the integration tests mount
//! images made by the host's `mke2fs` (1 KiB and 4 KiB blocks, 128- and
//! 256-byte inodes, with and without `sparse_super` and `filetype`), check
//! every written image with `e2fsck -fn` and read files back with
//! `debugfs`, compare random operation sequences against a model of the
//! tree, and feed the driver corrupt images.
//!
//! # Concurrency and lifetimes
//!
//! Every operation takes `&mut self`: the VFS serialises access with one
//! lock around the file system. An inode whose last link goes away is freed
//! at once; keeping an unlinked but open file alive is the VFS's job
//! (Linux's orphan handling in `evict_inode`).

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod balloc;
mod buffer;
mod device;
mod dir;
mod error;
mod ialloc;
mod inode;
pub mod layout;
mod namei;
mod super_block;
mod symlink;

pub use device::{BlockDevice, IoError, IoErrorKind, MemDisk};
pub use dir::DirEntry;
pub use error::{Ext2Error, Location};
pub use inode::{Extent, Mapping, SetAttr, Stat};
pub use layout::{CompatFeatures, FileType, IncompatFeatures, RoCompatFeatures};
pub use namei::Owner;
pub use super_block::{Clock, Ext2Fs, FixedClock, MountOptions, StatFs};

/// An inode number (Linux `ino_t`), 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ino(pub u32);

impl Ino {
    /// The root directory.
    pub const ROOT: Ino = Ino(layout::ROOT_INO);
}

/// A block number on the device, in fs blocks (Linux `sector_t` as
/// `map_bh` sets it, but in file system block units).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhysBlock(pub u32);

/// Result type of file system operations.
pub type Result<T> = core::result::Result<T, Ext2Error>;
