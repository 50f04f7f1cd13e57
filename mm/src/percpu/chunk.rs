//! The dynamic per-CPU area allocator: chunks of units and their
//! allocation bitmaps (Linux `mm/percpu.c`, the `pcpu_alloc()` /
//! `free_percpu()` half).
//!
//! # Model
//!
//! Per-CPU memory is split in **chunks**. A chunk is `nr_units` **units**
//! of `unit_size` bytes laid out contiguously: unit `u` of a chunk is at
//! `chunk_base + u * unit_size`, and unit `u` belongs to CPU `u`. Every
//! chunk has the same `unit_size` and `nr_units`, and an allocation takes
//! the same offset range in every unit of its chunk, so CPU `cpu`'s copy
//! of an allocation whose unit-0 address is `addr` is at
//! `addr + cpu * unit_size` ([`PcpuAllocator::per_cpu_ptr`]; our
//! `__per_cpu_offset[cpu]` is `cpu * unit_size` relative to unit 0, and the
//! kernel adds the rebasing of its static section itself). An allocation
//! is named by that unit-0 address, its **percpu address**.
//!
//! The **first chunk** is the caller's (the kernel takes it from memblock
//! at boot, Linux's embed first chunk); the first `static_size` bytes of
//! each of its units are the kernel's static per-CPU section, already in
//! use. Later chunks come from a [`PcpuBackend`] when no existing chunk
//! can satisfy a request, and go back to it when they are empty and
//! another chunk has at least as much free space.
//!
//! # Allocation maps
//!
//! A chunk tracks the space of one unit (all units mirror it) in
//! [`PCPU_MIN_ALLOC_SIZE`]-byte steps with Linux's two bitmaps:
//!
//! - `alloc_map`: bit `i` is set iff bytes `[4i, 4i + 4)` are allocated;
//! - `bound_map`, one bit longer: the boundaries of allocations. Bit `i`
//!   is set where an allocation starts and at the bit just past its end,
//!   so [`PcpuAllocator::free`] finds an allocation's size from its start
//!   alone (Linux `pcpu_free_area()`), and a start bit is what makes an
//!   address freeable.
//!
//! The static area of the first chunk is recorded as one allocation at
//! offset 0 that [`PcpuAllocator::free`] refuses to free (Linux marks it
//! the same way in `pcpu_alloc_first_chunk()`).
//!
//! # Allocation policy
//!
//! Sizes are rounded up to [`PCPU_MIN_ALLOC_SIZE`], alignments below it
//! raised to it. Chunks are tried in order of creation; within a chunk
//! the lowest offset whose `align`-aligned run of free bits is long
//! enough wins (first fit, Linux `pcpu_find_zero_area()`), found by a
//! word-at-a-time scan of `alloc_map`, `O(unit_size / 4)` bits per chunk.
//! Chunk bases are page aligned and `align <= PAGE_SIZE`, so an aligned
//! offset is an aligned address. When no chunk fits, the backend supplies
//! a new one (Linux `pcpu_create_chunk()`), and the allocation takes its
//! offset 0. The area is zeroed in every unit before it is returned, as
//! Linux's `pcpu_alloc()` does. A failed allocation changes nothing.
//!
//! # Invariants
//!
//! After every public method returns ([`PcpuAllocator::check`] verifies
//! all of them):
//!
//! 1. There are 1 to [`PCPU_MAX_CHUNKS`] chunks; the first is the
//!    caller's and is never freed. Every chunk base is page aligned, every
//!    chunk `[base, base + unit_size * nr_units)` lies in one canonical
//!    half, and no two chunks overlap.
//! 2. No `alloc_map` bit is set at or past the end of the unit.
//! 3. `bound_map` is exact: a bit is set iff an allocation starts or ends
//!    there, so every run of allocated bits starts and ends with a bound
//!    bit, splits into allocations only at bound bits, and free space
//!    holds no bound bit except at its edges.
//! 4. Each chunk's `free_bytes` is four times its clear `alloc_map` bits.
//! 5. The first chunk's static area is exactly one allocation at offset 0.
//! 6. At most one chunk is entirely free: the spare.
//!
//! # Locking
//!
//! Linux serializes allocators with `pcpu_alloc_mutex` and protects the
//! maps with the `pcpu_lock` spin lock. [`PcpuAllocator`] is a plain value
//! whose mutators take `&mut self`; the kernel keeps it behind one lock,
//! the "pcpu_lock". The backend is called with it held, so lock order is
//! `pcpu_lock -> backend (vmalloc) locks`, and the backend must never
//! allocate per-CPU memory.
//!
//! # Differences from Linux
//!
//! - **Units are CPUs.** No unit map, no NUMA groups: unit `u` is CPU `u`
//!   and units are contiguous in every chunk.
//! - **No slots and no block hints.** Linux files chunks in `pcpu_slot`
//!   lists by free space, tries the fullest first, and keeps per-block
//!   `contig_hint`s to skip scans; we scan chunks in creation order and
//!   scan their bitmaps in full. The hints are an optimization only.
//! - **Chunks are fully backed.** The backend returns mapped memory;
//!   there is no page population (`pcpu_populate_chunk()`), no
//!   `nr_empty_pop_pages`, no atomic allocation path, no reserved chunk
//!   for modules and no memcg accounting.
//! - **Freeing is checked.** Linux's `free_percpu()` trusts its pointer;
//!   we refuse, with [`PcpuError::NotAllocated`], any address that does
//!   not start a live allocation, the static area included.
//! - **Exact bound map.** Linux leaves stale bound bits in free space and
//!   clears them when the space is allocated again; we clear them when
//!   freeing, so invariant 3 can be checked.
//! - **Empty chunks go back at once.** Linux frees surplus empty chunks
//!   from `pcpu_balance_workfn()`, keeping one; [`PcpuAllocator::free`]
//!   does it before returning, with the same result.
//! - **Fixed metadata.** Up to [`PCPU_MAX_CHUNKS`] chunks of at most
//!   [`PCPU_MAX_UNIT_SIZE`]-byte units, with bitmaps in fixed arrays, since
//!   mm has no heap: a [`PcpuAllocator`] is about 64 KiB.

