//! Host tests of the dynamic per-CPU allocator.

use std::alloc::Layout;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ptr::NonNull;

use proptest::prelude::*;

use super::*;

const P: u64 = PAGE_SIZE;

/// Page-aligned zeroed host memory, freed on drop.
struct Region {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Region {
    fn new(bytes: u64) -> Self {
        let layout = Layout::from_size_align(bytes as usize, P as usize).expect("layout");
        // SAFETY: `layout` has a nonzero size.
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).expect("host memory");
        Region { ptr, layout }
    }

    fn base(&self) -> VirtAddr {
        VirtAddr::new(self.ptr.as_ptr() as u64).expect("host addresses are canonical")
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: the region is `layout.size()` bytes owned by `self`,
        // borrowed exclusively.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.layout.size()) }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// Chunks from the host heap, recording live ones, failing on request.
#[derive(Default)]
struct TestBackend {
    live: RefCell<Vec<Region>>,
    fail: Cell<bool>,
    calls: Cell<usize>,
}

impl TestBackend {
    fn failing() -> Self {
        let backend = TestBackend::default();
        backend.fail.set(true);
        backend
    }

    fn live(&self) -> usize {
        self.live.borrow().len()
    }
}

// SAFETY: every chunk is a fresh zeroed, page-aligned `Region` kept alive
// in `live` until `free_chunk` drops it.
unsafe impl PcpuBackend for TestBackend {
    fn alloc_chunk(&self, bytes: u64) -> Option<VirtAddr> {
        self.calls.set(self.calls.get() + 1);
        if self.fail.get() {
            return None;
        }
        let region = Region::new(bytes);
        let base = region.base();
        self.live.borrow_mut().push(region);
        Some(base)
    }

    unsafe fn free_chunk(&self, base: VirtAddr, bytes: u64) {
        let mut live = self.live.borrow_mut();
        let index = live.iter().position(|r| r.base() == base).expect("free_chunk of an unknown chunk");
        assert_eq!(live[index].layout.size() as u64, bytes, "free_chunk size");
        live.swap_remove(index);
    }
}

type Pcpu<'a> = PcpuAllocator<&'a TestBackend>;

/// An allocator over `first`, which must hold `unit_size * nr_units`
/// bytes and outlive it.
fn pcpu<'a>(first: &Region, unit_size: u64, nr_units: u32, static_size: u64, backend: &'a TestBackend) -> Pcpu<'a> {
    assert!(first.layout.size() as u64 >= unit_size * u64::from(nr_units));
    // SAFETY: `first` is that many writable bytes, outliving the allocator
    // by the callers' declaration order; tests touch the static area only.
    let pcpu = unsafe { PcpuAllocator::new(first.base(), unit_size, nr_units, static_size, backend) }.unwrap();
    pcpu.check().unwrap();
    pcpu
}

/// CPU `cpu`'s copy of `len` bytes at percpu address `addr`.
fn copy<'m>(pcpu: &Pcpu<'_>, addr: VirtAddr, cpu: u32, len: u64) -> &'m mut [u8] {
    let ptr = pcpu.per_cpu_ptr(addr, cpu).as_mut_ptr::<u8>();
    // SAFETY: `addr` is a live allocation of at least `len` bytes in
    // memory the test keeps alive, `cpu < nr_units`, and the tests hold
    // one such slice at a time.
    unsafe { std::slice::from_raw_parts_mut(ptr, len as usize) }
}

/// Everything observable, for "nothing changed" assertions.
#[derive(Debug, PartialEq)]
struct Snapshot {
    bases: Vec<u64>,
    free: Vec<u64>,
    maps: Vec<(Vec<u64>, Vec<u64>)>,
    bytes: (u64, u64),
}

fn snapshot(pcpu: &Pcpu<'_>) -> Snapshot {
    pcpu.check().unwrap();
    let chunks = &pcpu.chunks[..pcpu.nr_chunks];
    Snapshot {
        bases: chunks.iter().map(|c| c.base_addr.as_u64()).collect(),
        free: chunks.iter().map(|c| c.free_bytes).collect(),
        maps: chunks.iter().map(|c| (c.alloc_map.to_vec(), c.bound_map.to_vec())).collect(),
        bytes: (pcpu.free_bytes(), pcpu.allocated_bytes()),
    }
}

