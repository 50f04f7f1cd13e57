//! shmem (kernel/src/shmem.rs, kernel/src/memfd.rs): the user-space
//! shmem test (tests/user/shmem_test.c, which also passes on Linux) and
//! the page-cache file test on a tmpfs mount, and what a user program
//! cannot see: a tmpfs file's pages are swapbacked and counted in
//! `NR_SHMEM` (`Shmem:` in /proc/meminfo), never dirty for writeback,
//! kept by drop_caches and fsync, kept when no VFS inode holds the file,
//! never added for a read of a hole, and freed by truncation and by the
//! unlink of the last name.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use kernel::fs::inode::Inode;
use kernel::fs::namei;
use kernel::fs::syscalls::{kern, kern_parent, kern_path};
use kernel::process::run_user;
use ktest_macros::ktest;
use mm::page_flags::PageFlags;
use mm::vmstat::NodeStatItem;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh tmpfs mount.
fn mount_tmpfs() -> String {
    let dir = format!("/shmem-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    kern::mkdir(&dir).unwrap_or_else(|e| panic!("mkdir {dir}: {e:?}"));
    kern::mount("tmpfs", &dir, "tmpfs", false).expect("mount tmpfs");
    dir
}

fn run(program: &str, argv: &[&str]) -> String {
    let (status, out) = run_user(program, argv).unwrap_or_else(|e| panic!("running {program}: {e:?}"));
    let out = String::from_utf8_lossy(&out).into_owned();
    assert_eq!(status, 0, "{argv:?}:\n{out}");
    out
}

fn inode(path: &str) -> Arc<Inode> {
    kern_path(path).unwrap_or_else(|e| panic!("{path}: {e:?}")).inode
}

fn state(item: NodeStatItem) -> u64 {
    kernel::mm::pgdat().node_page_state_pages(item)
}

/// `Shmem:` of /proc/meminfo, in pages.
fn meminfo_shmem_pages() -> u64 {
    let text = format!("{}", kernel::mm::meminfo());
    let line = text.lines().find(|l| l.starts_with("Shmem:")).expect("a Shmem: line");
    let kb: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number");
    kb / 4
}

/// Bytes `i*7 % 251` from `start`.
fn pattern(start: usize, len: usize) -> Vec<u8> {
    (start..start + len).map(|i| (i * 7 % 251) as u8).collect()
}

#[ktest(timeout = 60)]
fn shmem_test_passes_on_tmpfs() {
    let dir = mount_tmpfs();
    let out = run("/bin/shmem_test", &["/bin/shmem_test", &dir]);
    assert!(out.contains("PASS shmem_test"), "{out}");
    kern::umount(&dir).expect("umount");
}

#[ktest(timeout = 60)]
fn mmap_file_test_passes_on_tmpfs() {
    let dir = mount_tmpfs();
    let out = run("/bin/mmap_file_test", &["/bin/mmap_file_test", &dir]);
    assert!(out.contains("PASS mmap_file_test"), "{out}");
    kern::umount(&dir).expect("umount");
}

#[ktest]
fn tmpfs_pages_are_shmem_kept_by_drop_caches_and_freed_by_truncate_and_unlink() {
    let dir = mount_tmpfs();
    let path = format!("{dir}/data");
    kernel::mm::drop_caches();
    let (shmem_before, dirty_before) = (state(NodeStatItem::NrShmem), state(NodeStatItem::NrFileDirty));
    let dirty_inodes = kernel::fs::fs_writeback::nr_dirty_inodes();
    kern::write_file(&path, &pattern(0, 10 * 4096)).expect("write");
    let file = inode(&path);
    let mapping = file.i_mapping.clone().expect("a tmpfs file has a page cache");
    assert!(mapping.is_swapbacked());
    assert_eq!(mapping.nrpages(), 10);
    assert_eq!(state(NodeStatItem::NrShmem), shmem_before + 10, "counted in NR_SHMEM");
    assert!(meminfo_shmem_pages() >= 10, "and in Shmem: of /proc/meminfo");
    let page = mapping.find_get(3).expect("a cached page");
    let flags = page.page().flags();
    assert!(flags.contains(PageFlags::SWAPBACKED | PageFlags::DIRTY | PageFlags::UPTODATE), "{flags:?}");
    drop(page);
    assert_eq!(state(NodeStatItem::NrFileDirty), dirty_before, "never dirty for writeback");
    assert!(!mapping.has_dirty());
    assert_eq!(kernel::fs::fs_writeback::nr_dirty_inodes(), dirty_inodes, "never on the dirty list");
    assert_eq!(file.getattr().map(|st| st.blocks), Ok(80), "st_blocks counts the pages");

    // A clean page, as a read fault of a hole leaves one: zeros, uptodate.
    kernel::fs::read_write::do_truncate(&file, 11 * 4096).expect("grow by a hole");
    let clean = kernel::filemap::read_cache_page(&file, 10).expect("the hole's page");
    assert!(!clean.page().test(PageFlags::DIRTY) && clean.page().test(PageFlags::SWAPBACKED));
    drop(clean);

    // Nothing writes it back or drops it.
    kernel::filemap::write_and_wait(&file).expect("write-back of shmem is nothing");
    let mut since = mapping.sample_wb_err();
    kernel::fs::read_write::vfs_fsync(&file, &mut since).expect("fsync succeeds");
    kernel::fs::namespace::sync_all().expect("sync");
    let dropped = kernel::mm::drop_caches().pagecache_pages;
    assert_eq!(mapping.nrpages(), 11, "drop_caches keeps shmem pages, clean or not ({dropped} others went)");
    assert_eq!(kernel::filemap::invalidate_mapping_pages(&mapping), 0);
    mapping.check().expect("the cache's invariants");

    // The file outlives its VFS inode: nothing else holds the data.
    drop(file);
    let mut expected = pattern(0, 10 * 4096);
    expected.resize(11 * 4096, 0);
    assert_eq!(kern::read_file(&path), Ok(expected), "the data after the VFS inode went");

    // A read of a hole adds no page.
    let file = inode(&path);
    kernel::fs::read_write::do_truncate(&file, 100 << 20).expect("a sparse 100 MiB");
    assert_eq!(kern::pread(&path, 50 << 20, 4096), Ok(alloc::vec![0u8; 4096]), "the hole reads as zeros");
    assert_eq!(mapping.nrpages(), 11, "and stays a hole");

    kernel::fs::read_write::do_truncate(&file, 3 * 4096 + 100).expect("truncate");
    assert_eq!(mapping.nrpages(), 4);
    assert_eq!(state(NodeStatItem::NrShmem), shmem_before + 4, "truncation frees the pages past the end");
    assert_eq!(kern::pread(&path, 3 * 4096, 4096), Ok(pattern(3 * 4096, 100)), "the partial page is cut");
    drop((file, mapping));
    namei::vfs_unlink(&kern_parent(&path).expect("parent")).expect("unlink");
    assert_eq!(state(NodeStatItem::NrShmem), shmem_before, "unlinking the last name frees the rest");
    kern::umount(&dir).expect("umount");
}

#[ktest]
fn an_open_unlinked_tmpfs_file_keeps_its_pages_until_the_last_holder_goes() {
    let dir = mount_tmpfs();
    let path = format!("{dir}/held");
    let shmem_before = state(NodeStatItem::NrShmem);
    kern::write_file(&path, &pattern(0, 3 * 4096)).expect("write");
    let file = inode(&path);
    namei::vfs_unlink(&kern_parent(&path).expect("parent")).expect("unlink");
    assert_eq!(state(NodeStatItem::NrShmem), shmem_before + 3, "the holder keeps the pages");
    let mut buf = alloc::vec![0u8; 3 * 4096];
    let n = kernel::fs::read_write::kernel_read(&file, 0, &mut buf).expect("read");
    assert_eq!(&buf[..n], &pattern(0, 3 * 4096)[..]);
    drop(file);
    assert_eq!(state(NodeStatItem::NrShmem), shmem_before, "and they go with it");
    kern::umount(&dir).expect("umount");
}

/// `MADV_REMOVE` frees a shmem page another address space maps too: the
/// file's reverse map names that space, whose pte goes first (Linux
/// `shmem_fallocate`'s `unmap_mapping_range`), so the page leaves the
/// cache instead of being zeroed in place, and the other mapper's next
/// touch finds the hole.
#[ktest]
fn madvise_remove_frees_a_page_another_address_space_maps() {
    use kernel::filemap::MappedFile;
    use kernel::mmap::{handle_user_fault, mm_alloc};
    use mm::memory::FaultAccess;
    use mm::mmap::MapFile;
    use uapi::mman::{MADV_REMOVE, MAP_FIXED, MAP_SHARED, PROT_READ, PROT_WRITE};

    const X: u64 = 0x5000_0000;
    const P: u64 = 4096;
    let dir = mount_tmpfs();
    let path = format!("{dir}/punched");
    kern::write_file(&path, &pattern(0, 2 * P as usize)).expect("write 2 pages");
    let file = inode(&path);
    let mapped = MappedFile::new(file.clone(), path.clone(), None);
    let (a, b) = (mm_alloc().expect("mm"), mm_alloc().expect("mm"));
    let write = FaultAccess { write: true, exec: false };
    for mm in [&a, &b] {
        let f = Some(MapFile { file: MappedFile::as_vma_file(&mapped), writable: true });
        let got = mm.mmap_write_lock().do_mmap(X, 2 * P, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, f, 0);
        assert_eq!(got, Ok(X));
        handle_user_fault(mm, mm::VirtAddr::new(X).expect("user address"), write).expect("write fault");
    }
    let page = file.i_mapping.as_ref().expect("a page cache").find_get(0).expect("page 0 is cached");
    assert_eq!(page.page().mapcount(), 2, "both address spaces map page 0");
    drop(page);
    let shmem = state(NodeStatItem::NrShmem);
    assert_eq!(a.mmap_write_lock().madvise(X, P, MADV_REMOVE), Ok(()));
    assert_eq!(state(NodeStatItem::NrShmem), shmem - 1, "the page left the cache, not zeroed in place");
    assert!(file.i_mapping.as_ref().expect("a page cache").find_get(0).is_none(), "page 0 is a hole");
    // B's pte went with it: its next touch faults the hole in afresh.
    handle_user_fault(&b, mm::VirtAddr::new(X).expect("user address"), FaultAccess { write: false, exec: false })
        .expect("read fault");
    assert_eq!(kern::pread(&path, 0, 8).expect("pread"), [0u8; 8], "the hole reads as zeros");
    assert_eq!(kern::pread(&path, P, 8).expect("pread"), pattern(P as usize, 8), "page 1 is untouched");
    drop((a, b, mapped, file));
    kern::umount(&dir).expect("umount");
}
