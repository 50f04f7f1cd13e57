//! The on-disk format (Linux `fs/ext2/ext2.h`: `struct ext2_super_block`,
//! `ext2_group_desc`, `ext2_inode`, `ext2_dir_entry_2`), read and written
//! field by field in little endian.
//!
//! Structures are kept as their raw bytes and fields are read and patched at
//! their offsets, so bytes this driver does not interpret (the UUID, the
//! hash seed, the large inode's extra fields) survive a rewrite untouched.
//! The accessors never panic: a field outside the slice reads as zero and a
//! write to it is dropped, which only a caller bug (a wrong constant) could
//! cause, since every structure is allocated at its full size.

use bitflags::bitflags;

/// Byte offset of the primary superblock on the device.
pub const SUPERBLOCK_OFFSET: u64 = 1024;
/// Size of the superblock structure.
pub const SUPERBLOCK_SIZE: usize = 1024;
/// `EXT2_SUPER_MAGIC`.
pub const EXT2_SUPER_MAGIC: u16 = 0xEF53;
/// Size of a group descriptor without the 64bit feature.
pub const GROUP_DESC_SIZE: usize = 32;
/// Inode size of revision 0 (`EXT2_GOOD_OLD_INODE_SIZE`).
pub const GOOD_OLD_INODE_SIZE: u16 = 128;
/// First non-reserved inode of revision 0 (`EXT2_GOOD_OLD_FIRST_INO`).
pub const GOOD_OLD_FIRST_INO: u32 = 11;
/// `EXT2_DYNAMIC_REV`: revision with variable inode size and features.
pub const DYNAMIC_REV: u32 = 1;
/// The root directory's inode (`EXT2_ROOT_INO`).
pub const ROOT_INO: u32 = 2;
/// The resize inode, holding the reserved GDT blocks (`EXT2_RESIZE_INO`).
pub const RESIZE_INO: u32 = 7;
/// Pointers in `i_block`: 12 direct, then single, double, triple indirect
/// (`EXT2_N_BLOCKS`).
pub const N_BLOCKS: usize = 15;
/// Direct pointers in `i_block` (`EXT2_NDIR_BLOCKS`).
pub const NDIR_BLOCKS: usize = 12;
/// Bytes of `i_block`, where a fast symlink keeps its target.
pub const I_BLOCK_BYTES: usize = N_BLOCKS * 4;
/// Most links an inode may have (`EXT2_LINK_MAX`).
pub const LINK_MAX: u16 = 32000;
/// Longest name in a directory (`EXT2_NAME_LEN`).
pub const NAME_LEN: usize = 255;
/// Fixed part of a directory entry before the name.
pub const DIRENT_HEADER: usize = 8;
/// Magic of an extended attribute block (`EXT2_XATTR_MAGIC`).
pub const XATTR_MAGIC: u32 = 0xEA02_0000;

/// `s_state`: cleanly unmounted (`EXT2_VALID_FS`).
pub const EXT2_VALID_FS: u16 = 0x0001;
/// `s_state`: errors detected (`EXT2_ERROR_FS`).
pub const EXT2_ERROR_FS: u16 = 0x0002;

/// `i_flags`: directory has a hash index (`EXT2_INDEX_FL`, also
/// `EXT2_BTREE_FL`).
pub const EXT2_INDEX_FL: u32 = 0x0000_1000;

/// Length of a directory entry holding a name of `name_len` bytes
/// (`EXT2_DIR_REC_LEN`): header plus name, rounded up to 4.
pub const fn dir_rec_len(name_len: usize) -> usize {
    (DIRENT_HEADER + name_len + 3) & !3
}

