//! Issue 7: cron-ready operations, through the real binary.
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

// ------------------------------------------------------------------------------------------------
// 1. Config-driven snapshot of several databases

#[test]
fn init_then_snapshot_with_no_flags_snapshots_every_configured_database() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    let remote = daemon.create_bare("hist");
    let url = daemon.url("hist");
    let a = db_from_fixture(&env, "A.db", "rowids");
    let b = db_from_fixture(&env, "B.db", "identifiers");
    let repo = env.path("R");
    let r = s(&repo);

    // Relative database paths: remembered as absolute ones (cron runs elsewhere).
    let init = sg(
        &env,
        T0,
        &[
            "init",
            "--repo",
            &r,
            "--db",
            "A.db",
            "--db",
            "B.db",
            "--keep",
            "5",
            "--history-remote",
            &url,
        ],
    )
    .success()
    .assert_quiet();
    assert!(
        init.stdout_str().contains("config"),
        "init should say where the settings are:\n{}",
        init.stdout_str()
    );
    assert_eq!(config_values(&env, &repo, "sqlgit.db"), [s(&a), s(&b)]);
    assert_eq!(config_values(&env, &repo, "sqlgit.keep"), ["5"]);
    assert_eq!(
        config_values(&env, &repo, "sqlgit.historyRemote"),
        std::slice::from_ref(&url)
    );
    assert_ne!(
        git_run(
            &env,
            &repo,
            &["rev-parse", "-q", "--verify", "refs/heads/main"]
        )
        .code(),
        Some(0),
        "init must not take a snapshot"
    );

    // `sqlgit snapshot --repo R` and nothing else, from another directory.
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let mut cmd = sqlgit_cmd(&env, T0, &["snapshot", "--repo", &r], &[]);
    cmd.current_dir(&elsewhere);
    run_limited(&env, cmd, b"").success().assert_quiet();
    assert_eq!(commit_count(&env, &repo), 1, "one commit");
    assert_eq!(top_folders(&env, &repo, "main"), ["A.db", "B.db"]);
    assert_eq!(
        git(&env, &remote, &["rev-parse", "refs/heads/main"]),
        head(&env, &repo),
        "the configured history remote received the snapshot"
    );
    assert_eq!(
        git(&env, &repo, &["log", "-1", "--format=%ct", "main"]),
        T0.to_string(),
        "the commit time is SQLGIT_NOW"
    );

    // Each database restores exactly from its folder.
    for (db, folder, name) in [(&a, "A.db", "A.restored.db"), (&b, "B.db", "B.restored.db")] {
        let dump = sg(&env, T0, &["cat", "--repo", &r, "--db", folder])
            .success()
            .assert_quiet()
            .output
            .stdout;
        assert_restores(&env, &dump, db, name);
    }
    // Without --db, cat refuses to guess between two databases.
    one_error_line(sg(&env, T0, &["cat", "--repo", &r]), 1);

    // Flags override the config and are remembered.
    let c = env.db_from_script(
        "C.db",
        b"CREATE TABLE c(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO c VALUES (1, 'one');",
    );
    sg(
        &env,
        T0 + 60,
        &["snapshot", "C.db", "--repo", &r, "--keep", "7"],
    )
    .success()
    .assert_quiet();
    assert_eq!(config_values(&env, &repo, "sqlgit.db"), [s(&c)]);
    assert_eq!(config_values(&env, &repo, "sqlgit.keep"), ["7"]);
    assert_eq!(
        config_values(&env, &repo, "sqlgit.historyRemote"),
        std::slice::from_ref(&url),
        "a setting not given stays"
    );
    assert_eq!(commit_count(&env, &repo), 2);
    assert!(top_folders(&env, &repo, "main").contains(&"C.db".to_string()));

    // The remembered override is what a bare run uses now: C is snapshotted, A is not.
    let a_tree = git(&env, &repo, &["rev-parse", "main:A.db"]);
    sql(&env, &a, "INSERT INTO plain VALUES (99, 99);");
    sql(&env, &c, "INSERT INTO c VALUES (2, 'two');");
    sg(&env, T0 + 120, &["snapshot", "--repo", &r])
        .success()
        .assert_quiet();
    assert_eq!(commit_count(&env, &repo), 3);
    let dump = sg(&env, T0, &["cat", "--repo", &r, "--db", "C.db"])
        .success()
        .output
        .stdout;
    assert_restores(&env, &dump, &c, "C.restored.db");
    let a_now = git_run(&env, &repo, &["rev-parse", "-q", "--verify", "main:A.db"]);
    if a_now.code() == Some(0) {
        assert_eq!(
            a_now.stdout_str().trim(),
            a_tree,
            "A.db is no longer configured: its folder must not be re-snapshotted"
        );
    }
    assert_eq!(
        git(&env, &remote, &["rev-parse", "refs/heads/main"]),
        head(&env, &repo),
        "every snapshot reached the history remote"
    );
    drop(daemon);
}

// ------------------------------------------------------------------------------------------------
// 2. --quiet

