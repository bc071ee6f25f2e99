//! How the database is read: big tables on two connections give the one-connection dump byte for
//! byte, and a WAL database with uncheckpointed frames is read while its writer keeps it open.

use super::*;

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
