//! Host tests of swap entries in page tables: fork, mremap, munmap and
//! exit against a model of the slots' counts; swap-out by reclaim and
//! swap-in by faults, with readahead, locked pages and failed reads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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
/// slot's counts and data, the swap cache's index, a refusal switch for
/// counts, a failure switch for reads, reads held back until the test
/// completes them, the task's plug: whether one is started, how many
/// were, and the writes made without one; and the slots whose writes or
/// reads the disk fails, and those marked bad.
#[derive(Default)]
pub(crate) struct SimSwap {
    slots: Mutex<BTreeMap<(u32, u64), Slot>>,
    cache: Mutex<BTreeMap<(u32, u64), Pfn>>,
    /// The shadows evictions left in the swap cache's index.
    shadows: Mutex<BTreeMap<(u32, u64), Shadow>>,
    next: Mutex<u64>,
    pub(crate) refuse: AtomicBool,
    size: u64,
    /// Every read fails (the disk's error).
    fail_every_read: AtomicBool,
    /// Reads wait in `pending` for [`SimSwap::complete_reads`].
    defer_reads: AtomicBool,
    pending: Mutex<Vec<(SwpEntry, Pfn)>>,
    /// Reads started (the kernel's `pswpin`).
    reads: AtomicU64,
    plugged: AtomicBool,
    plugs: AtomicU64,
    unplugged_writes: AtomicU64,
    fail_writes: Mutex<BTreeSet<u64>>,
    fail_reads: Mutex<BTreeSet<u64>>,
    bad: Mutex<BTreeSet<u64>>,
}

fn key(entry: SwpEntry) -> (u32, u64) {
    (entry.ty(), entry.offset())
}

impl SimSwap {
    /// An area of `size` slots (the first, the header's, never handed
    /// out) for one test's machine.
    pub(crate) fn leaked(size: u64) -> &'static SimSwap {
        Box::leak(Box::new(SimSwap { size, ..SimSwap::default() }))
    }

    /// The references to `entry`'s slot besides the swap cache's.
    pub(crate) fn count(&self, entry: SwpEntry) -> u32 {
        self.slots.lock().unwrap().get(&key(entry)).map_or(0, |s| s.count)
    }

    /// The data written to `entry`'s slot, if any.
    pub(crate) fn data(&self, entry: SwpEntry) -> Option<Vec<u8>> {
        self.slots.lock().unwrap().get(&key(entry)).and_then(|s| s.data.clone())
    }

    /// Slots in use.
    pub(crate) fn in_use(&self) -> usize {
        self.slots.lock().unwrap().values().filter(|s| s.count > 0 || s.cache).count()
    }

    /// Ends the read of `entry` into `pfn` as the disk would.
    #[allow(unsafe_code, reason = "the model's copy into the page")]
    fn end_read(&self, pgdat: &PgData<'_>, entry: SwpEntry, pfn: Pfn) {
        let data = self.slots.lock().unwrap().get(&key(entry)).and_then(|s| s.data.clone());
        let result = match data {
            Some(data)
                if !self.fail_every_read.load(Ordering::Relaxed)
                    && !self.fail_reads.lock().unwrap().contains(&entry.offset()) =>
            {
                // SAFETY: a locked page not uptodate: no one else reads or
                // writes it until its read ends.
                unsafe { crate::highmem::memcpy_to_page(pgdat, pfn, 0, &data) }.unwrap();
                Ok(())
            }
            _ => Err(SwapIoError),
        };
        end_swap_read(pgdat, pfn, result, &crate::sim::SimFolioWaits);
    }

    /// Ends the reads held back so far.
    fn complete_reads(&self, pgdat: &PgData<'_>) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap());
        for (entry, pfn) in pending {
            self.end_read(pgdat, entry, pfn);
        }
    }
}

impl SwapBackend for SimSwap {
    fn folio_waits(&self) -> &dyn FolioWaitTable {
        &crate::sim::SimFolioWaits
    }

    fn swap_max(&self, ty: u32) -> Option<u64> {
        (ty == 0).then_some(self.size)
    }

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

    fn total_swap_pages(&self) -> u64 {
        self.size - 1 - self.bad.lock().unwrap().len() as u64
    }

    fn swapcache_prepare(&self, entry: SwpEntry) -> Result<(), SwapCacheError> {
        let mut slots = self.slots.lock().unwrap();
        let Some(slot) = slots.get_mut(&key(entry)) else { return Err(SwapCacheError::NoEntry) };
        if slot.cache {
            return Err(SwapCacheError::Exists);
        }
        slot.cache = true;
        Ok(())
    }

    fn swap_cache_add(&self, entry: SwpEntry, pfn: Pfn) -> Result<Option<Shadow>, SwapCacheError> {
        let mut cache = self.cache.lock().unwrap();
        if cache.contains_key(&key(entry)) {
            return Err(SwapCacheError::Exists);
        }
        cache.insert(key(entry), pfn);
        Ok(self.shadows.lock().unwrap().remove(&key(entry)))
    }

    fn swap_cache_lookup(&self, entry: SwpEntry) -> Option<Pfn> {
        self.cache.lock().unwrap().get(&key(entry)).copied()
    }

    fn swap_cache_delete(&self, entry: SwpEntry, pfn: Pfn, shadow: Option<Shadow>) -> bool {
        let mut cache = self.cache.lock().unwrap();
        if cache.get(&key(entry)) != Some(&pfn) {
            return false;
        }
        cache.remove(&key(entry));
        if let Some(shadow) = shadow {
            self.shadows.lock().unwrap().insert(key(entry), shadow);
        }
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
        if !self.plugged.load(Ordering::Relaxed) {
            self.unplugged_writes.fetch_add(1, Ordering::Relaxed);
        }
        // The write completes at once.
        end_swap_writeback(pgdat, pfn, Ok(()), &crate::sim::SimFolioWaits);
        Ok(())
    }

    fn swap_read_folios(&self, pgdat: &PgData<'_>, reads: &[(SwpEntry, Pfn)]) {
        for &(entry, pfn) in reads {
            let page = pgdat.pfn_to_page(pfn).unwrap();
            assert!(page.test(PageFlags::LOCKED | PageFlags::SWAPCACHE), "a read into a page not locked in the cache");
            assert!(!page.test(PageFlags::UPTODATE));
            self.reads.fetch_add(1, Ordering::Relaxed);
            if self.defer_reads.load(Ordering::Relaxed) {
                self.pending.lock().unwrap().push((entry, pfn));
            } else {
                self.end_read(pgdat, entry, pfn);
            }
        }
    }

