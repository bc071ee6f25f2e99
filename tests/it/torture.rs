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
// The snapshot loop
// ------------------------------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    runs: u64,
    ok: u64,
    push_failed: u64,
    killed: u64,
    /// Runs picked for a kill that had finished before it.
    kill_too_late: u64,
    /// Where the killed runs were, judged from the refs they left.
    killed_before_commit: u64,
    killed_after_commit: u64,
    killed_after_push: u64,
    kill_ms: Vec<u64>,
    ok_ms: Vec<u64>,
    /// Commit ids printed by runs that exited 0 (committed and pushed to both remotes).
    confirmed: Vec<String>,
    /// Commit ids printed by any run (exit 0 or a failed push).
    printed: Vec<String>,
    unexpected: Vec<String>,
}

fn first_commit_id(stdout: &str) -> Option<String> {
    let word = stdout.lines().next()?.split_whitespace().next()?;
    (word.len() == 40 && word.bytes().all(|b| b.is_ascii_hexdigit())).then(|| word.to_string())
}

fn rev(env: &TestEnv, repo: &Path, name: &str) -> Option<String> {
    let mut cmd = env.command("git");
    cmd.arg("-C")
        .arg(repo)
        .args(["rev-parse", "--verify", "--quiet", name]);
    let run = env.run(cmd, b"");
    (run.code() == Some(0)).then(|| run.stdout_str().trim().to_string())
}

