//! `arch_prctl` codes: Linux's `arch/x86/include/uapi/asm/prctl.h`.
//!
//! musl's startup sets its thread pointer with `arch_prctl(ARCH_SET_FS,
//! tp)`; the rest are rarer.

/// `ARCH_SET_GS`: set the user GS base.
pub const ARCH_SET_GS: i32 = 0x1001;
/// `ARCH_SET_FS`: set the user FS base (the TLS pointer on x86_64).
pub const ARCH_SET_FS: i32 = 0x1002;
/// `ARCH_GET_FS`: store the FS base at the address argument.
pub const ARCH_GET_FS: i32 = 0x1003;
/// `ARCH_GET_GS`: store the GS base at the address argument.
pub const ARCH_GET_GS: i32 = 0x1004;
/// `ARCH_GET_CPUID`: whether `cpuid` is allowed (not faulting).
pub const ARCH_GET_CPUID: i32 = 0x1011;
/// `ARCH_SET_CPUID`: allow or fault `cpuid`.
pub const ARCH_SET_CPUID: i32 = 0x1012;
/// `ARCH_GET_XCOMP_SUPP`: the XSAVE features the kernel supports.
pub const ARCH_GET_XCOMP_SUPP: i32 = 0x1021;
/// `ARCH_GET_XCOMP_PERM`: the XSAVE features the process may use.
pub const ARCH_GET_XCOMP_PERM: i32 = 0x1022;
/// `ARCH_REQ_XCOMP_PERM`: request permission for a dynamic XSAVE feature
/// (AMX).
pub const ARCH_REQ_XCOMP_PERM: i32 = 0x1023;
/// `ARCH_GET_XCOMP_GUEST_PERM`: `ARCH_GET_XCOMP_PERM` for KVM guests.
pub const ARCH_GET_XCOMP_GUEST_PERM: i32 = 0x1024;
/// `ARCH_REQ_XCOMP_GUEST_PERM`: `ARCH_REQ_XCOMP_PERM` for KVM guests.
pub const ARCH_REQ_XCOMP_GUEST_PERM: i32 = 0x1025;
/// `ARCH_MAP_VDSO_X32`: map the x32 vDSO at an address.
pub const ARCH_MAP_VDSO_X32: i32 = 0x2001;
/// `ARCH_MAP_VDSO_32`: map the 32-bit vDSO at an address.
pub const ARCH_MAP_VDSO_32: i32 = 0x2002;
/// `ARCH_MAP_VDSO_64`: map the 64-bit vDSO at an address.
pub const ARCH_MAP_VDSO_64: i32 = 0x2003;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_headers::assert_defines_match;

    /// Every constant against the host's `<asm/prctl.h>` and the headers they include.
    #[test]
    fn constants_match_linux_headers() {
        assert_defines_match!(&["asm/prctl.h"];
            ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS, ARCH_GET_CPUID, ARCH_SET_CPUID,
            ARCH_GET_XCOMP_SUPP, ARCH_GET_XCOMP_PERM, ARCH_REQ_XCOMP_PERM, ARCH_GET_XCOMP_GUEST_PERM,
            ARCH_REQ_XCOMP_GUEST_PERM, ARCH_MAP_VDSO_X32, ARCH_MAP_VDSO_32, ARCH_MAP_VDSO_64,
        );
    }
}
