//! The kernel's swap areas (Linux `mm/swapfile.c`, the half around one
//! area's slot allocator: `swap_info[]`, `swap_lock`, the priority list
//! `swap_avail_heads`, `nr_swap_pages`/`total_swap_pages`,
//! `get_swap_pages`, `enable_swap_info`, `swap_show`, `si_swapinfo`, and
//! the entry calls that find an entry's area: `swap_duplicate`,
//! `swap_free`, `swapcache_prepare`, `swapcache_clear`, `__swap_count`).
//!
//! - [`SWAP_INFO`]: up to [`MAX_SWAPFILES`] areas, each a [`SwapArea`]
//!   (Linux `struct swap_info_struct`) whose type is its index: its disk,
//!   its [`SwapInfo`] (mm's swap map and cluster allocator), and its
//!   flags, [`SwpFlags::USED`] from the moment swapon reserves the type,
//!   [`SwpFlags::WRITEOK`] while slots may be allocated from it. Areas
//!   are never freed, only emptied and reused, as Linux's are.
//! - The priority list (behind `swap_lock`): the areas open to
//!   allocation, highest priority first. [`SwapAreas::get_swap_pages`]
//!   takes slots from the first that has any and moves it behind the
//!   others of its priority (Linux's `plist_requeue`), so areas of equal
//!   priority are used round-robin, a call each, and a lower priority
//!   only when every higher one is full.
//! - `nr_swap_pages` (free slots of the areas open to allocation) and
//!   `total_swap_pages`: /proc/meminfo's `SwapFree` and `SwapTotal`
//!   ([`si_swapinfo`]).
//! - [`SwapAreas`]: the calls the mm core makes with a swap entry. Each
//!   finds the entry's area by type and calls its `SwapInfo` under the
//!   area's lock; errors are mm's [`SwapEntryError`].
//! - [`swapon`]: `swapon(2)`/`swapoff(2)`, the console's and the command
//!   line's swapon, and the kernel's `mkswap`; [`crate::page_io`] reads
//!   and writes slots.
//!
//! # Locking
//!
//! `swap_lock` (a [`SpinLock`]: the priority list, the priorities, the
//! reservation of types) -> an area's lock (a [`SpinLock`], Linux's
//! `si->lock` and the cluster, continuation and per-CPU locks in one:
//! the flags, the disk and the `SwapInfo`). Both are taken in process
//! context only: page I/O completions, which run in interrupt context,
//! never touch them (a failed write is the core's to handle afterwards,
//! in process context), so neither disables interrupts. Against the mm
//! core's locks both are innermost: page lock -> page table lock ->
//! `swap_lock` -> area lock (fork duplicates entries under the page table
//! lock). Nothing allocates or sleeps under either: continuation pages
//! are allocated before the area lock is taken, snapshots for reports are
//! copied out before they are formatted.
//!
//! # Differences from Linux
//!
//! - **Whole disks only.** An area is a virtio disk (`/dev/vdb`); no swap
//!   files, no partitions, and no loop or RAM disks (they have no request
//!   queue for page I/O): such paths are EINVAL with a message.
//! - **No `try_to_unuse` yet.** swapoff of an area with slots in use
//!   needs the swap cache to bring the pages back; until the mm core
//!   provides it, that swapoff fails with EBUSY and leaves the area as it
//!   was (see [`swapon::do_swapoff`]).
//! - **One node.** Linux keeps one priority list per NUMA node and puts
//!   an area whose disk sits on the node first on that node's list; with
//!   one node and disks on none (virtio's `NUMA_NO_NODE`), its order is
//!   the plain priority order used here.
//! - **Rotation per call.** Linux 6.1-6.14 rotated equal-priority areas
//!   per `get_swap_pages` call of the swap slots cache (64 slots at a
//!   time), Linux 6.15+ per CPU cluster; here each call rotates, so the
//!   caller's batch size sets the granularity.
//! - **No swap slots cache, no discard, no `SWP_SYNCHRONOUS_IO`,
//!   `SWP_SOLIDSTATE` or rotating-disk distinction**, no frontswap, no
//!   swap cgroup accounting, no `/proc/swaps` poll.
//! - **No L1TF cap** on an area's size (Linux's x86
//!   `arch_max_swapfile_size` halves the offset range on CPUs with that
//!   bug): the cap lies far past any disk here.