use core::fmt;

use crate::addr::{PAGE_SIZE, VirtAddr};

/// The allocation granule: sizes are rounded up to it and it is the
/// smallest alignment (Linux `PCPU_MIN_ALLOC_SIZE`).
pub const PCPU_MIN_ALLOC_SIZE: u64 = 4;
/// Chunks, the first included, the allocator can track.
pub const PCPU_MAX_CHUNKS: usize = 16;
/// The largest unit size; chunk bitmaps are sized for it.
pub const PCPU_MAX_UNIT_SIZE: u64 = 64 * 1024;

const BITS_PER_LONG: usize = u64::BITS as usize;
/// Bits of a unit of [`PCPU_MAX_UNIT_SIZE`] bytes.
const PCPU_MAX_MAP_BITS: usize = (PCPU_MAX_UNIT_SIZE / PCPU_MIN_ALLOC_SIZE) as usize;
const ALLOC_MAP_LONGS: usize = PCPU_MAX_MAP_BITS / BITS_PER_LONG;
/// One bit more than the alloc map, for the bound past the last granule.
const BOUND_MAP_LONGS: usize = PCPU_MAX_MAP_BITS / BITS_PER_LONG + 1;

/// Where chunks after the first come from (Linux `pcpu_create_chunk()` /
/// `pcpu_destroy_chunk()` of `mm/percpu-vm.c`, with vmalloc behind them).
///
/// # Safety
/// [`PcpuBackend::alloc_chunk`] must return the page-aligned base of
/// `bytes` bytes of zeroed, writable memory, mapped until it is passed to
/// [`PcpuBackend::free_chunk`] and used by nothing else meanwhile.
/// [`PcpuAllocator`] writes through it on that promise.
pub unsafe trait PcpuBackend {
    /// A new chunk of `bytes` bytes, or `None` when out of memory.
    fn alloc_chunk(&self, bytes: u64) -> Option<VirtAddr>;

    /// Takes back a chunk.
    ///
    /// # Safety
    /// `base` and `bytes` are those of an [`PcpuBackend::alloc_chunk`] of
    /// this backend not freed since; nothing uses the chunk afterwards.
    unsafe fn free_chunk(&self, base: VirtAddr, bytes: u64);
}

// SAFETY: forwards to `T`, which upholds the contract.
unsafe impl<T: PcpuBackend + ?Sized> PcpuBackend for &T {
    fn alloc_chunk(&self, bytes: u64) -> Option<VirtAddr> {
        (**self).alloc_chunk(bytes)
    }

    unsafe fn free_chunk(&self, base: VirtAddr, bytes: u64) {
        // SAFETY: the caller's promise, passed on.
        unsafe { (**self).free_chunk(base, bytes) }
    }
}

