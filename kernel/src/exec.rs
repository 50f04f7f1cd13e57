//! execve (Linux `fs/exec.c` and `fs/binfmt_elf.c` `load_elf_binary`,
//! `create_elf_tables`).
//!
//! A static ELF executable becomes the running task's program (a file
//! with a page cache, mapped through it: ext2, tmpfs and the rootfs the
//! initramfs was unpacked into, so processes running one program share
//! its cached pages): a new address space gets one private file mapping per
//! `PT_LOAD` (page-aligned around the segment, as `elf_map` does, with the
//! bss tail of the last file page zeroed and anonymous memory after it),
//! the brk area right after the highest segment, and a `GROWSDOWN` stack
//! VMA at the top of user space holding the argument strings, the
//! environment, 16 random bytes, the auxiliary vector and argc/argv/envp
//! laid out as the x86_64 psABI and musl's `_start` expect. The trap frame
//! is rewritten so the return to user mode enters the program.
//!
//! The process's `RLIMIT_STACK` bounds the argument space (Linux
//! `bprm_stack_limits`) and the initial stack VMA (`setup_arg_pages`);
//! the new address space gets the process's limits before anything is
//! mapped into it, as Linux's mmap calls during exec check `current`'s.
//! Credentials go through Linux's exec rules ([`crate::cred::Cred::exec`])
//! and the auxiliary vector reports them (`AT_UID` ... `AT_SECURE`).
//!
//! Failures before the point of no return (file lookup, ELF checks, the
//! new address space) leave the caller untouched, as in Linux; a failure
//! after it kills the task with SIGSEGV.

#![forbid(unsafe_code)]

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use mm::PAGE_SIZE;
use mm::addr::align_down;
use mm::mmap::{MapFile, TASK_SIZE, page_align};
use mm::vma::VmaFile;
use uapi::auxvec::*;
use uapi::errno::Errno;
use uapi::mman::*;

use crate::arch::x86_64::entry::TrapFrame;
use crate::arch::x86_64::gdt;
use crate::arch::x86_64::uaccess::{clear_user, copy_to_user, write_user};
use crate::elf::{ElfError, ElfFile, SegmentFlags};
use crate::sched::{self, Comm};

/// Most bytes of argument and environment strings any exec accepts
/// (Linux `bprm_stack_limits`' ceiling, `_STK_LIM / 4 * 3`); the limit
/// of one exec is [`arg_limit`].
pub const ARG_MAX: usize = (crate::resource::STK_LIM / 4 * 3) as usize;

/// The smallest argument space whatever `RLIMIT_STACK` says (Linux's
/// `ARG_MAX`, 32 pages).
const ARG_MIN: u64 = 32 * PAGE_SIZE;

/// The initial stack VMA size below the top (Linux `setup_arg_pages`'
/// `stack_expand`); faults grow it beyond.
const STACK_INITIAL: u64 = 128 * 1024;

/// Bytes of strings and pointers an exec may pass under a stack limit of
/// `rlim_stack` (Linux `bprm_stack_limits`: a quarter of the limit,
/// between [`ARG_MIN`] and [`ARG_MAX`]).
pub fn arg_limit(rlim_stack: u64) -> u64 {
    (rlim_stack / 4).min(ARG_MAX as u64).max(ARG_MIN)
}

/// Why execve failed.
#[derive(Debug)]
pub enum ExecError {
    /// A Linux errno.
    Errno(Errno),
    /// The file is not a usable executable.
    Elf(ElfError),
}

impl core::fmt::Display for ExecError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ExecError::Errno(e) => write!(f, "{e}"),
            ExecError::Elf(e) => write!(f, "{e}"),
        }
    }
}

impl ExecError {
    /// The errno execve returns.
    pub fn errno(&self) -> Errno {
        match self {
            ExecError::Errno(e) => *e,
            ExecError::Elf(_) => Errno::ENOEXEC,
        }
    }
}

fn prot_of(flags: SegmentFlags) -> u32 {
    let mut p = 0;
    if flags.contains(SegmentFlags::R) {
        p |= PROT_READ;
    }
    if flags.contains(SegmentFlags::W) {
        p |= PROT_WRITE;
    }
    if flags.contains(SegmentFlags::X) {
        p |= PROT_EXEC;
    }
    p
}

