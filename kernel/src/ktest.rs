//! The in-kernel test runtime.
//!
//! Tests are plain functions marked `#[ktest]` (the `ktest-macros` crate) in
//! the `ktests` test kernel. The attribute places a [`KTest`] descriptor in
//! the `.ktest_array` section; the linker script gathers them between
//! `__ktest_array_start` and `__ktest_array_end`, so registering a test
//! needs no central list.
//!
//! A test fails by panicking (`assert!` and friends). Without unwinding the
//! kernel cannot continue after a panic, so the protocol with xtask is built
//! for restarts. One line per event on the serial console:
//!
//! ```text
//! ktest: ready <count>                       plan read, about to run
//! ktest: start <name>
//! ktest: ok <name> <ns>                      returned (or panicked as expected)
//! ktest: FAILED <name> <ns> <reason>
//! ktest: done                                whole plan ran; QEMU exits 33
//! ```
//!
//! A test during which a context bug was reported
//! ([`crate::sched::context_bugs`]: sleeping in atomic context, a
//! `SpinLock` in an interrupt handler) fails too, after it returns; the
//! `BUG:` lines above name the place.
//!
//! After a panic QEMU exits and xtask boots again with the rest of the plan;
//! after a hang xtask kills QEMU at the test's timeout and does the same.
//! xtask supplies the plan (test names, one per line) in the fw_cfg file
//! [`FW_CFG_PLAN`]. With `ktest.list` on the command line the kernel instead
//! prints one `ktest-list:` line per test with its requirements and exits.

use core::cell::UnsafeCell;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};

use spin::Once;

use crate::arch::x86_64::tsc;
use crate::drivers::fw_cfg;
use crate::drivers::qemu_exit::{QemuExitCode, exit_qemu};
use crate::section::{self, QualifiedName};
use crate::{cmdline, kbench, kprintln};

/// The fw_cfg file holding the test plan.
pub const FW_CFG_PLAN: &str = "opt/kernel/ktest-plan";

/// Largest plan accepted (about a thousand test names).
const PLAN_SIZE: usize = 64 * 1024;

/// A registered test and what it needs from the machine. Built by
/// `#[ktest]`; the fields mirror the attribute's arguments.
#[derive(Debug)]
pub struct KTest {
    /// The function name.
    pub name: &'static str,
    /// `module_path!()` where the test is defined.
    pub module: &'static str,
    /// The test body.
    pub func: fn(),
    /// The test passes only if it panics with a message containing this.
    pub should_panic: Option<&'static str>,
    /// Seconds before xtask declares a hang (0: the harness default).
    pub timeout_secs: u32,
    /// Guest memory in MiB (0: the harness default).
    pub mem_mib: u32,
    /// Number of CPUs (0: the harness default).
    pub cpus: u32,
    /// Size of a virtio-blk scratch disk to attach, MiB (0: none).
    pub disk_mib: u32,
    /// How many such disks (0 or 1: one; the ones after the first are
    /// blank).
    pub disk_count: u32,
    /// The scratch disk holds an ext2 file system of this prepared tree
    /// (tests/disks/NAME) instead of zeros.
    pub disk_tree: Option<&'static str>,
    /// The scratch disk fails I/O covering this sector with EIO.
    pub disk_eio_sector: Option<u32>,
    /// Only reads (`"read"`) or writes (`"write"`) fail there (`None`:
    /// both).
    pub disk_eio_op: Option<&'static str>,
    /// The 4 KiB pages from that sector on that fail (0: one).
    pub disk_eio_pages: u32,
    /// The scratch disk fails I/O covering this file's first data block
    /// (a path in the tree's file system) with EIO.
    pub disk_eio_file: Option<&'static str>,
    /// Run in a boot of its own.
    pub fresh_boot: bool,
    /// Only run when asked for by name or suite (harness self-tests).
    pub opt_in: bool,
}

impl KTest {
    fn qualified(&self) -> QualifiedName {
        QualifiedName { module: self.module, name: self.name }
    }

