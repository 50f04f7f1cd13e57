//! The test kernel: the real kernel plus every `#[ktest]` suite, booted by
//! `cargo xtask test`. Each module is a suite; a test's name is
//! `suite::function`.

#![no_std]
#![no_main]

extern crate alloc;

use bootloader_api::{BootInfo, entry_point};

mod benches;
mod block;
mod boot;
mod compaction;
mod console;
mod context;
mod elf;
mod exceptions;
mod fs;
mod futex;
mod gdb;
mod harness;
mod hrtimer;
mod initramfs;
mod mmap_lock;
mod oom;
mod page_alloc;
mod pagecache;
mod pci;
mod percpu;
mod pgtable;
mod process;
mod sched;
mod selftest;
mod shmem;
mod shrinker;
mod slab;
mod smp;
mod swap;
mod swapstress;
mod threads;
mod vmalloc;
mod vmstat;
mod workingset;
mod xarray;

entry_point!(test_main, config = &kernel::BOOTLOADER_CONFIG);

fn test_main(boot_info: &'static mut BootInfo) -> ! {
    kernel::ktest::main(boot_info)
}
