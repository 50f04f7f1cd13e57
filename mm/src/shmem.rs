//! Shared anonymous memory's object (Linux `mm/shmem.c`'s
//! `shmem_zero_setup`, the one part of shmem the mm calls itself).
//!
//! A `MAP_SHARED | MAP_ANONYMOUS` mapping is, as in Linux, a mapping of
//! an unlinked shmem file exactly as long as the mapping (it shows as
//! `/dev/zero (deleted)` in `/proc/PID/maps`), which
//! [`MmStruct::do_mmap`](crate::mmap::MmStruct::do_mmap) asks a
//! [`ShmemZeroSetup`] for when it creates the VMA. From there on the
//! mapping is an ordinary shared file mapping ([`crate::memory`]): its
//! pages are the file's page-cache pages, allocated at the first touch,
//! shared with every VMA that maps the file (fork children, `mremap`
//! copies and moves), counted in the address space's
//! [`MmCounter::ShmemPages`](crate::mmap::MmCounter::ShmemPages), and
//! freed with the file when its last VMA goes. `MADV_DONTNEED` drops the
//! ptes and the next touch finds the file's page again; `MADV_REMOVE`
//! frees the pages themselves ([`VmaFile::punch_hole`]). A page past the
//! file's end, which a mapping grown by `mremap` has, is `SIGBUS`, as on
//! Linux.
//!
//! The file is the kernel's (tmpfs's page cache, `kernel/src/shmem.rs`);
//! host tests give a simulated one. The page cache side of shmem
//! (swapbacked pages, never written back or reclaimed) is
//! [`crate::filemap`]'s, [`crate::page_writeback`]'s and
//! [`crate::vmscan`]'s.

// Its tests free the pages of their simulated files (an unsafe call);
// the module itself has no reason for unsafe.
#![cfg_attr(not(test), forbid(unsafe_code))]

use uapi::errno::Errno;

use crate::vma::VmaFile;

/// Where shared anonymous memory gets its file (Linux
/// `shmem_zero_setup`). An address space holds one for its life
/// ([`MmStruct::new`](crate::mmap::MmStruct::new)).
pub trait ShmemZeroSetup: Sync {
    /// A new, empty shmem file of `size` bytes (every page reads as
    /// zeros), with one reference for the caller, who drops it with
    /// [`VmaFile::put_file`] once the VMA took its own (Linux
    /// `shmem_kernel_file_setup("dev/zero", size, ...)`).
    ///
    /// Errors: `ENOMEM` without memory for the file.
    fn shmem_zero_setup(&self, size: u64) -> Result<&'static dyn VmaFile, Errno>;
}

#[cfg(test)]
pub(crate) mod tests;
