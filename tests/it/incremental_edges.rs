//! Incremental snapshots at the edges: rowids at the ends of their range, a database file
//! replaced or cut short while it is read, keys that are not UTF-8. Each run must equal a whole
//! read of the same moment, or fail loudly.

use std::path::Path;

use rusqlite::Connection;

use crate::env::TestEnv;
use crate::incremental::{check_run, snapshot_json};

/// `sqlgit cat` of the repository equals `sqlgit dump` of the database.
fn assert_snapshot_is_db(env: &TestEnv, db: &Path, repo: &Path, at: &str) {
    let cat = env.sqlgit(&["cat".as_ref(), "--repo".as_ref(), repo.as_os_str()]);
    let dump = env.sqlgit(&["dump".as_ref(), db.as_os_str()]).success();
    assert_eq!(cat.success().stdout_str(), dump.stdout_str(), "{at}");
}

/// The largest rowid starting a chunk (the row before it is big enough to end one): deleting,
/// updating and inserting it again are read like any other row, and the chunk that started at
/// it is replaced, not kept beside what was read (i64::MAX is a rowid, not an end marker).
#[test]
fn the_largest_rowid_starting_a_chunk_is_read_again() {
    let env = TestEnv::new();
    let path = env.path("app.db");
    let repo = env.path("app.sqlgit");
    let db = Connection::open(&path).unwrap();
    let max_row = "INSERT INTO t VALUES (9223372036854775807, 'max')";
    db.execute_batch(&format!(
        "CREATE TABLE t(a INTEGER PRIMARY KEY, b);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100)
         INSERT INTO t SELECT i, 'v' || i FROM c;
         UPDATE t SET b = zeroblob(3000) WHERE a = 100;
         {max_row};"
    ))
    .unwrap();
    snapshot_json(&env, &path, &repo, &[]);
    let changes = [
        "UPDATE t SET b = 'max2' WHERE a = 9223372036854775807".to_string(),
        "DELETE FROM t WHERE a = 9223372036854775807".to_string(),
        max_row.to_string(),
        "UPDATE t SET b = 'min' WHERE a = 1; \
         INSERT INTO t VALUES (-9223372036854775808, 'least')"
            .to_string(),
        "DELETE FROM t WHERE a = 9223372036854775807".to_string(),
    ];
    for (step, change) in changes.iter().enumerate() {
        db.execute_batch(change).unwrap();
        let run = snapshot_json(&env, &path, &repo, &[]);
        assert_eq!(run["read"]["whole"], false, "step {step}: {run}");
        assert_snapshot_is_db(&env, &path, &repo, &format!("step {step}: {change}"));
        let outcome = check_run(&repo, &path, &format!("step {step}"));
        assert!(
            outcome.mismatch.is_none(),
            "step {step}: {:?}",
            outcome.mismatch
        );
    }
}

/// Whether process `pid` has the file at `path` open.
fn has_open(pid: u32, path: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
}

/// The database file replaced (a changed copy renamed over it) while a snapshot waits for a
/// writer's lock: SQLite reads the file it opened, and so must the page map — a map of the new
/// file would make every later run find nothing changed.
#[test]
fn a_file_replaced_while_the_snapshot_waits_is_mapped_as_sqlite_reads_it() {
    let env = TestEnv::new();
    let path = env.path("app.db");
    let repo = env.path("app.sqlgit");
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE t(a INTEGER PRIMARY KEY, b);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 500)
         INSERT INTO t SELECT i, 'old' || i FROM c;",
    )
    .unwrap();
    snapshot_json(&env, &path, &repo, &[]);
    let new = env.path("new.db");
    std::fs::copy(&path, &new).unwrap();
    Connection::open(&new)
        .unwrap()
        .execute("UPDATE t SET b = 'NEW' WHERE a = 250", [])
        .unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let mut args = vec!["snapshot".as_ref(), path.as_os_str(), "--repo".as_ref()];
    args.extend([repo.as_os_str(), "-q".as_ref()]);
    let mut child = env.sqlgit_cmd(&args).spawn().unwrap();
    let opened = std::time::Instant::now();
    while !has_open(child.id(), &path) {
        assert!(
            opened.elapsed().as_secs() < 20,
            "the snapshot never opened the file"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::fs::rename(&new, &path).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    db.execute_batch("COMMIT").unwrap();
    assert!(child.wait().unwrap().success());
    drop(db);
    let next = snapshot_json(&env, &path, &repo, &[]);
    assert_eq!(next["changed"], true, "{next}");
    assert_snapshot_is_db(&env, &path, &repo, "after the replacement");
}

/// A WITHOUT ROWID table with a text key that is not UTF-8: a changed table is read whole (its
/// keys have no SQL text to read from), and every run succeeds and equals the database.
#[test]
fn a_key_that_is_not_utf8_reads_its_table_whole() {
    let env = TestEnv::new();
    let path = env.path("app.db");
    let repo = env.path("app.sqlgit");
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE x(k PRIMARY KEY, v) WITHOUT ROWID;
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 300)
         INSERT INTO x SELECT 'k' || i, i FROM c;
         INSERT INTO x VALUES (CAST(x'62ff' AS TEXT), 'not utf-8'), (CAST(x'6cfe' AS TEXT), 2);",
    )
    .unwrap();
    snapshot_json(&env, &path, &repo, &[]);
    for step in 0..3 {
        db.execute("UPDATE x SET v = ?1 WHERE k = 'k' || (?1 * 10)", [step + 1])
            .unwrap();
        let run = snapshot_json(&env, &path, &repo, &[]);
        assert_eq!(run["changed"], true, "step {step}: {run}");
        assert_snapshot_is_db(&env, &path, &repo, &format!("step {step}"));
        let outcome = check_run(&repo, &path, &format!("step {step}"));
        assert!(
            outcome.mismatch.is_none(),
            "step {step}: {:?}",
            outcome.mismatch
        );
    }
}

