//! The buddy page allocator with migratetypes and per-cpu lists (Linux
//! `mm/page_alloc.c`, `mm/mm_init.c`'s memmap and zone set-up,
//! `memblock_free_all`, and `free_reserved_area` for boot memory given
//! back later, such as the initrd).
//!
//! # The buddy system
//! Free memory is kept in naturally aligned blocks of 2^order pages, order
//! 0..=[`MAX_PAGE_ORDER`]. A free block's first page carries `BUDDY` and its
//! order, and is linked on `zone.free_area[order].free_list[migratetype]`.
//! Allocating order n takes the smallest free block of order >= n and splits
//! it, returning the upper halves to the lists (`expand`); freeing merges the
//! block with its buddy (pfn ^ 2^order) for as long as the buddy is free and
//! of the same order (`__free_one_page`).
//!
//! # Migratetypes and fallback
//! Every 2 MiB pageblock has a migratetype. Allocations ask for a type
//! through their gfp flags and prefer free lists of that type; when those
//! are empty they fall back following Linux's `fallbacks` table, taking the
//! largest block available and claiming its whole pageblock when enough of
//! it is free or of a compatible type (`steal_suitable_fallback`), so
//! unmovable allocations cluster instead of spreading through movable
//! memory. Invariant (Linux 6.10+): a free page is always on the list of its
//! pageblock's migratetype; changing a pageblock's type moves its free pages
//! (`move_freepages_block`). HIGHATOMIC blocks are reserved for high-order
//! atomic allocations; ISOLATE blocks hand nothing out.
//!
//! # Per-cpu lists
//! Orders up to [`PAGE_ALLOC_COSTLY_ORDER`] go through per-cpu lists (one
//! per pcp migratetype and order): a free adds to the local list and, above
//! `high`, returns `batch` pages to the buddy lists; an allocation from an
//! empty list first pulls `batch` blocks under one zone-lock acquisition.
//!
//! # Watermarks and the slow path
//! An allocation first tries every usable zone above its low watermark plus
//! lowmem reserve. Failing that, the slow path (Linux
//! `__alloc_pages_slowpath`) wakes kswapd, recording the order for it
//! (which hands it to kcompactd when it is done, see
//! [`crate::compaction`]), and retries at the min watermark with the
//! allowances of the gfp mask (`__GFP_HIGH`: half of min; atomic: a
//! further quarter; `__GFP_MEMALLOC`: no watermark). An allocation that
//! may block then goes on, in Linux's order:
//! 1. for a costly order (above [`PAGE_ALLOC_COSTLY_ORDER`]) or an order
//!    above 0 that is not movable, direct compaction at
//!    `COMPACT_PRIO_ASYNC` (it likely has enough free base pages, only not
//!    together); a costly `__GFP_NORETRY` allocation stops here if
//!    compaction was skipped or deferred;
//! 2. rounds of: per-cpu lists drained and highatomic reserves released,
//!    the registered [`DirectReclaim`] once (counted in `allocstall_*` by
//!    the mask's highest zone), then for an order above 0 the registered
//!    [`DirectCompaction`] at the current priority (from
//!    `COMPACT_PRIO_SYNC_LIGHT`), each followed by an attempt at the free
//!    lists. `__GFP_NORETRY`, and a costly order without
//!    `__GFP_RETRY_MAYFAIL`, get one round. Otherwise a round is repeated
//!    while reclaim frees pages, up to [`MAX_RECLAIM_RETRIES`] rounds (for
//!    an order above 0 only while a block of the order exists), or, when
//!    reclaim made progress, while [`should_compact_retry`] says
//!    compaction may still help: success without a page or a skip up to
//!    [`MAX_COMPACT_RETRIES`] times, then one priority higher, down to
//!    `COMPACT_PRIO_SYNC_FULL` (`SYNC_LIGHT` for costly orders);
//! 3. the OOM killer, after which the rounds start again while it makes
//!    progress.
//!
//! A direct compaction that ran (was not skipped in every zone) counts
//! `compact_stall`, then `compact_success` and a reset of the zone's
//! deferral if the allocation got its page, else `compact_fail`.
//! Failure returns `None` and logs the order, mask and free lists unless
//! `__GFP_NOWARN`.
//!
//! # Locking
//! Lock order: `pcp lock -> zone lock`. Every public entry disables
//! interrupts on the local CPU ([`CpuOps::irq_save`]) before taking either,
//! so an interrupt handler that allocates cannot deadlock against the code
//! it interrupted. Functions that expect the zone lock held take the locked
//! [`ZoneFree`] through a [`Locked`] view.
//!
//! # Debug checks
//! Every free checks the first page (Linux `free_page_is_bad`); with debug
//! checks on (the default in debug builds) every page of the block is
//! checked on free and on allocation. A bad page is reported with its pfn and
//! flags and leaked, as Linux's `bad_page` does, and the free returns the
//! report as an error.
//!
//! # Differences from Linux
//! Direct reclaim is [`crate::vmscan`]'s (clean page-cache pages from the
//! LRU, through the kernel's registered [`DirectReclaim`]); the per-cpu
//! lists are drained and highatomic reserves released before each
//! reclaim, not after it. Direct compaction is [`crate::compaction`]'s,
//! through the kernel's registered [`DirectCompaction`], with no page
//! captured during the run (Linux `compaction_capture`): the allocation
//! takes its block from the free lists afterwards. `should_reclaim_retry`
//! bounds the rounds instead of asking whether reclaiming every
//! reclaimable page would meet the watermark, and `should_compact_retry`
//! bounds the retries after a skipped compaction as after a successful
//! one (Linux asks `compaction_zonelist_suitable`): we keep no per-zone
//! count of reclaimable pages. No `ALLOC_NOFRAGMENT`, CMA, page
//! shuffling, watermark boosting or deferred struct page init; one node.

use core::fmt;
use core::panic::Location;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use log::{error, info, warn};

use crate::addr::{PAGE_SIZE, Pfn, PhysAddr};
use crate::arch::{CpuOps, PhysMemory};
use crate::compaction::{
    CompactPriority, CompactRequest, CompactResult, DEF_COMPACT_PRIORITY, DirectCompaction, INIT_COMPACT_PRIORITY,
    KcompactdState,
};
use crate::gfp::Gfp;
use crate::highmem;
use crate::memblock::Memblock;
use crate::mmzone::{
    self, FreeCounts, MAX_NR_ZONES, MAX_PAGE_ORDER, MIGRATE_PCPTYPES, MigrateType, NR_PAGE_ORDERS,
    PAGE_ALLOC_COSTLY_ORDER, PerCpuPageset, Watermark, Zone, ZoneFree, ZoneType,
};
use crate::oom_kill::OutOfMemory;
use crate::page::{MemMap, PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER, Page};
use crate::page_flags::PageFlags;
use crate::percpu::PerCpuRef;
use crate::shrinker::ShrinkerRegistry;
use crate::vmscan::DirectReclaim;
use crate::vmstat::{NodeStatItem, PerCpuNodeStat, VmEventItem, VmEventState};

/// Allocation context flags (Linux `mm/internal.h` `ALLOC_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AllocFlags(u32);

impl AllocFlags {
    /// The min watermark and nothing else (Linux's `alloc_flags` of 0, as
    /// kcompactd and `compaction_suitable` check with).
    pub(crate) const MIN: AllocFlags = AllocFlags(Self::WMARK_MIN);

    const WMARK_MIN: u32 = Watermark::Min as u32;
    const WMARK_LOW: u32 = Watermark::Low as u32;
    const WMARK_MASK: u32 = 0b11;
    const NO_WATERMARKS: u32 = 1 << 2;
    const NON_BLOCK: u32 = 1 << 4;
    const MIN_RESERVE: u32 = 1 << 5;
    const HIGHATOMIC: u32 = 1 << 9;
    /// Flags that may dip into reserves (Linux `ALLOC_RESERVES`).
    const RESERVES: u32 = Self::NON_BLOCK | Self::MIN_RESERVE | Self::HIGHATOMIC;

    fn has(self, bits: u32) -> bool {
        self.0 & bits != 0
    }

    pub(crate) fn watermark(self) -> Watermark {
        match self.0 & Self::WMARK_MASK {
            0 => Watermark::Min,
            1 => Watermark::Low,
            _ => Watermark::High,
        }
    }

    /// Linux `gfp_to_alloc_flags`: what the slow path may use.
    fn from_gfp(gfp: Gfp, order: u32) -> AllocFlags {
        let mut flags = Self::WMARK_MIN;
        if gfp.contains(Gfp::HIGH) {
            flags |= Self::MIN_RESERVE;
        }
        if !gfp.allows_blocking() && !gfp.contains(Gfp::NOMEMALLOC) {
            flags |= Self::NON_BLOCK;
            if order > 0 && flags & Self::MIN_RESERVE != 0 {
                flags |= Self::HIGHATOMIC;
            }
        }
        AllocFlags(flags)
    }
}

/// Pages [`PgData::free_pages_bulk`] frees per taking of the per-cpu
/// list lock (Linux `free_unref_page_list` drops it every
/// `SWAP_CLUSTER_MAX` pages so interrupts are not held off for long).
const FREE_BULK_CHUNK: usize = 32;

/// Linux's `fallbacks` table: where each pcp migratetype looks when its own
/// lists are empty, in order.
const FALLBACKS: [[MigrateType; 2]; MIGRATE_PCPTYPES] = [
    [MigrateType::Reclaimable, MigrateType::Movable],
    [MigrateType::Reclaimable, MigrateType::Unmovable],
    [MigrateType::Unmovable, MigrateType::Movable],
];

/// Why a page was reported bad (Linux `bad_page`'s "page dumped because").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadPageReason {
    /// The pfn is outside the memory map.
    NotInMemMap,
    /// The page is already free: its refcount is zero or it is a free
    /// buddy block.
    DoubleFree,
    /// Freed with a different order than it was allocated with.
    WrongOrder {
        /// The order passed to the free.
        freed: u32,
        /// The order the block was allocated with.
        allocated: u32,
    },
    /// Freeing a tail page of a compound page.
    TailPage,
    /// Still mapped into page tables.
    Mapped,
    /// Still attached to a mapping.
    HasMapping,
    /// Flags that must be clear at free are set (reserved, slab, LRU, ...).
    FlagsAtFree(PageFlags),
    /// A page leaving the free lists is not in the state freeing leaves.
    BadStateAtAlloc,
    /// [`PgData::free_reserved_area`] met a page that is not reserved:
    /// the allocator manages it already.
    NotReserved,
}

impl fmt::Display for BadPageReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadPageReason::NotInMemMap => f.write_str("pfn outside the memory map"),
            BadPageReason::DoubleFree => f.write_str("page already free (double free)"),
            BadPageReason::WrongOrder { freed, allocated } => {
                write!(f, "freed with order {freed} but allocated with order {allocated}")
            }
            BadPageReason::TailPage => f.write_str("freeing a tail page of a compound page"),
            BadPageReason::Mapped => f.write_str("nonzero mapcount"),
            BadPageReason::HasMapping => f.write_str("non-NULL mapping"),
            BadPageReason::FlagsAtFree(flags) => write!(f, "PAGE_FLAGS_CHECK_AT_FREE flag(s) set: {flags:?}"),
            BadPageReason::BadStateAtAlloc => f.write_str("bad state on the free lists (PAGE_FLAGS_CHECK_AT_PREP)"),
            BadPageReason::NotReserved => f.write_str("freeing a page that is not reserved (free_reserved_area)"),
        }
    }
}

/// A block of 2^order pages from [`PgData::alloc_pages_owned`], owning the
/// reference the allocation returned: dropping it frees the block (Linux
/// `__free_pages`), so allocate-use-free needs no `unsafe` free. The
/// handle lends no access to the memory, but its owner may fill it
/// ([`crate::highmem::memcpy_to_owned`]): code that reaches it otherwise
/// (through the direct map, which takes `unsafe`) must not race that and
/// must be done with it before the handle goes. A caller that hands the reference on (to a page table, a
/// list) takes it out with [`Pages::into_raw`] and frees it later with
/// [`PgData::free_pages`] under that function's contract.
#[must_use = "dropping the handle frees the pages"]
pub struct Pages<'p, 'a> {
    pgdat: &'p PgData<'a>,
    pfn: Pfn,
    order: u32,
}

impl Pages<'_, '_> {
    /// The block's first frame.
    pub fn pfn(&self) -> Pfn {
        self.pfn
    }

    /// The block's order.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// The node the block came from.
    pub(crate) fn pgdat(&self) -> &PgData<'_> {
        self.pgdat
    }

    /// Gives the reference up without freeing it: the caller now owns it.
    #[must_use = "the pages leak unless freed with free_pages"]
    pub fn into_raw(self) -> Pfn {
        let pfn = self.pfn;
        core::mem::forget(self);
        pfn
    }

    /// Frees the block now, returning the allocator's report of a bad
    /// page (dropping the handle only logs it).
    pub fn free(self) -> Result<(), BadPage> {
        let (pgdat, order) = (self.pgdat, self.order);
        // SAFETY: the reference was the handle's alone (see Drop).
        unsafe { pgdat.free_pages(self.into_raw(), order) }
    }
}

impl Drop for Pages<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: the handle owns the reference alloc_pages returned: it is
        // made nowhere else, cannot be cloned, and into_raw forgets it. It
        // never lent the memory out, and code that reached the memory by
        // itself (unsafe) was bound to finish before the handle went.
        // A bad page is reported (logged and counted) by the allocator.
        let _ = unsafe { self.pgdat.free_pages(self.pfn, self.order) };
    }
}

