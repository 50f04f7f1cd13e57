//! Tables the linker gathers from every object file: descriptors placed in
//! a named link section by a macro or an asm directive, bounded by start and
//! stop symbols in `kernel/linker.ld` (Linux does the same for initcalls,
//! `__ex_table` and kunit suites). Used by `ktest`, `kbench` and `extable`.

use core::fmt;

/// The array of `T` that the linker script gathers between two symbols.
///
/// # Safety
/// Everything between `start` and `end` must be `T` values placed there by
/// the linker (one link section that holds only `T` statics, so all elements
/// have the same size and alignment and there is no padding between them),
/// and `start` must be aligned for `T`.
pub unsafe fn linker_array<T>(start: *const u8, end: *const u8) -> &'static [T] {
    let len = (end as usize - start as usize) / core::mem::size_of::<T>();
    // SAFETY: per the contract, `len` initialised, aligned `T`s start at
    // `start` and live in the image for the kernel's lifetime.
    unsafe { core::slice::from_raw_parts(start.cast::<T>(), len) }
}

/// A registered function's name as reports print it: `suite::function`,
/// where the suite is its `module_path!()` without the crate name.
#[derive(Clone, Copy, Debug)]
pub struct QualifiedName {
    /// `module_path!()` at the definition.
    pub module: &'static str,
    /// The function name.
    pub name: &'static str,
}

impl QualifiedName {
    fn suite(&self) -> &'static str {
        self.module.split_once("::").map_or("", |(_, rest)| rest)
    }

    /// Whether `full` is this name, `suite::function`.
    pub fn is(&self, full: &str) -> bool {
        match self.suite() {
            "" => full == self.name,
            suite => full.strip_prefix(suite).and_then(|r| r.strip_prefix("::")) == Some(self.name),
        }
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.suite() {
            "" => f.write_str(self.name),
            suite => write!(f, "{suite}::{}", self.name),
        }
    }
}
