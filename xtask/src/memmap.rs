//! `cargo xtask memmap`: SVG pictures of the kernel's `kmemmap` dump.
//!
//! Mirrors the kernel's pageblock map, `mm/src/kmemmap.rs`, whose module
//! documentation defines the text format read here. Linux draws no such
//! picture; its nearest are `/proc/pagetypeinfo`'s block counts per
//! migratetype and `tools/mm/page-types`. The picture spreads those counts
//! over physical memory, so fragmentation shows at a glance: unmovable
//! blocks scattered through movable memory, part-used blocks everywhere.
//!
//! [`parse_dumps`] reads every dump in a console log, with whatever else the
//! console printed around them. A malformed dump is refused with its line
//! and what is wrong rather than drawn: a truncated or interleaved capture
//! would otherwise render as a plausible but false map. [`render_svg`] draws
//! one dump: a square per pageblock coloured by migratetype and shaded by the
//! part of its pages in use; its tooltip also gives the part on LRU lists.
//! [`render_console`] writes one picture per dump.
//! Written by hand like `plot.rs`: the drawing is a grid of squares, and SVG
//! text needs no fonts installed.

use std::fmt::{self, Write as _};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// How a dump begins: `kmemmap: N pageblocks of K KiB (order O), P per row`.
const HEADER_PREFIX: &str = "kmemmap: ";
/// How a dump ends.
const END: &str = "kmemmap: end";
/// The kernel's page size in KiB: a pageblock of order `o` is `PAGE_KIB << o` KiB.
const PAGE_KIB: u64 = 4;

/// A physical address (the kernel's `PhysAddr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PhysAddr(pub u64);

impl fmt::Display for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// A pageblock's migratetype (Linux `enum migratetype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Migratetype {
    Unmovable,
    Movable,
    Reclaimable,
    HighAtomic,
    Isolate,
}

impl Migratetype {
    /// In the legend's order, which is the dump's.
    const ALL: [Migratetype; 5] = [
        Migratetype::Unmovable,
        Migratetype::Movable,
        Migratetype::Reclaimable,
        Migratetype::HighAtomic,
        Migratetype::Isolate,
    ];

    /// The migratetype of a lower-case dump letter (Linux
    /// `show_migration_types`' letters).
    fn from_letter(letter: char) -> Option<Self> {
        match letter {
            'u' => Some(Migratetype::Unmovable),
            'm' => Some(Migratetype::Movable),
            'e' => Some(Migratetype::Reclaimable),
            'h' => Some(Migratetype::HighAtomic),
            'i' => Some(Migratetype::Isolate),
            _ => None,
        }
    }

    /// Its name in the legend (the dump's legend line).
    fn name(self) -> &'static str {
        match self {
            Migratetype::Unmovable => "unmovable",
            Migratetype::Movable => "movable",
            Migratetype::Reclaimable => "reclaimable",
            Migratetype::HighAtomic => "highatomic",
            Migratetype::Isolate => "isolated",
        }
    }

    /// Its colour: Tableau 10 hues, told apart by most colour-blind readers.
    fn color(self) -> &'static str {
        match self {
            Migratetype::Unmovable => "#e15759",
            Migratetype::Movable => "#4e79a7",
            Migratetype::Reclaimable => "#59a14f",
            Migratetype::HighAtomic => "#f28e2b",
            Migratetype::Isolate => "#b07aa1",
        }
    }
}

/// One pageblock of the map: its character, fill and LRU digits, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pageblock {
    /// No memory (` `, fill and LRU `-`).
    Hole,
    /// Every present page reserved (`R`, fill and LRU `-`).
    Reserved,
    /// Every present page free (a lower-case letter, fill and LRU `0`).
    Free(Migratetype),
    /// Some present page in use or reserved (an upper-case letter).
    InUse {
        migratetype: Migratetype,
        /// `ceil(9 * used / present)`, 1 to 9.
        fill: u8,
        /// `ceil(9 * lru / present)`, 0 to `fill`.
        lru: u8,
    },
}

/// A zone's line of the dump.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Zone {
    /// Linux's zone name (`DMA`, `DMA32`, `Normal`, ...).
    name: String,
    /// First and last byte, or `None` for an empty zone.
    span: Option<(PhysAddr, PhysAddr)>,
}

/// One `kmemmap` dump, checked: it has the header's number of pageblocks in
/// rows of the header's length, at consecutive addresses, and every zone
/// starts inside it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kmemmap {
    /// Pageblock order (Linux `pageblock_order`).
    order: u32,
    /// Pageblocks per row (at least 1).
    per_row: usize,
    /// Address of the first pageblock.
    base: PhysAddr,
    /// The zones in the dump's order.
    zones: Vec<Zone>,
    /// Every pageblock from `base` up (at least 1).
    pageblocks: Vec<Pageblock>,
}

impl Kmemmap {
    /// Pageblocks in the map (holes included).
    pub fn nr_blocks(&self) -> usize {
        self.pageblocks.len()
    }

    /// Bytes per pageblock.
    fn pageblock_bytes(&self) -> u64 {
        (PAGE_KIB * 1024) << self.order
    }

    /// Address of pageblock `index` (the parser checked that the map's end
    /// fits in 64 bits).
    fn pageblock_addr(&self, index: usize) -> PhysAddr {
        PhysAddr(self.base.0 + index as u64 * self.pageblock_bytes())
    }

    /// The pageblock holding `addr`, which lies inside the map.
    fn pageblock_index(&self, addr: PhysAddr) -> usize {
        ((addr.0 - self.base.0) / self.pageblock_bytes()) as usize
    }

    fn rows(&self) -> usize {
        self.pageblocks.len().div_ceil(self.per_row)
    }
}

