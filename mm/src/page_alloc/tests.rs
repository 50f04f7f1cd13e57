//! Host tests of the buddy allocator on simulated machines.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::compaction::{CompactPriority, CompactRequest, CompactResult, DirectCompaction};
use crate::gfp::{GFP_ATOMIC, GFP_DMA, GFP_DMA32, GFP_HIGHUSER_MOVABLE, GFP_KERNEL, GFP_NOWAIT};
use crate::mmzone::MAX_DMA32_PFN;
use crate::sim::{Sim, might_sleep_calls, set_cpu};
use crate::vmscan::DirectReclaim;
use crate::vmstat::{Buddyinfo, Pagetypeinfo, VmEventItem, Vmstat};

const MIB: u64 = 1 << 20;
const QUIET: Gfp = Gfp::NOWARN;

/// Free blocks per order of every zone (a /proc/buddyinfo snapshot), after
/// draining the per-cpu lists and checking each zone's consistency.
/// Migratetypes are left out: allocations legitimately retype pageblocks.
fn snapshot(pgdat: &PgData<'_>) -> Vec<[u64; NR_PAGE_ORDERS]> {
    pgdat.drain_all_pages();
    ZoneType::ALL
        .iter()
        .map(|&z| {
            let counts = pgdat.check_zone(z).unwrap();
            core::array::from_fn(|order| counts.nr_free(order))
        })
        .collect()
}

/// Orders of the blocks on a zone's free lists, largest first.
fn block_orders(counts: &FreeCounts) -> Vec<u32> {
    let mut orders = Vec::new();
    for order in (0..NR_PAGE_ORDERS).rev() {
        for _ in 0..counts.nr_free(order) {
            orders.push(order as u32);
        }
    }
    orders
}

#[test]
fn free_all_hands_memory_over_in_maximal_aligned_blocks() {
    // 1 MiB..17 MiB: DMA gets 1..16 MiB, DMA32 16..17 MiB; the first page
    // of DMA32 is reserved.
    let sim = Sim::new(0, 18 * MIB, &[(MIB, 16 * MIB)], &[(16 * MIB, 4096)]);
    let pgdat = sim.pgdat(1);
    let dma = pgdat.zone(ZoneType::Dma);
    assert_eq!((dma.start_pfn(), dma.spanned_pages(), dma.present_pages()), (256, 3840, 3840));
    assert_eq!(dma.managed_pages(), 3840);
    // 1..4 MiB: 256 pages at 1 MiB is a 1 MiB-aligned order-8 block, then
    // 2 MiB-aligned order 9; then 4..16 MiB in three order-10 blocks.
    let counts = pgdat.check_zone(ZoneType::Dma).unwrap();
    assert_eq!(block_orders(&counts), [10, 10, 10, 9, 8]);
    let dma32 = pgdat.zone(ZoneType::Dma32);
    assert_eq!((dma32.present_pages(), dma32.managed_pages()), (256, 255));
    let counts = pgdat.check_zone(ZoneType::Dma32).unwrap();
    assert_eq!(block_orders(&counts), [7, 6, 5, 4, 3, 2, 1, 0]);
    assert!(pgdat.pfn_to_page(Pfn::new(4096)).unwrap().test(PageFlags::RESERVED));
    assert_eq!(pgdat.nr_free_pages(), 3840 + 255);
    assert_eq!(pgdat.zone(ZoneType::Normal).present_pages(), 0);
}

/// A reserved 2 MiB range given back (an initrd after unpacking): its
/// pages become managed and free and merge into one pageblock, and the
/// allocator hands them out.
#[test]
fn free_reserved_area_gives_a_reserved_range_to_the_allocator() {
    // 32 MiB, one of them reserved at 8 MiB (DMA zone).
    let sim = Sim::new(0, 32 * MIB, &[(0, 32 * MIB)], &[(8 * MIB, 2 * MIB)]);
    let pgdat = sim.pgdat(1);
    let (free, managed) = (pgdat.nr_free_pages(), pgdat.totalram_pages());
    let dma_managed = pgdat.zone(ZoneType::Dma).managed_pages();
    let before = pgdat.check_zone(ZoneType::Dma).unwrap();
    let (order9, order10) = (before.nr_free(9), before.nr_free(10));
    assert!(pgdat.pfn_to_page(Pfn::new(2048)).unwrap().test(PageFlags::RESERVED));
    // SAFETY: nothing uses the simulated range; the test reserved it.
    let freed = unsafe { pgdat.free_reserved_area(PhysAddr::new(8 * MIB), PhysAddr::new(10 * MIB), "test") };
    assert_eq!(freed, 512);
    assert_eq!((pgdat.nr_free_pages(), pgdat.totalram_pages()), (free + 512, managed + 512));
    assert_eq!(pgdat.zone(ZoneType::Dma).managed_pages(), dma_managed + 512, "counted in the page's zone");
    for pfn in 2048..2560 {
        let page = pgdat.pfn_to_page(Pfn::new(pfn)).unwrap();
        assert!(!page.test(PageFlags::RESERVED), "pfn {pfn:#x}");
    }
    // The 512 order-0 frees merged into an order-9 block, and that with
    // its free buddy at 10 MiB into an order-10 block at 8 MiB.
    let counts = pgdat.check_zone(ZoneType::Dma).unwrap();
    assert_eq!((counts.nr_free(9), counts.nr_free(10)), (order9 - 1, order10 + 1));
    let head = pgdat.pfn_to_page(Pfn::new(2048)).unwrap();
    assert!(head.test(PageFlags::BUDDY) && head.order() == 10);
    assert_eq!(pgdat.bad_pages(), 0);
}

/// Linux rounds the range inwards: a partial page at either end stays
/// reserved; a page that is not reserved is reported, not freed twice.
#[test]
fn free_reserved_area_keeps_partial_pages_and_refuses_managed_ones() {
    let sim = Sim::new(0, 32 * MIB, &[(0, 32 * MIB)], &[(8 * MIB, 16 * 4096)]);
    let pgdat = sim.pgdat(1);
    let free = pgdat.nr_free_pages();
    // SAFETY: nothing uses the simulated range.
    let freed =
        unsafe { pgdat.free_reserved_area(PhysAddr::new(8 * MIB + 1), PhysAddr::new(8 * MIB + 4 * 4096 - 1), "x") };
    assert_eq!(freed, 2, "pages 1 and 2 only");
    let reserved = |pfn: u64| pgdat.pfn_to_page(Pfn::new(pfn)).unwrap().test(PageFlags::RESERVED);
    assert!(reserved(2048) && !reserved(2049) && !reserved(2050) && reserved(2051));
    assert_eq!(pgdat.nr_free_pages(), free + 2);
    // Pages 2049 and 2050 are the allocator's now; a second free of the
    // range only takes the two that are still reserved.
    // SAFETY: as above; the managed pages are refused, not touched.
    let again = unsafe { pgdat.free_reserved_area(PhysAddr::new(8 * MIB), PhysAddr::new(8 * MIB + 4 * 4096), "x") };
    assert_eq!(again, 2);
    assert_eq!(pgdat.bad_pages(), 2, "each managed page reported");
    assert_eq!(pgdat.nr_free_pages(), free + 4);
    for zone in ZoneType::ALL {
        pgdat.check_zone(zone).unwrap();
    }
}