impl fmt::Debug for Pages<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages").field("pfn", &self.pfn).field("order", &self.order).finish()
    }
}

/// A bad page report (Linux "BUG: Bad page state").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadPage {
    /// The page found bad (the first page of the block, or the offending
    /// page within it).
    pub pfn: Pfn,
    /// Its flags when found.
    pub flags: PageFlags,
    /// Its reference count when found.
    pub refcount: i32,
    /// Its mapcount when found.
    pub mapcount: i32,
    /// What was wrong.
    pub reason: BadPageReason,
}

impl fmt::Display for BadPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Bad page state: pfn:{:#x} refcount:{} mapcount:{} flags: {:?} page dumped because: {}",
            self.pfn.as_u64(),
            self.refcount,
            self.mapcount,
            self.flags,
            self.reason
        )
    }
}

/// Why [`PgData::isolate_pageblock`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IsolateError {
    /// The pfn is not in any zone.
    NotInZone(Pfn),
    /// The block is already isolated.
    AlreadyIsolated(Pfn),
    /// The block is not isolated.
    NotIsolated(Pfn),
}

impl fmt::Display for IsolateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IsolateError::NotInZone(pfn) => write!(f, "pfn {:#x} is not in any zone", pfn.as_u64()),
            IsolateError::AlreadyIsolated(pfn) => write!(f, "pageblock of pfn {:#x} is already isolated", pfn.as_u64()),
            IsolateError::NotIsolated(pfn) => write!(f, "pageblock of pfn {:#x} is not isolated", pfn.as_u64()),
        }
    }
}

/// A node's memory: its memory map and zones, and the page allocator that
/// works on them (Linux `pg_data_t` plus the `mm/page_alloc.c` entry points).
#[doc(alias = "pglist_data")]
pub struct PgData<'a> {
    mem_map: MemMap<'a>,
    zones: [Zone<'a>; MAX_NR_ZONES],
    phys: &'a dyn PhysMemory,
    cpu: &'a dyn CpuOps,
    nr_cpus: u32,
    vm_events: PerCpuRef<'a, VmEventState>,
    per_cpu_nodestats: PerCpuRef<'a, PerCpuNodeStat>,
    debug_checks: AtomicBool,
    bad_pages: AtomicU64,
    /// Reclaim the slow path may run (Linux `__alloc_pages_direct_reclaim`).
    direct_reclaim: spin::Once<&'static dyn DirectReclaim>,
    /// The OOM killer the slow path calls when reclaim gives nothing back
    /// (Linux `__alloc_pages_may_oom`).
    oom_killer: spin::Once<&'static dyn OutOfMemory>,
    /// The kernel's swap areas ([`crate::swap_state`]).
    swap_backend: spin::Once<&'static dyn crate::swap_state::SwapBackend>,
    /// The node's kswapd, woken by the slow path.
    kswapd: spin::Once<&'static dyn crate::vmscan::Kswapd>,
    /// kswapd runs in a row that freed nothing (Linux
    /// `pgdat->kswapd_failures`); from `MAX_RECLAIM_RETRIES` on the node
    /// is hopeless and kswapd is left asleep until some reclaim frees a
    /// page again ([`crate::vmscan`]).
    kswapd_failures: core::sync::atomic::AtomicU32,
    /// The highest order an allocation woke kswapd for since kswapd last
    /// took it (Linux `pgdat->kswapd_order`), for kswapd to hand on to
    /// kcompactd when it goes back to sleep.
    kswapd_order: AtomicU32,
    /// The lowest highest-zone of those allocations (Linux
    /// `kswapd_highest_zoneidx`; [`MAX_NR_ZONES`] when none).
    kswapd_highest_zoneidx: AtomicU32,
    /// Compaction the slow path may run (Linux
    /// `__alloc_pages_direct_compact`).
    direct_compaction: spin::Once<&'static dyn DirectCompaction>,
    /// The node's kcompactd and what it was asked for.
    kcompactd: KcompactdState,
    /// The node's LRU lists (Linux `lruvec` and its `lru_lock`), taken
    /// with interrupts off; see [`crate::swap`].
    lruvec: spin::Mutex<crate::swap::Lruvec>,
    /// The inactive lists' ageing, evictions plus activations (Linux
    /// `lruvec->nonresident_age`; see [`crate::workingset`]): an atomic
    /// beside the lists, read and added to without their lock, as Linux's.
    nonresident_age: AtomicU64,
    /// Each CPU's LRU batches.
    lru_batches: PerCpuRef<'a, crate::swap::LruBatches>,
    /// The slab shrinkers reclaim runs ([`crate::shrinker`]).
    shrinkers: ShrinkerRegistry,
    /// What the watermarks are computed from, under the lock Linux's
    /// `setup_per_zone_wmarks` takes (a leaf; nothing allocates under it).
    wmark_settings: spin::Mutex<mmzone::WatermarkSettings>,
    /// Linux `vm_swappiness`: reclaim's anon/file balance
    /// ([`crate::vmscan::DEFAULT_SWAPPINESS`]).
    swappiness: AtomicU32,
    /// Swap readahead's tunables and machine-wide state
    /// ([`crate::swap_state::readahead`]).
    swap_ra: crate::swap_state::readahead::SwapRaState,
    /// The committed total and the overcommit and map-count sysctls
    /// ([`crate::overcommit`]): atomics, no lock.
    overcommit: crate::overcommit::Overcommit,
    /// Where tasks sleep for a page's lock: what mm code that locks a
    /// page outside a reclaim or rmap context (`MADV_FREE`) wakes when it
    /// unlocks.
    folio_waits: spin::Once<&'static dyn crate::arch::FolioWaitTable>,
}

/// A node's per-CPU data, as [`PgData::new`] takes it: one view per
/// zone of the per-cpu pagesets, the event counters, the node state
/// counters and the LRU batches.
pub struct NodePerCpu<'a> {
    /// The per-cpu pagesets of each zone.
    pub pcp: [PerCpuRef<'a, PerCpuPageset>; MAX_NR_ZONES],
    /// The event counters (Linux `vm_event_states`).
    pub vm_events: PerCpuRef<'a, VmEventState>,
    /// The node state counters (Linux `per_cpu_nodestats`).
    pub node_stats: PerCpuRef<'a, PerCpuNodeStat>,
    /// The LRU batches (Linux `cpu_fbatches`).
    pub lru_batches: PerCpuRef<'a, crate::swap::LruBatches>,
}

/// Rounds of direct reclaim the slow path tries while each frees
/// something (Linux `MAX_RECLAIM_RETRIES`).
const MAX_RECLAIM_RETRIES: u32 = 16;

/// A zone with its lock held: the functions Linux calls with `zone->lock`.
struct Locked<'z, 'a> {
    zone: &'z Zone<'a>,
    free: &'z mut ZoneFree,
    map: &'z MemMap<'a>,
}

impl PgData<'_> {
    /// The memory map.
    pub fn mem_map(&self) -> &MemMap<'_> {
        &self.mem_map
    }

    /// The zones, lowest first. Empty zones have no present pages.
    pub fn zones(&self) -> &[Zone<'_>; MAX_NR_ZONES] {
        &self.zones
    }

    /// The zone of a type.
    pub fn zone(&self, zone_type: ZoneType) -> &Zone<'_> {
        &self.zones[zone_type as usize]
    }

    /// The descriptor of `pfn` (Linux `pfn_to_page`).
    pub fn pfn_to_page(&self, pfn: Pfn) -> Option<&Page> {
        self.mem_map.pfn_to_page(pfn)
    }

    /// Free blocks per order and migratetype in a zone (the data of
    /// /proc/buddyinfo and /proc/pagetypeinfo).
    pub fn free_counts(&self, zone: ZoneType) -> FreeCounts {
        self.with_irqs_off(|| self.zone(zone).free_counts_irqs_off())
    }

    /// Pages on a zone's per-cpu lists, all CPUs.
    pub fn pcp_pages(&self, zone: ZoneType) -> u64 {
        self.with_irqs_off(|| self.zone(zone).pcp_pages_irqs_off())
    }

    /// Pages on CPU `cpu`'s per-cpu lists of a zone (Linux `pcp->count`);
    /// 0 for a CPU the allocator does not cover. Takes that CPU's per-cpu
    /// list lock of the zone with interrupts off on this CPU (Linux reads
    /// the count without it), so the caller holds neither that lock nor
    /// the zone lock (the order is pcp lock -> zone lock).
    pub fn pcp_count(&self, zone: ZoneType, cpu: usize) -> u64 {
        self.with_irqs_off(|| self.zone(zone).pcp_count_irqs_off(cpu))
    }

    /// The CPUs the per-cpu data covers.
    pub fn nr_cpus(&self) -> u32 {
        self.nr_cpus
    }

    /// The direct-map address of a page (Linux `page_address`).
    pub fn page_address(&self, pfn: Pfn) -> Option<crate::addr::VirtAddr> {
        self.phys.phys_to_virt(pfn.phys())
    }

    /// The frame behind a direct-map address (Linux `virt_to_pfn`), if the
    /// address is in the direct map and the memory map covers it.
    pub fn virt_to_pfn(&self, virt: crate::addr::VirtAddr) -> Option<Pfn> {
        let pfn = self.phys.virt_to_phys(virt)?.pfn();
        self.mem_map.pfn_to_page(pfn).map(|_| pfn)
    }

    /// The head of the compound page `pfn` belongs to, or `pfn` itself
    /// (Linux `compound_head`).
    pub fn compound_head(&self, pfn: Pfn) -> Pfn {
        match self.mem_map.pfn_to_page(pfn) {
            Some(page) if page.test(PageFlags::TAIL) => Pfn::new(u64::from(page.link(0))),
            _ => pfn,
        }
    }

    /// Bad pages reported (and leaked) so far.
    pub fn bad_pages(&self) -> u64 {
        self.bad_pages.load(Relaxed)
    }

    /// Turns the expensive debug checks on or off.
    pub fn set_debug_checks(&self, on: bool) {
        self.debug_checks.store(on, Relaxed);
    }

    /// Free pages on the buddy lists of all zones (Linux
    /// `global_zone_page_state(NR_FREE_PAGES)`).
    pub fn nr_free_pages(&self) -> u64 {
        self.zones.iter().map(Zone::free_pages).sum()
    }

    /// Pages managed by the buddy allocator in all zones (Linux
    /// `totalram_pages`).
    pub fn totalram_pages(&self) -> u64 {
        self.zones.iter().map(Zone::managed_pages).sum()
    }

    /// The machine's CPU operations (for allocators layered on this one).
    pub(crate) fn cpu(&self) -> &dyn CpuOps {
        self.cpu
    }

    /// Runs `f` with interrupts off on this CPU (Linux
    /// `local_irq_save`/`local_irq_restore` around it).
    pub(crate) fn with_irqs_off<R>(&self, f: impl FnOnce() -> R) -> R {
        let flags = self.cpu.irq_save();
        let r = f();
        self.cpu.irq_restore(flags);
        r
    }

    fn pcp_index(&self) -> usize {
        let cpu = self.cpu.cpu_id();
        debug_assert!(cpu < self.nr_cpus, "CPU {cpu} beyond the {} per-cpu pagesets", self.nr_cpus);
        (cpu as usize).min(self.nr_cpus as usize - 1)
    }

    fn report_bad_page(&self, pfn: u64, reason: BadPageReason) -> BadPage {
        let page = self.mem_map.page(pfn);
        let bad = BadPage {
            pfn: Pfn::new(pfn),
            flags: page.flags(),
            refcount: page.refcount(),
            mapcount: page.mapcount(),
            reason,
        };
        self.bad_pages.fetch_add(1, Relaxed);
        error!("BUG: {bad}; leaking the page");
        bad
    }
}

