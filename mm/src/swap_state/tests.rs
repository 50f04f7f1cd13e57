//! Host tests of swap entries in page tables: fork, mremap, munmap and
//! exit against a model of the slots' counts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use uapi::mman::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MREMAP_FIXED, MREMAP_MAYMOVE, PROT_READ, PROT_WRITE};

use super::*;
use crate::addr::Pfn;
use crate::addr::{PAGE_SIZE, VirtAddr};
use crate::mmap::MmCounter;
use crate::mmap::tests::{Env, Mm, with_env, write};
use crate::pgtable::{Entry, Level, PteFormat};

const P: u64 = PAGE_SIZE;
const X: u64 = 0x4000_0000;
const Y: u64 = 0x5000_0000;

/// One slot of the model: the ptes holding it, the swap cache's hold,
/// and its data once written.
#[derive(Default)]
struct Slot {
    count: u32,
    cache: bool,
    data: Option<Vec<u8>>,
}

/// A swap area as a model (type 0, slots handed out from offset 1): each
/// slot's counts and data, the swap cache's index, a refusal switch, and
/// the slots whose writes or reads the disk fails, and those marked bad.
#[derive(Default)]
struct SimSwap {
    slots: Mutex<BTreeMap<(u32, u64), Slot>>,
    cache: Mutex<BTreeMap<(u32, u64), Pfn>>,
    next: Mutex<u64>,
    refuse: AtomicBool,
    size: u64,
    fail_writes: Mutex<BTreeSet<u64>>,
    fail_reads: Mutex<BTreeSet<u64>>,
    bad: Mutex<BTreeSet<u64>>,
}

fn key(entry: SwpEntry) -> (u32, u64) {
    (entry.ty(), entry.offset())
}

impl SimSwap {
    fn count(&self, entry: SwpEntry) -> u32 {
        self.slots.lock().unwrap().get(&key(entry)).map_or(0, |s| s.count)
    }

    fn in_use(&self) -> usize {
        self.slots.lock().unwrap().values().filter(|s| s.count > 0 || s.cache).count()
    }
}

impl SwapBackend for SimSwap {
    fn swap_duplicate(&self, entry: SwpEntry) -> Result<(), SwapDupError> {
        if self.refuse.load(Ordering::Relaxed) {
            return Err(SwapDupError::NoMemory);
        }
        match self.slots.lock().unwrap().get_mut(&key(entry)) {
            Some(slot) if slot.count > 0 || slot.cache => {
                slot.count += 1;
                Ok(())
            }
            _ => Err(SwapDupError::BadEntry),
        }
    }

    fn free_swap_and_cache(&self, entry: SwpEntry) {
        let mut slots = self.slots.lock().unwrap();
        let slot = slots.get_mut(&key(entry)).expect("a slot in use");
        assert!(slot.count > 0, "{entry:?} freed once too often");
        slot.count -= 1;
        if slot.count == 0 && !slot.cache {
            slots.remove(&key(entry));
        }
    }

    fn get_swap_page(&self) -> Option<SwpEntry> {
        let mut next = self.next.lock().unwrap();
        let mut slots = self.slots.lock().unwrap();
        let bad = self.bad.lock().unwrap();
        let offset = (1..self.size)
            .map(|i| (*next + i) % self.size)
            .find(|&o| o != 0 && !slots.contains_key(&(0, o)) && !bad.contains(&o))?;
        *next = offset;
        slots.insert((0, offset), Slot { count: 0, cache: true, data: None });
        Some(SwpEntry::new(0, offset))
    }

    fn put_swap_folio(&self, entry: SwpEntry) {
        let mut slots = self.slots.lock().unwrap();
        let slot = slots.get_mut(&key(entry)).expect("a slot in use");
        assert!(slot.cache, "{entry:?} had no swap cache hold");
        slot.cache = false;
        if slot.count == 0 {
            slots.remove(&key(entry));
        }
    }

    fn put_swap_folio_bad(&self, entry: SwpEntry) {
        let mut slots = self.slots.lock().unwrap();
        let slot = slots.remove(&key(entry)).expect("a slot in use");
        assert!(slot.cache && slot.count == 0, "{entry:?} marked bad while a pte holds it");
        assert!(self.bad.lock().unwrap().insert(entry.offset()));
    }

    fn swap_count(&self, entry: SwpEntry) -> u32 {
        self.count(entry)
    }

