//! Page migration: moving the contents and every mapping of a user page
//! to another physical page (Linux `mm/migrate.c`: `migrate_pages`,
//! `migrate_pages_batch`, `migrate_folio_unmap`/`migrate_folio_move`,
//! `folio_migrate_mapping`, `folio_migrate_flags`,
//! `remove_migration_ptes`; `mm/rmap.c`'s `try_to_migrate`).
//!
//! # How pages move
//! [`migrate_pages`] takes the pages in batches of [`MIGRATE_BATCH`]
//! (Linux `migrate_pages_batch`: unmap them all, flush, then move them
//! all). For each page of a batch:
//! 1. isolate it: take a reference of our own unless it is free
//!    ([`Page::try_get`](crate::page::Page::try_get), Linux
//!    `folio_try_get`), check it is a user page migration can move (not
//!    free, slab, page table, reserved or compound; of order 0; mapped),
//!    lock it ([`folio_trylock`](crate::filemap::folio_trylock): a page
//!    someone else locked is left alone), and pin its `anon_vma` (Linux
//!    `folio_get_anon_vma`), which keeps it alive while the page is
//!    unmapped;
//! 2. ask its reverse map for the address spaces that may map it
//!    ([`crate::rmap`]); the kernel locks those it can for reading
//!    ([`RmapMms::with_mms`]), and under those locks, for the whole
//!    batch:
//! 3. take a new page from the [`MigrationTarget`] and replace every pte
//!    mapping the page by a migration entry (Linux `try_to_migrate`),
//!    which keeps the pte's write, young and dirty bits; each pte's
//!    mapping and reference go with it;
//! 4. flush the cleared translations from every CPU's TLB, one range per
//!    address space ([`crate::rmap`]'s batch, Linux
//!    `try_to_unmap_flush`), so that no process can still write the old
//!    page (a fault on a migration entry waits for the page lock);
//! 5. if the page is mapped nowhere now and nobody but us holds it
//!    (Linux's expected refcount check, `folio_ref_freeze`), copy the
//!    data, move `mapping`, `index` and the state flags (Linux
//!    `folio_migrate_mapping`, `folio_migrate_flags`) and turn every
//!    migration entry into a pte for the new page (Linux
//!    `remove_migration_ptes(src, dst)`); otherwise (an address space it
//!    could not lock still maps it, or someone holds a reference) turn
//!    them back into ptes for the old page (`remove_migration_ptes(src,
//!    src)`). Then the page is unlocked (waking the faults waiting on
//!    it), and our reference dropped, which frees a moved page.
//!
//! RSS and `nr_anon_pages`/`nr_mapped` come back to what they were: the
//! old page's mappings go one by one and the new page's come. Pages
//! shared after fork move with all their ptes. `pgmigrate_success` and
//! `pgmigrate_fail` count the outcome per page; a page no longer mapped
//! when it is isolated is skipped and counted in neither, as Linux would
//! never have isolated it.
//!
//! # Locking
//! Lock order (Linux's, top of mm/rmap.c): mmap lock (read, only tried:
//! we hold page locks, and a fault may hold the mmap lock while it waits
//! for one) -> page lock -> anon_vma lock -> page-table lock -> zone lock
//! and per-cpu list locks (the target taking new pages, freeing the old
//! page). Every address space a migration entry is put in stays locked
//! for reading until the entry is gone, so munmap, mprotect, fork,
//! mremap and exit (which hold it for writing) never meet one; faults,
//! which hold it for reading, wait for the page lock when they do
//! ([`FaultError::Retry`](crate::memory::FaultError::Retry)). The mmap
//! locks are held while waiting for every CPU's TLB flush; the kernel's
//! mmap lock sleeps with interrupts on, so a waiter still answers.
//!
//! # Differences from Linux
//! - The address spaces are reached through the kernel's list of them and
//!   their mmap locks (see [`crate::rmap`]'s walk); one that is busy is
//!   skipped, and a page it maps is put back ([`MigrateError::Busy`]).
//! - The page lock is only tried ([`MigrateError::Locked`]), as Linux's
//!   asynchronous mode does; the new page is not locked, since nothing can
//!   reach it before its first pte is installed.
//! - A page-cache page moves like an anonymous one, its ptes found through
//!   its file's `i_mmap`, its cache entry replaced by
//!   [`RmapMms::migrate_mapping`] (Linux `filemap_migrate_folio`, one
//!   kind of address space only); a page under writeback stays
//!   ([`MigrateError::Pinned`]). A file page no cache holds has no
//!   reverse map to find its ptes with and does not move. No
//!   `migratepage` callbacks, no huge pages.

