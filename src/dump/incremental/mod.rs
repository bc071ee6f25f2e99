//! Incremental snapshots: a table's rows are read again only where its pages changed.
//!
//! With the previous snapshot's [`PageMap`] (checked by the caller to describe the parent
//! commit, and by [`super::dump_snapshot`] to have the same fingerprint), each table is one of:
//! - unchanged (every page it had still hashes the same): its `1-rows` folder is reused as is;
//! - changed, with rowids SQL can reach: only the rows in the changed ranges are read (those of
//!   the changed leaves' chunks whose rows' sums changed, see [`super::chunksums`], and of the
//!   changed overflow pages' rows), starting
//!   at the previous snapshot's chunk that holds the first of them and stopping where the new
//!   chunks end on a boundary the previous snapshot also had (boundaries depend only on each
//!   row, so the two cuts meet again at the first boundary row after the change); every other
//!   chunk is reused by blob id — whole folders of them by tree id where nothing around them
//!   changed ([`old`]) — and the group folders are placed over the whole sequence again, so the
//!   tree is the one a whole read writes;
//! - a changed WITHOUT ROWID table whose primary key ascends: the same by key ([`keyed`]);
//! - anything else (a descending key, no SQL name for the rowid): read whole, as without a map.

use std::cell::RefCell;

use anyhow::{Result, bail};
use git2::Oid;
use rusqlite::Connection;

mod keyed;
mod old;
mod oldkeyed;
pub use keyed::{PreviousKeyed, read_keyed_in_part};
use old::{OldKind, OldRows};

use super::pages::{PageMap, TableMap};
use super::rows::{Chunk, From, Groups, NextRow, Range, dump_rows_in};
use super::schema::{Key, Table};
use super::stmt::Encoding;
use super::{Format, Sink};

/// The previous snapshot of the database, as the store has it.
/// The previous snapshot's objects are not what its page map says (edited with git, or written
/// by something else): the run reads everything instead of failing (see `job`).
#[derive(Debug, thiserror::Error)]
#[error("the previous snapshot's {0}")]
pub struct NotAsMapped(pub String);

