//! SLUB object caches (Linux `mm/slub.c`).
//!
//! A cache hands out objects of one size carved from slabs: (compound) pages
//! from the buddy allocator whose head page descriptor is marked `SLAB` and
//! carries the slab's state, as Linux overlays `struct slab` on `struct page`:
//! `mapping` points to the cache, `private` holds the slab's freelist (the
//! first free object; each free object holds the next at the cache's free
//! pointer offset) and `index` holds the in-use count and where the slab is.
//! So a free finds its cache from the object address alone.
//!
//! # Where a slab is
//! - **cpu slab**: one per CPU per cache, "frozen": its free objects are on
//!   the CPU's lockless freelist (see below), and its `inuse` counts every
//!   object not on the slab's own freelist; frees from other CPUs go to the
//!   slab's own freelist, which the CPU takes over when its freelist runs
//!   dry.
//! - **cpu partial**: a CPU's short list of partly free slabs, refilled when
//!   a free turns a full slab partial, spilled to the node when longer than
//!   `cpu_partial_slabs`.
//! - **node partial**: under the node lock. Full slabs are untracked, only
//!   counted, except in debug caches, which keep them on a node full list so
//!   validation sees every slab (as Linux does).
//!
//! Empty slabs beyond `min_partial` on the node list go back to the buddy
//! allocator; [`kmem_cache_shrink`](crate::slab_common::Slab::kmem_cache_shrink)
//! returns all of them.
//!
//! Every slab counts in the node state from its allocation to its discard
//! (Linux `account_slab`/`unaccount_slab`): its bytes in
//! `nr_slab_reclaimable` for `SLAB_RECLAIM_ACCOUNT` caches, else in
//! `nr_slab_unreclaimable`, where kmalloc_large blocks count too
//! ([`crate::vmstat`]).
//!
//! # Debugging (Linux `slub_debug=FZPU`)
//! Caches with debug flags take the slow path for every operation, under
//! the node lock, with no cpu slabs (Linux 6.2+ does the same), so every
//! object's state is visible on slab freelists:
//! - `RED_ZONE`: bytes before and after the object hold 0xcc while it is
//!   allocated and 0xbb while it is free; a free checks them.
//! - `POISON`: a free object holds 0x6b with a final 0xa5; the next
//!   allocation checks it (use-after-free writes); a new object without a
//!   constructor is filled with 0x5a.
//! - `CONSISTENCY_CHECKS`: a free checks the pointer is an object of this
//!   cache's slab and not already on the freelist (double free).
//! - `STORE_USER`: the allocating and freeing call sites (Rust
//!   `#[track_caller]` locations) are stored after the object and printed
//!   with every report.
//!
//! A report names the cache, the object and what was found, in Linux's
//! "BUG <cache>: <what>" form. The bad object (on free) or slab (on
//! allocation) is taken out of use and the kernel continues, unless the
//! allocator was configured to panic.
//!
//! # The lockless fast path (Linux `slab_alloc_node`, `do_slab_free`)
//! A CPU's freelist and a transaction counter share one 16-byte word
//! ([`freelist_aba`]); the counter's upper half counts transactions (Linux
//! `tid`), its lower half the objects on the freelist. An allocation reads
//! the counter, then the head, then the head's free pointer, and swaps
//! `(head, counter)` for `(next, counter + 1 transaction - 1 object)` with
//! one compare-and-exchange; a free to the cpu slab links the object in
//! front of the head the same way. Neither takes a lock or disables
//! interrupts. What can come between the reads and the exchange, and why
//! each is harmless:
//! - **An interrupt on the same CPU** that allocates or frees (the kernel
//!   heap is the global allocator; handlers use it). Every change of the
//!   word moves the counter on, so the interrupted exchange fails and the
//!   path starts again. The free pointer read before it may have been
//!   garbage by then (the object allocated and written by the handler):
//!   it is only ever read, from memory that stays mapped, and never used
//!   once the exchange fails. The same object coming back to the head (ABA)
//!   cannot fool the exchange: the counter differs.
//! - **A slow path on the same CPU** runs with interrupts off, so it is never
//!   interleaved with this CPU's fast paths except as such an interrupt.
//!   The one exception, a new slab's page allocation, runs with the
//!   caller's interrupts and holds no lock; the slow path takes its locks
//!   afresh after it, on whatever CPU the task is then.
//! - **Another CPU flushing this CPU's slabs** (`kmem_cache_shrink`,
//!   validation): it holds the CPU's lock, clears `slab` first and then
//!   takes the whole freelist by exchange. A free that read the counter
//!   before the take fails its exchange; one that read it after sees no
//!   cpu slab (x86 keeps the flusher's two stores in order, and the reader
//!   reads the counter before `slab`) and takes the slow path.
//! - **Migration** does not happen: the kernel is not preemptible except at
//!   schedule points, and none is inside a fast path; the page allocation
//!   of a new slab may sleep, and the fast path takes its CPU's state
//!   afresh after it (Linux's `tid` also
//!   encodes the CPU to catch a preempted task resuming elsewhere; ours
//!   need not).
//! - **Another CPU freeing an object of this CPU's slab** never touches
//!   this CPU's word: the slab is not that CPU's cpu slab, so the free takes
//!   the slow path to the slab's own freelist under the node lock, which
//!   this CPU takes over when its freelist runs dry.
//!
//! Everything else - refilling the freelist, changing the cpu slab, the cpu
//! partial list - is the slow path (Linux `___slab_alloc`, `__slab_free`):
//! interrupts off, the CPU's lock held (Linux's `local_lock`, here a spin
//! lock because a remote flush takes it too). The slow path only installs
//! a freelist while the word is empty; should a fast path have linked an
//! object in meanwhile (nothing in the kernel can, but a CPU id beyond the
//! per-CPU states would share one), the new list is linked in front of it
//! rather than replacing it.
//!
//! # Locking
//! `cpu lock (per cache, per CPU) -> node lock -> page allocator locks`.
//! Every slow path disables interrupts before taking a cpu or node lock;
//! the fast paths take neither.
//!
//! # Differences from Linux
//! The fast path's exchange is `lock`ed, and remote CPUs' slabs are flushed
//! from the calling CPU rather than by a work item on each (see
//! [`freelist_aba`]). No freelist pointer hardening or randomisation, no
//! NUMA nodes (one node), no `SLAB_TYPESAFE_BY_RCU`, no memcg accounting,
//! no sysfs, no bulk allocation.

mod freelist_aba;

use core::fmt;
use core::panic::Location;
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use bitflags::bitflags;
use log::error;
use spin::Mutex;

use crate::addr::{PAGE_SIZE, Pfn, VirtAddr};
use crate::gfp::Gfp;
use crate::list::PageList;
use crate::page_alloc::PgData;
use crate::page_flags::PageFlags;
use crate::percpu::{PerCpuRef, PercpuAlloc};
use crate::vmstat::NodeStatItem;

/// Red zone byte of a free object (Linux `SLUB_RED_INACTIVE`).
pub const SLUB_RED_INACTIVE: u8 = 0xbb;
/// Red zone byte of an allocated object (Linux `SLUB_RED_ACTIVE`).
pub const SLUB_RED_ACTIVE: u8 = 0xcc;
/// Fill of a newly allocated object without constructor (Linux
/// `POISON_INUSE`).
pub const POISON_INUSE: u8 = 0x5a;
/// Fill of a free object (Linux `POISON_FREE`).
pub const POISON_FREE: u8 = 0x6b;
/// Last byte of a free object's poison (Linux `POISON_END`).
pub const POISON_END: u8 = 0xa5;

/// Largest slab order chosen for small objects (Linux `slub_max_order`,
/// PAGE_ALLOC_COSTLY_ORDER).
const SLUB_MAX_ORDER: u32 = 3;
/// Word size: free pointers, red-zone minimum, alignment floor.
const WORD: u32 = 8;
/// Bytes of one stored call site: location pointer and its check word.
const TRACK_SIZE: u32 = 24;
/// Checks that a stored location pointer was written by us.
const TRACK_MAGIC: u64 = 0x5eed_c0de_7a11_f00d;

