//! Swap areas and their page I/O on virtio scratch disks: swapon and
//! swapoff with Linux's errors and messages, /proc/swaps and
//! /proc/meminfo, every kind of refused header, priorities and the
//! round-robin of equal ones, the entry calls the mm core will make, and
//! a thousand pages written to their slots and read back.
//!
//! Each test makes its own headers (the kernel's mkswap) and leaves no
//! area on, so tests sharing a boot start from no swap at all.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use kernel::block::{self, BlkPlug, BlockDevice, Gendisk};
use kernel::page_io::{SwapIoError, swap_read_folio, swap_read_folio_sync, swap_writepage};
use kernel::swapfile::mkswap::mkswap_disk;
use kernel::swapfile::swapon::{SwapOnFlags, do_swapoff, do_swapon};
use kernel::swapfile::{ProcSwaps, SwapAreas, si_swapinfo, swap_avail_order, swap_info};
use ktest_macros::ktest;
use mm::gfp::GFP_KERNEL;
use mm::page_alloc::Pages;
use mm::swapfile::{COUNT_CONTINUED, SwapEntryError, SwapHeaderError, SwapUuid};
use mm::swapops::SwpEntry;
use mm::vmstat::VmEventItem;
use uapi::errno::Errno;

use crate::block::{Pending, log_tail};

/// The UUID the tests' headers get (and the host check looks for).
const UUID: SwapUuid = SwapUuid([0x5a, 0x11, 0x0c, 0x3e, 0x9d, 0x27, 0x4b, 0x18, 0x8f, 0x04, 0x6a, 0x7c, 1, 2, 3, 4]);

/// Pages of a 16 MiB scratch disk, and its last one.
const DISK_PAGES: u32 = 4096;

fn disk(name: &str) -> Arc<Gendisk> {
    block::disk_by_name(name).unwrap_or_else(|| panic!("no {name}: the scratch disk was not probed"))
}

/// Writes a fresh swap header labelled `label` on `/dev/NAME`.
fn mkswap(name: &str, label: &str) {
    let path = alloc::format!("/dev/{name}");
    let made = mkswap_disk(path.as_bytes(), label.as_bytes(), UUID).unwrap_or_else(|e| panic!("mkswap {path}: {e}"));
    assert_eq!(made.last_page, DISK_PAGES - 1);
}

fn swapon(path: &str, prio: Option<u16>) -> Result<u32, Errno> {
    do_swapon(path.as_bytes(), SwapOnFlags::with_prio(prio).expect("a priority in range"))
}

fn swapoff(path: &str) -> Result<(), Errno> {
    do_swapoff(path.as_bytes())
}

fn proc_swaps() -> String {
    ProcSwaps.to_string()
}

/// The /proc/swaps line of a 16 MiB area on `/dev/NAME` (8 characters)
/// with `used` KiB in use.
fn swaps_line(name: &str, size: u32, used: u32, prio: i32) -> String {
    alloc::format!("/dev/{name}{:32}partition\t{size}\t\t{used}\t\t{prio}", "")
}

const SWAPS_HEADER: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority";

/// A meminfo line's value in KiB.
fn meminfo_kb(name: &str) -> u64 {
    let text = kernel::mm::meminfo().to_string();
    let line = text.lines().find(|l| l.starts_with(&alloc::format!("{name}:"))).expect("meminfo line");
    line[name.len() + 1..line.len() - 3].trim().parse().expect("a number")
}

/// In a boot of its own: the host checks the header after the test, while
/// the kernel goes on, and the next test on the disk would rewrite it.
#[ktest(disk = 16, fresh_boot)]
fn swapon_of_a_good_area_shows_in_proc_swaps_and_meminfo() {
    mkswap("vda", "kswap");
    kernel::kprintln!("host-check: swap {UUID} {} kswap", DISK_PAGES - 1);
    let (total, free) = si_swapinfo();
    let ty = swapon("/dev/vda", None).expect("swapon /dev/vda");
    // The header page is not for swapping: 4095 pages of 4 KiB.
    assert!(log_tail().contains("Adding 16380k swap on /dev/vda.  Priority:-2 extents:1 across:16380k"));
    let text = proc_swaps();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, [SWAPS_HEADER, &swaps_line("vda", 16380, 0, -2)], "{text}");
    assert_eq!(si_swapinfo(), (total + 4095, free + 4095));
    assert_eq!((meminfo_kb("SwapTotal"), meminfo_kb("SwapFree")), (4 * 4095, 4 * 4095));
    let info = swap_info(ty).expect("the area");
    assert_eq!((info.pages, info.inuse_pages, info.prio, info.path()), (4095, 0, -2, "/dev/vda".into()));
    assert_eq!(SwapAreas.total_swap_pages(), 4095);
    // Once on, it is busy: for swapon, for mount and for mkswap.
    assert_eq!(swapon("/dev/vda", None), Err(Errno::EBUSY));
    assert_eq!(kernel::fs::syscalls::kern::mount("/dev/vda", "/", "ext2", false), Err(Errno::EBUSY));
    assert!(mkswap_disk(b"/dev/vda", b"", UUID).is_err());
    swapoff("/dev/vda").expect("swapoff /dev/vda");
    assert_eq!(proc_swaps().lines().collect::<Vec<_>>(), [SWAPS_HEADER]);
    assert_eq!(si_swapinfo(), (total, free));
    assert_eq!(swap_info(ty).map(|i| i.pages), None, "the type is free again");
    assert_eq!(swapoff("/dev/vda"), Err(Errno::EINVAL), "not a swap area any more");
}

/// Writes `bytes` at byte `offset` of `/dev/vda`.
fn write_vda(offset: u64, bytes: &[u8]) {
    let mut dev = BlockDevice::open(&disk("vda")).expect("open vda");
    dev.write_at(offset, bytes).expect("write vda");
}

