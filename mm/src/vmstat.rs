//! Event and state counters, and reports on the page allocator, in Linux's
//! formats (Linux `mm/vmstat.c`: the per-CPU `vm_event_states` and
//! `per_cpu_nodestats`, /proc/vmstat, /proc/zoneinfo, /proc/buddyinfo and
//! /proc/pagetypeinfo; `mm/show_mem.c`'s per-zone free-area line).
//!
//! # Counters
//! Two kinds, both per CPU and kept in per-CPU memory (the kernel allocates
//! them with its per-CPU allocator; host tests use plain arrays):
//!
//! - **Events** ([`VmEventItem`], Linux `enum vm_event_item`): things that
//!   happened, only ever counted up, one [`VmEventState`] per CPU.
//! - **Node state** ([`NodeStatItem`], Linux `enum node_stat_item`): how
//!   much of something exists now (mapped anonymous pages, slab bytes,
//!   page-table pages), moved up and down by signed amounts, one
//!   [`PerCpuNodeStat`] per CPU. A page mapped on one CPU may be unmapped on
//!   another, so a single CPU's value can be negative; only the sum over
//!   CPUs means something.
//!
//! An update is one relaxed atomic add to the executing CPU's counter: no
//! lock, no shared cache line, cheap enough to stay on in release builds.
//! The add is atomic, so an interrupt handler counting on the same CPU, or
//! a task that migrated between picking its CPU's counter and adding to it,
//! loses nothing. A reader sums every CPU's counter (Linux
//! `all_vm_events`, `global_node_page_state`); the sum is exact once the
//! updates it races with are done, and a node state that a race makes
//! transiently negative reads as 0, as in Linux.
//!
//! Difference from Linux: Linux keeps node state as small per-CPU `s8`
//! diffs that are folded into a global atomic once they pass a per-zone
//! threshold (`__mod_node_page_state`, `stat_threshold`), so readers read
//! one word but may be off by up to `threshold * nr_cpus`. We never fold:
//! a counter is a per-CPU `i64`, readers sum all CPUs, and the drift Linux
//! bounds with its threshold is zero. /proc/zoneinfo therefore shows a
//! `vm stats threshold` of 0, which in Linux likewise means "exact". Byte
//! counters (`NR_SLAB_*_B`) are kept in bytes (Linux stores them in pages
//! internally) and shown in pages, as Linux shows them.
//!
//! # What is counted, and what is not
//! Only what our kernel really does: page allocation and freeing per zone,
//! page faults (minor and major), copy-on-write reuse, `drop_caches`,
//! page migration and compaction (`pgmigrate_*`, `compact_*`,
//! `compact_daemon_*`), reclaim and the LRU lists (`pgscan_*`,
//! `pgsteal_*`, `pgactivate`, `pgdeactivate`, `pgrefill`, `pgrotated`,
//! `allocstall_*`, `kswapd_*`, `slabs_scanned`, the `nr_*_anon`/`_file`
//! list sizes, `unevictable_pgs_*`, `pglazyfree`/`pglazyfreed`), swap
//! (`pswpin`/`pswpout` for its page I/O, `swap_ra`/`swap_ra_hit` for its
//! readahead, `nr_swapcached` for the swap cache), and the state of mapped
//! anonymous and file pages, slab and large-kmalloc memory, kernel stacks
//! and page tables. Counters of mechanisms that do not exist are absent
//! rather than stuck at zero: no `thp_*`, `numa_*`, `zswp*` or memcg
//! counters. The workingset counters ([`crate::workingset`]) come as
//! Linux's three pairs: `workingset_refault_file` and its siblings count
//! page-cache refaults, the `_anon` ones swap-ins that found the shadow
//! their page's eviction left; there is no `workingset_nodes` or
//! `workingset_nodereclaim` until a shrinker bounds the shadow nodes.
//! `oom_kill` counts the OOM killer's kills (see [`crate::oom_kill`]).
//! Shmem's pages (tmpfs, memfd, shared anonymous memory: see
//! [`crate::shmem`]) count in `nr_shmem` and `nr_file_pages`, and in
//! `nr_mapped` while mapped, as Linux's do; their pages in swap do not.
//!
//! # Reports
//! Each report is a value implementing `Display`, so the kernel prints it
//! to the console and host tests compare it with text, byte for byte in
//! the layout Linux's `seq_printf` formats produce.

// Its tests free pages they allocated (an unsafe call); the module
// itself has no reason for unsafe.
#![cfg_attr(not(test), forbid(unsafe_code))]

use core::fmt;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::mmzone::{FreeCounts, MIGRATE_TYPES, MigrateType, NR_PAGE_ORDERS, Watermark};
use crate::page::{PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER};
use crate::page_alloc::PgData;