/// Why a per-CPU allocator operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcpuError {
    /// The size is 0.
    BadSize,
    /// The alignment is not a power of two, or above `PAGE_SIZE`.
    BadAlign,
    /// No chunk has room and no new chunk could be made: the backend
    /// failed, or there are [`PCPU_MAX_CHUNKS`] already. Nothing changed.
    NoMemory,
    /// The size is above the unit size: no chunk can ever hold it.
    TooLarge,
    /// [`PcpuAllocator::new`] was given an unusable first chunk.
    BadFirstChunk,
    /// No live allocation starts at this address: a double free, an
    /// interior or foreign pointer, or the static area. Nothing changed.
    NotAllocated(VirtAddr),
}

impl fmt::Display for PcpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PcpuError::BadSize => f.write_str("illegal size (0) for percpu allocation"),
            PcpuError::BadAlign => {
                f.write_str("illegal align for percpu allocation: not a power of two up to PAGE_SIZE")
            }
            PcpuError::NoMemory => f.write_str("percpu: allocation failed, no chunk has room and none can be added"),
            PcpuError::TooLarge => f.write_str("illegal size for percpu allocation: larger than a unit"),
            PcpuError::BadFirstChunk => f.write_str("percpu: invalid first chunk"),
            PcpuError::NotAllocated(addr) => {
                write!(f, "percpu: free of unallocated address {:#x}", addr.as_u64())
            }
        }
    }
}

/// An invariant [`PcpuAllocator::check`] found broken (numbered in the
/// module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcpuCheckError {
    /// Invariant 1: the chunk count is 0 or above [`PCPU_MAX_CHUNKS`].
    BadChunkCount {
        /// Stored count.
        nr_chunks: usize,
    },
    /// Invariant 1: a chunk base is not page aligned, or the chunk does
    /// not lie in one canonical half.
    BadChunkBase {
        /// Index of the chunk, in creation order.
        chunk: usize,
        /// Its base.
        base: VirtAddr,
    },
    /// Invariant 1: two chunks overlap.
    ChunkOverlap {
        /// The older chunk.
        chunk: usize,
        /// The newer chunk.
        other: usize,
    },
    /// Invariant 2: an `alloc_map` bit is set past the end of the unit.
    AllocPastEnd {
        /// The chunk.
        chunk: usize,
        /// The bit.
        bit: usize,
    },
    /// Invariant 3: `bound_map` disagrees with `alloc_map` at this bit.
    BadBound {
        /// The chunk.
        chunk: usize,
        /// The bit.
        bit: usize,
    },
    /// Invariant 4: a chunk's free-byte counter is wrong.
    BadFreeBytes {
        /// The chunk.
        chunk: usize,
        /// Stored value.
        stored: u64,
        /// Recounted value.
        computed: u64,
    },
    /// Invariant 5: the static area is not one allocation at offset 0.
    BadStaticArea,
    /// Invariant 6: a second entirely free chunk was kept.
    SurplusEmptyChunk {
        /// The second entirely free chunk.
        chunk: usize,
    },
}

impl fmt::Display for PcpuCheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PcpuCheckError::BadChunkCount { nr_chunks } => write!(f, "percpu: {nr_chunks} chunks"),
            PcpuCheckError::BadChunkBase { chunk, base } => {
                write!(f, "percpu: chunk {chunk}: bad base {:#x}", base.as_u64())
            }
            PcpuCheckError::ChunkOverlap { chunk, other } => write!(f, "percpu: chunks {chunk} and {other} overlap"),
            PcpuCheckError::AllocPastEnd { chunk, bit } => {
                write!(f, "percpu: chunk {chunk}: alloc_map bit {bit} past the end of the unit")
            }
            PcpuCheckError::BadBound { chunk, bit } => {
                write!(f, "percpu: chunk {chunk}: bound_map disagrees with alloc_map at bit {bit}")
            }
            PcpuCheckError::BadFreeBytes { chunk, stored, computed } => {
                write!(f, "percpu: chunk {chunk}: free_bytes {stored}, should be {computed}")
            }
            PcpuCheckError::BadStaticArea => f.write_str("percpu: the static area is not one allocation at offset 0"),
            PcpuCheckError::SurplusEmptyChunk { chunk } => {
                write!(f, "percpu: chunk {chunk} is a second entirely free chunk")
            }
        }
    }
}

/// Whether bit `bit` of `map` is set (Linux `test_bit()`).
fn test_bit(map: &[u64], bit: usize) -> bool {
    map[bit / BITS_PER_LONG] & (1 << (bit % BITS_PER_LONG)) != 0
}

