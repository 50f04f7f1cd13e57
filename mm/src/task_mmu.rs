//! What `/proc/PID/` tells of an address space (Linux
//! `fs/proc/task_mmu.c`): the `maps` lines (`show_map_vma`), the
//! `smaps` and `smaps_rollup` figures gathered by a walk of each VMA's
//! ptes (`smaps_pte_range`, `smaps_account`), `pagemap`'s 64-bit entry
//! per page (`pagemap_pmd_range`, `pte_to_pagemap_entry`), and the
//! page counts of `statm` and `status` (`task_statm`, `task_mem`).
//!
//! # smaps
//! Every pte of a VMA is looked at (Linux `smaps_pte_entry`): a present
//! pte's page counts in `Rss`, in `Referenced` if the pte is young or
//! the page `PG_referenced`, in `Anonymous` if it is anonymous, and in
//! `Pss` as `PAGE_SIZE / mapcount` (exactly `PAGE_SIZE` when the page
//! has one reference, Linux's `page_count == 1` shortcut): private if
//! mapped once, shared if more, dirty if the pte or the page is. The
//! shared zero page is not counted (Linux `vm_normal_page` returns none
//! for it). A swap entry counts in `Swap`, and in `SwapPss` as
//! `PAGE_SIZE / swap count` (Linux `swp_swapcount`); a migration entry
//! counts its page as mapped once. Fixed-point sums are kept as Linux
//! keeps them (`PSS_SHIFT` bits of fraction), so the rounding is the
//! same.
//!
//! # pagemap
//! One entry per virtual page from the address the file offset names
//! (offset / 8 * 4096) to `TASK_SIZE`: bit 63 present, 62 swapped, 61 a
//! file or shared-anonymous page, 56 mapped exactly once, and bits 0-54
//! the frame number (or the swap type in 0-4 and offset in 5-54) for a
//! reader with `CAP_SYS_ADMIN`, else 0, as Linux since 4.2.
//!
//! Differences from Linux: no soft-dirty tracking (bit 55 and
//! `VM_SOFTDIRTY` are never set: Linux marks new VMAs and ptes soft-dirty,
//! so its bit 55 is mostly 1) and no uffd-wp (bit 57); no transparent or
//! hugetlb huge pages (their lines are 0, `THPeligible` 0, the
//! page sizes 4 kB); no KSM (0); a shmem file's pages swapped out of the
//! file rather than out of a pte are not counted in `Swap` (Linux
//! `shmem_swap_usage`); `page_is_young` (idle page tracking) is not
//! consulted; `maps` shows device and inode as `00:00 0`.
//!
//! Locking: the caller holds the mmap lock for reading; each pte table
//! is read under the page-table lock, as Linux's walks hold the pte lock,
//! so a page a pte maps stays while its descriptor is read.

#![forbid(unsafe_code)]

use core::fmt::{self, Write as _};
use core::sync::atomic::{AtomicU64, Ordering};

use crate::addr::{PAGE_SHIFT, PAGE_SIZE, VirtAddr};
use crate::mmap::{MmCounter, MmStruct, TASK_SIZE, is_data_mapping};
use crate::page::Page;
use crate::page_flags::PageFlags;
use crate::pgtable::{Entry, Level, PgProt, PteFormat};
use crate::rmap::page_anon;
use crate::swapops::{MAX_SWAPFILES, MAX_SWAPFILES_SHIFT, SwpEntry, is_migration_entry, migration_entry_to_pfn};
use crate::vma::{Vma, VmaAlloc, VmaFlags};

/// Fraction bits of the proportional sums (Linux `PSS_SHIFT`).
pub const PSS_SHIFT: u32 = 12;

/// Bytes a pte table maps: the walks take the page-table lock once per
/// table (Linux's per-pmd pte lock).
const PMD_SIZE: u64 = 512 * PAGE_SIZE;

/// What a walk of one or more VMAs found (Linux `struct
/// mem_size_stats`): bytes, the `pss*` sums with [`PSS_SHIFT`] bits of
/// fraction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct MemSizeStats {
    pub resident: u64,
    pub shared_clean: u64,
    pub shared_dirty: u64,
    pub private_clean: u64,
    pub private_dirty: u64,
    pub referenced: u64,
    pub anonymous: u64,
    pub lazyfree: u64,
    pub swap: u64,
    pub pss: u64,
    pub pss_anon: u64,
    pub pss_file: u64,
    pub pss_shmem: u64,
    pub pss_dirty: u64,
    pub pss_locked: u64,
    pub swap_pss: u64,
}

