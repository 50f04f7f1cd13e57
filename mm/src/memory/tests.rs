//! Host tests of file mappings over a page cache: faults map the cache's
//! pages (read, fault-around, private copy, shared write through
//! `page_mkwrite`), dirty ptes reach the file when zapped or msync'ed,
//! `SIGBUS` past the end, fork and mprotect keep the dirty tracking, and
//! every VMA's file reference is dropped again. The file is a real
//! [`AddressSpace`] with the page-writeback transitions; it counts what
//! the mm asks of it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use uapi::errno::Errno;
use uapi::mman::*;

use super::*;
use crate::filemap::{AddressSpace, MappingId, folio_test_locked, folio_trylock, folio_unlock};
use crate::gfp::GFP_HIGHUSER_MOVABLE;
use crate::highmem::memcpy_to_owned;
use crate::mmap::MapFile;
use crate::mmap::tests::{
    Env, Mm, P, RW, X, access, events, pfn_at, read, read_page, state, teardown, va, with_env, write,
};
use crate::page::Page;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::page_writeback::{folio_clear_dirty_for_io, folio_end_writeback, folio_mark_dirty, folio_start_writeback};
use crate::readahead::VmaRaAdvice;
use crate::sim::{HeapAlloc, SimFolioWaits};
use crate::vma::{FaultPage, VM_READHINTMASK};
use crate::vmstat::NodeStatItem;
use crate::xarray::XaNode;

type Nodes = HeapAlloc<XaNode<crate::filemap::CacheEntry>>;

/// A second mapping's address, well away from `X`.
const Y: u64 = X + 0x100_0000;

/// What the mm asked of a [`CachedFile`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Calls {
    /// `fault` calls, and how many of them read the page in.
    faults: usize,
    majors: usize,
    /// `map_pages` windows.
    map_pages: Vec<(u64, u64)>,
    /// `page_mkwrite` indices.
    mkwrite: Vec<u64>,
    /// `set_page_dirty` calls.
    dirtied: Vec<(u64, Pfn)>,
    /// `fsync_range` ranges, and the pages they wrote.
    fsync: Vec<(u64, u64)>,
    written: usize,
    /// The readahead advice of each `fault`.
    advice: Vec<VmaRaAdvice>,
    /// `willneed` ranges: (offset, len) in bytes.
    willneed: Vec<(u64, u64)>,
}

/// A file of `pages` pages, page `i` all bytes [`byte_of`]`(i)`, cached in
/// a real [`AddressSpace`].
struct CachedFile {
    pages: u64,
    cache: Mutex<AddressSpace<Nodes>>,
    refs: AtomicUsize,
    calls: Mutex<Calls>,
    /// What the next `fault` fails with.
    fail_fault: Mutex<Option<FileFaultError>>,
    /// What `fsync_range` fails with.
    fail_fsync: Mutex<Option<Errno>>,
}

fn byte_of(index: u64) -> u8 {
    (index % 250) as u8 + 1
}

impl CachedFile {
    /// A new file of the test's own (leaked: VMAs keep `'static` files).
    fn new(pages: u64) -> &'static CachedFile {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0x1000);
        let id = MappingId::new(NEXT_ID.fetch_add(8, Ordering::Relaxed)).expect("aligned, non-zero");
        Box::leak(Box::new(CachedFile {
            pages,
            cache: Mutex::new(AddressSpace::new(id, false, Nodes::default())),
            refs: AtomicUsize::new(0),
            calls: Mutex::new(Calls::default()),
            fail_fault: Mutex::new(None),
            fail_fsync: Mutex::new(None),
        }))
    }

    fn map(&'static self) -> Option<MapFile> {
        Some(MapFile { file: self, writable: true })
    }

    fn calls(&self) -> Calls {
        self.calls.lock().unwrap().clone()
    }

    fn refs(&self) -> usize {
        self.refs.load(Ordering::Relaxed)
    }

    fn cached(&self, index: u64) -> Option<Pfn> {
        self.cache.lock().unwrap().lookup(index)
    }

    /// Reads page `index` into the cache (it is not there); the caller
    /// gets a reference besides the cache's.
    fn read_in(&self, cache: &mut AddressSpace<Nodes>, pgdat: &PgData<'_>, index: u64) -> Result<Pfn, FileFaultError> {
        let mut page = pgdat.alloc_pages_owned(GFP_HIGHUSER_MOVABLE, 0).ok_or(FileFaultError::NoMemory)?;
        memcpy_to_owned(&mut page, 0, &[byte_of(index); P as usize]).map_err(|_| FileFaultError::Io)?;
        let pfn = page.into_raw();
        let page = pgdat.pfn_to_page(pfn).unwrap();
        assert!(folio_trylock(page));
        cache.add_folio(pgdat, pfn, index).unwrap();
        page.set(PageFlags::UPTODATE);
        folio_unlock(page, pfn, &SimFolioWaits);
        Ok(pfn)
    }

    /// Reads pages into the cache without mapping them (readahead, say).
    fn populate(&self, pgdat: &PgData<'_>, indices: impl IntoIterator<Item = u64>) {
        let mut cache = self.cache.lock().unwrap();
        for index in indices {
            let pfn = self.read_in(&mut cache, pgdat, index).unwrap();
            // SAFETY: `read_in`'s reference; the cache holds its own.
            unsafe { pgdat.put_page(pfn) }.unwrap();
        }
    }

    fn is_dirty(&self, pgdat: &PgData<'_>, index: u64) -> bool {
        self.cached(index).is_some_and(|pfn| pgdat.pfn_to_page(pfn).unwrap().test(PageFlags::DIRTY))
    }

    /// Writes back the dirty pages in `[first, end)` (Linux
    /// `write_cache_pages` with a write that completes at once); returns
    /// how many.
    fn writeback(&self, pgdat: &PgData<'_>, first: u64, end: u64) -> usize {
        let mut cache = self.cache.lock().unwrap();
        let mut written = 0;
        for index in first..end.min(self.pages) {
            let Some(pfn) = cache.lookup(index) else { continue };
            let page = pgdat.pfn_to_page(pfn).unwrap();
            assert!(folio_trylock(page));
            if folio_clear_dirty_for_io(pgdat, page) {
                folio_start_writeback(&mut cache, pgdat, page, index, false).unwrap();
                folio_end_writeback(&mut cache, pgdat, page, pfn, index, &SimFolioWaits);
                written += 1;
            }
            folio_unlock(page, pfn, &SimFolioWaits);
        }
        cache.check(pgdat).unwrap();
        written
    }

    /// Drops every page from the cache (truncation to 0), putting the
    /// cache's references; the test's mappings must be gone.
    fn truncate(&self, pgdat: &PgData<'_>) {
        let mut cache = self.cache.lock().unwrap();
        cache.check(pgdat).unwrap();
        for index in 0..self.pages {
            let Some(pfn) = cache.lookup(index) else { continue };
            let page = pgdat.pfn_to_page(pfn).unwrap();
            assert_eq!((page.refcount(), page.mapcount()), (1, 0), "page {index} still mapped or referenced");
            assert!(folio_trylock(page));
            assert_eq!(cache.remove_folio(pgdat, index), Some(pfn));
            folio_unlock(page, pfn, &SimFolioWaits);
            // SAFETY: the cache's reference, handed over by
            // `remove_folio`: the last, nothing maps the page.
            unsafe { pgdat.put_page(pfn) }.unwrap();
        }
        assert_eq!(state(pgdat, NodeStatItem::NrFilePages), 0);
        assert_eq!(state(pgdat, NodeStatItem::NrFileDirty), 0);
    }
}

