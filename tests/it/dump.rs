//! Tests of `sqlgit dump DB [-o FILE] [--busy-timeout DURATION]` through the real binary.
//!
//! The dump is the foundation of snapshots, diffs and restores, so it is checked the way a user
//! relies on it: each fixture database is dumped, restored with the `sqlite3` CLI and compared value
//! by value with the original (storage class, float bits, raw text bytes, rowids, pragmas, schema).
//! Around that: determinism (same bytes twice, from another path, and from the restored copy), the
//! `-o` file's mode, the source file never being touched, and WAL databases read while a writer holds
//! them open. Random databases, concurrent writers and bad input have their own submodules.

mod adversarial;
mod bad_input;
mod consistency;
mod props;
mod real_world;

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

mod fixtures {
    use super::fixture_roundtrip;
    use rusqlite::Connection;

    #[test]
    fn types() {
        fixture_roundtrip("types");
    }
    #[test]
    fn floats() {
        fixture_roundtrip("floats");
    }
    #[test]
    fn text() {
        fixture_roundtrip("text");
    }
    #[test]
    fn rowids() {
        fixture_roundtrip("rowids");
    }
    #[test]
    fn schema() {
        fixture_roundtrip("schema");
    }
    #[test]
    fn identifiers() {
        fixture_roundtrip("identifiers");
    }
    #[test]
    fn utf16() {
        fixture_roundtrip("utf16");
    }
    #[test]
    fn utf16_nul() {
        fixture_roundtrip("utf16_nul");
    }
    #[test]
    fn utf16be() {
        fixture_roundtrip("utf16be");
    }
    #[test]
    fn demo() {
        fixture_roundtrip("demo");
    }

    /// FTS5 and R*Tree content comes back, and so do their query results.
    #[test]
    fn virtual_tables() {
        let (_env, db, restored) = fixture_roundtrip("virtual");
        let queries = [
            "SELECT rowid, title FROM docs WHERE docs MATCH 'sqlite' ORDER BY rowid",
            "SELECT rowid, title FROM docs WHERE docs MATCH 'word3 AND alpha2' ORDER BY rank, rowid",
            "SELECT rowid, highlight(docs, 1, '[', ']') FROM docs WHERE docs MATCH 'NUL OR Köln' ORDER BY rowid",
            "SELECT rowid FROM articles_fts WHERE articles_fts MATCH 'quick' ORDER BY rowid",
            "SELECT rowid FROM tri WHERE s LIKE '%ump%'",
            "SELECT id FROM geo WHERE min_x <= 100 AND max_x >= 90 AND min_y <= -60 ORDER BY id",
            "SELECT id, label FROM geo_i32 WHERE x0 <= 5 AND x1 >= 5 ORDER BY id",
        ];
        let (a, b) = (
            Connection::open(&db).unwrap(),
            Connection::open(&restored).unwrap(),
        );
        for q in queries {
            let run = |c: &Connection| -> Vec<String> {
                let mut st = c.prepare(q).unwrap_or_else(|e| panic!("{q}: {e}"));
                let n = st.column_count();
                st.query_map([], |r| {
                    Ok((0..n)
                        .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                        .collect::<Vec<_>>()
                        .join("|"))
                })
                .unwrap()
                .map(|r| r.unwrap())
                .collect()
            };
            let (ra, rb) = (run(&a), run(&b));
            assert!(!ra.is_empty(), "query returns nothing on the source: {q}");
            assert_eq!(ra, rb, "query results differ after restore: {q}");
        }
        for fts in ["docs", "articles_fts", "tri"] {
            b.execute(
                &format!("INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)"),
                [],
            )
            .unwrap_or_else(|e| {
                panic!("fts5 integrity-check of {fts} on the restored database: {e}")
            });
        }
        let rtree: String = b
            .query_row("SELECT rtreecheck('geo')", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rtree, "ok", "rtreecheck on the restored database");
    }
}

