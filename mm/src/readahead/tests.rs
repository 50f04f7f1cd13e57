//! Host tests of the readahead policy: each rule against values worked
//! out by hand from Linux 6.1's code, then readers and faulting programs
//! simulated over a model page cache, and proptests for the bounds.
//!
//! The model cache is a set of cached page indices and the set of those
//! marked `PG_readahead`. [`File::read`] is Linux 6.1.y's `filemap_read`
//! and `filemap_get_pages` for order-0 pages (batches of at most 15 pages
//! ending before `last_index` and after the first marked page; sync
//! readahead on a miss, async readahead on a marked last page, the page
//! alone when readahead left it out; `prev_pos` after every page copied),
//! and [`File::fault`] is the readahead part of `filemap_fault` without
//! fault-around. Every request is checked against the file's size and
//! applied as `page_cache_ra_unbounded` would: pages already cached are
//! skipped, and the mark is set only on a page the request added.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

const P: u64 = PAGE_SIZE;
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// A page cache: which indices hold a page, and which of those are marked
/// `PG_readahead`.
#[derive(Default)]
struct Cache {
    pages: BTreeSet<u64>,
    marks: BTreeSet<u64>,
}

impl Cache {
    /// A cache holding `pages`, none marked.
    fn with(pages: impl IntoIterator<Item = u64>) -> Self {
        Cache { pages: pages.into_iter().collect(), marks: BTreeSet::new() }
    }
}

impl RaCache for Cache {
    fn next_miss(&self, index: u64, max_scan: u64) -> Option<u64> {
        let last = index.saturating_add(max_scan - 1);
        let mut want = index;
        for &page in self.pages.range(index..=last) {
            if page != want {
                return Some(want);
            }
            want = page.checked_add(1)?;
        }
        (want <= last).then_some(want)
    }

    fn prev_miss(&self, index: u64, max_scan: u64) -> Option<u64> {
        let first = index.saturating_sub(max_scan - 1);
        let mut want = index;
        for &page in self.pages.range(first..=index).rev() {
            if page != want {
                return Some(want);
            }
            want = page.checked_sub(1)?;
        }
        (want >= first).then_some(want)
    }
}

/// A file of `nr_pages` pages over `cache` on a default device.
fn mapping(cache: &Cache, nr_pages: u64) -> RaMapping<'_, Cache> {
    RaMapping { cache, nr_pages, bdi: RaLimits::default() }
}

fn win(start: u64, size: u64, async_size: u64) -> RaWindow {
    RaWindow { start, size, async_size }
}

fn req(start: u64, nr: u64, mark: Option<u64>) -> RaRequest {
    RaRequest { start, nr, mark }
}

/// The requests of a decision.
fn requests(readahead: &Readahead) -> Vec<RaRequest> {
    readahead.requests.clone().collect()
}

/// The decision's rule and window, which must exist.
#[track_caller]
fn decided(readahead: &Readahead) -> (RaKind, RaWindow) {
    let event = readahead.event.expect("a readahead decision");
    (event.kind, event.window)
}

/// An event in short: rule, marker hit, trigger index and window
/// (start, size, async_size).
type Decision = (RaKind, bool, u64, (u64, u64, u64));

/// A state whose window and previous read are far from the pages a test
/// uses, so that only the rule under test can fire.
fn unrelated_state() -> FileRaState {
    FileRaState { start: 50_000, size: 32, async_size: 32, prev_pos: Some(60_000 * P), ..FileRaState::default() }
}

/// Linux 6.1's folio batch holds 15 folios (`PAGEVEC_SIZE`).
const FOLIO_BATCH: usize = 15;

/// One open file read and faulted through the models of Linux's
/// `filemap_read` and `filemap_fault`, recording every decision.
struct File {
    ra: FileRaState,
    bdi: RaLimits,
    cache: Cache,
    i_size: u64,
    /// Every decision, in order.
    events: Vec<RaEvent>,
    /// Every request, in order.
    requests: Vec<RaRequest>,
    /// Pages read alone because readahead did not bring them in
    /// (`filemap_create_folio`, or a fault's own read).
    single_reads: Vec<u64>,
    major_faults: u64,
}

impl File {
    fn new(i_size: u64) -> Self {
        File::with_bdi(i_size, RaLimits::default())
    }

    fn with_bdi(i_size: u64, bdi: RaLimits) -> Self {
        File {
            ra: FileRaState::new(bdi),
            bdi,
            cache: Cache::default(),
            i_size,
            events: Vec::new(),
            requests: Vec::new(),
            single_reads: Vec::new(),
            major_faults: 0,
        }
    }

    fn nr_pages(&self) -> u64 {
        self.i_size.div_ceil(P)
    }

    /// Records `readahead`'s decision and reads its pages, checking each
    /// request against the file.
    #[track_caller]
    fn submit(&mut self, readahead: Readahead) {
        self.events.extend(readahead.event);
        let nr_pages = self.nr_pages();
        for request in readahead.requests {
            assert!(request.nr > 0, "empty request {request:?}");
            let end = request.start.checked_add(request.nr).expect("request end overflows");
            assert!(end <= nr_pages, "request {request:?} past the file's {nr_pages} pages");
            if let Some(mark) = request.mark {
                assert!((request.start..end).contains(&mark), "mark outside {request:?}");
            }
            for index in request.start..end {
                if self.cache.pages.insert(index) && request.mark == Some(index) {
                    self.cache.marks.insert(index);
                }
            }
            self.requests.push(request);
        }
        assert!(self.ra.async_size <= self.ra.size, "async part larger than the window: {:?}", self.ra);
    }

    /// The cached pages from `index` to `max` that one
    /// `filemap_get_read_batch` returns.
    fn read_batch(&self, index: u64, max: u64) -> Vec<u64> {
        let mut batch = Vec::new();
        let mut next = Some(index);
        while let Some(i) = next
            && i <= max
            && batch.len() < FOLIO_BATCH
            && self.cache.pages.contains(&i)
        {
            batch.push(i);
            if self.cache.marks.contains(&i) {
                break;
            }
            next = i.checked_add(1);
        }
        batch
    }

    /// `read(2)` of `count` bytes at `pos` (Linux `filemap_read`).
    fn read(&mut self, pos: u64, count: u64) {
        let (mut pos, mut left) = (pos, count);
        while left > 0 && pos < self.i_size {
            // Linux filemap_get_pages.
            let index = pos / P;
            let last_index = pos.saturating_add(left).div_ceil(P);
            let mut batch = self.read_batch(index, last_index - 1);
            if batch.is_empty() {
                let m = RaMapping { cache: &self.cache, nr_pages: self.nr_pages(), bdi: self.bdi };
                let readahead = page_cache_sync_ra(&mut self.ra, &m, index, last_index - index);
                self.submit(readahead);
                batch = self.read_batch(index, last_index - 1);
            }
            if batch.is_empty() {
                self.cache.pages.insert(index);
                self.single_reads.push(index);
                batch.push(index);
            }
            let last = batch[batch.len() - 1];
            if self.cache.marks.contains(&last) {
                let m = RaMapping { cache: &self.cache, nr_pages: self.nr_pages(), bdi: self.bdi };
                let readahead = page_cache_async_ra(&mut self.ra, &m, last, last_index - last, false);
                if readahead.clear_readahead {
                    self.cache.marks.remove(&last);
                }
                self.submit(readahead);
            }
            // The copy to the user.
            let end_offset = self.i_size.min(pos.saturating_add(left));
            for page in batch {
                if end_offset < page * P {
                    break;
                }
                let bytes = (end_offset - pos).min(P - pos % P);
                pos += bytes;
                left -= bytes;
                self.ra.prev_pos = Some(pos);
            }
        }
    }

    /// Reads the whole file `chunk` bytes at a time from the start.
    fn read_all(&mut self, chunk: u64) {
        let mut pos = 0;
        while pos < self.i_size {
            self.read(pos, chunk);
            pos += chunk;
        }
    }

