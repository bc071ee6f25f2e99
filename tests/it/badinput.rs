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
//! With `SQLGIT_BADINPUT_ROWS=DIR` every case writes its markdown table rows (command, exit code,
//! the exact message) to `DIR/NN-case.md`; `tests/it/BADINPUT.md` is those rows under a header.

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

// ------------------------------------------------------------------------------------------------
// Bad databases
// ------------------------------------------------------------------------------------------------

/// `sqlgit snapshot NAME --repo app.sqlgit [EXTRA]` on a bad database made by `make` (which returns
/// what it is): refused, naming the file; repository, bad file and directory unchanged.
fn bad_database(
    order: u32,
    case: &'static str,
    name: &str,
    extra: &[&str],
    make: impl FnOnce(&TestEnv, &Path),
    must_say: &[&str],
) {
    let fx = Fx::new();
    let env = &fx.env;
    let path = env.path(name);
    make(env, &path);
    let file_before = path.is_file().then(|| FileState::of(&path));
    let listing = list_dir(env.root());
    let before = fx.state();

    let mut args = vec!["snapshot", name, "--repo", "app.sqlgit"];
    args.extend_from_slice(extra);
    let run = fx.run(&args);
    let mut rows = Rows::new(env, order, case);
    rows.add(case, &args, &run);

    let mut p = Problems::default();
    let mut names = vec![name];
    names.extend_from_slice(must_say);
    if let Err(e) = refusal(&run, &names) {
        p.push(e);
    }
    for e in state_problems(&before, &fx.state(), true, case) {
        p.push(e);
    }
    match &file_before {
        Some(state) => state.assert_unchanged(&path, case),
        None => p.check(path.is_dir() || !path.exists(), || {
            format!("{case}: {} was created", path.display())
        }),
    }
    p.check(list_dir(env.root()) == listing, || {
        format!(
            "{case}: files appeared or vanished beside the database: {:?} -> {:?}",
            listing,
            list_dir(env.root())
        )
    });
    p.finish();
}

/// A valid database of about 100 pages (rollback journal), for truncating and corrupting.
fn big_db(env: &TestEnv, path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA page_size=4096; PRAGMA journal_mode=DELETE;
         CREATE TABLE blobs(id INTEGER PRIMARY KEY, body TEXT NOT NULL);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000)
         INSERT INTO blobs SELECT i, printf('%0120d', i) FROM c;",
    )
    .unwrap();
    drop(conn);
    let _ = env;
    let len = std::fs::metadata(path).unwrap().len();
    assert!(len > 80 * 4096, "the big database is only {len} bytes");
}

#[test]
fn database_missing() {
    bad_database(1, "database missing", "missing.db", &[], |_, _| {}, &[]);
}

#[test]
fn database_is_a_directory() {
    bad_database(
        2,
        "database is a directory",
        "dir.db",
        &[],
        |_, p| std::fs::create_dir(p).unwrap(),
        &[],
    );
}

#[test]
fn database_is_a_text_file() {
    bad_database(
        3,
        "database is a text file",
        "notes.txt",
        &[],
        |_, p| std::fs::write(p, "shopping list\n- milk\n- bread\n").unwrap(),
        &[],
    );
}

#[test]
fn database_is_random_bytes() {
    bad_database(
        4,
        "database is random bytes (encrypted)",
        "secret.db",
        &[],
        |_, p| {
            let mut rng = StdRng::seed_from_u64(4);
            let bytes: Vec<u8> = (0..8 * 4096).map(|_| rng.random()).collect();
            std::fs::write(p, bytes).unwrap();
        },
        &[],
    );
}

#[test]
fn database_truncated() {
    bad_database(
        5,
        "database truncated",
        "truncated.db",
        &[],
        |env, p| {
            big_db(env, p);
            let len = std::fs::metadata(p).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(len / 2 / 4096 * 4096).unwrap();
        },
        &[],
    );
}

#[test]
fn database_with_a_corrupt_page() {
    bad_database(
        6,
        "database with a corrupt page",
        "corrupt.db",
        &[],
        |env, p| {
            big_db(env, p);
            // Page 3: a b-tree page of the table; an invalid page type and garbage cell pointers.
            let mut bytes = std::fs::read(p).unwrap();
            for b in &mut bytes[2 * 4096..2 * 4096 + 64] {
                *b = 0xff;
            }
            std::fs::write(p, bytes).unwrap();
        },
        &[],
    );
}

