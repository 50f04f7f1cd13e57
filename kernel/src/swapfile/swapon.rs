//! `swapon(2)` and `swapoff(2)` (Linux `mm/swapfile.c`:
//! `SYSCALL_DEFINE2(swapon)` with `alloc_swap_info`, `claim_swapfile`,
//! `read_swap_header`, `enable_swap_info`; `SYSCALL_DEFINE1(swapoff)` with
//! `del_from_avail_list`, `try_to_unuse`, `reinsert_swap_info`), and the
//! kernel's own swapon for the console and for `swap=` on the command
//! line.
//!
//! swapon, in Linux's order: flags (EINVAL), `CAP_SYS_ADMIN` (EPERM), a
//! free type (EPERM when all [`MAX_SWAPFILES`](mm::swapops::MAX_SWAPFILES) are taken), the path (its
//! lookup's errors: ENOENT, ENOTDIR, ...; a directory is EISDIR, as
//! Linux's read-write open makes it), a block device (anything else is
//! EINVAL), not already a swap area nor mounted (EBUSY, Linux's exclusive
//! claim), its first page read and parsed by [`SwapHeader::parse`] against
//! the device's size (EINVAL, logged with the parser's message), the
//! slots' memory (ENOMEM), then the area opens with its priority: the one
//! given with `SWAP_FLAG_PREFER` (0..=32767), else the next default, -2,
//! -3, ... as Linux assigns them. Linux's "Adding ...k swap on ..." line
//! is logged.
//!
//! swapoff: `CAP_SYS_ADMIN` (EPERM), the path as for swapon, an open area
//! on that disk (EINVAL). The area is closed to allocation and its slots
//! leave `SwapTotal`; then every page in it comes back into memory
//! (Linux `try_to_unuse`, see [`try_to_unuse`]). If that fails (ENOMEM)
//! the area is put back as it was;
//! otherwise its memory is freed, its type freed for reuse, and the
//! default priorities below its own move up by one, as Linux's do.
//!
//! Differences from Linux: the path names a disk by `/dev/NAME` (the
//! block-device registry, as `mount` finds disks; there are no device
//! nodes) or is looked up in the file system, where only a directory
//! (EISDIR) and a missing path are told apart from a file that is not a
//! disk (EINVAL, for a regular file with a message: no swap files); no
//! discard (the discard flags are accepted and ignored, as Linux ignores
//! them on a disk that cannot discard); the type is reserved after the
//! path is copied from user memory, not before.

#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::sync::Arc;

use log::{error, info, warn};
use mm::swapfile::header::MAX_HEADER_PAGE_SIZE;
use mm::swapfile::{SwapHeader, SwapInfo, max_swapfile_size};
use uapi::errno::Errno;
use uapi::swap::{SWAP_FLAG_PREFER, SWAP_FLAG_PRIO_MASK, SWAP_FLAG_PRIO_SHIFT, SWAP_FLAGS_VALID};

use super::{NR_SWAP_PAGES, SWAP_INFO, SWAP_LOCK, SwpFlags, TOTAL_SWAP_PAGES, storage, swap_area};
use crate::block::{BlockDevice, Gendisk, SECTOR_SIZE};

type SysResult = Result<u64, Errno>;

/// The highest priority swapon takes (`SWAP_FLAG_PRIO_MASK`).
pub const SWAP_PRIO_MAX: u16 = SWAP_FLAG_PRIO_MASK as u16;

/// What swapon was asked for, checked: the priority, if one was given
/// (`SWAP_FLAG_PREFER`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwapOnFlags {
    prio: Option<u16>,
}

impl SwapOnFlags {
    /// The flags of a `swapon(2)` call (Linux's `int swap_flags`): EINVAL
    /// for a bit outside `SWAP_FLAGS_VALID`. The discard flags are
    /// accepted and have no effect.
    pub fn from_user(flags: u32) -> Result<SwapOnFlags, Errno> {
        if flags & !SWAP_FLAGS_VALID != 0 {
            return Err(Errno::EINVAL);
        }
        let prio =
            (flags & SWAP_FLAG_PREFER != 0).then_some(((flags & SWAP_FLAG_PRIO_MASK) >> SWAP_FLAG_PRIO_SHIFT) as u16);
        Ok(SwapOnFlags { prio })
    }

