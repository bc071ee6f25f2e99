//! Issue 8: the torture suite and the security checks, through the real binary.
//!
//! `torture_short` runs everything at once for `SQLGIT_TORTURE_SECS` seconds (default 40; the long
//! run is `benches/torture.sh`, i.e. `SQLGIT_TORTURE_SECS=600 cargo test --release --test it
//! torture_short -- --nocapture`):
//! - two bank databases, one in WAL mode and one with a rollback journal, each with its own
//!   `sqlite3` writer process committing transfers non-stop (100 accounts; the sum of balances
//!   never changes and every balance equals the start balance plus its ledger);
//! - for each database its own repository, snapshotted about once a second with
//!   `--keep 5 --busy-timeout 30s`, the history remote on a `git daemon`, the latest remote on smart
//!   HTTP with Basic auth;
//! - about a third of the runs SIGKILLed after 0–800 ms (seeded: `SQLGIT_TORTURE_SEED`), so kills
//!   land in the dump, the commit, the pushes and the prune;
//! - the git daemon stopped for 1–4 s every 2–8 s.
//!
//! Then, with the daemon up and the writers stopped, one clean run per repository must succeed,
//! and: `git fsck` is clean locally and on both remotes; every commit on the history remote
//! restores (plain `git archive | tar -xO | sqlite3`) to a consistent bank with 100 accounts; the
//! latest remote's `main` is one parentless commit with the local head's tree; every commit a run
//! printed is on the history remote (nothing confirmed, nor anything merely committed, was lost);
//! local history is the newest 5 commits and the repository stays under 20× its size after the
//! first snapshot; nothing in it is group/other accessible; the head restores to the database.
//!
//! The `security_*` tests: every file and directory sqlgit creates is private even under umask
//! 022; credentials (URL userinfo, `SQLGIT_HTTPS_TOKEN`) appear in no output, state file, metrics
//! file, hook environment or commit message; hostile table names stay inside the tree; database
//! content never reaches a shell (a logging `sh` on PATH sees only the hooks' own command lines).
//!
//! Files: `short` (the torture run), `files`, `credentials`, `hostile` (the security tests); this
//! one holds the banks, their writers and the commit checks `short` uses, and `sqlgit_umask022`.

mod credentials;
mod files;
mod hostile;
mod short;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rusqlite::Connection;

use crate::badinput::{Problems, fsck_problems, git_out, reader, run_limited, tree_state};
use crate::env::{Run, TestEnv, compare_databases, dir_size, kill_group, sqlite3_bin};
use crate::servers::{GitDaemon, HttpGit};

const ACCOUNTS: i64 = 100;
const START_BALANCE: i64 = 1000;
const PADDING_ROWS: i64 = 20_000;
const KEEP: usize = 5;
/// A run that takes longer than this (not killed by us) is a hang.
const HANG: Duration = Duration::from_secs(120);

// ------------------------------------------------------------------------------------------------
// The banks and their writers
// ------------------------------------------------------------------------------------------------

/// One database, its repository and its two remotes.
struct Bank {
    name: &'static str,
    db: PathBuf,
    repo: PathBuf,
    history_url: String,
    history_dir: PathBuf,
    latest_url: String,
    latest_dir: PathBuf,
}

impl Bank {
    fn new(
        env: &TestEnv,
        name: &'static str,
        journal: &str,
        daemon: &GitDaemon,
        http: &HttpGit,
        (user, pass): (&str, &str),
    ) -> Bank {
        let db = env.path(format!("{name}.db"));
        let script = format!(
            "PRAGMA journal_mode={journal};
             CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
             CREATE TABLE ledger(id INTEGER PRIMARY KEY, src INTEGER NOT NULL,
                                 dst INTEGER NOT NULL, amount INTEGER NOT NULL);
             CREATE INDEX ledger_dst ON ledger(dst);
             CREATE TABLE padding(id INTEGER PRIMARY KEY, pad TEXT NOT NULL);
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {ACCOUNTS})
             INSERT INTO accounts SELECT i, {START_BALANCE} FROM c;
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {PADDING_ROWS})
             INSERT INTO padding SELECT i, printf('%08d %s', i, hex(randomblob(24))) FROM c;"
        );
        let run = env.sqlite3_args(&["-bail"], &db, script.as_bytes());
        let run = run.success().assert_quiet();
        let mode = run.stdout_str();
        assert_eq!(
            mode.trim(),
            journal.to_lowercase(),
            "journal mode of {name}"
        );
        let history = format!("{name}-history");
        let latest = format!("{name}-latest");
        Bank {
            name,
            repo: env.path(format!("{name}.sqlgit")),
            db,
            history_dir: daemon.create_bare(&history),
            history_url: daemon.url(&history),
            latest_dir: http.create_bare(&latest),
            latest_url: http.url_with_credentials(&latest, user, pass),
        }
    }

    fn snapshot_args(&self) -> Vec<&OsStr> {
        vec![
            OsStr::new("snapshot"),
            self.db.as_os_str(),
            OsStr::new("--repo"),
            self.repo.as_os_str(),
            OsStr::new("--keep"),
            OsStr::new("5"),
            OsStr::new("--busy-timeout"),
            OsStr::new("30s"),
            OsStr::new("--history-remote"),
            OsStr::new(&self.history_url),
            OsStr::new("--latest-remote"),
            OsStr::new(&self.latest_url),
        ]
    }
}

/// A `sqlite3` process fed transfers on its stdin until `stop`.
struct Writer {
    child: Child,
    feeder: std::thread::JoinHandle<u64>,
}

