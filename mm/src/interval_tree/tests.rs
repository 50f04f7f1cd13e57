//! Host tests of the file reverse map: queries against a brute-force scan
//! of the VMAs of two address spaces mapping one file, under random
//! mmap, munmap, mprotect splits and merges, mremap moves and growth.

use core::sync::atomic::{AtomicUsize, Ordering};
use std::collections::BTreeSet;

use proptest::prelude::*;
use uapi::errno::Errno;

use super::*;
use crate::addr::{PAGE_SIZE, Pfn, VirtAddr};
use crate::page_alloc::PgData;
use crate::readahead::VmaRaAdvice;
use crate::sim::HeapAlloc;
use crate::vma::{FaultPage, FileFaultError, Vma, VmaDesc, VmaFile, VmaFlags, VmaTree};

const P: u64 = PAGE_SIZE;
const BASE: u64 = 0x4000_0000;
const WINDOW: u64 = 512;

/// A file with a reverse map and a count of the VMAs' references.
struct MappedFile {
    refs: AtomicUsize,
    i_mmap: IMmap,
}

impl VmaFile for MappedFile {
    fn name(&self) -> &str {
        "f"
    }

    fn get_file(&self) {
        self.refs.fetch_add(1, Ordering::Relaxed);
    }

    fn put_file(&self) {
        self.refs.fetch_sub(1, Ordering::Relaxed);
    }

    fn i_mmap(&self) -> Option<&IMmap> {
        Some(&self.i_mmap)
    }

    fn fault(&self, _: &PgData<'_>, _: u64, _: VmaRaAdvice) -> Result<FaultPage, FileFaultError> {
        unreachable!("the reverse map never faults")
    }

    fn map_pages(&self, _: &PgData<'_>, _: u64, _: u64, _: &mut dyn FnMut(u64, Pfn)) {
        unreachable!("the reverse map never faults")
    }

    fn page_mkwrite(&self, _: &PgData<'_>, _: u64, _: Pfn) -> Result<(), FileFaultError> {
        unreachable!("the reverse map never faults")
    }

    fn set_page_dirty(&self, _: &PgData<'_>, _: u64, _: Pfn) {
        unreachable!("the reverse map never zaps")
    }

    fn fsync_range(&self, _: u64, _: u64) -> Result<(), Errno> {
        unreachable!("the reverse map never writes back")
    }

    fn willneed(&self, _: u64, _: u64) {}

    fn mincore_page(&self, _: u64) -> bool {
        false
    }
}

fn leak_file() -> &'static MappedFile {
    Box::leak(Box::new(MappedFile { refs: AtomicUsize::new(0), i_mmap: IMmap::new() }))
}

fn va(page: u64) -> VirtAddr {
    VirtAddr::expect_canonical(BASE + page * P)
}

type Tree<'a> = VmaTree<&'a HeapAlloc<Vma>>;

