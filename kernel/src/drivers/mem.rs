//! The memory character devices of major 1 (Linux `drivers/char/mem.c`):
//! `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random` and
//! `/dev/urandom`, by minor number as Linux's `devlist`.
//!
//! - `null` (1,3): reads see end of file, writes are swallowed whole.
//! - `zero` (1,5): reads give zeros, writes are swallowed; `mmap` gives
//!   anonymous memory: a private mapping is private anonymous memory, a
//!   shared one a new shmem file (Linux `mmap_zero`, `shmem_zero_setup`),
//!   see [`crate::syscall`]'s mmap.
//! - `full` (1,7): reads give zeros, writes fail with ENOSPC.
//! - `random` (1,8) and `urandom` (1,9): reads give the kernel's random
//!   bytes ([`super::random`]), writes are taken.
//!
//! None of them has a file position: reads and writes ignore it, and
//! `lseek` on `null`, `zero` and `full` leaves it at 0 and returns 0
//! (Linux `null_lseek`), on `random` and `urandom` leaves it as it is
//! (`noop_llseek`). Only `zero` can be mapped; the others are ENODEV.
//!
//! Differences from Linux: no `/dev/mem`, `/dev/port` or `/dev/kmsg`
//! (minors 1, 4 and 11 are ENXIO); a read is not cut short by a pending
//! signal (the system call caps one read at `IO_CHUNK` anyway). A
//! private mapping of `/dev/zero` is an anonymous VMA with no file, so
//! `/proc/PID/maps` shows it without a name (Linux's keeps `vm_file` and
//! shows `/dev/zero` and the offset); a shared one maps its shmem file
//! from offset 0 whatever the offset asked (Linux keeps the offset, so
//! its pages past the file's size are SIGBUS).

#![forbid(unsafe_code)]

use uapi::errno::Errno;

/// `MEM_MAJOR`.
pub const MEM_MAJOR: u32 = 1;

/// One memory device (an entry of Linux's `devlist`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemDev {
    /// `/dev/null`.
    Null,
    /// `/dev/zero`.
    Zero,
    /// `/dev/full`.
    Full,
    /// `/dev/random`.
    Random,
    /// `/dev/urandom`.
    Urandom,
}

/// Every memory device: its minor, its name under `/dev` and the mode of
/// its node (Linux `devlist` and `mem_devnode`).
pub const DEVLIST: [(u32, &str, u32, MemDev); 5] = [
    (3, "null", 0o666, MemDev::Null),
    (5, "zero", 0o666, MemDev::Zero),
    (7, "full", 0o666, MemDev::Full),
    (8, "random", 0o666, MemDev::Random),
    (9, "urandom", 0o666, MemDev::Urandom),
];

impl MemDev {
    /// The device of minor `minor` (Linux `memory_open`), ENXIO if none.
    pub fn open(minor: u32) -> Result<MemDev, Errno> {
        DEVLIST.iter().find(|(m, ..)| *m == minor).map(|&(.., dev)| dev).ok_or(Errno::ENXIO)
    }

    /// Reads into `buf` (Linux `read_null`, `read_iter_zero`,
    /// `urandom_read_iter`); the whole buffer but for `null`.
    pub fn read(self, buf: &mut [u8]) -> usize {
        match self {
            MemDev::Null => 0,
            MemDev::Zero | MemDev::Full => {
                buf.fill(0);
                buf.len()
            }
            MemDev::Random | MemDev::Urandom => {
                super::random::get_random_bytes(buf);
                buf.len()
            }
        }
    }

    /// Writes `len` bytes (Linux `write_null`, `write_full`,
    /// `random_write_iter`): taken whole, or ENOSPC for `full`.
    pub fn write(self, len: usize) -> Result<usize, Errno> {
        match self {
            MemDev::Full => Err(Errno::ENOSPC),
            MemDev::Null | MemDev::Zero | MemDev::Random | MemDev::Urandom => Ok(len),
        }
    }

    /// Whether `lseek` resets the position to 0 and returns 0 (Linux
    /// `null_lseek`), rather than leave it alone (`noop_llseek`).
    pub fn lseek_resets(self) -> bool {
        matches!(self, MemDev::Null | MemDev::Zero | MemDev::Full)
    }
}
