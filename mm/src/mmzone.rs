//! Zones, migratetypes, free areas and watermarks (Linux
//! `include/linux/mmzone.h`, `mm/mmzone.c`, and the watermark set-up of
//! `mm/page_alloc.c`).
//!
//! Physical memory is split into zones by what hardware can address it:
//! ZONE_DMA below 16 MiB, ZONE_DMA32 below 4 GiB, ZONE_NORMAL above. Each zone
//! has its own buddy free lists ([`FreeArea`] per order, one list per
//! [`MigrateType`]), its own per-cpu page lists and its watermarks. An
//! allocation that may use zone Z tries Z first, then each lower zone (the
//! zonelist), and each lower zone keeps a `lowmem_reserve` against
//! allocations that could have been served higher up.
//!
//! Watermarks follow Linux's `calculate_min_free_kbytes` and
//! `__setup_per_zone_wmarks`: `min_free_kbytes = sqrt(lowmem_kbytes * 16)`
//! clamped to [128, 262144], shared among zones by managed pages; `low` and
//! `high` add the larger of min/4 and `watermark_scale_factor` (10, i.e.
//! 0.1%) of the zone's managed pages. Both can be set at run time
//! (`vm.min_free_kbytes`, `vm.watermark_scale_factor`:
//! [`WatermarkSettings`]), and every zone's watermarks are recomputed
//! (`PgData::set_min_free_kbytes`); a user's `min_free_kbytes` stays
//! over a later boot-time computation that comes out smaller, as
//! Linux's `user_min_free_kbytes` does.
//!
//! Differences from Linux: one node; no ZONE_HIGHMEM, ZONE_MOVABLE or
//! ZONE_DEVICE; no CMA migratetype; no watermark boosting; the per-cpu lists'
//! `high` is fixed from the low watermark (Linux 6.7 tunes it between
//! `high_min` and `high_max` at run time).

#![forbid(unsafe_code)]

use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use spin::Mutex;

use crate::list::PageList;
use crate::percpu::PerCpuRef;

/// The highest buddy order (Linux `MAX_PAGE_ORDER`): 4 MiB blocks.
pub const MAX_PAGE_ORDER: u32 = 10;
/// Orders 0..=MAX_PAGE_ORDER (Linux `NR_PAGE_ORDERS`).
pub const NR_PAGE_ORDERS: usize = MAX_PAGE_ORDER as usize + 1;
/// Zones in a node (Linux `MAX_NR_ZONES`).
pub const MAX_NR_ZONES: usize = 3;
/// Migratetypes (Linux `MIGRATE_TYPES`).
pub const MIGRATE_TYPES: usize = 5;
/// Migratetypes that have per-cpu lists (Linux `MIGRATE_PCPTYPES`).
pub const MIGRATE_PCPTYPES: usize = 3;
/// Orders above this are "costly" and bypass the per-cpu lists (Linux
/// `PAGE_ALLOC_COSTLY_ORDER`).
pub const PAGE_ALLOC_COSTLY_ORDER: u32 = 3;
/// Per-cpu lists per zone and CPU: one per pcp migratetype and order up to
/// the costly order (Linux `NR_PCP_LISTS` without the THP list).
pub const NR_PCP_LISTS: usize = MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER as usize + 1);
/// Most CPUs mm supports (Linux `CONFIG_NR_CPUS`).
pub const NR_CPUS: usize = 64;

/// First pfn above ZONE_DMA (16 MiB).
pub const MAX_DMA_PFN: u64 = (16 << 20) >> crate::addr::PAGE_SHIFT;
/// First pfn above ZONE_DMA32 (4 GiB).
pub const MAX_DMA32_PFN: u64 = (4 << 30) >> crate::addr::PAGE_SHIFT;

/// A zone (Linux `enum zone_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
#[doc(alias = "zone_type")]
pub enum ZoneType {
    /// ZONE_DMA: below 16 MiB.
    Dma = 0,
    /// ZONE_DMA32: below 4 GiB.
    Dma32 = 1,
    /// ZONE_NORMAL: everything else.
    Normal = 2,
}