impl VmaFile for CachedFile {
    fn name(&self) -> &str {
        "/cached"
    }

    fn mapping_id(&self) -> Option<u64> {
        Some(self.cache.lock().unwrap().id().as_u64())
    }

    fn get_file(&self) {
        self.refs.fetch_add(1, Ordering::Relaxed);
    }

    fn put_file(&self) {
        assert!(self.refs.fetch_sub(1, Ordering::Relaxed) > 0, "put_file without a reference");
    }

    fn fault(&self, pgdat: &PgData<'_>, index: u64, advice: VmaRaAdvice) -> Result<FaultPage, FileFaultError> {
        {
            let mut calls = self.calls.lock().unwrap();
            calls.faults += 1;
            calls.advice.push(advice);
        }
        if let Some(e) = self.fail_fault.lock().unwrap().take() {
            return Err(e);
        }
        if index >= self.pages {
            return Err(FileFaultError::Eof);
        }
        let mut cache = self.cache.lock().unwrap();
        if let Some(pfn) = cache.lookup(index) {
            pgdat.pfn_to_page(pfn).unwrap().get();
            return Ok(FaultPage { pfn, major: false });
        }
        let pfn = self.read_in(&mut cache, pgdat, index)?;
        self.calls.lock().unwrap().majors += 1;
        Ok(FaultPage { pfn, major: true })
    }

    fn map_pages(&self, pgdat: &PgData<'_>, start: u64, end: u64, f: &mut dyn FnMut(u64, Pfn)) {
        self.calls.lock().unwrap().map_pages.push((start, end));
        // `f` is called under the cache's lock, as the contract allows.
        let cache = self.cache.lock().unwrap();
        for index in start..end.min(self.pages) {
            let Some(pfn) = cache.lookup(index) else { continue };
            let page = pgdat.pfn_to_page(pfn).unwrap();
            if page.test(PageFlags::UPTODATE) && !folio_test_locked(page) {
                page.get();
                f(index, pfn);
            }
        }
    }

    fn page_mkwrite(&self, pgdat: &PgData<'_>, index: u64, pfn: Pfn) -> Result<(), FileFaultError> {
        self.calls.lock().unwrap().mkwrite.push(index);
        let mut cache = self.cache.lock().unwrap();
        if cache.lookup(index) != Some(pfn) {
            return Err(FileFaultError::Eof);
        }
        folio_mark_dirty(&mut cache, pgdat, pgdat.pfn_to_page(pfn).unwrap(), index);
        Ok(())
    }

    fn set_page_dirty(&self, pgdat: &PgData<'_>, index: u64, pfn: Pfn) {
        self.calls.lock().unwrap().dirtied.push((index, pfn));
        let mut cache = self.cache.lock().unwrap();
        if cache.lookup(index) == Some(pfn) {
            folio_mark_dirty(&mut cache, pgdat, pgdat.pfn_to_page(pfn).unwrap(), index);
        }
    }

    fn fsync_range(&self, start: u64, end: u64) -> Result<(), Errno> {
        self.calls.lock().unwrap().fsync.push((start, end));
        if let Some(e) = *self.fail_fsync.lock().unwrap() {
            return Err(e);
        }
        Ok(())
    }

    fn willneed(&self, offset: u64, len: u64) {
        self.calls.lock().unwrap().willneed.push((offset, len));
    }

    fn mincore_page(&self, index: u64) -> bool {
        self.cache.lock().unwrap().lookup(index).is_some()
    }
}

/// Maps `pages` pages of `file` from page `pgoff` at `addr`.
fn mmap_file(mm: &mut Mm<'_>, file: &'static CachedFile, addr: u64, pages: u64, flags: u32, pgoff: u64) {
    assert_eq!(mm.do_mmap(addr, pages * P, RW, flags | MAP_FIXED, file.map(), pgoff), Ok(addr));
}