    /// A read fault at page `index` of a VMA with `advice` (the readahead
    /// part of Linux `filemap_fault`, first try).
    fn fault(&mut self, index: u64, advice: VmaRaAdvice) {
        let m = RaMapping { cache: &self.cache, nr_pages: self.nr_pages(), bdi: self.bdi };
        if self.cache.pages.contains(&index) {
            let marked = self.cache.marks.contains(&index);
            let readahead = do_async_mmap_readahead(&mut self.ra, &m, advice, index, marked, false);
            if readahead.clear_readahead {
                self.cache.marks.remove(&index);
            }
            self.submit(readahead);
        } else {
            self.major_faults += 1;
            let readahead = do_sync_mmap_readahead(&mut self.ra, &m, advice, index);
            self.submit(readahead);
            if self.cache.pages.insert(index) {
                self.single_reads.push(index);
            }
        }
    }

    /// The windows decided, in order.
    fn windows(&self) -> Vec<(u64, u64, u64)> {
        self.events.iter().map(|e| (e.window.start, e.window.size, e.window.async_size)).collect()
    }

    /// The rules that decided, in order.
    fn kinds(&self) -> Vec<RaKind> {
        self.events.iter().map(|e| e.kind).collect()
    }

    /// Pages read in total, by readahead and alone.
    fn pages_read(&self) -> usize {
        self.cache.pages.len()
    }
}

// ---- Sizing rules ----

#[test]
fn new_file_state_has_linux_defaults() {
    assert_eq!(VM_READAHEAD_PAGES, 32);
    assert_eq!(RaLimits::default(), RaLimits { ra_pages: 32, io_pages: 32 });
    let ra = FileRaState::default();
    assert_eq!(ra.window(), win(0, 0, 0));
    assert_eq!((ra.ra_pages, ra.mmap_miss, ra.prev_pos, ra.random), (32, 0, None, false));
    let ra = FileRaState::new(RaLimits { ra_pages: 512, io_pages: 64 });
    assert_eq!(ra.ra_pages, 512);
}

#[test]
fn init_ra_size_follows_the_linux_table() {
    // Linux's comment, for max = 32: "1-2 page = 16k, 3-4 page 32k, 5-8
    // page = 64k, > 8 page = 128k initial". roundup_pow_of_two(n) <= 1
    // (= 32/32) gives x4, <= 8 (= 32/4) gives x2, else max.
    let max32: Vec<u64> = [1, 2, 3, 4, 5, 8, 9, 16, 32, 100].iter().map(|&n| get_init_ra_size(n, 32)).collect();
    assert_eq!(max32, [4, 4, 8, 8, 16, 16, 32, 32, 32, 32]);
    // POSIX_FADV_SEQUENTIAL's 64: x4 up to 2 pages, x2 up to 16.
    let max64: Vec<u64> = [1, 2, 3, 16, 17].iter().map(|&n| get_init_ra_size(n, 64)).collect();
    assert_eq!(max64, [4, 8, 8, 32, 64]);
    // No power of two above 2^63: the window is max. A size of 0 is 1.
    assert_eq!(get_init_ra_size(u64::MAX, 32), 32);
    assert_eq!(get_init_ra_size(u64::MAX, u64::MAX), u64::MAX);
    assert_eq!(get_init_ra_size(0, 32), 4);
}

#[test]
fn next_ra_size_quadruples_doubles_then_caps() {
    // cur < 32/16 = 2: x4; cur <= 16: x2; else 32.
    let next: Vec<u64> = [1, 2, 4, 8, 16, 17, 32].iter().map(|&n| get_next_ra_size(n, 32)).collect();
    assert_eq!(next, [4, 4, 8, 16, 32, 32, 32]);
    assert_eq!(get_next_ra_size(u64::MAX / 2, u64::MAX), u64::MAX - 1);
    assert_eq!(get_next_ra_size(u64::MAX, u64::MAX), u64::MAX);
}

#[test]
fn cache_answers_become_linux_6_1_miss_indices() {
    let cache = Cache::with(10..=20);
    // A gap inside the range is returned as is.
    assert_eq!(page_cache_next_miss(&cache, 15, 32), 21);
    assert_eq!(page_cache_prev_miss(&cache, 15, 32), 9);
    // No gap: the last index looked at, one inside the range.
    assert_eq!(page_cache_next_miss(&cache, 10, 5), 14);
    assert_eq!(page_cache_prev_miss(&cache, 20, 5), 16);
    // No gap and the scan runs off either end of the index space.
    let ends = Cache::with((0..=3).chain(u64::MAX - 3..=u64::MAX));
    assert_eq!(page_cache_next_miss(&ends, u64::MAX - 3, 8), 0);
    assert_eq!(page_cache_prev_miss(&ends, 3, 8), u64::MAX);
    // Exactly down to page 0 is not past it.
    assert_eq!(page_cache_prev_miss(&ends, 3, 4), 0);
    // A scan of nothing returns where it started.
    assert_eq!(page_cache_next_miss(&cache, 7, 0), 7);
    assert_eq!(page_cache_prev_miss(&cache, 7, 0), 7);
}

// ---- The on-demand rules ----

#[test]
fn first_read_at_page_zero_sets_an_initial_window() {
    let cache = Cache::default();
    let m = mapping(&cache, 1 << 20);
    // get_init_ra_size(1, 32) = 4; async = 4 - 1 = 3; marked page 0 + 4 - 3.
    let mut ra = FileRaState::default();
    let r = page_cache_sync_ra(&mut ra, &m, 0, 1);
    assert_eq!(decided(&r), (RaKind::StartOfFile, win(0, 4, 3)));
    assert_eq!(requests(&r), [req(0, 4, Some(1))]);
    assert!(!r.clear_readahead);
    // 16 pages: get_init_ra_size(16, 32) = 32, async 16.
    let mut ra = FileRaState::default();
    let r = page_cache_sync_ra(&mut ra, &m, 0, 16);
    assert_eq!(decided(&r), (RaKind::StartOfFile, win(0, 32, 16)));
    assert_eq!(requests(&r), [req(0, 32, Some(16))]);
    // 32 pages: window 32 with nothing beyond the request, so all of it
    // async; it starts at the read, so the next window (32) is merged in,
    // which exceeds 32: window 32, half async.
    let mut ra = FileRaState::default();
    let r = page_cache_sync_ra(&mut ra, &m, 0, 32);
    assert_eq!(decided(&r), (RaKind::StartOfFile, win(0, 32, 16)));
    // Even the previous position does not matter at page 0.
    let mut ra = unrelated_state();
    let r = page_cache_sync_ra(&mut ra, &m, 0, 2);
    assert_eq!(decided(&r), (RaKind::StartOfFile, win(0, 4, 2)));
}

#[test]
fn self_marker_merge_fits_under_max() {
    let cache = Cache::default();
    let m = RaMapping { cache: &cache, nr_pages: 1 << 20, bdi: RaLimits { ra_pages: 128, io_pages: 32 } };
    // max 128: x4 up to 4 pages, x2 up to 32. 8 pages: 16, async 16 - 8:
    // not all async, no merge.
    let mut ra = FileRaState::new(m.bdi);
    assert_eq!(decided(&page_cache_sync_ra(&mut ra, &m, 0, 8)), (RaKind::StartOfFile, win(0, 16, 8)));
    // 16 pages: 32, async 16. 32 pages: 64, async 32. 128 pages: 128 =
    // max, all async: merge get_next_ra_size(128, 128) = 128, 256 > 128,
    // so the window is 128 with 64 async.
    for (req_size, window) in [(16, win(0, 32, 16)), (32, win(0, 64, 32)), (128, win(0, 128, 64))] {
        let mut ra = FileRaState::new(m.bdi);
        assert_eq!(decided(&page_cache_sync_ra(&mut ra, &m, 0, req_size)).1, window, "req {req_size}");
    }
    // A merge that fits: window (4, 8, 8) missed at 12 = start + size ->
    // (12, get_next_ra_size(8, 128) = 16, 16), which starts at the read
    // and is all async: merge get_next_ra_size(16, 128) = 32, 48 <= 128
    // -> (12, 48, 32).
    let mut ra = FileRaState { start: 4, size: 8, async_size: 8, ..FileRaState::new(m.bdi) };
    let r = page_cache_sync_ra(&mut ra, &m, 12, 1);
    assert_eq!(decided(&r), (RaKind::Sequential, win(12, 48, 32)));
    assert_eq!(requests(&r), [req(12, 48, Some(28))]);
}

