//! The console's commands that make memory move: `alloc`, `free`,
//! `stress`, `drop_caches` (Linux's `/proc/sys/vm/drop_caches`,
//! `fs/drop_caches.c`) and `compact` (`/proc/sys/vm/compact_memory`).
//!
//! Every allocation is filled with a pattern derived from its id and
//! checked when it is freed, so a page handed out twice, a stray write or
//! a wrong mapping shows up as a broken pattern.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use mm::gfp::{GFP_HIGHUSER_MOVABLE, GFP_KERNEL, Gfp};
use mm::mmzone::MAX_PAGE_ORDER;
use mm::page::PAGEBLOCK_ORDER;
use mm::vmstat::VmEventItem;
use mm::{PAGE_SIZE, Pfn, VirtAddr};

use super::{CmdError, Flow, Shell};

type Res = Result<Flow, CmdError>;

/// Which allocator an allocation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The buddy allocator: 2^order pages (`alloc_pages`).
    Pages {
        /// First frame.
        pfn: Pfn,
        /// Order.
        order: u32,
    },
    /// `kmalloc`.
    Kmalloc,
    /// `vmalloc`.
    Vmalloc,
}

/// Memory the console holds, filled with its pattern.
#[derive(Debug)]
pub struct Allocation {
    /// The console's number for it.
    pub id: u32,
    /// Where it came from.
    pub kind: Kind,
    /// Its kernel address.
    pub addr: VirtAddr,
    /// Its size in bytes.
    pub size: usize,
}

impl Allocation {
    /// Allocates `size` bytes of `kind` (`Pages`' fields are ignored:
    /// the order is the smallest that holds `size`) and fills them.
    pub fn new(id: u32, kind: Kind, size: usize, gfp: Gfp) -> Result<Allocation, CmdError> {
        let (kind, addr, size) = match kind {
            Kind::Pages { .. } => {
                let pages = (size as u64).div_ceil(PAGE_SIZE).max(1);
                let order = pages.next_power_of_two().trailing_zeros();
                if order > MAX_PAGE_ORDER {
                    return Err(CmdError::TooLarge("larger than the largest buddy block (4 MiB): use vmalloc"));
                }
                let pfn = crate::mm::alloc_pages(gfp, order).ok_or(CmdError::NoMemory("alloc_pages"))?;
                (Kind::Pages { pfn, order }, crate::mm::page_address(pfn), (PAGE_SIZE << order) as usize)
            }
            Kind::Kmalloc => {
                let slab = crate::slab::slab().ok_or(CmdError::Unavailable("the slab allocator is not up"))?;
                let ptr = slab.kmalloc(size, gfp).ok_or(CmdError::NoMemory("kmalloc"))?;
                (Kind::Kmalloc, VirtAddr::expect_canonical(ptr.as_ptr() as u64), size)
            }
            Kind::Vmalloc => {
                let addr = crate::vmalloc::vmalloc(size as u64).map_err(|_| CmdError::NoMemory("vmalloc"))?;
                (Kind::Vmalloc, addr, size)
            }
        };
        let mut a = Allocation { id, kind, addr, size };
        a.fill();
        Ok(a)
    }

    /// The allocation's bytes.
    fn bytes(&self) -> &[u8] {
        // SAFETY: `addr` is the start of `size` bytes this allocation owns
        // (from alloc_pages through the direct map, kmalloc or vmalloc)
        // until `release` frees them; only `fill` writes them, before any
        // shared view exists.
        unsafe { core::slice::from_raw_parts(self.addr.as_ptr::<u8>(), self.size) }
    }

    /// The pattern's byte at `offset`.
    fn pattern(&self, offset: usize) -> u8 {
        let x = (self.id as usize).wrapping_mul(0x9e37_79b9) ^ offset ^ (offset >> 8);
        x as u8
    }