fn page<'a>(env: &Env<'a>, pfn: Pfn) -> &'a Page {
    env.page(pfn)
}

/// `(refcount, mapcount)` of a page.
fn counts(env: &Env<'_>, pfn: Pfn) -> (i32, i32) {
    (page(env, pfn).refcount(), page(env, pfn).mapcount())
}

fn prot_at(mm: &Mm<'_>, addr: u64) -> PgProt {
    mm.follow_pte(va(addr)).expect("a pte").prot
}

#[test]
fn a_read_fault_maps_the_cached_page_itself_shared_by_every_mapping() {
    with_env(|env| {
        let file = CachedFile::new(4);
        let majors = || events(env.pgdat, VmEventItem::Pgmajfault);
        let maj0 = majors();
        let (mut a, mut b) = (env.mm(), env.mm());
        mmap_file(&mut a, file, X, 4, MAP_PRIVATE, 0);
        mmap_file(&mut b, file, X + 8 * P, 2, MAP_SHARED, 1);
        assert_eq!(read(env, &mut a, X + P), Ok(byte_of(1)));
        assert_eq!(majors(), maj0 + 1, "read in: a major fault");
        let pfn = file.cached(1).unwrap();
        assert_eq!(pfn_at(&a, X + P), Some(pfn), "the cache's page, not a copy");
        assert!(!prot_at(&a, X + P).contains(PgProt::WRITE), "read-only in a writable private mapping");
        assert_eq!(read(env, &mut b, X + 8 * P), Ok(byte_of(1)));
        assert_eq!(majors(), maj0 + 1, "cached: minor");
        assert_eq!(pfn_at(&b, X + 8 * P), Some(pfn));
        assert!(!prot_at(&b, X + 8 * P).contains(PgProt::WRITE), "read-only until page_mkwrite");
        assert_eq!(counts(env, pfn), (3, 2), "the cache's reference and one per mapping");
        assert_eq!(state(env.pgdat, NodeStatItem::NrFileMapped), 1);
        assert_eq!((a.counter(MmCounter::FilePages), b.counter(MmCounter::FilePages)), (1, 1));
        assert_eq!((a.counter(MmCounter::AnonPages), b.counter(MmCounter::AnonPages)), (0, 0));
        assert_eq!(file.calls().mkwrite, [], "reads never ask for write");
        teardown(a);
        assert_eq!(counts(env, pfn), (2, 1), "munmap puts only the mapping's reference");
        teardown(b);
        assert_eq!(counts(env, pfn), (1, 0), "the page stays in the cache");
        assert_eq!(file.cached(1), Some(pfn));
        assert!(!file.is_dirty(env.pgdat, 1), "clean ptes dirty nothing");
        assert_eq!(file.calls().dirtied, []);
        assert_eq!(file.refs(), 0);
        file.truncate(env.pgdat);
    });
}

#[test]
fn a_private_write_copies_the_cached_page_which_stays_unchanged() {
    with_env(|env| {
        let file = CachedFile::new(4);
        let mut mm = env.mm();
        mmap_file(&mut mm, file, X, 4, MAP_PRIVATE, 0);
        // A write to a missing pte copies at once (Linux `do_cow_fault`).
        write(env, &mut mm, X, 0xaa).unwrap();
        let cached = file.cached(0).unwrap();
        assert_ne!(pfn_at(&mm, X), Some(cached));
        assert_eq!(counts(env, cached), (1, 0), "the fault's reference put after the copy");
        // A write to the read-only cached page copies too (`wp_page_copy`).
        assert_eq!(read(env, &mut mm, X + P), Ok(byte_of(1)));
        let cached1 = file.cached(1).unwrap();
        assert_eq!(pfn_at(&mm, X + P), Some(cached1));
        write(env, &mut mm, X + P, 0xbb).unwrap();
        assert_ne!(pfn_at(&mm, X + P), Some(cached1));
        assert_eq!(counts(env, cached1), (1, 0), "unmapped: only the cache holds it");
        for (index, pfn) in [(0, cached), (1, cached1)] {
            assert!(env.ram.page(pfn).iter().all(|&b| b == byte_of(index)), "the file's page {index} unchanged");
        }
        assert_eq!((read(env, &mut mm, X), read(env, &mut mm, X + P)), (Ok(0xaa), Ok(0xbb)));
        assert_eq!((mm.counter(MmCounter::AnonPages), mm.counter(MmCounter::FilePages)), (2, 0));
        assert_eq!(file.calls().mkwrite, [], "a private write is not the file's business");
        teardown(mm);
        assert_eq!(file.calls().dirtied, [], "anonymous copies dirty nothing in the file");
        assert!(!file.is_dirty(env.pgdat, 0) && !file.is_dirty(env.pgdat, 1));
        file.truncate(env.pgdat);
    });
}

