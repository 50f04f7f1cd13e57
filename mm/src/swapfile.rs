//! Swap areas (Linux `mm/swapfile.c`, with `struct swap_info_struct` and
//! the swap-count constants of `include/linux/swap.h`, the cluster
//! structures of `mm/swap.h` and `max_swapfile_size` of
//! `include/linux/swapfile.h`): the on-disk header and the slot allocator
//! of one area. No I/O happens here; the kernel reads the header, hands
//! the area its memory and calls it under its lock.
//!
//! # The header
//!
//! [`header`]: the first page of the area, version 1 (`SWAPSPACE2`),
//! parsed into a [`SwapHeader`] that passed Linux's checks (signature,
//! version, size against the device and against [`max_swapfile_size`],
//! the bad-page list), and written by [`mkswap`] as util-linux does.
//!
//! # The swap map
//!
//! A [`SwapInfo`] (Linux `swap_info_struct`) has one byte per page of
//! the area, its `swap_map`, below `max` ([`SwapHeader::maxpages`]).
//! A slot's byte is:
//!
//! - `0`: free;
//! - [`SWAP_MAP_BAD`]: never used: the header page (offset 0), the
//!   header's bad pages, and slots whose write failed while the area was
//!   on ([`SwapInfo::swapcache_clear_bad`]);
//! - otherwise a count in the low bits, the number of swap entries
//!   (ptes, shmem index entries) naming the slot, up to [`SWAP_MAP_MAX`],
//!   and two flags: [`SWAP_HAS_CACHE`], the slot's page is in the swap
//!   cache (or being added to it: [`SwapInfo::swapcache_prepare`] is
//!   the claim to read it in), and [`COUNT_CONTINUED`], the count goes
//!   on in continuation pages.
//!
//! A slot is allocated with [`SWAP_HAS_CACHE`] alone (the page being
//! swapped out is in the swap cache first), each pte replaced by its
//! entry adds one ([`SwapInfo::swap_duplicate`]), each one dropped takes
//! one ([`SwapInfo::swap_free`]), and the swap cache lets go with
//! [`SwapInfo::swapcache_clear`]. A slot whose byte drops to zero is
//! free again.
//!
//! # Count continuation
//!
//! A page mapped by more than [`SWAP_MAP_MAX`] ptes (fork upon fork)
//! continues its count in continuation pages, as Linux does: each page of
//! the swap map has a list of pages, one byte per slot of that swap map
//! page each, holding the next digit of the count. The swap map's digit
//! runs to [`SWAP_MAP_MAX`] (radix 63), each continuation digit to
//! [`SWAP_CONT_MAX`] (radix 128), and a digit with [`COUNT_CONTINUED`]
//! says the digits after it are not all zero; digits after one without
//! it are stale and read as zero. [`SwapInfo::swap_duplicate`] asks for
//! a page ([`SwapEntryError::NoContinuation`]) when a carry finds none;
//! the caller allocates it outside the lock and hands it over with
//! [`SwapInfo::add_swap_count_continuation`] (Linux's
//! `add_swap_count_continuation`, which allocates itself). Pages stay
//! until the area goes (see [`SwapInfo::into_storage`]).
//!
//! # Clusters and the allocator
//!
//! The area is cut into clusters of [`SWAPFILE_CLUSTER`] slots (1 MiB of
//! disk), each with a count of its slots in use (the header, bad pages
//! and, in the last cluster, the slots past `max` count as used) and on
//! exactly one list, which its flag names: free (count 0), nonfull (a
//! slot was freed since it was last filled), frag (allocated from, not
//! full) or full. Each CPU has a current cluster and the offset after its
//! last allocation (Linux `percpu_cluster->next`): allocation continues
//! there, so one CPU's successive swap-outs take successive slots and
//! are written sequentially, and two CPUs never share a cluster while
//! free ones last. When the current cluster has nothing left past that
//! offset, the CPU takes the first free cluster, else scans the nonfull
//! ones, then the frag ones (Linux 6.14's `cluster_alloc_swap_entry`).
//! A cluster that was scanned goes to the full list if full and to the
//! tail of the frag list otherwise; a free slot moves a full or frag
//! cluster to the nonfull list, and its last one to the free list. At
//! setup the clusters with unusable slots (the first, with the header,
//! and the last if the area ends inside it) start on the nonfull list,
//! so a new area is used from its second cluster on.
//!
//! Invariants, checked by the tests after every step:
//!
//! 1. A cluster's count is the number of its slots whose byte is not 0,
//!    plus its slots past `max`.
//! 2. Every cluster is on the list its flag names, once; the free list
//!    holds exactly the clusters of count 0, the full list only clusters
//!    of count [`SWAPFILE_CLUSTER`].
//! 3. `inuse_pages` is the number of allocated slots; allocation fails
//!    only when it equals `pages`.
//! 4. A slot with [`COUNT_CONTINUED`] has its next digit in the first
//!    continuation page of its list, and so on along the list.
//!
//! # Locking
//!
//! A [`SwapInfo`] is a plain value: the kernel keeps each area behind one
//! spin lock (Linux's `si->lock`, the clusters' `ci->lock`, `cont_lock`
//! and the per-CPU `local_lock` in one), held around every call. It is
//! taken in process context only (faults, fork, zap, reclaim and swapoff
//! change counts; I/O completions do not), so it need not disable
//! interrupts; it is innermost: page lock -> page table lock -> swap area
//! lock (fork duplicates entries under the page table locks). Nothing
//! here sleeps or allocates: continuation pages come in from outside.
//! The `cpu` of an allocation is the caller's current CPU, stable while
//! the spin lock keeps it from being preempted.
//!
//! # Differences from Linux
//!
//! - **One area's half.** The table of areas, priorities,
//!   `swapon`/`swapoff` and the choice of an area are the kernel's
//!   (`kernel/src/swapfile/`), the swap cache comes with the rest of
//!   swap; [`SwapInfo::get_swap_pages`] is the per-area part
//!   (`cluster_alloc_swap_entry`) of Linux's `get_swap_pages`.
//! - **Order 0 only.** No THP or mTHP swap, so one nonfull and one frag
//!   list (Linux has one per order) and no stealing between orders.
//! - **No discard, no reclaim in the allocator.** Linux may discard
//!   freed clusters on SSDs and, when swap is nearly full, reclaim slots
//!   held only by the swap cache while scanning; there is no swap cache
//!   yet, and such slots stay used here.
//! - **Per-CPU clusters on every device.** Linux 6.14+ gives rotating
//!   disks one global current cluster instead; the kernel may do the same
//!   by passing one `cpu` for all.
//! - **The free list in disk order.** Linux interleaves it
//!   (`SWAP_CLUSTER_COLS`) so that CPUs work in different swap-cache
//!   address spaces and `cluster_info` cache lines; here one lock guards
//!   the area and the order keeps a lone CPU's clusters consecutive.
//! - **No `SWAP_MAP_SHMEM`** (gone from Linux too); shmem entries count
//!   as others do.
//! - **Storage from the caller.** Linux vmallocs the swap map and the
//!   cluster array at swapon and `alloc_page`s continuation pages; mm
//!   allocates nothing, so [`SwapMapStorage`] brings them (sized by
//!   [`SwapMapSizes`]) and [`SwapContPage`]s come one by one. Errors
//!   that Linux reports with `pr_err` (a bad entry) or `VM_BUG_ON` (a
//!   count going below zero) are [`SwapEntryError`]s.

