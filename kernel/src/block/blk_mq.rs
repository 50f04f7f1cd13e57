//! A disk's request queue (Linux `block/blk-mq.c`, `blk-merge.c`,
//! `blk-mq-sched.c`'s merging without an elevator).
//!
//! Bio fragments become requests. A request is a run of sectors and the
//! memory for them as a list of physically contiguous segments (Linux's
//! request with its bios' bvecs, as `blk_rq_map_sg` hands them to the
//! driver): up to the queue's `max_segments` of them and `max_sectors` in
//! all. A fragment that continues a queued, not yet dispatched request of
//! the same operation on the disk is merged into it instead, its segments
//! appended (joined with the last one where the memory follows on) or put
//! in front (Linux `blk_attempt_plug_merge`, `bio_attempt_back_merge`,
//! `bio_attempt_front_merge`, with `ll_back_merge_fn`'s limits).
//! Requests go to the driver in arrival order while it takes them
//! ([`BlkMqOps::queue_rq`] gives each a tag, Linux's driver tag); a flush
//! waits until nothing is in flight and is then carried out
//! synchronously ([`BlkMqOps::flush`]): it orders every
//! write queued before it, as Linux's preflush does.
//!
//! [`RequestQueue::run`] does the work from both ends: it reaps the
//! driver's completions (with `ack`, from the interrupt handler), refills
//! the device, and then, with the queue lock dropped, accounts and ends
//! the finished requests' bios, in batches of at most
//! [`MAX_QUEUE_DEPTH`] so that the interrupt path allocates nothing.
//!
//! Lock order: queue lock (a [`SpinLockIrq`]: the interrupt handler takes
//! it) -> the driver's state (inside it) -> printk. End-io callbacks run
//! with no block-layer lock held, so they may submit more bios.

#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;

use mm::PhysAddr;

use super::bio::BioState;
use super::genhd::DiskStats;
use super::{BlkError, ReqOp};
use crate::arch::x86_64::tsc;
use crate::sync::SpinLockIrq;

/// Most requests a driver may keep in flight (the virtio-drivers
/// virtqueue holds 16), and the size of a completion batch.
pub const MAX_QUEUE_DEPTH: usize = 16;

/// How far back from the tail of the queue a new fragment looks for a
/// request to merge with (Linux looks at the plug list and the last
/// merged request).
const MERGE_LOOKBACK: usize = 16;

/// A piece of one bio within the queue's limits: a run of sectors and
/// its memory.
#[derive(Debug)]
pub(super) struct Fragment {
    pub(super) sector: u64,
    pub(super) nr_sectors: u32,
    pub(super) segs: Vec<PhysSeg>,
}

/// One physically contiguous piece of a request's memory (Linux's
/// `struct scatterlist` entry as `blk_rq_map_sg` fills it): direct-mapped
/// RAM, `len` bytes from `phys`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysSeg {
    /// Physical address of the first byte.
    pub phys: PhysAddr,
    /// Bytes, not 0.
    pub len: u32,
}

impl PhysSeg {
    fn end(&self) -> u64 {
        self.phys.as_u64() + u64::from(self.len)
    }
}

/// Appends `segs` to `to`, joining the two segments where the memory
/// follows on (Linux `blk_phys_contig_segment`). The caller reserved
/// room for them.
fn append_segs(to: &mut Vec<PhysSeg>, segs: &[PhysSeg]) {
    let mut rest = segs;
    if let (Some(last), Some(first)) = (to.last_mut(), segs.first())
        && last.end() == first.phys.as_u64()
        && let Some(len) = last.len.checked_add(first.len)
    {
        last.len = len;
        rest = &segs[1..];
    }
    to.extend_from_slice(rest);
}

/// Segments `a` followed by `b` would take, joined where they meet.
fn joined_len(a: &[PhysSeg], b: &[PhysSeg]) -> usize {
    let joins = match (a.last(), b.first()) {
        (Some(l), Some(f)) => l.end() == f.phys.as_u64() && l.len.checked_add(f.len).is_some(),
        _ => false,
    };
    a.len() + b.len() - usize::from(joins)
}

