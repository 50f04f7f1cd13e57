//! Host tests of the reverse map: `anon_vma` hierarchies under random
//! fork, exit, mmap, munmap, mprotect, mremap and fault sequences, checked
//! against a brute-force scan of every simulated address space.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use uapi::mman::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE, PROT_READ};

use super::*;
use crate::addr::{PAGE_SIZE, Pfn, VirtAddr};
use crate::arch::FolioWaitTable;
use crate::interval_tree::{IMmap, MmId};
use crate::memory::FaultAccess;
use crate::mmap::MapFile;
use crate::mmap::tests::{Env, Mm, TestAlloc, with_env};
use crate::page_alloc::PgData;
use crate::pgtable::{PgProt, X86PteFormat};
use crate::readahead::VmaRaAdvice;
use crate::sim::SimFolioWaits;
use crate::vma::VmaFlags;
use crate::vma::{FaultPage, FileFaultError, VmaFile};
use uapi::errno::Errno;
use uapi::mman::MAP_SHARED;

const P: u64 = PAGE_SIZE;
/// The window every operation works in.
const BASE: u64 = 0x2000_0000;
const WINDOW: u64 = 48;
const RW: u32 = PROT_READ | uapi::mman::PROT_WRITE;

/// The test's address spaces as an rmap walk reaches them: all lockable;
/// and the one file whose page cache the walk can find.
pub(crate) struct TestMms<'m, 'a> {
    pub(crate) mms: Vec<&'m Mm<'a>>,
    pub(crate) alloc: &'a TestAlloc,
    pub(crate) file: Option<&'m OnePageFile>,
}

impl<'a> RmapMms<'a, X86PteFormat, &'a TestAlloc> for TestMms<'_, 'a> {
    fn vma_alloc(&self) -> &&'a TestAlloc {
        &self.alloc
    }

    fn with_mms(&self, ids: &[MmId], all: bool, f: &mut crate::rmap::WithMms<'_, 'a, X86PteFormat, &'a TestAlloc>) {
        let mms: Vec<&Mm<'a>> = self.mms.iter().copied().filter(|mm| all || ids.contains(&mm.vmas().owner())).collect();
        f(&mms);
    }

    fn i_mmap(&self, mapping: u64, f: &mut dyn FnMut(&IMmap)) {
        if let Some(file) = self.file.filter(|_| mapping == ONE_PAGE_MAPPING) {
            f(&file.i_mmap);
        }
    }

    fn migrate_mapping(&self, mapping: u64, index: u64, old: Pfn, new: Pfn) -> bool {
        let pgdat = self.mms.first().map(|mm| mm.pgd.pgdat());
        match (self.file, pgdat) {
            (Some(file), Some(pgdat)) if mapping == ONE_PAGE_MAPPING && index == 0 => file.migrate(pgdat, old, new),
            _ => false,
        }
    }

    fn folio_waits(&self) -> &dyn FolioWaitTable {
        &SimFolioWaits
    }
}

/// The `mapping` of [`OnePageFile`]'s page.
const ONE_PAGE_MAPPING: u64 = 0x1000;

/// A file of one cached page with a reverse map, which records the
/// dirtiness the mm hands it.
pub(crate) struct OnePageFile {
    /// The cached page (migration may replace it).
    pfn: std::sync::atomic::AtomicU64,
    i_mmap: IMmap,
    refs: AtomicUsize,
    dirtied: AtomicUsize,
}

