//! Memory-mapping flags: Linux's `include/uapi/asm-generic/mman-common.h`
//! (`PROT_*`, most `MAP_*`, `MADV_*`, `MS_*`, `PKEY_*`),
//! `include/uapi/asm-generic/mman.h` (`MAP_GROWSDOWN`..`MAP_NORESERVE`,
//! `MCL_*`), `arch/x86/include/uapi/asm/mman.h` (`MAP_32BIT`) and
//! `include/uapi/linux/mman.h` (`MAP_SHARED`/`PRIVATE`/`SHARED_VALIDATE`,
//! `MREMAP_*`).
//!
//! Bit masks are `u32`; `madvise` advice values are `i32` codes, not bits.

/// `PROT_NONE`: the pages cannot be accessed.
pub const PROT_NONE: u32 = 0x0;
/// `PROT_READ`: the pages can be read.
pub const PROT_READ: u32 = 0x1;
/// `PROT_WRITE`: the pages can be written.
pub const PROT_WRITE: u32 = 0x2;
/// `PROT_EXEC`: the pages can be executed.
pub const PROT_EXEC: u32 = 0x4;
/// `PROT_SEM`: the pages may be used for atomic operations (no-op on x86).
pub const PROT_SEM: u32 = 0x8;
/// `PROT_GROWSDOWN`: `mprotect` extends the change to the start of a
/// grows-down mapping.
pub const PROT_GROWSDOWN: u32 = 0x0100_0000;
/// `PROT_GROWSUP`: `mprotect` extends the change to the end of a grows-up
/// mapping.
pub const PROT_GROWSUP: u32 = 0x0200_0000;

/// `MAP_SHARED`: changes are shared with other mappings of the object.
pub const MAP_SHARED: u32 = 0x01;
/// `MAP_PRIVATE`: changes are private (copy-on-write).
pub const MAP_PRIVATE: u32 = 0x02;
/// `MAP_SHARED_VALIDATE`: `MAP_SHARED`, failing on unknown flags.
pub const MAP_SHARED_VALIDATE: u32 = 0x03;
/// `MAP_TYPE`: the mask of the sharing type above.
pub const MAP_TYPE: u32 = 0x0f;
/// `MAP_FIXED`: place the mapping exactly at `addr`, replacing what is there.
pub const MAP_FIXED: u32 = 0x10;
/// `MAP_ANONYMOUS`: no file backs the mapping; it reads as zeroes.
pub const MAP_ANONYMOUS: u32 = 0x20;
/// `MAP_32BIT`: place the mapping in the low 2 GiB (x86_64 only).
pub const MAP_32BIT: u32 = 0x40;
/// `MAP_GROWSDOWN`: a stack-like mapping that grows down on faults below it.
pub const MAP_GROWSDOWN: u32 = 0x0100;
/// `MAP_DENYWRITE`: ignored (historically: `ETXTBSY` on writes to the file).
pub const MAP_DENYWRITE: u32 = 0x0800;
/// `MAP_EXECUTABLE`: ignored (historically: mark as executable image).
pub const MAP_EXECUTABLE: u32 = 0x1000;
/// `MAP_LOCKED`: lock the pages like `mlock`.
pub const MAP_LOCKED: u32 = 0x2000;
/// `MAP_NORESERVE`: do not reserve swap or commit for the mapping.
pub const MAP_NORESERVE: u32 = 0x4000;
/// `MAP_POPULATE`: prefault the page tables.
pub const MAP_POPULATE: u32 = 0x00_8000;
/// `MAP_NONBLOCK`: with `MAP_POPULATE`, do not block on I/O.
pub const MAP_NONBLOCK: u32 = 0x01_0000;
/// `MAP_STACK`: the mapping is a process or thread stack.
pub const MAP_STACK: u32 = 0x02_0000;
/// `MAP_HUGETLB`: back the mapping with huge pages.
pub const MAP_HUGETLB: u32 = 0x04_0000;
/// `MAP_SYNC`: synchronous page faults for DAX files
/// (needs `MAP_SHARED_VALIDATE`).
pub const MAP_SYNC: u32 = 0x08_0000;
/// `MAP_FIXED_NOREPLACE`: `MAP_FIXED`, but fail with `EEXIST` rather than
/// replace an existing mapping.
pub const MAP_FIXED_NOREPLACE: u32 = 0x10_0000;
/// `MAP_UNINITIALIZED`: anonymous memory need not be cleared (only with
/// `CONFIG_MMAP_ALLOW_UNINITIALIZED`, never on MMU kernels).
pub const MAP_UNINITIALIZED: u32 = 0x400_0000;
/// `MAP_FILE`: compatibility no-op.
pub const MAP_FILE: u32 = 0;
/// `MAP_HUGE_SHIFT`: with `MAP_HUGETLB`, log2 of the huge page size sits at
/// this bit offset.
pub const MAP_HUGE_SHIFT: u32 = 26;
/// `MAP_HUGE_MASK`: the mask of the huge page size field after shifting.
pub const MAP_HUGE_MASK: u32 = 0x3f;

