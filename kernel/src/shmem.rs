//! shmem: the data of tmpfs files, memfds and shared anonymous memory
//! (Linux `mm/shmem.c`'s page-cache half; the name space of a `tmpfs`
//! mount is [`crate::fs::ramfs`]'s, `memfd_create` is [`crate::memfd`]'s).
//!
//! A shmem file's data lives only in its page cache: a swapbacked
//! [`Mapping`] that belongs to the file ([`ShmemInode`], Linux
//! `shmem_inode_info`) and lives as long as it, not as long as a VFS
//! inode. What that means for each path:
//! - **read**: [`shmem_file_read`] copies cached pages and zeros for
//!   holes, adding nothing (Linux `shmem_file_read_iter` with
//!   `SGP_READ`), a page in swap swapped in first; no readahead.
//! - **write**: the page cache's `generic_perform_write`; `write_begin`
//!   allocates nothing (there is no size limit, so no `ENOSPC`) and checks
//!   the seals, `write_end` stamps the times; a partial page of a hole is
//!   zero-filled (`read_folio` of a hole is zeros).
//! - **mmap**: the same [`crate::filemap::MappedFile`] as any cached
//!   file: a fault of a hole adds a zero page (Linux `shmem_fault`);
//!   writes mark pages dirty, which for shmem only says they hold data.
//! - **writeback, fsync, sync**: nothing to do. The pages are
//!   `PG_swapbacked` and counted in `NR_SHMEM` (`Shmem:` in
//!   `/proc/meminfo`, which leaves out the pages in swap); they are never
//!   written back to a file system, never on the dirty inode list, never
//!   throttled; `fsync` succeeds at once (Linux `noop_fsync`).
//! - **reclaim**: swap (see below); `drop_caches` never takes them
//!   ([`crate::filemap::invalidate_mapping_pages`]).
//! - **truncate, hole punching, the file's end**: free them and their
//!   swap entries ([`crate::filemap::truncate_inode_pages_range`],
//!   [`Mapping`]'s drop when the last link, open file and mapping are
//!   gone). Hole punching first unmaps the pages from the other address
//!   spaces the file's reverse map names (`i_mmap`); one whose mmap lock
//!   is taken keeps its pte, and a page it still maps is zeroed in place
//!   instead.
//!
//! # Swap
//!
//! Under pressure reclaim unmaps a shmem page from every pte, gives it a
//! swap slot and the swap cache, and leaves its swap entry in the file's
//! index in its place (Linux `shmem_writeout`, [`mm::shmem`]'s "Swap":
//! `NR_SHMEM` falls, the index's `swapped` count, Linux
//! `info->swapped`, rises); the swap cache's page is then written and
//! freed like an anonymous one. Without a free slot the page stays,
//! dirty, and is activated. Every lookup that finds a swap entry brings
//! the page back ([`shmem_get_folio`]): a fault of any mapping, `read(2)`,
//! `write(2)`, `MADV_WILLNEED`, truncation's partial pages; the page
//! takes the entry's place in the index again, leaves the swap cache,
//! and the slot is freed. Two lookups of one index meet at the slot's
//! swap-cache hold and the page lock: the second finds the page in the
//! index when it looks again. Truncation, hole punching and the file's
//! end free the entries of their range ([`shmem_free_swap_range`]).
//! swapoff brings every file's entries of the area back
//! ([`shmem_unuse`]), walking [`SHMEM_SWAPLIST`].
//!
//! Files the kernel makes for itself, in no directory, live on an
//! internal tmpfs instance (Linux `shm_mnt`, [`shmem_file_setup`]):
//! memfds and the file behind each shared anonymous mapping
//! ([`SHMEM_ZERO`], the mm's [`ShmemZeroSetup`], Linux
//! `shmem_zero_setup`).
//!
//! Seals (memfd): the rules are [`mm::memfd`]'s; [`ShmemInode`] keeps
//! them under a spin lock with its count of shared mappings that may
//! write ([`WritableMapping`]).
//!
//! Lock order: `i_rwsem` (held to add seals, as by writes and by
//! truncation, which takes every mmap lock under it to unmap) -> mmap
//! lock -> page lock -> the mapping's lock; the seals' lock and the
//! swaplist's lock ([`SHMEM_SWAPLIST`]) are leaves. A swap-in takes the
//! page lock of the swap cache's page, then the mapping's lock; the swap
//! areas' and the swap cache's locks are taken on their own, never under
//! the mapping's.
//! `MADV_REMOVE` punches its hole with the caller's mmap lock held (Linux
//! drops it and takes `i_rwsem`), so it takes no `i_rwsem`: the page
//! locks keep a racing write or truncation consistent, and a racing
//! `F_SEAL_FUTURE_WRITE` may be added just after the hole's seal check
//! (`F_SEAL_WRITE` cannot: the punching mapping may write, so adding it
//! is `EBUSY`).
//!
//! Differences from Linux: no `size=`/`nr_blocks=` limits, huge pages,
//! `fallocate(2)` or user/group quotas; holes are punched only by
//! `MADV_REMOVE`. The swap count lives in the page cache's index
//! (`AddressSpace::swapped`) rather than in `shmem_inode_info`, under
//! the same lock as `nrpages`. [`SHMEM_SWAPLIST`] lists every shmem
//! file from its creation (Linux lists an inode at its first swap-out
//! and prunes it when `swapped` falls to zero), so listing it allocates
//! nothing in reclaim; swapoff skips the files with nothing in swap. No
//! swap readahead for shmem (Linux's `shmem_swapin_cluster`): a swap-in
//! reads the one page. `SHM_LOCK` does not exist, so only `mlock`ed
//! mappings keep a shmem page out of swap.

