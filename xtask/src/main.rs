//! `cargo xtask`: build, run and test the kernel.
//!
//! - `cargo xtask build`: the kernel ELF and its BIOS and UEFI disk images;
//! - `cargo xtask run`: boot it in QEMU with the serial console on the terminal;
//! - `cargo xtask test [FILTER]`: lint (rustfmt, clippy), host tests, then
//!   the in-kernel tests under QEMU, ending with one `N passed, N failed, N skipped` line;
//! - `cargo xtask lint`: that lint step alone;
//! - `cargo xtask bench`: benchmarks, in our kernel and beside Linux;
//! - `cargo xtask gdb`: the kernel stopped under gdb with the mm helpers;
//! - `cargo xtask memmap`: a picture of physical memory, one cell per
//!   pageblock, from the mm console's `kmemmap`;
//! - `cargo xtask mkdisk DIR OUT`: a raw ext2 image of a directory, for
//!   `run --disk`.
//!
//! `cargo xtask <command> --help` lists each command's options.

mod bench;
mod build;
mod console;
mod diskcheck;
mod error;
mod gdb;
mod host;
mod initramfs;
mod jobs;
mod kvm;
mod lint;
mod linux;
mod linux_module;
mod memmap;
mod mkdisk;
mod plot;
mod qemu;
mod runner;
mod scratch;
mod selftest;
mod small;
mod smoke;
mod symbolize;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::build::ImagesExt;
use crate::build::Profile;
use crate::error::Error;
use crate::qemu::{AccelChoice, Firmware};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run and test the mm kernel")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build the kernel ELF and its BIOS and UEFI disk images.
    Build {
        /// Build with optimisations (the release profile).
        #[arg(long)]
        release: bool,
        /// Put this file in the images as the ramdisk.
        #[arg(long)]
        ramdisk: Option<PathBuf>,
    },
    /// Boot the kernel in QEMU with the serial console on this terminal
    /// (Ctrl-A X quits QEMU, Ctrl-A C toggles its monitor).
    Run(RunArgs),
    /// Lint (rustfmt, clippy -D warnings), run host unit tests, then every
    /// in-kernel test under QEMU.
    Test(TestArgs),
    /// Run the lint step of `test` alone: rustfmt and clippy -D warnings on
    /// the host crates and on the kernel for its target.
    Lint,
    /// Run the in-kernel benchmarks in an optimised kernel; print a table and
    /// write JSON to target/bench/.
    Bench(BenchArgs),
    /// Boot the kernel (or one in-kernel test) stopped, with QEMU's GDB
    /// server on a free port, and start gdb with the mm helper commands
    /// (gdb/mm.py); the serial console goes to target/xtask/gdb/console.log.
    Gdb(GdbArgs),
    /// Boot, run mm console commands (--cmd), dump the pageblock map with
    /// `kmemmap` and render every dump of the console as an SVG in
    /// target/memmap/ (memmap-1.svg, ...).
    Memmap(MemmapArgs),
    /// Make a raw ext2 image holding a directory's tree with the host's
    /// `mke2fs -t ext2 -d DIR` (a sparse file, reproducible: fixed UUID,
    /// hash seed and creation time, no blocks reserved for root), e.g.
    /// for `run --disk OUT`.
    Mkdisk(MkdiskArgs),
}

#[derive(Args)]
struct MkdiskArgs {
    /// The directory to copy into the file system.
    dir: PathBuf,
    /// The image to write (a regular file there is replaced).
    out: PathBuf,
    /// Size of the image in MiB.
    #[arg(long, default_value_t = 64)]
    size: u32,
    /// File-system block size in bytes.
    #[arg(long, value_enum, default_value = "4096")]
    block_size: mkdisk::BlockSize,
}

#[derive(Args)]
struct MemmapArgs {
    /// Console commands to run first, separated by `;` (e.g. "kmemmap;
    /// stress 256 10": a map before the stress run, and one after).
    #[arg(long, default_value = "")]
    cmd: String,
    /// Write the pictures here instead of target/memmap.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Accelerator (default: auto, as for `run`).
    #[arg(long, value_enum, env = "XTASK_ACCEL")]
    accel: Option<AccelChoice>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    #[command(flatten)]
    boot: BootArgs,
}