/// `MREMAP_MAYMOVE`: `mremap` may move the mapping.
pub const MREMAP_MAYMOVE: u32 = 1;
/// `MREMAP_FIXED`: `mremap` moves the mapping to `new_address`.
pub const MREMAP_FIXED: u32 = 2;
/// `MREMAP_DONTUNMAP`: `mremap` leaves the old range mapped (and empty).
pub const MREMAP_DONTUNMAP: u32 = 4;

/// `MS_ASYNC`: `msync` schedules the writeback.
pub const MS_ASYNC: u32 = 1;
/// `MS_INVALIDATE`: `msync` invalidates other mappings of the file.
pub const MS_INVALIDATE: u32 = 2;
/// `MS_SYNC`: `msync` waits for the writeback.
pub const MS_SYNC: u32 = 4;

/// `MCL_CURRENT`: `mlockall` locks the current mappings.
pub const MCL_CURRENT: u32 = 1;
/// `MCL_FUTURE`: `mlockall` locks future mappings too.
pub const MCL_FUTURE: u32 = 2;
/// `MCL_ONFAULT`: `mlockall` locks pages as they fault in.
pub const MCL_ONFAULT: u32 = 4;
/// `MLOCK_ONFAULT`: `mlock2` locks pages as they fault in.
pub const MLOCK_ONFAULT: u32 = 0x01;

