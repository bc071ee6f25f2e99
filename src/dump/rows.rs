//! Streams a table's rows as INSERT statements, cut into content-defined chunks.
//!
//! A chunk ends after a row when a hash of the row's key falls below the row's length, taken
//! modulo a number that depends on how long the chunk already is: large while it is shorter than
//! [`NORMAL_CHUNK`], small after (normalized content-defined chunking, as FastCDC does it). So
//! chunks are about [`NORMAL_CHUNK`] bytes whatever the row size, seldom much shorter or longer,
//! and an update rewrites about that much (one threshold for every row, as sqlgit used before,
//! spreads chunk sizes exponentially: the chunk that holds a random row is then twice the mean
//! on average). Where chunks
//! end depends only on the rows since the chunk's start: inserting, updating or deleting a row
//! changes its own chunk and at most the next few, until a chunk ends on a row where the
//! previous cut also ended one; from there on the two cuts are the same. Chunks are grouped into
//! folders by their names, so no tree in the snapshot grows with the table.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rusqlite::Connection;

use super::Format;
use super::btree::Rowids;
pub use super::groups::{GROUP_LEVELS, Groups};
use super::literal::{write_blob, write_cell, write_text};
use super::path::{hash_bytes, mix64, ordinal_chunk_name, rowid_chunk_name};
use super::schema::{Key, Placeholder, RowidFrom, Table};
use super::stmt::{Cell, Encoding, RawStmt};

/// Usual chunk size in bytes: chunks shorter than this end after a row with a quarter of the
/// row's length in `1/NORMAL_CHUNK` odds, longer ones with four times.
pub const NORMAL_CHUNK: u64 = 4096;
/// How chunks are cut, in the page map's fingerprint: a map written under another rule describes
/// chunks this one would not cut, so it is not used (the run reads everything once).
pub const CHUNKING: &str = "normalized 4096, groups of 32";
/// In which order rows are read, in the page map's fingerprint. Earlier builds read a WITHOUT
/// ROWID table with a covering index in that index's order: their chunks hold rows out of key
/// order, which a read by key must not be merged with, so their maps are not used (the first
/// run reads every table whole and writes the chunks in key order).
pub const ROW_ORDER: &str = "key order by ORDER BY";
/// A chunk is cut here even without a boundary row, so files stay small.
const MAX_CHUNK: usize = 1 << 20;
/// Format 2: a statement also ends after this many rows (SQLite parses long VALUES lists fine;
/// this bounds the parser's memory for tables of tiny rows).
const MAX_STATEMENT_ROWS: u64 = 1000;

/// One finished chunk of INSERT statements.
pub struct Chunk {
    /// Group folder names, outermost first (see [`Groups`]): one in format 1,
    /// [`GROUP_LEVELS`] in format 2.
    pub groups: Vec<Arc<str>>,
    /// File name: `<16 hex digits>.sql`, or `<8 hex digits>.sql` (see [`Groups`]).
    pub name: String,
    pub data: Vec<u8>,
    pub rows: u64,
    /// WITHOUT ROWID tables: the first row's key columns as SQL literals, each ended by a NUL.
    pub first_key: Vec<u8>,
    /// Rowid tables: the first row's rowid.
    pub first_rowid: Option<i64>,
}

/// Stream `table`'s rows, calling `emit` for each chunk in order. Returns the row count.
pub fn dump_rows(
    conn: &Connection,
    table: &Table,
    encoding: Encoding,
    format: Format,
    emit: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<u64> {
    let mut groups = Groups::new(format, table.key == Key::Columns);
    let read = dump_rows_in(conn, table, encoding, format, None, &mut groups, emit)?;
    Ok(read.rows)
}

/// Where a partial read starts.
pub enum From {
    /// A rowid table, from this rowid on.
    Rowid(i64),
    /// A WITHOUT ROWID table (`table.key_order` set), from this key on: the key's values as a
    /// parenthesized list of SQL literals.
    Key(String),
    /// The start of the table.
    Start,
}

/// The row a partial read is about to add.
pub struct NextRow<'a> {
    /// Its rowid (rowid tables).
    pub rowid: Option<i64>,
    /// Its key columns as SQL literals, each followed by a NUL (WITHOUT ROWID tables).
    pub key: &'a [u8],
    /// A chunk ended with the row before it.
    pub after_boundary: bool,
}