#[test]
fn quiet_is_silent_on_success_and_one_stderr_line_on_failure() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    daemon.create_bare("hist");
    let url = daemon.url("hist");
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));

    // Global -q before the subcommand: a commit and a push, and not a byte of output.
    assert_silent(sg(
        &env,
        T0,
        &["-q", "snapshot", &d, "--repo", &r, "--history-remote", &url],
    ));
    assert_eq!(commit_count(&env, &repo), 1);
    // --quiet after the subcommand.
    sql(&env, &db, "INSERT INTO t VALUES (2, 'b');");
    assert_silent(sg(
        &env,
        T0 + 60,
        &["snapshot", &d, "--repo", &r, "--quiet"],
    ));
    assert_eq!(commit_count(&env, &repo), 2);
    // Unchanged: still silent (no "unchanged" message).
    assert_silent(sg(&env, T0 + 120, &["snapshot", "--repo", &r, "-q"]));
    assert_eq!(commit_count(&env, &repo), 2);
    // The other commands a cron job runs are quiet too.
    assert_silent(sg(
        &env,
        T0 + 130,
        &["-q", "status", "--repo", &r, "--max-age", "15m"],
    ));
    assert_silent(sg(&env, T0 + 130, &["-q", "verify", "--repo", &r]));
    assert_silent(sg(
        &env,
        T0 + 130,
        &[
            "-q",
            "init",
            "--repo",
            &s(&env.path("other.sqlgit")),
            "--db",
            &d,
        ],
    ));
    assert_silent(sg(
        &env,
        T0 + 130,
        &[
            "-q",
            "restore",
            "--repo",
            &r,
            "--to",
            &s(&env.path("copy.db")),
        ],
    ));
    compare_databases(&db, &env.path("copy.db"));

    // A failure still speaks: one line on stderr, exit 1.
    let missing = s(&env.path("missing.db"));
    let line = one_error_line(
        sg(
            &env,
            T0 + 180,
            &["-q", "snapshot", &missing, "--repo", &s(&env.path("r2"))],
        ),
        1,
    );
    assert!(
        line.contains("missing.db"),
        "the error names the database: {line}"
    );
    let line = one_error_line(
        sg(
            &env,
            T0 + 180,
            &["snapshot", &missing, "--repo", &r, "--quiet"],
        ),
        1,
    );
    assert!(line.starts_with("sqlgit: "), "{line}");
    drop(daemon);
}

// ------------------------------------------------------------------------------------------------
// 3. Exit codes

#[test]
fn exit_codes_usage_2_failure_1_and_every_help_has_an_example() {
    let env = TestEnv::new();
    // Usage errors: 2, a message on stderr, nothing on stdout.
    for args in [
        &["snapshot", "--no-such-flag"][..],
        &["snapshot", "x.db", "--repo", "r", "--keep-all-forever"],
        &["status", "--repo", "r", "--max-age", "soon"],
        &["frobnicate"],
        &["snapshot", "x.db"], // --repo is required
        &["completions", "tcsh"],
        &[],
    ] {
        let run = env.sqlgit(args).code_is(2);
        if run.stderr().is_empty() || !run.stdout().is_empty() {
            run.fail("a usage error goes to stderr only");
        }
    }
    // Failures: 1, one line on stderr.
    let db = env.db_from_script("a.db", b"CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    for args in [
        vec!["dump".to_string(), s(&env.path("missing.db"))],
        vec!["status".into(), "--repo".into(), s(&env.path("no-repo"))],
        vec!["verify".into(), "--repo".into(), s(&env.path("no-repo"))],
        vec![
            "snapshot".into(),
            s(&env.path("missing.db")),
            "--repo".into(),
            s(&env.path("r")),
        ],
        vec![
            "restore".into(),
            "--from-file".into(),
            s(&env.path("missing.sql")),
            "--to".into(),
            s(&env.path("n.db")),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        one_error_line(sg(&env, T0, &args), 1);
    }
    // Success: 0.
    sg(
        &env,
        T0,
        &["snapshot", &s(&db), "--repo", &s(&env.path("ok"))],
    )
    .code_is(0);

    // --help of every subcommand: exit 0, on stdout, with an example.
    let top = env.sqlgit(&["--help"]).code_is(0);
    let text = top.stdout_str();
    assert!(
        text.contains("Exit codes") && text.contains("2 usage"),
        "the top-level help documents the exit codes:\n{text}"
    );
    for name in subcommands(&env) {
        {
            let flag = "--help";
            let run = env.sqlgit(&[name.as_str(), flag]).code_is(0).assert_quiet();
            if !run.stdout_str().contains("Example") {
                run.fail(&format!("`sqlgit {name} {flag}` shows no Example"));
            }
        }
    }
    env.sqlgit(&["--version"]).code_is(0);
}

// ------------------------------------------------------------------------------------------------
// 4. status

#[test]
fn status_fresh_stale_and_failed_run() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b');",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));

    // No snapshot yet: unhealthy.
    sg(&env, T0, &["init", "--repo", &r, "--db", &d]).success();
    let run = sg(&env, T0, &["status", "--repo", &r]).code_is(1);
    assert!(
        run.stderr_str().contains("no snapshot"),
        "problems go to stderr: {}",
        run.stderr_str()
    );

    sg(&env, T0, &["snapshot", "--repo", &r]).success();
    sql(&env, &db, "INSERT INTO t VALUES (3, 'c');");
    sg(&env, T0 + 300, &["snapshot", "--repo", &r]).success();
    let newest = head(&env, &repo);

    // Fresh: a minute after the snapshot.
    let fresh = sg(
        &env,
        T0 + 360,
        &["status", "--repo", &r, "--max-age", "15m"],
    )
    .code_is(0)
    .assert_quiet();
    assert!(
        fresh.stdout_str().contains(&newest[..12]),
        "the text status names the newest snapshot:\n{}",
        fresh.stdout_str()
    );
    let v = json(
        &sg(
            &env,
            T0 + 360,
            &["status", "--repo", &r, "--max-age", "15m", "--json"],
        )
        .code_is(0)
        .assert_quiet(),
    );
    assert_eq!(v["ok"], Value::Bool(true), "{v:#}");
    assert_eq!(v["newest"]["id"], Value::from(newest.clone()), "{v:#}");
    assert_eq!(v["newest"]["unix"], Value::from(T0 + 300), "{v:#}");
    assert_eq!(
        v["newest"]["time"],
        Value::from("2023-11-14T22:18:20Z"),
        "{v:#}"
    );
    assert_eq!(v["newest"]["age_seconds"], Value::from(60), "{v:#}");
    assert_eq!(v["local_snapshots"], Value::from(2), "{v:#}");
    assert_eq!(
        v["oldest_local"],
        Value::from("2023-11-14T22:13:20Z"),
        "{v:#}"
    );
    assert_eq!(v["last_run"]["ok"], Value::Bool(true), "{v:#}");
    assert_eq!(
        v["last_run"]["commit"],
        Value::from(newest.clone()),
        "{v:#}"
    );
    assert_eq!(v["last_run"]["rows"], Value::from(3), "{v:#}");
    let size = v["repository_bytes"].as_u64().expect("repository_bytes");
    let actual = tree_size(&repo);
    assert!(
        size > 0 && size.abs_diff(actual) <= actual / 10,
        "repository_bytes {size}, the directory holds {actual} bytes"
    );

    // Exactly at the limit is still fresh; a second later it is stale.
    sg(
        &env,
        T0 + 300 + 900,
        &["status", "--repo", &r, "--max-age", "15m"],
    )
    .code_is(0);
    sg(
        &env,
        T0 + 300 + 901,
        &["status", "--repo", &r, "--max-age", "15m"],
    )
    .code_is(1);
    // Stale: an hour later.
    let stale = sg(
        &env,
        T0 + 3900,
        &["status", "--repo", &r, "--max-age", "15m"],
    )
    .code_is(1);
    assert!(
        stale.stderr_str().contains("old"),
        "the status says why, on stderr:\n{}",
        stale.stderr_str()
    );
    let v = json(
        &sg(
            &env,
            T0 + 3900,
            &["status", "--repo", &r, "--max-age", "15m", "--json"],
        )
        .code_is(1),
    );
    assert_eq!(v["ok"], Value::Bool(false), "{v:#}");
    assert!(!v["problems"].as_array().unwrap().is_empty(), "{v:#}");
    // Without --max-age age alone is no problem.
    sg(&env, T0 + 3900, &["status", "--repo", &r]).code_is(0);

    // A failed run (the configured database is gone): unhealthy even though the snapshot is fresh.
    while_missing(&db, || {
        one_error_line(sg(&env, T0 + 400, &["snapshot", "--repo", &r]), 1)
    });
    let run = sg(
        &env,
        T0 + 410,
        &["status", "--repo", &r, "--max-age", "15m"],
    )
    .code_is(1);
    assert!(run.stdout_str().contains("FAILED"), "{}", run.stdout_str());
    let v = json(&sg(&env, T0 + 410, &["status", "--repo", &r, "--json"]).code_is(1));
    assert_eq!(v["ok"], Value::Bool(false), "{v:#}");
    assert_eq!(v["last_run"]["ok"], Value::Bool(false), "{v:#}");
    let err = v["last_run"]["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("app.db"),
        "last_run.error names the database: {v:#}"
    );
    assert_eq!(v["last_run"]["unix"], Value::from(T0 + 400), "{v:#}");
    assert_eq!(v["newest"]["id"], Value::from(newest.clone()), "{v:#}");
    assert_eq!(v["local_snapshots"], Value::from(2), "{v:#}");

    // The next good run clears it.
    sg(&env, T0 + 500, &["snapshot", &d, "--repo", &r]).success();
    sg(
        &env,
        T0 + 510,
        &["status", "--repo", &r, "--max-age", "15m"],
    )
    .code_is(0);
}

