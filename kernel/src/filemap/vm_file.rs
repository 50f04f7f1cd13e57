//! A cached file as the mm maps it (Linux `generic_file_vm_ops`:
//! `filemap_fault`, `filemap_map_pages`, `filemap_page_mkwrite`, and the
//! `vm_file` reference a VMA holds).
//!
//! `mmap(2)` of a regular file with a page cache makes one [`MappedFile`]
//! (Linux's `struct file` the VMA points at) and hands the mm a
//! `&'static dyn VmaFile` to it. The object lives in an `Arc` whose count
//! the mm's `get_file`/`put_file` move, as the contract of
//! [`mm::vma::VmaFile`] asks: the `'static` is the mm's promise to use
//! the reference only while a VMA (or the mmap caller) holds a count.
//!
//! - `fault`: the cached page, read with readahead around the fault
//!   (`do_sync_mmap_readahead`, or the next window at a `PG_readahead`
//!   page) as the VMA's `MADV_SEQUENTIAL`/`MADV_RANDOM` advice says,
//!   SIGBUS past the end of the file or on a read error.
//! - `map_pages`: fault-around maps the uptodate, unlocked pages already
//!   cached, without I/O.
//! - `page_mkwrite`: before a shared mapping writes a page, its blocks
//!   are allocated (ENOSPC is SIGBUS, as Linux's `block_page_mkwrite`
//!   gives), writeback of it is waited for, and it is marked dirty.
//! - `set_page_dirty`: a dirty pte found at unmap or msync dirties the
//!   page, which the flusher then writes.
//! - `willneed`: `MADV_WILLNEED` reads the range ahead, as
//!   `POSIX_FADV_WILLNEED` does; `mincore_page`: whether mincore sees an
//!   unmapped page as resident (cached and uptodate).
//!
//! A shmem file (tmpfs, memfd, shared anonymous memory) is mapped the same
//! way, as Linux's `shmem_vm_ops` do, less what has no meaning without a
//! disk: a fault has no readahead, swaps a page in swap back in (a major
//! fault) and allocates a zero page for a hole (Linux `shmem_fault`),
//! `page_mkwrite` has no blocks to allocate and only marks the page as
//! holding data, `punch_hole` frees pages and swap entries
//! (`MADV_REMOVE`, Linux `shmem_fallocate`), `willneed` swaps the
//! range's pages in (Linux `shmem_swapin_range`), and `mincore` calls a
//! page in swap resident while the swap cache still has it. A shared mapping that may
//! write a shmem file holds a [`WritableMapping`] for its life, which
//! `F_SEAL_WRITE` waits for.

#![allow(unsafe_code)]

use alloc::string::String;
use alloc::sync::Arc;

use mm::addr::{PAGE_SIZE, Pfn};
use mm::filemap::{folio_lock, folio_unlock};
use mm::interval_tree::IMmap;
use mm::page_alloc::PgData;
use mm::page_flags::PageFlags;
use mm::readahead::{self, FileRaState, RaMapping, VmaRaAdvice};
use mm::vma::{FaultPage, FileFaultError, VmaFile};
use uapi::errno::Errno;

use super::readahead::{ra_limits, run_readahead};
use super::{FolioRef, Mapping, parts, read_cache_page_major};
use crate::fs::inode::Inode;
use crate::mmap::FOLIO_WAIT;
use crate::shmem::WritableMapping;
use crate::sync::SpinLock;

/// What the maker of a mapping object learns of the VMAs holding it
/// (Linux `vm_operations_struct`'s `open` and `close`, which System V
/// shared memory's `shm_vm_ops` wrap around shmem's to count attaches,
/// [`crate::ipc::shm`]). Both may sleep: the mm calls them where it takes
/// and drops a VMA's file reference, under the mmap lock.
pub trait VmaOpenClose: Send + Sync {
    /// A VMA took the file: a new mapping, the upper part of a split, a
    /// fork's copy (Linux `vm_ops->open`, and the open `shm_mmap` does).
    fn open(&self);
    /// A VMA let go of it: unmapped, merged away, or its address space
    /// torn down at exit or exec (Linux `vm_ops->close`).
    fn close(&self);
}

