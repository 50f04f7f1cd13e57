//! Host tests of page migration on a simulated machine: a page moves with
//! its data, pte and counters; pages that cannot move stay put.

use std::cell::RefCell;

use uapi::mman::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE};

use super::*;
use crate::gfp::GFP_HIGHUSER_MOVABLE;
use crate::memory::{FaultAccess, FaultError};
use crate::mmap::MmCounter;
use core::sync::atomic::Ordering;

use crate::addr::{PAGE_SHIFT, VirtAddr};
use crate::arch::FolioWaitTable;
use crate::interval_tree::MmId;
use crate::pgtable::{PgProt, X86PteFormat};
use crate::rmap::RmapMms;
use crate::sim::SimFolioWaits;
use crate::vmstat::NodeStatItem;

pub(crate) use crate::mmap::tests::{Env, Mm, P, TestAlloc, X, with_env};

impl<'a> Env<'a> {
    /// Maps `pages` private anonymous pages at [`X`] and writes each with
    /// `pattern(i)`.
    pub(crate) fn populate(&self, mm: &mut Mm<'a>, pages: u64, pattern: impl Fn(u64) -> u8) {
        let prot = PROT_READ | PROT_WRITE;
        assert_eq!(mm.do_mmap(X, pages * P, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0), Ok(X));
        for i in 0..pages {
            let addr = X + i * P;
            mm.handle_mm_fault_exclusive(VirtAddr::expect_canonical(addr), FaultAccess { write: true, exec: false })
                .unwrap();
            self.ram.fill(pfn_at(mm, addr), pattern(i));
        }
    }
}

/// The frame the pte at `addr` maps.
pub(crate) fn pfn_at(mm: &Mm<'_>, addr: u64) -> Pfn {
    mm.follow_pte(VirtAddr::expect_canonical(addr)).expect("no pte").phys.pfn()
}

/// Address spaces for the rmap walk, each borrowed for the walk as the
/// kernel locks each: one the test holds borrowed mutably is busy and
/// skipped, as the kernel skips an address space whose mmap lock it
/// cannot take.
pub(crate) struct Mms<'m, 'a>(pub(crate) &'m [&'m RefCell<Mm<'a>>], &'a TestAlloc);

impl<'m, 'a> Mms<'m, 'a> {
    /// The walk over `mms`, which share the environment's allocator.
    pub(crate) fn new(env: &Env<'a>, mms: &'m [&'m RefCell<Mm<'a>>]) -> Self {
        Mms(mms, env.alloc)
    }
}

impl<'a> RmapMms<'a, X86PteFormat, &'a TestAlloc> for Mms<'_, 'a> {
    fn vma_alloc(&self) -> &&'a TestAlloc {
        &self.1
    }

    fn with_mms(&self, ids: &[MmId], all: bool, f: &mut crate::rmap::WithMms<'_, 'a, X86PteFormat, &'a TestAlloc>) {
        let guards: Vec<_> = self.0.iter().filter_map(|mm| mm.try_borrow().ok()).collect();
        let mms: Vec<&Mm<'a>> =
            guards.iter().map(|g| &**g).filter(|mm| all || ids.contains(&mm.vmas().owner())).collect();
        f(&mms);
    }

    fn folio_waits(&self) -> &dyn FolioWaitTable {
        &SimFolioWaits
    }
}

/// New pages from the allocator; counts what comes back.
struct Pages<'p, 'a> {
    pgdat: &'p PgData<'a>,
    returned: Vec<Pfn>,
}

impl MigrationTarget for Pages<'_, '_> {
    fn alloc(&mut self) -> Option<Pfn> {
        self.pgdat.alloc_pages(GFP_HIGHUSER_MOVABLE, 0)
    }

    unsafe fn free(&mut self, pfn: Pfn) {
        self.returned.push(pfn);
        // SAFETY: the trait's contract: migration gives back a page it did not use.
        unsafe { self.pgdat.free_pages(pfn, 0) }.unwrap();
    }
}

