//! The console's reports, each in the format of the Linux file it is
//! named after (`mm/vmstat.c`'s /proc/buddyinfo, pagetypeinfo, zoneinfo and
//! vmstat, `fs/proc/meminfo.c`, `mm/slab_common.c`'s /proc/slabinfo,
//! `mm/vmalloc.c`'s /proc/vmallocinfo, `fs/proc/task_mmu.c`'s
//! /proc/PID/maps, `mm/memblock.c`'s memblock_dump_all), plus `ps` and the
//! pageblock map. The texts themselves are built by the `mm` crate, where
//! host tests check them byte for byte; this module picks the data.

#![forbid(unsafe_code)]

use alloc::string::String;
use core::fmt::Write as _;

use mm::kmemmap::Kmemmap;
use mm::vmstat::{Buddyinfo, Pagetypeinfo, Vmstat};

use super::{CmdError, Flow, Shell};
use crate::sched;

/// Blocks per row of `kmemmap` (128 MiB of memory per row).
pub const KMEMMAP_PER_ROW: u64 = 64;

type Res = Result<Flow, CmdError>;

fn done() -> Res {
    Ok(Flow::Continue)
}

/// /proc/meminfo.
pub fn meminfo(_: &mut Shell, _: &[&str], out: &mut String) -> Res {
    let _ = write!(out, "{}", crate::mm::meminfo());
    done()
}

/// /proc/swaps.
pub fn swaps(_: &mut Shell, _: &[&str], out: &mut String) -> Res {
    let _ = write!(out, "{}", crate::swapfile::ProcSwaps);
    done()
}

/// /proc/buddyinfo.
pub fn buddyinfo(_: &mut Shell, _: &[&str], out: &mut String) -> Res {
    let _ = write!(out, "{}", Buddyinfo(crate::mm::pgdat()));
    done()
}

/// /proc/pagetypeinfo.
pub fn pagetypeinfo(_: &mut Shell, _: &[&str], out: &mut String) -> Res {
    let _ = write!(out, "{}", Pagetypeinfo(crate::mm::pgdat()));
    done()
}

/// /proc/zoneinfo.
pub fn zoneinfo(_: &mut Shell, _: &[&str], out: &mut String) -> Res {
    let _ = write!(out, "{}", mm::vmstat::Zoneinfo(crate::mm::pgdat()));
    done()
}

/// /proc/slabinfo.
pub fn slabinfo(_: &mut Shell, _: &[&str], out: &mut String) -> Res {
    let slab = crate::slab::slab().ok_or(CmdError::Unavailable("the slab allocator is not up"))?;
    let _ = write!(out, "{}", mm::slab_common::Slabinfo(slab));
    done()
}

/// /proc/vmstat.
pub fn vmstat(_: &mut Shell, _: &[&str], out: &mut String) -> Res {
    let _ = write!(out, "{}", Vmstat(crate::mm::pgdat()));
    done()
}

/// /proc/vmallocinfo.
pub fn vmallocinfo(_: &mut Shell, _: &[&str], out: &mut String) -> Res {
    let vm = crate::vmalloc::vm_if_ready().ok_or(CmdError::Unavailable("vmalloc is not up"))?;
    let _ = vm.vmallocinfo(out);
    done()
}

/// memblock (Linux `memblock_dump_all`, as `memblock=debug`
/// prints it).
pub fn memblock(_: &mut Shell, _: &[&str], out: &mut String) -> Res {
    let memblock = crate::mm::memblock().ok_or(CmdError::Unavailable("memblock was not kept"))?;
    let _ = write!(out, "{}", memblock.dump());
    done()
}

/// The pageblock map, per-cpu lists drained first so their pages count
/// as free.
pub fn kmemmap(_: &mut Shell, _: &[&str], out: &mut String) -> Res {
    let memblock = crate::mm::memblock().ok_or(CmdError::Unavailable("memblock was not kept"))?;
    let pgdat = crate::mm::pgdat();
    pgdat.lru_add_drain_all();
    pgdat.drain_all_pages();
    let _ = write!(out, "{}", Kmemmap { pgdat, memblock: &memblock, per_row: KMEMMAP_PER_ROW });
    done()
}

/// `ps`: like `ps -eo pid,ppid,stat,vsz,rss,comm` (sizes in KiB); kernel
/// threads in brackets and unreaped processes as `<defunct>`, as `ps`
/// shows them. The idle tasks (pid 0) are left
/// out, as Linux's /proc leaves them out, and so are threads other than
/// a process's first (`ps` without `-L`).
pub fn ps(_: &mut Shell, _: &[&str], out: &mut String) -> Res {
    let mut tasks = alloc::vec::Vec::new();
    sched::for_each_task(|t| {
        if t.pid != 0 && t.pid == t.proc.tgid() {
            tasks.push(t.clone());
        }
    });
    tasks.sort_by_key(|t| t.pid);
    let _ = writeln!(out, "{:>7} {:>7} S {:>8} {:>8} COMMAND", "PID", "PPID", "VSZ", "RSS");
    for task in &tasks {
        let ppid = task.proc.group.parent.lock().upgrade().map_or(0, |p| p.tgid);
        let zombie = task.proc.group.zombie.load(core::sync::atomic::Ordering::Acquire);
        let state = if zombie { 'Z' } else { task.state().letter() };
        let (vsz, rss, user) = match task.proc.mm() {
            Some(mm) => {
                let mm = mm.mmap_read_lock();
                (mm.total_vm() * 4, mm.rss_pages() * 4, true)
            }
            None => (0, 0, false),
        };
        let comm = task.comm();
        let _ = if user {
            writeln!(out, "{:>7} {:>7} {state} {vsz:>8} {rss:>8} {comm}", task.pid, ppid)
        } else if zombie {
            // Its address space is gone already; procps says so.
            writeln!(out, "{:>7} {:>7} {state} {vsz:>8} {rss:>8} {comm} <defunct>", task.pid, ppid)
        } else {
            writeln!(out, "{:>7} {:>7} {state} {vsz:>8} {rss:>8} [{comm}]", task.pid, ppid)
        };
    }
    done()
}

/// `maps PID`: /proc/PID/maps.
pub fn maps(_: &mut Shell, args: &[&str], out: &mut String) -> Res {
    let [pid] = args else { return Err(CmdError::Usage("maps PID")) };
    let pid: u32 = pid.parse().map_err(|_| CmdError::BadNumber(String::from(*pid)))?;
    let task = sched::find_task_by_pid(pid).ok_or(CmdError::NoSuchTask(pid))?;
    let mm = task.proc.mm().ok_or(CmdError::NoMm(pid))?;
    let _ = mm.mmap_read_lock().show_maps(out);
    done()
}

/// `lspci -nn`: one line per PCI function.
pub fn lspci(_: &mut Shell, _: &[&str], out: &mut String) -> Res {
    for dev in crate::drivers::pci::devices() {
        let _ = writeln!(out, "{}", crate::drivers::pci::LspciLine(dev));
    }
    done()
}

/// /proc/diskstats.
pub fn diskstats(_: &mut Shell, _: &[&str], out: &mut String) -> Res {
    for disk in crate::block::disks() {
        let _ = writeln!(out, "{}", disk.diskstats_line());
    }
    done()
}
