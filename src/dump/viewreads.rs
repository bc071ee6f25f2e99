//! Which tables a view reads: an external-content full-text index whose `content=` is a view
//! keeps the text of the tables behind it, so a filter on one of them is refused like one on
//! `content=` itself. SQLite's own plan says it: the root pages a `SELECT` from the view opens
//! (nested views are flattened into it by then).

use anyhow::{Result, bail};
use rusqlite::Connection;

use super::literal::quote_name;

/// Whether `name` is a view of the main schema (names compare ASCII case-insensitively).
pub fn is_view(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'view' AND name = ?1 COLLATE NOCASE",
        [name],
        |r| r.get(0),
    )?)
}

/// The tables a `SELECT * FROM view` reads (an index's table for an index it reads). An error
/// when that cannot be told: the view does not compile here (an application's function, a
/// missing table), or it reads a virtual table (whose shadow tables the plan does not show).
pub fn tables_read(conn: &Connection, view: &str) -> Result<Vec<String>> {
    let sql = format!("EXPLAIN SELECT * FROM {}", quote_name(view));
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    let mut pages = Vec::new();
    while let Some(r) = rows.next()? {
        let opcode: String = r.get(1)?;
        let (p2, p3): (i64, i64) = (r.get(3)?, r.get(4)?);
        match opcode.as_str() {
            "OpenRead" | "ReopenIdx" | "OpenWrite" if p3 == 0 => pages.push(p2),
            "OpenRead" | "ReopenIdx" | "OpenWrite" => bail!("it reads another schema"),
            "VOpen" => bail!("it reads a virtual table"),
            _ => {}
        }
    }
    let mut tables: Vec<String> = Vec::new();
    for page in pages {
        let table: Option<String> = conn
            .query_row(
                "SELECT tbl_name FROM sqlite_schema WHERE rootpage = ?1 \
                 AND type IN ('table', 'index')",
                [page],
                |r| r.get(0),
            )
            .ok();
        match table {
            Some(t) if !tables.contains(&t) => tables.push(t),
            Some(_) => {}
            None => bail!("it reads page {page}, which is no table's"),
        }
    }
    Ok(tables)
}
