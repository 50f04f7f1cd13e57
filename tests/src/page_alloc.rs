//! The physical page allocator on real memory: memblock's hand-over, every
//! free page allocated and verified at 128 MiB and 4 GiB, random orders,
//! exhaustion, zone modifiers and bad-page detection; and the allocator's
//! benchmarks.
//!
//! There is no heap yet, so the tests keep their allocated blocks in a list
//! threaded through the blocks themselves ([`BlockList`]).

use kernel::arch::x86_64::paging;
use kernel::boot::DirectMap;
use kernel::kbench::Bencher;
use kernel::mm as kmm;
use ktest_macros::{kbench, ktest};
use mm::arch::PhysMemory;
use mm::gfp::{GFP_DMA, GFP_DMA32, GFP_KERNEL, Gfp};
use mm::mmzone::{MAX_DMA_PFN, MAX_DMA32_PFN, MAX_PAGE_ORDER, ZoneType};
use mm::page_alloc::BadPageReason;
use mm::page_flags::PageFlags;
use mm::{PAGE_SIZE, Pfn, PhysAddr, VirtAddr};

/// Every free page, watermarks ignored, failures quiet, and no reclaim
/// or kswapd wakeup: a page reclaim frees behind the test's back (kswapd
/// runs on) would make the free count move after the last failure.
const EVERYTHING: Gfp =
    GFP_KERNEL.difference(Gfp::DIRECT_RECLAIM.union(Gfp::KSWAPD_RECLAIM)).union(Gfp::MEMALLOC).union(Gfp::NOWARN);

const WORDS_PER_PAGE: usize = (PAGE_SIZE / 8) as usize;

/// The pattern word `i` of the block at `pfn` holds: distinct for every
/// block and offset, so two blocks sharing a page cannot both verify.
fn pattern(pfn: Pfn, i: usize) -> u64 {
    (pfn.as_u64() << 24) ^ (i as u64) ^ 0x5a5a_0000_0000_0000
}

/// The words of a block we own.
fn block_words(pfn: Pfn, order: u32) -> &'static mut [u64] {
    let len = WORDS_PER_PAGE << order;
    // SAFETY: the block was just allocated to the caller, who is its only
    // user until it frees it; the direct map covers all RAM, page aligned,
    // so the 2^order pages are mapped, writable and u64-aligned.
    unsafe { core::slice::from_raw_parts_mut(kmm::page_address(pfn).as_mut_ptr::<u64>(), len) }
}

/// Allocated blocks, linked through their first two words (next pfn + 1,
/// next order); every `stride`-th word of the rest holds its pattern.
///
/// Under TCG every guest memory access costs tens of host instructions, so
/// the 4 GiB tests write one word per 64-byte line rather than every word:
/// still a distinct pattern in every page, found again on verification,
/// at an eighth of the cost.
struct BlockList {
    head: Option<(Pfn, u32)>,
    blocks: u64,
    pages: u64,
    stride: usize,
}

impl BlockList {
    const fn new(stride: usize) -> Self {
        BlockList { head: None, blocks: 0, pages: 0, stride }
    }

    fn push(&mut self, pfn: Pfn, order: u32) {
        let words = block_words(pfn, order);
        let (next, next_order) = self.head.map_or((0, 0), |(p, o)| (p.as_u64() + 1, u64::from(o)));
        words[0] = next;
        words[1] = next_order;
        for (i, w) in words.iter_mut().enumerate().skip(2).step_by(self.stride) {
            *w = pattern(pfn, i);
        }
        self.head = Some((pfn, order));
        self.blocks += 1;
        self.pages += 1 << order;
    }

    fn next(pfn: Pfn, order: u32) -> Option<(Pfn, u32)> {
        let words = block_words(pfn, order);
        (words[0] != 0).then(|| (Pfn::new(words[0] - 1), words[1] as u32))
    }

    /// Checks every block's pattern; returns the blocks seen.
    fn verify(&self) -> u64 {
        let mut seen = 0;
        let mut cursor = self.head;
        while let Some((pfn, order)) = cursor {
            let words = block_words(pfn, order);
            if let Some(i) = (2..words.len()).step_by(self.stride).find(|&i| words[i] != pattern(pfn, i)) {
                panic!("block {pfn:?} order {order}: word {i} is {:#x}, another block wrote it", words[i]);
            }
            seen += 1;
            cursor = Self::next(pfn, order);
        }
        seen
    }

    fn free_all(&mut self) {
        while let Some((pfn, order)) = self.head {
            self.head = Self::next(pfn, order);
            // SAFETY: the hoard owns each block; the walk read its link word before the free.
            unsafe { kmm::free_pages(pfn, order) }.unwrap_or_else(|bad| panic!("{bad}"));
        }
        self.blocks = 0;
        self.pages = 0;
    }
}

