//! The proc file system (Linux `fs/proc/`: `root.c`, `inode.c`,
//! `generic.c`, `base.c`, `array.c`, `task_mmu.c`, `proc_sysctl.c`'s
//! directories), mounted on `/proc` at boot and by `mount -t proc`.
//!
//! A [`ProcInode`] is a node of a tree computed on demand, not stored:
//!
//! - `/proc`: the fixed entries of [`ROOT_ENTRIES`] (`meminfo`, `vmstat`,
//!   `zoneinfo`, `buddyinfo`, `pagetypeinfo`, `slabinfo`, `swaps`, the
//!   symbolic links `self` -> the caller's pid and `mounts` ->
//!   `self/mounts`, the directory `sys`), then a directory per process,
//!   named by its pid ([`base`]).
//! - `/proc/PID/` and `/proc/PID/task/TID/`: the files of
//!   [`base::PID_ENTRIES`] (`status`, `stat`, `statm`, `maps`, `smaps`,
//!   `smaps_rollup`, `pagemap`, `cmdline`, `environ`, `comm`, `mounts`,
//!   `oom_score`, `oom_score_adj`) and `task/`.
//! - `/proc/sys/`: one directory per first component of the sysctl
//!   paths of [`super::proc_sysctl::SYSCTLS`], one file per sysctl.
//!
//! Files are generated at every read (Linux's `seq_file` does so per
//! read call too): a read at an offset makes the whole text and copies
//! the part asked for, so `lseek(fd, 0, SEEK_SET)` and reading again sees
//! the values of now, as on Linux. `pagemap` makes only the entries
//! asked for. A write goes to the file's handler whole (`proc_sys_write`,
//! `oom_score_adj_write`, `comm_write`).
//!
//! Permissions are Linux's: a sysctl's mode binds root too
//! (`proc_sys_permission`, so `drop_caches`, 0200, cannot be read and a
//! 0444 sysctl cannot be opened for writing: EACCES); a pid file's mode
//! binds everyone without `CAP_DAC_OVERRIDE` (`generic_permission`), and
//! a pid directory and its files belong to the process's effective ids
//! (`task_dump_owner`). Writing to a file that has no write handler is
//! EINVAL, as Linux's `vfs_write` without `FMODE_CAN_WRITE`.
//!
//! Differences from Linux: Linux's `proc_fill_super` makes a root
//! directory whose pid entries are dentries made at lookup
//! (`proc_pid_lookup`, `pid_revalidate` dropping them when the task
//! goes) and whose inodes hold a `struct pid`; here a node names its pid
//! by number and every operation looks the task up again (ENOENT once it
//! is gone), which is the same thing because pids are never reused
//! ([`crate::sched::alloc_pid`]); nothing is cached in the dcache
//! ([`SuperOperations::cache_lookups`] is false), so `/proc/self` and a
//! pid's directory are always looked up afresh. Inode numbers are a
//! function of the node (Linux hands out `get_next_ino` per pid inode):
//! stable across lookups. The mount is made by the kernel at boot, where
//! Linux leaves it to user space (our initramfs has no init that would).
//! The `sys` tree is only as deep as the sysctl table (one level).
//!
//! Locking: a read takes what its generator needs (the mmap lock for
//! reading, a task's spin locks one at a time) and nothing of this file
//! system's own.

#![forbid(unsafe_code)]

pub mod array;
pub mod base;
pub mod task_mmu;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::fmt::Write as _;

use uapi::errno::Errno;
use uapi::stat::{S_IFDIR, S_IFLNK, S_IFREG};

use self::base::{PidEntry, PidFileKind};
use super::inode::{
    DirEntry, FileOperations, FsInode, Ino, InodeOperations, Kstat, Kstatfs, Owner, RenameFlags, SetAttr,
    SuperOperations, Timestamp, dt_of_mode,
};
use super::proc_sysctl::SYSCTLS;
use crate::sched::Pid;

/// Linux `PROC_SUPER_MAGIC`.
pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// `MAY_READ`, `MAY_WRITE` of an open (Linux `include/linux/fs.h`).
pub const MAY_WRITE: u32 = 2;
/// See [`MAY_WRITE`].
pub const MAY_READ: u32 = 4;

/// A `String` whose every growth is fallible: a failed reservation is
/// `fmt::Error`, which a generator turns into ENOMEM.
#[derive(Default)]
pub struct TryString(pub String);

impl core::fmt::Write for TryString {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.0.try_reserve(s.len()).map_err(|_| core::fmt::Error)?;
        self.0.push_str(s);
        Ok(())
    }
}

