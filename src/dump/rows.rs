//! Streams a table's rows as INSERT statements, cut into content-defined chunks.
//!
//! A chunk ends after a row when a hash of the row's key, taken modulo [`TARGET_CHUNK`], falls
//! below the row's length: boundaries depend only on each row's own key and size, so inserting,
//! updating or deleting a row changes only its own chunk, and chunks average about
//! [`TARGET_CHUNK`] bytes whatever the row size. Chunks are grouped into folders the same way,
//! so no tree in the snapshot grows with the table.

use anyhow::{Context, Result, bail};
use rusqlite::Connection;

use super::btree::Rowids;
use super::literal::write_cell;
use super::path::{hash_bytes, mix64, ordinal_chunk_name, rowid_chunk_name};
use super::schema::{Key, RowidFrom, Table};
use super::stmt::{Cell, Encoding, RawStmt};

/// Average chunk size in bytes.
pub const TARGET_CHUNK: u64 = 4096;
/// A chunk is cut here even without a boundary row, so files stay small.
const MAX_CHUNK: usize = 1 << 20;
/// Average number of chunks in a group folder.
const GROUP_SPAN: u64 = 32;

/// One finished chunk of INSERT statements.
pub struct Chunk {
    /// Group folder name (the first chunk name of the group, without `.sql`).
    pub group: String,
    /// File name, `<16 hex digits>.sql`.
    pub name: String,
    pub data: Vec<u8>,
    pub rows: u64,
}

/// Stream `table`'s rows, calling `emit` for each chunk in order. Returns the row count.
pub fn dump_rows(
    conn: &Connection,
    table: &Table,
    encoding: Encoding,
    emit: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<u64> {
    let context = || format!("read table {}", table.name);
    let mut stmt = RawStmt::prepare(conn, &table.select, encoding).with_context(context)?;
    let mut btree = match table.rowid_from {
        RowidFrom::Btree { rootpage } => Some(Rowids::new(conn, rootpage).with_context(context)?),
        _ => None,
    };

    let mut buf: Vec<u8> = Vec::with_capacity(2 * TARGET_CHUNK as usize);
    let mut key_buf: Vec<u8> = Vec::new();
    let mut chunk_name: Option<String> = None;
    let mut group: Option<String> = None;
    let mut chunk_rows = 0u64;
    let mut total = 0u64;
    let mut ordinal = 0u64;

    while stmt.step().with_context(context)? {
        let rowid = match (table.rowid_from, &mut btree) {
            (RowidFrom::Select(at), _) => stmt.cell(at).as_i64(),
            (RowidFrom::Btree { .. }, Some(walker)) => match walker.next_rowid()? {
                Some(r) => Some(r),
                None => bail!("table {}: more rows than its b-tree has", table.name),
            },
            _ => None,
        };
        let start = buf.len();
        buf.extend_from_slice(table.insert_prefix.as_bytes());
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
        buf.extend_from_slice(b");\n");
        let row_len = (buf.len() - start) as u64;

        let hash = match (table.key, rowid) {
            (Key::Rowid { .. }, Some(rowid)) => {
                if chunk_name.is_none() {
                    chunk_name = Some(rowid_chunk_name(rowid));
                }
                mix64(rowid as u64)
            }
            (Key::Rowid { .. }, None) => bail!("table {}: a row without a rowid", table.name),
            (Key::Columns, _) => {
                key_buf.clear();
                for &i in &table.key_columns {
                    write_cell(&mut key_buf, stmt.cell(i));
                    key_buf.push(0);
                }
                if chunk_name.is_none() {
                    chunk_name = Some(ordinal_chunk_name(ordinal));
                    ordinal += 1;
                }
                hash_bytes(&key_buf)
            }
        };
        chunk_rows += 1;
        total += 1;
        if hash % TARGET_CHUNK < row_len || buf.len() >= MAX_CHUNK {
            let name = chunk_name.take().expect("chunk has a name");
            flush(&mut buf, name, &mut group, &mut chunk_rows, emit)?;
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
        flush(&mut buf, name, &mut group, &mut chunk_rows, emit)?;
    }
    Ok(total)
}

fn flush(
    buf: &mut Vec<u8>,
    name: String,
    group: &mut Option<String>,
    rows: &mut u64,
    emit: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    let stem = name.trim_end_matches(".sql");
    // A chunk whose name hashes to 0 (mod GROUP_SPAN) starts a new group.
    if group.is_none() || (hash_bytes(stem.as_bytes()) >> 32).is_multiple_of(GROUP_SPAN) {
        *group = Some(stem.to_string());
    }
    let data = std::mem::replace(buf, super::buffers::take(2 * TARGET_CHUNK as usize));
    emit(Chunk {
        group: group.clone().expect("group set above"),
        name,
        data,
        rows: std::mem::take(rows),
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