/// A partial read: where it starts and where it may stop.
pub struct Range<'a, 'c> {
    /// A chunk of the previous snapshot starts there (or the table does), so the chunks cut
    /// from here on are the ones a whole read would cut.
    pub from: From,
    /// The ordinal of the first chunk (WITHOUT ROWID tables name chunks by position).
    pub first_ordinal: u64,
    /// Called before every row but the first: true stops before it (the previous snapshot's
    /// chunks from that row on are still right). Only stop right after a boundary.
    pub stop: &'a mut dyn FnMut(&NextRow) -> bool,
    /// Reads from a rowid: the statement, kept from one range to the next (prepared here at
    /// the first; a scattered change reads thousands of ranges of one table).
    pub statement: Option<&'a mut Option<RawStmt<'c>>>,
}

/// What [`dump_rows_in`] read.
pub struct RowsRead {
    pub rows: u64,
    /// The rowid it stopped before, or None at the end of the table.
    pub stopped_at: Option<i64>,
}

/// [`dump_rows`] with the group folders given (a partial read continues a table's groups), and
/// optionally only a [`Range`] of a rowid table (`table.select_from` must be set).
pub fn dump_rows_in<'c>(
    conn: &'c Connection,
    table: &Table,
    encoding: Encoding,
    format: Format,
    mut range: Option<Range<'_, 'c>>,
    groups: &mut Groups,
    emit: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<RowsRead> {
    let context = || format!("read table {}", table.name);
    let mut owned: RawStmt;
    // Without a slot of the caller's, the statement lives for this read only.
    let mut own_slot = None;
    let stmt: &mut RawStmt = match range.as_mut().map(|r| (&r.from, r.statement.take())) {
        None | Some((From::Start, _)) => {
            owned = RawStmt::prepare(conn, &table.select, encoding).with_context(context)?;
            &mut owned
        }
        Some((From::Rowid(rowid), slot)) => {
            let sql = table
                .select_from
                .as_deref()
                .context("no rowid to read from")?;
            let slot = slot.unwrap_or(&mut own_slot);
            let stmt = match slot {
                Some(kept) => {
                    kept.reset();
                    kept
                }
                None => slot.insert(RawStmt::prepare(conn, sql, encoding).with_context(context)?),
            };
            stmt.bind_i64(1, *rowid)?;
            stmt
        }
        Some((From::Key(key), _)) => {
            let (head, tail) = table
                .select_from_key
                .as_ref()
                .context("no key to read from")?;
            let sql = format!("{head}{key}{tail}");
            owned = RawStmt::prepare(conn, &sql, encoding).with_context(context)?;
            &mut owned
        }
    };
    let mut btree = match (table.rowid_from, &range) {
        (RowidFrom::Btree { rootpage }, None) => {
            Some(Rowids::new(conn, rootpage).with_context(context)?)
        }
        (RowidFrom::Btree { .. }, Some(_)) => {
            bail!("table {}: no rowid to read from", table.name)
        }
        _ => None,
    };
    // A chunk ended with the previous row (a partial read may stop after it).
    let mut chunk_ended = false;
    let mut first_row = true;
    let mut key_buf: Vec<u8> = Vec::new();
    let first_ordinal = range.as_ref().map_or(0, |r| r.first_ordinal);
    let mut chunker = Chunker::new(table, format, groups, first_ordinal);

    while stmt.step().with_context(context)? {
        let rowid = match (table.rowid_from, &mut btree) {
            (RowidFrom::Select(at), _) => stmt.cell(at).as_i64(),
            (RowidFrom::Btree { .. }, Some(walker)) => match walker.next_rowid()? {
                Some(r) => Some(r),
                None => bail!("table {}: more rows than its b-tree has", table.name),
            },
            _ => None,
        };
        if let Key::Columns = table.key {
            key_buf.clear();
            for &i in &table.key_columns {
                write_cell(&mut key_buf, stmt.cell(i));
                key_buf.push(0);
            }
        }
        if let Some(range) = &mut range
            && !first_row
        {
            let next = NextRow {
                rowid,
                key: &key_buf,
                after_boundary: chunk_ended,
            };
            if (range.stop)(&next) {
                return Ok(RowsRead {
                    rows: chunker.total,
                    stopped_at: Some(rowid.unwrap_or(0)),
                });
            }
        }
        first_row = false;
        let start = chunker.begin_row();
        write_row(&mut chunker.buf, stmt, table, rowid);
        chunk_ended = chunker.end_row(start, rowid, &key_buf, emit)?;
    }
    if let Some(walker) = &mut btree
        && walker.next_rowid()?.is_some()
    {
        bail!(
            "table {}: its b-tree has more rows than a scan returned",
            table.name
        );
    }
    Ok(RowsRead {
        rows: chunker.finish(emit)?,
        stopped_at: None,
    })
}