/// `sqlgit snapshot TYPO.db --repo R` on a working repository is a failed run like any other:
/// status, the metrics file and the failure hook all hear of it.
#[test]
fn a_missing_database_argument_is_a_recorded_failure() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let prom = env.path("sqlgit.prom");
    let fail_out = env.path("failure.env");
    let on_failure = format!("env > '{}'", fail_out.display());
    sg(
        &env,
        T0,
        &[
            "snapshot",
            &d,
            "--repo",
            &r,
            "--metrics-file",
            &s(&prom),
            "--on-failure",
            &on_failure,
        ],
    )
    .success();
    sg(&env, T0 + 10, &["status", "--repo", &r, "--max-age", "15m"]).code_is(0);

    let missing = s(&env.path("gone.db"));
    let line = one_error_line(sg(&env, T0 + 60, &["snapshot", &missing, "--repo", &r]), 1);
    assert!(line.contains("gone.db"), "{line}");

    let status = sg(&env, T0 + 70, &["status", "--repo", &r, "--json"]);
    let v = json(&status);
    assert_eq!(
        v["last_run"]["ok"],
        Value::Bool(false),
        "status must show the failed run: {v:#}"
    );
    assert!(
        v["last_run"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("gone.db")),
        "{v:#}"
    );
    assert_eq!(v["last_run"]["unix"], Value::from(T0 + 60), "{v:#}");
    status.code_is(1);
    let text = std::fs::read_to_string(&prom).unwrap();
    let m = parse_prometheus(&text);
    assert_eq!(
        metric(&m, "sqlgit_last_run_success", None).value,
        0.0,
        "the metrics file must show the failed run:\n{text}"
    );
    assert!((last_success(&m) - T0 as f64).abs() <= 2.0, "{text}");
    let vars = env_file(&fail_out);
    assert_eq!(vars["SQLGIT_RESULT"], "failure", "{vars:#?}");
    assert!(vars["SQLGIT_ERROR"].contains("gone.db"), "{vars:#?}");
}

