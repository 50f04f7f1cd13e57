//! The in-kernel test runner: asks the test kernel for its tests, plans
//! boots, reads the `ktest:` protocol from the serial console (see
//! kernel/src/ktest.rs), and restarts the machine after a panic or a hang so
//! one broken test never hides the others.
//!
//! Tests are grouped by the machine they need (memory, CPUs, scratch disk
//! and what it holds);
//! `fresh_boot` tests get a boot each. Within a group, a boot runs the plan
//! until it finishes or dies; the next boot resumes after the test that
//! died. Every boot's full console goes to `target/xtask/logs/`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::ops::AddAssign;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::build::ImagesExt;
use crate::error::{Error, show};
use crate::jobs::{Job, Suite, outln};
use crate::mkdisk;
use crate::qemu::{self, Accel, Event, Firmware, Headless, Machine};
use crate::scratch::{Contents, EioAt, EioOps, SCRATCH_IMAGE, ScratchDisk};
use crate::symbolize::Symbolizer;

/// Memory for a test that does not ask (MiB).
pub const DEFAULT_TEST_MEM_MIB: u32 = 512;
/// Hang timeout for a test that does not set one.
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Time allowed from QEMU start to `ktest: ready`, and between tests: a
/// bound on a hang only, so generous (a boot took 65 s under TCG with the
/// 2-core machine shared by several builds).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(180);
/// Command line of every test boot.
const TEST_CMDLINE: &str = "loglevel=info";

/// How the machine for tests is set up.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Accelerator.
    pub accel: Accel,
    /// Firmware.
    pub firmware: Firmware,
    /// Print every console line.
    pub verbose: bool,
    /// Directory for boot logs.
    pub logs: PathBuf,
}

/// Pass/fail/skip counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Tests that passed.
    pub passed: u32,
    /// Tests that failed.
    pub failed: u32,
    /// Tests that were skipped (ignored).
    pub skipped: u32,
}

impl AddAssign for Totals {
    fn add_assign(&mut self, o: Totals) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

impl Totals {
    /// The closing line: `N passed, N failed, N skipped`.
    pub fn summary_line(&self) -> String {
        format!("{} passed, {} failed, {} skipped", self.passed, self.failed, self.skipped)
    }
}

/// A test as the test kernel lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestDesc {
    /// `suite::function`.
    pub name: String,
    /// Hang timeout in seconds (0: default).
    pub timeout_secs: u32,
    /// Memory in MiB (0: default).
    pub mem_mib: u32,
    /// CPUs (0: 1).
    pub cpus: u32,
    /// Scratch disk in MiB (0: none).
    pub disk_mib: u32,
    /// Scratch disks of that size (0 or 1: one).
    pub disk_count: u32,
    /// The scratch disk holds this prepared tree (tests/disks/NAME).
    pub disk_tree: Option<String>,
    /// The scratch disk fails I/O covering this sector (blkdebug).
    pub disk_eio_sector: Option<u32>,
    /// Only reads or only writes fail there.
    pub disk_eio_op: Option<EioOps>,
    /// The 4 KiB pages from that sector on that fail (0: one).
    pub disk_eio_pages: u32,
    /// The scratch disk fails I/O covering this file's first data block.
    pub disk_eio_file: Option<String>,
    /// Needs a boot of its own.
    pub fresh_boot: bool,
    /// Expects a panic.
    pub should_panic: bool,
    /// Runs only when selected by suite or full name.
    pub opt_in: bool,
}

impl TestDesc {
    fn timeout(&self) -> Duration {
        if self.timeout_secs == 0 { DEFAULT_TEST_TIMEOUT } else { Duration::from_secs(self.timeout_secs.into()) }
    }