#[test]
fn a_shared_write_calls_page_mkwrite_once_and_maps_the_cached_page_dirty() {
    with_env(|env| {
        let file = CachedFile::new(4);
        let reuses = || events(env.pgdat, VmEventItem::Pgreuse);
        let mut mm = env.mm();
        mmap_file(&mut mm, file, X, 4, MAP_SHARED, 0);
        // A write to a missing pte (Linux `do_shared_fault`).
        write(env, &mut mm, X, 0xaa).unwrap();
        let pfn = file.cached(0).unwrap();
        assert_eq!(pfn_at(&mm, X), Some(pfn), "the cache's page, written in place");
        assert!(prot_at(&mm, X).contains(PgProt::WRITE | PgProt::DIRTY));
        assert_eq!(file.calls().mkwrite, [0]);
        assert!(file.is_dirty(env.pgdat, 0), "page_mkwrite dirtied it");
        write(env, &mut mm, X, 0xab).unwrap();
        assert_eq!(file.calls().mkwrite, [0], "a writable pte takes no more faults");
        assert!(env.ram.page(pfn).iter().all(|&b| b == 0xab), "the write is in the file's page");
        // A write to a read-only pte (Linux `wp_page_shared`).
        let reuse0 = reuses();
        assert_eq!(read(env, &mut mm, X + P), Ok(byte_of(1)));
        assert!(!prot_at(&mm, X + P).contains(PgProt::WRITE));
        assert_eq!(file.calls().mkwrite, [0]);
        let pfn1 = file.cached(1).unwrap();
        write(env, &mut mm, X + P, 0xcc).unwrap();
        assert_eq!(file.calls().mkwrite, [0, 1]);
        assert_eq!(pfn_at(&mm, X + P), Some(pfn1), "made writable in place");
        assert!(prot_at(&mm, X + P).contains(PgProt::WRITE | PgProt::DIRTY));
        assert_eq!(reuses(), reuse0 + 1);
        assert_eq!(counts(env, pfn1), (2, 1), "page_mkwrite's reference put");
        assert_eq!((mm.counter(MmCounter::FilePages), mm.counter(MmCounter::AnonPages)), (2, 0));
        teardown(mm);
        file.truncate(env.pgdat);
    });
}

#[test]
fn a_failed_page_mkwrite_fails_the_write_and_maps_nothing_writable() {
    with_env(|env| {
        let file = CachedFile::new(2);
        let mut mm = env.mm();
        mmap_file(&mut mm, file, X, 2, MAP_SHARED, 0);
        assert_eq!(read(env, &mut mm, X), Ok(byte_of(0)));
        let pfn = file.cached(0).unwrap();
        // The page leaves the file (truncation without unmapping).
        {
            let mut cache = file.cache.lock().unwrap();
            assert!(folio_trylock(page(env, pfn)));
            assert_eq!(cache.remove_folio(env.pgdat, 0), Some(pfn));
            folio_unlock(page(env, pfn), pfn, &SimFolioWaits);
        }
        // SAFETY: the cache's reference; the pte holds its own.
        unsafe { env.pgdat.put_page(pfn) }.unwrap();
        assert_eq!(access(&mut mm, X, true), Err(FaultError::SigBus));
        assert!(!prot_at(&mm, X).contains(PgProt::WRITE));
        assert_eq!(counts(env, pfn), (1, 1), "only the pte's reference left");
        teardown(mm);
        assert_eq!(file.calls().dirtied, [], "a clean pte");
        file.truncate(env.pgdat);
    });
}

#[test]
fn zapping_a_dirty_shared_pte_hands_its_dirtiness_to_the_file() {
    with_env(|env| {
        let file = CachedFile::new(8);
        let mut mm = env.mm();
        mmap_file(&mut mm, file, X, 8, MAP_SHARED, 0);
        for i in 0..3 {
            write(env, &mut mm, X + i * P, 1).unwrap();
        }
        assert_eq!(read(env, &mut mm, X + 3 * P), Ok(byte_of(3)));
        // Writeback cleans the pages without folio_mkclean (the kernel's
        // writeback runs it; this file's does not): the ptes stay
        // writable and dirty, so only the zap tells the file again.
        assert_eq!(file.writeback(env.pgdat, 0, 8), 3);
        assert!(!file.is_dirty(env.pgdat, 0));
        let pfns: Vec<Pfn> = (0..4).map(|i| file.cached(i).unwrap()).collect();
        assert_eq!(mm.do_munmap(X, P), Ok(()));
        assert_eq!(file.calls().dirtied, [(0, pfns[0])]);
        assert!(file.is_dirty(env.pgdat, 0));
        assert_eq!(mm.madvise(X + P, 3 * P, MADV_DONTNEED), Ok(()), "zaps a shared file mapping");
        assert_eq!(file.calls().dirtied, [(0, pfns[0]), (1, pfns[1]), (2, pfns[2])], "the clean pte not");
        assert_eq!(pfn_at(&mm, X + P), None);
        assert_eq!(read(env, &mut mm, X + P), Ok(1), "refaulted from the cache, written data and all");
        assert_eq!(pfn_at(&mm, X + P), Some(pfns[1]));
        write(env, &mut mm, X + 4 * P, 2).unwrap();
        teardown(mm);
        assert_eq!(file.calls().dirtied.last(), Some(&(4, file.cached(4).unwrap())), "exit zaps too");
        assert_eq!(file.calls().dirtied.len(), 4);
        file.truncate(env.pgdat);
    });
}

