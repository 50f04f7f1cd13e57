//! Slab shrinkers in the kernel (mm/src/shrinker.rs, kernel/src/fs/shrinker.rs)
//! and the vm sysctls that tune reclaim (kernel/src/fs/proc_sysctl.rs):
//! the dcache and ext2's buffer cache give memory back under pressure and
//! to `drop_caches`, with no file data lost; `vm.min_free_kbytes` and
//! `vm.watermark_scale_factor` recompute the watermarks /proc/zoneinfo
//! shows.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write as _;

use kernel::fs::inode::SuperBlock;
use kernel::fs::proc_sysctl;
use kernel::fs::syscalls::{kern, kern_path};
use ktest_macros::ktest;
use mm::gfp::{GFP_KERNEL, Gfp};
use mm::mmzone::Watermark;
use mm::vmstat::VmEventItem;
use uapi::errno::Errno;

/// Files written before the pressure, each a few pages.
const FILES: usize = 24;
/// Names looked up that do not exist: negative dentries.
const MISSING: usize = 3000;

fn events(item: VmEventItem) -> u64 {
    kernel::mm::pgdat().all_vm_events(item)
}

fn contents(i: usize) -> Vec<u8> {
    (0..3 * 4096 + i).map(|b| ((b * 7 + i * 13) % 251) as u8).collect()
}

/// The disk's ext2 mounted on `dir` with [`FILES`] files written and
/// synced, and the dcache filled with [`MISSING`] negative entries and a
/// positive one per file; returns the superblock.
fn mount_and_fill(dir: &str) -> Arc<SuperBlock> {
    kern::mkdir(dir).expect("mkdir");
    kern::mount("/dev/vda", dir, "ext2", false).expect("mount /dev/vda");
    for i in 0..FILES {
        kern::write_file(&format!("{dir}/f{i}"), &contents(i)).expect("write");
    }
    kernel::fs::namespace::sync_all().expect("sync");
    for i in 0..MISSING {
        assert_eq!(kern_path(&format!("{dir}/missing-{i}")).err(), Some(Errno::ENOENT));
    }
    for i in 0..FILES {
        // Read, so that each file has cached pages to drop before its
        // inode can go.
        assert_eq!(kern::read_file(&format!("{dir}/f{i}")).expect("read"), contents(i));
    }
    let sb = kern_path(dir).expect("the mount").inode.sb.clone();
    assert!(sb.dcache.len() >= (MISSING + FILES) as u64, "the dcache holds {}", sb.dcache.len());
    sb
}

fn check_files(dir: &str) {
    for i in 0..FILES {
        assert_eq!(kern::read_file(&format!("{dir}/f{i}")).expect("read back"), contents(i), "f{i}");
    }
}

/// Free pages below which every zone's low watermark is broken.
fn low_watermarks() -> u64 {
    kernel::mm::pgdat().zones().iter().map(|z| z.watermark(Watermark::Low)).sum()
}

/// Memory pressure on a small machine: pages are taken until the free
/// memory falls under the low watermarks, which wakes kswapd; kswapd runs
/// the shrinkers with `GFP_KERNEL` at each priority pass, and the dcache
/// shrinks (slabs_scanned counts its scans). Once the pages are back,
/// every file reads back whole.
#[ktest(mem = 64, disk = 16, disk_tree = "basic", timeout = 120)]
fn memory_pressure_shrinks_the_dcache_through_kswapd_and_loses_no_data() {
    let dir = "/mnt-shrink";
    let sb = mount_and_fill(dir);
    let (dentries, scanned) = (sb.dcache.len(), events(VmEventItem::SlabsScanned));
    let mut held = Vec::new();
    let pgdat = kernel::mm::pgdat();
    while pgdat.nr_free_pages() > low_watermarks() {
        match kernel::mm::alloc_pages_owned(GFP_KERNEL | Gfp::NOWARN, 0) {
            Some(page) => held.push(page),
            None => break,
        }
    }
    // One more, through the slow path, which wakes kswapd.
    held.extend(kernel::mm::alloc_pages_owned(GFP_KERNEL | Gfp::NOWARN, 0));
    let deadline = kernel::arch::x86_64::tsc::now_ns() + 20_000_000_000;
    while sb.dcache.len() >= dentries / 2 {
        assert!(
            kernel::arch::x86_64::tsc::now_ns() < deadline,
            "kswapd did not shrink the dcache: {} of {dentries} entries left, slabs_scanned {} -> {}",
            sb.dcache.len(),
            scanned,
            events(VmEventItem::SlabsScanned)
        );
        kernel::sched::wait::sleep_until_ns(kernel::arch::x86_64::tsc::now_ns() + 10_000_000, || false);
    }
    drop(held);
    assert!(events(VmEventItem::SlabsScanned) > scanned, "slabs_scanned did not rise");
    kernel::kprintln!(
        "shrinker: dcache {dentries} -> {} entries, slabs_scanned +{}, kswapd_inodesteal {}",
        sb.dcache.len(),
        events(VmEventItem::SlabsScanned) - scanned,
        events(VmEventItem::KswapdInodesteal)
    );
    check_files(dir);
    drop(sb);
    kern::umount(dir).expect("umount");
    kern::mount("/dev/vda", dir, "ext2", false).expect("mount again");
    check_files(dir);
    kern::umount(dir).expect("umount");
}

