//! The block layer on a virtio-blk scratch disk: many bios in flight,
//! merging, limits, errors, the byte API.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use kernel::arch::x86_64::irq;
use kernel::block::{self, Bio, BlkError, BlkPlug, BlockDevice, Gendisk, ReqOp, submit_bio, submit_bio_wait};
use kernel::sched::wait::WaitQueue;
use ktest_macros::{kbench, ktest};
use mm::gfp::GFP_KERNEL;
use mm::page_alloc::Pages;

const SCRATCH_MIB: u64 = 16;

fn vda() -> Arc<Gendisk> {
    block::disk_by_name("vda").expect("no vda: the scratch disk was not probed")
}

/// `2^order` pages the test owns, with byte access.
struct Buf {
    pages: Pages<'static, 'static>,
    len: usize,
}

impl Buf {
    fn new(order: u32) -> Buf {
        let pages = kernel::mm::alloc_pages_owned(GFP_KERNEL, order).expect("test buffer");
        Buf { pages, len: (mm::PAGE_SIZE << order) as usize }
    }

    fn bytes(&mut self) -> &mut [u8] {
        let p = kernel::mm::page_address(self.pages.pfn()).as_mut_ptr::<u8>();
        // SAFETY: the pages are owned by `self`, direct-mapped, and no I/O
        // is in flight on them while the test holds this borrow (every
        // test waits for its bios before touching the buffer).
        unsafe { core::slice::from_raw_parts_mut(p, self.len) }
    }

    /// A bio over `len` bytes at byte `offset` of the buffer.
    fn bio(&self, disk: &Arc<Gendisk>, op: ReqOp, sector: u64, offset: usize, len: usize) -> Bio {
        let mut bio = Bio::new(disk, op, sector);
        let pfn = mm::Pfn::new(self.pages.pfn().as_u64() + (offset as u64 >> mm::PAGE_SHIFT));
        // SAFETY: the buffer outlives the bio (each test waits for all of
        // its bios before dropping the buffer) and is not touched meanwhile.
        unsafe { bio.add_page(pfn, (offset as u64 % mm::PAGE_SIZE) as u32, len as u32) };
        bio
    }
}

/// Counts a batch of asynchronous I/Os down (bios here, swap page I/O in
/// the swap suite).
pub(crate) struct Pending {
    left: AtomicU32,
    errors: AtomicU32,
    wq: WaitQueue,
}

impl Pending {
    pub(crate) fn new(n: u32) -> Arc<Pending> {
        Arc::new(Pending { left: AtomicU32::new(n), errors: AtomicU32::new(0), wq: WaitQueue::new() })
    }

    /// The completion of one I/O (in interrupt context).
    pub(crate) fn end_io(self: &Arc<Self>) -> impl FnOnce(Result<(), BlkError>) + Send + 'static {
        let p = self.clone();
        move |r| {
            if r.is_err() {
                p.errors.fetch_add(1, Ordering::Relaxed);
            }
            p.left.fetch_sub(1, Ordering::AcqRel);
            p.wq.wake_up_all();
        }
    }

    fn watch(self: &Arc<Self>, bio: &mut Bio) {
        bio.set_end_io(self.end_io());
    }

    /// Waits for all; returns the failures.
    pub(crate) fn wait(&self) -> u32 {
        self.wq.wait_event(|| self.left.load(Ordering::Acquire) == 0);
        self.errors.load(Ordering::Relaxed)
    }
}

fn virtio_blk_interrupts() -> u64 {
    let mut total = 0;
    irq::for_each_action(|_, name, count| {
        if name == "virtio-blk" {
            total += count;
        }
    });
    total
}

#[ktest(disk = 16)]
fn scratch_disk_is_vda_with_its_size_and_an_interrupt() {
    let disks = block::disks();
    assert_eq!(disks.len(), 1, "one virtio-blk disk attached");
    let disk = vda();
    assert_eq!(disk.capacity(), SCRATCH_MIB << 11, "capacity in sectors");
    assert!(!disk.is_polled(), "vda fell back to polling: MSI-X setup failed");
    let line = alloc::format!("{}", disk.diskstats_line());
    assert!(line.starts_with(" 254       0 vda "), "{line}");
    assert_eq!(line.split_ascii_whitespace().count(), 20, "{line}");
}

/// The byte pattern of byte `i` of sector `sector`.
fn pattern(sector: u64, i: usize) -> u8 {
    (sector as u8).wrapping_mul(31) ^ (i as u8) ^ 0x5a
}