fn snapshot_loop(env: &TestEnv, bank: &Bank, deadline: Instant, seed: u64) -> Stats {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut st = Stats::default();
    while Instant::now() < deadline {
        let started = Instant::now();
        let kill_after = rng
            .random_ratio(1, 3)
            .then(|| Duration::from_millis(rng.random_range(0..=800)));
        let main_before = rev(env, &bank.repo, "refs/heads/main");
        let mut cmd = env.sqlgit_cmd(&bank.snapshot_args());
        cmd.process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start sqlgit");
        let out_t = reader(child.stdout.take().unwrap());
        let err_t = reader(child.stderr.take().unwrap());
        let mut hung = false;
        let mut sent_kill = false;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            let elapsed = started.elapsed();
            if !sent_kill && kill_after.is_some_and(|k| elapsed >= k) {
                sent_kill = kill_group(child.id());
            }
            if elapsed > HANG && !hung {
                hung = true;
                kill_group(child.id());
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&out_t.join().unwrap()).into_owned();
        let stderr = String::from_utf8_lossy(&err_t.join().unwrap()).into_owned();
        st.runs += 1;
        let printed = first_commit_id(&stdout);
        if let Some(id) = &printed {
            st.printed.push(id.clone());
        }
        let show = || {
            format!(
                "{} run {}: {status}, stdout {stdout:?}, stderr {stderr:?}",
                bank.name, st.runs
            )
        };
        if hung {
            st.unexpected
                .push(format!("hung for more than {HANG:?}: {}", show()));
        } else if status.signal() == Some(libc::SIGKILL) && sent_kill {
            st.killed += 1;
            st.kill_ms.push(took.as_millis() as u64);
            let main_after = rev(env, &bank.repo, "refs/heads/main");
            let confirmed = rev(env, &bank.repo, "refs/remotes/history/main");
            if main_after == main_before {
                st.killed_before_commit += 1;
            } else if confirmed != main_after {
                st.killed_after_commit += 1;
            } else {
                st.killed_after_push += 1;
            }
        } else {
            if kill_after.is_some() {
                st.kill_too_late += 1;
            }
            match status.code() {
                Some(0) => {
                    st.ok += 1;
                    st.ok_ms.push(took.as_millis() as u64);
                    if let Some(id) = printed {
                        st.confirmed.push(id);
                    }
                    if !stderr.is_empty() {
                        st.unexpected
                            .push(format!("exit 0 with stderr: {}", show()));
                    }
                }
                // The git daemon is down now and then: the history push may fail, nothing else.
                Some(1)
                    if stderr.lines().count() == 1
                        && stderr.starts_with("sqlgit: push to history remote ") =>
                {
                    st.push_failed += 1;
                }
                _ => st.unexpected.push(show()),
            }
        }
        let next = started + Duration::from_secs(1);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    st
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

#[test]
fn torture_short() {
    let secs: u64 = std::env::var("SQLGIT_TORTURE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let seed: u64 = std::env::var("SQLGIT_TORTURE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2026);
    let env = TestEnv::new();
    let mut daemon = GitDaemon::start_in(env.path("srv"));
    let creds = ("torture", "Latest-Pw-31337");
    let http = HttpGit::start_in(env.path("web"), creds.0, creds.1);
    let banks = [
        Bank::new(&env, "wal", "WAL", &daemon, &http, creds),
        Bank::new(&env, "rollback", "DELETE", &daemon, &http, creds),
    ];

    // The first snapshot, clean: the size every later one is measured against.
    let mut first_size = Vec::new();
    for bank in &banks {
        let (run, hung) = run_limited(&env, env.sqlgit_cmd(&bank.snapshot_args()), HANG);
        if hung || run.code() != Some(0) {
            run.fail("the first snapshot failed");
        }
        first_size.push(dir_size(&bank.repo));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<Writer> = banks
        .iter()
        .enumerate()
        .map(|(i, b)| start_writer(&env, &b.db, seed + i as u64, stop.clone()))
        .collect();

    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut outages = 0u32;
    let mut down = Duration::ZERO;
    let stats: Vec<Stats> = std::thread::scope(|s| {
        let loops: Vec<_> = banks
            .iter()
            .enumerate()
            .map(|(i, bank)| {
                let env = &env;
                s.spawn(move || snapshot_loop(env, bank, deadline, seed * 1000 + i as u64))
            })
            .collect();
        // Meanwhile: outages of the git daemon (the history remote).
        let mut rng = StdRng::seed_from_u64(seed ^ 0xdead);
        loop {
            let up = Duration::from_millis(rng.random_range(2000..8000));
            std::thread::sleep(up.min(deadline.saturating_duration_since(Instant::now())));
            if Instant::now() >= deadline {
                break;
            }
            daemon.stop();
            outages += 1;
            let t = Instant::now();
            let length = Duration::from_millis(rng.random_range(1000..4000));
            std::thread::sleep(length.min(deadline.saturating_duration_since(Instant::now())));
            daemon.start();
            down += t.elapsed();
        }
        loops.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(daemon.is_running());

    let mut p = Problems::default();
    stop.store(true, Ordering::Relaxed);
    let transfers: Vec<u64> = writers
        .into_iter()
        .zip(&banks)
        .map(|(w, b)| finish_writer(b.name, w, &mut p))
        .collect();

    let mut verified = Vec::new();
    for ((bank, st), first) in banks.iter().zip(&stats).zip(&first_size) {
        for u in st.unexpected.iter().take(5) {
            p.push(format!("unexpected run result: {u}"));
        }
        if st.unexpected.len() > 5 {
            p.push(format!(
                "{}: {} more unexpected run results",
                bank.name,
                st.unexpected.len() - 5
            ));
        }
        // One clean run, configured only by what the repository remembered.
        let mut cmd = env.sqlgit_cmd(&[
            OsStr::new("snapshot"),
            OsStr::new("--repo"),
            bank.repo.as_os_str(),
        ]);
        cmd.env("SQLGIT_TEST_FINAL", "1");
        // The URL's password was used by the runs that gave it, never saved: it comes from the
        // environment, as cron would give it.
        cmd.env("SQLGIT_HTTPS_TOKEN", creds.1);
        let (run, hung) = run_limited(&env, cmd, HANG);
        if hung || run.code() != Some(0) || !run.stderr().is_empty() {
            p.push(format!(
                "{}: the clean run after the torture failed: {} {}",
                bank.name,
                run.output.status,
                run.stderr_str()
            ));
        }
        let mut confirmed = st.confirmed.clone();
        confirmed.extend(first_commit_id(&run.stdout_str()));

        for (what, dir) in [
            ("local", &bank.repo),
            ("history", &bank.history_dir),
            ("latest", &bank.latest_dir),
        ] {
            if let Some(e) = fsck_problems(&env, dir) {
                p.push(format!("{} {what}: {e}", bank.name));
            }
        }
        let head = rev(&env, &bank.repo, "refs/heads/main").unwrap_or_default();
        let history_head = rev(&env, &bank.history_dir, "refs/heads/main").unwrap_or_default();
        p.check(head == history_head, || {
            format!(
                "{}: local main {head} but history remote main {history_head}",
                bank.name
            )
        });
        let latest_commits = lines(git_out(&env, &bank.latest_dir, &["rev-list", "main"]));
        let latest_tree = rev(&env, &bank.latest_dir, "main^{tree}");
        let head_tree = rev(&env, &bank.repo, "main^{tree}");
        p.check(latest_commits.len() == 1, || {
            format!(
                "{}: the latest remote has {} commits",
                bank.name,
                latest_commits.len()
            )
        });
        p.check(latest_tree.is_some() && latest_tree == head_tree, || {
            format!(
                "{}: latest remote tree {latest_tree:?} != local head tree {head_tree:?}",
                bank.name
            )
        });

        // Every commit on the history remote restores to a consistent bank.
        let history = lines(git_out(&env, &bank.history_dir, &["rev-list", "main"]));
        let parents = lines(git_out(
            &env,
            &bank.history_dir,
            &["rev-list", "--parents", "main"],
        ));
        p.check(parents.iter().all(|l| l.split(' ').count() <= 2), || {
            format!(
                "{}: the history remote is not a single line of commits",
                bank.name
            )
        });
        for e in check_commits(&env, &bank.history_dir, &history) {
            p.push(format!("{} history: {e}", bank.name));
        }
        verified.push(history.len());

        // Nothing printed (let alone confirmed) is missing from the history remote.
        let on_remote: HashSet<&String> = history.iter().collect();
        for id in &confirmed {
            p.check(on_remote.contains(id), || {
                format!(
                    "{}: confirmed commit {id} is not on the history remote",
                    bank.name
                )
            });
        }
        for id in &st.printed {
            p.check(on_remote.contains(id), || {
                format!("{}: committed {id} is not on the history remote", bank.name)
            });
        }

        // Local history: the newest KEEP commits; size bounded; private.
        let local = lines(git_out(&env, &bank.repo, &["rev-list", "main"]));
        p.check(local.len() == KEEP.min(history.len()), || {
            format!(
                "{}: local history has {} commits, want {}",
                bank.name,
                local.len(),
                KEEP.min(history.len())
            )
        });
        p.check(history.starts_with(&local), || {
            format!(
                "{}: local history is not the newest of the remote's",
                bank.name
            )
        });
        let size = dir_size(&bank.repo);
        p.check(size < 20 * first, || {
            format!(
                "{}: the repository grew from {first} to {size} bytes",
                bank.name
            )
        });
        for path in not_private(&bank.repo) {
            p.push(format!("{}: group/other can access {path}", bank.name));
        }
        // The head is the final database, exactly.
        let dump = env.sqlgit(&[OsStr::new("dump"), bank.db.as_os_str()]);
        let cat = env.sqlgit(&[
            OsStr::new("cat"),
            OsStr::new("--repo"),
            bank.repo.as_os_str(),
        ]);
        p.check(
            dump.code() == Some(0) && cat.code() == Some(0) && dump.stdout() == cat.stdout(),
            || {
                format!(
                    "{}: the head is not the final database (dump: {} {} bytes, cat: {} {} bytes)",
                    bank.name,
                    dump.output.status,
                    dump.stdout().len(),
                    cat.output.status,
                    cat.stdout().len()
                )
            },
        );

        eprintln!(
            "torture {}: {} runs: {} ok, {} push failed, {} killed ({} before the commit, {} after \
             the commit, {} after the history push; kill delays p10/p50/p90 {}/{}/{} ms; {} more \
             finished before their kill), {} unexpected; ok runs p50/p90 {}/{} ms; {} commits \
             printed, {} confirmed; repository {} KiB after the first snapshot, {} KiB at the end",
            bank.name,
            st.runs,
            st.ok,
            st.push_failed,
            st.killed,
            st.killed_before_commit,
            st.killed_after_commit,
            st.killed_after_push,
            percentile(&st.kill_ms, 10),
            percentile(&st.kill_ms, 50),
            percentile(&st.kill_ms, 90),
            st.kill_too_late,
            st.unexpected.len(),
            percentile(&st.ok_ms, 50),
            percentile(&st.ok_ms, 90),
            st.printed.len(),
            confirmed.len(),
            first / 1024,
            size / 1024,
        );
    }
    let total = |f: fn(&Stats) -> u64| stats.iter().map(f).sum::<u64>();
    eprintln!(
        "torture: {secs} s, seed {seed}: {} snapshots ({} ok), {} kills, {} outages ({:.1} s down), \
         {} commits verified on the history remotes ({}), {} transfers ({})",
        total(|s| s.runs),
        total(|s| s.ok),
        total(|s| s.killed),
        outages,
        down.as_secs_f64(),
        verified.iter().sum::<usize>(),
        banks
            .iter()
            .zip(&verified)
            .map(|(b, n)| format!("{} {n}", b.name))
            .collect::<Vec<_>>()
            .join(", "),
        transfers.iter().sum::<u64>(),
        banks
            .iter()
            .zip(&transfers)
            .map(|(b, n)| format!("{} {n}", b.name))
            .collect::<Vec<_>>()
            .join(", "),
    );
    // The run must have tortured something.
    p.check(total(|s| s.killed) >= 3, || {
        "fewer than 3 runs were killed".into()
    });
    p.check(secs < 20 || outages >= 2, || {
        format!("only {outages} outages")
    });
    p.check(stats.iter().all(|s| s.ok >= 3), || {
        "fewer than 3 clean runs per bank".into()
    });
    p.finish();
}

// ------------------------------------------------------------------------------------------------
// Security
// ------------------------------------------------------------------------------------------------

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

#[test]
fn security_created_files_are_private() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    daemon.create_bare("history");
    let http = HttpGit::start_in(env.path("web"), "alice", "Pw-1");
    http.create_bare("latest");
    env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
          INSERT INTO t(v) VALUES ('private'), ('data');\n",
    );
    let history = daemon.url("history");
    let latest = http.url_with_credentials("latest", "alice", "Pw-1");
    let unreachable = format!("git://127.0.0.1:{}/x.git", crate::servers::free_port());
    let runs: Vec<(Vec<&str>, bool)> = vec![
        (
            vec![
                "snapshot",
                "app.db",
                "--repo",
                "app.sqlgit",
                "--metrics-file",
                "metrics.prom",
                "--history-remote",
                &history,
                "--latest-remote",
                &latest,
                "--keep",
                "1",
            ],
            true,
        ),
        (
            vec!["snapshot", "app.db", "--repo", "nested/deeper/app.sqlgit"],
            true,
        ),
        (vec!["dump", "app.db", "-o", "out.sql"], true),
        (vec!["dump", "app.db", "-o", "out.sql.gz"], true),
        (vec!["dump", "app.db", "-o", "out.sql.zst"], true),
        (vec!["cat", "--repo", "app.sqlgit", "-o", "cat.sql"], true),
        (
            vec!["cat", "--repo", "app.sqlgit", "-o", "cat.sql.gz"],
            true,
        ),
        (
            vec!["restore", "--repo", "app.sqlgit", "--to", "restored.db"],
            true,
        ),
        (
            vec![
                "restore",
                "--repo",
                "app.sqlgit",
                "--to",
                "restored.db",
                "--force",
            ],
            true,
        ),
        (
            vec![
                "restore",
                "--from-file",
                "out.sql.gz",
                "--to",
                "restored2.db",
            ],
            true,
        ),
        // The saved-aside copy of the old content.
        (
            vec!["restore", "--repo", "app.sqlgit", "--into", "restored.db"],
            true,
        ),
        (
            vec![
                "init",
                "--repo",
                "init.sqlgit",
                "--db",
                "app.db",
                "--metrics-file",
                "m2.prom",
            ],
            true,
        ),
        (vec!["snapshot", "--repo", "init.sqlgit"], true),
        (vec!["push", "--repo", "app.sqlgit"], true),
        (vec!["prune", "--repo", "app.sqlgit", "--keep", "1"], true),
        (vec!["verify", "--repo", "app.sqlgit"], true),
        (vec!["status", "--repo", "app.sqlgit", "--json"], true),
        // A failed run writes the state and metrics files too.
        (
            vec![
                "snapshot",
                "app.db",
                "--repo",
                "app.sqlgit",
                "--history-remote",
                &unreachable,
            ],
            false,
        ),
    ];
    let mut p = Problems::default();
    let ours = |path: &str| {
        !(path.starts_with("srv") || path.starts_with("web") || path.starts_with("app.db"))
    };
    for (args, ok) in runs {
        let before = tree_state(env.root());
        // URL passwords are never saved: later runs get it from the environment.
        let run = sqlgit_umask022(&env, &args, &[("SQLGIT_HTTPS_TOKEN", "Pw-1")]);
        if (run.code() == Some(0)) != ok {
            run.fail(if ok {
                "expected success"
            } else {
                "expected failure"
            });
        }
        let after = tree_state(env.root());
        for (path, (mode, bytes)) in &after {
            let is_new = before.get(path).map(|(m, b)| (m, b)) != Some((mode, bytes));
            if is_new && ours(path) && mode & 0o077 != 0 {
                p.push(format!(
                    "`sqlgit {}` (umask 022) left {path} with mode {:o}",
                    args.join(" "),
                    mode & 0o7777
                ));
            }
        }
    }
    for name in [
        "metrics.prom",
        "m2.prom",
        "app.sqlgit/sqlgit-state.json",
        "app.sqlgit/config",
    ] {
        p.check(env.path(name).exists(), || {
            format!("{name} was not created")
        });
    }
    p.finish();
}

#[test]
fn security_credentials_never_leak() {
    let env = TestEnv::new();
    // Latest: Basic auth from the URL's userinfo. History: a token from SQLGIT_HTTPS_TOKEN.
    let url_server = HttpGit::start_in(env.path("web1"), "alice", "UrlSecret4711");
    url_server.create_bare("latest");
    let token_server = HttpGit::start_in(env.path("web2"), "sqlgit", "TokenSecret0815");
    token_server.create_bare("history");
    let latest = url_server.url_with_credentials("latest", "alice", "UrlSecret4711");
    let history = token_server.url("history");
    env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO t(v) VALUES ('a');\n",
    );
    let token = ("SQLGIT_HTTPS_TOKEN", "TokenSecret0815");
    let hooks = [
        "--on-success",
        "env > hook-success.env",
        "--on-failure",
        "env > hook-failure.env",
        "--metrics-file",
        "metrics.prom",
    ];
    let mut outputs: Vec<(String, String)> = Vec::new();
    let mut keep = |what: String, run: &Run| {
        outputs.push((format!("stdout of {what}"), run.stdout_str()));
        outputs.push((format!("stderr of {what}"), run.stderr_str()));
    };
    let mut args = vec![
        "snapshot",
        "app.db",
        "--repo",
        "app.sqlgit",
        "--latest-remote",
        &latest,
        "--history-remote",
        &history,
    ];
    args.extend(hooks);
    let run = sqlgit_umask022(&env, &args, &[token]);
    if run.code() != Some(0) {
        run.fail("the snapshot with both credentials failed");
    }
    keep("the first snapshot".into(), &run);
    env.sqlite3(env.path("app.db"), "INSERT INTO t(v) VALUES ('b');")
        .success();
    // The latest remote's password is never saved: cron gives the URL with it every run.
    let run = sqlgit_umask022(
        &env,
        &[
            "snapshot",
            "--repo",
            "app.sqlgit",
            "--latest-remote",
            &latest,
        ],
        &[token],
    );
    if run.code() != Some(0) {
        run.fail("the configured snapshot failed");
    }
    keep("the second snapshot".into(), &run);
    assert!(
        env.path("hook-success.env").exists(),
        "the success hook did not run"
    );
    // Failures: a wrong token, and a wrong password in the URL.
    env.sqlite3(env.path("app.db"), "INSERT INTO t(v) VALUES ('c');")
        .success();
    let run = sqlgit_umask022(
        &env,
        &["snapshot", "--repo", "app.sqlgit"],
        &[("SQLGIT_HTTPS_TOKEN", "WrongToken999")],
    );
    if run.code() != Some(1) {
        run.fail("a wrong token must fail the run");
    }
    keep("the run with a wrong token".into(), &run);
    let wrong = url_server.url_with_credentials("latest", "alice", "WrongUrlPw123");
    let run = sqlgit_umask022(
        &env,
        &["push", "--repo", "app.sqlgit", "--latest-remote", &wrong],
        &[token],
    );
    if run.code() != Some(1) {
        run.fail("a wrong password must fail the push");
    }
    keep("the push with a wrong password".into(), &run);
    let run = sqlgit_umask022(
        &env,
        &["snapshot", "--repo", "app.sqlgit"],
        &[("SQLGIT_HTTPS_TOKEN", "WrongToken999")],
    );
    keep("the second run with a wrong token".into(), &run);
    assert!(
        env.path("hook-failure.env").exists(),
        "the failure hook did not run"
    );
    for args in [
        vec!["log", "--repo", "app.sqlgit"],
        vec!["log", "--repo", "app.sqlgit", "--json"],
        vec!["status", "--repo", "app.sqlgit"],
        vec!["status", "--repo", "app.sqlgit", "--json"],
    ] {
        let run = sqlgit_umask022(&env, &args, &[token]);
        keep(format!("sqlgit {}", args.join(" ")), &run);
    }

    let read = |p: &str| std::fs::read_to_string(env.path(p)).unwrap_or_default();
    outputs.push((
        "the state file".into(),
        read("app.sqlgit/sqlgit-state.json"),
    ));
    outputs.push(("the metrics file".into(), read("metrics.prom")));
    outputs.push((
        "the success hook's environment".into(),
        read("hook-success.env"),
    ));
    outputs.push((
        "the failure hook's environment".into(),
        read("hook-failure.env"),
    ));
    for (what, dir) in [
        ("local", env.path("app.sqlgit")),
        ("latest remote", url_server.repo_path("latest")),
        ("history remote", token_server.repo_path("history")),
    ] {
        outputs.push((
            format!("commit messages ({what})"),
            git_out(
                &env,
                &dir,
                &["log", "--all", "--format=%H %an %ae %cn %ce%n%B"],
            ),
        ));
    }
    // Every file of the repository that is not compressed (objects are checked via git log).
    for (rel, (_, bytes)) in tree_state(&env.path("app.sqlgit")) {
        if rel.starts_with("objects/") || rel == "config" {
            continue;
        }
        if let Some(bytes) = bytes {
            outputs.push((
                format!("app.sqlgit/{rel}"),
                String::from_utf8_lossy(&bytes).into(),
            ));
        }
    }
    let secrets = [
        "UrlSecret4711",
        "TokenSecret0815",
        "WrongToken999",
        "WrongUrlPw123",
        // What a Basic auth header would carry: base64("alice:UrlSecret4711").
        "YWxpY2U6VXJsU2VjcmV0NDcxMQ",
    ];
    let mut p = Problems::default();
    for (what, text) in &outputs {
        for s in secrets {
            p.check(!text.contains(s), || {
                format!("{s:?} appears in {what}:\n{text}")
            });
        }
    }
    let hook_env = read("hook-success.env");
    p.check(hook_env.contains("SQLGIT_RESULT=success"), || {
        format!("the hook environment lacks SQLGIT_RESULT:\n{hook_env}")
    });
    p.check(!hook_env.contains("SQLGIT_HTTPS_TOKEN"), || {
        "the hook sees SQLGIT_HTTPS_TOKEN".into()
    });
    // The URL is stored in the config (documented): private.
    let config = env.path("app.sqlgit/config");
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o7777;
    p.check(mode == 0o600, || {
        format!("app.sqlgit/config has mode {mode:o}, want 600")
    });
    p.finish();
}

/// Tables whose names try to leave the tree or make a `.git` path.
const HOSTILE_TABLES: &[&str] = &[
    "../../x",
    "..",
    ".",
    "a/b",
    "a%2Fb",
    "/etc/passwd",
    ".git",
    ".GiT ",
    ".git/config",
    ".git.",
    "git~1",
    "x\ny",
    "..\\..\\y",
    "a\\b",
    "%2e%2e",
    " ",
    "tab\there",
    "-rf",
    "0-create.sql",
    "1-rows",
];

#[test]
fn security_table_names_stay_inside_the_tree() {
    let env = TestEnv::new();
    let db = env.path("hostile.db");
    let conn = Connection::open(&db).unwrap();
    for (i, name) in HOSTILE_TABLES.iter().enumerate() {
        let q = format!("\"{}\"", name.replace('"', "\"\""));
        conn.execute_batch(&format!(
            "CREATE TABLE {q}(id INTEGER PRIMARY KEY, v TEXT);
             INSERT INTO {q} VALUES ({i}, 'row of table {i}');"
        ))
        .unwrap();
    }
    drop(conn);
    let listing_before = crate::env::list_dir(env.root());
    let run = env.sqlgit(&["snapshot", "hostile.db", "--repo", "hostile.sqlgit"]);
    let run = run.success();
    let _ = run;
    let repo = env.path("hostile.sqlgit");
    let mut p = Problems::default();
    let out = {
        let mut cmd = env.command("git");
        cmd.arg("-C")
            .arg(&repo)
            .args(["ls-tree", "-r", "-z", "--name-only", "main"]);
        env.run(cmd, b"").success().stdout().to_vec()
    };
    let paths: Vec<String> = out
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let mut table_dirs = std::collections::BTreeSet::new();
    for path in &paths {
        p.check(!path.starts_with('/'), || {
            format!("absolute path in the tree: {path:?}")
        });
        for part in path.split('/') {
            let lower = part.to_lowercase();
            let trimmed = lower.trim_end_matches(['.', ' ']);
            p.check(
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && trimmed != ".git"
                    && lower != "git~1",
                || format!("dangerous path component {part:?} in {path:?}"),
            );
            p.check(
                !part.contains('\\') && !part.bytes().any(|b| b.is_ascii_control()),
                || format!("backslash or control character in {path:?}"),
            );
        }
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() >= 3 && parts[1] == "1-tables" {
            table_dirs.insert(parts[2].to_string());
        }
    }
    p.check(table_dirs.len() == HOSTILE_TABLES.len(), || {
        format!(
            "{} tables but {} table folders: {table_dirs:?}",
            HOSTILE_TABLES.len(),
            table_dirs.len()
        )
    });
    if let Some(e) = fsck_problems(&env, &repo) {
        p.push(e);
    }
    // Plain git restores it, and so does sqlgit; nothing was written outside.
    let restored = env.path("restored.db");
    env.sqlgit(&["restore", "--repo", "hostile.sqlgit", "--to", "restored.db"])
        .success();
    compare_databases(&db, &restored);
    let extract = env.path("extract");
    std::fs::create_dir(&extract).unwrap();
    let mut cmd = env.command("sh");
    cmd.args([
        "-c",
        "git -C hostile.sqlgit archive --format=tar main | tar -x -C extract",
    ]);
    env.run(cmd, b"").success();
    let mut listing = crate::env::list_dir(env.root());
    listing.retain(|n| !["hostile.sqlgit", "restored.db", "extract"].contains(&n.as_str()));
    p.check(listing == listing_before, || {
        format!("files appeared outside: {listing:?} (before: {listing_before:?})")
    });
    let mut extracted: Vec<String> = tree_state(&extract).into_keys().collect();
    extracted.retain(|k| !k.ends_with('/'));
    p.check(extracted.len() == paths.len(), || {
        format!(
            "the tree has {} files, the archive extracts {}",
            paths.len(),
            extracted.len()
        )
    });
    p.finish();
}

#[test]
fn security_no_database_content_reaches_a_shell() {
    let env = TestEnv::new();
    // A logging `sh` first on PATH: every shell sqlgit starts is recorded with its arguments.
    let bin = env.path("fakebin");
    std::fs::create_dir(&bin).unwrap();
    let log = env.path("sh.log");
    std::fs::write(
        bin.join("sh"),
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\036' \"$a\" >> '{}'; done\nprintf '\\n' >> '{}'\nexec /bin/sh \"$@\"\n",
            log.display(),
            log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let payloads = [
        "$(touch PWNED1)",
        "`touch PWNED2`",
        "'; touch PWNED3; '",
        "\"; touch PWNED4; \"",
        "; touch PWNED5 #",
        "\n touch PWNED6\n",
        "$(touch${IFS}PWNED7)",
    ];
    let db = env.path("inject.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);
         CREATE TABLE \"$(touch PWNED_TABLE)\"(\"`touch PWNED_COLUMN`\" TEXT);
         INSERT INTO \"$(touch PWNED_TABLE)\" VALUES ('$(touch PWNED_VALUE)');",
    )
    .unwrap();
    for (i, s) in payloads.iter().enumerate() {
        conn.execute("INSERT INTO notes VALUES (?1, ?2)", (i as i64, s))
            .unwrap();
    }
    drop(conn);
    let ok_hook = "printf '%s|%s|%s|%s|%s\\n' \"$SQLGIT_COMMIT\" \"$SQLGIT_REPO\" \"$SQLGIT_TABLES\" \"$SQLGIT_ROWS\" \"$SQLGIT_ERROR\" >> hook.out; echo $SQLGIT_ERROR $SQLGIT_REPO >> hook.out; env > hook.env";
    let fail_hook =
        "printf 'failure|%s\\n' \"$SQLGIT_ERROR\" >> hook.out; echo $SQLGIT_ERROR >> hook.out";
    let repo = "repo-$(touch PWNED_REPO)";
    let vars = [("PATH", path.as_str())];
    let mut hooks_run = 0;
    let run = |args: &[&str]| sqlgit_umask022(&env, args, &vars);
    // Success: content and names in the snapshot.
    let r = run(&[
        "snapshot",
        "inject.db",
        "--repo",
        repo,
        "--on-success",
        ok_hook,
        "--on-failure",
        fail_hook,
    ]);
    if r.code() != Some(0) {
        r.fail("snapshot failed");
    }
    hooks_run += 1;
    // Failure: a remote URL and a database name carrying payloads end up in SQLGIT_ERROR.
    let r = run(&[
        "snapshot",
        "inject.db",
        "--repo",
        repo,
        "--history-remote",
        "git://127.0.0.1:1/$(touch PWNED_URL).git",
    ]);
    if r.code() != Some(1) {
        r.fail("the push to port 1 should fail");
    }
    hooks_run += 1;
    let r = run(&[
        "snapshot",
        "$(touch PWNED_DB).db",
        "--repo",
        repo,
        "--history-remote",
        "",
    ]);
    if r.code() != Some(1) {
        r.fail("a missing database should fail");
    }
    hooks_run += 1;
    // A verify (restores through sqlite, never a shell) and a restore.
    run(&["verify", "--repo", repo]).success();
    run(&["restore", "--repo", repo, "--to", "restored.db"]).success();
    compare_databases(&db, &env.path("restored.db"));

    let mut p = Problems::default();
    // No PWNED file anywhere.
    let mut pwned: Vec<String> = tree_state(env.root())
        .into_keys()
        .filter(|k| {
            k.rsplit('/')
                .find(|s| !s.is_empty())
                .is_some_and(|n| n.starts_with("PWNED"))
        })
        .collect();
    if let Ok(cwd) = std::env::current_dir() {
        pwned.extend(
            crate::env::list_dir(&cwd)
                .into_iter()
                .filter(|n| n.starts_with("PWNED")),
        );
    }
    p.check(pwned.is_empty(), || format!("a payload ran: {pwned:?}"));
    // The only shell from PATH is ours (`sh -c 'umask 022; exec …'`): sqlgit runs its hooks
    // (with their own text, the values in the environment) with /bin/sh, never one from PATH.
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    for line in logged.lines() {
        let args: Vec<&str> = line.split('\u{1e}').filter(|a| !a.is_empty()).collect();
        if args.get(1) != Some(&"umask 022; exec \"$@\"") {
            p.push(format!("a shell from PATH ran with {args:?}"));
        }
    }
    let out = std::fs::read_to_string(env.path("hook.out")).unwrap_or_default();
    let failures = out.lines().filter(|l| l.starts_with("failure|")).count();
    let successes = out
        .lines()
        .filter(|l| !l.starts_with("failure|") && l.matches('|').count() == 4)
        .count();
    p.check(failures + successes == hooks_run, || {
        format!(
            "{} hooks ran for {hooks_run} runs; hook.out:\n{out}",
            failures + successes
        )
    });
    p.check(out.contains("PWNED_DB"), || {
        format!("the failure message should reach the hook (as data): {out}")
    });
    p.finish();
}
