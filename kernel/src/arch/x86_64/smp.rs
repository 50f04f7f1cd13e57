//! SMP: per-CPU identity, bringing up the application processors, and
//! cross-CPU function calls (Linux `arch/x86/kernel/smpboot.c`,
//! `arch/x86/realmode/rm/trampoline_64.S`, `kernel/smp.c`,
//! `arch/x86/include/asm/current.h`'s `pcpu_hot`).
//!
//! Each CPU's GS base points at its per-CPU area (`crate::percpu`), so
//! [`smp_processor_id`] is one `gs`-relative load (Linux's
//! `this_cpu_read(pcpu_hot.cpu_number)`). [`PcpuHot`] holds what other
//! CPUs must reach by number (APIC id, IST ranges, queued work).
//!
//! Bring-up, one AP at a time (Linux `do_boot_cpu`): the trampoline (16-bit
//! code that enters protected mode, enables PAE and long mode on the
//! kernel's page tables and jumps to [`ap_main`]) is copied to a free page
//! below 1 MiB that is identity-mapped for the moment paging turns on; its
//! data slots get the root table, a vmalloc'd stack and the CPU number;
//! then INIT, 10 ms, STARTUP, 200 us, STARTUP (SDM vol. 3 8.4.4.1), and a
//! wait of up to 1 s for the AP to mark itself online. An AP that does not
//! answer is reported and left out. The identity mapping is removed after.
//!
//! Cross-CPU calls (Linux `smp_call_function_many`): one request at a time
//! under `CALL_LOCK`; the caller writes function and arguments, sets the
//! pending bit of each target and sends [`CALL_FUNCTION_VECTOR`]; each
//! target runs the function in its interrupt handler and clears its bit;
//! the caller spins until all bits are clear. A CPU waiting for the lock
//! (or spinning with interrupts off anywhere in this module) serves a
//! request addressed to it, so two CPUs calling each other cannot
//! deadlock. Kernel TLB shootdowns use this ([`super::tlb`]).
//!
//! Work that should run with interrupts enabled on another CPU (tests,
//! benchmarks) goes through [`run_on_cpu`]: the AP's idle loop picks it up
//! (Linux `smp_call_on_cpu`, which uses a kworker).
//!
//! Lock order: `CALL_LOCK` is a leaf (nothing is taken under it), a
//! [`SpinLock`]: never taken in interrupt context, with interrupts on or
//! off. A CPU's `ist` is a leaf [`SpinLockIrq`] (exception handlers read it).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use log::{info, warn};
use mm::pgtable::{FreeTables, PAGE_KERNEL_ROX, PageSize, TlbGather};
use mm::{PAGE_SIZE, PhysAddr, VirtAddr};
use spin::Once;

use crate::sync::{SpinLock, SpinLockIrq};

use super::acpi::{MAX_CPUS, Madt};
use super::gdt::IstRange;
use super::{apic, cpu, gdt, pgtable, traps, tsc};

/// Vector of cross-CPU function calls (Linux `CALL_FUNCTION_VECTOR`).
pub const CALL_FUNCTION_VECTOR: u8 = 0xfb;

/// Per-CPU data other CPUs reach by CPU number.
#[repr(C, align(64))]
pub struct PcpuHot {
    apic_id: AtomicU32,
    ist: SpinLockIrq<Option<[IstRange; 3]>>,
    /// Work for [`run_on_cpu`]: function, argument, result, state.
    work_fn: AtomicU64,
    work_arg: AtomicU64,
    work_result: AtomicU64,
    work_state: AtomicU32,
}

const WORK_IDLE: u32 = 0;
const WORK_QUEUED: u32 = 1;
const WORK_DONE: u32 = 2;

static PCPU: [PcpuHot; MAX_CPUS] = [const {
    PcpuHot {
        apic_id: AtomicU32::new(0),
        ist: SpinLockIrq::new(None),
        work_fn: AtomicU64::new(0),
        work_arg: AtomicU64::new(0),
        work_result: AtomicU64::new(0),
        work_state: AtomicU32::new(WORK_IDLE),
    }
}; MAX_CPUS];

/// Bit n: CPU n is online.
static ONLINE: AtomicU64 = AtomicU64::new(1);
static MADT: Once<Madt> = Once::new();

pub use crate::percpu::smp_processor_id;