/// Largest executable read for its headers (Linux reads only the first
/// page; our ELF parser checks every segment against the whole image).
const MAX_IMAGE: u64 = 256 << 20;

/// The bytes of a cached executable of `size` bytes: ENOMEM if there is
/// no room for them, E2BIG past [`MAX_IMAGE`], EIO if the file shrank.
fn read_image(inode: &crate::fs::inode::Inode, size: u64) -> Result<Vec<u8>, Errno> {
    if size > MAX_IMAGE {
        return Err(Errno::E2BIG);
    }
    let len = size as usize;
    let mut data = Vec::new();
    data.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
    data.resize(len, 0);
    let mut done = 0;
    while done < len {
        let n = crate::fs::read_write::kernel_read(inode, done as u64, &mut data[done..])?;
        if n == 0 {
            return Err(Errno::EIO);
        }
        done += n;
    }
    Ok(data)
}

/// Replaces the running task's program with `path` (Linux `do_execve`).
pub fn kernel_execve(path: &str, argv: &[Vec<u8>], envp: &[Vec<u8>], frame: &mut TrapFrame) -> Result<(), ExecError> {
    let found = crate::fs::syscalls::kern_path(path).map_err(ExecError::Errno)?;
    let inode = found.inode.clone();
    let attr = inode.getattr().map_err(ExecError::Errno)?;
    if !attr.is_reg() || attr.mode & 0o111 == 0 {
        return Err(ExecError::Errno(Errno::EACCES));
    }
    // The file is mapped through its page cache (its bytes read once for
    // the headers); a file without one (ramfs) cannot be mapped.
    if inode.i_mapping.is_none() {
        return Err(ExecError::Errno(Errno::ENOEXEC));
    }
    let data = read_image(&inode, attr.size).map_err(ExecError::Errno)?;
    let name = crate::fs::namei::d_path(&found).unwrap_or_else(|_| alloc::string::String::from(path));
    // Held for the call; the VMAs take their own counts.
    let mapped = crate::filemap::MappedFile::new(inode.clone(), name, None);
    let file: &'static dyn VmaFile = crate::filemap::MappedFile::as_vma_file(&mapped);
    let me = sched::current();
    let rlim_stack = me.proc.group.rlim.lock().cur(crate::resource::Resource::STACK);
    // Strings (the file name too, as Linux copies it first) and the
    // pointer arrays, argv counted as at least one (`bprm_stack_limits`).
    let strings: usize = argv.iter().chain(envp).map(|a| a.len() + 1).sum::<usize>() + path.len() + 1;
    let pointers = (argv.len().max(1) + envp.len()) * 8;
    if (strings + pointers) as u64 > arg_limit(rlim_stack) {
        return Err(ExecError::Errno(Errno::E2BIG));
    }
    let elf = ElfFile::parse(&data).map_err(ExecError::Elf)?;
    let (cred, secure) = me.proc.cred.lock().exec();
    // Read before the new mm's lock is taken: no spin lock is held across
    // the sleeping mmap lock.
    let limits = me
        .proc
        .group
        .rlim
        .lock()
        .mm_limits(cred.capable(uapi::capability::CAP_IPC_LOCK), cred.capable(uapi::capability::CAP_SYS_ADMIN));
    let new_mm = crate::mmap::mm_alloc().map_err(ExecError::Errno)?;
    let mut end_of_image = 0;
    let mut layout = mm::mmap::MmLayout::default();
    {
        let mut mm = new_mm.mmap_write_lock();
        mm.limits = limits;
        mm.arch_pick_mmap_layout();
        for seg in elf.load_segments() {
            let start = align_down(seg.vaddr, PAGE_SIZE);
            let file_end = page_align(seg.vaddr + seg.filesz).ok_or(ExecError::Errno(Errno::ENOMEM))?;
            let mem_end = page_align(seg.vaddr + seg.memsz).ok_or(ExecError::Errno(Errno::ENOMEM))?;
            let prot = prot_of(seg.flags);
            let pgoff = align_down(seg.offset, PAGE_SIZE) / PAGE_SIZE;
            if file_end > start {
                mm.do_mmap(
                    start,
                    file_end - start,
                    prot,
                    MAP_PRIVATE | MAP_FIXED,
                    Some(MapFile { file, writable: false }),
                    pgoff,
                )
                .map_err(ExecError::Errno)?;
            }
            if mem_end > file_end {
                mm.do_mmap(file_end, mem_end - file_end, prot, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, None, 0)
                    .map_err(ExecError::Errno)?;
            }
            if seg.flags.contains(SegmentFlags::X) {
                layout.start_code = if layout.start_code == 0 { seg.vaddr } else { layout.start_code.min(seg.vaddr) };
                layout.end_code = layout.end_code.max(seg.vaddr + seg.filesz);
            } else {
                layout.start_data = if layout.start_data == 0 { seg.vaddr } else { layout.start_data.min(seg.vaddr) };
                layout.end_data = layout.end_data.max(seg.vaddr + seg.filesz);
            }
            end_of_image = end_of_image.max(mem_end);
        }
        layout.start_brk = end_of_image;
        layout.brk = end_of_image;
        let stack_top = TASK_SIZE;
        // Linux `setup_arg_pages`: the stack VMA spans `stack_expand`
        // below the top, but no more than the stack limit allows.
        let stack_size = STACK_INITIAL.min(align_down(rlim_stack, PAGE_SIZE)).max(PAGE_SIZE);
        mm.do_mmap(
            stack_top - stack_size,
            stack_size,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS | MAP_GROWSDOWN,
            None,
            0,
        )
        .map_err(ExecError::Errno)?;
        layout.start_stack = stack_top - 8;
        mm.layout = layout;
    }
    // Linux `begin_new_exec`: the other threads go first (EAGAIN if the
    // process is exiting), then, at the point of no return, the old
    // program.
    crate::process::de_thread(&me).map_err(ExecError::Errno)?;
    crate::process::release_child_tid(&me);
    me.proc.group.sys.exec(&me);
    crate::process::replace_mm(&me, Some(new_mm.clone()));
    crate::process::mm_release(&me);
    *me.proc.cred.lock() = cred;
    // A prlimit64 from another process may have reached the old mm only.
    crate::resource::sync_mm_limits(&me.proc);
    // The table comes out of its lock while its close-on-exec files are
    // closed (a last close may sleep); the other threads have gone and
    // only threads share a table, so no one else uses it meanwhile.
    let mut files = core::mem::take(&mut *me.proc.files.lock());
    files.close_on_exec();
    *me.proc.files.lock() = files;
    me.proc.signal.lock().exec_reset();
    me.fs_base.store(0, Ordering::Relaxed);
    x86_64::registers::model_specific::FsBase::write(x86_64::VirtAddr::zero());
    me.reset_fpu();
    let name = path.rsplit('/').next().unwrap_or(path);
    me.set_comm(Comm::new(name.as_bytes()));
    // Zero the bss tail of each segment's last file page (Linux `padzero`).
    for seg in elf.load_segments() {
        if seg.memsz > seg.filesz {
            let tail = seg.vaddr + seg.filesz;
            let to = page_align(tail).unwrap_or(tail).min(seg.vaddr + seg.memsz);
            if to > tail && clear_user(tail, to - tail).is_err() {
                drop(me);
                crate::process::do_exit(uapi::wait::w_termsig(uapi::signal::SIGSEGV, false) as u32);
            }
        }
    }
    let sp = match create_elf_tables(&elf, path, argv, envp, &new_mm, &cred, secure) {
        Ok(sp) => sp,
        Err(()) => {
            drop(me);
            crate::process::do_exit(uapi::wait::w_termsig(uapi::signal::SIGSEGV, false) as u32);
        }
    };
    *frame = sched::blank_frame();
    frame.rip = elf.entry();
    frame.rsp = sp;
    frame.cs = u64::from(gdt::USER_CS);
    frame.ss = u64::from(gdt::USER_DS);
    frame.rflags = 0x202;
    me.user.store(true, Ordering::Release);
    Ok(())
}

