//! Issue 5: bounded local history, through the real binary.
//!
//! * `--keep N|DURATION` (remembered as `sqlgit.keep`) cuts old snapshots off with a shallow graft
//!   after each snapshot's pushes, and on `sqlgit prune`; commit ids never change, so local history
//!   is exactly the newest N commits of the history remote.
//! * Nothing the history remote has not confirmed (`refs/remotes/history/main`) is pruned, and the
//!   confirmed commit itself stays (a push needs it); without a history remote pruning is free.
//! * Disk use stays bounded, plain git keeps working (`log`, `fsck --strict`, `archive`), a killed
//!   prune leaves a valid repository, and a point older than local history is fetched from the
//!   history remote (more in `history.rs`).
//!
//! `clock`: pruning by age and WHEN times with a clock that was wrong for a run; `refs`: tags,
//! branches and sqlgit's own refs on snapshots that pruning cuts off.
//!
//! The history remote is a `git daemon` on loopback (`servers.rs`). Every sqlgit run has a time
//! limit, so a hang fails the test instead of wedging CI. Snapshot times are pinned with
//! `SQLGIT_NOW`, one minute apart.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::env::{Run, TestEnv, compare_databases, copy_dir, dir_size, rfc3339};
use crate::servers::GitDaemon;

mod clock;
mod refs;

/// Limit for one sqlgit run (a healthy one takes well under a second here).
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// `SQLGIT_NOW` of the first snapshot; each snapshot is one minute later.
const T0: u64 = 1_700_000_000;
/// Rows in the test table.
const ROWS: u64 = 5_000;

/// Run `cmd` (stdin empty) and collect its output; kill it and fail after `limit`.
fn run_limited(env: &TestEnv, cmd: Command, limit: Duration) -> Run {
    env.run_limited(cmd, b"", limit).0
}

type Reader = std::thread::JoinHandle<Vec<u8>>;

/// Read a child's stdout and stderr on threads (no pipe can fill up and block it).
fn drain(child: &mut std::process::Child) -> (Reader, Reader) {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    (out_t, err_t)
}

/// Every file under `dir` with its bytes, to prove that a refused command changed nothing. The
/// run-status file `sqlgit-state.json` is left out: a failed snapshot records its failure there.
fn tree_state(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            } else if entry.file_name() != "sqlgit-state.json" {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The commit id a successful snapshot printed first on stdout.
fn printed_commit(run: &Run) -> String {
    let out = run.stdout_str();
    let id = out
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        run.fail("expected the new commit id as the first word of stdout");
    }
    id
}

/// Panic unless stderr is exactly one line containing `needle`.
#[track_caller]
fn assert_one_line(run: &Run, needle: &str) {
    let err = run.stderr_str();
    if err.lines().count() != 1 || !err.contains(needle) {
        run.fail(&format!(
            "expected exactly one stderr line containing {needle:?}"
        ));
    }
}

/// One test's world: a scratch dir, maybe a git daemon serving the history remote, a database of
/// `ROWS` rows and its sqlgit repository. (`daemon` is declared first so it dies before the
/// directory goes away.)
struct Fx {
    daemon: Option<GitDaemon>,
    env: TestEnv,
    db: PathBuf,
    repo: PathBuf,
    /// `SQLGIT_NOW` of the latest run.
    now: Cell<u64>,
    round: Cell<u64>,
}

