//! Errors of file system operations, one variant per errno the VFS returns.
//!
//! Linux's ext2 reports corruption through `ext2_error` (which logs and marks
//! the file system with errors) and returns `EIO`; [`Ext2Error::Corrupt`]
//! carries what was wrong and where, and maps to `EIO`.

use core::fmt;

use uapi::Errno;

use crate::device::IoError;
use crate::layout::{IncompatFeatures, RoCompatFeatures};

/// Where a corruption was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// The superblock.
    Super,
    /// A block group's descriptor.
    Group(u32),
    /// An fs block.
    Block(u32),
    /// An inode.
    Inode(u32),
}

/// Why an operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ext2Error {
    /// No such file or directory (`ENOENT`).
    NotFound,
    /// The name exists (`EEXIST`).
    Exists,
    /// Not a directory (`ENOTDIR`).
    NotDir,
    /// Is a directory (`EISDIR`).
    IsDir,
    /// Directory not empty (`ENOTEMPTY`).
    NotEmpty,
    /// No free blocks or inodes (`ENOSPC`).
    NoSpace,
    /// A name longer than 255 bytes or a symlink target longer than a
    /// block (`ENAMETOOLONG`).
    NameTooLong,
    /// Too many links (`EMLINK`).
    TooManyLinks,
    /// An invalid argument, e.g. a name holding `/` or moving a directory
    /// into its own subtree (`EINVAL`).
    Invalid,
    /// The file system is mounted read-only (`EROFS`).
    ReadOnly,
    /// The file would exceed the largest size the format can map (`EFBIG`).
    FileTooBig,
    /// `.` or `..` given where a rename needs a real entry (`EBUSY`).
    Busy,
    /// The operation is not permitted on this kind of inode, e.g. a hard
    /// link to a directory (`EPERM`).
    NotPermitted,
    /// The device failed (`EIO`).
    Io(IoError),
    /// On-disk data is inconsistent (`EIO`).
    Corrupt {
        /// What was wrong.
        what: &'static str,
        /// Where it was found.
        at: Location,
    },
    /// The device holds no ext2 file system: bad superblock magic (`EINVAL`).
    BadMagic,
    /// The file system uses incompat features this driver lacks (`EINVAL`).
    UnsupportedFeatures(IncompatFeatures),
    /// A writable mount was asked of a file system with ro_compat features
    /// this driver lacks; it may be mounted read-only (`EINVAL`).
    UnsupportedRoCompat(RoCompatFeatures),
    /// The format revision or geometry is outside what this driver handles
    /// (`EINVAL`).
    Unsupported(&'static str),
}

impl Ext2Error {
    /// The Linux error number the VFS returns for this error.
    pub fn errno(&self) -> Errno {
        match self {
            Ext2Error::NotFound => Errno::ENOENT,
            Ext2Error::Exists => Errno::EEXIST,
            Ext2Error::NotDir => Errno::ENOTDIR,
            Ext2Error::IsDir => Errno::EISDIR,
            Ext2Error::NotEmpty => Errno::ENOTEMPTY,
            Ext2Error::NoSpace => Errno::ENOSPC,
            Ext2Error::NameTooLong => Errno::ENAMETOOLONG,
            Ext2Error::TooManyLinks => Errno::EMLINK,
            Ext2Error::Invalid => Errno::EINVAL,
            Ext2Error::ReadOnly => Errno::EROFS,
            Ext2Error::FileTooBig => Errno::EFBIG,
            Ext2Error::Busy => Errno::EBUSY,
            Ext2Error::NotPermitted => Errno::EPERM,
            Ext2Error::Io(_) | Ext2Error::Corrupt { .. } => Errno::EIO,
            Ext2Error::BadMagic
            | Ext2Error::UnsupportedFeatures(_)
            | Ext2Error::UnsupportedRoCompat(_)
            | Ext2Error::Unsupported(_) => Errno::EINVAL,
        }
    }

    /// A corruption of `what` at `at`.
    pub(crate) fn corrupt(what: &'static str, at: Location) -> Ext2Error {
        Ext2Error::Corrupt { what, at }
    }
}

impl From<IoError> for Ext2Error {
    fn from(e: IoError) -> Self {
        Ext2Error::Io(e)
    }
}

/// Writes the names of the known flags in `bits` and the unknown rest in hex.
fn write_feature_names<'a>(
    f: &mut fmt::Formatter<'_>,
    names: impl Iterator<Item = (&'a str, u32)>,
    bits: u32,
) -> fmt::Result {
    let mut rest = bits;
    let mut first = true;
    for (name, bit) in names {
        write!(f, "{}{}", if first { "" } else { "," }, name.to_ascii_lowercase())?;
        rest &= !bit;
        first = false;
    }
    if rest != 0 {
        write!(f, "{}{:#x}", if first { "" } else { "," }, rest)?;
    }
    Ok(())
}

impl fmt::Display for Ext2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ext2Error::Io(e) => write!(f, "I/O error: {e}"),
            Ext2Error::Corrupt { what, at } => write!(f, "corrupt file system: {what} at {at:?}"),
            Ext2Error::UnsupportedFeatures(features) => {
                f.write_str("unsupported incompat features: ")?;
                write_feature_names(f, features.iter_names().map(|(n, b)| (n, b.bits())), features.bits())
            }
            Ext2Error::UnsupportedRoCompat(features) => {
                f.write_str("unsupported ro_compat features (mount read-only): ")?;
                write_feature_names(f, features.iter_names().map(|(n, b)| (n, b.bits())), features.bits())
            }
            Ext2Error::Unsupported(what) => write!(f, "unsupported: {what}"),
            other => f.write_str(other.errno().description()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn feature_errors_name_the_features() {
        let e = Ext2Error::UnsupportedFeatures(IncompatFeatures::from_bits_retain(0x40 | 0x200 | 0x8000_0000));
        assert_eq!(e.to_string(), "unsupported incompat features: extents,flex_bg,0x80000000");
        assert_eq!(e.errno(), Errno::EINVAL);
    }

    #[test]
    fn corruption_is_eio() {
        assert_eq!(Ext2Error::corrupt("x", Location::Block(3)).errno(), Errno::EIO);
        assert_eq!(Ext2Error::NotEmpty.errno(), Errno::ENOTEMPTY);
    }
}
