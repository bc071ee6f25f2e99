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
//! - a changed WITHOUT ROWID table whose primary key ascends: the same by key ([`keyed`]);
//! - anything else (a descending key, no SQL name for the rowid): read whole, as without a map.

use anyhow::{Result, bail};
use git2::Oid;
use rusqlite::Connection;

mod keyed;
pub use keyed::read_keyed_in_part;

use super::pages::{PageMap, TableMap, changed_ranges};
use super::rows::{Chunk, From, Groups, NextRow, Range, dump_rows_in};
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
    fn chunks<'a>(&'a self, dir: &str) -> Result<Chunks<'a>>;
    /// The size of a blob in bytes.
    fn blob_size(&self, oid: Oid) -> Result<u64>;
}

/// Chunk files of the previous snapshot, read one by one.
pub type Chunks<'a> = Box<dyn Iterator<Item = Result<(String, Oid)>> + 'a>;

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

/// The previous snapshot's chunks of one table, in order, read as they are needed (memory
/// follows the depth of the tree, not the table).
struct OldChunks<'p> {
    files: std::iter::Peekable<Chunks<'p>>,
    /// The next chunk not yet reused or replaced: (first rowid, name, blob id).
    next: Option<(i64, String, Oid)>,
    last: Option<i64>,
}

impl<'p> OldChunks<'p> {
    fn new(files: Chunks<'p>) -> Result<OldChunks<'p>> {
        let mut old = OldChunks {
            files: files.peekable(),
            next: None,
            last: None,
        };
        old.next = old.pull()?;
        Ok(old)
    }

    fn pull(&mut self) -> Result<Option<(i64, String, Oid)>> {
        let Some(file) = self.files.next() else {
            return Ok(None);
        };
        let (name, oid) = file?;
        match chunk_rowid(&name) {
            Some(r) if self.last.is_none_or(|l| l < r) => {
                self.last = Some(r);
                Ok(Some((r, name, oid)))
            }
            _ => bail!(
                "the previous snapshot's chunk {name} is out of order; run `sqlgit snapshot --full` once"
            ),
        }
    }

    /// The first rowid of the chunk after `next`, if any.
    fn following_first(&mut self) -> Option<i64> {
        match self.files.peek() {
            Some(Ok((name, _))) => chunk_rowid(name),
            _ => None,
        }
    }

    /// Take `next` and move on.
    fn take(&mut self) -> Result<Option<(i64, String, Oid)>> {
        let taken = self.next.take();
        self.next = self.pull()?;
        Ok(taken)
    }
}

/// Put a chunk of the previous snapshot into `sink` at its place under `table`'s folder.
fn reuse_chunk(
    sink: &mut dyn Sink,
    groups: &mut Groups,
    table: &Table,
    name: &str,
    oid: Oid,
) -> Result<()> {
    let folders = groups.place(name.trim_end_matches(".sql"));
    sink.reuse(&super::rows_path(table, &folders, name), oid, false, 0)
}

/// Read only the changed rows of `table` (see the module doc). Returns the bytes of SQL its
/// rows now take and how many of them were reused (not passed to `sink` as data).
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
) -> Result<(u64, u64)> {
    let ranges = changed_ranges(&old.pages, new_pages);
    let mut chunks = OldChunks::new(previous.chunks(&table.dir)?)?;
    let mut groups = Groups::new(format);
    let mut bytes = old.bytes;
    let mut read_bytes = 0u64;
    let mut ri = 0usize;
    while ri < ranges.len() {
        let first_dirty = ranges[ri].0;
        // Reuse the chunks before the one that holds the first changed rowid; read from there
        // (before the first chunk: from the start of the table).
        while chunks.next.is_some() && chunks.following_first().is_some_and(|f| f <= first_dirty) {
            let (_, name, oid) = chunks.take()?.expect("a next chunk");
            reuse_chunk(sink, &mut groups, table, &name, oid)?;
            reuse.chunks_reused += 1;
        }
        let from = match &chunks.next {
            Some((first, ..)) if *first <= first_dirty => *first,
            _ => i64::MIN,
        };
        let mut failed: Option<anyhow::Error> = None;
        let mut stop = |row: &NextRow| -> bool {
            let (true, Some(next)) = (row.after_boundary, row.rowid) else {
                return false;
            };
            while ri < ranges.len() && ranges[ri].1 < next {
                ri += 1;
            }
            if ri < ranges.len() && ranges[ri].0 <= next {
                return false;
            }
            // Old chunks that start before `next` are replaced by what was read.
            loop {
                match &chunks.next {
                    Some((first, _, oid)) if *first < next => {
                        match previous.blob_size(*oid) {
                            Ok(size) => bytes = bytes.saturating_sub(size),
                            Err(e) => failed = Some(e),
                        }
                        if let Err(e) = chunks.take() {
                            failed = Some(e);
                            return true;
                        }
                    }
                    Some((first, ..)) => return *first == next,
                    None => return false,
                }
            }
        };
        let mut new_bytes = 0u64;
        let mut emit_new = |chunk: Chunk| -> Result<()> {
            new_bytes += chunk.data.len() as u64;
            reuse.chunks_read += 1;
            super::put_chunk(sink, table, chunk)
        };
        let range = Range {
            from: From::Rowid(from),
            first_ordinal: 0,
            stop: &mut stop,
        };
        let read = dump_rows_in(
            conn,
            table,
            encoding,
            format,
            Some(range),
            &mut groups,
            &mut emit_new,
        )?;
        if let Some(e) = failed {
            return Err(e);
        }
        if read.stopped_at.is_none() {
            // Read to the end of the table: every old chunk left is replaced.
            while let Some((_, _, oid)) = chunks.take()? {
                bytes = bytes.saturating_sub(previous.blob_size(oid)?);
            }
            ri = ranges.len();
        }
        bytes += new_bytes;
        read_bytes += new_bytes;
    }
    while let Some((_, name, oid)) = chunks.take()? {
        reuse_chunk(sink, &mut groups, table, &name, oid)?;
        reuse.chunks_reused += 1;
    }
    Ok((bytes, bytes.saturating_sub(read_bytes)))
}