impl OnePageFile {
    /// The file, its page filled with `byte` and held by the cache.
    fn new(env: &Env<'_>, byte: u8) -> &'static OnePageFile {
        let pfn = env.pgdat.alloc_pages(crate::gfp::GFP_HIGHUSER_MOVABLE, 0).unwrap();
        env.ram.fill(pfn, byte);
        let page = env.page(pfn);
        page.set_mapping(ONE_PAGE_MAPPING);
        page.set_index(0);
        page.set(crate::page_flags::PageFlags::UPTODATE);
        Box::leak(Box::new(OnePageFile {
            pfn: std::sync::atomic::AtomicU64::new(pfn.as_u64()),
            i_mmap: IMmap::new(),
            refs: AtomicUsize::new(0),
            dirtied: AtomicUsize::new(0),
        }))
    }

    /// Drops the cache's page once nothing maps the file.
    #[allow(unsafe_code, reason = "the cache's put_page")]
    fn release(&self, env: &Env<'_>) {
        assert_eq!(self.refs.load(Ordering::Relaxed), 0, "a VMA still maps the file");
        env.page(self.pfn()).set_mapping(0);
        env.page(self.pfn()).clear(crate::page_flags::PageFlags::UPTODATE);
        // SAFETY: the cache's reference; no VMA maps the file any more.
        unsafe { env.pgdat.put_page(self.pfn()) }.unwrap();
    }

    /// The cached page.
    fn pfn(&self) -> Pfn {
        Pfn::new(self.pfn.load(Ordering::Relaxed))
    }

    /// The cache's half of migration (`AddressSpace::migrate_folio`).
    fn migrate(&self, env_pgdat: &PgData<'_>, old: Pfn, new: Pfn) -> bool {
        let (oldpage, newpage) = (env_pgdat.pfn_to_page(old).unwrap(), env_pgdat.pfn_to_page(new).unwrap());
        if self.pfn() != old || oldpage.refcount() != 2 {
            return false;
        }
        self.pfn.store(new.as_u64(), Ordering::Relaxed);
        newpage.get();
        assert!(!oldpage.put_testzero());
        true
    }
}

impl VmaFile for OnePageFile {
    fn name(&self) -> &str {
        "/one"
    }

    fn mapping_id(&self) -> Option<u64> {
        Some(ONE_PAGE_MAPPING)
    }

    fn i_mmap(&self) -> Option<&IMmap> {
        Some(&self.i_mmap)
    }

    fn get_file(&self) {
        self.refs.fetch_add(1, Ordering::Relaxed);
    }

    fn put_file(&self) {
        self.refs.fetch_sub(1, Ordering::Relaxed);
    }

    fn fault(&self, pgdat: &PgData<'_>, index: u64, _: VmaRaAdvice) -> Result<FaultPage, FileFaultError> {
        if index != 0 {
            return Err(FileFaultError::Eof);
        }
        pgdat.pfn_to_page(self.pfn()).unwrap().get();
        Ok(FaultPage { pfn: self.pfn(), major: false })
    }

