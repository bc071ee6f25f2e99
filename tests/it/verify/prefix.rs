//! Databases whose folder names start alike (`app.db` and `app.db old`, `b.db` and `b.db 2`):
//! each one's figures in a commit of several are its own, so a good snapshot restores and
//! verifies, and one that lost a table fails.

use super::{remove_keeping_message, s};
use crate::env::TestEnv;

fn json_figures(env: &TestEnv, repo: &str, db: &str) -> (u64, u64) {
    let out = env.sqlgit(&["log", "--json", "--repo", repo]).success();
    let log: serde_json::Value = serde_json::from_slice(out.stdout()).unwrap();
    let entry = log[0]["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["database"] == db)
        .unwrap_or_else(|| panic!("{db} in {log}"))
        .clone();
    (
        entry["tables"].as_u64().unwrap(),
        entry["rows"].as_u64().unwrap(),
    )
}

#[test]
fn a_database_named_like_the_start_of_another_has_its_own_figures() {
    let env = TestEnv::new();
    let app = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(x); INSERT INTO t VALUES (1),(2),(3);",
    );
    let old = env.db_from_script(
        "app.db old",
        b"CREATE TABLE t(x); INSERT INTO t VALUES (1);",
    );
    let repo = s(&env.path("r.sqlgit"));
    // The longer name first: its summary line comes first in the commit message.
    let (app_arg, old_arg) = (s(&app), s(&old));
    env.sqlgit(&[
        "init", "--repo", &repo, "--db", &old_arg, "--db", &app_arg, "-q",
    ])
    .success();
    env.sqlgit(&["snapshot", "--repo", &repo, "-q"]).success();
    env.sqlgit(&["cat", "--repo", &repo, "--db", "app.db"])
        .success();
    let to = s(&env.path("o.db"));
    env.sqlgit(&[
        "restore", "--repo", &repo, "--db", "app.db", "--to", &to, "-q",
    ])
    .success();
    env.sqlgit(&["verify", "--repo", &repo, "-q"]).success();
    assert_eq!(json_figures(&env, &repo, "app.db"), (1, 3));
    assert_eq!(json_figures(&env, &repo, "app.db old"), (1, 1));
}

/// `b.db 2`'s line read as b.db's gave four numbers, and the check was skipped: a snapshot of
/// b.db that lost a table passed.
#[test]
fn a_lost_table_fails_beside_a_database_named_like_it_plus_a_number() {
    let env = TestEnv::new();
    let b = env.db_from_script(
        "b.db",
        b"CREATE TABLE t(x); INSERT INTO t VALUES (1),(2),(3); CREATE TABLE u(y); \
          INSERT INTO u VALUES (1);",
    );
    let b2 = env.db_from_script("b.db 2", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    let repo = env.path("r.sqlgit");
    let (b_arg, b2_arg) = (s(&b), s(&b2));
    env.sqlgit(&[
        "init",
        "--repo",
        &s(&repo),
        "--db",
        &b2_arg,
        "--db",
        &b_arg,
        "-q",
    ])
    .success();
    env.sqlgit(&["snapshot", "--repo", &s(&repo), "-q"])
        .success();
    env.sqlgit(&["verify", "--repo", &s(&repo), "-q"]).success();
    remove_keeping_message(&env, &repo, "b.db/1-tables/u");
    let run = env.sqlgit(&["verify", "--repo", &s(&repo)]).code_is(1);
    let err = run.stderr_str();
    assert!(
        err.contains("incomplete") && err.contains("b.db") && !err.contains("records no tables"),
        "{err}"
    );
}
