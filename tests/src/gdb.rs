//! The kernel side of the GDB test (xtask/src/gdb.rs): opt-in, run only
//! when xtask asks for it with gdb attached. It prints the kernel's own
//! /proc/buddyinfo and stops at [`ktest_gdb_checkpoint`] with interrupts
//! off, so that gdb's `mm-buddyinfo` reads the very state printed; then it
//! runs /bin/gdb_fault, whose first write to 0x50000000 gdb catches in
//! `do_user_addr_fault`.

use kernel::ktest::ktest_gdb_checkpoint;
use kernel::process::run_user;
use ktest_macros::ktest;

#[ktest(opt_in, timeout = 300)]
fn a_user_fault_at_a_known_address() {
    x86_64::instructions::interrupts::without_interrupts(|| {
        kernel::kprintln!(
            "gdb-test: buddyinfo begin\n{}gdb-test: buddyinfo end",
            mm::vmstat::Buddyinfo(kernel::mm::pgdat())
        );
        ktest_gdb_checkpoint();
    });
    let (status, out) = run_user("/bin/gdb_fault", &["gdb_fault"]).unwrap_or_else(|e| panic!("gdb_fault: {e:?}"));
    let out = alloc::string::String::from_utf8_lossy(&out);
    assert!(status == 0 && out.contains("PASS gdb_fault"), "gdb_fault failed (status {status:#x}):\n{out}");
}
