//! /proc/meminfo (Linux `fs/proc/meminfo.c` `meminfo_proc_show`, and
//! `mm/show_mem.c` `si_mem_available` for `MemAvailable`).
//!
//! [`Meminfo`] prints, in Linux's order and layout, the fields this kernel
//! can fill truthfully. Each line is Linux's `show_val_kb`: the name and
//! its colon left-aligned in 16 columns, the value in KiB right-aligned in
//! 8 (wider values just widen the line), then ` kB`.
//!
//! Where the numbers come from:
//! - `MemTotal`, `MemFree`: the buddy allocator's managed and free pages
//!   (`totalram_pages`, `NR_FREE_PAGES`; pages on per-cpu lists are not
//!   free, as in Linux).
//! - `MemAvailable`: [`si_mem_available`].
//! - `Cached`, `Dirty`, `Writeback`, `AnonPages`, `Mapped`, `Shmem`,
//!   `Slab`/`SReclaimable`/`SUnreclaim`, `KReclaimable`, `KernelStack`,
//!   `PageTables`: the node state counters of [`crate::vmstat`] (`Cached`
//!   includes shmem's pages, as Linux's does). `KReclaimable` is the reclaimable slab alone:
//!   no other kernel memory is reclaimable (`NR_KERNEL_MISC_RECLAIMABLE`).
//! - `VmallocTotal`, `VmallocUsed`, `Percpu`: mm does not own the kernel's
//!   vmalloc window or per-CPU allocator, so the kernel passes them in
//!   [`MeminfoKernel`].
//! - `SwapTotal`, `SwapFree`: the kernel's swap areas (Linux
//!   `si_swapinfo`), also passed in [`MeminfoKernel`].
//! - `CommitLimit`, `Committed_AS`: [`crate::overcommit`]'s
//!   `vm_commit_limit` (over `totalram_pages` and the swap areas open to
//!   allocation, `total_swap_pages`) and committed total.
//!
//! Zero by construction, and why: `Buffers` (no buffer cache pages of
//! block devices) and `SwapCached`, because there is no swap cache yet;
//! `VmallocChunk`, which Linux also prints as 0 since 4.20 (it was the
//! largest free vmalloc range before).
//!
//! - `Active`, `Inactive`, their `(anon)`/`(file)` halves and
//!   `Unevictable`: the LRU lists' counters ([`crate::swap`]);
//!   `Mlocked`: pages with `PG_mlocked` (`NR_MLOCK`).
//!
//! Left out: hugetlb, THP and `DirectMap` lines.

// Its tests free pages they allocated (an unsafe call); the module
// itself has no reason for unsafe.
#![cfg_attr(not(test), forbid(unsafe_code))]

use core::fmt;

use crate::addr::PAGE_SHIFT;
use crate::mmzone::Watermark;
use crate::page_alloc::PgData;
use crate::vmstat::NodeStatItem;

/// What /proc/meminfo shows that only the kernel knows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MeminfoKernel {
    /// Bytes of the vmalloc window (Linux `VMALLOC_TOTAL`).
    pub vmalloc_total: u64,
    /// Pages vmalloc holds in live areas (Linux `vmalloc_nr_pages()`).
    pub vmalloc_used_pages: u64,
    /// Pages of per-CPU memory, every unit of every chunk (Linux
    /// `pcpu_nr_pages()`).
    pub percpu_pages: u64,
    /// Pages of the swap areas in use (Linux `si_swapinfo`'s
    /// `totalswap`: `total_swap_pages` plus the used pages of areas being
    /// swapped off).
    pub swap_total_pages: u64,
    /// Of those, the free ones (`freeswap`: `nr_swap_pages` plus the same).
    pub swap_free_pages: u64,
}

/// /proc/meminfo of a node and the kernel's figures.
pub struct Meminfo<'p, 'a> {
    /// The node.
    pub pgdat: &'p PgData<'a>,
    /// What the kernel adds.
    pub kernel: MeminfoKernel,
}

