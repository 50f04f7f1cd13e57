//! The LRU lists (Linux `mm/swap.c` and the list handling of
//! `include/linux/mm_inline.h`): every page in use by a file's cache or
//! by anonymous memory is on one of the node's five lists, which reclaim
//! ([`crate::vmscan`]) scans from their cold ends.
//!
//! - [`LruList`]: inactive and active anonymous (anonymous and shmem
//!   pages, `PG_swapbacked`), inactive and active file, unevictable. A
//!   page's list follows from its flags ([`folio_lru_list`]): `PG_lru`
//!   says it is on one, `PG_active` which half, `PG_unevictable` the last.
//!   The node state counts each list (`nr_inactive_anon`, ...; `Active`,
//!   `Inactive`, ... in /proc/meminfo).
//! - Page-cache pages (files' and shmem's) join when they are added to
//!   their cache, through a per-CPU batch of [`FOLIO_BATCH_SIZE`]
//!   ([`PgData::folio_add_lru`], Linux `folio_add_lru` and its
//!   `cpu_fbatches.lru_add`): the batch holds a reference on each page
//!   and moves them all under one hold of the list lock when it is full
//!   or drained ([`PgData::lru_add_drain`], [`PgData::lru_add_drain_all`]).
//!   Activations go through a second batch the same way
//!   (`cpu_fbatches.activate`), `MADV_COLD`'s deactivations through
//!   a third (`lru_deactivate`, [`PgData::folio_deactivate`]) and
//!   `MADV_FREE`'s lazily freeable pages through a fourth
//!   (`lru_lazyfree`, [`PgData::folio_mark_lazyfree`]: to the inactive
//!   file list, `PG_swapbacked` cleared).
//! - [`PgData::folio_mark_accessed`]: Linux's two-touch promotion. The
//!   first access sets `PG_referenced`; a second one on an inactive page
//!   activates it (moving it to its active list, or, still in this CPU's
//!   add batch, marking it to join active), clears the flag and ages the
//!   node's non-resident pages ([`crate::workingset::workingset_activation`]).
//! - Private anonymous pages join when a fault maps them first
//!   ([`PgData::folio_add_lru_vma`]); reclaim leaves the anonymous lists
//!   alone until there is swap. A batch's reference is one more on the
//!   page: the copy-on-write reuse test drains this CPU's batch before
//!   it counts (Linux `wp_can_reuse_anon_folio`).
//! - mlock ([`PgData::mlock_folio`], [`PgData::munlock_folio`]): pages
//!   mapped by a locked VMA get `PG_mlocked` and go to the unevictable
//!   list; munlock and unmap give them back; a page freed still mlocked
//!   is counted in `unevictable_pgs_cleared`. The flags that pick a
//!   page's list change only under the list lock while it is on one.
//! - Isolation ([`PgData::isolate_lru_folio`]) takes a page off its list
//!   with a reference, for reclaim and compaction, and
//!   [`PgData::folio_putback_lru`] gives it back.
//! - A page's last reference takes it off its list as it is freed (Linux
//!   `__page_cache_release` from `__folio_put`).
//!
//! # Locking
//!
//! The lists are behind one spin lock per node (Linux `lruvec->lru_lock`),
//! taken with interrupts off: the last reference of a page can go in an
//! interrupt (an I/O completion), which takes it off its list. A batch is
//! behind its CPU's own spin lock, also with interrupts off; a drain of
//! all CPUs takes each in turn. Order: batch lock -> list lock. Neither is
//! held across an allocation or a sleep, and no page reference is
//! dropped under the list lock (a last reference frees the page, which
//! takes it).
//!
//! # Differences from Linux
//!
//! - One lruvec per node and no memcg, no MGLRU; no `lru_rotate` batch
//!   (writeback's rotation takes the list lock at once,
//!   [`PgData::folio_rotate_reclaimable`]).
//! - No `mlock_count`: see [`PgData::mlock_folio`]; no mlock batch (the
//!   list lock is taken per page).

