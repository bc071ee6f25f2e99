//! Cron-ready operations, through the real binary.
//!
//! What someone running `sqlgit snapshot` from cron at 03:00 relies on: the repository's config
//! (`sqlgit init`, flags override and are remembered, several databases), `--quiet`, exit codes
//! (0 ok, 1 failure, 2 usage), `sqlgit status` (fresh / stale / failed, `--json`), the Prometheus
//! textfile (`--metrics-file`), the `--on-success`/`--on-failure` hooks, `sqlgit verify` (a restore
//! drill that notices a damaged object), gzip dumps, completions and the man page, table filters
//! that keep data out of every object that leaves the machine, and progress output only on a
//! terminal.
//!
//! Every sqlgit run has a time limit (a hung push fails the test instead of wedging CI) and a
//! pinned `SQLGIT_NOW`, so ages and timestamps are exact.
//!
//! The tests are split by concern — `cli`, `filters`, `init`, `monitoring`, `restore`,
//! `scrub` (damaged packs repaired by runs that read everything), `status` — and share the
//! helpers here.

mod cli;
mod cronenv;
mod filters;
mod filters_migrated;
mod filters_reach;
mod filters_stale;
mod guards;
mod hostile_fs;
mod init;
mod into;
mod into_raw;
mod lockwait;
mod lost_files;
mod metricsfile;
mod monitoring;
mod moved;
mod refs;
mod replace;
mod restore;
mod root_remote;
mod scrub;
mod scrub_copies;
mod settings_text;
mod setup;
mod status;
mod wal_access;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::env::{
    Run, TestEnv, compare_databases, copy_dir, fixtures_dir, list_dir, one_error_line,
};
use crate::servers::{GitDaemon, HttpGit};

/// Limit for one run of anything (a healthy sqlgit run takes well under a second here).
const RUN_LIMIT: Duration = Duration::from_secs(30);
/// `SQLGIT_NOW` of the first snapshot of every test.
const T0: u64 = 1_700_000_000;

// ------------------------------------------------------------------------------------------------
// Helpers

/// Run `cmd` with `stdin` and collect its output; kill it and fail after `RUN_LIMIT`.
fn run_limited(env: &TestEnv, cmd: Command, stdin: &[u8]) -> Run {
    env.run_limited(cmd, stdin, RUN_LIMIT).0
}

/// A hermetic `sqlgit ARGS` command with `SQLGIT_NOW=now` and extra variables.
fn sqlgit_cmd(env: &TestEnv, now: u64, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut cmd = env.sqlgit_cmd(args);
    cmd.env("SQLGIT_NOW", now.to_string());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

/// `sqlgit ARGS` at `now`, with a time limit.
fn sg(env: &TestEnv, now: u64, args: &[&str]) -> Run {
    run_limited(env, sqlgit_cmd(env, now, args, &[]), b"")
}

/// `sqlgit ARGS` at `now` with extra environment variables.
fn sg_vars(env: &TestEnv, now: u64, args: &[&str], vars: &[(&str, &str)]) -> Run {
    run_limited(env, sqlgit_cmd(env, now, args, vars), b"")
}

/// Every path under `dir` root owns.
fn rooted(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.uid() == 0 {
                found.push(entry.path());
            }
            if meta.is_dir() {
                dirs.push(entry.path());
            }
        }
    }
    found
}

/// `chown -R UID:UID PATH`.
fn chown_r(path: &Path, uid: u32) {
    let done = Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}")])
        .arg(path)
        .status();
    assert!(done.is_ok_and(|s| s.success()));
}

/// `sqlgit` (a command built by [`sqlgit_cmd`]) run as uid/gid 65534 through `setpriv`, with
/// the same arguments and environment only.
fn as_nobody(sqlgit: &Command) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(sqlgit.get_program())
        .args(sqlgit.get_args())
        .env_clear()
        .envs(sqlgit.get_envs().filter_map(|(k, v)| Some((k, v?))));
    cmd
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// `git -C DIR ARGS` (hermetic); the run, whatever its exit code.
fn git_run(env: &TestEnv, dir: &Path, args: &[&str]) -> Run {
    let mut cmd = env.command("git");
    cmd.arg("-C").arg(dir).args(args);
    run_limited(env, cmd, b"")
}

/// `git -C DIR ARGS`; must exit 0; trimmed stdout.
#[track_caller]
fn git(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    git_run(env, dir, args)
        .success()
        .stdout_str()
        .trim()
        .to_string()
}

