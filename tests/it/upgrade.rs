//! What an older sqlgit (snapshot format 1) left behind, read by this one: its state file
//! (without `push_only`), snapshots of a database with no table whose header names another
//! encoding (without the view that makes SQLite write it), and headers without `PRAGMA
//! page_size`/`auto_vacuum` (it never wrote them). Each is made here as the older sqlgit wrote
//! it: a format-1 snapshot (`SQLGIT_SNAPSHOT_FORMAT=1`) edited with git plumbing, or the state
//! file's JSON without the newer fields.

use std::path::{Path, PathBuf};

use crate::env::{TestEnv, hook_lines, logging_hook};

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A format-1 snapshot of `db` into `repo` (the current sqlgit's format-1 header).
fn format_1_snapshot(env: &TestEnv, db: &Path, repo: &Path) {
    let mut cmd = env.sqlgit_cmd(&[Path::new("snapshot"), db, Path::new("--repo"), repo]);
    cmd.env("SQLGIT_SNAPSHOT_FORMAT", "1");
    env.run(cmd, b"").success();
}

/// Replace main's commit by one whose `app.db/0-header.sql` is `edit` of it, with the bytes
/// its message records adjusted (as the older sqlgit wrote that commit). Plain git plumbing.
fn as_older_sqlgit_wrote_it(env: &TestEnv, repo: &Path, edit: impl Fn(&str) -> String) {
    as_older_sqlgit_wrote_files(env, repo, |path, text| match path {
        "app.db/0-header.sql" => Some(edit(text)),
        _ => Some(text.to_string()),
    });
}

/// Replace main's commit by one whose every file is `edit(path, text)` of it (None: left out),
/// with the bytes its message records adjusted (as the older sqlgit wrote that commit). Plain
/// git plumbing.
fn as_older_sqlgit_wrote_files(
    env: &TestEnv,
    repo: &Path,
    edit: impl Fn(&str, &str) -> Option<String>,
) {
    let git = |args: &[&str], stdin: &[u8]| -> String {
        let out = env.git_plumbing(repo, "older.index", args, stdin);
        out.trim_end_matches('\n').to_string()
    };
    git(&["read-tree", "main"], b"");
    let (mut before, mut after, mut changed) = (0usize, 0usize, false);
    for path in git(&["ls-files"], b"").lines() {
        let text = git(&["cat-file", "blob", &format!("main:{path}")], b"") + "\n";
        let older = edit(path, &text);
        before += text.len();
        after += older.as_ref().map_or(0, String::len);
        changed |= older.as_deref() != Some(text.as_str());
        match older {
            Some(older) => {
                let blob = git(&["hash-object", "-w", "--stdin"], older.as_bytes());
                let entry = format!("100644,{blob},{path}");
                git(&["update-index", "--cacheinfo", &entry], b"");
            }
            None => {
                let removal = format!("0 {}\t{path}\n", "0".repeat(40));
                git(&["update-index", "--index-info"], removal.as_bytes());
            }
        }
    }
    assert!(changed, "the edit changed nothing");
    let tree = git(&["write-tree"], b"");
    let message = git(&["log", "-1", "--format=%B", "main"], b"");
    let bytes = message
        .lines()
        .find_map(|l| l.strip_prefix("Sqlgit-Bytes: "))
        .expect("a Sqlgit-Bytes trailer")
        .parse::<usize>()
        .unwrap();
    let fewer = bytes + after - before;
    let message = message
        .replace(&format!("{bytes} bytes"), &format!("{fewer} bytes"))
        .replace(
            &format!("Sqlgit-Bytes: {bytes}"),
            &format!("Sqlgit-Bytes: {fewer}"),
        );
    let mut args = vec!["commit-tree".to_string(), tree];
    for parent in git(&["rev-list", "--parents", "-n1", "main"], b"")
        .split_whitespace()
        .skip(1)
    {
        args.extend(["-p".to_string(), parent.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let commit = git(&args, message.as_bytes());
    git(&["update-ref", "refs/heads/main", &commit], b"");
}

fn pragma(env: &TestEnv, db: &Path, name: &str) -> String {
    env.sqlite3(db, format!("PRAGMA {name};"))
        .success()
        .stdout_str()
        .trim()
        .to_string()
}

#[test]
fn a_push_completes_a_run_an_older_sqlgit_failed_only_in_its_pushes() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", b"CREATE TABLE t(a); INSERT INTO t VALUES(1);");
    let repo = env.path("app.sqlgit");
    let remote = env.path("hist.git");
    let gone = env.path("gone.git");
    env.git_in(env.root(), &["init", "-q", "--bare", &s(&remote)]);
    let success_file = env.path("success.txt");
    let hook = logging_hook(&success_file);
    let snapshot = |code: i32| {
        let args = ["snapshot", &s(&db), "--repo", &s(&repo)];
        let args = [
            &args[..],
            &["--history-remote", &s(&remote), "--on-success", &hook],
        ];
        env.sqlgit_at(1_750_000_000 + code as u64 * 60, &args.concat())
            .code_is(code);
    };
    snapshot(0);
    std::fs::rename(&remote, &gone).unwrap();
    env.sqlite3(&db, "INSERT INTO t VALUES(2);").success();
    snapshot(1);
    std::fs::rename(&gone, &remote).unwrap();
    // The state file as the older sqlgit wrote it: no `push_only`, `read_unix`,
    // `last_full_read`.
    let state_file = repo.join("sqlgit-state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    let run = state["last_run"].as_object_mut().unwrap();
    assert_eq!(run["push_only"], true, "{run:?}");
    let failed_at = run["unix"].as_i64().unwrap();
    run.remove("push_only");
    run.remove("read_unix");
    state.as_object_mut().unwrap().remove("last_full_read");
    std::fs::write(&state_file, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    env.sqlgit(&["status", "--repo", &s(&repo)]).code_is(1);

    env.sqlgit(&["push", "--repo", &s(&repo)]).success();
    let status = env.sqlgit(&["status", "--repo", &s(&repo)]);
    assert_eq!(
        status.code(),
        Some(0),
        "status after the push that completed the older sqlgit's run: {}{}",
        status.stdout_str(),
        status.stderr_str()
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(state["last_success"], failed_at, "{state}");
    assert_eq!(hook_lines(&success_file).len(), 2, "no success hook");

    // A run the older sqlgit failed for another reason stays failed after a push.
    let mut state = state;
    let run = state["last_run"].as_object_mut().unwrap();
    run.insert("ok".into(), false.into());
    run.insert("error".into(), "database app.db: not found".into());
    run.remove("push_only");
    std::fs::write(&state_file, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    env.sqlgit(&["push", "--repo", &s(&repo)]).success();
    env.sqlgit(&["status", "--repo", &s(&repo)]).code_is(1);
}

/// An empty UTF-16be database snapshotted by the older sqlgit (no view in its header):
/// (env, repository).
fn older_snapshot_of_an_empty_utf16_database() -> (TestEnv, PathBuf) {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"PRAGMA encoding='UTF-16be'; PRAGMA user_version=7; CREATE TABLE x(a); DROP TABLE x;",
    );
    assert_eq!(pragma(&env, &db, "encoding"), "UTF-16be");
    let repo = env.path("app.sqlgit");
    format_1_snapshot(&env, &db, &repo);
    as_older_sqlgit_wrote_it(&env, &repo, |h| {
        h.replace(
            "CREATE VIEW sqlgit_encoding AS SELECT 1;\nDROP VIEW sqlgit_encoding;\n",
            "",
        )
    });
    (env, repo)
}

#[test]
fn every_restore_of_an_older_snapshot_of_an_empty_utf16_database_keeps_its_encoding() {
    let (env, repo) = older_snapshot_of_an_empty_utf16_database();
    let check = |db: &Path, how: &str| {
        assert_eq!(pragma(&env, db, "encoding"), "UTF-16be", "{how}");
        assert_eq!(pragma(&env, db, "user_version"), "7", "{how}");
    };
    let to = env.path("to.db");
    env.sqlgit(&["restore", "--repo", &s(&repo), "--to", &s(&to)])
        .success();
    check(&to, "restore --to");
    let sql = env.sqlgit(&["cat", "--repo", &s(&repo)]).success();
    let piped = env.path("piped.db");
    env.sqlite3(&piped, sql.stdout()).success().assert_quiet();
    check(&piped, "cat | sqlite3");
    let into = env.db_from_script(
        "into.db",
        b"PRAGMA encoding='UTF-16be'; CREATE TABLE y(a); INSERT INTO y VALUES(1);",
    );
    env.sqlgit(&["restore", "--repo", &s(&repo), "--into", &s(&into)])
        .success();
    check(&into, "restore --into");
    env.sqlgit(&["verify", "--repo", &s(&repo)]).success();
    env.sqlgit(&["query", "--repo", &s(&repo), "PRAGMA encoding"])
        .success();

    // That snapshot's SQL as the older sqlgit's `cat -o` saved it: a restore cannot make the
    // encoding it asks for, and says so instead of building a UTF-8 database.
    let saved = env.write(
        "old.sql",
        sql.stdout_str().replace(
            "CREATE VIEW sqlgit_encoding AS SELECT 1;\nDROP VIEW sqlgit_encoding;\n",
            "",
        ),
    );
    let from_file = env.path("from_file.db");
    let run = env
        .sqlgit(&["restore", "--from-file", &s(&saved), "--to", &s(&from_file)])
        .code_is(1);
    assert!(
        run.stderr_str()
            .contains("is UTF-8 but its SQL asks for encoding UTF-16be"),
        "{}",
        run.stderr_str()
    );
    assert!(!from_file.exists(), "an inexact database was left behind");
}

#[test]
fn a_diff_with_an_older_snapshot_does_not_report_the_page_size_it_did_not_record() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"PRAGMA page_size=8192; PRAGMA auto_vacuum=1; CREATE TABLE t(a); INSERT INTO t VALUES(1);",
    );
    let repo = env.path("app.sqlgit");
    format_1_snapshot(&env, &db, &repo);
    as_older_sqlgit_wrote_it(&env, &repo, |h| {
        h.replace("PRAGMA page_size=8192;\n", "")
            .replace("PRAGMA auto_vacuum=1;\n", "")
    });
    let diff = |args: &[&str]| env.sqlgit(&[&["diff", "--repo", &s(&repo)], args].concat());
    let live = diff(&["HEAD", "--live", &s(&db)]);
    assert_eq!(live.code(), Some(0), "{}", live.stdout_str());
    env.sqlgit(&["snapshot", "--repo", &s(&repo)]).success();
    let across = diff(&["HEAD~1", "HEAD"]);
    assert_eq!(across.code(), Some(0), "{}", across.stdout_str());
    diff(&["HEAD", "HEAD~1"]).success();
    // A patch, though, applies to a restore, and a restore of the older snapshot has SQLite's
    // defaults (4096, none): turning that into the newer one takes a VACUUM, so it is refused,
    // naming why, both ways.
    for (from, to) in [("HEAD~1", "HEAD"), ("HEAD", "HEAD~1")] {
        let refused = diff(&[from, to, "--sql"]).code_is(2);
        assert!(
            refused.stdout().is_empty() && refused.stderr_str().contains("did not record them"),
            "{from} {to}: {}",
            refused.stderr_str()
        );
    }
    // A change of another pragma is still one, without the unrecorded ones.
    env.sqlite3(&db, "PRAGMA user_version=3;").success();
    let changed = diff(&["HEAD~1", "--live", &s(&db)]).code_is(1);
    let out = changed.stdout_str();
    assert!(
        out.contains("user_version=3") && !out.contains("page_size"),
        "{out}"
    );
}

/// Replace main's commit by one whose table folder `new` is named `old` (as an older sqlgit,
/// before names git's fsck takes for `.git` were escaped, named it). Plain git plumbing.
fn folder_named_as_older_sqlgit_did(env: &TestEnv, repo: &Path, new: &str, old: &str) {
    let git = |args: &[&str], stdin: &[u8]| -> String {
        env.git_plumbing(repo, "older.index", args, stdin)
            .trim()
            .to_string()
    };
    git(&["read-tree", "main"], b"");
    let listing = git(&["ls-files", "-s", "-z"], b"");
    let mut info = Vec::new();
    for entry in listing.split('\0').filter(|e| !e.is_empty()) {
        let (meta, path) = entry.split_once('\t').unwrap();
        // Removal first (mode 0), then the entry under its older name.
        info.push(format!("0 {}\t{path}", "0".repeat(40)));
        let renamed = path.replace(&format!("/{new}/"), &format!("/{old}/"));
        info.push(format!("{meta}\t{renamed}"));
    }
    git(
        &["update-index", "-z", "--index-info"],
        (info.join("\0") + "\0").as_bytes(),
    );
    let tree = git(&["write-tree"], b"");
    let message = git(&["log", "-1", "--format=%B", "main"], b"") + "\n";
    let commit = git(&["commit-tree", &tree], message.as_bytes());
    git(&["update-ref", "refs/heads/main", &commit], b"");
}

/// A table whose folder an older sqlgit named with its raw name (`\u{200c}.git`), escaped now:
/// across the upgrade, `diff` shows the one row that changed (not the table removed and added)
/// and `history` keeps each row's first insert at the older snapshot.
#[test]
fn a_folder_renamed_by_the_upgrade_is_the_same_table_to_diff_and_history() {
    let env = TestEnv::new();
    let table = "\u{200c}.git";
    let db = env.db_from_script(
        "app.db",
        format!("CREATE TABLE \"{table}\"(x); INSERT INTO \"{table}\" VALUES (1), (2);").as_bytes(),
    );
    let repo = env.path("app.sqlgit");
    let mut cmd = env.sqlgit_cmd(&[Path::new("snapshot"), &db, Path::new("--repo"), &repo]);
    cmd.env("SQLGIT_SNAPSHOT_FORMAT", "1")
        .env("SQLGIT_NOW", "1700000000");
    env.run(cmd, b"").success();
    folder_named_as_older_sqlgit_did(&env, &repo, "%E2%80%8C.git", table);
    let _ = std::fs::remove_dir_all(repo.join("sqlgit-pages"));
    env.sqlite3(&db, format!("UPDATE \"{table}\" SET x = 10 WHERE x = 1;"))
        .success();
    let r = s(&repo);
    let mut cmd = env.sqlgit_cmd(&["snapshot", &s(&db), "--repo", &r]);
    cmd.env("SQLGIT_NOW", "1700000060");
    env.run(cmd, b"").success();
    let summary = env
        .sqlgit(&["diff", "HEAD~1", "HEAD", "--repo", &r, "--summary"])
        .stdout_str();
    assert!(
        summary.contains("0 inserted, 1 updated, 0 deleted"),
        "{summary}"
    );
    assert!(!summary.contains("table"), "{summary}");
    let history = env
        .sqlgit(&["history", table, "2", "--repo", &r])
        .stdout_str();
    let older = env.git_in(&repo, &["rev-parse", "--short=12", "HEAD~1"]);
    let inserted: Vec<&str> = history.lines().filter(|l| l.contains("inserted")).collect();
    assert_eq!(inserted.len(), 1, "{history}");
    assert!(inserted[0].starts_with(older.trim()), "{history}");
}

/// A `--sql` patch between a format-1 and a format-2 snapshot of the same data, with an
/// AUTOINCREMENT table (sqlite_sequence, written differently by each format) and a trigger, is
/// an empty transaction, exit 0; a real change still rewrites sqlite_sequence.
#[test]
fn a_patch_across_the_format_upgrade_of_the_same_data_is_empty() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE a(id INTEGER PRIMARY KEY AUTOINCREMENT, v); \
          INSERT INTO a(v) VALUES ('x'), ('y'); \
          CREATE TABLE log(m); \
          CREATE TRIGGER a_log AFTER INSERT ON a BEGIN INSERT INTO log VALUES (new.v); END;",
    );
    let repo = env.path("app.sqlgit");
    let mut cmd = env.sqlgit_cmd(&[Path::new("snapshot"), &db, Path::new("--repo"), &repo]);
    cmd.env("SQLGIT_SNAPSHOT_FORMAT", "1")
        .env("SQLGIT_NOW", "1700000000");
    env.run(cmd, b"").success();
    let r = s(&repo);
    let mut cmd = env.sqlgit_cmd(&["snapshot", &s(&db), "--repo", &r, "--full"]);
    cmd.env("SQLGIT_NOW", "1700000060");
    env.run(cmd, b"").success();
    let run = env.sqlgit(&["diff", "HEAD~1", "HEAD", "--repo", &r, "--sql"]);
    let patch = run.code_is(0).stdout_str();
    assert!(!patch.contains("sqlite_sequence"), "{patch}");
    assert!(!patch.contains("TRIGGER"), "{patch}");
    env.sqlite3(&db, "INSERT INTO a(v) VALUES ('z');").success();
    let mut cmd = env.sqlgit_cmd(&["snapshot", &s(&db), "--repo", &r]);
    cmd.env("SQLGIT_NOW", "1700000120");
    env.run(cmd, b"").success();
    let run = env.sqlgit(&["diff", "HEAD~1", "HEAD", "--repo", &r, "--sql"]);
    let patch = run.code_is(1).stdout_str();
    assert!(patch.contains("sqlite_sequence"), "{patch}");
    assert!(patch.contains("DROP TRIGGER"), "{patch}");
}

/// A snapshot taken before texts with many CR or NUL bytes were spelled with `replace()`
/// (`SQLGIT_TEXT_SPELLING=1` writes the older `char()` pieces), then one taken now: `diff` and
/// `history` show no change for the rows whose value is the same (only the one row changed),
/// both snapshots verify, and the incremental run's tree is the full dump (it read every page
/// again rather than reuse chunks in the old spelling).
#[test]
fn texts_respelled_by_the_upgrade_are_unchanged_to_diff_history_and_verify() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE d(id INTEGER PRIMARY KEY, body TEXT);\n\
          WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 40)\n\
          INSERT INTO d SELECT i, replace(printf('%.*c', 50 + i, 'x'), 'x', 'line ' || i || char(13, 10))\n\
            || replace(hex(zeroblob(i)), '00', char(0)) FROM s;\n\
          CREATE TABLE k(name TEXT PRIMARY KEY, body TEXT) WITHOUT ROWID;\n\
          INSERT INTO k SELECT replace(printf('%.*c', 12, 'x'), 'x', 'k' || char(13)) || id, body FROM d;\n",
    );
    let repo = env.path("app.sqlgit");
    let r = s(&repo);
    let mut cmd = env.sqlgit_cmd(&[Path::new("snapshot"), &db, Path::new("--repo"), &repo]);
    cmd.env("SQLGIT_TEXT_SPELLING", "1")
        .env("SQLGIT_NOW", "1700000000");
    env.run(cmd, b"").success();
    let old = env.sqlgit(&["cat", "--repo", &r]).success().stdout_str();
    assert!(old.contains("||char(13)||") && !old.contains("replace("));
    env.sqlite3(&db, "UPDATE d SET body = 'changed' WHERE id = 7;")
        .success();
    let mut cmd = env.sqlgit_cmd(&["snapshot", &s(&db), "--repo", &r]);
    cmd.env("SQLGIT_NOW", "1700000060");
    env.run(cmd, b"").success();
    let new = env.sqlgit(&["cat", "--repo", &r]).success().stdout_str();
    let dump = env.sqlgit(&["dump", &s(&db)]).success().stdout_str();
    assert!(new.contains("replace("));
    assert_eq!(new, dump, "the incremental run's tree is not the full dump");
    let summary = env
        .sqlgit(&["diff", "HEAD~1", "HEAD", "--repo", &r, "--summary"])
        .stdout_str();
    assert!(
        summary.contains("0 inserted, 1 updated, 0 deleted") && !summary.contains("table k"),
        "{summary}"
    );
    let diff = env
        .sqlgit(&["diff", "HEAD~1", "HEAD", "--repo", &r])
        .stdout_str();
    assert_eq!(diff.matches("changed").count(), 1, "{diff}");
    let key = format!("{}10", "k\r".repeat(12));
    let history = env
        .sqlgit(&["history", "k", &key, "--repo", &r])
        .stdout_str();
    assert_eq!(
        history.lines().filter(|l| l.contains("inserted")).count(),
        1,
        "{history}"
    );
    assert!(!history.contains("updated"), "{history}");
    env.sqlgit(&["verify", "--repo", &r]).success();
    env.sqlgit(&["verify", "--repo", &r, "HEAD~1"]).success();
}

