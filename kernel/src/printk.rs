//! Console output: the `log` crate's backend on COM1 (Linux `kernel/printk/`).
//!
//! Every record is one line `[seconds.micros] CPUn LEVEL target: message`,
//! like dmesg with the CPU and level shown. The level filter comes from the
//! `loglevel=` command-line parameter.
//!
//! [`kprint!`]/[`kprintln!`] write raw text without the prefix (test protocol
//! lines, crash dumps). The panic and exception paths use [`emergency`] output,
//! which does not wait forever for the console lock (Linux's `bust_spinlocks`):
//! a crash in the middle of a log line must still be reported.

use core::fmt::{self, Write};

use log::{LevelFilter, Log, Metadata, Record};

use crate::arch::x86_64::tsc;
use crate::drivers::serial;

/// Writes formatted text to the console without a log prefix.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => { $crate::printk::_print(format_args!($($arg)*)) };
}

/// Writes formatted text and a newline to the console without a log prefix.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::kprint!("\n") };
    ($($arg:tt)*) => { $crate::printk::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    serial::with_console(|w| {
        // A console write cannot fail; fmt errors come only from Display impls.
        let _ = w.write_fmt(args);
    });
}

/// Writes raw bytes (a user program's output) to the console.
pub fn write_raw(bytes: &[u8]) {
    serial::with_console(|w| {
        for chunk in bytes.utf8_chunks() {
            let _ = w.write_str(chunk.valid());
            if !chunk.invalid().is_empty() {
                let _ = w.write_str("\u{fffd}");
            }
        }
    });
}

/// Writes to the console even if the console lock is held or poisoned by a
/// crashed holder. For panic and exception reports only.
pub fn emergency(args: fmt::Arguments<'_>) {
    serial::with_console_emergency(|w| {
        let _ = w.write_fmt(args);
    });
}

struct Printk;

static LOGGER: Printk = Printk;

impl Log for Printk {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ns = tsc::now_ns();
        let (secs, micros) = (ns / 1_000_000_000, (ns % 1_000_000_000) / 1000);
        let target = record.target();
        let target = target.strip_prefix("kernel::").unwrap_or(target);
        serial::with_console(|w| {
            let _ = writeln!(
                w,
                "[{secs:5}.{micros:06}] CPU{} {:<5} {target}: {}",
                crate::percpu::smp_processor_id(),
                record.level(),
                record.args()
            );
        });
    }

    fn flush(&self) {}
}

/// Installs the logger at the default level (info). Called once, first thing.
pub fn init() {
    serial::init();
    // `set_logger` fails only if a logger is already installed: then the
    // existing one (ours) stays, which is what a second call wants.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}

/// Applies `loglevel=` from the command line. Returns the unrecognised value,
/// if any, so the caller can warn once logging works.
pub fn apply_cmdline_level(value: Option<&str>) -> Result<LevelFilter, &str> {
    let level = match value {
        None => LevelFilter::Info,
        Some("off") => LevelFilter::Off,
        Some("error") => LevelFilter::Error,
        Some("warn") => LevelFilter::Warn,
        Some("info") => LevelFilter::Info,
        Some("debug") => LevelFilter::Debug,
        Some("trace") => LevelFilter::Trace,
        Some(other) => return Err(other),
    };
    log::set_max_level(level);
    Ok(level)
}

/// Room in a [`TruncatingBuf`]: a panic message as the test runtime sees
/// it, or a test or benchmark name.
const TRUNCATING_BUF_CAPACITY: usize = 512;

/// A fixed buffer that keeps the start of what is written and drops the rest.
pub struct TruncatingBuf {
    buf: [u8; TRUNCATING_BUF_CAPACITY],
    len: usize,
}

impl TruncatingBuf {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self { buf: [0; TRUNCATING_BUF_CAPACITY], len: 0 }
    }

    /// The text kept (cut at a character boundary).
    pub fn as_str(&self) -> &str {
        match core::str::from_utf8(&self.buf[..self.len]) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&self.buf[..e.valid_up_to()]).unwrap_or(""),
        }
    }
}

impl Default for TruncatingBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for TruncatingBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}