#[test]
fn miss_at_the_expected_index_ramps_the_window() {
    let cache = Cache::default();
    let m = mapping(&cache, 1 << 20);
    // Window (4, 8, 8): the marked page is 4 + 8 - 8 = 4, the next 12. A
    // miss at 12 (max 32): start 12, get_next_ra_size(8) = 16, all async;
    // it starts at the read, so merge get_next(16) = 32: 48 > 32 ->
    // (12, 32, 16).
    let mut ra = FileRaState { start: 4, size: 8, async_size: 8, ..FileRaState::default() };
    let r = page_cache_sync_ra(&mut ra, &m, 12, 1);
    assert_eq!(decided(&r), (RaKind::Sequential, win(12, 32, 16)));
    // A miss at the marked page itself moves the window past it: start
    // 12, size 16, async 16 (no merge: the read at 4 is not the start).
    let mut ra = FileRaState { start: 4, size: 8, async_size: 8, ..FileRaState::default() };
    let r = page_cache_sync_ra(&mut ra, &m, 4, 1);
    assert_eq!(decided(&r), (RaKind::Sequential, win(12, 16, 16)));
    assert_eq!(requests(&r), [req(12, 16, Some(12))]);
}

#[test]
fn marker_hit_sizes_the_window_from_the_pages_cached_after_it() {
    // Pages 4..=11 cached, the state someone else's: the pages after 4
    // up to the first miss (12) are taken for the old async part, 8;
    // plus the request, 9; get_next_ra_size(9, 32) = 18, all async.
    let cache = Cache::with(4..=11);
    let m = mapping(&cache, 1 << 20);
    let mut ra = unrelated_state();
    let r = page_cache_async_ra(&mut ra, &m, 4, 1, false);
    assert!(r.clear_readahead);
    let event = r.event.unwrap();
    assert!(event.marker);
    assert_eq!((event.kind, event.index, event.window), (RaKind::Marker, 4, win(12, 18, 18)));
    assert_eq!(requests(&r), [req(12, 18, Some(12))]);
    // As a miss, with nothing cached before it, the same index is a
    // random read.
    let mut ra = unrelated_state();
    assert_eq!(decided(&page_cache_sync_ra(&mut ra, &m, 4, 1)).0, RaKind::Random);
}

#[test]
fn marker_hit_on_a_fully_cached_range_reads_from_its_last_page() {
    // 6.1's page_cache_next_miss(101, 32) over cached 101..=132 returns
    // 132, the last index it looked at: 132 - 100 = 32 <= 32, so the
    // window is (132, get_next_ra_size(32 + 1) = 32, 32), from a cached
    // page (which the caller does not mark).
    let cache = Cache::with(100..=140);
    let m = mapping(&cache, 1 << 20);
    let mut ra = unrelated_state();
    let r = page_cache_async_ra(&mut ra, &m, 100, 1, false);
    assert_eq!(decided(&r), (RaKind::Marker, win(132, 32, 32)));
    assert_eq!(requests(&r), [req(132, 32, Some(132))]);
}

#[test]
fn marker_hit_at_the_last_index_reads_nothing() {
    // index + 1 wraps to 0, which Linux reads as "no gap".
    let cache = Cache::with([u64::MAX]);
    let m = mapping(&cache, u64::MAX);
    let mut ra = unrelated_state();
    let r = page_cache_async_ra(&mut ra, &m, u64::MAX, 1, false);
    assert_eq!(r.event, None);
    assert_eq!(requests(&r), []);
    assert!(r.clear_readahead, "the mark is cleared before the decision");
    assert_eq!(ra, unrelated_state());
}

#[test]
fn marker_under_writeback_or_with_readahead_off_is_left_alone() {
    let cache = Cache::with(0..64);
    let m = mapping(&cache, 1 << 20);
    let mut ra = FileRaState { start: 0, size: 4, async_size: 3, ..FileRaState::default() };
    let before = ra;
    let r = page_cache_async_ra(&mut ra, &m, 1, 1, true);
    assert_eq!((r.event, r.clear_readahead, ra), (None, false, before));
    ra.ra_pages = 0;
    let before = ra;
    let r = page_cache_async_ra(&mut ra, &m, 1, 1, false);
    assert_eq!((r.event, r.clear_readahead, ra), (None, false, before));
}

#[test]
fn async_readahead_ignores_fadvise_random() {
    // page_cache_async_ra has no FMODE_RANDOM check: the expected marker
    // (0 + 4 - 3 = 1) ramps the window to (4, 8, 8) as usual.
    let cache = Cache::with(0..4);
    let m = mapping(&cache, 1 << 20);
    let mut ra = FileRaState { start: 0, size: 4, async_size: 3, random: true, ..FileRaState::default() };
    let r = page_cache_async_ra(&mut ra, &m, 1, 1, false);
    assert_eq!(decided(&r), (RaKind::Sequential, win(4, 8, 8)));
}

#[test]
fn oversize_read_gets_an_initial_window_up_to_the_io_size() {
    let cache = Cache::default();
    // io_pages 32: max stays 32. get_init_ra_size(64, 32) = 32, not more
    // than the request, so all async; it starts at the read: merge 32,
    // 64 > 32 -> (500, 32, 16).
    let m = mapping(&cache, 1 << 20);
    let mut ra = unrelated_state();
    let r = page_cache_sync_ra(&mut ra, &m, 500, 64);
    assert_eq!(decided(&r), (RaKind::Oversize, win(500, 32, 16)));
    // io_pages 48: max = min(64, 48) = 48, still below the request.
    // get_init_ra_size(64, 48) = 48, all async; merge
    // get_next_ra_size(48, 48) = 48, 96 > 48 -> (500, 48, 24).
    let m = RaMapping { cache: &cache, nr_pages: 1 << 20, bdi: RaLimits { ra_pages: 32, io_pages: 48 } };
    let mut ra = unrelated_state();
    let r = page_cache_sync_ra(&mut ra, &m, 500, 64);
    assert_eq!(decided(&r), (RaKind::Oversize, win(500, 48, 24)));
    assert_eq!(requests(&r), [req(500, 48, Some(524))]);
    // io_pages 128: max = min(64, 128) = 64, the request is not larger, and
    // with no pattern it is a random read of the 64 pages.
    let m = RaMapping { cache: &cache, nr_pages: 1 << 20, bdi: RaLimits { ra_pages: 32, io_pages: 128 } };
    let mut ra = unrelated_state();
    let r = page_cache_sync_ra(&mut ra, &m, 500, 64);
    assert_eq!(decided(&r), (RaKind::Random, win(500, 64, 0)));
}

#[test]
fn miss_at_or_after_the_previous_read_is_sequential() {
    let cache = Cache::default();
    let m = mapping(&cache, 1 << 20);
    // prev_pos in page 10 (the last read ended inside it).
    let prev = FileRaState { prev_pos: Some(10 * P + 100), ..unrelated_state() };
    for index in [10, 11] {
        let mut ra = prev;
        let r = page_cache_sync_ra(&mut ra, &m, index, 1);
        assert_eq!(decided(&r), (RaKind::SequentialMiss, win(index, 4, 3)), "index {index}");
    }
    // Two pages on, or one before, is no pattern.
    for index in [12, 9] {
        let mut ra = prev;
        let r = page_cache_sync_ra(&mut ra, &m, index, 1);
        assert_eq!(decided(&r), (RaKind::Random, win(index, 1, 0)), "index {index}");
        assert_eq!(ra, prev, "a random read leaves the state alone");
    }
}

