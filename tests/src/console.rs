//! The mm console on the real machine: its line editor byte by byte, every
//! report parsed and checked against the allocators' own state, and the
//! commands that allocate, stress and run programs.
//!
//! Reports that are compared with allocator counters are formatted into
//! strings allocated beforehand, after draining the per-cpu lists, so the
//! formatting itself cannot move a page between the snapshot and the check.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

use kernel::shell::tty::{HISTORY_LEN, Input, LINE_MAX, LineEditor};
use kernel::shell::{CmdError, Flow, Shell};
use ktest_macros::ktest;
use mm::gfp::GFP_HIGHUSER_MOVABLE;
use mm::kmemmap::Kmemmap;
use mm::page::PAGEBLOCK_ORDER;
use mm::vmstat::{Buddyinfo, Pagetypeinfo, Vmstat};

/// Feeds `bytes` to the editor; returns the last event and the echo.
fn feed(ed: &mut LineEditor, bytes: &[u8]) -> (Input, String) {
    let mut echo = String::new();
    let mut last = Input::Pending;
    for &b in bytes {
        last = ed.feed(b, &mut echo);
    }
    (last, echo)
}

#[ktest]
fn the_line_editor_erases_kills_interrupts_and_ends_lines() {
    let mut ed = LineEditor::new("mm> ");
    let (input, echo) = feed(&mut ed, b"mem\x7fminfo\r");
    assert_eq!(input, Input::Line("meminfo".into()));
    assert_eq!(echo, "mem\x08 \x08minfo\n");
    // CR LF is one line end; a lone LF is one too.
    assert_eq!(feed(&mut ed, b"\n").0, Input::Pending);
    assert_eq!(feed(&mut ed, b"ps\n").0, Input::Line("ps".into()));
    // Ctrl-U erases the line, Ctrl-C discards it.
    assert_eq!(feed(&mut ed, b"junk\x15vmstat\r").0, Input::Line("vmstat".into()));
    let (input, echo) = feed(&mut ed, b"half\x03");
    assert_eq!(input, Input::Interrupt);
    assert!(echo.ends_with("^C\n"));
    assert_eq!(feed(&mut ed, b"\r").0, Input::Line(String::new()), "the interrupted text is gone");
    // Backspace on an empty line and unknown control bytes do nothing.
    assert_eq!(feed(&mut ed, b"\x08\x7f\x02x\r").0, Input::Line("x".into()));
}

#[ktest]
fn the_line_editor_moves_the_cursor_and_recalls_history() {
    let mut ed = LineEditor::new("mm> ");
    feed(&mut ed, b"buddyinfo\r");
    feed(&mut ed, b"slabinfo\r");
    feed(&mut ed, b"slabinfo\r");
    feed(&mut ed, b"   \r");
    assert_eq!(ed.history().collect::<Vec<_>>(), ["slabinfo", "buddyinfo"], "no repeats, no blanks");
    // Up twice reaches the oldest; down returns to the draft being typed.
    let (input, echo) = feed(&mut ed, b"dra\x1b[A\x1b[A");
    assert_eq!(input, Input::Pending);
    assert!(echo.ends_with("\rmm> buddyinfo\x1b[K"), "{echo:?}");
    assert_eq!(feed(&mut ed, b"\x1b[A\x1b[B\x1b[B\r").0, Input::Line("dra".into()));
    // Left twice, insert: the middle of the line is edited and redrawn.
    let (input, _) = feed(&mut ed, b"maps 1\x1b[D\x1b[D2\x1b[C\x1b[C3\r");
    assert_eq!(input, Input::Line("maps2 13".into()), "left stops before the space, right stops at the end");
    assert_eq!(feed(&mut ed, b"abc\x01X\x05Y\r").0, Input::Line("XabcY".into()));
    // Home/End as CSI and SS3 (application mode) sequences; F1 (ESC O P)
    // types nothing; SS3 arrows walk the history like CSI ones.
    assert_eq!(feed(&mut ed, b"bc\x1b[Ha\x1bOFd\x1bOP\r").0, Input::Line("abcd".into()));
    assert_eq!(feed(&mut ed, b"\x1bOA\r").0, Input::Line("abcd".into()));
    // Long lines stop at LINE_MAX; the history keeps HISTORY_LEN lines.
    let long = alloc::vec![b'a'; LINE_MAX + 10];
    let (_, echo) = feed(&mut ed, &long);
    assert!(echo.ends_with('\x07'));
    assert_eq!(feed(&mut ed, b"\r").0, Input::Line("a".repeat(LINE_MAX)));
    for i in 0..HISTORY_LEN + 5 {
        feed(&mut ed, alloc::format!("cmd{i}\r").as_bytes());
    }
    assert_eq!(ed.history().count(), HISTORY_LEN);
    assert_eq!(ed.history().next(), Some(alloc::format!("cmd{}", HISTORY_LEN + 4).as_str()));
}