/// `MADV_NORMAL`: no special treatment.
pub const MADV_NORMAL: i32 = 0;
/// `MADV_RANDOM`: expect random references.
pub const MADV_RANDOM: i32 = 1;
/// `MADV_SEQUENTIAL`: expect sequential references.
pub const MADV_SEQUENTIAL: i32 = 2;
/// `MADV_WILLNEED`: the pages will be needed soon.
pub const MADV_WILLNEED: i32 = 3;
/// `MADV_DONTNEED`: drop the pages; private anonymous memory reads back as
/// zeroes.
pub const MADV_DONTNEED: i32 = 4;
/// `MADV_FREE`: the pages may be freed lazily under memory pressure.
pub const MADV_FREE: i32 = 8;
/// `MADV_REMOVE`: free the pages and their backing store.
pub const MADV_REMOVE: i32 = 9;
/// `MADV_DONTFORK`: a child does not inherit the range.
pub const MADV_DONTFORK: i32 = 10;
/// `MADV_DOFORK`: undo `MADV_DONTFORK`.
pub const MADV_DOFORK: i32 = 11;
/// `MADV_MERGEABLE`: KSM may merge identical pages.
pub const MADV_MERGEABLE: i32 = 12;
/// `MADV_UNMERGEABLE`: undo `MADV_MERGEABLE`.
pub const MADV_UNMERGEABLE: i32 = 13;
/// `MADV_HUGEPAGE`: worth backing with transparent huge pages.
pub const MADV_HUGEPAGE: i32 = 14;
/// `MADV_NOHUGEPAGE`: not worth backing with transparent huge pages.
pub const MADV_NOHUGEPAGE: i32 = 15;
/// `MADV_DONTDUMP`: exclude from core dumps.
pub const MADV_DONTDUMP: i32 = 16;
/// `MADV_DODUMP`: undo `MADV_DONTDUMP`.
pub const MADV_DODUMP: i32 = 17;
/// `MADV_WIPEONFORK`: a child sees the range zeroed.
pub const MADV_WIPEONFORK: i32 = 18;
/// `MADV_KEEPONFORK`: undo `MADV_WIPEONFORK`.
pub const MADV_KEEPONFORK: i32 = 19;
/// `MADV_COLD`: deactivate the pages.
pub const MADV_COLD: i32 = 20;
/// `MADV_PAGEOUT`: reclaim the pages.
pub const MADV_PAGEOUT: i32 = 21;
/// `MADV_POPULATE_READ`: prefault the page tables readable.
pub const MADV_POPULATE_READ: i32 = 22;
/// `MADV_POPULATE_WRITE`: prefault the page tables writable.
pub const MADV_POPULATE_WRITE: i32 = 23;
/// `MADV_DONTNEED_LOCKED`: `MADV_DONTNEED` that also drops locked pages.
pub const MADV_DONTNEED_LOCKED: i32 = 24;
/// `MADV_COLLAPSE`: collapse the range into huge pages synchronously.
pub const MADV_COLLAPSE: i32 = 25;
/// `MADV_HWPOISON`: poison the pages (testing).
pub const MADV_HWPOISON: i32 = 100;
/// `MADV_SOFT_OFFLINE`: soft-offline the pages (testing).
pub const MADV_SOFT_OFFLINE: i32 = 101;

/// `PKEY_DISABLE_ACCESS`: `pkey_alloc` rights bit forbidding all access.
pub const PKEY_DISABLE_ACCESS: u32 = 0x1;
/// `PKEY_DISABLE_WRITE`: `pkey_alloc` rights bit forbidding writes.
pub const PKEY_DISABLE_WRITE: u32 = 0x2;
/// `PKEY_ACCESS_MASK`: every valid `pkey_alloc` rights bit.
pub const PKEY_ACCESS_MASK: u32 = PKEY_DISABLE_ACCESS | PKEY_DISABLE_WRITE;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;

    /// Every constant against the host's `<linux/mman.h>` and the headers they include.
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["linux/mman.h"];
           PROT_READ, PROT_WRITE, PROT_EXEC, PROT_SEM, PROT_NONE, PROT_GROWSDOWN, PROT_GROWSUP, MAP_SHARED,
           MAP_PRIVATE, MAP_SHARED_VALIDATE, MAP_TYPE, MAP_FIXED, MAP_ANONYMOUS, MAP_32BIT, MAP_GROWSDOWN,
           MAP_DENYWRITE, MAP_EXECUTABLE, MAP_LOCKED, MAP_NORESERVE, MAP_POPULATE, MAP_NONBLOCK, MAP_STACK,
           MAP_HUGETLB, MAP_SYNC, MAP_FIXED_NOREPLACE, MAP_UNINITIALIZED, MAP_FILE, MAP_HUGE_SHIFT,
           MAP_HUGE_MASK, MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP, MS_ASYNC, MS_INVALIDATE, MS_SYNC,
           MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, MLOCK_ONFAULT, MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL,
           MADV_WILLNEED, MADV_DONTNEED, MADV_FREE, MADV_REMOVE, MADV_DONTFORK, MADV_DOFORK, MADV_HWPOISON,
           MADV_SOFT_OFFLINE, MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_DONTDUMP,
           MADV_DODUMP, MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ,
           MADV_POPULATE_WRITE, MADV_DONTNEED_LOCKED, MADV_COLLAPSE, PKEY_DISABLE_ACCESS, PKEY_DISABLE_WRITE,
           PKEY_ACCESS_MASK,
        );
    }
}
