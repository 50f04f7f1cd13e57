//! Host tests of overcommit accounting in the address-space layer
//! ([`crate::overcommit`], charged by [`MmStruct`]): which mappings are
//! charged, that every operation moves the committed total by what the
//! `VM_ACCOUNT` VMAs gained or lost, and the refusals of each policy.
//! [`with_env`] checks that the total is back at zero at the end.

use super::tests::{Env, Mm, P, RW, X, accounted_pages, mm_with_grown_stack, teardown, with_env, write};
use super::*;
use crate::overcommit::OvercommitPolicy;

const PA: u32 = MAP_PRIVATE | MAP_ANONYMOUS;

fn committed(env: &Env<'_>) -> u64 {
    env.pgdat.overcommit().committed_as()
}

fn flags_at(mm: &Mm<'_>, addr: u64) -> VmaFlags {
    mm.vmas().vma_lookup(VirtAddr::expect_canonical(addr)).unwrap().flags()
}

/// `vm.overcommit_memory = 2` with a commit limit of `pages` pages and
/// no reserves (the simulated machine has no swap).
fn strict(env: &Env<'_>, pages: u64) {
    let oc = env.pgdat.overcommit();
    oc.set_policy(OvercommitPolicy::Never);
    oc.set_kbytes(pages * (P >> 10));
    oc.set_admin_reserve_kbytes(0);
    oc.set_user_reserve_kbytes(0);
    assert_eq!(env.pgdat.vm_commit_limit(), pages);
}

#[test]
fn only_private_writable_mappings_are_charged() {
    with_env(|env| {
        let mut mm = env.mm();
        assert_eq!(mm.do_mmap(X, 10 * P, RW, PA | MAP_FIXED, None, 0), Ok(X));
        assert!(flags_at(&mm, X).contains(VmaFlags::ACCOUNT));
        assert_eq!(committed(env), 10);
        let y = X + 0x10_0000;
        assert_eq!(mm.do_mmap(y, 4 * P, PROT_READ, PA | MAP_FIXED, None, 0), Ok(y));
        let z = y + 0x10_0000;
        let shared = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED;
        assert_eq!(mm.do_mmap(z, 4 * P, RW, shared, None, 0), Ok(z));
        let w = z + 0x10_0000;
        assert_eq!(mm.do_mmap(w, 4 * P, RW, PA | MAP_FIXED | MAP_NORESERVE, None, 0), Ok(w));
        assert!(flags_at(&mm, w).contains(VmaFlags::NORESERVE));
        assert!(!flags_at(&mm, w).contains(VmaFlags::ACCOUNT));
        assert_eq!(committed(env), 10, "read-only, shared and MAP_NORESERVE mappings are not charged");
        // Unmapping the middle splits the VMA and uncharges the hole.
        assert_eq!(mm.do_munmap(X + 2 * P, 3 * P), Ok(()));
        assert_eq!(committed(env), 7);
        assert_eq!(accounted_pages(&mm), 7);
        teardown(mm);
        assert_eq!(committed(env), 0, "exit uncharges everything");
    });
}

#[test]
fn map_fixed_over_charged_pages_takes_their_charge_over() {
    with_env(|env| {
        let mut mm = env.mm();
        strict(env, 11);
        assert_eq!(mm.do_mmap(X, 10 * P, RW, PA | MAP_FIXED, None, 0), Ok(X));
        // Charging 10 more pages first would pass the limit.
        assert_eq!(mm.do_mmap(X, 10 * P, RW, PA | MAP_FIXED, None, 0), Ok(X));
        assert_eq!(committed(env), 10);
        // A read-only replacement gives the charge back.
        assert_eq!(mm.do_mmap(X, 4 * P, PROT_READ, PA | MAP_FIXED, None, 0), Ok(X));
        assert_eq!(committed(env), 6);
        teardown(mm);
    });
}

