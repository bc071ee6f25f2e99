//! Monitoring a cron job: the Prometheus metrics file and the success/failure hooks.

use super::*;

// ------------------------------------------------------------------------------------------------
// 5. Metrics file

#[test]
fn metrics_file_is_prometheus_text_replaced_atomically() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    daemon.create_bare("hist");
    let url = daemon.url("hist");
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
          INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');\n\
          CREATE TABLE u(x); INSERT INTO u VALUES (1), (2);",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let dir = env.path("textfile");
    let prom = env.write("textfile/sqlgit.prom", "stale content\n");
    std::fs::set_permissions(&prom, std::fs::Permissions::from_mode(0o644)).unwrap();
    let inode_before = std::fs::metadata(&prom).unwrap().ino();

    sg(
        &env,
        T0,
        &[
            "snapshot",
            &d,
            "--repo",
            &r,
            "--history-remote",
            &url,
            "--metrics-file",
            &s(&prom),
        ],
    )
    .success()
    .assert_quiet();
    let text = std::fs::read_to_string(&prom).unwrap();
    assert_ne!(text, "stale content\n");
    let m = parse_prometheus(&text);
    assert!(
        (last_success(&m) - T0 as f64).abs() <= 2.0,
        "last_success is SQLGIT_NOW={T0}:\n{text}"
    );
    assert_eq!(
        metric(&m, "sqlgit_last_run_success", None).value,
        1.0,
        "{text}"
    );
    let duration = metric(&m, "sqlgit_last_run_duration_seconds", None).value;
    assert!(
        (0.0..30.0).contains(&duration),
        "duration {duration}:\n{text}"
    );
    let bytes = metric(&m, "sqlgit_dump_bytes", None).value;
    let dump_len = sg(&env, T0, &["cat", "--repo", &r])
        .success()
        .stdout()
        .len();
    assert_eq!(
        bytes, dump_len as f64,
        "dump_bytes is the snapshot's SQL size:\n{text}"
    );
    assert_eq!(metric(&m, "sqlgit_dump_rows", None).value, 5.0, "{text}");
    assert_eq!(
        metric(&m, "sqlgit_push_success", Some("history")).value,
        1.0,
        "{text}"
    );
    let stat = std::fs::metadata(&prom).unwrap();
    assert_eq!(
        stat.permissions().mode() & 0o777,
        0o600,
        "the metrics file is private"
    );
    assert_ne!(
        stat.ino(),
        inode_before,
        "the file is replaced (renamed over), not rewritten"
    );
    assert_eq!(
        list_dir(&dir),
        ["sqlgit.prom"],
        "no temporary file is left beside it"
    );

    // The setting is remembered. A failed run: last_success unchanged, last_run_success 0.
    let inode_ok = stat.ino();
    while_missing(&db, || {
        one_error_line(sg(&env, T0 + 600, &["snapshot", "--repo", &r]), 1)
    });
    let text = std::fs::read_to_string(&prom).unwrap();
    let m = parse_prometheus(&text);
    assert!(
        (last_success(&m) - T0 as f64).abs() <= 2.0,
        "a failed run must not move last_success:\n{text}"
    );
    assert_eq!(
        metric(&m, "sqlgit_last_run_success", None).value,
        0.0,
        "{text}"
    );
    assert!(
        m.iter()
            .all(|s| s.name != "sqlgit_last_run_timestamp_seconds"
                || (s.value - (T0 + 600) as f64).abs() <= 2.0),
        "{text}"
    );
    let stat = std::fs::metadata(&prom).unwrap();
    assert_eq!(stat.permissions().mode() & 0o777, 0o600);
    assert_ne!(stat.ino(), inode_ok, "replaced again");
    assert_eq!(
        list_dir(&dir),
        ["sqlgit.prom"],
        "no temporary file is left beside it"
    );

    // A later success moves it forward.
    sg(&env, T0 + 1200, &["snapshot", &d, "--repo", &r]).success();
    let text = std::fs::read_to_string(&prom).unwrap();
    let m = parse_prometheus(&text);
    assert!(
        (last_success(&m) - (T0 + 1200) as f64).abs() <= 2.0,
        "{text}"
    );
    assert_eq!(
        metric(&m, "sqlgit_last_run_success", None).value,
        1.0,
        "{text}"
    );
    assert_eq!(list_dir(&dir), ["sqlgit.prom"]);
    drop(daemon);
}

