//! Signals (Linux `kernel/signal.c` and `arch/x86/kernel/signal.c`,
//! `signal_64.c`): per-process handlers, per-thread blocked masks, pending
//! sets for the process and for each thread; delivery on the way back to
//! user mode, either the default action or a handler entered through an
//! `rt_sigframe` on the user stack; and `rt_sigreturn`.
//!
//! A signal sent to a process (`kill`, `SIGCHLD`, `SIGPIPE`, the OOM
//! killer) is pending for the process; one thread that does not block it
//! is woken to take it. A signal sent to a thread (`tgkill`, a fault) is
//! pending for that thread only. A thread takes its own before the
//! process's. A fatal signal ends every thread: the process's group exit
//! (see `process.rs`), as Linux's `complete_signal` does.
//!
//! Waiting for signals: `rt_sigtimedwait` dequeues a pending signal of
//! its set (blocked, as callers are expected to block them) or sleeps
//! until one comes, another unblocked signal interrupts it (EINTR) or the
//! timeout passes (EAGAIN); `rt_sigsuspend` sleeps under a temporary mask
//! that the handler's frame records as the one to restore (Linux
//! `saved_sigmask` with `TIF_RESTORE_SIGMASK`); `pause` sleeps for any
//! signal. `kill` reaches a process, the caller's or another process
//! group, or every process but init and the caller
//! ([`kill_something_info`]).
//!
//! Lock order: the handlers' lock ([`SignalState`], Linux `siglock`) ->
//! the thread list of the process -> a thread's [`ThreadSignals`] -> the
//! run-queue locks (waking). All are spin locks of process context.
//!
//! Differences: one pending instance per signal (real-time signals are not
//! queued), no stop/continue (`SIGSTOP`-class defaults are treated as
//! ignore), no alternate signal stacks (`sigaltstack` is accepted and
//! does nothing), no core dumps (a "core" default terminates with the
//! core bit clear). Blocking a signal does not hand
//! the process's pending instance to another thread
//! (`retarget_shared_pending`): the thread that unblocks it takes it.

#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::sync::Arc;
use uapi::errno::Errno;
use uapi::signal::*;

use crate::arch::x86_64::entry::TrapFrame;
use crate::arch::x86_64::gdt;
use crate::arch::x86_64::switch::FxArea;
use crate::arch::x86_64::uaccess::{self, copy_from_user, copy_to_user, read_user, write_user};
use crate::sched::{self, Task};

/// A signal's bit in a mask (signal 1 is bit 0).
pub const fn sigmask(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

/// Signals that can be neither caught nor blocked.
const UNBLOCKABLE: u64 = sigmask(SIGKILL) | sigmask(SIGSTOP);

/// A process's signal handlers and process-wide pending signals (Linux
/// `sighand_struct` and `signal->shared_pending`, both under Linux's
/// `siglock`), shared by its threads.
#[derive(Clone)]
pub struct SignalState {
    /// Handlers, indexed by signal - 1.
    pub action: [KernelSigaction; 64],
    /// Signals sent to the process, for whichever thread takes them.
    pub shared_pending: u64,
    /// Details of the pending process-wide signals.
    pub shared_info: [Option<SigInfo>; 64],
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState { action: [KernelSigaction::default(); 64], shared_pending: 0, shared_info: [None; 64] }
    }
}

impl SignalState {
    /// The child's copy at fork: handlers, nothing pending.
    pub fn fork_copy(&self) -> SignalState {
        SignalState { action: self.action, ..SignalState::default() }
    }

    /// execve: caught signals go back to their default action (Linux
    /// `flush_signal_handlers`); ignored ones stay ignored.
    pub fn exec_reset(&mut self) {
        for a in &mut self.action {
            if a.sa_handler != SIG_IGN {
                *a = KernelSigaction::default();
            }
        }
    }

    /// Whether `sig` would be discarded at once (Linux `sig_ignored`).
    fn ignores(&self, sig: i32) -> bool {
        sig != SIGKILL
            && match self.action[(sig - 1) as usize].sa_handler {
                SIG_IGN => true,
                SIG_DFL => matches!(default_action(sig), Some(SigDefault::Ign | SigDefault::Stop | SigDefault::Cont)),
                _ => false,
            }
    }

    /// Whether `sig` kills the process if delivered (Linux `sig_fatal`).
    fn fatal(&self, sig: i32) -> bool {
        sig == SIGKILL
            || self.action[(sig - 1) as usize].sa_handler == SIG_DFL
                && matches!(default_action(sig), Some(SigDefault::Term | SigDefault::Core) | None)
    }
}

