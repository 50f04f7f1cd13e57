//! The Linux x86_64 user ABI: the numbers, flags and structure layouts that a
//! static musl executable hands the kernel through `syscall`.
//!
//! Each module mirrors one Linux uapi header (or a small family of them) and
//! takes its name: [`errno`] is `asm-generic/errno*.h`, [`unistd`] is the
//! x86_64 syscall table, [`signal`] is `asm/signal.h`, `asm/siginfo.h`,
//! `asm/sigcontext.h` and `asm/ucontext.h`, and so on. Names are Linux's, so a
//! reader greps for `MAP_FIXED_NOREPLACE` or `struct new_utsname` and lands
//! here.
//!
//! # Conventions
//!
//! - Constants keep the Linux spelling, leading underscores included
//!   (`__WALL`, `__O_TMPFILE`). Their Rust type follows the C type the kernel
//!   reads them as: `int`-sized bit masks are `u32`, `unsigned long` masks
//!   (`CLONE_*`, `SA_*`, auxv keys) are `u64`, and signed `int` codes (signal
//!   numbers, errno values, `AT_FDCWD`, clock ids) are `i32`.
//! - Structures are `#[repr(C)]`, `Clone + Copy + Default`, with every
//!   padding byte an explicit field, so a value can be copied to user memory
//!   without leaking kernel bytes. Pointers in user structures are `u64`: they
//!   are user addresses, never dereferenced by the kernel directly.
//! - The tests beside each module compare its numbers with the `#define`s of
//!   the host's installed uapi headers (`host_headers`; skipped with a message
//!   where they are missing) and its layouts with `sizeof`/`offsetof` figures
//!   from a C program built against Linux 6.1's; the syscalls added after 6.1
//!   come from `arch/x86/entry/syscalls/syscall_64.tbl` upstream.
//!
//! The crate has no dependencies and no `unsafe`: it is vocabulary, not
//! mechanism.

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod auxvec;
pub mod capability;
pub mod errno;
pub mod fcntl;
pub mod fs;
pub mod futex;
#[cfg(test)]
mod host_headers;
pub mod ioctls;
pub mod ipc;
pub mod memfd;
pub mod mman;
pub mod prctl;
pub mod random;
pub mod resource;
pub mod sched;
pub mod signal;
pub mod stat;
pub mod swap;
pub mod sysinfo;
pub mod termbits;
pub mod time;
pub mod times;
pub mod unistd;
pub mod utsname;
pub mod wait;

pub use errno::Errno;
