//! Signals: Linux's `arch/x86/include/uapi/asm/signal.h` (numbers and the
//! x86_64 `struct sigaction`), `include/uapi/asm-generic/signal-defs.h`
//! (`SA_*`, `SIG_*`), `include/uapi/linux/signal.h` (`SS_*`),
//! `include/uapi/asm-generic/siginfo.h` (`siginfo_t`, `si_code` values),
//! `arch/x86/include/uapi/asm/sigcontext.h` and `asm/ucontext.h` (the saved
//! user context), and `arch/x86/include/asm/sigframe.h` (the frame the
//! kernel pushes on the user stack).
//!
//! Delivery on x86_64 builds an [`RtSigframe`] below the interrupted stack
//! pointer (or on the alternate stack, [`StackT`]): `pretcode` is the
//! handler's return address, musl's `__restore_rt` from `sa_restorer`
//! (musl always sets [`SA_RESTORER`]), which issues `rt_sigreturn`; the
//! handler gets `rdi = signo`, `rsi = &frame.info`, `rdx = &frame.uc`.
//! The FPU state the [`Sigcontext::fpstate`] pointer names lives above the
//! frame, 64-byte aligned, as an [`Fpstate`] followed by any XSAVE area.
//!
//! Signal numbers run 1..=[`NSIG`]; a signal set (`sigset_t`) is a `u64`
//! with bit `sig - 1` standing for `sig`.

/// `SIGHUP`: hangup of the controlling terminal.
pub const SIGHUP: i32 = 1;
/// `SIGINT`: interrupt from the keyboard.
pub const SIGINT: i32 = 2;
/// `SIGQUIT`: quit from the keyboard.
pub const SIGQUIT: i32 = 3;
/// `SIGILL`: illegal instruction.
pub const SIGILL: i32 = 4;
/// `SIGTRAP`: breakpoint or trace trap.
pub const SIGTRAP: i32 = 5;
/// `SIGABRT`: `abort()`.
pub const SIGABRT: i32 = 6;
/// `SIGIOT`: alias of [`SIGABRT`].
pub const SIGIOT: i32 = SIGABRT;
/// `SIGBUS`: bus error (bad memory access to a mapped object).
pub const SIGBUS: i32 = 7;
/// `SIGFPE`: arithmetic exception.
pub const SIGFPE: i32 = 8;
/// `SIGKILL`: kill; cannot be caught, blocked or ignored.
pub const SIGKILL: i32 = 9;
/// `SIGUSR1`: user-defined signal 1.
pub const SIGUSR1: i32 = 10;
/// `SIGSEGV`: invalid memory reference.
pub const SIGSEGV: i32 = 11;
/// `SIGUSR2`: user-defined signal 2.
pub const SIGUSR2: i32 = 12;
/// `SIGPIPE`: write to a pipe with no readers.
pub const SIGPIPE: i32 = 13;
/// `SIGALRM`: `alarm()` timer.
pub const SIGALRM: i32 = 14;
/// `SIGTERM`: termination request.
pub const SIGTERM: i32 = 15;
/// `SIGSTKFLT`: coprocessor stack fault (unused on x86).
pub const SIGSTKFLT: i32 = 16;
/// `SIGCHLD`: a child stopped, continued or terminated.
pub const SIGCHLD: i32 = 17;
/// `SIGCONT`: continue if stopped.
pub const SIGCONT: i32 = 18;
/// `SIGSTOP`: stop; cannot be caught, blocked or ignored.
pub const SIGSTOP: i32 = 19;
/// `SIGTSTP`: stop typed at the terminal.
pub const SIGTSTP: i32 = 20;
/// `SIGTTIN`: terminal input for a background process.
pub const SIGTTIN: i32 = 21;
/// `SIGTTOU`: terminal output for a background process.
pub const SIGTTOU: i32 = 22;
/// `SIGURG`: urgent condition on a socket.
pub const SIGURG: i32 = 23;
/// `SIGXCPU`: CPU time limit exceeded.
pub const SIGXCPU: i32 = 24;
/// `SIGXFSZ`: file size limit exceeded.
pub const SIGXFSZ: i32 = 25;
/// `SIGVTALRM`: virtual timer expired.
pub const SIGVTALRM: i32 = 26;
/// `SIGPROF`: profiling timer expired.
pub const SIGPROF: i32 = 27;
/// `SIGWINCH`: terminal window size changed.
pub const SIGWINCH: i32 = 28;
/// `SIGIO`: I/O now possible.
pub const SIGIO: i32 = 29;
/// `SIGPOLL`: alias of [`SIGIO`].
pub const SIGPOLL: i32 = SIGIO;
/// `SIGPWR`: power failure.
pub const SIGPWR: i32 = 30;
/// `SIGSYS`: bad system call (seccomp).
pub const SIGSYS: i32 = 31;
/// `SIGRTMIN`: the first real-time signal as the kernel numbers them (libcs
/// reserve the first few for themselves).
pub const SIGRTMIN: i32 = 32;
/// `SIGRTMAX`: the last real-time signal, equal to [`NSIG`].
pub const SIGRTMAX: i32 = NSIG;
/// The number of signals; Linux's kernel-side `_NSIG`, the width of the
/// 64-bit `sigset_t` that `rt_sigprocmask` and `rt_sigaction` take. (The
/// uapi header's `NSIG` of 32 describes the pre-rt `sigset_t` and is not
/// mirrored.)
#[doc(alias = "_NSIG")]
pub const NSIG: i32 = 64;