#[test]
fn allocation_splits_and_free_merges_back() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    pgdat.zone_pcp_disable(ZoneType::Dma32);
    let before = snapshot(&pgdat);
    let pfn = pgdat.alloc_pages(GFP_DMA32, 0).unwrap();
    let page = pgdat.pfn_to_page(pfn).unwrap();
    assert_eq!((page.refcount(), page.flags()), (1, PageFlags::empty()));
    // An order-10 block split down to order 0 leaves one block of each
    // lower order.
    let counts = pgdat.check_zone(ZoneType::Dma32).unwrap();
    for (order, &was) in before[1].iter().enumerate().take(10) {
        assert_eq!(counts.nr_free(order), was + 1, "order {order}");
    }
    assert_eq!(counts.nr_free(10), before[1][10] - 1);
    // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
    unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
    assert_eq!(snapshot(&pgdat), before);
}

#[test]
fn an_owned_block_is_freed_when_its_handle_goes() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let before = snapshot(&pgdat);
    let pages = pgdat.alloc_pages_owned(GFP_KERNEL, 2).unwrap();
    assert_eq!((pgdat.pfn_to_page(pages.pfn()).unwrap().refcount(), pages.order()), (1, 2));
    drop(pages);
    assert_eq!(snapshot(&pgdat), before);
    let pages = pgdat.alloc_pages_owned(GFP_KERNEL, 1).unwrap();
    assert_eq!(pages.free(), Ok(()));
    assert_eq!(snapshot(&pgdat), before);
    let pfn = pgdat.alloc_pages_owned(GFP_KERNEL, 0).unwrap().into_raw();
    assert_ne!(snapshot(&pgdat), before, "into_raw keeps the reference");
    // SAFETY: the reference into_raw gave up; nothing maps the page.
    unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
    assert_eq!(snapshot(&pgdat), before);
}

#[test]
fn zonelist_falls_back_to_lower_zones_and_respects_zone_modifiers() {
    // DMA: 0..16 MiB; DMA32: 4 GiB - 32 MiB .. 4 GiB; Normal: 4 GiB .. +8 MiB.
    let low = MAX_DMA32_PFN * PAGE_SIZE;
    let sim = Sim::new(0, low + 8 * MIB, &[(0, 16 * MIB), (low - 32 * MIB, 40 * MIB)], &[]);
    let pgdat = sim.pgdat(1);
    let zone_of = |pfn: Pfn| pgdat.pfn_to_page(pfn).unwrap().zone();
    let pfn = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    assert_eq!(zone_of(pfn), ZoneType::Normal);
    assert_eq!(zone_of(pgdat.alloc_pages(GFP_DMA32, 0).unwrap()), ZoneType::Dma32);
    assert_eq!(zone_of(pgdat.alloc_pages(GFP_DMA, 0).unwrap()), ZoneType::Dma);
    // Exhaust Normal: GFP_KERNEL continues in DMA32.
    let mut zones = BTreeMap::new();
    while let Some(pfn) = pgdat.alloc_pages(GFP_KERNEL | QUIET, 0) {
        *zones.entry(zone_of(pfn)).or_insert(0u64) += 1;
    }
    assert!(zones[&ZoneType::Normal] > 0 && zones[&ZoneType::Dma32] > 0 && zones[&ZoneType::Dma] > 0);
    // Each lower zone kept its min watermark plus the lowmem reserve
    // against Normal allocations.
    for zone in [ZoneType::Dma, ZoneType::Dma32] {
        let zone = pgdat.zone(zone);
        let kept = zone.watermark(Watermark::Min) + zone.lowmem_reserve(ZoneType::Normal);
        assert!(
            zone.free_pages() + pgdat.pcp_pages(zone.zone_type()) >= kept,
            "{} went below its reserve",
            zone.name()
        );
    }
}

#[test]
fn vm_events_count_pages_per_zone_and_per_cpu() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(2);
    set_cpu(1);
    let dma = pgdat.alloc_pages(GFP_DMA, 2).unwrap();
    let dma32 = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    set_cpu(0);
    // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
    unsafe { pgdat.free_pages(dma, 2) }.unwrap();
    // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
    unsafe { pgdat.free_pages(dma32, 0) }.unwrap();
    let on = |cpu: usize, item| pgdat.vm_events(cpu).unwrap().get(item);
    assert_eq!((on(1, VmEventItem::PgallocDma), on(1, VmEventItem::PgallocDma32)), (4, 1));
    assert_eq!((on(0, VmEventItem::PgallocDma), on(1, VmEventItem::Pgfree), on(0, VmEventItem::Pgfree)), (0, 0, 5));
    let text = Vmstat(&pgdat).to_string();
    assert!(
        text.contains("pgalloc_dma 4\npgalloc_dma32 1\npgalloc_normal 0\nallocstall_dma 0\nallocstall_dma32 0\n"),
        "{text}"
    );
    assert!(text.contains("allocstall_movable 0\npgfree 5\n"), "{text}");
    assert!(text.starts_with("nr_free_pages "), "{text}");
}

#[test]
fn gfp_zero_returns_zeroed_memory() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let pfn = pgdat.alloc_pages(GFP_KERNEL, 2).unwrap();
    for i in 0..4 {
        sim.ram.fill(pfn + i, 0xa5);
    }
    // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
    unsafe { pgdat.free_pages(pfn, 2) }.unwrap();
    let again = pgdat.alloc_pages(GFP_KERNEL | Gfp::ZERO, 2).unwrap();
    assert_eq!(again, pfn, "the per-cpu list hands back the page just freed");
    for i in 0..4 {
        assert!(sim.ram.page(again + i).iter().all(|&b| b == 0));
    }
}

#[test]
fn compound_pages_have_head_and_tails_and_put_page_on_a_tail_frees_all() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let before = snapshot(&pgdat);
    let pfn = pgdat.alloc_pages(GFP_KERNEL | Gfp::COMP, 4).unwrap();
    assert!(pgdat.pfn_to_page(pfn).unwrap().test(PageFlags::HEAD));
    for i in 1..16 {
        assert!(pgdat.pfn_to_page(pfn + i).unwrap().test(PageFlags::TAIL));
    }
    // SAFETY: the test's own reference (from alloc or get); nothing maps the page or points into it.
    unsafe { pgdat.put_page(pfn + 5) }.unwrap();
    assert_eq!(snapshot(&pgdat), before);
    assert!(!pgdat.pfn_to_page(pfn + 5).unwrap().test(PageFlags::TAIL));
}

