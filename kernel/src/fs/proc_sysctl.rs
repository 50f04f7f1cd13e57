//! `/proc/sys`: the sysctl files programs read (Linux
//! `fs/proc/proc_sysctl.c` over the tables of `kernel/sysctl.c`,
//! `mm/util.c`, `mm/page_alloc.c`, `fs/file_table.c`,
//! `kernel/utsname_sysctl.c`).
//!
//! [`SYSCTLS`] is the one table of paths and how each value is printed,
//! in Linux's text (`proc_dointvec`: the number and a newline). Only
//! sysctls whose value is true of this kernel are listed: no swap,
//! writeback or reclaim tunables, since there is nothing they would
//! describe.
//!
//! Differences from Linux: the files are read-only snapshots made at
//! open (mode 0444; opening one for writing is EACCES), where Linux lets
//! root write most of them; `overcommit_memory` reads 0 (heuristic) but
//! no mmap is ever refused for overcommit (Linux `__vm_enough_memory`);
//! `max_map_count` is the limit the mm enforces
//! (`mm::mmap::MAX_MAP_COUNT`), fixed; `randomize_va_space` is 0 because nothing is
//! randomized.

#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::String;

/// One `/proc/sys` file: its path below `/proc/sys/` and its text.
pub struct Sysctl {
    /// Path below `/proc/sys/`, as `vm/mmap_min_addr`.
    pub path: &'static str,
    /// The file's contents now.
    pub show: fn() -> String,
}

/// Linux `sysctl_overcommit_ratio`'s default.
const OVERCOMMIT_RATIO: u64 = 50;

/// Linux `OVERCOMMIT_GUESS`.
const OVERCOMMIT_GUESS: u64 = 0;

fn line(v: impl core::fmt::Display) -> String {
    format!("{v}\n")
}

/// Linux `min_free_kbytes` as the watermarks were computed from it
/// (`calculate_min_free_kbytes` over the managed pages).
fn min_free_kbytes() -> String {
    let managed = crate::mm::try_pgdat().map_or(0, |p| p.totalram_pages());
    line(mm::mmzone::min_free_kbytes(managed))
}

/// Every `/proc/sys` file, sorted by path.
pub static SYSCTLS: &[Sysctl] = &[
    Sysctl { path: "fs/nr_open", show: || line(crate::resource::SYSCTL_NR_OPEN) },
    Sysctl { path: "kernel/hostname", show: || line(crate::syscall::UTS_NODENAME) },
    Sysctl { path: "kernel/osrelease", show: || line(crate::syscall::UTS_RELEASE) },
    Sysctl { path: "kernel/ostype", show: || line(crate::syscall::UTS_SYSNAME) },
    Sysctl { path: "kernel/randomize_va_space", show: || line(0) },
    Sysctl { path: "kernel/threads-max", show: || line(crate::resource::max_threads()) },
    Sysctl { path: "vm/legacy_va_layout", show: || line(0) },
    Sysctl { path: "vm/max_map_count", show: || line(mm::mmap::MAX_MAP_COUNT) },
    Sysctl { path: "vm/min_free_kbytes", show: min_free_kbytes },
    Sysctl { path: "vm/mmap_min_addr", show: || line(mm::mmap::MMAP_MIN_ADDR) },
    Sysctl { path: "vm/overcommit_kbytes", show: || line(0) },
    Sysctl { path: "vm/overcommit_memory", show: || line(OVERCOMMIT_GUESS) },
    Sysctl { path: "vm/overcommit_ratio", show: || line(OVERCOMMIT_RATIO) },
    Sysctl { path: "vm/watermark_scale_factor", show: || line(mm::mmzone::WATERMARK_SCALE_FACTOR) },
];

/// The sysctl at absolute path `abs` (`/proc/sys/...`), if there is one.
pub fn lookup(abs: &str) -> Option<&'static Sysctl> {
    let rel = abs.strip_prefix("/proc/sys/")?;
    SYSCTLS.iter().find(|s| s.path == rel)
}