impl<'a> PgData<'a> {
    fn locked<'z>(&'z self, zone: &'z Zone<'a>, free: &'z mut ZoneFree) -> Locked<'z, 'a> {
        Locked { zone, free, map: &self.mem_map }
    }

    /// Sets up zones over a memory map whose descriptors are all reserved
    /// pages of their zones (Linux `free_area_init`): each zone spans from
    /// its first to its last memblock memory pfn. `per_cpu` holds each
    /// CPU's data, all zero (Linux allocates it with `alloc_percpu`); CPU
    /// ids from `cpu` must stay below their number. Nothing is free until
    /// [`PgData::memblock_free_all`].
    ///
    /// # Panics
    /// If the per-CPU views do not cover the same number of CPUs, between 1
    /// and [`mmzone::NR_CPUS`]: a caller bug.
    pub fn new(
        mem_map: MemMap<'a>,
        memblock: &Memblock,
        phys: &'a dyn PhysMemory,
        cpu: &'a dyn CpuOps,
        per_cpu: NodePerCpu<'a>,
    ) -> PgData<'a> {
        let NodePerCpu { pcp, vm_events, node_stats, lru_batches } = per_cpu;
        let nr_cpus = pcp[0].len();
        assert!(
            pcp.iter().all(|p| p.len() == nr_cpus)
                && vm_events.len() == nr_cpus
                && node_stats.len() == nr_cpus
                && lru_batches.len() == nr_cpus
                && (1..=mmzone::NR_CPUS).contains(&nr_cpus),
            "per-cpu pagesets for {:?} CPUs per zone",
            pcp.map(|p| p.len())
        );
        let mut zones = ZoneType::ALL.map(|z| Zone::new(z, pcp[z as usize]));
        let (map_start, map_end) = (mem_map.start_pfn().as_u64(), mem_map.end_pfn().as_u64());
        for zone in &mut zones {
            let (lo, hi) = zone.zone_type().pfn_limits();
            let (lo, hi) = (lo.max(map_start), hi.min(map_end));
            let mut first = u64::MAX;
            let mut last = 0;
            let mut present = 0;
            for region in memblock.memory.regions() {
                let start = region.base.as_u64().div_ceil(PAGE_SIZE).max(lo);
                let end = ((region.base.as_u64() + region.size) / PAGE_SIZE).min(hi);
                if start < end {
                    first = first.min(start);
                    last = last.max(end);
                    present += end - start;
                }
            }
            if present > 0 {
                zone.start_pfn = first;
                zone.spanned_pages = last - first;
                zone.present_pages = present;
            }
        }
        PgData {
            mem_map,
            zones,
            phys,
            cpu,
            nr_cpus: nr_cpus as u32,
            vm_events,
            per_cpu_nodestats: node_stats,
            debug_checks: AtomicBool::new(cfg!(debug_assertions)),
            bad_pages: AtomicU64::new(0),
            direct_reclaim: spin::Once::new(),
            oom_killer: spin::Once::new(),
            swap_backend: spin::Once::new(),
            kswapd: spin::Once::new(),
            kswapd_failures: core::sync::atomic::AtomicU32::new(0),
            kswapd_order: AtomicU32::new(0),
            kswapd_highest_zoneidx: AtomicU32::new(MAX_NR_ZONES as u32),
            direct_compaction: spin::Once::new(),
            kcompactd: KcompactdState::new(),
            lruvec: spin::Mutex::new(crate::swap::Lruvec::new()),
            nonresident_age: AtomicU64::new(0),
            lru_batches,
            shrinkers: ShrinkerRegistry::new(),
            wmark_settings: spin::Mutex::new(mmzone::WatermarkSettings::new()),
            swappiness: AtomicU32::new(crate::vmscan::DEFAULT_SWAPPINESS),
            swap_ra: crate::swap_state::readahead::SwapRaState::new(),
            overcommit: crate::overcommit::Overcommit::new(),
            folio_waits: spin::Once::new(),
        }
    }

    /// The node's number (Linux `pgdat->node_id`): 0, the only node.
    pub const fn node_id(&self) -> u32 {
        0
    }

    /// The lruvec's non-resident age counter (see [`crate::workingset`]).
    pub(crate) fn lruvec_nonresident_age(&self) -> &AtomicU64 {
        &self.nonresident_age
    }

    /// The node's shrinkers, which reclaim runs ([`crate::shrinker`]).
    pub fn shrinkers(&self) -> &ShrinkerRegistry {
        &self.shrinkers
    }

    /// The LRU lists' lock (see [`crate::swap`]).
    pub(crate) fn lruvec(&self) -> &spin::Mutex<crate::swap::Lruvec> {
        &self.lruvec
    }

    /// The per-CPU LRU batches.
    pub(crate) fn lru_batches(&self) -> &PerCpuRef<'a, crate::swap::LruBatches> {
        &self.lru_batches
    }

    /// This CPU's LRU batch index.
    pub(crate) fn lru_batch_index(&self) -> usize {
        self.pcp_index()
    }

    /// Drops a reference the LRU code took on a page (a batch's or an
    /// isolation's); the last one frees it.
    pub(crate) fn put_lru_ref(&self, pfn: Pfn) {
        // SAFETY: the reference is the caller's own (`crate::swap` takes
        // one with each page it batches or isolates and drops it once),
        // and a page whose last reference goes is reached by nothing else:
        // its users hold references of their own.
        let _ = unsafe { self.put_page(pfn) };
    }

    /// Registers the node's kswapd, which the slow path wakes; the first
    /// registration stays.
    pub fn set_kswapd(&self, kswapd: &'static dyn crate::vmscan::Kswapd) {
        self.kswapd.call_once(|| kswapd);
    }

    /// kswapd's failed runs in a row (Linux `kswapd_failures`).
    pub fn kswapd_failures(&self) -> &core::sync::atomic::AtomicU32 {
        &self.kswapd_failures
    }

    /// Registers the compaction the slow path runs for high-order
    /// allocations that may block; the first registration stays.
    pub fn set_direct_compaction(&self, compaction: &'static dyn DirectCompaction) {
        self.direct_compaction.call_once(|| compaction);
    }

    /// Registers the node's kcompactd thread, which
    /// [`crate::compaction::wakeup_kcompactd`] wakes; the first
    /// registration stays.
    pub fn set_kcompactd(&self, kcompactd: &'static dyn crate::compaction::Kcompactd) {
        self.kcompactd.register(kcompactd);
    }

    /// The node's kcompactd state.
    pub(crate) fn kcompactd(&self) -> &KcompactdState {
        &self.kcompactd
    }

    /// Takes the order and highest zone allocations woke kswapd for since
    /// the last call, resetting them (what Linux's `kswapd` reads from
    /// `pgdat->kswapd_order` and `kswapd_highest_zoneidx` before it
    /// balances): order 0 and the highest zone when there was none.
    pub(crate) fn take_kswapd_order(&self) -> (u32, ZoneType) {
        let order = self.kswapd_order.swap(0, Relaxed);
        let highest = self.kswapd_highest_zoneidx.swap(MAX_NR_ZONES as u32, Relaxed);
        let highest = ZoneType::from_index(highest as usize).unwrap_or(ZoneType::Normal);
        (order, highest)
    }

    /// Registers the reclaim the slow path runs for allocations that may
    /// block; the first registration stays.
    pub fn set_direct_reclaim(&self, reclaim: &'static dyn DirectReclaim) {
        self.direct_reclaim.call_once(|| reclaim);
    }

    /// Swap readahead's state ([`crate::swap_state::readahead`]).
    pub(crate) fn swap_ra(&self) -> &crate::swap_state::readahead::SwapRaState {
        &self.swap_ra
    }

    /// Registers the page-lock wait table; the first registration stays.
    pub fn set_folio_waits(&self, waits: &'static dyn crate::arch::FolioWaitTable) {
        self.folio_waits.call_once(|| waits);
    }

    /// The registered page-lock wait table, if any.
    pub fn folio_waits(&self) -> Option<&'static dyn crate::arch::FolioWaitTable> {
        self.folio_waits.get().copied()
    }

    /// Where the swap areas are registered ([`crate::swap_state`]).
    pub(crate) fn swap_backend_once(&self) -> &spin::Once<&'static dyn crate::swap_state::SwapBackend> {
        &self.swap_backend
    }

    /// Registers the OOM killer the slow path calls for allocations that
    /// may kill ([`crate::oom_kill::gfp_may_oom`]) once reclaim gives
    /// nothing back; the first registration stays.
    pub fn set_oom_killer(&self, oom: &'static dyn OutOfMemory) {
        self.oom_killer.call_once(|| oom);
    }

    /// Hands every free memblock range to the buddy allocator in the largest
    /// naturally aligned blocks, then computes watermarks, lowmem reserves
    /// and per-cpu batch sizes (Linux `memblock_free_all` and
    /// `init_per_zone_wmark_min`). Returns the pages released.
    pub fn memblock_free_all(&self, memblock: &Memblock) -> u64 {
        let mut released = 0;
        for (start, end) in memblock.free_ranges() {
            let start_pfn = start.as_u64().div_ceil(PAGE_SIZE).max(self.mem_map.start_pfn().as_u64());
            let end_pfn = (end.as_u64() / PAGE_SIZE).min(self.mem_map.end_pfn().as_u64());
            released += self.free_pages_memory(start_pfn, end_pfn);
        }
        self.init_per_zone_wmark_min();
        self.overcommit.init_reserves(self.nr_free_pages());
        released
    }

    /// The machine's overcommit accounting and its sysctls
    /// ([`crate::overcommit`]).
    pub fn overcommit(&self) -> &crate::overcommit::Overcommit {
        &self.overcommit
    }

    /// Swap slots of the areas open to allocation (Linux
    /// `total_swap_pages`): 0 before the first swapon.
    pub fn total_swap_pages(&self) -> u64 {
        self.swap_backend_once().get().map_or(0, |b| b.total_swap_pages())
    }

    /// Linux `vm_commit_limit` over this machine's RAM and swap.
    pub fn vm_commit_limit(&self) -> u64 {
        self.overcommit.vm_commit_limit(self.totalram_pages(), self.total_swap_pages())
    }

    /// Linux `__vm_enough_memory` over this machine's RAM and swap: charges
    /// `pages` or refuses them (see [`crate::overcommit`]).
    pub fn vm_enough_memory(
        &self,
        pages: u64,
        who: crate::overcommit::CommitRequester,
    ) -> Result<(), crate::overcommit::NotEnoughMemory> {
        self.overcommit.vm_enough_memory(self.totalram_pages(), self.total_swap_pages(), pages, who)
    }

    /// Linux `__free_pages_memory`: frees `[start, end)` in maximal aligned
    /// blocks. Zone boundaries are multiples of the largest block, so no
    /// block crosses one.
    fn free_pages_memory(&self, mut start: u64, end: u64) -> u64 {
        let released = end.saturating_sub(start);
        while start < end {
            let mut order = start.trailing_zeros().min(MAX_PAGE_ORDER);
            while start + (1 << order) > end {
                order -= 1;
            }
            self.free_pages_core(start, order);
            start += 1 << order;
        }
        released
    }

    /// Linux `__free_pages_core`: releases a block of boot-reserved pages.
    fn free_pages_core(&self, pfn: u64, order: u32) {
        let zone = self.zone(self.mem_map.page(pfn).zone());
        for p in pfn..pfn + (1 << order) {
            let page = self.mem_map.page(p);
            page.clear(PageFlags::RESERVED);
            page.set_refcount(0);
        }
        zone.managed_pages.fetch_add(1 << order, Relaxed);
        self.with_irqs_off(|| self.free_one_page(zone, pfn, order));
    }

    /// Gives the reserved pages wholly inside `[start, end)` to the
    /// allocator, one by one, adding each to its zone's managed pages, and
    /// logs `Freeing {what} memory: NK` (Linux `free_reserved_area` with
    /// no poison, `free_reserved_page` for each page). A partial page at
    /// either end stays reserved, as Linux rounds inwards. A page that is
    /// not reserved is reported and left alone; pfns outside the memory
    /// map are skipped with an error. Returns the pages freed. Watermarks
    /// are not recomputed (Linux's `adjust_managed_page_count` leaves them
    /// too).
    ///
    /// # Safety
    /// The caller owns the frames: RAM that boot reserved for something
    /// now done with, which no page-table entry, TLB entry or pointer
    /// reaches any more. The allocator hands them to the next caller.
    pub unsafe fn free_reserved_area(&self, start: PhysAddr, end: PhysAddr, what: &str) -> u64 {
        let first = start.as_u64().div_ceil(PAGE_SIZE);
        let last = end.as_u64() / PAGE_SIZE;
        let mut pages = 0;
        for pfn in first..last {
            let Some(page) = self.mem_map.pfn_to_page(Pfn::new(pfn)) else {
                error!("BUG: free_reserved_area: pfn {pfn:#x} outside the memory map; skipped");
                self.bad_pages.fetch_add(1, Relaxed);
                continue;
            };
            if !page.test(PageFlags::RESERVED) {
                self.report_bad_page(pfn, BadPageReason::NotReserved);
                continue;
            }
            self.free_pages_core(pfn, 0);
            pages += 1;
        }
        if pages > 0 {
            info!("Freeing {what} memory: {}K", pages * PAGE_SIZE / 1024);
        }
        pages
    }

    /// Computes `min_free_kbytes` from the managed pages unless a user
    /// set a larger one, then watermarks, lowmem reserves and pcp
    /// high/batch (Linux `init_per_zone_wmark_min`:
    /// `calculate_min_free_kbytes`, `setup_per_zone_wmarks`,
    /// `setup_per_zone_lowmem_reserve`).
    pub fn init_per_zone_wmark_min(&self) {
        let lowmem_pages: u64 = self.zones.iter().map(Zone::managed_pages).sum();
        self.wmark_settings.lock().calculate_min_free_kbytes(lowmem_pages);
        self.setup_per_zone_wmarks();
    }

    /// Recomputes watermarks, lowmem reserves and pcp high/batch from the
    /// zones' managed pages and the current `min_free_kbytes` and
    /// `watermark_scale_factor` (Linux `setup_per_zone_wmarks` and
    /// `zone_pcp_update`; the lowmem reserves, which Linux recomputes
    /// only at boot and for `lowmem_reserve_ratio`, come out the same).
    pub fn setup_per_zone_wmarks(&self) {
        {
            let settings = self.wmark_settings.lock();
            mmzone::setup_watermarks(&self.zones, &settings);
        }
        for zone in &self.zones {
            let batch = mmzone::zone_batchsize(zone.managed_pages());
            let high = mmzone::zone_highsize(zone.watermark(Watermark::Low), batch, self.nr_cpus);
            zone.pcp_batch.store(batch, Relaxed);
            zone.pcp_high.store(high, Relaxed);
        }
    }

    /// Linux `min_free_kbytes`: what the min watermarks add up to.
    pub fn min_free_kbytes(&self) -> u64 {
        self.wmark_settings.lock().min_free_kbytes()
    }

    /// Linux `watermark_scale_factor`: the low and high watermarks' gap,
    /// in 1/10000 of a zone.
    pub fn watermark_scale_factor(&self) -> u64 {
        self.wmark_settings.lock().watermark_scale_factor()
    }

    /// Sets `min_free_kbytes` as a user (`vm.min_free_kbytes`, Linux
    /// `min_free_kbytes_sysctl_handler`: 0 to `INT_MAX`, kept over the
    /// boot-time value from then on) and recomputes every zone's
    /// watermarks. Out of range, nothing changes.
    pub fn set_min_free_kbytes(&self, kbytes: u64) -> Result<(), mmzone::RangeError> {
        self.wmark_settings.lock().set_min_free_kbytes(kbytes)?;
        self.setup_per_zone_wmarks();
        Ok(())
    }

    /// Sets `watermark_scale_factor` (`vm.watermark_scale_factor`, Linux
    /// `watermark_scale_factor_sysctl_handler`: 1 to 3000) and recomputes
    /// every zone's watermarks. Out of range, nothing changes.
    pub fn set_watermark_scale_factor(&self, factor: u64) -> Result<(), mmzone::RangeError> {
        self.wmark_settings.lock().set_watermark_scale_factor(factor)?;
        self.setup_per_zone_wmarks();
        Ok(())
    }

    /// Linux `vm_swappiness`, which reclaim's balance of anonymous
    /// against file pages reads ([`crate::vmscan::DEFAULT_SWAPPINESS`]).
    pub fn vm_swappiness(&self) -> u32 {
        self.swappiness.load(Relaxed)
    }

    /// Sets `vm_swappiness` (`vm.swappiness`: 0 to
    /// [`crate::vmscan::MAX_SWAPPINESS`]). Out of range, nothing changes.
    pub fn set_vm_swappiness(&self, swappiness: u64) -> Result<(), mmzone::RangeError> {
        let max = u64::from(crate::vmscan::MAX_SWAPPINESS);
        let value = u32::try_from(swappiness).ok().filter(|&v| v <= crate::vmscan::MAX_SWAPPINESS);
        let value = value.ok_or(mmzone::RangeError { min: 0, max })?;
        self.swappiness.store(value, Relaxed);
        Ok(())
    }

    /// Pages the allocator keeps from user allocations (Linux
    /// `calculate_totalreserve_pages`): per zone, its high watermark plus
    /// its largest lowmem reserve, at most its managed pages. Computed on
    /// each call; Linux caches it when watermarks change.
    pub fn totalreserve_pages(&self) -> u64 {
        self.zones
            .iter()
            .map(|zone| {
                let max_reserve = ZoneType::ALL.iter().map(|&upper| zone.lowmem_reserve(upper)).max().unwrap_or(0);
                (max_reserve + zone.watermark(Watermark::High)).min(zone.managed_pages())
            })
            .sum()
    }

    /// [`PgData::alloc_pages`] with the reference in an owning [`Pages`],
    /// which frees the block when dropped.
    pub fn alloc_pages_owned(&self, gfp: Gfp, order: u32) -> Option<Pages<'_, 'a>> {
        self.alloc_pages(gfp, order).map(|pfn| Pages { pgdat: self, pfn, order })
    }

    /// Allocates 2^`order` contiguous pages (Linux `alloc_pages`). The first
    /// page has one reference; with `__GFP_COMP` the block is a compound
    /// page; with `__GFP_ZERO` its contents are zero. `None` when no zone
    /// the mask allows can satisfy the request; logged unless
    /// `__GFP_NOWARN`. A mask that allows direct reclaim may sleep: the
    /// caller must not be in atomic context ([`CpuOps::might_sleep`]).
    #[track_caller]
    pub fn alloc_pages(&self, gfp: Gfp, order: u32) -> Option<Pfn> {
        // Checked in debug builds only, as Linux checks with
        // CONFIG_DEBUG_ATOMIC_SLEEP: the call goes through `dyn CpuOps`.
        if cfg!(debug_assertions) && gfp.allows_blocking() {
            self.cpu.might_sleep(Location::caller());
        }
        self.alloc_pages_checked_by_caller(gfp, order)
    }

    /// [`PgData::alloc_pages`] for an allocator whose own entry point made
    /// the [`CpuOps::might_sleep`] check (SLUB's new slabs: the check is
    /// `kmem_cache_alloc`'s, before SLUB disables interrupts to refill).
    pub(crate) fn alloc_pages_checked_by_caller(&self, gfp: Gfp, order: u32) -> Option<Pfn> {
        if order > MAX_PAGE_ORDER {
            if !gfp.contains(Gfp::NOWARN) {
                warn!("page allocation of order {order} exceeds MAX_PAGE_ORDER {MAX_PAGE_ORDER}; mode:{gfp:?}");
            }
            return None;
        }
        let fast = AllocFlags(AllocFlags::WMARK_LOW);
        let pfn = match self.get_page_from_freelist(gfp, order, fast) {
            Some(pfn) => pfn,
            None => self.alloc_pages_slowpath(gfp, order)?,
        };
        let item = match self.mem_map.page(pfn.as_u64()).zone() {
            ZoneType::Dma => VmEventItem::PgallocDma,
            ZoneType::Dma32 => VmEventItem::PgallocDma32,
            ZoneType::Normal => VmEventItem::PgallocNormal,
        };
        self.count_vm_events(item, 1 << order);
        Some(pfn)
    }

    /// Fills `pfns` with order-0 pages and returns how many it filled
    /// (Linux `alloc_pages_bulk_array`, `__alloc_pages_bulk`): the first
    /// zone the mask allows whose watermark stays met after all of them is
    /// used, and the pages come off this CPU's list under one lock
    /// (refilled from the buddy lists a batch at a time), with one event
    /// count. Fewer than asked when that zone runs out; the caller takes
    /// the rest one by one with [`PgData::alloc_pages`], whose slow path
    /// can drain and fall back (so does Linux's `vm_area_alloc_pages`).
    /// The pages are as [`PgData::alloc_pages`] returns them.
    pub fn alloc_pages_bulk(&self, gfp: Gfp, pfns: &mut [Pfn]) -> usize {
        let highest = gfp.zone();
        let mt = gfp.migratetype();
        let flags = AllocFlags(AllocFlags::WMARK_LOW);
        let nr = pfns.len() as u64;
        let Some(zone) = self.zones[..=highest as usize].iter().rev().find(|zone| {
            zone.managed_pages() > 0
                && zone.pcp_high.load(Relaxed) != 0
                && self.zone_watermark_ok(zone, 0, zone.watermark(flags.watermark()) + nr, highest, flags)
        }) else {
            return 0;
        };
        let mut filled = 0;
        self.with_irqs_off(|| {
            let mut pcp = zone.pcp[self.pcp_index()].0.lock();
            let index = order_to_pindex(mt, 0);
            while filled < pfns.len() {
                if pcp.lists[index].is_empty() {
                    let batch = u64::from(zone.pcp_batch.load(Relaxed));
                    let mut free = zone.lock.lock();
                    let mut locked = self.locked(zone, &mut free);
                    for _ in 0..batch {
                        let Some(pfn) = locked.rmqueue(0, mt) else { break };
                        pcp.lists[index].push_back(&self.mem_map, Pfn::new(pfn));
                        pcp.count += 1;
                    }
                }
                let Some(pfn) = pcp.lists[index].pop_front(&self.mem_map) else { break };
                pcp.count -= 1;
                if self.prep_new_page(pfn.as_u64(), 0, gfp).is_err() {
                    // Leaked like Linux's check_new_pages; take another.
                    continue;
                }
                pfns[filled] = pfn;
                filled += 1;
            }
        });
        let item = match zone.zone_type() {
            ZoneType::Dma => VmEventItem::PgallocDma,
            ZoneType::Dma32 => VmEventItem::PgallocDma32,
            ZoneType::Normal => VmEventItem::PgallocNormal,
        };
        self.count_vm_events(item, filled as u64);
        filled
    }

    /// Adds `n` to this CPU's count of `item` (Linux `count_vm_events`):
    /// one relaxed atomic add, no lock.
    pub fn count_vm_events(&self, item: VmEventItem, n: u64) {
        if let Some(events) = self.vm_events.get(self.pcp_index()) {
            events.add(item, n);
        }
    }

    /// Counts one `item` on this CPU (Linux `count_vm_event`).
    pub fn count_vm_event(&self, item: VmEventItem) {
        self.count_vm_events(item, 1);
    }

    /// Counts a major fault: `pgmajfault` on this CPU and one against the
    /// running task ([`CpuOps::account_major_fault`]).
    pub fn count_major_fault(&self) {
        self.count_vm_event(VmEventItem::Pgmajfault);
        self.cpu.account_major_fault();
    }

    /// An event counter summed over CPUs (Linux `all_vm_events`).
    pub fn all_vm_events(&self, item: VmEventItem) -> u64 {
        self.vm_events.iter().map(|e| e.get(item)).sum()
    }

    /// CPU `cpu`'s event counters.
    pub fn vm_events(&self, cpu: usize) -> Option<&VmEventState> {
        self.vm_events.get(cpu)
    }

    /// Adds `delta` (in the item's unit: pages, bytes for byte items, KiB
    /// for kernel stacks) to this CPU's share of `item` (Linux
    /// `mod_node_page_state`): one relaxed atomic add, no lock.
    pub fn mod_node_page_state(&self, item: NodeStatItem, delta: i64) {
        if let Some(stats) = self.per_cpu_nodestats.get(self.pcp_index()) {
            stats.add(item, delta);
        }
    }

    /// A node state summed over CPUs, in the item's unit (Linux
    /// `global_node_page_state`); a sum a race makes negative reads 0, as
    /// in Linux.
    pub fn node_page_state(&self, item: NodeStatItem) -> u64 {
        let sum: i64 = self.per_cpu_nodestats.iter().map(|s| s.get(item)).sum();
        sum.max(0) as u64
    }

    /// [`PgData::node_page_state`] with byte items in whole pages (Linux
    /// `global_node_page_state_pages`, what /proc/vmstat shows).
    pub fn node_page_state_pages(&self, item: NodeStatItem) -> u64 {
        let value = self.node_page_state(item);
        if item.in_bytes() { value >> crate::addr::PAGE_SHIFT } else { value }
    }

    /// CPU `cpu`'s node state counters.
    pub fn node_stats(&self, cpu: usize) -> Option<&PerCpuNodeStat> {
        self.per_cpu_nodestats.get(cpu)
    }

    /// Linux `__alloc_pages_slowpath`: wake kswapd, retry at the min
    /// watermark (and without one for `__GFP_MEMALLOC`); then, for an
    /// allocation that may block, a first direct compaction at
    /// [`INIT_COMPACT_PRIORITY`] for a costly order or an order above 0
    /// that is not movable (it likely has enough free base pages, only
    /// not together), and rounds of direct reclaim (the registered
    /// [`DirectReclaim`]), then direct compaction (the registered
    /// [`DirectCompaction`]) at the current priority, each followed by an
    /// attempt at the free lists. A round is repeated while reclaim
    /// makes progress and may help ([`PgData::should_reclaim_retry`]),
    /// or while compaction may still help, at a higher priority if need
    /// be ([`should_compact_retry`]); a costly order without
    /// `__GFP_RETRY_MAYFAIL` and any `__GFP_NORETRY` allocation get one
    /// round. When nothing helps, the registered [`OutOfMemory`] (Linux
    /// `__alloc_pages_may_oom`): while it reports progress (a task was
    /// killed, or a victim's memory is on its way back) the rounds start
    /// again; a caller that is itself a victim gets one try at the
    /// reserves below the min watermark (Linux `ALLOC_OOM`) and then
    /// fails instead, so that it can exit.
    fn alloc_pages_slowpath(&self, gfp: Gfp, order: u32) -> Option<Pfn> {
        let flags = AllocFlags::from_gfp(gfp, order);
        let costly_order = order > PAGE_ALLOC_COSTLY_ORDER;
        let can_direct_reclaim = gfp.allows_blocking();
        // Linux `__gfp_pfmemalloc_flags`: a reclaimer's own allocations
        // (`PF_MEMALLOC`) may take the reserves, and must not reclaim or
        // compact in turn (Linux's "Avoid recursion of direct reclaim").
        let memalloc = self.direct_reclaim.get().is_some_and(|r| r.current_is_memalloc());
        let pfmemalloc = (gfp.contains(Gfp::MEMALLOC) || memalloc) && !gfp.contains(Gfp::NOMEMALLOC);
        let mut compact_priority = DEF_COMPACT_PRIORITY;
        let mut compact_result = CompactResult::Skipped;
        let mut compaction_retries = 0;
        let mut reclaim_rounds = 0;
        self.wake_all_kswapds(gfp, order);
        if let Some(pfn) = self.get_page_from_freelist(gfp, order, flags) {
            return Some(pfn);
        }
        if pfmemalloc {
            let flags = AllocFlags(flags.0 | AllocFlags::NO_WATERMARKS);
            if let Some(pfn) = self.get_page_from_freelist(gfp, order, flags) {
                return Some(pfn);
            }
        }
        if can_direct_reclaim
            && (costly_order || (order > 0 && gfp.migratetype() != MigrateType::Movable))
            && !pfmemalloc
        {
            let prio = INIT_COMPACT_PRIORITY;
            if let Some(pfn) = self.direct_compact(gfp, order, flags, prio, &mut compact_result) {
                return Some(pfn);
            }
            if costly_order && gfp.contains(Gfp::NORETRY) {
                // Reclaim would be costly and unlikely to free whole
                // blocks: give up unless compaction only lacked the time.
                if matches!(compact_result, CompactResult::Skipped | CompactResult::Deferred) {
                    return self.nopage(gfp, order);
                }
                compact_priority = INIT_COMPACT_PRIORITY;
            }
        }
        if !can_direct_reclaim || memalloc {
            return self.nopage(gfp, order);
        }
        loop {
            // Linux's `retry:` keeps kswapd awake while the allocation
            // loops.
            self.wake_all_kswapds(gfp, order);
            let progress = match self.direct_reclaim(gfp, order, flags) {
                Ok(pfn) => return Some(pfn),
                Err(progress) => progress,
            };
            if let Some(pfn) = self.direct_compact(gfp, order, flags, compact_priority, &mut compact_result) {
                return Some(pfn);
            }
            if gfp.contains(Gfp::NORETRY) || (costly_order && !gfp.contains(Gfp::RETRY_MAYFAIL)) {
                break;
            }
            if self.should_reclaim_retry(gfp, order, flags, progress, &mut reclaim_rounds) {
                continue;
            }
            if progress > 0
                && should_compact_retry(order, compact_result, &mut compact_priority, &mut compaction_retries)
            {
                continue;
            }
            let Some(oom) = self.oom_killer.get().filter(|_| crate::oom_kill::gfp_may_oom(gfp, order)) else {
                break;
            };
            if oom.current_is_victim() {
                // Linux `ALLOC_OOM`: a victim may take the reserves
                // below the min watermark on its way out, once.
                let reserves = AllocFlags(flags.0 | AllocFlags::NO_WATERMARKS);
                if let Some(pfn) = self.get_page_from_freelist(gfp, order, reserves) {
                    return Some(pfn);
                }
                break;
            }
            if !oom.out_of_memory(self, gfp, order) {
                break;
            }
            if let Some(pfn) = self.get_page_from_freelist(gfp, order, flags) {
                return Some(pfn);
            }
            reclaim_rounds = 0;
        }
        self.nopage(gfp, order)
    }

    /// The slow path's failure: logged unless `__GFP_NOWARN`.
    fn nopage(&self, gfp: Gfp, order: u32) -> Option<Pfn> {
        if !gfp.contains(Gfp::NOWARN) {
            self.warn_alloc(gfp, order);
        }
        None
    }

    /// Linux `wake_all_kswapds` and the bookkeeping half of
    /// `wakeup_kswapd`: records the order and highest zone for kswapd
    /// (which hands them to kcompactd when it is done) and wakes it, for
    /// an allocation allowed to (`__GFP_KSWAPD_RECLAIM`).
    fn wake_all_kswapds(&self, gfp: Gfp, order: u32) {
        if !gfp.contains(Gfp::KSWAPD_RECLAIM) {
            return;
        }
        self.kswapd_order.fetch_max(order, Relaxed);
        self.kswapd_highest_zoneidx.fetch_min(gfp.zone() as u32, Relaxed);
        // A hopeless node's kswapd is left asleep (Linux `wakeup_kswapd`).
        if !crate::vmscan::pgdat_unreclaimable(self)
            && let Some(kswapd) = self.kswapd.get()
        {
            kswapd.wakeup(order);
        }
    }

    /// One round of the slow path's reclaim: per-cpu lists drained and
    /// highatomic reserves released (pages may be pinned there), the free
    /// lists tried, then the registered reclaim once and the free lists
    /// again (Linux `__alloc_pages_direct_reclaim` and `__perform_reclaim`,
    /// which drain after reclaim instead; `allocstall_*` counts the
    /// reclaim by the allocation's highest zone, as Linux's
    /// `do_try_to_free_pages` does). The page, or the pages reclaim freed.
    fn direct_reclaim(&self, gfp: Gfp, order: u32, flags: AllocFlags) -> Result<Pfn, u64> {
        self.unreserve_highatomic_pageblock(gfp);
        self.drain_all_pages();
        if let Some(pfn) = self.get_page_from_freelist(gfp, order, flags) {
            return Ok(pfn);
        }
        let Some(reclaim) = self.direct_reclaim.get() else { return Err(0) };
        self.count_vm_event(match gfp.zone() {
            ZoneType::Dma => VmEventItem::AllocstallDma,
            ZoneType::Dma32 => VmEventItem::AllocstallDma32,
            ZoneType::Normal => VmEventItem::AllocstallNormal,
        });
        let progress = reclaim.try_to_free_pages(self, gfp, order);
        if progress == 0 {
            return Err(0);
        }
        self.drain_all_pages();
        self.get_page_from_freelist(gfp, order, flags).ok_or(progress)
    }

    /// Linux `should_reclaim_retry`: another round of reclaim unless
    /// [`MAX_RECLAIM_RETRIES`] rounds in a row freed nothing (`rounds`
    /// counts them, as Linux's `no_progress_loops`; a round that frees
    /// something starts the count again) or nothing on the LRU lists could
    /// be reclaimed (Linux `zone_reclaimable_pages`: the file lists, and
    /// the anonymous ones while swap has a free slot; per node here, and
    /// not weighed against the watermark); and for an order above 0 only
    /// while some zone already has a free block of that order (reclaim
    /// frees base pages; it does not put them together: that is
    /// compaction's, through [`should_compact_retry`]). A round that
    /// freed nothing is retried because reclaim's first look at a page in
    /// use only marks it: the next one may take it.
    fn should_reclaim_retry(&self, gfp: Gfp, order: u32, flags: AllocFlags, progress: u64, rounds: &mut u32) -> bool {
        if progress > 0 {
            *rounds = 0;
        } else {
            *rounds += 1;
        }
        if *rounds > MAX_RECLAIM_RETRIES || self.reclaimable_pages() == 0 {
            return false;
        }
        order == 0
            || self.zones[..=gfp.zone() as usize]
                .iter()
                .any(|zone| zone.managed_pages() > 0 && self.free_block_at_least(zone, order, flags))
    }

    /// Pages on the LRU lists reclaim could free (Linux
    /// `zone_reclaimable_pages`, for the node): the file lists, and the
    /// anonymous lists while swap has a free slot.
    fn reclaimable_pages(&self) -> u64 {
        use crate::swap::LruList;
        let file = self.lru_pages(LruList::InactiveFile) + self.lru_pages(LruList::ActiveFile);
        let anon = if self.swap_backend().is_some_and(|b| b.nr_swap_pages() > 0) {
            self.lru_pages(LruList::InactiveAnon) + self.lru_pages(LruList::ActiveAnon)
        } else {
            0
        };
        file + anon
    }

    /// Linux `__alloc_pages_direct_compact`: the registered compaction for
    /// this allocation at `prio`, then the free lists. A run that was not
    /// skipped in every zone counts `compact_stall`, and then
    /// `compact_success` (and resets the zone's deferral) or
    /// `compact_fail`. No page is captured during the run (Linux
    /// `compaction_capture`): the allocation takes its block from the
    /// free lists afterwards, where another allocation may take it first.
    fn direct_compact(
        &self,
        gfp: Gfp,
        order: u32,
        flags: AllocFlags,
        prio: CompactPriority,
        result: &mut CompactResult,
    ) -> Option<Pfn> {
        if order == 0 {
            return None;
        }
        let Some(compaction) = self.direct_compaction.get() else {
            *result = CompactResult::Skipped;
            return None;
        };
        *result = compaction.try_to_compact_pages(self, &CompactRequest { gfp, order, alloc_flags: flags, prio });
        if *result == CompactResult::Skipped {
            return None;
        }
        self.count_vm_event(VmEventItem::CompactStall);
        match self.get_page_from_freelist(gfp, order, flags) {
            Some(pfn) => {
                crate::compaction::compaction_defer_reset(
                    self.zone(self.mem_map.page(pfn.as_u64()).zone()),
                    order,
                    true,
                );
                self.count_vm_event(VmEventItem::CompactSuccess);
                Some(pfn)
            }
            None => {
                self.count_vm_event(VmEventItem::CompactFail);
                None
            }
        }
    }

    /// Linux `warn_alloc`: the failure and the free lists behind it.
    fn warn_alloc(&self, gfp: Gfp, order: u32) {
        warn!("page allocation failure: order:{order}, mode:{gfp:?}");
        for zone in self.zones.iter().filter(|z| z.present_pages() > 0) {
            let counts = self.free_counts(zone.zone_type());
            warn!("{}", crate::vmstat::ShowFreeAreas { zone: zone.name(), counts: &counts });
        }
    }

    /// Linux `get_page_from_freelist`: walks the zonelist from the highest
    /// zone the mask allows down, taking from the first zone whose
    /// watermark permits.
    fn get_page_from_freelist(&self, gfp: Gfp, order: u32, flags: AllocFlags) -> Option<Pfn> {
        let highest = gfp.zone();
        let mt = gfp.migratetype();
        for zone in self.zones[..=highest as usize].iter().rev() {
            if zone.managed_pages() == 0 {
                continue;
            }
            if !flags.has(AllocFlags::NO_WATERMARKS) {
                let mark = zone.watermark(flags.watermark());
                if !self.zone_watermark_ok(zone, order, mark, highest, flags) {
                    continue;
                }
            }
            while let Some(pfn) = self.with_irqs_off(|| self.rmqueue(zone, order, mt, flags)) {
                if self.prep_new_page(pfn, order, gfp).is_err() {
                    // Leaked like Linux's check_new_pages; try another block.
                    continue;
                }
                if flags.has(AllocFlags::HIGHATOMIC) && order > 0 {
                    self.reserve_highatomic_pageblock(zone, pfn);
                }
                return Some(Pfn::new(pfn));
            }
        }
        None
    }

    /// Linux `__zone_watermark_ok`: would the zone stay above `mark` (less
    /// the allowances of `flags`, plus the reserve kept against `highest`)
    /// after this allocation, with a free block of at least `order` left to
    /// take?
    pub(crate) fn zone_watermark_ok(
        &self,
        zone: &Zone<'a>,
        order: u32,
        mark: u64,
        highest: ZoneType,
        flags: AllocFlags,
    ) -> bool {
        let mut unusable = (1u64 << order) - 1;
        if !flags.has(AllocFlags::RESERVES) {
            unusable += zone.nr_reserved_highatomic();
        }
        let free = zone.free_pages().saturating_sub(unusable);
        let mut min = mark;
        if flags.has(AllocFlags::MIN_RESERVE) {
            min -= min / 2;
            if flags.has(AllocFlags::NON_BLOCK) {
                min -= min / 4;
            }
        }
        if free <= min + zone.lowmem_reserve(highest) {
            return false;
        }
        order == 0 || self.free_block_at_least(zone, order, flags)
    }

    /// The order half of `__zone_watermark_ok`: a free block of `order` or
    /// more on a list the allocation may take from (a pcp type's, or the
    /// highatomic one for `ALLOC_HIGHATOMIC`). Takes the zone lock with
    /// interrupts off.
    fn free_block_at_least(&self, zone: &Zone<'a>, order: u32, flags: AllocFlags) -> bool {
        self.with_irqs_off(|| {
            let free = zone.lock.lock();
            free.free_area[order as usize..].iter().any(|area| {
                area.nr_free > 0
                    && (area.free_list[..MIGRATE_PCPTYPES].iter().any(|l| !l.is_empty())
                        || (flags.has(AllocFlags::HIGHATOMIC)
                            && !area.free_list[MigrateType::HighAtomic as usize].is_empty()))
            })
        })
    }

    /// Whether an allocation of `order` and migratetype `mt` would find a
    /// block in `zone` now: a free block of `order` or more of type `mt`,
    /// or of a fallback type it may claim (the free-list half of Linux
    /// `__compact_finished`: `free_area_empty` and
    /// `find_suitable_fallback(.., only_stealable = true)`). Takes the
    /// zone lock with interrupts off.
    pub(crate) fn compact_block_ready(&self, zone: ZoneType, order: u32, mt: MigrateType) -> bool {
        let zone = self.zone(zone);
        self.with_irqs_off(|| {
            let mut free = zone.lock.lock();
            let locked = self.locked(zone, &mut free);
            (order..=MAX_PAGE_ORDER).any(|o| {
                !locked.free.free_area[o as usize].free_list[mt as usize].is_empty()
                    || ((mt as usize) < MIGRATE_PCPTYPES
                        && locked.find_suitable_fallback(o, mt).is_some_and(|(_, can_steal)| can_steal))
            })
        })
    }

    /// Linux `rmqueue`: small orders through the per-cpu lists, the rest
    /// from the buddy lists.
    fn rmqueue(&self, zone: &Zone<'a>, order: u32, mt: MigrateType, flags: AllocFlags) -> Option<u64> {
        if order <= PAGE_ALLOC_COSTLY_ORDER && zone.pcp_high.load(Relaxed) != 0 {
            return self.rmqueue_pcplist(zone, order, mt, flags);
        }
        let mut free = zone.lock.lock();
        let mut locked = self.locked(zone, &mut free);
        let mut page = None;
        if flags.has(AllocFlags::HIGHATOMIC) {
            page = locked.rmqueue_smallest(order, MigrateType::HighAtomic);
        }
        if page.is_none() {
            page = locked.rmqueue(order, mt);
        }
        if page.is_none() && flags.has(AllocFlags::NON_BLOCK) {
            page = locked.rmqueue_smallest(order, MigrateType::HighAtomic);
        }
        page
    }

    /// Linux `rmqueue_pcplist`: the local list, refilled with a batch from
    /// the buddy lists when empty.
    fn rmqueue_pcplist(&self, zone: &Zone<'a>, order: u32, mt: MigrateType, flags: AllocFlags) -> Option<u64> {
        let mut pcp = zone.pcp[self.pcp_index()].0.lock();
        let index = order_to_pindex(mt, order);
        if pcp.lists[index].is_empty() {
            let batch = u64::from(zone.pcp_batch.load(Relaxed));
            let count = if order == 0 { batch } else { (batch >> order).max(2) };
            let mut free = zone.lock.lock();
            let mut locked = self.locked(zone, &mut free);
            for _ in 0..count {
                let Some(pfn) = locked.rmqueue(order, mt) else { break };
                pcp.lists[index].push_back(&self.mem_map, Pfn::new(pfn));
                pcp.count += 1 << order;
            }
            drop(free);
            if pcp.lists[index].is_empty() {
                drop(pcp);
                // The pcp types are exhausted; atomic callers may still take
                // from the highatomic reserve.
                if flags.has(AllocFlags::NON_BLOCK | AllocFlags::HIGHATOMIC) {
                    let mut free = zone.lock.lock();
                    return self.locked(zone, &mut free).rmqueue_smallest(order, MigrateType::HighAtomic);
                }
                return None;
            }
        }
        let pfn = pcp.lists[index].pop_front(&self.mem_map)?;
        pcp.count -= 1 << order;
        Some(pfn.as_u64())
    }

    /// Linux `prep_new_page`: checks the block, takes the first reference,
    /// records the order, zeroes and builds the compound page as asked.
    fn prep_new_page(&self, pfn: u64, order: u32, gfp: Gfp) -> Result<(), BadPage> {
        let nr = if self.debug_checks.load(Relaxed) { 1u64 << order } else { 1 };
        for p in pfn..pfn + nr {
            let page = self.mem_map.page(p);
            if page.flags().intersects(PageFlags::CHECK_AT_PREP)
                || page.refcount() != 0
                || page.raw_mapcount() != -1
                || page.mapping() != 0
            {
                return Err(self.report_bad_page(p, BadPageReason::BadStateAtAlloc));
            }
        }
        let page = self.mem_map.page(pfn);
        page.set_private(0);
        page.set_order(order);
        page.set_refcount(1);
        if gfp.contains(Gfp::ZERO) {
            self.clear_pages(pfn, 1 << order);
        }
        if gfp.contains(Gfp::COMP) && order > 0 {
            page.set(PageFlags::HEAD);
            for p in pfn + 1..pfn + (1 << order) {
                let tail = self.mem_map.page(p);
                tail.set(PageFlags::TAIL);
                tail.set_link(0, pfn as u32);
            }
        }
        Ok(())
    }

    /// Zeroes pages the caller owns (Linux `clear_highpage` per page).
    fn clear_pages(&self, pfn: u64, nr: u64) {
        for p in pfn..pfn + nr {
            // SAFETY: the pages were just taken off the free lists for this
            // allocation, so nothing else accesses them.
            if let Err(e) = unsafe { highmem::clear_page(self, Pfn::new(p)) } {
                error!("{e}; not zeroed");
            }
        }
    }

    /// Frees 2^`order` pages allocated by [`PgData::alloc_pages`] (Linux
    /// `__free_pages`): drops the first page's reference and, if it was the
    /// last, returns the block to the allocator. A bad page (double free,
    /// wrong order, still mapped, reserved or slab) is reported, counted
    /// and leaked, and the report returned.
    ///
    /// # Safety
    /// The caller owns the reference it drops (from `alloc_pages` or a
    /// reference it took), and if it is the last one, nothing reaches the
    /// frames afterwards: no pte, page-table entry or TLB entry maps them
    /// and no pointer into them is used again. The allocator hands the
    /// frames to the next caller, so a stale user would share memory with
    /// it. The debug checks catch a double free but not a stale pointer.
    pub unsafe fn free_pages(&self, pfn: Pfn, order: u32) -> Result<(), BadPage> {
        let Some(page) = self.mem_map.pfn_to_page(pfn) else {
            error!("BUG: freeing pfn {:#x} outside the memory map", pfn.as_u64());
            self.bad_pages.fetch_add(1, Relaxed);
            return Err(BadPage {
                pfn,
                flags: PageFlags::empty(),
                refcount: 0,
                mapcount: 0,
                reason: BadPageReason::NotInMemMap,
            });
        };
        if page.refcount() <= 0 || page.test(PageFlags::BUDDY) {
            return Err(self.report_bad_page(pfn.as_u64(), BadPageReason::DoubleFree));
        }
        if !page.put_testzero() {
            return Ok(());
        }
        self.free_the_page(pfn.as_u64(), order)
    }

    /// Frees order-0 pages as [`PgData::free_pages`] does each, with one
    /// event count and this CPU's list locked once per run of pages of one
    /// zone (Linux `free_unref_page_list`, which vfree's page loop would
    /// be in a batched form). A bad page is reported and leaked and the
    /// rest are still freed; returns how many were bad.
    ///
    /// # Safety
    /// As [`PgData::free_pages`] for each page: the caller owns the
    /// reference it drops, and nothing uses a page it frees afterwards.
    pub unsafe fn free_pages_bulk(&self, pfns: &[Pfn]) -> u64 {
        let mut bad = 0;
        let mut freed = 0;
        let mut i = 0;
        while i < pfns.len() {
            // The run of pages that need freeing and share a zone.
            let mut zone_type = None;
            let mut ready = [0u64; FREE_BULK_CHUNK];
            let mut n = 0;
            while i < pfns.len() && n < FREE_BULK_CHUNK {
                let pfn = pfns[i];
                let Some(page) = self.mem_map.pfn_to_page(pfn) else {
                    // Reported (and counted) by free_pages.
                    // SAFETY: the caller's contract, page by page.
                    bad += u64::from(unsafe { self.free_pages(pfn, 0) }.is_err());
                    i += 1;
                    continue;
                };
                if zone_type.is_some_and(|z| z != page.zone()) {
                    break;
                }
                i += 1;
                if page.refcount() <= 0 || page.test(PageFlags::BUDDY) {
                    self.report_bad_page(pfn.as_u64(), BadPageReason::DoubleFree);
                    bad += 1;
                    continue;
                }
                if !page.put_testzero() {
                    continue;
                }
                if self.free_pages_prepare(pfn.as_u64(), 0).is_err() {
                    bad += 1;
                    continue;
                }
                zone_type = Some(page.zone());
                ready[n] = pfn.as_u64();
                n += 1;
            }
            let Some(zone_type) = zone_type else { continue };
            let zone = self.zone(zone_type);
            self.with_irqs_off(|| {
                if zone.pcp_high.load(Relaxed) == 0 {
                    for &pfn in &ready[..n] {
                        self.free_one_page(zone, pfn, 0);
                    }
                    return;
                }
                let mut pcp = zone.pcp[self.pcp_index()].0.lock();
                for &pfn in &ready[..n] {
                    let mut mt = self.mem_map.pageblock_migratetype(Pfn::new(pfn));
                    if mt as usize >= MIGRATE_PCPTYPES {
                        if mt == MigrateType::Isolate {
                            self.free_one_page(zone, pfn, 0);
                            continue;
                        }
                        mt = MigrateType::Movable;
                    }
                    pcp.lists[order_to_pindex(mt, 0)].push_front(&self.mem_map, Pfn::new(pfn));
                    pcp.count += 1;
                    if pcp.count >= u64::from(zone.pcp_high.load(Relaxed)) {
                        let batch = u64::from(zone.pcp_batch.load(Relaxed));
                        self.free_pcppages_bulk(zone, &mut pcp, batch);
                    }
                }
            });
            freed += n as u64;
        }
        self.count_vm_events(VmEventItem::Pgfree, freed);
        bad
    }

    /// Drops a reference to a page (Linux `put_page`); the last reference
    /// frees the whole block it was allocated as. A tail page's reference
    /// is its head's.
    ///
    /// # Safety
    /// As for [`PgData::free_pages`]: the caller owns the reference, and if
    /// it is the last, nothing maps or points into the block any more.
    pub unsafe fn put_page(&self, pfn: Pfn) -> Result<(), BadPage> {
        let head = self.compound_head(pfn);
        let order = self.mem_map.pfn_to_page(head).map_or(0, Page::order);
        // SAFETY: the caller's contract; a tail's reference is its head's.
        unsafe { self.free_pages(head, order) }
    }

    /// Linux `free_the_page` and `free_pages_prepare`.
    fn free_the_page(&self, pfn: u64, order: u32) -> Result<(), BadPage> {
        self.free_pages_prepare(pfn, order)?;
        self.count_vm_events(VmEventItem::Pgfree, 1 << order);
        self.with_irqs_off(|| {
            let zone = self.zone(self.mem_map.page(pfn).zone());
            if order <= PAGE_ALLOC_COSTLY_ORDER && zone.pcp_high.load(Relaxed) != 0 {
                self.free_unref_page(zone, pfn, order);
            } else {
                self.free_one_page(zone, pfn, order);
            }
        });
        Ok(())
    }

    /// Checks a block being freed and resets its descriptors. On a bad
    /// page nothing is reset: the block is leaked as found.
    fn free_pages_prepare(&self, pfn: u64, order: u32) -> Result<(), BadPage> {
        let page = self.mem_map.page(pfn);
        if page.flags().intersects(PageFlags::LRU | PageFlags::MLOCKED) {
            self.lru_del_on_free(Pfn::new(pfn), page);
        }
        let bad = |reason| Err(self.report_bad_page(pfn, reason));
        if page.test(PageFlags::TAIL) {
            return bad(BadPageReason::TailPage);
        }
        if page.order() != order {
            return bad(BadPageReason::WrongOrder { freed: order, allocated: page.order() });
        }
        if page.raw_mapcount() != -1 {
            return bad(BadPageReason::Mapped);
        }
        // An anonymous page's mapping is only the anon marker (Linux
        // clears `PAGE_MAPPING_FLAGS` mappings here too).
        if page.mapping() & crate::rmap::PAGE_MAPPING_ANON != 0 {
            page.set_mapping(0);
        }
        if page.mapping() != 0 {
            return bad(BadPageReason::HasMapping);
        }
        let set = page.flags() & PageFlags::CHECK_AT_FREE;
        if !set.is_empty() {
            return bad(BadPageReason::FlagsAtFree(set));
        }
        let compound = page.test(PageFlags::HEAD);
        if self.debug_checks.load(Relaxed) {
            for p in pfn + 1..pfn + (1 << order) {
                let tail = self.mem_map.page(p);
                let tail_ok = !compound || (tail.test(PageFlags::TAIL) && u64::from(tail.link(0)) == pfn);
                let set = tail.flags() & PageFlags::CHECK_AT_FREE;
                if !tail_ok || !set.is_empty() || tail.refcount() != 0 || tail.raw_mapcount() != -1 {
                    let reason = if tail.test(PageFlags::BUDDY) || !tail_ok {
                        BadPageReason::DoubleFree
                    } else {
                        BadPageReason::FlagsAtFree(set)
                    };
                    return Err(self.report_bad_page(p, reason));
                }
            }
        }
        // Every page of the block leaves with clean flags (Linux clears
        // PAGE_FLAGS_CHECK_AT_PREP on each page).
        for p in pfn + 1..pfn + (1 << order) {
            let tail = self.mem_map.page(p);
            tail.set_flags(PageFlags::empty());
            tail.set_link(0, crate::page::NIL);
        }
        page.set_flags(PageFlags::empty());
        page.set_order(0);
        page.set_private(0);
        Ok(())
    }

    /// Linux `free_unref_page`: onto the local per-cpu list, spilling a
    /// batch to the buddy lists above `high`. Isolated blocks go straight
    /// back; highatomic pages are treated as movable so the reserve can be
    /// recovered.
    fn free_unref_page(&self, zone: &Zone<'a>, pfn: u64, order: u32) {
        let mut mt = self.mem_map.pageblock_migratetype(Pfn::new(pfn));
        if mt as usize >= MIGRATE_PCPTYPES {
            if mt == MigrateType::Isolate {
                self.free_one_page(zone, pfn, order);
                return;
            }
            mt = MigrateType::Movable;
        }
        let mut pcp = zone.pcp[self.pcp_index()].0.lock();
        pcp.lists[order_to_pindex(mt, order)].push_front(&self.mem_map, Pfn::new(pfn));
        pcp.count += 1 << order;
        if pcp.count >= u64::from(zone.pcp_high.load(Relaxed)) {
            let batch = u64::from(zone.pcp_batch.load(Relaxed));
            self.free_pcppages_bulk(zone, &mut pcp, batch);
        }
    }

    /// Linux `free_pcppages_bulk`: returns at least `count` pages (or all)
    /// from a per-cpu cache to the buddy lists, taking the cold end of each
    /// list round-robin.
    fn free_pcppages_bulk(&self, zone: &Zone<'a>, pcp: &mut mmzone::PerCpuPages, count: u64) {
        let mut count = count.min(pcp.count);
        let mut free = zone.lock.lock();
        let mut locked = self.locked(zone, &mut free);
        let mut empty_in_a_row = 0;
        while count > 0 && empty_in_a_row < pcp.lists.len() {
            let index = pcp.drain_cursor;
            pcp.drain_cursor = (index + 1) % pcp.lists.len();
            let Some(pfn) = pcp.lists[index].pop_back(&self.mem_map) else {
                empty_in_a_row += 1;
                continue;
            };
            empty_in_a_row = 0;
            let order = pindex_to_order(index);
            let mt = self.mem_map.pageblock_migratetype(pfn);
            locked.free_one_page(pfn.as_u64(), order, mt, false);
            pcp.count -= 1 << order;
            count = count.saturating_sub(1 << order);
        }
    }

    /// Linux `free_one_page`: straight to the buddy lists.
    /// A block larger than a pageblock is freed pageblock by pageblock,
    /// each to its own type's list, and merging rejoins compatible halves
    /// (Linux 6.10 `split_large_buddy` in `free_one_page`).
    fn free_one_page(&self, zone: &Zone<'a>, pfn: u64, order: u32) {
        let mut free = zone.lock.lock();
        let mut locked = self.locked(zone, &mut free);
        let step_order = order.min(PAGEBLOCK_ORDER);
        let mut p = pfn;
        while p < pfn + (1 << order) {
            let mt = self.mem_map.pageblock_migratetype(Pfn::new(p));
            locked.free_one_page(p, step_order, mt, false);
            p += 1 << step_order;
        }
    }

    /// Empties every CPU's per-cpu lists in every zone back to the buddy
    /// lists (Linux `drain_all_pages`; Linux 6.x drains remote CPUs under
    /// their pcp lock the same way).
    pub fn drain_all_pages(&self) {
        self.with_irqs_off(|| {
            for zone in &self.zones {
                for pcp in zone.pcp.iter() {
                    let mut pcp = pcp.0.lock();
                    let count = pcp.count;
                    self.free_pcppages_bulk(zone, &mut pcp, count);
                }
            }
        });
    }

    /// Drains and disables a zone's per-cpu lists: allocations and frees go
    /// straight to the buddy lists (Linux `zone_pcp_disable`, used by memory
    /// offlining; benchmarks use it to measure the buddy path).
    pub fn zone_pcp_disable(&self, zone_type: ZoneType) {
        let zone = self.zone(zone_type);
        zone.pcp_high.store(0, Relaxed);
        zone.pcp_batch.store(1, Relaxed);
        self.drain_all_pages();
    }

    /// Re-enables a zone's per-cpu lists (Linux `zone_pcp_enable`).
    pub fn zone_pcp_enable(&self, zone_type: ZoneType) {
        let zone = self.zone(zone_type);
        let batch = mmzone::zone_batchsize(zone.managed_pages());
        zone.pcp_batch.store(batch, Relaxed);
        zone.pcp_high.store(mmzone::zone_highsize(zone.watermark(Watermark::Low), batch, self.nr_cpus), Relaxed);
    }

    /// Linux `reserve_highatomic_pageblock`: after a high-order atomic
    /// allocation succeeds, keep its pageblock for future ones, up to about
    /// 1% of the zone.
    fn reserve_highatomic_pageblock(&self, zone: &Zone<'a>, pfn: u64) {
        let max_managed = zone.managed_pages() / 100 + PAGEBLOCK_NR_PAGES;
        if zone.nr_reserved_highatomic() >= max_managed {
            return;
        }
        self.with_irqs_off(|| {
            let mut free = zone.lock.lock();
            if zone.nr_reserved_highatomic() >= max_managed {
                return;
            }
            let mt = self.mem_map.pageblock_migratetype(Pfn::new(pfn));
            if !mt.is_mergeable() {
                return;
            }
            let order = self.mem_map.page(pfn).order();
            let mut locked = self.locked(zone, &mut free);
            if order >= PAGEBLOCK_ORDER {
                locked.change_pageblock_range(pfn, order, MigrateType::HighAtomic);
                zone.nr_reserved_highatomic.fetch_add(1 << order, Relaxed);
            } else {
                locked.move_freepages_block(pfn, mt, MigrateType::HighAtomic);
                zone.nr_reserved_highatomic.fetch_add(PAGEBLOCK_NR_PAGES, Relaxed);
            }
        });
    }

    /// Linux `unreserve_highatomic_pageblock`: before failing, give one
    /// highatomic block per zone back to the allocation's migratetype.
    fn unreserve_highatomic_pageblock(&self, gfp: Gfp) {
        let target = gfp.migratetype();
        self.with_irqs_off(|| {
            for zone in self.zones[..=gfp.zone() as usize].iter().rev() {
                if zone.nr_reserved_highatomic() == 0 {
                    continue;
                }
                let mut free = zone.lock.lock();
                let mut locked = self.locked(zone, &mut free);
                for order in 0..NR_PAGE_ORDERS as u32 {
                    let list = &locked.free.free_area[order as usize].free_list[MigrateType::HighAtomic as usize];
                    let Some(pfn) = list.front() else { continue };
                    let pfn = pfn.as_u64();
                    let size = PAGEBLOCK_NR_PAGES.max(1 << order);
                    let reserved = zone.nr_reserved_highatomic();
                    zone.nr_reserved_highatomic.store(reserved - size.min(reserved), Relaxed);
                    if order < PAGEBLOCK_ORDER {
                        locked.move_freepages_block(pfn, MigrateType::HighAtomic, target);
                    } else {
                        locked.move_to_free_list(pfn, order, MigrateType::HighAtomic, target);
                        locked.change_pageblock_range(pfn, order, target);
                    }
                    break;
                }
            }
        });
    }

    /// Takes the pageblock holding `pfn` out of allocation: its free pages
    /// move to the ISOLATE lists and stop counting as free (Linux
    /// `set_migratetype_isolate`, without the movability check compaction
    /// and offlining add).
    pub fn isolate_pageblock(&self, pfn: Pfn) -> Result<(), IsolateError> {
        let page = self.mem_map.pfn_to_page(pfn).ok_or(IsolateError::NotInZone(pfn))?;
        let zone = self.zone(page.zone());
        if !zone.spans_pfn(pfn.as_u64()) {
            return Err(IsolateError::NotInZone(pfn));
        }
        self.with_irqs_off(|| {
            let mut free = zone.lock.lock();
            let mt = self.mem_map.pageblock_migratetype(pfn);
            if mt == MigrateType::Isolate {
                return Err(IsolateError::AlreadyIsolated(pfn));
            }
            let mut locked = self.locked(zone, &mut free);
            locked.split_large_buddy(pfn.as_u64());
            locked.move_freepages_block(pfn.as_u64(), mt, MigrateType::Isolate);
            Ok(())
        })?;
        // Pages of the block sitting on per-cpu lists would still be handed
        // out; draining sends them to the isolated free lists (Linux drains
        // in start_isolate_page_range).
        self.drain_all_pages();
        Ok(())
    }

    /// Takes the free block whose first page is `pfn` off the free lists
    /// for compaction's free scanner and splits it into order-0 pages that
    /// each hold one reference, as if allocated (Linux `__isolate_free_page`
    /// followed by `split_page` and `post_alloc_hook`). Returns the block's
    /// order, or `None` if `pfn` does not start a free block (any more), its
    /// pageblock is isolated, or taking it would leave the zone at or below
    /// its min watermark plus the block (Linux's check in
    /// `__isolate_free_page`, so compaction cannot eat the reserves). Pages
    /// compaction does not use go back through [`PgData::free_pages`].
    ///
    /// Takes the zone lock of `pfn`'s zone with interrupts off on this CPU
    /// (Linux `spin_lock_irqsave(&zone->lock)` in
    /// `isolate_freepages_block`), and no per-cpu list lock; the caller
    /// holds neither. It may hold an mmap lock (compaction's target
    /// allocation runs under the lock of the address space whose pages it
    /// moves).
    pub(crate) fn isolate_free_page(&self, pfn: Pfn) -> Option<u32> {
        let page = self.mem_map.pfn_to_page(pfn)?;
        let zone = self.zone(page.zone());
        if !zone.spans_pfn(pfn.as_u64()) {
            return None;
        }
        let order = self.with_irqs_off(|| {
            let mut free = zone.lock.lock();
            if !page.test(PageFlags::BUDDY) {
                return None;
            }
            let order = page.order();
            let mt = self.mem_map.pageblock_migratetype(pfn);
            let mark = zone.watermark(Watermark::Min) + (1 << order);
            let flags = AllocFlags(AllocFlags::WMARK_MIN);
            if mt == MigrateType::Isolate || !self.zone_watermark_ok(zone, 0, mark, zone.zone_type(), flags) {
                return None;
            }
            self.locked(zone, &mut free).del_page_from_free_list(pfn.as_u64(), order, mt);
            Some(order)
        })?;
        for p in pfn.as_u64()..pfn.as_u64() + (1 << order) {
            let page = self.mem_map.page(p);
            page.set_private(0);
            page.set_order(0);
            page.set_refcount(1);
        }
        Some(order)
    }

    /// Returns an isolated pageblock to allocation as `mt` (Linux
    /// `unset_migratetype_isolate`).
    pub fn unisolate_pageblock(&self, pfn: Pfn, mt: MigrateType) -> Result<(), IsolateError> {
        let page = self.mem_map.pfn_to_page(pfn).ok_or(IsolateError::NotInZone(pfn))?;
        let zone = self.zone(page.zone());
        self.with_irqs_off(|| {
            let mut free = zone.lock.lock();
            if self.mem_map.pageblock_migratetype(pfn) != MigrateType::Isolate {
                return Err(IsolateError::NotIsolated(pfn));
            }
            let mut locked = self.locked(zone, &mut free);
            // Two isolated neighbours may have merged above pageblock order.
            locked.split_large_buddy(pfn.as_u64());
            locked.move_freepages_block(pfn.as_u64(), MigrateType::Isolate, mt);
            Ok(())
        })
    }

    /// A consistency check of one zone's free lists against the page
    /// descriptors and counters, for tests and debugging: every listed page
    /// is a free buddy block of the list's order and pageblock type,
    /// aligned, inside the zone, not overlapping another; every page marked
    /// buddy is listed; and the counters match a recount. Returns the counts
    /// or the first inconsistency found. Walks the whole zone under its
    /// lock.
    pub fn check_zone(&self, zone_type: ZoneType) -> Result<FreeCounts, &'static str> {
        self.with_irqs_off(|| self.check_zone_irqs_off(zone_type))
    }

    fn check_zone_irqs_off(&self, zone_type: ZoneType) -> Result<FreeCounts, &'static str> {
        let zone = self.zone(zone_type);
        let free = zone.lock.lock();
        let mut counts = FreeCounts::default();
        let mut free_pages = 0;
        for (order, area) in free.free_area.iter().enumerate() {
            let mut nr_free = 0;
            for (mt, list) in area.free_list.iter().enumerate() {
                let mut len = 0;
                for pfn in list.iter(&self.mem_map) {
                    let page = self.mem_map.page(pfn.as_u64());
                    if !page.test(PageFlags::BUDDY) || page.order() as usize != order {
                        return Err("page on a free list is not a buddy of the list's order");
                    }
                    if pfn.as_u64() % (1 << order) != 0 || !zone.spans_pfn(pfn.as_u64()) {
                        return Err("free block misaligned or outside its zone");
                    }
                    let mut block = pfn.as_u64();
                    while block < pfn.as_u64() + (1 << order) {
                        if self.mem_map.pageblock_migratetype(Pfn::new(block)) as usize != mt {
                            return Err("free block on a list other than its pageblocks' migratetype");
                        }
                        block += PAGEBLOCK_NR_PAGES;
                    }
                    for p in pfn.as_u64() + 1..pfn.as_u64() + (1 << order) {
                        if self.mem_map.page(p).test(PageFlags::BUDDY) {
                            return Err("free blocks overlap");
                        }
                    }
                    len += 1;
                    if mt != MigrateType::Isolate as usize {
                        free_pages += 1u64 << order;
                    }
                }
                if len != list.len() {
                    return Err("list length counter is wrong");
                }
                counts.blocks[order][mt] = len;
                nr_free += len;
            }
            if nr_free != area.nr_free {
                return Err("nr_free counter is wrong");
            }
        }
        if free_pages != zone.free_pages() {
            return Err("NR_FREE_PAGES counter is wrong");
        }
        let listed: u64 = counts.blocks.iter().flatten().sum();
        let flagged = (zone.start_pfn()..zone.start_pfn() + zone.spanned_pages())
            .filter(|&pfn| self.mem_map.page(pfn).test(PageFlags::BUDDY))
            .count() as u64;
        if listed != flagged {
            return Err("a page marked buddy is on no free list");
        }
        Ok(counts)
    }
}

