//! WHEN in a pruned repository must name the snapshot it names in the full history (an unpruned
//! clone of the history remote): a time whose local answer rests on the oldest kept snapshot's
//! date (a slow clock dated it before its pruned parent), and a commit-id prefix that a pruned
//! snapshot's id starts with too. History remotes are local bare repositories.

use sha1::{Digest, Sha1};

use crate::env::{Run, TestEnv, one_error_line};

/// 2027-01-15T08:00:00Z.
const T0: u64 = 1_800_000_000;

fn snapshot(env: &TestEnv, now: u64, keep: &str) {
    let hist = env.path("hist.git").display().to_string();
    let args = [
        "snapshot",
        "app.db",
        "--repo",
        "app.sqlgit",
        "--history-remote",
        &hist,
        "--keep",
        keep,
        "-q",
    ];
    env.sqlgit_at(now, &args).success();
}

fn cat(env: &TestEnv, repo: &str, when: &str, now: u64) -> Run {
    env.sqlgit_at(now, &["cat", when, "--repo", repo])
}

/// Snapshots at 09:00, 10:00, 11:00, 12:00, then one a slow clock dated 08:30, then 14:00; two
/// kept. Every time gives what the clone gives; offline, a time that needs the pruned parent
/// fails naming the remote, while later times still answer locally.
#[test]
fn a_time_on_a_misdated_oldest_kept_snapshot_resolves_against_the_full_history() {
    let env = TestEnv::new();
    env.git_in(env.root(), &["init", "-q", "--bare", "hist.git"]);
    env.db_from_script("app.db", b"CREATE TABLE t(id INTEGER PRIMARY KEY, v);");
    for (i, off) in [3600, 7200, 10800, 14400, 1800, 21600].iter().enumerate() {
        env.sqlite3(env.path("app.db"), format!("INSERT INTO t(v) VALUES({i});"))
            .success();
        snapshot(&env, T0 + off, "2");
    }
    env.git_in(
        env.root(),
        &["clone", "-q", "--bare", "hist.git", "clone.git"],
    );
    let now = T0 + 7 * 3600;
    for when in [
        "2027-01-15T08:45:00Z",
        "2027-01-15T10:30:00Z",
        "2027-01-15T11:59:00Z",
        "2027-01-15T12:30:00Z",
        "2027-01-15T15:00:00Z",
    ] {
        let pruned = cat(&env, "app.sqlgit", when, now);
        let clone = cat(&env, "clone.git", when, now);
        assert_eq!(
            pruned.code(),
            clone.code(),
            "{when}: {}",
            pruned.stderr_str()
        );
        assert!(
            pruned.stdout() == clone.stdout(),
            "{when}: not the clone's snapshot"
        );
    }
    // Offline without the cache: refused, naming the remote and what to do.
    std::fs::rename(env.path("hist.git"), env.path("gone.git")).unwrap();
    std::fs::remove_dir_all(env.path("app.sqlgit/sqlgit-cache")).unwrap();
    let line = one_error_line(cat(&env, "app.sqlgit", "2027-01-15T10:30:00Z", now), 1);
    for says in ["history remote", "oldest kept snapshot", "by commit id"] {
        assert!(line.contains(says), "{line}");
    }
    cat(&env, "app.sqlgit", "2027-01-15T15:00:00Z", now).success();
}

/// A time from `t0` on at which a commit with `body` (dated `t0`) gets an id starting `prefix`.
fn grind(body: &[u8], prefix: &str, t0: u64) -> u64 {
    let text = String::from_utf8(body.to_vec()).unwrap();
    (t0..t0 + 4_000_000)
        .find(|t| {
            let b = text.replace(&t0.to_string(), &t.to_string());
            let mut h = Sha1::new();
            h.update(format!("commit {}\0", b.len()).as_bytes());
            h.update(b.as_bytes());
            let hex: String = h.finalize().iter().map(|x| format!("{x:02x}")).collect();
            hex.starts_with(prefix)
        })
        .expect("no colliding time")
}

/// A pruned snapshot P and a local one Q share 4 digits: the prefix is ambiguous, naming both,
/// as on the clone; offline, Q is taken with a warning saying the check could not be made.
#[test]
fn a_prefix_shared_with_a_pruned_snapshot_is_ambiguous() {
    let env = TestEnv::new();
    env.git_in(env.root(), &["init", "-q", "--bare", "hist.git"]);
    let db = env.db_from_script("app.db", b"CREATE TABLE t(v); INSERT INTO t VALUES('P');");
    snapshot(&env, T0, "1");
    let p = env.git_in(&env.path("app.sqlgit"), &["rev-parse", "main"]);
    let prefix = &p[..4];
    env.sqlite3(&db, "UPDATE t SET v='Q';").success();
    // Learn the next snapshot's commit body from a throw-away copy, then pick its time.
    for (from, to) in [("app.sqlgit", "probe.sqlgit"), ("hist.git", "probe.git")] {
        let mut cp = env.command("cp");
        cp.args(["-a", from, to]);
        env.run(cp, b"").success();
    }
    let probe_hist = env.path("probe.git").display().to_string();
    let args = [
        "snapshot",
        "app.db",
        "--repo",
        "probe.sqlgit",
        "--history-remote",
        &probe_hist,
        "-q",
    ];
    env.sqlgit_at(T0 + 10, &args).success();
    let probe = env.path("probe.sqlgit");
    let body = env.git_in(&probe, &["cat-file", "commit", "main"]) + "\n";
    let at = grind(body.as_bytes(), prefix, T0 + 10);
    snapshot(&env, at, "1");
    let q = env.git_in(&env.path("app.sqlgit"), &["rev-parse", "main"]);
    assert!(
        q.starts_with(prefix),
        "setup: {q} does not start with {prefix}"
    );
    let now = at + 60;
    let line = cat(&env, "app.sqlgit", prefix, now).code_is(1).stderr_str();
    for says in ["ambiguous commit id", &p[..12], &q[..12]] {
        assert!(line.contains(says), "{line}");
    }
    cat(&env, "app.sqlgit", &q, now).success();
    // Offline without the cache: the local snapshot, and a warning.
    std::fs::rename(env.path("hist.git"), env.path("gone.git")).unwrap();
    std::fs::remove_dir_all(env.path("app.sqlgit/sqlgit-cache")).unwrap();
    let run = cat(&env, "app.sqlgit", prefix, now).success();
    let err = run.stderr_str();
    assert!(err.contains("warning") && err.contains("full id"), "{err}");
    assert!(String::from_utf8_lossy(run.stdout()).contains("'Q'"));
}
