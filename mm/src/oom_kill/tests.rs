//! Host tests of the OOM killer's policy: badness, victim selection,
//! `/proc/PID/oom_score` and `oom_score_adj` writes, and the reaper's
//! unmap of a victim's private memory.

use uapi::mman::*;

use super::*;
use crate::gfp::{GFP_ATOMIC, GFP_HIGHUSER_MOVABLE, GFP_KERNEL, GFP_NOFS};
use crate::mmap::tests::{P, RW, X, pfn_at, with_env, write};

/// 64 MiB of RAM, no swap.
const TOTAL: u64 = 16384;

fn task(pid: u32, rss: u64, adj: i16) -> OomTask {
    OomTask {
        pid,
        oom_score_adj: adj,
        mm: Some(OomMm { rss_anon: rss, total_vm: rss, pgtables_bytes: 4 * P, ..OomMm::default() }),
        ..OomTask::default()
    }
}

fn chosen(tasks: &[OomTask]) -> OomChoice<u32> {
    select_bad_process(tasks.iter().map(|t| (t.pid, *t)), TOTAL)
}

#[test]
fn badness_is_rss_plus_swap_plus_page_tables_moved_by_adj_in_thousandths() {
    let mut t = task(10, 1000, 0);
    assert_eq!(oom_badness(&t, TOTAL), Some(1004));
    t.mm.as_mut().unwrap().rss_file = 100;
    t.mm.as_mut().unwrap().rss_shmem = 10;
    t.mm.as_mut().unwrap().swapents = 1;
    assert_eq!(oom_badness(&t, TOTAL), Some(1115));
    // 16 pages per unit of adj at 16384 pages.
    t.oom_score_adj = 500;
    assert_eq!(oom_badness(&t, TOTAL), Some(1115 + 500 * 16));
    t.oom_score_adj = -999;
    assert_eq!(oom_badness(&t, TOTAL), Some(1115 - 999 * 16));
}

#[test]
fn unkillable_tasks_have_no_badness() {
    assert_eq!(oom_badness(&task(10, 1000, OOM_SCORE_ADJ_MIN), TOTAL), None);
    assert_eq!(oom_badness(&task(1, 1000, 0), TOTAL), None, "init");
    assert_eq!(oom_badness(&OomTask { kthread: true, ..task(2, 1000, 0) }, TOTAL), None);
    assert_eq!(oom_badness(&OomTask { mm: None, ..task(3, 0, 0) }, TOTAL), None);
    assert_eq!(oom_badness(&OomTask { in_vfork: true, ..task(4, 1000, 0) }, TOTAL), None);
    let mut reaped = task(5, 1000, 0);
    reaped.mm.as_mut().unwrap().oom_skip = true;
    assert_eq!(oom_badness(&reaped, TOTAL), None);
}

#[test]
fn the_largest_task_is_chosen_never_init_a_kernel_thread_or_adj_min() {
    let tasks = [
        task(1, 9000, 0),
        OomTask { kthread: true, ..task(2, 9000, 1000) },
        task(3, 8000, OOM_SCORE_ADJ_MIN),
        task(4, 100, 0),
        task(5, 3000, 0),
        task(6, 200, 0),
    ];
    assert_eq!(chosen(&tasks), OomChoice::Victim { task: 5, points: 3004 });
}

#[test]
fn oom_score_adj_1000_is_preferred_over_a_larger_task() {
    let tasks = [task(10, 12000, 0), task(11, 10, 1000), task(12, 5000, 0)];
    assert!(matches!(chosen(&tasks), OomChoice::Victim { task: 11, .. }));
    // A negative adj hides a large task behind a small one.
    let tasks = [task(10, 5000, -500), task(11, 10, 0)];
    assert!(matches!(chosen(&tasks), OomChoice::Victim { task: 11, .. }));
}

#[test]
fn a_tie_goes_to_the_later_task() {
    let tasks = [task(10, 500, 0), task(11, 500, 0)];
    assert!(matches!(chosen(&tasks), OomChoice::Victim { task: 11, .. }));
}

#[test]
fn only_adj_min_tasks_leave_no_victim() {
    let tasks = [task(1, 100, 0), task(10, 5000, OOM_SCORE_ADJ_MIN), OomTask { kthread: true, ..task(2, 0, 0) }];
    assert_eq!(chosen(&tasks), OomChoice::NoVictim);
    assert_eq!(chosen(&[]), OomChoice::NoVictim);
}