bitflags! {
    /// `s_feature_compat`: features an old driver may ignore.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct CompatFeatures: u32 {
        /// `EXT2_FEATURE_COMPAT_DIR_PREALLOC`.
        const DIR_PREALLOC = 0x0001;
        /// `EXT2_FEATURE_COMPAT_IMAGIC_INODES`.
        const IMAGIC_INODES = 0x0002;
        /// `EXT3_FEATURE_COMPAT_HAS_JOURNAL`.
        const HAS_JOURNAL = 0x0004;
        /// `EXT2_FEATURE_COMPAT_EXT_ATTR`.
        const EXT_ATTR = 0x0008;
        /// `EXT2_FEATURE_COMPAT_RESIZE_INO`.
        const RESIZE_INODE = 0x0010;
        /// `EXT2_FEATURE_COMPAT_DIR_INDEX`.
        const DIR_INDEX = 0x0020;
    }

    /// `s_feature_incompat`: features a driver must understand to mount.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct IncompatFeatures: u32 {
        /// `EXT2_FEATURE_INCOMPAT_COMPRESSION`.
        const COMPRESSION = 0x0001;
        /// `EXT2_FEATURE_INCOMPAT_FILETYPE`: the type byte in directory entries.
        const FILETYPE = 0x0002;
        /// `EXT3_FEATURE_INCOMPAT_RECOVER`: the journal needs replay.
        const RECOVER = 0x0004;
        /// `EXT3_FEATURE_INCOMPAT_JOURNAL_DEV`.
        const JOURNAL_DEV = 0x0008;
        /// `EXT2_FEATURE_INCOMPAT_META_BG`.
        const META_BG = 0x0010;
        /// `EXT4_FEATURE_INCOMPAT_EXTENTS`.
        const EXTENTS = 0x0040;
        /// `EXT4_FEATURE_INCOMPAT_64BIT`.
        const BIT64 = 0x0080;
        /// `EXT4_FEATURE_INCOMPAT_MMP`.
        const MMP = 0x0100;
        /// `EXT4_FEATURE_INCOMPAT_FLEX_BG`.
        const FLEX_BG = 0x0200;
        /// `EXT4_FEATURE_INCOMPAT_EA_INODE`.
        const EA_INODE = 0x0400;
        /// `EXT4_FEATURE_INCOMPAT_DIRDATA`.
        const DIRDATA = 0x1000;
        /// `EXT4_FEATURE_INCOMPAT_CSUM_SEED`.
        const CSUM_SEED = 0x2000;
        /// `EXT4_FEATURE_INCOMPAT_LARGEDIR`.
        const LARGEDIR = 0x4000;
        /// `EXT4_FEATURE_INCOMPAT_INLINE_DATA`.
        const INLINE_DATA = 0x8000;
        /// `EXT4_FEATURE_INCOMPAT_ENCRYPT`.
        const ENCRYPT = 0x1_0000;
        /// `EXT4_FEATURE_INCOMPAT_CASEFOLD`.
        const CASEFOLD = 0x2_0000;
    }

    /// `s_feature_ro_compat`: features a driver must understand to write.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct RoCompatFeatures: u32 {
        /// `EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER`.
        const SPARSE_SUPER = 0x0001;
        /// `EXT2_FEATURE_RO_COMPAT_LARGE_FILE`.
        const LARGE_FILE = 0x0002;
        /// `EXT2_FEATURE_RO_COMPAT_BTREE_DIR`.
        const BTREE_DIR = 0x0004;
        /// `EXT4_FEATURE_RO_COMPAT_HUGE_FILE`.
        const HUGE_FILE = 0x0008;
        /// `EXT4_FEATURE_RO_COMPAT_GDT_CSUM`.
        const GDT_CSUM = 0x0010;
        /// `EXT4_FEATURE_RO_COMPAT_DIR_NLINK`.
        const DIR_NLINK = 0x0020;
        /// `EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE`.
        const EXTRA_ISIZE = 0x0040;
        /// `EXT4_FEATURE_RO_COMPAT_METADATA_CSUM`.
        const METADATA_CSUM = 0x0400;
    }
}

/// The incompat features this driver implements.
pub const SUPPORTED_INCOMPAT: IncompatFeatures = IncompatFeatures::FILETYPE;
/// The ro_compat features this driver implements (others force read-only).
pub const SUPPORTED_RO_COMPAT: RoCompatFeatures = RoCompatFeatures::SPARSE_SUPER.union(RoCompatFeatures::LARGE_FILE);

/// Reads a little-endian `u16` at `off` (zero if out of range).
pub fn get_u16(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    if let Some(s) = off.checked_add(2).and_then(|end| b.get(off..end)) {
        a.copy_from_slice(s);
    }
    u16::from_le_bytes(a)
}

/// Reads a little-endian `u32` at `off` (zero if out of range).
pub fn get_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = off.checked_add(4).and_then(|end| b.get(off..end)) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