/// A row's values as the INSERT lists them (the rowid first where the dump writes it), without
/// what surrounds them in its statement.
pub(super) fn write_row(out: &mut Vec<u8>, stmt: &RawStmt, table: &Table, rowid: Option<i64>) {
    if let (Key::Rowid { emit: true }, Some(r)) = (table.key, rowid) {
        out.extend_from_slice(itoa::Buffer::new().format(r).as_bytes());
        if !table.values.is_empty() {
            out.push(b',');
        }
    }
    for i in table.values.clone() {
        if i > table.values.start {
            out.push(b',');
        }
        match table.redacted.iter().find(|(at, _)| *at == i) {
            Some(&(_, placeholder)) => {
                let row = (placeholder == Placeholder::PerRow).then(|| row_tag(stmt, table, rowid));
                write_redacted(out, stmt.cell(i), placeholder, row)
            }
            None => {
                let cell = stmt.cell(i);
                let at = i - table.values.start;
                if table.affinities[at].converts(&cell) {
                    table.converted.note(at, &cell);
                }
                write_cell(out, cell)
            }
        }
    }
}

/// Cuts a table's rows, in order, into chunks: writes each row's statement text around its
/// values and ends a chunk after a boundary row (or a full chunk).
pub(super) struct Chunker<'a> {
    table: &'a Table,
    format: Format,
    groups: &'a mut Groups,
    /// Format 2: the head of the chunk's statement without its `(`.
    head: &'a str,
    /// The chunk being written. It stays in this thread's cache; a finished chunk leaves in a
    /// copy (writing into a buffer that another core read last costs a transfer per line).
    pub buf: Vec<u8>,
    chunk_name: Option<String>,
    first_rowid: Option<i64>,
    chunk_rows: u64,
    first_key: Vec<u8>,
    ordinal: u64,
    /// Rows written so far.
    pub total: u64,
}

