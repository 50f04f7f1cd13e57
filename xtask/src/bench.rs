//! `cargo xtask bench`: boots an optimised test kernel headless, runs the
//! `#[kbench]` benchmarks (kernel/src/kbench.rs) and the user-space
//! benchmark programs (tests/user/bench, run by that kernel as processes),
//! prints a table and writes a JSON report to `target/bench/`.
//!
//! In-kernel figures are nanoseconds per operation: the median over the
//! kernel's rounds, and with `--runs N` the median of the N boots' medians,
//! the smallest minimum and the largest maximum. A user-space figure is
//! what its program printed (already a median of its own rounds, in its own
//! unit); over N boots, the median, minimum and maximum of the N values. `--baseline FILE` prints each
//! figure's ratio to an earlier report. `--icount` runs TCG with
//! `-icount shift=0`, so guest time counts instructions (1 ns per
//! instruction) and figures repeat exactly from run to run. A benchmark's
//! `kbench: note <text>` lines (the readahead windows of a sequential
//! read) are printed as they come, `bench: <text>`.
//!
//! The swap benchmarks (tests/user/bench/swap.c, swap_integrity.c) get a
//! swap disk (`vdc`, four times the machine's memory and 64 MiB, made by
//! the host's mkswap) and, through
//! the filter, the raw disk figures of the same boot
//! (`block::vda_seq_*`, [`kernel_filter`]): each swap rate is printed
//! against the raw rate, for our kernel and for Linux.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::build::ImagesExt;
use crate::error::{Error, show};
use crate::jobs::{Suite, outln};
use crate::plot;
use crate::qemu::{Accel, Firmware, Headless, Machine};
use crate::scratch::{Contents, ScratchDisk};

/// A whole benchmark boot must finish within this.
const BENCH_BOOT_TIMEOUT: Duration = Duration::from_secs(600);
/// A smoke boot must finish within this.
const SMOKE_TIMEOUT: Duration = Duration::from_secs(120);

/// One benchmark's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// `suite::function`.
    pub name: String,
    /// Median cost per operation.
    pub median: f64,
    /// Smallest per-round cost seen.
    pub min: f64,
    /// Largest per-round cost seen.
    pub max: f64,
    /// Unit of median/min/max.
    pub unit: String,
    /// Operations measured in total (0 for user-space figures: their
    /// programs do not report a count).
    pub ops: u64,
}

/// A benchmark report, as written to JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// `git describe`-style revision, `-dirty` if the tree had changes.
    pub git_rev: String,
    /// Seconds since the Unix epoch when the run ended.
    pub unix_time: u64,
    /// KVM or TCG.
    pub accel: String,
    /// Whether TCG ran with -icount.
    pub icount: bool,
    /// Guest CPUs.
    pub cpus: u32,
    /// Guest memory, MiB.
    pub mem_mib: u32,
    /// `qemu-system-x86_64 --version`, first line.
    pub qemu_version: String,
    /// Boots aggregated.
    pub runs: u32,
    /// The figures.
    pub figures: Vec<Figure>,
    /// For a Linux report, the kernel command line Linux booted with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_cmdline: Option<String>,
}

impl Report {
    /// A report of `figures` measured now, in this tree, as `options` say.
    fn new(options: &BenchOptions, icount: bool, runs: u32, figures: Vec<Figure>) -> Report {
        Report {
            git_rev: git_rev(),
            unix_time: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            accel: options.accel.to_string(),
            icount,
            cpus: options.cpus,
            mem_mib: options.mem_mib,
            qemu_version: output_of(Command::new("qemu-system-x86_64").arg("--version")),
            runs,
            figures,
            linux_cmdline: None,
        }
    }
}

