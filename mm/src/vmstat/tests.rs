//! Host tests of the counters and of the /proc/vmstat and /proc/zoneinfo
//! texts.

use super::*;
use crate::addr::PAGE_SIZE;
use crate::gfp::GFP_KERNEL;
use crate::mmzone::ZoneType;
use crate::sim::{Sim, set_cpu};

const MIB: u64 = 1 << 20;

#[test]
fn node_state_sums_signed_per_cpu_shares_and_reads_zero_below() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(2);
    let item = NodeStatItem::NrAnonMapped;
    // Mapped on CPU 1, unmapped on CPU 0: CPU 0's share goes negative.
    set_cpu(1);
    pgdat.mod_node_page_state(item, 3);
    set_cpu(0);
    pgdat.mod_node_page_state(item, -1);
    assert_eq!((pgdat.node_stats(0).unwrap().get(item), pgdat.node_stats(1).unwrap().get(item)), (-1, 3));
    assert_eq!(pgdat.node_page_state(item), 2);
    // A transiently negative sum (a race in Linux) reads 0.
    pgdat.mod_node_page_state(item, -5);
    assert_eq!(pgdat.node_page_state(item), 0);
    // Byte items are shown in whole pages.
    let slab = NodeStatItem::NrSlabUnreclaimableB;
    pgdat.mod_node_page_state(slab, 3 * PAGE_SIZE as i64 + 100);
    assert_eq!((pgdat.node_page_state(slab), pgdat.node_page_state_pages(slab)), (3 * PAGE_SIZE + 100, 3));
    // Other items are shown as kept (KiB for kernel stacks).
    pgdat.mod_node_page_state(NodeStatItem::NrKernelStackKb, 64);
    assert_eq!(pgdat.node_page_state_pages(NodeStatItem::NrKernelStackKb), 64);
}

#[test]
fn count_vm_event_adds_to_this_cpu_only() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(2);
    set_cpu(1);
    pgdat.count_vm_event(VmEventItem::DropSlab);
    pgdat.count_vm_events(VmEventItem::DropPagecache, 2);
    set_cpu(0);
    pgdat.count_vm_event(VmEventItem::DropSlab);
    let on = |cpu: usize, item| pgdat.vm_events(cpu).unwrap().get(item);
    assert_eq!((on(0, VmEventItem::DropSlab), on(1, VmEventItem::DropSlab)), (1, 1));
    assert_eq!((on(0, VmEventItem::DropPagecache), on(1, VmEventItem::DropPagecache)), (0, 2));
    assert_eq!(pgdat.all_vm_events(VmEventItem::DropSlab), 2);
}

#[test]
fn vmstat_prints_zone_then_node_then_event_items_in_linux_order() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    pgdat.mod_node_page_state(NodeStatItem::NrSlabUnreclaimableB, 2 * PAGE_SIZE as i64);
    pgdat.mod_node_page_state(NodeStatItem::NrKernelStackKb, 128);
    pgdat.count_vm_event(VmEventItem::DropPagecache);
    let text = Vmstat(&pgdat).to_string();
    let names: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "nr_free_pages",
            "nr_inactive_anon",
            "nr_active_anon",
            "nr_inactive_file",
            "nr_active_file",
            "nr_unevictable",
            "nr_slab_reclaimable",
            "nr_slab_unreclaimable",
            "workingset_refault_anon",
            "workingset_refault_file",
            "workingset_activate_anon",
            "workingset_activate_file",
            "workingset_restore_anon",
            "workingset_restore_file",
            "nr_anon_pages",
            "nr_mapped",
            "nr_file_pages",
            "nr_dirty",
            "nr_writeback",
            "nr_shmem",
            "nr_kernel_stack",
            "nr_page_table_pages",
            "nr_dirtied",
            "nr_written",
            "nr_mlock",
            "nr_swapcached",
            "pgpgin",
            "pgpgout",
            "pswpin",
            "pswpout",
            "pgalloc_dma",
            "pgalloc_dma32",
            "pgalloc_normal",
            "allocstall_dma",
            "allocstall_dma32",
            "allocstall_normal",
            "allocstall_movable",
            "pgfree",
            "pgactivate",
            "pgdeactivate",
            "pglazyfree",
            "pgfault",
            "pgmajfault",
            "pglazyfreed",
            "pgrefill",
            "pgreuse",
            "pgrotated",
            "pgsteal_kswapd",
            "pgsteal_direct",
            "pgscan_kswapd",
            "pgscan_direct",
            "pginodesteal",
            "slabs_scanned",
            "kswapd_inodesteal",
            "pageoutrun",
            "kswapd_low_wmark_hit_quickly",
            "kswapd_high_wmark_hit_quickly",
            "drop_pagecache",
            "drop_slab",
            "oom_kill",
            "pgmigrate_success",
            "pgmigrate_fail",
            "compact_migrate_scanned",
            "compact_free_scanned",
            "compact_isolated",
            "compact_stall",
            "compact_fail",
            "compact_success",
            "compact_daemon_wake",
            "compact_daemon_migrate_scanned",
            "compact_daemon_free_scanned",
            "unevictable_pgs_culled",
            "unevictable_pgs_rescued",
            "unevictable_pgs_mlocked",
            "unevictable_pgs_munlocked",
            "unevictable_pgs_cleared",
            "swap_ra",
            "swap_ra_hit",
        ]
    );
    assert!(text.starts_with(&format!("nr_free_pages {}\n", pgdat.nr_free_pages())), "{text}");
    assert!(text.contains("\nnr_slab_unreclaimable 2\nworkingset_refault_anon 0\nworkingset_refault_file 0\nworkingset_activate_anon 0\nworkingset_activate_file 0\nworkingset_restore_anon 0\nworkingset_restore_file 0\nnr_anon_pages 0\nnr_mapped 0\nnr_file_pages 0\nnr_dirty 0\nnr_writeback 0\nnr_shmem 0\nnr_kernel_stack 128\n"), "{text}");
    assert!(text.contains("\ndrop_pagecache 1\ndrop_slab 0\noom_kill 0\npgmigrate_success 0\n"), "{text}");
    assert!(text.contains("\ncompact_free_scanned 0\ncompact_isolated 0\ncompact_stall 0\n"), "{text}");
    assert!(
        text.ends_with(
            "\ncompact_daemon_free_scanned 0\nunevictable_pgs_culled 0\nunevictable_pgs_rescued 0\n\
             unevictable_pgs_mlocked 0\nunevictable_pgs_munlocked 0\nunevictable_pgs_cleared 0\nswap_ra 0\nswap_ra_hit 0\n"
        ),
        "{text}"
    );
}

