//! Host tests of the `/proc/PID/` walks: smaps figures for private,
//! forked, copied-on-write, zero-page, swapped and locked memory, their
//! text, pagemap entries and their bits, statm, and reading another
//! address space's memory.

use uapi::mman::{MAP_ANONYMOUS, MAP_FIXED, MAP_GROWSDOWN, MAP_PRIVATE, MAP_SHARED, PROT_EXEC, PROT_READ, PROT_WRITE};

use super::*;
use crate::mmap::tests::{Env, Mm, P, X, access, pfn_at, with_env, write};
use crate::swap_state::tests::{registered, swap_out_pte};

const RW: u32 = PROT_READ | PROT_WRITE;
const PA: u32 = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
const KB: u64 = 1024;

/// The figures of the one VMA holding `addr`.
fn smaps_at(mm: &Mm<'_>, addr: u64) -> MemSizeStats {
    let vma = mm.vmas.vma_lookup(VirtAddr::expect_canonical(addr)).expect("a VMA there");
    let mut mss = MemSizeStats::default();
    mm.smap_gather_stats(vma, &mut mss);
    mss
}

/// `pages` private anonymous pages at `X`, each written.
fn touched<'a>(env: &Env<'a>, pages: u64) -> Mm<'a> {
    let mut mm = env.mm();
    mm.do_mmap(X, pages * P, RW, PA, None, 0).unwrap();
    for i in 0..pages {
        write(env, &mut mm, X + i * P, i as u8 + 1).unwrap();
    }
    mm
}

fn pagemap(mm: &Mm<'_>, addr: u64, pages: usize, show_pfn: bool) -> Vec<u64> {
    let mut out = vec![u64::MAX; pages];
    assert_eq!(mm.pagemap_read(addr / P, &mut out, show_pfn), pages);
    out
}

#[test]
fn sixteen_written_pages_are_private_dirty_anonymous_and_wholly_this_processs() {
    with_env(|env| {
        let mut mm = touched(env, 16);
        let mss = smaps_at(&mm, X);
        assert_eq!(mss.resident, 64 * KB);
        assert_eq!(mss.pss >> PSS_SHIFT, 64 * KB);
        assert_eq!(mss.pss_anon, mss.pss);
        assert_eq!(mss.pss_dirty, mss.pss);
        assert_eq!((mss.private_dirty, mss.private_clean, mss.shared_clean, mss.shared_dirty), (64 * KB, 0, 0, 0));
        assert_eq!((mss.anonymous, mss.referenced, mss.swap, mss.pss_locked), (64 * KB, 64 * KB, 0, 0));
        mm.exit_mmap();
    });
}

#[test]
fn fork_shares_pages_so_each_side_has_half_their_pss_until_a_write_copies_one() {
    with_env(|env| {
        let mut parent = touched(env, 16);
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        for mm in [&parent, &child] {
            let mss = smaps_at(mm, X);
            assert_eq!(mss.resident, 64 * KB);
            assert_eq!(mss.pss >> PSS_SHIFT, 32 * KB, "each page counted half");
            assert_eq!((mss.shared_dirty, mss.private_dirty), (64 * KB, 0));
            assert_eq!(mss.anonymous, 64 * KB);
        }
        // Four copies on write in the child: private to it, and the
        // parent's four originals are its alone again.
        for i in 0..4 {
            write(env, &mut child, X + i * P, 0x77).unwrap();
        }
        let (c, p) = (smaps_at(&child, X), smaps_at(&parent, X));
        assert_eq!((c.private_dirty, c.shared_dirty), (16 * KB, 48 * KB));
        assert_eq!(c.pss >> PSS_SHIFT, 16 * KB + 24 * KB);
        assert_eq!((p.private_dirty, p.shared_dirty), (16 * KB, 48 * KB));
        child.exit_mmap();
        assert_eq!(smaps_at(&parent, X).pss >> PSS_SHIFT, 64 * KB, "alone again");
        parent.exit_mmap();
    });
}

#[test]
fn the_zero_page_is_in_no_ones_rss_but_pagemap_shows_it_present_and_not_exclusive() {
    with_env(|env| {
        let mut mm = env.mm();
        mm.do_mmap(X, 4 * P, RW, PA, None, 0).unwrap();
        for i in 0..4 {
            access(&mut mm, X + i * P, false).unwrap();
        }
        assert_eq!(pfn_at(&mm, X), Some(env.zero));
        assert_eq!(smaps_at(&mm, X), MemSizeStats::default());
        let e = pagemap(&mm, X, 1, true)[0];
        assert_eq!(e, pm::PRESENT | env.zero.as_u64(), "present, the zero page's frame, no other bit");
        mm.exit_mmap();
    });
}