#[test]
fn extra_references_delay_the_free_until_the_last_put() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let before = snapshot(&pgdat);
    let pfn = pgdat.alloc_pages(GFP_KERNEL, 1).unwrap();
    pgdat.pfn_to_page(pfn).unwrap().get();
    // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
    unsafe { pgdat.free_pages(pfn, 1) }.unwrap();
    assert_eq!(pgdat.pfn_to_page(pfn).unwrap().refcount(), 1);
    assert_ne!(snapshot(&pgdat), before);
    // SAFETY: the test's own reference (from alloc or get); nothing maps the page or points into it.
    unsafe { pgdat.put_page(pfn) }.unwrap();
    assert_eq!(snapshot(&pgdat), before);
}

#[test]
fn bulk_allocation_fills_the_array_with_distinct_zeroed_pages_and_bulk_free_returns_them() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let before = snapshot(&pgdat);
    let dirty = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    sim.ram.fill(dirty, 0xa5);
    // SAFETY: the test's own page, mapped nowhere.
    unsafe { pgdat.free_pages(dirty, 0) }.unwrap();
    // More than one per-cpu batch, so the list is refilled under the lock.
    let mut pfns = [Pfn::new(0); 100];
    assert_eq!(pgdat.alloc_pages_bulk(GFP_KERNEL | Gfp::ZERO, &mut pfns), 100);
    let distinct: std::collections::BTreeSet<Pfn> = pfns.iter().copied().collect();
    assert_eq!(distinct.len(), 100);
    assert!(pfns.contains(&dirty), "the page just freed comes back first");
    for &pfn in &pfns {
        let page = pgdat.pfn_to_page(pfn).unwrap();
        assert_eq!((page.refcount(), page.order()), (1, 0));
        assert!(sim.ram.page(pfn).iter().all(|&b| b == 0));
    }
    let events = |item| pgdat.vm_events(0).unwrap().get(item);
    assert_eq!(events(VmEventItem::PgallocDma32), 101);
    // SAFETY: the test's own pages, mapped and used nowhere.
    assert_eq!(unsafe { pgdat.free_pages_bulk(&pfns) }, 0);
    assert_eq!(events(VmEventItem::Pgfree), 101);
    assert_eq!(snapshot(&pgdat), before);
}

#[test]
fn bulk_free_reports_a_double_free_and_still_frees_the_rest() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let before = snapshot(&pgdat);
    let mut pfns = [Pfn::new(0); 3];
    assert_eq!(pgdat.alloc_pages_bulk(GFP_KERNEL, &mut pfns), 3);
    // SAFETY: the test's own page, mapped nowhere (freed twice on purpose:
    // the allocator must refuse the second free).
    unsafe { pgdat.free_pages(pfns[1], 0) }.unwrap();
    // SAFETY: the test's own pages; the bad one is refused, not freed.
    assert_eq!(unsafe { pgdat.free_pages_bulk(&pfns) }, 1);
    assert_eq!(pgdat.bad_pages(), 1);
    assert_eq!(snapshot(&pgdat), before);
}

#[test]
fn bulk_allocation_stops_short_of_the_watermark() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let mut pfns = vec![Pfn::new(0); pgdat.nr_free_pages() as usize];
    let got = pgdat.alloc_pages_bulk(GFP_KERNEL | QUIET, &mut pfns);
    assert_eq!(got, 0, "no zone keeps its low watermark after giving all of memory");
    assert_eq!(pgdat.alloc_pages_bulk(GFP_KERNEL, &mut pfns[..10]), 10);
    // SAFETY: the test's own pages, mapped and used nowhere.
    assert_eq!(unsafe { pgdat.free_pages_bulk(&pfns[..10]) }, 0);
}

#[test]
fn double_free_is_reported_and_leaves_the_free_lists_intact() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let pfn = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
    unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
    // SAFETY: nothing maps or points into the frame; the allocator refuses this bad free (under test).
    let err = unsafe { pgdat.free_pages(pfn, 0) }.unwrap_err();
    assert_eq!((err.pfn, err.reason), (pfn, BadPageReason::DoubleFree));
    assert_eq!(pgdat.bad_pages(), 1);
    // Also once the page has reached the buddy lists.
    pgdat.drain_all_pages();
    // SAFETY: nothing maps or points into the frame; the allocator refuses this bad free (under test).
    let err = unsafe { pgdat.free_pages(pfn, 0) }.unwrap_err();
    assert_eq!(err.reason, BadPageReason::DoubleFree);
    assert!(err.to_string().contains("double free"));
    snapshot(&pgdat);
}

#[test]
fn bad_frees_are_reported_with_the_reason_and_leaked() {
    let sim = Sim::new(0, 32 * MIB, &[(0, 32 * MIB)], &[(0, 4096)]);
    let pgdat = sim.pgdat(1);
    let free_before = pgdat.nr_free_pages();

    let pfn = pgdat.alloc_pages(GFP_KERNEL, 2).unwrap();
    // SAFETY: nothing maps or points into the frame; the allocator refuses this bad free (under test).
    let err = unsafe { pgdat.free_pages(pfn, 1) }.unwrap_err();
    assert_eq!(err.reason, BadPageReason::WrongOrder { freed: 1, allocated: 2 });

    // SAFETY: nothing maps or points into the frame; the allocator refuses this bad free (under test).
    let err = unsafe { pgdat.free_pages(Pfn::new(0), 0) }.unwrap_err();
    assert_eq!(err.reason, BadPageReason::FlagsAtFree(PageFlags::RESERVED));

    let pfn = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    pgdat.pfn_to_page(pfn).unwrap().set(PageFlags::SLAB);
    // SAFETY: nothing maps or points into the frame; the allocator refuses this bad free (under test).
    assert_eq!(unsafe { pgdat.free_pages(pfn, 0) }.unwrap_err().reason, BadPageReason::FlagsAtFree(PageFlags::SLAB));

    let pfn = pgdat.alloc_pages(GFP_KERNEL | Gfp::COMP, 1).unwrap();
    // SAFETY: nothing maps or points into the frame; the allocator refuses this bad free (under test).
    assert_eq!(unsafe { pgdat.free_pages(pfn + 1, 0) }.unwrap_err().reason, BadPageReason::DoubleFree);

    // SAFETY: nothing maps or points into the frame; the allocator refuses this bad free (under test).
    let err = unsafe { pgdat.free_pages(Pfn::new(1 << 30), 0) }.unwrap_err();
    assert_eq!(err.reason, BadPageReason::NotInMemMap);
    assert_eq!(pgdat.bad_pages(), 5);
    snapshot(&pgdat);
    assert!(pgdat.nr_free_pages() < free_before);
}

