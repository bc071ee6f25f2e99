//! `sqlgit diff WHEN --live DB`: a snapshot against the database as it is now. On a rowid table
//! and a WITHOUT ROWID table (several chunks each), it lists exactly the rows inserted, updated
//! and deleted since the snapshot (rows, `--json` counts, `--summary`; the `--sql` patch turns a
//! restore of the snapshot into the live database), leaves out what the repository's filters
//! leave out, exits 0 with nothing printed when nothing changed, agrees with a later
//! `diff HEAD~1 HEAD`, and changes nothing: not a file of the repository (objects, refs, config,
//! state), not TMPDIR.

use std::collections::BTreeSet;

use crate::badinput::tree_state;
use crate::env::{TestEnv, list_dir, one_error_line, rfc3339};

use super::json_counts;

const T0: u64 = 1_800_000_000;

/// `-`, `~` and `+` lines of the rows output, as `table: ~ key`.
fn changed_rows(text: &str) -> BTreeSet<String> {
    let mut table = String::new();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("table ") {
            table = rest.split(':').next().unwrap().to_string();
        } else if let Some(row) = line.strip_prefix("  ")
            && matches!(row.as_bytes().first(), Some(b'+' | b'-' | b'~'))
            && !row.starts_with("+CREATE")
        {
            let key = row.split("  ").next().unwrap();
            out.insert(format!("{table}: {key}"));
        }
    }
    out
}

