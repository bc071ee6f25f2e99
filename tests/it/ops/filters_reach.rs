//! `--exclude-table` and `--redact` reach every path a table's data takes into the snapshot —
//! statistics samples, virtual tables' shadow tables, full-text indexes, foreign keys — and a
//! redaction never makes a snapshot unrestorable: it works, or the run refuses it and says why.

use super::*;

/// Snapshot `db` with `args`, and what `sqlgit cat` gives back.
fn snapshot_cat(env: &TestEnv, db: &Path, repo: &str, args: &[&str]) -> Vec<u8> {
    let mut all = vec!["snapshot", db.to_str().unwrap(), "--repo", repo];
    all.extend_from_slice(args);
    sg(env, T0, &all).success().assert_quiet();
    sg(env, T0, &["cat", "--repo", repo])
        .success()
        .output
        .stdout
}

/// The dump's text with every `X'…'` blob literal decoded beside it (stat4 samples are blobs).
fn with_blobs(dump: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(dump).into_owned();
    let mut out = dump.to_vec();
    for part in text.split("X'").skip(1) {
        let hex: String = part.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        for i in (0..hex.len() / 2 * 2).step_by(2) {
            out.push(u8::from_str_radix(&hex[i..i + 2], 16).unwrap());
        }
    }
    out
}

/// A NOT NULL column under a UNIQUE index (a username, an API token) gets a placeholder of its
/// own in every row, so both restores keep every row; where the placeholder could still break
/// the restore (an index computing on the column) the run refuses, naming the index.
#[test]
fn redacting_a_unique_not_null_column_keeps_the_snapshot_restorable() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE users(id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE, \
          pin INTEGER NOT NULL, key BLOB NOT NULL, UNIQUE(pin, key));\n\
          INSERT INTO users VALUES (1, 'alice', 1111, X'AA'), (2, 'bob', 2222, X'BB');\n\
          CREATE TABLE keyed(k TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE) WITHOUT ROWID;\n\
          INSERT INTO keyed VALUES ('a', 'TOKEN-1'), ('b', 'TOKEN-2');\n",
    );
    let repo = s(&env.path("r"));
    let text = snapshot_cat(
        &env,
        &db,
        &repo,
        &[
            "--redact",
            "users.*name",
            "--redact",
            "users.pin",
            "--redact",
            "users.key",
            "--redact",
            "keyed.token",
        ],
    );
    for secret in ["alice", "bob", "1111", "TOKEN-"] {
        assert!(!contains(&text, secret.as_bytes()), "{secret} in the dump");
    }
    let to = env.path("to.db");
    sg(&env, T0, &["restore", "--repo", &repo, "--to", &s(&to)]).success();
    assert_eq!(query(&env, &to, "SELECT count(*) FROM users;"), "2");
    assert_eq!(query(&env, &to, "SELECT count(*) FROM keyed;"), "2");
    let restored = env.restore(&text, "cat.db");
    assert_eq!(query(&env, &restored, "SELECT count(*) FROM users;"), "2");
    sg(&env, T0, &["verify", "--repo", &repo]).success();

    // A partial UNIQUE index keyed on the column whose WHERE reads another column: each row
    // has its placeholder, the same rows are indexed: kept. One whose WHERE reads the column:
    // refused, saying so.
    sql(
        &env,
        &db,
        "CREATE UNIQUE INDEX users_pinned ON users(username) WHERE id > 0;",
    );
    sg(&env, T0 + 30, &["snapshot", "-q", "--repo", &repo]).success();
    sg(&env, T0 + 30, &["verify", "--repo", &repo]).success();
    sql(
        &env,
        &db,
        "CREATE UNIQUE INDEX users_named ON users(id) WHERE username <> '';",
    );
    let run = sg(&env, T0 + 45, &["snapshot", "--repo", &repo]).code_is(1);
    assert!(
        run.stderr_str().contains(
            "cannot redact users.username: index users_named: the WHERE of this partial index \
             reads it"
        ),
        "{}",
        run.stderr_str()
    );
    sql(&env, &db, "DROP INDEX users_named;");
    // An index on an expression of the column: refused up front, with the reason.
    sql(
        &env,
        &db,
        "CREATE UNIQUE INDEX users_lower ON users(lower(username));",
    );
    let run = sg(&env, T0 + 60, &["snapshot", "--repo", &repo]);
    assert_eq!(run.code(), Some(1), "{}", run.stderr_str());
    assert!(
        run.stderr_str().contains(
            "cannot redact users.username: index users_lower: an expression of its keys \
             computes on it"
        ),
        "{}",
        run.stderr_str()
    );
}

