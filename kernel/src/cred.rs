//! Credentials (Linux `include/linux/cred.h`, `kernel/cred.c`), the
//! id system calls of `kernel/sys.c` (`setuid` ... `getresgid`), and the
//! capability rules Linux applies when ids change or a program is
//! executed (`security/commoncap.c`: `cap_emulate_setxuid`,
//! `cap_bprm_creds_from_file`).
//!
//! A process's [`Cred`] holds its real, effective, saved and file-system
//! user and group ids and its permitted and effective capability sets.
//! Everything starts as root with every capability. [`capable`] asks the
//! effective set, as Linux's `capable()` does; with the rules below that
//! means "effective uid 0" unless a program dropped and regained ids.
//!
//! The capability rules are Linux's defaults without file capabilities or
//! securebits:
//! - set*uid: when none of the real, effective and saved uids stays 0,
//!   the permitted and effective sets are cleared (for good: only a
//!   permitted capability can come back); when the effective uid leaves 0
//!   the effective set is cleared; when it returns to 0 the effective set
//!   becomes the permitted set.
//! - execve: the saved ids become the effective ones; a program started
//!   with real or effective uid 0 gets the full permitted set, and the
//!   full effective set if its effective uid is 0; any other gets none.
//!
//! Differences from Linux: one user namespace (a uid is its kuid; only
//! `(uid_t)-1` is invalid); no supplementary groups, `setfsuid`/`setfsgid`,
//! `capget`/`capset`, bounding, inheritable or ambient sets, securebits,
//! keyrings or LSMs; `RLIMIT_NPROC` is not checked when the real uid
//! changes (Linux `set_user`). A process's credentials are a value
//! replaced under its lock, not an RCU-published, reference-counted
//! `struct cred`: nothing reads another process's credentials except
//! prlimit64's permission check, which takes the lock.

#![forbid(unsafe_code)]

use uapi::capability::CAP_LAST_CAP;
use uapi::errno::Errno;

/// A user id (Linux `kuid_t`; one namespace, so it is the `uid_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Kuid(pub u32);

/// A group id (Linux `kgid_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Kgid(pub u32);

/// uid 0 (Linux `GLOBAL_ROOT_UID`).
pub const GLOBAL_ROOT_UID: Kuid = Kuid(0);
/// gid 0 (Linux `GLOBAL_ROOT_GID`).
pub const GLOBAL_ROOT_GID: Kgid = Kgid(0);

/// `(uid_t)-1`: "no change" for setre*id/setres*id, invalid for set*id.
const ID_UNCHANGED: u32 = u32::MAX;

/// A capability set (Linux `kernel_cap_t`): bit `n` is capability `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelCap(u64);

impl KernelCap {
    /// No capabilities (Linux `CAP_EMPTY_SET`).
    pub const EMPTY: KernelCap = KernelCap(0);
    /// Every capability (Linux `CAP_FULL_SET`).
    pub const FULL: KernelCap = KernelCap((1 << (CAP_LAST_CAP + 1)) - 1);

    /// The set as /proc/PID/status prints it (bit `n` for capability `n`).
    pub fn bits(self) -> u64 {
        self.0
    }

    /// Whether the set holds `cap` (Linux `cap_raised`).
    pub fn raised(self, cap: u32) -> bool {
        cap <= CAP_LAST_CAP && self.0 & (1 << cap) != 0
    }
}

/// A process's credentials (Linux `struct cred`, the part we keep).
#[doc(alias = "cred")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cred {
    /// Real user id.
    pub uid: Kuid,
    /// Real group id.
    pub gid: Kgid,
    /// Saved user id.
    pub suid: Kuid,
    /// Saved group id.
    pub sgid: Kgid,
    /// Effective user id.
    pub euid: Kuid,
    /// Effective group id.
    pub egid: Kgid,
    /// User id for file-system access.
    pub fsuid: Kuid,
    /// Group id for file-system access.
    pub fsgid: Kgid,
    /// Capabilities the process may make effective.
    pub cap_permitted: KernelCap,
    /// Capabilities checked by [`capable`].
    pub cap_effective: KernelCap,
}

impl Default for Cred {
    fn default() -> Self {
        Cred::root()
    }
}

/// An id argument as Linux's `make_kuid` sees it: `None` for
/// `(uid_t)-1`, the only id our single namespace cannot map.
fn id_arg(id: u32) -> Option<u32> {
    (id != ID_UNCHANGED).then_some(id)
}

