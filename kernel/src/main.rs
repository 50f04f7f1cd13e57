//! The kernel binary: boot, report the machine, run the `init=` program if
//! the command line names one, start the mm console, idle.

#![no_std]
#![no_main]

use bootloader_api::{BootInfo, entry_point};

entry_point!(kernel_main, config = &kernel::BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info);
    kernel::process::run_init();
    kernel::shell::start();
    kernel::idle()
}
