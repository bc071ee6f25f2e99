//! `--exclude-table` and `--redact`: excluded tables and redacted values in no object that leaves
//! the machine.

use super::*;

// ------------------------------------------------------------------------------------------------
// 10. Filters

#[test]
fn filters_keep_excluded_tables_and_redacted_columns_out_of_every_object() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    let history = daemon.create_bare("hist");
    let latest = daemon.create_bare("latest");
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE secrets(id INTEGER PRIMARY KEY, k TEXT);\n\
          INSERT INTO secrets VALUES (1, 'TOPSECRET-1234');\n\
          CREATE INDEX secrets_k ON secrets(k);\n\
          CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, password_hash TEXT);\n\
          INSERT INTO users VALUES (1, 'ann', 'HASHVALUE-5678'), (2, 'bob', 'HASHVALUE-5678');\n\
          CREATE INDEX users_pw ON users(password_hash);\n\
          CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);\n\
          INSERT INTO notes VALUES (1, 'harmless');\n",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let (h_url, l_url) = (daemon.url("hist"), daemon.url("latest"));
    sg(
        &env,
        T0,
        &[
            "snapshot",
            &d,
            "--repo",
            &r,
            "--exclude-table",
            "secrets",
            "--redact",
            "users.password_hash",
            "--latest-remote",
            &l_url,
            "--history-remote",
            &h_url,
        ],
    )
    .success()
    .assert_quiet();

    let check = |what: &str| {
        for (name, dir) in [("local", &repo), ("history", &history), ("latest", &latest)] {
            let objects = all_objects(&env, dir);
            for needle in ["TOPSECRET-", "HASHVALUE-"] {
                assert!(
                    !contains(&objects, needle.as_bytes()),
                    "{what}: {needle} found in an object of the {name} repository"
                );
            }
            assert!(
                contains(&objects, b"harmless"),
                "{what}: the {name} repository should hold the data that is not filtered"
            );
        }
    };
    check("first snapshot");

    // The snapshot restores: users present with the hash gone, secrets absent.
    let dump = sg(&env, T0, &["cat", "--repo", &r]).success().output.stdout;
    let restored = env.restore(&dump, "restored.db");
    assert_eq!(
        query(
            &env,
            &restored,
            "SELECT count(*) FROM sqlite_schema WHERE tbl_name = 'secrets';"
        ),
        "0",
        "the excluded table and its index are absent"
    );
    assert_eq!(
        query(&env, &restored, "SELECT id, name FROM users ORDER BY id;"),
        "1|ann\n2|bob"
    );
    let hashes = query(&env, &restored, "SELECT quote(password_hash) FROM users;");
    assert!(
        !hashes.contains("HASHVALUE"),
        "password_hash is NULL or a placeholder: {hashes}"
    );
    assert_eq!(
        query(&env, &restored, "SELECT body FROM notes;"),
        "harmless"
    );
    assert_eq!(query(&env, &restored, "PRAGMA integrity_check;"), "ok");

    // Filters are remembered: a later run without flags still keeps new secrets out.
    sql(
        &env,
        &db,
        "INSERT INTO secrets VALUES (2, 'TOPSECRET-9999');\n\
         INSERT INTO users VALUES (3, 'cy', 'HASHVALUE-0000');\n\
         INSERT INTO notes VALUES (2, 'harmless too');",
    );
    sg(&env, T0 + 60, &["snapshot", "--repo", &r])
        .success()
        .assert_quiet();
    assert_eq!(commit_count(&env, &history), 2);
    check("second snapshot, filters from the config");
    drop(daemon);
}