#![forbid(unsafe_code)]

pub mod header;

mod cluster;
mod continuation;

use core::fmt;

pub use cluster::{PercpuCluster, SWAPFILE_CLUSTER, SwapClusterInfo};
pub use continuation::{SwapContList, SwapContPage};
pub use header::{MkswapError, SwapHeader, SwapHeaderError, SwapUuid, mkswap};

use crate::addr::PAGE_SIZE;
use crate::pgtable::{Entry, Level, PteFormat};
use crate::swapops::{MAX_SWAPFILES, SwpEntry};

use cluster::ClusterLists;

/// The slot's page is in the swap cache (Linux `SWAP_HAS_CACHE`).
pub const SWAP_HAS_CACHE: u8 = 0x40;
/// The largest count the swap map holds itself (Linux `SWAP_MAP_MAX`).
pub const SWAP_MAP_MAX: u8 = 0x3e;
/// A slot never to be used (Linux `SWAP_MAP_BAD`).
pub const SWAP_MAP_BAD: u8 = 0x3f;
/// The largest digit of a continuation page (Linux `SWAP_CONT_MAX`).
pub const SWAP_CONT_MAX: u8 = 0x7f;
/// The digits after this one are not all zero (Linux `COUNT_CONTINUED`).
pub const COUNT_CONTINUED: u8 = 0x80;

