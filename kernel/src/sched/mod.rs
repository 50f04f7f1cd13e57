//! The scheduler (Linux `kernel/sched/core.c`, the task of
//! `include/linux/sched.h`, `kernel/kthread.c`'s thread creation).
//!
//! A [`Task`] is a kernel stack plus what is needed to resume it; a user
//! process is a task that also has an address space (see `process.rs`).
//! Each CPU has a run queue of runnable tasks served round robin with a
//! time slice of [`TIME_SLICE_TICKS`] timer ticks, and an idle task that
//! runs when the queue is empty (Linux's per-CPU `rq` with a FIFO class
//! instead of CFS/EEVDF).
//!
//! Preemption model: Linux's `PREEMPT_NONE`. A task is switched out when it
//! sleeps or yields, or, when its slice is used up or a wake-up asks for it
//! ([`set_need_resched`]), on its way back to user mode. Kernel code is
//! never preempted, so a spin lock held in the kernel is never held by a
//! switched-out task.
//!
//! Task states follow Linux: `TASK_RUNNING` (on a run queue or running),
//! `TASK_INTERRUPTIBLE`/`TASK_UNINTERRUPTIBLE` (sleeping, off the queue once
//! `schedule` has run), `TASK_DEAD`. Going to sleep is "set the state, then
//! check the condition, then [`schedule`]"; a waker sets the state back to
//! running under the run-queue lock ([`wake_up_process`], Linux
//! `try_to_wake_up`), so a wake-up between the check and the switch is not
//! lost: `schedule` sees the running state and keeps the task.
//!
//! Switching: `on_cpu` is true while a task's registers are live on a CPU
//! (from being picked until the next task has finished switching away from
//! it, Linux `p->on_cpu`). A CPU that picks a task spins until `on_cpu` is
//! false, so a task woken on another CPU before it finished switching out
//! is never resumed from a half-saved stack; whoever frees a dead task's
//! stack waits for the same.
//!
//! Tasks do not migrate: a task runs on the CPU chosen when it was created
//! ([`select_task_rq`], the least loaded online CPU).
//!
//! Every task, running, sleeping or dead but not yet freed, is on
//! [`TASKS`] (Linux's `init_task.tasks` list), for reports and debuggers.
//!
//! Run queues and wait queues are intrusive lists through the task
//! ([`list`]; Linux's `run_list` and wait-queue entries), so waking a task
//! allocates nothing: the timer tick and other interrupt handlers wake
//! tasks. A dead task may be freed where sleeping is not allowed (the
//! switch away from it runs with interrupts off), so its kernel stack is
//! not vfree'd there but queued and freed at the next [`schedule`] of a
//! running task (a yield, a reschedule on the way to user mode), idle-loop
//! pass or `wait4`, with interrupts on ([`release_dead_tasks`], Linux's
//! delayed `put_task_struct` and `vfree_atomic`), which also prunes
//! [`TASKS`] of freed tasks.
//!
//! Context checks: [`might_sleep`] reports a sleeping function called from
//! atomic context ([`in_atomic`]), and [`schedule`] reports a switch with
//! a spin lock held; both count in [`context_bugs`], which the tests
//! check (debug builds).
//!
//! Lock order: `rq.lock` -> nothing. Wait-queue locks and the sleeper
//! list (`wait.rs`) -> `rq.lock`. All three are [`SpinLockIrq`]s: interrupt
//! handlers wake tasks. `TASKS` is a [`SpinLock`], a leaf never taken in
//! interrupt context; `comm` a leaf [`SpinLockIrq`] (reports read it
//! anywhere); a task's `plug` a leaf [`SpinLock`] only the task takes.

pub mod affinity;
pub mod cputime;
pub mod list;
pub mod rwsem;
pub mod wait;

use alloc::boxed::Box;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::cell::UnsafeCell;
use core::fmt;
use core::panic::Location;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use mm::VirtAddr;
use spin::Once;
use x86_64::instructions::interrupts;

use self::list::{TaskLink, TaskList};
pub use crate::sync::in_atomic;
use crate::sync::{SpinLock, SpinLockIrq, irqs_disabled, preempt_count};

use crate::arch::x86_64::acpi::MAX_CPUS;
use crate::arch::x86_64::entry::TrapFrame;
use crate::arch::x86_64::switch::{self, FxArea};
use crate::arch::x86_64::{apic, gdt, smp};
use crate::percpu::{self, PerCpu};

/// A process or thread id (Linux `pid_t`).
pub type Pid = u32;

/// Timer ticks a task runs before another runnable task gets the CPU (at
/// HZ=250, 16 ms; Linux's `sysctl_sched_base_slice` is 3 ms but our ticks
/// are coarse).
pub const TIME_SLICE_TICKS: u32 = 4;

/// Vector of the reschedule IPI (Linux `RESCHEDULE_VECTOR`).
pub const RESCHEDULE_VECTOR: u8 = 0xfd;

/// Task states (Linux `TASK_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum TaskState {
    /// On a run queue or running (`TASK_RUNNING`).
    Running = 0,
    /// Sleeping; a signal wakes it (`TASK_INTERRUPTIBLE`).
    Interruptible = 1,
    /// Sleeping; only its wake-up wakes it (`TASK_UNINTERRUPTIBLE`).
    Uninterruptible = 2,
    /// Exited; never runs again (`TASK_DEAD`).
    Dead = 0x80,
}

