//! Issue 16, time travel beyond local history, through the real binary:
//!
//! * `cat`, `diff`, `log --all` and `history` reach snapshots that `prune --keep 5` removed
//!   locally, by fetching the history remote (a `git daemon` on loopback) into the history cache
//!   (`REPO/sqlgit-cache`), and give the same answers as on an unpruned clone of that remote;
//! * the main repository's shallow graft, its confirmed ref and its pushes stay as they were;
//! * `history TABLE KEY` lists exactly the inserts, updates and deletes of one row, newest first,
//!   with old → new values (rowid tables and a composite WITHOUT ROWID key);
//! * offline, reaching back fails with one line naming the remote — unless the cache already
//!   holds what is asked for; an idle cache is deleted by the next prune.
//!
//! Snapshot times are pinned with `SQLGIT_NOW`, one minute apart.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::env::{TestEnv, rfc3339};
use crate::servers::GitDaemon;

/// `SQLGIT_NOW` of snapshot 1; snapshot i is taken at `T0 + 60 * i`.
const T0: u64 = 1_700_000_000;
/// The row whose life the tests follow (missing from the initial rows).
const ROW: u64 = 2500;

/// A history remote with `n` snapshots of a small database, and a local repository pruned to 5.
struct Fx {
    daemon: GitDaemon,
    env: TestEnv,
    db: PathBuf,
    repo: PathBuf,
    n: u64,
}

impl Fx {
    /// `n` snapshots, pushed to the history remote, then pruned locally to the newest 5.
    fn new(n: u64) -> Fx {
        let env = TestEnv::new();
        let daemon = GitDaemon::start_in(env.path("srv"));
        daemon.create_bare("hist");
        let db = env.db_from_script(
            "app.db",
            format!(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER NOT NULL);\n\
                 WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 4000)\n\
                 INSERT INTO t SELECT i, printf('row %d: %.40c', i, char(65 + i % 26)), i \
                 FROM c WHERE i <> {ROW};\n\
                 CREATE TABLE kv(k TEXT, j INTEGER, v, PRIMARY KEY(k, j)) WITHOUT ROWID;\n\
                 INSERT INTO kv VALUES('a', 1, 'x'), ('b', 2, 'y');\n"
            )
            .as_bytes(),
        );
        let repo = env.path("app.sqlgit");
        let fx = Fx {
            daemon,
            env,
            db,
            repo,
            n,
        };
        for i in 1..=n {
            fx.env.sqlite3(&fx.db, fx.change(i)).success();
            fx.sqlgit(i, &["snapshot", &fx.db_arg(), "--repo", &fx.repo_arg()])
                .success();
        }
        let url = fx.url();
        fx.sqlgit(
            n,
            &["push", "--repo", &fx.repo_arg(), "--history-remote", &url],
        )
        .success();
        fx.sqlgit(n, &["prune", "--repo", &fx.repo_arg(), "--keep", "5"])
            .success();
        assert_eq!(fx.local_count(), 5);
        fx
    }

    /// The SQL that makes snapshot `i` differ: a few scattered rows, and the followed rows' life.
    fn change(&self, i: u64) -> String {
        let mut sql = format!(
            "UPDATE t SET n = n + 1 WHERE id % 97 = {} AND id <> {ROW};\n",
            i % 97
        );
        sql.push_str(match i {
            10 => "INSERT INTO t VALUES(2500, 'born', 1);\n",
            20 => "UPDATE t SET v = 'first' WHERE id = 2500;\n",
            30 => "UPDATE t SET n = 2 WHERE id = 2500;\n",
            40 => "UPDATE t SET v = 'it''s third', n = 3 WHERE id = 2500;\n",
            50 => "DELETE FROM t WHERE id = 2500;\n",
            60 => "INSERT INTO t VALUES(2500, 'again', 9);\n",
            15 => "INSERT INTO kv VALUES('k 7', 3, 1.5);\n",
            25 => "UPDATE kv SET v = NULL WHERE k = 'k 7';\n",
            35 => "DELETE FROM kv WHERE k = 'k 7';\n",
            _ => "",
        });
        sql
    }

    fn sqlgit(&self, i: u64, args: &[&str]) -> crate::env::Run {
        self.env.sqlgit_at(T0 + 60 * i, args)
    }

    /// `sqlgit ARGS --repo REPO` at the time of the newest snapshot.
    fn on(&self, repo: &std::path::Path, args: &[&str]) -> crate::env::Run {
        let mut all: Vec<&str> = args.to_vec();
        let repo = repo.display().to_string();
        all.extend(["--repo", &repo]);
        self.sqlgit(self.n, &all)
    }

    fn url(&self) -> String {
        self.daemon.url("hist")
    }

    fn db_arg(&self) -> String {
        self.db.display().to_string()
    }

    fn repo_arg(&self) -> String {
        self.repo.display().to_string()
    }

    fn local_count(&self) -> usize {
        self.env
            .git_in(&self.repo, &["rev-list", "--count", "refs/heads/main"])
            .parse()
            .unwrap()
    }

    /// An unpruned bare clone of the history remote (sqlgit reads plain clones too).
    fn full_clone(&self) -> PathBuf {
        let clone = self.env.path("full.git");
        let dest = clone.display().to_string();
        self.env.git_in(
            self.env.root(),
            &["clone", "-q", "--bare", &self.url(), &dest],
        );
        clone
    }

    /// The main repository's pruning state: its shallow file and confirmed ref.
    fn graft_state(&self) -> (String, String) {
        (
            std::fs::read_to_string(self.repo.join("shallow")).unwrap(),
            self.env
                .git_in(&self.repo, &["rev-parse", "refs/remotes/history/main"]),
        )
    }
}

