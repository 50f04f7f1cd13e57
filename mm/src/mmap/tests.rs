//! Host tests of the address-space layer: mmap, munmap, mprotect, brk,
//! faults (zero page, copy-on-write, stacks, files), fork, mremap,
//! madvise, mincore, mlock, msync, and a model-based proptest, each over a
//! simulated machine whose free page count must come back exactly.

use std::cell::Cell;
use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::gfp::{GFP_HIGHUSER_MOVABLE, GFP_KERNEL};
use crate::memory::FaultAccess;
use crate::page_alloc::PgData;
use crate::pgtable::{Leaf, PgProt, X86PteFormat};
use crate::readahead::VmaRaAdvice;
use crate::shmem::tests::SimShmem;
use crate::sim::{HeapAlloc, Sim, SimRam, SimTlb, free_pages_drained};
use crate::vma::{FaultPage, FileFaultError, Vma};
use crate::vmstat::{NodeStatItem, VmEventItem};
use uapi::resource::{RLIM_INFINITY, Rlimit};

use crate::uaddr::{UserAddr, UserRange};

pub(crate) const P: u64 = PAGE_SIZE;
const FMT: X86PteFormat = X86PteFormat::new(true);
/// A kernel-half address whose root entry the kernel preallocates.
const KERNEL_BASE: u64 = 0xffff_8880_0000_0000;
/// Where tests place fixed mappings.
pub(crate) const X: u64 = 0x1000_0000;
pub(crate) const RW: u32 = PROT_READ | PROT_WRITE;
const PA: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

/// VMA memory from the host heap.
pub(crate) type TestAlloc = HeapAlloc<Vma>;

pub(crate) type Mm<'a> = MmStruct<'a, X86PteFormat, &'a TestAlloc>;

/// One simulated machine with a kernel page table and a zero page.
pub(crate) struct Env<'a> {
    pub(crate) pgdat: &'a PgData<'a>,
    pub(crate) ram: &'a SimRam,
    kernel: PageTable<'a, X86PteFormat>,
    pub(crate) tlb: &'a SimTlb,
    pub(crate) zero: Pfn,
    pub(crate) shmem: &'a SimShmem,
    pub(crate) alloc: &'a TestAlloc,
}

impl<'a> Env<'a> {
    pub(crate) fn mm(&self) -> Mm<'a> {
        MmStruct::new(&self.kernel, GFP_KERNEL, self.tlb, self.zero, self.shmem, self.alloc).unwrap()
    }

    pub(crate) fn page(&self, pfn: Pfn) -> &'a crate::page::Page {
        self.pgdat.pfn_to_page(pfn).unwrap()
    }
}