/// A foreign key to a redacted column holds the same values: the run refuses unless it is
/// redacted too.
#[test]
fn a_foreign_key_to_a_redacted_column_must_be_redacted_too() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT UNIQUE);\n\
          CREATE TABLE posts(id INTEGER PRIMARY KEY, author TEXT REFERENCES users(email));\n\
          INSERT INTO users VALUES (1, 'a@example.com');\n\
          INSERT INTO posts VALUES (1, 'a@example.com');\n",
    );
    let (d, r) = (s(&db), s(&env.path("r")));
    let run = sg(
        &env,
        T0,
        &["snapshot", &d, "--repo", &r, "--redact", "users.email"],
    );
    assert_eq!(run.code(), Some(1), "{}", run.stderr_str());
    assert!(
        run.stderr_str().contains("posts.author references it"),
        "{}",
        run.stderr_str()
    );
    let dump = snapshot_cat(
        &env,
        &db,
        &r,
        &["--redact", "*.email", "--redact", "posts.author"],
    );
    assert!(!contains(&dump, b"example.com"));
}

/// A SQLite built with STAT4 keeps index samples — whole index keys — in sqlite_stat4: those of
/// excluded tables and of tables with redacted columns are left out, and sqlite_stat1 names no
/// excluded table.
#[test]
fn statistics_hold_nothing_of_excluded_tables_or_redacted_columns() {
    let env = TestEnv::new();
    let db = env.path("app.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE api_keys(id INTEGER PRIMARY KEY, owner TEXT, token TEXT NOT NULL UNIQUE);
             CREATE TABLE sessions(id INTEGER PRIMARY KEY, session_key TEXT UNIQUE);
             CREATE TABLE plain(id INTEGER PRIMARY KEY, v TEXT UNIQUE);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300)
             INSERT INTO api_keys(owner, token) SELECT 'u' || x, 'SECRETTOKEN' || x FROM c;
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300)
             INSERT INTO sessions(session_key) SELECT 'SESSIONKEY' || x FROM c;
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300)
             INSERT INTO plain(v) SELECT 'PLAINVALUE' || x FROM c;
             ANALYZE;",
        )
        .unwrap();
    let repo = s(&env.path("r"));
    let args = ["--redact", "api_keys.token", "--exclude-table", "sessions"];
    let dump = with_blobs(&snapshot_cat(&env, &db, &repo, &args));
    for secret in ["SECRETTOKEN", "SESSIONKEY", "sessions"] {
        assert!(!contains(&dump, secret.as_bytes()), "{secret} in the dump");
    }
    assert!(contains(&dump, b"PLAINVALUE"), "other samples are kept");
    // The same after an incremental snapshot that re-reads the statistics.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("INSERT INTO sessions(session_key) VALUES ('SESSIONKEY-new'); ANALYZE;")
        .unwrap();
    sg(&env, T0 + 60, &["snapshot", "--repo", &repo])
        .success()
        .assert_quiet();
    let dump = with_blobs(
        &sg(&env, T0, &["cat", "--repo", &repo])
            .success()
            .output
            .stdout,
    );
    for secret in ["SECRETTOKEN", "SESSIONKEY", "sessions"] {
        assert!(
            !contains(&dump, secret.as_bytes()),
            "{secret} in the second dump"
        );
    }
    sg(&env, T0 + 60, &["verify", "--repo", &repo]).success();
}