impl MemSizeStats {
    /// Linux `smaps_page_accumulate`.
    fn page_accumulate(&mut self, page: &Page, pss: u64, dirty: bool, locked: bool, private: bool) {
        self.pss += pss;
        if page_anon(page) {
            self.pss_anon += pss;
        } else if page.test(PageFlags::SWAPBACKED) {
            self.pss_shmem += pss;
        } else {
            self.pss_file += pss;
        }
        if locked {
            self.pss_locked += pss;
        }
        let dirty = dirty || page.test(PageFlags::DIRTY);
        if dirty {
            self.pss_dirty += pss;
        }
        *match (private, dirty) {
            (true, true) => &mut self.private_dirty,
            (true, false) => &mut self.private_clean,
            (false, true) => &mut self.shared_dirty,
            (false, false) => &mut self.shared_clean,
        } += PAGE_SIZE;
    }

    /// Linux `smaps_account` for one small page.
    fn account(&mut self, page: &Page, young: bool, dirty: bool, locked: bool, migration: bool) {
        if page_anon(page) {
            self.anonymous += PAGE_SIZE;
            if !page.test(PageFlags::SWAPBACKED) && !dirty && !page.test(PageFlags::DIRTY) {
                self.lazyfree += PAGE_SIZE;
            }
        }
        self.resident += PAGE_SIZE;
        if young || page.test(PageFlags::REFERENCED) {
            self.referenced += PAGE_SIZE;
        }
        let full = PAGE_SIZE << PSS_SHIFT;
        if page.refcount() == 1 || migration {
            self.page_accumulate(page, full, dirty, locked, true);
            return;
        }
        let mapcount = page.mapcount().max(1) as u64;
        self.page_accumulate(page, full / mapcount, dirty, locked, mapcount < 2);
    }

    /// A swap entry in a pte (Linux `smaps_pte_entry`'s swap branch).
    fn account_swap(&mut self, swap_count: u32) {
        self.swap += PAGE_SIZE;
        self.swap_pss += (PAGE_SIZE << PSS_SHIFT) / u64::from(swap_count.max(1));
    }
}

/// `/proc/PID/pagemap` bits (Linux `PM_*`).
pub mod pm {
    /// Bits 0-54: the frame number, or the swap type and offset.
    pub const PFRAME_MASK: u64 = (1 << 55) - 1;
    /// Bit 55: the pte is soft-dirty (never set here).
    pub const SOFT_DIRTY: u64 = 1 << 55;
    /// Bit 56: the page is mapped exactly once.
    pub const MMAP_EXCLUSIVE: u64 = 1 << 56;
    /// Bit 61: a file page or shared anonymous memory.
    pub const FILE: u64 = 1 << 61;
    /// Bit 62: swapped (or a migration entry).
    pub const SWAP: u64 = 1 << 62;
    /// Bit 63: present.
    pub const PRESENT: u64 = 1 << 63;
}

/// `/proc/PID/statm`'s figures in pages (Linux `task_statm`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statm {
    /// `total_vm`.
    pub size: u64,
    /// Resident pages (anonymous, file and shmem).
    pub resident: u64,
    /// Resident file and shmem pages.
    pub shared: u64,
    /// The program's text, from `start_code` to `end_code`.
    pub text: u64,
    /// `data_vm + stack_vm`.
    pub data: u64,
}

/// The smaps `VmFlags` mnemonics by bit (Linux `show_smap_vma_flags`
/// from 6.2 on, for the flags a VMA here can have and their neighbours).
const MNEMONICS: [(VmaFlags, &str); 18] = [
    (VmaFlags::READ, "rd"),
    (VmaFlags::WRITE, "wr"),
    (VmaFlags::EXEC, "ex"),
    (VmaFlags::SHARED, "sh"),
    (VmaFlags::MAYREAD, "mr"),
    (VmaFlags::MAYWRITE, "mw"),
    (VmaFlags::MAYEXEC, "me"),
    (VmaFlags::MAYSHARE, "ms"),
    (VmaFlags::GROWSDOWN, "gd"),
    (VmaFlags::LOCKED, "lo"),
    (VmaFlags::SEQ_READ, "sr"),
    (VmaFlags::RAND_READ, "rr"),
    (VmaFlags::DONTCOPY, "dc"),
    (VmaFlags::DONTEXPAND, "de"),
    (VmaFlags::LOCKONFAULT, "lf"),
    (VmaFlags::ACCOUNT, "ac"),
    (VmaFlags::NORESERVE, "nr"),
    (VmaFlags::WIPEONFORK, "wf"),
];

