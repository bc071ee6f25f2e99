//! Streams a table's rows as INSERT statements, cut into content-defined chunks.
//!
//! A chunk ends after a row when a hash of the row's key, taken modulo [`TARGET_CHUNK`], falls
//! below the row's length: boundaries depend only on each row's own key and size, so inserting,
//! updating or deleting a row changes only its own chunk, and chunks average about
//! [`TARGET_CHUNK`] bytes whatever the row size. Chunks are grouped into folders the same way,
//! so no tree in the snapshot grows with the table.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rusqlite::Connection;

use super::Format;
use super::btree::Rowids;
use super::literal::write_cell;
use super::path::{hash_bytes, mix64, ordinal_chunk_name, rowid_chunk_name};
use super::schema::{Key, RowidFrom, Table};
use super::stmt::{Cell, Encoding, RawStmt};

/// Average chunk size in bytes.
pub const TARGET_CHUNK: u64 = 4096;
/// A chunk is cut here even without a boundary row, so files stay small.
const MAX_CHUNK: usize = 1 << 20;
/// Average number of chunks in a group folder (and of groups in a group of the next level).
const GROUP_SPAN: u64 = 32;
/// Levels of group folders in format 2: 32^5 chunks (about 128 GiB of SQL) under each entry of
/// a table's `1-rows` folder.
pub const GROUP_LEVELS: usize = 5;
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
            let order = table.key_order.as_ref().context("no key to read from")?;
            let sql = format!(
                "{} WHERE ({}) >= {key} ORDER BY {}",
                table.select,
                order.join(","),
                order.join(",")
            );
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
    let mut buf: Vec<u8> = Vec::with_capacity(2 * TARGET_CHUNK as usize);
    let mut key_buf: Vec<u8> = Vec::new();
    let mut chunk_name: Option<String> = None;
    // Format 2: the head of the chunk's statement, and the head without `(`.
    let head = table
        .insert_prefix
        .strip_suffix('(')
        .unwrap_or(&table.insert_prefix);
    let mut chunk_rows = 0u64;
    let mut total = 0u64;
    let mut ordinal = range.as_ref().map_or(0, |r| r.first_ordinal);
    let mut first_key: Vec<u8> = Vec::new();

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
                    rows: total,
                    stopped_at: Some(rowid.unwrap_or(0)),
                });
            }
        }
        first_row = false;
        chunk_ended = false;
        // Where the row's own text starts: its INSERT (format 1) or its `(` (format 2).
        let start = match format {
            Format::V1 => {
                let start = buf.len();
                buf.extend_from_slice(table.insert_prefix.as_bytes());
                start
            }
            Format::V2 => {
                if chunk_rows == 0 {
                    buf.extend_from_slice(head.as_bytes());
                    buf.push(b'\n');
                } else {
                    // The row before this one ends its line: the statement goes on.
                    buf.extend_from_slice(b",\n");
                }
                buf.push(b'(');
                buf.len() - 1
            }
        };
        if let (Key::Rowid { emit: true }, Some(r)) = (table.key, rowid) {
            buf.extend_from_slice(itoa::Buffer::new().format(r).as_bytes());
            if !table.values.is_empty() {
                buf.push(b',');
            }
        }
        for i in table.values.clone() {
            if i > table.values.start {
                buf.push(b',');
            }
            match table.redacted.iter().find(|(at, _)| *at == i) {
                Some(&(_, notnull)) => write_redacted(&mut buf, stmt.cell(i), notnull),
                None => write_cell(&mut buf, stmt.cell(i)),
            }
        }
        let row_len = match format {
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

        let hash = match (table.key, rowid) {
            (Key::Rowid { .. }, Some(rowid)) => {
                if chunk_name.is_none() {
                    chunk_name = Some(rowid_chunk_name(rowid));
                }
                mix64(rowid as u64)
            }
            (Key::Rowid { .. }, None) => bail!("table {}: a row without a rowid", table.name),
            (Key::Columns, _) => {
                if chunk_name.is_none() {
                    first_key.clear();
                    first_key.extend_from_slice(&key_buf);
                    chunk_name = Some(ordinal_chunk_name(ordinal));
                    ordinal += 1;
                }
                hash_bytes(&key_buf)
            }
        };
        chunk_rows += 1;
        total += 1;
        let full =
            buf.len() >= MAX_CHUNK || (format == Format::V2 && chunk_rows >= MAX_STATEMENT_ROWS);
        if hash % TARGET_CHUNK < row_len || full {
            let name = chunk_name.take().expect("chunk has a name");
            flush(
                &mut buf,
                name,
                &first_key,
                groups,
                &mut chunk_rows,
                format,
                emit,
            )?;
            chunk_ended = true;
        }
    }
    if let Some(walker) = &mut btree
        && walker.next_rowid()?.is_some()
    {
        bail!(
            "table {}: its b-tree has more rows than a scan returned",
            table.name
        );
    }
    if let Some(name) = chunk_name.take() {
        flush(
            &mut buf,
            name,
            &first_key,
            groups,
            &mut chunk_rows,
            format,
            emit,
        )?;
    }
    Ok(RowsRead {
        rows: total,
        stopped_at: None,
    })
}