/// The per-cpu list index of a migratetype and order (Linux
/// `order_to_pindex`).
/// Compaction retries while it reports success but the allocation still
/// fails (Linux `MAX_COMPACT_RETRIES`).
pub(crate) const MAX_COMPACT_RETRIES: u32 = 16;

/// Linux `should_compact_retry`: whether the slow path goes round again
/// for compaction's sake. Success without a page (another allocation took
/// it), or skipped for lack of free base pages (reclaim made progress, so
/// there may be room now): up to [`MAX_COMPACT_RETRIES`] times, a quarter
/// of that for costly orders (Linux retries a skip for as long as
/// `compaction_zonelist_suitable` finds a zone whose free and reclaimable
/// pages would give compaction room; we keep no per-zone count of
/// reclaimable pages, and bound it as success is). Otherwise, once more
/// at the next higher priority, down to `COMPACT_PRIO_SYNC_FULL`
/// (`COMPACT_PRIO_SYNC_LIGHT` for costly orders), the retries counted
/// anew.
pub(crate) fn should_compact_retry(
    order: u32,
    result: CompactResult,
    priority: &mut CompactPriority,
    retries: &mut u32,
) -> bool {
    if order == 0 {
        return false;
    }
    if matches!(result, CompactResult::Skipped | CompactResult::Success) {
        let max_retries = if order > PAGE_ALLOC_COSTLY_ORDER { MAX_COMPACT_RETRIES / 4 } else { MAX_COMPACT_RETRIES };
        *retries += 1;
        if *retries <= max_retries {
            return true;
        }
        if result == CompactResult::Skipped {
            return false;
        }
    }
    let min_priority = if order > PAGE_ALLOC_COSTLY_ORDER {
        crate::compaction::MIN_COMPACT_COSTLY_PRIORITY
    } else {
        crate::compaction::MIN_COMPACT_PRIORITY
    };
    match priority.raise() {
        Some(higher) if *priority > min_priority => {
            *priority = higher;
            *retries = 0;
            true
        }
        _ => false,
    }
}

