//! Reverse-map walks: from a page to every pte that maps it (Linux
//! `mm/rmap.c`'s `rmap_walk`, `rmap_walk_anon`, `rmap_walk_file`,
//! `folio_referenced`, `try_to_unmap`, `try_to_migrate`, the TLB batching
//! of `try_to_unmap_flush`; `mm/page_vma_mapped.c`'s
//! `page_vma_mapped_walk`; `mm/migrate.c`'s `remove_migration_ptes`).
//!
//! A walk asks the page's reverse map (its `anon_vma`'s tree, or its
//! file's `i_mmap`) for the VMAs that may map it, each as an address
//! space ([`MmId`]) and the address `vma_address` gives; then, in each of
//! those address spaces, it looks at the pte at that address under the
//! page-table lock and acts on it if it maps the page
//! (`page_vma_mapped_walk`, for one small page).
//!
//! # Locking (a difference from Linux)
//!
//! Linux reaches a VMA from the reverse map and its page tables under the
//! page-table lock alone, the VMA kept alive by the `anon_vma` or
//! `i_mmap` lock. Here a walk first collects the address spaces the
//! reverse map names, then has the kernel lock each one's mmap lock for
//! reading ([`RmapMms::with_mms`]) and walks again under those locks, so
//! that the VMAs it finds cannot change or go while it acts. The caller
//! usually holds the page lock, and a fault may hold an mmap lock while
//! it waits for a page lock, so the kernel only *tries* each mmap lock:
//! an address space it cannot lock is skipped, and the walk says it was
//! incomplete (a migration then finds the page still mapped and puts it
//! back). Lock order inside: mmap lock -> page lock -> `i_mmap` or
//! anon_vma lock -> page-table lock.
//!
//! TLB flushes are batched per walk ([`TlbBatch`], Linux
//! `try_to_unmap_flush`): a pte is cleared under the page-table lock, its
//! address space and address recorded, and one flush per address space
//! range runs on every CPU before anything relies on the old translation
//! being gone (before a copy, before a page reference is dropped).

#![allow(unsafe_code)]

use core::ops::ControlFlow;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::addr::{PAGE_SIZE, Pfn, PhysAddr, VirtAddr};
use crate::arch::{FolioWaitTable, TlbFlush};
use crate::interval_tree::{IMmap, MmId};
use crate::memory::vm_get_page_prot;
use crate::mmap::MmStruct;
use crate::page::Page;
use crate::pgtable::{Entry, Leaf, Level, PageSize, PgProt, PteFormat};
use crate::swapops::{
    is_migration_entry_dirty, is_migration_entry_young, is_writable_migration_entry, make_migration_entry_ad,
    migration_entry_to_pfn,
};
use crate::vma::{Vma, VmaAlloc, VmaFlags};

use super::anon_vma::{AnonVmaPin, folio_lock_anon_vma};
use super::{page_anon, page_dup_rmap, page_remove_rmap};

