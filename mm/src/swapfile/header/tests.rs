//! The header parser against util-linux `mkswap`'s output (fixtures made by
//! `../testdata/make-fixtures.sh`), each kind of corruption, and our
//! writer against the same bytes. `host_tools_agree_with_our_mkswap` runs
//! the host's mkswap, blkid, swaplabel and file (`--ignored`).

use super::*;
use crate::arch::x86_64::X86PteFormat;
use crate::swapfile::max_swapfile_size;

/// A fixture: the start of an image util-linux made, and how it was made.
struct Fixture {
    bytes: &'static [u8],
    device_pages: u64,
    uuid: &'static str,
    label: &'static [u8],
}

const VDB_SWAP: Fixture = Fixture {
    bytes: include_bytes!("../testdata/mkswap-1m-vdb-swap.page"),
    device_pages: 256,
    uuid: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    label: b"vdb-swap",
};
const NO_LABEL: Fixture = Fixture {
    bytes: include_bytes!("../testdata/mkswap-40k-nolabel.page"),
    device_pages: 10,
    uuid: "01234567-89ab-cdef-0123-456789abcdef",
    label: b"",
};
const ONE_GIB: Fixture = Fixture {
    bytes: include_bytes!("../testdata/mkswap-1g-swap1.page"),
    device_pages: 262_144,
    uuid: "c0ffee00-dead-beef-0000-000000000001",
    label: b"swap1",
};
/// `mkswap -L 0123456789abcdefXYZ`: truncated to 15 bytes and a NUL.
const LONG_LABEL: Fixture = Fixture {
    bytes: include_bytes!("../testdata/mkswap-64k-longlabel.page"),
    device_pages: 16,
    uuid: "11111111-2222-3333-4444-555555555555",
    label: b"0123456789abcde",
};
/// `mkswap -p 16384` on 1 MiB: the first 16 KiB.
const PAGES_16K: &[u8] = include_bytes!("../testdata/mkswap-1m-16k-pages.head");

const FIXTURES: [&Fixture; 4] = [&VDB_SWAP, &NO_LABEL, &ONE_GIB, &LONG_LABEL];

fn x86_limit() -> u64 {
    max_swapfile_size(&X86PteFormat::new(true))
}

fn page_of(fixture: &Fixture) -> [u8; PAGE] {
    let mut page = [0; PAGE];
    page.copy_from_slice(fixture.bytes);
    page
}

fn parse(page: &[u8], device_pages: u64) -> Result<SwapHeader<'_>, SwapHeaderError> {
    SwapHeader::parse(page, device_pages, x86_limit())
}

fn uuid_of(text: &str) -> SwapUuid {
    let hex: Vec<u8> = text.bytes().filter(|&b| b != b'-').collect();
    let mut uuid = [0; 16];
    for (byte, pair) in uuid.iter_mut().zip(hex.chunks(2)) {
        *byte = u8::from_str_radix(core::str::from_utf8(pair).unwrap(), 16).unwrap();
    }
    SwapUuid(uuid)
}

/// Sets the bad-page list of a header in native byte order.
fn set_badpages(page: &mut [u8; PAGE], badpages: &[u32]) {
    write_u32(page, NR_BADPAGES_OFFSET, badpages.len() as u32);
    for (i, &bad) in badpages.iter().enumerate() {
        write_u32(page, BADPAGES_OFFSET + 4 * i, bad);
    }
}

#[test]
fn the_layout_is_linux_union_swap_header() {
    assert_eq!(BADPAGES_OFFSET, 1536);
    assert_eq!(SIGNATURE_OFFSET, 4086);
    assert_eq!(MAX_SWAP_BADPAGES, 637, "(4086 - 1536) / 4, util-linux MAX_BADPAGES too");
}

#[test]
fn x86_swap_entries_reach_2_to_the_50_pages() {
    assert_eq!(x86_limit(), 1 << 50);
}

#[test]
fn mkswap_images_parse_with_their_uuid_label_and_size() {
    for fixture in FIXTURES {
        let header = parse(fixture.bytes, fixture.device_pages).unwrap();
        let last_page = fixture.device_pages as u32 - 1;
        assert_eq!(header.last_page(), last_page, "{}", fixture.uuid);
        assert_eq!(header.maxpages(), last_page + 1);
        assert_eq!(header.pages(), last_page, "all but the header page");
        assert_eq!(header.uuid().to_string(), fixture.uuid);
        assert_eq!(header.label(), fixture.label);
        assert_eq!(header.nr_badpages(), 0);
        assert_eq!(header.badpages().count(), 0);
        assert!(!header.byte_swapped() && !header.truncated());
    }
}

