//! The OOM killer and the OOM reaper (Linux `mm/oom_kill.c`:
//! `out_of_memory`, `oom_kill_process`, `dump_header`, `dump_tasks`,
//! `__oom_kill_process`, `oom_reaper`, `pagefault_out_of_memory`; the
//! policy is [`mm::oom_kill`]'s).
//!
//! The page allocator calls [`KernelOom::out_of_memory`] when an
//! allocation that may kill ([`mm::oom_kill::gfp_may_oom`]: it may block
//! and call into file systems, order 3 or less, no `__GFP_NORETRY`) finds
//! no memory after reclaim. It weighs every task with
//! [`mm::oom_kill::select_bad_process`], prints Linux's report (the
//! "invoked oom-killer" line, the Mem-Info dump, the task table, the
//! "Out of memory: Killed process" line), sends the victim `SIGKILL`
//! (and every other process on its address space, as Linux does), counts
//! `oom_kill` in /proc/vmstat and hands the victim to the reaper. The
//! allocation then retries: while the victim's memory is not back, a new
//! selection aborts and the caller sleeps a tick and retries (Linux's
//! loop in `__alloc_pages_slowpath`). A victim's own allocations get one
//! try at the reserves below the min watermark (Linux `ALLOC_OOM`), so
//! the small allocations of its way out succeed, then fail, so it
//! returns from its fault or system call (`ENOMEM`) and dies.
//!
//! The reaper, a kernel thread `oom_reaper`, takes the victim's mmap lock
//! for reading with a trylock, up to [`MAX_OOM_REAP_RETRIES`] times a
//! tenth of a second apart, unmaps its private memory
//! ([`mm::oom_kill`]'s `oom_reap_task_mm`), then marks the address space
//! skipped (`MMF_OOM_SKIP`) whether or not it got the lock, so a victim
//! that cannot be reaped holds up the next kill by at most a second. A
//! victim that exits first frees its memory itself and is marked at
//! exit ([`exit_oom_victim`]).
//!
//! # Locks
//! [`OOM_LOCK`] (Linux `oom_lock`) serializes the OOM killer: a second
//! caller sleeps a tick and retries; a caller that already holds it (an
//! allocation the OOM killer itself makes) fails at once instead of
//! recursing. Nothing here allocates in a way that waits for memory:
//! the task list is copied under its spin lock (`GFP_ATOMIC`), the report
//! is printed line by line. Lock order: `OOM_LOCK` -> a task's mmap lock
//! (trylock only) -> its spin locks. The reaper holds no lock but the
//! victim's mmap lock.
//!
//! Differences from Linux: the reaper starts at once (Linux 6.x gives the
//! victim two seconds to exit first, `OOM_REAPER_DELAY`); no `dump_stack` (the report names the CPU and
//! task); an address space whose mmap lock is held for writing when the
//! OOM killer weighs it counts as it was last read; with no killable task
//! left the allocation fails (Linux panics: "System is deadlocked on
//! memory"), and a user fault that gets no memory kills the faulting task.

#![forbid(unsafe_code)]

use alloc::sync::Arc;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicI16, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use log::{error, info, warn};
use mm::gfp::Gfp;
use mm::oom_kill::{OomChoice, OomMm, OomScoreAdj, OomTask, OomVictim, OutOfMemory};
use mm::page_alloc::PgData;
use mm::vmstat::VmEventItem;
use uapi::errno::Errno;

use crate::mmap::{Mm, UserMm};
use crate::sched::wait::WaitQueue;
use crate::sched::{self, Pid, Task};
use crate::sync::SpinLock;

/// Tries of the reaper at a victim's mmap lock (Linux
/// `MAX_OOM_REAP_RETRIES`).
pub const MAX_OOM_REAP_RETRIES: u32 = 10;

/// Between two tries (Linux `HZ/10`).
const OOM_REAP_RETRY_NS: u64 = 100_000_000;

/// How long a caller that finds a victim still giving memory back, or the
/// OOM killer busy, sleeps before retrying (Linux's one jiffy).
const OOM_RETRY_SLEEP_NS: u64 = 1_000_000;

/// The task inside the OOM killer, by its address; 0 when free (Linux
/// `oom_lock`, taken with `mutex_trylock`).
static OOM_LOCK: AtomicUsize = AtomicUsize::new(0);

/// Victims waiting for the reaper (Linux `oom_reaper_list`). A victim
/// that finds it full is not reaped and frees its memory at exit.
static REAP_QUEUE: SpinLock<[Option<Arc<Task>>; REAP_QUEUE_LEN]> = SpinLock::new([const { None }; REAP_QUEUE_LEN]);
const REAP_QUEUE_LEN: usize = 8;

