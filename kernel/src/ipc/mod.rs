//! System V IPC (Linux `ipc/`): [`shm`], shared memory segments; and
//! what every IPC object shares (Linux `ipc/util.c`): its permissions
//! ([`KernIpcPerm`], [`ipcperms`]) and the table of ids that finds it
//! by id or key ([`IpcIds`]).
//!
//! An id is `seq * IPCMNI + idx`: the slot index, and a sequence number
//! that changes when a slot is reused, so a stale id is EINVAL rather
//! than another object. Slots are handed out cyclically (Linux
//! `ipc_idr_alloc`'s `idr_alloc_cyclic` below
//! `max(in_use * 3 / 2, 64)`): the slot after the last one given, and
//! the sequence number moves on when the search wraps back.
//!
//! Differences from Linux: one IPC name space; no semaphores or message
//! queues; no checkpoint-restore `next_id`; keys are found by a walk of
//! the table rather than a hash (it holds at most `kernel.shmmni` entries).

#![forbid(unsafe_code)]

pub mod shm;

use alloc::collections::BTreeMap;

use uapi::errno::Errno;

use crate::cred::Cred;

/// Slots of an id table (Linux `IPCMNI`, without `ipcmni_extend`).
pub const IPCMNI: u32 = 32768;

/// Bits of an id holding the slot index (Linux `IPCMNI_SHIFT`).
const IPCMNI_SHIFT: u32 = 15;

/// The largest sequence number (Linux `ipcid_seq_max`).
const IPCID_SEQ_MAX: u32 = i32::MAX as u32 >> IPCMNI_SHIFT;

/// The smallest range the cyclic allocation runs over (Linux
/// `ipc_min_cycle`, `RADIX_TREE_MAP_SIZE`).
const IPC_MIN_CYCLE: u32 = 64;

/// An object's owner, creator, mode and key (Linux `struct
/// kern_ipc_perm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernIpcPerm {
    /// The key, `IPC_PRIVATE` for none (or once removed).
    pub key: i32,
    /// The owner.
    pub uid: u32,
    /// The owner's group.
    pub gid: u32,
    /// The creator.
    pub cuid: u32,
    /// The creator's group.
    pub cgid: u32,
    /// The permission bits (`S_IRWXUGO`) and the object's own flags above
    /// them (`SHM_DEST`, `SHM_LOCKED`).
    pub mode: u32,
    /// The slot's sequence number when the object was made.
    pub seq: u16,
}

impl KernIpcPerm {
    /// The permissions of a new object of `key` with permission bits
    /// `mode`, owned and created by `cred`'s effective ids (Linux
    /// `newseg`'s setup, `current_euid_egid`).
    pub fn new(key: i32, mode: u32, cred: &Cred) -> KernIpcPerm {
        let (uid, gid) = (cred.euid.0, cred.egid.0);
        KernIpcPerm { key, uid, gid, cuid: uid, cgid: gid, mode: mode & 0o777, seq: 0 }
    }

    /// As `struct ipc64_perm` (Linux `kernel_to_ipc64_perm`).
    pub fn to_user(&self) -> uapi::ipc::Ipc64Perm {
        uapi::ipc::Ipc64Perm {
            key: self.key,
            uid: self.uid,
            gid: self.gid,
            cuid: self.cuid,
            cgid: self.cgid,
            mode: self.mode,
            seq: self.seq,
            ..Default::default()
        }
    }

    /// Whether `cred` owns or made the object, or holds `CAP_SYS_ADMIN`
    /// (Linux `ipcctl_obtain_check`'s test for `IPC_SET` and `IPC_RMID`).
    pub fn may_change(&self, cred: &Cred) -> bool {
        cred.euid.0 == self.cuid || cred.euid.0 == self.uid || cred.capable(uapi::capability::CAP_SYS_ADMIN)
    }
}

/// Whether `cred` may access the object as `flag`'s low nine bits ask
/// (Linux `ipcperms`, negated): the owner's bits if `cred`'s effective
/// uid owns or made it, the group's if its group does, the others'
/// otherwise; `CAP_IPC_OWNER` passes everything.
pub fn ipcperms(cred: &Cred, perm: &KernIpcPerm, flag: u32) -> bool {
    let requested = (flag >> 6) | (flag >> 3) | flag;
    let granted = if cred.euid.0 == perm.cuid || cred.euid.0 == perm.uid {
        perm.mode >> 6
    } else if cred.fsgid.0 == perm.cgid || cred.fsgid.0 == perm.gid {
        perm.mode >> 3
    } else {
        perm.mode
    };
    requested & !granted & 0o7 == 0 || cred.capable(uapi::capability::CAP_IPC_OWNER)
}

