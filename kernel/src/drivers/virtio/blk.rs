//! virtio-blk (Linux `drivers/block/virtio_blk.c`): every virtio block
//! function on the PCI bus becomes a disk, `vda`, `vdb`, .. in PCI order.
//!
//! The driver speaks the virtio-blk request protocol itself (virtio 1.x
//! 5.2.6) over the crate's PCI transport and split virtqueue: a request
//! is a descriptor chain of its header, one descriptor per memory segment
//! of the block layer's request (the scattered pages of a readahead
//! window, say), and the status byte, as Linux's `virtblk_add_req` chains
//! the scatterlist `blk_rq_map_sg` made. The crate's own `VirtIOBlk`
//! hands the device one buffer per request on a 16-descriptor ring, so it
//! is not used. Each request's header, status byte and segment list live
//! in a slot of this driver, boxed so that they stay put while the device
//! holds them; the slot index is the block layer's tag.
//!
//! Descriptors are direct: the crate is built without its `alloc`
//! feature, so its virtqueue never boxes an indirect descriptor list.
//! With it, every request (also those the interrupt handler dispatches)
//! allocated a list `GFP_ATOMIC`, and a failure there was Rust's
//! allocation-failure panic. Linux's `virtqueue_add_split` allocates the
//! list the same way but falls back to direct descriptors when it cannot;
//! the crate has no such fallback, so this driver takes the direct path
//! always and allocates nothing per request. A request takes its
//! segments plus two of the ring's [`QUEUE_SIZE`] descriptors; the disk
//! takes requests of up to [`MAX_SEGMENTS`] segments (or the device's
//! `seg_max`, if smaller), and as many are in flight as the ring holds,
//! up to the block layer's [`MAX_QUEUE_DEPTH`]: a full ring is "busy",
//! and the block layer dispatches again after a completion.
//!
//! Completion is by interrupt: MSI-X entry 0 carries a vector from
//! [`irq::alloc_vector`] to the boot CPU, and the queue's
//! `queue_msix_vector` (virtio 1.x common configuration, 4.1.4.3) points
//! at that entry. The crate does not expose the MSI-X registers of the
//! common configuration, so the probe writes them through its own mapping
//! once the crate has initialised the device. Without MSI-X the disk is
//! polled. The handler runs the disk's queue (reap, refill, end bios).
//!
//! Flushes: the block layer issues one only with nothing in flight, and
//! the driver polls for its completion.
//!
//! Differences from Linux: one queue per disk, no config-change
//! interrupt (capacity changes are not seen), no discard/write-zeroes,
//! no `GET_ID` serial in sysfs, `size_max` not negotiated.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;

use bitflags::bitflags;
use mm::PhysAddr;
use mm::arch::PhysMemory;
use spin::Once;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::Transport;
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};

use super::{PortCam, VirtioHal};
use crate::arch::x86_64::{apic, irq};
use crate::block::blk_mq::{BlkMqOps, MAX_QUEUE_DEPTH, QueueRqError, RequestDesc};
use crate::block::genhd::{self, DiskInfo, Gendisk};
use crate::block::{BlkError, ReqOp};
use crate::drivers::pci::msi::MsixTable;
use crate::drivers::pci::{self, Bar, PciDev, cap_id};