/// The group folders the next chunk goes into, and in WITHOUT ROWID tables (format 2) the
/// chunk's name.
///
/// A rowid table's chunks and folders are named after the first rowid they hold. A WITHOUT
/// ROWID table's keys cannot be spelled as names that sort in the key's order, so its chunks and
/// folders are named by their position in the folder that holds them (`<8 hex digits>`), and
/// its groups start at chunks whose first key hashes to a multiple of the span: a chunk that
/// appears or goes away renames only the entries after it in its own folder, never a whole
/// table. (Format 1 numbers such chunks through the table, and groups them by that name.)
pub struct Groups {
    /// Innermost first (shared with the chunks placed in them: no copy a chunk).
    open: Vec<Option<Arc<str>>>,
    /// Names by position: the next position in each open folder, the innermost (its chunks)
    /// first, then each level's folders in the folder around them. None: names by rowid.
    next: Option<Vec<u64>>,
}

impl Groups {
    /// Groups for a table whose chunks are named by rowid (`keyed` false) or by key.
    pub fn new(format: Format, keyed: bool) -> Groups {
        let levels = match format {
            Format::V1 => 1,
            Format::V2 => GROUP_LEVELS,
        };
        Groups {
            open: vec![None; levels],
            next: (keyed && format == Format::V2).then(|| vec![0; levels + 1]),
        }
    }

    /// Whether no chunk was placed yet (a leaf folder that starts its group only by being the
    /// table's first must stay first to be reused whole).
    pub fn is_empty(&self) -> bool {
        self.open.iter().all(Option::is_none)
    }

    /// Whether a chunk named `stem` starts a group at level `level` (1: the innermost) by its
    /// name alone; the table's first chunk starts every level besides.
    pub fn starts_by_name(stem: &str, level: u32) -> bool {
        let h = hash_bytes(stem.as_bytes()) >> 32;
        h.is_multiple_of(GROUP_SPAN.saturating_pow(level))
    }

    /// Place a chunk named `stem`: a chunk whose name hashes to 0 mod GROUP_SPAN^k starts a new
    /// group at levels 1..=k (so groups nest), the first chunk starts every level. Returns the
    /// folders, outermost first.
    pub fn place(&mut self, stem: &str) -> Vec<Arc<str>> {
        let h = hash_bytes(stem.as_bytes()) >> 32;
        let opened = self.opened(h);
        if opened > 0 {
            let name: Arc<str> = Arc::from(stem);
            self.open[..opened].fill(Some(name));
        }
        self.folders()
    }