#[derive(Args)]
struct GdbArgs {
    /// Boot the test kernel running only this test (e.g.
    /// process::mmap_family_behaves_as_on_linux) instead of the kernel.
    #[arg(long)]
    test: Option<String>,
    /// Do not start gdb: print how to attach from another terminal or an
    /// IDE, and keep QEMU running.
    #[arg(long)]
    no_gdb: bool,
    /// Accelerator (default tcg: a debugger wants a machine it can stop).
    #[arg(long, value_enum, env = "XTASK_ACCEL")]
    accel: Option<AccelChoice>,
    /// Boot through UEFI (OVMF) instead of BIOS.
    #[arg(long)]
    uefi: bool,
    #[command(flatten)]
    boot: BootArgs,
}

/// The machine's size and the kernel command line (`run` and `gdb`).
#[derive(Args)]
struct BootArgs {
    /// Guest memory in MiB.
    #[arg(long, default_value_t = qemu::DEFAULT_MEM_MIB)]
    mem: u32,
    /// Number of CPUs.
    #[arg(long, default_value_t = 1)]
    cpus: u32,
    /// Kernel command line (e.g. "loglevel=debug" or "init=/bin/mmap_test").
    #[arg(long, default_value = "")]
    cmdline: String,
}

#[derive(Args)]
struct BenchArgs {
    /// Run only benchmarks whose name contains this text.
    filter: Option<String>,
    /// Boots to aggregate (median of medians).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Accelerator (default: auto, as for `run`).
    #[arg(long, value_enum, env = "XTASK_ACCEL")]
    accel: Option<AccelChoice>,
    /// TCG with -icount shift=0: guest time counts instructions, so figures
    /// repeat exactly (implies --accel tcg).
    #[arg(long)]
    icount: bool,
    /// Compare with an earlier JSON report.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = qemu::DEFAULT_MEM_MIB)]
    mem: u32,
    /// Number of CPUs.
    #[arg(long, default_value_t = 1)]
    cpus: u32,
    /// Also run the benchmarks under Linux in the same QEMU configuration:
    /// the in-kernel ones through a module (tests/linux-module, built
    /// against that kernel's linux-headers) and the user-space ones
    /// (tests/user/bench). Linux is the given bzImage, or Debian's
    /// linux-image-amd64 fetched with apt-get, booted with
    /// `init_on_alloc=0 mitigations=off` unless --linux-stock.
    #[arg(long, value_name = "BZIMAGE", num_args = 0..=1)]
    vs_linux: Option<Option<PathBuf>>,
    /// With --vs-linux: boot Linux with its distribution's defaults
    /// (allocations zeroed, CPU mitigations on) instead of the comparable
    /// `init_on_alloc=0 mitigations=off`.
    #[arg(long, requires = "vs_linux")]
    linux_stock: bool,
    /// Measure nothing: render SVG charts from the latest reports in
    /// target/bench/ (kernel.svg, and vs-linux.svg if a Linux report exists).
    #[arg(long)]
    plot: bool,
}

/// Options shared by every command that boots a machine.
#[derive(Args, Clone)]
struct MachineArgs {
    /// Accelerator: auto (KVM when a probe shows /dev/kvm works well, else
    /// TCG), kvm or tcg. Default: auto for `run`, tcg for `test` (tests must
    /// behave the same on every machine, and nested KVM can be slow or hang).
    #[arg(long, value_enum, env = "XTASK_ACCEL")]
    accel: Option<AccelChoice>,
    /// Boot through UEFI (OVMF) instead of BIOS.
    #[arg(long)]
    uefi: bool,
    /// Build with optimisations (the release profile).
    #[arg(long)]
    release: bool,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    machine: MachineArgs,
    #[command(flatten)]
    boot: BootArgs,
    /// Load this file as the ramdisk instead of the initramfs built from
    /// tests/user (target/initramfs.cpio).
    #[arg(long)]
    ramdisk: Option<PathBuf>,
    /// Attach this raw disk image as a virtio-blk disk (repeatable: the
    /// kernel names them vda, vdb, .. in the order given). The image is
    /// written by the guest.
    #[arg(long = "disk", value_name = "PATH")]
    disks: Vec<PathBuf>,
    /// Start QEMU's GDB server on localhost:1234 and wait for a debugger.
    #[arg(long)]
    gdb: bool,
    /// Run these mm console commands (separated by `;`, e.g. "meminfo;
    /// buddyinfo") and power off instead of waiting for input; exits with
    /// failure if a command failed.
    #[arg(long)]
    cmd: Option<String>,
    /// Extra arguments passed to QEMU as they are (after `--`).
    #[arg(last = true)]
    qemu_args: Vec<String>,
}