/// This CPU's IST stacks, if it is an AP with its own.
pub fn this_cpu_ist() -> Option<[IstRange; 3]> {
    let cpu = smp_processor_id() as usize;
    if cpu == 0 { None } else { PCPU[cpu].ist.try_lock().and_then(|ist| *ist) }
}

/// Records the MADT (parsed before the kernel page tables exist).
pub fn set_madt(madt: Madt) {
    MADT.call_once(|| madt);
}

/// CPUs the kernel may bring up: the MADT's, or 1 without one.
pub fn nr_cpu_ids() -> u32 {
    MADT.get().map_or(1, |m| m.nr_cpus.max(1) as u32)
}

/// Online CPUs as a bit mask.
pub fn online_mask() -> u64 {
    ONLINE.load(Ordering::Acquire)
}

/// Number of online CPUs (Linux `num_online_cpus`).
pub fn num_online_cpus() -> u32 {
    online_mask().count_ones()
}

// ---------------------------------------------------------------------
// Cross-CPU calls.

static CALL_LOCK: SpinLock<()> = SpinLock::new(());
static CALL_FN: AtomicU64 = AtomicU64::new(0);
static CALL_ARGS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static CALL_PENDING: AtomicU64 = AtomicU64::new(0);

/// Runs the pending call if it is addressed to this CPU. Interrupts are
/// off throughout: otherwise the call's own IPI could run it again inside
/// a polling caller, clear the bit, let the next request in, and the outer
/// run would then clear the next request's bit without running it.
fn serve_call() {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let me = 1u64 << smp_processor_id();
        if CALL_PENDING.load(Ordering::Acquire) & me == 0 {
            return;
        }
        let f = CALL_FN.load(Ordering::Acquire);
        let (a, b) = (CALL_ARGS[0].load(Ordering::Acquire), CALL_ARGS[1].load(Ordering::Acquire));
        // SAFETY: CALL_FN holds a `fn(u64, u64)` stored by
        // `call_function_many` before it set our pending bit
        // (Release/Acquire on CALL_PENDING).
        let f: fn(u64, u64) = unsafe { core::mem::transmute::<u64, fn(u64, u64)>(f) };
        f(a, b);
        CALL_PENDING.fetch_and(!me, Ordering::AcqRel);
    });
}

/// The [`CALL_FUNCTION_VECTOR`] handler.
pub fn call_function_interrupt() {
    serve_call();
    apic::eoi();
}

/// Runs `f(a, b)` on every online CPU in `mask` except this one and waits
/// until all have (Linux `smp_call_function_many` with `wait`). `f` runs
/// in interrupt context: it must not block or take locks that interrupted
/// code may hold.
pub fn call_function_many(mask: u64, f: fn(u64, u64), a: u64, b: u64) {
    let me = 1u64 << smp_processor_id();
    let targets = mask & online_mask() & !me;
    if targets == 0 {
        return;
    }
    let guard = loop {
        if let Some(guard) = CALL_LOCK.try_lock() {
            break guard;
        }
        serve_call();
        core::hint::spin_loop();
    };
    CALL_FN.store(f as usize as u64, Ordering::Release);
    CALL_ARGS[0].store(a, Ordering::Release);
    CALL_ARGS[1].store(b, Ordering::Release);
    CALL_PENDING.store(targets, Ordering::Release);
    let mut rest = targets;
    while rest != 0 {
        let cpu = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        apic::send_ipi(PCPU[cpu].apic_id.load(Ordering::Relaxed), CALL_FUNCTION_VECTOR);
    }
    while CALL_PENDING.load(Ordering::Acquire) != 0 {
        core::hint::spin_loop();
    }
    drop(guard);
}

/// Queues `f(arg)` for the idle loop of `cpu` (interrupts enabled there)
/// and wakes it; [`wait_on_cpu`] collects the result. Returns false if
/// the CPU is offline, is this CPU, or already has work.
pub fn run_on_cpu(cpu: u32, f: fn(u64) -> u64, arg: u64) -> bool {
    let c = cpu as usize;
    if c >= MAX_CPUS || cpu == smp_processor_id() || online_mask() & (1 << c) == 0 {
        return false;
    }
    let slot = &PCPU[c];
    if slot.work_state.load(Ordering::Acquire) != WORK_IDLE {
        return false;
    }
    slot.work_fn.store(f as usize as u64, Ordering::Relaxed);
    slot.work_arg.store(arg, Ordering::Relaxed);
    slot.work_state.store(WORK_QUEUED, Ordering::Release);
    // Any interrupt wakes `hlt`; the call vector with no call pending is one.
    apic::send_ipi(slot.apic_id.load(Ordering::Relaxed), CALL_FUNCTION_VECTOR);
    true
}

