//! User processes: the test programs of tests/user run from the initramfs
//! (static musl binaries that also pass under Linux), each checking Linux
//! semantics itself and printing PASS or FAIL.

use alloc::string::String;
use alloc::vec::Vec;

use kernel::arch::x86_64::pgtable::kernel_pgtable;
use kernel::process::run_user;
use ktest_macros::ktest;

/// Runs `path` with `argv`; returns its exit status and output.
fn run(path: &str, argv: &[&str]) -> (u32, String) {
    let (status, out) = run_user(path, argv).unwrap_or_else(|e| panic!("{path}: cannot run: {e}"));
    (status, String::from_utf8_lossy(&out).into_owned())
}

fn check_passes(name: &str, argv: &[&str]) {
    let path = alloc::format!("/bin/{name}");
    let (status, out) = run(&path, argv);
    assert!(
        status == 0 && out.contains(&alloc::format!("PASS {name}")),
        "{name} exited with status {status:#x}; output:\n{out}"
    );
}

#[ktest]
fn hello_runs_and_sees_its_arguments() {
    let (status, out) = run("/bin/hello", &["hello", "one", "two"]);
    assert_eq!(status, 0, "exit status; output:\n{out}");
    assert!(out.contains("hello from user space"), "output:\n{out}");
    assert!(out.contains("one") && out.contains("two"), "arguments missing; output:\n{out}");
}

#[ktest]
fn a_missing_program_is_refused() {
    assert_eq!(run_user("/bin/no-such-program", &[]).map(|(s, _)| s), Ok(127 << 8));
}

#[ktest(timeout = 120)]
fn mmap_family_behaves_as_on_linux() {
    check_passes("mmap_test", &["mmap_test"]);
}

/// The corners where a differential run against Linux found us
/// different (issue 16), and the calls that once panicked the kernel.
#[ktest(timeout = 120)]
fn mm_corner_cases_behave_as_on_linux() {
    check_passes("mm_linux_semantics", &["/bin/mm_linux_semantics"]);
}

/// /dev's memory devices, mmap of /dev/zero, /dev/shm and shm_open,
/// mknod (issue 22).
#[ktest(timeout = 120)]
fn devices_and_dev_shm_behave_as_on_linux() {
    check_passes("dev_test", &["dev_test"]);
}

/// System V shared memory: shmget, shmat, shmdt, shmctl and the
/// attach counts through fork, exec and exit (issue 22). The full path:
/// the program runs itself again for the exec check.
#[ktest(timeout = 120)]
fn sysv_shared_memory_behaves_as_on_linux() {
    check_passes("sysv_shm_test", &["/bin/sysv_shm_test"]);
}

#[ktest(timeout = 120)]
fn fork_cow_and_wait_behave_as_on_linux() {
    check_passes("fork_test", &["fork_test"]);
}

#[ktest(timeout = 120)]
fn signals_and_efault_behave_as_on_linux() {
    // The full path: the program maps its own file.
    check_passes("signal_test", &["/bin/signal_test"]);
}

/// Interval and POSIX timers, the time of day, CPU usage, process groups
/// and sessions, signal waits, sysinfo, affinity and uname (issue 22).
#[ktest(cpus = 2, timeout = 120)]
fn timers_groups_and_usage_behave_as_on_linux() {
    // The full path: the program re-executes itself.
    check_passes("proc_abi_test", &["/bin/proc_abi_test"]);
}

#[ktest(timeout = 120)]
fn pipes_and_descriptors_behave_as_on_linux() {
    check_passes("pipe_test", &["pipe_test"]);
}

#[ktest(timeout = 120)]
fn the_stack_grows_on_demand() {
    check_passes("stack_test", &["stack_test"]);
}

/// /proc as programs read it: listings, /proc/self, modes, the formats
/// of status, stat, statm, smaps and smaps_rollup, cmdline, and the
/// smaps figures and pagemap bits of a region before and after a fork.
#[ktest(timeout = 120)]
fn procfs_lists_formats_and_figures_match_linux() {
    check_passes("proc_test", &["proc_test", "one", "two words"]);
}

/// Limits, ids, /proc/sys and the syscall number, checking Linux's boot
/// limits and default sysctls exactly.
#[ktest(timeout = 120)]
fn rlimits_credentials_and_sysctls_behave_as_on_linux() {
    check_passes("rlimit_test", &["rlimit_test", "init-rlimits", "default-sysctls"]);
}

