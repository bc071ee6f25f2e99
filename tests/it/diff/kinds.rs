//! A name that changes kind between two snapshots — virtual table, ordinary table, WITHOUT ROWID
//! table, view, a virtual table of another module — in both directions: the `--sql` patch must
//! apply with `sqlite3 -bail` and give exactly the newer snapshot.

use std::path::Path;

use rusqlite::Connection;

use crate::env::TestEnv;

/// Each way to define `t` (with a row or two), with another table that stays.
const KINDS: &[(&str, &str)] = &[
    (
        "fts5",
        "CREATE VIRTUAL TABLE t USING fts5(a); INSERT INTO t VALUES ('hello'), ('world');",
    ),
    (
        "rtree",
        "CREATE VIRTUAL TABLE t USING rtree(id, x0, x1); INSERT INTO t VALUES (1, 0, 2);",
    ),
    (
        "table",
        "CREATE TABLE t(a, b); INSERT INTO t VALUES (1, 2);",
    ),
    (
        "without_rowid",
        "CREATE TABLE t(a PRIMARY KEY, b) WITHOUT ROWID; INSERT INTO t VALUES ('k', 2);",
    ),
    ("view", "CREATE VIEW t AS SELECT x AS a FROM keep;"),
];

#[test]
fn a_name_changing_kind_patches_both_ways() {
    for (i, (from_kind, from_sql)) in KINDS.iter().enumerate() {
        for (to_kind, to_sql) in KINDS.iter().skip(i + 1) {
            for (a, a_sql, b, b_sql) in [
                (from_kind, from_sql, to_kind, to_sql),
                (to_kind, to_sql, from_kind, from_sql),
            ] {
                check(a, a_sql, b, b_sql);
            }
        }
    }
}

fn check(a: &str, a_sql: &str, b: &str, b_sql: &str) {
    let env = TestEnv::new();
    let keep = "CREATE TABLE keep(x); INSERT INTO keep VALUES (1);";
    let db_a = env.db_from_script("a.db", format!("{keep}{a_sql}").as_bytes());
    let db_b = env.db_from_script("b.db", format!("{keep}{b_sql}").as_bytes());
    patches_exactly(&env, &format!("{a} -> {b}"), &db_a, &db_b);
}

/// Snapshot `db_a` then `db_b` as one database; the `--sql` patch between them must apply with
/// `sqlite3 -bail` to a restore of the first and give exactly the second. Returns the patch.
fn patches_exactly(env: &TestEnv, what: &str, db_a: &Path, db_b: &Path) -> String {
    let repo = env.path("r.sqlgit");
    let r = repo.display().to_string();
    // Both snapshots of one database file name.
    let db = env.path("app.db");
    std::fs::copy(db_a, &db).unwrap();
    let d = db.display().to_string();
    let snap = |now: &str| {
        let mut cmd = env.sqlgit_cmd(&["snapshot", &d, "--repo", &r]);
        cmd.env("SQLGIT_NOW", now);
        env.run(cmd, b"").success();
    };
    snap("1700000000");
    std::fs::copy(db_b, &db).unwrap();
    snap("1700000100");
    let patch = env.sqlgit(&["diff", "HEAD~1", "HEAD", "--repo", &r, "--sql"]);
    if patch.code() != Some(1) {
        patch.fail(&format!("{what}: diff --sql"));
    }
    let target = env.path("patched.db");
    let t = target.display().to_string();
    env.sqlgit(&["restore", "HEAD~1", "--repo", &r, "--to", &t])
        .success();
    let applied = env.sqlite3_args(&["-bail"], &target, patch.stdout());
    if applied.code() != Some(0) || !applied.stderr().is_empty() {
        applied.fail(&format!("{what}: the patch does not apply"));
    }
    let got = env.sqlgit(&["dump", &t]).success();
    let want = env.sqlgit(&["cat", "HEAD", "--repo", &r]).success();
    assert!(
        got.stdout() == want.stdout(),
        "{what}: the patched database differs from the newer snapshot\n--- patch:\n{}\n--- got:\n{}\n--- want:\n{}",
        patch.stdout_str(),
        got.stdout_str(),
        want.stdout_str()
    );
    patch.stdout_str()
}