/// `echo 2 > /proc/sys/vm/drop_caches` runs the shrinkers until they
/// free little (Linux `drop_slab`): the negative entries and the unused
/// inodes go (their pages first), ext2's clean metadata blocks go; an
/// inode in use keeps its entry, and every file reads back whole.
#[ktest(disk = 24, disk_tree = "basic", timeout = 60)]
fn drop_caches_2_empties_the_dcache_but_for_inodes_in_use() {
    let dir = "/mnt-drop-slab";
    let sb = mount_and_fill(dir);
    let busy = kern_path(&format!("{dir}/f0")).expect("f0");
    let (scanned, drops) = (events(VmEventItem::SlabsScanned), events(VmEventItem::DropSlab));
    let blocks = sb.ops.nr_cached_objects();
    assert!(blocks > 2, "ext2 caches metadata blocks: {blocks}");
    let drop_caches = proc_sysctl::lookup("/proc/sys/vm/drop_caches").expect("the sysctl");
    (drop_caches.store.expect("writable"))("2\n").expect("echo 2");
    assert_eq!(events(VmEventItem::DropSlab), drops + 1);
    assert!(events(VmEventItem::SlabsScanned) > scanned);
    let root = kern_path(dir).expect("the mount root").inode.ino;
    assert!(sb.dcache.lookup(root, b"f0").is_some(), "the entry of an inode in use stays");
    assert!(sb.dcache.lookup(root, b"missing-0").is_none(), "negative entries go");
    assert!(sb.dcache.lookup(root, b"f1").is_none(), "unused inodes go");
    assert!(sb.dcache.len() <= 2, "{} entries left", sb.dcache.len());
    // The clean ones went; the reads' access times dirtied a few, which
    // stay for write-back.
    let left = sb.ops.nr_cached_objects();
    assert!(left < blocks && left <= 2, "{left} of {blocks} metadata blocks left");
    drop(busy);
    check_files(dir);
    drop(sb);
    kern::umount(dir).expect("umount");
}

/// The value a sysctl file reads.
fn sysctl(path: &str) -> String {
    let s = proc_sysctl::lookup(path).unwrap_or_else(|| panic!("{path}"));
    (s.show)()
}

/// Writes `text` to a sysctl file, as write(2) does.
fn set_sysctl(path: &str, text: &str) -> Result<(), Errno> {
    let s = proc_sysctl::lookup(path).unwrap_or_else(|| panic!("{path}"));
    (s.store.expect("a settable sysctl"))(text)
}

/// `(min, low, high)` of every zone as /proc/zoneinfo prints them.
fn zoneinfo_watermarks() -> Vec<(String, u64, u64, u64)> {
    let mut text = String::new();
    write!(text, "{}", mm::vmstat::Zoneinfo(kernel::mm::pgdat())).expect("format");
    let mut zones = Vec::new();
    let mut name = String::new();
    let mut marks = [0u64; 3];
    for line in text.lines() {
        if let Some(zone) = line.strip_prefix("Node 0, zone ") {
            name = String::from(zone.trim());
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(key), Some(value)) = (words.next(), words.next()) else { continue };
        let slot = match key {
            "min" => 0,
            "low" => 1,
            "high" => 2,
            _ => continue,
        };
        marks[slot] = value.parse().expect("a number");
        if slot == 2 {
            zones.push((name.clone(), marks[0], marks[1], marks[2]));
        }
    }
    zones
}

