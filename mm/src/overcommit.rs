//! Overcommit accounting (Linux `mm/util.c`: `__vm_enough_memory`,
//! `vm_commit_limit`, `vm_memory_committed`, the `overcommit_*`,
//! `*_reserve_kbytes` and `max_map_count` sysctls and their handlers;
//! `include/linux/mman.h`: `vm_acct_memory`, `vm_unacct_memory`;
//! Documentation/mm/overcommit-accounting.rst). Named for the mechanism
//! rather than for `util.c`, which holds many others.
//!
//! Memory a process could dirty without a file to write it back to is
//! *committed*: private writable mappings, the heap, the stack. Such a
//! VMA has `VM_ACCOUNT` ([`crate::vma::VmaFlags::ACCOUNT`]) and its pages
//! are counted in the machine-wide [`Overcommit::committed_as`] (Linux
//! `vm_committed_as`, `Committed_AS` in /proc/meminfo) from the moment
//! the VMA (or its growth) exists until it goes, faulted in or not.
//! Before it adds pages, the mm asks [`Overcommit::vm_enough_memory`]
//! (Linux `__vm_enough_memory`), which charges them and decides under
//! `vm.overcommit_memory`:
//!
//! - [`OvercommitPolicy::Guess`] (0, the default): refuse only a request
//!   larger than all RAM and swap together (Linux 5.9 and later; before,
//!   it estimated free memory).
//! - [`OvercommitPolicy::Always`] (1): never refuse.
//! - [`OvercommitPolicy::Never`] (2): refuse once the committed total
//!   reaches the commit limit ([`Overcommit::vm_commit_limit`], /proc/meminfo's
//!   `CommitLimit`: `vm.overcommit_kbytes` if set, else
//!   `vm.overcommit_ratio` percent of RAM, plus all swap), less
//!   `vm.admin_reserve_kbytes` for a caller without `CAP_SYS_ADMIN` and
//!   less the smaller of a thirty-second of the caller's mapped size and
//!   `vm.user_reserve_kbytes`.
//!
//! Which VMAs are charged, and when, is [`crate::mmap`]'s (with
//! [`crate::mremap`]); the invariant it keeps is that
//! [`Overcommit::committed_as`] is the sum of the pages of every
//! `VM_ACCOUNT` VMA of every address space (the model-based tests of
//! `mmap` check it after every step).
//!
//! The counter is one atomic, not Linux's per-CPU counter with its
//! batch, so it is exact at every read and `vm.overcommit_memory = 2`
//! needs no resynchronisation (Linux's `overcommit_policy_handler` syncs
//! every CPU's part when the policy becomes NEVER). The sysctls are
//! atomics read once per decision, as Linux's `__read_mostly` globals
//! are; no lock is taken.
//!
//! Differences from Linux:
//! - No hugetlb pages to leave out of the commit limit.
//! - `vm.overcommit_ratio` takes 0 to `INT_MAX` (Linux's
//!   `proc_dointvec` also takes a negative ratio).
//! - shmem files are not charged: Linux charges a shared anonymous
//!   mapping's whole size at its creation (`shmem_acct_size`, unless
//!   `MAP_NORESERVE`) and a tmpfs file's pages as they are allocated
//!   (`shmem_acct_blocks`); ours charges neither, so `Committed_AS`
//!   leaves out shared anonymous memory, tmpfs and System V shared
//!   memory.
//! - No warning is printed on a refusal (Linux's ratelimited
//!   "not enough memory for the allocation").

#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::addr::PAGE_SHIFT;
use crate::mmzone::RangeError;

/// `vm.overcommit_memory` (Linux `OVERCOMMIT_GUESS`, `OVERCOMMIT_ALWAYS`,
/// `OVERCOMMIT_NEVER`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OvercommitPolicy {
    /// 0: refuse only what could never fit in RAM and swap.
    Guess = 0,
    /// 1: never refuse.
    Always = 1,
    /// 2: keep commitments within the commit limit.
    Never = 2,
}

impl OvercommitPolicy {
    /// The policy of a sysctl value, if it is one (Linux bounds the
    /// sysctl to 0..=2).
    pub fn from_value(value: u64) -> Option<Self> {
        match value {
            0 => Some(OvercommitPolicy::Guess),
            1 => Some(OvercommitPolicy::Always),
            2 => Some(OvercommitPolicy::Never),
            _ => None,
        }
    }
}

/// Linux `DEFAULT_MAX_MAP_COUNT` (`USHRT_MAX - MAPCOUNT_ELF_CORE_MARGIN`):
/// `vm.max_map_count` at boot.
pub const DEFAULT_MAX_MAP_COUNT: usize = 65530;

/// `vm.overcommit_ratio`'s default (Linux `sysctl_overcommit_ratio`).
pub const DEFAULT_OVERCOMMIT_RATIO: u32 = 50;