/// The events we count (Linux `enum vm_event_item`, the part our kernel
/// has the mechanisms for), in /proc/vmstat order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[doc(alias = "vm_event_item")]
pub enum VmEventItem {
    /// KiB read from block devices (`PGPGIN`; Linux counts sectors in
    /// `submit_bio` and halves them for /proc/vmstat, we count KiB).
    Pgpgin,
    /// KiB written to block devices (`PGPGOUT`).
    Pgpgout,
    /// Pages read in from swap (`PSWPIN`): counted by the kernel's
    /// page_io as each read is submitted, as Linux's `swap_read_folio`.
    Pswpin,
    /// Pages written out to swap (`PSWPOUT`): counted as each write is
    /// submitted (Linux `count_swpout_vm_event`).
    Pswpout,
    /// Pages allocated from ZONE_DMA (`PGALLOC_DMA`).
    PgallocDma,
    /// Pages allocated from ZONE_DMA32 (`PGALLOC_DMA32`).
    PgallocDma32,
    /// Pages allocated from ZONE_NORMAL (`PGALLOC_NORMAL`).
    PgallocNormal,
    /// Direct reclaims entered by allocations whose highest zone is
    /// ZONE_DMA (`ALLOCSTALL_DMA`, counted by the allocator's slow path
    /// before each call of the registered reclaim, as Linux's
    /// `do_try_to_free_pages` counts per call).
    AllocstallDma,
    /// Likewise for ZONE_DMA32 (`ALLOCSTALL_DMA32`).
    AllocstallDma32,
    /// Likewise for ZONE_NORMAL (`ALLOCSTALL_NORMAL`).
    AllocstallNormal,
    /// Likewise for ZONE_MOVABLE (`ALLOCSTALL_MOVABLE`): always 0, as we
    /// have no ZONE_MOVABLE; shown because Linux always shows it.
    AllocstallMovable,
    /// Pages freed (`PGFREE`).
    Pgfree,
    /// Pages moved to an active LRU list (`PGACTIVATE`,
    /// [`crate::swap`]).
    Pgactivate,
    /// Pages moved from an active to an inactive list (`PGDEACTIVATE`).
    Pgdeactivate,
    /// Anonymous pages `MADV_FREE` made lazily freeable (`PGLAZYFREE`,
    /// Linux `lru_lazyfree`).
    Pglazyfree,
    /// User page faults handled (`PGFAULT`): every fault that reaches the
    /// generic fault handler (Linux `handle_mm_fault`) with a VMA that
    /// allows the access, populate and GUP-style prefaulting included;
    /// faults refused with SIGSEGV before that are not counted, as in
    /// Linux, whose arch code refuses them before `handle_mm_fault`.
    Pgfault,
    /// Major faults (`PGMAJFAULT`): faults whose file page had to be read
    /// in ([`FaultPage::major`](crate::vma::FaultPage), Linux
    /// `filemap_fault` doing the read). A file without a cache (the
    /// initramfs's) reads at every fault.
    Pgmajfault,
    /// Lazily freeable pages reclaim discarded, clean, instead of
    /// swapping them (`PGLAZYFREED`).
    Pglazyfreed,
    /// Pages reclaim scanned on the active lists (`PGREFILL`).
    Pgrefill,
    /// Write faults that made a present read-only page writable in place
    /// instead of copying it (`PGREUSE`, Linux `wp_page_reuse`): a private
    /// page only this mapping holds, or a page of a shared mapping.
    Pgreuse,
    /// Pages kswapd freed (`PGSTEAL_KSWAPD`).
    PgstealKswapd,
    /// Pages direct reclaim freed (`PGSTEAL_DIRECT`).
    PgstealDirect,
    /// Pages kswapd scanned on the inactive lists (`PGSCAN_KSWAPD`).
    PgscanKswapd,
    /// Pages direct reclaim scanned on the inactive lists
    /// (`PGSCAN_DIRECT`).
    PgscanDirect,
    /// Page-cache pages direct reclaim freed along with the inodes whose
    /// cache it dropped (`PGINODESTEAL`: the superblock shrinker's
    /// `prune_icache_sb`).
    Pginodesteal,
    /// Objects the slab shrinkers scanned (`SLABS_SCANNED`,
    /// [`crate::shrinker`]).
    SlabsScanned,
    /// `PGINODESTEAL`'s count for kswapd (`KSWAPD_INODESTEAL`).
    KswapdInodesteal,
    /// kswapd's balancing runs (`PAGEOUTRUN`).
    Pageoutrun,
    /// kswapd woken again during its short nap after balancing the node
    /// (`KSWAPD_LOW_WMARK_HIT_QUICKLY`, Linux `kswapd_try_to_sleep`).
    KswapdLowWmarkHitQuickly,
    /// The node below its high watermark again when kswapd's nap ended
    /// (`KSWAPD_HIGH_WMARK_HIT_QUICKLY`).
    KswapdHighWmarkHitQuickly,
    /// Page-cache drops through `drop_caches` (`DROP_PAGECACHE`), counted
    /// by the kernel's drop-caches command through
    /// [`PgData::count_vm_event`].
    DropPagecache,
    /// Slab drops through `drop_caches` (`DROP_SLAB`), likewise.
    DropSlab,
    /// Tasks the OOM killer killed (`OOM_KILL`), counted by the kernel's
    /// `out_of_memory` through [`PgData::count_vm_event`].
    OomKill,
    /// Pages moved by page migration (`PGMIGRATE_SUCCESS`,
    /// [`crate::migrate::migrate_pages`]).
    PgmigrateSuccess,
    /// Pages migration tried and left where they were (`PGMIGRATE_FAIL`):
    /// shared, pinned, or no longer movable. Pages no walked address space
    /// maps are skipped and not counted.
    PgmigrateFail,
    /// Pages the compaction migrate scanner looked at
    /// (`COMPACTMIGRATE_SCANNED`).
    CompactMigrateScanned,
    /// Pages the compaction free scanner looked at (`COMPACTFREE_SCANNED`).
    CompactFreeScanned,
    /// Pages compaction isolated, by either scanner (`COMPACTISOLATED`).
    CompactIsolated,
    /// Direct compactions that ran in an allocation's slow path, neither
    /// skipped nor deferred in every zone (`COMPACTSTALL`).
    CompactStall,
    /// Of those, the ones after which the allocation still failed
    /// (`COMPACTFAIL`).
    CompactFail,
    /// Of those, the ones after which the allocation succeeded
    /// (`COMPACTSUCCESS`).
    CompactSuccess,
    /// kcompactd runs (`KCOMPACTD_WAKE`).
    CompactDaemonWake,
    /// Pages kcompactd's migrate scanner looked at
    /// (`KCOMPACTD_MIGRATE_SCANNED`; counted in `compact_migrate_scanned`
    /// too).
    CompactDaemonMigrateScanned,
    /// Pages kcompactd's free scanner looked at (`KCOMPACTD_FREE_SCANNED`;
    /// counted in `compact_free_scanned` too).
    CompactDaemonFreeScanned,
    /// Pages reclaim found dirty whose writeback ended, moved to the cold
    /// end of the inactive list for the next scan (`PGROTATED`, Linux
    /// `folio_rotate_reclaimable`).
    Pgrotated,
    /// Pages moved to the unevictable list (`UNEVICTABLE_PGCULLED`):
    /// mlocked while on an evictable list, or found mlocked by reclaim.
    UnevictablePgsCulled,
    /// Pages moved off the unevictable list (`UNEVICTABLE_PGRESCUED`).
    UnevictablePgsRescued,
    /// Pages that got `PG_mlocked` (`UNEVICTABLE_PGMLOCKED`).
    UnevictablePgsMlocked,
    /// Pages that lost `PG_mlocked` through munlock or unmap
    /// (`UNEVICTABLE_PGMUNLOCKED`).
    UnevictablePgsMunlocked,
    /// Pages freed with `PG_mlocked` still set (`UNEVICTABLE_PGCLEARED`).
    UnevictablePgsCleared,
    /// Pages swap readahead read besides the faulting one (`SWAP_RA`,
    /// [`crate::swap_state::readahead`]).
    SwapRa,
    /// Faults that found a page swap readahead had read, its
    /// `PG_readahead` still set (`SWAP_RA_HIT`).
    SwapRaHit,
}