/// Descriptors in the request virtqueue (Linux sizes it from the
/// device's maximum; QEMU's virtio-blk offers 256).
const QUEUE_SIZE: usize = 128;
/// The request virtqueue's index.
const QUEUE: u16 = 0;
/// Descriptors of a request besides its data: header and status.
const DESCS_PER_REQUEST: usize = 2;
/// Most memory segments in one request: a readahead window of 32 pages
/// scattered in memory is one request with room to merge a second.
const MAX_SEGMENTS: usize = 64;
const _: () = assert!(MAX_SEGMENTS + DESCS_PER_REQUEST <= QUEUE_SIZE);
/// Largest request: 512 KiB (Linux's default `max_sectors_kb` is 1280).
const MAX_SECTORS: u32 = 1024;
/// PCI device ids of virtio-blk: transitional, and modern (0x1040 + 2).
const VIRTIO_ID_BLOCK_TRANSITIONAL: u16 = 0x1001;
const VIRTIO_ID_BLOCK_MODERN: u16 = 0x1042;
/// Most virtio-blk disks probed.
const MAX_DISKS: usize = 26;
/// virtio PCI capability types (virtio 1.x 4.1.4).
const VIRTIO_PCI_CAP_COMMON_CFG: u8 = 1;
const VIRTIO_PCI_CAP_DEVICE_CFG: u8 = 4;
/// Largest structure a virtio capability may describe here.
const MAX_CAP_REGION: u64 = 1 << 20;
/// Common configuration offsets (virtio 1.x 4.1.4.3).
const COMMON_MSIX_CONFIG: u64 = 0x10;
const COMMON_QUEUE_SELECT: u64 = 0x16;
const COMMON_QUEUE_MSIX_VECTOR: u64 = 0x1a;
const COMMON_CFG_LEN: u64 = 0x38;
/// "No vector" (virtio 1.x 4.1.5.1.2).
const VIRTIO_MSI_NO_VECTOR: u16 = 0xffff;
/// Device configuration offsets (virtio 1.x 5.2.4, `struct
/// virtio_blk_config`): `capacity` (le64, as two le32), `seg_max`.
const CONFIG_CAPACITY_LOW: usize = 0;
const CONFIG_CAPACITY_HIGH: usize = 4;
const CONFIG_SEG_MAX: usize = 12;
/// Request types (virtio 1.x 5.2.6, Linux `VIRTIO_BLK_T_*`).
const VIRTIO_BLK_T_IN: u32 = 0;
const VIRTIO_BLK_T_OUT: u32 = 1;
const VIRTIO_BLK_T_FLUSH: u32 = 4;
/// Request status values (Linux `VIRTIO_BLK_S_*`).
const VIRTIO_BLK_S_OK: u8 = 0;
const VIRTIO_BLK_S_UNSUPP: u8 = 2;
/// Bytes of a request header (`struct virtio_blk_outhdr`: le32 type,
/// le32 ioprio, le64 sector).
const OUTHDR_LEN: usize = 16;

bitflags! {
    /// The feature bits this driver knows (virtio 1.x 5.2.3, 6).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct BlkFeature: u64 {
        /// `seg_max` says the most segments in a request.
        const SEG_MAX = 1 << 2;
        /// Read-only device.
        const RO = 1 << 5;
        /// The flush command exists.
        const FLUSH = 1 << 9;
        /// `used_event`/`avail_event` notification suppression.
        const RING_EVENT_IDX = 1 << 29;
        /// virtio 1.x: a driver must accept it when offered.
        const VERSION_1 = 1 << 32;
    }
}

/// Disks by probe index, for the interrupt handler.
static DISKS: [Once<Arc<Gendisk>>; MAX_DISKS] = [const { Once::new() }; MAX_DISKS];

/// Why a function was not made a disk.
#[derive(Debug)]
enum ProbeError {
    BadCapability(&'static str),
    Transport(virtio_drivers::transport::pci::VirtioPciError),
    Device(virtio_drivers::Error),
    NoMemory,
}

impl core::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProbeError::BadCapability(why) => write!(f, "bad virtio capability: {why}"),
            ProbeError::Transport(e) => write!(f, "{e}"),
            ProbeError::Device(e) => write!(f, "{e}"),
            ProbeError::NoMemory => write!(f, "no memory for the request slots"),
        }
    }
}