fn json_of(run: &crate::env::Run) -> Value {
    serde_json::from_slice(run.stdout())
        .unwrap_or_else(|e| run.fail(&format!("stdout is not JSON: {e}")))
}

#[test]
fn points_beyond_local_history_answer_as_on_an_unpruned_clone() {
    let fx = Fx::new(105);
    let clone = fx.full_clone();
    let graft = fx.graft_state();

    // The first reach back fetches, says so in one line on stderr, and answers like the clone.
    let old = fx.on(&fx.repo, &["cat", "HEAD~80"]).success();
    let said = old.stderr_str();
    assert_eq!(said.lines().count(), 1, "one line on stderr: {said}");
    assert!(
        said.contains(&format!("from history remote {}", fx.url())),
        "the line names the remote: {said}"
    );
    assert!(fx.repo.join("sqlgit-cache").is_dir());
    let want = fx.on(&clone, &["cat", "HEAD~80"]).success();
    assert!(old.stdout() == want.stdout(), "cat HEAD~80 differs");
    // A time resolves against the full history; later reach-backs do not fetch again.
    let when = rfc3339(T0 + 60 * 33 + 30);
    let by_time = fx.on(&fx.repo, &["cat", &when]).success().assert_quiet();
    assert!(by_time.stdout() == fx.on(&clone, &["cat", &when]).success().stdout());

    for args in [
        vec!["diff", "HEAD~100", "HEAD~2"],
        vec!["diff", "HEAD~60", "--json"],
        vec!["diff", when.as_str(), "HEAD~90", "--sql"],
        vec!["log", "--json"],
    ] {
        let mine = fx.on(&fx.repo, &args);
        let theirs = fx.on(&clone, &args);
        assert_eq!(mine.code(), theirs.code(), "{args:?}: exit codes");
        if args[0] == "log" {
            // Local history only, without --all.
            assert_eq!(json_of(&mine).as_array().unwrap().len(), 5);
            continue;
        }
        assert!(
            mine.stdout() == theirs.stdout(),
            "{args:?} differs: {}\nvs\n{}",
            mine.stdout_str(),
            theirs.stdout_str()
        );
    }
    let ids = |repo: &std::path::Path, all: bool| -> Vec<(String, Option<bool>)> {
        let args: &[&str] = if all {
            &["log", "--json", "--all"]
        } else {
            &["log", "--json"]
        };
        let v = json_of(&fx.on(repo, args).success());
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| (e["id"].as_str().unwrap().into(), e["local"].as_bool()))
            .collect()
    };
    let all = ids(&fx.repo, true);
    let full: Vec<String> = ids(&clone, false).into_iter().map(|e| e.0).collect();
    assert_eq!(all.iter().map(|e| e.0.clone()).collect::<Vec<_>>(), full);
    let marks: Vec<bool> = all.iter().map(|e| e.1.unwrap()).collect();
    assert_eq!(marks.iter().filter(|m| **m).count(), 5);
    assert!(marks[..5].iter().all(|m| *m), "the newest 5 are local");

    for key in [&["2500"][..], &["97"], &["1"], &["3999"], &["k 7", "3"]] {
        let table = if key.len() == 2 { "kv" } else { "t" };
        let mut args = vec!["history", table];
        args.extend_from_slice(key);
        let human = fx.on(&fx.repo, &args);
        let want = fx.on(&clone, &args);
        assert_eq!(human.code(), want.code(), "{args:?}");
        assert!(human.stdout() == want.stdout(), "{args:?} differs");
        args.push("--json");
        assert_eq!(
            json_of(&fx.on(&fx.repo, &args)),
            json_of(&fx.on(&clone, &args))
        );
    }

    // The main repository's pruning state is untouched, and snapshots still push and prune.
    assert_eq!(fx.graft_state(), graft);
    assert_eq!(fx.local_count(), 5);
    fx.env.sqlite3(&fx.db, fx.change(fx.n + 1)).success();
    fx.sqlgit(
        fx.n + 1,
        &["snapshot", &fx.db_arg(), "--repo", &fx.repo_arg()],
    )
    .success();
    assert_eq!(fx.local_count(), 5);
    let head = fx.env.git_in(&fx.repo, &["rev-parse", "refs/heads/main"]);
    let remote = fx.env.git_in(
        &fx.daemon.repo_path("hist"),
        &["rev-parse", "refs/heads/main"],
    );
    assert_eq!(
        head, remote,
        "the snapshot after the fetches pushed as a fast-forward"
    );
    fx.env.git_in(
        &fx.repo,
        &["fsck", "--strict", "--no-dangling", "--no-progress"],
    );

    // An idle cache is deleted by the next prune; a fresh one still works.
    let cache = fx.repo.join("sqlgit-cache");
    let touched = std::process::Command::new("touch")
        .args(["-d", "3 hours ago"])
        .arg(cache.join("sqlgit-used"))
        .status()
        .unwrap();
    assert!(touched.success());
    let pruned = fx
        .sqlgit(
            fx.n + 1,
            &["prune", "--repo", &fx.repo_arg(), "--keep", "5"],
        )
        .success();
    assert!(
        pruned.stdout_str().contains("deleted the cache"),
        "{}",
        pruned.stdout_str()
    );
    assert!(!cache.exists(), "the idle cache was not deleted");
}

