//! Page-to-mapping bookkeeping (Linux `mm/rmap.c`, the counting half).
//!
//! Every user page table entry that maps a page counts in the page's
//! `_mapcount`, and the page's `mapping` and `index` say what it belongs
//! to: anonymous pages carry [`PAGE_MAPPING_ANON`] and their linear index
//! in the VMA (Linux `linear_page_index`); a file's pages carry their
//! cache's `mapping` ([`crate::filemap::MappingId`]) and file page index,
//! or, handed out by a file without a cache, no mapping and the file page
//! index.
//!
//! The node state counts mapped pages as Linux's rmap functions do:
//! [`NodeStatItem::NrAnonMapped`] (`nr_anon_pages`) and
//! [`NodeStatItem::NrFileMapped`] (`nr_mapped`) go up when a page of their
//! kind gets its first mapping and down when its last goes; a page never
//! changes kind while mapped (a private write to a file's page maps an
//! anonymous copy). Invariant: each counter equals the number of pages of
//! its kind whose `_mapcount` says they are mapped.
//!
//! Differences: there is no `anon_vma` yet, so a page cannot be traced
//! back to the page tables that map it directly; [`crate::migrate`] walks
//! every address space instead, and reclaim will need `anon_vma`. The anon
//! marker stands alone in `mapping`. Anonymous pages are
//! marked `PG_swapbacked` as in Linux, as shmem's page-cache pages are
//! ([`crate::filemap`]); [`crate::memory`] counts RSS by the anon marker
//! first, then by `PG_swapbacked` (Linux `mm_counter`).

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

/// A file's page gets one more mapping (Linux `folio_add_file_rmap_pte`).
/// A page-cache page already carries its `mapping` and `index`; a page no
/// cache holds (a file without a cache hands out copies) gets `index`, so
/// that migration can find its pte.
pub fn page_add_file_rmap(pgdat: &PgData<'_>, page: &Page, index: u64) {
    if page.mapping() == 0 {
        page.set_index(index);
    }
    add_mapping(pgdat, page);
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