/// Waits for the work queued with [`run_on_cpu`] and returns its result.
pub fn wait_on_cpu(cpu: u32) -> u64 {
    let slot = &PCPU[cpu as usize];
    while slot.work_state.load(Ordering::Acquire) != WORK_DONE {
        serve_call();
        core::hint::spin_loop();
    }
    let result = slot.work_result.load(Ordering::Relaxed);
    slot.work_state.store(WORK_IDLE, Ordering::Release);
    result
}

/// Runs this CPU's pending cross-CPU call and queued [`run_on_cpu`] work,
/// with interrupts enabled while the work runs. Called by the idle loop.
pub fn serve_pending_work() {
    // A call whose IPI overtook its request (or was lost) is served here.
    serve_call();
    let slot = &PCPU[smp_processor_id() as usize];
    if slot.work_state.load(Ordering::Acquire) != WORK_QUEUED {
        return;
    }
    let were_on = x86_64::instructions::interrupts::are_enabled();
    x86_64::instructions::interrupts::enable();
    // SAFETY: `run_on_cpu` stored a `fn(u64) -> u64` before setting
    // WORK_QUEUED (Release/Acquire).
    let f: fn(u64) -> u64 =
        unsafe { core::mem::transmute::<u64, fn(u64) -> u64>(slot.work_fn.load(Ordering::Relaxed)) };
    let result = f(slot.work_arg.load(Ordering::Relaxed));
    slot.work_result.store(result, Ordering::Relaxed);
    slot.work_state.store(WORK_DONE, Ordering::Release);
    if !were_on {
        x86_64::instructions::interrupts::disable();
    }
}

/// Whether [`run_on_cpu`] work waits for this CPU.
pub fn work_pending() -> bool {
    PCPU[smp_processor_id() as usize].work_state.load(Ordering::Acquire) == WORK_QUEUED
}

/// The local APIC id of online CPU `cpu`.
pub fn apic_id_of(cpu: u32) -> Option<u32> {
    (online_mask() & (1u64 << cpu) != 0).then(|| PCPU[cpu as usize].apic_id.load(Ordering::Relaxed))
}

// ---------------------------------------------------------------------
// Bring-up.

core::arch::global_asm!(
    r#"
    .section .rodata.ap_trampoline, "a"
    .balign 16
    .global ap_trampoline_start
ap_trampoline_start:
    .code16
    cli
    cld
    movw %cs, %ax
    movw %ax, %ds
    lgdtl (ap_gdtr - ap_trampoline_start)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    .byte 0x66, 0xea
    .global ap_pm32_target
ap_pm32_target:
    .long 0
    .word 0x08
    .code32
    .global ap_pm32
ap_pm32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    .byte 0xbb
    .global ap_base_imm
ap_base_imm:
    .long 0
    movl %cr4, %eax
    orl $0x20, %eax
    movl %eax, %cr4
    movl (ap_cr3 - ap_trampoline_start)(%ebx), %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx
    rdmsr
    orl (ap_efer - ap_trampoline_start)(%ebx), %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80010000, %eax
    movl %eax, %cr0
    .byte 0xea
    .global ap_lm64_target
ap_lm64_target:
    .long 0
    .word 0x18
    .code64
    .global ap_lm64
ap_lm64:
    movl %ebx, %ebx
    movq (ap_stack - ap_trampoline_start)(%rbx), %rsp
    movq (ap_arg - ap_trampoline_start)(%rbx), %rdi
    movq (ap_entry - ap_trampoline_start)(%rbx), %rax
    xorl %ebp, %ebp
    jmp *%rax
    .balign 8
    .global ap_gdt
ap_gdt:
    .quad 0
    .quad 0x00cf9b000000ffff
    .quad 0x00cf93000000ffff
    .quad 0x00af9b000000ffff
ap_gdtr:
    .word ap_gdtr - ap_gdt - 1
    .global ap_gdt_base
ap_gdt_base:
    .long 0
    .balign 8
    .global ap_cr3
ap_cr3: .quad 0
    .global ap_efer
ap_efer: .quad 0
    .global ap_stack
ap_stack: .quad 0
    .global ap_entry
ap_entry: .quad 0
    .global ap_arg
ap_arg: .quad 0
    .global ap_trampoline_end
ap_trampoline_end:
    .code64
    .text
"#,
    options(att_syntax)
);

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
    static ap_pm32_target: u8;
    static ap_base_imm: u8;
    static ap_lm64_target: u8;
    static ap_gdt_base: u8;
    static ap_cr3: u8;
    static ap_efer: u8;
    static ap_stack: u8;
    static ap_entry: u8;
    static ap_arg: u8;
    static ap_gdt: u8;
    static ap_pm32: u8;
    static ap_lm64: u8;
}

