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
//! Differences from Linux: the cache is a map, not a tree of `struct
//! dentry` objects; it does not give paths their identity (a path is a
//! mount and an inode, [`super::namespace::Path`]), and `getcwd` asks the
//! file system for names instead of following `d_parent`. It is bounded
//! ([`DCACHE_MAX`]) and simply emptied when full, where Linux shrinks an
//! LRU under memory pressure. File systems whose directories already live
//! in memory (the rootfs) skip it
//! ([`super::inode::SuperOperations::cache_lookups`]).
//!
//! Locking: one leaf spin lock per superblock, never held across a call
//! into the file system.

#![forbid(unsafe_code)]

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::inode::{Ino, Inode};
use crate::sync::SpinLock;

/// Most entries one superblock's cache keeps before it is emptied.
pub const DCACHE_MAX: usize = 1024;

/// A cached lookup result: the inode, or `None` for a negative entry.
pub type Dentry = Option<Arc<Inode>>;

/// One superblock's lookup cache.
pub struct Dcache {
    map: SpinLock<BTreeMap<(Ino, Vec<u8>), Dentry>>,
}

impl Default for Dcache {
    fn default() -> Self {
        Self::new()
    }
}

impl Dcache {
    /// An empty cache.
    pub const fn new() -> Self {
        Dcache { map: SpinLock::new(BTreeMap::new()) }
    }

    /// The cached result for `name` in directory `dir`, if any (Linux
    /// `d_lookup`): `Some(None)` is a negative entry.
    pub fn lookup(&self, dir: Ino, name: &[u8]) -> Option<Dentry> {
        self.map.lock().get(&(dir, name.to_vec())).cloned()
    }

    /// Records what `name` in `dir` is (Linux `d_add`).
    pub fn add(&self, dir: Ino, name: &[u8], dentry: Dentry) {
        let mut key = Vec::new();
        if key.try_reserve_exact(name.len()).is_err() {
            return;
        }
        key.extend_from_slice(name);
        // Entries dropped here may hold the last reference to an inode,
        // whose drop takes the inode cache lock: drop them unlocked.
        let evicted = {
            let mut map = self.map.lock();
            let evicted = if map.len() >= DCACHE_MAX { core::mem::take(&mut *map) } else { BTreeMap::new() };
            map.insert((dir, key), dentry);
            evicted
        };
        drop(evicted);
    }

    /// Forgets `name` in `dir` (Linux `d_invalidate`/`d_drop`).
    pub fn invalidate(&self, dir: Ino, name: &[u8]) {
        let old = self.map.lock().remove(&(dir, name.to_vec()));
        drop(old);
    }

    /// Forgets everything (unmount, which breaks the superblock -> inode
    /// references the entries hold).
    pub fn clear(&self) {
        let old = core::mem::take(&mut *self.map.lock());
        drop(old);
    }

    /// Entries cached now.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
