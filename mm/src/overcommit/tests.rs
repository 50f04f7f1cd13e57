use super::*;

const GIB_PAGES: u64 = 1 << (30 - PAGE_SHIFT);

fn user(total_vm: u64) -> CommitRequester {
    CommitRequester { cap_sys_admin: false, total_vm: Some(total_vm) }
}

const ROOT: CommitRequester = CommitRequester { cap_sys_admin: true, total_vm: None };

#[test]
fn guess_refuses_only_more_than_ram_and_swap() {
    let oc = Overcommit::new();
    assert_eq!(oc.policy(), OvercommitPolicy::Guess);
    assert_eq!(oc.vm_enough_memory(GIB_PAGES, GIB_PAGES, 2 * GIB_PAGES, user(0)), Ok(()));
    assert_eq!(oc.vm_enough_memory(GIB_PAGES, GIB_PAGES, 2 * GIB_PAGES, user(0)), Ok(()), "the total does not count");
    assert_eq!(oc.committed_as(), 4 * GIB_PAGES);
    assert_eq!(
        oc.vm_enough_memory(GIB_PAGES, GIB_PAGES, 2 * GIB_PAGES + 1, user(0)),
        Err(NotEnoughMemory { pages: 2 * GIB_PAGES + 1 })
    );
    assert_eq!(oc.committed_as(), 4 * GIB_PAGES, "a refusal leaves nothing charged");
    oc.vm_unacct_memory(4 * GIB_PAGES);
    assert_eq!(oc.committed_as(), 0);
}

#[test]
fn always_never_refuses() {
    let oc = Overcommit::new();
    oc.set_policy(OvercommitPolicy::Always);
    assert_eq!(oc.vm_enough_memory(GIB_PAGES, 0, 1000 * GIB_PAGES, user(0)), Ok(()));
    assert_eq!(oc.committed_as(), 1000 * GIB_PAGES);
}

#[test]
fn never_keeps_commitments_below_the_commit_limit() {
    let oc = Overcommit::new();
    oc.set_policy(OvercommitPolicy::Never);
    oc.set_admin_reserve_kbytes(0);
    oc.set_user_reserve_kbytes(0);
    // 50% of 1000 pages plus 100 of swap.
    assert_eq!(oc.vm_commit_limit(1000, 100), 600);
    assert_eq!(oc.vm_enough_memory(1000, 100, 599, ROOT), Ok(()));
    assert_eq!(oc.vm_enough_memory(1000, 100, 1, ROOT), Err(NotEnoughMemory { pages: 1 }), "the total must stay below");
    oc.vm_unacct_memory(599);
    assert_eq!(oc.vm_enough_memory(1000, 100, 600, ROOT), Err(NotEnoughMemory { pages: 600 }));
    assert_eq!(oc.committed_as(), 0);
}

#[test]
fn never_keeps_the_reserves() {
    let oc = Overcommit::new();
    oc.set_policy(OvercommitPolicy::Never);
    oc.set_kbytes(4 * 1000);
    assert_eq!(oc.vm_commit_limit(1 << 20, 0), 1000, "kbytes wins over the ratio");
    oc.set_admin_reserve_kbytes(4 * 100);
    oc.set_user_reserve_kbytes(4 * 50);
    // Without CAP_SYS_ADMIN: 1000 - 100 - min(3200 / 32, 50) = 850.
    assert_eq!(oc.vm_enough_memory(1 << 20, 0, 850, user(3200)), Err(NotEnoughMemory { pages: 850 }));
    assert_eq!(oc.vm_enough_memory(1 << 20, 0, 849, user(3200)), Ok(()));
    oc.vm_unacct_memory(849);
    // A small address space keeps less: 1000 - 100 - 320 / 32.
    assert_eq!(oc.vm_enough_memory(1 << 20, 0, 889, user(320)), Ok(()));
    oc.vm_unacct_memory(889);
    // The admin reserve is root's.
    let root = CommitRequester { cap_sys_admin: true, total_vm: Some(3200) };
    assert_eq!(oc.vm_enough_memory(1 << 20, 0, 949, root), Ok(()));
    oc.vm_unacct_memory(949);
    assert_eq!(oc.committed_as(), 0);
}

#[test]
fn ratio_and_kbytes_clear_each_other() {
    let oc = Overcommit::new();
    assert_eq!((oc.ratio(), oc.kbytes()), (DEFAULT_OVERCOMMIT_RATIO, 0));
    oc.set_kbytes(4096);
    assert_eq!((oc.ratio(), oc.kbytes()), (0, 4096));
    oc.set_ratio(80).unwrap();
    assert_eq!((oc.ratio(), oc.kbytes()), (80, 0));
    assert!(oc.set_ratio(1 << 31).is_err());
    assert_eq!(oc.ratio(), 80, "a refused value changes nothing");
}

#[test]
fn policy_values_are_zero_to_two() {
    assert_eq!(OvercommitPolicy::from_value(2), Some(OvercommitPolicy::Never));
    assert_eq!(OvercommitPolicy::from_value(3), None);
}

#[test]
fn reserves_are_a_thirty_second_of_free_memory_at_boot() {
    let oc = Overcommit::new();
    // 64 MiB free: 2 MiB each.
    oc.init_reserves(64 << (20 - PAGE_SHIFT));
    assert_eq!((oc.user_reserve_kbytes(), oc.admin_reserve_kbytes()), (2048, 2048));
    // 64 GiB free: capped at 128 MiB and 8 MiB.
    oc.init_reserves(64 << (30 - PAGE_SHIFT));
    assert_eq!((oc.user_reserve_kbytes(), oc.admin_reserve_kbytes()), (1 << 17, 1 << 13));
}

#[test]
fn max_map_count_takes_zero_to_int_max() {
    let oc = Overcommit::new();
    assert_eq!(oc.max_map_count(), DEFAULT_MAX_MAP_COUNT);
    oc.set_max_map_count(0).unwrap();
    assert_eq!(oc.max_map_count(), 0);
    assert!(oc.set_max_map_count(1 << 31).is_err());
}
