//! `cargo xtask gdb` and the GDB test of `cargo xtask test`.
//!
//! `cargo xtask gdb [--test NAME]` boots the kernel (or the test kernel
//! running one test) stopped, with QEMU's GDB server on a free local port
//! and the serial console in `target/xtask/gdb/console.log`, and starts gdb
//! with the kernel ELF, the x86-64 architecture and the helper commands of
//! `gdb/mm.py` (mm-pte, mm-page, mm-vmas, mm-fault, ...). `--no-gdb` only
//! prints how to attach.
//!
//! The test runs gdb in batch mode against the test kernel's opt-in test
//! `gdb::a_user_fault_at_a_known_address` (tests/src/gdb.rs): it stops at
//! `ktest_gdb_checkpoint`, where `mm-buddyinfo` must print exactly the
//! /proc/buddyinfo the kernel printed just before, then in
//! `do_user_addr_fault` for the write to 0x50000000, where `mm-fault`,
//! `mm-pte` and `mm-vmas` must show that address, its decoded error code,
//! its VMA and the page-table walk, and where `mm-pagecache` and `mm-page`
//! must show the page cache of the ext2 file the test wrote and the
//! program mapped: the inode and device the kernel printed, its four
//! pages, and page 1 by its mapped address; and where `mm-rmap` must
//! find the one pte of the faulted anonymous page (through its
//! `anon_vma`) and of the file's page 1 (through the file's `i_mmap`).

use std::fs::File;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::build::{self, ImagesExt, KernelBin, Profile};
use crate::error::{Error, show};
use crate::jobs::{Suite, outln};
use crate::qemu::{Accel, Firmware, Machine};
use crate::runner::DEFAULT_TEST_MEM_MIB;

/// The test kernel's test the GDB test drives.
const GDB_TEST: &str = "gdb::a_user_fault_at_a_known_address";
/// Where its user program writes first (tests/user/gdb_fault.c).
const FAULT_ADDR: u64 = 0x5000_0000;
/// The ext2 file the test kernel writes, and its size: three pages and
/// part of a fourth (tests/src/gdb.rs CACHED_FILE, CACHED_SIZE).
const CACHED_FILE: &str = "/gdb-ext2/cached";
const CACHED_SIZE: u64 = 3 * 4096 + 1000;
/// Where the program maps the file's first two pages (gdb_fault.c).
const FILE_ADDR: u64 = 0x6000_0000;
/// The name the test reports under (and its filter matches).
pub const TEST_NAME: &str = "xtask gdb::helpers_read_a_user_fault";
/// The whole batch session must end within this: a bound on a hang only
/// (a boot alone took a minute with the machine shared by several builds).
const GDB_TEST_TIMEOUT: Duration = Duration::from_secs(480);

/// What `cargo xtask gdb` starts.
pub struct GdbOptions {
    /// Run this test of the test kernel instead of booting the kernel.
    pub test: Option<String>,
    /// Print how to attach instead of starting gdb.
    pub no_gdb: bool,
    /// Accelerator.
    pub accel: Accel,
    /// Firmware.
    pub firmware: Firmware,
    /// Memory, MiB.
    pub mem_mib: u32,
    /// CPUs.
    pub cpus: u32,
    /// Kernel command line.
    pub cmdline: String,
}

/// The gdb executable, if installed.
pub fn gdb_binary() -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|dir| Path::new(dir).join("gdb")).find(|p| p.is_file())
}

/// The helper commands gdb sources.
fn scripts() -> PathBuf {
    crate::workspace_root().join("gdb/mm.py")
}

/// QEMU's GDB server socket: a listener on a free local port, bound here
/// and handed to QEMU as an open descriptor. Picking a free port and
/// letting QEMU bind it later raced with every other program doing the
/// same: on a machine shared by several test runs, another run's QEMU
/// could take the port first, and gdb then drove that run's machine. Bound
/// here, the port is ours from the start, and gdb can connect at once (the
/// connection waits in the listen queue until QEMU accepts it).
struct GdbServer {
    listener: TcpListener,
    port: u16,
}

