//! File seals (Linux `mm/memfd.c`'s `memfd_add_seals` and the seal checks
//! of `mm/shmem.c`: `shmem_write_begin`, `shmem_setattr`,
//! `shmem_fallocate`, and `seal_check_write`/`mapping_map_writable` at
//! mmap).
//!
//! Every shmem file has seals ([`SealState`], Linux
//! `shmem_inode_info.seals`): a tmpfs file and a memfd made without
//! `MFD_ALLOW_SEALING` start with `F_SEAL_SEAL` alone, so nothing can
//! ever be added; a memfd made with it starts with none. Seals only
//! accumulate. What each one refuses, with `EPERM`:
//! - `F_SEAL_SEAL`: adding seals ([`SealState::add_seals`]);
//! - `F_SEAL_SHRINK` / `F_SEAL_GROW`: a size change down / up, by
//!   truncation or by a write past the end ([`SealState::check_resize`],
//!   [`SealState::check_write`]);
//! - `F_SEAL_WRITE`: any write, hole punching, and any new shared mapping
//!   that is writable; a read-only shared mapping may be made, but loses
//!   `VM_MAYWRITE` so that `mprotect` cannot make it writable
//!   ([`SealState::mmap`]). It can only be added while no shared mapping
//!   that may write exists (`EBUSY`): the state counts them (Linux
//!   `i_mmap_writable`), each from its [`SealState::mmap`] to its
//!   [`SealState::unmap_writable`];
//! - `F_SEAL_FUTURE_WRITE`: as `F_SEAL_WRITE`, but shared writable
//!   mappings made before it keep writing.
//!
//! The caller keeps the state under a lock and holds the file's
//! `i_rwsem` for [`SealState::add_seals`], as Linux does, so that a write
//! that passed [`SealState::check_write`] finishes before a seal that
//! would have refused it is added.
//!
//! Differences from Linux: `F_SEAL_EXEC` (Linux 6.3) is unknown and
//! `EINVAL`, as in Linux 6.1; a write that would pass `F_SEAL_GROW` is
//! refused whole, where Linux refuses it page by page and may return a
//! short count; no page pins to wait for (`memfd_wait_for_pins`): the
//! kernel has no `get_user_pages`.

#![forbid(unsafe_code)]

use bitflags::bitflags;
use uapi::errno::Errno;
use uapi::fcntl::{F_SEAL_FUTURE_WRITE, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_WRITE};

bitflags! {
    /// A shmem file's seals (Linux `F_SEAL_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Seals: u32 {
        /// `F_SEAL_SEAL`: no more seals.
        const SEAL = F_SEAL_SEAL;
        /// `F_SEAL_SHRINK`: the size may not go down.
        const SHRINK = F_SEAL_SHRINK;
        /// `F_SEAL_GROW`: the size may not go up.
        const GROW = F_SEAL_GROW;
        /// `F_SEAL_WRITE`: the contents may not change.
        const WRITE = F_SEAL_WRITE;
        /// `F_SEAL_FUTURE_WRITE`: no new way to change the contents.
        const FUTURE_WRITE = F_SEAL_FUTURE_WRITE;
    }
}

impl Seals {
    /// Either write seal: what refuses writes and writable mappings.
    const ANY_WRITE: Seals = Seals::WRITE.union(Seals::FUTURE_WRITE);
}

/// Why a sealed file refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealError {
    /// A seal forbids it (`EPERM`).
    Sealed,
    /// `F_SEAL_WRITE` while a shared mapping may write (`EBUSY`).
    Busy,
    /// A bit that is no seal (`EINVAL`).
    Invalid,
}

impl From<SealError> for Errno {
    fn from(e: SealError) -> Errno {
        match e {
            SealError::Sealed => Errno::EPERM,
            SealError::Busy => Errno::EBUSY,
            SealError::Invalid => Errno::EINVAL,
        }
    }
}

/// What a new mapping of a sealed file may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmapGrant {
    /// Whether the mapping may be written through if shared (it keeps
    /// `VM_MAYWRITE`): false for a read-only opener, and for a shared
    /// mapping of a write-sealed file.
    pub may_write: bool,
    /// Whether it counts as a shared mapping that may write: the caller
    /// calls [`SealState::unmap_writable`] when its last VMA is gone.
    pub counted: bool,
}

