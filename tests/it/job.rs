//! The snapshot job as cron runs it (`src/job.rs`): overlapping runs on one repository, the
//! failure hook and recorded state for every kind of failure — before the repository exists, a
//! lock held past `--lock-timeout`, a push that fails — and `status` after a run was killed.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::env::{TestEnv, hook_lines, logging_hook};
use crate::servers::GitDaemon;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The bank database snapshotted into `bank.sqlgit` with an `--on-failure` hook writing to
/// `hook.txt`: (repository, hook file).
fn snapshotted_with_failure_hook(env: &TestEnv) -> (std::path::PathBuf, std::path::PathBuf) {
    let db = bank(env);
    let repo = env.path("bank.sqlgit");
    let hook_file = env.path("hook.txt");
    env.sqlgit(&[
        "snapshot",
        &s(&db),
        "--repo",
        &s(&repo),
        "--on-failure",
        &logging_hook(&hook_file),
    ])
    .success();
    (repo, hook_file)
}

/// Wait (up to 20 s) until a run has recorded its start in `repo`'s state file.
fn wait_until_running(repo: &Path) {
    let state = repo.join("sqlgit-state.json");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&state)
        .unwrap_or_default()
        .contains("\"running\": {")
    {
        assert!(
            Instant::now() < deadline,
            "the run never recorded its start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn bank(env: &TestEnv) -> std::path::PathBuf {
    env.db_from_script(
        "bank.db",
        b"CREATE TABLE account(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);\n\
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)\n\
          INSERT INTO account SELECT i, 100 FROM n;\n",
    )
}

#[test]
fn overlapping_runs_with_keep_and_a_history_remote_all_succeed() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    daemon.create_bare("hist");
    let db = bank(&env);
    let repo = env.path("bank.sqlgit");
    let args = [
        "snapshot".to_string(),
        s(&db),
        "--repo".into(),
        s(&repo),
        "--keep".into(),
        "2".into(),
        "--history-remote".into(),
        daemon.url("hist"),
    ];
    env.sqlgit(&args).success();
    for round in 0..5 {
        let children: Vec<_> = (0..4)
            .map(|i| {
                let c = Connection::open(&db).unwrap();
                c.execute(
                    "UPDATE account SET balance = balance + 1 WHERE id % 7 = ?1",
                    [(round * 4 + i) % 7],
                )
                .unwrap();
                drop(c);
                let mut cmd = env.sqlgit_cmd(&args);
                cmd.env("SQLGIT_NOW", (1_700_000_000 + round * 100 + i).to_string())
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                cmd.spawn().unwrap()
            })
            .collect();
        for (i, child) in children.into_iter().enumerate() {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}, run {i}: {}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    env.sqlgit(&["verify".to_string(), "--repo".into(), s(&repo)])
        .success();
}

#[test]
fn first_runs_at_the_same_moment_all_succeed_on_one_repository() {
    let env = TestEnv::new();
    let db = bank(&env);
    for attempt in 0..8 {
        let repo = env.path(format!("new{attempt}.sqlgit"));
        if attempt % 2 == 1 {
            // Made empty beforehand (by an administrator): filled in place.
            std::fs::create_dir(&repo).unwrap();
        }
        let args = ["snapshot".to_string(), s(&db), "--repo".into(), s(&repo)];
        let children: Vec<_> = (0..3)
            .map(|_| {
                let mut cmd = env.sqlgit_cmd(&args);
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                cmd.spawn().unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "attempt {attempt}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        env.sqlgit(&args).success();
        let leftovers = [env.path(""), repo.clone()]
            .iter()
            .flat_map(|dir| std::fs::read_dir(dir).unwrap().flatten())
            .filter(|e| e.file_name().to_string_lossy().contains(".sqlgit-new-"))
            .count();
        assert_eq!(
            leftovers, 0,
            "attempt {attempt}: a half-made repository was left"
        );
    }
}

#[test]
fn failure_hook_fires_when_the_repository_cannot_be_made() {
    let env = TestEnv::new();
    let hook_file = env.path("hook.txt");
    let metrics = env.path("metrics.prom");
    let repo = env.path("never.sqlgit");
    let run = env
        .sqlgit(&[
            "snapshot",
            &s(&env.path("missing.db")),
            "--repo",
            &s(&repo),
            "--on-failure",
            &logging_hook(&hook_file),
            "--metrics-file",
            &s(&metrics),
        ])
        .code_is(1);
    assert!(
        run.stderr_str().contains("missing.db: no such file"),
        "{}",
        run.stderr_str()
    );
    assert!(
        !repo.exists(),
        "a repository was made for a database that is not there"
    );
    let lines = hook_lines(&hook_file);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("failure|"), "{lines:?}");
    assert!(lines[0].contains("missing.db"), "{lines:?}");
    let text = std::fs::read_to_string(&metrics).expect("the metrics file records the failure");
    assert!(text.contains("sqlgit_last_run_success{"), "{text}");
    assert!(text.contains("} 0\n"), "{text}");
}

#[test]
fn failure_hook_and_state_on_a_lock_timeout() {
    let env = TestEnv::new();
    let (repo, hook_file) = snapshotted_with_failure_hook(&env);
    // Another run holds the lock.
    let lock = std::fs::File::open(repo.join("sqlgit.lock")).unwrap();
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let started = Instant::now();
    let run = env
        .sqlgit(&["snapshot", "--repo", &s(&repo), "--lock-timeout", "1s"])
        .code_is(1);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(run.stderr_str().contains("is busy"), "{}", run.stderr_str());
    drop(lock);
    let lines = hook_lines(&hook_file);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("failure|") && lines[0].contains("busy"),
        "{lines:?}"
    );
    let status = env.sqlgit(&["status", "--repo", &s(&repo)]).code_is(1);
    assert!(
        status.stderr_str().contains("the last run failed") && status.stderr_str().contains("busy"),
        "{}",
        status.stderr_str()
    );
}

/// A cron line that no longer parses (a typo, a renamed flag) exits 2 before any run; for
/// `snapshot` and `push` of an existing repository it is recorded like a failed run: the failure
/// hook fires, status is unhealthy, and the next good run heals it.
#[test]
fn a_command_line_that_does_not_parse_is_a_failed_run_of_its_repository() {
    let env = TestEnv::new();
    let (repo, hook_file) = snapshotted_with_failure_hook(&env);
    let repo_eq = format!("--repo={}", s(&repo));
    for args in [
        vec!["snapshot", "--repo", &s(&repo), "--keep-last", "3"],
        vec!["-q", "push", &repo_eq, "--bogus"],
    ] {
        let run = env.sqlgit(&args).code_is(2);
        assert_eq!(run.stderr_str().lines().count(), 1, "{}", run.stderr_str());
    }
    let lines = hook_lines(&hook_file);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("failure|") && lines[0].contains("--keep-last"),
        "{lines:?}"
    );
    let status = env.sqlgit(&["status", "--repo", &s(&repo)]).code_is(1);
    assert!(
        status.stderr_str().contains("the last run failed")
            && status.stderr_str().contains("--bogus"),
        "{}",
        status.stderr_str()
    );
    // Other commands' usage errors are not runs; the next good run heals the status.
    env.sqlgit(&["log", "--repo", &s(&repo), "--bogus"])
        .code_is(2);
    assert_eq!(hook_lines(&hook_file).len(), 2);
    env.sqlgit(&["snapshot", "--repo", &s(&repo)]).success();
    env.sqlgit(&["status", "--repo", &s(&repo)]).success();
}

