//! What every command shares: `--quiet`, exit codes (0 ok, 1 failure, 2 usage) and help with an
//! example, completions and the man page, progress only on a terminal.

use super::*;

// ------------------------------------------------------------------------------------------------
// 2. --quiet

#[test]
fn quiet_is_silent_on_success_and_one_stderr_line_on_failure() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    daemon.create_bare("hist");
    let url = daemon.url("hist");
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));

    // Global -q before the subcommand: a commit and a push, and not a byte of output.
    assert_silent(sg(
        &env,
        T0,
        &["-q", "snapshot", &d, "--repo", &r, "--history-remote", &url],
    ));
    assert_eq!(commit_count(&env, &repo), 1);
    // --quiet after the subcommand.
    sql(&env, &db, "INSERT INTO t VALUES (2, 'b');");
    assert_silent(sg(
        &env,
        T0 + 60,
        &["snapshot", &d, "--repo", &r, "--quiet"],
    ));
    assert_eq!(commit_count(&env, &repo), 2);
    // Unchanged: still silent (no "unchanged" message).
    assert_silent(sg(&env, T0 + 120, &["snapshot", "--repo", &r, "-q"]));
    assert_eq!(commit_count(&env, &repo), 2);
    // The other commands a cron job runs are quiet too.
    assert_silent(sg(
        &env,
        T0 + 130,
        &["-q", "status", "--repo", &r, "--max-age", "15m"],
    ));
    assert_silent(sg(&env, T0 + 130, &["-q", "verify", "--repo", &r]));
    assert_silent(sg(
        &env,
        T0 + 130,
        &[
            "-q",
            "init",
            "--repo",
            &s(&env.path("other.sqlgit")),
            "--db",
            &d,
        ],
    ));
    assert_silent(sg(
        &env,
        T0 + 130,
        &[
            "-q",
            "restore",
            "--repo",
            &r,
            "--to",
            &s(&env.path("copy.db")),
        ],
    ));
    compare_databases(&db, &env.path("copy.db"));

    // A failure still speaks: one line on stderr, exit 1.
    let missing = s(&env.path("missing.db"));
    let line = one_error_line(
        sg(
            &env,
            T0 + 180,
            &["-q", "snapshot", &missing, "--repo", &s(&env.path("r2"))],
        ),
        1,
    );
    assert!(
        line.contains("missing.db"),
        "the error names the database: {line}"
    );
    let line = one_error_line(
        sg(
            &env,
            T0 + 180,
            &["snapshot", &missing, "--repo", &r, "--quiet"],
        ),
        1,
    );
    assert!(line.starts_with("sqlgit: "), "{line}");
    drop(daemon);
}

// ------------------------------------------------------------------------------------------------
// 3. Exit codes

