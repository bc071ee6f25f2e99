//! Virtual tables in SQLite's integrity checks. Since 3.44 `PRAGMA integrity_check` also asks
//! each virtual table's module (FTS3/4/5, R*Tree) to check its own data. What a module finds is
//! about its shadow tables and the content table it names — data a restore copies exactly —
//! so an exact restore holds the very finding the database it was taken of holds (a stale
//! external-content index, a content column renamed away); and a module that cannot check at
//! all (an FTS5 table whose tokenizer the application registers at run time) makes the whole
//! pragma fail. Such findings are told from damage to the file here, and a check that fails
//! because of one is run again around it.

use std::ffi::c_char;

use anyhow::Result;
use rusqlite::{Connection, OpenFlags, ffi};

use super::check::run_check;

/// The virtual table (`main.docs_fts`) a line of an integrity check is about, when it is a
/// module's own finding: `malformed inverted index for FTS4 table main.f` and `unable to
/// validate the inverted index for FTS5 table main.f: SQL logic error` (FTS3/4/5), `In RTree
/// main.r:\n…` (R*Tree, geopoly), FTS5's own words (`fts5: checksum mismatch for table "f"`,
/// `fts5: corruption on page 3, segment 1, table "f"`, `fts5: missing row 2 from content table
/// c`: every message FTS5 writes starts `fts5: `; the table as it names it, or "an FTS5 table"),
/// and the line [`check_around_modules`] writes for a table whose module could not check it.
pub fn finding_table(line: &str) -> Option<&str> {
    if let Some(rest) = line.strip_prefix("In RTree ") {
        return rest.split(":\n").next();
    }
    if let Some(rest) = line.strip_prefix(UNCHECKED) {
        return rest.split(" (").next();
    }
    if let Some(rest) = line.strip_prefix("fts5: ") {
        let named = rest
            .rsplit_once(" table \"")
            .map(|(_, t)| t.trim_end_matches('"'));
        return Some(named.unwrap_or("an FTS5 table"));
    }
    let fts = line
        .strip_prefix("malformed inverted index for FTS")
        .or_else(|| line.strip_prefix("unable to validate the inverted index for FTS"))?;
    let rest = fts.split_once(" table ")?.1;
    Some(rest.rsplit_once(": ").map_or(rest, |(table, _)| table))
}

/// How [`check_around_modules`] starts the line for a virtual table its module could not check.
const UNCHECKED: &str = "unable to check virtual table ";

/// The lines of `PRAGMA {kind}` (`integrity_check` or `quick_check`) on `conn`. When the pragma
/// fails as a whole because a virtual table's module cannot check that table, the lines are
/// those of a check of everything else — by a second connection to the file without any
/// virtual-table module, for which SQLite skips virtual tables — followed by each virtual
/// table's own check, and for a table whose module fails, a line naming it, its module and
/// tokenizer, and the module's error. Any other failure is the pragma's error.
pub fn check_around_modules(conn: &Connection, kind: &str) -> Result<Vec<String>> {
    let whole = match run_check(conn, &format!("PRAGMA {kind}")) {
        Ok(lines) => return Ok(lines),
        Err(e) => e,
    };
    let own = check_virtual_tables(conn, |name| {
        let lines = run_check(conn, &own_check(kind, name))?;
        Ok(lines.into_iter().filter(|l| l != "ok").collect())
    });
    let path = conn.path().filter(|p| !p.is_empty());
    let (Ok(Some(own)), Some(path)) = (own, path) else {
        return Err(whole);
    };
    let rest = without_modules(conn, path).and_then(|c| run_check(&c, &format!("PRAGMA {kind}")));
    let mut lines: Vec<String> = rest?.into_iter().filter(|l| l != "ok").collect();
    lines.extend(own);
    Ok(lines)
}

/// Each virtual table of `conn` checked alone by `check` (given its name): their lines, and for
/// a table its module could not check, a line naming it, its module and tokenizer, and the
/// module's error. None when every module could check its tables (a whole check failed for
/// another reason).
pub fn check_virtual_tables(
    conn: &Connection,
    mut check: impl FnMut(&str) -> Result<Vec<String>>,
) -> Result<Option<Vec<String>>> {
    let mut own = Vec::new();
    let mut failed = false;
    for (name, sql) in virtual_tables(conn)? {
        match check(&name) {
            Ok(lines) => own.extend(lines),
            Err(e) => {
                failed = true;
                own.push(format!("{UNCHECKED}main.{name} ({}): {e}", module_of(&sql)));
            }
        }
    }
    Ok(failed.then_some(own))
}