fn events(pgdat: &PgData<'_>, item: VmEventItem) -> u64 {
    pgdat.all_vm_events(item)
}

#[test]
fn migrate_moves_anonymous_page_with_data_pte_and_counters() {
    with_env(|env| {
        let mm = RefCell::new(env.mm());
        env.populate(&mut mm.borrow_mut(), 3, |i| 0x40 + i as u8);
        let old = pfn_at(&mm.borrow(), X + P);
        let old_leaf = mm.borrow().follow_pte(VirtAddr::expect_canonical(X + P)).unwrap();
        let anon = env.pgdat.node_page_state(NodeStatItem::NrAnonMapped);
        env.tlb.take();
        let mut target = Pages { pgdat: env.pgdat, returned: Vec::new() };
        let stats = migrate_pages(env.pgdat, &Mms::new(env, &[&mm]), &[old], &mut target);
        assert_eq!(stats, MigrateStats { succeeded: 1, failed: 0, skipped: 0 });
        assert!(target.returned.is_empty());
        let mm = mm.into_inner();
        let new = pfn_at(&mm, X + P);
        assert_ne!(new, old, "the pte maps the new page");
        assert!(env.ram.page(new).iter().all(|&b| b == 0x41), "data copied");
        let leaf = mm.follow_pte(VirtAddr::expect_canonical(X + P)).unwrap();
        assert_eq!(leaf.prot, old_leaf.prot, "same protection, dirty and accessed bits");
        assert!(leaf.prot.contains(PgProt::WRITE));
        assert_eq!(env.tlb.take(), [(X + P, P)], "old pte flushed");
        let (newpage, oldpage) = (env.pgdat.pfn_to_page(new).unwrap(), env.pgdat.pfn_to_page(old).unwrap());
        env.pgdat.lru_add_drain_all();
        assert_eq!((newpage.refcount(), newpage.mapcount()), (1, 1));
        assert!(rmap::page_anon(newpage) && newpage.test(PageFlags::SWAPBACKED));
        assert_eq!(newpage.index(), (X + P) >> PAGE_SHIFT);
        assert_eq!((oldpage.refcount(), oldpage.mapcount(), oldpage.mapping()), (0, 0, 0), "old page freed");
        assert_eq!(env.pgdat.node_page_state(NodeStatItem::NrAnonMapped), anon, "nr_anon_pages unchanged");
        assert_eq!(mm.counter(MmCounter::AnonPages), 3, "RSS unchanged");
        assert_eq!(events(env.pgdat, VmEventItem::PgmigrateSuccess), 1);
        assert_eq!(events(env.pgdat, VmEventItem::PgmigrateFail), 0);
        // The neighbours are untouched and the moved page works as before:
        // writing it needs no fault, and munmap frees the new page.
        assert!(env.ram.page(pfn_at(&mm, X)).iter().all(|&b| b == 0x40));
        assert!(env.ram.page(pfn_at(&mm, X + 2 * P)).iter().all(|&b| b == 0x42));
        drop(mm);
    });
}

#[test]
fn migrate_moves_a_page_shared_after_fork_in_both_address_spaces() {
    with_env(|env| {
        let parent = RefCell::new(env.mm());
        env.populate(&mut parent.borrow_mut(), 1, |_| 7);
        let child = RefCell::new(env.mm());
        parent.borrow_mut().dup_mmap(&mut child.borrow_mut()).unwrap();
        let old = pfn_at(&parent.borrow(), X);
        env.tlb.take();
        let mut target = Pages { pgdat: env.pgdat, returned: Vec::new() };
        let stats = migrate_pages(env.pgdat, &Mms::new(env, &[&parent, &child]), &[old], &mut target);
        assert_eq!(stats, MigrateStats { succeeded: 1, failed: 0, skipped: 0 });
        let new = pfn_at(&parent.borrow(), X);
        assert_ne!(new, old);
        assert_eq!(pfn_at(&child.borrow(), X), new, "both ptes map the new page");
        assert!(env.ram.page(new).iter().all(|&b| b == 7), "data copied");
        assert_eq!(env.tlb.take().len(), 2, "one flush per address space");
        let newpage = env.pgdat.pfn_to_page(new).unwrap();
        env.pgdat.lru_add_drain_all();
        assert_eq!((newpage.refcount(), newpage.mapcount()), (2, 2));
        for mm in [&parent, &child] {
            let leaf = mm.borrow().follow_pte(VirtAddr::expect_canonical(X)).unwrap();
            assert!(!leaf.prot.contains(PgProt::WRITE), "still copy-on-write");
        }
        // Each side's write still copies, and the other keeps the data.
        crate::mmap::tests::write(env, &mut child.borrow_mut(), X, 8).unwrap();
        assert!(env.ram.page(pfn_at(&parent.borrow(), X)).iter().all(|&b| b == 7));
        assert_eq!(events(env.pgdat, VmEventItem::PgmigrateSuccess), 1);
    });
}