fn put_u32(page: &mut [u8], offset: usize, value: u32) {
    page[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
}

/// The header `mkswap` writes, as bytes.
fn header_page() -> Vec<u8> {
    mkswap("vda", "");
    let mut page = alloc::vec![0u8; 4096];
    BlockDevice::open(&disk("vda")).expect("open vda").read_at(0, &mut page).expect("read vda");
    page
}

/// swapon of `/dev/vda` as it is now must fail with EINVAL and log
/// `swapon: /dev/vda: {why}`, leaving no area behind.
fn refused(why: SwapHeaderError) {
    let types = swap_avail_order();
    assert_eq!(swapon("/dev/vda", None), Err(Errno::EINVAL), "{why}");
    let line = alloc::format!("swapon: /dev/vda: {why}");
    let log = log_tail();
    assert!(log.contains(&line), "no `{line}` in the log:\n{log}");
    assert_eq!(swap_avail_order(), types);
    assert_eq!(proc_swaps().lines().count(), 1);
}

#[ktest(disk = 16)]
fn every_kind_of_corrupt_header_is_refused_with_its_message() {
    const VERSION: usize = 1024;
    const LAST_PAGE: usize = 1028;
    const NR_BADPAGES: usize = 1032;
    const BADPAGES: usize = 1536;
    let good = header_page();
    let with = |offset: usize, value: u32| {
        let mut page = good.clone();
        put_u32(&mut page, offset, value);
        page
    };
    write_vda(0, &[0; 4096]);
    refused(SwapHeaderError::NoSignature);
    let mut v0 = good.clone();
    v0[4086..].copy_from_slice(b"SWAP-SPACE");
    write_vda(0, &v0);
    refused(SwapHeaderError::Version0);
    write_vda(0, &with(VERSION, 2));
    refused(SwapHeaderError::Version { version: 2 });
    write_vda(0, &with(LAST_PAGE, 0));
    refused(SwapHeaderError::Empty);
    write_vda(0, &with(LAST_PAGE, 2 * DISK_PAGES - 1));
    refused(SwapHeaderError::Shorter { maxpages: 2 * u64::from(DISK_PAGES), device_pages: u64::from(DISK_PAGES) });
    write_vda(0, &with(NR_BADPAGES, 1000));
    refused(SwapHeaderError::TooManyBadPages { nr_badpages: 1000 });
    let mut past = with(NR_BADPAGES, 1);
    put_u32(&mut past, BADPAGES, 5000);
    write_vda(0, &past);
    refused(SwapHeaderError::BadPage { index: 0, page: 5000, last_page: DISK_PAGES - 1 });
    let mut all_bad = with(LAST_PAGE, 3);
    put_u32(&mut all_bad, NR_BADPAGES, 3);
    for (i, page) in [1, 2, 3].into_iter().enumerate() {
        put_u32(&mut all_bad, BADPAGES + 4 * i, page);
    }
    write_vda(0, &all_bad);
    refused(SwapHeaderError::NoGoodPages);
    // A header made with `mkswap -p 16384`: the signature ends the first
    // 16 KiB.
    write_vda(0, &[0; 4096]);
    write_vda(16384 - 10, b"SWAPSPACE2");
    refused(SwapHeaderError::PageSize { page_size: 16384 });
    write_vda(16384 - 10, &[0; 10]);

    // Paths that name no disk.
    assert_eq!(swapon("/dev/nosuchdisk", None), Err(Errno::ENOENT));
    assert_eq!(swapon("", None), Err(Errno::ENOENT));
    assert_eq!(swapon("/", None), Err(Errno::EISDIR));
    assert_eq!(swapon("/init", None), Err(Errno::EINVAL));
    assert!(log_tail().contains("swapon: /init: swap files are not supported"));
    assert_eq!(swapoff("/dev/nosuchdisk"), Err(Errno::ENOENT));
    assert_eq!(swapoff("/init"), Err(Errno::EINVAL));
    assert_eq!(swapoff("/dev/vda"), Err(Errno::EINVAL), "not on");
    assert_eq!(SwapOnFlags::from_user(0x8_0000), Err(Errno::EINVAL), "a flag outside SWAP_FLAGS_VALID");
    assert_eq!(SwapOnFlags::with_prio(Some(32768)), None);
}

#[ktest(disk = 16)]
fn a_byte_swapped_header_is_accepted_and_bad_pages_are_never_used() {
    // The header of a big-endian machine's mkswap.
    let mut page = header_page();
    for offset in [1024, 1028, 1032] {
        let v = u32::from_ne_bytes(page[offset..offset + 4].try_into().unwrap_or_default());
        page[offset..offset + 4].copy_from_slice(&v.swap_bytes().to_ne_bytes());
    }
    write_vda(0, &page);
    let ty = swapon("/dev/vda", None).expect("an other-endian header");
    assert_eq!(swap_info(ty).map(|i| i.pages), Some(DISK_PAGES - 1));
    swapoff("/dev/vda").expect("swapoff");

    // Two bad pages in the first data cluster (slots 256.. are used first).
    let mut page = header_page();
    put_u32(&mut page, 1032, 2);
    put_u32(&mut page, 1536, 256);
    put_u32(&mut page, 1540, 300);
    write_vda(0, &page);
    let ty = swapon("/dev/vda", Some(0)).expect("a header with bad pages");
    let info = swap_info(ty).expect("area");
    assert_eq!(info.pages, DISK_PAGES - 3, "the header and two bad pages are not for swapping");
    assert!(proc_swaps().contains(&swaps_line("vda", 4 * (DISK_PAGES - 3), 0, 0)));
    let mut all = Vec::new();
    let mut batch = [SwpEntry::new(0, 0); 64];
    loop {
        let got = SwapAreas.get_swap_pages(&mut batch);
        if got == 0 {
            break;
        }
        all.extend_from_slice(&batch[..got]);
    }
    assert_eq!(all.len() as u32, DISK_PAGES - 3, "every good slot, and then no more");
    assert!(all.iter().all(|e| e.ty() == ty && ![0, 256, 300].contains(&e.offset())), "a bad slot was handed out");
    assert_eq!(SwapAreas.nr_swap_pages(), 0);
    assert_eq!(meminfo_kb("SwapFree"), 0);
    // The allocator refuses I/O to the slots it never hands out.
    let pages = page_buffers(1);
    for (offset, why) in
        [(0, SwapEntryError::BadSlot), (300, SwapEntryError::BadSlot), (4096, SwapEntryError::BadOffset)]
    {
        // SAFETY: nothing is submitted for a refused entry.
        let r = unsafe { swap_writepage(SwpEntry::new(ty, offset), pages[0].pfn(), None, |_| {}) };
        assert_eq!(r, Err(why), "slot {offset}");
    }
    for e in &all {
        SwapAreas.swapcache_clear(*e).expect("free a slot");
    }
    assert_eq!(SwapAreas.nr_swap_pages(), i64::from(DISK_PAGES - 3));
    swapoff("/dev/vda").expect("swapoff");
}

/// `n` pages the test owns.
fn page_buffers(n: usize) -> Vec<Pages<'static, 'static>> {
    (0..n).map(|_| kernel::mm::alloc_pages_owned(GFP_KERNEL, 0).expect("a test page")).collect()
}

/// The bytes of a page the test owns and has no I/O on.
fn bytes(page: &Pages<'static, 'static>) -> &'static mut [u8] {
    let p = kernel::mm::page_address(page.pfn()).as_mut_ptr::<u8>();
    // SAFETY: the page is the test's, direct-mapped, and no I/O is in
    // flight on it while the test holds this borrow (each test waits for
    // all of its I/O before touching its pages).
    unsafe { core::slice::from_raw_parts_mut(p, mm::PAGE_SIZE as usize) }
}

/// Byte `i` of the pattern written to swap slot `offset`.
fn pattern(offset: u64, i: usize) -> u8 {
    (offset as u8).wrapping_mul(37) ^ (i as u8).wrapping_mul(11) ^ ((offset >> 8) as u8) ^ 0xa5
}

/// Allocates `n` slots, a call each.
fn alloc_slots(n: usize) -> Vec<SwpEntry> {
    (0..n).map(|_| SwapAreas.folio_alloc_swap().expect("a free slot")).collect()
}