fn offset(pcpu: &Pcpu<'_>, chunk: usize, addr: VirtAddr) -> u64 {
    addr.as_u64() - pcpu.chunks[chunk].base_addr.as_u64()
}

#[test]
fn new_rejects_unusable_first_chunks() {
    let first = Region::new(8 * P);
    let backend = TestBackend::default();
    let base = first.base();
    let new = |base: VirtAddr, unit_size, nr_units, static_size| {
        // SAFETY: `first` holds 8 pages; every call below that would use
        // more, or misaligned memory, is refused before touching it.
        unsafe { PcpuAllocator::new(base, unit_size, nr_units, static_size, &backend) }.map(drop)
    };
    assert_eq!(new(base, 0, 1, 0), Err(PcpuError::BadFirstChunk));
    assert_eq!(new(base, P + 4, 1, 0), Err(PcpuError::BadFirstChunk));
    assert_eq!(new(base, PCPU_MAX_UNIT_SIZE + P, 1, 0), Err(PcpuError::BadFirstChunk));
    assert_eq!(new(base, P, 0, 0), Err(PcpuError::BadFirstChunk));
    assert_eq!(new(base, P, 1, P + 1), Err(PcpuError::BadFirstChunk));
    assert_eq!(new(VirtAddr::expect_canonical(base.as_u64() + 8), P, 1, 0), Err(PcpuError::BadFirstChunk));
    let top_of_user = VirtAddr::expect_canonical(0x0000_7fff_ffff_f000);
    assert_eq!(new(top_of_user, P, 2, 0), Err(PcpuError::BadFirstChunk));
    assert_eq!(new(base, 2 * P, 4, 2 * P), Ok(()));
    assert_eq!(backend.calls.get(), 0);
}

#[test]
fn copies_are_a_unit_apart_and_zeroed_on_every_unit() {
    let mut first = Region::new(4 * P);
    // Dirty memory: the allocator must zero what it hands out.
    first.bytes().fill(0xa5);
    let backend = TestBackend::default();
    let mut pcpu = pcpu(&first, P, 4, 64, &backend);
    let addr = pcpu.alloc(98, 8).unwrap();
    assert_eq!(addr.as_u64(), first.base().as_u64() + 64);
    let copies: Vec<u64> = (0..4).map(|cpu| pcpu.per_cpu_ptr(addr, cpu).as_u64()).collect();
    assert_eq!(copies, (0..4).map(|cpu| addr.as_u64() + cpu * P).collect::<Vec<_>>());
    for cpu in 0..4 {
        assert!(copy(&pcpu, addr, cpu, 98).iter().all(|&b| b == 0), "CPU{cpu}'s copy is not zeroed");
    }
    // The rounding tail is zeroed too; the bytes after it are untouched.
    assert_eq!(copy(&pcpu, addr, 3, 104)[98..], [0, 0, 0xa5, 0xa5, 0xa5, 0xa5]);
    pcpu.check().unwrap();
}

#[test]
fn data_written_to_one_cpu_stays_in_its_copy() {
    let first = Region::new(4 * P);
    let backend = TestBackend::default();
    let mut pcpu = pcpu(&first, P, 4, 0, &backend);
    let a = pcpu.alloc(16, 8).unwrap();
    let b = pcpu.alloc(16, 8).unwrap();
    copy(&pcpu, a, 2, 16).fill(0x22);
    for cpu in [0, 1, 3] {
        assert_eq!(copy(&pcpu, a, cpu, 16), [0; 16], "CPU{cpu} sees CPU2's write");
    }
    for cpu in 0..4 {
        assert_eq!(copy(&pcpu, b, cpu, 16), [0; 16], "the neighbouring allocation on CPU{cpu}");
    }
    assert_eq!(copy(&pcpu, a, 2, 16), [0x22; 16]);
}