// ------------------------------------------------------------------------------------------------
// 6. Hooks

#[test]
fn hooks_see_the_result_but_not_the_token_and_never_fail_a_good_run() {
    let env = TestEnv::new();
    let http = HttpGit::start_in(env.path("http"), "sqlgit", "sekrit");
    let remote = http.create_bare("hist");
    let url = http.url("hist");
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b');",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let ok_out = env.path("success.env");
    let fail_out = env.path("failure.env");
    let on_success = format!("env > '{}'", ok_out.display());
    let on_failure = format!("env > '{}'", fail_out.display());
    let token = [("SQLGIT_HTTPS_TOKEN", "sekrit")];

    // Success, pushing over HTTPS-style auth with the token from sqlgit's environment.
    let run = sg_vars(
        &env,
        T0,
        &[
            "snapshot",
            &d,
            "--repo",
            &r,
            "--history-remote",
            &url,
            "--on-success",
            &on_success,
            "--on-failure",
            &on_failure,
        ],
        &token,
    )
    .success()
    .assert_quiet();
    let commit = head(&env, &repo);
    assert_eq!(
        git(&env, &remote, &["rev-parse", "refs/heads/main"]),
        commit,
        "pushed with the token"
    );
    let vars = env_file(&ok_out);
    assert_eq!(vars["SQLGIT_RESULT"], "success", "{vars:#?}");
    assert_eq!(vars["SQLGIT_COMMIT"], commit, "{vars:#?}");
    assert_eq!(vars["SQLGIT_CHANGED"], "1", "{vars:#?}");
    assert_eq!(vars["SQLGIT_ROWS"], "2", "{vars:#?}");
    assert!(vars["SQLGIT_REPO"].ends_with("app.sqlgit"), "{vars:#?}");
    assert_eq!(
        vars.get("SQLGIT_ERROR").map(String::as_str),
        Some(""),
        "{vars:#?}"
    );
    for key in ["SQLGIT_BYTES", "SQLGIT_TABLES", "SQLGIT_DURATION"] {
        assert!(vars.contains_key(key), "{key} missing: {vars:#?}");
    }
    let raw = std::fs::read(&ok_out).unwrap();
    assert!(
        !contains(&raw, b"sekrit"),
        "the token leaked into the hook's environment"
    );
    assert!(!contains(run.stdout(), b"sekrit") && !contains(run.stderr(), b"sekrit"));
    assert!(
        !fail_out.exists(),
        "the failure hook must not run after a success"
    );

    // Nothing changed: the hook still runs, CHANGED=0 and no commit. Hooks are remembered.
    std::fs::remove_file(&ok_out).unwrap();
    sg_vars(&env, T0 + 60, &["snapshot", "--repo", &r], &token)
        .success()
        .assert_quiet();
    let vars = env_file(&ok_out);
    assert_eq!(vars["SQLGIT_RESULT"], "success", "{vars:#?}");
    assert_eq!(vars["SQLGIT_CHANGED"], "0", "{vars:#?}");
    assert_eq!(vars["SQLGIT_COMMIT"], "", "{vars:#?}");
    assert!(!contains(&std::fs::read(&ok_out).unwrap(), b"sekrit"));

    // Failure: the failure hook, with the error; not the success hook.
    std::fs::remove_file(&ok_out).unwrap();
    while_missing(&db, || {
        one_error_line(
            sg_vars(&env, T0 + 120, &["snapshot", "--repo", &r], &token),
            1,
        )
    });
    let vars = env_file(&fail_out);
    assert_eq!(vars["SQLGIT_RESULT"], "failure", "{vars:#?}");
    assert!(vars["SQLGIT_ERROR"].contains("app.db"), "{vars:#?}");
    assert_eq!(vars["SQLGIT_CHANGED"], "0", "{vars:#?}");
    assert!(!contains(&std::fs::read(&fail_out).unwrap(), b"sekrit"));
    assert!(
        !ok_out.exists(),
        "the success hook must not run after a failure"
    );

    // A failing hook after a good snapshot: reported on stderr, exit 0, the run counts as good.
    sql(&env, &db, "INSERT INTO t VALUES (3, 'c');");
    let run = sg_vars(
        &env,
        T0 + 180,
        &[
            "snapshot",
            &d,
            "--repo",
            &r,
            "--on-success",
            "echo hook-ran >&2; exit 1",
        ],
        &token,
    )
    .code_is(0);
    let err = run.stderr_str();
    assert!(err.contains("hook-ran"), "the hook ran: {err}");
    let report: Vec<&str> = err.lines().filter(|l| l.starts_with("sqlgit:")).collect();
    assert!(
        report.len() == 1 && report[0].contains("hook") && report[0].contains("fail"),
        "one line reports the failed hook:\n{err}"
    );
    assert_eq!(commit_count(&env, &repo), 2);
    assert_eq!(
        git(&env, &remote, &["rev-parse", "refs/heads/main"]),
        head(&env, &repo)
    );
    let v = json(&sg(&env, T0 + 190, &["status", "--repo", &r, "--json"]).code_is(0));
    assert_eq!(v["last_run"]["ok"], Value::Bool(true), "{v:#}");
    drop(http);
}