// Only `storage` needs unsafe (giving leaked slices back to their boxes).
#![deny(unsafe_code)]

pub mod mkswap;
mod storage;
pub mod swapon;

use alloc::sync::Arc;
use core::fmt;
use core::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use mm::swapfile::{SwapEntryError, SwapInfo};
use mm::swapops::{MAX_SWAPFILES, SwpEntry};

use crate::block::Gendisk;
use crate::sync::SpinLock;

/// Areas at most (Linux `MAX_SWAPFILES`).
const NR_AREAS: usize = MAX_SWAPFILES as usize;

bitflags::bitflags! {
    /// An area's state (Linux `enum SWP_*`, the two this kernel has).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SwpFlags: u32 {
        /// The type is taken: swapon is setting it up, it is in use, or
        /// swapoff is emptying it (`SWP_USED`).
        const USED = 1 << 0;
        /// Slots may be allocated from it (`SWP_WRITEOK`).
        const WRITEOK = 1 << 1;
    }
}

/// What an area's lock guards.
struct AreaState {
    flags: SwpFlags,
    /// The disk, from the moment swapon claims it.
    disk: Option<Arc<Gendisk>>,
    /// The slots, from the moment the header has been read until swapoff
    /// frees them.
    si: Option<SwapInfo<'static>>,
}

/// One swap area (Linux `struct swap_info_struct`, the kernel's half;
/// the slots are mm's [`SwapInfo`]).
#[doc(alias = "swap_info_struct")]
pub struct SwapArea {
    ty: u32,
    state: SpinLock<AreaState>,
}

impl SwapArea {
    const fn new(ty: u32) -> SwapArea {
        SwapArea { ty, state: SpinLock::new(AreaState { flags: SwpFlags::empty(), disk: None, si: None }) }
    }
}

const fn new_areas() -> [SwapArea; NR_AREAS] {
    let mut areas = [const { SwapArea::new(0) }; NR_AREAS];
    let mut ty = 0;
    while ty < NR_AREAS {
        areas[ty].ty = ty as u32;
        ty += 1;
    }
    areas
}

/// Every area, by type (Linux `swap_info[]`).
static SWAP_INFO: [SwapArea; NR_AREAS] = new_areas();

/// What `swap_lock` guards.
struct SwapTable {
    /// The priority of each area in use.
    prio: [i32; NR_AREAS],
    /// The types of the areas open to allocation ([`SwpFlags::WRITEOK`]),
    /// highest priority first, areas of one priority in the order they
    /// are next tried (Linux `swap_avail_heads`).
    avail: [u32; NR_AREAS],
    nr_avail: usize,
    /// The last default priority given (Linux `least_priority`): the
    /// next area without one gets one less.
    least_priority: i32,
}

impl SwapTable {
    fn avail(&self) -> &[u32] {
        &self.avail[..self.nr_avail]
    }

    /// Puts `ty` on the priority list behind the areas of its priority
    /// and above (Linux `add_to_avail_list`'s `plist_add`).
    fn add_to_avail_list(&mut self, ty: u32) {
        let prio = self.prio[ty as usize];
        let at = self.avail().iter().position(|&t| self.prio[t as usize] < prio).unwrap_or(self.nr_avail);
        if self.nr_avail < NR_AREAS {
            self.avail.copy_within(at..self.nr_avail, at + 1);
            self.avail[at] = ty;
            self.nr_avail += 1;
        }
    }

