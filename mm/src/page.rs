//! The page descriptor and the memory map (Linux `include/linux/mm_types.h`
//! `struct page`, `include/linux/mmzone.h` pageblock flags, and the FLATMEM
//! `mem_map` of `include/asm-generic/memory_model.h`).
//!
//! Every physical frame has one [`Page`]. The descriptors form one array,
//! [`MemMap`], indexed by pfn, so pfn -> page, page -> pfn and pfn -> direct
//! map address are O(1) arithmetic (Linux `pfn_to_page`, `page_to_pfn`,
//! `page_address`). Beside it sits one byte per pageblock (2 MiB, order
//! [`PAGEBLOCK_ORDER`]) holding the block's migratetype and the compaction
//! skip bit (Linux `pageblock_flags`, the "usemap").
//!
//! # Layout and size
//! A `Page` is 48 bytes (Linux's is 64): flags (4), `_refcount` (4),
//! `_mapcount` (4), zone (1), order (1), two 32-bit `lru` links (8, pfns
//! rather than pointers), `private` (8), `mapping` (8) and `index` (8). One
//! descriptor per 4 KiB frame costs 1.2% of memory.
//!
//! # Concurrency
//! The descriptors are shared by all CPUs. Every mutable field is an atomic
//! accessed with relaxed ordering: ownership, not the descriptor, decides who
//! may change a field (the zone lock for a free page's order and links, the
//! pcp lock for a page on a per-cpu list, the owner for an allocated page),
//! and those locks provide the ordering. On x86_64 a relaxed atomic load or
//! store is a plain `mov`, so this costs nothing and needs no `unsafe`.
//!
//! # Differences from Linux
//! - FLATMEM, not SPARSEMEM_VMEMMAP: the array covers every pfn from the
//!   first to the last present frame, holes included. Mapping only the parts
//!   of a virtual array that describe memory needs the kernel's own page
//!   tables (issue 5).
//! - `lru` links are 32-bit pfns, which limits physical memory to 16 TiB.
//! - A page keeps the order it was allocated with in `order` (Linux keeps it
//!   only for compound pages), so freeing with the wrong order is caught and
//!   `put_page` can free a non-compound block.

#![forbid(unsafe_code)]

use core::fmt;
use core::sync::atomic::{
    AtomicI32, AtomicU8, AtomicU32, AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed,
    Ordering::Release,
};

use crate::addr::Pfn;
use crate::mmzone::{MigrateType, ZoneType};
use crate::page_flags::PageFlags;

/// log2 of the pages in a pageblock (Linux `pageblock_order`: the PMD order
/// on x86_64).
pub const PAGEBLOCK_ORDER: u32 = 9;
/// Pages per pageblock (Linux `pageblock_nr_pages`).
pub const PAGEBLOCK_NR_PAGES: u64 = 1 << PAGEBLOCK_ORDER;

/// The link value meaning "no page" in an `lru` link.
pub(crate) const NIL: u32 = u32::MAX;

/// Pageblock flag bits: the low three hold the migratetype; compaction's
/// skip bit (Linux `PB_migrate_skip`) will take bit 3.
const PB_MIGRATETYPE_MASK: u8 = 0b111;

/// The descriptor of one physical page frame (Linux `struct page`).
#[doc(alias = "struct page")]
#[repr(C)]
pub struct Page {
    flags: AtomicU32,
    refcount: AtomicI32,
    mapcount: AtomicI32,
    zone: u8,
    order: AtomicU8,
    /// Intrusive list link, `[next, prev]` as pfns (Linux `lru`). A free page
    /// is linked on a free list, a page on a per-cpu list there; later LRU
    /// and slab lists use it. A tail page keeps its head's pfn in `next`.
    pub(crate) lru: [AtomicU32; 2],
    private: AtomicU64,
    mapping: AtomicU64,
    index: AtomicU64,
}

const _: () = assert!(core::mem::size_of::<Page>() == 48);

impl Page {
    /// A reserved page of `zone`, the state every frame starts in before
    /// memblock hands free memory to the buddy allocator (Linux
    /// `__init_single_page` followed by `SetPageReserved`): one reference,
    /// no mappings (`_mapcount` -1), no links.
    pub const fn new_reserved(zone: ZoneType) -> Page {
        Page {
            flags: AtomicU32::new(PageFlags::RESERVED.bits()),
            refcount: AtomicI32::new(1),
            mapcount: AtomicI32::new(-1),
            zone: zone as u8,
            order: AtomicU8::new(0),
            lru: [AtomicU32::new(NIL), AtomicU32::new(NIL)],
            private: AtomicU64::new(0),
            mapping: AtomicU64::new(0),
            index: AtomicU64::new(0),
        }
    }

    /// The page's flags.
    pub fn flags(&self) -> PageFlags {
        PageFlags::from_bits_retain(self.flags.load(Relaxed))
    }