// Its tests free pages they allocated (an unsafe call); the module
// itself has no reason for unsafe.
#![cfg_attr(not(test), forbid(unsafe_code))]

use crate::addr::Pfn;
use crate::list::PageList;
use crate::page::Page;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::vmstat::{NodeStatItem, VmEventItem};

/// The LRU lists (Linux `enum lru_list`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LruList {
    /// Anonymous and shmem pages not used lately.
    InactiveAnon = 0,
    /// Anonymous and shmem pages in use.
    ActiveAnon = 1,
    /// File pages not used lately: reclaim's first choice.
    InactiveFile = 2,
    /// File pages in use.
    ActiveFile = 3,
    /// Pages reclaim must not take.
    Unevictable = 4,
}

/// Number of [`LruList`]s (Linux `NR_LRU_LISTS`).
pub const NR_LRU_LISTS: usize = 5;

impl LruList {
    /// Every list, in Linux's order.
    pub const ALL: [LruList; NR_LRU_LISTS] =
        [LruList::InactiveAnon, LruList::ActiveAnon, LruList::InactiveFile, LruList::ActiveFile, LruList::Unevictable];

    /// The node state item counting the list (Linux `NR_LRU_BASE + lru`).
    pub const fn stat(self) -> NodeStatItem {
        match self {
            LruList::InactiveAnon => NodeStatItem::NrInactiveAnon,
            LruList::ActiveAnon => NodeStatItem::NrActiveAnon,
            LruList::InactiveFile => NodeStatItem::NrInactiveFile,
            LruList::ActiveFile => NodeStatItem::NrActiveFile,
            LruList::Unevictable => NodeStatItem::NrUnevictable,
        }
    }
}

/// Whether a page belongs on the file lists (Linux `folio_is_file_lru`):
/// everything not `PG_swapbacked`.
pub fn folio_is_file_lru(page: &Page) -> bool {
    !page.test(PageFlags::SWAPBACKED)
}

/// Whether `MADV_FREE` may make a page lazily freeable (Linux
/// `folio_mark_lazyfree`'s and `lru_lazyfree`'s test): anonymous,
/// swap-backed, not in the swap cache, evictable.
fn folio_may_be_lazyfree(page: &Page) -> bool {
    crate::rmap::page_anon(page)
        && page.test(PageFlags::SWAPBACKED)
        && !page.test(PageFlags::SWAPCACHE)
        && !page.test(PageFlags::UNEVICTABLE)
}

/// The list a page belongs on, from its flags (Linux `folio_lru_list`).
pub fn folio_lru_list(page: &Page) -> LruList {
    if page.test(PageFlags::UNEVICTABLE) {
        return LruList::Unevictable;
    }
    match (folio_is_file_lru(page), page.test(PageFlags::ACTIVE)) {
        (false, false) => LruList::InactiveAnon,
        (false, true) => LruList::ActiveAnon,
        (true, false) => LruList::InactiveFile,
        (true, true) => LruList::ActiveFile,
    }
}

/// A node's LRU lists (Linux `struct lruvec`).
#[derive(Debug, Default)]
pub struct Lruvec {
    lists: [PageList; NR_LRU_LISTS],
}

impl Lruvec {
    /// Empty lists.
    pub const fn new() -> Self {
        Lruvec { lists: [const { PageList::new() }; NR_LRU_LISTS] }
    }

    /// Pages on `lru`.
    pub fn len(&self, lru: LruList) -> u64 {
        self.lists[lru as usize].len()
    }

    /// Every page of `lru`, hot to cold (for checks).
    pub fn pages<'m>(&'m self, pgdat: &'m PgData<'_>, lru: LruList) -> impl Iterator<Item = Pfn> + 'm {
        self.lists[lru as usize].iter(pgdat.mem_map())
    }
}