impl ZoneType {
    /// All zones, lowest first.
    pub const ALL: [ZoneType; MAX_NR_ZONES] = [ZoneType::Dma, ZoneType::Dma32, ZoneType::Normal];

    /// The zone with index `index`.
    pub const fn from_index(index: usize) -> Option<ZoneType> {
        match index {
            0 => Some(ZoneType::Dma),
            1 => Some(ZoneType::Dma32),
            2 => Some(ZoneType::Normal),
            _ => None,
        }
    }

    /// The zone a frame belongs to.
    pub const fn for_pfn(pfn: crate::addr::Pfn) -> ZoneType {
        let pfn = pfn.as_u64();
        if pfn < MAX_DMA_PFN {
            ZoneType::Dma
        } else if pfn < MAX_DMA32_PFN {
            ZoneType::Dma32
        } else {
            ZoneType::Normal
        }
    }

    /// The pfn range `[start, end)` the zone may span.
    pub const fn pfn_limits(self) -> (u64, u64) {
        match self {
            ZoneType::Dma => (0, MAX_DMA_PFN),
            ZoneType::Dma32 => (MAX_DMA_PFN, MAX_DMA32_PFN),
            ZoneType::Normal => (MAX_DMA32_PFN, u64::MAX),
        }
    }

    /// Linux's name for the zone, as in /proc/zoneinfo.
    pub const fn name(self) -> &'static str {
        match self {
            ZoneType::Dma => "DMA",
            ZoneType::Dma32 => "DMA32",
            ZoneType::Normal => "Normal",
        }
    }

    /// `sysctl_lowmem_reserve_ratio` for this zone.
    const fn lowmem_reserve_ratio(self) -> u64 {
        match self {
            ZoneType::Dma | ZoneType::Dma32 => 256,
            ZoneType::Normal => 32,
        }
    }
}

/// How movable a page's contents are, and so which free lists its block
/// comes from (Linux `enum migratetype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
#[doc(alias = "migratetype")]
pub enum MigrateType {
    /// MIGRATE_UNMOVABLE: kernel allocations that stay put.
    Unmovable = 0,
    /// MIGRATE_MOVABLE: user and page-cache pages that can be migrated.
    Movable = 1,
    /// MIGRATE_RECLAIMABLE: slab caches with shrinkers.
    Reclaimable = 2,
    /// MIGRATE_HIGHATOMIC: pageblocks reserved for high-order atomic
    /// allocations.
    HighAtomic = 3,
    /// MIGRATE_ISOLATE: pageblocks taken out of allocation (compaction,
    /// offlining); their free pages are not handed out.
    Isolate = 4,
}

impl MigrateType {
    /// All migratetypes in Linux's order.
    pub const ALL: [MigrateType; MIGRATE_TYPES] = [
        MigrateType::Unmovable,
        MigrateType::Movable,
        MigrateType::Reclaimable,
        MigrateType::HighAtomic,
        MigrateType::Isolate,
    ];

    /// The migratetype with index `index`.
    pub const fn from_index(index: usize) -> Option<MigrateType> {
        if index < MIGRATE_TYPES { Some(Self::ALL[index]) } else { None }
    }

    /// Linux's name, as in /proc/pagetypeinfo (`migratetype_names`).
    pub const fn name(self) -> &'static str {
        match self {
            MigrateType::Unmovable => "Unmovable",
            MigrateType::Movable => "Movable",
            MigrateType::Reclaimable => "Reclaimable",
            MigrateType::HighAtomic => "HighAtomic",
            MigrateType::Isolate => "Isolate",
        }
    }

    /// Blocks of this type may merge with blocks of another mergeable type
    /// (Linux `migratetype_is_mergeable`).
    pub const fn is_mergeable(self) -> bool {
        (self as usize) < MIGRATE_PCPTYPES
    }
}