#[test]
fn cached_history_triggers_context_readahead() {
    // Pages 90..=99 cached: history 10 > 1 page asked; 10 < 100, not from
    // the start: window (100, min(10 + 1, 32) = 11, 1), marked 110.
    let cache = Cache::with(90..=99);
    let m = mapping(&cache, 1 << 20);
    let mut ra = unrelated_state();
    let r = page_cache_sync_ra(&mut ra, &m, 100, 1);
    assert_eq!(decided(&r), (RaKind::Context, win(100, 11, 1)));
    assert_eq!(requests(&r), [req(100, 11, Some(110))]);

    // Pages 0..=9 cached, a miss at 10: the scan of 32 runs below page 0,
    // so 6.1's page_cache_prev_miss returns ULONG_MAX and the history is
    // 9 - ULONG_MAX = 10 (mod 2^64) >= 10: doubled to 20, window
    // (10, min(21, 32), 1).
    let cache = Cache::with(0..=9);
    let m = mapping(&cache, 1 << 20);
    let mut ra = unrelated_state();
    assert_eq!(decided(&page_cache_sync_ra(&mut ra, &m, 10, 1)), (RaKind::Context, win(10, 21, 1)));

    // 200 pages cached before the miss: the scan finds no gap in 32 and
    // 6.1 returns 199 - 31 = 168, a history of 31: window (200, 32, 1).
    let cache = Cache::with(0..=199);
    let m = mapping(&cache, 1 << 20);
    let mut ra = unrelated_state();
    assert_eq!(decided(&page_cache_sync_ra(&mut ra, &m, 200, 1)), (RaKind::Context, win(200, 32, 1)));

    // A history no longer than the request is a random read.
    let cache = Cache::with(98..=99);
    let m = mapping(&cache, 1 << 20);
    let mut ra = unrelated_state();
    assert_eq!(decided(&page_cache_sync_ra(&mut ra, &m, 100, 2)), (RaKind::Random, win(100, 2, 0)));
}

#[test]
fn random_read_reads_only_the_asked_pages() {
    let cache = Cache::default();
    let m = mapping(&cache, 1 << 20);
    let mut ra = FileRaState { prev_pos: Some(77 * P), ..FileRaState::default() };
    let before = ra;
    let r = page_cache_sync_ra(&mut ra, &m, 5000, 3);
    let event = r.event.unwrap();
    assert_eq!((event.kind, event.marker, event.index, event.req_size), (RaKind::Random, false, 5000, 3));
    assert_eq!(requests(&r), [req(5000, 3, None)]);
    assert_eq!(ra, before);
}

#[test]
fn fadvise_random_reads_only_the_asked_pages() {
    let cache = Cache::default();
    let m = mapping(&cache, 1 << 20);
    let mut ra = FileRaState { random: true, ..FileRaState::default() };
    let before = ra;
    // Even at page 0: force_page_cache_ra(4).
    let r = page_cache_sync_ra(&mut ra, &m, 0, 4);
    assert_eq!(decided(&r), (RaKind::Forced, win(0, 4, 0)));
    assert_eq!(requests(&r), [req(0, 4, None)]);
    // Capped at max(io_pages, ra_pages) = 32.
    let r = page_cache_sync_ra(&mut ra, &m, 100, 1000);
    assert_eq!(requests(&r), [req(100, 32, None)]);
    let m = RaMapping { cache: &cache, nr_pages: 1 << 20, bdi: RaLimits { ra_pages: 32, io_pages: 256 } };
    let r = page_cache_sync_ra(&mut ra, &m, 100, 1000);
    assert_eq!(requests(&r), [req(100, 256, None)]);
    assert_eq!(ra, before);
}

#[test]
fn readahead_off_reads_the_one_missing_page() {
    let cache = Cache::default();
    let m = mapping(&cache, 1 << 20);
    let mut ra = FileRaState { ra_pages: 0, ..FileRaState::default() };
    let r = page_cache_sync_ra(&mut ra, &m, 7, 10);
    assert_eq!(decided(&r), (RaKind::Forced, win(7, 1, 0)));
    assert_eq!(requests(&r), [req(7, 1, None)]);
}

#[test]
fn requests_stop_at_the_end_of_the_file() {
    // The window is clamped, the async part is not: the mark moves.
    assert_eq!(do_page_cache_ra(8, 8, 8, 10), Some(req(8, 2, None)));
    assert_eq!(do_page_cache_ra(0, 32, 16, 20), Some(req(0, 20, Some(4))));
    assert_eq!(do_page_cache_ra(0, 4, 4, 10), Some(req(0, 4, Some(0))));
    assert_eq!(do_page_cache_ra(0, 4, 0, 10), Some(req(0, 4, None)));
    assert_eq!(do_page_cache_ra(9, 4, 3, 10), Some(req(9, 1, None)));
    assert_eq!(do_page_cache_ra(10, 1, 0, 10), None);
    assert_eq!(do_page_cache_ra(0, 1, 0, 0), None, "empty file");
    assert_eq!(do_page_cache_ra(3, 0, 0, 10), None);
    assert_eq!(do_page_cache_ra(u64::MAX - 1, u64::MAX, 1, u64::MAX), Some(req(u64::MAX - 1, 1, Some(u64::MAX - 1))));
    // Through the entry point: a miss at page 0 of a 2-page file.
    let cache = Cache::default();
    let m = mapping(&cache, 2);
    let mut ra = FileRaState::default();
    let r = page_cache_sync_ra(&mut ra, &m, 0, 1);
    assert_eq!(decided(&r).1, win(0, 4, 3), "the window is Linux's");
    assert_eq!(requests(&r), [req(0, 2, None)], "the request is clamped");
}

// ---- Forced readahead and advice ----

#[test]
fn forced_readahead_comes_in_2mib_chunks() {
    let cache = Cache::default();
    let bdi = RaLimits { ra_pages: 2048, io_pages: 32 };
    let ra = FileRaState::new(bdi);
    // 8 MiB asked, capped at max(32, 2048) = 2048 pages: four chunks of
    // 512.
    let m = RaMapping { cache: &cache, nr_pages: 1 << 20, bdi };
    let r = fadvise_willneed(&ra, &m, 0, 8 * MIB);
    assert_eq!(requests(&r), [req(0, 512, None), req(512, 512, None), req(1024, 512, None), req(1536, 512, None)]);
    // A 700-page file: the second chunk is clamped, the others past EOF.
    let m = RaMapping { cache: &cache, nr_pages: 700, bdi };
    let r = fadvise_willneed(&ra, &m, 0, 8 * MIB);
    assert_eq!(requests(&r), [req(0, 512, None), req(512, 188, None)]);
    assert_eq!(decided(&r), (RaKind::Forced, win(0, 2048, 0)));
}

#[test]
fn willneed_is_capped_at_the_larger_of_window_and_io_size() {
    let cache = Cache::default();
    let m = mapping(&cache, 1 << 20);
    let ra = FileRaState::default();
    let r = fadvise_willneed(&ra, &m, 0, MIB);
    assert_eq!(requests(&r), [req(0, 32, None)]);
    // Readahead off does not stop it.
    let ra = FileRaState { ra_pages: 0, ..FileRaState::default() };
    assert_eq!(requests(&fadvise_willneed(&ra, &m, 0, MIB)), [req(0, 32, None)]);
}

#[test]
fn willneed_ranges_follow_fadvise_arithmetic() {
    let cache = Cache::default();
    let m = mapping(&cache, 1 << 20);
    let ra = FileRaState::default();
    let pages = |offset: u64, len: u64| requests(&fadvise_willneed(&ra, &m, offset, len));
    // Bytes 4096..=12287: pages 1 and 2.
    assert_eq!(pages(P, 2 * P), [req(1, 2, None)]);
    // Bytes 4097..=12288: pages 1 to 3, the first and last partial.
    assert_eq!(pages(P + 1, 2 * P), [req(1, 3, None)]);
    // Length 0: to LLONG_MAX, capped at 32 pages.
    assert_eq!(pages(3 * P + 5, 0), [req(3, 32, None)]);
    // A range past LLONG_MAX, or wrapping: also to LLONG_MAX.
    assert_eq!(pages(5 * P, u64::MAX - 2 * P), [req(5, 32, None)]);
    assert_eq!(pages(5 * P, LLONG_MAX), [req(5, 32, None)]);
    // An offset past LLONG_MAX (a negative loff_t): nothing, no overflow.
    assert_eq!(pages(u64::MAX - 5, 100), []);
    assert_eq!(pages(LLONG_MAX + 1, 0), []);
}