#[test]
fn fault_around_maps_only_cached_neighbours_in_the_window_and_the_vma() {
    with_env(|env| {
        let file = CachedFile::new(64);
        // Cached: pages 8..40 but 13 (the first fault's own) and 17.
        file.populate(env.pgdat, (8..40).filter(|&i| i != 13 && i != 17));
        let mut mm = env.mm();
        // Pages 10..30 of the file at slots 2..22 of a pte table.
        mmap_file(&mut mm, file, X + 2 * P, 20, MAP_PRIVATE, 10);
        // An anonymous copy in the window stays.
        write(env, &mut mm, X + 3 * P, 0xee).unwrap();
        let copy = pfn_at(&mm, X + 3 * P).unwrap();
        assert_eq!(file.calls().map_pages, [], "write faults map nothing around");
        // A read at slot 5 (page 13): the aligned window [0, 16) starts
        // before the VMA, so it is the 16 slots from the VMA's start
        // (Linux's `from_pte`/`to_pte`): [2, 18), pages [10, 26).
        assert_eq!(read(env, &mut mm, X + 5 * P), Ok(byte_of(13)));
        assert_eq!(file.calls().map_pages, [(10, 26)]);
        let calls = file.calls();
        assert_eq!((calls.faults, calls.majors), (2, 1), "the copy's fault and page 13's, read in");
        for slot in 0..32 {
            let index = slot + 8;
            let expected = match slot {
                3 => Some(copy),
                5 => file.cached(13),
                2..18 if index != 17 => file.cached(index),
                _ => None,
            };
            assert_eq!(pfn_at(&mm, X + slot * P), expected, "slot {slot}");
        }
        assert_eq!(mm.counter(MmCounter::FilePages), 14, "slots 2..18 but the copy and page 17");
        assert!(!prot_at(&mm, X + 6 * P).contains(PgProt::WRITE), "mapped around read-only");
        assert_eq!(counts(env, file.cached(14).unwrap()), (2, 1));
        // A read at slot 18: window [16, 22), clipped by the VMA's end,
        // slots 16 and 17 already mapped; all cached, so fault-around maps
        // the faulting page and `fault` is not called.
        assert_eq!(read(env, &mut mm, X + 18 * P), Ok(byte_of(26)));
        let calls = file.calls();
        assert_eq!(calls.map_pages, [(10, 26), (24, 30)]);
        assert_eq!(calls.faults, 2, "no fault call: fault-around mapped it");
        assert_eq!(pfn_at(&mm, X + 22 * P), None, "past the VMA");
        assert_eq!(mm.counter(MmCounter::FilePages), 18);
        teardown(mm);
        file.truncate(env.pgdat);
    });
}

#[test]
fn fault_around_stops_at_the_pte_table_and_the_vma_start() {
    with_env(|env| {
        let file = CachedFile::new(64);
        file.populate(env.pgdat, 0..64);
        let mut mm = env.mm();
        // Slots 500..512 of one table and 0..8 of the next.
        let base = X + 500 * P;
        mmap_file(&mut mm, file, base, 20, MAP_SHARED, 0);
        assert_eq!(read(env, &mut mm, base + 13 * P), Ok(byte_of(13)));
        assert_eq!(file.calls().map_pages, [(12, 20)], "the next table's window: slots [0, 16) clipped to 8");
        assert_eq!(read(env, &mut mm, base + P), Ok(byte_of(1)));
        assert_eq!(file.calls().map_pages[1], (0, 12), "slots [500, 512): the VMA's start to the table's end");
        assert_eq!(mm.counter(MmCounter::FilePages), 20);
        assert_eq!(file.calls().faults, 0);
        teardown(mm);
        file.truncate(env.pgdat);
    });
}

#[test]
fn a_page_past_the_end_of_the_file_or_a_failed_read_is_sigbus() {
    with_env(|env| {
        let file = CachedFile::new(2);
        let mut mm = env.mm();
        mmap_file(&mut mm, file, X, 4, MAP_PRIVATE, 0);
        mmap_file(&mut mm, file, X + 8 * P, 4, MAP_SHARED, 0);
        assert_eq!(access(&mut mm, X + 2 * P, false), Err(FaultError::SigBus));
        // The page tables exist now: nothing else may be allocated.
        let free = crate::sim::free_pages_drained(env.pgdat);
        for (addr, write) in [(X + 2 * P, false), (X + 3 * P, true), (X + 10 * P, false), (X + 11 * P, true)] {
            assert_eq!(access(&mut mm, addr, write), Err(FaultError::SigBus), "{addr:#x} write {write}");
            assert_eq!(pfn_at(&mm, addr), None);
        }
        assert_eq!(crate::sim::free_pages_drained(env.pgdat), free, "nothing kept for them");
        *file.fail_fault.lock().unwrap() = Some(FileFaultError::Io);
        assert_eq!(access(&mut mm, X, false), Err(FaultError::SigBus), "an I/O error");
        *file.fail_fault.lock().unwrap() = Some(FileFaultError::NoMemory);
        assert_eq!(access(&mut mm, X, true), Err(FaultError::Oom));
        assert_eq!(read(env, &mut mm, X), Ok(byte_of(0)), "the next try reads");
        assert_eq!(mm.counter(MmCounter::FilePages), 1);
        teardown(mm);
        file.truncate(env.pgdat);
    });
}

#[test]
fn file_references_follow_the_vmas_through_split_fork_mremap_munmap_and_exit() {
    with_env(|env| {
        let file = CachedFile::new(16);
        let mut mm = env.mm();
        mmap_file(&mut mm, file, X, 8, MAP_SHARED, 0);
        assert_eq!(file.refs(), 1);
        mmap_file(&mut mm, file, X + 8 * P, 4, MAP_SHARED, 8);
        assert_eq!((mm.vmas().map_count(), file.refs()), (1, 1), "merged");
        assert_eq!(mm.mprotect(X + 2 * P, P, u64::from(PROT_READ)), Ok(()));
        assert_eq!((mm.vmas().map_count(), file.refs()), (3, 3), "split in three");
        let mut child = env.mm();
        mm.dup_mmap(&mut child).unwrap();
        assert_eq!(file.refs(), 6, "the child's VMAs hold their own");
        assert_eq!(child.do_munmap(X + 4 * P, P), Ok(()));
        assert_eq!(file.refs(), 7, "a hole punched: one more VMA");
        let moved = child.mremap(X, 2 * P, 2 * P, u64::from(MREMAP_MAYMOVE | MREMAP_FIXED), X + 32 * P);
        assert_eq!((moved, file.refs()), (Ok(X + 32 * P), 7), "moved, not copied");
        let kept = child.mremap(X + 32 * P, 2 * P, 2 * P, u64::from(MREMAP_MAYMOVE | MREMAP_DONTUNMAP), X + 64 * P);
        assert_eq!((kept, file.refs()), (Ok(X + 64 * P), 8), "DONTUNMAP leaves the old VMA: one more");
        assert_eq!(child.mremap(X + 5 * P, 7 * P, 3 * P, 0, 0), Ok(X + 5 * P));
        assert_eq!(file.refs(), 8, "shrunk in place");
        assert_eq!(mm.mprotect(X + 2 * P, P, u64::from(RW)), Ok(()));
        assert_eq!(file.refs(), 6, "merged back: the parent's three VMAs are one");
        teardown(child);
        assert_eq!(file.refs(), 1);
        teardown(mm);
        assert_eq!(file.refs(), 0, "exit drops the last");
        file.truncate(env.pgdat);
    });
}