#[test]
fn status_reports_a_failed_push_when_the_history_remote_is_down() {
    let env = TestEnv::new();
    let mut daemon = GitDaemon::start_in(env.path("srv"));
    let remote = daemon.create_bare("hist");
    let url = daemon.url("hist");
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let hook_out = env.path("failure.env");
    let on_failure = format!("env > '{}'", hook_out.display());

    sg(
        &env,
        T0,
        &["snapshot", &d, "--repo", &r, "--history-remote", &url],
    )
    .success();
    let v = json(&sg(&env, T0 + 10, &["status", "--repo", &r, "--json"]).code_is(0));
    assert_eq!(v["remotes"]["history"]["ok"], Value::Bool(true), "{v:#}");
    assert_eq!(v["remotes"]["history"]["pending"], Value::from(0), "{v:#}");
    assert_eq!(
        v["remotes"]["history"]["url"],
        Value::from(url.clone()),
        "{v:#}"
    );

    // The remote goes down: the commit is made, the push fails, the run is a failure.
    daemon.stop();
    sql(&env, &db, "INSERT INTO t VALUES (2, 'b');");
    let run = sg(
        &env,
        T0 + 60,
        &["snapshot", "--repo", &r, "--on-failure", &on_failure],
    );
    let line = one_error_line(run, 1);
    assert!(line.contains("push to history remote"), "{line}");
    assert_eq!(commit_count(&env, &repo), 2, "the local commit is kept");
    let new_commit = head(&env, &repo);
    let vars = env_file(&hook_out);
    assert_eq!(vars["SQLGIT_RESULT"], "failure", "{vars:#?}");
    assert_eq!(vars["SQLGIT_COMMIT"], new_commit, "{vars:#?}");
    assert!(!vars["SQLGIT_ERROR"].is_empty(), "{vars:#?}");

    let run = sg(&env, T0 + 70, &["status", "--repo", &r, "--max-age", "15m"]).code_is(1);
    assert!(run.stdout_str().contains("FAILED"), "{}", run.stdout_str());
    let v = json(&sg(&env, T0 + 70, &["status", "--repo", &r, "--json"]).code_is(1));
    assert_eq!(v["ok"], Value::Bool(false), "{v:#}");
    assert_eq!(v["last_run"]["ok"], Value::Bool(false), "{v:#}");
    assert_eq!(
        v["last_run"]["commit"],
        Value::from(new_commit.clone()),
        "{v:#}"
    );
    let h = &v["remotes"]["history"];
    assert_eq!(h["ok"], Value::Bool(false), "{v:#}");
    assert!(
        h["error"].as_str().is_some_and(|e| !e.is_empty()),
        "the push error is recorded: {v:#}"
    );
    assert_eq!(h["pending"], Value::from(1), "{v:#}");
    assert_eq!(h["unix"], Value::from(T0 + 60), "{v:#}");
    assert_eq!(v["newest"]["id"], Value::from(new_commit.clone()), "{v:#}");

    // Back up: the next run (nothing changed) pushes what is pending and is healthy again.
    daemon.start();
    sg(&env, T0 + 120, &["snapshot", "--repo", &r])
        .success()
        .assert_quiet();
    assert_eq!(
        git(&env, &remote, &["rev-parse", "refs/heads/main"]),
        new_commit
    );
    let v = json(
        &sg(
            &env,
            T0 + 130,
            &["status", "--repo", &r, "--json", "--max-age", "15m"],
        )
        .code_is(0),
    );
    assert_eq!(v["remotes"]["history"]["ok"], Value::Bool(true), "{v:#}");
    assert_eq!(v["remotes"]["history"]["pending"], Value::from(0), "{v:#}");
    drop(daemon);
}

// ------------------------------------------------------------------------------------------------
// 5. Metrics file

#[test]
fn metrics_file_is_prometheus_text_replaced_atomically() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    daemon.create_bare("hist");
    let url = daemon.url("hist");
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
          INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');\n\
          CREATE TABLE u(x); INSERT INTO u VALUES (1), (2);",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let dir = env.path("textfile");
    let prom = env.write("textfile/sqlgit.prom", "stale content\n");
    std::fs::set_permissions(&prom, std::fs::Permissions::from_mode(0o644)).unwrap();
    let inode_before = std::fs::metadata(&prom).unwrap().ino();

    sg(
        &env,
        T0,
        &[
            "snapshot",
            &d,
            "--repo",
            &r,
            "--history-remote",
            &url,
            "--metrics-file",
            &s(&prom),
        ],
    )
    .success()
    .assert_quiet();
    let text = std::fs::read_to_string(&prom).unwrap();
    assert_ne!(text, "stale content\n");
    let m = parse_prometheus(&text);
    assert!(
        (last_success(&m) - T0 as f64).abs() <= 2.0,
        "last_success is SQLGIT_NOW={T0}:\n{text}"
    );
    assert_eq!(
        metric(&m, "sqlgit_last_run_success", None).value,
        1.0,
        "{text}"
    );
    let duration = metric(&m, "sqlgit_last_run_duration_seconds", None).value;
    assert!(
        (0.0..30.0).contains(&duration),
        "duration {duration}:\n{text}"
    );
    let bytes = metric(&m, "sqlgit_dump_bytes", None).value;
    let dump_len = sg(&env, T0, &["cat", "--repo", &r])
        .success()
        .stdout()
        .len();
    assert_eq!(
        bytes, dump_len as f64,
        "dump_bytes is the snapshot's SQL size:\n{text}"
    );
    assert_eq!(metric(&m, "sqlgit_dump_rows", None).value, 5.0, "{text}");
    assert_eq!(
        metric(&m, "sqlgit_push_success", Some("history")).value,
        1.0,
        "{text}"
    );
    let stat = std::fs::metadata(&prom).unwrap();
    assert_eq!(
        stat.permissions().mode() & 0o777,
        0o600,
        "the metrics file is private"
    );
    assert_ne!(
        stat.ino(),
        inode_before,
        "the file is replaced (renamed over), not rewritten"
    );
    assert_eq!(
        list_dir(&dir),
        ["sqlgit.prom"],
        "no temporary file is left beside it"
    );

    // The setting is remembered. A failed run: last_success unchanged, last_run_success 0.
    let inode_ok = stat.ino();
    while_missing(&db, || {
        one_error_line(sg(&env, T0 + 600, &["snapshot", "--repo", &r]), 1)
    });
    let text = std::fs::read_to_string(&prom).unwrap();
    let m = parse_prometheus(&text);
    assert!(
        (last_success(&m) - T0 as f64).abs() <= 2.0,
        "a failed run must not move last_success:\n{text}"
    );
    assert_eq!(
        metric(&m, "sqlgit_last_run_success", None).value,
        0.0,
        "{text}"
    );
    assert!(
        m.iter()
            .all(|s| s.name != "sqlgit_last_run_timestamp_seconds"
                || (s.value - (T0 + 600) as f64).abs() <= 2.0),
        "{text}"
    );
    let stat = std::fs::metadata(&prom).unwrap();
    assert_eq!(stat.permissions().mode() & 0o777, 0o600);
    assert_ne!(stat.ino(), inode_ok, "replaced again");
    assert_eq!(
        list_dir(&dir),
        ["sqlgit.prom"],
        "no temporary file is left beside it"
    );

    // A later success moves it forward.
    sg(&env, T0 + 1200, &["snapshot", &d, "--repo", &r]).success();
    let text = std::fs::read_to_string(&prom).unwrap();
    let m = parse_prometheus(&text);
    assert!(
        (last_success(&m) - (T0 + 1200) as f64).abs() <= 2.0,
        "{text}"
    );
    assert_eq!(
        metric(&m, "sqlgit_last_run_success", None).value,
        1.0,
        "{text}"
    );
    assert_eq!(list_dir(&dir), ["sqlgit.prom"]);
    drop(daemon);
}