/// What is wrong with a dump's line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DumpProblem {
    /// Not `kmemmap: N pageblocks of K KiB (order O), P per row`.
    BadHeader,
    /// The header counts no pageblocks, or none per row.
    ZeroInHeader,
    /// The header's pageblock size is not the page size shifted by the order.
    PageblockSize {
        /// KiB per pageblock as printed.
        kib: u64,
        /// The order as printed.
        order: u32,
    },
    /// The map would end past the top of the 64-bit physical address space.
    MapTooLarge,
    /// `kmemmap: end` with no dump begun.
    EndWithoutHeader,
    /// A dump's end line is missing: here the console ends or the next
    /// dump begins.
    MissingEnd {
        /// The line of the unfinished dump's header.
        header_line: usize,
    },
    /// A line inside a dump that belongs to no dump.
    UnexpectedLine {
        /// What the dump has at this point.
        expected: &'static str,
    },
    /// Not `zone NAME START-END` or `zone NAME empty`.
    BadZone,
    /// A zone whose last byte is below its first.
    ZoneReversed {
        /// The zone's name.
        name: String,
    },
    /// A zone that starts outside the map's pageblocks.
    ZoneOutsideMap {
        /// The zone's name.
        name: String,
        /// Its first byte.
        start: PhysAddr,
    },
    /// Not `0xADDRESS |BLOCKS| FILL LRU` with a 16-digit address.
    BadRow,
    /// A row after the header's pageblocks have all been shown.
    ExtraRow,
    /// A row that does not start where the previous one ended.
    RowAddress {
        /// Where it should start.
        expected: PhysAddr,
        /// Where it says it starts.
        found: PhysAddr,
    },
    /// A row with the wrong number of pageblocks (every row but the last has
    /// the header's number per row; the last has the rest).
    RowLength {
        /// Pageblocks it should show.
        expected: usize,
        /// Pageblocks it shows.
        found: usize,
    },
    /// A row whose fill digits do not match its pageblocks one for one.
    FillLength {
        /// Pageblock characters.
        blocks: usize,
        /// Fill characters.
        fills: usize,
    },
    /// A row whose LRU digits do not match its pageblocks one for one.
    LruLength {
        /// Pageblock characters.
        blocks: usize,
        /// LRU characters.
        lrus: usize,
    },
    /// A pageblock character that is no migratetype letter, `R` or space.
    UnknownBlock {
        /// The pageblock's index in the map.
        pageblock: usize,
        /// Its character.
        symbol: char,
    },
    /// A fill character that is no digit or `-`.
    UnknownFill {
        /// The pageblock's index in the map.
        pageblock: usize,
        /// Its fill character.
        fill: char,
    },
    /// A fill that cannot go with the pageblock's character: a free block
    /// (lower case) is `0`, one in use (upper case) 1 to 9, a reserved one or
    /// a hole `-`.
    FillContradictsBlock {
        /// The pageblock's index in the map.
        pageblock: usize,
        /// Its character.
        symbol: char,
        /// Its fill character.
        fill: char,
    },
    /// An LRU character that is no digit or `-`.
    UnknownLru {
        /// The pageblock's index in the map.
        pageblock: usize,
        /// Its LRU character.
        lru: char,
    },
    /// An LRU digit that cannot go with the pageblock's fill: `-` exactly
    /// where the fill is `-`, otherwise a digit no higher than the fill's
    /// (a page on an LRU list is in use).
    LruContradictsFill {
        /// The pageblock's index in the map.
        pageblock: usize,
        /// Its fill character.
        fill: char,
        /// Its LRU character.
        lru: char,
    },
    /// `kmemmap: end` before the header's number of pageblocks.
    MissingRows {
        /// Pageblocks in the header.
        expected: usize,
        /// Pageblocks in the rows.
        found: usize,
    },
}

impl fmt::Display for DumpProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DumpProblem::BadHeader => {
                write!(f, "header is not `kmemmap: N pageblocks of K KiB (order O), P per row`")
            }
            DumpProblem::ZeroInHeader => write!(f, "header counts zero pageblocks or zero per row"),
            DumpProblem::PageblockSize { kib, order } => {
                write!(f, "header's {kib} KiB pageblocks are not {PAGE_KIB} KiB pages of order {order}")
            }
            DumpProblem::MapTooLarge => write!(f, "the map ends past the 64-bit physical address space"),
            DumpProblem::EndWithoutHeader => write!(f, "`{END}` without a dump begun"),
            DumpProblem::MissingEnd { header_line } => {
                write!(f, "expected `{END}` for the dump begun at line {header_line}")
            }
            DumpProblem::UnexpectedLine { expected } => write!(f, "unexpected line in a dump; expected {expected}"),
            DumpProblem::BadZone => write!(f, "zone line is not `zone NAME 0xSTART-0xEND` or `zone NAME empty`"),
            DumpProblem::ZoneReversed { name } => write!(f, "zone {name} ends before it starts"),
            DumpProblem::ZoneOutsideMap { name, start } => {
                write!(f, "zone {name} starts at {start}, outside the map's pageblocks")
            }
            DumpProblem::BadRow => write!(f, "row is not `0xADDRESS |BLOCKS| FILL LRU` with 16 hex digits"),
            DumpProblem::ExtraRow => write!(f, "row past the header's number of pageblocks"),
            DumpProblem::RowAddress { expected, found } => {
                write!(f, "row starts at {found}, expected {expected} (where the previous row ends)")
            }
            DumpProblem::RowLength { expected, found } => {
                write!(f, "row has {found} pageblocks, expected {expected}")
            }
            DumpProblem::FillLength { blocks, fills } => {
                write!(f, "row has {blocks} pageblocks but {fills} fill characters")
            }
            DumpProblem::LruLength { blocks, lrus } => {
                write!(f, "row has {blocks} pageblocks but {lrus} LRU characters")
            }
            DumpProblem::UnknownBlock { pageblock, symbol } => {
                write!(f, "pageblock {pageblock}: unknown character {symbol:?}")
            }
            DumpProblem::UnknownFill { pageblock, fill } => {
                write!(f, "pageblock {pageblock}: unknown fill character {fill:?}")
            }
            DumpProblem::FillContradictsBlock { pageblock, symbol, fill } => {
                write!(f, "pageblock {pageblock}: fill {fill:?} cannot go with {symbol:?}")
            }
            DumpProblem::UnknownLru { pageblock, lru } => {
                write!(f, "pageblock {pageblock}: unknown LRU character {lru:?}")
            }
            DumpProblem::LruContradictsFill { pageblock, fill, lru } => {
                write!(f, "pageblock {pageblock}: LRU {lru:?} cannot go with fill {fill:?}")
            }
            DumpProblem::MissingRows { expected, found } => {
                write!(f, "dump ends after {found} of its {expected} pageblocks")
            }
        }
    }
}