    fn fill(&mut self) {
        // SAFETY: as in `bytes`; `&mut self` excludes any other view.
        let bytes = unsafe { core::slice::from_raw_parts_mut(self.addr.as_mut_ptr::<u8>(), self.size) };
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = self.pattern(i);
        }
    }

    /// The first byte that does not hold the pattern.
    pub fn check(&self) -> Result<(), CmdError> {
        match self.bytes().iter().enumerate().position(|(i, &b)| b != self.pattern(i)) {
            None => Ok(()),
            Some(offset) => Err(CmdError::Corrupt { id: self.id, offset }),
        }
    }

    /// Frees the memory.
    pub fn release(self) {
        match self.kind {
            Kind::Pages { pfn, order } => {
                // SAFETY: the block came from alloc_pages for this
                // allocation alone and is freed once, here, as `self` is
                // consumed; `bytes` borrows of it ended with their callers.
                if let Err(e) = unsafe { crate::mm::free_pages(pfn, order) } {
                    log::error!("console: allocation #{}: {e:?}", self.id);
                }
            }
            Kind::Kmalloc => {
                if let Some(slab) = crate::slab::slab() {
                    // SAFETY: the pointer came from this slab's kmalloc and
                    // is freed once, here, as `self` is consumed.
                    if let Err(e) = unsafe { slab.kfree(self.addr.as_mut_ptr::<u8>()) } {
                        log::error!("console: allocation #{}: {e:?}", self.id);
                    }
                }
            }
            Kind::Vmalloc => {
                if let Err(e) = crate::vmalloc::vfree(self.addr) {
                    log::error!("console: allocation #{}: {e:?}", self.id);
                }
            }
        }
    }

    /// Checks the pattern, then frees; the memory is freed either way.
    pub fn check_and_release(self) -> Result<(), CmdError> {
        let checked = self.check();
        self.release();
        checked
    }
}

/// Parses a size: a number with an optional K, M or G (binary units,
/// optionally followed by `iB` or `B`).
pub fn parse_size(arg: &str) -> Result<u64, CmdError> {
    crate::cmdline::memparse(arg).ok_or_else(|| CmdError::BadNumber(String::from(arg)))
}

/// `alloc [SIZE [order|kmalloc|vmalloc]]`: allocate and fill, or list.
pub fn alloc(shell: &mut Shell, args: &[&str], out: &mut String) -> Res {
    const USAGE: &str = "alloc [SIZE [order|kmalloc|vmalloc]]";
    let (size, kind) = match args {
        [] => {
            for a in &shell.allocs {
                let _ = writeln!(out, "#{:<4} {}", a.id, describe(a));
            }
            let total: usize = shell.allocs.iter().map(|a| a.size).sum();
            let _ = writeln!(out, "{} allocations, {} KiB", shell.allocs.len(), total / 1024);
            return Ok(Flow::Continue);
        }
        [size] => (*size, "order"),
        [size, kind] => (*size, *kind),
        _ => return Err(CmdError::Usage(USAGE)),
    };
    let size = parse_size(size)?;
    if size == 0 {
        return Err(CmdError::Usage(USAGE));
    }
    let size = usize::try_from(size).map_err(|_| CmdError::TooLarge("size does not fit in memory"))?;
    let kind = match kind {
        "order" | "pages" => Kind::Pages { pfn: Pfn::new(0), order: 0 },
        "kmalloc" => Kind::Kmalloc,
        "vmalloc" => Kind::Vmalloc,
        _ => return Err(CmdError::Usage(USAGE)),
    };
    let id = shell.take_id();
    let a = Allocation::new(id, kind, size, GFP_KERNEL | Gfp::NOWARN)?;
    let _ = writeln!(out, "alloc: #{id} {}, filled", describe(&a));
    shell.allocs.push(a);
    Ok(Flow::Continue)
}

fn describe(a: &Allocation) -> String {
    match a.kind {
        Kind::Pages { pfn, order } => alloc::format!(
            "{} pages (order {order}) at pfn {:#x} ({:#x})",
            1u64 << order,
            pfn.as_u64(),
            a.addr.as_u64()
        ),
        Kind::Kmalloc => alloc::format!("kmalloc {} bytes at {:#x}", a.size, a.addr.as_u64()),
        Kind::Vmalloc => alloc::format!("vmalloc {} bytes at {:#x}", a.size, a.addr.as_u64()),
    }
}

