//! The memory manager: Linux's `mm/` mechanisms in hardware-independent Rust.
//!
//! This crate never executes a privileged instruction. Everything it needs from
//! the machine comes through the small traits in [`arch`], which the kernel
//! implements for x86_64 and host tests implement with a simulation, so the real
//! mm code runs under `cargo test -p mm`.
//!
//! Module names follow the Linux file they mirror (see `docs/linux-mm-map.md`).
//! Today it holds the address vocabulary ([`addr`]), the arch boundary,
//! boot-time memory ([`memblock`]), the page descriptor ([`page`]), zones
//! ([`mmzone`]), allocation flags ([`gfp`]), the buddy allocator
//! ([`page_alloc`]) with its counters and reports ([`vmstat`], [`meminfo`])
//! and whole-page copies and clears ([`highmem`]),
//! and the slab allocator
//! ([`slub`], [`slab_common`]: object caches and kmalloc), page tables
//! ([`pgtable`], walked by [`pagewalk`], dumped and W+X-checked by
//! [`ptdump`]), the kernel virtual address allocator ([`vmalloc`]:
//! vmap areas), and user address spaces ([`vma`]: VMAs and the gap
//! search), on an intrusive augmented AVL tree ([`avl`]); [`mmap`] and
//! [`memory`] (mmap, munmap, mprotect, brk, fork, page faults) with
//! [`mremap`], [`madvise`], [`mincore`], [`mlock`] and [`msync`]; page
//! [`migrate`] and memory [`compaction`]; and the page cache: its index,
//! the [`xarray`], one file's cache ([`filemap`]), dirty pages and
//! writeback ([`page_writeback`], errors through [`errseq`]) and the
//! [`readahead`] policy (which pages a read or fault brings in ahead of
//! need); shmem's object for shared anonymous memory ([`shmem`]) and the
//! memfd seals ([`memfd`]); the LRU lists ([`swap`]), reclaim
//! ([`vmscan`]), the shadow entries reclaim leaves behind to detect
//! refaults ([`workingset`]) and the slab shrinkers reclaim runs
//! ([`shrinker`]); and swap areas' headers and slot allocation
//! ([`swapfile`]); and overcommit accounting ([`overcommit`]: the
//! committed total and `vm.overcommit_memory`'s policies).

#![cfg_attr(not(test), no_std)]

pub mod addr;
pub mod arch;
pub mod avl;
pub mod compaction;
pub mod errseq;
pub mod filemap;
pub mod futex;
pub mod gfp;
pub mod highmem;
pub mod interval_tree;
pub mod kmemmap;
pub mod list;
pub mod madvise;
pub mod memblock;
pub mod memfd;
pub mod meminfo;
pub mod memory;
pub mod migrate;
pub mod mincore;
pub mod mlock;
pub mod mmap;
pub mod mmzone;
pub mod mremap;
pub mod msync;
pub mod oom_kill;
pub mod overcommit;
pub mod page;
pub mod page_alloc;
pub mod page_flags;
pub mod page_writeback;
pub mod pagewalk;
pub mod percpu;
pub mod pgtable;
pub mod ptdump;
pub mod readahead;
pub mod rmap;
pub mod shmem;
pub mod show_mem;
pub mod shrinker;
#[cfg(test)]
mod sim;
pub mod slab_common;
pub mod slub;
pub mod swap;
pub mod swap_state;
pub mod swapfile;
pub mod swapops;
pub mod task_mmu;
pub mod uaddr;
pub mod vma;
pub mod vmalloc;
pub mod vmscan;
pub mod vmstat;
pub mod workingset;
pub mod xarray;

pub use addr::{PAGE_SHIFT, PAGE_SIZE, Pfn, PhysAddr, VirtAddr};