    fn map_pages(&self, _: &PgData<'_>, _: u64, _: u64, _: &mut dyn FnMut(u64, Pfn)) {}

    fn page_mkwrite(&self, _: &PgData<'_>, _: u64, _: Pfn) -> Result<(), FileFaultError> {
        Ok(())
    }

    fn set_page_dirty(&self, _: &PgData<'_>, _: u64, _: Pfn) {
        self.dirtied.fetch_add(1, Ordering::Relaxed);
    }

    fn fsync_range(&self, _: u64, _: u64) -> Result<(), Errno> {
        Ok(())
    }

    fn willneed(&self, _: u64, _: u64) {}

    fn mincore_page(&self, _: u64) -> bool {
        true
    }
}

#[derive(Clone, Debug)]
enum Op {
    Mmap { mm: usize, at: u64, pages: u64 },
    Fault { mm: usize, page: u64, write: bool },
    Fork { mm: usize },
    Exit { mm: usize },
    Munmap { mm: usize, at: u64, pages: u64 },
    Mprotect { mm: usize, at: u64, pages: u64, write: bool },
    Mremap { mm: usize, at: u64, pages: u64, to: u64, dontunmap: bool },
}

fn op() -> impl Strategy<Value = Op> {
    let mm = 0..6usize;
    let at = 0..WINDOW;
    let pages = 1..8u64;
    prop_oneof![
        2 => (mm.clone(), at.clone(), pages.clone()).prop_map(|(mm, at, pages)| Op::Mmap { mm, at, pages }),
        6 => (mm.clone(), at.clone(), any::<bool>()).prop_map(|(mm, page, write)| Op::Fault { mm, page, write }),
        2 => mm.clone().prop_map(|mm| Op::Fork { mm }),
        1 => mm.clone().prop_map(|mm| Op::Exit { mm }),
        1 => (mm.clone(), at.clone(), pages.clone()).prop_map(|(mm, at, pages)| Op::Munmap { mm, at, pages }),
        1 => (mm.clone(), at.clone(), pages.clone(), any::<bool>())
            .prop_map(|(mm, at, pages, write)| Op::Mprotect { mm, at, pages, write }),
        1 => (mm, at.clone(), pages, at, any::<bool>())
            .prop_map(|(mm, at, pages, to, dontunmap)| Op::Mremap { mm, at, pages, to, dontunmap }),
    ]
}

/// Applies `op` to the live address spaces `mms`; errors (no VMA there,
/// a fault on a read-only page) are part of the sequence.
fn apply<'a>(env: &Env<'a>, mms: &mut Vec<Mm<'a>>, op: &Op) {
    let addr = |page: u64| BASE + page * P;
    let pick = |mms: &Vec<Mm<'a>>, i: usize| (!mms.is_empty()).then(|| i % mms.len());
    match *op {
        Op::Mmap { mm, at, pages } => {
            if mms.is_empty() {
                mms.push(env.mm());
            }
            let Some(i) = pick(mms, mm) else { return };
            let _ = mms[i].do_mmap(addr(at), pages * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0);
        }
        Op::Fault { mm, page, write } => {
            let Some(i) = pick(mms, mm) else { return };
            let _ = mms[i]
                .handle_mm_fault_exclusive(VirtAddr::expect_canonical(addr(page)), FaultAccess { write, exec: false });
        }
        Op::Fork { mm } => {
            let Some(i) = pick(mms, mm) else { return };
            if mms.len() >= 6 {
                return;
            }
            let mut child = env.mm();
            mms[i].dup_mmap(&mut child).unwrap();
            mms.push(child);
        }
        Op::Exit { mm } => {
            let Some(i) = pick(mms, mm) else { return };
            drop(mms.swap_remove(i));
        }
        Op::Munmap { mm, at, pages } => {
            let Some(i) = pick(mms, mm) else { return };
            let _ = mms[i].do_munmap(addr(at), pages * P);
        }
        Op::Mprotect { mm, at, pages, write } => {
            let Some(i) = pick(mms, mm) else { return };
            let prot = if write { RW } else { PROT_READ };
            let _ = mms[i].mprotect(addr(at), pages * P, u64::from(prot));
        }
        Op::Mremap { mm, at, pages, to, dontunmap } => {
            let Some(i) = pick(mms, mm) else { return };
            let mut flags = MREMAP_MAYMOVE | MREMAP_FIXED;
            if dontunmap {
                flags |= MREMAP_DONTUNMAP;
            }
            let _ = mms[i].mremap(addr(at), pages * P, pages * P, u64::from(flags), addr(to));
        }
    }
}

/// Every anonymous page mapped in the window of any address space, with
/// the ptes (address space, address) that map it: the brute-force scan.
fn scan(env: &Env<'_>, mms: &[Mm<'_>]) -> BTreeMap<Pfn, BTreeSet<(MmId, u64)>> {
    let mut found: BTreeMap<Pfn, BTreeSet<(MmId, u64)>> = BTreeMap::new();
    for mm in mms {
        for page in 0..2 * WINDOW {
            let addr = BASE + page * P;
            let Some(leaf) = mm.follow_pte(VirtAddr::expect_canonical(addr)) else { continue };
            let pfn = leaf.phys.pfn();
            if pfn == env.zero {
                continue;
            }
            if !page_anon(env.page(pfn)) {
                // A file's page: the tests that map one check it.
                continue;
            }
            found.entry(pfn).or_default().insert((mm.vmas().owner(), addr));
        }
    }
    found
}