/// A stack (Linux `is_stack_mapping`: `VM_STACK` is `VM_GROWSDOWN` on x86).
fn is_stack_mapping(flags: VmaFlags) -> bool {
    flags.contains(VmaFlags::GROWSDOWN)
}

/// Executable code (Linux `is_exec_mapping`).
fn is_exec_mapping(flags: VmaFlags) -> bool {
    flags & (VmaFlags::WRITE | VmaFlags::EXEC | VmaFlags::GROWSDOWN) == VmaFlags::EXEC
}

/// Writes `label`, `bytes` in kB right-aligned in 8 columns and " kB"
/// (Linux's `SEQ_PUT_DEC`).
fn kb(out: &mut dyn fmt::Write, label: &str, bytes: u64) -> fmt::Result {
    writeln!(out, "{label}{:8} kB", bytes >> 10)
}

impl<F: PteFormat, A: VmaAlloc> MmStruct<'_, F, A> {
    /// The `/proc/PID/maps` lines (Linux `show_map_vma` for every VMA).
    pub fn show_maps(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        for v in self.vmas.iter() {
            self.show_map_vma(v, out)?;
        }
        Ok(())
    }

    /// One `maps` line (Linux `show_map_vma`): range, permissions, file
    /// offset, device and inode (always `00:00 0` here), and the file's
    /// name, `[heap]` or `[stack]` from column 73.
    fn show_map_vma(&self, v: &Vma, out: &mut dyn fmt::Write) -> fmt::Result {
        let (offset, name): (u64, &str) = match v.file() {
            Some(file) => (v.pgoff() << PAGE_SHIFT, file.name()),
            None => (0, ""),
        };
        let start = v.start().as_u64();
        let end = v.end().as_u64();
        let label = if v.file().is_some() {
            name
        } else if start <= self.layout.start_brk && end >= self.layout.brk && self.layout.brk > 0 {
            "[heap]"
        } else if start <= self.layout.start_stack && end >= self.layout.start_stack {
            "[stack]"
        } else {
            ""
        };
        show_vma_header(out, start, end, v.flags(), offset, label)
    }

    /// The `/proc/PID/smaps` text: each VMA's `maps` line, its figures and
    /// flags (Linux `show_smap`).
    pub fn show_smaps(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        for v in self.vmas.iter() {
            let mut mss = MemSizeStats::default();
            self.smap_gather_stats(v, &mut mss);
            self.show_map_vma(v, out)?;
            kb(out, "Size:           ", v.end().as_u64() - v.start().as_u64())?;
            kb(out, "KernelPageSize: ", PAGE_SIZE)?;
            kb(out, "MMUPageSize:    ", PAGE_SIZE)?;
            show_smap(out, &mss, false)?;
            writeln!(out, "THPeligible:    0")?;
            out.write_str("VmFlags: ")?;
            for (flag, name) in MNEMONICS {
                if v.flags().contains(flag) {
                    write!(out, "{name} ")?;
                }
            }
            writeln!(out)?;
        }
        Ok(())
    }

    /// The `/proc/PID/smaps_rollup` text: every VMA's figures summed under
    /// one line spanning them (Linux `show_smaps_rollup`).
    pub fn show_smaps_rollup(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        let mut mss = MemSizeStats::default();
        let (mut first, mut last) = (None, 0);
        for v in self.vmas.iter() {
            first.get_or_insert(v.start().as_u64());
            last = v.end().as_u64();
            self.smap_gather_stats(v, &mut mss);
        }
        show_vma_header(out, first.unwrap_or(0), last, VmaFlags::empty(), 0, "[rollup]")?;
        show_smap(out, &mss, true)
    }

    /// Adds what the ptes of `vma` map to `mss` (Linux
    /// `smap_gather_stats` over `smaps_pte_range`).
    pub fn smap_gather_stats(&self, vma: &Vma, mss: &mut MemSizeStats) {
        let locked = vma.flags().contains(VmaFlags::LOCKED);
        let pgdat = self.pgd.pgdat();
        let fmt = self.pgd.format();
        let swap_count = |entry: SwpEntry| pgdat.swap_backend().map_or(1, |b| b.swap_count(entry));
        let mut at = vma.start().as_u64();
        let end = vma.end().as_u64();
        while at < end {
            let next = ((at | (PMD_SIZE - 1)) + 1).min(end);
            let _ptl = self.page_table_lock.lock();
            self.pgd.for_each_pte(at, next, &mut |_, slot| {
                let (pfn, young, dirty, migration) = match fmt.decode(slot.load(Ordering::Acquire), Level::Pte) {
                    Entry::Leaf(leaf) => (
                        leaf.phys.pfn(),
                        leaf.prot.contains(PgProt::ACCESSED),
                        leaf.prot.contains(PgProt::DIRTY),
                        false,
                    ),
                    Entry::Swap(entry) if entry.ty() < MAX_SWAPFILES => return mss.account_swap(swap_count(entry)),
                    Entry::Swap(entry) => match migration_entry_to_pfn(entry) {
                        Some(pfn) => (pfn, false, false, true),
                        None => return,
                    },
                    Entry::None | Entry::Table(_) => return,
                };
                // Linux `vm_normal_page`: the zero page is nobody's.
                if pfn == self.zero_pfn {
                    return;
                }
                if let Some(page) = pgdat.pfn_to_page(pfn) {
                    mss.account(page, young, dirty, locked, migration);
                }
            });
            at = next;
        }
    }

    /// Fills `out` with the pagemap entries of the pages from virtual page
    /// `vpfn` on (Linux `pagemap_read` over `pagemap_pmd_range` and
    /// `pagemap_pte_hole`), frame numbers only if `show_pfn`; returns how
    /// many were filled: fewer than `out.len()` only where `TASK_SIZE`
    /// ends the address space.
    pub fn pagemap_read(&self, vpfn: u64, out: &mut [u64], show_pfn: bool) -> usize {
        let last_vpfn = TASK_SIZE >> PAGE_SHIFT;
        let n = (last_vpfn.saturating_sub(vpfn)).min(out.len() as u64) as usize;
        let mut i = 0;
        while i < n {
            let addr = (vpfn + i as u64) << PAGE_SHIFT;
            let chunk_end = ((addr | (PMD_SIZE - 1)) + 1).min(((vpfn + n as u64) << PAGE_SHIFT).min(TASK_SIZE));
            let count = ((chunk_end - addr) >> PAGE_SHIFT) as usize;
            let entries = &mut out[i..i + count];
            entries.fill(0);
            let table = VirtAddr::new(addr).and_then(|va| self.pgd.pte_table(va, false).ok().flatten());
            if let Some(table) = table {
                let _ptl = self.page_table_lock.lock();
                let first = Level::Pte.index(addr);
                for (entry, slot) in entries.iter_mut().zip(&table[first..]) {
                    *entry = self.pte_to_pagemap_entry(slot, show_pfn);
                }
            }
            i += count;
        }
        n
    }

    /// One pagemap entry (Linux `pte_to_pagemap_entry`).
    fn pte_to_pagemap_entry(&self, slot: &AtomicU64, show_pfn: bool) -> u64 {
        let pgdat = self.pgd.pgdat();
        let (mut flags, frame, pfn, migration) =
            match self.pgd.format().decode(slot.load(Ordering::Acquire), Level::Pte) {
                Entry::Leaf(leaf) => {
                    let pfn = leaf.phys.pfn();
                    // Linux `vm_normal_page`: the zero page has no page.
                    let page = (pfn != self.zero_pfn).then_some(pfn);
                    (pm::PRESENT, pfn.as_u64(), page, false)
                }
                Entry::Swap(entry) => {
                    let page = migration_entry_to_pfn(entry);
                    let offset = page.map_or(entry.offset(), |pfn| pfn.as_u64());
                    let frame = u64::from(entry.ty()) | (offset << MAX_SWAPFILES_SHIFT);
                    (pm::SWAP, frame, page, is_migration_entry(entry))
                }
                Entry::None | Entry::Table(_) => return 0,
            };
        if let Some(page) = pfn.and_then(|pfn| pgdat.pfn_to_page(pfn)) {
            if !page_anon(page) {
                flags |= pm::FILE;
            }
            if !migration && page.mapcount() == 1 {
                flags |= pm::MMAP_EXCLUSIVE;
            }
        }
        if show_pfn { flags | (frame & pm::PFRAME_MASK) } else { flags }
    }

    /// `statm`'s figures (Linux `task_statm`).
    pub fn task_statm(&self) -> Statm {
        let shared = self.counter(MmCounter::FilePages) + self.counter(MmCounter::ShmemPages);
        Statm {
            size: self.total_vm(),
            resident: shared + self.counter(MmCounter::AnonPages),
            shared,
            text: self.text_pages(),
            data: self.data_vm() + self.stack_vm(),
        }
    }

    /// Pages from `start_code` to `end_code`, rounded out to pages (Linux
    /// `task_statm`'s text).
    pub fn text_pages(&self) -> u64 {
        let end = self.layout.end_code.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        end.saturating_sub(self.layout.start_code & !(PAGE_SIZE - 1)) >> PAGE_SHIFT
    }

    fn vm_pages_where(&self, pred: impl Fn(VmaFlags) -> bool) -> u64 {
        self.vmas.iter().filter(|v| pred(v.flags())).map(Vma::pages).sum()
    }

    /// Pages of private writable, non-stack VMAs (Linux `data_vm`).
    pub fn data_vm(&self) -> u64 {
        self.vm_pages_where(is_data_mapping)
    }

    /// Pages of stack VMAs (Linux `stack_vm`).
    pub fn stack_vm(&self) -> u64 {
        self.vm_pages_where(is_stack_mapping)
    }

    /// Pages of executable, non-writable VMAs (Linux `exec_vm`).
    pub fn exec_vm(&self) -> u64 {
        self.vm_pages_where(is_exec_mapping)
    }

    /// Pages of mlocked VMAs (Linux `locked_vm`).
    pub fn locked_vm(&self) -> u64 {
        self.vm_pages_where(|f| f.contains(VmaFlags::LOCKED))
    }
}

