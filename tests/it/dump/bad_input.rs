//! Bad input: every way `sqlgit dump` can be pointed at something that is not a readable database.
//!
//! Each case must fail the same clean way: exit code 1, exactly one line on stderr that starts with
//! `sqlgit: ` and names the file, no panic text, and no output that restores as if it were a
//! complete dump — neither on stdout nor as an `-o` file (best: no file at all). A backup tool that
//! "succeeds" with an empty or half dump is worse than one that fails loudly.

use crate::env::{Run, TestEnv};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rusqlite::Connection;
use std::path::Path;
use std::time::{Duration, Instant};

const PAGE: usize = 4096;

/// Check the clean-failure contract for `sqlgit dump NAME [extra]`, to stdout and with `-o`.
fn assert_clean_failure(env: &TestEnv, name: &str, extra: &[&str]) {
    let mut args = vec!["dump", name];
    args.extend_from_slice(extra);
    let run = env.sqlgit(&args);
    check_error(&run, name);
    assert_not_restorable(env, run.stdout(), &run, "stdout");

    let out = format!("{}.out.sql", name.replace('/', "_"));
    let mut args_o = args.clone();
    args_o.extend_from_slice(&["-o", &out]);
    let run = env.sqlgit(&args_o);
    check_error(&run, name);
    if let Ok(bytes) = std::fs::read(env.path(&out)) {
        assert_not_restorable(env, &bytes, &run, "the -o file");
    }
}

#[track_caller]
fn check_error(run: &Run, name: &str) {
    if run.code() != Some(1) {
        run.fail("expected exit code 1");
    }
    let stderr = run.stderr_str();
    let lines: Vec<&str> = stderr.lines().collect();
    if lines.len() != 1 || !stderr.ends_with('\n') {
        run.fail("expected exactly one line on stderr");
    }
    if !lines[0].starts_with("sqlgit: ") {
        run.fail("the error line must start with 'sqlgit: '");
    }
    if !lines[0].contains(name) {
        run.fail(&format!("the error line must name the file {name:?}"));
    }
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        if stderr.contains(bad) {
            run.fail(&format!("panic text ({bad:?}) on stderr"));
        }
    }
}

/// Output of a failed dump must not restore cleanly into a database with any table in it.
#[track_caller]
fn assert_not_restorable(env: &TestEnv, bytes: &[u8], run: &Run, what: &str) {
    if bytes.is_empty() {
        return;
    }
    let probe = env.path(format!("probe{}.db", next_probe()));
    let restore = env.sqlite3(&probe, bytes);
    let clean = restore.code() == Some(0) && restore.stderr().is_empty();
    let tables: i64 = Connection::open(&probe)
        .unwrap()
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .unwrap_or(0);
    if clean && tables > 0 {
        run.fail(&format!(
            "{what} of a failed dump restores cleanly into a database with {tables} schema objects"
        ));
    }
}

fn next_probe() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A ~140-page database with one table and no index, so that a full scan reads every page.
fn bigger_db(env: &TestEnv, name: &str) -> std::path::PathBuf {
    let path = env.path(name);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA page_size = {PAGE}; PRAGMA journal_mode = DELETE;
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2500)
         INSERT INTO t SELECT x, printf('%.200c', char(65 + x % 26)) FROM c;"
    ))
    .unwrap();
    path
}

#[test]
fn missing_file() {
    let env = TestEnv::new();
    assert_clean_failure(&env, "missing.db", &[]);
    assert!(
        !env.path("missing.db").exists(),
        "dump created the missing database file"
    );
}

#[test]
fn missing_directory() {
    let env = TestEnv::new();
    assert_clean_failure(&env, "no/such/dir/x.db", &[]);
}

#[test]
fn directory() {
    let env = TestEnv::new();
    std::fs::create_dir(env.path("adir.db")).unwrap();
    assert_clean_failure(&env, "adir.db", &[]);
}

#[test]
fn text_file() {
    let env = TestEnv::new();
    env.write("notes.txt", "hello, this is not a database\n".repeat(200));
    assert_clean_failure(&env, "notes.txt", &[]);
}

#[test]
fn sql_script_file() {
    let env = TestEnv::new();
    env.write(
        "script.sql",
        "CREATE TABLE t(a);\nINSERT INTO t VALUES (1);\n",
    );
    assert_clean_failure(&env, "script.sql", &[]);
}