/// Writes a little-endian `u16` at `off` (dropped if out of range).
pub fn put_u16(b: &mut [u8], off: usize, v: u16) {
    if let Some(s) = off.checked_add(2).and_then(|end| b.get_mut(off..end)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Writes a little-endian `u32` at `off` (dropped if out of range).
pub fn put_u32(b: &mut [u8], off: usize, v: u32) {
    if let Some(s) = off.checked_add(4).and_then(|end| b.get_mut(off..end)) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Field offsets in `struct ext2_super_block`.
pub mod sb {
    /// `s_inodes_count`.
    pub const INODES_COUNT: usize = 0;
    /// `s_blocks_count`.
    pub const BLOCKS_COUNT: usize = 4;
    /// `s_r_blocks_count`.
    pub const R_BLOCKS_COUNT: usize = 8;
    /// `s_free_blocks_count`.
    pub const FREE_BLOCKS_COUNT: usize = 12;
    /// `s_free_inodes_count`.
    pub const FREE_INODES_COUNT: usize = 16;
    /// `s_first_data_block`.
    pub const FIRST_DATA_BLOCK: usize = 20;
    /// `s_log_block_size`.
    pub const LOG_BLOCK_SIZE: usize = 24;
    /// `s_log_frag_size`.
    pub const LOG_FRAG_SIZE: usize = 28;
    /// `s_blocks_per_group`.
    pub const BLOCKS_PER_GROUP: usize = 32;
    /// `s_frags_per_group`.
    pub const FRAGS_PER_GROUP: usize = 36;
    /// `s_inodes_per_group`.
    pub const INODES_PER_GROUP: usize = 40;
    /// `s_mtime`.
    pub const MTIME: usize = 44;
    /// `s_wtime`.
    pub const WTIME: usize = 48;
    /// `s_mnt_count`.
    pub const MNT_COUNT: usize = 52;
    /// `s_magic`.
    pub const MAGIC: usize = 56;
    /// `s_state`.
    pub const STATE: usize = 58;
    /// `s_rev_level`.
    pub const REV_LEVEL: usize = 76;
    /// `s_first_ino`.
    pub const FIRST_INO: usize = 84;
    /// `s_inode_size`.
    pub const INODE_SIZE: usize = 88;
    /// `s_feature_compat`.
    pub const FEATURE_COMPAT: usize = 92;
    /// `s_feature_incompat`.
    pub const FEATURE_INCOMPAT: usize = 96;
    /// `s_feature_ro_compat`.
    pub const FEATURE_RO_COMPAT: usize = 100;
    /// `s_reserved_gdt_blocks`.
    pub const RESERVED_GDT_BLOCKS: usize = 206;
}

/// Field offsets in `struct ext2_group_desc`.
pub mod gd {
    /// `bg_block_bitmap`.
    pub const BLOCK_BITMAP: usize = 0;
    /// `bg_inode_bitmap`.
    pub const INODE_BITMAP: usize = 4;
    /// `bg_inode_table`.
    pub const INODE_TABLE: usize = 8;
    /// `bg_free_blocks_count`.
    pub const FREE_BLOCKS_COUNT: usize = 12;
    /// `bg_free_inodes_count`.
    pub const FREE_INODES_COUNT: usize = 14;
    /// `bg_used_dirs_count`.
    pub const USED_DIRS_COUNT: usize = 16;
}

/// Field offsets in `struct ext2_inode`.
pub mod ino {
    /// `i_mode`.
    pub const MODE: usize = 0;
    /// `i_uid` (low 16 bits).
    pub const UID: usize = 2;
    /// `i_size` (low 32 bits).
    pub const SIZE: usize = 4;
    /// `i_atime`.
    pub const ATIME: usize = 8;
    /// `i_ctime`.
    pub const CTIME: usize = 12;
    /// `i_mtime`.
    pub const MTIME: usize = 16;
    /// `i_dtime`.
    pub const DTIME: usize = 20;
    /// `i_gid` (low 16 bits).
    pub const GID: usize = 24;
    /// `i_links_count`.
    pub const LINKS_COUNT: usize = 26;
    /// `i_blocks`, in 512-byte units.
    pub const BLOCKS: usize = 28;
    /// `i_flags`.
    pub const FLAGS: usize = 32;
    /// `i_block[EXT2_N_BLOCKS]`.
    pub const BLOCK: usize = 40;
    /// `i_generation`.
    pub const GENERATION: usize = 100;
    /// `i_file_acl`: the extended attribute block.
    pub const FILE_ACL: usize = 104;
    /// `i_size_high` (`i_dir_acl` for non-regular files).
    pub const SIZE_HIGH: usize = 108;
    /// `l_i_uid_high`.
    pub const UID_HIGH: usize = 120;
    /// `l_i_gid_high`.
    pub const GID_HIGH: usize = 122;
}

/// Directory entry file types (`EXT2_FT_*`), also the kind of an inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileType {
    /// `EXT2_FT_UNKNOWN`: the entry carries no type (no filetype feature).
    Unknown,
    /// `EXT2_FT_REG_FILE`.
    Regular,
    /// `EXT2_FT_DIR`.
    Directory,
    /// `EXT2_FT_CHRDEV`.
    CharDevice,
    /// `EXT2_FT_BLKDEV`.
    BlockDevice,
    /// `EXT2_FT_FIFO`.
    Fifo,
    /// `EXT2_FT_SOCK`.
    Socket,
    /// `EXT2_FT_SYMLINK`.
    Symlink,
}

/// File type bits of `i_mode` (`S_IFMT`).
pub const S_IFMT: u16 = 0o170_000;
/// `S_IFSOCK`.
pub const S_IFSOCK: u16 = 0o140_000;
/// `S_IFLNK`.
pub const S_IFLNK: u16 = 0o120_000;
/// `S_IFREG`.
pub const S_IFREG: u16 = 0o100_000;
/// `S_IFBLK`.
pub const S_IFBLK: u16 = 0o060_000;
/// `S_IFDIR`.
pub const S_IFDIR: u16 = 0o040_000;
/// `S_IFCHR`.
pub const S_IFCHR: u16 = 0o020_000;
/// `S_IFIFO`.
pub const S_IFIFO: u16 = 0o010_000;

impl FileType {
    /// The type of an inode with mode `mode`, `None` for an invalid type.
    pub fn from_mode(mode: u16) -> Option<FileType> {
        Some(match mode & S_IFMT {
            S_IFREG => FileType::Regular,
            S_IFDIR => FileType::Directory,
            S_IFLNK => FileType::Symlink,
            S_IFCHR => FileType::CharDevice,
            S_IFBLK => FileType::BlockDevice,
            S_IFIFO => FileType::Fifo,
            S_IFSOCK => FileType::Socket,
            _ => return None,
        })
    }

    /// The type stored in a directory entry's `file_type` byte.
    pub fn from_dirent(ft: u8) -> FileType {
        match ft {
            1 => FileType::Regular,
            2 => FileType::Directory,
            3 => FileType::CharDevice,
            4 => FileType::BlockDevice,
            5 => FileType::Fifo,
            6 => FileType::Socket,
            7 => FileType::Symlink,
            _ => FileType::Unknown,
        }
    }

    /// The `file_type` byte of a directory entry.
    pub fn dirent_byte(self) -> u8 {
        match self {
            FileType::Unknown => 0,
            FileType::Regular => 1,
            FileType::Directory => 2,
            FileType::CharDevice => 3,
            FileType::BlockDevice => 4,
            FileType::Fifo => 5,
            FileType::Socket => 6,
            FileType::Symlink => 7,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_ignore_out_of_range_fields() {
        let mut b = [0u8; 6];
        put_u32(&mut b, 2, 0xdead_beef);
        assert_eq!(get_u32(&b, 2), 0xdead_beef);
        assert_eq!(get_u16(&b, 4), 0xdead);
        put_u32(&mut b, 4, 1);
        assert_eq!(get_u32(&b, 4), 0);
        assert_eq!(get_u16(&b, usize::MAX), 0);
    }

    #[test]
    fn rec_len_rounds_name_to_four() {
        assert_eq!(dir_rec_len(1), 12);
        assert_eq!(dir_rec_len(4), 12);
        assert_eq!(dir_rec_len(5), 16);
        assert_eq!(dir_rec_len(255), 264);
    }

    #[test]
    fn file_types_round_trip_through_dirent_bytes() {
        for ft in 0..8 {
            assert_eq!(FileType::from_dirent(ft).dirent_byte(), ft);
        }
        assert_eq!(FileType::from_mode(S_IFDIR | 0o755), Some(FileType::Directory));
        assert_eq!(FileType::from_mode(0o755), None);
    }
}