/// `SA_NOCLDSTOP`: no `SIGCHLD` when children stop or continue.
pub const SA_NOCLDSTOP: u64 = 0x0000_0001;
/// `SA_NOCLDWAIT`: children do not become zombies.
pub const SA_NOCLDWAIT: u64 = 0x0000_0002;
/// `SA_SIGINFO`: the handler takes (signo, siginfo, ucontext).
pub const SA_SIGINFO: u64 = 0x0000_0004;
/// `SA_UNSUPPORTED`: never supported; lets userspace probe which flag bits
/// the kernel accepted.
pub const SA_UNSUPPORTED: u64 = 0x0000_0400;
/// `SA_EXPOSE_TAGBITS`: keep address tag bits in `si_addr` (not on x86).
pub const SA_EXPOSE_TAGBITS: u64 = 0x0000_0800;
/// `SA_RESTORER`: `sa_restorer` holds the return trampoline (x86).
pub const SA_RESTORER: u64 = 0x0400_0000;
/// `SA_ONSTACK`: run the handler on the alternate signal stack.
pub const SA_ONSTACK: u64 = 0x0800_0000;
/// `SA_RESTART`: restart interrupted syscalls.
pub const SA_RESTART: u64 = 0x1000_0000;
/// `SA_NODEFER`: do not block the signal while its handler runs.
pub const SA_NODEFER: u64 = 0x4000_0000;
/// `SA_RESETHAND`: reset to `SIG_DFL` on delivery.
pub const SA_RESETHAND: u64 = 0x8000_0000;
/// `SA_NOMASK`: old name of [`SA_NODEFER`].
pub const SA_NOMASK: u64 = SA_NODEFER;
/// `SA_ONESHOT`: old name of [`SA_RESETHAND`].
pub const SA_ONESHOT: u64 = SA_RESETHAND;

/// `SIG_DFL`: the default action, as a `sa_handler` value.
pub const SIG_DFL: u64 = 0;
/// `SIG_IGN`: ignore the signal, as a `sa_handler` value.
pub const SIG_IGN: u64 = 1;
/// `SIG_ERR`: the error return of the old `signal()` interface.
pub const SIG_ERR: u64 = u64::MAX;

/// `SIG_BLOCK`: `rt_sigprocmask` adds the set to the mask.
pub const SIG_BLOCK: i32 = 0;
/// `SIG_UNBLOCK`: `rt_sigprocmask` removes the set from the mask.
pub const SIG_UNBLOCK: i32 = 1;
/// `SIG_SETMASK`: `rt_sigprocmask` replaces the mask.
pub const SIG_SETMASK: i32 = 2;

/// `SS_ONSTACK`: `sigaltstack` reports the thread is running on the stack.
pub const SS_ONSTACK: u32 = 1;
/// `SS_DISABLE`: the alternate stack is disabled.
pub const SS_DISABLE: u32 = 2;
/// `SS_AUTODISARM`: disarm the alternate stack while a handler runs on it.
pub const SS_AUTODISARM: u32 = 1 << 31;
/// `SS_FLAG_BITS`: the mode flags `sigaltstack` accepts beside the mode.
pub const SS_FLAG_BITS: u32 = SS_AUTODISARM;
/// `MINSIGSTKSZ`: the smallest alternate stack `sigaltstack` accepts.
pub const MINSIGSTKSZ: u64 = 2048;
/// `SIGSTKSZ`: the suggested alternate stack size.
pub const SIGSTKSZ: u64 = 8192;

/// The kernel's `struct sigaction` on x86_64, as `rt_sigaction` reads and
/// writes it (`arch/x86/include/uapi/asm/signal.h`). libc's `struct
/// sigaction` has a different order and a 1024-bit mask; musl converts.
#[doc(alias = "sigaction")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelSigaction {
    /// The handler address, or [`SIG_DFL`] / [`SIG_IGN`].
    pub sa_handler: u64,
    /// `SA_*` flags.
    pub sa_flags: u64,
    /// The return trampoline, meaningful with [`SA_RESTORER`].
    pub sa_restorer: u64,
    /// Signals blocked while the handler runs.
    pub sa_mask: u64,
}

/// `stack_t`: an alternate signal stack (`sigaltstack`, `uc_stack`).
#[doc(alias = "stack_t")]
#[doc(alias = "sigaltstack")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackT {
    /// The stack's lowest address.
    pub ss_sp: u64,
    /// `SS_*` flags (an `int` in C).
    pub ss_flags: u32,
    /// Implicit C padding, explicit so that no stale byte reaches user memory.
    pub __pad: u32,
    /// The stack's size in bytes.
    pub ss_size: u64,
}

/// `SI_MAX_SIZE`: the size of `siginfo_t`.
pub const SI_MAX_SIZE: usize = 128;

/// `si_code` `SI_USER`: sent by `kill()`.
pub const SI_USER: i32 = 0;
/// `si_code` `SI_KERNEL`: sent by the kernel.
pub const SI_KERNEL: i32 = 0x80;
/// `si_code` `SI_QUEUE`: sent by `sigqueue()`.
pub const SI_QUEUE: i32 = -1;
/// `si_code` `SI_TIMER`: a POSIX timer expired.
pub const SI_TIMER: i32 = -2;
/// `si_code` `SI_MESGQ`: a message queue changed state.
pub const SI_MESGQ: i32 = -3;
/// `si_code` `SI_ASYNCIO`: asynchronous I/O completed.
pub const SI_ASYNCIO: i32 = -4;
/// `si_code` `SI_SIGIO`: queued `SIGIO`.
pub const SI_SIGIO: i32 = -5;
/// `si_code` `SI_TKILL`: sent by `tkill()` or `tgkill()`.
pub const SI_TKILL: i32 = -6;
/// `si_code` `SI_DETHREAD`: sent by `execve()` killing subsidiary threads.
pub const SI_DETHREAD: i32 = -7;
/// `si_code` `SI_ASYNCNL`: `getaddrinfo_a()` completed.
pub const SI_ASYNCNL: i32 = -60;

