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
//!
//! What is written to the console under its lock is also kept in
//! [`LOG_BUF`], a ring of the last [`LOG_BUF_LEN`] bytes (Linux's `log_buf`,
//! without its record structure), so a debugger can read the log from
//! memory (`mm-dmesg` in gdb/mm.py). Emergency output (panics, fatal
//! exceptions) goes to the serial port only: it may be written without
//! the lock, and the ring must not be written by two CPUs at once.

use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, Ordering};

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

/// Bytes of console output kept in memory (Linux's default
/// `CONFIG_LOG_BUF_SHIFT` is 17: 128 KiB).
pub const LOG_BUF_LEN: usize = 1 << 17;

/// The console log ring (Linux `log_buf`): byte `i` of the output ever
/// written is at `data[i % LOG_BUF_LEN]` while `i + LOG_BUF_LEN > next`.
#[repr(C)]
pub struct LogBuf {
    /// Bytes written so far.
    next: AtomicU64,
    data: UnsafeCell<[u8; LOG_BUF_LEN]>,
}

// SAFETY: `data` is written only under the console lock (see `Tee`) and
// read under it ([`LogBuf::copy_last`]) or by a debugger with the machine
// stopped.
unsafe impl Sync for LogBuf {}

/// The kernel log, found by name (`LOG_BUF`) by the gdb scripts.
#[unsafe(no_mangle)]
pub static LOG_BUF: LogBuf = LogBuf { next: AtomicU64::new(0), data: UnsafeCell::new([0; LOG_BUF_LEN]) };

impl LogBuf {
    /// Appends `bytes`. Callers hold the console lock.
    fn append(&self, bytes: &[u8]) {
        let mut next = self.next.load(Ordering::Relaxed);
        for &b in bytes {
            // SAFETY: the caller holds the console lock, so no other
            // writer touches `data`; the index is in bounds.
            unsafe { (*self.data.get())[(next % LOG_BUF_LEN as u64) as usize] = b };
            next += 1;
        }
        self.next.store(next, Ordering::Release);
    }

    /// Copies the last bytes still held, at most `out.len()`, into the
    /// start of `out` (Linux `syslog(SYSLOG_ACTION_READ_ALL)`); returns how
    /// many.
    pub fn copy_last(&self, out: &mut [u8]) -> usize {
        let mut n = 0;
        serial::with_console(|_| {
            let next = self.next.load(Ordering::Acquire);
            n = out.len().min(LOG_BUF_LEN).min(usize::try_from(next).unwrap_or(usize::MAX));
            let first = next - n as u64;
            for (i, b) in out[..n].iter_mut().enumerate() {
                // SAFETY: the console lock keeps writers out; the index is
                // in bounds.
                *b = unsafe { (*self.data.get())[((first + i as u64) % LOG_BUF_LEN as u64) as usize] };
            }
        });
        n
    }
}

/// The console writer that also appends to [`LOG_BUF`].
struct Tee<'a>(&'a mut dyn Write);

impl Write for Tee<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        LOG_BUF.append(s.as_bytes());
        self.0.write_str(s)
    }
}

/// Runs `f` on the console, teeing into [`LOG_BUF`].
fn with_console(f: impl FnOnce(&mut dyn Write)) {
    serial::with_console(|w| f(&mut Tee(w)));
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments<'_>) {
    with_console(|w| {
        // A console write cannot fail; fmt errors come only from Display impls.
        let _ = w.write_fmt(args);
    });
}

/// Writes raw bytes (a user program's output) to the console.
pub fn write_raw(bytes: &[u8]) {
    with_console(|w| {
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
        with_console(|w| {
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
