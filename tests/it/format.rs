//! Snapshot formats: a repository written in format 1 (one INSERT per row, one level of group
//! folders) moves to format 2 (one multi-row INSERT per chunk, one row per line, nested groups)
//! at its next snapshot, and every old point stays restorable (`cat | sqlite3`, `restore --to`,
//! plain `git archive | tar -xO | sqlite3`), verifiable and diffable across the boundary.
//! (`SQLGIT_SNAPSHOT_FORMAT=1` writes format 1, as an older sqlgit did.)

use std::path::{Path, PathBuf};

use crate::env::{Run, TestEnv, compare_databases};

const T0: u64 = 1_750_000_000;

struct Fx {
    env: TestEnv,
    db: PathBuf,
    repo: PathBuf,
    commits: Vec<String>,
    /// A copy of the database at each snapshot.
    states: Vec<PathBuf>,
}

impl Fx {
    fn new() -> Fx {
        let env = TestEnv::new();
        let mut script = String::from(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, r REAL, b BLOB);\n\
             CREATE TABLE k(a TEXT, b INT, PRIMARY KEY(a, b)) WITHOUT ROWID;\n\
             CREATE INDEX t_v ON t(v);\n",
        );
        for i in 0..3000 {
            script.push_str(&format!(
                "INSERT INTO t VALUES({i}, 'row {i} it''s\r\nmulti', {i}.25, X'{i:04x}');\n\
                 INSERT INTO k VALUES('k{}', {i});\n",
                i % 97
            ));
        }
        let db = env.db_from_script("app.db", script.as_bytes());
        let repo = env.path("app.sqlgit");
        Fx {
            env,
            db,
            repo,
            commits: Vec::new(),
            states: Vec::new(),
        }
    }

    fn repo_arg(&self) -> &str {
        self.repo.to_str().unwrap()
    }

    fn sql(&self, sql: &str) {
        self.env.sqlite3(&self.db, sql).success().assert_quiet();
    }

    /// A snapshot in format 1 or the current one; returns stdout.
    fn snapshot(&mut self, format_1: bool) -> String {
        let n = self.commits.len();
        let mut cmd = self.env.sqlgit_cmd(&[
            Path::new("snapshot"),
            &self.db,
            Path::new("--repo"),
            &self.repo,
        ]);
        cmd.env("SQLGIT_NOW", (T0 + 60 * n as u64).to_string());
        if format_1 {
            cmd.env("SQLGIT_SNAPSHOT_FORMAT", "1");
        }
        let run = self.env.run(cmd, b"").success().assert_quiet();
        let out = run.stdout_str();
        let id = out.split_whitespace().next().unwrap().to_string();
        assert_eq!(id.len(), 40, "a new commit: {out}");
        let state = self.env.path(format!("state{n}.db"));
        std::fs::copy(&self.db, &state).unwrap();
        self.commits.push(id);
        self.states.push(state);
        out
    }

    fn sqlgit(&self, args: &[&str]) -> Run {
        self.env.sqlgit(args)
    }

    /// Every way to restore snapshot `i` gives back the database as it was.
    fn assert_restorable(&self, i: usize, tag: &str) {
        let id = &self.commits[i];
        let cat = self
            .sqlgit(&["cat", id, "--repo", self.repo_arg()])
            .success();
        let piped = self.env.restore(cat.stdout(), &format!("cat{i}{tag}.db"));
        compare_databases(&self.states[i], &piped);
        let to = self.env.path(format!("to{i}{tag}.db"));
        self.sqlgit(&[
            "restore",
            id,
            "--repo",
            self.repo_arg(),
            "--to",
            to.to_str().unwrap(),
        ])
        .success();
        compare_databases(&self.states[i], &to);
        let archived = self.env.path(format!("archived{i}{tag}.db"));
        let mut sh = self.env.command("sh");
        sh.arg("-c").arg(format!(
            "git -C '{}' archive {id} | tar -xO | sqlite3 -bail '{}'",
            self.repo.display(),
            archived.display()
        ));
        self.env.run(sh, b"").success().assert_quiet();
        compare_databases(&self.states[i], &archived);
        self.sqlgit(&["verify", id, "--repo", self.repo_arg()])
            .success();
    }
}

