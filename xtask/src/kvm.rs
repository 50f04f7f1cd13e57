//! Is KVM usable here, and fast? Two quick probes.
//!
//! On nested-virtualisation hosts /dev/kvm can exist and yet every VM exit
//! costs milliseconds, making a KVM guest far slower than TCG, or QEMU cannot
//! even start a KVM guest with the host CPU model (seen on our CI machines:
//! "failed to set MSR 0x10a", then an assertion abort). So:
//! 1. through /dev/kvm's ioctls, create a VM whose only code is a real-mode
//!    loop `out 0x10, al; jmp $-2`, run it for [`EXITS`] I/O exits and time
//!    them; fail if any step fails, if it takes longer than [`DEADLINE`], or
//!    if an exit costs more than [`MAX_EXIT_COST`];
//! 2. start QEMU with `-accel kvm -cpu host` stopped (`-S`) and fail if it
//!    exits within [`QEMU_SETTLE`].

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// VM exits timed.
const EXITS: u32 = 200;
/// Slowest acceptable exit; hardware KVM takes a few microseconds.
const MAX_EXIT_COST: Duration = Duration::from_micros(200);
/// The whole probe must finish within this (KVM_RUN can hang on broken hosts).
const DEADLINE: Duration = Duration::from_secs(3);

// ioctl numbers from linux/kvm.h (KVMIO = 0xAE).
const KVM_GET_API_VERSION: libc::c_ulong = 0xae00;
const KVM_CREATE_VM: libc::c_ulong = 0xae01;
const KVM_GET_VCPU_MMAP_SIZE: libc::c_ulong = 0xae04;
const KVM_CREATE_VCPU: libc::c_ulong = 0xae41;
const KVM_SET_USER_MEMORY_REGION: libc::c_ulong = 0x4020_ae46;
const KVM_RUN: libc::c_ulong = 0xae80;
const KVM_GET_SREGS: libc::c_ulong = 0x8138_ae83;
const KVM_SET_SREGS: libc::c_ulong = 0x4138_ae84;
const KVM_SET_REGS: libc::c_ulong = 0x4090_ae82;
const KVM_API_VERSION: i32 = 12;
const KVM_EXIT_IO: u32 = 2;

/// Guest-physical address of the probe's code page.
const CODE_GPA: u64 = 0x1000;
/// `out 0x10, al; jmp short -4`.
const CODE: [u8; 4] = [0xe6, 0x10, 0xeb, 0xfc];

#[repr(C)]
struct UserspaceMemoryRegion {
    slot: u32,
    flags: u32,
    guest_phys_addr: u64,
    memory_size: u64,
    userspace_addr: u64,
}

/// `struct kvm_regs`: rax..r15, rip, rflags.
#[repr(C)]
#[derive(Default)]
struct Regs([u64; 18]);

/// `struct kvm_sregs`, handled as bytes: we only rewrite CS (offset 0).
#[repr(C)]
struct Sregs([u8; 312]);

fn check(ret: libc::c_int, what: &str) -> Result<libc::c_int, String> {
    if ret < 0 { Err(format!("{what}: {}", std::io::Error::last_os_error())) } else { Ok(ret) }
}