/// `SIGILL` code `ILL_ILLOPC`: illegal opcode.
pub const ILL_ILLOPC: i32 = 1;
/// `SIGILL` code `ILL_ILLOPN`: illegal operand.
pub const ILL_ILLOPN: i32 = 2;
/// `SIGILL` code `ILL_ILLADR`: illegal addressing mode.
pub const ILL_ILLADR: i32 = 3;
/// `SIGILL` code `ILL_ILLTRP`: illegal trap.
pub const ILL_ILLTRP: i32 = 4;
/// `SIGILL` code `ILL_PRVOPC`: privileged opcode.
pub const ILL_PRVOPC: i32 = 5;
/// `SIGILL` code `ILL_PRVREG`: privileged register.
pub const ILL_PRVREG: i32 = 6;
/// `SIGILL` code `ILL_COPROC`: coprocessor error.
pub const ILL_COPROC: i32 = 7;
/// `SIGILL` code `ILL_BADSTK`: internal stack error.
pub const ILL_BADSTK: i32 = 8;
/// `SIGILL` code `ILL_BADIADDR`: unimplemented instruction address.
pub const ILL_BADIADDR: i32 = 9;

/// `SIGFPE` code `FPE_INTDIV`: integer divide by zero (`#DE`).
pub const FPE_INTDIV: i32 = 1;
/// `SIGFPE` code `FPE_INTOVF`: integer overflow.
pub const FPE_INTOVF: i32 = 2;
/// `SIGFPE` code `FPE_FLTDIV`: floating-point divide by zero.
pub const FPE_FLTDIV: i32 = 3;
/// `SIGFPE` code `FPE_FLTOVF`: floating-point overflow.
pub const FPE_FLTOVF: i32 = 4;
/// `SIGFPE` code `FPE_FLTUND`: floating-point underflow.
pub const FPE_FLTUND: i32 = 5;
/// `SIGFPE` code `FPE_FLTRES`: floating-point inexact result.
pub const FPE_FLTRES: i32 = 6;
/// `SIGFPE` code `FPE_FLTINV`: invalid floating-point operation.
pub const FPE_FLTINV: i32 = 7;
/// `SIGFPE` code `FPE_FLTSUB`: subscript out of range.
pub const FPE_FLTSUB: i32 = 8;
/// `SIGFPE` code `FPE_FLTUNK`: undiagnosed floating-point exception.
pub const FPE_FLTUNK: i32 = 14;
/// `SIGFPE` code `FPE_CONDTRAP`: trap on condition.
pub const FPE_CONDTRAP: i32 = 15;

/// `SIGSEGV` code `SEGV_MAPERR`: no mapping at the address.
pub const SEGV_MAPERR: i32 = 1;
/// `SIGSEGV` code `SEGV_ACCERR`: the mapping forbids the access.
pub const SEGV_ACCERR: i32 = 2;
/// `SIGSEGV` code `SEGV_BNDERR`: failed address bound check (MPX).
pub const SEGV_BNDERR: i32 = 3;
/// `SIGSEGV` code `SEGV_PKUERR`: protection key forbids the access.
pub const SEGV_PKUERR: i32 = 4;
/// `SIGSEGV` code `SEGV_ACCADI`: ADI not enabled for the region (sparc).
pub const SEGV_ACCADI: i32 = 5;
/// `SIGSEGV` code `SEGV_ADIDERR`: disrupting ADI error (sparc).
pub const SEGV_ADIDERR: i32 = 6;
/// `SIGSEGV` code `SEGV_ADIPERR`: precise ADI error (sparc).
pub const SEGV_ADIPERR: i32 = 7;
/// `SIGSEGV` code `SEGV_MTEAERR`: asynchronous MTE error (arm64).
pub const SEGV_MTEAERR: i32 = 8;
/// `SIGSEGV` code `SEGV_MTESERR`: synchronous MTE error (arm64).
pub const SEGV_MTESERR: i32 = 9;

/// `SIGBUS` code `BUS_ADRALN`: invalid address alignment.
pub const BUS_ADRALN: i32 = 1;
/// `SIGBUS` code `BUS_ADRERR`: nonexistent physical address (e.g. beyond
/// the end of a mapped file).
pub const BUS_ADRERR: i32 = 2;
/// `SIGBUS` code `BUS_OBJERR`: object-specific hardware error.
pub const BUS_OBJERR: i32 = 3;
/// `SIGBUS` code `BUS_MCEERR_AR`: machine check, action required.
pub const BUS_MCEERR_AR: i32 = 4;
/// `SIGBUS` code `BUS_MCEERR_AO`: machine check, action optional.
pub const BUS_MCEERR_AO: i32 = 5;

/// `SIGTRAP` code `TRAP_BRKPT`: process breakpoint.
pub const TRAP_BRKPT: i32 = 1;
/// `SIGTRAP` code `TRAP_TRACE`: process trace trap.
pub const TRAP_TRACE: i32 = 2;
/// `SIGTRAP` code `TRAP_BRANCH`: process taken branch trap.
pub const TRAP_BRANCH: i32 = 3;
/// `SIGTRAP` code `TRAP_HWBKPT`: hardware breakpoint or watchpoint.
pub const TRAP_HWBKPT: i32 = 4;
/// `SIGTRAP` code `TRAP_UNK`: undiagnosed trap.
pub const TRAP_UNK: i32 = 5;
/// `SIGTRAP` code `TRAP_PERF`: perf event with `sigtrap=1`.
pub const TRAP_PERF: i32 = 6;