/// Number of [`VmEventItem`]s.
pub const NR_VM_EVENT_ITEMS: usize = 52;

impl VmEventItem {
    /// Every item, in /proc/vmstat order.
    pub const ALL: [VmEventItem; NR_VM_EVENT_ITEMS] = [
        VmEventItem::Pgpgin,
        VmEventItem::Pgpgout,
        VmEventItem::Pswpin,
        VmEventItem::Pswpout,
        VmEventItem::PgallocDma,
        VmEventItem::PgallocDma32,
        VmEventItem::PgallocNormal,
        VmEventItem::AllocstallDma,
        VmEventItem::AllocstallDma32,
        VmEventItem::AllocstallNormal,
        VmEventItem::AllocstallMovable,
        VmEventItem::Pgfree,
        VmEventItem::Pgactivate,
        VmEventItem::Pgdeactivate,
        VmEventItem::Pglazyfree,
        VmEventItem::Pgfault,
        VmEventItem::Pgmajfault,
        VmEventItem::Pglazyfreed,
        VmEventItem::Pgrefill,
        VmEventItem::Pgreuse,
        VmEventItem::Pgrotated,
        VmEventItem::PgstealKswapd,
        VmEventItem::PgstealDirect,
        VmEventItem::PgscanKswapd,
        VmEventItem::PgscanDirect,
        VmEventItem::Pginodesteal,
        VmEventItem::SlabsScanned,
        VmEventItem::KswapdInodesteal,
        VmEventItem::Pageoutrun,
        VmEventItem::KswapdLowWmarkHitQuickly,
        VmEventItem::KswapdHighWmarkHitQuickly,
        VmEventItem::DropPagecache,
        VmEventItem::DropSlab,
        VmEventItem::OomKill,
        VmEventItem::PgmigrateSuccess,
        VmEventItem::PgmigrateFail,
        VmEventItem::CompactMigrateScanned,
        VmEventItem::CompactFreeScanned,
        VmEventItem::CompactIsolated,
        VmEventItem::CompactStall,
        VmEventItem::CompactFail,
        VmEventItem::CompactSuccess,
        VmEventItem::CompactDaemonWake,
        VmEventItem::CompactDaemonMigrateScanned,
        VmEventItem::CompactDaemonFreeScanned,
        VmEventItem::UnevictablePgsCulled,
        VmEventItem::UnevictablePgsRescued,
        VmEventItem::UnevictablePgsMlocked,
        VmEventItem::UnevictablePgsMunlocked,
        VmEventItem::UnevictablePgsCleared,
        VmEventItem::SwapRa,
        VmEventItem::SwapRaHit,
    ];