/// A tiny xorshift generator: reproducible random orders without a heap.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn assert_back_to_boot_state() {
    let pgdat = kmm::pgdat();
    for zone in ZoneType::ALL {
        if let Err(e) = pgdat.check_zone(zone) {
            panic!("zone {}: {e}", zone.name());
        }
    }
    // Slab caches keep empty slabs around; give them back first.
    if let Some(slab) = kernel::slab::slab() {
        slab.shrink_all();
    }
    let boot = kmm::boot_free_blocks().expect("boot snapshot");
    assert_eq!(&kmm::free_blocks(), boot, "buddyinfo differs from the boot-time snapshot");
}

/// Allocates every free page one at a time, checks none is reserved or
/// handed out twice, verifies every pattern, frees all.
fn every_free_page_once(stride: usize) {
    let pgdat = kmm::pgdat();
    pgdat.lru_add_drain_all();
    pgdat.drain_all_pages();
    let free_at_start = pgdat.nr_free_pages();
    let memblock = kmm::memblock().expect("memblock kept");
    let mut list = BlockList::new(stride);
    while let Some(pfn) = kmm::alloc_pages(EVERYTHING, 0) {
        assert!(!memblock.is_region_reserved(pfn.phys(), PAGE_SIZE), "{pfn:?} is memblock-reserved");
        list.push(pfn, 0);
    }
    assert_eq!(list.pages, free_at_start, "every free page, and only those, was handed out");
    assert_eq!(pgdat.nr_free_pages(), 0);
    assert_eq!(list.verify(), list.blocks);
    list.free_all();
    assert_back_to_boot_state();
}

/// Allocates blocks of random orders until even order 0 fails, verifies,
/// frees all.
fn random_orders_fill_memory(seed: u64, stride: usize) {
    kmm::pgdat().lru_add_drain_all();
    let mut rng = XorShift(seed);
    let mut list = BlockList::new(stride);
    let mut per_order = [0u64; MAX_PAGE_ORDER as usize + 1];
    loop {
        let order = (rng.next() % u64::from(MAX_PAGE_ORDER + 1)) as u32;
        match (0..=order).rev().find_map(|o| kmm::alloc_pages(EVERYTHING, o).map(|pfn| (pfn, o))) {
            Some((pfn, o)) => {
                assert_eq!(pfn.as_u64() % (1 << o), 0, "order-{o} block {pfn:?} misaligned");
                per_order[o as usize] += 1;
                list.push(pfn, o);
            }
            None => break,
        }
    }
    assert!(per_order.iter().filter(|&&n| n > 0).count() > 5, "orders were not mixed: {per_order:?}");
    assert_eq!(kmm::pgdat().nr_free_pages(), 0);
    assert_eq!(list.verify(), list.blocks);
    list.free_all();
    assert_back_to_boot_state();
}

#[ktest(mem = 128, timeout = 120)]
fn every_free_page_allocated_once_holds_its_pattern_at_128m() {
    every_free_page_once(1);
}

#[ktest(mem = 4096, timeout = 600)]
fn every_free_page_allocated_once_holds_its_pattern_at_4g() {
    assert!(kmm::pgdat().zone(ZoneType::Normal).managed_pages() > 0, "4 GiB reaches ZONE_NORMAL");
    every_free_page_once(8);
}

#[ktest(mem = 128, timeout = 120)]
fn random_order_blocks_fill_memory_and_merge_back_at_128m() {
    random_orders_fill_memory(0x9e37_79b9_7f4a_7c15, 1);
}

#[ktest(mem = 4096, timeout = 600)]
fn random_order_blocks_fill_memory_and_merge_back_at_4g() {
    random_orders_fill_memory(0x2545_f491_4f6c_dd1d, 8);
}