/// What [`RmapMms::with_mms`] calls with the locked address spaces.
pub type WithMms<'f, 'a, F, A> = dyn FnMut(&[&MmStruct<'a, F, A>]) + 'f;

/// What [`rmap_walk`] calls for each VMA that may map the page.
type RmapOne<'f, 'a, F, A> = dyn FnMut(&MmStruct<'a, F, A>, &Vma, u64) + 'f;

/// Distinct address spaces a walk names before it asks for every one
/// (the kernel's `mms_mapping` does the same for `i_mmap`).
pub const RMAP_MMS: usize = 16;

/// How reverse-map walks reach the address spaces the reverse maps name
/// (Linux follows `vma->vm_mm`; the kernel finds them on its list of
/// address spaces by [`MmId`]), and the page caches' `i_mmap`s.
pub trait RmapMms<'a, F: PteFormat + 'a, A: VmaAlloc + 'a> {
    /// The allocator every address space takes its VMAs and `anon_vma`s
    /// from, whose lock is the anon_vma lock.
    fn vma_alloc(&self) -> &A;

    /// Calls `f` once with the live address spaces named in `ids` (every
    /// live one if `all`) whose mmap lock it could take for reading
    /// without waiting, held for the call. Those it could not lock are
    /// missing from the slice.
    fn with_mms(&self, ids: &[MmId], all: bool, f: &mut WithMms<'_, 'a, F, A>);

    /// Calls `f` with the `i_mmap` of the page cache `mapping`
    /// ([`crate::filemap::MappingId`]), if it still exists. Called with
    /// a page naming `mapping` locked (the page lock keeps a page in its
    /// cache, and the cache alive). By default there is none, and file
    /// pages are found by no walk.
    fn i_mmap(&self, mapping: u64, f: &mut dyn FnMut(&IMmap)) {
        let _ = (mapping, f);
    }

    /// Puts `new` in the page cache `mapping` in place of `old` at
    /// `index` ([`crate::filemap::AddressSpace::migrate_folio`] under the
    /// cache's lock; Linux `filemap_migrate_folio`), with `old` locked and
    /// copied into `new`; false (nothing changed) if the cache no longer
    /// has it there or someone holds it. By default nothing moves.
    fn migrate_mapping(&self, mapping: u64, index: u64, old: Pfn, new: Pfn) -> bool {
        let _ = (mapping, index, old, new);
        false
    }

    /// Where tasks wait for the pages a walk locked (faults that meet a
    /// migration entry), woken when they are unlocked.
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

/// The address spaces a walk names: up to [`RMAP_MMS`], or all.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MmIds {
    ids: [MmId; RMAP_MMS],
    n: usize,
    all: bool,
}

impl MmIds {
    pub(crate) fn new() -> Self {
        MmIds { ids: [MmId(0); RMAP_MMS], n: 0, all: false }
    }

    fn add(&mut self, id: MmId) {
        if self.all || self.ids[..self.n].contains(&id) {
            return;
        }
        match self.ids.get_mut(self.n) {
            Some(slot) => {
                *slot = id;
                self.n += 1;
            }
            None => self.all = true,
        }
    }

    pub(crate) fn ids(&self) -> &[MmId] {
        &self.ids[..self.n]
    }

    pub(crate) fn all(&self) -> bool {
        self.all
    }
}

/// Address-space ranges a [`TlbBatch`] holds before it flushes.
const TLB_BATCH: usize = 8;

/// Translations cleared by a walk and not yet flushed (Linux's
/// `tlbflush_unmap_batch` and `try_to_unmap_flush`): per address space,
/// the span from its lowest to its highest address, flushed on every CPU.
pub(crate) struct TlbBatch<'t> {
    tlb: Option<&'t dyn TlbFlush>,
    ranges: [(PhysAddr, u64, u64); TLB_BATCH],
    n: usize,
}

impl<'t> TlbBatch<'t> {
    pub(crate) fn new() -> Self {
        TlbBatch { tlb: None, ranges: [(PhysAddr::new(0), 0, 0); TLB_BATCH], n: 0 }
    }

    /// Records the page at `addr` in the address space with root `root`.
    fn add(&mut self, tlb: &'t dyn TlbFlush, root: PhysAddr, addr: u64) {
        self.tlb = Some(tlb);
        if let Some(r) = self.ranges[..self.n].iter_mut().find(|r| r.0 == root) {
            r.1 = r.1.min(addr);
            r.2 = r.2.max(addr);
            return;
        }
        if self.n == TLB_BATCH {
            self.flush();
        }
        self.ranges[self.n] = (root, addr, addr);
        self.n += 1;
    }

    /// Flushes everything recorded from every CPU (Linux
    /// `try_to_unmap_flush`).
    pub(crate) fn flush(&mut self) {
        if let Some(tlb) = self.tlb {
            for &(root, lo, hi) in &self.ranges[..self.n] {
                tlb.flush_tlb_mm_range(root, VirtAddr::expect_canonical(lo), hi - lo + PAGE_SIZE);
            }
        }
        self.n = 0;
    }
}

impl Drop for TlbBatch<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Adds to `ids` the address spaces the reverse map of `page` names
/// (the first pass of a walk, before any mmap lock is taken).
///
/// # Safety
/// The caller holds a reference on `page`.
pub(crate) unsafe fn rmap_mm_ids<'a, F: PteFormat + 'a, A: VmaAlloc + 'a, R: RmapMms<'a, F, A> + ?Sized>(
    rmms: &R,
    page: &Page,
    pin: Option<&AnonVmaPin<'_, A>>,
    ids: &mut MmIds,
) {
    // SAFETY: the caller's reference.
    unsafe { rmap_query(rmms, page, pin, &mut |id, _| ids.add(id)) };
}

/// Calls `f(mm, addr)` for every VMA the reverse map of `page` names as
/// possibly mapping it (Linux `rmap_walk_anon`'s and `rmap_walk_file`'s
/// interval tree queries), under the `anon_vma` or `i_mmap` lock.
///
/// # Safety
/// The caller holds a reference on `page`.
unsafe fn rmap_query<'a, F: PteFormat + 'a, A: VmaAlloc + 'a, R: RmapMms<'a, F, A> + ?Sized>(
    rmms: &R,
    page: &Page,
    pin: Option<&AnonVmaPin<'_, A>>,
    f: &mut dyn FnMut(MmId, u64),
) {
    let index = page.index();
    if page_anon(page) {
        // SAFETY: the caller's reference; `vma_alloc` is the allocator of
        // every address space that can map the page.
        if let Some(locked) = unsafe { folio_lock_anon_vma(rmms.vma_alloc(), page, pin) } {
            locked.for_each_avc(index, |copy| f(copy.mm, copy.address(index)));
        }
    } else if page.mapping() != 0 {
        rmms.i_mmap(page.mapping(), &mut |i_mmap| {
            i_mmap.for_each_vma(index, index, |vma| f(vma.mm, vma.address(index)));
        });
    }
}

/// Calls `f(mm, vma, addr)` for every VMA of the locked address spaces
/// `mms` that the reverse map of `page` names as possibly mapping it at
/// `addr` (Linux `rmap_walk`, under its `anon_vma` or `i_mmap` lock:
/// `f` must not sleep). Returns false if the reverse map named an address
/// space missing from `mms` (one the kernel could not lock).
///
/// # Safety
/// The caller holds a reference on `page`.
pub(crate) unsafe fn rmap_walk<'a, F: PteFormat + 'a, A: VmaAlloc + 'a, R: RmapMms<'a, F, A> + ?Sized>(
    rmms: &R,
    mms: &[&MmStruct<'a, F, A>],
    page: &Page,
    pin: Option<&AnonVmaPin<'_, A>>,
    f: &mut RmapOne<'_, 'a, F, A>,
) -> bool {
    let mut complete = true;
    let mut visit = |id: MmId, addr: u64| match mms.iter().find(|mm| mm.vmas.owner() == id) {
        None => complete = false,
        Some(mm) => {
            if let Some(vma) = VirtAddr::new(addr).and_then(|a| mm.vmas.vma_lookup(a)) {
                f(mm, vma, addr);
            }
        }
    };
    // SAFETY: the caller's reference.
    unsafe { rmap_query(rmms, page, pin, &mut visit) };
    complete
}

/// What the pte a walk checks must be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A present (or protnone) pte mapping the page.
    Present,
    /// A migration entry for the page.
    Migration,
}

/// Runs `f` on the pte at `addr` in `mm` under the page-table lock if it
/// is what `want` says for `pfn` (Linux `page_vma_mapped_walk` for one
/// small page, `check_pte`).
fn page_vma_mapped<F: PteFormat, A: VmaAlloc, R>(
    mm: &MmStruct<'_, F, A>,
    addr: u64,
    pfn: Pfn,
    want: Want,
    f: impl FnOnce(&AtomicU64, Entry) -> R,
) -> Option<R> {
    let slot = mm.pgd.pte_offset(VirtAddr::new(addr)?, false).ok().flatten()?;
    let _ptl = mm.page_table_lock.lock();
    let entry = mm.pgd.format().decode(slot.load(Ordering::Acquire), Level::Pte);
    let hit = match (entry, want) {
        (Entry::Leaf(leaf), Want::Present) => leaf.phys.pfn() == pfn,
        (Entry::Swap(e), Want::Migration) => migration_entry_to_pfn(e) == Some(pfn),
        _ => false,
    };
    hit.then(|| f(slot, entry))
}

/// Replaces the pte mapping `page` (frame `pfn`) at `addr` by a migration
/// entry that keeps its write, young and dirty bits, and takes the page's
/// mapping and the pte's reference away (Linux `try_to_migrate_one`); the
/// caller holds a reference of its own and the page lock. The flush is
/// `batch`'s.
pub(crate) fn try_to_migrate_one<'t, F: PteFormat, A: VmaAlloc>(
    mm: &MmStruct<'t, F, A>,
    addr: u64,
    pfn: Pfn,
    page: &Page,
    batch: &mut TlbBatch<'t>,
) {
    let fmt = mm.pgd.format();
    let pgdat = mm.pgd.pgdat();
    let done = page_vma_mapped(mm, addr, pfn, Want::Present, |slot, _| {
        let entry_of = |raw: u64| match fmt.decode(raw, Level::Pte) {
            Entry::Leaf(l) => make_migration_entry_ad(
                pfn,
                l.prot.contains(PgProt::WRITE),
                l.prot.contains(PgProt::ACCESSED),
                l.prot.contains(PgProt::DIRTY),
            ),
            _ => make_migration_entry_ad(pfn, false, false, false),
        };
        let raw = slot.load(Ordering::Acquire);
        let before = slot.swap(fmt.encode_swp(entry_of(raw)), Ordering::AcqRel);
        // A CPU may have set the accessed or dirty bit between the load
        // and the swap; none can set them in a non-present entry.
        if before != raw {
            slot.store(fmt.encode_swp(entry_of(before)), Ordering::Release);
        }
    });
    if done.is_some() {
        batch.add(mm.tlb, mm.pgd.root(), addr);
        page_remove_rmap(pgdat, page);
        // The pte's reference; never the last, the caller holds one.
        let last = page.put_testzero();
        debug_assert!(!last, "try_to_migrate dropped the last reference of {:#x}", pfn.as_u64());
    }
}