    fn start_plug(&self) -> bool {
        if self.plugged.swap(true, Ordering::Relaxed) {
            return false;
        }
        self.plugs.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn finish_plug(&self) {
        assert!(self.plugged.swap(false, Ordering::Relaxed), "a plug finished that was not started");
    }
}

/// Puts `entry` in the pte at `addr` as swap-out would, with its count.
pub(crate) fn swap_out_pte(mm: &Mm<'_>, swap: &SimSwap, addr: u64, entry: SwpEntry) {
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

pub(crate) fn registered(env: &Env<'_>) -> &'static SimSwap {
    let swap = SimSwap::leaked(1 << 16);
    env.pgdat.set_swap_backend(swap);
    swap
}

/// A page fork shared, swapped out and read back by the child first
/// names the root `anon_vma` (Linux `__folio_set_anon` for a page not
/// exclusive), not the child's own: the parent's fault then maps the same
/// page from the swap cache, and the reverse map finds both ptes, so
/// reclaim can take the page out of both address spaces again.
#[test]
fn a_page_shared_through_swap_is_found_in_every_sharer_whoever_read_it() {
    with_env(|env| {
        registered(env);
        let mut parent = env.mm();
        parent.do_mmap(X, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        write(env, &mut parent, X, 0x5a).unwrap();
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        assert_eq!(reclaim(env, &[&parent, &child], 1), 1);
        assert_eq!(crate::mmap::tests::read(env, &mut child, X), Ok(0x5a), "the child reads it back first");
        assert_eq!(crate::mmap::tests::read(env, &mut parent, X), Ok(0x5a), "then the parent, from the swap cache");
        let pfn = parent.follow_pte(VirtAddr::expect_canonical(X)).unwrap().phys.pfn();
        assert_eq!(child.follow_pte(VirtAddr::expect_canonical(X)).unwrap().phys.pfn(), pfn, "one page");
        assert_eq!(env.page(pfn).mapcount(), 2);
        assert_eq!(reclaim(env, &[&parent, &child], 1), 1, "the reverse map reached both ptes");
        assert!(entry_at(&parent, X).is_some() && entry_at(&child, X).is_some());
        child.exit_mmap();
        assert_eq!(crate::mmap::tests::read(env, &mut parent, X), Ok(0x5a));
        parent.exit_mmap();
    });
}

/// Reclaim leaves each swapped-out page's shadow in the swap cache's
/// index (Linux `__remove_mapping` -> `workingset_eviction`), and the
/// swap-in that reads the slot finds it: every page read back is an
/// anonymous refault (`workingset_refault_anon`), and no shadow is left.
#[test]
fn swapped_out_pages_leave_shadows_and_their_swap_in_is_a_refault() {
    const PAGES: u64 = 16;
    with_env(|env| {
        let swap = registered(env);
        let refaults = env.pgdat.node_page_state(NodeStatItem::WorkingsetRefaultAnon);
        let mut mm = swapped_out_area(env, swap, PAGES);
        assert_eq!(swap.shadows.lock().unwrap().len(), PAGES as usize, "a shadow per evicted page");
        for i in 0..PAGES {
            assert_eq!(crate::mmap::tests::read(env, &mut mm, X + i * P), Ok(0x40 + i as u8));
        }
        assert_eq!(env.pgdat.node_page_state(NodeStatItem::WorkingsetRefaultAnon) - refaults, PAGES);
        assert!(swap.shadows.lock().unwrap().is_empty(), "every shadow consumed");
        mm.exit_mmap();
    });
}

/// Swap more than half full (Linux `vm_swap_full`): a page read back
/// leaves the swap cache at once and its slot is free for other pages,
/// the page mapped writable; with room to spare the slot stays, and a
/// write fault frees it instead.
#[test]
fn a_fuller_swap_frees_slots_at_swap_in_and_a_write_frees_one_otherwise() {
    const PAGES: u64 = 16;
    with_env(|env| {
        // Slots 1..=PAGES + 3: swapping PAGES out leaves 3 free of
        // PAGES + 3, less than half.
        let swap = SimSwap::leaked(PAGES + 4);
        env.pgdat.set_swap_backend(swap);
        let mut mm = swapped_out_area(env, swap, PAGES);
        assert!(vm_swap_full(swap));
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X), Ok(0x40));
        assert_eq!(swap.count(SwpEntry::new(0, 1)), 0);
        assert!(!cached(swap, &mm, X) && swap.swap_cache_lookup(SwpEntry::new(0, 1)).is_none(), "left the cache");
        let leaf = mm.follow_pte(VirtAddr::expect_canonical(X)).unwrap();
        assert!(leaf.prot.contains(crate::pgtable::PgProt::WRITE), "exclusive again: mapped writable");
        // Read everything back: swap empties below half, and the pages
        // read from then on keep their slots, mapped read-only.
        for i in 1..PAGES {
            assert_eq!(crate::mmap::tests::read(env, &mut mm, X + i * P), Ok(0x40 + i as u8));
        }
        assert!(!vm_swap_full(swap));
        let last = X + (PAGES - 1) * P;
        let leaf = mm.follow_pte(VirtAddr::expect_canonical(last)).unwrap();
        assert!(
            !leaf.prot.contains(crate::pgtable::PgProt::WRITE) && env.page(leaf.phys.pfn()).test(PageFlags::SWAPCACHE)
        );
        let kept = swap.in_use();
        assert!(kept > 0, "no slot kept its data");
        write(env, &mut mm, last, 0x99).unwrap();
        assert_eq!(swap.in_use(), kept - 1, "the write freed its slot");
        assert!(!env.page(leaf.phys.pfn()).test(PageFlags::SWAPCACHE));
        mm.exit_mmap();
        assert_eq!((swap.in_use(), env.pgdat.node_page_state(NodeStatItem::NrSwapcache)), (0, 0));
    });
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

/// Runs reclaim over `mms` until `pages` pages were freed, at most 32
/// passes; returns the pages freed.
fn reclaim(env: &Env<'_>, mms: &[&Mm<'_>], pages: u64) -> u64 {
    use crate::vmscan::{Reclaimer, shrink_page_cache};
    env.pgdat.lru_add_drain_all();
    let owners = Owners { rmms: crate::rmap::tests::TestMms { mms: mms.to_vec(), alloc: env.alloc, file: None } };
    let mut freed = 0;
    for _ in 0..32 {
        if freed >= pages {
            break;
        }
        freed += shrink_page_cache(
            env.pgdat,
            &owners,
            &crate::sim::SimFolioWaits,
            pages - freed,
            Reclaimer::Direct,
            crate::gfp::GFP_KERNEL,
        );
    }
    freed
}

/// `PAGES` pages at X, page `i` filled with `0x40 + i`, all swapped out.
fn swapped_out_area<'a>(env: &Env<'a>, swap: &SimSwap, pages: u64) -> Mm<'a> {
    let mut mm = env.mm();
    let rw = PROT_READ | PROT_WRITE;
    mm.do_mmap(X, pages * P, rw, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
    for i in 0..pages {
        write(env, &mut mm, X + i * P, 0x40 + i as u8).unwrap();
    }
    assert_eq!(reclaim(env, &[&mm], pages), pages, "every page went to swap and was freed");
    assert!((0..pages).all(|i| entry_at(&mm, X + i * P).is_some()), "every pte holds its slot's entry");
    assert_eq!(swap.in_use(), pages as usize);
    mm
}

fn events(env: &Env<'_>, item: crate::vmstat::VmEventItem) -> u64 {
    env.pgdat.all_vm_events(item)
}

use crate::vmstat::VmEventItem::{Pgmajfault, SwapRa, SwapRaHit};

/// Reclaim with swap: anonymous pages not used since the last look get a
/// slot, their ptes the slot's entry, their data the slot, and are freed
/// (`add_to_swap`, `try_to_unmap`, `pageout`, `__remove_mapping`); a
/// fault reads each back with its data (`do_swap_page`), its neighbours
/// read ahead (`swap_vma_readahead`, downwards after the first fault).
/// Every fault either read (major) or found a readahead page. Swap being
/// far from full, each page stays in the swap cache with its slot (Linux
/// `should_try_to_free_swap`), mapped read-only, until a write frees the
/// slot and reuses the page in place; reclaim sends the others back
/// without writing them again.
#[test]
fn reclaim_swaps_anonymous_pages_out_and_faults_read_them_back_intact() {
    const PAGES: u64 = 64;
    with_env(|env| {
        let swap = registered(env);
        env.pgdat.lru_add_drain_all();
        let free_before = crate::sim::free_pages_drained(env.pgdat);
        let mut mm = swapped_out_area(env, swap, PAGES);
        // The area's page tables stay.
        let tables = crate::sim::free_pages_drained(env.pgdat);
        assert!(tables <= free_before, "{tables} {free_before}");
        assert_eq!((mm.counter(MmCounter::SwapEnts), mm.counter(MmCounter::AnonPages)), (PAGES, 0));
        assert_eq!(env.pgdat.node_page_state(NodeStatItem::NrSwapcache), 0, "the swap cache let them go");
        let (majfault, ra, hit) = (events(env, Pgmajfault), events(env, SwapRa), events(env, SwapRaHit));
        for i in (0..PAGES).rev() {
            assert_eq!(crate::mmap::tests::read(env, &mut mm, X + i * P), Ok(0x40 + i as u8), "page {i}");
        }
        let (majfault, ra, hit) =
            (events(env, Pgmajfault) - majfault, events(env, SwapRa) - ra, events(env, SwapRaHit) - hit);
        assert_eq!(majfault + hit, PAGES, "each fault read its page or found it read ahead");
        assert!(hit > PAGES / 2, "backwards faults hit the window below them: {hit} hits");
        assert_eq!(ra, hit, "every page read ahead was used");
        assert_eq!(swap.reads.load(Ordering::Relaxed), PAGES, "each slot read once");
        assert_eq!((mm.counter(MmCounter::SwapEnts), mm.counter(MmCounter::AnonPages)), (0, PAGES));
        assert_eq!(swap.in_use(), PAGES as usize, "each slot keeps its page's data");
        assert_eq!(env.pgdat.node_page_state(NodeStatItem::NrSwapcache), PAGES);
        // A write frees the slot (the data changes) and reuses the page.
        let pfn = mm.follow_pte(VirtAddr::expect_canonical(X)).unwrap().phys.pfn();
        write(env, &mut mm, X, 0x7f).unwrap();
        assert_eq!(mm.follow_pte(VirtAddr::expect_canonical(X)).unwrap().phys.pfn(), pfn, "reused in place");
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X), Ok(0x7f));
        assert_eq!(swap.in_use(), PAGES as usize - 1);
        // The clean pages go back to their slots without a write.
        let written = |swap: &SimSwap| swap.slots.lock().unwrap().values().filter(|s| s.data.is_some()).count();
        let before = written(swap);
        reclaim(env, &[&mm], PAGES);
        assert_eq!(mm.counter(MmCounter::SwapEnts), PAGES, "every page went back to swap");
        assert_eq!(written(swap), before + 1, "only the written page needed a new slot");
        mm.exit_mmap();
    });
}