#[test]
fn pagemap_bits_follow_presence_exclusivity_and_the_readers_capability() {
    with_env(|env| {
        let mut parent = env.mm();
        parent.do_mmap(X, 4 * P, RW, PA, None, 0).unwrap();
        write(env, &mut parent, X, 1).unwrap();
        write(env, &mut parent, X + P, 2).unwrap();
        let pfn = pfn_at(&parent, X).unwrap().as_u64();
        let e = pagemap(&parent, X, 4, true);
        assert_eq!(e[0], pm::PRESENT | pm::MMAP_EXCLUSIVE | pfn);
        assert_eq!(e[2..], [0, 0], "untouched pages: nothing");
        assert_eq!(
            pagemap(&parent, X, 1, false)[0],
            pm::PRESENT | pm::MMAP_EXCLUSIVE,
            "no frame without the capability"
        );
        assert_eq!(pagemap(&parent, X - 16 * P, 2, true), [0, 0], "outside any VMA");
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        let (p, c) = (pagemap(&parent, X, 1, true)[0], pagemap(&child, X, 1, true)[0]);
        assert_eq!(p, c, "the same frame in both before a write");
        assert_eq!(p, pm::PRESENT | pfn, "mapped twice: not exclusive");
        write(env, &mut child, X, 9).unwrap();
        let c = pagemap(&child, X, 1, true)[0];
        assert_ne!(c & pm::PFRAME_MASK, pfn, "the child's copy");
        assert_eq!(c & !pm::PFRAME_MASK, pm::PRESENT | pm::MMAP_EXCLUSIVE);
        assert_eq!(
            pagemap(&parent, X, 1, true)[0],
            pm::PRESENT | pm::MMAP_EXCLUSIVE | pfn,
            "the original is the parent's"
        );
        child.exit_mmap();
        parent.exit_mmap();
    });
}

#[test]
fn pagemap_stops_at_the_end_of_user_space_and_reads_past_it_are_empty() {
    with_env(|env| {
        let mm = env.mm();
        let last = TASK_SIZE / P;
        let mut out = [7u64; 8];
        assert_eq!(mm.pagemap_read(last - 3, &mut out, true), 3);
        assert_eq!(out[..3], [0, 0, 0]);
        assert_eq!(mm.pagemap_read(last, &mut out, true), 0);
        assert_eq!(mm.pagemap_read(u64::MAX / 8, &mut out, true), 0);
    });
}