/// Sets or clears bits `[start, start + len)` of `map` a word at a time
/// (Linux `bitmap_set()` / `bitmap_clear()`).
fn bitmap_assign(map: &mut [u64], start: usize, len: usize, value: bool) {
    let end = start + len;
    let mut bit = start;
    while bit < end {
        let word = bit / BITS_PER_LONG;
        let lo = bit % BITS_PER_LONG;
        let hi = (end - word * BITS_PER_LONG).min(BITS_PER_LONG);
        let mask = (u64::MAX >> (BITS_PER_LONG - (hi - lo))) << lo;
        if value {
            map[word] |= mask;
        } else {
            map[word] &= !mask;
        }
        bit = word * BITS_PER_LONG + hi;
    }
}

/// The first bit at or after `start` and below `size` that differs from
/// `skip`, or `size` (Linux `find_next_bit()` for `skip == false`,
/// `find_next_zero_bit()` for `skip == true`).
fn find_next(map: &[u64], size: usize, start: usize, skip: bool) -> usize {
    let invert = if skip { u64::MAX } else { 0 };
    let mut bit = start;
    while bit < size {
        let word = (map[bit / BITS_PER_LONG] ^ invert) >> (bit % BITS_PER_LONG);
        if word != 0 {
            return (bit + word.trailing_zeros() as usize).min(size);
        }
        bit = (bit / BITS_PER_LONG + 1) * BITS_PER_LONG;
    }
    size
}

/// Linux `find_next_bit()`.
fn find_next_bit(map: &[u64], size: usize, start: usize) -> usize {
    find_next(map, size, start, false)
}

/// Linux `find_next_zero_bit()`.
fn find_next_zero_bit(map: &[u64], size: usize, start: usize) -> usize {
    find_next(map, size, start, true)
}

/// One chunk's metadata (Linux `struct pcpu_chunk`); its memory is the
/// caller's (the first chunk) or the backend's.
#[doc(alias = "pcpu_chunk")]
struct PcpuChunk {
    /// Unit 0's first byte.
    base_addr: VirtAddr,
    /// Free bytes per unit.
    free_bytes: u64,
    alloc_map: [u64; ALLOC_MAP_LONGS],
    bound_map: [u64; BOUND_MAP_LONGS],
}

impl PcpuChunk {
    const EMPTY: PcpuChunk = PcpuChunk {
        base_addr: VirtAddr::expect_canonical(0),
        free_bytes: 0,
        alloc_map: [0; ALLOC_MAP_LONGS],
        bound_map: [0; BOUND_MAP_LONGS],
    };

    /// Makes this slot an entirely free chunk at `base_addr` with
    /// `nr_bits` bits per unit, in place (the maps are 4 KiB).
    fn init(&mut self, base_addr: VirtAddr, nr_bits: usize) {
        self.base_addr = base_addr;
        self.free_bytes = nr_bits as u64 * PCPU_MIN_ALLOC_SIZE;
        self.alloc_map.fill(0);
        self.bound_map.fill(0);
    }

    /// The lowest `bit_align`-aligned run of `bits` free bits below
    /// `nr_bits` (Linux `pcpu_find_zero_area()` without block hints).
    fn find_zero_area(&self, nr_bits: usize, bits: usize, bit_align: usize) -> Option<usize> {
        let mut start = 0;
        loop {
            // Aligned positions below the next free bit are busy; aligned
            // positions up to a busy bit inside the candidate run all
            // cover that bit, so the search resumes past it.
            let bit_off = find_next_zero_bit(&self.alloc_map, nr_bits, start).next_multiple_of(bit_align);
            let end = bit_off + bits;
            if end > nr_bits {
                return None;
            }
            let busy = find_next_bit(&self.alloc_map, end, bit_off);
            if busy == end {
                return Some(bit_off);
            }
            start = busy + 1;
        }
    }

    /// Marks `[bit_off, bit_off + bits)` allocated (Linux
    /// `pcpu_alloc_area()`'s map update). The bits are free, so by
    /// invariant 3 no bound bit lies strictly inside them.
    fn alloc_area(&mut self, bit_off: usize, bits: usize) {
        bitmap_assign(&mut self.alloc_map, bit_off, bits, true);
        bitmap_assign(&mut self.bound_map, bit_off, 1, true);
        bitmap_assign(&mut self.bound_map, bit_off + bits, 1, true);
        self.free_bytes -= bits as u64 * PCPU_MIN_ALLOC_SIZE;
    }