/// Why no picture could be made.
#[derive(Debug)]
pub enum MemmapError {
    /// A dump in the console is malformed.
    Malformed {
        /// The console line (from 1) where it goes wrong.
        line: usize,
        /// What is wrong there.
        problem: DumpProblem,
    },
    /// The console holds no dump.
    NoDump,
    /// Writing a picture or its directory failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl fmt::Display for MemmapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemmapError::Malformed { line, problem } => write!(f, "line {line}: {problem}"),
            MemmapError::NoDump => {
                write!(f, "no kmemmap dump in the console (one begins `{HEADER_PREFIX}N pageblocks of ...`)")
            }
            MemmapError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for MemmapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MemmapError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn malformed(line: usize, problem: DumpProblem) -> MemmapError {
    MemmapError::Malformed { line, problem }
}

/// Every `kmemmap` dump in `console`, in order. Lines outside dumps are
/// ignored; line ends may be `\n` or `\r\n`.
pub fn parse_dumps(console: &str) -> Result<Vec<Kmemmap>, MemmapError> {
    let mut lines = console.lines().enumerate().map(|(i, line)| (i + 1, line.trim_end_matches('\r')));
    let mut dumps = Vec::new();
    while let Some((no, line)) = lines.next() {
        if line == END {
            return Err(malformed(no, DumpProblem::EndWithoutHeader));
        }
        if line.starts_with(HEADER_PREFIX) {
            dumps.push(parse_dump(no, line, &mut lines)?);
        }
    }
    Ok(dumps)
}

/// The header's numbers, checked.
struct Header {
    pageblocks: usize,
    order: u32,
    per_row: usize,
    /// Bytes per pageblock.
    pageblock_bytes: u64,
    /// Bytes the whole map covers.
    map_bytes: u64,
}

fn parse_header(line: &str) -> Result<Header, DumpProblem> {
    let fields = || {
        let rest = line.strip_prefix(HEADER_PREFIX)?;
        let (pageblocks, rest) = rest.split_once(" pageblocks of ")?;
        let (kib, rest) = rest.split_once(" KiB (order ")?;
        let (order, rest) = rest.split_once("), ")?;
        let per_row = rest.strip_suffix(" per row")?;
        Some((
            pageblocks.parse::<usize>().ok()?,
            kib.parse::<u64>().ok()?,
            order.parse::<u32>().ok()?,
            per_row.parse::<usize>().ok()?,
        ))
    };
    let (pageblocks, kib, order, per_row) = fields().ok_or(DumpProblem::BadHeader)?;
    if pageblocks == 0 || per_row == 0 {
        return Err(DumpProblem::ZeroInHeader);
    }
    if 1u64.checked_shl(order).and_then(|pages| pages.checked_mul(PAGE_KIB)) != Some(kib) {
        return Err(DumpProblem::PageblockSize { kib, order });
    }
    let pageblock_bytes = kib.checked_mul(1024).ok_or(DumpProblem::MapTooLarge)?;
    let map_bytes = pageblock_bytes.checked_mul(pageblocks as u64).ok_or(DumpProblem::MapTooLarge)?;
    Ok(Header { pageblocks, order, per_row, pageblock_bytes, map_bytes })
}

/// `0x` and 1 to 16 hex digits.
fn parse_addr(text: &str) -> Option<PhysAddr> {
    let hex = text.strip_prefix("0x")?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(PhysAddr)
}

fn parse_zone(line: &str) -> Result<Zone, DumpProblem> {
    let mut words = line.split_whitespace();
    let (Some("zone"), Some(name), Some(range), None) = (words.next(), words.next(), words.next(), words.next()) else {
        return Err(DumpProblem::BadZone);
    };
    let name = name.to_string();
    if range == "empty" {
        return Ok(Zone { name, span: None });
    }
    let (start, end) = range.split_once('-').ok_or(DumpProblem::BadZone)?;
    let (start, end) = (parse_addr(start).ok_or(DumpProblem::BadZone)?, parse_addr(end).ok_or(DumpProblem::BadZone)?);
    if end < start {
        return Err(DumpProblem::ZoneReversed { name });
    }
    Ok(Zone { name, span: Some((start, end)) })
}

/// A row's address, pageblock characters, fill characters and LRU
/// characters.
fn split_row(line: &str) -> Option<(PhysAddr, &str, &str, &str)> {
    // "0x" and 16 hex digits, as the kernel prints with {:#018x}.
    let addr = parse_addr(line.get(..18)?)?;
    let (symbols, digits) = line.get(18..)?.strip_prefix(" |")?.split_once('|')?;
    let (fills, lrus) = digits.strip_prefix(' ')?.split_once(' ')?;
    Some((addr, symbols, fills, lrus))
}

/// Decodes pageblock `index`'s character, fill and LRU digit.
fn parse_pageblock(index: usize, symbol: char, fill: char, lru: char) -> Result<Pageblock, DumpProblem> {
    let migratetype = match symbol {
        ' ' | 'R' => None,
        _ => Some(
            Migratetype::from_letter(symbol.to_ascii_lowercase())
                .ok_or(DumpProblem::UnknownBlock { pageblock: index, symbol })?,
        ),
    };
    let digit = match fill {
        '-' => None,
        '0'..='9' => Some(fill as u8 - b'0'),
        _ => return Err(DumpProblem::UnknownFill { pageblock: index, fill }),
    };
    let block = match (symbol, migratetype, digit) {
        (' ', _, None) => Pageblock::Hole,
        ('R', _, None) => Pageblock::Reserved,
        (_, Some(migratetype), Some(0)) if symbol.is_ascii_lowercase() => Pageblock::Free(migratetype),
        (_, Some(migratetype), Some(fill @ 1..=9)) if symbol.is_ascii_uppercase() => {
            Pageblock::InUse { migratetype, fill, lru: 0 }
        }
        _ => return Err(DumpProblem::FillContradictsBlock { pageblock: index, symbol, fill }),
    };
    let lru_digit = match lru {
        '-' => None,
        '0'..='9' => Some(lru as u8 - b'0'),
        _ => return Err(DumpProblem::UnknownLru { pageblock: index, lru }),
    };
    match (block, lru_digit) {
        (Pageblock::Hole | Pageblock::Reserved, None) | (Pageblock::Free(_), Some(0)) => Ok(block),
        (Pageblock::InUse { migratetype, fill, .. }, Some(lru)) if lru <= fill => {
            Ok(Pageblock::InUse { migratetype, fill, lru })
        }
        _ => Err(DumpProblem::LruContradictsFill { pageblock: index, fill, lru }),
    }
}

/// Reads the dump whose header is line `header_no`, up to its end line.
fn parse_dump<'a>(
    header_no: usize,
    header_line: &str,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Result<Kmemmap, MemmapError> {
    const BEFORE_ROWS: &str = "a `legend:`, `zone` or row line";
    const AMONG_ROWS: &str = "a row or `kmemmap: end`";
    let header = parse_header(header_line).map_err(|problem| malformed(header_no, problem))?;
    let missing_end = DumpProblem::MissingEnd { header_line: header_no };
    let mut zones: Vec<(usize, Zone)> = Vec::new();
    let mut pageblocks = Vec::new();
    let mut base = None;
    let mut last_no = header_no;
    let end_no = loop {
        let Some((no, line)) = lines.next() else {
            return Err(malformed(last_no + 1, missing_end));
        };
        last_no = no;
        let fail = |problem| malformed(no, problem);
        if line == END {
            break no;
        }
        if line.starts_with(HEADER_PREFIX) {
            return Err(fail(missing_end));
        }
        if line.starts_with("0x") {
            let (addr, symbols, fills, lrus) = split_row(line).ok_or_else(|| fail(DumpProblem::BadRow))?;
            let remaining = header.pageblocks - pageblocks.len();
            if remaining == 0 {
                return Err(fail(DumpProblem::ExtraRow));
            }
            let base = *base.get_or_insert(addr);
            if base.0.checked_add(header.map_bytes).is_none() {
                return Err(fail(DumpProblem::MapTooLarge));
            }
            let expected = PhysAddr(base.0 + pageblocks.len() as u64 * header.pageblock_bytes);
            if addr != expected {
                return Err(fail(DumpProblem::RowAddress { expected, found: addr }));
            }
            let symbols: Vec<char> = symbols.chars().collect();
            let (fills, lrus): (Vec<char>, Vec<char>) = (fills.chars().collect(), lrus.chars().collect());
            let expected = remaining.min(header.per_row);
            if symbols.len() != expected {
                return Err(fail(DumpProblem::RowLength { expected, found: symbols.len() }));
            }
            if fills.len() != symbols.len() {
                return Err(fail(DumpProblem::FillLength { blocks: symbols.len(), fills: fills.len() }));
            }
            if lrus.len() != symbols.len() {
                return Err(fail(DumpProblem::LruLength { blocks: symbols.len(), lrus: lrus.len() }));
            }
            for ((symbol, fill), lru) in symbols.into_iter().zip(fills).zip(lrus) {
                pageblocks.push(parse_pageblock(pageblocks.len(), symbol, fill, lru).map_err(fail)?);
            }
            continue;
        }
        if base.is_none() && line.starts_with("legend:") {
            continue;
        }
        if base.is_none() && line.starts_with("zone ") {
            zones.push((no, parse_zone(line).map_err(fail)?));
            continue;
        }
        let expected = if base.is_none() { BEFORE_ROWS } else { AMONG_ROWS };
        return Err(fail(DumpProblem::UnexpectedLine { expected }));
    };
    let base = match base {
        Some(base) if pageblocks.len() == header.pageblocks => base,
        _ => {
            let problem = DumpProblem::MissingRows { expected: header.pageblocks, found: pageblocks.len() };
            return Err(malformed(end_no, problem));
        }
    };
    for (no, zone) in &zones {
        if let Some((start, _)) = zone.span
            && (start < base || start.0 - base.0 >= header.map_bytes)
        {
            return Err(malformed(*no, DumpProblem::ZoneOutsideMap { name: zone.name.clone(), start }));
        }
    }
    Ok(Kmemmap {
        order: header.order,
        per_row: header.per_row,
        base,
        zones: zones.into_iter().map(|(_, zone)| zone).collect(),
        pageblocks,
    })
}

/// Side of a pageblock's square, px.
const CELL: f64 = 10.0;
/// Gap between squares, px.
const GAP: f64 = 1.0;
const PITCH: f64 = CELL + GAP;
/// Left of the grid: room for a row's address.
const GRID_LEFT: f64 = 130.0;
/// Top of the grid: below the title, the legend and the column offsets.
const GRID_TOP: f64 = 112.0;
/// Rows between address labels.
const ROW_LABEL_EVERY: usize = 2;
/// Columns between offset labels.
const COLUMN_LABEL_EVERY: usize = 8;
const RESERVED_COLOR: &str = "#808080";
const ZONE_COLOR: &str = "#111";
/// Generous average glyph widths, px, for sizing the picture around text:
/// 12 px sans-serif, 11 px bold sans-serif and 10 px monospace.
const SANS_W: f64 = 7.0;
const BOLD_W: f64 = 8.5;
const MONO_W: f64 = 6.2;

/// Opacity of a pageblock's colour for its fill digit: free blocks pale,
/// full ones solid.
fn shade(fill: u8) -> f64 {
    0.15 + 0.85 * f64::from(fill) / 9.0
}

/// Text for SVG content: markup characters escaped, control characters
/// (invalid in XML 1.0) dropped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A byte count in the largest binary unit that divides it.
fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    match UNITS.iter().find(|(unit, _)| bytes != 0 && bytes.is_multiple_of(*unit)) {
        Some((unit, name)) => format!("{} {name}", bytes / unit),
        None => format!("{bytes} B"),
    }
}