/// A dump restores the same with `PRAGMA foreign_keys=ON` in effect (child tables sort before their
/// parents, and the schema fixture has a dangling reference).
#[test]
fn restore_with_foreign_keys_on() {
    let env = TestEnv::new();
    let db = env.fixture_db("schema");
    let dump = dump_stdout(&env, &db);
    let restored = env.path("fk.db");
    env.sqlite3_args(&["-cmd", "PRAGMA foreign_keys=ON"], &restored, &dump)
        .success()
        .assert_quiet();
    compare_databases(&db, &restored);
}

/// `sqlgit dump DB | sqlite3 new.db` as in the spec, through a real pipe.
#[test]
fn dump_piped_into_sqlite3() {
    let env = TestEnv::new();
    let db = env.fixture_db("demo");
    let mut dump = env.sqlgit_cmd(&[Path::new("dump"), &db]);
    let mut child = dump.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let restored = env.path("piped.db");
    let mut sqlite = env.command(crate::env::sqlite3_bin());
    sqlite.arg(&restored).stdin(child.stdout.take().unwrap());
    let out = sqlite.output().unwrap();
    assert!(child.wait().unwrap().success(), "sqlgit dump failed");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    compare_databases(&db, &restored);
}

/// Big tables are formatted on two connections (`SQLGIT_ONE_CORE` turns that off): the dump is
/// byte for byte the one-connection dump, with rowids from i64::MIN to i64::MAX, a column named
/// `rowid`, values of every kind and redaction, and it restores exactly.
#[test]
fn two_connections_dump_what_one_dumps() {
    let env = TestEnv::new();
    let db = env.path("big.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "PRAGMA page_size=1024;
             CREATE TABLE t(id INTEGER PRIMARY KEY, r REAL, s TEXT, b BLOB, n);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 30000)
             INSERT INTO t SELECT x * 7919 - 100000000, x / 7.0, 'row ' || x || char(13, 0, 10),
               randomblob(x % 70), CASE x % 3 WHEN 0 THEN NULL WHEN 1 THEN x ELSE 'x' END FROM c;
             INSERT INTO t(id, s) VALUES (-9223372036854775808, 'min'), (9223372036854775807, 'max');
             CREATE TABLE named(rowid TEXT, v);
             INSERT INTO named(_rowid_, rowid, v) SELECT id, s, r FROM t;",
        )
        .unwrap();
    let (two, _) = assert_roundtrip(&env, &db);
    let one_core = |args: &[&std::ffi::OsStr]| {
        let mut cmd = env.sqlgit_cmd(args);
        cmd.env("SQLGIT_ONE_CORE", "1");
        env.run(cmd, b"").success().output.stdout
    };
    let one = one_core(&["dump".as_ref(), db.as_os_str()]);
    assert_same_dump(&one, &two, "the dump on one connection and on two");
    let redact = [
        "dump".as_ref(),
        db.as_os_str(),
        "--redact".as_ref(),
        "t.s".as_ref(),
    ];
    let two = env.sqlgit(&redact).success().output.stdout;
    assert_same_dump(
        &one_core(&redact),
        &two,
        "redacted, on one connection and on two",
    );
}

