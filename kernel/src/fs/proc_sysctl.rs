//! `/proc/sys`: the sysctl files programs read (Linux
//! `fs/proc/proc_sysctl.c` over the tables of `kernel/sysctl.c`,
//! `mm/util.c`, `mm/page_alloc.c`, `mm/vmscan.c`, `fs/file_table.c`,
//! `kernel/utsname_sysctl.c`).
//!
//! [`SYSCTLS`] is the one table of paths and how each value is printed,
//! in Linux's text (`proc_dointvec`: the number and a newline). Only
//! sysctls whose value is true of this kernel are listed. Some can be
//! set ([`Sysctl::store`]), by writing the file (each write(2) is parsed
//! whole, as Linux's `proc_dointvec` does) or through the console's
//! `sysctl NAME=VALUE`, with Linux's bounds (EINVAL outside them, nothing
//! changed): the page cache's `vm.dirty_*` (ratios 0 to 100, times 0 to
//! `INT_MAX`; Linux takes a negative `dirty_writeback_centisecs`, ours
//! refuses it); `vm.min_free_kbytes` (0 to `INT_MAX`) and
//! `vm.watermark_scale_factor` (1 to 3000), which recompute every zone's
//! watermarks at once, as `/proc/zoneinfo` shows (Linux
//! `setup_per_zone_wmarks`); `vm.swappiness` (0 to 200, default 60),
//! reclaim's anon/file balance; `vm.page-cluster` (0 to 31, default 3),
//! swap readahead's largest window as a power of two
//! ([`mm::swap_state::readahead`]; 0 turns it off); System V shared
//! memory's `kernel.shmmax`, `kernel.shmall` (any `unsigned long`) and
//! `kernel.shmmni` (0 to 32768), [`crate::ipc::shm`]'s limits; overcommit
//! accounting's ([`mm::overcommit`], Linux `mm/util.c`)
//! `vm.overcommit_memory` (0 to 2), `vm.overcommit_ratio` (0 to
//! `INT_MAX`; setting it zeroes `vm.overcommit_kbytes`, as Linux's
//! `overcommit_ratio_handler` does), `vm.overcommit_kbytes` (any
//! `unsigned long`; zeroes the ratio), `vm.admin_reserve_kbytes` and
//! `vm.user_reserve_kbytes` (any `unsigned long`); `vm.max_map_count`
//! (0 to `INT_MAX`), the VMA limit the mm reads at each mmap and split.
//!
//! `vm/drop_caches` (mode 0200, as Linux's) drops the clean page cache
//! and empty slabs ([`crate::mm::drop_caches`]). Linux's
//! debugfs file `fault_around_bytes` ([`DEBUGFS`]) is found the same
//! way, by its path `/sys/kernel/debug/fault_around_bytes`, with no
//! debugfs to mount (`mount -t debugfs` is ENODEV here): a program that
//! mounts debugfs there on Linux sees the same file on both. So is
//! Linux's sysfs file `/sys/kernel/mm/swap/vma_ra_enabled` ([`SYSFS_MM`]:
//! `true` for VMA-based swap readahead, the default, `false` for
//! cluster-based), with no sysfs mounted.
//!
//! The files are served by the proc file system under `/proc/sys`
//! ([`super::proc`]), which reads [`SYSCTLS`] for its directories and
//! files and gives each its mode ([`Sysctl::mode`]).
//!
//! Differences from Linux: the debugfs and sysfs files are snapshots made
//! at open; only the settable files can be opened for writing (the others
//! are 0444 and EACCES, where Linux has 0644 for `mmap_min_addr`,
//! `legacy_va_layout`,
//! `randomize_va_space`, `hostname`, `threads-max`, `nr_open` and
//! `tainted`); `kernel.pid_max` takes Linux's range (301 to 4194304) but
//! bounds nothing, pids being handed out upwards and never reused
//! ([`crate::sched::alloc_pid`]); `kernel.tainted` is 0, nothing taints
//! this kernel; `drop_caches` drops the page
//! cache and slabs whatever the value 1 to 4; `overcommit_ratio`
//! refuses a negative ratio, which Linux's `proc_dointvec` takes;
//! `randomize_va_space` is 0 because nothing is randomized.

#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU32, Ordering};

use uapi::errno::Errno;

/// One `/proc/sys` file: its path below `/proc/sys/` and its text.
pub struct Sysctl {
    /// Whether it can be opened for reading (Linux's mode has `r`:
    /// `drop_caches`, 0200, has not).
    pub readable: bool,
    /// Path below `/proc/sys/`, as `vm/mmap_min_addr` (below
    /// `/sys/kernel/debug/` for [`DEBUGFS`]).
    pub path: &'static str,
    /// The file's contents now.
    pub show: fn() -> String,
    /// Sets it from the text of a number (Linux's `proc_handler` on a
    /// write), if it can be set: EINVAL for what Linux refuses.
    pub store: Option<SysctlStore>,
}