impl TaskState {
    fn from_u32(v: u32) -> TaskState {
        match v {
            0 => TaskState::Running,
            1 => TaskState::Interruptible,
            2 => TaskState::Uninterruptible,
            _ => TaskState::Dead,
        }
    }

    /// The one-letter state `ps` prints (Linux `task_state_array`).
    pub fn letter(self) -> char {
        match self {
            TaskState::Running => 'R',
            TaskState::Interruptible => 'S',
            TaskState::Uninterruptible => 'D',
            TaskState::Dead => 'X',
        }
    }
}

/// A task's command name (Linux `comm`, `TASK_COMM_LEN` 16 with the NUL).
#[derive(Clone, Copy)]
pub struct Comm([u8; 16]);

impl Comm {
    /// The first 15 bytes of `name`.
    pub fn new(name: &[u8]) -> Comm {
        let mut c = [0u8; 16];
        let n = name.len().min(15);
        c[..n].copy_from_slice(&name[..n]);
        Comm(c)
    }

    /// The name as text (lossy).
    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(16);
        core::str::from_utf8(&self.0[..len]).unwrap_or("?")
    }
}

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a task's kernel stack was obtained.
enum KernelStack {
    /// Allocated by [`alloc_thread_stack`](crate::vmalloc::alloc_thread_stack);
    /// freed with the task by
    /// [`free_thread_stack`](crate::vmalloc::free_thread_stack).
    Owned(VirtAddr),
    /// A boot or CPU-bring-up stack that outlives the task.
    Borrowed,
}

/// A schedulable context (Linux `struct task_struct`, scheduling part;
/// the process part is [`crate::process::Process`]).
pub struct Task {
    /// Process id.
    pub pid: Pid,
    comm: SpinLockIrq<Comm>,
    state: AtomicU32,
    on_rq: AtomicBool,
    on_cpu: AtomicBool,
    cpu: AtomicU32,
    idle: bool,
    time_slice: AtomicU32,
    /// Saved kernel stack pointer while switched out.
    sp: UnsafeCell<u64>,
    stack: KernelStack,
    stack_top: u64,
    /// Place in the run queue (Linux `sched_rt_entity.run_list`), under
    /// the run queue's lock.
    run_list: TaskLink,
    /// Place in the one wait queue or the sleeper list the task sleeps on
    /// (Linux's on-stack `wait_queue_entry`), under that queue's lock.
    wait_list: TaskLink,
    /// Deadline of a timed sleep (ns of the TSC clock), under the sleeper
    /// list's lock.
    wake_at_ns: AtomicU64,
    /// FPU/SSE state of a user task while it is switched out.
    fpu: UnsafeCell<FxArea>,
    /// User FS base (TLS pointer, `arch_prctl(ARCH_SET_FS)`).
    pub fs_base: AtomicU64,
    /// User GS base (`arch_prctl(ARCH_SET_GS)`).
    pub gs_base: AtomicU64,
    /// Page-table root this task runs on; 0 for the kernel's.
    pub cr3: AtomicU64,
    /// Whether the task returns to user mode (has user FPU state).
    pub user: AtomicBool,
    /// Set while the task reclaims memory, and for good in kswapd (Linux
    /// `PF_MEMALLOC`): its allocations may take the reserves below the
    /// min watermark and never enter reclaim themselves. Only the task
    /// itself changes it ([`memalloc_noreclaim_save`]).
    memalloc: AtomicBool,
    /// The task's plug (Linux `current->plug`), while it has started one
    /// ([`crate::block::blk_start_plug`]): the bios it holds back to
    /// merge. Only the task itself touches it, never in interrupt
    /// context.
    plug: SpinLock<Option<crate::block::BlkPlug>>,
    /// CPU time, context switches and faults (Linux `utime`, `stime`,
    /// `nvcsw`, `min_flt`... of `task_struct`).
    pub acct: cputime::TaskAcct,
    /// The process side: address space, files, signals, family.
    pub proc: crate::process::Process,
}

// SAFETY: the UnsafeCells are accessed only by the CPU that switches the
// task out (`sp`, `fpu` saved) or in (read), and `on_cpu` orders these: a
// CPU waits for `on_cpu == false` (Acquire, paired with the Release store
// after the save) before resuming the task. The list links' Cells are
// touched only under the lock of the list the task is on (`list.rs`).
// Everything else is atomics or locks.
unsafe impl Sync for Task {}
// SAFETY: as above; nothing in a Task is tied to the creating CPU.
unsafe impl Send for Task {}

/// Set when a task was freed and [`TASKS`] holds its dead entry.
static TASKS_NEED_PRUNE: AtomicBool = AtomicBool::new(false);

impl Drop for Task {
    /// The last reference may go in atomic context (the switch away from a
    /// dead task, a waker's reference dropped in an interrupt handler):
    /// there the stack waits on the deferred list, as vfree may not run
    /// with interrupts off. [`TASKS`] is pruned later either way: the
    /// dropping CPU may hold its lock.
    fn drop(&mut self) {
        if let KernelStack::Owned(base) = self.stack {
            if in_atomic() {
                // SAFETY: the task is being freed, so nothing runs on or
                // points into its stack any more.
                unsafe { crate::vmalloc::free_thread_stack_deferred(base) };
            } else if let Err(e) = crate::vmalloc::free_thread_stack(base) {
                log::error!("task {}: freeing its kernel stack {:#x}: {e}", self.pid, base.as_u64());
            }
        }
        TASKS_NEED_PRUNE.store(true, Ordering::Release);
    }
}

