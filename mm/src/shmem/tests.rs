//! Host tests of shared anonymous memory as a shmem file's mapping: pages
//! faulted on demand and counted as shmem, shared through the file after
//! fork, mremap (SIGBUS past the file's end, duplication, DONTUNMAP),
//! MADV_DONTNEED refaulting the same data, MADV_REMOVE freeing it, and
//! every VMA's file reference given back. [`SimShmem`] is the simulated
//! shmem every test address space uses: files over a real swapbacked
//! [`AddressSpace`], freed when the test's machine is checked.

#![allow(unsafe_code)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use uapi::errno::Errno;
use uapi::mman::*;

use super::ShmemZeroSetup;
use crate::addr::Pfn;
use crate::filemap::{AddressSpace, MappingId, folio_test_locked, folio_trylock, folio_unlock};
use crate::gfp::{GFP_HIGHUSER_MOVABLE, Gfp};
use crate::memory::FaultError;
use crate::mmap::tests::{FILE, P, RW, X, pfn_at, read, state, teardown, va, with_env, write};
use crate::mmap::{MapFile, MmCounter};
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::page_writeback::{folio_cancel_dirty, folio_mark_dirty};
use crate::readahead::VmaRaAdvice;
use crate::sim::{HeapAlloc, SimFolioWaits, free_pages_drained};
use crate::vma::{FaultPage, FileFaultError, VmaFile, VmaFlags};
use crate::vmstat::NodeStatItem;
use crate::xarray::XaNode;

type Nodes = HeapAlloc<XaNode<crate::filemap::CacheEntry>>;

/// The simulated shmem: every file it made, so that the test's machine
/// can free their pages once every VMA gave its reference back.
#[derive(Default)]
pub(crate) struct SimShmem {
    files: Mutex<Vec<&'static SimShmemFile>>,
    /// Makes the next setup fail with ENOMEM.
    fail_next: AtomicBool,
}

impl ShmemZeroSetup for SimShmem {
    fn shmem_zero_setup(&self, size: u64) -> Result<&'static dyn VmaFile, Errno> {
        if self.fail_next.swap(false, Ordering::Relaxed) {
            return Err(Errno::ENOMEM);
        }
        static NEXT_ID: AtomicU64 = AtomicU64::new(0x10_0000);
        let id = MappingId::new(NEXT_ID.fetch_add(8, Ordering::Relaxed)).expect("aligned, non-zero");
        let file: &'static SimShmemFile = Box::leak(Box::new(SimShmemFile {
            size,
            cache: Mutex::new(AddressSpace::new(id, true, Nodes::default())),
            refs: AtomicUsize::new(1),
        }));
        self.files.lock().unwrap().push(file);
        Ok(file)
    }
}

impl SimShmem {
    /// Checks no VMA holds a file any more and frees their pages (the
    /// files' last `fput`).
    pub(crate) fn release_all(&self, pgdat: &PgData<'_>) {
        for file in self.files.lock().unwrap().drain(..) {
            assert_eq!(file.refs(), 0, "a VMA kept its shmem file");
            file.punch_hole(pgdat, 0, file.size.next_multiple_of(P)).unwrap();
            assert_eq!(file.cache.lock().unwrap().nrpages(), 0);
        }
    }

    /// The files made so far.
    fn files(&self) -> Vec<&'static SimShmemFile> {
        self.files.lock().unwrap().clone()
    }
}

/// One shmem file: zero pages allocated at the first fault and kept in a
/// swapbacked cache (Linux `shmem_fault`), dirtied without accounting.
pub(crate) struct SimShmemFile {
    size: u64,
    cache: Mutex<AddressSpace<Nodes>>,
    refs: AtomicUsize,
}

impl SimShmemFile {
    fn refs(&self) -> usize {
        self.refs.load(Ordering::Relaxed)
    }

    fn cached(&self, index: u64) -> Option<Pfn> {
        self.cache.lock().unwrap().lookup(index)
    }
}

impl VmaFile for SimShmemFile {
    fn name(&self) -> &str {
        "/dev/zero (deleted)"
    }

    fn get_file(&self) {
        self.refs.fetch_add(1, Ordering::Relaxed);
    }

