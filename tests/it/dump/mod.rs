//! Tests of `sqlgit dump DB [-o FILE] [--busy-timeout DURATION]` through the real binary.
//!
//! The dump is the foundation of snapshots, diffs and restores, so it is checked the way a user
//! relies on it: each fixture database is dumped, restored with the `sqlite3` CLI and compared value
//! by value with the original (storage class, float bits, raw text bytes, rowids, pragmas, schema).
//! Around that: determinism (same bytes twice, from another path, and from the restored copy), the
//! `-o` file's mode, the source file never being touched, and WAL databases read while a writer holds
//! them open. Random databases, concurrent writers and bad input have their own submodules.
//!
//! By file (this one holds the helpers they share): `fixtures`: every fixture round-trips;
//! `roundtrip`: foreign keys on, a real pipe, the corpus, STAT4; `connections`: two connections,
//! WAL; `cli`: usage errors and `-o` targets, odd names; `props`, `consistency`, `adversarial`,
//! `bad_input`, `real_world` as before.

mod adversarial;
mod bad_input;
mod cli;
mod connections;
mod consistency;
mod fixtures;
mod props;
mod real_world;
mod roundtrip;

use crate::env::{FileState, TestEnv, compare_databases, list_dir};
use rusqlite::Connection;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Run raw SQL bytes (any bytes, several statements: rusqlite's `&str` APIs take only UTF-8)
/// with `sqlite3_exec`.
pub fn try_exec_bytes(conn: &Connection, sql: &[u8]) -> Result<(), String> {
    use rusqlite::ffi;
    let c = std::ffi::CString::new(sql).map_err(|e| e.to_string())?;
    // SAFETY: a live connection and a NUL-terminated string SQLite only reads.
    let rc = unsafe {
        ffi::sqlite3_exec(
            conn.handle(),
            c.as_ptr(),
            None,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let msg = unsafe { std::ffi::CStr::from_ptr(ffi::sqlite3_errmsg(conn.handle())) };
    Err(msg.to_string_lossy().into_owned())
}

/// `sqlgit dump DB` to stdout; must succeed.
pub fn dump_stdout(env: &TestEnv, db: &Path) -> Vec<u8> {
    env.sqlgit(&[Path::new("dump"), db]).success().output.stdout
}

/// Everything a successful dump of `db` must satisfy; returns the dump and the restored database.
///
/// `db` must be a rollback-journal database that nothing else has open.
pub fn assert_roundtrip(env: &TestEnv, db: &Path) -> (Vec<u8>, PathBuf) {
    let stem = db.file_stem().unwrap().to_string_lossy().into_owned();
    let before = FileState::of(db);
    let dump_file = format!("{stem}.dump.sql");
    let mut dir_before = list_dir(db.parent().unwrap());
    dir_before.retain(|n| *n != dump_file);

    // -o FILE: quiet on stdout, created with mode 0600.
    let out = db.with_file_name(&dump_file);
    let run = env
        .sqlgit(&[Path::new("dump"), db, Path::new("-o"), out.as_path()])
        .success();
    if !run.stdout().is_empty() {
        run.fail("dump -o FILE wrote to stdout");
    }
    let dump = std::fs::read(&out).unwrap();
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode,
        0o600,
        "dump -o {}: mode {mode:o}, expected 600",
        out.display()
    );

    // stdout gives the same bytes, and so does a second run (determinism).
    let stdout = dump_stdout(env, db);
    assert_same_dump(&dump, &stdout, "dump -o FILE versus dump to stdout");
    let again = env.sqlgit(&[Path::new("dump"), db]).success().output.stdout;
    assert_same_dump(&dump, &again, "two dumps of the same database");

    // Reading never changes the source, nor leaves files beside it.
    before.assert_unchanged(db, "after three dumps");
    let mut dir_after = list_dir(db.parent().unwrap());
    dir_after.retain(|n| *n != dump_file);
    assert_eq!(
        dir_before, dir_after,
        "dump created or removed files beside the database"
    );

    // No path in the output: a copy under another name and directory dumps identically.
    let copy = env.path(format!("elsewhere/{stem} copy.sqlite"));
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(db, &copy).unwrap();
    assert_same_dump(
        &dump,
        &dump_stdout(env, &copy),
        "dump of a copy at another path",
    );

    // Restore with the sqlite3 CLI (exit 0, empty stderr) and compare value by value.
    let restored = env.restore(&dump, &format!("{stem}.restored.db"));
    compare_databases(db, &restored);

    // `sqlgit restore --to` (rows bound to prepared statements, the rest executed) gives the
    // same database as the sqlite3 CLI, and dumps back to the same bytes.
    let fast = env.path(format!("{stem}.fast.db"));
    env.sqlgit(&[
        Path::new("restore"),
        Path::new("--from-file"),
        out.as_path(),
        Path::new("--to"),
        fast.as_path(),
    ])
    .success();
    // Always the database executing the SQL in-process gives (the restore before its fast path);
    // and the CLI's, except where the bundled SQLite itself differs from 3.40 (README, known
    // limits: numeric affinity for text like '1'||char(0)||'2').
    let executed = execute_in_process(env, &dump, &format!("{stem}.executed.db"));
    compare_databases(&executed, &fast);
    let cli_agrees = !dump.windows(5).any(|w| w == b"char(")
        || std::panic::catch_unwind(|| compare_databases(&restored, &executed)).is_ok();
    let fast_dump = dump_stdout(env, &fast);
    if cli_agrees {
        compare_databases(&restored, &fast);
        assert_same_dump(&dump, &fast_dump, "dump of the database restore --to built");
    } else {
        let want = dump_stdout(env, &executed);
        assert_same_dump(
            &want,
            &fast_dump,
            "dumps of restore --to and of executing the SQL",
        );
    }

    // Fixed point: dump(restore(dump(db))) == dump(db).
    assert_same_dump(
        &dump,
        &dump_stdout(env, &restored),
        "dump of the restored database (fixed point)",
    );
    assert_format_1_restores(env, db, &stem, &restored, cli_agrees);
    (dump, restored)
}

/// Format 1 (one INSERT per row), which old snapshots hold forever, restores the same database
/// through the sqlite3 CLI and through `restore --to`.
fn assert_format_1_restores(
    env: &TestEnv,
    db: &Path,
    stem: &str,
    restored: &Path,
    cli_agrees: bool,
) {
    let mut cmd = env.sqlgit_cmd(&[Path::new("dump"), db]);
    cmd.env("SQLGIT_SNAPSHOT_FORMAT", "1");
    let v1 = env.run(cmd, b"").success().output.stdout;
    assert!(
        !v1.starts_with(b"-- sqlgit snapshot format 2"),
        "not format 1"
    );
    let cli = env.restore(&v1, &format!("{stem}.v1.restored.db"));
    compare_databases(restored, &cli);
    let file = env.write(format!("{stem}.v1.sql"), &v1);
    let fast = env.path(format!("{stem}.v1.fast.db"));
    env.sqlgit(&[
        Path::new("restore"),
        Path::new("--from-file"),
        file.as_path(),
        Path::new("--to"),
        fast.as_path(),
    ])
    .success();
    if cli_agrees {
        compare_databases(&cli, &fast);
    } else {
        compare_databases(
            &execute_in_process(env, &v1, &format!("{stem}.v1.executed.db")),
            &fast,
        );
    }
}

/// Build `root/NAME` by executing `sql` statement by statement on a plain connection, as every
/// restore did before the fast path (`sqlgit::restore::execute`, with the `ieee754` function).
pub fn execute_in_process(env: &TestEnv, sql: &[u8], name: &str) -> PathBuf {
    let db = env.path(name);
    let conn = Connection::open(&db).unwrap();
    sqlgit::dump::real::register_sql_functions(&conn).unwrap();
    sqlgit::restore::execute(&conn, sql).unwrap();
    drop(conn);
    db
}

/// Assert two dumps are byte-identical, showing the first differing line if not.
#[track_caller]
pub fn assert_same_dump(expected: &[u8], actual: &[u8], what: &str) {
    if expected == actual {
        return;
    }
    let (ea, aa): (Vec<&[u8]>, Vec<&[u8]>) = (
        expected.split(|&b| b == b'\n').collect(),
        actual.split(|&b| b == b'\n').collect(),
    );
    let line = ea
        .iter()
        .zip(&aa)
        .position(|(x, y)| x != y)
        .unwrap_or(ea.len().min(aa.len()));
    let show = |v: &Vec<&[u8]>| {
        v.get(line)
            .map(|l| String::from_utf8_lossy(&l[..l.len().min(300)]).into_owned())
            .unwrap_or("<end>".into())
    };
    panic!(
        "{what}: dumps differ ({} vs {} bytes), first at line {}:\n  expected: {}\n  actual:   {}",
        expected.len(),
        actual.len(),
        line + 1,
        show(&ea),
        show(&aa)
    );
}

/// Round-trip one fixture of `fixtures/NAME.sql`.
fn fixture_roundtrip(name: &str) -> (TestEnv, PathBuf, PathBuf) {
    let env = TestEnv::new();
    let db = env.fixture_db(name);
    let (_, restored) = assert_roundtrip(&env, &db);
    (env, db, restored)
}
