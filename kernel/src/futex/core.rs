//! The futex hash table and its queues (Linux `kernel/futex/core.c`):
//! the keys of user words as the running task sees them
//! ([`get_futex_key`]), reading a word under a bucket lock
//! ([`futex_get_value_locked`]), the buckets and their chains, and taking
//! a waiter off its chain ([`futex_unqueue`]).
//!
//! A [`FutexChain`] is one bucket's list of queued waiters (Linux
//! `futex_hash_bucket.chain`). It is FIFO: Linux's chain is a priority
//! list, FIFO among waiters of one priority, and our tasks have one
//! priority. An entry ([`FutexQNode`], Linux `struct futex_q`) is
//! allocated by the waiter before it takes the bucket lock; queueing,
//! waking, requeueing and unqueueing only relink entries, so nothing is
//! allocated or freed under the lock (woken entries are handed back in a
//! [`FutexWakeQ`], freed after the lock is dropped).
//!
//! Locking: see the module doc of [`crate::futex`].

#![forbid(unsafe_code)]

use alloc::collections::LinkedList;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};

use mm::futex::{FutexAddr, FutexKey};
use uapi::errno::Errno;

use crate::arch::x86_64::uaccess::{self, Efault, read_user};
use crate::sched::{self, Task};
use crate::sync::{SpinLock, SpinLockGuard};

/// A waiter's entry (Linux `struct futex_q`): the word it waits on, the
/// bits a wake-up must share with its mask, and who it is (the kernel's
/// handle to wake it).
#[derive(Debug)]
pub struct FutexQ<W> {
    /// The word; a requeue changes it.
    pub key: FutexKey,
    /// `FUTEX_WAIT_BITSET`'s mask (all bits for `FUTEX_WAIT`).
    pub bitset: u32,
    /// Who waits.
    pub waiter: W,
}

/// One entry, allocated before the bucket lock is taken and then only
/// relinked, never reallocated.
#[derive(Debug)]
pub struct FutexQNode<W>(LinkedList<FutexQ<W>>);

impl<W> FutexQNode<W> {
    /// Allocates the entry `q`.
    pub fn new(q: FutexQ<W>) -> Self {
        let mut list = LinkedList::new();
        list.push_back(q);
        FutexQNode(list)
    }
}

/// Entries taken off a chain to be woken (Linux's `wake_q`): the caller
/// wakes their waiters after dropping the bucket lock, then frees them.
#[derive(Debug)]
pub struct FutexWakeQ<W>(LinkedList<FutexQ<W>>);

impl<W> FutexWakeQ<W> {
    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Their waiters, oldest first.
    pub fn waiters(&self) -> impl Iterator<Item = &W> {
        self.0.iter().map(|q| &q.waiter)
    }
}

/// The waiters of one hash bucket (Linux `futex_hash_bucket.chain`),
/// oldest first. Its user holds the bucket's lock around every call.
#[derive(Debug)]
pub struct FutexChain<W> {
    list: LinkedList<FutexQ<W>>,
}

impl<W> Default for FutexChain<W> {
    fn default() -> Self {
        Self::new()
    }
}

/// Takes the first entry off `list` as a one-entry list: relinks, neither
/// allocates nor frees.
fn pop_front_node<T>(list: &mut LinkedList<T>) -> Option<LinkedList<T>> {
    if list.is_empty() {
        return None;
    }
    let rest = list.split_off(1);
    Some(core::mem::replace(list, rest))
}

impl<W> FutexChain<W> {
    /// No waiters.
    pub const fn new() -> Self {
        FutexChain { list: LinkedList::new() }
    }