#[test]
fn debug_checks_inspect_every_page_of_a_freed_block() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    // A healthy head hides a tail that is still in use (here: owned by a
    // slab); only the per-page debug loop can see it.
    let pfn = pgdat.alloc_pages(GFP_KERNEL, 2).unwrap();
    pgdat.pfn_to_page(pfn + 3).unwrap().set(PageFlags::SLAB);
    // SAFETY: nothing maps or points into the frame; the allocator refuses this bad free (under test).
    let err = unsafe { pgdat.free_pages(pfn, 2) }.unwrap_err();
    assert_eq!((err.pfn, err.reason), (pfn + 3, BadPageReason::FlagsAtFree(PageFlags::SLAB)));
    // With debug checks off the head alone is checked and the block is
    // freed; the stale tail flag is cleared on the way.
    pgdat.set_debug_checks(false);
    let other = pgdat.alloc_pages(GFP_KERNEL, 2).unwrap();
    pgdat.pfn_to_page(other + 3).unwrap().set(PageFlags::SLAB);
    // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
    unsafe { pgdat.free_pages(other, 2) }.unwrap();
    assert!(!pgdat.pfn_to_page(other + 3).unwrap().test(PageFlags::SLAB));
    snapshot(&pgdat);
}

#[test]
fn exhaustion_returns_none_and_freeing_everything_restores_the_free_lists() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(2);
    let before = snapshot(&pgdat);
    let mut live = Vec::new();
    for order in [3, 0, 9, 1] {
        while let Some(pfn) = pgdat.alloc_pages(GFP_KERNEL | QUIET, order) {
            live.push((pfn, order));
        }
    }
    assert!(pgdat.alloc_pages(GFP_KERNEL, 0).is_none(), "warns, returns None");
    assert!(pgdat.alloc_pages(GFP_KERNEL, MAX_PAGE_ORDER + 1).is_none());
    for (pfn, order) in live {
        // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
        unsafe { pgdat.free_pages(pfn, order) }.unwrap();
    }
    assert_eq!(snapshot(&pgdat), before);
}

#[test]
fn atomic_and_memalloc_allocations_dip_into_the_reserves() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(1);
    let mut kernel = 0;
    while pgdat.alloc_pages(GFP_KERNEL | QUIET, 0).is_some() {
        kernel += 1;
    }
    let free_at_kernel_failure = pgdat.nr_free_pages();
    assert!(kernel > 0 && free_at_kernel_failure > 0);
    assert!(pgdat.alloc_pages(GFP_NOWAIT, 0).is_none(), "no reserves without __GFP_HIGH");
    let mut atomic = 0;
    while pgdat.alloc_pages(GFP_ATOMIC | QUIET, 0).is_some() {
        atomic += 1;
    }
    assert!(atomic > 0, "GFP_ATOMIC may go below the min watermark");
    let mut memalloc = 0;
    while pgdat.alloc_pages(GFP_KERNEL | Gfp::MEMALLOC | QUIET, 0).is_some() {
        memalloc += 1;
    }
    assert!(memalloc > 0);
    pgdat.drain_all_pages();
    assert_eq!(pgdat.nr_free_pages(), 0, "__GFP_MEMALLOC ignores watermarks entirely");
}

#[test]
fn unmovable_allocation_claims_a_whole_free_movable_block() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let map = pgdat.mem_map();
    // The only free blocks are order 10, two pageblocks each: the fallback
    // takes one and retypes both of its pageblocks.
    let pfn = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    assert_eq!(map.pageblock_migratetype(pfn), MigrateType::Unmovable);
    assert_eq!(map.pageblock_migratetype(Pfn::new(pfn.as_u64() ^ PAGEBLOCK_NR_PAGES)), MigrateType::Unmovable);
    let counts = pgdat.check_zone(ZoneType::Dma32).unwrap();
    assert!(counts.blocks.iter().any(|o| o[MigrateType::Unmovable as usize] > 0));
    // Movable allocations keep to movable blocks while any are free.
    let movable = pgdat.alloc_pages(GFP_HIGHUSER_MOVABLE, 0).unwrap();
    assert_eq!(map.pageblock_migratetype(movable), MigrateType::Movable);
    let text = Pagetypeinfo(&pgdat).to_string();
    assert!(
        text.contains("Node 0, zone    DMA32            2            6            0            0            0"),
        "{text}"
    );
}

/// Fills memory with order-0 pages of `gfp`, frees the pages of the
/// pageblock at `block` whose offset in it satisfies `free`, and returns the
/// pages still allocated. Per-cpu lists are off so the frees reach the
/// buddy lists.
fn fill_and_free_in_block(pgdat: &PgData<'_>, gfp: Gfp, block: u64, free: impl Fn(u64) -> bool) -> Vec<Pfn> {
    pgdat.zone_pcp_disable(ZoneType::Dma32);
    pgdat.zone_pcp_disable(ZoneType::Dma);
    let mut live = Vec::new();
    while let Some(pfn) = pgdat.alloc_pages(GFP_DMA32 | gfp | Gfp::MEMALLOC | QUIET, 0) {
        live.push(pfn);
    }
    live.retain(|&pfn| {
        let in_block = pfn.as_u64() / PAGEBLOCK_NR_PAGES == block / PAGEBLOCK_NR_PAGES;
        if in_block && free(pfn.as_u64() - block) {
            // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
            unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
            return false;
        }
        true
    });
    live
}

#[test]
fn fallback_claims_a_pageblock_when_half_of_it_is_free() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let map = pgdat.mem_map();
    let block = 6 * PAGEBLOCK_NR_PAGES;
    // 412 of the block's pages free: an unmovable request claims it.
    fill_and_free_in_block(&pgdat, GFP_HIGHUSER_MOVABLE, block, |offset| offset >= 100);
    assert_eq!(map.pageblock_migratetype(Pfn::new(block)), MigrateType::Movable);
    let pfn = pgdat.alloc_pages(GFP_DMA32 | Gfp::MEMALLOC, 0).unwrap();
    assert_eq!(pfn.as_u64() / PAGEBLOCK_NR_PAGES, block / PAGEBLOCK_NR_PAGES);
    assert_eq!(map.pageblock_migratetype(pfn), MigrateType::Unmovable);
    pgdat.check_zone(ZoneType::Dma32).unwrap();
}

#[test]
fn fallback_takes_a_single_block_when_the_pageblock_is_mostly_in_movable_use() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let map = pgdat.mem_map();
    let block = 6 * PAGEBLOCK_NR_PAGES;
    // 112 pages free, the other 400 on an LRU (movable): not worth claiming.
    let live = fill_and_free_in_block(&pgdat, GFP_HIGHUSER_MOVABLE, block, |offset| offset >= 400);
    for &pfn in &live {
        pgdat.pfn_to_page(pfn).unwrap().set(PageFlags::LRU);
    }
    let pfn = pgdat.alloc_pages(GFP_DMA32 | Gfp::MEMALLOC, 0).unwrap();
    assert_eq!(pfn.as_u64() / PAGEBLOCK_NR_PAGES, block / PAGEBLOCK_NR_PAGES);
    assert_eq!(map.pageblock_migratetype(pfn), MigrateType::Movable);
    pgdat.check_zone(ZoneType::Dma32).unwrap();
}