#[test]
fn fadvise_modes_set_the_window_and_random() {
    let bdi = RaLimits { ra_pages: 48, io_pages: 32 };
    let mut ra = FileRaState::new(bdi);
    fadvise(&mut ra, bdi, FadviseAdvice::Random);
    assert_eq!((ra.ra_pages, ra.random), (48, true));
    // SEQUENTIAL doubles the device's window, not the current one, and
    // clears RANDOM.
    fadvise(&mut ra, bdi, FadviseAdvice::Sequential);
    fadvise(&mut ra, bdi, FadviseAdvice::Sequential);
    assert_eq!((ra.ra_pages, ra.random), (96, false));
    fadvise(&mut ra, bdi, FadviseAdvice::Random);
    fadvise(&mut ra, bdi, FadviseAdvice::Normal);
    assert_eq!((ra.ra_pages, ra.random), (48, false));
    fadvise(&mut ra, RaLimits { ra_pages: u64::MAX, io_pages: 0 }, FadviseAdvice::Sequential);
    assert_eq!(ra.ra_pages, u64::MAX);
}

// ---- mmap faults ----

#[test]
fn madv_random_faults_do_no_readahead() {
    let cache = Cache::with([9]);
    let m = mapping(&cache, 1 << 20);
    let mut ra = FileRaState { mmap_miss: 7, ..FileRaState::default() };
    let before = ra;
    assert_eq!(do_sync_mmap_readahead(&mut ra, &m, VmaRaAdvice::Random, 5), Readahead::NONE);
    assert_eq!(do_async_mmap_readahead(&mut ra, &m, VmaRaAdvice::Random, 9, true, false), Readahead::NONE);
    assert_eq!(ra, before, "not even mmap_miss changes");
    // Readahead off: the same.
    let mut ra = FileRaState { ra_pages: 0, mmap_miss: 7, ..FileRaState::default() };
    let before = ra;
    assert_eq!(do_sync_mmap_readahead(&mut ra, &m, VmaRaAdvice::Normal, 5), Readahead::NONE);
    assert_eq!(do_async_mmap_readahead(&mut ra, &m, VmaRaAdvice::Normal, 9, true, false), Readahead::NONE);
    assert_eq!(ra, before);
}

#[test]
fn madv_sequential_fault_is_a_sync_read_of_ra_pages() {
    let cache = Cache::default();
    let m = mapping(&cache, 1 << 20);
    // At page 0: page_cache_sync_ra(32): get_init_ra_size(32, 32) = 32,
    // all async, merged: (0, 32, 16).
    let mut ra = FileRaState::default();
    let r = do_sync_mmap_readahead(&mut ra, &m, VmaRaAdvice::Sequential, 0);
    assert_eq!(decided(&r), (RaKind::StartOfFile, win(0, 32, 16)));
    assert_eq!(ra.mmap_miss, 0, "no miss counted");
    // Mid-file, with nothing cached before and no read position (faults
    // leave prev_pos alone): a random read of 32 pages, no window.
    let mut ra = FileRaState::default();
    let r = do_sync_mmap_readahead(&mut ra, &m, VmaRaAdvice::Sequential, 100);
    assert_eq!(decided(&r), (RaKind::Random, win(100, 32, 0)));
    assert_eq!(requests(&r), [req(100, 32, None)]);
}

#[test]
fn read_around_is_centred_on_the_fault() {
    let cache = Cache::default();
    let m = mapping(&cache, 1 << 20);
    // start = 1000 - 32/2, size 32, async 32/4 = 8: marked 984 + 24.
    let mut ra = FileRaState::default();
    let r = do_sync_mmap_readahead(&mut ra, &m, VmaRaAdvice::Normal, 1000);
    assert_eq!(decided(&r), (RaKind::ReadAround, win(984, 32, 8)));
    assert_eq!(requests(&r), [req(984, 32, Some(1008))]);
    assert_eq!(ra.mmap_miss, 1);
    // Near the start it begins at page 0.
    let r = do_sync_mmap_readahead(&mut ra, &m, VmaRaAdvice::Normal, 5);
    assert_eq!(decided(&r), (RaKind::ReadAround, win(0, 32, 8)));
    assert_eq!(ra.mmap_miss, 2);
    // Near the end it is clamped, and the mark stays 8 pages from the
    // clamped end: 21 pages from 979, marked 992; 17 from 983, marked 992.
    let m = mapping(&cache, 1000);
    let r = do_sync_mmap_readahead(&mut ra, &m, VmaRaAdvice::Normal, 995);
    assert_eq!(requests(&r), [req(979, 21, Some(992))]);
    let r = do_sync_mmap_readahead(&mut ra, &m, VmaRaAdvice::Normal, 999);
    assert_eq!(requests(&r), [req(983, 17, Some(992))]);
}

#[test]
fn mmap_miss_stops_read_around_past_mmap_lotsamiss() {
    let cache = Cache::default();
    let m = mapping(&cache, 1 << 20);
    // The 100th miss still reads around; the 101st does not.
    let mut ra = FileRaState { mmap_miss: 99, ..FileRaState::default() };
    assert!(do_sync_mmap_readahead(&mut ra, &m, VmaRaAdvice::Normal, 500).event.is_some());
    assert_eq!(ra.mmap_miss, 100);
    let before = ra.window();
    assert_eq!(do_sync_mmap_readahead(&mut ra, &m, VmaRaAdvice::Normal, 900), Readahead::NONE);
    assert_eq!((ra.mmap_miss, ra.window()), (101, before));
    // The count stops at 10 * MMAP_LOTSAMISS.
    let mut ra = FileRaState { mmap_miss: 999, ..FileRaState::default() };
    do_sync_mmap_readahead(&mut ra, &m, VmaRaAdvice::Normal, 500);
    do_sync_mmap_readahead(&mut ra, &m, VmaRaAdvice::Normal, 500);
    assert_eq!(ra.mmap_miss, 1000);
    // MADV_SEQUENTIAL does not count misses.
    do_sync_mmap_readahead(&mut ra, &m, VmaRaAdvice::Sequential, 500);
    assert_eq!(ra.mmap_miss, 1000);
}

#[test]
fn minor_fault_counts_a_hit_and_fires_the_marker() {
    let cache = Cache::with(0..32);
    let m = mapping(&cache, 1 << 20);
    let mut ra = FileRaState { start: 0, size: 32, async_size: 8, mmap_miss: 5, ..FileRaState::default() };
    let r = do_async_mmap_readahead(&mut ra, &m, VmaRaAdvice::Normal, 3, false, false);
    assert_eq!((r, ra.mmap_miss), (Readahead::NONE, 4));
    // The marked page 0 + 32 - 8 = 24: page_cache_async_ra(24, 32):
    // expected, so (32, get_next_ra_size(32) = 32, 32).
    let r = do_async_mmap_readahead(&mut ra, &m, VmaRaAdvice::Normal, 24, true, false);
    assert!(r.clear_readahead);
    assert_eq!(decided(&r), (RaKind::Sequential, win(32, 32, 32)));
    assert_eq!(r.event.unwrap().req_size, 32);
    assert_eq!(ra.mmap_miss, 3);
    // A hit at 0 stays at 0.
    let mut ra = FileRaState::default();
    do_async_mmap_readahead(&mut ra, &m, VmaRaAdvice::Sequential, 3, false, false);
    assert_eq!(ra.mmap_miss, 0);
}