/// Offset of a trampoline symbol from its start.
fn tramp_offset(sym: *const u8) -> usize {
    sym as usize - &raw const ap_trampoline_start as usize
}

/// A page below 1 MiB for the trampoline: RAM that was free at hand-over
/// (memblock reserves the whole first MiB, so nothing else allocates it;
/// bootloader-used pages there may hold the boot stack).
fn trampoline_page() -> Option<u64> {
    use bootloader_api::info::MemoryRegionKind;
    crate::boot::params()
        .memory_regions
        .iter()
        .filter(|r| r.kind == MemoryRegionKind::Usable)
        .filter_map(|r| {
            let start = r.start.max(0x1000).next_multiple_of(PAGE_SIZE);
            let end = r.end.min(0x9_f000) & !(PAGE_SIZE - 1);
            (end >= start + PAGE_SIZE).then_some(end - PAGE_SIZE)
        })
        .max()
}

/// Set by an AP once it runs on its own tables.
static AP_ALIVE: AtomicU32 = AtomicU32::new(u32::MAX);

/// Rust entry of an application processor (from the trampoline).
extern "C" fn ap_main(cpu: u64) -> ! {
    let c = cpu as usize;
    crate::percpu::load_gs(cpu as u32);
    gdt_and_idt_for_ap(c);
    pgtable::enable_protection(cpu::features());
    apic::setup_local_apic();
    apic::setup_timer();
    PCPU[c].apic_id.store(apic::id(), Ordering::Relaxed);
    // The bring-up stack is a size-aligned thread stack: its top is the
    // next multiple of THREAD_SIZE above the stack pointer.
    let top = cpu::read_rsp().next_multiple_of(crate::vmalloc::THREAD_SIZE);
    crate::sched::init(cpu as u32, top);
    ONLINE.fetch_or(1 << c, Ordering::AcqRel);
    AP_ALIVE.store(cpu as u32, Ordering::Release);
    // Interrupts come on in the idle loop, as the old idle loop did.
    crate::sched::idle_loop()
}

fn gdt_and_idt_for_ap(c: usize) {
    match gdt::init_ap() {
        Ok(ist) => *PCPU[c].ist.lock() = Some(ist),
        Err(_) => {
            // Without its own GDT and TSS the AP cannot take an interrupt
            // safely; it stays parked and never counts as online.
            warn!("CPU{c}: no memory for its GDT, TSS and IST stacks; parked");
            cpu::halt_forever();
        }
    }
    traps::init();
}

fn udelay(us: u64) {
    let end = tsc::now_ns() + us * 1000;
    while tsc::now_ns() < end {
        core::hint::spin_loop();
    }
}

/// Starts the boot CPU's timer, brings up every CPU the MADT lists (Linux
/// `smp_init`), then enables interrupts on the boot CPU so it ticks and
/// answers shootdowns.
pub fn smp_init() {
    PCPU[0].apic_id.store(apic::id(), Ordering::Relaxed);
    // Calibrated here, once; the APs reuse the figure.
    apic::setup_timer();
    let Some(madt) = MADT.get() else {
        x86_64::instructions::interrupts::enable();
        return;
    };
    let bsp = apic::id();
    let aps = madt.apic_ids().iter().copied().filter(|&id| id != bsp);
    if madt.nr_cpus > 1 {
        match trampoline_page() {
            Some(page) => boot_aps(page, aps),
            None => warn!("smpboot: no free page below 1 MiB for the trampoline; running on one CPU"),
        }
    }
    if madt.ignored_cpus > 0 {
        warn!("smpboot: {} CPUs beyond NR_CPUS={MAX_CPUS} ignored", madt.ignored_cpus);
    }
    info!("smp: Brought up 1 node, {} CPUs", num_online_cpus());
    x86_64::instructions::interrupts::enable();
}

