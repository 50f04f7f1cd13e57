//! Error numbers: Linux's `include/uapi/asm-generic/errno-base.h` (1..=34) and
//! `include/uapi/asm-generic/errno.h` (35..=133), which x86_64 uses unchanged
//! through `arch/x86/include/uapi/asm/errno.h`.
//!
//! A failing syscall returns `-errno` in `rax`; libc turns any return in
//! `-4095..=-1` into `errno` and `-1`. [`Errno::as_syscall_ret`] and
//! [`syscall_ret`] produce that encoding, and [`is_err_value`] is Linux's
//! `IS_ERR_VALUE()` test for it.
//!
//! The numbers 41 and 58 are unassigned on x86_64 (`EWOULDBLOCK` and
//! `EDEADLOCK` are aliases, available as associated constants), so
//! [`Errno::from_i32`] rejects them. The descriptions are glibc's
//! `strerror()` texts, the ones `man errno` and most tools print.

use core::fmt;

/// The largest errno a syscall can return; Linux's `MAX_ERRNO`
/// (`include/linux/err.h`). Returns in `-MAX_ERRNO..=-1` are errors.
pub const MAX_ERRNO: u64 = 4095;

/// Whether a raw syscall return value encodes an error; Linux's
/// `IS_ERR_VALUE()`.
#[doc(alias = "IS_ERR_VALUE")]
pub const fn is_err_value(ret: u64) -> bool {
    ret >= MAX_ERRNO.wrapping_neg()
}

/// The raw `rax` value for a syscall result: the value itself on success,
/// `-errno` on failure.
pub const fn syscall_ret(result: Result<u64, Errno>) -> u64 {
    match result {
        Ok(value) => value,
        Err(errno) => errno.as_syscall_ret(),
    }
}

macro_rules! errnos {
    ($($name:ident = $value:literal => $description:literal,)*) => {
        /// A Linux error number.
        #[repr(i32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Errno {
            $(
                #[doc = $description]
                $name = $value,
            )*
        }

        impl Errno {
            /// The errno for `value`, or `None` if Linux assigns it no meaning.
            pub const fn from_i32(value: i32) -> Option<Self> {
                match value {
                    $($value => Some(Self::$name),)*
                    _ => None,
                }
            }

            /// The Linux name, e.g. `"EFAULT"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$name => stringify!($name),)*
                }
            }

            /// The `strerror()` text, e.g. `"Bad address"`.
            pub const fn description(self) -> &'static str {
                match self {
                    $(Self::$name => $description,)*
                }
            }
        }
    };
}

