//! The local APIC: enabling it, end of interrupt, and inter-processor
//! interrupts (Linux `arch/x86/kernel/apic/apic.c`, `ipi.c`,
//! `x2apic_phys.c`).
//!
//! In xAPIC mode the registers are MMIO at the address IA32_APIC_BASE
//! gives (0xfee00000), which the direct map does not cover; the kernel
//! ioremaps the page uncached. With x2APIC (CPUID.1:ECX[21]) the registers
//! are MSRs 0x800 + offset/16 and the ICR is one 64-bit MSR. QEMU's TCG
//! offers xAPIC only, so x2APIC mode is exercised on KVM hosts.
//!
//! The local APIC timer ticks every CPU [`HZ`] times a second in periodic
//! mode (Linux `setup_APIC_timer` with `CONFIG_HZ_250`), calibrated once
//! against the TSC on the boot CPU (Linux `calibrate_APIC_clock` uses a
//! clock event the same way); the tick handler counts per-CPU ticks and
//! CPU 0 advances [`jiffies`].

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mm::PhysAddr;
use x86_64::registers::model_specific::Msr;

use super::cpu::{self, CpuFeatures};

/// IA32_APIC_BASE (SDM vol. 3 10.4.4).
const IA32_APIC_BASE: u32 = 0x1b;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;
const APIC_BASE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Register offsets (Linux `apicdef.h`).
const APIC_ID: u32 = 0x20;
const APIC_EOI: u32 = 0xb0;
const APIC_SPIV: u32 = 0xf0;
const APIC_ESR: u32 = 0x280;
const APIC_ICR: u32 = 0x300;
const APIC_ICR2: u32 = 0x310;
const APIC_LVT_TIMER: u32 = 0x320;
const APIC_LVT_LINT0: u32 = 0x350;
const APIC_LVT_LINT1: u32 = 0x360;
const APIC_LVT_ERROR: u32 = 0x370;
const APIC_TMICT: u32 = 0x380;
const APIC_TMCCT: u32 = 0x390;
const APIC_TDCR: u32 = 0x3e0;
/// Divide by 16 (Linux `APIC_TDR_DIV_16`).
const APIC_TDR_DIV_16: u32 = 0b0011;
const APIC_LVT_TIMER_PERIODIC: u32 = 1 << 17;

const APIC_SPIV_ENABLE: u32 = 1 << 8;
const APIC_LVT_MASKED: u32 = 1 << 16;
/// ICR delivery status: the IPI has not been accepted yet (xAPIC only).
const APIC_ICR_BUSY: u32 = 1 << 12;
const APIC_DM_INIT: u32 = 0x500;
const APIC_DM_STARTUP: u32 = 0x600;
const APIC_INT_ASSERT: u32 = 0x4000;
const APIC_INT_LEVELTRIG: u32 = 0x8000;

/// Spurious-interrupt vector (Linux `SPURIOUS_APIC_VECTOR`).
pub const SPURIOUS_VECTOR: u8 = 0xff;
/// Local timer vector (Linux `LOCAL_TIMER_VECTOR`).
pub const LOCAL_TIMER_VECTOR: u8 = 0xec;
/// Timer ticks per second (Linux `CONFIG_HZ_250`).
pub const HZ: u64 = 250;

static X2APIC: AtomicBool = AtomicBool::new(false);
/// APIC timer counts (at divide-by-16) per tick; 0 until calibrated.
static TICKS_PER_JIFFY: AtomicU64 = AtomicU64::new(0);
static JIFFIES: AtomicU64 = AtomicU64::new(0);
/// Ticks seen per CPU.
static CPU_TICKS: [AtomicU64; super::acpi::MAX_CPUS] = [const { AtomicU64::new(0) }; super::acpi::MAX_CPUS];
/// Virtual address of the xAPIC register page (0 until mapped).
static MMIO: AtomicU64 = AtomicU64::new(0);