#[test]
fn fault_around_hits_lower_mmap_miss() {
    let mut ra = FileRaState { mmap_miss: 20, ..FileRaState::default() };
    filemap_map_pages(&mut ra, 16);
    assert_eq!(ra.mmap_miss, 4);
    filemap_map_pages(&mut ra, 16);
    assert_eq!(ra.mmap_miss, 0);
    let mut ra = FileRaState { mmap_miss: 1000, ..FileRaState::default() };
    filemap_map_pages(&mut ra, u64::MAX);
    assert_eq!(ra.mmap_miss, 0);
}

// ---- Tracing ----

#[test]
fn trace_log_keeps_the_first_events_and_counts_the_rest() {
    let cache = Cache::default();
    let m = mapping(&cache, 1 << 20);
    let mut log = RaTraceLog::<2>::new();
    assert!(log.is_empty());
    let mut ra = FileRaState::default();
    log.record(&page_cache_sync_ra(&mut ra, &m, 0, 1));
    log.record(&do_sync_mmap_readahead(&mut ra, &m, VmaRaAdvice::Random, 9));
    // A miss at 4, the page after (0, 4, 3): (4, 8, 8), which starts at
    // the read and is all async, so merged with the next: 8 + 16 <= 32 ->
    // (4, 24, 16).
    log.record(&page_cache_sync_ra(&mut ra, &m, 4, 1));
    log.record(&page_cache_sync_ra(&mut ra, &m, 900, 1));
    assert_eq!((log.len(), log.dropped()), (2, 1));
    let windows: Vec<RaWindow> = log.events().map(|e| e.window).collect();
    assert_eq!(windows, [win(0, 4, 3), win(4, 24, 16)]);
}

#[test]
fn events_print_for_figures() {
    let event = RaEvent { kind: RaKind::Sequential, marker: true, index: 12, req_size: 1, window: win(28, 32, 32) };
    assert_eq!(event.to_string(), "async sequential index=12 req=1: start=28 size=32 async_size=32");
    let event = RaEvent { kind: RaKind::ReadAround, marker: false, index: 9, req_size: 32, window: win(0, 32, 8) };
    assert_eq!(event.to_string(), "sync read-around index=9 req=32: start=0 size=32 async_size=8");
}

// ---- Readers and programs over the model cache ----

#[test]
fn sequential_4k_reader_sees_windows_4_8_16_32() {
    // read(4096) from 0 through a 1 MiB file (256 pages), ra_pages 32:
    //  page 0 misses: start of file, get_init_ra_size(1) = 4, async 3
    //    -> (0, 4, 3), marked 1;
    //  page 1 is marked: async, the expected index 0 + 4 - 3 -> start 4,
    //    get_next_ra_size(4) = 8 (4 >= 32/16, <= 16), all async, marked 4;
    //  page 4 -> (12, 16, 16); page 12 -> (28, 32, 32) (16 <= 16: x2);
    //  page 28 -> (60, 32, 32) (32 > 16: max), and on every 32 pages;
    //  page 220 -> (252, 32, 32), clamped to 252..=255, unmarked.
    // (Linux's get_init_ra_size comment: "1-2 page = 16k" initial. For
    // the same 16 KiB first window measured on a real system, see the
    // note in apache/lucene#13223: read() readahead 16kB where mmap's
    // read-around is 128kB.)
    let mut file = File::new(MIB);
    file.read_all(4 * KIB);
    let mut expected = vec![(0, 4, 3), (4, 8, 8), (12, 16, 16)];
    expected.extend((0..8).map(|i| (28 + 32 * i, 32, 32)));
    assert_eq!(file.windows(), expected);
    let sizes: Vec<u64> = file.events.iter().map(|e| e.window.size).collect();
    assert_eq!(sizes[..5], [4, 8, 16, 32, 32]);
    assert_eq!(file.kinds()[0], RaKind::StartOfFile);
    assert!(file.events[1..].iter().all(|e| e.kind == RaKind::Sequential && e.marker));
    let triggers: Vec<u64> = file.events.iter().map(|e| e.index).collect();
    assert_eq!(triggers[..5], [0, 1, 4, 12, 28]);
    assert_eq!(file.requests.last(), Some(&req(252, 4, None)));
    assert_eq!(file.single_reads, [], "every page came by readahead");
    assert_eq!(file.pages_read(), 256);
    assert_eq!(file.ra.prev_pos, Some(MIB));
}

#[test]
fn sequential_64k_reader_sees_windows_of_32() {
    // read(64 KiB) = 16 pages from 0 through 1 MiB:
    //  page 0 misses: get_init_ra_size(16) = 32, async 32 - 16 -> (0, 32,
    //    16), marked 16; the read's batch ends at page 15;
    //  the next read finds 16 marked: expected, (32, 32, 32), and so on at
    //    every other read (48 is not marked), up to page 224 -> (256, 32,
    //    32), wholly past the end: no request.
    let mut file = File::new(MIB);
    file.read_all(64 * KIB);
    let mut expected = vec![(0, 32, 16)];
    expected.extend((1..=8).map(|i| (32 * i, 32, 32)));
    assert_eq!(file.windows(), expected);
    let triggers: Vec<(u64, u64)> = file.events.iter().map(|e| (e.index, e.req_size)).collect();
    assert_eq!(triggers[..3], [(0, 16), (16, 16), (32, 16)]);
    assert_eq!(file.requests.len(), 8);
    assert_eq!(file.single_reads, []);
    assert_eq!(file.pages_read(), 256);
}

#[test]
fn random_reader_reads_only_what_it_asks() {
    // One-page reads far apart: never page 0, never at or after the last
    // read, never after two cached pages: each is a random read.
    let mut file = File::new(64 * MIB);
    let pages = [1000, 37, 2500, 400, 3333, 1234, 77, 2999, 1001, 5000, 36];
    for &page in &pages {
        file.read(page * P, P);
    }
    assert!(file.kinds().iter().all(|&k| k == RaKind::Random));
    let asked: Vec<RaRequest> = pages.iter().map(|&p| req(p, 1, None)).collect();
    assert_eq!(file.requests, asked);
    assert_eq!(file.pages_read(), pages.len());
    assert_eq!(file.ra.window(), win(0, 0, 0), "the window is never set");
    // Four-page reads at unaligned offsets span five pages.
    let mut file = File::new(64 * MIB);
    for &page in &[900, 20, 4000] {
        file.read(page * P + 100, 4 * P);
    }
    assert_eq!(file.requests, [req(900, 5, None), req(20, 5, None), req(4000, 5, None)]);
}

#[test]
fn interleaved_streams_both_keep_reading_ahead() {
    // Two one-page sequential readers on one open file, A from 0 and B
    // from 1000, taking turns; one state, one prev_pos.
    //  A 0: start of file (0, 4, 3).
    //  B 1000: no pattern (prev page 1, nothing cached before): random.
    //  A 1: the marker, expected: (4, 8, 8).
    //  B 1001: one page cached before, not more than the 1 asked: random.
    //  B 1002: history 2 > 1: context (1002, 3, 1), marked 1004.
    //  A 4: marked, but the state is B's (expected 1004): the pages after
    //    4 are cached up to 12, so (12, get_next_ra_size(8 + 1) = 18, 18).
    //  B 1004: marked, state A's: cached up to 1005: (1005, get_next(2) =
    //    4, 4).
    //  B 1005: marked and expected (1005 + 4 - 4): (1009, 8, 8).
    //  B 1009: expected: (1017, 16, 16).
    //  A 12: state B's: cached up to 30: (30, get_next(19) = 32, 32).
    //  B 1017: state A's: cached up to 1033: (1033, get_next(17) = 32, 32).
    //  From then on each marker hit finds the other stream's state and
    //  sizes its window from its own cached pages: 32 each.
    let mut file = File::new(64 * MIB);
    let (a, b) = (0, 1000);
    for i in 0..400 {
        file.read((a + i) * P, P);
        file.read((b + i) * P, P);
    }
    let first: Vec<Decision> = file
        .events
        .iter()
        .take(11)
        .map(|e| (e.kind, e.marker, e.index, (e.window.start, e.window.size, e.window.async_size)))
        .collect();
    use RaKind::*;
    assert_eq!(
        first,
        [
            (StartOfFile, false, 0, (0, 4, 3)),
            (Random, false, 1000, (1000, 1, 0)),
            (Sequential, true, 1, (4, 8, 8)),
            (Random, false, 1001, (1001, 1, 0)),
            (Context, false, 1002, (1002, 3, 1)),
            (Marker, true, 4, (12, 18, 18)),
            (Marker, true, 1004, (1005, 4, 4)),
            (Sequential, true, 1005, (1009, 8, 8)),
            (Sequential, true, 1009, (1017, 16, 16)),
            (Marker, true, 12, (30, 32, 32)),
            (Marker, true, 1017, (1033, 32, 32)),
        ]
    );
    // After B's third read, every page of both streams was read ahead.
    assert!(file.events[5..].iter().all(|e| e.marker), "no more misses");
    assert_eq!(file.single_reads, []);
    let last_a = file.events.iter().rev().find(|e| e.index < b).unwrap();
    let last_b = file.events.iter().rev().find(|e| e.index >= b).unwrap();
    assert_eq!((last_a.window.size, last_b.window.size), (32, 32));
    // Neither stream read much past where it got to.
    assert!(file.cache.pages.range(..b).all(|&p| p < a + 400 + 64));
    assert!(file.cache.pages.range(b..).all(|&p| p < b + 400 + 64));
}