#[ktest(mem = 128)]
fn free_lists_are_consistent_and_reserved_memory_stays_reserved() {
    let pgdat = kmm::pgdat();
    for zone in ZoneType::ALL {
        pgdat.check_zone(zone).unwrap_or_else(|e| panic!("zone {}: {e}", zone.name()));
    }
    // The first MiB and the kernel image are reserved, as are the pages
    // holding the memory map itself.
    let page = |pfn: u64| pgdat.pfn_to_page(Pfn::new(pfn)).expect("pfn in the memory map");
    assert!(page(0).test(PageFlags::RESERVED) && page(255).test(PageFlags::RESERVED));
    let (kernel, _) = kernel::boot::params().kernel_phys;
    assert!(page(kernel.pfn().as_u64()).test(PageFlags::RESERVED));
    let map = pgdat.pfn_to_page(Pfn::new(0)).expect("pfn 0") as *const _ as u64;
    let map = VirtAddr::new(map).expect("canonical");
    let map_pfn = DirectMap.virt_to_phys(map).expect("the memory map is in the direct map").pfn().as_u64();
    assert!(page(map_pfn).test(PageFlags::RESERVED), "the memory map's own pages are reserved");
    // Every present page is either managed by the buddy allocator or
    // reserved, never both, never neither.
    let managed: u64 = pgdat.zones().iter().map(|z| z.managed_pages()).sum();
    let present: u64 = pgdat.zones().iter().map(|z| z.present_pages()).sum();
    let memblock = kmm::memblock().expect("memblock kept");
    let reserved: u64 = memblock
        .memory
        .regions()
        .iter()
        .flat_map(|r| r.base.as_u64().div_ceil(PAGE_SIZE)..(r.base.as_u64() + r.size) / PAGE_SIZE)
        .filter(|&pfn| page(pfn).test(PageFlags::RESERVED))
        .count() as u64;
    assert_eq!(managed + reserved, present, "managed {managed} + reserved {reserved} != present {present}");
}

/// Whether the frame at `phys` is reserved (frames past the memory map,
/// firmware holes, count as reserved: the allocator cannot hand them out).
fn frame_is_reserved(phys: u64) -> bool {
    kmm::pgdat().pfn_to_page(PhysAddr::new(phys).pfn()).is_none_or(|p| p.test(PageFlags::RESERVED))
}

/// Checks that every page-table frame reachable from `table` (a
/// level-`level` table) is a page-table page the allocator cannot hand out;
/// returns how many there were.
fn check_tables_owned(table: u64, level: u32) -> u64 {
    const PRESENT: u64 = 1;
    const HUGE: u64 = 1 << 7;
    const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
    let page = kmm::pgdat().pfn_to_page(PhysAddr::new(table).pfn()).expect("page tables are in RAM");
    assert!(page.test(PageFlags::TABLE), "level-{level} page table at {table:#x} is not a PageTable page");
    assert!(page.refcount() > 0, "level-{level} page table at {table:#x} is free");
    let mut tables = 1;
    if level == 1 {
        return tables;
    }
    for i in 0..512 {
        // SAFETY: `table` is a live page-table frame (from CR3 or a present
        // non-leaf entry); the direct map covers it; reading an aligned u64
        // entry has no side effects.
        let entry = unsafe { ((kernel::PAGE_OFFSET + table) as *const u64).add(i).read_volatile() };
        if entry & PRESENT != 0 && (level == 4 || entry & HUGE == 0) {
            tables += check_tables_owned(entry & ADDR_MASK, level - 1);
        }
    }
    tables
}

#[ktest(mem = 128)]
fn page_tables_boot_info_and_stack_are_not_free_memory() {
    let tables = check_tables_owned(kernel::arch::x86_64::cpu::read_cr3_phys(), 4);
    assert!(tables >= 4, "walked only {tables} page tables");
    let params = kernel::boot::params();
    let phys_of = |virt: u64| paging::translate(virt).expect("mapped").phys.as_u64();
    assert!(frame_is_reserved(params.boot_info_phys.as_u64()), "boot info is not reserved");
    let stack = &tables as *const u64 as u64;
    assert!(frame_is_reserved(phys_of(stack)), "the boot stack is not reserved");
}

#[ktest(mem = 128)]
fn exhaustion_returns_none_without_panicking() {
    let mut list = BlockList::new(1);
    while let Some(pfn) = kmm::alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0) {
        list.push(pfn, 0);
    }
    assert!(list.pages > 0);
    // GFP_KERNEL stops at the min watermark; the rest is the reserve.
    let pgdat = kmm::pgdat();
    assert!(pgdat.nr_free_pages() > 0, "the reserve below min is kept");
    // Without __GFP_NOWARN the failure is logged with the free lists.
    assert_eq!(kmm::alloc_pages(GFP_KERNEL, 0), None);
    assert_eq!(kmm::alloc_pages(GFP_KERNEL, MAX_PAGE_ORDER), None);
    assert_eq!(kmm::alloc_pages(GFP_KERNEL | Gfp::NOWARN, MAX_PAGE_ORDER + 1), None);
    list.free_all();
    assert_back_to_boot_state();
}

