//! The kernel's mm console driven from the host: `cargo xtask run --cmd`,
//! `cargo xtask memmap`, and the end-to-end test of the non-interactive
//! path that `cargo xtask test` runs.
//!
//! Commands travel on the kernel command line as `shell.cmd="CMD; CMD"`;
//! the kernel echoes each after its prompt (`mm> CMD`), prints the output
//! and powers off, QEMU exiting with success only if every command
//! succeeded (kernel/src/shell/mod.rs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::jobs::{Job, Suite, outln};
use crate::qemu::{self, Event, Headless, Machine};
use crate::runner::RunOptions;

/// The prompt the kernel echoes commands after.
pub const PROMPT: &str = "mm> ";

/// Bound on a scripted boot in tests (TCG, a second of stress included).
const TEST_TIMEOUT: Duration = Duration::from_secs(240);

/// The command line that makes the console run `commands`: `base` plus
/// `shell.cmd="commands"`. A double quote would end the value early, so it
/// is refused.
pub fn shell_cmdline(base: &str, commands: &str) -> Result<String, Error> {
    if commands.contains('"') {
        return Err(Error::Usage("--cmd cannot contain a double quote (the kernel command line quotes it)".into()));
    }
    if commands.split(';').all(|c| c.trim().is_empty()) {
        return Err(Error::Usage("--cmd has no command".into()));
    }
    let param = format!("shell.cmd=\"{commands}\"");
    let line = if base.trim().is_empty() { param } else { format!("{} {param}", base.trim()) };
    if line.len() > COMMAND_LINE_MAX {
        return Err(Error::Usage(format!(
            "the kernel command line would be {} bytes; the kernel keeps {COMMAND_LINE_MAX}",
            line.len()
        )));
    }
    Ok(line)
}

/// The longest command line the kernel keeps whole (Linux x86's
/// COMMAND_LINE_SIZE 2048 with its NUL; kernel/src/cmdline.rs).
pub const COMMAND_LINE_MAX: usize = 2047;

/// Boots `machine` headless and collects its console until QEMU exits.
pub fn run_headless(
    machine: &Machine,
    image: &Path,
    workdir: &Path,
    timeout: Duration,
) -> Result<(Vec<String>, Option<ExitStatus>), Error> {
    let mut qemu = Headless::start(machine, image, workdir)?;
    let deadline = Instant::now() + timeout;
    let mut console = Vec::new();
    loop {
        match qemu.next(deadline) {
            Some(Event::Line(line)) => console.push(line),
            Some(Event::Exited(status)) => return Ok((console, Some(status))),
            None => {
                qemu.kill();
                return Ok((console, None));
            }
        }
    }
}

/// The output of each command echoed after the prompt, in order: kernel
/// log lines (`[seconds] ...`) and the console's own messages left out.
pub fn sections(console: &[String]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in console {
        if let Some(cmd) = line.strip_prefix(PROMPT) {
            out.push((cmd.trim().to_owned(), Vec::new()));
        } else if line.starts_with("console:") {
            out.push((String::new(), Vec::new()));
        } else if let Some((_, lines)) = out.last_mut()
            && !line.starts_with('[')
        {
            lines.push(line.clone());
        }
    }
    out.retain(|(cmd, _)| !cmd.is_empty());
    out
}

/// `Key: value kB` lines (meminfo) as a map of values.
pub fn parse_meminfo(lines: &[String]) -> Result<BTreeMap<String, u64>, String> {
    let mut map = BTreeMap::new();
    for line in lines {
        let (key, rest) = line.split_once(':').ok_or_else(|| format!("meminfo line without a colon: {line:?}"))?;
        let value = rest.trim().trim_end_matches(" kB").trim();
        let value: u64 = value.parse().map_err(|_| format!("meminfo value not a number: {line:?}"))?;
        map.insert(key.to_owned(), value);
    }
    Ok(map)
}

