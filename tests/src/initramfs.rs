//! The initramfs xtask builds (xtask/src/initramfs.rs), as the rootfs
//! holds it after boot (kernel/src/fs/initramfs.rs): its tree and bytes,
//! its files' pages in the page cache as shmem, shared by the processes
//! running a program, and the ramdisk's memory given back. The cpio
//! parser's own tests, corrupt archives among them, run on the host
//! (formats/src/cpio.rs).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use kernel::elf::ElfFile;
use kernel::fs::syscalls::{kern, kern_path};
use ktest_macros::ktest;
use mm::page_flags::PageFlags;
use mm::vmstat::NodeStatItem;
use mm::{PAGE_SIZE, VirtAddr};
use uapi::stat::{S_IFCHR, S_IFMT};

/// The regular files of directory `dir` of the rootfs, as paths.
fn files_in(dir: &str) -> Vec<String> {
    kern::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e:?}"))
        .into_iter()
        .filter(|e| e.d_type == uapi::fs::DT_REG)
        .map(|e| format!("{dir}/{}", String::from_utf8_lossy(&e.name)))
        .collect()
}

/// `field:` of /proc/meminfo, in pages.
fn meminfo_pages(field: &str) -> u64 {
    let text = format!("{}", kernel::mm::meminfo());
    let line = text.lines().find(|l| l.split(':').next() == Some(field)).expect("the field");
    let kb: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number");
    kb / 4
}

#[ktest]
fn initramfs_holds_init_dev_console_and_the_program_directories() {
    let init = kern_path("/init").expect("/init").inode.getattr().expect("stat");
    assert!(init.is_reg() && init.mode & 0o111 != 0, "/init is an executable file: {:o}", init.mode);
    let console = kern_path("/dev/console").expect("/dev/console").inode.getattr().expect("stat");
    assert_eq!((console.mode & S_IFMT, console.rdev), (S_IFCHR, (5 << 8) | 1), "/dev/console is char 5,1");
    for dir in ["/bin", "/bench", "/dev", "/etc"] {
        let entries = kern::read_dir(dir).unwrap_or_else(|e| panic!("{dir}: {e:?}"));
        assert!(!entries.is_empty(), "nothing under {dir}");
    }
    let hello = kern_path("/bin/hello").expect("/bin/hello").inode.getattr().expect("stat");
    assert!(hello.is_reg() && hello.size > 0, "/bin/hello");
}

#[ktest]
fn check_file_arrives_with_its_pattern() {
    // xtask::initramfs::check_file: a 16-byte magic, then byte i of the file
    // is (i * 7 + 3) % 251, over an odd length.
    let check = kern::read_file("/etc/initramfs-check").expect("/etc/initramfs-check");
    assert!(check.len() > 16 && check.len() % 2 == 1, "odd length beyond the magic: {}", check.len());
    assert_eq!(&check[..16], b"INITRAMFS-CHECK1", "magic");
    for (i, &b) in check.iter().enumerate().skip(16) {
        assert_eq!(b, ((i * 7 + 3) % 251) as u8, "byte {i}");
    }
}

/// The rootfs is a tmpfs: every unpacked file's bytes are in its page
/// cache, whole, in swapbacked pages that /proc/meminfo counts in
/// `Shmem:` and `Cached:`.
#[ktest]
fn the_unpacked_files_are_shmem_pages_of_the_page_cache() {
    let mut pages = 0;
    let paths = ["/bin", "/bench", "/etc"].into_iter().flat_map(files_in);
    for path in paths.chain([String::from("/init")]) {
        let inode = kern_path(&path).expect("the file").inode;
        let mapping = inode.i_mapping.as_ref().unwrap_or_else(|| panic!("{path} has no page cache"));
        assert!(mapping.is_swapbacked(), "{path} is not a shmem file");
        let expected = inode.getattr().expect("stat").size.div_ceil(PAGE_SIZE);
        assert_eq!(mapping.nrpages(), expected, "{path}: every page is cached");
        if let Some(folio) = mapping.find_get(0) {
            let flags = folio.page().flags();
            assert!(flags.contains(PageFlags::SWAPBACKED | PageFlags::UPTODATE), "{path}: {flags:?}");
        }
        pages += expected;
    }
    assert!(pages > 100, "only {pages} pages unpacked");
    let shmem = kernel::mm::pgdat().node_page_state_pages(NodeStatItem::NrShmem);
    assert!(shmem >= pages, "NR_SHMEM {shmem} < the rootfs's {pages} pages");
    assert!(meminfo_pages("Shmem") >= pages, "Shmem: below the rootfs's {pages} pages");
    assert!(meminfo_pages("Cached") >= pages, "Cached: below the rootfs's {pages} pages");
}