/// Overcommit accounting as on Linux: Committed_AS follows private
/// writable mappings; modes 0, 1 and 2 of vm.overcommit_memory refuse
/// what Linux refuses (mode 2 past CommitLimit, MAP_NORESERVE or not);
/// vm.max_map_count set low bounds mmap and splits; bad values are EINVAL.
/// Every sysctl it sets is restored.
#[ktest(timeout = 120)]
fn overcommit_accounting_and_max_map_count_behave_as_on_linux() {
    check_passes("overcommit_test", &["overcommit_test"]);
}

/// The limits the mm enforces (RLIMIT_AS, DATA, MEMLOCK, STACK and the
/// exec-time mmap layout).
#[ktest(timeout = 120)]
fn the_mm_enforces_resource_limits_as_linux_does() {
    check_passes("rlimit_mm_test", &["rlimit_mm_test"]);
}

/// Mapped pages, kernel stacks and user page tables of live processes:
/// `nr_anon_pages`, `nr_mapped`, `nr_kernel_stack` and the page-table
/// pages beyond the kernel's own.
fn process_state() -> Vec<u64> {
    use mm::vmstat::NodeStatItem;
    let pgdat = kernel::mm::pgdat();
    let kernel_tables = kernel_pgtable().expect("kernel page tables").nr_tables();
    [NodeStatItem::NrAnonMapped, NodeStatItem::NrFileMapped, NodeStatItem::NrKernelStackKb]
        .map(|item| pgdat.node_page_state(item))
        .into_iter()
        .chain([pgdat.node_page_state(NodeStatItem::NrPagetable) - kernel_tables])
        .collect()
}

#[ktest(timeout = 120)]
fn a_process_counts_its_faults_and_gives_its_counted_pages_back() {
    use mm::vmstat::VmEventItem;
    let pgdat = kernel::mm::pgdat();
    let state = process_state;
    let before = state();
    let (faults, majors) = (pgdat.all_vm_events(VmEventItem::Pgfault), pgdat.all_vm_events(VmEventItem::Pgmajfault));
    // Four children, each touching 4 MiB (1024 pages) of fresh memory.
    check_passes("leak_test", &["leak_test", "4", "4"]);
    let new_faults = pgdat.all_vm_events(VmEventItem::Pgfault) - faults;
    assert!(new_faults >= 4 * 1024, "{new_faults} faults for 4096 pages touched");
    // The program's pages are the rootfs's (a tmpfs): in memory, so its
    // faults are minor; a major fault is a read from a disk
    // (pagecache::a_file_fault_is_major_only_when_it_reads_the_disk).
    assert_eq!(pgdat.all_vm_events(VmEventItem::Pgmajfault), majors, "a fault on a rootfs page read something");
    assert_eq!(state(), before, "nr_anon_pages, nr_mapped, nr_kernel_stack, user nr_page_table_pages");
}

/// The slab caches whose live objects belong to processes alone, which a
/// leak check compares exactly (object counts include objects cached on
/// per-CPU slabs, so other caches' counts move with unrelated work).
pub(crate) const PROCESS_CACHES: [&str; 3] = ["vm_area_struct", "kmalloc-1k", "kmalloc-2k"];

/// Pages a leak check counts as accounted for: free pages, pages in slab
/// caches and the kernel's page-table pages (vmalloc'd kernel stacks move
/// through the vmalloc window until a lazy purge, and, as in Linux, the
/// kernel page tables they populate stay), with per-CPU lists drained,
/// empty slabs returned and lazy vmalloc areas purged; and the live
/// objects of [`PROCESS_CACHES`]. The counts go in an array, not on the
/// heap: a check keeps the first state while it takes the second, and a
/// heap copy of it would be counted then (a list of every cache's name
/// reaches kmalloc-1k once there are more than 16 caches).
pub(crate) fn memory_state() -> (u64, [u64; PROCESS_CACHES.len()]) {
    kernel::mm::drop_caches();
    let slab = kernel::slab::slab().expect("slab");
    let mut slab_pages = 0;
    let mut objects = [0; PROCESS_CACHES.len()];
    slab.for_each_cache(|c| {
        let info = slab.slabinfo_of(c);
        slab_pages += info.num_slabs * u64::from(info.pagesperslab);
        if let Some(i) = PROCESS_CACHES.iter().position(|&name| name == c.name()) {
            objects[i] = info.active_objs;
        }
    });
    let kernel_tables = kernel_pgtable().expect("kernel page tables").nr_tables();
    (kernel::mm::nr_free_pages() + slab_pages + kernel_tables, objects)
}