    /// Whether `full` is this test's full name, `suite::name`.
    pub fn is_named(&self, full: &str) -> bool {
        self.qualified().is(full)
    }
}

impl fmt::Display for KTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.qualified().fmt(f)
    }
}

unsafe extern "C" {
    // Declared as bytes: only their addresses are used.
    static __ktest_array_start: u8;
    static __ktest_array_end: u8;
}

/// Every test linked into this kernel.
pub fn tests() -> &'static [KTest] {
    // SAFETY: `.ktest_array` holds only the `KTest` statics that `#[ktest]`
    // emits, and the linker script places it, 8-aligned, between these
    // symbols.
    unsafe { section::linker_array(&raw const __ktest_array_start, &raw const __ktest_array_end) }
}

static CURRENT: AtomicPtr<KTest> = AtomicPtr::new(core::ptr::null_mut());
static CURRENT_START_NS: AtomicU64 = AtomicU64::new(0);
static STARTED_THIS_BOOT: AtomicU32 = AtomicU32::new(0);

/// The test running now, if any.
pub fn current() -> Option<&'static KTest> {
    let p = CURRENT.load(Ordering::Acquire);
    // SAFETY: CURRENT only ever holds null or a pointer into `tests()`, which
    // is 'static.
    unsafe { p.as_ref() }
}

/// How many tests this boot has started, including the running one.
pub fn tests_started_this_boot() -> u32 {
    STARTED_THIS_BOOT.load(Ordering::Relaxed)
}

static PLAN: Once<&'static str> = Once::new();

/// Backing store of the plan, written once by [`plan`].
struct PlanBuf(UnsafeCell<[u8; PLAN_SIZE]>);

// SAFETY: the buffer is only accessed inside `PLAN.call_once`, which runs at
// most once; afterwards only shared references exist.
unsafe impl Sync for PlanBuf {}

static PLAN_BUF: PlanBuf = PlanBuf(UnsafeCell::new([0; PLAN_SIZE]));

fn plan() -> &'static str {
    PLAN.call_once(|| {
        // SAFETY: `call_once` runs this closure at most once, so this is the
        // only reference ever made to PLAN_BUF.
        let buf: &'static mut [u8; PLAN_SIZE] = unsafe { &mut *PLAN_BUF.0.get() };
        let Some(file) = fw_cfg::find_file(FW_CFG_PLAN) else { return "" };
        if file.size as usize > PLAN_SIZE {
            kprintln!("ktest: plan of {} bytes exceeds {PLAN_SIZE}; running its start", file.size);
        }
        let len = fw_cfg::read_file(&file, buf);
        let buf: &'static [u8] = buf;
        match core::str::from_utf8(&buf[..len]) {
            Ok(s) => s,
            Err(e) => core::str::from_utf8(&buf[..e.valid_up_to()]).unwrap_or(""),
        }
    })
}

static TEST_KERNEL: AtomicBool = AtomicBool::new(false);

/// The test kernel's main: boot, then list or run tests (or run benchmarks:
/// `kbench.run[=FILTER]`, `kbench.smoke`) as the command line and plan say,
/// then exit QEMU. A panic anywhere in a test kernel, boot
/// included, exits QEMU instead of halting, so xtask never waits for a
/// timeout to learn of it.
pub fn main(boot_info: &'static mut bootloader_api::BootInfo) -> ! {
    TEST_KERNEL.store(true, Ordering::SeqCst);
    crate::init(boot_info);
    let bench_mode = if cmdline::has("kbench.smoke") {
        Some(kbench::Mode::Smoke)
    } else if cmdline::has("kbench.run") {
        Some(kbench::Mode::Full)
    } else {
        None
    };
    if let Some(mode) = bench_mode {
        kbench::run(cmdline::get("kbench.run").unwrap_or(""), mode);
        exit_qemu(QemuExitCode::Success);
    }
    if cmdline::has("ktest.list") {
        for t in tests() {
            kprintln!(
                "ktest-list: {t} timeout={} mem={} cpus={} disk={} fresh={} should_panic={} opt_in={}{}{}{}{}{}{}",
                t.timeout_secs,
                t.mem_mib,
                t.cpus,
                t.disk_mib,
                u8::from(t.fresh_boot),
                u8::from(t.should_panic.is_some()),
                u8::from(t.opt_in),
                ListArg("disks", (t.disk_count > 1).then_some(t.disk_count)),
                ListArg("disk_tree", t.disk_tree),
                ListArg("disk_eio", t.disk_eio_sector),
                ListArg("disk_eio_op", t.disk_eio_op),
                ListArg("disk_eio_pages", (t.disk_eio_pages > 1).then_some(t.disk_eio_pages)),
                ListArg("disk_eio_file", t.disk_eio_file),
            );
        }
        kprintln!("ktest: done");
        exit_qemu(QemuExitCode::Success);
    }
    let plan = plan();
    kprintln!("ktest: ready {}", plan.lines().filter(|l| !l.trim().is_empty()).count());
    for name in plan.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some(test) = tests().iter().find(|t| t.is_named(name)) else {
            kprintln!("ktest: FAILED {name} 0 no test of that name in this kernel");
            continue;
        };
        run_one(test);
    }
    kprintln!("ktest: done");
    exit_qemu(QemuExitCode::Success)
}

