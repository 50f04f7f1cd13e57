//! ELF executables: the header checks of Linux `fs/binfmt_elf.c`
//! load_elf_binary (and elf_read_phdrs), as a validated view of the file.
//! Nothing is loaded yet; a loader maps [`ElfFile::load_segments`] and
//! builds the auxiliary vector from [`ElfFile::entry`],
//! [`ElfFile::phdr_vaddr`], [`ElfFile::phnum`] and [`ElfFile::phentsize`].
//!
//! Accepted: 64-bit little-endian x86_64 `ET_EXEC` or `ET_DYN` files whose
//! program headers lie inside the file and whose `PT_LOAD` segments are
//! sorted, non-overlapping, inside the user half of the address space, with
//! `p_filesz <= p_memsz`, their file bytes inside the file and `p_vaddr`
//! congruent to `p_offset` modulo the page size (so one page of the file
//! maps to one page of memory). Every read is bounds-checked.
//!
//! Differences from Linux:
//! - `PT_INTERP` is refused ([`ElfError::Interpreter`]): there is no dynamic
//!   loader; Linux loads the interpreter and enters it.
//! - Linux accepts unsorted or overlapping `PT_LOAD`s and lets later
//!   mappings win; we refuse them, as a linker never produces them.
//! - An `ET_DYN` is not relocated here: its addresses are returned as in
//!   the file (a loader adds the load bias).
//! - Like Linux we do not check that the entry point is in an executable
//!   segment: a bad one faults in user space, as on Linux.

use core::fmt;

use mm::PAGE_SIZE;

/// `\x7fELF` (Linux `ELFMAG`).
const ELFMAG: &[u8; 4] = b"\x7fELF";
/// `e_ident[EI_CLASS]` of a 64-bit file (Linux `ELFCLASS64`).
const ELFCLASS64: u8 = 2;
/// `e_ident[EI_DATA]` of a little-endian file (Linux `ELFDATA2LSB`).
const ELFDATA2LSB: u8 = 1;
/// The only ELF version (Linux `EV_CURRENT`).
const EV_CURRENT: u8 = 1;
/// `e_machine` of x86_64 (Linux `EM_X86_64`).
const EM_X86_64: u16 = 62;
/// Size of the ELF header (`sizeof(Elf64_Ehdr)`).
const EHDR_LEN: usize = 64;
/// Size of a program header (`sizeof(Elf64_Phdr)`).
const PHDR_LEN: usize = 56;
/// Largest program header table Linux reads (elf_read_phdrs: no more than
/// 64 KiB and no more than ELF_MIN_ALIGN, one page).
const MAX_PHDRS_SIZE: usize = PAGE_SIZE as usize;
/// End of the user half of the address space (Linux `TASK_SIZE_MAX` plus
/// the guard page: the first non-canonical address).
pub const USER_END: u64 = 0x0000_8000_0000_0000;

/// Program header types (Linux `PT_*`).
const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_PHDR: u32 = 6;
const PT_TLS: u32 = 7;
const PT_GNU_STACK: u32 = 0x6474_e551;

/// Segment permission bits of `p_flags` (Linux `PF_X`, `PF_W`, `PF_R`).
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// An object file type (`e_type`) the kernel can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfType {
    /// `ET_EXEC`: linked at fixed addresses.
    Exec,
    /// `ET_DYN`: position-independent (a static PIE).
    Dyn,
}