    /// Frees the allocation starting at `bit_off`; returns its length in
    /// bits (Linux `pcpu_free_area()`). Its boundaries are cleared unless
    /// a neighbouring allocation still needs them.
    fn free_area(&mut self, bit_off: usize, nr_bits: usize) -> usize {
        let end = find_next_bit(&self.bound_map, nr_bits + 1, bit_off + 1);
        let bits = end - bit_off;
        bitmap_assign(&mut self.alloc_map, bit_off, bits, false);
        if bit_off == 0 || !test_bit(&self.alloc_map, bit_off - 1) {
            bitmap_assign(&mut self.bound_map, bit_off, 1, false);
        }
        if end == nr_bits || !test_bit(&self.alloc_map, end) {
            bitmap_assign(&mut self.bound_map, end, 1, false);
        }
        self.free_bytes += bits as u64 * PCPU_MIN_ALLOC_SIZE;
        bits
    }

    /// Invariants 2 to 4 for chunk number `chunk`.
    fn check(&self, chunk: usize, nr_bits: usize) -> Result<(), PcpuCheckError> {
        let mut allocated = 0;
        // Word `w` of the bound map against the alloc map's bits
        // `i` ("a") and `i - 1` ("prev") for each of its bits `i`: a bound
        // bit is required where they differ (a start or an end) and
        // allowed only where one is set.
        let mut carry = 0;
        for (word, &bound) in self.bound_map.iter().enumerate() {
            let a = self.alloc_map.get(word).copied().unwrap_or(0);
            let first = word * BITS_PER_LONG;
            let past_end =
                if nr_bits <= first { a } else { a & u64::MAX.checked_shl((nr_bits - first) as u32).unwrap_or(0) };
            if past_end != 0 {
                return Err(PcpuCheckError::AllocPastEnd { chunk, bit: first + past_end.trailing_zeros() as usize });
            }
            let prev = (a << 1) | carry;
            carry = a >> (BITS_PER_LONG - 1);
            let bad = ((a ^ prev) & !bound) | (bound & !(a | prev));
            if bad != 0 {
                return Err(PcpuCheckError::BadBound { chunk, bit: first + bad.trailing_zeros() as usize });
            }
            allocated += u64::from(a.count_ones());
        }
        let computed = (nr_bits as u64 - allocated) * PCPU_MIN_ALLOC_SIZE;
        if self.free_bytes != computed {
            return Err(PcpuCheckError::BadFreeBytes { chunk, stored: self.free_bytes, computed });
        }
        Ok(())
    }
}

/// The dynamic per-CPU allocator: the chunks, in creation order, the
/// first being the caller's (Linux's `pcpu_first_chunk`, `pcpu_slot`
/// lists and `pcpu_alloc()` / `free_percpu()`). About 64 KiB: keep it in
/// a static rather than on a stack.
#[doc(alias = "pcpu_alloc")]
pub struct PcpuAllocator<B: PcpuBackend> {
    /// Linux `pcpu_unit_size`.
    unit_size: u64,
    /// Linux `pcpu_nr_units`.
    nr_units: u32,
    /// Bits per unit (Linux `pcpu_chunk_map_bits()`).
    nr_bits: usize,
    /// Bits of the first chunk's static area (Linux `start_offset`).
    static_bits: usize,
    nr_chunks: usize,
    /// `chunks[..nr_chunks]` are live, `chunks[0]` the first chunk.
    chunks: [PcpuChunk; PCPU_MAX_CHUNKS],
    backend: B,
}

impl<B: PcpuBackend> PcpuAllocator<B> {
    /// An allocator whose first chunk is `nr_units` units of `unit_size`
    /// bytes at `first_base`, the first `static_size` bytes of each unit
    /// in use (Linux `pcpu_setup_first_chunk()`), growing through
    /// `backend`.
    ///
    /// Fails with [`PcpuError::BadFirstChunk`] unless `unit_size` is a
    /// nonzero multiple of `PAGE_SIZE` up to [`PCPU_MAX_UNIT_SIZE`],
    /// `nr_units` is nonzero, `static_size <= unit_size`, and the chunk is
    /// page aligned and lies in one canonical half.
    ///
    /// # Safety
    /// `[first_base, first_base + unit_size * nr_units)` is writable
    /// memory owned by the allocator for as long as it lives, except the
    /// first `static_size` bytes of each unit, which the caller keeps
    /// using.
    pub unsafe fn new(
        first_base: VirtAddr,
        unit_size: u64,
        nr_units: u32,
        static_size: u64,
        backend: B,
    ) -> Result<Self, PcpuError> {
        let mut this = Self::empty(backend);
        // SAFETY: forwarded from the caller.
        unsafe { this.init(first_base, unit_size, nr_units, static_size) }?;
        Ok(this)
    }

