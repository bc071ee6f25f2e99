//! Checking a database that a restore built or a restore drill reads back: SQLite's own checks,
//! with what they say about values (which an exact restore keeps, see [`check_integrity`]) told
//! from damage to the file. A large restore's quick check runs on two connections at once, table
//! by table, so that the second core is not idle while the first reads the whole file back.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, bail};
use rusqlite::{Connection, OpenFlags};

/// How a newly built database is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// `PRAGMA quick_check`: every page, record and constraint — all but the index entries
    /// against their tables, which SQLite itself wrote from the rows just inserted (a restore).
    Quick,
    /// `PRAGMA integrity_check`: everything (the restore drill, `sqlgit verify`).
    Full,
}

/// Values a restore inserted, per table name: how [`quick_check_built`] orders the tables.
pub type TableWeights = HashMap<String, u64>;

/// Below this many inserted values, one connection checks the whole file: it takes a few
/// milliseconds, less than starting a second connection would save.
const SPLIT_FROM: u64 = 1 << 18;
/// With more tables than this, one connection checks the whole file: a check per table has
/// a cost of its own (preparing it), which thousands of small tables would multiply.
const SPLIT_TABLES_UP_TO: usize = 500;

/// Run SQLite's `check` on `conn`: an error naming what is wrong with the file's structure
/// (pages, b-trees, index entries), else the findings about values — rows that break the
/// table's own CHECK, NOT NULL or STRICT type rules. The database being backed up can hold such
/// rows (written with `ignore_check_constraints`, or by an older SQLite), and an exact restore
/// holds CHECK breakers too: they are what the snapshot says, not damage. CHECK constraints are
/// not evaluated at all. (TEXT where a column's affinity would have converted it, which SQLite's
/// check also reports in a source database, never reaches a restore: every INSERT converts it,
/// see [`crate::dump::affinity`].)
pub fn check_integrity(conn: &Connection, check: Check) -> Result<Vec<String>> {
    let pragma = match check {
        Check::Quick => "quick_check",
        Check::Full => "integrity_check",
    };
    conn.execute_batch(NO_CHECK_CONSTRAINTS)?;
    judge(super::vtab::check_around_modules(conn, pragma)?)
}

/// `PRAGMA quick_check` of the database at `path` that `conn` has just built (and left
/// idle), as [`check_integrity`] runs it, but shared out over two connections when the
/// database is large: each checks whole tables — pages, b-trees, records, the table's indexes —
/// the largest first (`inserted`: values the restore inserted per table). The check of one
/// table is what `PRAGMA quick_check(TABLE)` does; checked table by table, the file is checked
/// for all but pages that belong to no b-tree (`Page N: never used`), which only damage
/// outside every table would leave, and which `sqlgit verify`'s full check still looks for.
/// With fewer than [`SPLIT_FROM`] values, more than [`SPLIT_TABLES_UP_TO`] tables, or a
/// single core, one connection checks the whole file.
pub fn quick_check_built(
    conn: &Connection,
    path: &Path,
    inserted: &TableWeights,
) -> Result<Vec<String>> {
    let Some(tables) = split_plan(conn, inserted)? else {
        return check_integrity(conn, Check::Quick);
    };
    conn.execute_batch(NO_CHECK_CONSTRAINTS)?;
    let next = AtomicUsize::new(0);
    // Each connection takes the next table until none is left.
    let work = |c: &Connection| -> Result<Vec<(usize, Vec<String>)>> {
        let mut found = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(name) = tables.get(i) else {
                return Ok(found);
            };
            let pragma = format!("PRAGMA quick_check('{}')", name.replace('\'', "''"));
            found.push((i, run_check(c, &pragma)?));
        }
    };
    let (mine, theirs) = std::thread::scope(|s| {
        // A second connection that cannot open leaves every table to the first.
        let helper = s.spawn(|| match open_reader(path) {
            Ok(c) => work(&c),
            Err(_) => Ok(Vec::new()),
        });
        let mine = work(conn);
        let theirs = helper
            .join()
            .unwrap_or_else(|p| Err(crate::panics::joined("the checking thread", p)));
        (mine, theirs)
    });
    let mut found = mine?;
    found.extend(theirs?);
    found.sort_by_key(|(i, _)| *i);
    judge(found.into_iter().flat_map(|(_, lines)| lines).collect())
}