/// Frees what dead tasks left for a context that may sleep: their
/// deferred kernel stacks (Linux's `delayed_vfree_work`) and their entries
/// on [`TASKS`] (Linux `release_task`'s unhashing). Called with interrupts
/// on and no lock held; does nothing otherwise.
pub fn release_dead_tasks() {
    if in_atomic() {
        return;
    }
    crate::vmalloc::drain_deferred_thread_stacks();
    if TASKS_NEED_PRUNE.swap(false, Ordering::AcqRel) {
        TASKS.lock().retain(|t| t.strong_count() > 0);
    }
}

impl Task {
    /// The command name.
    pub fn comm(&self) -> Comm {
        *self.comm.lock()
    }

    /// Renames the task (Linux `set_task_comm`, done by execve).
    pub fn set_comm(&self, comm: Comm) {
        *self.comm.lock() = comm;
    }

    /// The scheduling state.
    pub fn state(&self) -> TaskState {
        TaskState::from_u32(self.state.load(Ordering::Acquire))
    }

    /// The CPU whose run queue the task belongs to.
    pub fn cpu(&self) -> u32 {
        self.cpu.load(Ordering::Relaxed)
    }

    /// Whether the task's registers are live on a CPU.
    pub fn on_cpu(&self) -> bool {
        self.on_cpu.load(Ordering::Acquire)
    }

    /// One past the top of the kernel stack.
    pub fn stack_top(&self) -> u64 {
        self.stack_top
    }

    /// The user registers saved at the top of the kernel stack (Linux
    /// `task_pt_regs`).
    pub fn pt_regs(&self) -> *mut TrapFrame {
        switch::pt_regs_at(self.stack_top)
    }

    /// Spins until the task's registers are saved (it has been switched
    /// out for good or for now).
    pub fn wait_inactive(&self) {
        while self.on_cpu.load(Ordering::Acquire) {
            core::hint::spin_loop();
        }
    }

    /// Gives this (new, not yet running) task a copy of the running task's
    /// FPU registers (fork).
    pub fn copy_fpu_from_current(&self) {
        // SAFETY: the task has never run and is not queued yet, so nothing
        // else touches its FPU image.
        switch::fxsave(unsafe { &mut *self.fpu.get() });
    }

    /// Replaces the saved FPU state (execve resets it).
    pub fn reset_fpu(&self) {
        // SAFETY: called by the task itself in process context, which is
        // the only time its FPU image is not being saved or restored by a
        // switch (the image is used only while the task is switched out).
        unsafe { *self.fpu.get() = FxArea::initial() };
    }
}

/// A CPU's run queue (Linux `struct rq`).
struct Rq {
    /// Runnable tasks waiting for the CPU, through `Task::run_list`.
    queue: SpinLockIrq<TaskList>,
    idle: Once<Arc<Task>>,
    /// Live tasks (running, runnable or sleeping) that belong here: the
    /// load [`select_task_rq`] balances.
    nr_tasks: AtomicU32,
}

static RQ: [Rq; MAX_CPUS] =
    [const { Rq { queue: SpinLockIrq::new(TaskList::new(run_list)), idle: Once::new(), nr_tasks: AtomicU32::new(0) } };
        MAX_CPUS];

fn run_list(task: &Task) -> &TaskLink {
    &task.run_list
}

/// The running task (Linux `pcpu_hot.current_task`): a raw `Arc<Task>`
/// whose strong count this CPU owns.
#[unsafe(link_section = ".data..percpu")]
// SAFETY: in .data..percpu; an integer, copied bitwise into every unit.
static CURRENT: PerCpu<AtomicU64> = unsafe { PerCpu::new(AtomicU64::new(0)) };

/// Set when this CPU should call [`schedule`] at the next opportunity
/// (Linux `TIF_NEED_RESCHED`, per CPU here since tasks do not migrate).
#[unsafe(link_section = ".data..percpu")]
// SAFETY: as for CURRENT.
static NEED_RESCHED: PerCpu<AtomicU64> = unsafe { PerCpu::new(AtomicU64::new(0)) };

/// Top of the running task's kernel stack, for the SYSCALL entry (Linux
/// `pcpu_hot.top_of_stack`).
#[unsafe(link_section = ".data..percpu")]
// SAFETY: as for CURRENT.
pub static TOP_OF_STACK: PerCpu<AtomicU64> = unsafe { PerCpu::new(AtomicU64::new(0)) };

static NEXT_PID: AtomicU32 = AtomicU32::new(1);

/// Every task not yet freed, weakly (Linux's task list); a freed task's
/// entry goes at the next [`release_dead_tasks`]. Read by
/// [`for_each_task`] and, by name, by the gdb scripts (`mm-tasks`). Never
/// taken in interrupt context; its vector grows under the lock, so with
/// `GFP_ATOMIC`.
#[unsafe(no_mangle)]
pub static TASKS: SpinLock<Vec<Weak<Task>>> = SpinLock::new(Vec::new());

/// Puts a new task on [`TASKS`], dropping the entries of freed ones.
/// The list grows with every fork, so it grows fallibly:
/// [`SpawnError::NoMemory`] without room (the caller drops the task).
fn register_task(task: Arc<Task>) -> Result<Arc<Task>, SpawnError> {
    let mut tasks = TASKS.lock();
    tasks.retain(|t| t.strong_count() > 0);
    tasks.try_reserve(1).map_err(|_| SpawnError::NoMemory)?;
    tasks.push(Arc::downgrade(&task));
    drop(tasks);
    Ok(task)
}

