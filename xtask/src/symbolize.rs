//! Turns kernel addresses in console output into function, file and line,
//! using the kernel ELF's symbols and DWARF line tables.
//!
//! The kernel prints backtrace frames as `  [ n] 0x<return address>` and the
//! faulting instruction as `  RIP: 0x...`; for such a line we produce an
//! annotation line to print right after it, so the raw output stays intact.

use std::io::{Read, Write};
use std::path::Path;

/// Symbol lookups in one kernel ELF.
pub struct Symbolizer {
    loader: Option<addr2line::Loader>,
    root: String,
}

impl Symbolizer {
    /// Loads `elf`'s debug information. A kernel without it still runs; its
    /// addresses simply stay unresolved.
    pub fn open(elf: &Path) -> Symbolizer {
        let loader = match addr2line::Loader::new(elf) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("note: cannot read symbols from {}: {e}", elf.display());
                None
            }
        };
        let root = crate::workspace_root().display().to_string() + "/";
        Symbolizer { loader, root }
    }

    fn short_path(&self, path: &str) -> String {
        if let Some(rest) = path.strip_prefix(&self.root) {
            return rest.to_owned();
        }
        // Standard library paths look like /rustc/<hash>/library/core/src/...
        if let Some(idx) = path.find("/library/") {
            return path[idx + "/library/".len()..].to_owned();
        }
        path.to_owned()
    }

    /// `function at file:line` for an address (inlined frames joined with
    /// "inlined into").
    pub fn describe(&self, addr: u64) -> Option<String> {
        let loader = self.loader.as_ref()?;
        let mut parts = Vec::new();
        if let Ok(mut frames) = loader.find_frames(addr) {
            while let Ok(Some(frame)) = frames.next() {
                let name = frame
                    .function
                    .as_ref()
                    .and_then(|f| f.demangle().ok().map(|n| strip_hash(&n).to_owned()))
                    .unwrap_or_else(|| "??".into());
                let location = frame
                    .location
                    .as_ref()
                    .map(|l| format!("{}:{}", self.short_path(l.file.unwrap_or("??")), l.line.unwrap_or(0)));
                parts.push(match location {
                    Some(loc) => format!("{name} at {loc}"),
                    None => name,
                });
            }
        }
        if parts.is_empty() {
            let symbol = loader.find_symbol(addr)?;
            let demangled = addr2line::demangle_auto(symbol.into(), None);
            parts.push(strip_hash(&demangled).to_owned());
        }
        Some(parts.join("\n          inlined into "))
    }

    /// The annotation for a console line, if it carries a kernel address.
    pub fn annotate(&self, line: &str) -> Option<String> {
        let (addr, is_return) = parse_address_line(line)?;
        // A return address points after the call; the call is one byte back.
        let lookup = if is_return { addr.checked_sub(1)? } else { addr };
        self.describe(lookup).map(|d| format!("        -> {d}"))
    }

    /// Copies `input` to `out` as it arrives (byte by byte, so prompts
    /// without a newline appear at once), adding annotation lines after
    /// lines that carry kernel addresses.
    pub fn forward_annotated(&self, mut input: impl Read, out: &mut impl Write) {
        let mut buf = [0u8; 4096];
        let mut line = Vec::new();
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let _ = out.write_all(&buf[..n]);
            for &b in &buf[..n] {
                if b == b'\n' {
                    let text = String::from_utf8_lossy(&line);
                    if let Some(note) = self.annotate(text.trim_end_matches('\r')) {
                        let _ = write!(out, "{note}\r\n");
                    }
                    line.clear();
                } else {
                    line.push(b);
                }
            }
            let _ = out.flush();
        }
    }
}

fn strip_hash(name: &str) -> &str {
    match name.rfind("::h") {
        Some(i) if name.len() - i == 19 && name[i + 3..].bytes().all(|b| b.is_ascii_hexdigit()) => &name[..i],
        _ => name,
    }
}

/// Recognises `  [ n] 0x...` (a return address) and `  RIP: 0x...`.
fn parse_address_line(line: &str) -> Option<(u64, bool)> {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix('[') {
        let (index, rest) = rest.split_once(']')?;
        index.trim().parse::<u32>().ok()?;
        return Some((parse_hex(rest.trim())?, true));
    }
    let rest = t.strip_prefix("RIP:")?;
    Some((parse_hex(rest.split_whitespace().next()?)?, false))
}

fn parse_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x")?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backtrace_and_rip_lines_are_recognised() {
        assert_eq!(parse_address_line("  [ 3] 0xffffffff80001234"), Some((0xffffffff80001234, true)));
        assert_eq!(parse_address_line("  [12] 0x10"), Some((0x10, true)));
        assert_eq!(
            parse_address_line("  RIP: 0xffffffff8000abcd  CS: 0x0008  RFLAGS: 0x00000002"),
            Some((0xffffffff8000abcd, false))
        );
    }

    #[test]
    fn other_lines_are_left_alone() {
        assert_eq!(parse_address_line("[    0.001] CPU0 INFO boot: memory map: 7 regions"), None);
        assert_eq!(parse_address_line("  [mem 0x0000-0x9fff] usable"), None);
        assert_eq!(parse_address_line("RIP: garbage"), None);
    }

    #[test]
    fn legacy_mangling_hashes_are_stripped() {
        assert_eq!(strip_hash("kernel::boot::init::h0123456789abcdef"), "kernel::boot::init");
        assert_eq!(strip_hash("kernel::boot::init"), "kernel::boot::init");
        assert_eq!(strip_hash("a::hello"), "a::hello");
    }
}
