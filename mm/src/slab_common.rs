//! The slab allocator's common layer: cache creation and destruction, the
//! kmalloc size classes, kfree/ksize/krealloc, /proc/slabinfo and the
//! `slub_debug` boot option (Linux `mm/slab_common.c` and the parsing part
//! of `mm/slub.c`).
//!
//! [`Slab`] is the allocator: it owns the `kmem_cache` cache (the cache of
//! cache descriptors, bootstrapped on a page of its own as Linux bootstraps
//! `boot_kmem_cache`), the kmalloc caches and the registry of all caches.
//! Caches made by [`Slab::kmem_cache_create`] are handed out as a
//! [`CacheHandle`]: destroying consumes the handle, so no reference to a
//! destroyed cache can remain.
//!
//! kmalloc serves sizes up to [`KMALLOC_MAX_CACHE_SIZE`] from the caches
//! kmalloc-8 ... kmalloc-8k (power-of-two classes are naturally aligned, as
//! Linux guarantees); larger requests are compound pages straight from the
//! buddy allocator (`kmalloc_large`), which `kfree` recognises by their head
//! page not being a slab.
//!
//! Lock order: `slab_caches registry -> cache locks (see slub)`.

use core::fmt;
use core::panic::Location;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use spin::Mutex;

use crate::addr::{PAGE_SIZE, VirtAddr};
use crate::gfp::Gfp;
use crate::mmzone::MAX_PAGE_ORDER;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::percpu::PercpuAlloc;
use crate::slub::{
    KmemCache, SlabError, SlabFlags, SlabInfo, SlubCtx, alloc_kmem_cache_cpus, check_object_start, free_kmem_cache_cpus,
};
use crate::vmstat::NodeStatItem;

/// Storage for objects of one type: what a `kmem_cache` made for `T` is to
/// its users (Linux's `vm_area_cachep`, `vmap_area_cachep`,
/// `anon_vma_cachep`, `radix_tree_node_cachep`, each allocated from and
/// freed to by type). The intrusive trees take their nodes from one (VMAs:
/// [`crate::vma::VmaAlloc`], vmap areas: [`crate::vmalloc::VmapNodeAlloc`]).
/// The kernel backs it with a slab cache created for `T`; host tests with
/// the heap, where they can also make an allocation fail.
///
/// # Safety
/// [`ObjCache::alloc`] must return memory that is aligned for a `T`, valid
/// for reads and writes of one, and used by nothing else until it is
/// passed to [`ObjCache::free`]; it need not be initialized. Users write
/// through it on that promise.
#[doc(alias = "kmem_cache")]
pub unsafe trait ObjCache<T> {
    /// Memory for one object, or `None` when out of memory (Linux
    /// `kmem_cache_alloc`).
    fn alloc(&self) -> Option<NonNull<T>>;

    /// Takes back an object's memory (Linux `kmem_cache_free`).
    ///
    /// # Safety
    /// `obj` was returned by [`ObjCache::alloc`] of this cache and has not
    /// been freed since; nothing uses it afterwards.
    unsafe fn free(&self, obj: NonNull<T>);
}

// SAFETY: forwards to `C`, which upholds the contract.
unsafe impl<T, C: ObjCache<T> + ?Sized> ObjCache<T> for &C {
    fn alloc(&self) -> Option<NonNull<T>> {
        (**self).alloc()
    }

    unsafe fn free(&self, obj: NonNull<T>) {
        // SAFETY: the caller's promise, passed on.
        unsafe { (**self).free(obj) }
    }
}

