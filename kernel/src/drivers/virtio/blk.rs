//! virtio-blk (Linux `drivers/block/virtio_blk.c`): every virtio block
//! function on the PCI bus becomes a disk, `vda`, `vdb`, .. in PCI order.
//!
//! The crate's `VirtIOBlk` drives the device; its non-blocking calls
//! (`read_blocks_nb`/`write_blocks_nb`, then `peek_used` and
//! `complete_*_blocks`) keep up to [`QUEUE_DEPTH`] requests in flight.
//! Each request's header and status byte live in a slot of this driver,
//! boxed so that they stay put while the device holds them; the slot
//! index is the block layer's tag.
//!
//! Descriptors are direct: the crate is built without its `alloc`
//! feature, so its virtqueue never boxes an indirect descriptor list.
//! With it, every request (also those the interrupt handler dispatches)
//! allocated a list `GFP_ATOMIC`, and a failure there was Rust's
//! allocation-failure panic. Linux's `virtqueue_add_split` allocates the
//! list the same way but falls back to direct descriptors when it cannot;
//! the crate has no such fallback, so this driver takes the direct path
//! always and allocates nothing per request. The price is depth: a
//! request's three descriptors (header, data, status) take three of the
//! ring's 16 entries, so 5 requests are in flight instead of 16.
//!
//! Completion is by interrupt: MSI-X entry 0 carries a vector from
//! [`irq::alloc_vector`] to the boot CPU, and the queue's
//! `queue_msix_vector` (virtio 1.x common configuration, 4.1.4.3) points
//! at that entry. The crate does not expose the MSI-X registers of the
//! common configuration, so the probe writes them through its own mapping
//! once the crate has initialised the device. Without MSI-X the disk is
//! polled. The handler runs the disk's queue (reap, refill, end bios).
//!
//! Flushes: the crate has no non-blocking flush; the block layer issues
//! one only with nothing in flight, and `VirtIOBlk::flush` polls for it.
//!
//! Differences from Linux: one queue per disk, no config-change
//! interrupt (capacity changes are not seen), no discard/write-zeroes,
//! no `GET_ID` serial in sysfs.

use alloc::boxed::Box;
use alloc::sync::Arc;

use mm::PhysAddr;
use mm::arch::PhysMemory;
use spin::Once;
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};

use super::{PortCam, VirtioHal};
use crate::arch::x86_64::{apic, irq};
use crate::block::blk_mq::{BlkMqOps, MAX_QUEUE_DEPTH, QueueRqError, RequestDesc};
use crate::block::genhd::{self, DiskInfo, Gendisk};
use crate::block::{BlkError, ReqOp};
use crate::drivers::pci::msi::MsixTable;
use crate::drivers::pci::{self, Bar, PciDev, cap_id};

/// The crate's virtqueue size (`virtio_drivers::device::blk::QUEUE_SIZE`).
const QUEUE_SIZE: usize = 16;
/// Descriptors per request: header, data, status.
const DESCS_PER_REQUEST: usize = 3;
/// Requests in flight: as many as the ring holds direct descriptor chains.
const QUEUE_DEPTH: usize = QUEUE_SIZE / DESCS_PER_REQUEST;
const _: () = assert!(QUEUE_DEPTH <= MAX_QUEUE_DEPTH);
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

/// Disks by probe index, for the interrupt handler.
static DISKS: [Once<Arc<Gendisk>>; MAX_DISKS] = [const { Once::new() }; MAX_DISKS];

/// Why a function was not made a disk.
#[derive(Debug)]
enum ProbeError {
    BadCapability(&'static str),
    Transport(virtio_drivers::transport::pci::VirtioPciError),
    Device(virtio_drivers::Error),
}

impl core::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ProbeError::BadCapability(why) => write!(f, "bad virtio capability: {why}"),
            ProbeError::Transport(e) => write!(f, "{e}"),
            ProbeError::Device(e) => write!(f, "{e}"),
        }
    }
}

/// A request's header and status, where the device can reach them.
#[derive(Default)]
struct Slot {
    req: BlkReq,
    resp: BlkResp,
    /// The crate's token while in flight.
    token: Option<u16>,
    op: Option<ReqOp>,
    /// Direct-map address and length of the data.
    buf: (u64, usize),
}