/// The objects of one kind by slot (Linux `struct ipc_ids`).
pub struct IpcIds<T> {
    /// Slot index -> the object and its permissions.
    entries: BTreeMap<u32, (KernIpcPerm, T)>,
    /// The sequence number of the next slot handed out at or below
    /// `last_idx`.
    seq: u32,
    /// The slot handed out last (Linux `last_idx`), `None` at first.
    last_idx: Option<u32>,
}

impl<T> Default for IpcIds<T> {
    fn default() -> Self {
        IpcIds { entries: BTreeMap::new(), seq: 0, last_idx: None }
    }
}

/// The slot of `id` and the sequence number it names (Linux
/// `ipcid_to_idx`, `ipcid_to_seqx`): EINVAL for a negative id.
fn split_id(id: i32) -> Result<(u32, u32), Errno> {
    let id = u32::try_from(id).map_err(|_| Errno::EINVAL)?;
    Ok((id & (IPCMNI - 1), id >> IPCMNI_SHIFT))
}

impl<T> IpcIds<T> {
    /// Objects in use (Linux `in_use`).
    pub fn in_use(&self) -> usize {
        self.entries.len()
    }

    /// The highest slot in use (Linux `ipc_get_maxidx`), if any.
    pub fn max_idx(&self) -> Option<u32> {
        self.entries.keys().next_back().copied()
    }

    /// Adds `object` with `perm`, at most `limit` objects in all (Linux
    /// `ipc_addid`): its id, or ENOSPC past the limit.
    pub fn add(&mut self, mut perm: KernIpcPerm, object: T, limit: u32) -> Result<i32, Errno> {
        let limit = limit.min(IPCMNI) as usize;
        if self.entries.len() >= limit {
            return Err(Errno::ENOSPC);
        }
        let max_idx = (self.entries.len() as u32 * 3 / 2).clamp(IPC_MIN_CYCLE, IPCMNI);
        let start = self.last_idx.map_or(0, |i| i + 1);
        let free = |i: &u32| !self.entries.contains_key(i);
        let idx = (start..max_idx).find(free).or_else(|| (0..start.min(max_idx)).find(free)).ok_or(Errno::ENOSPC)?;
        if self.last_idx.is_some_and(|last| idx <= last) {
            self.seq = if self.seq + 1 >= IPCID_SEQ_MAX { 0 } else { self.seq + 1 };
        }
        self.last_idx = Some(idx);
        perm.seq = self.seq as u16;
        self.entries.insert(idx, (perm, object));
        Ok(((self.seq << IPCMNI_SHIFT) | idx) as i32)
    }

    /// The object of `id` (Linux `ipc_obtain_object_check`): EINVAL if
    /// its slot is empty or holds a newer object.
    pub fn get_mut(&mut self, id: i32) -> Result<&mut (KernIpcPerm, T), Errno> {
        let (idx, seq) = split_id(id)?;
        self.entries.get_mut(&idx).filter(|(perm, _)| u32::from(perm.seq) == seq).ok_or(Errno::EINVAL)
    }

    /// The object in slot `idx` and its id (Linux `ipc_obtain_object_idr`
    /// for `SHM_STAT`): EINVAL if the slot is empty.
    pub fn get_by_idx(&mut self, idx: i32) -> Result<(i32, &mut (KernIpcPerm, T)), Errno> {
        let idx = u32::try_from(idx).map_err(|_| Errno::EINVAL)?;
        let entry = self.entries.get_mut(&idx).ok_or(Errno::EINVAL)?;
        Ok((((u32::from(entry.0.seq) << IPCMNI_SHIFT) | idx) as i32, entry))
    }

    /// The id of the object whose key is `key` (Linux `ipc_findkey`).
    pub fn find_key(&self, key: i32) -> Option<i32> {
        self.entries
            .iter()
            .find(|(_, (perm, _))| perm.key == key)
            .map(|(idx, (perm, _))| ((u32::from(perm.seq) << IPCMNI_SHIFT) | idx) as i32)
    }

    /// Takes the object of `id` out of the table (Linux `ipc_rmid`). The
    /// last one out frees the map's node too (a `BTreeMap` keeps an empty
    /// root leaf), so an empty table holds no memory.
    pub fn remove(&mut self, id: i32) -> Option<(KernIpcPerm, T)> {
        let (idx, seq) = split_id(id).ok()?;
        if !self.entries.get(&idx).is_some_and(|(perm, _)| u32::from(perm.seq) == seq) {
            return None;
        }
        let removed = self.entries.remove(&idx);
        if self.entries.is_empty() {
            self.entries = BTreeMap::new();
        }
        removed
    }

    /// Every object.
    pub fn iter(&self) -> impl Iterator<Item = &(KernIpcPerm, T)> {
        self.entries.values()
    }
}
