//! Intrusive lists of tasks (Linux `struct list_head` embedded in
//! `task_struct`: the run queue's `run_list`, a wait queue entry), so that
//! queueing a task allocates nothing and works in interrupt context.
//!
//! A [`TaskList`] threads tasks through one [`TaskLink`] field of each
//! [`Task`] (chosen by the list's accessor), doubly linked with head and
//! tail, and holds one strong reference per queued task: `push_back` takes
//! an `Arc<Task>`, `pop_front` and `remove` give it back. A task is on at
//! most one list per link field at a time; the link remembers which list
//! (compared by address) so that membership is answered without a walk.
//!
//! Locking: a list and the links of the tasks on it are protected by the
//! lock around the list (a [`crate::sync::SpinLockIrq`]); a link's `list`
//! word is atomic because a task asks "am I on this list?" under that
//! list's lock while it may be on another (then it only reads it).

use alloc::sync::Arc;
use core::cell::Cell;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};

use super::Task;

/// A task's place in one [`TaskList`] (Linux `list_head`).
pub struct TaskLink {
    prev: Cell<*const Task>,
    next: Cell<*const Task>,
    list: AtomicPtr<TaskList>,
}

impl TaskLink {
    /// On no list.
    pub const fn new() -> Self {
        TaskLink { prev: Cell::new(ptr::null()), next: Cell::new(ptr::null()), list: AtomicPtr::new(ptr::null_mut()) }
    }
}

impl Default for TaskLink {
    fn default() -> Self {
        Self::new()
    }
}

/// A FIFO of tasks through one link field.
pub struct TaskList {
    head: *const Task,
    tail: *const Task,
    link: fn(&Task) -> &TaskLink,
}

// SAFETY: the raw pointers are strong references to tasks (Arc::into_raw),
// which are Send and Sync; the list is only used under its lock.
unsafe impl Send for TaskList {}

impl TaskList {
    /// An empty list threading tasks through the link `link` returns.
    pub const fn new(link: fn(&Task) -> &TaskLink) -> Self {
        TaskList { head: ptr::null(), tail: ptr::null(), link }
    }

    fn id(&self) -> *mut TaskList {
        ptr::from_ref(self).cast_mut()
    }

    /// Whether no task is queued.
    pub fn is_empty(&self) -> bool {
        self.head.is_null()
    }

    /// Whether `task` is on this list.
    pub fn contains(&self, task: &Task) -> bool {
        (self.link)(task).list.load(Ordering::Relaxed) == self.id()
    }

    /// Queues `task` at the tail. A task already on this list stays where
    /// it is (and the extra reference is dropped).
    pub fn push_back(&mut self, task: Arc<Task>) {
        if self.contains(&task) {
            return;
        }
        debug_assert!(
            (self.link)(&task).list.load(Ordering::Relaxed).is_null(),
            "task {} on two lists through one link",
            task.pid
        );
        let raw = Arc::into_raw(task);
        // SAFETY: `raw` is the reference the list now holds.
        let link = (self.link)(unsafe { &*raw });
        link.prev.set(self.tail);
        link.next.set(ptr::null());
        link.list.store(self.id(), Ordering::Relaxed);
        if self.tail.is_null() {
            self.head = raw;
        } else {
            // SAFETY: `tail` is a queued task, kept alive by the list's
            // reference; its link is ours under the list's lock.
            (self.link)(unsafe { &*self.tail }).next.set(raw);
        }
        self.tail = raw;
    }

    /// Queues `task` before the first task for which `before` is true
    /// (at the tail if none): a sorted insert.
    pub fn insert_before(&mut self, task: Arc<Task>, mut before: impl FnMut(&Task) -> bool) {
        if self.contains(&task) {
            return;
        }
        let mut at = self.head;
        // SAFETY: every pointer on the list is a live queued task.
        while !at.is_null() && !before(unsafe { &*at }) {
            // SAFETY: as above.
            at = (self.link)(unsafe { &*at }).next.get();
        }
        if at.is_null() {
            self.push_back(task);
            return;
        }
        // SAFETY: `at` is a queued task.
        let at_link = (self.link)(unsafe { &*at });
        let prev = at_link.prev.get();
        let raw = Arc::into_raw(task);
        // SAFETY: `raw` is the reference the list now holds.
        let link = (self.link)(unsafe { &*raw });
        link.prev.set(prev);
        link.next.set(at);
        link.list.store(self.id(), Ordering::Relaxed);
        at_link.prev.set(raw);
        if prev.is_null() {
            self.head = raw;
        } else {
            // SAFETY: `prev` is a queued task.
            (self.link)(unsafe { &*prev }).next.set(raw);
        }
    }

    /// The first task, without dequeuing it.
    pub fn front(&self) -> Option<&Task> {
        // SAFETY: a queued task lives while the list holds it, and the
        // borrow of the list keeps it queued.
        (!self.head.is_null()).then(|| unsafe { &*self.head })
    }

    /// Dequeues the first task.
    pub fn pop_front(&mut self) -> Option<Arc<Task>> {
        let head = self.head;
        // SAFETY: `head` is a queued task.
        (!head.is_null()).then(|| self.unlink(unsafe { &*head }))
    }

    /// Dequeues `task` if it is on this list.
    pub fn remove(&mut self, task: &Task) -> Option<Arc<Task>> {
        self.contains(task).then(|| self.unlink(task))
    }

    /// Unlinks a task known to be on this list and hands back the list's
    /// reference to it.
    fn unlink(&mut self, task: &Task) -> Arc<Task> {
        let link = (self.link)(task);
        let (prev, next) = (link.prev.get(), link.next.get());
        if prev.is_null() {
            self.head = next;
        } else {
            // SAFETY: `prev` is a queued task.
            (self.link)(unsafe { &*prev }).next.set(next);
        }
        if next.is_null() {
            self.tail = prev;
        } else {
            // SAFETY: `next` is a queued task.
            (self.link)(unsafe { &*next }).prev.set(prev);
        }
        link.prev.set(ptr::null());
        link.next.set(ptr::null());
        link.list.store(ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: the task was queued by `push_back`/`insert_before`, which
        // leaked this reference with Arc::into_raw; it is taken back once.
        unsafe { Arc::from_raw(ptr::from_ref(task)) }
    }

    /// Calls `f` on every queued task, head first.
    pub fn for_each(&self, mut f: impl FnMut(&Task)) {
        let mut at = self.head;
        while !at.is_null() {
            // SAFETY: every pointer on the list is a live queued task.
            let task = unsafe { &*at };
            f(task);
            at = (self.link)(task).next.get();
        }
    }
}

impl Drop for TaskList {
    fn drop(&mut self) {
        while self.pop_front().is_some() {}
    }
}
