//! A database nothing wrote to is known unchanged by its identity (SQLite's change counter or
//! WAL index, and the file's times), without hashing its pages. Every kind of write must still
//! be seen: through SQLite (WAL frames, a checkpoint that empties the WAL, the rollback
//! journal), and by other programs (bytes written into the file with its modification time put
//! back, a file renamed over the database).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use crate::env::TestEnv;
use crate::incremental::snapshot_json;

/// Longer than the time a file must rest before its identity is kept (3 s).
fn settle() {
    std::thread::sleep(Duration::from_millis(3300));
}

struct Db {
    path: PathBuf,
    repo: PathBuf,
}

impl Db {
    fn new(env: &TestEnv, name: &str, journal: &str) -> Db {
        let path = env.path(format!("{name}.db"));
        let db = Connection::open(&path).unwrap();
        db.execute_batch(&format!(
            "PRAGMA journal_mode={journal};
             CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000)
             INSERT INTO t SELECT i, printf('needle-%04d %s', i, hex(randomblob(20))) FROM c;"
        ))
        .unwrap();
        let repo = env.path(format!("{name}.sqlgit"));
        Db { path, repo }
    }

    fn run(&self, env: &TestEnv) -> serde_json::Value {
        snapshot_json(env, &self.path, &self.repo, &[])
    }

    /// A run right after a write: it commits the write, and the repository holds the database
    /// as it is.
    fn assert_seen(&self, env: &TestEnv, what: &str) {
        let run = self.run(env);
        assert_eq!(run["changed"], true, "{what}: {run}");
        assert_eq!(run["read"]["databases_unread"], 0, "{what}: {run}");
        let cat = env.sqlgit(&["cat".as_ref(), "--repo".as_ref(), self.repo.as_os_str()]);
        let dump = env.sqlgit(&["dump".as_ref(), self.path.as_os_str()]);
        assert_eq!(
            cat.success().stdout_str(),
            dump.success().stdout_str(),
            "{what}"
        );
    }

    /// After the file rested: a run keeps the identity, and the next one trusts it.
    fn assert_known_unchanged(&self, env: &TestEnv, what: &str) {
        self.run(env);
        let run = self.run(env);
        assert_eq!(run["changed"], false, "{what}: {run}");
        assert_eq!(run["read"]["databases_unread"], 1, "{what}: {run}");
    }
}

/// Write `to` over the first `from` in the file at `path` (same length), as a program other
/// than SQLite would, then put the file's modification time back.
fn edit_bytes(path: &Path, from: &str, to: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap_or_else(|| panic!("{from} not in {}", path.display()));
    bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
    let modified = std::fs::metadata(path).unwrap().modified().unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &bytes[at..at + to.len()], at as u64).unwrap();
    file.set_times(std::fs::FileTimes::new().set_modified(modified))
        .unwrap();
}

#[test]
fn every_write_is_seen_after_runs_that_read_no_page() {
    let env = TestEnv::new();
    let wal = Db::new(&env, "wal", "wal");
    let roll = Db::new(&env, "roll", "delete");
    settle();
    for db in [&wal, &roll] {
        db.assert_known_unchanged(&env, "start");
    }

    // Through SQLite: WAL frames (the file untouched); the rollback journal.
    let app = Connection::open(&wal.path).unwrap();
    app.execute_batch("UPDATE t SET v = 'frame' WHERE id = 7")
        .unwrap();
    wal.assert_seen(&env, "a commit in the WAL");
    let other = Connection::open(&roll.path).unwrap();
    other
        .execute_batch("UPDATE t SET v = 'journal' WHERE id = 7")
        .unwrap();
    drop(other);
    roll.assert_seen(&env, "a commit through the rollback journal");
    settle();
    wal.assert_known_unchanged(&env, "WAL with frames");
    roll.assert_known_unchanged(&env, "after a commit");

    // A checkpoint that empties the WAL; then again, from an empty WAL to an empty WAL.
    app.execute_batch("UPDATE t SET v = 'moved' WHERE id = 8; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    wal.assert_seen(&env, "a commit checkpointed out of the WAL");
    settle();
    wal.assert_known_unchanged(&env, "empty WAL");
    app.execute_batch("UPDATE t SET v = 'again' WHERE id = 9; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    wal.assert_seen(&env, "empty WAL to empty WAL");
    drop(app);

    // Another program writes into the file and puts its modification time back.
    settle();
    wal.assert_known_unchanged(&env, "before bytes written");
    roll.assert_known_unchanged(&env, "before bytes written");
    edit_bytes(&wal.path, "needle-0100", "NEEDLE-0100");
    edit_bytes(&roll.path, "needle-0100", "NEEDLE-0100");
    wal.assert_seen(&env, "bytes written into the file, time put back");
    roll.assert_seen(&env, "bytes written into the file, time put back");

    // A copy renamed over the database.
    settle();
    roll.assert_known_unchanged(&env, "before the copy");
    let copy = env.path("copy.db");
    std::fs::copy(&roll.path, &copy).unwrap();
    edit_bytes(&copy, "needle-0200", "NEEDLE-0200");
    std::fs::rename(&copy, &roll.path).unwrap();
    roll.assert_seen(&env, "a copy renamed over the database");
}
