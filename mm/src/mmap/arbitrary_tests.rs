//! Every system-call entry point of [`MmStruct`] called with arbitrary
//! `u64` arguments (random values and the boundaries where checks go
//! wrong: 0, 1, around `PAGE_SIZE`, `TASK_SIZE`, the canonical hole,
//! 2^63, 2^64 - 1) on a populated address space: each call returns `Ok`
//! or an errno and never panics, the VMA tree's invariants hold after
//! each, and when the address space goes every page comes back
//! ([`with_env`]'s end checks).

use proptest::prelude::*;

use super::tests::{FILE, P, X, with_env};
use super::*;
use crate::memory::FaultAccess;

/// The stack's start: above the heap by more than the guard gap.
const STACK: u64 = X + 512 * P;

/// Values at which an argument check can go wrong.
const BOUNDARIES: &[u64] = &[
    0,
    1,
    P - 1,
    P,
    P + 1,
    2 * P,
    MMAP_MIN_ADDR,
    X,
    X + P,
    X + 16 * P,
    0x7fff_ffff,
    TASK_SIZE - P,
    TASK_SIZE - 1,
    TASK_SIZE,
    TASK_SIZE + 1,
    1 << 47,
    (1 << 47) + P,
    0xffff_8000_0000_0000,
    0xffff_8880_0000_0000,
    1 << 63,
    (1 << 63) - P,
    u64::MAX - 2 * P + 1,
    u64::MAX - P + 1,
    u64::MAX - P,
    u64::MAX - 1,
    u64::MAX,
];

/// An address or length: a boundary, a page of the populated window, a
/// boundary plus or minus a little, or anything.
fn arg() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => proptest::sample::select(BOUNDARIES),
        3 => (0..64u64).prop_map(|i| X + i * P),
        1 => (0..8u64).prop_map(|i| STACK - 4 * P + i * P),
        2 => (0..16u64).prop_map(|i| i * P),
        1 => (proptest::sample::select(BOUNDARIES), -3i64..=3).prop_map(|(b, d)| b.wrapping_add_signed(d * P as i64)),
        2 => any::<u64>(),
    ]
}

/// Flags: a valid-looking combination, single bits, or anything.
fn flags(valid: &'static [u32]) -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => proptest::sample::subsequence(valid, 0..=valid.len()).prop_map(|v| v.iter().fold(0, |a, b| a | b)),
        1 => (0..32u32).prop_map(|b| 1 << b),
        1 => any::<u32>(),
    ]
}

/// Flags the system call takes as an unsigned long: as [`flags`], or with
/// bits above the low 32.
fn wide(valid: &'static [u32]) -> impl Strategy<Value = u64> {
    prop_oneof![3 => flags(valid).prop_map(u64::from), 1 => (flags(valid), 32..64u32).prop_map(|(f, b)| u64::from(f) | 1 << b)]
}

const PROT: &[u32] = &[PROT_READ, PROT_WRITE, PROT_EXEC, PROT_GROWSDOWN, PROT_GROWSUP, PROT_SEM];
const MAP: &[u32] = &[
    MAP_SHARED,
    MAP_PRIVATE,
    MAP_PRIVATE,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_GROWSDOWN,
    MAP_LOCKED,
    MAP_NORESERVE,
    MAP_POPULATE,
    MAP_NONBLOCK,
];
const MREMAP: &[u32] = &[MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP];
const MSYNC: &[u32] = &[MS_ASYNC, MS_SYNC, MS_INVALIDATE];
const MLOCKALL: &[u32] = &[MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT];

fn advice() -> impl Strategy<Value = i32> {
    prop_oneof![3 => 0..27i32, 1 => any::<i32>()]
}

#[derive(Clone, Debug)]
enum Call {
    Mmap { addr: u64, len: u64, prot: u32, flags: u32, file: bool, pgoff: u64 },
    Munmap { addr: u64, len: u64 },
    Mprotect { addr: u64, len: u64, prot: u64 },
    Mremap { addr: u64, old: u64, new: u64, flags: u64, new_addr: u64 },
    Brk { addr: u64 },
    Madvise { addr: u64, len: u64, advice: i32 },
    Mincore { addr: u64, len: u64, vec: u64 },
    Mlock { addr: u64, len: u64 },
    Mlock2 { addr: u64, len: u64, flags: u32 },
    Munlock { addr: u64, len: u64 },
    Mlockall { flags: u32 },
    Munlockall,
    Msync { addr: u64, len: u64, flags: u32 },
    Fault { addr: u64, write: bool, exec: bool },
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        4 => (arg(), arg(), flags(PROT), flags(MAP), any::<bool>(), arg())
            .prop_map(|(addr, len, prot, flags, file, pgoff)| Call::Mmap { addr, len, prot, flags, file, pgoff: pgoff >> PAGE_SHIFT }),
        2 => (arg(), arg()).prop_map(|(addr, len)| Call::Munmap { addr, len }),
        3 => (arg(), arg(), wide(PROT)).prop_map(|(addr, len, prot)| Call::Mprotect { addr, len, prot }),
        4 => (arg(), arg(), arg(), wide(MREMAP), arg())
            .prop_map(|(addr, old, new, flags, new_addr)| Call::Mremap { addr, old, new, flags, new_addr }),
        2 => arg().prop_map(|addr| Call::Brk { addr }),
        3 => (arg(), arg(), advice()).prop_map(|(addr, len, advice)| Call::Madvise { addr, len, advice }),
        2 => (arg(), arg(), arg()).prop_map(|(addr, len, vec)| Call::Mincore { addr, len, vec }),
        1 => (arg(), arg()).prop_map(|(addr, len)| Call::Mlock { addr, len }),
        1 => (arg(), arg(), flags(&[1])).prop_map(|(addr, len, flags)| Call::Mlock2 { addr, len, flags }),
        1 => (arg(), arg()).prop_map(|(addr, len)| Call::Munlock { addr, len }),
        1 => flags(MLOCKALL).prop_map(|flags| Call::Mlockall { flags }),
        1 => Just(Call::Munlockall),
        1 => (arg(), arg(), flags(MSYNC)).prop_map(|(addr, len, flags)| Call::Msync { addr, len, flags }),
        3 => (arg(), any::<bool>(), any::<bool>()).prop_map(|(addr, write, exec)| Call::Fault { addr, write, exec }),
    ]
}