/// A thread's own signal state (Linux `task->blocked` and
/// `task->pending`): signals sent to this thread only (`tgkill`, faults,
/// a group exit's `SIGKILL`) and the mask that holds back both its own
/// and the process's.
/// The details are boxed: a task's process side is built on a kernel
/// stack and moved into the task.
pub struct ThreadSignals {
    /// Blocked signals.
    pub blocked: u64,
    /// Signals pending for this thread.
    pub pending: u64,
    /// Their details.
    pub info: Box<[Option<SigInfo>; 64]>,
    /// The mask to restore after the next handler, or on the way to user
    /// mode if none runs (Linux `saved_sigmask` under
    /// `TIF_RESTORE_SIGMASK`): set by `rt_sigsuspend`.
    pub saved_sigmask: Option<u64>,
    /// While `rt_sigtimedwait` sleeps, the mask it replaced (Linux
    /// `real_blocked`): its set is unblocked meanwhile, so that a signal
    /// of the set wakes this thread, and one that would kill is taken by
    /// the wait instead; 0 otherwise.
    pub real_blocked: u64,
}

impl Default for ThreadSignals {
    fn default() -> Self {
        ThreadSignals { blocked: 0, pending: 0, info: Box::new([None; 64]), saved_sigmask: None, real_blocked: 0 }
    }
}

fn valid(sig: i32) -> bool {
    (1..=64).contains(&sig)
}

/// Who a signal is for (Linux `enum pid_type`: `PIDTYPE_TGID` or
/// `PIDTYPE_PID`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The process: any thread not blocking it takes it.
    Process,
    /// This thread only.
    Thread,
}

/// Sends `sig` to the process `task` belongs to (Linux `kill`'s
/// `group_send_sig_info`): it is pending for the process, and a thread
/// that does not block it is woken to take it, `task` if it can. A fatal
/// signal (`SIGKILL`, or one whose default action kills and which has no
/// handler) begins the process's group exit at once: every thread gets
/// `SIGKILL` (Linux `complete_signal`). `info` defaults to a kernel-sent
/// siginfo. Returns false if the signal was dropped because it is
/// ignored; a signal `task` blocks is never ignored, as its handler may
/// change before it is unblocked (Linux `sig_ignored`).
pub fn send_signal(task: &Arc<Task>, sig: i32, info: Option<SigInfo>) -> bool {
    send_signal_scoped(task, sig, info, Scope::Process)
}

/// Sends `sig` to the thread `task` alone (Linux `tgkill`'s
/// `do_send_specific`); a fatal one still ends the whole process.
pub fn send_signal_thread(task: &Arc<Task>, sig: i32, info: Option<SigInfo>) -> bool {
    send_signal_scoped(task, sig, info, Scope::Thread)
}

fn send_signal_scoped(task: &Arc<Task>, sig: i32, info: Option<SigInfo>, scope: Scope) -> bool {
    if !valid(sig) {
        return false;
    }
    let info = info.unwrap_or_else(|| SigInfo::new(sig, SI_KERNEL));
    let i = (sig - 1) as usize;
    let mut s = task.proc.signal.lock();
    if s.ignores(sig) && {
        let t = task.proc.sigpending.lock();
        (t.blocked | t.real_blocked) & sigmask(sig) == 0
    } {
        return false;
    }
    if scope == Scope::Process {
        s.shared_pending |= sigmask(sig);
        s.shared_info[i] = Some(info);
    } else {
        let mut t = task.proc.sigpending.lock();
        t.pending |= sigmask(sig);
        t.info[i] = Some(info);
    }
    let group = &task.proc.group;
    let wants = |t: &Task| sig == SIGKILL || t.proc.sigpending.lock().blocked & sigmask(sig) == 0;
    let threads = group.threads.lock();
    // A process's signal goes to a live thread: the one named if it is
    // one and takes it, else the first that takes it. A task on no
    // thread list (a kernel thread) takes its own.
    let named_live = threads.is_empty() || threads.iter().any(|t| Arc::ptr_eq(t, task));
    let chosen = if named_live && wants(task) {
        Some(task)
    } else if scope == Scope::Process {
        threads.iter().find(|t| wants(t))
    } else {
        None
    };
    let Some(chosen) = chosen else { return true };
    let waited_for = chosen.proc.sigpending.lock().real_blocked & sigmask(sig) != 0;
    if s.fatal(sig) && !waited_for && !group.group_exiting() && !threads.is_empty() {
        drop(threads);
        drop(s);
        group.start_group_exit(uapi::wait::w_termsig(sig, false) as u32, None);
        return true;
    }
    crate::sched::wait::signal_wake_up(chosen);
    true
}

