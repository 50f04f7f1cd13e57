//! `/proc/PID/{maps,smaps,smaps_rollup,pagemap}` (Linux
//! `fs/proc/task_mmu.c`): the address space's reports, made by
//! [`mm::task_mmu`] under the mmap lock held for reading.
//!
//! `pagemap` is read in pieces of at most a pte table's entries, the
//! lock taken for each (Linux `pagemap_read` walks `PMD_SIZE` at a time
//! and drops the lock between), so a large read does not hold off the
//! process's own faults for long. Frame numbers are shown to a reader
//! with `CAP_SYS_ADMIN` (Linux checks the opener's credentials,
//! `file_ns_capable`; here the reader's, who is the opener but for a
//! descriptor passed on).

#![forbid(unsafe_code)]

use alloc::sync::Arc;
use alloc::vec::Vec;

use uapi::errno::Errno;

use super::TryString;
use crate::sched::{Pid, Task};

/// One of the address-space reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// `maps`.
    Maps,
    /// `smaps`.
    Smaps,
    /// `smaps_rollup`.
    SmapsRollup,
}

/// The text of `report` for `task`'s address space (empty without one,
/// as Linux's for a kernel thread).
pub fn show(task: &Arc<Task>, report: Report) -> Result<Vec<u8>, Errno> {
    let Some(mm) = task.proc.mm() else { return Ok(Vec::new()) };
    let m = mm.mmap_read_lock();
    // A line per VMA, up to vm.max_map_count of them: the text grows
    // fallibly, and a failure is ENOMEM, not a panic.
    let mut text = TryString::default();
    match report {
        Report::Maps => m.show_maps(&mut text),
        Report::Smaps => m.show_smaps(&mut text),
        Report::SmapsRollup => m.show_smaps_rollup(&mut text),
    }
    .map_err(|_| Errno::ENOMEM)?;
    Ok(text.0.into_bytes())
}

/// Bytes of a pagemap entry (Linux `PM_ENTRY_BYTES`).
const PM_ENTRY_BYTES: usize = 8;

/// Entries made per hold of the mmap lock (Linux `PAGEMAP_WALK_SIZE`
/// over the page size).
const PAGEMAP_BATCH: usize = 512;

/// A read of `/proc/PID/pagemap` at byte `offset` (Linux `pagemap_read`):
/// EINVAL unless the offset and length are multiples of 8; the entry at
/// `offset` is that of virtual page `offset / 8`; nothing past the end of
/// user space, nor for a process without an address space.
pub fn pagemap_read(pid: Pid, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    if !offset.is_multiple_of(PM_ENTRY_BYTES as u64) || !buf.len().is_multiple_of(PM_ENTRY_BYTES) {
        return Err(Errno::EINVAL);
    }
    let Some(mm) = super::base::find_process(pid).and_then(|t| t.proc.mm()) else { return Ok(0) };
    let show_pfn = crate::cred::capable(uapi::capability::CAP_SYS_ADMIN);
    let mut vpfn = offset / PM_ENTRY_BYTES as u64;
    let mut done = 0;
    let mut entries = [0u64; PAGEMAP_BATCH];
    while done < buf.len() {
        let want = ((buf.len() - done) / PM_ENTRY_BYTES).min(PAGEMAP_BATCH);
        let n = mm.mmap_read_lock().pagemap_read(vpfn, &mut entries[..want], show_pfn);
        for (chunk, entry) in buf[done..].as_chunks_mut::<PM_ENTRY_BYTES>().0.iter_mut().zip(&entries[..n]) {
            chunk.copy_from_slice(&entry.to_ne_bytes());
        }
        done += n * PM_ENTRY_BYTES;
        if n < want {
            break;
        }
        vpfn += n as u64;
    }
    Ok(done)
}
