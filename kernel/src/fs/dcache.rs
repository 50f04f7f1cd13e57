//! The lookup cache (Linux `fs/dcache.c` in miniature): per superblock,
//! (directory inode, name) -> the inode it names, or a negative entry for
//! a name known to be absent.
//!
//! Path walk asks here before it asks the file system
//! ([`super::namei`]); every operation that changes a directory
//! ([`super::namei`]'s create, mkdir, symlink, link, unlink, rmdir and
//! rename) invalidates the names it touched after the file system has
//! answered, so a later walk never sees a stale entry. `.` and `..` are
//! never cached.
//!
//! Memory pressure shrinks it ([`Dcache::prune`], Linux
//! `prune_dcache_sb`, run by the superblock shrinker,
//! [`super::shrinker`]). A hit marks its entry referenced
//! (`DCACHE_REFERENCED`); the pruner walks the entries from where it last
//! stopped, like a clock hand over Linux's LRU: a referenced entry loses
//! the mark and stays (`LRU_ROTATE`), a negative one goes, and a positive
//! one goes if its inode has no other user, its last reference going with
//! it: that is the inode's eviction ([`super::inode::Inode`]'s drop,
//! Linux `iput_final` and `evict`), done after the lock is let go. An
//! unused inode that still has cached pages stays until they are dropped
//! (Linux `inode_lru_isolate`): the pruner hands it back for
//! `invalidate_mapping_pages` and takes it at a later pass.
//!
//! Differences from Linux: the cache is a map, not a tree of `struct
//! dentry` objects; it does not give paths their identity (a path is a
//! mount and an inode, [`super::namespace::Path`]), and `getcwd` asks the
//! file system for names instead of following `d_parent`. An entry has no
//! use count (path walk holds the inode, not the entry), so "unused" is
//! said of the inode: a positive entry whose inode something else holds
//! (an open file, a cwd, another name of it) stays, as Linux's in-use
//! dentries are off its LRU. The inode cache holds no unused inodes (it
//! keeps weak references, [`super::inode`]): the entries here are what
//! keeps an unused inode in memory, so pruning them is Linux's
//! `prune_icache_sb` too. File systems whose directories already live in
//! memory (the rootfs, tmpfs) skip the cache
//! ([`super::inode::SuperOperations::cache_lookups`]).
//!
//! Locking: one leaf spin lock per superblock, never held across a call
//! into the file system or an inode's last reference; the entry count is
//! also kept in an atomic, which the shrinker reads without the lock.

#![forbid(unsafe_code)]

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use super::inode::{Ino, Inode};
use crate::sync::SpinLock;

/// A cached lookup result: the inode, or `None` for a negative entry.
pub type Dentry = Option<Arc<Inode>>;

/// Entries the pruner looks at per lock hold, and the inodes it can let
/// go or hand back per hold (an array on its stack: it may not allocate).
const PRUNE_CHUNK: usize = 32;

/// A cached entry and its `DCACHE_REFERENCED` mark.
struct Entry {
    dentry: Dentry,
    referenced: bool,
}

/// The map and the pruner's hand (the position it resumes at).
struct DcacheInner {
    map: BTreeMap<(Ino, Vec<u8>), Entry>,
    hand: usize,
}

/// One superblock's lookup cache.
pub struct Dcache {
    inner: SpinLock<DcacheInner>,
    /// Entries now (Linux `nr_dentry`), for the shrinker's count.
    nr_dentry: AtomicU64,
}

/// What one [`Dcache::prune`] chunk did.
#[derive(Default)]
pub struct Pruned {
    /// Entries looked at.
    pub scanned: u64,
    /// Entries freed.
    pub freed: u64,
    /// Inodes the freed entries held, to be let go after the lock (their
    /// eviction if they were the last reference).
    pub evict: [Option<Arc<Inode>>; PRUNE_CHUNK],
    /// Unused inodes that kept their entry because pages are cached: the
    /// caller drops those pages (Linux `inode_lru_isolate`'s
    /// `invalidate_mapping_pages`) so that a later pass frees them.
    pub with_pages: [Option<Arc<Inode>>; PRUNE_CHUNK],
}

impl Default for Dcache {
    fn default() -> Self {
        Self::new()
    }
}

impl Dcache {
    /// An empty cache.
    pub const fn new() -> Self {
        Dcache { inner: SpinLock::new(DcacheInner { map: BTreeMap::new(), hand: 0 }), nr_dentry: AtomicU64::new(0) }
    }

