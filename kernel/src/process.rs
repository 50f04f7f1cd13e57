//! Processes and threads: the process side of a task (Linux
//! `task_struct`'s family, exit, files, signal and address-space fields,
//! and `signal_struct`), fork and clone (`kernel/fork.c`), exit, exit_group
//! and wait (`kernel/exit.c`), and exec's end of the other threads
//! (`fs/exec.c` `de_thread`).
//!
//! A process is a thread group ([`ThreadGroup`]): the tasks `clone` made
//! with `CLONE_THREAD` share it, its id (the `tgid`, the first thread's
//! id; each thread's own id is its `pid`, what `gettid` returns), its
//! family, limits and exit status. Threads also share the address space
//! (`CLONE_VM`), the signal handlers (`CLONE_SIGHAND`), the file table
//! (`CLONE_FILES`) and the working directory (`CLONE_FS`); each has its
//! own signal mask and pending set (see [`crate::signal`]). A vfork child,
//! or a `clone(CLONE_VM)` process, shares the address space only.
//!
//! Exit: a thread drops its share of the files, working directory and
//! address space (switching to the kernel's page tables first) and leaves
//! the thread list. The last thread ends the process: it hands its
//! children to nobody (an orphan is reaped by its own exit; Linux
//! reparents to init), makes it a zombie with its wait status and wakes
//! the parent's `wait4`. `exit_group` and fatal signals end every thread
//! first ([`do_group_exit`]: `SIGKILL` to each). The parent reaps the
//! leader's task, waiting until it is switched out for good before
//! dropping it, which frees its kernel stack and its entry on the task
//! list ([`sched::release_dead_tasks`]). A task whose last reference goes
//! elsewhere (a thread other than the leader, an orphan, a kernel thread:
//! at the switch away from it, interrupts off) has its stack freed at the
//! next schedule point.
//!
//! Credentials are per thread (as Linux's `task->cred`; musl changes every
//! thread's ids itself); they and the resource limits are copied at fork
//! and kept at exec (see [`crate::cred`] and [`crate::resource`]).
//!
//! Lock order: `children` -> a child's locks; the address space's mmap
//! lock (sleeping) -> `rlim` -> `cred`; `files` -> an open file's offset
//! lock; the signal handlers' lock -> `threads` -> a thread's pending
//! set (`crate::signal`); `threads` -> the exited threads' usage
//! (`crate::sys`); `group_exit` is a leaf. `rlim` is a sleeping
//! [`Mutex`]: limits are copied into the address space under the mmap
//! lock. The other locks of a process are [`SpinLock`]s: process context
//! only (system calls, exceptions), never interrupt handlers, never held
//! across a sleep; what grows under one allocates with `GFP_ATOMIC`. The
//! capture buffer is a sleeping mutex too (it grows with a program's
//! output).

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
use crate::signal::{SignalState, ThreadSignals};
use crate::sync::{Mutex, SpinLock};

/// The process side of a task (Linux `task_struct`'s process fields).
/// What a thread shares with the others of its process lives behind the
/// `Arc`s: the thread group ([`ThreadGroup`], Linux `signal_struct`), the
/// signal handlers and process-wide pending signals (Linux
/// `sighand_struct`), the file table and the working directory
/// (`files_struct`, `fs_struct`, shared by `CLONE_FILES` and `CLONE_FS`).
/// The address space is per task, a reference each (`task->mm`; the
/// references are Linux's `mm_users`).
pub struct Process {
    /// The thread group (process) this task belongs to.
    pub group: Arc<ThreadGroup>,
    /// The address space (none for kernel threads).
    pub mm: SpinLock<Option<MmRef>>,
    /// Open files.
    pub files: Arc<Shared<FdTable>>,
    /// Working directory and umask (Linux `task->fs`).
    pub fs: Arc<Shared<crate::fs::fs_struct::FsStruct>>,
    /// Signal handlers and the process-wide pending signals.
    pub signal: Arc<SpinLock<SignalState>>,
    /// This thread's blocked mask and its own pending signals (Linux
    /// `task->blocked`, `task->pending`).
    pub sigpending: SpinLock<ThreadSignals>,
    /// Set by a vfork child when it execs or exits; its parent waits for it.
    pub vfork_done: SpinLock<Option<Arc<Completion>>>,
    /// `set_tid_address` / `CLONE_CHILD_CLEARTID` pointer: at exit, while
    /// another task still uses the address space (a thread, a vfork
    /// parent), 0 is stored there and one futex waiter on it is woken.
    pub clear_child_tid: AtomicU64,
    /// `CLONE_CHILD_SETTID` pointer: the child stores its pid there before
    /// it first returns to user mode (Linux `schedule_tail`).
    pub set_child_tid: AtomicU64,
    /// User and group ids and capabilities (Linux `task->cred`).
    pub cred: SpinLock<Cred>,
}