/// Calls `f` for every live task, in creation order (Linux
/// `for_each_process`, kernel threads and idle tasks included).
pub fn for_each_task(mut f: impl FnMut(&Arc<Task>)) {
    let tasks: Vec<Arc<Task>> = TASKS.lock().iter().filter_map(Weak::upgrade).collect();
    for t in &tasks {
        f(t);
    }
}

/// Every live task, in creation order, or `None` without memory for the
/// list (for the OOM killer, which must not wait for memory: the list is
/// allocated under the task list's spin lock, so with `GFP_ATOMIC`).
pub fn try_all_tasks() -> Option<Vec<Arc<Task>>> {
    let tasks = TASKS.lock();
    let mut all = Vec::new();
    all.try_reserve_exact(tasks.len()).ok()?;
    all.extend(tasks.iter().filter_map(Weak::upgrade));
    drop(tasks);
    Some(all)
}

/// The live task with pid `pid` (Linux `find_task_by_vpid`; one pid
/// namespace). Pid 0 names the idle tasks, so it finds none.
pub fn find_task_by_pid(pid: Pid) -> Option<Arc<Task>> {
    if pid == 0 {
        return None;
    }
    TASKS.lock().iter().filter_map(Weak::upgrade).find(|t| t.pid == pid)
}

/// Hands out process ids from 1 upwards (Linux `alloc_pid`, without reuse:
/// 2^32 ids outlast any test run).
pub fn alloc_pid() -> Pid {
    NEXT_PID.fetch_add(1, Ordering::Relaxed)
}

fn current_ptr() -> *const Task {
    CURRENT.read() as *const Task
}

/// The running task, if the scheduler is up on this CPU.
pub fn try_current() -> Option<Arc<Task>> {
    let p = current_ptr();
    if p.is_null() {
        return None;
    }
    // SAFETY: CURRENT holds a pointer from `Arc::into_raw` whose count this
    // CPU owns until it switches away, which cannot happen while we run.
    unsafe {
        Arc::increment_strong_count(p);
        Some(Arc::from_raw(p))
    }
}

/// The running task (Linux `current`).
///
/// # Panics
/// Before [`init`] on this CPU.
pub fn current() -> Arc<Task> {
    try_current().expect("current() before sched::init")
}

/// Runs `f` on the running task without touching its reference count.
pub fn with_current<R>(f: impl FnOnce(&Task) -> R) -> R {
    let p = current_ptr();
    assert!(!p.is_null(), "with_current() before sched::init");
    // SAFETY: see `try_current`: the task outlives this call.
    f(unsafe { &*p })
}

/// The running task's `PF_MEMALLOC` state, restored when dropped (Linux
/// `memalloc_noreclaim_restore`).
#[must_use = "the flag is cleared again when the guard goes"]
pub struct MemallocGuard {
    was: bool,
}

/// Marks the running task as reclaiming (Linux
/// `memalloc_noreclaim_save`) until the guard goes. Nested calls restore
/// the outer state.
/// Before [`init`] there is no task to mark, and nothing reclaims.
pub fn memalloc_noreclaim_save() -> MemallocGuard {
    let was = !current_ptr().is_null() && with_current(|me| me.memalloc.swap(true, Ordering::Relaxed));
    MemallocGuard { was }
}

impl Drop for MemallocGuard {
    fn drop(&mut self) {
        if !current_ptr().is_null() {
            let was = self.was;
            with_current(|me| me.memalloc.store(was, Ordering::Relaxed));
        }
    }
}

impl Task {
    /// The task's plug slot ([`crate::block::blk_start_plug`]).
    pub(crate) fn plug(&self) -> &SpinLock<Option<crate::block::BlkPlug>> {
        &self.plug
    }
}

/// Whether the running task is reclaiming and its allocations may use
/// the reserves (Linux `current->flags & PF_MEMALLOC && !in_interrupt()`);
/// false in an interrupt handler, which only interrupted the task.
pub fn current_is_memalloc() -> bool {
    !crate::sync::in_hardirq() && !current_ptr().is_null() && with_current(|me| me.memalloc.load(Ordering::Relaxed))
}

fn new_task(
    pid: Pid,
    comm: &[u8],
    stack: KernelStack,
    stack_top: u64,
    idle: bool,
    cpu: u32,
    proc: crate::process::Process,
) -> Task {
    Task {
        pid,
        comm: SpinLockIrq::new(Comm::new(comm)),
        state: AtomicU32::new(TaskState::Running as u32),
        on_rq: AtomicBool::new(false),
        on_cpu: AtomicBool::new(false),
        cpu: AtomicU32::new(cpu),
        idle,
        time_slice: AtomicU32::new(TIME_SLICE_TICKS),
        sp: UnsafeCell::new(0),
        stack,
        stack_top,
        run_list: TaskLink::new(),
        wait_list: TaskLink::new(),
        wake_at_ns: AtomicU64::new(0),
        fpu: UnsafeCell::new(FxArea::initial()),
        fs_base: AtomicU64::new(0),
        gs_base: AtomicU64::new(0),
        cr3: AtomicU64::new(0),
        user: AtomicBool::new(false),
        memalloc: AtomicBool::new(false),
        plug: SpinLock::new(None),
        acct: cputime::TaskAcct::new(),
        proc,
    }
}

