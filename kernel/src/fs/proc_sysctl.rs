//! `/proc/sys`: the sysctl files programs read (Linux
//! `fs/proc/proc_sysctl.c` over the tables of `kernel/sysctl.c`,
//! `mm/util.c`, `mm/page_alloc.c`, `fs/file_table.c`,
//! `kernel/utsname_sysctl.c`).
//!
//! [`SYSCTLS`] is the one table of paths and how each value is printed,
//! in Linux's text (`proc_dointvec`: the number and a newline). Only
//! sysctls whose value is true of this kernel are listed: no swap or
//! reclaim tunables yet, since there is nothing they would describe. The
//! page cache's `vm.dirty_*` tunables can be set ([`Sysctl::store`],
//! through the console's `sysctl NAME=VALUE`), with Linux's bounds.
//!
//! Opening a settable one (the `vm.dirty_*` tunables, `vm.drop_caches`)
//! for writing gives a file whose writes set it; `vm/drop_caches` cannot
//! be read (mode 0200, as Linux's).
//!
//! Differences from Linux: the other files are read-only snapshots made
//! at open (mode 0444; opening one for writing is EACCES), where Linux
//! lets root write most of them; a file opened for writing cannot be read
//! back through the same descriptor; `overcommit_memory` reads 0 (heuristic) but
//! no mmap is ever refused for overcommit (Linux `__vm_enough_memory`);
//! `max_map_count` is the limit the mm enforces
//! (`mm::mmap::MAX_MAP_COUNT`), fixed; `randomize_va_space` is 0 because nothing is
//! randomized.

#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::String;

use uapi::errno::Errno;

/// One `/proc/sys` file: its path below `/proc/sys/` and its text.
pub struct Sysctl {
    /// Path below `/proc/sys/`, as `vm/mmap_min_addr`.
    pub path: &'static str,
    /// The file's contents now; `None` for a file only written (mode
    /// 0200, `vm/drop_caches`), whose opening for reading is EACCES.
    pub show: Option<fn() -> String>,
    /// Sets it from the text of a number (Linux's `proc_handler` on a
    /// write), if it can be set: EINVAL for what Linux refuses.
    pub store: Option<SysctlStore>,
}

/// How a settable sysctl takes a new value from its text.
pub type SysctlStore = fn(&str) -> Result<(), Errno>;

/// A `vm.dirty_*` value: a decimal number that fits an `int`, as
/// `proc_dointvec` parses it.
fn parse_int(text: &str) -> Result<u32, Errno> {
    text.trim().parse::<u32>().ok().filter(|&v| v <= i32::MAX as u32).ok_or(Errno::EINVAL)
}

fn dirty() -> mm::page_writeback::DirtySettings {
    *super::fs_writeback::SETTINGS.lock()
}

fn set_dirty(f: impl FnOnce(&mut mm::page_writeback::DirtySettings) -> Result<(), Errno>) -> Result<(), Errno> {
    let mut settings = super::fs_writeback::SETTINGS.lock();
    f(&mut settings)
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
    Sysctl { path: "fs/nr_open", show: Some(|| line(crate::resource::SYSCTL_NR_OPEN)), store: None },
    Sysctl { path: "kernel/hostname", show: Some(|| line(crate::syscall::UTS_NODENAME)), store: None },
    Sysctl { path: "kernel/osrelease", show: Some(|| line(crate::syscall::UTS_RELEASE)), store: None },
    Sysctl { path: "kernel/ostype", show: Some(|| line(crate::syscall::UTS_SYSNAME)), store: None },
    Sysctl { path: "kernel/randomize_va_space", show: Some(|| line(0)), store: None },
    Sysctl { path: "kernel/threads-max", show: Some(|| line(crate::resource::max_threads())), store: None },
    Sysctl {
        path: "vm/dirty_background_ratio",
        show: Some(|| line(dirty().background_ratio)),
        store: Some(|t| {
            let v = parse_int(t)?;
            set_dirty(|d| d.set_background_ratio(v).map_err(|_| Errno::EINVAL))
        }),
    },
    Sysctl {
        path: "vm/dirty_expire_centisecs",
        show: Some(|| line(dirty().expire_centisecs)),
        store: Some(|t| {
            let v = parse_int(t)?;
            set_dirty(|d| {
                d.expire_centisecs = v;
                Ok(())
            })
        }),
    },
    Sysctl {
        path: "vm/dirty_ratio",
        show: Some(|| line(dirty().ratio)),
        store: Some(|t| {
            let v = parse_int(t)?;
            set_dirty(|d| d.set_ratio(v).map_err(|_| Errno::EINVAL))
        }),
    },
    Sysctl {
        path: "vm/dirty_writeback_centisecs",
        show: Some(|| line(dirty().writeback_centisecs)),
        store: Some(|t| {
            let v = parse_int(t)?;
            set_dirty(|d| {
                d.writeback_centisecs = v;
                Ok(())
            })
        }),
    },
    Sysctl {
        path: "vm/drop_caches",
        show: None,
        store: Some(|t| {
            // Linux `drop_caches_sysctl_handler`: 1 the page cache, 2 the
            // slab caches, 3 both; 4 only silences its log line.
            let v = parse_int(t)?;
            if !(1..=4).contains(&v) {
                return Err(Errno::EINVAL);
            }
            let pgdat = crate::mm::pgdat();
            if v & 1 != 0 {
                pgdat.count_vm_event(mm::vmstat::VmEventItem::DropPagecache);
            }
            if v & 2 != 0 {
                pgdat.count_vm_event(mm::vmstat::VmEventItem::DropSlab);
            }
            // Ours drops both kinds together (page cache first, as
            // `crate::mm::drop_caches` must order them).
            if v & 3 != 0 {
                crate::mm::drop_caches();
            }
            Ok(())
        }),
    },
    Sysctl { path: "vm/legacy_va_layout", show: Some(|| line(0)), store: None },
    Sysctl { path: "vm/max_map_count", show: Some(|| line(mm::mmap::MAX_MAP_COUNT)), store: None },
    Sysctl { path: "vm/min_free_kbytes", show: Some(min_free_kbytes), store: None },
    Sysctl { path: "vm/mmap_min_addr", show: Some(|| line(mm::mmap::MMAP_MIN_ADDR)), store: None },
    Sysctl { path: "vm/overcommit_kbytes", show: Some(|| line(0)), store: None },
    Sysctl { path: "vm/overcommit_memory", show: Some(|| line(OVERCOMMIT_GUESS)), store: None },
    Sysctl { path: "vm/overcommit_ratio", show: Some(|| line(OVERCOMMIT_RATIO)), store: None },
    Sysctl { path: "vm/watermark_scale_factor", show: Some(|| line(mm::mmzone::WATERMARK_SCALE_FACTOR)), store: None },
];

/// The sysctl at absolute path `abs` (`/proc/sys/...`), if there is one.
pub fn lookup(abs: &str) -> Option<&'static Sysctl> {
    let rel = abs.strip_prefix("/proc/sys/")?;
    SYSCTLS.iter().find(|s| s.path == rel)
}