#[test]
fn a_victim_not_yet_reaped_aborts_and_a_reaped_one_is_passed_over() {
    let pending = OomTask { victim: OomVictim::Pending, ..task(10, 10, 0) };
    assert_eq!(chosen(&[task(11, 5000, 0), pending]), OomChoice::Abort);
    let reaped = OomTask { victim: OomVictim::Reaped, ..task(10, 9000, 0) };
    assert!(matches!(chosen(&[reaped, task(11, 50, 0)]), OomChoice::Victim { task: 11, .. }));
    // An unkillable victim (init) aborts nothing: Linux skips it first.
    let init = OomTask { victim: OomVictim::Pending, ..task(1, 10, 0) };
    assert!(matches!(chosen(&[init, task(11, 50, 0)]), OomChoice::Victim { task: 11, .. }));
}

#[test]
fn proc_oom_score_scales_badness_into_0_to_2000() {
    assert_eq!(proc_oom_score(&task(10, 0, OOM_SCORE_ADJ_MIN), TOTAL), 0);
    assert_eq!(proc_oom_score(&task(1, 9000, 0), TOTAL), 0, "init");
    // Nothing resident: 1000 * 2 / 3.
    let empty = OomTask { mm: Some(OomMm::default()), ..task(10, 0, 0) };
    assert_eq!(proc_oom_score(&empty, TOTAL), 666);
    // Half of memory: (1000 + 500) * 2 / 3.
    let half = OomTask { mm: Some(OomMm { rss_anon: TOTAL / 2, ..OomMm::default() }), ..task(10, 0, 0) };
    assert_eq!(proc_oom_score(&half, TOTAL), 1000);
    let max = OomTask { mm: Some(OomMm { rss_anon: TOTAL, ..OomMm::default() }), ..task(10, 0, 1000) };
    // (1000 + (16384 + 1000 * 16) * 1000 / 16384) * 2 / 3.
    assert_eq!(proc_oom_score(&max, TOTAL), 1984);
    // -999 * 16 pages: (1000 - 975) * 2 / 3, the division truncating as C's.
    assert_eq!(proc_oom_score(&OomTask { oom_score_adj: -999, ..empty }, TOTAL), 16);
    assert_eq!(proc_oom_score(&empty, 0), 666, "no memory at all divides by one");
}

#[test]
fn oom_score_adj_writes_parse_as_kstrtoint_and_stay_in_range() {
    assert_eq!(parse_oom_score_adj(b"500\n"), Ok(500));
    assert_eq!(parse_oom_score_adj(b"  -1000 "), Ok(-1000));
    assert_eq!(parse_oom_score_adj(b"+1000"), Ok(1000));
    assert_eq!(parse_oom_score_adj(b"0x10"), Ok(16));
    assert_eq!(parse_oom_score_adj(b"-010"), Ok(-8));
    assert_eq!(parse_oom_score_adj(b"0"), Ok(0));
    assert_eq!(parse_oom_score_adj(b"5\0garbage"), Ok(5));
    assert_eq!(parse_oom_score_adj(b"1001"), Err(Errno::EINVAL));
    assert_eq!(parse_oom_score_adj(b"-1001"), Err(Errno::EINVAL));
    assert_eq!(parse_oom_score_adj(b"99999999999"), Err(Errno::ERANGE));
    for bad in [&b""[..], b"\n", b"abc", b"12a", b"08", b"- 5", b"-+5", b"0x", b"\xff"] {
        assert_eq!(parse_oom_score_adj(bad), Err(Errno::EINVAL), "{bad:?}");
    }
    // Only the first 12 bytes count: "000000000001" then ignored digits.
    assert_eq!(parse_oom_score_adj(b"00000000000123"), Ok(1));
}

#[test]
fn lowering_below_the_floor_needs_cap_sys_resource_which_moves_the_floor() {
    let start = OomScoreAdj::default();
    assert_eq!(may_set_oom_score_adj(start, 500, false), Ok(OomScoreAdj { adj: 500, min: 0 }));
    assert_eq!(may_set_oom_score_adj(start, -1, false), Err(Errno::EACCES));
    let root = may_set_oom_score_adj(start, -500, true).unwrap();
    assert_eq!(root, OomScoreAdj { adj: -500, min: -500 });
    assert_eq!(may_set_oom_score_adj(root, -400, false), Ok(OomScoreAdj { adj: -400, min: -500 }));
    assert_eq!(may_set_oom_score_adj(root, -500, false), Ok(OomScoreAdj { adj: -500, min: -500 }));
    assert_eq!(may_set_oom_score_adj(root, -501, false), Err(Errno::EACCES));
    assert_eq!(may_set_oom_score_adj(root, 0, true), Ok(OomScoreAdj { adj: 0, min: 0 }));
}

#[test]
fn only_blocking_fs_allocations_of_cheap_orders_may_oom() {
    assert!(gfp_may_oom(GFP_KERNEL, 0));
    assert!(gfp_may_oom(GFP_HIGHUSER_MOVABLE, PAGE_ALLOC_COSTLY_ORDER));
    assert!(!gfp_may_oom(GFP_KERNEL, PAGE_ALLOC_COSTLY_ORDER + 1));
    assert!(!gfp_may_oom(GFP_ATOMIC, 0));
    assert!(!gfp_may_oom(GFP_NOFS, 0));
    assert!(!gfp_may_oom(GFP_KERNEL | Gfp::NORETRY, 0));
    assert!(!gfp_may_oom(GFP_KERNEL | Gfp::RETRY_MAYFAIL, 0));
}

