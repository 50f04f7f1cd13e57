//! System calls on the Linux x86_64 ABI (Linux
//! `arch/x86/entry/syscall_64.c`, `kernel/entry/common.c`, and the
//! `SYSCALL_DEFINE`s of `mm/`, `fs/`, `kernel/`).
//!
//! The number is the low 32 bits of RAX (see [`syscall_nr`]), arguments
//! in RDI, RSI, RDX, R10, R8, R9; the result, or `-errno`, goes back in
//! RAX. An unknown number returns
//! `-ENOSYS` and is logged once per number with its Linux name. Before the
//! return to user mode, pending work runs (Linux `exit_to_user_mode_loop`):
//! a reschedule if asked for, then signal delivery.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use uapi::errno::Errno;
use uapi::unistd::nr;

use crate::arch::x86_64::entry::TrapFrame;
use crate::arch::x86_64::tsc;
use crate::arch::x86_64::uaccess::{copy_from_user, copy_to_user, read_user, strncpy_from_user, write_user};
use crate::cred::{commit_creds, current_cred};
use crate::fs::file::{FileKind, OpenFile};
use crate::fs::syscalls as fs;
use crate::process::{self, CloneArgs};
use crate::resource;
use crate::sched;
use crate::signal;
use uapi::fcntl::{AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_NOFOLLOW, O_CREAT, O_TRUNC, O_WRONLY};

type SysResult = Result<u64, Errno>;

/// Unknown syscall numbers already logged (bit per number below 512).
static LOGGED_ENOSYS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

fn efault<T>(_: T) -> Errno {
    Errno::EFAULT
}

/// The system call a saved RAX (`orig_ax`) asks for. Linux's entry code
/// passes `(int)eax` to `do_syscall_64`, which compares it as an
/// `unsigned int` with the table size (`do_syscall_x64`), so the upper 32
/// bits of RAX are ignored (0x1_0000_0027 is getpid) and a negative
/// number is out of range: ENOSYS. The x32 numbers (bit 30,
/// `__X32_SYSCALL_BIT`) are a different ABI we lack, as Linux built
/// without `CONFIG_X86_X32_ABI`: ENOSYS too. Linux leaves RAX alone for
/// -1 (its pre-set -ENOSYS), which only matters to ptrace and seccomp.
pub fn syscall_nr(orig_ax: u64) -> u64 {
    u64::from(orig_ax as u32)
}

/// Entry from `entry_SYSCALL_64` with interrupts off.
#[unsafe(no_mangle)]
extern "C" fn do_syscall_64(frame: &mut TrapFrame) {
    x86_64::instructions::interrupts::enable();
    let nr = syscall_nr(frame.error_code);
    let ret = dispatch(nr, frame);
    // rt_sigreturn restores RAX itself; execve set a fresh frame.
    if nr != nr::RT_SIGRETURN {
        frame.rax = match ret {
            Ok(v) => v,
            Err(e) => e.as_syscall_ret(),
        };
    } else if let Ok(v) = ret {
        frame.rax = v;
    }
    exit_to_user_mode(frame);
}

/// Work before returning to user mode (Linux `exit_to_user_mode_loop`).
pub fn exit_to_user_mode(frame: &mut TrapFrame) {
    loop {
        x86_64::instructions::interrupts::enable();
        if sched::need_resched() {
            sched::schedule();
            continue;
        }
        // The reference goes before `do_signal`, which may not return (an
        // exit never drops what its stack holds).
        let pending = sched::try_current().is_some_and(|t| {
            crate::time::itimer::handle_posix_cpu_timers(&t);
            signal::signal_pending(&t)
        });
        if pending {
            signal::do_signal(frame);
        }
        x86_64::instructions::interrupts::disable();
        if !sched::need_resched() {
            return;
        }
    }
}

/// A zeroed buffer of `len` bytes, or `ENOMEM`: every buffer a system
/// call sizes from its arguments is bounded by the caller and reserved
/// fallibly, so a failed allocation fails the call instead of the kernel.
pub(crate) fn zeroed_buf(len: usize) -> Result<Vec<u8>, Errno> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len).map_err(|_| Errno::ENOMEM)?;
    buf.resize(len, 0);
    Ok(buf)
}

fn user_string(ptr: u64) -> Result<String, Errno> {
    let mut buf = zeroed_buf(4096)?;
    let n = strncpy_from_user(&mut buf, ptr).map_err(efault)?;
    if n == buf.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    buf.truncate(n);
    String::from_utf8(buf).map_err(|_| Errno::ENOENT)
}

fn user_string_array(mut ptr: u64) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    if ptr == 0 {
        return Ok(out);
    }
    let mut total = 0;
    loop {
        let p: u64 = read_user(ptr).map_err(efault)?;
        if p == 0 {
            return Ok(out);
        }
        let mut buf = zeroed_buf(4096)?;
        let n = strncpy_from_user(&mut buf, p).map_err(efault)?;
        if n == buf.len() {
            return Err(Errno::E2BIG);
        }
        buf.truncate(n);
        total += n + 1;
        if total > crate::exec::ARG_MAX {
            return Err(Errno::E2BIG);
        }
        out.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        out.push(buf);
        ptr = ptr.wrapping_add(8);
    }
}

fn current_mm() -> Result<crate::mmap::MmRef, Errno> {
    sched::current().proc.mm().ok_or(Errno::EFAULT)
}

