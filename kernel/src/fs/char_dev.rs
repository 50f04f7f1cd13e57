//! Character devices (Linux `fs/char_dev.c`): the table from a device
//! number to the driver that serves it, which opening a character-device
//! inode consults (Linux `chrdev_open` replacing the file's operations
//! with the driver's), and the `dev_t` encoding `stat` and `mknod` use
//! (Linux `include/linux/kdev_t.h`).
//!
//! Drivers by major: 1, the memory devices ([`crate::drivers::mem`]);
//! 5, the console as `/dev/tty` (5,0) and `/dev/console` (5,1). Any
//! other number is ENXIO at open, as for a node whose driver is absent.
//!
//! Differences from Linux: the table is fixed (no `register_chrdev`);
//! `/dev/tty` is the console, every process's controlling terminal here
//! (Linux gives ENXIO to a process without one).

#![forbid(unsafe_code)]

use uapi::errno::Errno;

use crate::drivers::mem::{MEM_MAJOR, MemDev};

/// `TTYAUX_MAJOR`: `/dev/tty` and `/dev/console`.
pub const TTYAUX_MAJOR: u32 = 5;

/// A device number as `stat`'s `st_rdev` and `mknod`'s `dev` carry it
/// (Linux `new_encode_dev`: minor bits 0-7 and 20-31, major bits 8-19).
pub const fn mkdev(major: u32, minor: u32) -> u64 {
    ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)) as u64
}

/// The major of an encoded device number (Linux `MAJOR(new_decode_dev)`).
pub const fn major(dev: u64) -> u32 {
    ((dev >> 8) & 0xfff) as u32
}

/// The minor of an encoded device number (Linux `MINOR(new_decode_dev)`).
pub const fn minor(dev: u64) -> u32 {
    ((dev & 0xff) | ((dev >> 12) & 0xfff00)) as u32
}

/// What opening a character device gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CharDev {
    /// The serial console (`/dev/console`, `/dev/tty`).
    Console,
    /// A memory device.
    Mem(MemDev),
}

/// The driver of device `rdev` (Linux `chrdev_open`'s `kobj_lookup`):
/// ENXIO if no driver serves it.
pub fn chrdev_open(rdev: u64) -> Result<CharDev, Errno> {
    match (major(rdev), minor(rdev)) {
        (MEM_MAJOR, minor) => MemDev::open(minor).map(CharDev::Mem),
        (TTYAUX_MAJOR, 0 | 1) => Ok(CharDev::Console),
        _ => Err(Errno::ENXIO),
    }
}
