//! `sqlgit restore --to` builds databases without SQLite's parser for the row statements it
//! recognises (values decoded and bound) and executes everything else: whatever a snapshot or an
//! SQL file holds, the result must be the database the `sqlite3` CLI builds from the same SQL.
//! Here row chunks are rewritten by hand with forms the fast path does not know (functions,
//! non-canonical reals, comments, a CR/LF line end, a non-row statement between rows), with
//! format 2 (one multi-row statement per chunk), and in a UTF-16 database with text UTF-8 cannot
//! carry exactly; each is restored from the snapshot and from an SQL file, and compared value by
//! value (storage class, bits, bytes) with the CLI's restore.

use std::path::{Path, PathBuf};

use crate::env::{TestEnv, compare_databases};
use crate::verify::rewrite_file;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Snapshot `db` into a new repository, put `rows` in place of its table `t`'s only row chunk,
/// then restore it with the CLI (`cat | sqlite3`), `restore --repo` and `restore --from-file`,
/// and compare. Returns the CLI's database.
fn restore_both_ways(env: &TestEnv, db: &Path, rows: &[u8]) -> PathBuf {
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["snapshot", &s(db), "--repo", &s(&repo)])
        .success();
    let mut ls = env.command("git");
    ls.arg("--git-dir")
        .arg(&repo)
        .args(["ls-tree", "-r", "--name-only", "main"]);
    let files = env.run(ls, b"").success().stdout_str();
    let chunks: Vec<&str> = files.lines().filter(|f| f.contains("/t/1-rows/")).collect();
    assert_eq!(chunks.len(), 1, "one row chunk expected: {files}");
    rewrite_file(env, &repo, chunks[0], rows);

    let sql = env
        .sqlgit(&["cat", "--repo", &s(&repo)])
        .success()
        .output
        .stdout;
    let cli = env.restore(&sql, "cli.db");
    let from_repo = env.path("from-repo.db");
    env.sqlgit(&["restore", "--repo", &s(&repo), "--to", &s(&from_repo)])
        .success();
    compare_databases(&cli, &from_repo);
    let file = env.write("dump.sql", &sql);
    let from_file = env.path("from-file.db");
    env.sqlgit(&["restore", "--from-file", &s(&file), "--to", &s(&from_file)])
        .success();
    compare_databases(&cli, &from_file);
    cli
}

/// Snapshot `db` into a new repository, restore it with `restore --to`, compare.
fn snapshot_and_restore(env: &TestEnv, db: &Path) {
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["snapshot", &s(db), "--repo", &s(&repo)])
        .success();
    let to = env.path("to.db");
    env.sqlgit(&["restore", "--repo", &s(&repo), "--to", &s(&to)])
        .success();
    compare_databases(db, &to);
}

fn count(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Rows in forms the fast path leaves to SQLite, between rows it binds, in both row formats.
#[test]
fn forms_the_fast_path_does_not_know_are_executed() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(a, b INTEGER, c TEXT, d REAL, e BLOB);\n\
          INSERT INTO t VALUES(1, 2, 'x', 1.5, X'00');\n",
    );
    let rows: &[u8] = b"INSERT INTO \"t\" VALUES(1,'12',X'41',2.5,NULL);\n\
INSERT INTO \"t\" VALUES(abs(-5),upper('x'),0x10,1.50,CAST(X'41' AS TEXT));\n\
INSERT INTO \"t\" VALUES(-0.0,1e999,-1e999,ieee754(1,-1074),'it''s');\n\
INSERT INTO \"t\" VALUES(char(200),'\xc3\xa9'||char(0)||'x','a'||char(13,0)||'b',9223372036854775808,-9223372036854775808);\n\
INSERT INTO \"t\" VALUES(1.0e1,'1e5',' 12 ',0.1,'');\n\
INSERT INTO \"t\" VALUES(-9223372036854775808,'007',0.1,-2.5e-7,X'');\n\
INSERT INTO \"t\"(\"a\",\"b\",\"c\",\"d\",\"e\") VALUES\n\
(1,2,3,4,5),\n\
(ieee754(3,-1),'x'||'y',('a'||char(0))||('b'),(1),NULL),\n\
(NULL,'9',x'AbCd','-1','\xff\xfe bytes');\n\
UPDATE t SET e = 'after' WHERE e IS NULL AND a = 1;\n\
INSERT INTO \"t\" VALUES('a' /* a comment */,2,3,4,5);\n\
INSERT INTO t VALUES(1,2,3,4,5) ;\n\
INSERT INTO \"t\"(\"a\",\"c\") VALUES\n(-2.5e-7,'a'),\n(123456.789,'b');\n";
    let cli = restore_both_ways(&env, &db, rows);
    assert_eq!(count(&cli, "SELECT count(*) FROM t"), 13);
    assert_eq!(count(&cli, "SELECT count(*) FROM t WHERE e = 'after'"), 1);
}