/// Why an executable was refused (Linux mostly answers `ENOEXEC`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than an ELF header, or without `\x7fELF`.
    NotElf,
    /// Not ELFCLASS64.
    BadClass(u8),
    /// Not little-endian.
    BadEncoding(u8),
    /// `e_ident[EI_VERSION]` or `e_version` is not EV_CURRENT.
    BadVersion,
    /// Not built for x86_64.
    BadMachine(u16),
    /// Neither ET_EXEC nor ET_DYN (a relocatable object or core file).
    BadType(u16),
    /// `e_phentsize` is not 56.
    BadPhentsize(u16),
    /// No program headers, or a table larger than Linux reads.
    BadPhnum(u16),
    /// The program header table is not inside the file.
    PhdrsOutOfBounds,
    /// A PT_LOAD has `p_filesz > p_memsz`.
    FileszExceedsMemsz {
        /// Index of the program header.
        index: usize,
    },
    /// A PT_LOAD's file bytes are not inside the file.
    SegmentOutOfFile {
        /// Index of the program header.
        index: usize,
    },
    /// A PT_LOAD's `p_vaddr` and `p_offset` differ modulo the page size.
    Misaligned {
        /// Index of the program header.
        index: usize,
    },
    /// A PT_LOAD reaches outside the user half of the address space (or
    /// its end overflows).
    OutsideUserSpace {
        /// Index of the program header.
        index: usize,
    },
    /// A PT_LOAD starts below the end of the one before it.
    SegmentsOverlap {
        /// Index of the later program header.
        index: usize,
    },
    /// The file has no PT_LOAD.
    NoLoadSegments,
    /// A PT_INTERP asks for a dynamic loader.
    Interpreter,
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ElfError::NotElf => write!(f, "not an ELF file"),
            ElfError::BadClass(c) => write!(f, "ELF class {c} is not ELFCLASS64"),
            ElfError::BadEncoding(d) => write!(f, "ELF data encoding {d} is not little-endian"),
            ElfError::BadVersion => write!(f, "ELF version is not EV_CURRENT"),
            ElfError::BadMachine(m) => write!(f, "ELF machine {m} is not x86_64"),
            ElfError::BadType(t) => write!(f, "ELF type {t} is neither ET_EXEC nor ET_DYN"),
            ElfError::BadPhentsize(s) => write!(f, "program header size {s} is not {PHDR_LEN}"),
            ElfError::BadPhnum(n) => write!(f, "{n} program headers"),
            ElfError::PhdrsOutOfBounds => write!(f, "program headers lie outside the file"),
            ElfError::FileszExceedsMemsz { index } => write!(f, "segment {index}: p_filesz > p_memsz"),
            ElfError::SegmentOutOfFile { index } => write!(f, "segment {index}: file bytes outside the file"),
            ElfError::Misaligned { index } => write!(f, "segment {index}: p_vaddr and p_offset differ mod page"),
            ElfError::OutsideUserSpace { index } => write!(f, "segment {index}: outside user space"),
            ElfError::SegmentsOverlap { index } => write!(f, "segment {index}: unsorted or overlapping"),
            ElfError::NoLoadSegments => write!(f, "no PT_LOAD segments"),
            ElfError::Interpreter => write!(f, "dynamically linked executables are not supported"),
        }
    }
}

bitflags::bitflags! {
    /// A segment's permissions (`p_flags`: Linux `PF_R`, `PF_W`, `PF_X`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct SegmentFlags: u32 {
        /// Readable (`PF_R`).
        const R = PF_R;
        /// Writable (`PF_W`).
        const W = PF_W;
        /// Executable (`PF_X`).
        const X = PF_X;
    }
}

/// A PT_LOAD segment: `filesz` bytes of the file at `offset` mapped at
/// `vaddr`, followed by zeros up to `memsz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    /// Virtual address of the first byte.
    pub vaddr: u64,
    /// Size in memory.
    pub memsz: u64,
    /// Bytes taken from the file.
    pub filesz: u64,
    /// Offset of those bytes in the file.
    pub offset: u64,
    /// Permissions.
    pub flags: SegmentFlags,
}

impl LoadSegment {
    /// Whether `addr` lies inside the segment in memory.
    pub fn contains(&self, addr: u64) -> bool {
        addr >= self.vaddr && addr - self.vaddr < self.memsz
    }
}

/// A PT_TLS segment: the initial image of thread-local storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsSegment {
    /// Virtual address of the TLS initialisation image.
    pub vaddr: u64,
    /// Bytes of initialised TLS data.
    pub filesz: u64,
    /// Size of the TLS block (the rest is zeroed).
    pub memsz: u64,
    /// Required alignment.
    pub align: u64,
}

/// One raw program header (`Elf64_Phdr`).
#[derive(Clone, Copy, Debug)]
struct Phdr {
    p_type: u32,
    p_flags: u32,
    p_offset: u64,
    p_vaddr: u64,
    p_filesz: u64,
    p_memsz: u64,
    p_align: u64,
}

fn u16_at(data: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(data.get(off..off.checked_add(2)?)?.try_into().ok()?))
}

