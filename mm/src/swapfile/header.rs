//! The swap header: the first page of a swap area (Linux `union
//! swap_header` of `include/linux/swap.h`, read by `read_swap_header` and
//! checked by `setup_swap_map_and_extents` in `mm/swapfile.c`; written by
//! util-linux `mkswap`).
//!
//! Version 1, the only one Linux has read since 2.5, lays the page out as:
//!
//! | bytes          | field                                             |
//! |----------------|---------------------------------------------------|
//! | 0..1024        | `bootbits`: left for a boot loader or disk label  |
//! | 1024..1028     | `version`: 1                                      |
//! | 1028..1032     | `last_page`: index of the area's last page        |
//! | 1032..1036     | `nr_badpages`                                     |
//! | 1036..1052     | `sws_uuid`                                        |
//! | 1052..1068     | `sws_volume`: the label, NUL-padded               |
//! | 1068..1536     | `padding[117]`                                    |
//! | 1536..4086     | `badpages[]`: up to [`MAX_SWAP_BADPAGES`] indices  |
//! | 4086..4096     | `"SWAPSPACE2"`                                    |
//!
//! The integers are in the byte order of the machine that ran `mkswap`.
//! The signature sits in the last ten bytes of the area's first *page*,
//! so a header made for another page size (`mkswap -p 16384`) has it
//! elsewhere, and Linux only says it found no signature.
//!
//! [`SwapHeader::parse`] makes the checks Linux makes before it uses an
//! area, in Linux's order, and returns a header that passed them all;
//! [`mkswap`] writes what util-linux `mkswap` writes.
//!
//! # Differences from Linux
//!
//! - Linux reads the header in place and byte-swaps an other-endian one
//!   where it lies (the "swap partition endianness hack"); we read it
//!   without changing it, swapping each field as it is read. Both accept
//!   it.
//! - Linux's refusals are `-EINVAL` with a `pr_err` for some and nothing
//!   for others; ours are a [`SwapHeaderError`] naming the problem, which
//!   also recognises a header made for larger pages (given enough of the
//!   area) and the old version-0 signature, where Linux just finds no
//!   signature.
//! - `setup_swap_map_and_extents`' checks of the bad-page list (each
//!   index within the area, some page left good) are made here, so that a
//!   [`SwapHeader`] is usable as it is. Linux counts a page listed twice
//!   twice; we count the pages.
//! - No swap files: areas are whole disks, so there is no `S_ISREG` rule
//!   (Linux refuses bad pages in a regular file) and no extents.

#![forbid(unsafe_code)]

use core::fmt;

use crate::addr::PAGE_SIZE;

/// The version-1 signature (Linux `magic.magic`), in the last ten bytes
/// of the first page.
pub const SWAP_SIGNATURE: &[u8; 10] = b"SWAPSPACE2";

/// The signature of version 0 (a bitmap of good pages instead of a list
/// of bad ones), unsupported by Linux since 2.5.
const SWAP_SIGNATURE_V0: &[u8; 10] = b"SWAP-SPACE";

/// The largest page size whose header [`SwapHeader::parse`] recognises to
/// name it (Linux architectures go up to 64 KiB pages).
pub const MAX_HEADER_PAGE_SIZE: usize = 64 * 1024;

const PAGE: usize = PAGE_SIZE as usize;
const SIGNATURE_OFFSET: usize = PAGE - SWAP_SIGNATURE.len();
/// `bootbits`: room for a boot loader or a disk label.
const BOOTBITS_SIZE: usize = 1024;
const VERSION_OFFSET: usize = BOOTBITS_SIZE;
const LAST_PAGE_OFFSET: usize = 1028;
const NR_BADPAGES_OFFSET: usize = 1032;
const UUID_OFFSET: usize = 1036;
const VOLUME_OFFSET: usize = 1052;
/// `bootbits`, three `__u32`s, the uuid and the label, 117 `__u32`s of
/// padding.
const BADPAGES_OFFSET: usize = VOLUME_OFFSET + SWAP_LABEL_SIZE + 117 * 4;

/// How many bad pages the list holds: the `__u32`s between `badpages` and
/// the signature (Linux `MAX_SWAP_BADPAGES`, util-linux `MAX_BADPAGES`).
pub const MAX_SWAP_BADPAGES: u32 = ((SIGNATURE_OFFSET - BADPAGES_OFFSET) / 4) as u32;

/// Bytes of the label field (`sws_volume`).
pub const SWAP_LABEL_SIZE: usize = 16;

/// The longest label [`mkswap`] writes: util-linux keeps a NUL after it
/// (longer ones it truncates, with "Label was truncated").
pub const MKSWAP_LABEL_MAX: usize = SWAP_LABEL_SIZE - 1;