/// A virtual table's data lives in its shadow tables: excluding it leaves them out too,
/// redacting its columns is refused (as is leaving out or redacting the table an external-content
/// full-text index indexes without the index), and a redaction glob never rewrites a shadow
/// table (an R*Tree's `_node.data` blobs).
#[test]
fn filters_reach_virtual_tables_through_their_shadow_tables() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE events(id INTEGER PRIMARY KEY, data TEXT);\n\
          INSERT INTO events VALUES (1, 'SSN-123');\n\
          CREATE VIRTUAL TABLE notes USING fts5(body);\n\
          INSERT INTO notes VALUES ('my PRIVATE diary');\n\
          CREATE VIRTUAL TABLE places USING rtree(id, minx, maxx);\n\
          INSERT INTO places VALUES (1, 0, 10), (2, 20, 30);\n\
          CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT);\n\
          INSERT INTO docs VALUES (1, 'CONFIDENTIAL memo');\n\
          CREATE VIRTUAL TABLE docs_fts USING fts5(body, content='docs', content_rowid='id');\n\
          INSERT INTO docs_fts(docs_fts) VALUES ('rebuild');\n",
    );
    let (d, r) = (s(&db), s(&env.path("r")));
    let dump = snapshot_cat(
        &env,
        &db,
        &r,
        &["--exclude-table", "notes", "--redact", "*.data"],
    );
    for gone in ["PRIVATE", "notes_", "SSN-123"] {
        assert!(!contains(&dump, gone.as_bytes()), "{gone} in the dump");
    }
    let to = env.path("to.db");
    sg(&env, T0, &["restore", "--repo", &r, "--to", &s(&to)]).success();
    assert_eq!(query(&env, &to, "SELECT rtreecheck('places');"), "ok");
    assert_eq!(
        query(
            &env,
            &to,
            "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'notes%';"
        ),
        "0"
    );

    let refused = |args: &[&str], says: &str| {
        let fresh = s(&env.path(format!("refused-{}", args[1])));
        let mut all = vec!["snapshot", &*d, "--repo", &*fresh];
        all.extend_from_slice(args);
        let run = sg(&env, T0 + 60, &all);
        assert_eq!(run.code(), Some(1), "{args:?}: {}", run.stderr_str());
        assert!(
            run.stderr_str().contains(says),
            "{args:?}: {}",
            run.stderr_str()
        );
    };
    refused(&["--redact", "notes.body"], "notes is a virtual table");
    refused(&["--redact", "docs.body"], "full-text index docs_fts");
    refused(&["--exclude-table", "docs"], "exclude docs_fts too");
    // A repository of its own: replacing the saved list warns (it drops `notes`).
    let r2 = s(&env.path("r-docs"));
    let dump = snapshot_cat(&env, &db, &r2, &["--exclude-table", "docs*"]);
    assert!(!contains(&dump, b"CONFIDENTIAL"));
}

/// A WITHOUT ROWID key in an application's own collation cannot be read: the error names the
/// collation and what to do.
#[test]
fn a_key_in_an_application_collation_is_named() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE w(k TEXT COLLATE NOCASE PRIMARY KEY, v) WITHOUT ROWID;\n\
          INSERT INTO w VALUES ('x', 1);\n\
          .dbconfig defensive off\n\
          PRAGMA writable_schema=ON;\n\
          UPDATE sqlite_schema SET sql = replace(sql, 'NOCASE', 'LOCALIZED') WHERE name = 'w';\n",
    );
    let run = sg(
        &env,
        T0,
        &["snapshot", &s(&db), "--repo", &s(&env.path("r"))],
    );
    assert_eq!(run.code(), Some(1), "{}", run.stderr_str());
    assert!(
        run.stderr_str().contains("collation LOCALIZED")
            && run.stderr_str().contains("--exclude-table w"),
        "{}",
        run.stderr_str()
    );
}

/// A table a filter names exactly is filtered even when its name makes it look like a shadow
/// table of a virtual table whose module sqlgit's SQLite lacks (`documents_private` beside
/// sqlite-vec's `documents`), and `--exclude-table` on it does not say it matches no table.
#[test]
fn a_table_named_like_an_unknown_modules_shadow_table_is_still_filtered() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE documents_private(id INTEGER PRIMARY KEY, ssn TEXT, note TEXT);\n\
          INSERT INTO documents_private VALUES (1, 'SSN-078-05-1120', 'NOTE-1');\n\
          .dbconfig defensive off\n\
          PRAGMA writable_schema=ON;\n\
          INSERT INTO sqlite_schema VALUES('table','documents','documents',0,\
          'CREATE VIRTUAL TABLE documents USING vec0(embedding float[4])');\n",
    );
    for (n, args, gone) in [
        (0, ["--exclude-table", "documents_private"], "NOTE-1"),
        (1, ["--redact", "documents_private.ssn"], "SSN-078"),
    ] {
        let r = s(&env.path(format!("r{n}")));
        let run = sg(
            &env,
            T0,
            &[&["snapshot", &s(&db), "--repo", &r][..], &args[..]].concat(),
        );
        let err = run.stderr_str();
        assert_eq!(run.code(), Some(0), "{err}");
        assert!(!err.contains("matches no"), "{err}");
        let dump = sg(&env, T0, &["cat", "--repo", &r]).success().stdout_str();
        assert!(!dump.contains(gone), "{args:?}: {dump}");
    }
}
