//! Issue 8, the bad-input table: every case sqlgit refuses, one test per case, through the real
//! binary.
//!
//! Each refusal must look the same: a non-zero exit (never a panic's 101 or a signal), exactly one
//! line on stderr starting with `sqlgit: ` that names the file / repository / remote at fault, no
//! panic or backtrace text anywhere, and nothing changed: the repository's refs and file list (and,
//! where no flag asked to remember something, its config) are as before, the bad input itself is
//! untouched, and no target file (a restored database, a missing database, a journal) appears.
//!
//! Cases: database missing / a directory / a text file / random bytes (encrypted) / truncated /
//! with a corrupt page / locked past `--busy-timeout`; `--repo` a regular file / a foreign git
//! repository / missing; unknown revision; bad time; time before the first snapshot; restore over
//! an existing file; malformed remote URL; unreachable remote; remote that is not a repository;
//! auth failure (no secret in any output); unknown ssh host key (a tiny pure-Python SSH server that
//! does the key exchange, with a control run proving a known key passes); disk full (a 2 MiB tmpfs,
//! or a loop-mounted ext2 image).
//!
//! The cases, by file: `databases`, `repos`, `whens` (revisions, times, restore over a file),
//! `remotes`, `ssh_host_key`, `disk_full` and `disk_full_more`; this file holds how a refusal is run and checked, the
//! fixture, and `bad_remote` (shared by `remotes` and `ssh_host_key`).
//!
//! With `SQLGIT_BADINPUT_ROWS=DIR` every case writes its markdown table rows (command, exit code,
//! the exact message) to `DIR/NN-case.md`; `tests/it/BADINPUT.md` is those rows under a header.

mod databases;
mod disk_full;
mod disk_full_more;
mod remotes;
mod repos;
mod ssh_host_key;
mod whens;

pub(crate) use disk_full::SmallFs;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rusqlite::Connection;

use crate::env::{FileState, Run, TestEnv, describe, list_dir};
use crate::servers::{GitDaemon, HttpGit, free_port};

/// `SQLGIT_NOW` of the fixture's snapshot (2027-01-15T08:00:00Z); readers run an hour later.
const T: u64 = 1_800_000_000;
/// No refusal may take longer than this (a push that retries forever fails the test).
const LIMIT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------------------------
// Running and checking
// ------------------------------------------------------------------------------------------------

/// Run `cmd` with empty stdin, collecting its output; kill it after `limit` (reported as a hang).
pub(crate) fn run_limited(env: &TestEnv, cmd: Command, limit: Duration) -> (Run, bool) {
    let (run, _, hung) = env.run_bounded(cmd, b"", limit);
    (run, hung)
}

pub(crate) fn reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = pipe.read_to_end(&mut v);
        v
    })
}

/// `sqlgit ARGS` in the test dir at `SQLGIT_NOW=T+3600`, with extra variables; bounded in time.
fn sqlgit(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = env.sqlgit_cmd(args);
    cmd.env("SQLGIT_NOW", (T + 3600).to_string());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let (run, hung) = run_limited(env, cmd, LIMIT);
    if hung {
        run.fail(&format!("no answer within {LIMIT:?}: hung"));
    }
    run
}

/// The refusal contract. `Ok(message line)` or `Err(what is wrong, with the run shown)`.
fn refusal(run: &Run, names: &[&str]) -> Result<String, String> {
    let show = |what: &str| {
        format!(
            "{what}\n  command: {}\n  status:  {}\n  stdout:  {:?}\n  stderr:  {:?}",
            run.cmdline,
            run.output.status,
            crate::env::excerpt(run.stdout()),
            crate::env::excerpt(run.stderr())
        )
    };
    let err = run.stderr_str();
    let out = run.stdout_str();
    for bad in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        if err.contains(bad) || out.contains(bad) {
            return Err(show(&format!("panic text ({bad:?}) in the output")));
        }
    }
    match run.code() {
        None => return Err(show("killed by a signal instead of exiting")),
        Some(0) => return Err(show("exit code 0: the bad input was accepted")),
        Some(101) => return Err(show("exit code 101: a panic")),
        Some(_) => {}
    }
    if !err.starts_with("sqlgit: ") || !err.ends_with('\n') || err.lines().count() != 1 {
        return Err(show(
            "stderr must be exactly one line starting with `sqlgit: `",
        ));
    }
    let line = err.trim_end().to_string();
    for name in names {
        if !line.contains(name) {
            return Err(show(&format!("the message does not name {name:?}")));
        }
    }
    Ok(line)
}