/// A watermark level (Linux `enum zone_watermarks`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watermark {
    /// WMARK_MIN: below it only atomic and reclaim allocations proceed.
    Min = 0,
    /// WMARK_LOW: kswapd wakes below it.
    Low = 1,
    /// WMARK_HIGH: kswapd sleeps above it.
    High = 2,
}

/// The free lists of one order (Linux `struct free_area`).
#[derive(Debug, Default)]
pub struct FreeArea {
    pub(crate) free_list: [PageList; MIGRATE_TYPES],
    pub(crate) nr_free: u64,
}

impl FreeArea {
    const fn new() -> Self {
        FreeArea { free_list: [const { PageList::new() }; MIGRATE_TYPES], nr_free: 0 }
    }
}

/// The part of a zone its lock protects (Linux: `zone->free_area` under
/// `zone->lock`).
#[derive(Debug)]
pub(crate) struct ZoneFree {
    pub(crate) free_area: [FreeArea; NR_PAGE_ORDERS],
}

/// One CPU's cache of free pages in one zone (Linux `struct per_cpu_pages`);
/// `high` and `batch` live in the zone since every CPU shares them here.
#[derive(Debug)]
pub(crate) struct PerCpuPages {
    pub(crate) count: u64,
    pub(crate) lists: [PageList; NR_PCP_LISTS],
    /// Round-robin cursor for draining (Linux `free_pcppages_bulk`'s pindex).
    pub(crate) drain_cursor: usize,
}

/// One CPU's per-cpu page lists for one zone behind their lock (Linux
/// `struct per_cpu_pages` with `pcp->lock`, allocated with `alloc_percpu`).
/// The caller of [`crate::page_alloc::PgData::new`] provides
/// [`MAX_NR_ZONES`] of them per CPU, so the zones stay small enough to build
/// on a boot stack; the percpu allocator will own them once it exists.
#[derive(Debug)]
pub struct PerCpuPageset(pub(crate) Mutex<PerCpuPages>);

impl PerCpuPageset {
    /// Empty lists.
    pub const fn new() -> Self {
        PerCpuPageset(Mutex::new(PerCpuPages {
            count: 0,
            lists: [const { PageList::new() }; NR_PCP_LISTS],
            drain_cursor: 0,
        }))
    }
}

impl Default for PerCpuPageset {
    fn default() -> Self {
        Self::new()
    }
}

/// A snapshot of a zone's free blocks per order and migratetype, the data
/// of /proc/buddyinfo and /proc/pagetypeinfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FreeCounts {
    /// Free blocks, `[order][migratetype]`.
    pub blocks: [[u64; MIGRATE_TYPES]; NR_PAGE_ORDERS],
}

impl FreeCounts {
    /// Free blocks of `order` of any type (a /proc/buddyinfo column).
    pub fn nr_free(&self, order: usize) -> u64 {
        self.blocks[order].iter().sum()
    }

    /// Free base pages on all lists.
    pub fn pages(&self) -> u64 {
        (0..NR_PAGE_ORDERS).map(|order| self.nr_free(order) << order).sum()
    }
}

/// A zone (Linux `struct zone`).
#[doc(alias = "struct zone")]
pub struct Zone<'a> {
    zone_type: ZoneType,
    pub(crate) start_pfn: u64,
    pub(crate) spanned_pages: u64,
    pub(crate) present_pages: u64,
    pub(crate) managed_pages: AtomicU64,
    watermark: [AtomicU64; 3],
    lowmem_reserve: [AtomicU64; MAX_NR_ZONES],
    pub(crate) nr_reserved_highatomic: AtomicU64,
    /// NR_FREE_PAGES: pages on the buddy free lists, isolated ones excluded.
    pub(crate) nr_free_pages: AtomicU64,
    pub(crate) pcp_high: AtomicU32,
    pub(crate) pcp_batch: AtomicU32,
    pub(crate) lock: Mutex<ZoneFree>,
    /// The per-cpu lists, one per CPU.
    pub(crate) pcp: PerCpuRef<'a, PerCpuPageset>,
    // Compaction deferral, read and written without a lock as in Linux
    // (see `crate::compaction`'s `defer_compaction`): a lost update only
    // changes how soon compaction is tried again.
    /// Compactions skipped since the last deferral (Linux
    /// `compact_considered`).
    pub(crate) compact_considered: AtomicU32,
    /// Skip up to `1 << compact_defer_shift` compactions (Linux
    /// `compact_defer_shift`).
    pub(crate) compact_defer_shift: AtomicU32,
    /// Orders from this one up are deferred (Linux
    /// `compact_order_failed`).
    pub(crate) compact_order_failed: AtomicU32,
}

