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

#![forbid(unsafe_code)]

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