/// A migration that renames a redacted column (or the table) leaves the saved pattern behind:
/// the run fails before it reads anything, records the failure (hook, status) and says how to
/// give the new name, instead of committing the values under the new name.
#[test]
fn a_saved_redaction_a_migration_renamed_fails_the_run_before_any_commit() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT, pw TEXT);\n\
          INSERT INTO users VALUES (1, 'a@x', 'SECRETPW-1');\n",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let failed = env.path("failed");
    let hook = format!("touch {}", s(&failed));
    sg(
        &env,
        T0,
        &[
            "init",
            "--repo",
            &r,
            "--db",
            &d,
            "--redact",
            "users.pw",
            "--redact",
            "users.email",
        ],
    )
    .success();
    sg(&env, T0, &["snapshot", "--repo", &r, "--on-failure", &hook]).success();
    let before = head(&env, &repo);
    for (n, (migration, what, fix)) in [
        (
            "ALTER TABLE users RENAME COLUMN pw TO password_hash;",
            "users.pw matches no column of users",
            "--redact 'users.NEWNAME' --redact 'users.email'`",
        ),
        (
            "ALTER TABLE users RENAME TO accounts;",
            "users.pw matches no table",
            "--redact 'NEWNAME.pw' --redact 'users.email'`",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        env.sqlite3(&db, migration).success();
        let line = one_error_line(
            sg(&env, T0 + 60 * (n as u64 + 1), &["snapshot", "--repo", &r]),
            1,
        );
        assert!(
            line.contains(what) && line.contains(&d) && line.contains(fix),
            "{line}"
        );
        assert!(
            line.contains(&format!("`sqlgit init --repo {r} --redact 'users.email'`")),
            "{line}"
        );
        assert_eq!(head(&env, &repo), before, "nothing committed");
        assert!(failed.exists(), "the failure hook ran");
        std::fs::remove_file(&failed).unwrap();
        assert_ne!(
            sg(&env, T0 + 200, &["status", "--repo", &r, "--quiet"]).code(),
            Some(0)
        );
    }
    let dump = sg(&env, T0 + 300, &["cat", "--repo", &r])
        .success()
        .stdout_str();
    assert!(!dump.contains("SECRETPW"), "{dump}");
}

/// The patterns apply to every database of a repository: one that redacts a column in one of
/// them passes where another database's table lacks that column (it never had it); a rename
/// there since its last snapshot fails, and the printed fix keeps the pattern beside the new
/// name (it still redacts the other database's column), never dropping a redaction.
#[test]
fn a_redaction_of_one_database_of_several_may_miss_in_the_other() {
    let env = TestEnv::new();
    let a = env.db_from_script(
        "a.db",
        b"CREATE TABLE users(id INTEGER PRIMARY KEY, name, pw);\n\
          INSERT INTO users VALUES (1, 'al', 'SECRET-A');\n",
    );
    let b = env.db_from_script(
        "b.db",
        b"CREATE TABLE users(id INTEGER PRIMARY KEY, name); INSERT INTO users VALUES (1, 'zed');\n\
          CREATE TABLE staff(id INTEGER PRIMARY KEY, pw); INSERT INTO staff VALUES (1, 'SECRET-S');\n",
    );
    let repo = env.path("r");
    let (da, db_, r) = (s(&a), s(&b), s(&repo));
    // (A given list replaces the saved one: a warning names the patterns it drops.)
    let init = |now, redact: &[&str]| {
        let mut args = vec!["init", "-q", "--repo", &r, "--db", &da, "--db", &db_];
        for p in redact {
            args.extend(["--redact", p]);
        }
        sg(&env, now, &args).success();
    };
    init(T0, &["users.pw", "staff.pw"]);
    sg(&env, T0, &["snapshot", "-q", "--repo", &r])
        .success()
        .assert_quiet();
    let cat = |db: &str| {
        sg(&env, T0, &["cat", "--repo", &r, "--db", db])
            .success()
            .stdout_str()
    };
    let want = sg(&env, T0, &["dump", &da, "--redact", "users.pw"])
        .success()
        .stdout_str();
    assert_eq!(cat("a.db"), want);
    // A glob too, over databases where some tables have no `pw`.
    init(T0, &["*.pw"]);
    sg(&env, T0 + 60, &["snapshot", "-q", "--repo", &r])
        .success()
        .assert_quiet();
    assert!(!cat("a.db").contains("SECRET") && !cat("b.db").contains("SECRET"));

    // b.db's staff renames pw: its values would be committed under the new name.
    sql(&env, &b, "ALTER TABLE staff RENAME COLUMN pw TO passwd;");
    let before = head(&env, &repo);
    let line = one_error_line(sg(&env, T0 + 120, &["snapshot", "--repo", &r]), 1);
    assert!(
        line.contains("no column of staff in") && line.contains(&db_),
        "{line}"
    );
    assert!(
        line.contains(&format!(
            "`sqlgit init --repo {r} --redact '*.pw' --redact 'staff.NEWNAME'`"
        )),
        "{line}"
    );
    assert!(!line.contains("--redact ''"), "{line}");
    assert_eq!(head(&env, &repo), before, "nothing committed");
    // The printed fix, with the new name, works.
    init(T0, &["*.pw", "staff.passwd"]);
    sg(&env, T0 + 180, &["snapshot", "-q", "--repo", &r])
        .success()
        .assert_quiet();
    assert!(!cat("b.db").contains("SECRET"), "{}", cat("b.db"));
    // A column dropped leaks nothing: no failure while the pattern redacts in b.db.
    sql(&env, &b, "CREATE TABLE keys(id INTEGER PRIMARY KEY, pw);");
    sql(&env, &a, "ALTER TABLE users DROP COLUMN pw;");
    sg(&env, T0 + 240, &["snapshot", "-q", "--repo", &r])
        .success()
        .assert_quiet();
}