/// A WAL database with frames not yet checkpointed, read while the writer keeps it open.
#[test]
fn wal_with_uncheckpointed_frames() {
    let env = TestEnv::new();
    let db = env.path("wal.db");
    let conn = Connection::open(&db).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch(
        "PRAGMA wal_autocheckpoint=0;
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, r REAL);
         CREATE TABLE hidden(a);
         INSERT INTO hidden(rowid, a) VALUES (-3, 'neg'), (99, 'gap');",
    )
    .unwrap();
    conn.execute_batch("BEGIN").unwrap();
    for i in 0..2000 {
        conn.execute(
            "INSERT INTO t(v, r) VALUES (?1, ?2)",
            (format!("row {i}"), -0.0f64 - i as f64 / 7.0),
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT; PRAGMA user_version = 9;")
        .unwrap();
    conn.execute("UPDATE t SET v = 'last commit' WHERE id = 2000", [])
        .unwrap();

    let wal = env.path("wal.db-wal");
    let db_before = FileState::of(&db);
    let wal_len = std::fs::metadata(&wal).expect("the -wal file exists").len();
    assert!(wal_len > 0);

    let dump = dump_stdout(&env, &db);
    db_before.assert_unchanged(&db, "dump of a WAL database");
    assert_eq!(
        std::fs::metadata(&wal)
            .expect("-wal still exists after the dump")
            .len(),
        wal_len,
        "-wal changed"
    );

    let restored = env.restore(&dump, "restored.db");
    let r = Connection::open(&restored).unwrap();
    let (n, last): (i64, String) = r
        .query_row(
            "SELECT count(*), (SELECT v FROM t WHERE id = 2000) FROM t",
            [],
            |x| Ok((x.get(0)?, x.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (n, last.as_str()),
        (2000, "last commit"),
        "the dump misses un-checkpointed frames"
    );
    compare_databases(&db, &restored);

    // The dump held no lock: the writer can still write.
    conn.execute("INSERT INTO t(v) VALUES ('after dump')", [])
        .unwrap();
}

#[test]
fn usage_errors_exit_2() {
    let env = TestEnv::new();
    let db = env.fixture_db("utf16be");
    let db = db.to_str().unwrap();
    for args in [
        vec!["dump"],
        vec!["dump", db, "--busy-timeout", "banana"],
        vec!["dump", db, "--no-such-flag"],
        vec!["dump", db, "second.db"],
        vec!["dump", db, "-o"],
    ] {
        let run = env.sqlgit(&args).code_is(2);
        if run.stderr().is_empty() {
            run.fail("a usage error must say what is wrong on stderr");
        }
    }
    env.sqlgit(&["dump", db, "--busy-timeout", "250ms"])
        .success();
}

/// The real-world databases of `../shared/corpus/` (Chinook), when present; not copied into the repo.
#[test]
fn corpus_roundtrip() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let Ok(entries) = std::fs::read_dir(&corpus) else {
        eprintln!("skipped: no corpus at {}", corpus.display());
        return;
    };
    let env = TestEnv::new();
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "sqlite" | "db" | "sqlite3"))
        {
            let local = env.path(path.file_name().unwrap());
            std::fs::copy(&path, &local).unwrap();
            assert_roundtrip(&env, &local);
            n += 1;
        }
    }
    eprintln!("round-tripped {n} corpus databases");
}

/// `ANALYZE` by a SQLite built with STAT4 (like rusqlite's bundled one, or many apps') also fills
/// `sqlite_stat4`; a restore that drops it changes query plans. The sqlite3 3.40 CLI has no
/// STAT4: the table is created the way `writable_schema` makes one, and keeps its rows.
#[test]
fn stat4_is_kept() {
    let env = TestEnv::new();
    let db = env.path("stat4.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t(a, b); CREATE INDEX t_a ON t(a);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500)
             INSERT INTO t SELECT x % 13, x FROM c;
             ANALYZE;",
        )
        .unwrap();
    assert_roundtrip(&env, &db);
}

/// `-o FILE.gz` writes the same dump gzip-compressed (as `sqlgit dump --help` documents).
#[test]
fn output_gz_is_gzipped_dump() {
    use std::io::Read;
    let env = TestEnv::new();
    let db = env.fixture_db("demo");
    let plain = dump_stdout(&env, &db);
    let gz = env.path("demo.sql.gz");
    env.sqlgit(&[Path::new("dump"), &db, Path::new("-o"), gz.as_path()])
        .success();
    let mut unpacked = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&gz).unwrap())
        .read_to_end(&mut unpacked)
        .expect("-o FILE.gz is not gzip");
    assert_same_dump(&plain, &unpacked, "gunzip(dump -o FILE.gz) versus dump");
    let mode = std::fs::metadata(&gz).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "dump -o FILE.gz: mode {mode:o}");
}

