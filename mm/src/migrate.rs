//! Page migration: moving the contents and the mapping of a user page to
//! another physical page (Linux `mm/migrate.c`: `migrate_pages`,
//! `migrate_folio_unmap`/`migrate_folio_move`, `folio_migrate_mapping`,
//! `folio_migrate_flags`, `remove_migration_ptes`; and the rmap walk of
//! `mm/rmap.c` that finds the page's pte).
//!
//! # How pages move
//! [`migrate_pages`] takes the pages in batches of [`MIGRATE_BATCH`] and
//! visits every address space once per batch (see [`MmWalk`]), holding
//! its mmap lock for reading, so faults on it go on meanwhile. For the
//! batch's pages it maps (Linux `migrate_pages_batch`: unmap them all,
//! flush, then move them all):
//! 1. find the pte: the page's `index` is its linear page index, so in a
//!    VMA covering it the address is `vm_start + ((index - vm_pgoff) <<
//!    PAGE_SHIFT)` (Linux `vma_address`), and the pte there must map the
//!    page;
//! 2. check the page can move: a user page (not free, slab, page table,
//!    reserved or compound) of order 0, mapped by exactly one pte, and
//!    holding no reference beyond the one that mapping implies (Linux's
//!    expected refcount check in `folio_migrate_mapping`, which fails
//!    with `-EAGAIN` when someone else holds the page); lock it
//!    ([`folio_trylock`](crate::filemap::folio_trylock): a page someone
//!    else locked is left alone), take a new page from the
//!    [`MigrationTarget`], and under the page-table lock, checking the
//!    pte still maps the page and no fault took a reference, replace the
//!    pte by a migration entry (Linux `try_to_migrate_one`);
//! 3. flush the old ptes from every CPU's TLB, one range for all of this
//!    address space's pages in the batch
//!    ([`TlbFlush::flush_tlb_mm_range_all_cpus`](crate::arch::TlbFlush)),
//!    so that the process, running on another CPU, can no longer write the
//!    old pages (it faults, finds the migration entry, and waits for the
//!    page lock); then check each refcount again (Linux
//!    `folio_ref_freeze`);
//! 4. per page, copy the data, move `mapping`, `index`, the state flags
//!    and the mapcount to the new page (Linux `folio_migrate_mapping` and
//!    `folio_migrate_flags`), turn the migration entry into a pte for the
//!    new page with the old pte's protection, dirty and accessed bits
//!    (Linux `remove_migration_pte`), unlock the old page (waking the
//!    faults waiting on it) and free it. A page that fails gets its old
//!    pte back and is unlocked.
//!
//! RSS and `nr_anon_pages`/`nr_mapped` do not change: one mapped page of
//! the same kind replaces another. `pgmigrate_success` and
//! `pgmigrate_fail` count the outcome per page; a page no address space of
//! the walk maps (its mapper is being built by exec, or appeared after the
//! walk's snapshot) is skipped and counted in neither, as Linux would
//! never have isolated it.
//!
//! # Locking
//! Lock order (Linux's, top of mm/rmap.c): mmap lock (read; the caller's
//! [`MmWalk`] takes it, one address space at a time) -> page lock ->
//! page-table lock -> zone lock and per-cpu list locks (the target taking
//! new pages, freeing the old page). Everything that clears, copies or
//! re-protects ptes (munmap, mprotect, fork, mremap) holds the mmap lock
//! for writing, so it never meets a migration entry; faults, which hold it
//! for reading, wait for the page lock when they do
//! ([`FaultError::Retry`](crate::memory::FaultError::Retry)). The mmap lock
//! is held while waiting for every CPU's TLB flush; the kernel's mmap lock
//! sleeps with interrupts on, so a waiter still answers.
//!
//! # Differences from Linux
//! - No `anon_vma`: a page's mapper is found by walking every address
//!   space and every VMA whose page-offset range covers the page's index
//!   (O(address spaces x VMAs) per page; Linux's `rmap_walk_anon` visits
//!   only the VMAs on the page's `anon_vma`). An `anon_vma` would replace
//!   the walk.
//! - Only pages mapped by one pte move: a page shared after fork fails
//!   with [`MigrateError::Shared`] (Linux replaces every mapping by a
//!   migration entry, which the rmap walk makes cheap).
//! - The page lock is only tried ([`MigrateError::Locked`]), as Linux's
//!   asynchronous mode does; the new page is not locked, since nothing can
//!   reach it before its pte is installed.
//! - One flush per address space and batch, covering the span from its
//!   lowest to its highest page of the batch (Linux unmaps a whole batch
//!   with `TTU_BATCH_FLUSH` and flushes once for every address space,
//!   `try_to_unmap_flush`); beyond the architecture's single-page ceiling
//!   that span is a flush of all user translations.
//! - Page-cache pages do not move: the cache's reference fails the
//!   expected-refcount check ([`MigrateError::Pinned`]), so no
//!   `address_space` is ever updated (Linux `filemap_migrate_folio`
//!   replaces the cache's entry). A page a file handed out without a
//!   cache (its own copy, mapping 0) moves like an anonymous page. No
//!   writeback, no `migratepage` callbacks, no huge pages.