#[ktest(disk = 16, timeout = 120)]
fn a_thousand_pages_written_to_their_slots_read_back_intact() {
    const N: usize = 1000;
    mkswap("vda", "");
    let ty = swapon("/dev/vda", None).expect("swapon");
    let slots = alloc_slots(N);
    // One CPU's slots follow each other: the writes are sequential.
    assert!(slots.windows(2).all(|w| w[1].offset() == w[0].offset() + 1), "{:?}", &slots[..4]);
    let pages = page_buffers(N);
    for (page, slot) in pages.iter().zip(&slots) {
        for (i, b) in bytes(page).iter_mut().enumerate() {
            *b = pattern(slot.offset(), i);
        }
    }
    let pgdat = kernel::mm::pgdat();
    let events = |item| pgdat.all_vm_events(item);
    let (pswpout, pswpin, pgpgout) =
        (events(VmEventItem::Pswpout), events(VmEventItem::Pswpin), events(VmEventItem::Pgpgout));
    let vda = disk("vda");
    let merges = vda.stats().merges[1];

    // All in flight at once: the first half submitted one by one, the
    // second half under a plug, where neighbouring slots merge.
    let pending = Pending::new(N as u32);
    let mut plug = BlkPlug::new();
    for (k, (page, slot)) in pages.iter().zip(&slots).enumerate() {
        let plug = (k >= N / 2).then_some(&mut plug);
        // SAFETY: the page is the test's and untouched until `wait`
        // returns, after every completion.
        unsafe { swap_writepage(*slot, page.pfn(), plug, pending.end_io()) }.expect("a slot of the area");
    }
    plug.finish();
    assert_eq!(pending.wait(), 0, "a swap write failed");
    assert_eq!(events(VmEventItem::Pswpout) - pswpout, N as u64);
    assert_eq!(events(VmEventItem::Pgpgout) - pgpgout, 4 * N as u64);
    assert!(vda.stats().merges[1] >= merges + N as u64 / 4, "the plugged writes of neighbouring slots did not merge");

    for page in &pages {
        bytes(page).fill(0);
    }
    let pending = Pending::new(N as u32);
    // Read back in another order: from the last slot down.
    for (page, slot) in pages.iter().zip(&slots).rev() {
        // SAFETY: as for the writes.
        unsafe { swap_read_folio(*slot, page.pfn(), None, pending.end_io()) }.expect("a slot of the area");
    }
    assert_eq!(pending.wait(), 0, "a swap read failed");
    assert_eq!(events(VmEventItem::Pswpin) - pswpin, N as u64);
    for (page, slot) in pages.iter().zip(&slots) {
        let bad = bytes(page).iter().enumerate().position(|(i, &b)| b != pattern(slot.offset(), i));
        assert_eq!(bad, None, "slot {} read back wrong", slot.offset());
    }
    // The synchronous read, for one more.
    bytes(&pages[0]).fill(0);
    // SAFETY: the page is the test's and nothing else is in flight.
    unsafe { swap_read_folio_sync(slots[0], pages[0].pfn()) }.expect("sync read");
    assert!(bytes(&pages[0]).iter().enumerate().all(|(i, &b)| b == pattern(slots[0].offset(), i)));
    assert_eq!(events(VmEventItem::Pswpin) - pswpin, N as u64 + 1);

    assert_eq!(swap_info(ty).map(|i| i.inuse_pages), Some(N as u32));
    for slot in &slots {
        SwapAreas.swapcache_clear(*slot).expect("the cache lets go");
    }
    swapoff("/dev/vda").expect("swapoff of an emptied area");
}

#[ktest(disk = 16)]
fn swapoff_of_an_area_whose_slot_no_pte_finds_fails_with_enomem_and_loses_nothing() {
    mkswap("vda", "");
    let ty = swapon("/dev/vda", None).expect("swapon");
    let slot = SwapAreas.folio_alloc_swap().expect("a slot");
    // A count no pte the walk can find holds it (a pte of an address
    // space swapoff cannot reach), and the swap cache let go.
    SwapAreas.swap_duplicate(slot).expect("dup");
    SwapAreas.swapcache_clear(slot).expect("clear");
    let pages = page_buffers(1);
    bytes(&pages[0]).fill(0x6d);
    let pending = Pending::new(1);
    // SAFETY: the page is the test's and untouched until `wait` returns.
    unsafe { swap_writepage(slot, pages[0].pfn(), None, pending.end_io()) }.expect("write");
    assert_eq!(pending.wait(), 0);
    let before = (proc_swaps(), si_swapinfo(), swap_avail_order());

    assert_eq!(swapoff("/dev/vda"), Err(Errno::ENOMEM));
    let log = log_tail();
    assert!(log.contains("swapoff: /dev/vda: 1 pages could not be brought back"), "no reason logged:\n{log}");
    assert_eq!((proc_swaps(), si_swapinfo(), swap_avail_order()), before, "the area changed");
    assert_eq!(SwapAreas.swap_count(slot), Ok(1));
    bytes(&pages[0]).fill(0);
    // SAFETY: the page is the test's and nothing else is in flight.
    unsafe { swap_read_folio_sync(slot, pages[0].pfn()) }.expect("read");
    assert!(bytes(&pages[0]).iter().all(|&b| b == 0x6d), "the slot's page was lost");
    let next = SwapAreas.folio_alloc_swap().expect("still open to allocation");
    assert_eq!(next.ty(), ty);
    SwapAreas.swapcache_clear(next).expect("clear");

    SwapAreas.swap_free(slot).expect("the pte goes");
    assert_eq!(SwapAreas.swap_free(slot), Err(SwapEntryError::Unused));
    swapoff("/dev/vda").expect("swapoff of an empty area");
    // The entry's area is gone: its calls say so, and no I/O starts.
    assert_eq!(SwapAreas.swap_count(slot), Err(SwapEntryError::BadFile));
    // SAFETY: nothing is submitted for a refused entry.
    let r = unsafe { swap_read_folio_sync(slot, pages[0].pfn()) };
    assert_eq!(r, Err(SwapIoError::Entry(SwapEntryError::BadFile)));
}

