//! Tests of `sqlgit snapshot`, `log`, `cat` and `restore` through the real binary, the real
//! `sqlite3` CLI and the real `git` CLI (hermetic: no global or system git config).
//!
//! What is checked, by file (this one holds the helpers they share):
//! - `fixtures`: every fixture database round-trips exactly through `snapshot` + `cat | sqlite3`,
//!   through plain git (`git archive | tar -xO | sqlite3`) and through `restore --to`; the tree has
//!   the documented layout and `git fsck --strict` is clean;
//! - `commits`: an unchanged database makes no commit; `log` reports what the snapshots hold;
//!   chunk stability: one updated / inserted / deleted row touches one (at most two) chunk files,
//!   appended rows touch only the files at the end;
//! - `when_restore`: WHEN resolution: revisions, RFC 3339 times (Z, numeric offsets, local),
//!   durations, and the errors for a time before the first snapshot, an unknown revision and an
//!   unparseable time; restore: refuses to replace a file without `--force`, leaves no stale
//!   `-wal`/`-shm`;
//! - `badinput`: a regular file, a foreign git repository, a missing repository; usage errors; an
//!   empty database file; a database path that is not a regular file;
//! - `lock`: the repository lock (held with the `flock` CLI of util-linux): bounded wait, a killed
//!   holder never blocks the next run;
//! - `kills`: SIGKILL at random moments while a writer commits: fsck clean, every commit restores
//!   to a consistent database, everything private; and SIGKILL aimed at the two fragile moments,
//!   the creation of the repository and the update of `refs/heads/main`: the next run succeeds;
//! - `big`: values of many MiB through every reader; two reading connections write the same tree.
//!
//! `SQLGIT_NOW=<unix seconds>` pins the snapshot time, so histories are built without sleeping.

mod badinput;
mod big;
mod commits;
mod fixtures;
mod kills;
mod lock;
mod when_restore;

use crate::env::{
    FileState, Run, TestEnv, compare_databases, fixtures_dir, kill_group, list_dir, rfc3339,
    sqlite3_bin,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// 2027-01-15T08:00:00Z: the "now" of the first snapshot in tests that pin time.
const T: u64 = 1_800_000_000;

// ------------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------------

/// `git -C DIR ...` with the hermetic environment of `TestEnv`.
fn git_cmd(env: &TestEnv, dir: &Path) -> Command {
    let mut cmd = env.command("git");
    cmd.arg("-C").arg(dir);
    cmd
}

/// Run `git -C DIR ARGS`; must succeed.
#[track_caller]
fn git(env: &TestEnv, dir: &Path, args: &[&str]) -> Run {
    let mut cmd = git_cmd(env, dir);
    cmd.args(args);
    env.run(cmd, b"").success()
}

/// Trimmed stdout of `git -C DIR ARGS`.
#[track_caller]
fn git_str(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    git(env, dir, args).stdout_str().trim().to_string()
}

/// `git fsck --strict` must exit 0 and report no error or warning.
#[track_caller]
fn assert_fsck_clean(env: &TestEnv, repo: &Path) {
    let run = git(
        env,
        repo,
        &["fsck", "--strict", "--no-progress", "--no-dangling"],
    );
    let stderr = run.stderr_str();
    if stderr.lines().any(|l| !l.trim().is_empty()) {
        run.fail("git fsck --strict printed errors or warnings");
    }
}

/// A hermetic `sqlgit ARGS` command with `SQLGIT_NOW` pinned (when given).
fn sqlgit_cmd_at<S: AsRef<OsStr>>(env: &TestEnv, now: Option<u64>, args: &[S]) -> Command {
    let mut cmd = env.sqlgit_cmd(args);
    if let Some(now) = now {
        cmd.env("SQLGIT_NOW", now.to_string());
    }
    cmd
}

/// Run `sqlgit ARGS` with `SQLGIT_NOW` pinned (when given); no assertion.
fn sqlgit_at<S: AsRef<OsStr>>(env: &TestEnv, now: Option<u64>, args: &[S]) -> Run {
    env.run(sqlgit_cmd_at(env, now, args), b"")
}

/// `sqlgit snapshot DB --repo REPO [ARGS]` at `now`; no assertion.
fn snapshot_run(env: &TestEnv, db: &Path, repo: &Path, now: Option<u64>, extra: &[&str]) -> Run {
    let mut args: Vec<&OsStr> = vec![OsStr::new("snapshot"), db.as_os_str()];
    args.extend([OsStr::new("--repo"), repo.as_os_str()]);
    args.extend(extra.iter().map(OsStr::new));
    sqlgit_at(env, now, &args)
}

/// A successful snapshot: `Some(commit id)` when it committed (and `main` now points there),
/// `None` when it said the database was unchanged.
#[track_caller]
fn snapshot(env: &TestEnv, db: &Path, repo: &Path, now: Option<u64>) -> Option<String> {
    let run = snapshot_run(env, db, repo, now, &[])
        .success()
        .assert_quiet();
    let out = run.stdout_str();
    if out.lines().count() != 1 {
        run.fail("snapshot should print exactly one line");
    }
    if out.contains("unchanged") {
        return None;
    }
    let id = out
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        run.fail("snapshot should print the new commit id first");
    }
    let main = git_str(env, repo, &["rev-parse", "refs/heads/main"]);
    assert_eq!(
        main, id,
        "snapshot printed {id} but refs/heads/main is {main}"
    );
    Some(id)
}