#[test]
fn migrate_puts_back_a_page_a_busy_address_space_maps() {
    with_env(|env| {
        let parent = RefCell::new(env.mm());
        env.populate(&mut parent.borrow_mut(), 1, |_| 7);
        let child = RefCell::new(env.mm());
        parent.borrow_mut().dup_mmap(&mut child.borrow_mut()).unwrap();
        let old = pfn_at(&parent.borrow(), X);
        let mut target = Pages { pgdat: env.pgdat, returned: Vec::new() };
        let busy = child.borrow_mut();
        let stats = migrate_pages(env.pgdat, &Mms::new(env, &[&parent, &child]), &[old], &mut target);
        drop(busy);
        assert_eq!(stats, MigrateStats { succeeded: 0, failed: 1, skipped: 0 });
        assert_eq!(target.returned.len(), 1, "the unused target page went back");
        assert_eq!(pfn_at(&parent.borrow(), X), old, "the parent's pte is back");
        assert_eq!(pfn_at(&child.borrow(), X), old);
        let page = env.pgdat.pfn_to_page(old).unwrap();
        assert_eq!((page.refcount(), page.mapcount()), (2, 2));
        assert!(!crate::filemap::folio_test_locked(page));
        assert_eq!(events(env.pgdat, VmEventItem::PgmigrateFail), 1);
    });
}

#[test]
fn migrate_skips_page_with_extra_reference() {
    with_env(|env| {
        let mm = RefCell::new(env.mm());
        env.populate(&mut mm.borrow_mut(), 1, |_| 9);
        let old = pfn_at(&mm.borrow(), X);
        let page = env.pgdat.pfn_to_page(old).unwrap();
        page.get();
        let mut target = Pages { pgdat: env.pgdat, returned: Vec::new() };
        let stats = migrate_pages(env.pgdat, &Mms::new(env, &[&mm]), &[old], &mut target);
        assert_eq!(stats, MigrateStats { succeeded: 0, failed: 1, skipped: 0 });
        assert_eq!(target.returned.len(), 1);
        assert_eq!(pfn_at(&mm.borrow(), X), old, "pte back");
        assert!(env.ram.page(old).iter().all(|&b| b == 9));
        // SAFETY: the reference the test took with get(); the pte keeps its own.
        unsafe { env.pgdat.put_page(old) }.unwrap();
    });
}

#[test]
fn migrate_finds_no_mapping_in_another_address_space() {
    with_env(|env| {
        let mm = RefCell::new(env.mm());
        let other = RefCell::new(env.mm());
        env.populate(&mut mm.borrow_mut(), 1, |_| 3);
        // The same addresses in another space, mapping other pages.
        env.populate(&mut other.borrow_mut(), 1, |_| 4);
        let old = pfn_at(&mm.borrow(), X);
        let mut target = Pages { pgdat: env.pgdat, returned: Vec::new() };
        let stats = migrate_pages(env.pgdat, &Mms::new(env, &[&other, &mm]), &[env.zero], &mut target);
        assert_eq!(stats, MigrateStats { succeeded: 0, failed: 1, skipped: 0 }, "the zero page does not move");
        // The reverse map finds the right one.
        let mut target = Pages { pgdat: env.pgdat, returned: Vec::new() };
        let stats = migrate_pages(env.pgdat, &Mms::new(env, &[&other, &mm]), &[old], &mut target);
        assert_eq!(stats.succeeded, 1);
        assert!(env.ram.page(pfn_at(&mm.borrow(), X)).iter().all(|&b| b == 3));
        assert!(env.ram.page(pfn_at(&other.borrow(), X)).iter().all(|&b| b == 4));
    });
}

