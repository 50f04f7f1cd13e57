//! The memory manager: Linux's `mm/` mechanisms in hardware-independent Rust.
//!
//! This crate never executes a privileged instruction. Everything it needs from
//! the machine comes through the small traits in [`arch`], which the kernel
//! implements for x86_64 and host tests implement with a simulation, so the real
//! mm code runs under `cargo test -p mm`.
//!
//! Module names follow the Linux file they mirror (see `docs/linux-mm-map.md`).
//! Today the crate holds the address vocabulary ([`addr`]) and the arch
//! boundary; the allocators arrive with their issues.

#![cfg_attr(not(test), no_std)]

pub mod addr;
pub mod arch;

pub use addr::{PAGE_SHIFT, PAGE_SIZE, Pfn, PhysAddr, VirtAddr};
