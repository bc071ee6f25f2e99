//! The database and repository the `diff` and `history` tests of one row or one value share:
//! a script makes the database, and each change is snapshotted one minute after the last.

use std::path::PathBuf;

use crate::env::{Run, TestEnv};

pub(super) const T0: u64 = 1_800_000_000;

/// A database and its repository, snapshotted one minute apart.
pub(super) struct Repo {
    pub env: TestEnv,
    pub db: PathBuf,
    pub repo: PathBuf,
    pub snapshots: u64,
}

impl Repo {
    pub fn new(script: &str) -> Repo {
        let env = TestEnv::new();
        let db = env.db_from_script("app.db", script.as_bytes());
        let repo = env.path("app.sqlgit");
        let mut r = Repo {
            env,
            db,
            repo,
            snapshots: 0,
        };
        r.snap();
        r
    }

    pub fn sql(&self, sql: &str) {
        self.env
            .sqlite3_args(&["-bail"], &self.db, sql.as_bytes())
            .success()
            .assert_quiet();
    }

    /// Change the database with `sql`, then snapshot it.
    pub fn change(&mut self, sql: &str) {
        self.sql(sql);
        self.snap();
    }

    pub fn snap(&mut self) {
        self.env
            .snapshot_at(&self.db, &self.repo, T0 + 60 * self.snapshots);
        self.snapshots += 1;
    }

    /// `sqlgit ARGS --repo REPO`.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        let repo = self.repo.to_str().unwrap();
        all.extend(["--repo", repo]);
        self.env.sqlgit(&all)
    }
}