/// The text of a report, ENOMEM if it cannot grow.
pub fn proc_text(report: &dyn core::fmt::Display) -> Result<String, Errno> {
    let mut text = TryString::default();
    write!(text, "{report}").map_err(|_| Errno::ENOMEM)?;
    Ok(text.0)
}

/// What a fixed entry of `/proc` is.
#[derive(Clone, Copy)]
pub enum RootKind {
    /// A generated text, with its mode bits.
    Text(fn() -> Result<String, Errno>, u32),
    /// A symbolic link and its target now.
    Link(fn() -> String),
    /// The `sys` directory.
    Sys,
}

/// A fixed entry of `/proc` (Linux `proc_create_single` and friends).
pub struct RootEntry {
    /// Its name.
    pub name: &'static str,
    /// What it is.
    pub kind: RootKind,
}

/// The fixed entries of `/proc`, in readdir order.
pub static ROOT_ENTRIES: &[RootEntry] = &[
    RootEntry { name: "self", kind: RootKind::Link(|| alloc::format!("{}", base::current_tgid())) },
    RootEntry { name: "mounts", kind: RootKind::Link(|| String::from("self/mounts")) },
    RootEntry { name: "sys", kind: RootKind::Sys },
    RootEntry { name: "meminfo", kind: RootKind::Text(|| proc_text(&crate::mm::meminfo()), 0o444) },
    RootEntry { name: "vmstat", kind: RootKind::Text(|| proc_text(&mm::vmstat::Vmstat(crate::mm::pgdat())), 0o444) },
    RootEntry {
        name: "zoneinfo",
        kind: RootKind::Text(|| proc_text(&mm::vmstat::Zoneinfo(crate::mm::pgdat())), 0o444),
    },
    RootEntry {
        name: "buddyinfo",
        kind: RootKind::Text(|| proc_text(&mm::vmstat::Buddyinfo(crate::mm::pgdat())), 0o444),
    },
    RootEntry {
        name: "pagetypeinfo",
        kind: RootKind::Text(|| proc_text(&mm::vmstat::Pagetypeinfo(crate::mm::pgdat())), 0o400),
    },
    RootEntry {
        name: "slabinfo",
        kind: RootKind::Text(
            || proc_text(&mm::slab_common::Slabinfo(crate::slab::slab().ok_or(Errno::ENOENT)?)),
            0o400,
        ),
    },
    RootEntry { name: "swaps", kind: RootKind::Text(|| proc_text(&crate::swapfile::ProcSwaps), 0o444) },
];

/// The directories of `/proc/sys`: itself, then one per first component
/// of a sysctl's path.
static SYS_DIRS: &[&str] = &["", "fs", "kernel", "vm"];

/// A node of the tree (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// `/proc`.
    Root,
    /// `ROOT_ENTRIES[i]` that is not a directory.
    Fixed(usize),
    /// `/proc/sys/SYS_DIRS[i]`.
    SysDir(usize),
    /// `SYSCTLS[i]`.
    Sysctl(usize),
    /// `/proc/PID`.
    Pid(Pid),
    /// `/proc/PID/task`.
    Task(Pid),
    /// `/proc/PID/task/TID`.
    Tid(Pid, Pid),
    /// `PID_ENTRIES[entry]` of `/proc/PID` (`tid` `None`) or of
    /// `/proc/PID/task/TID`.
    PidFile {
        /// The process.
        pid: Pid,
        /// The thread, under `task/`.
        tid: Option<Pid>,
        /// Which file.
        entry: usize,
    },
}

/// Inode numbers: 1 for the root, small numbers for fixed nodes, and for
/// a process's nodes its pid (or thread id) shifted past a node code.
const FIXED_INO: Ino = 2;
const SYS_DIR_INO: Ino = 0x100;
const SYSCTL_INO: Ino = 0x200;
const PID_INO: Ino = 1 << 48;
const SUB_PID_DIR: Ino = 0;
const SUB_TASK_DIR: Ino = 1;
const SUB_TID_DIR: Ino = 2;
const SUB_PID_FILE: Ino = 16;
const SUB_TID_FILE: Ino = 128;