/// What the threads of a process share (Linux `signal_struct`, with the
/// process's family, which Linux keeps in the group leader).
///
/// A user task is on `threads` from its creation until it exits. The
/// process ends when its last thread exits: that thread releases what
/// the process holds, marks it a zombie and tells the parent. Until the
/// parent reaps it, the leader's task (the one whose id is the `tgid`)
/// stays on the parent's `children`, as Linux keeps a zombie leader.
pub struct ThreadGroup {
    /// The process id: the id of the thread that started it.
    pub tgid: sched::Pid,
    /// The live threads, in creation order.
    pub threads: SpinLock<Vec<Arc<Task>>>,
    /// Where `execve` waits for the other threads to go (Linux
    /// `de_thread`'s `group_exec_task` wait).
    pub thread_exit: WaitQueue,
    /// The parent process, if any.
    pub parent: SpinLock<Weak<ThreadGroup>>,
    /// Children (their leaders) not yet reaped.
    pub children: SpinLock<Vec<Arc<Task>>>,
    /// Set when the last thread has exited and the process waits to be
    /// reaped (`EXIT_ZOMBIE`).
    pub zombie: AtomicBool,
    /// Wait status for the parent (Linux `exit_code`, encoded as wait4
    /// reports it).
    pub exit_status: AtomicU32,
    /// The leader's own exit status, reported when the process ends
    /// without a group exit (every thread called `exit`).
    leader_status: AtomicU32,
    /// Whether the threads are being ended, and why.
    group_exit: SpinLock<GroupExit>,
    /// Where this process's threads sleep in wait4 (woken when a child
    /// exits).
    pub child_exit: WaitQueue,
    /// Where console output is also copied (inherited by children).
    pub capture: SpinLock<Option<Capture>>,
    /// The signal the parent gets at exit (`SIGCHLD` for fork and vfork,
    /// clone's `CSIGNAL` bits; 0 for none).
    pub exit_signal: AtomicU32,
    /// Resource limits (Linux `signal->rlim`).
    pub rlim: Mutex<Rlimits>,
    /// `oom_score_adj` and whether the OOM killer chose it (Linux
    /// `signal->oom_score_adj`, `oom_score_adj_min`, `oom_mm`).
    pub oom: crate::oom_kill::TaskOom,
    /// Process group, session, timers and children's usage: process-wide,
    /// Linux `signal_struct`'s `pids[PIDTYPE_PGID/SID]`, `leader`,
    /// `real_timer`, `it[]`, `posix_timers`, `cutime`..., `maxrss`.
    pub sys: crate::sys::ProcSys,
    /// What `/proc` shows of the process that nothing else keeps
    /// (process-wide: Linux keeps its start time in the task).
    pub proc_info: crate::fs::proc::base::ProcInfo,
}

/// Whether a process's threads are being ended (Linux
/// `SIGNAL_GROUP_EXIT` with `group_exit_code`, and `group_exec_task`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GroupExit {
    /// They are not.
    None,
    /// A group exit (`exit_group`, a fatal signal) with the status the
    /// process ends with.
    Exiting(u32),
    /// A thread is in `execve` and ends the others.
    Exec,
}

/// A table tasks may share (Linux `files_struct` and `fs_struct` with
/// their `count`): `users` counts the tasks using it, and the last to
/// leave empties it ([`Shared::leave`]), while the memory stays until
/// the last task holding the `Arc` is freed.
pub struct Shared<T> {
    users: AtomicU32,
    table: SpinLock<T>,
}

impl<T: Default> Shared<T> {
    /// A table used by one task.
    pub fn new(table: T) -> Arc<Self> {
        Arc::new(Shared { users: AtomicU32::new(1), table: SpinLock::new(table) })
    }

    /// One more task uses it (`CLONE_FILES`, `CLONE_FS`).
    pub fn share(this: &Arc<Self>) -> Arc<Self> {
        this.users.fetch_add(1, Ordering::Relaxed);
        this.clone()
    }