#[test]
fn msync_cleans_and_write_protects_dirty_ptes_then_writes_the_range_back() {
    with_env(|env| {
        let file = CachedFile::new(8);
        let mut mm = env.mm();
        // File pages 2..8 at X.
        mmap_file(&mut mm, file, X, 6, MAP_SHARED, 2);
        write(env, &mut mm, X, 1).unwrap();
        write(env, &mut mm, X + P, 2).unwrap();
        assert_eq!(read(env, &mut mm, X + 2 * P), Ok(byte_of(4)));
        assert_eq!(file.writeback(env.pgdat, 0, 8), 2);
        let pfns: Vec<Pfn> = (2..5).map(|i| file.cached(i).unwrap()).collect();
        assert_eq!(mm.msync(X, 6 * P, MS_ASYNC), Ok(()));
        assert_eq!(file.calls().dirtied, [(2, pfns[0]), (3, pfns[1])], "the dirty ptes, not the clean one");
        assert!(file.is_dirty(env.pgdat, 2) && file.is_dirty(env.pgdat, 3) && !file.is_dirty(env.pgdat, 4));
        for addr in [X, X + P] {
            assert!(!prot_at(&mm, addr).intersects(PgProt::WRITE | PgProt::DIRTY), "{addr:#x} clean, read-only");
        }
        assert_eq!(file.calls().fsync, [], "MS_ASYNC writes nothing back");
        // Cleaned again by writeback; the next write goes through
        // page_mkwrite and dirties the page again.
        assert_eq!(file.writeback(env.pgdat, 0, 8), 2);
        write(env, &mut mm, X + P, 3).unwrap();
        assert_eq!(file.calls().mkwrite, [2, 3, 3]);
        assert!(file.is_dirty(env.pgdat, 3));
        // MS_SYNC of part of the mapping: its bytes in the file.
        assert_eq!(mm.msync(X + P, 2 * P, MS_SYNC), Ok(()));
        assert_eq!(file.calls().dirtied.len(), 3);
        assert_eq!(file.calls().fsync, [(3 * P, 5 * P)]);
        *file.fail_fsync.lock().unwrap() = Some(Errno::EIO);
        assert_eq!(mm.msync(X, P, MS_SYNC), Err(Errno::EIO), "the writeback's error");
        teardown(mm);
        assert_eq!(file.calls().dirtied.len(), 3, "msync left no dirty pte");
        file.truncate(env.pgdat);
    });
}

#[test]
fn msync_leaves_private_file_mappings_alone() {
    with_env(|env| {
        let file = CachedFile::new(2);
        let mut mm = env.mm();
        mmap_file(&mut mm, file, X, 2, MAP_PRIVATE, 0);
        write(env, &mut mm, X, 1).unwrap();
        assert_eq!(mm.msync(X, 2 * P, MS_SYNC), Ok(()));
        assert_eq!((file.calls().dirtied, file.calls().fsync), (vec![], vec![]));
        assert!(prot_at(&mm, X).contains(PgProt::WRITE), "the private copy untouched");
        teardown(mm);
        file.truncate(env.pgdat);
    });
}

#[test]
fn fork_shares_file_pages_and_the_child_writes_through_page_mkwrite() {
    with_env(|env| {
        let file = CachedFile::new(4);
        let mut parent = env.mm();
        mmap_file(&mut parent, file, X, 2, MAP_SHARED, 0);
        mmap_file(&mut parent, file, X + 4 * P, 2, MAP_PRIVATE, 2);
        write(env, &mut parent, X, 1).unwrap();
        assert_eq!(read(env, &mut parent, X + 4 * P), Ok(byte_of(2)));
        let (shared, private) = (file.cached(0).unwrap(), file.cached(2).unwrap());
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        assert_eq!((pfn_at(&child, X), pfn_at(&child, X + 4 * P)), (Some(shared), Some(private)));
        assert_eq!((counts(env, shared), counts(env, private)), ((3, 2), (3, 2)));
        assert_eq!(state(env.pgdat, NodeStatItem::NrFileMapped), 2, "each page counted once");
        assert_eq!(child.counter(MmCounter::FilePages), 2);
        assert!(prot_at(&parent, X).contains(PgProt::WRITE | PgProt::DIRTY), "the parent's pte as it was");
        assert!(!prot_at(&child, X).intersects(PgProt::WRITE | PgProt::DIRTY), "the child's read-only, clean");
        for mm in [&parent, &child] {
            assert!(!prot_at(mm, X + 4 * P).contains(PgProt::WRITE), "a private file pte stays read-only");
        }
        write(env, &mut child, X, 2).unwrap();
        assert_eq!(file.calls().mkwrite, [0, 0], "the child's first write asks again");
        assert_eq!(pfn_at(&child, X), Some(shared));
        assert_eq!(read(env, &mut parent, X), Ok(2), "one page for both");
        write(env, &mut child, X + 4 * P, 3).unwrap();
        assert_ne!(pfn_at(&child, X + 4 * P), Some(private), "a private write copies in the child");
        assert_eq!(read(env, &mut parent, X + 4 * P), Ok(byte_of(2)));
        teardown(child);
        teardown(parent);
        assert_eq!(file.calls().dirtied, [(0, shared), (0, shared)], "both dirty ptes told the file");
        file.truncate(env.pgdat);
    });
}

