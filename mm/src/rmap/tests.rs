//! Host tests of the reverse map: `anon_vma` hierarchies under random
//! fork, exit, mmap, munmap, mprotect, mremap and fault sequences, checked
//! against a brute-force scan of every simulated address space.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use uapi::mman::{MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MREMAP_DONTUNMAP, MREMAP_FIXED, MREMAP_MAYMOVE, PROT_READ};

use super::*;
use crate::addr::{PAGE_SIZE, Pfn, VirtAddr};
use crate::arch::FolioWaitTable;
use crate::interval_tree::MmId;
use crate::memory::FaultAccess;
use crate::mmap::tests::{Env, Mm, TestAlloc, with_env};
use crate::pgtable::{PgProt, X86PteFormat};
use crate::sim::SimFolioWaits;

const P: u64 = PAGE_SIZE;
/// The window every operation works in.
const BASE: u64 = 0x2000_0000;
const WINDOW: u64 = 48;
const RW: u32 = PROT_READ | uapi::mman::PROT_WRITE;

/// The test's address spaces as an rmap walk reaches them: all lockable.
pub(crate) struct TestMms<'m, 'a> {
    pub(crate) mms: Vec<&'m Mm<'a>>,
    pub(crate) alloc: &'a TestAlloc,
}

impl<'a> RmapMms<'a, X86PteFormat, &'a TestAlloc> for TestMms<'_, 'a> {
    fn vma_alloc(&self) -> &&'a TestAlloc {
        &self.alloc
    }

    fn with_mms(&self, ids: &[MmId], all: bool, f: &mut crate::rmap::WithMms<'_, 'a, X86PteFormat, &'a TestAlloc>) {
        let mms: Vec<&Mm<'a>> = self.mms.iter().copied().filter(|mm| all || ids.contains(&mm.vmas().owner())).collect();
        f(&mms);
    }

    fn folio_waits(&self) -> &dyn FolioWaitTable {
        &SimFolioWaits
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
            assert!(page_anon(env.page(pfn)), "only anonymous memory is mapped");
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
    let rmms = TestMms { mms: mms.iter().collect(), alloc: env.alloc };
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
        let rmms = TestMms { mms: mms.iter().collect(), alloc: env.alloc };
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