/// Runs a console command that must succeed; returns its output.
pub(crate) fn sh(shell: &mut Shell, line: &str) -> String {
    let mut out = String::new();
    match shell.execute(line, &mut out) {
        Ok(Flow::Continue) => out,
        other => panic!("`{line}`: {other:?}\n{out}"),
    }
}

/// Free pages plus the pages slab caches and page tables hold, after
/// empty slabs and lazy vmalloc areas are given back: what an
/// allocate-and-free cycle must leave as it found it (a cycle may leave a
/// slab page or a page table for the next one to use, but not a page
/// unaccounted for).
fn accounted_pages() -> u64 {
    use mm::vmstat::NodeStatItem;
    kernel::mm::drop_caches();
    let pgdat = kernel::mm::pgdat();
    kernel::mm::nr_free_pages()
        + pgdat.node_page_state_pages(NodeStatItem::NrSlabUnreclaimableB)
        + pgdat.node_page_state_pages(NodeStatItem::NrSlabReclaimableB)
        + pgdat.node_page_state(NodeStatItem::NrPagetable)
}

/// Each zone's free pages now, read without allocating: taken right after
/// a report is written, before the test's own allocations (a slab page
/// taken then refills the per-CPU list with a batch from the buddy lists)
/// can move the counts.
fn zone_free_pages(pgdat: &mm::page_alloc::PgData<'_>) -> [u64; mm::mmzone::MAX_NR_ZONES] {
    core::array::from_fn(|i| pgdat.zones().get(i).map_or(0, |z| z.free_pages()))
}

/// Free pages per zone from buddyinfo text.
fn buddyinfo_pages(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .map(|line| {
            let mut words = line.strip_prefix("Node 0, zone").expect("buddyinfo line").split_whitespace();
            let zone = String::from(words.next().expect("zone name"));
            let pages = words.enumerate().map(|(order, n)| n.parse::<u64>().expect("count") << order).sum();
            (zone, pages)
        })
        .collect()
}

/// `Key: N kB` lines.
fn meminfo_fields(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .map(|line| {
            let (key, value) = line.split_once(':').expect("meminfo line");
            let value = value.trim().strip_suffix(" kB").expect("kB").trim().parse().expect("meminfo value");
            (String::from(key), value)
        })
        .collect()
}

#[ktest]
fn meminfo_and_buddyinfo_agree_with_the_buddy_allocator() {
    let pgdat = kernel::mm::pgdat();
    let (mut meminfo, mut buddyinfo) = (String::with_capacity(16384), String::with_capacity(4096));
    pgdat.lru_add_drain_all();
    pgdat.drain_all_pages();
    let free = pgdat.nr_free_pages();
    write!(meminfo, "{}", kernel::mm::meminfo()).expect("format");
    write!(buddyinfo, "{}", Buddyinfo(pgdat)).expect("format");
    let live = zone_free_pages(pgdat);
    let fields = meminfo_fields(&meminfo);
    assert_eq!(fields["MemFree"], free * 4, "MemFree is the buddy free page count x 4 KiB");
    assert_eq!(fields["MemTotal"], pgdat.totalram_pages() * 4);
    // Holds while no SLAB_RECLAIM_ACCOUNT cache has slabs (none today):
    // reclaimable slab would count as available on top of free pages.
    assert!(fields["MemAvailable"] <= fields["MemFree"]);
    assert!(fields["Slab"] > 0 && fields["PageTables"] > 0 && fields["KernelStack"] > 0, "{meminfo}");
    let zones = buddyinfo_pages(&buddyinfo);
    for (zone, live) in pgdat.zones().iter().zip(live).filter(|(z, _)| z.present_pages() > 0) {
        assert_eq!(zones[zone.name()], live, "zone {}", zone.name());
    }
    assert_eq!(zones.values().sum::<u64>(), free);
}

