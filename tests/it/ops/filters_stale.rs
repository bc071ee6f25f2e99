//! Filters against what a database keeps about its tables outside them: statistics rows that
//! still name a table by the name it had before ALTER TABLE RENAME, sqlite_sequence rows of
//! excluded tables, schema names spelled in another letter case, full-text indexes of a view,
//! triggers of kept tables that write into an excluded one.

use super::*;

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

fn cat(env: &TestEnv, repo: &str) -> Vec<u8> {
    sg(env, T0, &["cat", "--repo", repo])
        .success()
        .output
        .stdout
}

/// ALTER TABLE RENAME leaves the old name in sqlite_stat1/4's `tbl`: the samples of a renamed
/// table that is now excluded or redacted (found through their index) are left out, as are
/// rows naming no current table; without filters every row stays as stored.
#[test]
fn statistics_of_a_renamed_table_follow_it_into_the_filters() {
    let env = TestEnv::new();
    let db = env.path("app.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE users(id INTEGER PRIMARY KEY, email TEXT, pw TEXT);
             CREATE INDEX users_pw ON users(pw);
             CREATE TABLE sessions(id INTEGER PRIMARY KEY, token TEXT);
             CREATE INDEX sess_tok ON sessions(token);
             CREATE TABLE plain(id INTEGER PRIMARY KEY, v TEXT UNIQUE);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100)
             INSERT INTO users(email, pw) SELECT 'u' || x, 'SECRETPW' || x FROM c;
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100)
             INSERT INTO sessions(token) SELECT 'SESSTOK' || x FROM c;
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100)
             INSERT INTO plain(v) SELECT 'PLAINVALUE' || x FROM c;
             ANALYZE;
             ALTER TABLE users RENAME TO accounts;
             ALTER TABLE sessions RENAME TO Login_Sessions;",
        )
        .unwrap();
    let unfiltered = s(&env.path("all"));
    sg(&env, T0, &["snapshot", &s(&db), "--repo", &unfiltered])
        .success()
        .assert_quiet();
    let dump = with_blobs(&cat(&env, &unfiltered));
    assert!(contains(&dump, b"SECRETPW"), "no filter: samples kept");

    let repo = s(&env.path("r"));
    let args = [
        "snapshot",
        &s(&db),
        "--repo",
        &repo,
        "--redact",
        "accounts.pw",
        "--exclude-table",
        "login_sessions",
    ];
    sg(&env, T0, &args).success().assert_quiet();
    let dump = with_blobs(&cat(&env, &repo));
    for secret in ["SECRETPW", "SESSTOK", "sessions", "'users'"] {
        assert!(!contains(&dump, secret.as_bytes()), "{secret} in the dump");
    }
    assert!(contains(&dump, b"PLAINVALUE"), "other samples are kept");
    sg(&env, T0 + 60, &["verify", "--repo", &repo]).success();
}

/// An excluded AUTOINCREMENT table's sqlite_sequence row (its name, how many rows it ever had)
/// is left out, and an insert into it alone makes no new snapshot.
#[test]
fn an_excluded_tables_sequence_is_left_out() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE users(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT);\n\
          INSERT INTO users(name) VALUES ('alice');\n\
          CREATE TABLE Secret_Payouts(id INTEGER PRIMARY KEY AUTOINCREMENT, amount INTEGER);\n\
          INSERT INTO Secret_Payouts(amount) VALUES (1), (2), (4321);\n",
    );
    let repo = s(&env.path("r"));
    let args = ["snapshot", &s(&db), "--repo", &repo];
    let mut filtered = args.to_vec();
    filtered.extend(["--exclude-table", "secret_payouts"]);
    sg(&env, T0, &filtered).success().assert_quiet();
    let dump = cat(&env, &repo);
    assert!(
        !contains(&dump, b"ecret_"),
        "{}",
        String::from_utf8_lossy(&dump)
    );
    let to = env.path("to.db");
    sg(&env, T0, &["restore", "--repo", &repo, "--to", &s(&to)]).success();
    assert_eq!(
        query(
            &env,
            &to,
            "SELECT group_concat(name || '=' || seq) FROM sqlite_sequence;"
        ),
        "users=1"
    );
    let commits = commit_count(&env, Path::new(&repo));
    env.sqlite3(&db, "INSERT INTO Secret_Payouts(amount) VALUES (5);")
        .success();
    sg(&env, T0 + 60, &["snapshot", "--repo", &repo]).success();
    assert_eq!(commit_count(&env, Path::new(&repo)), commits);
}

