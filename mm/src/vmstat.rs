//! Reports on the page allocator in Linux's formats (Linux `mm/vmstat.c`'s
//! /proc/buddyinfo and /proc/pagetypeinfo, and `mm/show_mem.c`'s per-zone
//! free-area line).
//!
//! Each report is a value implementing `Display`, so the kernel prints it to
//! the console and host tests compare it with text, byte for byte in the
//! layout Linux's `seq_printf` formats produce.

use core::fmt;

use crate::mmzone::{FreeCounts, MIGRATE_TYPES, MigrateType, NR_PAGE_ORDERS};
use crate::page::{PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER};
use crate::page_alloc::PgData;

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