/// What a driver is asked to do: a transfer of a run of sectors to or
/// from a list of memory segments, or a flush (Linux `struct request` as
/// `queue_rq` sees it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestDesc {
    /// The operation.
    pub op: ReqOp,
    /// First sector.
    pub sector: u64,
    /// Sectors (0 for a flush).
    pub nr_sectors: u32,
    /// The memory, in order: at most the queue's `max_segments`, their
    /// lengths adding up to `nr_sectors` sectors (none for a flush).
    pub segs: Vec<PhysSeg>,
}

/// Why [`BlkMqOps::queue_rq`] did not start a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueRqError {
    /// The device is full; retry after a completion (`BLK_STS_RESOURCE`).
    Busy,
    /// The request failed at once.
    Failed(BlkError),
}

/// A block driver (Linux `struct blk_mq_ops`). Every method runs under
/// the queue lock, interrupts off: none may sleep or allocate.
pub trait BlkMqOps: Send {
    /// Starts `rq` on the device and returns its tag, below
    /// [`MAX_QUEUE_DEPTH`] and not in use. The memory of `rq.segs` stays
    /// valid until the tag completes.
    fn queue_rq(&mut self, rq: &RequestDesc) -> Result<u16, QueueRqError>;
    /// Takes one finished request off the device: its tag and result.
    fn complete_one(&mut self) -> Option<(u16, Result<(), BlkError>)>;
    /// Flushes the device's write cache, synchronously; called only with
    /// nothing in flight.
    fn flush(&mut self) -> Result<(), BlkError>;
    /// Acknowledges the device's interrupt.
    fn ack_interrupt(&mut self);
}

struct Request {
    desc: RequestDesc,
    /// The bios whose fragments it carries, one entry per fragment.
    bios: Vec<Arc<BioState>>,
    /// When it was queued (Linux `rq->start_time_ns`).
    start_ns: u64,
}

struct QueueState {
    ops: Box<dyn BlkMqOps>,
    pending: VecDeque<Request>,
    inflight: [Option<Request>; MAX_QUEUE_DEPTH],
    nr_inflight: usize,
    /// The most requests the device has held at once.
    peak_inflight: usize,
    stats: DiskStats,
    /// When `io_ticks` was last brought up to date.
    io_ticks_stamp: u64,
}

/// What one request may carry (Linux `struct queue_limits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Sectors (Linux `max_sectors`), at least 1.
    pub max_sectors: u32,
    /// Physically contiguous memory segments (Linux `max_segments`), at
    /// least 1: a driver that hands the device one buffer per request
    /// says 1.
    pub max_segments: usize,
}

/// A disk's queue (Linux `struct request_queue` with one hardware queue).
pub struct RequestQueue {
    state: SpinLockIrq<QueueState>,
    limits: Limits,
    /// The disk's name, for error reports.
    name: alloc::string::String,
}

/// Finished requests, ended after the queue lock is dropped.
struct Batch {
    done: [Option<(Request, Result<(), BlkError>)>; MAX_QUEUE_DEPTH],
    len: usize,
}

impl Batch {
    fn new() -> Batch {
        Batch { done: [const { None }; MAX_QUEUE_DEPTH], len: 0 }
    }

    fn is_full(&self) -> bool {
        self.len == MAX_QUEUE_DEPTH
    }

    fn push(&mut self, rq: Request, result: Result<(), BlkError>) {
        if let Some(slot) = self.done.get_mut(self.len) {
            *slot = Some((rq, result));
            self.len += 1;
        }
    }
}

fn stat_index(op: ReqOp) -> usize {
    match op {
        ReqOp::Read => 0,
        ReqOp::Write => 1,
        ReqOp::Flush => 2,
    }
}

impl QueueState {
    /// Linux `update_io_ticks`: time with requests outstanding.
    fn update_io_ticks(&mut self, now: u64) {
        if self.stats.in_flight > 0 {
            self.stats.io_ticks_ns += now.saturating_sub(self.io_ticks_stamp);
        }
        self.io_ticks_stamp = now;
    }