// ------------------------------------------------------------------------------------------------
// 6. Hooks

#[test]
fn hooks_see_the_result_but_not_the_token_and_never_fail_a_good_run() {
    let env = TestEnv::new();
    let http = HttpGit::start_in(env.path("http"), "sqlgit", "sekrit");
    let remote = http.create_bare("hist");
    let url = http.url("hist");
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b');",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let ok_out = env.path("success.env");
    let fail_out = env.path("failure.env");
    let on_success = format!("env > '{}'", ok_out.display());
    let on_failure = format!("env > '{}'", fail_out.display());
    let token = [("SQLGIT_HTTPS_TOKEN", "sekrit")];

    // Success, pushing over HTTPS-style auth with the token from sqlgit's environment.
    let run = sg_vars(
        &env,
        T0,
        &[
            "snapshot",
            &d,
            "--repo",
            &r,
            "--history-remote",
            &url,
            "--on-success",
            &on_success,
            "--on-failure",
            &on_failure,
        ],
        &token,
    )
    .success()
    .assert_quiet();
    let commit = head(&env, &repo);
    assert_eq!(
        git(&env, &remote, &["rev-parse", "refs/heads/main"]),
        commit,
        "pushed with the token"
    );
    let vars = env_file(&ok_out);
    assert_eq!(vars["SQLGIT_RESULT"], "success", "{vars:#?}");
    assert_eq!(vars["SQLGIT_COMMIT"], commit, "{vars:#?}");
    assert_eq!(vars["SQLGIT_CHANGED"], "1", "{vars:#?}");
    assert_eq!(vars["SQLGIT_ROWS"], "2", "{vars:#?}");
    assert!(vars["SQLGIT_REPO"].ends_with("app.sqlgit"), "{vars:#?}");
    assert_eq!(
        vars.get("SQLGIT_ERROR").map(String::as_str),
        Some(""),
        "{vars:#?}"
    );
    for key in ["SQLGIT_BYTES", "SQLGIT_TABLES", "SQLGIT_DURATION"] {
        assert!(vars.contains_key(key), "{key} missing: {vars:#?}");
    }
    let raw = std::fs::read(&ok_out).unwrap();
    assert!(
        !contains(&raw, b"sekrit"),
        "the token leaked into the hook's environment"
    );
    assert!(!contains(run.stdout(), b"sekrit") && !contains(run.stderr(), b"sekrit"));
    assert!(
        !fail_out.exists(),
        "the failure hook must not run after a success"
    );

    // Nothing changed: the hook still runs, CHANGED=0 and no commit. Hooks are remembered.
    std::fs::remove_file(&ok_out).unwrap();
    sg_vars(&env, T0 + 60, &["snapshot", "--repo", &r], &token)
        .success()
        .assert_quiet();
    let vars = env_file(&ok_out);
    assert_eq!(vars["SQLGIT_RESULT"], "success", "{vars:#?}");
    assert_eq!(vars["SQLGIT_CHANGED"], "0", "{vars:#?}");
    assert_eq!(vars["SQLGIT_COMMIT"], "", "{vars:#?}");
    assert!(!contains(&std::fs::read(&ok_out).unwrap(), b"sekrit"));

    // Failure: the failure hook, with the error; not the success hook.
    std::fs::remove_file(&ok_out).unwrap();
    while_missing(&db, || {
        one_error_line(
            sg_vars(&env, T0 + 120, &["snapshot", "--repo", &r], &token),
            1,
        )
    });
    let vars = env_file(&fail_out);
    assert_eq!(vars["SQLGIT_RESULT"], "failure", "{vars:#?}");
    assert!(vars["SQLGIT_ERROR"].contains("app.db"), "{vars:#?}");
    assert_eq!(vars["SQLGIT_CHANGED"], "0", "{vars:#?}");
    assert!(!contains(&std::fs::read(&fail_out).unwrap(), b"sekrit"));
    assert!(
        !ok_out.exists(),
        "the success hook must not run after a failure"
    );

    // A failing hook after a good snapshot: reported on stderr, exit 0, the run counts as good.
    sql(&env, &db, "INSERT INTO t VALUES (3, 'c');");
    let run = sg_vars(
        &env,
        T0 + 180,
        &[
            "snapshot",
            &d,
            "--repo",
            &r,
            "--on-success",
            "echo hook-ran >&2; exit 1",
        ],
        &token,
    )
    .code_is(0);
    let err = run.stderr_str();
    assert!(err.contains("hook-ran"), "the hook ran: {err}");
    let report: Vec<&str> = err.lines().filter(|l| l.starts_with("sqlgit:")).collect();
    assert!(
        report.len() == 1 && report[0].contains("hook") && report[0].contains("fail"),
        "one line reports the failed hook:\n{err}"
    );
    assert_eq!(commit_count(&env, &repo), 2);
    assert_eq!(
        git(&env, &remote, &["rev-parse", "refs/heads/main"]),
        head(&env, &repo)
    );
    let v = json(&sg(&env, T0 + 190, &["status", "--repo", &r, "--json"]).code_is(0));
    assert_eq!(v["last_run"]["ok"], Value::Bool(true), "{v:#}");
    drop(http);
}

