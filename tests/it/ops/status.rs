//! `sqlgit status`: fresh, stale and failed runs, a missing database recorded as a failure, a
//! failed push.

use super::*;

// ------------------------------------------------------------------------------------------------
// 4. status

#[test]
fn status_fresh_stale_and_failed_run() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b');",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));

    // No snapshot yet: unhealthy.
    sg(&env, T0, &["init", "--repo", &r, "--db", &d]).success();
    let run = sg(&env, T0, &["status", "--repo", &r]).code_is(1);
    assert!(
        run.stderr_str().contains("no snapshot"),
        "problems go to stderr: {}",
        run.stderr_str()
    );

    sg(&env, T0, &["snapshot", "--repo", &r]).success();
    sql(&env, &db, "INSERT INTO t VALUES (3, 'c');");
    sg(&env, T0 + 300, &["snapshot", "--repo", &r]).success();
    let newest = head(&env, &repo);

    // Fresh: a minute after the snapshot.
    let fresh = sg(
        &env,
        T0 + 360,
        &["status", "--repo", &r, "--max-age", "15m"],
    )
    .code_is(0)
    .assert_quiet();
    assert!(
        fresh.stdout_str().contains(&newest[..12]),
        "the text status names the newest snapshot:\n{}",
        fresh.stdout_str()
    );
    let v = json(
        &sg(
            &env,
            T0 + 360,
            &["status", "--repo", &r, "--max-age", "15m", "--json"],
        )
        .code_is(0)
        .assert_quiet(),
    );
    assert_eq!(v["ok"], Value::Bool(true), "{v:#}");
    assert_eq!(v["newest"]["id"], Value::from(newest.clone()), "{v:#}");
    assert_eq!(v["newest"]["unix"], Value::from(T0 + 300), "{v:#}");
    assert_eq!(
        v["newest"]["time"],
        Value::from("2023-11-14T22:18:20Z"),
        "{v:#}"
    );
    assert_eq!(v["newest"]["age_seconds"], Value::from(60), "{v:#}");
    assert_eq!(v["local_snapshots"], Value::from(2), "{v:#}");
    assert_eq!(
        v["oldest_local"],
        Value::from("2023-11-14T22:13:20Z"),
        "{v:#}"
    );
    assert_eq!(v["last_run"]["ok"], Value::Bool(true), "{v:#}");
    assert_eq!(
        v["last_run"]["commit"],
        Value::from(newest.clone()),
        "{v:#}"
    );
    assert_eq!(v["last_run"]["rows"], Value::from(3), "{v:#}");
    let size = v["repository_bytes"].as_u64().expect("repository_bytes");
    let actual = tree_size(&repo);
    assert!(
        size > 0 && size.abs_diff(actual) <= actual / 10,
        "repository_bytes {size}, the directory holds {actual} bytes"
    );

    // Exactly at the limit is still fresh; a second later it is stale.
    sg(
        &env,
        T0 + 300 + 900,
        &["status", "--repo", &r, "--max-age", "15m"],
    )
    .code_is(0);
    sg(
        &env,
        T0 + 300 + 901,
        &["status", "--repo", &r, "--max-age", "15m"],
    )
    .code_is(1);
    // Stale: an hour later.
    let stale = sg(
        &env,
        T0 + 3900,
        &["status", "--repo", &r, "--max-age", "15m"],
    )
    .code_is(1);
    assert!(
        stale.stderr_str().contains("old"),
        "the status says why, on stderr:\n{}",
        stale.stderr_str()
    );
    let v = json(
        &sg(
            &env,
            T0 + 3900,
            &["status", "--repo", &r, "--max-age", "15m", "--json"],
        )
        .code_is(1),
    );
    assert_eq!(v["ok"], Value::Bool(false), "{v:#}");
    assert!(!v["problems"].as_array().unwrap().is_empty(), "{v:#}");
    // Without --max-age age alone is no problem.
    sg(&env, T0 + 3900, &["status", "--repo", &r]).code_is(0);

    // A failed run (the configured database is gone): unhealthy even though the snapshot is fresh.
    while_missing(&db, || {
        one_error_line(sg(&env, T0 + 400, &["snapshot", "--repo", &r]), 1)
    });
    let run = sg(
        &env,
        T0 + 410,
        &["status", "--repo", &r, "--max-age", "15m"],
    )
    .code_is(1);
    assert!(run.stdout_str().contains("FAILED"), "{}", run.stdout_str());
    let v = json(&sg(&env, T0 + 410, &["status", "--repo", &r, "--json"]).code_is(1));
    assert_eq!(v["ok"], Value::Bool(false), "{v:#}");
    assert_eq!(v["last_run"]["ok"], Value::Bool(false), "{v:#}");
    let err = v["last_run"]["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("app.db"),
        "last_run.error names the database: {v:#}"
    );
    assert_eq!(v["last_run"]["unix"], Value::from(T0 + 400), "{v:#}");
    assert_eq!(v["newest"]["id"], Value::from(newest.clone()), "{v:#}");
    assert_eq!(v["local_snapshots"], Value::from(2), "{v:#}");

    // The next good run clears it.
    sg(&env, T0 + 500, &["snapshot", &d, "--repo", &r]).success();
    sg(
        &env,
        T0 + 510,
        &["status", "--repo", &r, "--max-age", "15m"],
    )
    .code_is(0);
}