#[test]
fn movable_fallback_takes_a_lone_small_block_without_claiming() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let map = pgdat.mem_map();
    let block = 6 * PAGEBLOCK_NR_PAGES;
    // Every other page of the first 32 free: order-0 blocks only.
    fill_and_free_in_block(&pgdat, GFP_KERNEL, block, |offset| offset < 32 && offset % 2 == 0);
    assert_eq!(map.pageblock_migratetype(Pfn::new(block)), MigrateType::Unmovable);
    // The largest fallback block is below pageblock_order / 2, so a movable
    // request may not claim the pageblock: it takes one page and the
    // pageblock keeps its type.
    let pfn = pgdat.alloc_pages(GFP_HIGHUSER_MOVABLE | GFP_DMA32 | Gfp::MEMALLOC, 0).unwrap();
    assert_eq!(pfn.as_u64() / PAGEBLOCK_NR_PAGES, block / PAGEBLOCK_NR_PAGES);
    assert_eq!(map.pageblock_migratetype(pfn), MigrateType::Unmovable);
    pgdat.check_zone(ZoneType::Dma32).unwrap();
}

#[test]
fn high_order_atomic_allocation_reserves_a_highatomic_pageblock_until_pressure() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(1);
    let map = pgdat.mem_map();
    // High-order atomic allocations get a reserve only once the fast path
    // fails; take memory down to the low watermark first.
    let mut live = Vec::new();
    while let Some(pfn) = pgdat.alloc_pages(GFP_NOWAIT, 0) {
        live.push(pfn);
    }
    let pfn = pgdat.alloc_pages(GFP_ATOMIC, 2).unwrap();
    assert_eq!(map.pageblock_migratetype(pfn), MigrateType::HighAtomic);
    let zone = pgdat.zone(ZoneType::Dma32);
    assert_eq!(zone.nr_reserved_highatomic(), PAGEBLOCK_NR_PAGES);
    pgdat.check_zone(ZoneType::Dma32).unwrap();
    // A blocking allocation that would fail unreserves the block first.
    while pgdat.alloc_pages(GFP_KERNEL | QUIET, 0).is_some() {}
    assert_eq!(zone.nr_reserved_highatomic(), 0);
    assert_ne!(map.pageblock_migratetype(pfn), MigrateType::HighAtomic);
    pgdat.check_zone(ZoneType::Dma32).unwrap();
}

#[test]
fn isolated_pageblock_hands_nothing_out_until_unisolated() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let map = pgdat.mem_map();
    let before = pgdat.nr_free_pages();
    let block = Pfn::new(MAX_DMA_PFN_FOR_TEST);
    pgdat.isolate_pageblock(block).unwrap();
    assert_eq!(pgdat.isolate_pageblock(block), Err(IsolateError::AlreadyIsolated(block)));
    assert_eq!(pgdat.nr_free_pages(), before - PAGEBLOCK_NR_PAGES, "isolated pages are not free");
    pgdat.check_zone(ZoneType::Dma32).unwrap();
    let mut live = Vec::new();
    while let Some(pfn) = pgdat.alloc_pages(GFP_DMA32 | Gfp::MEMALLOC | QUIET, 0) {
        assert_ne!(map.pageblock_migratetype(pfn), MigrateType::Isolate, "{pfn:?} from an isolated block");
        live.push(pfn);
    }
    assert!(live.iter().all(|p| p.as_u64() / PAGEBLOCK_NR_PAGES != block.as_u64() / PAGEBLOCK_NR_PAGES));
    pgdat.unisolate_pageblock(block, MigrateType::Movable).unwrap();
    assert_eq!(pgdat.unisolate_pageblock(block, MigrateType::Movable), Err(IsolateError::NotIsolated(block)));
    assert!(pgdat.alloc_pages(GFP_DMA32 | Gfp::MEMALLOC, 0).is_some());
    pgdat.check_zone(ZoneType::Dma32).unwrap();
}

/// The first DMA32 pageblock.
const MAX_DMA_PFN_FOR_TEST: u64 = crate::mmzone::MAX_DMA_PFN;

#[test]
fn per_cpu_lists_refill_in_batches_and_spill_above_high() {
    let sim = Sim::flat(256 * MIB);
    let pgdat = sim.pgdat(2);
    let zone = pgdat.zone(ZoneType::Dma32);
    let (high, batch) = zone.pcp_high_batch();
    assert!(high >= 4 * batch && batch > 1, "high {high} batch {batch}");
    let free = zone.free_pages();
    let pfn = pgdat.alloc_pages(GFP_DMA32, 0).unwrap();
    assert_eq!(pgdat.pcp_pages(ZoneType::Dma32), u64::from(batch) - 1);
    assert_eq!(zone.free_pages(), free - u64::from(batch));
    // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
    unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
    // Frees on another CPU fill that CPU's list until it passes high.
    set_cpu(1);
    let live: Vec<Pfn> = (0..u64::from(high) * 2).map_while(|_| pgdat.alloc_pages(GFP_DMA32, 0)).collect();
    for pfn in live {
        // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
        unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
        assert!(zone.pcp[1].0.lock().count < u64::from(high));
    }
    set_cpu(0);
    pgdat.drain_all_pages();
    assert_eq!(pgdat.pcp_pages(ZoneType::Dma32), 0);
    assert_eq!(zone.free_pages(), free);
}

#[test]
fn disabled_pcp_sends_allocations_and_frees_to_the_buddy_lists() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    pgdat.zone_pcp_disable(ZoneType::Dma32);
    let zone = pgdat.zone(ZoneType::Dma32);
    let free = zone.free_pages();
    let pfn = pgdat.alloc_pages(GFP_DMA32, 0).unwrap();
    assert_eq!((pgdat.pcp_pages(ZoneType::Dma32), zone.free_pages()), (0, free - 1));
    // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
    unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
    assert_eq!((pgdat.pcp_pages(ZoneType::Dma32), zone.free_pages()), (0, free));
    pgdat.zone_pcp_enable(ZoneType::Dma32);
    assert!(zone.pcp_high_batch().0 > 0);
}

#[test]
fn buddyinfo_prints_linux_format() {
    let sim = Sim::new(0, 18 * MIB, &[(MIB, 16 * MIB)], &[(16 * MIB, 4096)]);
    let pgdat = sim.pgdat(1);
    let text = Buddyinfo(&pgdat).to_string();
    assert_eq!(
        text,
        "Node 0, zone      DMA      0      0      0      0      0      0      0      0      1      1      3 \n\
         Node 0, zone    DMA32      1      1      1      1      1      1      1      1      0      0      0 \n"
    );
    let counts = pgdat.free_counts(ZoneType::Dma32);
    let line = crate::vmstat::ShowFreeAreas { zone: "DMA32", counts: &counts }.to_string();
    assert!(line.starts_with("Node 0 DMA32: 1*4kB (M) 1*8kB (M) "), "{line}");
    assert!(line.ends_with("0*4096kB = 1020kB"), "{line}");
}