/// The smallest area util-linux `mkswap` makes, in pages (its
/// `MIN_GOODPAGES`: "swap area needs to be at least 40 KiB").
pub const MIN_GOODPAGES: u64 = 10;

/// The most pages a version-1 header describes: `last_page` is a
/// `__u32` (util-linux truncates larger areas to this).
const MKSWAP_MAX_PAGES: u64 = 1 << 32;

/// A swap area's UUID (`sws_uuid`), shown as 8-4-4-4-12 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapUuid(pub [u8; 16]);

impl fmt::Display for SwapUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// Why an area's first page is not a usable swap header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapHeaderError {
    /// The area is smaller than the header page.
    TooShort {
        /// Bytes given.
        len: usize,
    },
    /// No `SWAPSPACE2` at the end of the first page (Linux "Unable to
    /// find swap-space signature").
    NoSignature,
    /// A version-0 area (`SWAP-SPACE`).
    Version0,
    /// The signature sits at the end of a larger page: the header was
    /// made for `page_size`-byte pages.
    PageSize {
        /// The page size the header was made for.
        page_size: usize,
    },
    /// A version other than 1, in either byte order (Linux "Unable to
    /// handle swap header version %d").
    Version {
        /// The version field as read.
        version: u32,
    },
    /// `last_page` is 0 (Linux "Empty swap-file").
    Empty,
    /// The header describes more pages than the device holds (Linux
    /// "Swap area shorter than signature indicates").
    Shorter {
        /// Pages the header says the area has (as capped, see
        /// [`SwapHeader::maxpages`]).
        maxpages: u64,
        /// Pages the device holds.
        device_pages: u64,
    },
    /// `nr_badpages` is past [`MAX_SWAP_BADPAGES`].
    TooManyBadPages {
        /// The count as read.
        nr_badpages: u32,
    },
    /// A bad-page index is the header page or past `last_page`.
    BadPage {
        /// Its place in the list.
        index: u32,
        /// The page it names.
        page: u32,
        /// The area's last page.
        last_page: u32,
    },
    /// Every page but the header is bad (Linux "Empty swap-file").
    NoGoodPages,
}

impl fmt::Display for SwapHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SwapHeaderError::TooShort { len } => {
                write!(f, "not a swap area: {len} bytes cannot hold a {PAGE}-byte swap header")
            }
            SwapHeaderError::NoSignature => f.write_str("not a swap area: no SWAPSPACE2 signature"),
            SwapHeaderError::Version0 => {
                f.write_str("swap area version 0 (SWAP-SPACE signature) unsupported: remake it with mkswap")
            }
            SwapHeaderError::PageSize { page_size } => write!(
                f,
                "swap area made for {page_size}-byte pages (SWAPSPACE2 at byte {}), this kernel's pages are {PAGE} bytes",
                page_size - SWAP_SIGNATURE.len()
            ),
            SwapHeaderError::Version { version } => write!(f, "swap area version {version} unsupported"),
            SwapHeaderError::Empty => f.write_str("empty swap area: last_page is 0"),
            SwapHeaderError::Shorter { maxpages, device_pages } => write!(
                f,
                "swap area shorter than its header says: {maxpages} pages in the header, {device_pages} on the device"
            ),
            SwapHeaderError::TooManyBadPages { nr_badpages } => {
                write!(f, "swap header lists {nr_badpages} bad pages, more than the {MAX_SWAP_BADPAGES} it holds")
            }
            SwapHeaderError::BadPage { index, page, last_page } => {
                write!(f, "swap header bad page {index} is page {page}, outside the area's pages 1..={last_page}")
            }
            SwapHeaderError::NoGoodPages => f.write_str("empty swap area: every page is bad"),
        }
    }
}

/// A swap header that passed Linux's checks against its device.
#[doc(alias = "swap_header")]
#[derive(Clone, Copy)]
pub struct SwapHeader<'p> {
    page: &'p [u8; PAGE],
    byte_swapped: bool,
    last_page: u32,
    nr_badpages: u32,
    maxpages: u32,
    pages: u32,
}