    /// The /proc/vmstat name (Linux `vmstat_text`).
    pub const fn name(self) -> &'static str {
        match self {
            VmEventItem::Pgpgin => "pgpgin",
            VmEventItem::Pgpgout => "pgpgout",
            VmEventItem::Pswpin => "pswpin",
            VmEventItem::Pswpout => "pswpout",
            VmEventItem::PgallocDma => "pgalloc_dma",
            VmEventItem::PgallocDma32 => "pgalloc_dma32",
            VmEventItem::PgallocNormal => "pgalloc_normal",
            VmEventItem::AllocstallDma => "allocstall_dma",
            VmEventItem::AllocstallDma32 => "allocstall_dma32",
            VmEventItem::AllocstallNormal => "allocstall_normal",
            VmEventItem::AllocstallMovable => "allocstall_movable",
            VmEventItem::Pgfree => "pgfree",
            VmEventItem::Pgactivate => "pgactivate",
            VmEventItem::Pgdeactivate => "pgdeactivate",
            VmEventItem::Pglazyfree => "pglazyfree",
            VmEventItem::Pgrefill => "pgrefill",
            VmEventItem::PgstealKswapd => "pgsteal_kswapd",
            VmEventItem::PgstealDirect => "pgsteal_direct",
            VmEventItem::PgscanKswapd => "pgscan_kswapd",
            VmEventItem::PgscanDirect => "pgscan_direct",
            VmEventItem::Pginodesteal => "pginodesteal",
            VmEventItem::SlabsScanned => "slabs_scanned",
            VmEventItem::KswapdInodesteal => "kswapd_inodesteal",
            VmEventItem::Pageoutrun => "pageoutrun",
            VmEventItem::KswapdLowWmarkHitQuickly => "kswapd_low_wmark_hit_quickly",
            VmEventItem::KswapdHighWmarkHitQuickly => "kswapd_high_wmark_hit_quickly",
            VmEventItem::Pgfault => "pgfault",
            VmEventItem::Pgmajfault => "pgmajfault",
            VmEventItem::Pglazyfreed => "pglazyfreed",
            VmEventItem::Pgreuse => "pgreuse",
            VmEventItem::Pgrotated => "pgrotated",
            VmEventItem::DropPagecache => "drop_pagecache",
            VmEventItem::DropSlab => "drop_slab",
            VmEventItem::OomKill => "oom_kill",
            VmEventItem::PgmigrateSuccess => "pgmigrate_success",
            VmEventItem::PgmigrateFail => "pgmigrate_fail",
            VmEventItem::CompactMigrateScanned => "compact_migrate_scanned",
            VmEventItem::CompactFreeScanned => "compact_free_scanned",
            VmEventItem::CompactIsolated => "compact_isolated",
            VmEventItem::CompactStall => "compact_stall",
            VmEventItem::CompactFail => "compact_fail",
            VmEventItem::CompactSuccess => "compact_success",
            VmEventItem::CompactDaemonWake => "compact_daemon_wake",
            VmEventItem::CompactDaemonMigrateScanned => "compact_daemon_migrate_scanned",
            VmEventItem::CompactDaemonFreeScanned => "compact_daemon_free_scanned",
            VmEventItem::UnevictablePgsCulled => "unevictable_pgs_culled",
            VmEventItem::UnevictablePgsRescued => "unevictable_pgs_rescued",
            VmEventItem::UnevictablePgsMlocked => "unevictable_pgs_mlocked",
            VmEventItem::UnevictablePgsMunlocked => "unevictable_pgs_munlocked",
            VmEventItem::UnevictablePgsCleared => "unevictable_pgs_cleared",
            VmEventItem::SwapRa => "swap_ra",
            VmEventItem::SwapRaHit => "swap_ra_hit",
        }
    }
}

