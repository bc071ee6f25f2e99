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

pub mod buffers;
pub mod literal;
pub mod path;
pub mod real;
pub mod rows;
pub mod schema;
pub mod source;

use anyhow::{Context, Result};
use rusqlite::Connection;

use literal::quote_str;
pub use schema::Filters;
use schema::{Schema, Table, read_schema};

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
    let mut sink = Counting {
        inner: sink,
        bytes: 0,
    };
    let mut summary = Summary::default();
    sink.file(&["0-header.sql"], header(&schema))?;
    for table in &schema.tables {
        summary.tables += 1;
        summary.rows += dump_table(conn, table, &mut sink)?;
    }
    if let Some(seq) = &schema.sequence {
        let mut sql = Vec::new();
        if !schema.has_autoincrement {
            // sqlite_sequence cannot be created directly; an AUTOINCREMENT table makes it.
            sql.extend_from_slice(
                b"CREATE TABLE sqlgit_make_sequence(i INTEGER PRIMARY KEY AUTOINCREMENT);\n\
                  DROP TABLE sqlgit_make_sequence;\n",
            );
        }
        sql.extend_from_slice(b"DELETE FROM sqlite_sequence;\n");
        summary.rows += system_rows(conn, seq, &mut sql)?;
        sink.file(&["2-sqlite_sequence.sql"], sql)?;
    }
    if let Some(stat1) = &schema.stat1 {
        // ANALYZE creates sqlite_stat1 (the only way to); a SQLite built with STAT4 also makes
        // sqlite_stat4, which the source did not have (its rows are build-specific anyway).
        let mut sql = b"ANALYZE sqlite_schema;\nDROP TABLE IF EXISTS sqlite_stat4;\n\
                        DELETE FROM sqlite_stat1;\n"
            .to_vec();
        summary.rows += system_rows(conn, stat1, &mut sql)?;
        sink.file(&["3-sqlite_stat1.sql"], sql)?;
    }
    if !schema.views.is_empty() {
        sink.file(&["4-views.sql"], statements(&schema.views))?;
    }
    if !schema.triggers.is_empty() {
        sink.file(&["5-triggers.sql"], statements(&schema.triggers))?;
    }
    sink.file(&["9-commit.sql"], b"COMMIT;\n".to_vec())?;
    summary.bytes = sink.bytes;
    Ok(summary)
}

fn header(schema: &Schema) -> Vec<u8> {
    let p = &schema.pragmas;
    let mut out = String::from("PRAGMA foreign_keys=OFF;\n");
    if p.encoding != "UTF-8" {
        // Only takes effect on a new, empty database: exactly what a restore writes into.
        out.push_str(&format!("PRAGMA encoding='{}';\n", p.encoding));
    }
    out.push_str("BEGIN TRANSACTION;\n");
    out.push_str(&format!("PRAGMA user_version={};\n", p.user_version));
    out.push_str(&format!("PRAGMA application_id={};\n", p.application_id));
    out.into_bytes()
}

fn statements(sqls: &[String]) -> Vec<u8> {
    let mut out = String::new();
    for sql in sqls {
        out.push_str(sql);
        out.push_str(";\n");
    }
    out.into_bytes()
}

fn dump_table(conn: &Connection, table: &Table, sink: &mut dyn Sink) -> Result<u64> {
    let dir = table.dir.as_str();
    if table.virtual_table {
        let sql = format!(
            "PRAGMA writable_schema=ON;\n\
             INSERT INTO sqlite_schema(type,name,tbl_name,rootpage,sql) VALUES('table',{},{},0,{});\n\
             PRAGMA writable_schema=OFF;\n",
            quote_str(&table.name),
            quote_str(&table.name),
            quote_str(&table.sql)
        );
        sink.file(&["1-tables", dir, "0-create.sql"], sql.into_bytes())?;
        return Ok(0);
    }
    sink.file(
        &["1-tables", dir, "0-create.sql"],
        format!("{};\n", table.sql).into_bytes(),
    )?;
    let rows = rows::dump_rows(conn, table, &mut |chunk| {
        sink.file(
            &["1-tables", dir, "1-rows", &chunk.group, &chunk.name],
            chunk.data,
        )
    })?;
    if !table.indexes.is_empty() {
        sink.file(
            &["1-tables", dir, "2-indexes.sql"],
            statements(&table.indexes),
        )?;
    }
    Ok(rows)
}

/// The rows of a small system table, appended to `out` as one piece.
fn system_rows(conn: &Connection, table: &Table, out: &mut Vec<u8>) -> Result<u64> {
    rows::dump_rows(conn, table, &mut |chunk| {
        out.extend_from_slice(&chunk.data);
        Ok(())
    })
}