    /// Whether all of `flags` are set.
    pub fn test(&self, flags: PageFlags) -> bool {
        self.flags().contains(flags)
    }

    /// Sets `flags` atomically (Linux `SetPageX`).
    pub fn set(&self, flags: PageFlags) {
        self.flags.fetch_or(flags.bits(), Relaxed);
    }

    /// Clears `flags` atomically (Linux `ClearPageX`).
    pub fn clear(&self, flags: PageFlags) {
        self.flags.fetch_and(!flags.bits(), Relaxed);
    }

    /// Sets `flags` and says whether any was set before (Linux
    /// `TestSetPageX`, a full barrier there as here).
    pub fn test_and_set(&self, flags: PageFlags) -> bool {
        self.flags.fetch_or(flags.bits(), AcqRel) & flags.bits() != 0
    }

    /// Clears `flags` and says whether any was set before (Linux
    /// `TestClearPageX`).
    pub fn test_and_clear(&self, flags: PageFlags) -> bool {
        self.flags.fetch_and(!flags.bits(), AcqRel) & flags.bits() != 0
    }

    /// Sets `flags` and says whether any was set before, with acquire
    /// ordering (Linux `test_and_set_bit_lock`, what `folio_trylock` is).
    pub(crate) fn test_and_set_lock(&self, flags: PageFlags) -> bool {
        self.flags.fetch_or(flags.bits(), Acquire) & flags.bits() != 0
    }

    /// Sets `PG_waiters` if `PG_locked` is set, in one atomic step, and
    /// says whether it was (Linux sets `PG_waiters` under the wait queue's
    /// lock for the same reason): a waiter never marks a page that was
    /// unlocked meanwhile, and perhaps freed.
    pub(crate) fn set_waiters_if_locked(&self) -> bool {
        let (locked, waiters) = (PageFlags::LOCKED.bits(), PageFlags::WAITERS.bits());
        self.flags.try_update(Acquire, Acquire, |f| (f & locked != 0).then_some(f | waiters)).is_ok()
    }

    /// Clears `flags` with release ordering and returns the flags before
    /// (Linux `clear_bit_unlock` with the `PG_waiters` test of
    /// `folio_unlock`).
    pub(crate) fn clear_unlock(&self, flags: PageFlags) -> PageFlags {
        PageFlags::from_bits_retain(self.flags.fetch_and(!flags.bits(), Release))
    }

    /// Replaces all flags.
    pub(crate) fn set_flags(&self, flags: PageFlags) {
        self.flags.store(flags.bits(), Relaxed);
    }

    /// The zone the frame belongs to (Linux `page_zonenum`).
    pub fn zone(&self) -> ZoneType {
        ZoneType::from_index(self.zone as usize).unwrap_or(ZoneType::Normal)
    }

    /// The reference count (Linux `page_ref_count`).
    pub fn refcount(&self) -> i32 {
        self.refcount.load(Relaxed)
    }

    pub(crate) fn set_refcount(&self, count: i32) {
        self.refcount.store(count, Relaxed);
    }

    /// Takes a reference (Linux `get_page`).
    pub fn get(&self) {
        self.refcount.fetch_add(1, Relaxed);
    }

    /// Takes a reference unless the page has none, i.e. is free or being
    /// freed (Linux `folio_try_get`, `get_page_unless_zero`): how a
    /// scanner that found the page by its frame number holds it.
    pub fn try_get(&self) -> bool {
        self.refcount.try_update(Acquire, Relaxed, |count| (count > 0).then_some(count + 1)).is_ok()
    }

    /// Drops a reference; true if it was the last (Linux
    /// `put_page_testzero`). Release/acquire so the last holder sees every
    /// other holder's writes before the page is freed.
    pub(crate) fn put_testzero(&self) -> bool {
        if self.refcount.fetch_sub(1, core::sync::atomic::Ordering::Release) == 1 {
            core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
            true
        } else {
            false
        }
    }

    /// How many page tables map this page (Linux `page_mapcount`: the stored
    /// `_mapcount` plus one).
    pub fn mapcount(&self) -> i32 {
        self.mapcount.load(Relaxed) + 1
    }

    /// Counts one more page table mapping the page (Linux
    /// `atomic_inc(&page->_mapcount)`); true if it was the first.
    pub(crate) fn inc_mapcount(&self) -> bool {
        self.mapcount.fetch_add(1, Relaxed) == -1
    }

    /// Counts one page table less; true if it was the last.
    pub(crate) fn dec_mapcount(&self) -> bool {
        self.mapcount.fetch_sub(1, Relaxed) == 0
    }

    /// The raw `_mapcount` field, -1 when unmapped.
    pub(crate) fn raw_mapcount(&self) -> i32 {
        self.mapcount.load(Relaxed)
    }