const PAGE: usize = PAGE_SIZE as usize;

/// The count bits of a swap map byte, [`COUNT_CONTINUED`] included
/// (Linux `swap_count`).
const fn swap_count(map: u8) -> u8 {
    map & !SWAP_HAS_CACHE
}

/// How many pages an area may have: one more than the largest offset a
/// swap pte of `fmt` holds (Linux `generic_max_swapfile_size`, the
/// x86 `arch_max_swapfile_size` without its L1TF cap, which depends on
/// the CPU and is the kernel's to apply).
pub fn max_swapfile_size(fmt: &impl PteFormat) -> u64 {
    // Linux round-trips an entry of type 0; x86's inverted offset makes
    // that one the empty pte, which `decode` reads as none. The type does
    // not change the offset's bits, so take another.
    match fmt.decode(fmt.encode_swp(SwpEntry::new(1, u64::MAX)), Level::Pte) {
        Entry::Swap(entry) => entry.offset().saturating_add(1),
        _ => 0,
    }
}

/// What a [`SwapInfo`] needs from the caller for an area of `maxpages`
/// pages: the lengths of the slices of its [`SwapMapStorage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapMapSizes {
    /// Bytes of the swap map: `maxpages`.
    pub swap_map: usize,
    /// Clusters: `maxpages` / [`SWAPFILE_CLUSTER`], rounded up.
    pub cluster_info: usize,
    /// Continuation lists, one per page of swap map.
    pub cont: usize,
}

impl SwapMapSizes {
    /// The sizes for an area of `maxpages` pages
    /// ([`SwapHeader::maxpages`]).
    pub const fn for_maxpages(maxpages: u32) -> Self {
        let maxpages = maxpages as usize;
        SwapMapSizes {
            swap_map: maxpages,
            cluster_info: maxpages.div_ceil(SWAPFILE_CLUSTER as usize),
            cont: maxpages.div_ceil(PAGE),
        }
    }
}

/// The memory of a [`SwapInfo`], lent by the caller for the area's life
/// (Linux vmallocs `swap_map` and `cluster_info` at swapon).
pub struct SwapMapStorage<'a> {
    /// [`SwapMapSizes::swap_map`] bytes.
    pub swap_map: &'a mut [u8],
    /// [`SwapMapSizes::cluster_info`] clusters.
    pub cluster_info: &'a mut [SwapClusterInfo],
    /// One per CPU (at least one; CPU `n` uses `n % len`).
    pub percpu_cluster: &'a mut [PercpuCluster],
    /// [`SwapMapSizes::cont`] lists, empty.
    pub cont: &'a mut [SwapContList<'a>],
}

impl<'a> SwapMapStorage<'a> {
    /// Takes every continuation page off its list and hands it to `free`
    /// (Linux `free_swap_count_continuations`, at swapoff).
    pub fn free_swap_count_continuations(&mut self, mut free: impl FnMut(&'a mut SwapContPage<'a>)) {
        for list in self.cont.iter_mut() {
            let mut next = list.take();
            while let Some(page) = next {
                next = page.next.take();
                free(page);
            }
        }
    }
}

/// Why a [`SwapInfo`] could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapSetupError {
    /// The type is not a swap area's (at most [`MAX_SWAPFILES`] areas).
    BadType {
        /// The type asked for.
        ty: u32,
    },
    /// A slice of the [`SwapMapStorage`] has the wrong length.
    StorageSize {
        /// Which one.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The length the area needs.
        needed: usize,
    },
    /// A continuation list was not empty.
    ContinuationsLeft,
}

