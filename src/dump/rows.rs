//! Streams a table's rows as INSERT statements, cut into content-defined chunks.
//!
//! A chunk ends after a row when a hash of the row's key, taken modulo [`TARGET_CHUNK`], falls
//! below the row's length: boundaries depend only on each row's own key and size, so inserting,
//! updating or deleting a row changes only its own chunk, and chunks average about
//! [`TARGET_CHUNK`] bytes whatever the row size. Chunks are grouped into folders the same way,
//! so no tree in the snapshot grows with the table.

use anyhow::{Context, Result};
use rusqlite::Connection;

use super::literal::write_value;
use super::path::{hash_bytes, mix64, ordinal_chunk_name, rowid_chunk_name};
use super::schema::{Key, Table};

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
    emit: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<u64> {
    let mut stmt = conn
        .prepare(&table.select)
        .with_context(|| format!("read table {}", table.name))?;
    let ncols = stmt.column_count();
    let mut rows = stmt.query([])?;
    let first_value = match table.key {
        Key::Rowid { emit: true } | Key::Columns => 0,
        Key::Rowid { emit: false } => 1,
    };

    let mut buf: Vec<u8> = Vec::with_capacity(2 * TARGET_CHUNK as usize);
    let mut key_buf: Vec<u8> = Vec::new();
    let mut chunk_name: Option<String> = None;
    let mut group: Option<String> = None;
    let mut chunk_rows = 0u64;
    let mut total = 0u64;
    let mut ordinal = 0u64;

    while let Some(row) = rows
        .next()
        .with_context(|| format!("read table {}", table.name))?
    {
        let start = buf.len();
        buf.extend_from_slice(table.insert_prefix.as_bytes());
        for i in first_value..ncols {
            if i > first_value {
                buf.push(b',');
            }
            match table.redacted.iter().find(|(at, _)| *at == i) {
                Some(&(_, notnull)) => write_redacted(&mut buf, row.get_ref(i)?, notnull),
                None => write_value(&mut buf, row.get_ref(i)?),
            }
        }
        buf.extend_from_slice(b");\n");
        let row_len = (buf.len() - start) as u64;

        let hash = if let Key::Rowid { .. } = table.key {
            let rowid = row.get_ref(0)?.as_i64()?;
            if chunk_name.is_none() {
                chunk_name = Some(rowid_chunk_name(rowid));
            }
            mix64(rowid as u64)
        } else {
            key_buf.clear();
            for &i in &table.key_columns {
                write_value(&mut key_buf, row.get_ref(i)?);
                key_buf.push(0);
            }
            if chunk_name.is_none() {
                chunk_name = Some(ordinal_chunk_name(ordinal));
                ordinal += 1;
            }
            hash_bytes(&key_buf)
        };
        chunk_rows += 1;
        total += 1;
        if hash % TARGET_CHUNK < row_len || buf.len() >= MAX_CHUNK {
            let name = chunk_name.take().expect("chunk has a name");
            flush(&mut buf, name, &mut group, &mut chunk_rows, emit)?;
        }
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
fn write_redacted(out: &mut Vec<u8>, value: rusqlite::types::ValueRef<'_>, notnull: bool) {
    use rusqlite::types::ValueRef;
    let placeholder: &[u8] = match value {
        ValueRef::Null => b"NULL",
        _ if !notnull => b"NULL",
        ValueRef::Integer(_) => b"0",
        ValueRef::Real(_) => b"0.0",
        ValueRef::Text(_) => b"'(redacted)'",
        ValueRef::Blob(_) => b"X''",
    };
    out.extend_from_slice(placeholder);
}