/// What to measure and how.
pub struct BenchOptions {
    /// Substring of benchmark names.
    pub filter: Option<String>,
    /// Boots to aggregate.
    pub runs: u32,
    /// Accelerator.
    pub accel: Accel,
    /// TCG with -icount.
    pub icount: bool,
    /// Memory, MiB.
    pub mem_mib: u32,
    /// CPUs.
    pub cpus: u32,
    /// Report to compare with.
    pub baseline: Option<PathBuf>,
}

/// One boot's figure: a `kbench: result` line (costs in picoseconds,
/// turned into ns/op) or a `kbench: figure` line from a user program.
#[derive(Debug, PartialEq)]
pub(crate) struct RawResult {
    pub(crate) name: String,
    median: f64,
    min: f64,
    max: f64,
    unit: String,
    ops: u64,
}

impl From<&RawResult> for Figure {
    fn from(r: &RawResult) -> Figure {
        Figure { name: r.name.clone(), median: r.median, min: r.min, max: r.max, unit: r.unit.clone(), ops: r.ops }
    }
}

/// Parses a `kbench: result` or `kbench: figure` line (ours, or the Linux
/// module's, which prints the same).
pub(crate) fn parse_result(line: &str) -> Option<RawResult> {
    if let Some(figure) = line.strip_prefix("kbench: figure ") {
        let (name, value, unit) = crate::linux::parse_figure(figure)?;
        return Some(RawResult { name, median: value, min: value, max: value, unit, ops: 0 });
    }
    let mut w = line.strip_prefix("kbench: result ")?.split_whitespace();
    let name = w.next()?.to_owned();
    let mut n = || w.next()?.parse::<u64>().ok();
    let ns = |ps: u64| ps as f64 / 1000.0;
    let (median, min, max, ops) = (ns(n()?), ns(n()?), ns(n()?), n()?);
    Some(RawResult { name, median, min, max, unit: "ns/op".into(), ops })
}

/// The scratch disk benchmarks get (`block::vda_*`: raw vda through the
/// block layer), written out in full so that reads do not hit the host's
/// holes.
pub const BENCH_DISK_MIB: u32 = 64;
/// The ext2 disk benchmarks get (vdb, `user::file_seq_*`: a 64 MiB file
/// through the file system; `user::reclaim_*`: a file twice the memory
/// of a 128 MiB machine), apart from vda because the raw write benchmark
/// overwrites all of vda.
pub const BENCH_EXT2_DISK_MIB: u32 = 320;

/// The swap benchmark's program (tests/user/bench/swap.c), as a filter
/// names it.
const SWAP_BENCH: &str = "user::swap";
/// The raw disk figures the swap figures are set against, which a
/// filter picking the swap benchmark picks too (the kernel's filter
/// takes alternatives separated by commas).
const RAW_FIGURES: [&str; 2] = ["block::vda_seq_write_8m_pass", "block::vda_seq_read_8m_pass"];
/// Bytes one operation of a [`RAW_FIGURES`] benchmark moves (64 bios
/// of 128 KiB, tests/src/block.rs).
const RAW_PASS_BYTES: f64 = 8.0 * 1024.0 * 1024.0;
/// The benchmarks that run on the swap disk: the swap figures, and the
/// integrity run's time (tests/user/bench/swap_integrity.c).
const SWAP_DISK_BENCHES: [&str; 2] = [SWAP_BENCH, "user::swap_integrity"];
/// The swap disk (vdc) beyond four times the machine's memory: the
/// integrity run fills four times MemTotal (less what stays in memory),
/// and a forked child's copy-on-write copies come on top, 1/32 of it.
const SWAP_DISK_SLACK_MIB: u32 = 64;

/// Whether `filter` (the kernel's: substrings separated by commas, each
/// naming what contains it, kernel/src/kbench.rs) picks the benchmark
/// `name`; no filter picks all.
fn picks(filter: Option<&str>, name: &str) -> bool {
    filter.is_none_or(|f| f.split(',').any(|part| name.contains(part)))
}

