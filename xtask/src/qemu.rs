//! QEMU: finding it and its firmware, building its command line, and running
//! it either interactively or as a headless machine whose serial console we
//! read line by line.

use std::fmt;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use clap::ValueEnum;

use crate::error::{Error, show, which};
use crate::mkdisk::{BlockSize, Ext2Image, SwapImage};
use crate::scratch::ScratchDisk;
use crate::symbolize::Symbolizer;

/// QEMU binary name.
const QEMU: &str = "qemu-system-x86_64";
/// Default guest memory (MiB).
pub const DEFAULT_MEM_MIB: u32 = 512;
/// Default GDB server port (`-s`).
pub const GDB_PORT: u16 = 1234;

/// The swap disk's UUID ([`Machine::swap_disk_mib`]): fixed, so that
/// the image is the same on every boot.
const BENCH_SWAP_UUID: &str = "5a4b3c2d-0000-4000-8000-00000000be9c";

/// isa-debug-exit statuses: the kernel writes v, QEMU exits (v << 1) | 1
/// (kernel/src/drivers/qemu_exit.rs).
pub const EXIT_SUCCESS: i32 = (0x10 << 1) | 1;
/// The kernel panicked or failed.
pub const EXIT_FAILED: i32 = (0x11 << 1) | 1;

/// The `--accel` choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AccelChoice {
    /// KVM if /dev/kvm is usable and fast, else TCG.
    Auto,
    /// Hardware virtualisation; fails if unusable.
    Kvm,
    /// QEMU's software emulation; always available.
    Tcg,
}

/// The accelerator actually used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// KVM.
    Kvm,
    /// TCG.
    Tcg,
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        })
    }
}

/// Boot firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS (QEMU's default).
    Bios,
    /// OVMF.
    Uefi,
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Firmware::Bios => "BIOS",
            Firmware::Uefi => "UEFI",
        })
    }
}

/// Decides the accelerator. `auto` uses KVM only when a quick probe shows it
/// runs guest code at hardware speed: on nested-virtualisation hosts /dev/kvm
/// can exist and be orders of magnitude slower than TCG.
pub fn resolve_accel(choice: AccelChoice) -> Result<Accel, Error> {
    match choice {
        AccelChoice::Tcg => Ok(Accel::Tcg),
        AccelChoice::Kvm => crate::kvm::probe().map(|_| Accel::Kvm).map_err(Error::KvmUnavailable),
        AccelChoice::Auto => match crate::kvm::probe() {
            Ok(_) => Ok(Accel::Kvm),
            Err(why) => {
                eprintln!("note: using TCG ({why})");
                Ok(Accel::Tcg)
            }
        },
    }
}

/// A machine to boot.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Accelerator.
    pub accel: Accel,
    /// BIOS or UEFI.
    pub firmware: Firmware,
    /// Memory in MiB.
    pub mem_mib: u32,
    /// CPUs.
    pub cpus: u32,
    /// The scratch disk, the first virtio-blk disk (`vda`), if any.
    pub scratch: Option<ScratchDisk>,
    /// A virtio-blk disk of this many MiB holding a fresh, empty ext2 file
    /// system (0: none), made with the host's mke2fs ([`crate::mkdisk`],
    /// 4 KiB blocks) for each boot; it comes after the scratch disk and
    /// before [`Machine::disks`] (`vdb` beside a scratch disk). The
    /// file-system benchmarks' disk.
    pub ext2_disk_mib: u32,
    /// A virtio-blk disk of this many MiB holding a swap area on the whole
    /// disk (0: none), made with the host's util-linux mkswap
    /// ([`crate::mkdisk::SwapImage`]) for each boot; it comes after the
    /// ext2 disk and before [`Machine::disks`] (`vdc` beside a scratch
    /// and an ext2 disk). The swap benchmark's disk, which the program
    /// turns on itself.
    pub swap_disk_mib: u32,
    /// Raw images attached as virtio-blk disks, in order (`--disk`).
    pub disks: Vec<PathBuf>,
    /// Start stopped, with QEMU's GDB server on this local port.
    pub gdb: Option<u16>,
    /// Kernel command line (passed through fw_cfg).
    pub cmdline: String,
    /// Further fw_cfg files: (name, host path).
    pub fw_cfg_files: Vec<(String, PathBuf)>,
    /// Extra QEMU arguments, appended as they are.
    pub extra_args: Vec<String>,
    /// Serial console multiplexed with QEMU's monitor on the terminal
    /// (interactive) or plain serial on stdout (headless).
    pub interactive: bool,
}

/// The QEMU binary on PATH.
pub fn qemu_binary() -> Result<PathBuf, Error> {
    which(QEMU).ok_or(Error::MissingTool { tool: QEMU.into(), package: "qemu-system-x86" })
}