#[test]
fn mprotect_gives_write_back_only_to_dirty_shared_file_ptes() {
    with_env(|env| {
        let file = CachedFile::new(2);
        let mut mm = env.mm();
        mmap_file(&mut mm, file, X, 2, MAP_SHARED, 0);
        write(env, &mut mm, X, 1).unwrap();
        assert_eq!(read(env, &mut mm, X + P), Ok(byte_of(1)));
        assert_eq!(mm.mprotect(X, 2 * P, u64::from(PROT_READ)), Ok(()));
        assert!(!prot_at(&mm, X).contains(PgProt::WRITE) && prot_at(&mm, X).contains(PgProt::DIRTY));
        assert_eq!(mm.mprotect(X, 2 * P, u64::from(RW)), Ok(()));
        assert!(prot_at(&mm, X).contains(PgProt::WRITE), "dirty: page_mkwrite has seen it");
        assert!(!prot_at(&mm, X + P).contains(PgProt::WRITE), "clean: must fault for page_mkwrite");
        write(env, &mut mm, X + P, 2).unwrap();
        assert_eq!(file.calls().mkwrite, [0, 1]);
        teardown(mm);
        file.truncate(env.pgdat);
    });
}

#[test]
fn populate_reads_a_shared_file_mapping_without_dirtying_it() {
    with_env(|env| {
        let file = CachedFile::new(4);
        let mut mm = env.mm();
        let flags = MAP_SHARED | MAP_FIXED | MAP_POPULATE;
        assert_eq!(mm.do_mmap(X, 4 * P, RW, flags, file.map(), 0), Ok(X));
        assert_eq!(mm.counter(MmCounter::FilePages), 4);
        assert_eq!(file.calls().mkwrite, [], "populated by read faults");
        assert!((0..4).all(|i| !file.is_dirty(env.pgdat, i)));
        let data = read_page(env, &mut mm, X + 3 * P).unwrap();
        assert!(data.iter().all(|&b| b == byte_of(3)));
        teardown(mm);
        file.truncate(env.pgdat);
    });
}

#[test]
fn madvise_read_hints_reach_the_file_fault_and_split_the_vma() {
    with_env(|env| {
        let file = CachedFile::new(16);
        let mut mm = env.mm();
        mmap_file(&mut mm, file, X, 8, MAP_PRIVATE, 0);
        assert_eq!(mm.madvise(X + 2 * P, 2 * P, MADV_SEQUENTIAL), Ok(()));
        assert_eq!(mm.madvise(X + 4 * P, 2 * P, MADV_RANDOM), Ok(()));
        // Linux keeps the hints in vm_flags: the VMA splits in four.
        assert_eq!(mm.vmas().map_count(), 4);
        let flags = |addr: u64| mm.vmas().vma_lookup(va(addr)).unwrap().flags();
        assert_eq!(flags(X + 2 * P) & VM_READHINTMASK, VmaFlags::SEQ_READ);
        assert_eq!(flags(X + 4 * P) & VM_READHINTMASK, VmaFlags::RAND_READ);
        assert_eq!(flags(X) & VM_READHINTMASK, VmaFlags::empty());
        for page in [0, 2, 4, 6] {
            read(env, &mut mm, X + page * P).unwrap();
        }
        assert_eq!(
            file.calls().advice,
            [VmaRaAdvice::Normal, VmaRaAdvice::Sequential, VmaRaAdvice::Random, VmaRaAdvice::Normal],
            "one fault per window: fault-around maps nothing uncached"
        );
        // MADV_RANDOM over the sequential part replaces the hint; the two
        // random parts merge.
        assert_eq!(mm.madvise(X + 2 * P, 2 * P, MADV_RANDOM), Ok(()));
        assert_eq!(mm.vmas().map_count(), 3);
        // MADV_NORMAL clears both, and the VMA is whole again.
        assert_eq!(mm.madvise(X, 8 * P, MADV_NORMAL), Ok(()));
        assert_eq!(mm.vmas().map_count(), 1);
        teardown(mm);
        file.truncate(env.pgdat);
    });
}

#[test]
fn madvise_willneed_hands_the_file_range_of_each_vma_part() {
    with_env(|env| {
        let file = CachedFile::new(64);
        let mut mm = env.mm();
        // Pages 10..14 of the file at X, a hole, pages 20..24 at X + 5P.
        mmap_file(&mut mm, file, X, 4, MAP_SHARED, 10);
        mmap_file(&mut mm, file, X + 5 * P, 4, MAP_PRIVATE, 20);
        assert_eq!(mm.madvise(X + P, 7 * P, MADV_WILLNEED), Err(Errno::ENOMEM), "the hole");
        assert_eq!(file.calls().willneed, [(11 * P, 3 * P), (20 * P, 3 * P)]);
        // Anonymous memory: nothing to read, no error.
        let anon = mm.do_mmap(0, P, RW, MAP_PRIVATE | MAP_ANONYMOUS, None, 0).unwrap();
        assert_eq!(mm.madvise(anon, P, MADV_WILLNEED), Ok(()));
        assert_eq!(file.calls().willneed.len(), 2);
        teardown(mm);
        file.truncate(env.pgdat);
    });
}

