//! System V shared memory (Linux `ipc/shm.c`): `shmget`, `shmat`,
//! `shmdt` and `shmctl` over shmem files.
//!
//! A segment (Linux `struct shmid_kernel`) is a shmem file of the size
//! asked, in no directory on the kernel's internal tmpfs, named
//! `SYSV%08x` after its key (Linux `shmem_kernel_file_setup`), so
//! `/proc/PID/maps` shows an attach as `/SYSV0000abcd (deleted)`. Its
//! pages are swapbacked page cache like any shmem file's: counted in
//! `Shmem:`, swapped out under pressure ([`crate::shmem`]).
//!
//! An attach is a `MAP_SHARED` mapping of that file (Linux `do_shmat`:
//! a new `struct file` per attach, mapped with `do_mmap`), from offset 0
//! over the whole segment, at the address asked (`SHM_RND` rounds it down
//! to `SHMLBA`, the page size on x86_64; without `SHM_REMAP` an overlap
//! is EINVAL) or where mmap places it. The attach's mapping object tells
//! the segment of every VMA that takes or drops it
//! ([`crate::filemap::VmaOpenClose`], Linux's `shm_vm_ops` around
//! shmem's), so `shm_nattch` counts VMAs as Linux's does: up at attach,
//! at a split and for each VMA a fork copies; down at `shmdt`, at
//! munmap, and when exec or exit tears the address space down. Each open
//! and close stamps `shm_atime`/`shm_dtime` and `shm_lpid` with the
//! running task (Linux `__shm_open`, `shm_close`).
//!
//! `IPC_RMID` takes the key away at once (the segment becomes
//! `IPC_PRIVATE` to `shmget`) and marks it `SHM_DEST`; the segment goes
//! at its last detach, or at once if none is left (Linux `do_shm_rmid`,
//! `shm_may_destroy`). Until then its id still works: `IPC_STAT` and even
//! `shmat` (a Linux behaviour other systems lack).
//!
//! Limits are Linux's sysctls with Linux's defaults: `kernel.shmmax`
//! (largest segment, bytes), `kernel.shmall` (all segments, pages),
//! `kernel.shmmni` (segments); `SHMMIN` is 1 byte.
//!
//! Differences from Linux: no `SHM_HUGETLB` (EINVAL), `SHM_LOCK` and
//! `SHM_UNLOCK` (EINVAL: shmem has no unevictable state here), or
//! `kernel.shm_rmid_forced`; one IPC name space. Two VMAs of one attach
//! that become adjacent with equal flags again merge (nattch falls by
//! one), where Linux keeps VMAs with a `close` operation apart. The
//! `ipcs`-style `/proc/sysvipc/shm` does not exist.
//!
//! Locking: [`SHM_IDS`] is a sleeping mutex (Linux `shm_ids(ns).rwsem`
//! and each segment's `kern_ipc_perm.lock` in one). The VMA hooks take
//! it under the mmap lock, so the order is mmap lock -> `SHM_IDS`, and
//! `shmat` and `shmdt` never hold it while taking the mmap lock. A
//! segment's file is dropped after the mutex is let go (its pages are
//! freed then).

#![forbid(unsafe_code)]

use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use mm::VirtAddr;
use mm::addr::PAGE_SIZE;
use mm::memfd::Seals;
use uapi::errno::Errno;
use uapi::ipc::*;

use super::{IPCMNI, IpcIds, KernIpcPerm, ipcperms};
use crate::arch::x86_64::uaccess::{read_user, write_user};
use crate::cred::current_cred;
use crate::filemap::{MappedFile, VmaOpenClose};
use crate::fs::namespace::Path;
use crate::sync::Mutex;

/// `SHM_DEST`: removed, destroyed at the last detach (a mode bit).
pub const SHM_DEST: u32 = 0o1000;

/// `SHMLBA`: attach addresses are multiples of it (x86_64: a page).
const SHMLBA: u64 = PAGE_SIZE;

/// `kernel.shmmax` (Linux `ns->shm_ctlmax`).
static SHM_CTLMAX: AtomicU64 = AtomicU64::new(SHMMAX);
/// `kernel.shmall` (Linux `ns->shm_ctlall`).
static SHM_CTLALL: AtomicU64 = AtomicU64::new(SHMALL);
/// `kernel.shmmni` (Linux `ns->shm_ctlmni`).
static SHM_CTLMNI: AtomicU64 = AtomicU64::new(SHMMNI);

/// The value of `kernel.shmmax`.
pub fn shmmax() -> u64 {
    SHM_CTLMAX.load(Ordering::Relaxed)
}