/// Free pages per zone from /proc/buddyinfo lines
/// (`Node 0, zone    DMA32  c0 c1 ... c10`).
pub fn parse_buddyinfo(lines: &[String]) -> Result<BTreeMap<String, u64>, String> {
    let mut zones = BTreeMap::new();
    for line in lines {
        let rest = line.strip_prefix("Node 0, zone").ok_or_else(|| format!("not a buddyinfo line: {line:?}"))?;
        let mut words = rest.split_whitespace();
        let zone = words.next().ok_or_else(|| format!("no zone name: {line:?}"))?;
        let mut pages = 0u64;
        let mut orders = 0;
        for (order, word) in words.enumerate() {
            let count: u64 = word.parse().map_err(|_| format!("count not a number: {line:?}"))?;
            pages += count << order;
            orders += 1;
        }
        if orders != 11 {
            return Err(format!("{orders} orders instead of 11: {line:?}"));
        }
        zones.insert(zone.to_owned(), pages);
    }
    Ok(zones)
}

/// `name value` lines (vmstat).
pub fn parse_vmstat(lines: &[String]) -> Result<BTreeMap<String, i64>, String> {
    lines
        .iter()
        .map(|line| {
            let (name, value) = line.split_once(' ').ok_or_else(|| format!("not a vmstat line: {line:?}"))?;
            let value = value.parse().map_err(|_| format!("vmstat value not a number: {line:?}"))?;
            Ok((name.to_owned(), value))
        })
        .collect()
}

/// The commands of the scripted test boot that must all succeed.
/// (The reports compared with each other come before the programs start
/// allocating. `sleep` maps and touches its 4 MiB in the background while
/// the console goes on, for `ps` and `maps $!`; `frag ... detach` returns
/// once its child has fragmented 16 MiB, which then waits for a SIGUSR1
/// that never comes, so `compact` always has that memory to move.)
const GOOD_COMMANDS: &str = "help; run hello; meminfo; buddyinfo; pagetypeinfo; zoneinfo; slabinfo; vmstat; \
                             vmallocinfo; memblock; run sleep 60 4 &; run frag 16 wait detach; alloc 1M; \
                             alloc 100 kmalloc; alloc 64K vmalloc; alloc; free 2; free; stress 8 1; ps; maps $!; \
                             drop_caches; compact; kmemmap; poweroff";

