//! Parsing a kernel command line (Linux `init/main.c` parse_args and
//! `lib/cmdline.c` next_arg); where the line comes from is the kernel's
//! business (`kernel::cmdline`).
//!
//! Parameters are `key=value` or bare `flag` words separated by spaces, as on
//! Linux; as in Linux's `next_arg`, a value in double quotes may hold spaces
//! (`shell.cmd="meminfo; poweroff"`) and the quotes are not part of it.
//! Unlike `next_arg`, a quote before the name (`"key=a b"`) is not stripped:
//! such a word names no parameter and is reported as unknown.

/// The value of `key=value` in `line`, quotes around the value removed (the
/// last occurrence wins, as on Linux).
pub fn parse<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let value = words(line).filter_map(|w| w.strip_prefix(key)?.strip_prefix('=')).last()?;
    Some(value.strip_prefix('"').map_or(value, |v| v.strip_suffix('"').unwrap_or(v)))
}

/// Whether `line` holds the bare word `flag` or `flag=...`.
pub fn has(line: &str, flag: &str) -> bool {
    words(line).any(|w| w == flag || w.strip_prefix(flag).is_some_and(|r| r.starts_with('=')))
}

/// The words of `line` whose name (the part before any `=`) is not in
/// `known` (Linux prints them as "Unknown kernel command line parameters").
pub fn unknown<'a>(line: &'a str, known: &'a [&str]) -> impl Iterator<Item = &'a str> {
    words(line).filter(|w| {
        let key = w.split_once('=').map_or(*w, |(k, _)| k);
        !known.contains(&key)
    })
}

/// The words of a command line: separated by whitespace outside double
/// quotes (Linux `next_arg`). An unclosed quote runs to the end.
pub fn words(line: &str) -> impl Iterator<Item = &str> {
    let mut rest = line;
    core::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    quoted = !quoted;
                }
                !quoted && c.is_ascii_whitespace()
            })
            .map_or(rest.len(), |(i, _)| i);
        let (word, tail) = rest.split_at(end);
        rest = tail;
        Some(word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn values_may_be_quoted() {
        let line = r#"loglevel=info shell.cmd="meminfo; alloc 4K"  init=/bin/hello last="open"#;
        let split: Vec<&str> = words(line).collect();
        assert_eq!(split, ["loglevel=info", r#"shell.cmd="meminfo; alloc 4K""#, "init=/bin/hello", r#"last="open"#]);
        assert_eq!(parse(line, "shell.cmd"), Some("meminfo; alloc 4K"));
        assert_eq!(parse(line, "init"), Some("/bin/hello"));
        assert_eq!(parse(line, "last"), Some("open"), "an unclosed quote runs to the end");
        assert_eq!(parse(line, "shell"), None);
        assert_eq!(words("  ").count(), 0);
    }

    #[test]
    fn the_last_occurrence_wins_and_prefixes_do_not_match() {
        let line = "loglevel=info slub_debug loglevel=debug";
        assert_eq!(parse(line, "loglevel"), Some("debug"));
        assert!(has(line, "slub_debug"));
        assert!(has(line, "loglevel"), "a flag with a value is present");
        assert!(!has(line, "loglev"));
        assert!(!has(line, "slub_debug_panic"));
        assert_eq!(parse(line, "slub_debug"), None, "a bare flag has no value");
        assert_eq!(parse("init=", "init"), Some(""));
    }

    #[test]
    fn unknown_words_are_those_naming_no_known_parameter() {
        let known = ["loglevel", "init"];
        let line = r#"loglevel=debug quiet init=/x "init=a b" initcall_debug=1"#;
        let unknown: Vec<&str> = unknown(line, &known).collect();
        assert_eq!(unknown, ["quiet", r#""init=a b""#, "initcall_debug=1"]);
    }

    proptest! {
        /// Whatever the line, its words are non-empty slices of it, hold no
        /// unquoted whitespace, and cover every non-space byte.
        #[test]
        fn words_partition_any_line(line in "[a-z= \t\"]{0,40}") {
            let words: Vec<&str> = words(&line).collect();
            for w in &words {
                prop_assert!(!w.is_empty());
                prop_assert!(!w.starts_with(|c: char| c.is_ascii_whitespace()));
                prop_assert!(line.contains(w));
            }
            let non_space = |s: &str| s.chars().filter(|c| !c.is_ascii_whitespace()).count();
            prop_assert_eq!(words.iter().map(|w| non_space(w)).sum::<usize>(), non_space(&line));
            // parse never panics and returns a part of the line.
            if let Some(v) = parse(&line, "a") {
                prop_assert!(line.contains(v));
            }
        }
    }
}
