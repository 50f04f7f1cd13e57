//! `swapon(2)`'s flags (Linux `include/linux/swap.h`, which user space
//! gets from libc's `<sys/swap.h>`; Linux has no uapi header for them).

/// A priority is given in the low bits (`SWAP_FLAG_PREFER`).
pub const SWAP_FLAG_PREFER: u32 = 0x8000;
/// The priority's bits (`SWAP_FLAG_PRIO_MASK`): 0..=32767.
pub const SWAP_FLAG_PRIO_MASK: u32 = 0x7fff;
/// Where the priority starts (`SWAP_FLAG_PRIO_SHIFT`).
pub const SWAP_FLAG_PRIO_SHIFT: u32 = 0;
/// Discard freed clusters (`SWAP_FLAG_DISCARD`).
pub const SWAP_FLAG_DISCARD: u32 = 0x10000;
/// Discard the whole area once at swapon (`SWAP_FLAG_DISCARD_ONCE`).
pub const SWAP_FLAG_DISCARD_ONCE: u32 = 0x20000;
/// Discard freed pages (`SWAP_FLAG_DISCARD_PAGES`).
pub const SWAP_FLAG_DISCARD_PAGES: u32 = 0x40000;
/// Every flag `swapon` accepts; others are EINVAL (`SWAP_FLAGS_VALID`).
pub const SWAP_FLAGS_VALID: u32 =
    SWAP_FLAG_PRIO_MASK | SWAP_FLAG_PREFER | SWAP_FLAG_DISCARD | SWAP_FLAG_DISCARD_ONCE | SWAP_FLAG_DISCARD_PAGES;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;

    /// The flags libc shares with the kernel, as the host's
    /// `<sys/swap.h>` defines them (the discard variants are the kernel's
    /// alone: Linux 3.11's `SWAP_FLAG_DISCARD_ONCE`/`_PAGES`).
    #[test]
    fn constants_match_libc_headers() {
        assert_defines_match!(&["sys/swap.h"]; SWAP_FLAG_PREFER, SWAP_FLAG_PRIO_MASK, SWAP_FLAG_PRIO_SHIFT, SWAP_FLAG_DISCARD);
        assert_eq!(SWAP_FLAGS_VALID, 0x7ffff);
    }
}
