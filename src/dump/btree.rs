//! The rowids of a table read from its b-tree pages (`sqlite_dbpage`), in b-tree order.
//!
//! When `rowid`, `oid` and `_rowid_` are all column names, no SQL reaches a row's real rowid,
//! and a result with the rowid plus 2000 columns passes SQLite's column limit. A plain scan of
//! the table returns rows in b-tree order, so walking the same b-tree (in the same read
//! transaction) gives each row's rowid. The format is SQLite's file format: table b-tree pages
//! are interior (0x05: cells of a child page number and a key, plus a right-most child) or
//! leaves (0x0d: cells of a payload size and the rowid).

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OptionalExtension};

use super::stmt::{Cell, Encoding, RawStmt};

pub struct Rowids<'c> {
    page: RawStmt<'c>,
    /// Pages on the way down: (page bytes, header offset, next cell to visit).
    stack: Vec<(Vec<u8>, usize, usize)>,
}

impl<'c> Rowids<'c> {
    pub fn new(conn: &'c Connection, rootpage: u32) -> Result<Rowids<'c>> {
        let page = RawStmt::prepare(
            conn,
            "SELECT data FROM sqlite_dbpage('main') WHERE pgno = ?1",
            Encoding::Utf8,
        )
        .context("read table b-tree pages (sqlite_dbpage)")?;
        let mut walker = Rowids {
            page,
            stack: Vec::new(),
        };
        walker.push(rootpage)?;
        Ok(walker)
    }

    fn push(&mut self, pgno: u32) -> Result<()> {
        if self.stack.len() > 64 {
            bail!("table b-tree deeper than 64 levels at page {pgno}");
        }
        self.page.reset();
        self.page.bind_i64(1, i64::from(pgno))?;
        if !self.page.step()? {
            bail!("b-tree page {pgno} does not exist");
        }
        let data = match self.page.cell(0) {
            Cell::Blob(b) => b.to_vec(),
            _ => bail!("b-tree page {pgno} is empty"),
        };
        let header = if pgno == 1 { 100 } else { 0 };
        if !matches!(data.get(header), Some(0x05 | 0x0d)) {
            bail!("page {pgno} is not a table b-tree page");
        }
        self.stack.push((data, header, 0));
        Ok(())
    }

    /// The next rowid in b-tree order.
    pub fn next_rowid(&mut self) -> Result<Option<i64>> {
        loop {
            let Some((data, h, next)) = self.stack.last_mut() else {
                return Ok(None);
            };
            let (h, i) = (*h, *next);
            let interior = data[h] == 0x05;
            let cells = be16(data, h + 3)? as usize;
            let pointers = h + if interior { 12 } else { 8 };
            if i < cells {
                *next += 1;
                let at = be16(data, pointers + 2 * i)? as usize;
                if interior {
                    let child = be32(data, at)?;
                    self.push(child)?;
                } else {
                    let (_, n) = varint(data, at)?; // payload size
                    let (rowid, _) = varint(data, at + n)?;
                    return Ok(Some(rowid as i64));
                }
            } else if interior && i == cells {
                *next += 1;
                let right = be32(data, h + 8)?;
                self.push(right)?;
            } else {
                self.stack.pop();
            }
        }
    }
}

/// Interior pages of one level read at most to split a table (128 MiB of 4 KiB pages: the
/// level right above the leaves of a table of 13 million leaves).
const MAX_SPLIT_PAGES: usize = 32768;
/// Leaves per range when the split reaches the pages right above the leaves.
const LEAVES_PER_RANGE: usize = 64;

/// Rowids that split a table into ranges of about [`LEAVES_PER_RANGE`] leaves, ascending: the
/// keys of the interior pages of its b-tree, level by level from the root down to the pages
/// right above the leaves, or to a level of more than [`MAX_SPLIT_PAGES`] pages (each key is
/// the largest rowid of the subtree left of it). Empty for a table of one page. The split is
/// a hint; whatever it is, the ranges between the keys hold every row once.
pub fn split_keys(conn: &Connection, rootpage: u32) -> Result<Vec<i64>> {
    split_keys_within(conn, rootpage, MAX_SPLIT_PAGES)
}

/// [`split_keys`], descending to levels of at most `max_pages` pages.
fn split_keys_within(conn: &Connection, rootpage: u32, max_pages: usize) -> Result<Vec<i64>> {
    // Cached: a dump of thousands of small tables asks once per table.
    let mut page = conn
        .prepare_cached("SELECT data FROM sqlite_dbpage('main') WHERE pgno = ?1")
        .context("read table b-tree pages (sqlite_dbpage)")?;
    // A page's bytes and where its b-tree header starts; None for a leaf.
    let mut interior = |pgno: u32| -> Result<Option<(Vec<u8>, usize)>> {
        let data: Option<Vec<u8>> = page
            .query_row([pgno], |r| r.get(0))
            .optional()
            .with_context(|| format!("read b-tree page {pgno}"))?;
        let Some(data) = data else {
            bail!("b-tree page {pgno} does not exist");
        };
        let header = if pgno == 1 { 100 } else { 0 };
        Ok((data.get(header) == Some(&0x05)).then_some((data, header)))
    };
    // Interior levels, from the leftmost path (all leaves of a b-tree are at one depth).
    let mut depth = 0;
    let mut pgno = rootpage;
    while let Some((data, h)) = interior(pgno)? {
        depth += 1;
        if depth > 64 {
            bail!("table b-tree deeper than 64 levels at page {rootpage}");
        }
        let at = be16(&data, h + 12)? as usize;
        pgno = be32(&data, at)?;
    }
    let mut keys = Vec::new();
    let mut level = vec![rootpage];
    for d in 1..=depth {
        let above_leaves = d == depth;
        let mut children = Vec::new();
        for &pgno in &level {
            let Some((data, h)) = interior(pgno)? else {
                bail!("b-tree page {pgno} is a leaf above other pages");
            };
            let cells = be16(&data, h + 3)? as usize;
            for i in 0..cells {
                let at = be16(&data, h + 12 + 2 * i)? as usize;
                keys.push(varint(&data, at + 4)?.0 as i64);
                if !above_leaves {
                    children.push(be32(&data, at)?);
                }
            }
            if !above_leaves {
                children.push(be32(&data, h + 8)?);
            }
        }
        if above_leaves || children.len() > max_pages {
            keys.sort_unstable();
            keys.dedup();
            if above_leaves {
                keys = keys.into_iter().step_by(LEAVES_PER_RANGE).collect();
            }
            return Ok(keys);
        }
        level = children;
    }
    Ok(keys) // depth 0: the root is a leaf
}

pub(super) fn be16(d: &[u8], at: usize) -> Result<u16> {
    match d.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => bail!("b-tree page truncated"),
    }
}