/// Makes `SIGKILL` pending for the thread `task` and wakes it (a group
/// exit's `zap_other_threads`).
pub fn send_sigkill_thread(task: &Arc<Task>) {
    {
        let mut t = task.proc.sigpending.lock();
        t.pending |= sigmask(SIGKILL);
        t.info[(SIGKILL - 1) as usize] = Some(SigInfo::new(SIGKILL, SI_KERNEL));
    }
    crate::sched::wait::signal_wake_up(task);
}

/// Whether `task` is being killed: `SIGKILL` is pending for it (Linux
/// `fatal_signal_pending`; a process's `SIGKILL` reaches each thread's
/// own set).
pub fn fatal_signal_pending(task: &Task) -> bool {
    task.proc.sigpending.lock().pending & sigmask(SIGKILL) != 0
}

/// Whether `task` has a deliverable (pending, unblocked) signal, its own
/// or its process's.
pub fn signal_pending(task: &Task) -> bool {
    let s = task.proc.signal.lock();
    let t = task.proc.sigpending.lock();
    (t.pending | s.shared_pending) & !(t.blocked & !UNBLOCKABLE) != 0
}

/// Sends a synchronous fault signal to the running task with the fault
/// address (Linux `force_sig_fault`): the handler is reset to default if
/// the signal is blocked or ignored, so the process cannot loop on it.
pub fn force_sig_fault(sig: i32, code: i32, addr: u64) {
    let me = sched::current();
    {
        let mut s = me.proc.signal.lock();
        let mut t = me.proc.sigpending.lock();
        let i = (sig - 1) as usize;
        if t.blocked & sigmask(sig) != 0 || s.action[i].sa_handler == SIG_IGN {
            s.action[i] = KernelSigaction::default();
            t.blocked &= !sigmask(sig);
        }
    }
    let mut info = SigInfo::new(sig, code);
    info.set_si_addr(addr);
    send_signal_thread(&me, sig, Some(info));
}

/// rt_sigaction (Linux `do_sigaction`).
pub fn do_sigaction(sig: i32, act: Option<KernelSigaction>) -> Result<KernelSigaction, Errno> {
    if !valid(sig) || (act.is_some() && (sig == SIGKILL || sig == SIGSTOP)) {
        return Err(Errno::EINVAL);
    }
    let me = sched::current();
    let mut s = me.proc.signal.lock();
    let old = s.action[(sig - 1) as usize];
    if let Some(mut a) = act {
        a.sa_mask &= !UNBLOCKABLE;
        s.action[(sig - 1) as usize] = a;
        // Setting SIG_IGN discards a pending instance, the process's
        // and every thread's (POSIX; Linux `flush_sigqueue_mask`).
        if a.sa_handler == SIG_IGN {
            s.shared_pending &= !sigmask(sig);
            for t in me.proc.group.threads.lock().iter() {
                t.proc.sigpending.lock().pending &= !sigmask(sig);
            }
        }
    }
    Ok(old)
}

/// rt_sigprocmask (Linux `sigprocmask`).
pub fn do_sigprocmask(how: i32, set: Option<u64>) -> Result<u64, Errno> {
    let me = sched::current();
    let mut t = me.proc.sigpending.lock();
    let old = t.blocked;
    if let Some(set) = set {
        t.blocked = match how {
            SIG_BLOCK => old | set,
            SIG_UNBLOCK => old & !set,
            SIG_SETMASK => set,
            _ => return Err(Errno::EINVAL),
        } & !UNBLOCKABLE;
    }
    Ok(old)
}

/// What to do for the next deliverable signal.
enum Action {
    Terminate(i32),
    Handle(i32, KernelSigaction, SigInfo),
}

/// Synchronous fault signals first, then the lowest number (Linux
/// `next_signal`).
fn next_signal(ready: u64) -> i32 {
    let sync = ready & (sigmask(SIGSEGV) | sigmask(SIGBUS) | sigmask(SIGILL) | sigmask(SIGFPE) | sigmask(SIGTRAP));
    let pick = if sync != 0 { sync } else { ready };
    pick.trailing_zeros() as i32 + 1
}