/// A CR before a LF inside a statement is dropped, as the sqlite3 shell drops it: a chunk
/// holding one is left to `execute` whole.
#[test]
fn a_cr_lf_line_end_is_read_as_the_shell_reads_it() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(a, b);\nINSERT INTO t VALUES(1, 2);\n",
    );
    let rows: &[u8] = b"INSERT INTO \"t\" VALUES(1,'x');\r\n\
INSERT INTO \"t\" VALUES(2,'line\r\nend');\nINSERT INTO \"t\" VALUES(3,'a\r\r\nb');\n";
    let cli = restore_both_ways(&env, &db, rows);
    assert_eq!(
        count(
            &cli,
            "SELECT count(*) FROM t WHERE b = 'line'||char(10)||'end'"
        ),
        1
    );
}

/// A UTF-16 database: text with bytes that are not UTF-8 (converted by SQLite piece by piece),
/// a multi-byte character split across `||`, and stored code units (`CAST(X'..' AS TEXT)`).
#[test]
fn utf16_text_restores_as_the_cli_restores_it() {
    for encoding in ["UTF-16le", "UTF-16be"] {
        let env = TestEnv::new();
        let script = format!(
            "PRAGMA encoding='{encoding}';\nCREATE TABLE t(id INTEGER PRIMARY KEY, a TEXT, b);\n\
             INSERT INTO t VALUES(1, 'x', 'y');\n"
        );
        let db = env.db_from_script("app.db", script.as_bytes());
        let rows: &[u8] =
            b"INSERT INTO \"t\" VALUES(1,'h\xc3\xa9llo \xf0\x9f\x98\x80','\xef\xbb\xbfbom');\n\
INSERT INTO \"t\" VALUES(2,'\xff\xfe\xc3','a\xed\xa0\x80b');\n\
INSERT INTO \"t\" VALUES(3,'\xc3'||'\xa9','\xc3\xa9'||char(0)||'\xe6\x97\xa5');\n\
INSERT INTO \"t\" VALUES(4,CAST(X'00d80000' AS TEXT),CAST(X'fffe' AS TEXT));\n\
INSERT INTO \"t\" VALUES\n(5,'\xe6\x97\xa5\xe6\x9c\xac',X'd83d'),\n(6,'ok\xff',1);\n";
        restore_both_ways(&env, &db, rows);
    }
}

/// A snapshot's own rows (format 1, every value spelling the dump writes) through both restores:
/// the fixtures go through `dump::assert_roundtrip`, this one through a snapshot as well.
#[test]
fn a_snapshot_of_every_spelling_restores_exactly() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, a, b TEXT, c REAL);\n\
          INSERT INTO t VALUES(1, -0.0, 'it''s', 5e-324);\n\
          INSERT INTO t VALUES(2, 'a'||char(0)||char(13)||'b', NULL, 1e999);\n\
          INSERT INTO t VALUES(3, X'00ff', 'caf\xc3\xa9', 0.1);\n\
          INSERT INTO t VALUES(4, 9223372036854775807, '', -1e-300);\n\
          INSERT INTO t VALUES(5, 1e300, '\xff', 2.2250738585072014e-308);\n",
    );
    snapshot_and_restore(&env, &db);
}

