//! vmalloc, vfree, vmap, vunmap, ioremap and iounmap: areas of the vmalloc
//! window backed by page-table mappings (the mapping half of Linux
//! `mm/vmalloc.c`: `__vmalloc_node_range`, `vfree`, `vmap`, `vunmap`,
//! `ioremap_prot`/`iounmap` from `mm/ioremap.c`).
//!
//! A [`Vmalloc`] joins the area allocator ([`VmapAreas`]) to a page-table
//! tree and a TLB. Each call reserves an area (a guard page follows it),
//! then maps into it outside the area lock:
//! - [`Vmalloc::vmalloc`] allocates order-0 pages from the buddy allocator
//!   in batches of [`BATCH`] and maps them with 4 KiB pages; failure undoes
//!   everything, logs Linux's "vmalloc error" line and returns an error;
//! - [`Vmalloc::vmap`] maps the caller's pages (not owned);
//! - [`Vmalloc::ioremap_prot`] maps a physical range (MMIO, firmware
//!   tables) with the caller's caching attributes.
//!
//! Undoing a mapping clears its entries at once but, as Linux's lazy
//! vunmap, does not flush the TLB: the area waits in the lazy tree, its
//! range unusable, until [`VmapAreas::lazy_max_pages`] pages have gathered
//! (or the window is full); then one flush of the union range covers them
//! all. vfree frees the pages right away, as Linux does: a stale TLB entry
//! can only be used by a use-after-free, which is a bug either way.
//!
//! Lock order: `vmap_area_lock -> slab cache locks (vmap_area nodes)`;
//! page allocation and page-table updates happen outside it. The TLB flush
//! of a purge runs under it (see [`VmapAreas`]).

use core::panic::Location;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use log::warn;
use spin::Mutex;

use super::{VmFlags, VmallocError, Vmallocinfo, VmapArea, VmapAreas, VmapFault, VmapNodeAlloc};
use crate::addr::{PAGE_SIZE, Pfn, PhysAddr, VirtAddr, align_up};
use crate::arch::TlbFlush;
use crate::gfp::{GFP_KERNEL, Gfp};
use crate::pagewalk::{PageWalkOps, walk_page_range};
use crate::pgtable::{FreeTables, Leaf, PAGE_KERNEL, PageSize, PageTable, PgProt, PteFormat, TlbGather};

/// Pages allocated and mapped per step of [`Vmalloc::vmalloc`] (Linux
/// allocates in bulk too, `vm_area_alloc_pages`).
pub const BATCH: usize = 64;

/// The vmalloc allocator of one page-table tree.
pub struct Vmalloc<'a, F: PteFormat, A: VmapNodeAlloc> {
    areas: Mutex<VmapAreas<A>>,
    pt: &'a PageTable<'a, F>,
    tlb: &'a dyn TlbFlush,
    /// Pages held by live vmalloc areas (Linux `nr_vmalloc_pages`).
    nr_vmalloc_pages: AtomicU64,
}

/// Frees every frame a walked range maps (vfree's page release).
struct FreeFrames<'p, 'm> {
    pgdat: &'p crate::page_alloc::PgData<'m>,
}

impl PageWalkOps for FreeFrames<'_, '_> {
    fn leaf(&mut self, start: u64, end: u64, leaf: Leaf) -> core::ops::ControlFlow<()> {
        for i in 0..(end - start) / PAGE_SIZE {
            let pfn = Pfn::new(leaf.phys.pfn().as_u64() + i);
            // A page that fails the free checks is reported by the buddy
            // allocator and leaked; nothing better can be done here.
            let _ = self.pgdat.free_pages(pfn, 0);
        }
        core::ops::ControlFlow::Continue(())
    }
}

impl<'a, F: PteFormat, A: VmapNodeAlloc> Vmalloc<'a, F, A> {
    /// A vmalloc allocator over `[start, end)` of `pt` (Linux
    /// `vmalloc_init`). `nr_cpus` scales the lazy-purge threshold.
    pub fn new(
        pt: &'a PageTable<'a, F>,
        tlb: &'a dyn TlbFlush,
        start: VirtAddr,
        end: VirtAddr,
        nr_cpus: u32,
        node_alloc: A,
    ) -> Result<Self, VmallocError> {
        Ok(Vmalloc {
            areas: Mutex::new(VmapAreas::new(start, end, nr_cpus, node_alloc)?),
            pt,
            tlb,
            nr_vmalloc_pages: AtomicU64::new(0),
        })
    }

    fn flush(&self, start: VirtAddr, end: VirtAddr) {
        self.tlb.flush_tlb_kernel_range(start, end.as_u64() - start.as_u64());
    }

    fn reserve(
        &self,
        size: u64,
        align: u64,
        flags: VmFlags,
        caller: &'static Location<'static>,
    ) -> Result<VmapArea, VmallocError> {
        let mut areas = self.areas.lock();
        let range = areas.start()..areas.end();
        areas.alloc(size, align, range, flags, caller, |s, e| self.flush(s, e))
    }