    fn nr_swap_pages(&self) -> u64 {
        self.size - 1 - self.in_use() as u64 - self.bad.lock().unwrap().len() as u64
    }

    fn swapcache_prepare(&self, entry: SwpEntry) -> Result<(), SwapCacheError> {
        let mut slots = self.slots.lock().unwrap();
        let slot = slots.get_mut(&key(entry)).expect("a slot in use");
        if slot.cache {
            return Err(SwapCacheError::Exists);
        }
        slot.cache = true;
        Ok(())
    }

    fn swap_cache_add(&self, entry: SwpEntry, pfn: Pfn) -> Result<(), SwapCacheError> {
        let mut cache = self.cache.lock().unwrap();
        if cache.contains_key(&key(entry)) {
            return Err(SwapCacheError::Exists);
        }
        cache.insert(key(entry), pfn);
        Ok(())
    }

    fn swap_cache_lookup(&self, entry: SwpEntry) -> Option<Pfn> {
        self.cache.lock().unwrap().get(&key(entry)).copied()
    }

    fn swap_cache_delete(&self, entry: SwpEntry, pfn: Pfn) -> bool {
        let mut cache = self.cache.lock().unwrap();
        if cache.get(&key(entry)) != Some(&pfn) {
            return false;
        }
        cache.remove(&key(entry));
        true
    }

    #[allow(unsafe_code, reason = "the model's copy of the page")]
    fn swap_writepage(&self, pgdat: &PgData<'_>, entry: SwpEntry, pfn: Pfn) -> Result<(), SwapIoError> {
        assert!(!self.bad.lock().unwrap().contains(&entry.offset()), "a write to bad slot {entry:?}");
        if self.fail_writes.lock().unwrap().contains(&entry.offset()) {
            // The disk fails it, at once.
            end_swap_writeback(pgdat, pfn, Err(SwapWriteError::Io), &crate::sim::SimFolioWaits);
            return Ok(());
        }
        let mut data = vec![0u8; PAGE_SIZE as usize];
        // SAFETY: the locked page reclaim writes out; nothing references it.
        unsafe { crate::highmem::memcpy_from_page(pgdat, &mut data, pfn, 0) }.unwrap();
        self.slots.lock().unwrap().get_mut(&key(entry)).expect("a slot in use").data = Some(data);
        // The write completes at once.
        end_swap_writeback(pgdat, pfn, Ok(()), &crate::sim::SimFolioWaits);
        Ok(())
    }

    #[allow(unsafe_code, reason = "the model's copy into the page")]
    fn swap_read_folio(&self, pgdat: &PgData<'_>, entry: SwpEntry, pfn: Pfn) -> Result<(), SwapIoError> {
        if self.fail_reads.lock().unwrap().contains(&entry.offset()) {
            return Err(SwapIoError);
        }
        let slots = self.slots.lock().unwrap();
        let data = slots.get(&key(entry)).and_then(|s| s.data.as_ref()).ok_or(SwapIoError)?;
        // SAFETY: a new page no one else has found.
        unsafe { crate::highmem::memcpy_to_page(pgdat, pfn, 0, data) }.unwrap();
        Ok(())
    }
}