#[test]
fn diff_live_lists_exactly_the_changes_since_a_snapshot_and_changes_nothing() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, qty INT);
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600)
          INSERT INTO items SELECT i, 'item ' || i || ' ' || hex(randomblob(20)), i % 7 FROM n;
          CREATE TABLE pairs(a TEXT, b INT, v, PRIMARY KEY(a, b)) WITHOUT ROWID;
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
          INSERT INTO pairs SELECT 'k' || i, i, hex(randomblob(24)) FROM n;
          CREATE TABLE secret_tokens(token TEXT);
          INSERT INTO secret_tokens VALUES ('s1');",
    );
    let repo = env.path("app.sqlgit");
    let (d, r) = (db.to_str().unwrap(), repo.to_str().unwrap());
    env.sqlgit(&[
        "init",
        "--repo",
        r,
        "--db",
        d,
        "--exclude-table",
        "secret_*",
    ])
    .success();
    let commit = env.snapshot_at(&db, &repo, T0);
    let diff = |args: &[&str]| {
        let mut all = vec!["diff"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--repo", r]);
        env.sqlgit(&all)
    };
    let repo_before = tree_state(&repo);

    // Nothing changed (a change in an excluded table is no change): exit 0, nothing printed
    // (--json: its object, with no tables).
    env.sqlite3(&db, "INSERT INTO secret_tokens VALUES ('s2');")
        .success();
    let at_t0 = rfc3339(T0 + 30);
    for when in ["HEAD", commit.as_str(), at_t0.as_str()] {
        for mode in [&[][..], &["--summary"], &["--json"], &["--sql"]] {
            let mut args = vec![when, "--live", d];
            args.extend_from_slice(mode);
            let run = diff(&args).code_is(0).assert_quiet();
            if mode == ["--json"] {
                let (doc, counts) = json_counts(&run);
                assert!(
                    counts.is_empty() && doc["to"] == "live",
                    "{}",
                    run.stdout_str()
                );
            } else {
                assert!(
                    run.stdout().is_empty(),
                    "no change, yet:\n{}",
                    run.stdout_str()
                );
            }
        }
    }

    env.sqlite3(
        &db,
        "INSERT INTO items VALUES (1001, 'new one', 1), (1002, 'new two', 2);
         UPDATE items SET qty = qty + 100 WHERE id IN (10, 300, 555);
         DELETE FROM items WHERE id = 40;
         INSERT INTO pairs VALUES ('a new key', 0, 'fresh');
         UPDATE pairs SET v = 'changed' WHERE a = 'k5' AND b = 5;
         DELETE FROM pairs WHERE (a, b) IN (VALUES ('k7', 7), ('k250', 250));
         UPDATE secret_tokens SET token = 'rotated';",
    )
    .success()
    .assert_quiet();

    let run = diff(&["HEAD", "--live", d]).code_is(1).assert_quiet();
    let text = run.stdout_str();
    assert!(!text.contains('\x1b'), "colour on a pipe");
    assert!(text.contains(&format!("to   live {d}")), "{text}");
    let want: BTreeSet<String> = [
        "items: + id=1001",
        "items: + id=1002",
        "items: ~ id=10",
        "items: ~ id=300",
        "items: ~ id=555",
        "items: - id=40",
        "pairs: + (a='a new key', b=0)",
        "pairs: ~ (a='k5', b=5)",
        "pairs: - (a='k7', b=7)",
        "pairs: - (a='k250', b=250)",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(changed_rows(&text), want, "rows listed:\n{text}");

    let json = diff(&["HEAD", "--live", d, "--json"]).code_is(1);
    let (doc, counts) = json_counts(&json);
    assert_eq!(doc["from"], commit.as_str());
    assert_eq!(doc["to"], "live");
    assert_eq!(doc["live"], d);
    let expected = [
        ("items".to_string(), (2, 3, 1, false)),
        ("pairs".to_string(), (1, 1, 2, false)),
    ];
    assert_eq!(counts, expected.into_iter().collect());
    let summary = diff(&["HEAD", "--live", d, "--summary"]).code_is(1);
    assert_eq!(
        summary.stdout_str(),
        "items: 2 inserted, 3 updated, 1 deleted\npairs: 1 inserted, 1 updated, 2 deleted\n"
    );

    // The patch turns a restore of the snapshot into the live database (filtered alike).
    let patch = diff(&["HEAD", "--live", d, "--sql"]).code_is(1);
    let base = env.path("base.db");
    let b = base.to_str().unwrap();
    env.sqlgit(&["restore", "HEAD", "--repo", r, "--to", b])
        .success();
    env.sqlite3(&base, patch.stdout()).success().assert_quiet();
    let dump = |path: &str| {
        env.sqlgit(&["dump", path, "--exclude-table", "secret_*"])
            .success()
            .output
            .stdout
    };
    assert!(
        dump(b) == dump(d),
        "the patched restore differs from the live database"
    );

    // Nothing changed in the repository, nothing left in TMPDIR.
    assert!(
        tree_state(&repo) == repo_before,
        "diff --live changed the repository"
    );
    assert_eq!(list_dir(&env.tmpdir()), Vec::<String>::new(), "TMPDIR");
    let log = env
        .command("git")
        .args(["-C", r, "log", "--format=%H", "main"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&log.stdout).trim(), commit);

    // Bad input: one line, exit 2, nothing changed.
    let missing = env.path("missing.db");
    one_error_line(diff(&["HEAD", "--live", missing.to_str().unwrap()]), 2);
    diff(&["HEAD", "HEAD", "--live", d]).code_is(2);
    assert!(
        tree_state(&repo) == repo_before,
        "a refused diff --live changed the repository"
    );

    // A snapshot taken now shows the same changes as the live diff did.
    env.snapshot_at(&db, &repo, T0 + 600);
    let (_, after) = json_counts(&diff(&["HEAD~1", "HEAD", "--json"]).code_is(1));
    assert_eq!(after, counts);
    diff(&["HEAD", "--live", d]).code_is(0);
}

/// In a repository of several databases, `--live B.db` compares B's folder and no other: at a
/// snapshot from before B was added it fails as `diff --db b.db` does, naming what the snapshot
/// has; a repository of one database still compares a copy of another name with its folder.
#[test]
fn diff_live_never_compares_another_database_of_the_repository() {
    let env = TestEnv::new();
    let a = env.db_from_script(
        "a.db",
        b"CREATE TABLE orders(x); INSERT INTO orders VALUES (1);",
    );
    let b = env.db_from_script(
        "b.db",
        b"CREATE TABLE users(y); INSERT INTO users VALUES (2);",
    );
    let repo = env.path("r.sqlgit");
    let (a, b, r) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        repo.to_str().unwrap(),
    );
    env.sqlgit(&["init", "--repo", r, "--db", a]).success();
    env.sqlgit_at(T0, &["snapshot", "--repo", r]).success();
    // One database: a copy under another name is compared with it.
    let copy = env.path("copy.db");
    std::fs::copy(a, &copy).unwrap();
    let c = copy.to_str().unwrap();
    env.sqlgit(&["diff", "HEAD", "--live", c, "--repo", r])
        .code_is(0)
        .assert_quiet();
    env.sqlgit(&["init", "--repo", r, "--db", a, "--db", b])
        .success();
    // Before the first snapshot with b.db too: no folder of its name anywhere yet.
    for args in [&["HEAD", "--live", b][..], &["HEAD", "--live", b, "--sql"]] {
        let run = env.sqlgit(&[&["diff", "--repo", r], args].concat());
        let err = one_error_line(run, 2);
        assert!(
            err.contains("no database \"b.db\"") && err.contains("(it has: a.db)"),
            "{err}"
        );
    }
    env.sqlgit_at(T0 + 60, &["snapshot", "--repo", r]).success();
    for when in ["HEAD~1", "HEAD"] {
        let run = env.sqlgit(&["diff", when, "--live", b, "--repo", r]);
        if when == "HEAD" {
            run.code_is(0).assert_quiet();
        } else {
            let err = one_error_line(run, 2);
            assert!(err.contains("(it has: a.db)"), "{err}");
        }
    }
    // --db still chooses: the copy of a.db against a.db's folder.
    env.sqlgit(&["diff", "HEAD", "--live", c, "--db", "a.db", "--repo", r])
        .code_is(0)
        .assert_quiet();
}