/// Top-left corner of pageblock `index`'s square.
fn cell_xy(map: &Kmemmap, index: usize) -> (f64, f64) {
    (GRID_LEFT + (index % map.per_row) as f64 * PITCH, GRID_TOP + (index / map.per_row) as f64 * PITCH)
}

/// Draws `map` as a standalone SVG document titled `title`.
pub fn render_svg(map: &Kmemmap, title: &str) -> String {
    let bytes = map.pageblock_bytes();
    let count = |pred: fn(&Pageblock) -> bool| map.pageblocks.iter().filter(|b| pred(b)).count();
    let subtitle = format!(
        "{} pageblocks of {} (order {}), {} per row, {}-{}: {} free, {} in use, {} reserved, {} without memory",
        map.pageblocks.len(),
        size(bytes),
        map.order,
        map.per_row,
        map.base,
        PhysAddr(map.pageblock_addr(map.pageblocks.len() - 1).0 + (bytes - 1)),
        count(|b| matches!(b, Pageblock::Free(_))),
        count(|b| matches!(b, Pageblock::InUse { .. })),
        count(|b| matches!(b, Pageblock::Reserved)),
        count(|b| matches!(b, Pageblock::Hole)),
    );
    // Drawn first, measured as they go: the picture's width is whatever
    // the widest part needs.
    let mut body = String::new();
    let mut width = (10.0 + title.chars().count() as f64 * SANS_W * 1.4).max(10.0 + subtitle.len() as f64 * SANS_W);

    // Legend: each migratetype's free and full shade; reserved; holes.
    let mut x = 10.0;
    let _ = writeln!(body, r#"<g class="legend">"#);
    for migratetype in Migratetype::ALL {
        let _ = writeln!(
            body,
            r##"<rect x="{x}" y="54" width="{CELL}" height="{CELL}" fill="{0}" fill-opacity="{1:.2}"/><rect x="{2}" y="54" width="{CELL}" height="{CELL}" fill="{0}"/><text x="{3}" y="63">{4}</text>"##,
            migratetype.color(),
            shade(0),
            x + PITCH,
            x + 2.0 * PITCH + 4.0,
            migratetype.name()
        );
        x += 2.0 * PITCH + 4.0 + migratetype.name().len() as f64 * SANS_W + 12.0;
    }
    let _ = writeln!(
        body,
        r##"<rect x="{x}" y="54" width="{CELL}" height="{CELL}" fill="{RESERVED_COLOR}"/><text x="{0}" y="63">reserved</text><rect x="{1}" y="54.5" width="{2}" height="{2}" fill="white" stroke="#aaa"/><text x="{3}" y="63">no memory</text>"##,
        x + PITCH + 4.0,
        x + PITCH + 4.0 + 8.0 * SANS_W + 12.0,
        CELL - 1.0,
        x + 2.0 * PITCH + 8.0 + 8.0 * SANS_W + 12.0,
    );
    width = width.max(x + 2.0 * PITCH + 8.0 + 17.0 * SANS_W + 10.0);
    // Shading: the fill digits 0 to 9, in movable's colour.
    let _ = writeln!(body, r#"<text x="10" y="85">pages in use:</text>"#);
    let ramp_left = 10.0 + 14.0 * SANS_W;
    for fill in 0..=9u8 {
        let _ = writeln!(
            body,
            r#"<rect x="{}" y="76" width="{CELL}" height="{CELL}" fill="{}" fill-opacity="{:.2}"/>"#,
            ramp_left + f64::from(fill) * PITCH,
            Migratetype::Movable.color(),
            shade(fill)
        );
    }
    let note = "none (pale) to all (dark), in ninths: ceil(9 * used / present)";
    let x = ramp_left + 10.0 * PITCH + 6.0;
    let _ = writeln!(body, r#"<text x="{x}" y="85">{note}</text>"#);
    let x = x + note.len() as f64 * SANS_W + 16.0;
    let _ = writeln!(
        body,
        r##"<path d="M{x},76 V87 H{0}" fill="none" stroke="{ZONE_COLOR}" stroke-width="2"/><text x="{1}" y="85">zone start</text>"##,
        x + 14.0,
        x + 20.0
    );
    width = width.max(x + 20.0 + 10.0 * SANS_W + 10.0);
    let _ = writeln!(body, "</g>");

    // Axes: the offset of every few columns, the address of every few rows.
    let _ = writeln!(body, r##"<g class="axes" font-family="monospace" font-size="10" fill="#555">"##);
    for column in (0..map.per_row).step_by(COLUMN_LABEL_EVERY) {
        let offset = match column {
            0 => "0".to_string(),
            _ => size(column as u64 * bytes).replace(' ', "").replace("iB", ""),
        };
        let _ = writeln!(
            body,
            r#"<text x="{}" y="{}">+{offset}</text>"#,
            GRID_LEFT + column as f64 * PITCH,
            GRID_TOP - 4.0
        );
    }
    for row in (0..map.rows()).step_by(ROW_LABEL_EVERY) {
        let _ = writeln!(
            body,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            GRID_LEFT - 6.0,
            GRID_TOP + row as f64 * PITCH + CELL - 1.0,
            map.pageblock_addr(row * map.per_row)
        );
    }
    let _ = writeln!(body, "</g>");

    // The cells; holes are left blank.
    let _ = writeln!(body, r#"<g class="cells">"#);
    for (index, block) in map.pageblocks.iter().enumerate() {
        let (color, opacity, what) = match *block {
            Pageblock::Hole => continue,
            Pageblock::Reserved => (RESERVED_COLOR, 1.0, "reserved".to_string()),
            Pageblock::Free(migratetype) => {
                (migratetype.color(), shade(0), format!("{}, every page free", migratetype.name()))
            }
            Pageblock::InUse { migratetype, fill, lru } => (
                migratetype.color(),
                shade(fill),
                format!("{}, {fill}/9 in use, {lru}/9 on LRU lists", migratetype.name()),
            ),
        };
        let (x, y) = cell_xy(map, index);
        let _ = writeln!(
            body,
            r#"<rect class="cell" x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{color}" fill-opacity="{opacity:.2}"><title>pageblock {index} at {}: {what}</title></rect>"#,
            map.pageblock_addr(index)
        );
    }
    let _ = writeln!(body, "</g>");

    // Zone starts: a line between the zone's first pageblock and those
    // before it (a step where it starts mid-row), its name right of the row.
    let grid_right = GRID_LEFT + map.per_row as f64 * PITCH;
    let _ = writeln!(body, r#"<g class="zones">"#);
    let mut label_x = vec![grid_right + 6.0; map.rows()];
    for zone in &map.zones {
        let Some((start, end)) = zone.span else { continue };
        let index = map.pageblock_index(start);
        let (row, column) = (index / map.per_row, index % map.per_row);
        let left = GRID_LEFT - GAP / 2.0;
        let (x, top) = (left + column as f64 * PITCH, GRID_TOP + row as f64 * PITCH - GAP / 2.0);
        let _ = writeln!(
            body,
            r#"<path d="M{left},{0} H{x} V{top} H{1}" fill="none" stroke="{ZONE_COLOR}" stroke-width="2"><title>zone {2} {start}-{end}</title></path>"#,
            top + PITCH,
            grid_right - GAP / 2.0,
            escape(&zone.name)
        );
        let _ = writeln!(
            body,
            r#"<text x="{}" y="{}" font-size="11" font-weight="bold">{}</text>"#,
            label_x[row],
            top + PITCH - 1.5,
            escape(&zone.name)
        );
        label_x[row] += zone.name.chars().count() as f64 * BOLD_W + 12.0;
        width = width.max(label_x[row]);
    }
    let _ = writeln!(body, "</g>");

    // Zone key: each zone's range and pageblocks.
    let mut y = GRID_TOP + map.rows() as f64 * PITCH + 20.0;
    let _ = writeln!(body, r#"<g class="zone-key">"#);
    for zone in &map.zones {
        let range = match zone.span {
            Some((start, end)) => {
                let last = map.pageblock_index(end.min(map.pageblock_addr(map.pageblocks.len() - 1)));
                format!("{start}-{end}, pageblocks {}-{last}", map.pageblock_index(start))
            }
            None => "empty".to_string(),
        };
        let _ = writeln!(
            body,
            r#"<text x="10" y="{y}" font-weight="bold">zone {}</text><text x="{GRID_LEFT}" y="{y}" font-family="monospace" font-size="11">{range}</text>"#,
            escape(&zone.name)
        );
        width = width.max(GRID_LEFT + range.len() as f64 * MONO_W * 1.1 + 10.0);
        y += 16.0;
    }
    let _ = writeln!(body, "</g>");

    let width = width.max(grid_right + 10.0).ceil();
    let height = (y + 4.0).ceil();
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="17" font-weight="bold">{}</text>
<text x="10" y="42" fill="#555">{}</text>"##,
        escape(title),
        escape(&subtitle)
    );
    svg.push_str(&body);
    svg.push_str("</svg>\n");
    svg
}

/// Writes one picture per dump in `console` to `out_dir` (created if need
/// be) as `memmap-1.svg`, `memmap-2.svg`, ... in console order, and removes
/// higher-numbered ones left by an earlier run so the directory shows this
/// console only. Returns the pictures' paths.
pub fn render_console(console: &str, out_dir: &Path, title: &str) -> Result<Vec<PathBuf>, MemmapError> {
    let dumps = parse_dumps(console)?;
    if dumps.is_empty() {
        return Err(MemmapError::NoDump);
    }
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MemmapError::Io { path, source }
    };
    fs::create_dir_all(out_dir).map_err(io_error(out_dir))?;
    let picture = |n: usize| out_dir.join(format!("memmap-{n}.svg"));
    let mut paths = Vec::new();
    for (i, map) in dumps.iter().enumerate() {
        let title =
            if dumps.len() == 1 { title.to_string() } else { format!("{title} ({} of {})", i + 1, dumps.len()) };
        let path = picture(i + 1);
        fs::write(&path, render_svg(map, &title)).map_err(io_error(&path))?;
        paths.push(path);
    }
    let mut stale = dumps.len() + 1;
    while picture(stale).exists() {
        fs::remove_file(picture(stale)).map_err(io_error(&picture(stale)))?;
        stale += 1;
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The serial console of a 512 MiB QEMU machine (q35, SeaBIOS): boot
    /// log, a dump at the shell prompt, a stress run, a second dump,
    /// power-down, with the `\r\n` line ends the serial port sends. Written
    /// to the formats of `kernel/src/printk.rs` and `mm/src/kmemmap.rs`
    /// rather than captured, so that every migratetype, both cases, LRU
    /// pages (in an unmovable block too, where movable pages fell back) and
    /// the partly present top pageblock appear. The dumps' headers are lines
    /// 13 and 26.
    const CONSOLE_512M: &str = include_str!("memmap/testdata/kmemmap-512m.txt");

    /// A small map with holes: 24 MiB, memory missing at 10-16 MiB, DMA
    /// from 1 MiB, a short last row.
    const HOLES: &str = "\
boot noise
kmemmap: 12 pageblocks of 2048 KiB (order 9), 8 per row
legend: u/U unmovable  m/M movable  e/E reclaimable  h/H highatomic  i/I isolated  ...
zone DMA      0x0000000000100000-0x0000000000ffffff
zone DMA32    0x0000000001000000-0x00000000017fffff
zone Normal   empty
0x0000000000000000 |MmmmR   | 3000---- 2000----
0x0000000001000000 |UMuR| 910- 010-
kmemmap: end
";

    const MIB: u64 = 1 << 20;

    fn parse_one(console: &str) -> Kmemmap {
        let mut dumps = parse_dumps(console).unwrap();
        assert_eq!(dumps.len(), 1);
        dumps.remove(0)
    }

    /// (reserved, free, in use, holes) pageblocks.
    fn census(map: &Kmemmap) -> (usize, usize, usize, usize) {
        let count = |pred: fn(&Pageblock) -> bool| map.pageblocks.iter().filter(|b| pred(b)).count();
        (
            count(|b| *b == Pageblock::Reserved),
            count(|b| matches!(b, Pageblock::Free(_))),
            count(|b| matches!(b, Pageblock::InUse { .. })),
            count(|b| *b == Pageblock::Hole),
        )
    }

    /// The `<rect>` line of pageblock `index`'s cell.
    fn cell_line(svg: &str, index: usize) -> Option<&str> {
        let title = format!("<title>pageblock {index} at ");
        svg.lines().find(|line| line.contains(&title))
    }

    /// Checks that `svg` is one `svg` element whose tags all close in order,
    /// with quoted attributes and no bare `&` or stray `<` in text.
    fn check_well_formed(svg: &str) -> Result<(), String> {
        fn check_text(text: &str) -> Result<(), String> {
            for (i, _) in text.match_indices('&') {
                let entity = &text[i..];
                if !["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].iter().any(|e| entity.starts_with(e)) {
                    return Err(format!("bare `&` in {text:?}"));
                }
            }
            Ok(())
        }
        let mut open: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = svg;
        while let Some(lt) = rest.find('<') {
            let text = &rest[..lt];
            check_text(text)?;
            if open.is_empty() && !text.trim().is_empty() {
                return Err(format!("text outside the root: {text:?}"));
            }
            let gt = lt + rest[lt..].find('>').ok_or("unterminated tag")?;
            let tag = &rest[lt + 1..gt];
            rest = &rest[gt + 1..];
            if tag.contains('<') || !tag.matches('"').count().is_multiple_of(2) {
                return Err(format!("broken tag <{tag}>"));
            }
            if let Some(name) = tag.strip_prefix('/') {
                match open.pop() {
                    Some(opened) if opened == name.trim() => {}
                    opened => return Err(format!("</{name}> closes {opened:?}")),
                }
                continue;
            }
            let name = tag.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or_default();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':') {
                return Err(format!("bad element name in <{tag}>"));
            }
            if open.is_empty() {
                roots += 1;
                if name != "svg" || roots > 1 {
                    return Err(format!("root element <{name}> (number {roots})"));
                }
            }
            if !tag.ends_with('/') {
                open.push(name);
            }
        }
        check_text(rest)?;
        if !rest.trim().is_empty() {
            return Err(format!("text after the root: {rest:?}"));
        }
        match (open.last(), roots) {
            (Some(name), _) => Err(format!("<{name}> never closed")),
            (None, 0) => Err("no root element".to_string()),
            (None, _) => Ok(()),
        }
    }

    #[test]
    fn console_holds_both_dumps_with_their_header_numbers() {
        assert!(CONSOLE_512M.contains("\r\n"), "the serial port's line ends are kept");
        let dumps = parse_dumps(CONSOLE_512M).unwrap();
        assert_eq!(dumps.len(), 2);
        for map in &dumps {
            assert_eq!(map.nr_blocks(), 256);
            assert_eq!((map.order, map.per_row, map.base), (9, 64, PhysAddr(0)));
            assert_eq!(map.pageblock_bytes(), 2 * MIB);
            assert_eq!(map.rows(), 4);
            assert_eq!(map.pageblock_addr(64), PhysAddr(128 * MIB));
        }
    }

    #[test]
    fn zones_keep_their_inclusive_ranges_and_empty_ones() {
        let dumps = parse_dumps(CONSOLE_512M).unwrap();
        let expected = [
            Zone { name: "DMA".into(), span: Some((PhysAddr(0), PhysAddr(0xff_ffff))) },
            Zone { name: "DMA32".into(), span: Some((PhysAddr(0x100_0000), PhysAddr(0x1ffd_ffff))) },
            Zone { name: "Normal".into(), span: None },
        ];
        assert_eq!(dumps[0].zones, expected);
        assert_eq!(dumps[1].zones, expected);
        assert_eq!(dumps[0].pageblock_index(PhysAddr(0x100_0000)), 8, "DMA32 starts at pageblock 8");
    }

    #[test]
    fn pageblocks_decode_to_migratetype_and_fill() {
        let dumps = parse_dumps(CONSOLE_512M).unwrap();
        let (boot, stressed) = (&dumps[0], &dumps[1]);
        assert_eq!(boot.pageblocks[0], Pageblock::Reserved);
        let in_use = |migratetype, fill, lru| Pageblock::InUse { migratetype, fill, lru };
        assert_eq!(boot.pageblocks[4], in_use(Migratetype::Movable, 6, 4));
        assert_eq!(boot.pageblocks[5], Pageblock::Free(Migratetype::Movable));
        assert_eq!(boot.pageblocks[8], in_use(Migratetype::Unmovable, 9, 0));
        assert_eq!(boot.pageblocks[12], in_use(Migratetype::Reclaimable, 3, 0));
        assert_eq!(boot.pageblocks[13], in_use(Migratetype::Movable, 4, 1));
        assert_eq!(boot.pageblocks[251], in_use(Migratetype::Movable, 6, 3));
        assert_eq!(boot.pageblocks[255], Pageblock::Reserved);
        assert_eq!(census(boot), (11, 235, 10, 0));

        assert_eq!(stressed.pageblocks[10], in_use(Migratetype::Unmovable, 8, 1), "a movable page fell back");
        assert_eq!(stressed.pageblocks[45], in_use(Migratetype::HighAtomic, 2, 0));
        assert_eq!(stressed.pageblocks[57], Pageblock::Free(Migratetype::Unmovable));
        assert_eq!(stressed.pageblocks[160], Pageblock::Free(Migratetype::Isolate));
        assert_eq!(census(stressed), (11, 98, 147, 0));

        let holes = parse_one(HOLES);
        assert_eq!(census(&holes), (2, 4, 3, 3));
        assert_eq!(holes.pageblocks[5..8], [Pageblock::Hole; 3]);
        assert_eq!(holes.pageblocks[9], in_use(Migratetype::Movable, 1, 1));
        assert_eq!(holes.pageblocks[10], Pageblock::Free(Migratetype::Unmovable));
    }

    #[test]
    fn svg_has_one_cell_per_pageblock_with_memory() {
        let dumps = parse_dumps(CONSOLE_512M).unwrap();
        for map in &dumps {
            assert_eq!(render_svg(map, "t").matches(r#"<rect class="cell""#).count(), 256);
        }
        let svg = render_svg(&parse_one(HOLES), "t");
        assert_eq!(svg.matches(r#"<rect class="cell""#).count(), 9, "12 pageblocks, 3 of them holes");
        assert!(cell_line(&svg, 4).is_some());
        assert!((5..8).all(|hole| cell_line(&svg, hole).is_none()));
        // Pageblock 9 is the second of the second row (8 per row).
        let cell = cell_line(&svg, 9).unwrap();
        assert!(cell.contains(&format!(r#"x="{}" y="{}""#, GRID_LEFT + PITCH, GRID_TOP + PITCH)), "{cell}");
    }

    #[test]
    fn svg_has_title_legend_zone_names_and_row_addresses() {
        let map = &parse_dumps(CONSOLE_512M).unwrap()[1];
        let svg = render_svg(map, "after <stress> & churn");
        assert!(svg.contains(">after &lt;stress&gt; &amp; churn</text>"), "the title, escaped");
        assert!(svg.contains("256 pageblocks of 2 MiB (order 9), 64 per row"));
        assert!(svg.contains("98 free, 147 in use, 11 reserved, 0 without memory"));
        for name in ["unmovable", "movable", "reclaimable", "highatomic", "isolated", "reserved", "no memory"] {
            assert!(svg.contains(&format!(">{name}</text>")), "legend lacks {name}");
        }
        assert!(svg.contains("pages in use:") && svg.contains("ceil(9 * used / present)"));
        for name in ["DMA", "DMA32"] {
            assert!(svg.contains(&format!(r#"font-weight="bold">{name}</text>"#)), "no label for zone {name}");
        }
        assert!(svg.contains(">zone Normal</text>") && svg.contains(">empty</text>"));
        assert!(svg.contains(">0x0000000000000000-0x0000000000ffffff, pageblocks 0-7</text>"));
        assert!(svg.contains(">0x0000000001000000-0x000000001ffdffff, pageblocks 8-255</text>"));
        // Rows 0 and 2 are labelled with their address, rows 1 and 3 not.
        assert!(svg.contains(">0x0000000000000000</text>") && svg.contains(">0x0000000010000000</text>"));
        assert!(!svg.contains(">0x0000000008000000</text>") && !svg.contains(">0x0000000018000000</text>"));
        assert!(svg.contains(">+16M</text>"), "column offsets");
    }

    #[test]
    fn full_pageblocks_are_dark_and_free_ones_pale() {
        let svg = render_svg(&parse_dumps(CONSOLE_512M).unwrap()[0], "t");
        let full = cell_line(&svg, 8).unwrap();
        assert!(full.contains(r##"fill="#e15759" fill-opacity="1.00""##), "{full}");
        let free = cell_line(&svg, 5).unwrap();
        assert!(free.contains(r##"fill="#4e79a7" fill-opacity="0.15""##), "{free}");
        let part = cell_line(&svg, 4).unwrap();
        assert!(part.contains(r#"fill-opacity="0.72""#), "fill 6 of 9: {part}");
        assert!(
            part.contains("<title>pageblock 4 at 0x0000000000800000: movable, 6/9 in use, 4/9 on LRU lists</title>"),
            "{part}"
        );
        assert!(free.contains(": movable, every page free</title>"), "{free}");
        let reserved = cell_line(&svg, 0).unwrap();
        assert!(reserved.contains(&format!(r#"fill="{RESERVED_COLOR}""#)), "{reserved}");
    }

    #[test]
    fn zone_start_is_marked_at_its_first_pageblock() {
        let (left, right) = (GRID_LEFT - GAP / 2.0, GRID_LEFT + 64.0 * PITCH - GAP / 2.0);
        let top = GRID_TOP - GAP / 2.0;
        let svg = render_svg(&parse_dumps(CONSOLE_512M).unwrap()[0], "t");
        assert_eq!(svg.matches("<path d=").count(), 1 + 2, "the legend's sample and DMA and DMA32, not empty Normal");
        // DMA at pageblock 0: the grid's top edge; DMA32 at pageblock 8: a
        // step before column 8 of row 0.
        assert!(svg.contains(&format!("M{left},{} H{left} V{top} H{right}", top + PITCH)));
        assert!(svg.contains(&format!("M{left},{} H{} V{top} H{right}", top + PITCH, left + 8.0 * PITCH)));
        // In the holes map DMA32 starts a row (pageblock 8 of 8 per row).
        let svg = render_svg(&parse_one(HOLES), "t");
        let right = GRID_LEFT + 8.0 * PITCH - GAP / 2.0;
        assert!(svg.contains(&format!("M{left},{} H{left} V{} H{right}", top + 2.0 * PITCH, top + PITCH)));
    }

    #[test]
    fn svg_is_well_formed() {
        for map in parse_dumps(CONSOLE_512M).unwrap() {
            assert_eq!(check_well_formed(&render_svg(&map, "a < b & \"c\" \u{1}")), Ok(()));
        }
        assert_eq!(check_well_formed(&render_svg(&parse_one(HOLES), "holes")), Ok(()));
        let odd_zone = HOLES.replace("zone DMA32   ", "zone <DMA&32>");
        assert_eq!(check_well_formed(&render_svg(&parse_one(&odd_zone), "t")), Ok(()));
    }

    #[test]
    fn well_formedness_check_refuses_broken_markup() {
        assert_eq!(check_well_formed(r#"<svg a="1"><g><rect/></g><text>a &amp; b</text></svg>"#), Ok(()));
        for broken in [
            "<svg><g></svg></g>",
            "<svg><g></svg>",
            "<svg>",
            "<svg>a & b</svg>",
            "<svg/><svg/>",
            r#"<svg><rect x="1/></svg>"#,
            "<g></g>",
            "<svg><rect</svg>",
            "text<svg/>",
        ] {
            assert!(check_well_formed(broken).is_err(), "accepted {broken:?}");
        }
    }

    #[test]
    fn malformed_dumps_are_refused_with_line_and_problem() {
        use DumpProblem::*;
        let cases: Vec<(String, usize, DumpProblem)> = vec![
            (HOLES.replace("2048 KiB", "1024 KiB"), 2, PageblockSize { kib: 1024, order: 9 }),
            (HOLES.replace("kmemmap: 12", "kmemmap: 0"), 2, ZeroInHeader),
            (HOLES.replace("8 per row", "eight per row"), 2, BadHeader),
            (HOLES.replace("(order 9)", "(order 60)").replace("2048 KiB", "4611686018427387904 KiB"), 2, MapTooLarge),
            (HOLES.replace("zone Normal   empty", "zone Normal   none"), 6, BadZone),
            (HOLES.replace("-0x00000000017fffff", "-0x0000000000ffffff"), 5, ZoneReversed { name: "DMA32".into() }),
            (
                HOLES.replace("0x0000000001000000-0x00000000017fffff", "0x0000000002000000-0x00000000027fffff"),
                5,
                ZoneOutsideMap { name: "DMA32".into(), start: PhysAddr(0x200_0000) },
            ),
            (HOLES.replace("0x0000000001000000 |", "0x00000001000000 |"), 8, BadRow),
            (
                HOLES.replace("0x0000000001000000 |", "0x0000000001200000 |"),
                8,
                RowAddress { expected: PhysAddr(0x100_0000), found: PhysAddr(0x120_0000) },
            ),
            (HOLES.replace("|UMuR| 910-", "|UMu| 910-"), 8, RowLength { expected: 4, found: 3 }),
            (HOLES.replace("|MmmmR   |", "|MmmmR    |"), 7, RowLength { expected: 8, found: 9 }),
            (HOLES.replace("|UMuR| 910-", "|UMuR| 91-"), 8, FillLength { blocks: 4, fills: 3 }),
            (HOLES.replace("| 910- 010-", "| 910-"), 8, BadRow),
            (HOLES.replace("| 910- 010-", "| 910- 01-"), 8, LruLength { blocks: 4, lrus: 3 }),
            (HOLES.replace("| 910- 010-", "| 910- 010--"), 8, LruLength { blocks: 4, lrus: 5 }),
            (HOLES.replace("| 910- 010-", "| 910- 0x0-"), 8, UnknownLru { pageblock: 9, lru: 'x' }),
            (HOLES.replace("| 910- 010-", "| 910- 020-"), 8, LruContradictsFill { pageblock: 9, fill: '1', lru: '2' }),
            (
                HOLES.replace("| 3000---- 2000----", "| 3000---- 2010----"),
                7,
                LruContradictsFill { pageblock: 2, fill: '0', lru: '1' },
            ),
            (
                HOLES.replace("| 3000---- 2000----", "| 3000---- -000----"),
                7,
                LruContradictsFill { pageblock: 0, fill: '3', lru: '-' },
            ),
            (
                HOLES.replace("| 3000---- 2000----", "| 3000---- 20000---"),
                7,
                LruContradictsFill { pageblock: 4, fill: '-', lru: '0' },
            ),
            (HOLES.replace("|UMuR|", "|UMxR|"), 8, UnknownBlock { pageblock: 10, symbol: 'x' }),
            (HOLES.replace("| 910-", "| 9?0-"), 8, UnknownFill { pageblock: 9, fill: '?' }),
            (
                HOLES.replace("| 3000----", "| 3050----"),
                7,
                FillContradictsBlock { pageblock: 2, symbol: 'm', fill: '5' },
            ),
            (HOLES.replace("| 910-", "| 010-"), 8, FillContradictsBlock { pageblock: 8, symbol: 'U', fill: '0' }),
            (
                HOLES.replace("| 3000----", "| 30000---"),
                7,
                FillContradictsBlock { pageblock: 4, symbol: 'R', fill: '0' },
            ),
            (
                HOLES.replace("| 3000----", "| 3000-1--"),
                7,
                FillContradictsBlock { pageblock: 5, symbol: ' ', fill: '1' },
            ),
            (HOLES.replace("0x0000000001000000 |UMuR| 910- 010-\n", ""), 8, MissingRows { expected: 12, found: 8 }),
            (HOLES.replace("kmemmap: end", "0x0000000001800000 |m| 0 0\nkmemmap: end"), 9, ExtraRow),
            (HOLES.replace("kmemmap: end\n", ""), 9, MissingEnd { header_line: 2 }),
            (
                HOLES.replace("kmemmap: end", "kmemmap: 12 pageblocks of 2048 KiB (order 9), 8 per row"),
                9,
                MissingEnd { header_line: 2 },
            ),
            (
                HOLES.replace("| 3000---- 2000----\n", "| 3000---- 2000----\n[    1.000000] CPU1 INFO  noise\n"),
                8,
                UnexpectedLine { expected: "a row or `kmemmap: end`" },
            ),
            (HOLES.replace("legend:", "legends:"), 3, UnexpectedLine { expected: "a `legend:`, `zone` or row line" }),
            (format!("kmemmap: end\n{HOLES}"), 1, EndWithoutHeader),
            // A good first dump does not hide a bad second one.
            (format!("{HOLES}{}", HOLES.replace("|UMuR|", "|UMxR|")), 17, UnknownBlock { pageblock: 10, symbol: 'x' }),
        ];
        for (console, line, problem) in cases {
            match parse_dumps(&console) {
                Err(MemmapError::Malformed { line: found_line, problem: found }) => {
                    assert_eq!((found_line, &found), (line, &problem), "console:\n{console}");
                }
                other => panic!("expected line {line}: {problem:?}, got {other:?} for\n{console}"),
            }
        }
    }

    #[test]
    fn error_message_names_the_line_and_the_fault() {
        let console = HOLES.replace("|UMuR| 910-", "|UMu| 910-");
        let message = parse_dumps(&console).unwrap_err().to_string();
        assert_eq!(message, "line 8: row has 3 pageblocks, expected 4");
        let console = HOLES.replace("kmemmap: end\n", "");
        let message = parse_dumps(&console).unwrap_err().to_string();
        assert_eq!(message, "line 9: expected `kmemmap: end` for the dump begun at line 2");
        let console = HOLES.replace("| 910- 010-", "| 910- 01-");
        let message = parse_dumps(&console).unwrap_err().to_string();
        assert_eq!(message, "line 8: row has 4 pageblocks but 3 LRU characters");
        let console = HOLES.replace("| 910- 010-", "| 910- 020-");
        let message = parse_dumps(&console).unwrap_err().to_string();
        assert_eq!(message, "line 8: pageblock 9: LRU '2' cannot go with fill '1'");
    }

    #[test]
    fn console_without_dump_parses_to_none() {
        assert_eq!(parse_dumps("SeaBIOS\r\n/ # ls\r\n").unwrap(), []);
    }

    /// A fresh directory under the system's temporary one, for one test.
    fn scratch_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-memmap-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn render_console_writes_one_picture_per_dump() {
        let dir = scratch_dir("per-dump");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("memmap-3.svg"), "from an earlier run").unwrap();
        let paths = render_console(CONSOLE_512M, &dir, "512 MiB").unwrap();
        assert_eq!(paths, [dir.join("memmap-1.svg"), dir.join("memmap-2.svg")]);
        let second = fs::read_to_string(&paths[1]).unwrap();
        assert!(second.starts_with("<svg") && second.contains(">512 MiB (2 of 2)</text>"));
        assert_eq!(second.matches(r#"<rect class="cell""#).count(), 256);
        assert!(!dir.join("memmap-3.svg").exists(), "a stale picture would pass for a third dump");
        let single = render_console(HOLES, &dir, "holes").unwrap();
        assert_eq!(single, [dir.join("memmap-1.svg")]);
        assert!(fs::read_to_string(&single[0]).unwrap().contains(">holes</text>"));
        assert!(!dir.join("memmap-2.svg").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn render_console_refuses_a_console_without_dump_and_writes_nothing() {
        let dir = scratch_dir("no-dump");
        assert!(matches!(render_console("SeaBIOS\n/ # ls\n", &dir, "t"), Err(MemmapError::NoDump)));
        assert!(!dir.exists());
        let bad = HOLES.replace("kmemmap: end\n", "");
        assert!(matches!(render_console(&bad, &dir, "t"), Err(MemmapError::Malformed { line: 9, .. })));
        assert!(!dir.exists());
    }
}