fn boot_aps(page: u64, aps: impl Iterator<Item = u32>) {
    let pt = pgtable::kernel_pgtable().expect("smp_init before the kernel page tables");
    let pgdat = pt.pgdat();
    let tramp_len = tramp_offset(&raw const ap_trampoline_end);
    let mut gather = TlbGather::new();
    // Identity map so the instruction after "enable paging" is mapped.
    let ident = VirtAddr::expect_canonical(page);
    if let Err(e) = pt.map(ident, PhysAddr::new(page), PAGE_SIZE, PAGE_KERNEL_ROX, PageSize::Size4K, &mut gather) {
        warn!("smpboot: cannot identity-map the trampoline: {e}");
        gather.finish(pgtable::kernel_tlb(), pgdat);
        return;
    }
    gather.finish(pgtable::kernel_tlb(), pgdat);
    let dst = crate::mm::page_address(PhysAddr::new(page).pfn()).as_u64();
    let patch32 = |sym: *const u8, value: u32| {
        // SAFETY: `dst` is the direct-map address of the trampoline page,
        // which memblock keeps for us; each slot lies inside the copied
        // trampoline and is 4 bytes long.
        unsafe { ((dst + tramp_offset(sym) as u64) as *mut u32).write_unaligned(value) }
    };
    let patch64 = |sym: *const u8, value: u64| {
        // SAFETY: as above, for the 8-byte slots.
        unsafe { ((dst + tramp_offset(sym) as u64) as *mut u64).write_unaligned(value) }
    };
    // SAFETY: copies the trampoline's bytes (in .rodata) into our page.
    unsafe { core::ptr::copy_nonoverlapping(&raw const ap_trampoline_start, dst as *mut u8, tramp_len) };
    let base = page as u32;
    patch32(&raw const ap_pm32_target, base + tramp_offset(&raw const ap_pm32) as u32);
    patch32(&raw const ap_base_imm, base);
    patch32(&raw const ap_lm64_target, base + tramp_offset(&raw const ap_lm64) as u32);
    patch32(&raw const ap_gdt_base, base + tramp_offset(&raw const ap_gdt) as u32);
    patch64(&raw const ap_cr3, pt.root().as_u64());
    let nx = if cpu::features().contains(cpu::CpuFeatures::NX) { 1 << 11 } else { 0 };
    patch64(&raw const ap_efer, (1 << 8) | nx);
    patch64(&raw const ap_entry, ap_main as *const () as u64);

    let mut next_cpu = 1usize;
    for apic_id in aps {
        // Only CPUs with a per-CPU unit can run (the MADT may not list the
        // boot CPU, leaving one more AP than units).
        if next_cpu >= nr_cpu_ids() as usize {
            break;
        }
        let stack = match crate::vmalloc::alloc_thread_stack() {
            Ok(stack) => stack.as_u64(),
            Err(e) => {
                warn!("smpboot: no stack for APIC {apic_id}: {e}");
                break;
            }
        };
        // As if a return address had been pushed: the ABI's alignment at a
        // function's first instruction.
        patch64(&raw const ap_stack, stack + crate::vmalloc::THREAD_SIZE - 8);
        patch64(&raw const ap_arg, next_cpu as u64);
        PCPU[next_cpu].apic_id.store(apic_id, Ordering::Relaxed);
        AP_ALIVE.store(u32::MAX, Ordering::Release);
        apic::send_init(apic_id);
        udelay(10_000);
        let vector = (page >> 12) as u8;
        let deadline = |us: u64| {
            let end = tsc::now_ns() + us * 1000;
            while tsc::now_ns() < end {
                if AP_ALIVE.load(Ordering::Acquire) == next_cpu as u32 {
                    return true;
                }
                core::hint::spin_loop();
            }
            false
        };
        apic::send_startup(apic_id, vector);
        let mut alive = deadline(200);
        if !alive {
            apic::send_startup(apic_id, vector);
            alive = deadline(1_000_000);
        }
        if alive {
            info!("smpboot: CPU{next_cpu} (APIC {apic_id}) is up");
            next_cpu += 1;
        } else {
            warn!("smpboot: CPU (APIC {apic_id}) did not come up; continuing without it");
            // Back to wait-for-SIPI, so a late start cannot run on the next
            // AP's stack and number. Its stack stays allocated.
            apic::send_init(apic_id);
        }
    }
    let mut gather = TlbGather::new();
    let _ = pt.unmap(ident, PAGE_SIZE, FreeTables::Yes, &mut gather);
    gather.finish(pgtable::kernel_tlb(), pgdat);
}