/// A database snapshotted by an older sqlgit (format 1, before its header said `PRAGMA
/// ignore_check_constraints=ON`, before `.dbconfig defensive off` came before writable_schema,
/// before `2-sqlite_sequence.sql` always made sqlite_sequence): a row that breaks its CHECK
/// constraint, an AUTOINCREMENT table and a full-text index. Returns (env, database, repo).
fn older_snapshot_before_ignore_check_constraints() -> (TestEnv, PathBuf, PathBuf) {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT, x CHECK (x > 0));\n\
          PRAGMA ignore_check_constraints=ON; INSERT INTO t(x) VALUES (-5), (3);\n\
          CREATE VIRTUAL TABLE f USING fts5(body); INSERT INTO f VALUES ('hello');",
    );
    let repo = env.path("app.sqlgit");
    format_1_snapshot(&env, &db, &repo);
    as_older_sqlgit_wrote_files(&env, &repo, |path, text| {
        Some(match path {
            "app.db/0-header.sql" => text.replace("PRAGMA ignore_check_constraints=ON;\n", ""),
            "app.db/1-tables/f/0-create.sql" => text.replace(".dbconfig defensive off\n", ""),
            "app.db/2-sqlite_sequence.sql" => text
                .replace(
                    "CREATE TABLE sqlgit_make_sequence(i INTEGER PRIMARY KEY AUTOINCREMENT);\n",
                    "",
                )
                .replace("DROP TABLE sqlgit_make_sequence;\n", ""),
            _ => text.to_string(),
        })
    });
    let header = env.git_in(&repo, &["cat-file", "blob", "main:app.db/0-header.sql"]);
    assert!(!header.contains("ignore_check"), "{header}");
    (env, db, repo)
}