impl Cred {
    /// The boot credentials (Linux `init_cred`): root, every capability.
    pub const fn root() -> Cred {
        Cred {
            uid: GLOBAL_ROOT_UID,
            gid: GLOBAL_ROOT_GID,
            suid: GLOBAL_ROOT_UID,
            sgid: GLOBAL_ROOT_GID,
            euid: GLOBAL_ROOT_UID,
            egid: GLOBAL_ROOT_GID,
            fsuid: GLOBAL_ROOT_UID,
            fsgid: GLOBAL_ROOT_GID,
            cap_permitted: KernelCap::FULL,
            cap_effective: KernelCap::FULL,
        }
    }

    /// Whether these credentials hold `cap` (Linux `capable`, one
    /// namespace, no LSM).
    pub fn capable(&self, cap: u32) -> bool {
        self.cap_effective.raised(cap)
    }

    /// Linux `cap_emulate_setxuid`, run by `cap_task_fix_setuid` after
    /// setuid, setreuid and setresuid: capabilities follow uid 0.
    fn fix_setuid(mut self, old: &Cred) -> Cred {
        let root = |c: &Cred| c.uid == GLOBAL_ROOT_UID || c.euid == GLOBAL_ROOT_UID || c.suid == GLOBAL_ROOT_UID;
        if root(old) && !root(&self) {
            self.cap_permitted = KernelCap::EMPTY;
            self.cap_effective = KernelCap::EMPTY;
        }
        if old.euid == GLOBAL_ROOT_UID && self.euid != GLOBAL_ROOT_UID {
            self.cap_effective = KernelCap::EMPTY;
        }
        if old.euid != GLOBAL_ROOT_UID && self.euid == GLOBAL_ROOT_UID {
            self.cap_effective = self.cap_permitted;
        }
        self
    }

    /// Linux `setuid`: with `CAP_SETUID` all four uids; otherwise only the
    /// effective and file-system uids, and only to the real or saved uid.
    pub fn setuid(&self, uid: u32) -> Result<Cred, Errno> {
        let uid = Kuid(id_arg(uid).ok_or(Errno::EINVAL)?);
        let mut new = *self;
        if self.capable(uapi::capability::CAP_SETUID) {
            new.uid = uid;
            new.suid = uid;
        } else if uid != self.uid && uid != self.suid {
            return Err(Errno::EPERM);
        }
        new.euid = uid;
        new.fsuid = uid;
        Ok(new.fix_setuid(self))
    }

    /// Linux `setgid`: with `CAP_SETGID` all four gids; otherwise the
    /// effective and file-system gids, to the real or saved gid.
    pub fn setgid(&self, gid: u32) -> Result<Cred, Errno> {
        let gid = Kgid(id_arg(gid).ok_or(Errno::EINVAL)?);
        let mut new = *self;
        if self.capable(uapi::capability::CAP_SETGID) {
            (new.gid, new.egid, new.sgid, new.fsgid) = (gid, gid, gid, gid);
        } else if gid == self.gid || gid == self.sgid {
            (new.egid, new.fsgid) = (gid, gid);
        } else {
            return Err(Errno::EPERM);
        }
        Ok(new)
    }

    /// Linux `setreuid`: -1 leaves an id alone. Without `CAP_SETUID` the
    /// real uid may become the real or effective one, the effective uid
    /// any of the three. The saved uid follows the effective one when
    /// the real uid is set or the effective one leaves the old real uid.
    pub fn setreuid(&self, ruid: u32, euid: u32) -> Result<Cred, Errno> {
        let (ruid, euid) = (id_arg(ruid).map(Kuid), id_arg(euid).map(Kuid));
        let privileged = self.capable(uapi::capability::CAP_SETUID);
        let mut new = *self;
        if let Some(r) = ruid {
            if r != self.uid && r != self.euid && !privileged {
                return Err(Errno::EPERM);
            }
            new.uid = r;
        }
        if let Some(e) = euid {
            if e != self.uid && e != self.euid && e != self.suid && !privileged {
                return Err(Errno::EPERM);
            }
            new.euid = e;
        }
        if ruid.is_some() || euid.is_some_and(|e| e != self.uid) {
            new.suid = new.euid;
        }
        new.fsuid = new.euid;
        Ok(new.fix_setuid(self))
    }

