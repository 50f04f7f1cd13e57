//! The kernel: x86_64 machine code, drivers and the in-kernel test runtime
//! around the hardware-independent memory manager in the `mm` crate.
//!
//! Boot reads top to bottom in [`boot::init`]: serial console first so that
//! every later failure is visible, then the clock, the command line, the CPU
//! tables (GDT/TSS/IDT), the memory map handed over by the bootloader and
//! finally the memory manager ([`mm::init`]: memblock, the page descriptors
//! and the buddy allocator; [`slab::init`]: SLUB and kmalloc as the heap),
//! the kernel's own page tables (`arch::x86_64::pgtable`) and
//! [`vmalloc`]. Binaries (`kernel` itself and the `ktests` test kernel) enter
//! through `bootloader_api::entry_point!` with [`BOOTLOADER_CONFIG`] and call
//! [`init`].

#![no_std]

extern crate alloc;

pub mod arch;
pub mod block;
pub mod boot;
pub mod cmdline;
pub mod compaction;
pub mod cred;
pub mod drivers;
pub mod exec;
pub mod filemap;
pub mod fs;
pub mod futex;
pub mod ipc;
pub mod kbench;
pub mod ktest;
pub mod memfd;
pub mod mm;
pub mod mmap;
pub mod oom_kill;
pub mod page_io;
pub mod panic;
pub mod percpu;
pub mod printk;
pub mod process;
pub mod resource;
pub mod sched;
pub mod section;
pub mod shell;
pub mod shmem;
pub mod signal;
pub mod slab;
pub mod swap_state;
pub mod swapfile;
pub mod sync;
pub mod sys;
pub mod syscall;
pub mod time;
pub mod vmalloc;

pub use boot::{BOOTLOADER_CONFIG, PAGE_OFFSET, idle, init};
/// ELF executables, validated before exec maps them (the parser is the
/// host-tested `formats` crate's).
pub use formats::elf;
