//! Moving waiters from one futex word to another (Linux
//! `kernel/futex/requeue.c`'s `futex_requeue` for plain futexes; the
//! priority-inheritance requeue is not implemented).

#![forbid(unsafe_code)]

use mm::futex::FutexAddr;
use uapi::errno::Errno;

use super::core::{
    double_lock_hb, fault_in_word, futex_get_value_locked, futex_hash, futex_wake_mark, get_futex_key, wake_up_q,
};

/// `FUTEX_REQUEUE` and, with `cmpval`, `FUTEX_CMP_REQUEUE` (Linux
/// `futex_requeue`): wakes up to `nr_wake` waiters on the word at
/// `uaddr1`, then moves up to `nr_requeue` more to the word at `uaddr2`,
/// oldest first; with `cmpval`, only if the word at `uaddr1` holds it,
/// read under both bucket locks. Returns the number woken plus the
/// number moved; a word requeued onto itself counts its waiters.
///
/// Errors: `EINVAL` for a negative count or an unaligned word; `EFAULT`
/// for a word that cannot be read (or, shared, is in no mapping);
/// `EAGAIN` if the word does not hold `cmpval`.
pub fn futex_requeue(
    uaddr1: u64,
    uaddr2: u64,
    shared: bool,
    nr_wake: i32,
    nr_requeue: i32,
    cmpval: Option<u32>,
) -> Result<u64, Errno> {
    let (Ok(nr_wake), Ok(nr_requeue)) = (u32::try_from(nr_wake), u32::try_from(nr_requeue)) else {
        return Err(Errno::EINVAL);
    };
    let uaddr1 = FutexAddr::new(uaddr1)?;
    'retry: loop {
        let key1 = get_futex_key(uaddr1, shared)?;
        let key2 = get_futex_key(FutexAddr::new(uaddr2)?, shared)?;
        let (b1, b2) = (futex_hash(&key1), futex_hash(&key2));
        loop {
            let (mut chain1, mut chain2) = double_lock_hb(b1, b2);
            if let Some(cmpval) = cmpval {
                match futex_get_value_locked(uaddr1) {
                    Ok(curval) if curval != cmpval => return Err(Errno::EAGAIN),
                    Ok(_) => {}
                    Err(_) => {
                        drop((chain1, chain2));
                        fault_in_word(uaddr1)?;
                        if shared {
                            continue 'retry;
                        }
                        continue;
                    }
                }
            }
            let (woken, count) = chain1
                .requeue(chain2.as_deref_mut(), &key1, &key2, nr_wake, nr_requeue, |waiter| waiter.set_queued_on(b2));
            futex_wake_mark(&woken);
            drop((chain1, chain2));
            wake_up_q(woken);
            return Ok(u64::from(count));
        }
    }
}
