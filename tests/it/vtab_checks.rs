//! Virtual tables' own integrity checks (SQLite 3.44 and later ask FTS3/4/5 and R*Tree modules
//! to check their data): what they find in the database a snapshot was taken of, an exact
//! restore holds too — a warning naming the table in `verify`, `restore --to` and `restore
//! --into`, never a failure.

use std::path::Path;

use crate::env::TestEnv;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// An external-content FTS4 table whose content column was renamed (sqlite-utils `enable-fts
/// --fts4` then `transform --rename`): SQLite 3.54 says `unable to validate the inverted index
/// for FTS4 table main.docs_fts: SQL logic error` about the database itself. `verify` failed,
/// blaming the sqlite3 restore, and `restore --into` replaced the content, then exited 1.
#[test]
fn an_fts4_index_whose_content_column_was_renamed_is_a_warning() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT);
          INSERT INTO docs(body) VALUES('hello world'),('foo bar');
          CREATE VIRTUAL TABLE docs_fts USING fts4(body, content='docs');
          INSERT INTO docs_fts(docs_fts) VALUES('rebuild');
          ALTER TABLE docs RENAME COLUMN body TO text;",
    );
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["-q", "snapshot", &s(&db), "--repo", &s(&repo)])
        .success();
    let err = env
        .sqlgit(&["-q", "verify", "--repo", &s(&repo)])
        .success()
        .stderr_str();
    assert!(err.contains("virtual table main.docs_fts"), "{err}");
    assert!(err.contains("content="), "{err}");
    env.sqlite3(&db, "INSERT INTO docs(text) VALUES('after the snapshot');")
        .success();
    let err = env
        .sqlgit(&["restore", "--repo", &s(&repo), "--into", &s(&db)])
        .success()
        .stderr_str();
    assert!(err.contains("FTS4 table main.docs_fts"), "{err}");
    let c = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM docs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}

/// An FTS5 table with a tokenizer the application registers at run time: the whole integrity
/// check fails in SQLite's hands (`SQL logic error`, naming nothing). `verify` failed with that
/// bare message; now it warns naming the table and its tokenizer, and still checks the rest.
#[test]
fn an_fts5_table_with_the_applications_tokenizer_is_a_warning_naming_it() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(x); INSERT INTO t VALUES(1);
          CREATE VIRTUAL TABLE notes_fts USING fts5(body);
          INSERT INTO notes_fts(body) VALUES('hello world'),('foo bar');\n\
          .dbconfig defensive off\n\
          PRAGMA writable_schema=ON;
          UPDATE sqlite_schema SET sql='CREATE VIRTUAL TABLE notes_fts USING fts5(body, \
          tokenize=''app_tok'')' WHERE name='notes_fts';",
    );
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["-q", "snapshot", &s(&db), "--repo", &s(&repo)])
        .success();
    let err = env
        .sqlgit(&["-q", "verify", "--repo", &s(&repo)])
        .success()
        .stderr_str();
    assert!(err.contains("main.notes_fts"), "{err}");
    assert!(err.contains("app_tok"), "{err}");
    let err = env
        .sqlgit(&["restore", "--repo", &s(&repo), "--into", &s(&db)])
        .success()
        .stderr_str();
    assert!(err.contains("main.notes_fts"), "{err}");
}