    fn put_file(&self) {
        assert!(self.refs.fetch_sub(1, Ordering::Relaxed) > 0, "put_file without a reference");
    }

    fn mapping_id(&self) -> Option<u64> {
        Some(self.cache.lock().unwrap().id().as_u64())
    }

    fn fault(&self, pgdat: &PgData<'_>, index: u64, _advice: VmaRaAdvice) -> Result<FaultPage, FileFaultError> {
        if index >= self.size.div_ceil(P) {
            return Err(FileFaultError::Eof);
        }
        let mut cache = self.cache.lock().unwrap();
        if let Some(pfn) = cache.lookup(index) {
            pgdat.pfn_to_page(pfn).unwrap().get();
            return Ok(FaultPage { pfn, major: false });
        }
        let pfn = pgdat.alloc_pages(GFP_HIGHUSER_MOVABLE | Gfp::ZERO, 0).ok_or(FileFaultError::NoMemory)?;
        let page = pgdat.pfn_to_page(pfn).unwrap();
        assert!(folio_trylock(page));
        cache.add_folio(pgdat, pfn, index).unwrap();
        page.set(PageFlags::UPTODATE);
        folio_unlock(page, pfn, &SimFolioWaits);
        Ok(FaultPage { pfn, major: false })
    }

    fn map_pages(&self, pgdat: &PgData<'_>, start: u64, end: u64, f: &mut dyn FnMut(u64, Pfn)) {
        let cache = self.cache.lock().unwrap();
        for index in start..end.min(self.size.div_ceil(P)) {
            let Some(pfn) = cache.lookup(index) else { continue };
            let page = pgdat.pfn_to_page(pfn).unwrap();
            if page.test(PageFlags::UPTODATE) && !folio_test_locked(page) {
                page.get();
                f(index, pfn);
            }
        }
    }

    fn page_mkwrite(&self, pgdat: &PgData<'_>, index: u64, pfn: Pfn) -> Result<(), FileFaultError> {
        let mut cache = self.cache.lock().unwrap();
        if cache.lookup(index) != Some(pfn) {
            return Err(FileFaultError::Eof);
        }
        folio_mark_dirty(&mut cache, pgdat, pgdat.pfn_to_page(pfn).unwrap(), index);
        Ok(())
    }

    fn set_page_dirty(&self, pgdat: &PgData<'_>, index: u64, pfn: Pfn) {
        let mut cache = self.cache.lock().unwrap();
        if cache.lookup(index) == Some(pfn) {
            folio_mark_dirty(&mut cache, pgdat, pgdat.pfn_to_page(pfn).unwrap(), index);
        }
    }

    fn fsync_range(&self, _: u64, _: u64) -> Result<(), Errno> {
        Ok(())
    }

    // shmem reads nothing ahead: its pages are in memory or holes.
    fn willneed(&self, _: u64, _: u64) {}

    fn mincore_page(&self, index: u64) -> bool {
        self.cached(index).is_some()
    }

    fn punch_hole(&self, pgdat: &PgData<'_>, start: u64, end: u64) -> Result<(), Errno> {
        assert!(start.is_multiple_of(P) && end.is_multiple_of(P), "the mm punches whole pages");
        let mut cache = self.cache.lock().unwrap();
        for index in start / P..end / P {
            let Some(pfn) = cache.lookup(index) else { continue };
            let page = pgdat.pfn_to_page(pfn).unwrap();
            if page.mapcount() > 0 {
                // Still mapped elsewhere: zeroed in place, as the kernel's.
                // SAFETY: a page of this cache, no Rust reference into it.
                unsafe { crate::highmem::memzero_page(pgdat, pfn, 0, P as usize) }.unwrap();
                continue;
            }
            assert!(folio_trylock(page));
            folio_cancel_dirty(&mut cache, pgdat, page, index);
            assert_eq!(cache.remove_folio(pgdat, index), Some(pfn));
            folio_unlock(page, pfn, &SimFolioWaits);
            // SAFETY: the cache's reference, handed over; a pte still
            // mapping the page holds its own.
            unsafe { pgdat.put_page(pfn) }.unwrap();
        }
        cache.check(pgdat).map_err(|_| Errno::EIO)
    }
}

