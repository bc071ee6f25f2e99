//! A run stopped (SIGTERM: cron's `timeout`) after its commit, while it pushes, and a `sqlgit
//! push` stopped the same way, failed only in their pushes: a later push that completes them
//! makes the run a success (status, metrics, `--on-success`).

use std::path::Path;

use crate::env::{TestEnv, hook_lines, logging_hook};

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Make `remote`'s pushes hang (a slow server) until the test stops sqlgit; `receiving` appears
/// once a push reached it.
fn slow_receive(env: &TestEnv, remote: &Path, receiving: &Path) {
    let hook = remote.join("hooks/pre-receive");
    env.write(
        &hook,
        format!("#!/bin/sh\ntouch '{}'\nsleep 30\n", receiving.display()),
    );
    let mut perms = std::fs::metadata(&hook).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&hook, perms).unwrap();
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
    let db = env.db_from_script(
        "a.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v); INSERT INTO t VALUES(1,'a');",
    );
    let (repo, hist) = (env.path("r"), env.path("hist.git"));
    let (hooks, metrics) = (env.path("hooks.txt"), env.path("m.prom"));
    env.git_in(
        env.root(),
        &["init", "-q", "--bare", "-b", "main", &s(&hist)],
    );
    env.sqlgit(&[
        "snapshot",
        &s(&db),
        "--repo",
        &s(&repo),
        "-q",
        "--history-remote",
        &s(&hist),
        "--metrics-file",
        &s(&metrics),
        // Slow: a run the stop interrupted has time to record itself over the stop's record.
        "--on-failure",
        &format!("sleep 1; {}", logging_hook(&hooks)),
        "--on-success",
        &logging_hook(&hooks),
    ])
    .success();
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