/// An address space like a program's: text from a file, data, a heap, a
/// shared anonymous page, a locked page and a grows-down stack.
fn populate(mm: &mut super::tests::Mm<'_>) {
    let file = Some(MapFile { file: &FILE, writable: false });
    let fixed = MAP_PRIVATE | MAP_FIXED;
    assert_eq!(mm.do_mmap(X, 2 * P, PROT_READ | PROT_EXEC, fixed, file, 0), Ok(X));
    assert_eq!(mm.do_mmap(X + 2 * P, 4 * P, PROT_READ | PROT_WRITE, fixed | MAP_ANONYMOUS, None, 0), Ok(X + 2 * P));
    let shared = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED;
    assert_eq!(mm.do_mmap(X + 8 * P, P, PROT_READ | PROT_WRITE, shared, None, 0), Ok(X + 8 * P));
    assert_eq!(mm.do_mmap(X + 10 * P, P, PROT_READ, fixed | MAP_ANONYMOUS | MAP_LOCKED, None, 0), Ok(X + 10 * P));
    let stack = fixed | MAP_ANONYMOUS | MAP_GROWSDOWN;
    assert_eq!(mm.do_mmap(STACK, 2 * P, PROT_READ | PROT_WRITE, stack, None, 0), Ok(STACK));
    mm.layout.start_brk = X + 20 * P;
    mm.layout.brk = X + 20 * P;
    assert_eq!(mm.brk(X + 22 * P), X + 22 * P);
    for page in [X + 2 * P, X + 3 * P, X + 8 * P, X + 21 * P, STACK + P] {
        assert_eq!(
            mm.handle_mm_fault_exclusive(VirtAddr::expect_canonical(page), FaultAccess { write: true, exec: false }),
            Ok(())
        );
    }
}

/// Makes the call; the result is only required to exist. The file is
/// open for writing, so shared writable file mappings (page_mkwrite, dirty
/// ptes, msync) are exercised too.
fn make(mm: &mut super::tests::Mm<'_>, call: &Call) {
    let file = Some(MapFile { file: &FILE, writable: true });
    match *call {
        Call::Mmap { addr, len, prot, flags, file: f, pgoff } => {
            let _ = mm.do_mmap(addr, len, prot, flags, if f { file } else { None }, pgoff);
        }
        Call::Munmap { addr, len } => {
            let _ = mm.do_munmap(addr, len);
        }
        Call::Mprotect { addr, len, prot } => {
            let _ = mm.mprotect(addr, len, prot);
        }
        Call::Mremap { addr, old, new, flags, new_addr } => {
            let _ = mm.mremap(addr, old, new, flags, new_addr);
        }
        Call::Brk { addr } => {
            let _ = mm.brk(addr);
        }
        Call::Madvise { addr, len, advice } => {
            let _ = mm.madvise(addr, len, advice);
        }
        Call::Mincore { addr, len, vec } => {
            let mut next = 0;
            let _ = mm.mincore(addr, len, vec, &mut |index, bytes| {
                assert_eq!(index, next, "mincore chunks in order");
                assert!(bytes.iter().all(|&b| b <= 1));
                next += bytes.len();
                Ok(())
            });
        }
        Call::Mlock { addr, len } => {
            let _ = mm.mlock(addr, len);
        }
        Call::Mlock2 { addr, len, flags } => {
            let _ = mm.mlock2(addr, len, flags);
        }
        Call::Munlock { addr, len } => {
            let _ = mm.munlock(addr, len);
        }
        Call::Mlockall { flags } => {
            let _ = mm.mlockall(flags);
        }
        Call::Munlockall => {
            let _ = mm.munlockall();
        }
        Call::Msync { addr, len, flags } => {
            let _ = mm.msync(addr, len, flags);
        }
        Call::Fault { addr, write, exec } => {
            if let Some(addr) = VirtAddr::new(addr) {
                let _ = mm.handle_mm_fault_exclusive(addr, FaultAccess { write, exec });
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn entry_points_return_an_errno_on_any_arguments(calls in proptest::collection::vec(call(), 1..24)) {
        with_env(|env| {
            let mut mm = env.mm();
            populate(&mut mm);
            for call in &calls {
                make(&mut mm, call);
                if let Err(e) = mm.vmas().check() {
                    panic!("after {call:?}: VMA tree invariant broken: {e:?}");
                }
                assert!(mm.rss_pages() <= mm.total_vm(), "after {call:?}: more resident pages than mapped");
            }
            mm.exit_mmap();
            assert_eq!((mm.rss_pages(), mm.total_vm()), (0, 0));
        });
    }
}
