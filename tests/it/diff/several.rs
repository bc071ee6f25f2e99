//! Repositories of several databases, or whose configured list changed: a database is its
//! folder's name, never "the only one in the snapshot". `diff FROM TO` and `query --at` refuse
//! two points that hold different databases; `history --db` compares across snapshots that left
//! the database out (not backed up there: no deletion); `diff --live` and `restore --into` of a
//! configured database reached through another path (the symlink the README suggests for two
//! databases of one file name) read its own folder, never the other database's.

use crate::env::{TestEnv, one_error_line};

use super::repo::T0;

/// The configured list went from a.db to b.db: each snapshot holds one database, of another
/// name. `diff HEAD~1 HEAD` reported a.db's row "updated" into b.db's (exit 1, and a `--sql`
/// patch turning a.db into b.db); `query --at` showed both side by side.
#[test]
fn two_snapshots_of_different_databases_are_not_compared() {
    let env = TestEnv::new();
    let a = env.db_from_script(
        "a.db",
        b"CREATE TABLE t(x); INSERT INTO t VALUES('from-a');",
    );
    let b = env.db_from_script(
        "b.db",
        b"CREATE TABLE t(x); INSERT INTO t VALUES('from-b');",
    );
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    env.sqlgit(&["init", "-q", "--repo", "R", "--db", a])
        .success();
    env.sqlgit_at(T0, &["snapshot", "-q", "--repo", "R"])
        .success();
    env.sqlgit(&["init", "-q", "--repo", "R", "--db", b])
        .success();
    env.sqlgit_at(T0 + 60, &["snapshot", "-q", "--repo", "R"])
        .success();
    for extra in [&[][..], &["--sql"], &["--json"], &["--summary"]] {
        let run = env.sqlgit(&[&["diff", "HEAD~1", "HEAD", "--repo", "R"][..], extra].concat());
        assert!(run.stdout().is_empty(), "{extra:?}: {}", run.stdout_str());
        let err = one_error_line(run, 2);
        assert!(
            err.contains("\"a.db\"") && err.contains("\"b.db\"") && err.contains("different"),
            "{extra:?}: {err}"
        );
    }
    // --db still names one database, which HEAD~1 does not hold.
    let run = env.sqlgit(&["diff", "HEAD~1", "HEAD", "--repo", "R", "--db", "b.db"]);
    assert!(one_error_line(run, 2).contains("no database \"b.db\""));
    // A snapshot against itself is still one database.
    env.sqlgit(&["diff", "HEAD", "HEAD", "--repo", "R"])
        .code_is(0)
        .assert_quiet();
    let sql = "SELECT x FROM t";
    let run = env.sqlgit(&[
        "query", "--at", "HEAD~1", "--at", "HEAD", sql, "--repo", "R",
    ]);
    assert!(run.stdout().is_empty(), "{}", run.stdout_str());
    // As query's other errors (`--db` naming a database a point lacks): exit 1.
    let err = one_error_line(run, 1);
    assert!(
        err.contains("\"a.db\"") && err.contains("\"b.db\""),
        "{err}"
    );
    let one = env.sqlgit(&["query", "--at", "HEAD", "--at", "HEAD", sql, "--repo", "R"]);
    assert!(one.success().stdout_str().contains("from-b"));
}

/// b.db left out of the configured list for one snapshot, then put back; its row never changed.
/// `history` reported it deleted where b.db was out of the list and inserted when it came back.
#[test]
fn history_compares_across_snapshots_without_the_database() {
    let env = TestEnv::new();
    let a = env.db_from_script("a.db", b"CREATE TABLE t(x); INSERT INTO t VALUES(1);");
    let b = env.db_from_script(
        "b.db",
        b"CREATE TABLE u(y TEXT); INSERT INTO u VALUES('b1');",
    );
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    env.sqlgit(&["init", "-q", "--repo", "R", "--db", a, "--db", b])
        .success();
    env.sqlgit_at(T0, &["snapshot", "-q", "--repo", "R"])
        .success();
    env.sqlgit(&["init", "-q", "--repo", "R", "--db", a])
        .success();
    env.sqlite3(a, "INSERT INTO t VALUES(2)").success();
    env.sqlgit_at(T0 + 60, &["snapshot", "-q", "--repo", "R"])
        .success();
    env.sqlgit(&["init", "-q", "--repo", "R", "--db", a, "--db", b])
        .success();
    env.sqlite3(a, "INSERT INTO t VALUES(3)").success();
    env.sqlgit_at(T0 + 120, &["snapshot", "-q", "--repo", "R"])
        .success();
    let json = env.sqlgit(&["history", "u", "1", "--repo", "R", "--db", "b.db", "--json"]);
    let json = json.success();
    let events: serde_json::Value = serde_json::from_slice(json.stdout()).unwrap();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["inserted"], "{events}");
    let warning = json.stderr_str();
    assert!(
        warning.contains("\"b.db\" is absent from 1 snapshot")
            && warning.contains("not read as deleted"),
        "{warning}"
    );
    // Left out of the newest snapshot: still found by --db, and not deleted there either.
    env.sqlgit(&["init", "-q", "--repo", "R", "--db", a])
        .success();
    env.sqlite3(a, "INSERT INTO t VALUES(4)").success();
    env.sqlgit_at(T0 + 180, &["snapshot", "-q", "--repo", "R"])
        .success();
    let run = env.sqlgit(&["history", "u", "1", "--repo", "R", "--db", "b.db", "--json"]);
    let events: serde_json::Value = serde_json::from_slice(run.success().stdout()).unwrap();
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    assert_eq!(events[0]["kind"], "inserted", "{events}");
}

