//! Fast user-space mutexes (Linux `kernel/futex/`: `syscalls.c`,
//! `core.c`, `waitwake.c`, `requeue.c`): `futex(2)` lets a thread sleep
//! until a 32-bit word in its memory changes, and another wake it, so that
//! locks and condition variables take the kernel only when contended.
//!
//! - [`sys_futex`] decodes the operation and its timeout (this file,
//!   Linux `syscalls.c`).
//! - [`core`]: keys, the hash buckets and their chains, reading the word
//!   under a bucket lock, unqueueing (Linux `core.c`). Which key a word
//!   has is the mm's question, answered in [`mm::futex`].
//! - [`waitwake`]: `FUTEX_WAIT`, `FUTEX_WAIT_BITSET`, `FUTEX_WAKE`,
//!   `FUTEX_WAKE_BITSET` (Linux `waitwake.c`).
//! - [`requeue`]: `FUTEX_REQUEUE`, `FUTEX_CMP_REQUEUE` (Linux
//!   `requeue.c`).
//! - [`wake_clear_child_tid`]: the wake-up of a thread's exit (Linux
//!   `mm_release`), which `pthread_join` waits for.
//!
//! # Locks and sleeping
//!
//! Lock order: the mmap lock (for reading, only to compute a shared key,
//! dropped before any bucket lock) -> bucket locks, two at once only in a
//! requeue and then the lower bucket first (Linux `double_lock_hb`) ->
//! run-queue lock (`set_current_state` and the timer's sleeper list take
//! none; wakers wake after dropping the bucket lock, Linux's wake queue).
//!
//! A bucket lock is a [`SpinLock`](crate::sync::SpinLock): process
//! context only (system calls; no interrupt handler takes one), never held
//! across a sleep, nothing allocated or freed under it. The user word is
//! read under it with page faults disabled
//! ([`pagefault_disable`](crate::arch::x86_64::uaccess::pagefault_disable)):
//! a fault fails the read, and the caller drops the lock, faults the page
//! in (which may sleep) and retries, Linux's retry dance.
//!
//! A waiter sets its state to interruptible sleep under the bucket lock
//! as it queues itself, then sleeps ([`wait::schedule_hrtimeout`](crate::sched::wait::schedule_hrtimeout)
//! with the timeout on the timer's sleeper list): a waker that takes it
//! off the chain and wakes it after that is not lost, however the two
//! interleave.
//!
//! # Differences from Linux
//!
//! - Not implemented (`ENOSYS`, logged once): `FUTEX_WAKE_OP` (glibc's
//!   condition variables use it; musl's do not), the priority-inheritance
//!   operations (`FUTEX_LOCK_PI`, `FUTEX_LOCK_PI2`, `FUTEX_UNLOCK_PI`,
//!   `FUTEX_TRYLOCK_PI`, `FUTEX_WAIT_REQUEUE_PI`, `FUTEX_CMP_REQUEUE_PI`,
//!   which musl uses only for `PTHREAD_PRIO_INHERIT` mutexes),
//!   `futex_waitv` and the futex2 calls, robust lists
//!   (`set_robust_list`).
//! - A signal ends a wait with `EINTR` even under an `SA_RESTART`
//!   handler (no system-call restart here; Linux restarts the wait).
//! - A `FUTEX_CLOCK_REALTIME` deadline is turned into a monotonic one when
//!   the wait starts: a later change of the wall clock does not move it.
//! - Waiters are woken oldest first; Linux orders them by priority first.
//! - A wait allocates its waiter and its chain entry (two small
//!   `GFP_KERNEL` allocations, before any lock); Linux keeps both on the
//!   waiter's stack.
//! - One hash table of a fixed size for everyone; Linux 6.16 and later
//!   also give a process private buckets for its private futexes.
//! - Keys: see [`mm::futex`].

#![forbid(unsafe_code)]

pub mod core;
pub mod requeue;
pub mod waitwake;

use ::core::sync::atomic::{AtomicBool, Ordering};

use uapi::errno::Errno;
use uapi::futex::*;
use uapi::time::Timespec;

use crate::arch::x86_64::tsc;
use crate::arch::x86_64::uaccess::read_user;

/// Nanoseconds in a second (Linux `NSEC_PER_SEC`).
const NSEC_PER_SEC: u64 = 1_000_000_000;

/// Whether operation `cmd` reads a timeout from its fourth argument
/// (Linux `futex_cmd_has_timeout`); the requeue operations read a count
/// there instead.
fn futex_cmd_has_timeout(cmd: u32) -> bool {
    matches!(cmd, FUTEX_WAIT | FUTEX_LOCK_PI | FUTEX_LOCK_PI2 | FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI)
}