impl Node {
    /// Its inode number.
    fn ino(self) -> Ino {
        let per_pid = |id: Pid, sub: Ino| PID_INO | (Ino::from(id) << 8) | sub;
        match self {
            Node::Root => 1,
            Node::Fixed(i) => FIXED_INO + i as Ino,
            Node::SysDir(i) => SYS_DIR_INO + i as Ino,
            Node::Sysctl(i) => SYSCTL_INO + i as Ino,
            Node::Pid(pid) => per_pid(pid, SUB_PID_DIR),
            Node::Task(pid) => per_pid(pid, SUB_TASK_DIR),
            Node::Tid(_, tid) => per_pid(tid, SUB_TID_DIR),
            Node::PidFile { pid, tid: None, entry } => per_pid(pid, SUB_PID_FILE + entry as Ino),
            Node::PidFile { tid: Some(tid), entry, .. } => per_pid(tid, SUB_TID_FILE + entry as Ino),
        }
    }

    /// Its type and permission bits.
    fn mode(self) -> u32 {
        match self {
            Node::Root | Node::SysDir(_) | Node::Pid(_) | Node::Task(_) | Node::Tid(..) => S_IFDIR | 0o555,
            Node::Fixed(i) => match ROOT_ENTRIES[i].kind {
                RootKind::Text(_, mode) => S_IFREG | mode,
                RootKind::Link(_) => S_IFLNK | 0o777,
                RootKind::Sys => S_IFDIR | 0o555,
            },
            Node::Sysctl(i) => S_IFREG | SYSCTLS[i].mode(),
            Node::PidFile { entry, .. } => S_IFREG | base::PID_ENTRIES[entry].mode,
        }
    }

    /// The process whose node this is, if one.
    fn pid(self) -> Option<Pid> {
        match self {
            Node::Pid(pid) | Node::Task(pid) | Node::Tid(pid, _) | Node::PidFile { pid, .. } => Some(pid),
            _ => None,
        }
    }
}

/// An inode of the proc file system: a node and when it was made (its
/// time stamps, as Linux's `proc_pid_make_inode` stamps it now).
pub struct ProcInode {
    node: Node,
    made: Timestamp,
}

impl ProcInode {
    fn make(node: Node) -> Arc<dyn FsInode> {
        Arc::new(ProcInode { node, made: super::current_time() })
    }

    /// The node of a directory's entry `name` (Linux `proc_root_lookup`,
    /// `proc_pid_lookup`, `proc_task_lookup`, `proc_sys_lookup`).
    fn child(&self, name: &[u8]) -> Option<Node> {
        let name = core::str::from_utf8(name).ok()?;
        match self.node {
            Node::Root => {
                if let Some(i) = ROOT_ENTRIES.iter().position(|e| e.name == name) {
                    return Some(match ROOT_ENTRIES[i].kind {
                        RootKind::Sys => Node::SysDir(0),
                        _ => Node::Fixed(i),
                    });
                }
                base::lookup_tgid(name).map(Node::Pid)
            }
            Node::SysDir(0) => SYS_DIRS.iter().position(|d| !d.is_empty() && *d == name).map(Node::SysDir),
            Node::SysDir(d) => {
                let dir = SYS_DIRS[d];
                SYSCTLS
                    .iter()
                    .position(|s| s.path.strip_prefix(dir).and_then(|r| r.strip_prefix('/')) == Some(name))
                    .map(Node::Sysctl)
            }
            Node::Pid(pid) if name == "task" => Some(Node::Task(pid)),
            Node::Pid(pid) => base::entry_named(name).map(|entry| Node::PidFile { pid, tid: None, entry }),
            Node::Task(pid) => base::lookup_tid(pid, name).map(|tid| Node::Tid(pid, tid)),
            Node::Tid(pid, tid) => base::entry_named(name).map(|entry| Node::PidFile { pid, tid: Some(tid), entry }),
            Node::Fixed(_) | Node::Sysctl(_) | Node::PidFile { .. } => None,
        }
    }