    /// Whether no waiter is queued.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Waiters queued.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The queued entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &FutexQ<W>> {
        self.list.iter()
    }

    /// Queues `node` behind the waiters already there (Linux
    /// `__futex_queue`).
    pub fn queue(&mut self, mut node: FutexQNode<W>) {
        self.list.append(&mut node.0);
    }

    /// Takes the oldest waiters on `key` whose mask shares a bit with
    /// `bitset`, stopping once it has `nr_wake`, but taking one at least
    /// if there is one (Linux `futex_wake`'s `++ret >= nr_wake`, `nr_wake`
    /// an `int`: 0 and negative counts wake one).
    pub fn wake(&mut self, key: &FutexKey, bitset: u32, nr_wake: i32) -> FutexWakeQ<W> {
        let mut kept = LinkedList::new();
        let mut woken = LinkedList::new();
        let mut count: i64 = 0;
        while let Some(mut node) = pop_front_node(&mut self.list) {
            let wanted = node.front().is_some_and(|q| q.key == *key && q.bitset & bitset != 0);
            if !wanted {
                kept.append(&mut node);
                continue;
            }
            woken.append(&mut node);
            count += 1;
            if count >= i64::from(nr_wake) {
                break;
            }
        }
        kept.append(&mut self.list);
        self.list = kept;
        FutexWakeQ(woken)
    }

    /// Wakes up to `nr_wake` of the waiters on `key1` and moves up to
    /// `nr_requeue` more to `key2` (Linux `futex_requeue` for plain
    /// futexes): into `other`'s chain at its tail, or, with `None` (both
    /// keys hash to this bucket), in place. `moved` is called for each
    /// waiter moved, under both locks. Returns the waiters to wake and
    /// the number woken plus moved. Both counts are at least 0 (the
    /// system call refuses negative ones).
    pub fn requeue(
        &mut self,
        mut other: Option<&mut FutexChain<W>>,
        key1: &FutexKey,
        key2: &FutexKey,
        nr_wake: u32,
        nr_requeue: u32,
        mut moved: impl FnMut(&W),
    ) -> (FutexWakeQ<W>, u32) {
        let mut kept = LinkedList::new();
        let mut woken = LinkedList::new();
        let mut task_count: u32 = 0;
        while let Some(mut node) = pop_front_node(&mut self.list) {
            if i64::from(task_count) - i64::from(nr_wake) >= i64::from(nr_requeue) {
                kept.append(&mut node);
                break;
            }
            let Some(q) = node.front_mut() else { continue };
            if q.key != *key1 {
                kept.append(&mut node);
                continue;
            }
            task_count += 1;
            if task_count <= nr_wake {
                woken.append(&mut node);
                continue;
            }
            q.key = *key2;
            moved(&q.waiter);
            match other.as_deref_mut() {
                Some(chain) => chain.list.append(&mut node),
                None => kept.append(&mut node),
            }
        }
        kept.append(&mut self.list);
        self.list = kept;
        (FutexWakeQ(woken), task_count)
    }

    /// Takes the entry of the waiter `is_me` picks off the chain, if it is
    /// still queued here (Linux `futex_unqueue`'s `__futex_unqueue`).
    pub fn unqueue(&mut self, mut is_me: impl FnMut(&W) -> bool) -> Option<FutexQNode<W>> {
        let at = self.list.iter().position(|q| is_me(&q.waiter))?;
        let mut tail = self.list.split_off(at);
        let mine = pop_front_node(&mut tail);
        self.list.append(&mut tail);
        mine.map(FutexQNode)
    }
}

/// A sleeping waiter as the chains hold it (the `task` and `lock_ptr` of
/// Linux's `struct futex_q`).
pub struct FutexWaiter {
    /// Who sleeps.
    task: Arc<Task>,
    /// The bucket whose chain holds the waiter's entry, or [`NOT_QUEUED`]
    /// once a waker took it off (Linux `q->lock_ptr`, NULL once woken).
    /// Written under that bucket's lock (and, for a requeue, the other
    /// bucket's); read without it by the waiter, which then takes the lock
    /// it names and reads it again ([`futex_unqueue`]).
    bucket: AtomicUsize,
}

/// [`FutexWaiter::bucket`] of a waiter on no chain.
const NOT_QUEUED: usize = usize::MAX;

impl FutexWaiter {
    /// The running task, on no chain yet.
    pub fn current() -> Arc<Self> {
        Arc::new(FutexWaiter { task: sched::current(), bucket: AtomicUsize::new(NOT_QUEUED) })
    }

    /// Records that the entry is on bucket `bucket`'s chain (under that
    /// bucket's lock).
    pub fn set_queued_on(&self, bucket: usize) {
        self.bucket.store(bucket, Ordering::Release);
    }
}

/// The chains' entries.
pub type Chain = FutexChain<Arc<FutexWaiter>>;

/// log2 of the number of buckets. Linux sizes its table at boot, 256
/// buckets per possible CPU rounded up to a power of two; ours is fixed at
/// Linux's size for 4 CPUs, the most our tests boot.
const FUTEX_HASH_BITS: u32 = 10;

/// The hash buckets (Linux `futex_queues`), each a chain under its lock
/// (Linux `struct futex_hash_bucket`).
static FUTEX_QUEUES: [SpinLock<Chain>; 1 << FUTEX_HASH_BITS] =
    [const { SpinLock::new(FutexChain::new()) }; 1 << FUTEX_HASH_BITS];

/// The bucket of `key` (Linux `futex_hash`).
pub fn futex_hash(key: &FutexKey) -> usize {
    (key.hash() >> (u64::BITS - FUTEX_HASH_BITS)) as usize
}