/// Takes the next pending signal of `allowed`, the thread's own before
/// the process's (Linux `__dequeue_signal` over `task->pending`, then
/// `signal->shared_pending`).
fn take_signal(s: &mut SignalState, t: &mut ThreadSignals, allowed: u64) -> Option<(i32, SigInfo)> {
    let (sig, info) = if t.pending & allowed != 0 {
        let sig = next_signal(t.pending & allowed);
        t.pending &= !sigmask(sig);
        (sig, t.info[(sig - 1) as usize].take())
    } else if s.shared_pending & allowed != 0 {
        let sig = next_signal(s.shared_pending & allowed);
        s.shared_pending &= !sigmask(sig);
        (sig, s.shared_info[(sig - 1) as usize].take())
    } else {
        return None;
    };
    Some((sig, info.unwrap_or_else(|| SigInfo::new(sig, SI_KERNEL))))
}

/// Dequeues the next pending signal of `allowed` for the running `task`
/// (Linux `dequeue_signal`), then lets the timers see it (a periodic
/// timer restarts at its signal, [`crate::time::signal_dequeued`]) with
/// the signal locks released.
pub fn dequeue_signal(task: &Arc<Task>, allowed: u64) -> Option<(i32, SigInfo)> {
    let taken = {
        let mut s = task.proc.signal.lock();
        let mut t = task.proc.sigpending.lock();
        take_signal(&mut s, &mut t, allowed)
    };
    let (sig, mut info) = taken?;
    crate::time::signal_dequeued(task, sig, &mut info);
    Some((sig, info))
}

/// The next deliverable signal and what to do with it.
fn dequeue(task: &Arc<Task>) -> Option<Action> {
    let allowed = !(task.proc.sigpending.lock().blocked & !UNBLOCKABLE);
    let (sig, info) = dequeue_signal(task, allowed)?;
    let i = (sig - 1) as usize;
    let mut s = task.proc.signal.lock();
    let act = s.action[i];
    match act.sa_handler {
        SIG_IGN => Some(Action::Handle(0, act, info)),
        SIG_DFL => match default_action(sig) {
            Some(SigDefault::Term | SigDefault::Core) | None => Some(Action::Terminate(sig)),
            _ => Some(Action::Handle(0, act, info)),
        },
        _ => {
            if act.sa_flags & SA_RESETHAND != 0 {
                s.action[i] = KernelSigaction::default();
            }
            Some(Action::Handle(sig, act, info))
        }
    }
}

/// Delivers pending signals before returning to user mode (Linux
/// `arch_do_signal_or_restart`).
pub fn do_signal(frame: &mut TrapFrame) {
    let me = sched::current();
    while let Some(action) = dequeue(&me) {
        match action {
            Action::Terminate(sig) => {
                if sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE {
                    log::info!("{}[{}]: killed by signal {sig} at rip {:#x}", me.comm(), me.pid, frame.rip);
                }
                drop(me);
                crate::process::do_group_exit(uapi::wait::w_termsig(sig, false) as u32);
            }
            Action::Handle(0, _, _) => continue,
            Action::Handle(sig, act, info) => {
                if setup_rt_frame(&me, frame, sig, &act, &info).is_err() {
                    // Linux `force_sigsegv`: a frame that cannot be written kills.
                    log::info!("{}[{}]: cannot build a signal frame for signal {sig}; killed", me.comm(), me.pid);
                    drop(me);
                    crate::process::do_group_exit(uapi::wait::w_termsig(SIGSEGV, false) as u32);
                }
                return;
            }
        }
    }
    // No handler will restore it: the mask `rt_sigsuspend` replaced comes
    // back now (Linux `restore_saved_sigmask`).
    let mut t = me.proc.sigpending.lock();
    if let Some(mask) = t.saved_sigmask.take() {
        t.blocked = mask;
    }
}

