//! The legacy 8259A PICs (Linux `arch/x86/kernel/i8259.c`).
//!
//! Firmware leaves the PICs delivering IRQ 0-7 on vectors 8-15, on top of the
//! CPU exceptions. We remap them to vectors 32-47 and mask every line, like
//! Linux's `mask_8259A` before the APIC takes over; a spurious IRQ 7/15 (which
//! masking cannot stop) then lands on an unused vector instead of posing as
//! a double fault.

use x86_64::instructions::port::Port;

const PIC1_CMD: u16 = 0x20;
const PIC1_DATA: u16 = 0x21;
const PIC2_CMD: u16 = 0xa0;
const PIC2_DATA: u16 = 0xa1;
/// ICW1: initialise, ICW4 follows.
const ICW1_INIT_ICW4: u8 = 0x11;
/// ICW4: 8086 mode.
const ICW4_8086: u8 = 0x01;
/// First vector of the remapped master and slave.
const PIC1_VECTOR: u8 = 0x20;
const PIC2_VECTOR: u8 = 0x28;

/// Remaps both PICs above the exceptions and masks all their lines.
pub fn mask_all() {
    // Port 0x80 (POST code) writes give the PIC time between commands.
    let mut wait = Port::<u8>::new(0x80);
    // SAFETY: these are the PC's 8259A ports; the ICW sequence is the
    // documented initialisation and leaves every line masked.
    unsafe {
        for (port, value) in [
            (PIC1_CMD, ICW1_INIT_ICW4),
            (PIC2_CMD, ICW1_INIT_ICW4),
            (PIC1_DATA, PIC1_VECTOR),
            (PIC2_DATA, PIC2_VECTOR),
            (PIC1_DATA, 4), // master: slave on IRQ 2
            (PIC2_DATA, 2), // slave: cascade identity
            (PIC1_DATA, ICW4_8086),
            (PIC2_DATA, ICW4_8086),
            (PIC1_DATA, 0xff),
            (PIC2_DATA, 0xff),
        ] {
            Port::<u8>::new(port).write(value);
            wait.write(0);
        }
    }
}
