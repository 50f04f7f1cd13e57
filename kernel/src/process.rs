//! Processes: the process side of a task (Linux `task_struct`'s family,
//! exit, files, signal and address-space fields), fork (`kernel/fork.c`),
//! exit and wait (`kernel/exit.c`).
//!
//! A process is one task (no threads: `clone` with `CLONE_VM` is accepted
//! only together with `CLONE_VFORK`, whose parent sleeps). Its address
//! space is shared only by a vfork child until that child execs or exits.
//!
//! Exit: the task drops its files and address space (switching to the
//! kernel's page tables first), hands its children to nobody (an orphan is
//! reaped by its own exit; Linux reparents to init), becomes a zombie with
//! its wait status and wakes its parent's `wait4`. The parent reaps it,
//! waiting until the child is switched out for good before dropping it,
//! which frees its kernel stack and its entry on the task list
//! ([`sched::release_dead_tasks`]). A task whose last reference goes
//! elsewhere (an orphan, a kernel thread: at the switch away from it,
//! interrupts off) has its stack freed at the next schedule point.
//!
//! Credentials and resource limits are copied at fork and kept at exec
//! (see [`crate::cred`] and [`crate::resource`]).
//!
//! Lock order: `children` -> a child's locks; the address space's mmap
//! lock (sleeping) -> `rlim` -> `cred`; `files` -> an open file's offset
//! lock. `rlim` is a sleeping [`Mutex`]: limits are copied into the
//! address space under the mmap lock. The other locks of a process are
//! [`SpinLock`]s: process context only (system calls, exceptions), never
//! interrupt handlers, never held across a sleep; what grows under one
//! allocates with `GFP_ATOMIC`. The capture buffer is a sleeping mutex
//! too (it grows with a program's output).

use alloc::boxed::Box;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use uapi::errno::Errno;

use crate::cred::Cred;
use crate::fs::file::{Capture, FdTable};
use crate::mmap::MmRef;
use crate::resource::Rlimits;
use crate::sched::wait::WaitQueue;
use crate::sched::{self, Task};
use crate::signal::SignalState;
use crate::sync::{Mutex, SpinLock};

/// The process side of a task.
pub struct Process {
    /// The parent, if any.
    pub parent: SpinLock<Weak<Task>>,
    /// Children not yet reaped.
    pub children: SpinLock<Vec<Arc<Task>>>,
    /// Set when the task has exited and waits to be reaped (`EXIT_ZOMBIE`).
    pub zombie: AtomicBool,
    /// Wait status for the parent (Linux `exit_code`, encoded as wait4
    /// reports it).
    pub exit_status: AtomicU32,
    /// Where this task sleeps in wait4 (woken when a child exits).
    pub child_exit: WaitQueue,
    /// The address space (none for kernel threads).
    pub mm: SpinLock<Option<MmRef>>,
    /// Open files.
    pub files: SpinLock<FdTable>,
    /// Working directory and umask (Linux `task->fs`).
    pub fs: SpinLock<crate::fs::fs_struct::FsStruct>,
    /// Signal handlers, mask and pending signals.
    pub signal: SpinLock<SignalState>,
    /// Where console output is also copied (inherited by children).
    pub capture: SpinLock<Option<Capture>>,
    /// Set by a vfork child when it execs or exits; its parent waits for it.
    pub vfork_done: SpinLock<Option<Arc<Completion>>>,
    /// `set_tid_address` / `CLONE_CHILD_CLEARTID` pointer: at exit, while
    /// another task still uses the address space (a vfork parent), 0 is
    /// stored there (Linux also futex-wakes it; we have no futexes).
    pub clear_child_tid: AtomicU64,
    /// `CLONE_CHILD_SETTID` pointer: the child stores its pid there before
    /// it first returns to user mode (Linux `schedule_tail`).
    pub set_child_tid: AtomicU64,
    /// The signal the parent gets at exit (`SIGCHLD` for fork and vfork,
    /// clone's `CSIGNAL` bits; 0 for none).
    pub exit_signal: AtomicU32,
    /// Resource limits (Linux `signal->rlim`).
    pub rlim: Mutex<Rlimits>,
    /// User and group ids and capabilities (Linux `task->cred`).
    pub cred: SpinLock<Cred>,
    /// `oom_score_adj` and whether the OOM killer chose it (Linux
    /// `signal->oom_score_adj`, `oom_score_adj_min`, `oom_mm`).
    pub oom: crate::oom_kill::TaskOom,
    /// Process group, session, timers and children's usage: process-wide,
    /// Linux `signal_struct`'s `pids[PIDTYPE_PGID/SID]`, `leader`,
    /// `real_timer`, `it[]`, `posix_timers`, `cutime`..., `maxrss`.
    pub sys: crate::sys::ProcSys,
}

