//! The cpu freelist and its transaction counter as one 16-byte word,
//! changed only by a double-word compare-and-exchange (Linux
//! `freelist_aba_t` and `this_cpu_try_cmpxchg_freelist`, x86's
//! `cmpxchg16b`).
//!
//! On x86_64 the exchange is `lock cmpxchg16b` (CPUID.01H:ECX.CX16, which
//! every CPU the kernel runs on has: QEMU's `-cpu max` and `-cpu host`, and
//! every x86_64 host of the tests). Linux uses the instruction without the
//! `lock` prefix, gs-relative, because only the owning CPU ever touches a
//! `kmem_cache_cpu` (remote flushes run on the owner through a work item);
//! here `kmem_cache_shrink` flushes another CPU's state from the calling
//! CPU, so the owner's exchange must be atomic against other CPUs too.
//!
//! Elsewhere (a host test on another architecture) a spin lock inside the
//! word makes the exchange atomic against other threads; there are no
//! interrupts on the host, so that is enough.

use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::Acquire;

/// A freelist head and a counter exchanged together (Linux
/// `freelist_aba_t`).
#[doc(alias = "freelist_aba_t")]
#[repr(C, align(16))]
pub(crate) struct FreelistAba {
    freelist: AtomicU64,
    counter: AtomicU64,
    #[cfg(not(target_arch = "x86_64"))]
    lock: core::sync::atomic::AtomicBool,
}

impl FreelistAba {
    /// An empty freelist, counter 0.
    pub(crate) const fn new() -> Self {
        FreelistAba {
            freelist: AtomicU64::new(0),
            counter: AtomicU64::new(0),
            #[cfg(not(target_arch = "x86_64"))]
            lock: core::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The counter. Read it before [`FreelistAba::freelist`], as Linux
    /// reads `tid` before `freelist`: a pair read across a concurrent
    /// change then carries the old counter and its exchange fails.
    #[inline(always)]
    pub(crate) fn counter(&self) -> u64 {
        self.counter.load(Acquire)
    }

    /// The freelist head.
    #[inline(always)]
    pub(crate) fn freelist(&self) -> u64 {
        self.freelist.load(Acquire)
    }

    /// Replaces `(freelist, counter)` by `new` if it still is `old`;
    /// whether it did. A full barrier either way.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub(crate) fn try_cmpxchg(&self, old: (u64, u64), new: (u64, u64)) -> bool {
        let ok: u64;
        // SAFETY: `self` is 16-byte aligned (repr(align(16))) and its two
        // words are atomics, only ever written atomically (here or by
        // their own stores), so a locked cmpxchg16b on them is a sound
        // atomic read-modify-write. RBX, which LLVM reserves and may also
        // hand out for a `reg` operand, is swapped in and restored around
        // the instruction, so every other operand is an explicit register
        // (a pointer or result in RBX would be overwritten); neither XCHG
        // nor MOV changes the flags SETE reads.
        unsafe {
            core::arch::asm!(
                "xchg {new_lo}, rbx",
                "lock cmpxchg16b xmmword ptr [rdi]",
                "mov rbx, {new_lo}",
                "sete cl",
                new_lo = inout(reg) new.0 => _,
                in("rdi") core::ptr::from_ref(self),
                inout("rax") old.0 => _,
                inout("rdx") old.1 => _,
                inout("rcx") new.1 => ok,
                options(nostack),
            );
        }
        ok as u8 != 0
    }

    /// Replaces `(freelist, counter)` by `new` if it still is `old`;
    /// whether it did.
    #[cfg(not(target_arch = "x86_64"))]
    pub(crate) fn try_cmpxchg(&self, old: (u64, u64), new: (u64, u64)) -> bool {
        use core::sync::atomic::Ordering::{Relaxed, Release, SeqCst};
        while self.lock.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
            core::hint::spin_loop();
        }
        let same = self.freelist.load(Relaxed) == old.0 && self.counter.load(Relaxed) == old.1;
        if same {
            self.freelist.store(new.0, Relaxed);
            self.counter.store(new.1, Relaxed);
        }
        self.lock.store(false, Release);
        core::sync::atomic::fence(SeqCst);
        same
    }
}

#[cfg(test)]
mod tests {
    use super::FreelistAba;

    #[test]
    fn exchange_happens_only_when_both_words_match() {
        let word = FreelistAba::new();
        assert!(word.try_cmpxchg((0, 0), (0x1000, 7)));
        assert_eq!((word.freelist(), word.counter()), (0x1000, 7));
        assert!(!word.try_cmpxchg((0x1000, 6), (0, 8)), "stale counter");
        assert!(!word.try_cmpxchg((0x2000, 7), (0, 8)), "stale freelist");
        assert_eq!((word.freelist(), word.counter()), (0x1000, 7));
        assert!(word.try_cmpxchg((0x1000, 7), (u64::MAX, u64::MAX)));
        assert_eq!((word.freelist(), word.counter()), (u64::MAX, u64::MAX));
    }

    #[test]
    fn concurrent_increments_through_the_exchange_are_never_lost() {
        let word = FreelistAba::new();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..20_000 {
                        loop {
                            let (c, f) = (word.counter(), word.freelist());
                            if word.try_cmpxchg((f, c), (f + 2, c + 1)) {
                                break;
                            }
                        }
                    }
                });
            }
        });
        assert_eq!((word.freelist(), word.counter()), (160_000, 80_000));
    }
}