struct VirtioBlkOps {
    blk: VirtIOBlk<VirtioHal, PciTransport>,
    slots: Box<[Slot; QUEUE_DEPTH]>,
    /// Slot by token (a chain's head descriptor, below `QUEUE_SIZE`).
    by_token: [Option<u16>; QUEUE_SIZE],
    /// Where the device is, for reports.
    address: pci::PciAddress,
}

impl VirtioBlkOps {
    fn data(&self, i: usize) -> &'static mut [u8] {
        let (virt, len) = self.slots[i].buf;
        // SAFETY: `virt` is the direct-map address of `len` bytes of RAM
        // that the block layer lent this request (Bio::add_page's
        // contract) until it completes; only the device and the crate's
        // bookkeeping use it meanwhile.
        unsafe { core::slice::from_raw_parts_mut(virt as *mut u8, len) }
    }
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
        let len = rq.bytes() as usize;
        let Some(virt) = crate::boot::DirectMap.phys_to_virt(rq.phys) else {
            return Err(QueueRqError::Failed(BlkError::Invalid));
        };
        if len == 0 || rq.op == ReqOp::Flush {
            return Err(QueueRqError::Failed(BlkError::Invalid));
        }
        self.slots[i].buf = (virt.as_u64(), len);
        let buf = self.data(i);
        let slot = &mut self.slots[i];
        let sector = rq.sector as usize;
        // SAFETY: the header, status and data stay where they are and
        // untouched until `complete_one` hands the same three back: the
        // slots are boxed and the slot is busy (`token`) until then; the
        // data is the request's (see `data`).
        let token = unsafe {
            match rq.op {
                ReqOp::Read => self.blk.read_blocks_nb(sector, &mut slot.req, buf, &mut slot.resp),
                _ => self.blk.write_blocks_nb(sector, &mut slot.req, buf, &mut slot.resp),
            }
        };
        match token {
            Ok(token) if usize::from(token) < QUEUE_SIZE => {
                slot.token = Some(token);
                slot.op = Some(rq.op);
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
        let token = self.blk.peek_used()?;
        let Some(i) = self.by_token.get(usize::from(token)).copied().flatten().map(usize::from) else {
            log::error!("virtio-blk {}: device completed unknown token {token}", self.address);
            return None;
        };
        let buf = self.data(i);
        let slot = &mut self.slots[i];
        // SAFETY: the same header, data and status that `queue_rq` passed
        // for this token.
        let result = unsafe {
            match slot.op {
                Some(ReqOp::Read) => self.blk.complete_read_blocks(token, &slot.req, buf, &mut slot.resp),
                _ => self.blk.complete_write_blocks(token, &slot.req, buf, &mut slot.resp),
            }
        };
        slot.token = None;
        slot.op = None;
        self.by_token[usize::from(token)] = None;
        Some((i as u16, result.map_err(map_error)))
    }

    fn flush(&mut self) -> Result<(), BlkError> {
        self.blk.flush().map_err(map_error)
    }

    fn ack_interrupt(&mut self) {
        self.blk.ack_interrupt();
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
    let transport = PciTransport::new::<VirtioHal, PortCam>(&mut root, df).map_err(ProbeError::Transport)?;
    let mut blk = VirtIOBlk::<VirtioHal, _>::new(transport).map_err(ProbeError::Device)?;
    let polled = match setup_msix(dev, common, index) {
        Ok(vector) => {
            blk.enable_interrupts();
            log::info!("virtio-blk {}: MSI-X vector {vector:#x}", dev.address);
            false
        }
        Err(why) => {
            blk.disable_interrupts();
            log::warn!("virtio-blk {}: {why}; polling for completions", dev.address);
            true
        }
    };
    let info = DiskInfo {
        prefix: "vd",
        major: genhd::VIRTBLK_MAJOR,
        capacity: blk.capacity(),
        read_only: blk.readonly(),
        max_sectors: MAX_SECTORS,
        polled,
    };
    let ops = VirtioBlkOps { blk, slots: Box::default(), by_token: [None; QUEUE_SIZE], address: dev.address };
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
