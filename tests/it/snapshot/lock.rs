//! The repository lock (held with the `flock` CLI): a bounded wait, and a killed holder never
//! blocks the next run.

use std::os::fd::AsRawFd;

use super::*;

// ------------------------------------------------------------------------------------------------
// 7. The repository lock
// ------------------------------------------------------------------------------------------------

/// Holds `lock` with the `flock` CLI (util-linux) in its own process group, until killed.
struct LockHolder {
    child: Child,
}

impl LockHolder {
    fn start(env: &TestEnv, lock: &Path) -> LockHolder {
        let mut cmd = env.command("flock");
        cmd.arg("--exclusive")
            .arg(lock)
            .args(["sh", "-c", "echo locked; exec sleep 60"])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run the flock CLI (util-linux) for the lock test: {e}")
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line,
            "locked\n",
            "flock {} did not take the lock",
            lock.display()
        );
        LockHolder { child }
    }

    /// SIGKILL the holder and everything it started (the lock dies with them).
    fn kill(mut self) {
        assert!(kill_group(self.child.id()), "kill the process group");
        self.child.wait().unwrap();
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

#[test]
fn lock_bounds_the_wait_and_a_killed_holder_never_blocks() {
    let env = TestEnv::new();
    let db = env.fixture_db("demo");
    let repo = env.path("repo");
    let first = snapshot_commit(&env, &db, &repo, Some(T));
    sql(&env, &db, "UPDATE authors SET name = name || '?';");
    let lock = repo.join("sqlgit.lock");

    // Held by someone else: a bounded wait, then one clear line and exit 1; nothing committed.
    let holder = LockHolder::start(&env, &lock);
    let start = Instant::now();
    let run = snapshot_run(&env, &db, &repo, Some(T + 100), &["--lock-timeout", "1s"]);
    let waited = start.elapsed();
    let msg = assert_error_line(run, 1);
    let lower = msg.to_lowercase();
    assert!(
        lower.contains("lock") || lower.contains("busy"),
        "the message should mention the lock: {msg}"
    );
    assert!(
        waited >= Duration::from_millis(900) && waited <= Duration::from_secs(3),
        "--lock-timeout 1s gave up after {waited:?}"
    );
    assert_eq!(
        git_str(&env, &repo, &["rev-parse", "refs/heads/main"]),
        first,
        "a locked-out run committed"
    );

    // A run that waits longer gets the lock as soon as the holder is SIGKILLed.
    let mut waiting = sqlgit_cmd_at(
        &env,
        Some(T + 200),
        &[
            OsStr::new("snapshot"),
            db.as_os_str(),
            OsStr::new("--repo"),
            repo.as_os_str(),
            OsStr::new("--lock-timeout"),
            OsStr::new("30s"),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "snapshot did not wait for the held lock"
    );
    assert_eq!(
        git_str(&env, &repo, &["rev-parse", "refs/heads/main"]),
        first,
        "committed while locked out"
    );
    let killed_at = Instant::now();
    holder.kill();
    let out = waiting.wait_with_output().unwrap();
    let after_kill = killed_at.elapsed();
    assert!(
        out.status.success(),
        "the waiting snapshot failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        after_kill < Duration::from_secs(5),
        "took {after_kill:?} after the holder died"
    );
    let second = git_str(&env, &repo, &["rev-parse", "refs/heads/main"]);
    assert_ne!(second, first, "the waiting snapshot made no commit");
    assert_eq!(log_json(&env, &repo)[0].unix, (T + 200) as i64);

    // The lock file stays, but an unheld lock never blocks: the next run is immediate.
    assert!(lock.exists());
    let start = Instant::now();
    assert_eq!(snapshot(&env, &db, &repo, Some(T + 300)), None);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_fsck_clean(&env, &repo);
}

/// A run that is alive but stopped (Ctrl-Z, SIGSTOP) keeps the lock forever: the busy error and
/// `status` name it, say it is stopped, and give the commands that free the lock. Once it is
/// gone, its record is not said to hold anything, even while another process holds the lock.
#[test]
fn a_stopped_holder_is_named_with_the_commands_that_free_the_lock() {
    let env = TestEnv::new();
    let db = env.fixture_db("demo");
    let repo = env.path("repo");
    snapshot_commit(&env, &db, &repo, Some(T));
    // A writer holds the database: the next run waits for it, holding the repository's lock.
    let writer = Connection::open(&db).unwrap();
    writer
        .execute_batch("BEGIN EXCLUSIVE; UPDATE authors SET name = name || '?';")
        .unwrap();
    let (db_arg, repo_arg) = (db.display().to_string(), repo.display().to_string());
    let mut run = env
        .sqlgit_cmd(&[
            "snapshot",
            &db_arg,
            "--repo",
            &repo_arg,
            "--busy-timeout",
            "60s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = run.id();
    let started = Instant::now();
    while !std::fs::read_to_string(repo.join("sqlgit-state.json"))
        .unwrap_or_default()
        .contains("\"running\": {")
    {
        assert!(started.elapsed() < Duration::from_secs(20), "never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Past the state file's update: the run waits for the writer.
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_millis(200));

    let busy = env
        .sqlgit(&[
            "snapshot",
            &db_arg,
            "--repo",
            &repo_arg,
            "--lock-timeout",
            "1s",
        ])
        .code_is(1)
        .stderr_str();
    for part in [
        format!("process {pid} holds its lock and is stopped"),
        format!("`kill -CONT {pid}`"),
        format!("`kill {pid}; kill -CONT {pid}`"),
    ] {
        assert!(busy.contains(&part), "{part:?} not in: {busy}");
    }
    let status = env.sqlgit(&["status", "--repo", &repo_arg]).code_is(1);
    assert!(
        status
            .stdout_str()
            .contains(&format!("in progress (process {pid})")),
        "{}",
        status.stdout_str()
    );
    assert!(
        status.stderr_str().contains(&format!("`kill -CONT {pid}`")),
        "{}",
        status.stderr_str()
    );

    // Gone, its record did not finish, whoever holds the lock now.
    run.kill().unwrap();
    run.wait().unwrap();
    drop(writer);
    let lock = std::fs::File::open(repo.join("sqlgit.lock")).unwrap();
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let status = env.sqlgit(&["status", "--repo", &repo_arg]).code_is(1);
    let all = format!("{}{}", status.stdout_str(), status.stderr_str());
    assert!(all.contains("did not finish"), "{all}");
    assert!(
        !all.contains("in progress")
            && !all.contains("\nlock: ")
            && !all.contains(&format!("{repo_arg}: sqlgit process")),
        "a dead run is said to hold the lock: {all}"
    );
    drop(lock);
    // The lock free, the next run succeeds (nothing changed: the writer rolled back).
    assert_eq!(snapshot(&env, &db, &repo, Some(T + 100)), None);
}

/// A `git update-ref --stdin` transaction (what `git tag`, `git branch`, `git fetch` and `git
/// pack-refs` do inside) prepared on `refname`: git holds `refname.lock` until `commit`.
struct GitTransaction {
    child: Child,
    /// Its answers (`commit: ok`): kept open, or git dies of SIGPIPE.
    out: BufReader<std::process::ChildStdout>,
}

impl GitTransaction {
    fn prepare(env: &TestEnv, repo: &Path, refname: &str, to: &str) -> GitTransaction {
        let mut child = git_cmd(env, repo)
            .args(["update-ref", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.as_mut().unwrap();
        write!(stdin, "start\nupdate {refname} {to}\nprepare\n").unwrap();
        stdin.flush().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        for want in ["start: ok\n", "prepare: ok\n"] {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            assert_eq!(line, want, "git update-ref --stdin");
        }
        assert!(repo.join(format!("{refname}.lock")).exists());
        GitTransaction { child, out }
    }

    /// Commit the transaction: git's exit status and stderr.
    fn commit(mut self) -> (bool, String) {
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.write_all(b"commit\n").unwrap();
        drop(stdin);
        let mut answers = String::new();
        std::io::Read::read_to_string(&mut self.out, &mut answers).unwrap();
        let out = self.child.wait_with_output().unwrap();
        let ok = out.status.success() && answers == "commit: ok\n";
        (ok, String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// git's lock files belong to the git command holding them: a run leaves a foreign one alone
/// (the user's `git tag` running at the same moment is made), waits for one on a ref it writes,
/// then fails naming it; only those a killed run left are its to remove (`kills.rs`).
#[test]
fn a_live_git_commands_ref_locks_are_left_alone() {
    let env = TestEnv::new();
    let db = env.fixture_db("demo");
    let repo = env.path("repo");
    let first = snapshot_commit(&env, &db, &repo, Some(T));
    let tag = GitTransaction::prepare(&env, &repo, "refs/tags/keep", &first);
    sql(&env, &db, "UPDATE authors SET name = name || '?';");
    let second = snapshot_commit(&env, &db, &repo, Some(T + 100));
    assert!(
        repo.join("refs/tags/keep.lock").exists(),
        "git's lock was removed"
    );
    let (ok, err) = tag.commit();
    assert!(ok, "the concurrent git transaction failed: {err}");
    assert_eq!(
        git_str(&env, &repo, &["rev-parse", "refs/tags/keep"]),
        first
    );

    // On the branch the run moves: a bounded wait, then one line naming the file.
    let branch = GitTransaction::prepare(&env, &repo, "refs/heads/main", &second);
    sql(&env, &db, "UPDATE authors SET name = name || '!';");
    let start = Instant::now();
    let run = snapshot_run(&env, &db, &repo, Some(T + 200), &["--lock-timeout", "1s"]);
    assert!(start.elapsed() < Duration::from_secs(10));
    let msg = assert_error_line(run, 1);
    assert!(
        msg.contains("another git command is working on the repository")
            && msg.contains("refs/heads/main.lock")
            && msg.contains("rm "),
        "{msg}"
    );
    assert!(repo.join("refs/heads/main.lock").exists());
    let (ok, err) = branch.commit();
    assert!(ok, "the concurrent git transaction failed: {err}");
    assert_eq!(
        git_str(&env, &repo, &["rev-parse", "refs/heads/main"]),
        second
    );
    // Once git is done, the next run goes on.
    let third = snapshot_commit(&env, &db, &repo, Some(T + 300));
    assert_eq!(
        git_str(&env, &repo, &["rev-parse", "main^"]),
        second,
        "{third}"
    );
    assert_fsck_clean(&env, &repo);
}

/// A killed run's git lock (`refs/heads/main.lock`, made while it held the repository's lock)
/// is removed by whatever command takes the lock next — an `init` too, which used to overwrite
/// the killed run's record so that every later run waited for the lock and failed.
#[test]
fn an_init_after_a_killed_run_removes_the_git_lock_it_left() {
    let env = TestEnv::new();
    let db = env.fixture_db("demo");
    let repo = env.path("repo");
    snapshot_commit(&env, &db, &repo, Some(T));
    // As a run killed while moving the branch leaves them: its record (no `ended`), the
    // branch's lock made while it ran, its last heartbeat after that.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let record = repo.join("sqlgit.lock");
    std::fs::write(&record, format!("4194000 {} beat\n", now - 5)).unwrap();
    std::fs::write(repo.join("refs/heads/main.lock"), "0000\n").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::File::options()
        .write(true)
        .open(&record)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    let repo_arg = repo.display().to_string();
    env.sqlgit(&["init", "--repo", &repo_arg, "--keep", "5"])
        .success();
    assert!(
        !repo.join("refs/heads/main.lock").exists(),
        "the killed run's lock is gone"
    );
    sql(&env, &db, "UPDATE authors SET name = name || '?';");
    snapshot_run(&env, &db, &repo, Some(T + 100), &["--lock-timeout", "1s"]).success();
}
