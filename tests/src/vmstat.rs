//! What the vmstat counters cost (they stay on in every build): one event
//! and one node-state update on this CPU, and reading a counter summed over
//! CPUs, beside a report's formatting.

use core::hint::black_box;

use kernel::kbench::Bencher;
use ktest_macros::kbench;
use mm::vmstat::{NodeStatItem, VmEventItem};

/// `count_vm_event`: this CPU's counter, one relaxed atomic add (the
/// benchmark boot's pgreuse count means nothing afterwards).
#[kbench]
fn count_vm_event(b: &mut Bencher<'_>) {
    let pgdat = kernel::mm::pgdat();
    b.iter(|| pgdat.count_vm_event(black_box(VmEventItem::Pgreuse)));
}

/// `mod_node_page_state` up and down (two updates per iteration, so the
/// counter ends where it began).
#[kbench]
fn mod_node_page_state_pair(b: &mut Bencher<'_>) {
    let pgdat = kernel::mm::pgdat();
    b.iter(|| {
        pgdat.mod_node_page_state(black_box(NodeStatItem::NrFileMapped), 1);
        pgdat.mod_node_page_state(black_box(NodeStatItem::NrFileMapped), -1);
    });
}

/// `all_vm_events`: a reader's sum over every CPU.
#[kbench]
fn all_vm_events_sum(b: &mut Bencher<'_>) {
    let pgdat = kernel::mm::pgdat();
    b.iter(|| pgdat.all_vm_events(black_box(VmEventItem::Pgfault)));
}

/// Formatting /proc/vmstat into a reused buffer.
#[kbench]
fn vmstat_report(b: &mut Bencher<'_>) {
    use core::fmt::Write as _;
    let pgdat = kernel::mm::pgdat();
    let mut text = alloc::string::String::with_capacity(8192);
    b.iter(|| {
        text.clear();
        let _ = write!(text, "{}", mm::vmstat::Vmstat(pgdat));
        text.len()
    });
}
