//! Slab shrinkers (Linux `mm/shrinker.c`, with `shrink_slab`,
//! `do_shrink_slab` and `drop_slab` from `mm/vmscan.c`): the way reclaim
//! asks the kernel's object caches (dentries, inodes, a file system's
//! buffers) to give memory back.
//!
//! A cache implements [`ShrinkerOps`]: `count_objects` says how many
//! objects it could free, `scan_objects` looks at `nr_to_scan` of them and
//! frees what it can, or answers [`ShrinkScan::Stop`] when it cannot work
//! in this context (Linux `SHRINK_STOP`: a file system's cache asked by an
//! allocation without `__GFP_FS`). A [`Shrinker`] wraps the ops with their
//! tunables, `seeks` (the cost of recreating an object, [`DEFAULT_SEEKS`])
//! and `batch` ([`SHRINK_BATCH`]), and the work deferred from earlier
//! calls (`nr_deferred`). [`ShrinkerRegistry::register`] lists it (Linux
//! `shrinker_register`); [`ShrinkerRegistry::unregister`] unlists it
//! (the first half of `shrinker_free`).
//!
//! Reclaim calls [`shrink_slab`] once per priority pass
//! ([`crate::vmscan::shrink_page_cache`], Linux `shrink_node`), and
//! [`do_shrink_slab`] turns the pass's priority into work for each
//! shrinker as Linux does:
//! - `delta = (freeable >> priority) * 4 / seeks` (with `seeks == 0`:
//!   `freeable / 2`), the share of the cache this pass should scan, so
//!   that caches are scanned in proportion to the LRU pages at the same
//!   priority;
//! - `total_scan = (nr_deferred >> priority) + delta`, at most
//!   `2 * freeable`: work deferred by earlier calls (which could not do it,
//!   or got less than a batch) is taken over and scaled by the priority
//!   too;
//! - the shrinker is called with `nr_to_scan = min(batch, total_scan)`
//!   while `total_scan >= batch`, or, for a cache smaller than a batch,
//!   while `total_scan >= freeable` (tight on memory: scan it all);
//!   `slabs_scanned` counts what it reports scanned;
//! - what was not scanned is deferred again: `nr_deferred + delta -
//!   scanned`, at least 0 and at most `2 * freeable`. The deferred count
//!   is taken (swapped to 0) at the start, so concurrent reclaimers do not
//!   both do it, and added back at the end.
//!
//! [`drop_slab`] (`echo 2 > /proc/sys/vm/drop_caches`) runs every
//! shrinker at priority 0 until a round frees little.
//!
//! # Locking
//!
//! Reclaim runs inside the page allocator, so it can run from an
//! allocation made under any lock, and nothing here allocates: the
//! registry is a fixed array. Its lock (a spin `RwLock`) is held only to
//! copy a slot or change one, never across a shrinker's call:
//! - a walker (reclaim) takes it with `try_read` for each slot and, on
//!   contention, skips the slot for this pass rather than wait (Linux,
//!   up to 6.6, `down_read_trylock(&shrinker_rwsem)` in `shrink_slab`),
//!   so a shrinker reached from an allocation made by a registrar cannot
//!   deadlock on it;
//! - while it holds the slot it raises the shrinker's `active` count
//!   (Linux 6.7's `shrinker_try_get`), drops the lock, calls the shrinker,
//!   and lowers the count afterwards;
//! - [`ShrinkerRegistry::unregister`] takes the write lock briefly
//!   (walkers hold it only for a copy, never while sleeping) and clears the
//!   slot; no walk starts on the shrinker after it returns, and
//!   [`Shrinker::is_running`] tells the owner when the walks that had
//!   already started have ended (Linux `shrinker_free` waits for that on
//!   a completion; here the owner waits in its own way, since mm cannot
//!   sleep). Registered shrinkers are `'static`, so a late call can never
//!   reach freed memory.
//!
//! A shrinker's `scan_objects` may sleep and take its cache's locks only
//! when the mask allows (`__GFP_FS` for file-system caches); it must not
//! allocate.
//!
//! Differences from Linux: one node, no memcg (no `SHRINKER_NUMA_AWARE`
//! or `SHRINKER_MEMCG_AWARE`, one `nr_deferred` per shrinker, and
//! [`ShrinkCount::Empty`] means the same as no objects); the registry is
//! a fixed array of [`SHRINKER_MAX`] slots, full registrations failing
//! ([`ShrinkerError::Full`]), instead of a list of allocated shrinkers; a
//! shrinker reporting nothing scanned ends its scan (Linux would call it
//! again); no `vfs_cache_pressure` scaling (Linux's default, 100, scales
//! by one); the pages shrinkers free are not added to reclaim's count
//! (Linux's `reclaim_state->reclaimed`).