/// `sqlgit snapshot TYPO.db --repo R` on a working repository is a failed run like any other:
/// status, the metrics file and the failure hook all hear of it.
#[test]
fn a_missing_database_argument_is_a_recorded_failure() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let prom = env.path("sqlgit.prom");
    let fail_out = env.path("failure.env");
    let on_failure = format!("env > '{}'", fail_out.display());
    sg(
        &env,
        T0,
        &[
            "snapshot",
            &d,
            "--repo",
            &r,
            "--metrics-file",
            &s(&prom),
            "--on-failure",
            &on_failure,
        ],
    )
    .success();
    sg(&env, T0 + 10, &["status", "--repo", &r, "--max-age", "15m"]).code_is(0);

    let missing = s(&env.path("gone.db"));
    let line = one_error_line(sg(&env, T0 + 60, &["snapshot", &missing, "--repo", &r]), 1);
    assert!(line.contains("gone.db"), "{line}");

    let status = sg(&env, T0 + 70, &["status", "--repo", &r, "--json"]);
    let v = json(&status);
    assert_eq!(
        v["last_run"]["ok"],
        Value::Bool(false),
        "status must show the failed run: {v:#}"
    );
    assert!(
        v["last_run"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("gone.db")),
        "{v:#}"
    );
    assert_eq!(v["last_run"]["unix"], Value::from(T0 + 60), "{v:#}");
    status.code_is(1);
    let text = std::fs::read_to_string(&prom).unwrap();
    let m = parse_prometheus(&text);
    assert_eq!(
        metric(&m, "sqlgit_last_run_success", None).value,
        0.0,
        "the metrics file must show the failed run:\n{text}"
    );
    assert!((last_success(&m) - T0 as f64).abs() <= 2.0, "{text}");
    let vars = env_file(&fail_out);
    assert_eq!(vars["SQLGIT_RESULT"], "failure", "{vars:#?}");
    assert!(vars["SQLGIT_ERROR"].contains("gone.db"), "{vars:#?}");
}