impl<'p> SwapHeader<'p> {
    /// Reads the header at the start of `area` (at least its first page)
    /// of a device of `device_pages` pages, using at most
    /// `max_swapfile_size` pages of it (see
    /// [`max_swapfile_size`](super::max_swapfile_size)): Linux
    /// `read_swap_header` and the header checks of
    /// `setup_swap_map_and_extents`.
    ///
    /// Only the first page is the header; pass up to
    /// [`MAX_HEADER_PAGE_SIZE`] bytes so that a header made for larger
    /// pages is named as such rather than found to have no signature.
    pub fn parse(area: &'p [u8], device_pages: u64, max_swapfile_size: u64) -> Result<Self, SwapHeaderError> {
        let Some(page) = area.first_chunk::<PAGE>() else {
            return Err(SwapHeaderError::TooShort { len: area.len() });
        };
        if &page[SIGNATURE_OFFSET..] != SWAP_SIGNATURE {
            return Err(missing_signature(area));
        }

        let native = read_u32(page, VERSION_OFFSET);
        let byte_swapped = native != 1 && native.swap_bytes() == 1;
        if native != 1 && !byte_swapped {
            return Err(SwapHeaderError::Version { version: native });
        }
        let field = |offset| if byte_swapped { read_u32(page, offset).swap_bytes() } else { read_u32(page, offset) };

        let last_page = field(LAST_PAGE_OFFSET);
        if last_page == 0 {
            return Err(SwapHeaderError::Empty);
        }
        // Linux: the area's pages, or as many as a swap entry's offset
        // reaches; `si->max` is an `unsigned int`, so 2^32 pages become
        // one fewer.
        let maxpages = if max_swapfile_size > u64::from(last_page) {
            u32::try_from(u64::from(last_page) + 1).unwrap_or(u32::MAX)
        } else {
            // Below `last_page`, which is a u32.
            max_swapfile_size as u32
        };
        if maxpages == 0 {
            return Err(SwapHeaderError::Empty);
        }
        if u64::from(maxpages) > device_pages {
            return Err(SwapHeaderError::Shorter { maxpages: u64::from(maxpages), device_pages });
        }

        let nr_badpages = field(NR_BADPAGES_OFFSET);
        if nr_badpages > MAX_SWAP_BADPAGES {
            return Err(SwapHeaderError::TooManyBadPages { nr_badpages });
        }
        let header = SwapHeader { page, byte_swapped, last_page, nr_badpages, maxpages, pages: 0 };
        let mut bad_in_area = 0;
        for (index, bad) in (0..).zip(header.badpages()) {
            if bad == 0 || bad > last_page {
                return Err(SwapHeaderError::BadPage { index, page: bad, last_page });
            }
            let listed_before = header.badpages().take(index as usize).any(|earlier| earlier == bad);
            if bad < maxpages && !listed_before {
                bad_in_area += 1;
            }
        }
        // The header page and the bad pages are not for swapping.
        let pages = maxpages - 1 - bad_in_area;
        if pages == 0 {
            return Err(SwapHeaderError::NoGoodPages);
        }
        Ok(SwapHeader { pages, ..header })
    }

    /// The index of the area's last page (`info.last_page`).
    pub fn last_page(&self) -> u32 {
        self.last_page
    }

    /// Pages of the area in use: `last_page + 1`, or fewer if swap
    /// entries cannot reach them all (Linux `maxpages`, which becomes
    /// `si->max`). Slot offsets run below it.
    pub fn maxpages(&self) -> u32 {
        self.maxpages
    }

    /// Whether the area has pages past [`Self::maxpages`] that will go
    /// unused (Linux "Truncating oversized swap area").
    pub fn truncated(&self) -> bool {
        u64::from(self.maxpages) <= u64::from(self.last_page)
    }

    /// Pages for swapping: [`Self::maxpages`] less the header and the bad
    /// pages (Linux `si->pages`).
    pub fn pages(&self) -> u32 {
        self.pages
    }

    /// `info.nr_badpages`.
    pub fn nr_badpages(&self) -> u32 {
        self.nr_badpages
    }

    /// The bad-page list (`info.badpages`), in the header's order.
    pub fn badpages(&self) -> impl Iterator<Item = u32> + 'p {
        let (page, byte_swapped) = (self.page, self.byte_swapped);
        (0..self.nr_badpages as usize).map(move |i| {
            let raw = read_u32(page, BADPAGES_OFFSET + 4 * i);
            if byte_swapped { raw.swap_bytes() } else { raw }
        })
    }

    /// The area's UUID (`sws_uuid`).
    pub fn uuid(&self) -> SwapUuid {
        let mut uuid = [0; 16];
        uuid.copy_from_slice(&self.page[UUID_OFFSET..UUID_OFFSET + 16]);
        SwapUuid(uuid)
    }

    /// The label (`sws_volume`): up to its first NUL, all 16 bytes if it
    /// has none (as `swaplabel` may write).
    pub fn label(&self) -> &'p [u8] {
        let field = &self.page[VOLUME_OFFSET..VOLUME_OFFSET + SWAP_LABEL_SIZE];
        let len = field.iter().position(|&b| b == 0).unwrap_or(SWAP_LABEL_SIZE);
        &field[..len]
    }

    /// Whether the header was written in the other byte order (Linux
    /// accepts it, swapping the fields).
    pub fn byte_swapped(&self) -> bool {
        self.byte_swapped
    }
}

