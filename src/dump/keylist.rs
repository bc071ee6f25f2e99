//! Lists of keys (byte strings) in one buffer, as the page map keeps them for a WITHOUT ROWID
//! table: the first key of each chunk ([`KeyList`]), and each page's first and last key and an
//! interior page's cells ([`PageKeys`]). One allocation for all of them and 4 bytes of
//! bookkeeping a key, where a `Vec<u8>` each costs 24 bytes plus an allocation (~32 bytes).

/// Bytes of keys a list may hold (its positions are 32-bit). The walk and the dump keep far
/// less (see [`within_budget`]); a damaged map that would need more is no map.
pub const MAX_BYTES: usize = 1 << 30;

/// Whether `bytes` of keys for `items` pages or chunks stay within what a table may keep: about
/// 160 bytes an item, beyond a first MiB. Keys are kept in memory for the whole run (the previous
/// map's and the new one's); a page keeps about three (its first and last, and the cell an
/// interior page has for it), so keys of up to about 50 bytes fit (a UUID as text: 39). A table
/// of longer keys keeps none instead: it is read whole when it changes.
pub fn within_budget(bytes: usize, items: usize) -> bool {
    bytes <= (1 << 20) + 160 * items && bytes <= MAX_BYTES / 2
}

/// See the module doc.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyList {
    bytes: Vec<u8>,
    /// Where each key ends in `bytes`.
    ends: Vec<u32>,
}

impl KeyList {
    pub fn with_capacity(keys: usize) -> KeyList {
        KeyList {
            bytes: Vec::new(),
            ends: Vec::with_capacity(keys),
        }
    }

    /// Add a key (the list must stay within [`MAX_BYTES`]: its owners keep less).
    pub fn push(&mut self, key: &[u8]) {
        self.bytes.extend_from_slice(key);
        self.ends.push(Self::end(self.bytes.len()));
    }

    fn end(len: usize) -> u32 {
        assert!(len <= MAX_BYTES, "a key list over its limit");
        len as u32
    }

    /// Bytes of all the keys.
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Key `i` (panics past the end, like indexing).
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Add the keys of `other` after these.
    pub fn append(&mut self, other: &KeyList) {
        let base = Self::end(self.bytes.len() + other.bytes.len()) - other.bytes.len() as u32;
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
/// An interior page also keeps each of its cells (its row) as a hash of the cell's bytes and
/// its key ([`PageKeys::cells`]): a changed interior page then marks only the rows that differ,
/// not the whole key range below it. Pages come in the b-tree's order;
/// [`PageKeys::sort_by_pgno`] orders them through a list of positions (4 bytes a page) instead
/// of copying the keys.
#[derive(Clone, Debug, Default)]
pub struct PageKeys {
    /// In the order pushed.
    pgnos: Vec<u32>,
    /// Each page's entries, in the order pushed: first key, last key, then (interior pages) one
    /// entry a cell, its hash (8 bytes, little-endian) followed by its key.
    keys: KeyList,
    /// Where each page's entries end in `keys`.
    ends: Vec<u32>,
    /// Positions in page number order (empty: the pages were pushed in that order).
    order: Vec<u32>,
}

/// Bytes of a cell's hash before its key in a [`PageKeys`] entry.
const CELL_HASH: usize = 8;

impl PageKeys {
    pub fn with_capacity(pages: usize) -> PageKeys {
        PageKeys {
            pgnos: Vec::with_capacity(pages),
            keys: KeyList::with_capacity(2 * pages),
            ends: Vec::with_capacity(pages),
            order: Vec::new(),
        }
    }

    /// Add a page (after [`PageKeys::sort_by_pgno`], only in page number order).
    pub fn push(&mut self, pgno: u32, first: &[u8], last: &[u8]) {
        self.push_entries(pgno, [first, last].into_iter());
    }

    /// Add an interior page with its cells: (hash of the cell's bytes, key).
    pub fn push_interior<'a>(
        &mut self,
        pgno: u32,
        first: &[u8],
        last: &[u8],
        cells: impl Iterator<Item = (u64, &'a [u8])>,
    ) {
        self.push(pgno, first, last);
        for (hash, key) in cells {
            self.keys.bytes.extend_from_slice(&hash.to_le_bytes());
            self.keys.push(key);
        }
        *self.ends.last_mut().expect("just pushed") = self.keys.len() as u32;
    }

    /// Add a page with its entries as [`PageKeys::entries`] gives them (at least two).
    pub fn push_entries<'a>(&mut self, pgno: u32, entries: impl Iterator<Item = &'a [u8]>) {
        if !self.order.is_empty() {
            self.order.push(self.pgnos.len() as u32);
        }
        self.pgnos.push(pgno);
        for e in entries {
            self.keys.push(e);
        }
        self.ends.push(self.keys.len() as u32);
    }

    /// Add the pages of `other` (neither sorted yet) after these.
    pub fn append(&mut self, other: &PageKeys) {
        debug_assert!(self.order.is_empty() && other.order.is_empty());
        let base = self.keys.len() as u32;
        self.pgnos.extend_from_slice(&other.pgnos);
        self.keys.append(&other.keys);
        self.ends.extend(other.ends.iter().map(|e| e + base));
    }

    pub fn len(&self) -> usize {
        self.pgnos.len()
    }

    /// Bytes of all the keys (and cell hashes) kept.
    pub fn bytes(&self) -> usize {
        self.keys.bytes()
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

    /// The entries of the page pushed `i`th: first key, last key, cells.
    fn entries_at(&self, i: usize) -> impl ExactSizeIterator<Item = &[u8]> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        (start..self.ends[i] as usize).map(|e| self.keys.get(e))
    }

    /// Page number and entries (first key, last key, then each cell as stored) of each page,
    /// in page number order: what [`PageKeys::push_entries`] takes back.
    pub fn entries(&self) -> impl Iterator<Item = (u32, impl ExactSizeIterator<Item = &[u8]>)> {
        (0..self.len()).map(|k| {
            let i = self.at(k);
            (self.pgnos[i], self.entries_at(i))
        })
    }

    /// Page number, first key and last key of each page, in page number order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[u8], &[u8])> {
        (0..self.len()).map(|k| {
            let i = self.at(k);
            let (first, last) = self.bounds(i);
            (self.pgnos[i], first, last)
        })
    }