/// Two databases of one file name, x/app.db and y/app.db, the second configured through the
/// symlink app2.db (the README's remedy). `diff HEAD --live y/app.db` compared y's file with
/// x's folder (app.db, named like the file) and reported a false update; `restore --into`
/// refused without --db. Both now read app2.db's folder: y's own.
#[test]
fn a_configured_database_reached_by_another_path_reads_its_own_folder() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("x")).unwrap();
    std::fs::create_dir_all(env.path("y")).unwrap();
    let x = env.db_from_script("x/app.db", b"CREATE TABLE t(v); INSERT INTO t VALUES('x');");
    let y = env.db_from_script("y/app.db", b"CREATE TABLE t(v); INSERT INTO t VALUES('y');");
    let link = env.path("app2.db");
    std::os::unix::fs::symlink(&y, &link).unwrap();
    let (x, y, link) = (
        x.to_str().unwrap(),
        y.to_str().unwrap(),
        link.to_str().unwrap(),
    );
    env.sqlgit(&["init", "-q", "--repo", "R", "--db", x, "--db", link])
        .success();
    env.sqlgit_at(T0, &["snapshot", "-q", "--repo", "R"])
        .success();
    for path in [y, "y/app.db", link, x] {
        env.sqlgit(&["diff", "HEAD", "--live", path, "--repo", "R"])
            .code_is(0)
            .assert_quiet();
    }
    env.sqlite3(y, "UPDATE t SET v = 'y2'").success();
    let run = env.sqlgit(&["diff", "HEAD", "--live", "y/app.db", "--repo", "R"]);
    let out = run.code_is(1).stdout_str();
    assert!(out.contains("'y' → 'y2'"), "{out}");
    // restore --into y/app.db: app2.db's folder, y's own row back.
    env.sqlgit(&["restore", "--repo", "R", "--into", "y/app.db", "-q"])
        .success();
    let got = env.sqlite3(y, "SELECT v FROM t").success().stdout_str();
    assert_eq!(got.trim(), "y");
    let got = env.sqlite3(x, "SELECT v FROM t").success().stdout_str();
    assert_eq!(got.trim(), "x");
}

/// A configured database restored from a snapshot taken before it was added: the snapshot's
/// only folder is another database's, which `restore --into` (and `--to --force` over it) put
/// in its place without a word.
#[test]
fn restore_of_a_configured_database_never_takes_another_ones_folder() {
    let env = TestEnv::new();
    let a = env.db_from_script("a.db", b"CREATE TABLE t(x); INSERT INTO t VALUES('a');");
    let b = env.db_from_script("b.db", b"CREATE TABLE t(x); INSERT INTO t VALUES('b');");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    env.sqlgit(&["init", "-q", "--repo", "R", "--db", a])
        .success();
    env.sqlgit_at(T0, &["snapshot", "-q", "--repo", "R"])
        .success();
    env.sqlgit(&["init", "-q", "--repo", "R", "--db", a, "--db", b])
        .success();
    env.sqlgit_at(T0 + 60, &["snapshot", "-q", "--repo", "R"])
        .success();
    for args in [
        &["restore", "HEAD~1", "--repo", "R", "--into", b][..],
        &["restore", "HEAD~1", "--repo", "R", "--to", b, "--force"],
    ] {
        let err = one_error_line(env.sqlgit(args), 1);
        assert!(
            err.contains("no database \"b.db\"") && err.contains("(it has: a.db)"),
            "{args:?}: {err}"
        );
        let got = env.sqlite3(b, "SELECT x FROM t").success().stdout_str();
        assert_eq!(got.trim(), "b", "{args:?}");
    }
    // A copy that is no configured database still restores the snapshot's only one.
    let copy = env.path("copy.db");
    std::fs::copy(b, &copy).unwrap();
    env.sqlgit(&[
        "restore",
        "HEAD~1",
        "--repo",
        "R",
        "--into",
        copy.to_str().unwrap(),
        "-q",
    ])
    .success();
    let got = env.sqlite3(&copy, "SELECT x FROM t").success().stdout_str();
    assert_eq!(got.trim(), "a");
}