/// The file's layout is part of the snapshot: a database with another page size and
/// auto_vacuum comes back with them (`cat | sqlite3` and `restore --to`), while `restore --into`
/// keeps the target's.
#[test]
fn page_size_and_auto_vacuum_come_back_except_into_a_live_database() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "small-pages.db",
        b"PRAGMA page_size=512; PRAGMA auto_vacuum=INCREMENTAL;\n\
          CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
          WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300)\n\
          INSERT INTO t SELECT x, printf('%.*c', x, 'v') FROM c;",
    );
    assert_eq!(count(&db, "PRAGMA page_size"), 512);
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["snapshot", &s(&db), "--repo", &s(&repo)])
        .success();
    let sql = env
        .sqlgit(&["cat", "--repo", &s(&repo)])
        .success()
        .output
        .stdout;
    compare_databases(&db, &env.restore(&sql, "cli.db"));
    let to = env.path("to.db");
    env.sqlgit(&["restore", "--repo", &s(&repo), "--to", &s(&to)])
        .success();
    compare_databases(&db, &to);
    assert_eq!(count(&to, "PRAGMA auto_vacuum"), 2);

    let live = env.db_from_script("live.db", b"CREATE TABLE other(x);");
    env.sqlgit(&["restore", "--repo", &s(&repo), "--into", &s(&live)])
        .success();
    assert_eq!(count(&live, "PRAGMA page_size"), 4096);
    assert_eq!(count(&live, "PRAGMA auto_vacuum"), 0);
    assert_eq!(count(&live, "SELECT count(*) FROM t"), 300);
}

/// `restore --into` a database of another page size and auto_vacuum keeps the target's layout
/// without a VACUUM (which would renumber the hidden rowids of a table without an INTEGER
/// PRIMARY KEY): every rowid is the snapshot's, and a warning says the layout was kept.
#[test]
fn restore_into_another_layout_keeps_every_rowid_and_says_so() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "src.db",
        b"PRAGMA page_size=1024; PRAGMA auto_vacuum=INCREMENTAL;\n\
          CREATE TABLE notes(body);\n\
          INSERT INTO notes VALUES ('a'), ('b'), ('c'), ('d'), ('e');\n\
          DELETE FROM notes WHERE body IN ('a', 'c');",
    );
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["snapshot", &s(&db), "--repo", &s(&repo)])
        .success();
    let live = env.db_from_script("live.db", b"PRAGMA journal_mode=WAL; CREATE TABLE x(y);");
    let run = env
        .sqlgit(&["restore", "--repo", &s(&repo), "--into", &s(&live)])
        .success();
    let rowids = "SELECT group_concat(rowid || '=' || body) FROM notes";
    let conn = rusqlite::Connection::open(&live).unwrap();
    let got: String = conn.query_row(rowids, [], |r| r.get(0)).unwrap();
    assert_eq!(got, "2=b,4=d,5=e");
    assert_eq!(count(&live, "PRAGMA page_size"), 4096);
    assert_eq!(count(&live, "PRAGMA auto_vacuum"), 0);
    let err = run.stderr_str();
    assert!(
        err.contains("warning: the restored SQL sets PRAGMA page_size=1024, auto_vacuum=2")
            && err.contains("keeps its own page_size=4096 and auto_vacuum=0"),
        "{err}"
    );
}

