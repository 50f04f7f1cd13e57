//! Terminal attributes: the kernel's `struct termios` from Linux's
//! `include/uapi/asm-generic/termbits.h`, what [`TCGETS`] and [`TCSETS`]
//! copy.
//!
//! libc's `struct termios` is larger (musl: 32 control characters and two
//! speed fields); libc passes the kernel this prefix.
//!
//! [`TCGETS`]: crate::ioctls::TCGETS
//! [`TCSETS`]: crate::ioctls::TCSETS

/// `NCCS`: the number of control characters in the kernel's `termios`.
pub const NCCS: usize = 19;

/// The kernel's `struct termios`, 36 bytes.
#[doc(alias = "termios")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Termios {
    /// Input modes.
    pub c_iflag: u32,
    /// Output modes.
    pub c_oflag: u32,
    /// Control modes.
    pub c_cflag: u32,
    /// Local modes.
    pub c_lflag: u32,
    /// The line discipline.
    pub c_line: u8,
    /// Control characters.
    pub c_cc: [u8; NCCS],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;
    use core::mem::offset_of;

    /// Figures printed by a C program built against the host's Linux 6.1
    /// `<asm/termbits.h>`.
    #[test]
    fn layout_matches_linux_headers() {
        assert_defines_match!(&["asm/termbits.h"]; NCCS);
        assert_eq!(size_of::<Termios>(), 36);
        assert_eq!(offset_of!(Termios, c_iflag), 0);
        assert_eq!(offset_of!(Termios, c_oflag), 4);
        assert_eq!(offset_of!(Termios, c_cflag), 8);
        assert_eq!(offset_of!(Termios, c_lflag), 12);
        assert_eq!(offset_of!(Termios, c_line), 16);
        assert_eq!(offset_of!(Termios, c_cc), 17);
    }
}