errnos! {
    EPERM = 1 => "Operation not permitted",
    ENOENT = 2 => "No such file or directory",
    ESRCH = 3 => "No such process",
    EINTR = 4 => "Interrupted system call",
    EIO = 5 => "Input/output error",
    ENXIO = 6 => "No such device or address",
    E2BIG = 7 => "Argument list too long",
    ENOEXEC = 8 => "Exec format error",
    EBADF = 9 => "Bad file descriptor",
    ECHILD = 10 => "No child processes",
    EAGAIN = 11 => "Resource temporarily unavailable",
    ENOMEM = 12 => "Cannot allocate memory",
    EACCES = 13 => "Permission denied",
    EFAULT = 14 => "Bad address",
    ENOTBLK = 15 => "Block device required",
    EBUSY = 16 => "Device or resource busy",
    EEXIST = 17 => "File exists",
    EXDEV = 18 => "Invalid cross-device link",
    ENODEV = 19 => "No such device",
    ENOTDIR = 20 => "Not a directory",
    EISDIR = 21 => "Is a directory",
    EINVAL = 22 => "Invalid argument",
    ENFILE = 23 => "Too many open files in system",
    EMFILE = 24 => "Too many open files",
    ENOTTY = 25 => "Inappropriate ioctl for device",
    ETXTBSY = 26 => "Text file busy",
    EFBIG = 27 => "File too large",
    ENOSPC = 28 => "No space left on device",
    ESPIPE = 29 => "Illegal seek",
    EROFS = 30 => "Read-only file system",
    EMLINK = 31 => "Too many links",
    EPIPE = 32 => "Broken pipe",
    EDOM = 33 => "Numerical argument out of domain",
    ERANGE = 34 => "Numerical result out of range",
    EDEADLK = 35 => "Resource deadlock avoided",
    ENAMETOOLONG = 36 => "File name too long",
    ENOLCK = 37 => "No locks available",
    ENOSYS = 38 => "Function not implemented",
    ENOTEMPTY = 39 => "Directory not empty",
    ELOOP = 40 => "Too many levels of symbolic links",
    ENOMSG = 42 => "No message of desired type",
    EIDRM = 43 => "Identifier removed",
    ECHRNG = 44 => "Channel number out of range",
    EL2NSYNC = 45 => "Level 2 not synchronized",
    EL3HLT = 46 => "Level 3 halted",
    EL3RST = 47 => "Level 3 reset",
    ELNRNG = 48 => "Link number out of range",
    EUNATCH = 49 => "Protocol driver not attached",
    ENOCSI = 50 => "No CSI structure available",
    EL2HLT = 51 => "Level 2 halted",
    EBADE = 52 => "Invalid exchange",
    EBADR = 53 => "Invalid request descriptor",
    EXFULL = 54 => "Exchange full",
    ENOANO = 55 => "No anode",
    EBADRQC = 56 => "Invalid request code",
    EBADSLT = 57 => "Invalid slot",
    EBFONT = 59 => "Bad font file format",
    ENOSTR = 60 => "Device not a stream",
    ENODATA = 61 => "No data available",
    ETIME = 62 => "Timer expired",
    ENOSR = 63 => "Out of streams resources",
    ENONET = 64 => "Machine is not on the network",
    ENOPKG = 65 => "Package not installed",
    EREMOTE = 66 => "Object is remote",
    ENOLINK = 67 => "Link has been severed",
    EADV = 68 => "Advertise error",
    ESRMNT = 69 => "Srmount error",
    ECOMM = 70 => "Communication error on send",
    EPROTO = 71 => "Protocol error",
    EMULTIHOP = 72 => "Multihop attempted",
    EDOTDOT = 73 => "RFS specific error",
    EBADMSG = 74 => "Bad message",
    EOVERFLOW = 75 => "Value too large for defined data type",
    ENOTUNIQ = 76 => "Name not unique on network",
    EBADFD = 77 => "File descriptor in bad state",
    EREMCHG = 78 => "Remote address changed",
    ELIBACC = 79 => "Can not access a needed shared library",
    ELIBBAD = 80 => "Accessing a corrupted shared library",
    ELIBSCN = 81 => ".lib section in a.out corrupted",
    ELIBMAX = 82 => "Attempting to link in too many shared libraries",
    ELIBEXEC = 83 => "Cannot exec a shared library directly",
    EILSEQ = 84 => "Invalid or incomplete multibyte or wide character",
    ERESTART = 85 => "Interrupted system call should be restarted",
    ESTRPIPE = 86 => "Streams pipe error",
    EUSERS = 87 => "Too many users",
    ENOTSOCK = 88 => "Socket operation on non-socket",
    EDESTADDRREQ = 89 => "Destination address required",
    EMSGSIZE = 90 => "Message too long",
    EPROTOTYPE = 91 => "Protocol wrong type for socket",
    ENOPROTOOPT = 92 => "Protocol not available",
    EPROTONOSUPPORT = 93 => "Protocol not supported",
    ESOCKTNOSUPPORT = 94 => "Socket type not supported",
    EOPNOTSUPP = 95 => "Operation not supported",
    EPFNOSUPPORT = 96 => "Protocol family not supported",
    EAFNOSUPPORT = 97 => "Address family not supported by protocol",
    EADDRINUSE = 98 => "Address already in use",
    EADDRNOTAVAIL = 99 => "Cannot assign requested address",
    ENETDOWN = 100 => "Network is down",
    ENETUNREACH = 101 => "Network is unreachable",
    ENETRESET = 102 => "Network dropped connection on reset",
    ECONNABORTED = 103 => "Software caused connection abort",
    ECONNRESET = 104 => "Connection reset by peer",
    ENOBUFS = 105 => "No buffer space available",
    EISCONN = 106 => "Transport endpoint is already connected",
    ENOTCONN = 107 => "Transport endpoint is not connected",
    ESHUTDOWN = 108 => "Cannot send after transport endpoint shutdown",
    ETOOMANYREFS = 109 => "Too many references: cannot splice",
    ETIMEDOUT = 110 => "Connection timed out",
    ECONNREFUSED = 111 => "Connection refused",
    EHOSTDOWN = 112 => "Host is down",
    EHOSTUNREACH = 113 => "No route to host",
    EALREADY = 114 => "Operation already in progress",
    EINPROGRESS = 115 => "Operation now in progress",
    ESTALE = 116 => "Stale file handle",
    EUCLEAN = 117 => "Structure needs cleaning",
    ENOTNAM = 118 => "Not a XENIX named type file",
    ENAVAIL = 119 => "No XENIX semaphores available",
    EISNAM = 120 => "Is a named type file",
    EREMOTEIO = 121 => "Remote I/O error",
    EDQUOT = 122 => "Disk quota exceeded",
    ENOMEDIUM = 123 => "No medium found",
    EMEDIUMTYPE = 124 => "Wrong medium type",
    ECANCELED = 125 => "Operation canceled",
    ENOKEY = 126 => "Required key not available",
    EKEYEXPIRED = 127 => "Key has expired",
    EKEYREVOKED = 128 => "Key has been revoked",
    EKEYREJECTED = 129 => "Key was rejected by service",
    EOWNERDEAD = 130 => "Owner died",
    ENOTRECOVERABLE = 131 => "State not recoverable",
    ERFKILL = 132 => "Operation not possible due to RF-kill",
    EHWPOISON = 133 => "Memory page has hardware error",
}