/// Puts `entry` in the pte at `addr` as swap-out would, with its count.
fn swap_out_pte(mm: &Mm<'_>, swap: &SimSwap, addr: u64, entry: SwpEntry) {
    let slot = mm.pgd.pte_offset(VirtAddr::expect_canonical(addr), true).unwrap().unwrap();
    slot.store(mm.pgd.format().encode_swp(entry), Ordering::Release);
    swap.slots.lock().unwrap().entry(key(entry)).or_default().count += 1;
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
    let swap: &'static SimSwap = Box::leak(Box::new(SimSwap { size: 1 << 16, ..SimSwap::default() }));
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

/// Reclaim's view of the test's address spaces: the reverse map's walks
/// over them; no page cache.
struct Owners<'m, 'a> {
    rmms: crate::rmap::tests::TestMms<'m, 'a>,
}

impl crate::vmscan::CacheOwners for Owners<'_, '_> {
    fn remove_clean(&self, _: &PgData<'_>, _: crate::filemap::MappingId, _: u64, _: Pfn) -> bool {
        false
    }

    fn folio_referenced(&self, pgdat: &PgData<'_>, pfn: Pfn, is_locked: bool) -> crate::rmap::Referenced {
        crate::rmap::folio_referenced(&self.rmms, pgdat, pfn, is_locked)
    }

    fn try_to_unmap(&self, pgdat: &PgData<'_>, pfn: Pfn) -> bool {
        crate::rmap::try_to_unmap(&self.rmms, pgdat, pfn)
    }
}

/// Reclaim with swap: anonymous pages not used since the last look get a
/// slot, their ptes the slot's entry, their data the slot, and are freed
/// (`add_to_swap`, `try_to_unmap`, `pageout`, `__remove_mapping`); a
/// fault reads each back with its data (`do_swap_page`), and once no pte
/// holds its slot the page leaves the swap cache and the slot is freed.
#[test]
fn reclaim_swaps_anonymous_pages_out_and_faults_read_them_back_intact() {
    use crate::vmscan::{Reclaimer, shrink_page_cache};
    const PAGES: u64 = 64;
    with_env(|env| {
        let swap = registered(env);
        let mut mm = env.mm();
        let rw = PROT_READ | PROT_WRITE;
        mm.do_mmap(X, PAGES * P, rw, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        for i in 0..PAGES {
            write(env, &mut mm, X + i * P, 0x40 + i as u8).unwrap();
        }
        env.pgdat.lru_add_drain_all();
        let free_before = crate::sim::free_pages_drained(env.pgdat);
        {
            let mms = [&mm];
            let owners =
                Owners { rmms: crate::rmap::tests::TestMms { mms: mms.to_vec(), alloc: env.alloc, file: None } };
            let mut freed = 0;
            for _ in 0..32 {
                freed += shrink_page_cache(
                    env.pgdat,
                    &owners,
                    &crate::sim::SimFolioWaits,
                    PAGES,
                    Reclaimer::Direct,
                    crate::gfp::GFP_KERNEL,
                );
            }
            assert_eq!(freed, PAGES, "every page went to swap and was freed");
        }
        assert_eq!(crate::sim::free_pages_drained(env.pgdat), free_before + PAGES);
        assert!((0..PAGES).all(|i| entry_at(&mm, X + i * P).is_some()), "every pte holds its slot's entry");
        assert_eq!((mm.counter(MmCounter::SwapEnts), mm.counter(MmCounter::AnonPages)), (PAGES, 0));
        assert_eq!(swap.in_use(), PAGES as usize);
        assert_eq!(env.pgdat.node_page_state(NodeStatItem::NrSwapcache), 0, "the swap cache let them go");
        let majfault = env.pgdat.all_vm_events(crate::vmstat::VmEventItem::Pgmajfault);
        for i in (0..PAGES).rev() {
            assert_eq!(crate::mmap::tests::read(env, &mut mm, X + i * P), Ok(0x40 + i as u8), "page {i}");
        }
        assert_eq!(env.pgdat.all_vm_events(crate::vmstat::VmEventItem::Pgmajfault), majfault + PAGES);
        assert_eq!((mm.counter(MmCounter::SwapEnts), mm.counter(MmCounter::AnonPages)), (0, PAGES));
        assert_eq!(swap.in_use(), 0, "no pte holds a slot: every slot freed");
        assert_eq!(env.pgdat.node_page_state(NodeStatItem::NrSwapcache), 0);
        // Exclusive again: a write reuses the page in place.
        write(env, &mut mm, X, 0x7f).unwrap();
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X), Ok(0x7f));
        mm.exit_mmap();
    });
}