fn install_current(task: Arc<Task>) {
    task.acct.switch_in(crate::arch::x86_64::tsc::now_ns());
    task.on_cpu.store(true, Ordering::Release);
    task.on_rq.store(true, Ordering::Release);
    set_top_of_stack(task.stack_top);
    CURRENT.write(Arc::into_raw(task) as u64);
}

fn set_top_of_stack(top: u64) {
    TOP_OF_STACK.write(top);
    gdt::set_rsp0(top);
}

/// Makes the code running on this CPU a task: on the boot CPU the boot
/// flow becomes pid 0, "kinit" (ours: Linux's boot flow becomes the idle
/// task and spawns pid 1; we keep it to run tests), and gets an idle task
/// with a stack of its own; an application processor's bring-up flow
/// becomes its idle task ("swapper/N", pid 0 as in Linux).
///
/// # Panics
/// If the boot CPU's idle stack cannot be allocated (boot cannot go on).
pub fn init(cpu: u32, stack_top: u64) {
    switch::init_fpu();
    crate::arch::x86_64::syscall::syscall_init();
    let name = alloc::format!("swapper/{cpu}");
    if cpu == 0 {
        let boot = register_task(Arc::new(new_task(
            0,
            b"kinit",
            KernelStack::Borrowed,
            stack_top,
            false,
            0,
            crate::process::Process::new(0),
        )))
        .unwrap_or_else(|e| panic!("sched: cannot list the boot task: {e:?}"));
        install_current(boot);
        let idle = spawn_on(0, name.as_bytes(), idle_thread, 0, true)
            .unwrap_or_else(|e| panic!("sched: no stack for CPU0's idle task: {e:?}"));
        RQ[0].idle.call_once(|| idle);
    } else {
        let idle = register_task(Arc::new(new_task(
            0,
            name.as_bytes(),
            KernelStack::Borrowed,
            stack_top,
            true,
            cpu,
            crate::process::Process::new(0),
        )))
        .unwrap_or_else(|e| panic!("sched: cannot list CPU{cpu}'s idle task: {e:?}"));
        RQ[cpu as usize].idle.call_once(|| idle.clone());
        install_current(idle);
    }
}

/// Why a task could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// No memory for the kernel stack or the task.
    NoMemory,
    /// The CPU asked for is not online.
    CpuOffline,
}

/// The least loaded online CPU (Linux `select_task_rq` for a new task,
/// reduced to the number of tasks each CPU has).
pub fn select_task_rq() -> u32 {
    let online = smp::online_mask();
    let mut best = (u32::MAX, 0);
    for cpu in 0..MAX_CPUS as u32 {
        if online & (1 << cpu) == 0 {
            continue;
        }
        let load = RQ[cpu as usize].nr_tasks.load(Ordering::Relaxed);
        if load < best.0 {
            best = (load, cpu);
        }
    }
    best.1
}

/// Allocates a task with a fresh kernel stack whose first switch-in runs
/// `func(arg)` for `entry` `(func, arg)` (kernel thread, never returning)
/// or, with `func == 0`, returns to user mode through `frame`; `proc` is
/// its process side.
pub(crate) fn alloc_task(
    pid: Pid,
    comm: &[u8],
    cpu: u32,
    frame: &TrapFrame,
    (func, arg): (u64, u64),
    idle: bool,
    proc: crate::process::Process,
) -> Result<Arc<Task>, SpawnError> {
    let base = crate::vmalloc::alloc_thread_stack().map_err(|_| SpawnError::NoMemory)?;
    let top = base.as_u64() + crate::vmalloc::THREAD_SIZE;
    let task = new_task(pid, comm, KernelStack::Owned(base), top, idle, cpu, proc);
    // SAFETY: the stack was just allocated for this task (64 KiB mapped,
    // nothing else uses it).
    let sp = unsafe { switch::prepare_stack(top, frame, func, arg) };
    // SAFETY: the task is not shared yet.
    unsafe { *task.sp.get() = sp };
    let task = register_task(Arc::new(task))?;
    if !idle {
        RQ[cpu as usize].nr_tasks.fetch_add(1, Ordering::Relaxed);
    }
    Ok(task)
}

fn spawn_on(
    cpu: u32,
    comm: &[u8],
    func: extern "C" fn(u64) -> !,
    arg: u64,
    idle: bool,
) -> Result<Arc<Task>, SpawnError> {
    let frame = blank_frame();
    let pid = if idle { 0 } else { alloc_pid() };
    alloc_task(pid, comm, cpu, &frame, (func as usize as u64, arg), idle, crate::process::Process::new(pid))
}

/// An all-zero trap frame.
pub(crate) fn blank_frame() -> TrapFrame {
    TrapFrame {
        r15: 0,
        r14: 0,
        r13: 0,
        r12: 0,
        r11: 0,
        r10: 0,
        r9: 0,
        r8: 0,
        rbp: 0,
        rdi: 0,
        rsi: 0,
        rdx: 0,
        rcx: 0,
        rbx: 0,
        rax: 0,
        vector: 0,
        error_code: 0,
        rip: 0,
        cs: 0,
        rflags: 0,
        rsp: 0,
        ss: 0,
    }
}

/// Puts a new task on its CPU's run queue (Linux `wake_up_new_task`).
pub fn wake_up_new_task(task: &Arc<Task>) {
    task.state.store(TaskState::Running as u32, Ordering::Release);
    enqueue(task.clone());
}