/// Checks every invariant: the VMA trees (anon_vma chains included), the
/// rmap walk of every mapped page against the scan, and the counts of
/// every `anon_vma` against the VMAs (invariants 4 and 5) and the
/// allocator (nothing leaked).
fn check(env: &Env<'_>, mms: &[Mm<'_>]) {
    for mm in mms {
        mm.vmas().check().unwrap();
    }
    let rmms = TestMms { mms: mms.iter().collect(), alloc: env.alloc, file: None };
    for (pfn, ptes) in scan(env, mms) {
        let mut walked = BTreeSet::new();
        assert!(rmap_ptes(&rmms, env.pgdat, pfn, &mut |mm, addr| assert!(walked.insert((mm, addr)))));
        assert_eq!(walked, ptes, "rmap walk of {pfn:?}");
        assert_eq!(env.page(pfn).mapcount() as usize, ptes.len(), "mapcount of {pfn:?}");
    }
    // The anon_vmas reachable from the chains, and what they should count.
    let mut active: BTreeMap<AnonVmaPtr, u64> = BTreeMap::new();
    let mut avcs = 0;
    for mm in mms {
        for vma in mm.vmas().iter() {
            if let Some(av) = vma.anon.anon_vma() {
                *active.entry(av).or_default() += 1;
            }
            for av in chain_of(&vma.anon) {
                active.entry(av).or_default();
                avcs += 1;
            }
        }
    }
    let counts: BTreeMap<AnonVmaPtr, _> = active.keys().map(|&av| (av, anon_vma_counts(&env.alloc, av))).collect();
    for (&av, &(refcount, children, num_active, tree, root, _)) in &counts {
        assert_eq!(num_active, active[&av], "num_active_vmas");
        let kids = counts.values().filter(|c| c.5 == av).count() as u64;
        assert_eq!(children, kids, "num_children");
        let rooted = counts.iter().filter(|(k, c)| c.4 == av && **k != av).count() as u64;
        assert_eq!(refcount, u64::from(tree > 0) + rooted, "refcount");
        assert!(tree > 0, "a reachable anon_vma has AVCs");
        assert!(counts.contains_key(&root), "roots are reachable");
    }
    assert_eq!(env.alloc.anon_live(), counts.len() + avcs, "anon_vmas or AVCs leaked");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// The anonymous reverse map stays exact: after each step, every
    /// mapped page's rmap walk finds exactly the ptes a scan of all page
    /// tables finds, and every anon_vma's counts match the VMAs.
    #[test]
    fn rmap_walk_finds_exactly_the_ptes_a_scan_finds(ops in proptest::collection::vec(op(), 1..60)) {
        with_env(|env| {
            let mut mms = vec![env.mm()];
            for op in &ops {
                apply(env, &mut mms, op);
                check(env, &mms);
            }
        });
    }
}