#[test]
fn database_locked_past_busy_timeout() {
    let fx = Fx::new();
    let env = &fx.env;
    let path = env.path("locked.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=DELETE;
         CREATE TABLE t(x);
         INSERT INTO t VALUES (1);",
    )
    .unwrap();
    // Before the lock: reading the file afterwards would close a descriptor of it in this
    // process, and closing any descriptor drops the process's POSIX locks on the file.
    let file_before = FileState::of(&path);
    conn.execute_batch("BEGIN EXCLUSIVE; INSERT INTO t VALUES (2);")
        .unwrap();
    let listing = list_dir(env.root());
    let before = fx.state();

    let args = [
        "snapshot",
        "locked.db",
        "--repo",
        "app.sqlgit",
        "--busy-timeout",
        "1s",
    ];
    let started = Instant::now();
    let run = fx.run(&args);
    let took = started.elapsed();
    let mut rows = Rows::new(env, 7, "database locked");
    rows.add(
        "database locked (`BEGIN EXCLUSIVE` held, rollback journal)",
        &args,
        &run,
    );
    let mut p = Problems::default();
    if let Err(e) = refusal(&run, &["locked.db", "locked"]) {
        p.push(e);
    }
    p.check(
        // Waited once, not once to open and again to read.
        took >= Duration::from_millis(900) && took < Duration::from_millis(1900),
        || format!("--busy-timeout 1s, but the run took {took:?}"),
    );
    for e in state_problems(&before, &fx.state(), true, "locked database") {
        p.push(e);
    }
    p.check(list_dir(env.root()) == listing, || {
        format!(
            "files appeared beside the locked database: {:?}",
            list_dir(env.root())
        )
    });
    file_before.assert_unchanged(&path, "locked database");
    drop(conn); // rolls back
    p.finish();
}

// ------------------------------------------------------------------------------------------------
// Bad repositories
// ------------------------------------------------------------------------------------------------

/// Every command that takes `--repo`, pointed at `repo` (relative to the test dir).
fn repo_commands(repo: &str) -> Vec<Vec<String>> {
    let r = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    vec![
        r(&["snapshot", "app.db", "--repo", repo]),
        r(&["log", "--repo", repo]),
        r(&["cat", "--repo", repo]),
        r(&["status", "--repo", repo]),
        r(&["restore", "--repo", repo, "--to", "restored.db"]),
        r(&["verify", "--repo", repo]),
        r(&["push", "--repo", repo]),
        r(&["prune", "--repo", repo, "--keep", "3"]),
        r(&["diff", "HEAD~1", "--repo", repo]),
    ]
}

/// Run every `--repo` command against `repo`; each must be refused naming it, and change nothing
/// in the directory `watch` (recursive content) nor create `restored.db`.
fn refuse_every_command(
    fx: &Fx,
    rows: &mut Rows,
    input: &str,
    repo: &str,
    must_say: &[&str],
    p: &mut Problems,
) {
    let env = &fx.env;
    for args in repo_commands(repo) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let before = tree_state(env.root());
        let run = fx.run(&args);
        rows.add(input, &args, &run);
        let mut names = vec![repo];
        names.extend_from_slice(must_say);
        if let Err(e) = refusal(&run, &names) {
            p.push(e);
        }
        // `diff` documents exit 2 for every error; all other commands exit 1.
        let want = if args[0] == "diff" { 2 } else { 1 };
        p.check(run.code() == Some(want) || run.code() == Some(0), || {
            format!("{}: exit {:?}, want {want}", run.cmdline, run.code())
        });
        let mut after = tree_state(env.root());
        // A refused snapshot still records its failure in app.sqlgit's state file: not our repo.
        after.retain(|k, _| !k.starts_with("app.sqlgit/"));
        let mut before = before;
        before.retain(|k, _| !k.starts_with("app.sqlgit/"));
        if after != before {
            let changed: Vec<&String> = after
                .iter()
                .filter(|(k, v)| before.get(*k) != Some(v))
                .map(|(k, _)| k)
                .chain(before.keys().filter(|k| !after.contains_key(*k)))
                .collect();
            p.push(format!("{}: changed {changed:?}", run.cmdline));
        }
    }
}

#[test]
fn repo_is_a_regular_file() {
    let fx = Fx::new();
    fx.env.write("not-a-repo", "just a file\n");
    let mut rows = Rows::new(&fx.env, 8, "repo-is-a-file");
    let mut p = Problems::default();
    refuse_every_command(
        &fx,
        &mut rows,
        "`--repo` is a regular file",
        "not-a-repo",
        &[],
        &mut p,
    );
    p.finish();
}

#[test]
fn repo_is_a_foreign_git_repository() {
    let fx = Fx::new();
    let env = &fx.env;
    // A plain `git init` with a commit, and a bare repository holding the same branch.
    std::fs::create_dir(env.path("work")).unwrap();
    git_out(env, &env.path("work"), &["init", "-q", "-b", "main"]);
    env.write("work/README", "mine\n");
    git_out(env, &env.path("work"), &["add", "README"]);
    git_out(env, &env.path("work"), &["commit", "-q", "-m", "my work"]);
    git_out(
        env,
        &env.path("work"),
        &["commit", "-q", "--allow-empty", "-m", "more"],
    );
    git_out(
        env,
        env.root(),
        &["clone", "-q", "--bare", "work", "bare.git"],
    );
    // An empty `git init`.
    git_out(env, env.root(), &["init", "-q", "empty"]);

    let mut rows = Rows::new(env, 9, "repo-is-foreign");
    let mut p = Problems::default();
    for (input, repo) in [
        (
            "`--repo` is a foreign git repository (`git init`, with commits)",
            "work",
        ),
        ("`--repo` is a foreign bare repository", "bare.git"),
        ("`--repo` is an empty `git init`", "empty"),
    ] {
        refuse_every_command(&fx, &mut rows, input, repo, &[], &mut p);
    }
    // Not foreign: a plain `git clone --bare` of a sqlgit repository (what one gets from the
    // history remote) has no `sqlgit.format` marker, but its snapshots must stay readable.
    git_out(
        env,
        env.root(),
        &["clone", "-q", "--bare", "app.sqlgit", "clone.git"],
    );
    for args in [
        vec!["log", "--repo", "clone.git"],
        vec!["cat", "--repo", "clone.git"],
        vec!["verify", "--repo", "clone.git"],
    ] {
        let run = fx.run(&args);
        p.check(run.code() == Some(0), || {
            format!(
                "{}: a bare clone of a sqlgit repository must stay readable: {} {}",
                run.cmdline,
                run.output.status,
                run.stderr_str()
            )
        });
    }
    p.finish();
}