/// A snapshot of a database with SQLite's default layout (format 2 writes no page_size or
/// auto_vacuum line for the defaults) restored `--into` one of another layout: the warning says
/// so, from the snapshot and from its `cat -o` file. A format-1 snapshot recorded no layout: no
/// warning; nor when the layouts match.
#[test]
fn restore_into_another_layout_than_the_snapshots_default_says_so() {
    let env = TestEnv::new();
    let db = env.db_from_script("src.db", b"CREATE TABLE t(v); INSERT INTO t VALUES ('a');");
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["snapshot", &s(&db), "--repo", &s(&repo)])
        .success();
    let file = env.path("cat.sql");
    env.sqlgit(&["cat", "--repo", &s(&repo), "-o", &s(&file)])
        .success();
    let live = env.db_from_script(
        "live.db",
        b"PRAGMA page_size=8192; PRAGMA auto_vacuum=FULL; CREATE TABLE x(y);",
    );
    let into = |source: &[&str], target: &Path| {
        let mut args = vec!["restore"];
        args.extend(source);
        args.extend(["--into", target.to_str().unwrap()]);
        env.sqlgit(&args).success().stderr_str()
    };
    for source in [["--repo", &s(&repo)], ["--from-file", &s(&file)]] {
        let err = into(&source, &live);
        assert!(
            err.contains("warning: the restored SQL leaves page_size=4096, auto_vacuum=0")
                && err.contains("keeps its own page_size=8192 and auto_vacuum=1"),
            "{source:?}: {err}"
        );
        assert_eq!(count(&live, "PRAGMA page_size"), 8192);
        assert_eq!(count(&live, "SELECT count(*) FROM t"), 1);
    }
    // Only the page size differs: only it is named.
    let paged = env.db_from_script("paged.db", b"PRAGMA page_size=1024; CREATE TABLE x(y);");
    let err = into(&["--repo", &s(&repo)], &paged);
    assert!(
        err.contains("leaves page_size=4096 (SQLite's default); ")
            && !err.contains("page_size=4096, auto_vacuum"),
        "{err}"
    );
    // The same layout: nothing to say.
    let same = env.db_from_script("same.db", b"CREATE TABLE x(y);");
    assert_eq!(into(&["--repo", &s(&repo)], &same), "");
    // Format 1 wrote no layout line whatever the database had: not recorded, no warning.
    let old = env.path("old.sqlgit");
    let mut cmd = env.sqlgit_cmd(&["snapshot", &s(&db), "--repo", &s(&old)]);
    cmd.env("SQLGIT_SNAPSHOT_FORMAT", "1");
    env.run(cmd, b"").success();
    assert_eq!(into(&["--repo", &s(&old)], &live), "");
}

/// Long runs of rows are bound many rows to a statement: runs of every length around that
/// size, broken by rows the fast path leaves to SQLite, a table of SQLite's most columns (16 rows
/// of it near the limit on parameters), and a row that breaks a UNIQUE constraint in the middle of a run (the
/// restore fails on it, naming the constraint, and leaves no file).
#[test]
fn rows_bound_many_at_a_time_restore_as_the_cli_restores_them() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, a, b TEXT, c REAL, d BLOB);\n\
          INSERT INTO t VALUES(1, 2, 'x', 1.5, X'00');\n",
    );
    let mut rows = Vec::new();
    let mut id = 0;
    for run in [1usize, 15, 16, 17, 31, 32, 33, 100] {
        rows.extend_from_slice(b"INSERT INTO \"t\" VALUES\n");
        for i in 0..run {
            id += 1;
            let sep = if i + 1 == run { ";" } else { "," };
            let row = match id % 4 {
                0 => format!("({id},{id},'r{id}',{}.25,X'0{}'){sep}\n", id, id % 10),
                1 => format!("({id},NULL,'it''s {id}',-0.0,NULL){sep}\n"),
                2 => format!("({id},'{id}',{id},1e999,'t'||char(0)||'{id}'){sep}\n"),
                _ => format!("({id},-{id}.5,X'41',ieee754(1,-1074),{id}){sep}\n"),
            };
            rows.extend_from_slice(row.as_bytes());
        }
        // A row left to SQLite between two runs.
        id += 1;
        rows.extend_from_slice(
            format!("INSERT INTO \"t\" VALUES({id},abs(-{id}),upper('x'),1,2);\n").as_bytes(),
        );
    }
    let cli = restore_both_ways(&env, &db, &rows);
    assert_eq!(count(&cli, "SELECT count(*) FROM t"), id);

    // 2,000 columns, SQLite's most: 16 rows take 32,000 parameters, near its limit of 32,766.
    let env = TestEnv::new();
    let cols: Vec<String> = (0..2000).map(|c| format!("c{c}")).collect();
    let mut script = format!("CREATE TABLE w({});\n", cols.join(","));
    for r in 0..40 {
        let vals: Vec<String> = (0..2000).map(|c| (r * c).to_string()).collect();
        script.push_str(&format!("INSERT INTO w VALUES({});\n", vals.join(",")));
    }
    let db = env.db_from_script("wide.db", script.as_bytes());
    snapshot_and_restore(&env, &db);

    let mut sql =
        b"BEGIN;\nCREATE TABLE u(id INTEGER PRIMARY KEY, v UNIQUE);\nINSERT INTO \"u\" VALUES\n"
            .to_vec();
    for i in 1..=40 {
        let v = if i == 20 { 7 } else { i };
        let sep = if i == 40 { ";" } else { "," };
        sql.extend_from_slice(format!("({i},{v}){sep}\n").as_bytes());
    }
    sql.extend_from_slice(b"COMMIT;\n");
    let file = env.write("dup.sql", &sql);
    let to = env.path("dup.db");
    let run = env
        .sqlgit(&["restore", "--from-file", &s(&file), "--to", &s(&to)])
        .failure();
    assert!(
        run.stderr_str().contains("UNIQUE constraint failed: u.v"),
        "{}",
        run.stderr_str()
    );
    assert!(!to.exists(), "a failed restore left {}", to.display());
}