    /// The calling task stops using it; the last one gets the contents,
    /// to drop outside the lock (a last close may sleep).
    pub fn leave(&self) -> Option<T> {
        (self.users.fetch_sub(1, Ordering::AcqRel) == 1).then(|| core::mem::take(&mut *self.table.lock()))
    }

    /// Whether another task uses it too.
    pub fn is_shared(&self) -> bool {
        self.users.load(Ordering::Acquire) > 1
    }
}

impl<T> core::ops::Deref for Shared<T> {
    type Target = SpinLock<T>;

    fn deref(&self) -> &SpinLock<T> {
        &self.table
    }
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

impl ThreadGroup {
    /// A new process whose first thread has id `tgid`.
    pub fn new(tgid: sched::Pid) -> Arc<Self> {
        Arc::new(ThreadGroup {
            tgid,
            threads: SpinLock::new(Vec::new()),
            thread_exit: WaitQueue::new(),
            parent: SpinLock::new(Weak::new()),
            children: SpinLock::new(Vec::new()),
            zombie: AtomicBool::new(false),
            exit_status: AtomicU32::new(0),
            leader_status: AtomicU32::new(0),
            group_exit: SpinLock::new(GroupExit::None),
            child_exit: WaitQueue::new(),
            capture: SpinLock::new(None),
            exit_signal: AtomicU32::new(uapi::signal::SIGCHLD as u32),
            rlim: Mutex::new(Rlimits::init()),
            oom: crate::oom_kill::TaskOom::new(),
            proc_info: crate::fs::proc::base::ProcInfo::new(),
            sys: crate::sys::ProcSys::default(),
        })
    }

    /// A snapshot of the live threads.
    pub fn thread_list(&self) -> Vec<Arc<Task>> {
        self.threads.lock().clone()
    }

    /// The number of live threads (Linux `signal->nr_threads`).
    pub fn nr_threads(&self) -> usize {
        self.threads.lock().len()
    }

    /// Whether a group exit has begun (Linux `signal_group_exit`).
    pub fn group_exiting(&self) -> bool {
        matches!(*self.group_exit.lock(), GroupExit::Exiting(_))
    }

    /// Begins a group exit with `status` unless one began already, and
    /// sends `SIGKILL` to every thread but `except` (Linux
    /// `zap_other_threads`). Returns the status the process ends with.
    pub fn start_group_exit(&self, status: u32, except: Option<&Task>) -> u32 {
        let status = {
            let mut exit = self.group_exit.lock();
            match *exit {
                GroupExit::Exiting(first) => first,
                _ => {
                    *exit = GroupExit::Exiting(status);
                    status
                }
            }
        };
        for t in self.thread_list() {
            if except.is_none_or(|e| !core::ptr::eq(e, &*t)) {
                crate::signal::send_sigkill_thread(&t);
            }
        }
        status
    }
}

impl Process {
    /// A process of its own with no family, files or address space, whose
    /// first thread has id `tgid`.
    pub fn new(tgid: sched::Pid) -> Self {
        Process::with_group(ThreadGroup::new(tgid))
    }

    fn with_group(group: Arc<ThreadGroup>) -> Self {
        Process {
            group,
            mm: SpinLock::new(None),
            files: Shared::new(FdTable::default()),
            fs: Shared::new(crate::fs::fs_struct::FsStruct::default()),
            signal: Arc::new(SpinLock::new(SignalState::default())),
            sigpending: SpinLock::new(ThreadSignals::default()),
            vfork_done: SpinLock::new(None),
            clear_child_tid: AtomicU64::new(0),
            set_child_tid: AtomicU64::new(0),
            cred: SpinLock::new(Cred::root()),
        }
    }

    /// A kernel thread is ending: mark it reaped-by-nobody and wake anyone
    /// waiting for it.
    pub fn exit_notify_kthread(&self) {
        self.group.zombie.store(true, Ordering::Release);
        self.group.child_exit.wake_up_all();
    }

    /// The address space, if any.
    pub fn mm(&self) -> Option<MmRef> {
        self.mm.lock().clone()
    }