/// Whether the swap cache holds the page of the slot the pte at `addr`
/// names.
fn cached(swap: &SimSwap, mm: &Mm<'_>, addr: u64) -> bool {
    entry_at(mm, addr).is_some_and(|e| swap.cache.lock().unwrap().contains_key(&key(e)))
}

/// Faults on `addr` for reading until its pte maps a page (a fault may
/// only be retried). A fault that meets a slot another thread is bringing
/// in, or a page being freed, returns to be retried (Linux loops in
/// `__read_swap_cache_async` with a sleep); how often depends on how the
/// host schedules the racing threads, so the bound only catches a
/// livelock, and each retry yields.
fn fault_in(mm: &Mm<'_>, addr: u64) -> Result<(), crate::memory::FaultError> {
    let va = VirtAddr::expect_canonical(addr);
    for _ in 0..100_000 {
        if mm.follow_pte(va).is_some() {
            return Ok(());
        }
        mm.handle_mm_fault(va, crate::memory::FaultAccess { write: false, exec: false })?;
        std::thread::yield_now();
    }
    panic!("the fault at {addr:#x} kept being retried");
}

/// Linux's VMA window: a VMA's first fault reads the 8 pages around it
/// (3 below, 4 above: hits start at 4, so the window is 4 + 2 rounded up,
/// at `page_cluster` 3); faults on them are hits, each telling the VMA
/// where it was; the fault just past them reads the next 8 ahead; the
/// page-cluster caps the window, and 0 turns readahead off.
#[test]
fn vma_readahead_reads_a_window_around_the_fault_then_ahead_of_sequential_faults() {
    const PAGES: u64 = 64;
    with_env(|env| {
        let swap = registered(env);
        let mm = swapped_out_area(env, swap, PAGES);
        let (ra, hit) = (events(env, SwapRa), events(env, SwapRaHit));
        let f = X + 20 * P;
        fault_in(&mm, f).unwrap();
        let window: Vec<u64> = (0..PAGES).filter(|&i| cached(swap, &mm, X + i * P)).collect();
        assert_eq!(window, [17, 18, 19, 21, 22, 23, 24], "the pages read ahead, the faulting one mapped");
        assert_eq!(events(env, SwapRa) - ra, 7);
        for i in 21..=24 {
            fault_in(&mm, X + i * P).unwrap();
        }
        assert_eq!(events(env, SwapRaHit) - hit, 4);
        fault_in(&mm, X + 25 * P).unwrap();
        let window: Vec<u64> = (25..PAGES).filter(|&i| cached(swap, &mm, X + i * P)).collect();
        assert_eq!(window, [26, 27, 28, 29, 30, 31, 32], "4 hits: 8 pages ahead of the fault");
        assert_eq!(events(env, SwapRa) - ra, 14);

        // A window of one page: every fault reads just its own.
        env.pgdat.set_page_cluster(0).unwrap();
        let ra = events(env, SwapRa);
        for i in 40..48 {
            fault_in(&mm, X + i * P).unwrap();
        }
        assert_eq!(events(env, SwapRa), ra, "page-cluster 0 reads nothing ahead");
        assert!((48..PAGES).all(|i| !cached(swap, &mm, X + i * P)));
        assert_eq!(env.pgdat.set_page_cluster(32).unwrap_err().max, 31, "Linux's bound");
        assert_eq!(env.pgdat.page_cluster(), 0, "a refused value changed nothing");
        let mut mm = mm;
        mm.exit_mmap();
        assert_eq!(swap.in_use(), 0);
        assert_eq!(env.pgdat.node_page_state(NodeStatItem::NrSwapcache), 0);
    });
}