const SA: u32 = MAP_SHARED | MAP_ANONYMOUS;

fn resident(mm: &crate::mmap::tests::Mm<'_>, addr: u64, pages: u64) -> Vec<u8> {
    let mut v = Vec::new();
    mm.mincore(addr, pages * P, 0x7000_0000, &mut |_, bytes| {
        v.extend_from_slice(bytes);
        Ok(())
    })
    .unwrap();
    v
}

#[test]
fn shared_anonymous_memory_is_a_shmem_file_faulted_on_demand() {
    with_env(|env| {
        let mut mm = env.mm();
        let free = free_pages_drained(env.pgdat);
        let addr = mm.do_mmap(0, 8 * P, RW, SA, None, 0).unwrap();
        assert_eq!(free_pages_drained(env.pgdat), free, "mmap allocates nothing");
        assert_eq!((mm.rss_pages(), state(env.pgdat, NodeStatItem::NrShmem)), (0, 0));
        let vma = mm.vmas().vma_lookup(va(addr)).unwrap();
        assert_eq!(vma.pgoff(), 0, "the file is mapped from its start");
        assert!(vma.flags().contains(VmaFlags::SHARED | VmaFlags::MAYSHARE | VmaFlags::MAYWRITE));
        let mut maps = String::new();
        mm.show_maps(&mut maps).unwrap();
        assert!(maps.contains(" rw-s 00000000 00:00 0") && maps.trim_end().ends_with("/dev/zero (deleted)"), "{maps}");
        write(env, &mut mm, addr, 1).unwrap();
        assert_eq!(read(env, &mut mm, addr + 3 * P), Ok(0), "a read of an untouched page sees zeros");
        write(env, &mut mm, addr + 5 * P, 5).unwrap();
        assert_eq!(resident(&mm, addr, 8), [1, 0, 0, 1, 0, 1, 0, 0], "only touched pages are resident");
        assert_eq!(mm.counter(MmCounter::ShmemPages), 3);
        assert_eq!((mm.counter(MmCounter::AnonPages), mm.counter(MmCounter::FilePages)), (0, 0));
        assert_eq!(mm.rss_pages(), 3);
        assert_eq!(state(env.pgdat, NodeStatItem::NrShmem), 3);
        assert_eq!(state(env.pgdat, NodeStatItem::NrFileMapped), 3);
        assert_eq!(state(env.pgdat, NodeStatItem::NrFileDirty), 0, "shmem pages are never dirty for writeback");
        let file = env.shmem.files()[0];
        let page = env.page(file.cached(0).unwrap());
        assert!(page.test(PageFlags::SWAPBACKED));
        assert_eq!(file.refs(), 1, "the VMA's reference alone");
        // Half unmapped: two VMAs, two references; all unmapped, none.
        assert_eq!(mm.do_munmap(addr + 2 * P, P), Ok(()));
        assert_eq!(file.refs(), 2);
        assert_eq!(mm.counter(MmCounter::ShmemPages), 3, "the unmapped page was not resident");
        assert_eq!(mm.do_munmap(addr, 8 * P), Ok(()));
        assert_eq!((file.refs(), mm.rss_pages()), (0, 0));
        assert_eq!(file.cache.lock().unwrap().nrpages(), 3, "the file keeps its pages until it goes");
        teardown(mm);
    });
}

#[test]
fn fork_shares_shared_anonymous_pages_through_the_file_touched_before_or_after() {
    with_env(|env| {
        let mut parent = env.mm();
        let addr = parent.do_mmap(0, 4 * P, RW, SA, None, 0).unwrap();
        write(env, &mut parent, addr, 1).unwrap();
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        assert_eq!(read(env, &mut child, addr), Ok(1));
        write(env, &mut child, addr + 2 * P, 2).unwrap();
        assert_eq!(read(env, &mut parent, addr + 2 * P), Ok(2), "a page first touched in the child");
        write(env, &mut parent, addr + 3 * P, 3).unwrap();
        assert_eq!(read(env, &mut child, addr + 3 * P), Ok(3), "a page first touched in the parent after fork");
        write(env, &mut child, addr, 4).unwrap();
        assert_eq!(read(env, &mut parent, addr), Ok(4), "the child's write through a pte fork copied");
        assert_eq!(pfn_at(&parent, addr), pfn_at(&child, addr));
        assert_eq!(env.shmem.files()[0].refs(), 2);
        drop(parent);
        assert_eq!(read(env, &mut child, addr + 2 * P), Ok(2), "the file outlives the parent's VMA");
        teardown(child);
    });
}

