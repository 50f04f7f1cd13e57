//! ELF validation (formats/src/elf.rs) on the static musl programs of the
//! initramfs, read from the rootfs, and its answers to corrupted copies
//! of one.

use alloc::string::String;
use alloc::vec::Vec;

use kernel::elf::{ElfError, ElfFile, ElfType, SegmentFlags, USER_END};
use kernel::fs::syscalls::kern;
use ktest_macros::ktest;

/// `(path, bytes)` of every program of the initramfs, as the rootfs
/// holds them: /init, /bin/*, /bench/*.
fn programs() -> Vec<(String, Vec<u8>)> {
    let in_dir = |dir: &str| {
        kern::read_dir(dir)
            .unwrap_or_else(|e| panic!("{dir}: {e:?}"))
            .into_iter()
            .filter(|e| e.d_type == uapi::fs::DT_REG)
            .map(|e| alloc::format!("{dir}/{}", String::from_utf8_lossy(&e.name)))
            .collect::<Vec<_>>()
    };
    let mut paths = in_dir("/bin");
    paths.extend(in_dir("/bench"));
    paths.push(String::from("/init"));
    paths
        .into_iter()
        .map(|path| {
            let data = kern::read_file(&path).unwrap_or_else(|e| panic!("{path}: {e:?}"));
            (path, data)
        })
        .collect()
}

fn hello() -> Vec<u8> {
    kern::read_file("/bin/hello").expect("/bin/hello")
}

#[ktest]
fn every_program_in_the_initramfs_is_a_valid_static_executable() {
    let programs = programs();
    assert!(programs.len() >= 3, "only {} programs", programs.len());
    for (path, data) in programs {
        let elf = ElfFile::parse(&data).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(elf.elf_type(), ElfType::Exec, "{path}: built -no-pie");
        let entry = elf.entry();
        assert!(
            elf.load_segments().any(|s| s.flags.contains(SegmentFlags::X) && s.contains(entry)),
            "{path}: entry {entry:#x} is not in an executable PT_LOAD"
        );
        assert!(elf.load_segments().all(|s| s.vaddr + s.memsz <= USER_END && s.filesz <= s.memsz), "{path}");
        assert!(
            elf.load_segments().any(|s| s.flags.contains(SegmentFlags::W) && !s.flags.contains(SegmentFlags::X)),
            "{path}: no writable data segment"
        );
        let phdr = elf.phdr_vaddr().unwrap_or_else(|| panic!("{path}: program headers not mapped"));
        assert!(elf.load_segments().any(|s| s.contains(phdr)), "{path}: AT_PHDR {phdr:#x} outside the segments");
        assert_eq!(elf.phentsize(), 56);
        assert!(elf.phnum() >= 2, "{path}");
        assert!(!elf.stack_executable(), "{path}: musl-gcc marks the stack non-executable");
    }
}

/// Offset in the file of program header `i` of `data`.
fn phdr_at(data: &[u8], i: usize) -> usize {
    let phoff = u64::from_le_bytes(data[32..40].try_into().expect("8 bytes"));
    phoff as usize + i * 56
}

/// Index of the first program header of type `p_type`.
fn find_phdr(data: &[u8], p_type: u32) -> Option<usize> {
    let phnum = usize::from(u16::from_le_bytes([data[56], data[57]]));
    (0..phnum).find(|&i| data[phdr_at(data, i)..][..4] == p_type.to_le_bytes())
}