/// Checks a console of [`GOOD_COMMANDS`]; returns what is wrong.
pub fn check_good_console(console: &[String], mem_mib: u32) -> Result<(), String> {
    let sections: BTreeMap<String, Vec<String>> = sections(console).into_iter().collect();
    let get = |cmd: &str| sections.get(cmd).ok_or_else(|| format!("no output section for `{cmd}`"));
    if !get("help")?.iter().any(|l| l.trim_start().starts_with("kmemmap")) {
        return Err("help does not list kmemmap".into());
    }
    if !get("run hello")?.iter().any(|l| l.contains("/bin/hello: pid") && l.ends_with("exited with status 0")) {
        return Err("run hello did not report exit status 0".into());
    }
    let meminfo = parse_meminfo(get("meminfo")?)?;
    let field = |k: &str| meminfo.get(k).copied().ok_or_else(|| format!("meminfo has no {k}"));
    let (total, free, available) = (field("MemTotal")?, field("MemFree")?, field("MemAvailable")?);
    if !(0 < free && free <= total && available <= free && total <= u64::from(mem_mib) * 1024) {
        return Err(format!("meminfo inconsistent: MemTotal {total} MemFree {free} MemAvailable {available}"));
    }
    let buddy: u64 = parse_buddyinfo(get("buddyinfo")?)?.values().sum();
    // The two reports are a few console writes apart, not one snapshot:
    // allow the pages the console itself may have taken in between.
    let buddy_kb = buddy * 4;
    if buddy_kb.abs_diff(free) > 256 {
        return Err(format!("buddyinfo free {buddy_kb} kB differs from MemFree {free} kB by more than 256 kB"));
    }
    if !get("pagetypeinfo")?.iter().any(|l| l.starts_with("Number of blocks type")) {
        return Err("pagetypeinfo has no block counts".into());
    }
    let managed: u64 = get("zoneinfo")?
        .iter()
        .filter_map(|l| l.trim().strip_prefix("managed"))
        .map(|v| v.trim().parse::<u64>().unwrap_or(0))
        .sum();
    if managed * 4 != total {
        return Err(format!("zoneinfo managed pages {managed} x 4 kB != MemTotal {total} kB"));
    }
    let slabinfo = get("slabinfo")?;
    if slabinfo.first().map(String::as_str) != Some("slabinfo - version: 2.1")
        || !slabinfo.iter().any(|l| l.starts_with("kmalloc-64 "))
    {
        return Err("slabinfo lacks its header or kmalloc-64".into());
    }
    let vmstat = parse_vmstat(get("vmstat")?)?;
    for name in ["nr_free_pages", "pgalloc_dma32", "pgfree", "pgfault"] {
        if !vmstat.contains_key(name) {
            return Err(format!("vmstat has no {name}"));
        }
    }
    if vmstat["pgfault"] <= 0 {
        return Err("vmstat pgfault is 0 after running a program".into());
    }
    if !get("memblock")?.iter().any(|l| l.starts_with("MEMBLOCK configuration")) {
        return Err("memblock dump missing".into());
    }
    let frag = get("run frag 16 wait detach")?;
    if !frag.iter().any(|l| l.starts_with("frag: child ") && l.ends_with(" fragmented, waiting for SIGUSR1")) {
        return Err(format!("frag did not report its child's memory fragmented: {frag:?}"));
    }
    let ps = get("ps")?;
    if !ps.iter().any(|l| l.ends_with("[kshell]")) {
        return Err("ps does not show the console thread".into());
    }
    // The background `sleep` touched 4 MiB: its RSS column says at least that.
    let sleeper_rss = ps
        .iter()
        .find(|l| l.ends_with(" sleep"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|rss| rss.parse::<u64>().ok());
    if !sleeper_rss.is_some_and(|kib| kib >= 4096) {
        return Err(format!("ps does not show the background sleep with >= 4096 KiB RSS: {ps:?}"));
    }
    let maps = get("maps $!")?;
    if !(maps.iter().any(|l| l.ends_with("/bin/sleep")) && maps.iter().any(|l| l.ends_with("[stack]"))) {
        return Err(format!("maps $! lacks /bin/sleep or [stack]: {maps:?}"));
    }
    let frees = get("free")?;
    if frees.len() != 2 || !frees.iter().all(|l| l.ends_with("pattern intact, freed")) {
        return Err(format!("free should check and free the 2 remaining allocations: {frees:?}"));
    }
    if !get("stress 8 1")?.iter().any(|l| l.starts_with("stress:") && l.ends_with(" 0 broken patterns")) {
        return Err("stress did not report 0 broken patterns".into());
    }
    let compact = get("compact")?.join("\n");
    let migrated = compact
        .split(", ")
        .find_map(|part| part.strip_suffix(" migrated"))
        .and_then(|n| n.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok());
    if !compact.starts_with("compact: scanned ") || !migrated.is_some_and(|n| n > 0) {
        return Err(format!("compact moved none of frag's pages: {compact:?}"));
    }
    let maps = crate::memmap::parse_dumps(&console.join("\n")).map_err(|e| format!("kmemmap: {e}"))?;
    let blocks = u64::from(mem_mib).div_ceil(2);
    match maps.as_slice() {
        [map] if map.nr_blocks() as u64 >= blocks => Ok(()),
        _ => Err(format!("expected one kmemmap dump of at least {blocks} blocks, got {}", maps.len())),
    }
}

/// The scripted test boot with bad commands: each gets its one-line
/// error, the others still run, and QEMU exits with failure.
const BAD_COMMANDS: &str = "nosuchcmd; alloc 5X; maps 99999; free 42; run nosuchprogram; stress 1; help";

fn check_bad_console(console: &[String]) -> Result<(), String> {
    for expected in [
        "nosuchcmd: unknown command (help lists them)",
        "alloc: bad number '5X' (sizes take K, M or G)",
        "maps: no process with pid 99999",
        "free: no allocation #42 (alloc lists them)",
        "run: ENOENT (No such file or directory)",
        "stress: usage: stress MIB SECONDS (1-65536 MiB, 1-3600 s)",
        "console: a command failed, powering off",
    ] {
        if !console.iter().any(|l| l == expected) {
            return Err(format!("missing line {expected:?}"));
        }
    }
    if !console.iter().any(|l| l.trim_start().starts_with("poweroff")) {
        return Err("help did not run after the failed commands".into());
    }
    Ok(())
}

/// What a terminal shows of a line of console output: printable characters
/// overwrite at the cursor, backspace moves it left, `ESC [ K` clears to the
/// end of the line, `ESC [ n C`/`D` move right/left (carriage returns are
/// gone by the time a line arrives, see `qemu::Headless`).
pub fn render_terminal_line(line: &str) -> String {
    let mut cells: Vec<char> = Vec::new();
    let mut cursor = 0usize;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x08' => cursor = cursor.saturating_sub(1),
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                let mut n = String::new();
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    n.push(d);
                }
                let n = n.parse::<usize>().unwrap_or(1);
                match chars.next() {
                    Some('K') => cells.truncate(cursor),
                    Some('C') => cursor += n,
                    Some('D') => cursor = cursor.saturating_sub(n),
                    _ => {}
                }
            }
            c if !c.is_control() => {
                if cursor >= cells.len() {
                    cells.resize(cursor + 1, ' ');
                }
                cells[cursor] = c;
                cursor += 1;
            }
            _ => {}
        }
    }
    cells.into_iter().collect::<String>().trim_end().to_owned()
}