#[test]
fn status_reports_a_failed_push_when_the_history_remote_is_down() {
    let env = TestEnv::new();
    let mut daemon = GitDaemon::start_in(env.path("srv"));
    let remote = daemon.create_bare("hist");
    let url = daemon.url("hist");
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let hook_out = env.path("failure.env");
    let on_failure = format!("env > '{}'", hook_out.display());

    sg(
        &env,
        T0,
        &["snapshot", &d, "--repo", &r, "--history-remote", &url],
    )
    .success();
    let v = json(&sg(&env, T0 + 10, &["status", "--repo", &r, "--json"]).code_is(0));
    assert_eq!(v["remotes"]["history"]["ok"], Value::Bool(true), "{v:#}");
    assert_eq!(v["remotes"]["history"]["pending"], Value::from(0), "{v:#}");
    assert_eq!(
        v["remotes"]["history"]["url"],
        Value::from(url.clone()),
        "{v:#}"
    );

    // The remote goes down: the commit is made, the push fails, the run is a failure.
    daemon.stop();
    sql(&env, &db, "INSERT INTO t VALUES (2, 'b');");
    let run = sg(
        &env,
        T0 + 60,
        &["snapshot", "--repo", &r, "--on-failure", &on_failure],
    );
    let line = one_error_line(run, 1);
    assert!(line.contains("push to history remote"), "{line}");
    assert_eq!(commit_count(&env, &repo), 2, "the local commit is kept");
    let new_commit = head(&env, &repo);
    let vars = env_file(&hook_out);
    assert_eq!(vars["SQLGIT_RESULT"], "failure", "{vars:#?}");
    assert_eq!(vars["SQLGIT_COMMIT"], new_commit, "{vars:#?}");
    assert!(!vars["SQLGIT_ERROR"].is_empty(), "{vars:#?}");

    let run = sg(&env, T0 + 70, &["status", "--repo", &r, "--max-age", "15m"]).code_is(1);
    assert!(run.stdout_str().contains("FAILED"), "{}", run.stdout_str());
    let v = json(&sg(&env, T0 + 70, &["status", "--repo", &r, "--json"]).code_is(1));
    assert_eq!(v["ok"], Value::Bool(false), "{v:#}");
    assert_eq!(v["last_run"]["ok"], Value::Bool(false), "{v:#}");
    assert_eq!(
        v["last_run"]["commit"],
        Value::from(new_commit.clone()),
        "{v:#}"
    );
    let h = &v["remotes"]["history"];
    assert_eq!(h["ok"], Value::Bool(false), "{v:#}");
    assert!(
        h["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the push error is recorded: {v:#}"
    );
    assert_eq!(h["pending"], Value::from(1), "{v:#}");
    assert_eq!(h["unix"], Value::from(T0 + 60), "{v:#}");
    assert_eq!(v["newest"]["id"], Value::from(new_commit.clone()), "{v:#}");

    // Back up: the next run (nothing changed) pushes what is pending and is healthy again.
    daemon.start();
    sg(&env, T0 + 120, &["snapshot", "--repo", &r])
        .success()
        .assert_quiet();
    assert_eq!(
        git(&env, &remote, &["rev-parse", "refs/heads/main"]),
        new_commit
    );
    let v = json(
        &sg(
            &env,
            T0 + 130,
            &["status", "--repo", &r, "--json", "--max-age", "15m"],
        )
        .code_is(0),
    );
    assert_eq!(v["remotes"]["history"]["ok"], Value::Bool(true), "{v:#}");
    assert_eq!(v["remotes"]["history"]["pending"], Value::from(0), "{v:#}");
    drop(daemon);
}

/// An idle database: runs keep succeeding without a new commit, and that keeps the backup fresh
/// for `--max-age`; once the runs stop succeeding, it goes stale.
#[test]
fn an_idle_database_whose_runs_succeed_is_fresh() {
    let env = TestEnv::new();
    let db = env.db_from_script("idle.db", b"CREATE TABLE t(a); INSERT INTO t VALUES (1);");
    let repo = env.path("idle.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    let run = sg(&env, T0 + 3600, &["snapshot", &d, "--repo", &r]).success();
    assert!(
        run.stdout_str().contains("unchanged"),
        "{}",
        run.stdout_str()
    );
    sg(
        &env,
        T0 + 3660,
        &["status", "--repo", &r, "--max-age", "15m"],
    )
    .code_is(0);
    let run = sg(
        &env,
        T0 + 7200,
        &["status", "--repo", &r, "--max-age", "15m"],
    )
    .code_is(1);
    assert!(run.stderr_str().contains("old"), "{}", run.stderr_str());
}

/// What status cannot vouch for is a problem: a state file it cannot read, a repository written
/// by a newer sqlgit; a forgotten remote is no longer reported; `sqlgit push` with no remote is a
/// usage error.
#[test]
fn status_says_what_it_cannot_vouch_for_and_forgets_forgotten_remotes() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(a); INSERT INTO t VALUES (1);");
    let repo = env.path("app.sqlgit");
    let hist = crate::servers::init_bare(env.root(), "hist");
    let (d, r, h) = (s(&db), s(&repo), s(&hist));
    let metrics = env.path("m.prom");
    sg(
        &env,
        T0,
        &[
            "snapshot",
            &d,
            "--repo",
            &r,
            "--history-remote",
            &h,
            "--metrics-file",
            &s(&metrics),
        ],
    )
    .success();
    assert!(
        sg(&env, T0, &["status", "--repo", &r])
            .code_is(0)
            .stdout_str()
            .contains(&h)
    );
    // Replaced (configured, not pushed yet): status speaks of the new remote, never pushed,
    // not of the old one's last push.
    let moved = crate::servers::init_bare(env.root(), "moved");
    let m = s(&moved);
    sg(
        &env,
        T0,
        &["init", "--repo", &r, "--db", &d, "--history-remote", &m],
    )
    .success();
    let run = sg(&env, T0, &["status", "--repo", &r]);
    let out = run.stdout_str();
    assert!(
        out.contains(&format!("history remote {m}: never pushed")) && !out.contains(&h),
        "{out}"
    );
    sg(
        &env,
        T0,
        &["init", "--repo", &r, "--db", &d, "--history-remote", &h],
    )
    .success();
    sg(&env, T0, &["push", "--repo", &r]).success();
    // Forgotten: neither status nor the metrics speak of it.
    sg(
        &env,
        T0 + 60,
        &["snapshot", "--repo", &r, "--history-remote", ""],
    )
    .success();
    let run = sg(&env, T0 + 60, &["status", "--repo", &r]).code_is(0);
    assert!(!run.stdout_str().contains(&h), "{}", run.stdout_str());
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(!text.contains("remote=\"history\""), "{text}");
    one_error_line(sg(&env, T0 + 60, &["push", "--repo", &r]), 2);

    std::fs::write(repo.join("sqlgit-state.json"), b"{not json").unwrap();
    let run = sg(&env, T0 + 60, &["status", "--repo", &r]).code_is(1);
    assert!(
        run.stderr_str().contains("state file cannot be read"),
        "{}",
        run.stderr_str()
    );

    git(&env, &repo, &["config", "sqlgit.format", "99"]);
    let line = one_error_line(sg(&env, T0 + 60, &["snapshot", "--repo", &r]), 1);
    assert!(line.contains("newer sqlgit"), "{line}");
}

/// One run while the clock was 30 days fast dates a snapshot (and the last full read) in the
/// future. Once the clock is right again, that snapshot must not count as 0 s old for
/// `--max-age` (a dead-man check defeated for a month), and the daily full read must not wait
/// a month either. A run with the right clock confirms the backup again.
#[test]
fn a_run_while_the_clock_was_fast_proves_nothing_once_it_is_right() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(a); INSERT INTO t VALUES (1);");
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let day = 86_400;
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    sql(&env, &db, "INSERT INTO t VALUES (2);");
    sg(&env, T0 + 30 * day, &["snapshot", "--repo", &r]).success();

    let now = T0 + 2 * day;
    let run = sg(&env, now, &["status", "--repo", &r, "--max-age", "15m"]).code_is(1);
    assert!(
        run.stderr_str().contains("ahead of this clock"),
        "{}",
        run.stderr_str()
    );
    sql(&env, &db, "INSERT INTO t VALUES (3);");
    let run = sg(&env, now, &["snapshot", "--repo", &r, "--json"]).success();
    let report: Value = serde_json::from_slice(run.stdout()).unwrap();
    assert_eq!(
        report["read"]["whole"],
        Value::Bool(true),
        "the last full read was dated in the future: this run must read whole: {report}"
    );
    sg(
        &env,
        now + 60,
        &["status", "--repo", &r, "--max-age", "15m"],
    )
    .code_is(0);
}