use crate::addr::Pfn;
use crate::filemap::{folio_trylock, folio_unlock};
use crate::highmem;
use crate::page::Page;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::pgtable::PteFormat;
use crate::rmap::{self, AnonVmaPin, MmIds, RmapMms, TlbBatch};
use crate::vma::VmaAlloc;
use crate::vmstat::VmEventItem;

/// Why a page stayed where it was (the reasons Linux's `migrate_pages`
/// gives up on a folio: not isolatable, `-EAGAIN`, `-EBUSY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateError {
    /// Not a user page migration can move: free, slab, page table,
    /// reserved, compound or of a higher order, not mapped at all, or a
    /// file page without a reverse map (Linux: not on an LRU, so never
    /// isolated).
    NotMovable,
    /// Still mapped after every pte the walk could reach became a
    /// migration entry: an address space mapping it was busy (its mmap
    /// lock taken by someone else), so the walk skipped it.
    Busy,
    /// Someone holds a reference besides its mappings (Linux's expected
    /// refcount check failing).
    Pinned,
    /// It was no longer mapped when isolated (unmapped meanwhile).
    NotMapped,
    /// No free page to move it to (Linux `-ENOMEM` from `get_new_folio`).
    NoTarget,
    /// Someone holds the page's lock (Linux `-EAGAIN` when
    /// `folio_trylock` fails in an asynchronous mode).
    Locked,
}

/// Pages [`migrate_pages`] unmaps, flushes and moves together (Linux
/// `NR_MAX_BATCHED_MIGRATION`, there a huge page's worth; here
/// compaction's cluster, `COMPACT_CLUSTER_MAX`).
pub const MIGRATE_BATCH: usize = 32;

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

/// A page of a batch being migrated: isolated (our reference), locked,
/// its `anon_vma` pinned.
struct Isolated<'p, 'x, A: VmaAlloc + ?Sized> {
    /// Its place in the batch.
    i: usize,
    page: &'p Page,
    /// An anonymous page's `anon_vma`, pinned; none for a page-cache page.
    pin: Option<AnonVmaPin<'x, A>>,
    /// The page it moves to, once taken from the target.
    new: Option<Pfn>,
}

/// Isolates the page `pfn` for migration (Linux
/// `isolate_migratepages_block` + `migrate_folio_unmap`'s lock and
/// `folio_get_anon_vma`): our reference, its lock and, for an anonymous
/// page, its `anon_vma`.
#[allow(clippy::type_complexity, reason = "the isolated page and its pin")]
fn isolate<'p, 'x, 'a, F: PteFormat + 'a, A: VmaAlloc + 'a, R: RmapMms<'a, F, A> + ?Sized>(
    pgdat: &'p PgData<'_>,
    rmms: &'x R,
    pfn: Pfn,
) -> Result<(&'p Page, Option<AnonVmaPin<'x, A>>), MigrateError> {
    let page = pgdat.pfn_to_page(pfn).ok_or(MigrateError::NotMovable)?;
    if !page_movable(page) || !page.try_get() {
        return Err(MigrateError::NotMovable);
    }
    let put = |e| {
        // SAFETY: the reference just taken; if it is the last, the page
        // was unmapped and let go meanwhile and nothing maps it.
        let _ = unsafe { pgdat.put_page(pfn) };
        Err(e)
    };
    // Rechecked now that the page cannot be freed under us.
    if !page_movable(page) || pgdat.page_address(pfn).is_none() {
        return put(MigrateError::NotMovable);
    }
    if page.mapping() == 0 {
        // A file's page no cache holds: no reverse map leads to its ptes.
        return put(MigrateError::NotMovable);
    }
    if !folio_trylock(page) {
        return put(MigrateError::Locked);
    }
    if !rmap::page_anon(page) {
        // A page-cache page, locked: it stays in its cache, and so does
        // the cache (the kernel's rule for reaching it by id).
        if page.test(PageFlags::WRITEBACK) || page.mapping() == 0 {
            page.clear_unlock(PageFlags::LOCKED);
            return put(MigrateError::Pinned);
        }
        return Ok((page, None));
    }
    // SAFETY: our reference holds the page.
    match unsafe { rmap::folio_get_anon_vma(rmms.vma_alloc(), page) } {
        Some(pin) => Ok((page, Some(pin))),
        None => {
            // Nobody can have waited for the lock: no migration entry
            // was installed.
            page.clear_unlock(PageFlags::LOCKED);
            put(MigrateError::NotMapped)
        }
    }
}

