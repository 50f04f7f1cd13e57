//! The memory-management console: a shell on the serial console that
//! prints the mm's state in Linux's procfs formats and makes memory move.
//!
//! Linux has no shell in the kernel; this stands in for a user at a
//! terminal reading `/proc/meminfo`, `/proc/buddyinfo`, ... and writing
//! `/proc/sys/vm/drop_caches`. Each report command prints exactly what the
//! Linux file would hold for the fields we have (see [`report`]); the
//! other commands allocate, free and stress memory ([`stress`]) or run a
//! program from the initramfs.
//!
//! The console thread (`kshell`) polls COM1 every few milliseconds: there
//! is no I/O APIC driver yet to deliver the UART's interrupt. A long
//! command polls too, so Ctrl-C reaches it: `stress` stops, and `run`
//! sends SIGINT to its program, as a terminal's line discipline would.
//!
//! With `shell.cmd="CMD; CMD..."` on the command line (`cargo xtask run
//! --cmd`), the console runs those commands, echoing each after the
//! prompt, and powers off: QEMU exits with success if every command
//! succeeded and with failure otherwise, so scripts and tests can use it.

pub mod report;
pub mod stress;
pub mod tty;

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write as _};

use uapi::errno::Errno;

use crate::drivers::qemu_exit::{QemuExitCode, exit_qemu};
use crate::drivers::serial;
use crate::sync::SpinLock;
use tty::{Input, LineEditor};

/// The prompt.
pub const PROMPT: &str = "mm> ";

/// How often the console looks for input while idle or running a command.
const POLL_NS: u64 = 10_000_000;

/// Bytes read from the UART while a command ran, for the line editor (a
/// leaf lock, process context only).
static TYPEAHEAD: SpinLock<VecDeque<u8>> = SpinLock::new(VecDeque::new());