/// The monotonic-clock deadline of a wait's timeout `ts` (Linux
/// `futex_init_timeout`): relative for `FUTEX_WAIT`, absolute otherwise,
/// on `CLOCK_REALTIME` with `FUTEX_CLOCK_REALTIME` (converted at the
/// start, see the module doc), else on `CLOCK_MONOTONIC`. `EINVAL` for a
/// negative time or nanoseconds outside a second (Linux
/// `timespec64_valid`). Sums saturate, as Linux's `ktime_add_safe`.
fn futex_init_timeout(cmd: u32, op: u32, ts: Timespec) -> Result<u64, Errno> {
    let (Ok(sec), Ok(nsec)) = (u64::try_from(ts.tv_sec), u64::try_from(ts.tv_nsec)) else {
        return Err(Errno::EINVAL);
    };
    if nsec >= NSEC_PER_SEC {
        return Err(Errno::EINVAL);
    }
    let t = sec.saturating_mul(NSEC_PER_SEC).saturating_add(nsec);
    let now = tsc::now_ns();
    Ok(if cmd == FUTEX_WAIT {
        now.saturating_add(t)
    } else if op & FUTEX_CLOCK_REALTIME != 0 {
        let realtime_offset = crate::drivers::rtc::ktime_get_real_ns().saturating_sub(now);
        t.saturating_sub(realtime_offset)
    } else {
        t
    })
}

/// The `futex` system call (Linux `SYSCALL_DEFINE6(futex)` and
/// `do_futex`): `op` is the operation and its flags, `utime` a timeout
/// pointer for the waits and a count (`val2`) for the requeues.
///
/// Order of checks, as Linux: the timeout is read (`EFAULT`) and checked
/// (`EINVAL`) first, then `FUTEX_CLOCK_REALTIME` on an operation other
/// than `FUTEX_WAIT_BITSET` (and the PI waits) gives `ENOSYS`, then the
/// operation runs; an unknown or unimplemented one gives `ENOSYS`.
pub fn sys_futex(uaddr: u64, op: u32, val: u32, utime: u64, uaddr2: u64, val3: u32) -> Result<u64, Errno> {
    let cmd = op & FUTEX_CMD_MASK;
    let deadline_ns = if utime != 0 && futex_cmd_has_timeout(cmd) {
        let ts: Timespec = read_user(utime).map_err(|_| Errno::EFAULT)?;
        Some(futex_init_timeout(cmd, op, ts)?)
    } else {
        None
    };
    let shared = op & FUTEX_PRIVATE_FLAG == 0;
    if op & FUTEX_CLOCK_REALTIME != 0 && !matches!(cmd, FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2) {
        return Err(Errno::ENOSYS);
    }
    // Linux passes the counts on as `int`s.
    let (nr_wake, nr_requeue) = (val as i32, utime as u32 as i32);
    match cmd {
        FUTEX_WAIT => waitwake::futex_wait(uaddr, shared, val, deadline_ns, FUTEX_BITSET_MATCH_ANY),
        FUTEX_WAIT_BITSET => waitwake::futex_wait(uaddr, shared, val, deadline_ns, val3),
        FUTEX_WAKE => waitwake::futex_wake(uaddr, shared, nr_wake, FUTEX_BITSET_MATCH_ANY),
        FUTEX_WAKE_BITSET => waitwake::futex_wake(uaddr, shared, nr_wake, val3),
        FUTEX_REQUEUE => requeue::futex_requeue(uaddr, uaddr2, shared, nr_wake, nr_requeue, None),
        FUTEX_CMP_REQUEUE => requeue::futex_requeue(uaddr, uaddr2, shared, nr_wake, nr_requeue, Some(val3)),
        _ => {
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                log::warn!("operation {cmd} unknown or not implemented (FUTEX_WAKE_OP and the PI operations are not)");
            }
            Err(Errno::ENOSYS)
        }
    }
}

/// Wakes one waiter on a thread's `clear_child_tid` word after 0 was
/// stored there at its exit (Linux `mm_release`'s `do_futex(FUTEX_WAKE,
/// 1)`): a shared wake, as the waits on that word are shared (glibc's
/// `pthread_join` waits on the thread id; musl's points the word at its
/// thread-list lock, which `pthread_join`'s `__tl_sync` waits on). A bad
/// address is ignored, as Linux ignores the result.
pub fn wake_clear_child_tid(uaddr: u64) {
    let _ = waitwake::futex_wake(uaddr, true, 1, FUTEX_BITSET_MATCH_ANY);
}