impl<'a> Chunker<'a> {
    pub fn new(
        table: &'a Table,
        format: Format,
        groups: &'a mut Groups,
        first_ordinal: u64,
    ) -> Chunker<'a> {
        let head = table
            .insert_prefix
            .strip_suffix('(')
            .unwrap_or(&table.insert_prefix);
        Chunker {
            table,
            format,
            groups,
            head,
            buf: Vec::with_capacity(2 * NORMAL_CHUNK as usize),
            chunk_name: None,
            first_rowid: None,
            chunk_rows: 0,
            first_key: Vec::new(),
            ordinal: first_ordinal,
            total: 0,
        }
    }

    /// Write what comes before a row's values; returns where the row's own text starts (its
    /// INSERT in format 1, its `(` in format 2). The values go into `buf` next.
    pub fn begin_row(&mut self) -> usize {
        let buf = &mut self.buf;
        match self.format {
            Format::V1 => {
                let start = buf.len();
                buf.extend_from_slice(self.table.insert_prefix.as_bytes());
                start
            }
            Format::V2 => {
                if self.chunk_rows == 0 {
                    buf.extend_from_slice(self.head.as_bytes());
                    buf.push(b'\n');
                } else {
                    // The row before this one ends its line: the statement goes on.
                    buf.extend_from_slice(b",\n");
                }
                buf.push(b'(');
                buf.len() - 1
            }
        }
    }

    /// End the row begun at `start`; true when a chunk ended with it.
    pub fn end_row(
        &mut self,
        start: usize,
        rowid: Option<i64>,
        key: &[u8],
        emit: &mut dyn FnMut(Chunk) -> Result<()>,
    ) -> Result<bool> {
        let buf = &mut self.buf;
        let row_len = match self.format {
            Format::V1 => {
                buf.extend_from_slice(b");\n");
                (buf.len() - start) as u64
            }
            // `(…)` and the two bytes that end its line, whichever they are.
            Format::V2 => {
                buf.push(b')');
                (buf.len() - start + 2) as u64
            }
        };
        let hash = match (self.table.key, rowid) {
            (Key::Rowid { .. }, Some(rowid)) => {
                if self.chunk_name.is_none() {
                    self.chunk_name = Some(rowid_chunk_name(rowid));
                    self.first_rowid = Some(rowid);
                }
                mix64(rowid as u64)
            }
            (Key::Rowid { .. }, None) => bail!("table {}: a row without a rowid", self.table.name),
            (Key::Columns, _) => {
                if self.chunk_name.is_none() {
                    self.first_key.clear();
                    self.first_key.extend_from_slice(key);
                    self.chunk_name = Some(ordinal_chunk_name(self.ordinal));
                    self.ordinal += 1;
                }
                hash_bytes(key)
            }
        };
        self.chunk_rows += 1;
        self.total += 1;
        let full = buf.len() >= MAX_CHUNK
            || (self.format == Format::V2 && self.chunk_rows >= MAX_STATEMENT_ROWS);
        if ends_chunk(hash, row_len, buf.len() as u64) || full {
            self.flush(emit)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Emit the last chunk; the number of rows written.
    pub fn finish(mut self, emit: &mut dyn FnMut(Chunk) -> Result<()>) -> Result<u64> {
        if self.chunk_name.is_some() {
            self.flush(emit)?;
        }
        Ok(self.total)
    }

    fn flush(&mut self, emit: &mut dyn FnMut(Chunk) -> Result<()>) -> Result<()> {
        let name = self.chunk_name.take().expect("chunk has a name");
        if self.format == Format::V2 {
            self.buf.extend_from_slice(b";\n");
        }
        let (groups, name) = self.groups.place_chunk(name, &self.first_key);
        // A chunk of normal size is copied out (the row buffer keeps its room for the next);
        // one huge row (a 100 MiB BLOB is 200 MiB of hex) is handed over, never held twice.
        let data = if self.buf.len() > MAX_CHUNK {
            std::mem::replace(&mut self.buf, Vec::with_capacity(2 * NORMAL_CHUNK as usize))
        } else {
            let mut data = super::buffers::take(self.buf.len());
            data.extend_from_slice(&self.buf);
            self.buf.clear();
            data
        };
        emit(Chunk {
            groups,
            name,
            data,
            rows: std::mem::take(&mut self.chunk_rows),
            first_key: self.first_key.clone(),
            first_rowid: self.first_rowid.take(),
        })
    }
}

/// Whether a row of `row_len` bytes whose key hashes to `hash` ends a chunk that holds `len`
/// bytes with it.
fn ends_chunk(hash: u64, row_len: u64, len: u64) -> bool {
    if len < NORMAL_CHUNK {
        hash % (4 * NORMAL_CHUNK) < row_len
    } else {
        hash % (NORMAL_CHUNK / 4) < row_len
    }
}

/// What tells a row from the others of its table: its rowid, or (WITHOUT ROWID) a hash of its
/// key's values.
fn row_tag(stmt: &RawStmt, table: &Table, rowid: Option<i64>) -> i64 {
    if let Some(rowid) = rowid {
        return rowid;
    }
    let mut key = Vec::new();
    for &i in &table.key_columns {
        write_cell(&mut key, stmt.cell(i));
        key.push(0);
    }
    hash_bytes(&key) as i64
}

/// A redacted value: NULL where the column allows it, else a value of the same storage class
/// (so NOT NULL and STRICT columns still restore): the same for every row, or made from the
/// row's `row` tag where a UNIQUE index needs them to differ (`(redacted 42)`, 42, 42.0).
fn write_redacted(out: &mut Vec<u8>, value: Cell<'_>, placeholder: Placeholder, row: Option<i64>) {
    if matches!(value, Cell::Null) || placeholder == Placeholder::Null {
        out.extend_from_slice(b"NULL");
        return;
    }
    let Some(row) = row else {
        let fixed: &[u8] = match value {
            Cell::Integer(_) => b"0",
            Cell::Real(_) => b"0.0",
            Cell::Blob(_) => b"X''",
            _ => b"'(redacted)'",
        };
        out.extend_from_slice(fixed);
        return;
    };
    let text = format!("(redacted {row})");
    match value {
        Cell::Integer(_) => out.extend_from_slice(row.to_string().as_bytes()),
        Cell::Real(_) => out.extend_from_slice(format!("{row}.0").as_bytes()),
        Cell::Blob(_) => write_blob(out, text.as_bytes()),
        _ => write_text(out, text.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where chunks end is part of every repository's history: a map written under another rule
    /// must not be used, which [`CHUNKING`] (in the map's fingerprint) tells. If this fails, the
    /// rule changed: change `CHUNKING` with it, then the expected values here.
    #[test]
    fn the_chunking_rule_is_named_by_chunking() {
        let (mut len, mut ends, mut sum) = (0u64, 0u64, 0u64);
        for rowid in 0..200_000u64 {
            let row_len = 20 + mix64(rowid ^ 0x5555) % 300;
            len += row_len;
            if ends_chunk(mix64(rowid), row_len, len) {
                sum = mix64(sum ^ rowid);
                ends += 1;
                len = 0;
            }
        }
        let stems = (0..100_000i64).map(|i| rowid_chunk_name(i * 40));
        let groups: Vec<usize> = (1..=2)
            .map(|level| {
                stems
                    .clone()
                    .filter(|name| Groups::starts_by_name(name.trim_end_matches(".sql"), level))
                    .count()
            })
            .collect();
        assert_eq!(
            (CHUNKING, ends, sum, groups),
            (
                "normalized 4096, groups of 32",
                7736,
                5679121807601674049,
                vec![3218, 105]
            )
        );
    }
}