    /// Place a chunk given its provisional `name` (a rowid name, or in format 1 a WITHOUT
    /// ROWID table's ordinal) and, in WITHOUT ROWID tables, its first key (the key columns' SQL
    /// literals, each ended by a NUL). Returns its folders, outermost first, and its name.
    pub fn place_chunk(&mut self, name: String, first_key: &[u8]) -> (Vec<Arc<str>>, String) {
        if self.next.is_none() {
            let folders = self.place(name.trim_end_matches(".sql"));
            return (folders, name);
        }
        self.open_by_position(first_key, 1);
        let next = self.next.as_mut().expect("names by position");
        let name = format!("{}.sql", position_name(next[0]));
        next[0] += 1;
        (self.folders(), name)
    }

    /// WITHOUT ROWID tables (format 2): place a whole group folder of level `level` (1: it
    /// holds chunk files) whose first chunk's first key is `first_key` — the chunk after it
    /// must start a group of that level or above. Returns the folders, outermost first, the last
    /// the group's own.
    pub fn place_group(&mut self, level: usize, first_key: &[u8]) -> Result<Vec<Arc<str>>> {
        if self.next.is_none() || level == 0 || level > self.open.len() {
            bail!("internal error: no group folder of level {level} here");
        }
        if self.open_by_position(first_key, level) < level {
            bail!("internal error: a reused group folder does not start a group");
        }
        self.open[..level - 1].fill(None);
        Ok(self.open[level - 1..]
            .iter()
            .rev()
            .flatten()
            .cloned()
            .collect())
    }

    /// Open (name by position) the groups from the outermost one a chunk whose first key is
    /// `first_key` starts down to level `down_to`. Returns how many levels it starts.
    fn open_by_position(&mut self, first_key: &[u8], down_to: usize) -> usize {
        let opened = self.opened(hash_bytes(first_key) >> 32);
        let next = self.next.as_mut().expect("names by position");
        for level in (down_to..=opened).rev() {
            self.open[level - 1] = Some(Arc::from(position_name(next[level]).as_str()));
            next[level] += 1;
            next[level - 1] = 0;
        }
        opened
    }

    /// How many levels of groups a chunk whose first key is `first_key` starts by its key
    /// alone (WITHOUT ROWID tables, format 2; the table's first chunk starts them all).
    pub fn levels_by_key(first_key: &[u8]) -> usize {
        let h = hash_bytes(first_key) >> 32;
        (1..=GROUP_LEVELS)
            .take_while(|&level| h.is_multiple_of(GROUP_SPAN.pow(level as u32)))
            .count()
    }

    /// How many levels a chunk whose hash is `h` opens a new group at (1..=k, or all at the
    /// table's start).
    fn opened(&self, h: u64) -> usize {
        let mut span = 1u64;
        let mut opened = 0;
        for (i, level) in self.open.iter().enumerate() {
            span = span.saturating_mul(GROUP_SPAN);
            if level.is_none() || h.is_multiple_of(span) {
                opened = i + 1;
            }
        }
        opened
    }

    fn folders(&self) -> Vec<Arc<str>> {
        self.open.iter().rev().flatten().cloned().collect()
    }
}

/// The name of the entry at `position` in its folder (WITHOUT ROWID tables, format 2): sorts
/// in position order (a folder never holds 2^32 entries).
fn position_name(position: u64) -> String {
    format!("{position:08x}")
}

fn flush(
    buf: &mut Vec<u8>,
    name: String,
    first_key: &[u8],
    groups: &mut Groups,
    rows: &mut u64,
    format: Format,
    emit: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    if format == Format::V2 {
        buf.extend_from_slice(b";\n");
    }
    let (groups, name) = groups.place_chunk(name, first_key);
    let data = std::mem::replace(buf, super::buffers::take(2 * TARGET_CHUNK as usize));
    emit(Chunk {
        groups,
        name,
        data,
        rows: std::mem::take(rows),
        first_key: first_key.to_vec(),
    })
}