/// One run while the clock was fast dates the newest snapshot ahead; the next run, with the
/// right clock, finds the database unchanged, and then no run comes. Once this clock passes the
/// fast date, that date must not count again: the later run's clock proved it wrong, and the
/// last successful run is hours old.
#[test]
fn a_later_runs_earlier_clock_outweighs_a_fast_date_once_the_clock_passes_it() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(a); INSERT INTO t VALUES (1);");
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    sql(&env, &db, "INSERT INTO t VALUES (2);");
    sg(&env, T0 + 10_000, &["snapshot", "--repo", &r]).success();
    let run = sg(&env, T0 + 1_100, &["snapshot", "--repo", &r]).success();
    assert!(
        run.stdout_str().contains("unchanged"),
        "{}",
        run.stdout_str()
    );
    let status = |now: u64| sg(&env, now, &["status", "--repo", &r, "--max-age", "15m"]);
    status(T0 + 1_200).code_is(0);
    for now in [T0 + 5_000, T0 + 10_500, T0 + 20_000] {
        let run = status(now).code_is(1);
        assert!(
            run.stderr_str().contains("no run has confirmed it since"),
            "at {now}: {}",
            run.stderr_str()
        );
    }
    // The snapshot's age goes by the later run's clock, not by its own date.
    let run = status(T0 + 10_500);
    assert!(
        run.stderr_str().contains("is 2h 36m 40s old"),
        "{}",
        run.stderr_str()
    );
    // The next run with the right clock confirms the backup.
    sg(&env, T0 + 10_500, &["snapshot", "--repo", &r]).success();
    status(T0 + 10_560).code_is(0);
}

