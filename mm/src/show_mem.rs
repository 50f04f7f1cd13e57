//! The memory report of an OOM kill (Linux `mm/show_mem.c`'s
//! `__show_mem` -> `show_free_areas`, printed under "Mem-Info:").
//!
//! The lines are Linux's with the counters we have: the node-wide
//! summary in pages, the node line and one line per populated zone in
//! KiB (free, watermarks, present, managed, per-cpu lists), each zone's
//! free lists by order (the line [`ShowFreeAreas`] also prints for an
//! allocation failure), then the page-cache total and the RAM counts.
//!
//! Differences from Linux: the `active_*`, `inactive_*`, `isolated_*`
//! and `unevictable` counts are not printed yet (`/proc/meminfo` and
//! `/proc/vmstat` have the LRU's); no `bounce`,
//! `sec_pagetables`, CMA or `all_unreclaimable?`.

// Its test frees the page it allocated (an unsafe call).
#![cfg_attr(not(test), forbid(unsafe_code))]

use core::fmt;

use crate::addr::PAGE_SIZE;
use crate::mmzone::Watermark;
use crate::page_alloc::PgData;
use crate::vmstat::{NodeStatItem, ShowFreeAreas};

/// Linux `__show_mem`'s report, for [`fmt::Display`].
pub struct ShowMem<'p, 'a>(pub &'p PgData<'a>);

/// Pages to KiB.
fn kb(pages: u64) -> u64 {
    pages.saturating_mul(PAGE_SIZE >> 10)
}

impl fmt::Display for ShowMem<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pgdat = self.0;
        let node = |item| pgdat.node_page_state_pages(item);
        let zones = pgdat.zones().iter().filter(|z| z.present_pages() > 0);
        let free_pcp: u64 = zones
            .clone()
            .map(|zone| (0..pgdat.nr_cpus() as usize).map(|cpu| pgdat.pcp_count(zone.zone_type(), cpu)).sum::<u64>())
            .sum();
        writeln!(f, "Mem-Info:")?;
        writeln!(
            f,
            "anon_mapped:{} file:{} dirty:{} writeback:{}",
            node(NodeStatItem::NrAnonMapped),
            node(NodeStatItem::NrFilePages),
            node(NodeStatItem::NrFileDirty),
            node(NodeStatItem::NrWriteback)
        )?;
        writeln!(
            f,
            " slab_reclaimable:{} slab_unreclaimable:{}",
            node(NodeStatItem::NrSlabReclaimableB),
            node(NodeStatItem::NrSlabUnreclaimableB)
        )?;
        writeln!(
            f,
            " mapped:{} shmem:{} pagetables:{}",
            node(NodeStatItem::NrFileMapped),
            node(NodeStatItem::NrShmem),
            node(NodeStatItem::NrPagetable)
        )?;
        writeln!(f, " free:{} free_pcp:{} free_cma:0", pgdat.nr_free_pages(), free_pcp)?;
        writeln!(
            f,
            "Node 0 anon:{}kB file:{}kB mapped:{}kB dirty:{}kB writeback:{}kB shmem:{}kB kernel_stack:{}kB pagetables:{}kB",
            kb(node(NodeStatItem::NrAnonMapped)),
            kb(node(NodeStatItem::NrFilePages)),
            kb(node(NodeStatItem::NrFileMapped)),
            kb(node(NodeStatItem::NrFileDirty)),
            kb(node(NodeStatItem::NrWriteback)),
            kb(node(NodeStatItem::NrShmem)),
            pgdat.node_page_state(NodeStatItem::NrKernelStackKb),
            kb(node(NodeStatItem::NrPagetable))
        )?;
        for zone in zones.clone() {
            let pcp: u64 = (0..pgdat.nr_cpus() as usize).map(|cpu| pgdat.pcp_count(zone.zone_type(), cpu)).sum();
            writeln!(
                f,
                "Node 0 {} free:{}kB boost:0kB min:{}kB low:{}kB high:{}kB present:{}kB managed:{}kB free_pcp:{}kB",
                zone.name(),
                kb(zone.free_pages()),
                kb(zone.watermark(Watermark::Min)),
                kb(zone.watermark(Watermark::Low)),
                kb(zone.watermark(Watermark::High)),
                kb(zone.present_pages()),
                kb(zone.managed_pages()),
                kb(pcp)
            )?;
        }
        for zone in zones {
            let counts = pgdat.free_counts(zone.zone_type());
            writeln!(f, "{}", ShowFreeAreas { zone: zone.name(), counts: &counts })?;
        }
        writeln!(f, "{} total pagecache pages", node(NodeStatItem::NrFilePages))?;
        let present: u64 = pgdat.zones().iter().map(|z| z.present_pages()).sum();
        writeln!(f, "{present} pages RAM")?;
        writeln!(f, "{} pages reserved", present.saturating_sub(pgdat.totalram_pages()))
    }
}

#[cfg(test)]
mod tests {
    use crate::gfp::GFP_KERNEL;
    use crate::sim::Sim;

    use super::*;

    #[test]
    fn show_mem_reports_free_pages_per_zone_and_in_total() {
        let sim = Sim::flat(32 << 20);
        let pgdat = sim.pgdat(1);
        let pfn = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
        pgdat.drain_all_pages();
        let text = ShowMem(&pgdat).to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Mem-Info:");
        assert!(text.contains(&format!(" free:{} ", pgdat.nr_free_pages())), "{text}");
        assert!(lines.iter().any(|l| l.starts_with("Node 0 DMA32 free:")), "{text}");
        assert!(lines.iter().any(|l| l.starts_with("Node 0 DMA32: ") && l.ends_with("kB")), "{text}");
        assert!(lines.last().unwrap().ends_with("pages reserved"), "{text}");
        // SAFETY: the test's own page, unused.
        #[allow(unsafe_code)]
        unsafe { pgdat.put_page(pfn) }.unwrap();
    }
}
