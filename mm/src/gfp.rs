//! Allocation flags: how an allocation may be satisfied (Linux
//! `include/linux/gfp_types.h` and `include/linux/gfp.h`).
//!
//! A `Gfp` ("get free pages") mask tells the page allocator which zones it may
//! use (the zone modifiers), which free lists to prefer (the mobility bits,
//! which select the migratetype), how hard it may try (the reclaim bits), what
//! it may dip into (`__GFP_HIGH`, `__GFP_MEMALLOC`) and what to do with the
//! result (`__GFP_ZERO`, `__GFP_COMP`). The composite masks callers use
//! (`GFP_KERNEL`, `GFP_ATOMIC`, ...) are defined exactly as in Linux.
//!
//! Differences from Linux:
//! - The bit values are ours; only the names and meanings are Linux's.
//! - There is no ZONE_HIGHMEM or ZONE_MOVABLE: `__GFP_HIGHMEM` is accepted and,
//!   like on 64-bit Linux without ZONE_MOVABLE, selects ZONE_NORMAL;
//!   `__GFP_MOVABLE` only selects the movable migratetype.
//! - Nothing reclaims yet: the reclaim bits are carried and decide the slow
//!   path's choices (draining per-cpu lists, the atomic reserves), and will
//!   drive direct reclaim and kswapd when those exist. `__GFP_NOFAIL` cannot
//!   loop on reclaim that does not exist; such an allocation fails like any
//!   other and says so.

#![forbid(unsafe_code)]

use bitflags::bitflags;

use crate::mmzone::{MigrateType, ZoneType};

bitflags! {
    /// An allocation mask (Linux `gfp_t`). The associated constants are the
    /// `__GFP_*` bits; the `GFP_*` composites are module constants.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    #[doc(alias = "gfp_t")]
    pub struct Gfp: u32 {
        /// `__GFP_DMA`: memory below 16 MiB (ISA DMA).
        const DMA = 1 << 0;
        /// `__GFP_HIGHMEM`: any memory; ZONE_NORMAL on 64-bit.
        const HIGHMEM = 1 << 1;
        /// `__GFP_DMA32`: memory below 4 GiB (32-bit DMA).
        const DMA32 = 1 << 2;
        /// `__GFP_MOVABLE`: the page can be migrated or reclaimed; taken from
        /// movable pageblocks.
        const MOVABLE = 1 << 3;
        /// `__GFP_RECLAIMABLE`: slab-like memory that shrinkers can free;
        /// taken from reclaimable pageblocks.
        const RECLAIMABLE = 1 << 4;
        /// `__GFP_HIGH`: high priority; may use part of the reserve below the
        /// min watermark.
        const HIGH = 1 << 5;
        /// `__GFP_IO`: reclaim may start physical I/O.
        const IO = 1 << 6;
        /// `__GFP_FS`: reclaim may call into filesystems.
        const FS = 1 << 7;
        /// `__GFP_ZERO`: return zeroed memory.
        const ZERO = 1 << 8;
        /// `__GFP_DIRECT_RECLAIM`: the caller may sleep and reclaim.
        const DIRECT_RECLAIM = 1 << 10;
        /// `__GFP_KSWAPD_RECLAIM`: wake kswapd when low on memory.
        const KSWAPD_RECLAIM = 1 << 11;
        /// `__GFP_WRITE`: the caller intends to dirty the page.
        const WRITE = 1 << 12;
        /// `__GFP_NOWARN`: do not log allocation failures.
        const NOWARN = 1 << 13;
        /// `__GFP_RETRY_MAYFAIL`: try hard, but fail rather than OOM-kill.
        const RETRY_MAYFAIL = 1 << 14;
        /// `__GFP_NOFAIL`: the caller cannot handle failure.
        const NOFAIL = 1 << 15;
        /// `__GFP_NORETRY`: fail quickly rather than reclaim hard.
        const NORETRY = 1 << 16;
        /// `__GFP_MEMALLOC`: ignore watermarks entirely (reclaim itself
        /// allocating).
        const MEMALLOC = 1 << 17;
        /// `__GFP_COMP`: make a compound page (head and tails).
        const COMP = 1 << 18;
        /// `__GFP_NOMEMALLOC`: never use the emergency reserves.
        const NOMEMALLOC = 1 << 19;
        /// `__GFP_HARDWALL`: respect cpuset memory policy (user allocations).
        const HARDWALL = 1 << 20;
        /// `__GFP_THISNODE`: no fallback to other nodes.
        const THISNODE = 1 << 21;
        /// `__GFP_ACCOUNT`: charge to the memory cgroup.
        const ACCOUNT = 1 << 22;
    }
}

