//! File systems. For now only the initramfs ([`cpio`]), kept in place in
//! the ramdisk (Linux `init/initramfs.c` populate_rootfs, which unpacks it
//! into rootfs instead).
//!
//! [`init`] runs once at the end of boot: a missing ramdisk leaves the
//! kernel without an initramfs, as Linux boots without one; a corrupt one
//! is refused with the reason and the kernel carries on without it, as
//! Linux logs "Initramfs unpacking failed" for a bad external initrd and
//! continues (it panics only for its built-in archive, which we lack).

pub mod file;
pub mod pipe;
pub mod proc_sysctl;

use log::{info, warn};
use spin::Once;

/// The newc cpio format of the initramfs (the parser is the host-tested
/// `formats` crate's).
pub use formats::cpio;
pub use formats::cpio::{CpioError, Entry, Initramfs};

static INITRAMFS: Once<Initramfs<'static>> = Once::new();

/// Parses the ramdisk the bootloader loaded, if any, as the initramfs.
pub fn init() {
    let Some((addr, len)) = crate::boot::params().ramdisk else {
        info!("initramfs: no ramdisk loaded");
        return;
    };
    let Ok(len) = usize::try_from(len) else {
        warn!("initramfs: ramdisk of {len} bytes does not fit the address space; ignored");
        return;
    };
    // SAFETY: the bootloader mapped the `len` bytes at `addr` for the
    // kernel's lifetime; the kernel's page tables keep them mapped
    // read-only (arch pgtable::init) and mm reserves their frames, so
    // nothing writes to or frees them.
    let ramdisk: &'static [u8] = unsafe { core::slice::from_raw_parts(addr.as_ptr::<u8>(), len) };
    match Initramfs::parse(ramdisk) {
        Ok(initramfs) => {
            let (files, bytes) =
                initramfs.iter().filter(|(_, e)| e.is_file()).fold((0, 0), |(n, b), (_, e)| (n + 1, b + e.size));
            info!("initramfs: {files} files, {bytes} bytes ({} entries)", initramfs.len());
            INITRAMFS.call_once(|| initramfs);
        }
        Err(e) => warn!("initramfs: ramdisk refused: {e}; continuing without it"),
    }
}

/// The initramfs, if [`init`] found a valid one.
pub fn initramfs() -> Option<&'static Initramfs<'static>> {
    INITRAMFS.get()
}
