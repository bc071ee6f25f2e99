//! `sqlgit verify`: a drill that passes only when the documented restores work — `sqlgit cat |
//! sqlite3` with the CLI on PATH (any message is a failure) and the in-process `restore --to` —
//! and both give back the snapshot exactly. Databases whose file names need escaping, a snapshot
//! only the sqlite3 shell misreads, no sqlite3 CLI at all, and what SQL cannot make exact.

use std::path::{Path, PathBuf};

use crate::env::{TestEnv, sqlite3_bin};

mod converted;
mod plaingit;
mod prefix;
mod recut;
mod versions;

/// Table `t` of 3,000 rows (`row 1` …): several chunk files.
const ROWS_3000: &[u8] = b"CREATE TABLE t(id INTEGER PRIMARY KEY, v);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<3000)
    INSERT INTO t SELECT i, printf('row %d', i) FROM n;";

pub(crate) fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Whether the sqlite3 CLI the tests run turns the REALs of `values` (SQL literals or
/// expressions) into other text than the bundled SQLite does: 3.40 to 3.52 spell `0.1+0.2` as
/// `0.3`, 3.53 on as the bundled SQLite does, so only then can the two build an index on such
/// text differently.
pub(crate) fn cli_spells_reals_otherwise(env: &TestEnv, values: &[&str]) -> bool {
    let sql: Vec<String> = values
        .iter()
        .map(|v| format!("CAST(({v}) AS TEXT)"))
        .collect();
    let select = format!("SELECT {};", sql.join(" || '|' || "));
    let db = env.path("spelling.db");
    let cli = env
        .sqlite3(&db, format!("{select}\n"))
        .success()
        .stdout_str();
    let bundled: String = rusqlite::Connection::open_in_memory()
        .unwrap()
        .query_row(&select, [], |r| r.get(0))
        .unwrap();
    cli.trim_end() != bundled
}

pub(crate) fn snapshot(env: &TestEnv, db: &Path, repo: &Path) {
    env.sqlgit(&["snapshot", &s(db), "--repo", &s(repo)])
        .success();
}

#[test]
fn names_that_need_escaping_verify() {
    let env = TestEnv::new();
    let repo = env.path("r.sqlgit");
    for name in ["backup (1).db", ".app.db", "100%.db"] {
        let db = env.db_from_script(name, b"CREATE TABLE t(a); INSERT INTO t VALUES (1);");
        snapshot(&env, &db, &repo);
        let run = env
            .sqlgit(&["verify", "--repo", &s(&repo), "--db", name])
            .success();
        assert!(
            run.stdout_str().contains("verified"),
            "{}",
            run.stdout_str()
        );
    }
    // All databases at once (folder names as the tree has them). Each run's commit records
    // only its own database: the two others' completeness is not checked, which is a warning.
    let run = env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
    assert!(
        run.stdout_str().contains("3 databases") && run.stdout_str().contains("sqlite3"),
        "{}",
        run.stdout_str()
    );
    let err = run.stderr_str();
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(
        err.lines().all(|l| l.contains("records no tables")) && !err.contains("100%25.db"),
        "{err}"
    );
}

/// Replace one file of HEAD's tree with `content` (plain git plumbing), as a new commit on main.
pub fn rewrite_file(env: &TestEnv, repo: &Path, path: &str, content: &[u8]) {
    let git = |args: &[&str], stdin: &[u8]| -> String {
        let out = env.git_plumbing(repo, "rewrite.index", args, stdin);
        out.trim().to_string()
    };
    let blob = git(&["hash-object", "-w", "--stdin"], content);
    git(&["read-tree", "main"], b"");
    let entry = format!("100644,{blob},{path}");
    git(&["update-index", "--cacheinfo", &entry], b"");
    let tree = git(&["write-tree"], b"");
    let message = ["commit-tree", &tree, "-p", "main", "-m", "rewritten"];
    let commit = git(&message, b"");
    git(&["update-ref", "refs/heads/main", &commit], b"");
}

#[test]
fn a_snapshot_only_the_sqlite3_shell_misreads_fails() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(a); INSERT INTO t VALUES (1); CREATE VIEW v AS SELECT a FROM t;",
    );
    let repo = env.path("app.sqlgit");
    snapshot(&env, &db, &repo);
    env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
    // What the old dump wrote for a view ending in a comment: the `;` is inside the comment and
    // swallows the rest of the dump in the shell; SQLite's own parser reads it fine.
    rewrite_file(
        &env,
        &repo,
        "app.db/4-views.sql",
        b"CREATE VIEW v AS SELECT a FROM t -- note;\n",
    );
    let run = env.sqlgit(&["verify", "--repo", &s(&repo)]).code_is(1);
    let err = run.stderr_str();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("sqlite3"), "the error names the CLI: {err}");
}