#[test]
fn concurrent_cpus_allocate_and_free_without_corruption() {
    let sim = Sim::flat(128 * MIB);
    let pgdat = sim.pgdat(4);
    let before = snapshot(&pgdat);
    std::thread::scope(|s| {
        for cpu in 0..4u32 {
            let pgdat = &pgdat;
            s.spawn(move || {
                set_cpu(cpu);
                let mut live = Vec::new();
                for round in 0..2000u32 {
                    let order = (round * 7 + cpu) % 5;
                    if let Some(pfn) = pgdat.alloc_pages(GFP_KERNEL | QUIET, order) {
                        live.push((pfn, order));
                    }
                    if round % 3 == 0 && !live.is_empty() {
                        let (pfn, order) = live.swap_remove((round as usize * 31) % live.len());
                        // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
                        unsafe { pgdat.free_pages(pfn, order) }.unwrap();
                    }
                }
                for (pfn, order) in live {
                    // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
                    unsafe { pgdat.free_pages(pfn, order) }.unwrap();
                }
            });
        }
    });
    assert_eq!(pgdat.bad_pages(), 0);
    assert_eq!(snapshot(&pgdat), before);
}

/// One step of the property test.
#[derive(Clone, Debug)]
enum Op {
    Alloc { gfp: u8, order: u32 },
    Free { index: usize },
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..6, 0u32..=MAX_PAGE_ORDER).prop_map(|(gfp, order)| Op::Alloc { gfp, order }),
        4 => any::<usize>().prop_map(|index| Op::Free { index }),
        1 => Just(Op::Drain),
    ]
}

fn gfp_of(code: u8, order: u32) -> Gfp {
    QUIET
        | match code {
            0 => GFP_KERNEL,
            1 => GFP_HIGHUSER_MOVABLE,
            2 => GFP_KERNEL | Gfp::RECLAIMABLE,
            3 => GFP_DMA32,
            4 => GFP_DMA,
            // Order-0 atomics: high-order ones would reserve highatomic
            // blocks, which deliberately never merge back.
            _ if order == 0 => GFP_ATOMIC,
            _ => GFP_KERNEL | Gfp::COMP,
        }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random mixed-order, mixed-type allocation and free sequences on a
    /// 24 MiB machine with a hole: live blocks never overlap and never sit
    /// on a free list, the free lists and counters stay consistent, and
    /// freeing everything restores the boot-time maximal blocks.
    #[test]
    fn random_alloc_free_sequences_keep_the_buddy_invariants(ops in prop::collection::vec(op(), 1..300)) {
        let sim = Sim::new(0, 24 * MIB, &[(0, 10 * MIB), (12 * MIB, 12 * MIB)], &[(0, 64 * 1024)]);
        let pgdat = sim.pgdat(2);
        let before = snapshot(&pgdat);
        let mut live: BTreeMap<u64, u32> = BTreeMap::new();
        for (step, op) in ops.into_iter().enumerate() {
            set_cpu((step % 2) as u32);
            match op {
                Op::Alloc { gfp, order } => {
                    let gfp = gfp_of(gfp, order);
                    if let Some(pfn) = pgdat.alloc_pages(gfp, order) {
                        let (start, end) = (pfn.as_u64(), pfn.as_u64() + (1 << order));
                        prop_assert_eq!(start % (1 << order), 0);
                        if let Some((&prev, &prev_order)) = live.range(..end).next_back() {
                            prop_assert!(prev + (1 << prev_order) <= start, "overlap at {:#x}", start);
                        }
                        for p in start..end {
                            let page = pgdat.pfn_to_page(Pfn::new(p)).unwrap();
                            prop_assert!(!page.test(PageFlags::BUDDY) && !page.test(PageFlags::RESERVED));
                            prop_assert!(page.zone() <= gfp.zone());
                        }
                        live.insert(start, order);
                    }
                }
                Op::Free { index } => {
                    if !live.is_empty() {
                        let (&pfn, &order) = live.iter().nth(index % live.len()).unwrap();
                        live.remove(&pfn);
                        // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
                        prop_assert_eq!(unsafe { pgdat.free_pages(Pfn::new(pfn), order) }, Ok(()));
                    }
                }
                Op::Drain => pgdat.drain_all_pages(),
            }
            if step % 16 == 0 {
                for zone in ZoneType::ALL {
                    prop_assert_eq!(pgdat.check_zone(zone).err(), None);
                }
            }
        }
        for (pfn, order) in live {
            // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
            prop_assert_eq!(unsafe { pgdat.free_pages(Pfn::new(pfn), order) }, Ok(()));
        }
        prop_assert_eq!(pgdat.bad_pages(), 0);
        prop_assert_eq!(snapshot(&pgdat), before);
    }
}

#[test]
fn adjacent_isolated_pageblocks_unisolate_one_at_a_time_without_corruption() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let map = pgdat.mem_map();
    let (lo, hi) = (Pfn::new(8 * PAGEBLOCK_NR_PAGES), Pfn::new(9 * PAGEBLOCK_NR_PAGES));
    pgdat.isolate_pageblock(lo).unwrap();
    pgdat.isolate_pageblock(hi).unwrap();
    pgdat.unisolate_pageblock(lo, MigrateType::Movable).unwrap();
    assert_eq!(map.pageblock_migratetype(hi), MigrateType::Isolate);
    pgdat.check_zone(ZoneType::Dma32).unwrap();
    let mut live = Vec::new();
    while let Some(pfn) = pgdat.alloc_pages(GFP_DMA32 | Gfp::MEMALLOC | QUIET, 0) {
        assert_ne!(map.pageblock_migratetype(pfn), MigrateType::Isolate, "{pfn:?} from an isolated block");
        live.push(pfn);
    }
    pgdat.unisolate_pageblock(hi, MigrateType::Movable).unwrap();
    pgdat.check_zone(ZoneType::Dma32).unwrap();
}

#[test]
fn freeing_an_order_10_block_with_one_isolated_half_keeps_each_half_on_its_list() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let pfn = pgdat.alloc_pages(GFP_DMA32, MAX_PAGE_ORDER).unwrap();
    let upper = Pfn::new(pfn.as_u64() + PAGEBLOCK_NR_PAGES);
    pgdat.isolate_pageblock(upper).unwrap();
    // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
    unsafe { pgdat.free_pages(pfn, MAX_PAGE_ORDER) }.unwrap();
    pgdat.check_zone(ZoneType::Dma32).unwrap();
    let counts = pgdat.free_counts(ZoneType::Dma32);
    assert_eq!(counts.blocks[PAGEBLOCK_ORDER as usize][MigrateType::Isolate as usize], 1);
}

#[test]
fn stale_tail_flags_are_cleared_on_free() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    pgdat.zone_pcp_disable(ZoneType::Dma32);
    let pfn = pgdat.alloc_pages(GFP_DMA32, 2).unwrap();
    pgdat.pfn_to_page(pfn + 2).unwrap().set(PageFlags::REFERENCED | PageFlags::DIRTY);
    // SAFETY: the test allocated the block and never mapped it or made a pointer into it.
    unsafe { pgdat.free_pages(pfn, 2) }.unwrap();
    let again = pgdat.alloc_pages(GFP_DMA32, 2).unwrap();
    assert_eq!(again, pfn);
    assert_eq!(pgdat.bad_pages(), 0, "the next allocation found the tail clean");
}