/// A trigger on a kept table that writes into an excluded table is kept without that table, so
/// every insert into the kept table fails in a restore: the snapshot and verify warn, naming it.
#[test]
fn a_kept_trigger_into_an_excluded_table_is_warned_about() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE sess(id INTEGER PRIMARY KEY, s TEXT);\n\
          CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n\
          CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO sess VALUES (new.id, new.v); END;\n\
          INSERT INTO t VALUES (1, 'x');\n",
    );
    let repo = s(&env.path("r"));
    let run = sg(
        &env,
        T0,
        &[
            "snapshot",
            &s(&db),
            "--repo",
            &repo,
            "--exclude-table",
            "sess",
        ],
    )
    .success();
    assert!(
        run.stderr_str()
            .contains("warning: database app.db: trigger tr on t names the excluded table sess"),
        "{}",
        run.stderr_str()
    );
    let run = sg(&env, T0, &["verify", "--repo", &repo]).success();
    assert!(
        run.stderr_str().contains(
            "trigger tr on t names sess, which the snapshot does not have (an excluded table?): \
             every INSERT on t fails in a restore (no such table: main.sess)"
        ),
        "{}{}",
        run.stdout_str(),
        run.stderr_str()
    );
}

/// Refused with `snapshot` on a fresh repository: exit 1, the message says `says`.
fn refused(env: &TestEnv, db: &Path, args: &[&str], says: &str) {
    let repo = s(&env.path(format!(
        "refused-{}",
        args.join("-").replace(['*', '.'], "_")
    )));
    let mut all = vec!["snapshot", db.to_str().unwrap(), "--repo", &repo];
    all.extend_from_slice(args);
    let run = sg(env, T0, &all);
    assert_eq!(run.code(), Some(1), "{args:?}: {}", run.stderr_str());
    assert!(
        run.stderr_str().contains(says),
        "{args:?}: {}",
        run.stderr_str()
    );
}

/// SQLite resolves an external-content index's column names ASCII case-insensitively:
/// `fts5(Body, content='notes')` indexes `notes.body`, and `content_rowid` names a column whose
/// values the index keeps as its rowids.
#[test]
fn an_fts_column_in_another_letter_case_is_still_indexed() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE notes(id INTEGER PRIMARY KEY, title TEXT, body TEXT, num INTEGER UNIQUE);
          CREATE VIRTUAL TABLE notes_fts USING fts5(Body, content='NOTES', content_rowid='Num');
          INSERT INTO notes VALUES (1, 'visit', 'diagnosis schizophrenia', 7);
          INSERT INTO notes_fts(notes_fts) VALUES ('rebuild');
",
    );
    refused(
        &env,
        &db,
        &["--redact", "notes.body"],
        "exclude notes_fts too",
    );
    refused(
        &env,
        &db,
        &["--redact", "notes.num"],
        "exclude notes_fts too",
    );
    refused(
        &env,
        &db,
        &["--exclude-table", "Notes"],
        "exclude notes_fts too",
    );
    let repo = s(&env.path("ok"));
    let args = [
        "snapshot",
        &s(&db),
        "--repo",
        &repo,
        "--redact",
        "notes.title",
    ];
    sg(&env, T0, &args).success().assert_quiet();
}

/// An external-content index of a view keeps the text of the tables the view reads: filtering
/// one of them without the index is refused, and so is any filter while an index reads a view
/// sqlgit cannot follow (an application's function).
#[test]
fn an_fts_index_of_a_view_guards_the_tables_it_reads() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE notes(id INTEGER PRIMARY KEY, title TEXT, body TEXT);
          CREATE TABLE other(id INTEGER PRIMARY KEY, x TEXT);
          CREATE VIEW notes_v AS SELECT id, title, body FROM notes;
          CREATE VIRTUAL TABLE notes_fts USING fts5(title, body, content='notes_v', content_rowid='id');
          INSERT INTO notes VALUES (1, 'visit', 'diagnosis schizophrenia');
          INSERT INTO notes_fts(notes_fts) VALUES ('rebuild');
",
    );
    refused(&env, &db, &["--redact", "notes.body"], "it reads notes");
    refused(
        &env,
        &db,
        &["--exclude-table", "notes"],
        "exclude notes_fts too",
    );
    let repo = s(&env.path("ok"));
    let args = ["snapshot", &s(&db), "--repo", &repo, "--redact", "other.x"];
    sg(&env, T0, &args).success().assert_quiet();
    let args = [
        "snapshot",
        &s(&db),
        "--repo",
        &repo,
        "--exclude-table",
        "notes*",
    ];
    sg(&env, T0 + 60, &args).success().assert_quiet();
    assert!(!contains(&cat(&env, &repo), b"schizophrenia"));

    env.sqlite3(
        &db,
        "CREATE VIEW f_v AS SELECT id, app_func(body) AS body FROM notes;
         CREATE VIRTUAL TABLE f_fts USING fts5(body, content='f_v');
",
    )
    .success();
    refused(
        &env,
        &db,
        &["--redact", "other.x"],
        "cannot tell which tables the view reads",
    );
}
