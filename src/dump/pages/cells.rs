//! Reading one b-tree page's cells (SQLite's file format): the page's kind and rowid or key
//! bounds, its children, the overflow chains its cells start, and each cell's sum.

use anyhow::{Context, Result, bail};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::super::btree::{be16, be32, varint};
use super::super::keylist::PageKeys;
use super::super::record::record_key;
use super::sums::CellSums;
use super::{Kind, Page, Pages};

impl<'c> Pages<'c> {
    /// The current page (`pgno`, just read): its [`Page`] and what the walk goes on to. With
    /// `keys`, its keys go to `page_keys` (None from the first key that cannot be read); with
    /// `sums`, its rows' cells are summed.
    pub(super) fn parse_page(
        &self,
        pgno: u32,
        keys: Option<usize>,
        page_keys: &mut Option<PageKeys>,
        mut sums: Option<&mut CellSums>,
    ) -> Result<Parsed> {
        let hash = xxh3_64_with_seed(self.cur(), self.seed);
        let h = if pgno == 1 { 100 } else { 0 };
        let kind = *self.cur().get(h).context("page truncated")?;
        let cells = be16(self.cur(), h + 3)? as usize;
        let interior = matches!(kind, 0x02 | 0x05);
        let pointers = h + if interior { 12 } else { 8 };
        let mut parsed = Parsed {
            page: Page {
                pgno,
                kind: match kind {
                    0x02 | 0x05 => Kind::Interior,
                    0x0a => Kind::IndexLeaf,
                    _ => Kind::Leaf,
                },
                hash,
                lo: if matches!(kind, 0x02 | 0x0a) { 0 } else { 1 },
                hi: 0,
            },
            children: Vec::new(),
            overflow: Vec::new(),
            // Every cell of a table leaf is a row, and every cell of an index b-tree.
            rows: if kind == 0x05 { 0 } else { cells as u64 },
        };
        let mut index_page = IndexPageKeys {
            interior: kind == 0x02,
            ..Default::default()
        };
        if let Some(sums) = &mut sums {
            sums.new_leaf();
        }
        for i in 0..cells {
            let at = be16(self.cur(), pointers + 2 * i)? as usize;
            match kind {
                0x05 => parsed.children.push(be32(self.cur(), at)?),
                0x0d => self.table_leaf_cell(at, i == 0, &mut parsed, sums.as_deref_mut())?,
                0x02 | 0x0a => {
                    let at = if kind == 0x02 {
                        parsed.children.push(be32(self.cur(), at)?);
                        at + 4
                    } else {
                        at
                    };
                    let wanted = i == 0 || i + 1 == cells || kind == 0x02;
                    let keys = keys.filter(|_| page_keys.is_some());
                    let (key, spill) = self.index_cell(at, keys, wanted, kind == 0x02)?;
                    match key {
                        Some((key, hash)) => {
                            index_page.add_cell(&key, hash, (i == 0, i + 1 == cells));
                            if let Some(first) = spill {
                                parsed.overflow.push((first, 0, key));
                            }
                        }
                        None => {
                            if keys.is_some() && (wanted || spill.is_some()) {
                                *page_keys = None; // a key we cannot read: no ranges
                            }
                            if let Some(first) = spill {
                                parsed.overflow.push((first, 0, Vec::new()));
                            }
                        }
                    }
                }
                _ => bail!("page {pgno} is not a b-tree page (type {kind:#04x})"),
            }
        }
        if interior {
            parsed.children.push(be32(self.cur(), h + 8)?);
        }
        if let Some(list) = page_keys
            && matches!(kind, 0x02 | 0x0a)
            && cells > 0
        {
            index_page.add_to(list, pgno);
        }
        Ok(parsed)
    }

    /// A cell of the current table leaf, at `at` (the page's `first`): its rowid bounds the
    /// page, its overflow chain is walked next, and it is summed.
    fn table_leaf_cell(
        &self,
        at: usize,
        first: bool,
        parsed: &mut Parsed,
        sums: Option<&mut CellSums>,
    ) -> Result<()> {
        let (size, n) = varint(self.cur(), at)?;
        let (rowid, m) = varint(self.cur(), at + n)?;
        let rowid = rowid as i64;
        if first {
            parsed.page.lo = rowid;
        }
        parsed.page.hi = rowid;
        let (local, spills) = self.local_size(size, true);
        if spills {
            let first = be32(self.cur(), at + n + m + local)?;
            parsed.overflow.push((first, rowid, Vec::new()));
        }
        if let Some(sums) = sums {
            let cell = self.cell_bytes(at, n + m, (local, spills))?;
            sums.add(rowid, xxh3_64_with_seed(cell, self.seed));
        }
        Ok(())
    }

