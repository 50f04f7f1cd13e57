//! What the page cache's index costs: loads and stores on an XArray of 64Ki
//! entries (a 256 MiB file fully cached), sequential as readahead and
//! writeback walk it, random as faults on a mapped file hit it.

use alloc::alloc::{alloc, dealloc};
use core::alloc::Layout;
use core::hint::black_box;
use core::ptr::NonNull;

use kernel::kbench::Bencher;
use ktest_macros::kbench;
use mm::slab_common::ObjCache;
use mm::xarray::{XArray, XaNode};

/// Entries in the benchmark array.
const ENTRIES: u64 = 1 << 16;

/// Nodes from the kernel heap (kmalloc underneath): the page cache will
/// have a slab cache of its own, the tree's cost is the same.
struct HeapNodes;

const NODE: Layout = Layout::new::<XaNode<u64>>();

// SAFETY: each object is a fresh heap block with `XaNode<u64>`'s layout,
// the caller's until `free` gives it back with that layout.
unsafe impl ObjCache<XaNode<u64>> for HeapNodes {
    fn alloc(&self) -> Option<NonNull<XaNode<u64>>> {
        // SAFETY: the layout's size is not zero.
        NonNull::new(unsafe { alloc(NODE) }.cast())
    }

    unsafe fn free(&self, obj: NonNull<XaNode<u64>>) {
        // SAFETY: `obj` came from `alloc` above with this layout (the
        // trait's contract) and is not used again.
        unsafe { dealloc(obj.as_ptr().cast(), NODE) }
    }
}

/// An array with an entry at every index below [`ENTRIES`], or `None`
/// (reported) if the heap ran out.
fn populated() -> Option<XArray<u64, HeapNodes>> {
    let mut xa = XArray::new(HeapNodes);
    for index in 0..ENTRIES {
        if let Err(e) = xa.store(index, index) {
            kernel::kprintln!("kbench: FAILED xarray: {e}");
            return None;
        }
    }
    Some(xa)
}

/// The next of a xorshift64 sequence: random indices without a table.
fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// `xa_load` of consecutive indices.
#[kbench]
fn xarray_load_sequential_64k(b: &mut Bencher<'_>) {
    let Some(xa) = populated() else { return };
    let mut index = 0;
    b.iter(|| {
        index = (index + 1) % ENTRIES;
        xa.load(black_box(index))
    });
}

/// `xa_load` of random indices.
#[kbench]
fn xarray_load_random_64k(b: &mut Bencher<'_>) {
    let Some(xa) = populated() else { return };
    let mut x = 0x9e37_79b9_7f4a_7c15;
    b.iter(|| xa.load(black_box(xorshift(&mut x) % ENTRIES)));
}

/// `xa_store` replacing the entry at a random index (no allocation).
#[kbench]
fn xarray_store_random_64k(b: &mut Bencher<'_>) {
    let Some(mut xa) = populated() else { return };
    let mut x = 0x9e37_79b9_7f4a_7c15;
    b.iter(|| {
        let index = xorshift(&mut x) % ENTRIES;
        xa.store(black_box(index), index)
    });
}

/// `xa_store` of a new entry just past the others and its `xa_erase`:
/// two nodes (a leaf and its parent) allocated and freed each time.
#[kbench]
fn xarray_store_erase_new_leaf(b: &mut Bencher<'_>) {
    let Some(mut xa) = populated() else { return };
    b.iter(|| {
        let stored = xa.store(black_box(ENTRIES), 0);
        xa.erase(black_box(ENTRIES));
        stored
    });
}
