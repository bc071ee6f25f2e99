//! The dump: a whole database as SQL text that the `sqlite3` CLI (3.40+) restores exactly.
//!
//! The dump is produced as a sequence of files in the order of their paths, so that a snapshot
//! can store each file as a git blob and concatenating them in path order gives the dump back:
//!
//! ```text
//! 0-header.sql                      PRAGMAs, BEGIN
//! 1-tables/<table>/0-create.sql     CREATE TABLE (virtual tables: a sqlite_schema row)
//! 1-tables/<table>/1-rows/<group>/<chunk>.sql   INSERTs, content-defined chunks
//! 1-tables/<table>/2-indexes.sql    CREATE INDEX, after the table's rows
//! 2-sqlite_sequence.sql, 3-sqlite_stat1.sql     AUTOINCREMENT counters, ANALYZE results
//! 4-views.sql, 5-triggers.sql       after all data, so no trigger fires during a restore
//! 9-commit.sql                      COMMIT: a dump cut short restores nothing
//! ```
//! (a `1-rows` folder with a single group holds its chunks directly).
//! Everything is read inside one read transaction: one moment of the database.

pub mod btree;
pub mod buffers;
pub mod literal;
pub mod path;
pub mod real;
pub mod rows;
pub mod schema;
pub mod shell;
pub mod source;
pub mod stmt;

use anyhow::{Context, Result};
use rusqlite::Connection;

use literal::write_text;
pub use schema::Filters;
use schema::{Object, Schema, Table, read_schema};
use shell::{ObjectKind, one_line, rename_rowid_tokens, write_fixup, write_object};
use stmt::Encoding;

/// Receives the dump's files, in path order.
pub trait Sink {
    /// `path` is relative to the database's folder; `data` is complete SQL statements.
    fn file(&mut self, path: &[&str], data: Vec<u8>) -> Result<()>;
}

/// What a dump contained, for commit messages and metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Summary {
    pub tables: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// Counts bytes on their way to the real sink.
struct Counting<'a> {
    inner: &'a mut dyn Sink,
    bytes: u64,
}

impl Sink for Counting<'_> {
    fn file(&mut self, path: &[&str], data: Vec<u8>) -> Result<()> {
        self.bytes += data.len() as u64;
        self.inner.file(path, data)
    }
}

/// Dump the database behind `conn` (opened by [`source::open`]) into `sink`, all inside one
/// read transaction.
pub fn dump(conn: &Connection, sink: &mut dyn Sink, filters: &Filters) -> Result<Summary> {
    conn.execute_batch("BEGIN DEFERRED")
        .context("begin read transaction")?;
    let result = dump_in_transaction(conn, sink, filters);
    let _ = conn.execute_batch("COMMIT");
    result
}

fn dump_in_transaction(
    conn: &Connection,
    sink: &mut dyn Sink,
    filters: &Filters,
) -> Result<Summary> {
    let schema = read_schema(conn, filters)?;
    let encoding = Encoding::of(conn)?;
    let mut sink = Counting {
        inner: sink,
        bytes: 0,
    };
    let mut summary = Summary::default();
    sink.file(&["0-header.sql"], header(&schema))?;
    for table in &schema.tables {
        summary.tables += 1;
        summary.rows += dump_table(conn, table, encoding, &mut sink)?;
    }
    if let Some(seq) = &schema.sequence {
        // sqlite_sequence cannot be created directly; creating an AUTOINCREMENT table makes it
        // when no table has made it yet (whether one has cannot be told reliably from the text).
        let maker = &schema.sequence_maker; // [a-z0-9_]: needs no quotes
        let mut sql = format!(
            "CREATE TABLE {maker}(i INTEGER PRIMARY KEY AUTOINCREMENT);\n\
             DROP TABLE {maker};\nDELETE FROM sqlite_sequence;\n"
        )
        .into_bytes();
        summary.rows += system_rows(conn, seq, encoding, &mut sql)?;
        sink.file(&["2-sqlite_sequence.sql"], sql)?;
    }
    if let Some(stat1) = &schema.stat1 {
        // ANALYZE creates sqlite_stat1 (the only way to); a SQLite built with STAT4 also makes
        // sqlite_stat4, which the source did not have (its rows are build-specific anyway).
        let mut sql = b"ANALYZE sqlite_schema;\nDROP TABLE IF EXISTS sqlite_stat4;\n\
                        DELETE FROM sqlite_stat1;\n"
            .to_vec();
        summary.rows += system_rows(conn, stat1, encoding, &mut sql)?;
        sink.file(&["3-sqlite_stat1.sql"], sql)?;
    }
    if !schema.views.is_empty() {
        sink.file(&["4-views.sql"], objects(ObjectKind::View, &schema.views))?;
    }
    if !schema.triggers.is_empty() {
        sink.file(
            &["5-triggers.sql"],
            objects(ObjectKind::Trigger, &schema.triggers),
        )?;
    }
    sink.file(&["9-commit.sql"], b"COMMIT;\n".to_vec())?;
    summary.bytes = sink.bytes;
    Ok(summary)
}