#[ktest(mem = 128)]
fn double_free_is_detected_and_reported() {
    let pgdat = kmm::pgdat();
    let bad_before = pgdat.bad_pages();
    let pfn = kmm::alloc_pages(GFP_KERNEL, 0).expect("a page");
    // SAFETY: the test allocated the block; nothing maps it or points into it any more.
    unsafe { kmm::free_pages(pfn, 0) }.expect("first free");
    // SAFETY: nothing maps or points into the page; the allocator refuses this double free (under test).
    let err = unsafe { kmm::free_pages(pfn, 0) }.expect_err("second free must be refused");
    assert_eq!((err.pfn, err.reason), (pfn, BadPageReason::DoubleFree));
    assert_eq!(pgdat.bad_pages(), bad_before + 1);
    // The allocator is unharmed: the page is free exactly once.
    assert_back_to_boot_state();
}

#[ktest(mem = 128)]
fn freeing_with_the_wrong_order_is_detected() {
    let pgdat = kmm::pgdat();
    let bad_before = pgdat.bad_pages();
    let pfn = kmm::alloc_pages(GFP_KERNEL, 2).expect("an order-2 block");
    // SAFETY: nothing maps or points into the block; the allocator refuses the wrong order (under test).
    let err = unsafe { kmm::free_pages(pfn, 0) }.expect_err("wrong order must be refused");
    assert_eq!(err.reason, BadPageReason::WrongOrder { freed: 0, allocated: 2 });
    assert_eq!(pgdat.bad_pages(), bad_before + 1);
    // Reported pages are leaked by design (Linux's bad_page): give the
    // block its reference back and free it properly.
    pgdat.pfn_to_page(pfn).expect("pfn").get();
    // SAFETY: the test allocated the block; nothing maps it or points into it any more.
    unsafe { kmm::free_pages(pfn, 2) }.expect("correct free");
    assert_back_to_boot_state();
}

#[ktest(mem = 4096, timeout = 120)]
fn zone_modifiers_place_pages_below_16m_4g_or_anywhere() {
    let dma = kmm::alloc_pages_owned(GFP_DMA, 0).expect("a DMA page");
    assert!(dma.pfn().as_u64() < MAX_DMA_PFN);
    let dma32 = kmm::alloc_pages_owned(GFP_DMA32, 3).expect("a DMA32 block");
    assert!(dma32.pfn().as_u64() + 8 <= MAX_DMA32_PFN && dma32.pfn().as_u64() >= MAX_DMA_PFN);
    let normal = kmm::alloc_pages_owned(GFP_KERNEL, 0).expect("a page");
    assert!(normal.pfn().as_u64() >= MAX_DMA32_PFN, "GFP_KERNEL prefers ZONE_NORMAL: {normal:?}");
    for pages in [dma, dma32, normal] {
        pages.free().expect("free");
    }
    assert_back_to_boot_state();
}

#[ktest(mem = 128)]
fn gfp_zero_returns_zeroed_pages() {
    let pfn = kmm::alloc_pages(GFP_KERNEL, 1).expect("a block");
    block_words(pfn, 1).fill(u64::MAX);
    // SAFETY: the test allocated the block; nothing maps it or points into it any more.
    unsafe { kmm::free_pages(pfn, 1) }.expect("free");
    let zeroed = kmm::alloc_pages(GFP_KERNEL | Gfp::ZERO, 1).expect("a zeroed block");
    assert_eq!(zeroed, pfn, "the per-cpu list returns the block just freed");
    assert!(block_words(zeroed, 1).iter().all(|&w| w == 0), "__GFP_ZERO left data behind");
    // SAFETY: the test allocated the block; nothing maps it or points into it any more.
    unsafe { kmm::free_pages(zeroed, 1) }.expect("free");
}

