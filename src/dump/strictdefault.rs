//! Rows that no restore can write back: in a STRICT table, rows stored before `ALTER TABLE …
//! ADD COLUMN` read the new column's DEFAULT, and SQLite does not check that default against
//! the column's type (`b BLOB DEFAULT 'abc'`). Such rows are read, and dumped, with a value
//! that every INSERT refuses, so every restore of the snapshot fails. The snapshot still holds
//! the data; this finds the rows in the snapshot's own read transaction, so that the run fails
//! loudly on the day it happens instead of the day a restore is needed. Only columns whose
//! default SQLite itself refuses are scanned: an ordinary schema costs one schema query.

use anyhow::{Context, Result};
use rusqlite::Connection;

use super::Filters;
use super::literal::quote_ident;

/// One line per column whose DEFAULT rows read but no INSERT can store (empty when none):
/// `table "t": 2 rows … column "b" …`.
pub fn unrestorable(conn: &Connection, filters: &Filters) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare(
            "SELECT t.name, c.name, c.type, c.dflt_value \
             FROM sqlite_schema t, pragma_table_list(t.name) l, pragma_table_xinfo(t.name) c \
             WHERE t.type = 'table' AND t.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             AND t.sql NOT LIKE 'CREATE VIRTUAL%' \
             AND l.schema = 'main' AND l.strict AND c.hidden = 0 \
             AND c.dflt_value IS NOT NULL ORDER BY t.name, c.cid",
        )
        .context("read STRICT columns' defaults")?;
    let columns: Vec<(String, String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    // One scratch database asks SQLite about every default (made only when a STRICT column
    // has one).
    let mut scratch: Option<Connection> = None;
    for (table, column, kind, default) in columns {
        if filters.excludes(&table) || filters.redacts(&table, &column) {
            continue;
        }
        let Some(class) = storage_class(&kind) else {
            continue; // ANY stores whatever it is given
        };
        if scratch.is_none() {
            scratch = Some(Connection::open_in_memory().context("open a scratch database")?);
        }
        if scratch
            .as_ref()
            .is_none_or(|mem| default_fits(mem, &kind, &default))
        {
            continue;
        }
        let count: i64 = conn
            .query_row(
                &format!(
                    "SELECT count(*) FROM {} WHERE typeof({}) NOT IN ('null', '{class}')",
                    quote_ident(&table),
                    quote_ident(&column)
                ),
                [],
                |r| r.get(0),
            )
            .with_context(|| format!("count the rows of table {table:?}"))?;
        if count > 0 {
            out.push(format!(
                "STRICT table {table:?}: {count} row(s) written before ALTER TABLE ADD COLUMN \
                 read column {column:?}'s DEFAULT {default}, which its type {kind} refuses, so \
                 no restore can insert them; give them a {kind} value (UPDATE {} SET {} = … \
                 WHERE typeof({}) <> '{class}')",
                quote_ident(&table),
                quote_ident(&column),
                quote_ident(&column)
            ));
        }
    }
    Ok(out)
}

/// The storage class a STRICT column of type `kind` holds besides NULL (None: ANY).
fn storage_class(kind: &str) -> Option<&'static str> {
    match kind.to_ascii_uppercase().as_str() {
        "INT" | "INTEGER" => Some("integer"),
        "REAL" => Some("real"),
        "TEXT" => Some("text"),
        "BLOB" => Some("blob"),
        _ => None,
    }
}

/// Whether SQLite stores `default` in a STRICT column of type `kind` (after its usual
/// conversions), asked of SQLite itself on the in-memory database `mem` (left empty again). A
/// default it cannot even parse there is taken as fitting: nothing is claimed about it.
fn default_fits(mem: &Connection, kind: &str, default: &str) -> bool {
    let made = mem.execute_batch(&format!(
        "CREATE TABLE x(c {kind} DEFAULT {default}) STRICT"
    ));
    if made.is_err() {
        return true;
    }
    let fits = match mem.execute_batch("INSERT INTO x DEFAULT VALUES") {
        Ok(()) => true,
        Err(e) => !e.to_string().contains("cannot store"),
    };
    let _ = mem.execute_batch("DROP TABLE x");
    fits
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Newer SQLite refuses such an ADD COLUMN (3.40 did not): `columns` are added to table
    /// `t(id, v)` by rewriting its schema text, which leaves its rows as short as ADD COLUMN does.
    fn with_columns(setup: &str, columns: &str) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(setup).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA writable_schema=ON;
             UPDATE sqlite_schema SET sql = 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, \
                 {}) STRICT' WHERE name = 't';
             PRAGMA writable_schema=RESET;",
            columns.replace('\'', "''")
        ))
        .unwrap();
        conn
    }

    const TABLE: &str = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT) STRICT;
                         INSERT INTO t VALUES(1,'a'),(2,'b');";

    #[test]
    fn wrong_type_default_read_by_old_rows_is_found() {
        let conn = with_columns(TABLE, "b BLOB DEFAULT 'abc', n INT DEFAULT 'x'");
        let lines = unrestorable(&conn, &Filters::default()).unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].contains("2 row(s)") && lines[0].contains("\"b\""));
        assert!(lines[1].contains("\"n\"") && lines[1].contains("'integer'"));
        let filters = Filters {
            exclude_tables: vec!["t".into()],
            redact: Vec::new(),
        };
        assert!(unrestorable(&conn, &filters).unwrap().is_empty());
    }

    #[test]
    fn fitting_defaults_rows_with_values_and_loose_tables_are_not() {
        let fitting = "a INT DEFAULT '12', r REAL DEFAULT 3, y ANY DEFAULT 'abc'";
        let conn = with_columns(TABLE, fitting);
        assert!(unrestorable(&conn, &Filters::default()).unwrap().is_empty());
        let conn = with_columns(TABLE, "b BLOB DEFAULT 'abc'");
        conn.execute_batch("UPDATE t SET b = x'00'").unwrap();
        assert!(unrestorable(&conn, &Filters::default()).unwrap().is_empty());
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE loose(id INTEGER PRIMARY KEY); INSERT INTO loose VALUES(1);
             ALTER TABLE loose ADD COLUMN b BLOB DEFAULT 'abc';",
        )
        .unwrap();
        assert!(unrestorable(&conn, &Filters::default()).unwrap().is_empty());
    }
}