#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use mm::addr::PAGE_SIZE;
use mm::filemap::{folio_lock, folio_unlock};
use mm::gfp::GFP_HIGHUSER_MOVABLE;
use mm::memfd::{SealState, Seals};
use mm::page_flags::PageFlags;
use mm::shmem::{ShmemSwapin, ShmemZeroSetup};
use mm::swap_state::SwapinError;
use mm::swapops::SwpEntry;
use mm::vma::VmaFile;
use spin::Once;
use uapi::errno::Errno;

use crate::filemap::{FolioRef, MappedFile, MappedPage, Mapping};
use crate::fs::inode::{FileOperations, Ino, Inode, SuperBlock};
use crate::fs::namespace::{self, Mount, Path};
use crate::fs::ramfs::{self, RamInode};
use crate::mmap::FOLIO_WAIT;
use crate::sync::SpinLock;

/// Bytes per page.
const PAGE: usize = PAGE_SIZE as usize;

/// A shmem file's own state (Linux `struct shmem_inode_info`): its page
/// cache, which is the file's data, and its seals.
#[doc(alias = "shmem_inode_info")]
pub struct ShmemInode {
    mapping: Arc<Mapping>,
    seals: SpinLock<SealState>,
    /// The name of a file the kernel made in no directory (`memfd:NAME`,
    /// `dev/zero`), which `/proc/PID/maps` shows as `/NAME (deleted)`
    /// (Linux: its dentry on `shm_mnt`).
    name: Option<String>,
}

impl ShmemInode {
    /// An empty file, inode `ino` of device `dev`, with `seals`
    /// ([`Seals::SEAL`] unless it is a memfd that allows sealing), named
    /// `name` if the kernel makes it in no directory.
    pub fn new(dev: u64, ino: Ino, seals: Seals, name: Option<String>) -> Result<Arc<ShmemInode>, Errno> {
        let mapping = Mapping::new(dev, ino, true, 0)?;
        Ok(Arc::new(ShmemInode { mapping, seals: SpinLock::new(SealState::new(seals)), name }))
    }

    /// The page cache, which is the file.
    pub fn mapping(&self) -> &Arc<Mapping> {
        &self.mapping
    }

    /// The file's size (Linux `i_size_read`).
    pub fn size(&self) -> u64 {
        self.mapping.i_size()
    }

