//! Page migration: moving the contents and the mapping of a user page to
//! another physical page (Linux `mm/migrate.c`: `migrate_pages`,
//! `migrate_folio_unmap`/`migrate_folio_move`, `folio_migrate_mapping`,
//! `folio_migrate_flags`, `remove_migration_ptes`; and the rmap walk of
//! `mm/rmap.c` that finds the page's pte).
//!
//! # How one page moves
//! Under the lock of the address space that maps it:
//! 1. find the pte: the page's `index` is its linear page index, so in a
//!    VMA covering it the address is `vm_start + ((index - vm_pgoff) <<
//!    PAGE_SHIFT)` (Linux `vma_address`), and the pte there must map the
//!    page;
//! 2. check the page can move: a user page (not free, slab, page table,
//!    reserved or compound), mapped by exactly one pte, and holding no
//!    reference beyond the one that mapping implies (Linux's expected
//!    refcount check in `folio_migrate_mapping`, which fails with
//!    `-EAGAIN` when someone else holds the page);
//! 3. clear the pte and flush it from every CPU's TLB
//!    ([`TlbFlush::flush_tlb_mm_range_all_cpus`](crate::arch::TlbFlush)),
//!    so that the process, running on another CPU, can no longer write the
//!    old page (it faults and waits for the address-space lock, which we
//!    hold); then check the refcount again (Linux `folio_ref_freeze`);
//! 4. copy the data, move `mapping`, `index`, the state flags and the
//!    mapcount to the new page (Linux `folio_migrate_mapping` and
//!    `folio_migrate_flags`), install a pte for the new page with the old
//!    pte's protection, dirty and accessed bits (Linux
//!    `remove_migration_pte`), and free the old page.
//!
//! RSS and `nr_anon_pages`/`nr_mapped` do not change: one mapped page of
//! the same kind replaces another. `pgmigrate_success` and
//! `pgmigrate_fail` count the outcome per page.
//!
//! # Locking
//! Lock order: address-space lock (Linux `mmap_lock`; the caller's
//! [`MmWalk`] takes it) -> zone lock and per-cpu list locks (freeing the
//! old page). The page itself has no lock of its own: every path that
//! changes a user page's mapping or takes a reference to it (faults,
//! fork, zap, mprotect) holds that lock, so holding it stands in for
//! Linux's folio lock.
//!
//! # Differences from Linux
//! - No `anon_vma`: a page's mapper is found by walking every address
//!   space and every VMA whose page-offset range covers the page's index
//!   (O(address spaces x VMAs) per page; Linux's `rmap_walk_anon` visits
//!   only the VMAs on the page's `anon_vma`). An `anon_vma` would replace
//!   the walk.
//! - Only pages mapped by one pte move. Linux replaces every mapping of a
//!   shared page (after fork) by a migration entry and waits in faults on
//!   them (`migration_entry_wait`); we have no migration entries, so a
//!   page mapped more than once fails with [`MigrateError::Shared`]. For
//!   the same reason the whole move happens under the address-space lock,
//!   where Linux unmaps, copies and remaps with only the folio locked.
//! - No page cache, so no `address_space` to update (a private copy of
//!   file data moves like an anonymous page), no writeback, no
//!   `migratepage` callbacks, no huge pages.

use core::ops::ControlFlow;
use core::sync::atomic::Ordering;

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, Pfn, VirtAddr};
use crate::mmap::MmStruct;
use crate::page::Page;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::pgtable::{Entry, Leaf, Level, PteFormat};
use crate::rmap;
use crate::vma::VmaAlloc;
use crate::vmstat::VmEventItem;

/// Why a page stayed where it was (the reasons Linux's `migrate_pages`
/// gives up on a folio: not isolatable, `-EAGAIN`, `-EBUSY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateError {
    /// Not a user page migration can move: free, slab, page table,
    /// reserved, compound, locked or under writeback, or not mapped at all
    /// (Linux: not on an LRU, so never isolated).
    NotMovable,
    /// Mapped by more than one pte (shared after fork); see the module
    /// doc.
    Shared,
    /// Someone holds a reference besides its one mapping (Linux's expected
    /// refcount check failing).
    Pinned,
    /// No address space maps it where its index says: it was unmapped, or
    /// is not mapped the way an anonymous or private file page is.
    NotMapped,
    /// No free page to move it to (Linux `-ENOMEM` from `get_new_folio`).
    NoTarget,
}