#[ktest]
fn pagetypeinfo_free_counts_add_up_to_buddyinfo() {
    let pgdat = kernel::mm::pgdat();
    let (mut types, mut buddy) = (String::with_capacity(16384), String::with_capacity(4096));
    pgdat.lru_add_drain_all();
    pgdat.drain_all_pages();
    write!(types, "{}", Pagetypeinfo(pgdat)).expect("format");
    write!(buddy, "{}", Buddyinfo(pgdat)).expect("format");
    // Per zone and order, the migratetype rows sum to buddyinfo's column.
    let mut sums: BTreeMap<String, [u64; 11]> = BTreeMap::new();
    for line in types.lines().filter(|l| l.contains(", type ")) {
        let (left, right) = line.split_once(", type ").expect("type");
        let zone = left.rsplit("zone").next().expect("zone").trim();
        let entry = sums.entry(String::from(zone)).or_default();
        for (order, n) in right.split_whitespace().skip(1).enumerate() {
            entry[order] += n.parse::<u64>().expect("count");
        }
    }
    for line in buddy.lines() {
        let mut words = line.strip_prefix("Node 0, zone").expect("buddyinfo").split_whitespace();
        let zone = words.next().expect("zone");
        let counts: Vec<u64> = words.map(|w| w.parse().expect("count")).collect();
        assert_eq!(sums[zone].as_slice(), counts.as_slice(), "zone {zone}");
    }
    // Every pageblock of every zone is counted once in the block table.
    let blocks: u64 = types
        .lines()
        .skip_while(|l| !l.starts_with("Number of blocks type"))
        .skip(1)
        .flat_map(|l| l.split_whitespace().skip(4).map(|n| n.parse::<u64>().expect("blocks")).collect::<Vec<_>>())
        .sum();
    let spanned: u64 = pgdat
        .zones()
        .iter()
        .filter(|z| z.present_pages() > 0)
        .map(|z| {
            let start = z.start_pfn() >> PAGEBLOCK_ORDER;
            let end = (z.start_pfn() + z.spanned_pages()).div_ceil(1 << PAGEBLOCK_ORDER);
            end - start
        })
        .sum();
    assert_eq!(blocks, spanned);
}