    /// The cached result for `name` in directory `dir`, if any (Linux
    /// `d_lookup`): `Some(None)` is a negative entry. A hit marks the
    /// entry referenced.
    pub fn lookup(&self, dir: Ino, name: &[u8]) -> Option<Dentry> {
        let key = (dir, name.to_vec());
        let mut inner = self.inner.lock();
        let entry = inner.map.get_mut(&key)?;
        entry.referenced = true;
        Some(entry.dentry.clone())
    }

    /// Records what `name` in `dir` is (Linux `d_add`).
    pub fn add(&self, dir: Ino, name: &[u8], dentry: Dentry) {
        let mut key = Vec::new();
        if key.try_reserve_exact(name.len()).is_err() {
            return;
        }
        key.extend_from_slice(name);
        // An entry replaced here may hold the last reference to an inode,
        // whose drop takes the inode cache lock: drop it unlocked.
        let old = {
            let mut inner = self.inner.lock();
            let old = inner.map.insert((dir, key), Entry { dentry, referenced: false });
            self.nr_dentry.store(inner.map.len() as u64, Ordering::Relaxed);
            old
        };
        drop(old);
    }

    /// Forgets `name` in `dir` (Linux `d_invalidate`/`d_drop`).
    pub fn invalidate(&self, dir: Ino, name: &[u8]) {
        let key = (dir, name.to_vec());
        let old = {
            let mut inner = self.inner.lock();
            let old = inner.map.remove(&key);
            self.nr_dentry.store(inner.map.len() as u64, Ordering::Relaxed);
            old
        };
        drop(old);
    }

    /// Forgets everything (unmount, which breaks the superblock -> inode
    /// references the entries hold).
    pub fn clear(&self) {
        let old = {
            let mut inner = self.inner.lock();
            self.nr_dentry.store(0, Ordering::Relaxed);
            inner.hand = 0;
            core::mem::take(&mut inner.map)
        };
        drop(old);
    }

    /// Entries cached now, read without the lock (Linux
    /// `list_lru_shrink_count` of `s_dentry_lru`).
    pub fn len(&self) -> u64 {
        self.nr_dentry.load(Ordering::Relaxed)
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Looks at up to `nr_to_scan` entries (at most [`PRUNE_CHUNK`]) from
    /// the hand on, freeing the unreferenced ones that hold no inode in
    /// use (Linux `prune_dcache_sb` over `dentry_lru_isolate`); see the
    /// module doc. Allocates nothing; the caller lets go of
    /// [`Pruned::evict`] and deals with [`Pruned::with_pages`] after it
    /// returns, with no lock held.
    pub fn prune(&self, nr_to_scan: u64) -> Pruned {
        let mut pruned = Pruned::default();
        let budget = nr_to_scan.min(PRUNE_CHUNK as u64);
        let mut inner = self.inner.lock();
        let start = if inner.hand >= inner.map.len() { 0 } else { inner.hand };
        let (mut position, mut evicted, mut kept_for_pages) = (0usize, 0usize, 0usize);
        inner.map.retain(|_, entry| {
            let here = position;
            position += 1;
            if here < start || pruned.scanned >= budget {
                return true;
            }
            pruned.scanned += 1;
            if core::mem::take(&mut entry.referenced) {
                return true;
            }
            let Some(inode) = entry.dentry.as_ref() else {
                pruned.freed += 1;
                return false;
            };
            if Arc::strong_count(inode) > 1 {
                return true;
            }
            if inode.i_mapping.as_ref().is_some_and(|m| !m.is_swapbacked() && m.nrpages() > 0) {
                if let Some(slot) = pruned.with_pages.get_mut(kept_for_pages) {
                    *slot = Some(inode.clone());
                    kept_for_pages += 1;
                }
                return true;
            }
            match pruned.evict.get_mut(evicted) {
                Some(slot) => {
                    *slot = entry.dentry.take();
                    evicted += 1;
                    pruned.freed += 1;
                    false
                }
                None => true,
            }
        });
        let kept = inner.map.len();
        // The hand moves past what was looked at and kept; at the end it
        // wraps to the start.
        inner.hand = if pruned.scanned < budget {
            0
        } else {
            (start + pruned.scanned as usize).saturating_sub(pruned.freed as usize).min(kept)
        };
        self.nr_dentry.store(kept as u64, Ordering::Relaxed);
        drop(inner);
        pruned
    }
}
