//! Host unit tests: `cargo test` on every crate that runs on the host.
//!
//! Those are the workspace's `default-members` (Cargo.toml), which a plain
//! `cargo test` at the workspace root builds; naming crates here instead had
//! let `uapi`, whose tests check the ABI against the host's Linux headers,
//! drop out of the run unnoticed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::error::Error;
use crate::runner::Totals;
use crate::workspace_root;

/// Runs the host tests, passing cargo's output through, and counts results
/// from libtest's `test result:` lines.
pub fn run_host_tests(filter: Option<&str>) -> Result<Totals, Error> {
    println!("== host tests: cargo test (the workspace's default-members) ==");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root()).arg("test");
    cmd.arg("--");
    if let Some(f) = filter {
        cmd.arg(f);
    }
    // One line per test with its time (libtest's nightly --report-time; the
    // toolchain is pinned to a nightly).
    cmd.args(["-Z", "unstable-options", "--report-time"]);
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| Error::io("running cargo test", e))?;
    let mut totals = Totals::default();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            if let Some(t) = parse_test_result(&line) {
                totals += t;
            }
        }
    }
    let status = child.wait().map_err(|e| Error::io("waiting for cargo test", e))?;
    if !status.success() && totals.failed == 0 {
        println!("host tests: cargo test failed before running tests (build error?)");
        totals.failed += 1;
    }
    Ok(totals)
}

/// Parses `test result: ok. 5 passed; 1 failed; 2 ignored; 0 measured; ...`.
fn parse_test_result(line: &str) -> Option<Totals> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let (_, counts) = rest.split_once(". ")?;
    let mut t = Totals::default();
    for part in counts.split(';') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else { continue };
        let Ok(n) = n.parse::<u32>() else { continue };
        match what {
            "passed" => t.passed += n,
            "failed" => t.failed += n,
            "ignored" => t.skipped += n,
            _ => {}
        }
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_summaries_are_counted() {
        let t = parse_test_result(
            "test result: FAILED. 5 passed; 1 failed; 2 ignored; 0 measured; 3 filtered out; finished in 0.01s",
        );
        assert_eq!(t, Some(Totals { passed: 5, failed: 1, skipped: 2 }));
        assert_eq!(parse_test_result("running 5 tests"), None);
    }
}
