//! In-kernel benchmarks, the instrument behind `cargo xtask bench`.
//!
//! A benchmark is a function marked `#[kbench]` (the `ktest-macros` crate)
//! taking a [`Bencher`]; like tests, descriptors are gathered from the
//! `.kbench_array` link section. [`Bencher::iter`] times one operation per
//! call on the TSC (calibrated against the PIT at boot, see `tsc.rs`): it
//! warms up for [`WARMUP_NS`], sizes rounds to about [`ROUND_NS`] each, runs
//! [`ROUNDS`] rounds and reports the median, minimum and maximum per-round
//! cost per operation.
//!
//! A benchmark that sweeps a parameter (an order, a size) calls
//! [`Bencher::iter_with`] once per value; each value is its own figure,
//! named `<name>/<value>`, and `cargo xtask bench --plot` draws the sweep
//! as a scaling curve.
//!
//! Protocol lines on the console (parsed by xtask/src/bench.rs):
//!
//! ```text
//! kbench: result <name>[/<value>] <median_ps> <min_ps> <max_ps> <ops>
//! kbench: figure user::<name> <value> <unit>
//! kbench: note <text>
//! kbench: done
//! ```
//!
//! A `note` is what a benchmark reports beside its figures (the readahead
//! windows of a sequential read), printed by xtask as it is.
//!
//! `figure` lines come from the user-space benchmarks: after the in-kernel
//! ones, [`run`] starts every program in the rootfs's `/bench` (unpacked
//! from the initramfs) as a process (the same static binaries `cargo
//! xtask bench --vs-linux` runs under Linux) and passes on the `user::<name> <value> <unit>` lines it
//! prints; a program that fails is reported as `kbench: FAILED`.
//!
//! Costs are in picoseconds per operation, integers, so sub-nanosecond
//! operations keep their precision without floating point in the kernel.
//! With `kbench.smoke` each benchmark runs its operation only a few times:
//! `cargo xtask test` uses it so benchmarks cannot rot, and asserts nothing
//! about the figures.

use core::fmt;
use core::hint::black_box;

use crate::arch::x86_64::tsc;
use crate::kprintln;
use crate::printk::TruncatingBuf;
use crate::section::{self, QualifiedName};

/// Warm-up time before measuring.
pub const WARMUP_NS: u64 = 20_000_000;
/// Target length of one measured round.
pub const ROUND_NS: u64 = 20_000_000;
/// Measured rounds (odd, so the median is a round's value).
pub const ROUNDS: usize = 11;
/// Operations per smoke run.
const SMOKE_OPS: u64 = 3;

/// A registered benchmark. Built by `#[kbench]`.
#[derive(Debug)]
pub struct KBench {
    /// The function name.
    pub name: &'static str,
    /// `module_path!()` where it is defined.
    pub module: &'static str,
    /// The benchmark body.
    pub func: fn(&mut Bencher<'_>),
}

impl fmt::Display for KBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        QualifiedName { module: self.module, name: self.name }.fmt(f)
    }
}

unsafe extern "C" {
    // Declared as bytes: only their addresses are used.
    static __kbench_array_start: u8;
    static __kbench_array_end: u8;
}

/// Every benchmark linked into this kernel.
pub fn benches() -> &'static [KBench] {
    // SAFETY: `.kbench_array` holds only the `KBench` statics that
    // `#[kbench]` emits, and the linker script places it, 8-aligned, between
    // these symbols.
    unsafe { section::linker_array(&raw const __kbench_array_start, &raw const __kbench_array_end) }
}

/// How a benchmark is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Full measurement: warm-up and [`ROUNDS`] rounds.
    Full,
    /// A few operations, to prove the benchmark still runs.
    Smoke,
}

/// A benchmark's figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measurement {
    /// Median per-operation cost over the rounds, picoseconds.
    pub median_ps: u64,
    /// Cheapest round, picoseconds per operation.
    pub min_ps: u64,
    /// Dearest round, picoseconds per operation.
    pub max_ps: u64,
    /// Operations executed in measured rounds.
    pub ops: u64,
}

/// Runs and times a benchmark's operation.
pub struct Bencher<'n> {
    mode: Mode,
    name: &'n str,
    reported: bool,
}

fn time_ops<R>(n: u64, f: &mut impl FnMut() -> R) -> u64 {
    let start = tsc::rdtsc();
    for _ in 0..n {
        black_box(f());
    }
    tsc::ticks_to_ns(tsc::rdtsc() - start)
}