/// Collects every broken expectation of one test, so one run shows them all.
#[derive(Default)]
pub(crate) struct Problems(Vec<String>);

impl Problems {
    pub(crate) fn push(&mut self, p: String) {
        self.0.push(p);
    }
    pub(crate) fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }
    #[track_caller]
    pub(crate) fn finish(self) {
        if !self.0.is_empty() {
            panic!(
                "\n{} problem(s):\n\n{}\n",
                self.0.len(),
                self.0.join("\n\n")
            );
        }
    }
}

/// Markdown rows for `BADINPUT.md` (only with `SQLGIT_BADINPUT_ROWS=DIR`).
struct Rows {
    order: u32,
    case: &'static str,
    lines: Vec<String>,
    replace: Vec<(String, String)>,
}

impl Rows {
    fn new(env: &TestEnv, order: u32, case: &'static str) -> Rows {
        let root = env.root().display().to_string();
        Rows {
            order,
            case,
            lines: Vec::new(),
            replace: vec![(root, "/home/me".into())],
        }
    }
    /// Show `from` as `to` in the table (ports, secrets' stand-ins).
    fn show_as(&mut self, from: impl Into<String>, to: impl Into<String>) {
        self.replace.insert(0, (from.into(), to.into()));
    }
    fn clean(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (from, to) in &self.replace {
            s = s.replace(from.as_str(), to);
        }
        s.replace('|', "\\|")
    }
    /// One row: the input, the command (`args` as given to sqlgit), the exit code, the message.
    fn add(&mut self, input: &str, args: &[&str], run: &Run) {
        let mut cmd = Command::new("sqlgit");
        cmd.args(args);
        let msg = match run.code() {
            Some(0) => "⚠ (exit 0: accepted, no error)".to_string(),
            _ => {
                let err = run.stderr_str();
                let first = err
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("(nothing on stderr)")
                    .to_string();
                if err.lines().count() > 1 {
                    format!("⚠ {} (+{} more lines)", first, err.lines().count() - 1)
                } else {
                    first
                }
            }
        };
        let code = run
            .code()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "signal".into());
        self.lines.push(format!(
            "| {} | `{}` | {} | `{}` |",
            self.clean(input),
            self.clean(&describe(&cmd)),
            code,
            self.clean(&msg)
        ));
    }
}

impl Drop for Rows {
    fn drop(&mut self) {
        let Some(dir) = std::env::var_os("SQLGIT_BADINPUT_ROWS") else {
            return;
        };
        let dir = PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        let slug: String = self
            .case
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = dir.join(format!("{:02}-{slug}.md", self.order));
        let mut text = self.lines.join("\n");
        text.push('\n');
        let _ = std::fs::write(path, text);
    }
}

/// `git -C DIR ARGS` with the hermetic environment; must succeed; stdout.
#[track_caller]
pub(crate) fn git_out(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    let mut cmd = env.command("git");
    cmd.arg("-C").arg(dir).args(args);
    env.run(cmd, b"").success().stdout_str()
}

/// `git fsck --strict` of `dir`: exit 0 and no complaint (dangling objects are not reported).
pub(crate) fn fsck_problems(env: &TestEnv, dir: &Path) -> Option<String> {
    let mut cmd = env.command("git");
    cmd.arg("-C")
        .arg(dir)
        .args(["fsck", "--strict", "--no-progress", "--no-dangling"]);
    let run = env.run(cmd, b"");
    if run.code() == Some(0) && run.stdout().is_empty() && run.stderr().is_empty() {
        None
    } else {
        Some(format!(
            "git fsck of {}: {}\n{}{}",
            dir.display(),
            run.output.status,
            run.stdout_str(),
            run.stderr_str()
        ))
    }
}

/// Every path under `root` (relative; directories end in `/`) with its mode and, for files, bytes.
pub(crate) fn tree_state(root: &Path) -> BTreeMap<String, (u32, Option<Vec<u8>>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue; // removed meanwhile
            };
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if meta.is_dir() {
                out.insert(format!("{rel}/"), (meta.permissions().mode(), None));
                stack.push(path);
            } else {
                out.insert(rel, (meta.permissions().mode(), std::fs::read(&path).ok()));
            }
        }
    }
    out
}

/// What "nothing changed" compares in a repository.
#[derive(Debug, PartialEq)]
struct RepoState {
    refs: String,
    files: Vec<String>,
    config: String,
}