impl<'a> Zone<'a> {
    pub(crate) const fn new(zone_type: ZoneType, pcp: PerCpuRef<'a, PerCpuPageset>) -> Zone<'a> {
        Zone {
            zone_type,
            start_pfn: 0,
            spanned_pages: 0,
            present_pages: 0,
            managed_pages: AtomicU64::new(0),
            watermark: [const { AtomicU64::new(0) }; 3],
            lowmem_reserve: [const { AtomicU64::new(0) }; MAX_NR_ZONES],
            nr_reserved_highatomic: AtomicU64::new(0),
            nr_free_pages: AtomicU64::new(0),
            pcp_high: AtomicU32::new(0),
            pcp_batch: AtomicU32::new(1),
            lock: Mutex::new(ZoneFree { free_area: [const { FreeArea::new() }; NR_PAGE_ORDERS] }),
            pcp,
            compact_considered: AtomicU32::new(0),
            compact_defer_shift: AtomicU32::new(0),
            compact_order_failed: AtomicU32::new(0),
        }
    }

    /// Which zone this is.
    pub fn zone_type(&self) -> ZoneType {
        self.zone_type
    }

    /// Linux's name for the zone.
    pub fn name(&self) -> &'static str {
        self.zone_type.name()
    }

    /// The first pfn the zone spans (Linux `zone_start_pfn`).
    pub fn start_pfn(&self) -> u64 {
        self.start_pfn
    }

    /// Pfns from the first to the last present page, holes included.
    pub fn spanned_pages(&self) -> u64 {
        self.spanned_pages
    }

    /// Pages of memory in the zone, reserved ones included.
    pub fn present_pages(&self) -> u64 {
        self.present_pages
    }

    /// Pages handed to the buddy allocator (Linux `zone_managed_pages`).
    pub fn managed_pages(&self) -> u64 {
        self.managed_pages.load(Relaxed)
    }

    /// Whether `pfn` lies in the zone's span (Linux `zone_spans_pfn`).
    pub fn spans_pfn(&self, pfn: u64) -> bool {
        pfn >= self.start_pfn && pfn < self.start_pfn + self.spanned_pages
    }

    /// Free pages on the buddy lists (Linux `zone_page_state(NR_FREE_PAGES)`);
    /// pages on per-cpu lists are not counted, as in Linux.
    pub fn free_pages(&self) -> u64 {
        self.nr_free_pages.load(Relaxed)
    }

    /// Pages in pageblocks reserved for high-order atomic allocations.
    pub fn nr_reserved_highatomic(&self) -> u64 {
        self.nr_reserved_highatomic.load(Relaxed)
    }

    /// A watermark in pages (Linux `wmark_pages`).
    pub fn watermark(&self, which: Watermark) -> u64 {
        self.watermark[which as usize].load(Relaxed)
    }

    /// Pages this zone keeps back from allocations that may use `upper`
    /// (Linux `zone->lowmem_reserve[upper]`).
    pub fn lowmem_reserve(&self, upper: ZoneType) -> u64 {
        self.lowmem_reserve[upper as usize].load(Relaxed)
    }

    /// Where CPU `cpu`'s per-cpu lists of this zone live (0 if the CPU has
    /// none), for checks that they are in per-CPU memory.
    pub fn pcp_address(&self, cpu: usize) -> u64 {
        self.pcp.get(cpu).map_or(0, |p| core::ptr::from_ref(p) as u64)
    }