/// Repositories sharing one metrics file (one textfile directory, one path) each keep their own
/// samples: a failure of one is not overwritten by the other's success.
#[test]
fn repositories_sharing_a_metrics_file_keep_each_others_samples() {
    let env = TestEnv::new();
    let db = env.db_from_script("a.db", b"CREATE TABLE t(a); INSERT INTO t VALUES (1);");
    let prom = env.path("sqlgit.prom");
    let (ra, rb) = (env.path("a.sqlgit"), env.path("b.sqlgit"));
    let missing = env.path("missing.db");
    one_error_line(
        sg(
            &env,
            T0,
            &[
                "snapshot",
                &s(&missing),
                "--repo",
                &s(&rb),
                "--metrics-file",
                &s(&prom),
            ],
        ),
        1,
    );
    sg(
        &env,
        T0,
        &[
            "snapshot",
            &s(&db),
            "--repo",
            &s(&ra),
            "--metrics-file",
            &s(&prom),
        ],
    )
    .success();
    let text = std::fs::read_to_string(&prom).unwrap();
    let m = parse_prometheus(&text);
    let success = |repo: &Path| {
        m.iter()
            .find(|x| x.name == "sqlgit_last_run_success" && x.labels.get("repo") == Some(&s(repo)))
            .unwrap_or_else(|| panic!("no sample for {}: {text}", repo.display()))
            .value
    };
    assert_eq!((success(&ra), success(&rb)), (1.0, 0.0), "{text}");

    // Another spelling of a repository's path is the same repository: one sample each.
    let spelled = format!("{}/", s(&ra));
    sg(
        &env,
        T0 + 60,
        &["snapshot", "--repo", &spelled, "--metrics-file", &s(&prom)],
    )
    .success();
    let text = std::fs::read_to_string(&prom).unwrap();
    let samples = text
        .lines()
        .filter(|l| l.starts_with("sqlgit_last_run_success{"))
        .count();
    assert_eq!(samples, 2, "{text}");
}

