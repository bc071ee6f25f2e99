//! What a snapshot's commit recorded of each database when it was taken (its `Sqlgit-Tables`,
//! `Sqlgit-Rows` and `Sqlgit-Bytes` trailers, or a `Sqlgit-Database-Summary` line per database),
//! and the check every restore makes against it: files removed from a snapshot's tree (a chunk,
//! a table) restore cleanly, only smaller. `verify` counts by dumping the restored database
//! again; `restore` counts its tables and rows ([`count`]) and the bytes of SQL it executed.

use anyhow::{Context, Result, bail};
use rusqlite::Connection;

use super::literal::quote_name;
use super::{Filters, Summary};

/// The value of trailer `key` (`Sqlgit-Rows:`, …) of a snapshot commit's message.
pub fn trailer<'m>(message: &'m str, key: &str) -> Option<&'m str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
}

/// What a snapshot commit's message (`crate::snapshot::commit_message`) recorded for database `folder` when it
/// was taken: its own figures in a commit of several databases, the totals in a commit of it
/// alone. None for commits that do not say (older ones; a folder a run on another database
/// kept without recording it).
pub fn recorded(message: &str, folder: &str) -> Option<Summary> {
    let databases = message
        .lines()
        .filter(|l| l.starts_with("Sqlgit-Database:"))
        .count();
    if databases > 1 {
        // `Sqlgit-Database-Summary: FOLDER T tables, R rows, B bytes`
        let rest = trailer(message, &format!("Sqlgit-Database-Summary: {folder} "))?;
        let nums: Vec<u64> = rest
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        return match nums[..] {
            [tables, rows, bytes] => Some(Summary {
                tables,
                rows,
                bytes,
            }),
            _ => None,
        };
    }
    if trailer(message, "Sqlgit-Database:") != Some(folder) {
        return None;
    }
    let num = |key: &str| trailer(message, key)?.parse::<u64>().ok();
    Some(Summary {
        tables: num("Sqlgit-Tables:")?,
        rows: num("Sqlgit-Rows:")?,
        bytes: num("Sqlgit-Bytes:")?,
    })
}

/// Check `got` against what `message` recorded for `folder`: an error naming `what` when they
/// differ; `Ok(false)` when the commit recorded nothing for it (nothing was checked).
pub fn check(what: &str, message: &str, folder: &str, got: &Summary) -> Result<bool> {
    let Some(want) = recorded(message, folder) else {
        return Ok(false);
    };
    let (tables, rows, bytes) = (want.tables, want.rows, want.bytes);
    if (got.tables, got.rows, got.bytes) != (tables, rows, bytes) {
        bail!(
            "{what}: the snapshot is incomplete: its commit records {tables} tables, {rows} rows, \
             {bytes} bytes of SQL, but it restores {} tables, {} rows, {} bytes",
            got.tables,
            got.rows,
            got.bytes
        );
    }
    Ok(true)
}

/// The tables and rows a dump of the database behind `conn` would count (bytes left 0): every
/// table (a virtual table's rows are its shadow tables'), sqlite_sequence, sqlite_stat1.
pub fn count(conn: &Connection) -> Result<Summary> {
    let schema = super::schema::read_schema(conn, &Filters::default())?;
    let rows = |name: &str| -> Result<u64> {
        let sql = format!("SELECT count(*) FROM {}", quote_name(name));
        let n: i64 = conn
            .query_row(&sql, [], |r| r.get(0))
            .with_context(|| format!("count the rows of {name}"))?;
        Ok(n as u64)
    };
    let mut summary = Summary::default();
    for table in &schema.tables {
        summary.tables += 1;
        if !table.virtual_table {
            summary.rows += rows(&table.name)?;
        }
    }
    for table in [&schema.sequence, &schema.stat1].into_iter().flatten() {
        summary.rows += rows(&table.name)?;
    }
    Ok(summary)
}