/// Turns the migration entry for `old` at `addr` back into a pte, mapping
/// `new` (`old` itself when the migration failed) with the VMA's
/// protection and the entry's write, young and dirty bits (Linux
/// `remove_migration_pte`). `new` carries its final `mapping` and
/// `index`; it gains a mapping and a reference per pte.
pub(crate) fn remove_migration_pte<F: PteFormat, A: VmaAlloc>(
    mm: &MmStruct<'_, F, A>,
    vma: &Vma,
    addr: u64,
    old: Pfn,
    new: Pfn,
    newpage: &Page,
) {
    let fmt = mm.pgd.format();
    let pgdat = mm.pgd.pgdat();
    page_vma_mapped(mm, addr, old, Want::Migration, |slot, entry| {
        let Entry::Swap(e) = entry else { return };
        let mut prot = vm_get_page_prot(vma.flags());
        if !is_writable_migration_entry(e) {
            prot -= PgProt::WRITE;
        }
        if !is_migration_entry_young(e) {
            prot -= PgProt::ACCESSED;
        }
        if is_migration_entry_dirty(e) {
            prot |= PgProt::DIRTY;
        }
        newpage.get();
        page_dup_rmap(pgdat, newpage);
        slot.store(fmt.encode_leaf(Leaf { phys: new.phys(), prot, size: PageSize::Size4K }), Ordering::Release);
    });
}

