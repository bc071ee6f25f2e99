//! Schemas written with double-quoted string literals (`CHECK (kind <> "x")`, `WHERE a = "b"` in
//! a partial index), which SQLite accepts for compatibility with old code: the sqlite3 CLI stopped
//! accepting them in schema statements in 3.41 (`.dbconfig dqs_ddl` off by default), so a dump of
//! such a schema would fail to restore through any newer CLI. A dump of one starts with the shell
//! command that turns them back on ([`LINE`]; 3.40 knows it too, and prints its new setting), and
//! only such a dump, so every other dump's text stays as it was.

use rusqlite::Connection;
use rusqlite::config::DbConfig;

/// What a header holds after its format mark when the schema needs double-quoted strings.
pub const LINE: &str = ".dbconfig dqs_ddl on\n";

/// Whether some schema statement of `conn`'s database (read in its current transaction) fails
/// without double-quoted strings and works with them. Each statement holding a `"` runs in two
/// fresh in-memory databases, one allowing them and one not, after the CREATE statement of the table
/// or view an index or trigger is on (a view or trigger body is not resolved when it is created). Fresh
/// databases keep the cost linear in the schema: one database taking every statement in turn
/// scans its whole `sqlite_schema` at each CREATE (10,000 tables of quoted names took 29 s and
/// 129 MiB). A statement the first cannot run either (an unknown module, a collation or function
/// of the application's) tells nothing.
pub fn needed(conn: &Connection) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare(
        "SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE sql IS NOT NULL \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
    )?;
    let text = |r: &rusqlite::Row, i| -> rusqlite::Result<String> {
        let bytes = r.get_ref(i)?.as_bytes().unwrap_or_default();
        Ok(String::from_utf8_lossy(bytes).into_owned())
    };
    let objects = stmt
        .query_map([], |r| {
            Ok((text(r, 0)?, text(r, 1)?, text(r, 2)?, text(r, 3)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if !objects.iter().any(|(.., sql)| sql.contains('"')) {
        return Ok(false);
    }
    let tables: std::collections::HashMap<&str, &str> = objects
        .iter()
        .filter(|(kind, ..)| kind == "table" || kind == "view")
        .map(|(_, name, _, sql)| (name.as_str(), sql.as_str()))
        .collect();
    let open = |allow: bool, on: Option<&str>| -> rusqlite::Result<Connection> {
        let c = Connection::open_in_memory()?;
        c.set_db_config(DbConfig::SQLITE_DBCONFIG_DQS_DDL, allow)?;
        c.set_db_config(DbConfig::SQLITE_DBCONFIG_DQS_DML, allow)?;
        if let Some(table) = on {
            let _ = c.execute_batch(table);
        }
        Ok(c)
    };
    for (kind, _, on, sql) in &objects {
        if !sql.contains('"') {
            continue;
        }
        let table = match kind.as_str() {
            "index" | "trigger" => tables.get(on.as_str()).copied(),
            _ => None,
        };
        let works = open(true, table)?.execute_batch(sql).is_ok();
        if works && open(false, table)?.execute_batch(sql).is_err() {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(schema: &str) -> bool {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(schema).unwrap();
        needed(&conn).unwrap()
    }

    #[test]
    fn only_schemas_with_double_quoted_strings_need_them() {
        assert!(needs("CREATE TABLE t(a, b CHECK (b <> \"bad\"));"));
        assert!(needs(
            "CREATE TABLE t(a); CREATE INDEX i ON t(a) WHERE a <> \"x\";"
        ));
        assert!(needs("CREATE TABLE t(a, b AS (a || \"s\"));"));
        // Quoted names, and a DEFAULT (whose grammar takes a name as a string anyway), do not.
        assert!(!needs(
            "CREATE TABLE \"t x\"(\"a\" DEFAULT \"d\"); CREATE INDEX \"i\" ON \"t x\"(\"a\");"
        ));
        assert!(!needs(
            "CREATE TABLE t(a); CREATE VIEW v AS SELECT \"a\" FROM t;"
        ));
    }

    #[test]
    fn an_index_or_trigger_is_tried_on_its_table() {
        // The index's table has no `"`; the index's WHERE holds a double-quoted string.
        assert!(needs(
            "CREATE TABLE a(x); CREATE TABLE t(a); CREATE INDEX i ON t(a) WHERE a <> \"x\";"
        ));
        // A quoted column name in an index is a name.
        assert!(!needs(
            "CREATE TABLE t(\"a b\"); CREATE INDEX i ON t(\"a b\") WHERE \"a b\" > 0;"
        ));
        assert!(!needs(
            "CREATE TABLE t(\"a\"); CREATE TRIGGER g AFTER INSERT ON t BEGIN \
             UPDATE t SET \"a\" = 1; END;"
        ));
        // The math functions the sqlite3 CLI has are built in here too (.cargo/config.toml):
        // without them, such a statement failed both ways and told nothing.
        assert!(needs(
            "CREATE TABLE t(a); CREATE INDEX i ON t(a) WHERE a <> \"x\" AND sqrt(a) > 0;"
        ));
        assert!(needs("CREATE TABLE t(a, b AS (a || \"s\"), c AS (ln(a)));"));
    }
}