/// A sqlite3 CLI from 3.44 on asks each virtual table's module to check it, and fails the whole
/// integrity check when the module cannot (`no such tokenizer: app_tok`): verify failed with
/// "integrity check failed" for every newer CLI; the CLI's check now goes around that table,
/// as the in-process one does. (A wrapper plays such a CLI over the one the tests use.)
#[test]
fn a_newer_clis_check_failing_on_a_tokenizer_is_a_warning_naming_it() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(x); INSERT INTO t VALUES(1);\n\
          CREATE VIRTUAL TABLE notes_fts USING fts5(body);\n\
          INSERT INTO notes_fts(body) VALUES('hello world');\n\
          .dbconfig defensive off\n\
          PRAGMA writable_schema=ON;\n\
          UPDATE sqlite_schema SET sql='CREATE VIRTUAL TABLE notes_fts USING fts5(body, \
          tokenize=''app_tok'')' WHERE name='notes_fts';\n",
    );
    let cli = env.path("newer-sqlite3");
    let script = format!(
        "#!/bin/sh\nin=$(cat)\ncase \"$in\" in\n*\"pragma_integrity_check()\"*|*\"pragma_integrity_check;\"*|\
         *\"pragma_integrity_check('notes_fts')\"*)\n\
         echo 'Runtime error near line 2: no such tokenizer: app_tok' >&2; exit 1;;\nesac\n\
         printf '%s\\n' \"$in\" | exec {} \"$@\"\n",
        crate::env::sqlite3_bin().display()
    );
    std::fs::write(&cli, script).unwrap();
    std::fs::set_permissions(&cli, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["-q", "snapshot", &s(&db), "--repo", &s(&repo)])
        .success();
    let mut cmd = env.sqlgit_cmd(&["-q", "verify", "--repo", &s(&repo)]);
    cmd.env("SQLGIT_SQLITE3", &cli);
    let err = env.run(cmd, b"").success().stderr_str();
    assert!(err.contains("main.notes_fts"), "{err}");
    assert!(err.contains("app_tok"), "{err}");
}

/// A large restore's quick check runs table by table on two connections: a virtual table in
/// that list made it fail (`no such table` on the building connection, or its module's finding
/// on the other) though the database itself gives the same finding.
#[test]
fn a_large_restore_with_a_virtual_table_finding_succeeds() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "big.db",
        b"CREATE TABLE big(a, b, c);
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 120000)
          INSERT INTO big SELECT i, i, i FROM n;
          CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT);
          INSERT INTO docs(body) VALUES('hello world');
          CREATE VIRTUAL TABLE docs_fts USING fts4(body, content='docs');
          INSERT INTO docs_fts(docs_fts) VALUES('rebuild');
          ALTER TABLE docs RENAME COLUMN body TO text;",
    );
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["-q", "snapshot", &s(&db), "--repo", &s(&repo)])
        .success();
    let to = env.path("to.db");
    env.sqlgit(&["-q", "restore", "--repo", &s(&repo), "--to", &s(&to)])
        .success();
    env.sqlgit(&["-q", "restore", "--repo", &s(&repo), "--into", &s(&db)])
        .success();
}

/// An FTS5 table indexing a REAL: FTS5 indexes its text, which SQLite 3.40 (the application's)
/// spells `0.3` and the bundled 3.54 `0.30000000000000004`, so 3.54's check of the exact copy
/// says `fts5: checksum mismatch for table "docs"` — FTS5's own words, which were taken for
/// damage: `verify` failed on every snapshot, and `restore --to` whenever the dump needs a
/// `writable_schema` fix-up (here a table whose columns are named rowid, oid and _rowid_).
#[test]
fn an_fts5_finding_in_its_own_words_is_a_warning() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE VIRTUAL TABLE docs USING fts5(body);
          INSERT INTO docs VALUES('hello'), (0.1+0.2);
          CREATE TABLE t1(rowid, oid, _rowid_); INSERT INTO t1 VALUES(1, 2, 3);",
    );
    let repo = env.path("r.sqlgit");
    env.sqlgit(&["-q", "snapshot", &s(&db), "--repo", &s(&repo)])
        .success();
    let err = env
        .sqlgit(&["-q", "verify", "--repo", &s(&repo)])
        .success()
        .stderr_str();
    assert!(
        err.contains("virtual table docs fails its module's own check (fts5: checksum"),
        "{err}"
    );
    let to = env.path("to.db");
    env.sqlgit(&["-q", "restore", "--repo", &s(&repo), "--to", &s(&to)])
        .success();
    env.sqlgit(&["-q", "restore", "--repo", &s(&repo), "--into", &s(&db)])
        .success();
}
