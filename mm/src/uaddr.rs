//! User addresses as the system calls receive them, checked once at the
//! boundary into types that cannot hold an invalid value.
//!
//! Linux open-codes these checks in each system call (`offset_in_page`,
//! `PAGE_ALIGN` and its wrap to 0, `start + len < start`, `access_ok`,
//! `TASK_SIZE`), each in its own order and with its own errno. Here a
//! system call turns its raw `u64` arguments into a [`UserRange`] (or a
//! [`UserAddr`]) with one constructor, maps the [`RangeError`] to the errno
//! Linux returns at that point, and the mm below it takes only those types:
//! every address in a `UserRange` is canonical, page-aligned and at most
//! [`TASK_SIZE`], so converting it to a [`VirtAddr`] cannot fail and
//! arithmetic inside it cannot overflow.

#![forbid(unsafe_code)]

use core::fmt;

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, VirtAddr, align_up};

pub use crate::arch::x86_64::TASK_SIZE;

/// Why raw arguments are not a user range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeError {
    /// The start is not page-aligned (Linux `offset_in_page(start)`).
    Unaligned,
    /// The length rounds up past 2^64 (Linux's `PAGE_ALIGN(len)` wraps to
    /// 0 from a non-zero length).
    LenWraps,
    /// `start + len` wraps past 2^64 (Linux `end < start`).
    EndWraps,
    /// The range does not end at or below [`TASK_SIZE`]; it may be
    /// non-canonical.
    BeyondTaskSize,
}

/// A page-aligned user address at most [`TASK_SIZE`] (so canonical).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UserAddr(u64);

impl UserAddr {
    /// Address 0.
    pub const ZERO: UserAddr = UserAddr(0);
    /// The end of user space.
    pub const TASK_SIZE: UserAddr = UserAddr(TASK_SIZE);

    /// `addr` if it is page-aligned and at most [`TASK_SIZE`].
    pub const fn new(addr: u64) -> Result<Self, RangeError> {
        if addr & (PAGE_SIZE - 1) != 0 {
            Err(RangeError::Unaligned)
        } else if addr > TASK_SIZE {
            Err(RangeError::BeyondTaskSize)
        } else {
            Ok(UserAddr(addr))
        }
    }

    /// The user page containing `addr`, if `addr` is below [`TASK_SIZE`].
    pub const fn page_down(addr: u64) -> Option<Self> {
        if addr < TASK_SIZE { Some(UserAddr(addr & !(PAGE_SIZE - 1))) } else { None }
    }

    /// A VMA boundary: VMAs lie in user space, so this cannot fail for
    /// one; `None` for an address that is not page-aligned user space.
    pub fn of(addr: VirtAddr) -> Option<Self> {
        Self::new(addr.as_u64()).ok()
    }

    /// The raw value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// As a virtual address: canonical, as the value is at most
    /// `TASK_SIZE` < 2^47.
    pub const fn virt(self) -> VirtAddr {
        VirtAddr::from_lower_half(self.0)
    }

    /// `self + bytes` if `bytes` is page-aligned and the result is at
    /// most [`TASK_SIZE`].
    pub const fn checked_add(self, bytes: u64) -> Option<Self> {
        match self.0.checked_add(bytes) {
            Some(v) if v <= TASK_SIZE && v & (PAGE_SIZE - 1) == 0 => Some(UserAddr(v)),
            _ => None,
        }
    }

    /// The page number (Linux `addr >> PAGE_SHIFT`).
    pub const fn pfn_index(self) -> u64 {
        self.0 >> PAGE_SHIFT
    }
}

impl fmt::Debug for UserAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserAddr({:#x})", self.0)
    }
}

/// `[start, end)` of user space: page-aligned, `start <= end <= TASK_SIZE`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserRange {
    start: UserAddr,
    end: UserAddr,
}

impl UserRange {
    /// The empty range at 0.
    pub const EMPTY: UserRange = UserRange { start: UserAddr::ZERO, end: UserAddr::ZERO };
    /// All of user space.
    pub const ALL: UserRange = UserRange { start: UserAddr::ZERO, end: UserAddr::TASK_SIZE };

    /// `[start, end)`, if `start <= end`.
    pub const fn new(start: UserAddr, end: UserAddr) -> Option<Self> {
        if start.0 <= end.0 { Some(UserRange { start, end }) } else { None }
    }

    /// `[start, start + PAGE_ALIGN(len))` from system-call arguments,
    /// checked in Linux's usual order: alignment of `start`, the length's
    /// rounding, the end's wrap, then user space.
    pub const fn from_user(start: u64, len: u64) -> Result<Self, RangeError> {
        if start & (PAGE_SIZE - 1) != 0 {
            return Err(RangeError::Unaligned);
        }
        let len = match page_align(len) {
            Some(l) => l,
            None => return Err(RangeError::LenWraps),
        };
        let end = match start.checked_add(len) {
            Some(e) => e,
            None => return Err(RangeError::EndWraps),
        };
        if end > TASK_SIZE {
            return Err(RangeError::BeyondTaskSize);
        }
        Ok(UserRange { start: UserAddr(start), end: UserAddr(end) })
    }