bitflags! {
    /// Cache flags (Linux `slab_flags_t`, `SLAB_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct SlabFlags: u32 {
        /// `SLAB_CONSISTENCY_CHECKS` (slub_debug `F`).
        const CONSISTENCY_CHECKS = 1 << 0;
        /// `SLAB_RED_ZONE` (slub_debug `Z`).
        const RED_ZONE = 1 << 1;
        /// `SLAB_POISON` (slub_debug `P`).
        const POISON = 1 << 2;
        /// `SLAB_STORE_USER` (slub_debug `U`).
        const STORE_USER = 1 << 3;
        /// `SLAB_HWCACHE_ALIGN`: align objects to cache lines.
        const HWCACHE_ALIGN = 1 << 4;
        /// `SLAB_RECLAIM_ACCOUNT`: slabs come from reclaimable pageblocks.
        const RECLAIM_ACCOUNT = 1 << 5;
    }
}

impl SlabFlags {
    /// All debug flags (Linux `SLAB_DEBUG_FLAGS`).
    pub const DEBUG: SlabFlags =
        SlabFlags::CONSISTENCY_CHECKS.union(SlabFlags::RED_ZONE).union(SlabFlags::POISON).union(SlabFlags::STORE_USER);
}

/// What went wrong in a slab operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlabError {
    /// The pointer is not in a slab page (nor a large kmalloc block).
    NotSlabObject {
        /// The pointer.
        addr: u64,
    },
    /// The object belongs to another cache than the one it was freed to.
    WrongCache {
        /// The pointer.
        addr: u64,
        /// The cache it was freed to.
        expected: &'static str,
        /// The cache that owns it.
        actual: &'static str,
    },
    /// The pointer is inside a slab but not at an object's start.
    InvalidPointer {
        /// The pointer.
        addr: u64,
        /// The owning cache.
        cache: &'static str,
    },
    /// The object is already free.
    DoubleFree {
        /// The pointer.
        addr: u64,
        /// The owning cache.
        cache: &'static str,
    },
    /// A red zone byte next to the object was overwritten.
    RedzoneOverwritten {
        /// The object.
        addr: u64,
        /// The owning cache.
        cache: &'static str,
        /// The first bad byte's address.
        at: u64,
        /// The value found there.
        found: u8,
    },
    /// A free object's poison was overwritten (a use-after-free write).
    PoisonOverwritten {
        /// The object.
        addr: u64,
        /// The owning cache.
        cache: &'static str,
        /// The first bad byte's address.
        at: u64,
        /// The value found there.
        found: u8,
    },
    /// `kmem_cache_destroy` of a cache with live objects.
    CacheBusy {
        /// The cache.
        cache: &'static str,
        /// Objects still allocated.
        objects: u64,
    },
    /// Object size 0, above the largest slab, or an alignment that is not a
    /// power of two.
    BadGeometry {
        /// The cache being created.
        cache: &'static str,
    },
    /// No memory for the cache structure.
    NoMemory,
    /// The cache registry is full.
    TooManyCaches,
}

impl fmt::Display for SlabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SlabError::NotSlabObject { addr } => write!(f, "{addr:#x} is not a slab object"),
            SlabError::WrongCache { addr, expected, actual } => {
                write!(f, "Wrong slab cache: {addr:#x} freed to {expected} but is from {actual}")
            }
            SlabError::InvalidPointer { addr, cache } => write!(f, "BUG {cache}: Invalid object pointer {addr:#x}"),
            SlabError::DoubleFree { addr, cache } => write!(f, "BUG {cache}: Object {addr:#x} already free"),
            SlabError::RedzoneOverwritten { addr, cache, at, found } => write!(
                f,
                "BUG {cache}: Redzone overwritten at {at:#x} (object {addr:#x}+{}): {found:#04x} instead of {SLUB_RED_ACTIVE:#04x}",
                at.wrapping_sub(addr) as i64
            ),
            SlabError::PoisonOverwritten { addr, cache, at, found } => write!(
                f,
                "BUG {cache}: Poison overwritten at {at:#x} (object {addr:#x}+{}): {found:#04x}, use after free",
                at - addr
            ),
            SlabError::CacheBusy { cache, objects } => {
                write!(f, "kmem_cache_destroy {cache}: Slab cache still has objects ({objects} allocated)")
            }
            SlabError::BadGeometry { cache } => write!(f, "kmem_cache_create {cache}: bad object size or alignment"),
            SlabError::NoMemory => f.write_str("out of memory for a slab cache"),
            SlabError::TooManyCaches => f.write_str("too many slab caches"),
        }
    }
}

/// Where a slab is (kept in the head page's `index` above the in-use count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum SlabState {
    CpuSlab = 1,
    CpuPartial = 2,
    NodePartial = 3,
    NodeFull = 4,
}

/// One transaction in the cpu freelist's counter word (Linux `TID_STEP`);
/// the bits below count the objects on the freelist.
const TID_STEP: u64 = 1 << 32;

/// Objects on a cpu freelist, from its counter word.
fn nr_free_of(counter: u64) -> u32 {
    counter as u32
}

/// One CPU's state for one cache (Linux `struct kmem_cache_cpu`).
#[repr(C)]
pub(crate) struct KmemCacheCpu {
    /// First free object of the cpu slab (0 for none) and the counter word:
    /// transactions above [`TID_STEP`], objects on the freelist below
    /// (Linux `freelist` and `tid`). Changed only by exchange of both.
    freelist_tid: freelist_aba::FreelistAba,
    /// The cpu slab's head pfn plus one, 0 for none (Linux `slab`). Changed
    /// under `lock`; the free fast path reads it after the counter.
    slab: AtomicU64,
    /// Serialises everything but the fast paths (Linux's `local_lock`):
    /// changing `slab`, taking or installing the freelist, and the cpu
    /// partial list it guards.
    lock: Mutex<PageList>,
}

impl KmemCacheCpu {
    /// No slab, nothing free.
    const fn new() -> Self {
        KmemCacheCpu {
            freelist_tid: freelist_aba::FreelistAba::new(),
            slab: AtomicU64::new(0),
            lock: Mutex::new(PageList::new()),
        }
    }

    /// The cpu slab.
    fn slab(&self) -> Option<Pfn> {
        match self.slab.load(Acquire) {
            0 => None,
            pfn => Some(Pfn::new(pfn - 1)),
        }
    }

    /// Whether `slab` is the cpu slab (the free fast path's test).
    #[inline(always)]
    fn is_cpu_slab(&self, slab: Pfn) -> bool {
        self.slab.load(Acquire) == slab.as_u64() + 1
    }

    /// Sets the cpu slab; the caller holds `lock`.
    fn set_slab_locked(&self, slab: Option<Pfn>) {
        self.slab.store(slab.map_or(0, |pfn| pfn.as_u64() + 1), Release);
    }

    /// Objects on the freelist (exact while the CPU is quiet).
    fn nr_free(&self) -> u32 {
        nr_free_of(self.freelist_tid.counter())
    }

    /// Takes the whole freelist, leaving it empty (Linux
    /// `deactivate_slab`'s and `flush_slab`'s exchange); the caller holds
    /// `lock`. Returns the head and the count.
    fn take_freelist_locked(&self) -> (u64, u32) {
        loop {
            let counter = self.freelist_tid.counter();
            let head = self.freelist_tid.freelist();
            let next = (counter & !(TID_STEP - 1)).wrapping_add(TID_STEP);
            if self.freelist_tid.try_cmpxchg((head, counter), (0, next)) {
                return (head, nr_free_of(counter));
            }
        }
    }
}

/// The per-CPU slab states of a new cache, in per-CPU memory (Linux
/// `alloc_kmem_cache_cpus`).
pub(crate) fn alloc_kmem_cache_cpus(
    percpu: &dyn PercpuAlloc,
    nr_cpus: u32,
) -> Option<PerCpuRef<'static, KmemCacheCpu>> {
    let (size, align) = (core::mem::size_of::<KmemCacheCpu>(), core::mem::align_of::<KmemCacheCpu>());
    let (base, stride) = percpu.alloc(size, align, nr_cpus as usize)?;
    for n in 0..nr_cpus as usize {
        // SAFETY: PercpuAlloc's contract: CPU n's copy is `size` bytes at
        // base + n * stride, aligned and exclusively ours.
        unsafe { base.as_ptr().add(n * stride).cast::<KmemCacheCpu>().write(KmemCacheCpu::new()) };
    }
    // SAFETY: initialised above; the memory stays allocated until
    // `free_kmem_cache_cpus`, which runs only once the cache (the only
    // holder of this view) is unreachable.
    Some(unsafe { PerCpuRef::from_raw(base.cast(), stride, nr_cpus as usize) })
}