    /// For a free block's first page, its buddy order; for an allocated
    /// block's first page, the order it was allocated with.
    pub fn order(&self) -> u32 {
        u32::from(self.order.load(Relaxed))
    }

    pub(crate) fn set_order(&self, order: u32) {
        self.order.store(order as u8, Relaxed);
    }

    /// Filesystem or swap private data (Linux `page->private`).
    pub fn private(&self) -> u64 {
        self.private.load(Relaxed)
    }

    /// Sets `private` (Linux `set_page_private`).
    pub fn set_private(&self, value: u64) {
        self.private.store(value, Relaxed);
    }

    /// The owning `address_space` or `anon_vma`, as an opaque word (Linux
    /// `page->mapping`); 0 when none.
    pub fn mapping(&self) -> u64 {
        self.mapping.load(Relaxed)
    }

    /// Sets `mapping`.
    pub fn set_mapping(&self, value: u64) {
        self.mapping.store(value, Relaxed);
    }

    /// The page's offset within its mapping, in pages (Linux `page->index`).
    pub fn index(&self) -> u64 {
        self.index.load(Relaxed)
    }

    /// Sets `index`.
    pub fn set_index(&self, value: u64) {
        self.index.store(value, Relaxed);
    }

    pub(crate) fn link(&self, which: usize) -> u32 {
        self.lru[which].load(Relaxed)
    }

    pub(crate) fn set_link(&self, which: usize, pfn: u32) {
        self.lru[which].store(pfn, Relaxed);
    }
}

impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refcount:{} mapcount:{} mapping:{:#x} index:{:#x} order:{} zone:{} flags:{:?}",
            self.refcount(),
            self.mapcount(),
            self.mapping(),
            self.index(),
            self.order(),
            self.zone().name(),
            self.flags()
        )
    }
}

/// Why a memory map cannot be built over the given arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemMapError {
    /// The first pfn is not pageblock aligned.
    Unaligned {
        /// The first pfn.
        start_pfn: Pfn,
    },
    /// The pageblock array does not cover the page array.
    PageblockArrayTooSmall {
        /// Pageblocks needed.
        needed: usize,
        /// Pageblocks given.
        given: usize,
    },
    /// The pfns do not fit the 32-bit list links.
    TooLarge {
        /// The pfn past the end.
        end_pfn: Pfn,
    },
}

impl fmt::Display for MemMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemMapError::Unaligned { start_pfn } => {
                write!(f, "memory map start {start_pfn:?} is not pageblock aligned")
            }
            MemMapError::PageblockArrayTooSmall { needed, given } => {
                write!(f, "pageblock array has {given} entries, {needed} needed")
            }
            MemMapError::TooLarge { end_pfn } => write!(f, "memory map end {end_pfn:?} exceeds 32-bit pfn links"),
        }
    }
}

/// Bytes of pageblock flags needed to describe `nr_pages` pages.
pub const fn pageblock_flags_len(nr_pages: u64) -> usize {
    nr_pages.div_ceil(PAGEBLOCK_NR_PAGES) as usize
}

/// The array of page descriptors plus the pageblock flags (Linux `mem_map`
/// and `pageblock_flags`).
pub struct MemMap<'a> {
    start_pfn: u64,
    pages: &'a [Page],
    pageblock_flags: &'a [AtomicU8],
}

impl<'a> MemMap<'a> {
    /// A memory map whose `pages[0]` describes `start_pfn`. Every pageblock
    /// starts out movable, as Linux's `memmap_init` leaves them.
    pub fn new(start_pfn: Pfn, pages: &'a [Page], pageblock_flags: &'a [AtomicU8]) -> Result<Self, MemMapError> {
        if !start_pfn.as_u64().is_multiple_of(PAGEBLOCK_NR_PAGES) {
            return Err(MemMapError::Unaligned { start_pfn });
        }
        let end_pfn = start_pfn.as_u64() + pages.len() as u64;
        if end_pfn >= u64::from(NIL) {
            return Err(MemMapError::TooLarge { end_pfn: Pfn::new(end_pfn) });
        }
        let needed = pageblock_flags_len(pages.len() as u64);
        if pageblock_flags.len() < needed {
            return Err(MemMapError::PageblockArrayTooSmall { needed, given: pageblock_flags.len() });
        }
        for block in pageblock_flags {
            block.store(MigrateType::Movable as u8, Relaxed);
        }
        Ok(MemMap { start_pfn: start_pfn.as_u64(), pages, pageblock_flags })
    }

    /// The first pfn described.
    pub fn start_pfn(&self) -> Pfn {
        Pfn::new(self.start_pfn)
    }

    /// The pfn past the last described.
    pub fn end_pfn(&self) -> Pfn {
        Pfn::new(self.start_pfn + self.pages.len() as u64)
    }

