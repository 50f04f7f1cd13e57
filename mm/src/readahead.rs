//! File readahead policy: which pages a read or a page fault brings into
//! the page cache beyond the ones it asked for, and which of them carries
//! the `PG_readahead` marker (Linux 6.1 `mm/readahead.c`, and the mmap
//! fault readahead of `mm/filemap.c`: `do_sync_mmap_readahead`,
//! `do_async_mmap_readahead` and the `mmap_miss` count of
//! `filemap_map_pages`).
//!
//! This module decides and does nothing else: no page is allocated, looked
//! up or read here. The caller describes the file ([`RaMapping`]: the page
//! cache through the [`RaCache`] queries, the size in pages, the device's
//! limits), and each entry point returns a [`Readahead`] value: the pages
//! to read as [`RaRequest`]s and, for tracing, the decision as an
//! [`RaEvent`]. The kernel's `filemap_read` and `filemap_fault` call it.
//!
//! # The window
//!
//! A [`FileRaState`] (Linux `struct file_ra_state`, one per open file)
//! remembers the last readahead window:
//!
//! ```text
//!                        |<----- async_size ---------|
//!     |------------------- size -------------------->|
//!     |==================#===========================|
//!     ^start             ^start + size - async_size: PG_readahead
//! ```
//!
//! The marked page is the trigger: when a reader reaches it, the next
//! window is read while the reader consumes the rest of this one
//! (pipelining), so a sequential reader never waits after the first
//! window. The window starts small and grows towards `ra_pages`
//! ([`VM_READAHEAD_PAGES`] = 32 pages by default): a reader of one page at a
//! time from the start of a file sees windows of 4, 8, 16, 32, 32, ...
//! pages (derived in the tests from the rules below).
//!
//! # When readahead runs
//!
//! - **A miss** ([`page_cache_sync_ra`]): `filemap_read` found no page
//!   at the read's first index; `req_count` is the number of pages the read
//!   still wants.
//! - **A marker hit** ([`page_cache_async_ra`]): the last page of a batch
//!   `filemap_read` found cached carries `PG_readahead`; `req_count` is the
//!   pages the read wants from that page on.
//! - **A page fault** ([`do_sync_mmap_readahead`] on a major fault,
//!   [`do_async_mmap_readahead`] on a minor one), steered by the VMA's
//!   `MADV_SEQUENTIAL`/`MADV_RANDOM` advice ([`VmaRaAdvice`]).
//! - **Advice** ([`fadvise_willneed`], serving `POSIX_FADV_WILLNEED`,
//!   `readahead(2)` and `MADV_WILLNEED`, all of which Linux routes through
//!   `vfs_fadvise`): read a range now, in 2 MiB chunks, whatever the window.
//!
//! # The on-demand rules
//!
//! Linux 6.1's `ondemand_readahead`, for a miss or a marker hit at `index`
//! wanting `req_size` pages, tries these in order (`max` is `ra_pages`,
//! raised to `min(req_size, io_pages)` for a read larger than the window
//! on a device that takes larger I/O):
//!
//! 1. **Start of file** (`index == 0`): an initial window.
//! 2. **Expected index** (`index` is the marked page, `start + size -
//!    async_size`, or the page right after the window): the next window
//!    follows this one, ramped up by `get_next_ra_size` (x4 while small, x2,
//!    then `max`), all of it asynchronous.
//! 3. **Marker hit without a matching window** (interleaved streams on one
//!    file overwrite each other's state): the pages cached after `index`
//!    stand for the old window's async part; the next window starts at the
//!    first page not cached (`page_cache_next_miss`) and is that distance
//!    plus `req_size`, ramped up.
//! 4. **Oversize read** (`req_size > max`): an initial window.
//! 5. **Sequential miss** (`index` is the page of `prev_pos`, the position
//!    after the previous read, or the one after it): an initial window.
//! 6. **Context readahead**: count the pages cached right before `index`
//!    (`page_cache_prev_miss`, at most `max`); more than `req_size` means a
//!    stream left them, so read that many plus `req_size` (doubled if they
//!    reach back to page 0), capped at `max`, with an async part of 1.
//! 7. **Random read**: read just the `req_size` pages asked for, and leave
//!    the window alone.
//!
//! An initial window is `get_init_ra_size(req_size, max)` (the request
//! rounded up to a power of two, x4 if tiny, x2 if small, else `max`) with
//! an async part of what exceeds the request (the whole window if nothing
//! does). Finally, if the window starts at `index` and is all asynchronous,
//! the read would hit its own marker at once, so the next window is merged
//! in now (and if that exceeds `max`, the window is `max` with half of it
//! asynchronous).
//!
//! # What the caller does with a request
//!
//! Linux's `do_page_cache_ra` clamps the window at the last page of the
//! file and `page_cache_ra_unbounded` then allocates and reads the pages of
//! `start..start + nr` that are not cached; an [`RaRequest`] is that
//! clamped range, and the caller does the rest:
//!
//! - skip the pages already in the cache (Linux submits what it has
//!   gathered so far at each cached page and goes on after it);
//! - set `PG_readahead` on the page at [`RaRequest::mark`] only if this
//!   request added it: an already cached page is never marked;
//! - stop at the first page it cannot allocate or insert;
//! - read the new pages, giving the filesystem the whole run at once.
//!
//! The clamp does not shorten the async part, so a window cut by the end
//! of the file carries its marker earlier, or not at all when the async
//! part is longer than what is left (Linux 6.1 does the same).
//!
//! The caller also keeps the reader's side of the state as Linux's
//! `filemap_read` does: [`FileRaState::prev_pos`] is the file position
//! after the last byte copied to the user, set after every page copied;
//! `filemap_get_pages` asks for sync readahead with `req_count =
//! last_index - index` (`last_index` = `DIV_ROUND_UP(pos + count,
//! PAGE_SIZE)`), and a batch of cached pages ends at the first page marked
//! `PG_readahead`, which triggers async readahead with `last_index -
//! page_index`; a read starting at or past the end of the file asks for
//! nothing. (A batch stops before `last_index` since "mm/filemap: fix page
//! end in filemap_get_read_batch", backported to 6.1.y in February 2023;
//! plain 6.1 could take the page at `last_index` too.) A page fault asks
//! [`do_async_mmap_readahead`] only on its first try (`FAULT_FLAG_TRIED`
//! unset), and a fault that readahead left without its page reads that
//! page alone.
//!
//! # Locking
//!
//! None here. A [`FileRaState`] belongs to one open file and the caller
//! serializes the calls that take it `&mut`; Linux updates the state of a
//! file shared by several readers without a lock, accepting a lost update
//! now and then (`mmap_miss` goes through `READ_ONCE`/`WRITE_ONCE`). The
//! [`RaCache`] queries run under whatever protects the page cache's index
//! (Linux: RCU).
//!
//! # Differences from Linux 6.1
//!
//! - **Order-0 pages only.** Linux 6.1 reads through `page_cache_ra_order`,
//!   which allocates large folios only for mappings that support them;
//!   for the others (ext2 among them) it falls back to `do_page_cache_ra`,
//!   which is what we do. With order-0 folios the rounding of the expected
//!   index to the folio's order changes nothing.
//! - **The cache queries are exact.** [`RaCache`] answers "the first
//!   (last) page not cached in this range"; we turn the answer into what
//!   6.1's `page_cache_next_miss` and `page_cache_prev_miss` return, which
//!   for a range with no gap is the last index looked at, one inside the
//!   range. So a marker hit whose next `max` pages are all cached still
//!   reads ahead, from the last of them (Linux 6.10's "filemap: fix
//!   page_cache_next_miss() when no hole found" returns an index past the
//!   range and gives up instead), and a history of `max` cached pages
//!   counts as `max - 1`.
//! - **`FMODE_RANDOM` lives in the state** ([`FileRaState::random`]):
//!   only fadvise and readahead use it. `prev_pos` is an `Option` where
//!   Linux stores -1; Linux's -1 reads as page `2^52 - 1`, which no file
//!   position reaches.
//! - **Left out:** `blk_cgroup_congested()` (no cgroups); the
//!   `VM_HUGEPAGE` branch of `do_sync_mmap_readahead` (no THP); the DAX and
//!   no-backing-device exits of `generic_fadvise` and the checks that the
//!   file can read at all (the caller's); the shrinking of the window in
//!   `read_pages` when `->readahead` leaves pages unread (our filesystems
//!   read every page they are given); `readahead_expand`.
//! - **Tracing is ours.** Linux 6.1 has no tracepoint for these decisions;
//!   every entry point returns its decision as an [`RaEvent`], and
//!   [`RaTraceLog`] keeps the first ones for printing beside Linux's
//!   figures.
//!
//! # Newer kernels
//!
//! Jan Kara's 6.10 series split `ondemand_readahead` into separate
//! `page_cache_sync_ra` and `page_cache_async_ra` (folding
//! `try_context_readahead` into the first) and fixed
//! `page_cache_next_miss`. In current kernels, after that series and later
//! changes: a miss never ramps up an expected window nor merges a window
//! with its own marker; an initial window no larger than the request gets
//! half of it asynchronous; context readahead doubles only a history
//! reaching page 0; a marker hit ramps up only at exactly the marked page,
//! keeps the window at least as large as the last and rounds its end to
//! the folio order; a marker hit on a fully cached range reads nothing;
//! the folio order lives in the state (`ra->order`); executable mappings
//! get their own read-around; and readahead has tracepoints. On a mapping
//! without large folios, a one-page sequential reader still sees windows
//! of 4, 8, 16, 32, ... at the default `ra_pages`.