/// `SIGCHLD` code `CLD_EXITED`: the child exited.
pub const CLD_EXITED: i32 = 1;
/// `SIGCHLD` code `CLD_KILLED`: the child was killed.
pub const CLD_KILLED: i32 = 2;
/// `SIGCHLD` code `CLD_DUMPED`: the child was killed and dumped core.
pub const CLD_DUMPED: i32 = 3;
/// `SIGCHLD` code `CLD_TRAPPED`: a traced child trapped.
pub const CLD_TRAPPED: i32 = 4;
/// `SIGCHLD` code `CLD_STOPPED`: the child stopped.
pub const CLD_STOPPED: i32 = 5;
/// `SIGCHLD` code `CLD_CONTINUED`: a stopped child continued.
pub const CLD_CONTINUED: i32 = 6;

/// `SIGPOLL` code `POLL_IN`: data input available.
pub const POLL_IN: i32 = 1;
/// `SIGPOLL` code `POLL_OUT`: output buffers available.
pub const POLL_OUT: i32 = 2;
/// `SIGPOLL` code `POLL_MSG`: input message available.
pub const POLL_MSG: i32 = 3;
/// `SIGPOLL` code `POLL_ERR`: I/O error.
pub const POLL_ERR: i32 = 4;
/// `SIGPOLL` code `POLL_PRI`: high-priority input available.
pub const POLL_PRI: i32 = 5;
/// `SIGPOLL` code `POLL_HUP`: device disconnected.
pub const POLL_HUP: i32 = 6;

/// `SIGSYS` code `SYS_SECCOMP`: seccomp triggered.
pub const SYS_SECCOMP: i32 = 1;
/// `SIGSYS` code `SYS_USER_DISPATCH`: syscall user dispatch triggered.
pub const SYS_USER_DISPATCH: i32 = 2;

/// `siginfo_t` as Linux lays it out on x86_64: three `int`s, padding, and
/// the `_sifields` union at offset 16, 128 bytes in all.
///
/// The union is kept as bytes behind typed accessors named for Linux's
/// `si_*` macros, so building and reading a `SigInfo` needs no `unsafe` and
/// unused bytes are always zero. Which accessors are meaningful depends on
/// the signal and `si_code`, exactly as in C: `si_addr` for faults,
/// `si_pid`/`si_uid`/`si_status` for `SIGCHLD`, and so on.
#[doc(alias = "siginfo_t")]
#[doc(alias = "siginfo")]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SigInfo {
    /// The signal number.
    pub si_signo: i32,
    /// An errno value, usually zero.
    pub si_errno: i32,
    /// Why the signal was sent: `SI_*` or a per-signal code.
    pub si_code: i32,
    /// Implicit C padding before the 8-byte-aligned union.
    __pad: i32,
    /// `_sifields`, the per-signal union.
    sifields: [u8; SI_MAX_SIZE - 16],
    /// Gives the struct the union's 8-byte alignment.
    __align: [u64; 0],
}

impl Default for SigInfo {
    fn default() -> Self {
        Self::new(0, 0)
    }
}