/// `git config -f REPO/config --get-all KEY` (empty when unset).
fn config_values(env: &TestEnv, repo: &Path, key: &str) -> Vec<String> {
    let config = repo.join("config");
    let run = git_run(
        env,
        env.root(),
        &["config", "-f", &s(&config), "--get-all", key],
    );
    match run.code() {
        Some(0) => run.stdout_str().lines().map(str::to_string).collect(),
        Some(1) => Vec::new(),
        _ => run.fail("git config --get-all"),
    }
}

/// The top-level entries of REV's tree.
fn top_folders(env: &TestEnv, repo: &Path, rev: &str) -> Vec<String> {
    let out = git(env, repo, &["ls-tree", "--name-only", rev]);
    out.lines().map(str::to_string).collect()
}

/// Commits on `main`.
fn commit_count(env: &TestEnv, repo: &Path) -> usize {
    git(env, repo, &["rev-list", "--count", "refs/heads/main"])
        .parse()
        .unwrap()
}

fn head(env: &TestEnv, repo: &Path) -> String {
    git(env, repo, &["rev-parse", "refs/heads/main"])
}

/// Run sqlite3 on `db` with `script`; must be silent.
fn sql(env: &TestEnv, db: &Path, script: &str) {
    env.sqlite3(db, script).success().assert_quiet();
}

/// `SELECT` through the sqlite3 CLI; its stdout, trimmed.
fn query(env: &TestEnv, db: &Path, q: &str) -> String {
    env.sqlite3(db, q)
        .success()
        .assert_quiet()
        .stdout_str()
        .trim()
        .to_string()
}

/// Build `root/NAME` from `fixtures/FIXTURE.sql`.
fn db_from_fixture(env: &TestEnv, name: &str, fixture: &str) -> PathBuf {
    let script = std::fs::read(fixtures_dir().join(format!("{fixture}.sql"))).unwrap();
    env.db_from_script(name, &script)
}

/// Restore `dump` with `sqlite3 NEW < dump` and compare the result with `original`.
#[track_caller]
fn assert_restores(env: &TestEnv, dump: &[u8], original: &Path, name: &str) {
    let restored = env.restore(dump, name);
    compare_databases(original, &restored);
}

/// stdout of a successful run must be empty, and stderr too.
#[track_caller]
fn assert_silent(run: Run) -> Run {
    let run = run.success().assert_quiet();
    if !run.stdout().is_empty() {
        run.fail("expected an empty stdout");
    }
    run
}

/// Parse stdout as JSON.
#[track_caller]
fn json(run: &Run) -> Value {
    serde_json::from_slice(run.stdout())
        .unwrap_or_else(|e| run.fail(&format!("stdout is not JSON: {e}")))
}

/// Sum of the sizes of all files under `dir`.
fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = std::fs::symlink_metadata(e.path()).unwrap();
        if m.is_dir() {
            total += tree_size(&e.path());
        } else {
            total += m.len();
        }
    }
    total
}

/// Run `f` while the database file `db` is gone (renamed away), as when a configured database
/// vanishes between cron runs; it is put back afterwards.
fn while_missing<T>(db: &Path, f: impl FnOnce() -> T) -> T {
    let away = db.with_extension("away");
    std::fs::rename(db, &away).unwrap();
    let out = f();
    std::fs::rename(&away, db).unwrap();
    out
}

/// `KEY=VALUE` lines of an `env > FILE` dump.
fn env_file(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("the hook did not write {}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Every object of the repository at `dir`, decompressed (`git cat-file --batch-all-objects
/// --batch`): headers and contents of blobs, trees and commits, loose or packed.
fn all_objects(env: &TestEnv, dir: &Path) -> Vec<u8> {
    let run = git_run(
        env,
        dir,
        &["cat-file", "--batch-all-objects", "--batch", "--unordered"],
    )
    .success();
    assert!(
        !run.stdout().is_empty(),
        "{}: no objects at all (wrong directory?)",
        dir.display()
    );
    run.output.stdout
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// One sample of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parse Prometheus text exposition: `# HELP`/`# TYPE` comments, blank lines, and samples
/// `name{label="value",...} value`. Panics on anything else.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    assert!(
        text.ends_with('\n'),
        "the metrics file must end with a newline"
    );
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start();
            if let Some(t) = rest.strip_prefix("TYPE ") {
                let kind = t.split_whitespace().nth(1).unwrap_or("");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                    "bad TYPE line {line:?}"
                );
            }
            continue;
        }
        let name_end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or_else(|| panic!("no value on metrics line {line:?}"));
        let name = &line[..name_end];
        assert!(
            !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()),
            "bad metric name on line {line:?}"
        );
        let mut rest = &line[name_end..];
        let mut labels = BTreeMap::new();
        if let Some(body) = rest.strip_prefix('{') {
            // label="value" pairs; values may contain escaped quotes and backslashes.
            let mut chars = body.char_indices().peekable();
            let mut end = None;
            loop {
                while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
                    chars.next();
                }
                match chars.peek() {
                    Some((i, '}')) => {
                        end = Some(*i);
                        break;
                    }
                    None => break,
                    _ => {}
                }
                let mut key = String::new();
                for (_, c) in chars.by_ref() {
                    if c == '=' {
                        break;
                    }
                    key.push(c);
                }
                assert!(
                    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "bad label name {key:?} on line {line:?}"
                );
                assert_eq!(
                    chars.next().map(|(_, c)| c),
                    Some('"'),
                    "label value must be quoted on line {line:?}"
                );
                let mut value = String::new();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, c @ ('\\' | '"'))) => value.push(c),
                            other => panic!("bad escape {other:?} on line {line:?}"),
                        },
                        '"' => {
                            closed = true;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                assert!(closed, "unterminated label value on line {line:?}");
                labels.insert(key, value);
            }
            let end = end.unwrap_or_else(|| panic!("unterminated labels on line {line:?}"));
            rest = &body[end + 1..];
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        assert!(
            rest.starts_with(' ') && (fields.len() == 1 || fields.len() == 2),
            "expected `name{{labels}} value [timestamp]`, got {line:?}"
        );
        let value: f64 = match fields[0] {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value {v:?} on line {line:?}")),
        };
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    samples
}