#![forbid(unsafe_code)]

use core::fmt;

use crate::addr::{PAGE_SHIFT, PAGE_SIZE};

/// The default readahead window, 128 KiB in pages (Linux
/// `VM_READAHEAD_PAGES`).
pub const VM_READAHEAD_PAGES: u64 = (128 * 1024) / PAGE_SIZE;

/// How many more mmap faults than hits a file may have before mmap
/// read-around stops (Linux `MMAP_LOTSAMISS`, `mm/filemap.c`).
pub const MMAP_LOTSAMISS: u32 = 100;

/// The pages `force_page_cache_ra` reads per call of `do_page_cache_ra`,
/// so as not to pin too much memory at once: 2 MiB.
const FORCE_RA_CHUNK_PAGES: u64 = (2 * 1024 * 1024) / PAGE_SIZE;

/// The largest file offset (Linux `LLONG_MAX`), where `fadvise` ends a
/// range of length 0 ("as much as possible") or one that runs past it.
const LLONG_MAX: u64 = u64::MAX >> 1;

/// The readahead limits of the device behind a file (Linux
/// `backing_dev_info`'s `ra_pages` and `io_pages`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaLimits {
    /// The default window in pages: `read_ahead_kb` in sysfs. Linux's disks
    /// get `max(2 * io_opt, VM_READAHEAD_PAGES)`.
    pub ra_pages: u64,
    /// The largest I/O the device takes, in pages (`max_sectors_kb`): a
    /// read larger than the window may read ahead up to this much.
    pub io_pages: u64,
}

