//! Whether a `redact` pattern that matches no column of one database (of several) stopped
//! matching there since its last snapshot: the pattern still redacts a column in another
//! database, so only this database's history can tell a migration that renamed the column
//! here (its values would now be committed under the new name) from a database that never had
//! it (`users.pw` in `a.db`, whose `b.db` has a `users` table without `pw`).

use std::path::Path;

use rusqlite::Connection;

use crate::dump::filter::glob_match;
use crate::store::Store;

/// The tables of `tables` (those the pattern `spec` names in `db` now, none with a column it
/// names) whose last snapshot had a column the pattern names and which now have a column that
/// snapshot lacked and no redact pattern names: a rename whose new name is not redacted. A
/// column dropped leaks nothing; a new column another pattern redacts is the fix applied.
/// Without a snapshot of `db` (its first run here) there is nothing to compare: none.
pub(super) fn renamed_tables(
    store: &Store,
    db: &Path,
    spec: &str,
    tables: &[String],
    redact: &[String],
) -> Vec<String> {
    let Some((_, column)) = spec.rsplit_once('.') else {
        return Vec::new();
    };
    let (Some(before), Ok(now)) = (previous_schema(store, db), open(db)) else {
        return Vec::new();
    };
    let redacted = |table: &str, col: &str| {
        redact.iter().any(|p| {
            p.rsplit_once('.')
                .is_some_and(|(t, c)| glob_match(t, table) && glob_match(c, col))
        })
    };
    tables
        .iter()
        .filter(|table| {
            let old = columns(&before, table);
            old.iter().any(|c| glob_match(column, c))
                && columns(&now, table)
                    .iter()
                    .any(|c| !old.contains(c) && !redacted(table, c))
        })
        .cloned()
        .collect()
}

fn open(db: &Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
}

/// The tables of `db`'s last snapshot, created empty in memory from its `CREATE TABLE`
/// statements (a statement that does not run here, such as a virtual table's, is skipped).
fn previous_schema(store: &Store, db: &Path) -> Option<Connection> {
    let head = store.head().ok()??;
    let tree = head.tree().ok()?;
    let folder = crate::snapshot::db_folder(db);
    let tables = tree
        .get_path(&Path::new(&folder).join("1-tables"))
        .ok()?
        .to_object(&store.repo)
        .ok()?
        .peel_to_tree()
        .ok()?;
    let conn = Connection::open_in_memory().ok()?;
    for entry in tables.iter() {
        let Some(sql) = entry
            .to_object(&store.repo)
            .ok()
            .and_then(|o| o.peel_to_tree().ok())
            .and_then(|t| t.get_name("0-create.sql").map(|e| e.id()))
            .and_then(|id| store.repo.find_blob(id).ok())
            .and_then(|b| String::from_utf8(b.content().to_vec()).ok())
        else {
            continue;
        };
        if sql
            .trim_start()
            .to_ascii_uppercase()
            .starts_with("CREATE TABLE")
        {
            let _ = conn.execute_batch(&sql);
        }
    }
    Some(conn)
}

fn columns(conn: &Connection, table: &str) -> Vec<String> {
    conn.prepare("SELECT name FROM pragma_table_xinfo(?1)")
        .and_then(|mut s| s.query_map([table], |r| r.get(0))?.collect())
        .unwrap_or_default()
}
