//! Incremental snapshots: a table's rows are read again only where its pages changed.
//!
//! With the previous snapshot's [`PageMap`] (checked by the caller to describe the parent
//! commit, and by [`super::dump_snapshot`] to have the same fingerprint), each table is one of:
//! - unchanged (every page it had still hashes the same): its `1-rows` folder is reused as is;
//! - changed, with rowids SQL can reach: only the rows in [`changed_ranges`] are read, starting
//!   at the previous snapshot's chunk that holds the first of them and stopping where the new
//!   chunks end on a boundary the previous snapshot also had (boundaries depend only on each
//!   row, so the two cuts meet again at the first boundary row after the change); every other
//!   chunk is reused by blob id, and the group folders are placed over the whole sequence again
//!   — so the tree is the one a whole read writes;
//! - anything else (WITHOUT ROWID, no SQL name for the rowid, chunk names it cannot read): read
//!   whole, as without a map.

use anyhow::Result;
use git2::Oid;
use rusqlite::Connection;

use super::pages::{PageMap, TableMap, changed_ranges};
use super::rows::{Chunk, Groups, Range, dump_rows_in};
use super::schema::{Key, Table};
use super::stmt::Encoding;
use super::{Format, Sink};

/// The previous snapshot of the database, as the store has it.
pub trait Previous {
    /// Its page map (already checked to belong to the previous snapshot).
    fn map(&self) -> &PageMap;
    /// The `1-rows` entry of table folder `dir` (None: no such folder).
    fn rows_tree(&self, dir: &str) -> Result<Option<Oid>>;
    /// The chunk files under `1-rows` of `dir`, in order: (file name, blob id).
    fn chunks(&self, dir: &str) -> Result<Vec<(String, Oid)>>;
    /// The size of a blob in bytes.
    fn blob_size(&self, oid: Oid) -> Result<u64>;
}

/// How much of the database a snapshot read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reuse {
    /// Tables whose rows were taken from the previous snapshot without reading a row.
    pub tables_reused: u64,
    /// Changed tables of which only the changed key ranges were read.
    pub tables_partial: u64,
    /// Tables read whole.
    pub tables_read: u64,
    /// Chunk files taken from the previous snapshot inside partially read tables.
    pub chunks_reused: u64,
    /// Chunk files written by reading rows.
    pub chunks_read: u64,
}

/// An unchanged table's rows: its previous `1-rows` folder. Returns the row count.
pub fn reuse_unchanged(
    previous: &dyn Previous,
    old: &TableMap,
    table: &Table,
    sink: &mut dyn Sink,
) -> Result<u64> {
    if let Some(oid) = previous.rows_tree(&table.dir)? {
        sink.reuse(&["1-tables", &table.dir, "1-rows"], oid, true, old.bytes)?;
    }
    Ok(old.rows)
}

/// The rowid a chunk file name stands for (`path::rowid_chunk_name` backwards).
fn chunk_rowid(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".sql")?;
    if stem.len() != 16 {
        return None;
    }
    let v = u64::from_str_radix(stem, 16).ok()?;
    Some((v ^ (1 << 63)) as i64)
}

/// Whether a changed table can be read in part.
pub fn can_read_in_part(table: &Table) -> bool {
    matches!(table.key, Key::Rowid { .. }) && table.select_from.is_some()
}

/// Read only the changed rows of `table` (see the module doc). Returns the bytes of SQL its
/// rows now take and how many of them were reused (not passed to `sink` as data), or None
/// when the previous chunks cannot be used (then read it whole).
#[allow(clippy::too_many_arguments)]
pub fn read_in_part(
    conn: &Connection,
    table: &Table,
    encoding: Encoding,
    format: Format,
    previous: &dyn Previous,
    old: &TableMap,
    new_pages: &[super::pages::Page],
    sink: &mut dyn Sink,
    reuse: &mut Reuse,
) -> Result<Option<(u64, u64)>> {
    let chunks = previous.chunks(&table.dir)?;
    let mut firsts = Vec::with_capacity(chunks.len());
    for (name, _) in &chunks {
        match chunk_rowid(name) {
            Some(r) if firsts.last().is_none_or(|&l| l < r) => firsts.push(r),
            _ => return Ok(None),
        }
    }
    let ranges = changed_ranges(&old.pages, new_pages);
    let dir = table.dir.as_str();
    let mut groups = Groups::new(format);
    let mut bytes = old.bytes;
    let mut read_bytes = 0u64;
    let mut next_old = 0usize;
    let mut ri = 0usize;
    let emit_old = |groups: &mut Groups, sink: &mut dyn Sink, i: usize| -> Result<()> {
        let (name, oid) = &chunks[i];
        let mut path = vec!["1-tables", dir, "1-rows"];
        let folders = groups.place(name.trim_end_matches(".sql"));
        path.extend(folders.iter().map(String::as_str));
        path.push(name);
        sink.reuse(&path, *oid, false, 0)
    };
    while ri < ranges.len() {
        let first_dirty = ranges[ri].0;
        // Start at the previous chunk that holds the first changed rowid (before the first
        // chunk: at the start of the table). Ranges before `next_old` are done, so k >= next_old.
        let (k, from) = match firsts.partition_point(|&f| f <= first_dirty) {
            0 => (0, i64::MIN),
            n => (n - 1, firsts[n - 1]),
        };
        anyhow::ensure!(k >= next_old, "internal error: changed ranges out of order");
        for i in next_old..k {
            emit_old(&mut groups, sink, i)?;
            reuse.chunks_reused += 1;
        }
        let mut resume_at: Option<usize> = None;
        let mut stop = |_last: i64, next: i64| -> bool {
            while ri < ranges.len() && ranges[ri].1 < next {
                ri += 1;
            }
            if ri < ranges.len() && ranges[ri].0 <= next {
                return false;
            }
            match firsts.binary_search(&next) {
                Ok(j) => {
                    resume_at = Some(j);
                    true
                }
                Err(_) => false,
            }
        };
        let mut new_bytes = 0u64;
        let mut emit_new = |chunk: Chunk| -> Result<()> {
            let mut path = vec!["1-tables", dir, "1-rows"];
            path.extend(chunk.groups.iter().map(String::as_str));
            path.push(&chunk.name);
            new_bytes += chunk.data.len() as u64;
            reuse.chunks_read += 1;
            sink.file(&path, chunk.data)
        };
        let read = dump_rows_in(
            conn,
            table,
            encoding,
            format,
            Some(Range {
                from,
                stop: &mut stop,
            }),
            &mut groups,
            &mut emit_new,
        )?;
        let end = match read.stopped_at {
            Some(_) => resume_at.expect("stopped on a previous chunk"),
            None => {
                ri = ranges.len();
                chunks.len()
            }
        };
        for (_, oid) in &chunks[k..end] {
            bytes = bytes.saturating_sub(previous.blob_size(*oid)?);
        }
        bytes += new_bytes;
        read_bytes += new_bytes;
        next_old = end;
    }
    for i in next_old..chunks.len() {
        emit_old(&mut groups, sink, i)?;
        reuse.chunks_reused += 1;
    }
    Ok(Some((bytes, bytes.saturating_sub(read_bytes))))
}