fn dispatch(nr: u64, f: &mut TrapFrame) -> SysResult {
    let (a0, a1, a2, a3, a4, a5) = (f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9);
    match nr {
        nr::READ => sys_read(a0 as i32, a1, a2),
        nr::WRITE => sys_write(a0 as i32, a1, a2),
        nr::READV => sys_readv(a0 as i32, a1, a2),
        nr::WRITEV => sys_writev(a0 as i32, a1, a2),
        nr::OPEN => fs::sys_openat(AT_FDCWD, a0, a1 as u32, a2 as u32),
        nr::OPENAT => fs::sys_openat(a0 as i32, a1, a2 as u32, a3 as u32),
        nr::CREAT => fs::sys_openat(AT_FDCWD, a0, O_CREAT | O_WRONLY | O_TRUNC, a1 as u32),
        nr::PREAD64 => fs::sys_pread64(a0 as i32, a1, a2, a3 as i64),
        nr::PWRITE64 => fs::sys_pwrite64(a0 as i32, a1, a2, a3 as i64),
        nr::STAT => fs::sys_newfstatat(AT_FDCWD, a0, a1, 0),
        nr::LSTAT => fs::sys_newfstatat(AT_FDCWD, a0, a1, AT_SYMLINK_NOFOLLOW),
        nr::NEWFSTATAT => fs::sys_newfstatat(a0 as i32, a1, a2, a3 as u32),
        nr::STATX => fs::sys_statx(a0 as i32, a1, a2 as u32, a3 as u32, a4),
        nr::GETDENTS64 => fs::sys_getdents64(a0 as i32, a1, a2),
        nr::MKDIR => fs::sys_mkdirat(AT_FDCWD, a0, a1 as u32),
        nr::MKDIRAT => fs::sys_mkdirat(a0 as i32, a1, a2 as u32),
        nr::MKNOD => fs::sys_mknodat(AT_FDCWD, a0, a1 as u32, a2 as u32),
        nr::MKNODAT => fs::sys_mknodat(a0 as i32, a1, a2 as u32, a3 as u32),
        nr::UNLINK => fs::sys_unlinkat(AT_FDCWD, a0, 0),
        nr::RMDIR => fs::sys_unlinkat(AT_FDCWD, a0, AT_REMOVEDIR),
        nr::UNLINKAT => fs::sys_unlinkat(a0 as i32, a1, a2 as u32),
        nr::RENAME => fs::sys_renameat2(AT_FDCWD, a0, AT_FDCWD, a1, 0),
        nr::RENAMEAT => fs::sys_renameat2(a0 as i32, a1, a2 as i32, a3, 0),
        nr::RENAMEAT2 => fs::sys_renameat2(a0 as i32, a1, a2 as i32, a3, a4 as u32),
        nr::LINK => fs::sys_linkat(AT_FDCWD, a0, AT_FDCWD, a1, 0),
        nr::LINKAT => fs::sys_linkat(a0 as i32, a1, a2 as i32, a3, a4 as u32),
        nr::SYMLINK => fs::sys_symlinkat(a0, AT_FDCWD, a1),
        nr::SYMLINKAT => fs::sys_symlinkat(a0, a1 as i32, a2),
        nr::READLINK => fs::sys_readlinkat(AT_FDCWD, a0, a1, a2 as i32),
        nr::READLINKAT => fs::sys_readlinkat(a0 as i32, a1, a2, a3 as i32),
        nr::TRUNCATE => fs::sys_truncate(a0, a1 as i64),
        nr::FTRUNCATE => fs::sys_ftruncate(a0 as i32, a1 as i64),
        nr::FSYNC | nr::FDATASYNC => fs::sys_fsync(a0 as i32),
        nr::SYNC => fs::sys_sync(),
        nr::SYNCFS => fs::sys_syncfs(a0 as i32),
        nr::CHDIR => fs::sys_chdir(a0),
        nr::FCHDIR => fs::sys_fchdir(a0 as i32),
        nr::GETCWD => fs::sys_getcwd(a0, a1),
        nr::UMASK => fs::sys_umask(a0 as u32),
        nr::ACCESS => fs::sys_faccessat(AT_FDCWD, a0, a1 as u32, 0),
        nr::FACCESSAT => fs::sys_faccessat(a0 as i32, a1, a2 as u32, 0),
        nr::FACCESSAT2 => fs::sys_faccessat(a0 as i32, a1, a2 as u32, a3 as u32),
        nr::CHMOD => fs::sys_chmod(a0, a1 as u32),
        nr::FCHMOD => fs::sys_fchmod(a0 as i32, a1 as u32),
        nr::STATFS => fs::sys_statfs(a0, a1),
        nr::FSTATFS => fs::sys_fstatfs(a0 as i32, a1),
        nr::MOUNT => fs::sys_mount(a0, a1, a2, a3, a4),
        nr::UMOUNT2 => fs::sys_umount2(a0, a1 as u32),
        nr::SWAPON => crate::swapfile::swapon::sys_swapon(a0, a1),
        nr::SWAPOFF => crate::swapfile::swapon::sys_swapoff(a0),
        nr::CLOSE => {
            let file = sched::current().proc.files.lock().close(a0 as i32)?;
            drop(file);
            Ok(0)
        }
        nr::LSEEK => fs::sys_lseek(a0 as i32, a1 as i64, a2 as u32),
        nr::FSTAT => fs::sys_fstat(a0 as i32, a1),
        nr::IOCTL => sys_ioctl(a0 as i32, a1, a2),
        nr::FCNTL => sys_fcntl(a0 as i32, a1 as i32, a2),
        nr::DUP => {
            let nofile = resource::current_nofile();
            sched::current().proc.files.lock().dup_from(a0 as i32, 0, false, nofile).map(|fd| fd as u64)
        }
        nr::DUP2 => sys_dup3(a0 as i32, a1 as i32, None),
        nr::DUP3 => sys_dup3(a0 as i32, a1 as i32, Some(a2 as u32)),
        nr::PIPE => sys_pipe2(a0, 0),
        nr::PIPE2 => sys_pipe2(a0, a1 as u32),
        nr::MMAP => sys_mmap(a0, a1, a2 as u32, a3 as u32, a4 as i32, a5),
        nr::MUNMAP => current_mm()?.mmap_write_lock().do_munmap(a0, a1).map(|()| 0),
        nr::MPROTECT => current_mm()?.mmap_write_lock().mprotect(a0, a1, a2).map(|()| 0),
        nr::BRK => Ok(current_mm()?.mmap_write_lock().brk(a0)),
        nr::MREMAP => current_mm()?.mmap_write_lock().mremap(a0, a1, a2, a3, a4),
        // Linux takes the mmap lock for reading for MADV_PAGEOUT, whose
        // reclaim walks the reverse map into this address space.
        nr::MADVISE if a2 as i32 == uapi::mman::MADV_PAGEOUT => {
            crate::filemap::madvise_pageout(&*current_mm()?, a0, a1).map(|()| 0)
        }
        nr::MADVISE => current_mm()?.mmap_write_lock().madvise(a0, a1, a2 as i32).map(|()| 0),
        nr::MINCORE => sys_mincore(a0, a1, a2),
        nr::SHMGET => crate::ipc::shm::sys_shmget(a0 as i32, a1, a2 as u32),
        nr::SHMAT => crate::ipc::shm::sys_shmat(a0 as i32, a1, a2 as u32),
        nr::SHMDT => crate::ipc::shm::sys_shmdt(a0),
        nr::SHMCTL => crate::ipc::shm::sys_shmctl(a0 as i32, a1 as i32, a2),
        nr::MEMFD_CREATE => crate::memfd::sys_memfd_create(a0, a1 as u32),
        nr::FADVISE64 => crate::filemap::fadvise::sys_fadvise64(a0 as i32, a1, a2, a3 as i32),
        nr::READAHEAD => crate::filemap::fadvise::sys_readahead(a0 as i32, a1, a2),
        nr::MSYNC => current_mm()?.mmap_write_lock().msync(a0, a1, a2 as u32).map(|()| 0),
        nr::MLOCK => current_mm()?.mmap_write_lock().mlock(a0, a1).map(|()| 0),
        nr::MLOCK2 => current_mm()?.mmap_write_lock().mlock2(a0, a1, a2 as u32).map(|()| 0),
        nr::MUNLOCK => current_mm()?.mmap_write_lock().munlock(a0, a1).map(|()| 0),
        nr::MLOCKALL => current_mm()?.mmap_write_lock().mlockall(a0 as u32).map(|()| 0),
        nr::MUNLOCKALL => current_mm()?.mmap_write_lock().munlockall().map(|()| 0),
        nr::EXIT => process::do_exit((uapi::wait::w_exitcode(a0 as i32)) as u32),
        nr::EXIT_GROUP => process::do_group_exit((uapi::wait::w_exitcode(a0 as i32)) as u32),
        nr::GETPID => Ok(u64::from(sched::current().proc.tgid())),
        nr::GETTID => Ok(u64::from(sched::current().pid)),
        nr::GETPPID => Ok(u64::from(sched::current().proc.group.parent.lock().upgrade().map_or(0, |p| p.tgid))),
        nr::GETUID => Ok(u64::from(current_cred().uid.0)),
        nr::GETEUID => Ok(u64::from(current_cred().euid.0)),
        nr::GETGID => Ok(u64::from(current_cred().gid.0)),
        nr::GETEGID => Ok(u64::from(current_cred().egid.0)),
        nr::GETRESUID => {
            let c = current_cred();
            sys_getres([c.uid.0, c.euid.0, c.suid.0], [a0, a1, a2])
        }
        nr::GETRESGID => {
            let c = current_cred();
            sys_getres([c.gid.0, c.egid.0, c.sgid.0], [a0, a1, a2])
        }
        nr::SETUID => commit_creds(|c| c.setuid(a0 as u32)).map(|()| 0),
        nr::SETGID => commit_creds(|c| c.setgid(a0 as u32)).map(|()| 0),
        nr::SETREUID => commit_creds(|c| c.setreuid(a0 as u32, a1 as u32)).map(|()| 0),
        nr::SETREGID => commit_creds(|c| c.setregid(a0 as u32, a1 as u32)).map(|()| 0),
        nr::SETRESUID => commit_creds(|c| c.setresuid(a0 as u32, a1 as u32, a2 as u32)).map(|()| 0),
        nr::SETRESGID => commit_creds(|c| c.setresgid(a0 as u32, a1 as u32, a2 as u32)).map(|()| 0),
        nr::GETRLIMIT => sys_getrlimit(a0 as u32, a1),
        nr::SETRLIMIT => sys_setrlimit(a0 as u32, a1),
        nr::PRLIMIT64 => sys_prlimit64(a0 as i32, a1 as u32, a2, a3),
        nr::SET_TID_ADDRESS => {
            let me = sched::current();
            me.proc.clear_child_tid.store(a0, Ordering::Relaxed);
            Ok(u64::from(me.pid))
        }
        nr::ARCH_PRCTL => sys_arch_prctl(a0 as i32, a1),
        nr::FUTEX => crate::futex::sys_futex(a0, a1 as u32, a2 as u32, a3, a4, a5 as u32),
        nr::FORK => process::do_fork(f, &CloneArgs::fork()).map(|c| u64::from(c.pid)),
        nr::VFORK => process::do_fork(f, &CloneArgs::vfork()).map(|c| u64::from(c.pid)),
        nr::CLONE => sys_clone(a0, a1, a2, a3, a4, f),
        nr::EXECVE => sys_execve(a0, a1, a2, f),
        nr::WAIT4 => sys_wait4(a0 as i32, a1, a2 as u32, a3),
        nr::KILL => signal::kill_something_info(a0 as i32, a1 as i32),
        nr::TKILL => sys_tgkill(None, a0 as i32, a1 as i32),
        nr::TGKILL => sys_tgkill(Some(a0 as i32), a1 as i32, a2 as i32),
        nr::RT_SIGACTION => sys_rt_sigaction(a0 as i32, a1, a2, a3),
        nr::RT_SIGPROCMASK => sys_rt_sigprocmask(a0 as i32, a1, a2, a3),
        nr::RT_SIGRETURN => signal::sys_rt_sigreturn(f),
        nr::SIGALTSTACK => Ok(0),
        nr::RT_SIGPENDING => signal::sys_rt_sigpending(a0, a1),
        nr::RT_SIGTIMEDWAIT => signal::sys_rt_sigtimedwait(a0, a1, a2, a3),
        nr::RT_SIGSUSPEND => signal::sys_rt_sigsuspend(a0, a1),
        nr::PAUSE => signal::sys_pause(),
        nr::GETITIMER => crate::time::itimer::sys_getitimer(a0 as i32, a1),
        nr::SETITIMER => crate::time::itimer::sys_setitimer(a0 as i32, a1, a2),
        nr::ALARM => crate::time::itimer::sys_alarm(a0 as u32),
        nr::TIMER_CREATE => crate::time::posix_timers::sys_timer_create(a0 as i32, a1, a2),
        nr::TIMER_SETTIME => crate::time::posix_timers::sys_timer_settime(a0 as i32, a1 as u32, a2, a3),
        nr::TIMER_GETTIME => crate::time::posix_timers::sys_timer_gettime(a0 as i32, a1),
        nr::TIMER_GETOVERRUN => crate::time::posix_timers::sys_timer_getoverrun(a0 as i32),
        nr::TIMER_DELETE => crate::time::posix_timers::sys_timer_delete(a0 as i32),
        nr::GETTIMEOFDAY => crate::time::sys_gettimeofday(a0, a1),
        nr::TIME => crate::time::sys_time(a0),
        nr::CLOCK_GETRES => crate::time::sys_clock_getres(a0 as i32, a1),
        nr::TIMES => crate::sys::sys_times(a0),
        nr::GETRUSAGE => crate::sys::sys_getrusage(a0 as i32, a1),
        nr::SYSINFO => crate::sys::sys_sysinfo(a0),
        nr::SETPGID => crate::sys::sys_setpgid(a0 as i32, a1 as i32),
        nr::GETPGID => crate::sys::sys_getpgid(a0 as i32),
        nr::GETPGRP => crate::sys::sys_getpgid(0),
        nr::SETSID => crate::sys::sys_setsid(),
        nr::GETSID => crate::sys::sys_getsid(a0 as i32),
        nr::SCHED_GETAFFINITY => sched::affinity::sys_sched_getaffinity(a0 as i32, a1, a2),
        nr::SCHED_SETAFFINITY => sched::affinity::sys_sched_setaffinity(a0 as i32, a1, a2),
        nr::GETCPU => crate::sys::sys_getcpu(a0, a1),
        nr::CLOCK_GETTIME => sys_clock_gettime(a0 as i32, a1),
        nr::NANOSLEEP => sys_nanosleep(a0, a1),
        nr::CLOCK_NANOSLEEP => sys_nanosleep(a2, a3),
        nr::GETRANDOM => sys_getrandom(a0, a1),
        nr::UNAME => sys_uname(a0),
        nr::SCHED_YIELD => {
            sched::yield_now();
            Ok(0)
        }
        _ => {
            let word = (nr / 64) as usize;
            if word < LOGGED_ENOSYS.len()
                && LOGGED_ENOSYS[word].fetch_or(1 << (nr % 64), Ordering::Relaxed) & (1 << (nr % 64)) == 0
            {
                let me = sched::current();
                log::warn!(
                    "{}[{}]: unimplemented syscall {nr} ({}), returning -ENOSYS",
                    me.comm(),
                    me.pid,
                    uapi::unistd::syscall_name(nr).unwrap_or("unknown")
                );
            }
            Err(Errno::ENOSYS)
        }
    }
}