/// `snapshot`, which must commit; returns the commit id.
#[track_caller]
fn snapshot_commit(env: &TestEnv, db: &Path, repo: &Path, now: Option<u64>) -> String {
    match snapshot(env, db, repo, now) {
        Some(id) => id,
        None => panic!(
            "snapshot of {} into {} made no commit",
            db.display(),
            repo.display()
        ),
    }
}

/// One entry of `sqlgit log --json`.
#[derive(Debug, Clone)]
struct LogEntry {
    id: String,
    time: String,
    unix: i64,
    summary: String,
    database: Option<String>,
    tables: Option<u64>,
    rows: Option<u64>,
    bytes: Option<u64>,
}

/// `sqlgit log --repo REPO --json`, newest first.
#[track_caller]
fn log_json(env: &TestEnv, repo: &Path) -> Vec<LogEntry> {
    let run = env
        .sqlgit(&[
            OsStr::new("log"),
            OsStr::new("--repo"),
            repo.as_os_str(),
            OsStr::new("--json"),
        ])
        .success()
        .assert_quiet();
    let value: serde_json::Value = serde_json::from_slice(run.stdout())
        .unwrap_or_else(|e| run.fail(&format!("log --json is not JSON: {e}")));
    let array = value
        .as_array()
        .unwrap_or_else(|| run.fail("log --json is not an array"));
    array
        .iter()
        .map(|e| {
            let s = |k: &str| e.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let n = |k: &str| e.get(k).and_then(|v| v.as_u64());
            LogEntry {
                id: s("id").unwrap_or_else(|| run.fail("log entry without a string id")),
                time: s("time").unwrap_or_else(|| run.fail("log entry without a string time")),
                unix: e
                    .get("unix")
                    .and_then(|v| v.as_i64())
                    .unwrap_or_else(|| run.fail("log entry without a numeric unix")),
                summary: s("summary").unwrap_or_else(|| run.fail("log entry without a summary")),
                database: s("database"),
                tables: n("tables"),
                rows: n("rows"),
                bytes: n("bytes"),
            }
        })
        .collect()
}

/// `sqlgit dump DB`.
#[track_caller]
fn dump(env: &TestEnv, db: &Path) -> Vec<u8> {
    env.sqlgit(&[OsStr::new("dump"), db.as_os_str()])
        .success()
        .assert_quiet()
        .output
        .stdout
}

/// `sqlgit cat [WHEN] --repo REPO` at `now`; must succeed quietly.
#[track_caller]
fn cat(env: &TestEnv, repo: &Path, when: Option<&str>, now: Option<u64>) -> Vec<u8> {
    let mut args: Vec<&OsStr> = vec![OsStr::new("cat")];
    if let Some(w) = when {
        args.push(OsStr::new(w));
    }
    args.extend([OsStr::new("--repo"), repo.as_os_str()]);
    sqlgit_at(env, now, &args)
        .success()
        .assert_quiet()
        .output
        .stdout
}