/// The filter the kernels get for the user's `filter`: with the swap
/// benchmark, the raw disk figures its ratios need.
pub fn kernel_filter(filter: Option<&str>) -> Option<String> {
    let f = filter?;
    if picks(Some(f), SWAP_BENCH) && !RAW_FIGURES.iter().all(|raw| picks(Some(f), raw)) {
        return Some(format!("{f},block::vda_seq_"));
    }
    Some(f.to_owned())
}

/// The swap disk a machine of `mem_mib` gets if a swap benchmark may
/// run (`filter` picks one), else none.
fn swap_disk_mib(filter: Option<&str>, mem_mib: u32) -> u32 {
    if SWAP_DISK_BENCHES.iter().any(|bench| picks(filter, bench)) {
        mem_mib.saturating_mul(4).saturating_add(SWAP_DISK_SLACK_MIB)
    } else {
        0
    }
}

fn machine(accel: Accel, mem_mib: u32, cpus: u32, cmdline: String, icount: bool, swap_disk_mib: u32) -> Machine {
    Machine {
        accel,
        firmware: Firmware::Bios,
        mem_mib,
        cpus,
        scratch: Some(ScratchDisk { mib: BENCH_DISK_MIB, contents: Contents::Allocated, eio: None, extra: 0 }),
        ext2_disk_mib: BENCH_EXT2_DISK_MIB,
        swap_disk_mib,
        disks: Vec::new(),
        gdb: None,
        cmdline,
        fw_cfg_files: Vec::new(),
        extra_args: if icount { vec!["-icount".into(), "shift=0".into()] } else { Vec::new() },
        interactive: false,
    }
}

impl BenchOptions {
    /// The machine benchmarks run on (the Linux comparison uses it too).
    pub fn machine(&self) -> Machine {
        let filter = self.filter.as_deref();
        let cmdline = match kernel_filter(filter) {
            Some(f) => format!("loglevel=warn kbench.run={f}"),
            None => "loglevel=warn kbench.run".to_owned(),
        };
        let swap_disk = swap_disk_mib(filter, self.mem_mib);
        machine(self.accel, self.mem_mib, self.cpus, cmdline, self.icount, swap_disk)
    }
}