/// A database past the size from which the restore checks table by table on two connections,
/// with pages written and read 64 KiB at a time: values over a chunk, overflow pages, indexes
/// sorted through temporary files, a WITHOUT ROWID table, a row breaking its table's CHECK,
/// 8 KiB pages, read from a WAL database — restored exactly.
#[test]
fn a_large_database_restores_exactly_through_the_split_check() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "big.db",
        b"PRAGMA page_size=8192; PRAGMA journal_mode=WAL;\n\
          CREATE TABLE a(id INTEGER PRIMARY KEY, k TEXT, r REAL, n INTEGER, v BLOB);\n\
          WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 60000)\n\
          INSERT INTO a SELECT i, printf('key %d', (i * 7919) % 60000), i / 7.0, -i,\n\
            CASE WHEN i % 9000 = 0 THEN zeroblob(100000) || x'01' ELSE randomblob(i % 200) END\n\
            FROM s;\n\
          CREATE INDEX a_k ON a(k);\n\
          CREATE TABLE w(k TEXT PRIMARY KEY, x, y) WITHOUT ROWID;\n\
          INSERT INTO w SELECT 'w' || id, r, k FROM a WHERE id % 3 = 0;\n\
          CREATE INDEX w_y ON w(y);\n\
          CREATE TABLE c(x CHECK (x > 0)); PRAGMA ignore_check_constraints=ON;\n\
          INSERT INTO c VALUES(-1);\n",
    );
    snapshot_and_restore(&env, &db);
    let to = env.path("to.db");
    assert_eq!(count(&to, "SELECT count(*) FROM a"), 60000);
    assert_eq!(count(&to, "PRAGMA page_size"), 8192);
}

/// A UTF-16 database with no table left (one created and dropped, or none ever): SQLite writes
/// the encoding into the file only with the first table or view, so the dump makes and drops a
/// view; every restore (`cat | sqlite3`, `restore --to`, plain git) gives a UTF-16 file.
#[test]
fn an_empty_utf16_database_restores_utf16() {
    for (n, script) in [
        "PRAGMA encoding='UTF-16le'; CREATE TABLE t(x); DROP TABLE t;",
        "PRAGMA encoding='UTF-16be'; CREATE VIEW v AS SELECT 1; DROP VIEW v;",
    ]
    .iter()
    .enumerate()
    {
        let env = TestEnv::new();
        let db = env.db_from_script(&format!("e{n}.db"), script.as_bytes());
        let want: String = env.sqlite3(&db, "PRAGMA encoding;").success().stdout_str();
        assert!(want.starts_with("UTF-16"), "{want}");
        let repo = env.path("r.sqlgit");
        env.sqlgit(&["snapshot", &s(&db), "--repo", &s(&repo)])
            .success();
        let sql = env.sqlgit(&["cat", "--repo", &s(&repo)]).success();
        let cli = env.restore(sql.stdout(), "cli.db");
        let mut archive = env.command("sh");
        archive.arg("-c").arg(format!(
            "git --git-dir '{}' archive --format=tar main | tar -xO",
            s(&repo)
        ));
        let plain = env.restore(env.run(archive, b"").success().stdout(), "git.db");
        let to = env.path("to.db");
        env.sqlgit(&["restore", "--repo", &s(&repo), "--to", &s(&to)])
            .success();
        for restored in [&cli, &plain, &to] {
            let got = env
                .sqlite3(restored, "PRAGMA encoding;")
                .success()
                .stdout_str();
            assert_eq!(got, want, "{}", restored.display());
        }
        env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
    }
}