// ------------------------------------------------------------------------------------------------
// 7. verify

#[test]
fn verify_passes_then_fails_after_one_blob_is_damaged() {
    let env = TestEnv::new();
    let a = db_from_fixture(&env, "A.db", "rowids");
    let b = db_from_fixture(&env, "B.db", "identifiers");
    let repo = env.path("R");
    let r = s(&repo);
    sg(&env, T0, &["snapshot", &s(&a), &s(&b), "--repo", &r]).success();
    sql(&env, &a, "INSERT INTO plain VALUES (99, 99);");
    sg(&env, T0 + 60, &["snapshot", "--repo", &r]).success();

    let run = sg(&env, T0 + 60, &["verify", "--repo", &r])
        .code_is(0)
        .assert_quiet();
    assert!(
        run.stdout_str().contains("verified"),
        "{}",
        run.stdout_str()
    );
    sg(&env, T0 + 60, &["verify", "--repo", &r, "HEAD~1"]).code_is(0);
    sg(&env, T0 + 60, &["verify", "--repo", &r, "--db", "B.db"]).code_is(0);

    // Pick a row chunk of B (its blob is in the latest snapshot only once).
    let listing = git(&env, &repo, &["ls-tree", "-r", "main"]);
    let (oid, path) = listing
        .lines()
        .filter_map(|l| {
            let (meta, path) = l.split_once('\t')?;
            let f: Vec<&str> = meta.split_whitespace().collect();
            (f[1] == "blob" && path.starts_with("B.db/") && path.contains("/1-rows/"))
                .then(|| (f[2].to_string(), path.to_string()))
        })
        .max_by_key(|(oid, _)| {
            git(&env, &repo, &["cat-file", "-s", oid])
                .parse::<u64>()
                .unwrap()
        })
        .expect("a row chunk of B.db");
    assert_eq!(
        listing.matches(oid.as_str()).count(),
        1,
        "the chosen blob must appear once in the tree"
    );

    let damaged = env.path("R-damaged");
    copy_dir(&repo, &damaged);
    damage_object(&env, &damaged, &oid);
    // git agrees the copy is damaged (so the test damaged what it meant to).
    git_run(&env, &damaged, &["cat-file", "-p", &oid]).failure();

    let line = one_error_line(sg(&env, T0 + 60, &["verify", "--repo", &s(&damaged)]), 1);
    assert!(
        line.contains(&path) || line.contains(&oid) || line.contains(&oid[..12]),
        "the error names the damaged file ({path}) or object ({oid}): {line}"
    );
    let line = one_error_line(
        sg(
            &env,
            T0 + 60,
            &["verify", "--repo", &s(&damaged), "--db", "B.db"],
        ),
        1,
    );
    assert!(line.contains("B.db"), "{line}");
    // The original is untouched and still verifies.
    sg(&env, T0 + 60, &["verify", "--repo", &r]).code_is(0);
}

// ------------------------------------------------------------------------------------------------
// 8. gzip

#[test]
fn gzip_dump_cat_and_restore_from_file() {
    let env = TestEnv::new();
    let db = db_from_fixture(&env, "app.db", "rowids");
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let is_gzip = |p: &Path| std::fs::read(p).unwrap().starts_with(&[0x1f, 0x8b]);
    let gunzip = |p: &Path| {
        let mut cmd = env.command("gunzip");
        cmd.arg("-c").arg(p);
        run_limited(&env, cmd, b"")
            .success()
            .assert_quiet()
            .output
            .stdout
    };
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    // dump -o F.sql.gz
    let gz = env.path("dump.sql.gz");
    assert_silent(sg(&env, T0, &["dump", &d, "-o", &s(&gz)]));
    assert!(is_gzip(&gz), "dump -o *.gz writes gzip");
    assert_eq!(mode(&gz), 0o600);
    let plain = env.path("dump.sql");
    assert_silent(sg(&env, T0, &["dump", &d, "-o", &s(&plain)]));
    assert!(!is_gzip(&plain), "dump -o *.sql writes plain SQL");
    let sql_text = gunzip(&gz);
    assert!(
        sql_text == std::fs::read(&plain).unwrap(),
        "the gzip dump decompresses to the plain dump"
    );
    assert_restores(&env, &sql_text, &db, "from-dump-gz.db");
    assert_eq!(
        list_dir(env.root())
            .iter()
            .filter(|n| n.contains(".tmp"))
            .count(),
        0
    );

    // cat -o F.sql.gz
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    let cat_gz = env.path("cat.sql.gz");
    assert_silent(sg(&env, T0, &["cat", "--repo", &r, "-o", &s(&cat_gz)]));
    assert!(is_gzip(&cat_gz), "cat -o *.gz writes gzip");
    assert_eq!(mode(&cat_gz), 0o600);
    assert_restores(&env, &gunzip(&cat_gz), &db, "from-cat-gz.db");

    // restore --from-file, gzip and plain.
    for (file, to) in [(&gz, "n1.db"), (&cat_gz, "n2.db"), (&plain, "n3.db")] {
        let to = env.path(to);
        sg(
            &env,
            T0,
            &["restore", "--from-file", &s(file), "--to", &s(&to)],
        )
        .success()
        .assert_quiet();
        compare_databases(&db, &to);
    }
    // A truncated gzip file is refused, and nothing is left at --to.
    let bytes = std::fs::read(&gz).unwrap();
    let cut = env.write("cut.sql.gz", &bytes[..bytes.len() / 2]);
    let to = env.path("cut.db");
    one_error_line(
        sg(
            &env,
            T0,
            &["restore", "--from-file", &s(&cut), "--to", &s(&to)],
        ),
        1,
    );
    assert!(!to.exists(), "a failed restore leaves no database behind");
}