fn header(schema: &Schema) -> Vec<u8> {
    let p = &schema.pragmas;
    // Rows that break a CHECK constraint (written with ignore_check_constraints) restore too.
    let mut out = String::from("PRAGMA foreign_keys=OFF;\nPRAGMA ignore_check_constraints=ON;\n");
    if p.encoding != "UTF-8" {
        // Only takes effect on a new, empty database: exactly what a restore writes into.
        out.push_str(&format!("PRAGMA encoding='{}';\n", p.encoding));
    }
    out.push_str("BEGIN TRANSACTION;\n");
    out.push_str(&format!("PRAGMA user_version={};\n", p.user_version));
    out.push_str(&format!("PRAGMA application_id={};\n", p.application_id));
    out.into_bytes()
}

fn objects(kind: ObjectKind, objects: &[Object]) -> Vec<u8> {
    let mut out = Vec::new();
    for o in objects {
        write_object(&mut out, kind, &o.name, &o.sql);
    }
    out
}

fn dump_table(
    conn: &Connection,
    table: &Table,
    encoding: Encoding,
    sink: &mut dyn Sink,
) -> Result<u64> {
    let dir = table.dir.as_str();
    if table.virtual_table {
        let mut sql = b"PRAGMA writable_schema=ON;\n\
             INSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql) VALUES('table',"
            .to_vec();
        write_text(&mut sql, table.name.as_bytes());
        sql.push(b',');
        write_text(&mut sql, table.name.as_bytes());
        sql.extend_from_slice(b",0,");
        write_text(&mut sql, &table.sql);
        sql.extend_from_slice(b");\nPRAGMA writable_schema=OFF;\n");
        sink.file(&["1-tables", dir, "0-create.sql"], sql)?;
        return Ok(0);
    }
    let mut create = Vec::new();
    match &table.rowid_column_temp {
        // Created with the column named `rowid` renamed, so the rows can set real rowids; the
        // exact text is put back after them (1-schema-fixup.sql).
        Some(temp) => {
            create.extend_from_slice(&one_line(&rename_rowid_tokens(&table.sql, temp)));
            create.extend_from_slice(b";\n");
        }
        None => write_object(&mut create, ObjectKind::Table, &table.name, &table.sql),
    }
    sink.file(&["1-tables", dir, "0-create.sql"], create)?;
    let rows = rows::dump_rows(conn, table, encoding, &mut |chunk| {
        sink.file(
            &["1-tables", dir, "1-rows", &chunk.group, &chunk.name],
            chunk.data,
        )
    })?;
    if table.rowid_column_temp.is_some() {
        let mut sql = Vec::new();
        write_fixup(&mut sql, ObjectKind::Table, &table.name, &table.sql);
        sink.file(&["1-tables", dir, "1-schema-fixup.sql"], sql)?;
    }
    if !table.indexes.is_empty() {
        sink.file(
            &["1-tables", dir, "2-indexes.sql"],
            objects(ObjectKind::Index, &table.indexes),
        )?;
    }
    Ok(rows)
}

/// The rows of a small system table, appended to `out` as one piece.
fn system_rows(
    conn: &Connection,
    table: &Table,
    encoding: Encoding,
    out: &mut Vec<u8>,
) -> Result<u64> {
    rows::dump_rows(conn, table, encoding, &mut |chunk| {
        out.extend_from_slice(&chunk.data);
        Ok(())
    })
}
