//! Workingset detection (Linux `mm/workingset.c`): telling, when a page
//! comes back into the page cache, whether it was evicted too early, and
//! activating it at once if it was.
//!
//! # Refault distance
//!
//! The node's file pages sit on two lists ([`crate::swap`]): new pages
//! start on the inactive list, a second access promotes them to the
//! active one, and reclaim ([`crate::vmscan`]) evicts from the inactive
//! list's cold end. A page used again and again, but each time a little
//! after the inactive list has pushed it out, is never promoted: the
//! workload thrashes although the page would fit if the active list gave
//! up some room.
//!
//! The node counts inactive-list ageing in `nonresident_age` (Linux
//! `lruvec->nonresident_age`): every eviction and every activation moves
//! the inactive pages one slot towards the cold end, and adds one
//! ([`workingset_age_nonresident`]). When reclaim evicts a page
//! ([`workingset_eviction`], from `__remove_mapping`), the counter's value
//! is packed into a [`Shadow`] entry that the page cache keeps at the
//! page's index instead of the page. When a page is added at an index
//! holding a shadow ([`workingset_refault`], from `filemap_add_folio`),
//! `nonresident_age - eviction` is the refault distance: how many
//! inactive slots the page missed by. If the distance is no more than the
//! active file list (the workingset size), the page could have stayed had
//! the active list been that much smaller, so it is activated at once
//! (`workingset_activate_file`) to compete with the active pages; the
//! ones that are really used less are then deactivated and evicted
//! instead. Every refault counts in `workingset_refault_file`.
//!
//! A page on the inactive list that was once active carries
//! `PG_workingset` (set by `shrink_active_list` when it deactivates a
//! page); its shadow keeps the bit, and a refault of such a page that is
//! activated counts in `workingset_restore_file` too: the workingset
//! itself is thrashing, not a new one being established.
//!
//! # Shadow entries
//!
//! A [`Shadow`] is a 64-bit word, from the low bit up: whether the page
//! was `PG_workingset` ([`WORKINGSET_SHIFT`] bits), the node
//! ([`NODES_SHIFT`] bits), then the eviction timestamp, the low
//! `64 - EVICTION_SHIFT` bits of `nonresident_age` ([`EVICTION_MASK`]).
//! Distances are computed modulo that width, so the counter may wrap; a
//! shadow lapped by the counter gives a false small distance and one
//! needless activation, as in Linux.
//!
//! # Differences from Linux
//!
//! - **No memcg, no MGLRU.** One lruvec per node, so the shadow holds no
//!   cgroup id (Linux `MEM_CGROUP_ID_SHIFT` bits), and the multi-gen LRU's
//!   `lru_gen_eviction`/`lru_gen_refault` do not exist.
//! - **The whole word.** The page cache keeps typed entries
//!   ([`crate::filemap::CacheEntry`]) rather than tagged pointers, so the
//!   shadow loses no bit to `xa_mk_value`, and 57 bits of timestamp cover
//!   the counter of any memory we can have: Linux's `bucket_order`
//!   (dropping low timestamp bits when memory outgrows them) is always 0
//!   here and does not exist.
//! - **Swap's shadows.** Anonymous (and shmem) pages swapped out leave
//!   their shadow in the swap cache's index
//!   ([`crate::swap_state::delete_from_swap_cache_evicted`]), found when a
//!   swap-in reads the slot (`workingset_refault_anon`,
//!   `workingset_activate_anon`, `workingset_restore_anon`); while swap
//!   has a free slot, the anonymous lists count in the workingset size as
//!   in Linux 6.x. A shadow whose slot is freed stays until the slot is
//!   used again or its area is swapped off (Linux clears it as the slot
//!   is freed, `clear_shadow_from_swap_cache`).
//! - **Shadow nodes are not bounded yet.** Linux keeps the XArray nodes
//!   holding only shadows on a `list_lru` (`workingset_update_node`,
//!   `workingset_nodes`) and a shrinker frees them when they pass 1/8 of
//!   memory's worth of pages (`count_shadow_nodes`, `scan_shadow_nodes`,
//!   `workingset_nodereclaim`). There is no shrinker registry yet, so
//!   shadows here live until their page refaults, their range is
//!   truncated or invalidated (`drop_caches`, `POSIX_FADV_DONTNEED`), or
//!   their file's cache goes (inode eviction): at most one per page of
//!   each cached file's size, in 64-slot nodes freed with their last
//!   entry (see [`crate::xarray`]).
//! - **No PSI.** Linux counts the time a task waits on the lock of a
//!   `PG_workingset` page being read as a memory stall; we have no
//!   pressure-stall accounting.
//!
//! # Locking
//!
//! None of its own: `nonresident_age` is an atomic beside the LRU lists
//! (Linux's is an `atomic_long_t` in the lruvec), read and added to
//! without the list lock. [`workingset_eviction`] runs under the page
//! cache's lock with the page locked; [`workingset_refault`] after the
//! new page joined the cache, still locked and not yet on a list, outside
//! the cache's lock, as Linux's `filemap_add_folio` calls it.