#[test]
fn a_metrics_file_in_a_missing_folder_is_refused_when_given_and_warned_about_when_it_goes() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(v); INSERT INTO t VALUES (1);");
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let missing = s(&env.path("no-such-folder/sqlgit.prom"));
    // Given where it cannot be written: refused with one line, not saved, not written.
    let run = sg(
        &env,
        T0,
        &["snapshot", &d, "--repo", &r, "--metrics-file", &missing],
    )
    .code_is(2);
    let err = run.stderr_str();
    assert_eq!(err.lines().count(), 1, "one line:\n{err}");
    assert!(
        err.contains("no-such-folder") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!env.path("no-such-folder").exists());
    sg(&env, T0 + 60, &["snapshot", &d, "--repo", &r])
        .success()
        .assert_quiet();
    // Given where it can: saved and written. When its folder goes away later, each run still
    // snapshots (exit 0) and warns.
    let prom = env.path("textfile/sqlgit.prom");
    std::fs::create_dir(env.path("textfile")).unwrap();
    let given = s(&prom);
    sg(
        &env,
        T0 + 120,
        &["snapshot", &d, "--repo", &r, "--metrics-file", &given],
    )
    .success()
    .assert_quiet();
    assert!(prom.exists());
    std::fs::remove_dir_all(env.path("textfile")).unwrap();
    env.sqlite3(&db, "INSERT INTO t VALUES (2);").success();
    let run = sg(
        &env,
        T0 + 180,
        &["snapshot", &d, "--repo", &r, "--metrics-file", &given],
    )
    .success();
    let err = run.stderr_str();
    assert!(err.contains("warning: metrics file"), "{err}");
    assert_eq!(
        env.git_in(&repo, &["rev-list", "--count", "HEAD"]).trim(),
        "2"
    );
}

/// A metrics file given as a symlink loop (or a link into a folder that does not exist) is
/// refused when given, like a missing folder, instead of being saved and warned about on every
/// run after.
#[test]
fn a_metrics_file_that_is_a_symlink_loop_is_refused_when_given() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(v); INSERT INTO t VALUES (1);");
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let (a, b) = (env.path("a.prom"), env.path("b.prom"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let dangling = env.path("c.prom");
    std::os::unix::fs::symlink(env.path("gone/x.prom"), &dangling).unwrap();
    for given in [s(&a), s(&dangling)] {
        let run = sg(
            &env,
            T0,
            &["snapshot", &d, "--repo", &r, "--metrics-file", &given],
        )
        .code_is(2);
        let err = run.stderr_str();
        assert_eq!(err.lines().count(), 1, "one line:\n{err}");
        assert!(err.contains("--metrics-file"), "{err}");
    }
    sg(&env, T0 + 60, &["snapshot", &d, "--repo", &r])
        .success()
        .assert_quiet();
}

/// `sqlgit_dump_rows`, `_bytes` and `_tables` are "in the last snapshot taken": a failed run that
/// took none must not report them as 0 (a "backup shrank" alert would fire).
#[test]
fn a_failed_run_keeps_the_last_snapshots_figures_in_the_metrics() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3); CREATE TABLE u(y);",
    );
    let repo = env.path("r");
    let prom = env.path("m.prom");
    let (d, r, p) = (s(&db), s(&repo), s(&prom));
    sg(
        &env,
        T0,
        &["snapshot", &d, "--repo", &r, "--metrics-file", &p],
    )
    .success();
    let figures = |text: &str| {
        let m = parse_prometheus(text);
        [
            "sqlgit_dump_rows",
            "sqlgit_dump_bytes",
            "sqlgit_dump_tables",
        ]
        .map(|name| metric(&m, name, None).value)
    };
    let before = figures(&std::fs::read_to_string(&prom).unwrap());
    assert_eq!([before[0], before[2]], [3.0, 2.0]);
    while_missing(&db, || {
        sg(&env, T0 + 60, &["snapshot", "--repo", &r]).failure()
    });
    let text = std::fs::read_to_string(&prom).unwrap();
    assert_eq!(
        metric(&parse_prometheus(&text), "sqlgit_last_run_success", None).value,
        0.0
    );
    assert_eq!(figures(&text), before, "{text}");
}

#[test]
fn a_job_that_never_succeeded_has_a_last_success_of_zero_so_an_age_alert_fires() {
    let env = TestEnv::new();
    let repo = env.path("r");
    let prom = env.path("m.prom");
    let missing = env.path("missing.db");
    sg(
        &env,
        T0,
        &[
            "snapshot",
            &s(&missing),
            "--repo",
            &s(&repo),
            "--metrics-file",
            &s(&prom),
        ],
    )
    .failure();
    let text = std::fs::read_to_string(&prom).unwrap();
    let m = parse_prometheus(&text);
    assert_eq!(last_success(&m), 0.0, "{text}");
    assert_eq!(
        metric(&m, "sqlgit_last_run_success", None).value,
        0.0,
        "{text}"
    );
}
