//! Runs `cargo xtask test`'s suites side by side: each suite (a boot smoke
//! test, a console test, a group of in-kernel tests that share a machine,
//! the GDB test, ...) is a [`Job`] that boots its own QEMU, and `--jobs N`
//! workers (default: one per core, `std::thread::available_parallelism`)
//! take jobs from one queue.
//!
//! Output stays readable and attributable: a job writes into its own
//! [`Suite`] buffer, which is printed as one block, headed by the suite's
//! name, when the job ends; so no two suites' lines interleave. The run
//! ends with every suite's wall time, longest first, the total, and the
//! failed tests by suite.
//!
//! The queue starts with the jobs that took longest in the previous run
//! (their times are kept in `target/xtask/suite-times`), so a long pole
//! starts first instead of last; a job never seen before counts as long.
//!
//! Locking: the queue's and the results' mutexes are taken alone, each for
//! one push or pop; stdout is locked only to print a whole block.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::runner::Totals;

/// Environment variable that sets the number of workers (as `--jobs`).
pub const JOBS_ENV: &str = "XTASK_JOBS";

/// Writes a line into a [`Suite`]'s block: `outln!(suite, "x = {x}")`.
macro_rules! outln {
    ($suite:expr) => {
        $suite.line(String::new())
    };
    ($suite:expr, $($arg:tt)*) => {
        $suite.line(format!($($arg)*))
    };
}
pub(crate) use outln;

/// A suite's output and counts while its job runs.
#[derive(Default)]
pub struct Suite {
    text: String,
    totals: Totals,
    failures: Vec<String>,
}

impl Suite {
    /// Adds a line to the block printed when the suite ends.
    pub fn line(&mut self, line: String) {
        self.text.push_str(&line);
        self.text.push('\n');
    }

    /// Counts a test that passed.
    pub fn passed(&mut self) {
        self.totals.passed += 1;
    }

    /// Counts a test that failed, remembered by name for the closing list.
    pub fn failed(&mut self, test: &str) {
        self.totals.failed += 1;
        self.failures.push(test.to_owned());
    }

    /// Counts a test that was skipped.
    pub fn skipped(&mut self) {
        self.totals.skipped += 1;
    }
}

type JobFn<'s> = Box<dyn FnOnce(&mut Suite) -> Result<(), Error> + Send + 's>;

/// One suite to run: a name (also its key in the timing file) and the work.
pub struct Job<'s> {
    name: String,
    run: JobFn<'s>,
}

impl<'s> Job<'s> {
    /// A job named `name` that runs `run`.
    pub fn new(name: impl Into<String>, run: impl FnOnce(&mut Suite) -> Result<(), Error> + Send + 's) -> Self {
        Job { name: name.into(), run: Box::new(run) }
    }
}

/// How many workers: `--jobs` if given, else `XTASK_JOBS`, else one per
/// core.
pub fn workers(jobs: Option<usize>) -> Result<usize, Error> {
    if let Some(n) = jobs {
        return if n == 0 { Err(Error::Usage("--jobs must be at least 1".into())) } else { Ok(n) };
    }
    if let Some(value) = std::env::var_os(JOBS_ENV) {
        let n = value.to_str().and_then(|s| s.trim().parse::<usize>().ok()).filter(|&n| n > 0);
        return n.ok_or_else(|| Error::Usage(format!("{JOBS_ENV}={value:?} is not a positive number")));
    }
    Ok(std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A finished suite, for the closing table.
struct Finished {
    name: String,
    wall: Duration,
    totals: Totals,
    failures: Vec<String>,
}

/// The previous run's wall time per suite (`seconds name` lines).
fn load_times(file: Option<&Path>) -> BTreeMap<String, f64> {
    let text = file.and_then(|f| std::fs::read_to_string(f).ok()).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (secs, name) = l.split_once(' ')?;
            Some((name.to_owned(), secs.parse().ok()?))
        })
        .collect()
}

/// Adds this run's times to the file (a filtered run keeps the others').
fn save_times(file: &Path, mut times: BTreeMap<String, f64>, finished: &[Finished]) {
    for f in finished {
        times.insert(f.name.clone(), f.wall.as_secs_f64());
    }
    let text: String = times.iter().map(|(name, secs)| format!("{secs:.1} {name}\n")).collect();
    // The times only order the next run's queue: losing them costs nothing.
    let _ = std::fs::write(file, text);
}

/// Puts `jobs` into the queue, the longest by the previous run first.
fn enqueue<'s>(queue: &mut VecDeque<Job<'s>>, jobs: Vec<Job<'s>>, times: &BTreeMap<String, f64>) {
    queue.extend(jobs);
    let cost = |j: &Job<'_>| times.get(&j.name).copied().unwrap_or(f64::INFINITY);
    queue.make_contiguous().sort_by(|a, b| cost(b).total_cmp(&cost(a)));
}

/// The next job, the queue's lock released before it runs.
fn next_job<'s>(queue: &Mutex<VecDeque<Job<'s>>>) -> Option<Job<'s>> {
    queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
}

