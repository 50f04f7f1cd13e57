//! Parsers of the bytes the kernel takes from outside: the initramfs
//! ([`cpio`], Linux `init/initramfs.c`), executables ([`elf`], Linux
//! `fs/binfmt_elf.c`), the command line ([`cmdline`], Linux
//! `init/main.c` and `lib/cmdline.c`) and the CMOS clock's registers
//! ([`rtc`], Linux `arch/x86/kernel/rtc.c`).
//!
//! They are pure functions of their input, kept out of the `kernel` crate
//! (which builds only for the bare-metal target) so that `cargo test` runs
//! them on the host, malformed and random inputs included. Whatever the
//! input, they answer with a value or an error type, never a panic.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod cmdline;
pub mod cpio;
pub mod elf;
pub mod rtc;