pub(super) fn be32(d: &[u8], at: usize) -> Result<u32> {
    match d.get(at..at + 4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => bail!("b-tree page truncated"),
    }
}

/// SQLite's varint at `at`: (value, length in bytes).
pub(super) fn varint(d: &[u8], at: usize) -> Result<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let Some(&b) = d.get(at + i) else {
            bail!("b-tree page truncated");
        };
        if i == 8 {
            return Ok(((v << 8) | u64::from(b), 9));
        }
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    unreachable!()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys ascend, one per 64 leaves from the pages right above the leaves, or one per
    /// subtree when a level has too many pages to read.
    #[test]
    fn split_keys_ascend_at_any_depth() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "PRAGMA page_size=512; VACUUM;
             CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 40000)
             INSERT INTO t SELECT x * 5 - 100000, printf('%040d', x) FROM c;
             DELETE FROM t WHERE id % 7 = 0;",
        )
        .unwrap();
        let root: u32 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 't'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let full = split_keys(&conn, root).unwrap();
        let shallow = split_keys_within(&conn, root, 4).unwrap();
        for keys in [&full, &shallow] {
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys do not ascend");
            assert!(keys.len() >= 2);
        }
        // About 5,000 leaves of ~8 rows: one key per 64 of them.
        assert!((30..150).contains(&full.len()), "{} keys", full.len());
        assert_ne!(full, shallow, "a level of more than 4 pages is not read");
    }
}