/// Collects console lines into `console` until one satisfies `done` (or,
/// for `what == "exit"`, QEMU exits with success).
fn wait_for_line(
    qemu: &mut Headless,
    console: &mut Vec<String>,
    what: &str,
    done: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match qemu.next(deadline) {
            Some(Event::Line(line)) => {
                let hit = done(&line);
                console.push(line);
                if hit {
                    return Ok(());
                }
            }
            Some(Event::Exited(status)) if what == "exit" && status.code() == Some(qemu::EXIT_SUCCESS) => return Ok(()),
            Some(Event::Exited(status)) => return Err(format!("{} waiting for {what}", qemu::describe_exit(&status))),
            None => return Err(format!("no {what} within 90 s")),
        }
    }
}

/// The interactive test: keys typed into the serial console edit the line,
/// recall history, and Ctrl-C stops `stress` and a foreground program.
fn interactive(machine: &Machine, images: &boot::Images, workdir: &Path) -> Result<(), String> {
    use crate::build::ImagesExt;
    let mut qemu = Headless::start_with_input(machine, images.for_firmware(machine.firmware), workdir)
        .map_err(|e| e.to_string())?;
    let mut console: Vec<String> = Vec::new();
    let result = (|| {
        let send = |qemu: &mut Headless, keys: &[u8]| qemu.send(keys).map_err(|e| e.to_string());
        wait_for_line(&mut qemu, &mut console, "the console banner", &|l| l.starts_with("mm console:"))?;
        send(&mut qemu, b"mem\x7f\x7f\x7fmeminfo\r")?;
        wait_for_line(&mut qemu, &mut console, "meminfo after backspaces", &|l| l.starts_with("MemTotal:"))?;
        let typed = console.iter().rev().find(|l| l.starts_with(PROMPT)).map(|l| render_terminal_line(l));
        if typed.as_deref() != Some("mm> meminfo") {
            return Err(format!("the terminal shows {typed:?} for the edited line, not \"mm> meminfo\""));
        }
        send(&mut qemu, b"junk\x15buddyinfo\r")?;
        wait_for_line(&mut qemu, &mut console, "buddyinfo after Ctrl-U", &|l| l.starts_with("Node 0, zone"))?;
        send(&mut qemu, b"x\x1b[A\x1b[A\r")?;
        wait_for_line(&mut qemu, &mut console, "meminfo from the history", &|l| l.starts_with("MemTotal:"))?;
        // Ctrl-C goes once the console has taken the command line: the
        // editor reads up to the Enter, and the running command finds the
        // Ctrl-C waiting in the UART however late it starts to look.
        send(&mut qemu, b"stress 32 600\r")?;
        wait_for_line(&mut qemu, &mut console, "stress taken", &|l| render_terminal_line(l) == "mm> stress 32 600")?;
        send(&mut qemu, b"\x03")?;
        wait_for_line(&mut qemu, &mut console, "stress interrupted by Ctrl-C", &|l| l == "stress: interrupted")?;
        send(&mut qemu, b"run sleep 600\r")?;
        wait_for_line(&mut qemu, &mut console, "run taken", &|l| render_terminal_line(l) == "mm> run sleep 600")?;
        send(&mut qemu, b"\x03")?;
        wait_for_line(&mut qemu, &mut console, "the program killed by SIGINT", &|l| l.ends_with("killed by signal 2"))?;
        send(&mut qemu, b"poweroff\r")?;
        wait_for_line(&mut qemu, &mut console, "exit", &|_| false)
    })();
    qemu.kill();
    let log = workdir.join("console.log");
    let _ = std::fs::write(&log, console.join("\n"));
    result
}

