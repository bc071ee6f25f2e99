//! A table's pages as the page map keeps them between snapshots: varint-packed, about 12 bytes a
//! page instead of 29.
//!
//! An incremental run holds the previous map of every table and the new one of every table it
//! has walked, so the map's size per page is most of what such a run's memory grows with. Pages
//! are only ever read in order (compared side by side, checked, saved), so they are stored as a
//! byte stream: page number as the difference from the one before (small: a table's pages are
//! kept in page number order) with the kind in its low bits, the hash as is (8 bytes, random),
//! the first rowid as the difference from the page before's, the last as its difference from the
//! first. Differences wrap, so every list of pages round-trips exactly, sorted or not.

use super::pages::{Kind, Page};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageList {
    bytes: Vec<u8>,
    len: usize,
    /// Page number and first rowid of the last page pushed (what the next is written against).
    last: (u32, i64),
}

impl PageList {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, page: Page) {
        let Page {
            pgno,
            kind,
            hash,
            lo,
            hi,
        } = page;
        let (last_pgno, last_lo) = self.last;
        put_varint(
            &mut self.bytes,
            u64::from(pgno.wrapping_sub(last_pgno)) << 3 | kind as u64,
        );
        self.bytes.extend_from_slice(&hash.to_le_bytes());
        put_varint(&mut self.bytes, zigzag(lo.wrapping_sub(last_lo)));
        put_varint(&mut self.bytes, zigzag(hi.wrapping_sub(lo)));
        self.last = (pgno, lo);
        self.len += 1;
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter {
            bytes: &self.bytes,
            left: self.len,
            last: (0, 0),
        }
    }

    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
    }
}

impl FromIterator<Page> for PageList {
    fn from_iter<I: IntoIterator<Item = Page>>(pages: I) -> PageList {
        let mut list = PageList::default();
        for p in pages {
            list.push(p);
        }
        list.shrink_to_fit();
        list
    }
}

impl<'a> IntoIterator for &'a PageList {
    type Item = Page;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The pages of a [`PageList`], in the order they were pushed.
pub struct Iter<'a> {
    bytes: &'a [u8],
    left: usize,
    last: (u32, i64),
}

impl Iterator for Iter<'_> {
    type Item = Page;

    fn next(&mut self) -> Option<Page> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let head = take_varint(&mut self.bytes);
        let (hash, rest) = self.bytes.split_at(8);
        self.bytes = rest;
        let lo = self
            .last
            .1
            .wrapping_add(unzigzag(take_varint(&mut self.bytes)));
        let hi = lo.wrapping_add(unzigzag(take_varint(&mut self.bytes)));
        let pgno = self.last.0.wrapping_add((head >> 3) as u32);
        self.last = (pgno, lo);
        Some(Page {
            pgno,
            kind: Kind::from_u8((head & 7) as u8).expect("a page list holds the kinds pushed"),
            hash: u64::from_le_bytes(hash.try_into().expect("8 bytes")),
            lo,
            hi,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

pub(super) fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

pub(super) fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Only ever called on bytes [`put_varint`] wrote.
fn take_varint(bytes: &mut &[u8]) -> u64 {
    let mut n = 0u64;
    let mut shift = 0;
    loop {
        let b = bytes[0];
        *bytes = &bytes[1..];
        n |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return n;
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_round_trips() {
        let kinds = [Kind::Interior, Kind::Leaf, Kind::Overflow, Kind::IndexLeaf];
        let mut pages = Vec::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..5000u32 {
            let r = next();
            let edge = [0, 1, -1, i64::MIN, i64::MAX][(r % 5) as usize];
            let lo = if r % 3 == 0 { edge } else { r as i64 };
            let hi = if r % 7 == 0 {
                i64::MIN
            } else {
                lo.wrapping_add((r >> 40) as i64)
            };
            pages.push(Page {
                pgno: if r % 11 == 0 { u32::MAX - i } else { i * 3 + 2 },
                kind: kinds[(r % 4) as usize],
                hash: next(),
                lo,
                hi,
            });
        }
        let list: PageList = pages.iter().copied().collect();
        assert_eq!(list.len(), pages.len());
        assert_eq!(list.iter().collect::<Vec<_>>(), pages);
        let sorted: PageList = (1..=1000u32)
            .map(|pgno| Page {
                pgno,
                kind: Kind::Leaf,
                hash: u64::from(pgno) << 40,
                lo: i64::from(pgno) * 30,
                hi: i64::from(pgno) * 30 + 29,
            })
            .collect();
        assert!(sorted.bytes.len() <= 1000 * 12, "{}", sorted.bytes.len());
        assert!(PageList::default().iter().next().is_none());
    }
}
