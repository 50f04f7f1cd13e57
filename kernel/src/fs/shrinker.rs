//! The superblock shrinker (Linux `fs/super.c`'s `super_cache_count` and
//! `super_cache_scan`, with `fs/dcache.c`'s `prune_dcache_sb` and
//! `fs/inode.c`'s `prune_icache_sb`): what memory pressure takes back
//! from the file systems' caches, through [`mm::shrinker`].
//!
//! Its count is every mounted superblock's dcache entries plus the
//! objects of the file system's own caches
//! ([`super::inode::SuperOperations::nr_cached_objects`]: ext2's clean
//! metadata blocks). A scan shares `nr_to_scan` among the superblocks by
//! their counts and, within one, between the dcache and the file
//! system's objects, as `super_cache_scan` does, dentries first since
//! they pin the inodes:
//! - [`Dcache::prune`](super::dcache::Dcache::prune) frees unreferenced
//!   entries; an inode whose last reference an entry held is evicted when
//!   the pruner lets go of it (its page cache emptied first, as Linux's
//!   `evict` does: it has no pages left by then, see below);
//! - an unused inode that still has cached pages keeps its entry; its
//!   clean pages are dropped (`invalidate_mapping_pages`, counted as
//!   `kswapd_inodesteal` or `pginodesteal`, Linux `inode_lru_isolate`),
//!   and a later pass evicts it;
//! - [`super::inode::SuperOperations::free_cached_objects`] gets the
//!   file system's share.
//!
//! Like Linux's, the scan answers `SHRINK_STOP` without `__GFP_FS`:
//! eviction takes the file system's lock (ext2's instance mutex) and may
//! sleep. This kernel has no `memalloc_nofs_save` scopes, so a `Box` or
//! `Vec` allocated under a file system's lock comes with `GFP_KERNEL`;
//! direct reclaim therefore takes `__GFP_FS` off
//! ([`crate::filemap`]'s reclaim), and the work it asks for is deferred to
//! kswapd (whose thread holds no lock) and to `drop_caches`, through the
//! shrinker's `nr_deferred`.
//!
//! Differences from Linux: one shrinker over every mounted superblock
//! (Linux registers one per superblock, `sb-<type>`), since the
//! registry holds only `'static` shrinkers; no `s_umount` trylock (a
//! superblock is reached through a reference taken under the mount
//! table's lock, and an unmounted one has an empty dcache); no
//! `vfs_cache_pressure`.

#![forbid(unsafe_code)]

use alloc::sync::Arc;

use mm::gfp::Gfp;
use mm::shrinker::{ShrinkControl, ShrinkCount, ShrinkScan, Shrinker, ShrinkerOps};
use mm::vmstat::VmEventItem;

use super::dcache::Pruned;
use super::inode::SuperBlock;
use super::namespace;

/// The superblocks' caches as one shrinker.
struct SuperCaches;

static SUPER_CACHES: SuperCaches = SuperCaches;

/// The shrinker (Linux names each superblock's `sb-<type>`).
static SB_SHRINKER: Shrinker = Shrinker::new("sb", &SUPER_CACHES);

/// Registers the superblock shrinker with reclaim, once at boot.
pub fn register() {
    if let Err(e) = crate::mm::pgdat().shrinkers().register(&SB_SHRINKER) {
        log::error!("vfs: no superblock shrinker: {e}");
    }
}

/// The objects of `sb` the shrinker could free (Linux
/// `super_cache_count` for one superblock). Takes no lock.
fn sb_objects(sb: &SuperBlock) -> u64 {
    sb.dcache.len().saturating_add(sb.ops.nr_cached_objects())
}

/// `n * numerator / denominator` without overflow (Linux `mult_frac`).
fn mult_frac(n: u64, numerator: u64, denominator: u64) -> u64 {
    (u128::from(n) * u128::from(numerator) / u128::from(denominator.max(1))) as u64
}

impl ShrinkerOps for SuperCaches {
    fn count_objects(&self, _sc: &ShrinkControl) -> ShrinkCount {
        let mut total = 0u64;
        namespace::for_each_superblock_locked(|sb| total = total.saturating_add(sb_objects(sb)));
        if total == 0 { ShrinkCount::Empty } else { ShrinkCount::Objects(total) }
    }

    fn scan_objects(&self, sc: &mut ShrinkControl) -> ShrinkScan {
        if !sc.gfp.contains(Gfp::FS) {
            return ShrinkScan::Stop;
        }
        let mut total = 1u64;
        namespace::for_each_superblock_locked(|sb| total = total.saturating_add(sb_objects(sb)));
        let mut freed = 0u64;
        let mut i = 0;
        while let Some(sb) = namespace::superblock_at(i) {
            i += 1;
            let objects = sb_objects(&sb);
            if objects > 0 {
                let share = mult_frac(sc.nr_to_scan, objects, total) + 1;
                freed = freed.saturating_add(super_cache_scan(&sb, share));
            }
        }
        ShrinkScan::Freed(freed)
    }
}

/// One superblock's part of a scan (Linux `super_cache_scan`): its
/// share split between dentries and the file system's objects by their
/// counts. May sleep (eviction).
fn super_cache_scan(sb: &Arc<SuperBlock>, nr_to_scan: u64) -> u64 {
    let fs_objects = sb.ops.nr_cached_objects();
    let dentries = sb.dcache.len();
    let total = dentries.saturating_add(fs_objects).saturating_add(1);
    let mut freed = prune_dcache_sb(sb, mult_frac(nr_to_scan, dentries, total) + 1);
    if fs_objects > 0 {
        freed = freed.saturating_add(sb.ops.free_cached_objects(mult_frac(nr_to_scan, fs_objects, total) + 1));
    }
    freed
}

/// Prunes up to `nr_to_scan` dentries of `sb` (Linux `prune_dcache_sb`,
/// with `prune_icache_sb`'s handling of inodes that have pages); see the
/// module doc. Returns the entries freed.
fn prune_dcache_sb(sb: &SuperBlock, nr_to_scan: u64) -> u64 {
    let mut left = nr_to_scan;
    let mut freed = 0u64;
    while left > 0 {
        let Pruned { scanned, freed: chunk_freed, evict, with_pages } = sb.dcache.prune(left);
        freed = freed.saturating_add(chunk_freed);
        left = left.saturating_sub(scanned);
        // Evictions, with no lock held: the last reference of each goes.
        drop(evict);
        let mut reaped = 0;
        for inode in with_pages.iter().flatten() {
            if let Some(mapping) = inode.i_mapping.as_ref() {
                reaped += crate::filemap::invalidate_mapping_pages(mapping);
            }
        }
        drop(with_pages);
        if reaped > 0 {
            let event = if crate::filemap::current_is_kswapd() {
                VmEventItem::KswapdInodesteal
            } else {
                VmEventItem::Pginodesteal
            };
            crate::mm::pgdat().count_vm_events(event, reaped);
        }
        if scanned == 0 {
            break;
        }
    }
    freed
}