#[ktest(disk = 16)]
fn entry_calls_count_past_swap_map_max_and_free_the_slot_at_zero() {
    mkswap("vda", "");
    let ty = swapon("/dev/vda", None).expect("swapon");
    let slot = SwapAreas.folio_alloc_swap().expect("a slot");
    assert_eq!(SwapAreas.swapcache_prepare(slot), Err(SwapEntryError::Exists), "allocated into the cache");
    // Fork upon fork: 300 ptes, past SWAP_MAP_MAX (continuation pages).
    for _ in 0..300 {
        SwapAreas.swap_duplicate(slot).expect("dup");
    }
    assert_eq!(SwapAreas.swp_swapcount(slot), Ok(300));
    assert!(SwapAreas.swap_count(slot).is_ok_and(|c| c & COUNT_CONTINUED != 0), "the count goes on");
    SwapAreas.swapcache_clear(slot).expect("the cache lets go");
    for left in (0..300).rev() {
        SwapAreas.swap_free(slot).expect("free");
        assert_eq!(SwapAreas.swp_swapcount(slot).unwrap_or(u64::MAX), left);
    }
    assert_eq!(swap_info(ty).map(|i| i.inuse_pages), Some(0), "the slot is free at count 0");
    assert_eq!(SwapAreas.swap_duplicate(slot), Err(SwapEntryError::Unused));
    // A swap-in claims a slot for the cache once.
    let slot = SwapAreas.folio_alloc_swap().expect("a slot");
    SwapAreas.swap_duplicate(slot).expect("dup");
    SwapAreas.swapcache_clear(slot).expect("out of the cache");
    assert_eq!(SwapAreas.swapcache_prepare(slot), Ok(()));
    assert_eq!(SwapAreas.swapcache_prepare(slot), Err(SwapEntryError::Exists));
    SwapAreas.swapcache_clear(slot).expect("clear");
    SwapAreas.swap_free(slot).expect("free");
    // Entries of no area, or past the area.
    assert_eq!(SwapAreas.swap_free(SwpEntry::new(ty + 1, 300)), Err(SwapEntryError::BadFile));
    assert_eq!(SwapAreas.swap_free(SwpEntry::new(ty, u64::from(DISK_PAGES))), Err(SwapEntryError::BadOffset));
    // The continuation pages go with the area.
    swapoff("/dev/vda").expect("swapoff");
}

#[ktest(disk = 16, disks = 2)]
fn priorities_order_allocation_and_equal_ones_take_turns() {
    mkswap("vda", "");
    mkswap("vdb", "");
    // Default priorities, -2 then -3: the first area is used first.
    let a = swapon("/dev/vda", None).expect("swapon vda");
    let b = swapon("/dev/vdb", None).expect("swapon vdb");
    let text = proc_swaps();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [SWAPS_HEADER, &swaps_line("vda", 16380, 0, -2), &swaps_line("vdb", 16380, 0, -3)],
        "{text}"
    );
    let first = alloc_slots(8);
    assert!(first.iter().all(|e| e.ty() == a), "{first:?}");
    assert!(proc_swaps().contains(&swaps_line("vda", 16380, 32, -2)));
    for e in &first {
        SwapAreas.swapcache_clear(*e).expect("free");
    }
    // The first goes: the default priority below it moves up.
    swapoff("/dev/vda").expect("swapoff vda");
    assert_eq!(swap_info(b).map(|i| i.prio), Some(-2));
    swapoff("/dev/vdb").expect("swapoff vdb");

    // Equal priorities: a call each, in turn; each area's slots in a row.
    let a = swapon("/dev/vda", Some(5)).expect("swapon vda 5");
    let b = swapon("/dev/vdb", Some(5)).expect("swapon vdb 5");
    let slots = alloc_slots(8);
    let types: Vec<u32> = slots.iter().map(|e| e.ty()).collect();
    assert_eq!(types, [a, b, a, b, a, b, a, b]);
    for area in [a, b] {
        let offsets: Vec<u64> = slots.iter().filter(|e| e.ty() == area).map(|e| e.offset()).collect();
        assert!(offsets.windows(2).all(|w| w[1] == w[0] + 1), "{offsets:?}");
    }
    for e in &slots {
        SwapAreas.swapcache_clear(*e).expect("free");
    }
    // A higher priority is used until it is full, then the lower one.
    swapoff("/dev/vdb").expect("swapoff vdb");
    let b = swapon("/dev/vdb", Some(10)).expect("swapon vdb 10");
    assert_eq!(swap_avail_order(), [b, a]);
    let mut taken = Vec::new();
    let mut batch = [SwpEntry::new(0, 0); 64];
    while taken.len() < 4095 + 10 {
        let got = SwapAreas.get_swap_pages(&mut batch);
        assert!(got > 0, "swap ran out early");
        assert!(batch[..got].iter().all(|e| e.ty() == batch[0].ty()), "one call, one area");
        taken.extend_from_slice(&batch[..got]);
    }
    let from_b = taken.iter().take_while(|e| e.ty() == b).count();
    assert_eq!(from_b, 4095, "the lower priority was used before the higher one was full");
    assert!(taken[from_b..].iter().all(|e| e.ty() == a));
    assert_eq!(SwapAreas.nr_swap_pages(), 2 * 4095 - taken.len() as i64);
    assert!(SwapAreas.vm_swap_full());
    for e in &taken {
        SwapAreas.swapcache_clear(*e).expect("free");
    }
    assert_eq!(SwapAreas.nr_swap_pages(), 2 * 4095);
    swapoff("/dev/vda").expect("swapoff vda");
    swapoff("/dev/vdb").expect("swapoff vdb");
    assert_eq!(si_swapinfo(), (0, 0));
}

/// The sector the blkdebug scratch disk fails: the first data slot
/// (256, the second cluster's first) times 8.
const EIO_SLOT: u64 = 256;

#[ktest(disk = 16, disk_eio = 2048)]
fn an_io_error_on_a_slot_reaches_its_completion_and_is_logged() {
    mkswap("vda", "");
    swapon("/dev/vda", None).expect("swapon");
    let slots = alloc_slots(4);
    assert_eq!(slots[0].offset(), EIO_SLOT, "the first slot is the second cluster's first");
    let pages = page_buffers(4);
    let pending = Pending::new(4);
    for (page, slot) in pages.iter().zip(&slots) {
        bytes(page).fill(slot.offset() as u8);
        // SAFETY: the page is the test's and untouched until `wait`
        // returns.
        unsafe { swap_writepage(*slot, page.pfn(), None, pending.end_io()) }.expect("write");
    }
    assert_eq!(pending.wait(), 1, "only the failing slot's write fails");
    let line = alloc::format!("Write-error on swap-device (254:0:{})", EIO_SLOT * 8);
    assert!(log_tail().contains(&line), "no `{line}` in the log");
    let pending = Pending::new(1);
    // SAFETY: as above.
    unsafe { swap_read_folio(slots[0], pages[0].pfn(), None, pending.end_io()) }.expect("read");
    assert_eq!(pending.wait(), 1);
    assert!(log_tail().contains(&alloc::format!("Read-error on swap-device (254:0:{})", EIO_SLOT * 8)));
    // SAFETY: as above.
    let sync = unsafe { swap_read_folio_sync(slots[1], pages[1].pfn()) };
    assert_eq!(sync, Ok(()), "the slots around it still work");
    assert!(bytes(&pages[1]).iter().all(|&b| b == slots[1].offset() as u8));
    for slot in &slots {
        SwapAreas.swapcache_clear(*slot).expect("free");
    }
    swapoff("/dev/vda").expect("swapoff");
}