#[test]
fn our_mkswap_writes_the_bytes_util_linux_mkswap_wrote() {
    for fixture in [&VDB_SWAP, &NO_LABEL, &ONE_GIB] {
        let mut page = [0; PAGE];
        let last_page = mkswap(&mut page, fixture.device_pages, uuid_of(fixture.uuid), fixture.label).unwrap();
        assert_eq!(u64::from(last_page), fixture.device_pages - 1);
        assert!(page[..] == fixture.bytes[..], "{}: our header differs from mkswap's", fixture.uuid);
        assert_eq!(parse(&page, fixture.device_pages).unwrap().label(), fixture.label);
    }
}

#[test]
fn mkswap_rewrites_the_header_but_leaves_the_bootbits() {
    let mut page = [0xa5; PAGE];
    mkswap(&mut page, VDB_SWAP.device_pages, uuid_of(VDB_SWAP.uuid), VDB_SWAP.label).unwrap();
    assert!(page[..BOOTBITS_SIZE].iter().all(|&b| b == 0xa5));
    assert!(page[BOOTBITS_SIZE..] == VDB_SWAP.bytes[BOOTBITS_SIZE..]);
}

#[test]
fn mkswap_refuses_what_util_linux_refuses() {
    let mut page = [0; PAGE];
    let uuid = uuid_of(VDB_SWAP.uuid);
    assert_eq!(mkswap(&mut page, MIN_GOODPAGES - 1, uuid, b""), Err(MkswapError::TooSmall { device_pages: 9 }));
    assert_eq!(mkswap(&mut page, 256, uuid, b"0123456789abcdef"), Err(MkswapError::LabelTooLong { len: 16 }));
    assert_eq!(mkswap(&mut page, 256, uuid, b"a\0b"), Err(MkswapError::LabelNul));
    assert!(page.iter().all(|&b| b == 0), "a refusal writes nothing");
    assert_eq!(
        MkswapError::TooSmall { device_pages: 9 }.to_string(),
        "swap area needs to be at least 40 KiB, the device has 36 KiB"
    );
    assert_eq!(mkswap(&mut page, MIN_GOODPAGES, uuid, b"0123456789abcde"), Ok(9));
    assert_eq!(parse(&page, MIN_GOODPAGES).unwrap().label(), b"0123456789abcde");
}

#[test]
fn a_label_filling_all_16_bytes_reads_whole() {
    // swaplabel writes 16 bytes without a NUL.
    let mut page = page_of(&VDB_SWAP);
    page[VOLUME_OFFSET..VOLUME_OFFSET + 16].copy_from_slice(b"0123456789abcdef");
    assert_eq!(parse(&page, 256).unwrap().label(), b"0123456789abcdef");
}

#[test]
fn a_device_past_2_to_the_32_pages_is_described_up_to_there() {
    let mut page = [0; PAGE];
    assert_eq!(mkswap(&mut page, 1 << 33, SwapUuid([7; 16]), b"huge"), Ok(u32::MAX));
    let header = parse(&page, 1 << 33).unwrap();
    // Linux: maxpages = last_page + 1 = 2^32 does not fit `si->max`.
    assert_eq!(header.maxpages(), u32::MAX);
    assert!(header.truncated());
}

#[test]
fn an_area_past_what_swap_entries_reach_is_truncated() {
    let header = SwapHeader::parse(VDB_SWAP.bytes, 256, 100).unwrap();
    assert_eq!((header.last_page(), header.maxpages(), header.pages()), (255, 100, 99));
    assert!(header.truncated());
    let header = SwapHeader::parse(VDB_SWAP.bytes, 256, 256).unwrap();
    assert_eq!(header.maxpages(), 256);
    assert!(!header.truncated());
}

#[test]
fn a_header_in_the_other_byte_order_is_read_swapped() {
    let mut page = page_of(&VDB_SWAP);
    set_badpages(&mut page, &[7, 200]);
    for offset in [VERSION_OFFSET, LAST_PAGE_OFFSET, NR_BADPAGES_OFFSET, BADPAGES_OFFSET, BADPAGES_OFFSET + 4] {
        page[offset..offset + 4].reverse();
    }
    let header = parse(&page, 256).unwrap();
    assert!(header.byte_swapped());
    assert_eq!((header.last_page(), header.nr_badpages(), header.pages()), (255, 2, 253));
    assert_eq!(header.badpages().collect::<Vec<_>>(), [7, 200]);
    assert_eq!(header.uuid().to_string(), VDB_SWAP.uuid);
}

