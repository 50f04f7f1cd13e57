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
//! An anonymous page's `mapping` names the [`AnonVma`] of the VMA it was
//! made in, with the [`PAGE_MAPPING_ANON`] bit (see the `anon_vma`
//! submodule's doc below, re-exported here, for the hierarchy, its
//! invariants and its lock).
//!
//! Differences: anonymous pages are
//! marked `PG_swapbacked` as in Linux, as shmem's page-cache pages are
//! ([`crate::filemap`]); [`crate::memory`] counts RSS by the anon marker
//! first, then by `PG_swapbacked` (Linux `mm_counter`).

#![deny(unsafe_code)]

mod anon_vma;
mod walk;

pub use anon_vma::{AnonVma, AnonVmaAlloc, AnonVmaChain, AnonVmaLock, AnonVmaNoMem, AnonVmaPin, AnonVmaPtr, AvcCopy};
pub(crate) use anon_vma::{
    VmaAnonLink, anon_vma_adopt, anon_vma_clone, anon_vma_fork, anon_vma_prepare, anon_vma_root, anon_vma_update,
    check_chain, folio_get_anon_vma, is_mergeable_anon_vma, unlink_anon_vmas,
};
#[cfg(test)]
pub(crate) use anon_vma::{anon_vma_counts, chain_of};
pub(crate) use walk::{MmIds, TlbBatch, remove_migration_pte, rmap_mm_ids, rmap_walk, try_to_migrate_one};
pub use walk::{RMAP_MMS, Referenced, RmapMms, WithMms, folio_referenced, rmap_ptes, try_to_unmap};

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

/// A new anonymous page gets its first mapping, in a VMA whose
/// `anon_vma` is `anon_vma` (Linux `folio_add_new_anon_rmap`): the page's
/// `mapping` names it before the mapping is counted, which is what a walk
/// reads in that order.
pub fn page_add_new_anon_rmap(pgdat: &PgData<'_>, page: &Page, anon_vma: AnonVmaPtr, index: u64) {
    page.set_mapping(anon_vma.mapping());
    page.set_index(index);
    core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
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

#[cfg(test)]
pub(crate) mod tests;