#[test]
fn alignment_is_honoured_after_an_odd_static_area() {
    let first = Region::new(4 * P);
    let backend = TestBackend::default();
    let mut pcpu = pcpu(&first, 2 * P, 2, 100, &backend);
    let base = first.base().as_u64();
    let a = pcpu.alloc(1, 1).unwrap();
    assert_eq!(a.as_u64(), base + 100);
    let b = pcpu.alloc(8, 8).unwrap();
    assert_eq!(b.as_u64(), base + 104);
    let c = pcpu.alloc(8, 64).unwrap();
    assert_eq!(c.as_u64(), base + 128);
    let d = pcpu.alloc(4, 4096).unwrap();
    assert_eq!(d.as_u64(), base + P);
    // The holes alignment left are still free, first fit finds them.
    let e = pcpu.alloc(16, 4).unwrap();
    assert_eq!(e.as_u64(), base + 112);
    assert_eq!(pcpu.allocated_bytes(), 4 + 8 + 8 + 4 + 16);
    pcpu.check().unwrap();
}

#[test]
fn static_area_is_never_handed_out_or_freed() {
    let mut first = Region::new(2 * P);
    let static_size = 1000;
    for unit in first.bytes().chunks_mut(P as usize) {
        unit[..static_size].fill(0x5a);
    }
    let backend = TestBackend::failing();
    let mut pcpu = pcpu(&first, P, 2, static_size as u64, &backend);
    assert_eq!(pcpu.free_bytes(), P - 1000);
    let mut addrs = Vec::new();
    while let Ok(addr) = pcpu.alloc(4, 4) {
        addrs.push(addr);
    }
    assert_eq!(addrs.len() as u64, (P - 1000) / 4);
    assert!(addrs.iter().all(|a| a.as_u64() >= first.base().as_u64() + 1000));
    assert_eq!(pcpu.free_bytes(), 0);
    for cpu in 0..2 {
        assert_eq!(copy(&pcpu, first.base(), cpu, 1000), [0x5a; 1000], "CPU{cpu}'s static area");
    }
    let before = snapshot(&pcpu);
    assert_eq!(pcpu.free(first.base()), Err(PcpuError::NotAllocated(first.base())));
    let inside = VirtAddr::expect_canonical(first.base().as_u64() + 500);
    assert_eq!(pcpu.free(inside), Err(PcpuError::NotAllocated(inside)));
    assert_eq!(snapshot(&pcpu), before);
}

#[test]
fn sizes_round_up_to_the_minimum_allocation() {
    let first = Region::new(P);
    let backend = TestBackend::default();
    let mut pcpu = pcpu(&first, P, 1, 0, &backend);
    let a = pcpu.alloc(1, 1).unwrap();
    let b = pcpu.alloc(5, 1).unwrap();
    assert_eq!(b.as_u64() - a.as_u64(), 4);
    assert_eq!(pcpu.allocated_bytes(), 12);
    assert_eq!(pcpu.free(b), Ok(8));
    assert_eq!(pcpu.free(a), Ok(4));
    assert_eq!((pcpu.allocated_bytes(), pcpu.free_bytes()), (0, P));
    pcpu.check().unwrap();
}

#[test]
fn first_fit_reuses_freed_holes() {
    let first = Region::new(P);
    let backend = TestBackend::default();
    let mut pcpu = pcpu(&first, P, 1, 0, &backend);
    let addrs: Vec<VirtAddr> = (0..4).map(|_| pcpu.alloc(64, 8).unwrap()).collect();
    assert_eq!(pcpu.free(addrs[1]), Ok(64));
    assert_eq!(pcpu.free(addrs[2]), Ok(64));
    // The merged hole [64, 192) takes a 100-byte request; then the rest
    // of it a 16-byte one, before the space past the last allocation.
    let a = pcpu.alloc(100, 4).unwrap();
    assert_eq!(a, addrs[1]);
    let b = pcpu.alloc(16, 4).unwrap();
    assert_eq!(offset(&pcpu, 0, b), 164);
    let c = pcpu.alloc(32, 4).unwrap();
    assert_eq!(offset(&pcpu, 0, c), 256);
    pcpu.check().unwrap();
    copy(&pcpu, a, 0, 100).fill(1);
    assert_eq!(copy(&pcpu, b, 0, 16), [0; 16]);
}