/// A WITHOUT ROWID table with an index that covers it (its key and its other column): a
/// one-row update is one updated row, after a whole first snapshot and after an incremental one.
#[test]
fn diff_live_of_a_covered_keyed_table_shows_the_one_update() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE m(k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID;
          WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 5000)
          INSERT INTO m SELECT printf('key%06d', i), (i * 7919) % 5003 FROM c;
          CREATE INDEX m_v ON m(v);",
    );
    let d = db.to_str().unwrap();
    for (repo, more) in [("whole.sqlgit", &["--full"][..]), ("part.sqlgit", &[])] {
        let repo = env.path(repo);
        let r = repo.to_str().unwrap();
        let mut args = vec!["snapshot", d, "--repo", r, "-q"];
        args.extend_from_slice(more);
        env.sqlgit(&args).success();
    }
    env.sqlite3(&db, "UPDATE m SET v = -3 WHERE k = 'key000777';")
        .success();
    // The incremental repository also takes an incremental snapshot of the first update.
    let part = env.path("part.sqlgit");
    env.sqlgit(&["snapshot", d, "--repo", part.to_str().unwrap(), "-q"])
        .success();
    env.sqlite3(&db, "UPDATE m SET v = -4 WHERE k = 'key004321';")
        .success();
    let whole = env.path("whole.sqlgit");
    for (repo, when) in [(&whole, "HEAD"), (&part, "HEAD~1")] {
        let run = env
            .sqlgit(&[
                "diff",
                when,
                "--live",
                d,
                "--repo",
                repo.to_str().unwrap(),
                "--summary",
            ])
            .code_is(1);
        assert_eq!(
            run.stdout_str().trim_end(),
            "m: 0 inserted, 2 updated, 0 deleted",
            "{when} in {}",
            repo.display()
        );
    }
    let run = env
        .sqlgit(&[
            "diff",
            "HEAD",
            "--live",
            d,
            "--repo",
            part.to_str().unwrap(),
            "--summary",
        ])
        .code_is(1);
    assert_eq!(
        run.stdout_str().trim_end(),
        "m: 0 inserted, 1 updated, 0 deleted"
    );
}