/// What [`folio_referenced`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Referenced {
    /// Ptes whose accessed bit was set (and is now clear).
    pub referenced: u32,
    /// The flags of every VMA such a pte was in, or'ed (Linux's
    /// `vm_flags` out-parameter), and `VM_LOCKED` if any locked VMA maps
    /// the page, young or not: the page should be mlocked.
    pub vm_flags: VmaFlags,
    /// Whether every address space the reverse map named was visited.
    pub complete: bool,
}

/// Harvests and clears the accessed bits of every pte mapping the page
/// `pfn` (Linux `folio_referenced` / `folio_referenced_one`), flushing
/// the cleared translations in batches. With `is_locked` the caller holds
/// the page lock (reclaim); else the walk tries it for a file page and
/// counts a page someone else holds as referenced. The walk takes its own
/// reference on the page (none if the page is free: nothing is
/// referenced).
pub fn folio_referenced<'a, F: PteFormat + 'a, A: VmaAlloc + 'a, R: RmapMms<'a, F, A> + ?Sized>(
    rmms: &R,
    pgdat: &crate::page_alloc::PgData<'_>,
    pfn: Pfn,
    is_locked: bool,
) -> Referenced {
    let mut out = Referenced::default();
    with_page_ref(pgdat, pfn, |page| {
        // A file page's cache is reached under the page lock; one someone
        // else holds counts as referenced (Linux `folio_referenced`'s
        // failed `folio_trylock`).
        let _locked = if is_locked {
            None
        } else {
            let Some(guard) = PageLockGuard::for_walk(page, pfn, rmms.folio_waits()) else {
                out.referenced = 1;
                return;
            };
            Some(guard)
        };
        let mut ids = MmIds::new();
        // SAFETY: `with_page_ref` holds a reference.
        unsafe { rmap_mm_ids(rmms, page, None, &mut ids) };
        rmms.with_mms(ids.ids(), ids.all(), &mut |mms| {
            let mut batch = TlbBatch::new();
            // SAFETY: `with_page_ref` holds a reference.
            out.complete = unsafe {
                rmap_walk(rmms, mms, page, None, &mut |mm, vma, addr| {
                    let fmt = mm.pgd.format();
                    let young = page_vma_mapped(mm, addr, pfn, Want::Present, |slot, entry| {
                        let Entry::Leaf(leaf) = entry else { return false };
                        if !leaf.prot.contains(PgProt::ACCESSED) {
                            return false;
                        }
                        // Only the accessed bit goes (Linux
                        // `ptep_clear_flush_young`): a dirty bit a CPU
                        // sets meanwhile is kept by the atomic and.
                        let young = fmt.encode_leaf(Leaf { prot: PgProt::ACCESSED, ..leaf })
                            & !fmt.encode_leaf(Leaf { prot: PgProt::empty(), ..leaf });
                        slot.fetch_and(!young, Ordering::AcqRel);
                        true
                    });
                    // A locked VMA mapping the page says so however old
                    // its pte (Linux's `VM_LOCKED` check before the bit).
                    if young.is_some() && vma.flags().contains(VmaFlags::LOCKED) {
                        out.vm_flags |= VmaFlags::LOCKED;
                    }
                    if young == Some(true) {
                        out.referenced += 1;
                        out.vm_flags |= vma.flags();
                        batch.add(mm.tlb, mm.pgd.root(), addr);
                    }
                })
            };
            batch.flush();
        });
    });
    out
}

