//! Futexes (kernel/src/futex, mm/src/futex.rs): the user-space test
//! (tests/user/futex_test.c, which also passes on Linux) on one CPU and on
//! two, and the hash chains' bookkeeping: waking, requeueing and
//! unqueueing take the waiters, in the order and numbers, that Linux's
//! walks take, checked case by case and against a model over random
//! operations.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use kernel::futex::core::{FutexChain, FutexQ, FutexQNode, FutexWakeQ};
use kernel::process::run_user;
use ktest_macros::ktest;
use mm::futex::FutexKey;

const MM: u64 = 0x1000;
const BASE: u64 = 0x4000_0000;

/// Runs tests/user/futex_test.c and asserts it passed.
fn futex_test_passes() {
    let (status, out) = run_user("/bin/futex_test", &["futex_test"]).expect("futex_test runs");
    let out = String::from_utf8_lossy(&out);
    assert!(status == 0 && out.contains("PASS futex_test"), "futex_test exited with {status:#x}:\n{out}");
}

#[ktest(timeout = 120)]
fn futex_test_passes_on_one_cpu() {
    futex_test_passes();
}

/// Waiters and wakers on different CPUs.
#[ktest(cpus = 2, timeout = 120)]
fn futex_test_passes_on_two_cpus() {
    futex_test_passes();
}

fn key(n: u64) -> FutexKey {
    FutexKey::Private { mm: MM, address: BASE + 4 * n }
}

const ANY: u32 = u32::MAX;

/// A chain with waiters `ids` queued in order on `(key, bitset)`s.
fn chain(waiters: &[(u32, FutexKey, u32)]) -> FutexChain<u32> {
    let mut c = FutexChain::new();
    for &(waiter, key, bitset) in waiters {
        c.queue(FutexQNode::new(FutexQ { key, bitset, waiter }));
    }
    c
}

fn ids(q: &FutexWakeQ<u32>) -> Vec<u32> {
    q.waiters().copied().collect()
}

fn queued(c: &FutexChain<u32>) -> Vec<(u32, FutexKey)> {
    c.iter().map(|q| (q.waiter, q.key)).collect()
}

#[ktest]
fn wake_takes_the_oldest_waiters_on_the_word_up_to_the_count() {
    let mut c = chain(&[(1, key(0), ANY), (2, key(1), ANY), (3, key(0), ANY), (4, key(0), ANY)]);
    assert_eq!(ids(&c.wake(&key(0), ANY, 2)), [1, 3]);
    assert_eq!(queued(&c), [(2, key(1)), (4, key(0))], "the others stay, in order");
    assert_eq!(ids(&c.wake(&key(0), ANY, i32::MAX)), [4]);
    assert!(c.wake(&key(0), ANY, 1).is_empty());
    assert_eq!(c.len(), 1);
}

#[ktest]
fn a_wake_count_of_zero_or_less_wakes_one_as_on_linux() {
    let mut c = chain(&[(1, key(0), ANY), (2, key(0), ANY), (3, key(0), ANY)]);
    assert_eq!(ids(&c.wake(&key(0), ANY, 0)), [1]);
    assert_eq!(ids(&c.wake(&key(0), ANY, -1)), [2]);
    assert_eq!(c.len(), 1);
}

#[ktest]
fn wake_takes_only_waiters_whose_mask_shares_a_bit() {
    let mut c = chain(&[(1, key(0), 0b01), (2, key(0), 0b10), (3, key(0), 0b11)]);
    assert_eq!(ids(&c.wake(&key(0), 0b10, i32::MAX)), [2, 3]);
    assert_eq!(queued(&c), [(1, key(0))]);
}

#[ktest]
fn requeue_wakes_then_moves_to_the_other_chains_tail() {
    let mut c1 = chain(&[(1, key(0), ANY), (2, key(5), ANY), (3, key(0), ANY), (4, key(0), ANY)]);
    let mut c2 = chain(&[(9, key(1), ANY)]);
    let mut moved = Vec::new();
    let (woken, count) = c1.requeue(Some(&mut c2), &key(0), &key(1), 1, 1, |w| moved.push(*w));
    assert_eq!((ids(&woken), count, moved), (vec![1], 2, vec![3]));
    assert_eq!(queued(&c1), [(2, key(5)), (4, key(0))]);
    assert_eq!(queued(&c2), [(9, key(1)), (3, key(1))]);
}

#[ktest]
fn requeue_within_one_bucket_rekeys_in_place() {
    let mut c = chain(&[(1, key(0), ANY), (2, key(1), ANY), (3, key(0), ANY)]);
    let (woken, count) = c.requeue(None, &key(0), &key(1), 0, u32::MAX, |_| {});
    assert_eq!((woken.len(), count), (0, 2));
    assert_eq!(queued(&c), [(1, key(1)), (2, key(1)), (3, key(1))]);
}

#[ktest]
fn requeue_of_nothing_moves_nothing_and_a_word_onto_itself_counts_its_waiters() {
    let mut c = chain(&[(1, key(0), ANY), (2, key(0), ANY)]);
    assert_eq!(c.requeue(None, &key(0), &key(1), 0, 0, |_| {}).1, 0);
    let (woken, count) = c.requeue(None, &key(0), &key(0), 0, i32::MAX as u32, |_| {});
    assert_eq!((woken.len(), count), (0, 2));
    assert_eq!(queued(&c), [(1, key(0)), (2, key(0))]);
}

