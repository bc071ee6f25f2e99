//! Honest failures and green checks: a push never hides a run's real failure nor makes a stale
//! backup look fresh, damaged history is loud in every reading command, a repository that
//! cannot be opened still fires its hook, hooks never write to sqlgit's stdout, stops keep the
//! real cause, remote messages cannot drive the terminal, a page map that cannot be saved is said.

use std::path::Path;

use crate::env::{TestEnv, hook_lines, logging_hook};

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn small_db(env: &TestEnv) -> std::path::PathBuf {
    env.db_from_script(
        "a.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v); INSERT INTO t VALUES(1,'a'),(2,'b');",
    )
}

/// Four snapshots of `db` (the last three after `change(1..=3)`) with `--keep 1` and a history
/// remote, so the local history is pruned: the repository and the remote.
fn pruned_with_history(
    env: &TestEnv,
    db: &Path,
    change: impl Fn(usize) -> String,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let repo = env.path("r");
    let hist = env.path("hist.git");
    env.git_in(
        env.root(),
        &["init", "-q", "--bare", "-b", "main", &s(&hist)],
    );
    env.sqlgit(&[
        "snapshot",
        &s(db),
        "--repo",
        &s(&repo),
        "-q",
        "--history-remote",
        &s(&hist),
        "--keep",
        "1",
    ])
    .success();
    for i in 1..=3 {
        env.sqlite3(db, change(i));
        env.sqlgit(&["snapshot", "--repo", &s(&repo), "-q"])
            .success();
    }
    (repo, hist)
}

/// A run that failed for another reason than its pushes (the database is gone) stays failed
/// through `sqlgit push`es that fail and then succeed: no success hook, status stays red.
#[test]
fn a_push_never_clears_a_failure_that_was_not_about_pushing() {
    let env = TestEnv::new();
    let db = small_db(&env);
    let (repo, hist, down) = (env.path("r"), env.path("hist.git"), env.path("hist.down"));
    env.git_in(
        env.root(),
        &["init", "-q", "--bare", "-b", "main", &s(&hist)],
    );
    let hooks = env.path("hooks.txt");
    env.sqlgit(&[
        "snapshot",
        &s(&db),
        "--repo",
        &s(&repo),
        "-q",
        "--history-remote",
        &s(&hist),
        "--on-failure",
        &logging_hook(&hooks),
        "--on-success",
        &logging_hook(&hooks),
    ])
    .success();
    std::fs::rename(&hist, &down).unwrap();
    std::fs::rename(&db, env.path("a.moved")).unwrap();
    env.sqlgit(&["snapshot", "--repo", &s(&repo), "-q"])
        .code_is(1);
    env.sqlgit(&["push", "--repo", &s(&repo), "-q"]).code_is(1);
    std::fs::rename(&down, &hist).unwrap();
    env.sqlgit(&["push", "--repo", &s(&repo), "-q"]).success();
    let status = env.sqlgit(&["status", "--repo", &s(&repo)]).code_is(1);
    assert!(
        status.stderr_str().contains("a.db") || status.stdout_str().contains("a.db"),
        "the database's failure is no longer shown:\n{}{}",
        status.stdout_str(),
        status.stderr_str()
    );
    let hooks = hook_lines(&hooks);
    assert!(
        !hooks.iter().skip(1).any(|l| l.starts_with("success")),
        "{hooks:?}"
    );
}