    /// Clears the first `mapped` bytes of the area at `start`, frees their
    /// frames if `free_frames`, and puts the area on the lazy list, purging
    /// when enough has gathered (Linux `remove_vm_area` +
    /// `free_vmap_area_noflush`).
    fn release(&self, start: VirtAddr, mapped: u64, free_frames: bool) {
        if free_frames {
            let mut freer = FreeFrames { pgdat: self.pt.pgdat() };
            let _ = walk_page_range(self.pt, start, start.as_u64() + mapped, &mut freer);
        }
        let mut gather = TlbGather::new();
        // The area's range holds only whole leaves this module mapped, so
        // no split (and so no allocation) can happen: unmap cannot fail.
        if mapped > 0 {
            let _ = self.pt.unmap(start, mapped, FreeTables::No, &mut gather);
        }
        if gather.defer_flush().is_err() {
            gather.finish(self.tlb, self.pt.pgdat());
        }
        let mut areas = self.areas.lock();
        // The area is known busy: it was found or made under this lock's
        // protection and only its owner releases it.
        let _ = areas.free_lazy(start);
        if areas.needs_purge() {
            areas.purge(|s, e| self.flush(s, e));
        }
    }

    /// The busy area starting at `addr` if it was made with `kind`.
    fn area_at(&self, addr: VirtAddr, kind: VmFlags) -> Result<VmapArea, VmallocError> {
        let area = self.areas.lock().find(addr).filter(|a| a.start == addr).ok_or(VmallocError::NotFound(addr))?;
        if area.flags.contains(kind) { Ok(area) } else { Err(VmallocError::WrongKind(addr)) }
    }

    /// Allocates `size` bytes of virtually contiguous memory (Linux
    /// `vmalloc`): page aligned, followed by a guard page.
    #[track_caller]
    pub fn vmalloc(&self, size: u64) -> Result<VirtAddr, VmallocError> {
        self.vmalloc_node_range(size, PAGE_SIZE, Gfp::empty(), Location::caller())
    }

    /// [`Vmalloc::vmalloc`], zeroed (Linux `vzalloc`).
    #[track_caller]
    pub fn vzalloc(&self, size: u64) -> Result<VirtAddr, VmallocError> {
        self.vmalloc_node_range(size, PAGE_SIZE, Gfp::ZERO, Location::caller())
    }

    /// The general form (Linux `__vmalloc_node_range`): alignment `align`,
    /// extra page-allocation flags `gfp` (`__GFP_ZERO`, `__GFP_NOWARN`), and
    /// the caller to record.
    pub fn vmalloc_node_range(
        &self,
        size: u64,
        align: u64,
        gfp: Gfp,
        caller: &'static Location<'static>,
    ) -> Result<VirtAddr, VmallocError> {
        let area = match self.reserve(size, align, VmFlags::ALLOC, caller) {
            Ok(area) => area,
            Err(e) => {
                if !gfp.contains(Gfp::NOWARN) {
                    warn!("{e} (vmalloc of {size} bytes at {caller})");
                }
                return Err(e);
            }
        };
        let nr_pages = area.get_vm_area_size() / PAGE_SIZE;
        let page_gfp = GFP_KERNEL | Gfp::NOWARN | (gfp & Gfp::ZERO);
        let mut batch = [Pfn::new(0); BATCH];
        let mut gather = TlbGather::new();
        let mut mapped = 0;
        let result = loop {
            if mapped == nr_pages {
                break Ok(());
            }
            let n = (nr_pages - mapped).min(BATCH as u64) as usize;
            let mut got = 0;
            while got < n {
                let Some(pfn) = self.pt.pgdat().alloc_pages(page_gfp, 0) else { break };
                batch[got] = pfn;
                got += 1;
            }
            let failure = if got < n {
                Some(VmallocError::NoPages { size })
            } else {
                let virt = VirtAddr::expect_canonical(area.start.as_u64() + mapped * PAGE_SIZE);
                self.pt.map_pages(virt, &batch[..n], PAGE_KERNEL, &mut gather).err().map(VmallocError::Map)
            };
            if let Some(e) = failure {
                for &pfn in &batch[..got] {
                    let _ = self.pt.pgdat().free_pages(pfn, 0);
                }
                break Err(e);
            }
            mapped += n as u64;
        };
        gather.finish(self.tlb, self.pt.pgdat());
        match result {
            Ok(()) => {
                let _ = self.areas.lock().set_nr_pages(area.start, nr_pages);
                self.nr_vmalloc_pages.fetch_add(nr_pages, Relaxed);
                Ok(area.start)
            }
            Err(e) => {
                if !gfp.contains(Gfp::NOWARN) {
                    warn!("{e} (vmalloc of {size} bytes at {caller})");
                }
                self.release(area.start, mapped * PAGE_SIZE, true);
                Err(e)
            }
        }
    }

