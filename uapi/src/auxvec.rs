//! Auxiliary vector keys: Linux's `include/uapi/linux/auxvec.h` and
//! `arch/x86/include/uapi/asm/auxvec.h`.
//!
//! `execve` leaves `(key, value)` pairs of `u64` above `envp` on the new
//! stack, ended by [`AT_NULL`]; a static musl program reads [`AT_PHDR`],
//! [`AT_PHNUM`], [`AT_PAGESZ`], [`AT_RANDOM`], [`AT_HWCAP`],
//! [`AT_SYSINFO_EHDR`], [`AT_SECURE`] and the ids from it.

/// `AT_NULL`: the end of the vector.
pub const AT_NULL: u64 = 0;
/// `AT_IGNORE`: an entry to ignore.
pub const AT_IGNORE: u64 = 1;
/// `AT_EXECFD`: the file descriptor of the program.
pub const AT_EXECFD: u64 = 2;
/// `AT_PHDR`: the address of the program headers.
pub const AT_PHDR: u64 = 3;
/// `AT_PHENT`: the size of one program header.
pub const AT_PHENT: u64 = 4;
/// `AT_PHNUM`: the number of program headers.
pub const AT_PHNUM: u64 = 5;
/// `AT_PAGESZ`: the page size.
pub const AT_PAGESZ: u64 = 6;
/// `AT_BASE`: the load address of the interpreter (zero if none).
pub const AT_BASE: u64 = 7;
/// `AT_FLAGS`: flags, zero.
pub const AT_FLAGS: u64 = 8;
/// `AT_ENTRY`: the program's entry point.
pub const AT_ENTRY: u64 = 9;
/// `AT_NOTELF`: the program is not ELF.
pub const AT_NOTELF: u64 = 10;
/// `AT_UID`: the real uid.
pub const AT_UID: u64 = 11;
/// `AT_EUID`: the effective uid.
pub const AT_EUID: u64 = 12;
/// `AT_GID`: the real gid.
pub const AT_GID: u64 = 13;
/// `AT_EGID`: the effective gid.
pub const AT_EGID: u64 = 14;
/// `AT_PLATFORM`: the address of a string naming the CPU (`"x86_64"`).
pub const AT_PLATFORM: u64 = 15;
/// `AT_HWCAP`: CPU capability bits (CPUID.1:EDX on x86).
pub const AT_HWCAP: u64 = 16;
/// `AT_CLKTCK`: the frequency `times()` counts at.
pub const AT_CLKTCK: u64 = 17;
/// `AT_SECURE`: nonzero for a set-id program.
pub const AT_SECURE: u64 = 23;
/// `AT_BASE_PLATFORM`: the address of a string naming the real platform.
pub const AT_BASE_PLATFORM: u64 = 24;
/// `AT_RANDOM`: the address of 16 random bytes.
pub const AT_RANDOM: u64 = 25;
/// `AT_HWCAP2`: more CPU capability bits.
pub const AT_HWCAP2: u64 = 26;
/// `AT_EXECFN`: the address of the executed file name.
pub const AT_EXECFN: u64 = 31;
/// `AT_SYSINFO_EHDR`: the address of the vDSO's ELF header (x86).
pub const AT_SYSINFO_EHDR: u64 = 33;
/// `AT_MINSIGSTKSZ`: the minimal stack size for signal delivery.
pub const AT_MINSIGSTKSZ: u64 = 51;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;

    /// Every constant against the host's `<linux/auxvec.h>` and the headers they include.
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/auxvec.h"];
            AT_NULL, AT_IGNORE, AT_EXECFD, AT_PHDR, AT_PHENT, AT_PHNUM, AT_PAGESZ, AT_BASE, AT_FLAGS, AT_ENTRY,
            AT_NOTELF, AT_UID, AT_EUID, AT_GID, AT_EGID, AT_PLATFORM, AT_HWCAP, AT_CLKTCK, AT_SECURE,
            AT_BASE_PLATFORM, AT_RANDOM, AT_HWCAP2, AT_EXECFN, AT_SYSINFO_EHDR, AT_MINSIGSTKSZ,
        );
    }
}