    /// [`Self::from_user`], except that a range running past
    /// [`TASK_SIZE`] is cut there, and `true` returned with it: Linux's
    /// VMA walks (mprotect, madvise, mlock) change the VMAs of such
    /// a range and fail only when they run out of VMAs. A range starting
    /// at or past `TASK_SIZE` is still [`RangeError::BeyondTaskSize`]
    /// unless it is empty.
    pub const fn from_user_cut(start: u64, len: u64) -> Result<(Self, bool), RangeError> {
        match Self::from_user(start, len) {
            Ok(r) => Ok((r, false)),
            Err(RangeError::BeyondTaskSize) if start < TASK_SIZE => {
                Ok((UserRange { start: UserAddr(start), end: UserAddr::TASK_SIZE }, true))
            }
            Err(e) => Err(e),
        }
    }

    /// `[start, start + len)` for a page-aligned `len`, if it stays in
    /// user space.
    pub const fn at(start: UserAddr, len: u64) -> Option<Self> {
        match start.checked_add(len) {
            Some(end) => Some(UserRange { start, end }),
            None => None,
        }
    }

    /// The VMA-shaped range `[start, end)` of two VMA boundaries.
    pub fn of(start: VirtAddr, end: VirtAddr) -> Option<Self> {
        Self::new(UserAddr::of(start)?, UserAddr::of(end)?)
    }

    /// The first address.
    pub const fn start(self) -> UserAddr {
        self.start
    }

    /// The address after the last.
    pub const fn end(self) -> UserAddr {
        self.end
    }

    /// Length in bytes (a multiple of the page size).
    pub const fn len(self) -> u64 {
        self.end.0 - self.start.0
    }

    /// Length in pages.
    pub const fn pages(self) -> u64 {
        self.len() >> PAGE_SHIFT
    }

    /// Whether the range holds no page.
    pub const fn is_empty(self) -> bool {
        self.start.0 == self.end.0
    }

    /// The part of this range inside `[start, end)`; empty (at the
    /// clipped start) if they do not meet.
    pub fn clip(self, start: UserAddr, end: UserAddr) -> UserRange {
        let s = self.start.max(start).min(self.end);
        let e = self.end.min(end).max(s);
        UserRange { start: s, end: e }
    }

    /// The part of this range inside the VMA-shaped `[start, end)`.
    pub fn clip_virt(self, start: VirtAddr, end: VirtAddr) -> UserRange {
        match (UserAddr::of(start), UserAddr::of(end)) {
            (Some(s), Some(e)) => self.clip(s, e),
            _ => UserRange { start: self.end, end: self.end },
        }
    }

    /// The range from `at` (clamped into this range) to the end.
    pub fn from(self, at: UserAddr) -> UserRange {
        self.clip(at, self.end)
    }

    /// Each page's address, in order.
    pub fn addrs(self) -> impl Iterator<Item = UserAddr> {
        (self.start.0..self.end.0).step_by(PAGE_SIZE as usize).map(UserAddr)
    }

    /// The range moved to start at `to`, if it stays in user space.
    pub const fn moved_to(self, to: UserAddr) -> Option<UserRange> {
        UserRange::at(to, self.len())
    }
}

impl fmt::Debug for UserRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserRange({:#x}..{:#x})", self.start.0, self.end.0)
    }
}

/// Rounds `len` up to pages, `None` when that passes 2^64 (Linux
/// `PAGE_ALIGN`, which would wrap to 0).
pub const fn page_align(len: u64) -> Option<u64> {
    align_up(len, PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const P: u64 = PAGE_SIZE;

    #[test]
    fn from_user_checks_in_linux_order() {
        assert_eq!(UserRange::from_user(1, u64::MAX), Err(RangeError::Unaligned));
        assert_eq!(UserRange::from_user(P, u64::MAX), Err(RangeError::LenWraps));
        assert_eq!(UserRange::from_user(u64::MAX - P + 1, P), Err(RangeError::EndWraps));
        assert_eq!(UserRange::from_user(1 << 47, P), Err(RangeError::BeyondTaskSize));
        assert_eq!(UserRange::from_user(TASK_SIZE - P, P + 1), Err(RangeError::BeyondTaskSize));
        let r = UserRange::from_user(TASK_SIZE - P, 1).unwrap();
        assert_eq!((r.start().as_u64(), r.end().as_u64(), r.pages()), (TASK_SIZE - P, TASK_SIZE, 1));
        assert!(UserRange::from_user(P, 0).unwrap().is_empty());
    }

    #[test]
    fn clip_stays_inside_both_ranges() {
        let r = UserRange::from_user(4 * P, 4 * P).unwrap();
        let a = |v| UserAddr::new(v).unwrap();
        assert_eq!(r.clip(a(6 * P), a(20 * P)), UserRange::from_user(6 * P, 2 * P).unwrap());
        assert!(r.clip(a(10 * P), a(20 * P)).is_empty());
        assert!(r.clip(a(0), a(2 * P)).is_empty());
    }

    proptest! {
        #[test]
        fn a_user_range_is_aligned_canonical_and_in_user_space(start in any::<u64>(), len in any::<u64>()) {
            if let Ok(r) = UserRange::from_user(start, len) {
                prop_assert_eq!(r.start().as_u64(), start);
                prop_assert!(r.end().as_u64() <= TASK_SIZE);
                prop_assert!(r.len() >= len && r.len() - len < P);
                prop_assert_eq!(r.end().virt().as_u64(), r.end().as_u64());
                prop_assert!(r.addrs().all(|a| a.virt().is_user()));
            } else {
                let fits = start % P == 0 && page_align(len).and_then(|l| start.checked_add(l)).is_some_and(|e| e <= TASK_SIZE);
                prop_assert!(!fits);
            }
        }
    }
}