impl Default for RaLimits {
    /// Both [`VM_READAHEAD_PAGES`], as Linux's `bdi_alloc` starts them.
    fn default() -> Self {
        RaLimits { ra_pages: VM_READAHEAD_PAGES, io_pages: VM_READAHEAD_PAGES }
    }
}

/// The readahead state of one open file (Linux `struct file_ra_state`,
/// plus `FMODE_RANDOM`).
#[doc(alias = "file_ra_state")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRaState {
    /// The first page of the last window.
    pub start: u64,
    /// The last window's length in pages.
    pub size: u64,
    /// Its asynchronous tail: the page `start + size - async_size` was
    /// marked `PG_readahead`.
    pub async_size: u64,
    /// The largest window in pages; 0 turns readahead off.
    pub ra_pages: u64,
    /// mmap faults that missed the cache minus those that hit it, kept
    /// between 0 and `10 * MMAP_LOTSAMISS`.
    pub mmap_miss: u32,
    /// The file position after the last byte a `read` copied out, `None`
    /// before the first (Linux's -1); the caller sets it.
    pub prev_pos: Option<u64>,
    /// `POSIX_FADV_RANDOM` is in force (Linux's `FMODE_RANDOM` in
    /// `f_mode`): a miss reads only what was asked for.
    pub random: bool,
}

impl FileRaState {
    /// The state of a newly opened file on a device with limits `bdi`
    /// (Linux `file_ra_state_init`).
    #[doc(alias = "file_ra_state_init")]
    pub const fn new(bdi: RaLimits) -> Self {
        FileRaState {
            start: 0,
            size: 0,
            async_size: 0,
            ra_pages: bdi.ra_pages,
            mmap_miss: 0,
            prev_pos: None,
            random: false,
        }
    }

    /// The last window.
    pub const fn window(&self) -> RaWindow {
        RaWindow { start: self.start, size: self.size, async_size: self.async_size }
    }
}

impl Default for FileRaState {
    /// A file on a device with the default limits.
    fn default() -> Self {
        FileRaState::new(RaLimits::default())
    }
}

/// What readahead asks of the page cache (Linux `page_cache_next_miss`,
/// `page_cache_prev_miss`). A page counts as cached when the cache holds a
/// page at its index, up to date or not; a shadow or swap entry is a miss.
///
/// `max_scan` is at least 1 in every call.
pub trait RaCache {
    /// The lowest index in `index..=index.saturating_add(max_scan - 1)`
    /// whose page is not cached, or `None` if all of them are.
    fn next_miss(&self, index: u64, max_scan: u64) -> Option<u64>;

    /// The highest index in `index.saturating_sub(max_scan - 1)..=index`
    /// whose page is not cached, or `None` if all of them are.
    fn prev_miss(&self, index: u64, max_scan: u64) -> Option<u64>;
}

/// The file a readahead decision is about (what Linux reaches from its
/// `readahead_control`: the mapping, its inode's size and its device).
pub struct RaMapping<'a, C: RaCache + ?Sized> {
    /// The file's page cache.
    pub cache: &'a C,
    /// The pages holding file data: `i_size.div_ceil(PAGE_SIZE)`. No
    /// request reaches past them.
    pub nr_pages: u64,
    /// The limits of the file's device.
    pub bdi: RaLimits,
}

