//! QEMU's firmware configuration interface (Linux
//! `drivers/firmware/qemu_fw_cfg.c`), used for the kernel command line, the
//! test plan and machine facts such as the CPU count.
//!
//! Only the legacy I/O-port interface: select an item by writing its key to
//! the selector port, then read its bytes one at a time from the data port.
//! File names and the directory are big-endian, numeric items little-endian
//! (QEMU docs/specs/fw_cfg.rst).
//!
//! Lock order: the fw_cfg lock is a leaf (selector and data must not be
//! interleaved by two readers).

use x86_64::instructions::port::Port;

use crate::sync::SpinLock;

const FW_CFG_PORT_SEL: u16 = 0x510;
const FW_CFG_PORT_DATA: u16 = 0x511;

/// Item keys (QEMU include/standard-headers/linux/qemu_fw_cfg.h).
const FW_CFG_SIGNATURE: u16 = 0x0000;
const FW_CFG_NB_CPUS: u16 = 0x0005;
const FW_CFG_FILE_DIR: u16 = 0x0019;

/// Length of a file name in a directory entry, including the NUL.
const FW_CFG_MAX_FILE_PATH: usize = 56;

/// Serialises selector-then-data sequences: a leaf, process context only.
static LOCK: SpinLock<()> = SpinLock::new(());

/// A file in the fw_cfg directory.
#[derive(Clone, Copy, Debug)]
pub struct FwCfgFile {
    /// Size in bytes.
    pub size: u32,
    /// Selector key to read it.
    select: u16,
}

fn select(key: u16) {
    // SAFETY: 0x510 is fw_cfg's selector port on QEMU; on other machines it is
    // unused and the write has no effect.
    unsafe { Port::<u16>::new(FW_CFG_PORT_SEL).write(key) };
}

fn read_bytes(buf: &mut [u8]) {
    let mut data = Port::<u8>::new(FW_CFG_PORT_DATA);
    for b in buf {
        // SAFETY: reading fw_cfg's data port only advances the item offset.
        *b = unsafe { data.read() };
    }
}

/// Whether the machine has fw_cfg (its signature item reads "QEMU").
pub fn present() -> bool {
    let _guard = LOCK.lock();
    select(FW_CFG_SIGNATURE);
    let mut sig = [0u8; 4];
    read_bytes(&mut sig);
    &sig == b"QEMU"
}

/// The number of CPUs QEMU was started with (`-smp`), if fw_cfg is present.
pub fn cpu_count() -> Option<u16> {
    if !present() {
        return None;
    }
    let _guard = LOCK.lock();
    select(FW_CFG_NB_CPUS);
    let mut n = [0u8; 2];
    read_bytes(&mut n);
    Some(u16::from_le_bytes(n))
}

/// Looks `name` up in the file directory.
pub fn find_file(name: &str) -> Option<FwCfgFile> {
    if !present() {
        return None;
    }
    let _guard = LOCK.lock();
    select(FW_CFG_FILE_DIR);
    let mut count = [0u8; 4];
    read_bytes(&mut count);
    for _ in 0..u32::from_be_bytes(count) {
        let mut entry = [0u8; 8 + FW_CFG_MAX_FILE_PATH];
        read_bytes(&mut entry);
        let size = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let select = u16::from_be_bytes([entry[4], entry[5]]);
        let raw = &entry[8..];
        let len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        if &raw[..len] == name.as_bytes() {
            return Some(FwCfgFile { size, select });
        }
    }
    None
}

/// Reads the start of `file` into `buf`; returns the number of bytes read
/// (the smaller of the file size and the buffer length).
pub fn read_file(file: &FwCfgFile, buf: &mut [u8]) -> usize {
    let len = buf.len().min(file.size as usize);
    let _guard = LOCK.lock();
    select(file.select);
    read_bytes(&mut buf[..len]);
    len
}
