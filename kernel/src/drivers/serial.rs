//! The COM1 serial console (Linux `drivers/tty/serial/8250`), through the
//! `uart_16550` crate.
//!
//! Lock order: the console lock is a leaf; it is taken with interrupts
//! disabled so an interrupt handler that logs cannot deadlock against the
//! code it interrupted.

use core::fmt;

use crate::sync::SpinLockIrq;
use uart_16550::SerialPort;
use x86_64::instructions::interrupts;

/// I/O base of COM1 (the first PC serial port).
const COM1: u16 = 0x3f8;

/// How many times the emergency path retries the console lock before it
/// writes to the port without it.
const EMERGENCY_LOCK_TRIES: u32 = 100_000;

// SAFETY: COM1 at 0x3f8 is the standard PC serial port; this is its only
// owner, all accesses go through the mutex (or the emergency path below).
static CONSOLE: SpinLockIrq<SerialPort> = SpinLockIrq::new(unsafe { SerialPort::new(COM1) });

/// Initialises the UART (8N1, FIFOs on; uart_16550 picks 38400 baud, which
/// QEMU ignores).
pub fn init() {
    CONSOLE.lock().init();
}

/// A writer that turns `\n` into `\r\n` for terminals and sends every
/// other byte as it is (`SerialPort::send` would expand a backspace into
/// backspace-space-backspace, doubling the line editor's own erase).
struct Crlf<'a>(&'a mut SerialPort);

impl fmt::Write for Crlf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.0.send_raw(b'\r');
            }
            self.0.send_raw(b);
        }
        Ok(())
    }
}

/// A byte the terminal sent, if one is waiting in the UART (polled: there
/// is no I/O APIC driver yet to deliver COM1's interrupt).
pub fn try_read_byte() -> Option<u8> {
    CONSOLE.lock().try_receive().ok()
}

/// Runs `f` with the console locked and interrupts disabled.
pub fn with_console(f: impl FnOnce(&mut dyn fmt::Write)) {
    let mut port = CONSOLE.lock();
    f(&mut Crlf(&mut port));
}

/// Like [`with_console`], but after a bounded wait writes without the lock.
/// Used when the lock holder may be the code that just crashed.
pub fn with_console_emergency(f: impl FnOnce(&mut dyn fmt::Write)) {
    interrupts::without_interrupts(|| {
        for _ in 0..EMERGENCY_LOCK_TRIES {
            if let Some(mut port) = CONSOLE.try_lock() {
                f(&mut Crlf(&mut port));
                return;
            }
            core::hint::spin_loop();
        }
        // SAFETY: the port is the standard COM1; interleaving with the stuck
        // lock holder can garble characters but cannot violate memory safety.
        let mut port = unsafe { SerialPort::new(COM1) };
        f(&mut Crlf(&mut port));
    });
}