fn file(fd: i32) -> Result<Arc<OpenFile>, Errno> {
    sched::current().proc.files.lock().get(fd)
}

/// Bytes moved through one kernel bounce buffer.
pub(crate) const IO_CHUNK: u64 = 64 * 1024;

/// Linux `read`: at most [`IO_CHUNK`] bytes per call (a short read, as a
/// file system may give). A bad buffer gives EFAULT and consumes nothing:
/// the bytes go back to the file.
fn sys_read(fd: i32, buf: u64, len: u64) -> SysResult {
    sys_readv_of(fd, &[(buf, len)])
}

/// Linux `write`: blocks until everything is written (pipes: in chunks,
/// atomic up to `PIPE_BUF`), returning the count so far if a later chunk
/// fails.
fn sys_write(fd: i32, buf: u64, len: u64) -> SysResult {
    sys_writev_of(fd, &[(buf, len)])
}

fn iovecs(iov: u64, cnt: u64) -> Result<Vec<(u64, u64)>, Errno> {
    if cnt > 1024 {
        return Err(Errno::EINVAL);
    }
    let mut out: Vec<(u64, u64)> = Vec::new();
    out.try_reserve_exact(cnt as usize).map_err(|_| Errno::ENOMEM)?;
    for i in 0..cnt {
        let [base, len] = read_user::<[u64; 2]>(iov.wrapping_add(16 * i)).map_err(efault)?;
        out.push((base, len));
    }
    let iov = out;
    // Linux `iovec_from_user`: a length negative as a ssize_t is EINVAL
    // (a large total is only capped, as our chunks cap it).
    if iov.iter().any(|&(_, l)| l > i64::MAX as u64) {
        return Err(Errno::EINVAL);
    }
    Ok(iov)
}