/// OVMF code and variable-store templates.
fn ovmf() -> Result<(PathBuf, PathBuf), Error> {
    if let (Some(code), Some(vars)) = (std::env::var_os("OVMF_CODE"), std::env::var_os("OVMF_VARS")) {
        let (code, vars) = (PathBuf::from(code), PathBuf::from(vars));
        for (var, path) in [("OVMF_CODE", &code), ("OVMF_VARS", &vars)] {
            if !path.is_file() {
                return Err(Error::MissingTool { tool: format!("{var}={}", show(path)), package: "ovmf" });
            }
        }
        return Ok((code, vars));
    }
    const CANDIDATES: [(&str, &str); 3] = [
        ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
        ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
        ("/usr/share/edk2/x64/OVMF_CODE.fd", "/usr/share/edk2/x64/OVMF_VARS.fd"),
    ];
    CANDIDATES
        .iter()
        .map(|(c, v)| (PathBuf::from(c), PathBuf::from(v)))
        .find(|(c, v)| c.is_file() && v.is_file())
        .ok_or(Error::MissingTool { tool: "OVMF firmware (OVMF_CODE.fd)".into(), package: "ovmf" })
}

impl Machine {
    /// The QEMU command for booting `image`. Scratch files (command line,
    /// UEFI variable store, scratch disk) go to `workdir`.
    pub fn command(&self, image: &Path, workdir: &Path) -> Result<Command, Error> {
        std::fs::create_dir_all(workdir).map_err(|e| Error::io(format!("creating {}", show(workdir)), e))?;
        let mut cmd = self.base_command()?;
        if self.firmware == Firmware::Uefi {
            let (code, vars) = ovmf()?;
            let vars_copy = workdir.join("OVMF_VARS.fd");
            std::fs::copy(&vars, &vars_copy).map_err(|e| Error::io(format!("copying {}", show(&vars)), e))?;
            cmd.arg("-drive").arg(format!("if=pflash,format=raw,readonly=on,file={}", show(&code)));
            cmd.arg("-drive").arg(format!("if=pflash,format=raw,file={}", show(&vars_copy)));
        }
        // snapshot=on: the image is never written, so several machines can
        // boot the same image at once.
        cmd.arg("-drive").arg(format!("format=raw,file={},snapshot=on", show(image)));
        self.attach_disks(&mut cmd, workdir)?;
        let cmdline = workdir.join("cmdline");
        std::fs::write(&cmdline, &self.cmdline).map_err(|e| Error::io(format!("writing {}", show(&cmdline)), e))?;
        cmd.arg("-fw_cfg").arg(format!("name=opt/kernel/cmdline,file={}", show(&cmdline)));
        for (name, path) in &self.fw_cfg_files {
            cmd.arg("-fw_cfg").arg(format!("name={name},file={}", show(path)));
        }
        Ok(cmd)
    }

    /// Adds this machine's virtio-blk disks to `cmd` in PCI order: the
    /// scratch disk, the ext2 disk, the swap disk, then the given images.
    /// The scratch, ext2 and swap disks are made anew in `workdir`. Our
    /// boots and the Linux comparison (`linux.rs`) attach them alike.
    pub fn attach_disks(&self, cmd: &mut Command, workdir: &Path) -> Result<(), Error> {
        if let Some(scratch) = &self.scratch {
            scratch.attach(cmd, workdir)?;
        }
        if self.ext2_disk_mib > 0 {
            let disk = workdir.join("ext2.img");
            Ext2Image { mib: self.ext2_disk_mib, block_size: BlockSize::K4, tree: None }.make(&disk)?;
            cmd.arg("-drive").arg(format!("if=none,id=ext2disk,format=raw,file={}", show(&disk)));
            cmd.args(["-device", "virtio-blk-pci,drive=ext2disk"]);
        }
        if self.swap_disk_mib > 0 {
            let disk = workdir.join("swap.img");
            SwapImage { mib: self.swap_disk_mib, label: "benchswap", uuid: BENCH_SWAP_UUID }.make(&disk)?;
            cmd.arg("-drive").arg(format!("if=none,id=swapdisk,format=raw,file={}", show(&disk)));
            cmd.args(["-device", "virtio-blk-pci,drive=swapdisk"]);
        }
        for (i, path) in self.disks.iter().enumerate() {
            if !path.is_file() {
                return Err(Error::Usage(format!("--disk {}: no such file", show(path))));
            }
            cmd.arg("-drive").arg(format!("if=none,id=disk{i},format=raw,file={}", show(path)));
            cmd.arg("-device").arg(format!("virtio-blk-pci,drive=disk{i}"));
        }
        Ok(())
    }