/// Two processes running one program from the rootfs map the same page
/// of its text: the page cache's page, mapped twice.
#[ktest(timeout = 60)]
fn two_processes_running_one_program_share_its_text_pages() {
    let path = "/bin/sleep";
    let image = kern::read_file(path).expect(path);
    let elf = ElfFile::parse(&image).expect("an ELF executable");
    let entry = elf.entry();
    let text = elf.load_segments().find(|s| s.contains(entry)).expect("the entry's segment");
    let index = (entry - text.vaddr + text.offset) / PAGE_SIZE;
    let inode = kern_path(path).expect(path).inode;
    let mapping = inode.i_mapping.as_ref().expect("a page cache");
    let cached = mapping.find_get(index).expect("the entry's page is cached since boot");
    let tasks: Vec<_> = (0..2)
        .map(|_| kernel::process::spawn_user(path, &[path, "30", "0"], None).expect("spawn /bin/sleep"))
        .collect();
    let entry_page = VirtAddr::new(entry & !(PAGE_SIZE - 1)).expect("a user address");
    let deadline = kernel::arch::x86_64::tsc::now_ns() + 30_000_000_000;
    let pfns: Vec<_> = tasks
        .iter()
        .map(|task| {
            loop {
                let leaf = task.proc.mm().and_then(|mm| mm.mmap_read_lock().follow_pte(entry_page));
                if let Some(leaf) = leaf {
                    break leaf.phys.pfn();
                }
                assert!(kernel::arch::x86_64::tsc::now_ns() < deadline, "pid {} never ran its first page", task.pid);
                kernel::sched::yield_now();
            }
        })
        .collect();
    let shared_mapcount = cached.page().mapcount();
    for task in &tasks {
        kernel::signal::send_signal(task, uapi::signal::SIGKILL, None);
    }
    let pids: Vec<_> = tasks.iter().map(|t| t.pid as i32).collect();
    drop(tasks);
    for pid in pids {
        kernel::process::do_wait(pid, false).expect("wait").expect("reaped");
    }
    assert_eq!(pfns, [cached.pfn(), cached.pfn()], "both map the cached page, no copy");
    // At least these two map it (a `sleep` an earlier test left running
    // may too, until it ends).
    assert!(shared_mapcount >= 2, "the cached page's mapcount is {shared_mapcount}");
}

/// After unpacking, the ramdisk is unmapped and its frames are the buddy
/// allocator's (Linux `free_initrd_mem`): managed pages, out of
/// memblock's reserved array, so `MemTotal` and `MemFree` grew by the
/// archive's size.
#[ktest]
fn the_ramdisk_is_unmapped_and_its_frames_given_to_the_allocator() {
    let rd = kernel::boot::params().ramdisk.expect("the test kernel boots with a ramdisk");
    assert!(
        kernel::arch::x86_64::paging::translate(rd.virt.as_u64()).is_none(),
        "the ramdisk at {:#x} is still mapped",
        rd.virt
    );
    let pgdat = kernel::mm::pgdat();
    let first = rd.phys.pfn().as_u64();
    let end = (rd.phys.as_u64() + rd.len).div_ceil(PAGE_SIZE);
    assert!(end - first >= rd.len / PAGE_SIZE, "{} frames for {} bytes", end - first, rd.len);
    let memblock = kernel::mm::memblock().expect("memblock kept");
    for pfn in first..end {
        let page = pgdat.pfn_to_page(mm::Pfn::new(pfn)).expect("the ramdisk is RAM");
        assert!(!page.test(PageFlags::RESERVED), "ramdisk frame {pfn:#x} is still reserved");
        assert!(!memblock.is_region_reserved(mm::Pfn::new(pfn).phys(), PAGE_SIZE), "memblock reserves {pfn:#x}");
    }
}
