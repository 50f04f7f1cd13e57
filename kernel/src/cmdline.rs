//! The kernel command line (Linux `init/main.c` parse_args, `__setup`).
//!
//! The `bootloader` crate has no command line of its own, so we take ours from
//! QEMU's fw_cfg file `opt/kernel/cmdline` (`-fw_cfg name=...,file=...`, which
//! xtask writes). On a machine without fw_cfg the command line is empty and
//! every parameter takes its default. The syntax (`key=value`, bare `flag`,
//! double-quoted values) is [`formats::cmdline`]'s, tested on the host.
//!
//! Known parameters:
//! - `loglevel=error|warn|info|debug|trace`: console log level (default info)
//! - `ktest.list`: the test kernel lists its tests instead of running them
//! - `kbench.run[=FILTER]`, `kbench.smoke`: the test kernel runs its
//!   benchmarks (all, or those whose name contains FILTER or one of its
//!   comma-separated parts; or each briefly)
//! - `slub_debug[=FLAGS[,CACHE...]]`, `slub_debug_panic`: SLUB debugging
//! - `init=PATH`: run a program from the initramfs at boot
//! - `shell.cmd="CMD; CMD..."`: the console runs these commands and powers
//!   off instead of waiting for input
//! - `mem=SIZE[KMG]`: use only the RAM below the address where SIZE bytes of
//!   it are reached (Linux `mem=`; see `mm::enforce_memory_limit`)
//! - `swap=DEV[:PRIO][,DEV[:PRIO]...]`: turn these disks on as swap areas
//!   once the disks are up (`crate::swapfile::swapon::swapon_from_cmdline`)

use spin::Once;

use crate::drivers::fw_cfg;

pub use formats::cmdline::memparse;

/// Parameters the kernel understands; others are reported at boot.
const KNOWN: [&str; 10] = [
    "loglevel",
    "ktest.list",
    "kbench.run",
    "kbench.smoke",
    "slub_debug",
    "slub_debug_panic",
    "init",
    "shell.cmd",
    "mem",
    "swap",
];

/// Words of the command line that name no known parameter (Linux prints
/// them as "Unknown kernel command line parameters").
pub fn unknown() -> impl Iterator<Item = &'static str> {
    formats::cmdline::unknown(as_str(), &KNOWN)
}

/// The fw_cfg file that carries the command line.
pub const FW_CFG_CMDLINE: &str = "opt/kernel/cmdline";

/// Longest command line kept; the rest is dropped with a warning (Linux's
/// COMMAND_LINE_SIZE is 2048 on x86).
const COMMAND_LINE_SIZE: usize = 2048;

struct Cmdline {
    buf: [u8; COMMAND_LINE_SIZE],
    len: usize,
    truncated: bool,
}

static CMDLINE: Once<Cmdline> = Once::new();

/// Reads the command line from fw_cfg. Idempotent; called early in boot.
pub fn init() {
    CMDLINE.call_once(|| {
        let mut line = Cmdline { buf: [0; COMMAND_LINE_SIZE], len: 0, truncated: false };
        if let Some(file) = fw_cfg::find_file(FW_CFG_CMDLINE) {
            line.len = fw_cfg::read_file(&file, &mut line.buf);
            line.truncated = (file.size as usize) > line.len;
        }
        line
    });
}

/// Whether the command line was longer than [`COMMAND_LINE_SIZE`] and cut.
pub fn truncated() -> bool {
    CMDLINE.get().is_some_and(|c| c.truncated)
}

/// The whole command line (empty before [`init`] or without fw_cfg). Bytes
/// that are not UTF-8 end the line: parameters are ASCII.
pub fn as_str() -> &'static str {
    let Some(line) = CMDLINE.get() else { return "" };
    let bytes = &line.buf[..line.len];
    let valid = match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            // SAFETY: `valid_up_to` is the length of the longest valid UTF-8
            // prefix of `bytes`.
            unsafe { core::str::from_utf8_unchecked(&bytes[..e.valid_up_to()]) }
        }
    };
    valid.trim_matches(|c: char| c == '\0' || c.is_whitespace())
}

/// The value of `key=value`, if present (the last occurrence wins, as on Linux).
pub fn get(key: &str) -> Option<&'static str> {
    formats::cmdline::parse(as_str(), key)
}

/// Whether the bare word `flag` (or `flag=...`) is present.
pub fn has(flag: &str) -> bool {
    formats::cmdline::has(as_str(), flag)
}