/// Boots once and collects the result lines; fails on a crash, a timeout or
/// a `kbench: FAILED` line.
fn boot_once(image: &Path, machine: &Machine, workdir: &Path, timeout: Duration) -> Result<Vec<RawResult>, Error> {
    let mut qemu = Headless::start(machine, image, workdir)?;
    let console = qemu.lines_until(timeout, |l| l == "kbench: done").map_err(|e| {
        Error::Harness(format!("benchmark boot ended early: {}; console:\n{}", e.why, e.console.join("\n")))
    })?;
    // Kept for reading after the run: warnings, a user program's output.
    let log = workdir.join("console.log");
    std::fs::write(&log, console.join("\n")).map_err(|e| Error::io(format!("writing {}", show(&log)), e))?;
    if let Some(failed) = console.iter().find(|l| l.starts_with("kbench: FAILED")) {
        return Err(Error::Harness(failed.clone()));
    }
    // What a benchmark reports beside its figures (readahead windows).
    for note in console.iter().filter_map(|l| l.strip_prefix("kbench: note ")) {
        eprintln!("bench: {note}");
    }
    Ok(console.iter().filter_map(|l| parse_result(l)).collect())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Aggregates runs: median of medians, min of mins, max of maxes.
fn aggregate(runs: &[Vec<RawResult>]) -> Vec<Figure> {
    let mut names: Vec<&str> = Vec::new();
    for r in runs.iter().flatten() {
        if !names.contains(&r.name.as_str()) {
            names.push(&r.name);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let of: Vec<&RawResult> = runs.iter().flatten().filter(|r| r.name == name).collect();
            let mut medians: Vec<f64> = of.iter().map(|r| r.median).collect();
            Figure {
                name: name.to_owned(),
                median: median(&mut medians),
                min: of.iter().map(|r| r.min).reduce(f64::min).unwrap_or(0.0),
                max: of.iter().map(|r| r.max).reduce(f64::max).unwrap_or(0.0),
                unit: of.first().map_or_else(String::new, |r| r.unit.clone()),
                ops: of.iter().map(|r| r.ops).sum(),
            }
        })
        .collect()
}

fn output_of(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").to_owned())
        .unwrap_or_default()
}

fn git_rev() -> String {
    let root = crate::workspace_root();
    let rev = output_of(Command::new("git").arg("-C").arg(&root).args(["rev-parse", "--short", "HEAD"]));
    let dirty = !output_of(Command::new("git").arg("-C").arg(&root).args(["status", "--porcelain"])).is_empty();
    match (rev.is_empty(), dirty) {
        (true, _) => "unknown".into(),
        (false, true) => format!("{rev}-dirty"),
        (false, false) => rev,
    }
}

/// Runs the benchmarks and writes the report; returns its path and the
/// report.
pub fn run(images: &boot::Images, options: &BenchOptions) -> Result<(PathBuf, Report), Error> {
    let machine = options.machine();
    // A bad baseline fails before minutes of measuring, not after.
    let baseline = match &options.baseline {
        Some(path) => Some(load(path)?),
        None => None,
    };
    let workdir = crate::build::target_dir().join("xtask/bench");
    let mut runs = Vec::new();
    for run in 1..=options.runs {
        eprintln!(
            "bench: run {run} of {} ({}{})",
            options.runs,
            options.accel,
            if options.icount { ", icount" } else { "" }
        );
        runs.push(boot_once(images.for_firmware(Firmware::Bios), &machine, &workdir, BENCH_BOOT_TIMEOUT)?);
    }
    let figures = aggregate(&runs);
    if figures.is_empty() {
        return Err(Error::Harness("no benchmark matched".into()));
    }
    let report = Report::new(options, options.icount, options.runs, figures);
    print_table(&report, baseline.as_ref());
    print_swap_ratios("ours", &report.figures);
    let dir = crate::build::target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", show(&dir)), e))?;
    let json = serde_json::to_string_pretty(&report).map_err(|e| Error::Harness(format!("encoding JSON: {e}")))?;
    let path = dir.join(format!("bench-{}.json", report.unix_time));
    for p in [&path, &dir.join("latest.json")] {
        std::fs::write(p, &json).map_err(|e| Error::io(format!("writing {}", show(p)), e))?;
    }
    Ok((path, report))
}

/// Prints `ours` beside Linux's figures with their ratio, one table for
/// the in-kernel operations (the module's) and one for the user-space
/// benchmarks, and writes Linux's as a report of their own
/// (`target/bench/linux-<time>.json`, with the command line it booted).
pub fn write_linux_report(
    bzimage: &Path,
    cmdline: &str,
    options: &BenchOptions,
    ours: &Report,
    linux: crate::linux::LinuxFigures,
) -> Result<PathBuf, Error> {
    if linux.user.is_empty() && linux.kernel.is_empty() {
        return Err(Error::Harness("no benchmark printed a figure under Linux".into()));
    }
    let accel = format!("{}{}", options.accel, if options.icount { " -icount shift=0" } else { "" });
    println!("\nLinux: {} ({accel})", show(bzimage));
    println!("Linux command line: {cmdline}");
    if cmdline.contains(crate::linux::COMPARABLE_CMDLINE) {
        println!(
            "  ({} makes Linux comparable: no zeroing of every allocation, no mitigation cost on entry)",
            crate::linux::COMPARABLE_CMDLINE
        );
    } else {
        println!("  (distribution defaults: Linux zeroes every allocation and runs with CPU mitigations)");
    }
    print_beside("in-kernel operations (our kbench, Linux's tests/linux-module)", ours, &linux.kernel);
    print_beside("user-space benchmarks", ours, &linux.user);
    let mut figures = linux.kernel;
    figures.extend(linux.user);
    print_swap_ratios("Linux", &figures);
    let mut report = Report::new(options, options.icount, 1, figures);
    report.linux_cmdline = Some(cmdline.to_owned());
    let dir = crate::build::target_dir().join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", show(&dir)), e))?;
    let path = dir.join(format!("linux-{}.json", report.unix_time));
    let json = serde_json::to_string_pretty(&report).map_err(|e| Error::Harness(format!("encoding JSON: {e}")))?;
    std::fs::write(&path, json).map_err(|e| Error::io(format!("writing {}", show(&path)), e))?;
    Ok(path)
}

/// Each swap rate of `figures` (MiB/s) set against the raw rate of the
/// same kind of disk in the same boot, from [`RAW_FIGURES`] (8 MiB per
/// pass over the median time of a pass): `(swap figure, raw figure,
/// swap MiB/s, raw MiB/s)`. Swap-out against the raw write, swap-in
/// against the raw read.
fn swap_ratios(figures: &[Figure]) -> Vec<(&str, &str, f64, f64)> {
    let pairs = [("user::swap_out_mib_s", RAW_FIGURES[0]), ("user::swap_in_mib_s", RAW_FIGURES[1])];
    let find = |name: &str| figures.iter().find(|f| f.name == name);
    pairs
        .into_iter()
        .filter_map(|(swap, raw)| {
            let (s, r) = (find(swap)?, find(raw)?);
            (s.unit == "MiB/s" && r.unit == "ns/op" && r.median > 0.0).then(|| {
                let raw_mib_s = RAW_PASS_BYTES / (1024.0 * 1024.0) / (r.median / 1e9);
                (swap, raw, s.median, raw_mib_s)
            })
        })
        .collect()
}

/// Prints [`swap_ratios`] of `who`'s figures, if there are any.
fn print_swap_ratios(who: &str, figures: &[Figure]) {
    let ratios = swap_ratios(figures);
    if ratios.is_empty() {
        return;
    }
    println!(
        "
swap against the raw disk, {who} (same boot; raw MiB/s = 8 MiB / median time of a pass)"
    );
    for (swap, raw, swap_mib_s, raw_mib_s) in ratios {
        println!("  {swap} {swap_mib_s:.1} MiB/s / {raw} {raw_mib_s:.1} MiB/s = {:.3}", swap_mib_s / raw_mib_s);
    }
}

/// Whether a larger value of `unit` is better: a rate (`MB/s`) rather than
/// a cost (`ns/op`).
fn higher_is_better(unit: &str) -> bool {
    unit.ends_with("/s")
}

/// One table of `ours` beside Linux's `figures` (ours/Linux below 1 means
/// we are faster for a cost, slower for a rate).
fn print_beside(title: &str, ours: &Report, figures: &[Figure]) {
    if figures.is_empty() {
        return;
    }
    println!("\n{title}, ours beside Linux");
    let width = figures.iter().map(|f| f.name.len()).max().unwrap_or(6).max(6);
    println!("{:<width$} {:>12} {:>12}  {:<8} {:>8}", "figure", "ours", "Linux", "unit", "ours/Linux");
    for f in figures {
        match ours.figures.iter().find(|o| o.name == f.name && o.unit == f.unit) {
            Some(o) if f.median > 0.0 => println!(
                "{:<width$} {:>12.3} {:>12.3}  {:<8} {:>8.2}",
                f.name,
                o.median,
                f.median,
                f.unit,
                o.median / f.median
            ),
            _ => println!("{:<width$} {:>12} {:>12.3}  {:<8} {:>8}", f.name, "n/a", f.median, f.unit, "n/a"),
        }
    }
    if figures.iter().any(|f| higher_is_better(&f.unit)) {
        println!("  (ours/Linux below 1: faster for a cost such as ns/op, slower for a rate such as MB/s)");
    }
}

/// Renders charts from `target/bench/latest.json` and the newest
/// `linux-*.json`; returns the files written.
pub fn plot() -> Result<Vec<PathBuf>, Error> {
    let dir = crate::build::target_dir().join("bench");
    let ours =
        load(&dir.join("latest.json")).map_err(|e| Error::Harness(format!("{e}; run `cargo xtask bench` first")))?;
    let describe = |r: &Report| {
        let icount = if r.icount { " -icount shift=0 (1 ns per instruction)" } else { "" };
        format!("{} runs, {}{icount}, {} CPU, {} MiB, {}", r.runs, r.accel, r.cpus, r.mem_mib, r.git_rev)
    };
    let rows: Vec<plot::Row> = ours
        .figures
        .iter()
        .filter(|f| plot::sweep_point(&f.name).is_none())
        .map(|f| plot::Row {
            label: f.name.clone(),
            unit: f.unit.clone(),
            values: vec![Some((f.median, f.min, f.max))],
        })
        .collect();
    let mut written = Vec::new();
    let kernel_svg = dir.join("kernel.svg");
    let svg = plot::horizontal_bars("Benchmarks (median, min-max)", &describe(&ours), &["ours"], &rows);
    std::fs::write(&kernel_svg, svg).map_err(|e| Error::io(format!("writing {}", show(&kernel_svg)), e))?;
    written.push(kernel_svg);

    let mut sweeps: Vec<(&str, &str, Vec<plot::Point>)> = Vec::new();
    for f in &ours.figures {
        let Some((base, x)) = plot::sweep_point(&f.name) else { continue };
        let point = (x, f.median, f.min, f.max);
        match sweeps.iter_mut().find(|(b, unit, _)| *b == base && *unit == f.unit) {
            Some((_, _, points)) => points.push(point),
            None => sweeps.push((base, &f.unit, vec![point])),
        }
    }
    for (base, unit, mut points) in sweeps {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let file: String = base.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        let path = dir.join(format!("sweep-{file}.svg"));
        let x_label = base.rsplit("::").next().unwrap_or(base).rsplit('_').next().unwrap_or("parameter");
        let svg = plot::scaling_curve(&format!("{base} (median, min-max)"), &describe(&ours), x_label, unit, &points);
        std::fs::write(&path, svg).map_err(|e| Error::io(format!("writing {}", show(&path)), e))?;
        written.push(path);
    }

    let newest_linux = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(format!("reading {}", show(&dir)), e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("linux-")))
        .max();
    if let Some(path) = newest_linux {
        let linux = load(&path)?;
        let rows: Vec<plot::Row> = linux
            .figures
            .iter()
            .map(|f| {
                let mine = ours.figures.iter().find(|o| o.name == f.name && o.unit == f.unit);
                plot::Row {
                    label: f.name.clone(),
                    unit: f.unit.clone(),
                    values: vec![mine.map(|o| (o.median, o.min, o.max)), Some((f.median, f.min, f.max))],
                }
            })
            .collect();
        let svg_path = dir.join("vs-linux.svg");
        let svg = plot::horizontal_bars("Benchmarks: ours vs Linux", &describe(&linux), &["ours", "Linux"], &rows);
        std::fs::write(&svg_path, svg).map_err(|e| Error::io(format!("writing {}", show(&svg_path)), e))?;
        written.push(svg_path);
    }
    Ok(written)
}