/// Every user address space, each visited with its lock held: how
/// migration reaches a page's mappers without an `anon_vma` (see the module
/// doc). The kernel walks its task list; host tests their address spaces.
pub trait MmWalk<'a, F: PteFormat + 'a, A: VmaAlloc> {
    /// Calls `f` on each address space, with its lock held for the call,
    /// until `f` breaks.
    fn for_each_mm(&self, f: &mut dyn FnMut(&mut MmStruct<'a, F, A>) -> ControlFlow<()>);
}

/// Where migration gets new pages and returns unused ones (Linux's
/// `new_folio_t`/`free_folio_t` pair, compaction's `compaction_alloc` and
/// `compaction_free`). A new page is an order-0 page holding one reference
/// and nothing else.
pub trait MigrationTarget {
    /// A page to migrate into, or `None` when there is none.
    fn alloc(&mut self) -> Option<Pfn>;

    /// Gives back a page [`MigrationTarget::alloc`] returned and migration
    /// did not use.
    fn free(&mut self, pfn: Pfn);
}

/// What [`migrate_pages`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrateStats {
    /// Pages moved.
    pub succeeded: u64,
    /// Pages tried and left in place.
    pub failed: u64,
}

/// State flags that follow the data to the new page (Linux
/// `folio_migrate_flags`, the ones we have).
const MIGRATE_FLAGS: PageFlags = PageFlags::REFERENCED
    .union(PageFlags::UPTODATE)
    .union(PageFlags::DIRTY)
    .union(PageFlags::ACTIVE)
    .union(PageFlags::WORKINGSET)
    .union(PageFlags::SWAPBACKED)
    .union(PageFlags::UNEVICTABLE)
    .union(PageFlags::MLOCKED);

/// Flags that make a page something other than a movable user page.
const UNMOVABLE_FLAGS: PageFlags = PageFlags::BUDDY
    .union(PageFlags::SLAB)
    .union(PageFlags::TABLE)
    .union(PageFlags::RESERVED)
    .union(PageFlags::HEAD)
    .union(PageFlags::TAIL)
    .union(PageFlags::LOCKED)
    .union(PageFlags::WRITEBACK);

/// Whether `page` looks like a user page migration may move: the lockless
/// test compaction's migrate scanner makes before trying (Linux
/// `isolate_migratepages_block`'s checks that stand in for `PageLRU`).
/// Migration rechecks everything under the address-space lock.
pub(crate) fn page_movable(page: &Page) -> bool {
    !page.flags().intersects(UNMOVABLE_FLAGS) && page.mapcount() > 0 && page.refcount() > 0 && page.order() == 0
}

/// Moves each page of `from` to a page from `target`, looking for its
/// mapper in `mms` (Linux `migrate_pages` in `MIGRATE_SYNC` mode, one try
/// per page). Stops early when `target` has no more pages; pages not tried
/// count in neither total.
pub fn migrate_pages<'a, F: PteFormat + 'a, A: VmaAlloc>(
    pgdat: &PgData<'_>,
    mms: &dyn MmWalk<'a, F, A>,
    from: &[Pfn],
    target: &mut dyn MigrationTarget,
) -> MigrateStats {
    let mut stats = MigrateStats::default();
    for &old in from {
        match migrate_page(mms, old, target) {
            Ok(()) => stats.succeeded += 1,
            Err(MigrateError::NoTarget) => break,
            Err(_) => stats.failed += 1,
        }
    }
    pgdat.count_vm_events(VmEventItem::PgmigrateSuccess, stats.succeeded);
    pgdat.count_vm_events(VmEventItem::PgmigrateFail, stats.failed);
    stats
}

/// Moves one page: finds the address space mapping it and moves it there.
fn migrate_page<'a, F: PteFormat + 'a, A: VmaAlloc>(
    mms: &dyn MmWalk<'a, F, A>,
    old: Pfn,
    target: &mut dyn MigrationTarget,
) -> Result<(), MigrateError> {
    let new = target.alloc().ok_or(MigrateError::NoTarget)?;
    let mut result = Err(MigrateError::NotMapped);
    mms.for_each_mm(&mut |mm| match mm.migrate_page_locked(old, new) {
        Err(MigrateError::NotMapped) => ControlFlow::Continue(()),
        done => {
            result = done;
            ControlFlow::Break(())
        }
    });
    if result.is_err() {
        target.free(new);
    }
    result
}

impl<F: PteFormat, A: VmaAlloc> MmStruct<'_, F, A> {
    /// The address and pte at which this address space maps `old`, found
    /// from the page's linear index (Linux `vma_address` over the VMAs an
    /// `rmap_walk_anon` would visit; here all of them).
    fn page_vma_mapped(&self, old: Pfn, index: u64) -> Option<(u64, &core::sync::atomic::AtomicU64, Leaf)> {
        let fmt = self.pgd.format();
        self.vmas.iter().find_map(|vma| {
            let pages = (vma.end().as_u64() - vma.start().as_u64()) >> PAGE_SHIFT;
            let offset = index.checked_sub(vma.pgoff()).filter(|&o| o < pages)?;
            let addr = vma.start().as_u64() + (offset << PAGE_SHIFT);
            let slot = self.pgd.pte_offset(VirtAddr::new_const(addr), false).ok().flatten()?;
            match fmt.decode(slot.load(Ordering::Acquire), Level::Pte) {
                Entry::Leaf(leaf) if leaf.phys.pfn() == old => Some((addr, slot, leaf)),
                _ => None,
            }
        })
    }