/// One mapping of a cached file (Linux `struct file` as `vma->vm_file`).
pub struct MappedFile {
    inode: Arc<Inode>,
    /// The path `/proc/PID/maps` shows.
    name: String,
    /// Readahead state of faults (Linux `file->f_ra`).
    ra: SpinLock<FileRaState>,
    /// A shmem file's count of shared mappings that may write, held while
    /// any VMA of this mapping exists.
    _writable: Option<WritableMapping>,
    /// Told of each VMA that takes or drops this object.
    vm_ops: Option<Arc<dyn VmaOpenClose>>,
}

impl MappedFile {
    /// A mapping object for `inode` (which has a page cache) named `name`;
    /// `writable` for a shared mapping that may write a shmem file.
    pub fn new(inode: Arc<Inode>, name: String, writable: Option<WritableMapping>) -> Arc<MappedFile> {
        let ra = SpinLock::new(FileRaState::default());
        Arc::new(MappedFile { inode, name, ra, _writable: writable, vm_ops: None })
    }

    /// A mapping object for `inode` named `name` whose VMAs are reported
    /// to `vm_ops` as they take and drop it.
    pub fn new_with_vm_ops(inode: Arc<Inode>, name: String, vm_ops: Arc<dyn VmaOpenClose>) -> Arc<MappedFile> {
        let ra = SpinLock::new(FileRaState::default());
        Arc::new(MappedFile { inode, name, ra, _writable: None, vm_ops: Some(vm_ops) })
    }

    /// Hands `file` to the mm with its count, for a caller that made it
    /// for the mm alone (`shmem_zero_setup`): the mm drops the count with
    /// [`VmaFile::put_file`] (see the module doc).
    pub fn into_vma_file(file: Arc<MappedFile>) -> &'static dyn VmaFile {
        // SAFETY: the count `into_raw` keeps is the one the mm's
        // `put_file` gives back; until then the object is alive, and the
        // mm uses the reference only while it holds a count (`VmaFile`'s
        // contract).
        unsafe { &*Arc::into_raw(file) }
    }

    /// The reference the mm keeps, valid while a count of `file` is held
    /// (the caller's for the mmap call, then the VMAs', see the module
    /// doc).
    pub fn as_vma_file(file: &Arc<MappedFile>) -> &'static dyn VmaFile {
        // SAFETY: the mm uses this reference only while it or the caller
        // holds a count of the `Arc` (`VmaFile`'s lifetime contract:
        // `get_file` when a VMA takes the file, `put_file` when it goes;
        // the mmap caller keeps `file` for the call), so the object is
        // alive whenever the reference is used.
        unsafe { &*Arc::as_ptr(file) }
    }

    fn mapping(&self) -> Result<&Mapping, FileFaultError> {
        self.inode.i_mapping.as_deref().ok_or(FileFaultError::Io)
    }

    fn nr_pages(&self) -> Result<u64, FileFaultError> {
        Ok(self.mapping()?.i_size().div_ceil(PAGE_SIZE))
    }

    /// The readahead around a fault at `index` as the VMA's `advice`
    /// says (Linux `do_sync_mmap_readahead` for a missing page,
    /// `do_async_mmap_readahead` at a `PG_readahead` one); whether the
    /// page was missing from the cache, which makes the fault major even
    /// though the readahead reads it (Linux `filemap_fault` counts
    /// `PGMAJFAULT` before `do_sync_mmap_readahead`).
    fn fault_readahead(
        &self,
        mapping: &Mapping,
        index: u64,
        nr_pages: u64,
        advice: VmaRaAdvice,
    ) -> Result<bool, FileFaultError> {
        let (_, a_ops) = parts(&self.inode).map_err(fault_error)?;
        let ra_mapping = RaMapping { cache: &mapping.space, nr_pages, bdi: ra_limits() };
        match mapping.find_get(index) {
            Some(folio) => {
                let page = folio.page();
                if page.test(PageFlags::READAHEAD) {
                    let mut ra = *self.ra.lock();
                    let writeback = page.test(PageFlags::WRITEBACK);
                    let decision =
                        readahead::do_async_mmap_readahead(&mut ra, &ra_mapping, advice, index, true, writeback);
                    *self.ra.lock() = ra;
                    if decision.clear_readahead {
                        page.clear(PageFlags::READAHEAD);
                    }
                    run_readahead(mapping, a_ops, decision);
                }
                Ok(false)
            }
            None => {
                let mut ra = *self.ra.lock();
                let decision = readahead::do_sync_mmap_readahead(&mut ra, &ra_mapping, advice, index);
                *self.ra.lock() = ra;
                run_readahead(mapping, a_ops, decision);
                Ok(true)
            }
        }
    }
}