/// Why a command failed; printed as one line after the command's name.
#[derive(Debug, PartialEq, Eq)]
pub enum CmdError {
    /// No such command.
    Unknown,
    /// Wrong arguments; the text is the usage line.
    Usage(&'static str),
    /// An argument that is not a number or size.
    BadNumber(String),
    /// No task has this pid.
    NoSuchTask(u32),
    /// The task has no address space (a kernel thread, or it is exiting).
    NoMm(u32),
    /// An allocator said no.
    NoMemory(&'static str),
    /// No allocation of the console has this id.
    NoAlloc(u32),
    /// A pattern written into memory did not read back.
    Corrupt {
        /// The allocation's id.
        id: u32,
        /// Byte offset of the first wrong byte.
        offset: usize,
    },
    /// Stress found this many allocations whose pattern did not read back.
    BrokenPatterns(u64),
    /// A request the allocator cannot meet (e.g. an order above the largest).
    TooLarge(&'static str),
    /// Starting or waiting for a program failed.
    Spawn(Errno),
    /// Ctrl-C.
    Interrupted,
    /// `$!` before any program ran in the background.
    NoBackground,
    /// The mechanism does not exist yet.
    Unavailable(&'static str),
    /// `mkswap` refused or failed.
    Mkswap(crate::swapfile::mkswap::MkswapDiskError),
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::Unknown => f.write_str("unknown command (help lists them)"),
            CmdError::Usage(usage) => write!(f, "usage: {usage}"),
            CmdError::BadNumber(arg) => write!(f, "bad number '{arg}' (sizes take K, M or G)"),
            CmdError::NoSuchTask(pid) => write!(f, "no process with pid {pid}"),
            CmdError::NoMm(pid) => write!(f, "pid {pid} has no address space (kernel thread or exiting)"),
            CmdError::NoMemory(what) => write!(f, "out of memory: {what}"),
            CmdError::NoAlloc(id) => write!(f, "no allocation #{id} (alloc lists them)"),
            CmdError::Corrupt { id, offset } => write!(f, "allocation #{id}: pattern broken at byte {offset}"),
            CmdError::BrokenPatterns(n) => write!(f, "memory corruption: {n} allocations lost their pattern"),
            CmdError::TooLarge(why) => f.write_str(why),
            CmdError::Spawn(e) => write!(f, "{e}"),
            CmdError::Interrupted => f.write_str("interrupted"),
            CmdError::NoBackground => f.write_str("$!: no program was started with &"),
            CmdError::Unavailable(why) => f.write_str(why),
            CmdError::Mkswap(e) => write!(f, "{e}"),
        }
    }
}

/// `mount`: lists mounts, or mounts (Linux mount(8)'s basic form).
fn mount(_: &mut Shell, args: &[&str], out: &mut String) -> Result<Flow, CmdError> {
    const USAGE: &str = "mount [-r] [-t TYPE] [DEV DIR]";
    if args.is_empty() {
        out.push_str(&crate::fs::namespace::proc_mounts());
        return Ok(Flow::Continue);
    }
    let (mut read_only, mut fstype, mut rest) = (false, "ext2", Vec::new());
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        match a {
            "-r" => read_only = true,
            "-t" => fstype = it.next().ok_or(CmdError::Usage(USAGE))?,
            _ => rest.push(a),
        }
    }
    let [dev, dir] = rest[..] else { return Err(CmdError::Usage(USAGE)) };
    crate::fs::syscalls::kern::mount(dev, dir, fstype, read_only).map_err(CmdError::Spawn)?;
    Ok(Flow::Continue)
}

/// `umount DIR`.
fn umount(_: &mut Shell, args: &[&str], _: &mut String) -> Result<Flow, CmdError> {
    let [dir] = args else { return Err(CmdError::Usage("umount DIR")) };
    crate::fs::syscalls::kern::umount(dir).map_err(CmdError::Spawn)?;
    Ok(Flow::Continue)
}

/// `sysctl [NAME[=VALUE]]` (procps `sysctl`): every value, one, or sets
/// one; names as `vm.dirty_ratio` or `vm/dirty_ratio`.
fn sysctl(_: &mut Shell, args: &[&str], out: &mut String) -> Result<Flow, CmdError> {
    use crate::fs::proc_sysctl::{SYSCTLS, Sysctl};
    let show = |s: &Sysctl, out: &mut String| {
        if s.readable {
            let _ = write!(out, "{} = {}", s.path.replace('/', "."), (s.show)());
        }
    };
    match args {
        [] => SYSCTLS.iter().filter(|s| s.readable).for_each(|s| show(s, out)),
        [arg] => {
            let (name, value) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (*arg, None),
            };
            let path = alloc::format!("/proc/sys/{}", name.replace('.', "/"));
            let s = crate::fs::proc_sysctl::lookup(&path).ok_or(CmdError::Spawn(Errno::ENOENT))?;
            if let Some(value) = value {
                let store = s.store.ok_or(CmdError::Spawn(Errno::EPERM))?;
                store(value).map_err(CmdError::Spawn)?;
            }
            show(s, out);
        }
        _ => return Err(CmdError::Usage("sysctl [NAME[=VALUE]]")),
    }
    Ok(Flow::Continue)
}

/// `losetup FILE`: attaches a loop device (Linux `losetup -f --show`).
fn losetup(_: &mut Shell, args: &[&str], out: &mut String) -> Result<Flow, CmdError> {
    let [file] = args else { return Err(CmdError::Usage("losetup FILE")) };
    let dev = crate::fs::syscalls::kern::losetup(file).map_err(CmdError::Spawn)?;
    out.push_str(&dev);
    out.push('\n');
    Ok(Flow::Continue)
}

/// `swapon DEV [PRIO]` (util-linux `swapon [-p PRIO] DEV`): turns a
/// disk holding a swap header on as a swap area.
fn swapon(_: &mut Shell, args: &[&str], _: &mut String) -> Result<Flow, CmdError> {
    use crate::swapfile::swapon::{SwapOnFlags, do_swapon};
    const USAGE: &str = "swapon DEV [PRIO]  (PRIO 0..32767)";
    let (dev, prio) = match args {
        [dev] => (*dev, None),
        [dev, prio] => (*dev, Some(prio.parse::<u16>().map_err(|_| CmdError::Usage(USAGE))?)),
        _ => return Err(CmdError::Usage(USAGE)),
    };
    let flags = SwapOnFlags::with_prio(prio).ok_or(CmdError::Usage(USAGE))?;
    do_swapon(dev.as_bytes(), flags).map_err(CmdError::Spawn)?;
    Ok(Flow::Continue)
}

/// `swapoff DEV`.
fn swapoff(_: &mut Shell, args: &[&str], _: &mut String) -> Result<Flow, CmdError> {
    let [dev] = args else { return Err(CmdError::Usage("swapoff DEV")) };
    crate::swapfile::swapon::do_swapoff(dev.as_bytes()).map_err(CmdError::Spawn)?;
    Ok(Flow::Continue)
}