// ------------------------------------------------------------------------------------------------
// 9. completions and man

#[test]
fn completions_for_every_shell_and_a_roff_man_page() {
    let env = TestEnv::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = env.sqlgit(&["completions", shell]).success().assert_quiet();
        let out = run.stdout_str();
        if out.trim().is_empty() || !out.contains("snapshot") {
            run.fail(&format!(
                "the {shell} completion script is empty or lacks the commands"
            ));
        }
        if shell == "bash" {
            let script = env.write("sqlgit.bash", run.stdout());
            let mut cmd = env.command("bash");
            cmd.arg("-n").arg(&script);
            run_limited(&env, cmd, b"").success().assert_quiet();
        }
    }
    let run = env.sqlgit(&["man"]).success().assert_quiet();
    let man = run.stdout_str();
    assert!(
        man.starts_with('.'),
        "roff starts with a request line:\n{}",
        &man[..man.len().min(200)]
    );
    assert!(
        man.lines()
            .any(|l| l.starts_with(".TH ") && l.to_lowercase().contains("sqlgit")),
        "the man page has a .TH header"
    );
    assert!(
        man.lines().any(|l| l.starts_with(".SH")),
        "the man page has sections"
    );
    assert!(man.contains("snapshot"), "the man page lists the commands");
}

// ------------------------------------------------------------------------------------------------
// 10. Filters

#[test]
fn filters_keep_excluded_tables_and_redacted_columns_out_of_every_object() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    let history = daemon.create_bare("hist");
    let latest = daemon.create_bare("latest");
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE secrets(id INTEGER PRIMARY KEY, k TEXT);\n\
          INSERT INTO secrets VALUES (1, 'TOPSECRET-1234');\n\
          CREATE INDEX secrets_k ON secrets(k);\n\
          CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, password_hash TEXT);\n\
          INSERT INTO users VALUES (1, 'ann', 'HASHVALUE-5678'), (2, 'bob', 'HASHVALUE-5678');\n\
          CREATE INDEX users_pw ON users(password_hash);\n\
          CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);\n\
          INSERT INTO notes VALUES (1, 'harmless');\n",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let (h_url, l_url) = (daemon.url("hist"), daemon.url("latest"));
    sg(
        &env,
        T0,
        &[
            "snapshot",
            &d,
            "--repo",
            &r,
            "--exclude-table",
            "secrets",
            "--redact",
            "users.password_hash",
            "--latest-remote",
            &l_url,
            "--history-remote",
            &h_url,
        ],
    )
    .success()
    .assert_quiet();

    let check = |what: &str| {
        for (name, dir) in [("local", &repo), ("history", &history), ("latest", &latest)] {
            let objects = all_objects(&env, dir);
            for needle in ["TOPSECRET-", "HASHVALUE-"] {
                assert!(
                    !contains(&objects, needle.as_bytes()),
                    "{what}: {needle} found in an object of the {name} repository"
                );
            }
            assert!(
                contains(&objects, b"harmless"),
                "{what}: the {name} repository should hold the data that is not filtered"
            );
        }
    };
    check("first snapshot");

    // The snapshot restores: users present with the hash gone, secrets absent.
    let dump = sg(&env, T0, &["cat", "--repo", &r]).success().output.stdout;
    let restored = env.restore(&dump, "restored.db");
    assert_eq!(
        query(
            &env,
            &restored,
            "SELECT count(*) FROM sqlite_schema WHERE tbl_name = 'secrets';"
        ),
        "0",
        "the excluded table and its index are absent"
    );
    assert_eq!(
        query(&env, &restored, "SELECT id, name FROM users ORDER BY id;"),
        "1|ann\n2|bob"
    );
    let hashes = query(&env, &restored, "SELECT quote(password_hash) FROM users;");
    assert!(
        !hashes.contains("HASHVALUE"),
        "password_hash is NULL or a placeholder: {hashes}"
    );
    assert_eq!(
        query(&env, &restored, "SELECT body FROM notes;"),
        "harmless"
    );
    assert_eq!(query(&env, &restored, "PRAGMA integrity_check;"), "ok");

    // Filters are remembered: a later run without flags still keeps new secrets out.
    sql(
        &env,
        &db,
        "INSERT INTO secrets VALUES (2, 'TOPSECRET-9999');\n\
         INSERT INTO users VALUES (3, 'cy', 'HASHVALUE-0000');\n\
         INSERT INTO notes VALUES (2, 'harmless too');",
    );
    sg(&env, T0 + 60, &["snapshot", "--repo", &r])
        .success()
        .assert_quiet();
    assert_eq!(commit_count(&env, &history), 2);
    check("second snapshot, filters from the config");
    drop(daemon);
}

// ------------------------------------------------------------------------------------------------
// 11. Progress only on a terminal

#[test]
fn no_progress_output_through_pipes() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    daemon.create_bare("hist");
    daemon.create_bare("latest");
    // Big enough that a dump or a push would have something to report.
    let db = env.db_from_script(
        "big.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);\n\
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)\n\
          INSERT INTO t SELECT i, randomblob(200) FROM n;\n",
    );
    let repo = env.path("big.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let run = sg(
        &env,
        T0,
        &[
            "snapshot",
            &d,
            "--repo",
            &r,
            "--history-remote",
            &daemon.url("hist"),
            "--latest-remote",
            &daemon.url("latest"),
        ],
    )
    .success()
    .assert_quiet();
    assert!(
        !contains(run.stdout(), b"\r"),
        "no carriage-return progress on stdout"
    );
    sg(&env, T0, &["dump", &d, "-o", &s(&env.path("big.sql.gz"))])
        .success()
        .assert_quiet();
    let run = sg(
        &env,
        T0,
        &["restore", "--repo", &r, "--to", &s(&env.path("copy.db"))],
    )
    .success()
    .assert_quiet();
    assert!(!contains(run.stdout(), b"\r"));
    sg(&env, T0, &["verify", "--repo", &r])
        .success()
        .assert_quiet();
    drop(daemon);
}