fn fault_error(e: Errno) -> FileFaultError {
    match e {
        Errno::ENOMEM => FileFaultError::NoMemory,
        _ => FileFaultError::Io,
    }
}

impl VmaFile for MappedFile {
    fn name(&self) -> &str {
        &self.name
    }

    fn mapping_id(&self) -> Option<u64> {
        self.inode.i_mapping.as_deref().map(|m| m.id().as_u64())
    }

    fn i_mmap(&self) -> Option<&IMmap> {
        self.inode.i_mapping.as_deref().map(Mapping::i_mmap)
    }

    fn get_file(&self) {
        // SAFETY: `self` lives in an `Arc` (only `MappedFile::new` makes
        // one) and the caller holds a count of it (a VMA's or the mmap
        // caller's), so the count is at least one.
        unsafe { Arc::increment_strong_count(core::ptr::from_ref(self)) };
        if let Some(ops) = &self.vm_ops {
            ops.open();
        }
    }

    fn put_file(&self) {
        if let Some(ops) = &self.vm_ops {
            ops.close();
        }
        // SAFETY: this gives back a count `get_file` took or
        // `into_vma_file` handed over (the contract: one `put_file` per
        // reference the mm holds).
        unsafe { Arc::decrement_strong_count(core::ptr::from_ref(self)) };
    }

    fn fault(&self, _pgdat: &PgData<'_>, index: u64, advice: VmaRaAdvice) -> Result<FaultPage, FileFaultError> {
        let mapping = self.mapping()?;
        let nr_pages = self.nr_pages()?;
        if index >= nr_pages {
            return Err(FileFaultError::Eof);
        }
        // shmem reads nothing ahead: its pages are in memory, in swap or
        // holes.
        let missing = !mapping.is_swapbacked() && self.fault_readahead(mapping, index, nr_pages, advice)?;
        // The page may be under readahead's I/O now: this waits for it,
        // and reads it again if that read failed (Linux `filemap_fault`'s
        // `lock_folio_maybe_drop_mmap` and `page_not_uptodate`).
        let (folio, read) = read_cache_page_major(&self.inode, index).map_err(fault_error)?;
        // Major: the page was read from the file system for this fault,
        // by the readahead or here, or a shmem page from swap (a hole
        // filled with zeros took no I/O).
        let major = missing || read;
        Ok(FaultPage { pfn: folio.into_pfn(), major })
    }

    fn map_pages(&self, _pgdat: &PgData<'_>, start: u64, end: u64, f: &mut dyn FnMut(u64, Pfn)) {
        let Ok(mapping) = self.mapping() else { return };
        let Ok(nr_pages) = self.nr_pages() else { return };
        let mut mapped = 0;
        for index in start..end.min(nr_pages) {
            let Some(folio) = mapping.find_get(index) else { continue };
            let flags = folio.page().flags();
            if !flags.contains(PageFlags::UPTODATE) || flags.intersects(PageFlags::LOCKED | PageFlags::READAHEAD) {
                continue;
            }
            f(index, folio.into_pfn());
            mapped += 1;
        }
        readahead::filemap_map_pages(&mut self.ra.lock(), mapped);
    }