#[test]
fn the_reaper_frees_private_memory_and_keeps_shared_and_locked_memory() {
    with_env(|env| {
        let mut mm = env.mm();
        let private = mm.do_mmap(X, 8 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        let locked = mm.do_mmap(X + 16 * P, 2 * P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        let shared = mm.do_mmap(X + 32 * P, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, None, 0).unwrap();
        for i in 0..8 {
            write(env, &mut mm, private + i * P, 1).unwrap();
        }
        for i in 0..2 {
            write(env, &mut mm, locked + i * P, 2).unwrap();
            write(env, &mut mm, shared + i * P, 3).unwrap();
        }
        mm.mlock(locked, 2 * P).unwrap();
        let before = OomMm::of(&mm);
        assert_eq!(before.rss_anon, 10);
        assert_eq!(before.rss_shmem, 2);
        let free_before = crate::sim::free_pages_drained(env.pgdat);
        let reaped = mm.oom_reap_task_mm();
        assert_eq!(reaped.ptes, 8);
        assert_eq!(reaped.skipped_vmas, 2);
        let after = OomMm::of(&mm);
        assert_eq!(after.rss_anon, 2, "the locked pages stay");
        assert_eq!(after.rss_shmem, 2, "the shared pages stay");
        assert_eq!(after.total_vm, before.total_vm, "the VMAs stay for the exit");
        assert!(crate::sim::free_pages_drained(env.pgdat) >= free_before + 8, "the private pages went back");
        assert!(pfn_at(&mm, private).is_none());
        assert!(pfn_at(&mm, locked).is_some() && pfn_at(&mm, shared).is_some());
        // Reaping twice finds nothing more; the exit then tears down the rest.
        assert_eq!(mm.oom_reap_task_mm().ptes, 0);
        crate::mmap::tests::teardown(mm);
    });
}

/// An OOM killer that "kills" by giving back a page it holds.
struct GiveBack {
    held: std::sync::Mutex<Vec<crate::Pfn>>,
    calls: std::sync::atomic::AtomicU32,
    victim: bool,
}

impl OutOfMemory for GiveBack {
    fn out_of_memory(&self, pgdat: &PgData<'_>, _gfp: Gfp, _order: u32) -> bool {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.held.lock().unwrap().pop() {
            Some(pfn) => {
                // SAFETY: a page the test allocated and no one else holds.
                #[allow(unsafe_code)]
                unsafe { pgdat.put_page(pfn) }.unwrap();
                true
            }
            None => false,
        }
    }

    fn current_is_victim(&self) -> bool {
        self.victim
    }
}

#[test]
fn the_slow_path_retries_after_each_kill_and_a_victim_only_takes_the_reserves() {
    for victim in [false, true] {
        let sim = crate::sim::Sim::flat(32 << 20);
        let pgdat = sim.pgdat(1);
        let oom: &'static GiveBack = Box::leak(Box::new(GiveBack {
            held: std::sync::Mutex::new(Vec::new()),
            calls: Default::default(),
            victim,
        }));
        let mut held = Vec::new();
        while let Some(pfn) = pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0) {
            held.push(pfn);
        }
        // Two pages the "victims" give back.
        oom.held.lock().unwrap().extend(held.drain(..2));
        pgdat.set_oom_killer(oom);
        let calls = || oom.calls.load(std::sync::atomic::Ordering::Relaxed);
        assert!(pgdat.alloc_pages(GFP_KERNEL | Gfp::NORETRY | Gfp::NOWARN, 0).is_none());
        assert_eq!(calls(), 0, "__GFP_NORETRY never kills");
        let got = pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0);
        if victim {
            held.push(got.expect("a victim takes the reserves below the min watermark"));
            while let Some(pfn) = pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0) {
                held.push(pfn);
            }
            assert_eq!(calls(), 0, "a victim never kills");
            assert_eq!(pgdat.nr_free_pages(), 0, "with the reserves gone, a victim's allocation fails");
            held.extend(oom.held.lock().unwrap().drain(..));
        } else {
            held.push(got.expect("a kill made room"));
            assert_eq!(calls(), 1);
            held.push(pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0).expect("a second kill made room"));
            assert!(pgdat.alloc_pages(GFP_KERNEL | Gfp::NOWARN, 0).is_none(), "no victim left");
            assert_eq!(calls(), 3);
        }
        for pfn in held {
            // SAFETY: the test's own pages.
            #[allow(unsafe_code)]
            unsafe { pgdat.put_page(pfn) }.unwrap();
        }
    }
}