    /// QEMU with this machine's size, accelerator, devices, console, GDB
    /// server and extra arguments, but no firmware, disks or kernel: what
    /// our boots and the Linux comparison boot (`linux.rs`) share, so both
    /// run on the same machine.
    pub fn base_command(&self) -> Result<Command, Error> {
        let mut cmd = Command::new(qemu_binary()?);
        cmd.args(["-machine", "q35", "-m", &format!("{}M", self.mem_mib), "-smp", &self.cpus.to_string()]);
        match self.accel {
            Accel::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host"]),
            Accel::Tcg => cmd.args(["-accel", "tcg", "-cpu", "max"]),
        };
        cmd.args(["-display", "none", "-no-reboot", "-net", "none"]);
        cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        if self.interactive {
            cmd.args(["-serial", "mon:stdio"]);
        } else {
            cmd.args(["-serial", "stdio", "-monitor", "none"]);
        }
        if let Some(port) = self.gdb {
            cmd.args(["-gdb", &format!("tcp:127.0.0.1:{port}"), "-S"]);
        }
        cmd.args(&self.extra_args);
        Ok(cmd)
    }
}

/// Refuses a machine too small for the firmware and bootloader to get the
/// kernel running (see the `boot` crate's "Memory the BIOS boot needs"):
/// without this, such a machine hangs silently or after a bootloader panic.
pub fn check_mem(images: &boot::Images, firmware: Firmware, mem_mib: u32) -> Result<(), Error> {
    let needed = match firmware {
        Firmware::Bios => images.bios_min_mem(),
        Firmware::Uefi => images.uefi_min_mem(),
    };
    let (min_mib, why) = needed.map_err(|e| Error::Harness(e.to_string()))?;
    if mem_mib < min_mib {
        return Err(Error::Usage(format!(
            "--mem {mem_mib} is too small for this kernel: a {firmware} boot needs at least {min_mib} MiB ({why})"
        )));
    }
    Ok(())
}