fn put_u64(data: &mut [u8], at: usize, value: u64) {
    data[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

fn get_u64(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().expect("8 bytes"))
}

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_GNU_STACK: u32 = 0x6474_e551;

#[ktest]
fn corrupted_executables_are_refused_with_the_reason() {
    let good = hello();
    assert!(ElfFile::parse(&good).is_ok());
    let load = find_phdr(&good, PT_LOAD).expect("a PT_LOAD");
    let load_at = phdr_at(&good, load);
    type Corrupt = fn(&mut Vec<u8>, usize);
    let cases: [(&str, Corrupt, ElfError); 11] = [
        ("no magic", |d, _| d[1] = b'X', ElfError::NotElf),
        ("shorter than a header", |d, _| d.truncate(40), ElfError::NotElf),
        ("ELFCLASS32", |d, _| d[4] = 1, ElfError::BadClass(1)),
        ("big-endian", |d, _| d[5] = 2, ElfError::BadEncoding(2)),
        ("EM_386", |d, _| d[18..20].copy_from_slice(&3u16.to_le_bytes()), ElfError::BadMachine(3)),
        ("ET_REL", |d, _| d[16..18].copy_from_slice(&1u16.to_le_bytes()), ElfError::BadType(1)),
        ("e_phentsize 32", |d, _| d[54..56].copy_from_slice(&32u16.to_le_bytes()), ElfError::BadPhentsize(32)),
        (
            "phoff out of bounds",
            |d, _| {
                let len = d.len() as u64;
                put_u64(d, 32, len - 8);
            },
            ElfError::PhdrsOutOfBounds,
        ),
        (
            "p_filesz > p_memsz",
            |d, at| {
                let memsz = get_u64(d, at + 40);
                put_u64(d, at + 32, memsz + 1);
            },
            ElfError::FileszExceedsMemsz { index: usize::MAX },
        ),
        (
            "p_vaddr not congruent to p_offset",
            |d, at| {
                let vaddr = get_u64(d, at + 16);
                put_u64(d, at + 16, vaddr + 8);
            },
            ElfError::Misaligned { index: usize::MAX },
        ),
        (
            "segment in the kernel half",
            |d, at| {
                let vaddr = get_u64(d, at + 16);
                put_u64(d, at + 16, vaddr | 0xffff_8000_0000_0000);
            },
            ElfError::OutsideUserSpace { index: usize::MAX },
        ),
    ];
    for (what, corrupt, expected) in cases {
        let mut data = good.clone();
        corrupt(&mut data, load_at);
        // The per-segment errors name the corrupted header.
        let expected = match expected {
            ElfError::FileszExceedsMemsz { .. } => ElfError::FileszExceedsMemsz { index: load },
            ElfError::Misaligned { .. } => ElfError::Misaligned { index: load },
            ElfError::OutsideUserSpace { .. } => ElfError::OutsideUserSpace { index: load },
            other => other,
        };
        assert_eq!(ElfFile::parse(&data).err(), Some(expected), "{what}");
    }
}

#[ktest]
fn interpreter_and_bad_segment_layouts_are_refused() {
    let good = hello();
    let mut interp = good.clone();
    let stack = find_phdr(&good, PT_GNU_STACK).expect("musl-gcc emits PT_GNU_STACK");
    let at = phdr_at(&good, stack);
    interp[at..at + 4].copy_from_slice(&PT_INTERP.to_le_bytes());
    assert_eq!(ElfFile::parse(&interp).err(), Some(ElfError::Interpreter), "a PT_INTERP");

    let mut no_load = good.clone();
    let phnum = usize::from(u16::from_le_bytes([good[56], good[57]]));
    for i in 0..phnum {
        let at = phdr_at(&good, i);
        if no_load[at..at + 4] == PT_LOAD.to_le_bytes() {
            no_load[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
        }
    }
    assert_eq!(ElfFile::parse(&no_load).err(), Some(ElfError::NoLoadSegments));

    let loads: Vec<usize> = (0..phnum).filter(|&i| good[phdr_at(&good, i)..][..4] == PT_LOAD.to_le_bytes()).collect();
    assert!(loads.len() >= 2, "a static program has text and data segments");
    let mut unsorted = good.clone();
    let (first, second) = (phdr_at(&good, loads[0]), phdr_at(&good, loads[1]));
    for off in 0..56 {
        unsorted.swap(first + off, second + off);
    }
    assert_eq!(ElfFile::parse(&unsorted).err(), Some(ElfError::SegmentsOverlap { index: loads[1] }), "unsorted");

    let mut beyond = good.clone();
    let len = good.len() as u64;
    put_u64(&mut beyond, first + 8, (len + 0x1000) & !0xfff);
    put_u64(&mut beyond, first + 16, get_u64(&good, first + 16) & !0xfff);
    assert_eq!(ElfFile::parse(&beyond).err(), Some(ElfError::SegmentOutOfFile { index: loads[0] }), "file bytes");
}