#[test]
fn without_a_sqlite3_cli_it_says_what_was_not_checked() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(a); INSERT INTO t VALUES (1);");
    let repo = env.path("app.sqlgit");
    snapshot(&env, &db, &repo);
    let run = env
        .run(
            {
                let mut cmd = env.sqlgit_cmd(&["verify", "--repo", &s(&repo)]);
                cmd.env("PATH", env.path("empty-bin"));
                cmd
            },
            b"",
        )
        .success();
    assert!(
        run.stderr_str().contains("no sqlite3 CLI found"),
        "{}",
        run.stderr_str()
    );
    assert!(
        run.stdout_str().contains("with 1 warning"),
        "{}",
        run.stdout_str()
    );
    // SQLGIT_SQLITE3 names the CLI explicitly.
    let run = env
        .run(
            {
                let mut cmd = env.sqlgit_cmd(&["verify", "--repo", &s(&repo)]);
                cmd.env("PATH", env.path("empty-bin"))
                    .env("SQLGIT_SQLITE3", sqlite3_bin());
                cmd
            },
            b"",
        )
        .success();
    assert!(run.stderr().is_empty(), "{}", run.stderr_str());
}

#[test]
fn what_sql_cannot_make_exact_is_a_warning() {
    let env = TestEnv::new();
    let db: PathBuf = env.db_from_script(
        "gen.db",
        b"CREATE TABLE t(a, b AS (a * 2) STORED, c AS (a + 1));
          CREATE INDEX lower_a ON t(lower(a));
          INSERT INTO t(a) VALUES (1), ('X');",
    );
    let repo = env.path("gen.sqlgit");
    snapshot(&env, &db, &repo);
    let run = env.sqlgit(&["-q", "verify", "--repo", &s(&repo)]).success();
    let err = run.stderr_str();
    assert!(err.contains("STORED generated columns (t.b)"), "{err}");
    assert!(err.contains("indexes on expressions (lower_a)"), "{err}");
    assert!(run.stdout().is_empty(), "--quiet: nothing on stdout");
}

/// Rows that break their table's own CHECK constraints (written with
/// `ignore_check_constraints`) are what the database holds: `verify` passes and `restore --into`
/// succeeds (both failed on SQLite's own check of the copy).
#[test]
fn rows_breaking_their_own_constraints_verify_and_restore_into() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "rules.db",
        b"CREATE TABLE t(a CHECK (a > 0), b);\n\
          PRAGMA ignore_check_constraints=ON;\n\
          INSERT INTO t VALUES (-1, NULL), (2, 'x');\n",
    );
    let repo = env.path("rules.sqlgit");
    snapshot(&env, &db, &repo);
    env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
    let live = env.db_from_script("live.db", b"CREATE TABLE other(x);");
    env.sqlgit(&["restore", "--repo", &s(&repo), "--into", &s(&live)])
        .success();
    let c = rusqlite::Connection::open(&live).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM t WHERE a = -1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

/// Remove `path` (a file or a folder) from HEAD's tree with plain git, keeping the commit
/// message (and so its `Sqlgit-*` trailers), as a new commit on main.
fn remove_keeping_message(env: &TestEnv, repo: &Path, path: &str) {
    let git = |args: &[&str], stdin: &[u8]| -> String {
        let out = env.git_plumbing(repo, "remove.index", args, stdin);
        out.trim().to_string()
    };
    git(&["read-tree", "main"], b"");
    git(&["rm", "--cached", "-r", "-q", path], b"");
    let tree = git(&["write-tree"], b"");
    let message = git(&["log", "-1", "--format=%B", "main"], b"");
    let commit = git(&["commit-tree", &tree, "-p", "main"], message.as_bytes());
    git(&["update-ref", "refs/heads/main", &commit], b"");
}