    /// Frees memory from [`Vmalloc::vmalloc`] (Linux `vfree`).
    pub fn vfree(&self, addr: VirtAddr) -> Result<(), VmallocError> {
        let area = self.area_at(addr, VmFlags::ALLOC)?;
        self.release(area.start, area.get_vm_area_size(), true);
        self.nr_vmalloc_pages.fetch_sub(area.nr_pages, Relaxed);
        Ok(())
    }

    /// Maps `pages` contiguously with `prot` (Linux `vmap`); the pages stay
    /// the caller's.
    #[track_caller]
    pub fn vmap(&self, pages: &[Pfn], prot: PgProt) -> Result<VirtAddr, VmallocError> {
        let size = pages.len() as u64 * PAGE_SIZE;
        let area = self.reserve(size, PAGE_SIZE, VmFlags::MAP, Location::caller())?;
        let mut gather = TlbGather::new();
        let result = self.pt.map_pages(area.start, pages, prot, &mut gather);
        gather.finish(self.tlb, self.pt.pgdat());
        match result {
            Ok(()) => Ok(area.start),
            Err(e) => {
                // map undid its partial work; only the area is left.
                self.release(area.start, 0, false);
                Err(VmallocError::Map(e))
            }
        }
    }

    /// Undoes [`Vmalloc::vmap`] (Linux `vunmap`).
    pub fn vunmap(&self, addr: VirtAddr) -> Result<(), VmallocError> {
        let area = self.area_at(addr, VmFlags::MAP)?;
        self.release(area.start, area.get_vm_area_size(), false);
        Ok(())
    }

    /// Maps `size` bytes of physical address space at `phys` with `prot`
    /// (Linux `ioremap_prot`); the result keeps `phys`'s offset in its page.
    #[track_caller]
    pub fn ioremap_prot(&self, phys: PhysAddr, size: u64, prot: PgProt) -> Result<VirtAddr, VmallocError> {
        let offset = phys.page_offset();
        let len = offset
            .checked_add(size)
            .filter(|_| size != 0)
            .and_then(|l| align_up(l, PAGE_SIZE))
            .ok_or(VmallocError::BadSize)?;
        let area = self.reserve(len, PAGE_SIZE, VmFlags::IOREMAP, Location::caller())?;
        let base = phys.align_down(PAGE_SIZE);
        let mut gather = TlbGather::new();
        let result = self.pt.map(area.start, base, len, prot, PageSize::Size4K, &mut gather);
        gather.finish(self.tlb, self.pt.pgdat());
        match result {
            Ok(()) => {
                let _ = self.areas.lock().set_phys_addr(area.start, base);
                Ok(VirtAddr::expect_canonical(area.start.as_u64() + offset))
            }
            Err(e) => {
                // map undid its partial work; only the area is left.
                self.release(area.start, 0, false);
                Err(VmallocError::Map(e))
            }
        }
    }

    /// Undoes [`Vmalloc::ioremap_prot`]; `addr` may keep its page offset
    /// (Linux `iounmap`).
    pub fn iounmap(&self, addr: VirtAddr) -> Result<(), VmallocError> {
        let area = self.area_at(addr.align_down(PAGE_SIZE), VmFlags::IOREMAP)?;
        self.release(area.start, area.get_vm_area_size(), false);
        Ok(())
    }

    /// Pages vmalloc holds in live areas, vmap and ioremap excluded (Linux
    /// `vmalloc_nr_pages`, /proc/meminfo's `VmallocUsed`).
    pub fn vmalloc_nr_pages(&self) -> u64 {
        self.nr_vmalloc_pages.load(Relaxed)
    }

    /// Purges the lazily freed areas now (Linux `vm_unmap_aliases`);
    /// returns whether there were any.
    pub fn purge_vmap_area_lazy(&self) -> bool {
        self.areas.lock().purge(|s, e| self.flush(s, e))
    }

    /// Where `addr` lies, for the page-fault handler; `None` when the area
    /// lock is held (the fault may have happened under it).
    pub fn fault_info(&self, addr: VirtAddr) -> Option<VmapFault> {
        self.areas.try_lock().map(|areas| areas.fault_info(addr))
    }

    /// The busy area containing `addr`.
    pub fn find_vm_area(&self, addr: VirtAddr) -> Option<VmapArea> {
        self.areas.lock().find(addr)
    }

    /// Runs `f` on the areas, locked (reports, statistics, checks).
    pub fn with_areas<R>(&self, f: impl FnOnce(&VmapAreas<A>) -> R) -> R {
        f(&self.areas.lock())
    }

    /// Writes /proc/vmallocinfo.
    pub fn vmallocinfo(&self, out: &mut impl core::fmt::Write) -> core::fmt::Result {
        let areas = self.areas.lock();
        write!(out, "{}", Vmallocinfo(&areas))
    }
}

#[cfg(test)]
mod tests;