fn probe_inner() -> Result<Duration, String> {
    let kvm = OpenOptions::new().read(true).write(true).open("/dev/kvm").map_err(|e| format!("/dev/kvm: {e}"))?;
    let kfd = kvm.as_raw_fd();
    // SAFETY: each ioctl below gets a valid fd and, where it takes one, a
    // pointer to a live, correctly sized struct; return values are checked.
    unsafe {
        let version = check(libc::ioctl(kfd, KVM_GET_API_VERSION, 0), "KVM_GET_API_VERSION")?;
        if version != KVM_API_VERSION {
            return Err(format!("KVM API version {version}, expected {KVM_API_VERSION}"));
        }
        let vm = OwnedFd::from_raw_fd(check(libc::ioctl(kfd, KVM_CREATE_VM, 0), "KVM_CREATE_VM")?);
        let mem = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            return Err("mmap of guest memory failed".into());
        }
        std::ptr::copy_nonoverlapping(CODE.as_ptr(), mem.cast::<u8>(), CODE.len());
        let region = UserspaceMemoryRegion {
            slot: 0,
            flags: 0,
            guest_phys_addr: CODE_GPA,
            memory_size: 4096,
            userspace_addr: mem as u64,
        };
        check(libc::ioctl(vm.as_raw_fd(), KVM_SET_USER_MEMORY_REGION, &region), "KVM_SET_USER_MEMORY_REGION")?;
        let vcpu = OwnedFd::from_raw_fd(check(libc::ioctl(vm.as_raw_fd(), KVM_CREATE_VCPU, 0), "KVM_CREATE_VCPU")?);
        let run_size = check(libc::ioctl(kfd, KVM_GET_VCPU_MMAP_SIZE, 0), "KVM_GET_VCPU_MMAP_SIZE")? as usize;
        let run = libc::mmap(
            std::ptr::null_mut(),
            run_size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            vcpu.as_raw_fd(),
            0,
        );
        if run == libc::MAP_FAILED {
            return Err("mmap of kvm_run failed".into());
        }
        let mut sregs = Sregs([0; 312]);
        check(libc::ioctl(vcpu.as_raw_fd(), KVM_GET_SREGS, &mut sregs), "KVM_GET_SREGS")?;
        // CS: base 0 (bytes 0..8), selector 0 (bytes 12..14): real mode at 0.
        sregs.0[0..8].copy_from_slice(&0u64.to_le_bytes());
        sregs.0[12..14].copy_from_slice(&0u16.to_le_bytes());
        check(libc::ioctl(vcpu.as_raw_fd(), KVM_SET_SREGS, &sregs), "KVM_SET_SREGS")?;
        let mut regs = Regs::default();
        regs.0[16] = CODE_GPA; // rip
        regs.0[17] = 0x2; // rflags: reserved bit 1
        check(libc::ioctl(vcpu.as_raw_fd(), KVM_SET_REGS, &regs), "KVM_SET_REGS")?;
        let start = Instant::now();
        for _ in 0..EXITS {
            check(libc::ioctl(vcpu.as_raw_fd(), KVM_RUN, 0), "KVM_RUN")?;
            // kvm_run: u8 request_interrupt_window, immediate_exit, padding[6]; u32 exit_reason
            let reason = std::ptr::read_volatile(run.cast::<u8>().add(8).cast::<u32>());
            if reason != KVM_EXIT_IO {
                return Err(format!("unexpected KVM exit reason {reason}"));
            }
        }
        let elapsed = start.elapsed();
        libc::munmap(run, run_size);
        libc::munmap(mem, 4096);
        Ok(elapsed / EXITS)
    }
}

/// How long QEMU must survive start-up for KVM to count as usable.
const QEMU_SETTLE: Duration = Duration::from_millis(1500);

/// Starts QEMU with KVM and the host CPU model, paused, and checks that it
/// stays up.
fn qemu_starts_kvm_guest() -> Result<(), String> {
    let qemu = crate::error::which("qemu-system-x86_64").ok_or("qemu-system-x86_64 not found")?;
    let mut child = std::process::Command::new(qemu)
        .args(["-accel", "kvm", "-cpu", "host", "-machine", "q35", "-display", "none", "-nodefaults"])
        .args(["-monitor", "none", "-serial", "none", "-no-reboot", "-S"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting QEMU: {e}"))?;
    let end = Instant::now() + QEMU_SETTLE;
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            let first = err.lines().next().unwrap_or("no message").trim().to_owned();
            return Err(format!("QEMU cannot start a KVM guest here ({first})"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}

/// Returns the cost of one VM exit if KVM is usable and fast, or why not.
pub fn probe() -> Result<Duration, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(probe_inner());
    });
    let per_exit = match rx.recv_timeout(DEADLINE) {
        Ok(result) => result?,
        Err(_) => return Err(format!("KVM probe did not finish in {} s", DEADLINE.as_secs())),
    };
    if per_exit > MAX_EXIT_COST {
        return Err(format!("KVM is slow here ({} us per VM exit, nested virtualisation?)", per_exit.as_micros()));
    }
    qemu_starts_kvm_guest()?;
    Ok(per_exit)
}