#[test]
fn mincore_of_a_file_mapping_reports_cached_pages_without_ptes() {
    with_env(|env| {
        let file = CachedFile::new(8);
        file.populate(env.pgdat, [1, 3]);
        let mut mm = env.mm();
        mmap_file(&mut mm, file, X, 8, MAP_PRIVATE, 0);
        // A private copy of page 5: resident through its pte, though the
        // cache has page 5 now too.
        write(env, &mut mm, X + 5 * P, 9).unwrap();
        let anon = mm.do_mmap(X + 8 * P, P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        let mut vec = [9u8; 9];
        mm.mincore(X, 9 * P, 0x7000_0000, &mut |index, bytes| {
            vec[index..index + bytes.len()].copy_from_slice(bytes);
            Ok(())
        })
        .unwrap();
        assert_eq!(vec, [0, 1, 0, 1, 0, 1, 0, 0, 0], "pages 1 and 3 cached, 5 mapped; the anonymous page untouched");
        assert_eq!(anon, X + 8 * P);
        teardown(mm);
        file.truncate(env.pgdat);
    });
}

#[test]
fn fault_around_bytes_rounds_as_linux_debugfs_does() {
    assert_eq!(fault_around_bytes_round(0), Ok(P));
    assert_eq!(fault_around_bytes_round(P), Ok(P));
    assert_eq!(fault_around_bytes_round(P + 1), Ok(P));
    assert_eq!(fault_around_bytes_round(3 * P), Ok(2 * P));
    assert_eq!(fault_around_bytes_round(65536), Ok(65536));
    assert_eq!(fault_around_bytes_round(512 * P), Ok(512 * P));
    assert_eq!(fault_around_bytes_round(513 * P), Err(Errno::EINVAL));
}

#[test]
fn folio_mkclean_write_protects_and_cleans_shared_ptes_and_reports_dirtiness() {
    with_env(|env| {
        let file = CachedFile::new(2);
        let id = file.mapping_id().unwrap();
        let mut mm = env.mm();
        mmap_file(&mut mm, file, X, 2, MAP_SHARED, 0);
        mmap_file(&mut mm, file, Y, 2, MAP_PRIVATE, 0);
        write(env, &mut mm, X, 0xaa).unwrap();
        assert_eq!(read(env, &mut mm, Y), Ok(0xaa), "the private mapping reads the shared page");
        let pfn = file.cached(0).unwrap();
        assert!(mm.folio_mkclean_one(id, 0, pfn), "the shared pte was dirty");
        assert!(!prot_at(&mm, X).intersects(PgProt::WRITE | PgProt::DIRTY), "write-protected and clean");
        assert_eq!(pfn_at(&mm, X), Some(pfn), "still mapped");
        assert!(!mm.folio_mkclean_one(id, 0, pfn), "nothing dirty the second time");
        assert!(!mm.folio_mkclean_one(id + 8, 0, pfn), "another cache's pages are not ours");
        write(env, &mut mm, X, 0xab).unwrap();
        assert_eq!(file.calls().mkwrite, [0, 0], "the next write goes through page_mkwrite again");
        teardown(mm);
        file.truncate(env.pgdat);
    });
}

#[test]
fn unmap_mapping_pages_unmaps_the_range_from_shared_and_private_mappings() {
    with_env(|env| {
        let file = CachedFile::new(4);
        let id = file.mapping_id().unwrap();
        let mut mm = env.mm();
        mmap_file(&mut mm, file, X, 4, MAP_SHARED, 0);
        mmap_file(&mut mm, file, Y, 3, MAP_PRIVATE, 1);
        for i in 0..4 {
            assert_eq!(read(env, &mut mm, X + i * P), Ok(byte_of(i)));
        }
        for i in 0..3 {
            assert_eq!(read(env, &mut mm, Y + i * P), Ok(byte_of(i + 1)));
        }
        // A private copy of file page 3 (at Y + 2 pages).
        write(env, &mut mm, Y + 2 * P, 0x77).unwrap();
        let copy = pfn_at(&mm, Y + 2 * P).unwrap();
        assert_ne!(Some(copy), file.cached(3));
        let (anon, files) = (mm.counter(MmCounter::AnonPages), mm.counter(MmCounter::FilePages));
        mm.unmap_mapping_pages(id, 2);
        assert!(pfn_at(&mm, X).is_some() && pfn_at(&mm, X + P).is_some(), "pages before 2 stay");
        assert!(pfn_at(&mm, X + 2 * P).is_none() && pfn_at(&mm, X + 3 * P).is_none(), "2 and 3 go");
        assert!(pfn_at(&mm, Y).is_some(), "the private mapping's page 1 stays");
        assert!(pfn_at(&mm, Y + P).is_none(), "its page 2 goes");
        assert!(pfn_at(&mm, Y + 2 * P).is_none(), "and the private copy of page 3 too");
        assert_eq!(mm.counter(MmCounter::AnonPages), anon - 1);
        assert_eq!(mm.counter(MmCounter::FilePages), files - 3);
        for i in 2..4 {
            assert_eq!(counts(env, file.cached(i).unwrap()), (1, 0), "page {i}: only the cache holds it");
        }
        assert_eq!(read(env, &mut mm, X + 3 * P), Ok(byte_of(3)), "a new touch faults it in again");
        teardown(mm);
        file.truncate(env.pgdat);
    });
}
