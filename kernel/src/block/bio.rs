//! Bios and their submission (Linux `block/bio.c`, `blk-core.c`
//! `submit_bio`/`submit_bio_noacct` checks, `bio.c` `submit_bio_wait`,
//! `blk-core.c` `blk_start_plug`).
//!
//! A bio is cut into fragments within the queue's limits (Linux
//! `bio_split_to_limits`): at most `max_sectors` each, their memory in at
//! most `max_segments` physically contiguous segments (a bio's segments
//! that follow on in memory count as one); the fragments share a
//! [`BioState`] that counts them down (Linux `__bi_remaining`, as with
//! chained split bios) and keeps the first error, and the last to complete
//! calls the bio's end-io with the bio's result.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};

use mm::arch::PhysMemory;
use mm::{PAGE_SIZE, Pfn, PhysAddr};

use super::blk_mq::{Fragment, PhysSeg};
use super::genhd::Gendisk;
use super::{BlkError, ReqOp, SECTOR_SIZE};
use crate::sched::wait::WaitQueue;
use crate::sync::SpinLockIrq;

/// A bio's completion: called once with the bio's result, in hard-IRQ
/// context (or in the submitter for a bio refused before queueing). It
/// must not sleep (Linux `bio_end_io_t`).
pub type EndIo = Box<dyn FnOnce(Result<(), BlkError>) + Send>;

/// One segment of a bio's memory (Linux `struct bio_vec`): `len` bytes at
/// `offset` into the frame `pfn`; a segment may run on into the frames
/// after `pfn` (Linux's multi-page bvecs).
#[doc(alias = "bio_vec")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BioVec {
    /// First frame.
    pub pfn: Pfn,
    /// Byte offset into it.
    pub offset: u32,
    /// Bytes.
    pub len: u32,
}

impl BioVec {
    fn phys(&self) -> PhysAddr {
        PhysAddr::new(self.pfn.phys().as_u64() + u64::from(self.offset))
    }
}

/// A block I/O (Linux `struct bio`).
pub struct Bio {
    pub(super) disk: Arc<Gendisk>,
    pub(super) op: ReqOp,
    pub(super) sector: u64,
    pub(super) vecs: Vec<BioVec>,
    end_io: Option<EndIo>,
}

impl Bio {
    /// An empty bio for `op` at `sector` of `disk` (Linux `bio_alloc` +
    /// `bi_iter.bi_sector`). A flush carries no pages.
    pub fn new(disk: &Arc<Gendisk>, op: ReqOp, sector: u64) -> Bio {
        Bio { disk: disk.clone(), op, sector, vecs: Vec::new(), end_io: None }
    }

    /// An empty bio with room for `nr_vecs` segments, so that adding them
    /// allocates nothing (Linux `bio_alloc`'s `nr_vecs`; Linux's comes
    /// from a mempool and cannot fail, ours is [`BlkError::NoMemory`]).
    pub fn with_capacity(disk: &Arc<Gendisk>, op: ReqOp, sector: u64, nr_vecs: usize) -> Result<Bio, BlkError> {
        let mut vecs = Vec::new();
        vecs.try_reserve_exact(nr_vecs).map_err(|_| BlkError::NoMemory)?;
        Ok(Bio { disk: disk.clone(), op, sector, vecs, end_io: None })
    }

    /// Appends `len` bytes at `offset` into frame `pfn` (Linux
    /// `bio_add_page`). Lengths must add up to whole sectors by the time
    /// the bio is submitted, and so must each run of segments that a
    /// request of the disk can carry. Beyond the room the bio was made
    /// with ([`Bio::with_capacity`]) this allocates.
    ///
    /// # Safety
    /// From [`submit_bio`] until the bio's end-io has run, the memory
    /// belongs to the device: it stays allocated, and nothing else writes
    /// it (for a write) or touches it at all (for a read). Linux holds a
    /// page reference for the same reason.
    pub unsafe fn add_page(&mut self, pfn: Pfn, offset: u32, len: u32) {
        self.vecs.push(BioVec { pfn, offset, len });
    }

    /// Sets the completion (Linux `bi_end_io`); without one, the result is
    /// dropped.
    pub fn set_end_io(&mut self, f: impl FnOnce(Result<(), BlkError>) + Send + 'static) {
        self.end_io = Some(Box::new(f));
    }