/// A one-shot event (Linux `struct completion`).
pub struct Completion {
    done: AtomicBool,
    wq: WaitQueue,
}

impl Default for Completion {
    fn default() -> Self {
        Self::new()
    }
}

impl Completion {
    /// Not yet done.
    pub const fn new() -> Self {
        Completion { done: AtomicBool::new(false), wq: WaitQueue::new() }
    }

    /// Marks it done and wakes the waiter (Linux `complete`).
    pub fn complete(&self) {
        self.done.store(true, Ordering::Release);
        self.wq.wake_up_all();
    }

    /// Sleeps until done (Linux `wait_for_completion`).
    #[track_caller]
    pub fn wait(&self) {
        self.wq.wait_event(|| self.done.load(Ordering::Acquire));
    }
}

impl Default for Process {
    fn default() -> Self {
        Self::new()
    }
}

impl Process {
    /// A process with no family, files or address space.
    pub fn new() -> Self {
        Process {
            parent: SpinLock::new(Weak::new()),
            children: SpinLock::new(Vec::new()),
            zombie: AtomicBool::new(false),
            exit_status: AtomicU32::new(0),
            child_exit: WaitQueue::new(),
            mm: SpinLock::new(None),
            files: SpinLock::new(FdTable::default()),
            fs: SpinLock::new(crate::fs::fs_struct::FsStruct::default()),
            signal: SpinLock::new(SignalState::default()),
            capture: SpinLock::new(None),
            vfork_done: SpinLock::new(None),
            clear_child_tid: AtomicU64::new(0),
            set_child_tid: AtomicU64::new(0),
            exit_signal: AtomicU32::new(uapi::signal::SIGCHLD as u32),
            rlim: Mutex::new(Rlimits::init()),
            cred: SpinLock::new(Cred::root()),
            oom: crate::oom_kill::TaskOom::new(),
            sys: crate::sys::ProcSys::default(),
        }
    }

    /// A kernel thread is ending: mark it reaped-by-nobody and wake anyone
    /// waiting for it.
    pub fn exit_notify_kthread(&self) {
        self.zombie.store(true, Ordering::Release);
        self.child_exit.wake_up_all();
    }

    /// The address space, if any.
    pub fn mm(&self) -> Option<MmRef> {
        self.mm.lock().clone()
    }
}

/// Puts `mm` (or the kernel's tables) on the running task and this CPU.
pub fn activate_mm(task: &Task, mm: Option<&MmRef>) {
    let root = mm.map_or(0, |m| m.pgd_root().as_u64());
    x86_64::instructions::interrupts::without_interrupts(|| {
        task.cr3.store(root, Ordering::Release);
        crate::arch::x86_64::pgtable::switch_mm(root);
    });
}

/// Replaces the running task's address space; the old one is dropped
/// after the switch (Linux `exec_mmap` / `exit_mm`).
pub fn replace_mm(task: &Task, new: Option<MmRef>) {
    activate_mm(task, new.as_ref());
    let old = core::mem::replace(&mut *task.proc.mm.lock(), new);
    release_mm(old);
}

