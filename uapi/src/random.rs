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
    use crate::host_headers::assert_defines_match;

    /// Every constant against the host's `<linux/random.h>` and the headers they include.
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/random.h"];
            GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE,
        );
    }
}