/// `-o` naming something that is not a regular file (a FIFO here; `/dev/null` and `/dev/stdout`
/// alike) is written in place: replacing it with a renamed temp file would, run as root on
/// `/dev/null`, break the whole machine.
#[test]
fn output_to_a_fifo_writes_into_it() {
    let env = TestEnv::new();
    let db = env.fixture_db("demo");
    let fifo = env.path("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(&fifo).unwrap())
    };
    env.sqlgit(&[Path::new("dump"), &db, Path::new("-o"), &fifo])
        .success();
    let read = reader.join().unwrap();
    assert_eq!(read, dump_stdout(&env, &db));
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
        "the FIFO was replaced by a file"
    );
}

#[test]
fn a_name_that_is_not_utf8_is_named_in_the_error() {
    let env = TestEnv::new();
    for (script, said) in [
        (
            &b"CREATE TABLE \"t\xffx\"(a);"[..],
            "the name of table \"t\\xffx\"",
        ),
        (
            b"CREATE TABLE t(a, \"c\xfe\");",
            "column \"c\\xfe\" of table \"t\"",
        ),
        (
            b"CREATE TABLE t(a); CREATE INDEX \"i\xfe\" ON t(a);",
            "the name of index \"i\\xfe\"",
        ),
    ] {
        let db = env.db_from_script(&format!("n{}.db", said.len()), script);
        let run = env.sqlgit(&["dump", &db.display().to_string()]).code_is(1);
        let err = run.stderr_str();
        assert!(
            err.contains(said) && err.contains("not valid UTF-8"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// SQLite takes a name starting with `file:` as a URI: `file:app.db` opens `app.db`. A database
/// whose relative path starts so must still be that file for every command: dumped, restored
/// over (`--into`, its old content saved beside it) and created (`--to`), while a database named
/// `app.db` beside it is never read or written.
#[test]
fn a_relative_path_starting_with_file_colon_names_that_file() {
    let env = TestEnv::new();
    let ours = env.path("file:app.db");
    let other = env.path("app.db");
    let setup = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t(v) VALUES";
    Connection::open_with_flags(
        &ours,
        rusqlite::OpenFlags::default() - rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap()
    .execute_batch(&format!("{setup}('ours');"))
    .unwrap();
    env.sqlite3(&other, format!("{setup}('other');")).success();
    let before_other = FileState::of(&other);
    let dump = env.sqlgit(&["dump", "file:app.db"]).success().stdout_str();
    assert!(
        dump.contains("'ours'") && !dump.contains("'other'"),
        "{dump}"
    );

    env.sqlgit(&["snapshot", "file:app.db", "--repo", "r.sqlgit"])
        .success();
    let value = |db: &Path| -> String {
        Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap()
            .query_row("SELECT group_concat(v) FROM t", [], |r| r.get(0))
            .unwrap()
    };
    let plain = |db: &Path| {
        Connection::open_with_flags(
            db,
            rusqlite::OpenFlags::default() - rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .unwrap()
    };
    plain(&ours)
        .execute_batch("UPDATE t SET v = 'changed'")
        .unwrap();
    env.sqlgit(&["restore", "--repo", "r.sqlgit", "--into", "file:app.db"])
        .success();
    assert_eq!(value(&ours), "ours");
    let saved: Vec<String> = list_dir(&env.path("."))
        .into_iter()
        .filter(|n| n.starts_with("file:app.db.before-restore-"))
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(value(&env.path(&saved[0])), "changed");

    env.sqlgit(&["restore", "--repo", "r.sqlgit", "--to", "file:new.db"])
        .success();
    assert_eq!(value(&env.path("file:new.db")), "ours");
    assert!(!env.path("new.db").exists());
    before_other.assert_unchanged(&other, "the database named app.db beside it");
    assert_eq!(value(&other), "other");
}