/// Pushes the strings, random bytes, auxv, envp, argv and argc (Linux
/// `create_elf_tables`); returns the initial stack pointer.
fn create_elf_tables(
    elf: &ElfFile<'_>,
    path: &str,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    mm: &crate::mmap::MmRef,
    cred: &crate::cred::Cred,
    secure: bool,
) -> Result<u64, ()> {
    let mut sp = TASK_SIZE - 8;
    let push_str = |s: &[u8], sp: &mut u64| -> Result<u64, ()> {
        *sp -= s.len() as u64 + 1;
        copy_to_user(*sp, s).map_err(|_| ())?;
        copy_to_user(*sp + s.len() as u64, &[0]).map_err(|_| ())?;
        Ok(*sp)
    };
    let execfn = push_str(path.as_bytes(), &mut sp)?;
    let platform = push_str(b"x86_64", &mut sp)?;
    // Sized by the caller's strings (up to ARG_MAX): reserved fallibly,
    // as every buffer a system call sizes from user input.
    let mut env_ptrs = Vec::new();
    env_ptrs.try_reserve_exact(envp.len()).map_err(|_| ())?;
    for e in envp.iter().rev() {
        env_ptrs.push(push_str(e, &mut sp)?);
    }
    env_ptrs.reverse();
    let env_end = TASK_SIZE - 8;
    let mut arg_ptrs = Vec::new();
    arg_ptrs.try_reserve_exact(argv.len()).map_err(|_| ())?;
    for a in argv.iter().rev() {
        arg_ptrs.push(push_str(a, &mut sp)?);
    }
    arg_ptrs.reverse();
    sp &= !15;
    sp -= 16;
    let random = sp;
    let mut bytes = [0u8; 16];
    let mut seed = crate::arch::x86_64::tsc::rdtsc();
    for b in &mut bytes {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    copy_to_user(random, &bytes).map_err(|_| ())?;
    let phdr = elf.phdr_vaddr().unwrap_or(0);
    let auxv: [(u64, u64); 16] = [
        (AT_PHDR, phdr),
        (AT_PHENT, u64::from(elf.phentsize())),
        (AT_PHNUM, u64::from(elf.phnum())),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_BASE, 0),
        (AT_FLAGS, 0),
        (AT_ENTRY, elf.entry()),
        (AT_UID, u64::from(cred.uid.0)),
        (AT_EUID, u64::from(cred.euid.0)),
        (AT_GID, u64::from(cred.gid.0)),
        (AT_EGID, u64::from(cred.egid.0)),
        (AT_SECURE, u64::from(secure)),
        (AT_RANDOM, random),
        (AT_CLKTCK, 100),
        (AT_PLATFORM, platform),
        (AT_EXECFN, execfn),
    ];
    // Words: argc, argv..., NULL, envp..., NULL, auxv pairs, AT_NULL pair.
    let words = 1 + arg_ptrs.len() + 1 + env_ptrs.len() + 1 + 2 * auxv.len() + 2;
    sp -= words as u64 * 8;
    sp &= !15;
    let mut v: Vec<u64> = Vec::new();
    v.try_reserve_exact(words).map_err(|_| ())?;
    v.push(arg_ptrs.len() as u64);
    v.extend_from_slice(&arg_ptrs);
    v.push(0);
    v.extend_from_slice(&env_ptrs);
    v.push(0);
    for (k, val) in auxv {
        v.push(k);
        v.push(val);
    }
    v.push(AT_NULL);
    v.push(0);
    for (i, w) in v.iter().enumerate() {
        write_user(sp + 8 * i as u64, w).map_err(|_| ())?;
    }
    let mut m = mm.mmap_write_lock();
    m.layout.arg_start = arg_ptrs.first().copied().unwrap_or(sp);
    m.layout.arg_end = env_ptrs.first().copied().unwrap_or(env_end);
    m.layout.env_start = env_ptrs.first().copied().unwrap_or(env_end);
    m.layout.env_end = env_end;
    m.layout.start_stack = sp;
    Ok(sp)
}