/// What the reverse map should report for `[first, last]`: a scan of
/// every VMA of the file in both trees.
fn brute(trees: &[Tree<'_>], file: &MappedFile, first: u64, last: u64) -> BTreeSet<(MmId, u64, u64, u64)> {
    let mut hits = BTreeSet::new();
    for tree in trees {
        for vma in tree.iter() {
            let Some(f) = vma.file() else { continue };
            if !core::ptr::addr_eq(f, file as &dyn VmaFile) {
                continue;
            }
            let vma_last = vma.pgoff() + vma.pages() - 1;
            if vma.pgoff() <= last && vma_last >= first {
                hits.insert((tree.owner(), vma.start().as_u64(), vma.pgoff(), vma_last));
            }
        }
    }
    hits
}

fn query(file: &MappedFile, first: u64, last: u64) -> BTreeSet<(MmId, u64, u64, u64)> {
    let mut hits = BTreeSet::new();
    let mut prev_first = 0;
    file.i_mmap.for_each_vma(first, last, |hit| {
        assert!(hit.pgoff >= prev_first, "hits come in order of their first page");
        prev_first = hit.pgoff;
        assert!(hits.insert((hit.mm, hit.start, hit.pgoff, hit.last)), "each VMA once");
    });
    hits
}

#[test]
fn a_query_finds_exactly_the_vmas_mapping_the_range_in_every_address_space() {
    let alloc = HeapAlloc::default();
    let file = leak_file();
    let flags = VmaFlags::READ | VmaFlags::SHARED;
    let desc = |start: u64, pages: u64, pgoff: u64| VmaDesc {
        start: va(start),
        end: va(start + pages),
        flags,
        pgoff,
        file: Some(file),
    };
    let mut a: Tree<'_> = VmaTree::with_owner(&alloc, MmId(1));
    let mut b: Tree<'_> = VmaTree::with_owner(&alloc, MmId(2));
    a.insert(desc(0, 16, 0)).unwrap();
    a.insert(desc(100, 4, 32)).unwrap();
    b.insert(desc(50, 8, 12)).unwrap();
    assert_eq!(file.i_mmap.len(), 3);
    let pages = |set: BTreeSet<(MmId, u64, u64, u64)>| {
        set.into_iter().map(|(mm, _, first, _)| (mm.0, first)).collect::<Vec<_>>()
    };
    assert_eq!(pages(query(file, 0, 0)), [(1, 0)]);
    assert_eq!(pages(query(file, 12, 15)), [(1, 0), (2, 12)]);
    assert_eq!(pages(query(file, 16, 19)), [(2, 12)]);
    assert_eq!(pages(query(file, 20, 31)), []);
    assert_eq!(pages(query(file, 33, 1000)), [(1, 32)]);
    // The address of a page in each VMA that maps it.
    let mut at = Vec::new();
    file.i_mmap.for_each_vma(13, 13, |hit| at.push((hit.mm.0, hit.address(13))));
    assert_eq!(at, [(1, BASE + 13 * P), (2, BASE + 51 * P)]);
    // An mprotect of the middle splits b's VMA in three: all found.
    b.modify_flags(va(52), va(54), |v| v.flags() - VmaFlags::READ).unwrap();
    assert_eq!(file.i_mmap.len(), 5);
    assert_eq!(query(file, 12, 19), brute(&[a, b], file, 12, 19));
    assert_eq!(file.i_mmap.len(), 0, "dropping the trees empties the map");
    assert_eq!(file.refs.load(Ordering::Relaxed), 0);
}

#[derive(Clone, Debug)]
enum Op {
    Map { mm: usize, start: u64, pages: u64, pgoff: u64, shared: bool },
    Unmap { mm: usize, start: u64, pages: u64 },
    Protect { mm: usize, start: u64, pages: u64 },
    Move { mm: usize, idx: usize, dest: u64 },
    Grow { mm: usize, idx: usize, pages: u64 },
    Shrink { mm: usize, idx: usize, pages: u64 },
    Query { first: u64, len: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..2usize, 0..WINDOW, 1..32u64, 0..64u64, any::<bool>())
            .prop_map(|(mm, start, pages, pgoff, shared)| Op::Map { mm, start, pages, pgoff, shared }),
        2 => (0..2usize, 0..WINDOW, 1..32u64).prop_map(|(mm, start, pages)| Op::Unmap { mm, start, pages }),
        2 => (0..2usize, 0..WINDOW, 1..32u64).prop_map(|(mm, start, pages)| Op::Protect { mm, start, pages }),
        1 => (0..2usize, any::<usize>(), 0..WINDOW).prop_map(|(mm, idx, dest)| Op::Move { mm, idx, dest }),
        1 => (0..2usize, any::<usize>(), 1..16u64).prop_map(|(mm, idx, pages)| Op::Grow { mm, idx, pages }),
        1 => (0..2usize, any::<usize>(), 1..16u64).prop_map(|(mm, idx, pages)| Op::Shrink { mm, idx, pages }),
        4 => (0..96u64, 0..32u64).prop_map(|(first, len)| Op::Query { first, len }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every query agrees with a scan of both address spaces after any
    /// sequence of changes, and the trees' invariant 7 holds throughout.
    #[test]
    fn queries_match_a_scan_of_every_vma(ops in prop::collection::vec(op(), 1..80)) {
        let alloc = HeapAlloc::default();
        let file = leak_file();
        let mut trees: [Tree<'_>; 2] = [VmaTree::with_owner(&alloc, MmId(1)), VmaTree::with_owner(&alloc, MmId(2))];
        for op in ops {
            let nth = |tree: &Tree<'_>, idx: usize| {
                let n = tree.map_count();
                (n != 0).then(|| tree.iter().nth(idx % n).map(|v| (v.start(), v.end()))).flatten()
            };
            match op {
                Op::Map { mm, start, pages, pgoff, shared } => {
                    let flags = if shared { VmaFlags::READ | VmaFlags::SHARED } else { VmaFlags::READ };
                    let desc = VmaDesc { start: va(start), end: va(start + pages), flags, pgoff, file: Some(file) };
                    let _ = trees[mm].insert(desc);
                }
                Op::Unmap { mm, start, pages } => {
                    let _ = trees[mm].munmap_range(va(start), va(start + pages), |_| {});
                }
                Op::Protect { mm, start, pages } => {
                    let _ = trees[mm].modify_flags(va(start), va(start + pages), |v| v.flags() ^ VmaFlags::WRITE);
                }
                Op::Move { mm, idx, dest } => {
                    if let Some((start, end)) = nth(&trees[mm], idx) {
                        let _ = trees[mm].relocate(start, end, va(dest));
                    }
                }
                Op::Grow { mm, idx, pages } => {
                    if let Some((start, end)) = nth(&trees[mm], idx) {
                        let _ = trees[mm].expand(start, VirtAddr::expect_canonical(end.as_u64() + pages * P));
                    }
                }
                Op::Shrink { mm, idx, pages } => {
                    if let Some((start, end)) = nth(&trees[mm], idx) {
                        let new_end = (end.as_u64() - pages * P).max(start.as_u64() + P);
                        let _ = trees[mm].shrink(start, VirtAddr::expect_canonical(new_end));
                    }
                }
                Op::Query { first, len } => {
                    prop_assert_eq!(query(file, first, first + len), brute(&trees, file, first, first + len));
                }
            }
            for tree in &trees {
                if let Err(err) = tree.check() {
                    prop_assert!(false, "check after {:?}: {}", op, err);
                }
            }
            let vmas: usize = trees.iter().map(|t| t.map_count()).sum();
            prop_assert_eq!(file.i_mmap.len(), vmas);
            prop_assert_eq!(query(file, 0, u64::MAX), brute(&trees, file, 0, u64::MAX));
        }
        drop(trees);
        prop_assert!(file.i_mmap.is_empty());
    }
}
