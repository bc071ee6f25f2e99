//! `--json` output through the real binary, as a JSON parser reads it: no value lost to a
//! repeated key (`query`), a snapshot of several databases named as such (`log`), every
//! configured remote present (`status`), and printed under `--quiet` too (`status`,
//! `snapshot`): it is what the command was asked for.

use serde_json::{Value, json};

use crate::env::{Run, TestEnv};

fn parsed(run: &Run) -> Value {
    serde_json::from_slice(run.stdout())
        .unwrap_or_else(|e| run.fail(&format!("stdout is not one JSON value: {e}")))
}

/// `SELECT b.id, a.id` gave `{"id": 7, "id": 8}`: parsers keep the last, so 7 was lost.
#[test]
fn query_json_keeps_columns_of_the_same_name() {
    let env = TestEnv::new();
    env.db_from_script(
        "app.db",
        b"CREATE TABLE authors(id INTEGER PRIMARY KEY, name);
          CREATE TABLE books(id INTEGER PRIMARY KEY, author_id, title);
          INSERT INTO authors VALUES(8, 'Ann'); INSERT INTO books VALUES(7, 8, 'A Book');",
    );
    env.sqlgit(&["snapshot", "app.db", "--repo", "R", "-q"])
        .success();
    let sql = "SELECT b.id, a.id, b.id FROM books b JOIN authors a ON a.id = b.author_id";
    let run = env
        .sqlgit(&["query", sql, "--repo", "R", "--json"])
        .success();
    assert_eq!(parsed(&run), json!([{"id": 7, "id:1": 8, "id:2": 7}]));
    let text = run.stdout_str();
    assert!(text.find("\"id\"") < text.find("\"id:1\""), "{text}");
}