    /// Bytes to transfer.
    pub fn size(&self) -> u64 {
        self.vecs.iter().map(|v| u64::from(v.len)).sum()
    }

    /// The operation.
    pub fn op(&self) -> ReqOp {
        self.op
    }

    /// The disk.
    pub fn disk(&self) -> &Arc<Gendisk> {
        &self.disk
    }
}

/// What the fragments of one bio share: how many are still out, the
/// first error, and the end-io.
pub(super) struct BioState {
    remaining: AtomicU32,
    /// 0: no error; else `error_code`.
    error: AtomicU8,
    end_io: SpinLockIrq<Option<EndIo>>,
}

const ERRORS: [BlkError; 6] = [
    BlkError::Io,
    BlkError::BeyondEnd,
    BlkError::Invalid,
    BlkError::NotSupported,
    BlkError::ReadOnly,
    BlkError::NoMemory,
];

fn error_code(e: BlkError) -> u8 {
    ERRORS.iter().position(|x| *x == e).map_or(1, |i| i as u8 + 1)
}

impl BioState {
    /// One fragment done (Linux `bio_endio` on a chained piece): records
    /// the first error; the last fragment ends the bio.
    pub(super) fn end_fragment(&self, result: Result<(), BlkError>) {
        if let Err(e) = result {
            let _ = self.error.compare_exchange(0, error_code(e), Ordering::AcqRel, Ordering::Acquire);
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let result = match self.error.load(Ordering::Acquire) {
            0 => Ok(()),
            code => Err(ERRORS.get(usize::from(code) - 1).copied().unwrap_or(BlkError::Io)),
        };
        let end_io = self.end_io.lock().take();
        if let Some(f) = end_io {
            f(result);
        }
    }
}

/// Checks `bio` and cuts it into fragments (Linux `submit_bio_noacct`'s
/// checks, `bio_check_eod`, `bio_split_to_limits`).
fn prepare(bio: &Bio) -> Result<Vec<Fragment>, BlkError> {
    let disk = &bio.disk;
    if bio.op == ReqOp::Flush {
        if !bio.vecs.is_empty() {
            return Err(BlkError::Invalid);
        }
        return Ok(alloc::vec![Fragment { sector: 0, nr_sectors: 0, segs: Vec::new() }]);
    }
    if bio.op == ReqOp::Write && disk.read_only() {
        log::error!("Trying to write to read-only block-device {}", disk.name());
        return Err(BlkError::ReadOnly);
    }
    if bio.vecs.is_empty() || bio.vecs.iter().any(|v| v.len == 0) || !bio.size().is_multiple_of(SECTOR_SIZE) {
        return Err(BlkError::Invalid);
    }
    let nr_sectors = bio.size() / SECTOR_SIZE;
    if bio.sector.checked_add(nr_sectors).is_none_or(|end| end > disk.capacity()) {
        log::error!(
            "attempt to access beyond end of device\n{}: rw={}, sector={}, nr_sectors = {} limit={}",
            disk.name(),
            bio.op.code(),
            bio.sector,
            nr_sectors,
            disk.capacity()
        );
        return Err(BlkError::BeyondEnd);
    }
    let direct_map = crate::boot::DirectMap;
    for v in &bio.vecs {
        let last = PhysAddr::new(v.phys().as_u64() + u64::from(v.len) - 1);
        // The whole segment must be RAM the kernel maps (the device gets
        // physical addresses; a hole in between would be a bad address).
        let pages = (u64::from(v.offset) + u64::from(v.len)).div_ceil(PAGE_SIZE);
        if (0..pages).any(|i| direct_map.phys_to_virt(PhysAddr::new(v.pfn.phys().as_u64() + i * PAGE_SIZE)).is_none())
            || direct_map.phys_to_virt(last).is_none()
        {
            return Err(BlkError::Invalid);
        }
    }
    let limits = disk.queue().limits();
    split_to_limits(bio.sector, bio.vecs.iter().map(|v| (v.phys().as_u64(), u64::from(v.len))), limits)
}

/// Cuts memory pieces `(physical address, bytes)` that go to the disk
/// from `sector` on into fragments of at most `limits.max_sectors`, each
/// with at most `limits.max_segments` physically contiguous segments
/// (Linux `bio_split_to_limits`). A fragment must end on a sector
/// boundary, or the device would see a partial sector: a bio whose
/// segment limit falls inside a sector is [`BlkError::Invalid`].
fn split_to_limits(
    sector: u64,
    pieces: impl Iterator<Item = (u64, u64)>,
    limits: super::blk_mq::Limits,
) -> Result<Vec<Fragment>, BlkError> {
    let max_bytes = u64::from(limits.max_sectors) * SECTOR_SIZE;
    let mut fragments: Vec<Fragment> = Vec::new();
    let mut current = Fragment { sector, nr_sectors: 0, segs: Vec::new() };
    let mut bytes = 0u64;
    let mut close = |current: &mut Fragment, bytes: &mut u64| -> Result<(), BlkError> {
        if !bytes.is_multiple_of(SECTOR_SIZE) {
            return Err(BlkError::Invalid);
        }
        let next = Fragment { sector: current.sector + *bytes / SECTOR_SIZE, nr_sectors: 0, segs: Vec::new() };
        let mut done = core::mem::replace(current, next);
        done.nr_sectors = (*bytes / SECTOR_SIZE) as u32;
        fragments.try_reserve(1).map_err(|_| BlkError::NoMemory)?;
        fragments.push(done);
        *bytes = 0;
        Ok(())
    };
    for (mut phys, mut left) in pieces {
        while left > 0 {
            if bytes == max_bytes {
                close(&mut current, &mut bytes)?;
            }
            let take = left.min(max_bytes - bytes).min(u64::from(u32::MAX));
            let nr_segs = current.segs.len();
            match current.segs.last_mut() {
                Some(last)
                    if last.phys.as_u64() + u64::from(last.len) == phys
                        && u64::from(last.len) + take <= u64::from(u32::MAX) =>
                {
                    last.len += take as u32;
                }
                _ if nr_segs == limits.max_segments => {
                    close(&mut current, &mut bytes)?;
                    continue;
                }
                _ => {
                    current.segs.try_reserve(1).map_err(|_| BlkError::NoMemory)?;
                    current.segs.push(PhysSeg { phys: PhysAddr::new(phys), len: take as u32 });
                }
            }
            bytes += take;
            phys += take;
            left -= take;
        }
    }
    if bytes > 0 {
        close(&mut current, &mut bytes)?;
    }
    Ok(fragments)
}

/// A checked bio, ready to queue.
struct Prepared {
    disk: Arc<Gendisk>,
    op: ReqOp,
    fragments: Vec<Fragment>,
    state: Arc<BioState>,
}

impl Prepared {
    fn enqueue(self) -> Arc<Gendisk> {
        self.disk.queue().enqueue(self.op, self.fragments, &self.state);
        self.disk
    }
}

/// Checks `bio`; a bad one is ended here, with its error.
fn into_parts(mut bio: Bio) -> Option<Prepared> {
    let end_io = bio.end_io.take();
    match prepare(&bio) {
        Ok(fragments) => {
            let state = Arc::new(BioState {
                remaining: AtomicU32::new(fragments.len() as u32),
                error: AtomicU8::new(0),
                end_io: SpinLockIrq::new(end_io),
            });
            Some(Prepared { disk: bio.disk, op: bio.op, fragments, state })
        }
        Err(e) => {
            if let Some(f) = end_io {
                f(Err(e));
            }
            None
        }
    }
}

/// Submits `bio` (Linux `submit_bio`): queued, merged where it continues
/// a queued request, dispatched while the device has room; the end-io
/// reports the result. Does not sleep. A bio that fails its checks ends at
/// once, with the error, before this returns.
pub fn submit_bio(bio: Bio) {
    if let Some(prepared) = into_parts(bio) {
        prepared.enqueue().queue().run(false);
    }
}

/// Submits `bio` and sleeps until it completes (Linux `submit_bio_wait`).
/// On a disk without an interrupt, polls for the completion instead.
#[track_caller]
pub fn submit_bio_wait(mut bio: Bio) -> Result<(), BlkError> {
    struct Waiter {
        done: AtomicBool,
        result: SpinLockIrq<Result<(), BlkError>>,
        wq: WaitQueue,
    }
    let waiter =
        Arc::new(Waiter { done: AtomicBool::new(false), result: SpinLockIrq::new(Ok(())), wq: WaitQueue::new() });
    let w = waiter.clone();
    bio.set_end_io(move |result| {
        *w.result.lock() = result;
        w.done.store(true, Ordering::Release);
        w.wq.wake_up_all();
    });
    let disk = bio.disk.clone();
    submit_bio(bio);
    if disk.is_polled() {
        while !waiter.done.load(Ordering::Acquire) {
            disk.queue().run(false);
            core::hint::spin_loop();
        }
    } else {
        waiter.wq.wait_event(|| waiter.done.load(Ordering::Acquire));
    }
    *waiter.result.lock()
}

/// Bios a plug holds at most: adding the last submits them all. Linux
/// flushes a plug at `BLK_MAX_REQUEST_COUNT` (32) requests, or when a
/// new request starts behind one of `BLK_PLUG_FLUSH_SIZE` (128 KiB) or
/// more; ours holds bios, merged only when they are submitted, so it
/// holds enough one-page bios for two of the virtio disk's largest
/// requests (64 segments) and no more, to bound the wait of the first.
pub const PLUG_MAX_BIOS: usize = 128;

/// A batch of bios held back so that they merge before any reaches the
/// device (Linux `struct blk_plug`). Dropping it submits them
/// ([`BlkPlug::finish`]).
#[derive(Default)]
pub struct BlkPlug {
    bios: Vec<Bio>,
}

impl BlkPlug {
    /// An empty plug (Linux `blk_start_plug`).
    pub fn new() -> BlkPlug {
        BlkPlug { bios: Vec::new() }
    }

