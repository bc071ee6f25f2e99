//! A run stopped (SIGTERM: cron's `timeout`) after its commit, while it pushes, and a `sqlgit
//! push` stopped the same way, failed only in their pushes: a later push that completes them
//! makes the run a success (status, metrics, `--on-success`).

use std::path::{Path, PathBuf};

use crate::env::{TestEnv, hook_lines, logging_hook};

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `a.db` (one row in `t`) snapshotted into `r` with the bare local `hist.git` as its history
/// remote, and `extra` flags: the database, repository and remote.
fn snapshotted_with_history(env: &TestEnv, extra: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
    let db = env.db_from_script(
        "a.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v); INSERT INTO t VALUES(1,'a');",
    );
    let (repo, hist) = (env.path("r"), env.path("hist.git"));
    env.git_in(
        env.root(),
        &["init", "-q", "--bare", "-b", "main", &s(&hist)],
    );
    let (d, r, h) = (s(&db), s(&repo), s(&hist));
    let mut args = vec!["snapshot", &d, "--repo", &r, "-q", "--history-remote", &h];
    args.extend_from_slice(extra);
    env.sqlgit(&args).success();
    (db, repo, hist)
}

/// Make `remote`'s pushes hang (a slow server) until the test stops sqlgit; `receiving` appears
/// once a push reached it.
fn slow_receive(env: &TestEnv, remote: &Path, receiving: &Path) {
    let body = format!("touch '{}'\nsleep 30\n", receiving.display());
    remote_hook(env, remote, "pre-receive", &body);
}

/// Give `remote` the hook `name` running the shell script `body`.
fn remote_hook(env: &TestEnv, remote: &Path, name: &str, body: &str) {
    let hook = remote.join("hooks").join(name);
    env.write(&hook, format!("#!/bin/sh\n{body}"));
    let mut perms = std::fs::metadata(&hook).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&hook, perms).unwrap();
}

/// Make `remote`'s pushes hang while its `git-receive-pack` holds `refs/heads/main.lock` (a
/// slow disk); `locked` appears once it does.
fn slow_ref_update(env: &TestEnv, remote: &Path, locked: &Path) {
    let body = format!(
        "[ \"$1\" = prepared ] || exit 0\ntouch '{}'\nsleep 30\n",
        locked.display()
    );
    remote_hook(env, remote, "reference-transaction", &body);
}

/// The lock files under `remote`'s refs.
fn ref_locks(remote: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![remote.join("refs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "lock") {
                found.push(s(&path));
            }
        }
    }
    found
}

/// Stop `args` with SIGTERM once its push reached the slow history remote; its stderr.
fn stop_while_pushing(env: &TestEnv, args: &[&str], hist: &Path) -> String {
    let receiving = env.path("receiving");
    slow_receive(env, hist, &receiving);
    let out = env.sqlgit_signalled(args, libc::SIGTERM, "push", || receiving.exists());
    assert_eq!(out.status.code(), Some(1));
    std::fs::remove_file(hist.join("hooks/pre-receive")).unwrap();
    std::fs::remove_file(&receiving).unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The stop, and only the stop, is what a stopped run or push said and recorded: one error
/// line on stderr (no second one for the git push the stop killed, no hook "not run"), the
/// state's last run and status naming the stop, the failure hook fired once with it.
fn recorded_as_the_stop(env: &TestEnv, repo: &Path, stderr: &str, hooks: &Path, before: usize) {
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("sqlgit: ") && !l.starts_with("sqlgit: warning: "))
        .collect();
    assert!(
        errors.len() == 1 && errors[0].contains("stopped by SIGTERM"),
        "{stderr}"
    );
    assert!(!stderr.contains("not run"), "{stderr}");
    let state = std::fs::read_to_string(repo.join("sqlgit-state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let error = state["last_run"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("stopped by SIGTERM") && !error.contains("git push failed"),
        "{error}"
    );
    let status = env.sqlgit(&["status", "--repo", &s(repo), "-q"]);
    assert!(
        status.stderr_str().contains("stopped by SIGTERM"),
        "{}",
        status.stderr_str()
    );
    let fired = hook_lines(hooks);
    assert_eq!(fired.len(), before + 1, "{fired:?}");
    assert!(
        fired.last().unwrap().starts_with("failure|")
            && fired.last().unwrap().contains("stopped by SIGTERM"),
        "{fired:?}"
    );
}

/// The last run is a success again after `sqlgit push` completed it: status healthy, metrics 1,
/// and the success hook fired last.
fn completed_by_push(env: &TestEnv, repo: &Path, hooks: &Path, metrics: &Path) {
    env.sqlgit(&["push", "--repo", &s(repo), "-q"]).success();
    let status = env.sqlgit(&["status", "--repo", &s(repo), "-q"]);
    assert_eq!(status.code(), Some(0), "{}", status.stderr_str());
    let text = std::fs::read_to_string(metrics).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("sqlgit_last_run_success{") && l.ends_with(" 1")),
        "{text}"
    );
    let fired = hook_lines(hooks);
    assert!(fired.last().unwrap().starts_with("success|"), "{fired:?}");
}

