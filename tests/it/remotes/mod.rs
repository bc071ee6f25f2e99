//! Issue 4: the two remotes, through the real binary against real loopback servers.
//!
//! * **history** receives every snapshot commit (fast-forward), **latest** one parentless commit
//!   with the head's tree (force-pushed); both remembered in the repository's config.
//! * Each remote is pushed independently; a failure is one stderr line
//!   `sqlgit: push to <role> remote <redacted url>: <cause>`, exit 1, the local commit kept, and
//!   the remote-tracking ref (`refs/remotes/<role>/main`) moves only when the remote accepted.
//! * Pushes send only what the remote lacks; credentials never reach any output.
//!
//! Servers (`git daemon`, smart HTTP with Basic auth, lighttpd, dulwich, sshd) come from
//! `servers/`; the real-server cases live in `ssh.rs` (`ssh_keys.rs`: which key ssh is given) and `http.rs`, recovery in `recovery.rs`
//! (and `older_copy.rs`). The rest, by concern: `pushes.rs` (what each remote receives),
//! `urls.rs` (remembered URLs, refused remotes), `auth.rs` (HTTP Basic auth),
//! `bad_remotes.rs` (one failing remote, ssh failures), `transports.rs` (git and libgit2, hung
//! servers, SIGTERM), `one_server.rs` (one server spelled two ways: alias, address,
//! `localhost`). This file holds the fixture `Fx` and the helpers they share.
//! Every sqlgit run has a time limit, so a push that hangs or retries forever fails the test
//! instead of wedging CI.

mod auth;
mod bad_remotes;
mod emptied;
mod heal;
mod http;
mod older_copy;
mod one_server;
mod pushes;
mod recovery;
mod ssh;
mod ssh_keys;
mod transports;
mod urls;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::env::{Run, TestEnv};
use crate::servers::{GitDaemon, HttpGit, free_port};

/// Limit for one sqlgit run (a healthy one takes well under a second here).
const RUN_LIMIT: Duration = Duration::from_secs(30);
/// Limit for a push that must fail (wrong password, refused connection): no endless retry.
const FAIL_LIMIT: Duration = Duration::from_secs(15);
/// `SQLGIT_NOW` of the first snapshot; each run advances it by a minute.
const T0: u64 = 1_700_000_000;

/// Run `cmd` (stdin empty) and collect its output; kill it and fail after `limit`.
fn run_with_limit(env: &TestEnv, cmd: Command, limit: Duration) -> (Run, Duration) {
    env.run_limited(cmd, b"", limit)
}

/// One test's world: a scratch dir, a git daemon, a database and its sqlgit repository.
/// (`daemon` is declared first so it is killed before the directory goes away.)
struct Fx {
    daemon: GitDaemon,
    env: TestEnv,
    db: PathBuf,
    repo: PathBuf,
    now: Cell<u64>,
    rows: Cell<u64>,
}