/// The one sample named `name` (with `remote=…` when given).
#[track_caller]
fn metric<'a>(samples: &'a [Sample], name: &str, remote: Option<&str>) -> &'a Sample {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| remote.is_none() || s.labels.get("remote").map(String::as_str) == remote)
        .collect();
    assert!(
        found.len() == 1,
        "expected one sample {name} (remote {remote:?}), found {}: {samples:#?}",
        found.len()
    );
    found[0]
}

/// The sample whose name contains `last_success`.
#[track_caller]
fn last_success(samples: &[Sample]) -> f64 {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name.contains("last_success"))
        .collect();
    assert!(
        found.len() == 1,
        "expected one metric whose name contains last_success: {samples:#?}"
    );
    found[0].value
}

/// Damage one object of the bare repository `repo` in place: flip a byte in the middle of its
/// compressed data, in every pack (or the loose file) that holds it.
fn damage_object(env: &TestEnv, repo: &Path, oid: &str) {
    let mut damaged = 0;
    let pack_dir = repo.join("objects/pack");
    for e in std::fs::read_dir(&pack_dir).unwrap() {
        let idx = e.unwrap().path();
        if idx.extension().and_then(|x| x.to_str()) != Some("idx") {
            continue;
        }
        let listing = git(env, env.root(), &["verify-pack", "-v", &s(&idx)]);
        for line in listing.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 5 || f[0] != oid {
                continue;
            }
            let in_pack: usize = f[3].parse().unwrap();
            let offset: usize = f[4].parse().unwrap();
            assert!(in_pack >= 8, "object {oid} is too small to damage: {line}");
            let pack = idx.with_extension("pack");
            let mut perms = std::fs::metadata(&pack).unwrap().permissions();
            perms.set_mode(0o600);
            std::fs::set_permissions(&pack, perms).unwrap();
            let mut bytes = std::fs::read(&pack).unwrap();
            bytes[offset + in_pack / 2] ^= 0x5a;
            std::fs::write(&pack, bytes).unwrap();
            damaged += 1;
        }
    }
    let loose = repo.join("objects").join(&oid[..2]).join(&oid[2..]);
    if loose.exists() {
        let mut perms = std::fs::metadata(&loose).unwrap().permissions();
        perms.set_mode(0o600);
        std::fs::set_permissions(&loose, perms).unwrap();
        let mut bytes = std::fs::read(&loose).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x5a;
        std::fs::write(&loose, bytes).unwrap();
        damaged += 1;
    }
    assert!(damaged > 0, "object {oid} not found in {}", repo.display());
}

/// The names of the subcommands, from `sqlgit --help` (without `help`).
fn subcommands(env: &TestEnv) -> Vec<String> {
    let help = env.sqlgit(&["--help"]).success().stdout_str();
    let mut names = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            if !line.starts_with("  ") {
                break;
            }
            // Wrapped description lines are indented much further than command names.
            if line.starts_with("   ") {
                continue;
            }
            let name = line.split_whitespace().next().unwrap();
            if name != "help" {
                names.push(name.to_string());
            }
        }
    }
    assert!(
        names.len() >= 10,
        "could not read the commands from --help:\n{help}"
    );
    names
}