    /// The entry at directory position `pos` (after `.` and `..`) and the
    /// next position (Linux `proc_root_readdir`, `proc_pid_readdir`,
    /// `proc_task_readdir`, `proc_pident_readdir`, `proc_sys_readdir`).
    fn child_at(&self, pos: u64) -> Option<(Node, String, u64)> {
        let named = |node: Node, name: &str, next: u64| Some((node, String::from(name), next));
        match self.node {
            Node::Root => {
                if let Some(i) = usize::try_from(pos).ok().filter(|&i| i < ROOT_ENTRIES.len()) {
                    let node = match ROOT_ENTRIES[i].kind {
                        RootKind::Sys => Node::SysDir(0),
                        _ => Node::Fixed(i),
                    };
                    return named(node, ROOT_ENTRIES[i].name, pos + 1);
                }
                // Pids come after the fixed entries, their position the pid's.
                let from = pos.saturating_sub(ROOT_ENTRIES.len() as u64);
                let pid = base::next_tgid(from)?;
                Some((Node::Pid(pid), alloc::format!("{pid}"), ROOT_ENTRIES.len() as u64 + u64::from(pid) + 1))
            }
            Node::SysDir(0) => {
                let i = usize::try_from(pos).ok()?.checked_add(1)?;
                SYS_DIRS.get(i).and_then(|d| named(Node::SysDir(i), d, pos + 1))
            }
            Node::SysDir(d) => {
                let dir = SYS_DIRS[d];
                let (i, name) = SYSCTLS
                    .iter()
                    .enumerate()
                    .skip(usize::try_from(pos).ok()?)
                    .find_map(|(i, s)| Some((i, s.path.strip_prefix(dir)?.strip_prefix('/')?)))?;
                named(Node::Sysctl(i), name, i as u64 + 1)
            }
            Node::Pid(pid) | Node::Tid(pid, _) => {
                let tid = match self.node {
                    Node::Tid(_, tid) => Some(tid),
                    _ => None,
                };
                // A process's directory has `task` first; a thread's has not.
                let mut i = usize::try_from(pos).ok()?;
                let offset = u64::from(tid.is_none());
                if tid.is_none() {
                    if i == 0 {
                        return named(Node::Task(pid), "task", 1);
                    }
                    i -= 1;
                }
                let e = base::PID_ENTRIES.get(i)?;
                named(Node::PidFile { pid, tid, entry: i }, e.name, i as u64 + offset + 1)
            }
            Node::Task(pid) => {
                let tid = base::next_tid(pid, pos)?;
                Some((Node::Tid(pid, tid), alloc::format!("{tid}"), u64::from(tid) + 1))
            }
            Node::Fixed(_) | Node::Sysctl(_) | Node::PidFile { .. } => None,
        }
    }

    /// The whole text of a generated file now.
    fn text(&self) -> Result<Vec<u8>, Errno> {
        match self.node {
            Node::Fixed(i) => match ROOT_ENTRIES[i].kind {
                RootKind::Text(show, _) => show().map(String::into_bytes),
                _ => Err(Errno::EINVAL),
            },
            Node::Sysctl(i) => Ok((SYSCTLS[i].show)().into_bytes()),
            Node::PidFile { pid, tid, entry } => base::show(pid, tid, &base::PID_ENTRIES[entry]),
            _ => Err(Errno::EISDIR),
        }
    }

    /// The pid entry of a pid file.
    fn pid_entry(&self) -> Option<&'static PidEntry> {
        match self.node {
            Node::PidFile { entry, .. } => Some(&base::PID_ENTRIES[entry]),
            _ => None,
        }
    }
}

impl InodeOperations for ProcInode {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn ino(&self) -> Ino {
        self.node.ino()
    }