/// The fixed part of a `maps` line and its name from column 73 (Linux
/// `show_vma_header_prefix` then `seq_pad`).
fn show_vma_header(
    out: &mut dyn fmt::Write,
    start: u64,
    end: u64,
    flags: VmaFlags,
    offset: u64,
    name: &str,
) -> fmt::Result {
    let flag = |b: VmaFlags, c: char| if flags.contains(b) { c } else { '-' };
    let mut head = LineBuf::new();
    write!(
        head,
        "{start:08x}-{end:08x} {}{}{}{} {offset:08x} 00:00 0",
        flag(VmaFlags::READ, 'r'),
        flag(VmaFlags::WRITE, 'w'),
        flag(VmaFlags::EXEC, 'x'),
        if flags.contains(VmaFlags::MAYSHARE) { 's' } else { 'p' },
    )?;
    out.write_str(head.as_str())?;
    if name.is_empty() {
        return writeln!(out);
    }
    // Linux pads the fixed part to 73 columns before a name
    // (`seq_setwidth(m, 25 + sizeof(void *) * 6 - 1)`, `seq_pad`).
    let pad = 73usize.saturating_sub(head.len).max(1);
    writeln!(out, "{:pad$}{name}", "")
}

/// The figures common to `smaps` and `smaps_rollup` (Linux
/// `__show_smap`, 6.x's lines and order; `KSM` and the huge-page lines
/// always 0).
fn show_smap(out: &mut dyn fmt::Write, mss: &MemSizeStats, rollup: bool) -> fmt::Result {
    kb(out, "Rss:            ", mss.resident)?;
    kb(out, "Pss:            ", mss.pss >> PSS_SHIFT)?;
    kb(out, "Pss_Dirty:      ", mss.pss_dirty >> PSS_SHIFT)?;
    if rollup {
        kb(out, "Pss_Anon:       ", mss.pss_anon >> PSS_SHIFT)?;
        kb(out, "Pss_File:       ", mss.pss_file >> PSS_SHIFT)?;
        kb(out, "Pss_Shmem:      ", mss.pss_shmem >> PSS_SHIFT)?;
    }
    kb(out, "Shared_Clean:   ", mss.shared_clean)?;
    kb(out, "Shared_Dirty:   ", mss.shared_dirty)?;
    kb(out, "Private_Clean:  ", mss.private_clean)?;
    kb(out, "Private_Dirty:  ", mss.private_dirty)?;
    kb(out, "Referenced:     ", mss.referenced)?;
    kb(out, "Anonymous:      ", mss.anonymous)?;
    kb(out, "KSM:            ", 0)?;
    kb(out, "LazyFree:       ", mss.lazyfree)?;
    kb(out, "AnonHugePages:  ", 0)?;
    kb(out, "ShmemPmdMapped: ", 0)?;
    kb(out, "FilePmdMapped:  ", 0)?;
    kb(out, "Shared_Hugetlb: ", 0)?;
    writeln!(out, "Private_Hugetlb: {:7} kB", 0)?;
    kb(out, "Swap:           ", mss.swap)?;
    kb(out, "SwapPss:        ", mss.swap_pss >> PSS_SHIFT)?;
    kb(out, "Locked:         ", mss.pss_locked >> PSS_SHIFT)
}

/// A line of at most 96 bytes built on the stack (mm has no allocator).
struct LineBuf {
    buf: [u8; 96],
    len: usize,
}

impl LineBuf {
    fn new() -> Self {
        LineBuf { buf: [0; 96], len: 0 }
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl fmt::Write for LineBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