/// Views, indexes (in the table's `2-indexes.sql`) and triggers whose text has a CR before a
/// line end: the dump writes a one-line stand-in and puts the exact text back by `UPDATE
/// sqlite_schema` between `.dbconfig defensive off` / `PRAGMA writable_schema=ON` and `=RESET`.
/// A patch that creates or changes one must carry all of that, and drop objects by their names
/// only (not the `UPDATE` or pragma lines read as objects).
#[test]
fn objects_with_a_cr_before_a_line_end_patch_both_ways() {
    let env = TestEnv::new();
    let make = |name: &str, changed: &str, gone: &str, new: &str| {
        let path = env.path(name);
        let db = Connection::open(&path).unwrap();
        let objects = format!(
            "CREATE TABLE t(a, b); INSERT INTO t VALUES (1, 2), (3, 4);
             CREATE TABLE log(x);
             CREATE VIEW v_same AS SELECT a\r\n FROM t;
             CREATE VIEW v_changed AS SELECT a{changed}\r\n FROM t;
             CREATE INDEX i_plain ON t(b);
             CREATE INDEX i_same ON t(a,\r\n b);
             CREATE INDEX i_changed ON t(b{changed},\r\n a);
             CREATE TRIGGER g_same AFTER INSERT ON t BEGIN\r\n INSERT INTO log VALUES (1); END;
             CREATE TRIGGER g_changed AFTER UPDATE ON t BEGIN\r\n INSERT INTO log VALUES (2{changed}); END;
             CREATE VIEW {gone}_v AS SELECT b\r\n FROM t;
             CREATE INDEX {gone}_i ON t(a\r\n);
             CREATE TRIGGER {gone}_g AFTER DELETE ON t BEGIN\r\n SELECT 1; END;
             CREATE VIEW {new}_v AS SELECT 1\r\n, 2;
             CREATE TRIGGER {new}_g BEFORE DELETE ON t BEGIN\r\n SELECT 2; END;"
        );
        db.execute_batch(&objects).unwrap();
        path
    };
    let a = make("a.db", "", "dropped", "plain");
    let b = make("b.db", " + 1", "plain", "created");
    for (what, from, to) in [("old -> new", &a, &b), ("new -> old", &b, &a)] {
        let patch = patches_exactly(&TestEnv::new(), what, from, to);
        for line in patch.lines().filter(|l| l.starts_with("DROP ")) {
            let name = line.rsplit_once(' ').unwrap().1;
            assert!(
                [
                    "\"v_changed\";",
                    "\"i_changed\";",
                    "\"g_changed\";",
                    "\"g_same\";"
                ]
                .contains(&name)
                    || name.starts_with("\"dropped_")
                    || name.starts_with("\"created_")
                    || name.starts_with("\"plain_"),
                "{what}: a DROP of no object: {line}\n{patch}"
            );
        }
    }
}

#[test]
fn a_patch_carries_rows_that_break_their_own_checks() {
    let table = "CREATE TABLE t(id INTEGER PRIMARY KEY, a CHECK (a > 0));";
    check(
        "valid row",
        &format!("{table} INSERT INTO t VALUES (1, 5), (2, 6);"),
        "rows breaking the CHECK",
        &format!(
            "PRAGMA ignore_check_constraints=ON; {table} INSERT INTO t VALUES (1, -5), (3, -1);"
        ),
    );
}

/// A table whose rowid aliases are all columns is filled under a temporary name for its `rowid`
/// column; diff shows the column as `rowid`. No name reaches its real rowid, so its rows are a
/// multiset: a changed row is one out and one in, and `history` cannot name a row.
#[test]
fn a_column_named_rowid_is_shown_by_its_name() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(rowid, oid, _rowid_, a); INSERT INTO t VALUES (5, 6, 7, 'x');",
    );
    let (d, r) = (
        db.display().to_string(),
        env.path("r").display().to_string(),
    );
    let snap = |now: &str| {
        let mut cmd = env.sqlgit_cmd(&["snapshot", &d, "--repo", &r]);
        cmd.env("SQLGIT_NOW", now);
        env.run(cmd, b"").success();
    };
    snap("1700000000");
    env.sqlite3(&db, "UPDATE t SET rowid = 9;").success();
    snap("1700000100");
    let diff = env
        .sqlgit(&["diff", "HEAD~1", "HEAD", "--repo", &r])
        .code_is(1);
    let out = diff.stdout_str();
    assert!(!out.contains("sqlgit_rowid"), "{out}");
    assert!(
        out.contains("  - rowid=5, oid=6, _rowid_=7, a='x'\n"),
        "{out}"
    );
    assert!(
        out.contains("  + rowid=9, oid=6, _rowid_=7, a='x'\n"),
        "{out}"
    );
    let history = env.sqlgit(&["history", "t", "1", "--repo", &r]).code_is(2);
    assert!(
        history
            .stderr_str()
            .contains("no key a row can be named by"),
        "{}",
        history.stderr_str()
    );
}