/// Pages to bring into the cache, clamped to the file (what Linux's
/// `do_page_cache_ra` hands to `page_cache_ra_unbounded`). See the module
/// documentation for what the caller does with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaRequest {
    /// The first page.
    pub start: u64,
    /// How many pages, at least 1.
    pub nr: u64,
    /// The page to mark `PG_readahead` if this request adds it, inside
    /// `start..start + nr`.
    pub mark: Option<u64>,
}

/// The requests of one decision, in file order: one for a window, one per
/// 2 MiB for forced readahead (Linux's calls of `do_page_cache_ra`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaRequests {
    /// The next chunk's first page.
    index: u64,
    /// Pages still to hand out, before clamping.
    left: u64,
    /// Pages per chunk.
    chunk: u64,
    /// Each chunk's async tail.
    lookahead: u64,
    /// The file's size in pages.
    nr_pages: u64,
}

impl RaRequests {
    /// No pages.
    const NONE: RaRequests = RaRequests { index: 0, left: 0, chunk: 0, lookahead: 0, nr_pages: 0 };

    /// `window` read as one request.
    const fn window(window: RaWindow, nr_pages: u64) -> Self {
        RaRequests {
            index: window.start,
            left: window.size,
            chunk: window.size,
            lookahead: window.async_size,
            nr_pages,
        }
    }
}

impl Iterator for RaRequests {
    type Item = RaRequest;

    fn next(&mut self) -> Option<RaRequest> {
        if self.left == 0 {
            return None;
        }
        let this_chunk = self.chunk.min(self.left);
        let request = do_page_cache_ra(self.index, this_chunk, self.lookahead, self.nr_pages);
        self.left -= this_chunk;
        match (request, self.index.checked_add(this_chunk)) {
            (Some(request), Some(next)) => {
                self.index = next;
                Some(request)
            }
            (Some(request), None) => {
                self.left = 0;
                Some(request)
            }
            // This chunk starts past the end of the file, and so would the
            // rest.
            (None, _) => {
                self.left = 0;
                None
            }
        }
    }
}

/// A readahead window: `size` pages from `start`, the last `async_size` of
/// them read ahead of need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaWindow {
    /// The first page.
    pub start: u64,
    /// The length in pages.
    pub size: u64,
    /// The asynchronous tail.
    pub async_size: u64,
}

/// Which rule made a readahead decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaKind {
    /// A read from page 0: an initial window.
    StartOfFile,
    /// The window the previous one announced (its marked page or the page
    /// after it): the next, larger window.
    Sequential,
    /// A marked page the window does not explain (interleaved readers):
    /// a window sized from the pages cached after it.
    Marker,
    /// A read larger than the window: an initial window.
    Oversize,
    /// A miss at the page of the previous read or the one after it: an
    /// initial window.
    SequentialMiss,
    /// Pages cached right before the miss suggest a stream: a window sized
    /// from them.
    Context,
    /// A miss with no pattern: only the pages asked for, the window left
    /// alone.
    Random,
    /// Reading a range regardless of the window (fadvise `WILLNEED`,
    /// `FMODE_RANDOM`, readahead turned off).
    Forced,
    /// mmap read-around: a window centred on the faulting page.
    ReadAround,
}

impl RaKind {
    /// A short name for traces.
    pub const fn as_str(self) -> &'static str {
        match self {
            RaKind::StartOfFile => "start-of-file",
            RaKind::Sequential => "sequential",
            RaKind::Marker => "marker",
            RaKind::Oversize => "oversize",
            RaKind::SequentialMiss => "sequential-miss",
            RaKind::Context => "context",
            RaKind::Random => "random",
            RaKind::Forced => "forced",
            RaKind::ReadAround => "read-around",
        }
    }
}

/// One readahead decision, for tracing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaEvent {
    /// The rule that decided.
    pub kind: RaKind,
    /// Whether a `PG_readahead` page triggered it (asynchronous readahead)
    /// rather than a miss or advice.
    pub marker: bool,
    /// The page that triggered it.
    pub index: u64,
    /// The pages the caller wanted from `index` on.
    pub req_size: u64,
    /// The window decided. For [`RaKind::Random`] and [`RaKind::Forced`],
    /// which leave the file's window alone, the pages read: `req_size` (or
    /// the forced count) from `index`, none of them asynchronous.
    pub window: RaWindow,
}

impl fmt::Display for RaEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let trigger = if self.marker { "async" } else { "sync" };
        write!(
            f,
            "{trigger} {} index={} req={}: start={} size={} async_size={}",
            self.kind.as_str(),
            self.index,
            self.req_size,
            self.window.start,
            self.window.size,
            self.window.async_size
        )
    }
}