#[ktest(disk = 16)]
fn pattern_written_by_many_bios_in_flight_reads_back() {
    const BIOS: usize = 64;
    const BIO_BYTES: usize = 32 * 1024;
    const FIRST_SECTOR: u64 = 2048;
    let disk = vda();
    let mut buf = Buf::new(9); // 2 MiB
    let irqs_before = virtio_blk_interrupts();
    // Bio i carries memory chunk BIOS-1-i and sectors i, with a gap
    // before the next bio's: no bio continues another on the disk, so
    // nothing merges and every bio is a request of its own.
    let chunk = |i: usize| (BIOS - 1 - i) * BIO_BYTES;
    let sector_of = |i: usize| FIRST_SECTOR + (i * (BIO_BYTES + 4096) / 512) as u64;
    for i in 0..BIOS {
        let base = chunk(i);
        for s in 0..BIO_BYTES / 512 {
            let sector = sector_of(i) + s as u64;
            for b in 0..512 {
                buf.bytes()[base + s * 512 + b] = pattern(sector, b);
            }
        }
    }
    let before = disk.stats();
    let pending = Pending::new(BIOS as u32);
    // Under a plug every bio is queued before the first dispatch, which
    // then fills the device up to its queue depth, however fast the
    // device completes: more than one request is on the device at once.
    disk.queue().take_peak_inflight();
    let mut plug = BlkPlug::new();
    for i in 0..BIOS {
        let mut bio = buf.bio(&disk, ReqOp::Write, sector_of(i), chunk(i), BIO_BYTES);
        pending.watch(&mut bio);
        plug.add(bio);
    }
    plug.finish();
    assert_eq!(pending.wait(), 0, "write errors");
    let peak = disk.queue().take_peak_inflight();
    assert!(peak > 1, "never more than one request on the device at once (peak {peak})");
    let after = disk.stats();
    assert_eq!(after.ios[1] - before.ios[1], BIOS as u64, "one write request per bio");
    assert_eq!(after.sectors[1] - before.sectors[1], (BIOS * BIO_BYTES / 512) as u64);

    buf.bytes().fill(0);
    let pending = Pending::new(BIOS as u32);
    for i in 0..BIOS {
        let mut bio = buf.bio(&disk, ReqOp::Read, sector_of(i), chunk(i), BIO_BYTES);
        pending.watch(&mut bio);
        submit_bio(bio);
    }
    assert_eq!(pending.wait(), 0, "read errors");
    for i in 0..BIOS {
        for s in 0..BIO_BYTES / 512 {
            let sector = sector_of(i) + s as u64;
            let got = &buf.bytes()[chunk(i) + s * 512..chunk(i) + (s + 1) * 512];
            let bad = (0..512).find(|&b| got[b] != pattern(sector, b));
            assert_eq!(bad, None, "sector {sector} read back wrong");
        }
    }
    assert!(virtio_blk_interrupts() > irqs_before, "no virtio-blk interrupt: completions were not interrupt driven");
    assert_eq!(disk.stats().in_flight, 0);
}

#[ktest(disk = 16)]
fn adjacent_bios_merge_and_diskstats_count_the_merges() {
    const BIOS: usize = 16;
    let disk = vda();
    let mut buf = Buf::new(4); // 64 KiB, one 4 KiB bio per page
    for (i, b) in buf.bytes().iter_mut().enumerate() {
        *b = (i / 4096) as u8 + 1;
    }
    let before = disk.stats();
    let pending = Pending::new(BIOS as u32);
    let mut plug = BlkPlug::new();
    for i in 0..BIOS {
        let mut bio = buf.bio(&disk, ReqOp::Write, 4096 + 8 * i as u64, i * 4096, 4096);
        pending.watch(&mut bio);
        plug.add(bio);
    }
    plug.finish();
    assert_eq!(pending.wait(), 0);
    let after = disk.stats();
    assert_eq!(after.merges[1] - before.merges[1], BIOS as u64 - 1, "every bio after the first merges");
    assert_eq!(after.ios[1] - before.ios[1], 1, "the merged bios went out as one request");
    let line = alloc::format!("{}", disk.diskstats_line());
    let fields: Vec<u64> = line.split_ascii_whitespace().filter_map(|f| f.parse().ok()).collect();
    // major, minor, then field 6 of /proc/diskstats: writes merged.
    assert!(fields[7] >= BIOS as u64 - 1, "diskstats line {line}");

    // Read back through the byte API: each page carries its own number.
    let mut dev = BlockDevice::open(&disk).expect("open vda");
    let mut back = vec![0u8; BIOS * 4096];
    dev.read_at(4096 * 512, &mut back).expect("read back");
    assert!(back.iter().enumerate().all(|(i, &b)| b == (i / 4096) as u8 + 1), "merged write landed wrong");
}

