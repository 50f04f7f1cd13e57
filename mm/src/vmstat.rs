//! Event counters and reports on the page allocator in Linux's formats
//! (Linux `mm/vmstat.c`'s per-CPU `vm_event_states`, /proc/vmstat,
//! /proc/buddyinfo and /proc/pagetypeinfo, and `mm/show_mem.c`'s per-zone
//! free-area line).
//!
//! Event counters are per CPU, as Linux's are: each CPU adds to its own
//! [`VmEventState`] (the kernel keeps them in per-CPU memory), without a
//! shared cache line; readers sum over CPUs (Linux `all_vm_events`).
//!
//! Each report is a value implementing `Display`, so the kernel prints it to
//! the console and host tests compare it with text, byte for byte in the
//! layout Linux's `seq_printf` formats produce.

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::mmzone::{FreeCounts, MIGRATE_TYPES, MigrateType, NR_PAGE_ORDERS};
use crate::page::{PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER};
use crate::page_alloc::PgData;

/// The events the page allocator counts (Linux `enum vm_event_item`,
/// its page-allocator part).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmEventItem {
    /// Pages allocated from ZONE_DMA (`PGALLOC_DMA`).
    PgallocDma,
    /// Pages allocated from ZONE_DMA32 (`PGALLOC_DMA32`).
    PgallocDma32,
    /// Pages allocated from ZONE_NORMAL (`PGALLOC_NORMAL`).
    PgallocNormal,
    /// Pages freed (`PGFREE`).
    Pgfree,
}

/// Number of [`VmEventItem`]s.
pub const NR_VM_EVENT_ITEMS: usize = 4;

impl VmEventItem {
    /// Every item, in /proc/vmstat order.
    pub const ALL: [VmEventItem; NR_VM_EVENT_ITEMS] =
        [VmEventItem::PgallocDma, VmEventItem::PgallocDma32, VmEventItem::PgallocNormal, VmEventItem::Pgfree];

    /// The /proc/vmstat name (Linux `vmstat_text`).
    pub const fn name(self) -> &'static str {
        match self {
            VmEventItem::PgallocDma => "pgalloc_dma",
            VmEventItem::PgallocDma32 => "pgalloc_dma32",
            VmEventItem::PgallocNormal => "pgalloc_normal",
            VmEventItem::Pgfree => "pgfree",
        }
    }
}

/// One CPU's event counts (Linux `struct vm_event_state`). All-zero
/// memory is a valid, empty state.
#[derive(Debug, Default)]
pub struct VmEventState([AtomicU64; NR_VM_EVENT_ITEMS]);

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

/// /proc/vmstat: free pages and the event counters summed over CPUs.
pub struct Vmstat<'p, 'a>(pub &'p PgData<'a>);

impl fmt::Display for Vmstat<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "nr_free_pages {}", self.0.nr_free_pages())?;
        for item in VmEventItem::ALL {
            writeln!(f, "{} {}", item.name(), self.0.all_vm_events(item))?;
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