/// Runs QEMU with the terminal as its console, annotating backtrace lines
/// with symbols as they pass. Returns the exit code to pass on.
pub fn run_interactive(machine: &Machine, image: &Path, symbolizer: &Symbolizer) -> Result<ExitCode, Error> {
    let workdir = crate::build::target_dir().join("xtask/run");
    let mut cmd = machine.command(image, &workdir)?;
    eprintln!("booting {} ({}, {}); Ctrl-A X quits", show(image), machine.accel, machine.firmware);
    cmd.stdout(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| Error::io("starting QEMU", e))?;
    if let Some(stdout) = child.stdout.take() {
        symbolizer.forward_annotated(stdout, &mut std::io::stdout());
    }
    let status = child.wait().map_err(|e| Error::io("waiting for QEMU", e))?;
    Ok(match status.code() {
        Some(EXIT_SUCCESS) | Some(0) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

/// Why a boot ended before the line it was waited on for.
#[derive(Debug)]
pub struct EarlyEnd {
    /// QEMU's exit status and stderr, or the timeout.
    pub why: String,
    /// The console up to then.
    pub console: Vec<String>,
}

/// What a headless machine produced next.
#[derive(Debug)]
pub enum Event {
    /// A line of serial output (without the line ending).
    Line(String),
    /// QEMU exited.
    Exited(ExitStatus),
}

/// A headless machine whose serial console arrives line by line.
pub struct Headless {
    child: Child,
    input: Option<ChildStdin>,
    events: Receiver<Event>,
    stderr: Receiver<String>,
    exited: bool,
    /// Set before QEMU is reaped, so the stderr thread never signals a
    /// reaped (and possibly reused) pid.
    reaped: Arc<AtomicBool>,
}

impl Headless {
    /// Boots `machine` from `image`.
    pub fn start(machine: &Machine, image: &Path, workdir: &Path) -> Result<Headless, Error> {
        Headless::spawn(machine.command(image, workdir)?)
    }

    /// Boots `machine` from `image` with a pipe to its serial input
    /// ([`Headless::send`]), as a terminal would type.
    pub fn start_with_input(machine: &Machine, image: &Path, workdir: &Path) -> Result<Headless, Error> {
        Headless::spawn_with(machine.command(image, workdir)?, Stdio::piped())
    }

    /// Runs a prepared QEMU command headless (its serial console on stdout).
    pub fn spawn(cmd: Command) -> Result<Headless, Error> {
        Headless::spawn_with(cmd, Stdio::null())
    }

    fn spawn_with(mut cmd: Command, stdin: Stdio) -> Result<Headless, Error> {
        cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| Error::io("starting QEMU", e))?;
        let (tx, events) = mpsc::channel();
        let stdout = child.stdout.take().ok_or_else(|| Error::Harness("QEMU stdout not captured".into()))?;
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        let line = line.trim_end_matches(['\n', '\r']).replace('\r', "");
                        if tx.send(Event::Line(line)).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let (etx, stderr) = mpsc::channel();
        let reaped = Arc::new(AtomicBool::new(false));
        if let Some(err) = child.stderr.take() {
            let pid = child.id();
            let reaped = reaped.clone();
            thread::spawn(move || {
                let mut text = String::new();
                let mut stopped = false;
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    // On a KVM internal error QEMU stops the guest and
                    // waits forever; end it so the run fails now, with
                    // this text as the reason, instead of at its timeout.
                    if !stopped && line.contains("KVM internal error") {
                        stopped = true;
                        if let Ok(pid) = libc::pid_t::try_from(pid)
                            && !reaped.load(Ordering::Acquire)
                        {
                            // SAFETY: kill(2) takes no pointers. The pid is
                            // our child's, not reaped as of the check just
                            // made (a reap in between would have to be
                            // followed by pid reuse to misfire).
                            unsafe { libc::kill(pid, libc::SIGTERM) };
                        }
                    }
                    text.push_str(&line);
                    text.push('\n');
                }
                let _ = etx.send(text);
            });
        }
        let input = child.stdin.take();
        Ok(Headless { child, input, events, stderr, exited: false, reaped })
    }

    /// Types `bytes` on the serial console (only after
    /// [`Headless::start_with_input`]).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let input = self.input.as_mut().ok_or_else(|| Error::Harness("QEMU started without serial input".into()))?;
        input.write_all(bytes).and_then(|()| input.flush()).map_err(|e| Error::io("typing on the serial console", e))
    }

    /// The next event, or `None` when `deadline` passes first. After the
    /// serial stream ends, reports QEMU's exit once.
    pub fn next(&mut self, deadline: Instant) -> Option<Event> {
        if self.exited {
            return None;
        }
        let timeout = deadline.saturating_duration_since(Instant::now());
        match self.events.recv_timeout(timeout) {
            Ok(event) => Some(event),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // stdout closed: QEMU is exiting; wait for it (bounded).
                let end = Instant::now() + Duration::from_secs(10);
                loop {
                    match self.child.try_wait() {
                        Ok(Some(status)) => {
                            self.reaped.store(true, Ordering::Release);
                            self.exited = true;
                            return Some(Event::Exited(status));
                        }
                        Ok(None) if Instant::now() < end => thread::sleep(Duration::from_millis(10)),
                        _ => {
                            self.kill();
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// Collects console lines up to and including the first for which
    /// `done` holds, then kills QEMU. Fails if QEMU exits or `timeout`
    /// passes first.
    pub fn lines_until(&mut self, timeout: Duration, done: impl Fn(&str) -> bool) -> Result<Vec<String>, EarlyEnd> {
        let deadline = Instant::now() + timeout;
        let mut console = Vec::new();
        loop {
            match self.next(deadline) {
                Some(Event::Line(line)) => {
                    let finished = done(&line);
                    console.push(line);
                    if finished {
                        self.kill();
                        return Ok(console);
                    }
                }
                Some(Event::Exited(status)) => {
                    let stderr = self.stderr();
                    let why = match stderr.is_empty() {
                        true => describe_exit(&status),
                        false => format!("{}; QEMU said: {stderr}", describe_exit(&status)),
                    };
                    return Err(EarlyEnd { why, console });
                }
                None => {
                    self.kill();
                    return Err(EarlyEnd { why: format!("timed out after {} s", timeout.as_secs()), console });
                }
            }
        }
    }

    /// Kills QEMU (idempotent).
    pub fn kill(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            self.reaped.store(true, Ordering::Release);
            let _ = self.child.wait();
            self.exited = true;
        }
    }

    /// What QEMU wrote to stderr (available once it has exited).
    pub fn stderr(&self) -> String {
        self.stderr.recv_timeout(Duration::from_secs(2)).unwrap_or_default().trim().to_owned()
    }
}

impl Drop for Headless {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Describes a QEMU exit status for a report.
pub fn describe_exit(status: &ExitStatus) -> String {
    match status.code() {
        Some(EXIT_SUCCESS) => "QEMU exited with status 33 (kernel reported success)".into(),
        Some(EXIT_FAILED) => "QEMU exited with status 35 (kernel reported failure)".into(),
        Some(0) => "QEMU exited with status 0: the guest reset or shut down (a triple fault?)".into(),
        Some(c) => format!("QEMU exited with status {c}"),
        None => "QEMU was killed by a signal".into(),
    }
}