#[test]
fn a_format_1_repository_moves_to_format_2_and_keeps_every_point() {
    let mut fx = Fx::new();
    fx.snapshot(true);
    fx.sql("UPDATE t SET v = 'changed' WHERE id = 1500;");
    fx.snapshot(true);
    // The first format-2 snapshot rewrites every file, even with nothing changed.
    fx.snapshot(false);
    fx.sql("UPDATE t SET v = 'changed again' WHERE id = 2500; DELETE FROM k WHERE b = 7;");
    fx.snapshot(false);
    let format = |i: usize| {
        let cat = fx
            .sqlgit(&["cat", &fx.commits[i], "--repo", fx.repo_arg()])
            .success();
        cat.stdout().starts_with(b"-- sqlgit snapshot format 2\n")
    };
    assert_eq!(
        (0..4).map(format).collect::<Vec<_>>(),
        [false, false, true, true]
    );
    let config = fx.env.command("git");
    let mut config = config;
    config
        .arg("-C")
        .arg(&fx.repo)
        .args(["config", "sqlgit.format"]);
    assert_eq!(fx.env.run(config, b"").success().stdout_str().trim(), "2");
    for i in 0..4 {
        fx.assert_restorable(i, "");
    }
    // Across the boundary: the same data is no difference; a change is exactly that change.
    let repo = fx.repo_arg().to_string();
    let (c1, c2, c3) = (&fx.commits[1], &fx.commits[2], &fx.commits[3]);
    fx.sqlgit(&["diff", c1, c2, "--repo", &repo])
        .success()
        .assert_quiet();
    // A patch between them changes nothing, and says so by its exit status as `diff` does.
    let patch = fx
        .sqlgit(&["diff", c1, c2, "--repo", &repo, "--sql"])
        .success();
    assert!(
        !patch.stdout_str().contains("INSERT") && !patch.stdout_str().contains("DELETE"),
        "{}",
        patch.stdout_str()
    );
    let json = fx
        .sqlgit(&["diff", &fx.commits[0], c3, "--repo", &repo, "--json"])
        .code_is(1);
    let doc: serde_json::Value = serde_json::from_slice(json.stdout()).unwrap();
    let counts: Vec<(String, u64, u64, u64)> = doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let n = |k: &str| t[k].as_u64().unwrap();
            let name = t["name"].as_str().unwrap().to_string();
            (name, n("inserted"), n("updated"), n("deleted"))
        })
        .collect();
    assert_eq!(
        counts,
        [("k".to_string(), 0, 0, 1), ("t".to_string(), 0, 2, 0)],
        "{doc}"
    );
    // Pruning across the boundary keeps the newest points restorable.
    fx.sqlgit(&["prune", "--repo", &repo, "--keep", "1"])
        .success();
    fx.assert_restorable(3, "-pruned");
}

/// Format 2 in plain git: one changed row is one changed line of `git diff`.
#[test]
fn format_2_git_diff_shows_one_line_per_changed_row() {
    let mut fx = Fx::new();
    fx.snapshot(false);
    fx.sql("UPDATE t SET r = -1.5 WHERE id = 1234;");
    fx.snapshot(false);
    let mut cmd = fx.env.command("git");
    cmd.arg("-C")
        .arg(&fx.repo)
        .args(["diff", "--no-color", "-U0", &fx.commits[0], &fx.commits[1]]);
    let diff = fx.env.run(cmd, b"").success().stdout_str();
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    // (The text values span two lines: the changed REAL is on the row's last line.)
    assert_eq!(changed.len(), 2, "{diff}");
    assert!(
        changed[0].starts_with('-') && changed[0].contains(",1234.25,"),
        "{diff}"
    );
    assert!(
        changed[1].starts_with('+') && changed[1].contains(",-1.5,"),
        "{diff}"
    );
}

/// An `SQLGIT_SNAPSHOT_FORMAT` other than 1 or 2 is a usage error (exit 2) naming the valid
/// values, for `snapshot` (recorded: the failure hook fires) and `dump`: never a quiet format 2.
#[test]
fn a_bad_snapshot_format_variable_is_a_usage_error() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(x); INSERT INTO t VALUES(1);");
    let repo = env.path("r");
    let hooks = env.path("hooks.txt");
    let r = repo.to_str().unwrap();
    let d = db.to_str().unwrap();
    let hook = crate::env::logging_hook(&hooks);
    env.sqlgit(&["snapshot", d, "--repo", r, "-q", "--on-failure", &hook])
        .success();
    env.sqlite3(&db, "INSERT INTO t VALUES(2)")
        .success()
        .assert_quiet();
    let head = env.git_in(&repo, &["rev-parse", "main"]);
    for value in ["3", "abc", " 1", "0"] {
        for args in [&["snapshot", "--repo", r, "-q"][..], &["dump", d][..]] {
            let mut cmd = env.sqlgit_cmd(args);
            cmd.env("SQLGIT_SNAPSHOT_FORMAT", value);
            let run = env.run(cmd, b"");
            let err = run.stderr_str();
            assert_eq!(run.code(), Some(2), "{value:?} {args:?}: {err}");
            assert!(
                err.contains("SQLGIT_SNAPSHOT_FORMAT") && err.contains("give 1, or 2"),
                "{value:?} {args:?}: {err}"
            );
            assert!(run.stdout().is_empty(), "{value:?} {args:?}");
        }
    }
    assert_eq!(
        env.git_in(&repo, &["rev-parse", "main"]),
        head,
        "no snapshot"
    );
    let fired = crate::env::hook_lines(&hooks);
    assert_eq!(fired.len(), 4, "{fired:?}");
    assert!(fired[0].contains("SQLGIT_SNAPSHOT_FORMAT"), "{fired:?}");
    // 1, 2 and an empty value are valid.
    for value in ["1", "2", ""] {
        let mut cmd = env.sqlgit_cmd(&["dump", d]);
        cmd.env("SQLGIT_SNAPSHOT_FORMAT", value);
        env.run(cmd, b"").success();
    }
}
