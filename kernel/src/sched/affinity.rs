//! CPU affinity (Linux `kernel/sched/core.c`'s `sched_getaffinity` and
//! `sched_setaffinity`).
//!
//! Tasks do not migrate (see the scheduler's module doc): a task runs on
//! the CPU it was created on, and new tasks go to the least loaded online
//! CPU. So every task may run on every online CPU, which is the mask
//! `sched_getaffinity` reports (programs size their thread pools from
//! it: musl's `sysconf(_SC_NPROCESSORS_ONLN)` counts its bits). A new
//! mask is accepted when it contains the CPU the task runs on, where it
//! stays; a mask that would move it is refused with EINVAL, the error
//! Linux gives a mask with no usable CPU, rather than accepted and
//! ignored. The mask is not remembered: a child is placed as any new
//! task.
//!
//! The kernel's mask is one `unsigned long` ([`crate::arch::x86_64::acpi::MAX_CPUS`]
//! CPUs at most), so `sched_getaffinity` returns 8, the size Linux
//! returns for `nr_cpu_ids` up to 64 (`cpumask_size()`).

#![forbid(unsafe_code)]

use uapi::errno::Errno;

use crate::arch::x86_64::smp;
use crate::arch::x86_64::uaccess::{copy_from_user, copy_to_user};
use crate::sched::{self, Task};

/// Bytes of the kernel's CPU mask (Linux `cpumask_size()`).
const CPUMASK_SIZE: u64 = 8;

/// The task `pid` names (0: the caller), or ESRCH.
fn find(pid: i32) -> Result<alloc::sync::Arc<Task>, Errno> {
    match pid {
        0 => Ok(sched::current()),
        p if p > 0 => sched::find_task_by_pid(p as u32).ok_or(Errno::ESRCH),
        _ => Err(Errno::ESRCH),
    }
}

/// Linux `sched_getaffinity`: EINVAL for a buffer too small for the
/// mask's `nr_cpu_ids` bits or not a whole number of longs; stores the
/// online CPUs and returns the bytes stored.
pub fn sys_sched_getaffinity(pid: i32, len: u64, user_mask: u64) -> Result<u64, Errno> {
    if len.saturating_mul(8) < u64::from(smp::nr_cpu_ids()) || !len.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    find(pid)?;
    let mask = smp::online_mask().to_ne_bytes();
    let n = len.min(CPUMASK_SIZE);
    copy_to_user(user_mask, &mask[..n as usize]).map_err(|_| Errno::EFAULT)?;
    Ok(n)
}

/// Linux `sched_setaffinity`: reads up to 8 bytes of mask (a shorter one
/// is zero-extended); EPERM for another user's task without
/// `CAP_SYS_NICE`; EINVAL unless the mask holds the CPU the task runs on
/// (see the module doc).
pub fn sys_sched_setaffinity(pid: i32, len: u64, user_mask: u64) -> Result<u64, Errno> {
    let mut bytes = [0u8; CPUMASK_SIZE as usize];
    let n = len.min(CPUMASK_SIZE) as usize;
    copy_from_user(&mut bytes[..n], user_mask).map_err(|_| Errno::EFAULT)?;
    let mask = u64::from_ne_bytes(bytes);
    let task = find(pid)?;
    let me = sched::current();
    if !alloc::sync::Arc::ptr_eq(&task.proc.group, &me.proc.group) {
        let cred = *me.proc.cred.lock();
        let tcred = *task.proc.cred.lock();
        // Linux `check_same_owner`.
        if cred.euid != tcred.euid && cred.euid != tcred.uid && !cred.capable(uapi::capability::CAP_SYS_NICE) {
            return Err(Errno::EPERM);
        }
    }
    if mask & smp::online_mask() & 1u64.checked_shl(task.cpu()).unwrap_or(0) == 0 {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}