/// Builds the `rt_sigframe` on the user stack and points the frame at the
/// handler (Linux `setup_rt_frame` / `x64_setup_rt_frame`).
fn setup_rt_frame(
    me: &Task,
    frame: &mut TrapFrame,
    sig: i32,
    act: &KernelSigaction,
    info: &SigInfo,
) -> Result<(), uaccess::Efault> {
    // Below the red zone: the FPU state (64-byte aligned), then the frame,
    // placed so the handler starts with rsp + 8 16-byte aligned.
    // The user's rsp can be anything: the arithmetic wraps, and a frame
    // that lands outside user space fails its copy (EFAULT, then SIGSEGV).
    let mut sp = frame.rsp.wrapping_sub(128);
    sp = sp.wrapping_sub(size_of::<FxArea>() as u64) & !63;
    let fpstate = sp;
    sp = sp.wrapping_sub(size_of::<RtSigframe>() as u64);
    sp = (sp.wrapping_add(8) & !15).wrapping_sub(8);
    let mut fx = FxArea::initial();
    crate::arch::x86_64::switch::fxsave(&mut fx);
    copy_to_user(fpstate, &fx.0)?;
    // The mask to restore at `rt_sigreturn`: the one `rt_sigsuspend`
    // replaced, if any (Linux `sigmask_to_save`).
    let blocked = {
        let t = me.proc.sigpending.lock();
        t.saved_sigmask.unwrap_or(t.blocked)
    };
    let mc = Sigcontext {
        r8: frame.r8,
        r9: frame.r9,
        r10: frame.r10,
        r11: frame.r11,
        r12: frame.r12,
        r13: frame.r13,
        r14: frame.r14,
        r15: frame.r15,
        rdi: frame.rdi,
        rsi: frame.rsi,
        rbp: frame.rbp,
        rbx: frame.rbx,
        rdx: frame.rdx,
        rax: frame.rax,
        rcx: frame.rcx,
        rsp: frame.rsp,
        rip: frame.rip,
        eflags: frame.rflags,
        cs: frame.cs as u16,
        ss: frame.ss as u16,
        err: frame.error_code,
        trapno: frame.vector,
        oldmask: blocked,
        cr2: info.si_addr(),
        fpstate,
        ..Sigcontext::default()
    };
    let rt = RtSigframe {
        pretcode: act.sa_restorer,
        uc: Ucontext {
            uc_flags: UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS,
            uc_mcontext: mc,
            uc_sigmask: blocked,
            ..Ucontext::default()
        },
        info: *info,
    };
    if act.sa_flags & SA_RESTORER == 0 {
        // Without a restorer the handler could not return (x86_64 has no
        // vdso trampoline here); Linux refuses such a frame too.
        return Err(uaccess::Efault);
    }
    write_user(sp, &rt)?;
    {
        let mut t = me.proc.sigpending.lock();
        t.blocked |= act.sa_mask;
        if act.sa_flags & SA_NODEFER == 0 {
            t.blocked |= sigmask(sig);
        }
        t.blocked &= !UNBLOCKABLE;
        t.saved_sigmask = None;
    }
    frame.rdi = sig as u64;
    frame.rsi = sp + core::mem::offset_of!(RtSigframe, info) as u64;
    frame.rdx = sp + core::mem::offset_of!(RtSigframe, uc) as u64;
    frame.rax = 0;
    frame.rip = act.sa_handler;
    frame.rsp = sp;
    frame.cs = u64::from(gdt::USER_CS);
    frame.ss = u64::from(gdt::USER_DS);
    frame.rflags &= !(1 << 8 | 1 << 10 | 1 << 18); // TF, DF, AC
    Ok(())
}

/// rt_sigreturn: restores the registers, mask and FPU state saved by
/// [`setup_rt_frame`] (Linux `sys_rt_sigreturn`). The frame is at rsp - 8
/// (the handler's `ret` popped `pretcode`).
pub fn sys_rt_sigreturn(frame: &mut TrapFrame) -> Result<u64, Errno> {
    let me = sched::current();
    let at = frame.rsp.wrapping_sub(8);
    let rt: RtSigframe = read_user(at).map_err(|_| Errno::EFAULT)?;
    let mc = rt.uc.uc_mcontext;
    frame.r8 = mc.r8;
    frame.r9 = mc.r9;
    frame.r10 = mc.r10;
    frame.r11 = mc.r11;
    frame.r12 = mc.r12;
    frame.r13 = mc.r13;
    frame.r14 = mc.r14;
    frame.r15 = mc.r15;
    frame.rdi = mc.rdi;
    frame.rsi = mc.rsi;
    frame.rbp = mc.rbp;
    frame.rbx = mc.rbx;
    frame.rdx = mc.rdx;
    frame.rcx = mc.rcx;
    frame.rsp = mc.rsp;
    frame.rip = mc.rip;
    // User-changeable flags only (Linux FIX_EFLAGS); IF stays on.
    const FIX_EFLAGS: u64 = 0x0004_0dd5;
    frame.rflags = (frame.rflags & !FIX_EFLAGS) | (mc.eflags & FIX_EFLAGS) | 0x200;
    frame.cs = u64::from(gdt::USER_CS);
    frame.ss = u64::from(gdt::USER_DS);
    me.proc.sigpending.lock().blocked = rt.uc.uc_sigmask & !UNBLOCKABLE;
    if mc.fpstate != 0 {
        let mut fx = FxArea::initial();
        copy_from_user(&mut fx.0, mc.fpstate).map_err(|_| Errno::EFAULT)?;
        // Reserved MXCSR bits would make FXRSTOR fault in the kernel.
        let mxcsr = u32::from_le_bytes([fx.0[24], fx.0[25], fx.0[26], fx.0[27]]) & 0xffff;
        fx.0[24..28].copy_from_slice(&mxcsr.to_le_bytes());
        crate::arch::x86_64::switch::fxrstor(&fx);
    }
    Ok(mc.rax)
}