/// `free [ID|all]`: check the pattern and free.
pub fn free(shell: &mut Shell, args: &[&str], out: &mut String) -> Res {
    let victims: Vec<Allocation> = match args {
        [] | ["all"] => core::mem::take(&mut shell.allocs),
        [id] => {
            let id: u32 = id.trim_start_matches('#').parse().map_err(|_| CmdError::BadNumber(String::from(*id)))?;
            let i = shell.allocs.iter().position(|a| a.id == id).ok_or(CmdError::NoAlloc(id))?;
            alloc::vec![shell.allocs.remove(i)]
        }
        _ => return Err(CmdError::Usage("free [ID|all]")),
    };
    let mut first_error = None;
    for a in victims {
        let id = a.id;
        match a.check_and_release() {
            Ok(()) => {
                let _ = writeln!(out, "free: #{id} pattern intact, freed");
            }
            Err(e) => {
                let _ = writeln!(out, "free: #{id} freed, but {e}");
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(Flow::Continue), Err)
}

/// A small fast generator (xorshift64*), seeded from the clock.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What a stress run did.
#[derive(Debug, Default)]
pub struct StressReport {
    /// Allocations made.
    pub allocs: u64,
    /// Allocations the allocators refused.
    pub failed: u64,
    /// Allocations checked and freed.
    pub frees: u64,
    /// Broken patterns.
    pub corrupt: u64,
    /// Most bytes live at once.
    pub peak: usize,
    /// Nanoseconds it ran.
    pub ns: u64,
    /// Whether Ctrl-C ended it.
    pub interrupted: bool,
}

/// Mixed allocations for `seconds` with at most `budget` bytes live:
/// movable and unmovable pages of orders 0-3, kmalloc of 8 bytes to 4 KiB,
/// vmalloc of 4 to 128 KiB; a quarter of the steps (or a refused
/// allocation) free a random live one after checking its pattern.
/// Everything is freed at the end.
pub fn run_stress(budget: usize, seconds: u64) -> StressReport {
    let start = crate::arch::x86_64::tsc::now_ns();
    let deadline = start + seconds * 1_000_000_000;
    let mut rng = Rng(start | 1);
    let mut live: Vec<Allocation> = Vec::new();
    let mut live_bytes = 0usize;
    let mut report = StressReport::default();
    let mut id = 0u32;
    let mut step = 0u64;
    let retire = |a: Allocation, report: &mut StressReport| {
        report.frees += 1;
        if a.check_and_release().is_err() {
            report.corrupt += 1;
        }
    };
    loop {
        if step.is_multiple_of(64) {
            if crate::arch::x86_64::tsc::now_ns() >= deadline {
                break;
            }
            if super::interrupted() {
                report.interrupted = true;
                break;
            }
            crate::sched::cond_resched();
        }
        step += 1;
        let r = rng.next();
        if live_bytes < budget && (!r.is_multiple_of(4) || live.is_empty()) {
            id = id.wrapping_add(1);
            let (kind, size, gfp) = match rng.below(8) {
                0..=2 => (Kind::Pages { pfn: Pfn::new(0), order: 0 }, PAGE_SIZE << rng.below(4), GFP_HIGHUSER_MOVABLE),
                3..=4 => (Kind::Pages { pfn: Pfn::new(0), order: 0 }, PAGE_SIZE << rng.below(3), GFP_KERNEL),
                5..=6 => (Kind::Kmalloc, 8 + rng.below(4089), GFP_KERNEL),
                _ => (Kind::Vmalloc, PAGE_SIZE * (1 + rng.below(32)), GFP_KERNEL),
            };
            match Allocation::new(id, kind, size as usize, gfp | Gfp::NOWARN) {
                Ok(a) => {
                    report.allocs += 1;
                    live_bytes += a.size;
                    report.peak = report.peak.max(live_bytes);
                    live.push(a);
                }
                Err(_) => {
                    report.failed += 1;
                    if !live.is_empty() {
                        let a = live.swap_remove(rng.below(live.len() as u64) as usize);
                        live_bytes -= a.size;
                        retire(a, &mut report);
                    }
                }
            }
        } else if !live.is_empty() {
            let a = live.swap_remove(rng.below(live.len() as u64) as usize);
            live_bytes -= a.size;
            retire(a, &mut report);
        }
    }
    for a in live {
        retire(a, &mut report);
    }
    report.ns = crate::arch::x86_64::tsc::now_ns() - start;
    report
}

/// `stress MIB SECONDS`.
pub fn stress(_: &mut Shell, args: &[&str], out: &mut String) -> Res {
    const USAGE: &str = "stress MIB SECONDS (1-65536 MiB, 1-3600 s)";
    let [mib, seconds] = args else { return Err(CmdError::Usage(USAGE)) };
    let mib: u64 = mib.parse().map_err(|_| CmdError::BadNumber(String::from(*mib)))?;
    let seconds: u64 = seconds.parse().map_err(|_| CmdError::BadNumber(String::from(*seconds)))?;
    if !(1..=65536).contains(&mib) || !(1..=3600).contains(&seconds) {
        return Err(CmdError::Usage(USAGE));
    }
    let r = run_stress((mib << 20) as usize, seconds);
    let _ = writeln!(
        out,
        "stress: {}.{:01} s, {} allocations ({} refused), {} frees, peak {} KiB live, {} broken patterns",
        r.ns / 1_000_000_000,
        r.ns / 100_000_000 % 10,
        r.allocs,
        r.failed,
        r.frees,
        r.peak / 1024,
        r.corrupt
    );
    if r.corrupt > 0 {
        return Err(CmdError::BrokenPatterns(r.corrupt));
    }
    if r.interrupted {
        return Err(CmdError::Interrupted);
    }
    Ok(Flow::Continue)
}

/// `drop_caches`: what `echo 3 > /proc/sys/vm/drop_caches` does here:
/// clean page-cache pages nothing uses are dropped, the slab shrinkers
/// free what they can (unused dentries and inodes, ext2's clean metadata
/// blocks: Linux `drop_slab`), empty slabs of every
/// cache go back to the buddy allocator, lazily freed vmalloc ranges are
/// purged, and the per-cpu page lists are drained.
pub fn drop_caches(_: &mut Shell, _: &[&str], out: &mut String) -> Res {
    let pgdat = crate::mm::pgdat();
    let before = pgdat.nr_free_pages();
    // Linux counts one of each for `echo 3`.
    pgdat.count_vm_event(VmEventItem::DropPagecache);
    pgdat.count_vm_event(VmEventItem::DropSlab);
    let crate::mm::DroppedCaches { pagecache_pages, slab_objects, slab_pages, purged } = crate::mm::drop_caches();
    let after = pgdat.nr_free_pages();
    let _ = writeln!(
        out,
        "drop_caches: {pagecache_pages} page-cache pages dropped, {slab_objects} objects shrunk, {slab_pages} slab pages returned, {}, per-cpu lists drained; free pages {before} -> {after}",
        if purged { "lazy vmalloc areas purged" } else { "no lazy vmalloc areas" }
    );
    Ok(Flow::Continue)
}

/// `compact`: what `echo 1 > /proc/sys/vm/compact_memory` does: compacts
/// every zone ([`crate::compaction::compact_memory`]) and prints one line with
/// the scanners' work (pages migrated, failed, and skipped because no
/// known address space maps them) and the free memory in 2 MiB blocks
/// (order >= 9) before and after. Ctrl-C stops the run at the next
/// pageblock; the line then tells what it did before the error.
pub fn compact(_: &mut Shell, _: &[&str], out: &mut String) -> Res {
    let (blocks_before, largest_before) = free_pageblocks();
    let s = crate::compaction::compact_memory(&super::interrupted);
    let (blocks_after, largest_after) = free_pageblocks();
    let order = |o: Option<usize>| o.map_or_else(|| String::from("none"), |o| alloc::format!("{o}"));
    let _ = writeln!(
        out,
        "compact: scanned {} pages to migrate and {} free, {} migrated, {} failed, {} skipped; \
         free 2 MiB blocks {blocks_before} -> {blocks_after}, largest free order {} -> {}",
        s.migrate_scanned,
        s.free_scanned,
        s.migrated,
        s.failed,
        s.skipped,
        order(largest_before),
        order(largest_after),
    );
    if s.contended {
        return Err(CmdError::Interrupted);
    }
    Ok(Flow::Continue)
}

/// Free memory in blocks of at least pageblock order (2 MiB), counted in
/// pageblocks over every zone, and the largest order with a free block
/// ([`crate::mm::free_blocks`]: per-cpu lists drained first).
pub fn free_pageblocks() -> (u64, Option<usize>) {
    let mut blocks = 0;
    let mut largest = None;
    for zone in crate::mm::free_blocks() {
        for (order, &n) in zone.iter().enumerate().filter(|&(_, &n)| n > 0) {
            largest = largest.max(Some(order));
            if let Some(extra) = order.checked_sub(PAGEBLOCK_ORDER as usize) {
                blocks += n << extra;
            }
        }
    }
    (blocks, largest)
}