#[test]
fn a_full_chunk_adds_a_chunk_from_the_backend() {
    let first = Region::new(2 * P);
    let backend = TestBackend::default();
    let mut pcpu = pcpu(&first, P, 2, 1024, &backend);
    let a = pcpu.alloc(P - 1024, 4).unwrap();
    assert_eq!((pcpu.nr_chunks(), backend.live()), (1, 0));
    assert_eq!(pcpu.pcpu_nr_pages(), 2, "one chunk of two one-page units");
    let b = pcpu.alloc(4, 4).unwrap();
    assert_eq!((pcpu.nr_chunks(), backend.live()), (2, 1));
    assert_eq!(pcpu.pcpu_nr_pages(), 4, "the new chunk counts in every unit");
    assert_eq!(b, backend.live.borrow()[0].base());
    // The second chunk's units are a unit apart, like the first's.
    assert_eq!(pcpu.per_cpu_ptr(b, 1).as_u64() - b.as_u64(), P);
    copy(&pcpu, b, 1, 4).fill(7);
    assert_eq!(copy(&pcpu, a, 1, 4), [0; 4]);
    // Room in the new chunk: no third one.
    pcpu.alloc(P / 2, 8).unwrap();
    assert_eq!(pcpu.nr_chunks(), 2);
    assert_eq!(pcpu.free_bytes(), P - 4 - P / 2);
    pcpu.check().unwrap();
}

#[test]
fn freeing_everything_keeps_at_most_one_spare_chunk() {
    let first = Region::new(P);
    let backend = TestBackend::default();
    let mut pcpu = pcpu(&first, P, 1, 16, &backend);
    let addrs: Vec<VirtAddr> = (0..5).map(|_| pcpu.alloc(P, 8).unwrap()).collect();
    assert_eq!((pcpu.nr_chunks(), backend.live()), (6, 5));
    // Chunk 1 empties: it is the spare.
    pcpu.free(addrs[0]).unwrap();
    assert_eq!((pcpu.nr_chunks(), backend.live()), (6, 5));
    // Chunk 3 empties: chunk 1 already has as much free space.
    pcpu.free(addrs[2]).unwrap();
    assert_eq!((pcpu.nr_chunks(), backend.live()), (5, 4));
    assert_eq!(pcpu.pcpu_nr_pages(), 5, "a freed chunk no longer counts");
    pcpu.check().unwrap();
    for addr in [addrs[1], addrs[3], addrs[4]] {
        pcpu.free(addr).unwrap();
        pcpu.check().unwrap();
    }
    assert_eq!((pcpu.nr_chunks(), backend.live()), (2, 1));
    assert_eq!((pcpu.free_bytes(), pcpu.allocated_bytes()), (2 * P - 16, 0));
    // The spare serves the next allocation without the backend.
    let calls = backend.calls.get();
    pcpu.alloc(P, 8).unwrap();
    assert_eq!((pcpu.nr_chunks(), backend.calls.get()), (2, calls));
    drop(pcpu);
    assert_eq!(backend.live(), 0, "drop returns the chunks");
}

#[test]
fn an_empty_first_chunk_is_the_spare() {
    let first = Region::new(P);
    let backend = TestBackend::default();
    let mut pcpu = pcpu(&first, P, 1, 0, &backend);
    let a = pcpu.alloc(P, 4).unwrap();
    let b = pcpu.alloc(P, 4).unwrap();
    assert_eq!(pcpu.nr_chunks(), 2);
    pcpu.free(a).unwrap();
    assert_eq!(pcpu.nr_chunks(), 2);
    pcpu.free(b).unwrap();
    assert_eq!((pcpu.nr_chunks(), backend.live()), (1, 0));
    pcpu.check().unwrap();
}

#[test]
fn bad_frees_are_refused_and_change_nothing() {
    let first = Region::new(2 * P);
    let backend = TestBackend::default();
    let mut pcpu = pcpu(&first, P, 2, 0, &backend);
    let a = pcpu.alloc(64, 8).unwrap();
    let b = pcpu.alloc(64, 8).unwrap();
    pcpu.free(a).unwrap();
    let before = snapshot(&pcpu);
    let foreign = Region::new(P);
    let bad = [
        a,                                                 // double free
        VirtAddr::expect_canonical(b.as_u64() + 8),        // interior
        VirtAddr::expect_canonical(b.as_u64() + 2),        // unaligned interior
        VirtAddr::expect_canonical(b.as_u64() + 64),       // free space after it
        pcpu.per_cpu_ptr(b, 1),                            // CPU1's copy, not a percpu address
        foreign.base(),                                    // another allocator's memory
        VirtAddr::expect_canonical(0xffff_8000_0000_0000), // nowhere
    ];
    for addr in bad {
        assert_eq!(pcpu.free(addr), Err(PcpuError::NotAllocated(addr)), "{addr:?}");
        assert_eq!(snapshot(&pcpu), before, "{addr:?}");
    }
    assert_eq!(pcpu.free(b), Ok(64));
    assert_eq!(pcpu.free(b), Err(PcpuError::NotAllocated(b)));
}