fn enqueue(task: Arc<Task>) {
    let cpu = task.cpu();
    task.on_rq.store(true, Ordering::Release);
    RQ[cpu as usize].queue.lock().push_back(task);
    kick(cpu);
}

/// Makes `cpu` look at its run queue soon.
fn kick(cpu: u32) {
    if cpu == percpu::smp_processor_id() {
        set_need_resched();
    } else if let Some(apic_id) = smp::apic_id_of(cpu) {
        apic::send_ipi(apic_id, RESCHEDULE_VECTOR);
    }
}

/// Interrupts `task` if it is running on another CPU (Linux
/// `kick_process`): the reschedule IPI sends that CPU through its return
/// to user mode, where pending signals are taken.
pub fn kick_process(task: &Task) {
    let cpu = task.cpu();
    if task.on_cpu()
        && cpu != percpu::smp_processor_id()
        && let Some(apic_id) = smp::apic_id_of(cpu)
    {
        apic::send_ipi(apic_id, RESCHEDULE_VECTOR);
    }
}

/// A kernel thread's closure, boxed to pass through one register.
type KthreadFn = Box<dyn FnOnce() + Send>;

extern "C" fn kthread_entry(arg: u64) -> ! {
    // SAFETY: `arg` is the `Box<KthreadFn>` that `kthread_run` leaked for
    // exactly this task, which runs this entry once.
    let f = unsafe { Box::from_raw(arg as *mut KthreadFn) };
    f();
    do_exit_kthread()
}

/// Starts a kernel thread running `f` on the least loaded CPU (Linux
/// `kthread_run`). The thread exits when `f` returns.
pub fn kthread_run(name: &str, f: impl FnOnce() + Send + 'static) -> Result<Arc<Task>, SpawnError> {
    kthread_run_on(select_task_rq(), name, f)
}

/// Starts a kernel thread running `f` on CPU `cpu`, where it stays (Linux
/// `kthread_run_on_cpu`). The thread exits when `f` returns.
pub fn kthread_run_on(cpu: u32, name: &str, f: impl FnOnce() + Send + 'static) -> Result<Arc<Task>, SpawnError> {
    if cpu >= u64::BITS || smp::online_mask() & (1 << cpu) == 0 {
        return Err(SpawnError::CpuOffline);
    }
    let boxed: Box<KthreadFn> = Box::new(Box::new(f));
    let arg = Box::into_raw(boxed) as u64;
    match spawn_on(cpu, name.as_bytes(), kthread_entry, arg, false) {
        Ok(task) => {
            wake_up_new_task(&task);
            Ok(task)
        }
        Err(e) => {
            // SAFETY: the box was not handed to any task.
            drop(unsafe { Box::from_raw(arg as *mut KthreadFn) });
            Err(e)
        }
    }
}

/// Ends the running kernel thread (Linux `do_exit` for a kthread).
pub fn do_exit_kthread() -> ! {
    with_current(|t| t.proc.exit_notify_kthread());
    set_current_state(TaskState::Dead);
    schedule();
    unreachable!("a dead task was scheduled again");
}

/// Sets the running task's state before sleeping (Linux
/// `set_current_state`); [`schedule`] then takes it off the run queue.
pub fn set_current_state(state: TaskState) {
    with_current(|t| t.state.store(state as u32, Ordering::SeqCst));
}

/// Wakes `task` if it sleeps (Linux `try_to_wake_up`); true if it did.
pub fn wake_up_process(task: &Arc<Task>) -> bool {
    let cpu = task.cpu();
    let woke = {
        let mut queue = RQ[cpu as usize].queue.lock();
        match task.state() {
            TaskState::Interruptible | TaskState::Uninterruptible => {
                task.state.store(TaskState::Running as u32, Ordering::SeqCst);
                if !task.on_rq.swap(true, Ordering::AcqRel) {
                    queue.push_back(task.clone());
                }
                true
            }
            TaskState::Running | TaskState::Dead => false,
        }
    };
    if woke {
        kick(cpu);
    }
    woke
}

/// Asks this CPU to reschedule at its next opportunity.
pub fn set_need_resched() {
    NEED_RESCHED.write(1);
}

/// Whether this CPU should reschedule.
pub fn need_resched() -> bool {
    NEED_RESCHED.read() != 0
}

/// Timer tick bookkeeping (Linux `update_process_times`): charges the
/// running task's CPU time (user time if the tick interrupted user mode,
/// `user_tick`), checks its CPU-time interval timers, and asks for a
/// switch when its slice is used up and someone waits (`sched_tick`).
pub fn scheduler_tick(user_tick: bool) {
    let p = current_ptr();
    if p.is_null() {
        return;
    }
    wait::wake_expired_sleepers();
    // SAFETY: see `try_current`.
    let task = unsafe { &*p };
    let cpu = percpu::smp_processor_id() as usize;
    let waiting = RQ[cpu].queue.try_lock().is_none_or(|q| !q.is_empty());
    if task.idle {
        if waiting {
            set_need_resched();
        }
        return;
    }
    task.acct.account_process_tick(user_tick);
    crate::time::itimer::run_posix_cpu_timers(task);
    let left = task.time_slice.load(Ordering::Relaxed).saturating_sub(1);
    task.time_slice.store(left, Ordering::Relaxed);
    if left == 0 && waiting {
        set_need_resched();
    }
}