/// The value of `kernel.shmall`.
pub fn shmall() -> u64 {
    SHM_CTLALL.load(Ordering::Relaxed)
}

/// The value of `kernel.shmmni`.
pub fn shmmni() -> u64 {
    SHM_CTLMNI.load(Ordering::Relaxed)
}

/// Sets `kernel.shmmax` (Linux `proc_doulongvec_minmax`: any value).
pub fn set_shmmax(value: u64) {
    SHM_CTLMAX.store(value, Ordering::Relaxed);
}

/// Sets `kernel.shmall` (any value).
pub fn set_shmall(value: u64) {
    SHM_CTLALL.store(value, Ordering::Relaxed);
}

/// Sets `kernel.shmmni`: EINVAL above `IPCMNI` (Linux's `ipc_mni` bound).
pub fn set_shmmni(value: u64) -> Result<(), Errno> {
    if value > u64::from(IPCMNI) {
        return Err(Errno::EINVAL);
    }
    SHM_CTLMNI.store(value, Ordering::Relaxed);
    Ok(())
}

/// A segment (Linux `struct shmid_kernel` less its `kern_ipc_perm`,
/// which the id table keeps beside it).
struct ShmidKernel {
    /// The size asked for (`shm_segsz`).
    segsz: u64,
    /// Last attach, detach and change (seconds since the epoch).
    atim: i64,
    dtim: i64,
    ctim: i64,
    /// The creator's and the last attacher's or detacher's pid.
    cprid: i32,
    lprid: i32,
    /// VMAs mapping it, and attaches under way (`shm_nattch`).
    nattch: u64,
    /// The shmem file: its data.
    file: Path,
}

impl ShmidKernel {
    /// Its pages, as `kernel.shmall` counts them.
    fn pages(&self) -> u64 {
        self.segsz.div_ceil(PAGE_SIZE)
    }

    /// The page cache's id, which names the segment's VMAs.
    fn mapping_id(&self) -> Option<u64> {
        self.file.inode.i_mapping.as_ref().map(|m| m.id().as_u64())
    }
}

/// Every segment, and the pages of all (Linux `shm_ids(ns)` and
/// `ns->shm_tot`).
#[derive(Default)]
struct ShmIds {
    ids: IpcIds<ShmidKernel>,
    shm_tot: u64,
}

impl ShmIds {
    /// Destroys the segment `id` if it is removed and unattached (Linux
    /// `shm_may_destroy` then `shm_destroy`): hands its file back, for the
    /// caller to drop after the lock.
    fn may_destroy(&mut self, id: i32) -> Option<Path> {
        let (perm, shp) = self.ids.get_mut(id).ok()?;
        if shp.nattch != 0 || perm.mode & SHM_DEST == 0 {
            return None;
        }
        let (_, shp) = self.ids.remove(id)?;
        self.shm_tot = self.shm_tot.saturating_sub(shp.pages());
        Some(shp.file)
    }
}

/// The segments (see the module doc for its lock).
static SHM_IDS: Mutex<Option<ShmIds>> = Mutex::new(None);

/// Runs `f` on the segments under [`SHM_IDS`].
fn with_ids<R>(f: impl FnOnce(&mut ShmIds) -> R) -> R {
    let mut guard = SHM_IDS.lock();
    f(guard.get_or_insert_with(ShmIds::default))
}

/// The time stamps' clock (Linux `ktime_get_real_seconds`).
fn now() -> i64 {
    crate::fs::current_time().sec
}

/// The pid stamped as `shm_cpid`/`shm_lpid` (Linux `task_tgid(current)`).
fn current_pid() -> i32 {
    crate::sched::current().pid as i32
}

