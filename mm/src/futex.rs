//! The memory-manager half of futexes: which word a futex is (Linux
//! `kernel/futex/core.c`'s `get_futex_key`, `futex_match` and the hash
//! `futex_hash` takes).
//!
//! The kernel's `futex` module does the rest: the system call, the hash
//! buckets and their locks, reading the user word, sleeping and waking. A
//! key needs only the VMA the word is in, so the host tests check it.
//!
//! # Keys
//!
//! Two waiters meet when their keys are equal ([`FutexKey`], Linux `union
//! futex_key`):
//! - A private futex (`FUTEX_PRIVATE_FLAG`) is the address space and the
//!   address ([`FutexKey::Private`]); no VMA is looked at, so waking an
//!   unmapped private address wakes nobody and succeeds, as on Linux.
//! - A shared futex in a page of a file (a `MAP_SHARED` mapping of a file,
//!   a memfd or shared anonymous memory, which is a shmem file) is the
//!   file's page cache, the page's index in the file and the offset in the
//!   page ([`FutexKey::Inode`]): two processes mapping the file meet
//!   whatever addresses they map it at.
//! - A shared futex in private memory is keyed like a private one, in a
//!   kind of its own ([`FutexKey::MmShared`], Linux's `FUT_OFF_MMSHARED`
//!   offset bit), so a private and a shared operation on one word do not
//!   meet, as on Linux.
//!
//! Linux looks at the page (`get_user_pages_fast`, with `FOLL_WRITE`
//! first): an anonymous page gives the address-space key, a page-cache
//! page the inode key. The VMA decides here, with the same outcome for
//! each kind of mapping: a writable private mapping's page is anonymous
//! once Linux's write-fault has copied it, a read-only private file
//! mapping's page is the file's, a read-only private anonymous mapping
//! gives `EFAULT` (Linux's `ro` case), and a mapping that allows no access
//! gives `EFAULT` (the page cannot be had). Difference: a read-only
//! private file mapping whose page was copied on write before an
//! `mprotect` to read-only is keyed on the file here, on the address
//! space by Linux.
//!
//! The page cache is named by its id
//! ([`VmaFile::mapping_id`](crate::vma::VmaFile::mapping_id)), which a
//! later cache may reuse after this one is freed; Linux uses an inode
//! sequence number that is never reused. A waiter still queued on a key of
//! a freed cache could then be woken by a waker of the new one: a
//! spurious wake-up, which futex users must tolerate anyway.

#![forbid(unsafe_code)]

use uapi::errno::Errno;

use crate::addr::{PAGE_SHIFT, PAGE_SIZE};
use crate::uaddr::TASK_SIZE;
use crate::vma::{VmaDesc, VmaFlags};

/// A futex word's user address: 4-byte aligned, the word below
/// [`TASK_SIZE`] (Linux's checks at the top of `get_futex_key`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FutexAddr(u64);

impl FutexAddr {
    /// `uaddr` as a futex word: `EINVAL` if it is not aligned (checked
    /// first, as Linux does), `EFAULT` if the word is not in user space.
    pub fn new(uaddr: u64) -> Result<Self, Errno> {
        if !uaddr.is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        if uaddr.checked_add(4).is_none_or(|end| end > TASK_SIZE) {
            return Err(Errno::EFAULT);
        }
        Ok(FutexAddr(uaddr))
    }

    /// The address.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The offset of the word in its page.
    fn offset_in_page(self) -> u32 {
        (self.0 & (PAGE_SIZE - 1)) as u32
    }
}

/// Which futex word a waiter waits on (Linux `union futex_key`). An
/// address space or page cache is named by a number its owner gives
/// (the kernel: the address of its `mm`, [`VmaFile::mapping_id`]).
///
/// [`VmaFile::mapping_id`]: crate::vma::VmaFile::mapping_id
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FutexKey {
    /// A private futex: the address space and the word's address.
    Private {
        /// The address space.
        mm: u64,
        /// The word's address.
        address: u64,
    },
    /// A shared futex in private memory (Linux's `FUT_OFF_MMSHARED`).
    MmShared {
        /// The address space.
        mm: u64,
        /// The word's address.
        address: u64,
    },
    /// A shared futex in a file's page (Linux's `FUT_OFF_INODE`).
    Inode {
        /// The file's page cache.
        mapping: u64,
        /// The page's index in the file.
        pgoff: u64,
        /// The word's offset in the page.
        offset: u32,
    },
}

impl FutexKey {
    /// The key of a private futex (Linux `get_futex_key` without
    /// `FLAGS_SHARED`): no VMA is looked at.
    pub fn private(mm: u64, uaddr: FutexAddr) -> Self {
        FutexKey::Private { mm, address: uaddr.as_u64() }
    }

    /// The key of a shared futex at `uaddr` in the address space `mm`,
    /// whose VMA there is `vma` (Linux `get_futex_key` with
    /// `FLAGS_SHARED`; see the module doc for how the VMA decides).
    /// `EFAULT` if no VMA maps the word or it cannot be read.
    pub fn shared(mm: u64, uaddr: FutexAddr, vma: Option<&VmaDesc>) -> Result<Self, Errno> {
        let vma = vma.ok_or(Errno::EFAULT)?;
        let address = uaddr.as_u64();
        if !(vma.start.as_u64()..vma.end.as_u64()).contains(&address) {
            return Err(Errno::EFAULT);
        }
        let flags = vma.flags;
        if !flags.intersects(VmaFlags::READ | VmaFlags::WRITE) {
            return Err(Errno::EFAULT);
        }
        let writable = flags.contains(VmaFlags::WRITE);
        let file_page = match vma.file {
            Some(file) if flags.contains(VmaFlags::MAYSHARE) || !writable => Some(file),
            _ => None,
        };
        match file_page {
            Some(file) => {
                let mapping = file.mapping_id().ok_or(Errno::EFAULT)?;
                let pgoff = vma.pgoff + ((address - vma.start.as_u64()) >> PAGE_SHIFT);
                Ok(FutexKey::Inode { mapping, pgoff, offset: uaddr.offset_in_page() })
            }
            None if writable => Ok(FutexKey::MmShared { mm, address }),
            None => Err(Errno::EFAULT),
        }
    }

    /// A well-mixed hash of the key (Linux hashes its words with
    /// `jhash2`); the kernel takes its bucket from the top bits.
    pub fn hash(&self) -> u64 {
        let (kind, a, b) = match *self {
            FutexKey::Private { mm, address } => (1, mm, address),
            FutexKey::MmShared { mm, address } => (2, mm, address),
            FutexKey::Inode { mapping, pgoff, offset } => (3, mapping, (pgoff << PAGE_SHIFT) | u64::from(offset)),
        };
        mix(mix(mix(kind) ^ a) ^ b)
    }
}

/// The finaliser of SplitMix64: every input bit reaches every output bit.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests;