/// A redacted value: NULL where the column allows it, else a fixed value of the same storage
/// class (so NOT NULL and STRICT columns still restore), the same for every row.
fn write_redacted(out: &mut Vec<u8>, value: Cell<'_>, notnull: bool) {
    let placeholder: &[u8] = match value {
        Cell::Null => b"NULL",
        _ if !notnull => b"NULL",
        Cell::Integer(_) => b"0",
        Cell::Real(_) => b"0.0",
        Cell::Text(_) | Cell::Text16 { .. } => b"'(redacted)'",
        Cell::Blob(_) => b"X''",
    };
    out.extend_from_slice(placeholder);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Format 2's nested groups keep every folder small whatever the table size: after the
    /// single-child folders are collapsed (as the tree writer does), no folder of a
    /// 2-million-chunk table (~8 GiB of SQL) holds more than a few hundred entries.
    #[test]
    fn nested_groups_bound_every_folder() {
        let mut groups = Groups::new(Format::V2, false);
        // Entries per folder path (outermost first), and the distinct groups at each level.
        let mut children: HashMap<Vec<String>, std::collections::BTreeSet<String>> = HashMap::new();
        for i in 0..2_000_000i64 {
            let name = rowid_chunk_name(i * 40);
            let stem = name.trim_end_matches(".sql").to_string();
            let path: Vec<String> = groups.place(&stem).iter().map(|g| g.to_string()).collect();
            assert_eq!(path.len(), GROUP_LEVELS);
            for depth in 0..=path.len() {
                let child = path.get(depth).cloned().unwrap_or_else(|| stem.clone());
                children
                    .entry(path[..depth].to_vec())
                    .or_default()
                    .insert(child);
            }
        }
        // Collapsing folders with one child folder: a folder's real fan-out is its own count
        // unless that count is 1 (then it is its child's).
        let widest = children.values().map(|c| c.len()).max().unwrap();
        let top = children[&Vec::new()].len();
        assert!(widest <= 400, "a folder of {widest} entries");
        assert!(top <= 400, "the 1-rows folder has {top} entries");
        let mean_leaf = 2_000_000 / children.keys().filter(|k| k.len() == GROUP_LEVELS).count();
        assert!(
            (16..=64).contains(&mean_leaf),
            "{mean_leaf} chunks per group"
        );
    }

    /// WITHOUT ROWID chunks named by position: paths sort in chunk order, folders stay small,
    /// and a chunk that goes away renames only entries of its own folders (format 1's table-wide
    /// ordinals renamed every later chunk).
    #[test]
    fn keyed_names_sort_and_stay_local() {
        let keys: Vec<Vec<u8>> = (0..300_000u64)
            .map(|i| format!("'k{:012}'\0", mix64(i) % 1_000_000_000_000).into_bytes())
            .collect();
        let paths = |keys: &[Vec<u8>]| -> Vec<Vec<String>> {
            let mut groups = Groups::new(Format::V2, true);
            keys.iter()
                .enumerate()
                .map(|(i, k)| {
                    let (folders, name) = groups.place_chunk(ordinal_chunk_name(i as u64), k);
                    let mut path: Vec<String> = folders.iter().map(|f| f.to_string()).collect();
                    path.push(name);
                    path
                })
                .collect()
        };
        let before = paths(&keys);
        assert!(before.windows(2).all(|w| w[0] < w[1]), "paths out of order");
        let mut children: HashMap<Vec<String>, std::collections::BTreeSet<String>> = HashMap::new();
        for p in &before {
            for depth in 0..p.len() {
                children
                    .entry(p[..depth].to_vec())
                    .or_default()
                    .insert(p[depth].clone());
            }
        }
        let widest = children.values().map(|c| c.len()).max().unwrap();
        assert!(widest <= 400, "a folder of {widest} entries");
        for gone in [0usize, 1, 150_000, 299_999] {
            let mut fewer = keys.clone();
            fewer.remove(gone);
            let after = paths(&fewer);
            let kept: Vec<&Vec<String>> = before
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != gone)
                .map(|(_, p)| p)
                .collect();
            let renamed = kept.iter().zip(&after).filter(|(a, b)| **a != *b).count();
            assert!(
                renamed <= 400,
                "removing chunk {gone} renamed {renamed} chunks"
            );
        }
    }
}