#[test]
fn a_snapshot_missing_files_its_commit_recorded_fails() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        &[ROWS_3000, b"CREATE TABLE u(a); INSERT INTO u VALUES (1);"].concat(),
    );
    let first = env.path("first.sqlgit");
    snapshot(&env, &db, &first);
    let files = env.git_in(&first, &["ls-tree", "-r", "--name-only", "main"]);
    let chunk = files
        .lines()
        .filter(|f| f.starts_with("app.db/1-tables/t/") && f.ends_with(".sql"))
        .nth(1)
        .expect("table t has several chunk files")
        .to_string();
    for (n, path) in [chunk.as_str(), "app.db/1-tables/u"]
        .into_iter()
        .enumerate()
    {
        let repo = env.path(format!("{n}.sqlgit"));
        snapshot(&env, &db, &repo);
        env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
        remove_keeping_message(&env, &repo, path);
        let run = env.sqlgit(&["verify", "--repo", &s(&repo)]).code_is(1);
        let err = run.stderr_str();
        assert!(err.contains("incomplete"), "removed {path}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// The same snapshot that lost a chunk is refused by `restore --to` and `restore --into` (which
/// leave the target untouched), and `cat` exits 1 after the SQL it has: its commit records more.
#[test]
fn restore_and_cat_refuse_a_snapshot_missing_a_chunk() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", ROWS_3000);
    let repo = env.path("r.sqlgit");
    snapshot(&env, &db, &repo);
    let to = env.path("to.db");
    env.sqlgit(&["restore", "--repo", &s(&repo), "--to", &s(&to)])
        .success();
    env.sqlgit(&["cat", "--repo", &s(&repo)]).success();
    let files = env.git_in(&repo, &["ls-tree", "-r", "--name-only", "main"]);
    let chunk = files
        .lines()
        .filter(|f| f.contains("/1-rows/"))
        .nth(1)
        .expect("table t has several chunk files")
        .to_string();
    remove_keeping_message(&env, &repo, &chunk);
    let new = env.path("new.db");
    let run = env
        .sqlgit(&["restore", "--repo", &s(&repo), "--to", &s(&new)])
        .code_is(1);
    let err = run.stderr_str();
    assert!(
        err.contains("incomplete") && err.contains("3000 rows"),
        "{err}"
    );
    assert!(!new.exists());
    let before = crate::env::FileState::of(&to);
    let run = env
        .sqlgit(&["restore", "--repo", &s(&repo), "--into", &s(&to)])
        .code_is(1);
    assert!(
        run.stderr_str().contains("incomplete"),
        "{}",
        run.stderr_str()
    );
    before.assert_unchanged(&to, "restore --into of an incomplete snapshot");
    let run = env.sqlgit(&["cat", "--repo", &s(&repo)]).code_is(1);
    assert!(
        run.stderr_str().contains("incomplete"),
        "{}",
        run.stderr_str()
    );
    // `query` restores with the same fast path: it must not answer from the smaller copy.
    let run = env
        .sqlgit(&["query", "SELECT count(*) FROM t", "--repo", &s(&repo)])
        .code_is(1);
    assert!(
        run.stderr_str().contains("incomplete") && run.stdout_str().is_empty(),
        "{}{}",
        run.stdout_str(),
        run.stderr_str()
    );
}

/// A database folder the commit records nothing for (a repository of two databases snapshotted
/// by separate runs: the second run's commit keeps a.db without recording it) cannot be checked
/// for completeness: verify says so in a warning instead of passing in silence.
#[test]
fn a_database_its_commit_does_not_record_is_a_warning() {
    let env = TestEnv::new();
    let a = env.db_from_script("a.db", ROWS_3000);
    let b = env.db_from_script("b.db", b"CREATE TABLE u(y); INSERT INTO u VALUES (1);");
    let repo = env.path("r.sqlgit");
    snapshot(&env, &a, &repo);
    snapshot(&env, &b, &repo);
    let files = env.git_in(&repo, &["ls-tree", "-r", "--name-only", "main"]);
    let chunk = files
        .lines()
        .filter(|f| f.starts_with("a.db/1-tables/t/1-rows/"))
        .nth(1)
        .expect("table t has several chunk files")
        .to_string();
    remove_keeping_message(&env, &repo, &chunk);
    let run = env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
    let err = run.stderr_str();
    assert!(
        err.contains("warning:")
            && err.contains("database a.db: its commit records no tables, rows or bytes"),
        "{err}"
    );
    assert!(!err.contains("database b.db"), "{err}");
}

/// An external-content FTS4 table whose content table changed without its index (no triggers,
/// as sqlite-utils' `enable_fts` makes it by default, or triggers dropped by a table rebuild)
/// fails SQLite's integrity check in the database itself: the snapshot holds that index exactly,
/// so `verify` warns instead of failing, and `restore --into` succeeds (it replaced the content,
/// then exited 1 with "integrity check failed").
#[test]
fn a_stale_external_content_fts_index_is_a_warning() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "fts.db",
        b"CREATE TABLE docs(id INTEGER PRIMARY KEY, body);\n\
          INSERT INTO docs VALUES (1, 'alpha'), (2, 'beta');\n\
          CREATE VIRTUAL TABLE f USING fts4(body, content='docs');\n\
          INSERT INTO f(f) VALUES ('rebuild');\n\
          UPDATE docs SET body = 'gamma' WHERE id = 1;\n",
    );
    let repo = env.path("fts.sqlgit");
    snapshot(&env, &db, &repo);
    let run = env.sqlgit(&["-q", "verify", "--repo", &s(&repo)]).success();
    let err = run.stderr_str();
    assert!(
        err.contains("a full-text index does not match the rows it indexes"),
        "{err}"
    );
    assert!(err.contains("FTS4 table main.f"), "{err}");
    let live = env.db_from_script("live.db", b"CREATE TABLE other(x);");
    env.sqlgit(&["restore", "--repo", &s(&repo), "--into", &s(&live)])
        .success();
    let c = rusqlite::Connection::open(&live).unwrap();
    let body: String = c
        .query_row("SELECT body FROM docs WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(body, "gamma");
}