#[test]
fn a_push_completes_a_run_or_push_stopped_while_pushing() {
    let env = TestEnv::new();
    let (hooks, metrics) = (env.path("hooks.txt"), env.path("m.prom"));
    let (m, on_failure, on_success) = (
        s(&metrics),
        // Slow: a run the stop interrupted has time to record itself over the stop's record.
        format!("sleep 1; {}", logging_hook(&hooks)),
        logging_hook(&hooks),
    );
    let (db, repo, hist) = snapshotted_with_history(
        &env,
        &[
            "--metrics-file",
            &m,
            "--on-failure",
            &on_failure,
            "--on-success",
            &on_success,
        ],
    );
    let r = s(&repo);
    // A snapshot run stopped after its commit, in its push.
    env.sqlite3(&db, "INSERT INTO t VALUES(2,'b')");
    let before = hook_lines(&hooks).len();
    let stderr = stop_while_pushing(&env, &["snapshot", "--repo", &r, "-q"], &hist);
    recorded_as_the_stop(&env, &repo, &stderr, &hooks, before);
    completed_by_push(&env, &repo, &hooks, &metrics);
    // A `sqlgit push` stopped in its push, after a run whose push failed.
    env.sqlite3(&db, "INSERT INTO t VALUES(3,'c')");
    let down = env.path("hist.down");
    std::fs::rename(&hist, &down).unwrap();
    env.sqlgit(&["snapshot", "--repo", &r, "-q"]).code_is(1);
    std::fs::rename(&down, &hist).unwrap();
    let before = hook_lines(&hooks).len();
    let stderr = stop_while_pushing(&env, &["push", "--repo", &r, "-q"], &hist);
    recorded_as_the_stop(&env, &repo, &stderr, &hooks, before);
    completed_by_push(&env, &repo, &hooks, &metrics);
    assert_eq!(
        env.git_in(&hist, &["rev-parse", "main"]),
        env.git_in(&repo, &["rev-parse", "main"])
    );
}