/// The largest `vm.user_reserve_kbytes` the boot computes (Linux
/// `init_user_reserve`: 128 MiB).
const USER_RESERVE_KBYTES_MAX: u64 = 1 << 17;

/// The largest `vm.admin_reserve_kbytes` the boot computes (Linux
/// `init_admin_reserve`: 8 MiB).
const ADMIN_RESERVE_KBYTES_MAX: u64 = 1 << 13;

/// KiB to pages (Linux `>> (PAGE_SHIFT - 10)`).
const fn kb_to_pages(kb: u64) -> u64 {
    kb >> (PAGE_SHIFT - 10)
}

/// A request [`Overcommit::vm_enough_memory`] refused (Linux's `-ENOMEM`
/// of `__vm_enough_memory`); nothing stays charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotEnoughMemory {
    /// The pages asked for.
    pub pages: u64,
}

impl core::fmt::Display for NotEnoughMemory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "not enough memory to commit {} pages", self.pages)
    }
}

/// Who asks to commit memory: what Linux's `__vm_enough_memory` reads of
/// the caller and its mm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitRequester {
    /// Whether the caller has `CAP_SYS_ADMIN` (the admin reserve is
    /// theirs).
    pub cap_sys_admin: bool,
    /// The caller's mapped pages (`mm->total_vm`), for the user reserve;
    /// `None` for a request on behalf of no address space.
    pub total_vm: Option<u64>,
}

/// The machine's commit accounting and its sysctls (Linux
/// `vm_committed_as`, `sysctl_overcommit_memory`,
/// `sysctl_overcommit_ratio`, `sysctl_overcommit_kbytes`,
/// `sysctl_admin_reserve_kbytes`, `sysctl_user_reserve_kbytes`,
/// `sysctl_max_map_count`). One per machine, in its [`crate::page_alloc::PgData`].
pub struct Overcommit {
    committed_as: AtomicI64,
    policy: AtomicU32,
    ratio: AtomicU32,
    kbytes: AtomicU64,
    admin_reserve_kbytes: AtomicU64,
    user_reserve_kbytes: AtomicU64,
    max_map_count: AtomicUsize,
}

impl Default for Overcommit {
    fn default() -> Self {
        Self::new()
    }
}

impl Overcommit {
    /// Linux's static defaults: heuristic overcommit, ratio 50, no
    /// kbytes, the reserves at their largest until
    /// [`Overcommit::init_reserves`] sizes them.
    pub const fn new() -> Self {
        Overcommit {
            committed_as: AtomicI64::new(0),
            policy: AtomicU32::new(OvercommitPolicy::Guess as u32),
            ratio: AtomicU32::new(DEFAULT_OVERCOMMIT_RATIO),
            kbytes: AtomicU64::new(0),
            admin_reserve_kbytes: AtomicU64::new(ADMIN_RESERVE_KBYTES_MAX),
            user_reserve_kbytes: AtomicU64::new(USER_RESERVE_KBYTES_MAX),
            max_map_count: AtomicUsize::new(DEFAULT_MAX_MAP_COUNT),
        }
    }

    /// Sizes the reserves from the free memory at boot (Linux
    /// `init_user_reserve` and `init_admin_reserve`): a thirty-second of
    /// it, at most 128 MiB and 8 MiB.
    pub fn init_reserves(&self, free_pages: u64) {
        let free_kbytes = free_pages << (PAGE_SHIFT - 10);
        self.user_reserve_kbytes.store((free_kbytes / 32).min(USER_RESERVE_KBYTES_MAX), Relaxed);
        self.admin_reserve_kbytes.store((free_kbytes / 32).min(ADMIN_RESERVE_KBYTES_MAX), Relaxed);
    }

    /// `vm.overcommit_memory`.
    pub fn policy(&self) -> OvercommitPolicy {
        OvercommitPolicy::from_value(u64::from(self.policy.load(Relaxed))).unwrap_or(OvercommitPolicy::Guess)
    }

    /// Sets `vm.overcommit_memory` (Linux `overcommit_policy_handler`).
    pub fn set_policy(&self, policy: OvercommitPolicy) {
        self.policy.store(policy as u32, Relaxed);
    }

    /// `vm.overcommit_ratio`.
    pub fn ratio(&self) -> u32 {
        self.ratio.load(Relaxed)
    }

    /// Sets `vm.overcommit_ratio` (0 to `INT_MAX`) and clears
    /// `vm.overcommit_kbytes`, which would otherwise take precedence
    /// (Linux `overcommit_ratio_handler`).
    pub fn set_ratio(&self, ratio: u64) -> Result<(), RangeError> {
        let ratio = u32::try_from(ratio)
            .ok()
            .filter(|&r| r <= i32::MAX as u32)
            .ok_or(RangeError { min: 0, max: i32::MAX as u64 })?;
        self.ratio.store(ratio, Relaxed);
        self.kbytes.store(0, Relaxed);
        Ok(())
    }

    /// `vm.overcommit_kbytes`.
    pub fn kbytes(&self) -> u64 {
        self.kbytes.load(Relaxed)
    }