/// The tables [`quick_check_built`] checks one by one, largest first (`sqlite_schema` too),
/// or `None` when one check of the whole file is the better plan.
fn split_plan(conn: &Connection, inserted: &TableWeights) -> Result<Option<Vec<String>>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if inserted.values().sum::<u64>() < SPLIT_FROM || cores < 2 {
        return Ok(None);
    }
    let mut tables: Vec<String> = conn
        // Not virtual tables (no root page): the build's connection does not know them as such.
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND rootpage != 0")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    // `PRAGMA quick_check(N)` with a number is the limit on findings, not a table.
    let numeric = |n: &String| {
        n.trim_start()
            .starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
    };
    if tables.len() > SPLIT_TABLES_UP_TO || tables.iter().any(numeric) {
        return Ok(None);
    }
    tables.push("sqlite_schema".into());
    tables.sort_by_key(|t| std::cmp::Reverse(inserted.get(t).copied().unwrap_or(0)));
    Ok(Some(tables))
}

/// A second, read-only connection to the database at `path`, set up to check it as the
/// first does.
fn open_reader(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = crate::vfs::open(path, flags)?;
    crate::dump::real::register_sql_functions(&conn)?;
    conn.execute_batch("PRAGMA cache_size=-2048")?;
    conn.execute_batch(NO_CHECK_CONSTRAINTS)?;
    Ok(conn)
}

/// Set on a connection before it checks: the checks do not evaluate CHECK constraints.
const NO_CHECK_CONSTRAINTS: &str = "PRAGMA ignore_check_constraints=ON";

/// The lines an integrity-check pragma returns.
pub(crate) fn run_check(conn: &Connection, pragma: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(pragma)?;
    let lines = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(lines)
}

/// [`check_integrity`]'s verdict on the lines of a check.
fn judge(lines: Vec<String>) -> Result<Vec<String>> {
    let (values, structure): (Vec<String>, Vec<String>) = lines
        .into_iter()
        .filter(|l| l != "ok")
        .partition(|l| is_about_values(l));
    if let Some(first) = structure.first() {
        let more = match structure.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        bail!("{first}{more}");
    }
    Ok(values)
}

/// Whether an integrity-check line is about a value breaking its column's rules (see
/// [`check_integrity`]), or a virtual table's module's own finding about the data it keeps in
/// its shadow tables ([`super::vtab::finding_table`]: a full-text index that does not match
/// the rows it indexes, [`is_stale_fts_index`], or that its module cannot check), not about
/// the file's structure.
pub fn is_about_values(line: &str) -> bool {
    // `NULL value in t.c`, `TEXT value in t.c`, `non-INTEGER value in t.c` (STRICT); not
    // `non-unique entry in index …`, which is damage.
    let kind = line.strip_prefix("non-").unwrap_or(line);
    line.starts_with("CHECK constraint failed")
        || super::vtab::finding_table(line).is_some()
        || ["NULL", "TEXT", "NUMERIC", "INTEGER", "REAL", "BLOB", "ANY"]
            .iter()
            .any(|t| {
                kind.strip_prefix(t)
                    .is_some_and(|r| r.starts_with(" value in "))
            })
}

/// Whether an integrity-check line says that an FTS3/4/5 table's index does not match the text
/// it indexes (`malformed inverted index for FTS4 table main.f`, SQLite 3.44 and later). An
/// external-content table (`content='docs'`) whose content table changed without the index
/// (no triggers, triggers lost when the table was rebuilt, no `'rebuild'`) is in that state in
/// the application's own database: its shadow tables and the content table are data, restored
/// exactly (every restore dumps back byte for byte), so the restored copy holds the same index.
pub fn is_stale_fts_index(line: &str) -> bool {
    line.starts_with("malformed inverted index for FTS")
}