/// Indexes whose keys or rows SQLite computes (an expression, a partial index's WHERE, a
/// VIRTUAL generated column) can be built differently by the sqlite3 CLI (3.40) and the bundled
/// SQLite of `restore --to` (3.54 turns `0.1+0.2` into the text `0.30000000000000004`, 3.40 into
/// `0.3`): each restore is checked by the SQLite that built it, and the other SQLite's finding
/// is a warning naming the index and `REINDEX` (verify failed on the first and third, and
/// passed the second without a word although its `restore --to` copy fails 3.40's check).
#[test]
fn indexes_sqlite_versions_build_differently_are_warnings() {
    for (n, schema) in [
        "CREATE TABLE t(x REAL); CREATE INDEX ti ON t(CAST(x AS TEXT));",
        "CREATE TABLE t(x REAL); CREATE INDEX ti ON t(x) WHERE CAST(x AS TEXT) = '0.3';",
        "CREATE TABLE t(x REAL, g AS (CAST(x AS TEXT)) VIRTUAL); CREATE INDEX ti ON t(g);",
    ]
    .iter()
    .enumerate()
    {
        let env = TestEnv::new();
        let script = format!("{schema}\nINSERT INTO t(x) VALUES (0.1+0.2);\n");
        let db = env.db_from_script(&format!("v{n}.db"), script.as_bytes());
        let repo = env.path("v.sqlgit");
        snapshot(&env, &db, &repo);
        let run = env.sqlgit(&["-q", "verify", "--repo", &s(&repo)]);
        let err = run.stderr_str();
        assert_eq!(run.code(), Some(0), "{schema}: {err}");
        let cross = err.contains("index ti as `sqlgit restore --to`")
            && err.contains("fails the integrity check of")
            && err.contains("REINDEX \"ti\"");
        // A CLI that spells the value as the bundled SQLite does builds the same index.
        let differs = cli_spells_reals_otherwise(&env, &["0.1+0.2"]);
        assert_eq!(cross, differs, "{schema}: {err}");
        assert!(err.contains("computed again"), "{schema}: {err}");
    }
}

/// A row that breaks its STRICT table's types (the schema edited with `writable_schema`) cannot
/// be restored by any SQLite: verify fails and says what it is, not only SQLite's message.
#[test]
fn rows_breaking_strict_types_fail_verify_saying_why() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "strict.db",
        b"CREATE TABLE t(a INTEGER, b TEXT);\n\
          INSERT INTO t VALUES ('abc', 'x'), (2, 'z');\n\
          .dbconfig defensive off\n\
          PRAGMA writable_schema=ON;\n\
          UPDATE sqlite_schema SET sql='CREATE TABLE t(a INTEGER, b TEXT) STRICT' WHERE name='t';\n",
    );
    let repo = env.path("strict.sqlgit");
    snapshot(&env, &db, &repo);
    let run = env.sqlgit(&["verify", "--repo", &s(&repo)]).failure();
    let err = run.stderr_str();
    assert!(
        err.contains("breaks its table's STRICT column types") && err.contains("cannot store"),
        "{err}"
    );
}

/// `verify` stopped by SIGTERM (cron's `timeout`) while it restores says so and removes its
/// scratch directory of restored copies from $TMPDIR.
#[test]
fn a_verify_stopped_by_sigterm_removes_its_restored_copies() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, v);
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<40000)
          INSERT INTO t SELECT i, randomblob(1000) FROM n;",
    );
    let repo = env.path("r.sqlgit");
    snapshot(&env, &db, &repo);
    let tmp = env.tmpdir();
    std::fs::create_dir_all(&tmp).unwrap();
    /// Every file under `dir`, at any depth.
    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            match e.file_type().is_ok_and(|t| t.is_dir()) {
                true => out.extend(files(&e.path())),
                false => out.push(e.path()),
            }
        }
        out
    }
    let args = ["verify", "--repo", &s(&repo), "-q"];
    let out = env.sqlgit_signalled(&args, libc::SIGTERM, "verify", || {
        files(&tmp)
            .iter()
            .any(|f| f.extension().is_some_and(|x| x == "db"))
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("stopped by SIGTERM"), "{err}");
    assert_eq!(files(&tmp), Vec::<PathBuf>::new(), "restored copies left");
}