/// Unmaps the page `pfn` from every pte that maps it (Linux
/// `try_to_unmap` / `try_to_unmap_one` for reclaim), flushing the
/// cleared translations in batches before the ptes' references go. A
/// file page's ptes are cleared, each one's dirty bit moved to the page
/// ([`crate::vma::VmaFile::set_page_dirty`]); an anonymous page in the
/// swap cache gets its swap entry in each pte instead, one more count on
/// the slot per pte ([`crate::swap_state::SwapBackend::swap_duplicate`];
/// a count that cannot grow stops the walk), and `MM_SWAPENTS` for
/// `MM_ANONPAGES`. A lazily freeable anonymous page (`MADV_FREE`: not
/// `PG_swapbacked`) has its ptes cleared, its data dropped, as long as
/// no pte is dirty and no one but the ptes, the caller's isolation and
/// the walk holds it (Linux's "MADV_FREE page check"); a dirty pte (a
/// write since `MADV_FREE`) or another holder stops the walk, the pte
/// kept, and a dirty one makes the page anonymous memory again
/// (`PG_swapbacked`, dirty). Returns whether the page is no longer
/// mapped. It refuses (returns false, changing nothing) for an anonymous
/// page not in the swap cache and not lazily freeable, or a page the
/// caller has not locked, and stops at a pte in a `VM_LOCKED` VMA (an
/// mlocked page stays). The walk takes its own reference.
pub fn try_to_unmap<'a, F: PteFormat + 'a, A: VmaAlloc + 'a, R: RmapMms<'a, F, A> + ?Sized>(
    rmms: &R,
    pgdat: &crate::page_alloc::PgData<'_>,
    pfn: Pfn,
) -> bool {
    use crate::page_flags::PageFlags;
    let mut unmapped = false;
    with_page_ref(pgdat, pfn, |page| {
        if !crate::filemap::folio_test_locked(page) {
            return;
        }
        let lazyfree = page_anon(page) && !page.test(PageFlags::SWAPBACKED);
        // An anonymous page leaves its ptes only for its swap slot, or
        // for nothing if lazily freeable.
        let swap = if page_anon(page) && !lazyfree {
            match (crate::swap_state::folio_swap_entry(page), pgdat.swap_backend()) {
                (Some(entry), Some(backend)) => Some((entry, backend)),
                _ => return,
            }
        } else {
            None
        };
        let mut ids = MmIds::new();
        // SAFETY: `with_page_ref` holds a reference.
        unsafe { rmap_mm_ids(rmms, page, None, &mut ids) };
        rmms.with_mms(ids.ids(), ids.all(), &mut |mms| {
            let mut batch = TlbBatch::new();
            let mut dirty: Option<(&'static dyn crate::vma::VmaFile, u64)> = None;
            let (mut stop, mut cleared_ptes) = (false, 0u32);
            // SAFETY: `with_page_ref` holds a reference.
            unsafe {
                rmap_walk(rmms, mms, page, None, &mut |mm, vma, addr| {
                    if stop {
                        return;
                    }
                    let fmt = mm.pgd.format();
                    let cleared = page_vma_mapped(mm, addr, pfn, Want::Present, |slot, _| {
                        if vma.flags().contains(VmaFlags::LOCKED) {
                            stop = true;
                            return None;
                        }
                        if lazyfree {
                            return lazyfree_unmap_one(page, slot, fmt).or_else(|| {
                                stop = true;
                                None
                            });
                        }
                        let new = match swap {
                            // Linux `try_to_unmap_one`'s `swap_duplicate`:
                            // without a count the page stays mapped.
                            Some((entry, backend)) => {
                                if backend.swap_duplicate(entry).is_err() {
                                    stop = true;
                                    return None;
                                }
                                fmt.encode_swp(entry)
                            }
                            None => 0,
                        };
                        Some(slot.swap(new, Ordering::AcqRel))
                    });
                    let Some(Some(raw)) = cleared else { return };
                    cleared_ptes += 1;
                    batch.add(mm.tlb, mm.pgd.root(), addr);
                    if let Entry::Leaf(leaf) = fmt.decode(raw, Level::Pte)
                        && leaf.prot.contains(PgProt::DIRTY)
                    {
                        if swap.is_some() {
                            // The page's data is newer than its slot's.
                            page.set(PageFlags::DIRTY);
                        } else if let Some(file) = vma.file() {
                            dirty = Some((file, page.index()));
                        }
                    }
                    mm.add_rss(crate::memory::mm_counter(page), -1);
                    if swap.is_some() {
                        mm.add_rss(crate::mmap::MmCounter::SwapEnts, 1);
                    }
                    page_remove_rmap(mm.pgd.pgdat(), page);
                })
            };
            batch.flush();
            // The ptes' references go after the flush; ours keeps the
            // page, so none is the last.
            for _ in 0..cleared_ptes {
                let last = page.put_testzero();
                debug_assert!(!last, "try_to_unmap dropped the last reference of {:#x}", pfn.as_u64());
            }
            if let Some((file, index)) = dirty {
                file.set_page_dirty(pgdat, index, pfn);
            }
        });
        unmapped = page.mapcount() <= 0;
    });
    unmapped
}

/// Clears the pte `slot` of the lazily freeable page
/// `page` if the page may be dropped (Linux `try_to_unmap_one`'s
/// "MADV_FREE page check"): no dirty bit on the pte or the page, and no
/// reference but one per pte, the caller's isolation and the walk's.
/// Returns the old pte, or `None` to stop with the pte kept; a dirty one
/// turns the page back into swap-backed anonymous memory, dirty.
fn lazyfree_unmap_one<F: PteFormat>(page: &Page, slot: &AtomicU64, fmt: &F) -> Option<u64> {
    use crate::page_flags::PageFlags;
    let raw = slot.load(Ordering::Acquire);
    let Entry::Leaf(leaf) = fmt.decode(raw, Level::Pte) else { return None };
    let redirtied = || {
        page.set(PageFlags::DIRTY);
        page.set(PageFlags::SWAPBACKED);
    };
    if leaf.prot.contains(PgProt::DIRTY) || page.test(PageFlags::DIRTY) {
        redirtied();
        return None;
    }
    if i64::from(page.refcount()) != 2 + i64::from(page.mapcount()) {
        return None;
    }
    // A CPU may set the dirty bit meanwhile: then the pte is kept.
    match slot.compare_exchange(raw, 0, Ordering::AcqRel, Ordering::Acquire) {
        Ok(old) => Some(old),
        Err(now) => {
            if let Entry::Leaf(l) = fmt.decode(now, Level::Pte)
                && l.prot.contains(PgProt::DIRTY)
            {
                redirtied();
            }
            None
        }
    }
}

/// Runs `f` on the page `pfn` holding a reference of our own on it, if it
/// has any (a free page is mapped nowhere), and drops it afterwards.
fn with_page_ref(pgdat: &crate::page_alloc::PgData<'_>, pfn: Pfn, f: impl FnOnce(&Page)) {
    let Some(page) = pgdat.pfn_to_page(pfn) else { return };
    if !page.try_get() {
        return;
    }
    f(page);
    // A bad page is reported by the allocator and leaked.
    // SAFETY: our reference; if it is the last, every pte's reference is
    // gone, so no pte maps the page, and nothing uses it afterwards.
    let _ = unsafe { pgdat.put_page(pfn) };
}

/// Every pte that maps the page `pfn`, as the reverse map finds them:
/// calls `f(mm, addr)` for each (what a brute-force scan of every page
/// table must agree with, and what `mm-rmap` lists). Returns whether every
/// address space the reverse map named was visited.
pub fn rmap_ptes<'a, F: PteFormat + 'a, A: VmaAlloc + 'a, R: RmapMms<'a, F, A> + ?Sized>(
    rmms: &R,
    pgdat: &crate::page_alloc::PgData<'_>,
    pfn: Pfn,
    f: &mut dyn FnMut(MmId, u64),
) -> bool {
    let mut complete = true;
    with_page_ref(pgdat, pfn, |page| {
        let Some(_locked) = PageLockGuard::for_walk(page, pfn, rmms.folio_waits()) else {
            complete = false;
            return;
        };
        let mut ids = MmIds::new();
        // SAFETY: `with_page_ref` holds a reference.
        unsafe { rmap_mm_ids(rmms, page, None, &mut ids) };
        rmms.with_mms(ids.ids(), ids.all(), &mut |mms| {
            // SAFETY: `with_page_ref` holds a reference.
            complete = unsafe {
                rmap_walk(rmms, mms, page, None, &mut |mm, _, addr| {
                    if page_vma_mapped(mm, addr, pfn, Want::Present, |_, _| ()).is_some() {
                        f(mm.vmas.owner(), addr);
                    }
                })
            };
        });
    });
    complete
}

/// The page lock a walk of a file page takes (tried) for the walk, so
/// that the page stays in its cache and the cache stays (see
/// [`RmapMms::i_mmap`]); none is needed for an anonymous page.
struct PageLockGuard<'p> {
    page: &'p Page,
    pfn: Pfn,
    waits: &'p dyn FolioWaitTable,
    locked: bool,
}

impl<'p> PageLockGuard<'p> {
    /// `None` if the page is a file page someone else has locked.
    fn for_walk(page: &'p Page, pfn: Pfn, waits: &'p dyn FolioWaitTable) -> Option<Self> {
        let locked = !page_anon(page) && page.mapping() != 0;
        if locked && !crate::filemap::folio_trylock(page) {
            return None;
        }
        Some(PageLockGuard { page, pfn, waits, locked })
    }
}

impl Drop for PageLockGuard<'_> {
    fn drop(&mut self) {
        if self.locked {
            crate::filemap::folio_unlock(self.page, self.pfn, self.waits);
        }
    }
}