fn start_writer(env: &TestEnv, db: &Path, seed: u64, stop: Arc<AtomicBool>) -> Writer {
    let mut child = env
        .command(sqlite3_bin())
        .arg("-batch")
        .arg("-bail")
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the sqlite3 writer");
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut transfers = 0u64;
        let _ = stdin.write_all(b".timeout 10000\nPRAGMA synchronous=OFF;\n");
        while !stop.load(Ordering::Relaxed) {
            let mut batch = String::new();
            for _ in 0..4 {
                let a = rng.random_range(1..=ACCOUNTS);
                let b = (a + rng.random_range(1..ACCOUNTS) - 1) % ACCOUNTS + 1;
                let amount = rng.random_range(1..=100);
                batch.push_str(&format!(
                    "BEGIN IMMEDIATE;\n\
                     UPDATE accounts SET balance = balance - {amount} WHERE id = {a};\n\
                     INSERT INTO ledger(src, dst, amount) VALUES({a}, {b}, {amount});\n"
                ));
                if rng.random_ratio(1, 8) {
                    let row = rng.random_range(1..=PADDING_ROWS);
                    let stamp: u32 = rng.random();
                    batch.push_str(&format!(
                        "UPDATE padding SET pad = printf('%08d %08x', id, {stamp}) WHERE id = {row};\n"
                    ));
                }
                batch.push_str(&format!(
                    "UPDATE accounts SET balance = balance + {amount} WHERE id = {b};\nCOMMIT;\n"
                ));
                transfers += 1;
            }
            if stdin.write_all(batch.as_bytes()).is_err() {
                break; // the writer died: its stderr says why
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        transfers // dropping stdin ends the writer
    });
    Writer { child, feeder }
}

/// Wait for a writer (after `stop`): it must have exited 0 without a word. Returns its transfers.
fn finish_writer(name: &str, w: Writer, p: &mut Problems) -> u64 {
    let transfers = w.feeder.join().unwrap();
    let out = w.child.wait_with_output().unwrap();
    p.check(out.status.success() && out.stderr.is_empty(), || {
        format!(
            "the {name} writer failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    transfers
}

// ------------------------------------------------------------------------------------------------

// Checks
// ------------------------------------------------------------------------------------------------

/// Appended to a snapshot's SQL: accounts, their sum, and balances that disagree with the ledger.
const CHECK_SQL: &str = "
SELECT 'CHECK', count(*), sum(balance),
  (SELECT count(*) FROM accounts a LEFT JOIN
     (SELECT id, sum(d) AS s FROM
        (SELECT src AS id, -amount AS d FROM ledger UNION ALL SELECT dst, amount FROM ledger)
      GROUP BY id) l USING (id)
   WHERE a.balance != 1000 + coalesce(l.s, 0))
FROM accounts;
";

/// `git archive COMMIT | tar -xO | sqlite3 :memory:` plus `CHECK_SQL`: the bank must be whole.
fn check_commit(env: &TestEnv, gitdir: &Path, commit: &str) -> Result<(), String> {
    let mut archive = env
        .command("git")
        .arg("-C")
        .arg(gitdir)
        .args(["archive", "--format=tar", commit])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tar = env
        .command("tar")
        .arg("-xO")
        .stdin(archive.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tar_out = tar.wait_with_output().unwrap();
    let archived = archive.wait_with_output().unwrap();
    if !archived.status.success() || !tar_out.status.success() {
        return Err(format!(
            "{commit}: git archive | tar failed: {} {}",
            String::from_utf8_lossy(&archived.stderr),
            String::from_utf8_lossy(&tar_out.stderr)
        ));
    }
    let mut script = tar_out.stdout;
    script.extend_from_slice(CHECK_SQL.as_bytes());
    let run = env.sqlite3_args(&["-bail"], Path::new(":memory:"), &script);
    let want = format!("CHECK|{ACCOUNTS}|{}|0", ACCOUNTS * START_BALANCE);
    let out = run.stdout_str();
    if run.code() != Some(0) || !run.stderr().is_empty() || out.trim() != want {
        return Err(format!(
            "{commit}: restored bank is wrong: want {want:?}, got {:?} (exit {:?}, stderr {:?})",
            out.trim(),
            run.code(),
            run.stderr_str()
        ));
    }
    Ok(())
}

/// Check every commit on two threads; the failures.
fn check_commits(env: &TestEnv, gitdir: &Path, commits: &[String]) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(c) = commits.get(i) else { break };
                    if let Err(e) = check_commit(env, gitdir, c) {
                        failures.lock().unwrap().push(e);
                    }
                }
            });
        }
    });
    failures.into_inner().unwrap()
}

/// Paths under `root` (and `root`) that group or other can access.
fn not_private(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mode = std::fs::metadata(root).unwrap().permissions().mode();
    if mode & 0o077 != 0 {
        out.push(format!("{} ({:o})", root.display(), mode & 0o7777));
    }
    for (rel, (mode, _)) in tree_state(root) {
        if mode & 0o077 != 0 {
            out.push(format!("{}/{rel} ({:o})", root.display(), mode & 0o7777));
        }
    }
    out
}

fn lines(s: String) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

fn percentile(v: &[u64], p: usize) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) * p / 100)
        .copied()
        .unwrap_or(0)
}

/// `sh -c 'umask 022; exec sqlgit ARGS'`: sqlgit must make its files private itself.
fn sqlgit_umask022(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut cmd = env.command("sh");
    cmd.args([
        "-c",
        "umask 022; exec \"$@\"",
        "sh",
        env!("CARGO_BIN_EXE_sqlgit"),
    ])
    .args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let (run, hung) = run_limited(env, cmd, Duration::from_secs(60));
    if hung {
        run.fail("hung");
    }
    run
}
