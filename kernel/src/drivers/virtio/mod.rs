//! virtio over PCI through the `virtio-drivers` crate (rcore-os): the
//! crate's PCI transport and virtqueues, with this kernel's memory behind
//! its [`Hal`] (Linux `drivers/virtio/virtio_pci_modern.c` and
//! `virtio_ring.c` are what the crate replaces).
//!
//! - DMA memory ([`Hal::dma_alloc`]): contiguous, zeroed pages from the
//!   buddy allocator, reached through the direct map; freed to it again.
//! - Device registers ([`Hal::mmio_phys_to_virt`]): the BAR range is
//!   ioremapped uncached; the mappings live as long as the device (never
//!   removed).
//! - Sharing buffers ([`Hal::share`]): no IOMMU, so a buffer's physical
//!   address is the device address. Buffers come from the direct map (the
//!   block layer's pages, the driver's request headers) or, for a
//!   synchronous request's header, from a kernel stack; either way the
//!   range must be physically contiguous, which is checked. The crate is
//!   built without its `alloc` feature, so it allocates no memory of its
//!   own after setup (see [`blk`]).
//!
//! Configuration space goes through [`crate::drivers::pci`]'s port access.

pub mod blk;

use core::ptr::NonNull;

use mm::arch::PhysMemory;
use mm::gfp::Gfp;
use mm::{PAGE_SIZE, PhysAddr};
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};
use virtio_drivers::{BufferDirection, Hal};

use crate::drivers::pci::{self, PciAddress};

/// The kernel's side of the crate's [`Hal`].
pub struct VirtioHal;

fn order_for(pages: usize) -> u32 {
    pages.max(1).next_power_of_two().trailing_zeros()
}

/// Physical address of `virt`, through the direct map or the page tables.
fn virt_to_phys(virt: u64) -> Option<u64> {
    if let Some(phys) = mm::VirtAddr::new(virt).and_then(|v| crate::boot::DirectMap.virt_to_phys(v)) {
        return Some(phys.as_u64());
    }
    // The leaf's address is that of `virt`'s byte.
    crate::arch::x86_64::paging::translate(virt).map(|leaf| leaf.phys.as_u64())
}

// SAFETY: dma_alloc returns zeroed, page-aligned direct-map memory that
// the buddy allocator gave to us alone until dma_dealloc; mmio_phys_to_virt
// returns a fresh uncached mapping of exactly the asked range; share
// returns the physical address of memory that is contiguous (checked).
unsafe impl Hal for VirtioHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (virtio_drivers::PhysAddr, NonNull<u8>) {
        let order = order_for(pages);
        match crate::mm::alloc_pages(crate::sync::gfp_for_context() | Gfp::ZERO, order) {
            Some(pfn) => {
                let virt = crate::mm::page_address(pfn).as_mut_ptr::<u8>();
                (pfn.phys().as_u64(), NonNull::new(virt).unwrap_or(NonNull::dangling()))
            }
            // The crate reads a zero address as failure (Error::DmaError).
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(paddr: virtio_drivers::PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        // SAFETY: the crate's contract: `paddr` and `pages` are what
        // dma_alloc returned and were given, not yet freed, and nothing
        // uses the memory any more (the device has let go of it).
        match unsafe { crate::mm::free_pages(PhysAddr::new(paddr).pfn(), order_for(pages)) } {
            Ok(()) => 0,
            Err(_) => -1,
        }
    }

    unsafe fn mmio_phys_to_virt(paddr: virtio_drivers::PhysAddr, size: usize) -> NonNull<u8> {
        // The probe checked every region against its BAR and a size bound
        // before the crate asks for it (`blk::check_virtio_caps`), so this
        // fails only when vmalloc space runs out at boot.
        let virt = crate::vmalloc::ioremap(PhysAddr::new(paddr), size as u64)
            .unwrap_or_else(|e| panic!("virtio: cannot map device registers at {paddr:#x}+{size:#x}: {e}"));
        NonNull::new(virt.as_mut_ptr::<u8>()).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> virtio_drivers::PhysAddr {
        let start = buffer.as_ptr().cast::<u8>() as u64;
        let len = buffer.len() as u64;
        let phys = virt_to_phys(start).unwrap_or_else(|| panic!("virtio: buffer at {start:#x} is not mapped"));
        // Every later page must follow on physically: the device sees one range.
        let mut page = (start & !(PAGE_SIZE - 1)) + PAGE_SIZE;
        while page < start + len {
            let expected = phys + (page - start);
            if virt_to_phys(page) != Some(expected) {
                panic!("virtio: buffer at {start:#x}+{len:#x} is not physically contiguous");
            }
            page += PAGE_SIZE;
        }
        phys
    }

    unsafe fn unshare(_paddr: virtio_drivers::PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// The crate's view of configuration space: our port access.
pub struct PortCam;

fn address(df: DeviceFunction) -> PciAddress {
    PciAddress { bus: df.bus, device: df.device, function: df.function }
}

impl ConfigurationAccess for PortCam {
    fn read_word(&self, df: DeviceFunction, register_offset: u8) -> u32 {
        pci::read_config_u32(address(df), register_offset)
    }

    fn write_word(&mut self, df: DeviceFunction, register_offset: u8, data: u32) {
        pci::write_config_u32(address(df), register_offset, data);
    }

    unsafe fn unsafe_clone(&self) -> Self {
        PortCam
    }
}