    /// A given priority, if it is at most [`SWAP_PRIO_MAX`]; `None`
    /// asks for the next default one.
    pub fn with_prio(prio: Option<u16>) -> Option<SwapOnFlags> {
        match prio {
            Some(p) if p > SWAP_PRIO_MAX => None,
            prio => Some(SwapOnFlags { prio }),
        }
    }
}

/// What a swapon or swapoff path names.
pub(super) enum SwapPath {
    /// A disk with a request queue.
    Disk(Arc<Gendisk>),
    /// A registered device that copies bytes (a loop or RAM disk).
    NoQueue,
    /// A regular file.
    File,
    /// Something else that is not a directory.
    Other,
}

/// Looks `path` up: `/dev/NAME` in the block-device registry, anything
/// else in the file system from the caller's working directory.
pub(super) fn lookup_swap_path(path: &[u8]) -> Result<SwapPath, Errno> {
    if let Some(name) = path.strip_prefix(b"/dev/").and_then(|n| core::str::from_utf8(n).ok()) {
        if let Some(disk) = crate::block::disk_by_name(name) {
            return Ok(SwapPath::Disk(disk));
        }
        if crate::fs::blkdev::lookup(name).is_some() {
            return Ok(SwapPath::NoQueue);
        }
    }
    let found = crate::fs::syscalls::user_path_at(uapi::fcntl::AT_FDCWD, path, true)?;
    let attr = found.inode.getattr()?;
    if attr.is_dir() {
        return Err(Errno::EISDIR);
    }
    Ok(if attr.is_reg() { SwapPath::File } else { SwapPath::Other })
}

/// The name of `disk` in messages and /proc/swaps.
pub(super) fn disk_path(disk: &Gendisk) -> String {
    alloc::format!("/dev/{}", disk.name())
}

/// Whether `disk` is mounted (by either name `mount` accepts).
pub(super) fn disk_mounted(disk: &Gendisk) -> bool {
    crate::fs::namespace::source_mounted(&disk_path(disk)) || crate::fs::namespace::source_mounted(disk.name())
}