/// A shmem file's seals and its shared mappings that may write (Linux
/// `shmem_inode_info.seals` and `address_space.i_mmap_writable`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealState {
    seals: Seals,
    mmap_writable: u64,
}

impl SealState {
    /// A file with `seals`: [`Seals::SEAL`] for a tmpfs file or a memfd
    /// without `MFD_ALLOW_SEALING`, none for one with it.
    pub const fn new(seals: Seals) -> SealState {
        SealState { seals, mmap_writable: 0 }
    }

    /// The seals (`F_GET_SEALS`).
    pub fn seals(&self) -> Seals {
        self.seals
    }

    /// `F_ADD_SEALS` of `arg` (Linux `memfd_add_seals`, after its
    /// `FMODE_WRITE` check, which is the caller's): bits that are no seal
    /// are `EINVAL`, a sealed file `EPERM`, a new `F_SEAL_WRITE` while a
    /// shared mapping may write `EBUSY`.
    pub fn add_seals(&mut self, arg: u32) -> Result<(), SealError> {
        let add = Seals::from_bits(arg).ok_or(SealError::Invalid)?;
        if self.seals.contains(Seals::SEAL) {
            return Err(SealError::Sealed);
        }
        if add.contains(Seals::WRITE) && !self.seals.contains(Seals::WRITE) && self.mmap_writable > 0 {
            return Err(SealError::Busy);
        }
        self.seals |= add;
        Ok(())
    }

    /// A write of `len` bytes at `pos` to the file of `size` bytes (Linux
    /// `shmem_write_begin`).
    pub fn check_write(&self, pos: u64, len: u64, size: u64) -> Result<(), SealError> {
        if self.seals.intersects(Seals::ANY_WRITE) {
            return Err(SealError::Sealed);
        }
        if self.seals.contains(Seals::GROW) && pos.saturating_add(len) > size {
            return Err(SealError::Sealed);
        }
        Ok(())
    }

    /// A size change from `old` to `new` bytes (Linux `shmem_setattr`).
    pub fn check_resize(&self, old: u64, new: u64) -> Result<(), SealError> {
        if (new < old && self.seals.contains(Seals::SHRINK)) || (new > old && self.seals.contains(Seals::GROW)) {
            return Err(SealError::Sealed);
        }
        Ok(())
    }

    /// Freeing pages inside the file (Linux `shmem_fallocate` with
    /// `FALLOC_FL_PUNCH_HOLE`).
    pub fn check_punch_hole(&self) -> Result<(), SealError> {
        if self.seals.intersects(Seals::ANY_WRITE) { Err(SealError::Sealed) } else { Ok(()) }
    }

    /// A new mapping, `shared` or not, readable and maybe `prot_write`,
    /// by an opener that may write if `writable` (Linux
    /// `seal_check_write` and `mapping_map_writable` at mmap): `EPERM`
    /// for a shared writable mapping of a write-sealed file by a writer
    /// (a reader's is refused by mmap's own `EACCES`, which Linux checks
    /// first); otherwise what the mapping may do, counted if it is shared
    /// and may write.
    pub fn mmap(&mut self, shared: bool, prot_write: bool, writable: bool) -> Result<MmapGrant, SealError> {
        let sealed = self.seals.intersects(Seals::ANY_WRITE);
        if sealed && shared && prot_write && writable {
            return Err(SealError::Sealed);
        }
        let may_write = writable && !(sealed && shared);
        let counted = shared && may_write;
        if counted {
            self.mmap_writable += 1;
        }
        Ok(MmapGrant { may_write, counted })
    }

    /// A counted mapping ([`MmapGrant::counted`]) is gone (Linux
    /// `mapping_unmap_writable`).
    pub fn unmap_writable(&mut self) {
        debug_assert!(self.mmap_writable > 0, "unmap_writable without a counted mapping");
        self.mmap_writable = self.mmap_writable.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests;