/// `mkswap DEV [LABEL]` (util-linux `mkswap [-L LABEL] DEV`): a swap
/// header with a random UUID; prints what util-linux prints.
fn mkswap(_: &mut Shell, args: &[&str], out: &mut String) -> Result<Flow, CmdError> {
    use crate::swapfile::mkswap::{mkswap_disk, random_uuid};
    let (dev, label) = match args {
        [dev] => (*dev, ""),
        [dev, label] => (*dev, *label),
        _ => return Err(CmdError::Usage("mkswap DEV [LABEL]")),
    };
    let made = mkswap_disk(dev.as_bytes(), label.as_bytes(), random_uuid()).map_err(CmdError::Mkswap)?;
    let bytes = u64::from(made.pages) * mm::PAGE_SIZE;
    let _ = writeln!(out, "Setting up swapspace version 1, size = {} KiB ({bytes} bytes)", bytes / 1024);
    let label = if label.is_empty() { String::from("no label") } else { alloc::format!("LABEL={label}") };
    let _ = writeln!(out, "{label}, UUID={}", made.uuid);
    Ok(Flow::Continue)
}

/// What the console does after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Power off.
    PowerOff,
}

/// One command: name, argument synopsis, help text, handler.
struct Command {
    name: &'static str,
    args: &'static str,
    help: &'static str,
    run: fn(&mut Shell, &[&str], &mut String) -> Result<Flow, CmdError>,
}

/// Every command, in `help` order.
const COMMANDS: &[Command] = &[
    Command { name: "help", args: "", help: "this list", run: help },
    Command { name: "meminfo", args: "", help: "/proc/meminfo", run: report::meminfo },
    Command { name: "buddyinfo", args: "", help: "/proc/buddyinfo: free blocks per order", run: report::buddyinfo },
    Command {
        name: "pagetypeinfo",
        args: "",
        help: "/proc/pagetypeinfo: ... per migratetype",
        run: report::pagetypeinfo,
    },
    Command { name: "zoneinfo", args: "", help: "/proc/zoneinfo", run: report::zoneinfo },
    Command { name: "slabinfo", args: "", help: "/proc/slabinfo", run: report::slabinfo },
    Command { name: "vmstat", args: "", help: "/proc/vmstat: counters", run: report::vmstat },
    Command { name: "vmallocinfo", args: "", help: "/proc/vmallocinfo", run: report::vmallocinfo },
    Command { name: "memblock", args: "", help: "boot memory regions (memblock)", run: report::memblock },
    Command { name: "ps", args: "", help: "processes and kernel threads", run: report::ps },
    Command { name: "maps", args: "PID", help: "/proc/PID/maps", run: report::maps },
    Command { name: "kmemmap", args: "", help: "physical memory, one character per pageblock", run: report::kmemmap },
    Command {
        name: "run",
        args: "PROGRAM [ARGS...] [&]",
        help: "run a program from the initramfs (& : in the background, pid in $!)",
        run,
    },
    Command {
        name: "alloc",
        args: "[SIZE [order|kmalloc|vmalloc]]",
        help: "allocate and fill memory (no SIZE: list)",
        run: stress::alloc,
    },
    Command { name: "free", args: "[ID|all]", help: "check and free allocations (default: all)", run: stress::free },
    Command {
        name: "stress",
        args: "MIB SECONDS",
        help: "mixed allocations up to MIB, patterns checked",
        run: stress::stress,
    },
    Command {
        name: "drop_caches",
        args: "",
        help: "shrink slab caches, drain per-cpu lists, purge lazy vmalloc areas",
        run: stress::drop_caches,
    },
    Command { name: "compact", args: "", help: "memory compaction", run: stress::compact },
    Command {
        name: "mount",
        args: "[-r] [-t TYPE] [DEV DIR]",
        help: "list mounts (/proc/mounts), or mount DEV on DIR (ext2 by default)",
        run: mount,
    },
    Command { name: "umount", args: "DIR", help: "unmount the file system on DIR", run: umount },
    Command { name: "losetup", args: "FILE", help: "a loop device over FILE (prints /dev/loopN)", run: losetup },
    Command { name: "mkswap", args: "DEV [LABEL]", help: "write a swap header on a disk (random UUID)", run: mkswap },
    Command { name: "swapon", args: "DEV [PRIO]", help: "use a disk as a swap area (priority 0..32767)", run: swapon },
    Command { name: "swapoff", args: "DEV", help: "stop using a swap area", run: swapoff },
    Command { name: "swaps", args: "", help: "/proc/swaps: the swap areas", run: report::swaps },
    Command { name: "lspci", args: "", help: "PCI functions, as lspci -nn", run: report::lspci },
    Command { name: "diskstats", args: "", help: "/proc/diskstats: I/O per disk", run: report::diskstats },
    Command {
        name: "sysctl",
        args: "[NAME[=VALUE]]",
        help: "show /proc/sys values (vm.dirty_ratio ...), or set one",
        run: sysctl,
    },
    Command { name: "poweroff", args: "", help: "power the machine off", run: poweroff },
];

