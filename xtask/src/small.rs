//! Small machines (issue 17): the kernel image with the initramfs boots at
//! the least memory xtask accepts and runs a user program; one MiB less is
//! refused before QEMU starts; and a kernel left with too little memory
//! says so in one line and exits QEMU instead of hanging.
//!
//! The least memory is the BIOS bootloader's, computed from the image
//! (`boot::Images::bios_min_mem`): the kernel itself needs far less, so its
//! own check is reached by limiting its RAM with `mem=`.

use std::time::{Duration, Instant};

use crate::build::ImagesExt;
use crate::console::{console_machine, record, run_headless, shell_cmdline};
use crate::error::Error;
use crate::jobs::{Job, Suite, outln};
use crate::qemu::{self, Firmware, Machine};
use crate::runner::RunOptions;

/// A boot at 23 MiB running hello takes under 5 s under TCG on an idle
/// machine; the bound is for a loaded one. A hang is what it catches.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The kernel's line when its memory is too small (kernel/src/mm.rs).
const NOT_ENOUGH: &str = "Kernel panic - not enough memory to boot:";

/// Runs the small-machine tests on `images` (the kernel with the initramfs).
pub fn jobs<'s>(images: &'s boot::Images, options: &'s RunOptions, filter: Option<&str>) -> Vec<Job<'s>> {
    let names = [
        "small::below_minimum_is_refused_before_qemu",
        "small::minimum_boots_and_runs_a_program",
        "small::too_little_for_the_kernel_says_so_and_exits",
    ];
    if !names.iter().any(|n| filter.is_none_or(|f| n.contains(f))) {
        return Vec::new();
    }
    let filter = filter.map(str::to_owned);
    vec![Job::new("small machines", move |suite: &mut Suite| test(images, options, filter.as_deref(), suite))]
}

fn test(images: &boot::Images, options: &RunOptions, filter: Option<&str>, suite: &mut Suite) -> Result<(), Error> {
    let (min_mib, _) = images.bios_min_mem().map_err(|e| Error::Harness(e.to_string()))?;
    let selected = |name: &str| filter.is_none_or(|f| name.contains(f));
    outln!(suite, "(kernel image, BIOS, {}; least memory {min_mib} MiB)", options.accel);

    let name = "small::below_minimum_is_refused_before_qemu";
    if selected(name) {
        let start = Instant::now();
        let verdict = match qemu::check_mem(images, Firmware::Bios, min_mib - 1) {
            Ok(()) => Err(format!("--mem {} accepted", min_mib - 1)),
            Err(e) if e.to_string().contains(&format!("at least {min_mib} MiB")) => Ok(()),
            Err(e) => Err(format!("refused without naming {min_mib} MiB: {e}")),
        }
        .and_then(|()| match qemu::check_mem(images, Firmware::Bios, min_mib) {
            Ok(()) => Ok(()),
            Err(e) => Err(format!("--mem {min_mib} refused: {e}")),
        });
        record(suite, name, start, verdict, None);
    }

    let name = "small::minimum_boots_and_runs_a_program";
    if selected(name) {
        let start = Instant::now();
        let machine = console_machine(options, 1, min_mib, shell_cmdline("loglevel=warn", "run /bin/hello")?);
        let (console, status, log) = boot(&machine, images, options, name, suite)?;
        let verdict = match status {
            None => Err(format!("timed out after {} s", TIMEOUT.as_secs())),
            Some(s) if s.code() != Some(qemu::EXIT_SUCCESS) => Err(qemu::describe_exit(&s)),
            Some(_) if !console.iter().any(|l| l == "PASS hello") => Err("no \"PASS hello\"".into()),
            Some(_) => Ok(()),
        };
        record(suite, name, start, verdict, Some(&log));
    }

    let name = "small::too_little_for_the_kernel_says_so_and_exits";
    if selected(name) {
        let start = Instant::now();
        let machine = console_machine(options, 1, min_mib, shell_cmdline("loglevel=warn mem=2M", "run /bin/hello")?);
        let (console, status, log) = boot(&machine, images, options, name, suite)?;
        let line = console.iter().find(|l| l.contains(NOT_ENOUGH));
        let verdict = match (status, line) {
            (None, _) => Err(format!("no exit within {} s (a hang)", TIMEOUT.as_secs())),
            (Some(s), _) if s.code() != Some(qemu::EXIT_FAILED) => Err(qemu::describe_exit(&s)),
            (Some(_), None) => Err(format!("no \"{NOT_ENOUGH}\" line")),
            (Some(_), Some(l)) if !(l.contains("MiB of RAM found") && l.contains("MiB needed")) => {
                Err(format!("the line names no sizes: {l}"))
            }
            (Some(_), Some(_)) => Ok(()),
        };
        record(suite, name, start, verdict, Some(&log));
    }
    Ok(())
}

type Boot = (Vec<String>, Option<std::process::ExitStatus>, std::path::PathBuf);

fn boot(
    machine: &Machine,
    images: &boot::Images,
    options: &RunOptions,
    name: &str,
    suite: &mut Suite,
) -> Result<Boot, Error> {
    let workdir = options.logs.join(name.replace("::", "-"));
    let (console, status) = run_headless(machine, images.for_firmware(machine.firmware), &workdir, TIMEOUT)?;
    let log = workdir.join("console.log");
    std::fs::write(&log, console.join("\n")).map_err(|e| Error::io(format!("writing {}", log.display()), e))?;
    if options.verbose {
        for line in &console {
            outln!(suite, "    | {line}");
        }
    }
    Ok((console, status, log))
}