/// Drops a reference to an address space; the last one tears it down.
fn release_mm(mm: Option<MmRef>) {
    if let Some(mm) = mm
        && let Ok(inner) = Arc::try_unwrap(mm)
    {
        let mut mm = inner.into_inner();
        mm.exit_mmap();
        drop(mm);
    }
}

/// Which clone semantics (Linux `kernel_clone_args` flags we honour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloneKind {
    /// fork: copy the address space.
    Fork,
    /// vfork: share it, parent sleeps until the child execs or exits.
    Vfork,
}

/// What a new child gets (Linux `struct kernel_clone_args`, the part we
/// support: no threads, no namespaces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloneArgs {
    /// Copy or share the address space.
    pub kind: CloneKind,
    /// The child's user stack pointer; 0 keeps the parent's.
    pub stack: u64,
    /// `CLONE_SETTLS`: the child's FS base.
    pub tls: Option<u64>,
    /// `CLONE_PARENT_SETTID`: where the parent gets the child's pid.
    pub parent_tid: u64,
    /// `CLONE_CHILD_SETTID`: where the child stores its pid.
    pub child_tid: u64,
    /// `CLONE_CHILD_CLEARTID`: where the child stores 0 at exit.
    pub clear_child_tid: u64,
    /// Signal to the parent at exit.
    pub exit_signal: u32,
}

impl CloneArgs {
    /// Plain fork (or vfork): `SIGCHLD` at exit, nothing else.
    pub const fn new(kind: CloneKind) -> Self {
        CloneArgs {
            kind,
            stack: 0,
            tls: None,
            parent_tid: 0,
            child_tid: 0,
            clear_child_tid: 0,
            exit_signal: uapi::signal::SIGCHLD as u32,
        }
    }
}

/// Creates a child of the running user task (Linux `kernel_clone`):
/// copies the trap frame (the child returns 0), files, signal handlers,
/// TLS, FPU state and, for fork, the address space with copy-on-write.
pub fn do_fork(frame: &crate::arch::x86_64::entry::TrapFrame, args: &CloneArgs) -> Result<Arc<Task>, Errno> {
    let kind = args.kind;
    let parent = sched::current();
    let mut child_frame = frame.clone();
    child_frame.rax = 0;
    if args.stack != 0 {
        child_frame.rsp = args.stack;
    }
    // The address space first, the task second (Linux `copy_process`'s
    // order): a task, once allocated, is counted on its run queue.
    let parent_mm = parent.proc.mm().ok_or(Errno::EINVAL)?;
    let child_mm = match kind {
        CloneKind::Vfork => parent_mm.clone(),
        CloneKind::Fork => {
            let new = crate::mmap::mm_alloc()?;
            {
                // Linux `dup_mmap` holds both for writing: no fault may
                // change the parent's ptes or page references mid-copy.
                let mut src = parent_mm.mmap_write_lock();
                let mut dst = new.mmap_write_lock();
                if let Err(e) = src.dup_mmap(&mut dst) {
                    drop(dst);
                    drop(src);
                    release_mm(Some(new));
                    return Err(e);
                }
            }
            new
        }
    };
    let pid = sched::alloc_pid();
    let child = match sched::alloc_task(
        pid,
        parent.comm().as_str().as_bytes(),
        sched::select_task_rq(),
        &child_frame,
        0,
        0,
        false,
    ) {
        Ok(child) => child,
        Err(_) => {
            // A fork's copy goes; a vfork's shared reference just drops.
            release_mm(Some(child_mm));
            return Err(Errno::ENOMEM);
        }
    };
    child.cr3.store(child_mm.pgd_root().as_u64(), Ordering::Release);
    *child.proc.mm.lock() = Some(child_mm);
    *child.proc.files.lock() = parent.proc.files.lock().clone();
    let fs = parent.proc.fs.lock().clone();
    *child.proc.fs.lock() = fs;
    *child.proc.signal.lock() = parent.proc.signal.lock().fork_copy();
    *child.proc.capture.lock() = parent.proc.capture.lock().clone();
    *child.proc.rlim.lock() = *parent.proc.rlim.lock();
    *child.proc.cred.lock() = *parent.proc.cred.lock();
    child.proc.oom.inherit(&parent.proc.oom);
    child.proc.sys.fork_from(&parent.proc.sys);
    crate::resource::sync_mm_limits(&child.proc);
    *child.proc.parent.lock() = Arc::downgrade(&parent);
    child.fs_base.store(args.tls.unwrap_or_else(|| parent.fs_base.load(Ordering::Relaxed)), Ordering::Relaxed);
    child.proc.set_child_tid.store(args.child_tid, Ordering::Relaxed);
    child.proc.clear_child_tid.store(args.clear_child_tid, Ordering::Relaxed);
    child.proc.exit_signal.store(args.exit_signal, Ordering::Relaxed);
    child.gs_base.store(x86_64::registers::model_specific::KernelGsBase::read().as_u64(), Ordering::Relaxed);
    child.copy_fpu_from_current();
    child.user.store(true, Ordering::Release);
    let done = (kind == CloneKind::Vfork).then(|| Arc::new(Completion::new()));
    *child.proc.vfork_done.lock() = done.clone();
    parent.proc.children.lock().push(child.clone());
    if args.parent_tid != 0 {
        // Linux ignores a bad pointer here too: the child exists already.
        let _ = crate::arch::x86_64::uaccess::write_user(args.parent_tid, &(child.pid as i32));
    }
    sched::wake_up_new_task(&child);
    if let Some(done) = done {
        done.wait();
        // The child may have changed its limits or ids in the address
        // space it lent back; the mm follows this process's again.
        crate::resource::sync_mm_limits(&parent.proc);
    }
    Ok(child)
}