#[test]
fn backend_failure_is_no_memory_and_changes_nothing() {
    let first = Region::new(P);
    let backend = TestBackend::default();
    let mut pcpu = pcpu(&first, P, 1, 8, &backend);
    pcpu.alloc(2048, 8).unwrap();
    let before = snapshot(&pcpu);
    backend.fail.set(true);
    assert_eq!(pcpu.alloc(2048, 8), Err(PcpuError::NoMemory));
    assert_eq!(snapshot(&pcpu), before);
    assert_eq!(backend.calls.get(), 1);
    // What fits still fits.
    assert!(pcpu.alloc(2040, 8).is_ok());
    backend.fail.set(false);
    assert!(pcpu.alloc(2048, 8).is_ok());
    assert_eq!(pcpu.nr_chunks(), 2);
}

#[test]
fn bad_sizes_and_alignments_are_rejected() {
    let first = Region::new(2 * P);
    let backend = TestBackend::default();
    let mut pcpu = pcpu(&first, 2 * P, 1, 0, &backend);
    let before = snapshot(&pcpu);
    assert_eq!(pcpu.alloc(0, 8), Err(PcpuError::BadSize));
    assert_eq!(pcpu.alloc(2 * P + 1, 8), Err(PcpuError::TooLarge));
    assert_eq!(pcpu.alloc(u64::MAX, 8), Err(PcpuError::TooLarge));
    for align in [0, 3, 12, 2 * P, 1 << 63] {
        assert_eq!(pcpu.alloc(8, align), Err(PcpuError::BadAlign), "align {align}");
    }
    assert_eq!(snapshot(&pcpu), before);
    assert_eq!(backend.calls.get(), 0);
    // The limits themselves are fine.
    assert!(pcpu.alloc(2 * P, P).is_ok());
    assert!(pcpu.alloc(1, 1).is_ok());
}

#[test]
fn chunk_count_is_capped() {
    let first = Region::new(P);
    let backend = TestBackend::default();
    let mut pcpu = pcpu(&first, P, 1, 4, &backend);
    for _ in 0..PCPU_MAX_CHUNKS {
        pcpu.alloc(P - 4, 4).unwrap();
    }
    assert_eq!(pcpu.nr_chunks(), PCPU_MAX_CHUNKS);
    let calls = backend.calls.get();
    let before = snapshot(&pcpu);
    assert_eq!(pcpu.alloc(P - 4, 4), Err(PcpuError::NoMemory));
    assert_eq!(snapshot(&pcpu), before);
    assert_eq!(backend.calls.get(), calls, "the backend is not asked past the cap");
    assert!(pcpu.alloc(4, 4).is_ok(), "the tails still serve small requests");
    drop(pcpu);
    assert_eq!(backend.live(), 0);
}

