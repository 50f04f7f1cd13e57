//! Leaving QEMU with a status through the isa-debug-exit device
//! (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`).
//!
//! Writing `v` to the port makes QEMU exit with status `(v << 1) | 1`, so every
//! status we produce is odd; a plain exit 0 from QEMU means the guest shut down
//! or reset some other way (with `-no-reboot`, a triple fault), which xtask
//! reports as a crash.

use x86_64::instructions::port::Port;

/// The isa-debug-exit I/O port.
const ISA_DEBUG_EXIT_PORT: u16 = 0xf4;

/// Exit statuses shared with xtask (`xtask/src/qemu.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum QemuExitCode {
    /// Everything asked of this boot ran (QEMU exits with 33).
    Success = 0x10,
    /// The kernel panicked or failed (QEMU exits with 35).
    Failed = 0x11,
}

/// Exits QEMU. On a machine without isa-debug-exit the write goes nowhere and
/// the CPU halts for good instead.
pub fn exit_qemu(code: QemuExitCode) -> ! {
    let mut port = Port::<u32>::new(ISA_DEBUG_EXIT_PORT);
    // SAFETY: port 0xf4 is unused on PCs other than QEMU's debug-exit device;
    // writing to an unused port has no effect.
    unsafe { port.write(code as u32) };
    crate::arch::x86_64::cpu::halt_forever()
}