    /// Merges `new`, one bio's request, into a queued request it
    /// continues or precedes on the disk, within the limits; gives it back
    /// if none takes it (or there is no memory to grow one's lists).
    fn try_merge(&mut self, mut new: Request, limits: Limits) -> Option<Request> {
        let op = new.desc.op;
        for rq in self.pending.iter_mut().rev().take(MERGE_LOOKBACK) {
            if rq.desc.op == ReqOp::Flush {
                // Nothing merges across a flush.
                return Some(new);
            }
            let (d, f) = (&mut rq.desc, &mut new.desc);
            if d.op != op || d.nr_sectors + f.nr_sectors > limits.max_sectors {
                continue;
            }
            let back = d.sector + u64::from(d.nr_sectors) == f.sector;
            let front = f.sector + u64::from(f.nr_sectors) == d.sector;
            let nr_segs = match (back, front) {
                (true, _) => joined_len(&d.segs, &f.segs),
                (false, true) => joined_len(&f.segs, &d.segs),
                (false, false) => continue,
            };
            if nr_segs > limits.max_segments || rq.bios.try_reserve(new.bios.len()).is_err() {
                continue;
            }
            if back {
                if d.segs.try_reserve(f.segs.len()).is_err() {
                    continue;
                }
                append_segs(&mut d.segs, &f.segs);
            } else {
                if f.segs.try_reserve(d.segs.len()).is_err() {
                    continue;
                }
                append_segs(&mut f.segs, &d.segs);
                d.segs = core::mem::take(&mut f.segs);
                d.sector = f.sector;
            }
            d.nr_sectors += f.nr_sectors;
            rq.bios.append(&mut new.bios);
            self.stats.merges[stat_index(op)] += 1;
            return None;
        }
        Some(new)
    }

    /// Reaps finished requests from the driver into `batch`.
    fn reap(&mut self, batch: &mut Batch, name: &str) {
        while !batch.is_full() {
            let Some((tag, result)) = self.ops.complete_one() else { break };
            let Some(rq) = self.inflight.get_mut(usize::from(tag)).and_then(Option::take) else {
                log::error!("{name}: completion for tag {tag}, which is not in flight; ignored");
                continue;
            };
            self.nr_inflight -= 1;
            self.account_done(&rq);
            batch.push(rq, result);
        }
    }

    /// Linux `blk_account_io_done`.
    fn account_done(&mut self, rq: &Request) {
        let now = tsc::now_ns();
        self.update_io_ticks(now);
        self.stats.in_flight -= 1;
        let i = stat_index(rq.desc.op);
        self.stats.ios[i] += 1;
        if i < 2 {
            self.stats.sectors[i] += u64::from(rq.desc.nr_sectors);
        }
        self.stats.nsecs[i] += now.saturating_sub(rq.start_ns);
    }

    /// Hands queued requests to the driver while it takes them.
    fn dispatch(&mut self, batch: &mut Batch, name: &str) {
        while let Some(front) = self.pending.front() {
            if front.desc.op == ReqOp::Flush {
                if self.nr_inflight > 0 || batch.is_full() {
                    return;
                }
                let result = self.ops.flush();
                if let Some(rq) = self.pending.pop_front() {
                    self.account_done(&rq);
                    batch.push(rq, result);
                }
                continue;
            }
            if batch.is_full() {
                return;
            }
            match self.ops.queue_rq(&front.desc) {
                Ok(tag) => {
                    let Some(rq) = self.pending.pop_front() else { return };
                    match self.inflight.get_mut(usize::from(tag)) {
                        Some(slot @ None) => {
                            *slot = Some(rq);
                            self.nr_inflight += 1;
                            self.peak_inflight = self.peak_inflight.max(self.nr_inflight);
                        }
                        _ => {
                            log::error!("{name}: driver returned tag {tag}, which is busy or out of range");
                            self.account_done(&rq);
                            batch.push(rq, Err(BlkError::Io));
                        }
                    }
                }
                Err(QueueRqError::Busy) => return,
                Err(QueueRqError::Failed(e)) => {
                    if let Some(rq) = self.pending.pop_front() {
                        self.account_done(&rq);
                        batch.push(rq, Err(e));
                    }
                }
            }
        }
    }
}