#[test]
fn repo_missing() {
    let fx = Fx::new();
    let mut rows = Rows::new(&fx.env, 10, "repo-missing");
    let mut p = Problems::default();
    // `snapshot` creates a missing repository: every other command must refuse it.
    let env = &fx.env;
    for args in repo_commands("missing.sqlgit").into_iter().skip(1) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = fx.run(&args);
        rows.add("`--repo` missing", &args, &run);
        if let Err(e) = refusal(&run, &["missing.sqlgit"]) {
            p.push(e);
        }
        p.check(!env.path("missing.sqlgit").exists(), || {
            format!("{}: created the repository", run.cmdline)
        });
        p.check(!env.path("restored.db").exists(), || {
            format!("{}: created restored.db", run.cmdline)
        });
    }
    p.finish();
}

// ------------------------------------------------------------------------------------------------
// Bad revisions and times
// ------------------------------------------------------------------------------------------------

/// Reader commands with bad WHEN values: each refused naming the value; nothing changed.
fn bad_when(order: u32, case: &'static str, input: &str, whens: &[(&str, &str)]) {
    let fx = Fx::new();
    let env = &fx.env;
    let mut rows = Rows::new(env, order, case);
    let mut p = Problems::default();
    let before = fx.state();
    for &(when, must_say) in whens {
        for args in [
            vec!["cat", when, "--repo", "app.sqlgit"],
            vec![
                "restore",
                when,
                "--repo",
                "app.sqlgit",
                "--to",
                "restored.db",
            ],
        ] {
            let run = fx.run(&args);
            rows.add(input, &args, &run);
            if let Err(e) = refusal(&run, &[must_say]) {
                p.push(e);
            }
            p.check(!env.path("restored.db").exists(), || {
                format!("{}: created restored.db", run.cmdline)
            });
        }
    }
    for e in state_problems(&before, &fx.state(), true, case) {
        p.push(e);
    }
    p.finish();
}

#[test]
fn unknown_revision() {
    bad_when(
        11,
        "unknown-revision",
        "unknown revision",
        &[
            ("deadbeef", "\"deadbeef\""),
            ("HEAD~5", "\"HEAD~5\""),
            (
                "0123456789abcdef0123456789abcdef01234567",
                "\"0123456789abcdef0123456789abcdef01234567\"",
            ),
        ],
    );
}

#[test]
fn bad_time_expression() {
    bad_when(
        12,
        "bad-time",
        "bad time expression",
        &[
            ("3 fortnights", "\"3 fortnights\""),
            ("2027-13-45T00:00:00Z", "\"2027-13-45T00:00:00Z\""),
            ("yesterday at noon", "\"yesterday at noon\""),
        ],
    );
}

#[test]
fn time_before_the_first_snapshot() {
    // The snapshot is at T; readers run at T + 1h.
    bad_when(
        13,
        "time-before-first",
        "time before the first snapshot",
        &[
            (
                "2027-01-15T07:59:59Z",
                "no snapshot at or before 2027-01-15T07:59:59Z",
            ),
            // A duration names the time it resolved to.
            ("2h", "no snapshot at or before 2027-01-15T07:00:00Z"),
            (
                "2000-01-01T00:00:00Z",
                "no snapshot at or before 2000-01-01T00:00:00Z",
            ),
            // Before 1970: still a time before the first snapshot, not a crash.
            ("100years", "no snapshot at or before"),
        ],
    );
}

#[test]
fn restore_over_an_existing_file() {
    let fx = Fx::new();
    let env = &fx.env;
    let target = env.write("existing.db", "precious\n");
    let file_before = FileState::of(&target);
    let listing = list_dir(env.root());
    let before = fx.state();
    let args = ["restore", "--repo", "app.sqlgit", "--to", "existing.db"];
    let run = fx.run(&args);
    let mut rows = Rows::new(env, 14, "restore-over-existing");
    rows.add("restore over an existing file", &args, &run);
    let mut p = Problems::default();
    if let Err(e) = refusal(&run, &["existing.db", "--force"]) {
        p.push(e);
    }
    file_before.assert_unchanged(&target, "restore over an existing file");
    p.check(list_dir(env.root()) == listing, || {
        format!("files appeared: {:?}", list_dir(env.root()))
    });
    for e in state_problems(&before, &fx.state(), true, "restore over an existing file") {
        p.push(e);
    }
    p.finish();
}