/// Linux `kill_ok_by_cred` and `check_kill_permission`: the caller may
/// signal `target` if it is the caller, if the caller's real or effective
/// uid is the target's real or saved uid, or with `CAP_KILL`; `SIGCONT`
/// also within the caller's session.
pub fn check_kill_permission(sig: i32, target: &Task) -> Result<(), Errno> {
    let me = sched::current();
    if Arc::ptr_eq(&target.proc.group, &me.proc.group) {
        return Ok(());
    }
    let cred = *me.proc.cred.lock();
    let tcred = *target.proc.cred.lock();
    let ok = [cred.euid, cred.uid].iter().any(|&u| u == tcred.suid || u == tcred.uid)
        || cred.capable(uapi::capability::CAP_KILL)
        || (sig == SIGCONT && target.proc.group.sys.session() == me.proc.group.sys.session());
    if ok { Ok(()) } else { Err(Errno::EPERM) }
}

/// Linux `group_send_sig_info` from `kill`: the permission check, then,
/// unless `sig` is 0 (a probe) or the target has exited, the signal.
fn group_send_sig_info(sig: i32, info: &SigInfo, target: &Arc<Task>) -> Result<(), Errno> {
    check_kill_permission(sig, target)?;
    if sig != 0 && !target.proc.group.zombie.load(core::sync::atomic::Ordering::Acquire) {
        send_signal(target, sig, Some(*info));
    }
    Ok(())
}

/// Linux `kill` (`kill_something_info`): `pid` > 0 is that process, 0
/// the caller's process group, -1 every process but init (pid 1) and the
/// caller (success if any was found and no error but EPERM happened),
/// below -1 the process group `-pid`; a group succeeds if any member was
/// signalled. ESRCH when nothing matched. The siginfo says `SI_USER`
/// with the caller's pid and real uid.
pub fn kill_something_info(pid: i32, sig: i32) -> Result<u64, Errno> {
    if !(0..=NSIG).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let me = sched::current();
    let mut info = SigInfo::new(sig, SI_USER);
    info.set_si_pid(me.proc.tgid() as i32);
    info.set_si_uid(me.proc.cred.lock().uid.0);
    if pid > 0 {
        let target = sched::find_task_by_pid(pid as u32)
            .filter(|t| t.proc.group.sys.session() != 0 || Arc::ptr_eq(&t.proc.group, &me.proc.group))
            .ok_or(Errno::ESRCH)?;
        return group_send_sig_info(sig, &info, &target).map(|()| 0);
    }
    if pid == i32::MIN {
        return Err(Errno::ESRCH);
    }
    let mut targets = alloc::vec::Vec::new();
    let pgrp = if pid == 0 { me.proc.group.sys.pgrp() } else { pid.unsigned_abs() };
    crate::sys::for_each_process(|t| {
        let chosen =
            if pid == -1 { t.pid > 1 && t.proc.tgid() != me.proc.tgid() } else { t.proc.group.sys.pgrp() == pgrp };
        if chosen {
            targets.push(t.clone());
        }
    });
    if targets.is_empty() {
        return Err(Errno::ESRCH);
    }
    if pid == -1 {
        let mut result = Ok(0);
        for t in &targets {
            if let Err(e) = group_send_sig_info(sig, &info, t)
                && e != Errno::EPERM
            {
                result = Err(e);
            }
        }
        return result;
    }
    let mut last = Err(Errno::ESRCH);
    let mut success = false;
    for t in &targets {
        last = group_send_sig_info(sig, &info, t);
        success |= last.is_ok();
    }
    if success { Ok(0) } else { last.map(|()| 0) }
}