#[test]
fn bad_pages_are_listed_and_not_counted_as_usable() {
    let mut page = page_of(&VDB_SWAP);
    set_badpages(&mut page, &[5, 255, 5, 1]);
    let header = parse(&page, 256).unwrap();
    assert_eq!(header.badpages().collect::<Vec<_>>(), [5, 255, 5, 1]);
    assert_eq!(header.pages(), 256 - 1 - 3, "page 5 is listed twice but is one page");
    // Pages past a truncated area are not counted.
    let header = SwapHeader::parse(&page, 256, 200).unwrap();
    assert_eq!(header.pages(), 200 - 1 - 2);
}

#[test]
fn a_page_without_the_signature_is_not_a_swap_area() {
    let mut page = page_of(&VDB_SWAP);
    page[SIGNATURE_OFFSET..].copy_from_slice(b"SWAPSPACE3");
    let err = parse(&page, 256).unwrap_err();
    assert_eq!(err, SwapHeaderError::NoSignature);
    assert_eq!(err.to_string(), "not a swap area: no SWAPSPACE2 signature");
    assert_eq!(parse(&[0; PAGE], 256).unwrap_err(), SwapHeaderError::NoSignature);
}

#[test]
fn a_version_0_area_is_named() {
    let mut page = page_of(&VDB_SWAP);
    page[SIGNATURE_OFFSET..].copy_from_slice(b"SWAP-SPACE");
    let err = parse(&page, 256).unwrap_err();
    assert_eq!(err, SwapHeaderError::Version0);
    assert!(err.to_string().contains("version 0"));
}

#[test]
fn a_header_for_16k_pages_is_named_as_such() {
    let err = parse(PAGES_16K, 256).unwrap_err();
    assert_eq!(err, SwapHeaderError::PageSize { page_size: 16384 });
    assert_eq!(
        err.to_string(),
        "swap area made for 16384-byte pages (SWAPSPACE2 at byte 16374), this kernel's pages are 4096 bytes"
    );
    // Its first page alone holds no signature.
    assert_eq!(parse(&PAGES_16K[..PAGE], 256).unwrap_err(), SwapHeaderError::NoSignature);
}

#[test]
fn an_area_smaller_than_a_page_is_refused() {
    assert_eq!(parse(&VDB_SWAP.bytes[..1024], 256).unwrap_err(), SwapHeaderError::TooShort { len: 1024 });
}

#[test]
fn another_version_is_refused_in_either_byte_order() {
    let mut page = page_of(&VDB_SWAP);
    write_u32(&mut page, VERSION_OFFSET, 2);
    let err = parse(&page, 256).unwrap_err();
    assert_eq!(err, SwapHeaderError::Version { version: 2 });
    assert_eq!(err.to_string(), "swap area version 2 unsupported");
    write_u32(&mut page, VERSION_OFFSET, 2u32.swap_bytes());
    assert_eq!(parse(&page, 256).unwrap_err(), SwapHeaderError::Version { version: 0x0200_0000 });
}

#[test]
fn last_page_0_is_an_empty_area() {
    let mut page = page_of(&VDB_SWAP);
    write_u32(&mut page, LAST_PAGE_OFFSET, 0);
    assert_eq!(parse(&page, 256).unwrap_err(), SwapHeaderError::Empty);
}

#[test]
fn a_header_larger_than_its_device_is_refused() {
    let err = parse(VDB_SWAP.bytes, 255).unwrap_err();
    assert_eq!(err, SwapHeaderError::Shorter { maxpages: 256, device_pages: 255 });
    assert_eq!(err.to_string(), "swap area shorter than its header says: 256 pages in the header, 255 on the device");
    // A larger device is fine: the header says how much is swap.
    assert_eq!(parse(VDB_SWAP.bytes, 1 << 20).unwrap().maxpages(), 256);
}

#[test]
fn more_bad_pages_than_the_list_holds_is_refused() {
    let mut page = page_of(&VDB_SWAP);
    write_u32(&mut page, NR_BADPAGES_OFFSET, MAX_SWAP_BADPAGES + 1);
    assert_eq!(parse(&page, 256).unwrap_err(), SwapHeaderError::TooManyBadPages { nr_badpages: 638 });
    // A full list is fine (its entries must then be valid pages).
    let mut page = page_of(&ONE_GIB);
    let full: Vec<u32> = (1..=MAX_SWAP_BADPAGES).collect();
    set_badpages(&mut page, &full);
    assert_eq!(parse(&page, ONE_GIB.device_pages).unwrap().pages(), 262_143 - 637);
}