fn run_one(test: &'static KTest) {
    STARTED_THIS_BOOT.fetch_add(1, Ordering::Relaxed);
    kprintln!("ktest: start {test}");
    CURRENT_START_NS.store(tsc::now_ns(), Ordering::Relaxed);
    CURRENT.store(core::ptr::from_ref(test).cast_mut(), Ordering::Release);
    let bugs_before = crate::sched::context_bugs();
    (test.func)();
    CURRENT.store(core::ptr::null_mut(), Ordering::Release);
    let ns = elapsed_ns();
    let bugs = crate::sched::context_bugs().wrapping_sub(bugs_before);
    match test.should_panic {
        Some(expected) => {
            kprintln!("ktest: FAILED {test} {ns} returned, but should have panicked with \"{expected}\"")
        }
        None if bugs != 0 => {
            kprintln!("ktest: FAILED {test} {ns} {bugs} context bug(s) reported (see the BUG: lines)")
        }
        None => kprintln!("ktest: ok {test} {ns}"),
    }
}

fn elapsed_ns() -> u64 {
    tsc::now_ns().saturating_sub(CURRENT_START_NS.load(Ordering::Relaxed))
}

/// A place for a debugger to stop at a moment a test chose (the GDB test
/// of `cargo xtask test` breaks here to compare its reports with the
/// kernel's own, printed just before with interrupts off).
#[unsafe(no_mangle)]
#[inline(never)]
pub fn ktest_gdb_checkpoint() {
    core::hint::black_box(());
}

/// Called by the panic handler: reports the running test and exits QEMU.
/// Returns (and the CPU halts) when no test runtime is active.
pub(crate) fn on_panic(message: &str) {
    let Some(test) = current() else {
        if !TEST_KERNEL.load(Ordering::SeqCst) {
            return;
        }
        kprintln!("ktest: panic outside any test: {message}");
        exit_qemu(QemuExitCode::Failed);
    };
    let ns = elapsed_ns();
    let first_line = message.lines().next().unwrap_or("");
    match test.should_panic {
        Some(expected) if message.contains(expected) => {
            kprintln!("ktest: ok {test} {ns} (panicked as expected)");
            exit_qemu(QemuExitCode::Success);
        }
        Some(expected) => {
            kprintln!("ktest: FAILED {test} {ns} panicked with \"{first_line}\", expected \"{expected}\"");
        }
        None => kprintln!("ktest: FAILED {test} {ns} panicked: {first_line}"),
    }
    exit_qemu(QemuExitCode::Failed)
}

/// ` KEY=VALUE` in a `ktest-list:` line for an optional argument, or
/// nothing when it is absent.
struct ListArg<T>(&'static str, Option<T>);

impl<T: fmt::Display> fmt::Display for ListArg<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.1 {
            Some(value) => write!(f, " {}={value}", self.0),
            None => Ok(()),
        }
    }
}