/// The database file cut short in place (a careless `cp` or `truncate`) while a run reads its
/// pages through the memory map faults the reading thread with SIGBUS. The run must fail as any
/// other: exit 1, one line saying what happened, the failure hook — never die of the signal.
/// Timing decides whether the cut lands inside the read, so it is tried until it has (at most 25
/// times); every try must end without a signal.
#[test]
fn a_file_cut_short_under_the_memory_map_fails_the_run_loudly() {
    let env = TestEnv::new();
    let path = env.path("app.db");
    let orig = env.path("orig.db");
    let repo = env.path("app.sqlgit");
    let hook = env.path("hook");
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t(a INTEGER PRIMARY KEY, b);
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 120000)
             INSERT INTO t SELECT i, randomblob(200) FROM c;",
        )
        .unwrap();
    std::fs::copy(&path, &orig).unwrap();
    snapshot_json(&env, &path, &repo, &[]);
    let on_failure = format!("echo failed > '{}'", hook.display());
    let mut caught = 0;
    for attempt in 0..25u64 {
        std::fs::copy(&orig, &path).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE t SET b = randomblob(200) WHERE a % 997 = ?1",
                [attempt as i64 + 1],
            )
            .unwrap();
        let _ = std::fs::remove_file(&hook);
        let args = [
            "snapshot",
            "-q",
            &path.display().to_string(),
            "--repo",
            &repo.display().to_string(),
            "--on-failure",
            &on_failure,
        ];
        let mut cmd = env.sqlgit_cmd(&args);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let child = cmd.spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(4 + (attempt % 10) * 4));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(4096)
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code().is_some(),
            "try {attempt}: the run died of a signal ({:?}): {stderr}",
            out.status
        );
        if stderr.contains("memory map") {
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(hook.exists(), "the failure hook did not run: {stderr}");
            caught += 1;
            break;
        }
        // A sane file again, and a map in step with it.
        std::fs::copy(&orig, &path).unwrap();
        let full = [
            "snapshot",
            "-q",
            "--full",
            &path.display().to_string(),
            "--repo",
            &repo.display().to_string(),
        ];
        let _ = env.sqlgit(&full);
    }
    eprintln!("cut inside the read: {caught} time(s)");
}

/// A map is its own database's: two databases of one schema in one repository have maps of the
/// same commit and fingerprint, and one copied over the other's (or one file for `App.db` and
/// `app.db` on a disk that ignores case) must not make a run reuse the other database's rows.
#[test]
fn a_map_copied_from_another_database_of_the_repository_is_not_trusted() {
    let env = TestEnv::new();
    let (one, two) = (env.path("one.db"), env.path("two.db"));
    let repo = env.path("app.sqlgit");
    for (path, row) in [(&one, "row of one"), (&two, "row of two")] {
        let db = Connection::open(path).unwrap();
        db.execute_batch(&format!(
            "CREATE TABLE t(a, b); INSERT INTO t VALUES (1, '{row}');"
        ))
        .unwrap();
    }
    env.sqlgit(&[
        "snapshot".as_ref(),
        one.as_os_str(),
        two.as_os_str(),
        "--repo".as_ref(),
        repo.as_os_str(),
        "--quiet".as_ref(),
    ])
    .success();
    let maps = repo.join("sqlgit-pages");
    std::fs::copy(maps.join("one.db.map"), maps.join("two.db.map")).unwrap();
    std::fs::copy(&one, &two).unwrap();
    env.sqlgit(&["snapshot", "--repo", repo.to_str().unwrap(), "--quiet"])
        .success();
    let cat = env.sqlgit(&["cat", "--repo", repo.to_str().unwrap(), "--db", "two.db"]);
    let dump = env.sqlgit(&["dump".as_ref(), two.as_os_str()]).success();
    assert_eq!(cat.success().stdout_str(), dump.stdout_str());
}
