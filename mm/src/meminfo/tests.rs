//! Host tests of the /proc/meminfo text and `si_mem_available`.

use super::*;
use crate::addr::PAGE_SIZE;
use crate::gfp::{GFP_KERNEL, Gfp};
use crate::mmzone::ZoneType;
use crate::sim::{SIM_PERCPU, Sim};
use crate::slab_common::{Slab, SlubDebug};
use crate::slub::SlabFlags;

const MIB: u64 = 1 << 20;

const KERNEL: MeminfoKernel = MeminfoKernel {
    vmalloc_total: 32 << 40,
    vmalloc_used_pages: 3,
    percpu_pages: 32,
    swap_total_pages: 4095,
    swap_free_pages: 4000,
};

fn meminfo(pgdat: &PgData<'_>) -> String {
    Meminfo { pgdat, kernel: KERNEL }.to_string()
}

/// The value of a meminfo line, in KiB.
fn kb(text: &str, name: &str) -> u64 {
    let line = text.lines().find(|l| l.starts_with(&format!("{name}:"))).unwrap_or_else(|| panic!("no {name}"));
    line[16..line.len() - 3].trim().parse().unwrap()
}

#[test]
fn meminfo_lines_follow_show_val_kb_in_linux_order() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(1);
    pgdat.mod_node_page_state(NodeStatItem::NrAnonMapped, 5);
    pgdat.mod_node_page_state(NodeStatItem::NrKernelStackKb, 192);
    pgdat.mod_node_page_state(NodeStatItem::NrFilePages, 3);
    pgdat.mod_node_page_state(NodeStatItem::NrFileDirty, 2);
    let text = meminfo(&pgdat);
    let names: Vec<&str> = text.lines().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "MemTotal",
            "MemFree",
            "MemAvailable",
            "Buffers",
            "Cached",
            "SwapCached",
            "Active",
            "Inactive",
            "Active(anon)",
            "Inactive(anon)",
            "Active(file)",
            "Inactive(file)",
            "Unevictable",
            "Mlocked",
            "SwapTotal",
            "SwapFree",
            "Dirty",
            "Writeback",
            "AnonPages",
            "Mapped",
            "Shmem",
            "KReclaimable",
            "Slab",
            "SReclaimable",
            "SUnreclaim",
            "KernelStack",
            "PageTables",
            "CommitLimit",
            "Committed_AS",
            "VmallocTotal",
            "VmallocUsed",
            "VmallocChunk",
            "Percpu",
        ]
    );
    // Name and colon in 16 columns, value right-aligned in 8, " kB".
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "MemTotal:          65536 kB", "64 MiB, nothing reserved");
    assert_eq!(lines[3], "Buffers:               0 kB");
    assert_eq!(lines[4], "Cached:               12 kB", "every page-cache page");
    assert_eq!(lines[14], "SwapTotal:         16380 kB", "the kernel's swap areas");
    assert_eq!(lines[15], "SwapFree:          16000 kB");
    assert_eq!(lines[16], "Dirty:                 8 kB");
    assert_eq!(lines[18], "AnonPages:            20 kB");
    assert_eq!(lines[25], "KernelStack:         192 kB", "kept in KiB, not converted");
    // Half of RAM (no swap area is registered with the node).
    assert_eq!(lines[27], "CommitLimit:       32768 kB");
    assert_eq!(lines[28], "Committed_AS:          0 kB");
    assert_eq!(lines[29], "VmallocTotal:   34359738368 kB", "a wide value widens the line");
    assert_eq!(lines[30], "VmallocUsed:          12 kB");
    assert_eq!(lines[32], "Percpu:              128 kB");
    assert_eq!(kb(&text, "MemFree"), pgdat.nr_free_pages() * 4);
    assert!(text.ends_with(" kB\n"));
    pgdat.overcommit().vm_acct_memory(5);
    assert_eq!(kb(&meminfo(&pgdat), "Committed_AS"), 20);
    pgdat.overcommit().vm_unacct_memory(5);
}

#[test]
fn mem_available_is_free_minus_the_reserve_and_never_negative() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(1);
    // Linux `calculate_totalreserve_pages`, by hand.
    let reserve: u64 = ZoneType::ALL
        .iter()
        .map(|&z| {
            let zone = pgdat.zone(z);
            let max = ZoneType::ALL.iter().map(|&u| zone.lowmem_reserve(u)).max().unwrap();
            (zone.watermark(Watermark::High) + max).min(zone.managed_pages())
        })
        .sum();
    assert!(reserve > 0);
    assert_eq!(pgdat.totalreserve_pages(), reserve);
    assert_eq!(si_mem_available(&pgdat), pgdat.nr_free_pages() - reserve);
    assert_eq!(kb(&meminfo(&pgdat), "MemAvailable"), (pgdat.nr_free_pages() - reserve) * 4);
    // Allocations stop near the min watermark, below the reserve.
    let mut hoard = Vec::new();
    while let Some(pfn) = pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0) {
        hoard.push(pfn);
    }
    assert!(pgdat.nr_free_pages() < reserve);
    assert_eq!(si_mem_available(&pgdat), 0);
    assert!(meminfo(&pgdat).contains("\nMemAvailable:          0 kB\n"));
    for pfn in hoard {
        // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
        unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
    }
}

#[test]
fn slab_lines_split_reclaimable_from_unreclaimable_and_feed_mem_available() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(1);
    let slab = Slab::new(&pgdat, 1, &SIM_PERCPU, SlubDebug::default(), false).unwrap();
    let cache = slab.kmem_cache_create("reclaimable", 64, 8, SlabFlags::RECLAIM_ACCOUNT, None).unwrap();
    let text = meminfo(&pgdat);
    let unreclaimable = kb(&text, "SUnreclaim");
    assert!(unreclaimable > 0, "the kmalloc caches' first slabs");
    assert_eq!((kb(&text, "SReclaimable"), kb(&text, "KReclaimable")), (0, 0));
    let obj = slab.kmem_cache_alloc(&cache, GFP_KERNEL).unwrap();
    let slab_kb = (PAGE_SIZE << cache.order()) / 1024;
    let text = meminfo(&pgdat);
    assert_eq!((kb(&text, "SReclaimable"), kb(&text, "KReclaimable")), (slab_kb, slab_kb));
    assert_eq!(kb(&text, "SUnreclaim"), unreclaimable);
    assert_eq!(kb(&text, "Slab"), unreclaimable + slab_kb);
    // Half of a small reclaimable slab counts as available: what stays is
    // half of it, being less than the zones' low watermarks.
    let slab_pages = 1u64 << cache.order();
    let wmark_low: u64 = pgdat.zones().iter().map(|z| z.watermark(Watermark::Low)).sum();
    assert!(slab_pages / 2 < wmark_low);
    let free_part = pgdat.nr_free_pages() - pgdat.totalreserve_pages();
    assert_eq!(si_mem_available(&pgdat), free_part + slab_pages - slab_pages / 2);
    assert_eq!(kb(&text, "MemAvailable"), (free_part + slab_pages - slab_pages / 2) * 4);
    // SAFETY: allocated above from this cache, freed once.
    unsafe { slab.kmem_cache_free(&cache, obj) }.unwrap();
    assert_eq!(slab.kmem_cache_shrink(&cache), 1);
    assert_eq!(kb(&meminfo(&pgdat), "SReclaimable"), 0);
    assert!(slab.kmem_cache_destroy(cache).is_ok());
}