use core::ops::ControlFlow;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, Pfn, VirtAddr};
use crate::arch::FolioWaitTable;
use crate::highmem;
use crate::mmap::MmStruct;
use crate::page::Page;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::pgtable::{Entry, Leaf, Level, PgProt, PteFormat};
use crate::rmap;
use crate::swapops::make_migration_entry;
use crate::vma::VmaAlloc;
use crate::vmstat::VmEventItem;

/// Why a page stayed where it was (the reasons Linux's `migrate_pages`
/// gives up on a folio: not isolatable, `-EAGAIN`, `-EBUSY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateError {
    /// Not a user page migration can move: free, slab, page table,
    /// reserved, compound or of a higher order, or not mapped at all
    /// (Linux: not on an LRU, so never isolated).
    NotMovable,
    /// Mapped by more than one pte (shared after fork); see the module
    /// doc.
    Shared,
    /// Someone holds a reference besides its one mapping (Linux's expected
    /// refcount check failing).
    Pinned,
    /// No address space maps it where its index says: it was unmapped, is
    /// not mapped the way an anonymous or private file page is, or its
    /// address space is not among those walked.
    NotMapped,
    /// No free page to move it to (Linux `-ENOMEM` from `get_new_folio`).
    NoTarget,
    /// Someone holds the page's lock (Linux `-EAGAIN` when
    /// `folio_trylock` fails in an asynchronous mode).
    Locked,
}

/// Pages [`migrate_pages`] unmaps, flushes and moves together in one
/// address space (Linux `NR_MAX_BATCHED_MIGRATION`, there a huge page's
/// worth; here compaction's cluster, `COMPACT_CLUSTER_MAX`).
pub const MIGRATE_BATCH: usize = 32;

