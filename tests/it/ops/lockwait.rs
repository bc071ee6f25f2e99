//! A run that gives up waiting for the lock (`--lock-timeout`) records its failure on top of
//! what the run holding the lock saved, never over it.

use std::os::fd::AsRawFd;

use super::*;

/// An exclusive `flock` on `path` (a file or a folder), held while the file lives.
fn flock(path: &Path) -> std::fs::File {
    let file = std::fs::File::open(path).unwrap();
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
    file
}

#[test]
fn a_lock_timeout_is_recorded_on_top_of_the_live_runs_record() {
    let env = TestEnv::new();
    let db = env.db_from_script("a.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    let repo = env.path("a.sqlgit");
    sg(&env, T0, &["snapshot", &s(&db), "--repo", &s(&repo)]).success();
    let state_file = repo.join("sqlgit-state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    // Run A holds the repository's lock and is saving its record (under the state file's lock).
    state["running"] = serde_json::json!({"unix": T0 + 50, "pid": 1, "push": false});
    std::fs::write(&state_file, serde_json::to_vec(&state).unwrap()).unwrap();
    let repo_lock = flock(&repo.join("sqlgit.lock"));
    let state_lock = flock(&repo);
    // Run B gives up after 1 s.
    let args = ["snapshot", "--repo", &s(&repo), "--lock-timeout", "1s"];
    let mut b = sqlgit_cmd(&env, T0 + 60, &args, &[]);
    let b = b
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    // A's record: finished, successful.
    state["running"] = Value::Null;
    state["last_success"] = (T0 + 55).into();
    state["last_run"]["unix"] = (T0 + 55).into();
    let tmp = repo.join("a-record.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&state).unwrap()).unwrap();
    std::fs::rename(&tmp, &state_file).unwrap();
    drop((state_lock, repo_lock));
    let out = b.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let after: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert!(after["running"].is_null(), "A's finish was lost: {after:#}");
    assert_eq!(after["last_success"], T0 + 55, "{after:#}");
    let last = &after["last_run"];
    assert!(
        last["ok"] == false && last["error"].as_str().unwrap().contains("busy"),
        "B's failure is recorded: {after:#}"
    );
}
