//! Per-CPU memory (Linux `mm/percpu.c`): the dynamic allocator of per-CPU
//! areas ([`chunk`]) and [`PerCpuRef`], the view through which mm's
//! per-CPU data (the buddy allocator's per-cpu page lists) is reached.
//!
//! An object allocated per CPU exists once in every CPU's unit; copies are
//! a fixed stride apart (the unit size), so CPU `n`'s copy is at the
//! first copy's address plus `n` times the stride (Linux `per_cpu_ptr`
//! adds `__per_cpu_offset[n]`). [`PerCpuRef`] is that address arithmetic
//! as a safe, typed, bounds-checked view; host tests build one over an
//! ordinary slice (stride = the element size).

mod chunk;
pub use chunk::*;

use core::marker::PhantomData;
use core::ptr::NonNull;

/// Per-CPU memory on demand, for mm structures made at run time (SLUB's
/// per-CPU slabs; Linux `alloc_percpu`/`free_percpu`). The kernel backs it
/// with its per-CPU allocator, host tests with the heap.
///
/// # Safety
/// `alloc(size, align, nr_cpus)` must return `(base, stride)` such that for
/// every `n < nr_cpus`, `base + n * stride` starts `size` zeroed, writable
/// bytes aligned to `align`, disjoint from each other and from everything
/// else, until `free(base)`.
pub unsafe trait PercpuAlloc: Sync {
    /// `size` bytes per CPU for `nr_cpus` CPUs, or `None`.
    fn alloc(&self, size: usize, align: usize, nr_cpus: usize) -> Option<(NonNull<u8>, usize)>;

    /// Frees an allocation.
    ///
    /// # Safety
    /// `base` came from [`PercpuAlloc::alloc`] and is not used afterwards.
    unsafe fn free(&self, base: NonNull<u8>);
}

/// One `T` per CPU, `stride` bytes apart (Linux: a `__percpu` pointer and
/// `per_cpu_ptr`).
pub struct PerCpuRef<'a, T> {
    base: NonNull<T>,
    stride: usize,
    nr: usize,
    _life: PhantomData<&'a T>,
}

impl<T> Clone for PerCpuRef<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for PerCpuRef<'_, T> {}

// SAFETY: a PerCpuRef only hands out shared references to the `T`s, so it
// may cross threads exactly when `&T` may, i.e. when `T: Sync`.
unsafe impl<T: Sync> Send for PerCpuRef<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for PerCpuRef<'_, T> {}

impl<'a, T> PerCpuRef<'a, T> {
    /// One element per CPU, CPU `n` at `slice[n]`.
    pub fn from_slice(slice: &'a [T]) -> Self {
        PerCpuRef {
            base: NonNull::from(slice).cast(),
            stride: core::mem::size_of::<T>(),
            nr: slice.len(),
            _life: PhantomData,
        }
    }

    /// CPU `n`'s `T` at `base + n * stride`, for `n < nr`.
    ///
    /// # Safety
    /// For every `n < nr`, `base + n * stride` must be a properly aligned,
    /// initialised `T` that lives for `'a` and is only accessed through
    /// shared references (or atomics/locks inside `T`) meanwhile.
    pub unsafe fn from_raw(base: NonNull<T>, stride: usize, nr: usize) -> Self {
        PerCpuRef { base, stride, nr, _life: PhantomData }
    }

    /// CPU 0's `T` (the address [`PercpuAlloc::free`] takes back).
    pub fn as_non_null(&self) -> NonNull<T> {
        self.base
    }

    /// Number of CPUs covered.
    pub fn len(&self) -> usize {
        self.nr
    }

    /// Whether no CPU is covered.
    pub fn is_empty(&self) -> bool {
        self.nr == 0
    }

    /// CPU `cpu`'s `T`.
    pub fn get(&self, cpu: usize) -> Option<&'a T> {
        (cpu < self.nr).then(|| {
            // SAFETY: `cpu < nr`, so this is one of the `T`s the
            // constructor vouched for (a slice element, or the from_raw
            // contract), valid and shared for 'a.
            unsafe { &*self.base.as_ptr().byte_add(cpu * self.stride) }
        })
    }

    /// Every CPU's `T`, in CPU order.
    pub fn iter(&self) -> impl Iterator<Item = &'a T> + '_ {
        (0..self.nr).filter_map(|cpu| self.get(cpu))
    }
}

impl<'a, T> core::ops::Index<usize> for PerCpuRef<'a, T> {
    type Output = T;

    /// # Panics
    /// If `cpu` is not below [`PerCpuRef::len`].
    fn index(&self, cpu: usize) -> &T {
        self.get(cpu).unwrap_or_else(|| panic!("per-CPU index {cpu} out of {} CPUs", self.nr))
    }
}

#[cfg(test)]
mod view_tests {
    use super::PerCpuRef;

    #[test]
    fn views_over_a_slice_and_over_strided_memory_agree() {
        let values = [10u64, 11, 12, 13];
        let view = PerCpuRef::from_slice(&values);
        assert_eq!(view.iter().copied().collect::<Vec<_>>(), values);
        assert_eq!(view.get(4), None);
        // Four "units" of 64 bytes, the value at offset 8 of each.
        let mut units = [[0u64; 8]; 4];
        for (cpu, unit) in units.iter_mut().enumerate() {
            unit[1] = 100 + cpu as u64;
        }
        let base = core::ptr::NonNull::from(&units[0][1]);
        // SAFETY: every unit's element 1 is an initialised u64, 64 bytes
        // apart, alive for the test and only read.
        let view = unsafe { PerCpuRef::from_raw(base, 64, 4) };
        assert_eq!(view.iter().copied().collect::<Vec<_>>(), [100, 101, 102, 103]);
        assert_eq!(view[3], 103);
    }
}