impl GdbServer {
    fn bind() -> Result<GdbServer, Error> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| Error::io("binding a local port for gdb", e))?;
        let port = listener.local_addr().map_err(|e| Error::io("binding a local port for gdb", e))?.port();
        Ok(GdbServer { listener, port })
    }

    /// The QEMU arguments that serve GDB on the socket, with the machine
    /// stopped at its first instruction.
    fn qemu_args(&self) -> Vec<String> {
        let fd = self.listener.as_raw_fd();
        vec![
            "-chardev".into(),
            format!("socket,id=gdb0,fd={fd},server=on,wait=off"),
            "-gdb".into(),
            "chardev:gdb0".into(),
            "-S".into(),
        ]
    }

    /// Lets the process `cmd` starts, and only it, inherit the socket
    /// (the jobs of `cargo xtask test` start other QEMUs at the same time).
    fn pass_to(&self, cmd: &mut Command) {
        let fd = self.listener.as_raw_fd();
        // SAFETY: the closure runs in the child between fork and exec, and
        // only calls fcntl(2), which is async-signal-safe; `fd` stays open
        // until the spawn has returned, since `self` outlives `cmd`'s use.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// The arguments that make gdb load `elf` and the helpers and attach.
fn gdb_args(elf: &Path, port: u16) -> Vec<String> {
    vec![
        "-q".into(),
        show(elf),
        "-ex".into(),
        "set architecture i386:x86-64".into(),
        "-ex".into(),
        format!("source {}", show(&scripts())),
        "-ex".into(),
        format!("target remote 127.0.0.1:{port}"),
    ]
}

/// A test plan file naming one test.
fn plan_file(dir: &Path, test: &str) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", show(dir)), e))?;
    let plan = dir.join("plan");
    std::fs::write(&plan, format!("{test}\n")).map_err(|e| Error::io(format!("writing {}", show(&plan)), e))?;
    Ok(plan)
}

