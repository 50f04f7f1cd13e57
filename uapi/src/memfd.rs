//! `memfd_create` flags: Linux's `include/uapi/linux/memfd.h`.

/// `MFD_CLOEXEC`: the descriptor closes on `execve`.
pub const MFD_CLOEXEC: u32 = 0x0001;
/// `MFD_ALLOW_SEALING`: `F_ADD_SEALS` may seal the file.
pub const MFD_ALLOW_SEALING: u32 = 0x0002;
/// `MFD_HUGETLB`: back the file with huge pages (hugetlbfs).
pub const MFD_HUGETLB: u32 = 0x0004;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;

    /// Every constant against the host's `<linux/memfd.h>` and the headers it includes.
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/memfd.h"];
            MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_HUGETLB,
        );
    }
}