/// A request's header, status and memory, where the device can reach
/// them.
struct Slot {
    hdr: [u8; OUTHDR_LEN],
    status: [u8; 1],
    /// The virtqueue's token (the chain's head descriptor) while in flight.
    token: Option<u16>,
    op: ReqOp,
    /// Direct-map address and length of each segment, `nr_segs` of them.
    segs: [(u64, u32); MAX_SEGMENTS],
    nr_segs: usize,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            hdr: [0; OUTHDR_LEN],
            status: [0],
            token: None,
            op: ReqOp::Read,
            segs: [(0, 0); MAX_SEGMENTS],
            nr_segs: 0,
        }
    }

    /// Calls `f` with the request's descriptor chain: the buffers the
    /// device reads (header, and data for a write) and those it writes
    /// (data for a read, and status), as the virtqueue takes them.
    ///
    /// # Safety
    /// The segments are memory the block layer lent this request
    /// (`Bio::add_page`'s contract) and not yet given back: nothing but
    /// the device and this chain touches them.
    unsafe fn with_chain<R>(&mut self, f: impl for<'a> FnOnce(&'a [&'a [u8]], &'a mut [&'a mut [u8]]) -> R) -> R {
        let mut ins: [&[u8]; MAX_SEGMENTS + 1] = [&[]; MAX_SEGMENTS + 1];
        let mut outs: [&mut [u8]; MAX_SEGMENTS + 1] = core::array::from_fn(|_| <&mut [u8]>::default());
        let n = self.nr_segs.min(MAX_SEGMENTS);
        let data = |(virt, len): (u64, u32)| {
            // SAFETY: the caller's promise: `len` bytes of direct-mapped RAM
            // at `virt`, the request's alone until it completes.
            unsafe { core::slice::from_raw_parts_mut(virt as *mut u8, len as usize) }
        };
        ins[0] = &self.hdr;
        if self.op == ReqOp::Read {
            for (out, &seg) in outs.iter_mut().zip(&self.segs[..n]) {
                *out = data(seg);
            }
            outs[n] = &mut self.status;
            f(&ins[..1], &mut outs[..=n])
        } else {
            for (i, &seg) in ins[1..].iter_mut().zip(&self.segs[..n]) {
                *i = data(seg);
            }
            outs[0] = &mut self.status;
            f(&ins[..=n], &mut outs[..1])
        }
    }
}

/// A request header (`struct virtio_blk_outhdr`), little-endian.
fn outhdr(type_: u32, sector: u64) -> [u8; OUTHDR_LEN] {
    let mut hdr = [0; OUTHDR_LEN];
    hdr[0..4].copy_from_slice(&type_.to_le_bytes());
    hdr[8..16].copy_from_slice(&sector.to_le_bytes());
    hdr
}

fn status_result(status: u8) -> Result<(), BlkError> {
    match status {
        VIRTIO_BLK_S_OK => Ok(()),
        VIRTIO_BLK_S_UNSUPP => Err(BlkError::NotSupported),
        _ => Err(BlkError::Io),
    }
}

struct VirtioBlkOps {
    transport: PciTransport,
    queue: VirtQueue<VirtioHal, QUEUE_SIZE>,
    features: BlkFeature,
    slots: Box<[Slot]>,
    /// Slot by token (a chain's head descriptor, below `QUEUE_SIZE`).
    by_token: [Option<u16>; QUEUE_SIZE],
    /// Where the device is, for reports.
    address: pci::PciAddress,
}

fn map_error(e: virtio_drivers::Error) -> BlkError {
    match e {
        virtio_drivers::Error::Unsupported => BlkError::NotSupported,
        virtio_drivers::Error::DmaError => BlkError::NoMemory,
        _ => BlkError::Io,
    }
}

impl BlkMqOps for VirtioBlkOps {
    fn queue_rq(&mut self, rq: &RequestDesc) -> Result<u16, QueueRqError> {
        let Some(i) = self.slots.iter().position(|s| s.token.is_none()) else { return Err(QueueRqError::Busy) };
        if rq.op == ReqOp::Flush || rq.segs.is_empty() || rq.segs.len() > MAX_SEGMENTS {
            return Err(QueueRqError::Failed(BlkError::Invalid));
        }
        let slot = &mut self.slots[i];
        for (to, seg) in slot.segs.iter_mut().zip(&rq.segs) {
            let Some(virt) = crate::boot::DirectMap.phys_to_virt(seg.phys) else {
                return Err(QueueRqError::Failed(BlkError::Invalid));
            };
            *to = (virt.as_u64(), seg.len);
        }
        slot.nr_segs = rq.segs.len();
        slot.op = rq.op;
        let type_ = if rq.op == ReqOp::Read { VIRTIO_BLK_T_IN } else { VIRTIO_BLK_T_OUT };
        slot.hdr = outhdr(type_, rq.sector);
        slot.status = [0xff];
        let queue = &mut self.queue;
        // SAFETY: the segments are the request's (RequestDesc's contract);
        // the header, status and segment list stay where they are and
        // untouched until `complete_one` hands the same chain back: the
        // slots are boxed and this one is busy (`token`) until then.
        let token = unsafe { slot.with_chain(|ins, outs| queue.add(ins, outs)) };
        match token {
            Ok(token) if usize::from(token) < QUEUE_SIZE => {
                if self.queue.should_notify() {
                    self.transport.notify(QUEUE);
                }
                slot.token = Some(token);
                self.by_token[usize::from(token)] = Some(i as u16);
                Ok(i as u16)
            }
            Ok(token) => {
                log::error!("virtio-blk {}: virtqueue gave token {token} beyond its size", self.address);
                Err(QueueRqError::Failed(BlkError::Io))
            }
            Err(virtio_drivers::Error::QueueFull) => Err(QueueRqError::Busy),
            Err(e) => Err(QueueRqError::Failed(map_error(e))),
        }
    }

    fn complete_one(&mut self) -> Option<(u16, Result<(), BlkError>)> {
        let token = self.queue.peek_used()?;
        let Some(i) = self.by_token.get(usize::from(token)).copied().flatten().map(usize::from) else {
            log::error!("virtio-blk {}: device completed unknown token {token}", self.address);
            return None;
        };
        let slot = &mut self.slots[i];
        let queue = &mut self.queue;
        // SAFETY: the same chain that `queue_rq` added for this token.
        let popped = unsafe { slot.with_chain(|ins, outs| queue.pop_used(token, ins, outs)) };
        let result = popped.map_err(map_error).and_then(|_| status_result(slot.status[0]));
        slot.token = None;
        self.by_token[usize::from(token)] = None;
        Some((i as u16, result))
    }

    fn flush(&mut self) -> Result<(), BlkError> {
        if !self.features.contains(BlkFeature::FLUSH) {
            return Ok(());
        }
        let hdr = outhdr(VIRTIO_BLK_T_FLUSH, 0);
        let mut status = [0xff];
        self.queue.add_notify_wait_pop(&[&hdr], &mut [&mut status], &mut self.transport).map_err(map_error)?;
        status_result(status[0])
    }

    fn ack_interrupt(&mut self) {
        self.transport.ack_interrupt();
    }
}

/// The common configuration's physical address, after checking that
/// every virtio structure lies inside a memory BAR (so that the crate's
/// later `mmio_phys_to_virt` calls cannot fail on device-supplied sizes).
fn check_virtio_caps(dev: &PciDev) -> Result<PhysAddr, ProbeError> {
    let mut common = None;
    for cap in dev.capabilities.iter().filter(|c| c.id == cap_id::VNDR) {
        let head = pci::read_config_u32(dev.address, cap.offset);
        let cfg_type = (head >> 24) as u8;
        if !(VIRTIO_PCI_CAP_COMMON_CFG..=VIRTIO_PCI_CAP_DEVICE_CFG).contains(&cfg_type) {
            continue;
        }
        let bar = (pci::read_config_u32(dev.address, cap.offset + 4) & 0xff) as usize;
        let offset = u64::from(pci::read_config_u32(dev.address, cap.offset + 8));
        let length = u64::from(pci::read_config_u32(dev.address, cap.offset + 12));
        let Some(Some(Bar::Memory { base, size, .. })) = dev.bars.get(bar).copied() else {
            return Err(ProbeError::BadCapability("structure in a missing or I/O BAR"));
        };
        if length > MAX_CAP_REGION || offset + length > size || base == 0 {
            return Err(ProbeError::BadCapability("structure outside its BAR"));
        }
        if cfg_type == VIRTIO_PCI_CAP_COMMON_CFG && common.is_none() {
            if length < COMMON_CFG_LEN {
                return Err(ProbeError::BadCapability("common configuration too short"));
            }
            common = Some(PhysAddr::new(base + offset));
        }
    }
    common.ok_or(ProbeError::BadCapability("no common configuration"))
}

/// Routes the queue's interrupt to MSI-X entry 0 on a new vector; returns
/// the vector, or why the disk must be polled.
fn setup_msix(dev: &PciDev, common: PhysAddr, index: usize) -> Result<u8, &'static str> {
    let table = MsixTable::new(dev).map_err(|_| "no usable MSI-X table")?;
    let vector = irq::alloc_vector().map_err(|_| "no free interrupt vector")?;
    let undo = |why| {
        let _ = irq::free_irq(vector);
        why
    };
    table.set_entry(0, vector, apic::id()).map_err(|_| undo("MSI-X entry 0 unusable"))?;
    irq::request_irq(vector, virtblk_irq, index, "virtio-blk").map_err(|_| undo("vector busy"))?;
    table.enable(dev);
    let regs = crate::vmalloc::ioremap(common, COMMON_CFG_LEN).map_err(|_| undo("cannot map common configuration"))?;
    let reg16 = |off: u64| (regs.as_u64() + off) as *mut u16;
    // SAFETY: `regs` maps the common configuration structure uncached
    // (its length checked by check_virtio_caps); these 16-bit registers
    // are naturally aligned. The crate touches queue_select only while
    // submitting, and nothing is submitted before the disk exists.
    let routed = unsafe {
        reg16(COMMON_MSIX_CONFIG).write_volatile(VIRTIO_MSI_NO_VECTOR);
        reg16(COMMON_QUEUE_SELECT).write_volatile(0);
        reg16(COMMON_QUEUE_MSIX_VECTOR).write_volatile(0);
        reg16(COMMON_QUEUE_MSIX_VECTOR).read_volatile()
    };
    let _ = crate::vmalloc::iounmap(regs);
    if routed == VIRTIO_MSI_NO_VECTOR {
        return Err(undo("device refused the queue's MSI-X vector"));
    }
    Ok(vector)
}