pub trait Previous {
    /// Its page map (already checked to belong to the previous snapshot).
    fn map(&self) -> &PageMap;
    /// The `1-rows` entry of table folder `dir` (None: no such folder).
    fn rows_tree(&self, dir: &str) -> Result<Option<Oid>>;
    /// The entries of tree `oid`, in order: (name, id, whether it is a folder).
    fn tree_entries(&self, oid: Oid) -> Result<Vec<(String, Oid, bool)>>;
    /// The bytes of blobs `oids` (all looked up together), summed.
    fn blob_sizes(&self, oids: &[Oid]) -> Result<u64>;
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
    /// Chunk files taken from the previous snapshot inside partially read tables, one by one.
    pub chunks_reused: u64,
    /// Folders of chunk files taken whole from the previous snapshot (~32 chunks each).
    pub folders_reused: u64,
    /// Chunk files written by reading rows.
    pub chunks_read: u64,
    /// Databases found unchanged by their identity alone, without hashing a page (see
    /// [`crate::dump::identity`]).
    pub databases_unread: u64,
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

/// Whether a changed table can be read in part.
pub fn can_read_in_part(table: &Table) -> bool {
    matches!(table.key, Key::Rowid { .. }) && table.select_from.is_some()
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

/// Put a leaf folder of the previous snapshot (named after its first chunk, `stem`) into `sink`
/// whole, at its place under `table`'s folder.
fn reuse_leaf(
    sink: &mut dyn Sink,
    groups: &mut Groups,
    table: &Table,
    stem: &str,
    oid: Oid,
) -> Result<()> {
    let mut folders = groups.place(stem);
    if folders.last().map(|f| &**f) != Some(stem) {
        bail!("internal error: group folder {stem} does not start a group");
    }
    folders.pop();
    sink.reuse(&super::rows_path(table, &folders, stem), oid, true, 0)
}

/// What a partial read read: the rowid ranges (inclusive; each from a previous chunk's start,
/// or the table's, to the next previous chunk kept, or the end) and the first rowid of each
/// chunk it wrote, in order.
#[derive(Debug, Default)]
pub struct PartRead {
    pub spans: Vec<(i64, i64)>,
    pub firsts: Vec<i64>,
}

/// Read only the rows of `table` in `ranges` (see the module doc; inclusive rowid ranges,
/// sorted and merged) and what a read of them must take with it. Returns the bytes of SQL its
/// rows now take and how many of them were reused (not passed to `sink` as data).
#[allow(clippy::too_many_arguments)]
pub fn read_in_part(
    conn: &Connection,
    table: &Table,
    encoding: Encoding,
    format: Format,
    previous: &dyn Previous,
    old: &TableMap,
    ranges: &[(i64, i64)],
    sink: &mut dyn Sink,
    reuse: &mut Reuse,
    part: &mut PartRead,
) -> Result<(u64, u64)> {
    let mut chunks = OldRows::new(previous, previous.rows_tree(&table.dir)?)?;
    let mut groups = Groups::new(format, false);
    let mut bytes = old.bytes;
    let mut read_bytes = 0u64;
    let mut ri = 0usize;
    let mut statement = None;
    let replaced = Replaced::default();
    while ri < ranges.len() {
        let first_dirty = ranges[ri].0;
        // Reuse what lies before the chunk that holds the first changed rowid: whole leaves
        // when the entry after them is untouched too, else chunk by chunk; read from there
        // (before the first chunk: from the start of the table).
        while let Some(next) = chunks.next()? {
            let (kind, first) = (next.kind, next.first);
            let starts_by_name = Groups::starts_by_name(&next.name, 1);
            let following = chunks.following_first();
            if kind == OldKind::Leaf {
                let whole = following.is_some_and(|f| f < first_dirty)
                    && (groups.is_empty() || starts_by_name);
                if whole {
                    let leaf = chunks.take()?.expect("a next leaf");
                    reuse_leaf(sink, &mut groups, table, &leaf.name, leaf.oid)?;
                    reuse.folders_reused += 1;
                    continue;
                }
                if first > first_dirty {
                    break;
                }
                chunks.open_leaf()?;
                continue;
            }
            if following.is_none_or(|f| f > first_dirty) {
                break;
            }
            let chunk = chunks.take()?.expect("a next chunk");
            reuse_chunk(sink, &mut groups, table, &chunk.name, chunk.oid)?;
            reuse.chunks_reused += 1;
        }
        let from = match chunks.next()? {
            Some(next) if next.first <= first_dirty => next.first,
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
            match replace_before(&mut chunks, &replaced, Some(next)) {
                Ok(at_boundary) => at_boundary,
                Err(e) => {
                    failed = Some(e);
                    true
                }
            }
        };
        let mut new_bytes = 0u64;
        let firsts = &mut part.firsts;
        let mut emit_new = |chunk: Chunk| -> Result<()> {
            new_bytes += chunk.data.len() as u64;
            reuse.chunks_read += 1;
            firsts.extend(chunk.first_rowid);
            super::put_chunk(sink, table, chunk)
        };
        let range = Range {
            from: From::Rowid(from),
            first_ordinal: 0,
            stop: &mut stop,
            statement: Some(&mut statement),
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
        let upto = read
            .stopped_at
            .map_or(i64::MAX, |next| next.saturating_sub(1));
        part.spans.push((from, upto));
        if read.stopped_at.is_none() {
            // Read to the end of the table: every old chunk left is replaced (None: no bound;
            // i64::MAX is a rowid like any other, and a chunk may start there).
            replace_before(&mut chunks, &replaced, None)?;
            ri = ranges.len();
        }
        bytes += new_bytes;
        read_bytes += new_bytes;
    }
    // After the last change: all reused, whole leaves where they still start a group.
    while let Some(next) = chunks.next()? {
        if next.kind == OldKind::Leaf
            && !groups.is_empty()
            && !Groups::starts_by_name(&next.name, 1)
        {
            chunks.open_leaf()?;
            continue;
        }
        let entry = chunks.take()?.expect("a next entry");
        if entry.kind == OldKind::Leaf {
            reuse_leaf(sink, &mut groups, table, &entry.name, entry.oid)?;
            reuse.folders_reused += 1;
        } else {
            reuse_chunk(sink, &mut groups, table, &entry.name, entry.oid)?;
            reuse.chunks_reused += 1;
        }
    }
    let bytes = bytes.saturating_sub(replaced.bytes(previous)?);
    Ok((bytes, bytes.saturating_sub(read_bytes)))
}

/// The previous snapshot's chunks that a partial read replaced, whose bytes leave the table's
/// total. Their sizes are looked up once at the end (a pack entry's header each), rather than
/// hashing every chunk read to recognise the ones that came out the same.
#[derive(Default)]
pub(super) struct Replaced {
    oids: RefCell<Vec<Oid>>,
}

impl Replaced {
    /// The previous snapshot's chunk `oid` is replaced.
    pub(super) fn add(&self, oid: Oid) {
        self.oids.borrow_mut().push(oid);
    }

    /// The bytes of all the replaced chunks.
    pub(super) fn bytes(&self, previous: &dyn Previous) -> Result<u64> {
        previous.blob_sizes(&self.oids.borrow())
    }
}

/// Drop the old chunks that start before rowid `next` (None: all that are left; what was read
/// replaces them, their ids go to `replaced`). Whether an old chunk starts exactly at `next`.
fn replace_before(chunks: &mut OldRows, replaced: &Replaced, next: Option<i64>) -> Result<bool> {
    loop {
        let Some(entry) = chunks.next()? else {
            return Ok(false);
        };
        if let Some(next) = next.filter(|&next| entry.first >= next) {
            return Ok(entry.first == next);
        }
        if entry.kind == OldKind::Leaf {
            chunks.open_leaf()?;
            continue;
        }
        let entry = chunks.take()?.expect("a next chunk");
        replaced.add(entry.oid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoPrevious;

    impl Previous for NoPrevious {
        fn map(&self) -> &PageMap {
            unreachable!()
        }
        fn rows_tree(&self, _: &str) -> Result<Option<Oid>> {
            unreachable!()
        }
        fn tree_entries(&self, _: Oid) -> Result<Vec<(String, Oid, bool)>> {
            unreachable!()
        }
        fn blob_sizes(&self, oids: &[Oid]) -> Result<u64> {
            Ok(7 * oids.len() as u64)
        }
    }

    #[test]
    fn replaced_chunks_count_every_time_they_are_named() {
        let replaced = Replaced::default();
        let oid = Oid::hash_object(git2::ObjectType::Blob, b"x").unwrap();
        replaced.add(oid);
        replaced.add(oid);
        assert_eq!(replaced.bytes(&NoPrevious).unwrap(), 14);
    }
}