fn sys_writev(fd: i32, iov: u64, cnt: u64) -> SysResult {
    sys_writev_of(fd, &iovecs(iov, cnt)?)
}

fn sys_readv(fd: i32, iov: u64, cnt: u64) -> SysResult {
    sys_readv_of(fd, &iovecs(iov, cnt)?)
}

/// One read into a bounce buffer of the iovecs' total size (at most
/// [`IO_CHUNK`]), then scattered: like Linux's single `iov_iter`, a pipe
/// read never waits again once it has data.
fn sys_readv_of(fd: i32, iov: &[(u64, u64)]) -> SysResult {
    let f = file(fd)?;
    let want = iov.iter().fold(0u64, |t, &(_, l)| t.saturating_add(l)).min(IO_CHUNK);
    let mut tmp = zeroed_buf(want as usize)?;
    let n = f.read(&mut tmp)?;
    let mut done = 0;
    for &(base, len) in iov {
        if done == n {
            break;
        }
        let k = usize::try_from(len).unwrap_or(usize::MAX).min(n - done);
        if copy_to_user(base, &tmp[done..done + k]).is_err() {
            f.unread(&tmp[done..n]);
            return if done > 0 { Ok(done as u64) } else { Err(Errno::EFAULT) };
        }
        done += k;
    }
    Ok(n as u64)
}

