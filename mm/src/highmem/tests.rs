use super::*;
use crate::gfp::GFP_KERNEL;
use crate::sim::Sim;

const MIB: u64 = 1 << 20;

#[test]
fn copy_page_copies_every_byte_and_clear_page_zeroes_them() {
    let sim = Sim::flat(16 * MIB);
    let pgdat = sim.pgdat(1);
    let (src, dst) = (pgdat.alloc_pages(GFP_KERNEL, 0).unwrap(), pgdat.alloc_pages(GFP_KERNEL, 0).unwrap());
    sim.ram.fill(src, 0x5a);
    sim.ram.fill(dst, 0xee);
    // SAFETY: both pages are the test's, reached only through `sim.ram`.
    unsafe { copy_page(&pgdat, dst, src) }.unwrap();
    assert!(sim.ram.page(dst).iter().all(|&b| b == 0x5a));
    // SAFETY: as above.
    unsafe { clear_page(&pgdat, dst) }.unwrap();
    assert!(sim.ram.page(dst).iter().all(|&b| b == 0));
    assert!(sim.ram.page(src).iter().all(|&b| b == 0x5a), "the source is left as it was");
}

#[test]
fn a_frame_outside_the_direct_map_is_refused_and_nothing_is_written() {
    let sim = Sim::flat(16 * MIB);
    let pgdat = sim.pgdat(1);
    let page = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    sim.ram.fill(page, 0x11);
    let outside = Pfn::new(1 << 30);
    // SAFETY: the test's page; the other frame is not memory at all.
    assert_eq!(unsafe { copy_page(&pgdat, page, outside) }, Err(NotDirectMapped(outside)));
    // SAFETY: as above.
    assert_eq!(unsafe { copy_page(&pgdat, outside, page) }, Err(NotDirectMapped(outside)));
    // SAFETY: not memory: refused before any write.
    assert_eq!(unsafe { clear_page(&pgdat, outside) }, Err(NotDirectMapped(outside)));
    assert!(sim.ram.page(page).iter().all(|&b| b == 0x11));
}