impl Fx {
    fn new(with_remote: bool) -> Fx {
        let env = TestEnv::new();
        let daemon = with_remote.then(|| {
            let d = GitDaemon::start_in(env.path("srv"));
            d.create_bare("hist");
            d
        });
        let db = env.db_from_script(
            "app.db",
            format!(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER NOT NULL);\n\
                 WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {ROWS})\n\
                 INSERT INTO t SELECT i, printf('row %d: %.40c', i, char(65 + i % 26)), i * 7 \
                 FROM c;\n"
            )
            .as_bytes(),
        );
        let repo = env.path("app.sqlgit");
        Fx {
            daemon,
            env,
            db,
            repo,
            now: Cell::new(T0 - 60),
            round: Cell::new(0),
        }
    }

    fn daemon(&mut self) -> &mut GitDaemon {
        self.daemon.as_mut().expect("this test has no git daemon")
    }

    fn url(&self) -> String {
        self.daemon.as_ref().unwrap().url("hist")
    }

    fn remote_path(&self) -> PathBuf {
        self.daemon.as_ref().unwrap().repo_path("hist")
    }

    fn repo_arg(&self) -> String {
        self.repo.display().to_string()
    }

    /// Change a few rows (about 5 of the 5,000), so the next snapshot has something new.
    fn change(&self) {
        let r = self.round.get() + 1;
        self.round.set(r);
        self.env
            .sqlite3(
                &self.db,
                format!(
                    "UPDATE t SET n = n + 1, v = v || '.' WHERE id % 1009 = {};",
                    r % 1009
                ),
            )
            .success()
            .assert_quiet();
    }

    /// `sqlgit ARGS` with `SQLGIT_NOW` = the latest run's time.
    fn sqlgit(&self, args: &[&str]) -> Run {
        let mut cmd = self.env.sqlgit_cmd(args);
        cmd.env("SQLGIT_NOW", self.now.get().to_string());
        run_limited(&self.env, cmd, RUN_LIMIT)
    }

    /// Change the database, then `sqlgit snapshot app.db --repo app.sqlgit EXTRA...` one minute
    /// after the previous run.
    fn snapshot(&self, extra: &[&str]) -> Run {
        self.change();
        self.now.set(self.now.get() + 60);
        let db = self.db.display().to_string();
        let repo = self.repo_arg();
        let mut args = vec!["snapshot", db.as_str(), "--repo", repo.as_str()];
        args.extend_from_slice(extra);
        self.sqlgit(&args)
    }

    /// `sqlgit prune --repo app.sqlgit EXTRA...`.
    fn prune(&self, extra: &[&str]) -> Run {
        let repo = self.repo_arg();
        let mut args = vec!["prune", "--repo", repo.as_str()];
        args.extend_from_slice(extra);
        self.sqlgit(&args)
    }

    /// `sqlgit cat [WHEN] --repo DIR`.
    fn cat(&self, when: Option<&str>, repo: &Path) -> Run {
        let repo = repo.display().to_string();
        let mut args = vec!["cat"];
        args.extend(when);
        args.extend(["--repo", repo.as_str()]);
        self.sqlgit(&args)
    }

    /// `git ARGS` run in the test directory (hermetic).
    fn git_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.env.command("git");
        cmd.args(args);
        cmd
    }

    /// `git -C DIR ARGS`; panics unless it exits 0; trimmed stdout.
    #[track_caller]
    fn git(&self, dir: &Path, args: &[&str]) -> String {
        let mut cmd = self.git_cmd(&["-C"]);
        cmd.arg(dir).args(args);
        let run = run_limited(&self.env, cmd, RUN_LIMIT).success();
        run.stdout_str().trim().to_string()
    }

    /// The commit ids on `main` in `dir`, newest first (`git rev-list main`).
    fn ids(&self, dir: &Path) -> Vec<String> {
        self.git(dir, &["rev-list", "refs/heads/main"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn count(&self, dir: &Path) -> usize {
        self.git(dir, &["rev-list", "--count", "refs/heads/main"])
            .parse()
            .unwrap()
    }

    /// Commit times on `main`, newest first.
    fn times(&self, dir: &Path) -> Vec<u64> {
        self.git(dir, &["log", "--format=%ct", "refs/heads/main"])
            .lines()
            .map(|l| l.parse().unwrap())
            .collect()
    }

    /// The ids `sqlgit log --json` lists, newest first.
    fn logged(&self) -> Vec<String> {
        let run = self
            .sqlgit(&["log", "--json", "--repo", &self.repo_arg()])
            .success()
            .assert_quiet();
        let v: serde_json::Value = serde_json::from_slice(run.stdout()).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    }

    /// `git fsck --strict` exits 0 and reports nothing but dangling objects (dead objects that
    /// share a kept pack with live ones are left in place by design).
    #[track_caller]
    fn assert_fsck(&self, dir: &Path) {
        let mut cmd = self.git_cmd(&["-C"]);
        cmd.arg(dir).args(["fsck", "--strict", "--no-progress"]);
        let run = run_limited(&self.env, cmd, RUN_LIMIT);
        let text = format!("{}{}", run.stdout_str(), run.stderr_str());
        if run.code() != Some(0) || text.lines().any(|l| !l.starts_with("dangling ")) {
            run.fail("expected git fsck --strict to be clean (dangling objects allowed)");
        }
    }

    /// The oldest kept commit is recorded in `REPO/shallow` (one full id) when history was cut.
    #[track_caller]
    fn assert_shallow_is(&self, oldest: &str) {
        let shallow = std::fs::read_to_string(self.repo.join("shallow")).unwrap();
        assert_eq!(shallow, format!("{oldest}\n"), "REPO/shallow");
    }

    /// `git config sqlgit.keep`, None when unset.
    fn keep_setting(&self) -> Option<String> {
        let mut cmd = self.git_cmd(&["-C"]);
        cmd.arg(&self.repo).args(["config", "sqlgit.keep"]);
        let run = run_limited(&self.env, cmd, RUN_LIMIT);
        run.output
            .status
            .success()
            .then(|| run.stdout_str().trim().to_string())
    }

    /// Restore `sql` with the sqlite3 CLI into `root/NAME` and compare it with `expected`.
    fn assert_restores_to(&self, sql: &[u8], name: &str, expected: &Path) {
        let restored = self.env.restore(sql, name);
        compare_databases(expected, &restored);
    }
}

#[test]
fn keep_10_with_a_history_remote_keeps_the_newest_10_locally_and_all_60_remotely() {
    let fx = Fx::new(true);
    let url = fx.url();
    let remote = fx.remote_path();
    fx.snapshot(&["--keep", "10", "--history-remote", &url])
        .success()
        .assert_quiet();
    assert_eq!(fx.keep_setting().as_deref(), Some("10"), "sqlgit.keep");
    for _ in 1..10 {
        fx.snapshot(&[]).success().assert_quiet();
    }
    assert_eq!(fx.count(&fx.repo), 10);
    assert!(
        !fx.repo.join("shallow").exists(),
        "nothing to prune yet, but REPO/shallow exists"
    );
    let size_10 = dir_size(&fx.repo);

    for i in 10..60 {
        let run = fx.snapshot(&[]).success().assert_quiet();
        if i == 10 {
            let out = run.stdout_str();
            assert!(
                out.contains("pruned 1 old snapshot;") && out.contains("10 kept locally"),
                "the 11th snapshot should report pruning one:\n{out}"
            );
        }
    }
    let local = fx.ids(&fx.repo);
    let remote_ids = fx.ids(&remote);
    assert_eq!(
        remote_ids.len(),
        60,
        "the history remote has every snapshot"
    );
    assert_eq!(local.len(), 10, "local history is the newest 10");
    assert_eq!(
        local,
        remote_ids[..10],
        "the same ids as the remote's newest 10"
    );
    assert_eq!(fx.logged(), local, "sqlgit log lists the kept snapshots");
    fx.assert_shallow_is(&local[9]);
    assert_eq!(
        fx.git(&fx.repo, &["rev-parse", "refs/remotes/history/main"]),
        local[0],
        "the remote-tracking ref follows the pushes"
    );
    fx.assert_fsck(&fx.repo);
    fx.assert_fsck(&remote);

    // Plain git on the pruned repository.
    let log = fx.git(&fx.repo, &["log", "--format=%H %ct %s", "main"]);
    assert_eq!(log.lines().count(), 10, "git log:\n{log}");
    for (line, id) in log.lines().zip(&local) {
        assert!(
            line.starts_with(id.as_str()),
            "git log line {line:?} vs {id}"
        );
    }
    let archived = fx.env.path("archived.db");
    let pipeline = format!(
        "git -C '{}' archive main | tar -xO | sqlite3 -bail '{}'",
        fx.repo.display(),
        archived.display()
    );
    let mut sh = fx.env.command("sh");
    sh.args(["-c", &pipeline]);
    run_limited(&fx.env, sh, RUN_LIMIT).success().assert_quiet();
    compare_databases(&fx.db, &archived);

    let size_60 = dir_size(&fx.repo);
    eprintln!("repository size: {size_10} bytes after 10 snapshots, {size_60} after 60");
    assert!(
        size_60 <= 2 * size_10,
        "disk use not bounded: {size_10} bytes after 10 snapshots, {size_60} after 60"
    );
}

#[test]
fn with_the_remote_down_nothing_unconfirmed_is_pruned_and_history_shrinks_back() {
    let mut fx = Fx::new(true);
    let url = fx.url();
    let remote = fx.remote_path();
    fx.snapshot(&["--keep", "10", "--history-remote", &url])
        .success();
    for _ in 1..12 {
        fx.snapshot(&[]).success().assert_quiet();
    }
    assert_eq!(fx.count(&fx.repo), 10);
    assert_eq!(fx.count(&remote), 12);
    let confirmed = fx.ids(&remote)[0].clone();

    // Outage: every snapshot commits, fails to push (exit 1, one line), and prunes only what the
    // remote confirmed — never the confirmed tip a later push builds on. Confirmed snapshots
    // beyond the newest 10 may still go, so after k failed pushes local history is
    // max(10, k + 1): the k unconfirmed ones plus the confirmed tip.
    fx.daemon().stop();
    let mut unconfirmed = Vec::new();
    for k in 1..=15 {
        let run = fx.snapshot(&[]).code_is(1);
        assert_one_line(&run, "push to history remote");
        unconfirmed.insert(0, printed_commit(&run));
        let local = fx.ids(&fx.repo);
        assert_eq!(
            local[..k],
            unconfirmed[..],
            "after {k} failed pushes: the unconfirmed snapshots are all local"
        );
        assert!(
            local.contains(&confirmed),
            "after {k} failed pushes: the last confirmed commit was pruned"
        );
        assert_eq!(local.len(), (k + 1).max(10), "after {k} failed pushes");
        if k >= 10 {
            let held = k - 9;
            assert!(
                run.stdout_str().contains(&format!("kept {held} snapshot")),
                "the held-back snapshots should be reported:\n{}",
                run.stdout_str()
            );
        }
    }
    assert_eq!(fx.count(&remote), 12, "the remote was down");
    assert_eq!(fx.count(&fx.repo), 16, "15 unconfirmed + the confirmed tip");
    fx.assert_fsck(&fx.repo);

    // Back up: `sqlgit push` catches up (without pruning), `sqlgit prune` shrinks to 10.
    fx.daemon().start();
    let run = fx
        .sqlgit(&["push", "--repo", &fx.repo_arg()])
        .success()
        .assert_quiet();
    assert!(
        run.stdout_str().contains("pushed 15 commits"),
        "{}",
        run.stdout_str()
    );
    assert_eq!(fx.count(&remote), 27, "everything pushed");
    assert_eq!(fx.count(&fx.repo), 16, "push alone does not prune");
    let run = fx.prune(&[]).success().assert_quiet();
    assert!(
        run.stdout_str().contains("pruned 6 old snapshots"),
        "{}",
        run.stdout_str()
    );
    let local = fx.ids(&fx.repo);
    assert_eq!(
        local,
        fx.ids(&remote)[..10],
        "local = the remote's newest 10"
    );
    fx.assert_shallow_is(&local[9]);
    fx.assert_fsck(&fx.repo);

    // A second outage, this time ended by the next snapshot alone.
    fx.daemon().stop();
    for _ in 0..12 {
        fx.snapshot(&[]).code_is(1);
    }
    assert_eq!(fx.count(&fx.repo), 13, "12 unconfirmed + the confirmed tip");
    fx.daemon().start();
    fx.snapshot(&[]).success().assert_quiet();
    assert_eq!(fx.count(&remote), 27 + 13, "everything pushed");
    let local = fx.ids(&fx.repo);
    assert_eq!(local.len(), 10, "local history shrank back to 10");
    assert_eq!(local, fx.ids(&remote)[..10]);
    fx.assert_shallow_is(&local[9]);
    fx.assert_fsck(&fx.repo);
    fx.assert_fsck(&remote);
}

#[test]
fn duration_retention_without_a_remote_prunes_freely() {
    let fx = Fx::new(false);
    let mut printed = Vec::new();
    for i in 0..30 {
        let run = fx.snapshot(&["--keep", "10min"]).success().assert_quiet();
        assert_eq!(fx.now.get(), T0 + 60 * i);
        printed.insert(0, printed_commit(&run));
    }
    assert_eq!(fx.keep_setting().as_deref(), Some("10min"), "sqlgit.keep");
    let now = fx.now.get();
    // Each run goes by the earlier of its clock and the previous run's (now-60 s): snapshots at
    // now-660 ... now, the one current when that window began included.
    let times = fx.times(&fx.repo);
    assert_eq!(times.len(), 12, "snapshot times kept: {times:?}");
    assert!(
        times.iter().all(|&t| t + 660 >= now),
        "a snapshot older than the window survived: {times:?} (now {now})"
    );
    assert_eq!(*times.last().unwrap(), now - 660);
    let local = fx.ids(&fx.repo);
    assert_eq!(local, printed[..12], "the newest 12 snapshots");
    fx.assert_shallow_is(&local[11]);
    fx.assert_fsck(&fx.repo);

    // `sqlgit prune` with a shorter duration, and then much later: the newest always stays.
    // The window begins between two snapshots (now-150 s): the one current then (now-180 s)
    // stays, so every moment of the window can still be restored.
    let run = fx.prune(&["--keep", "150s"]).success().assert_quiet();
    assert!(
        run.stdout_str().contains("pruned 8 old snapshots"),
        "{}",
        run.stdout_str()
    );
    assert_eq!(fx.keep_setting().as_deref(), Some("150s"), "sqlgit.keep");
    assert_eq!(fx.ids(&fx.repo), printed[..4]);
    // A day later by this clock only: the last run's time is trusted, loudly.
    fx.now.set(now + 86_400);
    let run = fx.prune(&[]).success();
    assert!(
        run.stderr_str().contains("ahead of the last run"),
        "{}",
        run.stderr_str()
    );
    assert_eq!(
        fx.ids(&fx.repo),
        printed[..4],
        "one clock reading ages nothing out"
    );
    // A run at that time agrees: the one after it goes by the new clock, and keeps the
    // snapshot current when its window began (the one from a day before).
    let newest = printed_commit(&fx.snapshot(&[]).success());
    fx.prune(&[]).success().assert_quiet();
    assert_eq!(fx.ids(&fx.repo), [newest, printed[0].clone()]);
    fx.assert_shallow_is(&printed[0]);
    fx.assert_fsck(&fx.repo);
    let sql = fx.cat(None, &fx.repo).success().assert_quiet();
    fx.assert_restores_to(sql.stdout(), "newest.db", &fx.db);
}

#[test]
fn a_killed_prune_leaves_a_valid_repository() {
    let fx = Fx::new(false);
    for _ in 0..30 {
        fx.snapshot(&[]).success().assert_quiet();
    }
    // Every snapshot's SQL before any pruning; the newest, a middle and the oldest restore.
    let all = fx.logged();
    assert_eq!(all.len(), 30);
    let expected: HashMap<String, Vec<u8>> = all
        .iter()
        .map(|id| {
            let out = fx.cat(Some(id), &fx.repo).success().assert_quiet();
            (id.clone(), out.output.stdout)
        })
        .collect();
    fx.assert_restores_to(&expected[&all[0]], "newest.db", &fx.db);
    for (i, id) in [(15, &all[15]), (29, &all[29])] {
        fx.env.restore(&expected[id], &format!("before-{i}.db"));
    }
    let pristine = fx.env.path("pristine.sqlgit");
    copy_dir(&fx.repo, &pristine);
    let size_before = dir_size(&fx.repo);

    let check = |what: &str| {
        fx.assert_fsck(&fx.repo);
        let logged = fx.logged();
        assert!(
            logged.len() >= 3 && logged[..] == all[..logged.len()],
            "{what}: sqlgit log must list a newest-first prefix of the snapshots, got {} of them",
            logged.len()
        );
        assert_eq!(
            fx.ids(&fx.repo),
            logged,
            "{what}: git rev-list vs sqlgit log"
        );
        for id in &logged {
            let out = fx.cat(Some(id), &fx.repo);
            if out.code() != Some(0) || out.stdout() != &expected[id][..] {
                out.fail(&format!(
                    "{what}: sqlgit cat {id} must give the snapshot's SQL"
                ));
            }
        }
        // The oldest listed one restores with sqlite3 too.
        let oldest = &expected[logged.last().unwrap()];
        let db = fx.env.path("check.db");
        let _ = std::fs::remove_file(&db);
        fx.env.restore(oldest, "check.db");
    };

    // Kills land within the time a whole prune takes here (timed on a copy first).
    std::fs::remove_dir_all(&fx.repo).unwrap();
    copy_dir(&pristine, &fx.repo);
    let started = std::time::Instant::now();
    fx.prune(&["--keep", "3"]).success();
    let mut span = (started.elapsed().as_millis() as u64).max(2);

    let mut rng = StdRng::seed_from_u64(0x9_2026_0005);
    let (mut killed, mut finished) = (0, 0);
    // Four rounds, and more (up to 12) until a kill lands: a prune that finished before its
    // kill also shortens the span (the first one was timed on a busier machine).
    for round in 0..12 {
        if round >= 4 && killed > 0 {
            break;
        }
        // Start from the unpruned repository, then kill twice in a row (the second kill hits
        // whatever state the first left).
        std::fs::remove_dir_all(&fx.repo).unwrap();
        copy_dir(&pristine, &fx.repo);
        for attempt in 0..2 {
            let delay = Duration::from_millis(rng.random_range(0..span));
            let mut cmd = fx
                .env
                .sqlgit_cmd(&["prune", "--repo", &fx.repo_arg(), "--keep", "3"]);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("start sqlgit prune");
            let (out_t, err_t) = drain(&mut child);
            std::thread::sleep(delay);
            let _ = child.kill(); // SIGKILL
            let status = child.wait().unwrap();
            let (out, err) = (out_t.join().unwrap(), err_t.join().unwrap());
            match status.code() {
                None => killed += 1,
                Some(0) => {
                    finished += 1;
                    span = span.min(delay.as_millis() as u64).max(2);
                }
                Some(c) => panic!(
                    "round {round}, attempt {attempt}: sqlgit prune exited {c} before the kill:\n{}{}",
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&err)
                ),
            }
            check(&format!(
                "round {round}, kill {attempt} after {delay:?} ({status})"
            ));
        }
    }
    eprintln!("{killed} prunes killed mid-run, {finished} finished before the kill");
    assert!(killed > 0, "no kill landed while sqlgit prune was running");

    let run = fx.prune(&["--keep", "3"]).success().assert_quiet();
    assert!(run.stdout_str().contains("3 kept locally") || run.stdout().is_empty());
    check("after the final prune");
    assert_eq!(fx.logged(), all[..3]);
    fx.assert_shallow_is(&all[2]);
    // A prune killed while rewriting packs can leave its temporary files behind (named so git
    // ignores them); the next prune or snapshot removes them.
    fx.snapshot(&[]).success().assert_quiet();
    assert_eq!(fx.count(&fx.repo), 3, "the remembered --keep 3");
    let stray: Vec<String> = std::fs::read_dir(fx.repo.join("objects/pack"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("pack-"))
        .collect();
    assert!(stray.is_empty(), "stray files in objects/pack: {stray:?}");
    fx.assert_fsck(&fx.repo);
    let size_after = dir_size(&fx.repo);
    assert!(
        size_after < size_before,
        "pruning 27 of 30 snapshots freed nothing ({size_before} -> {size_after} bytes)"
    );
}

#[test]
fn a_point_older_than_local_history_is_fetched_from_the_history_remote() {
    let fx = Fx::new(true);
    let url = fx.url();
    fx.snapshot(&["--keep", "10", "--history-remote", &url])
        .success();
    for _ in 1..3 {
        fx.snapshot(&[]).success().assert_quiet();
    }
    // Snapshot 3: remember its SQL, its id, its time and the database as it was.
    let third_id = fx.ids(&fx.repo)[0].clone();
    let third_time = fx.now.get();
    let third_sql = fx
        .cat(None, &fx.repo)
        .success()
        .assert_quiet()
        .output
        .stdout;
    let third_db = fx.env.path("third.db");
    std::fs::copy(&fx.db, &third_db).unwrap();
    for _ in 3..20 {
        fx.snapshot(&[]).success().assert_quiet();
    }
    assert_eq!(fx.count(&fx.repo), 10);
    let config_before = std::fs::read(fx.repo.join("config")).unwrap();
    let shallow_before = std::fs::read(fx.repo.join("shallow")).unwrap();

    // Half a minute after the third snapshot: the third is the latest at or before that. It is
    // fetched from the history remote (one line on stderr naming it), into the cache.
    let when = rfc3339(third_time + 30);
    let run = fx.cat(Some(&when), &fx.repo).success();
    assert_one_line(&run, &format!("from history remote {url}"));
    assert!(
        run.stdout() == &third_sql[..],
        "the SQL for {when} differs from what sqlgit cat gave at that time"
    );
    fx.assert_restores_to(run.stdout(), "third-restored.db", &third_db);
    // `sqlgit restore` of that point works too, from the cache, without fetching again.
    let to = fx.env.path("old.db");
    fx.sqlgit(&[
        "restore",
        &when,
        "--repo",
        &fx.repo_arg(),
        "--to",
        &to.display().to_string(),
    ])
    .success();
    compare_databases(&third_db, &to);
    // So does a pruned commit id.
    let by_id = fx.cat(Some(&third_id), &fx.repo).success().assert_quiet();
    assert!(by_id.stdout() == &third_sql[..], "sqlgit cat {third_id}");
    // And `sqlgit verify` of it.
    fx.sqlgit(&["verify", &third_id, "--repo", &fx.repo_arg()])
        .success();
    // `diff --live` reads local snapshots only, and says so.
    let live = fx.sqlgit(&[
        "diff",
        &third_id,
        "--live",
        &fx.db.display().to_string(),
        "--repo",
        &fx.repo_arg(),
    ]);
    assert_eq!(live.code(), Some(2), "{}", live.stderr_str());
    assert!(
        live.stderr_str().contains("reads local ones only")
            && !live.stderr_str().contains("fetches them"),
        "{}",
        live.stderr_str()
    );
    assert_eq!(
        std::fs::read(fx.repo.join("config")).unwrap(),
        config_before,
        "asking for an old point changed the repository config"
    );
    assert_eq!(
        std::fs::read(fx.repo.join("shallow")).unwrap(),
        shallow_before,
        "asking for an old point moved the shallow graft"
    );
    assert_eq!(fx.count(&fx.repo), 10);
    fx.assert_fsck(&fx.repo);

    // Without sqlgit, a plain clone of the history remote still has it (the emergency path).
    let clone = fx.env.path("history-clone.git");
    let mut cmd = fx.git_cmd(&["clone", "--quiet", "--bare", &url]);
    cmd.arg(&clone);
    run_limited(&fx.env, cmd, RUN_LIMIT).success();
    let old = fx.cat(Some(&when), &clone).success().assert_quiet();
    assert!(
        old.stdout() == &third_sql[..],
        "the clone's SQL for {when} differs from what sqlgit cat gave at that time"
    );
}

#[test]
fn bad_keep_values_are_refused_and_change_nothing() {
    let fx = Fx::new(false);
    for _ in 0..5 {
        fx.snapshot(&["--keep", "3"]).success().assert_quiet();
    }
    assert_eq!(fx.count(&fx.repo), 3);
    let before = tree_state(&fx.repo);
    let repo = fx.repo_arg();

    for bad in ["banana", "-3", "1.5", "10 parsecs"] {
        let flag = format!("--keep={bad}");
        let run = fx.sqlgit(&["prune", "--repo", &repo, &flag]);
        if !matches!(run.code(), Some(1 | 2)) {
            run.fail("expected exit 1 or 2");
        }
        assert_one_line(&run, "");
        assert!(run.stdout().is_empty(), "{}", run.stdout_str());
        assert!(
            tree_state(&fx.repo) == before,
            "sqlgit prune {flag} changed the repository"
        );

        fx.change();
        let db = fx.db.display().to_string();
        let run = fx.sqlgit(&["snapshot", &db, "--repo", &repo, &flag]);
        if !matches!(run.code(), Some(1 | 2)) {
            run.fail("expected exit 1 or 2");
        }
        assert_one_line(&run, "");
        assert!(
            tree_state(&fx.repo) == before,
            "sqlgit snapshot {flag} changed the repository"
        );
    }

    // No retention given or configured: a usage error.
    let other = Fx::new(false);
    other.snapshot(&[]).success();
    other.snapshot(&[]).success();
    let before_other = tree_state(&other.repo);
    let run = other.prune(&[]).code_is(2);
    assert_one_line(&run, "--keep");
    assert!(
        tree_state(&other.repo) == before_other,
        "a refused prune changed the repository"
    );
    assert_eq!(other.count(&other.repo), 2);

    // A repository that does not exist.
    let missing = fx.env.path("missing.sqlgit").display().to_string();
    let run = fx
        .sqlgit(&["prune", "--repo", &missing, "--keep", "3"])
        .code_is(1);
    assert_one_line(&run, "does not exist");
    assert!(!fx.env.path("missing.sqlgit").exists());
}

/// `--keep 0` asks for a history of zero snapshots: refuse it (exit 1 or 2, one line) and leave the
/// repository — including its remembered `sqlgit.keep` — exactly as it was.
#[test]
fn prune_keep_0_is_refused_and_changes_nothing() {
    let fx = Fx::new(false);
    for _ in 0..5 {
        fx.snapshot(&["--keep", "3"]).success().assert_quiet();
    }
    let before = tree_state(&fx.repo);
    let run = fx.prune(&["--keep", "0"]);
    if !matches!(run.code(), Some(1 | 2)) {
        run.fail("expected exit 1 or 2");
    }
    assert_one_line(&run, "");
    assert_eq!(
        fx.keep_setting().as_deref(),
        Some("3"),
        "sqlgit.keep after prune --keep 0"
    );
    assert!(
        tree_state(&fx.repo) == before,
        "sqlgit prune --keep 0 changed the repository"
    );
}

/// Local history was cut without a history remote (pruning is free then); a history remote added
/// later cannot receive the full history any more. The push must fail (exit 1, one line) and
/// leave both sides intact, not hand the remote a history with missing parents.
fn history_remote_added_after_free_pruning(fx: &Fx, remote: &Path, url: &str) {
    for _ in 0..6 {
        fx.snapshot(&["--keep", "3"]).success().assert_quiet();
    }
    let local = fx.ids(&fx.repo);
    assert_eq!(local.len(), 3);
    let run = fx.sqlgit(&["push", "--repo", &fx.repo_arg(), "--history-remote", url]);
    let remote_ok = {
        let mut cmd = fx.git_cmd(&["-C"]);
        cmd.arg(remote)
            .args(["fsck", "--strict", "--no-dangling", "--no-progress"]);
        let fsck = run_limited(&fx.env, cmd, RUN_LIMIT);
        let text = format!("{}{}", fsck.stdout_str(), fsck.stderr_str());
        // An empty remote: "notice: HEAD points to an unborn branch".
        fsck.code() == Some(0) && text.lines().all(|l| l.starts_with("notice: "))
    };
    if run.code() == Some(0) || !remote_ok {
        run.fail(&format!(
            "pushing a pruned history must fail and leave the remote intact \
             (remote fsck clean: {remote_ok})"
        ));
    }
    assert_one_line(&run, "history remote");
    assert_eq!(fx.ids(&fx.repo), local, "local history changed");
    fx.assert_fsck(&fx.repo);
    // A later snapshot fails the same way and still prunes nothing unconfirmed.
    let run = fx.snapshot(&[]).code_is(1);
    assert_one_line(&run, "history remote");
    assert_eq!(
        fx.ids(&fx.repo)[1..],
        local[..],
        "nothing unconfirmed is pruned"
    );
}

#[test]
fn a_history_remote_on_git_daemon_added_after_free_pruning_is_refused() {
    let fx = Fx::new(true);
    let (remote, url) = (fx.remote_path(), fx.url());
    history_remote_added_after_free_pruning(&fx, &remote, &url);
}

#[test]
fn a_history_remote_on_a_local_path_added_after_free_pruning_is_refused() {
    let fx = Fx::new(false);
    let remote = fx.env.path("hist.git");
    let mut cmd = fx.git_cmd(&["init", "--quiet", "--bare", "-b", "main"]);
    cmd.arg(&remote);
    run_limited(&fx.env, cmd, RUN_LIMIT).success();
    history_remote_added_after_free_pruning(&fx, &remote, &remote.display().to_string());
}

#[test]
fn prune_asks_a_recreated_history_remote_before_trusting_what_it_once_confirmed() {
    let fx = Fx::new(false);
    let remote = fx.env.path("hist.git");
    let init_remote = || {
        let _ = std::fs::remove_dir_all(&remote);
        let mut cmd = fx.git_cmd(&["init", "--quiet", "--bare", "-b", "main"]);
        cmd.arg(&remote);
        run_limited(&fx.env, cmd, RUN_LIMIT).success();
    };
    init_remote();
    let url = remote.display().to_string();
    for _ in 0..5 {
        fx.snapshot(&["--history-remote", &url])
            .success()
            .assert_quiet();
    }
    let all = fx.ids(&fx.repo);
    assert_eq!(all.len(), 5);
    // The remote is recreated empty: it no longer has what it confirmed.
    init_remote();
    fx.prune(&["--keep", "1"]).success();
    assert_eq!(
        fx.ids(&fx.repo),
        all,
        "pruned what the remote no longer has"
    );
    // The remote is gone: nothing can be confirmed, so nothing is pruned, loudly.
    std::fs::remove_dir_all(&remote).unwrap();
    let run = fx.prune(&["--keep", "1"]).code_is(1);
    assert_one_line(&run, "nothing pruned");
    assert_eq!(fx.ids(&fx.repo), all);
    // Once the remote has them again, pruning goes ahead.
    init_remote();
    let repo = fx.repo_arg();
    fx.sqlgit(&["push", "--repo", repo.as_str()]).success();
    fx.prune(&["--keep", "1"]).success();
    assert_eq!(fx.ids(&fx.repo), all[..1]);
}

/// A user runs git's own maintenance inside the repository (`git gc`, which writes a cruft pack
/// with an `.mtimes` file, and a multi-pack-index over the packs), then the cron runs go on and
/// prune the packs those files describe: `git fsck` stays clean (a multi-pack-index naming
/// deleted packs made it fail), nothing is left beside a deleted pack, and the snapshots stay
/// exact.
#[test]
fn pruning_after_git_maintenance_in_the_repository_leaves_plain_git_clean() {
    let fx = Fx::new(false);
    for _ in 0..5 {
        fx.snapshot(&["--keep", "2"]).success().assert_quiet();
    }
    fx.git(&fx.repo, &["gc", "--quiet"]);
    fx.git(&fx.repo, &["multi-pack-index", "write", "--bitmap"]);
    fx.assert_fsck(&fx.repo);
    for _ in 0..5 {
        fx.snapshot(&[]).success().assert_quiet();
    }
    fx.assert_fsck(&fx.repo);
    let pack_dir = fx.repo.join("objects/pack");
    for entry in std::fs::read_dir(&pack_dir).unwrap().flatten() {
        let path = entry.path();
        if let Some(ext) = path.extension().and_then(|e| e.to_str())
            && ["pack", "rev", "bitmap", "mtimes", "keep"].contains(&ext)
        {
            assert!(
                path.with_extension("idx").exists(),
                "{} is left without its pack index",
                path.display()
            );
        }
    }
    let counted = fx.git(&fx.repo, &["count-objects", "-v"]);
    assert!(counted.contains("garbage: 0"), "{counted}");
    let sql = fx.cat(None, &fx.repo).success().assert_quiet();
    fx.assert_restores_to(sql.stdout(), "newest.db", &fx.db);
    let repo = fx.repo_arg();
    fx.sqlgit(&["verify", "--repo", &repo, "--quiet"])
        .success()
        .assert_quiet();
}

/// Each run writes a pack; without pruning they would pile up (thousands within weeks, every
/// lookup searching each). More than 16 are merged geometrically: the count stays small, every
/// snapshot still restores, and plain git is happy.
#[test]
fn packs_are_merged_as_runs_add_them_without_any_pruning() {
    let fx = Fx::new(false);
    let mut dumps: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..40 {
        let run = fx.snapshot(&[]).success();
        let id = printed_commit(&run);
        dumps.push((id, fx.cat(None, &fx.repo).success().stdout().to_vec()));
        let packs = std::fs::read_dir(fx.repo.join("objects/pack"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "pack")
            })
            .count();
        assert!(packs <= 17, "run {i}: {packs} packs");
    }
    fx.assert_fsck(&fx.repo);
    for (id, sql) in &dumps {
        let run = fx.cat(Some(id), &fx.repo).success();
        assert!(
            run.stdout() == &sql[..],
            "snapshot {id} no longer restores the same"
        );
    }
}

/// When packs merge, each old version of a chunk or folder that a newer one replaced is stored
/// as a delta of it, so the repository grows by what changed rather than by the files holding
/// it. A hot row changed every run, a row flipping between two values (an old version comes
/// back: no delta may lead in a circle) and a few other rows, over two merges: every snapshot
/// still reads the same through sqlgit and plain git, the newest snapshot's objects stay whole (restores read
/// them fast), and pruning afterwards keeps all of it so.
#[test]
fn merged_packs_store_old_versions_as_deltas_of_new_ones() {
    let fx = Fx::new(false);
    let mut dumps: Vec<(String, Vec<u8>)> = Vec::new();
    let mut merges = 0;
    for i in 0..40 {
        let flip = if i % 2 == 0 { "even" } else { "odd" };
        fx.env
            .sqlite3(
                &fx.db,
                format!(
                    "UPDATE t SET n = n + 1 WHERE id = 1; UPDATE t SET v = '{flip}' WHERE id = 2500;"
                ),
            )
            .success();
        let packs_before = pack_deltas(&fx).1;
        let id = printed_commit(&fx.snapshot(&[]).success());
        dumps.push((id, fx.cat(None, &fx.repo).success().stdout().to_vec()));
        let (deltas, packs) = pack_deltas(&fx);
        if packs < packs_before {
            // Packs were merged by this run: what it wrote stays whole.
            merges += 1;
            assert!(
                deltas.len() >= 30,
                "only {} objects are deltas",
                deltas.len()
            );
            let newest = fx.git(&fx.repo, &["ls-tree", "-r", "-t", "--object-only", "main"]);
            for id in newest.lines() {
                assert!(
                    !deltas.contains(id),
                    "{id} of the newest snapshot is a delta"
                );
            }
        }
    }
    // The second merge takes in the first one's pack: old versions become deltas of versions
    // stored as deltas already, and deltas of objects that become deltas are rewritten.
    assert_eq!(merges, 2, "40 runs merge packs twice");
    fx.assert_fsck(&fx.repo);
    assert_snapshots_read(&fx, &dumps);
    fx.prune(&["--keep", "5"]).success();
    fx.assert_fsck(&fx.repo);
    assert_snapshots_read(&fx, &dumps[dumps.len() - 5..]);
}

/// Each snapshot (commit id, its SQL) still reads the same through `sqlgit cat` and through
/// `git archive | tar -xO`.
#[track_caller]
fn assert_snapshots_read(fx: &Fx, dumps: &[(String, Vec<u8>)]) {
    for (id, sql) in dumps {
        let run = fx.cat(Some(id), &fx.repo).success();
        assert!(
            run.stdout() == &sql[..],
            "snapshot {id} no longer reads the same"
        );
        let mut archive = fx.env.command("sh");
        archive.arg("-c").arg(format!(
            "git -C '{}' archive {id} | tar -xO",
            fx.repo.display()
        ));
        let plain = fx.env.run(archive, b"").success();
        assert!(plain.stdout() == &sql[..], "git archive {id} differs");
    }
}

/// The objects stored as deltas in the repository's packs (`git verify-pack -v`), and how many
/// packs there are.
fn pack_deltas(fx: &Fx) -> (HashSet<String>, usize) {
    let mut found = HashSet::new();
    let mut packs = 0;
    let Ok(dir) = std::fs::read_dir(fx.repo.join("objects/pack")) else {
        return (found, 0); // before the first run
    };
    for entry in dir.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "idx") {
            packs += 1;
            let out = fx.git(&fx.repo, &["verify-pack", "-v", path.to_str().unwrap()]);
            for line in out.lines() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.len() == 7 && fields[0].len() == 40 {
                    found.insert(fields[0].to_string());
                }
            }
        }
    }
    (found, packs)
}

