//! The mmap lock: faults on one address space from several CPUs at once
//! under the read lock, racing a writer that unmaps and remaps; the
//! rwsem under it.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use kernel::mmap::{Mm, handle_user_fault, mm_alloc};
use kernel::sched::rwsem::RwSem;
use kernel::sched::{self, Task};
use ktest_macros::ktest;
use mm::VirtAddr;
use mm::memory::{FaultAccess, FaultError};
use uapi::mman::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE};

const X: u64 = 0x1000_0000;
const PAGES: u64 = 64;
const P: u64 = mm::PAGE_SIZE;
const ROUNDS: u64 = 40;

/// Waits until `t` has exited and is switched out for good, then drops
/// the last reference, so that it is freed here and now: the CPU it ran
/// on drops its own reference just after `on_cpu` goes false, and a task
/// freed there, in atomic context, would leave its stack and its `TASKS`
/// entry to be released later, in the middle of a page count.
fn join(t: Arc<Task>) {
    t.proc.group.child_exit.wait_event(|| t.proc.group.zombie.load(Ordering::Acquire));
    t.wait_inactive();
    while Arc::strong_count(&t) > 1 {
        sched::yield_now();
    }
    drop(t);
    sched::release_dead_tasks();
}

fn map_all(mm: &Mm) {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    let got = mm.mmap_write_lock().do_mmap(X, PAGES * P, PROT_READ | PROT_WRITE, flags, None, 0);
    assert_eq!(got, Ok(X));
}

fn free_pages_settled() -> u64 {
    kernel::mm::drop_caches();
    kernel::mm::nr_free_pages()
}

