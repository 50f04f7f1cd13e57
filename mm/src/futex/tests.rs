//! Host tests of futex keys: each kind of mapping gives the key Linux
//! gives it, and keys spread over the hash buckets.

use super::*;
use crate::addr::{Pfn, VirtAddr};
use crate::page_alloc::PgData;
use crate::readahead::VmaRaAdvice;
use crate::vma::{FaultPage, FileFaultError, VmaFile};

const P: u64 = PAGE_SIZE;
const BASE: u64 = 0x4000_0000;
const MM: u64 = 0x1000;
const OTHER_MM: u64 = 0x2000;
const RW: VmaFlags = VmaFlags::READ.union(VmaFlags::WRITE);

/// A file with a page cache of id `mapping` (or none); never faulted.
struct TestFile {
    mapping: Option<u64>,
}

impl VmaFile for TestFile {
    fn name(&self) -> &str {
        "test"
    }

    fn mapping_id(&self) -> Option<u64> {
        self.mapping
    }

    fn get_file(&self) {}

    fn put_file(&self) {}

    fn fault(&self, _: &PgData<'_>, _: u64, _: VmaRaAdvice) -> Result<FaultPage, FileFaultError> {
        unreachable!("keys never fault")
    }

    fn map_pages(&self, _: &PgData<'_>, _: u64, _: u64, _: &mut dyn FnMut(u64, Pfn)) {
        unreachable!("keys never fault")
    }

    fn page_mkwrite(&self, _: &PgData<'_>, _: u64, _: Pfn) -> Result<(), FileFaultError> {
        unreachable!("keys never fault")
    }

    fn set_page_dirty(&self, _: &PgData<'_>, _: u64, _: Pfn) {
        unreachable!("keys never zap")
    }

    fn fsync_range(&self, _: u64, _: u64) -> Result<(), Errno> {
        unreachable!("keys never write back")
    }

    fn willneed(&self, _: u64, _: u64) {
        unreachable!("keys never advise")
    }

    fn mincore_page(&self, _: u64) -> bool {
        unreachable!("keys never ask")
    }
}

static FILE: TestFile = TestFile { mapping: Some(0x77_0000) };
static OTHER_FILE: TestFile = TestFile { mapping: Some(0x88_0000) };
static NO_CACHE: TestFile = TestFile { mapping: None };

fn va(page: u64) -> VirtAddr {
    VirtAddr::expect_canonical(BASE + page * P)
}

