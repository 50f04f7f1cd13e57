//! Host-test helper: reads the `#define`s of the host's installed Linux uapi
//! headers, so the tables in this crate are compared with the real ones
//! rather than with numbers copied into the tests. A host without the
//! headers skips those comparisons with a message.
//!
//! This is not a C preprocessor: it follows `#include <linux/...>`,
//! `<asm/...>` and `<asm-generic/...>` lines, ignores every conditional and
//! keeps the first definition of a name. That is what the uapi headers need
//! for x86_64: their conditionals are `#ifndef NAME` guards around a default
//! that an arch header has already defined (first wins) and `__KERNEL__` or
//! 32-bit blocks whose names we do not check. Values are evaluated as
//! integer constant expressions: literals, other names, parentheses, casts
//! (ignored), unary `- ~ !` and binary `* / % + - << >> & ^ |`.

use std::collections::HashMap;
use std::path::PathBuf;

/// Where the uapi headers live: the generic ones and Debian's multiarch
/// `asm/` directory.
const INCLUDE_DIRS: [&str; 2] = ["/usr/include", "/usr/include/x86_64-linux-gnu"];

/// Nesting limit for names defined through other names.
const MAX_DEPTH: u32 = 16;

/// The object-like `#define NAME VALUE` lines of the header at `path`, as
/// (name, first token of the value) pairs, or `None` if the header is absent.
pub fn defines(path: &str) -> Option<Vec<(String, String)>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        println!("skipped: {path} is not installed on this host");
        return None;
    };
    let defines = text
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("#define")?.split_whitespace();
            let name = words.next()?;
            let value = words.next()?;
            let function_like = name.contains('(');
            (!function_like).then(|| (name.to_owned(), value.to_owned()))
        })
        .collect();
    Some(defines)
}

/// The object-like macros of some headers and of the headers they include.
pub struct Defines {
    /// Where the headers were looked for, for messages.
    headers: String,
    /// Name to replacement text (comments removed).
    bodies: HashMap<String, String>,
}

impl Defines {
    /// Reads `headers` (paths below `/usr/include`, as in `#include <...>`)
    /// and everything they include, or `None` with a message if one of them
    /// is not installed.
    pub fn load(headers: &[&str]) -> Option<Self> {
        let mut defines = Defines { headers: headers.join(", "), bodies: HashMap::new() };
        let mut seen = Vec::new();
        for header in headers {
            if !defines.read(header, &mut seen) {
                println!("skipped: <{header}> is not installed on this host");
                return None;
            }
        }
        Some(defines)
    }

    /// Reads one header and its includes; false if it is not installed.
    fn read(&mut self, header: &str, seen: &mut Vec<String>) -> bool {
        if seen.iter().any(|h| h == header) {
            return true;
        }
        seen.push(header.to_owned());
        let Some(text) = INCLUDE_DIRS
            .iter()
            .map(|dir| PathBuf::from(dir).join(header))
            .find_map(|path| std::fs::read_to_string(path).ok())
        else {
            return false;
        };
        for line in strip_comments(&text).replace("\\\n", " ").lines() {
            let line = line.trim_start().trim_start_matches('#').trim_start();
            if let Some(included) = line.strip_prefix("include") {
                let included = included.trim().trim_start_matches('<').trim_end_matches('>');
                let uapi = ["linux/", "asm/", "asm-generic/"].iter().any(|dir| included.starts_with(dir));
                // An include the uapi headers guard by an arch or libc
                // condition may be absent; what it would define then fails
                // the comparison by name.
                if uapi {
                    self.read(included, seen);
                }
            } else if let Some(define) = line.strip_prefix("define") {
                let define = define.trim_start();
                let name_end = define.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(define.len());
                let (name, body) = define.split_at(name_end);
                let function_like = body.starts_with('(');
                if !name.is_empty() && !function_like {
                    self.bodies.entry(name.to_owned()).or_insert_with(|| body.trim().to_owned());
                }
            }
        }
        true
    }

    /// The value of `name` as the C compiler computes it (in 128 bits,
    /// unsuffixed by type), or why it cannot be had.
    pub fn value(&self, name: &str) -> Result<i128, String> {
        self.eval_name(name, 0)
    }

