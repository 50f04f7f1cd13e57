//! Page flags: the state bits of a page descriptor (Linux
//! `include/linux/page-flags.h`).
//!
//! The names and meanings are Linux's `PG_*` flags. Differences:
//! - Linux 6.x keeps "page types" (buddy, slab, page table, offline) in a
//!   separate `page_type` word so they cannot be confused with mapcounts; we
//!   keep them as ordinary flag bits (`BUDDY`, `SLAB`, `TABLE`) since our
//!   mapcount has its own field.
//! - Linux marks a tail page by bit 0 of `compound_head`; we use a `TAIL` flag
//!   and keep the head's pfn in the tail's `lru` link, which tails never use.
//! - The zone number, which Linux packs into the top bits of `page->flags`,
//!   is a separate immutable field of [`crate::page::Page`].

#![forbid(unsafe_code)]

use bitflags::bitflags;

bitflags! {
    /// A page's flags (Linux `page->flags`, `enum pageflags`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PageFlags: u32 {
        /// `PG_locked`: the page is locked for I/O or truncation.
        const LOCKED = 1 << 0;
        /// `PG_writeback`: the page is being written back.
        const WRITEBACK = 1 << 1;
        /// `PG_referenced`: recently accessed (LRU second chance).
        const REFERENCED = 1 << 2;
        /// `PG_uptodate`: the contents are valid.
        const UPTODATE = 1 << 3;
        /// `PG_dirty`: the contents differ from backing store.
        const DIRTY = 1 << 4;
        /// `PG_lru`: the page is on an LRU list.
        const LRU = 1 << 5;
        /// `PG_head`: the first page of a compound page.
        const HEAD = 1 << 6;
        /// `PG_active`: on the active LRU list.
        const ACTIVE = 1 << 7;
        /// `PG_workingset`: part of a workload's working set.
        const WORKINGSET = 1 << 8;
        /// `PG_swapcache`: the page is in the swap cache.
        const SWAPCACHE = 1 << 9;
        /// `PG_reserved`: never handed to the allocator (firmware, kernel
        /// image, holes, memblock allocations).
        const RESERVED = 1 << 10;
        /// `PG_private`: `private` holds filesystem data.
        const PRIVATE = 1 << 11;
        /// `PG_reclaim`: to be reclaimed as soon as writeback ends.
        const RECLAIM = 1 << 12;
        /// `PG_swapbacked`: anonymous or shmem memory, backed by swap.
        const SWAPBACKED = 1 << 13;
        /// `PG_unevictable`: on the unevictable LRU.
        const UNEVICTABLE = 1 << 14;
        /// `PG_mlocked`: mapped by an `mlock`ed VMA.
        const MLOCKED = 1 << 15;
        /// Page type "buddy": the first page of a free block in the buddy
        /// allocator; `order` holds its order.
        const BUDDY = 1 << 16;
        /// Page type "slab": owned by a slab cache.
        const SLAB = 1 << 17;
        /// Page type "table": a page-table page.
        const TABLE = 1 << 18;
        /// A tail page of a compound page (Linux: `compound_head` bit 0).
        const TAIL = 1 << 19;
        /// `PG_waiters`: a task sleeps for this page's lock to go, so
        /// unlocking must wake the page's wait queue.
        const WAITERS = 1 << 20;
        /// `PG_readahead`: reaching this page-cache page starts the next
        /// asynchronous readahead window (Linux aliases it to `PG_reclaim`,
        /// which a cache page under readahead never needs; ours has a bit
        /// of its own).
        const READAHEAD = 1 << 21;
        /// `PG_error`: the last write of this swap-cache page to its slot
        /// failed, so the slot is to be marked bad when the page leaves
        /// the swap cache (Linux up to 6.8 set `PG_error` in
        /// `end_swap_bio_write`; see [`crate::swap_state`]).
        const ERROR = 1 << 22;
    }
}

impl PageFlags {
    /// Flags that must be clear when a page is freed (Linux
    /// `PAGE_FLAGS_CHECK_AT_FREE`, plus our page types): a page still on an
    /// LRU, locked, under writeback, mlocked, or owned by slab or page tables
    /// is still in use. `PG_reclaim` may be left over (reclaim's request to
    /// rotate a page whose writeback it waits for), as in Linux.
    pub const CHECK_AT_FREE: PageFlags = PageFlags::LOCKED
        .union(PageFlags::WRITEBACK)
        .union(PageFlags::LRU)
        .union(PageFlags::ACTIVE)
        .union(PageFlags::UNEVICTABLE)
        .union(PageFlags::MLOCKED)
        .union(PageFlags::RESERVED)
        .union(PageFlags::SLAB)
        .union(PageFlags::TABLE)
        .union(PageFlags::BUDDY);

    /// Flags a page leaving the free lists must not carry (Linux
    /// `PAGE_FLAGS_CHECK_AT_PREP`): all of them, since freeing clears them
    /// and taking a block off a free list clears `BUDDY`.
    pub const CHECK_AT_PREP: PageFlags = PageFlags::all();
}