/// One CPU's event counts (Linux `struct vm_event_state`). All-zero
/// memory is a valid, empty state.
#[derive(Debug)]
pub struct VmEventState([AtomicU64; NR_VM_EVENT_ITEMS]);

impl Default for VmEventState {
    fn default() -> Self {
        Self::new()
    }
}

impl VmEventState {
    /// All counts zero.
    pub const fn new() -> Self {
        VmEventState([const { AtomicU64::new(0) }; NR_VM_EVENT_ITEMS])
    }

    /// Adds `n` to `item` (Linux `__count_vm_events`). Only the owning CPU
    /// writes its state; the atomic keeps interrupt handlers on it exact.
    pub(crate) fn add(&self, item: VmEventItem, n: u64) {
        self.0[item as usize].fetch_add(n, Relaxed);
    }

    /// The count of `item` on this CPU.
    pub fn get(&self, item: VmEventItem) -> u64 {
        self.0[item as usize].load(Relaxed)
    }
}

/// The node state we keep (Linux `enum node_stat_item`, the part our kernel
/// has the mechanisms for), in Linux's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[doc(alias = "node_stat_item")]
pub enum NodeStatItem {
    /// Pages on the inactive anonymous LRU list (`NR_INACTIVE_ANON`,
    /// [`crate::swap`]): anonymous and shmem pages.
    NrInactiveAnon,
    /// Pages on the active anonymous LRU list (`NR_ACTIVE_ANON`).
    NrActiveAnon,
    /// Pages on the inactive file LRU list (`NR_INACTIVE_FILE`).
    NrInactiveFile,
    /// Pages on the active file LRU list (`NR_ACTIVE_FILE`).
    NrActiveFile,
    /// Pages on the unevictable LRU list (`NR_UNEVICTABLE`).
    NrUnevictable,
    /// Bytes of slab pages of caches created with `SLAB_RECLAIM_ACCOUNT`
    /// (`NR_SLAB_RECLAIMABLE_B`).
    NrSlabReclaimableB,
    /// Bytes of the other slab pages, and of kmalloc_large blocks, which
    /// Linux counts here too (`NR_SLAB_UNRECLAIMABLE_B`).
    NrSlabUnreclaimableB,
    /// Anonymous pages added back where a shadow entry said they had
    /// been evicted (`WORKINGSET_REFAULT_ANON`, [`crate::workingset`]):
    /// 0 until swap evicts anonymous pages.
    WorkingsetRefaultAnon,
    /// File pages added back to a page cache at an index holding their
    /// shadow entry (`WORKINGSET_REFAULT_FILE`).
    WorkingsetRefaultFile,
    /// Refaulted anonymous pages activated at once (`WORKINGSET_ACTIVATE_ANON`).
    WorkingsetActivateAnon,
    /// Refaulted file pages activated at once, their refault distance
    /// within the workingset (`WORKINGSET_ACTIVATE_FILE`).
    WorkingsetActivateFile,
    /// Refaulted anonymous pages that were `PG_workingset` when evicted
    /// (`WORKINGSET_RESTORE_ANON`).
    WorkingsetRestoreAnon,
    /// Activated refaulted file pages that were `PG_workingset` when
    /// evicted: the workingset itself thrashing (`WORKINGSET_RESTORE_FILE`).
    WorkingsetRestoreFile,
    /// Anonymous pages mapped by at least one user pte (`NR_ANON_MAPPED`):
    /// up when an anonymous page gets its first mapping, down when its last
    /// goes; a mapped file copy that becomes anonymous moves from
    /// [`NodeStatItem::NrFileMapped`] to here.
    NrAnonMapped,
    /// File pages mapped by at least one user pte (`NR_FILE_MAPPED`).
    NrFileMapped,
    /// Pages in a page cache, shmem's included (`NR_FILE_PAGES`).
    NrFilePages,
    /// Page-cache pages with `PG_dirty` (`NR_FILE_DIRTY`).
    NrFileDirty,
    /// Pages under writeback (`NR_WRITEBACK`).
    NrWriteback,
    /// Pages of shmem and tmpfs files (`NR_SHMEM`).
    NrShmem,
    /// KiB of kernel task stacks (`NR_KERNEL_STACK_KB`), counted by the
    /// kernel, which allocates them.
    NrKernelStackKb,
    /// Page-table pages of every tree, kernel and user, root included
    /// (`NR_PAGETABLE`).
    NrPagetable,
    /// Page-cache pages ever dirtied (`NR_DIRTIED`, only counts up).
    NrDirtied,
    /// Pages ever written back (`NR_WRITTEN`, only counts up).
    NrWritten,
    /// Pages with `PG_mlocked` (`NR_MLOCK`, "Mlocked" in /proc/meminfo;
    /// a zone counter in Linux, printed with the zone items, kept per
    /// node here: one node).
    NrMlock,
    /// Pages in the swap cache (`NR_SWAPCACHE`, "SwapCached" in
    /// /proc/meminfo; [`crate::swap_state`]).
    NrSwapcache,
}

