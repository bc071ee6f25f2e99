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
//! By file (this one holds the fixture `Fx` and the helpers they share): `keep`: retention by
//! count and by duration, with and without a history remote, and refused `--keep` values;
//! `kills`: a killed prune; `history_remote`: points older than local history, remotes added after
//! free pruning or recreated; `packs`: pack merging, deltas, loose objects, git's own maintenance
//! and runs killed while merging; `clock`: pruning by age and WHEN times with a clock that was
//! wrong for a run; `refs`: tags, branches and sqlgit's own refs on snapshots that pruning cuts
//! off.
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
mod history_remote;
mod keep;
mod kills;
mod packs;
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
/// run records are left out: `sqlgit-state.json` (a failed snapshot records its failure there)
/// and `sqlgit.lock` (each run that takes the lock writes its pid and time there).
fn tree_state(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            } else if !["sqlgit-state.json", "sqlgit.lock"]
                .contains(&&*entry.file_name().to_string_lossy())
            {
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
