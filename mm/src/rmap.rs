//! Page-to-mapping bookkeeping (Linux `mm/rmap.c`, the counting half).
//!
//! Every user page table entry that maps a page counts in the page's
//! `_mapcount`, and the page's `mapping` and `index` say what it belongs
//! to: anonymous pages carry [`PAGE_MAPPING_ANON`] and their linear index
//! in the VMA (Linux `linear_page_index`); private copies of file data
//! carry no mapping and the file page index.
//!
//! Differences: there is no `anon_vma` yet, so a page cannot be traced
//! back to the page tables that map it (reclaim and migration will need
//! it); the anon marker stands alone in `mapping`. Anonymous pages are
//! marked `PG_swapbacked` as in Linux, which is how [`crate::memory`] tells
//! anonymous from file pages when it counts RSS.

use crate::page::Page;
use crate::page_flags::PageFlags;

/// Low bit of `page->mapping` marking an anonymous page (Linux
/// `PAGE_MAPPING_ANON`).
pub const PAGE_MAPPING_ANON: u64 = 1;

/// A new anonymous page gets its first mapping (Linux
/// `folio_add_new_anon_rmap`).
pub fn page_add_new_anon_rmap(page: &Page, index: u64) {
    page.set_mapping(PAGE_MAPPING_ANON);
    page.set_index(index);
    page.set(PageFlags::SWAPBACKED);
    page.inc_mapcount();
}

/// A new private copy of file data gets its first mapping (Linux
/// `folio_add_file_rmap_pte` for a page-cache page; ours is not in a cache).
pub fn page_add_file_rmap(page: &Page, index: u64) {
    page.set_index(index);
    page.inc_mapcount();
}

/// A private file page written for the first time becomes anonymous
/// (what Linux's COW copy of a page-cache page yields).
pub fn page_make_anon(page: &Page, index: u64) {
    page.set_mapping(PAGE_MAPPING_ANON);
    page.set_index(index);
    page.set(PageFlags::SWAPBACKED);
}

/// Whether a page is anonymous (Linux `PageAnon`).
pub fn page_anon(page: &Page) -> bool {
    page.mapping() & PAGE_MAPPING_ANON != 0
}

/// One more page table maps the page (fork; Linux `folio_dup_file_rmap_pte`
/// / `folio_try_dup_anon_rmap_pte`).
pub fn page_dup_rmap(page: &Page) {
    page.inc_mapcount();
}

/// One page table less maps the page (Linux `folio_remove_rmap_pte`).
pub fn page_remove_rmap(page: &Page) {
    page.dec_mapcount();
}