#[ktest(mem = 128)]
fn node_state_lives_in_per_cpu_memory_and_meminfo_reports_it() {
    use kernel::percpu::{self as kpcpu, UNIT_SIZE};
    use kernel::vmalloc::{THREAD_SIZE, VMALLOC_TOTAL};
    use mm::vmstat::NodeStatItem;
    let pgdat = kmm::pgdat();
    let cpu = kpcpu::smp_processor_id();
    let stats = pgdat.node_stats(cpu as usize).expect("this CPU's node state");
    let addr = core::ptr::from_ref(stats) as u64;
    let unit = kpcpu::per_cpu_offset(cpu).wrapping_add(kpcpu::section_start());
    assert!((unit..unit + UNIT_SIZE).contains(&addr), "node state at {addr:#x} outside CPU{cpu}'s unit {unit:#x}");
    // A kernel stack counts while it lives.
    let stacks = || pgdat.node_page_state(NodeStatItem::NrKernelStackKb);
    let before = stacks();
    let stack = kernel::vmalloc::alloc_thread_stack().expect("a stack");
    assert_eq!(stacks(), before + THREAD_SIZE / 1024);
    kernel::vmalloc::free_thread_stack(stack).expect("free the stack");
    assert_eq!(stacks(), before);
    // Every table of the kernel tree counts (user trees add theirs).
    let kernel_tables = kernel::arch::x86_64::pgtable::kernel_pgtable().expect("kernel page tables").nr_tables();
    assert!(pgdat.node_page_state(NodeStatItem::NrPagetable) >= kernel_tables);
    let text = alloc::format!("{}", kmm::meminfo());
    let kb = |name: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in\n{text}"));
        line[16..line.len() - 3].trim().parse().expect("a number")
    };
    assert_eq!(kb("MemTotal:"), pgdat.totalram_pages() * (PAGE_SIZE / 1024));
    assert_eq!(kb("VmallocTotal:"), VMALLOC_TOTAL >> 10);
    assert!(kb("VmallocUsed:") >= kb("KernelStack:"), "kernel stacks are vmalloc'd");
    assert!(kb("KernelStack:") > 0, "this task's stack");
    assert!(kb("Percpu:") >= UNIT_SIZE / 1024, "the first chunk");
    assert!(kb("SUnreclaim:") > 0 && kb("Slab:") >= kb("SUnreclaim:"));
    assert!(kb("PageTables:") >= kernel_tables * (PAGE_SIZE / 1024));
    // MemAvailable is free less the reserves plus part of the reclaimable
    // slab; no page cache adds to it. So it stays at or below MemFree while
    // no SLAB_RECLAIM_ACCOUNT cache has slabs (none does in this kernel;
    // one with more reclaimable slab than the reserves would lift it above).
    assert!(
        kb("MemAvailable:") <= kb("MemFree:"),
        "with no SLAB_RECLAIM_ACCOUNT slabs, available is free less reserves"
    );
    log::info!("/proc/meminfo:\n{text}");
    log::info!("/proc/zoneinfo:\n{}", mm::vmstat::Zoneinfo(pgdat));
}

// Benchmarks: the cost of an alloc+free pair on each path, and of cycling
// all of memory. `cargo xtask bench page_alloc` runs them.

/// Allocates and frees one block of `order` with `gfp`: one operation.
fn alloc_free_pair(gfp: Gfp, order: u32) -> bool {
    match kmm::alloc_pages(gfp, order) {
        // SAFETY: allocated just above and never used.
        Some(pfn) => unsafe { kmm::free_pages(pfn, order) }.is_ok(),
        None => false,
    }
}

/// Order-0 alloc+free through the per-cpu lists (the common case: the
/// page comes back to the list it left).
#[kbench]
fn alloc_free_order0_pcp(b: &mut Bencher<'_>) {
    b.iter(|| alloc_free_pair(GFP_KERNEL, 0));
}

/// Order-0 alloc+free with the per-cpu lists disabled: zone lock, buddy
/// split and merge every time.
#[kbench]
fn alloc_free_order0_buddy(b: &mut Bencher<'_>) {
    let pgdat = kmm::pgdat();
    for zone in ZoneType::ALL {
        pgdat.zone_pcp_disable(zone);
    }
    b.iter(|| alloc_free_pair(GFP_KERNEL, 0));
    for zone in ZoneType::ALL {
        pgdat.zone_pcp_enable(zone);
    }
}

/// Alloc+free per order 0..=10 (orders up to 3 through the per-cpu
/// lists): the scaling curve of the buddy allocator.
#[kbench]
fn alloc_free_order(b: &mut Bencher<'_>) {
    for order in 0..=MAX_PAGE_ORDER {
        b.iter_with(u64::from(order), || alloc_free_pair(GFP_KERNEL, order));
    }
}

/// One operation allocates every free page in order-0 pages, then frees
/// them all (divide by the machine's free pages for a per-page figure).
#[kbench]
fn alloc_free_all_memory_order0(b: &mut Bencher<'_>) {
    b.iter(|| {
        let mut head: Option<Pfn> = None;
        let mut pages = 0u64;
        while let Some(pfn) = kmm::alloc_pages(EVERYTHING, 0) {
            block_words(pfn, 0)[0] = head.map_or(0, |p| p.as_u64() + 1);
            head = Some(pfn);
            pages += 1;
        }
        while let Some(pfn) = head {
            let next = block_words(pfn, 0)[0];
            head = (next != 0).then(|| Pfn::new(next - 1));
            // SAFETY: the list owns each page; its link word was read before the free.
            let _ = unsafe { kmm::free_pages(pfn, 0) };
        }
        pages
    });
}
