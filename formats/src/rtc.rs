//! The MC146818 CMOS real-time clock's registers as a time (Linux
//! `mach_get_cmos_time` in arch/x86/kernel/rtc.c and `mktime64` in
//! kernel/time/time.c). The registers are hardware input: values out of
//! range give an error, never a wrong time or a panic.
//!
//! The chip keeps seconds, minutes, hours, day of month, month and a
//! two-digit year, in BCD unless status register B says binary, hours in
//! 12-hour form with bit 7 for PM unless register B says 24-hour. The
//! century is taken as 20 for years below 70 and 19 otherwise, as Linux
//! does without the ACPI FADT's century register.

/// Status register B: values are binary, not BCD (`RTC_DM_BINARY`).
pub const RTC_DM_BINARY: u8 = 0x04;
/// Status register B: hours run 0-23 (`RTC_24H`).
pub const RTC_24H: u8 = 0x02;

/// The time registers as read (CMOS offsets 0, 2, 4, 7, 8, 9) and
/// status register B (offset 0x0b).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmosTime {
    /// Offset 0.
    pub sec: u8,
    /// Offset 2.
    pub min: u8,
    /// Offset 4; bit 7 is PM in 12-hour mode.
    pub hour: u8,
    /// Offset 7.
    pub mday: u8,
    /// Offset 8.
    pub mon: u8,
    /// Offset 9: the year within its century.
    pub year: u8,
    /// Status register B.
    pub status_b: u8,
}

/// Why the registers were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcError {
    /// A BCD register with a digit above 9.
    BadBcd,
    /// A field outside its range (named).
    OutOfRange(&'static str),
}

impl core::fmt::Display for RtcError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RtcError::BadBcd => write!(f, "a BCD register holds a digit above 9"),
            RtcError::OutOfRange(field) => write!(f, "{field} out of range"),
        }
    }
}

fn bcd(v: u8) -> Result<u8, RtcError> {
    let (hi, lo) = (v >> 4, v & 0x0f);
    if hi > 9 || lo > 9 {
        return Err(RtcError::BadBcd);
    }
    Ok(hi * 10 + lo)
}

/// Seconds since 1970-01-01 00:00:00 UTC of a proleptic Gregorian date
/// (Linux `mktime64`; `mon` 1-12).
pub fn mktime64(year: u32, mon: u32, day: u32, hour: u32, min: u32, sec: u32) -> u64 {
    // Shift the year to start in March, so that February's leap day
    // comes last (Gauss's algorithm, as mktime64 does).
    let (year, mon) =
        if mon <= 2 { (u64::from(year) - 1, u64::from(mon) + 10) } else { (u64::from(year), u64::from(mon) - 2) };
    let days = year / 4 - year / 100 + year / 400 + 367 * mon / 12 + u64::from(day) + year * 365 - 719_499;
    ((days * 24 + u64::from(hour)) * 60 + u64::from(min)) * 60 + u64::from(sec)
}

impl CmosTime {
    /// Seconds since the Unix epoch.
    pub fn to_unix(&self) -> Result<u64, RtcError> {
        let conv = |v: u8| if self.status_b & RTC_DM_BINARY != 0 { Ok(v) } else { bcd(v) };
        let pm = self.status_b & RTC_24H == 0 && self.hour & 0x80 != 0;
        let (sec, min, mday, mon, year) =
            (conv(self.sec)?, conv(self.min)?, conv(self.mday)?, conv(self.mon)?, conv(self.year)?);
        let mut hour = conv(self.hour & 0x7f)?;
        if self.status_b & RTC_24H == 0 {
            if !(1..=12).contains(&hour) {
                return Err(RtcError::OutOfRange("hour"));
            }
            hour = hour % 12 + if pm { 12 } else { 0 };
        }
        let check = |ok: bool, field| if ok { Ok(()) } else { Err(RtcError::OutOfRange(field)) };
        check(sec < 60, "seconds")?;
        check(min < 60, "minutes")?;
        check(hour < 24, "hour")?;
        check((1..=12).contains(&mon), "month")?;
        check(year < 100, "year")?;
        let year = u32::from(year) + if year < 70 { 2000 } else { 1900 };
        let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
        let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        check((1..=days_in_month[usize::from(mon - 1)]).contains(&mday), "day of month")?;
        Ok(mktime64(year, mon.into(), mday.into(), hour.into(), min.into(), sec.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bcd_time(year: u8, mon: u8, mday: u8, hour: u8, min: u8, sec: u8) -> CmosTime {
        CmosTime { sec, min, hour, mday, mon, year, status_b: RTC_24H }
    }

    #[test]
    fn mktime64_matches_known_dates() {
        assert_eq!(mktime64(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(mktime64(2000, 3, 1, 0, 0, 0), 951_868_800);
        assert_eq!(mktime64(2024, 2, 29, 12, 34, 56), 1_709_210_096);
        assert_eq!(mktime64(2026, 12, 5, 7, 0, 0), 1_796_454_000);
    }

    #[test]
    fn bcd_and_binary_24h_and_12h_agree() {
        let want = mktime64(2026, 12, 5, 19, 5, 9);
        assert_eq!(bcd_time(0x26, 0x12, 0x05, 0x19, 0x05, 0x09).to_unix(), Ok(want));
        let binary =
            CmosTime { sec: 9, min: 5, hour: 19, mday: 5, mon: 12, year: 26, status_b: RTC_24H | RTC_DM_BINARY };
        assert_eq!(binary.to_unix(), Ok(want));
        let pm = CmosTime { hour: 0x80 | 0x07, status_b: 0, ..bcd_time(0x26, 0x12, 0x05, 0, 0x05, 0x09) };
        assert_eq!(pm.to_unix(), Ok(want));
        let midnight = CmosTime { hour: 0x12, status_b: 0, ..bcd_time(0x26, 0x12, 0x05, 0, 0, 0) };
        assert_eq!(midnight.to_unix(), Ok(mktime64(2026, 12, 5, 0, 0, 0)));
        assert_eq!(bcd_time(0x99, 0x12, 0x31, 0x23, 0x59, 0x59).to_unix(), Ok(mktime64(1999, 12, 31, 23, 59, 59)));
    }

    #[test]
    fn bad_registers_are_refused() {
        assert_eq!(bcd_time(0x26, 0x1a, 0x05, 0, 0, 0).to_unix(), Err(RtcError::BadBcd));
        assert_eq!(bcd_time(0x26, 0x13, 0x05, 0, 0, 0).to_unix(), Err(RtcError::OutOfRange("month")));
        assert_eq!(bcd_time(0x25, 0x02, 0x29, 0, 0, 0).to_unix(), Err(RtcError::OutOfRange("day of month")));
        assert_eq!(bcd_time(0x24, 0x02, 0x29, 0, 0, 0).to_unix(), Ok(mktime64(2024, 2, 29, 0, 0, 0)));
        assert_eq!(bcd_time(0x26, 0x01, 0x01, 0x24, 0, 0).to_unix(), Err(RtcError::OutOfRange("hour")));
        assert_eq!(bcd_time(0x26, 0x01, 0x01, 0, 0x60, 0).to_unix(), Err(RtcError::OutOfRange("minutes")));
    }

    proptest::proptest! {
        /// Any register contents give a time or an error, never a panic.
        #[test]
        fn any_registers_are_safe(r in proptest::array::uniform7(proptest::num::u8::ANY)) {
            let t = CmosTime { sec: r[0], min: r[1], hour: r[2], mday: r[3], mon: r[4], year: r[5], status_b: r[6] };
            let _ = t.to_unix();
        }
    }
}