fn order_to_pindex(mt: MigrateType, order: u32) -> usize {
    MIGRATE_PCPTYPES * order as usize + mt as usize
}

/// The order of a per-cpu list index (Linux `pindex_to_order`).
fn pindex_to_order(index: usize) -> u32 {
    (index / MIGRATE_PCPTYPES) as u32
}

impl Locked<'_, '_> {
    fn account_freepages(&self, nr: u64, mt: MigrateType, add: bool) {
        if mt == MigrateType::Isolate {
            return;
        }
        if add {
            self.zone.nr_free_pages.fetch_add(nr, Relaxed);
        } else {
            self.zone.nr_free_pages.fetch_sub(nr, Relaxed);
        }
    }

    /// Linux `__add_to_free_list` with `set_buddy_order` and the free page
    /// accounting.
    fn add_to_free_list(&mut self, pfn: u64, order: u32, mt: MigrateType, tail: bool) {
        let page = self.map.page(pfn);
        page.set_order(order);
        page.set(PageFlags::BUDDY);
        let area = &mut self.free.free_area[order as usize];
        if tail {
            area.free_list[mt as usize].push_back(self.map, Pfn::new(pfn));
        } else {
            area.free_list[mt as usize].push_front(self.map, Pfn::new(pfn));
        }
        area.nr_free += 1;
        self.account_freepages(1 << order, mt, true);
    }

