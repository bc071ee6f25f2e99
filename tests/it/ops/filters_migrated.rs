//! `redact` patterns a migration left behind, judged on the schema each dump reads: a rename
//! during the run, a table renamed in one database of several, and `diff --live`, which dumps
//! as a snapshot would.

use super::*;

/// `users(id, pw)` holding `SECRET-…` values, snapshotted in `r` with `--redact users.pw`.
fn redacted_repo(env: &TestEnv, names: &[&str]) -> (Vec<PathBuf>, PathBuf) {
    let dbs: Vec<PathBuf> = names
        .iter()
        .map(|n| {
            env.db_from_script(
                n,
                format!(
                    "CREATE TABLE users(id INTEGER PRIMARY KEY, name, pw);\n\
                     INSERT INTO users VALUES (1, 'al', 'SECRET-{n}');\n"
                )
                .as_bytes(),
            )
        })
        .collect();
    let repo = env.path("r");
    let r = s(&repo);
    let mut args = vec!["init".to_string(), "-q".into(), "--repo".into(), r.clone()];
    for db in &dbs {
        args.extend(["--db".to_string(), s(db)]);
    }
    args.extend(["--redact".to_string(), "users.pw".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sg(env, T0, &args).success();
    sg(env, T0, &["snapshot", "-q", "--repo", &r])
        .success()
        .assert_quiet();
    (dbs, repo)
}

#[track_caller]
fn no_secret_in_any_object(env: &TestEnv, repo: &Path) {
    let objects = all_objects(env, repo);
    assert!(
        !contains(&objects, b"SECRET-"),
        "a redacted value is in an object"
    );
}

/// The check on the patterns judges the schema the dump reads, inside its read transaction: a
/// migration that renames the column after the run's first check (here while the run is stopped
/// between that check and the dump) fails the run, nothing committed or written.
#[test]
fn a_rename_between_the_check_and_the_read_fails_the_run() {
    let env = TestEnv::new();
    let (dbs, repo) = redacted_repo(&env, &["a.db"]);
    let before = head(&env, &repo);
    let run = env.sqlgit_paused(
        T0 + 60,
        &["snapshot", "--repo", &s(&repo)],
        "snapshot-opened",
        || {
            sql(
                &env,
                &dbs[0],
                "ALTER TABLE users RENAME COLUMN pw TO password;\n\
                 INSERT INTO users VALUES (2, 'bo', 'SECRET-new');",
            )
        },
    );
    let line = one_error_line(run, 1);
    assert!(
        line.contains("redact pattern users.pw matches no column of users")
            && line.contains("nothing was snapshotted"),
        "{line}"
    );
    assert_eq!(head(&env, &repo), before, "nothing committed");
    no_secret_in_any_object(&env, &repo);
}

/// A pattern shared by two databases: a table renamed in one of them (the other still has
/// `users.pw`) fails the run as a renamed column does; a table dropped leaks nothing and
/// passes; the printed fix, with the new name, passes.
#[test]
fn a_table_renamed_in_one_database_of_several_fails_the_run() {
    let env = TestEnv::new();
    let (dbs, repo) = redacted_repo(&env, &["a.db", "b.db"]);
    let r = s(&repo);
    let before = head(&env, &repo);
    sql(
        &env,
        &dbs[1],
        "ALTER TABLE users RENAME TO accounts;\n\
         INSERT INTO accounts VALUES (2, 'bo', 'SECRET-b2');",
    );
    let line = one_error_line(sg(&env, T0 + 60, &["snapshot", "--repo", &r]), 1);
    assert!(
        line.contains(&format!("users.pw matches no table in {}", s(&dbs[1])))
            && line.contains("accounts")
            && line.contains(&format!(
                "`sqlgit init --repo {r} --redact 'users.pw' --redact 'NEWNAME.pw'`"
            )),
        "{line}"
    );
    assert_eq!(head(&env, &repo), before, "nothing committed");
    no_secret_in_any_object(&env, &repo);
    // The fix printed, with the new name.
    let init = ["init", "-q", "--repo", &r, "--redact", "users.pw"];
    sg(
        &env,
        T0,
        &[&init[..], &["--redact", "accounts.pw"]].concat(),
    )
    .success();
    sg(&env, T0 + 120, &["snapshot", "-q", "--repo", &r])
        .success()
        .assert_quiet();
    no_secret_in_any_object(&env, &repo);
    // A table dropped: nothing to leak.
    sg(&env, T0, &init).success();
    sql(&env, &dbs[1], "DROP TABLE accounts;");
    sg(&env, T0 + 180, &["snapshot", "-q", "--repo", &r])
        .success()
        .assert_quiet();
}

/// `diff --live` dumps as a snapshot would, so it refuses what a snapshot refuses: a pattern a
/// migration left behind shows no value, and leaves nothing in TMPDIR.
#[test]
fn diff_live_refuses_a_redaction_a_snapshot_refuses() {
    let env = TestEnv::new();
    let (dbs, repo) = redacted_repo(&env, &["a.db"]);
    let r = s(&repo);
    sql(
        &env,
        &dbs[0],
        "ALTER TABLE users RENAME COLUMN pw TO password;\n\
         INSERT INTO users VALUES (2, 'bo', 'SECRET-new');",
    );
    one_error_line(sg(&env, T0 + 60, &["snapshot", "--repo", &r]), 1);
    let tmp = env.tmpdir();
    let listed = || list_dir(&tmp);
    let was = listed();
    let run = sg(
        &env,
        T0 + 60,
        &["diff", "--repo", &r, "HEAD", "--live", &s(&dbs[0])],
    );
    assert!(!run.stdout_str().contains("SECRET"), "{}", run.stdout_str());
    let line = one_error_line(run, 2);
    assert!(
        line.contains("redact pattern users.pw matches no column of users")
            && line.contains("nothing was compared"),
        "{line}"
    );
    assert_eq!(listed(), was, "the temporary repository is removed");
    // Without the migration's column, the same diff shows the rows, redacted.
    sql(
        &env,
        &dbs[0],
        "ALTER TABLE users RENAME COLUMN password TO pw;",
    );
    let run = sg(
        &env,
        T0 + 60,
        &["diff", "--repo", &r, "HEAD", "--live", &s(&dbs[0])],
    );
    let out = run.code_is(1).stdout_str();
    assert!(out.contains("id=2") && !out.contains("SECRET"), "{out}");
}