/// A run stopped (SIGTERM) or timed out (--push-timeout) while a local history remote's
/// `git-receive-pack` holds its `refs/heads/main.lock` lets git remove it (SIGTERM first, not
/// SIGKILL): the next run pushes. Killed, receive-pack left the lock and every later push
/// failed on it.
#[test]
fn a_push_stopped_or_timed_out_while_the_remote_locks_its_ref_leaves_no_lock() {
    let env = TestEnv::new();
    let (db, repo, hist) = snapshotted_with_history(&env, &[]);
    let (locked, r) = (env.path("locked"), s(&repo));
    slow_ref_update(&env, &hist, &locked);
    env.sqlite3(&db, "INSERT INTO t VALUES(2,'b')");
    let out = env.sqlgit_signalled(
        &["snapshot", "--repo", &r, "-q"],
        libc::SIGTERM,
        "push",
        || locked.exists(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(1) && stderr.contains("stopped by SIGTERM"),
        "{stderr}"
    );
    assert_eq!(ref_locks(&hist), Vec::<String>::new(), "stopped");
    std::fs::remove_file(&locked).unwrap();
    let timed_out = env
        .sqlgit(&["push", "--repo", &r, "-q", "--push-timeout", "3s"])
        .code_is(1);
    assert!(
        locked.exists() && timed_out.stderr_str().contains("--push-timeout"),
        "{}",
        timed_out.stderr_str()
    );
    assert_eq!(ref_locks(&hist), Vec::<String>::new(), "timed out");
    std::fs::remove_file(hist.join("hooks/reference-transaction")).unwrap();
    env.sqlgit(&["push", "--repo", &r, "-q"]).success();
    assert_eq!(
        env.git_in(&hist, &["rev-parse", "main"]),
        env.git_in(&repo, &["rev-parse", "main"])
    );
}

/// A lock file left in the history remote (by a git killed there) fails the push with a line
/// that names it and how to remove it, with either transport; removed, the next run pushes.
#[test]
fn a_lock_file_left_in_a_remote_is_named_with_its_fix() {
    let env = TestEnv::new();
    let (db, repo, hist) = snapshotted_with_history(&env, &[]);
    let r = s(&repo);
    let lock = hist.join("refs/heads/main.lock");
    // libgit2 pushes a local remote only when no git is on PATH.
    let no_git = env.path("no-git-bin");
    std::fs::create_dir_all(&no_git).unwrap();
    for (n, transport) in ["git", "libgit2"].into_iter().enumerate() {
        env.sqlite3(&db, format!("INSERT INTO t VALUES({}, 'x')", n + 2));
        std::fs::write(&lock, "").unwrap();
        let mut cmd = env.sqlgit_cmd(&["snapshot", "--repo", &r, "-q"]);
        if transport == "libgit2" {
            cmd.env("PATH", &no_git);
        }
        let said = env.run(cmd, b"").code_is(1).stderr_str();
        assert!(said.contains(&format!("({transport}: ")), "{said}");
        assert!(
            said.contains(&format!(
                "lock file in the remote's repository, {}",
                s(&lock)
            )) && said.contains(&format!("rm {};", s(&lock)))
                && !said.contains("another git command is working"),
            "{transport}: {said}"
        );
        std::fs::remove_file(&lock).unwrap();
        env.sqlgit(&["push", "--repo", &r, "-q"]).success();
        assert_eq!(
            env.git_in(&hist, &["rev-parse", "main"]),
            env.git_in(&repo, &["rev-parse", "main"])
        );
    }
}

/// `remote`'s push record in `repo`'s state file: (time, ok, error).
fn push_record(repo: &Path, remote: &str) -> (i64, bool, String) {
    let state = std::fs::read_to_string(repo.join("sqlgit-state.json")).unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let r = &state["remotes"][remote];
    let error = r["error"].as_str().unwrap_or_default().to_string();
    (
        r["unix"].as_i64().unwrap(),
        r["ok"].as_bool().unwrap(),
        error,
    )
}

/// The value of `metric{…remote="REMOTE"}` in the metrics file `prom`.
fn remote_metric(prom: &Path, metric: &str, remote: &str) -> String {
    let text = std::fs::read_to_string(prom).unwrap();
    let label = format!("remote=\"{remote}\"}}");
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{metric}{{")) && l.contains(&label));
    let line = line.unwrap_or_else(|| panic!("no {metric} of {remote}:\n{text}"));
    line.rsplit(' ').next().unwrap().to_string()
}

/// Each remote's push as state, metrics and status tell it: pushed in this run (`now`) or, for
/// `failed`, failed at `now` with `cause` (never the earlier run's success).
fn pushes_told(env: &TestEnv, repo: &Path, prom: &Path, now: i64, failed: &str, cause: &str) {
    let status = env.sqlgit(&["status", "--repo", &s(repo)]).stdout_str();
    for remote in ["history", "latest"] {
        let (unix, ok, error) = push_record(repo, remote);
        assert_eq!((unix, ok), (now, remote != failed), "{remote}: {error}");
        let stamp = remote_metric(prom, "sqlgit_push_timestamp_seconds", remote);
        assert_eq!(stamp, now.to_string(), "{remote}");
        let success = remote_metric(prom, "sqlgit_push_success", remote);
        assert_eq!(success, if ok { "1" } else { "0" }, "{remote}");
        let line = status.lines().find(|l| l.starts_with(remote)).unwrap();
        assert_eq!(line.contains("last push FAILED"), !ok, "{status}");
    }
    let (_, _, error) = push_record(repo, failed);
    assert!(
        error.starts_with("the push did not finish") && error.contains(cause),
        "{error}"
    );
}

/// A run whose push to the latest remote was cut off — stopped by SIGTERM, a `sqlgit push`
/// stopped the same way, a panic, `kill -9` — records that push as failed at its own time, and
/// the history remote's (finished before) as pushed then: never the previous run's success.
#[test]
fn a_push_cut_off_is_recorded_failed_at_the_runs_time() {
    const T0: i64 = 1_700_000_000;
    let env = TestEnv::new();
    let db = env.db_from_script("a.db", b"CREATE TABLE t(x); INSERT INTO t VALUES(1);");
    let (repo, hist, latest) = (env.path("r"), env.path("hist.git"), env.path("latest.git"));
    let prom = env.path("m.prom");
    for remote in [&hist, &latest] {
        env.git_in(
            env.root(),
            &["init", "-q", "--bare", "-b", "main", &s(remote)],
        );
    }
    let r = s(&repo);
    let at = |now: i64, args: &[&str]| {
        let mut cmd = env.sqlgit_cmd(args);
        cmd.env("SQLGIT_NOW", now.to_string());
        cmd
    };
    let first = [
        "snapshot",
        &s(&db),
        "--repo",
        &r,
        "-q",
        "--history-remote",
        &s(&hist),
        "--latest-remote",
        &s(&latest),
        "--metrics-file",
        &s(&prom),
    ];
    env.run(at(T0, &first), b"").success();
    let receiving = env.path("receiving");
    slow_receive(&env, &latest, &receiving);
    let stop = |now: i64, args: &[&str]| {
        let out = env.signalled(at(now, args), libc::SIGTERM, "push", || receiving.exists());
        assert_eq!(out.status.code(), Some(1));
        std::fs::remove_file(&receiving).unwrap();
    };
    env.sqlite3(&db, "INSERT INTO t VALUES(2)").success();
    stop(T0 + 60, &["snapshot", "--repo", &r, "-q"]);
    pushes_told(&env, &repo, &prom, T0 + 60, "latest", "stopped by SIGTERM");
    stop(T0 + 120, &["push", "--repo", &r, "-q"]);
    pushes_told(&env, &repo, &prom, T0 + 120, "latest", "stopped by SIGTERM");
    std::fs::remove_file(latest.join("hooks/pre-receive")).unwrap();
    // A panic (a thread that cannot be started) as the latest remote's push starts.
    env.sqlite3(&db, "INSERT INTO t VALUES(3)").success();
    let mut cmd = at(T0 + 180, &["snapshot", "--repo", &r, "-q"]);
    cmd.env("SQLGIT_FAILPOINT", "push-latest");
    env.run(cmd, b"").code_is(1);
    pushes_told(
        &env,
        &repo,
        &prom,
        T0 + 180,
        "latest",
        "cannot start a thread",
    );
    // Killed outright: the state file still says the push did not finish.
    env.sqlite3(&db, "INSERT INTO t VALUES(4)").success();
    let mut cmd = at(T0 + 240, &["snapshot", "--repo", &r, "-q"]);
    cmd.env("SQLGIT_FAILPOINT", "push-latest-killed");
    let killed = env.run(cmd, b"");
    assert_eq!(killed.code(), None);
    let (unix, ok, error) = push_record(&repo, "latest");
    assert!(
        unix == T0 + 240 && !ok && error.contains("killed"),
        "{error}"
    );
    assert_eq!(push_record(&repo, "history").0, T0 + 240);
    // The next run pushes both.
    env.run(at(T0 + 300, &["snapshot", "--repo", &r, "-q"]), b"")
        .success();
    for remote in ["history", "latest"] {
        assert_eq!(push_record(&repo, remote).0, T0 + 300);
        assert_eq!(remote_metric(&prom, "sqlgit_push_success", remote), "1");
    }
}