#[test]
fn shared_anonymous_pages_are_file_pages_in_pagemap_and_shmem_in_pss() {
    with_env(|env| {
        let mut mm = env.mm();
        mm.do_mmap(X, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        write(env, &mut mm, X, 1).unwrap();
        let e = pagemap(&mm, X, 1, false)[0];
        assert_eq!(e, pm::PRESENT | pm::FILE | pm::MMAP_EXCLUSIVE);
        let mss = smaps_at(&mm, X);
        assert_eq!((mss.resident, mss.anonymous), (4 * KB, 0), "shmem is not anonymous in smaps");
        assert_eq!((mss.pss_shmem, mss.pss_anon, mss.pss_file), (mss.pss, 0, 0));
        mm.exit_mmap();
    });
}

#[test]
fn swap_entries_count_in_swap_and_in_swap_pss_by_their_swap_count() {
    with_env(|env| {
        let swap = registered(env);
        let mut parent = env.mm();
        parent.do_mmap(X, 4 * P, RW, PA, None, 0).unwrap();
        write(env, &mut parent, X, 1).unwrap();
        let entry = SwpEntry::new(1, 10);
        swap_out_pte(&parent, swap, X + P, entry);
        let mss = smaps_at(&parent, X);
        assert_eq!((mss.swap, mss.swap_pss >> PSS_SHIFT, mss.resident), (4 * KB, 4 * KB, 4 * KB));
        let e = pagemap(&parent, X + P, 1, true)[0];
        assert_eq!(e, pm::SWAP | 1 | (10 << MAX_SWAPFILES_SHIFT), "type 1, offset 10");
        assert_eq!(pagemap(&parent, X + P, 1, false)[0], pm::SWAP, "no swap location without the capability");
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        for mm in [&parent, &child] {
            let mss = smaps_at(mm, X);
            assert_eq!((mss.swap, mss.swap_pss >> PSS_SHIFT), (4 * KB, 2 * KB), "two ptes share the slot");
        }
        child.exit_mmap();
        parent.exit_mmap();
    });
}

#[test]
fn locked_memory_counts_its_pss_in_locked() {
    with_env(|env| {
        let mut mm = touched(env, 4);
        mm.mlock(X, 4 * P).unwrap();
        let mss = smaps_at(&mm, X);
        assert_eq!(mss.pss_locked >> PSS_SHIFT, 16 * KB);
        assert_eq!(mm.locked_vm(), 4);
        mm.exit_mmap();
    });
}

#[test]
fn smaps_text_has_linuxs_lines_in_linuxs_order() {
    with_env(|env| {
        let mut mm = touched(env, 16);
        let mut text = String::new();
        mm.show_smaps(&mut text).unwrap();
        let expected = format!("{X:08x}-{:08x} rw-p 00000000 00:00 0\n", X + 16 * P);
        let names: Vec<&str> = text.lines().skip(1).map(|l| l.split(':').next().unwrap()).collect();
        assert_eq!(
            names,
            [
                "Size",
                "KernelPageSize",
                "MMUPageSize",
                "Rss",
                "Pss",
                "Pss_Dirty",
                "Shared_Clean",
                "Shared_Dirty",
                "Private_Clean",
                "Private_Dirty",
                "Referenced",
                "Anonymous",
                "KSM",
                "LazyFree",
                "AnonHugePages",
                "ShmemPmdMapped",
                "FilePmdMapped",
                "Shared_Hugetlb",
                "Private_Hugetlb",
                "Swap",
                "SwapPss",
                "Locked",
                "THPeligible",
                "VmFlags",
            ]
        );
        assert!(text.starts_with(&expected), "{text}");
        assert!(text.contains("\nSize:                 64 kB\n"), "{text}");
        assert!(text.contains("\nRss:                  64 kB\nPss:                  64 kB\n"), "{text}");
        assert!(text.contains("\nPrivate_Hugetlb:       0 kB\n"), "{text}");
        assert!(text.ends_with("\nVmFlags: rd wr mr mw me ac \n"), "{text}");
        let mut rollup = String::new();
        mm.show_smaps_rollup(&mut rollup).unwrap();
        let head = rollup.lines().next().unwrap();
        assert!(head.starts_with(&format!("{X:08x}-{:08x} ---p 00000000 00:00 0", X + 16 * P)), "{rollup}");
        assert!(head.ends_with(" [rollup]") && head.find('[') == Some(73), "{head}");
        assert!(rollup.contains("\nPss_Anon:             64 kB\nPss_File:              0 kB\n"), "{rollup}");
        mm.exit_mmap();
    });
}

#[test]
fn statm_counts_data_stack_and_text_pages() {
    with_env(|env| {
        let mut mm = touched(env, 3);
        mm.do_mmap(X + 64 * P, 2 * P, PROT_READ | PROT_EXEC, PA, None, 0).unwrap();
        mm.do_mmap(X + 128 * P, 5 * P, RW, PA | MAP_GROWSDOWN, None, 0).unwrap();
        (mm.layout.start_code, mm.layout.end_code) = (X + 64 * P + 16, X + 65 * P + 1);
        let statm = mm.task_statm();
        assert_eq!(statm, Statm { size: 10, resident: 3, shared: 0, text: 2, data: 3 + 5 });
        assert_eq!((mm.data_vm(), mm.stack_vm(), mm.exec_vm()), (3, 5, 2));
        mm.exit_mmap();
    });
}

#[test]
fn another_task_reads_written_bytes_faults_in_untouched_pages_and_stops_at_a_hole() {
    with_env(|env| {
        let mut mm = env.mm();
        mm.do_mmap(X, 2 * P, RW, PA, None, 0).unwrap();
        write(env, &mut mm, X, 0x41).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(mm.access_remote_vm(X + P - 8, &mut buf), 16, "across the page boundary");
        assert_eq!(buf[..8], [0x41; 8]);
        assert_eq!(buf[8..], [0; 8], "the untouched page reads as zeros");
        assert!(pfn_at(&mm, X + P).is_some(), "faulted in for the read");
        let mut long = [0u8; 3 * P as usize];
        assert_eq!(mm.access_remote_vm(X, &mut long), 2 * P as usize, "stops where the VMA ends");
        mm.exit_mmap();
    });
}
