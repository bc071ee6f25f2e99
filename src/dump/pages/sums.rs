//! Sums of a rowid table's cells over rowid ranges (see [`super::super::chunksums`]).
//!
//! A leaf that changed holds ~50 rows, a chunk file ~30: a page's hash says that one of its rows
//! changed, not which. Each chunk's rows, as the b-tree stores them (rowid and record), are
//! summed as keyed cell hashes when the snapshot is taken; summing the same rowid range again
//! now says whether that chunk's rows are still the same without reading them through SQL.
//! Only the pages on the way to the ranges asked for are read.

use anyhow::{Context, Result, bail};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::Pages;
use crate::dump::btree::{be16, be32, varint};

/// Deeper than any b-tree of a file SQLite can address: a loop in a damaged file.
const MAX_DEPTH: u32 = 40;

impl Pages<'_> {
    /// For each of `ranges` (inclusive rowid ranges, sorted and disjoint), the wrapping sum of
    /// the keyed hashes of the cells of the table b-tree at `rootpage` whose rowid is in it
    /// (0 for a range without rows). A cell's hash covers its whole local bytes: payload size,
    /// rowid, the record's first bytes and the first overflow page's number (a changed overflow
    /// page is a changed range of its own; see [`super::changed_ranges_split`]).
    pub fn range_sums(&mut self, rootpage: u32, ranges: &[(i64, i64)]) -> Result<Vec<u64>> {
        let mut sums = vec![0u64; ranges.len()];
        if !ranges.is_empty() {
            self.sum_page(rootpage, ranges, &mut sums, 0)?;
        }
        if let Some(file) = &mut self.file {
            file.release();
        }
        Ok(sums)
    }

    fn sum_page(
        &mut self,
        pgno: u32,
        ranges: &[(i64, i64)],
        sums: &mut [u64],
        depth: u32,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            bail!("b-tree page {pgno}: deeper than any b-tree (a loop?)");
        }
        self.read_scattered(pgno)?;
        let h = if pgno == 1 { 100 } else { 0 };
        let kind = *self.cur().get(h).context("page truncated")?;
        let cells = be16(self.cur(), h + 3)? as usize;
        match kind {
            0x0d => self.sum_leaf(h + 8, cells, ranges, sums),
            0x05 => {
                let visits = self.children_for(h, cells, ranges)?;
                for (child, start, end) in visits {
                    self.sum_page(child, &ranges[start..end], &mut sums[start..end], depth + 1)?;
                }
                Ok(())
            }
            _ => bail!("page {pgno} is not a table b-tree page (type {kind:#04x})"),
        }
    }

    /// The children of the current interior page (header at `h`, `cells` cells) that hold
    /// rowids of `ranges`, each with the part of `ranges` (start, end) it may hold. Child i holds
    /// the rowids above key i-1 up to key i, the right child those above the last key; the
    /// children to visit are found by binary search, so a few ranges cost a few keys read.
    fn children_for(
        &self,
        h: usize,
        cells: usize,
        ranges: &[(i64, i64)],
    ) -> Result<Vec<(u32, usize, usize)>> {
        let page = self.cur();
        let cell = |i: usize| -> Result<usize> { Ok(be16(page, h + 12 + 2 * i)? as usize) };
        let key = |i: usize| -> Result<i64> {
            if i == cells {
                return Ok(i64::MAX);
            }
            Ok(varint(page, cell(i)? + 4)?.0 as i64)
        };
        let child = |i: usize| -> Result<u32> {
            match i == cells {
                true => be32(page, h + 8),
                false => be32(page, cell(i)?),
            }
        };
        // The first child at or after `from` whose keys reach up to `rowid`.
        let search = |from: usize, rowid: i64| -> Result<usize> {
            let (mut lo, mut hi) = (from, cells);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if key(mid)? < rowid {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            Ok(lo)
        };
        let mut visits = Vec::new();
        let mut i = search(0, ranges[0].0)?;
        while i <= cells {
            let start = match i {
                0 => 0,
                _ => {
                    let above = key(i - 1)?;
                    ranges.partition_point(|r| r.1 <= above)
                }
            };
            let upto = key(i)?;
            let end = ranges.partition_point(|r| r.0 <= upto);
            if start < end {
                visits.push((child(i)?, start, end));
            }
            if end == 0 || ranges[end - 1].1 > upto {
                i += 1; // a range goes on into the next child
            } else if end < ranges.len() {
                i = search(i + 1, ranges[end].0)?;
            } else {
                break;
            }
        }
        Ok(visits)
    }

    /// Add the current leaf's cells (cell pointers at `pointers`) to the ranges holding them.
    fn sum_leaf(
        &self,
        pointers: usize,
        cells: usize,
        ranges: &[(i64, i64)],
        sums: &mut [u64],
    ) -> Result<()> {
        let page = self.cur();
        let mut j = 0usize;
        for i in 0..cells {
            let at = be16(page, pointers + 2 * i)? as usize;
            let (size, n) = varint(page, at)?;
            let (rowid, m) = varint(page, at + n)?;
            let rowid = rowid as i64;
            while j < ranges.len() && ranges[j].1 < rowid {
                j += 1;
            }
            if j == ranges.len() {
                break;
            }
            if ranges[j].0 > rowid {
                continue;
            }
            let cell = self.cell_bytes(at, n + m, self.local_size(size, true))?;
            sums[j] = sums[j].wrapping_add(xxh3_64_with_seed(cell, self.seed));
        }
        Ok(())
    }

    /// The bytes of the current page's cell at `at` that its hash covers: the `head` (payload
    /// size varint, and a table leaf's rowid), the payload's `local` bytes and, when it
    /// `spills`, the first overflow page's number.
    pub(super) fn cell_bytes(
        &self,
        at: usize,
        head: usize,
        (local, spills): (usize, bool),
    ) -> Result<&[u8]> {
        let len = head + local + if spills { 4 } else { 0 };
        self.cur()
            .get(at..at + len)
            .context("cell past the end of its page")
    }
}