    /// The descriptor of `pfn`, if the map covers it (Linux `pfn_to_page`
    /// with `pfn_valid`).
    pub fn pfn_to_page(&self, pfn: Pfn) -> Option<&'a Page> {
        let index = pfn.as_u64().checked_sub(self.start_pfn)?;
        self.pages.get(usize::try_from(index).ok()?)
    }

    /// The pfn a descriptor of this map describes (Linux `page_to_pfn`).
    ///
    /// # Panics
    /// If `page` is not an element of this map: a caller bug.
    pub fn page_to_pfn(&self, page: &Page) -> Pfn {
        let offset = (page as *const Page as usize).wrapping_sub(self.pages.as_ptr() as usize);
        let index = offset / core::mem::size_of::<Page>();
        assert!(
            index < self.pages.len() && offset.is_multiple_of(core::mem::size_of::<Page>()),
            "page descriptor outside the memory map"
        );
        Pfn::new(self.start_pfn + index as u64)
    }

    /// The descriptor of a pfn the caller knows is covered (a link read from
    /// a list, or a buddy within a zone).
    pub(crate) fn page(&self, pfn: u64) -> &'a Page {
        &self.pages[(pfn - self.start_pfn) as usize]
    }

    fn block(&self, pfn: u64) -> &AtomicU8 {
        &self.pageblock_flags[((pfn - self.start_pfn) / PAGEBLOCK_NR_PAGES) as usize]
    }

    /// The migratetype of the pageblock holding `pfn` (Linux
    /// `get_pfnblock_migratetype`).
    pub fn pageblock_migratetype(&self, pfn: Pfn) -> MigrateType {
        let bits = self.block(pfn.as_u64()).load(Relaxed) & PB_MIGRATETYPE_MASK;
        MigrateType::from_index(usize::from(bits)).unwrap_or(MigrateType::Movable)
    }

    /// Sets the migratetype of the pageblock holding `pfn` (Linux
    /// `set_pageblock_migratetype`). Callers keep free pages on the free
    /// list of their pageblock's type, so this runs under the zone lock
    /// with the pages moved alongside.
    pub(crate) fn set_pageblock_migratetype(&self, pfn: u64, mt: MigrateType) {
        let block = self.block(pfn);
        let old = block.load(Relaxed);
        block.store((old & !PB_MIGRATETYPE_MASK) | mt as u8, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(n: usize) -> Vec<Page> {
        (0..n).map(|_| Page::new_reserved(ZoneType::Dma32)).collect()
    }

    #[test]
    fn pfn_and_page_convert_both_ways() {
        let pages = pages(1024);
        let blocks: Vec<AtomicU8> = (0..2).map(|_| AtomicU8::new(0)).collect();
        let map = MemMap::new(Pfn::new(512), &pages, &blocks).unwrap();
        let page = map.pfn_to_page(Pfn::new(700)).unwrap();
        assert_eq!(map.page_to_pfn(page), Pfn::new(700));
        assert!(map.pfn_to_page(Pfn::new(511)).is_none());
        assert!(map.pfn_to_page(Pfn::new(512 + 1024)).is_none());
        assert_eq!(map.end_pfn(), Pfn::new(1536));
    }

    #[test]
    fn memmap_rejects_bad_geometry() {
        let pages = pages(1024);
        let blocks: Vec<AtomicU8> = (0..2).map(|_| AtomicU8::new(0)).collect();
        assert_eq!(
            MemMap::new(Pfn::new(3), &pages, &blocks).err(),
            Some(MemMapError::Unaligned { start_pfn: Pfn::new(3) })
        );
        assert_eq!(
            MemMap::new(Pfn::new(0), &pages, &blocks[..1]).err(),
            Some(MemMapError::PageblockArrayTooSmall { needed: 2, given: 1 })
        );
    }

    #[test]
    fn pageblocks_start_movable_and_change_one_block_at_a_time() {
        let pages = pages(1024);
        let blocks: Vec<AtomicU8> = (0..2).map(|_| AtomicU8::new(0xff)).collect();
        let map = MemMap::new(Pfn::new(0), &pages, &blocks).unwrap();
        assert_eq!(map.pageblock_migratetype(Pfn::new(600)), MigrateType::Movable);
        map.set_pageblock_migratetype(600, MigrateType::Unmovable);
        assert_eq!(map.pageblock_migratetype(Pfn::new(512)), MigrateType::Unmovable);
        assert_eq!(map.pageblock_migratetype(Pfn::new(511)), MigrateType::Movable);
    }

    #[test]
    fn new_page_is_reserved_with_one_reference_and_no_mappings() {
        let page = Page::new_reserved(ZoneType::Normal);
        assert!(page.test(PageFlags::RESERVED));
        assert_eq!(page.refcount(), 1);
        assert_eq!(page.mapcount(), 0);
        assert_eq!(page.zone(), ZoneType::Normal);
    }
}