/// A bio over scattered pages: page `2 * i` of `buf` for each `i` in
/// `pages`, so that no two segments follow each other in memory.
fn scattered_bio(buf: &Buf, disk: &Arc<Gendisk>, op: ReqOp, sector: u64, pages: core::ops::Range<usize>) -> Bio {
    let mut bio = Bio::new(disk, op, sector);
    for i in pages {
        let pfn = mm::Pfn::new(buf.pages.pfn().as_u64() + 2 * i as u64);
        // SAFETY: as in `Buf::bio`: the test waits for the bio before it
        // touches or frees the buffer.
        unsafe { bio.add_page(pfn, 0, 4096) };
    }
    bio
}

/// A request carries a list of memory segments (Linux's scatterlist),
/// so a bio over scattered pages goes to the device as one request, with
/// the pages' bytes where they belong; bios that continue each other on
/// the disk merge whatever their memory; and a bio of more segments than
/// a request may carry is cut at the limit.
#[ktest(disk = 16)]
fn scattered_pages_go_as_one_request_with_a_segment_each() {
    const SECTOR: u64 = 8192;
    let disk = vda();
    let max = disk.max_segments();
    assert!(max >= 32, "vda takes {max} segments per request: a readahead window would not fit one");
    let mut out = Buf::new(9); // 512 pages: every other one of 2 * max fits
    let mut back = Buf::new(9);
    // Byte j of the page at 8192 * page: what `expected(page)` gives.
    for (i, b) in out.bytes().iter_mut().enumerate() {
        *b = (i / 8192) as u8 ^ (i % 251) as u8;
    }
    let expected =
        |page: usize| -> Vec<u8> { (0..4096).map(|j| page as u8 ^ ((page * 8192 + j) % 251) as u8).collect() };
    let before = disk.stats();
    submit_bio_wait(scattered_bio(&out, &disk, ReqOp::Write, SECTOR, 0..8)).expect("scattered write");
    submit_bio_wait(scattered_bio(&back, &disk, ReqOp::Read, SECTOR, 0..8)).expect("scattered read");
    let after = disk.stats();
    assert_eq!((after.ios[1] - before.ios[1], after.ios[0] - before.ios[0]), (1, 1), "one request each way");
    for page in 0..8 {
        assert_eq!(&back.bytes()[page * 8192..page * 8192 + 4096], &expected(page)[..], "page {page}");
    }

    // Disk neighbours merge though their pages are apart in memory.
    let before = disk.stats();
    let pending = Pending::new(4);
    let mut plug = BlkPlug::new();
    for i in 0..4 {
        let mut bio = scattered_bio(&back, &disk, ReqOp::Read, SECTOR + 8 * i as u64, i..i + 1);
        pending.watch(&mut bio);
        plug.add(bio);
    }
    plug.finish();
    assert_eq!(pending.wait(), 0);
    let after = disk.stats();
    assert_eq!((after.ios[0] - before.ios[0], after.merges[0] - before.merges[0]), (1, 3), "merged into one");

    // Twice the segment limit: two requests.
    let before = disk.stats();
    submit_bio_wait(scattered_bio(&out, &disk, ReqOp::Write, SECTOR, 0..2 * max)).expect("long write");
    back.bytes().fill(0);
    submit_bio_wait(scattered_bio(&back, &disk, ReqOp::Read, SECTOR, 0..2 * max)).expect("long read");
    let after = disk.stats();
    assert_eq!((after.ios[1] - before.ios[1], after.ios[0] - before.ios[0]), (2, 2), "cut at {max} segments");
    for page in 0..2 * max {
        assert_eq!(&back.bytes()[page * 8192..page * 8192 + 4096], &expected(page)[..], "page {page}");
    }
    assert_eq!(disk.stats().in_flight, 0);
}