/// The sums a walk gathers for a rowid table's chunks (see [`super::What::firsts`]): cells
/// summed by chunk in runs, as the leaves go by.
pub(super) struct CellSums<'a> {
    /// The chunks' first rowids, ascending.
    firsts: &'a [i64],
    /// (chunk, sum of the cells added to it) since the last [`CellSums::take_runs`].
    runs: Vec<(usize, u64)>,
    /// The chunk of the last cell of this leaf (where the next one is looked for first).
    chunk: Option<usize>,
    /// A row lay before the first chunk: the sums cannot be kept.
    pub stray: bool,
}

impl<'a> CellSums<'a> {
    pub fn new(firsts: &'a [i64]) -> CellSums<'a> {
        CellSums {
            firsts,
            runs: Vec::new(),
            chunk: None,
            stray: false,
        }
    }

    /// A leaf begins: its first row's chunk is looked for from scratch.
    pub fn new_leaf(&mut self) {
        self.chunk = None;
    }

    /// Add the cell of row `rowid`, hashed.
    pub fn add(&mut self, rowid: i64, hash: u64) {
        self.chunk = chunk_of(self.firsts, self.chunk, rowid);
        match (self.chunk, self.runs.last_mut()) {
            (Some(c), Some(run)) if run.0 == c => run.1 = run.1.wrapping_add(hash),
            (Some(c), _) => self.runs.push((c, hash)),
            (None, _) => self.stray = true,
        }
    }

    pub fn take_runs(&mut self) -> Vec<(usize, u64)> {
        std::mem::take(&mut self.runs)
    }
}

/// Add cells summed by chunk to the sums of the chunks.
pub(super) fn add_runs(sums: &mut [u64], runs: &[(usize, u64)]) {
    for &(c, sum) in runs {
        sums[c] = sums[c].wrapping_add(sum);
    }
}

/// The chunk (index into `firsts`, ascending first rowids) holding `rowid`, looking from `from`
/// on (rows come in order within a leaf) or by binary search; None before the first chunk.
fn chunk_of(firsts: &[i64], from: Option<usize>, rowid: i64) -> Option<usize> {
    let mut c = match from {
        Some(c) if firsts[c] <= rowid => c,
        _ => firsts.partition_point(|&f| f <= rowid).checked_sub(1)?,
    };
    while c + 1 < firsts.len() && firsts[c + 1] <= rowid {
        c += 1;
    }
    Some(c)
}
