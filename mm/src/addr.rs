//! Physical and virtual addresses and page frame numbers.
//!
//! Mirrors the address vocabulary of Linux's `include/linux/mm.h` and
//! `arch/x86/include/asm/page*.h` (`phys_addr_t`, `unsigned long` virtual
//! addresses, `pfn`, `PAGE_SHIFT`, `PAGE_ALIGN`). Linux uses bare integers;
//! we use newtypes so a pfn can never be passed where an address is expected.

#![forbid(unsafe_code)]

use core::fmt;
use core::ops::{Add, Sub};

/// log2 of the base page size (Linux `PAGE_SHIFT`).
pub const PAGE_SHIFT: u32 = 12;
/// The base page size in bytes (Linux `PAGE_SIZE`).
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// Rounds `value` down to a multiple of `align`, which must be a power of two.
pub const fn align_down(value: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    value & !(align - 1)
}

/// Rounds `value` up to a multiple of `align`, which must be a power of two.
///
/// Returns `None` when the result does not fit in 64 bits.
pub const fn align_up(value: u64, align: u64) -> Option<u64> {
    debug_assert!(align.is_power_of_two());
    match value.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

/// A physical address (Linux `phys_addr_t`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
#[doc(alias = "phys_addr_t")]
pub struct PhysAddr(u64);

/// A virtual address. x86_64 requires canonical form (bits 63..48 copy bit 47).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct VirtAddr(u64);

/// A page frame number: a physical address shifted right by [`PAGE_SHIFT`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
#[doc(alias = "pfn")]
pub struct Pfn(u64);

impl PhysAddr {
    /// Wraps a raw physical address.
    pub const fn new(addr: u64) -> Self {
        Self(addr)
    }

    /// The raw value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The frame containing this address (Linux `PHYS_PFN`).
    pub const fn pfn(self) -> Pfn {
        Pfn(self.0 >> PAGE_SHIFT)
    }

    /// Offset within the page.
    pub const fn page_offset(self) -> u64 {
        self.0 & (PAGE_SIZE - 1)
    }

    /// Whether the address is aligned to `align` (a power of two).
    pub const fn is_aligned(self, align: u64) -> bool {
        self.0 & (align - 1) == 0
    }

    /// Rounds down to `align` (a power of two).
    pub const fn align_down(self, align: u64) -> Self {
        Self(align_down(self.0, align))
    }

    /// Rounds up to `align` (a power of two); `None` on overflow.
    pub const fn align_up(self, align: u64) -> Option<Self> {
        match align_up(self.0, align) {
            Some(v) => Some(Self(v)),
            None => None,
        }
    }
}

impl VirtAddr {
    /// Wraps a raw virtual address, which must be canonical.
    ///
    /// Returns `None` for a non-canonical address, which no x86_64 page table
    /// can map.
    pub const fn new(addr: u64) -> Option<Self> {
        if crate::arch::x86_64::is_canonical(addr) { Some(Self(addr)) } else { None }
    }

    /// Wraps an address the caller knows to be canonical: a constant, or
    /// a value derived from canonical addresses the kernel chose. Never
    /// for a value from user space, which [`crate::uaddr::UserRange`] and
    /// [`VirtAddr::new`] check instead.
    ///
    /// # Panics
    /// At compile time (in const context) or run time if `addr` is not canonical.
    pub const fn expect_canonical(addr: u64) -> Self {
        match Self::new(addr) {
            Some(v) => v,
            None => panic!("non-canonical virtual address"),
        }
    }

    /// The raw value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Wraps a lower-half address below 2^47, which is canonical by
    /// construction: for [`crate::uaddr::UserAddr`], whose invariant keeps
    /// it at most `TASK_SIZE`, on hot paths where a check would only
    /// repeat that invariant.
    pub(crate) const fn from_lower_half(addr: u64) -> Self {
        debug_assert!(addr < crate::arch::x86_64::USER_TOP);
        Self(addr)
    }

    /// The address as a pointer.
    pub const fn as_ptr<T>(self) -> *const T {
        self.0 as *const T
    }

    /// The address as a mutable pointer.
    pub const fn as_mut_ptr<T>(self) -> *mut T {
        self.0 as *mut T
    }

    /// Whether the address is aligned to `align` (a power of two).
    pub const fn is_aligned(self, align: u64) -> bool {
        self.0 & (align - 1) == 0
    }

    /// Rounds down to `align` (a power of two). Rounding down keeps an address
    /// canonical because the sign-extension bits are above any page alignment.
    pub const fn align_down(self, align: u64) -> Self {
        Self(align_down(self.0, align))
    }

    /// Whether this is a user (lower half) address.
    pub const fn is_user(self) -> bool {
        self.0 >> 63 == 0
    }

    /// Adds `offset` bytes; `None` if the result overflows or is not canonical.
    pub const fn checked_add(self, offset: u64) -> Option<Self> {
        match self.0.checked_add(offset) {
            Some(v) => Self::new(v),
            None => None,
        }
    }
}

impl Pfn {
    /// Wraps a raw frame number.
    pub const fn new(pfn: u64) -> Self {
        Self(pfn)
    }

    /// The raw value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The physical address of the first byte of the frame (Linux `PFN_PHYS`).
    pub const fn phys(self) -> PhysAddr {
        PhysAddr(self.0 << PAGE_SHIFT)
    }
}

impl Add<u64> for PhysAddr {
    type Output = PhysAddr;

    /// # Panics
    /// On overflow: a physical address past 2^64 is a logic error.
    fn add(self, rhs: u64) -> PhysAddr {
        match self.0.checked_add(rhs) {
            Some(v) => PhysAddr(v),
            None => panic!("physical address overflow"),
        }
    }
}

impl Sub<PhysAddr> for PhysAddr {
    type Output = u64;

    /// # Panics
    /// If `rhs` is above `self`.
    fn sub(self, rhs: PhysAddr) -> u64 {
        match self.0.checked_sub(rhs.0) {
            Some(v) => v,
            None => panic!("physical address underflow"),
        }
    }
}

impl Add<u64> for Pfn {
    type Output = Pfn;

    fn add(self, rhs: u64) -> Pfn {
        Pfn(self.0 + rhs)
    }
}

impl fmt::Debug for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhysAddr({:#x})", self.0)
    }
}

impl fmt::Debug for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VirtAddr({:#x})", self.0)
    }
}

impl fmt::Debug for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pfn({:#x})", self.0)
    }
}

impl fmt::LowerHex for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl fmt::LowerHex for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pfn_and_phys_round_trip_on_page_boundaries() {
        let addr = PhysAddr::new(0x1234_5000);
        assert_eq!(addr.pfn(), Pfn::new(0x12345));
        assert_eq!(addr.pfn().phys(), addr);
        assert_eq!(PhysAddr::new(0x1234_5fff).pfn(), Pfn::new(0x12345));
        assert_eq!(PhysAddr::new(0x1234_5fff).page_offset(), 0xfff);
    }

    #[test]
    fn virt_addr_rejects_non_canonical_addresses() {
        assert!(VirtAddr::new(0x0000_7fff_ffff_ffff).is_some());
        assert!(VirtAddr::new(0xffff_8000_0000_0000).is_some());
        assert!(VirtAddr::new(0x0000_8000_0000_0000).is_none());
        assert!(VirtAddr::new(0xfff0_0000_0000_0000).is_none());
    }

    #[test]
    fn virt_checked_add_refuses_to_cross_the_canonical_hole() {
        let top_of_user = VirtAddr::expect_canonical(0x0000_7fff_ffff_f000);
        assert_eq!(top_of_user.checked_add(0xfff).map(VirtAddr::as_u64), Some(0x7fff_ffff_ffff));
        assert_eq!(top_of_user.checked_add(0x1000), None);
        assert_eq!(VirtAddr::expect_canonical(u64::MAX).checked_add(1), None);
    }

    #[test]
    fn align_up_reports_overflow_instead_of_wrapping() {
        assert_eq!(align_up(u64::MAX - 10, PAGE_SIZE), None);
        assert_eq!(align_up(0, PAGE_SIZE), Some(0));
        assert_eq!(PhysAddr::new(1).align_up(PAGE_SIZE), Some(PhysAddr::new(PAGE_SIZE)));
    }

    proptest! {
        #[test]
        fn alignment_brackets_the_value(value in any::<u64>(), shift in 0u32..40) {
            let align = 1u64 << shift;
            let down = align_down(value, align);
            prop_assert!(down <= value);
            prop_assert_eq!(down % align, 0);
            prop_assert!(value - down < align);
            if let Some(up) = align_up(value, align) {
                prop_assert!(up >= value);
                prop_assert_eq!(up % align, 0);
                prop_assert!(up - value < align);
            } else {
                prop_assert!(value > u64::MAX - (align - 1));
            }
        }

        #[test]
        fn canonical_addresses_sign_extend_bit_47(low in 0u64..(1 << 47), upper in any::<bool>()) {
            let addr = if upper { low | 0xffff_8000_0000_0000 } else { low };
            let v = VirtAddr::new(addr);
            prop_assert!(v.is_some());
            prop_assert_eq!(v.map(VirtAddr::is_user), Some(!upper));
            // Flipping any bit above 47 without flipping the rest breaks canonicity.
            prop_assert!(VirtAddr::new(addr ^ (1 << 50)).is_none());
        }
    }
}