impl RequestQueue {
    pub(super) fn new(ops: Box<dyn BlkMqOps>, limits: Limits, name: &str) -> RequestQueue {
        RequestQueue {
            state: SpinLockIrq::new(QueueState {
                ops,
                pending: VecDeque::new(),
                inflight: [const { None }; MAX_QUEUE_DEPTH],
                nr_inflight: 0,
                peak_inflight: 0,
                stats: DiskStats::default(),
                io_ticks_stamp: 0,
            }),
            limits: Limits { max_sectors: limits.max_sectors.max(1), max_segments: limits.max_segments.max(1) },
            name: name.into(),
        }
    }

    /// What one request may carry (Linux `queue_max_sectors`,
    /// `queue_max_segments`).
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Queues one bio's fragments, merging where possible. Their requests
    /// are allocated before the queue lock is taken; a fragment without
    /// memory for its request ends with [`BlkError::NoMemory`].
    pub(super) fn enqueue(&self, op: ReqOp, fragments: Vec<Fragment>, state: &Arc<BioState>) {
        let now = tsc::now_ns();
        let mut requests: Vec<Request> = Vec::new();
        if requests.try_reserve_exact(fragments.len()).is_err() {
            fragments.iter().for_each(|_| state.end_fragment(Err(BlkError::NoMemory)));
            return;
        }
        for f in fragments {
            let mut bios = Vec::new();
            if bios.try_reserve_exact(1).is_err() {
                state.end_fragment(Err(BlkError::NoMemory));
                continue;
            }
            bios.push(state.clone());
            let desc = RequestDesc { op, sector: f.sector, nr_sectors: f.nr_sectors, segs: f.segs };
            requests.push(Request { desc, bios, start_ns: now });
        }
        let mut s = self.state.lock();
        if s.pending.try_reserve(requests.len()).is_err() {
            drop(s);
            requests.iter().for_each(|_| state.end_fragment(Err(BlkError::NoMemory)));
            return;
        }
        for rq in requests {
            let unmerged = if op == ReqOp::Flush { Some(rq) } else { s.try_merge(rq, self.limits) };
            let Some(rq) = unmerged else { continue };
            s.update_io_ticks(now);
            s.stats.in_flight += 1;
            s.pending.push_back(rq);
        }
    }

    /// Reaps completions (acknowledging the interrupt first with `ack`),
    /// refills the device, and ends finished bios with the lock dropped,
    /// until a round finds nothing to do. Safe in hard-IRQ context.
    pub fn run(&self, ack: bool) {
        let mut ack = ack;
        loop {
            let mut batch = Batch::new();
            {
                let mut s = self.state.lock();
                if core::mem::take(&mut ack) {
                    s.ops.ack_interrupt();
                }
                s.reap(&mut batch, &self.name);
                s.dispatch(&mut batch, &self.name);
            }
            if batch.len == 0 {
                return;
            }
            for (rq, result) in batch.done.iter_mut().filter_map(Option::take) {
                if let Err(e) = result {
                    print_req_error(&self.name, &rq.desc, e);
                }
                for bio in &rq.bios {
                    bio.end_fragment(result);
                }
            }
        }
    }

    /// The disk's statistics now.
    pub fn stats(&self) -> DiskStats {
        let mut s = self.state.lock();
        s.update_io_ticks(tsc::now_ns());
        s.stats
    }

    /// Requests queued or in flight.
    pub fn nr_outstanding(&self) -> u64 {
        self.state.lock().stats.in_flight
    }

    /// The most requests the device has held at once since the last call
    /// (how deep the queue was used); starts the next period from the
    /// requests on the device now.
    pub fn take_peak_inflight(&self) -> usize {
        let mut s = self.state.lock();
        let peak = s.peak_inflight;
        s.peak_inflight = s.nr_inflight;
        peak
    }
}

/// Linux `blk_print_req_error`.
fn print_req_error(name: &str, rq: &RequestDesc, e: BlkError) {
    log::error!(
        "{} error, dev {name}, sector {} op {:#x}:({}) flags 0x0 phys_seg {} prio class 0",
        e.name(),
        rq.sector,
        rq.op.code(),
        rq.op.name(),
        rq.segs.len()
    );
}