impl Sysctl {
    /// Its permission bits as Linux's table gives them: 0200 for a
    /// write-only one, 0644 if it can be set, else 0444 (where Linux has
    /// 0644 for a sysctl we keep fixed, ours is 0444: see the module
    /// doc).
    pub fn mode(&self) -> u32 {
        match (self.readable, self.store.is_some()) {
            (false, _) => 0o200,
            (true, true) => 0o644,
            (true, false) => 0o444,
        }
    }
}

/// How a settable sysctl takes a new value from its text.
pub type SysctlStore = fn(&str) -> Result<(), Errno>;

/// A `vm.dirty_*` value: a decimal number that fits an `int`, as
/// `proc_dointvec` parses it.
fn parse_int(text: &str) -> Result<u32, Errno> {
    text.trim().parse::<u32>().ok().filter(|&v| v <= i32::MAX as u32).ok_or(Errno::EINVAL)
}

/// An `unsigned long` sysctl's text, as `proc_doulongvec_minmax` parses
/// it: a decimal number that fits 64 bits.
fn parse_ulong(text: &str) -> Result<u64, Errno> {
    text.trim().parse::<u64>().map_err(|_| Errno::EINVAL)
}

fn dirty() -> mm::page_writeback::DirtySettings {
    *super::fs_writeback::SETTINGS.lock()
}

fn set_dirty(f: impl FnOnce(&mut mm::page_writeback::DirtySettings) -> Result<(), Errno>) -> Result<(), Errno> {
    let mut settings = super::fs_writeback::SETTINGS.lock();
    f(&mut settings)
}

fn line(v: impl core::fmt::Display) -> String {
    format!("{v}\n")
}

