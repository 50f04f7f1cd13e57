//! Workingset detection under real memory pressure (Linux
//! `mm/workingset.c`; the mechanism is host-tested in
//! `mm/src/workingset/tests.rs`): at 64 MiB, on an ext2 disk holding six
//! 32 MiB pattern files (tests/disks/workingset, 192 MiB: three times
//! memory), reclaim leaves shadow entries where it evicts and a page read
//! back at one of them is a refault.
//!
//! - A set of files three times memory read over and over: every page is
//!   evicted before its next read, so every page of every pass after the
//!   first refaults (`workingset_refault_file`), the data stays right, the
//!   console answers commands during every pass, and every page comes
//!   back at the end.
//! - A workingset pushed out by a stream read once refaults within the
//!   active list's size, and is activated at once
//!   (`workingset_activate_file`).

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kernel::arch::x86_64::tsc;
use kernel::fs::inode::Inode;
use kernel::fs::read_write::generic_file_read;
use kernel::fs::syscalls::{kern, kern_path};
use kernel::sched;
use kernel::shell::{Flow, Shell};
use kernel::sync::Mutex;
use ktest_macros::ktest;
use mm::PAGE_SIZE;
use mm::page_flags::PageFlags;
use mm::readahead::FileRaState;
use mm::vmstat::NodeStatItem;

/// Where the test disk is mounted.
const DIR: &str = "/mnt-workingset";

/// The files of tests/disks/workingset.
const FILES: [&str; 6] = ["f0", "f1", "f2", "f3", "f4", "f5"];

/// Bytes per read.
const CHUNK: usize = 128 * 1024;

/// The test pattern's period: byte `i` of a file is `i * 31 % 251`.
const PERIOD: usize = 251;

fn state(item: NodeStatItem) -> u64 {
    kernel::mm::pgdat().node_page_state(item)
}

/// The test disk mounted on [`DIR`], its files open.
fn mount_files() -> Vec<Arc<Inode>> {
    kern::mkdir(DIR).or_else(|e| if e == uapi::errno::Errno::EEXIST { Ok(()) } else { Err(e) }).expect("mkdir");
    kern::mount("/dev/vda", DIR, "ext2", true).expect("mount /dev/vda read-only");
    FILES
        .iter()
        .map(|name| {
            let path = format!("{DIR}/{name}");
            kern_path(&path).unwrap_or_else(|e| panic!("{path}: {e:?}")).inode
        })
        .collect()
}

/// Reads bytes `start..end` of `file` in [`CHUNK`]s through its page
/// cache, as one sequential reader, checking them against the pattern
/// (`pattern` holds it from offset 0, one period longer than a chunk).
fn read_range(file: &Inode, start: u64, end: u64, pattern: &[u8], buf: &mut [u8]) -> Result<(), String> {
    let mut ra = FileRaState::default();
    let mut at = start;
    while at < end {
        let want = buf.len().min((end - at) as usize);
        let n = generic_file_read(file, &mut ra, at, &mut buf[..want]).map_err(|e| format!("read at {at}: {e:?}"))?;
        if n != want {
            return Err(format!("read at {at}: {n} bytes of {want}"));
        }
        let from = (at % PERIOD as u64) as usize;
        if buf[..n] != pattern[from..from + n] {
            return Err(format!("wrong bytes at {at}"));
        }
        at += n as u64;
    }
    Ok(())
}

fn pattern() -> Vec<u8> {
    (0..CHUNK + PERIOD).map(|i| (i * 31 % 251) as u8).collect()
}

fn size(file: &Inode) -> u64 {
    file.i_mapping.as_ref().expect("an ext2 file has a page cache").i_size()
}

fn mapping(file: &Inode) -> &kernel::filemap::Mapping {
    file.i_mapping.as_ref().expect("an ext2 file has a page cache")
}

/// What the reader and the console share.
struct Run {
    /// Full passes the reader finished.
    passes: AtomicU64,
    /// Console commands answered.
    answers: AtomicU64,
    done: AtomicBool,
    /// The reader's first failure.
    error: Mutex<Option<String>>,
}

/// Passes over the whole file set.
const PASSES: u64 = 3;