/// Prints a finished suite's block at once.
fn print_block(name: &str, suite: &Suite, wall: Duration, error: Option<&Error>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\n== {name} ==");
    let _ = out.write_all(suite.text.as_bytes());
    if let Some(e) = error {
        let _ = writeln!(out, "error: {e}");
    }
    let _ = writeln!(out, "-- {name}: {} in {:.1} s", suite.totals.summary_line(), wall.as_secs_f64());
    let _ = out.flush();
}

/// Runs `jobs` on `workers` threads, each taking the next job from the
/// queue when it is free; prints each
/// suite's block as it ends, then the timing table and the failures.
/// A job that returns an error counts as one failure of its suite, and
/// the others go on. Suite times are read from and added to `times_file`
/// (the queue's order), if given.
pub fn run(jobs: Vec<Job<'_>>, workers: usize, times_file: Option<&Path>) -> Totals {
    let start = Instant::now();
    let times = load_times(times_file);
    let mut jobs_queue = VecDeque::new();
    enqueue(&mut jobs_queue, jobs, &times);
    let queue = Mutex::new(jobs_queue);
    let finished: Mutex<Vec<Finished>> = Mutex::new(Vec::new());
    println!("\nrunning test suites on {workers} worker(s) (--jobs N or {JOBS_ENV} to change)");
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while let Some(job) = next_job(&queue) {
                    let began = Instant::now();
                    let mut suite = Suite::default();
                    let result = (job.run)(&mut suite);
                    let wall = began.elapsed();
                    if result.is_err() {
                        suite.failed(&format!("{} (harness error)", job.name));
                    }
                    print_block(&job.name, &suite, wall, result.err().as_ref());
                    finished.lock().unwrap_or_else(|e| e.into_inner()).push(Finished {
                        name: job.name,
                        wall,
                        totals: suite.totals,
                        failures: suite.failures,
                    });
                }
            });
        }
    });
    let mut finished = finished.into_inner().unwrap_or_else(|e| e.into_inner());
    finished.sort_by_key(|f| std::cmp::Reverse(f.wall));
    let mut totals = Totals::default();
    println!("\n== suite wall times (longest first; {workers} worker(s)) ==");
    for f in &finished {
        totals += f.totals;
        println!("{:>8.1} s  {}  ({})", f.wall.as_secs_f64(), f.name, f.totals.summary_line());
    }
    let busy: f64 = finished.iter().map(|f| f.wall.as_secs_f64()).sum();
    println!("{:>8.1} s  total wall time ({busy:.1} s of suite time)", start.elapsed().as_secs_f64());
    let failed: Vec<&Finished> = finished.iter().filter(|f| !f.failures.is_empty()).collect();
    if !failed.is_empty() {
        println!("\nfailed:");
        for f in failed {
            for test in &f.failures {
                println!("  {test}  (suite {})", f.name);
            }
        }
    }
    if let Some(file) = times_file {
        save_times(file, times, &finished);
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn every_job_runs_and_counts_and_an_error_is_a_failure() {
        let ran = AtomicU32::new(0);
        let ran = &ran;
        let jobs = (0..5)
            .map(|i| {
                Job::new(format!("xtask-selftest-job{i}"), move |s: &mut Suite| {
                    ran.fetch_add(1, Ordering::SeqCst);
                    s.passed();
                    if i == 0 {
                        s.failed("job0::fails");
                    }
                    if i == 1 {
                        return Err(Error::Harness("broken".into()));
                    }
                    Ok(())
                })
            })
            .collect();
        let totals = run(jobs, 3, None);
        assert_eq!(ran.load(Ordering::SeqCst), 5);
        assert_eq!(totals, Totals { passed: 5, failed: 2, skipped: 0 });
    }

    #[test]
    fn two_workers_run_two_jobs_at_once() {
        // Each job waits for the other at the barrier: one worker would
        // never finish this.
        let barrier = std::sync::Barrier::new(2);
        let barrier = &barrier;
        let jobs = (0..2)
            .map(|i| {
                Job::new(format!("xtask-selftest-meet{i}"), move |s: &mut Suite| {
                    barrier.wait();
                    s.passed();
                    Ok(())
                })
            })
            .collect();
        assert_eq!(run(jobs, 2, None).passed, 2);
    }

    #[test]
    fn the_longest_previous_job_goes_first_and_new_ones_before_it() {
        let times: BTreeMap<String, f64> = [("a".to_owned(), 1.0), ("b".to_owned(), 50.0)].into();
        let mut q = VecDeque::new();
        let noop = |name: &str| Job::new(name, |_: &mut Suite| Ok(()));
        enqueue(&mut q, vec![noop("a"), noop("b"), noop("new")], &times);
        let order: Vec<&str> = q.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(order, ["new", "b", "a"]);
    }

    #[test]
    fn the_worker_count_comes_from_the_flag_first() {
        assert_eq!(workers(Some(3)).unwrap(), 3);
        assert!(workers(Some(0)).is_err());
    }
}