/// `sqlgit restore [WHEN] --repo REPO --to TO [--force]`; no assertion.
fn restore_run(env: &TestEnv, repo: &Path, when: Option<&str>, to: &Path, force: bool) -> Run {
    let mut args: Vec<&OsStr> = vec![OsStr::new("restore")];
    if let Some(w) = when {
        args.push(OsStr::new(w));
    }
    args.extend([
        OsStr::new("--repo"),
        repo.as_os_str(),
        OsStr::new("--to"),
        to.as_os_str(),
    ]);
    if force {
        args.push(OsStr::new("--force"));
    }
    env.run(env.sqlgit_cmd(&args), b"")
}

/// Assert the failure shape every sqlgit error must have: exit `code`, nothing on stdout, exactly
/// one line on stderr starting with `sqlgit: `. Returns the message.
#[track_caller]
fn assert_error_line(run: Run, code: i32) -> String {
    let run = run.code_is(code);
    if !run.stdout().is_empty() {
        run.fail("a failing command wrote to stdout");
    }
    let err = run.stderr_str();
    if !err.starts_with("sqlgit: ") || !err.ends_with('\n') || err.lines().count() != 1 {
        run.fail("expected exactly one stderr line starting with `sqlgit: `");
    }
    err.trim_end().to_string()
}

/// Two byte strings must be equal; shows the first differing line if not.
#[track_caller]
fn assert_same_sql(expected: &[u8], actual: &[u8], what: &str) {
    if expected == actual {
        return;
    }
    let ea: Vec<&[u8]> = expected.split(|&b| b == b'\n').collect();
    let aa: Vec<&[u8]> = actual.split(|&b| b == b'\n').collect();
    let line = ea
        .iter()
        .zip(&aa)
        .position(|(x, y)| x != y)
        .unwrap_or(ea.len().min(aa.len()));
    let show = |v: &Vec<&[u8]>| {
        v.get(line)
            .map(|l| String::from_utf8_lossy(&l[..l.len().min(300)]).into_owned())
            .unwrap_or_else(|| "<end>".into())
    };
    panic!(
        "{what}: SQL differs ({} vs {} bytes), first at line {}:\n  expected: {}\n  actual:   {}",
        expected.len(),
        actual.len(),
        line + 1,
        show(&ea),
        show(&aa)
    );
}

/// Every path of the tree of `rev`, in git's (= dump) order; NUL-separated so that no name is
/// quoted.
#[track_caller]
fn tree_files(env: &TestEnv, repo: &Path, rev: &str) -> Vec<String> {
    let run = git(env, repo, &["ls-tree", "-r", "-z", "--name-only", rev]);
    run.stdout()
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8(p.to_vec()).expect("paths are UTF-8"))
        .collect()
}

/// Paths that differ between two commits (`git diff --name-only A B`, no rename detection).
#[track_caller]
fn changed_paths(env: &TestEnv, repo: &Path, a: &str, b: &str) -> Vec<String> {
    let run = git(
        env,
        repo,
        &["diff", "--no-renames", "--name-only", "-z", a, b],
    );
    run.stdout()
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8(p.to_vec()).unwrap())
        .collect()
}