/// Gathers the iovecs chunk by chunk and writes each chunk whole; stops
/// at a short write, and returns the count so far when a later chunk
/// fails (Linux `do_iter_write`).
fn sys_writev_of(fd: i32, iov: &[(u64, u64)]) -> SysResult {
    let f = file(fd)?;
    let capture = sched::current().proc.group.capture.lock().clone();
    let mut done = 0u64;
    let (mut i, mut at) = (0, 0u64);
    while i < iov.len() {
        let mut chunk = Vec::new();
        chunk.try_reserve_exact(IO_CHUNK as usize).map_err(|_| Errno::ENOMEM)?;
        while i < iov.len() && (chunk.len() as u64) < IO_CHUNK {
            let (base, len) = iov[i];
            let k = (len - at).min(IO_CHUNK - chunk.len() as u64);
            let start = chunk.len();
            chunk.resize(start + k as usize, 0);
            if copy_from_user(&mut chunk[start..], base.wrapping_add(at)).is_err() {
                chunk.truncate(start);
                if chunk.is_empty() {
                    return if done > 0 { Ok(done) } else { Err(Errno::EFAULT) };
                }
                i = iov.len();
                break;
            }
            at += k;
            if at == len {
                (i, at) = (i + 1, 0);
            }
        }
        if chunk.is_empty() {
            break;
        }
        match f.write(&chunk, capture.as_ref()) {
            Ok(n) => {
                done += n as u64;
                if n < chunk.len() {
                    break;
                }
            }
            Err(_) if done > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn sys_ioctl(fd: i32, cmd: u64, arg: u64) -> SysResult {
    let f = file(fd)?;
    match (&f.kind, cmd as u32) {
        (FileKind::Console, uapi::ioctls::TIOCGWINSZ) => {
            let ws = uapi::ioctls::Winsize { ws_row: 24, ws_col: 80, ..Default::default() };
            write_user(arg, &ws).map_err(efault)?;
            Ok(0)
        }
        _ => Err(Errno::ENOTTY),
    }
}

/// Linux `dup2` (`flags` None) and `dup3`.
fn sys_dup3(old: i32, new: i32, flags: Option<u32>) -> SysResult {
    let me = sched::current();
    let nofile = resource::current_nofile();
    let mut files = me.proc.files.lock();
    match flags {
        Some(f) if f & !uapi::fcntl::O_CLOEXEC != 0 => Err(Errno::EINVAL),
        Some(_) if old == new => Err(Errno::EINVAL),
        None if old == new => files.get(old).map(|_| new as u64),
        f => {
            let (fd, replaced) = files.dup_to(old, new, f.unwrap_or(0) != 0, nofile)?;
            drop(files);
            drop(replaced);
            Ok(fd as u64)
        }
    }
}

/// Linux `pipe2` (and `pipe`, `flags` 0): installs the read and write
/// ends and stores their descriptors at `fds`; on a bad pointer both are
/// closed again and the call fails with EFAULT.
fn sys_pipe2(fds: u64, flags: u32) -> SysResult {
    use uapi::fcntl::{O_CLOEXEC, O_NONBLOCK, O_RDONLY, O_WRONLY};
    if flags & !(O_CLOEXEC | O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let (rd, wr) = crate::fs::pipe::create_pipe()?;
    let cloexec = flags & O_CLOEXEC != 0;
    let status = flags & O_NONBLOCK;
    let me = sched::current();
    let nofile = resource::current_nofile();
    let pair = {
        let mut files = me.proc.files.lock();
        let r = files.install(OpenFile::new(FileKind::Pipe(rd), O_RDONLY | status), cloexec, nofile)?;
        match files.install(OpenFile::new(FileKind::Pipe(wr), O_WRONLY | status), cloexec, nofile) {
            Ok(w) => [r, w],
            Err(e) => {
                let file = files.close(r)?;
                drop(files);
                drop(file);
                return Err(e);
            }
        }
    };
    if write_user(fds, &pair).is_err() {
        let closed = {
            let mut files = me.proc.files.lock();
            (files.close(pair[0]), files.close(pair[1]))
        };
        drop(closed);
        return Err(Errno::EFAULT);
    }
    Ok(0)
}

fn sys_fcntl(fd: i32, cmd: i32, arg: u64) -> SysResult {
    use uapi::fcntl::*;
    if matches!(cmd as u32, F_ADD_SEALS | F_GET_SEALS) {
        // Outside the table's lock: adding seals sleeps for `i_rwsem`.
        // Linux's `memfd_fcntl` takes the argument as an unsigned int.
        return crate::memfd::memfd_fcntl(&*file(fd)?, cmd as u32, arg as u32);
    }
    let me = sched::current();
    let nofile = resource::current_nofile();
    let mut files = me.proc.files.lock();
    // Linux's `do_fcntl` takes the argument as an int, `f_dupfd` as an
    // unsigned int: the upper bits go, -1 is far above any limit.
    let from = arg as u32;
    match cmd as u32 {
        F_DUPFD => files.dup_from(fd, from, false, nofile).map(|f| f as u64),
        F_DUPFD_CLOEXEC => files.dup_from(fd, from, true, nofile).map(|f| f as u64),
        F_GETFD => files.cloexec(fd).map(|c| if c { u64::from(FD_CLOEXEC) } else { 0 }),
        F_SETFD => files.set_cloexec(fd, arg & u64::from(FD_CLOEXEC) != 0).map(|()| 0),
        F_GETFL => files.get(fd).map(|f| u64::from(f.flags())),
        F_SETFL => files.get(fd).map(|f| f.set_status_flags(arg as u32)).map(|()| 0),
        _ => Err(Errno::EINVAL),
    }
}

fn sys_mmap(addr: u64, len: u64, prot: u32, flags: u32, fd: i32, off: u64) -> SysResult {
    if off & (mm::PAGE_SIZE - 1) != 0 {
        return Err(Errno::EINVAL);
    }
    // A cached file is mapped through its page cache; the mapping object
    // is held here for the call, the VMAs take their own counts. A shmem
    // file's seals are checked first, and a shared mapping that may write
    // it is counted for `F_SEAL_WRITE` while the object lives.
    let mut cached = None;
    let file = if flags & uapi::mman::MAP_ANONYMOUS != 0 {
        None
    } else {
        let f = file(fd)?;
        if let FileKind::Mem { dev, .. } = f.kind {
            return mmap_mem_dev(dev, &f, addr, len, prot, flags, off);
        }
        let p = f.path().ok_or(Errno::ENODEV)?;
        if p.inode.i_mapping.is_none() {
            return Err(Errno::ENODEV);
        }
        let (writable, counted) = match p.inode.ops.shmem() {
            Some(shmem) => {
                let shared = flags & uapi::mman::MAP_TYPE != uapi::mman::MAP_PRIVATE;
                shmem.mmap_prepare(shared, prot & uapi::mman::PROT_WRITE != 0, f.writable())?
            }
            None => (f.writable(), None),
        };
        let name = crate::shmem::unlinked_name(&p.inode).or_else(|| f.d_path()).unwrap_or_default();
        let mapped = cached.insert(crate::filemap::MappedFile::new(p.inode.clone(), name, counted));
        Some(mm::mmap::MapFile { file: crate::filemap::MappedFile::as_vma_file(mapped), writable })
    };
    let result = current_mm()?.mmap_write_lock().do_mmap(addr, len, prot, flags, file, off / mm::PAGE_SIZE);
    drop(cached);
    result
}

/// mmap of a memory device: only `/dev/zero` maps (ENODEV for the
/// others), as anonymous memory (Linux `mmap_zero`): a shared mapping is
/// a new shmem file's (`shmem_zero_setup`, named `/dev/zero (deleted)`),
/// a private one private anonymous memory, both as `MAP_ANONYMOUS` would
/// make them. The file's access mode is checked first, as for any file
/// (Linux `do_mmap`): EACCES without read access, or for a shared
/// writable mapping without write access.
fn mmap_mem_dev(
    dev: crate::drivers::mem::MemDev,
    f: &OpenFile,
    addr: u64,
    len: u64,
    prot: u32,
    flags: u32,
    off: u64,
) -> SysResult {
    if dev != crate::drivers::mem::MemDev::Zero {
        return Err(Errno::ENODEV);
    }
    let shared = flags & uapi::mman::MAP_TYPE != uapi::mman::MAP_PRIVATE;
    if !f.readable() || shared && prot & uapi::mman::PROT_WRITE != 0 && !f.writable() {
        return Err(Errno::EACCES);
    }
    current_mm()?.mmap_write_lock().do_mmap(addr, len, prot, flags, None, off / mm::PAGE_SIZE)
}

fn sys_mincore(start: u64, len: u64, vec: u64) -> SysResult {
    use mm::mincore::{mincore_check, mincore_loop};
    let mm = current_mm()?;
    let range = mincore_check(start, len, vec)?;
    // The lock is taken per chunk and dropped for each copy (Linux
    // `do_mincore` under `mmap_read_lock`, then `copy_to_user`): copying
    // to user memory may fault, and the fault handler takes the lock.
    mincore_loop(range, &mut |r, buf| mm.mmap_read_lock().mincore_chunk(r, buf), &mut |index, bytes| {
        copy_to_user(vec + index as u64, bytes).map_err(efault)
    })?;
    Ok(0)
}

fn sys_arch_prctl(code: i32, addr: u64) -> SysResult {
    use uapi::prctl::*;
    let me = sched::current();
    match code {
        ARCH_SET_FS => {
            if addr >= mm::mmap::TASK_SIZE {
                return Err(Errno::EPERM);
            }
            me.fs_base.store(addr, Ordering::Relaxed);
            x86_64::registers::model_specific::FsBase::write(x86_64::VirtAddr::new_truncate(addr));
            Ok(0)
        }
        ARCH_SET_GS => {
            if addr >= mm::mmap::TASK_SIZE {
                return Err(Errno::EPERM);
            }
            x86_64::registers::model_specific::KernelGsBase::write(x86_64::VirtAddr::new_truncate(addr));
            Ok(0)
        }
        ARCH_GET_FS => write_user(addr, &me.fs_base.load(Ordering::Relaxed)).map(|()| 0).map_err(efault),
        ARCH_GET_GS => write_user(addr, &x86_64::registers::model_specific::KernelGsBase::read().as_u64())
            .map(|()| 0)
            .map_err(efault),
        _ => Err(Errno::EINVAL),
    }
}

/// Linux `clone(flags, newsp, parent_tid, child_tid, tls)` (x86_64
/// order): fork, vfork, a process sharing the address space, or a thread
/// (`CLONE_THREAD` with `CLONE_SIGHAND`, `CLONE_VM`, and here
/// `CLONE_FILES`: see [`process::check_clone_flags`]), with a new stack,
/// TLS, the tid pointers and the exit signal. `CLONE_SYSVSEM`,
/// `CLONE_DETACHED` (ignored by Linux too) and `CLONE_UNTRACED` are
/// accepted: there are no semaphore undo lists and no tracers.
/// Namespace and other flags are refused with EINVAL and logged once.
fn sys_clone(flags: u64, newsp: u64, parent_tid: u64, child_tid: u64, tls: u64, f: &mut TrapFrame) -> SysResult {
    use uapi::sched::{
        CLONE_CHILD_CLEARTID, CLONE_CHILD_SETTID, CLONE_DETACHED, CLONE_FILES, CLONE_FS, CLONE_PARENT_SETTID,
        CLONE_SETTLS, CLONE_SIGHAND, CLONE_SYSVSEM, CLONE_THREAD, CLONE_UNTRACED, CLONE_VFORK, CLONE_VM, CSIGNAL,
    };
    const SHARING: u64 = CLONE_VM | CLONE_VFORK | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
    const SUPPORTED: u64 = CSIGNAL
        | SHARING
        | CLONE_SYSVSEM
        | CLONE_DETACHED
        | CLONE_UNTRACED
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_SETTID
        | CLONE_CHILD_CLEARTID;
    static WARNED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    if flags & !SUPPORTED != 0 {
        if !WARNED.swap(true, Ordering::Relaxed) {
            log::warn!("clone: flags {flags:#x} not supported (namespaces, pidfds, tracing)");
        }
        return Err(Errno::EINVAL);
    }
    process::check_clone_flags(flags & SHARING)?;
    // A thread has no exit signal (Linux sets -1 and ignores CSIGNAL).
    let exit_signal = if flags & CLONE_THREAD != 0 { 0 } else { (flags & CSIGNAL) as u32 };
    if exit_signal > uapi::signal::NSIG as u32 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_SETTLS != 0 && tls >= mm::mmap::TASK_SIZE {
        // As ARCH_SET_FS would refuse it (Linux `set_new_tls`).
        return Err(Errno::EPERM);
    }
    let set = |flag: u64, ptr: u64| if flags & flag != 0 { ptr } else { 0 };
    let args = CloneArgs {
        flags: flags & SHARING,
        stack: newsp,
        tls: (flags & CLONE_SETTLS != 0).then_some(tls),
        parent_tid: set(CLONE_PARENT_SETTID, parent_tid),
        child_tid: set(CLONE_CHILD_SETTID, child_tid),
        clear_child_tid: set(CLONE_CHILD_CLEARTID, child_tid),
        exit_signal,
    };
    process::do_fork(f, &args).map(|c| u64::from(c.pid))
}

fn sys_execve(path: u64, argv: u64, envp: u64, f: &mut TrapFrame) -> SysResult {
    let path = user_string(path)?;
    let argv = user_string_array(argv)?;
    let envp = user_string_array(envp)?;
    crate::exec::kernel_execve(&path, &argv, &envp, f).map_err(|e| e.errno())?;
    Ok(0)
}

/// Linux `wait4`: the child's wait status at `status` and, at `rusage`,
/// its resource usage with its own reaped children's (Linux
/// `getrusage(p, RUSAGE_BOTH)`), if given.
fn sys_wait4(pid: i32, status: u64, options: u32, rusage: u64) -> SysResult {
    if options & !(uapi::wait::WNOHANG | uapi::wait::WUNTRACED | uapi::wait::WCONTINUED | uapi::wait::__WALL) != 0 {
        return Err(Errno::EINVAL);
    }
    match process::do_wait(pid, options & uapi::wait::WNOHANG != 0)? {
        None => Ok(0),
        Some(r) => {
            if status != 0 {
                write_user(status, &r.status).map_err(efault)?;
            }
            if rusage != 0 {
                write_user(rusage, &r.rusage).map_err(efault)?;
            }
            Ok(u64::from(r.pid))
        }
    }
}

/// Linux `tgkill(tgid, tid, sig)` and, with no `tgid`, the older
/// `tkill(tid, sig)`: `sig` for the thread `tid` alone (of the process
/// `tgid`). EINVAL for a bad signal or id, ESRCH if no such thread lives
/// (in that process), EPERM as `kill`'s permission check says (Linux
/// `do_send_specific`); the siginfo says `SI_TKILL` with the caller's
/// process id and real uid.
fn sys_tgkill(tgid: Option<i32>, tid: i32, sig: i32) -> SysResult {
    if !(0..=64).contains(&sig) || tid <= 0 || tgid.is_some_and(|t| t <= 0) {
        return Err(Errno::EINVAL);
    }
    let task = sched::find_task_by_pid(tid as u32).ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|t| t as u32 != task.proc.tgid()) || !task.user.load(Ordering::Acquire) {
        return Err(Errno::ESRCH);
    }
    signal::check_kill_permission(sig, &task)?;
    if sig != 0 {
        let me = sched::current();
        let mut info = uapi::signal::SigInfo::new(sig, uapi::signal::SI_TKILL);
        info.set_si_pid(me.proc.tgid() as i32);
        info.set_si_uid(me.proc.cred.lock().uid.0);
        signal::send_signal_thread(&task, sig, Some(info));
    }
    Ok(0)
}

fn sys_rt_sigaction(sig: i32, act: u64, oact: u64, size: u64) -> SysResult {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let new = if act != 0 { Some(read_user::<uapi::signal::KernelSigaction>(act).map_err(efault)?) } else { None };
    let old = signal::do_sigaction(sig, new)?;
    if oact != 0 {
        write_user(oact, &old).map_err(efault)?;
    }
    Ok(0)
}

fn sys_rt_sigprocmask(how: i32, set: u64, oset: u64, size: u64) -> SysResult {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let new = if set != 0 { Some(read_user::<u64>(set).map_err(efault)?) } else { None };
    let old = signal::do_sigprocmask(how, new)?;
    if oset != 0 {
        write_user(oset, &old).map_err(efault)?;
    }
    Ok(0)
}

fn sys_clock_gettime(clock: i32, tp: u64) -> SysResult {
    use uapi::time::*;
    if !crate::time::clock_valid(clock) {
        return Err(Errno::EINVAL);
    }
    // The wall clock for CLOCK_REALTIME and its variants (_COARSE,
    // _ALARM, TAI without leap seconds); the task's CPU time for the
    // CPU-time clocks; the TSC clock for the others.
    let ns = match clock {
        CLOCK_REALTIME | CLOCK_REALTIME_COARSE | CLOCK_REALTIME_ALARM | CLOCK_TAI => {
            crate::drivers::rtc::ktime_get_real_ns()
        }
        CLOCK_PROCESS_CPUTIME_ID => crate::time::current_cputime(true),
        CLOCK_THREAD_CPUTIME_ID => crate::time::current_cputime(false),
        _ => tsc::now_ns(),
    };
    let ts = Timespec { tv_sec: (ns / 1_000_000_000) as i64, tv_nsec: (ns % 1_000_000_000) as i64 };
    write_user(tp, &ts).map_err(efault)?;
    Ok(0)
}

fn sys_nanosleep(req: u64, _rem: u64) -> SysResult {
    let ts: uapi::time::Timespec = read_user(req).map_err(efault)?;
    if ts.tv_sec < 0 || !(0..1_000_000_000).contains(&ts.tv_nsec) {
        return Err(Errno::EINVAL);
    }
    let ns = (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64);
    let me = sched::current();
    if crate::sched::wait::sleep_until_ns(tsc::now_ns().saturating_add(ns), || signal::signal_pending(&me)) {
        Ok(0)
    } else {
        Err(Errno::EINTR)
    }
}

fn sys_getrandom(buf: u64, len: u64) -> SysResult {
    let len = len.min(1 << 20);
    let mut chunk = [0u8; 256];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(256) as usize;
        crate::drivers::random::get_random_bytes(&mut chunk[..n]);
        copy_to_user(buf.wrapping_add(done), &chunk[..n]).map_err(efault)?;
        done += n as u64;
    }
    Ok(len)
}

/// `uname`'s system name (Linux `UTS_SYSNAME`, `/proc/sys/kernel/ostype`).
pub const UTS_SYSNAME: &str = "Linux";
/// `uname`'s node name (`/proc/sys/kernel/hostname`).
pub const UTS_NODENAME: &str = "mm-kernel";
/// `uname`'s release (`/proc/sys/kernel/osrelease`): the Linux version
/// whose behaviour this kernel follows.
pub const UTS_RELEASE: &str = "6.1.0-mm";

fn sys_uname(buf: u64) -> SysResult {
    let mut u = uapi::utsname::NewUtsname::default();
    let put = |field: &mut [u8], s: &str| field[..s.len()].copy_from_slice(s.as_bytes());
    put(&mut u.sysname, UTS_SYSNAME);
    put(&mut u.nodename, UTS_NODENAME);
    put(&mut u.release, UTS_RELEASE);
    put(&mut u.version, "#1 SMP mm-kernel");
    put(&mut u.machine, "x86_64");
    put(&mut u.domainname, "(none)");
    write_user(buf, &u).map_err(efault)?;
    Ok(0)
}

/// Linux `getresuid`/`getresgid`: stores the real, effective and saved
/// ids at the three pointers in that order, stopping at the first that
/// faults (EFAULT).
fn sys_getres(ids: [u32; 3], at: [u64; 3]) -> SysResult {
    for (id, ptr) in ids.iter().zip(at) {
        write_user(ptr, id).map_err(efault)?;
    }
    Ok(0)
}

/// Linux `getrlimit`: the limit as it is (x86_64 has no old-style
/// `RLIM_INFINITY` conversion).
fn sys_getrlimit(resource: u32, rlim: u64) -> SysResult {
    let old = resource::do_prlimit(&sched::current(), resource, None)?;
    write_user(rlim, &old).map_err(efault)?;
    Ok(0)
}

/// Linux `setrlimit`: the new limit is read first (EFAULT), then checked.
fn sys_setrlimit(resource: u32, rlim: u64) -> SysResult {
    let new: uapi::resource::Rlimit = read_user(rlim).map_err(efault)?;
    resource::do_prlimit(&sched::current(), resource, Some(new))?;
    Ok(0)
}

/// Linux `prlimit64`: the new limit is read (EFAULT) before the process
/// is looked up (pid 0 is the caller; ESRCH if there is none, EPERM if
/// its ids are not the caller's and the caller lacks `CAP_SYS_RESOURCE`);
/// the old limit is stored after the new one is set, so a bad `old`
/// pointer gives EFAULT with the change made.
fn sys_prlimit64(pid: i32, resource: u32, new: u64, old: u64) -> SysResult {
    let new = if new != 0 { Some(read_user::<uapi::resource::Rlimit>(new).map_err(efault)?) } else { None };
    let task = match pid {
        0 => sched::current(),
        _ => u32::try_from(pid).ok().and_then(sched::find_task_by_pid).ok_or(Errno::ESRCH)?,
    };
    // A kernel thread has no limits a process could see.
    if !task.user.load(Ordering::Acquire) && pid != 0 {
        return Err(Errno::ESRCH);
    }
    resource::check_prlimit_permission(&task)?;
    let previous = resource::do_prlimit(&task, resource, new)?;
    if old != 0 {
        write_user(old, &previous).map_err(efault)?;
    }
    Ok(0)
}
