//! Host tests of swap entries in page tables: fork, mremap, munmap and
//! exit against a model of the slots' counts.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use uapi::mman::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MREMAP_FIXED, MREMAP_MAYMOVE, PROT_READ, PROT_WRITE};

use super::*;
use crate::addr::{PAGE_SIZE, VirtAddr};
use crate::mmap::MmCounter;
use crate::mmap::tests::{Env, Mm, with_env, write};
use crate::pgtable::{Entry, Level, PteFormat};

const P: u64 = PAGE_SIZE;
const X: u64 = 0x4000_0000;
const Y: u64 = 0x5000_0000;

/// The swap map as a model: each slot's pte count; a refusal switch.
#[derive(Default)]
struct SimSwap {
    counts: Mutex<BTreeMap<(u32, u64), u32>>,
    refuse: AtomicBool,
}

impl SimSwap {
    fn count(&self, entry: SwpEntry) -> u32 {
        self.counts.lock().unwrap().get(&(entry.ty(), entry.offset())).copied().unwrap_or(0)
    }
}

impl SwapBackend for SimSwap {
    fn swap_duplicate(&self, entry: SwpEntry) -> Result<(), SwapDupError> {
        if self.refuse.load(Ordering::Relaxed) {
            return Err(SwapDupError::NoMemory);
        }
        match self.counts.lock().unwrap().get_mut(&(entry.ty(), entry.offset())) {
            Some(n) if *n > 0 => {
                *n += 1;
                Ok(())
            }
            _ => Err(SwapDupError::BadEntry),
        }
    }

    fn free_swap_and_cache(&self, entry: SwpEntry) {
        let mut counts = self.counts.lock().unwrap();
        let n = counts.get_mut(&(entry.ty(), entry.offset())).expect("a slot in use");
        assert!(*n > 0, "{entry:?} freed once too often");
        *n -= 1;
    }
}

/// Puts `entry` in the pte at `addr` as swap-out would, with its count.
fn swap_out_pte(mm: &Mm<'_>, swap: &SimSwap, addr: u64, entry: SwpEntry) {
    let slot = mm.pgd.pte_offset(VirtAddr::expect_canonical(addr), true).unwrap().unwrap();
    slot.store(mm.pgd.format().encode_swp(entry), Ordering::Release);
    *swap.counts.lock().unwrap().entry((entry.ty(), entry.offset())).or_default() += 1;
    mm.add_rss(MmCounter::SwapEnts, 1);
}

fn entry_at(mm: &Mm<'_>, addr: u64) -> Option<SwpEntry> {
    let slot = mm.pgd.pte_offset(VirtAddr::expect_canonical(addr), false).ok().flatten()?;
    match mm.pgd.format().decode(slot.load(Ordering::Acquire), Level::Pte) {
        Entry::Swap(entry) => Some(entry),
        _ => None,
    }
}

fn registered(env: &Env<'_>) -> &'static SimSwap {
    let swap: &'static SimSwap = Box::leak(Box::default());
    env.pgdat.set_swap_backend(swap);
    swap
}

/// Fork counts one more pte per swap entry and gives the child the
/// entries (`copy_nonpresent_pte`); mremap moves them; munmap and exit
/// give every count back (`free_swap_and_cache`); `MM_SWAPENTS` follows.
#[test]
fn swap_entries_are_duplicated_by_fork_moved_by_mremap_and_freed_by_munmap_and_exit() {
    with_env(|env| {
        let swap = registered(env);
        let (a, b) = (SwpEntry::new(0, 10), SwpEntry::new(1, 7));
        let mut parent = env.mm();
        let rw = PROT_READ | PROT_WRITE;
        parent.do_mmap(X, 4 * P, rw, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        write(env, &mut parent, X, 1).unwrap();
        swap_out_pte(&parent, swap, X + 2 * P, a);
        swap_out_pte(&parent, swap, X + 3 * P, b);
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        assert_eq!((entry_at(&child, X + 2 * P), entry_at(&child, X + 3 * P)), (Some(a), Some(b)));
        assert_eq!((swap.count(a), swap.count(b)), (2, 2), "one more pte each");
        assert_eq!((child.counter(MmCounter::SwapEnts), parent.counter(MmCounter::SwapEnts)), (2, 2));
        assert_eq!(child.rss_pages(), 1, "swap entries are not resident");
        assert_eq!(child.mremap(X, 4 * P, 4 * P, u64::from(MREMAP_MAYMOVE | MREMAP_FIXED), Y), Ok(Y));
        assert_eq!((entry_at(&child, Y + 2 * P), entry_at(&child, Y + 3 * P)), (Some(a), Some(b)));
        assert_eq!(entry_at(&child, X + 2 * P), None, "moved, not copied");
        assert_eq!((swap.count(a), swap.count(b)), (2, 2));
        child.do_munmap(Y + 2 * P, P).unwrap();
        assert_eq!((swap.count(a), child.counter(MmCounter::SwapEnts)), (1, 1));
        child.exit_mmap();
        assert_eq!((swap.count(a), swap.count(b)), (1, 1));
        parent.exit_mmap();
        assert_eq!((swap.count(a), swap.count(b)), (0, 0), "every slot's count back");
        assert_eq!(parent.counter(MmCounter::SwapEnts), 0);
    });
}

/// A fork that cannot count a swap entry once more fails with ENOMEM,
/// and tearing the half-made child down gives back the counts it took.
#[test]
fn a_fork_that_cannot_duplicate_a_swap_entry_fails_and_leaks_no_count() {
    with_env(|env| {
        let swap = registered(env);
        let entry = SwpEntry::new(0, 3);
        let mut parent = env.mm();
        parent.do_mmap(X, 2 * P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        swap_out_pte(&parent, swap, X, entry);
        swap.refuse.store(true, Ordering::Relaxed);
        let mut child = env.mm();
        assert_eq!(parent.dup_mmap(&mut child), Err(uapi::errno::Errno::ENOMEM));
        child.exit_mmap();
        swap.refuse.store(false, Ordering::Relaxed);
        assert_eq!(swap.count(entry), 1, "only the parent's pte holds the slot");
        assert_eq!(entry_at(&parent, X), Some(entry));
        parent.exit_mmap();
        assert_eq!(swap.count(entry), 0);
    });
}