#[test]
fn failure_hook_on_a_push_failure() {
    let env = TestEnv::new();
    let db = bank(&env);
    let repo = env.path("bank.sqlgit");
    let hook_file = env.path("hook.txt");
    let mut daemon = GitDaemon::start_in(env.path("srv"));
    daemon.create_bare("hist");
    let url = daemon.url("hist");
    daemon.stop();
    let metrics = env.path("metrics.prom");
    let success_file = env.path("success.txt");
    let run = env
        .sqlgit(&[
            "snapshot",
            &s(&db),
            "--repo",
            &s(&repo),
            "--history-remote",
            &url,
            "--on-failure",
            &logging_hook(&hook_file),
            "--on-success",
            &logging_hook(&success_file),
            "--metrics-file",
            &s(&metrics),
        ])
        .code_is(1);
    assert!(
        run.stderr_str().contains("push to history remote"),
        "{}",
        run.stderr_str()
    );
    let lines = hook_lines(&hook_file);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("failure|push failed"), "{lines:?}");

    // `sqlgit push` while the remote is still down fails the same way: hook, state, metrics.
    std::fs::remove_file(&metrics).unwrap();
    let push = |code: i32| env.sqlgit(&["push", "--repo", &s(&repo)]).code_is(code);
    let run = push(1);
    assert!(
        run.stderr_str().contains("push to history remote"),
        "{}",
        run.stderr_str()
    );
    let lines = hook_lines(&hook_file);
    assert_eq!(lines.len(), 2, "the failing push fired no hook: {lines:?}");
    assert!(lines[1].starts_with("failure|push failed"), "{lines:?}");
    let text = std::fs::read_to_string(&metrics).expect("the failing push wrote no metrics");
    assert!(text.contains("sqlgit_last_run_success{"), "{text}");
    assert!(
        text.contains("sqlgit_last_run_success{repo=") && text.contains("} 0\n"),
        "{text}"
    );
    env.sqlgit(&["status", "--repo", &s(&repo)]).code_is(1);

    // Once the remote is back, a push that completes the failed run makes the backup healthy.
    daemon.start();
    push(0);
    let status = env.sqlgit(&["status", "--repo", &s(&repo)]);
    assert_eq!(
        status.code(),
        Some(0),
        "status after a successful push: {}{}",
        status.stdout_str(),
        status.stderr_str()
    );
    let successes = hook_lines(&success_file);
    assert_eq!(successes.len(), 1, "{successes:?}");
    assert!(successes[0].starts_with("success|"), "{successes:?}");
    let text = std::fs::read_to_string(&metrics).unwrap();
    let success_line = text
        .lines()
        .find(|l| l.starts_with("sqlgit_last_run_success{"))
        .expect("last_run_success in the metrics");
    assert!(success_line.ends_with(" 1"), "{text}");
    assert_eq!(
        hook_lines(&hook_file).len(),
        2,
        "a failure hook fired on success"
    );
}