    /// Moves the page `old`, if this address space maps it, to `new`, an
    /// order-0 page holding one reference and nothing else (Linux
    /// `migrate_folio_unmap` + `migrate_folio_move` for one mapping). The
    /// caller holds this address space's lock. On success `old` is freed
    /// and `new` is mapped in its place; on failure nothing changed and
    /// `new` is still the caller's. [`MigrateError::NotMapped`] means this
    /// address space does not map `old`.
    pub fn migrate_page_locked(&mut self, old: Pfn, new: Pfn) -> Result<(), MigrateError> {
        let pgdat = self.pgd.pgdat();
        let page = pgdat.pfn_to_page(old).ok_or(MigrateError::NotMovable)?;
        let newpage = pgdat.pfn_to_page(new).ok_or(MigrateError::NotMovable)?;
        if old == self.zero_pfn || !page_movable(page) {
            return Err(MigrateError::NotMovable);
        }
        let (addr, slot, leaf) = self.page_vma_mapped(old, page.index()).ok_or(MigrateError::NotMapped)?;
        if page.mapcount() != 1 {
            return Err(MigrateError::Shared);
        }
        // One mapping holds one reference (the fault's allocation; fork
        // takes one more per mapping it adds).
        let expected = 1;
        if page.refcount() != expected {
            return Err(MigrateError::Pinned);
        }
        let (Some(src), Some(dst)) = (pgdat.page_address(old), pgdat.page_address(new)) else {
            return Err(MigrateError::NotMovable);
        };
        let fmt = self.pgd.format();
        // Linux `try_to_migrate_one`: clear and flush everywhere. The value
        // swapped out carries the dirty and accessed bits every CPU set
        // until the flush (a CPU sets them through a page walk, which now
        // finds no pte).
        let raw = slot.swap(0, Ordering::AcqRel);
        self.tlb.flush_tlb_mm_range_all_cpus(self.pgd.root(), VirtAddr::new_const(addr), PAGE_SIZE);
        let leaf = match fmt.decode(raw, Level::Pte) {
            Entry::Leaf(now) if now.phys == leaf.phys => now,
            _ => {
                // Cannot happen under the lock; put back what was there.
                slot.store(raw, Ordering::Release);
                return Err(MigrateError::NotMapped);
            }
        };
        if page.refcount() != expected {
            slot.store(raw, Ordering::Release);
            return Err(MigrateError::Pinned);
        }
        // Linux `folio_copy`.
        // SAFETY: both are distinct 4096-byte pages of the direct map
        // (`PhysMemory` keeps them mapped read-write). `new` was handed to
        // migration and is mapped nowhere; `old` is mapped by no pte any
        // more and no CPU holds a translation for it (cleared and flushed
        // above), and every other user of it holds the address-space lock
        // we hold, so nothing writes either page during the copy.
        unsafe { core::ptr::copy_nonoverlapping(src.as_mut_ptr::<u8>(), dst.as_mut_ptr::<u8>(), PAGE_SIZE as usize) };
        newpage.set_mapping(page.mapping());
        newpage.set_index(page.index());
        newpage.set(page.flags() & MIGRATE_FLAGS);
        newpage.inc_mapcount();
        slot.store(fmt.encode_leaf(Leaf { phys: new.phys(), ..leaf }), Ordering::Release);
        // The old page leaves its mapping without touching the mapped-page
        // counters: the new page took its place in them.
        page.dec_mapcount();
        page.clear(MIGRATE_FLAGS);
        if rmap::page_anon(page) {
            page.set_mapping(0);
        }
        // A bad page is reported by the allocator and leaked.
        let _ = pgdat.put_page(old);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;