/// Where the reaper sleeps (Linux `oom_reaper_wait`).
static REAPER_WAIT: WaitQueue = WaitQueue::new();

/// Set once the reaper runs: before, victims are not queued.
static REAPER_RUNNING: AtomicBool = AtomicBool::new(false);

/// The OOM killer's state of a process: `oom_score_adj` and its floor
/// (Linux `signal->oom_score_adj`, `oom_score_adj_min`, inherited at
/// fork, kept at exec) and whether it was chosen ([`OomVictim`]).
pub struct TaskOom {
    adj: AtomicI16,
    adj_min: AtomicI16,
    victim: AtomicU8,
}

impl Default for TaskOom {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskOom {
    /// `oom_score_adj` 0, never chosen.
    pub const fn new() -> Self {
        TaskOom { adj: AtomicI16::new(0), adj_min: AtomicI16::new(0), victim: AtomicU8::new(0) }
    }

    /// A child's copy at fork: the adjustment and its floor.
    pub fn inherit(&self, parent: &TaskOom) {
        self.adj.store(parent.adj.load(Ordering::Relaxed), Ordering::Relaxed);
        self.adj_min.store(parent.adj_min.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// The current `oom_score_adj` and floor.
    pub fn score_adj(&self) -> OomScoreAdj {
        OomScoreAdj { adj: self.adj.load(Ordering::Relaxed), min: self.adj_min.load(Ordering::Relaxed) }
    }

    fn victim(&self) -> OomVictim {
        match self.victim.load(Ordering::Acquire) {
            0 => OomVictim::No,
            1 => OomVictim::Pending,
            _ => OomVictim::Reaped,
        }
    }

    fn set_victim(&self, state: OomVictim) {
        let v = match state {
            OomVictim::No => 0,
            OomVictim::Pending => 1,
            OomVictim::Reaped => 2,
        };
        self.victim.store(v, Ordering::Release);
    }
}

/// What the OOM killer last read of an address space, kept beside its
/// mmap lock (see [`Mm::oom_mm`]), and `MMF_OOM_SKIP`.
pub struct MmOom {
    skip: AtomicBool,
    /// total_vm, anon, file, shmem, page-table bytes.
    last: [AtomicU64; 5],
}

impl Default for MmOom {
    fn default() -> Self {
        Self::new()
    }
}

impl MmOom {
    /// Not reaped, nothing read yet.
    pub const fn new() -> Self {
        MmOom { skip: AtomicBool::new(false), last: [const { AtomicU64::new(0) }; 5] }
    }

    /// The counters of `locked` if the caller got the mmap lock (and
    /// remembers them), else the last ones read.
    pub fn read(&self, locked: Option<&UserMm>) -> OomMm {
        let mm = match locked {
            Some(mm) => {
                let now = OomMm::of(mm);
                let values = [now.total_vm, now.rss_anon, now.rss_file, now.rss_shmem, now.pgtables_bytes];
                for (slot, v) in self.last.iter().zip(values) {
                    slot.store(v, Ordering::Relaxed);
                }
                now
            }
            None => {
                let [total_vm, rss_anon, rss_file, rss_shmem, pgtables_bytes] =
                    self.last.each_ref().map(|a| a.load(Ordering::Relaxed));
                OomMm { total_vm, rss_anon, rss_file, rss_shmem, swapents: 0, pgtables_bytes, oom_skip: false }
            }
        };
        OomMm { oom_skip: self.skip.load(Ordering::Acquire), ..mm }
    }

    /// Sets `MMF_OOM_SKIP`.
    pub fn set_skip(&self) {
        self.skip.store(true, Ordering::Release);
    }
}

/// The OOM killer the page allocator calls.
pub struct KernelOom;

static KERNEL_OOM: KernelOom = KernelOom;

/// Registers the OOM killer with the page allocator and starts the
/// reaper thread (Linux `oom_init`). Without memory for the thread, the
/// OOM killer still kills, and victims free their memory at exit.
pub fn init() {
    crate::mm::pgdat().set_oom_killer(&KERNEL_OOM);
    match sched::kthread_run("oom_reaper", oom_reaper) {
        Ok(_) => REAPER_RUNNING.store(true, Ordering::Release),
        Err(e) => warn!("oom_reaper: cannot start: {e:?}"),
    }
}

/// A task's identity for [`OOM_LOCK`].
fn lock_id(task: &Arc<Task>) -> usize {
    Arc::as_ptr(task) as usize
}

/// Sleeps `ns` without waking for signals (Linux
/// `schedule_timeout_uninterruptible`).
fn sleep_ns(ns: u64) {
    let deadline = crate::arch::x86_64::tsc::now_ns().saturating_add(ns);
    sched::wait::sleep_until_ns(deadline, || false);
}

/// What the OOM killer did, for its caller to act on after dropping
/// [`OOM_LOCK`].
enum OomOutcome {
    /// A victim was killed, or the caller is one: retry.
    Progress,
    /// A victim is still giving its memory back: sleep, then retry.
    Wait,
    /// Nothing can be done: fail the allocation.
    Fail,
}

impl OutOfMemory for KernelOom {
    fn out_of_memory(&self, pgdat: &PgData<'_>, gfp: Gfp, order: u32) -> bool {
        let Some(me) = sched::try_current() else { return false };
        let id = lock_id(&me);
        match OOM_LOCK.compare_exchange(0, id, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => {}
            // An allocation of the OOM killer's own: fail it.
            Err(holder) if holder == id => return false,
            Err(_) => {
                drop(me);
                sleep_ns(OOM_RETRY_SLEEP_NS);
                return true;
            }
        }
        let outcome = out_of_memory_locked(&me, pgdat, gfp, order);
        OOM_LOCK.store(0, Ordering::Release);
        drop(me);
        match outcome {
            OomOutcome::Progress => true,
            OomOutcome::Wait => {
                sleep_ns(OOM_RETRY_SLEEP_NS);
                true
            }
            OomOutcome::Fail => false,
        }
    }

    fn current_is_victim(&self) -> bool {
        sched::try_current().is_some_and(|me| me.proc.group.oom.victim() != OomVictim::No)
    }
}

/// Linux `out_of_memory` under `oom_lock`.
fn out_of_memory_locked(me: &Arc<Task>, pgdat: &PgData<'_>, gfp: Gfp, order: u32) -> OomOutcome {
    // Linux `task_will_free_mem(current)`: a task being killed needs no
    // other victim, only to get out.
    if crate::signal::fatal_signal_pending(me) && me.proc.mm().is_some() {
        mark_oom_victim(me);
        queue_oom_reaper(me);
        return OomOutcome::Progress;
    }
    let totalpages = pgdat.totalram_pages();
    let Some(tasks) = sched::try_all_tasks() else { return OomOutcome::Fail };
    // One candidate per process (Linux `for_each_process`): its first
    // live thread, or the task itself if it is on no thread list.
    let candidates = tasks.iter().filter(|t| {
        let threads = t.proc.group.threads.lock();
        threads.first().is_none_or(|first| Arc::ptr_eq(first, t))
    });
    let choice = mm::oom_kill::select_bad_process(candidates.map(|t| (t, oom_task(t))), totalpages);
    match choice {
        OomChoice::Victim { task, points } => {
            oom_kill_process(me, task, points, gfp, order, &tasks, pgdat);
            OomOutcome::Progress
        }
        OomChoice::Abort => OomOutcome::Wait,
        OomChoice::NoVictim => {
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                error!("Out of memory and no killable processes...");
            }
            OomOutcome::Fail
        }
    }
}

/// `task` as the policy weighs it.
fn oom_task(task: &Task) -> OomTask {
    let proc = &task.proc;
    OomTask {
        pid: proc.tgid(),
        kthread: !task.user.load(Ordering::Acquire),
        oom_score_adj: proc.group.oom.score_adj().adj,
        mm: proc.mm().map(|mm| mm.oom_mm()),
        in_vfork: proc.vfork_done.lock().is_some(),
        victim: proc.group.oom.victim(),
    }
}

/// Linux `mark_oom_victim`.
fn mark_oom_victim(task: &Task) {
    task.proc.group.oom.set_victim(OomVictim::Pending);
}

/// A victim's memory is back: it exited (Linux `exit_oom_victim` and
/// `exit_mmap`'s `MMF_OOM_SKIP`). Called by every exiting process after
/// it dropped its address space.
pub fn exit_oom_victim(task: &Task) {
    if task.proc.group.oom.victim() == OomVictim::Pending {
        task.proc.group.oom.set_victim(OomVictim::Reaped);
    }
}

/// Hands `task` to the reaper (Linux `queue_oom_reaper`).
fn queue_oom_reaper(task: &Arc<Task>) {
    if !REAPER_RUNNING.load(Ordering::Acquire) {
        return;
    }
    {
        let mut queue = REAP_QUEUE.lock();
        if queue.iter().flatten().any(|t| Arc::ptr_eq(t, task)) {
            return;
        }
        let Some(slot) = queue.iter_mut().find(|s| s.is_none()) else {
            drop(queue);
            warn!("oom_reaper: queue full, process {} frees its memory at exit", task.pid);
            return;
        };
        *slot = Some(task.clone());
    }
    REAPER_WAIT.wake_up_all();
}

/// Pages to KiB.
fn kb(pages: u64) -> u64 {
    pages.saturating_mul(mm::PAGE_SIZE >> 10)
}

/// Linux `oom_kill_process`: the report, then the kill.
fn oom_kill_process(
    me: &Arc<Task>,
    victim: &Arc<Task>,
    points: i64,
    gfp: Gfp,
    order: u32,
    tasks: &[Arc<Task>],
    pgdat: &PgData<'_>,
) {
    dump_header(me, gfp, order, tasks, pgdat);
    info!(
        "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),global_oom,task={},pid={},uid={},points={points}",
        victim.comm(),
        victim.pid,
        victim.proc.cred.lock().uid.0
    );
    __oom_kill_process(victim, tasks, pgdat, "Out of memory");
}

/// Linux `dump_header`: who asked, the memory state, every task.
fn dump_header(me: &Task, gfp: Gfp, order: u32, tasks: &[Arc<Task>], pgdat: &PgData<'_>) {
    warn!(
        "{} invoked oom-killer: gfp_mask={:#x}({:?}), order={order}, oom_score_adj={}",
        me.comm(),
        gfp.bits(),
        gfp,
        me.proc.group.oom.score_adj().adj
    );
    warn!("CPU: {} PID: {} Comm: {}", crate::percpu::smp_processor_id(), me.pid, me.comm());
    let _ = fmt::write(&mut LineLog::new(), format_args!("{}", mm::show_mem::ShowMem(pgdat)));
    dump_tasks(tasks);
}

/// Linux `dump_tasks` (6.1's columns): every killable task with an
/// address space.
fn dump_tasks(tasks: &[Arc<Task>]) {
    info!("Tasks state (memory values in pages):");
    info!("[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name");
    for task in tasks {
        let t = oom_task(task);
        if t.kthread || t.pid == 1 {
            continue;
        }
        let Some(mm) = t.mm else { continue };
        info!(
            "[{:7}] {:5} {:5} {:8} {:8} {:14} {:8}         {:5} {}",
            task.pid,
            task.proc.cred.lock().uid.0,
            task.pid,
            mm.total_vm,
            mm.rss(),
            mm.pgtables_bytes,
            mm.swapents,
            t.oom_score_adj,
            task.comm()
        );
    }
}

/// Linux `__oom_kill_process`: `SIGKILL` to the victim and every other
/// process on its address space, the victim marked and queued for the
/// reaper, `oom_kill` counted, the kill logged.
fn __oom_kill_process(victim: &Arc<Task>, tasks: &[Arc<Task>], pgdat: &PgData<'_>, message: &str) {
    let Some(mm) = victim.proc.mm() else {
        info!("OOM victim {} ({}) is already exiting. Skip killing the task", victim.pid, victim.comm());
        return;
    };
    let stats = mm.oom_mm();
    mark_oom_victim(victim);
    // The reaper is queued before the victim is woken, so that on one
    // CPU it gets to a victim that was asleep before the victim runs.
    queue_oom_reaper(victim);
    crate::signal::send_signal(victim, uapi::signal::SIGKILL, None);
    pgdat.count_vm_event(VmEventItem::OomKill);
    error!(
        "{message}: Killed process {} ({}) total-vm:{}kB, anon-rss:{}kB, file-rss:{}kB, shmem-rss:{}kB, UID:{} pgtables:{}kB oom_score_adj:{}",
        victim.pid,
        victim.comm(),
        kb(stats.total_vm),
        kb(stats.rss_anon),
        kb(stats.rss_file),
        kb(stats.rss_shmem),
        victim.proc.cred.lock().uid.0,
        stats.pgtables_bytes >> 10,
        victim.proc.group.oom.score_adj().adj
    );
    for other in tasks {
        if Arc::ptr_eq(other, victim) || !other.proc.mm().is_some_and(|m| Arc::ptr_eq(&m, &mm)) {
            continue;
        }
        let o = oom_task(other);
        if o.kthread || o.pid == 1 || o.oom_score_adj == mm::oom_kill::OOM_SCORE_ADJ_MIN {
            info!("oom killer: process {} ({}) shares the victim's memory and is not killed", o.pid, other.comm());
            continue;
        }
        crate::signal::send_signal(other, uapi::signal::SIGKILL, None);
        mark_oom_victim(other);
    }
}

/// The reaper thread (Linux `oom_reaper`): takes victims off the queue
/// and reaps each.
fn oom_reaper() {
    loop {
        REAPER_WAIT.wait_event(|| REAP_QUEUE.lock().iter().any(Option::is_some));
        let next = REAP_QUEUE.lock().iter_mut().find_map(Option::take);
        if let Some(task) = next {
            oom_reap_task(&task);
        }
    }
}

/// Linux `oom_reap_task`: unmaps the victim's private memory without
/// waiting for it, retrying a busy mmap lock; marks the address space
/// skipped either way.
fn oom_reap_task(task: &Arc<Task>) {
    if let Some(mm) = task.proc.mm() {
        let reaped = (0..MAX_OOM_REAP_RETRIES).find_map(|attempt| {
            if attempt > 0 {
                sleep_ns(OOM_REAP_RETRY_NS);
            }
            oom_reap_task_mm(&mm)
        });
        match reaped {
            Some(now) => info!(
                "oom_reaper: reaped process {} ({}), now anon-rss:{}kB, file-rss:{}kB, shmem-rss:{}kB",
                task.pid,
                task.comm(),
                kb(now.rss_anon),
                kb(now.rss_file),
                kb(now.rss_shmem)
            ),
            None => info!("oom_reaper: unable to reap pid:{} ({})", task.pid, task.comm()),
        }
        mm.set_oom_skip();
    }
    if task.proc.group.oom.victim() == OomVictim::Pending {
        task.proc.group.oom.set_victim(OomVictim::Reaped);
    }
}

/// One try (Linux `oom_reap_task_mm`): the counters left, or `None` if
/// the mmap lock was busy.
fn oom_reap_task_mm(mm: &Mm) -> Option<OomMm> {
    let guard = mm.mmap_read_trylock()?;
    guard.oom_reap_task_mm();
    Some(OomMm::of(&guard))
}

/// A user fault that got no memory (Linux `pagefault_out_of_memory`): a
/// task being killed just returns to die; otherwise the allocation
/// failed without the OOM killer freeing anything (a mask that may not
/// kill, no killable task left), and the faulting task is killed, where
/// Linux retries the fault (and would panic with no killable task).
pub fn pagefault_out_of_memory(address: u64) {
    let me = sched::current();
    if crate::signal::fatal_signal_pending(&me) {
        return;
    }
    error!("Out of memory: killed process {} ({}) faulting at {address:#x}", me.pid, me.comm());
    crate::signal::send_signal(&me, uapi::signal::SIGKILL, None);
}

/// `/proc/PID/oom_score` (Linux `proc_oom_score`).
pub fn proc_oom_score(task: &Task) -> u64 {
    let totalpages = crate::mm::pgdat().totalram_pages();
    mm::oom_kill::proc_oom_score(&oom_task(task), totalpages)
}

/// A write to `/proc/PID/oom_score_adj` of the task `pid` by the running
/// task (Linux `oom_score_adj_write` -> `__set_oom_adj`): parsed, checked
/// against the floor unless the writer has `CAP_SYS_RESOURCE`. `ESRCH`
/// once the task is gone.
pub fn write_oom_score_adj(pid: Pid, buf: &[u8]) -> Result<(), Errno> {
    static OOM_ADJ_MUTEX: crate::sync::Mutex<()> = crate::sync::Mutex::new(());
    let new = mm::oom_kill::parse_oom_score_adj(buf)?;
    let task = sched::find_task_by_pid(pid).ok_or(Errno::ESRCH)?;
    let _serial = OOM_ADJ_MUTEX.lock();
    let privileged = crate::cred::capable(uapi::capability::CAP_SYS_RESOURCE);
    let set = mm::oom_kill::may_set_oom_score_adj(task.proc.group.oom.score_adj(), new, privileged)?;
    task.proc.group.oom.adj.store(set.adj, Ordering::Relaxed);
    task.proc.group.oom.adj_min.store(set.min, Ordering::Relaxed);
    Ok(())
}

/// Logs what is written to it a line at a time, as Linux's report prints
/// a `printk` per line; a line longer than the buffer is cut.
struct LineLog {
    buf: [u8; 160],
    len: usize,
}

impl LineLog {
    fn new() -> Self {
        LineLog { buf: [0; 160], len: 0 }
    }

    fn flush(&mut self) {
        let line = core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?");
        info!("{line}");
        self.len = 0;
    }
}

impl fmt::Write for LineLog {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if b == b'\n' {
                self.flush();
            } else if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

impl Drop for LineLog {
    fn drop(&mut self) {
        if self.len > 0 {
            self.flush();
        }
    }
}