/// Defines a getter and a setter for a `_sifields` member at `offset`
/// (relative to the union, which starts 16 bytes into `siginfo_t`).
macro_rules! sifields {
    ($($(#[$doc:meta])* $get:ident, $set:ident: $ty:ty = $offset:literal;)*) => {
        impl SigInfo {
            $(
                $(#[$doc])*
                pub fn $get(&self) -> $ty {
                    let mut bytes = [0; size_of::<$ty>()];
                    bytes.copy_from_slice(&self.sifields[$offset..$offset + size_of::<$ty>()]);
                    <$ty>::from_ne_bytes(bytes)
                }

                #[doc = concat!("Sets [`SigInfo::", stringify!($get), "`].")]
                pub fn $set(&mut self, value: $ty) {
                    self.sifields[$offset..$offset + size_of::<$ty>()]
                        .copy_from_slice(&value.to_ne_bytes());
                }
            )*
        }
    };
}

sifields! {
    /// `si_addr`: the faulting address (`SIGSEGV`, `SIGBUS`, `SIGILL`,
    /// `SIGFPE`, `SIGTRAP`).
    si_addr, set_si_addr: u64 = 0;
    /// `si_addr_lsb`: log2 of the poisoned extent (`BUS_MCEERR_*`).
    si_addr_lsb, set_si_addr_lsb: i16 = 8;
    /// `si_pkey`: the protection key that blocked the access
    /// (`SEGV_PKUERR`).
    si_pkey, set_si_pkey: u32 = 16;
    /// `si_pid`: the sending or the child process (`kill`, `sigqueue`,
    /// `SIGCHLD`).
    si_pid, set_si_pid: i32 = 0;
    /// `si_uid`: the real uid of the sender or child.
    si_uid, set_si_uid: u32 = 4;
    /// `si_status`: the exit status or signal (`SIGCHLD`).
    si_status, set_si_status: i32 = 8;
    /// `si_utime`: the child's user time in clock ticks (`SIGCHLD`).
    si_utime, set_si_utime: i64 = 16;
    /// `si_stime`: the child's system time in clock ticks (`SIGCHLD`).
    si_stime, set_si_stime: i64 = 24;
    /// `si_value`: the `sigval` payload (`sigqueue`, POSIX timers, mq).
    si_value, set_si_value: u64 = 8;
    /// `si_timerid`: the POSIX timer id (`SI_TIMER`); Linux's `_timer._tid`.
    si_timerid, set_si_timerid: i32 = 0;
    /// `si_overrun`: the timer overrun count (`SI_TIMER`).
    si_overrun, set_si_overrun: i32 = 4;
    /// `si_band`: the poll band event (`SIGPOLL`).
    si_band, set_si_band: i64 = 0;
    /// `si_fd`: the file descriptor (`SIGPOLL`).
    si_fd, set_si_fd: i32 = 8;
    /// `si_call_addr`: the address of the system call instruction (`SIGSYS`).
    si_call_addr, set_si_call_addr: u64 = 0;
    /// `si_syscall`: the attempted syscall number (`SIGSYS`).
    si_syscall, set_si_syscall: i32 = 8;
    /// `si_arch`: the `AUDIT_ARCH_*` of the syscall (`SIGSYS`).
    si_arch, set_si_arch: u32 = 12;
}

impl SigInfo {
    /// A `siginfo_t` for `signo` with `si_code` `code` and every other byte
    /// zero; the `set_si_*` methods fill in the per-signal fields.
    pub const fn new(signo: i32, code: i32) -> Self {
        Self { si_signo: signo, si_errno: 0, si_code: code, __pad: 0, sifields: [0; SI_MAX_SIZE - 16], __align: [] }
    }
}

/// `SIGEV_SIGNAL`: a timer expiry sends `sigev_signo` to the process.
pub const SIGEV_SIGNAL: i32 = 0;
/// `SIGEV_NONE`: a timer expiry notifies nobody (the timer is polled).
pub const SIGEV_NONE: i32 = 1;
/// `SIGEV_THREAD`: the libc runs a function in a new thread (the kernel
/// treats it as [`SIGEV_SIGNAL`]).
pub const SIGEV_THREAD: i32 = 2;
/// `SIGEV_THREAD_ID`: the signal goes to the thread `sigev_notify_thread_id`.
pub const SIGEV_THREAD_ID: i32 = 4;
/// `SIGEV_MAX_SIZE`: the size of `struct sigevent`.
pub const SIGEV_MAX_SIZE: usize = 64;

/// `struct sigevent` (`sigevent_t`), as `timer_create` reads it: the value,
/// the signal, how to notify, and the `_sigev_un` union, of which the
/// kernel reads only `_tid` (`sigev_notify_thread_id`) at its start.
#[doc(alias = "sigevent")]
#[doc(alias = "sigevent_t")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sigevent {
    /// `sigev_value`: the `sigval` delivered as `si_value`.
    pub sigev_value: u64,
    /// `sigev_signo`: the signal to send.
    pub sigev_signo: i32,
    /// `sigev_notify`: `SIGEV_*`.
    pub sigev_notify: i32,
    /// `_sigev_un._tid` (`sigev_notify_thread_id`) for [`SIGEV_THREAD_ID`].
    pub sigev_notify_thread_id: i32,
    /// The rest of the `_sigev_un` union.
    pub __pad: [i32; (SIGEV_MAX_SIZE - 20) / 4],
}

/// `FP_XSTATE_MAGIC1`: in [`FpxSwBytes::magic1`], marks an XSAVE area after
/// the legacy [`Fpstate`].
pub const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
/// `FP_XSTATE_MAGIC2`: the `u32` that ends the XSAVE area in the frame.
pub const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;

/// `UC_FP_XSTATE`: the `fpstate` pointer leads to an XSAVE area.
pub const UC_FP_XSTATE: u64 = 0x1;
/// `UC_SIGCONTEXT_SS`: the kernel saved `ss` in the sigcontext.
pub const UC_SIGCONTEXT_SS: u64 = 0x2;
/// `UC_STRICT_RESTORE_SS`: `rt_sigreturn` restores the saved `ss` as is.
pub const UC_STRICT_RESTORE_SS: u64 = 0x4;

/// `struct _fpx_sw_bytes`: the software-defined bytes at the end of the
/// FXSAVE image that describe the XSAVE area following it.
#[doc(alias = "_fpx_sw_bytes")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FpxSwBytes {
    /// [`FP_XSTATE_MAGIC1`] when an XSAVE area follows.
    pub magic1: u32,
    /// The size of the whole FPU area including [`FP_XSTATE_MAGIC2`].
    pub extended_size: u32,
    /// The XSAVE features (XCR0 bits) present in the area.
    pub xfeatures: u64,
    /// The size of the XSAVE area proper.
    pub xstate_size: u32,
    /// Reserved, zero.
    pub padding: [u32; 7],
}

/// `struct _fpstate_64`: the 512-byte FXSAVE image at the start of the
/// signal frame's FPU area.
#[doc(alias = "_fpstate_64")]
#[doc(alias = "_fpstate")]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fpstate {
    /// x87 control word.
    pub cwd: u16,
    /// x87 status word.
    pub swd: u16,
    /// Abridged x87 tag word (FXSAVE format).
    pub twd: u16,
    /// Last x87 opcode.
    pub fop: u16,
    /// Last x87 instruction pointer.
    pub rip: u64,
    /// Last x87 data pointer.
    pub rdp: u64,
    /// SSE control and status.
    pub mxcsr: u32,
    /// The MXCSR bits the CPU supports.
    pub mxcsr_mask: u32,
    /// ST0..ST7, 16 bytes each.
    pub st_space: [u32; 32],
    /// XMM0..XMM15, 16 bytes each.
    pub xmm_space: [u32; 64],
    /// Reserved by the hardware.
    pub reserved2: [u32; 12],
    /// Software-defined bytes (a union with `reserved3[12]` in C).
    pub sw_reserved: FpxSwBytes,
}

impl Default for Fpstate {
    fn default() -> Self {
        Self {
            cwd: 0,
            swd: 0,
            twd: 0,
            fop: 0,
            rip: 0,
            rdp: 0,
            mxcsr: 0,
            mxcsr_mask: 0,
            st_space: [0; 32],
            xmm_space: [0; 64],
            reserved2: [0; 12],
            sw_reserved: FpxSwBytes::default(),
        }
    }
}