/// Reschedules if asked to (Linux `cond_resched`). May sleep.
#[track_caller]
pub fn cond_resched() {
    might_sleep_at(Location::caller());
    if need_resched() {
        schedule();
    }
}

/// Gives the CPU to the next runnable task, if any (Linux `sched_yield`).
/// May sleep.
#[track_caller]
pub fn yield_now() {
    might_sleep_at(Location::caller());
    schedule();
}

/// Set once boot is done and the boot CPU takes interrupts: before that,
/// boot runs with interrupts off by design and nothing is checked (Linux
/// skips the checks while `system_state` is `SYSTEM_BOOTING`).
static SYSTEM_RUNNING: AtomicBool = AtomicBool::new(false);

/// Context bugs reported so far ([`might_sleep`], scheduling while atomic,
/// a [`SpinLock`] in interrupt context).
static CONTEXT_BUGS: AtomicU64 = AtomicU64::new(0);

/// Reports of a context bug that print a backtrace (the first few: a bug
/// on a hot path would otherwise flood the console).
const CONTEXT_BUG_BACKTRACES: u64 = 8;

/// Marks the end of boot: from here on the context checks run.
pub fn set_system_running() {
    SYSTEM_RUNNING.store(true, Ordering::Release);
}

/// Context bugs reported since boot (always 0 in release builds, which do
/// not check). A test asserts there were none.
pub fn context_bugs() -> u64 {
    CONTEXT_BUGS.load(Ordering::Relaxed)
}

/// Runs `f` and returns the context bugs reported meanwhile, which then
/// no longer count in [`context_bugs`]: for tests that cause them on
/// purpose. A real bug reported by another CPU at the same moment would
/// be taken for one of them.
pub fn catch_context_bugs(f: impl FnOnce()) -> u64 {
    let before = CONTEXT_BUGS.load(Ordering::Relaxed);
    f();
    let caught = CONTEXT_BUGS.load(Ordering::Relaxed).wrapping_sub(before);
    CONTEXT_BUGS.fetch_sub(caught, Ordering::Relaxed);
    caught
}

/// Logs a context bug found at `caller`, with the context's state and a
/// backtrace, and counts it in [`context_bugs`].
#[cold]
pub fn report_invalid_context(what: &str, caller: &'static Location<'static>) {
    let n = CONTEXT_BUGS.fetch_add(1, Ordering::Relaxed);
    let (pid, comm) =
        try_current_ref().map_or((0, Comm::new(b"?")), |t| (t.pid, t.comm.try_lock().map_or(Comm::new(b"?"), |c| *c)));
    log::error!(
        "BUG: {what} at {caller}\nin_atomic(): {}, irqs_disabled(): {}, preempt_count: {:#x}, pid: {pid}, name: {comm}",
        in_atomic() as u8,
        irqs_disabled() as u8,
        preempt_count()
    );
    if n < CONTEXT_BUG_BACKTRACES {
        crate::arch::x86_64::stacktrace::print_backtrace(crate::arch::x86_64::cpu::read_rbp());
    }
}

/// Says that the caller may sleep (Linux `might_sleep`): in debug builds,
/// reports "sleeping function called from invalid context" when this CPU
/// holds a spin lock, runs an interrupt handler or has interrupts off.
#[track_caller]
#[inline]
pub fn might_sleep() {
    might_sleep_at(Location::caller());
}

/// [`might_sleep`] on behalf of `caller` (for callers that pass their own
/// caller's location on, as the allocators do).
#[inline]
pub fn might_sleep_at(caller: &'static Location<'static>) {
    if cfg!(debug_assertions) && in_atomic() && SYSTEM_RUNNING.load(Ordering::Relaxed) {
        report_invalid_context("sleeping function called from invalid context", caller);
    }
}

