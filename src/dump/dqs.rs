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
/// without double-quoted strings and works with them: each runs, in schema order, in two empty
/// in-memory databases, one allowing them and one not. A statement the first cannot run either
/// (an unknown module, a collation or function of the application's) tells nothing.
pub fn needed(conn: &Connection) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare(
        "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
    )?;
    let statements = stmt
        .query_map([], |r| {
            let sql = r.get_ref(0)?.as_bytes().unwrap_or_default();
            Ok(String::from_utf8_lossy(sql).into_owned())
        })?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    if !statements.iter().any(|s| s.contains('"')) {
        return Ok(false);
    }
    let open = |allow: bool| -> rusqlite::Result<Connection> {
        let c = Connection::open_in_memory()?;
        c.set_db_config(DbConfig::SQLITE_DBCONFIG_DQS_DDL, allow)?;
        c.set_db_config(DbConfig::SQLITE_DBCONFIG_DQS_DML, allow)?;
        Ok(c)
    };
    let (with, without) = (open(true)?, open(false)?);
    for sql in &statements {
        let works = with.execute_batch(sql).is_ok();
        if without.execute_batch(sql).is_err() && works && sql.contains('"') {
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
}
