//! Terminal and generic file `ioctl` requests: Linux's
//! `include/uapi/asm-generic/ioctls.h` (used by x86 through
//! `asm/ioctls.h`) and `struct winsize` from
//! `include/uapi/asm-generic/termios.h`.
//!
//! musl's `isatty` is `ioctl(fd, TIOCGWINSZ, &ws)` succeeding, so a
//! console that answers [`TIOCGWINSZ`] gets line-buffered stdout.

/// `TCGETS`: read the terminal's [`Termios`](crate::termbits::Termios).
pub const TCGETS: u32 = 0x5401;
/// `TCSETS`: set the terminal's `Termios` now.
pub const TCSETS: u32 = 0x5402;
/// `TCSETSW`: set the `Termios` after output drains.
pub const TCSETSW: u32 = 0x5403;
/// `TCSETSF`: set the `Termios` after output drains, discarding input.
pub const TCSETSF: u32 = 0x5404;
/// `TIOCSCTTY`: make the terminal the controlling terminal.
pub const TIOCSCTTY: u32 = 0x540E;
/// `TIOCGPGRP`: get the foreground process group.
pub const TIOCGPGRP: u32 = 0x540F;
/// `TIOCSPGRP`: set the foreground process group.
pub const TIOCSPGRP: u32 = 0x5410;
/// `TIOCGWINSZ`: read the window size into a [`Winsize`].
pub const TIOCGWINSZ: u32 = 0x5413;
/// `TIOCSWINSZ`: set the window size from a [`Winsize`].
pub const TIOCSWINSZ: u32 = 0x5414;
/// `FIONREAD`: the number of bytes ready to read.
pub const FIONREAD: u32 = 0x541B;
/// `TIOCNOTTY`: give up the controlling terminal.
pub const TIOCNOTTY: u32 = 0x5422;
/// `FIONBIO`: set or clear `O_NONBLOCK`.
pub const FIONBIO: u32 = 0x5421;
/// `TIOCGSID`: get the session of the terminal.
pub const TIOCGSID: u32 = 0x5429;
/// `FIONCLEX`: clear `FD_CLOEXEC`.
pub const FIONCLEX: u32 = 0x5450;
/// `FIOCLEX`: set `FD_CLOEXEC`.
pub const FIOCLEX: u32 = 0x5451;
/// `FIOASYNC`: set or clear `FASYNC`.
pub const FIOASYNC: u32 = 0x5452;

/// `struct winsize`: a terminal's size.
#[doc(alias = "winsize")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Winsize {
    /// Rows of characters.
    pub ws_row: u16,
    /// Columns of characters.
    pub ws_col: u16,
    /// Width in pixels (unused by Linux).
    pub ws_xpixel: u16,
    /// Height in pixels (unused by Linux).
    pub ws_ypixel: u16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;
    use core::mem::offset_of;

    /// Every constant against the host's `<asm/ioctls.h>` and the headers they include.
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["asm/ioctls.h"];
            TCGETS, TCSETS, TCSETSW, TCSETSF, TIOCSCTTY, TIOCGPGRP, TIOCSPGRP, TIOCGWINSZ, TIOCSWINSZ, FIONREAD,
            TIOCNOTTY, FIONBIO, TIOCGSID, FIONCLEX, FIOCLEX, FIOASYNC,
        );
    }

    /// `sizeof`/`offsetof` from the host's `<asm/termios.h>`.
    #[test]
    fn winsize_layout_matches_linux_headers() {
        assert_eq!(size_of::<Winsize>(), 8);
        assert_eq!(offset_of!(Winsize, ws_row), 0);
        assert_eq!(offset_of!(Winsize, ws_col), 2);
        assert_eq!(offset_of!(Winsize, ws_xpixel), 4);
        assert_eq!(offset_of!(Winsize, ws_ypixel), 6);
    }
}