#[test]
fn history_lists_every_insert_update_and_delete_of_a_row_newest_first() {
    let fx = Fx::new(64);
    let run = fx
        .on(&fx.repo, &["history", "t", "2500", "--json"])
        .success();
    let events = json_of(&run);
    let events = events.as_array().unwrap();
    let log = json_of(&fx.on(&fx.repo, &["log", "--all", "--json"]).success());
    let ids: Vec<String> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    // Snapshot i is ids[n - i].
    let commit = |i: u64| ids[(fx.n - i) as usize].clone();
    let expected = json!([
        {"commit": commit(60), "time": rfc3339(T0 + 3600), "kind": "inserted", "old": null,
         "new": {"id": 2500, "v": "again", "n": 9}},
        {"commit": commit(50), "time": rfc3339(T0 + 3000), "kind": "deleted",
         "old": {"id": 2500, "v": "it's third", "n": 3}, "new": null},
        {"commit": commit(40), "time": rfc3339(T0 + 2400), "kind": "updated",
         "old": {"v": "first", "n": 2}, "new": {"v": "it's third", "n": 3}},
        {"commit": commit(30), "time": rfc3339(T0 + 1800), "kind": "updated",
         "old": {"n": 1}, "new": {"n": 2}},
        {"commit": commit(20), "time": rfc3339(T0 + 1200), "kind": "updated",
         "old": {"v": "born"}, "new": {"v": "first"}},
        {"commit": commit(10), "time": rfc3339(T0 + 600), "kind": "inserted", "old": null,
         "new": {"id": 2500, "v": "born", "n": 1}},
    ]);
    assert_eq!(Value::Array(events.clone()), expected);

    // The people's form: one line per change, newest first, old → new.
    let human = fx.on(&fx.repo, &["history", "t", "2500"]).success();
    let lines: Vec<String> = human.stdout_str().lines().map(str::to_string).collect();
    assert!(
        lines[0].contains("6 changes in 64 snapshots"),
        "{}",
        lines[0]
    );
    let kinds: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(3).unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "inserted", "deleted", "updated", "updated", "updated", "inserted"
        ]
    );
    assert!(
        lines[3].contains("v: 'first' → 'it''s third', n: 2 → 3"),
        "{}",
        lines[3]
    );

    // --since/--until narrow it (changes after SINCE, up to UNTIL), by time or revision.
    let since = rfc3339(T0 + 60 * 25);
    let run = fx
        .on(
            &fx.repo,
            &[
                "history", "t", "2500", "--json", "--since", &since, "--until", "HEAD~10",
            ],
        )
        .success();
    let kinds: Vec<String> = json_of(&run)
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["deleted", "updated", "updated"]);

    // A composite WITHOUT ROWID key, and a row that never existed (exit 1), and a bad key (2).
    let kv = json_of(
        &fx.on(&fx.repo, &["history", "kv", "k 7", "3", "--json"])
            .success(),
    );
    let kinds: Vec<&str> = kv
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["deleted", "updated", "inserted"]);
    assert_eq!(kv[1]["old"], json!({"v": 1.5}));
    assert_eq!(kv[1]["new"], json!({"v": null}));
    let none = fx.on(&fx.repo, &["history", "t", "99999"]).code_is(1);
    assert!(none.stdout_str().starts_with("no insert, update or delete"));
    fx.on(&fx.repo, &["history", "t", "abc"]).code_is(2);
}

