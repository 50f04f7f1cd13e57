//! Device drivers: what the kernel needs of the (virtual) machine today.

pub mod fw_cfg;
pub mod mem;
pub mod pci;
pub mod qemu_exit;
pub mod random;
pub mod rtc;
pub mod serial;
pub mod virtio;