impl fmt::Display for SwapSetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SwapSetupError::BadType { ty } => write!(f, "swap type {ty} past the {MAX_SWAPFILES} swap areas"),
            SwapSetupError::StorageSize { what, len, needed } => {
                write!(f, "swap area {what}: {len} entries given, {needed} needed")
            }
            SwapSetupError::ContinuationsLeft => f.write_str("swap area storage still holds continuation pages"),
        }
    }
}

/// Why a swap entry could not be counted up or down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapEntryError {
    /// The entry is of another area (Linux "Bad swap file entry").
    BadFile,
    /// Its offset is past the area (Linux "Bad swap offset entry").
    BadOffset,
    /// Its slot is free (Linux "Unused swap offset entry", `-ENOENT`).
    Unused,
    /// Its slot is [`SWAP_MAP_BAD`] (`-ENOENT`).
    BadSlot,
    /// A swap entry was dropped from a slot only the swap cache holds.
    NoCount,
    /// The slot is in the swap cache already (`-EEXIST`).
    Exists,
    /// The slot is not in the swap cache.
    NotCached,
    /// The count needs another continuation page (`-ENOMEM` from
    /// `__swap_duplicate`): see
    /// [`SwapInfo::add_swap_count_continuation`].
    NoContinuation,
    /// Swap entries still name the slot: it cannot be taken out of use.
    InUse,
}

impl fmt::Display for SwapEntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SwapEntryError::BadFile => "Bad swap file entry",
            SwapEntryError::BadOffset => "Bad swap offset entry",
            SwapEntryError::Unused => "Unused swap offset entry",
            SwapEntryError::BadSlot => "swap entry names a bad slot",
            SwapEntryError::NoCount => "swap entry freed from a slot only the swap cache holds",
            SwapEntryError::Exists => "swap slot already in the swap cache",
            SwapEntryError::NotCached => "swap slot not in the swap cache",
            SwapEntryError::NoContinuation => "swap count needs a continuation page",
            SwapEntryError::InUse => "swap entries still name the slot",
        })
    }
}

/// One swap area's slots: its swap map, clusters and per-CPU current
/// clusters (Linux `struct swap_info_struct`, the allocation half).
#[doc(alias = "swap_info_struct")]
pub struct SwapInfo<'a> {
    ty: u32,
    /// Slots `0..max` exist (Linux `si->max`).
    max: u32,
    /// Slots that can be allocated: `max` less the header and bad pages.
    pages: u32,
    /// Slots allocated.
    inuse_pages: u32,
    swap_map: &'a mut [u8],
    cluster_info: &'a mut [SwapClusterInfo],
    lists: ClusterLists,
    percpu_cluster: &'a mut [PercpuCluster],
    cont: &'a mut [SwapContList<'a>],
}

impl<'a> SwapInfo<'a> {
    /// Sets up area `ty` described by `header` in `storage` (Linux
    /// `setup_swap_map_and_extents` and `setup_clusters`, at swapon):
    /// every slot free but the header page and the bad pages.
    pub fn new(ty: u32, header: &SwapHeader<'_>, storage: SwapMapStorage<'a>) -> Result<Self, SwapSetupError> {
        if ty >= MAX_SWAPFILES {
            return Err(SwapSetupError::BadType { ty });
        }
        let sizes = SwapMapSizes::for_maxpages(header.maxpages());
        for (what, len, needed) in [
            ("swap_map", storage.swap_map.len(), sizes.swap_map),
            ("cluster_info", storage.cluster_info.len(), sizes.cluster_info),
            ("cont", storage.cont.len(), sizes.cont),
        ] {
            if len != needed {
                return Err(SwapSetupError::StorageSize { what, len, needed });
            }
        }
        if storage.percpu_cluster.is_empty() {
            return Err(SwapSetupError::StorageSize { what: "percpu_cluster", len: 0, needed: 1 });
        }
        if storage.cont.iter().any(Option::is_some) {
            return Err(SwapSetupError::ContinuationsLeft);
        }

        storage.swap_map.fill(0);
        storage.swap_map[0] = SWAP_MAP_BAD;
        for page in header.badpages() {
            if let Some(map) = storage.swap_map.get_mut(page as usize) {
                *map = SWAP_MAP_BAD;
            }
        }
        storage.percpu_cluster.fill(PercpuCluster::new());
        let mut si = SwapInfo {
            ty,
            max: header.maxpages(),
            pages: header.pages(),
            inuse_pages: 0,
            swap_map: storage.swap_map,
            cluster_info: storage.cluster_info,
            lists: ClusterLists::new(),
            percpu_cluster: storage.percpu_cluster,
            cont: storage.cont,
        };
        si.setup_clusters();
        Ok(si)
    }