/// Linux `__setup_per_zone_wmarks` for the zones now.
fn linux_watermarks(min_free_kbytes: u64, scale_factor: u64) -> Vec<(String, u64, u64, u64)> {
    let zones = kernel::mm::pgdat().zones();
    let lowmem: u64 = zones.iter().map(|z| z.managed_pages()).sum();
    zones
        .iter()
        .map(|z| {
            let min = (min_free_kbytes >> 2) * z.managed_pages() / lowmem;
            let gap = (min >> 2).max(z.managed_pages() * scale_factor / 10_000);
            (String::from(z.name()), min, min + gap, min + 2 * gap)
        })
        .collect()
}

#[ktest]
fn vm_watermark_sysctls_recompute_the_zoneinfo_watermarks_and_refuse_bad_values() {
    let (kbytes, factor) = (sysctl("/proc/sys/vm/min_free_kbytes"), sysctl("/proc/sys/vm/watermark_scale_factor"));
    let boot: u64 = kbytes.trim().parse().expect("a number");
    assert_eq!(factor, "10\n");
    assert_eq!(zoneinfo_watermarks(), linux_watermarks(boot, 10));
    set_sysctl("/proc/sys/vm/min_free_kbytes", "4096\n").expect("min_free_kbytes");
    set_sysctl("/proc/sys/vm/watermark_scale_factor", "200").expect("watermark_scale_factor");
    assert_eq!(sysctl("/proc/sys/vm/min_free_kbytes"), "4096\n");
    assert_eq!(sysctl("/proc/sys/vm/watermark_scale_factor"), "200\n");
    let tuned = zoneinfo_watermarks();
    assert_eq!(tuned, linux_watermarks(4096, 200));
    for (path, bad) in [
        ("/proc/sys/vm/min_free_kbytes", "-1"),
        ("/proc/sys/vm/min_free_kbytes", "2147483648"),
        ("/proc/sys/vm/min_free_kbytes", "lots"),
        ("/proc/sys/vm/watermark_scale_factor", "0"),
        ("/proc/sys/vm/watermark_scale_factor", "3001"),
        ("/proc/sys/vm/swappiness", "201"),
        ("/proc/sys/vm/dirty_ratio", "101"),
        ("/proc/sys/vm/dirty_background_ratio", "101"),
        ("/proc/sys/vm/dirty_expire_centisecs", "-5"),
    ] {
        assert_eq!(set_sysctl(path, bad), Err(Errno::EINVAL), "{path} = {bad}");
    }
    assert_eq!(zoneinfo_watermarks(), tuned, "a refused value changed nothing");
    assert_eq!(sysctl("/proc/sys/vm/swappiness"), "60\n");
    set_sysctl("/proc/sys/vm/swappiness", "200").expect("swappiness");
    assert_eq!(sysctl("/proc/sys/vm/swappiness"), "200\n");
    assert_eq!(kernel::mm::pgdat().vm_swappiness(), 200);
    let dirty = sysctl("/proc/sys/vm/dirty_ratio");
    set_sysctl("/proc/sys/vm/dirty_ratio", "30").expect("dirty_ratio");
    assert_eq!(sysctl("/proc/sys/vm/dirty_ratio"), "30\n");
    // Back as the boot left them.
    set_sysctl("/proc/sys/vm/dirty_ratio", &dirty).expect("dirty_ratio");
    set_sysctl("/proc/sys/vm/swappiness", "60").expect("swappiness");
    set_sysctl("/proc/sys/vm/watermark_scale_factor", &factor).expect("watermark_scale_factor");
    set_sysctl("/proc/sys/vm/min_free_kbytes", &kbytes).expect("min_free_kbytes");
    assert_eq!(zoneinfo_watermarks(), linux_watermarks(boot, 10));
}