    /// Linux `setregid`, [`setreuid`](Self::setreuid)'s rules for gids
    /// under `CAP_SETGID`.
    pub fn setregid(&self, rgid: u32, egid: u32) -> Result<Cred, Errno> {
        let (rgid, egid) = (id_arg(rgid).map(Kgid), id_arg(egid).map(Kgid));
        let privileged = self.capable(uapi::capability::CAP_SETGID);
        let mut new = *self;
        if let Some(r) = rgid {
            if r != self.gid && r != self.egid && !privileged {
                return Err(Errno::EPERM);
            }
            new.gid = r;
        }
        if let Some(e) = egid {
            if e != self.gid && e != self.egid && e != self.sgid && !privileged {
                return Err(Errno::EPERM);
            }
            new.egid = e;
        }
        if rgid.is_some() || egid.is_some_and(|e| e != self.gid) {
            new.sgid = new.egid;
        }
        new.fsgid = new.egid;
        Ok(new)
    }

    /// Linux `setresuid`: -1 leaves an id alone; without `CAP_SETUID` each
    /// new id must be one of the current real, effective or saved uids.
    /// The file-system uid follows the effective one.
    pub fn setresuid(&self, ruid: u32, euid: u32, suid: u32) -> Result<Cred, Errno> {
        let ids = [ruid, euid, suid].map(|id| id_arg(id).map(Kuid));
        let current = [self.uid, self.euid, self.suid];
        let unprivileged_ok = ids.iter().flatten().all(|id| current.contains(id));
        if !unprivileged_ok && !self.capable(uapi::capability::CAP_SETUID) {
            return Err(Errno::EPERM);
        }
        let mut new = *self;
        let [r, e, s] = ids;
        new.uid = r.unwrap_or(new.uid);
        new.euid = e.unwrap_or(new.euid);
        new.suid = s.unwrap_or(new.suid);
        new.fsuid = new.euid;
        Ok(new.fix_setuid(self))
    }

    /// Linux `setresgid`, [`setresuid`](Self::setresuid)'s rules for gids
    /// under `CAP_SETGID`.
    pub fn setresgid(&self, rgid: u32, egid: u32, sgid: u32) -> Result<Cred, Errno> {
        let ids = [rgid, egid, sgid].map(|id| id_arg(id).map(Kgid));
        let current = [self.gid, self.egid, self.sgid];
        let unprivileged_ok = ids.iter().flatten().all(|id| current.contains(id));
        if !unprivileged_ok && !self.capable(uapi::capability::CAP_SETGID) {
            return Err(Errno::EPERM);
        }
        let mut new = *self;
        let [r, e, s] = ids;
        new.gid = r.unwrap_or(new.gid);
        new.egid = e.unwrap_or(new.egid);
        new.sgid = s.unwrap_or(new.sgid);
        new.fsgid = new.egid;
        Ok(new)
    }

    /// The credentials a program starts with (Linux
    /// `cap_bprm_creds_from_file` for a file without set-id bits or file
    /// capabilities), and whether the start is "secure" (`AT_SECURE`: the
    /// effective ids differ from the real ones).
    pub fn exec(&self) -> (Cred, bool) {
        let mut new = *self;
        new.suid = new.euid;
        new.fsuid = new.euid;
        new.sgid = new.egid;
        new.fsgid = new.egid;
        let root_privileged = new.uid == GLOBAL_ROOT_UID || new.euid == GLOBAL_ROOT_UID;
        new.cap_permitted = if root_privileged { KernelCap::FULL } else { KernelCap::EMPTY };
        new.cap_effective = if new.euid == GLOBAL_ROOT_UID { new.cap_permitted } else { KernelCap::EMPTY };
        let secure = new.euid != new.uid || new.egid != new.gid;
        (new, secure)
    }
}

/// The running task's credentials (Linux `current_cred`).
pub fn current_cred() -> Cred {
    *crate::sched::current().proc.cred.lock()
}

/// Whether the running task holds `cap` (Linux `capable`).
pub fn capable(cap: u32) -> bool {
    current_cred().capable(cap)
}

/// Replaces the running task's credentials with what `change` makes of
/// them (Linux `prepare_creds` + `commit_creds`), then hands the new
/// `CAP_IPC_LOCK` to its address space. Takes the task's `cred` lock.
pub fn commit_creds(change: impl FnOnce(&Cred) -> Result<Cred, Errno>) -> Result<(), Errno> {
    let me = crate::sched::current();
    {
        let mut cred = me.proc.cred.lock();
        let new = change(&cred)?;
        *cred = new;
    }
    crate::resource::sync_mm_limits(&me.proc);
    Ok(())
}