    /// Linux `del_page_from_free_list`.
    fn del_page_from_free_list(&mut self, pfn: u64, order: u32, mt: MigrateType) {
        let area = &mut self.free.free_area[order as usize];
        area.free_list[mt as usize].remove(self.map, Pfn::new(pfn));
        area.nr_free -= 1;
        let page = self.map.page(pfn);
        page.clear(PageFlags::BUDDY);
        page.set_order(0);
        self.account_freepages(1 << order, mt, false);
    }

    /// Linux `move_to_free_list`.
    fn move_to_free_list(&mut self, pfn: u64, order: u32, old: MigrateType, new: MigrateType) {
        let area = &mut self.free.free_area[order as usize];
        area.free_list[old as usize].remove(self.map, Pfn::new(pfn));
        area.free_list[new as usize].push_back(self.map, Pfn::new(pfn));
        if (old == MigrateType::Isolate) != (new == MigrateType::Isolate) {
            self.account_freepages(1 << order, old, false);
            self.account_freepages(1 << order, new, true);
        }
    }

    /// Linux `expand`: splits a block of order `high` taken for an
    /// allocation of order `low`, returning the upper halves to `mt`'s
    /// lists.
    fn expand(&mut self, pfn: u64, low: u32, mut high: u32, mt: MigrateType) {
        while high > low {
            high -= 1;
            self.add_to_free_list(pfn + (1 << high), high, mt, false);
        }
    }