#[test]
fn migrate_batch_flushes_each_address_space_once() {
    with_env(|env| {
        let a = RefCell::new(env.mm());
        let b = RefCell::new(env.mm());
        env.populate(&mut a.borrow_mut(), 6, |i| 0x10 + i as u8);
        env.populate(&mut b.borrow_mut(), 2, |i| 0x20 + i as u8);
        // Interleaved: pages 1, 3 and 5 of `a` and both pages of `b`.
        let from = [
            pfn_at(&a.borrow(), X + P),
            pfn_at(&b.borrow(), X),
            pfn_at(&a.borrow(), X + 3 * P),
            pfn_at(&b.borrow(), X + P),
            pfn_at(&a.borrow(), X + 5 * P),
        ];
        env.tlb.take();
        let mut target = Pages { pgdat: env.pgdat, returned: Vec::new() };
        let stats = migrate_pages(env.pgdat, &Mms::new(env, &[&a, &b]), &from, &mut target);
        assert_eq!(stats, MigrateStats { succeeded: 5, failed: 0, skipped: 0 });
        assert_eq!(env.tlb.take(), [(X + P, 5 * P), (X, 2 * P)], "one flush per address space, over its pages");
        let moved = [(&a, 1, from[0]), (&b, 0, from[1]), (&a, 3, from[2]), (&b, 1, from[3]), (&a, 5, from[4])];
        for (mm, i, old) in moved {
            assert_ne!(pfn_at(&mm.borrow(), X + i * P), old, "page {i} moved");
        }
        for i in 0..6 {
            let bytes = env.ram.page(pfn_at(&a.borrow(), X + i * P));
            assert!(bytes.iter().all(|&byte| byte == 0x10 + i as u8), "page {i} of a");
        }
        for i in 0..2 {
            let bytes = env.ram.page(pfn_at(&b.borrow(), X + i * P));
            assert!(bytes.iter().all(|&byte| byte == 0x20 + i as u8), "page {i} of b");
        }
        assert_eq!(events(env.pgdat, VmEventItem::PgmigrateSuccess), 5);
    });
}

#[test]
fn migrate_batch_puts_back_a_pinned_page_and_moves_the_rest() {
    with_env(|env| {
        let mm = RefCell::new(env.mm());
        env.populate(&mut mm.borrow_mut(), 3, |i| 0x30 + i as u8);
        let from: Vec<Pfn> = (0..3).map(|i| pfn_at(&mm.borrow(), X + i * P)).collect();
        let pinned = env.pgdat.pfn_to_page(from[1]).unwrap();
        pinned.get();
        let mut target = Pages { pgdat: env.pgdat, returned: Vec::new() };
        let stats = migrate_pages(env.pgdat, &Mms::new(env, &[&mm]), &from, &mut target);
        assert_eq!(stats, MigrateStats { succeeded: 2, failed: 1, skipped: 0 });
        assert_eq!(pfn_at(&mm.borrow(), X + P), from[1], "the pinned page stays mapped");
        assert_ne!(pfn_at(&mm.borrow(), X), from[0]);
        assert_ne!(pfn_at(&mm.borrow(), X + 2 * P), from[2]);
        for i in 0..3 {
            assert!(env.ram.page(pfn_at(&mm.borrow(), X + i * P)).iter().all(|&b| b == 0x30 + i as u8));
        }
        // SAFETY: the reference the test took with get(); the pte keeps its own.
        unsafe { env.pgdat.put_page(from[1]) }.unwrap();
    });
}