#[test]
fn exit_codes_usage_2_failure_1_and_every_help_has_an_example() {
    let env = TestEnv::new();
    // Usage errors: 2, a message on stderr, nothing on stdout.
    for args in [
        &["snapshot", "--no-such-flag"][..],
        &["snapshot", "x.db", "--repo", "r", "--keep-all-forever"],
        &["status", "--repo", "r", "--max-age", "soon"],
        &["frobnicate"],
        &["snapshot", "x.db"], // --repo is required
        &["completions", "tcsh"],
        &["snapshot", "x.db", "--repo", "r", "--keep", "bogus"],
        &["snapshot", "x.db", "--repo", "r", "--keep", "0"],
        &["prune", "--repo", "r", "--keep", "-3"],
        &["push", "--repo", "r", "--transport", "foo"],
        &[
            "init",
            "--repo",
            "r",
            "--db",
            "x.db",
            "--push-timeout",
            "0s",
        ],
        &["snapshot", "x.db", "--repo", "r", "--redact", "nodot"],
        &[],
    ] {
        let run = env.sqlgit(args).code_is(2);
        if run.stderr().is_empty() || !run.stdout().is_empty() {
            run.fail("a usage error goes to stderr only");
        }
        // One line, like every error (a bare `sqlgit` shows the help instead).
        let err = run.stderr_str();
        if !args.is_empty() && (err.lines().count() != 1 || !err.starts_with("sqlgit: ")) {
            run.fail("a usage error is one line starting `sqlgit: `");
        }
    }
    // Failures: 1, one line on stderr.
    let db = env.db_from_script("a.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    for args in [
        vec!["dump".to_string(), s(&env.path("missing.db"))],
        vec!["status".into(), "--repo".into(), s(&env.path("no-repo"))],
        vec!["verify".into(), "--repo".into(), s(&env.path("no-repo"))],
        vec![
            "snapshot".into(),
            s(&env.path("missing.db")),
            "--repo".into(),
            s(&env.path("r")),
        ],
        vec![
            "restore".into(),
            "--from-file".into(),
            s(&env.path("missing.sql")),
            "--to".into(),
            s(&env.path("n.db")),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        one_error_line(sg(&env, T0, &args), 1);
    }
    // Success: 0.
    sg(
        &env,
        T0,
        &["snapshot", &s(&db), "--repo", &s(&env.path("ok"))],
    )
    .code_is(0);

    // --help of every subcommand: exit 0, on stdout, with an example.
    let top = env.sqlgit(&["--help"]).code_is(0);
    let text = top.stdout_str();
    assert!(
        text.contains("Exit codes") && text.contains("2 usage"),
        "the top-level help documents the exit codes:\n{text}"
    );
    for name in subcommands(&env) {
        {
            let flag = "--help";
            let run = env.sqlgit(&[name.as_str(), flag]).code_is(0).assert_quiet();
            if !run.stdout_str().contains("Example") {
                run.fail(&format!("`sqlgit {name} {flag}` shows no Example"));
            }
        }
    }
    env.sqlgit(&["--version"]).code_is(0);
}

// ------------------------------------------------------------------------------------------------
// 9. completions and man

#[test]
fn completions_for_every_shell_and_a_roff_man_page() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = env.sqlgit(&["completions", shell]).success().assert_quiet();
        let out = run.stdout_str();
        if out.trim().is_empty() || !out.contains("snapshot") {
            run.fail(&format!(
                "the {shell} completion script is empty or lacks the commands"
            ));
        }
        if shell == "bash" {
            let script = env.write("sqlgit.bash", run.stdout());
            let mut cmd = env.command("bash");
            cmd.arg("-n").arg(&script);
            run_limited(&env, cmd, b"").success().assert_quiet();
        }
    }
    let run = env.sqlgit(&["man"]).success().assert_quiet();
    let man = run.stdout_str();
    assert!(
        man.starts_with('.'),
        "roff starts with a request line:\n{}",
        &man[..man.len().min(200)]
    );
    assert!(
        man.lines()
            .any(|l| l.starts_with(".TH ") && l.to_lowercase().contains("sqlgit")),
        "the man page has a .TH header"
    );
    assert!(
        man.lines().any(|l| l.starts_with(".SH")),
        "the man page has sections"
    );
    assert!(man.contains("snapshot"), "the man page lists the commands");
}

// ------------------------------------------------------------------------------------------------
// 11. Progress only on a terminal

#[test]
fn no_progress_output_through_pipes() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    daemon.create_bare("hist");
    daemon.create_bare("latest");
    // Big enough that a dump or a push would have something to report.
    let db = env.db_from_script(
        "big.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);\n\
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)\n\
          INSERT INTO t SELECT i, randomblob(200) FROM n;\n",
    );
    let repo = env.path("big.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let run = sg(
        &env,
        T0,
        &[
            "snapshot",
            &d,
            "--repo",
            &r,
            "--history-remote",
            &daemon.url("hist"),
            "--latest-remote",
            &daemon.url("latest"),
        ],
    )
    .success()
    .assert_quiet();
    assert!(
        !contains(run.stdout(), b"\r"),
        "no carriage-return progress on stdout"
    );
    sg(&env, T0, &["dump", &d, "-o", &s(&env.path("big.sql.gz"))])
        .success()
        .assert_quiet();
    let run = sg(
        &env,
        T0,
        &["restore", "--repo", &r, "--to", &s(&env.path("copy.db"))],
    )
    .success()
    .assert_quiet();
    assert!(!contains(run.stdout(), b"\r"));
    sg(&env, T0, &["verify", "--repo", &r])
        .success()
        .assert_quiet();
    drop(daemon);
}

