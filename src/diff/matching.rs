//! Matching the rows of the changed chunks of a table: inserted, deleted and updated rows.
//!
//! Rows of the chunks only one side has are matched by key. Rowid tables (the common case, and
//! the big tables) are merged as two streams in rowid order — chunk paths sort in rowid order —
//! so memory holds one chunk per side whatever the size of the change. Tables keyed by primary
//! key values (WITHOUT ROWID) or by nothing (multisets) have no order Rust can reproduce without
//! SQLite's collations, so the older side's changed rows are indexed in a hash map — in parts,
//! by key hash, when they are many, so memory stays bounded there too. Rows whose statement text
//! is the same on both sides (moved between chunks because a neighbour changed) are not changes.

use std::cmp::Ordering;
use std::collections::HashMap;

use anyhow::{Context, Result, anyhow, bail};
use git2::Repository;

use super::chunks::{self, ChunkRef};
use super::keyvalue::{Collation, Encoding, key_bytes};
use super::rows::{self, RowRef, Rows};
use super::shape::{Alignment, Matching, Shape};
use crate::dump::path::hash_bytes;

pub enum Event<'a> {
    Insert(RowRef<'a>),
    Delete(RowRef<'a>),
    Update(RowRef<'a>, RowRef<'a>),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl Counts {
    pub fn add(&mut self, e: &Event) {
        match e {
            Event::Insert(_) => self.inserted += 1,
            Event::Delete(_) => self.deleted += 1,
            Event::Update(..) => self.updated += 1,
        }
    }

    pub fn any(&self) -> bool {
        self.inserted + self.updated + self.deleted > 0
    }
}

/// The rows of one table to compare: the chunks each side has that the other lacks.
pub struct TableRows<'a> {
    pub repo: &'a Repository,
    pub table: &'a str,
    pub from: Option<&'a Shape>,
    pub to: Option<&'a Shape>,
    pub from_chunks: &'a [ChunkRef],
    pub to_chunks: &'a [ChunkRef],
    pub align: &'a Alignment,
}

/// The rows of a list of chunks, one chunk in memory at a time.
struct Cursor<'a> {
    repo: &'a Repository,
    shape: Option<&'a Shape>,
    chunks: &'a [ChunkRef],
    next_chunk: usize,
    rows: Option<Rows>,
    row: usize,
}

impl<'a> Cursor<'a> {
    fn new(repo: &'a Repository, shape: Option<&'a Shape>, chunks: &'a [ChunkRef]) -> Self {
        Cursor {
            repo,
            shape,
            chunks,
            next_chunk: 0,
            rows: None,
            row: 0,
        }
    }

    /// Make a current row available; false at the end.
    fn fill(&mut self) -> Result<bool> {
        loop {
            if let Some(rows) = &self.rows
                && self.row < rows.len()
            {
                return Ok(true);
            }
            let Some(chunk) = self.chunks.get(self.next_chunk) else {
                self.rows = None;
                return Ok(false);
            };
            self.next_chunk += 1;
            self.rows = Some(load(self.repo, self.shape, chunk)?);
            self.row = 0;
        }
    }

    fn current(&self) -> RowRef<'_> {
        self.rows.as_ref().expect("filled").get(self.row)
    }

    fn advance(&mut self) {
        self.row += 1;
    }
}

fn load(repo: &Repository, shape: Option<&Shape>, chunk: &ChunkRef) -> Result<Rows> {
    let shape = shape.ok_or_else(|| anyhow!("row chunk {} without a table", chunk.path))?;
    rows::parse(chunks::read(repo, chunk)?, &shape.prefix, shape.lenient)
        .with_context(|| format!("table {}, row chunk {}", shape.name, chunk.path))
}