/// Number of [`NodeStatItem`]s.
pub const NR_VM_NODE_STAT_ITEMS: usize = 25;

impl NodeStatItem {
    /// Every item, in /proc/vmstat order.
    pub const ALL: [NodeStatItem; NR_VM_NODE_STAT_ITEMS] = [
        NodeStatItem::NrInactiveAnon,
        NodeStatItem::NrActiveAnon,
        NodeStatItem::NrInactiveFile,
        NodeStatItem::NrActiveFile,
        NodeStatItem::NrUnevictable,
        NodeStatItem::NrSlabReclaimableB,
        NodeStatItem::NrSlabUnreclaimableB,
        NodeStatItem::WorkingsetRefaultAnon,
        NodeStatItem::WorkingsetRefaultFile,
        NodeStatItem::WorkingsetActivateAnon,
        NodeStatItem::WorkingsetActivateFile,
        NodeStatItem::WorkingsetRestoreAnon,
        NodeStatItem::WorkingsetRestoreFile,
        NodeStatItem::NrAnonMapped,
        NodeStatItem::NrFileMapped,
        NodeStatItem::NrFilePages,
        NodeStatItem::NrFileDirty,
        NodeStatItem::NrWriteback,
        NodeStatItem::NrShmem,
        NodeStatItem::NrKernelStackKb,
        NodeStatItem::NrPagetable,
        NodeStatItem::NrDirtied,
        NodeStatItem::NrWritten,
        NodeStatItem::NrMlock,
        NodeStatItem::NrSwapcache,
    ];

    /// The /proc/vmstat name (Linux `vmstat_text`; byte items lose their
    /// `_B` there, being shown in pages).
    pub const fn name(self) -> &'static str {
        match self {
            NodeStatItem::NrInactiveAnon => "nr_inactive_anon",
            NodeStatItem::NrActiveAnon => "nr_active_anon",
            NodeStatItem::NrInactiveFile => "nr_inactive_file",
            NodeStatItem::NrActiveFile => "nr_active_file",
            NodeStatItem::NrUnevictable => "nr_unevictable",
            NodeStatItem::NrSlabReclaimableB => "nr_slab_reclaimable",
            NodeStatItem::NrSlabUnreclaimableB => "nr_slab_unreclaimable",
            NodeStatItem::WorkingsetRefaultAnon => "workingset_refault_anon",
            NodeStatItem::WorkingsetRefaultFile => "workingset_refault_file",
            NodeStatItem::WorkingsetActivateAnon => "workingset_activate_anon",
            NodeStatItem::WorkingsetActivateFile => "workingset_activate_file",
            NodeStatItem::WorkingsetRestoreAnon => "workingset_restore_anon",
            NodeStatItem::WorkingsetRestoreFile => "workingset_restore_file",
            NodeStatItem::NrAnonMapped => "nr_anon_pages",
            NodeStatItem::NrFileMapped => "nr_mapped",
            NodeStatItem::NrFilePages => "nr_file_pages",
            NodeStatItem::NrFileDirty => "nr_dirty",
            NodeStatItem::NrWriteback => "nr_writeback",
            NodeStatItem::NrShmem => "nr_shmem",
            NodeStatItem::NrKernelStackKb => "nr_kernel_stack",
            NodeStatItem::NrPagetable => "nr_page_table_pages",
            NodeStatItem::NrDirtied => "nr_dirtied",
            NodeStatItem::NrWritten => "nr_written",
            NodeStatItem::NrMlock => "nr_mlock",
            NodeStatItem::NrSwapcache => "nr_swapcached",
        }
    }

    /// Whether the item counts bytes (Linux `vmstat_item_in_bytes`).
    pub const fn in_bytes(self) -> bool {
        matches!(self, NodeStatItem::NrSlabReclaimableB | NodeStatItem::NrSlabUnreclaimableB)
    }
}