/// The kmalloc size classes (Linux `kmalloc_info`, without the 4 MiB ones).
pub const KMALLOC_SIZES: [u32; 13] = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192];
/// Largest size served from a kmalloc cache (Linux
/// `KMALLOC_MAX_CACHE_SIZE`, two pages).
pub const KMALLOC_MAX_CACHE_SIZE: usize = 8192;
/// Largest kmalloc: one MAX_PAGE_ORDER block (Linux `KMALLOC_MAX_SIZE`).
pub const KMALLOC_MAX_SIZE: usize = (PAGE_SIZE as usize) << MAX_PAGE_ORDER;
/// What `kmalloc(0)` returns: a non-null pointer that must not be
/// dereferenced and that `kfree` ignores (Linux `ZERO_SIZE_PTR`).
pub const ZERO_SIZE_PTR: NonNull<u8> = NonNull::without_provenance(core::num::NonZeroUsize::new(16).unwrap());
/// Most caches the registry holds.
pub const MAX_CACHES: usize = 64;

/// The kmalloc class of sizes up to 192 bytes, by `(size - 1) / 8` (Linux
/// `size_index`): the 96- and 192-byte classes break the powers of two.
const SIZE_INDEX: [u8; 24] = [0, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6];

/// The kmalloc class index for `size` (Linux `kmalloc_index` and
/// `kmalloc_slab`): a table up to 192 bytes, the power of two above.
#[inline]
pub fn kmalloc_index(size: usize) -> Option<usize> {
    if size <= 192 {
        return Some(usize::from(SIZE_INDEX[size.saturating_sub(1) / 8]));
    }
    if size > KMALLOC_MAX_CACHE_SIZE {
        return None;
    }
    // 193..=256 is class 7 (256 bytes), each power of two one more.
    Some((usize::BITS - (size - 1).leading_zeros()) as usize - 1)
}

/// Which caches `slub_debug` applies to, and with which flags (Linux
/// `slub_debug=<flags>[,<cache>,...]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SlubDebug<'s> {
    /// The flags to add.
    pub flags: SlabFlags,
    /// Comma-separated cache names, or `None` for every cache.
    pub caches: Option<&'s str>,
}

/// Why a `slub_debug=` value was not understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadSlubDebug(pub char);

impl fmt::Display for BadSlubDebug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slub_debug: unknown flag {:?} (expected F, Z, P, U or -)", self.0)
    }
}

impl<'s> SlubDebug<'s> {
    /// Parses the option's value: `None` (bare `slub_debug`) or an empty
    /// value means `FZPU` for all caches; `-` means off; otherwise flag
    /// letters (F sanity checks, Z red zones, P poison, U user tracking),
    /// optionally followed by `,cache,cache...`.
    pub fn parse(value: Option<&'s str>) -> Result<SlubDebug<'s>, BadSlubDebug> {
        let value = value.unwrap_or("");
        let (letters, caches) = match value.split_once(',') {
            Some((letters, caches)) => (letters, Some(caches)),
            None => (value, None),
        };
        if letters.is_empty() {
            return Ok(SlubDebug { flags: SlabFlags::DEBUG, caches });
        }
        let mut flags = SlabFlags::empty();
        for c in letters.chars() {
            flags |= match c.to_ascii_uppercase() {
                'F' => SlabFlags::CONSISTENCY_CHECKS,
                'Z' => SlabFlags::RED_ZONE,
                'P' => SlabFlags::POISON,
                'U' => SlabFlags::STORE_USER,
                '-' => SlabFlags::empty(),
                _ => return Err(BadSlubDebug(c)),
            };
        }
        Ok(SlubDebug { flags, caches })
    }

    fn flags_for(&self, name: &str) -> SlabFlags {
        match self.caches {
            None => self.flags,
            Some(list) if list.split(',').any(|c| c == name) => self.flags,
            Some(_) => SlabFlags::empty(),
        }
    }
}

/// A cache made by [`Slab::kmem_cache_create`]. Not `Clone`: destroying it
/// consumes it.
pub struct CacheHandle<'a> {
    cache: &'a KmemCache,
}

impl core::ops::Deref for CacheHandle<'_> {
    type Target = KmemCache;

    fn deref(&self) -> &KmemCache {
        self.cache
    }
}

impl fmt::Debug for CacheHandle<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cache.fmt(f)
    }
}

