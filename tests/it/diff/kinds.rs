//! A name that changes kind between two snapshots — virtual table, ordinary table, WITHOUT ROWID
//! table, view, a virtual table of another module — in both directions: the `--sql` patch must
//! apply with `sqlite3 -bail` and give exactly the newer snapshot.

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
    let what = format!("{a} -> {b}");
    let keep = "CREATE TABLE keep(x); INSERT INTO keep VALUES (1);";
    let db_a = env.db_from_script("a.db", format!("{keep}{a_sql}").as_bytes());
    let db_b = env.db_from_script("b.db", format!("{keep}{b_sql}").as_bytes());
    let repo = env.path("r.sqlgit");
    let r = repo.display().to_string();
    // Both snapshots of one database file name.
    let db = env.path("app.db");
    std::fs::copy(&db_a, &db).unwrap();
    let d = db.display().to_string();
    let snap = |now: &str| {
        let mut cmd = env.sqlgit_cmd(&["snapshot", &d, "--repo", &r]);
        cmd.env("SQLGIT_NOW", now);
        env.run(cmd, b"").success();
    };
    snap("1700000000");
    std::fs::copy(&db_b, &db).unwrap();
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