/// Cluster readahead (`vma_ra_enabled` off): the aligned block of 8 slots
/// around the fault's is read, slots that are free or already cached
/// skipped; its hits grow the next window (the machine's
/// `swapin_readahead_hits`), and a sequential run reads intact.
#[test]
fn cluster_readahead_reads_the_aligned_block_skipping_free_and_cached_slots() {
    const PAGES: u64 = 64;
    with_env(|env| {
        let swap = registered(env);
        env.pgdat.set_swap_vma_ra_enabled(false);
        let mut mm = swapped_out_area(env, swap, PAGES);
        let slot = |i: u64| entry_at(&mm, X + i * P).unwrap().offset();
        // Slots follow the pages: reclaim took them in order.
        assert!((1..PAGES).all(|i| slot(i) == slot(0) + i), "slots not in address order");
        let base = slot(0);
        // The first page whose slot starts an aligned block of 8, and
        // the page in the middle of that block.
        let first = (0..PAGES).find(|&i| (base + i) % 8 == 0).unwrap();
        let target = first + 4;
        // One slot of the block freed (its page unmapped), one cached.
        mm.do_munmap(X + (first + 1) * P, P).unwrap();
        let cached_entry = entry_at(&mm, X + (first + 2) * P).unwrap();
        let pfn = read_swap_cache_async(env.pgdat, swap, cached_entry, crate::gfp::GFP_HIGHUSER_MOVABLE).unwrap();
        let reads = swap.reads.load(Ordering::Relaxed);
        let ra = events(env, SwapRa);
        fault_in(&mm, X + target * P).unwrap();
        assert_eq!(swap.reads.load(Ordering::Relaxed) - reads, 6, "8 slots, one free, one cached");
        assert_eq!(events(env, SwapRa) - ra, 5, "the faulting page is no readahead");
        for i in [0, 3, 5, 6, 7] {
            assert!(cached(swap, &mm, X + (first + i) * P), "block slot {i} not read");
        }
        assert!(!cached(swap, &mm, X + (first + 8) * P), "read past the block");
        // SAFETY: the reference `read_swap_cache_async` gave; the page is
        // in the swap cache, which holds one of its own.
        #[allow(unsafe_code)]
        let _ = unsafe { env.pgdat.put_page(pfn) };
        let hit = events(env, SwapRaHit);
        for i in (first + 8..PAGES).chain(0..first + 8) {
            if i != first + 1 {
                assert_eq!(crate::mmap::tests::read(env, &mut mm, X + i * P), Ok(0x40 + i as u8), "page {i}");
            }
        }
        assert!(events(env, SwapRaHit) - hit > PAGES / 2, "a sequential run hits its readahead");
        mm.exit_mmap();
        assert_eq!(swap.in_use(), 0);
        assert_eq!(env.pgdat.node_page_state(NodeStatItem::NrSwapcache), 0);
    });
}

/// A swap-in's page is in the swap cache locked and not uptodate while
/// its read is in flight, on the LRU; its neighbours read ahead carry
/// `PG_readahead`. The fault waits for the read (the page lock), then
/// maps the page; reclaim meanwhile leaves the locked pages alone.
#[test]
fn a_fault_waits_on_the_locked_page_until_its_read_completes() {
    const PAGES: u64 = 16;
    with_env(|env| {
        let swap = registered(env);
        let mm = swapped_out_area(env, swap, PAGES);
        swap.defer_reads.store(true, Ordering::Relaxed);
        let target = X + 4 * P;
        let entry = entry_at(&mm, target).unwrap();
        std::thread::scope(|s| {
            let faulting = s.spawn(|| fault_in(&mm, target));
            // The fault sleeps on the page's lock: `PG_waiters`.
            let pfn = loop {
                if let Some(pfn) = swap.swap_cache_lookup(entry)
                    && env.page(pfn).test(PageFlags::WAITERS)
                {
                    break pfn;
                }
                std::thread::yield_now();
            };
            let page = env.page(pfn);
            assert!(page.test(PageFlags::LOCKED | PageFlags::SWAPCACHE | PageFlags::SWAPBACKED));
            assert!(!page.test(PageFlags::UPTODATE) && !page.test(PageFlags::READAHEAD));
            let pending = swap.pending.lock().unwrap().clone();
            assert_eq!(pending.len(), 8, "the window's reads, in flight together");
            for &(e, p) in &pending {
                let page = env.page(p);
                assert_eq!(folio_swap_entry(page), Some(e));
                assert!(page.test(PageFlags::LOCKED) && !page.test(PageFlags::UPTODATE));
                assert_eq!(page.test(PageFlags::READAHEAD), e != entry, "readahead pages are marked");
            }
            assert_eq!(reclaim(env, &[&mm], PAGES), 0, "reclaim leaves locked pages alone");
            assert!(!faulting.is_finished(), "the fault mapped a page whose read was in flight");
            swap.complete_reads(env.pgdat);
            assert_eq!(faulting.join().unwrap(), Ok(()));
        });
        let pfn = mm.follow_pte(VirtAddr::expect_canonical(target)).unwrap().phys.pfn();
        assert!(env.page(pfn).test(PageFlags::UPTODATE) && !env.page(pfn).test(PageFlags::LOCKED));
        assert!(env.ram.page(pfn).iter().all(|&b| b == 0x44), "the data read");
        swap.defer_reads.store(false, Ordering::Relaxed);
        let mut mm = mm;
        mm.exit_mmap();
        assert_eq!((swap.in_use(), env.pgdat.node_page_state(NodeStatItem::NrSwapcache)), (0, 0));
    });
}

/// A failed read leaves the page in the swap cache not uptodate: the
/// fault is SIGBUS (only the faulting task's, Linux `VM_FAULT_SIGBUS`),
/// and so is the next, the pte keeping its entry; once reclaim dropped
/// the page (clean, unmapped), a fault reads the slot again.
#[test]
fn a_failed_swap_read_is_sigbus_and_the_slot_is_read_again_later() {
    const PAGES: u64 = 8;
    with_env(|env| {
        let swap = registered(env);
        let mut mm = swapped_out_area(env, swap, PAGES);
        swap.fail_every_read.store(true, Ordering::Relaxed);
        let target = X + 2 * P;
        let access = crate::memory::FaultAccess { write: false, exec: false };
        let va = VirtAddr::expect_canonical(target);
        assert_eq!(mm.handle_mm_fault(va, access), Err(crate::memory::FaultError::SigBus));
        let entry = entry_at(&mm, target).expect("the pte keeps its entry");
        let pfn = swap.swap_cache_lookup(entry).expect("the page stays in the swap cache");
        let page = env.page(pfn);
        assert!(!page.test(PageFlags::UPTODATE) && !page.test(PageFlags::LOCKED));
        assert_eq!(mm.handle_mm_fault(va, access), Err(crate::memory::FaultError::SigBus), "still not uptodate");
        assert_eq!(mm.counter(MmCounter::SwapEnts), PAGES);
        swap.fail_every_read.store(false, Ordering::Relaxed);
        assert!(reclaim(env, &[&mm], PAGES) >= 1, "reclaim drops the pages whose reads failed");
        assert!(swap.swap_cache_lookup(entry).is_none());
        for i in 0..PAGES {
            assert_eq!(crate::mmap::tests::read(env, &mut mm, X + i * P), Ok(0x40 + i as u8), "page {i}");
        }
        mm.exit_mmap();
        assert_eq!((swap.in_use(), env.pgdat.node_page_state(NodeStatItem::NrSwapcache)), (0, 0));
    });
}

