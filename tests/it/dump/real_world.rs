//! Databases as ordinary tools and migrations make them, each a way an earlier dump broke:
//! schema text ending in a comment, CR LF line ends, lines the sqlite3 shell takes for `;`,
//! non-UTF-8 schema text, UTF-16 text UTF-8 cannot carry, rowids no name reaches, rows that
//! break CHECK constraints, sqlite_sequence left over, helper names taken, 2000 columns, a hot
//! rollback journal. Each database goes through the full round trip (`assert_roundtrip`: sqlite3
//! restore, value-by-value comparison, fixed point), the stored schema text is compared byte for
//! byte, and the snapshot + `restore --to` path must give the same dump.

use super::{assert_roundtrip, assert_same_dump, dump_stdout, try_exec_bytes};
use crate::env::TestEnv;
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// A new rollback-journal database made by `build`.
fn make_db(env: &TestEnv, name: &str, build: impl FnOnce(&Connection)) -> PathBuf {
    let path = env.path(name);
    let conn = Connection::open(&path).unwrap();
    build(&conn);
    drop(conn);
    path
}

/// (type, name, sql bytes) of every schema object, sorted.
fn schema_bytes(db: &Path) -> Vec<(String, String, Option<Vec<u8>>)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name, CAST(sql AS BLOB) FROM sqlite_schema ORDER BY type, name")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// The whole check: dump, sqlite3 restore, exact comparison, schema bytes, and the snapshot +
/// in-process restore path.
fn assert_exact(env: &TestEnv, db: &Path) -> PathBuf {
    let (dump, restored) = assert_roundtrip(env, db);
    assert_eq!(
        schema_bytes(db),
        schema_bytes(&restored),
        "schema text of {} changed in the sqlite3 restore",
        db.display()
    );
    let stem = db.file_stem().unwrap().to_string_lossy().into_owned();
    let repo = env.path(format!("{stem}.sqlgit"));
    let to = env.path(format!("{stem}.restore-to.db"));
    env.sqlgit(&[Path::new("snapshot"), db, Path::new("--repo"), &repo])
        .success();
    env.sqlgit(&[
        Path::new("restore"),
        Path::new("--repo"),
        &repo,
        Path::new("--to"),
        &to,
    ])
    .success();
    assert_same_dump(&dump, &dump_stdout(env, &to), "dump after restore --to");
    assert_eq!(
        schema_bytes(db),
        schema_bytes(&to),
        "schema after restore --to"
    );
    restored
}

#[test]
fn schema_text_ending_in_comments() {
    let env = TestEnv::new();
    let db = make_db(&env, "comments.db", |c| {
        // No `;` after the last statement: SQLite stores the trailing comment as typed.
        c.execute_batch("CREATE TABLE t(a, b);").unwrap();
        c.execute_batch("CREATE VIEW v AS SELECT a FROM t -- note")
            .unwrap();
        c.execute_batch("CREATE VIEW w AS SELECT b FROM t /* open comment")
            .unwrap();
        c.execute_batch("CREATE INDEX i ON t(a) -- why").unwrap();
        c.execute_batch("CREATE TABLE k(a PRIMARY KEY, b) WITHOUT ROWID -- kept")
            .unwrap();
        c.execute_batch("CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  SELECT 1; -- inside\nEND")
            .unwrap();
        c.execute_batch(
            "CREATE TABLE m(\n  id INTEGER PRIMARY KEY, -- the key\n  x /* ; */ TEXT\n);\
             INSERT INTO t VALUES(1, 2); INSERT INTO k VALUES('p', 'q');",
        )
        .unwrap();
    });
    let restored = assert_exact(&env, &db);
    let n: i64 = Connection::open(&restored)
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "the rows of t were lost");
}