/// x86_64 `struct sigcontext`: the user registers saved at signal delivery
/// and restored by `rt_sigreturn`.
#[doc(alias = "sigcontext")]
#[doc(alias = "sigcontext_64")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sigcontext {
    /// `r8`.
    pub r8: u64,
    /// `r9`.
    pub r9: u64,
    /// `r10`.
    pub r10: u64,
    /// `r11`.
    pub r11: u64,
    /// `r12`.
    pub r12: u64,
    /// `r13`.
    pub r13: u64,
    /// `r14`.
    pub r14: u64,
    /// `r15`.
    pub r15: u64,
    /// `rdi`.
    pub rdi: u64,
    /// `rsi`.
    pub rsi: u64,
    /// `rbp`.
    pub rbp: u64,
    /// `rbx`.
    pub rbx: u64,
    /// `rdx`.
    pub rdx: u64,
    /// `rax`.
    pub rax: u64,
    /// `rcx`.
    pub rcx: u64,
    /// `rsp`.
    pub rsp: u64,
    /// `rip`.
    pub rip: u64,
    /// RFLAGS.
    pub eflags: u64,
    /// `cs`.
    pub cs: u16,
    /// `gs` (not restored by `rt_sigreturn`).
    pub gs: u16,
    /// `fs` (not restored by `rt_sigreturn`).
    pub fs: u16,
    /// `ss`, valid when [`UC_SIGCONTEXT_SS`] is set (`__pad0` in old C).
    pub ss: u16,
    /// The exception error code.
    pub err: u64,
    /// The exception vector.
    pub trapno: u64,
    /// The low word of the blocked mask (legacy).
    pub oldmask: u64,
    /// The page-fault address.
    pub cr2: u64,
    /// User address of the [`Fpstate`], or zero without FPU context.
    pub fpstate: u64,
    /// Reserved, zero.
    pub reserved1: [u64; 8],
}

/// The x86_64 `struct ucontext` as the kernel builds it
/// (`include/uapi/asm-generic/ucontext.h`). Not libc's `ucontext_t`, which
/// appends FPU state and a 1024-bit mask.
#[doc(alias = "ucontext")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ucontext {
    /// `UC_*` flags.
    pub uc_flags: u64,
    /// The context to resume on return (unused by Linux, zero).
    pub uc_link: u64,
    /// The alternate stack state at delivery.
    pub uc_stack: StackT,
    /// The saved registers.
    pub uc_mcontext: Sigcontext,
    /// The signal mask to restore on `rt_sigreturn`.
    pub uc_sigmask: u64,
}

/// The 64-bit `struct rt_sigframe` (`arch/x86/include/asm/sigframe.h`): what
/// the kernel writes at the user stack pointer before entering a handler.
/// Not a uapi header, but its layout is ABI: unwinders and debuggers find
/// `uc` at `rsp + 8` in a handler.
#[doc(alias = "rt_sigframe")]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RtSigframe {
    /// The handler's return address: `sa_restorer`.
    pub pretcode: u64,
    /// The interrupted context.
    pub uc: Ucontext,
    /// The signal's information.
    pub info: SigInfo,
}

/// A signal's default disposition, from signal(7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigDefault {
    /// Terminate the process.
    Term,
    /// Terminate the process and dump core.
    Core,
    /// Ignore the signal.
    Ign,
    /// Stop the process.
    Stop,
    /// Continue the process if it is stopped.
    Cont,
}