/// The machine the console tests boot: the kernel image under BIOS.
/// A headless BIOS machine for an xtask console test: `cpus` CPUs,
/// `mem_mib` of RAM, the kernel command line `cmdline`.
pub(crate) fn console_machine(options: &RunOptions, cpus: u32, mem_mib: u32, cmdline: String) -> Machine {
    Machine {
        accel: options.accel,
        firmware: qemu::Firmware::Bios,
        mem_mib,
        cpus,
        scratch: None,
        ext2_disk_mib: 0,
        swap_disk_mib: 0,
        disks: Vec::new(),
        gdb: None,
        cmdline,
        fw_cfg_files: Vec::new(),
        extra_args: Vec::new(),
        interactive: false,
    }
}

/// Prints an xtask test's line into its suite and counts it; a failure
/// names the console log, if the test has one.
pub(crate) fn record(suite: &mut Suite, name: &str, start: Instant, verdict: Result<(), String>, log: Option<&Path>) {
    let secs = start.elapsed().as_secs_f64();
    match verdict {
        Ok(()) => {
            suite.passed();
            outln!(suite, "xtask {name} ... ok ({secs:.1} s)");
        }
        Err(why) => {
            suite.failed(name);
            let log = log.map(|l| format!("; console in {}", l.display())).unwrap_or_default();
            outln!(suite, "xtask {name} ... FAILED ({secs:.1} s): {why}{log}");
        }
    }
}

/// `cargo xtask test`'s end-to-end tests of the console, a job each: the
/// kernel image boots with scripted commands (`--cmd`), once all good,
/// once with bad ones, and once typed into interactively.
pub fn jobs<'s>(images: &'s boot::Images, options: &'s RunOptions, filter: Option<&str>) -> Vec<Job<'s>> {
    let cases: [(&'static str, &'static str, bool); 2] = [
        ("console::cmd_reports_are_consistent", GOOD_COMMANDS, true),
        ("console::cmd_errors_are_one_line_and_fail_the_boot", BAD_COMMANDS, false),
    ];
    let mut jobs = Vec::new();
    for (name, commands, good) in cases {
        if filter.is_some_and(|f| !name.contains(f)) {
            continue;
        }
        jobs.push(Job::new(name, move |suite: &mut Suite| scripted(images, options, name, commands, good, suite)));
    }
    let name = "console::keys_edit_recall_and_interrupt";
    if filter.is_none_or(|f| name.contains(f)) {
        jobs.push(Job::new(name, move |suite: &mut Suite| {
            outln!(suite, "(kernel image, {}, typed into the serial console)", options.accel);
            let machine = console_machine(options, 1, qemu::DEFAULT_MEM_MIB, "loglevel=warn".into());
            let workdir = options.logs.join(name.replace("::", "-"));
            let start = Instant::now();
            let verdict = interactive(&machine, images, &workdir);
            record(suite, name, start, verdict, Some(&workdir.join("console.log")));
            Ok(())
        }));
    }
    jobs
}

/// A scripted console boot: `commands` must all succeed (`good`) or each
/// fail with its one line.
fn scripted(
    images: &boot::Images,
    options: &RunOptions,
    name: &str,
    commands: &str,
    good: bool,
    suite: &mut Suite,
) -> Result<(), Error> {
    use crate::build::ImagesExt;
    outln!(suite, "(kernel image, {}, scripted with shell.cmd)", options.accel);
    let machine = console_machine(options, 2, qemu::DEFAULT_MEM_MIB, shell_cmdline("loglevel=warn", commands)?);
    let start = Instant::now();
    let workdir = options.logs.join(name.replace("::", "-"));
    let (console, status) = run_headless(&machine, images.for_firmware(machine.firmware), &workdir, TEST_TIMEOUT)?;
    let log = workdir.join("console.log");
    std::fs::write(&log, console.join("\n")).map_err(|e| Error::io(format!("writing {}", log.display()), e))?;
    let want = if good { qemu::EXIT_SUCCESS } else { qemu::EXIT_FAILED };
    let verdict = match status {
        None => Err(format!("timed out after {} s", TEST_TIMEOUT.as_secs())),
        Some(s) if s.code() != Some(want) => Err(format!("QEMU {} (wanted exit {want})", qemu::describe_exit(&s))),
        Some(_) if good => check_good_console(&console, machine.mem_mib),
        Some(_) => check_bad_console(&console),
    };
    record(suite, name, start, verdict, Some(&log));
    Ok(())
}

