//! The time-stamp counter as the kernel clock (Linux `arch/x86/kernel/tsc.c`).
//!
//! The TSC frequency is measured at boot against PIT channel 2, as Linux's
//! `pit_calibrate_tsc` does: gate the channel on, load a 10 ms count in mode 0
//! and count TSC ticks until the output goes high. The shortest of three runs
//! wins (a run can only be lengthened by interference). Under TCG the guest
//! TSC follows QEMU's virtual clock, so the figure is what guest time sees.

use core::sync::atomic::{AtomicU64, Ordering};

use x86_64::instructions::port::Port;

/// PIT input clock in Hz (Linux `PIT_TICK_RATE`).
const PIT_TICK_RATE: u64 = 1_193_182;
/// Length of one calibration run.
const CALIBRATE_MS: u64 = 10;
/// Calibration runs; the minimum is taken.
const CALIBRATE_RUNS: usize = 3;
/// Bound on the wait loop, so a machine without a PIT cannot hang boot.
const MAX_POLLS: u64 = 50_000_000;
/// Assumed frequency when the PIT does not answer.
const FALLBACK_KHZ: u64 = 1_000_000;

const PIT_CH2: u16 = 0x42;
const PIT_MODE: u16 = 0x43;
const PORT_B: u16 = 0x61;

static TSC_KHZ: AtomicU64 = AtomicU64::new(0);
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);

/// Reads the TSC.
#[inline]
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC is available on every x86_64 CPU and only reads a counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// One PIT-gated measurement: TSC ticks in CALIBRATE_MS, or None on timeout.
fn pit_measure() -> Option<u64> {
    let latch = PIT_TICK_RATE * CALIBRATE_MS / 1000;
    let mut port_b = Port::<u8>::new(PORT_B);
    let mut mode = Port::<u8>::new(PIT_MODE);
    let mut ch2 = Port::<u8>::new(PIT_CH2);
    // SAFETY: ports 0x61/0x42/0x43 are the PC's PIT and speaker control; we
    // turn the speaker off and use channel 2, which nothing else uses.
    unsafe {
        let b = port_b.read();
        port_b.write((b & !0x02) | 0x01);
        mode.write(0xb0); // channel 2, lobyte/hibyte, mode 0, binary
        ch2.write((latch & 0xff) as u8);
        ch2.write((latch >> 8) as u8);
    }
    let start = rdtsc();
    for _ in 0..MAX_POLLS {
        // SAFETY: reading port B has no side effects.
        if unsafe { port_b.read() } & 0x20 != 0 {
            return Some(rdtsc() - start);
        }
    }
    None
}

/// Measures the TSC frequency. Called once, early in boot.
pub fn calibrate() {
    BOOT_TSC.store(rdtsc(), Ordering::Relaxed);
    let best = (0..CALIBRATE_RUNS).filter_map(|_| pit_measure()).min();
    let khz = match best {
        Some(ticks) if ticks > 0 => ticks / CALIBRATE_MS,
        _ => FALLBACK_KHZ,
    };
    TSC_KHZ.store(khz, Ordering::Relaxed);
}

/// Whether calibration fell back to an assumed frequency.
pub fn calibration_failed() -> bool {
    TSC_KHZ.load(Ordering::Relaxed) == FALLBACK_KHZ
}

/// The measured TSC frequency in kHz (0 before calibration).
pub fn khz() -> u64 {
    TSC_KHZ.load(Ordering::Relaxed)
}

/// Converts TSC ticks to nanoseconds.
pub fn ticks_to_ns(ticks: u64) -> u64 {
    match khz() {
        0 => 0,
        khz => (u128::from(ticks) * 1_000_000 / u128::from(khz)) as u64,
    }
}

/// Nanoseconds since calibration (0 before).
pub fn now_ns() -> u64 {
    ticks_to_ns(rdtsc().saturating_sub(BOOT_TSC.load(Ordering::Relaxed)))
}

/// The TSC as the mm clock.
pub struct TscClock;

impl mm::arch::Clock for TscClock {
    fn now_ns(&self) -> u64 {
        now_ns()
    }
}
