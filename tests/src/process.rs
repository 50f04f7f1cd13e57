//! User processes: the test programs of tests/user run from the initramfs
//! (static musl binaries that also pass under Linux), each checking Linux
//! semantics itself and printing PASS or FAIL.

use alloc::string::String;

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

#[ktest(timeout = 120)]
fn fork_cow_and_wait_behave_as_on_linux() {
    check_passes("fork_test", &["fork_test"]);
}

#[ktest(timeout = 120)]
fn signals_and_efault_behave_as_on_linux() {
    check_passes("signal_test", &["signal_test"]);
}

#[ktest(timeout = 120)]
fn the_stack_grows_on_demand() {
    check_passes("stack_test", &["stack_test"]);
}
