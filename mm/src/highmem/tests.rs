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

#[test]
fn part_page_copies_move_exactly_their_bytes_and_refuse_ranges_past_the_page() {
    let sim = Sim::flat(16 * MIB);
    let pgdat = sim.pgdat(1);
    let page = pgdat.alloc_pages(GFP_KERNEL, 0).unwrap();
    sim.ram.fill(page, 0x11);
    // The three closures' page is the test's, reached otherwise only
    // through `sim.ram`, never by a Rust reference into it.
    // SAFETY: as said.
    let to = |offset, src: &[u8]| unsafe { memcpy_to_page(&pgdat, page, offset, src) };
    // SAFETY: as above.
    let zero = |offset, len| unsafe { memzero_page(&pgdat, page, offset, len) };
    // SAFETY: as above.
    let from = |dst: &mut [u8], offset| unsafe { memcpy_from_page(&pgdat, dst, page, offset) };
    to(4090, b"abcdef").unwrap();
    zero(10, 5).unwrap();
    let mut out = [0u8; 8];
    from(&mut out, 4088).unwrap();
    assert_eq!(&out, b"\x11\x11abcdef");
    let bytes = sim.ram.page(page);
    assert_eq!((bytes[9], &bytes[10..15], bytes[15]), (0x11, &[0u8; 5][..], 0x11));
    assert_eq!(to(4091, b"abcdef"), Err(PageRangeError::OutOfPage));
    assert_eq!(zero(usize::MAX, 2), Err(PageRangeError::OutOfPage));
    assert_eq!(from(&mut out, 4089), Err(PageRangeError::OutOfPage));
    assert_eq!(sim.ram.page(page)[4095], b'f', "a refused copy writes nothing");
}

#[test]
fn memcpy_to_owned_copies_at_the_offset_and_stops_at_the_block_end() {
    let sim = Sim::flat(16 * MIB);
    let pgdat = sim.pgdat(1);
    let mut page = pgdat.alloc_pages_owned(GFP_KERNEL | crate::gfp::Gfp::ZERO, 0).unwrap();
    assert_eq!(memcpy_to_owned(&mut page, 10, &[7; 20]), Ok(20));
    let bytes = sim.ram.page(page.pfn());
    assert!(bytes[..10].iter().all(|&b| b == 0) && bytes[10..30].iter().all(|&b| b == 7));
    assert!(bytes[30..].iter().all(|&b| b == 0), "nothing past the copy");
    let size = PAGE_SIZE as usize;
    assert_eq!(memcpy_to_owned(&mut page, size - 4, &[9; 20]), Ok(4), "clipped at the page's end");
    assert_eq!(memcpy_to_owned(&mut page, size + 1, &[9; 20]), Ok(0), "wholly past it");
    let bytes = sim.ram.page(page.pfn());
    assert!(bytes[size - 4..].iter().all(|&b| b == 9) && bytes[30..size - 4].iter().all(|&b| b == 0));
    page.free().unwrap();
}