    /// Adds `bio` to the batch (Linux `submit_bio` under a plug); with
    /// [`PLUG_MAX_BIOS`] held, submits the batch. A bio the batch has no
    /// memory for is submitted at once, unmerged.
    pub fn add(&mut self, bio: Bio) {
        if self.bios.try_reserve(1).is_err() {
            submit_bio(bio);
            return;
        }
        self.bios.push(bio);
        if self.bios.len() >= PLUG_MAX_BIOS {
            self.flush();
        }
    }

    /// Queues every bio, merging, then dispatches (Linux
    /// `blk_finish_plug`).
    pub fn finish(mut self) {
        self.flush();
    }

    /// Queues every bio held so far, merging, then dispatches, and goes
    /// on holding the next ones (Linux `blk_flush_plug`).
    pub fn flush(&mut self) {
        let mut disks: Vec<Arc<Gendisk>> = Vec::new();
        for bio in self.bios.drain(..) {
            if let Some(prepared) = into_parts(bio) {
                let disk = prepared.enqueue();
                if !disks.iter().any(|d| Arc::ptr_eq(d, &disk)) {
                    disks.push(disk);
                }
            }
        }
        for disk in disks {
            disk.queue().run(false);
        }
    }
}

impl Drop for BlkPlug {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Starts the running task's plug (Linux `blk_start_plug`, which makes
/// `current->plug` its on-stack plug) unless it has one already, as
/// Linux's nested calls leave the outer plug in place; whether it
/// started one, which [`blk_finish_plug`] must then end.
///
/// Only swap writes go to the task's plug ([`with_current_plug`],
/// [`crate::page_io`]); [`submit_bio`] leaves it alone. Linux submits
/// what the plug holds when the task sleeps (`sched_submit_work`); this
/// kernel does not, so a task must not sleep while its plug holds bios
/// (reclaim, the one user, does not), and a `submit_bio_wait` under
/// the plug would wait for ever if it went there.
pub fn blk_start_plug() -> bool {
    let Some(task) = crate::sched::try_current() else { return false };
    let mut plug = task.plug().lock();
    if plug.is_some() {
        return false;
    }
    *plug = Some(BlkPlug::new());
    true
}

/// Ends the running task's plug, submitting what it holds (Linux
/// `blk_finish_plug`).
pub fn blk_finish_plug() {
    let Some(task) = crate::sched::try_current() else { return };
    let plug = task.plug().lock().take();
    if let Some(plug) = plug {
        plug.finish();
    }
}

/// Runs `f` with the running task's plug, if it started one
/// ([`blk_start_plug`]). The plug is out of the task's slot meanwhile,
/// so `f` may allocate and take locks.
pub fn with_current_plug<R>(f: impl FnOnce(Option<&mut BlkPlug>) -> R) -> R {
    let task = crate::sched::try_current();
    let mut plug = task.as_ref().and_then(|t| t.plug().lock().take());
    let result = f(plug.as_mut());
    if let (Some(task), Some(plug)) = (task, plug) {
        *task.plug().lock() = Some(plug);
    }
    result
}