/// A readahead decision: the pages to read, and what decided them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readahead {
    /// The decision, or `None` if readahead chose to do nothing (turned
    /// off, `MADV_RANDOM`, too many mmap misses, a marker past the last
    /// index).
    pub event: Option<RaEvent>,
    /// The pages to read.
    pub requests: RaRequests,
    /// Whether the caller must clear `PG_readahead` on the page that
    /// triggered this (only asynchronous readahead sets it).
    pub clear_readahead: bool,
}

impl Readahead {
    /// Nothing to read.
    const NONE: Readahead = Readahead { event: None, requests: RaRequests::NONE, clear_readahead: false };

    /// `window` decided by `kind` at `index`, read from the file.
    fn window<C: RaCache + ?Sized>(
        kind: RaKind,
        marker: bool,
        index: u64,
        req_size: u64,
        window: RaWindow,
        mapping: &RaMapping<'_, C>,
    ) -> Self {
        Readahead {
            event: Some(RaEvent { kind, marker, index, req_size, window }),
            requests: RaRequests::window(window, mapping.nr_pages),
            clear_readahead: false,
        }
    }
}

/// The first decisions of a run, kept for printing (the "readahead windows
/// a sequential read sees" figure). Holds `N` events; later ones are only
/// counted.
#[derive(Clone, Debug)]
pub struct RaTraceLog<const N: usize> {
    events: [Option<RaEvent>; N],
    len: usize,
    dropped: u64,
}

impl<const N: usize> RaTraceLog<N> {
    /// An empty log.
    pub const fn new() -> Self {
        RaTraceLog { events: [None; N], len: 0, dropped: 0 }
    }

    /// Keeps `readahead`'s decision, if it made one.
    pub fn record(&mut self, readahead: &Readahead) {
        if let Some(event) = readahead.event {
            self.push(event);
        }
    }

    /// Keeps `event` if there is room, else counts it as dropped.
    pub fn push(&mut self, event: RaEvent) {
        match self.events.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(event);
                self.len += 1;
            }
            None => self.dropped = self.dropped.saturating_add(1),
        }
    }

    /// The kept events, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &RaEvent> {
        self.events.iter().flatten()
    }

    /// How many events are kept.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether no event is kept.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many events came after the log was full.
    pub const fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl<const N: usize> Default for RaTraceLog<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The initial window for a read of `size` pages: rounded up to a power of
/// two, then x4 if at most `max / 32`, x2 if at most `max / 4`, else `max`
/// (Linux `get_init_ra_size`; with `max` = 32: 1-2 pages give 4, 3-4 give
/// 8, 5-8 give 16, more give 32). A `size` of 0 counts as 1.
fn get_init_ra_size(size: u64, max: u64) -> u64 {
    // Above 2^63 there is no power of two to round to, and no `max` the
    // size could fit.
    let newsize = size.checked_next_power_of_two().unwrap_or(u64::MAX);
    if newsize <= max / 32 {
        newsize * 4
    } else if newsize <= max / 4 {
        newsize * 2
    } else {
        max
    }
}

/// The window after one of `cur` pages: x4 below `max / 16`, x2 up to
/// `max / 2`, else `max` (Linux `get_next_ra_size`).
fn get_next_ra_size(cur: u64, max: u64) -> u64 {
    if cur < max / 16 {
        4 * cur
    } else if cur <= max / 2 {
        2 * cur
    } else {
        max
    }
}

/// What Linux 6.1's `page_cache_next_miss` returns: the first uncached
/// index from `index` on within `max_scan` pages; with none, the last index
/// it looked at, or 0 if the scan ran past the last index.
fn page_cache_next_miss<C: RaCache + ?Sized>(cache: &C, index: u64, max_scan: u64) -> u64 {
    let Some(span) = max_scan.checked_sub(1) else {
        return index;
    };
    match cache.next_miss(index, max_scan) {
        Some(miss) => miss,
        None => index.checked_add(span).unwrap_or(0),
    }
}

/// What Linux 6.1's `page_cache_prev_miss` returns: the last uncached index
/// at or before `index` within `max_scan` pages; with none, the last index
/// it looked at, or `u64::MAX` if the scan ran below page 0.
fn page_cache_prev_miss<C: RaCache + ?Sized>(cache: &C, index: u64, max_scan: u64) -> u64 {
    let Some(span) = max_scan.checked_sub(1) else {
        return index;
    };
    match cache.prev_miss(index, max_scan) {
        Some(miss) => miss,
        None => index.checked_sub(span).unwrap_or(u64::MAX),
    }
}

/// The pages cached right before `index`, at most `max` (Linux
/// `count_history_pages`). `index` is at least 1.
fn count_history_pages<C: RaCache + ?Sized>(cache: &C, index: u64, max: u64) -> u64 {
    let last = index.saturating_sub(1);
    let head = page_cache_prev_miss(cache, last, max);
    // Linux's unsigned arithmetic: a scan that ran below page 0 (head =
    // u64::MAX) counts all `index` pages; otherwise head < index.
    last.wrapping_sub(head)
}