/// Every user address space, each visited with its mmap lock held for
/// reading: how migration reaches a page's mappers without an `anon_vma`
/// (see the module doc). The kernel walks its task list; host tests their
/// address spaces.
pub trait MmWalk<'a, F: PteFormat + 'a, A: VmaAlloc> {
    /// Calls `f` on each address space, with its mmap lock held for
    /// reading for the call, until `f` breaks.
    fn for_each_mm(&self, f: &mut dyn FnMut(&MmStruct<'a, F, A>) -> ControlFlow<()>);

    /// Where tasks wait for the pages migration locks (faults that meet a
    /// migration entry), woken when it unlocks them.
    fn folio_waits(&self) -> &dyn FolioWaitTable;

    /// Called by compaction's migrate scanner before each pageblock, with
    /// no lock held: where a kernel without preemption reschedules (Linux
    /// calls `cond_resched()` in `isolate_migratepages_block`), and may
    /// stop the run by breaking (Linux stops on `fatal_signal_pending()`
    /// and reports `COMPACT_CONTENDED`). By default it does neither.
    fn cond_resched(&self) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
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
    ///
    /// # Safety
    /// `pfn` came from this target's `alloc`, is given back once, and no
    /// pte maps it and no pointer into it is used afterwards (the target
    /// may free it at once).
    unsafe fn free(&mut self, pfn: Pfn);
}

/// What [`migrate_pages`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrateStats {
    /// Pages moved.
    pub succeeded: u64,
    /// Pages tried and left in place.
    pub failed: u64,
    /// Pages no address space of the walk maps: left alone and counted in
    /// no vmstat event (Linux would not have isolated them).
    pub skipped: u64,
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
    .union(PageFlags::TAIL);

/// Whether `page` looks like a user page migration may move: none of the
/// free, slab, page-table, reserved or compound flags, mapped and
/// referenced, and of order 0 (migration moves single pages; the first page
/// of a higher-order allocation carries its order) (the lockless test
/// compaction's migrate scanner makes before trying, standing in for Linux
/// `isolate_migratepages_block`'s `PageLRU` checks). Migration rechecks
/// everything under the address-space lock.
pub(crate) fn page_movable(page: &Page) -> bool {
    !page.flags().intersects(UNMOVABLE_FLAGS) && page.mapcount() > 0 && page.refcount() > 0 && page.order() == 0
}

/// Moves each page of `from` to a page from `target`, looking for its
/// mapper in `mms` (Linux `migrate_pages` in `MIGRATE_SYNC` mode, one try
/// per page), [`MIGRATE_BATCH`] pages per walk of `mms`. Stops early when
/// `target` has no more pages; pages not tried count in no total.
pub fn migrate_pages<'a, F: PteFormat + 'a, A: VmaAlloc>(
    pgdat: &PgData<'_>,
    mms: &dyn MmWalk<'a, F, A>,
    from: &[Pfn],
    target: &mut dyn MigrationTarget,
) -> MigrateStats {
    let mut stats = MigrateStats::default();
    for batch in from.chunks(MIGRATE_BATCH) {
        let mut outcome = [Err(MigrateError::NotMapped); MIGRATE_BATCH];
        let outcome = &mut outcome[..batch.len()];
        let mut out_of_targets = false;
        let waits = mms.folio_waits();
        mms.for_each_mm(&mut |mm| {
            out_of_targets = mm.migrate_batch(batch, outcome, target, waits);
            if out_of_targets || !outcome.contains(&Err(MigrateError::NotMapped)) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        for result in outcome.iter() {
            match result {
                Ok(()) => stats.succeeded += 1,
                // Not tried: the walk ended when the targets ran out.
                Err(MigrateError::NotMapped) if out_of_targets => {}
                Err(MigrateError::NotMapped) => stats.skipped += 1,
                Err(MigrateError::NoTarget) => {}
                Err(_) => stats.failed += 1,
            }
        }
        if out_of_targets {
            break;
        }
    }
    pgdat.count_vm_events(VmEventItem::PgmigrateSuccess, stats.succeeded);
    pgdat.count_vm_events(VmEventItem::PgmigrateFail, stats.failed);
    stats
}

/// A page of a batch between the clearing of its pte and its move.
struct Unmapped<'t> {
    /// Its place in the batch.
    i: usize,
    new: Pfn,
    slot: &'t AtomicU64,
    /// The pte before the migration entry replaced it.
    raw: u64,
}

/// A caller's one page as a [`MigrationTarget`].
struct GivenPage(Option<Pfn>);

impl MigrationTarget for GivenPage {
    fn alloc(&mut self) -> Option<Pfn> {
        self.0.take()
    }

    unsafe fn free(&mut self, pfn: Pfn) {
        self.0 = Some(pfn);
    }
}

impl<F: PteFormat, A: VmaAlloc> MmStruct<'_, F, A> {
    /// The address and pte at which this address space maps `old`, found
    /// from the page's linear index (Linux `vma_address` over the VMAs an
    /// `rmap_walk_anon` would visit; here all of them).
    fn page_vma_mapped(&self, old: Pfn, index: u64) -> Option<(u64, &AtomicU64, Leaf)> {
        let fmt = self.pgd.format();
        self.vmas.iter().find_map(|vma| {
            let pages = (vma.end().as_u64() - vma.start().as_u64()) >> PAGE_SHIFT;
            let offset = index.checked_sub(vma.pgoff()).filter(|&o| o < pages)?;
            let addr = vma.start().as_u64() + (offset << PAGE_SHIFT);
            let slot = self.pgd.pte_offset(VirtAddr::expect_canonical(addr), false).ok().flatten()?;
            match fmt.decode(slot.load(Ordering::Acquire), Level::Pte) {
                Entry::Leaf(leaf) if leaf.phys.pfn() == old => Some((addr, slot, leaf)),
                _ => None,
            }
        })
    }

    /// Whether `old` can move out of this address space, and where it is
    /// mapped: [`MigrateError::NotMapped`] if this address space does not
    /// map it.
    fn migrate_check(&self, old: Pfn) -> Result<(u64, &AtomicU64, Leaf), MigrateError> {
        let page = self.pgd.pgdat().pfn_to_page(old).ok_or(MigrateError::NotMovable)?;
        if old == self.zero_pfn || !page_movable(page) {
            return Err(MigrateError::NotMovable);
        }
        let found = self.page_vma_mapped(old, page.index()).ok_or(MigrateError::NotMapped)?;
        if page.mapcount() != 1 {
            return Err(MigrateError::Shared);
        }
        // One mapping holds one reference (the fault's allocation; fork
        // takes one more per mapping it adds).
        if page.refcount() != 1 {
            return Err(MigrateError::Pinned);
        }
        Ok(found)
    }

    /// Moves the page `old`, if this address space maps it, to `new`, an
    /// order-0 page holding one reference and nothing else (Linux
    /// `migrate_folio_unmap` + `migrate_folio_move` for one mapping). The
    /// caller holds this address space's mmap lock for reading. On success
    /// `old` is freed and `new` is mapped in its place; on failure nothing
    /// changed and `new` is still the caller's.
    /// [`MigrateError::NotMapped`] means this address space does not map
    /// `old`.
    pub fn migrate_page(&self, old: Pfn, new: Pfn, waits: &dyn FolioWaitTable) -> Result<(), MigrateError> {
        let mut outcome = [Err(MigrateError::NotMapped)];
        self.migrate_batch(&[old], &mut outcome, &mut GivenPage(Some(new)), waits);
        outcome[0]
    }

    /// Moves the pages of `batch` this address space maps and whose
    /// `outcome` is still [`MigrateError::NotMapped`] (no address space
    /// claimed them yet), recording each one's outcome; the others are
    /// left as they are. New pages come from `target`, and the unused go
    /// back to it. The caller holds this address space's mmap lock for
    /// reading. Returns true if `target` ran out (the page that found none
    /// is [`MigrateError::NoTarget`], later ones untried).
    fn migrate_batch(
        &self,
        batch: &[Pfn],
        outcome: &mut [Result<(), MigrateError>],
        target: &mut dyn MigrationTarget,
        waits: &dyn FolioWaitTable,
    ) -> bool {
        debug_assert!(batch.len() <= MIGRATE_BATCH && outcome.len() == batch.len());
        let pgdat = self.pgd.pgdat();
        let mut unmapped: [Option<Unmapped<'_>>; MIGRATE_BATCH] = [const { None }; MIGRATE_BATCH];
        let (mut n, mut lo, mut hi) = (0, u64::MAX, 0);
        let mut out_of_targets = false;
        // Linux `migrate_folio_unmap` -> `try_to_migrate_one`: lock each
        // page and replace its pte by a migration entry first. The value
        // swapped out carries the dirty and accessed bits every CPU set
        // until the flush below (a CPU sets them through a page walk, which
        // now finds no present pte).
        for (i, &old) in batch.iter().enumerate().take(MIGRATE_BATCH) {
            if outcome[i] != Err(MigrateError::NotMapped) {
                continue;
            }
            match self.migrate_unmap(old, target) {
                Ok((addr, u)) => {
                    unmapped[n] = Some(Unmapped { i, ..u });
                    n += 1;
                    (lo, hi) = (lo.min(addr), hi.max(addr));
                }
                Err(e) => {
                    outcome[i] = Err(e);
                    if e == MigrateError::NoTarget {
                        out_of_targets = true;
                        break;
                    }
                }
            }
        }
        if n == 0 {
            return out_of_targets;
        }
        self.tlb.flush_tlb_mm_range_all_cpus(self.pgd.root(), VirtAddr::expect_canonical(lo), hi - lo + PAGE_SIZE);
        for u in unmapped.iter().take(n).flatten() {
            let old = batch[u.i];
            outcome[u.i] = self.migrate_move(old, u);
            if outcome[u.i].is_err() {
                // Put the pte back as it was (Linux
                // `remove_migration_ptes(src, src)`) and return the unused
                // page.
                let _ptl = self.page_table_lock.lock();
                u.slot.store(u.raw, Ordering::Release);
            }
            if let Some(page) = pgdat.pfn_to_page(old) {
                crate::filemap::folio_unlock(page, old, waits);
            }
            if outcome[u.i].is_ok() {
                // A bad page is reported by the allocator and leaked.
                // SAFETY: the reference dropped is the one the old pte
                // held; that pte now maps `u.new`, every CPU flushed the
                // old translation, and the copy was the last access (the
                // refcount was 1 and no pte reaches the page).
                let _ = unsafe { pgdat.put_page(old) };
            } else {
                // SAFETY: a failed migration neither mapped `u.new` nor
                // copied into it (every failure comes before the copy).
                unsafe { target.free(u.new) };
            }
        }
        out_of_targets
    }

    /// Locks `old` and replaces the pte that maps it here by a migration
    /// entry, taking a new page from `target` (the first half of Linux
    /// `migrate_folio_unmap`). Returns the address and the page's state
    /// for the move; on error nothing changed (the new page went back).
    fn migrate_unmap(&self, old: Pfn, target: &mut dyn MigrationTarget) -> Result<(u64, Unmapped<'_>), MigrateError> {
        let (pgdat, fmt) = (self.pgd.pgdat(), self.pgd.format());
        let (addr, slot, leaf) = self.migrate_check(old)?;
        let page = pgdat.pfn_to_page(old).ok_or(MigrateError::NotMovable)?;
        if pgdat.page_address(old).is_none() {
            return Err(MigrateError::NotMovable);
        }
        // Linux `migrate_folio_unmap` in an asynchronous mode: a page
        // someone else has locked is left for a later run.
        if !crate::filemap::folio_trylock(page) {
            return Err(MigrateError::Locked);
        }
        let fail = |e| {
            // Nobody can have waited for the lock: no migration entry was
            // installed.
            page.clear_unlock(PageFlags::LOCKED);
            Err(e)
        };
        let Some(new) = target.alloc() else { return fail(MigrateError::NoTarget) };
        if pgdat.page_address(new).is_none() {
            // SAFETY: `new` was just taken from the target and not used.
            unsafe { target.free(new) };
            return fail(MigrateError::NotMovable);
        }
        let ptl = self.page_table_lock.lock();
        // A fault may have changed the pte, or taken a reference to copy
        // the page, since the unlocked check.
        if !self.same_page(slot, old) || page.refcount() != 1 || page.mapcount() != 1 {
            drop(ptl);
            // SAFETY: `new` was just taken from the target and not used.
            unsafe { target.free(new) };
            return fail(if self.same_page(slot, old) { MigrateError::Pinned } else { MigrateError::NotMapped });
        }
        let entry = make_migration_entry(old, leaf.prot.contains(PgProt::WRITE));
        let raw = slot.swap(fmt.encode_swp(entry), Ordering::AcqRel);
        drop(ptl);
        Ok((addr, Unmapped { i: 0, new, slot, raw }))
    }

    /// Whether `slot` still maps `old` (with whatever bits).
    fn same_page(&self, slot: &AtomicU64, old: Pfn) -> bool {
        matches!(self.pgd.format().decode(slot.load(Ordering::Acquire), Level::Pte), Entry::Leaf(l) if l.phys.pfn() == old)
    }

    /// Moves `old`, whose pte `u` replaced by a migration entry and every
    /// CPU flushed, to `u.new` (Linux `migrate_folio_move`): copies it,
    /// moves its state and installs the new page's pte. On failure nothing
    /// was installed and the caller puts the old pte back. `old` stays
    /// locked and referenced; the caller unlocks and puts it.
    fn migrate_move(&self, old: Pfn, u: &Unmapped<'_>) -> Result<(), MigrateError> {
        let (pgdat, fmt) = (self.pgd.pgdat(), self.pgd.format());
        let (Some(page), Some(newpage)) = (pgdat.pfn_to_page(old), pgdat.pfn_to_page(u.new)) else {
            return Err(MigrateError::NotMovable);
        };
        let Entry::Leaf(leaf) = fmt.decode(u.raw, Level::Pte) else { return Err(MigrateError::NotMapped) };
        // Linux `folio_ref_freeze`: no reference was taken meanwhile (a
        // fault takes one only through a present pte, under the lock).
        if page.refcount() != 1 {
            return Err(MigrateError::Pinned);
        }
        // Linux `folio_copy`.
        // SAFETY: distinct pages: `new` was handed to migration and is
        // mapped nowhere; `old` is mapped by no present pte any more (its
        // one pte is a migration entry), no CPU holds a translation for it
        // (flushed by the caller), and its one reference is its mapping's,
        // so nothing writes either page during the copy.
        unsafe { highmem::copy_page(pgdat, u.new, old) }.map_err(|_| MigrateError::NotMovable)?;
        newpage.set_mapping(page.mapping());
        newpage.set_index(page.index());
        newpage.set(page.flags() & MIGRATE_FLAGS);
        newpage.inc_mapcount();
        {
            // Linux `remove_migration_pte`: the migration entry becomes the
            // new page's pte, with the old pte's protection and bits.
            let _ptl = self.page_table_lock.lock();
            u.slot.store(fmt.encode_leaf(Leaf { phys: u.new.phys(), ..leaf }), Ordering::Release);
        }
        // The old page leaves its mapping without touching the mapped-page
        // counters: the new page took its place in them.
        page.dec_mapcount();
        page.clear(MIGRATE_FLAGS);
        if rmap::page_anon(page) {
            page.set_mapping(0);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;