impl Fx {
    fn new() -> Fx {
        let env = TestEnv::new();
        let daemon = GitDaemon::start_in(env.path("srv"));
        let db = env.db_from_script(
            "app.db",
            b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);\n\
              INSERT INTO t(v) VALUES ('row 1');\n",
        );
        let repo = env.path("app.sqlgit");
        Fx {
            daemon,
            env,
            db,
            repo,
            now: Cell::new(T0),
            rows: Cell::new(1),
        }
    }

    fn repo_arg(&self) -> String {
        self.repo.display().to_string()
    }

    /// Add a row, so the next snapshot has something new.
    fn change(&self) {
        let n = self.rows.get() + 1;
        self.rows.set(n);
        self.env
            .sqlite3(&self.db, format!("INSERT INTO t(v) VALUES ('row {n}');"))
            .success()
            .assert_quiet();
    }

    /// `sqlgit ARGS` with `SQLGIT_NOW` pinned (one minute later each run) and extra variables.
    fn sqlgit_with(
        &self,
        args: &[&str],
        vars: &[(&str, &str)],
        limit: Duration,
    ) -> (Run, Duration) {
        let mut cmd = self.env.sqlgit_cmd(args);
        cmd.env("SQLGIT_NOW", self.now.get().to_string());
        self.now.set(self.now.get() + 60);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        run_with_limit(&self.env, cmd, limit)
    }

    fn sqlgit(&self, args: &[&str]) -> Run {
        self.sqlgit_with(args, &[], RUN_LIMIT).0
    }

    /// `sqlgit snapshot app.db --repo app.sqlgit EXTRA...`.
    fn snapshot(&self, extra: &[&str]) -> Run {
        let db = self.db.display().to_string();
        let repo = self.repo_arg();
        let mut args = vec!["snapshot", db.as_str(), "--repo", repo.as_str()];
        args.extend_from_slice(extra);
        self.sqlgit(&args)
    }

    /// `sqlgit push --repo app.sqlgit EXTRA...`.
    fn push(&self, extra: &[&str]) -> Run {
        let repo = self.repo_arg();
        let mut args = vec!["push", "--repo", repo.as_str()];
        args.extend_from_slice(extra);
        self.sqlgit(&args)
    }

    /// `git ARGS` in `dir` (hermetic); panics unless it exits 0; trimmed stdout.
    #[track_caller]
    fn git(&self, dir: &Path, args: &[&str]) -> String {
        let mut cmd = self.env.command("git");
        cmd.arg("-C").arg(dir).args(args);
        let run = self.env.run(cmd, b"").success();
        run.stdout_str().trim().to_string()
    }

    /// `git rev-parse --verify -q REV` in `dir`, None when it does not resolve.
    /// A history and a latest remote, empty, on the daemon: their folders and URLs.
    fn both_remotes(&self) -> (PathBuf, PathBuf, String, String) {
        let history = self.daemon.create_bare("history");
        let latest = self.daemon.create_bare("latest");
        let (h_url, l_url) = (self.daemon.url("history"), self.daemon.url("latest"));
        (history, latest, h_url, l_url)
    }

    fn rev(&self, dir: &Path, rev: &str) -> Option<String> {
        let mut cmd = self.env.command("git");
        cmd.arg("-C")
            .arg(dir)
            .args(["rev-parse", "--verify", "-q", &format!("{rev}^{{commit}}")]);
        let run = self.env.run(cmd, b"");
        run.output
            .status
            .success()
            .then(|| run.stdout_str().trim().to_string())
    }

    /// The local head (`main` of the sqlgit repository).
    #[track_caller]
    fn head(&self) -> String {
        self.rev(&self.repo, "refs/heads/main")
            .expect("the sqlgit repository has a main branch")
    }

    /// `sqlgit log --repo` must list `id` (the commit is kept locally).
    #[track_caller]
    fn assert_logged(&self, id: &str) {
        let repo = self.repo_arg();
        let log = self
            .sqlgit(&["log", "--json", "--repo", repo.as_str()])
            .success();
        assert!(
            log.stdout_str().contains(id),
            "sqlgit log does not list {id}:\n{}",
            log.stdout_str()
        );
    }

    /// The history remote at `remote` has exactly the local `main` with `count` commits, and the
    /// local tracking ref records it.
    #[track_caller]
    fn assert_history(&self, remote: &Path, count: usize) {
        let head = self.head();
        assert_eq!(
            self.rev(remote, "refs/heads/main").as_deref(),
            Some(head.as_str()),
            "the history remote's main must be the local head"
        );
        assert_eq!(
            self.git(remote, &["rev-list", "--count", "refs/heads/main"]),
            count.to_string(),
            "commits on the history remote"
        );
        assert_eq!(
            self.rev(&self.repo, "refs/remotes/history/main").as_deref(),
            Some(head.as_str()),
            "refs/remotes/history/main must record what the history remote accepted"
        );
    }

    /// The latest remote at `remote` holds one parentless commit with the local head's tree, and
    /// the local tracking ref records it.
    #[track_caller]
    fn assert_latest(&self, remote: &Path) {
        let tip = self
            .rev(remote, "refs/heads/main")
            .expect("the latest remote has a main branch");
        assert_eq!(
            self.git(remote, &["rev-list", "--count", "refs/heads/main"]),
            "1",
            "the latest remote must hold exactly one commit"
        );
        let raw = self.git(remote, &["cat-file", "commit", &tip]);
        assert!(
            !raw.lines().any(|l| l.starts_with("parent ")),
            "the latest commit must have no parents:\n{raw}"
        );
        assert_eq!(
            self.git(remote, &["rev-parse", "refs/heads/main^{tree}"]),
            self.git(&self.repo, &["rev-parse", "refs/heads/main^{tree}"]),
            "the latest remote's tree must be the local head's tree"
        );
        assert_eq!(
            self.rev(&self.repo, "refs/remotes/latest/main").as_deref(),
            Some(tip.as_str()),
            "refs/remotes/latest/main must record what the latest remote accepted"
        );
    }

    /// `git fsck --strict` finds nothing wrong in `remote` (unreachable old latest commits are
    /// expected there, so dangling objects are not reported).
    #[track_caller]
    fn assert_fsck(&self, remote: &Path) {
        let mut cmd = self.env.command("git");
        cmd.arg("-C")
            .arg(remote)
            .args(["fsck", "--strict", "--no-dangling", "--no-progress"]);
        let run = self.env.run(cmd, b"").success();
        assert!(
            run.stdout().is_empty() && run.stderr().is_empty(),
            "git fsck --strict reported problems in {}:\n{}{}",
            remote.display(),
            run.stdout_str(),
            run.stderr_str()
        );
    }
}

