//! Boot smoke tests: the real kernel image (not the test kernel) boots under
//! BIOS and UEFI, prints the memory-map summary and reaches its idle loop.

use std::time::{Duration, Instant};

use crate::build::ImagesExt;
use crate::error::Error;
use crate::jobs::{Job, Suite, outln};
use crate::qemu::{self, Event, Firmware, Headless, Machine};
use crate::runner::RunOptions;
use crate::symbolize::Symbolizer;

/// The kernel's first line, for the boot-time figure.
const FIRST_LINE: &str = "mm kernel";
/// Lines the kernel must print, in order.
const MARKERS: [&str; 2] = ["memory map:", "entering idle loop"];
/// Generous bound on a boot under TCG (UEFI firmware alone takes seconds).
const SMOKE_TIMEOUT: Duration = Duration::from_secs(120);

/// A job per firmware: boot the kernel and check the markers.
pub fn jobs<'s>(
    elf: &'s std::path::Path,
    images: &'s boot::Images,
    options: &'s RunOptions,
    filter: Option<&str>,
) -> Vec<Job<'s>> {
    let mut jobs = Vec::new();
    for firmware in [Firmware::Bios, Firmware::Uefi] {
        let name = format!("boot_smoke::{}", firmware.to_string().to_lowercase());
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        jobs.push(Job::new(format!("boot smoke test, {firmware}"), move |suite: &mut Suite| {
            boot_smoke_test(elf, images, options, firmware, &name, suite)
        }));
    }
    jobs
}

/// Boots the kernel under `firmware` and checks the markers.
fn boot_smoke_test(
    elf: &std::path::Path,
    images: &boot::Images,
    options: &RunOptions,
    firmware: Firmware,
    name: &str,
    suite: &mut Suite,
) -> Result<(), Error> {
    outln!(suite, "(kernel image, {}, {firmware})", options.accel);
    let machine = Machine {
        accel: options.accel,
        firmware,
        mem_mib: qemu::DEFAULT_MEM_MIB,
        cpus: 1,
        // The block benchmarks read and write vda.
        scratch: Some(crate::scratch::ScratchDisk::blank(crate::bench::BENCH_DISK_MIB)),
        ext2_disk_mib: 0,
        swap_disk_mib: 0,
        disks: Vec::new(),
        gdb: None,
        cmdline: "loglevel=info".into(),
        fw_cfg_files: Vec::new(),
        extra_args: Vec::new(),
        interactive: false,
    };
    let start = Instant::now();
    let workdir = options.logs.join(format!("smoke-{}", firmware.to_string().to_lowercase()));
    let mut qemu = Headless::start(&machine, images.for_firmware(firmware), &workdir)?;
    let deadline = start + SMOKE_TIMEOUT;
    let mut console = Vec::new();
    let mut next_marker = 0;
    let mut first_line_after = None;
    let failure = loop {
        match qemu.next(deadline) {
            Some(Event::Line(line)) => {
                if options.verbose {
                    outln!(suite, "    | {line}");
                }
                if first_line_after.is_none() && line.contains(FIRST_LINE) {
                    first_line_after = Some(start.elapsed().as_secs_f64());
                }
                if line.contains(MARKERS[next_marker]) {
                    next_marker += 1;
                }
                console.push(line);
                if next_marker == MARKERS.len() {
                    break None;
                }
            }
            Some(Event::Exited(status)) => break Some(qemu::describe_exit(&status)),
            None => break Some(format!("timed out after {} s", SMOKE_TIMEOUT.as_secs())),
        }
    };
    qemu.kill();
    let secs = start.elapsed().as_secs_f64();
    match failure {
        None => {
            suite.passed();
            let first = first_line_after.map(|t| format!("; first kernel line after {t:.2} s")).unwrap_or_default();
            outln!(suite, "xtask {name} ... ok ({secs:.2} s{first})");
        }
        Some(why) => {
            suite.failed(name);
            outln!(suite, "xtask {name} ... FAILED ({secs:.2} s): {why}; missing \"{}\"", MARKERS[next_marker]);
            let symbolizer = Symbolizer::open(elf);
            for line in &console {
                outln!(suite, "    | {line}");
                if let Some(a) = symbolizer.annotate(line) {
                    outln!(suite, "    | {a}");
                }
            }
        }
    }
    Ok(())
}