    /// Takes `ty` off the priority list (Linux `del_from_avail_list`).
    fn del_from_avail_list(&mut self, ty: u32) {
        if let Some(at) = self.avail().iter().position(|&t| t == ty) {
            self.avail.copy_within(at + 1..self.nr_avail, at);
            self.nr_avail -= 1;
        }
    }

    /// Moves `ty` behind the other areas of its priority (Linux
    /// `plist_requeue`): the next allocation tries them first.
    fn requeue(&mut self, ty: u32) {
        self.del_from_avail_list(ty);
        self.add_to_avail_list(ty);
    }
}

/// `swap_lock` (Linux's, with `swap_avail_lock` folded in).
static SWAP_LOCK: SpinLock<SwapTable> =
    SpinLock::new(SwapTable { prio: [0; NR_AREAS], avail: [0; NR_AREAS], nr_avail: 0, least_priority: -1 });

/// Free slots of the areas open to allocation (Linux `nr_swap_pages`):
/// slots allocated are taken off, slots freed put back. An area's `pages`
/// come and go with [`SwpFlags::WRITEOK`], so an area being swapped off
/// counts minus its slots in use, which [`si_swapinfo`] adds back.
static NR_SWAP_PAGES: AtomicI64 = AtomicI64::new(0);

/// Slots of the areas open to allocation (Linux `total_swap_pages`),
/// changed under `swap_lock`.
static TOTAL_SWAP_PAGES: AtomicU64 = AtomicU64::new(0);

/// The area of type `ty`, if it is one of the table's.
fn swap_area(ty: u32) -> Option<&'static SwapArea> {
    SWAP_INFO.get(ty as usize)
}

/// The calls the mm core makes on swap slots (the Linux functions of the
/// same names in `mm/swapfile.c`): allocation across the areas, and the
/// counts of a swap entry's slot, each dispatched to the entry's area.
///
/// A zero-sized handle: the areas are the kernel's, one set per machine.
/// Every call may be made in process context with spin locks held (the
/// page table lock in particular) and none sleeps, except
/// [`SwapAreas::add_swap_count_continuation`] as its doc says.
#[derive(Clone, Copy, Debug, Default)]
pub struct SwapAreas;

impl SwapAreas {
    /// Allocates up to `entries.len()` slots, all from one area, each
    /// with `SWAP_HAS_CACHE` and no count (Linux `get_swap_pages`, the
    /// allocation of `folio_alloc_swap`): the first area on the priority
    /// list that has a free slot, which then goes behind the other areas
    /// of its priority. Returns how many it got; 0 when every area is
    /// full or there is none. Consecutive calls on one CPU get
    /// consecutive slots of an area (its per-CPU cluster).
    pub fn get_swap_pages(&self, entries: &mut [SwpEntry]) -> usize {
        if entries.is_empty() || NR_SWAP_PAGES.load(Ordering::Relaxed) <= 0 {
            return 0;
        }
        let (order, nr) = {
            let table = SWAP_LOCK.lock();
            (table.avail, table.nr_avail)
        };
        for &ty in &order[..nr] {
            let Some(area) = swap_area(ty) else { continue };
            let got = {
                let mut state = area.state.lock();
                if !state.flags.contains(SwpFlags::WRITEOK) {
                    continue;
                }
                let Some(si) = state.si.as_mut() else { continue };
                si.get_swap_pages(crate::percpu::smp_processor_id() as usize, entries)
            };
            if got > 0 {
                NR_SWAP_PAGES.fetch_sub(got as i64, Ordering::Relaxed);
                let mut table = SWAP_LOCK.lock();
                if table.avail().contains(&ty) {
                    table.requeue(ty);
                }
                return got;
            }
        }
        0
    }

    /// One slot for a page being swapped out (Linux `folio_alloc_swap`
    /// for an order-0 folio; the swap cache's part is the core's), or
    /// `None` when swap is full.
    pub fn folio_alloc_swap(&self) -> Option<SwpEntry> {
        let mut entry = [SwpEntry::new(0, 0)];
        (self.get_swap_pages(&mut entry) == 1).then_some(entry[0])
    }