/// Run `sqlgit ARGS` on a pseudo-terminal with util-linux `script`; None when it is unavailable.
fn on_terminal(env: &TestEnv, now: u64, args: &[&str]) -> Option<Run> {
    let probe = Command::new("script")
        .args(["-q", "-e", "-c", "true", "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipping the terminal half: util-linux `script` is not available");
        return None;
    }
    let quote = |a: &str| format!("'{}'", a.replace('\'', r"'\''"));
    let mut line = format!("exec {}", quote(env!("CARGO_BIN_EXE_sqlgit")));
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let mut cmd = env.command("script");
    cmd.env("SQLGIT_NOW", now.to_string())
        .args(["-q", "-e", "-c", &line, "/dev/null"]);
    Some(run_limited(env, cmd, b""))
}

#[test]
fn progress_on_a_terminal_but_not_with_quiet() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    daemon.create_bare("hist");
    let url = daemon.url("hist");
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let Some(run) = on_terminal(
        &env,
        T0,
        &["snapshot", &d, "--repo", &r, "--history-remote", &url],
    ) else {
        return;
    };
    let run = run.success();
    if !run.stdout_str().contains("pushing") {
        run.fail("on a terminal, a push shows its progress");
    }
    // --quiet on a terminal: not a byte, progress included.
    sql(&env, &db, "INSERT INTO t VALUES (2, 'b');");
    let run = on_terminal(&env, T0 + 60, &["-q", "snapshot", &d, "--repo", &r])
        .unwrap()
        .success();
    assert_eq!(commit_count(&env, &repo), 2);
    if !run.stdout().is_empty() {
        run.fail("--quiet on a terminal must print nothing (not even progress)");
    }
    drop(daemon);
}

/// A database path that is not UTF-8 (a Latin-1 file name) cannot be remembered or reached by
/// the run as text: refused with the reason and what to do, not "no such file".
#[test]
fn a_database_path_that_is_not_utf8_is_refused_with_the_reason() {
    use std::os::unix::ffi::OsStrExt;
    let env = TestEnv::new();
    let name = std::ffi::OsStr::from_bytes(b"db\xff.db");
    env.db_from_script("plain.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    std::fs::rename(env.path("plain.db"), env.path(name)).unwrap();
    let db = env.path(name);
    let repo = env.path("r");
    for command in ["snapshot", "init"] {
        let mut cmd = sqlgit_cmd(&env, T0, &[command, "--repo", &s(&repo)], &[]);
        if command == "init" {
            cmd.arg("--db");
        }
        cmd.arg(&db);
        let run = run_limited(&env, cmd, b"").code_is(2);
        let err = run.stderr_str();
        assert!(
            err.contains("not valid UTF-8") && !err.contains("no such file"),
            "{command}: {err}"
        );
        assert!(!repo.exists(), "{command}: nothing created");
    }
}

/// Text rows well past any output buffer, so that a write fails inside the JSON writer.
const MANY_ROWS: &str = "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c \
                         WHERE i < 100000) SELECT printf('%050d', i) FROM c";

/// What a command prints is its result: a stdout that cannot be written (`> /dev/full`) fails
/// the command instead of exiting 0 with the output lost (a closed pipe stays quiet).
#[test]
fn a_stdout_that_cannot_be_written_fails_the_command() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    let repo = env.path("r");
    let r = s(&repo);
    sg(&env, T0, &["snapshot", &s(&db), "--repo", &r]).success();
    // `completions` once panicked in clap_complete on a failed write.
    let commands = [
        vec!["status", "--repo", &r],
        vec!["log", "--repo", &r],
        vec!["log", "--repo", &r, "--json"],
        // serde_json once hid the closed pipe from the quiet-exit check.
        vec!["query", "--repo", &r, "--json", MANY_ROWS],
        vec!["completions", "bash"],
        vec!["completions", "zsh"],
    ];
    for args in commands {
        let mut cmd = sqlgit_cmd(&env, T0, &args, &[]);
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create("/dev/full").unwrap());
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("No space left on device"), "{args:?}: {err}");
        assert!(
            err.lines().count() == 1 && !err.contains("internal error"),
            "{args:?}: {err}"
        );
        // A closed pipe: quiet.
        let mut cmd = sqlgit_cmd(&env, T0, &args, &[]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.is_empty(), "{args:?} into a closed pipe: {err}");
    }
    // A snapshot whose report is lost was still taken: the line says so, and does not tell the
    // user to free disk space and run it again.
    env.sqlite3(&db, "INSERT INTO t VALUES (2);").success();
    let mut cmd = sqlgit_cmd(&env, T0 + 60, &["snapshot", &s(&db), "--repo", &r], &[]);
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create("/dev/full").unwrap());
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the command finished, but its output could not be written")
            && !err.contains("the disk is full"),
        "{err}"
    );
    let log = sg(&env, T0 + 60, &["log", "--repo", &r])
        .success()
        .stdout_str();
    assert_eq!(log.lines().count(), 2, "{log}");
}