    fn eval_name(&self, name: &str, depth: u32) -> Result<i128, String> {
        if depth > MAX_DEPTH {
            return Err(format!("{name}: definitions nest deeper than {MAX_DEPTH}"));
        }
        let body = self.bodies.get(name).ok_or_else(|| format!("{name} is not defined in {}", self.headers))?;
        let tokens = tokenize(body).map_err(|e| format!("{name} = {body}: {e}"))?;
        let mut parser = Parser { defines: self, tokens: &tokens, pos: 0, depth };
        let value = parser.expr(0).map_err(|e| format!("{name} = {body}: {e}"))?;
        if parser.pos != tokens.len() {
            return Err(format!("{name} = {body}: not an integer expression"));
        }
        Ok(value)
    }

    /// Asserts that the header defines `name` as `ours`. Both sides are
    /// compared as 64-bit patterns: C's `~0UL` is `u64::MAX`, which this
    /// evaluator (without C's types) computes as -1.
    #[track_caller]
    pub fn assert_value(&self, name: &str, ours: i128) {
        match self.value(name) {
            Ok(theirs) => assert_eq!(theirs as u64, ours as u64, "{name}: header {theirs:#x}, ours {ours:#x}"),
            Err(why) => panic!("{why}"),
        }
    }
}

/// Asserts that every named constant of this crate has the value the host's
/// headers give it; does nothing (with a message) where they are missing.
macro_rules! assert_defines_match {
    ($headers:expr; $($name:ident),+ $(,)?) => {
        if let Some(defines) = $crate::host_headers::Defines::load($headers) {
            $(defines.assert_value(stringify!($name), $name as i128);)+
        }
    };
}
pub(crate) use assert_defines_match;

/// `text` with its `/* */` and `//` comments replaced by a space.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("/*").into_iter().chain(rest.find("//")).min() {
        out.push_str(&rest[..start]);
        out.push(' ');
        rest = if rest[start..].starts_with("/*") {
            rest[start + 2..].find("*/").map_or("", |end| &rest[start + 2 + end + 2..])
        } else {
            rest[start..].find('\n').map_or("", |end| &rest[start + end..])
        };
    }
    out.push_str(rest);
    out
}

#[derive(Debug, PartialEq)]
enum Token {
    Number(i128),
    Name(String),
    Op(&'static str),
}

const OPERATORS: [&str; 14] = ["<<", ">>", "(", ")", "~", "!", "*", "/", "%", "+", "-", "&", "^", "|"];

fn tokenize(body: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let word_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if word_len > 0 {
            let word = &rest[..word_len];
            if word.starts_with(|c: char| c.is_ascii_digit()) {
                tokens.push(Token::Number(parse_number(word)?));
            } else {
                tokens.push(Token::Name(word.to_owned()));
            }
            rest = &rest[word_len..];
        } else if let Some(op) = OPERATORS.iter().find(|op| rest.starts_with(**op)) {
            tokens.push(Token::Op(op));
            rest = &rest[op.len()..];
        } else {
            return Err(format!("unexpected `{}`", rest.chars().next().unwrap_or(' ')));
        }
        rest = rest.trim_start();
    }
    Ok(tokens)
}

/// A C integer literal: decimal, `0x` hex or leading-0 octal, with any
/// `u`/`l` suffix.
fn parse_number(word: &str) -> Result<i128, String> {
    let digits = word.trim_end_matches(['u', 'U', 'l', 'L']);
    let parsed = if let Some(hex) = digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        i128::from_str_radix(hex, 16)
    } else if digits.len() > 1 && digits.starts_with('0') {
        i128::from_str_radix(&digits[1..], 8)
    } else {
        digits.parse()
    };
    parsed.map_err(|e| format!("bad number {word}: {e}"))
}

struct Parser<'a> {
    defines: &'a Defines,
    tokens: &'a [Token],
    pos: usize,
    depth: u32,
}

/// Binary operators by C precedence, loosest first.
const BINARY: [&[&str]; 6] = [&["|"], &["^"], &["&"], &["<<", ">>"], &["+", "-"], &["*", "/", "%"]];

