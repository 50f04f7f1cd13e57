//! The lint step of `cargo xtask test`: what STYLE.md promises ("`cargo fmt`
//! and `cargo clippy` clean"), checked before anything slow is built, so a
//! formatting slip or a warning fails the run in a minute, not after the QEMU
//! suites.
//!
//! The host crates are the workspace's `default-members` (Cargo.toml): a
//! cargo command without `--package` run at the workspace root takes exactly
//! those, so a crate added there is linted and tested with no change here.
//! The kernel crates build only for the bare-metal target, the way
//! [`crate::build::kernel_elf`] builds them.

use std::process::Command;

use crate::build::KERNEL_TARGET;
use crate::error::Error;
use crate::workspace_root;

/// The checks in the order they run, cheapest first: the arguments after
/// `cargo`.
const CHECKS: [&[&str]; 3] = [
    &["fmt", "--all", "--check"],
    // Every target of the host crates, their tests included.
    &["clippy", "--all-targets", "--", "-D", "warnings"],
    &["clippy", "--package", "kernel", "--package", "ktests", "--target", KERNEL_TARGET, "--", "-D", "warnings"],
];

/// Runs every check, stopping at the first that fails; the error names its
/// command so it can be rerun as it is.
pub fn run() -> Result<(), Error> {
    for args in CHECKS {
        let command = format!("cargo {}", args.join(" "));
        println!("== lint: {command} ==");
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .current_dir(workspace_root())
            .args(args)
            .status()
            .map_err(|e| Error::io(format!("running {command}"), e))?;
        if !status.success() {
            return Err(Error::LintFailed(command));
        }
    }
    Ok(())
}
