//! `futex(2)` operations and flags: Linux's `include/uapi/linux/futex.h`.

/// `FUTEX_WAIT`: sleep while the word holds the expected value (relative
/// timeout).
pub const FUTEX_WAIT: u32 = 0;
/// `FUTEX_WAKE`: wake up to `val` waiters.
pub const FUTEX_WAKE: u32 = 1;
/// `FUTEX_FD`: removed in Linux 2.6.26.
pub const FUTEX_FD: u32 = 2;
/// `FUTEX_REQUEUE`: wake some waiters, move others to a second word.
pub const FUTEX_REQUEUE: u32 = 3;
/// `FUTEX_CMP_REQUEUE`: [`FUTEX_REQUEUE`] if the word still holds `val3`.
pub const FUTEX_CMP_REQUEUE: u32 = 4;
/// `FUTEX_WAKE_OP`: change a second word and wake on both.
pub const FUTEX_WAKE_OP: u32 = 5;
/// `FUTEX_LOCK_PI`: take a priority-inheritance lock.
pub const FUTEX_LOCK_PI: u32 = 6;
/// `FUTEX_UNLOCK_PI`.
pub const FUTEX_UNLOCK_PI: u32 = 7;
/// `FUTEX_TRYLOCK_PI`.
pub const FUTEX_TRYLOCK_PI: u32 = 8;
/// `FUTEX_WAIT_BITSET`: [`FUTEX_WAIT`] with a wake-up mask and an absolute
/// timeout.
pub const FUTEX_WAIT_BITSET: u32 = 9;
/// `FUTEX_WAKE_BITSET`: [`FUTEX_WAKE`] of the waiters whose mask meets
/// `val3`.
pub const FUTEX_WAKE_BITSET: u32 = 10;
/// `FUTEX_WAIT_REQUEUE_PI`.
pub const FUTEX_WAIT_REQUEUE_PI: u32 = 11;
/// `FUTEX_CMP_REQUEUE_PI`.
pub const FUTEX_CMP_REQUEUE_PI: u32 = 12;
/// `FUTEX_LOCK_PI2`: [`FUTEX_LOCK_PI`] on a clock of the caller's choice.
pub const FUTEX_LOCK_PI2: u32 = 13;

/// `FUTEX_PRIVATE_FLAG`: the word is not shared with another address
/// space, so the key is the address alone.
pub const FUTEX_PRIVATE_FLAG: u32 = 128;
/// `FUTEX_CLOCK_REALTIME`: an absolute timeout on `CLOCK_REALTIME`
/// instead of `CLOCK_MONOTONIC`.
pub const FUTEX_CLOCK_REALTIME: u32 = 256;
/// `FUTEX_CMD_MASK`: the operation without its flags.
pub const FUTEX_CMD_MASK: u32 = !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);

/// `FUTEX_BITSET_MATCH_ANY`: the mask of [`FUTEX_WAIT`] and
/// [`FUTEX_WAKE`].
pub const FUTEX_BITSET_MATCH_ANY: u32 = 0xffff_ffff;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;

    /// Every constant against the host's `<linux/futex.h>`.
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/futex.h"];
            FUTEX_WAIT, FUTEX_WAKE, FUTEX_FD, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP,
            FUTEX_LOCK_PI, FUTEX_UNLOCK_PI, FUTEX_TRYLOCK_PI, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET,
            FUTEX_WAIT_REQUEUE_PI, FUTEX_CMP_REQUEUE_PI, FUTEX_LOCK_PI2, FUTEX_PRIVATE_FLAG,
            FUTEX_CLOCK_REALTIME, FUTEX_BITSET_MATCH_ANY,
        );
    }
}