/// Physical address of the local APIC registers, from IA32_APIC_BASE.
pub fn base_phys() -> PhysAddr {
    // SAFETY: IA32_APIC_BASE exists on every CPU with an APIC (all x86_64).
    PhysAddr::new(unsafe { Msr::new(IA32_APIC_BASE).read() } & APIC_BASE_ADDR_MASK)
}

fn read(reg: u32) -> u32 {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: in x2APIC mode registers 0x20..0x3f0 are MSRs
        // 0x802..0x83f; reading one has no side effects.
        unsafe { Msr::new(0x800 + (reg >> 4)).read() as u32 }
    } else {
        let base = MMIO.load(Ordering::Relaxed);
        // SAFETY: `base` maps the APIC register page uncached (set in
        // `init_bsp` before any access); registers are 32-bit aligned.
        unsafe { ((base + u64::from(reg)) as *const u32).read_volatile() }
    }
}

fn write(reg: u32, value: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        // SAFETY: as in `read`; writes to these registers configure only
        // the local APIC.
        unsafe { Msr::new(0x800 + (reg >> 4)).write(u64::from(value)) }
    } else {
        let base = MMIO.load(Ordering::Relaxed);
        // SAFETY: as in `read`.
        unsafe { ((base + u64::from(reg)) as *mut u32).write_volatile(value) }
    }
}

/// This CPU's APIC id.
pub fn id() -> u32 {
    if X2APIC.load(Ordering::Relaxed) { read(APIC_ID) } else { read(APIC_ID) >> 24 }
}

/// Maps (xAPIC) or switches to x2APIC mode, then enables the boot CPU's
/// APIC (Linux `init_bsp_APIC` + `setup_local_APIC`).
///
/// # Panics
/// If the register page cannot be mapped (vmalloc must be up).
pub fn init_bsp() {
    if cpu::features().contains(CpuFeatures::X2APIC) {
        X2APIC.store(true, Ordering::Relaxed);
    } else {
        let regs = crate::vmalloc::ioremap(base_phys(), mm::PAGE_SIZE)
            .unwrap_or_else(|e| panic!("cannot map the local APIC: {e}"));
        MMIO.store(regs.as_u64(), Ordering::Relaxed);
    }
    setup_local_apic();
}

/// Enables this CPU's APIC: x2APIC mode if chosen, spurious vector, LVTs
/// masked (no timer or LINT interrupts yet), errors cleared.
pub fn setup_local_apic() {
    let mut msr = Msr::new(IA32_APIC_BASE);
    // SAFETY: setting the global enable (and x2APIC mode when CPUID has
    // it) keeps the registers at the same physical address.
    unsafe {
        let mut base = msr.read() | APIC_BASE_ENABLE;
        if X2APIC.load(Ordering::Relaxed) {
            base |= APIC_BASE_X2APIC;
        }
        msr.write(base);
    }
    for lvt in [APIC_LVT_TIMER, APIC_LVT_LINT0, APIC_LVT_LINT1, APIC_LVT_ERROR] {
        write(lvt, APIC_LVT_MASKED);
    }
    write(APIC_SPIV, APIC_SPIV_ENABLE | u32::from(SPURIOUS_VECTOR));
    write(APIC_ESR, 0);
    write(APIC_ESR, 0);
    eoi();
}

/// Measures the timer against the TSC over 10 ms (Linux
/// `calibrate_APIC_clock`); returns the APIC timer frequency in Hz.
fn calibrate_timer() -> u64 {
    write(APIC_TDCR, APIC_TDR_DIV_16);
    write(APIC_LVT_TIMER, APIC_LVT_MASKED);
    write(APIC_TMICT, u32::MAX);
    let start = super::tsc::now_ns();
    while super::tsc::now_ns() < start + 10_000_000 {
        core::hint::spin_loop();
    }
    let counted = u64::from(u32::MAX - read(APIC_TMCCT));
    // Divide by the time that really passed (the loop overshoots).
    let elapsed_ns = (super::tsc::now_ns() - start).max(1);
    write(APIC_TMICT, 0);
    counted * 1_000_000_000 / elapsed_ns
}