/// Each run's commit is a loose object: a repository that is never pruned would gather a file
/// per snapshot forever (and the scrub, which reads packs, would never check them). Past 256
/// loose objects a run packs them and deletes the files; a tag someone made stays loose, every
/// object is still there, and plain git is happy.
#[test]
fn loose_objects_are_packed_once_there_are_many() {
    let fx = Fx::new(false);
    let first = printed_commit(&fx.snapshot(&[]).success());
    let loose = |repo: &Path| -> Vec<String> {
        let mut found = Vec::new();
        for dir in std::fs::read_dir(repo.join("objects")).unwrap().flatten() {
            let name = dir.file_name().to_string_lossy().into_owned();
            if name.len() == 2 {
                for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
                    found.push(format!("{name}{}", f.file_name().to_string_lossy()));
                }
            }
        }
        found
    };
    assert_eq!(loose(&fx.repo).len(), 1, "the first run's commit is loose");
    // 300 loose blobs, as another tool (or many runs' commits) would leave them, and a tag.
    let blobs = write_loose_blobs(&fx, 300);
    let blobs: Vec<&str> = blobs.lines().collect();
    fx.env
        .git_in(&fx.repo, &["tag", "-a", "-m", "mine", "mine", &first]);
    let tag = fx.env.git_in(&fx.repo, &["rev-parse", "mine"]);
    assert_eq!(loose(&fx.repo).len(), 302);

    fx.snapshot(&[]).success();
    let left = loose(&fx.repo);
    assert_eq!(
        left,
        vec![tag.trim().to_string()],
        "only the tag stays loose"
    );
    fx.assert_fsck(&fx.repo);
    let mut check = fx.env.command("git");
    check
        .arg("--git-dir")
        .arg(&fx.repo)
        .args(["cat-file", "--batch-check"]);
    let wanted = format!("{first}\n{}\n", blobs.join("\n"));
    let out = fx.env.run(check, wanted.as_bytes()).success().stdout_str();
    assert!(!out.contains("missing"), "{out}");
    assert_eq!(out.lines().count(), 301);
    let log = fx.env.git_in(&fx.repo, &["log", "--format=%H", "main"]);
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(log.contains(&first));
}