    /// An allocator with no chunk yet, for static storage: the allocator is
    /// large (its chunk bitmaps are fixed arrays), so the kernel builds it
    /// in place with [`PcpuAllocator::init`] instead of moving it around
    /// a boot stack. Every allocation fails until then.
    pub const fn empty(backend: B) -> Self {
        PcpuAllocator {
            unit_size: 0,
            nr_units: 0,
            nr_bits: 0,
            static_bits: 0,
            nr_chunks: 0,
            chunks: [PcpuChunk::EMPTY; PCPU_MAX_CHUNKS],
            backend,
        }
    }

    /// Sets up an [`PcpuAllocator::empty`] allocator in place, as
    /// [`PcpuAllocator::new`] describes; [`PcpuError::BadFirstChunk`] also
    /// when it was set up already.
    ///
    /// # Safety
    /// As for [`PcpuAllocator::new`].
    pub unsafe fn init(
        &mut self,
        first_base: VirtAddr,
        unit_size: u64,
        nr_units: u32,
        static_size: u64,
    ) -> Result<(), PcpuError> {
        let chunk_bytes = unit_size * u64::from(nr_units);
        let last = first_base.checked_add(chunk_bytes.saturating_sub(1));
        if self.nr_chunks != 0
            || unit_size == 0
            || !unit_size.is_multiple_of(PAGE_SIZE)
            || unit_size > PCPU_MAX_UNIT_SIZE
            || nr_units == 0
            || static_size > unit_size
            || !first_base.is_aligned(PAGE_SIZE)
            || last.is_none_or(|last| last.is_user() != first_base.is_user())
        {
            return Err(PcpuError::BadFirstChunk);
        }
        let nr_bits = (unit_size / PCPU_MIN_ALLOC_SIZE) as usize;
        let static_bits = static_size.div_ceil(PCPU_MIN_ALLOC_SIZE) as usize;
        self.unit_size = unit_size;
        self.nr_units = nr_units;
        self.nr_bits = nr_bits;
        self.static_bits = static_bits;
        self.nr_chunks = 1;
        self.chunks[0].init(first_base, nr_bits);
        if static_bits > 0 {
            self.chunks[0].alloc_area(0, static_bits);
        }
        Ok(())
    }

    /// Allocates `size` bytes aligned to `align` in every unit, zeroed in
    /// every unit, and returns its percpu address (Linux `pcpu_alloc()`,
    /// behind `__alloc_percpu()`).
    ///
    /// `size` must be 1 to [`PcpuAllocator::unit_size`]
    /// ([`PcpuError::BadSize`], [`PcpuError::TooLarge`]) and is rounded
    /// up to [`PCPU_MIN_ALLOC_SIZE`]; `align` must be a power of two up to
    /// `PAGE_SIZE` ([`PcpuError::BadAlign`]). Fails with
    /// [`PcpuError::NoMemory`], changing nothing, when no chunk has room
    /// and no chunk can be added.
    pub fn alloc(&mut self, size: u64, align: u64) -> Result<VirtAddr, PcpuError> {
        if size == 0 {
            return Err(PcpuError::BadSize);
        }
        if !align.is_power_of_two() || align > PAGE_SIZE {
            return Err(PcpuError::BadAlign);
        }
        if size > self.unit_size {
            return Err(PcpuError::TooLarge);
        }
        let bits = size.div_ceil(PCPU_MIN_ALLOC_SIZE) as usize;
        let bit_align = (align.max(PCPU_MIN_ALLOC_SIZE) / PCPU_MIN_ALLOC_SIZE) as usize;
        let found = self.chunks[..self.nr_chunks]
            .iter()
            .enumerate()
            .find_map(|(index, chunk)| Some((index, chunk.find_zero_area(self.nr_bits, bits, bit_align)?)));
        // An entirely free chunk holds any valid request at offset 0.
        let (index, bit_off) = match found {
            Some(fit) => fit,
            None => (self.pcpu_create_chunk()?, 0),
        };
        let chunk = &mut self.chunks[index];
        chunk.alloc_area(bit_off, bits);
        let off = bit_off as u64 * PCPU_MIN_ALLOC_SIZE;
        let bytes = bits as u64 * PCPU_MIN_ALLOC_SIZE;
        for cpu in 0..self.nr_units {
            let unit = chunk.base_addr.as_u64() + u64::from(cpu) * self.unit_size;
            // SAFETY: `[off, off + bytes)` lies inside the unit
            // (`find_zero_area` keeps below `nr_bits`) of a chunk whose
            // memory the allocator owns (the `new` and `PcpuBackend`
            // contracts); it was free until now, so no percpu address
            // hands it to anyone else.
            unsafe { core::ptr::write_bytes((unit + off) as *mut u8, 0, bytes as usize) };
        }
        // Canonical: inside the chunk (invariant 1).
        Ok(VirtAddr::expect_canonical(chunk.base_addr.as_u64() + off))
    }