    fn page_mkwrite(&self, _pgdat: &PgData<'_>, index: u64, pfn: Pfn) -> Result<(), FileFaultError> {
        let mapping = self.mapping()?;
        let (_, a_ops) = parts(&self.inode).map_err(fault_error)?;
        let folio = FolioRef::get(pfn).ok_or(FileFaultError::Io)?;
        let page = folio.page();
        folio_lock(page, pfn, &FOLIO_WAIT);
        let result = (|| {
            if !mapping.owns(&folio, index) {
                return Err(FileFaultError::Eof);
            }
            let start = index.saturating_mul(PAGE_SIZE);
            let size = mapping.i_size();
            if start >= size {
                return Err(FileFaultError::Eof);
            }
            // shmem has no blocks to allocate (Linux's `shmem_vm_ops` have
            // no `page_mkwrite`), and its write seals never stop a mapping
            // made before them.
            if !mapping.is_swapbacked() {
                a_ops.write_begin(start, (size - start).min(PAGE_SIZE)).map_err(|_| FileFaultError::Io)?;
            }
            mm::filemap::folio_wait_writeback(page, pfn, &FOLIO_WAIT);
            mapping.mark_dirty(&folio, index);
            Ok(())
        })();
        folio_unlock(page, pfn, &FOLIO_WAIT);
        if result.is_ok() {
            crate::fs::fs_writeback::mark_inode_dirty(&self.inode);
        }
        result
    }

    fn set_page_dirty(&self, _pgdat: &PgData<'_>, index: u64, pfn: Pfn) {
        let Ok(mapping) = self.mapping() else { return };
        let Some(folio) = FolioRef::get(pfn) else { return };
        if mapping.owns(&folio, index) {
            mapping.mark_dirty(&folio, index);
            crate::fs::fs_writeback::mark_inode_dirty(&self.inode);
        }
    }

    fn fsync_range(&self, _start: u64, _end: u64) -> Result<(), Errno> {
        super::write_and_wait(&self.inode)?;
        self.inode.ops.fsync()
    }

    fn willneed(&self, offset: u64, len: u64) {
        let Ok(mapping) = self.mapping() else { return };
        if mapping.is_swapbacked() {
            // shmem has nothing to read ahead, only pages to swap in
            // (Linux `madvise_willneed`'s `shmem_swapin_range`).
            if len > 0 {
                let last = offset.saturating_add(len - 1) / PAGE_SIZE;
                crate::shmem::shmem_swapin_range(mapping, offset / PAGE_SIZE, last);
            }
            return;
        }
        let ra = *self.ra.lock();
        super::force_page_cache_readahead(&self.inode, &ra, offset, len);
    }

    fn mincore_page(&self, index: u64) -> bool {
        let Ok(mapping) = self.mapping() else { return false };
        match mapping.get_entry(index) {
            Some(Ok(folio)) => folio.page().test(PageFlags::UPTODATE),
            // A shmem page in swap is resident while the swap cache has it
            // (Linux `filemap_get_incore_folio`).
            Some(Err(entry)) => {
                crate::mm::pgdat().swap_backend().is_some_and(|swap| swap.swap_cache_lookup(entry).is_some())
            }
            None => false,
        }
    }

    fn punch_hole(&self, _pgdat: &PgData<'_>, start: u64, end: u64) -> Result<(), Errno> {
        match self.inode.ops.shmem() {
            Some(shmem) => shmem.punch_hole(start, end),
            None => Err(Errno::EOPNOTSUPP),
        }
    }
}