/// `__GFP_RECLAIM`: both reclaim bits.
pub const GFP_RECLAIM: Gfp = Gfp::DIRECT_RECLAIM.union(Gfp::KSWAPD_RECLAIM);
/// `GFP_ATOMIC`: cannot sleep, may use reserves, wakes kswapd.
pub const GFP_ATOMIC: Gfp = Gfp::HIGH.union(Gfp::KSWAPD_RECLAIM);
/// `GFP_KERNEL`: ordinary kernel allocations; may sleep and reclaim.
pub const GFP_KERNEL: Gfp = GFP_RECLAIM.union(Gfp::IO).union(Gfp::FS);
/// `GFP_KERNEL_ACCOUNT`: `GFP_KERNEL`, charged to the memory cgroup.
pub const GFP_KERNEL_ACCOUNT: Gfp = GFP_KERNEL.union(Gfp::ACCOUNT);
/// `GFP_NOWAIT`: cannot sleep, no reserves, failure is expected and quiet.
pub const GFP_NOWAIT: Gfp = Gfp::KSWAPD_RECLAIM.union(Gfp::NOWARN);
/// `GFP_NOIO`: may reclaim but start no I/O.
pub const GFP_NOIO: Gfp = GFP_RECLAIM;
/// `GFP_NOFS`: may reclaim and do I/O but not call filesystems.
pub const GFP_NOFS: Gfp = GFP_RECLAIM.union(Gfp::IO);
/// `GFP_USER`: user-space pages the kernel also touches.
pub const GFP_USER: Gfp = GFP_KERNEL.union(Gfp::HARDWALL);
/// `GFP_DMA`: ZONE_DMA only.
pub const GFP_DMA: Gfp = Gfp::DMA;
/// `GFP_DMA32`: ZONE_DMA32 or below.
pub const GFP_DMA32: Gfp = Gfp::DMA32;
/// `GFP_HIGHUSER`: user pages the kernel need not map.
pub const GFP_HIGHUSER: Gfp = GFP_USER.union(Gfp::HIGHMEM);
/// `GFP_HIGHUSER_MOVABLE`: user pages that can be migrated (anonymous and
/// page-cache memory).
pub const GFP_HIGHUSER_MOVABLE: Gfp = GFP_HIGHUSER.union(Gfp::MOVABLE);
/// `GFP_TRANSHUGE_LIGHT`: a THP attempt that neither reclaims nor warns.
pub const GFP_TRANSHUGE_LIGHT: Gfp =
    GFP_HIGHUSER_MOVABLE.union(Gfp::COMP).union(Gfp::NOMEMALLOC).union(Gfp::NOWARN).difference(GFP_RECLAIM);
/// `GFP_TRANSHUGE`: a THP attempt that may reclaim directly.
pub const GFP_TRANSHUGE: Gfp = GFP_TRANSHUGE_LIGHT.union(Gfp::DIRECT_RECLAIM);

impl Gfp {
    /// The highest zone this mask may allocate from (Linux `gfp_zone`).
    /// Several zone modifiers at once is a caller bug; the most restrictive
    /// wins.
    pub const fn zone(self) -> ZoneType {
        if self.contains(Gfp::DMA) {
            ZoneType::Dma
        } else if self.contains(Gfp::DMA32) {
            ZoneType::Dma32
        } else {
            ZoneType::Normal
        }
    }

    /// The free lists this allocation prefers (Linux `gfp_migratetype`).
    /// Both mobility bits at once is a caller bug; movable wins.
    pub const fn migratetype(self) -> MigrateType {
        if self.contains(Gfp::MOVABLE) {
            MigrateType::Movable
        } else if self.contains(Gfp::RECLAIMABLE) {
            MigrateType::Reclaimable
        } else {
            MigrateType::Unmovable
        }
    }

    /// Whether the caller may sleep and reclaim (Linux
    /// `gfpflags_allow_blocking`).
    pub const fn allows_blocking(self) -> bool {
        self.contains(Gfp::DIRECT_RECLAIM)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_modifiers_select_the_highest_usable_zone() {
        assert_eq!(GFP_KERNEL.zone(), ZoneType::Normal);
        assert_eq!(GFP_HIGHUSER_MOVABLE.zone(), ZoneType::Normal);
        assert_eq!((GFP_KERNEL | GFP_DMA32).zone(), ZoneType::Dma32);
        assert_eq!((GFP_ATOMIC | GFP_DMA).zone(), ZoneType::Dma);
    }

    #[test]
    fn mobility_bits_select_the_migratetype() {
        assert_eq!(GFP_KERNEL.migratetype(), MigrateType::Unmovable);
        assert_eq!(GFP_HIGHUSER_MOVABLE.migratetype(), MigrateType::Movable);
        assert_eq!((GFP_KERNEL | Gfp::RECLAIMABLE).migratetype(), MigrateType::Reclaimable);
    }

    #[test]
    fn composites_match_linux_definitions() {
        assert!(GFP_KERNEL.allows_blocking());
        assert!(!GFP_ATOMIC.allows_blocking());
        assert!(GFP_ATOMIC.contains(Gfp::HIGH));
        assert!(!GFP_NOWAIT.contains(Gfp::HIGH));
        assert!(!GFP_NOFS.contains(Gfp::FS) && GFP_NOFS.contains(Gfp::IO));
        assert!(!GFP_TRANSHUGE_LIGHT.intersects(GFP_RECLAIM));
        assert!(GFP_TRANSHUGE.contains(Gfp::DIRECT_RECLAIM | Gfp::COMP));
    }
}
