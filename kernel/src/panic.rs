//! The panic handler (Linux `kernel/panic.c`).
//!
//! Prints the message, its location and a frame-pointer backtrace (xtask
//! symbolizes the addresses), tells the test runtime (which reports the test
//! and exits QEMU), and otherwise halts the CPU as Linux does with `panic=0`.
//! A panic inside the panic handler is reported in one line and halts at
//! once, so a broken printer cannot loop.

#![forbid(unsafe_code)]

use core::fmt::Write;
use core::panic::PanicInfo;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch::x86_64::{cpu, stacktrace};
use crate::ktest;
use crate::printk::{TruncatingBuf, emergency};

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    x86_64::instructions::interrupts::disable();
    if PANICKING.swap(true, Ordering::SeqCst) {
        emergency(format_args!("\nKERNEL PANIC while panicking: {}\n", info.message()));
        cpu::halt_forever();
    }
    let mut message = TruncatingBuf::new();
    let _ = write!(message, "{}", info.message());
    emergency(format_args!("\nKERNEL PANIC on CPU{}: {}\n", crate::percpu::smp_processor_id(), info.message()));
    if let Some(location) = info.location() {
        emergency(format_args!("  at {}:{}:{}\n", location.file(), location.line(), location.column()));
    }
    stacktrace::print_backtrace(cpu::read_rbp());
    ktest::on_panic(message.as_str());
    emergency(format_args!("CPU halted.\n"));
    cpu::halt_forever()
}