#[test]
fn check_detects_corrupted_metadata() {
    let first = Region::new(P);
    let backend = TestBackend::default();
    let mut pcpu = pcpu(&first, P, 1, 8, &backend);
    let a = pcpu.alloc(16, 4).unwrap();
    let bit = (offset(&pcpu, 0, a) / PCPU_MIN_ALLOC_SIZE) as usize;

    pcpu.chunks[0].bound_map[0] ^= 1 << (bit + 2);
    assert_eq!(pcpu.check(), Ok(()), "a bound bit inside an allocation splits it");
    pcpu.chunks[0].bound_map[0] ^= 1 << (bit + 2);

    pcpu.chunks[0].bound_map[0] ^= 1 << (bit + 4);
    assert_eq!(pcpu.check(), Err(PcpuCheckError::BadBound { chunk: 0, bit: bit + 4 }));
    pcpu.chunks[0].bound_map[0] ^= 1 << (bit + 4);

    pcpu.chunks[0].bound_map[0] ^= 1 << (bit + 9);
    assert_eq!(pcpu.check(), Err(PcpuCheckError::BadBound { chunk: 0, bit: bit + 9 }));
    pcpu.chunks[0].bound_map[0] ^= 1 << (bit + 9);

    pcpu.chunks[0].alloc_map[0] ^= 1 << (bit + 4);
    assert_eq!(pcpu.check(), Err(PcpuCheckError::BadBound { chunk: 0, bit: bit + 5 }));
    pcpu.chunks[0].alloc_map[0] ^= 1 << (bit + 4);

    pcpu.chunks[0].alloc_map[(P / 4 / 64) as usize] |= 1;
    assert_eq!(pcpu.check(), Err(PcpuCheckError::AllocPastEnd { chunk: 0, bit: (P / 4) as usize }));
    pcpu.chunks[0].alloc_map[(P / 4 / 64) as usize] = 0;

    pcpu.chunks[0].free_bytes += 4;
    assert!(matches!(pcpu.check(), Err(PcpuCheckError::BadFreeBytes { chunk: 0, .. })));
    pcpu.chunks[0].free_bytes -= 4;

    // The static area [0, 2) merged with its neighbour into one allocation.
    pcpu.chunks[0].bound_map[0] ^= 1 << 2;
    assert_eq!(pcpu.check(), Err(PcpuCheckError::BadStaticArea));
    pcpu.chunks[0].bound_map[0] ^= 1 << 2;

    pcpu.alloc(P - 8 - 16, 4).unwrap();
    pcpu.alloc(P, 4).unwrap();
    let last = pcpu.alloc(P, 4).unwrap();
    let second = pcpu.chunks[1].base_addr;
    pcpu.chunks[1].base_addr = VirtAddr::expect_canonical(pcpu.chunks[0].base_addr.as_u64() + P / 2);
    assert_eq!(pcpu.check(), Err(PcpuCheckError::BadChunkBase { chunk: 1, base: pcpu.chunks[1].base_addr }));
    pcpu.chunks[1].base_addr = pcpu.chunks[0].base_addr;
    assert_eq!(pcpu.check(), Err(PcpuCheckError::ChunkOverlap { chunk: 0, other: 1 }));
    pcpu.chunks[1].base_addr = second;

    for chunk in &mut pcpu.chunks[1..3] {
        chunk.alloc_map.fill(0);
        chunk.bound_map.fill(0);
        chunk.free_bytes = P;
    }
    assert_eq!(pcpu.check(), Err(PcpuCheckError::SurplusEmptyChunk { chunk: 2 }));
    pcpu.chunks[2].alloc_area(0, (P / 4) as usize);
    pcpu.check().unwrap();
    assert_eq!(pcpu.free(last), Ok(P));
    assert_eq!(pcpu.nr_chunks(), 2);
    pcpu.check().unwrap();
}

#[test]
fn errors_read_like_linux() {
    assert_eq!(PcpuError::BadSize.to_string(), "illegal size (0) for percpu allocation");
    assert_eq!(
        PcpuError::NotAllocated(VirtAddr::expect_canonical(0xffff_c900_0000_1000)).to_string(),
        "percpu: free of unallocated address 0xffffc90000001000"
    );
    assert!(PcpuError::NoMemory.to_string().contains("allocation failed"));
    assert!(PcpuError::TooLarge.to_string().starts_with("illegal size"));
    assert!(PcpuError::BadAlign.to_string().starts_with("illegal align"));
    assert_eq!(
        PcpuCheckError::BadBound { chunk: 1, bit: 7 }.to_string(),
        "percpu: chunk 1: bound_map disagrees with alloc_map at bit 7"
    );
}

/// The proptest's model: per chunk, its base and allocated
/// `[start, end)` offsets.
struct Model {
    unit_size: u64,
    chunks: Vec<(u64, BTreeMap<u64, u64>)>,
}

impl Model {
    /// First fit over chunks in creation order: `(chunk, offset)`.
    fn fit(&self, size: u64, align: u64) -> Option<(usize, u64)> {
        self.chunks.iter().enumerate().find_map(|(index, (_, ranges))| {
            let mut at = 0u64;
            for (&start, &end) in ranges {
                let candidate = at.next_multiple_of(align);
                if candidate + size <= start {
                    return Some((index, candidate));
                }
                at = end;
            }
            let candidate = at.next_multiple_of(align);
            (candidate + size <= self.unit_size).then_some((index, candidate))
        })
    }