#[test]
fn never_refuses_past_the_commit_limit_even_with_noreserve() {
    with_env(|env| {
        let mut mm = env.mm();
        strict(env, 100);
        assert_eq!(mm.do_mmap(0, 100 * P, RW, PA, None, 0), Err(Errno::ENOMEM), "committed + pages < limit");
        assert_eq!(mm.do_mmap(0, 200 * P, RW, PA | MAP_NORESERVE, None, 0), Err(Errno::ENOMEM));
        assert_eq!(committed(env), 0, "a refusal charges nothing");
        assert_eq!(mm.total_vm(), 0);
        let ro = mm.do_mmap(0, 200 * P, PROT_READ, PA, None, 0).unwrap();
        let shared = mm.do_mmap(0, 200 * P, RW, MAP_SHARED | MAP_ANONYMOUS, None, 0).unwrap();
        assert_eq!(committed(env), 0);
        assert_eq!(mm.mprotect(ro, 200 * P, u64::from(RW)), Err(Errno::ENOMEM), "made writable: charged");
        assert_eq!(mm.mprotect(shared, 200 * P, u64::from(PROT_READ)), Ok(()));
        assert_eq!(mm.do_mmap(0, 99 * P, RW, PA, None, 0).map(|_| committed(env)), Ok(99));
        // Guess allows anything up to RAM and swap; Always anything.
        env.pgdat.overcommit().set_policy(OvercommitPolicy::Guess);
        let ram = env.pgdat.totalram_pages();
        assert_eq!(mm.do_mmap(0, (ram + 1) * P, RW, PA, None, 0), Err(Errno::ENOMEM), "more than RAM");
        let all = mm.do_mmap(0, ram * P, RW, PA, None, 0).unwrap();
        assert_eq!(mm.do_munmap(all, ram * P), Ok(()));
        env.pgdat.overcommit().set_policy(OvercommitPolicy::Always);
        let huge = mm.do_mmap(0, 4 * ram * P, RW, PA, None, 0).unwrap();
        assert_eq!(committed(env), 99 + 4 * ram);
        assert_eq!(mm.do_munmap(huge, 4 * ram * P), Ok(()));
        teardown(mm);
    });
}

#[test]
fn the_reserves_keep_memory_back_from_users() {
    with_env(|env| {
        let mut mm = env.mm();
        strict(env, 100);
        env.pgdat.overcommit().set_admin_reserve_kbytes(10 * (P >> 10));
        assert!(mm.do_mmap(0, 90 * P, RW, PA, None, 0).is_ok(), "CAP_SYS_ADMIN may use the admin reserve");
        teardown(mm);
        let mut mm = env.mm();
        mm.limits.cap_sys_admin = false;
        assert_eq!(mm.do_mmap(0, 90 * P, RW, PA, None, 0), Err(Errno::ENOMEM), "the admin reserve is root's");
        assert!(mm.do_mmap(0, 89 * P, RW, PA, None, 0).is_ok());
        teardown(mm);
    });
}

#[test]
fn mprotect_charges_a_private_mapping_made_writable() {
    with_env(|env| {
        let mut mm = env.mm();
        assert_eq!(mm.do_mmap(X, 4 * P, PROT_READ, PA | MAP_FIXED, None, 0), Ok(X));
        assert_eq!(mm.mprotect(X, 2 * P, u64::from(RW)), Ok(()));
        assert_eq!(committed(env), 2);
        assert!(flags_at(&mm, X).contains(VmaFlags::ACCOUNT));
        assert!(!flags_at(&mm, X + 2 * P).contains(VmaFlags::ACCOUNT));
        // Read-only again before any page was written: nothing to keep.
        assert_eq!(mm.mprotect(X, 2 * P, u64::from(PROT_READ)), Ok(()));
        assert_eq!(committed(env), 0);
        assert_eq!(mm.vmas().map_count(), 1, "merged again");
        // Written, then read-only: the charge stays (Linux cannot tell
        // which pages were written).
        assert_eq!(mm.mprotect(X, 4 * P, u64::from(RW)), Ok(()));
        write(env, &mut mm, X, 1).unwrap();
        assert_eq!(mm.mprotect(X, 4 * P, u64::from(PROT_READ)), Ok(()));
        assert_eq!(committed(env), 4);
        assert!(flags_at(&mm, X).contains(VmaFlags::ACCOUNT));
        // Writable again: charged already.
        assert_eq!(mm.mprotect(X, 4 * P, u64::from(RW)), Ok(()));
        assert_eq!(committed(env), 4);
        teardown(mm);
    });
}

#[test]
fn brk_charges_growth_and_uncharges_shrinking() {
    with_env(|env| {
        let mut mm = env.mm();
        let base = 0x60_0000;
        mm.layout.start_brk = base;
        mm.layout.brk = base;
        assert_eq!(mm.brk(base + 3 * P), base + 3 * P);
        assert_eq!(committed(env), 3);
        assert_eq!(mm.brk(base + 5 * P), base + 5 * P);
        assert_eq!((committed(env), mm.vmas().map_count()), (5, 1));
        assert_eq!(mm.brk(base + P), base + P);
        assert_eq!(committed(env), 1);
        strict(env, 10);
        assert_eq!(mm.brk(base + 20 * P), base + P, "refused: the break stays");
        assert_eq!(committed(env), 1);
        teardown(mm);
    });
}

