//! Threads: `tests/user/thread_test.c` (musl pthreads, passes on Linux)
//! on four CPUs: an address space changed by four threads at once and
//! checked against their models, a page munmapped under a reader on
//! another CPU (it must fault, never read the freed page), signals to
//! threads and processes, and how a process with threads ends.

use kernel::process::run_user;
use ktest_macros::ktest;

#[ktest(cpus = 4, timeout = 300)]
fn threads_share_an_address_space_across_cpus_as_on_linux() {
    let (status, out) = run_user("/bin/thread_test", &["/bin/thread_test"]).expect("run thread_test");
    let out = alloc::string::String::from_utf8_lossy(&out);
    assert!(status == 0 && out.contains("PASS thread_test"), "thread_test: status {status:#x}; output:\n{out}");
}
