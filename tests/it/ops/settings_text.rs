//! Settings as text in `DIR/config`: every value sqlgit writes (database paths, filter patterns,
//! hooks) reads back exactly, through sqlgit and through plain git, whatever it holds (quotes,
//! backslashes, `;`, `#`, outer spaces, tabs, line breaks, non-ASCII); and `--full-every` is
//! remembered like the other settings.

use super::*;

/// `git config -f REPO/config --null --get-all KEY`: every value, exactly.
fn exact_values(env: &TestEnv, repo: &Path, key: &str) -> Vec<String> {
    let config = s(&repo.join("config"));
    let run = git_run(
        env,
        env.root(),
        &["config", "-f", &config, "--null", "--get-all", key],
    );
    match run.code() {
        Some(0) => run
            .stdout_str()
            .split('\0')
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect(),
        Some(1) => Vec::new(),
        _ => run.fail("git config --get-all"),
    }
}

/// A database path with a `"` was read back without it: the runs snapshotted another file of
/// that name. Each value must round-trip, and plain git must still read the repository.
#[test]
fn database_paths_and_filters_round_trip_whatever_they_hold() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("w")).unwrap();
    let quoted = env.db_from_script(
        "w/\"prod\".db",
        b"CREATE TABLE t(x); INSERT INTO t VALUES('the quoted one');",
    );
    env.db_from_script(
        "w/prod.db",
        b"CREATE TABLE t(x); INSERT INTO t VALUES('the OTHER database');",
    );
    let slash = env.db_from_script("w/back\\slash; #1 é.db", b"CREATE TABLE u(x);");
    let repo = env.path("r");
    let r = s(&repo);
    let patterns = [
        "se\"ss",
        "back\\slash",
        " lead;ing#",
        "trail\t ",
        "new\nline",
        "ünï",
    ];
    let mut args = vec!["init", "-q", "--repo", &r];
    let (q, sl) = (s(&quoted), s(&slash));
    args.extend(["--db", &q, "--db", &sl]);
    for p in &patterns {
        args.extend(["--exclude-table", p]);
    }
    args.extend(["--redact", "t.x"]);
    sg(&env, T0, &args).success().assert_quiet();
    assert_eq!(
        exact_values(&env, &repo, "sqlgit.db"),
        [q.clone(), sl.clone()]
    );
    assert_eq!(exact_values(&env, &repo, "sqlgit.excludeTable"), patterns);
    // Redact patterns too (another repository: these match no table).
    let other = env.path("r2");
    let weird = ["t\"\\.x \t#;", " \"a\".b "];
    let o = s(&other);
    sg(
        &env,
        T0,
        &[
            "init", "-q", "--repo", &o, "--db", &q, "--redact", weird[0], "--redact", weird[1],
        ],
    )
    .success()
    .assert_quiet();
    assert_eq!(exact_values(&env, &other, "sqlgit.redact"), weird);
    // The repository opens for plain git.
    git(&env, &repo, &["config", "--list"]);

    let run = sg(&env, T0, &["snapshot", "--repo", &r]).success();
    let dump = sg(&env, T0, &["cat", "--repo", &r, "--db", "%22prod%22.db"])
        .success()
        .stdout_str();
    assert!(dump.contains("(1,NULL);"), "{dump}\n{}", run.stderr_str());
    assert!(!dump.contains("OTHER"), "{dump}");
    let folders = git(
        &env,
        &repo,
        &[
            "-c",
            "core.quotePath=false",
            "ls-tree",
            "--name-only",
            "main",
        ],
    );
    assert_eq!(folders, "%22prod%22.db\nback%5Cslash%3B %231 é.db");
    git(&env, &repo, &["log", "--oneline"]);
}

/// A table whose name holds a quote, excluded: it stays out of the snapshot (it was saved as
/// `sess`, which matched nothing, and plain git could not open the repository any more).
#[test]
fn an_excluded_table_named_with_a_quote_stays_out() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "x.db",
        b"CREATE TABLE \"se\"\"ss\"(k); INSERT INTO \"se\"\"ss\" VALUES(42); CREATE TABLE keep(k);",
    );
    let r = s(&env.path("r"));
    sg(
        &env,
        T0,
        &[
            "snapshot",
            &s(&db),
            "--repo",
            &r,
            "-q",
            "--exclude-table",
            "se\"ss",
        ],
    )
    .success()
    .assert_quiet();
    sg(&env, T0 + 60, &["snapshot", "--repo", &r, "-q"])
        .success()
        .assert_quiet();
    git(&env, &env.path("r"), &["log", "--oneline"]);
    let dump = sg(&env, T0, &["cat", "--repo", &r]).success().stdout_str();
    assert!(!dump.contains("se\"\"ss"), "{dump}");
    assert!(dump.contains("keep"), "{dump}");
}

/// `--full-every` is remembered like the other flags (given to a run or to `init`), and `""`
/// forgets it.
#[test]
fn full_every_is_remembered() {
    let env = TestEnv::new();
    let db = env.db_from_script("a.db", b"CREATE TABLE t(id INTEGER PRIMARY KEY, v);");
    let repo = env.path("r");
    let r = s(&repo);
    let whole = |now: u64, extra: &[&str]| {
        sql(&env, &db, &format!("INSERT INTO t(v) VALUES({now});"));
        let mut args = vec!["snapshot", "--repo", &r, "--json"];
        args.extend(extra);
        let run = sg(&env, now, &args).success();
        let v: Value = serde_json::from_slice(run.stdout()).unwrap();
        v["read"]["whole"].as_bool().unwrap()
    };
    let d = s(&db);
    assert!(whole(T0, &[&d, "--full-every", "0s"]));
    assert_eq!(exact_values(&env, &repo, "sqlgit.fullEvery"), ["0s"]);
    assert!(
        whole(T0 + 60, &[]),
        "the next run without the flag reads everything too"
    );
    sg(&env, T0, &["init", "-q", "--repo", &r, "--full-every", ""])
        .success()
        .assert_quiet();
    assert!(exact_values(&env, &repo, "sqlgit.fullEvery").is_empty());
    assert!(!whole(T0 + 120, &[]), "back to once a day");
    sg(
        &env,
        T0,
        &["init", "-q", "--repo", &r, "--full-every", "0s"],
    )
    .success()
    .assert_quiet();
    assert!(whole(T0 + 180, &[]));
    let bad = sg(&env, T0, &["init", "--repo", &r, "--full-every", "soon"]);
    one_error_line(bad, 2);
}

/// README "Bad input": a refusal creates nothing. An `init` refused for a setting checked only
/// once the repository is there (a metrics file whose folder is missing) removes the repository
/// it created.
#[test]
fn a_refused_init_leaves_no_repository() {
    let env = TestEnv::new();
    let db = env.db_from_script("a.db", b"CREATE TABLE t(x);");
    let repo = env.path("new.sqlgit");
    let metrics = s(&env.path("missing/m.prom"));
    let run = sg(
        &env,
        T0,
        &[
            "init",
            "--repo",
            &s(&repo),
            "--db",
            &s(&db),
            "--metrics-file",
            &metrics,
        ],
    );
    one_error_line(run, 2);
    assert!(!repo.exists(), "{:?}", list_dir(&repo));
}