/// A fault that finds its page in the swap cache and waits for its lock
/// while reclaim takes it out of the cache sees it is no longer the
/// entry's when it gets the lock, and is retried (Linux's
/// `folio_matches_swap_entry` check): the retry reads the slot into a
/// new page, and the page taken out is mapped nowhere.
#[test]
fn a_fault_whose_page_left_the_swap_cache_while_it_waited_is_retried() {
    const PAGES: u64 = 4;
    with_env(|env| {
        let swap = registered(env);
        env.pgdat.set_page_cluster(0).unwrap();
        let mm = swapped_out_area(env, swap, PAGES);
        let target = X + P;
        let entry = entry_at(&mm, target).unwrap();
        let old = read_swap_cache_async(env.pgdat, swap, entry, crate::gfp::GFP_HIGHUSER_MOVABLE).unwrap();
        let page = env.page(old);
        let waits = &crate::sim::SimFolioWaits;
        // Reclaim's hold of the page.
        crate::filemap::folio_lock(page, old, waits);
        let majfault = events(env, Pgmajfault);
        std::thread::scope(|s| {
            let faulting = s.spawn(|| {
                let access = crate::memory::FaultAccess { write: false, exec: false };
                mm.handle_mm_fault(VirtAddr::expect_canonical(target), access)
            });
            while !page.test(PageFlags::WAITERS) {
                std::thread::yield_now();
            }
            assert!(delete_from_swap_cache(env.pgdat, swap, old, page));
            assert!(!page.put_testzero(), "the cache's reference, not the last");
            crate::filemap::folio_unlock(page, old, waits);
            assert_eq!(faulting.join().unwrap(), Ok(()), "retried");
        });
        assert_eq!(entry_at(&mm, target), Some(entry), "the retried fault left the pte alone");
        assert_eq!(events(env, Pgmajfault), majfault, "it read nothing");
        fault_in(&mm, target).unwrap();
        let new = mm.follow_pte(VirtAddr::expect_canonical(target)).unwrap().phys.pfn();
        assert_ne!(new, old, "the page taken out of the cache was mapped");
        assert!(env.ram.page(new).iter().all(|&b| b == 0x41));
        assert_eq!(page.mapcount(), 0);
        // SAFETY: the test's reference from `read_swap_cache_async`, the
        // last: the page is in no cache and no pte.
        #[allow(unsafe_code)]
        let _ = unsafe { env.pgdat.put_page(old) };
        let mut mm = mm;
        mm.exit_mmap();
        assert_eq!((swap.in_use(), env.pgdat.node_page_state(NodeStatItem::NrSwapcache)), (0, 0));
    });
}

/// A page reclaim wrote out but has not freed yet (still in the swap
/// cache, unmapped, its ptes holding the entry) is found there by a
/// fault and mapped again without a read: it was uptodate all along.
#[test]
fn a_fault_finds_a_page_still_in_the_swap_cache_after_swap_out() {
    with_env(|env| {
        let swap = registered(env);
        let mut mm = env.mm();
        mm.do_mmap(X, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        write(env, &mut mm, X, 0x3c).unwrap();
        env.pgdat.lru_add_drain_all();
        let pfn = mm.follow_pte(VirtAddr::expect_canonical(X)).unwrap().phys.pfn();
        let page = env.page(pfn);
        // Reclaim's steps for the page, short of freeing it.
        assert!(crate::filemap::folio_trylock(page));
        let entry = add_to_swap(env.pgdat, swap, pfn, page).expect("a slot");
        let rmms = crate::rmap::tests::TestMms { mms: vec![&mm], alloc: env.alloc, file: None };
        assert!(crate::rmap::try_to_unmap(&rmms, env.pgdat, pfn));
        assert!(swap_pageout(env.pgdat, swap, pfn, page));
        crate::filemap::folio_unlock(page, pfn, &crate::sim::SimFolioWaits);
        assert_eq!(entry_at(&mm, X), Some(entry));
        let (majfault, reads) = (events(env, Pgmajfault), swap.reads.load(Ordering::Relaxed));
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X), Ok(0x3c));
        assert_eq!(mm.follow_pte(VirtAddr::expect_canonical(X)).unwrap().phys.pfn(), pfn, "the same page");
        assert_eq!((events(env, Pgmajfault), swap.reads.load(Ordering::Relaxed)), (majfault, reads), "no read");
        mm.exit_mmap();
        assert_eq!((swap.in_use(), env.pgdat.node_page_state(NodeStatItem::NrSwapcache)), (0, 0));
    });
}

/// Several CPUs fault on the same swapped-out pages at once, readahead
/// racing readahead: each page is read once, mapped by one page with its
/// data, and the counts come out even.
#[test]
fn concurrent_swap_in_faults_read_each_slot_once() {
    const PAGES: u64 = 64;
    const CPUS: u64 = 4;
    with_env(|env| {
        let swap = registered(env);
        let mm = swapped_out_area(env, swap, PAGES);
        let start = std::sync::Barrier::new(CPUS as usize);
        std::thread::scope(|s| {
            for cpu in 0..CPUS {
                let (start, mm) = (&start, &mm);
                s.spawn(move || {
                    start.wait();
                    for i in 0..PAGES {
                        let page = (i * (2 * cpu + 1) + cpu * 16) % PAGES;
                        fault_in(mm, X + page * P).unwrap();
                    }
                });
            }
        });
        assert_eq!(swap.reads.load(Ordering::Relaxed), PAGES, "a slot read twice");
        for i in 0..PAGES {
            let pfn = mm.follow_pte(VirtAddr::expect_canonical(X + i * P)).unwrap().phys.pfn();
            assert!(env.ram.page(pfn).iter().all(|&b| b == 0x40 + i as u8), "page {i}");
        }
        assert_eq!((mm.counter(MmCounter::SwapEnts), mm.counter(MmCounter::AnonPages)), (0, PAGES));
        let mut mm = mm;
        mm.exit_mmap();
        assert_eq!((swap.in_use(), env.pgdat.node_page_state(NodeStatItem::NrSwapcache)), (0, 0));
    });
}