#[ktest]
fn slabinfo_objects_match_the_cache_counters() {
    let slab = kernel::slab::slab().expect("slab");
    let mut text = String::with_capacity(32768);
    let mut expected: Vec<(&'static str, u64, u64, u64)> = Vec::with_capacity(256);
    write!(text, "{}", mm::slab_common::Slabinfo(slab)).expect("format");
    slab.for_each_cache(|c| {
        let i = slab.slabinfo_of(c);
        expected.push((c.name(), i.active_objs, i.num_objs, i.num_slabs));
    });
    let rows: BTreeMap<&str, Vec<u64>> = text
        .lines()
        .skip(2)
        .map(|l| {
            let name = l.split_whitespace().next().expect("name");
            let numbers = l.split_whitespace().filter_map(|w| w.parse().ok()).collect();
            (name, numbers)
        })
        .collect();
    assert_eq!(rows.len(), expected.len());
    for (name, active, num, slabs) in expected {
        let row = &rows[name];
        // active_objs num_objs objsize objperslab pagesperslab 0 0 0 active_slabs num_slabs 0
        assert_eq!((row[0], row[1], row[9]), (active, num, slabs), "cache {name}");
        assert!(row[0] <= row[1] && row[1] == row[3] * row[9], "cache {name}: {row:?}");
    }
}

#[ktest]
fn vmstat_and_zoneinfo_report_the_allocator_state() {
    let pgdat = kernel::mm::pgdat();
    let (mut vmstat, mut zoneinfo) = (String::with_capacity(8192), String::with_capacity(16384));
    pgdat.lru_add_drain_all();
    pgdat.drain_all_pages();
    let free = pgdat.nr_free_pages();
    write!(vmstat, "{}", Vmstat(pgdat)).expect("format");
    write!(zoneinfo, "{}", mm::vmstat::Zoneinfo(pgdat)).expect("format");
    let live = zone_free_pages(pgdat);
    let counters: BTreeMap<&str, i64> = vmstat
        .lines()
        .map(|l| {
            let (name, value) = l.split_once(' ').expect("name value");
            (name, value.parse().expect("value"))
        })
        .collect();
    assert_eq!(counters["nr_free_pages"], free as i64);
    for name in ["pgalloc_dma", "pgalloc_dma32", "pgalloc_normal", "pgfree", "pgfault", "nr_page_table_pages"] {
        assert!(counters.contains_key(name), "vmstat lacks {name}");
    }
    // zoneinfo: each zone's free and managed pages.
    for (zone, live) in pgdat.zones().iter().zip(live) {
        let header = alloc::format!("Node 0, zone {:>8}", zone.name());
        let body: Vec<&str> = zoneinfo.lines().skip_while(|l| *l != header).skip(1).collect();
        assert!(!body.is_empty() || zone.present_pages() == 0, "no section {header:?}");
        if zone.present_pages() == 0 {
            continue;
        }
        let field = |name: &str| -> u64 {
            let line = body.iter().find(|l| l.trim_start().starts_with(name)).expect(name);
            line.split_whitespace().last().expect("value").parse().expect("number")
        };
        assert_eq!(field("pages free"), live, "{}", zone.name());
        assert_eq!(field("managed"), zone.managed_pages(), "{}", zone.name());
        assert_eq!(field("spanned"), zone.spanned_pages(), "{}", zone.name());
    }
}

#[ktest]
fn vmstat_counts_page_allocations_on_this_cpu() {
    use mm::vmstat::VmEventItem;
    let pgdat = kernel::mm::pgdat();
    let before = pgdat.all_vm_events(VmEventItem::PgallocDma32) + pgdat.all_vm_events(VmEventItem::PgallocNormal);
    let freed = pgdat.all_vm_events(VmEventItem::Pgfree);
    let pages: Vec<_> =
        (0..100).map(|_| kernel::mm::alloc_pages_owned(mm::gfp::GFP_KERNEL, 1).expect("page")).collect();
    for p in pages {
        p.free().expect("free");
    }
    let after = pgdat.all_vm_events(VmEventItem::PgallocDma32) + pgdat.all_vm_events(VmEventItem::PgallocNormal);
    assert!(after - before >= 200, "100 order-1 allocations count 200 pages: {}", after - before);
    assert!(pgdat.all_vm_events(VmEventItem::Pgfree) - freed >= 200);
}

#[ktest]
fn kmemmap_shows_an_allocated_pageblock_and_every_block_once() {
    let pgdat = kernel::mm::pgdat();
    let memblock = kernel::mm::memblock().expect("memblock");
    let block = kernel::mm::alloc_pages_owned(GFP_HIGHUSER_MOVABLE, PAGEBLOCK_ORDER).expect("a free pageblock");
    let mut text = String::new();
    pgdat.lru_add_drain_all();
    pgdat.drain_all_pages();
    write!(text, "{}", Kmemmap { pgdat, memblock: &memblock, per_row: 64 }).expect("format");
    let i = (block.pfn().as_u64() >> PAGEBLOCK_ORDER) as usize;
    block.free().expect("free");
    let nr_blocks = pgdat.mem_map().end_pfn().as_u64().div_ceil(1 << PAGEBLOCK_ORDER);
    let cells: Vec<(char, char, char)> = text
        .lines()
        .filter(|l| l.starts_with("0x"))
        .flat_map(|l| {
            let symbols = l.split('|').nth(1).expect("bars");
            let (fills, lru_fills) =
                l.rsplit("| ").next().and_then(|d| d.split_once(' ')).expect("fill and LRU digits");
            assert_eq!((symbols.len(), symbols.len()), (fills.len(), lru_fills.len()), "{l}");
            symbols
                .chars()
                .zip(fills.chars())
                .zip(lru_fills.chars())
                .map(|((s, f), lru)| (s, f, lru))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(cells.len() as u64, nr_blocks);
    assert_eq!(cells[i], ('M', '9', '0'), "the allocated block is movable, full and on no LRU list");
    // The first MiB is reserved: block 0 is in use.
    assert!(cells[0].0.is_ascii_uppercase(), "block 0: {:?}", cells[0]);
    assert!(cells.iter().all(|&(s, f, _)| (s == 'R' || s == ' ') == (f == '-') && "uUmMeEhHiIR ".contains(s)));
    // A page on an LRU list is in use: the LRU digit is `-` where the fill
    // is and never above it.
    assert!(cells.iter().all(|&(_, f, l)| (f == '-' && l == '-') || (l.is_ascii_digit() && l <= f)), "{text}");
    assert!(text.contains("zone DMA32"));
}

#[ktest]
fn console_commands_allocate_check_and_free() {
    let mut shell = Shell::new();
    let before = accounted_pages();
    let out = sh(&mut shell, "alloc 12K");
    assert!(out.starts_with("alloc: #1 4 pages (order 2) at pfn"), "{out}");
    sh(&mut shell, "alloc 100 kmalloc");
    sh(&mut shell, "alloc 1M vmalloc");
    assert_eq!(shell.allocs.len(), 3);
    let list = sh(&mut shell, "alloc");
    assert!(list.contains("#3") && list.ends_with("3 allocations, 1040 KiB\n"), "{list}");
    assert_eq!(sh(&mut shell, "free 2"), "free: #2 pattern intact, freed\n");
    let out = sh(&mut shell, "free");
    assert_eq!(out.lines().count(), 2);
    assert!(shell.allocs.is_empty());
    assert_eq!(accounted_pages(), before, "alloc and free give every page back");
}

#[ktest]
fn console_errors_are_typed_and_change_nothing() {
    let mut shell = Shell::new();
    let mut out = String::new();
    let mut err = |line: &str| shell.execute(line, &mut out).expect_err(line);
    assert_eq!(err("nosuchcmd"), CmdError::Unknown);
    assert_eq!(err("alloc 5X"), CmdError::BadNumber("5X".into()));
    assert!(matches!(err("alloc 8M"), CmdError::TooLarge(_)), "order 11 is above MAX_PAGE_ORDER");
    assert!(matches!(err("alloc 4K slab"), CmdError::Usage(_)));
    assert_eq!(err("free 7"), CmdError::NoAlloc(7));
    assert_eq!(err("maps 99999"), CmdError::NoSuchTask(99999));
    assert_eq!(err("maps $!"), CmdError::NoBackground);
    assert!(matches!(err("stress 0 1"), CmdError::Usage(_)));
    assert_eq!(err("run no_such_program"), CmdError::Spawn(uapi::errno::Errno::ENOENT));
    assert!(out.is_empty(), "failed commands print nothing: {out:?}");
    assert!(shell.allocs.is_empty());
}

#[ktest]
fn stress_leaves_no_page_behind_and_finds_no_broken_pattern() {
    let mut shell = Shell::new();
    let before = accounted_pages();
    let out = sh(&mut shell, "stress 16 1");
    assert!(out.starts_with("stress: ") && out.ends_with(" 0 broken patterns\n"), "{out}");
    let allocs: u64 =
        out.split(", ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).expect("count");
    assert!(allocs > 100, "a second of stress makes many allocations: {out}");
    assert_eq!(accounted_pages(), before, "stress gives every page back");
    let pgdat = kernel::mm::pgdat();
    let drops = pgdat.all_vm_events(mm::vmstat::VmEventItem::DropSlab);
    let out = sh(&mut shell, "drop_caches");
    assert!(out.starts_with("drop_caches: "), "{out}");
    assert_eq!(pgdat.all_vm_events(mm::vmstat::VmEventItem::DropSlab), drops + 1);
}

/// Starts `frag 32 wait` in the background and returns its pid and task
/// once it has made its holes and sleeps, waiting for SIGUSR1.
pub(crate) fn start_frag(shell: &mut Shell) -> (u32, alloc::sync::Arc<kernel::sched::Task>) {
    let out = sh(shell, "run frag 32 wait &");
    let pid: u32 =
        out.trim().strip_prefix('[').and_then(|s| s.split(']').next()).and_then(|p| p.parse().ok()).expect("pid");
    let task = kernel::sched::find_task_by_pid(pid).expect("task");
    wait_for_holes(&task);
    // Holes made is not frag done: it may still be unmapping the last
    // few, which would count as pages compaction gave back. In `wait`
    // mode it sleeps interruptibly once done, in 10 ms nanosleeps until
    // SIGUSR1. Polling with 10 ms sleeps of our own locked in phase with
    // those once (both woken by the same tick, we ran first and saw frag
    // runnable every time: a hang in a full run). Yielding instead lets a
    // runnable frag run before we look again.
    let deadline = kernel::arch::x86_64::tsc::now_ns() + 30_000_000_000;
    while task.state() != kernel::sched::TaskState::Interruptible {
        assert!(kernel::arch::x86_64::tsc::now_ns() < deadline, "frag never went to sleep for SIGUSR1");
        kernel::sched::yield_now();
    }
    (pid, task)
}

/// Until frag (32 MiB) has written all its pages and freed every other
/// one: 8192 pages at the high-water mark, about 4096 left. frag's own
/// progress is the event; a frag that never gets there is a hang, for the
/// test's timeout to report.
pub(crate) fn wait_for_holes(task: &kernel::sched::Task) {
    let holes_made = |mm: &kernel::mmap::MmRef| {
        let mm = mm.mmap_read_lock();
        mm.hiwater_rss() >= 8192 && mm.rss_pages() < 4096 + 256
    };
    while !task.proc.mm().is_some_and(|mm| holes_made(&mm)) {
        kernel::sched::wait::sleep_until_ns(kernel::arch::x86_64::tsc::now_ns() + 10_000_000, || false);
    }
}

/// A boot of its own: whether compaction can free whole 2 MiB blocks
/// depends on where earlier tests left unmovable pages (slab and
/// page-table pages, files of the rootfs's tests are movable cache pages
/// but stay until unlinked), and this test is about frag's holes.
#[ktest(fresh_boot)]
fn compact_moves_a_fragmented_program_and_its_data_survives() {
    use mm::vmstat::VmEventItem;
    let mut shell = Shell::new();
    // 32 MiB written with a pattern, every other page freed; frag then
    // waits for SIGUSR1, checks every byte and exits 0 only if all held.
    let (pid, task) = start_frag(&mut shell);
    let pgdat = kernel::mm::pgdat();
    let accounted = accounted_pages();
    let migrated = pgdat.all_vm_events(VmEventItem::PgmigrateSuccess);
    let (blocks_before, _) = kernel::shell::stress::free_pageblocks();
    let line = sh(&mut shell, "compact");
    let (blocks_after, _) = kernel::shell::stress::free_pageblocks();
    let migrated = pgdat.all_vm_events(VmEventItem::PgmigrateSuccess) - migrated;
    log::info!("{}", line.trim_end());
    log::info!("compact: {migrated} pages migrated; free 2 MiB blocks {blocks_before} -> {blocks_after}");
    assert!(line.starts_with("compact: scanned "), "{line}");
    assert!(migrated >= 512, "{line}");
    assert!(blocks_after > blocks_before, "{line}");
    for zone in pgdat.zones().iter().filter(|z| z.present_pages() > 0) {
        pgdat.check_zone(zone.zone_type()).expect("free lists consistent after compaction");
    }
    assert_eq!(accounted_pages(), accounted, "compaction gives back every page it takes");
    kernel::signal::send_signal(&task, uapi::signal::SIGUSR1, None);
    drop(task);
    let reaped = kernel::process::do_wait(pid as i32, false).expect("wait").expect("reaped");
    assert_eq!(reaped.status, 0, "frag found its data changed (exit status {:#x})", reaped.status);
}

/// Pages shared copy-on-write by a parent and its child after fork move
/// too (through their `anon_vma`, every pte of each replaced by a
/// migration entry and back): frag's kept pages are all mapped twice, and
/// so are the pages of the memfd both map shared (found through the
/// file's `i_mmap`, their page-cache entries replaced); both processes
/// find every byte afterwards.
#[ktest(fresh_boot)]
fn compact_moves_pages_shared_after_fork_and_both_keep_their_data() {
    use mm::vmstat::VmEventItem;
    let mut shell = Shell::new();
    let out = sh(&mut shell, "run frag 32 wait shared &");
    let pid: u32 =
        out.trim().strip_prefix('[').and_then(|s| s.split(']').next()).and_then(|p| p.parse().ok()).expect("pid");
    let task = kernel::sched::find_task_by_pid(pid).expect("task");
    wait_for_holes(&task);
    // Until both frag and its child sleep for SIGUSR1 (see the test above
    // for why yielding): the child exists once frag sleeps.
    let deadline = kernel::arch::x86_64::tsc::now_ns() + 30_000_000_000;
    // The frames of frag's pages that the child maps too: its memfd's, or
    // the others (anonymous; the program's text is shared too, but is a
    // few pages).
    let shared = |task: &kernel::sched::Task, file: bool| -> alloc::vec::Vec<mm::Pfn> {
        let Some(mm) = task.proc.mm() else { return alloc::vec::Vec::new() };
        let mm = mm.mmap_read_lock();
        let pgdat = kernel::mm::pgdat();
        mm.vmas()
            .iter()
            .filter(|vma| vma.file().is_some_and(|f| f.name().starts_with("/memfd:frag")) == file)
            .flat_map(|vma| (vma.start().as_u64()..vma.end().as_u64()).step_by(4096))
            .filter_map(|addr| mm.follow_pte(mm::VirtAddr::new(addr)?))
            .map(|leaf| leaf.phys.pfn())
            .filter(|&pfn| pgdat.pfn_to_page(pfn).is_some_and(|p| p.mapcount() == 2))
            .collect()
    };
    let shared_pages = |task: &kernel::sched::Task| shared(task, false).len();
    while task.state() != kernel::sched::TaskState::Interruptible || shared_pages(&task) < 4096 {
        assert!(kernel::arch::x86_64::tsc::now_ns() < deadline, "frag and its child never shared and slept");
        kernel::sched::yield_now();
    }
    let pgdat = kernel::mm::pgdat();
    let file_before = shared(&task, true);
    assert_eq!(file_before.len(), 128, "frag's memfd pages, mapped by both");
    let accounted = accounted_pages();
    let migrated = pgdat.all_vm_events(VmEventItem::PgmigrateSuccess);
    let line = sh(&mut shell, "compact");
    let migrated = pgdat.all_vm_events(VmEventItem::PgmigrateSuccess) - migrated;
    let file_after = shared(&task, true);
    let file_moved = file_before.iter().zip(&file_after).filter(|(a, b)| a != b).count();
    log::info!("compact: {file_moved} of frag's 128 memfd pages shared with its child moved");
    assert_eq!(file_after.len(), 128, "the memfd pages are still shared after the move");
    assert!(file_moved > 0, "no page-cache page moved");
    log::info!("{}", line.trim_end());
    log::info!("compact: {migrated} pages migrated with frag's 4096 kept pages shared with its child");
    // Only frag's kept pages are that many: a quarter of them at least moved
    // (before the reverse map, not one of these shared pages could).
    assert!(migrated >= 1024, "{line}");
    assert!(shared_pages(&task) >= 4096, "still shared after the move");
    assert_eq!(accounted_pages(), accounted, "compaction gives back every page it takes");
    kernel::signal::send_signal(&task, uapi::signal::SIGUSR1, None);
    drop(task);
    let reaped = kernel::process::do_wait(pid as i32, false).expect("wait").expect("reaped");
    assert_eq!(reaped.status, 0, "frag or its child found its data changed (exit status {:#x})", reaped.status);
}

#[ktest]
fn a_background_program_shows_in_ps_and_maps() {
    let mut shell = Shell::new();
    let out = sh(&mut shell, "run sleep 30 2 &");
    let pid: u32 =
        out.trim().strip_prefix('[').and_then(|s| s.split(']').next()).and_then(|p| p.parse().ok()).expect("pid");
    // Until the program has mapped and touched its 2 MiB (a program that
    // never does is a hang, for the test's timeout to report).
    let task = kernel::sched::find_task_by_pid(pid).expect("task");
    while task.proc.mm().is_none_or(|mm| mm.mmap_read_lock().rss_pages() < 512) {
        kernel::sched::wait::sleep_until_ns(kernel::arch::x86_64::tsc::now_ns() + 10_000_000, || false);
    }
    let ps = sh(&mut shell, "ps");
    let row = ps.lines().find(|l| l.split_whitespace().next() == Some(&*alloc::format!("{pid}"))).expect("ps row");
    assert!(row.ends_with(" sleep") && !row.contains('['), "{row}");
    let rss: u64 = row.split_whitespace().nth(4).and_then(|r| r.parse().ok()).expect("rss");
    assert!(rss >= 2048, "{row}");
    let maps = sh(&mut shell, "maps $!");
    assert!(maps.lines().any(|l| l.ends_with("/bin/sleep")), "{maps}");
    assert!(maps.lines().any(|l| l.ends_with("[stack]")), "{maps}");
    kernel::signal::send_signal(&task, uapi::signal::SIGKILL, None);
    drop(task);
    let reaped = kernel::process::do_wait(pid as i32, false).expect("wait").expect("reaped");
    assert_eq!(reaped.status & 0x7f, uapi::signal::SIGKILL as u32);
}

/// frag's `busy` mode on the other CPU rewrites and checks its pages and
/// sends each through a pipe (read(2)/write(2), so the kernel copies into
/// and out of them) while compaction runs again and again on this CPU:
/// every migration's flush must reach the CPU using the pages, whether it
/// is in user mode or in a kernel-mode fault sleeping for the mmap lock or
/// a page under migration, and no byte may be lost.
#[ktest(cpus = 2, timeout = 180)]
fn compaction_moves_pages_a_program_on_another_cpu_is_using() {
    use kernel::arch::x86_64::tsc::now_ns;
    /// Compaction runs while frag is busy.
    const RUNS: u32 = 4;
    let argv = ["/bin/frag", "32", "wait", "busy"];
    let other = (kernel::arch::x86_64::smp::smp_processor_id() + 1) % kernel::arch::x86_64::smp::num_online_cpus();
    let task = kernel::process::spawn_user_on(other, "/bin/frag", &argv, None).expect("spawn frag");
    let pid = task.pid;
    // Busy starts once the holes are made.
    wait_for_holes(&task);
    let pgdat = kernel::mm::pgdat();
    // A run told to stop ends at its first pageblock, moves nothing, and
    // lets the next run in.
    let stopped = kernel::compaction::compact_memory(&|| true);
    assert!(stopped.contended && stopped.migrated == 0 && stopped.migrate_scanned == 0, "{stopped:?}");
    let mut total = mm::compaction::CompactStats::default();
    let mut runs = 0;
    let start = now_ns();
    // frag's busy loop itself never faults: faults meanwhile are frag
    // touching a page whose pte migration had cleared.
    let faults = pgdat.all_vm_events(mm::vmstat::VmEventItem::Pgfault);
    // frag stays busy until SIGUSR1, however long the runs take.
    while runs < RUNS {
        let s = kernel::compaction::compact_memory(&|| false);
        log::info!("compact run {runs}: {s:?}");
        assert!(!s.contended, "{s:?}");
        (total.migrated, total.failed, total.skipped) =
            (total.migrated + s.migrated, total.failed + s.failed, total.skipped + s.skipped);
        runs += 1;
        // A pause between runs (pacing, not a wait for anything): frag
        // rewrites the pages that moved before the next run moves them.
        kernel::sched::wait::sleep_until_ns(now_ns() + 100_000_000, || false);
    }
    let busy = task.proc.mm().is_some();
    log::info!(
        "concurrent compaction: {runs} runs in {} ms, {} pages migrated, {} failed, {} skipped, {} page faults \
         meanwhile; frag still busy: {busy}",
        (now_ns() - start) / 1_000_000,
        total.migrated,
        total.failed,
        total.skipped,
        pgdat.all_vm_events(mm::vmstat::VmEventItem::Pgfault) - faults
    );
    kernel::signal::send_signal(&task, uapi::signal::SIGUSR1, None);
    drop(task);
    let reaped = kernel::process::do_wait(pid as i32, false).expect("wait").expect("reaped");
    assert_eq!(reaped.status, 0, "frag found its data changed (exit status {:#x})", reaped.status);
    assert!(busy, "frag ended before SIGUSR1 (exit status {:#x})", reaped.status);
    assert!(total.migrated > 0, "no page of frag moved: {total:?}");
    for zone in pgdat.zones().iter().filter(|z| z.present_pages() > 0) {
        pgdat.check_zone(zone.zone_type()).expect("free lists consistent after compaction");
    }
}