#[test]
fn an_allocation_that_may_reclaim_says_it_might_sleep_and_an_atomic_one_does_not() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let before = might_sleep_calls();
    let kernel = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    assert_eq!(might_sleep_calls(), before + 1, "GFP_KERNEL may reclaim, so may sleep");
    let atomic = pgdat.alloc_pages(GFP_ATOMIC, 0).unwrap();
    let nowait = pgdat.alloc_pages(GFP_NOWAIT, 0).unwrap();
    assert_eq!(might_sleep_calls(), before + 1, "GFP_ATOMIC and GFP_NOWAIT never sleep");
    for pfn in [kernel, atomic, nowait] {
        // SAFETY: the test's own pages, mapped nowhere.
        unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
    }
}

/// Linux's `__setup_per_zone_wmarks` for one zone, written out from its
/// source: `(min, low, high)` for `min_free_kbytes` and
/// `watermark_scale_factor` over `lowmem_pages` managed pages in all.
fn linux_wmarks(managed: u64, lowmem_pages: u64, min_free_kbytes: u64, scale_factor: u64) -> (u64, u64, u64) {
    let pages_min = min_free_kbytes >> (crate::PAGE_SHIFT - 10);
    let min = pages_min * managed / lowmem_pages;
    let tmp = (min >> 2).max(managed * scale_factor / 10_000);
    (min, min + tmp, min + 2 * tmp)
}

fn wmarks(zone: &Zone<'_>) -> (u64, u64, u64) {
    (zone.watermark(Watermark::Min), zone.watermark(Watermark::Low), zone.watermark(Watermark::High))
}

#[test]
fn min_free_kbytes_and_watermark_scale_factor_recompute_every_zone_as_linux_does() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(1);
    let lowmem: u64 = pgdat.zones().iter().map(Zone::managed_pages).sum();
    let check = |kbytes, factor| {
        for zone in pgdat.zones() {
            assert_eq!(wmarks(zone), linux_wmarks(zone.managed_pages(), lowmem, kbytes, factor), "{}", zone.name());
        }
    };
    let boot = pgdat.min_free_kbytes();
    assert_eq!(boot, mmzone::min_free_kbytes(lowmem));
    check(boot, 10);
    let reserves: Vec<u64> = pgdat.zones().iter().map(|z| z.lowmem_reserve(ZoneType::Normal)).collect();
    pgdat.set_min_free_kbytes(8192).unwrap();
    assert_eq!(pgdat.min_free_kbytes(), 8192);
    check(8192, 10);
    pgdat.set_watermark_scale_factor(1000).unwrap();
    assert_eq!(pgdat.watermark_scale_factor(), 1000);
    check(8192, 1000);
    pgdat.set_min_free_kbytes(0).unwrap();
    check(0, 1000);
    // The lowmem reserves depend on the managed pages only.
    let after: Vec<u64> = pgdat.zones().iter().map(|z| z.lowmem_reserve(ZoneType::Normal)).collect();
    assert_eq!(reserves, after);
}

#[test]
fn out_of_range_watermark_tunables_change_nothing() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(1);
    let before: Vec<(u64, u64, u64)> = pgdat.zones().iter().map(wmarks).collect();
    let kbytes = pgdat.min_free_kbytes();
    assert_eq!(pgdat.set_watermark_scale_factor(0), Err(mmzone::RangeError { min: 1, max: 3000 }));
    assert_eq!(pgdat.set_watermark_scale_factor(3001), Err(mmzone::RangeError { min: 1, max: 3000 }));
    assert_eq!(
        pgdat.set_min_free_kbytes(1 << 31),
        Err(mmzone::RangeError { min: 0, max: mmzone::MAX_MIN_FREE_KBYTES })
    );
    assert_eq!(pgdat.set_vm_swappiness(201), Err(mmzone::RangeError { min: 0, max: 200 }));
    assert_eq!(pgdat.zones().iter().map(wmarks).collect::<Vec<_>>(), before);
    assert_eq!((pgdat.min_free_kbytes(), pgdat.watermark_scale_factor()), (kbytes, 10));
    assert_eq!(pgdat.vm_swappiness(), crate::vmscan::DEFAULT_SWAPPINESS);
    pgdat.set_vm_swappiness(200).unwrap();
    pgdat.set_vm_swappiness(0).unwrap();
    assert_eq!(pgdat.vm_swappiness(), 0);
}

#[test]
fn a_users_min_free_kbytes_outlives_a_smaller_boot_computation() {
    let sim = Sim::flat(64 * MIB);
    let pgdat = sim.pgdat(1);
    let computed = pgdat.min_free_kbytes();
    pgdat.set_min_free_kbytes(computed * 4).unwrap();
    // Linux `calculate_min_free_kbytes` keeps the user's larger value.
    pgdat.init_per_zone_wmark_min();
    assert_eq!(pgdat.min_free_kbytes(), computed * 4);
    pgdat.set_min_free_kbytes(computed / 2).unwrap();
    pgdat.init_per_zone_wmark_min();
    assert_eq!(pgdat.min_free_kbytes(), computed, "a larger computed value wins");
}

/// What the slow path called, in order: the registered reclaim, or the
/// registered compaction at a priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Reclaim,
    Compact(CompactPriority),
}

/// A reclaim that frees nothing yet reports progress, and a compaction
/// that reports `result` (freeing the block it holds, if any, the first
/// time it runs): both log their calls.
struct Recorder {
    log: std::sync::Mutex<Vec<Step>>,
    result: CompactResult,
    block: std::sync::Mutex<Option<(Pfn, u32)>>,
}

impl Recorder {
    fn new(result: CompactResult) -> &'static Recorder {
        Box::leak(Box::new(Recorder {
            log: std::sync::Mutex::new(Vec::new()),
            result,
            block: std::sync::Mutex::new(None),
        }))
    }

    fn log(&self) -> Vec<Step> {
        self.log.lock().unwrap().clone()
    }
}

impl DirectReclaim for Recorder {
    fn try_to_free_pages(&self, _pgdat: &PgData<'_>, _gfp: Gfp, _order: u32) -> u64 {
        self.log.lock().unwrap().push(Step::Reclaim);
        crate::vmscan::SWAP_CLUSTER_MAX
    }

    fn current_is_memalloc(&self) -> bool {
        false
    }
}

impl DirectCompaction for Recorder {
    fn try_to_compact_pages(&self, pgdat: &PgData<'_>, request: &CompactRequest) -> CompactResult {
        self.log.lock().unwrap().push(Step::Compact(request.prio()));
        if let Some((pfn, order)) = self.block.lock().unwrap().take() {
            // SAFETY: the test's block, handed to the recorder and never
            // mapped or pointed into.
            unsafe { pgdat.free_pages(pfn, order) }.unwrap();
        }
        self.result
    }
}