    /// The machine this test needs.
    fn machine_key(&self) -> MachineKey {
        let eio = match (&self.disk_eio_file, self.disk_eio_sector) {
            (Some(file), _) => Some(EioAt::FileData(file.clone())),
            (None, Some(sector)) if self.disk_eio_op.is_some() || self.disk_eio_pages > 1 => Some(EioAt::Pages {
                sector: sector.into(),
                pages: self.disk_eio_pages.max(1),
                ops: self.disk_eio_op.unwrap_or(EioOps::Both),
            }),
            (None, sector) => sector.map(|s| EioAt::Sector(s.into())),
        };
        let contents = self.disk_tree.as_deref().map_or(Contents::Blank, |name| Contents::Tree(mkdisk::tree_dir(name)));
        MachineKey {
            mem_mib: if self.mem_mib == 0 { DEFAULT_TEST_MEM_MIB } else { self.mem_mib },
            cpus: self.cpus.max(1),
            disk: (self.disk_mib > 0).then_some(ScratchDisk {
                mib: self.disk_mib,
                contents,
                eio,
                extra: self.disk_count.saturating_sub(1),
            }),
        }
    }
}

/// The machine a group of tests shares: memory, CPUs, scratch disk (its
/// size, contents and failing sector: tests on different disks never
/// share a boot).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct MachineKey {
    mem_mib: u32,
    cpus: u32,
    disk: Option<ScratchDisk>,
}

impl MachineKey {
    /// A short name for the group's suite and its log directory:
    /// `512M-1cpu`, `512M-1cpu-disk8M`, `512M-1cpu-disk8M-basic`.
    fn name(&self) -> String {
        let disk = self.disk.as_ref().map(|d| format!("-{}", d.name())).unwrap_or_default();
        format!("{}M-{}cpu{disk}", self.mem_mib, self.cpus)
    }
}

/// Tests that share a machine, in listing order: one boot runs them all
/// (more if one of them panics or hangs).
struct Group<'t> {
    /// The suite name (`512M-1cpu`, or a `fresh_boot` test's own name).
    name: String,
    key: MachineKey,
    tests: Vec<&'t TestDesc>,
}

/// Groups `tests` by machine. A `fresh_boot` test gets a group of its
/// own, and so does a `should_panic` test: its panic ends the boot anyway,
/// so alone it costs no extra boot and runs beside the others.
fn groups<'t>(tests: &[&'t TestDesc]) -> Vec<Group<'t>> {
    let mut groups: BTreeMap<(MachineKey, Option<&str>), Vec<&TestDesc>> = BTreeMap::new();
    for t in tests {
        let own = (t.fresh_boot || t.should_panic).then_some(t.name.as_str());
        groups.entry((t.machine_key(), own)).or_default().push(t);
    }
    groups
        .into_iter()
        .map(|((key, own), tests)| Group { name: own.map_or_else(|| key.name(), str::to_owned), key, tests })
        .collect()
}

/// Parses a `ktest-list:` line.
fn parse_list_line(line: &str) -> Option<TestDesc> {
    let rest = line.strip_prefix("ktest-list: ")?;
    let mut words = rest.split_whitespace();
    let name = words.next()?.to_owned();
    let mut t = TestDesc {
        name,
        timeout_secs: 0,
        mem_mib: 0,
        cpus: 0,
        disk_mib: 0,
        disk_count: 0,
        disk_tree: None,
        disk_eio_sector: None,
        disk_eio_op: None,
        disk_eio_pages: 0,
        disk_eio_file: None,
        fresh_boot: false,
        should_panic: false,
        opt_in: false,
    };
    for word in words {
        let (key, value) = word.split_once('=')?;
        match key {
            "disk_tree" => t.disk_tree = Some(value.to_owned()),
            "disk_eio_file" => t.disk_eio_file = Some(value.to_owned()),
            "disk_eio_op" => {
                t.disk_eio_op = Some(match value {
                    "read" => EioOps::Read,
                    "write" => EioOps::Write,
                    _ => return None,
                })
            }
            _ => {
                let n: u32 = value.parse().ok()?;
                match key {
                    "timeout" => t.timeout_secs = n,
                    "mem" => t.mem_mib = n,
                    "cpus" => t.cpus = n,
                    "disk" => t.disk_mib = n,
                    "disks" => t.disk_count = n,
                    "disk_eio" => t.disk_eio_sector = Some(n),
                    "disk_eio_pages" => t.disk_eio_pages = n,
                    "fresh" => t.fresh_boot = n != 0,
                    "should_panic" => t.should_panic = n != 0,
                    "opt_in" => t.opt_in = n != 0,
                    _ => {}
                }
            }
        }
    }
    Some(t)
}