/// Frees what [`alloc_kmem_cache_cpus`] made.
///
/// # Safety
/// Nothing may use `cpus` (or the cache holding it) afterwards.
pub(crate) unsafe fn free_kmem_cache_cpus(percpu: &dyn PercpuAlloc, cpus: PerCpuRef<'static, KmemCacheCpu>) {
    // SAFETY: the base came from `alloc_kmem_cache_cpus`; the caller
    // guarantees no further use. KmemCacheCpu needs no drop.
    unsafe { percpu.free(cpus.as_non_null().cast()) };
}

/// The node's slab lists (Linux `struct kmem_cache_node`).
#[derive(Debug)]
pub(crate) struct KmemCacheNode {
    partial: PageList,
    full: PageList,
    nr_slabs: u64,
}

/// An object cache (Linux `struct kmem_cache`).
#[doc(alias = "kmem_cache")]
pub struct KmemCache {
    name: &'static str,
    /// Bytes the user asked for (Linux `object_size`).
    object_size: u32,
    /// Stride between objects, metadata included (Linux `size`).
    size: u32,
    align: u32,
    /// Free pointer offset from the object start (Linux `offset`).
    offset: u32,
    /// End of the object and its right red zone, from the object start
    /// (Linux `inuse`).
    inuse: u32,
    /// Left red zone bytes before each object (Linux `red_left_pad`).
    red_left_pad: u32,
    /// Stored call sites, from the object start.
    track_offset: u32,
    pub(crate) flags: SlabFlags,
    ctor: Option<fn(&mut [u8])>,
    order: u32,
    objects: u32,
    min_partial: u64,
    cpu_partial_slabs: u32,
    /// The per-CPU slabs, in per-CPU memory (Linux `s->cpu_slab`), until
    /// the cache is destroyed.
    cpu: PerCpuRef<'static, KmemCacheCpu>,
    node: Mutex<KmemCacheNode>,
    /// Reports of corruption in this cache.
    errors: AtomicU64,
}

/// A cache's figures (the data of a /proc/slabinfo line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SlabInfo {
    /// Objects allocated.
    pub active_objs: u64,
    /// Object slots in all slabs.
    pub num_objs: u64,
    /// Slab stride (Linux prints `s->size`).
    pub objsize: u32,
    /// Objects per slab.
    pub objperslab: u32,
    /// Pages per slab.
    pub pagesperslab: u32,
    /// Slabs with at least one object allocated.
    pub active_slabs: u64,
    /// All slabs.
    pub num_slabs: u64,
}

/// Linux `calc_slab_order`: the smallest order in `[min_order, max_order]`
/// holding at least `min_objects` objects of `size` with at most
/// 1/`fract_leftover` of the slab wasted.
fn calc_slab_order(size: u32, min_objects: u32, max_order: u32, fract_leftover: u32) -> Option<u32> {
    let min_order = (u64::from(size).div_ceil(PAGE_SIZE)).next_power_of_two().trailing_zeros();
    (min_order..=max_order).find(|&order| {
        let slab_size = (PAGE_SIZE << order) as u32;
        let objects = slab_size / size;
        let rem = slab_size % size;
        objects >= min_objects && rem <= slab_size / fract_leftover
    })
}

/// Linux `calculate_order`.
fn calculate_order(size: u32, nr_cpus: u32) -> u32 {
    let max_objects = ((PAGE_SIZE << SLUB_MAX_ORDER) as u32 / size).max(1);
    let mut min_objects = (4 * (32 - nr_cpus.leading_zeros() + 1)).min(max_objects);
    while min_objects >= 1 {
        for fraction in [16, 8, 4] {
            if let Some(order) = calc_slab_order(size, min_objects, SLUB_MAX_ORDER, fraction) {
                return order;
            }
        }
        min_objects /= 2;
    }
    // One object per slab of the smallest order that fits it.
    u64::from(size).div_ceil(PAGE_SIZE).next_power_of_two().trailing_zeros()
}

impl KmemCache {
    /// Lays out a cache (Linux `calculate_sizes`). `align` is a power of
    /// two; `flags` already include any boot-time debug flags.
    pub(crate) fn new(
        name: &'static str,
        object_size: u32,
        align: u32,
        flags: SlabFlags,
        ctor: Option<fn(&mut [u8])>,
        nr_cpus: u32,
        cpu: PerCpuRef<'static, KmemCacheCpu>,
    ) -> Result<KmemCache, SlabError> {
        let bad = SlabError::BadGeometry { cache: name };
        if object_size == 0 || !align.is_power_of_two() || align > PAGE_SIZE as u32 {
            return Err(bad);
        }
        let mut align = align.max(WORD);
        if flags.contains(SlabFlags::HWCACHE_ALIGN) {
            align = align.max(64);
        }
        let mut size = object_size.next_multiple_of(WORD);
        if flags.contains(SlabFlags::RED_ZONE) && size == object_size {
            // Leave room for a right red zone of at least one word.
            size += WORD;
        }
        let inuse = size;
        let poisoned = flags.contains(SlabFlags::POISON) || ctor.is_some();
        let offset = if poisoned {
            // The free pointer cannot live in the object: poison or the
            // constructed state must survive while it is free.
            size += WORD;
            inuse
        } else {
            // Linux 5.7+: mid-object, out of reach of small overflows.
            (object_size / 2) & !(WORD - 1)
        };
        let track_offset = size;
        if flags.contains(SlabFlags::STORE_USER) {
            size += 2 * TRACK_SIZE;
        }
        let red_left_pad = if flags.contains(SlabFlags::RED_ZONE) { WORD.next_multiple_of(align) } else { 0 };
        size = (size + red_left_pad).next_multiple_of(align);
        if u64::from(size) > PAGE_SIZE << crate::mmzone::MAX_PAGE_ORDER {
            return Err(bad);
        }
        let order = calculate_order(size, nr_cpus);
        let objects = ((PAGE_SIZE << order) / u64::from(size)) as u32;
        // Linux set_min_partial: ilog2(size) / 2, clamped to [5, 10].
        let min_partial = u64::from((31 - size.leading_zeros()) / 2).clamp(5, 10);
        // Linux set_cpu_partial: fewer partial slabs for bigger objects.
        let cpu_partial_slabs = match size {
            0..256 => 8,
            256..1024 => 6,
            1024..4096 => 4,
            _ => 2,
        };
        Ok(KmemCache {
            name,
            object_size,
            size,
            align,
            offset,
            inuse,
            red_left_pad,
            track_offset,
            flags,
            ctor,
            order,
            objects,
            min_partial,
            cpu_partial_slabs,
            cpu,
            node: Mutex::new(KmemCacheNode { partial: PageList::new(), full: PageList::new(), nr_slabs: 0 }),
            errors: AtomicU64::new(0),
        })
    }

    /// Where CPU `cpu`'s slab state of this cache lives (0 if the CPU has
    /// none), for checks that it is in per-CPU memory.
    pub fn cpu_slab_address(&self, cpu: usize) -> u64 {
        self.cpu.get(cpu).map_or(0, |c| core::ptr::from_ref(c) as u64)
    }

    /// The per-CPU slabs (for freeing them with the cache).
    pub(crate) fn cpu_slabs(&self) -> PerCpuRef<'static, KmemCacheCpu> {
        self.cpu
    }

    /// The cache's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Bytes usable in each object (Linux `kmem_cache_size`).
    pub fn object_size(&self) -> u32 {
        self.object_size
    }

    /// Bytes between objects in a slab, metadata included.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The objects' alignment.
    pub fn align(&self) -> u32 {
        self.align
    }

    /// The slab order.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// Objects per slab.
    pub fn objects_per_slab(&self) -> u32 {
        self.objects
    }

    /// The cache's flags.
    pub fn flags(&self) -> SlabFlags {
        self.flags
    }

    /// Corruption reports for this cache so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Relaxed)
    }

    /// The counter its slab pages count in (Linux `cache_vmstat_idx`).
    fn vmstat_item(&self) -> NodeStatItem {
        if self.flags.contains(SlabFlags::RECLAIM_ACCOUNT) {
            NodeStatItem::NrSlabReclaimableB
        } else {
            NodeStatItem::NrSlabUnreclaimableB
        }
    }

    /// Bytes of one slab (Linux `slab_size`).
    fn slab_bytes(&self) -> i64 {
        (PAGE_SIZE << self.order) as i64
    }

    fn debug(&self) -> bool {
        self.flags.intersects(SlabFlags::DEBUG)
    }
}