// ------------------------------------------------------------------------------------------------
// Bad remotes
// ------------------------------------------------------------------------------------------------

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

#[test]
fn remote_url_malformed() {
    let fx = Fx::new();
    let mut rows = Rows::new(&fx.env, 15, "remote-malformed");
    let mut p = Problems::default();
    for url in ["http://[::1", "ftp://127.0.0.1/x.git", "not a url"] {
        bad_remote(
            &fx,
            &mut rows,
            "malformed remote URL",
            url,
            &[],
            &[url],
            &[],
            &mut p,
        );
    }
    // With credentials in it: the password must not be shown.
    bad_remote(
        &fx,
        &mut rows,
        "malformed remote URL with a password",
        "http://alice:Malformed7Secret@[::1/x.git",
        &[],
        &["***@"],
        &["Malformed7Secret"],
        &mut p,
    );
    p.finish();
}

#[test]
fn remote_unreachable() {
    let fx = Fx::new();
    let mut rows = Rows::new(&fx.env, 16, "remote-unreachable");
    let mut p = Problems::default();
    let port = free_port(); // nothing listens there
    rows.show_as(format!(":{port}/"), ":PORT/");
    for url in [
        format!("git://127.0.0.1:{port}/x.git"),
        format!("http://127.0.0.1:{port}/x.git"),
        format!("ssh://git@127.0.0.1:{port}/x.git"),
    ] {
        let shown = url.replace("git@", "***@");
        bad_remote(
            &fx,
            &mut rows,
            "unreachable remote (nothing listening)",
            &url,
            &[],
            &[&shown],
            &[],
            &mut p,
        );
    }
    p.finish();
}

#[test]
fn remote_is_not_a_repository() {
    let fx = Fx::new();
    let daemon = GitDaemon::start_in(fx.env.path("srv"));
    let http = HttpGit::start_in(fx.env.path("web"), "alice", "RightPass2026");
    let mut rows = Rows::new(&fx.env, 17, "remote-not-a-repo");
    rows.show_as(format!(":{}/", daemon.port()), ":PORT/");
    rows.show_as(format!(":{}/", http.port()), ":PORT/");
    let mut p = Problems::default();
    let git_url = daemon.url("nothing-here");
    bad_remote(
        &fx,
        &mut rows,
        "remote is not a git repository",
        &git_url,
        &[],
        &[&git_url],
        &[],
        &mut p,
    );
    let http_url = http.url_with_credentials("nothing-here", "alice", "RightPass2026");
    bad_remote(
        &fx,
        &mut rows,
        "remote is not a git repository",
        &http_url,
        &[],
        &["***@"],
        &["RightPass2026"],
        &mut p,
    );
    p.finish();
}

#[test]
fn remote_auth_failure() {
    let fx = Fx::new();
    let http = HttpGit::start_in(fx.env.path("web"), "alice", "RightPass2026");
    http.create_bare("x");
    let mut rows = Rows::new(&fx.env, 18, "remote-auth");
    rows.show_as(format!(":{}/", http.port()), ":PORT/");
    let mut p = Problems::default();
    let secrets = ["WrongPass4242", "WrongToken5151", "RightPass2026"];
    let url = http.url_with_credentials("x", "alice", "WrongPass4242");
    bad_remote(
        &fx,
        &mut rows,
        "auth failure (wrong password in the URL)",
        &url,
        &[],
        &["***@"],
        &secrets,
        &mut p,
    );
    let url = http.url("x");
    bad_remote(
        &fx,
        &mut rows,
        "auth failure (wrong `SQLGIT_HTTPS_TOKEN`)",
        &url,
        &[
            ("SQLGIT_HTTPS_TOKEN", "WrongToken5151"),
            ("SQLGIT_HTTPS_USER", "alice"),
        ],
        &[&url],
        &secrets,
        &mut p,
    );
    // Nothing else shows them either.
    for args in [
        vec!["log", "--repo", "app.sqlgit"],
        vec!["status", "--repo", "app.sqlgit", "--json"],
        vec!["status", "--repo", "app.sqlgit"],
    ] {
        let run = fx.run(&args);
        for s in secrets {
            let all = format!("{}{}", run.stdout_str(), run.stderr_str());
            p.check(!all.contains(s), || {
                format!("{}: shows {s:?}:\n{all}", run.cmdline)
            });
        }
    }
    // A wrong password is not replayed endlessly (a server counting failures would lock us out).
    let refused = http.unauthorized_requests();
    p.check(refused <= 6, || {
        format!("{refused} requests refused with 401 for two runs: credentials replayed?")
    });
    p.check(
        std::fs::read_to_string(http.repo_path("x").join("refs/heads/main")).is_err(),
        || "the remote got a main branch despite the wrong credentials".into(),
    );
    p.finish();
}