/// Which tests to run.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Substring of the full name.
    pub filter: Option<String>,
    /// A suite (first path component); selects opt-in suites too.
    pub suite: Option<String>,
}

impl Selection {
    fn selects(&self, t: &TestDesc) -> bool {
        match &self.suite {
            Some(suite) => {
                if !t.name.starts_with(&format!("{suite}::")) {
                    return false;
                }
            }
            None => {
                if t.opt_in && self.filter.as_deref() != Some(t.name.as_str()) {
                    return false;
                }
            }
        }
        self.filter.as_deref().is_none_or(|f| t.name.contains(f))
    }
}

/// How a test ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Passed.
    Passed,
    /// Failed, with the reason.
    Failed(String),
}

/// One test's result.
#[derive(Clone, Debug)]
pub struct TestResult {
    /// Full name.
    pub name: String,
    /// Pass or fail.
    pub outcome: Outcome,
    /// Console lines printed while the test ran.
    pub log: Vec<String>,
    /// The boot log file.
    pub log_file: PathBuf,
}

/// A protocol event parsed from a console line.
#[derive(Debug, PartialEq, Eq)]
enum Protocol<'a> {
    Ready,
    Start(&'a str),
    Ok(&'a str, Option<u64>),
    Failed(&'a str, Option<u64>, &'a str),
    Done,
}

fn parse_protocol(line: &str) -> Option<Protocol<'_>> {
    let rest = line.strip_prefix("ktest: ")?;
    let (word, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let mut fields = rest.splitn(3, ' ');
    match word {
        "ready" => Some(Protocol::Ready),
        "done" => Some(Protocol::Done),
        "start" => Some(Protocol::Start(fields.next()?)),
        "ok" => Some(Protocol::Ok(fields.next()?, fields.next().and_then(|n| n.parse().ok()))),
        "FAILED" => {
            let name = fields.next()?;
            let ns = fields.next().and_then(|n| n.parse().ok());
            Some(Protocol::Failed(name, ns, fields.next().unwrap_or("")))
        }
        _ => None,
    }
}

/// Formats a duration in ns for a result line.
pub fn format_ns(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{:.3} ms", ns as f64 / 1e6)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

/// The test kernel, its images and its list of tests.
pub struct TestKernel<'a> {
    images: &'a boot::Images,
    options: &'a RunOptions,
    /// Behind a lock: the DWARF reader caches as it goes and is not `Sync`,
    /// and groups of tests run on several threads.
    symbolizer: Mutex<Symbolizer>,
    tests: Vec<TestDesc>,
}

impl<'a> TestKernel<'a> {
    /// Boots the test kernel once to list its tests.
    pub fn new(elf: &Path, images: &'a boot::Images, options: &'a RunOptions) -> Result<TestKernel<'a>, Error> {
        let mut tk = TestKernel { images, options, symbolizer: Mutex::new(Symbolizer::open(elf)), tests: Vec::new() };
        tk.tests = tk.list()?;
        Ok(tk)
    }

    fn machine(&self, key: &MachineKey, cmdline: &str, plan: Option<&Path>) -> Machine {
        Machine {
            accel: self.options.accel,
            firmware: self.options.firmware,
            mem_mib: key.mem_mib,
            cpus: key.cpus,
            scratch: key.disk.clone(),
            ext2_disk_mib: 0,
            swap_disk_mib: 0,
            disks: Vec::new(),
            gdb: None,
            cmdline: cmdline.to_owned(),
            fw_cfg_files: plan.map(|p| vec![("opt/kernel/ktest-plan".to_owned(), p.to_path_buf())]).unwrap_or_default(),
            extra_args: Vec::new(),
            interactive: false,
        }
    }

    fn list(&self) -> Result<Vec<TestDesc>, Error> {
        let workdir = self.options.logs.join("list");
        let key = MachineKey { mem_mib: DEFAULT_TEST_MEM_MIB, cpus: 1, disk: None };
        let machine = self.machine(&key, "loglevel=warn ktest.list", None);
        let mut qemu = Headless::start(&machine, self.images.for_firmware(self.options.firmware), &workdir)?;
        let console = qemu.lines_until(BOOT_TIMEOUT, |l| l == "ktest: done").map_err(|e| {
            Error::Harness(format!("listing tests failed: {}; console:\n{}", e.why, self.annotated(&e.console)))
        })?;
        Ok(console.iter().filter_map(|l| parse_list_line(l)).collect())
    }

    /// The symbol annotation for a console line, if it carries an address.
    pub fn annotate(&self, line: &str) -> Option<String> {
        self.symbolizer.lock().unwrap_or_else(|e| e.into_inner()).annotate(line)
    }

    fn annotated(&self, lines: &[String]) -> String {
        let mut out = Vec::new();
        for l in lines {
            out.push(l.clone());
            if let Some(a) = self.annotate(l) {
                out.push(a);
            }
        }
        out.join("\n")
    }

    /// The tests a selection picks, in listing order.
    pub fn select(&self, selection: &Selection) -> Vec<&TestDesc> {
        self.tests.iter().filter(|t| selection.selects(t)).collect()
    }

    /// The line that heads the in-kernel tests: how many of how many, and
    /// on what.
    pub fn summary(&self, selection: &Selection) -> String {
        let groups = groups(&self.select(selection)).len();
        format!(
            "in-kernel tests: {} of {} ({}, {}), in {groups} machine group(s), a suite each",
            self.select(selection).len(),
            self.tests.len(),
            self.options.accel,
            self.options.firmware
        )
    }

    /// A job per machine group of the selected tests, each printing a line
    /// per test and its failures' consoles at the end of its block.
    pub fn jobs<'k>(&'k self, selection: &Selection) -> Vec<Job<'k>> {
        groups(&self.select(selection))
            .into_iter()
            .map(|group| {
                Job::new(format!("ktests {}", group.name), move |suite: &mut Suite| {
                    let logs = self.options.logs.join("ktests").join(group.name.replace("::", "-"));
                    let results = self.run_group(group.key, &group.tests, &logs, Some(suite))?;
                    self.report_failures(&results, suite);
                    Ok(())
                })
            })
            .collect()
    }

    fn report_failures(&self, results: &[TestResult], suite: &mut Suite) {
        let failed: Vec<_> = results.iter().filter(|r| r.outcome != Outcome::Passed).collect();
        if failed.is_empty() {
            return;
        }
        outln!(suite, "\nfailures:");
        for r in failed {
            outln!(suite, "\n---- {} ----", r.name);
            if let Outcome::Failed(reason) = &r.outcome {
                outln!(suite, "reason: {reason}");
            }
            outln!(suite, "{}", self.annotated(&r.log));
            outln!(suite, "(full console: {})", show(&r.log_file));
        }
    }

    /// Runs `tests`, grouped by machine, one group after another, without
    /// printing result lines. Boot logs go to `<logs>/<label>/`.
    pub fn run(&self, tests: &[&TestDesc], label: &str) -> Result<Vec<TestResult>, Error> {
        let mut results = Vec::new();
        for group in groups(tests) {
            let logs = self.options.logs.join(label).join(group.name.replace("::", "-"));
            results.extend(self.run_group(group.key, &group.tests, &logs, None)?);
        }
        Ok(results)
    }

    /// Runs a group's tests, booting again after a test that ends its boot;
    /// prints a line per test into `report` if given.
    fn run_group(
        &self,
        key: MachineKey,
        group: &[&TestDesc],
        logs: &Path,
        mut report: Option<&mut Suite>,
    ) -> Result<Vec<TestResult>, Error> {
        let mut pending: Vec<&TestDesc> = group.to_vec();
        let mut results = Vec::new();
        let mut boot_no = 0;
        while !pending.is_empty() {
            boot_no += 1;
            let workdir = logs.join(format!("boot{boot_no}"));
            std::fs::create_dir_all(&workdir).map_err(|e| Error::io(format!("creating {}", show(&workdir)), e))?;
            let plan_path = workdir.join("plan");
            let plan: String = pending.iter().map(|t| format!("{}\n", t.name)).collect();
            std::fs::write(&plan_path, plan).map_err(|e| Error::io("writing the test plan", e))?;
            let log_path = workdir.join("console.log");
            let mut log = File::create(&log_path).map_err(|e| Error::io(format!("creating {}", show(&log_path)), e))?;
            let machine = self.machine(&key, TEST_CMDLINE, Some(&plan_path));
            let mut qemu = Headless::start(&machine, self.images.for_firmware(self.options.firmware), &workdir)?;

            let before = pending.len();
            let mut ready = false;
            let mut current: Option<(&TestDesc, Vec<String>)> = None;
            let mut deadline = Instant::now() + BOOT_TIMEOUT;
            let mut record = |name: &str,
                              outcome: Outcome,
                              ns: Option<u64>,
                              lines: Vec<String>,
                              pending: &mut Vec<&TestDesc>,
                              report: Option<&mut Suite>| {
                pending.retain(|t| t.name != name);
                if let Some(suite) = report {
                    report_result(suite, name, &outcome, ns);
                }
                results.push(TestResult { name: name.to_owned(), outcome, log: lines, log_file: log_path.clone() });
            };
            let end_reason = loop {
                match qemu.next(deadline) {
                    Some(Event::Line(line)) => {
                        let _ = writeln!(log, "{line}");
                        if self.options.verbose {
                            let annotation = self.annotate(&line);
                            if let Some(suite) = report.as_deref_mut() {
                                outln!(suite, "    | {line}");
                                if let Some(a) = annotation {
                                    outln!(suite, "    | {a}");
                                }
                            }
                        }
                        match parse_protocol(&line) {
                            Some(Protocol::Ready) => {
                                ready = true;
                                deadline = Instant::now() + BOOT_TIMEOUT;
                            }
                            Some(Protocol::Start(name)) => {
                                let Some(t) = pending.iter().find(|t| t.name == name).copied() else {
                                    return Err(Error::Harness(format!("kernel started unplanned test {name}")));
                                };
                                deadline = Instant::now() + t.timeout();
                                current = Some((t, Vec::new()));
                            }
                            Some(Protocol::Ok(name, ns)) => {
                                let lines = current.take().map(|(_, l)| l).unwrap_or_default();
                                // What the test asked the host to check on
                                // its scratch disk (diskcheck.rs).
                                let scratch = workdir.join(SCRATCH_IMAGE);
                                let outcome = lines
                                    .iter()
                                    .filter_map(|l| crate::diskcheck::check_line(l, &scratch))
                                    .find_map(Result::err)
                                    .map_or(Outcome::Passed, Outcome::Failed);
                                record(name, outcome, ns, lines, &mut pending, report.as_deref_mut());
                                deadline = Instant::now() + BOOT_TIMEOUT;
                            }
                            Some(Protocol::Failed(name, ns, reason)) => {
                                let lines = current.take().map(|(_, l)| l).unwrap_or_default();
                                record(
                                    name,
                                    Outcome::Failed(reason.to_owned()),
                                    ns,
                                    lines,
                                    &mut pending,
                                    report.as_deref_mut(),
                                );
                                deadline = Instant::now() + BOOT_TIMEOUT;
                            }
                            Some(Protocol::Done) => deadline = Instant::now() + Duration::from_secs(10),
                            None => {
                                if let Some((_, lines)) = current.as_mut() {
                                    lines.push(line);
                                }
                            }
                        }
                    }
                    Some(Event::Exited(status)) => {
                        let mut why = qemu::describe_exit(&status);
                        let stderr = qemu.stderr();
                        if !stderr.is_empty() {
                            why = format!("{why}; QEMU said: {stderr}");
                        }
                        break why;
                    }
                    None => {
                        qemu.kill();
                        break match &current {
                            Some((t, _)) => format!("timed out after {} s (hang?)", t.timeout().as_secs()),
                            None => format!("no progress for {} s", BOOT_TIMEOUT.as_secs()),
                        };
                    }
                }
            };
            if let Some((t, lines)) = current.take() {
                record(&t.name, Outcome::Failed(end_reason.clone()), None, lines, &mut pending, report.as_deref_mut());
            }
            if !ready || pending.len() == before {
                // The kernel never reached the runner, or the boot ended
                // without settling any test: retrying would loop forever.
                let why =
                    if ready { "boot ended without running a test" } else { "kernel did not reach the test runner" };
                let pending_now: Vec<String> = pending.iter().map(|t| t.name.clone()).collect();
                for name in pending_now {
                    record(
                        &name,
                        Outcome::Failed(format!("{why}: {end_reason}")),
                        None,
                        Vec::new(),
                        &mut pending,
                        report.as_deref_mut(),
                    );
                }
            }
        }
        Ok(results)
    }
}

