//! Matching the rows of the changed chunks of a table: inserted, deleted and updated rows.
//!
//! Rows of the chunks only one side has are matched by key. Rowid tables (the common case, and
//! the big tables) are merged as two streams in rowid order — chunk paths sort in rowid order —
//! so memory holds one chunk per side whatever the size of the change. Tables keyed by primary
//! key values (WITHOUT ROWID) or by nothing (multisets) have no order Rust can reproduce without
//! SQLite's collations, so the older side's changed rows are held in a hash map, which costs
//! memory in proportion to the change in that table only. Rows whose statement text is the same
//! on both sides (moved between chunks because a neighbour changed) are not changes.

use std::cmp::Ordering;
use std::collections::HashMap;

use anyhow::{Context, Result, anyhow, bail};
use git2::Repository;

use super::chunks::{self, ChunkRef};
use super::rows::{self, RowRef, Rows};
use super::shape::{Alignment, Matching, Shape};

const NULL: &[u8] = b"NULL";

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
            if let Some(rows) = &self.rows {
                if self.row < rows.len() {
                    return Ok(true);
                }
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
        Matching::Keyed { from: fk, to: tk } => hashed(t, &mut to, Some((&fk, &tk)), f),
        Matching::Multiset => hashed(t, &mut to, None, f),
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

/// Match by key values (`keys`) or, without keys, as multisets of (aligned) rows.
fn hashed(
    t: &TableRows,
    to: &mut Cursor,
    keys: Option<(&[usize], &[usize])>,
    f: &mut dyn FnMut(Event) -> Result<()>,
) -> Result<()> {
    let mut older: Vec<Rows> = Vec::with_capacity(t.from_chunks.len());
    for chunk in t.from_chunks {
        older.push(load(t.repo, t.from, chunk)?);
    }
    let mut index: HashMap<Vec<u8>, Vec<(u32, u32)>> = HashMap::new();
    for (c, rows) in older.iter().enumerate() {
        for r in 0..rows.len() {
            let row = rows.get(r);
            let key = match keys {
                Some((fk, _)) => key_of(row, fk),
                None => whole_row(t.align, &t.align.from, row),
            };
            index.entry(key).or_default().push((c as u32, r as u32));
        }
    }
    let mut matched: Vec<Vec<bool>> = older.iter().map(|r| vec![false; r.len()]).collect();
    while to.fill()? {
        let b = to.current();
        let key = match keys {
            Some((_, tk)) => key_of(b, tk),
            None => whole_row(t.align, &t.align.to, b),
        };
        match index.get_mut(&key).and_then(|v| v.pop()) {
            Some((c, r)) => {
                matched[c as usize][r as usize] = true;
                let a = older[c as usize].get(r as usize);
                if keys.is_some() && !same_row(t.align, a, b) {
                    f(Event::Update(a, b))?;
                }
            }
            None => f(Event::Insert(b))?,
        }
        to.advance();
    }
    for (c, rows) in older.iter().enumerate() {
        for r in 0..rows.len() {
            if !matched[c][r] {
                f(Event::Delete(rows.get(r)))?;
            }
        }
    }
    Ok(())
}

fn key_of(row: RowRef, positions: &[usize]) -> Vec<u8> {
    let mut key = Vec::new();
    for &p in positions {
        // Literals never hold a raw NUL (the dump writes char(0)), so it separates them.
        key.extend_from_slice(row.value(p));
        key.push(0);
    }
    key
}

/// A multiset member: the statement itself, or its values in union column order.
fn whole_row(align: &Alignment, positions: &[Option<usize>], row: RowRef) -> Vec<u8> {
    if align.identical {
        return row.text.to_vec();
    }
    let mut key = Vec::new();
    for p in positions {
        key.extend_from_slice(p.map_or(NULL, |p| row.value(p)));
        key.push(0);
    }
    key
}

/// Whether two rows with the same key hold the same values (a column one side lacks is NULL).
pub fn same_row(align: &Alignment, a: RowRef, b: RowRef) -> bool {
    if align.identical {
        return a.text == b.text;
    }
    changed_columns(align, a, b).next().is_none()
}

/// The union columns whose values differ: (column index, old literal, new literal).
pub fn changed_columns<'a>(
    align: &'a Alignment,
    a: RowRef<'a>,
    b: RowRef<'a>,
) -> impl Iterator<Item = (usize, &'a [u8], &'a [u8])> + 'a {
    (0..align.names.len()).filter_map(move |u| {
        let old = align.from[u].map_or(NULL, |p| a.value(p));
        let new = align.to[u].map_or(NULL, |p| b.value(p));
        (old != new).then_some((u, old, new))
    })
}
