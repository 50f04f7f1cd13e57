//! The folio lock (Linux `mm/filemap.c`'s `folio_lock`, `__folio_lock`,
//! `folio_unlock`, `folio_wait_locked` and `include/linux/pagemap.h`'s
//! `folio_trylock`). The page cache, the rest of filemap.c, joins this
//! module with its own issue.
//!
//! `PG_locked` is a sleeping lock on one page: taken by whoever must keep
//! the page's identity still while it works without the page-table lock
//! (migration now; page-cache reads, writeback and swap-in later). A task
//! that finds it taken sets `PG_waiters` and sleeps on the page's wait
//! queue in the [`FolioWaitTable`] (Linux hashes pages onto 256 queues);
//! the unlocker wakes that queue only when `PG_waiters` is set, so the
//! uncontended unlock is one atomic operation.
//!
//! Lock order: mmap lock -> folio lock -> page-table lock (Linux's, per
//! the top of mm/rmap.c). Sleeping for the lock needs a context that may
//! sleep; [`folio_trylock`] never sleeps.

use crate::addr::Pfn;
use crate::arch::FolioWaitTable;
use crate::page::Page;
use crate::page_flags::PageFlags;

/// Takes `page`'s lock if it is free (Linux `folio_trylock`).
pub fn folio_trylock(page: &Page) -> bool {
    !page.test_and_set_lock(PageFlags::LOCKED)
}

/// Whether `page` is locked (Linux `folio_test_locked`).
pub fn folio_test_locked(page: &Page) -> bool {
    page.test(PageFlags::LOCKED)
}

/// Takes `page`'s lock, sleeping in `table` until it is free (Linux
/// `folio_lock`).
pub fn folio_lock(page: &Page, pfn: Pfn, table: &dyn FolioWaitTable) {
    while !folio_trylock(page) {
        folio_wait_locked(page, pfn, table);
    }
}

/// Releases `page`'s lock and wakes its waiters, if any (Linux
/// `folio_unlock`).
pub fn folio_unlock(page: &Page, pfn: Pfn, table: &dyn FolioWaitTable) {
    let before = page.clear_unlock(PageFlags::LOCKED | PageFlags::WAITERS);
    debug_assert!(before.contains(PageFlags::LOCKED), "folio_unlock of an unlocked page {:#x}", pfn.as_u64());
    if before.contains(PageFlags::WAITERS) {
        table.wake_up(pfn);
    }
}

/// Sleeps until `page` is unlocked, without taking the lock (Linux
/// `folio_wait_locked`).
pub fn folio_wait_locked(page: &Page, pfn: Pfn, table: &dyn FolioWaitTable) {
    // `PG_waiters` is set at every test, after the waiter is queued:
    // whoever unlocks after a test that found the page locked sees it and
    // wakes the queue (an unlock clears it, and a new holder may not set
    // it again).
    table.wait_event(pfn, &mut || {
        page.set(PageFlags::WAITERS);
        !folio_test_locked(page)
    });
}