/// Runs `f` on a fresh machine, then checks that every page and VMA
/// came back (the shmem files of shared anonymous memory freed once no
/// VMA holds them), no bad page was reported, the zero page is still
/// zero, no page is left counted as mapped and only the kernel's page
/// tables are left counted.
pub(crate) fn with_env(f: impl FnOnce(&Env<'_>)) {
    let sim = Sim::flat(64 << 20);
    let pgdat = sim.pgdat(1);
    pgdat.set_folio_waits(&crate::sim::SimFolioWaits);
    let tlb = SimTlb::default();
    let alloc = TestAlloc::default();
    let kernel = PageTable::new(&pgdat, &FMT, GFP_KERNEL, false).unwrap();
    kernel.preallocate(VirtAddr::expect_canonical(KERNEL_BASE)).unwrap();
    let zero = pgdat.alloc_pages(GFP_KERNEL | Gfp::ZERO, 0).unwrap();
    let before = free_pages_drained(&pgdat);
    let shmem = SimShmem::default();
    let env = Env { pgdat: &pgdat, ram: &sim.ram, kernel, tlb: &tlb, zero, shmem: &shmem, alloc: &alloc };
    f(&env);
    shmem.release_all(&pgdat);
    assert_eq!(free_pages_drained(&pgdat), before, "pages leaked or double-freed");
    assert_eq!(state(&pgdat, NodeStatItem::NrAnonMapped), 0, "nr_anon_pages left over");
    assert_eq!(state(&pgdat, NodeStatItem::NrFileMapped), 0, "nr_mapped left over");
    assert_eq!(state(&pgdat, NodeStatItem::NrPagetable), env.kernel.nr_tables(), "nr_page_table_pages left over");
    assert_eq!(alloc.live(), 0, "VMAs leaked");
    assert_eq!(alloc.anon_live(), 0, "anon_vmas or anon_vma_chains leaked");
    assert_eq!(pgdat.bad_pages(), 0);
    assert_eq!(pgdat.overcommit().committed_as(), 0, "commit charge left over");
    assert!(sim.ram.page(zero).iter().all(|&b| b == 0), "zero page written");
    assert_eq!(pgdat.pfn_to_page(zero).unwrap().refcount(), 1, "zero page refcounted");
}

pub(crate) fn va(addr: u64) -> VirtAddr {
    VirtAddr::expect_canonical(addr)
}

/// A node state counter summed over CPUs.
pub(crate) fn state(pgdat: &PgData<'_>, item: NodeStatItem) -> u64 {
    pgdat.node_page_state(item)
}

/// An event counter summed over CPUs.
pub(crate) fn events(pgdat: &PgData<'_>, item: VmEventItem) -> u64 {
    pgdat.all_vm_events(item)
}

/// The leaf a CPU access finds usable, faulting like the CPU would until
/// there is one.
pub(crate) fn access(mm: &mut Mm<'_>, addr: u64, write: bool) -> Result<Leaf, FaultError> {
    for _ in 0..2 {
        if let Some(leaf) = mm.follow_pte(va(addr))
            && !leaf.prot.contains(PgProt::PROTNONE)
            && (!write || leaf.prot.contains(PgProt::WRITE))
        {
            assert!(leaf.prot.contains(PgProt::USER));
            return Ok(leaf);
        }
        mm.handle_mm_fault_exclusive(va(addr), FaultAccess { write, exec: false })?;
    }
    panic!("fault at {addr:#x} (write {write}) resolved without a usable pte");
}

/// The bytes of the page at `addr`, as a user read sees them.
pub(crate) fn read_page(env: &Env<'_>, mm: &mut Mm<'_>, addr: u64) -> Result<Vec<u8>, FaultError> {
    let leaf = access(mm, addr, false)?;
    Ok(env.ram.page(leaf.phys.pfn()))
}

/// The byte a user read at `addr` sees, the page being uniform.
pub(crate) fn read(env: &Env<'_>, mm: &mut Mm<'_>, addr: u64) -> Result<u8, FaultError> {
    let bytes = read_page(env, mm, addr)?;
    assert!(bytes.iter().all(|&b| b == bytes[0]), "page at {addr:#x} not uniform");
    Ok(bytes[0])
}

/// Fills the page at `addr` with `byte`, as user writes would.
pub(crate) fn write(env: &Env<'_>, mm: &mut Mm<'_>, addr: u64, byte: u8) -> Result<(), FaultError> {
    let leaf = access(mm, addr, true)?;
    assert_ne!(leaf.phys.pfn(), env.zero, "writable pte maps the zero page");
    env.ram.fill(leaf.phys.pfn(), byte);
    Ok(())
}

pub(crate) fn pfn_at(mm: &Mm<'_>, addr: u64) -> Option<Pfn> {
    mm.follow_pte(va(addr)).map(|l| l.phys.pfn())
}

fn maps(mm: &Mm<'_>) -> Vec<String> {
    let mut s = String::new();
    mm.show_maps(&mut s).unwrap();
    s.lines().map(str::to_owned).collect()
}

fn mmap_fixed(mm: &mut Mm<'_>, addr: u64, len: u64, prot: u32) {
    assert_eq!(mm.do_mmap(addr, len, prot, PA | MAP_FIXED, None, 0), Ok(addr));
}

pub(crate) fn teardown(mut mm: Mm<'_>) {
    mm.exit_mmap();
    assert_eq!(mm.rss_pages(), 0);
    assert_eq!(mm.total_vm(), 0);
    assert!(mm.vmas().check().is_ok());
}

#[test]
fn anon_read_maps_zero_page_then_write_gets_private_page() {
    with_env(|env| {
        let mut mm = env.mm();
        assert_eq!(mm.nr_ptes(), 1, "a new mm has its root only; the kernel half is not counted");
        let addr = mm.do_mmap(0, 4 * P, RW, PA, None, 0).unwrap();
        assert_eq!(addr % P, 0);
        assert!((MMAP_MIN_ADDR..mm.mmap_base).contains(&addr));
        assert_eq!(mm.total_vm(), 4);
        assert_eq!(pfn_at(&mm, addr), None, "mmap maps nothing yet");
        assert_eq!(read(env, &mut mm, addr), Ok(0));
        let leaf = mm.follow_pte(va(addr)).unwrap();
        assert_eq!(leaf.phys.pfn(), env.zero);
        assert!(!leaf.prot.contains(PgProt::WRITE), "zero page mapped read-only");
        assert_eq!(mm.rss_pages(), 0, "the zero page is not counted");
        write(env, &mut mm, addr, 7).unwrap();
        let pfn = pfn_at(&mm, addr).unwrap();
        assert_ne!(pfn, env.zero);
        assert_eq!(read(env, &mut mm, addr), Ok(7));
        write(env, &mut mm, addr + P, 9).unwrap();
        assert_eq!(read(env, &mut mm, addr + P), Ok(9));
        assert_eq!(mm.counter(MmCounter::AnonPages), 2);
        assert_eq!(mm.counter(MmCounter::FilePages), 0);
        // The LRU batch's reference goes when it drains.
        env.pgdat.lru_add_drain_all();
        assert_eq!((env.page(pfn).refcount(), env.page(pfn).mapcount()), (1, 1));
        assert_eq!(mm.hiwater_rss(), 2);
        assert_eq!(mm.nr_ptes(), 4, "root, pud, pmd and pte tables");
        assert_eq!(mm.do_munmap(addr, 4 * P), Ok(()));
        assert_eq!(mm.rss_pages(), 0);
        assert_eq!(mm.hiwater_rss(), 2);
        assert_eq!(mm.nr_ptes(), 1, "munmap of the only mapping frees its page tables (free_pgtables)");
        teardown(mm);
    });
}

#[test]
fn munmap_frees_page_tables_no_other_vma_uses() {
    with_env(|env| {
        let mut mm = env.mm();
        let before = free_pages_drained(env.pgdat);
        // Two mappings 4 MiB apart: two pte tables under one pmd table.
        let (a, b) = (X, X + (4 << 20));
        mmap_fixed(&mut mm, a, P, RW);
        mmap_fixed(&mut mm, b, P, RW);
        write(env, &mut mm, a, 1).unwrap();
        write(env, &mut mm, b, 2).unwrap();
        assert_eq!(mm.nr_ptes(), 5, "root, pud, pmd, two pte tables");
        assert_eq!(mm.do_munmap(b, P), Ok(()));
        assert_eq!(mm.nr_ptes(), 4, "b's pte table goes; the pmd table still serves a");
        assert_eq!(free_pages_drained(env.pgdat), before - 1 - 3, "a's page and three tables in use");
        // A neighbour in the same 2 MiB keeps the pte table.
        mmap_fixed(&mut mm, a + P, P, RW);
        assert_eq!(mm.do_munmap(a, P), Ok(()));
        assert_eq!(mm.nr_ptes(), 4, "the pte table still serves a + 4K");
        assert_eq!(mm.do_munmap(a + P, P), Ok(()));
        assert_eq!(mm.nr_ptes(), 1, "nothing mapped: only the root is left");
        assert_eq!(free_pages_drained(env.pgdat), before);
        teardown(mm);
    });
}

#[test]
fn munmap_in_the_middle_splits_and_frees() {
    with_env(|env| {
        let mut mm = env.mm();
        let before = free_pages_drained(env.pgdat);
        mmap_fixed(&mut mm, X, 3 * P, RW);
        for i in 0..3 {
            write(env, &mut mm, X + i * P, i as u8 + 1).unwrap();
        }
        assert_eq!(maps(&mm), vec![format!("{X:08x}-{:08x} rw-p 00000000 00:00 0", X + 3 * P)]);
        assert_eq!(mm.do_munmap(X + P, P), Ok(()));
        assert_eq!(
            maps(&mm),
            vec![
                format!("{X:08x}-{:08x} rw-p 00000000 00:00 0", X + P),
                format!("{:08x}-{:08x} rw-p 00000000 00:00 0", X + 2 * P, X + 3 * P),
            ]
        );
        assert_eq!(mm.vmas().map_count(), 2);
        assert_eq!(mm.counter(MmCounter::AnonPages), 2);
        assert_eq!(read(env, &mut mm, X + P), Err(FaultError::MapErr));
        assert_eq!(read(env, &mut mm, X + 2 * P), Ok(3));
        assert_eq!(mm.do_munmap(X + P, P), Ok(()), "a hole unmaps fine");
        assert_eq!(mm.do_munmap(X + 100 * P, 10 * P), Ok(()));
        assert_eq!(mm.do_munmap(X + 1, P), Err(Errno::EINVAL));
        assert_eq!(mm.do_munmap(X, 0), Err(Errno::EINVAL));
        assert_eq!(mm.do_munmap(TASK_SIZE + P, P), Err(Errno::EINVAL));
        assert_eq!(mm.do_munmap(X, u64::MAX - X), Err(Errno::EINVAL));
        assert_eq!(mm.do_munmap(X, 3 * P), Ok(()));
        assert_eq!(mm.rss_pages(), 0);
        assert_eq!(mm.vmas().map_count(), 0);
        // Nothing is mapped any more: the page tables went too.
        assert_eq!(free_pages_drained(env.pgdat), before);
        teardown(mm);
    });
}

#[test]
fn mmap_argument_errors() {
    with_env(|env| {
        let mut mm = env.mm();
        assert_eq!(mm.do_mmap(0, 0, RW, PA, None, 0), Err(Errno::EINVAL));
        assert_eq!(mm.do_mmap(0, P, RW, MAP_ANONYMOUS, None, 0), Err(Errno::EINVAL));
        assert_eq!(mm.do_mmap(X + 1, P, RW, PA | MAP_FIXED, None, 0), Err(Errno::EINVAL));
        assert_eq!(mm.do_mmap(0, u64::MAX, RW, PA, None, 0), Err(Errno::ENOMEM));
        assert_eq!(mm.do_mmap(P, P, RW, PA | MAP_FIXED, None, 0), Err(Errno::EPERM));
        assert_eq!(mm.do_mmap(TASK_SIZE, P, RW, PA | MAP_FIXED, None, 0), Err(Errno::ENOMEM));
        // A hint that is free is taken, one that is not is moved.
        assert_eq!(mm.do_mmap(X, P, RW, PA, None, 0), Ok(X));
        let other = mm.do_mmap(X, P, RW, PA, None, 0).unwrap();
        assert_ne!(other, X);
        teardown(mm);
    });
}

#[test]
fn map_fixed_replaces_and_noreplace_refuses() {
    with_env(|env| {
        let mut mm = env.mm();
        mmap_fixed(&mut mm, X, 2 * P, RW);
        write(env, &mut mm, X, 5).unwrap();
        write(env, &mut mm, X + P, 6).unwrap();
        mmap_fixed(&mut mm, X, P, RW);
        assert_eq!(read(env, &mut mm, X), Ok(0), "MAP_FIXED replaced the page");
        assert_eq!(read(env, &mut mm, X + P), Ok(6));
        assert_eq!(mm.counter(MmCounter::AnonPages), 1);
        assert_eq!(mm.do_mmap(X + P, 2 * P, RW, PA | MAP_FIXED_NOREPLACE, None, 0), Err(Errno::EEXIST));
        assert_eq!(mm.do_mmap(X + 2 * P, P, RW, PA | MAP_FIXED_NOREPLACE, None, 0), Ok(X + 2 * P));
        assert_eq!(read(env, &mut mm, X + P), Ok(6));
        teardown(mm);
    });
}

#[test]
fn mprotect_splits_merges_and_enforces() {
    with_env(|env| {
        let mut mm = env.mm();
        mmap_fixed(&mut mm, X, 3 * P, RW);
        for i in 0..3 {
            write(env, &mut mm, X + i * P, 10 + i as u8).unwrap();
        }
        assert_eq!(mm.mprotect(X + P, P, u64::from(PROT_READ)), Ok(()));
        assert_eq!(mm.vmas().map_count(), 3);
        assert!(!mm.follow_pte(va(X + P)).unwrap().prot.contains(PgProt::WRITE));
        assert_eq!(write(env, &mut mm, X + P, 1), Err(FaultError::AccErr));
        assert_eq!(read(env, &mut mm, X + P), Ok(11));
        assert_eq!(mm.mprotect(X + P, P, u64::from(RW)), Ok(()));
        assert_eq!(mm.vmas().map_count(), 1, "merged back");
        assert!(mm.follow_pte(va(X + P)).unwrap().prot.contains(PgProt::WRITE), "exclusive page writable again");
        write(env, &mut mm, X + P, 21).unwrap();
        // PROT_NONE keeps the pages.
        assert_eq!(mm.mprotect(X, 3 * P, u64::from(PROT_NONE)), Ok(()));
        assert_eq!(read(env, &mut mm, X), Err(FaultError::AccErr));
        assert!(mm.follow_pte(va(X)).unwrap().prot.contains(PgProt::PROTNONE));
        assert_eq!(mm.counter(MmCounter::AnonPages), 3);
        assert_eq!(mm.mprotect(X, 3 * P, u64::from(PROT_READ)), Ok(()));
        assert_eq!(read(env, &mut mm, X), Ok(10));
        assert_eq!(read(env, &mut mm, X + P), Ok(21));
        // Errors.
        assert_eq!(mm.mprotect(X + 1, P, u64::from(RW)), Err(Errno::EINVAL));
        assert_eq!(mm.mprotect(X, P, 0x40), Err(Errno::EINVAL));
        assert_eq!(mm.mprotect(X, 4 * P, u64::from(RW)), Err(Errno::ENOMEM), "hole");
        assert_eq!(mm.mprotect(X, 0, u64::from(RW)), Ok(()));
        assert!(mm.vmas().check().is_ok());
        teardown(mm);
    });
}

/// A file over a static byte array with no cache, as the kernel's
/// initramfs files are: every fault reads a new copy of the page (a major
/// fault), so no two mappings share one, and there is nothing to dirty or
/// write back.
pub(crate) struct TestFile {
    data: &'static [u8],
}

impl VmaFile for TestFile {
    fn name(&self) -> &str {
        "/test/file"
    }

    // A static: no count to keep.
    fn get_file(&self) {}

    fn put_file(&self) {}

    fn fault(&self, pgdat: &PgData<'_>, index: u64, _: VmaRaAdvice) -> Result<FaultPage, FileFaultError> {
        let offset = index.checked_mul(P).and_then(|o| usize::try_from(o).ok());
        let src = offset.and_then(|o| self.data.get(o..)).filter(|d| !d.is_empty()).ok_or(FileFaultError::Eof)?;
        let src = &src[..src.len().min(P as usize)];
        let gfp = if src.len() < P as usize { GFP_HIGHUSER_MOVABLE | Gfp::ZERO } else { GFP_HIGHUSER_MOVABLE };
        let mut page = pgdat.alloc_pages_owned(gfp, 0).ok_or(FileFaultError::NoMemory)?;
        crate::highmem::memcpy_to_owned(&mut page, 0, src).map_err(|_| FileFaultError::NoMemory)?;
        Ok(FaultPage { pfn: page.into_raw(), major: true })
    }

    fn map_pages(&self, _: &PgData<'_>, _: u64, _: u64, _: &mut dyn FnMut(u64, Pfn)) {}

    fn page_mkwrite(&self, _: &PgData<'_>, _: u64, _: Pfn) -> Result<(), FileFaultError> {
        Ok(())
    }

    fn set_page_dirty(&self, _: &PgData<'_>, _: u64, _: Pfn) {}

    fn fsync_range(&self, _: u64, _: u64) -> Result<(), Errno> {
        Ok(())
    }

    // No cache: nothing to read ahead or find.
    fn willneed(&self, _: u64, _: u64) {}

    fn mincore_page(&self, _: u64) -> bool {
        false
    }
}

/// 1.5 pages: byte `i` is `i % 251 + 1`, never zero.
static FILE_DATA: [u8; 6144] = {
    let mut d = [0u8; 6144];
    let mut i = 0;
    while i < d.len() {
        d[i] = (i % 251) as u8 + 1;
        i += 1;
    }
    d
};
pub(crate) static FILE: TestFile = TestFile { data: &FILE_DATA };

#[test]
fn shared_readonly_file_mapping_cannot_become_writable() {
    with_env(|env| {
        let mut mm = env.mm();
        let ro = MapFile { file: &FILE, writable: false };
        assert_eq!(mm.do_mmap(X, P, RW, MAP_SHARED | MAP_FIXED, Some(ro), 0), Err(Errno::EACCES));
        assert_eq!(mm.do_mmap(X, P, PROT_READ, MAP_SHARED | MAP_FIXED, Some(ro), 0), Ok(X));
        assert_eq!(mm.mprotect(X, P, u64::from(RW)), Err(Errno::EACCES));
        assert_eq!(read_page(env, &mut mm, X).unwrap(), FILE_DATA[..P as usize]);
        // Linux pads the name to column 73 (`seq_setwidth` + `seq_pad`).
        let line = format!("{X:08x}-{:08x} r--s 00000000 00:00 0", X + P);
        assert_eq!(maps(&mm)[0], format!("{line:73}/test/file"));
        teardown(mm);
    });
}

#[test]
fn private_file_mapping_fills_from_file_and_copies_on_write() {
    with_env(|env| {
        let mut mm = env.mm();
        let file = MapFile { file: &FILE, writable: false };
        assert_eq!(mm.do_mmap(X, 3 * P, RW, MAP_PRIVATE | MAP_FIXED, Some(file), 0), Ok(X));
        let page0 = read_page(env, &mut mm, X).unwrap();
        assert_eq!(page0, FILE_DATA[..P as usize]);
        let page1 = read_page(env, &mut mm, X + P).unwrap();
        let tail = FILE_DATA.len() - P as usize;
        assert_eq!(page1[..tail], FILE_DATA[P as usize..]);
        assert!(page1[tail..].iter().all(|&b| b == 0), "bytes past EOF read zero");
        assert_eq!(read_page(env, &mut mm, X + 2 * P), Err(FaultError::SigBus), "a page wholly past EOF");
        assert_eq!(mm.counter(MmCounter::FilePages), 2);
        assert_eq!(mm.counter(MmCounter::AnonPages), 0);
        assert!(!mm.follow_pte(va(X)).unwrap().prot.contains(PgProt::WRITE));
        let file_page = pfn_at(&mm, X).unwrap();
        write(env, &mut mm, X, 0xaa).unwrap();
        assert_ne!(pfn_at(&mm, X), Some(file_page), "the file's page is copied, never written");
        assert_eq!(mm.counter(MmCounter::FilePages), 1);
        assert_eq!(mm.counter(MmCounter::AnonPages), 1);
        assert_eq!(read(env, &mut mm, X), Ok(0xaa));
        // A write fault on a missing pte makes an anonymous copy at once.
        assert_eq!(mm.do_mmap(X + 4 * P, P, RW, MAP_PRIVATE | MAP_FIXED, Some(file), 1), Ok(X + 4 * P));
        let pfn = access(&mut mm, X + 4 * P, true).unwrap().phys.pfn();
        assert_eq!(env.ram.page(pfn)[..tail], FILE_DATA[P as usize..]);
        assert_eq!(mm.counter(MmCounter::AnonPages), 2);
        // DONTNEED drops the copy; the file comes back.
        assert_eq!(mm.madvise(X, P, MADV_DONTNEED), Ok(()));
        assert_eq!(read_page(env, &mut mm, X).unwrap(), FILE_DATA[..P as usize]);
        assert_eq!(mm.counter(MmCounter::FilePages), 2);
        assert_eq!(mm.counter(MmCounter::AnonPages), 1);
        teardown(mm);
    });
}

#[test]
fn fork_copies_on_write_both_ways() {
    with_env(|env| {
        let mut parent = env.mm();
        mmap_fixed(&mut parent, X, 2 * P, RW);
        write(env, &mut parent, X, 1).unwrap();
        let pfn = pfn_at(&parent, X).unwrap();
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        assert!(child.vmas().check().is_ok());
        assert_eq!(child.total_vm(), 2);
        assert!(!parent.follow_pte(va(X)).unwrap().prot.contains(PgProt::WRITE), "parent write-protected");
        assert_eq!(pfn_at(&child, X), Some(pfn));
        env.pgdat.lru_add_drain_all();
        assert_eq!((env.page(pfn).refcount(), env.page(pfn).mapcount()), (2, 2));
        assert_eq!(child.counter(MmCounter::AnonPages), 1);
        assert_eq!(read(env, &mut child, X), Ok(1));
        assert_eq!(read(env, &mut child, X + P), Ok(0));
        write(env, &mut child, X, 2).unwrap();
        assert_ne!(pfn_at(&child, X), Some(pfn), "child got a copy");
        assert_eq!((env.page(pfn).refcount(), env.page(pfn).mapcount()), (1, 1));
        assert_eq!(read(env, &mut parent, X), Ok(1));
        write(env, &mut parent, X, 3).unwrap();
        assert_eq!(pfn_at(&parent, X), Some(pfn), "sole holder reuses its page");
        assert_eq!(read(env, &mut child, X), Ok(2));
        assert_eq!(read(env, &mut parent, X), Ok(3));
        // The parent writes first the other way round.
        write(env, &mut parent, X + P, 4).unwrap();
        let mut child2 = env.mm();
        parent.dup_mmap(&mut child2).unwrap();
        write(env, &mut parent, X + P, 5).unwrap();
        assert_eq!(read(env, &mut child2, X + P), Ok(4));
        assert_eq!(read(env, &mut parent, X + P), Ok(5));
        teardown(child);
        teardown(parent);
        assert_eq!(read(env, &mut child2, X + P), Ok(4), "child keeps its pages after the parent exits");
        drop(child2);
    });
}

#[test]
fn anon_faults_count_in_nr_anon_pages_and_pgfault_until_munmap() {
    with_env(|env| {
        let mut mm = env.mm();
        let anon = || state(env.pgdat, NodeStatItem::NrAnonMapped);
        let faults = || events(env.pgdat, VmEventItem::Pgfault);
        let faults0 = faults();
        mmap_fixed(&mut mm, X, 8 * P, RW);
        for i in 0..5 {
            write(env, &mut mm, X + i * P, 1).unwrap();
        }
        assert_eq!(anon(), 5);
        assert_eq!(faults(), faults0 + 5, "one fault per first write");
        // A read of an untouched page maps the zero page: a fault, no page.
        assert_eq!(read(env, &mut mm, X + 6 * P), Ok(0));
        assert_eq!((anon(), faults()), (5, faults0 + 6));
        // Writing it replaces the zero page: a fault and a page.
        write(env, &mut mm, X + 6 * P, 2).unwrap();
        assert_eq!((anon(), faults()), (6, faults0 + 7));
        // Refused accesses never reach the fault handler proper (Linux
        // refuses them before handle_mm_fault): not counted.
        let read_access = FaultAccess { write: false, exec: false };
        assert_eq!(mm.handle_mm_fault_exclusive(va(X + 8 * P), read_access), Err(FaultError::MapErr));
        assert_eq!(mm.mprotect(X + 7 * P, P, u64::from(PROT_READ)), Ok(()));
        assert_eq!(
            mm.handle_mm_fault_exclusive(va(X + 7 * P), FaultAccess { write: true, exec: false }),
            Err(FaultError::AccErr)
        );
        assert_eq!(faults(), faults0 + 7);
        assert_eq!(mm.do_munmap(X, 3 * P), Ok(()));
        assert_eq!(anon(), 3);
        teardown(mm);
        assert_eq!(anon(), 0);
    });
}

#[test]
fn fork_and_copy_on_write_count_each_anonymous_page_once() {
    with_env(|env| {
        let anon = || state(env.pgdat, NodeStatItem::NrAnonMapped);
        let reuses = || events(env.pgdat, VmEventItem::Pgreuse);
        let mut parent = env.mm();
        mmap_fixed(&mut parent, X, 2 * P, RW);
        write(env, &mut parent, X, 1).unwrap();
        write(env, &mut parent, X + P, 2).unwrap();
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        assert_eq!(anon(), 2, "shared after the fork: still two pages");
        let reuse0 = reuses();
        write(env, &mut child, X, 3).unwrap();
        assert_eq!((anon(), reuses()), (3, reuse0), "the child's copy is a new page, no reuse");
        write(env, &mut parent, X, 4).unwrap();
        assert_eq!((anon(), reuses()), (3, reuse0 + 1), "the parent, sole holder now, reuses its page");
        teardown(child);
        assert_eq!(anon(), 2, "the child's copy goes; the page still shared with the parent stays");
        teardown(parent);
        assert_eq!(anon(), 0);
    });
}

#[test]
fn file_faults_are_major_and_a_private_write_maps_an_anonymous_copy() {
    with_env(|env| {
        let file_pages = || state(env.pgdat, NodeStatItem::NrFileMapped);
        let anon = || state(env.pgdat, NodeStatItem::NrAnonMapped);
        let majors = || events(env.pgdat, VmEventItem::Pgmajfault);
        let (maj0, reuse0) = (majors(), events(env.pgdat, VmEventItem::Pgreuse));
        let mut mm = env.mm();
        let file = MapFile { file: &FILE, writable: false };
        assert_eq!(mm.do_mmap(X, 3 * P, RW, MAP_PRIVATE | MAP_FIXED, Some(file), 0), Ok(X));
        for i in 0..2 {
            read_page(env, &mut mm, X + i * P).unwrap();
        }
        assert_eq!(read_page(env, &mut mm, X + 2 * P), Err(FaultError::SigBus));
        assert_eq!((file_pages(), anon()), (2, 0));
        assert_eq!(majors(), maj0 + 2, "the page wholly past EOF reads nothing from the file");
        // The first write copies the file's page (never reused in place,
        // whatever its refcount) into an anonymous page.
        write(env, &mut mm, X, 0xaa).unwrap();
        assert_eq!((file_pages(), anon()), (1, 1));
        assert_eq!(events(env.pgdat, VmEventItem::Pgreuse), reuse0);
        // A fork maps the same pages again: each still counted once.
        let mut child = env.mm();
        mm.dup_mmap(&mut child).unwrap();
        assert_eq!((file_pages(), anon()), (1, 1));
        teardown(mm);
        assert_eq!((file_pages(), anon()), (1, 1), "the child still maps them");
        assert_eq!(majors(), maj0 + 2);
        teardown(child);
        assert_eq!((file_pages(), anon()), (0, 0));
    });
}

#[test]
fn page_table_pages_are_counted_until_munmap_and_exit() {
    with_env(|env| {
        let tables = || state(env.pgdat, NodeStatItem::NrPagetable);
        let kernel = env.kernel.nr_tables();
        assert_eq!(tables(), kernel, "the kernel tree's root and preallocated pud table");
        let mut mm = env.mm();
        assert_eq!(tables(), kernel + 1, "a new address space's root");
        let (a, b) = (X, X + (4 << 20));
        mmap_fixed(&mut mm, a, P, RW);
        mmap_fixed(&mut mm, b, P, RW);
        write(env, &mut mm, a, 1).unwrap();
        write(env, &mut mm, b, 2).unwrap();
        assert_eq!(tables(), kernel + 5, "root, pud, pmd and two pte tables");
        // munmap frees b's pte table through the gather, after the flush.
        assert_eq!(mm.do_munmap(b, P), Ok(()));
        assert_eq!(tables(), kernel + 4);
        assert_eq!(mm.do_munmap(a, P), Ok(()));
        assert_eq!(tables(), kernel + 1);
        mmap_fixed(&mut mm, a, P, RW);
        write(env, &mut mm, a, 3).unwrap();
        assert_eq!(tables(), kernel + mm.nr_ptes());
        teardown(mm);
        assert_eq!(tables(), kernel, "exit and the address space's end free them all");
    });
}

#[test]
fn mprotect_after_fork_keeps_shared_pages_copy_on_write() {
    with_env(|env| {
        let mut parent = env.mm();
        mmap_fixed(&mut parent, X, P, RW);
        write(env, &mut parent, X, 1).unwrap();
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        assert_eq!(parent.mprotect(X, P, u64::from(PROT_READ)), Ok(()));
        assert_eq!(parent.mprotect(X, P, u64::from(RW)), Ok(()));
        assert!(!parent.follow_pte(va(X)).unwrap().prot.contains(PgProt::WRITE), "still shared with the child");
        write(env, &mut parent, X, 2).unwrap();
        assert_eq!(read(env, &mut child, X), Ok(1));
        drop(child);
        drop(parent);
    });
}

#[test]
fn fork_does_not_inherit_memory_locks() {
    with_env(|env| {
        let mut parent = env.mm();
        mmap_fixed(&mut parent, X, P, RW);
        assert_eq!(parent.mlockall(MCL_CURRENT | MCL_FUTURE), Ok(()));
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        assert_eq!(child.def_flags, VmaFlags::empty());
        assert!(!child.vmas().vma_lookup(va(X)).unwrap().flags().contains(VmaFlags::LOCKED));
        assert!(parent.vmas().vma_lookup(va(X)).unwrap().flags().contains(VmaFlags::LOCKED));
        drop(child);
        drop(parent);
    });
}

/// mlock marks the pages of the range `PG_mlocked` and moves them to the
/// unevictable list: the one present before (Linux
/// `mlock_vma_pages_range`) and those its populate faults in
/// (`folio_add_lru_vma`); munlock gives them back to the anonymous list,
/// and munmap of a locked VMA munlocks its pages as they go.
#[test]
fn mlocked_pages_are_unevictable_until_munlock_or_munmap() {
    use crate::page_flags::PageFlags;
    use crate::swap::LruList;
    with_env(|env| {
        let mut mm = env.mm();
        mmap_fixed(&mut mm, X, 4 * P, RW);
        write(env, &mut mm, X, 1).unwrap();
        env.pgdat.lru_add_drain_all();
        let first = env.page(pfn_at(&mm, X).unwrap());
        assert!(first.test(PageFlags::LRU) && !first.test(PageFlags::UNEVICTABLE));
        let (unevictable0, mlock0) =
            (env.pgdat.lru_pages(LruList::Unevictable), state(env.pgdat, NodeStatItem::NrMlock));
        assert_eq!(mm.mlock(X, 4 * P), Ok(()));
        env.pgdat.lru_add_drain_all();
        let locked = |mm: &Mm<'_>, i: u64| {
            let page = env.page(pfn_at(mm, X + i * P).unwrap());
            page.test(PageFlags::MLOCKED) && page.test(PageFlags::UNEVICTABLE)
        };
        assert!((0..4).all(|i| locked(&mm, i)), "present and populated pages mlocked");
        assert_eq!(state(env.pgdat, NodeStatItem::NrMlock), mlock0 + 4);
        assert_eq!(env.pgdat.lru_pages(LruList::Unevictable), unevictable0 + 4);
        assert_eq!(env.pgdat.all_vm_events(VmEventItem::UnevictablePgsMlocked), 4);
        assert_eq!(mm.munlock(X, 2 * P), Ok(()));
        assert!(!locked(&mm, 0) && !locked(&mm, 1) && locked(&mm, 2) && locked(&mm, 3));
        assert!(!first.test(PageFlags::MLOCKED) && first.test(PageFlags::LRU), "back on an evictable list");
        assert_eq!(env.pgdat.lru_pages(LruList::Unevictable), unevictable0 + 2);
        assert_eq!(env.pgdat.all_vm_events(VmEventItem::UnevictablePgsRescued), 2);
        assert_eq!(mm.do_munmap(X + 2 * P, 2 * P), Ok(()));
        env.pgdat.lru_add_drain_all();
        assert_eq!(state(env.pgdat, NodeStatItem::NrMlock), mlock0, "munmap munlocked the last two");
        assert_eq!(env.pgdat.lru_pages(LruList::Unevictable), unevictable0);
        assert_eq!(env.pgdat.all_vm_events(VmEventItem::UnevictablePgsMunlocked), 4);
        assert_eq!(env.pgdat.all_vm_events(VmEventItem::UnevictablePgsCleared), 0, "none freed still mlocked");
        drop(mm);
    });
}

#[test]
fn shared_anonymous_memory_is_shared_after_fork() {
    with_env(|env| {
        let mut parent = env.mm();
        let addr = parent.do_mmap(0, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS, None, 0).unwrap();
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        write(env, &mut child, addr, 5).unwrap();
        assert_eq!(read(env, &mut parent, addr), Ok(5));
        write(env, &mut parent, addr + P, 6).unwrap();
        assert_eq!(read(env, &mut child, addr + P), Ok(6));
        assert_eq!(maps(&child)[0].split(' ').nth(1), Some("rw-s"));
        // Grown in place, it is still the file of the first size: the new
        // page is past its end (SIGBUS, as on Linux), the old ones shared.
        assert_eq!(parent.mremap(addr, 2 * P, 3 * P, 0, 0), Ok(addr));
        let mut child2 = env.mm();
        parent.dup_mmap(&mut child2).unwrap();
        assert_eq!(write(env, &mut child2, addr + 2 * P, 7), Err(FaultError::SigBus));
        write(env, &mut child2, addr + P, 7).unwrap();
        assert_eq!(read(env, &mut parent, addr + P), Ok(7));
        drop(child2);
        drop(parent);
        assert_eq!(read(env, &mut child, addr), Ok(5));
        assert_eq!(read(env, &mut child, addr + P), Ok(7));
        teardown(child);
    });
}

#[test]
fn prot_none_shared_anonymous_memory_is_shared_once_accessible() {
    with_env(|env| {
        let mut parent = env.mm();
        let addr = parent.do_mmap(0, 2 * P, PROT_NONE, MAP_SHARED | MAP_ANONYMOUS, None, 0).unwrap();
        assert_eq!(read(env, &mut parent, addr), Err(FaultError::AccErr));
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        // Made accessible only after the fork, on both sides.
        assert_eq!(parent.mprotect(addr, 2 * P, u64::from(RW)), Ok(()));
        assert_eq!(child.mprotect(addr, 2 * P, u64::from(RW)), Ok(()));
        write(env, &mut child, addr, 3).unwrap();
        assert_eq!(read(env, &mut parent, addr), Ok(3), "the child's write reaches the parent");
        write(env, &mut parent, addr + P, 4).unwrap();
        assert_eq!(read(env, &mut child, addr + P), Ok(4), "the parent's write reaches the child");
        // Read-only and back: the pages stay the shared ones.
        assert_eq!(parent.mprotect(addr, 2 * P, u64::from(PROT_READ)), Ok(()));
        assert_eq!(parent.mprotect(addr, 2 * P, u64::from(RW)), Ok(()));
        write(env, &mut parent, addr, 9).unwrap();
        assert_eq!(read(env, &mut child, addr), Ok(9));
        drop(parent);
        teardown(child);
    });
}

#[test]
fn mprotect_growsdown_extends_to_the_stack_start() {
    with_env(|env| {
        let mut mm = env.mm();
        let start = 0x7000_0000_0000 - 4 * P;
        assert_eq!(mm.do_mmap(start, 4 * P, RW, PA | MAP_FIXED | MAP_GROWSDOWN, None, 0), Ok(start));
        mmap_fixed(&mut mm, X, P, RW);
        assert_eq!(
            mm.mprotect(X, P, u64::from(PROT_READ | PROT_GROWSDOWN)),
            Err(Errno::EINVAL),
            "not a grows-down VMA"
        );
        assert_eq!(
            mm.mprotect(start + 2 * P, P, u64::from(PROT_READ | PROT_GROWSUP)),
            Err(Errno::EINVAL),
            "no grows-up VMAs"
        );
        assert_eq!(
            mm.mprotect(X + P, P, u64::from(PROT_READ | PROT_GROWSUP)),
            Err(Errno::ENOMEM),
            "a range starting in a hole"
        );
        assert_eq!(
            mm.mprotect(start + 2 * P, P, u64::from(PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP)),
            Err(Errno::EINVAL),
            "both directions"
        );
        assert_eq!(mm.mprotect(start + 2 * P, P, u64::from(PROT_READ | PROT_GROWSDOWN)), Ok(()));
        let stack: Vec<String> = maps(&mm).into_iter().filter(|l| l.starts_with("6fff")).collect();
        assert_eq!(stack.len(), 2, "split at the end of the range only: {stack:?}");
        assert!(stack[0].starts_with(&format!("{start:x}-{:x} r--p", start + 3 * P)), "{stack:?}");
        assert!(stack[1].contains(" rw-p "), "{stack:?}");
        teardown(mm);
    });
}

#[test]
fn dontfork_vma_is_absent_in_the_child() {
    with_env(|env| {
        let mut parent = env.mm();
        mmap_fixed(&mut parent, X, 3 * P, RW);
        write(env, &mut parent, X + P, 8).unwrap();
        assert_eq!(parent.madvise(X + P, P, MADV_DONTFORK), Ok(()));
        assert_eq!(parent.vmas().map_count(), 3);
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        assert_eq!(child.vmas().map_count(), 2);
        assert_eq!(read(env, &mut child, X + P), Err(FaultError::MapErr));
        assert_eq!(read(env, &mut child, X), Ok(0));
        assert_eq!(parent.madvise(X + P, P, MADV_DOFORK), Ok(()));
        assert_eq!(parent.vmas().map_count(), 1);
        let mut child2 = env.mm();
        parent.dup_mmap(&mut child2).unwrap();
        assert_eq!(read(env, &mut child2, X + P), Ok(8));
        drop((child, child2, parent));
    });
}

#[test]
fn brk_grows_and_shrinks() {
    with_env(|env| {
        let mut mm = env.mm();
        let base = 0x60_0000;
        mm.layout.start_brk = base;
        mm.layout.brk = base;
        assert_eq!(mm.brk(base - 1), base, "below start_brk: unchanged");
        assert_eq!(mm.brk(base + 100), base + 100);
        assert_eq!(mm.total_vm(), 1);
        write(env, &mut mm, base, 1).unwrap();
        assert_eq!(mm.brk(base + 3 * P + 1), base + 3 * P + 1);
        assert_eq!(mm.vmas().map_count(), 1);
        assert_eq!(mm.total_vm(), 4);
        write(env, &mut mm, base + 3 * P, 2).unwrap();
        assert!(maps(&mm)[0].ends_with("[heap]"));
        assert_eq!(mm.brk(base + P), base + P);
        assert_eq!(mm.total_vm(), 1);
        assert_eq!(mm.rss_pages(), 1);
        assert_eq!(read(env, &mut mm, base + 3 * P), Err(FaultError::MapErr));
        assert_eq!(read(env, &mut mm, base), Ok(1));
        // A mapping in the way stops growth.
        mmap_fixed(&mut mm, base + 4 * P, P, RW);
        assert_eq!(mm.brk(base + 5 * P), base + P);
        assert_eq!(mm.brk(base), base);
        assert_eq!(mm.total_vm(), 1);
        teardown(mm);
    });
}

/// An address space with a one-page grows-down stack whose top is
/// `0x7000_0000_0000`, grown by a write 4 pages below it; returns the
/// stack's first start.
pub(crate) fn mm_with_grown_stack<'e>(env: &'e Env<'_>) -> (Mm<'e>, u64) {
    let mut mm = env.mm();
    let top = 0x7000_0000_0000;
    let start = top - P;
    assert_eq!(mm.do_mmap(start, P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_GROWSDOWN, None, 0), Ok(start));
    mm.layout.start_stack = top - 8;
    write(env, &mut mm, start - 4 * P, 3).unwrap();
    (mm, start)
}

#[test]
fn stack_grows_down_within_limit_and_guard_gap() {
    with_env(|env| {
        let (mut mm, start) = mm_with_grown_stack(env);
        let top = start + P;
        assert_eq!(mm.vmas().map_count(), 1);
        assert_eq!(mm.vmas().iter().next().unwrap().start().as_u64(), start - 4 * P);
        assert!(maps(&mm)[0].ends_with("[stack]"));
        assert_eq!(read(env, &mut mm, start - 2 * P), Ok(0));
        assert_eq!(read(env, &mut mm, top - STACK_RLIMIT - P), Err(FaultError::MapErr), "beyond the limit");
        assert_eq!(read(env, &mut mm, top - STACK_RLIMIT), Ok(0), "at the limit");
        // A mapping below: the guard gap stays clear.
        let low_end = top - 2 * STACK_RLIMIT;
        mmap_fixed(&mut mm, low_end - P, P, RW);
        let stack2 = low_end + STACK_GUARD_GAP + 2 * P;
        assert_eq!(mm.do_mmap(stack2, P, RW, PA | MAP_FIXED | MAP_GROWSDOWN, None, 0), Ok(stack2));
        assert_eq!(write(env, &mut mm, low_end + STACK_GUARD_GAP - P, 1), Err(FaultError::MapErr));
        assert_eq!(write(env, &mut mm, low_end + STACK_GUARD_GAP + P, 1), Ok(()));
        assert!(mm.vmas().check().is_ok());
        teardown(mm);
    });
}

/// Limits of `pages` pages, as a process without `CAP_IPC_LOCK` that set
/// them has.
fn limit(pages: u64) -> Rlimit {
    Rlimit { rlim_cur: pages * P, rlim_max: RLIM_INFINITY }
}

#[test]
fn rlimit_as_and_data_bound_mmap_brk_and_mremap() {
    with_env(|env| {
        let mut mm = env.mm();
        mm.limits.address_space = limit(8);
        assert_eq!(mm.do_mmap(X, 6 * P, RW, PA | MAP_FIXED, None, 0), Ok(X));
        assert_eq!(mm.do_mmap(0, 3 * P, PROT_READ, PA, None, 0), Err(Errno::ENOMEM), "past RLIMIT_AS");
        // MAP_FIXED over mapped pages counts only the new ones.
        assert_eq!(mm.do_mmap(X + 4 * P, 4 * P, RW, PA | MAP_FIXED, None, 0), Ok(X + 4 * P));
        assert_eq!(mm.total_vm(), 8);
        assert_eq!(
            mm.mremap(X, 8 * P, 9 * P, u64::from(MREMAP_MAYMOVE), 0),
            Err(Errno::ENOMEM),
            "mremap past RLIMIT_AS"
        );
        assert_eq!(mm.do_munmap(X, 8 * P), Ok(()));
        // RLIMIT_DATA: private writable memory only.
        mm.limits.address_space = limit(1 << 20);
        mm.limits.data = limit(2);
        assert_eq!(mm.do_mmap(X, 3 * P, RW, PA | MAP_FIXED, None, 0), Err(Errno::ENOMEM), "past RLIMIT_DATA");
        assert_eq!(mm.do_mmap(X, 3 * P, PROT_READ, PA | MAP_FIXED, None, 0), Ok(X), "read-only is not data");
        let shared = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED;
        assert_eq!(mm.do_mmap(X + 4 * P, 3 * P, RW, shared, None, 0), Ok(X + 4 * P), "shared is not data");
        assert_eq!(mm.mprotect(X, 2 * P, u64::from(RW)), Ok(()), "two pages become data");
        // brk: the heap plus the data segment (Linux `check_data_rlimit`).
        let heap = X + 64 * P;
        (mm.layout.start_brk, mm.layout.brk) = (heap, heap);
        assert_eq!(mm.brk(heap + 3 * P), heap, "brk past RLIMIT_DATA keeps the old break");
        // A zero soft limit under a larger hard one lets data through
        // (Linux's Valgrind exception).
        mm.limits.data = Rlimit { rlim_cur: 0, rlim_max: 16 * P };
        assert_eq!(mm.do_mmap(X + 16 * P, 2 * P, RW, PA | MAP_FIXED, None, 0), Ok(X + 16 * P));
        teardown(mm);
    });
}

#[test]
fn rlimit_memlock_bounds_locking_without_cap_ipc_lock() {
    with_env(|env| {
        let mut mm = env.mm();
        mm.limits.cap_ipc_lock = false;
        mm.limits.memlock = limit(2);
        mmap_fixed(&mut mm, X, 8 * P, RW);
        assert_eq!(mm.mlock(X, 3 * P), Err(Errno::ENOMEM), "past RLIMIT_MEMLOCK");
        assert_eq!(mm.mlock(X, 2 * P), Ok(()));
        assert_eq!(mm.mlock(X, 2 * P), Ok(()), "locking locked pages again counts them once");
        assert_eq!(mm.mlock(X + 4 * P, P), Err(Errno::ENOMEM));
        assert_eq!(mm.do_mmap(0, P, RW, PA | MAP_LOCKED, None, 0), Err(Errno::EAGAIN), "MAP_LOCKED past the limit");
        assert_eq!(
            mm.mremap(X, 2 * P, 3 * P, u64::from(MREMAP_MAYMOVE), 0),
            Err(Errno::EAGAIN),
            "a locked VMA may not grow"
        );
        assert_eq!(mm.mlockall(MCL_CURRENT), Err(Errno::ENOMEM), "total_vm past the limit");
        assert_eq!(mm.munlock(X, 2 * P), Ok(()));
        mm.limits.memlock = limit(0);
        assert_eq!(mm.mlock(X, P), Err(Errno::EPERM), "a zero limit forbids locking");
        assert_eq!(mm.mlockall(MCL_FUTURE), Err(Errno::EPERM));
        assert_eq!(mm.do_mmap(0, P, RW, PA | MAP_LOCKED, None, 0), Err(Errno::EPERM));
        mm.limits.cap_ipc_lock = true;
        assert_eq!(mm.mlock(X, 8 * P), Ok(()), "CAP_IPC_LOCK lifts the limit");
        teardown(mm);
    });
}

#[test]
fn rlimit_stack_bounds_growth_and_places_mmap_base() {
    with_env(|env| {
        let mut mm = env.mm();
        assert_eq!(mm.mmap_base, TASK_SIZE - (128 << 20), "an 8 MiB stack limit leaves Linux's 128 MiB minimum gap");
        mm.limits.stack = limit(4);
        let top = 0x7000_0000_0000;
        assert_eq!(mm.do_mmap(top - P, P, RW, PA | MAP_FIXED | MAP_GROWSDOWN, None, 0), Ok(top - P));
        assert_eq!(read(env, &mut mm, top - 4 * P), Ok(0), "at the limit");
        assert_eq!(read(env, &mut mm, top - 5 * P), Err(FaultError::MapErr), "past RLIMIT_STACK");
        mm.limits.stack = limit(1 << 18);
        mm.arch_pick_mmap_layout();
        assert_eq!(mm.mmap_base, TASK_SIZE - (1 << 30) - STACK_GUARD_GAP, "1 GiB of stack and the guard gap");
        mm.limits.stack = Rlimit { rlim_cur: RLIM_INFINITY, rlim_max: RLIM_INFINITY };
        mm.arch_pick_mmap_layout();
        assert_eq!(mm.mmap_base, (TASK_SIZE - TASK_SIZE / 6 * 5) & !(P - 1), "at most five sixths of user space");
        teardown(mm);
    });
}

#[test]
fn a_failing_mremap_fixed_leaves_the_destination_mapped() {
    with_env(|env| {
        let mut mm = env.mm();
        mmap_fixed(&mut mm, X, 2 * P, RW);
        mmap_fixed(&mut mm, X + 8 * P, 2 * P, RW);
        write(env, &mut mm, X + 8 * P, 5).unwrap();
        // The old range runs past its VMA: EFAULT, found before the
        // destination is unmapped.
        let fixed = u64::from(MREMAP_MAYMOVE | MREMAP_FIXED);
        assert_eq!(mm.mremap(X, 3 * P, 3 * P, fixed, X + 8 * P), Err(Errno::EFAULT));
        assert_eq!(read(env, &mut mm, X + 8 * P), Ok(5), "the destination is intact");
        // Flags above the low 32 bits are unknown flags.
        assert_eq!(mm.mremap(X, P, 2 * P, u64::from(MREMAP_MAYMOVE) | 1 << 32, 0), Err(Errno::EINVAL));
        teardown(mm);
    });
}

#[test]
fn stack_guard_gap_is_kept_only_to_accessible_mappings() {
    with_env(|env| {
        let mut mm = env.mm();
        let top = 0x7000_0000_0000;
        assert_eq!(mm.do_mmap(top - P, P, RW, PA | MAP_FIXED | MAP_GROWSDOWN, None, 0), Ok(top - P));
        // A PROT_NONE guard mapping right below the stack's growth.
        mmap_fixed(&mut mm, top - 8 * P, P, PROT_NONE);
        assert_eq!(read(env, &mut mm, top - 7 * P), Ok(0), "grows up to an inaccessible neighbour");
        assert_eq!(read(env, &mut mm, top - 8 * P), Err(FaultError::AccErr), "which it does not overlap");
        assert_eq!(mm.mprotect(top - 8 * P, P, u64::from(PROT_READ)), Ok(()));
        assert_eq!(mm.munmap_range(UserRange::at(UserAddr::new(top - 7 * P).unwrap(), 6 * P).unwrap()), Ok(()));
        assert_eq!(read(env, &mut mm, top - 6 * P), Err(FaultError::MapErr), "an accessible one keeps the gap");
        teardown(mm);
    });
}

#[test]
fn argument_corners_follow_linux() {
    with_env(|env| {
        let mut mm = env.mm();
        mmap_fixed(&mut mm, X, P, RW);
        // mprotect's prot is an unsigned long, judged after a zero length.
        assert_eq!(mm.mprotect(X, 0, 1 << 32), Ok(()));
        assert_eq!(mm.mprotect(X, P, 1 << 32 | u64::from(PROT_READ)), Err(Errno::EINVAL));
        // A zero-length mlock anywhere succeeds.
        assert_eq!(mm.mlock(1 << 47, 0), Ok(()));
        assert_eq!(mm.mlock(1 << 47, P), Err(Errno::ENOMEM));
        // A file mapping cannot grow down.
        let file = Some(MapFile { file: &FILE, writable: false });
        assert_eq!(mm.do_mmap(0, P, PROT_READ, MAP_PRIVATE | MAP_GROWSDOWN, file, 0), Err(Errno::EINVAL));
        // The hint's page is tried, raised to mmap_min_addr.
        assert_eq!(mm.do_mmap(X + 2 * P + 5, P, RW, PA, None, 0), Ok(X + 2 * P));
        assert_eq!(mm.do_mmap(1, P, RW, PA, None, 0), Ok(MMAP_MIN_ADDR));
        // A locked heap may not grow past RLIMIT_MEMLOCK.
        mm.limits.cap_ipc_lock = false;
        mm.limits.memlock = Rlimit { rlim_cur: 4 * P, rlim_max: 4 * P };
        let heap = X + 64 * P;
        (mm.layout.start_brk, mm.layout.brk) = (heap, heap);
        assert_eq!(mm.mlockall(MCL_FUTURE), Ok(()));
        assert_eq!(mm.brk(heap + 5 * P), heap);
        assert_eq!(mm.brk(heap + P), heap + P);
        teardown(mm);
    });
}

#[test]
fn mremap_grows_in_place_moves_and_shrinks() {
    with_env(|env| {
        let mut mm = env.mm();
        mmap_fixed(&mut mm, X, 2 * P, RW);
        write(env, &mut mm, X, 1).unwrap();
        write(env, &mut mm, X + P, 2).unwrap();
        assert_eq!(mm.mremap(X, 2 * P, 4 * P, 0, 0), Ok(X));
        assert_eq!((mm.vmas().map_count(), mm.total_vm()), (1, 4));
        assert_eq!(read(env, &mut mm, X + 3 * P), Ok(0));
        // Something in the way: no growth without MAYMOVE.
        mmap_fixed(&mut mm, X + 4 * P, P, PROT_READ);
        assert_eq!(mm.mremap(X, 4 * P, 8 * P, 0, 0), Err(Errno::ENOMEM));
        let pfns = [pfn_at(&mm, X).unwrap(), pfn_at(&mm, X + P).unwrap()];
        let rss = mm.rss_pages();
        let free = free_pages_drained(env.pgdat);
        let new = mm.mremap(X, 4 * P, 8 * P, u64::from(MREMAP_MAYMOVE), 0).unwrap();
        assert_ne!(new, X);
        assert_eq!([pfn_at(&mm, new).unwrap(), pfn_at(&mm, new + P).unwrap()], pfns, "pages moved, not copied");
        assert_eq!(pfn_at(&mm, X), None);
        assert_eq!(read(env, &mut mm, X), Err(FaultError::MapErr));
        assert_eq!(read(env, &mut mm, new), Ok(1));
        assert_eq!(read(env, &mut mm, new + P), Ok(2));
        assert_eq!(read(env, &mut mm, new + 7 * P), Ok(0));
        assert_eq!(mm.rss_pages(), rss);
        assert!(free_pages_drained(env.pgdat) + 4 >= free, "only page tables allocated");
        assert_eq!(mm.total_vm(), 9);
        // Shrink in place.
        assert_eq!(mm.mremap(new, 8 * P, P, 0, 0), Ok(new));
        assert_eq!(mm.total_vm(), 2);
        assert_eq!(mm.counter(MmCounter::AnonPages), 1);
        assert_eq!(read(env, &mut mm, new + P), Err(FaultError::MapErr));
        // Fixed move over an existing mapping replaces it.
        mmap_fixed(&mut mm, X, 2 * P, RW);
        write(env, &mut mm, X, 9).unwrap();
        assert_eq!(mm.mremap(new, P, 2 * P, u64::from(MREMAP_MAYMOVE | MREMAP_FIXED), X), Ok(X));
        assert_eq!(pfn_at(&mm, X), Some(pfns[0]));
        assert_eq!(read(env, &mut mm, X), Ok(1));
        assert_eq!(read(env, &mut mm, X + P), Ok(0));
        assert_eq!(mm.counter(MmCounter::AnonPages), 1);
        assert!(mm.vmas().check().is_ok());
        teardown(mm);
    });
}

#[test]
fn mremap_part_of_a_vma_splits_it() {
    with_env(|env| {
        let mut mm = env.mm();
        mmap_fixed(&mut mm, X, 4 * P, RW);
        for i in 0..4 {
            write(env, &mut mm, X + i * P, i as u8 + 1).unwrap();
        }
        let t = X + 16 * P;
        assert_eq!(mm.mremap(X + P, 2 * P, 2 * P, u64::from(MREMAP_MAYMOVE | MREMAP_FIXED), t), Ok(t));
        assert_eq!(mm.vmas().map_count(), 3);
        assert_eq!(read(env, &mut mm, X), Ok(1));
        assert_eq!(read(env, &mut mm, X + P), Err(FaultError::MapErr));
        assert_eq!(read(env, &mut mm, X + 3 * P), Ok(4));
        assert_eq!(read(env, &mut mm, t), Ok(2));
        assert_eq!(read(env, &mut mm, t + P), Ok(3));
        // Moving it back merges everything again.
        assert_eq!(mm.mremap(t, 2 * P, 2 * P, u64::from(MREMAP_MAYMOVE | MREMAP_FIXED), X + P), Ok(X + P));
        assert_eq!(mm.vmas().map_count(), 1);
        // MREMAP_DONTUNMAP leaves the old range mapped and empty.
        let new = mm.mremap(X, P, P, u64::from(MREMAP_MAYMOVE | MREMAP_DONTUNMAP), 0).unwrap();
        assert_eq!(read(env, &mut mm, new), Ok(1));
        assert_eq!(read(env, &mut mm, X), Ok(0));
        assert_eq!(mm.counter(MmCounter::AnonPages), 4);
        teardown(mm);
    });
}

#[test]
fn mremap_errors() {
    with_env(|env| {
        let mut mm = env.mm();
        mmap_fixed(&mut mm, X, 2 * P, RW);
        mmap_fixed(&mut mm, X + 2 * P, P, PROT_READ);
        assert_eq!(mm.mremap(X + 1, P, P, 0, 0), Err(Errno::EINVAL), "unaligned");
        assert_eq!(mm.mremap(X, P, P, 8, 0), Err(Errno::EINVAL), "bad flags");
        assert_eq!(mm.mremap(X, P, P, u64::from(MREMAP_FIXED), X + 8 * P), Err(Errno::EINVAL), "FIXED without MAYMOVE");
        assert_eq!(mm.mremap(X, P, 2 * P, u64::from(MREMAP_MAYMOVE | MREMAP_DONTUNMAP), 0), Err(Errno::EINVAL));
        assert_eq!(mm.mremap(X, P, 0, 0, 0), Err(Errno::EINVAL), "new_len 0");
        assert_eq!(mm.mremap(X + 8 * P, P, 2 * P, u64::from(MREMAP_MAYMOVE), 0), Err(Errno::EFAULT), "unmapped");
        assert_eq!(mm.mremap(X, 3 * P, 4 * P, u64::from(MREMAP_MAYMOVE), 0), Err(Errno::EFAULT), "across VMAs");
        assert_eq!(
            mm.mremap(X, 0, P, u64::from(MREMAP_MAYMOVE), 0),
            Err(Errno::EINVAL),
            "old_len 0 of a private mapping"
        );
        assert_eq!(mm.mremap(X, 2 * P, 4 * P, 0, 0), Err(Errno::ENOMEM), "cannot grow, may not move");
        assert_eq!(
            mm.mremap(X, 2 * P, 2 * P, u64::from(MREMAP_MAYMOVE | MREMAP_FIXED), X + P),
            Err(Errno::EINVAL),
            "overlap"
        );
        assert_eq!(mm.mremap(X, P, P, u64::from(MREMAP_MAYMOVE | MREMAP_FIXED), X + 8 * P + 1), Err(Errno::EINVAL));
        assert_eq!(mm.mremap(X, P, P, u64::from(MREMAP_MAYMOVE | MREMAP_FIXED), TASK_SIZE), Err(Errno::EINVAL));
        assert_eq!(mm.mremap(X, P, P, u64::from(MREMAP_MAYMOVE | MREMAP_FIXED), P), Err(Errno::EPERM));
        assert_eq!(mm.mremap(!(P - 1), P, P, 0, 0), Err(Errno::EFAULT), "non-canonical");
        assert_eq!(mm.mremap(X, P, P, 0, 0), Ok(X));
        assert_eq!((mm.vmas().map_count(), mm.total_vm()), (2, 3));
        teardown(mm);
    });
}

#[test]
fn madvise_dontneed_zeroes_and_reports_holes() {
    with_env(|env| {
        let mut mm = env.mm();
        mmap_fixed(&mut mm, X, 2 * P, RW);
        mmap_fixed(&mut mm, X + 3 * P, P, RW);
        for a in [X, X + P, X + 3 * P] {
            write(env, &mut mm, a, 7).unwrap();
        }
        assert_eq!(mm.madvise(X, P, MADV_DONTNEED), Ok(()));
        assert_eq!(mm.rss_pages(), 2);
        assert_eq!(read(env, &mut mm, X), Ok(0));
        assert_eq!(read(env, &mut mm, X + P), Ok(7));
        // A hole: ENOMEM, after doing the mapped parts (MADV_FREE only
        // marks the pages lazily freeable: they stay until reclaim).
        assert_eq!(mm.madvise(X, 4 * P, MADV_FREE), Err(Errno::ENOMEM));
        assert_eq!(mm.rss_pages(), 2);
        assert_eq!(mm.madvise(X, 4 * P, MADV_DONTNEED), Err(Errno::ENOMEM));
        assert_eq!(mm.rss_pages(), 0);
        assert_eq!(read(env, &mut mm, X + 3 * P), Ok(0));
        assert_eq!(mm.madvise(X + 8 * P, P, MADV_DONTNEED), Err(Errno::ENOMEM));
        assert_eq!(mm.madvise(X + 1, P, MADV_DONTNEED), Err(Errno::EINVAL));
        assert_eq!(mm.madvise(X, P, 77), Err(Errno::EINVAL));
        assert_eq!(mm.madvise(X, P, MADV_HUGEPAGE), Err(Errno::EINVAL));
        assert_eq!(mm.madvise(X, 0, MADV_DONTNEED), Ok(()));
        assert_eq!(mm.madvise(X, u64::MAX, MADV_DONTNEED), Err(Errno::EINVAL));
        for advice in [MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL, MADV_WILLNEED, MADV_COLD, MADV_PAGEOUT] {
            assert_eq!(mm.madvise(X, 2 * P, advice), Ok(()));
        }
        assert_eq!(mm.madvise(X, 2 * P, MADV_POPULATE_WRITE), Ok(()));
        assert_eq!(mm.rss_pages(), 2);
        // Locked ranges refuse DONTNEED.
        assert_eq!(mm.mlock(X, P), Ok(()));
        assert_eq!(mm.madvise(X, P, MADV_DONTNEED), Err(Errno::EINVAL));
        assert_eq!(mm.madvise(X, P, MADV_DONTNEED_LOCKED), Ok(()));
        // Shared anonymous pages survive DONTNEED (Linux refaults them).
        let shared = mm.do_mmap(0, P, RW, MAP_SHARED | MAP_ANONYMOUS, None, 0).unwrap();
        write(env, &mut mm, shared, 4).unwrap();
        assert_eq!(mm.madvise(shared, P, MADV_DONTNEED), Ok(()));
        assert_eq!(read(env, &mut mm, shared), Ok(4));
        assert_eq!(mm.madvise(shared, P, MADV_FREE), Err(Errno::EINVAL));
        teardown(mm);
    });
}

/// A user-space address for a mincore vector (the callbacks here copy
/// nowhere).
const VEC: u64 = 0x7000_0000;

#[test]
fn mincore_reports_resident_pages_in_chunks() {
    with_env(|env| {
        let mut mm = env.mm();
        let n = 600;
        mmap_fixed(&mut mm, X, n * P, RW);
        let touched = [0, 2, 255, 256, 257, 599];
        for &i in &touched {
            write(env, &mut mm, X + i * P, 1).unwrap();
        }
        read(env, &mut mm, X + 3 * P).unwrap();
        let mut vec = vec![9u8; n as usize];
        let mut calls = 0;
        mm.mincore(X, n * P - 5, VEC, &mut |index, bytes| {
            vec[index..index + bytes.len()].copy_from_slice(bytes);
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert!(calls >= 3);
        let expect: Vec<u8> = (0..n).map(|i| u8::from(touched.contains(&i) || i == 3)).collect();
        assert_eq!(vec, expect);
        let seen = Cell::new(0);
        let mut count = |_: usize, b: &[u8]| {
            seen.set(seen.get() + b.len());
            Ok(())
        };
        assert_eq!(mm.mincore(X + 1, P, VEC, &mut count), Err(Errno::EINVAL));
        assert_eq!(mm.mincore(X + (n - 1) * P, 2 * P, VEC, &mut count), Err(Errno::ENOMEM));
        assert_eq!(seen.get(), 1, "the entries before the hole were handed out");
        assert_eq!(mm.mincore(TASK_SIZE, 2 * P, VEC, &mut count), Err(Errno::ENOMEM));
        assert_eq!(mm.mincore(X, P, VEC, &mut |_, _| Err(Errno::EFAULT)), Err(Errno::EFAULT));
        assert_eq!(mm.mincore(X, 0, VEC, &mut count), Ok(()));
        // Linux's order: the range (ENOMEM) before the vector (EFAULT),
        // and a vector outside user space before any VMA (EFAULT even
        // over a hole), a user vector over a hole ENOMEM.
        let hole = X + 2 * n * P;
        assert_eq!(mm.mincore(TASK_SIZE, P, 1 << 63, &mut count), Err(Errno::ENOMEM));
        assert_eq!(mm.mincore(hole, P, 1 << 63, &mut count), Err(Errno::EFAULT));
        assert_eq!(mm.mincore(hole, P, TASK_SIZE, &mut count), Err(Errno::EFAULT));
        assert_eq!(mm.mincore(hole, P, VEC, &mut count), Err(Errno::ENOMEM));
        teardown(mm);
    });
}

#[test]
fn mlock_populates_and_munlock_merges() {
    with_env(|env| {
        let mut mm = env.mm();
        mmap_fixed(&mut mm, X, 4 * P, RW);
        assert_eq!(mm.mlock(X + P + 5, P), Ok(()), "the unaligned start rounds down, the length up");
        assert_eq!(mm.vmas().map_count(), 3);
        assert!(mm.vmas().vma_lookup(va(X + 2 * P)).unwrap().flags().contains(VmaFlags::LOCKED));
        assert_eq!(mm.rss_pages(), 2, "locked pages faulted in, for writing");
        assert!(mm.follow_pte(va(X + P)).unwrap().prot.contains(PgProt::WRITE));
        assert_eq!(mm.munlock(X, 4 * P), Ok(()));
        assert_eq!(mm.vmas().map_count(), 1);
        assert_eq!(mm.mlock2(X, 4 * P, MLOCK_ONFAULT), Ok(()));
        assert_eq!(mm.rss_pages(), 2, "lock on fault populates nothing");
        assert!(mm.vmas().vma_lookup(va(X)).unwrap().flags().contains(VmaFlags::LOCKONFAULT));
        assert_eq!(mm.mlock2(X, P, 2), Err(Errno::EINVAL));
        assert_eq!(mm.mlock(X, 5 * P), Err(Errno::ENOMEM), "hole");
        assert!(mm.vmas().vma_lookup(va(X)).unwrap().flags().contains(VmaFlags::LOCKED));
        assert_eq!(mm.munlockall(), Ok(()));
        assert_eq!(
            mm.vmas().iter().next().unwrap().flags() & (VmaFlags::LOCKED | VmaFlags::LOCKONFAULT),
            VmaFlags::empty()
        );
        // mlockall: current and future mappings.
        assert_eq!(mm.mlockall(0), Err(Errno::EINVAL));
        assert_eq!(mm.mlockall(MCL_ONFAULT), Err(Errno::EINVAL));
        assert_eq!(mm.mlockall(8), Err(Errno::EINVAL));
        assert_eq!(mm.mlockall(MCL_CURRENT | MCL_FUTURE), Ok(()));
        assert_eq!(mm.rss_pages(), 4);
        let new = mm.do_mmap(0, 2 * P, RW, PA, None, 0).unwrap();
        assert_eq!(mm.rss_pages(), 6, "future mappings are populated");
        assert!(mm.vmas().vma_lookup(va(new)).unwrap().flags().contains(VmaFlags::LOCKED));
        mm.layout.start_brk = 0x60_0000;
        mm.layout.brk = 0x60_0000;
        mm.brk(0x60_0000 + P);
        assert_eq!(mm.rss_pages(), 7, "so is the heap");
        assert_eq!(mm.munlockall(), Ok(()));
        assert_eq!(mm.def_flags, VmaFlags::empty());
        mm.do_mmap(0, P, RW, PA, None, 0).unwrap();
        assert_eq!(mm.rss_pages(), 7);
        teardown(mm);
    });
}

#[test]
fn msync_checks_arguments_and_holes() {
    with_env(|env| {
        let mut mm = env.mm();
        mmap_fixed(&mut mm, X, 2 * P, RW);
        mmap_fixed(&mut mm, X + 3 * P, P, RW);
        assert_eq!(mm.msync(X, 2 * P, MS_SYNC), Ok(()));
        assert_eq!(mm.msync(X, 2 * P, MS_ASYNC | MS_INVALIDATE), Ok(()));
        assert_eq!(mm.msync(X + 1, P, MS_SYNC), Err(Errno::EINVAL));
        assert_eq!(mm.msync(X, P, 8), Err(Errno::EINVAL));
        assert_eq!(mm.msync(X, P, MS_ASYNC | MS_SYNC), Err(Errno::EINVAL));
        assert_eq!(mm.msync(X, 4 * P, MS_SYNC), Err(Errno::ENOMEM));
        assert_eq!(mm.msync(X, 4 * P, MS_ASYNC), Err(Errno::ENOMEM));
        assert_eq!(mm.msync(X + 8 * P, P, MS_SYNC), Err(Errno::ENOMEM));
        assert_eq!(mm.msync(X, u64::MAX, MS_SYNC), Ok(()), "Linux rounds the length to 0");
        assert_eq!(mm.msync(X, u64::MAX - 2 * P, MS_SYNC), Err(Errno::ENOMEM), "the end wraps");
        assert_eq!(mm.msync(X, 0, MS_SYNC), Ok(()));
        assert_eq!(mm.mlock(X, P), Ok(()));
        assert_eq!(mm.msync(X, P, MS_INVALIDATE), Err(Errno::EBUSY));
        teardown(mm);
    });
}

// ---------------------------------------------------------------------------
// Model-based proptest.

/// The proptest's window of fixed mappings, in pages.
const WINDOW: u64 = 32;
/// Where the heap starts.
const BRK_BASE: u64 = 0x2000_0000;

#[derive(Clone, Debug)]
enum Op {
    Mmap { page: u64, pages: u64, prot: u32 },
    Munmap { page: u64, pages: u64 },
    Mprotect { page: u64, pages: u64, prot: u32 },
    Mremap { page: u64, old: u64, new: u64, flags: u32, target: u64 },
    Brk { pages: u64 },
    Write { page: u64, byte: u8 },
    Read { page: u64 },
    Dontneed { page: u64, pages: u64 },
    Fork,
    Exit,
    Switch,
}

fn prot_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![Just(PROT_NONE), Just(PROT_READ), Just(RW), Just(RW)]
}

/// A page: below [`PICK_MAPPED`] one of the window (or heap), else a
/// mapped page picked by index (see [`resolve`]).
fn page_strategy(limit: u64) -> impl Strategy<Value = u64> + Clone {
    prop_oneof![0..limit, PICK_MAPPED..PICK_MAPPED + 64]
}

/// Page numbers from here on pick a mapped page.
const PICK_MAPPED: u64 = 1000;

/// The address a page number of [`page_strategy`] stands for: the heap
/// only if `heap` (so that only brk changes the heap's VMA).
fn resolve(model: &Model, page: u64, heap: bool) -> u64 {
    let in_heap = |a: u64| (BRK_BASE..BRK_BASE + 64 * P).contains(&a);
    let mapped: Vec<u64> = model.keys().copied().filter(|&a| heap || !in_heap(a)).collect();
    if page >= PICK_MAPPED && !mapped.is_empty() {
        mapped[((page - PICK_MAPPED) % mapped.len() as u64) as usize]
    } else {
        page_addr(page % PICK_MAPPED % if heap { WINDOW + 6 } else { WINDOW })
    }
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let page = page_strategy(WINDOW);
    prop_oneof![
        4 => (0..WINDOW, 1..6u64, prot_strategy()).prop_map(|(page, pages, prot)| Op::Mmap { page, pages, prot }),
        2 => (page.clone(), 1..6u64).prop_map(|(page, pages)| Op::Munmap { page, pages }),
        2 => (page.clone(), 1..6u64, prot_strategy()).prop_map(|(page, pages, prot)| Op::Mprotect { page, pages, prot }),
        3 => (page.clone(), 1..5u64, 1..7u64, prop_oneof![Just(0), Just(MREMAP_MAYMOVE), Just(MREMAP_MAYMOVE | MREMAP_FIXED)], 0..WINDOW)
            .prop_map(|(page, old, new, flags, target)| Op::Mremap { page, old, new, flags, target }),
        1 => (0..6u64).prop_map(|pages| Op::Brk { pages }),
        6 => (page_strategy(WINDOW + 6), any::<u8>()).prop_map(|(page, byte)| Op::Write { page, byte }),
        3 => page_strategy(WINDOW + 6).prop_map(|page| Op::Read { page }),
        1 => (page, 1..6u64).prop_map(|(page, pages)| Op::Dontneed { page, pages }),
        1 => Just(Op::Fork),
        1 => Just(Op::Exit),
        2 => Just(Op::Switch),
    ]
}

/// What a process should see: per mapped page, its protection and byte.
type Model = BTreeMap<u64, (u32, u8)>;

fn page_addr(page: u64) -> u64 {
    if page < WINDOW { X + page * P } else { BRK_BASE + (page - WINDOW) * P }
}

fn expect_access(model: &Model, addr: u64, write: bool) -> Result<u8, FaultError> {
    match model.get(&addr) {
        None => Err(FaultError::MapErr),
        Some(&(prot, _)) if prot == PROT_NONE || (write && prot & PROT_WRITE == 0) => Err(FaultError::AccErr),
        Some(&(_, byte)) => Ok(byte),
    }
}

/// What decides an mremap's outcome besides the model: whether the range
/// that stays lies in one VMA, and whether that VMA ends where the range
/// does with nothing mapped in the next `new - old` bytes.
#[derive(Clone, Copy)]
struct MremapFacts {
    one_vma: bool,
    expandable: bool,
}

fn mremap_facts(mm: &Mm<'_>, addr: u64, old: u64, new: u64) -> MremapFacts {
    let vma = mm.vmas().vma_lookup(va(addr));
    let one_vma = vma.is_some_and(|v| v.end().as_u64() >= addr + old.min(new));
    let expandable = vma.is_some_and(|v| {
        v.end().as_u64() == addr + old && mm.vmas().find_vma(v.end()).is_none_or(|n| n.start().as_u64() >= addr + new)
    });
    MremapFacts { one_vma, expandable }
}

fn unmap_model(model: &mut Model, start: u64, len: u64) {
    let keys: Vec<u64> = model.range(start..start + len).map(|(&k, _)| k).collect();
    for k in keys {
        model.remove(&k);
    }
}

/// Applies an mremap to the model given its outcome, checking the outcome
/// is the one Linux's rules give.
fn mremap_model(facts: MremapFacts, model: &mut Model, op: (u64, u64, u64, u32, u64), result: Result<u64, Errno>) {
    let (addr, old, new, flags, target) = op;
    let fixed = flags & MREMAP_FIXED != 0;
    // The arguments' own checks (Linux `check_mremap_params`) come before
    // the old VMA's lookup.
    if fixed && addr + old > target && target + new > addr {
        assert_eq!(result, Err(Errno::EINVAL));
        return;
    }
    if !model.contains_key(&addr) {
        assert_eq!(result, Err(Errno::EFAULT));
        return;
    }
    let prot = model[&addr].0;
    if !fixed && old >= new {
        unmap_model(model, addr + new, old - new);
        assert_eq!(result, Ok(addr));
        return;
    }
    // The old VMA is checked before anything is unmapped (Linux 6.17+
    // `check_prep_vma`): a failure leaves the destination mapped.
    if !facts.one_vma {
        assert_eq!(result, Err(Errno::EFAULT));
        return;
    }
    if fixed {
        unmap_model(model, target, new);
        if old > new {
            unmap_model(model, addr + new, old - new);
        }
    }
    let old = old.min(new);
    let in_place = !fixed && facts.expandable;
    let dest = if in_place {
        assert_eq!(result, Ok(addr));
        addr
    } else if flags & MREMAP_MAYMOVE == 0 {
        assert_eq!(result, Err(Errno::ENOMEM));
        return;
    } else {
        let dest = result.unwrap();
        if fixed {
            assert_eq!(dest, target);
        }
        assert!(model.range(dest..dest + new).next().is_none(), "moved onto mapped pages");
        let moved: Vec<(u64, (u32, u8))> = model.range(addr..addr + old).map(|(&k, &v)| (k, v)).collect();
        unmap_model(model, addr, old);
        for (k, v) in moved {
            model.insert(k - addr + dest, v);
        }
        dest
    };
    for a in (dest + old..dest + new).step_by(P as usize) {
        model.insert(a, (prot, 0));
    }
}

/// Checks an address space against its model: VMAs, contents, RSS.
fn check_mm(env: &Env<'_>, mm: &Mm<'_>, model: &Model) {
    mm.vmas().check().unwrap();
    assert_eq!(mm.total_vm(), model.len() as u64);
    let mut resident = 0;
    for (&addr, &(prot, byte)) in model {
        let vma = mm.vmas().vma_lookup(va(addr)).unwrap_or_else(|| panic!("{addr:#x} unmapped"));
        assert_eq!(vma.flags() & PROT_BITS, calc_vm_prot_bits(prot), "prot at {addr:#x}");
        match mm.follow_pte(va(addr)) {
            Some(leaf) => {
                let pfn = leaf.phys.pfn();
                if pfn != env.zero {
                    resident += 1;
                }
                assert_eq!(leaf.prot.contains(PgProt::PROTNONE), prot == PROT_NONE);
                if leaf.prot.contains(PgProt::WRITE) {
                    assert_ne!(pfn, env.zero);
                    assert!(prot & PROT_WRITE != 0);
                }
                let bytes = env.ram.page(pfn);
                assert!(bytes.iter().all(|&b| b == byte), "contents at {addr:#x}: want {byte}, have {}", bytes[0]);
            }
            None => assert_eq!(byte, 0, "page at {addr:#x} lost"),
        }
    }
    assert_eq!(mm.rss_pages(), resident);
}

fn run_ops(env: &Env<'_>, ops: &[Op]) {
    let mut procs: Vec<(Mm<'_>, Model)> = vec![(env.mm(), Model::new())];
    procs[0].0.layout.start_brk = BRK_BASE;
    procs[0].0.layout.brk = BRK_BASE;
    let mut cur = 0;
    for op in ops {
        let (mm, model) = &mut procs[cur];
        match *op {
            Op::Mmap { page, pages, prot } => {
                let addr = resolve(model, page, false);
                assert_eq!(mm.do_mmap(addr, pages * P, prot, PA | MAP_FIXED, None, 0), Ok(addr));
                for a in (addr..addr + pages * P).step_by(P as usize) {
                    model.insert(a, (prot, 0));
                }
            }
            Op::Munmap { page, pages } => {
                let addr = resolve(model, page, false);
                assert_eq!(mm.do_munmap(addr, pages * P), Ok(()));
                unmap_model(model, addr, pages * P);
            }
            Op::Mprotect { page, pages, prot } => {
                let addr = resolve(model, page, false);
                // Linux changes the VMAs up to the first hole, then fails.
                let covered = (0..pages).take_while(|i| model.contains_key(&(addr + i * P))).count() as u64;
                let want = if covered == pages { Ok(()) } else { Err(Errno::ENOMEM) };
                assert_eq!(mm.mprotect(addr, pages * P, u64::from(prot)), want);
                for i in 0..covered {
                    model.get_mut(&(addr + i * P)).unwrap().0 = prot;
                }
            }
            Op::Mremap { page, old, new, flags, target } => {
                let (addr, target) = (resolve(model, page, false), page_addr(target));
                // Judge against the VMAs as they were.
                let facts = mremap_facts(mm, addr, old * P, new * P);
                let result = mm.mremap(addr, old * P, new * P, u64::from(flags), target);
                mremap_model(facts, model, (addr, old * P, new * P, flags, target), result);
            }
            Op::Brk { pages } => {
                let want = BRK_BASE + pages * P;
                let old_end = page_align(mm.layout.brk).unwrap();
                assert_eq!(mm.brk(want), want);
                unmap_model(model, want, old_end.saturating_sub(want));
                for a in (old_end..want).step_by(P as usize) {
                    model.insert(a, (RW, 0));
                }
            }
            Op::Write { page, byte } => {
                let addr = resolve(model, page, true);
                let expect = expect_access(model, addr, true);
                assert_eq!(write(env, mm, addr, byte), expect.map(drop), "write at {addr:#x}");
                if expect.is_ok() {
                    model.get_mut(&addr).unwrap().1 = byte;
                }
            }
            Op::Read { page } => {
                let addr = resolve(model, page, true);
                assert_eq!(read(env, mm, addr), expect_access(model, addr, false), "read at {addr:#x}");
            }
            Op::Dontneed { page, pages } => {
                let addr = resolve(model, page, false);
                let holes = (0..pages).any(|i| !model.contains_key(&(addr + i * P)));
                let want = if holes { Err(Errno::ENOMEM) } else { Ok(()) };
                assert_eq!(mm.madvise(addr, pages * P, MADV_DONTNEED), want);
                for (_, v) in model.range_mut(addr..addr + pages * P) {
                    v.1 = 0;
                }
            }
            Op::Fork => {
                if procs.len() < 3 {
                    let mut child = env.mm();
                    let (mm, model) = &mut procs[cur];
                    mm.dup_mmap(&mut child).unwrap();
                    let model = model.clone();
                    procs.push((child, model));
                }
            }
            Op::Exit => {
                if procs.len() > 1 {
                    let (mut mm, _) = procs.swap_remove(cur);
                    mm.exit_mmap();
                    cur = 0;
                }
            }
            Op::Switch => cur = (cur + 1) % procs.len(),
        }
        for (mm, model) in &procs {
            check_mm(env, mm, model);
        }
        check_node_state(env, procs.iter().map(|(mm, model)| (mm, model)));
    }
}

/// Checks the node state against the address spaces: `nr_anon_pages`
/// counts each distinct anonymous page mapped anywhere once (pages shared
/// after a fork too), `nr_mapped` the file pages likewise,
/// `nr_page_table_pages` every table of every tree, and the committed
/// total ([`crate::overcommit`]) the pages of every `VM_ACCOUNT` VMA.
fn check_node_state<'m, 'e: 'm>(env: &Env<'e>, procs: impl Iterator<Item = (&'m Mm<'e>, &'m Model)>) {
    let mut pages = std::collections::BTreeSet::new();
    let mut tables = env.kernel.nr_tables();
    let mut accounted = 0;
    for (mm, model) in procs {
        accounted += accounted_pages(mm);
        tables += mm.nr_ptes();
        pages.extend(model.keys().filter_map(|&addr| pfn_at(mm, addr)).filter(|&pfn| pfn != env.zero));
    }
    let anon = pages.iter().filter(|&&pfn| crate::rmap::page_anon(env.page(pfn))).count() as u64;
    assert_eq!(state(env.pgdat, NodeStatItem::NrAnonMapped), anon, "nr_anon_pages");
    assert_eq!(state(env.pgdat, NodeStatItem::NrFileMapped), pages.len() as u64 - anon, "nr_mapped");
    assert_eq!(state(env.pgdat, NodeStatItem::NrPagetable), tables, "nr_page_table_pages");
    assert_eq!(env.pgdat.overcommit().committed_as(), accounted, "Committed_AS");
}

/// Pages of the `VM_ACCOUNT` VMAs of `mm`.
pub(crate) fn accounted_pages(mm: &Mm<'_>) -> u64 {
    mm.vmas().iter().filter(|v| v.flags().contains(VmaFlags::ACCOUNT)).map(|v| v.pages()).sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn address_space_matches_model(ops in proptest::collection::vec(op_strategy(), 1..48)) {
        with_env(|env| run_ops(env, &ops));
    }
}

/// Faults on the same pages from several CPUs at once, each holding only
/// a shared borrow (the kernel's mmap lock held for reading): every page
/// ends up mapped once, by one page, with its RSS and rmap counted once,
/// and the pages of the losing faults go back (`with_env` checks nothing
/// leaked). Rounds: write faults on empty ptes, read faults (zero page),
/// then copy-on-write faults on pages shared with a fork child.
#[test]
fn concurrent_faults_on_the_same_pages_map_each_page_once() {
    const PAGES: u64 = 32;
    const CPUS: usize = 4;
    const ROUNDS: usize = 200;
    /// Every CPU faults every page of `[base, base + PAGES * P)`, all
    /// starting together at different pages.
    fn fault_all(mm: &Mm<'_>, base: u64, write: bool) {
        let start = std::sync::Barrier::new(CPUS);
        std::thread::scope(|s| {
            for cpu in 0..CPUS {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    for i in 0..PAGES {
                        let page = (i + cpu as u64 * 7) % PAGES;
                        let access = FaultAccess { write, exec: false };
                        assert_eq!(mm.handle_mm_fault(va(base + page * P), access), Ok(()));
                    }
                });
            }
        });
    }
    with_env(|env| {
        let mut mm = env.mm();
        for _ in 0..ROUNDS {
            // Fresh VMAs each round (MAP_FIXED zaps the last round's).
            mmap_fixed(&mut mm, X, PAGES * P, RW);
            mmap_fixed(&mut mm, X + PAGES * P, PAGES * P, PROT_READ);
            fault_all(&mm, X, true);
            fault_all(&mm, X + PAGES * P, false);
            assert_eq!(mm.counter(MmCounter::AnonPages), PAGES, "one page per written address");
            assert_eq!(state(env.pgdat, NodeStatItem::NrAnonMapped), PAGES);
            env.pgdat.lru_add_drain_all();
            for i in 0..PAGES {
                assert_eq!(pfn_at(&mm, X + PAGES * P + i * P), Some(env.zero), "reads map the zero page");
                let page = env.page(pfn_at(&mm, X + i * P).unwrap());
                assert_eq!((page.refcount(), page.mapcount()), (1, 1));
            }
            let mut child = env.mm();
            mm.dup_mmap(&mut child).unwrap();
            fault_all(&mm, X, true);
            env.pgdat.lru_add_drain_all();
            for i in 0..PAGES {
                let (ours, theirs) = (pfn_at(&mm, X + i * P).unwrap(), pfn_at(&child, X + i * P).unwrap());
                assert_ne!(ours, theirs, "the write copied");
                assert_eq!(env.page(ours).refcount(), 1);
                assert_eq!(env.page(theirs).refcount(), 1, "the child's page lost the parent's reference once");
            }
            assert_eq!(mm.counter(MmCounter::AnonPages), PAGES);
            assert_eq!(state(env.pgdat, NodeStatItem::NrAnonMapped), 2 * PAGES);
            teardown(child);
        }
        teardown(mm);
    });
}