impl fmt::Debug for KmemCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmemCache")
            .field("name", &self.name)
            .field("object_size", &self.object_size)
            .field("size", &self.size)
            .field("order", &self.order)
            .field("objects", &self.objects)
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

/// Reads and writes object memory. All raw pointer work of SLUB is here.
mod raw {
    /// Reads the word at `addr`.
    ///
    /// # Safety
    /// `addr` is 8-aligned and inside a slab page of a live slab.
    pub(super) unsafe fn read_word(addr: u64) -> u64 {
        // SAFETY: guaranteed by the caller.
        unsafe { (addr as *const u64).read() }
    }

    /// Reads the word at `addr`, which another CPU or an interrupt may be
    /// writing meanwhile (a volatile read: the compiler neither tears nor
    /// caches it); the value may be stale or garbage.
    ///
    /// # Safety
    /// `addr` is 8-aligned and mapped readable (the direct map).
    pub(super) unsafe fn read_word_racy(addr: u64) -> u64 {
        // SAFETY: guaranteed by the caller.
        unsafe { (addr as *const u64).read_volatile() }
    }

    /// Writes the word at `addr`.
    ///
    /// # Safety
    /// As [`read_word`], and the word belongs to metadata or a free object
    /// the caller's lock protects.
    pub(super) unsafe fn write_word(addr: u64, value: u64) {
        // SAFETY: guaranteed by the caller.
        unsafe { (addr as *mut u64).write(value) }
    }

    /// The bytes `[addr, addr + len)`.
    ///
    /// # Safety
    /// The range is inside a slab page of a live slab and nothing else
    /// accesses it while the slice lives.
    pub(super) unsafe fn bytes<'b>(addr: u64, len: u32) -> &'b mut [u8] {
        // SAFETY: guaranteed by the caller.
        unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, len as usize) }
    }
}

/// A slab operation's context: the page allocator it draws slabs from and
/// the corruption policy.
pub(crate) struct SlubCtx<'p, 'a> {
    pub(crate) pgdat: &'p PgData<'a>,
    /// Direct-map address of physical address 0 (Linux
    /// `page_offset_base`): the direct map is linear ([`crate::arch::PhysMemory`]),
    /// so a pointer's pfn is arithmetic, as in Linux's `virt_to_page`.
    pub(crate) page_offset: u64,
    pub(crate) panic_on_error: bool,
    pub(crate) errors: &'p AtomicU64,
}

fn state_of(index: u64) -> u64 {
    index >> 32
}

fn inuse_of(index: u64) -> u32 {
    index as u32
}

fn counters(inuse: u32, state: SlabState) -> u64 {
    (state as u64) << 32 | u64::from(inuse)
}

/// The state a CPU id beyond the cache's per-CPU states uses: the last
/// one, shared (a bug in the CPU numbering; the module doc says why
/// sharing stays safe). Debug builds stop here.
#[cold]
fn beyond_cpu_slabs(s: &KmemCache, cpu: usize) -> &KmemCacheCpu {
    debug_assert!(false, "CPU {cpu} beyond the {} per-CPU slabs of {}", s.cpu.len(), s.name);
    &s.cpu[s.cpu.len().saturating_sub(1)]
}

/// The error for `addr`, an object of the cache at `mapping`, freed to
/// `s` (Linux `cache_from_obj`'s report).
#[cold]
fn wrong_cache(s: &KmemCache, mapping: u64, addr: u64) -> SlabError {
    // SAFETY: a SLAB page's `mapping` always points at the live cache that
    // owns it (set in `allocate_slab`, cleared before the slab is freed, and
    // caches outlive their slabs).
    let actual = unsafe { &*(mapping as *const KmemCache) };
    SlabError::WrongCache { addr, expected: s.name, actual: actual.name }
}

/// Whether `addr`, in page `pfn` of `slab` (a slab of `s`), is the start
/// of an object (Linux `check_valid_pointer`). The offset comes from the
/// pfns and the address's offset in its page, without a direct-map lookup:
/// the direct map maps whole pages at page-aligned addresses.
pub(crate) fn check_object_start(s: &KmemCache, slab: Pfn, pfn: Pfn, addr: u64) -> Result<(), SlabError> {
    let offset = (pfn.as_u64().wrapping_sub(slab.as_u64()) << crate::addr::PAGE_SHIFT) | (addr & (PAGE_SIZE - 1));
    let Some(offset) = offset.checked_sub(u64::from(s.red_left_pad)) else {
        return Err(SlabError::InvalidPointer { addr, cache: s.name });
    };
    let size = u64::from(s.size);
    if !offset.is_multiple_of(size) || offset / size >= u64::from(s.objects) {
        return Err(SlabError::InvalidPointer { addr, cache: s.name });
    }
    Ok(())
}

impl<'p> SlubCtx<'p, '_> {
    /// The frame behind a direct-map address, its compound head and the
    /// head's descriptor (Linux `virt_to_head_page`), by arithmetic rather
    /// than a call across the arch boundary, each descriptor looked up
    /// once. An address outside the direct map lands outside the memory
    /// map or on a frame that is no slab (a hole is a reserved page), so
    /// the callers' page-flag checks refuse it.
    #[inline]
    pub(crate) fn virt_to_head_page(&self, addr: u64) -> Option<(Pfn, Pfn, &'p crate::page::Page)> {
        let pfn = Pfn::new(addr.wrapping_sub(self.page_offset) >> crate::addr::PAGE_SHIFT);
        let page = self.pgdat.mem_map().pfn_to_page(pfn)?;
        if !page.test(PageFlags::TAIL) {
            return Some((pfn, pfn, page));
        }
        let head = Pfn::new(u64::from(page.link(0)));
        Some((pfn, head, self.pgdat.mem_map().pfn_to_page(head)?))
    }
}