/// The new commit a snapshot printed (first word of stdout).
#[track_caller]
fn printed_commit(run: &Run) -> String {
    let out = run.stdout_str();
    let id = out
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        run.fail("expected a new commit id as the first word of stdout");
    }
    id
}

/// A run that failed only because of pushes: exit 1, and stderr is exactly one line per failing
/// remote, `sqlgit: push to ROLE remote URL: CAUSE`, in the order given. Returns the causes.
#[track_caller]
fn assert_push_failures(run: &Run, failing: &[(&str, &str)]) -> Vec<String> {
    if run.code() != Some(1) {
        run.fail("expected exit code 1 (a push failed)");
    }
    let stderr = run.stderr_str();
    // Warnings (a URL password that was not saved) are not failures.
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("sqlgit: warning: "))
        .collect();
    if lines.len() != failing.len() {
        run.fail(&format!(
            "expected exactly {} stderr line(s), one per failing remote",
            failing.len()
        ));
    }
    let mut causes = Vec::new();
    for (line, (role, url)) in lines.iter().zip(failing) {
        let prefix = format!("sqlgit: push to {role} remote {url}: ");
        match line.strip_prefix(&prefix) {
            Some(cause) if !cause.trim().is_empty() => {
                eprintln!("{role} remote failed as expected: {cause}");
                causes.push(cause.to_string())
            }
            _ => run.fail(&format!("expected a line starting {prefix:?} with a cause")),
        }
    }
    causes
}

/// No output of `run` contains `secret`.
#[track_caller]
fn assert_no_secret(run: &Run, secret: &str) {
    if run.stdout_str().contains(secret) || run.stderr_str().contains(secret) {
        run.fail(&format!("a credential ({secret:?}) was printed"));
    }
}

const HTTP_USER: &str = "backup";
const HTTP_PASS: &str = "Pa55-s3cr3t-7f9q";

/// `snapshot` with extra flags and variables, `FAIL_LIMIT`.
fn snapshot_with(fx: &Fx, extra: &[&str], vars: &[(&str, &str)]) -> (Run, Duration) {
    let db = fx.db.display().to_string();
    let repo = fx.repo_arg();
    let mut args = vec!["snapshot", db.as_str(), "--repo", repo.as_str()];
    args.extend_from_slice(extra);
    fx.sqlgit_with(&args, vars, FAIL_LIMIT)
}
