//! Clusters and slot allocation (Linux `struct swap_cluster_info` and
//! `struct percpu_cluster` of `mm/swap.h` and `include/linux/swap.h`,
//! and the cluster allocator of `mm/swapfile.c` as of 6.14:
//! `cluster_alloc_swap_entry`, `alloc_swap_scan_cluster`,
//! `relocate_cluster`, `partial_free_cluster`, `free_cluster`). The
//! mechanism and its invariants are in the parent module's doc.
//!
//! Linux takes a cluster off its list while it scans it (`CLUSTER_FLAG_NONE`,
//! `cluster_isolate_lock`) so that other CPUs pass it by, and puts it back
//! by its count after (`relocate_cluster`); we do the same though one lock
//! covers the area, as it also rotates the frag list.

use super::{SWAP_HAS_CACHE, SwapInfo};
use crate::swapops::SwpEntry;

/// Slots per cluster (Linux `SWAPFILE_CLUSTER` without THP swap): 1 MiB
/// of disk with 4 KiB pages.
pub const SWAPFILE_CLUSTER: u32 = 256;

/// No cluster (list links).
const NIL: u32 = u32::MAX;

/// Which list a cluster is on (Linux `enum swap_cluster_flags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ClusterFlags {
    /// On none: being scanned (`CLUSTER_FLAG_NONE`).
    None,
    /// Count 0, on the free list.
    Free,
    /// A slot was freed since the cluster was last scanned.
    Nonfull,
    /// Scanned, not full ("fragmented or contended").
    Frag,
    /// Every slot in use.
    Full,
}

/// One cluster's state (Linux `struct swap_cluster_info`): how many of its
/// slots are in use and its place on a list.
#[doc(alias = "swap_cluster_info")]
#[derive(Clone, Copy, Debug)]
pub struct SwapClusterInfo {
    /// Slots in use, counting bad ones and those past the area's end.
    pub(super) count: u16,
    pub(super) flags: ClusterFlags,
    prev: u32,
    next: u32,
}

impl SwapClusterInfo {
    /// A cluster before setup.
    pub const fn new() -> Self {
        SwapClusterInfo { count: 0, flags: ClusterFlags::None, prev: NIL, next: NIL }
    }
}

impl Default for SwapClusterInfo {
    fn default() -> Self {
        Self::new()
    }
}

/// A CPU's current cluster (Linux `struct percpu_cluster`): the offset to
/// allocate from next.
#[derive(Clone, Copy, Debug, Default)]
pub struct PercpuCluster {
    pub(super) next: Option<u32>,
}

impl PercpuCluster {
    /// No current cluster.
    pub const fn new() -> Self {
        PercpuCluster { next: None }
    }
}

/// A list of clusters linked by index through their [`SwapClusterInfo`]s
/// (Linux `struct list_head`).
#[derive(Debug)]
pub(super) struct ClusterList {
    head: u32,
    tail: u32,
    pub(super) len: u32,
}

impl ClusterList {
    const fn new() -> Self {
        ClusterList { head: NIL, tail: NIL, len: 0 }
    }

    pub(super) fn first(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// The clusters in list order.
    #[cfg(test)]
    pub(super) fn iter<'c>(&self, ci: &'c [SwapClusterInfo]) -> impl Iterator<Item = u32> + 'c {
        core::iter::successors(self.first(), move |&idx| Some(ci[idx as usize].next).filter(|&n| n != NIL))
    }

    fn add_tail(&mut self, ci: &mut [SwapClusterInfo], idx: u32) {
        ci[idx as usize].prev = self.tail;
        ci[idx as usize].next = NIL;
        match self.tail {
            NIL => self.head = idx,
            tail => ci[tail as usize].next = idx,
        }
        self.tail = idx;
        self.len += 1;
    }

    fn del(&mut self, ci: &mut [SwapClusterInfo], idx: u32) {
        let SwapClusterInfo { prev, next, .. } = ci[idx as usize];
        match prev {
            NIL => self.head = next,
            prev => ci[prev as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            next => ci[next as usize].prev = prev,
        }
        self.len -= 1;
    }
}