/// Linux `rt_sigpending`: the blocked signals that are pending, the
/// first `size` bytes of them (EINVAL above 8).
pub fn sys_rt_sigpending(set: u64, size: u64) -> Result<u64, Errno> {
    if size > 8 {
        return Err(Errno::EINVAL);
    }
    let pending = {
        let me = sched::current();
        let s = me.proc.signal.lock();
        let t = me.proc.sigpending.lock();
        (t.pending | s.shared_pending) & t.blocked
    };
    copy_to_user(set, &pending.to_ne_bytes()[..size as usize]).map_err(|_| Errno::EFAULT)?;
    Ok(0)
}

/// Linux `rt_sigtimedwait` (`sigwaitinfo`, `sigtimedwait`, `sigwait`):
/// takes a pending signal of the set (`SIGKILL` and `SIGSTOP` cannot be
/// waited for) and returns its number with its siginfo at `uinfo` (if
/// given); else sleeps until one comes (EINTR if another signal is
/// delivered first) or the timeout passes (EAGAIN; a zero timeout only
/// polls). The set's signals are expected to be blocked by the caller;
/// they are unblocked while it sleeps, as Linux does.
pub fn sys_rt_sigtimedwait(uthese: u64, uinfo: u64, uts: u64, size: u64) -> Result<u64, Errno> {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let these: u64 = read_user(uthese).map_err(|_| Errno::EFAULT)?;
    let timeout = if uts != 0 {
        let ts: uapi::time::Timespec = read_user(uts).map_err(|_| Errno::EFAULT)?;
        Some(crate::time::timespec_to_ns(&ts).ok_or(Errno::EINVAL)?)
    } else {
        None
    };
    let set = these & !UNBLOCKABLE;
    let me = sched::current();
    let deadline = timeout.map_or(u64::MAX, |ns| crate::time::now().saturating_add(ns));
    loop {
        if let Some((sig, info)) = dequeue_signal(&me, set) {
            if uinfo != 0 {
                write_user(uinfo, &info).map_err(|_| Errno::EFAULT)?;
            }
            return Ok(sig as u64);
        }
        if signal_pending(&me) {
            return Err(Errno::EINTR);
        }
        if crate::time::now() >= deadline {
            return Err(Errno::EAGAIN);
        }
        // Linux's `real_blocked`: the set is unblocked while the thread
        // sleeps, so that a signal of it sent to the process or the
        // thread picks this thread and wakes it.
        let real_blocked = {
            let mut t = me.proc.sigpending.lock();
            let old = t.blocked;
            t.real_blocked = old;
            t.blocked &= !set;
            old
        };
        crate::sched::wait::sleep_until_ns(deadline, || {
            let s = me.proc.signal.lock();
            let t = me.proc.sigpending.lock();
            (t.pending | s.shared_pending) & (set | !(real_blocked & !UNBLOCKABLE)) != 0
        });
        let mut t = me.proc.sigpending.lock();
        t.blocked = real_blocked;
        t.real_blocked = 0;
    }
}

/// Linux `rt_sigsuspend`: sleeps with the mask replaced by the given one
/// until a signal is to be delivered, then returns EINTR; the mask comes
/// back when the handler returns (or at once if no handler runs).
pub fn sys_rt_sigsuspend(unewset: u64, size: u64) -> Result<u64, Errno> {
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let newset: u64 = read_user(unewset).map_err(|_| Errno::EFAULT)?;
    let me = sched::current();
    {
        let mut t = me.proc.sigpending.lock();
        t.saved_sigmask = Some(t.blocked);
        t.blocked = newset & !UNBLOCKABLE;
    }
    while !signal_pending(&me) {
        crate::sched::wait::sleep_until_ns(u64::MAX, || signal_pending(&me));
    }
    Err(Errno::EINTR)
}

/// Linux `pause`: sleeps until a signal is to be delivered; EINTR.
pub fn sys_pause() -> Result<u64, Errno> {
    let me = sched::current();
    while !signal_pending(&me) {
        crate::sched::wait::sleep_until_ns(u64::MAX, || signal_pending(&me));
    }
    Err(Errno::EINTR)
}