/// `--keep 0` is refused (it would keep nothing); so is a duration of zero.
#[test]
fn keep_zero_is_refused_as_a_count_and_as_a_duration() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(x);");
    let repo = env.path("r");
    for keep in ["0", "0s", "0days"] {
        let run = sg(
            &env,
            T0,
            &["init", "--repo", &s(&repo), "--db", &s(&db), "--keep", keep],
        )
        .code_is(2);
        assert!(
            run.stderr_str().contains("at least 1 snapshot"),
            "{keep}: {}",
            run.stderr_str()
        );
    }
}

/// A stderr that cannot be written (a log on a full disk) changes no exit code: a run that
/// succeeded with a warning exits 0, a usage error 2, a failure 1 (not 101, a panic's).
#[test]
fn a_stderr_that_cannot_be_written_keeps_the_exit_codes() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    let (d, r) = (s(&db), s(&env.path("r")));
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    env.sqlite3(&db, "INSERT INTO t VALUES (2);").success();
    let cases: [(&[&str], i32); 4] = [
        // A success hook that fails is a warning.
        (&["snapshot", "--repo", &r, "--on-success", "exit 3"], 0),
        (&["diff", "nosuchpoint", "--repo", &r], 2),
        (&["cat", "nosuchpoint", "--repo", &r], 1),
        (
            &["history", "t", "1", "--repo", &r, "--since", "nosuchpoint"],
            2,
        ),
    ];
    for (args, code) in cases {
        let mut cmd = sqlgit_cmd(&env, T0 + 60, args, &[]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create("/dev/full").unwrap());
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
    }
}

/// A panic in `diff` or `history` is an error like their others: exit 2, which scripts do not
/// take for "the snapshots differ" or "no change found" (1).
#[test]
fn a_panic_in_diff_or_history_exits_2() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    let (d, r) = (s(&db), s(&env.path("r")));
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    for (point, args) in [
        ("diff", vec!["diff", "main", "--repo", &r]),
        ("history", vec!["history", "t", "1", "--repo", &r]),
    ] {
        let run = sg_vars(&env, T0, &args, &[("SQLGIT_FAILPOINT", point)]);
        let line = one_error_line(run, 2);
        assert!(line.contains("failed to spawn thread"), "{line}");
    }
}

/// Durations past what SQLite (a C int of milliseconds) or a clock holds are refused when the
/// command line is read, naming the limit (exit 2), not found out later as an internal error.
#[test]
fn durations_past_their_limits_are_usage_errors() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(x);");
    let (d, r) = (s(&db), s(&env.path("r")));
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    let cases: [&[&str]; 5] = [
        &["snapshot", "--repo", &r, "--busy-timeout", "25days"],
        &["dump", &d, "--busy-timeout", "25days"],
        &[
            "diff",
            "--live",
            &d,
            "--repo",
            &r,
            "--busy-timeout",
            "25days",
        ],
        &[
            "restore",
            "--repo",
            &r,
            "--into",
            &d,
            "--busy-timeout",
            "25days",
        ],
        &["snapshot", "--repo", &r, "--lock-timeout", "1000years"],
    ];
    for args in cases {
        let line = one_error_line(sg(&env, T0, args), 2);
        assert!(line.contains("too long: "), "{args:?}: {line}");
    }
    // 24 days is taken.
    sg(&env, T0, &["dump", &d, "--busy-timeout", "24days"]).success();
}
