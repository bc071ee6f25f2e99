//! Whether a `redact` pattern that matches no column (or no table) of one database (of several)
//! stopped matching there since its last snapshot: the pattern still redacts a column in another
//! database, so only this database's history can tell a migration that renamed the column
//! or the table here (its values would now be committed under the new name) from a database
//! that never had it (`users.pw` in `a.db`, whose `b.db` has a `users` table without `pw`).

use std::path::Path;

use rusqlite::Connection;

use crate::dump::filter::glob_match;
use crate::store::Store;

/// The tables of `tables` (those the pattern `spec` names in the database now, none with a
/// column it names) whose last snapshot (in `folder`) had a column the pattern names and which
/// now (`now`: the kept tables and their columns, as the dump reads them) have a column that
/// snapshot lacked and no redact pattern names: a rename whose new name is not redacted. A
/// column dropped leaks nothing; a new column another pattern redacts is the fix applied.
/// Without a snapshot of the database (its first run here) there is nothing to compare: none.
pub(super) fn renamed_columns(
    store: &Store,
    folder: &str,
    spec: &str,
    tables: &[String],
    now: &[(String, Vec<String>)],
    redact: &[String],
) -> Vec<String> {
    let Some((_, column)) = spec.rsplit_once('.') else {
        return Vec::new();
    };
    let Some(before) = previous_schema(store, folder) else {
        return Vec::new();
    };
    tables
        .iter()
        .filter(|table| {
            let old = columns(&before, table);
            old.iter().any(|c| glob_match(column, c))
                && columns_now(now, table)
                    .iter()
                    .any(|c| !old.contains(c) && !redacted(redact, table, c))
        })
        .cloned()
        .collect()
}

/// For a pattern `spec` whose table part names no table of the database now: the kept tables
/// of `now` that its last snapshot (in `folder`) lacked and that have a column the pattern's
/// column part names, no redact pattern naming it, while that snapshot had a table the pattern
/// names with such a column: a table renamed (its values would be committed under the new
/// name). A table dropped leaks nothing. Without a snapshot of the database: none.
pub(super) fn renamed_tables(
    store: &Store,
    folder: &str,
    spec: &str,
    now: &[(String, Vec<String>)],
    redact: &[String],
) -> Vec<String> {
    let Some((table, column)) = spec.rsplit_once('.') else {
        return Vec::new();
    };
    let Some(before) = previous_schema(store, folder) else {
        return Vec::new();
    };
    let old = tables(&before);
    let had = old
        .iter()
        .any(|t| glob_match(table, t) && columns(&before, t).iter().any(|c| glob_match(column, c)));
    if !had {
        return Vec::new();
    }
    now.iter()
        .filter(|(t, cols)| {
            !old.iter().any(|o| o.eq_ignore_ascii_case(t))
                && cols
                    .iter()
                    .any(|c| glob_match(column, c) && !redacted(redact, t, c))
        })
        .map(|(t, _)| t.clone())
        .collect()
}

fn redacted(redact: &[String], table: &str, col: &str) -> bool {
    redact.iter().any(|p| {
        p.rsplit_once('.')
            .is_some_and(|(t, c)| glob_match(t, table) && glob_match(c, col))
    })
}

fn columns_now<'a>(now: &'a [(String, Vec<String>)], table: &str) -> &'a [String] {
    now.iter()
        .find(|(t, _)| t == table)
        .map_or(&[], |(_, cols)| cols.as_slice())
}

/// The tables of the last snapshot's `folder`, created empty in memory from its `CREATE TABLE`
/// statements (a statement that does not run here, such as a virtual table's, is skipped).
fn previous_schema(store: &Store, folder: &str) -> Option<Connection> {
    let head = store.head().ok()??;
    let tree = head.tree().ok()?;
    let tables = tree
        .get_path(&Path::new(folder).join("1-tables"))
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

fn tables(conn: &Connection) -> Vec<String> {
    conn.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .unwrap_or_default()
}

fn columns(conn: &Connection, table: &str) -> Vec<String> {
    conn.prepare("SELECT name FROM pragma_table_xinfo(?1)")
        .and_then(|mut s| s.query_map([table], |r| r.get(0))?.collect())
        .unwrap_or_default()
}