/// A page shared by a parent and two generations of children is found in
/// all three, and a child's copy-on-write page only in the child and its
/// own children (the hierarchy, not every address space).
#[test]
fn cow_pages_are_found_in_their_process_and_its_descendants_only() {
    with_env(|env| {
        let mut parent = env.mm();
        parent.do_mmap(BASE, 2 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        let write = FaultAccess { write: true, exec: false };
        parent.handle_mm_fault_exclusive(VirtAddr::expect_canonical(BASE), write).unwrap();
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        let mut grandchild = env.mm();
        child.dup_mmap(&mut grandchild).unwrap();
        // The child writes: its own page, in its own anon_vma.
        child.handle_mm_fault_exclusive(VirtAddr::expect_canonical(BASE + P), write).unwrap();
        let mms = [parent, child, grandchild];
        check(env, &mms);
        let shared = mms[0].follow_pte(VirtAddr::expect_canonical(BASE)).unwrap().phys.pfn();
        let own = mms[1].follow_pte(VirtAddr::expect_canonical(BASE + P)).unwrap().phys.pfn();
        let rmms = TestMms { mms: mms.iter().collect(), alloc: env.alloc, file: None };
        let mut seen = Vec::new();
        rmap_ptes(&rmms, env.pgdat, shared, &mut |mm, _| seen.push(mm));
        assert_eq!(seen.len(), 3);
        let anon = AnonVmaPtr::from_mapping(env.page(own).mapping()).unwrap();
        let (_, _, _, _, root, parent_av) = anon_vma_counts(&env.alloc, anon);
        let first = AnonVmaPtr::from_mapping(env.page(shared).mapping()).unwrap();
        assert_eq!((root, parent_av), (first, first), "the child's anon_vma hangs under the parent's");
        assert!(mms[1].follow_pte(VirtAddr::expect_canonical(BASE + P)).unwrap().prot.contains(PgProt::WRITE));
    });
}

const WRITE: FaultAccess = FaultAccess { write: true, exec: false };

fn va(addr: u64) -> VirtAddr {
    VirtAddr::expect_canonical(addr)
}

/// folio_referenced harvests the accessed bit of every pte mapping a page
/// (here in a parent and its child), clears them, and flushes once per
/// address space; a second call finds nothing.
#[test]
fn folio_referenced_harvests_and_clears_the_accessed_bits_of_every_mapper() {
    with_env(|env| {
        let mut parent = env.mm();
        parent.do_mmap(BASE, P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        parent.handle_mm_fault_exclusive(va(BASE), WRITE).unwrap();
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        let pfn = parent.follow_pte(va(BASE)).unwrap().phys.pfn();
        let mms = [parent, child];
        let rmms = TestMms { mms: mms.iter().collect(), alloc: env.alloc, file: None };
        env.tlb.take();
        env.pgdat.lru_add_drain_all();
        let found = folio_referenced(&rmms, env.pgdat, pfn, false);
        assert_eq!((found.referenced, found.complete), (2, true));
        assert!(found.vm_flags.contains(VmaFlags::WRITE));
        for mm in &mms {
            let leaf = mm.follow_pte(va(BASE)).unwrap();
            assert!(!leaf.prot.contains(PgProt::ACCESSED), "accessed bit cleared");
            assert!(leaf.prot.contains(PgProt::DIRTY), "dirty bit kept");
        }
        assert_eq!(env.tlb.take().len(), 2, "one flush per address space");
        assert_eq!(folio_referenced(&rmms, env.pgdat, pfn, false).referenced, 0);
        assert_eq!(env.page(pfn).refcount(), 2, "the walk's reference is gone");
    });
}

/// try_to_unmap refuses an anonymous page (no swap to send it to) and
/// unmaps a file page from every address space, handing the dirty bit to
/// the file and putting each pte's reference after the flush.
#[test]
fn try_to_unmap_refuses_anonymous_pages_and_unmaps_file_pages_everywhere() {
    with_env(|env| {
        let file = OnePageFile::new(env, 0x5a);
        let mut a = env.mm();
        a.do_mmap(BASE, P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        a.handle_mm_fault_exclusive(va(BASE), WRITE).unwrap();
        let map = Some(MapFile { file, writable: true });
        a.do_mmap(BASE + 4 * P, P, RW, MAP_SHARED | MAP_FIXED, map, 0).unwrap();
        a.handle_mm_fault_exclusive(va(BASE + 4 * P), WRITE).unwrap();
        let mut b = env.mm();
        b.do_mmap(BASE + 8 * P, P, PROT_READ, MAP_SHARED | MAP_FIXED, map, 0).unwrap();
        b.handle_mm_fault_exclusive(va(BASE + 8 * P), FaultAccess { write: false, exec: false }).unwrap();
        let anon = a.follow_pte(va(BASE)).unwrap().phys.pfn();
        let mms = [a, b];
        let rmms = TestMms { mms: mms.iter().collect(), alloc: env.alloc, file: Some(file) };
        assert!(!try_to_unmap(&rmms, env.pgdat, anon), "no swap: the anonymous page stays");
        assert_eq!(mms[0].follow_pte(va(BASE)).map(|l| l.phys.pfn()), Some(anon));
        assert_eq!(env.page(file.pfn()).mapcount(), 2);
        env.tlb.take();
        assert!(!try_to_unmap(&rmms, env.pgdat, file.pfn()), "the caller must hold the page lock");
        assert!(crate::filemap::folio_trylock(env.page(file.pfn())));
        assert!(try_to_unmap(&rmms, env.pgdat, file.pfn()));
        crate::filemap::folio_unlock(env.page(file.pfn()), file.pfn(), &SimFolioWaits);
        assert!(mms[0].follow_pte(va(BASE + 4 * P)).is_none() && mms[1].follow_pte(va(BASE + 8 * P)).is_none());
        assert_eq!(env.tlb.take().len(), 2, "one flush per address space");
        assert_eq!(file.dirtied.load(Ordering::Relaxed), 1, "the writable pte was dirty");
        let page = env.page(file.pfn());
        assert_eq!((page.refcount(), page.mapcount()), (1, 0), "only the cache holds the page");
        assert_eq!(mms[1].counter(crate::mmap::MmCounter::FilePages), 0);
        drop(rmms);
        drop(mms);
        file.release(env);
    });
}

/// Without memory for an anon_vma or an AVC, a private write fault is
/// OOM and a fork fails with ENOMEM, and neither leaves anything behind.
#[test]
fn anon_vma_allocation_failure_fails_the_fault_and_the_fork_and_changes_nothing() {
    with_env(|env| {
        let mut parent = env.mm();
        parent.do_mmap(BASE, 2 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        env.alloc.fail_nth(0);
        assert_eq!(parent.handle_mm_fault_exclusive(va(BASE), WRITE), Err(crate::memory::FaultError::Oom));
        env.alloc.fail_none();
        assert!(parent.follow_pte(va(BASE)).is_none());
        assert_eq!(env.alloc.anon_live(), 0);
        parent.handle_mm_fault_exclusive(va(BASE), WRITE).unwrap();
        // Fork: the VMA, then two AVCs (the parent's chain, the child's own)
        // and the child's anon_vma; fail each in turn.
        for n in 1..4 {
            let mut child = env.mm();
            env.alloc.fail_nth(n);
            assert_eq!(parent.dup_mmap(&mut child), Err(Errno::ENOMEM), "allocation {n}");
            env.alloc.fail_none();
            drop(child);
            check(env, std::slice::from_ref(&parent));
        }
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        check(env, &[parent, child]);
    });
}

/// A page-cache page mapped by two processes moves: every pte found
/// through the file's i_mmap, the cache's entry replaced, the data, the
/// dirty bit and both mappings kept.
#[test]
#[allow(unsafe_code, reason = "the migration target's free")]
fn migration_moves_a_file_page_two_processes_map() {
    with_env(|env| {
        let file = OnePageFile::new(env, 0x6b);
        let map = Some(MapFile { file, writable: true });
        let mut a = env.mm();
        a.do_mmap(BASE, P, RW, MAP_SHARED | MAP_FIXED, map, 0).unwrap();
        a.handle_mm_fault_exclusive(va(BASE), WRITE).unwrap();
        let mut b = env.mm();
        b.do_mmap(BASE + 2 * P, P, PROT_READ, MAP_SHARED | MAP_FIXED, map, 0).unwrap();
        b.handle_mm_fault_exclusive(va(BASE + 2 * P), FaultAccess { write: false, exec: false }).unwrap();
        let old = file.pfn();
        let mms = [a, b];
        let rmms = TestMms { mms: mms.iter().collect(), alloc: env.alloc, file: Some(file) };
        struct Fresh<'p, 'a>(&'p PgData<'a>);
        impl crate::migrate::MigrationTarget for Fresh<'_, '_> {
            fn alloc(&mut self) -> Option<Pfn> {
                self.0.alloc_pages(crate::gfp::GFP_HIGHUSER_MOVABLE, 0)
            }

            unsafe fn free(&mut self, pfn: Pfn) {
                // SAFETY: the trait's contract: unused, unmapped.
                unsafe { self.0.free_pages(pfn, 0) }.unwrap();
            }
        }
        let stats = crate::migrate::migrate_pages(env.pgdat, &rmms, &[old], &mut Fresh(env.pgdat));
        assert_eq!(stats.succeeded, 1, "{stats:?}");
        let new = file.pfn();
        assert_ne!(new, old, "the cache holds the new page");
        let (pa, pb) = (mms[0].follow_pte(va(BASE)).unwrap(), mms[1].follow_pte(va(BASE + 2 * P)).unwrap());
        assert_eq!((pa.phys.pfn(), pb.phys.pfn()), (new, new), "both ptes map it");
        assert!(pa.prot.contains(PgProt::DIRTY | PgProt::WRITE), "the writer's pte keeps its bits");
        assert!(!pb.prot.contains(PgProt::WRITE));
        assert!(env.ram.page(new).iter().all(|&b| b == 0x6b), "data copied");
        let page = env.page(new);
        assert_eq!((page.refcount(), page.mapcount(), page.mapping()), (3, 2, ONE_PAGE_MAPPING));
        check(env, &mms);
        drop(rmms);
        drop(mms);
        file.release(env);
    });
}

/// Reclaim's view of the test's address spaces and its one-page file,
/// whose page reclaim may take out of the cache.
struct ReclaimOne<'m, 'a> {
    rmms: TestMms<'m, 'a>,
    removed: std::sync::atomic::AtomicBool,
}

impl crate::vmscan::CacheOwners for ReclaimOne<'_, '_> {
    fn remove_clean(&self, pgdat: &PgData<'_>, id: crate::filemap::MappingId, index: u64, pfn: Pfn) -> bool {
        let Some(file) = self.rmms.file else { return false };
        if id.as_u64() != ONE_PAGE_MAPPING
            || index != 0
            || file.pfn() != pfn
            || self.removed.swap(true, Ordering::Relaxed)
        {
            return false;
        }
        let page = pgdat.pfn_to_page(pfn).unwrap();
        page.set_mapping(0);
        page.clear(crate::page_flags::PageFlags::UPTODATE);
        true
    }

    fn folio_referenced(&self, pgdat: &PgData<'_>, pfn: Pfn, is_locked: bool) -> Referenced {
        folio_referenced(&self.rmms, pgdat, pfn, is_locked)
    }

    fn try_to_unmap(&self, pgdat: &PgData<'_>, pfn: Pfn) -> bool {
        try_to_unmap(&self.rmms, pgdat, pfn)
    }
}

/// One reclaim pass over a one-page inactive file list.
fn reclaim_once(env: &Env<'_>, owners: &ReclaimOne<'_, '_>) -> u64 {
    crate::vmscan::shrink_page_cache(
        env.pgdat,
        owners,
        &SimFolioWaits,
        1,
        crate::vmscan::Reclaimer::Direct,
        crate::gfp::GFP_KERNEL,
    )
}

/// Reclaim of a mapped file page (Linux `folio_check_references`, then
/// `try_to_unmap` and `__remove_mapping`): a pte used since the last look
/// keeps the page once (its accessed bit harvested, `PG_referenced` set);
/// used again, the page is activated; once no pte was used, the page is
/// unmapped from every address space and freed.
#[test]
fn reclaim_keeps_activates_then_unmaps_and_frees_a_mapped_file_page() {
    use crate::page_flags::PageFlags;
    with_env(|env| {
        let file = OnePageFile::new(env, 0x5a);
        env.pgdat.folio_add_lru(file.pfn());
        let map = Some(MapFile { file, writable: false });
        let read = FaultAccess { write: false, exec: false };
        let mut a = env.mm();
        a.do_mmap(BASE, P, PROT_READ, MAP_SHARED | MAP_FIXED, map, 0).unwrap();
        a.handle_mm_fault_exclusive(va(BASE), read).unwrap();
        let mut b = env.mm();
        b.do_mmap(BASE + 4 * P, P, PROT_READ, MAP_SHARED | MAP_FIXED, map, 0).unwrap();
        let young = |mm: &Mm<'_>, addr| mm.follow_pte(va(addr)).is_some_and(|l| l.prot.contains(PgProt::ACCESSED));
        assert!(young(&a, BASE), "a fault maps the page young");
        let mut mms = [a, b];
        let page = env.page(file.pfn());
        {
            let owners = ReclaimOne {
                rmms: TestMms { mms: mms.iter().collect(), alloc: env.alloc, file: Some(file) },
                removed: false.into(),
            };
            assert_eq!(reclaim_once(env, &owners), 0, "used through a pte: kept");
            assert!(page.test(PageFlags::REFERENCED) && !page.test(PageFlags::ACTIVE));
            assert!(!young(&mms[0], BASE), "the accessed bit was harvested");
        }
        mms[1].handle_mm_fault_exclusive(va(BASE + 4 * P), read).unwrap();
        let owners = ReclaimOne {
            rmms: TestMms { mms: mms.iter().collect(), alloc: env.alloc, file: Some(file) },
            removed: false.into(),
        };
        assert_eq!(reclaim_once(env, &owners), 0, "used again: activated");
        assert!(page.test(PageFlags::ACTIVE) && page.mapcount() == 2);
        let free_before = crate::sim::free_pages_drained(env.pgdat);
        assert_eq!(reclaim_once(env, &owners), 1, "deactivated, unused since: unmapped and freed");
        assert!(mms[0].follow_pte(va(BASE)).is_none() && mms[1].follow_pte(va(BASE + 4 * P)).is_none());
        assert_eq!(crate::sim::free_pages_drained(env.pgdat), free_before + 1);
        assert_eq!(mms[0].counter(crate::mmap::MmCounter::FilePages), 0);
        assert_eq!(env.pgdat.all_vm_events(crate::vmstat::VmEventItem::PgstealDirect), 1);
    });
}

/// A page a locked VMA still maps after another locked mapping of it was
/// unlocked (which cleared its `PG_mlocked`: no `mlock_count`) is found by
/// reclaim's walk and mlocked again, onto the unevictable list (Linux
/// `folio_referenced_one`'s `mlock_vma_folio`).
#[test]
fn reclaim_culls_a_page_a_locked_vma_still_maps_to_the_unevictable_list() {
    use crate::page_flags::PageFlags;
    with_env(|env| {
        let file = OnePageFile::new(env, 0x33);
        env.pgdat.folio_add_lru(file.pfn());
        let map = Some(MapFile { file, writable: false });
        let read = FaultAccess { write: false, exec: false };
        let mut a = env.mm();
        a.do_mmap(BASE, P, PROT_READ, MAP_SHARED | MAP_FIXED, map, 0).unwrap();
        a.mlock(BASE, P).unwrap();
        let mut b = env.mm();
        b.do_mmap(BASE, P, PROT_READ, MAP_SHARED | MAP_FIXED, map, 0).unwrap();
        b.mlock(BASE, P).unwrap();
        b.handle_mm_fault_exclusive(va(BASE), read).unwrap();
        env.pgdat.lru_add_drain_all();
        let page = env.page(file.pfn());
        assert!(page.test(PageFlags::MLOCKED) && page.test(PageFlags::UNEVICTABLE));
        a.munlock(BASE, P).unwrap();
        assert!(!page.test(PageFlags::MLOCKED) && !page.test(PageFlags::UNEVICTABLE), "no count: cleared");
        let mms = [a, b];
        let owners = ReclaimOne {
            rmms: TestMms { mms: mms.iter().collect(), alloc: env.alloc, file: Some(file) },
            removed: false.into(),
        };
        assert_eq!(reclaim_once(env, &owners), 0);
        assert!(page.test(PageFlags::MLOCKED) && page.test(PageFlags::UNEVICTABLE), "culled again");
        assert_eq!(env.pgdat.lru_pages(crate::swap::LruList::Unevictable), 1);
        assert_eq!(page.mapcount(), 2, "still mapped by both");
        drop(owners);
        drop(mms);
        file.release(env);
    });
}