/// Starts QEMU stopped with its GDB server on `server`, console to
/// `dir/console.log`.
fn start_qemu(machine: &Machine, image: &Path, dir: &Path, server: &GdbServer) -> Result<Child, Error> {
    let mut machine = machine.clone();
    machine.extra_args.extend(server.qemu_args());
    let mut cmd = machine.command(image, dir)?;
    server.pass_to(&mut cmd);
    let log = dir.join("console.log");
    let file = File::create(&log).map_err(|e| Error::io(format!("creating {}", show(&log)), e))?;
    cmd.stdin(Stdio::null()).stdout(file).stderr(Stdio::inherit());
    cmd.spawn().map_err(|e| Error::io("starting QEMU", e))
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// `cargo xtask gdb`.
pub fn run(options: &GdbOptions) -> Result<ExitCode, Error> {
    let bin = if options.test.is_some() { KernelBin::Ktests } else { KernelBin::Kernel };
    let elf = build::kernel_elf(bin, Profile::Dev)?;
    let name = if options.test.is_some() { "ktests" } else { "kernel" };
    let images = build::images(&elf, name, Some(&crate::initramfs::build()?))?;
    let dir = build::target_dir().join("xtask/gdb");
    let fw_cfg_files = match &options.test {
        Some(test) => vec![("opt/kernel/ktest-plan".to_owned(), plan_file(&dir, test)?)],
        None => Vec::new(),
    };
    let server = GdbServer::bind()?;
    let port = server.port;
    let machine = Machine {
        accel: options.accel,
        firmware: options.firmware,
        mem_mib: options.mem_mib,
        cpus: options.cpus,
        scratch: None,
        ext2_disk_mib: 0,
        swap_disk_mib: 0,
        disks: Vec::new(),
        gdb: None,
        cmdline: options.cmdline.clone(),
        fw_cfg_files,
        extra_args: Vec::new(),
        interactive: false,
    };
    let gdb = match options.no_gdb {
        true => None,
        false => Some(gdb_binary().ok_or(Error::MissingTool { tool: "gdb".into(), package: "gdb" })?),
    };
    let mut qemu = start_qemu(&machine, images.for_firmware(options.firmware), &dir, &server)?;
    let console = dir.join("console.log");
    println!("QEMU is stopped at the first instruction, GDB server on 127.0.0.1:{port}");
    println!("serial console: tail -f {}", show(&console));
    let status = if let Some(gdb) = gdb {
        let status = Command::new(gdb).args(gdb_args(&elf, port)).status();
        kill(&mut qemu);
        match status.map_err(|e| Error::io("running gdb", e))?.success() {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        }
    } else {
        println!(
            "attach with:\n  gdb -q {} -ex 'set architecture i386:x86-64' -ex 'source {}' -ex 'target remote 127.0.0.1:{port}'",
            show(&elf),
            show(&scripts())
        );
        println!("or from an IDE: remote target 127.0.0.1:{port}, symbols {}", show(&elf));
        println!("QEMU runs until it exits or you press Ctrl-C.");
        qemu.wait().map_err(|e| Error::io("waiting for QEMU", e))?;
        ExitCode::SUCCESS
    };
    Ok(status)
}

/// The batch commands of the test, with `@@ name` lines between sections.
/// A failing command ends a gdb script, so the bad-argument check is last.
/// The checkpoint's breakpoint goes once it was hit: continuing from a
/// breakpoint makes gdb step over it first, and under a loaded host QEMU's
/// gdbstub has reported that step as a second stop at the checkpoint
/// (seen twice), which left the fault's `continue` short of the fault.
/// Before `finish` every breakpoint goes, so that the only thing that can
/// stop the machine is do_user_addr_fault returning: the walk after it
/// then shows the fault's outcome, whatever the timing. gdb gives up on a
/// reply from the remote after 2 s by default; a loaded host's QEMU can
/// take longer, so the script waits a minute. The inode number gdb has
/// to be given is known only once the kernel has written the file, so
/// `mm-pagecache INODE DEV` takes the numbers `mm-page` printed (a few
/// lines of gdb Python, which also print that `mm-page`: each command
/// costs seconds of round trips to a loaded host's QEMU).
fn batch_script(port: u16) -> String {
    let file_page1 = FILE_ADDR + 4096;
    let (swap, migration) = (x86_swap_pte(SWAP_PTE.0, SWAP_PTE.1), x86_swap_pte(MIGRATION_PTE.0, MIGRATION_PTE.1));
    format!(
        "set pagination off
set confirm off
set width 0
set remotetimeout 60
target remote 127.0.0.1:{port}
break ktest_gdb_checkpoint
break do_user_addr_fault if address == {FAULT_ADDR:#x}
continue
echo @@ buddyinfo\\n
mm-buddyinfo
echo @@ slabinfo\\n
mm-slabinfo
echo @@ -\\n
delete 1
continue
echo @@ fault\\n
mm-fault
echo @@ vmas\\n
mm-vmas
echo @@ tasks\\n
mm-tasks
echo @@ dmesg\\n
mm-dmesg 40
echo @@ pagecaches\\n
mm-pagecache
echo @@ pagecache\\n
mm-pagecache {CACHED_FILE}
echo @@ page\\n
python
import re
page = gdb.execute(\"mm-page -v {file_page1:#x}\", to_string=True)
gdb.write(page + \"@@ pagecache-inode\\n\")
inode = re.search(r\"page cache of inode (\\d+) \\(dev (\\S+)\\)\", page)
gdb.execute(\"mm-pagecache %s %s\" % inode.groups())
end
delete
echo @@ finish\\n
finish
echo @@ pte\\n
mm-pte {FAULT_ADDR:#x}
echo @@ rmap\\n
mm-rmap -v {FAULT_ADDR:#x}
echo @@ rmap-file\\n
mm-rmap -v {file_page1:#x}
echo @@ swap\\n
python gdb.write(swap_pte_text({swap:#x}) + \"\\n\" + swap_pte_text({migration:#x}) + \"\\n\")
echo @@ bad\\n
mm-pte
"
    )
}

/// The swap entry (area, offset) whose pte `mm-pte`'s decoder is given:
/// an area not in use, so the text is known without a swap disk.
const SWAP_PTE: (u64, u64) = (3, 12345);
/// A migration entry (write) of pfn 0x1234, as a swap type and offset.
const MIGRATION_PTE: (u64, u64) = (31, 0x1234);

/// A non-present x86_64 pte holding swap entry (`ty`, `offset`): the
/// type in the top 5 bits, the offset inverted from bit 14 (the kernel's
/// `X86PteFormat::encode_swp`, mm/src/arch/x86_64.rs; Linux `__swp_entry`).
fn x86_swap_pte(ty: u64, offset: u64) -> u64 {
    (!offset << 14 >> 5) | (ty << 59)
}

/// The text of section `name` of gdb's output.
fn section<'a>(out: &'a str, name: &str) -> &'a str {
    let marker = format!("@@ {name}\n");
    let Some(start) = out.find(&marker).map(|i| i + marker.len()) else { return "" };
    let end = out[start..].find("@@ ").map_or(out.len(), |i| start + i);
    &out[start..end]
}

/// The buddyinfo the kernel printed between its markers.
fn kernel_buddyinfo(console: &str) -> Option<String> {
    kernel_report(console, "buddyinfo")
}

/// The report `name` the kernel printed between its markers
/// ("gdb-test: NAME begin" and "... end"), each line's end trimmed.
fn kernel_report(console: &str, name: &str) -> Option<String> {
    let start = console.find(&format!("gdb-test: {name} begin"))?;
    let end = console[start..].find(&format!("gdb-test: {name} end"))? + start;
    let body = &console[start..end];
    Some(body.lines().skip(1).map(|l| l.trim_end().to_owned() + "\n").collect())
}

/// What is wrong with mm-slabinfo at the checkpoint: it must print the
/// kernel's own report, read from the caches' per-CPU and node state.
/// (mm-meminfo is not run here: its scan of the memory map takes minutes
/// over a loaded host's gdb link.)
fn check_slabinfo(out: &str, console: &str) -> Vec<String> {
    let slab: String = section(out, "slabinfo").lines().map(|l| l.trim_end().to_owned() + "\n").collect();
    match kernel_report(console, "slabinfo") {
        Some(k) if k == slab && k.contains("vm_area_struct") => Vec::new(),
        Some(k) => vec![format!("mm-slabinfo differs from the kernel's report:\n{slab}kernel:\n{k}")],
        None => vec!["the kernel's slabinfo report is missing from the console".into()],
    }
}

/// The inode and device (`MAJ:MIN`) the kernel printed for the file it
/// cached: "gdb-test: cached file PATH inode N dev D".
fn cached_file(console: &str) -> Option<(String, String)> {
    let line = console.lines().find_map(|l| l.trim_end().strip_prefix("gdb-test: cached file "))?;
    match line.split_whitespace().collect::<Vec<_>>()[..] {
        [CACHED_FILE, "inode", ino, "dev", dev] => Some((ino.to_owned(), dev.to_owned())),
        _ => None,
    }
}

/// What is wrong with the page-cache sections of gdb's output, given the
/// cached file's inode and device as the kernel printed them.
fn check_page_cache(out: &str, ino: &str, dev: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let pages = CACHED_SIZE.div_ceil(4096).to_string();
    let size = CACHED_SIZE.to_string();
    // MAPPING INODE DEV NRPAGES DIRTY I_SIZE FILE
    let all = section(out, "pagecaches");
    let listed = all.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() == 7 && [f[1], f[2], f[3], f[5], f[6]] == [ino, dev, &pages, &size, CACHED_FILE]
    });
    if !listed {
        problems.push(format!("mm-pagecache lacks inode {ino} (dev {dev}, {pages} pages, {CACHED_FILE}):\n{all}"));
    }
    let file = section(out, "pagecache");
    let title = format!("page cache of inode {ino} (dev {dev}): {CACHED_FILE}");
    let indices: Vec<&str> =
        file.lines().filter(|l| l.contains("UPTODATE")).filter_map(|l| l.split_whitespace().next()).collect();
    if !file.starts_with(&title) || !file.contains(&format!("nrpages {pages},")) || indices != ["0", "1", "2", "3"] {
        problems.push(format!("mm-pagecache {CACHED_FILE} does not list pages 0-3 of inode {ino}, uptodate:\n{file}"));
    }
    let page = section(out, "page");
    let named = format!("page cache of inode {ino} (dev {dev}), index 1, file {CACHED_FILE}");
    // On a file list, or still in a CPU's LRU batch.
    let lru = ["LRU: on the inactive file list", "LRU: on the active file list", "LRU: on no list"];
    let on_file_list = lru.iter().any(|l| page.contains(l));
    if !page.contains(&named)
        || !page.contains("cache state: uptodate")
        || !on_file_list
        || !page.contains(" at 0x60001000")
    {
        problems.push(format!(
            "mm-page -v {:#x} does not show page 1 of the file, uptodate, its LRU state, mapped there:\n{page}",
            FILE_ADDR + 4096
        ));
    }
    let by_inode = section(out, "pagecache-inode");
    if by_inode != file {
        problems.push(format!("mm-pagecache {ino} {dev} differs from mm-pagecache {CACHED_FILE}:\n{by_inode}"));
    }
    problems
}

/// What is wrong with gdb's output `out`, given the console; empty if
/// nothing.
fn check_output(out: &str, console: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let want_addr = format!("{FAULT_ADDR:#x}");
    let buddy: String = section(out, "buddyinfo").lines().map(|l| l.trim_end().to_owned() + "\n").collect();
    match kernel_buddyinfo(console) {
        Some(k) if k == buddy && !k.is_empty() => {}
        Some(k) => problems.push(format!("mm-buddyinfo differs from the kernel's report:\n{buddy}kernel:\n{k}")),
        None => problems.push("the kernel's buddyinfo report is missing from the console".into()),
    }
    problems.extend(check_slabinfo(out, console));
    let fault = section(out, "fault");
    for want in [want_addr.as_str(), "not-present", "write", "user", "50000000-50001000 rw-p"] {
        if !fault.contains(want) {
            // Where the machine stopped, as gdb reported it.
            let stop = section(out, "-");
            problems.push(format!("mm-fault lacks {want:?}:\n{fault}after gdb stopped with:\n{stop}"));
        }
    }
    // `finish` must have returned from the handler, with success: the
    // walk after it is only the fault's outcome if it did.
    let finish = section(out, "finish");
    if !(finish.contains("Value returned is") && finish.contains("Ok(())")) {
        problems.push(format!("finish did not return Ok from do_user_addr_fault:\n{finish}"));
    }
    // After the handler returned, the page is mapped: every level shows,
    // and the pte itself is present, writable and user.
    let pte = section(out, "pte");
    let mapped = ["PGD[", "PUD[", "PMD["].iter().all(|l| pte.lines().any(|x| x.starts_with(l)))
        && pte.lines().any(|l| l.starts_with("PTE[") && l.contains("P RW US"))
        && !pte.contains("not mapped");
    if !mapped {
        problems.push(format!("mm-pte {want_addr} after the fault does not walk to a present user pte:\n{pte}"));
    }
    // mm-rmap finds the new anonymous page through its anon_vma, and the
    // file's page 1 through the file's i_mmap, each mapped once, here.
    for (name, addr, kind) in
        [("rmap", FAULT_ADDR, "anonymous, anon_vma"), ("rmap-file", FILE_ADDR + 4096, "page cache")]
    {
        let rmap = section(out, name);
        let line = rmap.lines().any(|l| l.contains("(gdb_fault): ") && l.contains(&format!("{addr:#x} pte ")));
        if !rmap.contains(kind) || !line || !rmap.contains("1 pte(s) map the page; mapcount 1") {
            problems.push(format!("mm-rmap -v {addr:#x} does not list the one pte of the program mapping it:\n{rmap}"));
        }
    }
    let vmas = section(out, "vmas");
    if !vmas.lines().any(|l| l.starts_with("50000000-50001000 rw-p 00000000 00:00 0")) {
        problems.push(format!("mm-vmas lacks the VMA at 0x50000000:\n{vmas}"));
    }
    if !vmas.lines().any(|l| l.contains("/bin/gdb_fault")) {
        problems.push(format!("mm-vmas lacks the program's file mappings:\n{vmas}"));
    }
    // The name is the kernel's, as long as mm-vmas can read it.
    let shared = |l: &str| l.starts_with("60000000-60002000 rw-s 00000000 00:00 0") && !l.contains("unknown VmaFile");
    if !vmas.lines().any(shared) {
        problems.push(format!("mm-vmas lacks the shared mapping of {CACHED_FILE}:\n{vmas}"));
    }
    match cached_file(console) {
        Some((ino, dev)) => problems.extend(check_page_cache(out, &ino, &dev)),
        None => problems.push("the kernel did not print the cached file's inode on the console".into()),
    }
    let tasks = section(out, "tasks");
    if !tasks.contains("gdb_fault") {
        problems.push(format!("mm-tasks does not list gdb_fault:\n{tasks}"));
    }
    if !section(out, "dmesg").contains("gdb-test: slabinfo end") {
        problems.push(format!("mm-dmesg lacks the test's last kernel lines:\n{}", section(out, "dmesg")));
    }
    // gdb adds its own "file:line: Error in sourced command file:" line,
    // and "[Inferior 1 (process 1) detached]" as it leaves.
    let swap = section(out, "swap");
    let (ty, offset) = SWAP_PTE;
    let want_swap = format!(
        "swap entry: area {ty} (an area not in use), offset {offset} (sector {}); not in the swap cache",
        offset * 8
    );
    let want_migration = format!("migration entry (write) of pfn {:#x}", MIGRATION_PTE.1);
    if !swap.contains(&want_swap) || !swap.contains(&want_migration) {
        problems.push(format!("mm-pte's decoder does not read back the swap and migration entries:\n{swap}"));
    }
    let bad = section(out, "bad");
    let ours =
        |l: &&str| !l.trim().is_empty() && !l.contains("Error in sourced command file") && !l.starts_with("[Inferior");
    let said: Vec<&str> = bad.lines().filter(ours).collect();
    if said.len() != 1 || !said[0].contains("mm-pte") {
        problems.push(format!("mm-pte without an address should say one line naming its usage:\n{bad}"));
    }
    problems
}

/// The GDB test: skipped (counted so) without gdb, or with a release
/// kernel (its ELF carries line tables only, not the types the helpers
/// read).
pub fn test(
    images: &boot::Images,
    elf: &Path,
    profile: Profile,
    accel: Accel,
    logs: &Path,
    suite: &mut Suite,
) -> Result<(), Error> {
    let name = TEST_NAME;
    outln!(suite, "(gdb -batch against QEMU)");
    let Some(gdb) = gdb_binary() else {
        suite.skipped();
        outln!(suite, "{name} ... skipped: gdb is not installed (Debian: apt-get install gdb)");
        return Ok(());
    };
    if profile == Profile::Release {
        suite.skipped();
        outln!(suite, "{name} ... skipped: the release kernel has no type information for the helpers");
        return Ok(());
    }
    let dir = logs.join("gdb");
    let server = GdbServer::bind()?;
    let port = server.port;
    let machine = Machine {
        accel,
        firmware: Firmware::Bios,
        mem_mib: DEFAULT_TEST_MEM_MIB,
        cpus: 1,
        scratch: None,
        ext2_disk_mib: 0,
        swap_disk_mib: 0,
        disks: Vec::new(),
        gdb: None,
        cmdline: "loglevel=warn".into(),
        fw_cfg_files: vec![("opt/kernel/ktest-plan".to_owned(), plan_file(&dir, GDB_TEST)?)],
        extra_args: Vec::new(),
        interactive: false,
    };
    let start = Instant::now();
    let mut qemu = start_qemu(&machine, images.for_firmware(Firmware::Bios), &dir, &server)?;
    let script = dir.join("commands.gdb");
    std::fs::write(&script, batch_script(port)).map_err(|e| Error::io(format!("writing {}", show(&script)), e))?;
    let out_path = dir.join("gdb.out");
    let out_file = File::create(&out_path).map_err(|e| Error::io(format!("creating {}", show(&out_path)), e))?;
    let err_file = out_file.try_clone().map_err(|e| Error::io("duplicating the gdb log", e))?;
    let mut gdb = Command::new(gdb)
        .args(["-q", "-batch", "-nx"])
        .arg(elf)
        .args(["-ex", "set architecture i386:x86-64", "-ex", &format!("source {}", show(&scripts()))])
        .arg("-x")
        .arg(&script)
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(err_file)
        .spawn()
        .map_err(|e| {
            kill(&mut qemu);
            Error::io("starting gdb", e)
        })?;
    let finished = loop {
        match gdb.try_wait() {
            Ok(Some(_)) => break true,
            Ok(None) if start.elapsed() < GDB_TEST_TIMEOUT => std::thread::sleep(Duration::from_millis(100)),
            _ => break false,
        }
    };
    if !finished {
        kill(&mut gdb);
    }
    kill(&mut qemu);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let (out, console) = (read(&out_path), read(&dir.join("console.log")));
    let mut problems = check_output(&out, &console);
    if !finished {
        problems.insert(0, format!("gdb did not finish within {} s", GDB_TEST_TIMEOUT.as_secs()));
    }
    let secs = start.elapsed().as_secs_f64();
    if problems.is_empty() {
        suite.passed();
        outln!(suite, "{name} ... ok ({secs:.2} s)");
    } else {
        suite.failed(name);
        outln!(suite, "{name} ... FAILED ({secs:.2} s)");
        for p in &problems {
            outln!(suite, "  {p}");
        }
        outln!(suite, "  (gdb output: {}; console: {})", show(&out_path), show(&dir.join("console.log")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_split_on_markers() {
        let out = "noise\n@@ a\nline 1\nline 2\n@@ b\nx\n@@ end\n";
        assert_eq!(section(out, "a"), "line 1\nline 2\n");
        assert_eq!(section(out, "b"), "x\n");
        assert_eq!(section(out, "missing"), "");
    }

    #[test]
    fn kernel_buddyinfo_is_read_between_markers() {
        let console = "boot\ngdb-test: buddyinfo begin\nNode 0, zone      DMA      1 \ngdb-test: buddyinfo end\n";
        assert_eq!(kernel_buddyinfo(console).as_deref(), Some("Node 0, zone      DMA      1\n"));
        assert_eq!(kernel_buddyinfo("nothing"), None);
    }

    #[test]
    fn a_wrong_report_is_named() {
        let problems = check_output(
            "@@ buddyinfo\nNode 0, zone DMA 2\n@@ end\n",
            "gdb-test: buddyinfo begin\nNode 0, zone DMA 1\ngdb-test: buddyinfo end\n",
        );
        assert!(problems.iter().any(|p| p.starts_with("mm-buddyinfo differs")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("mm-fault lacks")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("finish did not return")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("mm-pte's decoder")), "{problems:?}");
    }

    #[test]
    fn the_script_hands_mm_page_numbers_to_mm_pagecache() {
        let script = batch_script(1234);
        for line in [
            r#"page = gdb.execute("mm-page -v 0x60001000", to_string=True)"#,
            r#"gdb.write(page + "@@ pagecache-inode\n")"#,
            r#"inode = re.search(r"page cache of inode (\d+) \(dev (\S+)\)", page)"#,
            r#"gdb.execute("mm-pagecache %s %s" % inode.groups())"#,
        ] {
            assert!(script.lines().any(|l| l == line), "{line} not in\n{script}");
        }
    }

    #[test]
    fn the_cached_file_is_read_from_the_console() {
        let console = "x\ngdb-test: cached file /gdb-ext2/cached inode 12 dev 7:0\r\n";
        assert_eq!(cached_file(console), Some(("12".into(), "7:0".into())));
        assert_eq!(cached_file("gdb-test: cached file /elsewhere inode 12 dev 7:0\n"), None);
    }

    #[test]
    fn page_cache_sections_are_checked_against_the_inode() {
        let file = "page cache of inode 12 (dev 7:0): /gdb-ext2/cached\n\
                    mapping 0x48 at 0xffff888000100000: nrpages 4, i_size 13288 (4 pages), marks dirty\n\
                    \x20  INDEX        PFN  REF  MAP MARKS            FLAGS\n\
                    \x20      0    0x1234    2    1 -                UPTODATE LRU\n\
                    \x20      1    0x1235    2    1 dirty            UPTODATE DIRTY\n\
                    \x20      2    0x1236    1    0 -                UPTODATE\n\
                    \x20      3    0x1237    1    0 -                UPTODATE\n";
        let out = format!(
            "@@ pagecaches\n   MAPPING    INODE    DEV  NRPAGES  DIRTY       I_SIZE  FILE\n\
             \x20     0x48       12    7:0        4      1        13288  /gdb-ext2/cached\n\
             @@ pagecache\n{file}@@ page\npage cache of inode 12 (dev 7:0), index 1, file /gdb-ext2/cached\n\
             cache state: uptodate dirty; xarray marks: dirty\nLRU: on the inactive file list\n\
             reverse map: page cache 0x48, index 0x1; may be mapped by (address space at address): \
             0x1f517000 at 0x60001000\n@@ pagecache-inode\n{file}@@ finish\n"
        );
        assert_eq!(check_page_cache(&out, "12", "7:0"), Vec::<String>::new());
        let problems = check_page_cache(&out, "13", "7:0");
        assert_eq!(problems.len(), 3, "{problems:?}");
        let unmapped = out.replace(" at 0x60001000\n", "\n");
        assert_eq!(check_page_cache(&unmapped, "12", "7:0").len(), 1, "the mapper must be named");
        let missing_page = out.replace("      3    0x1237", "      4    0x1237");
        assert!(check_page_cache(&missing_page, "12", "7:0").iter().any(|p| p.contains("pages 0-3")));
    }

    #[test]
    fn the_walk_after_the_fault_is_read_from_its_own_section() {
        let walk = |pte: &str| {
            format!(
                "walk of 0x50000000 from cr3 0x1000\nPGD[  0] at 0x0: 0x1067  P RW US A D\n\
                 PUD[  1] at 0x8: 0x2067  P RW US A D\nPMD[128] at 0x10: 0x3067  P RW US A D\n{pte}"
            )
        };
        let fault_time = walk("PTE[  0] at 0x18: 0x0  not present\nnot mapped\n");
        let after = walk("PTE[  0] at 0x18: 0x8000000000004067  P RW US A D NX\nphys 0x4000\n");
        let out = format!(
            "@@ fault\n{fault_time}@@ finish\nValue returned is $1 = core::result::Result<(), x>::Ok(())\n\
             @@ pte\n{after}@@ bad\n"
        );
        let problems = check_output(&out, "");
        assert!(!problems.iter().any(|p| p.starts_with("mm-pte 0x") || p.starts_with("finish")), "{problems:?}");
        let cut_short = out.replace("Value returned is", "Program stopped");
        assert!(check_output(&cut_short, "").iter().any(|p| p.starts_with("finish did not return")));
    }
}
