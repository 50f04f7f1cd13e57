//! Doubly linked lists of pages threaded through the descriptors' `lru`
//! links (Linux `include/linux/list.h` as used with `page->lru`).
//!
//! Linux links `struct list_head`s by pointer in a circle through a head
//! node. Our links are pfns (32-bit, [`NIL`] for none) stored in the page
//! descriptors, and the head keeps both ends and a length: the free lists
//! need the count anyway (`nr_free`, `/proc/pagetypeinfo`), and pfn links
//! halve the link size and need no `unsafe`.
//!
//! A list does not own its pages: the caller holds the lock that protects
//! both the list head and the links of the pages on it.

#![forbid(unsafe_code)]

use crate::addr::Pfn;
use crate::page::{MemMap, NIL};

const NEXT: usize = 0;
const PREV: usize = 1;

/// The head of a list of pages.
#[derive(Debug)]
pub struct PageList {
    head: u32,
    tail: u32,
    len: u64,
}

impl Default for PageList {
    fn default() -> Self {
        Self::new()
    }
}

impl PageList {
    /// An empty list (Linux `LIST_HEAD_INIT`).
    pub const fn new() -> Self {
        PageList { head: NIL, tail: NIL, len: 0 }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.head == NIL
    }

    /// Entries on the list.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// The first page (Linux `list_first_entry_or_null`).
    pub fn front(&self) -> Option<Pfn> {
        (self.head != NIL).then(|| Pfn::new(u64::from(self.head)))
    }

    /// The last page.
    pub fn back(&self) -> Option<Pfn> {
        (self.tail != NIL).then(|| Pfn::new(u64::from(self.tail)))
    }

    /// Inserts at the front (Linux `list_add`).
    pub fn push_front(&mut self, map: &MemMap<'_>, pfn: Pfn) {
        let pfn = pfn.as_u64() as u32;
        let page = map.page(u64::from(pfn));
        page.set_link(PREV, NIL);
        page.set_link(NEXT, self.head);
        if self.head == NIL {
            self.tail = pfn;
        } else {
            map.page(u64::from(self.head)).set_link(PREV, pfn);
        }
        self.head = pfn;
        self.len += 1;
    }

    /// Inserts at the back (Linux `list_add_tail`).
    pub fn push_back(&mut self, map: &MemMap<'_>, pfn: Pfn) {
        let pfn = pfn.as_u64() as u32;
        let page = map.page(u64::from(pfn));
        page.set_link(NEXT, NIL);
        page.set_link(PREV, self.tail);
        if self.tail == NIL {
            self.head = pfn;
        } else {
            map.page(u64::from(self.tail)).set_link(NEXT, pfn);
        }
        self.tail = pfn;
        self.len += 1;
    }

    /// Unlinks `pfn`, which must be on this list (Linux `list_del`).
    pub fn remove(&mut self, map: &MemMap<'_>, pfn: Pfn) {
        let raw = pfn.as_u64() as u32;
        let page = map.page(u64::from(raw));
        let (next, prev) = (page.link(NEXT), page.link(PREV));
        if prev == NIL {
            debug_assert_eq!(self.head, raw, "page {pfn:?} is not on this list");
            self.head = next;
        } else {
            map.page(u64::from(prev)).set_link(NEXT, next);
        }
        if next == NIL {
            debug_assert_eq!(self.tail, raw, "page {pfn:?} is not on this list");
            self.tail = prev;
        } else {
            map.page(u64::from(next)).set_link(PREV, prev);
        }
        page.set_link(NEXT, NIL);
        page.set_link(PREV, NIL);
        self.len -= 1;
    }

    /// Removes and returns the first page.
    pub fn pop_front(&mut self, map: &MemMap<'_>) -> Option<Pfn> {
        let pfn = self.front()?;
        self.remove(map, pfn);
        Some(pfn)
    }

    /// Removes and returns the last page.
    pub fn pop_back(&mut self, map: &MemMap<'_>) -> Option<Pfn> {
        let pfn = self.back()?;
        self.remove(map, pfn);
        Some(pfn)
    }

    /// The pages from front to back.
    pub fn iter<'l, 'm>(&'l self, map: &'l MemMap<'m>) -> impl Iterator<Item = Pfn> + 'l {
        let mut cursor = self.head;
        core::iter::from_fn(move || {
            if cursor == NIL {
                return None;
            }
            let pfn = cursor;
            cursor = map.page(u64::from(pfn)).link(NEXT);
            Some(Pfn::new(u64::from(pfn)))
        })
    }
}

#[cfg(test)]
mod tests {
    use core::sync::atomic::AtomicU8;

    use super::*;
    use crate::mmzone::ZoneType;
    use crate::page::Page;

    fn collect(list: &PageList, map: &MemMap<'_>) -> Vec<u64> {
        list.iter(map).map(Pfn::as_u64).collect()
    }

    #[test]
    fn push_pop_and_remove_keep_order_and_length() {
        let pages: Vec<Page> = (0..512).map(|_| Page::new_reserved(ZoneType::Dma)).collect();
        let blocks = [AtomicU8::new(0)];
        let map = MemMap::new(Pfn::new(0), &pages, &blocks).unwrap();
        let mut list = PageList::new();
        for pfn in [3, 4, 5] {
            list.push_back(&map, Pfn::new(pfn));
        }
        list.push_front(&map, Pfn::new(2));
        assert_eq!(collect(&list, &map), [2, 3, 4, 5]);
        list.remove(&map, Pfn::new(4));
        assert_eq!(collect(&list, &map), [2, 3, 5]);
        assert_eq!(list.len(), 3);
        assert_eq!(list.pop_back(&map), Some(Pfn::new(5)));
        assert_eq!(list.pop_front(&map), Some(Pfn::new(2)));
        list.remove(&map, Pfn::new(3));
        assert!(list.is_empty());
        assert_eq!(list.len(), 0);
        assert_eq!(list.pop_front(&map), None);
        list.push_front(&map, Pfn::new(7));
        assert_eq!((list.front(), list.back()), (Some(Pfn::new(7)), Some(Pfn::new(7))));
    }
}