/// The running task without a reference (for reports that must not
/// allocate or free).
fn try_current_ref<'a>() -> Option<&'a Task> {
    let p = current_ptr();
    // SAFETY: see `try_current`; the caller does not keep it past a switch.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Picks the next task and switches to it (Linux `__schedule`). A running
/// task goes to the back of the queue; a sleeping one leaves it; a dead one
/// is never picked again. Callers that sleep check [`might_sleep`] first;
/// this checks that no spin lock is held (Linux `schedule_debug`'s
/// "scheduling while atomic"): a switch would carry it to the next task.
#[track_caller]
pub fn schedule() {
    if cfg!(debug_assertions) && preempt_count() != 0 && SYSTEM_RUNNING.load(Ordering::Relaxed) {
        report_invalid_context("scheduling while atomic", Location::caller());
    }
    // Not on the way to sleep: the task state is set, and freeing takes
    // locks of its own.
    if !irqs_disabled() && try_current_ref().is_some_and(|t| t.state() == TaskState::Running) {
        release_dead_tasks();
    }
    let flags_on = interrupts::are_enabled();
    interrupts::disable();
    NEED_RESCHED.write(0);
    let cpu = percpu::smp_processor_id();
    let rq = &RQ[cpu as usize];
    let prev_ptr = current_ptr();
    // SAFETY: see `try_current`.
    let prev = unsafe { &*prev_ptr };
    let next = {
        let mut queue = rq.queue.lock();
        if prev.state() == TaskState::Running {
            if !prev.idle {
                // SAFETY: this CPU owns a count of prev (CURRENT); the
                // queue gets one more.
                unsafe { Arc::increment_strong_count(prev_ptr) };
                // SAFETY: as just said.
                queue.push_back(unsafe { Arc::from_raw(prev_ptr) });
            }
        } else {
            prev.on_rq.store(false, Ordering::Release);
        }
        match queue.pop_front() {
            Some(t) => t,
            None => match rq.idle.get() {
                Some(idle) => idle.clone(),
                None => {
                    drop(queue);
                    if flags_on {
                        interrupts::enable();
                    }
                    return;
                }
            },
        }
    };
    next.time_slice.store(TIME_SLICE_TICKS, Ordering::Relaxed);
    if core::ptr::eq(Arc::as_ptr(&next), prev_ptr) {
        // Still the best choice: drop the queue's extra count.
        drop(next);
        if flags_on {
            interrupts::enable();
        }
        return;
    }
    next.wait_inactive();
    // Linux `__schedule`: a task that leaves the run queue switched
    // voluntarily.
    let now = crate::arch::x86_64::tsc::now_ns();
    prev.acct.switch_out(now, prev.state() != TaskState::Running);
    next.acct.switch_in(now);
    context_switch(prev, next);
    if flags_on {
        interrupts::enable();
    }
}

fn context_switch(prev: &Task, next: Arc<Task>) {
    if prev.user.load(Ordering::Relaxed) {
        // SAFETY: prev is the running task on this CPU; nobody else touches
        // its FPU image until on_cpu goes false after the switch.
        switch::fxsave(unsafe { &mut *prev.fpu.get() });
        prev.gs_base.store(x86_64::registers::model_specific::KernelGsBase::read().as_u64(), Ordering::Relaxed);
    }
    let next_cr3 = next.cr3.load(Ordering::Acquire);
    if next_cr3 != prev.cr3.load(Ordering::Relaxed) {
        crate::arch::x86_64::pgtable::switch_mm(next_cr3);
    }
    if next.user.load(Ordering::Relaxed) {
        // SAFETY: next is switched out (wait_inactive) and about to run
        // here; only this CPU touches its FPU image now.
        switch::fxrstor(unsafe { &*next.fpu.get() });
        let fs = next.fs_base.load(Ordering::Relaxed);
        let gs = next.gs_base.load(Ordering::Relaxed);
        x86_64::registers::model_specific::FsBase::write(x86_64::VirtAddr::new_truncate(fs));
        x86_64::registers::model_specific::KernelGsBase::write(x86_64::VirtAddr::new_truncate(gs));
    }
    next.on_cpu.store(true, Ordering::Release);
    set_top_of_stack(next.stack_top);
    let next_sp = {
        // SAFETY: next is switched out; its saved stack pointer is stable.
        unsafe { *next.sp.get() }
    };
    let prev_ptr = core::ptr::from_ref(prev);
    // The count moves from `next` to CURRENT.
    CURRENT.write(Arc::into_raw(next) as u64);
    // SAFETY: interrupts are off; next_sp was saved by switch_to or made by
    // prepare_stack; prev's `sp` lives in its Arc, which CURRENT's old count
    // keeps alive until finish_task_switch releases it after the save.
    let last = unsafe { switch::switch_to(prev.sp.get(), next_sp, prev_ptr.cast()) };
    finish_task_switch(last.cast());
}

/// Completes a switch on the new task's stack (Linux
/// `finish_task_switch`): the previous task's registers are saved, so
/// other CPUs may run it, and this CPU's count of it is released (a dead
/// task is freed here when nothing else holds it).
fn finish_task_switch(prev: *const Task) {
    // SAFETY: `prev` is the raw Arc this CPU held in CURRENT before the
    // switch; its count is ours to release.
    let prev = unsafe { Arc::from_raw(prev) };
    if prev.state() == TaskState::Dead {
        RQ[prev.cpu() as usize].nr_tasks.fetch_sub(1, Ordering::Relaxed);
    }
    prev.on_cpu.store(false, Ordering::Release);
    drop(prev);
}

/// First code a new task runs (from `ret_from_fork_asm`, Linux
/// `schedule_tail`). Interrupts are off; kernel threads get them on.
#[unsafe(no_mangle)]
extern "C" fn schedule_tail(prev: *const u8) {
    finish_task_switch(prev.cast());
    let me = current();
    if me.user.load(Ordering::Relaxed) {
        crate::process::schedule_tail_user(&me);
    } else {
        interrupts::enable();
    }
}

extern "C" fn idle_thread(_: u64) -> ! {
    idle_loop()
}

/// The idle loop (Linux `do_idle`): schedule when there is work, else halt
/// until an interrupt.
pub fn idle_loop() -> ! {
    loop {
        smp::serve_pending_work();
        release_dead_tasks();
        interrupts::disable();
        let cpu = percpu::smp_processor_id() as usize;
        if need_resched() || !RQ[cpu].queue.lock().is_empty() {
            interrupts::enable();
            schedule();
        } else if smp::work_pending() {
            interrupts::enable();
        } else {
            // Atomically re-enable interrupts and halt: a wake-up IPI
            // arriving after the checks still ends the halt.
            interrupts::enable_and_hlt();
        }
    }
}

/// The reschedule IPI's handler.
pub fn reschedule_interrupt() {
    set_need_resched();
    apic::eoi();
}

/// Every task in a run queue or running, for reports (`ps`).
pub fn for_each_running(mut f: impl FnMut(&Task)) {
    for rq in &RQ {
        rq.queue.lock().for_each(&mut f);
    }
}