/// Pages a per-CPU batch holds (Linux `PAGEVEC_SIZE`/`FOLIO_BATCH_SIZE`).
pub const FOLIO_BATCH_SIZE: usize = 15;

/// A batch of pages waiting for the list lock (Linux `struct
/// folio_batch`); each holds a reference the batch drops once it moved.
#[derive(Debug, Default)]
struct FolioBatch {
    nr: usize,
    pfns: [u64; FOLIO_BATCH_SIZE],
}

impl FolioBatch {
    const fn new() -> Self {
        FolioBatch { nr: 0, pfns: [0; FOLIO_BATCH_SIZE] }
    }

    fn take(&mut self) -> ([u64; FOLIO_BATCH_SIZE], usize) {
        let taken = (self.pfns, self.nr);
        self.nr = 0;
        taken
    }
}

/// One CPU's batches (Linux `struct cpu_fbatches`): pages to add, pages
/// to activate. All-zero memory is a valid, empty state.
#[derive(Debug, Default)]
pub struct LruBatches(spin::Mutex<Batches>);

#[derive(Debug, Default)]
struct Batches {
    add: FolioBatch,
    activate: FolioBatch,
    deactivate: FolioBatch,
    lazyfree: FolioBatch,
}

impl LruBatches {
    /// Empty batches.
    pub const fn new() -> Self {
        LruBatches(spin::Mutex::new(Batches {
            add: FolioBatch::new(),
            activate: FolioBatch::new(),
            deactivate: FolioBatch::new(),
            lazyfree: FolioBatch::new(),
        }))
    }
}

/// What a batch does with its pages under the list lock.
#[derive(Clone, Copy)]
enum BatchMove {
    /// Put each page on its list (Linux `lru_add_fn`).
    Add,
    /// Move each inactive page on a list to its active list (Linux
    /// `folio_activate_fn`).
    Activate,
    /// Move each active page on a list to the hot end of its inactive
    /// list, unreferenced (Linux `lru_deactivate_fn`).
    Deactivate,
    /// Move each anonymous, swap-backed page not in the swap cache to the
    /// inactive file list as lazily freeable: inactive, unreferenced, no
    /// longer `PG_swapbacked` (Linux `lru_lazyfree`).
    Lazyfree,
}