#[ktest]
fn unqueue_takes_only_its_own_entry() {
    let mut c = chain(&[(1, key(0), ANY), (2, key(0), ANY), (3, key(0), ANY)]);
    assert!(c.unqueue(|w| *w == 2).is_some());
    assert!(c.unqueue(|w| *w == 2).is_none(), "gone already");
    assert_eq!(queued(&c), [(1, key(0)), (3, key(0))]);
}

/// What a model test does to a chain.
#[derive(Clone, Copy, Debug)]
enum Op {
    Queue { key: u64, bitset: u32 },
    Wake { key: u64, bitset: u32, nr: i32 },
    Requeue { from: u64, to: u64, nr_wake: u32, nr_requeue: u32 },
    Unqueue { waiter: u32 },
}

/// A xorshift generator: the same operations on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn op(&mut self) -> Op {
        match self.below(6) {
            0..=2 => Op::Queue { key: self.below(3), bitset: 1 + self.below(3) as u32 },
            3 => Op::Wake { key: self.below(3), bitset: 1 + self.below(3) as u32, nr: self.below(5) as i32 - 1 },
            4 => Op::Requeue {
                from: self.below(3),
                to: self.below(3),
                nr_wake: self.below(3) as u32,
                nr_requeue: self.below(3) as u32,
            },
            _ => Op::Unqueue { waiter: self.below(12) as u32 },
        }
    }
}

/// One model entry: waiter, key, mask, and the order of its last arrival
/// on its chain.
type Entry = (u32, u64, u32, u32);

/// Random operations on two chains (keys 0 and 1 hash to the first, key 2
/// to the second) against a model: one list of entries, where Linux's
/// rules are written out plainly.
#[ktest]
fn chains_behave_as_the_model() {
    let bucket = |k: u64| usize::from(k == 2);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for run in 0..200 {
        let mut chains = [FutexChain::<u32>::new(), FutexChain::new()];
        let mut model: Vec<Entry> = Vec::new();
        let (mut next_waiter, mut seq) = (0, 0);
        for step in 0..40 {
            let op = rng.op();
            let at = || alloc::format!("run {run} step {step}: {op:?}");
            match op {
                Op::Queue { key: k, bitset } => {
                    chains[bucket(k)].queue(FutexQNode::new(FutexQ { key: key(k), bitset, waiter: next_waiter }));
                    model.push((next_waiter, k, bitset, seq));
                    next_waiter += 1;
                    seq += 1;
                }
                Op::Wake { key: k, bitset, nr } => {
                    let got = ids(&chains[bucket(k)].wake(&key(k), bitset, nr));
                    let mut order = model.clone();
                    order.sort_by_key(|e| e.3);
                    let mut want = Vec::new();
                    for e in order {
                        if e.1 == k && e.2 & bitset != 0 && (want.is_empty() || (want.len() as i32) < nr) {
                            want.push(e.0);
                        }
                    }
                    model.retain(|e| !want.contains(&e.0));
                    assert_eq!(got, want, "{}", at());
                }
                Op::Requeue { from, to, nr_wake, nr_requeue } => {
                    let (b1, b2) = (bucket(from), bucket(to));
                    let (woken, count) = if b1 == b2 {
                        chains[b1].requeue(None, &key(from), &key(to), nr_wake, nr_requeue, |_| {})
                    } else {
                        let [c0, c1] = &mut chains;
                        let (src, dst) = if b1 == 0 { (c0, c1) } else { (c1, c0) };
                        src.requeue(Some(dst), &key(from), &key(to), nr_wake, nr_requeue, |_| {})
                    };
                    let mut order: Vec<(u32, u32)> = model.iter().filter(|e| e.1 == from).map(|e| (e.3, e.0)).collect();
                    order.sort_unstable();
                    let want_woken: Vec<u32> = order.iter().take(nr_wake as usize).map(|e| e.1).collect();
                    let want_moved: Vec<u32> =
                        order.iter().skip(nr_wake as usize).take(nr_requeue as usize).map(|e| e.1).collect();
                    assert_eq!(ids(&woken), want_woken, "{}", at());
                    assert_eq!(count as usize, want_woken.len() + want_moved.len(), "{}", at());
                    model.retain(|e| !want_woken.contains(&e.0));
                    for e in model.iter_mut().filter(|e| want_moved.contains(&e.0)) {
                        e.1 = to;
                        if b1 != b2 {
                            e.3 = seq;
                            seq += 1;
                        }
                    }
                }
                Op::Unqueue { waiter } => {
                    let found = chains.iter_mut().any(|c| c.unqueue(|w| *w == waiter).is_some());
                    let was = model.iter().any(|e| e.0 == waiter);
                    model.retain(|e| e.0 != waiter);
                    assert_eq!(found, was, "{}", at());
                }
            }
            for (b, c) in chains.iter().enumerate() {
                let mut want: Vec<&Entry> = model.iter().filter(|e| bucket(e.1) == b).collect();
                want.sort_by_key(|e| e.3);
                let want: Vec<(u32, FutexKey)> = want.into_iter().map(|e| (e.0, key(e.1))).collect();
                assert_eq!(queued(c), want, "chain {b} after {}", at());
            }
        }
    }
}