    /// Keeps the oldest entirely free chunk, drops the others.
    fn balance(&mut self) {
        let mut spare = false;
        self.chunks.retain(|(_, ranges)| {
            let keep = !ranges.is_empty() || !spare;
            spare |= ranges.is_empty();
            keep
        });
    }

    fn free_bytes(&self) -> u64 {
        self.chunks.iter().map(|(_, r)| self.unit_size - r.iter().map(|(s, e)| e - s).sum::<u64>()).sum()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Alloc { size: u64, align_shift: u32, backend_fails: bool },
    Free { pick: usize },
    FreeInterior { pick: usize, delta: u64 },
}

/// One operation; `big` weighs allocations over 1 KiB and `free` frees,
/// so that some sequences fill [`PCPU_MAX_CHUNKS`] chunks.
fn op(big: u32, free: u32) -> impl Strategy<Value = Op> {
    let size = prop_oneof![6 => 1u64..=64, 3 => 65u64..=1024, big => 1025u64..=9000];
    let align_shift = prop_oneof![3 => 0u32..=3, 1 => 4u32..=12, 1 => Just(13)];
    prop_oneof![
        10 => (size, align_shift, prop::bool::weighted(0.1))
            .prop_map(|(size, align_shift, backend_fails)| Op::Alloc { size, align_shift, backend_fails }),
        free => any::<usize>().prop_map(|pick| Op::Free { pick }),
        1 => (any::<usize>(), 1u64..1000).prop_map(|(pick, delta)| Op::FreeInterior { pick, delta }),
    ]
}

/// The byte CPU `cpu` keeps at byte `i` of allocation `id`.
fn pattern(id: usize, cpu: u32, i: usize) -> u8 {
    (id as u8).wrapping_mul(31) ^ (cpu as u8).wrapping_mul(101) ^ (i as u8)
}

fn assert_pattern(pcpu: &Pcpu<'_>, addr: VirtAddr, size: u64, id: usize) -> Result<(), TestCaseError> {
    for cpu in 0..pcpu.nr_units() {
        let bytes = copy(pcpu, addr, cpu, size);
        prop_assert!(bytes.iter().enumerate().all(|(i, &b)| b == pattern(id, cpu, i)), "allocation {} CPU{}", id, cpu);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random allocation and free sequences give exactly the first-fit
    /// model's addresses, chunks and counters, hand out zeroed,
    /// disjoint, aligned areas whose per-CPU contents survive until
    /// freed, and keep every invariant; with a backend that always fails
    /// the single first chunk succeeds and fails exactly as the model.
    #[test]
    fn random_sequences_match_the_first_fit_model(
        unit_pages in 1u64..=2,
        nr_units in 1u32..=4,
        static_size in prop_oneof![Just(0u64), 1u64..=1500],
        one_chunk in any::<bool>(),
        ops in prop_oneof![
            prop::collection::vec(op(1, 7), 150),
            prop::collection::vec(op(12, 2), 150),
        ],
    ) {
        let unit_size = unit_pages * P;
        let first = Region::new(unit_size * u64::from(nr_units));
        let backend = TestBackend::default();
        let mut pcpu = pcpu(&first, unit_size, nr_units, static_size, &backend);
        let static_end = static_size.next_multiple_of(PCPU_MIN_ALLOC_SIZE);
        let mut first_ranges = BTreeMap::new();
        if static_end > 0 {
            first_ranges.insert(0, static_end);
        }
        let mut model = Model { unit_size, chunks: vec![(first.base().as_u64(), first_ranges)] };
        // (percpu address, requested size, rounded size, pattern id)
        let mut live: Vec<(VirtAddr, u64, u64, usize)> = Vec::new();
        for (id, op) in ops.into_iter().enumerate() {
            match op {
                Op::Alloc { size, align_shift, backend_fails } => {
                    let align = 1 << align_shift;
                    backend.fail.set(one_chunk || backend_fails);
                    let got = pcpu.alloc(size, align);
                    let rounded = size.next_multiple_of(PCPU_MIN_ALLOC_SIZE);
                    let fit = model.fit(rounded, align.max(PCPU_MIN_ALLOC_SIZE));
                    let expected = match fit {
                        _ if align > P => Err(PcpuError::BadAlign),
                        _ if size > unit_size => Err(PcpuError::TooLarge),
                        None if backend.fail.get() || model.chunks.len() == PCPU_MAX_CHUNKS => {
                            Err(PcpuError::NoMemory)
                        }
                        fit => Ok(fit),
                    };
                    match expected {
                        Err(e) => prop_assert_eq!(got, Err(e)),
                        Ok(fit) => {
                            let addr = got.map_err(|e| TestCaseError::fail(format!("{e}")))?;
                            if let Some((chunk, off)) = fit {
                                prop_assert_eq!(addr.as_u64(), model.chunks[chunk].0 + off);
                                model.chunks[chunk].1.insert(off, off + rounded);
                            } else {
                                let chunk_bytes = unit_size * u64::from(nr_units);
                                let disjoint = model.chunks.iter().all(|&(base, _)| {
                                    addr.as_u64() + chunk_bytes <= base || base + chunk_bytes <= addr.as_u64()
                                });
                                prop_assert!(disjoint, "new chunk overlaps an old one");
                                model.chunks.push((addr.as_u64(), BTreeMap::from([(0, rounded)])));
                            }
                            prop_assert!(addr.is_aligned(align));
                            for cpu in 0..nr_units {
                                let bytes = copy(&pcpu, addr, cpu, size);
                                prop_assert!(bytes.iter().all(|&b| b == 0), "new allocation dirty on CPU{}", cpu);
                                for (i, b) in bytes.iter_mut().enumerate() {
                                    *b = pattern(id, cpu, i);
                                }
                            }
                            live.push((addr, size, rounded, id));
                        }
                    }
                }
                Op::Free { pick } if !live.is_empty() => {
                    let (addr, size, rounded, pattern_id) = live.swap_remove(pick % live.len());
                    assert_pattern(&pcpu, addr, size, pattern_id)?;
                    prop_assert_eq!(pcpu.free(addr), Ok(rounded));
                    let chunk = model
                        .chunks
                        .iter()
                        .position(|&(base, _)| (base..base + unit_size).contains(&addr.as_u64()))
                        .ok_or_else(|| TestCaseError::fail("freed address in no model chunk"))?;
                    let off = addr.as_u64() - model.chunks[chunk].0;
                    prop_assert_eq!(model.chunks[chunk].1.remove(&off), Some(off + rounded));
                    model.balance();
                    prop_assert_eq!(pcpu.free(addr), Err(PcpuError::NotAllocated(addr)));
                }
                Op::FreeInterior { pick, delta } if !live.is_empty() => {
                    let (addr, _, rounded, _) = live[pick % live.len()];
                    if rounded > PCPU_MIN_ALLOC_SIZE {
                        let before = snapshot(&pcpu);
                        let inside = VirtAddr::expect_canonical(addr.as_u64() + 1 + delta % (rounded - 1));
                        prop_assert_eq!(pcpu.free(inside), Err(PcpuError::NotAllocated(inside)));
                        prop_assert_eq!(snapshot(&pcpu), before);
                    }
                }
                Op::Free { .. } | Op::FreeInterior { .. } => {}
            }
            if let Err(err) = pcpu.check() {
                return Err(TestCaseError::fail(format!("after op {id}: {err}")));
            }
            let bases: Vec<u64> = pcpu.chunks[..pcpu.nr_chunks].iter().map(|c| c.base_addr.as_u64()).collect();
            prop_assert_eq!(bases, model.chunks.iter().map(|&(base, _)| base).collect::<Vec<_>>());
            prop_assert_eq!(backend.live(), model.chunks.len() - 1);
            prop_assert_eq!(pcpu.free_bytes(), model.free_bytes());
            let allocated: u64 = live.iter().map(|&(_, _, rounded, _)| rounded).sum();
            prop_assert_eq!(pcpu.allocated_bytes(), allocated);
        }
        for &(addr, size, _, id) in &live {
            assert_pattern(&pcpu, addr, size, id)?;
        }
        drop(pcpu);
        prop_assert_eq!(backend.live(), 0);
    }
}