/// Call `f` with every inserted, deleted and updated row of the table.
pub fn for_each_change(t: &TableRows, f: &mut dyn FnMut(Event) -> Result<()>) -> Result<()> {
    let mut from = Cursor::new(t.repo, t.from, t.from_chunks);
    let mut to = Cursor::new(t.repo, t.to, t.to_chunks);
    let matching = match (t.from, t.to) {
        (Some(a), Some(b)) if !t.from_chunks.is_empty() && !t.to_chunks.is_empty() => {
            t.align.matching(a, b)
        }
        // One side has nothing to match against: stream the other.
        _ => {
            while from.fill()? {
                f(Event::Delete(from.current()))?;
                from.advance();
            }
            while to.fill()? {
                f(Event::Insert(to.current()))?;
                to.advance();
            }
            return Ok(());
        }
    };
    match matching {
        Matching::Rowid { from: fp, to: tp } => merge(t, &mut from, &mut to, fp, tp, f),
        Matching::Keyed { from, to, compare } => hashed(t, Some(&Keys { from, to, compare }), f),
        Matching::Multiset => hashed(t, None, f),
    }
}

fn rowid(t: &TableRows, row: RowRef, pos: usize) -> Result<i64> {
    let lit = row.value(pos);
    std::str::from_utf8(lit)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            anyhow!(
                "table {}: rowid {:?} is not an integer",
                t.table,
                String::from_utf8_lossy(lit)
            )
        })
}