    /// The first and last key of the page pushed `i`th.
    fn bounds(&self, i: usize) -> (&[u8], &[u8]) {
        let mut entries = self.entries_at(i);
        let first = entries.next().expect("a first key");
        (first, entries.next().expect("a last key"))
    }

    /// The cells of the page pushed `i`th (see [`PageKeys::cells`]).
    fn cells_at(&self, i: usize) -> impl Iterator<Item = (u64, &[u8])> {
        self.entries_at(i).skip(2).map(|e| {
            let (hash, key) = e.split_at(CELL_HASH);
            (u64::from_le_bytes(hash.try_into().expect("8 bytes")), key)
        })
    }

    /// Where page `pgno` was pushed.
    fn position(&self, pgno: u32) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let i = self.at(mid);
            match self.pgnos[i].cmp(&pgno) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(i),
            }
        }
        None
    }

    /// The first and last key of page `pgno`.
    pub fn find(&self, pgno: u32) -> Option<(&[u8], &[u8])> {
        Some(self.bounds(self.position(pgno)?))
    }

    /// The cells of interior page `pgno` (hash of the cell's bytes, key); empty for a page
    /// pushed without them.
    pub fn cells(&self, pgno: u32) -> Option<impl Iterator<Item = (u64, &[u8])>> {
        Some(self.cells_at(self.position(pgno)?))
    }

    pub fn shrink_to_fit(&mut self) {
        self.pgnos.shrink_to_fit();
        self.keys.shrink_to_fit();
        self.ends.shrink_to_fit();
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
        self.len() == other.len()
            && self
                .entries()
                .zip(other.entries())
                .all(|((a, ea), (b, eb))| a == b && ea.eq(eb))
    }
}

impl Eq for PageKeys {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_grows_with_the_pages() {
        assert!(within_budget(1 << 20, 0));
        assert!(!within_budget((1 << 20) + 1, 0));
        assert!(within_budget((1 << 20) + 160 * 1000, 1000));
        assert!(!within_budget((1 << 20) + 161 * 1000, 1000));
        assert!(!within_budget(MAX_BYTES / 2 + 1, usize::MAX / 320));
    }

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
        assert_eq!(keys.cells(9).unwrap().count(), 0);
    }

    #[test]
    fn keeps_the_cells_of_interior_pages() {
        let mut keys = PageKeys::default();
        keys.push(7, b"x\0", b"y\0");
        let cells = [(1u64, &b"p\0"[..]), (u64::MAX, b"q\0")];
        keys.push_interior(5, b"p\0", b"q\0", cells.into_iter());
        keys.push(2, b"a\0", b"b\0");
        let mut other = PageKeys::default();
        other.push_interior(4, b"m\0", b"m\0", [(9u64, &b"m\0"[..])].into_iter());
        keys.append(&other);
        keys.sort_by_pgno();
        assert_eq!(keys.find(5), Some((&b"p\0"[..], &b"q\0"[..])));
        assert_eq!(keys.cells(5).unwrap().collect::<Vec<_>>(), cells);
        assert_eq!(
            keys.cells(4).unwrap().collect::<Vec<_>>(),
            [(9, &b"m\0"[..])]
        );
        assert_eq!(keys.cells(7).unwrap().count(), 0);
        assert!(keys.cells(3).is_none());
        // What a map file keeps reads back the same.
        let mut copy = PageKeys::default();
        for (pgno, entries) in keys.entries() {
            copy.push_entries(pgno, entries);
        }
        assert_eq!(copy, keys);
        let pgnos: Vec<u32> = keys.iter().map(|(p, _, _)| p).collect();
        assert_eq!(pgnos, [2, 4, 5, 7]);
    }
}