impl PgData<'_> {
    /// Links `pfn` at the hot end of its list; the caller holds the list
    /// lock and has set `PG_lru` (Linux `lruvec_add_folio`).
    fn lruvec_add(&self, lruvec: &mut Lruvec, pfn: Pfn, page: &Page) {
        let lru = folio_lru_list(page);
        lruvec.lists[lru as usize].push_front(self.mem_map(), pfn);
        self.mod_node_page_state(lru.stat(), 1);
    }

    /// Unlinks `pfn` from its list; the caller holds the list lock and
    /// the page has `PG_lru` (Linux `lruvec_del_folio`).
    fn lruvec_del(&self, lruvec: &mut Lruvec, pfn: Pfn, page: &Page) {
        let lru = folio_lru_list(page);
        lruvec.lists[lru as usize].remove(self.mem_map(), pfn);
        self.mod_node_page_state(lru.stat(), -1);
    }

    /// Puts a new page on the LRU through this CPU's batch (Linux
    /// `folio_add_lru`): a cache page when it is added, an anonymous page
    /// when it is first mapped. The batch takes a reference of its own.
    pub fn folio_add_lru(&self, pfn: Pfn) {
        self.batch_add(pfn, BatchMove::Add);
    }

    fn batch_add(&self, pfn: Pfn, how: BatchMove) {
        let Some(page) = self.pfn_to_page(pfn) else { return };
        page.get();
        let full = self.with_irqs_off(|| {
            let batches = self.lru_batches().get(self.lru_batch_index())?;
            let mut b = batches.0.lock();
            let batch = match how {
                BatchMove::Add => &mut b.add,
                BatchMove::Activate => &mut b.activate,
                BatchMove::Deactivate => &mut b.deactivate,
                BatchMove::Lazyfree => &mut b.lazyfree,
            };
            if let Some(slot) = batch.pfns.get_mut(batch.nr) {
                *slot = pfn.as_u64();
                batch.nr += 1;
            }
            (batch.nr == FOLIO_BATCH_SIZE).then(|| batch.take())
        });
        match full {
            Some((pfns, nr)) => self.batch_move(&pfns[..nr], how),
            // No per-CPU batch for this CPU (a caller bug): move at once.
            None if self.lru_batches().get(self.lru_batch_index()).is_none() => self.batch_move(&[pfn.as_u64()], how),
            None => {}
        }
    }

    /// Moves a batch's pages under one hold of the list lock, then drops
    /// the batch's references (Linux `folio_batch_move_lru`).
    fn batch_move(&self, pfns: &[u64], how: BatchMove) {
        self.with_irqs_off(|| {
            let mut lruvec = self.lruvec().lock();
            for &pfn in pfns {
                let pfn = Pfn::new(pfn);
                let Some(page) = self.pfn_to_page(pfn) else { continue };
                match how {
                    BatchMove::Add => {
                        if !page.test(PageFlags::LRU) {
                            page.set(PageFlags::LRU);
                            self.lruvec_add(&mut lruvec, pfn, page);
                        }
                    }
                    BatchMove::Activate => {
                        let flags = page.flags();
                        if flags.contains(PageFlags::LRU)
                            && !flags.intersects(PageFlags::ACTIVE | PageFlags::UNEVICTABLE)
                        {
                            self.lruvec_del(&mut lruvec, pfn, page);
                            page.set(PageFlags::ACTIVE);
                            self.lruvec_add(&mut lruvec, pfn, page);
                            self.count_vm_events(VmEventItem::Pgactivate, 1);
                        }
                    }
                    BatchMove::Deactivate => {
                        let flags = page.flags();
                        if flags.contains(PageFlags::LRU | PageFlags::ACTIVE) && !flags.contains(PageFlags::UNEVICTABLE)
                        {
                            self.lruvec_del(&mut lruvec, pfn, page);
                            page.clear(PageFlags::ACTIVE);
                            page.clear(PageFlags::REFERENCED);
                            self.lruvec_add(&mut lruvec, pfn, page);
                            self.count_vm_events(VmEventItem::Pgdeactivate, 1);
                        }
                    }
                    BatchMove::Lazyfree => {
                        if page.test(PageFlags::LRU) && folio_may_be_lazyfree(page) {
                            self.lruvec_del(&mut lruvec, pfn, page);
                            page.clear(PageFlags::ACTIVE);
                            page.clear(PageFlags::REFERENCED);
                            // Clean anonymous pages without swap backing:
                            // on the file lists, which reclaim scans with
                            // or without swap.
                            page.clear(PageFlags::SWAPBACKED);
                            self.lruvec_add(&mut lruvec, pfn, page);
                            self.count_vm_events(VmEventItem::Pglazyfree, 1);
                        }
                    }
                }
            }
        });
        for &pfn in pfns {
            // The batch's own reference, taken in `batch_add`; the page
            // may be freed here, off the lock.
            self.put_lru_ref(Pfn::new(pfn));
        }
    }

    /// Moves this CPU's batches to the lists (Linux `lru_add_drain`).
    pub fn lru_add_drain(&self) {
        self.drain_cpu(self.lru_batch_index());
    }

    /// Moves every CPU's batches to the lists (Linux `lru_add_drain_all`,
    /// which asks each CPU to drain its own; ours are behind locks, so
    /// this CPU drains them all).
    pub fn lru_add_drain_all(&self) {
        for cpu in 0..self.lru_batches().len() {
            self.drain_cpu(cpu);
        }
    }

    fn drain_cpu(&self, cpu: usize) {
        let taken = self.with_irqs_off(|| {
            let batches = self.lru_batches().get(cpu)?;
            let mut b = batches.0.lock();
            Some([
                (b.add.take(), BatchMove::Add),
                (b.activate.take(), BatchMove::Activate),
                (b.deactivate.take(), BatchMove::Deactivate),
                (b.lazyfree.take(), BatchMove::Lazyfree),
            ])
        });
        for ((pfns, nr), how) in taken.into_iter().flatten() {
            self.batch_move(&pfns[..nr], how);
        }
    }

    /// Notes an access to a page (Linux `folio_mark_accessed`): an
    /// unreferenced page becomes referenced; a referenced inactive one is
    /// activated and loses the flag: on its list, through the activate
    /// batch; still in this CPU's add batch, by marking it to join the
    /// active list (Linux `__lru_cache_activate_folio`); either way the
    /// inactive list has aged (Linux `workingset_activation`).
    pub fn folio_mark_accessed(&self, pfn: Pfn) {
        let Some(page) = self.pfn_to_page(pfn) else { return };
        if !page.test(PageFlags::REFERENCED) {
            page.set(PageFlags::REFERENCED);
            return;
        }
        if page.test(PageFlags::UNEVICTABLE) || page.test(PageFlags::ACTIVE) {
            return;
        }
        if page.test(PageFlags::LRU) {
            self.batch_add(pfn, BatchMove::Activate);
        } else {
            self.with_irqs_off(|| {
                let Some(batches) = self.lru_batches().get(self.lru_batch_index()) else { return };
                let b = batches.0.lock();
                if b.add.pfns[..b.add.nr].contains(&pfn.as_u64()) {
                    page.set(PageFlags::ACTIVE);
                }
            });
        }
        page.clear(PageFlags::REFERENCED);
        crate::workingset::workingset_activation(self);
    }

    /// Moves an active page to its inactive list through this CPU's
    /// deactivate batch (Linux `folio_deactivate`, for `MADV_COLD`): the
    /// next reclaim finds it sooner. Pages off the lists or unevictable
    /// are left alone.
    pub fn folio_deactivate(&self, pfn: Pfn) {
        let Some(page) = self.pfn_to_page(pfn) else { return };
        let flags = page.flags();
        if flags.contains(PageFlags::LRU | PageFlags::ACTIVE) && !flags.contains(PageFlags::UNEVICTABLE) {
            self.batch_add(pfn, BatchMove::Deactivate);
        }
    }

    /// Marks an anonymous page lazily freeable through this CPU's lazyfree
    /// batch (Linux `folio_mark_lazyfree`, for `MADV_FREE`): it moves to
    /// the inactive file list without `PG_swapbacked`, and reclaim drops
    /// it rather than swap it unless it is written again
    /// ([`crate::vmscan`]). The caller has cleaned the page and its pte.
    /// Pages in the swap cache, unevictable or not swap-backed are left
    /// alone.
    pub fn folio_mark_lazyfree(&self, pfn: Pfn) {
        let Some(page) = self.pfn_to_page(pfn) else { return };
        if folio_may_be_lazyfree(page) {
            self.batch_add(pfn, BatchMove::Lazyfree);
        }
    }

    /// Takes a page off its list for reclaim or compaction (Linux
    /// `folio_isolate_lru`), with a reference for the caller; false if
    /// it is on no list or is being freed.
    pub fn isolate_lru_folio(&self, pfn: Pfn) -> bool {
        let Some(page) = self.pfn_to_page(pfn) else { return false };
        self.with_irqs_off(|| {
            let mut lruvec = self.lruvec().lock();
            if !page.test(PageFlags::LRU) || !page.try_get() {
                return false;
            }
            page.clear(PageFlags::LRU);
            self.lruvec_del(&mut lruvec, pfn, page);
            true
        })
    }

    /// Takes up to `out.len()` pages off the cold end of `lru` with a
    /// reference each, looking at no more than `nr_to_scan` (Linux
    /// `isolate_lru_folios`); a page on its way to being freed is rotated
    /// to the hot end instead. Returns how many pages it scanned and how
    /// many it took (at the front of `out`).
    pub fn isolate_lru_folios(&self, lru: LruList, nr_to_scan: u64, out: &mut [Pfn]) -> (u64, usize) {
        self.with_irqs_off(|| {
            let mut lruvec = self.lruvec().lock();
            let (mut scanned, mut taken) = (0, 0);
            while scanned < nr_to_scan && taken < out.len() {
                let Some(pfn) = lruvec.lists[lru as usize].pop_back(self.mem_map()) else { break };
                scanned += 1;
                let Some(page) = self.pfn_to_page(pfn) else { continue };
                if page.try_get() {
                    page.clear(PageFlags::LRU);
                    self.mod_node_page_state(lru.stat(), -1);
                    out[taken] = pfn;
                    taken += 1;
                } else {
                    lruvec.lists[lru as usize].push_front(self.mem_map(), pfn);
                }
            }
            (scanned, taken)
        })
    }

    /// Gives back a page [`PgData::isolate_lru_folio`] took, on the list
    /// its flags now say (Linux `folio_putback_lru`), and drops the
    /// isolation's reference.
    pub fn folio_putback_lru(&self, pfn: Pfn) {
        let Some(page) = self.pfn_to_page(pfn) else { return };
        self.with_irqs_off(|| {
            let mut lruvec = self.lruvec().lock();
            if !page.test(PageFlags::LRU) {
                page.set(PageFlags::LRU);
                self.lruvec_add(&mut lruvec, pfn, page);
            }
        });
        self.put_lru_ref(pfn);
    }

    /// Moves a page whose writeback reclaim waited for to the cold end of
    /// its inactive list (Linux `folio_rotate_reclaimable` and
    /// `lru_move_tail`, without the batch: the list lock is taken with
    /// interrupts off, and this runs from the write's completion): the
    /// next scan frees it. Not a page that is locked, dirty again,
    /// unevictable or off the lists.
    pub fn folio_rotate_reclaimable(&self, pfn: Pfn) {
        let Some(page) = self.pfn_to_page(pfn) else { return };
        let rotated = self.with_irqs_off(|| {
            let mut lruvec = self.lruvec().lock();
            let flags = page.flags();
            if !flags.contains(PageFlags::LRU)
                || flags.intersects(PageFlags::LOCKED | PageFlags::DIRTY | PageFlags::UNEVICTABLE)
            {
                return false;
            }
            self.lruvec_del(&mut lruvec, pfn, page);
            page.clear(PageFlags::ACTIVE);
            let lru = folio_lru_list(page);
            lruvec.lists[lru as usize].push_back(self.mem_map(), pfn);
            self.mod_node_page_state(lru.stat(), 1);
            true
        });
        if rotated {
            self.count_vm_events(VmEventItem::Pgrotated, 1);
        }
    }

    /// Takes a page whose last reference just went off its list and out
    /// of the mlock count (Linux `__page_cache_release`): called by the
    /// free path for a page with `PG_lru` or `PG_mlocked`, which nothing
    /// else can reach any more.
    pub(crate) fn lru_del_on_free(&self, pfn: Pfn, page: &Page) {
        self.with_irqs_off(|| {
            let mut lruvec = self.lruvec().lock();
            if page.test(PageFlags::LRU) {
                self.lruvec_del(&mut lruvec, pfn, page);
                page.clear(PageFlags::LRU);
            }
        });
        if page.test_and_clear(PageFlags::MLOCKED) {
            self.mod_node_page_state(NodeStatItem::NrMlock, -1);
            self.count_vm_events(VmEventItem::UnevictablePgsCleared, 1);
        }
        page.clear(PageFlags::ACTIVE);
        page.clear(PageFlags::UNEVICTABLE);
    }

    /// Puts a page this fault just made on the LRU (Linux
    /// `folio_add_lru_vma`): mlocked and unevictable at once if its VMA
    /// is locked (`mlock_new_folio`), else through
    /// [`PgData::folio_add_lru`]. No one else sees the page yet.
    pub fn folio_add_lru_vma(&self, pfn: Pfn, locked: bool) {
        if locked && let Some(page) = self.pfn_to_page(pfn) {
            if !page.test_and_set(PageFlags::MLOCKED) {
                self.mod_node_page_state(NodeStatItem::NrMlock, 1);
                self.count_vm_events(VmEventItem::UnevictablePgsMlocked, 1);
            }
            page.set(PageFlags::UNEVICTABLE);
            self.count_vm_events(VmEventItem::UnevictablePgsCulled, 1);
        }
        self.folio_add_lru(pfn);
    }

    /// Marks a page mapped by a locked VMA (Linux `mlock_folio` /
    /// `mlock_vma_folio`): `PG_mlocked`, counted in `NR_MLOCK`, and onto
    /// the unevictable list, where reclaim never looks. A page off the
    /// lists (in a batch, isolated) gets the flag and joins that list
    /// when it is put back. The caller holds a reference (a pte's, under
    /// its lock, or the isolation's).
    ///
    /// Linux counts the locked VMAs mapping a page in `mlock_count`; we
    /// keep no count: the first unmap or munlock of a page from a locked
    /// VMA clears the flag ([`PgData::munlock_folio`]), and reclaim's
    /// reverse-map walk marks it again if another locked VMA still maps
    /// it (as Linux's `folio_referenced_one` does when its count was
    /// lost).
    pub fn mlock_folio(&self, pfn: Pfn) {
        let Some(page) = self.pfn_to_page(pfn) else { return };
        if !page.test_and_set(PageFlags::MLOCKED) {
            self.mod_node_page_state(NodeStatItem::NrMlock, 1);
            self.count_vm_events(VmEventItem::UnevictablePgsMlocked, 1);
        }
        let culled = self.with_irqs_off(|| {
            let mut lruvec = self.lruvec().lock();
            if page.test(PageFlags::UNEVICTABLE) {
                return false;
            }
            let on_list = page.test(PageFlags::LRU);
            if on_list {
                self.lruvec_del(&mut lruvec, pfn, page);
                page.clear(PageFlags::ACTIVE);
            }
            page.set(PageFlags::UNEVICTABLE);
            if on_list {
                self.lruvec_add(&mut lruvec, pfn, page);
            }
            true
        });
        if culled {
            self.count_vm_events(VmEventItem::UnevictablePgsCulled, 1);
        }
    }

    /// Takes `PG_mlocked` away (Linux `munlock_folio`) and gives the page
    /// back to the evictable lists, inactive: munlock, munmap and exit of
    /// a locked VMA. The caller holds a reference.
    pub fn munlock_folio(&self, pfn: Pfn) {
        let Some(page) = self.pfn_to_page(pfn) else { return };
        if !page.test_and_clear(PageFlags::MLOCKED) {
            return;
        }
        self.mod_node_page_state(NodeStatItem::NrMlock, -1);
        self.count_vm_events(VmEventItem::UnevictablePgsMunlocked, 1);
        let rescued = self.with_irqs_off(|| {
            let mut lruvec = self.lruvec().lock();
            if !page.test(PageFlags::UNEVICTABLE) {
                return false;
            }
            let on_list = page.test(PageFlags::LRU);
            if on_list {
                self.lruvec_del(&mut lruvec, pfn, page);
            }
            page.clear(PageFlags::UNEVICTABLE);
            if on_list {
                self.lruvec_add(&mut lruvec, pfn, page);
            }
            on_list
        });
        if rescued {
            self.count_vm_events(VmEventItem::UnevictablePgsRescued, 1);
        }
    }

    /// Pages on `lru` now.
    pub fn lru_pages(&self, lru: LruList) -> u64 {
        self.with_irqs_off(|| self.lruvec().lock().len(lru))
    }
}

#[cfg(test)]
mod tests;