/// Stores the child's pid at its `CLONE_CHILD_SETTID` pointer, before its
/// first return to user mode (Linux `schedule_tail`'s `put_user`). Called
/// with interrupts off (the first switch-in); the store runs with them on,
/// as Linux's does after `finish_task_switch`, so the copy-on-write fault
/// it takes after a fork may sleep for the mmap lock and allocate as any
/// user fault (with them off, the fault could only try the lock, and
/// allocating would be a reclaiming allocation in atomic context).
pub fn schedule_tail_user(task: &Task) {
    let at = task.proc.set_child_tid.swap(0, Ordering::Relaxed);
    if at != 0 {
        x86_64::instructions::interrupts::enable();
        let _ = crate::arch::x86_64::uaccess::write_user(at, &(task.pid as i32));
        x86_64::instructions::interrupts::disable();
    }
}

/// The `clear_child_tid` part of Linux `mm_release`, run while the task
/// still uses its address space (exit, exec): if another task shares it
/// (a vfork parent), 0 is stored at the `set_tid_address` /
/// `CLONE_CHILD_CLEARTID` word; the pointer is forgotten either way.
pub fn release_child_tid(task: &Task) {
    let at = task.proc.clear_child_tid.swap(0, Ordering::Relaxed);
    // Counted: the task's reference, the clone taken here, the sharer's.
    if at != 0 && task.proc.mm().is_some_and(|mm| Arc::strong_count(&mm) > 2) {
        let _ = crate::arch::x86_64::uaccess::write_user(at, &0i32);
    }
}

/// Signals a waiting vfork parent that the shared address space is free.
pub fn mm_release(task: &Task) {
    if let Some(done) = task.proc.vfork_done.lock().take() {
        done.complete();
    }
}