fn u32_at(data: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(data: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(data.get(off..off.checked_add(8)?)?.try_into().ok()?))
}

impl Phdr {
    /// The header at `off` of `data` (which the caller checked holds it).
    fn read(data: &[u8], off: usize) -> Option<Phdr> {
        Some(Phdr {
            p_type: u32_at(data, off)?,
            p_flags: u32_at(data, off + 4)?,
            p_offset: u64_at(data, off + 8)?,
            p_vaddr: u64_at(data, off + 16)?,
            p_filesz: u64_at(data, off + 32)?,
            p_memsz: u64_at(data, off + 40)?,
            p_align: u64_at(data, off + 48)?,
        })
    }

    fn load_segment(&self) -> LoadSegment {
        LoadSegment {
            vaddr: self.p_vaddr,
            memsz: self.p_memsz,
            filesz: self.p_filesz,
            offset: self.p_offset,
            flags: SegmentFlags::from_bits_truncate(self.p_flags),
        }
    }
}

/// A validated ELF executable.
#[derive(Clone, Copy, Debug)]
pub struct ElfFile<'a> {
    data: &'a [u8],
    elf_type: ElfType,
    entry: u64,
    phoff: usize,
    phnum: u16,
}

impl<'a> ElfFile<'a> {
    /// Validates `data` as an executable this kernel can run.
    pub fn parse(data: &'a [u8]) -> Result<Self, ElfError> {
        let ident = data.get(..EHDR_LEN).ok_or(ElfError::NotElf)?;
        if &ident[..4] != ELFMAG {
            return Err(ElfError::NotElf);
        }
        if ident[4] != ELFCLASS64 {
            return Err(ElfError::BadClass(ident[4]));
        }
        if ident[5] != ELFDATA2LSB {
            return Err(ElfError::BadEncoding(ident[5]));
        }
        // The header is in bounds from here on: these reads cannot fail.
        let half = |off| u16_at(data, off).unwrap_or_default();
        let e_version = u32_at(data, 20).unwrap_or_default();
        if ident[6] != EV_CURRENT || e_version != u32::from(EV_CURRENT) {
            return Err(ElfError::BadVersion);
        }
        let elf_type = match half(16) {
            2 => ElfType::Exec,
            3 => ElfType::Dyn,
            t => return Err(ElfError::BadType(t)),
        };
        let machine = half(18);
        if machine != EM_X86_64 {
            return Err(ElfError::BadMachine(machine));
        }
        let phentsize = half(54);
        if usize::from(phentsize) != PHDR_LEN {
            return Err(ElfError::BadPhentsize(phentsize));
        }
        let phnum = half(56);
        let table_len = usize::from(phnum) * PHDR_LEN;
        if phnum == 0 || table_len > MAX_PHDRS_SIZE {
            return Err(ElfError::BadPhnum(phnum));
        }
        let phoff = usize::try_from(u64_at(data, 32).unwrap_or_default()).map_err(|_| ElfError::PhdrsOutOfBounds)?;
        let table_end = phoff.checked_add(table_len).ok_or(ElfError::PhdrsOutOfBounds)?;
        if table_end > data.len() {
            return Err(ElfError::PhdrsOutOfBounds);
        }
        let elf = ElfFile { data, elf_type, entry: u64_at(data, 24).unwrap_or_default(), phoff, phnum };
        elf.check_segments()?;
        Ok(elf)
    }