/// A `--redact` that can never match is refused when it is not TABLE.COLUMN, and one whose
/// pattern names no table or no column of the database fails the run before anything is read
/// (a misspelt or renamed column redacts nothing: it must not pass unnoticed).
#[test]
fn a_redaction_that_matches_nothing_is_said_loudly() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT);\n\
          INSERT INTO users VALUES (1, 'a@example.com');\n",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let run = sg(
        &env,
        T0,
        &["snapshot", &d, "--repo", &r, "--redact", "email"],
    );
    assert_eq!(run.code(), Some(2), "{}", run.stderr_str());
    for (spec, what) in [
        ("user.email", "no table"),
        ("users.emial", "no column of users"),
    ] {
        let line = one_error_line(
            sg(&env, T0, &["snapshot", &d, "--repo", &r, "--redact", spec]),
            1,
        );
        assert!(
            line.contains(&format!("redact pattern {spec} matches {what}"))
                && line.contains(&format!("sqlgit init --repo {r}")),
            "{line}"
        );
    }
    let main = git_run(&env, &repo, &["rev-parse", "--verify", "refs/heads/main"]);
    assert_ne!(main.code(), Some(0), "nothing was committed");
    sg(
        &env,
        T0 + 120,
        &["snapshot", &d, "--repo", &r, "--redact", "users.email"],
    )
    .success()
    .assert_quiet();

    // A misspelt table to leave out is said the same way.
    let run = sg(
        &env,
        T0 + 180,
        &["snapshot", "--repo", &r, "--exclude-table", "usr*"],
    )
    .success();
    assert!(
        run.stderr_str()
            .contains("--exclude-table usr* matches no table"),
        "{}",
        run.stderr_str()
    );
    sg(
        &env,
        T0 + 180,
        &["snapshot", "--repo", &r, "--exclude-table", ""],
    )
    .success()
    .assert_quiet();
    // A redaction the database refuses (a key column) fails the run and is not remembered;
    // `--redact ""` forgets the saved ones.
    one_error_line(
        sg(
            &env,
            T0 + 240,
            &["snapshot", "--repo", &r, "--redact", "users.id"],
        ),
        1,
    );
    assert_eq!(
        git(&env, &repo, &["config", "--get-all", "sqlgit.redact"]),
        "users.email"
    );
    sg(&env, T0 + 240, &["snapshot", "--repo", &r, "--redact", ""])
        .success()
        .assert_quiet();
    let listed = git_run(&env, &repo, &["config", "--get-all", "sqlgit.redact"]);
    assert_ne!(listed.code(), Some(0), "{}", listed.stdout_str());
}

/// A given `--redact` or `--exclude-table` list replaces the saved one (flags override), and a
/// saved pattern it leaves out is named on stderr: adding one redaction that way must not
/// un-redact the others unnoticed. `""` forgets them on purpose, quietly.
#[test]
fn a_given_filter_list_names_the_saved_patterns_it_drops() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE users(id INTEGER PRIMARY KEY, pw TEXT, ssn TEXT);\n\
          CREATE TABLE sessions(id INTEGER PRIMARY KEY);\n",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let init = |args: &[&str]| sg(&env, T0, &[&["init", "--repo", &*r][..], args].concat());
    init(&[
        "--db",
        &d,
        "--redact",
        "users.pw",
        "--exclude-table",
        "sessions",
    ])
    .success();
    let run = init(&["--redact", "users.ssn"]).success();
    let err = run.stderr_str();
    assert!(
        err.contains("users.pw no longer applied") && err.contains("--redact"),
        "{err}"
    );
    assert!(!err.contains("sessions"), "{err}");
    let run = sg(
        &env,
        T0,
        &["snapshot", "--repo", &r, "--exclude-table", "users"],
    )
    .success();
    let err = run.stderr_str();
    assert!(
        err.contains("sessions no longer applied") && err.contains("--exclude-table"),
        "{err}"
    );
    init(&["--redact", ""]).success().assert_quiet();
}
