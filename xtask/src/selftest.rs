//! Checks the harness on itself: runs the opt-in `selftest` suite, in which
//! tests fail, hang and wrongly succeed on purpose, and verifies that each is
//! reported as it should be, that the run continues past them, and that a
//! panic's backtrace resolves to the failing function.

use std::time::Instant;

use crate::error::Error;
use crate::jobs::{Suite, outln};
use crate::runner::{Outcome, Selection, TestKernel, TestResult};

/// The name this check reports under (and its filter matches).
pub const NAME: &str = "harness::failing_hanging_and_wrongly_passing_tests_are_reported";

/// (test, expected to pass, text the failure reason must contain)
const EXPECTATIONS: [(&str, bool, &str); 4] = [
    ("selftest::deliberately_failing_test", false, "deliberate failure"),
    ("selftest::deliberately_hanging_test", false, "timed out"),
    ("selftest::should_panic_test_that_returns", false, "should have panicked"),
    ("selftest::test_after_failures_still_runs", true, ""),
];

fn problems(results: &[TestResult], kernel: &TestKernel<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, passes, reason) in EXPECTATIONS {
        let Some(r) = results.iter().find(|r| r.name == name) else {
            problems.push(format!("{name}: no result"));
            continue;
        };
        match (&r.outcome, passes) {
            (Outcome::Passed, true) => {}
            (Outcome::Failed(why), false) if why.contains(reason) => {}
            (outcome, _) => problems.push(format!("{name}: got {outcome:?}, expected pass={passes} \"{reason}\"")),
        }
    }
    // The failing test's console must hold a backtrace whose frames resolve
    // back to the test function.
    let failing = results.iter().find(|r| r.name == EXPECTATIONS[0].0);
    let resolved = failing.is_some_and(|r| {
        r.log.iter().any(|l| l.contains("KERNEL PANIC"))
            && r.log.iter().filter_map(|l| kernel.annotate(l)).any(|a| a.contains("deliberately_failing_test"))
    });
    if !resolved {
        problems.push("the deliberate failure's backtrace did not resolve to the test function".into());
    }
    problems
}

/// Runs the self-test suite and reports one result line.
pub fn check_harness(kernel: &TestKernel<'_>, suite: &mut Suite) -> Result<(), Error> {
    outln!(suite, "(opt-in suite selftest)");
    let start = Instant::now();
    let tests = kernel.select(&Selection { filter: None, suite: Some("selftest".into()) });
    let results = kernel.run(&tests, "selftest")?;
    let problems = problems(&results, kernel);
    let secs = start.elapsed().as_secs_f64();
    if problems.is_empty() {
        suite.passed();
        outln!(suite, "xtask {NAME} ... ok ({secs:.2} s)");
    } else {
        suite.failed(NAME);
        outln!(suite, "xtask {NAME} ... FAILED ({secs:.2} s)");
        for p in problems {
            outln!(suite, "    {p}");
        }
    }
    Ok(())
}