#[derive(Args)]
struct TestArgs {
    #[command(flatten)]
    machine: MachineArgs,
    /// Run only tests whose name contains this text.
    filter: Option<String>,
    /// Run one suite (module of tests/src), including opt-in suites such as
    /// `selftest`.
    #[arg(long)]
    suite: Option<String>,
    /// Skip the lint step and the host unit tests (`cargo test` of the host
    /// crates).
    #[arg(long)]
    no_host: bool,
    /// Show the whole serial console of every boot.
    #[arg(long, short)]
    verbose: bool,
    /// Suites (QEMU boots) to run at once; default one per core (also
    /// XTASK_JOBS).
    #[arg(long, short)]
    jobs: Option<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build { release, ramdisk } => build_cmd(Profile::from_release(release), ramdisk.as_deref()),
        Command::Run(args) => run_cmd(args),
        Command::Test(args) => test_cmd(args),
        Command::Lint => lint::run().map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench_cmd(args),
        Command::Gdb(args) => gdb_cmd(args),
        Command::Memmap(args) => memmap_cmd(args),
        Command::Mkdisk(args) => mkdisk_cmd(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn build_cmd(profile: Profile, ramdisk: Option<&std::path::Path>) -> Result<ExitCode, Error> {
    let elf = build::kernel_elf(build::KernelBin::Kernel, profile)?;
    let images = build::images(&elf, "kernel", ramdisk)?;
    println!("kernel ELF:  {}", elf.display());
    println!("BIOS image:  {}", images.bios.display());
    println!("UEFI image:  {}", images.uefi.display());
    Ok(ExitCode::SUCCESS)
}

fn run_cmd(args: RunArgs) -> Result<ExitCode, Error> {
    let profile = Profile::from_release(args.machine.release);
    let elf = build::kernel_elf(build::KernelBin::Kernel, profile)?;
    let ramdisk = match args.ramdisk {
        Some(given) => given,
        None => initramfs::build()?,
    };
    let images = build::images(&elf, "kernel", Some(&ramdisk))?;
    let accel = qemu::resolve_accel(args.machine.accel.unwrap_or(AccelChoice::Auto))?;
    let firmware = if args.machine.uefi { Firmware::Uefi } else { Firmware::Bios };
    qemu::check_mem(&images, firmware, args.boot.mem)?;
    let cmdline = match &args.cmd {
        Some(commands) => console::shell_cmdline(&args.boot.cmdline, commands)?,
        None => args.boot.cmdline,
    };
    let machine = qemu::Machine {
        accel,
        firmware,
        mem_mib: args.boot.mem,
        cpus: args.boot.cpus,
        scratch: None,
        ext2_disk_mib: 0,
        swap_disk_mib: 0,
        disks: args.disks,
        gdb: args.gdb.then_some(qemu::GDB_PORT),
        cmdline,
        fw_cfg_files: Vec::new(),
        extra_args: args.qemu_args,
        interactive: args.cmd.is_none(),
    };
    if args.gdb {
        println!(
            "QEMU waits for a debugger on localhost:{}. In another terminal:\n  gdb {} -ex 'target remote :{}'",
            qemu::GDB_PORT,
            elf.display(),
            qemu::GDB_PORT
        );
    }
    let status = qemu::run_interactive(&machine, images.for_firmware(firmware), &symbolize::Symbolizer::open(&elf))?;
    Ok(status)
}

fn test_cmd(args: TestArgs) -> Result<ExitCode, Error> {
    let workers = jobs::workers(args.jobs)?;
    let mut totals = runner::Totals::default();
    let filter = args.filter.as_deref();

    if !args.no_host && args.suite.is_none() {
        // Lints first: they fail in a minute, the QEMU suites take many.
        lint::run()?;
        totals += host::run_host_tests(filter)?;
    }

    let profile = Profile::from_release(args.machine.release);
    let accel = qemu::resolve_accel(args.machine.accel.unwrap_or(AccelChoice::Tcg))?;
    let firmware = if args.machine.uefi { Firmware::Uefi } else { Firmware::Bios };
    let logs = build::target_dir().join("xtask/logs");
    // Logs describe the latest run only; a stale log must not be mistaken
    // for this run's.
    if logs.exists() {
        std::fs::remove_dir_all(&logs).map_err(|e| Error::io(format!("clearing {}", logs.display()), e))?;
    }
    let options = runner::RunOptions { accel, firmware, verbose: args.verbose, logs };

    // Everything is built first; then every suite is a job of its own.
    let kernel_elf = build::kernel_elf(build::KernelBin::Kernel, profile)?;
    let kernel_images = build::images(&kernel_elf, "kernel", None)?;
    let console_images = build::images(&kernel_elf, "kernel-initramfs", Some(&initramfs::build()?))?;
    let ktests_elf = build::kernel_elf(build::KernelBin::Ktests, profile)?;
    let ktests_images = build::images(&ktests_elf, "ktests", Some(&initramfs::build()?))?;
    let test_kernel = runner::TestKernel::new(&ktests_elf, &ktests_images, &options)?;
    let selection = runner::Selection { filter: filter.map(str::to_owned), suite: args.suite.clone() };
    println!("\n{}", test_kernel.summary(&selection));

    let mut suites = Vec::new();
    if args.suite.is_none() {
        suites.extend(smoke::jobs(&kernel_elf, &kernel_images, &options, filter));
        suites.extend(console::jobs(&console_images, &options, filter));
        suites.extend(small::jobs(&console_images, &options, filter));
        suites.extend(diskcheck::jobs(&console_images, &options, filter));
    }
    suites.extend(test_kernel.jobs(&selection));
    if args.suite.is_none() {
        suites.push(jobs::Job::new("benchmark smoke run", |suite: &mut jobs::Suite| {
            bench::smoke(&ktests_images, accel, &options.logs, filter, suite);
            Ok(())
        }));
        if filter.is_none_or(|f| gdb::TEST_NAME.contains(f)) {
            suites.push(jobs::Job::new("GDB helper commands", |suite: &mut jobs::Suite| {
                gdb::test(&ktests_images, &ktests_elf, profile, accel, &options.logs, suite)
            }));
        }
        if filter.is_none_or(|f| selftest::NAME.contains(f)) {
            suites.push(jobs::Job::new("harness self-check", |suite: &mut jobs::Suite| {
                selftest::check_harness(&test_kernel, suite)
            }));
        }
    }
    totals += jobs::run(suites, workers, Some(&build::target_dir().join("xtask/suite-times")));

    println!();
    println!("{}", totals.summary_line());
    Ok(if totals.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn gdb_cmd(args: GdbArgs) -> Result<ExitCode, Error> {
    let options = gdb::GdbOptions {
        test: args.test,
        no_gdb: args.no_gdb,
        accel: qemu::resolve_accel(args.accel.unwrap_or(AccelChoice::Tcg))?,
        firmware: if args.uefi { Firmware::Uefi } else { Firmware::Bios },
        mem_mib: args.boot.mem,
        cpus: args.boot.cpus,
        cmdline: args.boot.cmdline,
    };
    gdb::run(&options)
}

fn memmap_cmd(args: MemmapArgs) -> Result<ExitCode, Error> {
    let elf = build::kernel_elf(build::KernelBin::Kernel, Profile::Dev)?;
    let images = build::images(&elf, "kernel-initramfs", Some(&initramfs::build()?))?;
    let commands = match args.cmd.trim().trim_end_matches(';') {
        "" => "kmemmap; poweroff".to_owned(),
        given => format!("{given}; kmemmap; poweroff"),
    };
    qemu::check_mem(&images, Firmware::Bios, args.boot.mem)?;
    let machine = qemu::Machine {
        accel: qemu::resolve_accel(args.accel.unwrap_or(AccelChoice::Auto))?,
        firmware: Firmware::Bios,
        mem_mib: args.boot.mem,
        cpus: args.boot.cpus,
        scratch: None,
        ext2_disk_mib: 0,
        swap_disk_mib: 0,
        disks: Vec::new(),
        gdb: None,
        cmdline: console::shell_cmdline(&args.boot.cmdline, &commands)?,
        fw_cfg_files: Vec::new(),
        extra_args: Vec::new(),
        interactive: false,
    };
    let workdir = build::target_dir().join("xtask/memmap");
    eprintln!("memmap: booting ({}, {} MiB, {} CPUs) to run: {commands}", machine.accel, machine.mem_mib, machine.cpus);
    let (lines, status) = console::run_headless(
        &machine,
        images.for_firmware(Firmware::Bios),
        &workdir,
        std::time::Duration::from_secs(args.timeout),
    )?;
    let log = workdir.join("console.log");
    let text = lines.join("\n");
    std::fs::write(&log, &text).map_err(|e| Error::io(format!("writing {}", log.display()), e))?;
    // A failed boot or command still renders what it dumped, then fails.
    let failure = match status {
        Some(s) if s.code() == Some(qemu::EXIT_SUCCESS) => None,
        Some(s) => Some(qemu::describe_exit(&s)),
        None => Some(format!("timed out after {} s", args.timeout)),
    };
    let out = args.out.unwrap_or_else(console::memmap_dir);
    let cpus = if args.boot.cpus == 1 { "1 CPU".to_owned() } else { format!("{} CPUs", args.boot.cpus) };
    let title = format!("{} MiB, {cpus}; console: {}", args.boot.mem, commands.trim_end_matches("; poweroff"));
    for path in memmap::render_console(&text, &out, &title)? {
        println!("memmap: {}", path.display());
    }
    match failure {
        None => Ok(ExitCode::SUCCESS),
        Some(why) => {
            eprintln!("memmap: {why} (a command failed or the boot did not finish); console in {}", log.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn mkdisk_cmd(args: &MkdiskArgs) -> Result<ExitCode, Error> {
    let image = mkdisk::Ext2Image { mib: args.size, block_size: args.block_size, tree: Some(&args.dir) };
    image.make(&args.out)?;
    println!(
        "{}: ext2, {} MiB, {}-byte blocks, holding {}",
        args.out.display(),
        args.size,
        args.block_size.bytes(),
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn bench_cmd(args: BenchArgs) -> Result<ExitCode, Error> {
    if args.plot {
        for path in bench::plot()? {
            println!("chart: {}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let elf = build::kernel_elf(build::KernelBin::Ktests, Profile::Release)?;
    let images = build::images(&elf, "ktests", Some(&initramfs::build()?))?;
    let accel =
        if args.icount { qemu::Accel::Tcg } else { qemu::resolve_accel(args.accel.unwrap_or(AccelChoice::Auto))? };
    let options = bench::BenchOptions {
        filter: args.filter,
        runs: args.runs.max(1),
        accel,
        icount: args.icount,
        mem_mib: args.mem,
        cpus: args.cpus,
        baseline: args.baseline,
    };
    // The Linux side's tools and files are checked before minutes of our
    // own measuring, not after.
    let linux = match &args.vs_linux {
        Some(bzimage) => {
            let bzimage = linux::bzimage(bzimage.as_deref())?;
            let module = linux_module::build(&bzimage)?;
            Some((bzimage, module))
        }
        None => None,
    };
    let (path, ours) = bench::run(&images, &options)?;
    println!("\nreport: {}", path.display());
    if let Some((bzimage, module)) = linux {
        let cmdline = linux::cmdline(args.linux_stock, bench::kernel_filter(options.filter.as_deref()).as_deref());
        eprintln!("bench: the same benchmarks under {} ({accel}), command line: {cmdline}", bzimage.display());
        let figures = linux::run(&bzimage, &module, &options.machine(), &cmdline)?;
        let path = bench::write_linux_report(&bzimage, &cmdline, &options, &ours, figures)?;
        println!("\nreport: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The workspace root (xtask lives one level below it).
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}