/// Write `n` small blobs into the repository as loose objects; their ids, a line each.
fn write_loose_blobs(fx: &Fx, n: usize) -> String {
    let mut hash = fx.env.command("git");
    hash.arg("--git-dir")
        .arg(&fx.repo)
        .args(["hash-object", "-w", "--stdin-paths"]);
    let paths: String = (0..n)
        .map(|i| {
            let p = fx
                .env
                .write(format!("blob{i}"), format!("blob number {i}\n"));
            format!("{}\n", p.display())
        })
        .collect();
    fx.env.run(hash, paths.as_bytes()).success().stdout_str()
}

/// A loose object that cannot be read stops the packing (said as a warning; every loose file is
/// kept), not the snapshot.
#[test]
fn an_unreadable_loose_object_is_a_warning_and_nothing_is_deleted() {
    let fx = Fx::new(false);
    fx.snapshot(&[]).success();
    let blobs = write_loose_blobs(&fx, 300);
    let damaged = blobs.lines().nth(7).unwrap().to_string();
    let file = fx
        .repo
        .join("objects")
        .join(&damaged[..2])
        .join(&damaged[2..]);
    let mut perms = std::fs::metadata(&file).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&file, perms).unwrap();
    std::fs::write(&file, b"not zlib at all").unwrap();

    let run = fx.snapshot(&[]).success();
    let err = run.stderr_str();
    assert!(
        err.contains("pack loose objects") && err.contains(&damaged),
        "{err}"
    );
    for id in blobs.lines() {
        let path = fx.repo.join("objects").join(&id[..2]).join(&id[2..]);
        assert!(path.exists(), "loose object {id} was deleted");
    }
}