/// Linux `shmget`: the id of the segment of `key`, made if `IPC_CREAT`
/// asks for it or `key` is `IPC_PRIVATE` (Linux `ipcget`).
///
/// Errors, in Linux's order: for a new segment EINVAL for a size outside
/// `SHMMIN..=shmmax`, ENOSPC past `shmall` or `shmmni`, ENOMEM without
/// memory for the file; for a key without one, ENOENT unless
/// `IPC_CREAT`; for an existing one EEXIST with `IPC_CREAT | IPC_EXCL`,
/// EINVAL if it is smaller than `size`, EACCES if `shmflg`'s mode bits
/// ask for access the segment denies.
pub fn sys_shmget(key: i32, size: u64, shmflg: u32) -> Result<u64, Errno> {
    if shmflg & SHM_HUGETLB != 0 {
        return Err(Errno::EINVAL);
    }
    let cred = current_cred();
    let (id, dropped) = with_ids(|ids| {
        if key != IPC_PRIVATE
            && let Some(id) = ids.ids.find_key(key)
        {
            if shmflg & IPC_CREAT != 0 && shmflg & IPC_EXCL != 0 {
                return (Err(Errno::EEXIST), None);
            }
            let result = ids.ids.get_mut(id).and_then(|(perm, shp)| {
                if shp.segsz < size {
                    Err(Errno::EINVAL)
                } else if !ipcperms(&cred, perm, shmflg) {
                    Err(Errno::EACCES)
                } else {
                    Ok(id)
                }
            });
            return (result, None);
        }
        if key != IPC_PRIVATE && shmflg & IPC_CREAT == 0 {
            return (Err(Errno::ENOENT), None);
        }
        newseg(ids, key, size, shmflg, &cred)
    });
    drop(dropped);
    id.map(|id| id as u64)
}

/// Makes a segment (Linux `newseg`); a file made and then refused by the
/// table is handed back to be dropped after the lock.
fn newseg(
    ids: &mut ShmIds,
    key: i32,
    size: u64,
    shmflg: u32,
    cred: &crate::cred::Cred,
) -> (Result<i32, Errno>, Option<Path>) {
    if size < SHMMIN || size > shmmax() {
        return (Err(Errno::EINVAL), None);
    }
    let pages = size.div_ceil(PAGE_SIZE);
    if ids.shm_tot.checked_add(pages).is_none_or(|tot| tot > shmall()) {
        return (Err(Errno::ENOSPC), None);
    }
    let name = format!("SYSV{:08x}", key as u32);
    let file = match crate::shmem::shmem_file_setup(name, size, Seals::SEAL) {
        Ok(file) => file,
        Err(e) => return (Err(e), None),
    };
    let shp = ShmidKernel {
        segsz: size,
        atim: 0,
        dtim: 0,
        ctim: now(),
        cprid: current_pid(),
        lprid: 0,
        nattch: 0,
        file: file.clone(),
    };
    let limit = u32::try_from(shmmni()).unwrap_or(IPCMNI);
    match ids.ids.add(KernIpcPerm::new(key, shmflg, cred), shp, limit) {
        Ok(id) => {
            ids.shm_tot += pages;
            (Ok(id), None)
        }
        Err(e) => (Err(e), Some(file)),
    }
}

/// The segment's side of one attach's VMAs (Linux `shm_vm_ops`'
/// `shm_open` and `shm_close`).
struct ShmVmOps {
    id: i32,
}

impl VmaOpenClose for ShmVmOps {
    fn open(&self) {
        with_ids(|ids| {
            if let Ok((_, shp)) = ids.ids.get_mut(self.id) {
                shp.atim = now();
                shp.lprid = current_pid();
                shp.nattch += 1;
            }
        });
    }

    fn close(&self) {
        let gone = with_ids(|ids| {
            if let Ok((_, shp)) = ids.ids.get_mut(self.id) {
                shp.lprid = current_pid();
                shp.dtim = now();
                shp.nattch = shp.nattch.saturating_sub(1);
            }
            ids.may_destroy(self.id)
        });
        drop(gone);
    }
}