    /// The name of a kernel-made file, if it is one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The seals (`F_GET_SEALS`).
    pub fn seals(&self) -> Seals {
        self.seals.lock().seals()
    }

    /// `F_ADD_SEALS` of `arg` on `inode`, this file's VFS inode, under its
    /// `i_rwsem` (Linux `memfd_add_seals`, after the caller's
    /// `FMODE_WRITE` check): `EINVAL`, `EPERM` or `EBUSY` as
    /// [`SealState::add_seals`] says.
    pub fn add_seals(&self, inode: &Inode, arg: u32) -> Result<(), Errno> {
        let _guard = inode.i_rwsem.lock();
        Ok(self.seals.lock().add_seals(arg)?)
    }

    /// Whether a write of `len` bytes at `pos` may go ahead (Linux
    /// `shmem_write_begin`'s seal checks): `EPERM` if sealed against it.
    pub fn check_write(&self, pos: u64, len: u64) -> Result<(), Errno> {
        Ok(self.seals.lock().check_write(pos, len, self.size())?)
    }

    /// Sets the size to `size` if the seals allow (Linux
    /// `shmem_setattr`); the caller holds `i_rwsem` and truncates the
    /// pages past a smaller size next.
    pub fn set_size(&self, size: u64) -> Result<(), Errno> {
        self.seals.lock().check_resize(self.size(), size)?;
        self.mapping.set_i_size(size);
        Ok(())
    }

    /// The seal checks of a new mapping (see [`SealState::mmap`]): whether
    /// the mapping may write if shared, and the count a shared mapping
    /// that may write holds for its life.
    pub fn mmap_prepare(
        self: &Arc<Self>,
        shared: bool,
        prot_write: bool,
        writable: bool,
    ) -> Result<(bool, Option<WritableMapping>), Errno> {
        let grant = self.seals.lock().mmap(shared, prot_write, writable)?;
        Ok((grant.may_write, grant.counted.then(|| WritableMapping(self.clone()))))
    }

    /// Frees the pages of bytes `[start, end)` and zeroes the partial
    /// pages' parts in it, keeping the size (Linux `shmem_fallocate` with
    /// `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`, for `MADV_REMOVE`):
    /// `EPERM` if write-sealed. The pages are unmapped from the other
    /// address spaces that map them (through the reverse map; the
    /// caller's own ptes are gone already) and freed. The caller holds its
    /// mmap lock, so another one is only tried: a page an address space
    /// whose lock was taken still maps is zeroed in place rather than
    /// freed ([`MappedPage::ZeroInPlace`]): all see zeros, as after
    /// Linux's unmap and refault. Not under `i_rwsem` (see the module
    /// doc).
    pub fn punch_hole(&self, start: u64, end: u64) -> Result<(), Errno> {
        self.seals.lock().check_punch_hole()?;
        if start >= end {
            return Ok(());
        }
        // Whole pages only: a partial one keeps its page, zeroed in part.
        let (first, end_page) = (start.div_ceil(PAGE_SIZE), end / PAGE_SIZE);
        if first < end_page {
            let id = self.mapping.id().as_u64();
            crate::mmap::unmap_mapping_range_trylock(id, self.mapping.i_mmap(), first, end_page - 1);
        }
        crate::filemap::truncate_inode_pages_range(&self.mapping, start, end - 1, MappedPage::ZeroInPlace)
    }
}

/// A shared mapping that may write a shmem file, counted against
/// `F_SEAL_WRITE` until dropped (Linux's `i_mmap_writable`, taken by
/// `mapping_map_writable` and given back by `mapping_unmap_writable`).
pub struct WritableMapping(Arc<ShmemInode>);

impl Drop for WritableMapping {
    fn drop(&mut self) {
        self.0.seals.lock().unmap_writable();
    }
}