#[ktest(disk = 16)]
fn io_beyond_the_end_of_the_disk_is_refused() {
    let disk = vda();
    let end = disk.capacity();
    let buf = Buf::new(0);
    let r = submit_bio_wait(buf.bio(&disk, ReqOp::Read, end - 4, 0, 4096));
    assert_eq!(r, Err(BlkError::BeyondEnd), "read across the end");
    assert_eq!(BlkError::BeyondEnd.errno(), uapi::errno::Errno::EIO);
    assert_eq!(submit_bio_wait(buf.bio(&disk, ReqOp::Write, end, 0, 512)), Err(BlkError::BeyondEnd));
    assert_eq!(submit_bio_wait(buf.bio(&disk, ReqOp::Read, u64::MAX - 1, 0, 4096)), Err(BlkError::BeyondEnd));
    assert_eq!(submit_bio_wait(buf.bio(&disk, ReqOp::Read, end - 8, 0, 4096)), Ok(()), "the last 4 KiB");
    assert_eq!(submit_bio_wait(buf.bio(&disk, ReqOp::Read, 0, 0, 100)), Err(BlkError::Invalid), "partial sector");
    let mut dev = BlockDevice::open(&disk).expect("open vda");
    let mut b = [0u8; 16];
    assert_eq!(dev.read_at(dev.size() - 8, &mut b), Err(BlkError::BeyondEnd));
    assert_eq!(disk.stats().in_flight, 0);
}

#[ktest(disk = 16)]
fn byte_api_round_trips_unaligned_ranges_and_flushes() {
    let disk = vda();
    let mut dev = BlockDevice::open(&disk).expect("open vda");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 + 3) as u8).collect();
    // The bytes around the range as found: other tests of this boot may
    // have written the disk.
    let mut around = vec![0u8; data.len() + 2];
    dev.read_at(1_000_000, &mut around).expect("read before");
    dev.write_at(1_000_001, &data).expect("unaligned write");
    let mut back = vec![0u8; data.len() + 2];
    dev.read_at(1_000_000, &mut back).expect("read");
    assert_eq!(back[0], around[0], "byte before the write changed");
    assert_eq!(&back[1..=data.len()], &data[..]);
    assert_eq!(back[data.len() + 1], around[data.len() + 1], "byte after the write changed");
    let flushes = disk.stats().ios[2];
    dev.flush().expect("flush");
    assert_eq!(disk.stats().ios[2], flushes + 1);
    // The ext2 crate's view of the same device.
    let dev: &mut dyn ext2::BlockDevice = &mut dev;
    assert_eq!(dev.size(), SCRATCH_MIB << 20);
    let mut b = [0u8; 4];
    dev.read_at(1_000_001, &mut b).expect("ext2 read");
    assert_eq!(&b, &data[..4]);
}

/// The sector the blkdebug scratch disk fails.
const EIO_SECTOR: u64 = 4096;