/// Linux `swapon(2)`.
pub fn sys_swapon(path: u64, flags: u64) -> SysResult {
    // Linux's `int swap_flags`: the register's low half.
    let flags = SwapOnFlags::from_user(flags as u32)?;
    if !crate::cred::capable(uapi::capability::CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let path = crate::fs::syscalls::user_path(path)?;
    do_swapon(&path, flags).map(|_| 0)
}

/// Linux `swapoff(2)`.
pub fn sys_swapoff(path: u64) -> SysResult {
    if !crate::cred::capable(uapi::capability::CAP_SYS_ADMIN) {
        return Err(Errno::EPERM);
    }
    let path = crate::fs::syscalls::user_path(path)?;
    do_swapoff(&path).map(|()| 0)
}

/// Turns the disk at `path` on as a swap area (swapon without the
/// credential check: the console, the command line, tests); returns its
/// type. Sleeps (it reads the disk).
pub fn do_swapon(path: &[u8], flags: SwapOnFlags) -> Result<u32, Errno> {
    // The mm's swap paths run against the areas from the first swapon on.
    crate::swap_state::init()?;
    let ty = alloc_swap_info()?;
    let result = setup_swap_area(ty, path, flags);
    if result.is_err()
        && let Some(area) = swap_area(ty)
    {
        let mut state = area.state.lock();
        state.disk = None;
        state.flags = SwpFlags::empty();
    }
    result.map(|()| ty)
}

/// Reserves a free type (Linux `alloc_swap_info`): EPERM if all
/// [`MAX_SWAPFILES`](mm::swapops::MAX_SWAPFILES) are taken.
fn alloc_swap_info() -> Result<u32, Errno> {
    let _table = SWAP_LOCK.lock();
    for area in &SWAP_INFO {
        let mut state = area.state.lock();
        if state.flags.is_empty() {
            state.flags = SwpFlags::USED;
            return Ok(area.ty);
        }
    }
    Err(Errno::EPERM)
}

/// Everything between reserving type `ty` and opening it.
fn setup_swap_area(ty: u32, path: &[u8], flags: SwapOnFlags) -> Result<(), Errno> {
    let shown = String::from_utf8_lossy(path);
    let disk = match lookup_swap_path(path)? {
        SwapPath::Disk(disk) => disk,
        SwapPath::NoQueue => {
            error!("swapon: {shown}: no request queue for page I/O (a loop or RAM disk cannot hold swap)");
            return Err(Errno::EINVAL);
        }
        SwapPath::File => {
            error!("swapon: {shown}: swap files are not supported: swap on a whole disk (/dev/vdX)");
            return Err(Errno::EINVAL);
        }
        SwapPath::Other => return Err(Errno::EINVAL),
    };
    claim_swapfile(ty, &disk)?;
    let name = disk_path(&disk);
    let area = read_swap_header_area(&disk)?;
    let device_pages = disk.capacity() / (mm::PAGE_SIZE / SECTOR_SIZE);
    let header = SwapHeader::parse(&area, device_pages, max_swapfile_size(crate::arch::x86_64::pgtable::format()))
        .map_err(|e| {
            error!("swapon: {name}: {e}");
            Errno::EINVAL
        })?;
    if header.truncated() {
        warn!(
            "Truncating oversized swap area, only using {}k out of {}k",
            u64::from(header.maxpages()) << (mm::PAGE_SHIFT - 10),
            (u64::from(header.last_page()) + 1) << (mm::PAGE_SHIFT - 10)
        );
    }
    let nr_cpus = crate::arch::x86_64::smp::nr_cpu_ids() as usize;
    let storage = storage::alloc_storage(header.maxpages(), nr_cpus)?;
    // The storage is sized for the header and the type is below
    // MAX_SWAPFILES: `new` has nothing to refuse.
    let si = SwapInfo::new(ty, &header, storage).map_err(|e| {
        error!("swapon: {name}: {e}");
        Errno::EINVAL
    })?;
    let pages = u64::from(si.pages()) << (mm::PAGE_SHIFT - 10);
    let prio = enable_swap_info(ty, si, flags.prio);
    info!("Adding {pages}k swap on {name}.  Priority:{prio} extents:1 across:{pages}k ");
    Ok(())
}

/// Claims `disk` for area `ty` (Linux `claim_swapfile`'s exclusive open):
/// EBUSY if another area has it or it is mounted.
fn claim_swapfile(ty: u32, disk: &Arc<Gendisk>) -> Result<(), Errno> {
    if disk_mounted(disk) {
        return Err(Errno::EBUSY);
    }
    let _table = SWAP_LOCK.lock();
    let taken =
        SWAP_INFO.iter().any(|area| area.state.lock().disk.as_ref().is_some_and(|other| Arc::ptr_eq(other, disk)));
    if taken {
        return Err(Errno::EBUSY);
    }
    if let Some(area) = swap_area(ty) {
        area.state.lock().disk = Some(disk.clone());
    }
    Ok(())
}

/// The start of `disk`: its first page, and as much more as shows a
/// header made for larger pages (Linux `read_mapping_page(mapping, 0)`).
fn read_swap_header_area(disk: &Arc<Gendisk>) -> Result<alloc::vec::Vec<u8>, Errno> {
    let mut bdev = BlockDevice::open(disk).map_err(crate::block::BlkError::errno)?;
    let len = bdev.size().min(MAX_HEADER_PAGE_SIZE as u64) as usize;
    let mut area = alloc::vec::Vec::new();
    area.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
    area.resize(len, 0);
    bdev.read_at(0, &mut area).map_err(crate::block::BlkError::errno)?;
    Ok(area)
}

/// Opens area `ty` with slots `si` (Linux `enable_swap_info`): its
/// priority (`prio`, or the next default), its slots into
/// `nr_swap_pages` and `total_swap_pages`, onto the priority list.
/// Returns the priority.
fn enable_swap_info(ty: u32, si: SwapInfo<'static>, prio: Option<u16>) -> i32 {
    let mut table = SWAP_LOCK.lock();
    let prio = match prio {
        Some(prio) => i32::from(prio),
        None => {
            table.least_priority -= 1;
            table.least_priority
        }
    };
    table.prio[ty as usize] = prio;
    if let Some(area) = swap_area(ty) {
        let mut state = area.state.lock();
        state.si = Some(si);
    }
    enable_locked(&mut table, ty);
    prio
}

/// Opens area `ty`, whose slots are set up, to allocation (Linux
/// `_enable_swap_info`): its `pages` go into `nr_swap_pages` (which held
/// minus its slots in use while it was closed) and `total_swap_pages`.
/// The caller holds `swap_lock`.
fn enable_locked(table: &mut super::SwapTable, ty: u32) {
    let Some(area) = swap_area(ty) else { return };
    let mut state = area.state.lock();
    let Some(pages) = state.si.as_ref().map(SwapInfo::pages) else { return };
    state.flags |= SwpFlags::WRITEOK;
    drop(state);
    NR_SWAP_PAGES.fetch_add(i64::from(pages), core::sync::atomic::Ordering::Relaxed);
    TOTAL_SWAP_PAGES.fetch_add(u64::from(pages), core::sync::atomic::Ordering::Relaxed);
    table.add_to_avail_list(ty);
}

/// Turns the swap area on the disk at `path` off (swapoff without the
/// credential check). Sleeps.
pub fn do_swapoff(path: &[u8]) -> Result<(), Errno> {
    let SwapPath::Disk(disk) = lookup_swap_path(path)? else { return Err(Errno::EINVAL) };
    let name = disk_path(&disk);
    let ty = close_swap_area(&disk).ok_or(Errno::EINVAL)?;
    if let Err(e) = try_to_unuse(ty, &name) {
        let mut table = SWAP_LOCK.lock();
        enable_locked(&mut table, ty);
        return Err(e);
    }
    let storage = {
        let mut table = SWAP_LOCK.lock();
        let prio = table.prio[ty as usize];
        if prio < 0 {
            // The default priorities below this one move up by one
            // (Linux: every area after it on `swap_active_head`).
            for other in SWAP_INFO.iter().filter(|a| a.ty != ty) {
                let state = other.state.lock();
                let p = &mut table.prio[other.ty as usize];
                if state.si.is_some() && *p < prio {
                    *p += 1;
                }
            }
            table.least_priority += 1;
        }
        let area = swap_area(ty).ok_or(Errno::EINVAL)?;
        let mut state = area.state.lock();
        state.disk = None;
        state.flags = SwpFlags::empty();
        state.si.take().map(SwapInfo::into_storage)
    };
    if let Some(storage) = storage {
        storage::free_storage(storage);
    }
    Ok(())
}

/// Takes the open area on `disk` off the priority list and closes it to
/// allocation, its slots out of `nr_swap_pages` and `total_swap_pages`
/// (Linux swapoff's first half); its type, or `None` if no open area is
/// on `disk`.
fn close_swap_area(disk: &Arc<Gendisk>) -> Option<u32> {
    let mut table = SWAP_LOCK.lock();
    for area in &SWAP_INFO {
        let mut state = area.state.lock();
        let on_disk = state.disk.as_ref().is_some_and(|d| Arc::ptr_eq(d, disk));
        if !on_disk || !state.flags.contains(SwpFlags::WRITEOK) {
            continue;
        }
        state.flags.remove(SwpFlags::WRITEOK);
        let pages = state.si.as_ref().map_or(0, SwapInfo::pages);
        drop(state);
        table.del_from_avail_list(area.ty);
        NR_SWAP_PAGES.fetch_sub(i64::from(pages), core::sync::atomic::Ordering::Relaxed);
        TOTAL_SWAP_PAGES.fetch_sub(u64::from(pages), core::sync::atomic::Ordering::Relaxed);
        return Some(area.ty);
    }
    None
}

/// Rounds of [`try_to_unuse`] before it gives up, and the wait between.
const UNUSE_ROUNDS: u32 = 100;
const UNUSE_WAIT_NS: u64 = 10_000_000;

/// Brings every page of area `ty`, closed to allocation, back into memory
/// (Linux `try_to_unuse`): every shmem file's swap entries of the area
/// are swapped back into its page cache ([`crate::shmem::shmem_unuse`]),
/// every address space's ptes naming a slot of the area fault their page
/// in ([`crate::mmap::unuse_swap_area`]), and the slots only the swap
/// cache holds then are freed
/// ([`crate::swap_state::drop_unused_swap_cache`]), in rounds until no
/// slot is in use. What cannot come back (no memory, a read error, a
/// count no pte or shmem index the walks find) fails the call with
/// ENOMEM, logged; the caller reopens the area with every slot as it
/// was.
fn try_to_unuse(ty: u32, name: &str) -> Result<(), Errno> {
    let inuse = || swap_area(ty).map_or(0, |area| area.state.lock().si.as_ref().map_or(0, SwapInfo::inuse_pages));
    if inuse() == 0 {
        return Ok(());
    }
    // Slots only the swap cache holds (their ptes gone) are freed, and
    // so are those of processes that exited while a reclaim walk held
    // their address space (its teardown deferred: `mmput_async`); a walk
    // under way may hold one a little longer, so a few rounds.
    for _ in 0..UNUSE_ROUNDS {
        crate::mmap::mmput_async_drain();
        if let Err(e) = crate::shmem::shmem_unuse(ty) {
            warn!("swapoff: {name}: bringing shmem pages back: {e}");
        }
        crate::mmap::unuse_swap_area(ty);
        crate::swap_state::drop_unused_swap_cache(ty);
        if inuse() == 0 {
            return Ok(());
        }
        crate::sched::wait::sleep_until_ns(crate::arch::x86_64::tsc::now_ns() + UNUSE_WAIT_NS, || false);
    }
    let inuse = inuse();
    warn!("swapoff: {name}: {inuse} pages could not be brought back; the area stays on");
    let first = swap_area(ty).and_then(|area| area.state.lock().si.as_ref().and_then(SwapInfo::first_in_use));
    if let Some((offset, map)) = first {
        let entry = mm::swapops::SwpEntry::new(ty, offset);
        let pgdat = crate::mm::pgdat();
        match pgdat.swap_backend().and_then(|b| b.swap_cache_lookup(entry)).and_then(|pfn| pgdat.pfn_to_page(pfn)) {
            Some(page) => warn!(
                "swapoff: {name}: slot {offset} (swap map {map:#x}) in the swap cache: flags {:?}, refcount {}, mapcount {}",
                page.flags(),
                page.refcount(),
                page.mapcount()
            ),
            None => warn!("swapoff: {name}: slot {offset} (swap map {map:#x}), not in the swap cache"),
        }
    }
    Err(Errno::ENOMEM)
}

/// Turns on the areas `swap=DEV[:PRIO][,DEV[:PRIO]...]` names on the
/// kernel command line, after the disks are up (this kernel's stand-in
/// for the `swapon -a` of a boot script). Refusals are logged.
pub fn swapon_from_cmdline() {
    let Some(spec) = crate::cmdline::get("swap") else { return };
    for one in spec.split(',').filter(|s| !s.is_empty()) {
        let (dev, prio) = match one.split_once(':') {
            Some((dev, prio)) => match prio.parse::<u16>().ok().and_then(|p| SwapOnFlags::with_prio(Some(p))) {
                Some(flags) => (dev, flags),
                None => {
                    warn!("swap=: {one}: the priority must be 0..={SWAP_PRIO_MAX}");
                    continue;
                }
            },
            None => (one, SwapOnFlags::default()),
        };
        if let Err(e) = do_swapon(dev.as_bytes(), prio) {
            warn!("swap=: cannot swapon {dev}: {e}");
        }
    }
}