#[ktest(disk = 16)]
fn console_commands_make_list_and_remove_an_area() {
    use kernel::shell::Shell;
    let mut shell = Shell::new();
    let out = crate::console::sh(&mut shell, "mkswap /dev/vda kswap");
    assert!(out.starts_with("Setting up swapspace version 1, size = 16380 KiB (16773120 bytes)\nLABEL=kswap, UUID="));
    crate::console::sh(&mut shell, "swapon /dev/vda 3");
    let out = crate::console::sh(&mut shell, "swaps");
    assert_eq!(out.lines().collect::<Vec<_>>(), [SWAPS_HEADER, &swaps_line("vda", 16380, 0, 3)]);
    let mut out = String::new();
    assert!(shell.execute("mkswap /dev/vda", &mut out).is_err(), "mkswap of an active area");
    assert!(shell.execute("swapon /dev/vda 40000", &mut out).is_err(), "a priority past 32767");
    crate::console::sh(&mut shell, "swapoff /dev/vda");
    assert_eq!(crate::console::sh(&mut shell, "swaps").lines().count(), 1);
}

/// swapon(2)/swapoff(2) from a program (tests/user/swapon_test.c, which
/// passes on Linux too): EPERM without CAP_SYS_ADMIN, ENOENT, EISDIR,
/// EINVAL for bad flags and a file, EBUSY twice, /proc/swaps.
#[ktest(disk = 16, timeout = 120)]
fn swapon_and_swapoff_behave_as_on_linux_for_a_program() {
    mkswap("vda", "");
    let (status, out) =
        kernel::process::run_user("/bin/swapon_test", &["swapon_test", "/dev/vda"]).expect("run swapon_test");
    let out = String::from_utf8_lossy(&out);
    assert!(status == 0 && out.contains("PASS swapon_test"), "status {status:#x}:\n{out}");
    assert_eq!(proc_swaps().lines().count(), 1, "the program left an area on");
}

/// Swap's promise, small (the integrity run): at 64 MiB with a
/// 160 MiB swap disk, a program fills 96 MiB of anonymous memory with a
/// pattern per page, forks, and both check every page (the child
/// rewriting half, copy-on-write) while reclaim writes pages out and
/// faults read them back; no page is wrong, the OOM killer never runs,
/// and once the program exits swapoff succeeds and leaves no page in the
/// swap cache. Reclaim's writes of neighbouring slots went to the disk
/// merged, under its plug (Linux `shrink_lruvec`'s `blk_start_plug`):
/// 8 pages or more per write request on average (without the plug,
/// about 1.4).
#[ktest(mem = 64, disk = 160, timeout = 600)]
fn anonymous_memory_past_ram_goes_to_swap_and_comes_back_intact() {
    let pgdat = kernel::mm::pgdat();
    let made = mkswap_disk(b"/dev/vda", b"integrity", UUID).expect("mkswap /dev/vda");
    assert_eq!(made.last_page, 160 * 256 - 1);
    swapon("/dev/vda", None).expect("swapon /dev/vda");
    let total = meminfo_kb("SwapTotal");
    let events = |item| pgdat.all_vm_events(item);
    let (out0, in0, oom0) = (events(VmEventItem::Pswpout), events(VmEventItem::Pswpin), events(VmEventItem::OomKill));
    let vda = disk("vda");
    let stats0 = vda.stats();
    let refaults = || pgdat.node_page_state(mm::vmstat::NodeStatItem::WorkingsetRefaultAnon);
    let refaults0 = refaults();
    let (status, out) = kernel::process::run_user("/bin/swap_test", &["swap_test", "96"]).expect("run swap_test");
    let out = String::from_utf8_lossy(&out);
    assert_eq!(status, 0, "swap_test failed:\n{out}");
    assert!(out.contains("PASS swap_test 96"), "{out}");
    let (swapped_out, swapped_in) = (events(VmEventItem::Pswpout) - out0, events(VmEventItem::Pswpin) - in0);
    log::info!("swap: {swapped_out} pages written, {swapped_in} read");
    assert!(swapped_out > 0 && swapped_in > 0, "the run must have swapped: out {swapped_out}, in {swapped_in}");
    let stats = vda.stats();
    let (requests, pages) = (stats.ios[1] - stats0.ios[1], (stats.sectors[1] - stats0.sectors[1]) / 8);
    log::info!("swap: {pages} pages written in {requests} requests");
    assert!(pages >= 8 * requests, "swap-out wrote {pages} pages in {requests} requests: its writes did not merge");
    assert_eq!(events(VmEventItem::OomKill), oom0, "the OOM killer ran with swap free");
    // Each page read back found the shadow its eviction left.
    let refaulted = refaults() - refaults0;
    log::info!("swap: {refaulted} anonymous refaults");
    assert!(refaulted > 0, "no swap-in found its shadow");
    // Slots whose pages the swap cache still keeps (written, then read
    // back or unmapped) are in use until reclaim or swapoff frees them,
    // as on Linux ("SwapCached").
    log::info!(
        "swap: {} KiB of {total} free after exit, {} KiB in the swap cache",
        meminfo_kb("SwapFree"),
        meminfo_kb("SwapCached")
    );
    swapoff("/dev/vda").expect("swapoff: no process holds a slot any more");
    assert_eq!(pgdat.node_page_state(mm::vmstat::NodeStatItem::NrSwapcache), 0, "a page left in the swap cache");
    assert_eq!(meminfo_kb("SwapTotal"), 0);
}

/// swapoff brings a running program's swapped-out pages back (Linux
/// `try_to_unuse`): it fills 96 MiB at 64 MiB, keeps the first 32 MiB
/// (those swapped out first) and waits; swapoff succeeds with the area
/// emptied, and the program then finds every kept page intact.
#[ktest(mem = 64, disk = 160, timeout = 600)]
fn swapoff_brings_a_running_programs_pages_back_intact() {
    use kernel::fs::file::Capture;
    let pgdat = kernel::mm::pgdat();
    mkswap_disk(b"/dev/vda", b"unuse", UUID).expect("mkswap /dev/vda");
    swapon("/dev/vda", None).expect("swapon /dev/vda");
    let capture: Capture = Arc::new(kernel::sync::Mutex::new(Vec::new()));
    let task = kernel::process::spawn_user("/bin/swap_test", &["swap_test", "96", "hold", "32"], Some(capture.clone()))
        .expect("spawn swap_test");
    let pid = task.pid;
    let deadline = kernel::arch::x86_64::tsc::now_ns() + 300_000_000_000;
    while !String::from_utf8_lossy(&capture.lock()).contains("holding") {
        assert!(kernel::arch::x86_64::tsc::now_ns() < deadline, "swap_test never got to hold its pages");
        kernel::sched::wait::sleep_until_ns(kernel::arch::x86_64::tsc::now_ns() + 10_000_000, || false);
    }
    let swapped = task.proc.mm().map(|mm| mm.mmap_read_lock().counter(mm::mmap::MmCounter::SwapEnts)).unwrap_or(0);
    assert!(swapped > 0, "none of the kept pages is in swap");
    let majfault = pgdat.all_vm_events(VmEventItem::Pgmajfault);
    swapoff("/dev/vda").expect("swapoff brings the pages back");
    assert!(pgdat.all_vm_events(VmEventItem::Pgmajfault) > majfault, "nothing was read back");
    let left = task.proc.mm().map(|mm| mm.mmap_read_lock().counter(mm::mmap::MmCounter::SwapEnts)).unwrap_or(0);
    assert_eq!(left, 0, "a swap entry outlived swapoff");
    log::info!("swapoff brought back {swapped} pages of swap_test");
    kernel::signal::send_signal(&task, uapi::signal::SIGUSR1, None);
    drop(task);
    let reaped = kernel::process::do_wait(pid as i32, false).expect("wait").expect("reaped");
    let out = String::from_utf8_lossy(&capture.lock()).into_owned();
    assert_eq!(reaped.status, 0, "swap_test failed:\n{out}");
    assert!(out.contains("PASS swap_test 96 hold 32"), "{out}");
    assert_eq!(pgdat.node_page_state(mm::vmstat::NodeStatItem::NrSwapcache), 0);
}