/// The slab allocator (Linux's `slab_caches`, `kmalloc_caches` and the
/// `kmem_cache` bootstrap cache).
pub struct Slab<'a> {
    pgdat: &'a PgData<'a>,
    /// The direct map's address of physical 0 (see [`SlubCtx`]).
    page_offset: u64,
    percpu: &'a dyn PercpuAlloc,
    nr_cpus: u32,
    debug: SlubDebug<'a>,
    panic_on_error: bool,
    errors: AtomicU64,
    kmem_cache: &'a KmemCache,
    kmalloc_caches: [&'a KmemCache; KMALLOC_SIZES.len()],
    caches: Mutex<[Option<&'a KmemCache>; MAX_CACHES]>,
}

impl<'a> Slab<'a> {
    /// Bootstraps the allocator on `pgdat` (Linux `kmem_cache_init`): the
    /// `kmem_cache` cache on a page of its own, then the kmalloc caches.
    /// `debug` applies `slub_debug` to the caches it names, and
    /// `panic_on_error` panics on a detected corruption instead of
    /// reporting it and continuing. Each cache's per-CPU slabs come from
    /// `percpu` (Linux's `alloc_percpu` for `s->cpu_slab`).
    pub fn new(
        pgdat: &'a PgData<'a>,
        nr_cpus: u32,
        percpu: &'a dyn PercpuAlloc,
        debug: SlubDebug<'a>,
        panic_on_error: bool,
    ) -> Result<Slab<'a>, SlabError> {
        let size = core::mem::size_of::<KmemCache>() as u64;
        let order = size.div_ceil(PAGE_SIZE).next_power_of_two().trailing_zeros();
        let flags = debug.flags_for("kmem_cache");
        let cpus = alloc_kmem_cache_cpus(percpu, nr_cpus).ok_or(SlabError::NoMemory)?;
        let align = core::mem::align_of::<KmemCache>() as u32;
        let boot = match KmemCache::new("kmem_cache", size as u32, align, flags, None, nr_cpus, cpus) {
            Ok(boot) => boot,
            Err(e) => {
                // SAFETY: nothing else holds `cpus`.
                unsafe { free_kmem_cache_cpus(percpu, cpus) };
                return Err(e);
            }
        };
        // The bootstrap cache and its per-CPU slabs live as long as the
        // allocator; failing here leaks them, which only happens at boot.
        let pfn = pgdat.alloc_pages(crate::gfp::GFP_KERNEL | Gfp::NOWARN, order).ok_or(SlabError::NoMemory)?;
        let at = pgdat.page_address(pfn).ok_or(SlabError::NoMemory)?.as_mut_ptr::<KmemCache>();
        // SAFETY: `at` is the direct-map address of 2^order fresh pages,
        // page aligned and at least `size` bytes, owned by the allocator
        // for as long as it exists (this page is never freed).
        let kmem_cache: &'a KmemCache = unsafe {
            at.write(boot);
            &*at
        };
        let mut slab = Slab {
            pgdat,
            // The direct map is linear: any page's address minus its
            // physical address.
            page_offset: (at as u64).wrapping_sub(pfn.phys().as_u64()),
            percpu,
            nr_cpus,
            debug,
            panic_on_error,
            errors: AtomicU64::new(0),
            kmem_cache,
            kmalloc_caches: [kmem_cache; KMALLOC_SIZES.len()],
            caches: Mutex::new([None; MAX_CACHES]),
        };
        slab.register(kmem_cache)?;
        for (i, &class) in KMALLOC_SIZES.iter().enumerate() {
            // Power-of-two classes are naturally aligned (Linux 5.4+).
            let align = if class.is_power_of_two() { class.min(PAGE_SIZE as u32) } else { 8 };
            let cache = slab.create(KMALLOC_NAMES[i], class, align, SlabFlags::empty(), None)?;
            slab.kmalloc_caches[i] = cache;
        }
        Ok(slab)
    }

    pub(crate) fn ctx(&self) -> SlubCtx<'_, 'a> {
        SlubCtx {
            pgdat: self.pgdat,
            page_offset: self.page_offset,
            panic_on_error: self.panic_on_error,
            errors: &self.errors,
        }
    }

    /// The page allocator under this one.
    pub fn pgdat(&self) -> &'a PgData<'a> {
        self.pgdat
    }

    /// Corruption reports so far, all caches.
    pub fn errors(&self) -> u64 {
        self.errors.load(Relaxed)
    }

    fn register(&self, cache: &'a KmemCache) -> Result<(), SlabError> {
        let mut caches = self.caches.lock();
        let slot = caches.iter_mut().find(|c| c.is_none()).ok_or(SlabError::TooManyCaches)?;
        *slot = Some(cache);
        Ok(())
    }

    fn create(
        &self,
        name: &'static str,
        size: u32,
        align: u32,
        flags: SlabFlags,
        ctor: Option<fn(&mut [u8])>,
    ) -> Result<&'a KmemCache, SlabError> {
        let flags = flags | self.debug.flags_for(name);
        let cpus = alloc_kmem_cache_cpus(self.percpu, self.nr_cpus).ok_or(SlabError::NoMemory)?;
        let made = KmemCache::new(name, size, align, flags, ctor, self.nr_cpus, cpus).and_then(|cache| {
            let obj = self.ctx().alloc(self.kmem_cache, crate::gfp::GFP_KERNEL, Location::caller());
            obj.map(|obj| (cache, obj)).ok_or(SlabError::NoMemory)
        });
        let (cache, obj) = match made {
            Ok(made) => made,
            Err(e) => {
                // SAFETY: nothing else holds `cpus`.
                unsafe { free_kmem_cache_cpus(self.percpu, cpus) };
                return Err(e);
            }
        };
        let at = obj as *mut KmemCache;
        // SAFETY: `obj` is a fresh object of the kmem_cache cache, sized and
        // aligned for a `KmemCache`; it stays allocated until
        // `kmem_cache_destroy` consumes the only handle to it.
        let cache: &'a KmemCache = unsafe {
            at.write(cache);
            &*at
        };
        if let Err(e) = self.register(cache) {
            // SAFETY: nothing references the new cache yet; its per-CPU
            // slabs are empty.
            unsafe {
                core::ptr::drop_in_place(at);
                free_kmem_cache_cpus(self.percpu, cpus);
            }
            let _ = self.free_to(self.kmem_cache, obj, Location::caller());
            return Err(e);
        }
        Ok(cache)
    }

    /// Creates a cache of `size`-byte objects aligned to `align` (Linux
    /// `kmem_cache_create`). `ctor` runs on every object when its slab is
    /// made; objects must be freed back in their constructed state.
    #[track_caller]
    pub fn kmem_cache_create(
        &self,
        name: &'static str,
        size: u32,
        align: u32,
        flags: SlabFlags,
        ctor: Option<fn(&mut [u8])>,
    ) -> Result<CacheHandle<'a>, SlabError> {
        self.create(name, size, align, flags, ctor).map(|cache| CacheHandle { cache })
    }

    /// Allocates an object (Linux `kmem_cache_alloc`); `__GFP_ZERO` zeroes
    /// it. `None` when no memory is left.
    #[track_caller]
    #[inline]
    pub fn kmem_cache_alloc(&self, cache: &KmemCache, gfp: Gfp) -> Option<NonNull<u8>> {
        if cfg!(debug_assertions) && gfp.allows_blocking() {
            // Linux `slab_pre_alloc_hook`'s `might_alloc`: before SLUB
            // disables interrupts, whose new slabs count on this check.
            // Debug builds only, as with CONFIG_DEBUG_ATOMIC_SLEEP.
            self.pgdat.cpu().might_sleep(Location::caller());
        }
        self.ctx().alloc(cache, gfp, Location::caller()).and_then(|obj| NonNull::new(obj as *mut u8))
    }

    /// Frees an object to its cache (Linux `kmem_cache_free`). A pointer
    /// that is not an object of `cache`, or an object already free, is
    /// reported and refused.
    ///
    /// # Safety
    /// If `ptr` is an allocated object of `cache`, the caller owns it and
    /// nothing uses it afterwards.
    #[track_caller]
    #[inline]
    pub unsafe fn kmem_cache_free(&self, cache: &KmemCache, ptr: NonNull<u8>) -> Result<(), SlabError> {
        self.free_to(cache, ptr.as_ptr() as u64, Location::caller())
    }

    #[inline]
    fn free_to(&self, cache: &KmemCache, obj: u64, caller: &'static Location<'static>) -> Result<(), SlabError> {
        let ctx = self.ctx();
        match ctx.slab_of(cache, obj) {
            Ok(slab) => ctx.free(cache, slab, obj, caller),
            Err(e) => Err(ctx.report(cache, e, obj)),
        }
    }

    /// Returns a cache's empty slabs to the page allocator after flushing
    /// every CPU's slabs to the node (Linux `kmem_cache_shrink`). Returns
    /// the slabs freed.
    pub fn kmem_cache_shrink(&self, cache: &KmemCache) -> u64 {
        let ctx = self.ctx();
        for cpu in 0..self.nr_cpus as usize {
            ctx.flush_cpu(cache, cpu);
        }
        ctx.discard_empty(cache)
    }

    /// Destroys a cache (Linux `kmem_cache_destroy`). A cache with objects
    /// still allocated is refused, naming it and the count, and the handle
    /// comes back.
    pub fn kmem_cache_destroy(&self, handle: CacheHandle<'a>) -> Result<(), (CacheHandle<'a>, SlabError)> {
        let cache = handle.cache;
        self.kmem_cache_shrink(cache);
        let ctx = self.ctx();
        let live = ctx.slabinfo(cache).active_objs;
        if live > 0 || ctx.nr_slabs(cache) > 0 {
            let e = SlabError::CacheBusy { cache: cache.name(), objects: live };
            log::error!("{e}");
            return Err((handle, e));
        }
        {
            let mut caches = self.caches.lock();
            if let Some(slot) = caches.iter_mut().find(|c| c.is_some_and(|c| core::ptr::eq(c, cache))) {
                *slot = None;
            }
        }
        let obj = cache as *const KmemCache as u64;
        let cpus = cache.cpu_slabs();
        // SAFETY: the handle was the only way to reach the cache and it is
        // consumed; the registry entry is gone; the cache has no slabs, and
        // its per-CPU slabs were flushed by the shrink above.
        unsafe {
            core::ptr::drop_in_place(obj as *mut KmemCache);
            free_kmem_cache_cpus(self.percpu, cpus);
        }
        let _ = self.free_to(self.kmem_cache, obj, Location::caller());
        Ok(())
    }

    /// Allocates `size` bytes (Linux `kmalloc`): from the smallest kmalloc
    /// class that fits, or whole pages above [`KMALLOC_MAX_CACHE_SIZE`].
    /// `kmalloc(0)` returns [`ZERO_SIZE_PTR`].
    #[track_caller]
    pub fn kmalloc(&self, size: usize, gfp: Gfp) -> Option<NonNull<u8>> {
        if size == 0 {
            return Some(ZERO_SIZE_PTR);
        }
        match kmalloc_index(size) {
            Some(i) => self.kmem_cache_alloc(self.kmalloc_caches[i], gfp),
            None => self.kmalloc_large(size, gfp),
        }
    }

    /// Allocates zeroed memory (Linux `kzalloc`).
    #[track_caller]
    pub fn kzalloc(&self, size: usize, gfp: Gfp) -> Option<NonNull<u8>> {
        self.kmalloc(size, gfp | Gfp::ZERO)
    }

    /// Linux `__kmalloc_large_node`: a compound page block, counted in
    /// `nr_slab_unreclaimable` as Linux counts it.
    #[track_caller]
    fn kmalloc_large(&self, size: usize, gfp: Gfp) -> Option<NonNull<u8>> {
        if size > KMALLOC_MAX_SIZE {
            if !gfp.contains(Gfp::NOWARN) {
                log::warn!("kmalloc of {size} bytes exceeds KMALLOC_MAX_SIZE");
            }
            return None;
        }
        let order = (size as u64).div_ceil(PAGE_SIZE).next_power_of_two().trailing_zeros();
        let pfn = self.pgdat.alloc_pages(gfp | Gfp::COMP, order)?;
        let Some(ptr) = self.pgdat.page_address(pfn).and_then(|a| NonNull::new(a.as_mut_ptr::<u8>())) else {
            // Only a frame outside the direct map gets here: an arch bug.
            // SAFETY: allocated just above; no pointer to it was made.
            let _ = unsafe { self.pgdat.free_pages(pfn, order) };
            return None;
        };
        self.pgdat.mod_node_page_state(NodeStatItem::NrSlabUnreclaimableB, (PAGE_SIZE << order) as i64);
        Some(ptr)
    }

    /// What `ptr` is: its cache, or a large block of some order.
    #[inline]
    fn classify(&self, addr: u64) -> Result<Owner<'_>, SlabError> {
        let not_ours = SlabError::NotSlabObject { addr };
        let (pfn, head, page) = self.ctx().virt_to_head_page(addr).ok_or(not_ours)?;
        if page.test(PageFlags::SLAB) {
            // SAFETY: a SLAB page's `mapping` points at its live cache (see
            // slub::SlubCtx::slab_of).
            return Ok(Owner::Cache(unsafe { &*(page.mapping() as *const KmemCache) }, head, pfn));
        }
        let base = self.pgdat.page_address(head).map_or(0, VirtAddr::as_u64);
        if page.test(PageFlags::HEAD) && page.refcount() > 0 && addr == base {
            return Ok(Owner::Large(head, page.order()));
        }
        Err(not_ours)
    }

    /// Frees memory from [`Slab::kmalloc`] (Linux `kfree`). Null and
    /// [`ZERO_SIZE_PTR`] are ignored; anything else that is not a kmalloc
    /// object or block is reported and refused.
    ///
    /// # Safety
    /// If `ptr` is allocated memory from `kmalloc`, the caller owns it and
    /// nothing uses it afterwards.
    #[track_caller]
    pub unsafe fn kfree(&self, ptr: *mut u8) -> Result<(), SlabError> {
        let addr = ptr as u64;
        if ptr.is_null() || addr == ZERO_SIZE_PTR.as_ptr() as u64 {
            return Ok(());
        }
        match self.classify(addr) {
            Ok(Owner::Cache(cache, slab, pfn)) => {
                // The page lookup is done: check the object start and free.
                let ctx = self.ctx();
                match check_object_start(cache, slab, pfn, addr) {
                    Ok(()) => ctx.free(cache, slab, addr, Location::caller()),
                    Err(e) => Err(ctx.report(cache, e, addr)),
                }
            }
            Ok(Owner::Large(pfn, order)) => {
                // Linux `free_large_kmalloc`: uncounted before the free.
                self.pgdat.mod_node_page_state(NodeStatItem::NrSlabUnreclaimableB, -((PAGE_SIZE << order) as i64));
                // SAFETY: `ptr` is the start of this live large kmalloc block
                // (classify checked it), which the caller owns and no longer
                // uses (kfree's contract).
                unsafe { self.pgdat.free_pages(pfn, order) }.map_err(|_| SlabError::NotSlabObject { addr })
            }
            Err(e) => {
                self.errors.fetch_add(1, Relaxed);
                log::error!("kfree: {e}; refused");
                Err(e)
            }
        }
    }

    /// The usable size of a kmalloc allocation (Linux `ksize`), `None` for
    /// a pointer kmalloc did not return.
    pub fn ksize(&self, ptr: NonNull<u8>) -> Option<usize> {
        match self.classify(ptr.as_ptr() as u64).ok()? {
            Owner::Cache(cache, ..) => Some(cache.object_size() as usize),
            Owner::Large(_, order) => Some((PAGE_SIZE as usize) << order),
        }
    }

    /// Resizes a kmalloc allocation (Linux `krealloc`): the same pointer if
    /// it already fits, else a new allocation with the contents copied and
    /// the old one freed. On failure the old allocation is untouched.
    ///
    /// # Safety
    /// As [`Slab::kfree`] for `ptr`.
    #[track_caller]
    pub unsafe fn krealloc(&self, ptr: *mut u8, new_size: usize, gfp: Gfp) -> Option<NonNull<u8>> {
        let Some(old) = NonNull::new(ptr).filter(|p| *p != ZERO_SIZE_PTR) else {
            return self.kmalloc(new_size, gfp);
        };
        if new_size == 0 {
            // SAFETY: the caller's guarantee for `ptr`.
            let _ = unsafe { self.kfree(ptr) };
            return Some(ZERO_SIZE_PTR);
        }
        let old_size = self.ksize(old)?;
        if new_size <= old_size {
            return Some(old);
        }
        let new = self.kmalloc(new_size, gfp)?;
        // SAFETY: `old` has `old_size` usable bytes, `new` at least
        // `new_size` > `old_size`; distinct allocations do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(old.as_ptr(), new.as_ptr(), old_size) };
        // SAFETY: the caller's guarantee for `ptr`.
        let _ = unsafe { self.kfree(ptr) };
        Some(new)
    }

    /// Figures for one cache.
    pub fn slabinfo_of(&self, cache: &KmemCache) -> SlabInfo {
        self.ctx().slabinfo(cache)
    }

    /// Calls `f` with every registered cache.
    pub fn for_each_cache(&self, mut f: impl FnMut(&KmemCache)) {
        // The registry stays locked, as Linux holds slab_mutex: a cache
        // destroyed meanwhile on another CPU would otherwise be visited
        // after its memory was freed. `f` must not create or destroy caches.
        let caches = self.caches.lock();
        for cache in caches.iter().flatten() {
            f(cache);
        }
    }

    /// Shrinks every cache; returns the slabs freed.
    pub fn shrink_all(&self) -> u64 {
        let mut freed = 0;
        self.for_each_cache(|c| freed += self.kmem_cache_shrink(c));
        freed
    }

    /// Checks every slab of a cache (Linux `validate_slab_cache`).
    pub fn validate_slab_cache(&self, cache: &KmemCache) -> Result<u64, SlabError> {
        self.ctx().validate(cache)
    }
}