    /// The per-cpu lists' `high` and `batch` (0 high: lists disabled).
    pub fn pcp_high_batch(&self) -> (u32, u32) {
        (self.pcp_high.load(Relaxed), self.pcp_batch.load(Relaxed))
    }

    /// Free blocks per order and migratetype, taken under the zone lock;
    /// the caller has interrupts off ([`crate::page_alloc::PgData::free_counts`]).
    pub(crate) fn free_counts_irqs_off(&self) -> FreeCounts {
        let free = self.lock.lock();
        let mut counts = FreeCounts::default();
        for (order, area) in free.free_area.iter().enumerate() {
            for (mt, list) in area.free_list.iter().enumerate() {
                counts.blocks[order][mt] = list.len();
            }
        }
        counts
    }

    /// Pages on this zone's per-cpu lists, all CPUs; the caller has
    /// interrupts off ([`crate::page_alloc::PgData::pcp_pages`]).
    pub(crate) fn pcp_pages_irqs_off(&self) -> u64 {
        self.pcp.iter().map(|pcp| pcp.0.lock().count).sum()
    }

    /// Pages on CPU `cpu`'s per-cpu lists of this zone (0 for a CPU it has
    /// none for); the caller has interrupts off
    /// ([`crate::page_alloc::PgData::pcp_count`]).
    pub(crate) fn pcp_count_irqs_off(&self, cpu: usize) -> u64 {
        self.pcp.get(cpu).map_or(0, |pcp| pcp.0.lock().count)
    }

    pub(crate) fn set_watermarks(&self, min: u64, low: u64, high: u64) {
        self.watermark[Watermark::Min as usize].store(min, Relaxed);
        self.watermark[Watermark::Low as usize].store(low, Relaxed);
        self.watermark[Watermark::High as usize].store(high, Relaxed);
    }
}

impl fmt::Debug for Zone<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Zone")
            .field("name", &self.name())
            .field("start_pfn", &self.start_pfn)
            .field("spanned", &self.spanned_pages)
            .field("present", &self.present_pages)
            .field("managed", &self.managed_pages())
            .field("free", &self.free_pages())
            .finish_non_exhaustive()
    }
}

/// Linux `calculate_min_free_kbytes`: `sqrt(lowmem_kbytes * 16)`, clamped.
pub fn min_free_kbytes(managed_pages: u64) -> u64 {
    let lowmem_kbytes = managed_pages * (crate::addr::PAGE_SIZE / 1024);
    (lowmem_kbytes * 16).isqrt().clamp(128, 262_144)
}

/// `watermark_scale_factor`'s default: the low-to-high gap in 1/10000 of
/// a zone.
pub const WATERMARK_SCALE_FACTOR: u64 = 10;

/// The largest `watermark_scale_factor` (Linux's sysctl bound, 30%).
pub const MAX_WATERMARK_SCALE_FACTOR: u64 = 3000;

/// The largest `min_free_kbytes` a user may set (Linux's `int`).
pub const MAX_MIN_FREE_KBYTES: u64 = i32::MAX as u64;

/// A tunable set outside its range; nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeError {
    /// The smallest value taken.
    pub min: u64,
    /// The largest value taken.
    pub max: u64,
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "out of range {}..={}", self.min, self.max)
    }
}

/// What the watermarks are computed from (Linux's `min_free_kbytes`,
/// `user_min_free_kbytes` and `watermark_scale_factor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatermarkSettings {
    min_free_kbytes: u64,
    /// The value a user set, which a later boot-time computation only
    /// replaces with a larger one (Linux `user_min_free_kbytes`, -1 for
    /// none).
    user_min_free_kbytes: Option<u64>,
    watermark_scale_factor: u64,
}

impl Default for WatermarkSettings {
    fn default() -> Self {
        Self::new()
    }
}