#[test]
fn schema_text_with_cr_lf_and_shell_terminator_lines() {
    let env = TestEnv::new();
    let db = make_db(&env, "crlf.db", |c| {
        c.execute_batch(
            "CREATE TABLE t(\r\n  a DEFAULT 'x\r\ny',\r\n  b\r\n);\r\n\
             CREATE TABLE g(\n  a,\ngo\n);\n\
             CREATE TABLE h(\n  a,\n  GO -- x\n, b);\n\
             CREATE VIEW d AS SELECT 4\n/\n2 AS q;\n\
             CREATE TABLE r(a DEFAULT 'only\rcr');\n\
             INSERT INTO t(b) VALUES(1); INSERT INTO g VALUES(1, 2);",
        )
        .unwrap();
    });
    let restored = assert_exact(&env, &db);
    // The default value itself came back with its CR.
    let c = Connection::open(&restored).unwrap();
    c.execute("INSERT INTO t(b) VALUES(2)", []).unwrap();
    let a: String = c
        .query_row("SELECT a FROM t WHERE b = 2", [], |r| r.get(0))
        .unwrap();
    assert_eq!(a, "x\r\ny");
}

#[test]
fn schema_text_that_is_not_utf8() {
    let env = TestEnv::new();
    let db = make_db(&env, "latin1.db", |c| {
        exec_bytes(c, b"CREATE TABLE t(a DEFAULT 'caf\xe9', b /* \xff\xfe */);");
        exec_bytes(c, b"CREATE VIEW v AS SELECT 'gr\xfc\xdf' AS g;");
        c.execute_batch("INSERT INTO t(b) VALUES(1)").unwrap();
    });
    assert_exact(&env, &db);
}

#[test]
fn utf16_text_utf8_cannot_carry() {
    for encoding in ["UTF-16le", "UTF-16be"] {
        let env = TestEnv::new();
        let db = make_db(&env, "u16.db", |c| {
            c.execute_batch(&format!(
                "PRAGMA encoding='{encoding}'; CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT, n);"
            ))
            .unwrap();
            let units: [&[u16]; 6] = [
                &[0x61, 0xd800],
                &[0xdc00, 0x62],
                &[0xde00, 0xd83d],
                &[0xfffe],
                &[0xffff, 0, 0x0d, 0x0a],
                &[0x63, 0xd83d, 0xde00],
            ];
            for (k, u) in units.iter().enumerate() {
                let bytes: Vec<u8> = u
                    .iter()
                    .flat_map(|x| {
                        if encoding == "UTF-16le" {
                            x.to_le_bytes()
                        } else {
                            x.to_be_bytes()
                        }
                    })
                    .collect();
                c.execute(
                    "INSERT INTO t VALUES(?1, CAST(?2 AS TEXT), CAST(?2 AS TEXT))",
                    rusqlite::params![k as i64, bytes],
                )
                .unwrap();
            }
        });
        assert_exact(&env, &db);
    }
}

#[test]
fn rowids_when_every_alias_is_a_column() {
    let env = TestEnv::new();
    let db = make_db(&env, "shadowed.db", |c| {
        // Real rowids are chosen while `rowid` still names them; then a column takes the name.
        // (SQLite refuses to add or rename a column called rowid; the text is edited instead.)
        c.execute_batch(
            "CREATE TABLE t(OID, _rowid_ TEXT, x CHECK (x <> 'never'), zzrowid);
             INSERT INTO t(rowid, OID, _rowid_, x, zzrowid) VALUES
                 (-3, 1, 1, 'a', 'a!'), (5, 2, 2, 'b', 'b!'), (100, 3, 3, 'c', 'c!'),
                 (4611686018427387904, 4, 4, 'd', 'd!');
             CREATE TABLE sqlgit_rowid(a, oid, _rowid_, zzrowid, sqlgit_rowid);
             INSERT INTO sqlgit_rowid(rowid, a) VALUES(7, 'x'), (9, 'y');
             CREATE TABLE \"RowId\"(zzrowid, oid, _rowid_);
             INSERT INTO \"RowId\"(rowid, zzrowid, oid) VALUES(12, 'r', 'o');
             PRAGMA writable_schema=ON;
             UPDATE sqlite_schema SET sql = replace(sql, 'zzrowid', 'rowid');
             PRAGMA writable_schema=RESET;
             CREATE INDEX tx ON t(x, rowid);",
        )
        .unwrap();
    });
    let restored = assert_exact(&env, &db);
    // The dump holds the real rowids, and the restore kept them (assert_roundtrip's fixed point
    // compares dumps that carry them).
    let dump = dump_stdout(&env, &restored);
    let text = String::from_utf8_lossy(&dump);
    for row in [
        "INSERT INTO \"t\"(rowid,\"OID\",\"_rowid_\",\"x\",\"sqlgit_rowid\") VALUES\n(-3,1,'1','a','a!'),\n",
        "\n(4611686018427387904,4,'4','d','d!');\n",
        "INSERT INTO \"sqlgit_rowid\"(rowid,\"a\",\"oid\",\"_rowid_\",\"sqlgit_rowid_2\",\"sqlgit_rowid\") VALUES\n(7,'x',NULL,NULL,NULL,NULL),\n(9,'y',NULL,NULL,NULL,NULL);\n",
    ] {
        assert!(text.contains(row), "{row} not in:\n{text}");
    }
}