/// Reads a report written by an earlier run.
pub fn load(path: &Path) -> Result<Report, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", show(path)), e))?;
    serde_json::from_str(&text).map_err(|e| Error::Harness(format!("{} is not a bench report: {e}", show(path))))
}

fn print_table(report: &Report, baseline: Option<&Report>) {
    println!(
        "\n{} runs, {}{}, {} CPU, {} MiB, {} ({})",
        report.runs,
        report.accel,
        if report.icount { " -icount shift=0" } else { "" },
        report.cpus,
        report.mem_mib,
        report.git_rev,
        report.qemu_version
    );
    let width = report.figures.iter().map(|f| f.name.len()).max().unwrap_or(9).max(9);
    print!("{:<width$} {:>12} {:>12} {:>12}  {:<6} {:>12}", "benchmark", "median", "min", "max", "unit", "ops");
    println!("{}", if baseline.is_some() { "  vs baseline" } else { "" });
    for f in &report.figures {
        print!("{:<width$} {:>12.3} {:>12.3} {:>12.3}  {:<6} {:>12}", f.name, f.median, f.min, f.max, f.unit, f.ops);
        if let Some(base) = baseline {
            match base.figures.iter().find(|b| b.name == f.name && b.unit == f.unit) {
                Some(b) if b.median > 0.0 => print!("  x{:.3} (was {:.3})", f.median / b.median, b.median),
                _ => print!("  (new)"),
            }
        }
        println!();
    }
}