/// Takes bucket `bucket`'s lock (Linux `futex_q_lock`'s `spin_lock`).
pub fn lock_bucket(bucket: usize) -> SpinLockGuard<'static, Chain> {
    FUTEX_QUEUES[bucket % FUTEX_QUEUES.len()].lock()
}

/// Takes the locks of buckets `b1` and `b2`, the lower first, one lock if
/// they are the same (Linux `double_lock_hb`). Gives `b1`'s chain, and
/// `b2`'s if it is another.
pub fn double_lock_hb(b1: usize, b2: usize) -> (SpinLockGuard<'static, Chain>, Option<SpinLockGuard<'static, Chain>>) {
    if b1 == b2 {
        (lock_bucket(b1), None)
    } else if b1 < b2 {
        let first = lock_bucket(b1);
        (first, Some(lock_bucket(b2)))
    } else {
        let second = lock_bucket(b2);
        (lock_bucket(b1), Some(second))
    }
}

/// The key of the word at `uaddr` in the running task's address space
/// (Linux `get_futex_key`; [`mm::futex`] says which key each mapping
/// gives). A shared key needs the VMA: the mmap lock is taken for reading,
/// so this may sleep and is called with no bucket lock held. Its address
/// space is named by the address of its `mm`, alive while a waiter on it
/// sleeps (the waiter's task holds it).
pub fn get_futex_key(uaddr: FutexAddr, shared: bool) -> Result<FutexKey, Errno> {
    let mm = sched::current().proc.mm().ok_or(Errno::EFAULT)?;
    let mm_id = Arc::as_ptr(&mm) as u64;
    if !shared {
        return Ok(FutexKey::private(mm_id, uaddr));
    }
    let vmas = mm.mmap_read_lock();
    let at = mm::VirtAddr::new(uaddr.as_u64()).ok_or(Errno::EFAULT)?;
    let vma = vmas.vmas().vma_lookup(at).map(mm::vma::Vma::desc);
    FutexKey::shared(mm_id, uaddr, vma.as_ref())
}

/// Reads the word at `uaddr` under a bucket lock, where a fault cannot be
/// resolved (Linux `futex_get_value_locked`): a page not present gives
/// [`Efault`], and the caller drops the lock, faults it in with
/// [`fault_in_word`] and retries.
pub fn futex_get_value_locked(uaddr: FutexAddr) -> Result<u32, Efault> {
    let _nofault = uaccess::pagefault_disable();
    read_user::<u32>(uaddr.as_u64())
}

/// Faults the word at `uaddr` in, no lock held (Linux's `get_user` in the
/// retry path of `futex_wait_setup` and `futex_requeue`): `EFAULT` if it
/// cannot be read at all.
pub fn fault_in_word(uaddr: FutexAddr) -> Result<(), Errno> {
    read_user::<u32>(uaddr.as_u64()).map(|_| ()).map_err(|Efault| Errno::EFAULT)
}

/// Marks the taken waiters off their chains; under the bucket lock they
/// were taken under.
pub fn futex_wake_mark(woken: &FutexWakeQ<Arc<FutexWaiter>>) {
    for waiter in woken.waiters() {
        waiter.bucket.store(NOT_QUEUED, Ordering::Release);
    }
}

/// Wakes the taken waiters after the bucket lock is dropped (Linux
/// `wake_up_q`) and frees their entries; gives how many there were. A
/// waiter that stopped waiting meanwhile (its timeout or a signal) gets a
/// wake-up it does not need, as with Linux's wake queue: every sleep
/// re-checks its condition.
pub fn wake_up_q(woken: FutexWakeQ<Arc<FutexWaiter>>) -> u64 {
    for waiter in woken.waiters() {
        sched::wake_up_process(&waiter.task);
    }
    woken.len() as u64
}

/// Takes `waiter`'s entry off the chain it is on, if a waker has not
/// (Linux `futex_unqueue`): true if it was still queued (the wait ended by
/// timeout, signal or a spurious wake-up), false if it was woken. The
/// bucket may change under a requeue between reading it and locking it,
/// so it is read again under the lock.
pub fn futex_unqueue(waiter: &Arc<FutexWaiter>) -> bool {
    loop {
        let bucket = waiter.bucket.load(Ordering::Acquire);
        if bucket == NOT_QUEUED {
            return false;
        }
        let mut chain = lock_bucket(bucket);
        if waiter.bucket.load(Ordering::Acquire) != bucket {
            continue;
        }
        let mine = chain.unqueue(|w| Arc::ptr_eq(w, waiter));
        waiter.bucket.store(NOT_QUEUED, Ordering::Release);
        drop(chain);
        drop(mine);
        return true;
    }
}