    /// The process id (Linux `task_tgid_nr`).
    pub fn tgid(&self) -> sched::Pid {
        self.group.tgid
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

/// What a new child gets (Linux `struct kernel_clone_args`, the part we
/// support: no namespaces, no pidfds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloneArgs {
    /// The sharing flags: `CLONE_VM`, `CLONE_FS`, `CLONE_FILES`,
    /// `CLONE_SIGHAND`, `CLONE_THREAD`, `CLONE_VFORK` (checked by the
    /// caller: [`check_clone_flags`]).
    pub flags: u64,
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
    /// Signal to the parent at exit (none for a thread).
    pub exit_signal: u32,
}

impl CloneArgs {
    /// Plain fork: `SIGCHLD` at exit, nothing shared.
    pub const fn fork() -> Self {
        CloneArgs {
            flags: 0,
            stack: 0,
            tls: None,
            parent_tid: 0,
            child_tid: 0,
            clear_child_tid: 0,
            exit_signal: uapi::signal::SIGCHLD as u32,
        }
    }

    /// vfork: the address space is lent, the parent sleeps until the
    /// child execs or exits.
    pub const fn vfork() -> Self {
        CloneArgs { flags: uapi::sched::CLONE_VM | uapi::sched::CLONE_VFORK, ..CloneArgs::fork() }
    }