/// Tests: overwrite most of a leaf page of the b-tree `name` (4 KiB pages) in the database at
/// `path` that `conn` has open; a new connection to the damaged file.
#[cfg(test)]
pub(super) fn damage_a_leaf(conn: Connection, path: &Path, name: &str) -> Connection {
    let page: i64 = conn
        .query_row(
            "SELECT pageno FROM dbstat WHERE name = ?1 AND pagetype = 'leaf' LIMIT 1",
            [name],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    let mut bytes = std::fs::read(path).unwrap();
    let at = (page as usize - 1) * 4096;
    bytes[at + 8..at + 200].fill(0xa5);
    std::fs::write(path, bytes).unwrap();
    Connection::open(path).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database with a large table `a`, a small table `b` (with an index), a table `c`
    /// whose NOT NULL column holds a NULL (a value finding, not damage), a virtual table of a
    /// module this build lacks and a full-text table.
    fn sample(dir: &Path, small_name: &str) -> std::path::PathBuf {
        let path = dir.join("t.db");
        let conn = Connection::open(&path).unwrap();
        let b = format!("\"{small_name}\"");
        conn.execute_batch(&format!(
            "CREATE TABLE a(x INTEGER PRIMARY KEY, y TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
             INSERT INTO a SELECT i, printf('%0100d', i) FROM n;
             CREATE TABLE {b}(k TEXT, v);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO {b} SELECT printf('key %d', i), i FROM n;
             CREATE INDEX b_k ON {b}(k);
             CREATE TABLE c(x); INSERT INTO c VALUES(NULL);
             PRAGMA writable_schema=ON;
             UPDATE sqlite_schema SET sql = 'CREATE TABLE c(x NOT NULL)' WHERE name = 'c';
             INSERT INTO sqlite_schema(type, name, tbl_name, rootpage, sql) VALUES('table',
                 'vt', 'vt', 0, 'CREATE VIRTUAL TABLE vt USING no_such_module(a)');
             CREATE VIRTUAL TABLE f USING fts5(body);
             INSERT INTO f VALUES('some words'), ('more words');"
        ))
        .unwrap();
        path
    }

    fn weights(small_name: &str) -> TableWeights {
        [
            ("a".to_string(), SPLIT_FROM),
            (small_name.to_string(), SPLIT_FROM / 8),
        ]
        .into()
    }

    #[test]
    fn a_split_check_finds_what_the_whole_check_finds() {
        for small in ["b", "we'ird \"\"b", "7"] {
            let dir = tempfile::tempdir().unwrap();
            let path = sample(dir.path(), small);
            let conn = Connection::open(&path).unwrap();
            let whole = check_integrity(&conn, Check::Quick).unwrap();
            assert_eq!(whole, ["NULL value in c.x"], "{small}");
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let plan = split_plan(&conn, &weights(&small.replace("\"\"", "\""))).unwrap();
            assert_eq!(
                plan.is_some(),
                small != "7" && cores > 1,
                "{small}: {plan:?}"
            );
            let split =
                quick_check_built(&conn, &path, &weights(&small.replace("\"\"", "\""))).unwrap();
            assert_eq!(split, whole, "{small}");

            // Damage a leaf page of the small table's index: both checks fail.
            let conn = damage_a_leaf(conn, &path, "b_k");
            assert!(check_integrity(&conn, Check::Quick).is_err(), "{small}");
            let split = quick_check_built(&conn, &path, &weights(&small.replace("\"\"", "\"")));
            assert!(split.is_err(), "{small}: {split:?}");
        }
    }

    #[test]
    fn value_findings_are_told_from_damage() {
        for line in [
            "CHECK constraint failed in t",
            "NULL value in t.b",
            "TEXT value in t.n",
            "non-INTEGER value in t.c",
            "malformed inverted index for FTS4 table main.f",
            "unable to validate the inverted index for FTS5 table main.f: SQL logic error",
        ] {
            assert!(is_about_values(line), "{line}");
        }
        for line in [
            "non-unique entry in index t_u",
            "row 3 missing from index t_i",
            "*** in database main ***\nPage 5: never used",
            "wrong # of entries in index t_i",
        ] {
            assert!(!is_about_values(line), "{line}");
        }
    }
}
