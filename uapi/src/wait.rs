//! Waiting for children: the options and id types of Linux's
//! `include/uapi/linux/wait.h`, and the status word `wait4` stores, which
//! Linux encodes in `kernel/exit.c` and libc decodes with `WIFEXITED()` and
//! friends.
//!
//! The status word: an exit puts the code in bits 8..16 ([`w_exitcode`]);
//! death by a signal puts the signal in bits 0..7 with [`WCOREFLAG`] if a
//! core was dumped ([`w_termsig`]); a stop is `sig << 8 | 0x7f`
//! ([`w_stopcode`]); a continue is [`W_CONTINUED`].

/// `WNOHANG`: return at once if no child has changed state.
pub const WNOHANG: u32 = 0x0000_0001;
/// `WUNTRACED`: also report stopped children.
pub const WUNTRACED: u32 = 0x0000_0002;
/// `WSTOPPED`: `waitid` name of [`WUNTRACED`].
pub const WSTOPPED: u32 = WUNTRACED;
/// `WEXITED`: `waitid` reports exited children.
pub const WEXITED: u32 = 0x0000_0004;
/// `WCONTINUED`: also report continued children.
pub const WCONTINUED: u32 = 0x0000_0008;
/// `WNOWAIT`: leave the child waitable.
pub const WNOWAIT: u32 = 0x0100_0000;
/// `__WNOTHREAD`: do not wait for children of other threads in the group.
pub const __WNOTHREAD: u32 = 0x2000_0000;
/// `__WALL`: wait for all children, clone or not.
pub const __WALL: u32 = 0x4000_0000;
/// `__WCLONE`: wait only for clone children (exit signal other than
/// `SIGCHLD`).
pub const __WCLONE: u32 = 0x8000_0000;

/// `P_ALL`: `waitid` waits for any child.
pub const P_ALL: i32 = 0;
/// `P_PID`: `waitid` waits for the child with this pid.
pub const P_PID: i32 = 1;
/// `P_PGID`: `waitid` waits for any child in this process group.
pub const P_PGID: i32 = 2;
/// `P_PIDFD`: `waitid` waits for the child this pidfd refers to.
pub const P_PIDFD: i32 = 3;

/// The core-dump bit of a signal-death status (libc's `WCOREFLAG`).
pub const WCOREFLAG: i32 = 0x80;
/// The status of a continued child (libc's `__W_CONTINUED`).
pub const W_CONTINUED: i32 = 0xffff;

/// The status of a child that exited with `code` (libc's `W_EXITCODE(code,
/// 0)`); only the low 8 bits of `code` survive, as with `_exit`.
pub const fn w_exitcode(code: i32) -> i32 {
    (code & 0xff) << 8
}

/// The status of a child killed by signal `sig`, with [`WCOREFLAG`] if it
/// dumped core.
pub const fn w_termsig(sig: i32, core_dumped: bool) -> i32 {
    (sig & 0x7f) | if core_dumped { WCOREFLAG } else { 0 }
}

/// The status of a child stopped by signal `sig` (libc's `W_STOPCODE`).
pub const fn w_stopcode(sig: i32) -> i32 {
    ((sig & 0xff) << 8) | 0x7f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;

    /// Every constant against the host's `<linux/wait.h>` and the headers they include.
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/wait.h"];
            WNOHANG, WUNTRACED, WSTOPPED, WEXITED, WCONTINUED, WNOWAIT, __WNOTHREAD, __WALL, __WCLONE, P_ALL,
            P_PID, P_PGID, P_PIDFD,
        );
    }

    /// Figures from glibc's `<sys/wait.h>` macros on the host:
    /// `W_EXITCODE(3, 0) == 0x300`, `W_EXITCODE(0, 11) | WCOREFLAG == 0x8b`,
    /// `W_STOPCODE(19) == 0x137f`, `__W_CONTINUED == 0xffff`.
    #[test]
    fn status_encoding_matches_libc_decoding() {
        assert_eq!(w_exitcode(3), 0x300);
        assert_eq!(w_exitcode(255), 0xff00);
        assert_eq!(w_exitcode(256), 0, "exit codes are truncated to 8 bits");
        assert_eq!(w_exitcode(-1), 0xff00);
        assert_eq!(w_termsig(11, true), 0x8b);
        assert_eq!(w_termsig(9, false), 0x9);
        assert_eq!(w_stopcode(19), 0x137f);
        assert_eq!(WCOREFLAG, 0x80);
        assert_eq!(W_CONTINUED, 0xffff);
    }
}