impl Parser<'_> {
    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.pos);
        self.pos += 1;
        token
    }

    fn peek_op(&self) -> Option<&'static str> {
        match self.tokens.get(self.pos) {
            Some(Token::Op(op)) => Some(op),
            _ => None,
        }
    }

    /// After an opening parenthesis: skips a cast such as
    /// `(__sighandler_t)` or `(unsigned long *)` (names that are not macros,
    /// an optional `*`, the closing parenthesis), since values here have no
    /// C types.
    fn skip_cast(&mut self) -> bool {
        let mut end = self.pos;
        while let Some(Token::Name(name)) = self.tokens.get(end) {
            if self.defines.bodies.contains_key(name) {
                return false;
            }
            end += 1;
        }
        if end > self.pos && self.tokens.get(end) == Some(&Token::Op("*")) {
            end += 1;
        }
        if end == self.pos || self.tokens.get(end) != Some(&Token::Op(")")) {
            return false;
        }
        self.pos = end + 1;
        true
    }

    /// Operators of precedence `level` and tighter, left to right.
    fn expr(&mut self, level: usize) -> Result<i128, String> {
        let Some(ops) = BINARY.get(level) else { return self.unary() };
        let mut value = self.expr(level + 1)?;
        while let Some(op) = self.peek_op().filter(|op| ops.contains(op)) {
            self.pos += 1;
            let rhs = self.expr(level + 1)?;
            value = match op {
                "|" => value | rhs,
                "^" => value ^ rhs,
                "&" => value & rhs,
                "<<" => u32::try_from(rhs).ok().and_then(|r| value.checked_shl(r)).ok_or("bad shift")?,
                ">>" => u32::try_from(rhs).ok().and_then(|r| value.checked_shr(r)).ok_or("bad shift")?,
                "+" => value.checked_add(rhs).ok_or("overflow")?,
                "-" => value.checked_sub(rhs).ok_or("overflow")?,
                "*" => value.checked_mul(rhs).ok_or("overflow")?,
                "/" => value.checked_div(rhs).ok_or("division by zero")?,
                _ => value.checked_rem(rhs).ok_or("division by zero")?,
            };
        }
        Ok(value)
    }

    fn unary(&mut self) -> Result<i128, String> {
        let depth = self.depth;
        match self.next() {
            Some(Token::Number(n)) => Ok(*n),
            Some(Token::Name(name)) => {
                let name = name.clone();
                self.defines.eval_name(&name, depth + 1)
            }
            Some(Token::Op("-")) => Ok(-self.unary()?),
            Some(Token::Op("~")) => Ok(!self.unary()?),
            Some(Token::Op("!")) => Ok(i128::from(self.unary()? == 0)),
            Some(Token::Op("(")) => {
                if self.skip_cast() {
                    return self.unary();
                }
                let value = self.expr(0)?;
                match self.next() {
                    Some(Token::Op(")")) => Ok(value),
                    _ => Err("unbalanced parentheses".into()),
                }
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defines(pairs: &[(&str, &str)]) -> Defines {
        let bodies = pairs.iter().map(|(n, b)| ((*n).to_owned(), (*b).to_owned())).collect();
        Defines { headers: "test".into(), bodies }
    }

    #[test]
    fn expressions_evaluate_as_in_c() {
        let d = defines(&[
            ("A", "0x10"),
            ("B", "(A | 010)"),
            ("C", "(~0UL)"),
            ("D", "(1U << 4) + -B * 2"),
            ("LOOP", "LOOP"),
            ("CAST", "((int)1)"),
        ]);
        assert_eq!(d.value("B"), Ok(0x18));
        assert_eq!(d.value("C"), Ok(-1));
        assert_eq!(d.value("D"), Ok(16 - 48));
        assert!(d.value("LOOP").is_err());
        assert_eq!(d.value("CAST"), Ok(1));
        assert!(d.value("MISSING").is_err());
    }

    #[test]
    fn comments_and_continuations_are_not_values() {
        assert_eq!(strip_comments("a /* x\n y */ b // c\nd"), "a   b  \nd");
    }
}