/// MSI-X handler: the queue's completions.
fn virtblk_irq(index: usize) {
    if let Some(disk) = DISKS.get(index).and_then(Once::get) {
        disk.queue().run(true);
    }
}

fn probe(dev: &PciDev, index: usize) -> Result<Arc<Gendisk>, ProbeError> {
    let common = check_virtio_caps(dev)?;
    dev.enable_mem_and_master();
    let mut root = PciRoot::new(PortCam);
    let df = DeviceFunction { bus: dev.address.bus, device: dev.address.device, function: dev.address.function };
    let mut transport = PciTransport::new::<VirtioHal, PortCam>(&mut root, df).map_err(ProbeError::Transport)?;
    // virtio 1.x 3.1.1: features, configuration, queue, DRIVER_OK.
    let features = transport.begin_init(
        BlkFeature::SEG_MAX | BlkFeature::RO | BlkFeature::FLUSH | BlkFeature::RING_EVENT_IDX | BlkFeature::VERSION_1,
    );
    let (capacity, seg_max) = transport
        .read_consistent(|| {
            let low = transport.read_config_space::<u32>(CONFIG_CAPACITY_LOW)?;
            let high = transport.read_config_space::<u32>(CONFIG_CAPACITY_HIGH)?;
            let seg_max = match features.contains(BlkFeature::SEG_MAX) {
                true => transport.read_config_space::<u32>(CONFIG_SEG_MAX)?,
                false => u32::MAX,
            };
            Ok((u64::from(low) | (u64::from(high) << 32), seg_max))
        })
        .map_err(ProbeError::Device)?;
    let event_idx = features.contains(BlkFeature::RING_EVENT_IDX);
    let mut queue =
        VirtQueue::<VirtioHal, QUEUE_SIZE>::new(&mut transport, QUEUE, false, event_idx).map_err(ProbeError::Device)?;
    transport.finish_init();
    let polled = match setup_msix(dev, common, index) {
        Ok(vector) => {
            queue.set_dev_notify(true);
            log::info!("virtio-blk {}: MSI-X vector {vector:#x}", dev.address);
            false
        }
        Err(why) => {
            queue.set_dev_notify(false);
            log::warn!("virtio-blk {}: {why}; polling for completions", dev.address);
            true
        }
    };
    let mut slots = Vec::new();
    slots.try_reserve_exact(MAX_QUEUE_DEPTH).map_err(|_| ProbeError::NoMemory)?;
    slots.extend((0..MAX_QUEUE_DEPTH).map(|_| Slot::new()));
    let info = DiskInfo {
        prefix: "vd",
        major: genhd::VIRTBLK_MAJOR,
        capacity,
        read_only: features.contains(BlkFeature::RO),
        max_sectors: MAX_SECTORS,
        // A device's 0 would be nonsense; take it as no limit of its own.
        max_segments: match seg_max {
            0 => MAX_SEGMENTS,
            n => (n as usize).min(MAX_SEGMENTS),
        },
        polled,
    };
    let ops = VirtioBlkOps {
        transport,
        queue,
        features,
        slots: slots.into_boxed_slice(),
        by_token: [None; QUEUE_SIZE],
        address: dev.address,
    };
    let disk = genhd::add_disk(info, Box::new(ops));
    Ok(disk)
}

/// Probes every virtio block function (Linux `virtio_blk_init` + the
/// PCI driver's probe).
pub fn init() {
    let blk_functions = pci::devices().iter().filter(|d| {
        d.vendor_id == virtio_drivers::transport::pci::VIRTIO_VENDOR_ID
            && matches!(d.device_id, VIRTIO_ID_BLOCK_TRANSITIONAL | VIRTIO_ID_BLOCK_MODERN)
    });
    for (index, dev) in blk_functions.enumerate() {
        if index >= MAX_DISKS {
            log::warn!("virtio-blk {}: more than {MAX_DISKS} disks; ignored", dev.address);
            continue;
        }
        match probe(dev, index) {
            Ok(disk) => {
                log::info!(
                    "virtio_blk {}: [{}] {} 512-byte logical blocks ({} MiB){}",
                    dev.address,
                    disk.name(),
                    disk.capacity(),
                    disk.capacity() >> 11,
                    if disk.is_polled() { ", polled" } else { "" }
                );
                DISKS[index].call_once(|| disk);
            }
            Err(e) => log::error!("virtio-blk {}: probe failed: {e}", dev.address),
        }
    }
}