#[test]
fn reads_past_the_end_of_the_file_read_nothing_more() {
    // 10 pages, the last partial. Page 0: (0, 4, 3); page 1: (4, 8, 8),
    // clamped to 4..=9 and unmarked (async 8 > 6 pages left).
    let i_size = 10 * P - 100;
    let mut file = File::new(i_size);
    file.read_all(P);
    assert_eq!(file.windows(), [(0, 4, 3), (4, 8, 8)]);
    assert_eq!(file.requests, [req(0, 4, Some(1)), req(4, 6, None)]);
    assert!(file.cache.marks.is_empty());
    // A read at or past the end asks for nothing at all.
    file.read(i_size, P);
    file.read(100 * P, 64 * KIB);
    assert_eq!(file.events.len(), 2);
    // A read straddling the end from a cold cache: random, clamped.
    let mut file = File::new(i_size);
    file.read(8 * P, 64 * KIB);
    assert_eq!(file.requests, [req(8, 2, None)]);
    assert_eq!(file.cache.pages, BTreeSet::from([8, 9]));
    // A decision at the end asks for nothing either.
    let m = mapping(&file.cache, 10);
    let r = page_cache_sync_ra(&mut file.ra, &m, 10, 1);
    assert!(r.event.is_some());
    assert_eq!(requests(&r), []);
}

#[test]
fn huge_read_is_read_ahead_in_windows() {
    // One 1 MiB read (256 pages) at 0 of a 4 MiB file, io_pages 32: max
    // stays 32. Initial get_init_ra_size(256, 32) = 32, all async,
    // merged: (0, 32, 16). The read's batches reach the marked 16: async
    // with req 240, expected -> (32, 32, 32); then each marked page on:
    // ..., page 224 (req 32) -> (256, 32, 32), beyond the read.
    let mut file = File::new(4 * MIB);
    file.read(0, MIB);
    let mut expected = vec![(0, 32, 16)];
    expected.extend((1..=8).map(|i| (32 * i, 32, 32)));
    assert_eq!(file.windows(), expected);
    assert_eq!(file.kinds()[0], RaKind::StartOfFile);
    let reqs: Vec<u64> = file.events.iter().map(|e| e.req_size).collect();
    assert_eq!(reqs, [256, 240, 224, 192, 160, 128, 96, 64, 32]);
    assert_eq!(file.pages_read(), 288);
    assert_eq!(file.single_reads, []);

    // With io_pages 256 the read may read up to min(256, 256): initial
    // get_init_ra_size(256, 256) = 256, all async, merged: (0, 256, 128).
    // At the marked 128, req 128: max = min(128, 256), get_next_ra_size
    // (256, 128) = 128 -> (256, 128, 128).
    let mut file = File::with_bdi(4 * MIB, RaLimits { ra_pages: 32, io_pages: 256 });
    file.read(0, MIB);
    assert_eq!(file.windows(), [(0, 256, 128), (256, 128, 128)]);
    assert_eq!(file.pages_read(), 384);
}

#[test]
fn madv_sequential_faults_read_ahead_asynchronously() {
    // Faults on every page of a 1 MiB file in order, VM_SEQ_READ:
    //  fault 0 misses: page_cache_sync_ra(0, 32) -> (0, 32, 16), marked 16;
    //  fault 16 hits the marker: page_cache_async_ra(16, 32), expected ->
    //    (32, 32, 32); then every 32 pages, up to 224 -> (256, 32, 32),
    //    past the end.
    let mut file = File::new(MIB);
    for index in 0..256 {
        file.fault(index, VmaRaAdvice::Sequential);
    }
    let mut expected = vec![(0, 32, 16)];
    expected.extend((1..=8).map(|i| (32 * i, 32, 32)));
    assert_eq!(file.windows(), expected);
    let triggers: Vec<u64> = file.events.iter().map(|e| e.index).collect();
    assert_eq!(triggers, [0, 16, 32, 64, 96, 128, 160, 192, 224]);
    assert_eq!((file.major_faults, file.ra.mmap_miss), (1, 0));
    assert_eq!(file.single_reads, []);
}

#[test]
fn sequential_faults_without_advice_read_around_then_ahead() {
    // fault 0: a miss (mmap_miss 1), read-around from max(0, 0 - 16):
    //   (0, 32, 8), marked 24; faults 1..=23 hit (mmap_miss back to 0);
    // fault 24 hits the marker: expected (0 + 32 - 8) -> (32, 32, 32);
    //   then every 32 pages.
    let mut file = File::new(MIB);
    for index in 0..256 {
        file.fault(index, VmaRaAdvice::Normal);
    }
    let mut expected = vec![(0, 32, 8)];
    expected.extend((1..=8).map(|i| (32 * i, 32, 32)));
    assert_eq!(file.windows(), expected);
    assert_eq!(file.kinds()[0], RaKind::ReadAround);
    let triggers: Vec<u64> = file.events.iter().map(|e| e.index).collect();
    assert_eq!(triggers, [0, 24, 32, 64, 96, 128, 160, 192, 224]);
    assert_eq!((file.major_faults, file.ra.mmap_miss), (1, 0));
}

#[test]
fn madv_sequential_faults_mid_file_read_ra_pages_at_a_time() {
    // From page 100 with nothing cached: each miss is a random read of 32
    // pages (no window, so no marker); the next miss, at 132, sees a
    // history of only 31 (6.1's prev_miss over 100..=131) <= 32: random
    // again. Every 32nd fault is major.
    let mut file = File::new(4 * MIB);
    for index in 100..228 {
        file.fault(index, VmaRaAdvice::Sequential);
    }
    assert!(file.kinds().iter().all(|&k| k == RaKind::Random));
    assert_eq!(file.windows(), [(100, 32, 0), (132, 32, 0), (164, 32, 0), (196, 32, 0)]);
    assert_eq!(file.major_faults, 4);
}

#[test]
fn random_faults_stop_read_around_after_mmap_lotsamiss() {
    // Faults 64 pages apart, each window (f - 16, 32, 8) apart from the
    // others: the first 100 read around, the 101st does not.
    let mut file = File::new(64 * MIB);
    let far = |i: u64| 100 + 64 * i;
    for i in 0..101 {
        file.fault(far(i), VmaRaAdvice::Normal);
    }
    assert_eq!(file.events.len(), 100);
    assert!(file.kinds().iter().all(|&k| k == RaKind::ReadAround));
    assert_eq!(file.windows()[1], (148, 32, 8));
    assert_eq!(file.ra.mmap_miss, 101);
    assert_eq!(file.single_reads, [far(100)]);
    // Two hits inside the first window (unmarked pages) bring it to 99:
    // the next miss (100) reads around again, the one after (101) not.
    file.fault(101, VmaRaAdvice::Normal);
    file.fault(102, VmaRaAdvice::Normal);
    assert_eq!(file.ra.mmap_miss, 99);
    file.fault(far(101), VmaRaAdvice::Normal);
    file.fault(far(102), VmaRaAdvice::Normal);
    assert_eq!(file.events.len(), 101);
    assert_eq!(file.events[100].window, win(far(101) - 16, 32, 8));
    assert_eq!(file.ra.mmap_miss, 101);
}