/// `PRAGMA {kind}` of the table `name` alone: for a virtual table, its module's own check.
fn own_check(kind: &str, name: &str) -> String {
    format!("PRAGMA {kind}('{}')", name.replace('\'', "''"))
}

/// The virtual tables of `conn`'s main database: name and CREATE statement.
fn virtual_tables(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare(
        "SELECT name, sql FROM main.sqlite_schema WHERE type = 'table' AND rootpage = 0 \
         AND sql LIKE 'CREATE VIRTUAL TABLE%'",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// A read-only connection to the database at `path` that `conn` has open, with `conn`'s
/// setting of `ignore_check_constraints` and no virtual-table module at all.
fn without_modules(conn: &Connection, path: &str) -> Result<Connection> {
    let ignore: i64 = conn.query_row("PRAGMA ignore_check_constraints", [], |r| r.get(0))?;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let other = Connection::open_with_flags(path, flags)?;
    crate::dump::real::register_sql_functions(&other)?;
    // SAFETY: a NULL list keeps no module; the handle is open.
    let rc =
        unsafe { ffi::sqlite3_drop_modules(other.handle(), std::ptr::null_mut::<*const c_char>()) };
    if rc != ffi::SQLITE_OK {
        anyhow::bail!("drop the virtual-table modules: error {rc}");
    }
    other.execute_batch(&format!("PRAGMA ignore_check_constraints={ignore}"))?;
    Ok(other)
}

/// The module of a `CREATE VIRTUAL TABLE` statement, with its `tokenize=` argument if it has
/// one: `fts5, tokenize='app_tok'`.
fn module_of(sql: &str) -> String {
    let lower = sql.to_ascii_lowercase();
    let Some(at) = lower.find(" using ") else {
        return "module unknown".into();
    };
    let after = sql[at + 7..].trim_start();
    let module: String = after
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let tokenize = lower.find("tokenize").map(|t| {
        let arg = &sql[t..];
        let end = arg.find([',', ')']).unwrap_or(arg.len());
        arg[..end].trim().to_string()
    });
    match tokenize {
        Some(t) => format!("{module}, {t}"),
        None => module,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_findings_name_their_table() {
        for (line, table) in [
            ("malformed inverted index for FTS4 table main.f", "main.f"),
            (
                "unable to validate the inverted index for FTS4 table main.docs_fts: SQL logic \
                 error",
                "main.docs_fts",
            ),
            ("In RTree main.r:\nNode 1 missing from database", "main.r"),
            (
                "unable to check virtual table main.n (fts5, tokenize='x'): SQL logic error",
                "main.n",
            ),
            ("fts5: checksum mismatch for table \"docs\"", "docs"),
            (
                "fts5: corruption on page 3, segment 1, table \"a \"\"b\"",
                "a \"\"b",
            ),
            ("fts5: missing row 2 from content table c", "an FTS5 table"),
        ] {
            assert_eq!(finding_table(line), Some(table), "{line}");
        }
        assert_eq!(finding_table("row 1 missing from index ti"), None);
        assert_eq!(
            module_of("CREATE VIRTUAL TABLE n USING fts5(body, tokenize='app_tok')"),
            "fts5, tokenize='app_tok'"
        );
        assert_eq!(
            module_of("CREATE VIRTUAL TABLE r USING rtree(id, a, b)"),
            "rtree"
        );
    }

    /// An FTS5 table whose tokenizer this SQLite lacks fails the whole pragma: the check runs
    /// around it (a line names it), and damage elsewhere in the file is still found.
    #[test]
    fn a_check_that_a_module_fails_runs_around_it() {
        use crate::restore::{Check, check_integrity};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE b(k TEXT); CREATE INDEX b_k ON b(k);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
                 INSERT INTO b SELECT printf('key %d', i) FROM n;
                 CREATE VIRTUAL TABLE n USING fts5(body); INSERT INTO n VALUES('some words');
                 PRAGMA writable_schema=ON;
                 UPDATE sqlite_schema SET sql = 'CREATE VIRTUAL TABLE n USING fts5(body, \
                 tokenize=''app_tok'')' WHERE name = 'n';",
            )
            .unwrap();
        let conn = Connection::open(&path).unwrap();
        assert!(run_check(&conn, "PRAGMA integrity_check").is_err());
        let found = check_integrity(&conn, Check::Full).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(finding_table(&found[0]), Some("main.n"), "{found:?}");
        assert!(found[0].contains("tokenize='app_tok'"), "{found:?}");
        let conn = crate::restore::check::damage_a_leaf(conn, &path, "b_k");
        let damaged = check_integrity(&conn, Check::Full);
        assert!(damaged.is_err(), "{damaged:?}");
    }
}