fn repo_state(env: &TestEnv, repo: &Path) -> RepoState {
    RepoState {
        refs: git_out(
            env,
            repo,
            &["for-each-ref", "--format=%(objectname) %(refname)"],
        ),
        files: tree_state(repo).into_keys().collect(),
        config: std::fs::read_to_string(repo.join("config")).unwrap_or_default(),
    }
}

/// Compare two states; `config`: whether the config must be unchanged too.
fn state_problems(before: &RepoState, after: &RepoState, config: bool, what: &str) -> Vec<String> {
    let mut out = Vec::new();
    if before.refs != after.refs {
        out.push(format!(
            "{what}: the refs changed:\n--- before\n{}--- after\n{}",
            before.refs, after.refs
        ));
    }
    if before.files != after.files {
        let added: Vec<&String> = after
            .files
            .iter()
            .filter(|f| !before.files.contains(f))
            .collect();
        let removed: Vec<&String> = before
            .files
            .iter()
            .filter(|f| !after.files.contains(f))
            .collect();
        out.push(format!(
            "{what}: the repository's files changed: added {added:?}, removed {removed:?}"
        ));
    }
    if config && before.config != after.config {
        out.push(format!(
            "{what}: the config changed:\n--- before\n{}--- after\n{}",
            before.config, after.config
        ));
    }
    out
}

// ------------------------------------------------------------------------------------------------
// The fixture: a small database with one snapshot
// ------------------------------------------------------------------------------------------------

struct Fx {
    env: TestEnv,
    repo: PathBuf,
}

impl Fx {
    /// `app.db` (50 rows) snapshotted into `app.sqlgit` at `T`.
    fn new() -> Fx {
        let env = TestEnv::new();
        env.db_from_script(
            "app.db",
            b"CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n\
              WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 50)\n\
              INSERT INTO items SELECT i, printf('item %d', i) FROM c;\n",
        );
        let mut cmd = env.sqlgit_cmd(&["snapshot", "app.db", "--repo", "app.sqlgit"]);
        cmd.env("SQLGIT_NOW", T.to_string());
        env.run(cmd, b"").success().assert_quiet();
        let repo = env.path("app.sqlgit");
        Fx { env, repo }
    }

    fn state(&self) -> RepoState {
        repo_state(&self.env, &self.repo)
    }

    fn run(&self, args: &[&str]) -> Run {
        sqlgit(&self.env, args, &[])
    }
}

/// `sqlgit snapshot app.db --repo app.sqlgit --history-remote URL` (the database is unchanged):
/// the push is refused with one line naming the history remote (and `must_say`); no ref, no file
/// changes in the repository (the URL is remembered in the config: not compared); no `secrets` in
/// the output. Returns the run. (One row of the bad-input table: each argument is a column.)
#[allow(clippy::too_many_arguments)]
fn bad_remote(
    fx: &Fx,
    rows: &mut Rows,
    input: &str,
    url: &str,
    vars: &[(&str, &str)],
    must_say: &[&str],
    secrets: &[&str],
    p: &mut Problems,
) -> Run {
    let before = fx.state();
    let args = [
        "snapshot",
        "app.db",
        "--repo",
        "app.sqlgit",
        "--history-remote",
        url,
    ];
    let started = Instant::now();
    let run = sqlgit(&fx.env, &args, vars);
    let took = started.elapsed();
    rows.add(input, &args, &run);
    let mut names = vec!["history remote"];
    names.extend_from_slice(must_say);
    match refusal(&run, &names) {
        Ok(_) => p.check(run.code() == Some(1), || {
            format!("{}: exit {:?}, want 1", run.cmdline, run.code())
        }),
        Err(e) => p.push(e),
    }
    p.check(took < Duration::from_secs(20), || {
        format!("{}: took {took:?} to give up", run.cmdline)
    });
    for e in state_problems(&before, &fx.state(), false, input) {
        p.push(e);
    }
    for secret in secrets {
        for (what, text) in [
            ("stdout", run.stdout_str()),
            ("stderr", run.stderr_str()),
            (
                "the state file",
                std::fs::read_to_string(fx.repo.join("sqlgit-state.json")).unwrap_or_default(),
            ),
        ] {
            p.check(!text.contains(secret), || {
                format!(
                    "{}: the secret {secret:?} appears in {what}:\n{text}",
                    run.cmdline
                )
            });
        }
    }
    // Forget the remote again, so the next case starts clean.
    sqlgit(
        &fx.env,
        &[
            "snapshot",
            "app.db",
            "--repo",
            "app.sqlgit",
            "--history-remote",
            "",
        ],
        &[],
    )
    .success();
    run
}