/// The `/proc/vmstat` events of a run of `swap_ra_test MIB [CLUSTER]`:
/// `(swap_ra, swap_ra_hit, pswpin)`.
fn swap_ra_run(args: &[&str]) -> (u64, u64, u64) {
    let pgdat = kernel::mm::pgdat();
    let events = |item| pgdat.all_vm_events(item);
    let before = (events(VmEventItem::SwapRa), events(VmEventItem::SwapRaHit), events(VmEventItem::Pswpin));
    let (status, out) = kernel::process::run_user("/bin/swap_ra_test", args).expect("run swap_ra_test");
    let out = String::from_utf8_lossy(&out);
    assert!(status == 0 && out.contains("PASS swap_ra_test"), "status {status:#x}:\n{out}");
    let ran = (
        events(VmEventItem::SwapRa) - before.0,
        events(VmEventItem::SwapRaHit) - before.1,
        events(VmEventItem::Pswpin) - before.2,
    );
    log::info!("swap readahead: {args:?}: swap_ra {} swap_ra_hit {} pswpin {}", ran.0, ran.1, ran.2);
    assert!(ran.2 > 0, "{args:?} swapped nothing in");
    ran
}

/// Swap readahead (Linux `swapin_readahead`): a program that fills 72 MiB
/// at 64 MiB and reads its pages back in order swaps them in sequentially,
/// and readahead serves most of those faults, its pages read and then hit
/// (`swap_ra`, `swap_ra_hit`), VMA-based by default and cluster-based
/// with `/sys/kernel/mm/swap/vma_ra_enabled` off; with
/// `vm.page-cluster` 0, which the program sets through /proc/sys, nothing
/// is read ahead. The data is intact every time.
#[ktest(mem = 64, disk = 160, timeout = 900)]
fn sequential_swap_in_reads_ahead_unless_page_cluster_is_0() {
    use kernel::fs::proc_sysctl::lookup;
    let pgdat = kernel::mm::pgdat();
    mkswap_disk(b"/dev/vda", b"readahead", UUID).expect("mkswap /dev/vda");
    swapon("/dev/vda", None).expect("swapon /dev/vda");
    let vma_ra = lookup("/sys/kernel/mm/swap/vma_ra_enabled").expect("vma_ra_enabled");
    let page_cluster = lookup("/proc/sys/vm/page-cluster").expect("page-cluster");
    assert_eq!(((vma_ra.show)(), (page_cluster.show)()), ("true\n".into(), "3\n".into()), "Linux's defaults");

    let (ra, hit, _) = swap_ra_run(&["swap_ra_test", "72"]);
    assert!(ra > 0 && hit > 0, "VMA readahead: swap_ra {ra}, swap_ra_hit {hit}");
    assert!(hit <= ra, "a hit on a page never read ahead");

    (vma_ra.store.expect("settable"))("0\n").expect("vma_ra_enabled off");
    assert_eq!((vma_ra.show)(), "false\n");
    let (ra, hit, _) = swap_ra_run(&["swap_ra_test", "72"]);
    assert!(ra > 0 && hit > 0, "cluster readahead: swap_ra {ra}, swap_ra_hit {hit}");
    assert_eq!((vma_ra.store.expect("settable"))("maybe"), Err(Errno::EINVAL));
    (vma_ra.store.expect("settable"))("on").expect("vma_ra_enabled on");
    assert!(pgdat.swap_vma_ra_enabled());

    let (ra, hit, _) = swap_ra_run(&["swap_ra_test", "72", "0"]);
    assert_eq!((ra, hit), (0, 0), "page-cluster 0 reads nothing ahead");
    assert_eq!(pgdat.page_cluster(), 0, "the program's write");
    (page_cluster.store.expect("settable"))("3").expect("page-cluster back to 3");
    swapoff("/dev/vda").expect("swapoff");
    assert_eq!(pgdat.node_page_state(mm::vmstat::NodeStatItem::NrSwapcache), 0, "a page left in the swap cache");
}
/// The numbers of swap_test's `resident shm N file N of N` lines: the
/// region's and the memfd's resident pages, and the pages of each.
fn shmem_resident(out: &str) -> Vec<(u64, u64, u64)> {
    out.lines()
        .filter(|l| l.starts_with("resident shm "))
        .map(|line| {
            let n: Vec<u64> = line.split(' ').filter_map(|w| w.parse().ok()).collect();
            assert_eq!(n.len(), 3, "{line}");
            (n[0], n[1], n[2])
        })
        .collect()
}

/// Slots in use on area `ty`, as /proc/swaps's `Used` column says (KiB).
fn proc_swaps_used_kib(name: &str) -> u64 {
    let text = proc_swaps();
    let line = text.lines().find(|l| l.starts_with(&alloc::format!("/dev/{name} "))).expect("the area's line");
    line.split_whitespace().nth(3).and_then(|w| w.parse().ok()).expect("a Used column")
}