/// A `vm` tunable of the node's: its value now (0 before the allocator
/// is up).
fn node_value(f: fn(&mm::page_alloc::PgData<'static>) -> u64) -> String {
    line(crate::mm::try_pgdat().map_or(0, f))
}

/// Sets a `vm` tunable of the node's: EINVAL out of its range, as
/// Linux's `proc_dointvec_minmax`, with nothing changed.
fn set_node_value(
    text: &str,
    f: fn(&mm::page_alloc::PgData<'static>, u64) -> Result<(), mm::mmzone::RangeError>,
) -> Result<(), Errno> {
    let value = parse_int(text)?;
    let pgdat = crate::mm::try_pgdat().ok_or(Errno::EINVAL)?;
    f(pgdat, u64::from(value)).map_err(|_| Errno::EINVAL)
}

/// Sets an `unsigned long` tunable of the node's (Linux
/// `proc_doulongvec_minmax` without bounds).
fn set_node_ulong(text: &str, f: fn(&mm::page_alloc::PgData<'static>, u64)) -> Result<(), Errno> {
    let value = parse_ulong(text)?;
    f(crate::mm::try_pgdat().ok_or(Errno::EINVAL)?, value);
    Ok(())
}

/// The machine's overcommit accounting and its sysctls.
fn overcommit<'p>(p: &'p mm::page_alloc::PgData<'static>) -> &'p mm::overcommit::Overcommit {
    p.overcommit()
}

/// Linux `PID_MAX_DEFAULT`: `kernel.pid_max` at boot (Linux raises it to
/// 1024 per possible CPU beyond 32 CPUs).
const PID_MAX_DEFAULT: u32 = 0x8000;

/// The bounds a write to `kernel.pid_max` must keep (Linux `pid_max_min`,
/// `RESERVED_PIDS + 1`, and `pid_max_max`, `PID_MAX_LIMIT` on 64-bit).
const PID_MAX_MIN: u32 = 301;
const PID_MAX_LIMIT: u32 = 4 * 1024 * 1024;

/// `kernel.pid_max` (Linux `pid_max`).
static PID_MAX: AtomicU32 = AtomicU32::new(PID_MAX_DEFAULT);

/// Every `/proc/sys` file, sorted by path.
pub static SYSCTLS: &[Sysctl] = &[
    Sysctl { readable: true, path: "fs/nr_open", show: || line(crate::resource::SYSCTL_NR_OPEN), store: None },
    Sysctl { readable: true, path: "kernel/hostname", show: || line(crate::syscall::UTS_NODENAME), store: None },
    Sysctl { readable: true, path: "kernel/osrelease", show: || line(crate::syscall::UTS_RELEASE), store: None },
    Sysctl { readable: true, path: "kernel/ostype", show: || line(crate::syscall::UTS_SYSNAME), store: None },
    Sysctl {
        readable: true,
        path: "kernel/pid_max",
        show: || line(PID_MAX.load(Ordering::Relaxed)),
        store: Some(|t| {
            let v = parse_int(t)?;
            if !(PID_MAX_MIN..=PID_MAX_LIMIT).contains(&v) {
                return Err(Errno::EINVAL);
            }
            PID_MAX.store(v, Ordering::Relaxed);
            Ok(())
        }),
    },
    Sysctl { readable: true, path: "kernel/randomize_va_space", show: || line(0), store: None },
    Sysctl {
        readable: true,
        path: "kernel/shmall",
        show: || line(crate::ipc::shm::shmall()),
        store: Some(|t| parse_ulong(t).map(crate::ipc::shm::set_shmall)),
    },
    Sysctl {
        readable: true,
        path: "kernel/shmmax",
        show: || line(crate::ipc::shm::shmmax()),
        store: Some(|t| parse_ulong(t).map(crate::ipc::shm::set_shmmax)),
    },
    Sysctl {
        readable: true,
        path: "kernel/shmmni",
        show: || line(crate::ipc::shm::shmmni()),
        store: Some(|t| crate::ipc::shm::set_shmmni(u64::from(parse_int(t)?))),
    },
    Sysctl { readable: true, path: "kernel/tainted", show: || line(0), store: None },
    Sysctl { readable: true, path: "kernel/threads-max", show: || line(crate::resource::max_threads()), store: None },
    Sysctl {
        readable: true,
        path: "vm/admin_reserve_kbytes",
        show: || node_value(|p| overcommit(p).admin_reserve_kbytes()),
        store: Some(|t| set_node_ulong(t, |p, v| overcommit(p).set_admin_reserve_kbytes(v))),
    },
    Sysctl {
        readable: true,
        path: "vm/dirty_background_ratio",
        show: || line(dirty().background_ratio),
        store: Some(|t| {
            let v = parse_int(t)?;
            set_dirty(|d| d.set_background_ratio(v).map_err(|_| Errno::EINVAL))
        }),
    },
    Sysctl {
        readable: true,
        path: "vm/dirty_expire_centisecs",
        show: || line(dirty().expire_centisecs),
        store: Some(|t| {
            let v = parse_int(t)?;
            set_dirty(|d| {
                d.expire_centisecs = v;
                Ok(())
            })
        }),
    },
    Sysctl {
        readable: true,
        path: "vm/dirty_ratio",
        show: || line(dirty().ratio),
        store: Some(|t| {
            let v = parse_int(t)?;
            set_dirty(|d| d.set_ratio(v).map_err(|_| Errno::EINVAL))
        }),
    },
    Sysctl {
        readable: true,
        path: "vm/dirty_writeback_centisecs",
        show: || line(dirty().writeback_centisecs),
        store: Some(|t| {
            let v = parse_int(t)?;
            set_dirty(|d| {
                d.writeback_centisecs = v;
                Ok(())
            })
        }),
    },
    Sysctl {
        readable: false,
        path: "vm/drop_caches",
        show: String::new,
        store: Some(|t| {
            // Linux `proc_dointvec_minmax` over 1..=4: 1 the page cache, 2
            // slab (`drop_slab`: the shrinkers), 3 both, 4 quiet, each
            // counted. Ours drops both for any of them, and like Linux's
            // writes nothing back: dirty pages stay.
            let value = parse_int(t)?;
            if !(1..=4).contains(&value) {
                return Err(Errno::EINVAL);
            }
            let pgdat = crate::mm::pgdat();
            if value & 1 != 0 {
                pgdat.count_vm_event(mm::vmstat::VmEventItem::DropPagecache);
            }
            if value & 2 != 0 {
                pgdat.count_vm_event(mm::vmstat::VmEventItem::DropSlab);
            }
            crate::mm::drop_caches();
            Ok(())
        }),
    },
    Sysctl { readable: true, path: "vm/legacy_va_layout", show: || line(0), store: None },
    Sysctl {
        readable: true,
        path: "vm/max_map_count",
        show: || node_value(|p| overcommit(p).max_map_count() as u64),
        store: Some(|t| set_node_value(t, |p, v| overcommit(p).set_max_map_count(v))),
    },
    Sysctl {
        readable: true,
        path: "vm/min_free_kbytes",
        show: || node_value(|p| p.min_free_kbytes()),
        store: Some(|t| set_node_value(t, |p, v| p.set_min_free_kbytes(v))),
    },
    Sysctl { readable: true, path: "vm/mmap_min_addr", show: || line(mm::mmap::MMAP_MIN_ADDR), store: None },
    Sysctl {
        readable: true,
        path: "vm/overcommit_kbytes",
        show: || node_value(|p| overcommit(p).kbytes()),
        store: Some(|t| set_node_ulong(t, |p, v| overcommit(p).set_kbytes(v))),
    },
    Sysctl {
        readable: true,
        path: "vm/overcommit_memory",
        show: || node_value(|p| overcommit(p).policy() as u64),
        store: Some(|t| {
            // Linux `overcommit_policy_handler`: `proc_dointvec_minmax`
            // over 0..=2.
            let policy = mm::overcommit::OvercommitPolicy::from_value(u64::from(parse_int(t)?)).ok_or(Errno::EINVAL)?;
            overcommit(crate::mm::try_pgdat().ok_or(Errno::EINVAL)?).set_policy(policy);
            Ok(())
        }),
    },
    Sysctl {
        readable: true,
        path: "vm/overcommit_ratio",
        show: || node_value(|p| u64::from(overcommit(p).ratio())),
        store: Some(|t| set_node_value(t, |p, v| overcommit(p).set_ratio(v))),
    },
    Sysctl {
        readable: true,
        path: "vm/page-cluster",
        show: || node_value(|p| u64::from(p.page_cluster())),
        store: Some(|t| set_node_value(t, |p, v| p.set_page_cluster(v))),
    },
    Sysctl {
        readable: true,
        path: "vm/swappiness",
        show: || node_value(|p| u64::from(p.vm_swappiness())),
        store: Some(|t| set_node_value(t, |p, v| p.set_vm_swappiness(v))),
    },
    Sysctl {
        readable: true,
        path: "vm/user_reserve_kbytes",
        show: || node_value(|p| overcommit(p).user_reserve_kbytes()),
        store: Some(|t| set_node_ulong(t, |p, v| overcommit(p).set_user_reserve_kbytes(v))),
    },
    Sysctl {
        readable: true,
        path: "vm/watermark_scale_factor",
        show: || node_value(|p| p.watermark_scale_factor()),
        store: Some(|t| set_node_value(t, |p, v| p.set_watermark_scale_factor(v))),
    },
];

/// The debugfs files the mm has (Linux `mm/memory.c`'s
/// `fault_around_bytes`, 0644), by path below `/sys/kernel/debug/`.
pub static DEBUGFS: &[Sysctl] = &[Sysctl {
    readable: true,
    path: "fault_around_bytes",
    show: || line(mm::memory::fault_around_bytes()),
    store: Some(|t| mm::memory::set_fault_around_bytes(t.trim().parse::<u64>().map_err(|_| Errno::EINVAL)?)),
}];

/// The mm's sysfs files (Linux `mm/swap_state.c`'s `vma_ra_enabled`,
/// 0644), by path below `/sys/kernel/mm/`: `true` or `false`, set from
/// what `kstrtobool` takes.
pub static SYSFS_MM: &[Sysctl] = &[Sysctl {
    readable: true,
    path: "swap/vma_ra_enabled",
    show: || line(crate::mm::try_pgdat().is_some_and(|p| p.swap_vma_ra_enabled())),
    store: Some(|t| {
        let enabled = kstrtobool(t).ok_or(Errno::EINVAL)?;
        crate::mm::try_pgdat().ok_or(Errno::EINVAL)?.set_swap_vma_ra_enabled(enabled);
        Ok(())
    }),
}];

/// Linux `kstrtobool`: `e`, `y`, `t`, `1` or `on` for true, `d`, `n`,
/// `f`, `0` or `off` for false, either case, by their first characters.
fn kstrtobool(text: &str) -> Option<bool> {
    let bytes = text.as_bytes();
    match bytes.first()? {
        b'e' | b'E' | b'y' | b'Y' | b't' | b'T' | b'1' => Some(true),
        b'd' | b'D' | b'n' | b'N' | b'f' | b'F' | b'0' => Some(false),
        b'o' | b'O' => match bytes.get(1)? {
            b'n' | b'N' => Some(true),
            b'f' | b'F' => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// The sysctl, debugfs or mm sysfs file at absolute path `abs`
/// (`/proc/sys/...`, `/sys/kernel/debug/...`, `/sys/kernel/mm/...`), if
/// there is one.
pub fn lookup(abs: &str) -> Option<&'static Sysctl> {
    if let Some(rel) = abs.strip_prefix("/sys/kernel/debug/") {
        return DEBUGFS.iter().find(|s| s.path == rel);
    }
    if let Some(rel) = abs.strip_prefix("/sys/kernel/mm/") {
        return SYSFS_MM.iter().find(|s| s.path == rel);
    }
    let rel = abs.strip_prefix("/proc/sys/")?;
    SYSCTLS.iter().find(|s| s.path == rel)
}