/// `nr_to_read` pages from `index`, clamped to the file's `nr_pages`,
/// with the page `lookahead_size` from the end of the unclamped request
/// marked (Linux `do_page_cache_ra`, and the marking of
/// `page_cache_ra_unbounded`). `None` if nothing is left to read.
fn do_page_cache_ra(index: u64, nr_to_read: u64, lookahead_size: u64, nr_pages: u64) -> Option<RaRequest> {
    let end_index = nr_pages.checked_sub(1)?;
    let room = end_index.checked_sub(index)?;
    // room < u64::MAX, as end_index is.
    let nr = if nr_to_read > room { room + 1 } else { nr_to_read };
    if nr == 0 {
        return None;
    }
    // Linux marks page i of the request when i == nr - lookahead_size,
    // computed unsigned: no page for a lookahead of 0 (i would be nr) or
    // one longer than nr (it wraps). i < nr, so index + i <= end_index.
    let mark = match nr.checked_sub(lookahead_size) {
        Some(i) if lookahead_size > 0 => Some(index + i),
        _ => None,
    };
    Some(RaRequest { start: index, nr, mark })
}

/// The step `ondemand_readahead` takes after its checks.
enum Ondemand {
    /// Set an initial window at the index.
    Initial(RaKind),
    /// The window is set.
    Window(RaKind),
    /// Read the asked pages alone.
    Random,
    /// Read nothing.
    Nothing,
}

/// Linux 6.1's `ondemand_readahead` up to its `initial_readahead` and
/// `readit` labels: the checks, in order, with the window updates of the
/// ones that set it themselves.
fn ondemand_step<C: RaCache + ?Sized>(
    ra: &mut FileRaState,
    cache: &C,
    index: u64,
    marker: bool,
    req_size: u64,
    max_pages: u64,
) -> Ondemand {
    if index == 0 {
        return Ondemand::Initial(RaKind::StartOfFile);
    }

    let end = ra.start.saturating_add(ra.size);
    let expected = end.saturating_sub(ra.async_size);
    if index == expected || index == end {
        ra.start = end;
        ra.size = get_next_ra_size(ra.size, max_pages);
        ra.async_size = ra.size;
        return Ondemand::Window(RaKind::Sequential);
    }

    if marker {
        // At the last index, Linux's index + 1 wraps to 0, which reads as
        // "no gap found".
        let start = index.checked_add(1).map_or(0, |next| page_cache_next_miss(cache, next, max_pages));
        let old_async = match start.checked_sub(index) {
            Some(distance) if start != 0 && distance <= max_pages => distance,
            _ => return Ondemand::Nothing,
        };
        ra.start = start;
        ra.size = get_next_ra_size(old_async.saturating_add(req_size), max_pages);
        ra.async_size = ra.size;
        return Ondemand::Window(RaKind::Marker);
    }

    if req_size > max_pages {
        return Ondemand::Initial(RaKind::Oversize);
    }

    // Linux's unsigned `index - prev_index <= 1`: the same page (an
    // unaligned read) or the next one; an index below prev_index wraps
    // to a huge distance.
    if let Some(prev_pos) = ra.prev_pos
        && index.wrapping_sub(prev_pos >> PAGE_SHIFT) <= 1
    {
        return Ondemand::Initial(RaKind::SequentialMiss);
    }

    // Linux try_context_readahead.
    let history = count_history_pages(cache, index, max_pages);
    if history > req_size {
        // History reaching back to page 0 suggests the whole file is being
        // read.
        let size = if history >= index { history.saturating_mul(2) } else { history };
        ra.start = index;
        ra.size = size.saturating_add(req_size).min(max_pages);
        ra.async_size = 1;
        return Ondemand::Window(RaKind::Context);
    }

    Ondemand::Random
}

/// The on-demand readahead decision for a miss (`marker` false) or a
/// marker hit at `index` wanting `req_size` pages (Linux 6.1
/// `ondemand_readahead`).
fn ondemand_readahead<C: RaCache + ?Sized>(
    ra: &mut FileRaState,
    mapping: &RaMapping<'_, C>,
    index: u64,
    marker: bool,
    req_size: u64,
) -> Readahead {
    // A read larger than the window may read up to the device's largest
    // I/O.
    let mut max_pages = ra.ra_pages;
    if req_size > max_pages && mapping.bdi.io_pages > max_pages {
        max_pages = req_size.min(mapping.bdi.io_pages);
    }

    let kind = match ondemand_step(ra, mapping.cache, index, marker, req_size, max_pages) {
        Ondemand::Initial(kind) => {
            ra.start = index;
            ra.size = get_init_ra_size(req_size, max_pages);
            ra.async_size = if ra.size > req_size { ra.size - req_size } else { ra.size };
            kind
        }
        Ondemand::Window(kind) => kind,
        Ondemand::Random => {
            let read = RaWindow { start: index, size: req_size, async_size: 0 };
            return Readahead::window(RaKind::Random, marker, index, req_size, read, mapping);
        }
        Ondemand::Nothing => return Readahead::NONE,
    };

    // A window starting at the read and all asynchronous would have the
    // read hit its marker at once: take the next window now.
    if index == ra.start && ra.size == ra.async_size {
        let add_pages = get_next_ra_size(ra.size, max_pages);
        match ra.size.checked_add(add_pages) {
            Some(size) if size <= max_pages => {
                ra.async_size = add_pages;
                ra.size = size;
            }
            _ => {
                ra.size = max_pages;
                ra.async_size = max_pages >> 1;
            }
        }
    }
    Readahead::window(kind, marker, index, req_size, ra.window(), mapping)
}