/// One CPU's share of the node state (Linux `struct per_cpu_nodestat`'s
/// `vm_node_stat_diff`, never folded: see the module documentation).
/// All-zero memory is a valid, empty state.
#[derive(Debug, Default)]
#[doc(alias = "per_cpu_nodestat")]
pub struct PerCpuNodeStat([AtomicI64; NR_VM_NODE_STAT_ITEMS]);

impl PerCpuNodeStat {
    /// All counts zero.
    pub const fn new() -> Self {
        PerCpuNodeStat([const { AtomicI64::new(0) }; NR_VM_NODE_STAT_ITEMS])
    }

    /// Adds `delta` to `item` (Linux `__mod_node_page_state`, without the
    /// fold).
    pub(crate) fn add(&self, item: NodeStatItem, delta: i64) {
        self.0[item as usize].fetch_add(delta, Relaxed);
    }

    /// This CPU's share of `item`; negative when more went away on this
    /// CPU than came on it.
    pub fn get(&self, item: NodeStatItem) -> i64 {
        self.0[item as usize].load(Relaxed)
    }
}

/// /proc/vmstat: the zone counter we have (free pages), the node state
/// summed over CPUs (byte items in pages), then the events summed over
/// CPUs, one `name value` line each.
pub struct Vmstat<'p, 'a>(pub &'p PgData<'a>);

impl fmt::Display for Vmstat<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "nr_free_pages {}", self.0.nr_free_pages())?;
        for item in NodeStatItem::ALL {
            writeln!(f, "{} {}", item.name(), self.0.node_page_state_pages(item))?;
        }
        for item in VmEventItem::ALL {
            writeln!(f, "{} {}", item.name(), self.0.all_vm_events(item))?;
        }
        Ok(())
    }
}

/// /proc/zoneinfo (Linux `zoneinfo_show_print`): every zone, empty ones
/// included (Linux prints them so that `lowmem_reserve_ratio`'s effect is
/// visible). The node state appears once, under the first populated zone;
/// a populated zone adds its free-page counter, its per-cpu lists per CPU
/// and its start pfn.
///
/// The fields we have, in Linux's layout: watermark boost and CMA pages are
/// 0 (neither mechanism exists); `node_unreclaimable` is 1 once kswapd
/// failed `MAX_RECLAIM_RETRIES` runs in a row; `vm stats threshold` is 0 (counters are never folded; see the
/// module documentation). Left out: the `promo` watermark (no memory
/// tiering), zone counters other than `nr_free_pages` (the LRU is per
/// node, in the per-node stats; no mlock
/// accounting, bounce buffers, zsmalloc or CMA), NUMA counters (one node),
/// and the pagesets' `high_min`/`high_max` (our `high` is fixed, and shared
/// by every CPU of the zone).
pub struct Zoneinfo<'p, 'a>(pub &'p PgData<'a>);

impl fmt::Display for Zoneinfo<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pgdat = self.0;
        let first_populated = pgdat.zones().iter().position(|z| z.present_pages() > 0);
        for (index, zone) in pgdat.zones().iter().enumerate() {
            write!(f, "Node 0, zone {:>8}", zone.name())?;
            if first_populated == Some(index) {
                f.write_str("\n  per-node stats")?;
                for item in NodeStatItem::ALL {
                    write!(f, "\n      {:<12} {}", item.name(), pgdat.node_page_state_pages(item))?;
                }
            }
            write!(f, "\n  pages free     {}", zone.free_pages())?;
            f.write_str("\n        boost    0")?;
            write!(f, "\n        min      {}", zone.watermark(Watermark::Min))?;
            write!(f, "\n        low      {}", zone.watermark(Watermark::Low))?;
            write!(f, "\n        high     {}", zone.watermark(Watermark::High))?;
            write!(f, "\n        spanned  {}", zone.spanned_pages())?;
            write!(f, "\n        present  {}", zone.present_pages())?;
            write!(f, "\n        managed  {}", zone.managed_pages())?;
            f.write_str("\n        cma      0")?;
            f.write_str("\n        protection: (")?;
            for (i, upper) in crate::mmzone::ZoneType::ALL.into_iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                write!(f, "{sep}{}", zone.lowmem_reserve(upper))?;
            }
            f.write_str(")")?;
            if zone.present_pages() == 0 {
                writeln!(f)?;
                continue;
            }
            write!(f, "\n      {:<12} {}", "nr_free_pages", zone.free_pages())?;
            f.write_str("\n  pagesets")?;
            let (high, batch) = zone.pcp_high_batch();
            for cpu in 0..pgdat.nr_cpus() as usize {
                write!(f, "\n    cpu: {cpu}")?;
                write!(f, "\n              count:    {}", pgdat.pcp_count(zone.zone_type(), cpu))?;
                write!(f, "\n              high:     {high}")?;
                write!(f, "\n              batch:    {batch}")?;
                f.write_str("\n  vm stats threshold: 0")?;
            }
            write!(f, "\n  node_unreclaimable:  {}", u8::from(crate::vmscan::pgdat_unreclaimable(pgdat)))?;
            writeln!(f, "\n  start_pfn:           {}", zone.start_pfn())?;
        }
        Ok(())
    }
}