/// A VMA of pages `[start, end)` of the test window.
fn vma(start: u64, end: u64, flags: VmaFlags, file: Option<&'static TestFile>, pgoff: u64) -> VmaDesc {
    let file = file.map(|f| f as &'static dyn VmaFile);
    VmaDesc { start: va(start), end: va(end), flags, pgoff, file }
}

fn shared_file(start: u64, end: u64, file: &'static TestFile, pgoff: u64) -> VmaDesc {
    vma(start, end, RW | VmaFlags::SHARED | VmaFlags::MAYSHARE, Some(file), pgoff)
}

fn word(page: u64, offset: u64) -> FutexAddr {
    FutexAddr::new(BASE + page * P + offset).expect("a test word is valid")
}

#[test]
fn an_unaligned_word_is_einval_before_a_kernel_one_is_efault() {
    assert_eq!(FutexAddr::new(BASE + 2), Err(Errno::EINVAL));
    assert_eq!(FutexAddr::new(TASK_SIZE + 1), Err(Errno::EINVAL), "alignment is checked first");
    assert_eq!(FutexAddr::new(TASK_SIZE), Err(Errno::EFAULT));
    assert_eq!(FutexAddr::new(0xffff_8000_0000_0000), Err(Errno::EFAULT));
    assert_eq!(FutexAddr::new(u64::MAX - 3), Err(Errno::EFAULT), "the end wraps");
    assert_eq!(FutexAddr::new(TASK_SIZE - 4).map(FutexAddr::as_u64), Ok(TASK_SIZE - 4));
    assert_eq!(FutexAddr::new(0).map(FutexAddr::as_u64), Ok(0), "address 0 faults on access, not here");
}

#[test]
fn a_private_key_is_the_address_space_and_address_whatever_is_mapped() {
    let key = FutexKey::private(MM, word(3, 8));
    assert_eq!(key, FutexKey::Private { mm: MM, address: BASE + 3 * P + 8 });
    assert_ne!(key, FutexKey::private(OTHER_MM, word(3, 8)));
    assert_ne!(key, FutexKey::private(MM, word(3, 12)));
}

#[test]
fn two_mappings_of_one_file_page_give_one_key_whatever_their_addresses() {
    // Page 5 of the file: at page 10 of the first mapping (pgoff 0),
    // at page 1 of the second (pgoff 4), in another address space.
    let a = FutexKey::shared(MM, word(10 + 5, 40), Some(&shared_file(10, 20, &FILE, 0)));
    let b = FutexKey::shared(OTHER_MM, word(100 + 1, 40), Some(&shared_file(100, 102, &FILE, 4)));
    assert_eq!(a, Ok(FutexKey::Inode { mapping: 0x77_0000, pgoff: 5, offset: 40 }));
    assert_eq!(a, b);
    let other_offset = FutexKey::shared(MM, word(15, 44), Some(&shared_file(10, 20, &FILE, 0)));
    let other_page = FutexKey::shared(MM, word(16, 40), Some(&shared_file(10, 20, &FILE, 0)));
    let other_file = FutexKey::shared(MM, word(15, 40), Some(&shared_file(10, 20, &OTHER_FILE, 0)));
    assert!(other_offset != a && other_page != a && other_file != a);
}

#[test]
fn a_shared_futex_in_writable_private_memory_is_keyed_on_the_address_space() {
    let anon = vma(0, 4, RW, None, 0);
    let key = FutexKey::shared(MM, word(2, 0), Some(&anon));
    assert_eq!(key, Ok(FutexKey::MmShared { mm: MM, address: BASE + 2 * P }));
    assert_ne!(key, Ok(FutexKey::private(MM, word(2, 0))), "private and shared operations do not meet");
    assert_ne!(key, FutexKey::shared(OTHER_MM, word(2, 0), Some(&anon)), "a fork child's copy is not the word");
    // A written private file page is the process's copy (Linux's
    // FOLL_WRITE breaks the copy-on-write first).
    let private_file = vma(0, 4, RW, Some(&FILE), 0);
    assert_eq!(FutexKey::shared(MM, word(2, 0), Some(&private_file)), key);
}

#[test]
fn a_read_only_private_file_page_is_the_files_and_read_only_anonymous_memory_faults() {
    let ro_file = vma(0, 4, VmaFlags::READ, Some(&FILE), 7);
    assert_eq!(
        FutexKey::shared(MM, word(1, 4), Some(&ro_file)),
        Ok(FutexKey::Inode { mapping: 0x77_0000, pgoff: 8, offset: 4 })
    );
    let ro_anon = vma(0, 4, VmaFlags::READ, None, 0);
    assert_eq!(FutexKey::shared(MM, word(1, 4), Some(&ro_anon)), Err(Errno::EFAULT));
}

#[test]
fn a_shared_key_needs_an_accessible_mapping_of_the_word() {
    assert_eq!(FutexKey::shared(MM, word(1, 0), None), Err(Errno::EFAULT), "nothing mapped");
    let none = vma(0, 4, VmaFlags::empty(), None, 0);
    assert_eq!(FutexKey::shared(MM, word(1, 0), Some(&none)), Err(Errno::EFAULT), "PROT_NONE");
    let elsewhere = vma(8, 9, RW, None, 0);
    assert_eq!(FutexKey::shared(MM, word(1, 0), Some(&elsewhere)), Err(Errno::EFAULT), "outside the VMA");
    let uncached = shared_file(0, 4, &NO_CACHE, 0);
    assert_eq!(FutexKey::shared(MM, word(1, 0), Some(&uncached)), Err(Errno::EFAULT), "no page cache");
    let write_only = vma(0, 4, VmaFlags::WRITE, None, 0);
    assert!(FutexKey::shared(MM, word(1, 0), Some(&write_only)).is_ok(), "a writable page can be had");
}

#[test]
fn keys_spread_over_the_buckets() {
    // The words of 16 pages of one address space, each kind, over 256
    // buckets: no bucket holds more than four times its share.
    const BUCKETS: usize = 256;
    let mut count = [0u32; BUCKETS];
    let mut total = 0;
    for i in 0..4096u64 {
        let addr = word(i / 1024, (i % 1024) * 4);
        let keys = [
            FutexKey::private(MM, addr),
            FutexKey::MmShared { mm: MM, address: addr.as_u64() },
            FutexKey::Inode { mapping: 0x77_0000, pgoff: i / 1024, offset: ((i % 1024) * 4) as u32 },
        ];
        for key in keys {
            assert_eq!(key.hash(), key.hash());
            count[(key.hash() >> 56) as usize] += 1;
            total += 1;
        }
    }
    let max = count.iter().copied().max().unwrap_or(0);
    assert!(max <= 4 * total / BUCKETS as u32, "fullest bucket {max} of {total}");
}