/// A machine whose free memory is all single pages: every page taken,
/// then every even pfn given back. Allocations of order above 0 fail
/// until something frees a larger block.
fn fragmented(pgdat: &PgData<'_>) -> Vec<Pfn> {
    let mut pfns = Vec::new();
    // Below the watermarks too: no larger block stays free in a reserve.
    while let Some(pfn) = pgdat.alloc_pages(QUIET | Gfp::MEMALLOC, 0) {
        pfns.push(pfn);
    }
    let (free, kept): (Vec<Pfn>, Vec<Pfn>) = pfns.into_iter().partition(|pfn| pfn.as_u64() % 2 == 0);
    for pfn in free {
        // SAFETY: the test's page, never mapped or pointed into.
        unsafe { pgdat.free_pages(pfn, 0) }.unwrap();
    }
    pgdat.drain_all_pages();
    kept
}

fn registered(pgdat: &PgData<'_>, result: CompactResult) -> &'static Recorder {
    let recorder = Recorder::new(result);
    pgdat.set_direct_reclaim(recorder);
    pgdat.set_direct_compaction(recorder);
    recorder
}

#[test]
fn a_costly_allocation_compacts_asynchronously_then_reclaims_then_compacts_once_more() {
    use Step::{Compact, Reclaim};
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let _kept = fragmented(&pgdat);
    let recorder = registered(&pgdat, CompactResult::Complete);
    assert!(pgdat.alloc_pages(GFP_KERNEL | QUIET, 4).is_none());
    assert_eq!(
        recorder.log(),
        [Compact(CompactPriority::Async), Reclaim, Compact(CompactPriority::SyncLight)],
        "costly: compaction before reclaim, one round, no retry without __GFP_RETRY_MAYFAIL"
    );
    let ev = |item| pgdat.all_vm_events(item);
    assert_eq!((ev(VmEventItem::CompactStall), ev(VmEventItem::CompactFail)), (2, 2));
    assert_eq!(ev(VmEventItem::CompactSuccess), 0);
    assert_eq!(ev(VmEventItem::AllocstallNormal), 1, "one direct reclaim, by the mask's highest zone");
}

#[test]
fn a_costly_noretry_allocation_gives_up_when_compaction_was_skipped() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let _kept = fragmented(&pgdat);
    let recorder = registered(&pgdat, CompactResult::Skipped);
    assert!(pgdat.alloc_pages(GFP_KERNEL | Gfp::NORETRY | QUIET, 4).is_none());
    assert_eq!(recorder.log(), [Step::Compact(CompactPriority::Async)], "no reclaim after a skipped compaction");
    assert_eq!(pgdat.all_vm_events(VmEventItem::CompactStall), 0, "a skipped compaction is no stall");
}

#[test]
fn a_small_order_allocation_escalates_compaction_priority_after_reclaim() {
    use Step::{Compact, Reclaim};
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let _kept = fragmented(&pgdat);
    let recorder = registered(&pgdat, CompactResult::Complete);
    // Movable and not costly: no compaction before reclaim.
    assert!(pgdat.alloc_pages(GFP_HIGHUSER_MOVABLE | QUIET, 2).is_none());
    assert_eq!(
        recorder.log(),
        [Reclaim, Compact(CompactPriority::SyncLight), Reclaim, Compact(CompactPriority::SyncFull)]
    );
    // Unmovable: an asynchronous compaction first.
    let recorder = Recorder::new(CompactResult::Complete);
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let _kept = fragmented(&pgdat);
    pgdat.set_direct_reclaim(recorder);
    pgdat.set_direct_compaction(recorder);
    assert!(pgdat.alloc_pages(GFP_KERNEL | QUIET, 1).is_none());
    assert_eq!(recorder.log()[..2], [Compact(CompactPriority::Async), Reclaim]);
}

#[test]
fn compaction_that_succeeds_but_loses_the_block_is_retried_up_to_max_compact_retries_per_priority() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let _kept = fragmented(&pgdat);
    let recorder = registered(&pgdat, CompactResult::Success);
    assert!(pgdat.alloc_pages(GFP_HIGHUSER_MOVABLE | QUIET, 2).is_none());
    let log = recorder.log();
    let at = |prio| log.iter().filter(|&&s| s == Step::Compact(prio)).count() as u32;
    assert_eq!(at(CompactPriority::SyncLight), MAX_COMPACT_RETRIES + 1);
    assert_eq!(at(CompactPriority::SyncFull), MAX_COMPACT_RETRIES + 1);
    assert_eq!(at(CompactPriority::Async), 0);
    assert_eq!(pgdat.all_vm_events(VmEventItem::CompactFail), u64::from(2 * (MAX_COMPACT_RETRIES + 1)));
}

#[test]
fn an_allocation_takes_the_block_compaction_freed_and_resets_the_zones_deferral() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let held = pgdat.alloc_pages(GFP_KERNEL, 4).unwrap();
    let _kept = fragmented(&pgdat);
    let recorder = registered(&pgdat, CompactResult::Success);
    *recorder.block.lock().unwrap() = Some((held, 4));
    let zone = pgdat.zone(pgdat.pfn_to_page(held).unwrap().zone());
    crate::compaction::defer_compaction(zone, 4);
    let pfn = pgdat.alloc_pages(GFP_KERNEL, 4).expect("the block compaction freed");
    assert_eq!(pfn, held);
    assert_eq!(recorder.log(), [Step::Compact(CompactPriority::Async)]);
    let ev = |item| pgdat.all_vm_events(item);
    assert_eq!(
        (ev(VmEventItem::CompactStall), ev(VmEventItem::CompactSuccess), ev(VmEventItem::CompactFail)),
        (1, 1, 0)
    );
    assert_eq!(zone.compact_defer_shift.load(Relaxed), 0, "the allocation succeeded: deferral reset");
    assert_eq!(zone.compact_order_failed.load(Relaxed), 5);
    // SAFETY: the test's block, never mapped or pointed into.
    unsafe { pgdat.free_pages(pfn, 4) }.unwrap();
}

#[test]
fn an_allocation_that_may_not_block_neither_compacts_nor_reclaims_but_tells_kswapd_its_order() {
    let sim = Sim::flat(32 * MIB);
    let pgdat = sim.pgdat(1);
    let _kept = fragmented(&pgdat);
    let recorder = registered(&pgdat, CompactResult::Complete);
    assert!(pgdat.alloc_pages(GFP_NOWAIT, 3).is_none());
    assert!(pgdat.alloc_pages(GFP_NOWAIT, 2).is_none());
    assert!(recorder.log().is_empty());
    assert_eq!(pgdat.take_kswapd_order(), (3, ZoneType::Normal), "the highest order kswapd was woken for");
    assert_eq!(pgdat.take_kswapd_order(), (0, ZoneType::Normal), "taken");
}