    /// Linux `__rmqueue_smallest`: the smallest block of `mt` that fits.
    fn rmqueue_smallest(&mut self, order: u32, mt: MigrateType) -> Option<u64> {
        for current in order..=MAX_PAGE_ORDER {
            let Some(pfn) = self.free.free_area[current as usize].free_list[mt as usize].front() else { continue };
            let pfn = pfn.as_u64();
            self.del_page_from_free_list(pfn, current, mt);
            self.expand(pfn, order, current, mt);
            return Some(pfn);
        }
        None
    }

    /// Linux `__rmqueue`: the preferred type, then its fallbacks.
    fn rmqueue(&mut self, order: u32, mt: MigrateType) -> Option<u64> {
        self.rmqueue_smallest(order, mt).or_else(|| self.rmqueue_fallback(order, mt))
    }

    /// Linux `can_steal_fallback`: whether an allocation of `order` and
    /// `start_mt` may claim a whole foreign pageblock.
    fn can_steal_fallback(order: u32, start_mt: MigrateType) -> bool {
        order >= PAGEBLOCK_ORDER / 2 || start_mt == MigrateType::Reclaimable || start_mt == MigrateType::Unmovable
    }

    /// Linux `find_suitable_fallback`: the first fallback type with a free
    /// block of `order`, and whether it may be claimed.
    fn find_suitable_fallback(&self, order: u32, start_mt: MigrateType) -> Option<(MigrateType, bool)> {
        let area = &self.free.free_area[order as usize];
        if area.nr_free == 0 {
            return None;
        }
        let fallbacks = FALLBACKS[start_mt as usize];
        let fallback = fallbacks.into_iter().find(|&mt| !area.free_list[mt as usize].is_empty())?;
        Some((fallback, Self::can_steal_fallback(order, start_mt)))
    }

