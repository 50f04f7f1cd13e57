//! Harness self-tests: deliberately failing and hanging tests. Opt-in, so a
//! normal run never sees them; `cargo xtask test` runs this suite on its own
//! and checks that each outcome is reported as it should be and that the run
//! continues past the failures.

use kernel::ktest;
use ktest_macros::ktest;

#[ktest(opt_in)]
fn deliberately_failing_test() {
    let answer = core::hint::black_box(41);
    assert_eq!(answer, 42, "deliberate failure");
}

#[ktest(opt_in, timeout = 3)]
fn deliberately_hanging_test() {
    loop {
        core::hint::spin_loop();
    }
}

#[ktest(opt_in, should_panic = "this text never appears")]
fn should_panic_test_that_returns() {}

#[ktest(opt_in)]
fn test_after_failures_still_runs() {
    let current = ktest::current().map(|t| t.name);
    assert_eq!(current, Some("test_after_failures_still_runs"));
}