#[test]
fn status_after_a_killed_run_says_it_did_not_finish() {
    let env = TestEnv::new();
    let db = bank(&env);
    let repo = env.path("bank.sqlgit");
    env.sqlgit(&["snapshot", &s(&db), "--repo", &s(&repo)])
        .success();
    env.sqlgit(&["status", "--repo", &s(&repo)]).success();
    // A writer holds the database: the next run waits for it (--busy-timeout) and is killed.
    let writer = Connection::open(&db).unwrap();
    writer
        .execute_batch("BEGIN EXCLUSIVE; UPDATE account SET balance = 0;")
        .unwrap();
    let mut child = env
        .sqlgit_cmd(&["snapshot", "--repo", &s(&repo), "--busy-timeout", "60s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_running(&repo);
    // Still running: status says so and is not alarmed.
    let status = env.sqlgit(&["status", "--repo", &s(&repo)]);
    assert!(
        status.stdout_str().contains("in progress"),
        "{}",
        status.stdout_str()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    writer.execute_batch("ROLLBACK").unwrap();
    let status = env.sqlgit(&["status", "--repo", &s(&repo)]).code_is(1);
    assert!(
        status.stderr_str().contains("did not finish"),
        "{}",
        status.stderr_str()
    );
    let json = env
        .sqlgit(&["status", "--repo", &s(&repo), "--json"])
        .code_is(1);
    assert!(
        json.stdout_str().contains("\"running\""),
        "{}",
        json.stdout_str()
    );
    // The next run finishes, and the alarm is over.
    env.sqlgit(&["snapshot", "--repo", &s(&repo)]).success();
    env.sqlgit(&["status", "--repo", &s(&repo)]).success();
}

/// `sqlgit push` records its run like a snapshot does: killed mid-push, status says the run did
/// not finish; the next push completes it and status is healthy again.
#[test]
fn status_after_a_killed_push_says_it_did_not_finish() {
    let env = TestEnv::new();
    let db = bank(&env);
    let repo = env.path("bank.sqlgit");
    let remote = env.path("history.git");
    let init = std::process::Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(&remote)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .unwrap();
    assert!(init.success());
    let (db_arg, repo_arg, remote_arg) = (s(&db), s(&repo), s(&remote));
    let snapshot = ["snapshot", &db_arg, "--repo", &repo_arg];
    let with_remote = [&snapshot[..], &["--history-remote", &remote_arg]].concat();
    env.sqlgit(&with_remote).success();
    // The remote refuses the next push: a commit is left for `sqlgit push`.
    let hook = remote.join("hooks/pre-receive");
    let set_hook = |body: &str| {
        std::fs::write(&hook, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    set_hook("exit 1");
    Connection::open(&db)
        .unwrap()
        .execute_batch("UPDATE account SET balance = balance + 1 WHERE id = 7;")
        .unwrap();
    env.sqlgit(&snapshot).code_is(1);
    // Now the remote hangs, and the push is killed while it waits.
    set_hook("sleep 60");
    let mut child = env
        .sqlgit_cmd(&["push", "--repo", &s(&repo)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_running(&repo);
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    let status = env.sqlgit(&["status", "--repo", &s(&repo)]).code_is(1);
    assert!(
        status.stderr_str().contains("did not finish"),
        "{}",
        status.stderr_str()
    );
    std::fs::remove_file(&hook).unwrap();
    env.sqlgit(&["push", "--repo", &s(&repo)]).success();
    env.sqlgit(&["status", "--repo", &s(&repo)]).success();
}

#[test]
fn a_hung_hook_is_stopped_and_reported_and_does_not_block_the_next_run() {
    let env = TestEnv::new();
    let db = bank(&env);
    let repo = env.path("bank.sqlgit");
    let snapshot = |extra: [&str; 2]| {
        let (db, repo) = (s(&db), s(&repo));
        let mut args = vec!["snapshot", &db, "--repo", &repo];
        args.extend(extra);
        let mut cmd = env.sqlgit_cmd(&args);
        cmd.env("SQLGIT_HOOK_TIMEOUT", "1");
        cmd.output().unwrap()
    };
    let started = Instant::now();
    let out = snapshot(["--on-success", "sleep 60"]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the hook was waited for"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("was stopped after 1s"), "{stderr}");
    let out = snapshot(["--lock-timeout", "2s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs that wait for another run's lock are runs too. One stopped by SIGTERM while it waits
/// (cron's `timeout` during an overlap) says so, fires the failure hook and is recorded; a
/// `sqlgit push` that gives up on the lock is recorded as a failed push: its hook fires, and
/// the stopped run's failure (not about pushing) stays the last run's.
#[test]
fn a_run_or_push_that_never_got_the_lock_is_a_recorded_failure() {
    let env = TestEnv::new();
    let (repo, hook_file) = snapshotted_with_failure_hook(&env);
    let lock = std::fs::File::open(repo.join("sqlgit.lock")).unwrap();
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);

    let mut cmd = env.sqlgit_cmd(&["snapshot", "--repo", &s(&repo), "--lock-timeout", "120s"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("sqlgit: stopped by SIGTERM"), "{stderr}");
    let lines = hook_lines(&hook_file);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("stopped by SIGTERM"), "{lines:?}");

    let run = env
        .sqlgit(&["push", "--repo", &s(&repo), "--lock-timeout", "1s"])
        .code_is(1);
    assert!(run.stderr_str().contains("is busy"), "{}", run.stderr_str());
    drop(lock);
    let lines = hook_lines(&hook_file);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[1].contains("busy"), "{lines:?}");
    let status = env.sqlgit(&["status", "--repo", &s(&repo)]).code_is(1);
    assert!(
        status.stderr_str().contains("the last run failed")
            && status.stderr_str().contains("stopped by SIGTERM"),
        "{}",
        status.stderr_str()
    );
}

/// A first run stopped (cron's `timeout`) while it pushes to a server that never answers: its
/// commit exists, so the state file and the failure hook name it and its figures, as for a
/// push that failed, instead of "no commit, 0 tables".
#[test]
fn a_run_stopped_during_its_push_records_the_commit_it_made() {
    let env = TestEnv::new();
    let db = bank(&env);
    let repo = env.path("bank.sqlgit");
    let hook_file = env.path("hook.txt");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream); // accepted, never answered
        }
    });
    let hook = format!(
        "printf '%s|%s|%s\\n' \"$SQLGIT_RESULT\" \"$SQLGIT_COMMIT\" \"$SQLGIT_TABLES\" >> '{}'",
        hook_file.display()
    );
    let url = format!("git://127.0.0.1:{port}/latest.git");
    let mut cmd = env.sqlgit_cmd(&[
        "snapshot",
        &s(&db),
        "--repo",
        &s(&repo),
        "--latest-remote",
        &url,
        "--push-timeout",
        "120s",
        "--on-failure",
        &hook,
    ]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let commit = loop {
        let head = std::fs::read_to_string(repo.join("refs/heads/main")).unwrap_or_default();
        if head.trim().len() == 40 {
            break head.trim().to_string();
        }
        assert!(Instant::now() < deadline, "no commit was made");
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(500)); // into the push
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
    assert_eq!(hook_lines(&hook_file), vec![format!("failure|{commit}|1")]);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("sqlgit-state.json")).unwrap())
            .unwrap();
    let last = &state["last_run"];
    assert_eq!(last["commit"], commit.as_str(), "{state}");
    assert_eq!(last["tables"], 1, "{state}");
    assert_eq!(last["rows"], 2000, "{state}");
}