    /// Linux `__rmqueue_fallback`: take from another type, the largest
    /// block first so that a claimed pageblock serves many later requests;
    /// but a movable request that cannot claim takes the smallest block,
    /// leaving the large ones whole.
    fn rmqueue_fallback(&mut self, order: u32, start_mt: MigrateType) -> Option<u64> {
        let mut found = None;
        for current in (order..=MAX_PAGE_ORDER).rev() {
            if let Some((fallback, can_steal)) = self.find_suitable_fallback(current, start_mt) {
                if !can_steal && start_mt == MigrateType::Movable && current > order {
                    found = (order..=MAX_PAGE_ORDER).find_map(|smallest| {
                        self.find_suitable_fallback(smallest, start_mt).map(|(mt, steal)| (smallest, mt, steal))
                    });
                } else {
                    found = Some((current, fallback, can_steal));
                }
                break;
            }
        }
        let (current, fallback, can_steal) = found?;
        let pfn = self.free.free_area[current as usize].free_list[fallback as usize].front()?.as_u64();
        self.steal_suitable_fallback(pfn, current, order, start_mt, fallback, can_steal)
    }

    /// Linux `steal_suitable_fallback` (6.10+): claim the whole pageblock if
    /// the block is at least a pageblock, or enough of its pages are free
    /// or compatible; otherwise take just this block, leaving the pageblock
    /// its type.
    fn steal_suitable_fallback(
        &mut self,
        pfn: u64,
        current: u32,
        order: u32,
        start_mt: MigrateType,
        block_mt: MigrateType,
        whole_block: bool,
    ) -> Option<u64> {
        if current >= PAGEBLOCK_ORDER {
            self.del_page_from_free_list(pfn, current, block_mt);
            self.change_pageblock_range(pfn, current, start_mt);
            self.expand(pfn, order, current, start_mt);
            return Some(pfn);
        }
        if whole_block {
            let (free_pages, movable_pages) = self.count_block(pfn);
            let alike = if start_mt == MigrateType::Movable {
                movable_pages
            } else if block_mt == MigrateType::Movable {
                PAGEBLOCK_NR_PAGES - free_pages - movable_pages
            } else {
                0
            };
            if free_pages + alike >= PAGEBLOCK_NR_PAGES / 2 {
                self.move_freepages_block(pfn, block_mt, start_mt);
                return self.rmqueue_smallest(order, start_mt);
            }
        }
        self.del_page_from_free_list(pfn, current, block_mt);
        self.expand(pfn, order, current, block_mt);
        Some(pfn)
    }

    /// The pfn range of the pageblock holding `pfn`, clipped to the memory
    /// map.
    fn block_range(&self, pfn: u64) -> (u64, u64) {
        let start = pfn & !(PAGEBLOCK_NR_PAGES - 1);
        let end = (start + PAGEBLOCK_NR_PAGES).min(self.map.end_pfn().as_u64());
        (start.max(self.map.start_pfn().as_u64()), end)
    }

    /// Free and movable (on an LRU) pages in `pfn`'s pageblock (Linux
    /// `prep_move_freepages_block`'s counting).
    fn count_block(&self, pfn: u64) -> (u64, u64) {
        let (mut p, end) = self.block_range(pfn);
        let (mut free, mut movable) = (0, 0);
        while p < end {
            let page = self.map.page(p);
            if page.test(PageFlags::BUDDY) {
                free += 1 << page.order();
                p += 1 << page.order();
            } else {
                if page.test(PageFlags::LRU) {
                    movable += 1;
                }
                p += 1;
            }
        }
        (free, movable)
    }

    /// Linux `move_freepages_block`: moves the free blocks inside `pfn`'s
    /// pageblock from `old`'s lists to `new`'s and retypes the pageblock.
    /// The caller ensures no free block larger than the pageblock covers it.
    fn move_freepages_block(&mut self, pfn: u64, old: MigrateType, new: MigrateType) {
        let (mut p, end) = self.block_range(pfn);
        while p < end {
            let page = self.map.page(p);
            if page.test(PageFlags::BUDDY) {
                let order = page.order();
                self.move_to_free_list(p, order, old, new);
                p += 1 << order;
            } else {
                p += 1;
            }
        }
        self.map.set_pageblock_migratetype(pfn, new);
    }

    /// Linux `change_pageblock_range`: retypes every pageblock of a block of
    /// `order` >= pageblock order.
    fn change_pageblock_range(&mut self, pfn: u64, order: u32, mt: MigrateType) {
        let mut block = pfn;
        while block < pfn + (1 << order) {
            self.map.set_pageblock_migratetype(block, mt);
            block += PAGEBLOCK_NR_PAGES;
        }
    }

    /// If a free block larger than a pageblock covers `pfn`'s pageblock,
    /// splits it into pageblock-sized free blocks so the pageblock can be
    /// retyped on its own (Linux 6.10 `split_large_buddy`).
    fn split_large_buddy(&mut self, pfn: u64) {
        for order in PAGEBLOCK_ORDER + 1..=MAX_PAGE_ORDER {
            let start = pfn & !((1u64 << order) - 1);
            if start < self.map.start_pfn().as_u64() {
                return;
            }
            let page = self.map.page(start);
            if page.test(PageFlags::BUDDY) && page.order() == order {
                let mt = self.map.pageblock_migratetype(Pfn::new(start));
                self.del_page_from_free_list(start, order, mt);
                let mut block = start;
                while block < start + (1 << order) {
                    self.add_to_free_list(block, PAGEBLOCK_ORDER, mt, true);
                    block += PAGEBLOCK_NR_PAGES;
                }
                return;
            }
        }
    }

    /// Whether `buddy` is a free block of `order` in this zone (Linux
    /// `page_is_buddy`).
    fn page_is_buddy(&self, buddy: u64, order: u32) -> bool {
        if !self.zone.spans_pfn(buddy) {
            return false;
        }
        let Some(page) = self.map.pfn_to_page(Pfn::new(buddy)) else { return false };
        page.test(PageFlags::BUDDY) && page.order() == order
    }

    /// Linux `buddy_merge_likely`: if the block this one would merge into
    /// next has its buddy free, the block is likely to merge soon, so it
    /// goes to the tail of its list and is not handed out first.
    fn buddy_merge_likely(&self, pfn: u64, order: u32) -> bool {
        if order >= MAX_PAGE_ORDER - 1 {
            return false;
        }
        let higher = pfn & !(1 << order);
        let higher_buddy = higher ^ (1 << (order + 1));
        self.page_is_buddy(higher_buddy, order + 1)
    }

    /// Linux `__free_one_page`: merges the block with its free buddies and
    /// puts the result on its pageblock type's list.
    fn free_one_page(&mut self, mut pfn: u64, mut order: u32, mt: MigrateType, to_tail: bool) {
        while order < MAX_PAGE_ORDER {
            let buddy = pfn ^ (1 << order);
            if !self.page_is_buddy(buddy, order) {
                break;
            }
            let buddy_mt = self.map.pageblock_migratetype(Pfn::new(buddy));
            if order >= PAGEBLOCK_ORDER && buddy_mt != mt && (!mt.is_mergeable() || !buddy_mt.is_mergeable()) {
                break;
            }
            self.del_page_from_free_list(buddy, order, buddy_mt);
            if buddy_mt != mt {
                self.change_pageblock_range(buddy, order, mt);
            }
            pfn &= buddy;
            order += 1;
        }
        let to_tail = to_tail || self.buddy_merge_likely(pfn, order);
        self.add_to_free_list(pfn, order, mt, to_tail);
    }
}

#[cfg(test)]
mod tests;