/// Address spaces shared between threads, each visited through a shared
/// borrow, as the kernel visits each under its mmap lock held for reading.
struct SharedMms<'m, 'a>(&'m [&'m Mm<'a>], &'a TestAlloc);

impl<'a> RmapMms<'a, X86PteFormat, &'a TestAlloc> for SharedMms<'_, 'a> {
    fn vma_alloc(&self) -> &&'a TestAlloc {
        &self.1
    }

    fn with_mms(&self, _ids: &[MmId], _all: bool, f: &mut crate::rmap::WithMms<'_, 'a, X86PteFormat, &'a TestAlloc>) {
        f(self.0);
    }

    fn folio_waits(&self) -> &dyn FolioWaitTable {
        &SimFolioWaits
    }
}

/// Migration runs under the read lock, beside faults: a migration thread
/// moves every page of a space again and again while two threads fault on
/// the same pages (reads and writes). A fault that meets a migration entry
/// returns `Retry` with the locked page; the thread waits for its unlock
/// (`folio_wait_locked`) and faults again, as the kernel does after
/// dropping the mmap lock. At the end every page holds its data, each pte
/// maps its own unlocked page once, and nothing leaked.
#[test]
fn migration_under_the_read_lock_races_faults_and_loses_no_data() {
    const PAGES: u64 = 32;
    const ROUNDS: usize = 30;
    with_env(|env| {
        let mut mm = env.mm();
        env.populate(&mut mm, PAGES, |i| 0x10 + i as u8);
        let mm = &mm;
        let migrated = std::sync::atomic::AtomicU64::new(0);
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for t in 0..2u64 {
                let done = &done;
                s.spawn(move || {
                    let mut round = 0u64;
                    while !done.load(Ordering::Acquire) {
                        for i in 0..PAGES {
                            let addr = VirtAddr::expect_canonical(X + i * P);
                            let access = FaultAccess { write: (i + round + t).is_multiple_of(2), exec: false };
                            loop {
                                match mm.handle_mm_fault(addr, access) {
                                    Err(FaultError::Retry(pfn)) => {
                                        let page = env.pgdat.pfn_to_page(pfn).unwrap();
                                        crate::filemap::folio_wait_locked(page, pfn, &SimFolioWaits);
                                    }
                                    done => {
                                        assert_eq!(done, Ok(()));
                                        break;
                                    }
                                }
                            }
                        }
                        round += 1;
                    }
                });
            }
            let (migrated, done) = (&migrated, &done);
            s.spawn(move || {
                for _ in 0..ROUNDS {
                    // The frames as a scanner would find them: any page may
                    // have moved or be mid-move by the time it is tried.
                    let from: Vec<Pfn> = (0..PAGES)
                        .filter_map(|i| mm.follow_pte(VirtAddr::expect_canonical(X + i * P)))
                        .map(|l| l.phys.pfn())
                        .collect();
                    let mut target = Pages { pgdat: env.pgdat, returned: Vec::new() };
                    let stats = migrate_pages(env.pgdat, &SharedMms(&[mm], env.alloc), &from, &mut target);
                    migrated.fetch_add(stats.succeeded, Ordering::Relaxed);
                }
                done.store(true, Ordering::Release);
            });
        });
        assert!(migrated.load(Ordering::Relaxed) > 0, "no page moved");
        env.pgdat.lru_add_drain_all();
        for i in 0..PAGES {
            let pfn = pfn_at(mm, X + i * P);
            assert!(env.ram.page(pfn).iter().all(|&b| b == 0x10 + i as u8), "page {i} lost its data");
            let page = env.pgdat.pfn_to_page(pfn).unwrap();
            assert_eq!((page.refcount(), page.mapcount()), (1, 1), "page {i}");
            assert!(!crate::filemap::folio_test_locked(page), "page {i} left locked");
        }
        assert_eq!(mm.counter(MmCounter::AnonPages), PAGES);
    });
}