    /// Frees the allocation whose percpu address is `addr` and returns its
    /// size, rounded as allocated (Linux `free_percpu()`). An empty chunk
    /// goes back to the backend if another chunk has at least as much free
    /// space (Linux `pcpu_balance_free()`).
    ///
    /// Fails with [`PcpuError::NotAllocated`], changing nothing, unless
    /// `addr` starts a live allocation.
    #[doc(alias = "free_percpu")]
    pub fn free(&mut self, addr: VirtAddr) -> Result<u64, PcpuError> {
        let not_allocated = PcpuError::NotAllocated(addr);
        let unit_size = self.unit_size;
        let (index, chunk) = self.chunks[..self.nr_chunks]
            .iter_mut()
            .enumerate()
            .find(|(_, chunk)| addr >= chunk.base_addr && addr.as_u64() - chunk.base_addr.as_u64() < unit_size)
            .ok_or(not_allocated)?;
        let off = addr.as_u64() - chunk.base_addr.as_u64();
        if !off.is_multiple_of(PCPU_MIN_ALLOC_SIZE) {
            return Err(not_allocated);
        }
        let bit_off = (off / PCPU_MIN_ALLOC_SIZE) as usize;
        // An allocated bit with a bound bit starts an allocation
        // (invariant 3); the static area is one the caller cannot free.
        let is_static = index == 0 && bit_off < self.static_bits;
        if is_static || !test_bit(&chunk.alloc_map, bit_off) || !test_bit(&chunk.bound_map, bit_off) {
            return Err(not_allocated);
        }
        let bits = chunk.free_area(bit_off, self.nr_bits);
        self.pcpu_balance_free();
        Ok(bits as u64 * PCPU_MIN_ALLOC_SIZE)
    }

    /// CPU `cpu`'s copy of the allocation at percpu address `addr`
    /// (Linux `per_cpu_ptr()`): `addr + cpu * unit_size`. `cpu` must be
    /// below [`PcpuAllocator::nr_units`].
    ///
    /// # Panics
    /// If the result is not a canonical address, which happens only when
    /// `addr` is not a percpu address.
    pub fn per_cpu_ptr(&self, addr: VirtAddr, cpu: u32) -> VirtAddr {
        debug_assert!(cpu < self.nr_units, "per_cpu_ptr: CPU {cpu} of {} units", self.nr_units);
        match addr.checked_add(u64::from(cpu) * self.unit_size) {
            Some(ptr) => ptr,
            None => panic!("per_cpu_ptr: {:#x} is not a percpu address", addr.as_u64()),
        }
    }

    /// Bytes per unit (Linux `pcpu_unit_size`).
    pub fn unit_size(&self) -> u64 {
        self.unit_size
    }

    /// Units per chunk, one per CPU (Linux `pcpu_nr_units`).
    pub fn nr_units(&self) -> u32 {
        self.nr_units
    }

    /// Chunks in use, the first included.
    pub fn nr_chunks(&self) -> usize {
        self.nr_chunks
    }

    /// Free bytes per unit over all chunks.
    pub fn free_bytes(&self) -> u64 {
        self.chunks[..self.nr_chunks].iter().map(|chunk| chunk.free_bytes).sum()
    }

    /// Pages of per-CPU memory in use, every unit of every chunk, the
    /// first chunk's static area included (Linux `pcpu_nr_pages()`,
    /// /proc/meminfo's `Percpu`). Every chunk is populated in full when it
    /// is made (Linux populates pages on demand), so this is chunks times
    /// units times unit pages.
    pub fn pcpu_nr_pages(&self) -> u64 {
        self.nr_chunks as u64 * self.chunk_bytes() / PAGE_SIZE
    }

    /// Bytes per unit handed out by [`PcpuAllocator::alloc`] (rounded to
    /// [`PCPU_MIN_ALLOC_SIZE`]), the static area excluded.
    pub fn allocated_bytes(&self) -> u64 {
        let static_bytes = self.static_bits as u64 * PCPU_MIN_ALLOC_SIZE;
        self.nr_chunks as u64 * self.unit_size - self.free_bytes() - static_bytes
    }