impl fmt::Debug for SwapHeader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwapHeader")
            .field("last_page", &self.last_page)
            .field("maxpages", &self.maxpages)
            .field("pages", &self.pages)
            .field("nr_badpages", &self.nr_badpages)
            .field("uuid", &format_args!("{}", self.uuid()))
            .field("label", &format_args!("{}", self.label().escape_ascii()))
            .field("byte_swapped", &self.byte_swapped)
            .finish()
    }
}

/// Why a first page without `SWAPSPACE2` is not a swap header: an old
/// format, a header for larger pages if enough of `area` was given to see
/// it, or no signature at all.
fn missing_signature(area: &[u8]) -> SwapHeaderError {
    if area.get(SIGNATURE_OFFSET..PAGE) == Some(&SWAP_SIGNATURE_V0[..]) {
        return SwapHeaderError::Version0;
    }
    let mut page_size = 2 * PAGE;
    while page_size <= MAX_HEADER_PAGE_SIZE {
        if area.get(page_size - SWAP_SIGNATURE.len()..page_size) == Some(&SWAP_SIGNATURE[..]) {
            return SwapHeaderError::PageSize { page_size };
        }
        page_size *= 2;
    }
    SwapHeaderError::NoSignature
}

fn read_u32(page: &[u8; PAGE], offset: usize) -> u32 {
    let mut bytes = [0; 4];
    bytes.copy_from_slice(&page[offset..offset + 4]);
    u32::from_ne_bytes(bytes)
}

fn write_u32(page: &mut [u8; PAGE], offset: usize, value: u32) {
    page[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
}

/// Why [`mkswap`] wrote nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MkswapError {
    /// The device is smaller than [`MIN_GOODPAGES`] pages.
    TooSmall {
        /// Pages the device holds.
        device_pages: u64,
    },
    /// The label is longer than [`MKSWAP_LABEL_MAX`] bytes.
    LabelTooLong {
        /// Its length.
        len: usize,
    },
    /// The label holds a NUL byte, which would end it early.
    LabelNul,
}

impl fmt::Display for MkswapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MkswapError::TooSmall { device_pages } => write!(
                f,
                "swap area needs to be at least {} KiB, the device has {} KiB",
                MIN_GOODPAGES * PAGE_SIZE / 1024,
                device_pages.saturating_mul(PAGE_SIZE / 1024)
            ),
            MkswapError::LabelTooLong { len } => {
                write!(f, "swap label of {len} bytes is longer than {MKSWAP_LABEL_MAX}")
            }
            MkswapError::LabelNul => f.write_str("swap label holds a NUL byte"),
        }
    }
}

/// Writes a version-1 swap header for a device of `device_pages` pages
/// into `page`, the device's first page, as util-linux `mkswap -U uuid -L
/// label` does on a whole disk: everything past the `bootbits` is
/// rewritten (zeros but for the header's fields), the `bootbits`
/// themselves are left as they are. Returns `last_page`.
///
/// Like `mkswap`, it refuses devices smaller than [`MIN_GOODPAGES`] and
/// describes at most 2^32 pages of a larger one; it lists no bad pages
/// (`mkswap -c` reads the device to find them). Unlike it, a label too
/// long to keep a NUL after it is refused rather than truncated.
pub fn mkswap(page: &mut [u8; PAGE], device_pages: u64, uuid: SwapUuid, label: &[u8]) -> Result<u32, MkswapError> {
    if device_pages < MIN_GOODPAGES {
        return Err(MkswapError::TooSmall { device_pages });
    }
    if label.len() > MKSWAP_LABEL_MAX {
        return Err(MkswapError::LabelTooLong { len: label.len() });
    }
    if label.contains(&0) {
        return Err(MkswapError::LabelNul);
    }
    // At least MIN_GOODPAGES and at most 2^32, so this fits a u32.
    let last_page = (device_pages.min(MKSWAP_MAX_PAGES) - 1) as u32;
    page[BOOTBITS_SIZE..].fill(0);
    write_u32(page, VERSION_OFFSET, 1);
    write_u32(page, LAST_PAGE_OFFSET, last_page);
    write_u32(page, NR_BADPAGES_OFFSET, 0);
    page[UUID_OFFSET..UUID_OFFSET + 16].copy_from_slice(&uuid.0);
    page[VOLUME_OFFSET..VOLUME_OFFSET + label.len()].copy_from_slice(label);
    page[SIGNATURE_OFFSET..].copy_from_slice(SWAP_SIGNATURE);
    Ok(last_page)
}

#[cfg(test)]
mod tests;