    /// The program headers (in bounds: checked by [`Self::parse`]).
    fn phdrs(&self) -> impl Iterator<Item = Phdr> + '_ {
        (0..usize::from(self.phnum)).filter_map(|i| Phdr::read(self.data, self.phoff + i * PHDR_LEN))
    }

    fn check_segments(&self) -> Result<(), ElfError> {
        let mut prev_end: Option<u64> = None;
        for (index, ph) in self.phdrs().enumerate() {
            match ph.p_type {
                PT_INTERP => return Err(ElfError::Interpreter),
                PT_LOAD => {}
                _ => continue,
            }
            if ph.p_filesz > ph.p_memsz {
                return Err(ElfError::FileszExceedsMemsz { index });
            }
            let file_end = ph.p_offset.checked_add(ph.p_filesz);
            if file_end.is_none_or(|end| end > self.data.len() as u64) {
                return Err(ElfError::SegmentOutOfFile { index });
            }
            if ph.p_vaddr % PAGE_SIZE != ph.p_offset % PAGE_SIZE {
                return Err(ElfError::Misaligned { index });
            }
            let end = ph.p_vaddr.checked_add(ph.p_memsz).filter(|&end| end <= USER_END);
            let Some(end) = end else {
                return Err(ElfError::OutsideUserSpace { index });
            };
            if prev_end.is_some_and(|prev| ph.p_vaddr < prev) {
                return Err(ElfError::SegmentsOverlap { index });
            }
            prev_end = Some(end);
        }
        if prev_end.is_none() {
            return Err(ElfError::NoLoadSegments);
        }
        Ok(())
    }

    /// `ET_EXEC` or `ET_DYN`.
    pub fn elf_type(&self) -> ElfType {
        self.elf_type
    }

    /// The entry point (`e_entry`; for `ET_DYN`, before the load bias).
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// The PT_LOAD segments, in address order.
    pub fn load_segments(&self) -> impl Iterator<Item = LoadSegment> + '_ {
        self.phdrs().filter(|ph| ph.p_type == PT_LOAD).map(|ph| ph.load_segment())
    }

    /// Where the program headers are in memory, for `AT_PHDR`: PT_PHDR's
    /// address if there is one, else the address at which the first
    /// PT_LOAD covering `e_phoff` maps it (Linux load_elf_binary), or
    /// `None` if no segment maps the table.
    pub fn phdr_vaddr(&self) -> Option<u64> {
        if let Some(ph) = self.phdrs().find(|ph| ph.p_type == PT_PHDR) {
            return Some(ph.p_vaddr);
        }
        let phoff = self.phoff as u64;
        self.load_segments()
            .find(|s| s.offset <= phoff && phoff - s.offset < s.filesz)
            .map(|s| s.vaddr + (phoff - s.offset))
    }

    /// Number of program headers (`AT_PHNUM`).
    pub fn phnum(&self) -> u16 {
        self.phnum
    }

    /// Size of a program header (`AT_PHENT`): always 56.
    pub fn phentsize(&self) -> u16 {
        PHDR_LEN as u16
    }

    /// The thread-local storage template (PT_TLS), if any.
    pub fn tls(&self) -> Option<TlsSegment> {
        self.phdrs().find(|ph| ph.p_type == PT_TLS).map(|ph| TlsSegment {
            vaddr: ph.p_vaddr,
            filesz: ph.p_filesz,
            memsz: ph.p_memsz,
            align: ph.p_align,
        })
    }

    /// Whether the stack must be executable: PT_GNU_STACK's `PF_X`. Without
    /// PT_GNU_STACK a 64-bit x86 program gets a non-executable stack
    /// (Linux's `EXSTACK_DEFAULT` implies exec only for 32-bit ones).
    pub fn stack_executable(&self) -> bool {
        self.phdrs().find(|ph| ph.p_type == PT_GNU_STACK).is_some_and(|ph| ph.p_flags & PF_X != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A program header to write: type, flags, offset, vaddr, filesz, memsz.
    type RawPhdr = (u32, u32, u64, u64, u64, u64);

    const TEXT: RawPhdr = (PT_LOAD, PF_R | PF_X, 0, 0x40_0000, 0x1000, 0x1000);
    const DATA: RawPhdr = (PT_LOAD, PF_R | PF_W, 0x1000, 0x40_1000, 0x100, 0x2000);
    const STACK: RawPhdr = (PT_GNU_STACK, PF_R | PF_W, 0, 0, 0, 0);
    const ENTRY: u64 = 0x40_0100;
    /// Offset of the program header table in [`elf`]'s files.
    const PHOFF: usize = EHDR_LEN;

    /// A static x86_64 executable of `phdrs`, long enough for a DATA
    /// segment's file bytes and no longer.
    fn elf(phdrs: &[RawPhdr]) -> Vec<u8> {
        let mut d = vec![0u8; 0x1100];
        d[..4].copy_from_slice(ELFMAG);
        d[4..7].copy_from_slice(&[ELFCLASS64, ELFDATA2LSB, EV_CURRENT]);
        d[16..18].copy_from_slice(&2u16.to_le_bytes());
        d[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        d[20..24].copy_from_slice(&1u32.to_le_bytes());
        d[24..32].copy_from_slice(&ENTRY.to_le_bytes());
        d[32..40].copy_from_slice(&(PHOFF as u64).to_le_bytes());
        d[52..54].copy_from_slice(&(EHDR_LEN as u16).to_le_bytes());
        d[54..56].copy_from_slice(&(PHDR_LEN as u16).to_le_bytes());
        d[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, &(p_type, flags, offset, vaddr, filesz, memsz)) in phdrs.iter().enumerate() {
            let at = PHOFF + i * PHDR_LEN;
            d[at..at + 4].copy_from_slice(&p_type.to_le_bytes());
            d[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
            for (field, value) in [(8, offset), (16, vaddr), (32, filesz), (40, memsz), (48, 0x1000)] {
                d[at + field..at + field + 8].copy_from_slice(&value.to_le_bytes());
            }
        }
        d
    }

    fn sample() -> Vec<u8> {
        elf(&[TEXT, DATA, STACK])
    }

    #[test]
    fn a_static_executable_is_described_as_written() {
        let data = sample();
        let file = ElfFile::parse(&data).expect("sample");
        assert_eq!((file.elf_type(), file.entry(), file.phnum(), file.phentsize()), (ElfType::Exec, ENTRY, 3, 56));
        let segments: Vec<LoadSegment> = file.load_segments().collect();
        assert_eq!(
            segments,
            [
                LoadSegment {
                    vaddr: 0x40_0000,
                    memsz: 0x1000,
                    filesz: 0x1000,
                    offset: 0,
                    flags: SegmentFlags::R | SegmentFlags::X
                },
                LoadSegment {
                    vaddr: 0x40_1000,
                    memsz: 0x2000,
                    filesz: 0x100,
                    offset: 0x1000,
                    flags: SegmentFlags::R | SegmentFlags::W
                },
            ]
        );
        assert_eq!(file.phdr_vaddr(), Some(0x40_0000 + PHOFF as u64), "the text segment maps the table");
        assert_eq!(file.tls(), None);
        assert!(!file.stack_executable());
        assert!(segments[1].contains(0x40_2fff) && !segments[1].contains(0x40_3000));
    }

    #[test]
    fn pt_phdr_pt_tls_and_an_executable_stack_are_reported() {
        let phdr = (PT_PHDR, PF_R, PHOFF as u64, 0x40_0040, 0xa8, 0xa8);
        let tls = (PT_TLS, PF_R, 0x1000, 0x40_1000, 0x10, 0x20);
        let exec_stack = (PT_GNU_STACK, PF_R | PF_W | PF_X, 0, 0, 0, 0);
        let data = elf(&[phdr, TEXT, DATA, tls, exec_stack]);
        let file = ElfFile::parse(&data).expect("valid");
        assert_eq!(file.phdr_vaddr(), Some(0x40_0040));
        assert_eq!(file.tls(), Some(TlsSegment { vaddr: 0x40_1000, filesz: 0x10, memsz: 0x20, align: 0x1000 }));
        assert!(file.stack_executable());
        let mut pie = sample();
        pie[16] = 3;
        assert_eq!(ElfFile::parse(&pie).map(|f| f.elf_type()).ok(), Some(ElfType::Dyn));
    }

    #[test]
    fn malformed_headers_are_refused_with_the_reason() {
        type Corrupt = fn(&mut Vec<u8>);
        let cases: [(&str, Corrupt, ElfError); 13] = [
            ("empty", |d| d.clear(), ElfError::NotElf),
            ("no magic", |d| d[0] = 0, ElfError::NotElf),
            ("ELFCLASS32", |d| d[4] = 1, ElfError::BadClass(1)),
            ("big-endian", |d| d[5] = 2, ElfError::BadEncoding(2)),
            ("EI_VERSION 0", |d| d[6] = 0, ElfError::BadVersion),
            ("e_version 2", |d| d[20] = 2, ElfError::BadVersion),
            ("ET_CORE", |d| d[16] = 4, ElfError::BadType(4)),
            ("EM_AARCH64", |d| d[18] = 183, ElfError::BadMachine(183)),
            ("e_phentsize 0", |d| d[54] = 0, ElfError::BadPhentsize(0)),
            ("no program headers", |d| d[56] = 0, ElfError::BadPhnum(0)),
            ("a table over a page", |d| d[56] = 74, ElfError::BadPhnum(74)),
            (
                "e_phoff past the end",
                |d| d[32..40].copy_from_slice(&0x10ffu64.to_le_bytes()),
                ElfError::PhdrsOutOfBounds,
            ),
            ("e_phoff + table overflows", |d| d[32..40].fill(0xff), ElfError::PhdrsOutOfBounds),
        ];
        for (what, corrupt, expected) in cases {
            let mut data = sample();
            corrupt(&mut data);
            assert_eq!(ElfFile::parse(&data).err(), Some(expected), "{what}");
        }
    }

    #[test]
    fn bad_segments_are_refused_naming_the_header() {
        let top = USER_END - 0x1000;
        let cases: [(&str, &[RawPhdr], ElfError); 9] = [
            (
                "filesz > memsz",
                &[TEXT, (PT_LOAD, PF_R, 0x1000, 0x40_1000, 0x100, 0xff)],
                ElfError::FileszExceedsMemsz { index: 1 },
            ),
            (
                "file bytes past the end",
                &[(PT_LOAD, PF_R, 0x1000, 0x40_1000, 0x101, 0x101)],
                ElfError::SegmentOutOfFile { index: 0 },
            ),
            (
                "p_offset + p_filesz overflows",
                &[(PT_LOAD, PF_R, u64::MAX, 0x40_0fff, 1, 1)],
                ElfError::SegmentOutOfFile { index: 0 },
            ),
            (
                "vaddr not congruent to offset",
                &[(PT_LOAD, PF_R, 0x1000, 0x40_1008, 0x10, 0x10)],
                ElfError::Misaligned { index: 0 },
            ),
            (
                "reaching past user space",
                &[(PT_LOAD, PF_R, 0, top, 0x1000, 0x1001)],
                ElfError::OutsideUserSpace { index: 0 },
            ),
            (
                "p_vaddr + p_memsz overflows",
                &[(PT_LOAD, PF_R, 0, 0xffff_ffff_ffff_f000, 0, 0x2000)],
                ElfError::OutsideUserSpace { index: 0 },
            ),
            ("unsorted", &[DATA, TEXT], ElfError::SegmentsOverlap { index: 1 }),
            ("no PT_LOAD", &[STACK], ElfError::NoLoadSegments),
            ("a PT_INTERP", &[TEXT, (PT_INTERP, PF_R, 0x200, 0x40_0200, 0x1c, 0x1c), DATA], ElfError::Interpreter),
        ];
        for (what, phdrs, expected) in cases {
            assert_eq!(ElfFile::parse(&elf(phdrs)).err(), Some(expected), "{what}");
        }
        let at_the_top = elf(&[(PT_LOAD, PF_R, 0, top, 0x1000, 0x1000)]);
        assert!(ElfFile::parse(&at_the_top).is_ok(), "a segment may end exactly at USER_END");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let data = sample();
        for cut in 0..data.len() {
            assert!(ElfFile::parse(&data[..cut]).is_err(), "cut at {cut}");
        }
    }

    proptest! {
        /// Any bytes at all: an answer, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = ElfFile::parse(&data);
        }

        /// The sample with up to 8 bytes of its headers overwritten: an
        /// answer, never a panic, and what is accepted keeps the promises
        /// the loader relies on.
        #[test]
        fn accepted_files_keep_their_promises(
            writes in proptest::collection::vec((0usize..PHOFF + 3 * PHDR_LEN, any::<u8>()), 1..8),
        ) {
            let mut data = sample();
            for (at, value) in writes {
                data[at] = value;
            }
            let Ok(file) = ElfFile::parse(&data) else { return Ok(()) };
            let mut prev_end = 0;
            for s in file.load_segments() {
                prop_assert!(s.filesz <= s.memsz);
                prop_assert!(s.offset + s.filesz <= data.len() as u64);
                prop_assert!(s.vaddr >= prev_end && s.vaddr + s.memsz <= USER_END);
                prop_assert_eq!(s.vaddr % PAGE_SIZE, s.offset % PAGE_SIZE);
                prev_end = s.vaddr + s.memsz;
            }
            let _ = (file.phdr_vaddr(), file.tls(), file.stack_executable());
        }
    }
}