impl WatermarkSettings {
    /// Linux's initial values: `min_free_kbytes` 1024 until computed from
    /// the memory, no user value, `watermark_scale_factor` 10.
    pub const fn new() -> WatermarkSettings {
        WatermarkSettings {
            min_free_kbytes: 1024,
            user_min_free_kbytes: None,
            watermark_scale_factor: WATERMARK_SCALE_FACTOR,
        }
    }

    /// `min_free_kbytes` now.
    pub fn min_free_kbytes(&self) -> u64 {
        self.min_free_kbytes
    }

    /// `watermark_scale_factor` now.
    pub fn watermark_scale_factor(&self) -> u64 {
        self.watermark_scale_factor
    }

    /// Linux `calculate_min_free_kbytes` over `lowmem_pages` managed
    /// pages: the computed value unless a user's is at least as large.
    pub fn calculate_min_free_kbytes(&mut self, lowmem_pages: u64) {
        let computed = min_free_kbytes(lowmem_pages);
        if self.user_min_free_kbytes.is_none_or(|user| computed > user) {
            self.min_free_kbytes = computed;
        }
    }

    /// A user's `min_free_kbytes` (0 to [`MAX_MIN_FREE_KBYTES`]).
    pub fn set_min_free_kbytes(&mut self, kbytes: u64) -> Result<(), RangeError> {
        if kbytes > MAX_MIN_FREE_KBYTES {
            return Err(RangeError { min: 0, max: MAX_MIN_FREE_KBYTES });
        }
        self.min_free_kbytes = kbytes;
        self.user_min_free_kbytes = Some(kbytes);
        Ok(())
    }

    /// A user's `watermark_scale_factor` (1 to
    /// [`MAX_WATERMARK_SCALE_FACTOR`]).
    pub fn set_watermark_scale_factor(&mut self, factor: u64) -> Result<(), RangeError> {
        if !(1..=MAX_WATERMARK_SCALE_FACTOR).contains(&factor) {
            return Err(RangeError { min: 1, max: MAX_WATERMARK_SCALE_FACTOR });
        }
        self.watermark_scale_factor = factor;
        Ok(())
    }
}