    /// Counts one more swap entry naming `entry`'s slot (Linux
    /// `swap_duplicate`): fork copying a swap pte. At `SWAP_MAP_MAX` the
    /// count continues in a continuation page; when one is needed it is
    /// allocated here, with the lock dropped, under the context's mask
    /// (`GFP_ATOMIC` when the caller holds a spin lock, as Linux's first
    /// try), and the call retried. If that allocation fails the result is
    /// [`SwapEntryError::NoContinuation`] and nothing changed: the caller
    /// drops its locks, calls [`SwapAreas::add_swap_count_continuation`]
    /// and tries again (Linux `copy_pte_range`'s retry).
    pub fn swap_duplicate(&self, entry: SwpEntry) -> Result<(), SwapEntryError> {
        loop {
            match with_si(entry, "swap_duplicate", |si| si.swap_duplicate(entry)) {
                Err(SwapEntryError::NoContinuation) => self.add_swap_count_continuation(entry)?,
                result => return result,
            }
        }
    }

    /// Gives `entry`'s slot the continuation page its count needs to grow
    /// (Linux `add_swap_count_continuation`): allocated first, outside
    /// the area's lock, with the context's mask (`GFP_KERNEL`, which may
    /// sleep, when no spin lock is held); freed again if the count no
    /// longer needs it. [`SwapEntryError::NoContinuation`] if there is no
    /// memory.
    pub fn add_swap_count_continuation(&self, entry: SwpEntry) -> Result<(), SwapEntryError> {
        let page = storage::alloc_cont_page().ok_or(SwapEntryError::NoContinuation)?;
        let area = swap_area(entry.ty()).ok_or(SwapEntryError::BadFile);
        let unused = area.and_then(|area| {
            let mut state = area.state.lock();
            let si = state.si.as_mut().ok_or(SwapEntryError::BadFile)?;
            // The same checks as the attach's own, so that a refusal
            // cannot take the page with it.
            si.swap_count(entry)?;
            si.add_swap_count_continuation(entry, page)
        });
        match unused {
            Ok(None) => Ok(()),
            Ok(Some(page)) => {
                storage::free_cont_page(page);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Counts one swap entry fewer for `entry`'s slot (Linux `swap_free`):
    /// zap, exit, a swapped-in page mapped again. The slot is free once
    /// neither an entry nor the swap cache holds it.
    pub fn swap_free(&self, entry: SwpEntry) -> Result<(), SwapEntryError> {
        with_si(entry, "swap_free", |si| si.swap_free(entry))
    }

    /// Claims `entry`'s slot for the swap cache (Linux
    /// `swapcache_prepare`): [`SwapEntryError::Exists`] if someone else
    /// has, who reads the page in.
    pub fn swapcache_prepare(&self, entry: SwpEntry) -> Result<(), SwapEntryError> {
        with_si(entry, "swapcache_prepare", |si| si.swapcache_prepare(entry))
    }

    /// Lets go of the swap cache's hold on `entry`'s slot (Linux
    /// `swapcache_clear`, `put_swap_folio`): the slot is free if no entry
    /// names it.
    #[doc(alias = "put_swap_folio")]
    pub fn swapcache_clear(&self, entry: SwpEntry) -> Result<(), SwapEntryError> {
        with_si(entry, "swapcache_clear", |si| si.swapcache_clear(entry))
    }

    /// Lets go of the swap cache's hold on `entry`'s slot, whose write
    /// failed and which no swap entry names, and marks the slot bad
    /// (`SWAP_MAP_BAD`) for as long as the area is on: it leaves
    /// `SwapTotal` and /proc/swaps' size, as the header's bad pages do.
    /// Logged. No Linux counterpart (see [`mm::swap_state`]).
    pub fn swapcache_clear_bad(&self, entry: SwpEntry) -> Result<(), SwapEntryError> {
        with_si(entry, "swapcache_clear_bad", |si| si.swapcache_clear_bad(entry))?;
        if let Some(info) = swap_info(entry.ty()) {
            let name = info.disk.name();
            log::warn!(
                "swap: slot {:#x} of /dev/{name} is bad after a write error: it leaves the area",
                entry.offset()
            );
        }
        Ok(())
    }

    /// The count of `entry`'s slot in the swap map, with
    /// `COUNT_CONTINUED` if it goes on (Linux `__swap_count`).
    #[doc(alias = "__swap_count")]
    pub fn swap_count(&self, entry: SwpEntry) -> Result<u8, SwapEntryError> {
        with_si(entry, "swap_count", |si| si.swap_count(entry))
    }

    /// The number of swap entries naming `entry`'s slot, continuation
    /// included (Linux `swp_swapcount`).
    pub fn swp_swapcount(&self, entry: SwpEntry) -> Result<u64, SwapEntryError> {
        with_si(entry, "swp_swapcount", |si| si.swp_swapcount(entry))
    }

    /// The slots of area `ty`, its header's included (Linux `si->max`),
    /// if it is in use: where swap readahead stops.
    pub fn swap_max(&self, ty: u32) -> Option<u32> {
        swap_area(ty)?.state.lock().si.as_ref().map(SwapInfo::max)
    }

    /// Free slots of the areas open to allocation (Linux
    /// `get_nr_swap_pages`).
    pub fn nr_swap_pages(&self) -> i64 {
        NR_SWAP_PAGES.load(Ordering::Relaxed)
    }

    /// Slots of the areas open to allocation (Linux `total_swap_pages`).
    pub fn total_swap_pages(&self) -> u64 {
        TOTAL_SWAP_PAGES.load(Ordering::Relaxed)
    }

    /// Whether less than half the swap space is free (Linux
    /// `vm_swap_full`: reclaim then frees a slot whose page it keeps).
    pub fn vm_swap_full(&self) -> bool {
        self.nr_swap_pages().saturating_mul(2) < i64::try_from(self.total_swap_pages()).unwrap_or(i64::MAX)
    }
}

/// Calls `f` on `entry`'s area's slots under its lock, and puts the
/// slots `f` freed back into `nr_swap_pages` (Linux `swap_range_free`);
/// slots it took out of use (marked bad) leave `total_swap_pages` and,
/// while the area is open, `nr_swap_pages` too (a bad slot was in use,
/// so the free count of an open area stays; a closed area counts minus
/// its slots in use, one fewer now).
/// Logs Linux's complaints about a bad entry, naming the caller `what`.
fn with_si<R>(
    entry: SwpEntry,
    what: &str,
    f: impl FnOnce(&mut SwapInfo<'static>) -> Result<R, SwapEntryError>,
) -> Result<R, SwapEntryError> {
    let result = swap_area(entry.ty()).ok_or(SwapEntryError::BadFile).and_then(|area| {
        let mut state = area.state.lock();
        let writeok = state.flags.contains(SwpFlags::WRITEOK);
        let si = state.si.as_mut().ok_or(SwapEntryError::BadFile)?;
        let (inuse, pages) = (si.inuse_pages(), si.pages());
        let result = f(si);
        let freed = inuse.saturating_sub(si.inuse_pages());
        let lost = if writeok { pages.saturating_sub(si.pages()) } else { 0 };
        if freed != lost {
            NR_SWAP_PAGES.fetch_add(i64::from(freed) - i64::from(lost), Ordering::Relaxed);
        }
        if lost > 0 {
            TOTAL_SWAP_PAGES.fetch_sub(u64::from(lost), Ordering::Relaxed);
        }
        result
    });
    if let Err(e @ (SwapEntryError::BadFile | SwapEntryError::BadOffset | SwapEntryError::Unused)) = result
        && (e != SwapEntryError::Unused || what == "swap_free")
    {
        log::error!("{what}: {e} {:02}:{:#x}", entry.ty(), entry.offset());
    }
    result
}

/// /proc/meminfo's swap figures in pages (Linux `si_swapinfo`):
/// `(SwapTotal, SwapFree)`, counting the used slots of areas being
/// swapped off in both.
pub fn si_swapinfo() -> (u64, u64) {
    let nr_to_be_unused: u64 = SWAP_INFO
        .iter()
        .map(|area| {
            let state = area.state.lock();
            match &state.si {
                Some(si) if !state.flags.contains(SwpFlags::WRITEOK) => u64::from(si.inuse_pages()),
                _ => 0,
            }
        })
        .sum();
    let free = u64::try_from(NR_SWAP_PAGES.load(Ordering::Relaxed)).unwrap_or(0);
    (TOTAL_SWAP_PAGES.load(Ordering::Relaxed) + nr_to_be_unused, free + nr_to_be_unused)
}

/// One area as reports show it.
#[derive(Clone)]
pub struct SwapAreaInfo {
    /// Its type, the first half of its entries.
    pub ty: u32,
    /// Its disk.
    pub disk: Arc<Gendisk>,
    /// Slots for swapping (Linux `si->pages`).
    pub pages: u32,
    /// Slots in use (Linux `si->inuse_pages`).
    pub inuse_pages: u32,
    /// Its priority.
    pub prio: i32,
    /// Its flags.
    pub flags: SwpFlags,
}

impl SwapAreaInfo {
    /// Its name in reports and messages: `/dev/vdb`.
    pub fn path(&self) -> alloc::string::String {
        alloc::format!("/dev/{}", self.disk.name())
    }
}

/// The area of type `ty`, if one is set up (swapon has read its header
/// and swapoff has not freed it).
pub fn swap_info(ty: u32) -> Option<SwapAreaInfo> {
    let area = swap_area(ty)?;
    let table = SWAP_LOCK.lock();
    let state = area.state.lock();
    let (si, disk) = (state.si.as_ref()?, state.disk.as_ref()?);
    Some(SwapAreaInfo {
        ty,
        disk: disk.clone(),
        pages: si.pages(),
        inuse_pages: si.inuse_pages(),
        prio: table.prio[ty as usize],
        flags: state.flags,
    })
}

/// The types of the areas open to allocation, in the order the next
/// allocation tries them (for tests and reports).
pub fn swap_avail_order() -> alloc::vec::Vec<u32> {
    let order = {
        let table = SWAP_LOCK.lock();
        (table.avail, table.nr_avail)
    };
    order.0[..order.1].to_vec()
}

/// Whether `disk` holds a swap area (claimed by swapon, until swapoff
/// lets it go): mount and mkswap refuse it with EBUSY, as Linux's
/// exclusive claim of the block device makes them.
pub fn disk_is_swap(disk: &Gendisk) -> bool {
    SWAP_INFO.iter().any(|area| area.state.lock().disk.as_ref().is_some_and(|d| core::ptr::eq(&**d, disk)))
}

/// /proc/swaps (Linux `swap_show`): a header line, then one line per
/// area with slots, by type: the path padded to 40 columns, `partition`,
/// the size and the used part in KiB and the priority, tab-separated
/// with an extra tab after a number of fewer than 8 digits.
pub struct ProcSwaps;

impl fmt::Display for ProcSwaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")?;
        for info in (0..MAX_SWAPFILES).filter_map(swap_info) {
            let path = info.path();
            let kib = |pages: u32| u64::from(pages) << (mm::PAGE_SHIFT - 10);
            let (size, used) = (kib(info.pages), kib(info.inuse_pages));
            let tab = |n: u64| if n < 10_000_000 { "\t" } else { "" };
            writeln!(
                f,
                "{path}{:pad$}partition\t{size}\t{}{used}\t{}{}",
                "",
                tab(size),
                tab(used),
                info.prio,
                pad = 40usize.saturating_sub(path.len()).max(1),
            )?;
        }
        Ok(())
    }
}