    /// Gives the memory back, continuation pages included (swapoff, once
    /// every slot is free).
    pub fn into_storage(self) -> SwapMapStorage<'a> {
        SwapMapStorage {
            swap_map: self.swap_map,
            cluster_info: self.cluster_info,
            percpu_cluster: self.percpu_cluster,
            cont: self.cont,
        }
    }

    /// The area's type: the first half of its swap entries.
    pub fn ty(&self) -> u32 {
        self.ty
    }

    /// Slots `0..max` exist (Linux `si->max`).
    pub fn max(&self) -> u32 {
        self.max
    }

    /// Slots for swapping: `max` less the header and the bad pages
    /// (Linux `si->pages`, `SwapTotal`).
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// Slots allocated (Linux `si->inuse_pages`; `SwapFree` is
    /// `pages - inuse_pages`).
    pub fn inuse_pages(&self) -> u32 {
        self.inuse_pages
    }

    /// The first slot in use (a count or the swap cache's hold), with its
    /// swap-map byte: what swapoff names when it cannot empty the area.
    pub fn first_in_use(&self) -> Option<(u64, u8)> {
        self.swap_map
            .iter()
            .enumerate()
            .find(|&(_, &map)| map != 0 && swap_count(map) != SWAP_MAP_BAD)
            .map(|(offset, &map)| (offset as u64, map))
    }

    /// The offset of `entry` in this area (Linux `_swap_info_get`'s
    /// checks but the last, which its callers differ on).
    fn offset_of(&self, entry: SwpEntry) -> Result<usize, SwapEntryError> {
        if entry.ty() != self.ty {
            return Err(SwapEntryError::BadFile);
        }
        if entry.offset() >= u64::from(self.max) {
            return Err(SwapEntryError::BadOffset);
        }
        // Below `max`, a u32.
        Ok(entry.offset() as usize)
    }

    /// The count of `entry`'s slot in the swap map itself, with
    /// [`COUNT_CONTINUED`] if it goes on (Linux `__swap_count`): 0 when
    /// no entry names it.
    #[doc(alias = "__swap_count")]
    pub fn swap_count(&self, entry: SwpEntry) -> Result<u8, SwapEntryError> {
        Ok(swap_count(self.swap_map[self.offset_of(entry)?]))
    }

    /// Counts one more swap entry naming `entry`'s slot (Linux
    /// `swap_duplicate`, `__swap_duplicate` with `usage` 1): fork copying
    /// a swap pte, unmap replacing a pte with one.
    ///
    /// At [`SWAP_MAP_MAX`] the count carries into continuation pages;
    /// when one is missing it fails with
    /// [`SwapEntryError::NoContinuation`] and changes nothing.
    pub fn swap_duplicate(&mut self, entry: SwpEntry) -> Result<(), SwapEntryError> {
        let offset = self.offset_of(entry)?;
        let map = self.swap_map[offset];
        let (count, has_cache) = (swap_count(map), map & SWAP_HAS_CACHE);
        if count == SWAP_MAP_BAD {
            return Err(SwapEntryError::BadSlot);
        }
        if map == 0 {
            return Err(SwapEntryError::Unused);
        }
        let count = if count & !COUNT_CONTINUED < SWAP_MAP_MAX {
            count + 1
        } else if self.swap_count_continued_inc(offset, count & COUNT_CONTINUED != 0) {
            COUNT_CONTINUED
        } else {
            return Err(SwapEntryError::NoContinuation);
        };
        self.swap_map[offset] = count | has_cache;
        Ok(())
    }

    /// Counts one swap entry fewer for `entry`'s slot (Linux `swap_free`,
    /// `__swap_entry_free_locked` with `usage` 1): zap, exit, a swapped-in
    /// page mapped again. The slot is free once neither an entry nor the
    /// swap cache holds it.
    pub fn swap_free(&mut self, entry: SwpEntry) -> Result<(), SwapEntryError> {
        let offset = self.offset_of(entry)?;
        let map = self.swap_map[offset];
        let (count, has_cache) = (swap_count(map), map & SWAP_HAS_CACHE);
        if map == 0 {
            return Err(SwapEntryError::Unused);
        }
        if count == SWAP_MAP_BAD {
            return Err(SwapEntryError::BadSlot);
        }
        if count == 0 {
            return Err(SwapEntryError::NoCount);
        }
        let count = if count == COUNT_CONTINUED {
            if self.swap_count_continued_dec(offset) { SWAP_MAP_MAX | COUNT_CONTINUED } else { SWAP_MAP_MAX }
        } else {
            count - 1
        };
        self.set_usage(offset, count | has_cache);
        Ok(())
    }

    /// Claims `entry`'s slot for the swap cache (Linux
    /// `swapcache_prepare`, `__swap_duplicate` with `SWAP_HAS_CACHE`):
    /// whoever sets [`SWAP_HAS_CACHE`] reads the page in; the others find
    /// [`SwapEntryError::Exists`] and wait for the cache.
    pub fn swapcache_prepare(&mut self, entry: SwpEntry) -> Result<(), SwapEntryError> {
        let offset = self.offset_of(entry)?;
        let map = self.swap_map[offset];
        if swap_count(map) == SWAP_MAP_BAD {
            return Err(SwapEntryError::BadSlot);
        }
        if map == 0 {
            return Err(SwapEntryError::Unused);
        }
        if map & SWAP_HAS_CACHE != 0 {
            return Err(SwapEntryError::Exists);
        }
        self.swap_map[offset] = map | SWAP_HAS_CACHE;
        Ok(())
    }

    /// Lets go of the swap cache's hold on `entry`'s slot (Linux
    /// `swapcache_clear`, and `put_swap_folio` when the page leaves the
    /// swap cache): the slot is free if no entry names it.
    #[doc(alias = "put_swap_folio")]
    pub fn swapcache_clear(&mut self, entry: SwpEntry) -> Result<(), SwapEntryError> {
        let offset = self.offset_of(entry)?;
        let map = self.swap_map[offset];
        if map & SWAP_HAS_CACHE == 0 {
            return Err(SwapEntryError::NotCached);
        }
        self.set_usage(offset, map & !SWAP_HAS_CACHE);
        Ok(())
    }

    /// Lets go of the swap cache's hold on `entry`'s slot, whose write
    /// failed, and takes the slot out of use for the area's life: it
    /// becomes [`SWAP_MAP_BAD`] and leaves `pages` and `inuse_pages`, as
    /// the header's bad pages are (`SwapTotal` shrinks, `SwapFree` stays).
    /// Only for a slot no swap entry names ([`SwapEntryError::InUse`]
    /// otherwise, changing nothing). Linux never marks a slot bad once the
    /// area is on: it keeps the page and writes the same slot again.
    pub fn swapcache_clear_bad(&mut self, entry: SwpEntry) -> Result<(), SwapEntryError> {
        let offset = self.offset_of(entry)?;
        let map = self.swap_map[offset];
        if map & SWAP_HAS_CACHE == 0 {
            return Err(SwapEntryError::NotCached);
        }
        if swap_count(map) != 0 {
            return Err(SwapEntryError::InUse);
        }
        // The byte stays non-zero: the cluster's count is unchanged
        // (invariant 1), and no allocation picks the slot again.
        self.swap_map[offset] = SWAP_MAP_BAD;
        self.inuse_pages -= 1;
        self.pages -= 1;
        Ok(())
    }

    /// Stores a slot's new byte, freeing the slot if it is zero.
    fn set_usage(&mut self, offset: usize, usage: u8) {
        if usage == 0 {
            self.swap_entry_range_free(offset);
        } else {
            self.swap_map[offset] = usage;
        }
    }
}

#[cfg(test)]
mod tests;