#[test]
fn mremap_carries_the_charge_and_charges_growth() {
    with_env(|env| {
        let mut mm = env.mm();
        assert_eq!(mm.do_mmap(X, 2 * P, RW, PA | MAP_FIXED, None, 0), Ok(X));
        assert_eq!(mm.mremap(X, 2 * P, 4 * P, 0, 0), Ok(X), "in place");
        assert_eq!(committed(env), 4);
        let blocker = X + 4 * P;
        assert_eq!(mm.do_mmap(blocker, P, PROT_READ, PA | MAP_FIXED, None, 0), Ok(blocker));
        let new = mm.mremap(X, 4 * P, 6 * P, u64::from(MREMAP_MAYMOVE), 0).unwrap();
        assert_ne!(new, X);
        assert_eq!(committed(env), 6, "moved and grown");
        assert_eq!(mm.mremap(new, 6 * P, 2 * P, 0, 0), Ok(new));
        assert_eq!(committed(env), 2, "shrunk");
        let copy = X + 0x10_0000;
        let dontunmap = u64::from(MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
        assert_eq!(mm.mremap(new, 2 * P, 2 * P, dontunmap, copy), Ok(copy));
        assert_eq!(committed(env), 4, "the old VMA stays charged beside the copy");
        strict(env, 5);
        assert_eq!(mm.mremap(copy, 2 * P, 8 * P, u64::from(MREMAP_MAYMOVE), 0), Err(Errno::ENOMEM));
        assert_eq!(committed(env), 4, "a refused growth charges nothing");
        assert_eq!(accounted_pages(&mm), 4);
        teardown(mm);
    });
}

#[test]
fn fork_charges_the_childs_copies_and_exit_returns_them() {
    with_env(|env| {
        let mut parent = env.mm();
        assert_eq!(parent.do_mmap(X, 3 * P, RW, PA | MAP_FIXED, None, 0), Ok(X));
        let ro = X + 0x10_0000;
        assert_eq!(parent.do_mmap(ro, 3 * P, PROT_READ, PA | MAP_FIXED, None, 0), Ok(ro));
        let mut child = env.mm();
        parent.dup_mmap(&mut child).unwrap();
        assert_eq!(committed(env), 6);
        teardown(child);
        assert_eq!(committed(env), 3);
        // Refused under strict accounting: the child's part is dropped.
        assert_eq!(parent.do_mmap(X + 0x20_0000, 3 * P, RW, PA | MAP_FIXED, None, 0), Ok(X + 0x20_0000));
        strict(env, 10);
        let mut child = env.mm();
        assert_eq!(parent.dup_mmap(&mut child), Err(Errno::ENOMEM));
        assert_eq!(committed(env), 9, "the first copy was charged");
        drop(child);
        assert_eq!(committed(env), 6);
        teardown(parent);
    });
}

#[test]
fn stack_growth_is_charged() {
    with_env(|env| {
        let (mut mm, start) = mm_with_grown_stack(env);
        assert_eq!(committed(env), 5);
        strict(env, 6);
        assert_eq!(write(env, &mut mm, start - 8 * P, 3), Err(crate::memory::FaultError::MapErr));
        assert_eq!(committed(env), 5);
        teardown(mm);
    });
}

#[test]
fn max_map_count_bounds_mmap_and_splits() {
    with_env(|env| {
        let mut mm = env.mm();
        env.pgdat.overcommit().set_max_map_count(3).unwrap();
        for i in 0..4 {
            let at = X + i * 2 * P;
            assert_eq!(mm.do_mmap(at, P, RW, PA | MAP_FIXED, None, 0), Ok(at), "Linux refuses only past the count");
        }
        assert_eq!(mm.do_mmap(X + 8 * P, P, RW, PA | MAP_FIXED, None, 0), Err(Errno::ENOMEM));
        assert_eq!(mm.vmas().map_count(), 4);
        env.pgdat.overcommit().set_max_map_count(5).unwrap();
        assert_eq!(mm.do_mmap(X + 10 * P, 3 * P, RW, PA | MAP_FIXED, None, 0), Ok(X + 10 * P));
        assert_eq!(mm.mprotect(X + 11 * P, P, u64::from(PROT_READ)), Err(Errno::ENOMEM), "two splits past 5");
        env.pgdat.overcommit().set_max_map_count(crate::overcommit::DEFAULT_MAX_MAP_COUNT as u64).unwrap();
        assert_eq!(mm.mprotect(X + 11 * P, P, u64::from(PROT_READ)), Ok(()));
        teardown(mm);
    });
}
