//! The kernel binary: boot, report the machine, idle.

#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};

entry_point!(kernel_main, config = &kernel::BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info);
    kernel::idle()
}
