//! `getrandom` flags: Linux's `include/uapi/linux/random.h`.

/// `GRND_NONBLOCK`: fail with `EAGAIN` rather than block for entropy.
pub const GRND_NONBLOCK: u32 = 0x0001;
/// `GRND_RANDOM`: draw from the (legacy) blocking pool.
pub const GRND_RANDOM: u32 = 0x0002;
/// `GRND_INSECURE`: return bytes even before the pool is initialised.
pub const GRND_INSECURE: u32 = 0x0004;

#[cfg(test)]
mod tests {
    use super::*;

    /// Values printed by a C program built against the host's Linux 6.1
    /// `<linux/random.h>`.
    #[test]
    fn constants_match_linux_headers() {
        assert_eq!(GRND_NONBLOCK, 0x1);
        assert_eq!(GRND_RANDOM, 0x2);
        assert_eq!(GRND_INSECURE, 0x4);
    }
}