/// The area's cluster lists (Linux `si->free_clusters`,
/// `nonfull_clusters[0]`, `frag_clusters[0]`, `full_clusters`).
#[derive(Debug)]
pub(super) struct ClusterLists {
    pub(super) free: ClusterList,
    pub(super) nonfull: ClusterList,
    pub(super) frag: ClusterList,
    pub(super) full: ClusterList,
}

impl ClusterLists {
    pub(super) const fn new() -> Self {
        ClusterLists {
            free: ClusterList::new(),
            nonfull: ClusterList::new(),
            frag: ClusterList::new(),
            full: ClusterList::new(),
        }
    }

    /// The list `flags` names.
    pub(super) fn get(&mut self, flags: ClusterFlags) -> Option<&mut ClusterList> {
        match flags {
            ClusterFlags::None => None,
            ClusterFlags::Free => Some(&mut self.free),
            ClusterFlags::Nonfull => Some(&mut self.nonfull),
            ClusterFlags::Frag => Some(&mut self.frag),
            ClusterFlags::Full => Some(&mut self.full),
        }
    }
}

impl SwapInfo<'_> {
    /// Counts each cluster's unusable slots (the header, bad pages, the
    /// slots of the last cluster past `max`) and puts it on the free list
    /// if it has none, on the nonfull list otherwise (Linux
    /// `setup_clusters`).
    pub(super) fn setup_clusters(&mut self) {
        for idx in 0..self.cluster_info.len() {
            let start = idx * SWAPFILE_CLUSTER as usize;
            let end = (start + SWAPFILE_CLUSTER as usize).min(self.max as usize);
            let bad = self.swap_map[start..end].iter().filter(|&&map| map != 0).count();
            // At most SWAPFILE_CLUSTER.
            let count = (bad + start + SWAPFILE_CLUSTER as usize - end) as u16;
            self.cluster_info[idx] = SwapClusterInfo { count, ..SwapClusterInfo::new() };
            // Fewer than 2^32 / SWAPFILE_CLUSTER clusters.
            self.cluster_move(idx as u32, if count == 0 { ClusterFlags::Free } else { ClusterFlags::Nonfull });
        }
    }

    /// Moves cluster `idx` to the tail of the list `flags` names (Linux
    /// `move_cluster`).
    fn cluster_move(&mut self, idx: u32, flags: ClusterFlags) {
        let ci = &mut *self.cluster_info;
        if let Some(list) = self.lists.get(ci[idx as usize].flags) {
            list.del(ci, idx);
        }
        if let Some(list) = self.lists.get(flags) {
            list.add_tail(ci, idx);
        }
        ci[idx as usize].flags = flags;
    }

    /// Takes the first cluster off the list `flags` names for scanning
    /// (Linux `cluster_isolate_lock`).
    fn cluster_isolate(&mut self, flags: ClusterFlags) -> Option<u32> {
        let idx = self.lists.get(flags)?.first()?;
        self.cluster_move(idx, ClusterFlags::None);
        Some(idx)
    }

    /// Puts a scanned cluster on the list its count calls for (Linux
    /// `relocate_cluster`): full, or the frag list's tail.
    fn relocate_cluster(&mut self, idx: u32) {
        let ci = self.cluster_info[idx as usize];
        let flags = match u32::from(ci.count) {
            0 => ClusterFlags::Free,
            SWAPFILE_CLUSTER => ClusterFlags::Full,
            _ => ClusterFlags::Frag,
        };
        if ci.flags != flags {
            self.cluster_move(idx, flags);
        }
    }

    /// Allocates the first free slot of cluster `idx` at or after
    /// `offset`, and puts the cluster back on a list (Linux
    /// `alloc_swap_scan_cluster` for order 0). Returns the slot and where
    /// the next allocation should start, if in this cluster.
    fn alloc_swap_scan_cluster(&mut self, idx: u32, offset: u32) -> (Option<u32>, Option<u32>) {
        let start = idx * SWAPFILE_CLUSTER;
        let end = start.saturating_add(SWAPFILE_CLUSTER).min(self.max);
        let mut found = None;
        let mut next = None;
        if u32::from(self.cluster_info[idx as usize].count) < SWAPFILE_CLUSTER
            && let Some(slot) = (offset..end).find(|&slot| self.swap_map[slot as usize] == 0)
        {
            self.cluster_alloc_range(idx, slot);
            found = Some(slot);
            if u32::from(self.cluster_info[idx as usize].count) < SWAPFILE_CLUSTER && slot + 1 < end {
                next = Some(slot + 1);
            }
        }
        self.relocate_cluster(idx);
        (found, next)
    }

    /// Gives slot `offset` of cluster `idx` to the swap cache (Linux
    /// `cluster_alloc_range` with `SWAP_HAS_CACHE` and
    /// `swap_range_alloc`).
    fn cluster_alloc_range(&mut self, idx: u32, offset: u32) {
        self.swap_map[offset as usize] = SWAP_HAS_CACHE;
        self.cluster_info[idx as usize].count += 1;
        self.inuse_pages += 1;
    }

    /// Allocates one slot for CPU `cpu` (Linux `cluster_alloc_swap_entry`
    /// for order 0): after its last one in its current cluster, else in
    /// the first free cluster, else in the first nonfull cluster, else in
    /// the first frag cluster. Remembers where the next should start.
    fn cluster_alloc_swap_entry(&mut self, cpu: usize) -> Option<u32> {
        let pcp = cpu % self.percpu_cluster.len();
        let mut next = self.percpu_cluster[pcp].next;
        let mut found = None;
        if let Some(offset) = next {
            let idx = offset / SWAPFILE_CLUSTER;
            let ci = self.cluster_info[idx as usize];
            // Linux `cluster_is_usable`: not full, and from its start if it
            // emptied meanwhile.
            if ci.flags != ClusterFlags::Full {
                let from = if ci.count == 0 { idx * SWAPFILE_CLUSTER } else { offset };
                (found, next) = self.alloc_swap_scan_cluster(idx, from);
            }
        }
        if found.is_none()
            && let Some(idx) = self.cluster_isolate(ClusterFlags::Free)
        {
            (found, next) = self.alloc_swap_scan_cluster(idx, idx * SWAPFILE_CLUSTER);
        }
        while found.is_none() {
            let Some(idx) = self.cluster_isolate(ClusterFlags::Nonfull) else { break };
            (found, next) = self.alloc_swap_scan_cluster(idx, idx * SWAPFILE_CLUSTER);
        }
        // Each frag cluster scanned goes to the tail: one round at most.
        for _ in 0..self.lists.frag.len {
            if found.is_some() {
                break;
            }
            let Some(idx) = self.cluster_isolate(ClusterFlags::Frag) else { break };
            (found, next) = self.alloc_swap_scan_cluster(idx, idx * SWAPFILE_CLUSTER);
        }
        self.percpu_cluster[pcp].next = next;
        found
    }

    /// Allocates up to `entries.len()` slots for the swap cache on CPU
    /// `cpu` (the area's part of Linux `get_swap_pages`,
    /// `scan_swap_map_slots`), each with [`SWAP_HAS_CACHE`] and no count,
    /// and returns how many it got: fewer only when the area is full.
    /// Consecutive calls on one CPU take consecutive slots of its cluster.
    #[doc(alias = "scan_swap_map_slots")]
    pub fn get_swap_pages(&mut self, cpu: usize, entries: &mut [SwpEntry]) -> usize {
        let mut got = 0;
        for entry in entries.iter_mut() {
            if self.inuse_pages == self.pages {
                break;
            }
            let Some(offset) = self.cluster_alloc_swap_entry(cpu) else { break };
            *entry = SwpEntry::new(self.ty, u64::from(offset));
            got += 1;
        }
        got
    }

    /// Frees slot `offset`, whose last holder let go (Linux
    /// `swap_entry_range_free` for one slot, with `swap_range_free`):
    /// its cluster goes to the free list if now empty, else to the
    /// nonfull list.
    pub(super) fn swap_entry_range_free(&mut self, offset: usize) {
        self.swap_map[offset] = 0;
        self.inuse_pages -= 1;
        // Below `max`, a u32.
        let idx = (offset / SWAPFILE_CLUSTER as usize) as u32;
        let ci = &mut self.cluster_info[idx as usize];
        ci.count -= 1;
        if ci.count == 0 {
            self.cluster_move(idx, ClusterFlags::Free);
        } else if ci.flags != ClusterFlags::Nonfull {
            self.cluster_move(idx, ClusterFlags::Nonfull);
        }
    }
}
