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

/// Longer than the time a file must rest before its identity is kept (60 s).
const SETTLE: Duration = Duration::from_secs(62);

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

/// Whether the file system holding `path` is one whose file times move with every write (the
/// identity is kept only there): ext2/3/4, XFS, Btrfs.
fn timed_filesystem(path: &Path) -> bool {
    let out = std::process::Command::new("stat")
        .args(["-f", "-c", "%t"])
        .arg(path)
        .output()
        .unwrap();
    let kind = String::from_utf8_lossy(&out.stdout).trim().to_string();
    ["ef53", "58465342", "9123683e"].contains(&kind.as_str())
}

/// One database per kind of write, all resting together (a minute), so each write comes after
/// runs that read no page; writes only the file's stat tells rest a minute more before the run
/// that must see them.
#[test]
fn every_write_is_seen_after_runs_that_read_no_page() {
    let env = TestEnv::new();
    let frames = Db::new(&env, "frames", "wal");
    let emptied = Db::new(&env, "emptied", "wal");
    let journal = Db::new(&env, "journal", "delete");
    let bytes_wal = Db::new(&env, "bytes_wal", "wal");
    let bytes = Db::new(&env, "bytes", "delete");
    let renamed = Db::new(&env, "renamed", "delete");
    let all = [&frames, &emptied, &journal, &bytes_wal, &bytes, &renamed];
    for db in all {
        db.run(&env);
    }
    std::thread::sleep(SETTLE);
    let timed = timed_filesystem(&frames.path);
    for db in all {
        db.run(&env); // keeps the identity
        let run = db.run(&env);
        assert_eq!(run["changed"], false, "{run}");
        let expect = if timed { 1 } else { 0 };
        assert_eq!(run["read"]["databases_unread"], expect, "{run}");
    }

    // Through SQLite, seen by the next run: WAL frames (the file untouched); the rollback
    // journal (its change counter).
    let app = Connection::open(&frames.path).unwrap();
    app.execute_batch("UPDATE t SET v = 'frame' WHERE id = 7")
        .unwrap();
    frames.assert_seen(&env, "a commit in the WAL");
    drop(app);
    let app = Connection::open(&journal.path).unwrap();
    app.execute_batch("UPDATE t SET v = 'journal' WHERE id = 7")
        .unwrap();
    drop(app);
    journal.assert_seen(&env, "a commit through the rollback journal");

    // Writes only the file's stat tells, seen by a run a minute later (when the file's times
    // no longer keep the identity from being kept): a checkpoint from an empty WAL to an empty
    // one; another program writing into the file and putting its modification time back; a
    // copy renamed over the database.
    let app = Connection::open(&emptied.path).unwrap();
    app.execute_batch("UPDATE t SET v = 'moved' WHERE id = 8; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    drop(app);
    for db in [&bytes_wal, &bytes] {
        edit_bytes(&db.path, "needle-0100", "NEEDLE-0100");
    }
    let copy = env.path("copy.db");
    std::fs::copy(&renamed.path, &copy).unwrap();
    edit_bytes(&copy, "needle-0200", "NEEDLE-0200");
    std::fs::rename(&copy, &renamed.path).unwrap();
    std::thread::sleep(SETTLE);
    emptied.assert_seen(&env, "empty WAL to empty WAL");
    bytes_wal.assert_seen(
        &env,
        "bytes written into the file (WAL mode), time put back",
    );
    bytes.assert_seen(&env, "bytes written into the file, time put back");
    renamed.assert_seen(&env, "a copy renamed over the database");
}