/// A STRICT table given an ADD COLUMN default of the wrong type by plain SQL (3.40 accepts it):
/// older rows read the mistyped default and no SQLite inserts them. The snapshot keeps the data
/// but its run fails the day it happens, naming the rows and the fix; the restore's error says
/// how this happens instead of blaming writable_schema only; once the rows hold a value of the
/// column's type, runs succeed and the snapshot restores.
#[test]
fn strict_rows_breaking_types_through_a_default_name_the_cause() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        // 3.40 added the column to the STRICT table itself; newer CLIs refuse the mismatched
        // DEFAULT, so the table becomes STRICT afterwards, to the same schema text and file.
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES(1, 'a');\n\
          ALTER TABLE t ADD COLUMN b BLOB DEFAULT 'abc';\n\
          .dbconfig defensive off\n\
          PRAGMA writable_schema=ON;\n\
          UPDATE sqlite_schema SET sql = sql || ' STRICT' WHERE name = 't';\n",
    );
    let repo = env.path("r.sqlgit");
    let snapshot = [Path::new("snapshot"), &db, Path::new("--repo"), &repo];
    let err = env.sqlgit(&snapshot).failure().stderr_str();
    assert!(
        err.contains("cannot be restored")
            && err.contains("1 row(s)")
            && err.contains("UPDATE \"t\" SET \"b\""),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let to = env.path("to.db");
    let restore = [
        Path::new("restore"),
        Path::new("--repo"),
        &repo,
        Path::new("--to"),
        &to,
    ];
    let err = env.sqlgit(&restore).failure().stderr_str();
    assert!(err.contains("ADD COLUMN"), "{err}");
    // An unchanged database fails every run until its rows are fixed; a dump warns.
    env.sqlgit(&snapshot).failure();
    let dumped = env.path("d.sql");
    let dump = [Path::new("dump"), &db, Path::new("-o"), &dumped];
    let err = env.sqlgit(&dump).success().stderr_str();
    assert!(
        err.contains("warning: this dump cannot be restored"),
        "{err}"
    );
    env.sqlite3(
        &db,
        "UPDATE t SET b = CAST(b AS BLOB) WHERE typeof(b) <> 'blob';",
    )
    .success();
    env.sqlgit(&snapshot).success();
    env.sqlgit(&restore).success();
    let got = env
        .sqlite3(&to, "SELECT id, hex(b) FROM t;")
        .success()
        .stdout_str();
    assert_eq!(got.trim(), "1|616263");
}

/// `--busy-timeout` is an `--into` flag: with `--to` it did nothing, silently (as `diff` refuses
/// it without `--live`, a usage error now).
#[test]
fn busy_timeout_without_into_is_a_usage_error() {
    let env = TestEnv::new();
    env.db_from_script("app.db", b"CREATE TABLE t(a);");
    env.sqlgit(&["snapshot", "app.db", "--repo", "R", "-q"])
        .success();
    let run = env
        .sqlgit(&[
            "restore",
            "--repo",
            "R",
            "--to",
            "new.db",
            "--busy-timeout",
            "1s",
        ])
        .code_is(2);
    assert!(run.stderr_str().contains("--to"), "{}", run.stderr_str());
    assert!(!env.path("new.db").exists());
}