/// Reclaim's swap writes go to the task's plug, started for each
/// priority pass over the lists and finished at its end (Linux
/// `shrink_lruvec`'s `blk_start_plug`/`blk_finish_plug`), so that the
/// kernel merges neighbouring slots' writes; none is left started.
#[test]
fn reclaim_writes_swap_under_the_tasks_plug_and_finishes_it() {
    use crate::vmscan::{Reclaimer, shrink_page_cache};
    const PAGES: u64 = 32;
    with_env(|env| {
        let swap = registered(env);
        let mut mm = env.mm();
        let rw = PROT_READ | PROT_WRITE;
        mm.do_mmap(X, PAGES * P, rw, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        for i in 0..PAGES {
            write(env, &mut mm, X + i * P, i as u8).unwrap();
        }
        env.pgdat.lru_add_drain_all();
        let mms = [&mm];
        let owners = Owners { rmms: crate::rmap::tests::TestMms { mms: mms.to_vec(), alloc: env.alloc, file: None } };
        let mut freed = 0;
        for _ in 0..32 {
            freed += shrink_page_cache(
                env.pgdat,
                &owners,
                &crate::sim::SimFolioWaits,
                PAGES,
                Reclaimer::Kswapd,
                crate::gfp::GFP_KERNEL,
            );
        }
        assert_eq!(freed, PAGES);
        drop(owners);
        let written = swap.slots.lock().unwrap().values().filter(|s| s.data.is_some()).count();
        let plugs = swap.plugs.load(Ordering::Relaxed);
        assert!(written == PAGES as usize && plugs > 0, "{written} pages written under {plugs} plugs");
        assert_eq!(swap.unplugged_writes.load(Ordering::Relaxed), 0, "a swap write outside the plug");
        assert!(!swap.plugged.load(Ordering::Relaxed), "reclaim left its plug started");
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

/// Runs reclaim `rounds` times over the address spaces `mms` (each run
/// asking for `nr` pages); the pages freed.
fn reclaim_rounds(env: &Env<'_>, mms: &[&Mm<'_>], rounds: usize, nr: u64) -> u64 {
    use crate::vmscan::{Reclaimer, shrink_page_cache};
    env.pgdat.lru_add_drain_all();
    let owners = Owners { rmms: crate::rmap::tests::TestMms { mms: mms.to_vec(), alloc: env.alloc, file: None } };
    (0..rounds)
        .map(|_| {
            shrink_page_cache(
                env.pgdat,
                &owners,
                &crate::sim::SimFolioWaits,
                nr,
                Reclaimer::Direct,
                crate::gfp::GFP_KERNEL,
            )
        })
        .sum()
}

fn swapcache_pages(env: &Env<'_>) -> u64 {
    env.pgdat.node_page_state(NodeStatItem::NrSwapcache)
}

/// A write to `addr` as the CPU makes it: the data, and the pte's
/// accessed and dirty bits (the simulation has no MMU to set them).
fn cpu_write(env: &Env<'_>, mm: &mut Mm<'_>, addr: u64, byte: u8) {
    use crate::pgtable::{Leaf, PgProt};
    write(env, mm, addr, byte).unwrap();
    let slot = mm.pgd.pte_offset(VirtAddr::expect_canonical(addr), false).unwrap().unwrap();
    let fmt = mm.pgd.format();
    let Entry::Leaf(leaf) = fmt.decode(slot.load(Ordering::Acquire), Level::Pte) else {
        panic!("no page at {addr:#x}")
    };
    slot.store(fmt.encode_leaf(Leaf { prot: leaf.prot | PgProt::ACCESSED | PgProt::DIRTY, ..leaf }), Ordering::Release);
}

/// A swap write the disk fails keeps the page in memory, in the swap
/// cache under its entry (`PG_error`), which the ptes still name: reclaim
/// neither writes that slot again nor frees the page. The faults that
/// bring the page back find it there, intact; once no pte holds the slot
/// it goes bad (never allocated again), and the next reclaim gives the
/// page a new slot that works.
#[test]
fn a_failed_swap_write_keeps_the_page_and_its_slot_goes_bad_once_no_pte_holds_it() {
    const PAGES: u64 = 8;
    with_env(|env| {
        let swap = registered(env);
        // The model hands out slots 1, 2, ... in order: the first two fail.
        swap.fail_writes.lock().unwrap().extend([1, 2]);
        let mut mm = env.mm();
        mm.do_mmap(X, PAGES * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        for i in 0..PAGES {
            write(env, &mut mm, X + i * P, 0x30 + i as u8).unwrap();
        }
        let freed = reclaim_rounds(env, &[&mm], 16, PAGES);
        assert_eq!(freed, PAGES - 2, "the pages whose writes failed stay");
        assert!((0..PAGES).all(|i| entry_at(&mm, X + i * P).is_some()), "every pte holds its slot's entry");
        assert_eq!(swapcache_pages(env), 2);
        let kept: Vec<SwpEntry> = (0..2).map(|i| entry_at(&mm, X + i * P).unwrap()).collect();
        assert_eq!(kept.iter().map(|e| e.offset()).collect::<Vec<_>>(), [1, 2]);
        for &entry in &kept {
            let page = env.page(swap.swap_cache_lookup(entry).expect("in the swap cache"));
            assert!(page.test(crate::page_flags::PageFlags::ERROR) && page.test(crate::page_flags::PageFlags::DIRTY));
        }
        // Reclaim again: the page is needed by the ptes; no write to its
        // slot (the model refuses writes to bad slots), no free.
        assert_eq!(reclaim_rounds(env, &[&mm], 8, PAGES), 0);
        assert_eq!((swapcache_pages(env), swap.bad.lock().unwrap().len()), (2, 0));
        let reads = swap.reads.load(Ordering::Relaxed);
        for i in 0..PAGES {
            assert_eq!(crate::mmap::tests::read(env, &mut mm, X + i * P), Ok(0x30 + i as u8), "page {i}");
        }
        assert_eq!(swap.reads.load(Ordering::Relaxed) - reads, PAGES - 2, "the kept pages came from memory");
        assert_eq!(*swap.bad.lock().unwrap(), BTreeSet::from([1, 2]), "the failed slots are bad now");
        // The others keep their slots in the swap cache (swap is not full).
        assert_eq!((swap.in_use(), swapcache_pages(env)), (PAGES as usize - 2, PAGES - 2));
        assert_eq!(swap.total_swap_pages(), swap.size - 3, "bad slots are out of the area");
        // Swapped out again, all of them, to good slots.
        assert_eq!(reclaim_rounds(env, &[&mm], 16, PAGES), PAGES);
        assert!((0..PAGES).all(|i| entry_at(&mm, X + i * P).is_some_and(|e| e.offset() > 2)));
        for i in 0..PAGES {
            assert_eq!(crate::mmap::tests::read(env, &mut mm, X + i * P), Ok(0x30 + i as u8), "page {i}");
        }
        mm.exit_mmap();
        assert_eq!(swap.in_use(), 0);
    });
}

/// A page whose write failed and which two address spaces map again
/// (each read it back, so no pte holds the slot, but the page stays in
/// the swap cache, shared): reclaim marks the slot bad, gives the page a
/// new one and swaps it out from both; both read it back intact.
#[test]
fn reclaim_moves_a_page_whose_write_failed_to_a_new_slot_once_no_pte_holds_the_old_one() {
    with_env(|env| {
        let swap = registered(env);
        swap.fail_writes.lock().unwrap().insert(1);
        let mut parent = env.mm();
        parent.do_mmap(X, P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        write(env, &mut parent, X, 0x6b).unwrap();
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        assert_eq!(reclaim_rounds(env, &[&parent, &child], 8, 1), 0, "the write failed: the page stays");
        let failed = entry_at(&parent, X).expect("unmapped to its slot");
        assert_eq!((failed.offset(), swap.count(failed)), (1, 2));
        assert_eq!(crate::mmap::tests::read(env, &mut child, X), Ok(0x6b));
        assert_eq!(crate::mmap::tests::read(env, &mut parent, X), Ok(0x6b));
        assert_eq!((swap.count(failed), swapcache_pages(env)), (0, 1), "mapped twice, still in the swap cache");
        assert!(swap.bad.lock().unwrap().is_empty());
        assert_eq!(reclaim_rounds(env, &[&parent, &child], 8, 1), 1);
        assert_eq!(*swap.bad.lock().unwrap(), BTreeSet::from([1]));
        let moved = entry_at(&parent, X).expect("swapped out");
        assert_ne!(moved.offset(), 1);
        assert_eq!((entry_at(&child, X), swap.count(moved)), (Some(moved), 2));
        assert_eq!(crate::mmap::tests::read(env, &mut parent, X), Ok(0x6b));
        assert_eq!(crate::mmap::tests::read(env, &mut child, X), Ok(0x6b));
        child.exit_mmap();
        parent.exit_mmap();
        reclaim_rounds(env, &[], 8, 1);
        assert_eq!((swap.in_use(), swapcache_pages(env)), (0, 0));
    });
}

/// A slot that cannot be read makes the fault SIGBUS for the task that
/// faulted; its pte keeps the entry and the slot its count (a sharing
/// task's fault finds the same page, not uptodate, and is SIGBUS too, as
/// in Linux), and once reclaim dropped the page, a read that works
/// brings the data back.
#[test]
fn a_failed_swap_read_is_sigbus_for_the_faulting_task_and_the_slot_stays() {
    with_env(|env| {
        let swap = registered(env);
        let mut parent = env.mm();
        parent.do_mmap(X, 2 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        write(env, &mut parent, X, 0x11).unwrap();
        write(env, &mut parent, X + P, 0x22).unwrap();
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        assert_eq!(reclaim_rounds(env, &[&parent, &child], 16, 2), 2);
        let entry = entry_at(&parent, X).unwrap();
        swap.fail_reads.lock().unwrap().insert(entry.offset());
        assert_eq!(crate::mmap::tests::read(env, &mut child, X), Err(crate::memory::FaultError::SigBus));
        assert_eq!((entry_at(&child, X), swap.count(entry)), (Some(entry), 2), "the pte keeps its entry");
        let failed = swap.swap_cache_lookup(entry).expect("the page whose read failed stays in the swap cache");
        assert!(!env.page(failed).test(PageFlags::UPTODATE) && swap.slots.lock().unwrap()[&key(entry)].cache);
        assert_eq!(crate::mmap::tests::read(env, &mut child, X + P), Ok(0x22), "the other page is fine");
        assert_eq!(crate::mmap::tests::read(env, &mut parent, X), Err(crate::memory::FaultError::SigBus));
        child.exit_mmap();
        assert_eq!(swap.count(entry), 1, "the child's exit gave its count back");
        swap.fail_reads.lock().unwrap().clear();
        assert_eq!(crate::mmap::tests::read(env, &mut parent, X), Err(crate::memory::FaultError::SigBus));
        reclaim_rounds(env, &[&parent], 8, 16);
        assert_eq!(swap.swap_cache_lookup(entry), None, "reclaim dropped the page whose read failed");
        assert_eq!(crate::mmap::tests::read(env, &mut parent, X), Ok(0x11));
        parent.exit_mmap();
        reclaim_rounds(env, &[], 8, 2);
        assert_eq!((swap.in_use(), swapcache_pages(env)), (0, 0));
    });
}

/// swapoff's unuse of a slot that cannot be read puts a poisoned entry
/// in the pte and gives the slot its count back (Linux `unuse_pte`): the
/// area empties, the next touch is SIGBUS, fork copies the poison and
/// unmapping clears it.
#[test]
fn swapoff_poisons_a_pte_whose_slot_cannot_be_read() {
    with_env(|env| {
        let swap = registered(env);
        let mut mm = env.mm();
        mm.do_mmap(X, 2 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        write(env, &mut mm, X, 0x44).unwrap();
        write(env, &mut mm, X + P, 0x55).unwrap();
        assert_eq!(reclaim_rounds(env, &[&mm], 16, 2), 2);
        let lost = entry_at(&mm, X).unwrap();
        swap.fail_reads.lock().unwrap().insert(lost.offset());
        assert_eq!(mm.unuse_swap_area(0), Ok(1), "the readable page came back");
        let poisoned = entry_at(&mm, X).expect("a non-present pte");
        assert!(crate::swapops::is_poisoned_swp_entry(poisoned));
        // The page read back stays in the swap cache until swapoff's
        // pass over it (Linux `try_to_unuse`), which frees its slot.
        assert_eq!((swap.count(lost), swap.in_use(), mm.counter(MmCounter::SwapEnts)), (0, 1, 0));
        let back = mm.follow_pte(VirtAddr::expect_canonical(X + P)).unwrap().phys.pfn();
        assert!(folio_trylock(env.page(back)));
        assert!(folio_free_swap(env.pgdat, swap, back, env.page(back)), "the mapped page leaves the cache");
        folio_unlock(env.page(back), back, &crate::sim::SimFolioWaits);
        assert_eq!(swap.in_use(), 0, "the area is empty");
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X), Err(crate::memory::FaultError::SigBus));
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X + P), Ok(0x55));
        let mut child = env.mm();
        mm.dup_mmap(&mut child).unwrap();
        assert_eq!(entry_at(&child, X), Some(poisoned), "fork copies the poison");
        assert_eq!(crate::mmap::tests::read(env, &mut child, X), Err(crate::memory::FaultError::SigBus));
        child.exit_mmap();
        mm.do_munmap(X, P).unwrap();
        assert_eq!(entry_at(&mm, X), None, "munmap cleared it");
        mm.exit_mmap();
    });
}

/// The reclaim context madvise(MADV_PAGEOUT) runs with in these tests.
fn pageout(env: &Env<'_>, mm: &Mm<'_>, mms: &[&Mm<'_>], start: u64, len: u64) -> Result<(), uapi::errno::Errno> {
    let owners = Owners { rmms: crate::rmap::tests::TestMms { mms: mms.to_vec(), alloc: env.alloc, file: None } };
    mm.madvise_pageout(start, len, &owners, &crate::sim::SimFolioWaits)
}

/// MADV_PAGEOUT sends the pages only this address space maps to swap at
/// once, however recently used (Linux `reclaim_pages`): their ptes hold
/// entries (`VmSwap`), `pswpout`-style writes happen, a page a child
/// shares stays mapped; the data reads back intact, from the swap cache
/// and, once reclaim freed the pages, from the slots. Without free
/// slots nothing moves.
#[test]
fn madvise_pageout_swaps_out_the_pages_only_this_process_maps() {
    const PAGES: u64 = 4;
    with_env(|env| {
        let mut mm = env.mm();
        mm.do_mmap(X, PAGES * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        for i in 0..PAGES {
            cpu_write(env, &mut mm, X + i * P, 0x60 + i as u8);
        }
        // No swap yet: nothing can go.
        assert_eq!(pageout(env, &mm, &[&mm], X, PAGES * P), Ok(()));
        assert!((0..PAGES).all(|i| entry_at(&mm, X + i * P).is_none()));
        let swap = registered(env);
        let mut child = env.mm();
        mm.dup_mmap(&mut child).unwrap();
        child.do_munmap(X + P, (PAGES - 1) * P).unwrap();
        assert_eq!(pageout(env, &mm, &[&mm, &child], X, PAGES * P), Ok(()));
        assert_eq!(entry_at(&mm, X), None, "the page the child shares stays");
        assert!((1..PAGES).all(|i| entry_at(&mm, X + i * P).is_some()), "the others are swapped out");
        assert_eq!(mm.counter(MmCounter::SwapEnts), PAGES - 1);
        assert!((1..PAGES).all(|i| swap.slots.lock().unwrap()[&key(entry_at(&mm, X + i * P).unwrap())].data.is_some()));
        assert_eq!(swapcache_pages(env), PAGES - 1, "written, waiting in the swap cache for reclaim");
        // Their writes done, they wait at the cold end: reclaim frees them.
        for _ in 0..8 {
            if swapcache_pages(env) > 0 {
                reclaim_rounds(env, &[&mm, &child], 1, 1);
            }
        }
        assert_eq!(swapcache_pages(env), 0);
        let reads = swap.reads.load(Ordering::Relaxed);
        for i in 0..PAGES {
            assert_eq!(crate::mmap::tests::read(env, &mut mm, X + i * P), Ok(0x60 + i as u8), "page {i}");
        }
        assert!(swap.reads.load(Ordering::Relaxed) - reads >= PAGES - 1, "the swapped-out pages were read");
        assert_eq!(mm.madvise(X, P, uapi::mman::MADV_PAGEOUT), Ok(()), "the write-locked path only deactivates");
        assert_eq!(pageout(env, &mm, &[&mm], X + PAGES * P, P), Err(uapi::errno::Errno::ENOMEM));
        child.exit_mmap();
        mm.exit_mmap();
        reclaim_rounds(env, &[], 8, PAGES);
        assert_eq!((swap.in_use(), swapcache_pages(env)), (0, 0));
    });
}

/// MADV_FREE (Linux `madvise_free_pte_range`): a swapped-out page's
/// entry goes with its slot; the present pages only this process maps
/// become lazily freeable (clean, on the inactive file list, not
/// swap-backed: `pglazyfree`), and reclaim drops them without swap
/// (`pglazyfreed`): they read as zeros, except the one written after
/// the call, which keeps its new data and is swap-backed again; a page a
/// child shares is left as it is.
#[test]
fn madvise_free_pages_are_dropped_by_reclaim_unless_written_again() {
    use crate::page_flags::PageFlags;
    use crate::swap::LruList;
    use crate::vmstat::VmEventItem;
    const PAGES: u64 = 5;
    with_env(|env| {
        let swap = registered(env);
        let mut mm = env.mm();
        mm.do_mmap(X, (PAGES + 1) * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0)
            .unwrap();
        for i in 0..PAGES {
            cpu_write(env, &mut mm, X + i * P, 0x70 + i as u8);
        }
        let gone = SwpEntry::new(0, 40);
        swap_out_pte(&mm, swap, X + PAGES * P, gone);
        let mut child = env.mm();
        mm.dup_mmap(&mut child).unwrap();
        child.do_munmap(X + P, PAGES * P).unwrap();
        env.pgdat.lru_add_drain_all();
        let pfns: Vec<Pfn> =
            (0..PAGES).map(|i| mm.follow_pte(VirtAddr::expect_canonical(X + i * P)).unwrap().phys.pfn()).collect();
        let (lazyfree, lazyfreed) =
            (env.pgdat.all_vm_events(VmEventItem::Pglazyfree), env.pgdat.all_vm_events(VmEventItem::Pglazyfreed));
        let inactive_file = env.pgdat.lru_pages(LruList::InactiveFile);
        assert_eq!(mm.madvise(X, (PAGES + 1) * P, uapi::mman::MADV_FREE), Ok(()));
        env.pgdat.lru_add_drain_all();
        assert_eq!((swap.count(gone), entry_at(&mm, X + PAGES * P)), (0, None), "the swap entry went with its slot");
        assert_eq!(mm.counter(MmCounter::SwapEnts), 0);
        assert_eq!(env.pgdat.all_vm_events(VmEventItem::Pglazyfree), lazyfree + PAGES - 1);
        assert_eq!(env.pgdat.lru_pages(LruList::InactiveFile), inactive_file + PAGES - 1);
        assert!(env.page(pfns[0]).test(PageFlags::SWAPBACKED), "the page the child shares is left alone");
        for &pfn in &pfns[1..] {
            assert!(!env.page(pfn).test(PageFlags::SWAPBACKED) && !env.page(pfn).test(PageFlags::DIRTY));
        }
        let pte = mm.follow_pte(VirtAddr::expect_canonical(X + P)).unwrap();
        assert!(!pte.prot.intersects(crate::pgtable::PgProt::DIRTY | crate::pgtable::PgProt::ACCESSED));
        // Before reclaim the data is still there; then page 2 is written.
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X + 3 * P), Ok(0x73));
        cpu_write(env, &mut mm, X + 2 * P, 0x99);
        reclaim_rounds(env, &[&mm, &child], 16, PAGES);
        assert_eq!(env.pgdat.all_vm_events(VmEventItem::Pglazyfreed), lazyfreed + PAGES - 2);
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X), Ok(0x70));
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X + P), Ok(0));
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X + 2 * P), Ok(0x99), "written after MADV_FREE: kept");
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X + 3 * P), Ok(0));
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X + 4 * P), Ok(0));
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X + PAGES * P), Ok(0), "its swap slot is gone");
        child.exit_mmap();
        mm.exit_mmap();
        reclaim_rounds(env, &[], 8, PAGES);
        assert_eq!((swap.in_use(), swapcache_pages(env)), (0, 0));
    });
}

/// MADV_DONTNEED drops a swapped-out page with its slot count: the range
/// reads zeros, `VmSwap` falls, the slot is free.
#[test]
fn madvise_dontneed_frees_swap_entries() {
    with_env(|env| {
        let swap = registered(env);
        let mut mm = env.mm();
        mm.do_mmap(X, 2 * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        write(env, &mut mm, X, 0x12).unwrap();
        write(env, &mut mm, X + P, 0x34).unwrap();
        assert_eq!(reclaim_rounds(env, &[&mm], 16, 2), 2);
        assert_eq!((mm.counter(MmCounter::SwapEnts), swap.in_use()), (2, 2));
        assert_eq!(mm.madvise(X, P, uapi::mman::MADV_DONTNEED), Ok(()));
        assert_eq!((mm.counter(MmCounter::SwapEnts), swap.in_use()), (1, 1));
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X), Ok(0));
        assert_eq!(crate::mmap::tests::read(env, &mut mm, X + P), Ok(0x34));
        mm.exit_mmap();
        assert_eq!(swap.in_use(), 0);
    });
}