#![forbid(unsafe_code)]

use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::gfp::{GFP_KERNEL, Gfp};
use crate::page_alloc::PgData;
use crate::vmstat::VmEventItem;

/// The cost of recreating an object of a cache, in seeks, when it has no
/// better estimate (Linux `DEFAULT_SEEKS`).
pub const DEFAULT_SEEKS: u32 = 2;

/// Objects a shrinker is asked to scan per call unless it sets its own
/// batch (Linux `SHRINK_BATCH`).
pub const SHRINK_BATCH: u64 = 128;

/// Shrinkers the registry holds at most.
pub const SHRINKER_MAX: usize = 32;

/// One call's request to a shrinker (Linux `struct shrink_control`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShrinkControl {
    /// What the reclaiming allocation may do (Linux `gfp_mask`): a
    /// file-system cache does nothing without [`Gfp::FS`].
    pub gfp: Gfp,
    /// Objects to look at in this call.
    pub nr_to_scan: u64,
    /// Objects looked at, which the shrinker may lower from `nr_to_scan`
    /// (Linux `nr_scanned`); counted in `slabs_scanned`.
    pub nr_scanned: u64,
}

impl ShrinkControl {
    /// A request under `gfp`, nothing to scan yet.
    pub const fn new(gfp: Gfp) -> ShrinkControl {
        ShrinkControl { gfp, nr_to_scan: 0, nr_scanned: 0 }
    }
}

/// What `count_objects` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShrinkCount {
    /// This many objects could be freed; 0 when none can now.
    Objects(u64),
    /// The cache holds no objects at all (Linux `SHRINK_EMPTY`, which
    /// memcg-aware shrinking tells apart from 0; here it is the same).
    Empty,
}

/// What `scan_objects` answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShrinkScan {
    /// Objects freed (perhaps 0).
    Freed(u64),
    /// Nothing can be done in this context (Linux `SHRINK_STOP`): the
    /// work stays deferred.
    Stop,
}

/// A cache that can give objects back (Linux `count_objects` and
/// `scan_objects`).
pub trait ShrinkerOps: Sync {
    /// How many objects the cache could free now. Cheap and lock-light:
    /// reclaim asks every shrinker at every pass. Never sleeps, never
    /// allocates.
    fn count_objects(&self, sc: &ShrinkControl) -> ShrinkCount;
    /// Looks at up to `sc.nr_to_scan` objects and frees the unused ones;
    /// may lower `sc.nr_scanned`. Never allocates; sleeps only if `sc.gfp`
    /// allows it.
    fn scan_objects(&self, sc: &mut ShrinkControl) -> ShrinkScan;
}

/// A cache's shrinker (Linux `struct shrinker`): its ops, tunables and
/// deferred work.
pub struct Shrinker {
    name: &'static str,
    ops: &'static dyn ShrinkerOps,
    seeks: u32,
    batch: u64,
    /// Scan work earlier calls left undone (Linux `nr_deferred`).
    nr_deferred: AtomicU64,
    /// Walks calling it now (Linux 6.7's `refcount`).
    active: AtomicU32,
}

impl Shrinker {
    /// A shrinker named `name` (`/proc/slabinfo`-style, as Linux 6.x's
    /// `shrinker_alloc(flags, fmt, ...)` names them) over `ops`, with
    /// [`DEFAULT_SEEKS`] and [`SHRINK_BATCH`].
    pub const fn new(name: &'static str, ops: &'static dyn ShrinkerOps) -> Shrinker {
        Shrinker {
            name,
            ops,
            seeks: DEFAULT_SEEKS,
            batch: 0,
            nr_deferred: AtomicU64::new(0),
            active: AtomicU32::new(0),
        }
    }