/// A virtual table whose module sqlgit's SQLite lacks (sqlite-vec's `vec0`; the schema row as
/// it writes it): every restore works, so verify passes, with a warning naming the table.
#[test]
fn a_virtual_table_of_a_missing_module_is_a_warning_naming_it() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO docs VALUES(1,'hi');
          CREATE TABLE vec_items_chunks(chunk_id INTEGER PRIMARY KEY, size INTEGER NOT NULL);
          INSERT INTO vec_items_chunks VALUES(1, 1024);\n\
          .dbconfig defensive off\n\
          PRAGMA writable_schema=ON;
          INSERT INTO sqlite_schema VALUES('table','vec_items','vec_items',0,
            'CREATE VIRTUAL TABLE vec_items USING vec0(embedding float[4])');",
    );
    let repo = env.path("r.sqlgit");
    snapshot(&env, &db, &repo);
    let run = env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
    let err = run.stderr_str();
    assert!(
        err.contains("database app.db: virtual table vec_items: no such module: vec0"),
        "{err}"
    );
}

/// A column added by ALTER TABLE … DEFAULT 1.0e0 (or -0.0) reads as INTEGER with SQLite 3.40 in
/// rows written before, as REAL with newer versions: verify warns, naming the columns (and not
/// those whose default every version reads alike).
#[test]
fn float_defaults_that_sqlite_versions_read_differently_are_named() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(a); INSERT INTO t VALUES(1),(2);
          ALTER TABLE t ADD COLUMN n DEFAULT 1.0e0; ALTER TABLE t ADD COLUMN z DEFAULT -0.0;
          ALTER TABLE t ADD COLUMN r REAL DEFAULT 2.0; ALTER TABLE t ADD COLUMN h DEFAULT 1.5;",
    );
    let repo = env.path("r.sqlgit");
    snapshot(&env, &db, &repo);
    let run = env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
    let err = run.stderr_str();
    assert!(
        err.contains("(t.n DEFAULT 1.0e0, t.z DEFAULT -0.0)") && err.contains("INTEGER"),
        "{err}"
    );
}

/// The same class in a STRICT table's ANY column (no affinity, like BLOB), for TRUE/FALSE in
/// TEXT-affinity columns (3.40 reads INTEGER 1/0, newer versions TEXT '1'/'0') and for hex
/// beyond 32 bits in any column (3.40 reads the TEXT '0xFFFFFFFF'); a default that
/// is not UTF-8 (Latin-1 here) is read as bytes and never makes verify fail.
#[test]
fn any_and_true_false_defaults_are_named_and_latin1_defaults_pass() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE s(id INTEGER PRIMARY KEY) STRICT; INSERT INTO s VALUES(1);
          ALTER TABLE s ADD COLUMN x ANY DEFAULT 1.0; ALTER TABLE s ADD COLUMN k INT DEFAULT 2.0;
          CREATE TABLE u(id INTEGER PRIMARY KEY, city TEXT DEFAULT 'Montr\xe9al');
          INSERT INTO u(id) VALUES(1);
          ALTER TABLE u ADD COLUMN on_ TEXT DEFAULT TRUE;
          ALTER TABLE u ADD COLUMN off VARCHAR(5) DEFAULT false;
          ALTER TABLE u ADD COLUMN n INT DEFAULT TRUE;
          CREATE TABLE m(id INTEGER PRIMARY KEY); INSERT INTO m VALUES(1);
          ALTER TABLE m ADD COLUMN flags INTEGER NOT NULL DEFAULT 0xFFFFFFFF;
          ALTER TABLE m ADD COLUMN low INTEGER DEFAULT 0x7FFFFFFF;
          ALTER TABLE m ADD COLUMN neg TEXT DEFAULT (- 0x80000000);",
    );
    let repo = env.path("r.sqlgit");
    snapshot(&env, &db, &repo);
    let run = env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
    let err = run.stderr_str();
    assert!(
        err.contains(
            "(m.flags DEFAULT 0xFFFFFFFF, m.neg DEFAULT - 0x80000000, s.x DEFAULT 1.0, \
             u.on_ DEFAULT TRUE, u.off DEFAULT false)"
        ),
        "{err}"
    );
}