/// Reads file data at `pos` of a shmem file (Linux
/// `shmem_file_read_iter`): cached pages are copied, holes read as zeros
/// and stay holes; short at the end of the file.
pub fn shmem_file_read(mapping: &Mapping, pos: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let size = mapping.i_size();
    if pos >= size || buf.is_empty() {
        return Ok(0);
    }
    let end = size.min(pos.saturating_add(buf.len() as u64));
    let mut done = 0usize;
    while pos + (done as u64) < end {
        let at = pos + done as u64;
        let offset = (at % PAGE_SIZE) as usize;
        let n = (PAGE - offset).min((end - at) as usize);
        let dst = buf.get_mut(done..done + n).ok_or(Errno::EFAULT)?;
        let page = match uptodate_page(mapping, at / PAGE_SIZE) {
            Ok(page) => page,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        match page {
            Some(folio) => folio.read(offset, dst)?,
            None => dst.fill(0),
        }
        done += n;
    }
    Ok(done)
}

/// The cached page at `index` with its data, if there is one (Linux
/// `shmem_get_folio` with `SGP_READ`): a page in swap is swapped in; a
/// page a writer is still filling is waited for; one that never got its
/// data (the write failed and took it out) is a hole.
fn uptodate_page(mapping: &Mapping, index: u64) -> Result<Option<FolioRef>, Errno> {
    let Some((folio, _)) = shmem_get_folio(mapping, index)? else { return Ok(None) };
    if folio.page().test(PageFlags::UPTODATE) {
        return Ok(Some(folio));
    }
    folio_lock(folio.page(), folio.pfn(), &FOLIO_WAIT);
    let uptodate = folio.page().test(PageFlags::UPTODATE);
    folio_unlock(folio.page(), folio.pfn(), &FOLIO_WAIT);
    Ok(uptodate.then_some(folio))
}

/// The page at `index` of the shmem file `mapping`, with a reference,
/// and whether it had to come back from swap for this call; `None` for a
/// hole (Linux `shmem_get_folio` with `SGP_READ`, its swap half
/// `shmem_swapin_folio`). A swap entry at `index` is swapped in
/// ([`mm::shmem::shmem_swapin_folio`]); a lookup that meets another
/// task's swap-in of the same page lets it run and looks again. Sleeps.
///
/// Errors: EIO if the slot could not be read (the entry and the data in
/// the slot stay), ENOMEM without memory for the page.
pub fn shmem_get_folio(mapping: &Mapping, index: u64) -> Result<Option<(FolioRef, bool)>, Errno> {
    loop {
        let entry = match mapping.get_entry(index) {
            None => return Ok(None),
            Some(Ok(folio)) => return Ok(Some((folio, false))),
            Some(Err(entry)) => entry,
        };
        if let Some(folio) = shmem_swapin_folio(mapping, index, entry)? {
            return Ok(Some((folio, true)));
        }
        crate::sched::yield_now();
    }
}

/// One try at bringing the page in swap at `entry` back to `index` (see
/// [`mm::shmem::shmem_swapin_folio`]); `None` to look again.
fn shmem_swapin_folio(mapping: &Mapping, index: u64, entry: SwpEntry) -> Result<Option<FolioRef>, Errno> {
    let pgdat = crate::mm::pgdat();
    // A swap entry was made by a registered backend.
    let backend = pgdat.swap_backend().ok_or(Errno::EIO)?;
    let came = mm::shmem::shmem_swapin_folio(pgdat, backend, &FOLIO_WAIT, entry, GFP_HIGHUSER_MOVABLE, |pfn| {
        mapping.shmem_add_to_page_cache(pfn, index, entry)
    });
    match came {
        Ok(ShmemSwapin::Done(pfn)) => FolioRef::from_new(pfn).map(Some).ok_or(Errno::EIO),
        Ok(ShmemSwapin::Retry) => Ok(None),
        Err(SwapinError::Io) => {
            log::warn!("shmem: swap-in of page {index} from {entry:?} failed");
            Err(Errno::EIO)
        }
        Err(SwapinError::NoMemory) => Err(Errno::ENOMEM),
        Err(SwapinError::Raced | SwapinError::Unused) => Ok(None),
    }
}

/// Brings the pages in swap at `first..=last` of the shmem file
/// `mapping` back into memory, without waiting for a fault (Linux
/// `shmem_swapin_range`, `MADV_WILLNEED`'s advice for shmem); stops at
/// the first that cannot come back.
pub fn shmem_swapin_range(mapping: &Mapping, first: u64, last: u64) {
    let mut from = first;
    while let Some((index, _)) = mapping.find_swap(from, last, None) {
        if shmem_get_folio(mapping, index).is_err() {
            return;
        }
        let Some(next) = index.checked_add(1) else { return };
        from = next;
        crate::sched::cond_resched();
    }
}

/// Takes the swap entries at `first..=last` out of the shmem file
/// `mapping`'s index and frees their slots (Linux `shmem_undo_range`'s
/// `shmem_free_swap`, see [`mm::shmem::shmem_free_swap`]). The index's
/// lock is let go before each slot is freed.
pub fn shmem_free_swap_range(mapping: &Mapping, first: u64, last: u64) {
    let pgdat = crate::mm::pgdat();
    let Some(backend) = pgdat.swap_backend() else { return };
    let mut from = first;
    while let Some((index, entry)) = mapping.shmem_take_swap(from, last) {
        mm::shmem::shmem_free_swap(pgdat, backend, entry);
        let Some(next) = index.checked_add(1) else { return };
        from = next;
    }
}

/// Every live shmem file's page cache (Linux `shmem_swaplist`; see the
/// module doc for how it differs): what swapoff walks for swap entries
/// ([`shmem_unuse`]). A [`Mapping`] is listed when it is made
/// ([`shmem_swaplist_add`]) and unlisted by its drop
/// ([`shmem_swaplist_del`]); walkers hold it through the `Weak`, which
/// fails once its drop began. A leaf spin lock; growing the list
/// allocates outside it.
static SHMEM_SWAPLIST: SpinLock<Vec<Weak<Mapping>>> = SpinLock::new(Vec::new());

/// Lists `mapping`, a new shmem file's cache. ENOMEM if the list cannot
/// grow: a file swapoff could not find must not exist.
pub(crate) fn shmem_swaplist_add(mapping: &Arc<Mapping>) -> Result<(), Errno> {
    let weak = Arc::downgrade(mapping);
    loop {
        let need = {
            let mut list = SHMEM_SWAPLIST.lock();
            if list.len() < list.capacity() {
                list.push(weak);
                return Ok(());
            }
            list.capacity() * 2 + 16
        };
        let mut bigger = Vec::new();
        bigger.try_reserve_exact(need).map_err(|_| Errno::ENOMEM)?;
        let old = {
            let mut list = SHMEM_SWAPLIST.lock();
            if list.capacity() >= need {
                continue;
            }
            bigger.extend(list.drain(..));
            core::mem::replace(&mut *list, bigger)
        };
        drop(old);
    }
}

/// Unlists `mapping`, from its drop.
pub(crate) fn shmem_swaplist_del(mapping: &Mapping) {
    SHMEM_SWAPLIST.lock().retain(|weak| !core::ptr::eq(weak.as_ptr(), mapping));
}

/// The listed shmem files, as `Weak`s to upgrade one at a time outside
/// the list's lock.
fn shmem_swaplist() -> Result<Vec<Weak<Mapping>>, Errno> {
    loop {
        let len = SHMEM_SWAPLIST.lock().len();
        let mut copy = Vec::new();
        copy.try_reserve_exact(len + 16).map_err(|_| Errno::ENOMEM)?;
        let list = SHMEM_SWAPLIST.lock();
        if list.len() <= copy.capacity() {
            copy.extend(list.iter().cloned());
            return Ok(copy);
        }
    }
}

/// The pages of every shmem file that are in swap: the sum of their
/// indexes' `swapped` counts (Linux keeps no such total; its
/// `/proc/PID/smaps` sums `swapped` per mapping as `Swap`). For the swap
/// reports of tests and benchmarks: every slot in use is held by a
/// process's swap pte, a shmem file's entry or the swap cache.
pub fn shmem_swapped() -> u64 {
    let Ok(list) = shmem_swaplist() else { return 0 };
    list.iter().filter_map(Weak::upgrade).map(|mapping| mapping.swapped()).sum()
}

/// Brings every shmem page in swap area `ty` back into its file (Linux
/// `shmem_unuse`, swapoff's first step of `try_to_unuse`): each listed
/// file with pages in swap has its entries of the area swapped in, in
/// index order. Returns how many came back; stops at the first that
/// cannot (EIO, ENOMEM). Sleeps.
pub fn shmem_unuse(ty: u32) -> Result<u64, Errno> {
    let mut done = 0;
    for weak in shmem_swaplist()? {
        let Some(mapping) = weak.upgrade() else { continue };
        let mut from = 0;
        while let Some((index, _)) = mapping.find_swap(from, u64::MAX, Some(ty)) {
            if shmem_get_folio(&mapping, index)?.is_some() {
                done += 1;
            }
            let Some(next) = index.checked_add(1) else { break };
            from = next;
            crate::sched::cond_resched();
        }
    }
    Ok(done)
}

/// The internal tmpfs instance of the kernel's own files (Linux
/// `shm_mnt`): its root, under which nothing is ever linked, and a mount
/// attached nowhere.
struct ShmMnt {
    root: Arc<RamInode>,
    mnt: Arc<Mount>,
}

static SHM_MNT: Once<Option<ShmMnt>> = Once::new();

fn shm_mnt() -> Result<&'static ShmMnt, Errno> {
    SHM_MNT
        .call_once(|| {
            let dev = namespace::get_anon_dev();
            let fs = ramfs::new_instance("tmpfs", uapi::fs::TMPFS_MAGIC, 0o1777, ramfs::Storage::Shmem { dev });
            let root = fs.root_inode();
            let sb = SuperBlock::new(dev, fs);
            namespace::kern_mount(sb, "tmpfs")
                .map(|mnt| ShmMnt { root, mnt })
                .map_err(|e| log::error!("shmem: no internal mount: {e}"))
                .ok()
        })
        .as_ref()
        .ok_or(Errno::ENOMEM)
}