/// The console's state: allocations made with `alloc`.
pub struct Shell {
    /// Live allocations, oldest first.
    pub allocs: Vec<stress::Allocation>,
    next_id: u32,
    /// The pid of the last program started with `&` (the shell's `$!`).
    last_background: Option<u32>,
}

impl Default for Shell {
    fn default() -> Self {
        Self::new()
    }
}

impl Shell {
    /// A console with nothing allocated.
    pub const fn new() -> Self {
        Shell { allocs: Vec::new(), next_id: 1, last_background: None }
    }

    /// The next allocation id.
    fn take_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Runs one command line (words separated by spaces); its output goes
    /// to `out`. An empty line does nothing.
    pub fn execute(&mut self, line: &str, out: &mut String) -> Result<Flow, CmdError> {
        let last = self.last_background.map(|pid| alloc::format!("{pid}"));
        let words = line
            .split_ascii_whitespace()
            .map(|w| match (w, &last) {
                ("$!", Some(pid)) => Ok(pid.as_str()),
                ("$!", None) => Err(CmdError::NoBackground),
                _ => Ok(w),
            })
            .collect::<Result<Vec<&str>, CmdError>>()?;
        let Some((&name, args)) = words.split_first() else { return Ok(Flow::Continue) };
        let command = COMMANDS.iter().find(|c| c.name == name).ok_or(CmdError::Unknown)?;
        (command.run)(self, args, out)
    }
}

fn help(_: &mut Shell, _: &[&str], out: &mut String) -> Result<Flow, CmdError> {
    for c in COMMANDS {
        let synopsis = if c.args.is_empty() { String::from(c.name) } else { alloc::format!("{} {}", c.name, c.args) };
        let _ = writeln!(out, "  {synopsis:<40} {}", c.help);
    }
    let _ = writeln!(out, "Keys: Backspace, Ctrl-U (erase line), arrows (history), Ctrl-C (interrupt).");
    Ok(Flow::Continue)
}

fn poweroff(_: &mut Shell, _: &[&str], _: &mut String) -> Result<Flow, CmdError> {
    Ok(Flow::PowerOff)
}

/// `run PROGRAM [ARGS...] [&]`: a program from the initramfs (a bare name
/// means /bin/NAME), as a child of the console; Ctrl-C sends it SIGINT.
/// With `&` the console does not wait: the pid goes to `$!`, and the end
/// is reported before a later prompt.
fn run(shell: &mut Shell, args: &[&str], out: &mut String) -> Result<Flow, CmdError> {
    let (args, background) = match args.split_last() {
        Some((&"&", rest)) => (rest, true),
        _ => (args, false),
    };
    let Some(&program) = args.first() else { return Err(CmdError::Usage("run PROGRAM [ARGS...] [&]")) };
    let path = if program.starts_with('/') { String::from(program) } else { alloc::format!("/bin/{program}") };
    crate::fs::syscalls::kern_path(&path).map_err(CmdError::Spawn)?;
    let mut argv: Vec<&str> = Vec::with_capacity(args.len());
    argv.push(&path);
    argv.extend_from_slice(&args[1..]);
    let task = crate::process::spawn_user(&path, &argv, None).map_err(CmdError::Spawn)?;
    let pid = task.pid;
    if background {
        shell.last_background = Some(pid);
        let _ = writeln!(out, "[{pid}] {path}");
        return Ok(Flow::Continue);
    }
    let status = loop {
        match crate::process::do_wait(pid as i32, true) {
            Ok(Some(reaped)) => break reaped.status,
            Ok(None) | Err(Errno::EINTR) => {}
            Err(e) => return Err(CmdError::Spawn(e)),
        }
        // Every Ctrl-C is a SIGINT, as n_tty sends one per INTR character.
        if interrupted() {
            crate::signal::send_signal(&task, uapi::signal::SIGINT, None);
        }
        sleep_ns(POLL_NS);
    };
    let _ = writeln!(out, "{path}: pid {pid} {}", Ended(status));
    Ok(Flow::Continue)
}