/// A snapshot of a.db and b.db: `database` was "a.db" with both databases' totals.
#[test]
fn log_json_names_every_database_of_a_snapshot() {
    let env = TestEnv::new();
    env.db_from_script("a.db", b"CREATE TABLE t(x); INSERT INTO t VALUES(1),(2);");
    env.db_from_script("b.db", b"CREATE TABLE u(x); INSERT INTO u VALUES(1);");
    env.sqlgit(&["snapshot", "a.db", "b.db", "--repo", "R", "-q"])
        .success();
    let log = parsed(&env.sqlgit(&["log", "--repo", "R", "--json"]).success());
    let e = &log[0];
    assert_eq!(e["database"], Value::Null, "{e}");
    assert_eq!((&e["tables"], &e["rows"]), (&json!(2), &json!(3)), "{e}");
    let dbs = e["databases"].as_array().expect("databases");
    let names: Vec<&str> = dbs
        .iter()
        .map(|d| d["database"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a.db", "b.db"]);
    assert_eq!((&dbs[0]["tables"], &dbs[0]["rows"]), (&json!(1), &json!(2)));
    assert_eq!((&dbs[1]["tables"], &dbs[1]["rows"]), (&json!(1), &json!(1)));
    let bytes = |d: &Value| d["bytes"].as_u64().unwrap();
    assert_eq!(bytes(&dbs[0]) + bytes(&dbs[1]), bytes(e));

    // One database: named, its figures the totals.
    env.db_from_script("c.db", b"CREATE TABLE v(x);");
    env.sqlgit(&["snapshot", "c.db", "--repo", "S", "-q"])
        .success();
    let log = parsed(&env.sqlgit(&["log", "--repo", "S", "--json"]).success());
    assert_eq!(log[0]["database"], json!("c.db"));
    assert_eq!(log[0]["databases"][0]["tables"], json!(1));
}

/// A one-off run (`snapshot c.db` on a repository configured for a.db and b.db) keeps the
/// other folders in its snapshot: `log` named c.db alone, with c.db's figures as the totals.
/// The snapshot's databases are all three, with what the run that wrote each recorded.
#[test]
fn log_of_a_one_off_run_counts_the_databases_its_snapshot_keeps() {
    let env = TestEnv::new();
    env.db_from_script("a.db", b"CREATE TABLE t(x); INSERT INTO t VALUES(1),(2);");
    env.db_from_script("b.db", b"CREATE TABLE u(x); INSERT INTO u VALUES(1);");
    env.db_from_script("c.db", b"CREATE TABLE v(x); INSERT INTO v VALUES(3);");
    let (a, b) = (env.path("a.db"), env.path("b.db"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    env.sqlgit(&["init", "--repo", "R", "--db", a, "--db", b, "-q"])
        .success();
    env.sqlgit(&["snapshot", "--repo", "R", "-q"]).success();
    env.sqlgit(&["snapshot", "c.db", "--repo", "R", "-q"])
        .success();
    let log = parsed(&env.sqlgit(&["log", "--repo", "R", "--json"]).success());
    let (one_off, before) = (&log[0], &log[1]);
    assert_eq!(one_off["database"], Value::Null, "{one_off}");
    let dbs = one_off["databases"].as_array().expect("databases");
    let mut names: Vec<&str> = dbs
        .iter()
        .map(|d| d["database"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a.db", "b.db", "c.db"], "{one_off}");
    assert_eq!(
        (&one_off["tables"], &one_off["rows"]),
        (&json!(3), &json!(4)),
        "{one_off}"
    );
    let bytes = |d: &Value| d["bytes"].as_u64().unwrap();
    let sum: u64 = dbs.iter().map(bytes).sum();
    assert_eq!(sum, bytes(one_off));
    let c = dbs.iter().find(|d| d["database"] == "c.db").unwrap();
    assert_eq!(bytes(one_off), bytes(before) + bytes(c), "{log}");
    let text = env.sqlgit(&["log", "--repo", "R", "-n", "1"]).success();
    let line = text.stdout_str();
    assert!(
        line.contains("a.db, b.db, c.db: 3 tables, 4 rows")
            && line.contains("a.db, b.db as of an earlier snapshot"),
        "{line}"
    );
}

/// A history remote set after the last push: the text said "never pushed", the JSON left it
/// out. And `--json -q` printed nothing at all for `status` and `snapshot`.
#[test]
fn status_json_has_never_pushed_remotes_and_json_survives_quiet() {
    let env = TestEnv::new();
    env.db_from_script("app.db", b"CREATE TABLE t(a);");
    let latest = env.path("latest.git");
    let history = env.path("history.git");
    for remote in [&latest, &history] {
        env.git_in(
            env.root(),
            &["init", "-q", "--bare", remote.to_str().unwrap()],
        );
    }
    let latest = latest.to_str().unwrap();
    env.sqlgit(&[
        "snapshot",
        "app.db",
        "--repo",
        "R",
        "--latest-remote",
        latest,
        "-q",
    ])
    .success();
    let history = history.to_str().unwrap();
    env.sqlgit(&[
        "init",
        "--repo",
        "R",
        "--db",
        "app.db",
        "--history-remote",
        history,
        "-q",
    ])
    .success();
    // Unhealthy (exit 1): the snapshot is not on the history remote given since.
    let status = parsed(
        &env.sqlgit(&["status", "--repo", "R", "--json", "-q"])
            .code_is(1),
    );
    assert_eq!(
        status["problems"],
        json!(["1 snapshot is not on the history remote (the next run pushes it)"]),
        "{status}"
    );
    let remotes = &status["remotes"];
    assert_eq!(remotes["latest"]["pushed"], json!(true), "{status}");
    let h = &remotes["history"];
    assert_eq!(h["pushed"], json!(false), "{status}");
    assert!(
        h["url"].as_str().unwrap().ends_with("history.git"),
        "{status}"
    );
    assert_eq!(
        (&h["time"], &h["pending"]),
        (&Value::Null, &json!(1)),
        "{status}"
    );

    env.sqlite3(env.path("app.db"), "INSERT INTO t VALUES(1);")
        .success();
    let snap = parsed(
        &env.sqlgit(&["snapshot", "--repo", "R", "--json", "-q"])
            .success(),
    );
    assert!(snap.is_object(), "{snap}");
}