/// The result line of a test, counted in `suite`.
fn report_result(suite: &mut Suite, name: &str, outcome: &Outcome, ns: Option<u64>) {
    let time = ns.map(|n| format!(" ({})", format_ns(n))).unwrap_or_default();
    match outcome {
        Outcome::Passed => {
            suite.passed();
            outln!(suite, "ktest {name} ... ok{time}");
        }
        Outcome::Failed(reason) => {
            suite.failed(name);
            outln!(suite, "ktest {name} ... FAILED{time}: {reason}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(name: &str, opt_in: bool) -> TestDesc {
        TestDesc {
            name: name.into(),
            timeout_secs: 0,
            mem_mib: 0,
            cpus: 0,
            disk_mib: 0,
            disk_count: 0,
            disk_tree: None,
            disk_eio_sector: None,
            disk_eio_op: None,
            disk_eio_pages: 0,
            disk_eio_file: None,
            fresh_boot: false,
            should_panic: false,
            opt_in,
        }
    }

    #[test]
    fn list_lines_parse_into_descriptions() {
        let t = parse_list_line(
            "ktest-list: harness::x timeout=5 mem=192 cpus=2 disk=8 fresh=1 should_panic=0 opt_in=1 disk_eio=7",
        );
        let expected = TestDesc {
            name: "harness::x".into(),
            timeout_secs: 5,
            mem_mib: 192,
            cpus: 2,
            disk_mib: 8,
            disk_count: 0,
            disk_tree: None,
            disk_eio_sector: Some(7),
            disk_eio_op: None,
            disk_eio_pages: 0,
            disk_eio_file: None,
            fresh_boot: true,
            should_panic: false,
            opt_in: true,
        };
        assert_eq!(t, Some(expected));
        let t =
            parse_list_line("ktest-list: fs::y timeout=0 mem=0 cpus=0 disk=8 disk_tree=basic disk_eio_file=/dir/big")
                .map(|t| (t.disk_mib, t.disk_tree, t.disk_eio_file));
        assert_eq!(t, Some((8, Some("basic".into()), Some("/dir/big".into()))));
        let t = parse_list_line("ktest-list: swap::z timeout=0 mem=0 cpus=0 disk=16 disks=2").map(|t| t.machine_key());
        assert_eq!(t.and_then(|k| k.disk).map(|d| (d.mib, d.extra, d.name())), Some((16, 1, "disk16Mx2".into())));
        let t = parse_list_line(
            "ktest-list: swap::e timeout=0 mem=0 cpus=0 disk=16 disk_eio=2048 disk_eio_op=write disk_eio_pages=4",
        )
        .and_then(|t| t.machine_key().disk);
        assert_eq!(t.map(|d| d.name()), Some("disk16M-eio2048w4".into()));
        assert_eq!(parse_list_line("ktest-list: x disk=16 disk_eio=8 disk_eio_op=flush"), None);
        assert_eq!(parse_list_line("ktest: ready 3"), None);
        assert_eq!(parse_list_line("ktest-list: x mem=lots"), None);
    }

    #[test]
    fn protocol_lines_parse() {
        assert_eq!(parse_protocol("ktest: ready 4"), Some(Protocol::Ready));
        assert_eq!(parse_protocol("ktest: start a::b"), Some(Protocol::Start("a::b")));
        assert_eq!(parse_protocol("ktest: ok a::b 1234"), Some(Protocol::Ok("a::b", Some(1234))));
        assert_eq!(parse_protocol("ktest: ok a::b 99 (panicked as expected)"), Some(Protocol::Ok("a::b", Some(99))));
        assert_eq!(
            parse_protocol("ktest: FAILED a::b 7 panicked: assertion failed: x == y"),
            Some(Protocol::Failed("a::b", Some(7), "panicked: assertion failed: x == y"))
        );
        assert_eq!(parse_protocol("ktest: done"), Some(Protocol::Done));
        assert_eq!(parse_protocol("[ 0.1] CPU0 INFO ktest: start x"), None);
    }

    #[test]
    fn opt_in_tests_need_their_suite_or_exact_name() {
        let normal = desc("exceptions::int3", false);
        let opt_in = desc("selftest::fails", true);
        let all = Selection::default();
        assert!(all.selects(&normal));
        assert!(!all.selects(&opt_in));
        let by_suite = Selection { filter: None, suite: Some("selftest".into()) };
        assert!(by_suite.selects(&opt_in));
        assert!(!by_suite.selects(&normal));
        let by_substring = Selection { filter: Some("fails".into()), suite: None };
        assert!(!by_substring.selects(&opt_in));
        let by_name = Selection { filter: Some("selftest::fails".into()), suite: None };
        assert!(by_name.selects(&opt_in));
        let filtered = Selection { filter: Some("int3".into()), suite: None };
        assert!(filtered.selects(&normal));
        assert!(!Selection { filter: Some("zzz".into()), suite: None }.selects(&normal));
    }

    #[test]
    fn groups_share_a_machine_and_panicking_or_fresh_tests_boot_alone() {
        let mut big = desc("page_alloc::at_4g", false);
        big.mem_mib = 4096;
        let mut panics = desc("exceptions::panics", false);
        panics.should_panic = true;
        let mut fresh = desc("harness::fresh", false);
        fresh.fresh_boot = true;
        let (a, b) = (desc("a::one", false), desc("a::two", false));
        let tests = [&a, &big, &panics, &b, &fresh];
        let names: Vec<(String, usize)> = groups(&tests).iter().map(|g| (g.name.clone(), g.tests.len())).collect();
        let want = [("512M-1cpu", 2), ("exceptions::panics", 1), ("harness::fresh", 1), ("4096M-1cpu", 1)];
        assert_eq!(names, want.map(|(n, c)| (n.to_owned(), c)));
    }

    #[test]
    fn tests_on_different_disks_never_share_a_boot() {
        let on = |name: &str, tree: Option<&str>, eio_file: Option<&str>| {
            let mut t = desc(name, false);
            t.disk_mib = 8;
            t.disk_tree = tree.map(str::to_owned);
            t.disk_eio_file = eio_file.map(str::to_owned);
            t
        };
        let blank = on("a::blank", None, None);
        let basic = on("a::basic", Some("basic"), None);
        let basic_too = on("a::basic_too", Some("basic"), None);
        let other = on("a::other", Some("other"), None);
        let failing = on("a::failing", Some("basic"), Some("/big"));
        let tests = [&blank, &basic, &basic_too, &other, &failing];
        let names: Vec<(String, usize)> = groups(&tests).iter().map(|g| (g.name.clone(), g.tests.len())).collect();
        let want = [
            ("512M-1cpu-disk8M", 1),
            ("512M-1cpu-disk8M-basic", 2),
            ("512M-1cpu-disk8M-basic-eio-big", 1),
            ("512M-1cpu-disk8M-other", 1),
        ];
        assert_eq!(names, want.map(|(n, c)| (n.to_owned(), c)));
        let tree = basic.machine_key().disk.map(|d| d.contents);
        assert_eq!(tree, Some(Contents::Tree(mkdisk::tree_dir("basic"))));
        assert!(mkdisk::tree_dir("basic").ends_with("tests/disks/basic"));
    }

    #[test]
    fn durations_format_with_sensible_units() {
        assert_eq!(format_ns(123_456), "0.123 ms");
        assert_eq!(format_ns(12_345_678), "12.3 ms");
        assert_eq!(format_ns(2_500_000_000), "2.50 s");
    }

    #[test]
    fn summary_line_has_the_plain_closing_form() {
        let t = Totals { passed: 3, failed: 1, skipped: 2 };
        assert_eq!(t.summary_line(), "3 passed, 1 failed, 2 skipped");
    }
}