/// Each benchmark once, briefly, as part of `cargo xtask test`: proves every
/// benchmark still runs and produces a number. Asserts nothing about time.
pub fn smoke(images: &boot::Images, accel: Accel, logs: &Path, filter: Option<&str>, suite: &mut Suite) {
    outln!(suite, "(each benchmark once, figures not checked)");
    let mem = crate::runner::DEFAULT_TEST_MEM_MIB;
    let m = machine(accel, mem, 1, "loglevel=warn kbench.smoke".into(), false, swap_disk_mib(None, mem));
    match boot_once(images.for_firmware(Firmware::Bios), &m, &logs.join("bench-smoke"), SMOKE_TIMEOUT) {
        Ok(results) => {
            for r in results {
                let name = format!("kbench::{}", r.name);
                if filter.is_some_and(|f| !name.contains(f)) {
                    continue;
                }
                suite.passed();
                outln!(suite, "kbench {} ... ok (smoke: {:.1} {})", r.name, r.median, r.unit);
            }
        }
        Err(e) => {
            suite.failed("kbench smoke run");
            outln!(suite, "kbench smoke run ... FAILED: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A figure in ns/op from picosecond costs, as a result line gives them.
    fn raw(name: &str, median: u64, min: u64, max: u64) -> RawResult {
        let ns = |ps: u64| ps as f64 / 1000.0;
        RawResult { name: name.into(), median: ns(median), min: ns(min), max: ns(max), unit: "ns/op".into(), ops: 10 }
    }

    #[test]
    fn result_lines_parse() {
        assert_eq!(parse_result("kbench: result a::b 1500 1000 2000 77"), Some(raw_ops("a::b", 1500, 1000, 2000, 77)));
        assert_eq!(parse_result("kbench: result a::b 1500 x 2000 77"), None);
        assert_eq!(parse_result("kbench: done"), None);
    }

    #[test]
    fn user_figure_lines_parse_with_their_unit() {
        let r = parse_result("kbench: figure user::cow_fault 1974.141 ns/page");
        let want = RawResult {
            name: "user::cow_fault".into(),
            median: 1974.141,
            min: 1974.141,
            max: 1974.141,
            unit: "ns/page".into(),
            ops: 0,
        };
        assert_eq!(r, Some(want));
        assert_eq!(parse_result("kbench: figure cow_fault 1974.141 ns/page"), None, "not a user:: figure");
        assert_eq!(parse_result("kbench: figure user::x 12 us/op extra"), None);
    }

    #[test]
    fn user_figures_aggregate_over_boots_in_their_unit() {
        let fig =
            |v: f64| RawResult { name: "user::f".into(), median: v, min: v, max: v, unit: "us/op".into(), ops: 0 };
        let figures = aggregate(&[vec![fig(5.0)], vec![fig(1.0)], vec![fig(3.0)]]);
        assert_eq!(figures.len(), 1);
        let f = &figures[0];
        assert_eq!((f.median, f.min, f.max, f.unit.as_str(), f.ops), (3.0, 1.0, 5.0, "us/op", 0));
    }

    fn raw_ops(name: &str, median: u64, min: u64, max: u64, ops: u64) -> RawResult {
        RawResult { ops, ..raw(name, median, min, max) }
    }

    #[test]
    fn runs_aggregate_to_median_of_medians_and_extremes() {
        let runs = vec![
            vec![raw("x", 3000, 2000, 9000)],
            vec![raw("x", 1000, 500, 1500)],
            vec![raw("x", 2000, 1900, 2100), raw("y", 7000, 7000, 7000)],
        ];
        let figures = aggregate(&runs);
        assert_eq!(figures.len(), 2);
        assert_eq!((figures[0].median, figures[0].min, figures[0].max, figures[0].ops), (2.0, 0.5, 9.0, 30));
        assert_eq!(figures[1].name, "y");
        assert_eq!(figures[1].median, 7.0);
    }

    #[test]
    fn a_filter_picking_the_swap_benchmark_picks_the_raw_figures_and_a_swap_disk() {
        assert_eq!(kernel_filter(None), None);
        assert_eq!(kernel_filter(Some("vmalloc")).as_deref(), Some("vmalloc"));
        assert_eq!(kernel_filter(Some("swap")).as_deref(), Some("swap,block::vda_seq_"));
        assert_eq!(kernel_filter(Some("user")).as_deref(), Some("user,block::vda_seq_"));
        assert_eq!(kernel_filter(Some("swap,vda")).as_deref(), Some("swap,vda"));
        assert_eq!(swap_disk_mib(None, 128), 576);
        assert_eq!(swap_disk_mib(Some("swap"), 128), 576);
        assert_eq!(swap_disk_mib(Some("swap_integrity"), 128), 576);
        assert_eq!(swap_disk_mib(Some("vda"), 128), 0);
    }

    #[test]
    fn swap_rates_are_set_against_the_raw_rate_of_the_same_boot() {
        let figure = |name: &str, median: f64, unit: &str| Figure {
            name: name.into(),
            median,
            min: median,
            max: median,
            unit: unit.into(),
            ops: 0,
        };
        // 8 MiB in 40 ms: 200 MiB/s.
        let figures = vec![
            figure("block::vda_seq_write_8m_pass", 40e6, "ns/op"),
            figure("user::swap_out_mib_s", 150.0, "MiB/s"),
            figure("user::swap_in_mib_s", 80.0, "MiB/s"),
        ];
        let ratios = swap_ratios(&figures);
        assert_eq!(ratios.len(), 1, "no raw read figure, no swap-in ratio");
        let (swap, raw, swap_rate, raw_rate) = ratios[0];
        assert_eq!((swap, raw, swap_rate), ("user::swap_out_mib_s", "block::vda_seq_write_8m_pass", 150.0));
        assert!((raw_rate - 200.0).abs() < 1e-9, "{raw_rate}");
    }

    #[test]
    fn median_of_even_count_averages_the_middle() {
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }

    #[test]
    fn reports_round_trip_through_json() {
        let report = Report {
            git_rev: "abc".into(),
            unix_time: 1,
            accel: "TCG".into(),
            icount: true,
            cpus: 1,
            mem_mib: 512,
            qemu_version: "QEMU 7.2".into(),
            runs: 3,
            figures: aggregate(&[vec![raw("x", 1000, 900, 1100)]]),
            linux_cmdline: Some("console=ttyS0".into()),
        };
        let json = serde_json::to_string(&report).unwrap_or_default();
        let back: Result<Report, _> = serde_json::from_str(&json);
        assert_eq!(back.as_ref().map(|r| &r.figures).ok(), Some(&report.figures));
        assert_eq!(back.ok().and_then(|r| r.linux_cmdline).as_deref(), Some("console=ttyS0"));
    }
}
