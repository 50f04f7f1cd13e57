//! Swap count continuation (Linux `add_swap_count_continuation`,
//! `swap_count_continued` and `swp_swapcount` of `mm/swapfile.c`): the
//! digits of a count past [`SWAP_MAP_MAX`], in pages listed per page of
//! the swap map. The number system is in the parent module's doc.
//!
//! Linux hangs the list on the `lru` of the swap map's vmalloc page and
//! walks it both ways; ours is a singly linked list of lent pages, and a
//! carry or borrow walks it by recursion, which leaves the same bytes.

use super::{COUNT_CONTINUED, PAGE, SWAP_CONT_MAX, SWAP_MAP_BAD, SWAP_MAP_MAX, SwapEntryError, SwapInfo, swap_count};
use crate::swapops::SwpEntry;

/// One continuation page: a digit for each slot of one page of the swap
/// map (Linux: a page on that swap map page's `lru` list).
pub struct SwapContPage<'a> {
    pub(super) count: [u8; PAGE],
    pub(super) next: SwapContList<'a>,
}

impl SwapContPage<'_> {
    /// A page for [`SwapInfo::add_swap_count_continuation`].
    pub const fn new() -> Self {
        SwapContPage { count: [0; PAGE], next: None }
    }
}

impl Default for SwapContPage<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// The continuation pages of one page of the swap map, lowest digit
/// first.
pub type SwapContList<'a> = Option<&'a mut SwapContPage<'a>>;

/// Adds one to the digits from `page` on for slot `idx`, the first one
/// meaningful only if `continued`; false, changing nothing, if a carry
/// runs past the last page.
fn cont_inc(page: Option<&mut SwapContPage<'_>>, idx: usize, continued: bool) -> bool {
    let Some(page) = page else { return false };
    let digit = if continued { page.count[idx] } else { 0 };
    if digit & !COUNT_CONTINUED < SWAP_CONT_MAX {
        page.count[idx] = digit + 1;
        return true;
    }
    if cont_inc(page.next.as_deref_mut(), idx, digit & COUNT_CONTINUED != 0) {
        page.count[idx] = COUNT_CONTINUED;
        return true;
    }
    false
}

/// Takes one from the digits from `page` on for slot `idx` (whose value
/// is not zero); returns whether they are still not all zero.
fn cont_dec(page: Option<&mut SwapContPage<'_>>, idx: usize) -> bool {
    let Some(page) = page else {
        debug_assert!(false, "swap count continued past its last page");
        return false;
    };
    let digit = page.count[idx];
    if digit & !COUNT_CONTINUED != 0 {
        page.count[idx] = digit - 1;
        return digit - 1 != 0;
    }
    debug_assert_eq!(digit, COUNT_CONTINUED, "a zero swap count continued");
    let above = cont_dec(page.next.as_deref_mut(), idx);
    page.count[idx] = SWAP_CONT_MAX | if above { COUNT_CONTINUED } else { 0 };
    true
}

impl<'a> SwapInfo<'a> {
    /// Carries one into the continuation of slot `offset`, whose swap map
    /// digit is [`SWAP_MAP_MAX`], `continued` or not (Linux
    /// `swap_count_continued` incrementing).
    pub(super) fn swap_count_continued_inc(&mut self, offset: usize, continued: bool) -> bool {
        cont_inc(self.cont[offset / PAGE].as_deref_mut(), offset % PAGE, continued)
    }

    /// Borrows one from the continuation of slot `offset`, whose swap map
    /// digit is 0 with [`COUNT_CONTINUED`] (Linux `swap_count_continued`
    /// decrementing); returns whether the continuation is still not zero.
    pub(super) fn swap_count_continued_dec(&mut self, offset: usize) -> bool {
        cont_dec(self.cont[offset / PAGE].as_deref_mut(), offset % PAGE)
    }

    /// Attaches `page` to the continuation of `entry`'s page of the swap
    /// map if its count needs one more digit to grow (Linux
    /// `add_swap_count_continuation`), after
    /// [`SwapEntryError::NoContinuation`]. Returns the page if it was not
    /// needed (the count moved, or a page on the list has room), for the
    /// caller to free.
    pub fn add_swap_count_continuation(
        &mut self,
        entry: SwpEntry,
        page: &'a mut SwapContPage<'a>,
    ) -> Result<Option<&'a mut SwapContPage<'a>>, SwapEntryError> {
        let offset = self.offset_of(entry)?;
        let count = swap_count(self.swap_map[offset]);
        if count & !COUNT_CONTINUED != SWAP_MAP_MAX {
            return Ok(Some(page));
        }
        let idx = offset % PAGE;
        let mut continued = count & COUNT_CONTINUED != 0;
        let mut tail = &mut self.cont[offset / PAGE];
        while let Some(cont) = tail {
            // A digit that is not in use yet, or not full, takes the carry.
            if !continued || cont.count[idx] & !COUNT_CONTINUED != SWAP_CONT_MAX {
                return Ok(Some(page));
            }
            continued = cont.count[idx] & COUNT_CONTINUED != 0;
            tail = &mut cont.next;
        }
        page.next = None;
        *tail = Some(page);
        Ok(None)
    }

    /// The number of swap entries naming `entry`'s slot, continuation
    /// included (Linux `swp_swapcount`).
    pub fn swp_swapcount(&self, entry: SwpEntry) -> Result<u64, SwapEntryError> {
        let offset = self.offset_of(entry)?;
        let count = swap_count(self.swap_map[offset]);
        if count == SWAP_MAP_BAD {
            return Err(SwapEntryError::BadSlot);
        }
        let mut total = u64::from(count & !COUNT_CONTINUED);
        let mut radix = u64::from(SWAP_MAP_MAX) + 1;
        let mut continued = count & COUNT_CONTINUED != 0;
        let mut page = self.cont[offset / PAGE].as_deref();
        while continued && let Some(cont) = page {
            let digit = cont.count[offset % PAGE];
            total = total.saturating_add(u64::from(digit & !COUNT_CONTINUED).saturating_mul(radix));
            radix = radix.saturating_mul(u64::from(SWAP_CONT_MAX) + 1);
            continued = digit & COUNT_CONTINUED != 0;
            page = cont.next.as_deref();
        }
        Ok(total)
    }
}
