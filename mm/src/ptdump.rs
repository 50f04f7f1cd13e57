//! Page-table dumps and the W+X check (Linux `mm/ptdump.c` and
//! `arch/x86/mm/dump_pagetables.c`: /sys/kernel/debug/page_tables/kernel
//! and `ptdump_check_wx`).
//!
//! The dump merges neighbouring leaves of the same size and protection into
//! one line, as Linux's `note_page` does, in Linux's column layout:
//!
//! ```text
//! ---[ Direct map ]---
//! 0xffff888000000000-0xffff888040000000           1G     RW         PSE     GLB NX pud
//! ```
//!
//! Differences: holes are not printed (Linux prints them as blank-flag
//! lines), and the section markers come from the caller.

#![forbid(unsafe_code)]

use core::fmt::{self, Write};
use core::ops::ControlFlow;

use crate::addr::VirtAddr;
use crate::pagewalk::{PageWalkOps, walk_page_range};
use crate::pgtable::{Leaf, PageSize, PageTable, PgProt, PteFormat};

/// A named region of the address space, printed as `---[ name ]---` before
/// the first line at or above its address (Linux `struct addr_marker`).
#[derive(Clone, Copy, Debug)]
pub struct AddrMarker {
    /// Start of the region.
    pub start: u64,
    /// Its name.
    pub name: &'static str,
}

/// One merged run of leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    start: u64,
    end: u64,
    prot: PgProt,
    size: PageSize,
}

struct Dumper<'w, 'm, W: Write> {
    out: &'w mut W,
    markers: &'m [AddrMarker],
    next_marker: usize,
    run: Option<Run>,
    result: fmt::Result,
}

impl<W: Write> Dumper<'_, '_, W> {
    fn flush(&mut self) {
        let Some(run) = self.run.take() else { return };
        while let Some(m) = self.markers.get(self.next_marker).filter(|m| m.start <= run.start) {
            self.result = self.result.and_then(|()| writeln!(self.out, "---[ {} ]---", m.name));
            self.next_marker += 1;
        }
        let bytes = run.end.wrapping_sub(run.start);
        let (amount, unit) = match bytes {
            b if b % (1 << 30) == 0 => (b >> 30, 'G'),
            b if b % (1 << 20) == 0 => (b >> 20, 'M'),
            b => (b >> 10, 'K'),
        };
        let p = run.prot;
        let flag = |f: PgProt, set: &'static str, clear: &'static str| if p.contains(f) { set } else { clear };
        // Linux's printk_prot columns, each with its trailing space; PAT is
        // never set by us.
        let huge = if run.size == PageSize::Size4K { "    " } else { "PSE " };
        let level = run.size.level().name();
        self.result = self.result.and_then(|()| {
            writeln!(
                self.out,
                "{:#018x}-{:#018x}   {amount:>9}{unit} {}{}{}{}{huge}    {}{}{level}",
                run.start,
                run.end,
                flag(PgProt::USER, "USR ", "    "),
                flag(PgProt::WRITE, "RW ", "ro "),
                flag(PgProt::WRITE_THROUGH, "PWT ", "    "),
                flag(PgProt::NO_CACHE, "PCD ", "    "),
                flag(PgProt::GLOBAL, "GLB ", "    "),
                flag(PgProt::EXEC, "x  ", "NX "),
            )
        });
    }
}

/// Protection bits the dump distinguishes (accessed/dirty are the CPU's
/// business and would split runs arbitrarily).
const SHOWN: PgProt = PgProt::WRITE
    .union(PgProt::EXEC)
    .union(PgProt::USER)
    .union(PgProt::GLOBAL)
    .union(PgProt::WRITE_THROUGH)
    .union(PgProt::NO_CACHE);

impl<W: Write> PageWalkOps for Dumper<'_, '_, W> {
    fn leaf(&mut self, start: u64, end: u64, leaf: Leaf) -> ControlFlow<()> {
        let prot = leaf.prot & SHOWN;
        match &mut self.run {
            Some(run) if run.end == start && run.prot == prot && run.size == leaf.size => run.end = end,
            _ => {
                self.flush();
                self.run = Some(Run { start, end, prot, size: leaf.size });
            }
        }
        if self.result.is_err() { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }

    fn hole(&mut self, _start: u64, _end: u64, _level: crate::pgtable::Level) -> ControlFlow<()> {
        self.flush();
        ControlFlow::Continue(())
    }
}

/// Writes the mappings of `[start, end)` in Linux's page-table dump format.
pub fn ptdump<F: PteFormat>(
    pt: &PageTable<'_, F>,
    start: VirtAddr,
    end: u64,
    markers: &[AddrMarker],
    out: &mut impl Write,
) -> fmt::Result {
    let mut dumper = Dumper { out, markers, next_marker: 0, run: None, result: Ok(()) };
    let _ = walk_page_range(pt, start, end, &mut dumper);
    dumper.flush();
    dumper.result
}

/// What [`check_wx`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WxReport {
    /// 4 KiB pages mapped both writable and executable.
    pub wx_pages: u64,
    /// The first such address.
    pub first: Option<u64>,
    /// Pages checked.
    pub checked_pages: u64,
}

struct WxChecker(WxReport);

impl PageWalkOps for WxChecker {
    fn leaf(&mut self, start: u64, end: u64, leaf: Leaf) -> ControlFlow<()> {
        let pages = (end - start) / crate::addr::PAGE_SIZE;
        self.0.checked_pages += pages;
        if leaf.prot.contains(PgProt::WRITE | PgProt::EXEC) {
            self.0.wx_pages += pages;
            self.0.first.get_or_insert(start);
        }
        ControlFlow::Continue(())
    }
}

/// Counts writable+executable pages in `[start, end)` (Linux
/// `ptdump_check_wx`, which prints "Checked W+X mappings: passed, no W+X
/// pages found" or the failure count).
pub fn check_wx<F: PteFormat>(pt: &PageTable<'_, F>, start: VirtAddr, end: u64) -> WxReport {
    let mut checker = WxChecker(WxReport::default());
    let _ = walk_page_range(pt, start, end, &mut checker);
    checker.0
}
