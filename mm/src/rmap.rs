//! Page-to-mapping bookkeeping (Linux `mm/rmap.c`, the counting half).
//!
//! Every user page table entry that maps a page counts in the page's
//! `_mapcount`, and the page's `mapping` and `index` say what it belongs
//! to: anonymous pages carry [`PAGE_MAPPING_ANON`] and their linear index
//! in the VMA (Linux `linear_page_index`); private copies of file data
//! carry no mapping and the file page index.
//!
//! The node state counts mapped pages as Linux's rmap functions do:
//! [`NodeStatItem::NrAnonMapped`] (`nr_anon_pages`) and
//! [`NodeStatItem::NrFileMapped`] (`nr_mapped`) go up when a page of their
//! kind gets its first mapping and down when its last goes, and a mapped
//! file copy that becomes anonymous ([`page_make_anon`]) moves from one to
//! the other. Invariant: each counter equals the number of pages of its
//! kind whose `_mapcount` says they are mapped.
//!
//! Differences: there is no `anon_vma` yet, so a page cannot be traced
//! back to the page tables that map it directly; [`crate::migrate`] walks
//! every address space instead, and reclaim will need `anon_vma`. The anon
//! marker stands alone in `mapping`. Anonymous pages are
//! marked `PG_swapbacked` as in Linux, which is how [`crate::memory`] tells
//! anonymous from file pages when it counts RSS.

#![forbid(unsafe_code)]

use crate::page::Page;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::vmstat::NodeStatItem;

/// Low bit of `page->mapping` marking an anonymous page (Linux
/// `PAGE_MAPPING_ANON`).
pub const PAGE_MAPPING_ANON: u64 = 1;

/// The mapped-pages counter of a page's kind.
fn mapped_item(page: &Page) -> NodeStatItem {
    if page_anon(page) { NodeStatItem::NrAnonMapped } else { NodeStatItem::NrFileMapped }
}

/// Counts one more mapping of `page`, and the page itself if this is its
/// first.
fn add_mapping(pgdat: &PgData<'_>, page: &Page) {
    if page.inc_mapcount() {
        pgdat.mod_node_page_state(mapped_item(page), 1);
    }
}

/// A new anonymous page gets its first mapping (Linux
/// `folio_add_new_anon_rmap`).
pub fn page_add_new_anon_rmap(pgdat: &PgData<'_>, page: &Page, index: u64) {
    page.set_mapping(PAGE_MAPPING_ANON);
    page.set_index(index);
    page.set(PageFlags::SWAPBACKED);
    add_mapping(pgdat, page);
}

/// A new private copy of file data gets its first mapping (Linux
/// `folio_add_file_rmap_pte` for a page-cache page; ours is not in a cache).
pub fn page_add_file_rmap(pgdat: &PgData<'_>, page: &Page, index: u64) {
    page.set_index(index);
    add_mapping(pgdat, page);
}

/// A private file page written for the first time becomes anonymous
/// (what Linux's COW copy of a page-cache page yields); if it is mapped it
/// moves from `nr_mapped` to `nr_anon_pages`.
pub fn page_make_anon(pgdat: &PgData<'_>, page: &Page, index: u64) {
    let moves = !page_anon(page) && page.mapcount() > 0;
    page.set_mapping(PAGE_MAPPING_ANON);
    page.set_index(index);
    page.set(PageFlags::SWAPBACKED);
    if moves {
        pgdat.mod_node_page_state(NodeStatItem::NrFileMapped, -1);
        pgdat.mod_node_page_state(NodeStatItem::NrAnonMapped, 1);
    }
}

/// Whether a page is anonymous (Linux `PageAnon`).
pub fn page_anon(page: &Page) -> bool {
    page.mapping() & PAGE_MAPPING_ANON != 0
}

/// One more page table maps the page (fork; Linux `folio_dup_file_rmap_pte`
/// / `folio_try_dup_anon_rmap_pte`).
pub fn page_dup_rmap(pgdat: &PgData<'_>, page: &Page) {
    add_mapping(pgdat, page);
}

/// One page table less maps the page (Linux `folio_remove_rmap_pte`); the
/// last one takes the page out of its mapped-pages counter.
pub fn page_remove_rmap(pgdat: &PgData<'_>, page: &Page) {
    if page.dec_mapcount() {
        pgdat.mod_node_page_state(mapped_item(page), -1);
    }
}