impl Errno {
    /// `EWOULDBLOCK`, an alias of [`Errno::EAGAIN`].
    pub const EWOULDBLOCK: Self = Self::EAGAIN;
    /// `EDEADLOCK`, an alias of [`Errno::EDEADLK`] on x86_64.
    pub const EDEADLOCK: Self = Self::EDEADLK;

    /// The positive errno number.
    pub const fn as_i32(self) -> i32 {
        self as i32
    }

    /// The raw `rax` value of a syscall failing with this errno: `-errno`.
    pub const fn as_syscall_ret(self) -> u64 {
        (-(self as i64)) as u64
    }

    /// The errno encoded by a raw syscall return, or `None` for a success
    /// value (or an error number Linux does not assign).
    pub const fn from_syscall_ret(ret: u64) -> Option<Self> {
        if is_err_value(ret) {
            // In the error range, -ret is 1..=4095 and fits an i32.
            Self::from_i32(ret.wrapping_neg() as i32)
        } else {
            None
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.description())
    }
}

impl core::error::Error for Errno {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers;

    fn all() -> impl Iterator<Item = Errno> {
        (1..=133).filter_map(Errno::from_i32)
    }

    #[test]
    fn every_linux_errno_from_eperm_to_ehwpoison_is_known() {
        assert_eq!(Errno::from_i32(1), Some(Errno::EPERM));
        assert_eq!(Errno::from_i32(14), Some(Errno::EFAULT));
        assert_eq!(Errno::from_i32(38), Some(Errno::ENOSYS));
        assert_eq!(Errno::from_i32(133), Some(Errno::EHWPOISON));
        assert_eq!(all().count(), 131);
        for hole in [0, 41, 58, 134, -1, i32::MAX] {
            assert_eq!(Errno::from_i32(hole), None, "{hole}");
        }
        for errno in all() {
            assert_eq!(Errno::from_i32(errno.as_i32()), Some(errno));
        }
    }

    #[test]
    fn aliases_share_the_number_of_their_target() {
        assert_eq!(Errno::EWOULDBLOCK.as_i32(), 11);
        assert_eq!(Errno::EDEADLOCK.as_i32(), 35);
    }

    #[test]
    fn display_shows_name_and_strerror_text() {
        assert_eq!(Errno::EFAULT.name(), "EFAULT");
        assert_eq!(Errno::EFAULT.description(), "Bad address");
        assert_eq!(Errno::EFAULT.to_string(), "EFAULT (Bad address)");
        assert_eq!(Errno::ENOENT.to_string(), "ENOENT (No such file or directory)");
        assert_eq!(Errno::EHWPOISON.description(), "Memory page has hardware error");
    }

    #[test]
    fn syscall_return_encoding_matches_linux() {
        assert_eq!(Errno::EPERM.as_syscall_ret(), u64::MAX);
        assert_eq!(Errno::ENOSYS.as_syscall_ret(), (-38i64) as u64);
        assert_eq!(syscall_ret(Err(Errno::EBADF)), (-9i64) as u64);
        assert_eq!(syscall_ret(Ok(42)), 42);
        for errno in all() {
            let ret = errno.as_syscall_ret();
            assert!(is_err_value(ret));
            assert_eq!(Errno::from_syscall_ret(ret), Some(errno));
        }
        assert!(is_err_value((-4095i64) as u64));
        assert!(!is_err_value((-4096i64) as u64));
        assert!(!is_err_value(0));
        assert!(!is_err_value(0x7fff_ffff_f000));
        assert_eq!(Errno::from_syscall_ret(0), None);
        assert_eq!(Errno::from_syscall_ret((-41i64) as u64), None);
    }

    /// Every `#define Ennn <number>` in the host's errno headers names the
    /// variant with that number, and every alias points at the right one.
    #[test]
    fn names_match_host_errno_headers() {
        let mut seen = 0;
        for path in ["/usr/include/asm-generic/errno-base.h", "/usr/include/asm-generic/errno.h"] {
            let Some(defines) = host_headers::defines(path) else {
                return;
            };
            for (name, value) in defines.into_iter().filter(|(name, _)| name.starts_with('E')) {
                match value.parse::<i32>() {
                    Ok(number) => {
                        let errno = Errno::from_i32(number);
                        assert_eq!(errno.map(Errno::name), Some(name.as_str()), "{number}");
                        seen += 1;
                    }
                    // An alias: `#define EWOULDBLOCK EAGAIN`.
                    Err(_) => {
                        let alias = match name.as_str() {
                            "EWOULDBLOCK" => Errno::EWOULDBLOCK,
                            "EDEADLOCK" => Errno::EDEADLOCK,
                            _ => panic!("unexpected alias {name} = {value}"),
                        };
                        assert_eq!(alias.name(), value);
                    }
                }
            }
        }
        assert_eq!(seen, 131);
    }
}