/// A full disk: every run fails, and cannot record that in the state file, which still says the
/// last run succeeded. Status must not be green.
#[test]
fn status_is_unhealthy_when_the_repositorys_disk_is_full() {
    let env = TestEnv::new();
    // Declared after `env`, so it is unmounted before the directory is removed.
    let fs = match crate::badinput::SmallFs::mount(&env, "small", 2) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIP: cannot mount a small filesystem: {why}");
            return;
        }
    };
    let db = env.db_from_script("app.db", b"CREATE TABLE t(a); INSERT INTO t VALUES (1);");
    let repo = fs.dir.join("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    sg(&env, T0 + 60, &["status", "--repo", &r]).code_is(0);
    let filler = std::fs::File::create(fs.dir.join("filler")).unwrap();
    let mut left = fs.available();
    let mut w = std::io::BufWriter::new(filler);
    while left > 0 {
        use std::io::Write;
        let n = left.min(1 << 16) as usize;
        if w.write_all(&vec![0; n]).and_then(|_| w.flush()).is_err() {
            break;
        }
        left = fs.available();
    }
    drop(w);
    let run = sg(&env, T0 + 120, &["status", "--repo", &r]).code_is(1);
    assert!(run.stderr_str().contains("free"), "{}", run.stderr_str());
}

/// `query` and `diff --live` build their copies in TMPDIR: when it is full, the error names it.
#[test]
fn a_full_tmpdir_is_named_by_query_and_diff_live() {
    let env = TestEnv::new();
    let fs = match crate::badinput::SmallFs::mount(&env, "tmp", 1) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIP: cannot mount a small filesystem: {why}");
            return;
        }
    };
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
          INSERT INTO t SELECT i, printf('%0100d', i) FROM n;",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    let tmp = [("TMPDIR", fs.dir.to_str().unwrap())];
    let query = sg_vars(
        &env,
        T0 + 60,
        &["query", "--repo", &r, "SELECT count(*) FROM t"],
        &tmp,
    );
    let err = query.failure().stderr_str();
    assert!(err.contains("TMPDIR") && err.contains(&s(&fs.dir)), "{err}");
    sql(&env, &db, "UPDATE t SET v = hex(randomblob(80));");
    let live = sg_vars(
        &env,
        T0 + 60,
        &["diff", "HEAD", "--live", &d, "--repo", &r],
        &tmp,
    );
    let err = live.failure().stderr_str();
    assert!(err.contains("TMPDIR"), "{err}");
}

/// What status cannot vouch for is a problem: a repository whose state file is gone (no run
/// recorded), and snapshots not on the history remote though the last run succeeded (a history
/// remote given since, by `init`).
#[test]
fn status_is_unhealthy_without_a_recorded_run_or_with_snapshots_the_history_remote_lacks() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(a); INSERT INTO t VALUES (1);");
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    sg(&env, T0 + 60, &["status", "--repo", &r]).success();
    std::fs::remove_file(repo.join("sqlgit-state.json")).unwrap();
    let line = one_error_line(sg(&env, T0 + 60, &["status", "--repo", &r]), 1);
    assert!(line.contains("no run is recorded here"), "{line}");
    sg(&env, T0 + 120, &["snapshot", "--repo", &r]).success();
    sg(&env, T0 + 120, &["status", "--repo", &r]).success();

    let history = env.path("history.git");
    git(&env, env.root(), &["init", "-q", "--bare", &s(&history)]);
    sg(
        &env,
        T0 + 130,
        &["init", "--repo", &r, "--history-remote", &s(&history)],
    )
    .success();
    let line = one_error_line(sg(&env, T0 + 140, &["status", "--repo", &r]), 1);
    assert!(
        line.contains("1 snapshot is not on the history remote"),
        "{line}"
    );
    sg(&env, T0 + 180, &["snapshot", "--repo", &r]).success();
    sg(&env, T0 + 180, &["status", "--repo", &r]).success();
}