/// How a program ended, from its wait status.
struct Ended(u32);

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 & 0x7f {
            0 => write!(f, "exited with status {}", (self.0 >> 8) & 0xff),
            signal => write!(f, "killed by signal {signal}"),
        }
    }
}

/// Reports background programs that ended, and reaps them.
fn reap_background(out: &mut String) {
    while let Ok(Some(reaped)) = crate::process::do_wait(-1, true) {
        let _ = writeln!(out, "[{}] done: {}", reaped.pid, Ended(reaped.status));
    }
}

/// Sleeps about `ns` nanoseconds.
fn sleep_ns(ns: u64) {
    crate::sched::wait::sleep_until_ns(crate::arch::x86_64::tsc::now_ns() + ns, || false);
}

/// Whether Ctrl-C arrived since the last call: reads what the UART holds,
/// keeping other bytes for the line editor. Long commands call this.
pub fn interrupted() -> bool {
    let mut seen = false;
    while let Some(byte) = serial::try_read_byte() {
        if byte == 0x03 {
            seen = true;
        } else {
            TYPEAHEAD.lock().push_back(byte);
        }
    }
    seen
}

/// The next input byte: typed ahead, or from the UART.
fn next_byte() -> Option<u8> {
    let queued = TYPEAHEAD.lock().pop_front();
    queued.or_else(serial::try_read_byte)
}

/// Writes console text.
fn print(text: &str) {
    serial::with_console(|w| {
        let _ = w.write_str(text);
    });
}

/// Runs `line`, prints its output or its one-line error; returns whether
/// it succeeded and what to do next.
fn run_line(shell: &mut Shell, line: &str) -> (bool, Flow) {
    let mut out = String::new();
    let result = shell.execute(line, &mut out);
    reap_background(&mut out);
    print(&out);
    match result {
        Ok(flow) => (true, flow),
        Err(e) => {
            let name = line.split_ascii_whitespace().next().unwrap_or("");
            print(&alloc::format!("{name}: {e}\n"));
            (false, Flow::Continue)
        }
    }
}

/// Starts the console thread.
pub fn start() {
    if let Err(e) = crate::sched::kthread_run("kshell", console_main) {
        log::error!("console: cannot start the console thread: {e:?}");
    }
}

fn console_main() {
    let mut shell = Shell::new();
    if let Some(commands) = crate::cmdline::get("shell.cmd") {
        // A cut command line would run a cut command (`stress 25` for
        // `stress 256 10`): refuse it rather than guess.
        if crate::cmdline::truncated() || commands.split(';').all(|c| c.trim().is_empty()) {
            print("console: shell.cmd is empty or the command line was cut; nothing run, powering off\n");
            exit_qemu(QemuExitCode::Failed);
        }
        let mut ok = true;
        for line in commands.split(';').map(str::trim).filter(|l| !l.is_empty()) {
            print(&alloc::format!("{PROMPT}{line}\n"));
            let (done, flow) = run_line(&mut shell, line);
            ok &= done;
            if flow == Flow::PowerOff {
                break;
            }
        }
        print(if ok { "console: commands done, powering off\n" } else { "console: a command failed, powering off\n" });
        exit_qemu(if ok { QemuExitCode::Success } else { QemuExitCode::Failed });
    }
    print("\nmm console: `help` lists the commands.\n");
    let mut editor = LineEditor::new(PROMPT);
    print(PROMPT);
    loop {
        let Some(byte) = next_byte() else {
            sleep_ns(POLL_NS);
            continue;
        };
        let mut echo = String::new();
        let input = editor.feed(byte, &mut echo);
        print(&echo);
        match input {
            Input::Pending => continue,
            Input::Interrupt => {}
            Input::Line(line) => {
                if run_line(&mut shell, &line).1 == Flow::PowerOff {
                    print("console: powering off\n");
                    exit_qemu(QemuExitCode::Success);
                }
            }
        }
        print(editor.prompt());
    }
}