/// Ends the running task with wait status `status` (Linux `do_exit`).
pub fn do_exit(status: u32) -> ! {
    let me = sched::current();
    // Closed outside the lock: a last close may sleep.
    let files = core::mem::take(&mut *me.proc.files.lock());
    drop(files);
    let fs = core::mem::take(&mut *me.proc.fs.lock());
    drop(fs);
    release_child_tid(&me);
    me.proc.sys.exit(&me);
    replace_mm(&me, None);
    crate::oom_kill::exit_oom_victim(&me);
    mm_release(&me);
    me.user.store(false, Ordering::Release);
    // Orphans: nobody will reap them; they reap themselves at exit.
    let orphans = core::mem::take(&mut *me.proc.children.lock());
    for c in &orphans {
        *c.proc.parent.lock() = Weak::new();
    }
    drop(orphans);
    me.proc.exit_status.store(status, Ordering::Release);
    me.proc.zombie.store(true, Ordering::Release);
    if let Some(parent) = me.proc.parent.lock().upgrade() {
        parent.proc.child_exit.wake_up_all();
        let sig = me.proc.exit_signal.load(Ordering::Relaxed);
        if sig != 0 {
            crate::signal::send_signal(&parent, sig as i32, None);
        }
    }
    drop(me);
    sched::set_current_state(sched::TaskState::Dead);
    sched::schedule();
    unreachable!("an exited task was scheduled again");
}

/// What [`do_wait`] found.
pub struct Reaped {
    /// The child's pid.
    pub pid: u32,
    /// Its wait status.
    pub status: u32,
    /// Its resource usage with its reaped children's.
    pub rusage: uapi::resource::Rusage,
}

/// Waits for a child to exit (Linux `do_wait`): `pid` > 0 for that child,
/// -1 for any, 0 for any in the caller's process group, below -1 for any
/// in the group `-pid`. `None` with `nohang` when none has exited yet.
/// The reaped child's usage joins the caller's children's.
pub fn do_wait(pid: i32, nohang: bool) -> Result<Option<Reaped>, Errno> {
    let me = sched::current();
    let my_pgrp = me.proc.sys.pgrp();
    let matches = |t: &Arc<Task>| match pid {
        -1 => true,
        0 => t.proc.sys.pgrp() == my_pgrp,
        p if p < 0 => t.proc.sys.pgrp() == p.unsigned_abs(),
        p => t.pid == p as u32,
    };
    let mut reaped = None;
    let mut no_child = false;
    let completed = me.proc.child_exit.wait_event_with(
        true,
        || crate::signal::signal_pending(&me),
        || {
            let mut children = me.proc.children.lock();
            if !children.iter().any(matches) {
                no_child = true;
                return true;
            }
            if let Some(i) = children.iter().position(|c| matches(c) && c.proc.zombie.load(Ordering::Acquire)) {
                reaped = Some(children.swap_remove(i));
                return true;
            }
            nohang
        },
    );
    if no_child {
        return Err(Errno::ECHILD);
    }
    if !completed {
        return Err(Errno::EINTR);
    }
    let reaped = reaped.map(|child| {
        child.wait_inactive();
        let rusage = me.proc.sys.reap(&child);
        Reaped { pid: child.pid, status: child.proc.exit_status.load(Ordering::Acquire), rusage }
    });
    // The child's last reference went just now (Linux `release_task`):
    // its entry on the task list goes too.
    sched::release_dead_tasks();
    Ok(reaped)
}

/// Arguments of a process started by the kernel.
struct SpawnArgs {
    path: alloc::string::String,
    argv: Vec<Vec<u8>>,
}

extern "C" fn user_entry(arg: u64) -> ! {
    // SAFETY: `arg` is the Box<SpawnArgs> `spawn_user` leaked for this task.
    let args = unsafe { Box::from_raw(arg as *mut SpawnArgs) };
    let me = sched::current();
    // SAFETY: the frame is at the top of our own stack; nothing else uses it.
    let frame = unsafe { &mut *me.pt_regs() };
    let result = {
        let envp = alloc::vec![b"PATH=/bin".to_vec(), b"HOME=/".to_vec(), b"TERM=vt100".to_vec()];
        crate::exec::kernel_execve(&args.path, &args.argv, &envp, frame)
    };
    match result {
        Ok(()) => {
            // Nothing owned may stay on this stack: the jump to user mode
            // never returns to drop it.
            drop(args);
            drop(me);
            crate::arch::x86_64::switch::return_to_user()
        }
        Err(e) => {
            log::warn!("{}: cannot execute: {e}", args.path);
            drop(args);
            drop(me);
            do_exit(uapi::wait::w_exitcode(127) as u32)
        }
    }
}

