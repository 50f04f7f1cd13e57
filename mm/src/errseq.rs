//! Error sequence counters (Linux `lib/errseq.c`): how a failed writeback
//! reaches every `fsync` that should report it, and only once each.
//!
//! An [`ErrSeq`] is one 32-bit word: the last error (bits 0-11, the errno
//! number), a "seen" flag (bit 12) and a counter (bits 13-31). Setting an
//! error bumps the counter only if the previous error was seen, so a burst
//! of failures nobody looked at costs one increment. A reader samples the
//! word when it starts (an open file keeps its sample, Linux's
//! `file->f_wb_err`) and later asks whether anything was set since
//! ([`ErrSeq::check`]), or asks and moves its sample forward
//! ([`ErrSeq::check_and_advance`], what `fsync` does), which also marks
//! the error seen.
//!
//! Semantics as Linux's: a sample taken while an unseen error is pending
//! is 0, so the first checker after it still reports that error (an
//! `open` after a failure nobody has reported does not hide it); errors
//! that are not errno numbers (0, or above 4095) are ignored.

#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU32, Ordering};

use uapi::errno::Errno;

/// Largest errno number the word holds (Linux `MAX_ERRNO`).
const MAX_ERRNO: u32 = 4095;
/// The error part of the word.
const ERRNO_MASK: u32 = MAX_ERRNO;
/// Someone has reported the current error (Linux `ERRSEQ_SEEN`).
const ERRSEQ_SEEN: u32 = 1 << 12;
/// One step of the counter (Linux `ERRSEQ_CTR_INC`).
const ERRSEQ_CTR_INC: u32 = 1 << 13;

/// A sample of an [`ErrSeq`], kept by a reader (Linux `errseq_t` copies
/// such as `file->f_wb_err`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrSeqSample(u32);

/// An error sequence counter (Linux `errseq_t`, e.g. `mapping->wb_err`).
#[derive(Debug, Default)]
pub struct ErrSeq(AtomicU32);

impl ErrSeq {
    /// No error ever.
    pub const fn new() -> ErrSeq {
        ErrSeq(AtomicU32::new(0))
    }

    /// Records `err` (Linux `errseq_set`); returns the new word.
    pub fn set(&self, err: Errno) -> ErrSeqSample {
        let num = err.as_i32() as u32;
        let mut old = self.0.load(Ordering::Relaxed);
        if num == 0 || num > MAX_ERRNO {
            return ErrSeqSample(old);
        }
        loop {
            let mut new = (old & !(ERRNO_MASK | ERRSEQ_SEEN)) | num;
            if old & ERRSEQ_SEEN != 0 {
                new = new.wrapping_add(ERRSEQ_CTR_INC);
            }
            if new == old {
                return ErrSeqSample(new);
            }
            match self.0.compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return ErrSeqSample(new),
                Err(now) => old = now,
            }
        }
    }

    /// A starting point for a new reader (Linux `errseq_sample`): the
    /// current word if its error was seen, else 0, so that an error no
    /// one has reported yet is reported to this reader too.
    pub fn sample(&self) -> ErrSeqSample {
        let old = self.0.load(Ordering::Acquire);
        ErrSeqSample(if old & ERRSEQ_SEEN == 0 { 0 } else { old })
    }

    /// The error set since `since`, if any (Linux `errseq_check`).
    pub fn check(&self, since: ErrSeqSample) -> Option<Errno> {
        let cur = self.0.load(Ordering::Acquire);
        if cur == since.0 { None } else { Errno::from_i32((cur & ERRNO_MASK) as i32) }
    }

    /// The error set since `*since`, if any, marking it seen and moving
    /// `*since` past it (Linux `errseq_check_and_advance`), so each
    /// reader reports each error once.
    pub fn check_and_advance(&self, since: &mut ErrSeqSample) -> Option<Errno> {
        let old = self.0.load(Ordering::Acquire);
        if old == since.0 {
            return None;
        }
        let new = old | ERRSEQ_SEEN;
        if new != old {
            // A concurrent set wins: its new error is reported next time
            // (Linux ignores the cmpxchg failure the same way).
            let _ = self.0.compare_exchange(old, new, Ordering::AcqRel, Ordering::Relaxed);
        }
        since.0 = new;
        Errno::from_i32((new & ERRNO_MASK) as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_report_before_an_error() {
        let e = ErrSeq::new();
        let mut s = e.sample();
        assert_eq!(e.check(s), None);
        assert_eq!(e.check_and_advance(&mut s), None);
    }

    #[test]
    fn each_reader_reports_an_error_once() {
        let e = ErrSeq::new();
        let (mut a, mut b) = (e.sample(), e.sample());
        e.set(Errno::EIO);
        assert_eq!(e.check(a), Some(Errno::EIO), "check does not advance");
        assert_eq!(e.check_and_advance(&mut a), Some(Errno::EIO));
        assert_eq!(e.check_and_advance(&mut a), None, "reported once to a");
        assert_eq!(e.check_and_advance(&mut b), Some(Errno::EIO), "and once to b");
        assert_eq!(e.check_and_advance(&mut b), None);
    }

    #[test]
    fn a_reader_opened_after_an_unseen_error_still_reports_it() {
        let e = ErrSeq::new();
        e.set(Errno::EIO);
        let mut late = e.sample();
        assert_eq!(e.check_and_advance(&mut late), Some(Errno::EIO));
        // Once seen, a newer reader starts after it.
        let mut later = e.sample();
        assert_eq!(e.check_and_advance(&mut later), None);
    }

    #[test]
    fn a_new_error_after_a_seen_one_is_reported_again_and_the_latest_wins() {
        let e = ErrSeq::new();
        let mut s = e.sample();
        e.set(Errno::EIO);
        assert_eq!(e.check_and_advance(&mut s), Some(Errno::EIO));
        e.set(Errno::EIO);
        e.set(Errno::ENOSPC);
        assert_eq!(e.check_and_advance(&mut s), Some(Errno::ENOSPC));
        assert_eq!(e.check_and_advance(&mut s), None);
    }

    #[test]
    fn unseen_errors_do_not_advance_the_counter() {
        let e = ErrSeq::new();
        let first = e.set(Errno::EIO);
        assert_eq!(e.set(Errno::EIO), first, "the same unseen error leaves the word as it is");
        let mut s = ErrSeqSample::default();
        e.check_and_advance(&mut s);
        let after_seen = e.set(Errno::EIO);
        assert_eq!(after_seen.0 >> 13, (first.0 >> 13) + 1, "a seen error makes the next one count");
    }
}