/// Three threads fault every page of one space, reads and writes, from
/// different starting pages, while a fourth takes the lock for writing to
/// unmap half of it and map it again. A fault finds the page mapped by it
/// or another, or the VMA gone (`MapErr`), never anything else; at the
/// end every present pte maps its own page once and RSS counts exactly
/// those pages. Then the space is torn down.
fn fault_while_unmapping(rounds: u64) {
    let mm = mm_alloc().expect("mm_alloc");
    map_all(&mm);
    let odd = Arc::new(AtomicU32::new(0));
    let mut threads: Vec<Arc<Task>> = (0..3u64)
        .map(|t| {
            let (mm, odd) = (mm.clone(), odd.clone());
            sched::kthread_run("ktest-fault", move || {
                for round in 0..rounds {
                    for i in 0..PAGES {
                        let page = (i + t * 21) % PAGES;
                        let write = !(page + round + t).is_multiple_of(3);
                        let addr = VirtAddr::new(X + page * P).expect("user address");
                        match handle_user_fault(&mm, addr, FaultAccess { write, exec: false }) {
                            Ok(()) | Err(FaultError::MapErr) => {}
                            Err(_) => {
                                odd.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    sched::cond_resched();
                }
            })
            .expect("spawn")
        })
        .collect();
    let m = mm.clone();
    threads.push(
        sched::kthread_run("ktest-unmap", move || {
            for _ in 0..rounds {
                assert_eq!(m.mmap_write_lock().do_munmap(X, PAGES / 2 * P), Ok(()));
                sched::cond_resched();
                map_all(&m);
                sched::cond_resched();
            }
        })
        .expect("spawn"),
    );
    for t in threads {
        join(t);
    }
    assert_eq!(odd.load(Ordering::Relaxed), 0, "a fault failed other than with MapErr");
    {
        // The pages' LRU batch references go when the batches drain.
        kernel::mm::pgdat().lru_add_drain_all();
        let guard = mm.mmap_read_lock();
        let mut present = 0;
        for i in 0..PAGES {
            let Some(leaf) = guard.follow_pte(VirtAddr::new(X + i * P).expect("user address")) else { continue };
            let pfn = leaf.phys.pfn();
            if Some(pfn) == kernel::mmap::zero_pfn() {
                continue;
            }
            present += 1;
            let page = kernel::mm::pgdat().pfn_to_page(pfn).expect("mapped page in the memory map");
            assert_eq!((page.refcount(), page.mapcount()), (1, 1), "page at {:#x}", X + i * P);
        }
        assert_eq!(guard.rss_pages(), present, "RSS counts each mapped page once");
    }
    let Ok(mm) = Arc::try_unwrap(mm) else { panic!("a thread kept the address space") };
    let mut space = mm.into_inner();
    space.exit_mmap();
}

/// [`fault_while_unmapping`] on two CPUs; afterwards every page is back.
#[ktest(cpus = 2)]
fn faults_run_together_under_the_read_lock_and_writers_exclude_them() {
    // Warm-up: slab caches and the kernel stacks' vmalloc tables get built.
    fault_while_unmapping(1);
    let free_before = free_pages_settled();
    fault_while_unmapping(ROUNDS);
    assert_eq!(free_pages_settled(), free_before, "pages of the space, its tables or the threads not given back");
}

/// Sleeps (yielding the CPU) until `t` sleeps uninterruptibly, as it does
/// while it waits for a lock.
fn until_blocked(t: &Task) {
    while t.state() != sched::TaskState::Uninterruptible {
        sched::yield_now();
    }
}

/// The rwsem's fairness: a writer waiting behind a reader holds off
/// readers that come after it, and gets the lock before them when the
/// reader leaves; those readers then share it.
#[ktest]
fn a_waiting_writer_goes_before_later_readers() {
    let sem = Arc::new(RwSem::new(0u32));
    let order = Arc::new(AtomicU32::new(0));
    let first = sem.read();
    let (s, o) = (sem.clone(), order.clone());
    let writer = sched::kthread_run("ktest-writer", move || {
        let mut g = s.write();
        *g = o.fetch_add(1, Ordering::AcqRel) + 1;
    })
    .expect("spawn");
    until_blocked(&writer);
    let (s, o) = (sem.clone(), order.clone());
    let reader = sched::kthread_run("ktest-reader", move || {
        let g = s.read();
        assert_eq!(*g, 1, "the writer went first");
        o.fetch_add(1, Ordering::AcqRel);
    })
    .expect("spawn");
    until_blocked(&reader);
    assert_eq!(order.load(Ordering::Acquire), 0, "nobody got in beside the first reader");
    assert!(sem.try_write().is_none(), "a reader holds it");
    drop(first);
    join(writer);
    join(reader);
    assert_eq!(order.load(Ordering::Acquire), 2);
    let w = sem.write();
    assert!(sem.try_read().is_none(), "a writer excludes readers");
    let r = w.downgrade();
    assert!(sem.try_read().is_some(), "a downgraded hold admits readers");
    assert!(sem.try_write().is_none(), "but not writers");
    drop(r);
    assert!(!sem.is_locked());
}

/// A writer on the other CPU that takes the lock again the moment it
/// lets it go, as `munmap` after `munmap` does, against a reader that
/// keeps coming back: the reader must be woken after every release that
/// finds it queued. A waiter taken off the queue by a release while it
/// was still setting itself up to sleep, its state not yet set, was lost
/// for good (the wake-up saw a running task and did nothing; the waiter
/// then slept off the queue): before the fix this test hung in two runs
/// of three.
#[ktest(cpus = 2, timeout = 120)]
fn a_reader_is_never_stranded_by_a_writer_that_retakes_the_lock_at_once() {
    use core::sync::atomic::AtomicBool;
    const WRITES: u32 = 20_000;
    const HOLD_NS: u64 = 20_000;
    let sem = Arc::new(RwSem::new(0u32));
    let done = Arc::new(AtomicBool::new(false));
    let (s, d) = (sem.clone(), done.clone());
    let other = (kernel::arch::x86_64::smp::smp_processor_id() + 1) % kernel::arch::x86_64::smp::num_online_cpus();
    let writer = sched::kthread_run_on(other, "ktest-writer", move || {
        for _ in 0..WRITES {
            let mut g = s.write();
            *g += 1;
            // Held long enough that the reader finds it taken and sleeps.
            let until = kernel::arch::x86_64::tsc::now_ns() + HOLD_NS;
            while kernel::arch::x86_64::tsc::now_ns() < until {
                core::hint::spin_loop();
            }
        }
        d.store(true, Ordering::Release);
    })
    .expect("spawn");
    let mut reads = 0u64;
    while !done.load(Ordering::Acquire) {
        let seen = *sem.read();
        assert!(seen <= WRITES);
        reads += 1;
    }
    join(writer);
    assert_eq!(*sem.read(), WRITES);
    log::info!("{reads} reads beside {WRITES} writes");
}