    /// Verifies every invariant of the module documentation, recomputing
    /// it from the maps.
    pub fn check(&self) -> Result<(), PcpuCheckError> {
        if self.nr_chunks == 0 || self.nr_chunks > PCPU_MAX_CHUNKS {
            return Err(PcpuCheckError::BadChunkCount { nr_chunks: self.nr_chunks });
        }
        let bytes = self.chunk_bytes();
        let chunks = &self.chunks[..self.nr_chunks];
        let mut spare = None;
        for (index, chunk) in chunks.iter().enumerate() {
            let base = chunk.base_addr;
            let last = base.checked_add(bytes - 1);
            if !base.is_aligned(PAGE_SIZE) || last.is_none_or(|last| last.is_user() != base.is_user()) {
                return Err(PcpuCheckError::BadChunkBase { chunk: index, base });
            }
            let start = base.as_u64();
            if let Some(older) = chunks[..index].iter().position(|other| {
                let other = other.base_addr.as_u64();
                other < start + bytes && start < other + bytes
            }) {
                return Err(PcpuCheckError::ChunkOverlap { chunk: older, other: index });
            }
            chunk.check(index, self.nr_bits)?;
            if chunk.free_bytes == self.unit_size {
                if spare.is_some() {
                    return Err(PcpuCheckError::SurplusEmptyChunk { chunk: index });
                }
                spare = Some(index);
            }
        }
        let first = &chunks[0];
        let static_bits = self.static_bits;
        if static_bits > 0
            && (find_next_zero_bit(&first.alloc_map, static_bits, 0) != static_bits
                || find_next_bit(&first.bound_map, static_bits + 1, 0) != 0
                || find_next_bit(&first.bound_map, static_bits + 1, 1) != static_bits)
        {
            return Err(PcpuCheckError::BadStaticArea);
        }
        Ok(())
    }

    /// Bytes of a chunk, all units.
    fn chunk_bytes(&self) -> u64 {
        self.unit_size * u64::from(self.nr_units)
    }

    /// Adds an entirely free chunk from the backend and returns its index
    /// (Linux `pcpu_create_chunk()`).
    fn pcpu_create_chunk(&mut self) -> Result<usize, PcpuError> {
        if self.nr_chunks == PCPU_MAX_CHUNKS {
            return Err(PcpuError::NoMemory);
        }
        let base = self.backend.alloc_chunk(self.chunk_bytes()).ok_or(PcpuError::NoMemory)?;
        debug_assert!(base.is_aligned(PAGE_SIZE), "percpu backend returned unaligned chunk {:#x}", base.as_u64());
        let index = self.nr_chunks;
        self.chunks[index].init(base, self.nr_bits);
        self.nr_chunks += 1;
        Ok(index)
    }

    /// Returns every entirely free chunk but the oldest to the backend
    /// (Linux `pcpu_balance_free()`). The first chunk, which is never
    /// returned, is the oldest.
    fn pcpu_balance_free(&mut self) {
        let mut spare = false;
        let mut index = 0;
        while index < self.nr_chunks {
            if self.chunks[index].free_bytes == self.unit_size && spare {
                self.pcpu_destroy_chunk(index);
            } else {
                spare |= self.chunks[index].free_bytes == self.unit_size;
                index += 1;
            }
        }
    }

    /// Removes chunk `index`, not the first, and gives its memory back
    /// (Linux `pcpu_destroy_chunk()`).
    fn pcpu_destroy_chunk(&mut self, index: usize) {
        debug_assert!(index > 0, "the first chunk is never destroyed");
        let base = self.chunks[index].base_addr;
        self.chunks[index..self.nr_chunks].rotate_left(1);
        self.nr_chunks -= 1;
        // SAFETY: every chunk but the first came from `alloc_chunk` with
        // `chunk_bytes()` bytes and is freed once, here, after leaving the
        // chunk list; nothing is allocated in it, so no percpu address
        // refers to it any more.
        unsafe { self.backend.free_chunk(base, self.chunk_bytes()) };
    }
}

impl<B: PcpuBackend> Drop for PcpuAllocator<B> {
    /// Returns every chunk but the first to the backend; percpu addresses
    /// in them die with the allocator.
    fn drop(&mut self) {
        while self.nr_chunks > 1 {
            self.pcpu_destroy_chunk(self.nr_chunks - 1);
        }
    }
}

#[cfg(test)]
mod tests;