/// After fork, a swapped-out page's slot is held by both ptes: the
/// child's read brings the page into the swap cache, read-only, where
/// the parent's read finds it (one read from the slot); mincore calls it
/// resident while the swap cache has it; the child's write copies it.
#[test]
fn a_page_swapped_out_after_fork_comes_back_once_for_both() {
    use crate::vmscan::{Reclaimer, shrink_page_cache};
    with_env(|env| {
        let swap = registered(env);
        let mut parent = env.mm();
        parent.do_mmap(X, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        write(env, &mut parent, X, 0x5a).unwrap();
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        env.pgdat.lru_add_drain_all();
        {
            let mms = [&parent, &child];
            let owners =
                Owners { rmms: crate::rmap::tests::TestMms { mms: mms.to_vec(), alloc: env.alloc, file: None } };
            let mut freed = 0;
            for _ in 0..16 {
                freed += shrink_page_cache(
                    env.pgdat,
                    &owners,
                    &crate::sim::SimFolioWaits,
                    1,
                    Reclaimer::Direct,
                    crate::gfp::GFP_KERNEL,
                );
            }
            assert_eq!(freed, 1);
        }
        let entry = entry_at(&parent, X).expect("swapped out");
        assert_eq!((entry_at(&child, X), swap.count(entry)), (Some(entry), 2), "both ptes hold the slot");
        let resident = |mm: &Mm<'_>| {
            matches!(mm.pte_state(crate::uaddr::UserAddr::new(X).unwrap()), crate::memory::PteState::Resident)
        };
        assert!(!resident(&parent), "out of memory and out of the swap cache");
        let majfault = env.pgdat.all_vm_events(crate::vmstat::VmEventItem::Pgmajfault);
        assert_eq!(crate::mmap::tests::read(env, &mut child, X), Ok(0x5a));
        assert!(resident(&parent), "the swap cache has it now");
        assert_eq!(crate::mmap::tests::read(env, &mut parent, X), Ok(0x5a));
        assert_eq!(env.pgdat.all_vm_events(crate::vmstat::VmEventItem::Pgmajfault), majfault + 1, "one read");
        let pfn = parent.follow_pte(VirtAddr::expect_canonical(X)).unwrap().phys.pfn();
        assert_eq!(child.follow_pte(VirtAddr::expect_canonical(X)).unwrap().phys.pfn(), pfn, "one page for both");
        write(env, &mut child, X, 0x11).unwrap();
        assert_eq!(crate::mmap::tests::read(env, &mut parent, X), Ok(0x5a), "the child's write copied");
        child.exit_mmap();
        parent.exit_mmap();
        // The page left in the swap cache goes at the next reclaim.
        env.pgdat.lru_add_drain_all();
        let owners = Owners { rmms: crate::rmap::tests::TestMms { mms: Vec::new(), alloc: env.alloc, file: None } };
        for _ in 0..16 {
            shrink_page_cache(
                env.pgdat,
                &owners,
                &crate::sim::SimFolioWaits,
                1,
                Reclaimer::Direct,
                crate::gfp::GFP_KERNEL,
            );
        }
        assert_eq!((swap.in_use(), env.pgdat.node_page_state(NodeStatItem::NrSwapcache)), (0, 0));
    });
}

/// MADV_COLD deactivates the pages only this address space maps: off
/// the active list, unreferenced, their ptes old (Linux `folio_deactivate`
/// through the `lru_deactivate` batch); a page a child shares stays.
#[test]
fn madvise_cold_deactivates_the_pages_this_process_alone_maps() {
    use crate::page_flags::PageFlags;
    use crate::swap::LruList;
    with_env(|env| {
        let mut mm = env.mm();
        mm.do_mmap(X, 4 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        for i in 0..4 {
            write(env, &mut mm, X + i * P, i as u8).unwrap();
        }
        env.pgdat.lru_add_drain_all();
        let pfns: Vec<Pfn> =
            (0..4).map(|i| mm.follow_pte(VirtAddr::expect_canonical(X + i * P)).unwrap().phys.pfn()).collect();
        for &pfn in &pfns {
            // Made active as two touches would.
            env.pgdat.folio_mark_accessed(pfn);
            env.pgdat.folio_mark_accessed(pfn);
        }
        env.pgdat.lru_add_drain_all();
        assert!(pfns.iter().all(|&pfn| env.page(pfn).test(PageFlags::ACTIVE)));
        let active = env.pgdat.lru_pages(LruList::ActiveAnon);
        let mut child = env.mm();
        mm.dup_mmap(&mut child).unwrap();
        // The child shares the first page only.
        child.do_munmap(X + P, 3 * P).unwrap();
        assert_eq!(mm.madvise(X, 4 * P, uapi::mman::MADV_COLD), Ok(()));
        env.pgdat.lru_add_drain_all();
        assert!(env.page(pfns[0]).test(PageFlags::ACTIVE), "a page the child maps too stays active");
        for &pfn in &pfns[1..] {
            let page = env.page(pfn);
            assert!(!page.test(PageFlags::ACTIVE) && !page.test(PageFlags::REFERENCED));
        }
        assert_eq!(env.pgdat.lru_pages(LruList::ActiveAnon), active - 3);
        let young =
            mm.follow_pte(VirtAddr::expect_canonical(X + P)).unwrap().prot.contains(crate::pgtable::PgProt::ACCESSED);
        assert!(!young, "the pte's accessed bit was cleared");
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X + 2 * P), Ok(2), "the data stays");
        child.exit_mmap();
        mm.exit_mmap();
    });
}