/// Linux `si_mem_available`: an estimate of the pages user allocations can
/// get without swapping: free pages minus what the allocator keeps back
/// ([`PgData::totalreserve_pages`]), plus the part of reclaimable memory
/// reclaim could free: all of it but half, or but the zones' summed low
/// watermarks if that is less. Reclaimable memory is the page cache (none
/// here) and reclaimable slab. Never negative.
pub fn si_mem_available(pgdat: &PgData<'_>) -> u64 {
    let wmark_low: u64 = pgdat.zones().iter().map(|z| z.watermark(Watermark::Low)).sum();
    let mut available = pgdat.nr_free_pages() as i64 - pgdat.totalreserve_pages() as i64;
    let reclaimable = pgdat.node_page_state_pages(NodeStatItem::NrSlabReclaimableB);
    available += (reclaimable - (reclaimable / 2).min(wmark_low)) as i64;
    available.max(0) as u64
}

/// Linux `show_val_kb`'s layout for a value already in KiB.
fn show_kb(f: &mut fmt::Formatter<'_>, name: &str, kb: u64) -> fmt::Result {
    writeln!(f, "{name}:{:pad$}{kb:>8} kB", "", pad = 15usize.saturating_sub(name.len()))
}

/// Linux `show_val_kb`: a value in pages, shown in KiB.
fn show_val_kb(f: &mut fmt::Formatter<'_>, name: &str, pages: u64) -> fmt::Result {
    show_kb(f, name, pages << (PAGE_SHIFT - 10))
}

impl fmt::Display for Meminfo<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pgdat = self.pgdat;
        let state = |item| pgdat.node_page_state_pages(item);
        let sreclaimable = state(NodeStatItem::NrSlabReclaimableB);
        let sunreclaim = state(NodeStatItem::NrSlabUnreclaimableB);
        show_val_kb(f, "MemTotal", pgdat.totalram_pages())?;
        show_val_kb(f, "MemFree", pgdat.nr_free_pages())?;
        show_val_kb(f, "MemAvailable", si_mem_available(pgdat))?;
        show_val_kb(f, "Buffers", 0)?;
        show_val_kb(f, "Cached", state(NodeStatItem::NrFilePages))?;
        show_val_kb(f, "SwapCached", state(NodeStatItem::NrSwapcache))?;
        let (ia, aa) = (state(NodeStatItem::NrInactiveAnon), state(NodeStatItem::NrActiveAnon));
        let (i_f, af) = (state(NodeStatItem::NrInactiveFile), state(NodeStatItem::NrActiveFile));
        show_val_kb(f, "Active", aa + af)?;
        show_val_kb(f, "Inactive", ia + i_f)?;
        show_val_kb(f, "Active(anon)", aa)?;
        show_val_kb(f, "Inactive(anon)", ia)?;
        show_val_kb(f, "Active(file)", af)?;
        show_val_kb(f, "Inactive(file)", i_f)?;
        show_val_kb(f, "Unevictable", state(NodeStatItem::NrUnevictable))?;
        show_val_kb(f, "Mlocked", state(NodeStatItem::NrMlock))?;
        show_val_kb(f, "SwapTotal", self.kernel.swap_total_pages)?;
        show_val_kb(f, "SwapFree", self.kernel.swap_free_pages)?;
        show_val_kb(f, "Dirty", state(NodeStatItem::NrFileDirty))?;
        show_val_kb(f, "Writeback", state(NodeStatItem::NrWriteback))?;
        show_val_kb(f, "AnonPages", state(NodeStatItem::NrAnonMapped))?;
        show_val_kb(f, "Mapped", state(NodeStatItem::NrFileMapped))?;
        show_val_kb(f, "Shmem", state(NodeStatItem::NrShmem))?;
        show_val_kb(f, "KReclaimable", sreclaimable)?;
        show_val_kb(f, "Slab", sreclaimable + sunreclaim)?;
        show_val_kb(f, "SReclaimable", sreclaimable)?;
        show_val_kb(f, "SUnreclaim", sunreclaim)?;
        show_kb(f, "KernelStack", state(NodeStatItem::NrKernelStackKb))?;
        show_val_kb(f, "PageTables", state(NodeStatItem::NrPagetable))?;
        show_val_kb(f, "CommitLimit", pgdat.vm_commit_limit())?;
        show_val_kb(f, "Committed_AS", pgdat.overcommit().committed_as())?;
        show_kb(f, "VmallocTotal", self.kernel.vmalloc_total >> 10)?;
        show_val_kb(f, "VmallocUsed", self.kernel.vmalloc_used_pages)?;
        show_val_kb(f, "VmallocChunk", 0)?;
        show_val_kb(f, "Percpu", self.kernel.percpu_pages)
    }
}

#[cfg(test)]
mod tests;
