//! The console's line editor: Linux's canonical-mode line discipline
//! (`drivers/tty/n_tty.c`: ERASE, KILL and INTR characters, echo) with the
//! cursor movement and history a readline user expects.
//!
//! Bytes in, [`Input`] events out; what the terminal must show is
//! appended to an echo buffer, so the editor is tested without a UART.
//!
//! Keys: printable ASCII inserts at the cursor; Backspace or DEL erases
//! before it (VERASE); Ctrl-U erases the line (VKILL); Ctrl-C discards
//! it and reports [`Input::Interrupt`] (VINTR, echoed as `^C`); Enter
//! (CR, LF, or CR LF) ends it; the arrow keys (`ESC [ A/B/C/D`, or
//! `ESC O A/B/C/D` in application-cursor mode) walk the history and move
//! the cursor; Ctrl-A and Ctrl-E, or Home and End, go to the start and end.
//! Other control bytes and escape sequences (function keys) are ignored.

#![forbid(unsafe_code)]

use alloc::collections::VecDeque;
use alloc::string::String;
use core::fmt::Write as _;

/// Lines kept in the history.
pub const HISTORY_LEN: usize = 32;

/// Longest line; further input is refused with a bell.
pub const LINE_MAX: usize = 256;

/// What a byte of input completed.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// Nothing yet.
    Pending,
    /// A line, without its end.
    Line(String),
    /// Ctrl-C: the line so far was discarded.
    Interrupt,
}

/// Where an escape sequence is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Esc,
    /// After ESC [ (a CSI), with the parameter bytes seen so far ignored.
    Csi,
    /// After ESC O (SS3: xterm's F1-F4, and Home, End and the arrows in
    /// application-cursor mode); one byte follows.
    Ss3,
}

/// A line being edited, and the lines entered before it.
pub struct LineEditor {
    prompt: &'static str,
    line: String,
    cursor: usize,
    history: VecDeque<String>,
    /// Which history entry is shown (0 = newest), if the user walked up.
    browsing: Option<usize>,
    /// The line being typed before walking into the history.
    draft: String,
    escape: Escape,
    after_cr: bool,
}

impl LineEditor {
    /// An empty editor that redraws lines after `prompt`.
    pub fn new(prompt: &'static str) -> Self {
        LineEditor {
            prompt,
            line: String::new(),
            cursor: 0,
            history: VecDeque::new(),
            browsing: None,
            draft: String::new(),
            escape: Escape::None,
            after_cr: false,
        }
    }

    /// The prompt.
    pub fn prompt(&self) -> &'static str {
        self.prompt
    }

    /// The history, newest first.
    pub fn history(&self) -> impl Iterator<Item = &str> {
        self.history.iter().map(String::as_str)
    }

    /// Takes one byte from the terminal; what to show is appended to `echo`.
    pub fn feed(&mut self, byte: u8, echo: &mut String) -> Input {
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        match self.escape {
            Escape::Esc => {
                self.escape = match byte {
                    b'[' => Escape::Csi,
                    b'O' => Escape::Ss3,
                    _ => Escape::None,
                };
                return Input::Pending;
            }
            Escape::Csi => {
                // Parameter and intermediate bytes (0x20..0x3f) continue the
                // sequence; a final byte (0x40..0x7e) ends it.
                if (0x40..=0x7e).contains(&byte) {
                    self.escape = Escape::None;
                    self.key(byte, echo);
                } else if !(0x20..=0x3f).contains(&byte) {
                    self.escape = Escape::None;
                }
                return Input::Pending;
            }
            Escape::Ss3 => {
                self.escape = Escape::None;
                self.key(byte, echo);
                return Input::Pending;
            }
            Escape::None => {}
        }
        match byte {
            0x1b => self.escape = Escape::Esc,
            b'\r' | b'\n' => {
                if byte == b'\n' && after_cr {
                    return Input::Pending;
                }
                self.after_cr = byte == b'\r';
                echo.push('\n');
                let line = core::mem::take(&mut self.line);
                self.cursor = 0;
                self.browsing = None;
                self.remember(&line);
                return Input::Line(line);
            }
            0x03 => {
                echo.push_str("^C\n");
                self.line.clear();
                self.cursor = 0;
                self.browsing = None;
                return Input::Interrupt;
            }
            0x08 | 0x7f => {
                if self.cursor > 0 {
                    self.cursor -= 1;
                    self.line.remove(self.cursor);
                    if self.cursor == self.line.len() {
                        echo.push_str("\x08 \x08");
                    } else {
                        self.redraw(echo);
                    }
                }
            }
            0x15 => {
                self.line.clear();
                self.cursor = 0;
                self.redraw(echo);
            }
            0x01 => {
                self.cursor = 0;
                self.redraw(echo);
            }
            0x05 => {
                self.cursor = self.line.len();
                self.redraw(echo);
            }
            0x20..=0x7e => {
                if self.line.len() >= LINE_MAX {
                    echo.push('\x07');
                } else {
                    self.line.insert(self.cursor, char::from(byte));
                    self.cursor += 1;
                    if self.cursor == self.line.len() {
                        echo.push(char::from(byte));
                    } else {
                        self.redraw(echo);
                    }
                }
            }
            _ => {}
        }
        Input::Pending
    }

    /// The final byte of a CSI or SS3 key: arrows, Home (`H`), End (`F`);
    /// others (function keys) do nothing.
    fn key(&mut self, byte: u8, echo: &mut String) {
        match byte {
            b'A' => self.history_step(true, echo),
            b'B' => self.history_step(false, echo),
            b'C' if self.cursor < self.line.len() => {
                self.cursor += 1;
                echo.push_str("\x1b[C");
            }
            b'D' if self.cursor > 0 => {
                self.cursor -= 1;
                echo.push_str("\x1b[D");
            }
            b'H' => {
                self.cursor = 0;
                self.redraw(echo);
            }
            b'F' => {
                self.cursor = self.line.len();
                self.redraw(echo);
            }
            _ => {}
        }
    }

    /// Adds a line to the history: not empty ones, not the newest again.
    fn remember(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() || self.history.front().is_some_and(|l| l == line) {
            return;
        }
        if self.history.len() == HISTORY_LEN {
            self.history.pop_back();
        }
        self.history.push_front(String::from(line));
    }

    /// Up (`older`) or down the history.
    fn history_step(&mut self, older: bool, echo: &mut String) {
        let next = match (self.browsing, older) {
            (None, true) if !self.history.is_empty() => Some(0),
            (None, _) => return,
            (Some(i), true) if i + 1 < self.history.len() => Some(i + 1),
            (Some(_), true) => return,
            (Some(0), false) => None,
            (Some(i), false) => Some(i - 1),
        };
        if self.browsing.is_none() {
            self.draft = core::mem::take(&mut self.line);
        }
        self.browsing = next;
        self.line = match next {
            Some(i) => self.history[i].clone(),
            None => core::mem::take(&mut self.draft),
        };
        self.cursor = self.line.len();
        self.redraw(echo);
    }

    /// Rewrites the prompt and line, clears the rest of the terminal line
    /// and puts the terminal's cursor where ours is.
    fn redraw(&self, echo: &mut String) {
        let _ = write!(echo, "\r{}{}\x1b[K", self.prompt, self.line);
        let back = self.line.len() - self.cursor;
        if back > 0 {
            let _ = write!(echo, "\x1b[{back}D");
        }
    }
}
