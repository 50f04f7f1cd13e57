//! Anonymous pipes (Linux `fs/pipe.c`): `pipe`/`pipe2`, a bounded byte
//! buffer between a read end and a write end.
//!
//! Semantics kept from Linux: a read returns what is there (at most the
//! request), blocks while the pipe is empty and has writers, and returns 0
//! (end of file) once every write end is closed; a write of at most
//! [`PIPE_BUF`] bytes is atomic (it waits for room for all of it), a longer
//! one may be split; a write with no read end left raises SIGPIPE and
//! fails with EPIPE; `O_NONBLOCK` turns waits into EAGAIN; a signal
//! interrupts a wait with EINTR when nothing was transferred yet, else the
//! count so far is returned.
//!
//! Differences: the buffer is one ring of [`PIPE_DEF_BUFFERS`] pages'
//! worth of bytes rather than an array of page buffers (no splice, no
//! `F_SETPIPE_SZ`, no packet mode); an interrupted wait returns EINTR
//! instead of restarting (no -ERESTARTSYS / SA_RESTART yet).
//!
//! Lock order: a pipe's `state` lock is a leaf [`SpinLock`] (process
//! context only); it is never held across a sleep or a wake-up, and the
//! buffer grows under it with `GFP_ATOMIC`.

#![forbid(unsafe_code)]

use alloc::collections::VecDeque;
use alloc::sync::Arc;

use uapi::errno::Errno;

use crate::sched::{self, wait::WaitQueue};
use crate::signal;
use crate::sync::SpinLock;

/// Writes up to this size are atomic (Linux `PIPE_BUF`).
pub const PIPE_BUF: usize = 4096;
/// Pages of buffer per pipe (Linux `PIPE_DEF_BUFFERS`).
pub const PIPE_DEF_BUFFERS: usize = 16;
/// Bytes a pipe holds.
pub const PIPE_SIZE: usize = PIPE_DEF_BUFFERS * 4096;

struct PipeState {
    buf: VecDeque<u8>,
    readers: u32,
    writers: u32,
}

/// One pipe (Linux `struct pipe_inode_info`).
pub struct Pipe {
    state: SpinLock<PipeState>,
    /// Readers wait here for data or the last writer's close.
    rd_wait: WaitQueue,
    /// Writers wait here for room or the last reader's close.
    wr_wait: WaitQueue,
}

/// One end of a pipe, owned by an open file: dropping it is Linux's
/// `pipe_release`.
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    write: bool,
}

/// A new pipe's read and write ends (Linux `create_pipe_files`), or
/// `ENOMEM`. The buffer is allocated whole here, with a context that may
/// reclaim, so that writes never allocate under the state's spin lock
/// (Linux allocates a pipe's pages under its sleeping `pipe->mutex`).
pub fn create_pipe() -> Result<(PipeEnd, PipeEnd), Errno> {
    let mut buf = VecDeque::new();
    buf.try_reserve_exact(PIPE_SIZE).map_err(|_| Errno::ENOMEM)?;
    let pipe = Arc::new(Pipe {
        state: SpinLock::new(PipeState { buf, readers: 1, writers: 1 }),
        rd_wait: WaitQueue::new(),
        wr_wait: WaitQueue::new(),
    });
    Ok((PipeEnd { pipe: pipe.clone(), write: false }, PipeEnd { pipe, write: true }))
}

fn interrupted() -> bool {
    signal::signal_pending(&sched::current())
}

impl PipeEnd {
    /// Puts back `bytes` a read took but could not deliver (its user
    /// buffer faulted), ahead of everything else: Linux consumes only what
    /// it copied. With two processes reading one pipe at once, the other's
    /// read may have taken later bytes meanwhile.
    pub fn unread(&self, bytes: &[u8]) {
        let mut s = self.pipe.state.lock();
        for &b in bytes.iter().rev() {
            s.buf.push_front(b);
        }
    }

    /// Linux `pipe_read`.
    pub fn read(&self, out: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if self.write {
            return Err(Errno::EBADF);
        }
        if out.is_empty() {
            return Ok(0);
        }
        let pipe = &*self.pipe;
        loop {
            {
                let mut s = pipe.state.lock();
                if !s.buf.is_empty() {
                    let n = out.len().min(s.buf.len());
                    for (dst, src) in out.iter_mut().zip(s.buf.drain(..n)) {
                        *dst = src;
                    }
                    drop(s);
                    pipe.wr_wait.wake_up_all();
                    return Ok(n);
                }
                if s.writers == 0 {
                    return Ok(0);
                }
            }
            if nonblock {
                return Err(Errno::EAGAIN);
            }
            let ready = pipe.rd_wait.wait_event_with(true, interrupted, || {
                let s = pipe.state.lock();
                !s.buf.is_empty() || s.writers == 0
            });
            if !ready {
                return Err(Errno::EINTR);
            }
        }
    }

    /// Linux `pipe_write`.
    pub fn write(&self, data: &[u8], nonblock: bool) -> Result<usize, Errno> {
        if !self.write {
            return Err(Errno::EBADF);
        }
        if data.is_empty() {
            // "Null write succeeds" (Linux), even with no reader.
            return Ok(0);
        }
        let pipe = &*self.pipe;
        // A write of at most PIPE_BUF bytes goes in whole or not at all.
        let atomic = data.len() <= PIPE_BUF;
        let mut done = 0;
        loop {
            {
                let mut s = pipe.state.lock();
                if s.readers == 0 {
                    drop(s);
                    signal::send_signal(&sched::current(), uapi::signal::SIGPIPE, None);
                    return if done > 0 { Ok(done) } else { Err(Errno::EPIPE) };
                }
                let room = PIPE_SIZE - s.buf.len();
                let want = data.len() - done;
                if room >= want || (!atomic && room > 0) {
                    let n = room.min(want);
                    s.buf.extend(&data[done..done + n]);
                    done += n;
                    drop(s);
                    pipe.rd_wait.wake_up_all();
                    if done == data.len() {
                        return Ok(done);
                    }
                    continue;
                }
            }
            if nonblock {
                return if done > 0 { Ok(done) } else { Err(Errno::EAGAIN) };
            }
            let need = if atomic { data.len() } else { 1 };
            let ready = pipe.wr_wait.wait_event_with(true, interrupted, || {
                let s = pipe.state.lock();
                s.readers == 0 || PIPE_SIZE - s.buf.len() >= need
            });
            if !ready {
                return if done > 0 { Ok(done) } else { Err(Errno::EINTR) };
            }
        }
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let mut s = self.pipe.state.lock();
        if self.write {
            s.writers -= 1;
        } else {
            s.readers -= 1;
        }
        drop(s);
        // The other side may be waiting for exactly this close.
        self.pipe.rd_wait.wake_up_all();
        self.pipe.wr_wait.wake_up_all();
    }
}
