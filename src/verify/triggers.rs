//! Triggers a restore keeps that no statement can fire: one that names a table the snapshot
//! does not have (an excluded table) makes every INSERT, UPDATE or DELETE that fires it fail.
//! SQLite compiles a table's triggers into each statement prepared on it, so preparing (never
//! running) one statement per event finds them.

use anyhow::Result;
use rusqlite::Connection;

use crate::dump::literal::quote_ident;

/// A warning line per table (or view) and event whose statements fail to prepare for a
/// trigger's sake, naming the triggers on it that name the missing object.
pub fn unfireable(conn: &Connection) -> Result<Vec<String>> {
    let triggers: Vec<(String, String, String)> = conn
        .prepare("SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = 'trigger'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut tables: Vec<&str> = triggers.iter().map(|(_, t, _)| t.as_str()).collect();
    tables.sort_unstable();
    tables.dedup();
    let mut lines = Vec::new();
    for table in tables {
        let t = quote_ident(table);
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_xinfo(?1) WHERE hidden = 0")?
            .query_map([table], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let set: Vec<String> = columns
            .iter()
            .map(|c| format!("{0} = {0}", quote_ident(c)))
            .collect();
        let mut events = vec![
            ("INSERT", format!("INSERT INTO {t} DEFAULT VALUES")),
            ("DELETE", format!("DELETE FROM {t}")),
        ];
        if !set.is_empty() {
            events.push(("UPDATE", format!("UPDATE {t} SET {}", set.join(", "))));
        }
        for (event, sql) in events {
            let Err(e) = conn.prepare(&sql) else {
                continue;
            };
            let why = e.to_string();
            let Some(missing) = why.strip_prefix("no such table: ") else {
                continue;
            };
            let name = missing.rsplit_once('.').map_or(missing, |(_, n)| n);
            let named: Vec<&str> = triggers
                .iter()
                .filter(|(_, on, sql)| {
                    on == table && crate::dump::shell::mentions(sql.as_bytes(), name) > 0
                })
                .map(|(n, ..)| n.as_str())
                .collect();
            lines.push(format!(
                "trigger {} on {table} names {name}, which the snapshot does not have (an \
                 excluded table?): every {event} on {table} fails in a restore ({why})",
                named.join(", ")
            ));
        }
    }
    Ok(lines)
}