impl Bencher<'_> {
    /// Measures `f`, which performs one operation per call, and reports it
    /// under the benchmark's name.
    pub fn iter<R>(&mut self, f: impl FnMut() -> R) {
        let m = self.measure(f);
        kprintln!("kbench: result {} {} {} {} {}", self.name, m.median_ps, m.min_ps, m.max_ps, m.ops);
        self.reported = true;
    }

    /// Measures `f` for one value of a swept parameter and reports it as
    /// `<name>/<param>`.
    pub fn iter_with<R>(&mut self, param: u64, f: impl FnMut() -> R) {
        let m = self.measure(f);
        kprintln!("kbench: result {}/{param} {} {} {} {}", self.name, m.median_ps, m.min_ps, m.max_ps, m.ops);
        self.reported = true;
    }

    fn measure<R>(&self, mut f: impl FnMut() -> R) -> Measurement {
        if self.mode == Mode::Smoke {
            let ns = time_ops(SMOKE_OPS, &mut f);
            let ps = ns * 1000 / SMOKE_OPS;
            return Measurement { median_ps: ps, min_ps: ps, max_ps: ps, ops: SMOKE_OPS };
        }
        // Warm up, doubling the batch until a batch takes a measurable time;
        // the rate seen sizes the rounds.
        let mut batch = 1u64;
        let mut spent = 0u64;
        let mut batch_ns = 0u64;
        while spent < WARMUP_NS {
            batch_ns = time_ops(batch, &mut f);
            spent += batch_ns;
            if batch_ns < WARMUP_NS / 10 {
                batch = batch.saturating_mul(2);
            }
        }
        let per_op_ns = (batch_ns / batch).max(1);
        let n = (ROUND_NS / per_op_ns).max(1);
        let mut rounds = [0u64; ROUNDS];
        for r in &mut rounds {
            *r = time_ops(n, &mut f) * 1000 / n;
        }
        rounds.sort_unstable();
        Measurement {
            median_ps: rounds[ROUNDS / 2],
            min_ps: rounds[0],
            max_ps: rounds[ROUNDS - 1],
            ops: n * ROUNDS as u64,
        }
    }
}

/// Whether `filter` picks the benchmark `name`: it is substrings
/// separated by commas, and picks a name that contains one of them
/// (`swap,block::vda_seq_`: the swap benchmark and the raw disk figures
/// its ratios need); the empty filter picks all.
fn picks(filter: &str, name: &str) -> bool {
    filter.split(',').any(|part| name.contains(part))
}

/// Runs the benchmarks [`picks`] `filter` and prints their results, then
/// runs the user-space benchmarks whose `user::<program>` names it picks,
/// then prints `kbench: done`.
pub fn run(filter: &str, mode: Mode) {
    for bench in benches() {
        let mut name = TruncatingBuf::new();
        let _ = fmt::Write::write_fmt(&mut name, format_args!("{bench}"));
        if !picks(filter, name.as_str()) {
            continue;
        }
        let mut b = Bencher { mode, name: name.as_str(), reported: false };
        (bench.func)(&mut b);
        if !b.reported {
            kprintln!("kbench: FAILED {bench} never called Bencher::iter");
        }
    }
    run_user_benches(filter, mode);
    kprintln!("kbench: done");
}

/// Where the user-space benchmarks live (the initramfs's `/bench`,
/// unpacked into the rootfs).
const USER_BENCH_DIR: &str = "/bench";

/// Runs each `/bench` program whose `user::<program>` name `filter`
/// picks, with the argument `smoke` in [`Mode::Smoke`], and passes its
/// figure lines on, and its other lines (what it says about its rounds,
/// a figure it skipped and why) as notes. A program that prints no
/// figure fails, unless it said why with a `skip: ` line.
fn run_user_benches(filter: &str, mode: Mode) {
    let Ok(entries) = crate::fs::syscalls::kern::read_dir(USER_BENCH_DIR) else { return };
    for entry in entries {
        let program = alloc::string::String::from_utf8_lossy(&entry.name);
        if entry.d_type != uapi::fs::DT_REG || !picks(filter, &alloc::format!("user::{program}")) {
            continue;
        }
        let path = alloc::format!("{USER_BENCH_DIR}/{program}");
        let path = path.as_str();
        let argv: &[&str] = if mode == Mode::Smoke { &[path, "smoke"] } else { &[path] };
        match crate::process::run_user(path, argv) {
            Ok((0, out)) => {
                let out = alloc::string::String::from_utf8_lossy(&out);
                let mut figures = 0;
                for line in out.lines().filter(|l| !l.trim().is_empty()) {
                    if is_figure(line) {
                        kprintln!("kbench: figure {line}");
                        figures += 1;
                    } else {
                        kprintln!("kbench: note {line}");
                    }
                }
                // A program that cannot measure here says why in a
                // `skip:` line (the thread benchmark without threads).
                if figures == 0 && !out.lines().any(|l| l.starts_with("skip: ")) {
                    kprintln!("kbench: FAILED {path} printed no figure");
                }
            }
            Ok((status, _)) => kprintln!("kbench: FAILED {path} ended with wait status {status:#x}"),
            Err(e) => kprintln!("kbench: FAILED {path} did not start: {e:?}"),
        }
    }
}

/// Whether `line` is a `user::<name> <value> <unit>` figure.
fn is_figure(line: &str) -> bool {
    let mut w = line.split_whitespace();
    matches!(
        (w.next(), w.next().map(str::parse::<f64>), w.next(), w.next()),
        (Some(name), Some(Ok(_)), Some(_), None) if name.starts_with("user::")
    )
}