    /// With `seeks` (Linux `shrinker->seeks`): 0 for objects that cost
    /// no I/O to recreate, which are trimmed by half of the cache per
    /// call.
    pub const fn with_seeks(self, seeks: u32) -> Shrinker {
        Shrinker { seeks, ..self }
    }

    /// With `batch` objects per call (Linux `shrinker->batch`; 0 is
    /// [`SHRINK_BATCH`]).
    pub const fn with_batch(self, batch: u64) -> Shrinker {
        Shrinker { batch, ..self }
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The scan work deferred to later calls.
    pub fn nr_deferred(&self) -> u64 {
        self.nr_deferred.load(Ordering::Relaxed)
    }

    /// Whether a walk is calling it now. After
    /// [`ShrinkerRegistry::unregister`], no new walk starts on it; this
    /// turns false once the started ones have ended.
    pub fn is_running(&self) -> bool {
        self.active.load(Ordering::Acquire) != 0
    }

    fn batch_size(&self) -> u64 {
        if self.batch == 0 { SHRINK_BATCH } else { self.batch }
    }
}

impl fmt::Debug for Shrinker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shrinker")
            .field("name", &self.name)
            .field("seeks", &self.seeks)
            .field("batch", &self.batch_size())
            .field("nr_deferred", &self.nr_deferred())
            .finish()
    }
}

/// Why a registration changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShrinkerError {
    /// Every slot is taken.
    Full,
    /// It is registered already.
    AlreadyRegistered,
    /// It is not registered.
    NotRegistered,
}

impl fmt::Display for ShrinkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ShrinkerError::Full => "no free shrinker slot",
            ShrinkerError::AlreadyRegistered => "shrinker already registered",
            ShrinkerError::NotRegistered => "shrinker not registered",
        })
    }
}

/// The node's shrinkers (Linux `shrinker_list` under `shrinker_rwsem`).
/// See the module doc for its locking.
pub struct ShrinkerRegistry {
    slots: spin::RwLock<[Option<&'static Shrinker>; SHRINKER_MAX]>,
}

impl Default for ShrinkerRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl ShrinkerRegistry {
    /// No shrinkers.
    pub const fn new() -> ShrinkerRegistry {
        ShrinkerRegistry { slots: spin::RwLock::new([None; SHRINKER_MAX]) }
    }

    /// Lists `shrinker`, after those registered before it (Linux
    /// `shrinker_register`). Spins only for another registration or a
    /// walker's slot copy.
    pub fn register(&self, shrinker: &'static Shrinker) -> Result<(), ShrinkerError> {
        let mut slots = self.slots.write();
        if slots.iter().flatten().any(|s| core::ptr::eq(*s, shrinker)) {
            return Err(ShrinkerError::AlreadyRegistered);
        }
        let free = slots.iter_mut().find(|s| s.is_none()).ok_or(ShrinkerError::Full)?;
        *free = Some(shrinker);
        Ok(())
    }

    /// Unlists `shrinker` (the first half of Linux `shrinker_free`): no
    /// walk starts on it once this returns; [`Shrinker::is_running`]
    /// says when those already calling it are done.
    pub fn unregister(&self, shrinker: &Shrinker) -> Result<(), ShrinkerError> {
        let mut slots = self.slots.write();
        let slot = slots
            .iter_mut()
            .find(|s| s.is_some_and(|s| core::ptr::eq(s, shrinker)))
            .ok_or(ShrinkerError::NotRegistered)?;
        *slot = None;
        Ok(())
    }

    /// The shrinkers registered now, by name, in registration order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        (0..SHRINKER_MAX).filter_map(|i| self.slots.read()[i].map(Shrinker::name))
    }