/// Starts the program `path` as a child of the running task
/// (Linux `kernel_execve` from a kernel thread, as `kernel_init` runs
/// `/init`), on the least loaded CPU. Console output is also copied into
/// `capture`, if given.
pub fn spawn_user(path: &str, argv: &[&str], capture: Option<Capture>) -> Result<Arc<Task>, Errno> {
    spawn_user_on(sched::select_task_rq(), path, argv, capture)
}

/// [`spawn_user`] on CPU `cpu`, where the task stays (tasks never move
/// between CPUs): for a test that needs a program running beside it on
/// another CPU. EINVAL if `cpu` is not online.
pub fn spawn_user_on(cpu: u32, path: &str, argv: &[&str], capture: Option<Capture>) -> Result<Arc<Task>, Errno> {
    if cpu >= u64::BITS || crate::arch::x86_64::smp::online_mask() & (1 << cpu) == 0 {
        return Err(Errno::EINVAL);
    }
    let parent = sched::current();
    let args = Box::new(SpawnArgs {
        path: alloc::string::String::from(path),
        argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
    });
    let name = path.rsplit('/').next().unwrap_or(path);
    let arg = Box::into_raw(args) as u64;
    let frame = sched::blank_frame();
    let task = match sched::alloc_task(
        sched::alloc_pid(),
        name.as_bytes(),
        cpu,
        &frame,
        user_entry as *const () as u64,
        arg,
        false,
    ) {
        Ok(t) => t,
        Err(_) => {
            // SAFETY: the box was not handed to any task.
            drop(unsafe { Box::from_raw(arg as *mut SpawnArgs) });
            return Err(Errno::ENOMEM);
        }
    };
    *task.proc.files.lock() = FdTable::with_console();
    *task.proc.capture.lock() = capture;
    task.proc.sys.new_session(task.pid);
    *task.proc.parent.lock() = Arc::downgrade(&parent);
    parent.proc.children.lock().push(task.clone());
    sched::wake_up_new_task(&task);
    Ok(task)
}

/// Runs `path` to completion as a child of the running task and returns
/// its wait status and console output (for tests and the shell).
pub fn run_user(path: &str, argv: &[&str]) -> Result<(u32, Vec<u8>), Errno> {
    let capture: Capture = Arc::new(Mutex::new(Vec::new()));
    let status = wait_for(spawn_user(path, argv, Some(capture.clone()))?)?;
    let out = core::mem::take(&mut *capture.lock());
    Ok((status, out))
}

/// Runs the program the command line names with `init=PATH` (Linux's
/// `init=`), if any, and logs how it ended. Unlike Linux, whose init must
/// never exit, the kernel carries on to its idle loop: this is for trying
/// a program from the initramfs (`cargo xtask run --cmdline
/// "init=/bin/mmap_test"`), not a system's first process.
pub fn run_init() {
    let Some(path) = crate::cmdline::get("init") else { return };
    log::info!("init: running {path}");
    match spawn_user(path, &[path], None).and_then(wait_for) {
        Ok(status) => log::info!("init: {path} ended with wait status {status:#x}"),
        Err(e) => log::warn!("init: cannot run {path}: {e:?}"),
    }
}

/// Waits for the child `task` to end; returns its wait status.
fn wait_for(task: Arc<Task>) -> Result<u32, Errno> {
    let pid = task.pid as i32;
    drop(task);
    loop {
        match do_wait(pid, false) {
            Ok(Some(r)) => return Ok(r.status),
            Ok(None) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}