#[ktest(mem = 64, disk = 208, disk_tree = "workingset", timeout = 180)]
fn a_file_set_three_times_memory_read_over_and_over_refaults_with_the_console_answering() {
    let (pages_before, _) = crate::process::memory_state();
    let files = mount_files();
    let total: u64 = files.iter().map(|f| size(f)).sum();
    let memory = kernel::mm::pgdat().totalram_pages() * PAGE_SIZE;
    assert!(total >= 3 * memory, "the file set ({total} bytes) is three times memory ({memory} bytes)");
    let refaults_before = state(NodeStatItem::WorkingsetRefaultFile);
    let run = Arc::new(Run {
        passes: AtomicU64::new(0),
        answers: AtomicU64::new(0),
        done: AtomicBool::new(false),
        error: Mutex::new(None),
    });
    // The reader reads every file from start to end, PASSES times, and at
    // the end of each pass waits until the console has answered since the
    // pass began: a console that never gets the CPU hangs the test.
    let (reader_run, reader_files) = (run.clone(), files.clone());
    let reader = sched::kthread_run("ws-reader", move || {
        let pattern = pattern();
        let mut buf = alloc::vec![0u8; CHUNK];
        for pass in 0..PASSES {
            let answered = reader_run.answers.load(Ordering::Acquire);
            for (name, file) in FILES.iter().zip(&reader_files) {
                if let Err(e) = read_range(file, 0, size(file), &pattern, &mut buf) {
                    *reader_run.error.lock() = Some(format!("pass {pass}, {name}: {e}"));
                    reader_run.done.store(true, Ordering::Release);
                    return;
                }
            }
            while reader_run.answers.load(Ordering::Acquire) == answered {
                sched::wait::sleep_until_ns(tsc::now_ns() + 1_000_000, || false);
            }
            reader_run.passes.fetch_add(1, Ordering::AcqRel);
        }
        reader_run.done.store(true, Ordering::Release);
    })
    .expect("spawn the reader");
    // The console, meanwhile: /proc/meminfo and /proc/vmstat as the mm
    // console prints them.
    let mut shell = Shell::new();
    while !run.done.load(Ordering::Acquire) {
        for (command, line) in [("meminfo", "MemAvailable:"), ("vmstat", "workingset_refault_file ")] {
            let mut out = String::new();
            let flow = shell.execute(command, &mut out);
            assert!(matches!(flow, Ok(Flow::Continue)), "`{command}`: {flow:?}");
            assert!(out.contains(line), "`{command}` printed no {line}:\n{out}");
        }
        run.answers.fetch_add(1, Ordering::AcqRel);
        sched::wait::sleep_until_ns(tsc::now_ns() + 20_000_000, || false);
    }
    reader.proc.group.child_exit.wait_event(|| reader.proc.group.zombie.load(Ordering::Acquire));
    reader.wait_inactive();
    drop(reader);
    sched::release_dead_tasks();
    if let Some(e) = run.error.lock().take() {
        panic!("the reader failed: {e}");
    }
    assert_eq!(run.passes.load(Ordering::Acquire), PASSES);
    let refaults = state(NodeStatItem::WorkingsetRefaultFile) - refaults_before;
    let shadows: u64 = files.iter().map(|f| mapping(f).nr_shadows()).sum();
    kernel::kprintln!(
        "workingset: {PASSES} passes over {} MiB at {} MiB of memory: {refaults} refaults, {} activated, {} restored; \
         {shadows} shadows left, console answered {} times",
        total >> 20,
        memory >> 20,
        state(NodeStatItem::WorkingsetActivateFile),
        state(NodeStatItem::WorkingsetRestoreFile),
        run.answers.load(Ordering::Acquire)
    );
    // Every page of a later pass was evicted before it was read again,
    // its shadow waiting at its index.
    let pages = total / PAGE_SIZE;
    assert!(refaults >= (PASSES - 1) * pages, "{refaults} refaults: not every page of passes 2-{PASSES} refaulted");
    assert!(shadows > 0, "reclaim left no shadow entry");
    drop(files);
    kern::umount(DIR).expect("umount");
    let (pages_after, _) = crate::process::memory_state();
    assert_eq!(pages_after, pages_before, "every page came back (the shadows' index nodes too)");
}

#[ktest(mem = 64, disk = 208, disk_tree = "workingset", timeout = 120)]
fn a_workingset_pushed_out_by_a_stream_refaults_into_the_active_list() {
    let files = mount_files();
    kernel::mm::drop_caches();
    let free = kernel::mm::nr_free_pages() * PAGE_SIZE;
    let pattern = pattern();
    let mut buf = alloc::vec![0u8; CHUNK];
    // A hot set, read twice: on the active list, a third of free memory.
    let hot = (free / 3).next_multiple_of(CHUNK as u64);
    let active_before = state(NodeStatItem::NrActiveFile);
    for _ in 0..2 {
        read_range(&files[0], 0, hot, &pattern, &mut buf).expect("the hot set");
    }
    kernel::mm::pgdat().lru_add_drain_all();
    let active = state(NodeStatItem::NrActiveFile) - active_before;
    assert!(active * PAGE_SIZE >= hot / 2, "read twice, the hot set is active: {active} pages");
    // The workingset, read once: inactive.
    let workingset = (free / 8).next_multiple_of(CHUNK as u64);
    read_range(&files[1], 0, workingset, &pattern, &mut buf).expect("the workingset");
    // A stream read once, until reclaim has evicted the whole workingset.
    let mut streamed = 0;
    'stream: for file in &files[2..] {
        let mut at = 0;
        while at < size(file) {
            if mapping(&files[1]).nrpages() == 0 {
                break 'stream;
            }
            read_range(file, at, at + CHUNK as u64, &pattern, &mut buf).expect("the stream");
            at += CHUNK as u64;
            streamed += CHUNK as u64;
        }
    }
    assert_eq!(mapping(&files[1]).nrpages(), 0, "a stream of {streamed} bytes did not evict the workingset");
    assert!(mapping(&files[1]).nr_shadows() > 0, "the evicted workingset left shadows");
    let (refaults, activations) =
        (state(NodeStatItem::WorkingsetRefaultFile), state(NodeStatItem::WorkingsetActivateFile));
    read_range(&files[1], 0, workingset, &pattern, &mut buf).expect("the workingset again");
    let refaulted = state(NodeStatItem::WorkingsetRefaultFile) - refaults;
    let activated = state(NodeStatItem::WorkingsetActivateFile) - activations;
    let active_now = (0..workingset / PAGE_SIZE)
        .filter(|&i| mapping(&files[1]).find_get(i).is_some_and(|f| f.page().test(PageFlags::ACTIVE)))
        .count();
    kernel::kprintln!(
        "workingset: hot {} pages active, workingset {} pages evicted by a {} MiB stream: {refaulted} refaults, \
         {activated} activated, {active_now} active now",
        active,
        workingset / PAGE_SIZE,
        streamed >> 20
    );
    assert!(refaulted >= workingset / PAGE_SIZE, "every page of the workingset refaulted");
    assert!(activated > 0, "no refault was within the active list's size");
    assert!(active_now > 0, "no page of the workingset is active after its refault");
    drop(files);
    kern::umount(DIR).expect("umount");
}