enum Owner<'c> {
    /// The cache, the slab's head pfn and the pfn of the object's page.
    Cache(&'c KmemCache, crate::addr::Pfn, crate::addr::Pfn),
    Large(crate::addr::Pfn, u32),
}

const KMALLOC_NAMES: [&str; 13] = [
    "kmalloc-8",
    "kmalloc-16",
    "kmalloc-32",
    "kmalloc-64",
    "kmalloc-96",
    "kmalloc-128",
    "kmalloc-192",
    "kmalloc-256",
    "kmalloc-512",
    "kmalloc-1k",
    "kmalloc-2k",
    "kmalloc-4k",
    "kmalloc-8k",
];

/// /proc/slabinfo (version 2.1) for every cache.
pub struct Slabinfo<'s, 'a>(pub &'s Slab<'a>);

impl fmt::Display for Slabinfo<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "slabinfo - version: 2.1")?;
        writeln!(
            f,
            "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>"
        )?;
        let mut result = Ok(());
        self.0.for_each_cache(|cache| {
            if result.is_err() {
                return;
            }
            let i = self.0.slabinfo_of(cache);
            result = writeln!(
                f,
                "{:<17} {:>6} {:>6} {:>6} {:>4} {:>4} : tunables {:>4} {:>4} {:>4} : slabdata {:>6} {:>6} {:>6}",
                cache.name(),
                i.active_objs,
                i.num_objs,
                i.objsize,
                i.objperslab,
                i.pagesperslab,
                0,
                0,
                0,
                i.active_slabs,
                i.num_slabs,
                0
            );
        });
        result
    }
}