#[test]
fn rows_breaking_check_constraints_and_sequence_leftovers() {
    let env = TestEnv::new();
    let db = make_db(&env, "checks.db", |c| {
        c.execute_batch(
            "CREATE TABLE c(a INTEGER CHECK (a > 0), b TEXT CHECK (length(b) < 3));
             PRAGMA ignore_check_constraints=ON;
             INSERT INTO c VALUES(-1, 'too long'), (5, 'ok');
             CREATE TABLE gone(id INTEGER PRIMARY KEY AUTOINCREMENT);
             INSERT INTO gone VALUES(41);
             DROP TABLE gone;
             INSERT INTO sqlite_sequence VALUES('orphan', 7);
             CREATE TABLE words(note TEXT DEFAULT 'AUTOINCREMENT', \"autoincrement\" INT);
             CREATE TABLE sqlgit_make_sequence(keep);
             INSERT INTO sqlgit_make_sequence VALUES('mine');",
        )
        .unwrap();
    });
    let restored = assert_exact(&env, &db);
    let c = Connection::open(&restored).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM c", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2, "rows breaking CHECK constraints were dropped");
    let kept: String = c
        .query_row("SELECT keep FROM sqlgit_make_sequence", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, "mine");
}

#[test]
fn table_with_2000_columns() {
    let env = TestEnv::new();
    let db = make_db(&env, "wide.db", |c| {
        let cols: Vec<String> = (0..2000).map(|i| format!("c{i}")).collect();
        c.execute_batch(&format!("CREATE TABLE w({});", cols.join(",")))
            .unwrap();
        let rest = vec!["NULL"; 1999].join(",");
        for rowid in [3i64, 17, -4, 1 << 40] {
            c.execute_batch(&format!(
                "INSERT INTO w(rowid, {}) VALUES({rowid}, {rowid}, {rest});",
                cols.join(",")
            ))
            .unwrap();
        }
    });
    assert_exact(&env, &db);
}

#[test]
fn hot_rollback_journal_is_rolled_back() {
    let env = TestEnv::new();
    let src = make_db(&env, "writer.db", |c| {
        c.execute_batch(
            "PRAGMA journal_mode=DELETE; CREATE TABLE t(x); INSERT INTO t VALUES('committed');",
        )
        .unwrap();
    });
    // A writer mid-transaction, with pages already spilled into the database file: copying the
    // file and its journal now gives what a crash leaves behind.
    let c = Connection::open(&src).unwrap();
    c.execute_batch("PRAGMA cache_size=2; BEGIN;").unwrap();
    for _ in 0..2000 {
        c.execute("INSERT INTO t VALUES(?1)", [&"x".repeat(500)])
            .unwrap();
    }
    let crashed = env.path("crashed.db");
    std::fs::copy(&src, &crashed).unwrap();
    std::fs::copy(
        env.path("writer.db-journal"),
        env.path("crashed.db-journal"),
    )
    .expect("the writer has a journal");
    drop(c);
    let dump = dump_stdout(&env, &crashed);
    let text = String::from_utf8_lossy(&dump);
    assert!(text.contains("'committed'"), "{text}");
    assert!(!text.contains("xxxx"), "uncommitted rows were dumped");
    assert!(
        !env.path("crashed.db-journal").exists(),
        "the hot journal was not rolled back"
    );
}

#[test]
fn names_with_cr_lf_and_nul_free_oddities() {
    let env = TestEnv::new();
    let db = make_db(&env, "names.db", |c| {
        c.execute_batch(
            "CREATE TABLE \"win\r\ntable\"(\"col\r\none\" TEXT, [two\r\n] DEFAULT 'v\r\nw');
             CREATE INDEX \"idx\r\n\" ON \"win\r\ntable\"(\"col\r\none\");
             CREATE VIEW \"v\r\n\" AS SELECT \"col\r\none\" FROM \"win\r\ntable\";
             INSERT INTO \"win\r\ntable\" VALUES ('a\r\nb', 'c');",
        )
        .unwrap();
    });
    assert_exact(&env, &db);
}

/// Run raw SQL bytes; must succeed.
fn exec_bytes(conn: &Connection, sql: &[u8]) {
    if let Err(e) = try_exec_bytes(conn, sql) {
        panic!("exec {:?}: {e}", String::from_utf8_lossy(sql));
    }
}

/// Objects named like SQLite's own (`sqlite_…`), which only writable_schema can make: their
/// rows and definitions come back (the table was left out of every snapshot, silently, and the
/// index, view and trigger made every restore fail).
#[test]
fn objects_with_names_sqlite_reserves() {
    let env = TestEnv::new();
    let db = make_db(&env, "reserved.db", |c| {
        c.execute_batch(
            "PRAGMA writable_schema=ON;
             CREATE TABLE sqlite_foo(a, b);
             CREATE TABLE t(x);
             CREATE INDEX sqlite_i ON t(x);
             CREATE VIEW SQLite_v AS SELECT * FROM sqlite_foo;
             CREATE TRIGGER sqlite_tr AFTER INSERT ON t BEGIN SELECT 1; END;
             PRAGMA writable_schema=RESET;
             INSERT INTO sqlite_foo VALUES ('kept', 1), ('too', 2);
             INSERT INTO t VALUES (1);",
        )
        .unwrap();
    });
    let restored = assert_exact(&env, &db);
    let c = Connection::open(&restored).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM SQLite_v", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}

/// Schema text ending in `;` (after blanks or comments too), as tools that rewrite
/// `sqlite_schema` leave it: SQLite stores a typed statement without its `;`, so the text comes
/// back only through the exact fix-up (every restore used to drop the `;` and report success).
#[test]
fn schema_text_with_a_semicolon() {
    let env = TestEnv::new();
    let db = make_db(&env, "semicolon.db", |c| {
        c.execute_batch(
            "CREATE TABLE t(a, b); INSERT INTO t VALUES (1, 2);
             CREATE TABLE s(a INT) STRICT; CREATE TABLE u(a); CREATE TABLE w(a);
             CREATE VIEW v AS SELECT 1 AS x; CREATE VIEW v2 AS SELECT 2 AS y;
             CREATE INDEX i ON t(b); CREATE UNIQUE INDEX j ON t(a) WHERE a > 0;
             PRAGMA writable_schema=ON;
             UPDATE sqlite_schema SET sql = sql || ';' WHERE name IN ('t', 'v', 'i', 's');
             UPDATE sqlite_schema SET sql = sql || ' ;' WHERE name IN ('u', 'j');
             UPDATE sqlite_schema SET sql = sql || char(10) || ';' WHERE name = 'v2';
             UPDATE sqlite_schema SET sql = sql || '/* c */;' WHERE name = 'w';
             PRAGMA writable_schema=RESET;",
        )
        .unwrap();
    });
    assert_exact(&env, &db);
}
