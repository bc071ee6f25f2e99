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
        return message
            .lines()
            .filter_map(summary_line)
            .find_map(|(f, summary)| (f == folder).then_some(summary));
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

/// The folder and figures of one `Sqlgit-Database-Summary: FOLDER T tables, R rows, B bytes`
/// line, read from its end: the folder is all before ` T tables`, compared whole by the caller
/// (`app.db` is not `app.db old`, nor `b.db 2`). A folder name holds no comma nor line break
/// (`table_dir` escapes them), so the split is unambiguous.
fn summary_line(line: &str) -> Option<(&str, Summary)> {
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let rest = line.strip_prefix("Sqlgit-Database-Summary: ")?;
    let (rest, bytes) = rest.strip_suffix(" bytes")?.rsplit_once(", ")?;
    let (rest, rows) = rest.strip_suffix(" rows")?.rsplit_once(", ")?;
    let (folder, tables) = rest.strip_suffix(" tables")?.rsplit_once(' ')?;
    let summary = Summary {
        tables: num(tables)?,
        rows: num(rows)?,
        bytes: num(bytes)?,
    };
    Some((folder, summary))
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

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = "b.db 2, b.db, app.db old, app.db: 8 tables, 11 rows, 1 KiB of SQL\n\n\
        Sqlgit-Database: b.db 2\n\
        Sqlgit-Database-Summary: b.db 2 1 tables, 1 rows, 10 bytes\n\
        Sqlgit-Database: b.db\n\
        Sqlgit-Database-Summary: b.db 2 tables, 4 rows, 20 bytes\n\
        Sqlgit-Database: app.db old\n\
        Sqlgit-Database-Summary: app.db old 3 tables, 5 rows, 30 bytes\n\
        Sqlgit-Database: app.db\n\
        Sqlgit-Database-Summary: app.db 2 tables, 1 rows, 40 bytes\n\
        Sqlgit-Tables: 8\nSqlgit-Rows: 11\nSqlgit-Bytes: 100\n";

    fn figures(folder: &str) -> Option<(u64, u64, u64)> {
        recorded(MESSAGE, folder).map(|s| (s.tables, s.rows, s.bytes))
    }

    #[test]
    fn a_folder_is_matched_whole_not_as_the_start_of_a_longer_one() {
        assert_eq!(figures("b.db 2"), Some((1, 1, 10)));
        assert_eq!(figures("b.db"), Some((2, 4, 20)));
        assert_eq!(figures("app.db old"), Some((3, 5, 30)));
        assert_eq!(figures("app.db"), Some((2, 1, 40)));
        assert_eq!(figures("app"), None);
        assert_eq!(figures("b.db 2 1"), None);
    }
}