impl SlubCtx<'_, '_> {
    fn map(&self) -> &crate::page::MemMap<'_> {
        self.pgdat.mem_map()
    }

    fn slab_base(&self, slab: Pfn) -> u64 {
        self.pgdat.page_address(slab).map_or(0, VirtAddr::as_u64)
    }

    fn set_counters(&self, slab: Pfn, inuse: u32, state: SlabState) {
        if let Some(page) = self.map().pfn_to_page(slab) {
            page.set_index(counters(inuse, state));
        }
    }

    fn counters(&self, slab: Pfn) -> (u32, u64) {
        let index = self.map().pfn_to_page(slab).map_or(0, |p| p.index());
        (inuse_of(index), state_of(index))
    }

    fn slab_freelist(&self, slab: Pfn) -> u64 {
        self.map().pfn_to_page(slab).map_or(0, |p| p.private())
    }

    fn set_slab_freelist(&self, slab: Pfn, head: u64) {
        if let Some(page) = self.map().pfn_to_page(slab) {
            page.set_private(head);
        }
    }

    /// The next free object after `obj` (Linux `get_freepointer`).
    fn get_freepointer(&self, s: &KmemCache, obj: u64) -> u64 {
        // SAFETY: `obj` is a free object of a slab of `s` (the caller holds
        // the lock of the freelist it is on) and `offset` is an aligned
        // in-slot offset.
        unsafe { raw::read_word(obj + u64::from(s.offset)) }
    }

    fn set_freepointer(&self, s: &KmemCache, obj: u64, next: u64) {
        // SAFETY: `obj` is an object of a slab of `s` being freed or built,
        // owned by the caller's lock.
        unsafe { raw::write_word(obj + u64::from(s.offset), next) }
    }

    /// Finds the slab holding `addr` and checks it belongs to `s` and that
    /// `addr` starts an object (Linux `virt_to_slab`, `cache_from_obj`,
    /// `check_valid_pointer`).
    #[inline]
    pub(crate) fn slab_of(&self, s: &KmemCache, addr: u64) -> Result<Pfn, SlabError> {
        let (pfn, slab, page) = self.virt_to_head_page(addr).ok_or(SlabError::NotSlabObject { addr })?;
        if !page.test(PageFlags::SLAB) {
            return Err(SlabError::NotSlabObject { addr });
        }
        if page.mapping() != s as *const KmemCache as u64 {
            return Err(wrong_cache(s, page.mapping(), addr));
        }
        check_object_start(s, slab, pfn, addr)?;
        Ok(slab)
    }

    /// Allocates and initialises a new slab (Linux `allocate_slab`): every
    /// object constructed (and, for debug caches, red-zoned and poisoned)
    /// and on the slab's freelist. Returns the slab and its freelist.
    fn allocate_slab(&self, s: &KmemCache, gfp: Gfp) -> Option<(Pfn, u64)> {
        let mut gfp =
            (gfp & (crate::gfp::GFP_RECLAIM | Gfp::IO | Gfp::FS | Gfp::HIGH | Gfp::NOWARN | Gfp::MEMALLOC)) | Gfp::COMP;
        if s.flags.contains(SlabFlags::RECLAIM_ACCOUNT) {
            gfp |= Gfp::RECLAIMABLE;
        }
        let slab = self.pgdat.alloc_pages_checked_by_caller(gfp, s.order)?;
        let page = self.map().pfn_to_page(slab)?;
        page.set(PageFlags::SLAB);
        page.set_mapping(s as *const KmemCache as u64);
        self.pgdat.mod_node_page_state(s.vmstat_item(), s.slab_bytes());
        let base = self.slab_base(slab);
        let mut head = 0;
        for i in (0..s.objects).rev() {
            let obj = base + u64::from(s.red_left_pad) + u64::from(i) * u64::from(s.size);
            if s.debug() {
                self.init_object(s, obj, SLUB_RED_INACTIVE);
                if s.flags.contains(SlabFlags::STORE_USER) {
                    self.clear_tracks(s, obj);
                }
            }
            if let Some(ctor) = s.ctor {
                // SAFETY: the object lies in the slab just allocated, which
                // nothing else references yet.
                ctor(unsafe { raw::bytes(obj, s.object_size) });
            }
            self.set_freepointer(s, obj, head);
            head = obj;
        }
        Some((slab, head))
    }

    /// Returns an empty slab to the page allocator (Linux `discard_slab`).
    fn discard_slab(&self, s: &KmemCache, slab: Pfn) {
        if let Some(page) = self.map().pfn_to_page(slab) {
            page.clear(PageFlags::SLAB);
            page.set_mapping(0);
            page.set_private(0);
            page.set_index(0);
        }
        self.pgdat.mod_node_page_state(s.vmstat_item(), -s.slab_bytes());
        // SAFETY: the slab is empty (no object of it is live) and off every
        // list of the cache, so nothing reaches its pages any more.
        if let Err(bad) = unsafe { self.pgdat.free_pages(slab, s.order) } {
            error!("slab {}: freeing slab page: {bad}", s.name);
        }
    }

    /// Allocates an object (Linux `slab_alloc_node`).
    #[inline(always)]
    pub(crate) fn alloc(&self, s: &KmemCache, gfp: Gfp, caller: &'static Location<'static>) -> Option<u64> {
        let obj = if s.debug() { self.alloc_debug_irqs_off(s, gfp, caller)? } else { self.alloc_fast(s, gfp)? };
        if gfp.contains(Gfp::ZERO) {
            // SAFETY: `obj` was just allocated to this caller.
            unsafe { raw::bytes(obj, s.object_size) }.fill(0);
        }
        Some(obj)
    }

    /// The lockless fast path (see the module doc): pops the cpu
    /// freelist's head by exchange, refilling the freelist in the slow path
    /// when it is empty.
    #[inline(always)]
    fn alloc_fast(&self, s: &KmemCache, gfp: Gfp) -> Option<u64> {
        let mut c = self.this_cpu_slab(s);
        loop {
            let counter = c.freelist_tid.counter();
            let obj = c.freelist_tid.freelist();
            if obj == 0 {
                self.refill_cpu_slab(s, c, gfp)?;
                // A new slab's allocation may have slept and the task
                // resumed on another CPU (Linux re-reads `s->cpu_slab`).
                c = self.this_cpu_slab(s);
                continue;
            }
            let next = self.get_freepointer_racy(s, obj);
            #[cfg(test)]
            tests::interrupt_window();
            // One transaction more, one object fewer.
            if c.freelist_tid.try_cmpxchg((obj, counter), (next, counter.wrapping_add(TID_STEP - 1))) {
                return Some(obj);
            }
        }
    }

    /// The executing CPU's slab of `s`.
    #[inline(always)]
    fn this_cpu_slab<'c>(&self, s: &'c KmemCache) -> &'c KmemCacheCpu {
        let cpu = self.pgdat.cpu().cpu_id() as usize;
        match s.cpu.get(cpu) {
            Some(c) => c,
            None => beyond_cpu_slabs(s, cpu),
        }
    }

    /// Linux `___slab_alloc`: the cpu freelist is empty; take the cpu
    /// slab's remote frees, else a cpu partial slab, else a node partial
    /// slab, else a new slab. The fast path then allocates from it.
    ///
    /// A new slab's pages are allocated with the caller's interrupt state,
    /// not with the slow path's interrupts off (Linux `allocate_slab`
    /// enables them for a mask that may block): the allocation may
    /// reclaim, and reclaim with interrupts off could walk no reverse map
    /// and swap nothing, so a `GFP_KERNEL` slab allocation under memory
    /// full of anonymous pages would end in the OOM killer. The slab then
    /// goes to the CPU the task is on by now, as its cpu slab if that has
    /// none, else to the node's partial list.
    #[inline(never)]
    fn refill_cpu_slab(&self, s: &KmemCache, c: &KmemCacheCpu, gfp: Gfp) -> Option<()> {
        let refilled = self.pgdat.with_irqs_off(|| {
            let mut partial = c.lock.lock();
            if c.freelist_tid.freelist() != 0 {
                // An interrupt refilled it before interrupts went off.
                return true;
            }
            let mut n = s.node.lock();
            if let Some(slab) = c.slab() {
                let remote = self.slab_freelist(slab);
                if remote != 0 {
                    let (inuse, _) = self.counters(slab);
                    self.set_slab_freelist(slab, 0);
                    self.set_counters(slab, s.objects, SlabState::CpuSlab);
                    self.install_freelist_locked(s, c, remote, s.objects - inuse);
                    return true;
                }
                // Full: untracked (Linux), until a free makes it partial again.
                self.set_counters(slab, s.objects, SlabState::NodeFull);
                c.set_slab_locked(None);
            }
            let Some(slab) = partial.pop_front(self.map()).or_else(|| n.partial.pop_front(self.map())) else {
                return false;
            };
            let (inuse, _) = self.counters(slab);
            let head = self.slab_freelist(slab);
            self.set_slab_freelist(slab, 0);
            self.set_counters(slab, s.objects, SlabState::CpuSlab);
            self.install_freelist_locked(s, c, head, s.objects - inuse);
            c.set_slab_locked(Some(slab));
            true
        });
        if refilled {
            return Some(());
        }
        let (slab, head) = self.allocate_slab(s, gfp)?;
        self.pgdat.with_irqs_off(|| {
            let c = self.this_cpu_slab(s);
            let _partial = c.lock.lock();
            let mut n = s.node.lock();
            n.nr_slabs += 1;
            if c.freelist_tid.freelist() == 0 && c.slab().is_none() {
                drop(n);
                self.set_counters(slab, s.objects, SlabState::CpuSlab);
                self.install_freelist_locked(s, c, head, s.objects);
                c.set_slab_locked(Some(slab));
            } else {
                // Refilled while the pages were allocated.
                self.set_slab_freelist(slab, head);
                self.set_counters(slab, 0, SlabState::NodePartial);
                n.partial.push_back(self.map(), slab);
            }
        });
        Some(())
    }

    /// Makes `head` (`nr` objects) the cpu freelist; the caller holds the
    /// CPU's lock and found the freelist empty. Should an object have been
    /// linked in since, `head`'s list goes in front of it (see the module
    /// doc).
    fn install_freelist_locked(&self, s: &KmemCache, c: &KmemCacheCpu, head: u64, nr: u32) {
        let mut tail = 0;
        loop {
            let counter = c.freelist_tid.counter();
            let cur = c.freelist_tid.freelist();
            if cur != 0 {
                if tail == 0 {
                    tail = head;
                    while self.get_freepointer(s, tail) != 0 {
                        tail = self.get_freepointer(s, tail);
                    }
                }
                self.set_freepointer(s, tail, cur);
            }
            let next = counter.wrapping_add(TID_STEP + u64::from(nr));
            if c.freelist_tid.try_cmpxchg((cur, counter), (head, next)) {
                return;
            }
        }
    }

    /// The free pointer of `obj` as the fast path reads it: `obj` was the
    /// freelist head a moment ago and may have been allocated and written
    /// since (by an interrupt), so the value may be garbage, which the
    /// failing exchange then discards (Linux `get_freepointer_safe`).
    #[inline(always)]
    fn get_freepointer_racy(&self, s: &KmemCache, obj: u64) -> u64 {
        // SAFETY: `obj` is an object a freelist held, so `obj + offset` is
        // an aligned word of a slab page, in the direct map, which stays
        // mapped even if the slab has been freed since; the value is only
        // trusted if the exchange that follows succeeds.
        unsafe { raw::read_word_racy(obj + u64::from(s.offset)) }
    }

    /// [`SlubCtx::alloc_debug`] with interrupts off, out of the fast
    /// path's way.
    #[cold]
    #[inline(never)]
    fn alloc_debug_irqs_off(&self, s: &KmemCache, gfp: Gfp, caller: &'static Location<'static>) -> Option<u64> {
        self.pgdat.with_irqs_off(|| self.alloc_debug(s, gfp, caller))
    }

    /// [`SlubCtx::free_debug`] with interrupts off, out of the fast path's
    /// way.
    #[cold]
    #[inline(never)]
    fn free_debug_irqs_off(
        &self,
        s: &KmemCache,
        slab: Pfn,
        obj: u64,
        caller: &'static Location<'static>,
    ) -> Result<(), SlabError> {
        self.pgdat.with_irqs_off(|| self.free_debug(s, slab, obj, caller))
    }

    /// Frees an object (Linux `slab_free`). The pointer was checked by
    /// `slab_of` or `check_object_start`.
    #[inline(always)]
    pub(crate) fn free(
        &self,
        s: &KmemCache,
        slab: Pfn,
        obj: u64,
        caller: &'static Location<'static>,
    ) -> Result<(), SlabError> {
        if s.debug() {
            return self.free_debug_irqs_off(s, slab, obj, caller);
        }
        let c = self.this_cpu_slab(s);
        loop {
            let counter = c.freelist_tid.counter();
            if !c.is_cpu_slab(slab) {
                return self.free_slow(s, c, slab, obj);
            }
            let head = c.freelist_tid.freelist();
            if obj == head {
                return Err(self.double_free(s, obj));
            }
            self.set_freepointer(s, obj, head);
            #[cfg(test)]
            tests::interrupt_window();
            // One transaction more, one object more.
            if c.freelist_tid.try_cmpxchg((head, counter), (obj, counter.wrapping_add(TID_STEP + 1))) {
                return Ok(());
            }
        }
    }

    /// Reports a double free the fast path caught (Linux's
    /// `set_freepointer` check under `CONFIG_SLAB_FREELIST_HARDENED`).
    #[cold]
    #[inline(never)]
    fn double_free(&self, s: &KmemCache, obj: u64) -> SlabError {
        self.report(s, SlabError::DoubleFree { addr: obj, cache: s.name }, obj)
    }

    /// Linux `__slab_free`: onto the slab's own freelist under the node
    /// lock, moving the slab between lists as it stops being full or
    /// becomes empty.
    #[inline(never)]
    fn free_slow(&self, s: &KmemCache, c: &KmemCacheCpu, slab: Pfn, obj: u64) -> Result<(), SlabError> {
        self.pgdat.with_irqs_off(|| {
            let mut partial = c.lock.lock();
            let mut n = s.node.lock();
            let prior = self.slab_freelist(slab);
            if obj == prior {
                return Err(self.report(s, SlabError::DoubleFree { addr: obj, cache: s.name }, obj));
            }
            let (inuse, state) = self.counters(slab);
            self.set_freepointer(s, obj, prior);
            self.set_slab_freelist(slab, obj);
            let inuse = inuse - 1;
            let state = match state {
                x if x == SlabState::NodeFull as u64 => {
                    // Newly partial: keep it close, on this CPU's partial list.
                    partial.push_front(self.map(), slab);
                    self.set_counters(slab, inuse, SlabState::CpuPartial);
                    if partial.len() > u64::from(s.cpu_partial_slabs) {
                        self.put_partials(s, &mut partial, &mut n);
                    }
                    return Ok(());
                }
                x if x == SlabState::NodePartial as u64 => SlabState::NodePartial,
                x if x == SlabState::CpuPartial as u64 => SlabState::CpuPartial,
                _ => SlabState::CpuSlab,
            };
            self.set_counters(slab, inuse, state);
            if state == SlabState::NodePartial && inuse == 0 && n.partial.len() > s.min_partial {
                n.partial.remove(self.map(), slab);
                n.nr_slabs -= 1;
                drop(n);
                self.discard_slab(s, slab);
            }
            Ok(())
        })
    }

    /// Linux `__put_partials`: moves a CPU's partial slabs to the node,
    /// discarding empty ones beyond `min_partial`.
    fn put_partials(&self, s: &KmemCache, partial: &mut PageList, n: &mut KmemCacheNode) {
        while let Some(slab) = partial.pop_front(self.map()) {
            let (inuse, _) = self.counters(slab);
            if inuse == 0 && n.partial.len() >= s.min_partial {
                n.nr_slabs -= 1;
                self.discard_slab(s, slab);
            } else {
                self.set_counters(slab, inuse, SlabState::NodePartial);
                n.partial.push_back(self.map(), slab);
            }
        }
    }

    /// Returns a CPU's slab and partial slabs to the node (Linux
    /// `flush_cpu_slab` / `deactivate_slab`), from any CPU: the cpu slab is
    /// cleared before the freelist is taken (see the module doc).
    pub(crate) fn flush_cpu(&self, s: &KmemCache, cpu: usize) {
        let Some(c) = s.cpu.get(cpu) else { return };
        self.pgdat.with_irqs_off(|| {
            let mut partial = c.lock.lock();
            let mut n = s.node.lock();
            if let Some(slab) = c.slab() {
                c.set_slab_locked(None);
                let (mut obj, _) = c.take_freelist_locked();
                let (mut inuse, _) = self.counters(slab);
                while obj != 0 {
                    let next = self.get_freepointer(s, obj);
                    self.set_freepointer(s, obj, self.slab_freelist(slab));
                    self.set_slab_freelist(slab, obj);
                    inuse -= 1;
                    obj = next;
                }
                if inuse == s.objects {
                    self.set_counters(slab, inuse, SlabState::NodeFull);
                } else {
                    self.set_counters(slab, inuse, SlabState::NodePartial);
                    n.partial.push_back(self.map(), slab);
                }
            }
            self.put_partials(s, &mut partial, &mut n);
        });
    }

    /// Discards every empty slab on the node partial list (Linux
    /// `__kmem_cache_do_shrink`); returns the slabs freed.
    pub(crate) fn discard_empty(&self, s: &KmemCache) -> u64 {
        let mut freed = 0;
        loop {
            let victim = self.pgdat.with_irqs_off(|| {
                let mut n = s.node.lock();
                let slab = n.partial.iter(self.map()).find(|&slab| self.counters(slab).0 == 0)?;
                n.partial.remove(self.map(), slab);
                n.nr_slabs -= 1;
                Some(slab)
            });
            let Some(slab) = victim else { return freed };
            self.pgdat.with_irqs_off(|| self.discard_slab(s, slab));
            freed += 1;
        }
    }

    /// Slabs of the cache, all of them.
    pub(crate) fn nr_slabs(&self, s: &KmemCache) -> u64 {
        self.pgdat.with_irqs_off(|| s.node.lock().nr_slabs)
    }

    /// Linux `get_slabinfo`: figures for /proc/slabinfo. Each CPU and the
    /// node are read under their own lock in turn, so the figures are exact
    /// only while the cache is quiet (as in Linux).
    pub(crate) fn slabinfo(&self, s: &KmemCache) -> SlabInfo {
        self.pgdat.with_irqs_off(|| {
            let mut inuse = 0u64;
            let mut cpu_free = 0u64;
            let mut seen = 0u64;
            for c in s.cpu.iter() {
                let partial = c.lock.lock();
                cpu_free += u64::from(c.nr_free());
                for slab in c.slab().into_iter().chain(partial.iter(self.map())) {
                    inuse += u64::from(self.counters(slab).0);
                    seen += 1;
                }
            }
            let n = s.node.lock();
            let mut empty = 0;
            for slab in n.partial.iter(self.map()) {
                let used = self.counters(slab).0;
                inuse += u64::from(used);
                empty += u64::from(used == 0);
                seen += 1;
            }
            // Full slabs, on the debug caches' full list or untracked.
            inuse += n.nr_slabs.saturating_sub(seen) * u64::from(s.objects);
            SlabInfo {
                active_objs: inuse - cpu_free,
                num_objs: n.nr_slabs * u64::from(s.objects),
                objsize: s.size,
                objperslab: s.objects,
                pagesperslab: 1 << s.order,
                active_slabs: n.nr_slabs - empty,
                num_slabs: n.nr_slabs,
            }
        })
    }

    /// Linux `validate_slab_cache`: flushes the other CPUs' slabs to the
    /// node (their freelists change under their lockless fast paths, so
    /// only their owners may walk them), then checks every tracked slab of
    /// the cache (full slabs only in debug caches) — its page is a slab of
    /// this cache in the state its list says, its freelist stays inside it
    /// without cycles and matches its in-use count, this CPU's freelist
    /// matches its count, the slab count matches, and for red-zoned caches
    /// every object's red zones match its state. Returns the slabs checked;
    /// the first problem is reported and returned.
    pub(crate) fn validate(&self, s: &KmemCache) -> Result<u64, SlabError> {
        let this_cpu = self.pgdat.cpu().cpu_id() as usize;
        for cpu in (0..s.cpu.len()).filter(|&cpu| cpu != this_cpu) {
            self.flush_cpu(s, cpu);
        }
        self.pgdat.with_irqs_off(|| {
            let mut slabs = 0;
            for (cpu, c) in s.cpu.iter().enumerate() {
                let partial = c.lock.lock();
                let _n = s.node.lock();
                if let Some(slab) = c.slab() {
                    // Another CPU may have taken a slab again since its
                    // flush: its freelist is its own.
                    let freelist = if cpu == this_cpu { c.freelist_tid.freelist() } else { 0 };
                    if cpu == this_cpu && self.walk_freelist(s, slab, freelist)? != u64::from(c.nr_free()) {
                        return Err(self.invalid(s, freelist));
                    }
                    self.check_slab(s, slab, SlabState::CpuSlab, freelist)?;
                    slabs += 1;
                }
                for slab in partial.iter(self.map()) {
                    self.check_slab(s, slab, SlabState::CpuPartial, 0)?;
                    slabs += 1;
                }
            }
            let n = s.node.lock();
            for (list, state) in [(&n.partial, SlabState::NodePartial), (&n.full, SlabState::NodeFull)] {
                for slab in list.iter(self.map()) {
                    self.check_slab(s, slab, state, 0)?;
                    slabs += 1;
                }
            }
            // Non-debug caches do not track full slabs (Linux): those are
            // only counted.
            if slabs > n.nr_slabs || (s.debug() && slabs != n.nr_slabs) {
                return Err(self.invalid(s, 0));
            }
            Ok(slabs)
        })
    }

    fn invalid(&self, s: &KmemCache, addr: u64) -> SlabError {
        self.report(s, SlabError::InvalidPointer { addr, cache: s.name }, addr)
    }

    /// Counts a freelist starting at `head`, every entry an object of
    /// `slab`, at most one pass over the slab's objects.
    fn walk_freelist(&self, s: &KmemCache, slab: Pfn, head: u64) -> Result<u64, SlabError> {
        let mut count = 0;
        let mut cursor = head;
        while cursor != 0 {
            if count >= u64::from(s.objects) || self.slab_of(s, cursor) != Ok(slab) {
                return Err(self.invalid(s, cursor));
            }
            count += 1;
            cursor = self.get_freepointer(s, cursor);
        }
        Ok(count)
    }

    fn check_slab(&self, s: &KmemCache, slab: Pfn, state: SlabState, cpu_freelist: u64) -> Result<(), SlabError> {
        let base = self.slab_base(slab);
        let page = self.map().pfn_to_page(slab).ok_or(SlabError::NotSlabObject { addr: base })?;
        let (inuse, found_state) = self.counters(slab);
        if !page.test(PageFlags::SLAB) || page.mapping() != s as *const KmemCache as u64 || found_state != state as u64
        {
            return Err(self.invalid(s, base));
        }
        let free = self.walk_freelist(s, slab, self.slab_freelist(slab))?;
        if free != u64::from(s.objects - inuse.min(s.objects)) || inuse > s.objects {
            return Err(self.invalid(s, base));
        }
        if !s.flags.contains(SlabFlags::RED_ZONE) {
            return Ok(());
        }
        // Mark the free objects, then check every object's red zones.
        let mut is_free = [0u64; 128];
        for head in [self.slab_freelist(slab), cpu_freelist] {
            let mut cursor = head;
            while cursor != 0 {
                let index = ((cursor - base - u64::from(s.red_left_pad)) / u64::from(s.size)) as usize;
                if let Some(word) = is_free.get_mut(index / 64) {
                    *word |= 1 << (index % 64);
                }
                cursor = self.get_freepointer(s, cursor);
            }
        }
        for index in 0..s.objects as usize {
            let obj = base + u64::from(s.red_left_pad) + index as u64 * u64::from(s.size);
            let free = is_free.get(index / 64).is_some_and(|w| w & (1 << (index % 64)) != 0);
            let expect = if free { SLUB_RED_INACTIVE } else { SLUB_RED_ACTIVE };
            if let Some((at, found)) = self.check_redzones(s, obj, expect) {
                return Err(self.report(s, SlabError::RedzoneOverwritten { addr: obj, cache: s.name, at, found }, obj));
            }
        }
        Ok(())
    }

    // ---- Debug caches (slub_debug): every operation under the node lock.

    /// Linux `alloc_single_from_partial` / `alloc_single_from_new_slab`
    /// with `alloc_debug_processing`.
    fn alloc_debug(&self, s: &KmemCache, gfp: Gfp, caller: &'static Location<'static>) -> Option<u64> {
        let mut n = s.node.lock();
        loop {
            let slab = match n.partial.front() {
                Some(slab) => slab,
                None => {
                    drop(n);
                    let (slab, head) = self.allocate_slab(s, gfp)?;
                    n = s.node.lock();
                    self.set_slab_freelist(slab, head);
                    self.set_counters(slab, 0, SlabState::NodePartial);
                    n.partial.push_front(self.map(), slab);
                    n.nr_slabs += 1;
                    slab
                }
            };
            let obj = self.slab_freelist(slab);
            let (inuse, _) = self.counters(slab);
            if let Err(e) = self.check_free_object(s, slab, obj) {
                // Linux: "Marking all objects used" - the slab is taken out
                // of use with whatever it holds.
                self.report(s, e, obj);
                self.set_slab_freelist(slab, 0);
                self.set_counters(slab, s.objects, SlabState::NodeFull);
                n.partial.remove(self.map(), slab);
                n.full.push_front(self.map(), slab);
                continue;
            }
            let next = self.get_freepointer(s, obj);
            self.set_slab_freelist(slab, next);
            if next == 0 {
                n.partial.remove(self.map(), slab);
                n.full.push_front(self.map(), slab);
                self.set_counters(slab, inuse + 1, SlabState::NodeFull);
            } else {
                self.set_counters(slab, inuse + 1, SlabState::NodePartial);
            }
            self.init_object(s, obj, SLUB_RED_ACTIVE);
            if s.flags.contains(SlabFlags::POISON) && s.ctor.is_none() && !gfp.contains(Gfp::ZERO) {
                // SAFETY: `obj` was just taken off the freelist under the
                // node lock; it is this caller's.
                unsafe { raw::bytes(obj, s.object_size) }.fill(POISON_INUSE);
            }
            self.set_track(s, obj, 0, caller);
            return Some(obj);
        }
    }

    /// Linux `free_debug_processing` and `free_to_partial_list`.
    fn free_debug(
        &self,
        s: &KmemCache,
        slab: Pfn,
        obj: u64,
        caller: &'static Location<'static>,
    ) -> Result<(), SlabError> {
        let mut n = s.node.lock();
        if s.flags.contains(SlabFlags::CONSISTENCY_CHECKS) && self.on_freelist(s, slab, obj) {
            return Err(self.report(s, SlabError::DoubleFree { addr: obj, cache: s.name }, obj));
        }
        if let Some((at, found)) =
            s.flags.contains(SlabFlags::RED_ZONE).then(|| self.check_redzones(s, obj, SLUB_RED_ACTIVE)).flatten()
        {
            let e = if found == SLUB_RED_INACTIVE && !s.flags.contains(SlabFlags::CONSISTENCY_CHECKS) {
                SlabError::DoubleFree { addr: obj, cache: s.name }
            } else {
                SlabError::RedzoneOverwritten { addr: obj, cache: s.name, at, found }
            };
            // The object stays allocated: leaked, out of use.
            return Err(self.report(s, e, obj));
        }
        self.set_track(s, obj, 1, caller);
        self.init_object(s, obj, SLUB_RED_INACTIVE);
        let (inuse, state) = self.counters(slab);
        let prior = self.slab_freelist(slab);
        self.set_freepointer(s, obj, prior);
        self.set_slab_freelist(slab, obj);
        let inuse = inuse - 1;
        if state == SlabState::NodeFull as u64 {
            n.full.remove(self.map(), slab);
            n.partial.push_front(self.map(), slab);
        }
        self.set_counters(slab, inuse, SlabState::NodePartial);
        if inuse == 0 && n.partial.len() > s.min_partial {
            n.partial.remove(self.map(), slab);
            n.nr_slabs -= 1;
            drop(n);
            self.discard_slab(s, slab);
        }
        Ok(())
    }

    /// Whether `obj` is on `slab`'s freelist (Linux `on_freelist`); the walk
    /// is bounded by the slab's object count, so a corrupted cycle ends.
    fn on_freelist(&self, s: &KmemCache, slab: Pfn, obj: u64) -> bool {
        let mut cursor = self.slab_freelist(slab);
        for _ in 0..s.objects {
            if cursor == 0 {
                return false;
            }
            if cursor == obj {
                return true;
            }
            if self.slab_of(s, cursor).is_err() {
                return false;
            }
            cursor = self.get_freepointer(s, cursor);
        }
        false
    }

    /// Writes red zones (`val`) and, for a free object, poison (Linux
    /// `init_object`).
    fn init_object(&self, s: &KmemCache, obj: u64, val: u8) {
        if s.flags.contains(SlabFlags::RED_ZONE) {
            let pad = u64::from(s.red_left_pad);
            // SAFETY: the red zones are metadata of an object the caller
            // owns (allocating, freeing or building it under the lock).
            unsafe {
                raw::bytes(obj - pad, s.red_left_pad).fill(val);
                raw::bytes(obj + u64::from(s.object_size), s.inuse - s.object_size).fill(val);
            }
        }
        if val == SLUB_RED_INACTIVE && s.flags.contains(SlabFlags::POISON) && s.ctor.is_none() {
            // SAFETY: as above; the object is being freed or built.
            let bytes = unsafe { raw::bytes(obj, s.object_size) };
            bytes.fill(POISON_FREE);
            if let Some(last) = bytes.last_mut() {
                *last = POISON_END;
            }
        }
    }

    /// The first red-zone byte that is not `val` (Linux `check_bytes` on
    /// both red zones).
    fn check_redzones(&self, s: &KmemCache, obj: u64, val: u8) -> Option<(u64, u8)> {
        let pad = u64::from(s.red_left_pad);
        let right = obj + u64::from(s.object_size);
        // SAFETY: red zones of an object of a live slab, read under the
        // node lock.
        let (left_bytes, right_bytes) =
            unsafe { (raw::bytes(obj - pad, s.red_left_pad), raw::bytes(right, s.inuse - s.object_size)) };
        let bad = |base: u64, bytes: &[u8]| bytes.iter().position(|&b| b != val).map(|i| (base + i as u64, bytes[i]));
        bad(obj - pad, left_bytes).or_else(|| bad(right, right_bytes))
    }

    /// Checks a free object before handing it out (Linux `check_object`
    /// with `SLUB_RED_INACTIVE`): a valid pointer, red zones inactive,
    /// poison intact.
    fn check_free_object(&self, s: &KmemCache, slab: Pfn, obj: u64) -> Result<(), SlabError> {
        match self.slab_of(s, obj) {
            Ok(owner) if owner == slab => {}
            _ => return Err(SlabError::InvalidPointer { addr: obj, cache: s.name }),
        }
        if let Some((at, found)) =
            s.flags.contains(SlabFlags::RED_ZONE).then(|| self.check_redzones(s, obj, SLUB_RED_INACTIVE)).flatten()
        {
            return Err(SlabError::RedzoneOverwritten { addr: obj, cache: s.name, at, found });
        }
        if s.flags.contains(SlabFlags::POISON) && s.ctor.is_none() {
            // SAFETY: a free object of a live slab, read under the node lock.
            let bytes = unsafe { raw::bytes(obj, s.object_size) };
            let last = bytes.len() - 1;
            let free_pointer_inside = s.offset < s.object_size;
            let bad = bytes.iter().enumerate().position(|(i, &b)| {
                let in_fp = free_pointer_inside && (i as u32) >= s.offset && (i as u32) < s.offset + WORD;
                !in_fp && b != if i == last { POISON_END } else { POISON_FREE }
            });
            if let Some(i) = bad {
                return Err(SlabError::PoisonOverwritten {
                    addr: obj,
                    cache: s.name,
                    at: obj + i as u64,
                    found: bytes[i],
                });
            }
        }
        Ok(())
    }

    fn clear_tracks(&self, s: &KmemCache, obj: u64) {
        for which in 0..2 {
            let at = obj + u64::from(s.track_offset + which * TRACK_SIZE);
            for word in 0..3 {
                // SAFETY: track metadata of an object being built.
                unsafe { raw::write_word(at + word * 8, 0) };
            }
        }
    }

    /// Records a call site (Linux `set_track`): 0 alloc, 1 free.
    fn set_track(&self, s: &KmemCache, obj: u64, which: u32, caller: &'static Location<'static>) {
        if !s.flags.contains(SlabFlags::STORE_USER) {
            return;
        }
        let at = obj + u64::from(s.track_offset + which * TRACK_SIZE);
        let loc = caller as *const Location<'static> as u64;
        // SAFETY: track metadata of an object the caller owns.
        unsafe {
            raw::write_word(at, loc);
            raw::write_word(at + 8, loc ^ TRACK_MAGIC);
            raw::write_word(at + 16, u64::from(self.pgdat.cpu().cpu_id()));
        }
    }

    /// A stored call site, if intact.
    fn track(&self, s: &KmemCache, obj: u64, which: u32) -> Option<(&'static Location<'static>, u64)> {
        if !s.flags.contains(SlabFlags::STORE_USER) {
            return None;
        }
        let at = obj + u64::from(s.track_offset + which * TRACK_SIZE);
        // SAFETY: track metadata of an object of a live slab.
        let (loc, check, cpu) = unsafe { (raw::read_word(at), raw::read_word(at + 8), raw::read_word(at + 16)) };
        if loc == 0 || loc ^ TRACK_MAGIC != check {
            return None;
        }
        // SAFETY: `loc` passed the check word, so `set_track` wrote it from
        // a `&'static Location`.
        Some((unsafe { &*(loc as *const Location<'static>) }, cpu))
    }

    /// Prints a report in Linux's slab_err/object_err shape, counts it and
    /// applies the corruption policy. Returns the error for the caller.
    pub(crate) fn report(&self, s: &KmemCache, e: SlabError, obj: u64) -> SlabError {
        s.errors.fetch_add(1, Relaxed);
        self.errors.fetch_add(1, Relaxed);
        error!("=============================================================================");
        error!("{e}");
        error!("-----------------------------------------------------------------------------");
        if self.slab_of(s, obj).is_ok() {
            for (which, what) in [(0, "Allocated"), (1, "Freed")] {
                if let Some((loc, cpu)) = self.track(s, obj, which) {
                    error!("{what} at {loc} cpu={cpu}");
                }
            }
        }
        error!("Object {obj:#x} in cache {} (object size {}, slot {})", s.name, s.object_size, s.size);
        if self.panic_on_error {
            panic!("slab corruption in {}: {e}", s.name);
        }
        error!("FIX {}: object {obj:#x} taken out of use", s.name);
        e
    }
}

#[cfg(test)]
mod tests;