    fn getattr(&self) -> Result<Kstat, Errno> {
        let owner = match self.node.pid() {
            Some(pid) => base::task_dump_owner(pid)?,
            None => Owner::default(),
        };
        let mode = self.node.mode();
        let nlink = match self.node {
            Node::Root | Node::SysDir(0) => 2 + SYS_DIRS.len() as u32,
            Node::Pid(_) => 3,
            _ if mode & S_IFDIR != 0 => 2,
            _ => 1,
        };
        Ok(Kstat {
            ino: self.node.ino(),
            mode,
            nlink,
            uid: owner.uid,
            gid: owner.gid,
            blksize: 1024,
            atime: self.made,
            mtime: self.made,
            ctime: self.made,
            ..Kstat::default()
        })
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        // Linux `proc_setattr`/`proc_sys_setattr`: no mode or owner
        // change; an `O_TRUNC` open's size change is accepted and does
        // nothing.
        if attr.mode.is_some() || attr.uid.is_some() || attr.gid.is_some() {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn FsInode>, Errno> {
        if self.node.mode() & S_IFDIR == 0 {
            return Err(Errno::ENOTDIR);
        }
        if name == b".." {
            let parent = match self.node {
                Node::SysDir(0) | Node::Pid(_) | Node::Root => Node::Root,
                Node::SysDir(_) => Node::SysDir(0),
                Node::Task(pid) => Node::Pid(pid),
                Node::Tid(pid, _) => Node::Task(pid),
                _ => return Err(Errno::ENOTDIR),
            };
            return Ok(ProcInode::make(parent));
        }
        self.child(name).map(ProcInode::make).ok_or(Errno::ENOENT)
    }

    fn create(&self, _: &[u8], _: u32, _: Owner) -> Result<Arc<dyn FsInode>, Errno> {
        Err(Errno::EACCES)
    }

    fn mkdir(&self, _: &[u8], _: u32, _: Owner) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn symlink(&self, _: &[u8], _: &[u8], _: Owner) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn link(&self, _: &dyn FsInode, _: &[u8]) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn unlink(&self, _: &[u8]) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn rmdir(&self, _: &[u8]) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn rename(&self, _: &[u8], _: &dyn FsInode, _: &[u8], _: RenameFlags) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match self.node {
            Node::Fixed(i) => match ROOT_ENTRIES[i].kind {
                RootKind::Link(target) => Ok(target().into_bytes()),
                _ => Err(Errno::EINVAL),
            },
            _ => Err(Errno::EINVAL),
        }
    }

    fn permission(&self, mask: u32) -> Result<(), Errno> {
        if let Node::Sysctl(i) = self.node {
            // Linux `sysctl_perm`/`test_perm`: the mode binds root too.
            let cred = crate::cred::current_cred();
            let mode = SYSCTLS[i].mode();
            let bits = if cred.euid.0 == 0 { mode >> 6 } else { mode };
            return if mask & (MAY_READ | MAY_WRITE) & !bits == 0 { Ok(()) } else { Err(Errno::EACCES) };
        }
        // Linux `generic_permission`: the owner's or others' bits, unless
        // `CAP_DAC_OVERRIDE`.
        let cred = crate::cred::current_cred();
        if cred.capable(uapi::capability::CAP_DAC_OVERRIDE) {
            return Ok(());
        }
        let st = self.getattr()?;
        let bits = if st.uid == cred.fsuid.0 {
            st.mode >> 6
        } else if st.gid == cred.fsgid.0 {
            st.mode >> 3
        } else {
            st.mode
        };
        if mask & (MAY_READ | MAY_WRITE) & !bits == 0 { Ok(()) } else { Err(Errno::EACCES) }
    }
}

impl FileOperations for ProcInode {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if let Some(PidEntry { kind: PidFileKind::Pagemap, .. }) = self.pid_entry()
            && let Node::PidFile { pid, .. } = self.node
        {
            return task_mmu::pagemap_read(pid, offset, buf);
        }
        let text = self.text()?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(text.len());
        let n = buf.len().min(text.len() - start);
        buf[..n].copy_from_slice(&text[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, _offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        match self.node {
            Node::Sysctl(i) => {
                let store = SYSCTLS[i].store.ok_or(Errno::EINVAL)?;
                store(core::str::from_utf8(buf).map_err(|_| Errno::EINVAL)?)?;
                Ok(buf.len())
            }
            Node::PidFile { pid, tid, entry } => base::write(pid, tid, &base::PID_ENTRIES[entry], buf),
            _ => Err(Errno::EINVAL),
        }
    }

    fn readdir(&self, pos: u64) -> Result<Option<(DirEntry, u64)>, Errno> {
        if self.node.mode() & S_IFDIR == 0 {
            return Err(Errno::ENOTDIR);
        }
        if let Some(pid) = self.node.pid()
            && base::find_process(pid).is_none()
        {
            return Err(Errno::ENOENT);
        }
        let dot = |name: &[u8], ino: Ino| DirEntry { ino, d_type: dt_of_mode(S_IFDIR), name: name.to_vec() };
        match pos {
            0 => return Ok(Some((dot(b".", self.node.ino()), 1))),
            1 => return Ok(Some((dot(b"..", self.lookup(b"..")?.ino()), 2))),
            _ => {}
        }
        let Some((node, name, next)) = self.child_at(pos - 2) else { return Ok(None) };
        let entry = DirEntry { ino: node.ino(), d_type: dt_of_mode(node.mode()), name: name.into_bytes() };
        Ok(Some((entry, next + 2)))
    }

    fn fsync(&self) -> Result<(), Errno> {
        Err(Errno::EINVAL)
    }
}

/// The proc file system instance (Linux `proc_fs_type`): one per mount,
/// all showing the same tree.
struct ProcFs;

impl SuperOperations for ProcFs {
    fn fs_type(&self) -> &'static str {
        "proc"
    }

    fn root(&self) -> Result<Arc<dyn FsInode>, Errno> {
        Ok(ProcInode::make(Node::Root))
    }

    fn statfs(&self) -> Kstatfs {
        Kstatfs { f_type: PROC_SUPER_MAGIC, bsize: 4096, namelen: 255, ..Kstatfs::default() }
    }
}

/// A new proc instance (Linux `proc_fill_super`).
pub fn new_instance() -> Box<dyn SuperOperations> {
    Box::new(ProcFs)
}