#[test]
fn offline_the_error_names_the_remote_unless_the_cache_holds_the_point() {
    let mut fx = Fx::new(12);
    fx.daemon.stop();
    let url = fx.url();
    let run = fx.on(&fx.repo, &["cat", "HEAD~9"]);
    let err = crate::env::one_error_line(run, 1);
    assert!(err.contains(&url), "names the remote {url}: {err}");
    let run = fx.on(&fx.repo, &["history", "t", "1"]);
    let err = crate::env::one_error_line(run, 2);
    assert!(err.contains(&url), "names the remote {url}: {err}");
    assert!(!fx.repo.join("sqlgit-cache/refs/heads/main").exists());
    // Local points need no remote.
    fx.on(&fx.repo, &["cat", "HEAD~2"]).success().assert_quiet();

    // Once fetched, the cache answers offline (history before the oldest kept snapshot never
    // changes).
    fx.daemon.start();
    fx.on(&fx.repo, &["cat", "HEAD~9"]).success();
    fx.daemon.stop();
    fx.on(&fx.repo, &["cat", "HEAD~9"]).success().assert_quiet();
    let events = json_of(&fx.on(&fx.repo, &["history", "t", "97", "--json"]).success());
    assert!(!events.as_array().unwrap().is_empty());
}

/// Readers reaching past local history at the same moment, before the cache exists (log --all
/// from several terminals, a cat beside them): each must succeed. They fetch one after the
/// other instead of creating the cache over each other.
#[test]
fn readers_reaching_back_at_the_same_moment_all_succeed() {
    let fx = Fx::new(12);
    for round in 0..3 {
        let _ = std::fs::remove_dir_all(fx.repo.join("sqlgit-cache"));
        let repo = fx.repo_arg();
        let children: Vec<_> = (0..5)
            .map(|i| {
                let args: Vec<&str> = if i == 0 {
                    vec!["cat", "HEAD~8", "--repo", &repo]
                } else {
                    vec!["log", "--all", "--repo", &repo]
                };
                let mut cmd = fx.env.sqlgit_cmd(&args);
                cmd.env("SQLGIT_NOW", (T0 + 60 * fx.n).to_string())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                cmd.spawn().unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// `diff` shows a negative key as `-3`: `history` takes it so, without `--`, with its flags
/// before or after it (a negative REAL key of a WITHOUT ROWID table too).
#[test]
fn a_negative_key_is_taken_as_diff_shows_it() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(a INTEGER PRIMARY KEY, b);
          INSERT INTO t VALUES(-3,'x'),(2,NULL);
          CREATE TABLE w(k REAL PRIMARY KEY, v) WITHOUT ROWID;
          INSERT INTO w VALUES(-1.5,'y');",
    );
    let repo = env.path("app.sqlgit");
    let (db_arg, repo_arg) = (db.to_str().unwrap(), repo.to_str().unwrap());
    env.sqlgit(&["snapshot", db_arg, "--repo", repo_arg, "-q"])
        .success();
    env.sqlite3(
        &db,
        "UPDATE t SET b = 'z' WHERE a = -3; UPDATE w SET v = 'q';",
    )
    .success();
    env.sqlgit(&["snapshot", db_arg, "--repo", repo_arg, "-q"])
        .success();
    for args in [
        vec!["history", "t", "-3", "--repo", repo_arg],
        vec!["history", "--repo", repo_arg, "t", "-3"],
        vec!["history", "--repo", repo_arg, "w", "-1.5"],
    ] {
        let out = env.sqlgit(&args).success().stdout_str();
        assert!(out.contains("2 changes in 2 snapshots"), "{args:?}: {out}");
        assert!(out.contains("updated"), "{args:?}: {out}");
    }
}