#[test]
fn madv_random_faults_read_single_pages() {
    let mut file = File::new(64 * MIB);
    let pages = [5, 900, 6, 7, 3000];
    for &page in &pages {
        file.fault(page, VmaRaAdvice::Random);
    }
    assert_eq!(file.events, []);
    assert_eq!(file.single_reads, pages);
    assert_eq!(file.ra, FileRaState::default());
}

// ---- Bounds ----

/// Where a proptest read starts.
#[derive(Clone, Debug)]
enum At {
    /// Anywhere in `u64`.
    Anywhere(u64),
    /// This many bytes before the end of the file (or past it).
    FromEnd(i64),
    /// Where the previous read ended.
    Next,
    /// Low in the file.
    Low(u64),
}

#[derive(Clone, Debug)]
enum Op {
    Read { at: At, len: u64 },
    Fault { page: u64, from_end: bool, advice: VmaRaAdvice },
    WillNeed { offset: u64, len: u64 },
    Fadvise(FadviseAdvice),
    MapPages(u64),
}

fn at() -> impl Strategy<Value = At> {
    prop_oneof![
        any::<u64>().prop_map(At::Anywhere),
        (-(64 * P as i64)..(4 * P as i64)).prop_map(At::FromEnd),
        Just(At::Next),
        (0..4 * MIB).prop_map(At::Low),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let advice = prop_oneof![Just(VmaRaAdvice::Normal), Just(VmaRaAdvice::Sequential), Just(VmaRaAdvice::Random)];
    let fadv = prop_oneof![Just(FadviseAdvice::Normal), Just(FadviseAdvice::Random), Just(FadviseAdvice::Sequential)];
    prop_oneof![
        6 => (at(), 1..=64 * P).prop_map(|(at, len)| Op::Read { at, len }),
        3 => (any::<u64>(), any::<bool>(), advice)
            .prop_map(|(page, from_end, advice)| Op::Fault { page, from_end, advice }),
        1 => (any::<u64>(), any::<u64>()).prop_map(|(offset, len)| Op::WillNeed { offset, len }),
        1 => fadv.prop_map(Op::Fadvise),
        1 => (0..64u64).prop_map(Op::MapPages),
    ]
}

fn i_size() -> impl Strategy<Value = u64> {
    prop_oneof![0..16 * MIB, u64::MAX - 16 * MIB..=u64::MAX, any::<u64>()]
}

fn limits() -> impl Strategy<Value = RaLimits> {
    (prop_oneof![Just(0u64), Just(32), 1..=1024u64], prop_oneof![Just(0u64), Just(32), 1..=1024u64])
        .prop_map(|(ra_pages, io_pages)| RaLimits { ra_pages, io_pages })
}

/// A state anywhere in its range.
fn any_state() -> impl Strategy<Value = FileRaState> {
    (any::<[u64; 4]>(), any::<u32>(), any::<Option<u64>>(), any::<bool>()).prop_map(
        |([start, size, async_size, ra_pages], mmap_miss, prev_pos, random)| FileRaState {
            start,
            size,
            async_size,
            ra_pages,
            mmap_miss,
            prev_pos,
            random,
        },
    )
}

/// Checks the first requests of `readahead` (forced readahead of an
/// unbounded window may have a great many) against a file of `nr_pages`.
fn check_requests(readahead: &Readahead, nr_pages: u64) -> Result<(), TestCaseError> {
    for request in readahead.requests.clone().take(8) {
        prop_assert!(request.nr > 0);
        let end = request.start.checked_add(request.nr);
        prop_assert!(end.is_some_and(|end| end <= nr_pages), "{request:?} past {nr_pages} pages");
        if let Some(mark) = request.mark {
            prop_assert!(mark >= request.start && mark - request.start < request.nr, "mark outside {request:?}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Reads, faults and advice on files of any size, up to the largest
    /// offsets: every request is inside the file, none is empty, every
    /// mark is inside its request, the window's async part never exceeds
    /// it (all checked in `File::submit`), and nothing overflows.
    #[test]
    fn reads_and_faults_stay_inside_the_file(
        i_size in i_size(),
        bdi in limits(),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let mut file = File::with_bdi(i_size, bdi);
        let mut next = 0u64;
        for op in ops {
            match op {
                Op::Read { at, len } => {
                    let pos = match at {
                        At::Anywhere(pos) => pos,
                        At::FromEnd(delta) => i_size.saturating_add_signed(delta),
                        At::Next => next,
                        At::Low(pos) => pos,
                    };
                    // Linux truncates a read at the largest offset.
                    let len = len.min(u64::MAX - pos);
                    file.read(pos, len);
                    next = pos + len;
                }
                Op::Fault { page, from_end, advice } => {
                    let nr_pages = file.nr_pages();
                    if nr_pages > 0 {
                        let index = if from_end { nr_pages - 1 - page % nr_pages.min(128) } else { page % nr_pages };
                        file.fault(index, advice);
                    }
                }
                Op::WillNeed { offset, len } => {
                    let m = RaMapping { cache: &file.cache, nr_pages: file.nr_pages(), bdi };
                    let readahead = fadvise_willneed(&file.ra, &m, offset, len);
                    check_requests(&readahead, file.nr_pages())?;
                    file.submit(readahead);
                }
                Op::Fadvise(advice) => fadvise(&mut file.ra, bdi, advice),
                Op::MapPages(nr) => filemap_map_pages(&mut file.ra, nr),
            }
            prop_assert!(file.cache.pages.last().is_none_or(|&last| last < file.nr_pages()));
            prop_assert!(file.ra.mmap_miss <= 10 * MMAP_LOTSAMISS);
        }
    }

    /// Every entry point, from any state, at any index, with any cache
    /// around it: no overflow, and every request inside the file.
    #[test]
    fn decisions_from_any_state_never_overflow(
        state in any_state(),
        index in prop_oneof![any::<u64>(), Just(0u64), Just(u64::MAX), u64::MAX - 64..=u64::MAX],
        req_count in prop_oneof![any::<u64>(), 0..64u64],
        nr_pages in prop_oneof![any::<u64>(), Just(u64::MAX), Just(0u64)],
        io_pages in any::<u64>(),
        near in prop::collection::vec(-64i64..64, 0..64),
        writeback in any::<bool>(),
    ) {
        let cache = Cache::with(near.iter().map(|&d| index.wrapping_add_signed(d)));
        let m = RaMapping { cache: &cache, nr_pages, bdi: RaLimits { ra_pages: state.ra_pages, io_pages } };
        for advice in [VmaRaAdvice::Normal, VmaRaAdvice::Sequential, VmaRaAdvice::Random] {
            let mut ra = state;
            check_requests(&do_sync_mmap_readahead(&mut ra, &m, advice, index), nr_pages)?;
            let mut ra = state;
            check_requests(&do_async_mmap_readahead(&mut ra, &m, advice, index, true, writeback), nr_pages)?;
        }
        let mut ra = state;
        check_requests(&page_cache_sync_ra(&mut ra, &m, index, req_count), nr_pages)?;
        let mut ra = state;
        check_requests(&page_cache_async_ra(&mut ra, &m, index, req_count, writeback), nr_pages)?;
        check_requests(&force_page_cache_ra(&state, &m, index, req_count), nr_pages)?;
        check_requests(&fadvise_willneed(&state, &m, index, req_count), nr_pages)?;
    }
}