/// The default action for `sig` (signal(7)); `None` outside 1..=[`NSIG`].
/// Real-time signals terminate.
pub const fn default_action(sig: i32) -> Option<SigDefault> {
    use SigDefault::{Cont, Core, Ign, Stop, Term};
    Some(match sig {
        SIGQUIT | SIGILL | SIGTRAP | SIGABRT | SIGBUS | SIGFPE | SIGSEGV | SIGXCPU | SIGXFSZ | SIGSYS => Core,
        SIGCHLD | SIGURG | SIGWINCH => Ign,
        SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU => Stop,
        SIGCONT => Cont,
        1..=NSIG => Term,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;
    use core::mem::offset_of;

    /// Every constant against the host's `<linux/signal.h>`, `<asm/siginfo.h>`, `<asm/ucontext.h>`, `<asm/sigcontext.h>` and the headers they include.
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/signal.h", "asm/siginfo.h", "asm/ucontext.h", "asm/sigcontext.h"];
            SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGIOT, SIGBUS, SIGFPE, SIGKILL, SIGUSR1,
            SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGSTKFLT, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN,
            SIGTTOU, SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPOLL, SIGPWR, SIGSYS,
            SIGRTMIN, SA_NOCLDSTOP, SA_NOCLDWAIT, SA_SIGINFO, SA_UNSUPPORTED, SA_EXPOSE_TAGBITS, SA_RESTORER,
            SA_ONSTACK, SA_RESTART, SA_NODEFER, SA_RESETHAND, SA_NOMASK, SA_ONESHOT, SIG_BLOCK, SIG_UNBLOCK,
            SIG_SETMASK, SS_ONSTACK, SS_DISABLE, SS_AUTODISARM, SS_FLAG_BITS, MINSIGSTKSZ, SIGSTKSZ,
            SI_MAX_SIZE, SI_USER, SI_KERNEL, SI_QUEUE, SI_TIMER, SI_MESGQ, SI_ASYNCIO, SI_SIGIO, SI_TKILL,
            SI_DETHREAD, SI_ASYNCNL, ILL_ILLOPC, ILL_ILLOPN, ILL_ILLADR, ILL_ILLTRP, ILL_PRVOPC, ILL_PRVREG,
            ILL_COPROC, ILL_BADSTK, ILL_BADIADDR, FPE_INTDIV, FPE_INTOVF, FPE_FLTDIV, FPE_FLTOVF, FPE_FLTUND,
            FPE_FLTRES, FPE_FLTINV, FPE_FLTSUB, FPE_FLTUNK, FPE_CONDTRAP, SEGV_MAPERR, SEGV_ACCERR, SEGV_BNDERR,
            SEGV_PKUERR, SEGV_ACCADI, SEGV_ADIDERR, SEGV_ADIPERR, SEGV_MTEAERR, SEGV_MTESERR, BUS_ADRALN,
            BUS_ADRERR, BUS_OBJERR, BUS_MCEERR_AR, BUS_MCEERR_AO, TRAP_BRKPT, TRAP_TRACE, TRAP_BRANCH,
            TRAP_HWBKPT, TRAP_UNK, TRAP_PERF, CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_TRAPPED, CLD_STOPPED,
            CLD_CONTINUED, POLL_IN, POLL_OUT, POLL_MSG, POLL_ERR, POLL_PRI, POLL_HUP, SYS_SECCOMP,
            SYS_USER_DISPATCH, SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID, SIGEV_MAX_SIZE, UC_FP_XSTATE, UC_SIGCONTEXT_SS, UC_STRICT_RESTORE_SS, FP_XSTATE_MAGIC1,
            FP_XSTATE_MAGIC2, SIG_DFL, SIG_IGN,
        );
        // Not SIGRTMAX or NSIG: user space sees `SIGRTMAX _NSIG` with _NSIG
        // left to the libc (the kernel's is in the non-uapi asm/signal.h);
        // the 8-byte sa_mask in the layout test below is what fixes it at 64.
    }

    #[test]
    fn layouts_match_linux_headers() {
        assert_eq!(size_of::<KernelSigaction>(), 32);
        assert_eq!(offset_of!(KernelSigaction, sa_handler), 0);
        assert_eq!(offset_of!(KernelSigaction, sa_flags), 8);
        assert_eq!(offset_of!(KernelSigaction, sa_restorer), 16);
        assert_eq!(offset_of!(KernelSigaction, sa_mask), 24);
        assert_eq!(size_of::<StackT>(), 24);
        assert_eq!(offset_of!(StackT, ss_sp), 0);
        assert_eq!(offset_of!(StackT, ss_flags), 8);
        assert_eq!(offset_of!(StackT, ss_size), 16);
        assert_eq!(size_of::<Sigcontext>(), 256);
        assert_eq!(offset_of!(Sigcontext, r8), 0);
        assert_eq!(offset_of!(Sigcontext, r9), 8);
        assert_eq!(offset_of!(Sigcontext, r10), 16);
        assert_eq!(offset_of!(Sigcontext, r11), 24);
        assert_eq!(offset_of!(Sigcontext, r12), 32);
        assert_eq!(offset_of!(Sigcontext, r13), 40);
        assert_eq!(offset_of!(Sigcontext, r14), 48);
        assert_eq!(offset_of!(Sigcontext, r15), 56);
        assert_eq!(offset_of!(Sigcontext, rdi), 64);
        assert_eq!(offset_of!(Sigcontext, rsi), 72);
        assert_eq!(offset_of!(Sigcontext, rbp), 80);
        assert_eq!(offset_of!(Sigcontext, rbx), 88);
        assert_eq!(offset_of!(Sigcontext, rdx), 96);
        assert_eq!(offset_of!(Sigcontext, rax), 104);
        assert_eq!(offset_of!(Sigcontext, rcx), 112);
        assert_eq!(offset_of!(Sigcontext, rsp), 120);
        assert_eq!(offset_of!(Sigcontext, rip), 128);
        assert_eq!(offset_of!(Sigcontext, eflags), 136);
        assert_eq!(offset_of!(Sigcontext, cs), 144);
        assert_eq!(offset_of!(Sigcontext, gs), 146);
        assert_eq!(offset_of!(Sigcontext, fs), 148);
        assert_eq!(offset_of!(Sigcontext, ss), 150);
        assert_eq!(offset_of!(Sigcontext, err), 152);
        assert_eq!(offset_of!(Sigcontext, trapno), 160);
        assert_eq!(offset_of!(Sigcontext, oldmask), 168);
        assert_eq!(offset_of!(Sigcontext, cr2), 176);
        assert_eq!(offset_of!(Sigcontext, fpstate), 184);
        assert_eq!(offset_of!(Sigcontext, reserved1), 192);
        assert_eq!(size_of::<Fpstate>(), 512);
        assert_eq!(offset_of!(Fpstate, cwd), 0);
        assert_eq!(offset_of!(Fpstate, swd), 2);
        assert_eq!(offset_of!(Fpstate, twd), 4);
        assert_eq!(offset_of!(Fpstate, fop), 6);
        assert_eq!(offset_of!(Fpstate, rip), 8);
        assert_eq!(offset_of!(Fpstate, rdp), 16);
        assert_eq!(offset_of!(Fpstate, mxcsr), 24);
        assert_eq!(offset_of!(Fpstate, mxcsr_mask), 28);
        assert_eq!(offset_of!(Fpstate, st_space), 32);
        assert_eq!(offset_of!(Fpstate, xmm_space), 160);
        assert_eq!(offset_of!(Fpstate, reserved2), 416);
        assert_eq!(offset_of!(Fpstate, sw_reserved), 464);
        assert_eq!(size_of::<FpxSwBytes>(), 48);
        assert_eq!(offset_of!(FpxSwBytes, magic1), 0);
        assert_eq!(offset_of!(FpxSwBytes, extended_size), 4);
        assert_eq!(offset_of!(FpxSwBytes, xfeatures), 8);
        assert_eq!(offset_of!(FpxSwBytes, xstate_size), 16);
        assert_eq!(offset_of!(FpxSwBytes, padding), 20);
        assert_eq!(size_of::<Ucontext>(), 304);
        assert_eq!(offset_of!(Ucontext, uc_flags), 0);
        assert_eq!(offset_of!(Ucontext, uc_link), 8);
        assert_eq!(offset_of!(Ucontext, uc_stack), 16);
        assert_eq!(offset_of!(Ucontext, uc_mcontext), 40);
        assert_eq!(offset_of!(Ucontext, uc_sigmask), 296);
        assert_eq!(size_of::<Sigevent>(), 64);
        assert_eq!(offset_of!(Sigevent, sigev_value), 0);
        assert_eq!(offset_of!(Sigevent, sigev_signo), 8);
        assert_eq!(offset_of!(Sigevent, sigev_notify), 12);
        assert_eq!(offset_of!(Sigevent, sigev_notify_thread_id), 16);
        assert_eq!(size_of::<SigInfo>(), 128);
        assert_eq!(align_of::<SigInfo>(), 8);
        assert_eq!(offset_of!(SigInfo, si_signo), 0);
        assert_eq!(offset_of!(SigInfo, si_errno), 4);
        assert_eq!(offset_of!(SigInfo, si_code), 8);
    }

    /// Where a setter writes, as an offset into the whole `siginfo_t`.
    fn offset_written(set: impl FnOnce(&mut SigInfo)) -> usize {
        let mut info = SigInfo::default();
        set(&mut info);
        let first = info.sifields.iter().position(|&byte| byte != 0);
        offset_of!(SigInfo, sifields) + first.expect("the setter wrote no byte")
    }

    /// `offsetof(siginfo_t, si_*)` from the host headers.
    #[test]
    fn siginfo_accessors_use_linux_offsets() {
        assert_eq!(offset_of!(SigInfo, sifields), 16);
        assert_eq!(offset_written(|i| i.set_si_addr(0x11)), 16);
        assert_eq!(offset_written(|i| i.set_si_addr_lsb(0x11)), 24);
        assert_eq!(offset_written(|i| i.set_si_pkey(0x11)), 32);
        assert_eq!(offset_written(|i| i.set_si_pid(0x11)), 16);
        assert_eq!(offset_written(|i| i.set_si_uid(0x11)), 20);
        assert_eq!(offset_written(|i| i.set_si_status(0x11)), 24);
        assert_eq!(offset_written(|i| i.set_si_utime(0x11)), 32);
        assert_eq!(offset_written(|i| i.set_si_stime(0x11)), 40);
        assert_eq!(offset_written(|i| i.set_si_value(0x11)), 24);
        assert_eq!(offset_written(|i| i.set_si_timerid(0x11)), 16);
        assert_eq!(offset_written(|i| i.set_si_overrun(0x11)), 20);
        assert_eq!(offset_written(|i| i.set_si_band(0x11)), 16);
        assert_eq!(offset_written(|i| i.set_si_fd(0x11)), 24);
        assert_eq!(offset_written(|i| i.set_si_call_addr(0x11)), 16);
        assert_eq!(offset_written(|i| i.set_si_syscall(0x11)), 24);
        assert_eq!(offset_written(|i| i.set_si_arch(0x11)), 28);
    }

    #[test]
    fn sigsegv_info_reads_back_what_was_set() {
        let mut info = SigInfo::new(SIGSEGV, SEGV_MAPERR);
        info.set_si_addr(0xdead_beef_0000);
        assert_eq!(info.si_signo, 11);
        assert_eq!(info.si_code, 1);
        assert_eq!(info.si_addr(), 0xdead_beef_0000);
        assert_eq!(info.si_pid(), 0xbeef_0000_u32 as i32, "si_pid aliases si_addr");
    }

    #[test]
    fn sigchld_info_reads_back_what_was_set() {
        let mut info = SigInfo::new(SIGCHLD, CLD_EXITED);
        info.set_si_pid(42);
        info.set_si_uid(1000);
        info.set_si_status(3);
        info.set_si_utime(7);
        info.set_si_stime(-1);
        assert_eq!(
            (info.si_pid(), info.si_uid(), info.si_status(), info.si_utime(), info.si_stime()),
            (42, 1000, 3, 7, -1)
        );
    }

    /// `struct rt_sigframe` is kernel-internal, so these come from
    /// `arch/x86/include/asm/sigframe.h` and the sizes above, not a header
    /// on the host: `char *pretcode; struct ucontext uc; struct siginfo info;`.
    #[test]
    fn rt_sigframe_layout_matches_linux() {
        assert_eq!(offset_of!(RtSigframe, pretcode), 0);
        assert_eq!(offset_of!(RtSigframe, uc), 8);
        assert_eq!(offset_of!(RtSigframe, info), 8 + 304);
        assert_eq!(size_of::<RtSigframe>(), 8 + 304 + 128);
    }

    /// The table in signal(7).
    #[test]
    fn default_actions_follow_signal_7() {
        use SigDefault::*;
        let expected = [
            (SIGHUP, Term),
            (SIGINT, Term),
            (SIGQUIT, Core),
            (SIGILL, Core),
            (SIGTRAP, Core),
            (SIGABRT, Core),
            (SIGBUS, Core),
            (SIGFPE, Core),
            (SIGKILL, Term),
            (SIGUSR1, Term),
            (SIGSEGV, Core),
            (SIGUSR2, Term),
            (SIGPIPE, Term),
            (SIGALRM, Term),
            (SIGTERM, Term),
            (SIGSTKFLT, Term),
            (SIGCHLD, Ign),
            (SIGCONT, Cont),
            (SIGSTOP, Stop),
            (SIGTSTP, Stop),
            (SIGTTIN, Stop),
            (SIGTTOU, Stop),
            (SIGURG, Ign),
            (SIGXCPU, Core),
            (SIGXFSZ, Core),
            (SIGVTALRM, Term),
            (SIGPROF, Term),
            (SIGWINCH, Ign),
            (SIGIO, Term),
            (SIGPWR, Term),
            (SIGSYS, Core),
        ];
        for (sig, action) in expected {
            assert_eq!(default_action(sig), Some(action), "signal {sig}");
        }
        for sig in SIGRTMIN..=SIGRTMAX {
            assert_eq!(default_action(sig), Some(Term), "signal {sig}");
        }
        for sig in [0, -1, 65, i32::MAX] {
            assert_eq!(default_action(sig), None, "signal {sig}");
        }
    }
}