/// Asserts the live objects of each of [`PROCESS_CACHES`] are as before.
fn assert_same_objects(before: &[u64; PROCESS_CACHES.len()], after: &[u64; PROCESS_CACHES.len()]) {
    for (name, (b, a)) in PROCESS_CACHES.iter().zip(before.iter().zip(after)) {
        assert_eq!(a, b, "live objects in {name} changed");
    }
}

#[ktest(timeout = 300, mem = 256)]
fn fork_touch_exit_cycles_leak_no_page() {
    // Warm-up: slab caches, per-CPU slabs.
    check_passes("leak_test", &["leak_test", "2", "16"]);
    let (pages, objects) = memory_state();
    check_passes("leak_test", &["leak_test", "1000", "16"]);
    let (pages_after, objects_after) = memory_state();
    assert_eq!(pages_after, pages, "1000 cycles of fork + touch 16 MiB + exit leaked pages");
    assert_same_objects(&objects, &objects_after);
}

/// Number of live tasks (kernel threads included).
pub(crate) fn nr_tasks() -> usize {
    let mut n = 0;
    kernel::sched::for_each_task(|_| n += 1);
    n
}

/// [`memory_state`] once every process the fuzzer started is gone: no
/// more than `tasks` tasks are alive (an orphan is not waited for; it reaps
/// itself when it gets to run and exit, holding its pages until then), and
/// /bin/hello has run. The task list keeps a weak reference to each exited
/// task until the next task is created, which keeps the task's memory
/// allocated; hello's creation drops those, and leaves only its own, so
/// both sides of a comparison hold the same.
pub(crate) fn settled_memory_state(tasks: usize) -> (u64, [u64; PROCESS_CACHES.len()]) {
    // No deadline of its own: an orphan that never exits is a hang, which
    // the test's timeout reports.
    while nr_tasks() > tasks {
        kernel::sched::yield_now();
    }
    let (status, out) = run("/bin/hello", &["hello"]);
    assert_eq!(status, 0, "hello after the fuzz run; output:\n{out}");
    memory_state()
}

/// Seeds of the fuzz runs (`syscall_fuzz` prints its seed; rerun a failure
/// with `run syscall_fuzz SEED 100 300` at the console, adding a batch
/// number to trace that batch call by call). 0x327ae hung the kernel once
/// (an allocation freed in the timer interrupt deadlocked on the early
/// heap's lock).
const FUZZ_SEEDS: [&str; 3] = ["0x5eed0f16c0ffee01", "0x16", "0x327ae"];
/// Per seed: 100 batches of 300 calls, about 20 000 calls made (a worker
/// that kills itself ends its batch early); about 1 s under TCG.
const FUZZ_BATCHES: &str = "100";
const FUZZ_CALLS: &str = "300";

#[ktest(timeout = 300, mem = 256)]
fn syscall_fuzzer_leaves_the_kernel_alive_and_leaks_nothing() {
    let process_pages = process_state;
    let tasks = nr_tasks();
    // Warm-up with another seed, as fork_touch_exit_cycles_leak_no_page
    // does: the first slabs of each cache and the per-CPU slabs stay.
    // Then the first seed once: tables that keep their high-water size
    // (the page-cache registry grows with the most mappings alive at
    // once) reach it before the count is taken.
    check_passes("syscall_fuzz", &["syscall_fuzz", "1", "4", FUZZ_CALLS]);
    check_passes("syscall_fuzz", &["syscall_fuzz", FUZZ_SEEDS[0], FUZZ_BATCHES, FUZZ_CALLS]);
    let (pages, objects) = settled_memory_state(tasks);
    let before = process_pages();
    for seed in FUZZ_SEEDS {
        log::info!("syscall_fuzz: seed {seed}, {FUZZ_BATCHES} batches of {FUZZ_CALLS} calls");
        check_passes("syscall_fuzz", &["syscall_fuzz", seed, FUZZ_BATCHES, FUZZ_CALLS]);
    }
    let (pages_after, objects_after) = settled_memory_state(tasks);
    assert_eq!(process_pages(), before, "nr_anon_pages, nr_mapped, nr_kernel_stack, user nr_page_table_pages");
    assert_eq!(pages_after, pages, "free + slab + kernel page-table pages after the fuzz runs");
    assert_same_objects(&objects, &objects_after);
}