    /// Runs `f` on each registered shrinker with its `active` count
    /// raised, never holding the lock across `f` and never waiting for it
    /// (a contended slot is skipped).
    fn for_each(&self, mut f: impl FnMut(&Shrinker)) {
        for i in 0..SHRINKER_MAX {
            let shrinker = {
                let Some(slots) = self.slots.try_read() else { continue };
                let Some(shrinker) = slots[i] else { continue };
                shrinker.active.fetch_add(1, Ordering::Acquire);
                shrinker
            };
            f(shrinker);
            shrinker.active.fetch_sub(1, Ordering::Release);
        }
    }
}

/// What one [`do_shrink_slab`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShrinkOutcome {
    /// Objects freed.
    pub freed: u64,
    /// Objects scanned (Linux's `slabs_scanned` events).
    pub scanned: u64,
}

/// Runs one shrinker for a reclaim pass at `priority` (Linux
/// `do_shrink_slab`; the arithmetic is in the module doc). Never
/// allocates.
pub fn do_shrink_slab(sc: &mut ShrinkControl, shrinker: &Shrinker, priority: u32) -> ShrinkOutcome {
    let mut outcome = ShrinkOutcome::default();
    let freeable = match shrinker.ops.count_objects(sc) {
        ShrinkCount::Objects(0) | ShrinkCount::Empty => return outcome,
        ShrinkCount::Objects(n) => n,
    };
    let batch = shrinker.batch_size();
    let nr = shrinker.nr_deferred.swap(0, Ordering::Relaxed);
    let delta = if shrinker.seeks == 0 {
        freeable / 2
    } else {
        (freeable >> priority).saturating_mul(4) / u64::from(shrinker.seeks)
    };
    let max_scan = freeable.saturating_mul(2);
    let mut total_scan = nr.checked_shr(priority).unwrap_or(0).saturating_add(delta).min(max_scan);
    while total_scan >= batch || total_scan >= freeable {
        let nr_to_scan = batch.min(total_scan);
        sc.nr_to_scan = nr_to_scan;
        sc.nr_scanned = nr_to_scan;
        match shrinker.ops.scan_objects(sc) {
            ShrinkScan::Stop => break,
            ShrinkScan::Freed(n) => outcome.freed = outcome.freed.saturating_add(n),
        }
        if sc.nr_scanned == 0 {
            break;
        }
        total_scan = total_scan.saturating_sub(sc.nr_scanned);
        outcome.scanned = outcome.scanned.saturating_add(sc.nr_scanned);
    }
    let next_deferred = nr.saturating_add(delta).saturating_sub(outcome.scanned).min(max_scan);
    shrinker.nr_deferred.fetch_add(next_deferred, Ordering::Relaxed);
    outcome
}

/// Asks every registered shrinker to give objects back for a reclaim
/// pass at `priority` under `gfp` (Linux `shrink_slab`); counts
/// `slabs_scanned` and returns the objects freed. Never allocates.
pub fn shrink_slab(pgdat: &PgData<'_>, gfp: Gfp, priority: u32) -> u64 {
    let mut freed = 0u64;
    pgdat.shrinkers().for_each(|shrinker| {
        let mut sc = ShrinkControl::new(gfp);
        let outcome = do_shrink_slab(&mut sc, shrinker, priority);
        pgdat.count_vm_events(VmEventItem::SlabsScanned, outcome.scanned);
        freed = freed.saturating_add(outcome.freed);
    });
    freed
}

/// Shrinks every cache as far as it goes (Linux `drop_slab`, what
/// `echo 2 > /proc/sys/vm/drop_caches` runs): rounds of [`shrink_slab`]
/// at priority 0 with `GFP_KERNEL` until a round frees at most one object
/// beyond a halving allowance (Linux's `(freed >> shift++) > 1`). Returns
/// the objects freed. The caller may sleep and holds no lock a shrinker
/// takes.
pub fn drop_slab(pgdat: &PgData<'_>) -> u64 {
    let mut total = 0u64;
    let mut shift = 0u32;
    loop {
        let freed = shrink_slab(pgdat, GFP_KERNEL, 0);
        total = total.saturating_add(freed);
        if freed.checked_shr(shift).unwrap_or(0) <= 1 {
            return total;
        }
        shift += 1;
    }
}

#[cfg(test)]
mod tests;