/// Starts this CPU's periodic tick (calibrating first on the boot CPU).
pub fn setup_timer() {
    if TICKS_PER_JIFFY.load(Ordering::Relaxed) == 0 {
        let hz = calibrate_timer();
        TICKS_PER_JIFFY.store((hz / HZ).max(1), Ordering::Relaxed);
        log::info!("APIC timer: {}.{:03} MHz bus clock / 16, HZ={HZ}", hz * 16 / 1_000_000, hz * 16 / 1000 % 1000);
    }
    write(APIC_TDCR, APIC_TDR_DIV_16);
    write(APIC_LVT_TIMER, APIC_LVT_TIMER_PERIODIC | u32::from(LOCAL_TIMER_VECTOR));
    write(APIC_TMICT, TICKS_PER_JIFFY.load(Ordering::Relaxed) as u32);
}

/// The [`LOCAL_TIMER_VECTOR`] handler (Linux `local_apic_timer_interrupt`
/// -> `tick_handle_periodic`); `user_tick` says whether it interrupted
/// user mode.
pub fn timer_interrupt(user_tick: bool) {
    let cpu = super::smp::smp_processor_id() as usize;
    CPU_TICKS[cpu].fetch_add(1, Ordering::Relaxed);
    if cpu == 0 {
        JIFFIES.fetch_add(1, Ordering::Relaxed);
    }
    eoi();
    crate::sched::scheduler_tick(user_tick);
}

/// Ticks since the timer started (Linux `jiffies`), counted by CPU 0.
pub fn jiffies() -> u64 {
    JIFFIES.load(Ordering::Relaxed)
}

/// Timer ticks CPU `cpu` has taken.
pub fn cpu_ticks(cpu: u32) -> u64 {
    CPU_TICKS.get(cpu as usize).map_or(0, |t| t.load(Ordering::Relaxed))
}

/// Signals end of interrupt.
pub fn eoi() {
    write(APIC_EOI, 0);
}

fn send(dest: u32, low: u32) {
    if X2APIC.load(Ordering::Relaxed) {
        let mut icr = Msr::new(0x830);
        // WRMSR to the x2APIC ICR is not serialising: without the fences the
        // IPI may arrive before the stores that announce its request (SDM
        // vol. 3 11.12.3; Linux weak_wrmsr_fence).
        core::sync::atomic::fence(Ordering::SeqCst);
        // SAFETY: LFENCE has no side effects beyond ordering; the x2APIC
        // ICR MSR takes destination << 32 | command.
        unsafe {
            core::arch::x86_64::_mm_lfence();
            icr.write(u64::from(dest) << 32 | u64::from(low));
        }
    } else {
        while read(APIC_ICR) & APIC_ICR_BUSY != 0 {
            core::hint::spin_loop();
        }
        write(APIC_ICR2, dest << 24);
        write(APIC_ICR, low);
        while read(APIC_ICR) & APIC_ICR_BUSY != 0 {
            core::hint::spin_loop();
        }
    }
}

/// Sends fixed interrupt `vector` to the CPU with APIC id `dest`.
pub fn send_ipi(dest: u32, vector: u8) {
    send(dest, u32::from(vector));
}

/// INIT IPI, assert then deassert (SDM vol. 3 8.4.4.1; Linux
/// `wakeup_secondary_cpu_via_init`).
pub fn send_init(dest: u32) {
    send(dest, APIC_DM_INIT | APIC_INT_LEVELTRIG | APIC_INT_ASSERT);
    send(dest, APIC_DM_INIT | APIC_INT_LEVELTRIG);
}

/// STARTUP IPI: the target starts in real mode at `page` << 12.
pub fn send_startup(dest: u32, page: u8) {
    send(dest, APIC_DM_STARTUP | u32::from(page));
}