/// shmem's swap (Linux `shmem_writeout`/`shmem_swapin_folio`): at 64
/// MiB with a 160 MiB swap disk, swap_test's shmem mode fills a 48 MiB
/// shared anonymous region and a 48 MiB memfd (write(2)) with a pattern
/// per page: the region, mapped, goes to swap for the memfd, and the
/// memfd for the region when that is read back. A forked child checks both
/// through mappings and rewrites half of each, the parent checks the
/// region through its mapping and the memfd through pread(2) and a
/// mapping: no page is wrong, the OOM killer never runs. Once the memfd
/// is truncated and closed and the region unmapped, every slot in use is
/// held by the shmem files still in swap (the rootfs's), none leaked:
/// /proc/swaps' `Used` comes back to those, and swapoff succeeds.
#[ktest(mem = 64, disk = 160, timeout = 600)]
fn shmem_past_ram_goes_to_swap_and_comes_back_intact_through_mmap_and_read() {
    let pgdat = kernel::mm::pgdat();
    mkswap_disk(b"/dev/vda", b"shmem", UUID).expect("mkswap /dev/vda");
    let ty = swapon("/dev/vda", None).expect("swapon /dev/vda");
    let events = |item| pgdat.all_vm_events(item);
    let (out0, in0, oom0) = (events(VmEventItem::Pswpout), events(VmEventItem::Pswpin), events(VmEventItem::OomKill));
    let (status, out) =
        kernel::process::run_user("/bin/swap_test", &["swap_test", "shmem", "96"]).expect("run swap_test");
    let out = String::from_utf8_lossy(&out);
    assert_eq!(status, 0, "swap_test failed:\n{out}");
    assert!(out.contains("PASS swap_test shmem 96"), "{out}");
    let resident = shmem_resident(&out);
    log::info!("swap: shmem pages resident (region, memfd, of each): {resident:?}");
    let [(shm, _, pages), (_, file, _)] = resident[..] else { panic!("two resident lines:\n{out}") };
    assert!(shm < pages, "the shared region, mapped, never left memory");
    assert!(file < pages, "the memfd never left memory");
    let (swapped_out, swapped_in) = (events(VmEventItem::Pswpout) - out0, events(VmEventItem::Pswpin) - in0);
    log::info!("swap: {swapped_out} pages written, {swapped_in} read");
    assert!(swapped_in > 0, "nothing came back from swap");
    assert_eq!(events(VmEventItem::OomKill), oom0, "the OOM killer ran with swap free");
    // Slots the swap cache alone keeps go once their writes are done, as
    // swapoff's first step frees them; kswapd may still be sending rootfs
    // pages out, so the counts are compared until they hold still. A
    // leaked slot never matches.
    let mut tries = 0;
    let (used, held) = loop {
        kernel::swap_state::drop_unused_swap_cache(ty);
        let held = kernel::shmem::shmem_swapped();
        let used = u64::from(swap_info(ty).expect("the area").inuse_pages);
        tries += 1;
        if used == held || tries == 100 {
            break (used, held);
        }
        kernel::sched::wait::sleep_until_ns(kernel::arch::x86_64::tsc::now_ns() + 10_000_000, || false);
    };
    log::info!("swap: {used} slots in use after exit, {held} by shmem files");
    assert_eq!(used, held, "a slot no shmem file holds");
    assert_eq!(proc_swaps_used_kib("vda"), 4 * held);
    swapoff("/dev/vda").expect("swapoff brings the rootfs's pages back");
    assert_eq!(kernel::shmem::shmem_swapped(), 0);
    assert_eq!(pgdat.node_page_state(mm::vmstat::NodeStatItem::NrSwapcache), 0, "a page left in the swap cache");
}

/// swapoff with shmem pages in swap (Linux `shmem_unuse`): swap_test
/// fills 96 MiB of shmem at 64 MiB, keeps 24 MiB of it (the memfd
/// truncated, the region's tail punched out with MADV_REMOVE: their
/// swap entries freed) and waits; swapoff brings the kept pages back
/// into their files and frees the area, and the program then finds every
/// kept page intact.
#[ktest(mem = 64, disk = 160, timeout = 600)]
fn swapoff_brings_shmem_pages_back_intact() {
    use kernel::fs::file::Capture;
    let pgdat = kernel::mm::pgdat();
    mkswap_disk(b"/dev/vda", b"shmemoff", UUID).expect("mkswap /dev/vda");
    let ty = swapon("/dev/vda", None).expect("swapon /dev/vda");
    let capture: Capture = Arc::new(kernel::sync::Mutex::new(Vec::new()));
    let args = ["swap_test", "shmem", "96", "hold", "24"];
    let task = kernel::process::spawn_user("/bin/swap_test", &args, Some(capture.clone())).expect("spawn swap_test");
    let pid = task.pid;
    let deadline = kernel::arch::x86_64::tsc::now_ns() + 300_000_000_000;
    while !String::from_utf8_lossy(&capture.lock()).contains("holding") {
        assert!(kernel::arch::x86_64::tsc::now_ns() < deadline, "swap_test never got to hold its pages");
        kernel::sched::wait::sleep_until_ns(kernel::arch::x86_64::tsc::now_ns() + 10_000_000, || false);
    }
    let held = kernel::shmem::shmem_swapped();
    assert!(held > 0, "no shmem page is in swap");
    let used = swap_info(ty).expect("the area").inuse_pages;
    log::info!("swapoff: {held} shmem pages in swap, {used} slots in use");
    let shmem = pgdat.node_page_state(mm::vmstat::NodeStatItem::NrShmem);
    swapoff("/dev/vda").expect("swapoff brings the shmem pages back");
    assert_eq!(kernel::shmem::shmem_swapped(), 0, "a shmem swap entry outlived swapoff");
    assert!(pgdat.node_page_state(mm::vmstat::NodeStatItem::NrShmem) > shmem, "Shmem did not grow back");
    kernel::signal::send_signal(&task, uapi::signal::SIGUSR1, None);
    drop(task);
    let reaped = kernel::process::do_wait(pid as i32, false).expect("wait").expect("reaped");
    let out = String::from_utf8_lossy(&capture.lock()).into_owned();
    assert_eq!(reaped.status, 0, "swap_test failed:\n{out}");
    assert!(out.contains("PASS swap_test shmem 96 hold 24"), "{out}");
    assert_eq!(pgdat.node_page_state(mm::vmstat::NodeStatItem::NrSwapcache), 0);
}

