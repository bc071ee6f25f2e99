//! Lists of keys (byte strings) in one buffer, as the page map keeps them for a WITHOUT ROWID
//! table: the first key of each chunk ([`KeyList`]) and each page's first and last key
//! ([`PageKeys`]). One allocation for all of them and 8 bytes of bookkeeping a key, where a
//! `Vec<u8>` each costs 24 bytes plus an allocation (~32 bytes).

/// See the module doc.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyList {
    bytes: Vec<u8>,
    /// Where each key ends in `bytes`.
    ends: Vec<usize>,
}

impl KeyList {
    pub fn with_capacity(keys: usize) -> KeyList {
        KeyList {
            bytes: Vec::new(),
            ends: Vec::with_capacity(keys),
        }
    }

    pub fn push(&mut self, key: &[u8]) {
        self.bytes.extend_from_slice(key);
        self.ends.push(self.bytes.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Key `i` (panics past the end, like indexing).
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Add the keys of `other` after these.
    pub fn append(&mut self, other: &KeyList) {
        let base = self.bytes.len();
        self.bytes.extend_from_slice(&other.bytes);
        self.ends.extend(other.ends.iter().map(|e| e + base));
    }

    /// Give back unused room (the list is kept until the next snapshot).
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

/// The keys of a table's index b-tree pages: of each page's first and last cell (or of an
/// overflow page's cell), as SQL literals each ended by a NUL; listed in page number order.
/// Pages come in the b-tree's order; [`PageKeys::sort_by_pgno`] orders them through a list of
/// positions (4 bytes a page) instead of copying the keys.
#[derive(Clone, Debug, Default)]
pub struct PageKeys {
    /// In the order pushed.
    pgnos: Vec<u32>,
    /// First and last key of each page, in the order pushed.
    keys: KeyList,
    /// Positions in page number order (empty: the pages were pushed in that order).
    order: Vec<u32>,
}

impl PageKeys {
    pub fn with_capacity(pages: usize) -> PageKeys {
        PageKeys {
            pgnos: Vec::with_capacity(pages),
            keys: KeyList::with_capacity(2 * pages),
            order: Vec::new(),
        }
    }

    /// Add a page (after [`PageKeys::sort_by_pgno`], only in page number order).
    pub fn push(&mut self, pgno: u32, first: &[u8], last: &[u8]) {
        if !self.order.is_empty() {
            self.order.push(self.pgnos.len() as u32);
        }
        self.pgnos.push(pgno);
        self.keys.push(first);
        self.keys.push(last);
    }

    /// Add the pages of `other` (neither sorted yet) after these.
    pub fn append(&mut self, other: &PageKeys) {
        debug_assert!(self.order.is_empty() && other.order.is_empty());
        self.pgnos.extend_from_slice(&other.pgnos);
        self.keys.append(&other.keys);
    }

    pub fn len(&self) -> usize {
        self.pgnos.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pgnos.is_empty()
    }

    /// Where the page that is `k`th in page number order was pushed.
    fn at(&self, k: usize) -> usize {
        if self.order.is_empty() {
            k
        } else {
            self.order[k] as usize
        }
    }

    /// Page number, first key and last key of each page, in page number order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[u8], &[u8])> {
        (0..self.len()).map(|k| {
            let i = self.at(k);
            (
                self.pgnos[i],
                self.keys.get(2 * i),
                self.keys.get(2 * i + 1),
            )
        })
    }

    /// The first and last key of page `pgno`.
    pub fn find(&self, pgno: u32) -> Option<(&[u8], &[u8])> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let i = self.at(mid);
            match self.pgnos[i].cmp(&pgno) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => {
                    return Some((self.keys.get(2 * i), self.keys.get(2 * i + 1)));
                }
            }
        }
        None
    }

    pub fn shrink_to_fit(&mut self) {
        self.pgnos.shrink_to_fit();
        self.keys.shrink_to_fit();
        self.order.shrink_to_fit();
    }

    /// Put the pages in page number order (they are added in the b-tree's order).
    pub fn sort_by_pgno(&mut self) {
        if self.order.is_empty() && !self.pgnos.is_sorted() {
            let mut order: Vec<u32> = (0..self.len() as u32).collect();
            order.sort_unstable_by_key(|&i| self.pgnos[i as usize]);
            self.order = order;
        }
        self.shrink_to_fit();
    }
}

impl PartialEq for PageKeys {
    fn eq(&self, other: &PageKeys) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for PageKeys {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_keys_apart() {
        let mut list = KeyList::default();
        for k in [&b"a\0"[..], b"", b"bcd\0e\0"] {
            list.push(k);
        }
        assert_eq!(list.len(), 3);
        assert_eq!(list.get(1), b"");
        let all: Vec<&[u8]> = list.iter().collect();
        assert_eq!(all, vec![&b"a\0"[..], b"", b"bcd\0e\0"]);
    }

    #[test]
    fn finds_page_keys() {
        let mut keys = PageKeys::default();
        keys.push(9, b"c\0", b"d\0");
        keys.push(3, b"a\0", b"b\0");
        keys.sort_by_pgno();
        assert_eq!(keys.iter().next(), Some((3, &b"a\0"[..], &b"b\0"[..])));
        assert_eq!(keys.find(9), Some((&b"c\0"[..], &b"d\0"[..])));
        assert_eq!(keys.find(4), None);
        assert_eq!(keys.iter().count(), 2);
    }
}