/// A new shmem file of `size` bytes in no directory, named `name` (Linux
/// `shmem_file_setup` on `shm_mnt`), with `seals`: a memfd, or the file
/// of a shared anonymous mapping. It lives while something holds it.
/// EINVAL above `MAX_LFS_FILESIZE` (Linux `__shmem_file_setup`: a System
/// V segment's size is the caller's, and `kernel.shmmax` allows more).
pub fn shmem_file_setup(name: String, size: u64, seals: Seals) -> Result<Path, Errno> {
    if size > i64::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    let shm = shm_mnt()?;
    let fs_inode = shm.root.new_unlinked_file(0o777, crate::fs::namei::current_owner(), seals, name)?;
    if let Some(shmem) = fs_inode.shmem() {
        shmem.mapping.set_i_size(size);
    }
    let inode = shm.mnt.sb.iget(fs_inode);
    Ok(Path { mnt: shm.mnt.clone(), inode })
}

/// The name `/proc/PID/maps` shows for a mapping of `inode`, if it is a
/// file the kernel made in no directory (Linux's `d_path` of an unlinked
/// dentry: `/NAME (deleted)`).
pub fn unlinked_name(inode: &Inode) -> Option<String> {
    let shmem = inode.ops.shmem()?;
    shmem.name().map(|n| format!("/{n} (deleted)"))
}

/// The file behind shared anonymous memory (Linux `shmem_zero_setup`),
/// as every address space asks for it.
pub struct ShmemZero;

/// What [`crate::mmap::mm_alloc`] gives every address space.
pub static SHMEM_ZERO: ShmemZero = ShmemZero;

impl ShmemZeroSetup for ShmemZero {
    fn shmem_zero_setup(&self, size: u64) -> Result<&'static dyn VmaFile, Errno> {
        // Linux names it `dev/zero`; it can take no seals.
        let path = shmem_file_setup(String::from("dev/zero"), size, Seals::SEAL)?;
        let name = unlinked_name(&path.inode).unwrap_or_default();
        Ok(MappedFile::into_vma_file(MappedFile::new(path.inode, name, None)))
    }
}