    /// Sets `vm.overcommit_kbytes` and clears `vm.overcommit_ratio`
    /// (Linux `overcommit_kbytes_handler`).
    pub fn set_kbytes(&self, kbytes: u64) {
        self.kbytes.store(kbytes, Relaxed);
        self.ratio.store(0, Relaxed);
    }

    /// `vm.admin_reserve_kbytes`.
    pub fn admin_reserve_kbytes(&self) -> u64 {
        self.admin_reserve_kbytes.load(Relaxed)
    }

    /// Sets `vm.admin_reserve_kbytes` (any `unsigned long`).
    pub fn set_admin_reserve_kbytes(&self, kbytes: u64) {
        self.admin_reserve_kbytes.store(kbytes, Relaxed);
    }

    /// `vm.user_reserve_kbytes`.
    pub fn user_reserve_kbytes(&self) -> u64 {
        self.user_reserve_kbytes.load(Relaxed)
    }

    /// Sets `vm.user_reserve_kbytes` (any `unsigned long`).
    pub fn set_user_reserve_kbytes(&self, kbytes: u64) {
        self.user_reserve_kbytes.store(kbytes, Relaxed);
    }

    /// `vm.max_map_count`: the most VMAs an address space may have.
    pub fn max_map_count(&self) -> usize {
        self.max_map_count.load(Relaxed)
    }

    /// Sets `vm.max_map_count` (Linux's bounds: 0 to `INT_MAX`). Address
    /// spaces that already have more keep them; they cannot gain more.
    pub fn set_max_map_count(&self, count: u64) -> Result<(), RangeError> {
        let count = usize::try_from(count)
            .ok()
            .filter(|&c| c <= i32::MAX as usize)
            .ok_or(RangeError { min: 0, max: i32::MAX as u64 })?;
        self.max_map_count.store(count, Relaxed);
        Ok(())
    }

    /// Committed pages (Linux `vm_memory_committed`, `Committed_AS`).
    pub fn committed_as(&self) -> u64 {
        self.committed_as.load(Relaxed).max(0) as u64
    }

    /// Adds `pages` to the committed total without asking (Linux
    /// `vm_acct_memory`).
    pub(crate) fn vm_acct_memory(&self, pages: u64) {
        self.committed_as.fetch_add(i64::try_from(pages).unwrap_or(i64::MAX), Relaxed);
    }

    /// Takes `pages` off the committed total (Linux `vm_unacct_memory`).
    pub(crate) fn vm_unacct_memory(&self, pages: u64) {
        self.committed_as.fetch_sub(i64::try_from(pages).unwrap_or(i64::MAX), Relaxed);
    }

    /// The most that may be committed under [`OvercommitPolicy::Never`]
    /// (Linux `vm_commit_limit`, /proc/meminfo's `CommitLimit`), in
    /// pages: `vm.overcommit_kbytes` if set, else `vm.overcommit_ratio`
    /// percent of `totalram_pages`; plus `total_swap_pages`.
    pub fn vm_commit_limit(&self, totalram_pages: u64, total_swap_pages: u64) -> u64 {
        let kbytes = self.kbytes();
        let allowed = if kbytes != 0 {
            kb_to_pages(kbytes)
        } else {
            totalram_pages.saturating_mul(u64::from(self.ratio())) / 100
        };
        allowed.saturating_add(total_swap_pages)
    }

    /// Charges `pages` to the committed total if the policy allows it
    /// (Linux `__vm_enough_memory`): they stay charged on success and are
    /// taken off again on refusal. Under [`OvercommitPolicy::Never`] the
    /// total with them must stay below the commit limit less the
    /// requester's reserves, as Linux compares.
    pub fn vm_enough_memory(
        &self,
        totalram_pages: u64,
        total_swap_pages: u64,
        pages: u64,
        who: CommitRequester,
    ) -> Result<(), NotEnoughMemory> {
        self.vm_acct_memory(pages);
        let ok = match self.policy() {
            OvercommitPolicy::Always => true,
            OvercommitPolicy::Guess => pages <= totalram_pages.saturating_add(total_swap_pages),
            OvercommitPolicy::Never => {
                // Signed, as Linux's `long allowed`: the reserves may take
                // it below zero.
                let mut allowed = i128::from(self.vm_commit_limit(totalram_pages, total_swap_pages));
                if !who.cap_sys_admin {
                    allowed -= i128::from(kb_to_pages(self.admin_reserve_kbytes()));
                }
                if let Some(total_vm) = who.total_vm {
                    let reserve = kb_to_pages(self.user_reserve_kbytes());
                    allowed -= i128::from((total_vm / 32).min(reserve));
                }
                i128::from(self.committed_as()) < allowed
            }
        };
        if ok {
            Ok(())
        } else {
            self.vm_unacct_memory(pages);
            Err(NotEnoughMemory { pages })
        }
    }
}

#[cfg(test)]
mod tests;