/// The last `len` bytes of the kernel log.
fn log_tail_of(len: usize) -> String {
    let mut buf = alloc::vec![0u8; len];
    let n = kernel::printk::LOG_BUF.copy_last(&mut buf);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Runs `/bin/NAME ARGS...` and asserts it exits 0 with its PASS line.
fn passes(name: &str, argv: &[&str]) -> String {
    let path = alloc::format!("/bin/{name}");
    let (status, out) = kernel::process::run_user(&path, argv).unwrap_or_else(|e| panic!("run {name}: {e}"));
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(status == 0 && out.contains(&alloc::format!("PASS {name}")), "{name}: status {status:#x}:\n{out}");
    out
}

/// A swap disk whose first four data slots (256..259, sectors 2048 on)
/// fail every write: a program pages 64 pages out (the first four take
/// those slots), memory pressure follows, and every page comes back
/// intact, twice (tests/user/swap_err_test.c). The failed writes are
/// logged as Linux logs them (a neighbour's write merged into a failing
/// request fails with it); each failed slot went bad once its page was
/// read back: that many pages fewer in the area (/proc/swaps,
/// SwapTotal), none used again, and the area swaps off.
#[ktest(mem = 64, disk = 160, disk_eio = 2048, disk_eio_op = "write", disk_eio_pages = 4, timeout = 300)]
fn a_failed_swap_write_keeps_the_data_in_memory_and_the_slot_goes_bad() {
    mkswap_disk(b"/dev/vda", b"werr", UUID).expect("mkswap /dev/vda");
    let ty = swapon("/dev/vda", None).expect("swapon /dev/vda");
    let pages = swap_info(ty).expect("the area").pages;
    let total = meminfo_kb("SwapTotal");
    passes("swap_err_test", &["swap_err_test", "write", "80"]);
    let log = log_tail_of(1 << 16);
    for slot in EIO_SLOT..EIO_SLOT + 4 {
        let line = alloc::format!("Write-error on swap-device (254:0:{})", slot * 8);
        assert!(log.contains(&line), "no `{line}` in the log");
        let bad = alloc::format!("swap: slot {slot:#x} of /dev/vda is bad after a write error");
        assert!(log.contains(&bad), "no `{bad}` in the log");
    }
    let failed = log.matches("Write-error on swap-device (254:0:").count() as u32;
    assert_eq!(log.matches("is bad after a write error").count() as u32, failed, "one bad slot per failed write");
    assert_eq!(swap_info(ty).expect("the area").pages, pages - failed, "the failed slots left the area");
    assert_eq!(meminfo_kb("SwapTotal"), total - 4 * u64::from(failed));
    let size = alloc::format!("partition\t{}\t", (pages - failed) * 4);
    assert!(proc_swaps().contains(&size), "/proc/swaps:\n{}", proc_swaps());
    swapoff("/dev/vda").expect("swapoff");
    assert_eq!(kernel::mm::pgdat().node_page_state(mm::vmstat::NodeStatItem::NrSwapcache), 0);
}

/// A swap disk whose first data slot (256) fails every read: a program's
/// child pages a page out to it, a second child fills 80 MiB at 64 MiB
/// (through swap) and finds every page intact, then the first child
/// touches its page and dies of SIGBUS, which its parent sees
/// (tests/user/swap_err_test.c); the kernel goes on, the read error is
/// logged as Linux logs it, and the area swaps off.
#[ktest(mem = 64, disk = 160, disk_eio = 2048, disk_eio_op = "read", timeout = 300)]
fn a_failed_swap_read_kills_only_the_faulting_program_with_sigbus() {
    mkswap_disk(b"/dev/vda", b"rerr", UUID).expect("mkswap /dev/vda");
    swapon("/dev/vda", None).expect("swapon /dev/vda");
    passes("swap_err_test", &["swap_err_test", "sigbus", "80"]);
    let line = alloc::format!("Read-error on swap-device (254:0:{})", EIO_SLOT * 8);
    assert!(log_tail_of(1 << 16).contains(&line), "no `{line}` in the log");
    swapoff("/dev/vda").expect("swapoff");
    assert_eq!(kernel::mm::pgdat().node_page_state(mm::vmstat::NodeStatItem::NrSwapcache), 0);
}

/// swapoff of an area with a page it cannot read back (Linux
/// `unuse_pte`'s poisoned entry): swapoff succeeds with the area
/// emptied, the program's pte is poisoned, and the program dies of
/// SIGBUS when it touches the page, instead of reading anything else.
#[ktest(mem = 64, disk = 160, disk_eio = 2048, disk_eio_op = "read", timeout = 300)]
fn swapoff_poisons_a_page_it_cannot_read_and_the_program_gets_sigbus_at_its_touch() {
    use kernel::fs::file::Capture;
    mkswap_disk(b"/dev/vda", b"poison", UUID).expect("mkswap /dev/vda");
    swapon("/dev/vda", None).expect("swapon /dev/vda");
    let capture: Capture = Arc::new(kernel::sync::Mutex::new(Vec::new()));
    let task =
        kernel::process::spawn_user("/bin/swap_err_test", &["swap_err_test", "hold", "80"], Some(capture.clone()))
            .expect("spawn swap_err_test");
    let pid = task.pid;
    let deadline = kernel::arch::x86_64::tsc::now_ns() + 240_000_000_000;
    loop {
        let out = String::from_utf8_lossy(&capture.lock()).into_owned();
        if out.contains("holding") {
            break;
        }
        assert!(!out.contains("FAIL"), "{out}");
        assert!(kernel::arch::x86_64::tsc::now_ns() < deadline, "swap_err_test never got to hold its page");
        kernel::sched::wait::sleep_until_ns(kernel::arch::x86_64::tsc::now_ns() + 10_000_000, || false);
    }
    swapoff("/dev/vda").expect("swapoff gives up the unreadable page, as Linux does");
    assert!(log_tail_of(1 << 16).contains("poisoned (SIGBUS on access)"));
    let left = task.proc.mm().map(|mm| mm.mmap_read_lock().counter(mm::mmap::MmCounter::SwapEnts)).unwrap_or(0);
    assert_eq!(left, 0, "a swap entry outlived swapoff");
    kernel::signal::send_signal(&task, uapi::signal::SIGUSR1, None);
    drop(task);
    let reaped = kernel::process::do_wait(pid as i32, false).expect("wait").expect("reaped");
    let out = String::from_utf8_lossy(&capture.lock()).into_owned();
    assert_eq!(reaped.status & 0x7f, uapi::signal::SIGBUS as u32, "status {:#x}:\n{out}", reaped.status);
    assert_eq!(kernel::mm::pgdat().node_page_state(mm::vmstat::NodeStatItem::NrSwapcache), 0);
}

/// /proc/self/pagemap's swapped bit and smaps' Swap and SwapPss for pages
/// MADV_PAGEOUT sent to swap, before and after a fork shares their slots
/// (tests/user/proc_test.c's swap part).
#[ktest(disk = 16, timeout = 120)]
fn pagemap_and_smaps_show_pages_paged_out_to_swap() {
    mkswap("vda", "");
    swapon("/dev/vda", None).expect("swapon /dev/vda");
    let out = passes("proc_test", &["proc_test", "swap"]);
    assert!(out.contains("after fork: SwapPss 16 kB"), "the swap part did not run:\n{out}");
    swapoff("/dev/vda").expect("swapoff");
}

/// madvise with swap, as on Linux (tests/user/madv_swap_test.c, which
/// passes on Linux 6.1 with swap on): MADV_PAGEOUT sends pages to swap at
/// once (VmSwap and pswpout rise) and they come back intact; MADV_DONTNEED
/// frees swapped-out pages' swap; MADV_FREE pages read back as their old
/// data or zeros after memory pressure, and those written after the call
/// keep the new data. Reclaim dropped lazily freed pages (`pglazyfreed`).
#[ktest(mem = 64, disk = 160, timeout = 600)]
fn madvise_pageout_dontneed_and_free_work_with_swap_as_on_linux() {
    let pgdat = kernel::mm::pgdat();
    mkswap_disk(b"/dev/vda", b"madv", UUID).expect("mkswap /dev/vda");
    swapon("/dev/vda", None).expect("swapon /dev/vda");
    let lazyfreed = pgdat.all_vm_events(VmEventItem::Pglazyfreed);
    let out = passes("madv_swap_test", &["madv_swap_test", "80"]);
    log::info!("madv_swap_test:\n{out}");
    assert!(pgdat.all_vm_events(VmEventItem::Pglazyfreed) > lazyfreed, "reclaim dropped no MADV_FREE page");
    swapoff("/dev/vda").expect("swapoff");
    assert_eq!(pgdat.node_page_state(mm::vmstat::NodeStatItem::NrSwapcache), 0);
}