/// A run killed while it merges packs (cron's timeout, the OOM killer: SIGKILL, no cleanup) at
/// each point between two writes: while copying, once the new pack is written, after an old
/// pack is removed, and between an old pack's index and its pack. Each next run commits and
/// merges again; the repository stays fsck-clean, every snapshot reads as it did through
/// sqlgit and plain git, and what the kills left (temporary files, a pack without its index)
/// is gone after the last run.
#[test]
fn runs_killed_while_merging_packs_are_mended_by_the_next() {
    let fx = Fx::new(false);
    let points = [
        "merge-copying",
        "merge-written",
        "merge-removing",
        "pack-unindexed",
    ];
    let mut dumps: Vec<(String, Vec<u8>)> = Vec::new();
    let mut point = 0;
    let newest = |fx: &Fx| {
        let id = fx.git(&fx.repo, &["rev-parse", "refs/heads/main"]);
        let sql = fx.cat(Some(&id), &fx.repo).success().stdout().to_vec();
        (id, sql)
    };
    for _ in 0..60 {
        if point == points.len() {
            break;
        }
        fx.change();
        fx.now.set(fx.now.get() + 60);
        let (db, repo) = (fx.db.display().to_string(), fx.repo_arg());
        let mut cmd = fx
            .env
            .sqlgit_cmd(&["snapshot", db.as_str(), "--repo", repo.as_str()]);
        cmd.env("SQLGIT_NOW", fx.now.get().to_string())
            .env("SQLGIT_FAILPOINT", points[point]);
        let run = run_limited(&fx.env, cmd, RUN_LIMIT);
        match run.code() {
            Some(0) => {}
            // Killed: merging comes after the commit.
            None => point += 1,
            Some(_) => run.fail("a snapshot failed"),
        }
        dumps.push(newest(&fx));
    }
    assert_eq!(point, points.len(), "not every kill point was reached");
    let pack_dir = fx.repo.join("objects/pack");
    let unindexed = || -> Vec<PathBuf> {
        std::fs::read_dir(&pack_dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "pack") && !p.with_extension("idx").exists()
            })
            .collect()
    };
    let left = unindexed();
    assert_eq!(
        left.len(),
        1,
        "the last kill leaves one pack without its index"
    );
    // Such a pack is removed once it is an hour old (a git command may be writing one).
    let mut touch = fx.env.command("touch");
    touch.args(["-d", "2 hours ago"]).arg(&left[0]);
    fx.env.run(touch, b"").success();
    fx.snapshot(&[]).success();
    dumps.push(newest(&fx));
    assert!(unindexed().is_empty(), "a pack without its index was left");
    let temporary: Vec<_> = std::fs::read_dir(&pack_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("tmp_"))
        .collect();
    assert!(temporary.is_empty(), "temporary files left: {temporary:?}");
    fx.assert_fsck(&fx.repo);
    assert_snapshots_read(&fx, &dumps);
}