/// A pure-Python SSH server that does only the key exchange (curve25519-sha256, an ssh-ed25519
/// host key derived from a fixed seed, aes128-ctr + hmac-sha2-256), answers the `ssh-userauth`
/// service request and refuses every login. Enough for a client to reach its host-key check: it
/// logs `sent host key` when the client has verified the key-exchange signature and `tried to log
/// in` when the client accepted the host key. Prints `PORT BASE64-HOST-KEY`; exits when stdin
/// closes.
const SSH_KEX_SERVER_PY: &str = r#####"
# A minimal SSH server that only does the key exchange (curve25519-sha256, ssh-ed25519 host key),
# so that a client reaches its host-key check; pure Python (no third-party modules).
import base64, hashlib, hmac, os, socket, struct, sys, threading

log_path = sys.argv[1]
def log(line):
    with open(log_path, "a") as f:
        f.write(line + "\n")

p = 2**255 - 19
q = 2**252 + 27742317777372353535851937790883648493
def inv(x): return pow(x, p - 2, p)
d = -121665 * inv(121666) % p
sqrt_m1 = pow(2, (p - 1) // 4, p)
def recover_x(y, sign):
    x2 = (y * y - 1) * inv(d * y * y + 1)
    x = pow(x2, (p + 3) // 8, p)
    if (x * x - x2) % p != 0:
        x = x * sqrt_m1 % p
    if (x & 1) != sign:
        x = p - x
    return x
gy = 4 * inv(5) % p
gx = recover_x(gy, 0)
G = (gx, gy, 1, gx * gy % p)
def add(P, Q):
    A, B = (P[1] - P[0]) * (Q[1] - Q[0]) % p, (P[1] + P[0]) * (Q[1] + Q[0]) % p
    C, D = 2 * P[3] * Q[3] * d % p, 2 * P[2] * Q[2] % p
    E, F, Gg, H = B - A, D - C, D + C, B + A
    return (E * F, Gg * H, F * Gg, E * H)
def mul(s, P):
    Q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            Q = add(Q, P)
        P = add(P, P)
        s >>= 1
    return Q
def compress(P):
    zi = inv(P[2])
    x, y = P[0] * zi % p, P[1] * zi % p
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")
def expand(secret):
    h = hashlib.sha512(secret).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]
def ed_sign(secret, msg):
    a, prefix = expand(secret)
    A = compress(mul(a, G))
    r = int.from_bytes(hashlib.sha512(prefix + msg).digest(), "little") % q
    R = compress(mul(r, G))
    h = int.from_bytes(hashlib.sha512(R + A + msg).digest(), "little") % q
    return R + int.to_bytes((r + h * a) % q, 32, "little")
def x25519(k, u):
    k = bytearray(k); k[0] &= 248; k[31] &= 127; k[31] |= 64
    k = int.from_bytes(k, "little"); u = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x1, x2, z2, x3, z3, swap = u, 1, 0, u, 1, 0
    for t in reversed(range(255)):
        kt = (k >> t) & 1
        swap ^= kt
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        A = x2 + z2; AA = A * A; B = x2 - z2; BB = B * B; E = AA - BB
        C = x3 + z3; D = x3 - z3; DA = D * A; CB = C * B
        x3 = (DA + CB) ** 2 % p; z3 = x1 * (DA - CB) ** 2 % p
        x2 = AA * BB % p; z2 = E * (AA + 121665 * E) % p
    if swap:
        x2, z2 = x3, z3
    return (x2 * inv(z2) % p).to_bytes(32, "little")


def _gmul(a, b):
    r = 0
    while b:
        if b & 1:
            r ^= a
        a = ((a << 1) ^ 0x11B) if a & 0x80 else a << 1
        b >>= 1
    return r
SBOX = []
for _x in range(256):
    _i = next((y for y in range(1, 256) if _gmul(_x, y) == 1), 0)
    _s = _i
    for _k in range(1, 5):
        _s ^= ((_i << _k) | (_i >> (8 - _k))) & 0xFF
    SBOX.append(_s ^ 0x63)
def aes_round_keys(key):
    w = [list(key[i:i + 4]) for i in range(0, 16, 4)]
    rcon = 1
    for i in range(4, 44):
        t = list(w[i - 1])
        if i % 4 == 0:
            t = [SBOX[b] for b in t[1:] + t[:1]]
            t[0] ^= rcon
            rcon = _gmul(rcon, 2)
        w.append([a ^ b for a, b in zip(w[i - 4], t)])
    return [sum(w[4 * r:4 * r + 4], []) for r in range(11)]
def aes_encrypt(rk, block):
    s = [a ^ b for a, b in zip(block, rk[0])]
    for rnd in range(1, 11):
        s = [SBOX[b] for b in s]
        s = [s[r + 4 * ((c + r) % 4)] for c in range(4) for r in range(4)]
        if rnd < 10:
            m = []
            for c in range(4):
                a0, a1, a2, a3 = s[4 * c:4 * c + 4]
                m += [_gmul(a0, 2) ^ _gmul(a1, 3) ^ a2 ^ a3, a0 ^ _gmul(a1, 2) ^ _gmul(a2, 3) ^ a3,
                      a0 ^ a1 ^ _gmul(a2, 2) ^ _gmul(a3, 3), _gmul(a0, 3) ^ a1 ^ a2 ^ _gmul(a3, 2)]
            s = m
        s = [a ^ b for a, b in zip(s, rk[rnd])]
    return bytes(s)

class Ctr:
    def __init__(self, key, iv):
        self.rk, self.n, self.buf = aes_round_keys(key), int.from_bytes(iv, "big"), b""
    def xor(self, data):
        while len(self.buf) < len(data):
            self.buf += aes_encrypt(self.rk, self.n.to_bytes(16, "big"))
            self.n = (self.n + 1) % (1 << 128)
        out = bytes(a ^ b for a, b in zip(data, self.buf))
        self.buf = self.buf[len(data):]
        return out

def sstr(b): return struct.pack(">I", len(b)) + b
def mpint(b):
    b = b.lstrip(b"\0")
    if b and b[0] & 0x80:
        b = b"\0" + b
    return sstr(b)
def namelist(*names): return sstr(",".join(names).encode())

HOST_SECRET = hashlib.sha256(b"sqlgit test host key").digest()
HOST_PUB = compress(mul(expand(HOST_SECRET)[0], G))
K_S = sstr(b"ssh-ed25519") + sstr(HOST_PUB)

class Conn:
    def __init__(self, sock):
        self.sock, self.seq_in, self.seq_out, self.keys = sock, 0, 0, None
    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return out
    def send(self, payload):
        block = 16 if self.keys else 8
        pad = block - (5 + len(payload)) % block
        if pad < 4:
            pad += block
        packet = struct.pack(">IB", 1 + len(payload) + pad, pad) + payload + os.urandom(pad)
        if self.keys:
            mac = hmac.new(self.keys["mac_out"], struct.pack(">I", self.seq_out) + packet, hashlib.sha256).digest()
            packet = self.keys["out"].xor(packet) + mac
        self.sock.sendall(packet)
        self.seq_out += 1
    def recv(self):
        if self.keys:
            first = self.keys["in"].xor(self.recv_exact(16))
            length, pad = struct.unpack(">IB", first[:5])
            rest = self.keys["in"].xor(self.recv_exact(length + 4 - 16))
            self.recv_exact(32)
            body = (first + rest)[5:]
        else:
            length, pad = struct.unpack(">IB", self.recv_exact(5))
            body = self.recv_exact(length - 1)
        self.seq_in += 1
        return body[: length - 1 - pad]

def serve(sock):
    conn = Conn(sock)
    try:
        v_s = b"SSH-2.0-sqlgit_test_kex"
        sock.sendall(v_s + b"\r\n")
        while True:
            line = b""
            while not line.endswith(b"\n"):
                line += conn.recv_exact(1)
            if line.startswith(b"SSH-"):
                break
        v_c = line.rstrip(b"\r\n")
        i_s = (bytes([20]) + os.urandom(16) + namelist("curve25519-sha256", "curve25519-sha256@libssh.org")
               + namelist("ssh-ed25519") + namelist("aes128-ctr") * 2 + namelist("hmac-sha2-256") * 2
               + namelist("none") * 2 + namelist() * 2 + b"\0" + struct.pack(">I", 0))
        conn.send(i_s)
        i_c = None
        while True:
            pkt = conn.recv()
            if pkt[0] == 20:
                i_c = pkt
            elif pkt[0] == 30:
                q_c = pkt[5 : 5 + struct.unpack(">I", pkt[1:5])[0]]
                break
        secret = os.urandom(32)
        q_s = x25519(secret, (9).to_bytes(32, "little"))
        k = mpint(x25519(secret, q_c))
        h = hashlib.sha256(sstr(v_c) + sstr(v_s) + sstr(i_c) + sstr(i_s) + sstr(K_S)
                           + sstr(q_c) + sstr(q_s) + k).digest()
        sig = sstr(b"ssh-ed25519") + sstr(ed_sign(HOST_SECRET, h))
        conn.send(bytes([31]) + sstr(K_S) + sstr(q_s) + sstr(sig))
        conn.send(bytes([21]))
        log("sent host key to " + v_c.decode(errors="replace"))
        while conn.recv()[0] != 21:
            pass
        derive = lambda x: hashlib.sha256(k + h + x + h).digest()
        conn.keys = {"out": Ctr(derive(b"D")[:16], derive(b"B")[:16]), "mac_out": derive(b"F"),
                     "in": Ctr(derive(b"C")[:16], derive(b"A")[:16])}
        while True:
            pkt = conn.recv()
            log("client message %d" % pkt[0])
            if pkt[0] == 5:
                conn.send(bytes([6]) + sstr(b"ssh-userauth"))
            elif pkt[0] == 50:
                log("the client tried to log in: it accepted the host key")
                conn.send(bytes([51]) + namelist("publickey") + b"\0")
            elif pkt[0] == 1:
                break
    except Exception as e:
        log("connection ended: %r" % (e,))
    finally:
        sock.close()

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(8)
print(server.getsockname()[1], base64.b64encode(K_S).decode(), flush=True)
def accept_loop():
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()
threading.Thread(target=accept_loop, daemon=True).start()
sys.stdin.buffer.read()
os._exit(0)
"#####;

/// The SSH server above, killed on drop.
struct SshKex {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    port: u16,
    host_key: String,
    log: PathBuf,
}

impl SshKex {
    fn start(env: &TestEnv) -> SshKex {
        let script = env.write("ssh-kex.py", SSH_KEX_SERVER_PY);
        let log = env.path("ssh-kex.log");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 is needed for the SSH test server");
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut words = line.split_whitespace();
        let port = words
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("the SSH test server did not print its port: {line:?}"));
        let host_key = words.next().unwrap_or_default().to_string();
        SshKex {
            child: Some(child),
            stdin,
            port,
            host_key,
            log,
        }
    }
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SshKex {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn remote_unknown_ssh_host_key() {
    let fx = Fx::new();
    let env = &fx.env;
    let server = SshKex::start(env);
    let url = format!("ssh://git@127.0.0.1:{}/x.git", server.port);
    let mut rows = Rows::new(env, 19, "remote-hostkey");
    rows.show_as(format!(":{}/", server.port), ":PORT/");
    let mut p = Problems::default();
    bad_remote(
        &fx,
        &mut rows,
        "unknown ssh host key (empty `~/.ssh/known_hosts`)",
        &url,
        &[],
        &["host", "key", "ssh://***@127.0.0.1"],
        &[],
        &mut p,
    );
    let log = server.log();
    p.check(log.contains("sent host key"), || {
        format!("the client never got the host key; server log:\n{log}")
    });
    p.check(!log.contains("tried to log in"), || {
        format!("the client logged in to an unknown host; server log:\n{log}")
    });

    // Control: with the key in known_hosts the client gets past the check (and fails to log in),
    // so the refusal above was the host-key check and not a broken test server.
    let ssh_dir = env.path(".home/.ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    std::fs::write(
        ssh_dir.join("known_hosts"),
        format!(
            "[127.0.0.1]:{} ssh-ed25519 {}\n",
            server.port, server.host_key
        ),
    )
    .unwrap();
    let run = sqlgit(
        env,
        &["push", "--repo", "app.sqlgit", "--history-remote", &url],
        &[],
    );
    let log = server.log();
    p.check(log.contains("tried to log in"), || {
        format!(
            "with the host key known, the client should try to log in; server log:\n{log}\n\
             sqlgit said: {}",
            run.stderr_str()
        )
    });
    p.check(
        run.code() == Some(1) && !run.stderr_str().contains("host"),
        || {
            format!(
                "with the host key known: {}\n{}",
                run.output.status,
                run.stderr_str()
            )
        },
    );
    p.finish();
}

// ------------------------------------------------------------------------------------------------
// Disk full
// ------------------------------------------------------------------------------------------------

/// A small filesystem mounted on a directory of the test; unmounted on drop.
pub(crate) struct SmallFs {
    pub dir: PathBuf,
    pub kind: &'static str,
}

impl SmallFs {
    /// A tmpfs of `mib` MiB, else a loop-mounted ext2 image; `Err(why)` when neither works.
    pub fn mount(env: &TestEnv, name: &str, mib: u64) -> Result<SmallFs, String> {
        let dir = env.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let tmpfs = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={mib}m,mode=0700"))
            .arg("tmpfs")
            .arg(&dir)
            .output();
        let tmpfs_err = match tmpfs {
            Ok(o) if o.status.success() => {
                return Ok(SmallFs { dir, kind: "tmpfs" });
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        let image = env.path(format!("{name}.img"));
        let f = std::fs::File::create(&image).unwrap();
        f.set_len(mib << 20).unwrap();
        drop(f);
        let mkfs = Command::new("mkfs.ext2")
            .arg("-q")
            .arg("-F")
            .arg(&image)
            .output();
        match mkfs {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return Err(format!(
                    "mount -t tmpfs: {tmpfs_err}; mkfs.ext2: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
            Err(e) => return Err(format!("mount -t tmpfs: {tmpfs_err}; mkfs.ext2: {e}")),
        }
        let loop_mount = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&dir)
            .output();
        match loop_mount {
            Ok(o) if o.status.success() => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
                Ok(SmallFs {
                    dir,
                    kind: "ext2 (loop)",
                })
            }
            Ok(o) => Err(format!(
                "mount -t tmpfs: {tmpfs_err}; mount -o loop: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Err(format!("mount -t tmpfs: {tmpfs_err}; mount -o loop: {e}")),
        }
    }

    /// Bytes an unprivileged writer can still put there.
    pub fn available(&self) -> u64 {
        let c = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes()).unwrap();
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
        assert_eq!(rc, 0, "statvfs {}", self.dir.display());
        st.f_bavail as u64 * st.f_frsize as u64
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// `sqlgit cat --repo REPO` (latest).
fn cat_latest(env: &TestEnv, repo: &str) -> Vec<u8> {
    let run = sqlgit(env, &["cat", "--repo", repo], &[]).success();
    run.stdout().to_vec()
}

#[test]
fn disk_full() {
    let env = TestEnv::new();
    // Declared after `env`, so it is unmounted before the directory is removed.
    let fs = match SmallFs::mount(&env, "small", 2) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIP disk_full: cannot mount a small filesystem: {why}");
            return;
        }
    };
    eprintln!("disk_full: on a 2 MiB {}", fs.kind);
    env.db_from_script(
        "app.db",
        b"CREATE TABLE items(id INTEGER PRIMARY KEY, body BLOB NOT NULL);\n\
          WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200)\n\
          INSERT INTO items SELECT i, printf('item %d', i) FROM c;\n",
    );
    let repo = "small/app.sqlgit";
    sqlgit(&env, &["snapshot", "app.db", "--repo", repo], &[]).success();
    let first = cat_latest(&env, repo);
    let head = git_out(&env, &env.path(repo), &["rev-parse", "main"]);

    // Grow the database by ~3 MiB of incompressible data: the next snapshot cannot fit.
    let conn = Connection::open(env.path("app.db")).unwrap();
    conn.execute_batch(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 768)
         INSERT INTO items(body) SELECT randomblob(4096) FROM c;",
    )
    .unwrap();
    drop(conn);
    let free_before = fs.available();
    let before = repo_state(&env, &env.path(repo));
    let args = ["snapshot", "app.db", "--repo", repo];
    let run = sqlgit(&env, &args, &[]);
    let mut rows = Rows::new(&env, 20, "disk-full");
    rows.add("disk full (repository on a 2 MiB tmpfs)", &args, &run);
    let mut p = Problems::default();
    match refusal(&run, &[]) {
        Ok(msg) => {
            let lower = msg.to_lowercase();
            p.check(
                lower.contains("space") || lower.contains("disk full"),
                || format!("the disk-full message does not say so: {msg}"),
            );
            p.check(msg.contains("app.sqlgit"), || {
                format!("the disk-full message does not name the repository: {msg}")
            });
            p.check(run.code() == Some(1), || {
                format!("exit {:?}, want 1", run.code())
            });
        }
        Err(e) => p.push(e),
    }
    // The repository is valid, main unchanged, the previous snapshot intact; the failed run
    // released the space it took.
    if let Some(e) = fsck_problems(&env, &env.path(repo)) {
        p.push(e);
    }
    let after = repo_state(&env, &env.path(repo));
    for e in state_problems(&before, &after, true, "disk full") {
        p.push(e);
    }
    p.check(
        git_out(&env, &env.path(repo), &["rev-parse", "main"]) == head,
        || "main moved".into(),
    );
    p.check(cat_latest(&env, repo) == first, || {
        "the previous snapshot no longer restores to the same SQL".into()
    });
    let free_after = fs.available();
    p.check(free_after + 64 * 1024 >= free_before, || {
        format!(
            "the failed run left {} bytes behind",
            free_before - free_after
        )
    });

    // `dump -o` onto the full disk: one line, and no partial file left.
    let fill = env.path("small/filler");
    let avail = fs.available();
    std::fs::write(&fill, vec![0u8; avail.saturating_sub(16 * 1024) as usize]).unwrap();
    let listing = list_dir(&fs.dir);
    let dump_args = ["dump", "app.db", "-o", "small/app.sql"];
    let run = sqlgit(&env, &dump_args, &[]);
    rows.add(
        "disk full (`dump -o` onto a full filesystem)",
        &dump_args,
        &run,
    );
    if let Err(e) = refusal(&run, &["app.sql"]) {
        p.push(e);
    }
    p.check(list_dir(&fs.dir) == listing, || {
        format!("dump -o left files behind: {:?}", list_dir(&fs.dir))
    });
    std::fs::remove_file(&fill).unwrap();

    // Free space (move the repository to a bigger place): the next run succeeds.
    let big = env.path("app.sqlgit");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(env.path(repo))
        .arg(&big)
        .status()
        .unwrap();
    assert!(cp.success(), "cp -a the repository");
    sqlgit(&env, &["snapshot", "app.db", "--repo", "app.sqlgit"], &[]).success();
    let dump = sqlgit(&env, &["dump", "app.db"], &[]).success();
    p.check(cat_latest(&env, "app.sqlgit") == dump.stdout(), || {
        "after freeing space the snapshot does not match the database".into()
    });
    if let Some(e) = fsck_problems(&env, &big) {
        p.push(e);
    }

    // `verify` with TMPDIR on the small filesystem: its restores fill it midway. The line says
    // where, and what to set.
    let small = fs.dir.display().to_string();
    let verify_args = ["verify", "--repo", "app.sqlgit"];
    let run = sqlgit(&env, &verify_args, &[("TMPDIR", small.as_str())]);
    rows.add(
        "disk full (`verify` with TMPDIR on a 2 MiB tmpfs)",
        &verify_args,
        &run,
    );
    match refusal(&run, &[]) {
        Ok(msg) => p.check(msg.contains(&small) && msg.contains("TMPDIR"), || {
            format!("verify's disk-full line does not name the scratch place and TMPDIR: {msg}")
        }),
        Err(e) => p.push(e),
    }
    p.finish();
}