    fn has(&self, flag: u64) -> bool {
        self.flags & flag != 0
    }
}

/// Linux `copy_process`'s checks of the sharing flags: a thread shares
/// the handlers, and shared handlers need a shared address space
/// (EINVAL). Differences: the file table and the handlers are shared
/// only between threads (`CLONE_FILES` or `CLONE_SIGHAND` without
/// `CLONE_THREAD` is EINVAL here), as exec could not unshare them.
pub fn check_clone_flags(flags: u64) -> Result<(), Errno> {
    use uapi::sched::{CLONE_FILES, CLONE_SIGHAND, CLONE_THREAD, CLONE_VM};
    let has = |f: u64| flags & f != 0;
    if has(CLONE_THREAD) && !has(CLONE_SIGHAND) || has(CLONE_SIGHAND) && !has(CLONE_VM) {
        return Err(Errno::EINVAL);
    }
    if (has(CLONE_FILES) || has(CLONE_SIGHAND)) && !has(CLONE_THREAD) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Creates a child of the running user task (Linux `kernel_clone`):
/// copies the trap frame (the child returns 0), TLS and FPU state; shares
/// or copies the address space (copy-on-write), the file table, the
/// working directory and the signal handlers as `args.flags` say; and
/// with `CLONE_THREAD` makes it a thread of the caller's process instead
/// of a new process.
pub fn do_fork(frame: &crate::arch::x86_64::entry::TrapFrame, args: &CloneArgs) -> Result<Arc<Task>, Errno> {
    use uapi::sched::{CLONE_FILES, CLONE_FS, CLONE_SIGHAND, CLONE_THREAD, CLONE_VFORK, CLONE_VM};
    check_clone_flags(args.flags)?;
    let parent = sched::current();
    let thread = args.has(CLONE_THREAD);
    if thread && parent.proc.group.group_exiting() {
        // Linux: a process being killed gets no new threads.
        return Err(Errno::EINTR);
    }
    let mut child_frame = frame.clone();
    child_frame.rax = 0;
    if args.stack != 0 {
        child_frame.rsp = args.stack;
    }
    // The address space first, the task second (Linux `copy_process`'s
    // order): a task, once allocated, is counted on its run queue.
    let parent_mm = parent.proc.mm().ok_or(Errno::EINVAL)?;
    let child_mm = if args.has(CLONE_VM) {
        parent_mm.clone()
    } else {
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
    };
    let pid = sched::alloc_pid();
    let group = if thread { parent.proc.group.clone() } else { ThreadGroup::new(pid) };
    let proc = Process {
        files: if args.has(CLONE_FILES) {
            Shared::share(&parent.proc.files)
        } else {
            Shared::new(parent.proc.files.lock().clone())
        },
        fs: if args.has(CLONE_FS) {
            Shared::share(&parent.proc.fs)
        } else {
            Shared::new(parent.proc.fs.lock().clone())
        },
        signal: if args.has(CLONE_SIGHAND) {
            parent.proc.signal.clone()
        } else {
            Arc::new(SpinLock::new(parent.proc.signal.lock().fork_copy()))
        },
        sigpending: SpinLock::new(ThreadSignals {
            blocked: parent.proc.sigpending.lock().blocked,
            ..Default::default()
        }),
        cred: SpinLock::new(*parent.proc.cred.lock()),
        ..Process::with_group(group.clone())
    };
    if !thread {
        *group.capture.lock() = parent.proc.group.capture.lock().clone();
        *group.rlim.lock() = *parent.proc.group.rlim.lock();
        group.oom.inherit(&parent.proc.group.oom);
        group.sys.fork_from(&parent.proc.group.sys);
        *group.parent.lock() = Arc::downgrade(&parent.proc.group);
        group.exit_signal.store(args.exit_signal, Ordering::Relaxed);
    }
    let child = match sched::alloc_task(
        pid,
        parent.comm().as_str().as_bytes(),
        sched::select_task_rq(),
        &child_frame,
        (0, 0),
        false,
        proc,
    ) {
        Ok(child) => child,
        Err(_) => {
            // A fork's copy goes; a shared reference just drops.
            release_mm(Some(child_mm));
            return Err(Errno::ENOMEM);
        }
    };
    child.cr3.store(child_mm.pgd_root().as_u64(), Ordering::Release);
    *child.proc.mm.lock() = Some(child_mm);
    if !thread {
        crate::resource::sync_mm_limits(&child.proc);
    }
    child.fs_base.store(args.tls.unwrap_or_else(|| parent.fs_base.load(Ordering::Relaxed)), Ordering::Relaxed);
    child.proc.set_child_tid.store(args.child_tid, Ordering::Relaxed);
    child.proc.clear_child_tid.store(args.clear_child_tid, Ordering::Relaxed);
    child.gs_base.store(x86_64::registers::model_specific::KernelGsBase::read().as_u64(), Ordering::Relaxed);
    child.copy_fpu_from_current();
    child.user.store(true, Ordering::Release);
    let done = args.has(CLONE_VFORK).then(|| Arc::new(Completion::new()));
    *child.proc.vfork_done.lock() = done.clone();
    {
        // Under the thread list's lock, so that a group exit that began
        // meanwhile (it sends SIGKILL to the threads it lists) is seen.
        let mut threads = group.threads.lock();
        threads.push(child.clone());
        if thread && group.group_exiting() {
            crate::signal::send_sigkill_thread(&child);
        }
    }
    if !thread {
        parent.proc.group.children.lock().push(child.clone());
    }
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
/// (a thread, a vfork parent), 0 is stored at the `set_tid_address` /
/// `CLONE_CHILD_CLEARTID` word and one futex waiter on it is woken (what
/// `pthread_join` waits for); the pointer is forgotten either way.
pub fn release_child_tid(task: &Task) {
    let at = task.proc.clear_child_tid.swap(0, Ordering::Relaxed);
    // Counted: the task's reference, the clone taken here, the sharer's.
    if at != 0 && task.proc.mm().is_some_and(|mm| Arc::strong_count(&mm) > 2) {
        let _ = crate::arch::x86_64::uaccess::write_user(at, &0i32);
        crate::futex::wake_clear_child_tid(at);
    }
}

/// Signals a waiting vfork parent that the shared address space is free.
pub fn mm_release(task: &Task) {
    if let Some(done) = task.proc.vfork_done.lock().take() {
        done.complete();
    }
}

/// Ends the running thread with wait status `status` (Linux `do_exit`,
/// the `exit` system call): it drops its share of the file table, the
/// working directory and the address space; the last thread of the
/// process also hands its children to nobody (an orphan is reaped by its
/// own exit; Linux reparents to init), makes the process a zombie with
/// its wait status and tells the parent.
pub fn do_exit(status: u32) -> ! {
    let me = sched::current();
    let group = me.proc.group.clone();
    // Closed outside the lock: a last close may sleep.
    drop(me.proc.files.leave());
    drop(me.proc.fs.leave());
    release_child_tid(&me);
    group.sys.exit_mm(&me);
    replace_mm(&me, None);
    mm_release(&me);
    me.user.store(false, Ordering::Release);
    if me.pid == group.tgid {
        group.leader_status.store(status, Ordering::Release);
    }
    let last = {
        let mut threads = group.threads.lock();
        threads.retain(|t| !Arc::ptr_eq(t, &me));
        group.sys.thread_left(&me);
        threads.is_empty()
    };
    group.thread_exit.wake_up_all();
    if last {
        group.sys.exit();
        crate::oom_kill::exit_oom_victim(&me);
        exit_notify(&group);
    }
    drop(group);
    drop(me);
    sched::set_current_state(sched::TaskState::Dead);
    sched::schedule();
    unreachable!("an exited task was scheduled again");
}

/// The end of a process, by its last thread (Linux `exit_notify` with
/// `release_task`'s family part).
fn exit_notify(group: &ThreadGroup) {
    // Orphans: nobody will reap them; they reap themselves at exit.
    let orphans = core::mem::take(&mut *group.children.lock());
    for c in &orphans {
        *c.proc.group.parent.lock() = Weak::new();
    }
    drop(orphans);
    let status = match *group.group_exit.lock() {
        GroupExit::Exiting(status) => status,
        _ => group.leader_status.load(Ordering::Acquire),
    };
    group.exit_status.store(status, Ordering::Release);
    group.zombie.store(true, Ordering::Release);
    // Taken out of its lock first: the wake-up and the signal take the
    // parent's locks.
    let parent = group.parent.lock().upgrade();
    if let Some(parent) = parent {
        parent.child_exit.wake_up_all();
        let sig = group.exit_signal.load(Ordering::Relaxed);
        let first = parent.threads.lock().first().cloned();
        if sig != 0
            && let Some(t) = first
        {
            crate::signal::send_signal(&t, sig as i32, None);
        }
    }
}

/// Ends the whole process with `status` (Linux `do_group_exit`: the
/// `exit_group` system call and fatal signals): every other thread gets
/// `SIGKILL`, and the process reports the status of the first group
/// exit. A thread killed by `execve` from another thread ends alone.
pub fn do_group_exit(status: u32) -> ! {
    let status = {
        let me = sched::current();
        let group = me.proc.group.clone();
        let exec = matches!(*group.group_exit.lock(), GroupExit::Exec);
        if exec { status } else { group.start_group_exit(status, Some(&me)) }
    };
    do_exit(status)
}

/// `execve`'s end of the other threads (Linux `de_thread`): they get
/// `SIGKILL` and exec waits until they have gone. EAGAIN if the process
/// is exiting or another thread is in `execve`. Differences: the calling
/// thread keeps its id when it is not the leader (Linux gives it the
/// process id), so there `gettid` stays different from `getpid`.
pub fn de_thread(me: &Arc<Task>) -> Result<(), Errno> {
    let group = &me.proc.group;
    if group.nr_threads() <= 1 {
        return Ok(());
    }
    {
        let mut exit = group.group_exit.lock();
        if *exit != GroupExit::None {
            return Err(Errno::EAGAIN);
        }
        *exit = GroupExit::Exec;
    }
    for t in group.thread_list() {
        if !Arc::ptr_eq(&t, me) {
            crate::signal::send_sigkill_thread(&t);
        }
    }
    group.thread_exit.wait_event(|| group.nr_threads() <= 1);
    *group.group_exit.lock() = GroupExit::None;
    Ok(())
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
    let my_pgrp = me.proc.group.sys.pgrp();
    let matches = |t: &Arc<Task>| match pid {
        -1 => true,
        0 => t.proc.group.sys.pgrp() == my_pgrp,
        p if p < 0 => t.proc.group.sys.pgrp() == p.unsigned_abs(),
        p => t.pid == p as u32,
    };
    let mut reaped = None;
    let mut no_child = false;
    let group = &me.proc.group;
    let completed = group.child_exit.wait_event_with(
        true,
        || crate::signal::signal_pending(&me),
        || {
            let mut children = group.children.lock();
            if !children.iter().any(matches) {
                no_child = true;
                return true;
            }
            if let Some(i) = children.iter().position(|c| matches(c) && c.proc.group.zombie.load(Ordering::Acquire)) {
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
        let rusage = me.proc.group.sys.reap(&child);
        Reaped { pid: child.pid, status: child.proc.group.exit_status.load(Ordering::Acquire), rusage }
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
    let pid = sched::alloc_pid();
    let proc = Process::new(pid);
    *proc.files.lock() = FdTable::with_console();
    *proc.group.capture.lock() = capture;
    proc.group.sys.new_session(pid);
    *proc.group.parent.lock() = Arc::downgrade(&parent.proc.group);
    let group = proc.group.clone();
    let task = match sched::alloc_task(
        pid,
        name.as_bytes(),
        cpu,
        &frame,
        (user_entry as *const () as u64, arg),
        false,
        proc,
    ) {
        Ok(t) => t,
        Err(_) => {
            // SAFETY: the box was not handed to any task.
            drop(unsafe { Box::from_raw(arg as *mut SpawnArgs) });
            return Err(Errno::ENOMEM);
        }
    };
    group.threads.lock().push(task.clone());
    parent.proc.group.children.lock().push(task.clone());
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