/// Every restore of that older snapshot brings the row back (the header it lacked is put in:
/// `cat` prints it too), `verify` passes (the restore dumps back to the snapshot once the lines
/// it lacked are), and SQL an older `cat -o` saved restores with `--from-file`.
#[test]
fn an_older_snapshot_of_a_row_breaking_its_check_restores_and_verifies() {
    let (env, _db, repo) = older_snapshot_before_ignore_check_constraints();
    let r = s(&repo);
    let rows = |db: &Path| {
        env.sqlite3(db, "SELECT group_concat(x) FROM t; SELECT count(*) FROM f;")
            .success()
            .stdout_str()
    };
    let to = env.path("to.db");
    env.sqlgit(&["restore", "--repo", &r, "--to", &s(&to)])
        .success();
    assert_eq!(rows(&to), "-5,3\n1\n", "restore --to");
    let sql = env.sqlgit(&["cat", "--repo", &r]).success();
    assert!(
        sql.stdout_str()
            .contains("PRAGMA ignore_check_constraints=ON;\n")
    );
    let piped = env.path("piped.db");
    env.sqlite3(&piped, sql.stdout()).success();
    assert_eq!(rows(&piped), "-5,3\n1\n", "cat | sqlite3");
    env.sqlgit(&["verify", "--repo", &r]).success();
    let saved = env.write(
        "old.sql",
        sql.stdout_str()
            .replace("PRAGMA ignore_check_constraints=ON;\n", ""),
    );
    let from_file = env.path("from_file.db");
    env.sqlgit(&["restore", "--from-file", &s(&saved), "--to", &s(&from_file)])
        .success();
    assert_eq!(rows(&from_file), "-5,3\n1\n", "restore --from-file");
}

