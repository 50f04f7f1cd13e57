//! The mmap lock: faults on one address space from several CPUs at once
//! under the read lock, racing a writer that unmaps and remaps.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use kernel::mmap::{Mm, handle_user_fault, mm_alloc};
use kernel::sched::{self, Task};
use ktest_macros::ktest;
use mm::VirtAddr;
use mm::memory::{FaultAccess, FaultError};
use uapi::mman::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE};

const X: u64 = 0x1000_0000;
const PAGES: u64 = 64;
const P: u64 = mm::PAGE_SIZE;
const ROUNDS: u64 = 40;

/// Waits until `t` has exited and is switched out for good, then drops it.
fn join(t: Arc<Task>) {
    t.proc.child_exit.wait_event(|| t.proc.zombie.load(Ordering::Acquire));
    t.wait_inactive();
    drop(t);
}

fn map_all(mm: &Mm) {
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    let got = mm.mmap_write_lock().do_mmap(X, PAGES * P, PROT_READ | PROT_WRITE, flags, None, 0);
    assert_eq!(got, Ok(X));
}

fn free_pages_settled() -> u64 {
    kernel::slab::slab().expect("slab").shrink_all();
    kernel::vmalloc::vm().purge_vmap_area_lazy();
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