/// The lines Linux prints for a zone's watermarks and sizes.
fn zone_sizes(pgdat: &PgData<'_>, zone: ZoneType) -> String {
    let z = pgdat.zone(zone);
    let r = |upper| z.lowmem_reserve(upper);
    format!(
        "  pages free     {}\n        boost    0\n        min      {}\n        low      {}\n        high     {}\n        \
         spanned  {}\n        present  {}\n        managed  {}\n        cma      0\n        protection: ({}, {}, {})",
        z.free_pages(),
        z.watermark(Watermark::Min),
        z.watermark(Watermark::Low),
        z.watermark(Watermark::High),
        z.spanned_pages(),
        z.present_pages(),
        z.managed_pages(),
        r(ZoneType::Dma),
        r(ZoneType::Dma32),
        r(ZoneType::Normal),
    )
}

/// One CPU's lines under `pagesets`.
fn pageset(cpu: usize, count: u64, high: u32, batch: u32) -> String {
    [
        format!("\n    cpu: {cpu}"),
        format!("\n              count:    {count}"),
        format!("\n              high:     {high}"),
        format!("\n              batch:    {batch}"),
        "\n  vm stats threshold: 0".to_owned(),
    ]
    .concat()
}

#[test]
fn zoneinfo_prints_every_zone_in_linux_layout() {
    // DMA: pfns 0..4096; DMA32: 4096..65536; Normal empty.
    let sim = Sim::flat(256 * MIB);
    let pgdat = sim.pgdat(2);
    set_cpu(1);
    let pfn = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    set_cpu(0);
    pgdat.mod_node_page_state(NodeStatItem::NrPagetable, 7);
    let text = Zoneinfo(&pgdat).to_string();
    let dma32 = pgdat.zone(ZoneType::Dma32);
    let (high, batch) = dma32.pcp_high_batch();
    assert!(batch > 1, "the refill below leaves batch - 1 pages on CPU 1's list");
    let (dma_high, dma_batch) = pgdat.zone(ZoneType::Dma).pcp_high_batch();
    let dma = format!(
        "Node 0, zone      DMA\n  per-node stats\n      nr_inactive_anon 0\n      nr_active_anon 0\n      \
         nr_inactive_file 0\n      nr_active_file 0\n      nr_unevictable 0\n      nr_slab_reclaimable 0\n      nr_slab_unreclaimable 0\n      \
         workingset_refault_anon 0\n      workingset_refault_file 0\n      workingset_activate_anon 0\n      \
         workingset_activate_file 0\n      workingset_restore_anon 0\n      workingset_restore_file 0\n      \
         nr_anon_pages 0\n      nr_mapped    0\n      nr_file_pages 0\n      nr_dirty     0\n      \
         nr_writeback 0\n      nr_shmem     0\n      nr_kernel_stack 0\n      nr_page_table_pages 7\n      \
         nr_dirtied   0\n      nr_written   0\n      nr_mlock     0\n      nr_swapcached 0\n{}\n      \
         nr_free_pages {}\n  pagesets{}{}\n  node_unreclaimable:  0\n  start_pfn:           0\n",
        zone_sizes(&pgdat, ZoneType::Dma),
        pgdat.zone(ZoneType::Dma).free_pages(),
        pageset(0, 0, dma_high, dma_batch),
        pageset(1, 0, dma_high, dma_batch),
    );
    assert!(text.starts_with(&dma), "want\n{dma}\nhave\n{text}");
    // The node state appears once, under the first populated zone.
    assert_eq!(text.matches("per-node stats").count(), 1);
    let dma32_head = format!("Node 0, zone    DMA32\n{}\n      nr_free_pages ", zone_sizes(&pgdat, ZoneType::Dma32));
    assert!(text.contains(&dma32_head), "want\n{dma32_head}\nhave\n{text}");
    let cpu1 = pageset(1, u64::from(batch) - 1, high, batch);
    let dma32_text = &text[text.find("zone    DMA32").unwrap()..];
    assert!(dma32_text.contains(&cpu1), "want {cpu1:?} in\n{dma32_text}");
    assert!(dma32_text.contains("\n  start_pfn:           4096\n"), "{dma32_text}");
    // An empty zone stops after its protection line.
    let normal = format!("Node 0, zone   Normal\n{}\n", zone_sizes(&pgdat, ZoneType::Normal));
    assert!(text.ends_with(&normal), "want\n{normal}\nhave\n{text}");
    assert_eq!(text.matches("Node 0, zone").count(), 3, "every zone, empty ones included");
    // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
    unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
}