/// Run `sqlgit ARGS` on a pseudo-terminal with util-linux `script`; None when it is unavailable.
fn on_terminal(env: &TestEnv, now: u64, args: &[&str]) -> Option<Run> {
    let probe = Command::new("script")
        .args(["-q", "-e", "-c", "true", "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipping the terminal half: util-linux `script` is not available");
        return None;
    }
    let quote = |a: &str| format!("'{}'", a.replace('\'', r"'\''"));
    let mut line = format!("exec {}", quote(env!("CARGO_BIN_EXE_sqlgit")));
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let mut cmd = env.command("script");
    cmd.env("SQLGIT_NOW", now.to_string())
        .args(["-q", "-e", "-c", &line, "/dev/null"]);
    Some(run_limited(env, cmd, b""))
}

#[test]
fn progress_on_a_terminal_but_not_with_quiet() {
    let env = TestEnv::new();
    let daemon = GitDaemon::start_in(env.path("srv"));
    daemon.create_bare("hist");
    let url = daemon.url("hist");
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    let Some(run) = on_terminal(
        &env,
        T0,
        &["snapshot", &d, "--repo", &r, "--history-remote", &url],
    ) else {
        return;
    };
    let run = run.success();
    if !run.stdout_str().contains("pushing") {
        run.fail("on a terminal, a push shows its progress");
    }
    // --quiet on a terminal: not a byte, progress included.
    sql(&env, &db, "INSERT INTO t VALUES (2, 'b');");
    let run = on_terminal(&env, T0 + 60, &["-q", "snapshot", &d, "--repo", &r])
        .unwrap()
        .success();
    assert_eq!(commit_count(&env, &repo), 2);
    if !run.stdout().is_empty() {
        run.fail("--quiet on a terminal must print nothing (not even progress)");
    }
    drop(daemon);
}

// ------------------------------------------------------------------------------------------------
// restore: exactness beyond the basics

/// `ANALYZE` results (sqlite_stat1) are part of the dump; restoring them must not add tables the
/// source does not have (a STAT4-enabled SQLite would create sqlite_stat4 on `ANALYZE`).
#[test]
fn restore_of_an_analyzed_database_is_exact() {
    let env = TestEnv::new();
    let db = db_from_fixture(&env, "app.db", "demo");
    let repo = env.path("app.sqlgit");
    let (d, r) = (s(&db), s(&repo));
    sg(&env, T0, &["snapshot", &d, "--repo", &r]).success();
    let gz = env.path("app.sql.gz");
    sg(&env, T0, &["dump", &d, "-o", &s(&gz)]).success();
    let from_repo = env.path("from-repo.db");
    sg(&env, T0, &["restore", "--repo", &r, "--to", &s(&from_repo)]).success();
    let from_file = env.path("from-file.db");
    sg(
        &env,
        T0,
        &["restore", "--from-file", &s(&gz), "--to", &s(&from_file)],
    )
    .success();
    for restored in [&from_repo, &from_file] {
        compare_databases(&db, restored);
    }
}

/// `--from-file` on a pipe (`/dev/stdin`, process substitution): the file can be read only once.
#[test]
fn restore_from_file_reads_a_pipe() {
    let env = TestEnv::new();
    let db = db_from_fixture(&env, "app.db", "rowids");
    let plain = env.path("app.sql");
    let gz = env.path("app.sql.gz");
    sg(&env, T0, &["dump", &s(&db), "-o", &s(&plain)]).success();
    sg(&env, T0, &["dump", &s(&db), "-o", &s(&gz)]).success();
    for (file, to) in [(&plain, "plain.db"), (&gz, "gz.db")] {
        let to = env.path(to);
        let cmd = sqlgit_cmd(
            &env,
            T0,
            &["restore", "--from-file", "/dev/stdin", "--to", &s(&to)],
            &[],
        );
        run_limited(&env, cmd, &std::fs::read(file).unwrap())
            .success()
            .assert_quiet();
        compare_databases(&db, &to);
    }
}

// ------------------------------------------------------------------------------------------------
// Settings with relative paths

/// cron runs in another directory than `sqlgit init` did: every path setting given relative must
/// mean the same file later (databases already are remembered as absolute paths).
#[test]
fn relative_path_settings_mean_the_same_files_from_another_directory() {
    let env = TestEnv::new();
    env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a');",
    );
    std::fs::create_dir_all(env.path("prom")).unwrap();
    env.write("keys/id_test", "not really a key\n");
    let repo = env.path("app.sqlgit");
    sg(
        &env,
        T0,
        &[
            "init",
            "--repo",
            "app.sqlgit",
            "--db",
            "app.db",
            "--metrics-file",
            "prom/app.prom",
            "--ssh-key",
            "keys/id_test",
        ],
    )
    .success();
    assert_eq!(
        config_values(&env, &repo, "sqlgit.db"),
        [s(&env.path("app.db"))]
    );
    for key in ["sqlgit.metricsFile", "sqlgit.sshKey"] {
        let values = config_values(&env, &repo, key);
        assert!(
            values.len() == 1 && values[0].starts_with('/'),
            "{key} must be remembered as an absolute path (cron runs elsewhere): {values:?}"
        );
    }
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let mut cmd = sqlgit_cmd(&env, T0, &["snapshot", "--repo", &s(&repo)], &[]);
    cmd.current_dir(&elsewhere);
    run_limited(&env, cmd, b"").success().assert_quiet();
    assert!(
        env.path("prom/app.prom").is_file(),
        "the metrics file goes where it was configured"
    );
    assert_eq!(list_dir(&elsewhere), Vec::<String>::new());
}