fn merge(
    t: &TableRows,
    from: &mut Cursor,
    to: &mut Cursor,
    fp: usize,
    tp: usize,
    f: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<()> {
    let mut last = (None::<i64>, None::<i64>);
    let check = |last: &mut Option<i64>, id: i64| -> Result<()> {
        if last.is_some_and(|l| l >= id) {
            bail!("table {}: rows are not in rowid order", t.table);
        }
        *last = Some(id);
        Ok(())
    };
    loop {
        match (from.fill()?, to.fill()?) {
            (false, false) => return Ok(()),
            (true, false) => {
                f(Event::Delete(from.current()))?;
                from.advance();
            }
            (false, true) => {
                f(Event::Insert(to.current()))?;
                to.advance();
            }
            (true, true) => {
                let (a, b) = (from.current(), to.current());
                let (ka, kb) = (rowid(t, a, fp)?, rowid(t, b, tp)?);
                match ka.cmp(&kb) {
                    Ordering::Less => {
                        check(&mut last.0, ka)?;
                        f(Event::Delete(a))?;
                        from.advance();
                    }
                    Ordering::Greater => {
                        check(&mut last.1, kb)?;
                        f(Event::Insert(b))?;
                        to.advance();
                    }
                    Ordering::Equal => {
                        check(&mut last.0, ka)?;
                        check(&mut last.1, kb)?;
                        if !same_row(t.align, a, b) {
                            f(Event::Update(a, b))?;
                        }
                        from.advance();
                        to.advance();
                    }
                }
            }
        }
    }
}

/// How rows are keyed: the key's value positions on each side, and how each pair of values
/// compares (as SQLite compares that key; see [`super::keyvalue`]).
struct Keys {
    from: Vec<usize>,
    to: Vec<usize>,
    compare: Vec<Collation>,
}

/// Changed rows of the older side held in memory at once, at most (in chunk bytes).
const HELD: u64 = 12 << 20;

/// Match by key values (`keys`) or, without keys, as multisets of (aligned) rows. The older
/// side's rows are indexed in memory; when its changed chunks exceed [`HELD`], rows are split by
/// key hash into parts matched one after the other (each part reads all changed chunks again).
fn hashed(
    t: &TableRows,
    keys: Option<&Keys>,
    f: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<()> {
    let odb = t.repo.odb()?;
    let mut bytes = 0u64;
    for chunk in t.from_chunks {
        bytes += odb.read_header(chunk.oid)?.0 as u64;
    }
    let parts = bytes / HELD + 1;
    for part in 0..parts {
        hashed_part(t, keys, (part, parts), f)?;
    }
    Ok(())
}

fn hashed_part(
    t: &TableRows,
    keys: Option<&Keys>,
    (part, parts): (u64, u64),
    f: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<()> {
    let enc = |s: Option<&Shape>| s.map_or(Encoding::Utf8, |s| s.encoding);
    let from_key = |row: RowRef| match keys {
        Some(k) => key_of(row, &k.from, &k.compare, enc(t.from)),
        None => whole_row(t.align, &t.align.from, row),
    };
    let to_key = |row: RowRef| match keys {
        Some(k) => key_of(row, &k.to, &k.compare, enc(t.to)),
        None => whole_row(t.align, &t.align.to, row),
    };
    let mine = |key: &[u8]| parts == 1 || in_part(key, parts) == part;
    // The older rows by number, and a compact index: key hash → first row, chained by `next`.
    const NONE: u32 = u32::MAX;
    let mut older: Vec<Rows> = Vec::with_capacity(t.from_chunks.len());
    let mut at: Vec<(u32, u32)> = Vec::new();
    let mut next: Vec<u32> = Vec::new();
    let mut head: HashMap<u64, u32> = HashMap::new();
    for chunk in t.from_chunks {
        let mut rows = load(t.repo, t.from, chunk)?;
        if parts > 1 {
            rows = rows.filtered(|row| mine(&from_key(row)));
        }
        for r in 0..rows.len() {
            let n = at.len() as u32;
            at.push((older.len() as u32, r as u32));
            next.push(
                head.insert(hash_bytes(&from_key(rows.get(r))), n)
                    .unwrap_or(NONE),
            );
        }
        older.push(rows);
    }
    let row_at = |n: u32| {
        let (c, r) = at[n as usize];
        older[c as usize].get(r as usize)
    };
    let mut matched = vec![false; at.len()];
    let mut to = Cursor::new(t.repo, t.to, t.to_chunks);
    while to.fill()? {
        let b = to.current();
        let key = to_key(b);
        if !mine(&key) {
            to.advance();
            continue;
        }
        // Find an unmatched older row with this key, and unlink it from its chain.
        let h = hash_bytes(&key);
        let (mut prev, mut n) = (NONE, head.get(&h).copied().unwrap_or(NONE));
        while n != NONE && from_key(row_at(n)) != key {
            (prev, n) = (n, next[n as usize]);
        }
        if n == NONE {
            f(Event::Insert(b))?;
        } else {
            let after = next[n as usize];
            match (prev, after) {
                (NONE, NONE) => {
                    head.remove(&h);
                }
                (NONE, _) => {
                    head.insert(h, after);
                }
                _ => next[prev as usize] = after,
            }
            matched[n as usize] = true;
            let a = row_at(n);
            if keys.is_some() && !same_row(t.align, a, b) {
                f(Event::Update(a, b))?;
            }
        }
        to.advance();
    }
    for (n, _) in matched.iter().enumerate().filter(|(_, m)| !**m) {
        f(Event::Delete(row_at(n as u32)))?;
    }
    Ok(())
}

/// Which of `parts` parts a key belongs to (the same on both sides: a fixed hash).
fn in_part(key: &[u8], parts: u64) -> u64 {
    hash_bytes(key).rotate_left(32) % parts
}

/// The row's key as bytes equal exactly when SQLite calls the keys equal.
fn key_of(row: RowRef, positions: &[usize], compare: &[Collation], enc: Encoding) -> Vec<u8> {
    let mut key = Vec::new();
    for (&p, &c) in positions.iter().zip(compare) {
        key_bytes(&mut key, row.value(p), c, enc);
    }
    key
}

/// A multiset member: the statement itself, or the values of the columns both sides have.
fn whole_row(align: &Alignment, positions: &[Option<usize>], row: RowRef) -> Vec<u8> {
    if align.identical {
        return row.text.to_vec();
    }
    let mut key = Vec::new();
    for u in shared(align) {
        if let Some(p) = positions[u] {
            key.extend_from_slice(row.value(p));
        }
        key.push(0);
    }
    key
}

/// The union columns both sides have (the others were added or removed, not changed).
fn shared(align: &Alignment) -> impl Iterator<Item = usize> + '_ {
    (0..align.names.len()).filter(|&u| align.from[u].is_some() && align.to[u].is_some())
}

/// Whether two rows with the same key hold the same values in the columns both sides have.
pub fn same_row(align: &Alignment, a: RowRef, b: RowRef) -> bool {
    if align.identical {
        return a.text == b.text;
    }
    changed_columns(align, a, b).next().is_none()
}

/// The columns both sides have whose values differ: (union column index, old literal, new
/// literal).
pub fn changed_columns<'a>(
    align: &'a Alignment,
    a: RowRef<'a>,
    b: RowRef<'a>,
) -> impl Iterator<Item = (usize, &'a [u8], &'a [u8])> + 'a {
    shared(align).filter_map(move |u| {
        let (old, new) = (align.from[u]?, align.to[u]?);
        let (old, new) = (a.value(old), b.value(new));
        (old != new).then_some((u, old, new))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::shape::{KeyKind, align, analyze};

    fn chunk(repo: &Repository, rows: impl Iterator<Item = String>) -> ChunkRef {
        let data: String = rows.collect();
        ChunkRef {
            oid: repo.blob(data.as_bytes()).unwrap(),
            path: "test".into(),
        }
    }

    /// Events of a WITHOUT ROWID table and of a multiset table, matched in 1 and in 3 parts.
    #[test]
    fn parts_match_like_one() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        for (create, prefix) in [
            (
                "CREATE TABLE t(k TEXT PRIMARY KEY, v) WITHOUT ROWID;\n",
                "INSERT INTO \"t\" VALUES(",
            ),
            (
                "CREATE TABLE t(rowid, oid, _rowid_, k, v);\n",
                "INSERT INTO \"t\" VALUES(0,0,0,",
            ),
        ] {
            let shape = analyze(create.as_bytes()).unwrap();
            let al = align(Some(&shape), Some(&shape));
            let row = |k: i32, v: i32| format!("{prefix}'k{k}',{v});\n");
            let from = [
                chunk(&repo, (0..60).map(|k| row(k, k))),
                chunk(&repo, (60..100).map(|k| row(k, k))),
            ];
            let to = [chunk(
                &repo,
                (50..150).map(|k| row(k, if k % 7 == 0 { -k } else { k })),
            )];
            let t = TableRows {
                repo: &repo,
                table: "t",
                from: Some(&shape),
                to: Some(&shape),
                from_chunks: &from,
                to_chunks: &to,
                align: &al,
            };
            let keys = match shape.key {
                KeyKind::Columns(ref k) => Some(Keys {
                    from: k.clone(),
                    to: k.clone(),
                    compare: vec![Collation::Binary; k.len()],
                }),
                _ => None,
            };
            let keys = keys.as_ref();
            let run = |parts: u64| {
                let mut seen = Vec::new();
                let mut counts = Counts::default();
                for part in 0..parts {
                    hashed_part(&t, keys, (part, parts), &mut |e| {
                        counts.add(&e);
                        seen.push(match e {
                            Event::Insert(b) => format!("+{}", String::from_utf8_lossy(b.text)),
                            Event::Delete(a) => format!("-{}", String::from_utf8_lossy(a.text)),
                            Event::Update(a, b) => format!(
                                "~{}{}",
                                String::from_utf8_lossy(a.text),
                                String::from_utf8_lossy(b.text)
                            ),
                        });
                        Ok(())
                    })
                    .unwrap();
                }
                seen.sort();
                (seen, counts)
            };
            let (one, counts) = run(1);
            assert_eq!(run(3), (one, counts));
            let updated = (50..100).filter(|k| k % 7 == 0 && *k != 0).count() as u64;
            let expected = match keys {
                Some(_) => Counts {
                    inserted: 50,
                    updated,
                    deleted: 50,
                },
                None => Counts {
                    inserted: 50 + updated,
                    updated: 0,
                    deleted: 50 + updated,
                },
            };
            assert_eq!(counts, expected, "{create}");
        }
    }
}