/// Readahead for a read that found no page at `index` and wants
/// `req_count` pages from there (Linux `page_cache_sync_ra`): on-demand
/// readahead, or just the asked pages when `POSIX_FADV_RANDOM` is in force
/// (capped at `max(io_pages, ra_pages)`), or the one page at `index` when
/// readahead is off.
pub fn page_cache_sync_ra<C: RaCache + ?Sized>(
    ra: &mut FileRaState,
    mapping: &RaMapping<'_, C>,
    index: u64,
    req_count: u64,
) -> Readahead {
    if ra.ra_pages == 0 {
        return force_page_cache_ra(ra, mapping, index, 1);
    }
    if ra.random {
        return force_page_cache_ra(ra, mapping, index, req_count);
    }
    ondemand_readahead(ra, mapping, index, false, req_count)
}

/// Readahead for a read or fault that found the page at `index` marked
/// `PG_readahead`, wanting `req_count` pages from there (Linux
/// `page_cache_async_ra`). Nothing when readahead is off or the page is
/// under writeback (`PG_readahead` shares its bit with `PG_reclaim`);
/// otherwise the caller clears the mark ([`Readahead::clear_readahead`])
/// and on-demand readahead runs. `FMODE_RANDOM` does not stop it.
pub fn page_cache_async_ra<C: RaCache + ?Sized>(
    ra: &mut FileRaState,
    mapping: &RaMapping<'_, C>,
    index: u64,
    req_count: u64,
    writeback: bool,
) -> Readahead {
    if ra.ra_pages == 0 || writeback {
        return Readahead::NONE;
    }
    Readahead { clear_readahead: true, ..ondemand_readahead(ra, mapping, index, true, req_count) }
}

/// Reads `nr_to_read` pages from `index` whatever the window, capped at
/// `max(io_pages, ra_pages)` and handed out in 2 MiB chunks (Linux
/// `force_page_cache_ra`). The window is left alone and nothing is marked.
pub fn force_page_cache_ra<C: RaCache + ?Sized>(
    ra: &FileRaState,
    mapping: &RaMapping<'_, C>,
    index: u64,
    nr_to_read: u64,
) -> Readahead {
    let max_pages = mapping.bdi.io_pages.max(ra.ra_pages);
    let nr = nr_to_read.min(max_pages);
    if nr == 0 {
        return Readahead::NONE;
    }
    let read = RaWindow { start: index, size: nr, async_size: 0 };
    Readahead {
        event: Some(RaEvent { kind: RaKind::Forced, marker: false, index, req_size: nr_to_read, window: read }),
        requests: RaRequests { index, left: nr, chunk: FORCE_RA_CHUNK_PAGES, lookahead: 0, nr_pages: mapping.nr_pages },
        clear_readahead: false,
    }
}

/// `POSIX_FADV_WILLNEED` on `len` bytes at `offset` (Linux
/// `generic_fadvise`), which also serves `readahead(2)` and
/// `MADV_WILLNEED` (file offset of the range, its length): forced
/// readahead of the pages holding the range's first to last byte. A
/// length of 0, or a range running past the largest file offset, means up
/// to that offset. The caller has rejected a negative length (`EINVAL`);
/// `offset` is the bits of Linux's `loff_t`, and a negative one reads
/// nothing, as in Linux.
pub fn fadvise_willneed<C: RaCache + ?Sized>(
    ra: &FileRaState,
    mapping: &RaMapping<'_, C>,
    offset: u64,
    len: u64,
) -> Readahead {
    let endbyte = match offset.checked_add(len) {
        // end >= len >= 1.
        Some(end) if len != 0 && end <= LLONG_MAX => end - 1,
        _ => LLONG_MAX,
    };
    let start_index = offset >> PAGE_SHIFT;
    let end_index = endbyte >> PAGE_SHIFT;
    // Linux computes the count modulo 2^64 and reads 0 as "all of them";
    // a start past the end wraps to a count that EOF clamps away.
    let nrpages = match end_index.wrapping_sub(start_index).wrapping_add(1) {
        0 => u64::MAX,
        n => n,
    };
    force_page_cache_ra(ra, mapping, start_index, nrpages)
}