/// /proc/buddyinfo: free blocks per order per zone.
pub struct Buddyinfo<'p, 'a>(pub &'p PgData<'a>);

impl fmt::Display for Buddyinfo<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for zone in self.0.zones().iter().filter(|z| z.present_pages() > 0) {
            let counts = self.0.free_counts(zone.zone_type());
            write!(f, "Node 0, zone {:>8} ", zone.name())?;
            for order in 0..NR_PAGE_ORDERS {
                write!(f, "{:>6} ", counts.nr_free(order))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// /proc/pagetypeinfo: free blocks per order per migratetype, and
/// pageblocks per migratetype, per zone.
pub struct Pagetypeinfo<'p, 'a>(pub &'p PgData<'a>);

impl fmt::Display for Pagetypeinfo<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pgdat = self.0;
        writeln!(f, "Page block order: {PAGEBLOCK_ORDER}")?;
        writeln!(f, "Pages per block:  {PAGEBLOCK_NR_PAGES}")?;
        writeln!(f)?;
        write!(f, "{:<43} ", "Free pages count per migrate type at order")?;
        for order in 0..NR_PAGE_ORDERS {
            write!(f, "{order:>6} ")?;
        }
        writeln!(f)?;
        let zones = || pgdat.zones().iter().filter(|z| z.present_pages() > 0);
        for zone in zones() {
            let counts = self.0.free_counts(zone.zone_type());
            for mt in MigrateType::ALL {
                write!(f, "Node {:>4}, zone {:>8}, type {:>12} ", 0, zone.name(), mt.name())?;
                for per_type in &counts.blocks {
                    write!(f, "{:>6} ", per_type[mt as usize])?;
                }
                writeln!(f)?;
            }
        }
        writeln!(f)?;
        write!(f, "{:<23}", "Number of blocks type ")?;
        for mt in MigrateType::ALL {
            write!(f, "{:>12} ", mt.name())?;
        }
        writeln!(f)?;
        for zone in zones() {
            let mut blocks = [0u64; MIGRATE_TYPES];
            let start = zone.start_pfn() & !(PAGEBLOCK_NR_PAGES - 1);
            let end = zone.start_pfn() + zone.spanned_pages();
            let mut pfn = start;
            while pfn < end {
                let mt = pgdat.mem_map().pageblock_migratetype(crate::addr::Pfn::new(pfn));
                blocks[mt as usize] += 1;
                pfn += PAGEBLOCK_NR_PAGES;
            }
            write!(f, "Node {}, zone {:>8} ", 0, zone.name())?;
            for count in blocks {
                write!(f, "{count:>12} ")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// One zone's free lists as Linux's `show_free_areas` prints them on an
/// allocation failure: `Node 0 DMA32: 3*4kB (UM) 1*8kB (M) ... = 20kB`.
pub struct ShowFreeAreas<'c> {
    /// The zone's name.
    pub zone: &'static str,
    /// Its free blocks.
    pub counts: &'c FreeCounts,
}

impl fmt::Display for ShowFreeAreas<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const TYPE_LETTERS: [char; MIGRATE_TYPES] = ['U', 'M', 'E', 'H', 'I'];
        write!(f, "Node 0 {}: ", self.zone)?;
        for order in 0..NR_PAGE_ORDERS {
            let kb = (crate::addr::PAGE_SIZE >> 10) << order;
            write!(f, "{}*{}kB ", self.counts.nr_free(order), kb)?;
            if self.counts.nr_free(order) > 0 {
                f.write_str("(")?;
                for (mt, letter) in TYPE_LETTERS.iter().enumerate() {
                    if self.counts.blocks[order][mt] > 0 {
                        write!(f, "{letter}")?;
                    }
                }
                f.write_str(") ")?;
            }
        }
        write!(f, "= {}kB", self.counts.pages() * (crate::addr::PAGE_SIZE >> 10))
    }
}

#[cfg(test)]
mod tests;