    /// A cell of the current index b-tree page whose payload starts at `at`: its key (with
    /// `keys`, the key's field count, when `wanted` or the payload spills; None when it cannot
    /// be read) with the hash of the cell's bytes (`hashed`: an interior cell's, else 0), and
    /// its first overflow page.
    fn index_cell(
        &self,
        at: usize,
        keys: Option<usize>,
        wanted: bool,
        hashed: bool,
    ) -> Result<(Option<KeyedCell>, Option<u32>)> {
        let (size, n) = varint(self.cur(), at)?;
        let (local, spills) = self.local_size(size, false);
        let spill = match spills {
            true => Some(be32(self.cur(), at + n + local)?),
            false => None,
        };
        let Some(k) = keys.filter(|_| wanted || spills) else {
            return Ok((None, spill));
        };
        let Some(key) = record_key(self.local_payload(at + n, size), k, self.encoding) else {
            return Ok((None, spill));
        };
        let hash = match hashed {
            true => xxh3_64_with_seed(self.cell_bytes(at, n, (local, spills))?, self.seed),
            false => 0,
        };
        Ok((Some((key, hash)), spill))
    }

    /// The part of a payload of `size` bytes at `at` that is on this page (index b-tree cell).
    fn local_payload(&self, at: usize, size: u64) -> &[u8] {
        let (local, _) = self.local_size(size, false);
        let end = (at + local).min(self.cur().len());
        &self.cur()[at.min(end)..end]
    }

    /// How many bytes of a payload of `size` bytes a cell holds on its own page (of a table
    /// leaf, or of an index b-tree), and whether the rest spills onto overflow pages (SQLite's
    /// file format, section "Cell Payload Overflow Pages").
    pub(super) fn local_size(&self, size: u64, table_leaf: bool) -> (usize, bool) {
        let u = self.usable as u64;
        let x = if table_leaf {
            u - 35
        } else {
            ((u - 12) * 64 / 255) - 23
        };
        if size <= x {
            return (size as usize, false);
        }
        let m = ((u - 12) * 32 / 255) - 23;
        let k = m + ((size - m) % (u - 4));
        ((if k <= x { k } else { m }) as usize, true)
    }
}

/// An index b-tree cell's key and the hash of its bytes (0 where not needed).
type KeyedCell = (Vec<u8>, u64);

/// What [`Pages::parse_page`] found on a page: the page, its children in order, the overflow
/// chains its cells start (first page, owner: a table leaf's rowid, and an index cell's key),
/// and the rows it holds.
pub(super) struct Parsed {
    pub(super) page: Page,
    pub(super) children: Vec<u32>,
    pub(super) overflow: Vec<(u32, i64, Vec<u8>)>,
    pub(super) rows: u64,
}

/// What an index b-tree page gives its table's [`PageKeys`] (see [`Pages::walk_keyed`]).
#[derive(Default)]
struct IndexPageKeys {
    /// An interior page (its cells are kept).
    interior: bool,
    first: Vec<u8>,
    last: Vec<u8>,
    /// An interior page's cells: the hash of each one's bytes, and its key.
    cells: Vec<(u64, Vec<u8>)>,
}

impl IndexPageKeys {
    /// Cell `key` (the page's first and/or last); on an interior page, with its `hash`.
    fn add_cell(&mut self, key: &[u8], hash: u64, (first, last): (bool, bool)) {
        if first {
            self.first = key.to_vec();
        }
        if last {
            self.last = key.to_vec();
        }
        if self.interior {
            self.cells.push((hash, key.to_vec()));
        }
    }

    fn add_to(&self, list: &mut PageKeys, pgno: u32) {
        let cells = self.cells.iter().map(|(hash, key)| (*hash, key.as_slice()));
        list.push_interior(pgno, &self.first, &self.last, cells);
    }
}