/// The readahead modes of `fadvise` (the others are not about readahead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FadviseAdvice {
    /// `POSIX_FADV_NORMAL`: the device's window, on-demand readahead.
    Normal,
    /// `POSIX_FADV_RANDOM`: a miss reads only what was asked for.
    Random,
    /// `POSIX_FADV_SEQUENTIAL`: twice the device's window.
    Sequential,
}

/// Applies a readahead mode of `fadvise` to a file on a device with limits
/// `bdi` (Linux `generic_fadvise`).
pub fn fadvise(ra: &mut FileRaState, bdi: RaLimits, advice: FadviseAdvice) {
    match advice {
        FadviseAdvice::Normal => {
            ra.ra_pages = bdi.ra_pages;
            ra.random = false;
        }
        FadviseAdvice::Random => ra.random = true,
        FadviseAdvice::Sequential => {
            ra.ra_pages = bdi.ra_pages.saturating_mul(2);
            ra.random = false;
        }
    }
}

/// A file VMA's readahead advice: Linux's `VM_SEQ_READ` and `VM_RAND_READ`
/// flags, which `MADV_SEQUENTIAL` and `MADV_RANDOM` set (each clearing the
/// other) and `MADV_NORMAL` clears.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VmaRaAdvice {
    /// Neither flag: read-around, unless faults mostly miss.
    #[default]
    Normal,
    /// `VM_SEQ_READ`: sequential readahead of `ra_pages`.
    Sequential,
    /// `VM_RAND_READ`: no readahead.
    Random,
}

/// Readahead for a page fault that found no page at `index` (a major
/// fault; Linux `do_sync_mmap_readahead`). With `VM_RAND_READ` or
/// readahead off, nothing. With `VM_SEQ_READ`, sync readahead of
/// `ra_pages`. Otherwise the miss is counted, and unless misses outnumber
/// hits by more than [`MMAP_LOTSAMISS`], the window is read around the
/// fault: `ra_pages` pages from `index - ra_pages / 2` (from 0 near the
/// start), the last quarter asynchronous.
pub fn do_sync_mmap_readahead<C: RaCache + ?Sized>(
    ra: &mut FileRaState,
    mapping: &RaMapping<'_, C>,
    advice: VmaRaAdvice,
    index: u64,
) -> Readahead {
    if advice == VmaRaAdvice::Random || ra.ra_pages == 0 {
        return Readahead::NONE;
    }
    if advice == VmaRaAdvice::Sequential {
        return page_cache_sync_ra(ra, mapping, index, ra.ra_pages);
    }

    if ra.mmap_miss < MMAP_LOTSAMISS * 10 {
        ra.mmap_miss += 1;
    }
    if ra.mmap_miss > MMAP_LOTSAMISS {
        return Readahead::NONE;
    }

    // Linux takes max(0, index - ra_pages / 2) as a signed long, which is
    // this for every index a file has.
    ra.start = index.saturating_sub(ra.ra_pages / 2);
    ra.size = ra.ra_pages;
    ra.async_size = ra.ra_pages / 4;
    Readahead::window(RaKind::ReadAround, false, index, ra.ra_pages, ra.window(), mapping)
}

/// Readahead for a page fault that found the page at `index` cached (a
/// minor fault, first try; Linux `do_async_mmap_readahead`): with
/// `VM_RAND_READ` or readahead off, nothing; otherwise the hit is counted
/// against `mmap_miss`, and if the page is marked `PG_readahead`
/// (`readahead_mark`), async readahead of `ra_pages` runs.
pub fn do_async_mmap_readahead<C: RaCache + ?Sized>(
    ra: &mut FileRaState,
    mapping: &RaMapping<'_, C>,
    advice: VmaRaAdvice,
    index: u64,
    readahead_mark: bool,
    writeback: bool,
) -> Readahead {
    if advice == VmaRaAdvice::Random || ra.ra_pages == 0 {
        return Readahead::NONE;
    }
    ra.mmap_miss = ra.mmap_miss.saturating_sub(1);
    if !readahead_mark {
        return Readahead::NONE;
    }
    page_cache_async_ra(ra, mapping, index, ra.ra_pages, writeback)
}

/// Counts `nr_pages` cached pages that fault-around walked as mmap hits
/// (the `mmap_miss` part of Linux 6.1's `filemap_map_pages`, which counts
/// every up-to-date page it finds in the range, mapped before or not).
pub fn filemap_map_pages(ra: &mut FileRaState, nr_pages: u64) {
    let hits = u32::try_from(nr_pages).unwrap_or(u32::MAX);
    ra.mmap_miss = ra.mmap_miss.saturating_sub(hits);
}

#[cfg(test)]
mod tests;
