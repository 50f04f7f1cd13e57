//! CPU identification and small privileged helpers (Linux
//! `arch/x86/kernel/cpu/common.c`, `asm/special_insns.h`).

use core::arch::x86_64::{__cpuid, __cpuid_count};
use core::fmt;

use bitflags::bitflags;

bitflags! {
    /// CPU features the memory manager cares about (Linux `X86_FEATURE_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct CpuFeatures: u32 {
        /// No-execute page protection (`X86_FEATURE_NX`).
        const NX = 1 << 0;
        /// 1 GiB pages (`X86_FEATURE_GBPAGES`).
        const GBPAGES = 1 << 1;
        /// Supervisor-mode execution prevention (`X86_FEATURE_SMEP`).
        const SMEP = 1 << 2;
        /// Supervisor-mode access prevention (`X86_FEATURE_SMAP`).
        const SMAP = 1 << 3;
        /// Process-context identifiers (`X86_FEATURE_PCID`).
        const PCID = 1 << 4;
        /// Global pages (`X86_FEATURE_PGE`).
        const PGE = 1 << 5;
        /// x2APIC mode (`X86_FEATURE_X2APIC`).
        const X2APIC = 1 << 6;
        /// TSC runs at a constant rate (`X86_FEATURE_CONSTANT_TSC`/invariant).
        const INVARIANT_TSC = 1 << 7;
        /// RDTSCP instruction (`X86_FEATURE_RDTSCP`).
        const RDTSCP = 1 << 8;
        /// Running under a hypervisor (`X86_FEATURE_HYPERVISOR`).
        const HYPERVISOR = 1 << 9;
        /// CMPXCHG16B, which SLUB's lockless fast path needs
        /// (`X86_FEATURE_CX16`, CPUID.01H:ECX bit 13).
        const CX16 = 1 << 10;
    }
}

/// Reads the features of the executing CPU.
pub fn features() -> CpuFeatures {
    let mut f = CpuFeatures::empty();
    let leaf1 = __cpuid(1);
    if leaf1.ecx & (1 << 13) != 0 {
        f |= CpuFeatures::CX16;
    }
    if leaf1.ecx & (1 << 17) != 0 {
        f |= CpuFeatures::PCID;
    }
    if leaf1.ecx & (1 << 21) != 0 {
        f |= CpuFeatures::X2APIC;
    }
    if leaf1.ecx & (1 << 31) != 0 {
        f |= CpuFeatures::HYPERVISOR;
    }
    if leaf1.edx & (1 << 13) != 0 {
        f |= CpuFeatures::PGE;
    }
    let max_leaf = __cpuid(0).eax;
    if max_leaf >= 7 {
        let leaf7 = __cpuid_count(7, 0);
        if leaf7.ebx & (1 << 7) != 0 {
            f |= CpuFeatures::SMEP;
        }
        if leaf7.ebx & (1 << 20) != 0 {
            f |= CpuFeatures::SMAP;
        }
    }
    let max_ext = __cpuid(0x8000_0000).eax;
    if max_ext >= 0x8000_0001 {
        let ext = __cpuid(0x8000_0001);
        if ext.edx & (1 << 20) != 0 {
            f |= CpuFeatures::NX;
        }
        if ext.edx & (1 << 26) != 0 {
            f |= CpuFeatures::GBPAGES;
        }
        if ext.edx & (1 << 27) != 0 {
            f |= CpuFeatures::RDTSCP;
        }
    }
    if max_ext >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0 {
        f |= CpuFeatures::INVARIANT_TSC;
    }
    f
}

/// The CPU's vendor string ("GenuineIntel", "AuthenticAMD", "TCGTCGTCGTCG"...).
pub struct Vendor([u8; 12]);

impl fmt::Display for Vendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(core::str::from_utf8(&self.0).unwrap_or("?"))
    }
}

/// Reads the vendor string.
pub fn vendor() -> Vendor {
    let r = __cpuid(0);
    let mut v = [0u8; 12];
    v[0..4].copy_from_slice(&r.ebx.to_le_bytes());
    v[4..8].copy_from_slice(&r.edx.to_le_bytes());
    v[8..12].copy_from_slice(&r.ecx.to_le_bytes());
    Vendor(v)
}

/// The executing CPU's initial APIC id (CPUID leaf 1, EBX[31:24]).
pub fn initial_apic_id() -> u32 {
    __cpuid(1).ebx >> 24
}

/// Reads CR2, the linear address of the last page fault.
pub fn read_cr2() -> u64 {
    x86_64::registers::control::Cr2::read_raw()
}

/// Reads CR3's physical page-table base (flags and PCID masked off).
pub fn read_cr3_phys() -> u64 {
    let (frame, _) = x86_64::registers::control::Cr3::read();
    frame.start_address().as_u64()
}

/// Invalidates the TLB entry for `addr` on this CPU.
pub fn invlpg(addr: u64) {
    // SAFETY: INVLPG only drops a cached translation; the next access walks
    // the page tables again. It cannot break memory safety.
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) addr, options(nostack, preserves_flags)) };
}

/// Reads the current stack pointer.
#[inline(always)]
pub fn read_rsp() -> u64 {
    let rsp: u64;
    // SAFETY: reading RSP into a register has no side effects.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags)) };
    rsp
}

/// Reads the current frame pointer.
#[inline(always)]
pub fn read_rbp() -> u64 {
    let rbp: u64;
    // SAFETY: reading RBP into a register has no side effects.
    unsafe { core::arch::asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack, preserves_flags)) };
    rbp
}

/// Disables interrupts and halts this CPU for good.
pub fn halt_forever() -> ! {
    x86_64::instructions::interrupts::disable();
    loop {
        x86_64::instructions::hlt();
    }
}