/// Where `cargo xtask memmap` writes its pictures.
pub fn memmap_dir() -> PathBuf {
    crate::build::target_dir().join("memmap")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn terminal_lines_render_as_a_terminal_shows_them() {
        assert_eq!(render_terminal_line("mm> mem\x08 \x08\x08 \x08\x08 \x08meminfo"), "mm> meminfo");
        // A backspace alone moves the cursor; the space is what erases.
        assert_eq!(render_terminal_line("mm> abc\x08\x08"), "mm> abc");
        assert_eq!(render_terminal_line("mm> abc\x08 \x08"), "mm> ab");
        assert_eq!(render_terminal_line("mm> abc\x1b[2Dx\x1b[K"), "mm> ax");
        assert_eq!(render_terminal_line("mm> ab\x1b[Dz\x1b[Cq"), "mm> az q", "moving right past the end leaves a gap");
    }

    #[test]
    fn the_command_line_quotes_the_commands_and_refuses_quotes() {
        assert_eq!(shell_cmdline("", "meminfo; poweroff").unwrap(), "shell.cmd=\"meminfo; poweroff\"");
        assert_eq!(shell_cmdline(" loglevel=warn ", "ps").unwrap(), "loglevel=warn shell.cmd=\"ps\"");
        assert!(shell_cmdline("", "echo \"x\"").is_err());
        assert!(shell_cmdline("", " ; ").is_err(), "no command");
        let long = "meminfo; ".repeat(300);
        assert!(shell_cmdline("", &long).is_err(), "longer than the kernel keeps");
        assert!(shell_cmdline("", &long[..1800]).is_ok());
    }

    #[test]
    fn sections_follow_the_prompt_and_skip_log_lines() {
        let console = lines(
            "[    0.1] CPU0 INFO boot: hello\nmm> meminfo\nMemTotal:  1 kB\n[    0.2] CPU0 WARN x: y\nMemFree:  1 kB\n\
             mm> ps\n    PID\nconsole: commands done, powering off\nafter",
        );
        let s = sections(&console);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0], ("meminfo".to_owned(), lines("MemTotal:  1 kB\nMemFree:  1 kB")));
        assert_eq!(s[1], ("ps".to_owned(), lines("    PID")));
    }

    #[test]
    fn reports_parse_and_bad_lines_are_refused() {
        let m = parse_meminfo(&lines("MemTotal:         497536 kB\nMemFree:          480000 kB")).unwrap();
        assert_eq!(m["MemTotal"], 497536);
        assert!(parse_meminfo(&lines("MemTotal 3 kB")).is_err());
        let b = parse_buddyinfo(&lines(
            "Node 0, zone      DMA      1      1      1      0      2      1      1      0      1      1      3 \n\
             Node 0, zone    DMA32      0      0      0      0      0      0      0      0      0      0      1 ",
        ))
        .unwrap();
        assert_eq!(b["DMA"], 1 + 2 + 4 + 2 * 16 + 32 + 64 + 256 + 512 + 3 * 1024);
        assert_eq!(b["DMA32"], 1024);
        assert!(parse_buddyinfo(&lines("Node 0, zone DMA 1 2 3")).is_err());
        let v = parse_vmstat(&lines("nr_free_pages 12\npgfault 3")).unwrap();
        assert_eq!((v["nr_free_pages"], v["pgfault"]), (12, 3));
        assert!(parse_vmstat(&lines("pgfault x")).is_err());
    }

    #[test]
    fn the_bad_console_check_wants_every_error_line() {
        let good = lines(
            "mm> nosuchcmd\nnosuchcmd: unknown command (help lists them)\nalloc: bad number '5X' (sizes take K, M or G)\n\
             maps: no process with pid 99999\nfree: no allocation #42 (alloc lists them)\n\
             run: ENOENT (No such file or directory)\n\
             stress: usage: stress MIB SECONDS (1-65536 MiB, 1-3600 s)\n  poweroff   power off\n\
             console: a command failed, powering off",
        );
        assert_eq!(check_bad_console(&good), Ok(()));
        let missing: Vec<String> = good.iter().filter(|l| !l.starts_with("maps:")).cloned().collect();
        assert!(check_bad_console(&missing).unwrap_err().contains("maps: no process"));
    }
}
