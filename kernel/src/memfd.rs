//! memfd (Linux `mm/memfd.c`): `memfd_create(2)`, an open file on a new
//! shmem file in no directory, and the `F_ADD_SEALS`/`F_GET_SEALS` of
//! `fcntl(2)`.
//!
//! A memfd is a [`crate::shmem`] file on the kernel's internal tmpfs,
//! named `memfd:NAME` (`/memfd:NAME (deleted)` in `/proc/PID/maps`),
//! opened read-write; it lives while a descriptor or a mapping holds it.
//! Without `MFD_ALLOW_SEALING` it starts sealed with `F_SEAL_SEAL`, as
//! every tmpfs file does; with it, with no seal. What the seals refuse is
//! [`mm::memfd`]'s: writes, truncation, hole punching and shared writable
//! mappings are refused where they are checked (the shmem file's
//! `write_begin` and `setattr`, [`crate::shmem::ShmemInode::punch_hole`],
//! `sys_mmap`).
//!
//! Differences from Linux: `MFD_HUGETLB` is EINVAL (no hugetlbfs), and
//! `MFD_NOEXEC_SEAL`, `MFD_EXEC` and `F_SEAL_EXEC` (Linux 6.3) are EINVAL
//! as in Linux 6.1; memfd files are never executable-sealed and there is
//! no `vm.memfd_noexec`.

#![forbid(unsafe_code)]

use alloc::string::String;

use mm::memfd::Seals;
use uapi::errno::Errno;
use uapi::fcntl::{F_ADD_SEALS, F_GET_SEALS, O_LARGEFILE, O_RDWR};
use uapi::memfd::{MFD_ALLOW_SEALING, MFD_CLOEXEC};

use crate::arch::x86_64::uaccess::strncpy_from_user;
use crate::fs::file::{FileKind, OpenFile};
use crate::{resource, sched};

/// What every memfd's name starts with (Linux `MFD_NAME_PREFIX`).
const MFD_NAME_PREFIX: &str = "memfd:";

/// The longest name a caller may give (Linux `MFD_NAME_MAX_LEN`): what a
/// file name may hold after the prefix.
const MFD_NAME_MAX_LEN: usize = uapi::fs::NAME_MAX - MFD_NAME_PREFIX.len();

/// `memfd_create(2)`: a new descriptor on a new, empty shmem file named
/// `memfd:` and the user's `uname`. Checks in Linux's order: flags
/// (EINVAL), the name (EFAULT, EINVAL if longer than
/// [`MFD_NAME_MAX_LEN`]), a free descriptor (EMFILE), then the file
/// (ENOMEM).
pub fn sys_memfd_create(uname: u64, flags: u32) -> Result<u64, Errno> {
    if flags & !(MFD_CLOEXEC | MFD_ALLOW_SEALING) != 0 {
        return Err(Errno::EINVAL);
    }
    let mut name = [0u8; MFD_NAME_MAX_LEN + 1];
    let len = strncpy_from_user(&mut name, uname).map_err(|_| Errno::EFAULT)?;
    if len > MFD_NAME_MAX_LEN {
        return Err(Errno::EINVAL);
    }
    let mut full = String::new();
    full.try_reserve_exact(MFD_NAME_PREFIX.len() + len).map_err(|_| Errno::ENOMEM)?;
    full.push_str(MFD_NAME_PREFIX);
    full.push_str(&String::from_utf8_lossy(&name[..len]));
    let me = sched::current();
    let nofile = resource::current_nofile();
    me.proc.files.lock().get_unused_fd(0, nofile)?;
    let seals = if flags & MFD_ALLOW_SEALING != 0 { Seals::empty() } else { Seals::SEAL };
    let path = crate::shmem::shmem_file_setup(full, 0, seals)?;
    let file = OpenFile::new(FileKind::Inode(path), O_RDWR | O_LARGEFILE);
    let fd = me.proc.files.lock().install(file, flags & MFD_CLOEXEC != 0, nofile)?;
    Ok(fd as u64)
}

/// `fcntl(2)`'s seal commands on `file` (Linux `memfd_fcntl`):
/// `F_GET_SEALS` gives the seals, `F_ADD_SEALS` adds `arg`'s. EINVAL
/// for a file that is not shmem; `F_ADD_SEALS` needs the file open for
/// writing (EPERM) and known seal bits (EINVAL) first, then what the
/// seals say (EPERM, EBUSY).
pub fn memfd_fcntl(file: &OpenFile, cmd: u32, arg: u32) -> Result<u64, Errno> {
    let shmem = || {
        let path = file.path().ok_or(Errno::EINVAL)?;
        path.inode.ops.shmem().map(|shmem| (shmem, path)).ok_or(Errno::EINVAL)
    };
    match cmd {
        F_GET_SEALS => shmem().map(|(shmem, _)| u64::from(shmem.seals().bits())),
        F_ADD_SEALS => {
            if !file.writable() {
                return Err(Errno::EPERM);
            }
            Seals::from_bits(arg).ok_or(Errno::EINVAL)?;
            let (shmem, path) = shmem()?;
            shmem.add_seals(&path.inode, arg).map(|()| 0)
        }
        _ => Err(Errno::EINVAL),
    }
}