fn is_hex16(s: &str) -> bool {
    is_hex(s, 16)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `path` (inside the database's folder) has the documented layout.
fn layout_ok(path: &str) -> bool {
    let safe = |t: &str| {
        !t.is_empty()
            && !t.starts_with('.')
            && !t.bytes().any(|b| b.is_ascii_control())
            && !t.contains('\\')
    };
    let chunk = |c: &str| c.strip_suffix(".sql").is_some_and(is_hex16);
    // WITHOUT ROWID tables (format 2): chunks and folders named by position in their folder.
    let by_position = |c: &str| c.strip_suffix(".sql").is_some_and(|c| is_hex(c, 8));
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        [file] => [
            "0-header.sql",
            "2-sqlite_sequence.sql",
            "3-sqlite_stat1.sql",
            "4-views.sql",
            "5-triggers.sql",
            "9-commit.sql",
        ]
        .contains(file),
        [
            "1-tables",
            t,
            "0-create.sql" | "1-schema-fixup.sql" | "2-indexes.sql",
        ] => safe(t),
        ["1-tables", t, "1-rows", c] => safe(t) && (chunk(c) || by_position(c)),
        ["1-tables", t, "1-rows", groups @ .., c] if by_position(c) => {
            safe(t) && groups.iter().all(|g| is_hex(g, 8))
        }
        // Group folders (nested in format 2) are named after their first chunk: every chunk in
        // them sorts at or after them.
        ["1-tables", t, "1-rows", groups @ .., c] if !groups.is_empty() => {
            safe(t)
                && chunk(c)
                && groups.iter().all(|g| is_hex16(g) && &c[..16] >= *g)
                && groups.windows(2).all(|w| w[0] <= w[1])
        }
        _ => false,
    }
}

/// The rowid a `<16 hex>.sql` chunk of a rowid table starts with.
fn chunk_first_rowid(file_name: &str) -> i64 {
    let hex = file_name.strip_suffix(".sql").expect("chunk file name");
    (u64::from_str_radix(hex, 16).expect("hex chunk name") ^ (1 << 63)) as i64
}

/// Every file of `rev` is small: at most 1 MiB plus the row that crossed it, unless it is a chunk
/// holding one single (huge) row; and never more than a few MB whatever the rows.
#[track_caller]
fn assert_files_small(env: &TestEnv, repo: &Path, rev: &str) {
    let listing = git(env, repo, &["ls-tree", "-r", "-l", "-z", rev]);
    for entry in listing
        .stdout()
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
    {
        let text = String::from_utf8_lossy(entry).into_owned();
        let size: u64 = text.split_whitespace().nth(3).unwrap().parse().unwrap();
        assert!(
            size <= 8 << 20,
            "{text}: a file of {size} bytes in the snapshot"
        );
        if size > 3 << 19 {
            let oid = text.split_whitespace().nth(2).unwrap();
            let blob = git(env, repo, &["cat-file", "blob", oid]).output.stdout;
            let statements = blob.windows(9).filter(|w| w == b");\nINSERT").count();
            assert_eq!(statements, 0, "{text}: {size} bytes holding several rows");
        }
    }
}

/// Recursive content of a directory (mode and bytes of every entry), to prove nothing changed.
fn dir_state(root: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if meta.is_dir() {
                stack.push(path);
                out.insert(rel, (meta.permissions().mode(), Vec::new()));
            } else {
                out.insert(
                    rel,
                    (meta.permissions().mode(), std::fs::read(&path).unwrap()),
                );
            }
        }
    }
    out
}

#[track_caller]
fn assert_dir_unchanged(before: &BTreeMap<PathBuf, (u32, Vec<u8>)>, dir: &Path, what: &str) {
    let after = dir_state(dir);
    for (path, state) in &after {
        match before.get(path) {
            None => panic!(
                "{what}: {} was created in {}",
                path.display(),
                dir.display()
            ),
            Some(old) if old != state => {
                panic!("{what}: {} changed in {}", path.display(), dir.display())
            }
            _ => {}
        }
    }
    for path in before.keys() {
        assert!(
            after.contains_key(path),
            "{what}: {} was removed from {}",
            path.display(),
            dir.display()
        );
    }
}

/// Every file and directory under `root` (and `root` itself) is private to its owner.
#[track_caller]
fn assert_private(root: &Path) {
    let mode = std::fs::metadata(root).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077,
        0,
        "{} has mode {:o}: group/other can access it",
        root.display(),
        mode & 0o7777
    );
    for (rel, (mode, _)) in dir_state(root) {
        assert_eq!(
            mode & 0o077,
            0,
            "{} has mode {:o}: group/other can access it",
            root.join(rel).display(),
            mode & 0o7777
        );
    }
}

/// `secs` written as local time in a zone `offset` seconds east of UTC, without the zone.
fn local_form(secs: u64, offset: i64) -> String {
    let shifted = (secs as i64 + offset) as u64;
    let s = rfc3339(shifted); // "2027-01-15T08:00:00Z"
    s.trim_end_matches('Z').to_string()
}

/// Run `sqlite3 DB` on a script; must succeed quietly.
#[track_caller]
fn sql(env: &TestEnv, db: &Path, script: &str) {
    env.sqlite3_args(&["-bail"], db, script.as_bytes())
        .success()
        .assert_quiet();
}

/// `PRAGMA integrity_check` of `db` through the sqlite3 CLI.
#[track_caller]
fn assert_integrity(env: &TestEnv, db: &Path) {
    let run = env
        .sqlite3(db, "PRAGMA integrity_check;\n")
        .success()
        .assert_quiet();
    assert_eq!(
        run.stdout_str().trim(),
        "ok",
        "integrity_check of {}",
        db.display()
    );
}