/// The last 4 KiB of the kernel log.
pub(crate) fn log_tail() -> alloc::string::String {
    let mut buf = vec![0u8; 4096];
    let n = kernel::printk::LOG_BUF.copy_last(&mut buf);
    alloc::string::String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[ktest(disk = 8, disk_eio = 4096)]
fn injected_disk_error_reaches_the_submitter_as_eio_and_is_logged() {
    let disk = vda();
    let buf = Buf::new(1);
    // A read covering the sector fails, as EIO, and names device and sector.
    let r = submit_bio_wait(buf.bio(&disk, ReqOp::Read, EIO_SECTOR - 2, 0, 4096));
    assert_eq!(r, Err(BlkError::Io));
    assert_eq!(r.map_err(BlkError::errno), Err(uapi::errno::Errno::EIO));
    let log = log_tail();
    assert!(
        log.contains(&alloc::format!("I/O error, dev vda, sector {} op 0x0:(READ)", EIO_SECTOR - 2)),
        "no blk_print_req_error line in the log:\n{log}"
    );
    // So does a write, reported asynchronously through end-io.
    let pending = Pending::new(1);
    let mut bio = buf.bio(&disk, ReqOp::Write, EIO_SECTOR, 0, 512);
    pending.watch(&mut bio);
    submit_bio(bio);
    assert_eq!(pending.wait(), 1, "the write's end-io saw no error");
    assert!(log_tail().contains(&alloc::format!("I/O error, dev vda, sector {EIO_SECTOR} op 0x1:(WRITE)")));
    // The disk keeps working around the bad sector, for many bios at once.
    let pending = Pending::new(8);
    for i in 0..8u64 {
        let mut bio = buf.bio(&disk, ReqOp::Write, 64 * i, (i as usize % 2) * 4096, 4096);
        pending.watch(&mut bio);
        submit_bio(bio);
    }
    assert_eq!(pending.wait(), 0, "I/O away from the bad sector failed");
    assert_eq!(submit_bio_wait(buf.bio(&disk, ReqOp::Read, EIO_SECTOR + 8, 0, 8192)), Ok(()));
    // The byte API and the ext2 view see it too.
    let mut dev = BlockDevice::open(&disk).expect("open vda");
    let mut b = [0u8; 10];
    assert_eq!(dev.read_at(EIO_SECTOR * 512 + 100, &mut b), Err(BlkError::Io));
    let e = ext2::BlockDevice::read_at(&mut dev, EIO_SECTOR * 512, &mut b).expect_err("ext2 read of the bad sector");
    assert_eq!(e.kind, ext2::IoErrorKind::Read);
    assert_eq!(disk.stats().in_flight, 0);
}

/// Bytes per bio in the sequential benchmarks (Linux's default readahead
/// window and a common `max_sectors_kb` order of size).
const BENCH_BIO_BYTES: usize = 128 * 1024;
/// Bios per sequential pass: 8 MiB, submitted at once so that the queue
/// stays full (16 in flight, the rest queued and merged where adjacent).
const BENCH_BIOS: usize = 64;
/// 4 KiB reads per random-read batch.
const BENCH_RANDOM_READS: usize = 64;

/// Memory for a benchmark pass: one buffer per bio, so that no two bios
/// in flight share memory.
fn bench_buffers(n: usize, order: u32) -> Vec<Buf> {
    (0..n).map(|_| Buf::new(order)).collect()
}

/// One pass: `bios` of `bytes` each at the given sectors, all submitted
/// before any is waited for.
fn bench_pass(disk: &Arc<Gendisk>, op: ReqOp, bufs: &[Buf], bytes: usize, sector: impl Fn(usize) -> u64) -> u32 {
    let pending = Pending::new(bufs.len() as u32);
    for (i, buf) in bufs.iter().enumerate() {
        let mut bio = buf.bio(disk, op, sector(i), 0, bytes);
        pending.watch(&mut bio);
        submit_bio(bio);
    }
    pending.wait()
}

fn seq_bench(b: &mut kernel::kbench::Bencher, op: ReqOp) {
    let Some(disk) = block::disk_by_name("vda") else {
        kernel::kprintln!("kbench: FAILED no vda: benchmarks need the scratch disk xtask attaches");
        b.iter(|| 0);
        return;
    };
    let bufs = bench_buffers(BENCH_BIOS, 5);
    let pass_sectors = (BENCH_BIOS * BENCH_BIO_BYTES / 512) as u64;
    let passes = (disk.capacity() / pass_sectors).max(1);
    let mut pass = 0u64;
    b.iter(|| {
        let base = (pass % passes) * pass_sectors;
        pass += 1;
        bench_pass(&disk, op, &bufs, BENCH_BIO_BYTES, |i| base + (i * BENCH_BIO_BYTES / 512) as u64)
    });
}

/// Sequential reads of vda through the block layer: one operation is an
/// 8 MiB pass of 64 bios of 128 KiB in flight at once (MB/s = 8.39 /
/// median ms).
#[kbench]
fn vda_seq_read_8m_pass(b: &mut kernel::kbench::Bencher) {
    seq_bench(b, ReqOp::Read);
}

/// Sequential writes of vda, as [`vda_seq_read_8m_pass`].
#[kbench]
fn vda_seq_write_8m_pass(b: &mut kernel::kbench::Bencher) {
    seq_bench(b, ReqOp::Write);
}

/// 4 KiB reads at random 4 KiB-aligned offsets of vda: one operation is a
/// batch of 64 submitted at once (IOPS = 64e9 / median ns).
#[kbench]
fn vda_random_read_4k_x64(b: &mut kernel::kbench::Bencher) {
    let Some(disk) = block::disk_by_name("vda") else {
        kernel::kprintln!("kbench: FAILED no vda: benchmarks need the scratch disk xtask attaches");
        b.iter(|| 0);
        return;
    };
    let bufs = bench_buffers(BENCH_RANDOM_READS, 0);
    let blocks = disk.capacity() / 8;
    // xorshift64: the same offsets every run.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    b.iter(|| {
        let offsets: [u64; BENCH_RANDOM_READS] = core::array::from_fn(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % blocks) * 8
        });
        bench_pass(&disk, ReqOp::Read, &bufs, 4096, |i| offsets[i])
    });
}
