//! System identification: `struct new_utsname` from Linux's
//! `include/uapi/linux/utsname.h`, what x86_64 `uname` fills in.

/// `__NEW_UTS_LEN`: the longest string in a [`NewUtsname`] field, without
/// its NUL.
pub const __NEW_UTS_LEN: usize = 64;

/// `struct new_utsname`: six NUL-terminated strings of 65 bytes.
#[doc(alias = "new_utsname")]
#[doc(alias = "utsname")]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewUtsname {
    /// The kernel name, `"Linux"` for programs that check.
    pub sysname: [u8; __NEW_UTS_LEN + 1],
    /// The host name.
    pub nodename: [u8; __NEW_UTS_LEN + 1],
    /// The kernel release.
    pub release: [u8; __NEW_UTS_LEN + 1],
    /// The kernel version (build string).
    pub version: [u8; __NEW_UTS_LEN + 1],
    /// The hardware name, `"x86_64"`.
    pub machine: [u8; __NEW_UTS_LEN + 1],
    /// The NIS domain name.
    pub domainname: [u8; __NEW_UTS_LEN + 1],
}

impl Default for NewUtsname {
    fn default() -> Self {
        let empty = [0; __NEW_UTS_LEN + 1];
        Self { sysname: empty, nodename: empty, release: empty, version: empty, machine: empty, domainname: empty }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;
    use core::mem::offset_of;

    /// `sizeof`/`offsetof` from the host's Linux 6.1 `<linux/utsname.h>`.
    #[test]
    fn layout_matches_linux_headers() {
        assert_defines_match!(&["linux/utsname.h"]; __NEW_UTS_LEN);
        assert_eq!(size_of::<NewUtsname>(), 390);
        assert_eq!(offset_of!(NewUtsname, sysname), 0);
        assert_eq!(offset_of!(NewUtsname, nodename), 65);
        assert_eq!(offset_of!(NewUtsname, release), 130);
        assert_eq!(offset_of!(NewUtsname, version), 195);
        assert_eq!(offset_of!(NewUtsname, machine), 260);
        assert_eq!(offset_of!(NewUtsname, domainname), 325);
    }
}