/// Linux `shmat` (`do_shmat`): attaches segment `shmid` at `shmaddr` (0:
/// where mmap places it) and returns the address.
///
/// Errors: EINVAL for a negative or unknown id, an address not a multiple
/// of `SHMLBA` without `SHM_RND` (or rounded to 0 with `SHM_REMAP`),
/// `SHM_REMAP` without an address, or a range that overlaps a mapping
/// without `SHM_REMAP`; EACCES if the segment's mode denies the access
/// (`SHM_RDONLY`: read, else read and write; `SHM_EXEC`: execute too);
/// ENOMEM from mmap.
pub fn sys_shmat(shmid: i32, shmaddr: u64, shmflg: u32) -> Result<u64, Errno> {
    use uapi::mman::{MAP_FIXED, MAP_SHARED, PROT_EXEC, PROT_READ, PROT_WRITE};
    if shmid < 0 {
        return Err(Errno::EINVAL);
    }
    let mut addr = shmaddr;
    let mut flags = MAP_SHARED;
    if addr != 0 {
        if !addr.is_multiple_of(SHMLBA) {
            if shmflg & SHM_RND == 0 {
                return Err(Errno::EINVAL);
            }
            addr -= addr % SHMLBA;
            if addr == 0 && shmflg & SHM_REMAP != 0 {
                return Err(Errno::EINVAL);
            }
        }
        flags |= MAP_FIXED;
    } else if shmflg & SHM_REMAP != 0 {
        return Err(Errno::EINVAL);
    }
    let (mut prot, mut acc_mode) =
        if shmflg & SHM_RDONLY != 0 { (PROT_READ, 0o444) } else { (PROT_READ | PROT_WRITE, 0o666) };
    if shmflg & SHM_EXEC != 0 {
        prot |= PROT_EXEC;
        acc_mode |= 0o111;
    }
    let cred = current_cred();
    // The segment is pinned by an attach under way (Linux's `nattch++`
    // around `do_mmap`), so a racing IPC_RMID leaves it to us to destroy.
    let (file, size) = with_ids(|ids| {
        let (perm, shp) = ids.ids.get_mut(shmid)?;
        if !ipcperms(&cred, perm, acc_mode) {
            return Err(Errno::EACCES);
        }
        shp.nattch += 1;
        Ok((shp.file.clone(), shp.segsz))
    })?;
    let name = crate::shmem::unlinked_name(&file.inode).unwrap_or_default();
    let mapped = MappedFile::new_with_vm_ops(file.inode.clone(), name, Arc::new(ShmVmOps { id: shmid }));
    let result = (|| {
        let mm = crate::sched::current().proc.mm().ok_or(Errno::EINVAL)?;
        let mut mm = mm.mmap_write_lock();
        if addr != 0 && shmflg & SHM_REMAP == 0 {
            // Linux `find_vma_intersection`; a range mmap refuses anyway
            // is left to it.
            let range = addr.checked_add(size).and_then(|end| Some((VirtAddr::new(addr)?, VirtAddr::new(end)?)));
            if range.is_some_and(|(start, end)| mm.vmas().range(start, end).next().is_some()) {
                return Err(Errno::EINVAL);
            }
        }
        let file = mm::mmap::MapFile { file: MappedFile::as_vma_file(&mapped), writable: shmflg & SHM_RDONLY == 0 };
        mm.do_mmap(addr, size, prot, flags, Some(file), 0)
    })();
    drop(mapped);
    let gone = with_ids(|ids| {
        if let Ok((_, shp)) = ids.ids.get_mut(shmid) {
            shp.nattch = shp.nattch.saturating_sub(1);
        }
        ids.may_destroy(shmid)
    });
    drop((gone, file));
    result
}

/// Linux `shmdt`: detaches the attach whose first byte is at `shmaddr`:
/// the first segment VMA at or above it that maps the segment from
/// `shmaddr` on, and every later VMA of the same attach within the
/// segment's size (the pieces a split left). EINVAL if `shmaddr` is not
/// page aligned or no such VMA exists.
pub fn sys_shmdt(shmaddr: u64) -> Result<u64, Errno> {
    if !shmaddr.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    // The segments' caches and sizes, read before the mmap lock is taken
    // (lock order); a segment with a VMA here cannot go meanwhile.
    let segments: Vec<(u64, u64)> = with_ids(|ids| {
        let mut v = Vec::new();
        if v.try_reserve(ids.ids.in_use()).is_ok() {
            v.extend(ids.ids.iter().filter_map(|(_, shp)| Some((shp.mapping_id()?, shp.segsz))));
        }
        v
    });
    let mm = crate::sched::current().proc.mm().ok_or(Errno::EINVAL)?;
    let mut mm = mm.mmap_write_lock();
    let segment_of = |desc: &mm::vma::VmaDesc| {
        let id = desc.file?.mapping_id()?;
        let from_addr = desc.start.as_u64().checked_sub(shmaddr)? / PAGE_SIZE == desc.pgoff;
        segments.iter().find(|(m, _)| *m == id).filter(|_| from_addr).map(|&(_, size)| size)
    };
    let from = VirtAddr::new(shmaddr).ok_or(Errno::EINVAL)?;
    let mut descs = mm.vmas().iter().map(|v| v.desc()).skip_while(|d| d.end <= from);
    let (first, size) = descs.by_ref().find_map(|d| segment_of(&d).map(|size| (d, size))).ok_or(Errno::EINVAL)?;
    let size = size.next_multiple_of(PAGE_SIZE);
    let same_attach =
        |d: &mm::vma::VmaDesc| d.file.is_some_and(|f| first.file.is_some_and(|g| core::ptr::addr_eq(f, g)));
    let mut ranges = Vec::new();
    ranges.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
    ranges.push((first.start.as_u64(), first.end.as_u64()));
    for d in descs.take_while(|d| d.end.as_u64() - shmaddr <= size) {
        if segment_of(&d).is_some() && same_attach(&d) {
            ranges.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
            ranges.push((d.start.as_u64(), d.end.as_u64()));
        }
    }
    for (start, end) in ranges {
        mm.do_munmap(start, end - start)?;
    }
    Ok(0)
}