// Its tests free pages they allocated (an unsafe call); the module
// itself has no reason for unsafe.
#![cfg_attr(not(test), forbid(unsafe_code))]

use crate::filemap::folio_test_locked;
use crate::page::Page;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::swap::folio_is_file_lru;
use crate::vmstat::NodeStatItem;

/// Bits of a shadow that say whether the page was `PG_workingset` (Linux
/// `WORKINGSET_SHIFT`).
pub const WORKINGSET_SHIFT: u32 = 1;

/// Bits of a shadow that name the node (Linux `NODES_SHIFT`: x86_64's
/// `CONFIG_NODES_SHIFT` default with NUMA, 64 nodes; we have one).
pub const NODES_SHIFT: u32 = 6;

/// Bits below a shadow's eviction timestamp (Linux `EVICTION_SHIFT`,
/// without the value-entry tag bit and the memcg id).
pub const EVICTION_SHIFT: u32 = WORKINGSET_SHIFT + NODES_SHIFT;

/// The timestamp bits a shadow keeps, and the modulus of refault
/// distances (Linux `EVICTION_MASK`).
pub const EVICTION_MASK: u64 = u64::MAX >> EVICTION_SHIFT;

/// What the page cache keeps at the index of an evicted page: when and
/// where it was evicted, and whether it was part of the workingset (Linux
/// `pack_shadow`'s value entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shadow(u64);

/// A [`Shadow`]'s fields (Linux `unpack_shadow`'s results).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShadowInfo {
    /// The node whose LRU evicted the page.
    pub nid: u32,
    /// The node's `nonresident_age` at the eviction, its low
    /// `64 - EVICTION_SHIFT` bits.
    pub eviction: u64,
    /// Whether the page was `PG_workingset`.
    pub workingset: bool,
}

impl Shadow {
    /// Packs a shadow (Linux `pack_shadow`): `eviction` keeps its low
    /// bits ([`EVICTION_MASK`]), `nid` its low [`NODES_SHIFT`] bits.
    pub const fn pack(nid: u32, eviction: u64, workingset: bool) -> Shadow {
        let node_mask = (1 << NODES_SHIFT) - 1;
        let entry = ((eviction & EVICTION_MASK) << NODES_SHIFT) | (nid as u64 & node_mask);
        Shadow((entry << WORKINGSET_SHIFT) | workingset as u64)
    }

    /// Its fields (Linux `unpack_shadow`).
    pub const fn unpack(self) -> ShadowInfo {
        let workingset = self.0 & ((1 << WORKINGSET_SHIFT) - 1) != 0;
        let entry = self.0 >> WORKINGSET_SHIFT;
        let nid = (entry & ((1 << NODES_SHIFT) - 1)) as u32;
        ShadowInfo { nid, eviction: entry >> NODES_SHIFT, workingset }
    }
}

/// Ages the node's non-resident pages along with its inactive list
/// (Linux `workingset_age_nonresident`): called for every eviction and
/// every activation, `nr_pages` at a time.
pub fn workingset_age_nonresident(pgdat: &PgData<'_>, nr_pages: u64) {
    pgdat.lruvec_nonresident_age().fetch_add(nr_pages, core::sync::atomic::Ordering::Relaxed);
}