/// A push that completes a run which failed only in its pushes records that run's time as the
/// last success, not its own: a push never reads the database.
#[test]
fn a_completing_push_is_as_fresh_as_the_run_it_completes() {
    let env = TestEnv::new();
    let db = small_db(&env);
    let (repo, hist) = (env.path("r"), env.path("hist.git"));
    let metrics = env.path("m.prom");
    let t0 = 1_900_000_000u64;
    env.sqlgit_at(
        t0,
        &[
            "snapshot",
            &s(&db),
            "--repo",
            &s(&repo),
            "-q",
            "--history-remote",
            &s(&hist),
            "--metrics-file",
            &s(&metrics),
        ],
    )
    .code_is(1);
    // A failed push later keeps the time of the run that read the database.
    env.sqlgit_at(t0 + 50, &["push", "--repo", &s(&repo), "-q"])
        .code_is(1);
    env.git_in(
        env.root(),
        &["init", "-q", "--bare", "-b", "main", &s(&hist)],
    );
    env.sqlgit_at(t0 + 100, &["push", "--repo", &s(&repo), "-q"])
        .success();
    let text = std::fs::read_to_string(&metrics).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("sqlgit_last_success_timestamp_seconds{"))
        .unwrap();
    assert!(line.ends_with(&format!(" {t0}")), "{line}");
    env.sqlgit_at(
        t0 + 100,
        &["status", "--repo", &s(&repo), "--max-age", "60s"],
    )
    .code_is(1);
}

/// An older snapshot's commit cut short (a crash): every reading command says so and names
/// `sqlgit snapshot --full` instead of taking it for the first snapshot; `--full` repairs it.
#[test]
fn a_damaged_older_snapshot_is_loud_in_every_reading_command() {
    let env = TestEnv::new();
    let db = small_db(&env);
    let repo = env.path("r");
    env.sqlgit(&["snapshot", &s(&db), "--repo", &s(&repo), "-q"])
        .success();
    for i in 1..=3 {
        env.sqlite3(&db, format!("UPDATE t SET v='v{i}' WHERE id=1"));
        env.sqlgit(&["snapshot", "--repo", &s(&repo), "-q"])
            .success();
    }
    let id = env.git_in(&repo, &["rev-parse", "HEAD~2"]);
    let file = repo.join("objects").join(&id[..2]).join(&id[2..]);
    let mut perms = std::fs::metadata(&file).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&file, perms).unwrap();
    std::fs::write(&file, b"").unwrap();
    let r = s(&repo);
    let loud = |args: &[&str], code: i32| {
        let run = env.sqlgit(args).code_is(code);
        let err = run.stderr_str();
        assert!(
            err.contains("sqlgit snapshot --repo") && err.contains("--full"),
            "{args:?}: {err}"
        );
        assert!(!run.stdout_str().contains("inserted"), "{args:?}");
    };
    loud(&["log", "--repo", &r], 1);
    loud(&["status", "--repo", &r], 1);
    loud(&["verify", "--repo", &r, "-q"], 1);
    loud(&["cat", "HEAD~3", "--repo", &r], 1);
    loud(&["history", "t", "1", "--repo", &r], 2);
    env.sqlgit(&["snapshot", "--repo", &r, "-q", "--full"]);
    env.sqlgit(&["log", "--repo", &r]).success();
}

/// A `shallow` file gone where pruning cut the history: the oldest kept snapshot's parent is
/// missing, which is not the first snapshot.
#[test]
fn a_missing_shallow_file_is_not_the_first_snapshot() {
    let env = TestEnv::new();
    let db = small_db(&env);
    let (repo, _hist) =
        pruned_with_history(&env, &db, |i| format!("UPDATE t SET v='v{i}' WHERE id=1"));
    assert!(repo.join("shallow").exists(), "nothing was pruned");
    std::fs::remove_file(repo.join("shallow")).unwrap();
    for args in [vec!["log"], vec!["status"]] {
        let mut args: Vec<&str> = args;
        let r = s(&repo);
        args.extend(["--repo", &r]);
        let run = env.sqlgit(&args).code_is(1);
        assert!(
            run.stderr_str().contains("--full"),
            "{args:?}: {}",
            run.stderr_str()
        );
    }
}