/// Linux `shmctl` (`ksys_shmctl` with x86_64's `IPC_64` structures).
///
/// Errors: EINVAL for an unknown command (`IPC_64` included: x86_64
/// parses no version) or id, EFAULT for `buf`, EACCES for a read the
/// mode denies (`IPC_STAT`, `SHM_STAT`), EPERM for `IPC_SET` and
/// `IPC_RMID` by neither owner, creator nor `CAP_SYS_ADMIN`.
pub fn sys_shmctl(shmid: i32, cmd: i32, buf: u64) -> Result<u64, Errno> {
    if cmd < 0 || shmid < 0 {
        return Err(Errno::EINVAL);
    }
    let cred = current_cred();
    match cmd {
        IPC_INFO => {
            let info = Shminfo64 {
                shmmax: shmmax(),
                shmmin: SHMMIN,
                shmmni: shmmni(),
                shmseg: SHMMNI,
                shmall: shmall(),
                ..Default::default()
            };
            write_user(buf, &info).map_err(|_| Errno::EFAULT)?;
            Ok(with_ids(|ids| ids.ids.max_idx().map_or(0, u64::from)))
        }
        SHM_INFO => {
            let (info, max_idx) = with_ids(|ids| {
                let (mut rss, mut swp) = (0, 0);
                for (_, shp) in ids.ids.iter() {
                    if let Some(m) = shp.file.inode.i_mapping.as_ref() {
                        rss += m.nrpages();
                        swp += m.swapped();
                    }
                }
                let used_ids = ids.ids.in_use() as i32;
                let info = ShmInfo { used_ids, shm_tot: ids.shm_tot, shm_rss: rss, shm_swp: swp, ..Default::default() };
                (info, ids.ids.max_idx().map_or(0, u64::from))
            });
            write_user(buf, &info).map_err(|_| Errno::EFAULT)?;
            Ok(max_idx)
        }
        IPC_STAT | SHM_STAT | SHM_STAT_ANY => {
            let (ds, id) = with_ids(|ids| {
                let (id, (perm, shp)) =
                    if cmd == IPC_STAT { (shmid, ids.ids.get_mut(shmid)?) } else { ids.ids.get_by_idx(shmid)? };
                if cmd != SHM_STAT_ANY && !ipcperms(&cred, perm, 0o444) {
                    return Err(Errno::EACCES);
                }
                let ds = Shmid64Ds {
                    shm_perm: perm.to_user(),
                    shm_segsz: shp.segsz,
                    shm_atime: shp.atim,
                    shm_dtime: shp.dtim,
                    shm_ctime: shp.ctim,
                    shm_cpid: shp.cprid,
                    shm_lpid: shp.lprid,
                    shm_nattch: shp.nattch,
                    ..Default::default()
                };
                Ok((ds, id))
            })?;
            write_user(buf, &ds).map_err(|_| Errno::EFAULT)?;
            Ok(if cmd == IPC_STAT { 0 } else { id as u64 })
        }
        IPC_SET => {
            let new: Shmid64Ds = read_user(buf).map_err(|_| Errno::EFAULT)?;
            let (uid, gid) = (new.shm_perm.uid, new.shm_perm.gid);
            if uid == u32::MAX || gid == u32::MAX {
                return Err(Errno::EINVAL);
            }
            with_ids(|ids| {
                let (perm, shp) = ids.ids.get_mut(shmid)?;
                if !perm.may_change(&cred) {
                    return Err(Errno::EPERM);
                }
                perm.uid = uid;
                perm.gid = gid;
                perm.mode = (perm.mode & !0o777) | (new.shm_perm.mode & 0o777);
                shp.ctim = now();
                Ok(0)
            })
        }
        IPC_RMID => {
            let gone = with_ids(|ids| {
                let (perm, _) = ids.ids.get_mut(shmid)?;
                if !perm.may_change(&cred) {
                    return Err(Errno::EPERM);
                }
                // Linux `do_shm_rmid`: the key goes now, the segment at
                // its last detach.
                perm.mode |= SHM_DEST;
                perm.key = IPC_PRIVATE;
                Ok(ids.may_destroy(shmid))
            })?;
            drop(gone);
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