/// Moves each page of `from` to a page from `target`, finding its ptes
/// through the reverse map and reaching their address spaces through
/// `rmms` (Linux `migrate_pages` in `MIGRATE_SYNC` mode, one try per
/// page), [`MIGRATE_BATCH`] pages at a time. Stops early when `target`
/// has no more pages; pages not tried count in no total.
pub fn migrate_pages<'a, F: PteFormat + 'a, A: VmaAlloc + 'a, R: RmapMms<'a, F, A> + ?Sized>(
    pgdat: &PgData<'_>,
    rmms: &R,
    from: &[Pfn],
    target: &mut dyn MigrationTarget,
) -> MigrateStats {
    // The references the per-CPU LRU batches hold would fail the
    // expected-refcount check (Linux's callers drain first: compaction,
    // `migrate_prep`).
    pgdat.lru_add_drain_all();
    let mut stats = MigrateStats::default();
    for batch in from.chunks(MIGRATE_BATCH) {
        let mut outcome = [Err(MigrateError::NotMapped); MIGRATE_BATCH];
        let outcome = &mut outcome[..batch.len()];
        let out_of_targets = migrate_batch(pgdat, rmms, batch, outcome, target);
        for result in outcome.iter() {
            match result {
                Ok(()) => stats.succeeded += 1,
                Err(MigrateError::NotMapped) => stats.skipped += 1,
                // Not tried: the target ran out.
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

/// Moves the pages of `batch` (see the module doc), recording each one's
/// outcome. Returns true if `target` ran out (the page that found none
/// and the later ones are [`MigrateError::NoTarget`]).
fn migrate_batch<'a, F: PteFormat + 'a, A: VmaAlloc + 'a, R: RmapMms<'a, F, A> + ?Sized>(
    pgdat: &PgData<'_>,
    rmms: &R,
    batch: &[Pfn],
    outcome: &mut [Result<(), MigrateError>],
    target: &mut dyn MigrationTarget,
) -> bool {
    let mut isolated: [Option<Isolated<'_, '_, A>>; MIGRATE_BATCH] = [const { None }; MIGRATE_BATCH];
    let mut ids = MmIds::new();
    let mut n = 0;
    for (i, &pfn) in batch.iter().enumerate().take(MIGRATE_BATCH) {
        match isolate(pgdat, rmms, pfn) {
            Ok((page, pin)) => {
                // SAFETY: isolated: our reference holds the page.
                unsafe { rmap::rmap_mm_ids(rmms, page, pin.as_ref(), &mut ids) };
                isolated[n] = Some(Isolated { i, page, pin, new: None });
                n += 1;
            }
            Err(e) => outcome[i] = Err(e),
        }
    }
    let isolated = &mut isolated[..n];
    let mut out_of_targets = false;
    if n != 0 {
        rmms.with_mms(ids.ids(), ids.all(), &mut |mms| {
            let mut flush = TlbBatch::new();
            // Linux `migrate_folio_unmap` -> `try_to_migrate`, for every
            // page of the batch before the one flush.
            for iso in isolated.iter_mut().flatten() {
                if out_of_targets {
                    outcome[iso.i] = Err(MigrateError::NoTarget);
                    continue;
                }
                let Some(new) = target.alloc() else {
                    out_of_targets = true;
                    outcome[iso.i] = Err(MigrateError::NoTarget);
                    continue;
                };
                iso.new = Some(new);
                let pfn = batch[iso.i];
                // SAFETY: isolated: our reference holds the page.
                unsafe {
                    rmap::rmap_walk(rmms, mms, iso.page, iso.pin.as_ref(), &mut |mm, _, addr| {
                        rmap::try_to_migrate_one(mm, addr, pfn, iso.page, &mut flush)
                    })
                };
            }
            flush.flush();
            // Linux `migrate_folio_move`, or the undo of a failed unmap.
            for iso in isolated.iter_mut().flatten() {
                let Some(new) = iso.new else { continue };
                let old = batch[iso.i];
                let result = move_page(pgdat, rmms, iso.page, old, new);
                let (dst, dst_page) = match result {
                    Ok(newpage) => (new, newpage),
                    Err(_) => (old, iso.page),
                };
                // SAFETY: isolated: our reference holds the page.
                unsafe {
                    rmap::rmap_walk(rmms, mms, iso.page, iso.pin.as_ref(), &mut |mm, vma, addr| {
                        rmap::remove_migration_pte(mm, vma, addr, old, dst, dst_page)
                    })
                };
                outcome[iso.i] = result.map(|_| ());
            }
        });
    }
    for iso in isolated.iter_mut() {
        let Some(iso) = iso.take() else { continue };
        let old = batch[iso.i];
        // The old page leaves its LRU list before its flags go, which say
        // the list it is on; the new one takes its place there (Linux
        // isolates the page from the LRU first and puts the new one back).
        let on_lru = outcome[iso.i].is_ok() && pgdat.isolate_lru_folio(old);
        if on_lru {
            pgdat.put_lru_ref(old);
        }
        if outcome[iso.i].is_ok() {
            // The old page leaves its anon_vma: nothing maps it now.
            iso.page.clear(MIGRATE_FLAGS);
            iso.page.set_mapping(0);
        }
        folio_unlock(iso.page, old, rmms.folio_waits());
        drop(iso.pin);
        if let Some(new) = iso.new {
            if on_lru {
                pgdat.folio_add_lru(new);
            }
            if outcome[iso.i].is_ok() {
                // The target's reference: every pte holds its own now.
                // SAFETY: if it is the last, the address spaces that
                // mapped the page all went meanwhile, and nothing maps it.
                let _ = unsafe { pgdat.put_page(new) };
            } else {
                // SAFETY: a failed migration neither mapped `new` nor
                // copied into it (every failure comes before the copy).
                unsafe { target.free(new) };
            }
        }
        // SAFETY: our reference; after a move the last one (every pte
        // maps the new page), and nothing maps or uses the page any more.
        let _ = unsafe { pgdat.put_page(old) };
    }
    out_of_targets
}

/// Moves `page` (frame `old`), which no pte maps any more (every one is a
/// migration entry, flushed from every TLB), to `new` (Linux
/// `migrate_folio_move` -> `folio_copy`, `folio_migrate_flags`,
/// `folio_migrate_mapping`; a page-cache page's entry through
/// [`RmapMms::migrate_mapping`], after the copy: the page is locked, so
/// no `write(2)` changes it meanwhile, and a reader of the cache finds
/// the same data in either). Fails, changing nothing, if a pte still maps
/// it or someone else holds a reference.
fn move_page<'p, 'a, F: PteFormat + 'a, A: VmaAlloc + 'a, R: RmapMms<'a, F, A> + ?Sized>(
    pgdat: &'p PgData<'_>,
    rmms: &R,
    page: &Page,
    old: Pfn,
    new: Pfn,
) -> Result<&'p Page, MigrateError> {
    let newpage = pgdat.pfn_to_page(new).ok_or(MigrateError::NotMovable)?;
    if page.mapcount() > 0 {
        return Err(MigrateError::Busy);
    }
    // Linux `folio_ref_freeze` to the expected count: ours, and the
    // cache's for a page-cache page (a fault takes one only through a
    // present pte under the page-table lock, or from the cache under its
    // lock, which `migrate_mapping` checks again).
    let anon = rmap::page_anon(page);
    if page.refcount() != if anon { 1 } else { 2 } {
        return Err(MigrateError::Pinned);
    }
    if pgdat.page_address(new).is_none() {
        return Err(MigrateError::NotMovable);
    }
    // SAFETY: distinct pages: `new` came from the target and is mapped
    // nowhere; `old` is mapped by no pte (all migration entries), no CPU
    // holds a translation for it (flushed), and only our reference is
    // left, so nothing writes either page during the copy.
    unsafe { highmem::copy_page(pgdat, new, old) }.map_err(|_| MigrateError::NotMovable)?;
    newpage.set_mapping(page.mapping());
    newpage.set_index(page.index());
    newpage.set(page.flags() & MIGRATE_FLAGS);
    if !anon && !rmms.migrate_mapping(page.mapping(), page.index(), old, new) {
        newpage.clear(MIGRATE_FLAGS);
        newpage.set_mapping(0);
        return Err(MigrateError::Pinned);
    }
    Ok(newpage)
}

#[cfg(test)]
pub(crate) mod tests;