/// A schema written with double-quoted string literals (which SQLite accepts for old code)
/// restores through every sqlite3: from 3.41 the CLI refuses them in schema statements unless
/// told, and the dump's header tells it (3.40 prints the setting); `restore --to`,
/// `--from-file` and `verify` run the same header. A schema without them gets no such line.
#[test]
fn schemas_needing_shell_settings_restore_through_newer_clis_too() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        // The CLI refuses such literals in DDL from 3.41 unless told otherwise.
        b".dbconfig dqs_ddl on\n\
          CREATE TABLE t(a TEXT DEFAULT \"d\", b TEXT, CHECK (b <> \"bad\"));
          CREATE INDEX ti ON t(a) WHERE a <> \"skip\";
          INSERT INTO t VALUES ('x', 'y');",
    );
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["snapshot", &s(&db), "--repo", &s(&repo)])
        .success();
    let sql = env
        .sqlgit(&["cat", "--repo", &s(&repo)])
        .success()
        .output
        .stdout;
    assert!(
        sql.starts_with(b"-- sqlgit snapshot format 2\n.dbconfig dqs_ddl on\nPRAGMA"),
        "{}",
        String::from_utf8_lossy(&sql[..80])
    );
    let cli = env.path("cli.db");
    let out = env.sqlite3(&cli, &sql).success().stdout_str();
    assert_eq!(out, "            dqs_ddl on\n");
    compare_databases(&db, &cli);
    snapshot_and_restore_to(&env, &db, &repo, "to.db");
    let file = env.write("dump.sql", &sql);
    let from_file = env.path("from-file.db");
    env.sqlgit(&["restore", "--from-file", &s(&file), "--to", &s(&from_file)])
        .success();
    compare_databases(&db, &from_file);
    env.sqlgit(&["verify", "--repo", &s(&repo)]).success();

    // writable_schema (a virtual table's row) needs defensive mode off, which the CLI turns on
    // from 3.44: the dump asks for it off right before.
    let fts = env.db_from_script(
        "fts.db",
        b"CREATE VIRTUAL TABLE f USING fts5(body); INSERT INTO f VALUES ('hello');",
    );
    let out = env.sqlgit(&["dump", &s(&fts)]).success().output.stdout;
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("\n.dbconfig defensive off\nPRAGMA writable_schema=ON;\nINSERT INTO"));
    let fts_repo = env.path("fts.sqlgit");
    env.sqlgit(&["snapshot", &s(&fts), "--repo", &s(&fts_repo)])
        .success();
    snapshot_and_restore_to(&env, &fts, &fts_repo, "fts-to.db");
    env.sqlgit(&["verify", "--repo", &s(&fts_repo)]).success();

    let plain = env.db_from_script("plain.db", b"CREATE TABLE \"t\"(\"a\" DEFAULT \"d\");");
    let out = env.sqlgit(&["dump", &s(&plain)]).success().output.stdout;
    assert!(!String::from_utf8_lossy(&out).contains(".dbconfig"));
}

/// Restore snapshot `repo` with `restore --to NAME`, compare with `db`.
fn snapshot_and_restore_to(env: &TestEnv, db: &Path, repo: &Path, name: &str) {
    let to = env.path(name);
    env.sqlgit(&["restore", "--repo", &s(repo), "--to", &s(&to)])
        .success();
    compare_databases(db, &to);
}

/// A schema using the math functions the sqlite3 CLI has built in (an index on `ln(a)`, a
/// generated column of `sqrt(a)`) restores with `restore --to` and passes `verify`, as through
/// `cat | sqlite3`: sqlgit's SQLite has them too.
#[test]
fn a_schema_using_math_functions_restores_every_way() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(a REAL, b AS (sqrt(a)), c TEXT CHECK (c <> \"bad\"));\n\
          CREATE INDEX t_ln ON t(ln(a)) WHERE pow(a, 2) > 1;\n\
          INSERT INTO t(a, c) VALUES (4.0, 'x'), (9.5, 'y'), (0.5, NULL);\n",
    );
    snapshot_and_restore(&env, &db);
    let repo = env.path("r.sqlgit");
    let sql = env
        .sqlgit(&["cat", "--repo", &s(&repo)])
        .success()
        .stdout_str();
    assert!(sql.contains(".dbconfig dqs_ddl on"), "{sql}");
    let cli = env.restore(sql.as_bytes(), "cli.db");
    compare_databases(&db, &cli);
    env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
}