#[test]
fn a_bad_page_outside_the_area_is_refused() {
    let mut page = page_of(&VDB_SWAP);
    set_badpages(&mut page, &[3, 0]);
    assert_eq!(parse(&page, 256).unwrap_err(), SwapHeaderError::BadPage { index: 1, page: 0, last_page: 255 });
    set_badpages(&mut page, &[256]);
    let err = parse(&page, 256).unwrap_err();
    assert_eq!(err, SwapHeaderError::BadPage { index: 0, page: 256, last_page: 255 });
    assert_eq!(err.to_string(), "swap header bad page 0 is page 256, outside the area's pages 1..=255");
}

#[test]
fn an_area_of_only_bad_pages_is_empty() {
    let mut page = page_of(&NO_LABEL);
    set_badpages(&mut page, &[1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(parse(&page, 10).unwrap_err(), SwapHeaderError::NoGoodPages);
    set_badpages(&mut page, &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(parse(&page, 10).unwrap().pages(), 1);
}

/// Runs a host program, failing the test with a clear message if it is
/// missing or fails.
fn run(program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (util-linux/file needed for this test): {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Our mkswap against the host's for sizes and labels of every kind, and
/// our header as blkid, swaplabel and file read it.
#[test]
#[ignore = "needs util-linux mkswap, blkid, swaplabel and file on the host; run with --ignored"]
fn host_tools_agree_with_our_mkswap() {
    let dir = std::env::temp_dir().join(format!("mm-swapfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let image = dir.join("swap.img");
    let image = image.to_str().unwrap();
    let cases: [(u64, &str, &str); 5] = [
        (10, "00000000-0000-0000-0000-000000000001", ""),
        (11, "ffffffff-ffff-ffff-ffff-ffffffffffff", "x"),
        (4097, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "vdb-swap"),
        (262_144, "c0ffee00-dead-beef-0000-000000000001", "0123456789abcde"),
        (1 << 28, "12345678-9abc-def0-1234-56789abcdef0", "one-TiB"),
    ];
    for (pages, uuid, label) in cases {
        let file = std::fs::File::create(image).unwrap();
        file.set_len(pages * PAGE_SIZE).unwrap();
        drop(file);
        let mut args = vec!["-q", "-U", uuid];
        if !label.is_empty() {
            args.extend(["-L", label]);
        }
        args.push(image);
        run("mkswap", &args);
        let mut theirs = [0; PAGE];
        std::os::unix::fs::FileExt::read_exact_at(&std::fs::File::open(image).unwrap(), &mut theirs, 0).unwrap();

        let mut ours = [0; PAGE];
        mkswap(&mut ours, pages, uuid_of(uuid), label.as_bytes()).unwrap();
        assert!(ours == theirs, "{pages} pages, {label:?}: differs from mkswap");

        // Our page on a fresh image, as the host tools see it.
        let file = std::fs::File::create(image).unwrap();
        file.set_len(pages * PAGE_SIZE).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &ours, 0).unwrap();
        drop(file);
        let blkid = run("blkid", &["-p", "-o", "export", image]);
        assert!(blkid.contains("TYPE=swap\n") && blkid.contains("VERSION=1\n"), "{blkid}");
        assert!(blkid.contains(&format!("UUID={uuid}\n")), "{blkid}");
        assert_eq!(blkid.contains(&format!("LABEL={label}\n")), !label.is_empty(), "{blkid}");
        let swaplabel = run("swaplabel", &[image]);
        assert!(swaplabel.contains(&format!("UUID:  {uuid}")), "{swaplabel}");
        let file = run("file", &["-b", image]);
        let expect = format!("Linux swap file, 4k page size, little endian, version 1, size {} pages", pages - 1);
        assert!(file.starts_with(&expect), "{file}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_header_debugs_as_its_fields_not_its_page() {
    let header = parse(VDB_SWAP.bytes, 256).unwrap();
    assert_eq!(
        format!("{header:?}"),
        "SwapHeader { last_page: 255, maxpages: 256, pages: 255, nr_badpages: 0, \
         uuid: 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0, label: vdb-swap, byte_swapped: false }"
    );
}