#[test]
fn random_bytes() {
    let env = TestEnv::new();
    let mut bytes = vec![0u8; 64 * 1024];
    Xoshiro256PlusPlus::seed_from_u64(42).fill(&mut bytes[..]);
    env.write("random.db", &bytes);
    assert_clean_failure(&env, "random.db", &[]);
}

#[test]
fn truncated_database() {
    let env = TestEnv::new();
    let full = bigger_db(&env, "full.db");
    let bytes = std::fs::read(&full).unwrap();
    assert!(
        bytes.len() > 50 * PAGE,
        "the source database is too small to truncate"
    );
    env.write("truncated.db", &bytes[..3 * PAGE]);
    assert_clean_failure(&env, "truncated.db", &[]);
}

#[test]
fn corrupted_page() {
    let env = TestEnv::new();
    let full = bigger_db(&env, "full.db");
    let mut bytes = std::fs::read(&full).unwrap();
    let pages = bytes.len() / PAGE;
    // Overwrite a page in the middle of the table's b-tree with garbage.
    let victim = pages / 2;
    bytes[victim * PAGE..(victim + 1) * PAGE].fill(0xAB);
    env.write("corrupt.db", &bytes);
    assert_clean_failure(&env, "corrupt.db", &[]);
}

#[test]
fn corrupted_header() {
    let env = TestEnv::new();
    let full = bigger_db(&env, "full.db");
    let mut bytes = std::fs::read(&full).unwrap();
    bytes[16..18].copy_from_slice(&[0x12, 0x34]); // page size 0x1234 is not a power of two
    env.write("badheader.db", &bytes);
    assert_clean_failure(&env, "badheader.db", &[]);
}

/// Another connection holds an EXCLUSIVE lock (rollback journal) for longer than `--busy-timeout`.
#[test]
fn locked_past_timeout() {
    let env = TestEnv::new();
    let db = bigger_db(&env, "locked.db");
    let holder = Connection::open(&db).unwrap();
    holder
        .execute_batch("BEGIN EXCLUSIVE; INSERT INTO t(v) VALUES ('uncommitted');")
        .unwrap();
    let start = Instant::now();
    assert_clean_failure(&env, "locked.db", &["--busy-timeout", "1s"]);
    let elapsed = start.elapsed();
    // Two runs (stdout and -o): each should have waited about one second, not given up at once.
    assert!(
        elapsed >= Duration::from_millis(1800),
        "gave up after {elapsed:?}: --busy-timeout 1s not honoured"
    );
    assert!(
        elapsed < Duration::from_secs(20),
        "took {elapsed:?} with --busy-timeout 1s"
    );
    // The hint names the one holder a longer wait cannot outlast.
    let run = env
        .sqlgit(&["dump", "locked.db", "--busy-timeout", "1s"])
        .failure();
    assert!(
        run.stderr_str()
            .contains("locking_mode=EXCLUSIVE never lets go"),
        "{}",
        run.stderr_str()
    );
    holder.execute_batch("ROLLBACK").unwrap();
    // Once the lock is gone the same database dumps fine.
    env.sqlgit(&["dump", "locked.db", "--busy-timeout", "1s"])
        .success();
}

#[test]
fn output_into_missing_directory() {
    let env = TestEnv::new();
    let db = bigger_db(&env, "ok.db");
    let run = env.sqlgit(&["dump", db.to_str().unwrap(), "-o", "no/such/dir/out.sql"]);
    check_error(&run, "out.sql");
}

/// Stricter than the spec ("no partial dump that looks complete"), as `sqlgit dump --help` promises
/// ("renamed into place when complete"): a failed dump leaves no -o file at all.
#[test]
fn failed_dump_leaves_no_output_file() {
    let env = TestEnv::new();
    let full = bigger_db(&env, "full.db");
    let mut bytes = std::fs::read(&full).unwrap();
    let pages = bytes.len() / PAGE;
    bytes[(pages - 2) * PAGE..(pages - 1) * PAGE].fill(0xAB);
    env.write("late-corrupt.db", &bytes);
    env.write("notes.txt", "not a database\n");
    for name in ["missing.db", "notes.txt", "late-corrupt.db"] {
        let out = format!("{name}.sql");
        let run = env.sqlgit(&["dump", name, "-o", &out]);
        check_error(&run, name);
        if Path::new(&env.path(&out)).exists() {
            run.fail(&format!("a failed dump left {out} behind"));
        }
    }
}