/// Linux `__setup_per_zone_wmarks` and `setup_per_zone_lowmem_reserve` over
/// the zones of one node: `min_free_kbytes` shared among the zones by
/// managed pages is each zone's min watermark; low and high add
/// `max(min / 4, managed * watermark_scale_factor / 10000)` once and
/// twice.
pub(crate) fn setup_watermarks(zones: &[Zone<'_>; MAX_NR_ZONES], settings: &WatermarkSettings) {
    let lowmem_pages: u64 = zones.iter().map(Zone::managed_pages).sum();
    if lowmem_pages == 0 {
        return;
    }
    let pages_min = settings.min_free_kbytes / (crate::addr::PAGE_SIZE / 1024);
    for zone in zones {
        let managed = zone.managed_pages();
        let min = (u128::from(pages_min) * u128::from(managed) / u128::from(lowmem_pages)) as u64;
        let gap = (min / 4).max(managed * settings.watermark_scale_factor / 10_000);
        zone.set_watermarks(min, min + gap, min + 2 * gap);
    }
    for (i, zone) in zones.iter().enumerate() {
        let ratio = zone.zone_type.lowmem_reserve_ratio();
        let clear = zone.managed_pages() == 0;
        let mut upper_managed = 0;
        for (j, upper) in zones.iter().enumerate().skip(i + 1) {
            upper_managed += upper.managed_pages();
            let reserve = if clear { 0 } else { upper_managed / ratio };
            zone.lowmem_reserve[j].store(reserve, Relaxed);
        }
    }
}

/// Linux `zone_batchsize`: about a quarter of a MiB per refill on big zones,
/// fewer on small ones, rounded to 2^n - 1 to avoid cache-colour aliasing.
pub fn zone_batchsize(managed_pages: u64) -> u32 {
    let batch = (managed_pages >> 10).min((1 << 20) / crate::addr::PAGE_SIZE) / 4;
    let batch = batch.max(1);
    let batch = batch + batch / 2;
    // Largest power of two not above `batch`, minus one; at least 1.
    let pow = 1u64 << (63 - batch.leading_zeros());
    (pow - 1).max(1) as u32
}

/// Linux `zone_highsize` with `percpu_pagelist_high_fraction` 0: the low
/// watermark shared among the CPUs, at least four batches.
pub fn zone_highsize(low_wmark: u64, batch: u32, nr_cpus: u32) -> u32 {
    let high = low_wmark / u64::from(nr_cpus.max(1));
    high.max(u64::from(batch) << 2).min(u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::Pfn;

    #[test]
    fn zone_boundaries_are_16m_and_4g() {
        assert_eq!(ZoneType::for_pfn(Pfn::new(0)), ZoneType::Dma);
        assert_eq!(ZoneType::for_pfn(Pfn::new(4095)), ZoneType::Dma);
        assert_eq!(ZoneType::for_pfn(Pfn::new(4096)), ZoneType::Dma32);
        assert_eq!(ZoneType::for_pfn(Pfn::new((1 << 20) - 1)), ZoneType::Dma32);
        assert_eq!(ZoneType::for_pfn(Pfn::new(1 << 20)), ZoneType::Normal);
    }

    #[test]
    fn min_free_kbytes_follows_linux_formula() {
        // 1 GiB of lowmem: sqrt(1048576 * 16) = 4096 KiB.
        assert_eq!(min_free_kbytes(262_144), 4096);
        // Tiny and huge machines hit the clamps.
        assert_eq!(min_free_kbytes(16), 128);
        assert_eq!(min_free_kbytes(1 << 40), 262_144);
    }

    #[test]
    fn batch_and_high_match_linux_for_common_sizes() {
        // Zones of 1 GiB or more: min(pages >> 10, 256) / 4 = 64 -> 96 -> 63.
        assert_eq!(zone_batchsize(1 << 20), 63);
        // A 128 MiB zone: 32 / 4 = 8 -> 12 -> 7.
        assert_eq!(zone_batchsize(32_768), 7);
        assert_eq!(zone_batchsize(0), 1);
        assert_eq!(zone_highsize(1000, 63, 2), 500);
        assert_eq!(zone_highsize(100, 63, 2), 252);
    }

    #[test]
    fn watermarks_and_lowmem_reserve_follow_managed_pages() {
        let zones = ZoneType::ALL.map(|z| Zone::new(z, PerCpuRef::from_slice(&[])));
        zones[0].managed_pages.store(3_000, Relaxed);
        zones[1].managed_pages.store(200_000, Relaxed);
        zones[2].managed_pages.store(59_144, Relaxed);
        let mut settings = WatermarkSettings::new();
        settings.calculate_min_free_kbytes(262_144);
        setup_watermarks(&zones, &settings);
        // 262,144 pages = 1 GiB: min_free_kbytes 4096 = 1024 pages shared out.
        let mins: u64 = zones.iter().map(|z| z.watermark(Watermark::Min)).sum();
        assert!((1020..=1024).contains(&mins), "mins sum to {mins}");
        let dma32 = &zones[1];
        let min = dma32.watermark(Watermark::Min);
        assert_eq!(min, 1024 * 200_000 / 262_144);
        let gap = (min / 4).max(200);
        assert_eq!(dma32.watermark(Watermark::Low), min + gap);
        assert_eq!(dma32.watermark(Watermark::High), min + 2 * gap);
        assert_eq!(zones[0].lowmem_reserve(ZoneType::Dma32), 200_000 / 256);
        assert_eq!(zones[0].lowmem_reserve(ZoneType::Normal), 259_144 / 256);
        assert_eq!(dma32.lowmem_reserve(ZoneType::Normal), 59_144 / 256);
        assert_eq!(zones[2].lowmem_reserve(ZoneType::Normal), 0);
    }
}