/// A config git cannot parse, or HEAD gone: the saved failure hook still fires, the metrics
/// file records the failure, and the error says how to fix it.
#[test]
fn an_unopenable_repository_still_fires_the_hook_and_records_metrics() {
    for damage in ["config", "HEAD"] {
        let env = TestEnv::new();
        let db = small_db(&env);
        let repo = env.path("r");
        let (hooks, metrics) = (env.path("hooks.txt"), env.path("m.prom"));
        env.sqlgit(&[
            "snapshot",
            &s(&db),
            "--repo",
            &s(&repo),
            "-q",
            "--metrics-file",
            &s(&metrics),
            "--on-failure",
            &logging_hook(&hooks),
        ])
        .success();
        match damage {
            "config" => {
                let mut text = std::fs::read_to_string(repo.join("config")).unwrap();
                text.push_str("[sqlgit\n");
                std::fs::write(repo.join("config"), text).unwrap();
            }
            _ => std::fs::remove_file(repo.join("HEAD")).unwrap(),
        }
        let run = env
            .sqlgit(&["snapshot", "--repo", &s(&repo), "-q"])
            .code_is(1);
        let err = run.stderr_str();
        let fix = if damage == "config" {
            "fix the syntax"
        } else {
            "HEAD"
        };
        assert!(err.contains(fix), "{damage}: {err}");
        let fired = hook_lines(&hooks);
        assert_eq!(fired.len(), 1, "{damage}: {fired:?}");
        assert!(fired[0].starts_with("failure|"), "{fired:?}");
        let text = std::fs::read_to_string(&metrics).unwrap();
        let success = text
            .lines()
            .find(|l| l.starts_with("sqlgit_last_run_success{"))
            .unwrap();
        assert!(success.ends_with(" 0"), "{damage}: {text}");
        let last = text
            .lines()
            .find(|l| l.starts_with("sqlgit_last_success_timestamp_seconds{"))
            .unwrap();
        assert!(
            !last.ends_with(" 0"),
            "the last success was forgotten: {text}"
        );
    }
}

/// A hook's stdout is not sqlgit's: `--json` stays parseable and `--quiet` quiet.
#[test]
fn a_hooks_stdout_never_reaches_sqlgits_stdout() {
    let env = TestEnv::new();
    let db = small_db(&env);
    let repo = env.path("r");
    let run = env
        .sqlgit(&[
            "snapshot",
            &s(&db),
            "--repo",
            &s(&repo),
            "--json",
            "--on-success",
            "echo OK",
        ])
        .success();
    serde_json::from_slice::<serde_json::Value>(run.stdout())
        .unwrap_or_else(|e| panic!("{e}: {}", run.stdout_str()));
    env.sqlite3(&db, "INSERT INTO t VALUES(3,'c')");
    let quiet = env
        .sqlgit(&["snapshot", "--repo", &s(&repo), "-q"])
        .success();
    assert!(quiet.stdout().is_empty(), "{}", quiet.stdout_str());
}

/// SIGTERM while the failure hook runs: the hook is not fired a second time, and the real
/// cause stays recorded (the stop added to it).
#[test]
fn a_stop_during_the_failure_hook_keeps_the_cause_and_fires_once() {
    let env = TestEnv::new();
    let db = small_db(&env);
    let repo = env.path("r");
    let (hooks, started) = (env.path("hooks.txt"), env.path("hook.started"));
    let slow = format!(
        "{}; touch '{}'; sleep 2",
        logging_hook(&hooks),
        started.display()
    );
    env.sqlgit(&[
        "snapshot",
        &s(&db),
        "--repo",
        &s(&repo),
        "-q",
        "--on-failure",
        &slow,
    ])
    .success();
    std::fs::rename(&db, env.path("gone.db")).unwrap();
    let out = env.sqlgit_signalled(
        &["snapshot", "--repo", &s(&repo), "-q"],
        libc::SIGTERM,
        "failure hook",
        || started.exists(),
    );
    assert_eq!(out.status.code(), Some(1));
    let fired = hook_lines(&hooks);
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert!(fired[0].contains("no such file"), "{fired:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no such file"), "{stderr}");
    let status = env.sqlgit(&["status", "--repo", &s(&repo)]).code_is(1);
    let shown = status.stdout_str() + &status.stderr_str();
    assert!(shown.contains("a.db: no such file"), "{shown}");
}