/// Notes the eviction of `page` from its page cache and returns the
/// shadow to keep in its place (Linux `workingset_eviction`). The page is
/// locked, off the LRU, and going out of the cache under the cache's
/// lock.
pub fn workingset_eviction(pgdat: &PgData<'_>, page: &Page) -> Shadow {
    debug_assert!(folio_test_locked(page), "an evicted page is locked");
    debug_assert!(!page.test(PageFlags::LRU), "an evicted page is off the LRU");
    let eviction = pgdat.lruvec_nonresident_age().load(core::sync::atomic::Ordering::Relaxed);
    workingset_age_nonresident(pgdat, 1);
    Shadow::pack(pgdat.node_id(), eviction, page.test(PageFlags::WORKINGSET))
}

/// How far a page evicted at timestamp `eviction` missed staying in
/// memory when it refaults at `refault`: inactive-list slots aged while it
/// was out, modulo the timestamp's width (Linux `workingset_test_recent`'s
/// `refault_distance`).
pub const fn refault_distance(eviction: u64, refault: u64) -> u64 {
    refault.wrapping_sub(eviction) & EVICTION_MASK
}

/// The pages a refaulting page competes with (Linux
/// `workingset_test_recent`'s `workingset_size`): the active file list
/// for a file page, both file lists for an anonymous one; while swap has
/// a free slot (the anonymous lists can be reclaimed), the active
/// anonymous list too, and for a file page the inactive anonymous one.
pub fn workingset_size(pgdat: &PgData<'_>, file: bool) -> u64 {
    let state = |item| pgdat.node_page_state(item);
    let mut size = state(NodeStatItem::NrActiveFile);
    if !file {
        size += state(NodeStatItem::NrInactiveFile);
    }
    if pgdat.swap_backend().is_some_and(|b| b.nr_swap_pages() > 0) {
        size += state(NodeStatItem::NrActiveAnon);
        if file {
            size += state(NodeStatItem::NrInactiveAnon);
        }
    }
    size
}

/// Whether `shadow` is of a page evicted recently enough to be activated
/// on its refault: its refault distance is no more than the workingset
/// size (Linux `workingset_test_recent`). Also returns whether the page
/// was `PG_workingset`. A shadow of another node (we have one) is never
/// recent.
pub fn workingset_test_recent(pgdat: &PgData<'_>, shadow: Shadow, file: bool) -> (bool, bool) {
    let info = shadow.unpack();
    if info.nid != pgdat.node_id() {
        return (false, info.workingset);
    }
    let refault = pgdat.lruvec_nonresident_age().load(core::sync::atomic::Ordering::Relaxed);
    (refault_distance(info.eviction, refault) <= workingset_size(pgdat, file), info.workingset)
}

/// Evaluates the refault of a page evicted earlier (Linux
/// `workingset_refault`): `page`, new and locked, has just replaced
/// `shadow` in its cache and is not on a list yet. Counts the refault;
/// if the page was evicted recently, sets `PG_active` so that
/// `folio_add_lru` puts it on the active list, ages the inactive list as
/// for any activation, and counts the activation; if it was
/// `PG_workingset`, sets that too and counts a restore.
pub fn workingset_refault(pgdat: &PgData<'_>, page: &Page, shadow: Shadow) {
    debug_assert!(folio_test_locked(page), "a refaulting page is locked");
    let file = folio_is_file_lru(page);
    let (refault, activate, restore) = if file {
        (NodeStatItem::WorkingsetRefaultFile, NodeStatItem::WorkingsetActivateFile, NodeStatItem::WorkingsetRestoreFile)
    } else {
        (NodeStatItem::WorkingsetRefaultAnon, NodeStatItem::WorkingsetActivateAnon, NodeStatItem::WorkingsetRestoreAnon)
    };
    pgdat.mod_node_page_state(refault, 1);
    let (recent, workingset) = workingset_test_recent(pgdat, shadow, file);
    if !recent {
        return;
    }
    page.set(PageFlags::ACTIVE);
    workingset_age_nonresident(pgdat, 1);
    pgdat.mod_node_page_state(activate, 1);
    if workingset {
        page.set(PageFlags::WORKINGSET);
        pgdat.mod_node_page_state(restore, 1);
    }
}

/// Notes that `folio_mark_accessed` promoted a page to the active list
/// (Linux `workingset_activation`): the inactive list aged by one.
pub fn workingset_activation(pgdat: &PgData<'_>) {
    workingset_age_nonresident(pgdat, 1);
}

#[cfg(test)]
mod tests;