/// The same database snapshotted by that older sqlgit and then by this one: no pragma, schema
/// or row changed, for `diff` (summary, JSON, `--sql`) and `diff --live`.
#[test]
fn a_diff_across_the_upgrade_of_an_unchanged_database_is_no_change() {
    let (env, db, repo) = older_snapshot_before_ignore_check_constraints();
    let diff = |args: &[&str]| env.sqlgit(&[&["diff", "--repo", &s(&repo)], args].concat());
    let live = diff(&["HEAD", "--live", &s(&db)]);
    assert_eq!(live.code(), Some(0), "{}", live.stdout_str());
    env.sqlgit(&["snapshot", "--repo", &s(&repo)]).success();
    for args in [&["--summary"][..], &[], &["--sql"]] {
        let across = diff(&[&["HEAD~1", "HEAD"], args].concat());
        assert_eq!(across.code(), Some(0), "{args:?}: {}", across.stdout_str());
    }
    let json = diff(&["HEAD~1", "HEAD", "--json"]).success().stdout_str();
    assert!(json.contains("\"pragmas_changed\": false"), "{json}");
}

/// A full-text index and a table whose columns are named rowid, oid and _rowid_, as the older
/// sqlgit wrote them (no `.dbconfig` line; the CREATE text as is, no temporary `sqlgit_rowid`
/// column, no fix-up, rows without their rowids), then snapshotted by this one unchanged: their
/// schema did not change.
#[test]
fn restore_steps_changed_by_the_upgrade_are_no_schema_change() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE VIRTUAL TABLE f USING fts5(body); INSERT INTO f VALUES ('hello');\n\
          CREATE TABLE r(rowid, oid, _rowid_, x); INSERT INTO r VALUES (1, 2, 3, 4);",
    );
    let repo = env.path("app.sqlgit");
    format_1_snapshot(&env, &db, &repo);
    as_older_sqlgit_wrote_files(&env, &repo, |path, text| match path {
        "app.db/1-tables/f/0-create.sql" => Some(text.replace(".dbconfig defensive off\n", "")),
        "app.db/1-tables/r/0-create.sql" => Some(text.replace("sqlgit_rowid", "rowid")),
        "app.db/1-tables/r/1-schema-fixup.sql" => None,
        _ if path.starts_with("app.db/1-tables/r/1-rows/") => Some(text.replace(
            "INSERT INTO \"r\"(rowid,\"sqlgit_rowid\",\"oid\",\"_rowid_\",\"x\") VALUES(1,",
            "INSERT INTO \"r\" VALUES(",
        )),
        _ => Some(text.to_string()),
    });
    let old = env
        .sqlgit(&["cat", "--repo", &s(&repo)])
        .success()
        .stdout_str();
    assert!(old.contains("INSERT INTO \"r\" VALUES(1,2,3,4);"), "{old}");
    env.sqlgit(&["snapshot", "--repo", &s(&repo)]).success();
    let summary = env
        .sqlgit(&["diff", "HEAD~1", "HEAD", "--repo", &s(&repo), "--summary"])
        .code_is(0)
        .stdout_str();
    assert!(!summary.contains("schema changed"), "{summary}");
}
