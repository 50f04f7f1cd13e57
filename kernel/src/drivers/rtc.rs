//! The CMOS real-time clock, read once at boot for the wall-clock time
//! (Linux arch/x86/kernel/rtc.c `mach_get_cmos_time`, read by
//! `read_persistent_clock64` at timekeeping init). From then on the
//! wall clock is that time plus the TSC clock's progress (Linux
//! `ktime_get_real`); nothing sets it (no `settimeofday`, no NTP).
//!
//! The registers are read while the chip's update-in-progress flag is
//! clear, twice until two reads agree, so that no read straddles the
//! chip's once-a-second update. Registers that make no sense (a broken or
//! absent chip) are refused with a log line and the wall clock starts at
//! the epoch, as Linux's does when the persistent clock is invalid.
//!
//! Lock order: the CMOS index/data port pair is a leaf; interrupts stay
//! off while it is held (an NMI-disable bit shares the index port, and
//! an index write and its data access must pair up).

use core::sync::atomic::{AtomicU64, Ordering};

use formats::rtc::CmosTime;
use x86_64::instructions::port::Port;

use crate::sync::SpinLockIrq;

/// CMOS index and data ports (Linux `RTC_PORT(0)`, `RTC_PORT(1)`).
const CMOS_INDEX: u16 = 0x70;
const CMOS_DATA: u16 = 0x71;
/// Status register A and its update-in-progress bit (`RTC_UIP`).
const RTC_FREQ_SELECT: u8 = 0x0a;
const RTC_UIP: u8 = 0x80;
/// Status register B.
const RTC_CONTROL: u8 = 0x0b;
/// Reads of the update flag before giving up on a stuck chip (an update
/// lasts under 2 ms; each port read takes about a microsecond).
const UIP_POLLS: u32 = 100_000;

static CMOS: SpinLockIrq<()> = SpinLockIrq::new(());

/// Wall-clock ns at TSC time 0 (Linux's `tk_core.timekeeper.offs_real`).
static OFFS_REAL_NS: AtomicU64 = AtomicU64::new(0);

fn cmos_read(index: u8) -> u8 {
    // SAFETY: ports 0x70/0x71 are the PC's CMOS index and data registers;
    // selecting a register (NMI left enabled: bit 7 clear) and reading it
    // has no other effect. The caller holds CMOS, so the pair is not
    // split.
    unsafe {
        Port::<u8>::new(CMOS_INDEX).write(index & 0x7f);
        Port::<u8>::new(CMOS_DATA).read()
    }
}

/// One read of the time registers outside an update, or `None` if the
/// update flag never cleared.
fn read_once() -> Option<CmosTime> {
    let _cmos = CMOS.lock();
    (0..UIP_POLLS).find(|_| cmos_read(RTC_FREQ_SELECT) & RTC_UIP == 0)?;
    Some(CmosTime {
        sec: cmos_read(0x00),
        min: cmos_read(0x02),
        hour: cmos_read(0x04),
        mday: cmos_read(0x07),
        mon: cmos_read(0x08),
        year: cmos_read(0x09),
        status_b: cmos_read(RTC_CONTROL),
    })
}

/// Reads the chip and sets the wall clock (boot, once).
pub fn init() {
    let mut last = None;
    let time = (0..4).find_map(|_| {
        let now = read_once();
        let same = now.is_some() && now == last;
        last = now;
        same.then_some(now).flatten()
    });
    let Some(time) = time else {
        log::warn!("rtc: the CMOS clock did not give a stable reading; wall clock starts at the epoch");
        return;
    };
    match time.to_unix() {
        Ok(secs) => {
            let now = crate::arch::x86_64::tsc::now_ns();
            OFFS_REAL_NS.store((secs * 1_000_000_000).saturating_sub(now), Ordering::Relaxed);
            log::info!("rtc: setting system clock to {secs} (seconds since the epoch, from the CMOS clock)");
        }
        Err(e) => log::warn!("rtc: CMOS clock refused ({e}: {time:?}); wall clock starts at the epoch"),
    }
}

/// The wall clock's lead over the TSC clock, ns (Linux
/// `tk_core.timekeeper.offs_real`): constant, since nothing sets the
/// clock after boot.
pub fn offs_real_ns() -> u64 {
    OFFS_REAL_NS.load(Ordering::Relaxed)
}

/// Nanoseconds since the Unix epoch now (Linux `ktime_get_real_ns`).
pub fn ktime_get_real_ns() -> u64 {
    OFFS_REAL_NS.load(Ordering::Relaxed).saturating_add(crate::arch::x86_64::tsc::now_ns())
}