#[test]
fn a_grown_shared_anonymous_mapping_is_sigbus_past_the_file_as_on_linux() {
    with_env(|env| {
        let mut mm = env.mm();
        let addr = mm.do_mmap(0, 2 * P, RW, SA, None, 0).unwrap();
        write(env, &mut mm, addr + P, 7).unwrap();
        let moved = mm.mremap(addr, 2 * P, 3 * P, u64::from(MREMAP_MAYMOVE), 0).unwrap();
        assert_eq!(read(env, &mut mm, moved + P), Ok(7), "the file's page, moved with the VMA");
        assert_eq!(read(env, &mut mm, moved + 2 * P), Err(FaultError::SigBus));
        assert_eq!(env.shmem.files().len(), 1, "growing made no new file");
        teardown(mm);
    });
}

#[test]
fn mremap_duplicates_and_dontunmaps_shared_mappings_onto_the_same_pages() {
    with_env(|env| {
        let mut mm = env.mm();
        let addr = mm.do_mmap(0, 4 * P, RW, SA, None, 0).unwrap();
        write(env, &mut mm, addr + P, 1).unwrap();
        // old_len 0: a second mapping of the file from the same offset.
        let dup = mm.mremap(addr + P, 0, 2 * P, u64::from(MREMAP_MAYMOVE), 0).unwrap();
        assert_ne!(dup, addr);
        assert_eq!(mm.vmas().vma_lookup(va(dup)).unwrap().pgoff(), 1);
        assert_eq!(read(env, &mut mm, dup), Ok(1));
        write(env, &mut mm, dup + P, 2).unwrap();
        assert_eq!(read(env, &mut mm, addr + 2 * P), Ok(2), "one file under both");
        assert_eq!(
            mm.vmas().vma_lookup(va(addr)).map(|v| (v.start().as_u64(), v.end().as_u64())),
            Some((addr, addr + 4 * P))
        );
        assert_eq!(mm.mremap(addr, 0, P, 0, 0), Err(Errno::ENOMEM), "duplication must move");
        let private = mm.do_mmap(0, P, RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0).unwrap();
        assert_eq!(mm.mremap(private, 0, P, u64::from(MREMAP_MAYMOVE), 0), Err(Errno::EINVAL), "private: EINVAL");
        // MREMAP_DONTUNMAP: the old range stays mapped and refaults the
        // file's pages.
        let flags = u64::from(MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
        let new = mm.mremap(addr, 4 * P, 4 * P, flags, 0x2000_0000).unwrap();
        assert_eq!(new, 0x2000_0000);
        assert_eq!(read(env, &mut mm, new + P), Ok(1));
        assert_eq!(pfn_at(&mm, addr + P), None, "the old range's ptes moved");
        assert_eq!(read(env, &mut mm, addr + P), Ok(1), "and it refaults the file's page");
        assert_eq!(env.shmem.files()[0].refs(), 3);
        assert_eq!(env.shmem.files().len(), 1);
        teardown(mm);
    });
}

#[test]
fn dontneed_refaults_the_data_and_remove_frees_it() {
    with_env(|env| {
        let mut mm = env.mm();
        let addr = mm.do_mmap(0, 4 * P, RW, SA, None, 0).unwrap();
        for i in 0..4 {
            write(env, &mut mm, addr + i * P, 10 + i as u8).unwrap();
        }
        let file = env.shmem.files()[0];
        assert_eq!(mm.madvise(addr, 2 * P, MADV_DONTNEED), Ok(()));
        assert_eq!((pfn_at(&mm, addr), mm.rss_pages()), (None, 2));
        assert_eq!(read(env, &mut mm, addr), Ok(10), "DONTNEED drops ptes, not shmem data");
        assert_eq!(mm.madvise(addr, P, MADV_FREE), Err(Errno::EINVAL), "MADV_FREE is for private memory");
        let before = free_pages_drained(env.pgdat);
        assert_eq!(mm.madvise(addr + P, 2 * P, MADV_REMOVE), Ok(()));
        assert_eq!((file.cached(1), file.cached(2)), (None, None), "the file's pages are gone");
        assert_eq!(free_pages_drained(env.pgdat), before + 2, "and freed");
        assert_eq!(state(env.pgdat, NodeStatItem::NrShmem), 2);
        assert_eq!(read(env, &mut mm, addr + P), Ok(0), "a removed page reads as zeros");
        assert_eq!(read(env, &mut mm, addr + 3 * P), Ok(13));
        // Where MADV_REMOVE does not apply, in Linux's order.
        let private = mm.do_mmap(0, P, RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0).unwrap();
        assert_eq!(mm.madvise(private, P, MADV_REMOVE), Err(Errno::EINVAL), "no file");
        let ro = MapFile { file: &FILE, writable: false };
        let shared_ro = mm.do_mmap(0, P, PROT_READ, MAP_SHARED, Some(ro), 0).unwrap();
        assert_eq!(mm.madvise(shared_ro, P, MADV_REMOVE), Err(Errno::EACCES), "not shared and writable");
        let rw = MapFile { file: &FILE, writable: true };
        let shared_rw = mm.do_mmap(0, P, RW, MAP_SHARED, Some(rw), 0).unwrap();
        assert_eq!(mm.madvise(shared_rw, P, MADV_REMOVE), Err(Errno::EOPNOTSUPP), "a file that cannot");
        assert_eq!(mm.mlock(addr, P), Ok(()));
        assert_eq!(mm.madvise(addr, P, MADV_REMOVE), Err(Errno::EINVAL), "locked");
        teardown(mm);
    });
}

#[test]
fn remove_zeroes_what_another_process_still_maps() {
    with_env(|env| {
        let mut parent = env.mm();
        let addr = parent.do_mmap(0, 2 * P, RW, SA, None, 0).unwrap();
        write(env, &mut parent, addr, 1).unwrap();
        write(env, &mut parent, addr + P, 2).unwrap();
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        let file = env.shmem.files()[0];
        let kept = file.cached(0);
        assert_eq!(child.madvise(addr, 2 * P, MADV_REMOVE), Ok(()));
        assert_eq!(read(env, &mut parent, addr), Ok(0), "the parent's page reads zeros");
        assert_eq!(read(env, &mut child, addr + P), Ok(0), "and so does the child's refault");
        assert_eq!(file.cached(0), kept, "the page another mapper maps stays the file's");
        write(env, &mut child, addr, 3).unwrap();
        assert_eq!(read(env, &mut parent, addr), Ok(3), "still shared after the removal");
        teardown(child);
        teardown(parent);
    });
}

#[test]
fn without_memory_for_the_file_mmap_fails_and_changes_nothing() {
    with_env(|env| {
        let mut mm = env.mm();
        assert_eq!(mm.do_mmap(X, P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0), Ok(X));
        write(env, &mut mm, X, 9).unwrap();
        env.shmem.fail_next.store(true, Ordering::Relaxed);
        assert_eq!(mm.do_mmap(X, P, RW, SA | MAP_FIXED, None, 0), Err(Errno::ENOMEM));
        assert_eq!(read(env, &mut mm, X), Ok(9), "the mapping it would have replaced is still there");
        assert!(env.shmem.files().is_empty());
        teardown(mm);
    });
}

#[test]
fn a_locked_or_populated_shared_anonymous_mapping_is_faulted_in_at_once() {
    with_env(|env| {
        let mut mm = env.mm();
        let addr = mm.do_mmap(0, 3 * P, RW, SA | MAP_POPULATE, None, 0).unwrap();
        assert_eq!(resident(&mm, addr, 3), [1, 1, 1]);
        assert_eq!(mm.counter(MmCounter::ShmemPages), 3);
        assert_eq!(state(env.pgdat, NodeStatItem::NrShmem), 3);
        teardown(mm);
    });
}