/// A stop kills git with everything it started (here the ssh command git runs), not only git.
#[test]
fn a_stop_kills_gits_helper_processes() {
    let env = TestEnv::new();
    let db = small_db(&env);
    let repo = env.path("r");
    let pid_file = env.path("ssh.pid");
    let ssh = env.write(
        "fake-ssh",
        format!(
            "#!/bin/sh\necho $$ > '{}'\nexec sleep 300\n",
            pid_file.display()
        ),
    );
    let mut perms = std::fs::metadata(&ssh).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&ssh, perms).unwrap();
    let mut cmd = env.sqlgit_cmd(&[
        "snapshot",
        &s(&db),
        "--repo",
        &s(&repo),
        "-q",
        "--latest-remote",
        "ssh://example.invalid/l.git",
        "--push-timeout",
        "60s",
    ]);
    cmd.env("GIT_SSH_COMMAND", &ssh)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let start = std::time::Instant::now();
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        {
            break pid;
        }
        assert!(
            start.elapsed().as_secs() < 30,
            "git never ran the ssh command"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    // SAFETY: our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait().unwrap().code(), Some(1));
    // Running (not a zombie waiting to be reaped) three seconds later: left behind.
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|t| t.rsplit(") ").next().map(|r| !r.starts_with('Z')))
            .unwrap_or(false)
    };
    let start = std::time::Instant::now();
    while running() && start.elapsed().as_secs() < 3 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let alive = running();
    if alive {
        // SAFETY: the helper this test started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert!(!alive, "git's ssh command outlived the stopped run");
}

/// Rows that break their table's CHECK constraint: verify passes with a warning saying so (as
/// `PRAGMA integrity_check` of a restore finds them).
#[test]
fn verify_warns_of_rows_that_break_check_constraints() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "c.db",
        b"CREATE TABLE c(x INTEGER CHECK (x > 0)); PRAGMA ignore_check_constraints=ON; \
          INSERT INTO c VALUES(-1);",
    );
    let repo = env.path("r");
    env.sqlgit(&["snapshot", &s(&db), "--repo", &s(&repo), "-q"])
        .success();
    let run = env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
    let err = run.stderr_str();
    assert!(err.contains("warning") && err.contains("CHECK"), "{err}");
}

/// `verify` of a snapshot pruned here asks the history remote: gone, the drill fails instead of
/// passing from the local cache alone.
#[test]
fn verify_of_a_pruned_snapshot_asks_the_history_remote() {
    let env = TestEnv::new();
    let db = small_db(&env);
    let (repo, hist) =
        pruned_with_history(&env, &db, |i| format!("INSERT INTO t(v) VALUES('x{i}')"));
    let first = env.git_in(&hist, &["rev-list", "--max-parents=0", "main"]);
    env.sqlgit(&["verify", &first, "--repo", &s(&repo), "-q"])
        .success();
    std::fs::remove_dir_all(&hist).unwrap();
    let run = env
        .sqlgit(&["verify", &first, "--repo", &s(&repo)])
        .code_is(1);
    assert!(
        run.stderr_str().contains("only the local history cache"),
        "{}",
        run.stderr_str()
    );
}

/// A page map that cannot be saved (here its folder is a file) leaves the backup whole but
/// every later run slow: the run says so on stderr instead of silently reading whole.
#[test]
fn a_page_map_that_cannot_be_saved_is_said() {
    let env = TestEnv::new();
    let db = small_db(&env);
    let repo = env.path("r");
    let snapshot = ["snapshot", &s(&db), "--repo", &s(&repo)];
    env.sqlgit(&snapshot).success();
    let maps = repo.join("sqlgit-pages");
    std::fs::remove_dir_all(&maps).unwrap();
    std::fs::write(&maps, "").unwrap();
    env.sqlite3(&db, "INSERT INTO t VALUES(3, 'c');");
    let err = env.sqlgit(&snapshot).success().stderr_str();
    assert!(
        err.contains("save the page map of a.db") && err.contains("reads a.db whole"),
        "{err}"
    );
}
