//! The kernel's random bytes (Linux `drivers/char/random.c`'s
//! `get_random_bytes`): what `getrandom(2)`, `/dev/random`,
//! `/dev/urandom` and mkswap's UUIDs draw from.
//!
//! A xorshift64 generator whose state is one atomic word: each draw takes
//! a fresh starting point from the state (advanced by a Weyl constant, so
//! concurrent draws never start alike) mixed with the time-stamp counter,
//! and the bytes come from the generator run from there.
//!
//! Differences from Linux: not cryptographic. Linux's are a ChaCha20
//! generator seeded from an entropy pool (interrupt timings, RDSEED,
//! the boot loader's seed) and reseeded as it goes; ours are
//! unpredictable only as the time-stamp counter is. `/dev/random` never
//! blocks (as Linux's has not since 5.6 once the pool is seeded), and
//! bytes written to either device are taken and dropped (Linux mixes them
//! in without crediting entropy).

#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

/// The generator's state between draws.
static STATE: AtomicU64 = AtomicU64::new(0x853c_49e6_748f_ea9b);

/// The 64-bit golden ratio: a Weyl step that visits every word.
const WEYL: u64 = 0x9e37_79b9_7f4a_7c15;

/// Fills `buf` with random bytes (Linux `get_random_bytes`). Never
/// sleeps; any context.
pub fn get_random_bytes(buf: &mut [u8]) {
    let mut x = (STATE.fetch_add(WEYL, Ordering::Relaxed) ^ crate::arch::x86_64::tsc::rdtsc()) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let word = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_ne_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    STATE.fetch_xor(x, Ordering::Relaxed);
}
