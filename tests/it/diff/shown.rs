//! What `diff` and `history` say about a change, and that it is the change that happened:
//! columns paired by name across DROP/RENAME COLUMN (one-sided columns reported as added or
//! removed, never as values), an INTEGER PRIMARY KEY compared as the rowid it is, a table whose
//! rowid no name reaches compared as a multiset (a VACUUM is no change), page_size/auto_vacuum
//! in patches and summaries, values as unambiguous SQL literals (a key shown that way is taken
//! back by `history`), long values cut where they differ, quoted names and plurals, and the
//! history of sqlite_sequence.

use serde_json::{Value, json};

use super::repo::Repo;
use crate::env::Run;

impl Repo {
    /// `diff HEAD~1 HEAD EXTRA… --repo REPO`, which must exit `code`.
    pub(super) fn diff(&self, extra: &[&str], code: i32) -> Run {
        let mut args = vec!["diff", "HEAD~1", "HEAD"];
        args.extend(extra);
        self.run(&args).code_is(code)
    }

    /// The `--sql` patch of the last change applied to a restore of HEAD~1 gives HEAD exactly.
    pub(super) fn patch_gives_head(&self) {
        let patch = self.diff(&["--sql"], 1).assert_quiet();
        let target = self.env.path(format!("patched-{}.db", self.snapshots));
        let t = target.to_str().unwrap();
        self.run(&["restore", "HEAD~1", "--to", t]).success();
        let applied = self.env.sqlite3_args(&["-bail"], &target, patch.stdout());
        if applied.code() != Some(0) || !applied.stderr().is_empty() {
            applied.fail("the patch does not apply");
        }
        let got = self.env.sqlgit(&["dump", t]).success();
        let want = self.run(&["cat", "HEAD"]).success();
        assert!(
            got.stdout() == want.stdout(),
            "the patched database differs from HEAD\n--- patch:\n{}\n--- got:\n{}\n--- want:\n{}",
            patch.stdout_str(),
            got.stdout_str(),
            want.stdout_str()
        );
    }
}

fn json_of(run: &Run) -> Value {
    serde_json::from_slice(run.stdout()).unwrap_or_else(|e| run.fail(&format!("not JSON: {e}")))
}

/// Row lines (`  + …`, `  - …`, `  ~ …`) of a diff.
fn row_lines(run: &Run) -> Vec<String> {
    run.stdout_str()
        .lines()
        .filter(|l| l.starts_with("  + ") || l.starts_with("  - ") || l.starts_with("  ~ "))
        .map(str::to_string)
        .collect()
}

#[test]
fn columns_pair_by_name_after_drop_and_rename_column() {
    let mut r = Repo::new(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, a, b, d);
         INSERT INTO t VALUES (1, 'A1', 'B1', 'D1'), (2, 'A2', 'B2', 'D2');",
    );
    // c holds what b held; only d of row 2 changes value.
    r.change(
        "ALTER TABLE t DROP COLUMN a; ALTER TABLE t RENAME COLUMN b TO c;
         UPDATE t SET d = 'D2x' WHERE id = 2;",
    );
    let rows = r.diff(&[], 1);
    assert!(
        rows.stdout_str().contains(
            "table t: 0 inserted, 1 updated, 0 deleted; schema changed; column added: c; \
             columns removed: a, b\n"
        ),
        "{}",
        rows.stdout_str()
    );
    assert_eq!(row_lines(&rows), ["  ~ id=2  d: 'D2' → 'D2x'"]);
    let summary = r.diff(&["--summary"], 1);
    assert_eq!(
        summary.stdout_str(),
        "t: 0 inserted, 1 updated, 0 deleted; schema changed; column added: c; columns removed: \
         a, b\n"
    );
    let doc = json_of(&r.diff(&["--json"], 1));
    let t = &doc["tables"][0];
    assert_eq!((&t["updated"], &t["inserted"]), (&json!(1), &json!(0)));
    assert_eq!(t["columns_added"], json!(["c"]));
    assert_eq!(t["columns_removed"], json!(["a", "b"]));
    r.patch_gives_head();
    // history: row 1 only inserted; row 2's d changed.
    let h1 = json_of(&r.run(&["history", "t", "1", "--json"]).success());
    assert_eq!(h1.as_array().unwrap().len(), 1, "{h1:#}");
    let h2 = json_of(&r.run(&["history", "t", "2", "--json"]).success());
    assert_eq!(h2[0]["old"], json!({"d": "D2"}), "{h2:#}");
    assert_eq!(h2[0]["new"], json!({"d": "D2x"}), "{h2:#}");
}

#[test]
fn an_integer_primary_key_is_compared_as_the_rowid() {
    let mut r = Repo::new("CREATE TABLE u(k, v); INSERT INTO u VALUES (1, 'one'), (2, 'two');");
    // k becomes the INTEGER PRIMARY KEY, then a plain column again: the same data throughout.
    let rebuild = |create: &str, fill: &str| {
        format!(
            "CREATE TABLE u2{create}; INSERT INTO u2{fill} SELECT {} FROM u; DROP TABLE u; \
             ALTER TABLE u2 RENAME TO u;",
            if fill.is_empty() { "k, v" } else { "k, k, v" }
        )
    };
    r.change(&rebuild("(k INTEGER PRIMARY KEY, v)", ""));
    r.change(&rebuild("(k, v)", "(rowid, k, v)"));
    for (from, to) in [("HEAD~2", "HEAD~1"), ("HEAD~1", "HEAD")] {
        let rows = r.run(&["diff", from, to]).code_is(1);
        let out = rows.stdout_str();
        assert!(out.contains("table u: 0 inserted, 0 updated, 0 deleted; schema changed\n"));
        assert!(row_lines(&rows).is_empty(), "{out}");
        let doc = json_of(&r.run(&["diff", from, to, "--json"]).code_is(1));
        assert_eq!(doc["tables"][0]["updated"], json!(0), "{doc:#}");
    }
    let h = r.run(&["history", "u", "1"]).success();
    assert!(
        h.stdout_str().starts_with("u 1: 1 change in 3 snapshots\n"),
        "{}",
        h.stdout_str()
    );
    r.patch_gives_head();
}

#[test]
fn rows_no_name_reaches_are_a_multiset_a_vacuum_changes_nothing() {
    let mut r = Repo::new(
        "CREATE TABLE rr(rowid, oid, _rowid_, v);
         INSERT INTO rr VALUES (1, 1, 1, 'a'), (2, 2, 2, 'b'), (3, 3, 3, 'c'), (4, 4, 4, 'd');
         DELETE FROM rr WHERE v = 'b';",
    );
    // VACUUM renumbers the hidden rowids; no SQL can see it.
    r.change("VACUUM;");
    r.diff(&[], 0).assert_quiet();
    assert_eq!(json_of(&r.diff(&["--json"], 0))["tables"], json!([]));
    // The patch still gives HEAD exactly (its hidden rowids included).
    r.patch_gives_head();
    r.change("INSERT INTO rr VALUES (1, 1, 1, 'a'); UPDATE rr SET v = 'e' WHERE v = 'd';");
    let mut lines = row_lines(&r.diff(&[], 1));
    lines.sort();
    assert_eq!(
        lines,
        [
            "  + rowid=1, oid=1, _rowid_=1, v='a'",
            "  + rowid=4, oid=4, _rowid_=4, v='e'",
            "  - rowid=4, oid=4, _rowid_=4, v='d'",
        ]
    );
}

#[test]
fn page_size_and_auto_vacuum_in_patches_and_summaries() {
    let mut r = Repo::new("PRAGMA auto_vacuum=1; CREATE TABLE t(x); INSERT INTO t VALUES (1);");
    // FULL to INCREMENTAL needs no VACUUM: the patch carries it.
    r.change("PRAGMA auto_vacuum=2;");
    assert_eq!(
        r.diff(&["--summary"], 1).stdout_str(),
        "pragmas changed (auto_vacuum)\n"
    );
    r.patch_gives_head();
    r.change("PRAGMA user_version=3;");
    assert_eq!(
        r.diff(&["--summary"], 1).stdout_str(),
        "pragmas changed (user_version)\n"
    );
    assert_eq!(
        json_of(&r.diff(&["--json"], 1))["pragmas"],
        json!(["user_version"])
    );
    r.patch_gives_head();
    // A new page size or auto_vacuum off take a VACUUM: refused, as an encoding change is.
    for sql in [
        "PRAGMA page_size=8192; VACUUM;",
        "PRAGMA auto_vacuum=0; VACUUM;",
    ] {
        r.change(sql);
        let refused = r.diff(&["--sql"], 2);
        assert!(
            refused.stdout().is_empty()
                && refused
                    .stderr_str()
                    .contains("page size or auto_vacuum changed"),
            "{sql}: {}",
            refused.stderr_str()
        );
    }
    assert_eq!(
        r.diff(&["--summary"], 1).stdout_str(),
        "pragmas changed (auto_vacuum)\n"
    );
}

#[test]
fn values_are_sql_literals_and_keys_go_back_to_history() {
    let mut r = Repo::new(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         CREATE TABLE w(k TEXT PRIMARY KEY, v) WITHOUT ROWID;",
    );
    let long_key = format!("{}'||char(9)||'z", "k".repeat(80));
    r.change(&format!(
        "INSERT INTO t VALUES (1, 'p'||char(10)||'q'), (2, 'p\\nq'), (3, 'a'||char(9)||'b');
         INSERT INTO w VALUES (char(10), 1), ('{long_key}', 2);"
    ));
    let rows = r.diff(&[], 1);
    let lines = row_lines(&rows);
    let shown_key = format!("'{long_key}'");
    for want in [
        "  + id=1  v='p'||char(10)||'q'".to_string(),
        "  + id=2  v='p\\nq'".to_string(),
        "  + id=3  v='a'||char(9)||'b'".to_string(),
        "  + k=char(10)  v=1".to_string(),
        format!("  + k={shown_key}  v=2"),
    ] {
        assert!(lines.contains(&want), "{want} not in {lines:#?}");
    }
    // The keys as diff shows them find their rows.
    for key in ["char(10)", shown_key.as_str()] {
        r.run(&["history", "w", key]).success();
    }
    let h = r.run(&["history", "t", "2"]).success();
    assert!(h.stdout_str().contains("v='p\\nq'"), "{}", h.stdout_str());
}

#[test]
fn long_values_are_cut_where_they_differ() {
    let mut r = Repo::new(
        "CREATE TABLE s(id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO s VALUES (1, printf('%.*c', 1000, 'a') || 'X');",
    );
    r.change("UPDATE s SET v = printf('%.*c', 1000, 'a') || 'Y';");
    let rows = r.diff(&[], 1);
    let lines = row_lines(&rows);
    let history = r.run(&["history", "s", "1"]).success().stdout_str();
    let updated = history.lines().find(|l| l.contains("~ updated")).unwrap();
    for line in [lines[0].as_str(), updated] {
        let (_, change) = line.split_once("v: ").unwrap();
        let (old, new) = change.split_once(" → ").unwrap();
        assert_ne!(old, new, "{line}");
        assert!(old.ends_with("aX'") && new.ends_with("aY'"), "{line}");
        assert!(old.chars().count() < 70, "{line}");
    }
}

#[test]
fn names_are_quoted_counts_agree_and_sqlite_sequence_has_a_history() {
    let mut r = Repo::new(
        "CREATE TABLE t(id INTEGER PRIMARY KEY AUTOINCREMENT, \"x=1, y\", \" \");
         INSERT INTO t VALUES (1, 2, 3);",
    );
    r.change("INSERT INTO t VALUES (2, 4, 5);");
    let rows = r.diff(&[], 1);
    assert!(
        row_lines(&rows).contains(&"  + id=2  \"x=1, y\"=4, \" \"=5".to_string()),
        "{}",
        rows.stdout_str()
    );
    let h = r.run(&["history", "t", "2", "--since", "HEAD~1"]).success();
    assert!(
        h.stdout_str().starts_with("t 2: 1 change in 1 snapshot\n"),
        "{}",
        h.stdout_str()
    );
    let seq = json_of(
        &r.run(&["history", "sqlite_sequence", "1", "--json"])
            .success(),
    );
    assert_eq!(seq[0]["kind"], "updated", "{seq:#}");
    assert_eq!(
        (&seq[0]["old"], &seq[0]["new"]),
        (&json!({"seq": 1}), &json!({"seq": 2}))
    );
    assert_eq!(seq[1]["new"], json!({"rowid": 1, "name": "t", "seq": 1}));
}

/// A table renamed only in letter case (`Users` to `users`: one name to SQLite, and what some
/// migration tools do) is the same table: its one changed row is reported as an update, not
/// every row deleted and inserted, and the patch still gives the new snapshot exactly.
#[test]
fn a_table_renamed_only_in_case_is_compared_as_one_table() {
    let mut r = Repo::new(
        "CREATE TABLE Users(id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO Users VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    );
    r.change(
        "ALTER TABLE Users RENAME TO users_tmp; ALTER TABLE users_tmp RENAME TO users;
         UPDATE users SET name = 'B' WHERE id = 2;",
    );
    let summary = r.diff(&["--summary"], 1).stdout_str();
    assert!(
        summary.contains("users: 0 inserted, 1 updated, 0 deleted"),
        "{summary}"
    );
    let rows = row_lines(&r.diff(&[], 1));
    assert_eq!(rows.len(), 1, "{rows:?}");
    r.patch_gives_head();
}

/// A migration that only reorders a composite key (PRIMARY KEY(a,b) rebuilt as (b,a), the same
/// rows) changes no row. `history` takes KEY in the newest snapshot's key order and pairs it
/// with the columns by name in older snapshots: it finds the one row's insert, never an
/// "update" mixing two rows.
#[test]
fn history_pairs_a_reordered_composite_key_by_column_name() {
    let mut r = Repo::new(
        "CREATE TABLE p(a INT, b INT, v, PRIMARY KEY(a, b)) WITHOUT ROWID;
         INSERT INTO p VALUES (1, 2, 'x'), (2, 1, 'y');",
    );
    r.change(
        "CREATE TABLE n(a INT, b INT, v, PRIMARY KEY(b, a)) WITHOUT ROWID;
         INSERT INTO n SELECT * FROM p; DROP TABLE p; ALTER TABLE n RENAME TO p;",
    );
    let out = r.run(&["history", "p", "2", "1"]).success().stdout_str();
    assert!(!out.contains("updated"), "{out}");
    assert!(out.contains("inserted  a=1, b=2, v='x'"), "{out}");
}

/// A patch deletes a changed row by its key with the key's own comparison, byte for byte: a
/// column's looser collation (NOCASE, RTRIM) would also delete the rows that key keeps apart.
#[test]
fn patches_delete_exactly_the_keyed_row_whatever_the_collations() {
    let mut r = Repo::new(
        "CREATE TABLE t(k TEXT COLLATE NOCASE, v, PRIMARY KEY(k COLLATE BINARY)) WITHOUT ROWID;
         INSERT INTO t VALUES ('a', 1), ('A', 2);
         CREATE TABLE c(a TEXT COLLATE NOCASE, b TEXT COLLATE RTRIM, v,
                        PRIMARY KEY(a COLLATE BINARY, b COLLATE BINARY)) WITHOUT ROWID;
         INSERT INTO c VALUES ('x', 'y', 1), ('X', 'y', 2), ('x', 'y ', 3), ('X', 'y  ', 4);
         CREATE TABLE n(k TEXT, v, u TEXT COLLATE NOCASE UNIQUE, PRIMARY KEY(k COLLATE NOCASE))
             WITHOUT ROWID;
         INSERT INTO n VALUES ('a', 1, 'p'), ('b', 2, 'Q');
         CREATE TABLE i(id INTEGER PRIMARY KEY COLLATE NOCASE, k TEXT COLLATE NOCASE, v);
         CREATE UNIQUE INDEX ik ON i(k COLLATE BINARY);
         INSERT INTO i VALUES (1, 'a', 1), (2, 'A', 2);",
    );
    r.change(
        "UPDATE t SET v = 10 WHERE k = 'a' COLLATE BINARY;
         UPDATE c SET v = 30 WHERE a = 'x' COLLATE BINARY AND b = 'y ' COLLATE BINARY;
         DELETE FROM c WHERE a = 'X' COLLATE BINARY AND b = 'y' COLLATE BINARY;
         UPDATE n SET u = 'tmp' WHERE k = 'b';
         UPDATE n SET k = 'A', u = 'q' WHERE k = 'a';
         UPDATE n SET u = 'P' WHERE k = 'b';
         UPDATE i SET k = 'A ', v = 5 WHERE id = 2;",
    );
    r.patch_gives_head();
    let patch = r.diff(&["--sql"], 1);
    assert!(
        patch.stdout_str().contains(
            "DELETE FROM \"n\" WHERE \"k\" COLLATE \"NOCASE\"='a' AND \"k\" COLLATE \"BINARY\"='a';"
        ),
        "{}",
        patch.stdout_str()
    );
}

/// Text holding C1 control characters (NEL U+0085, the 8-bit CSI U+009B) or the Unicode line
/// and paragraph separators is shown with them as `char(N)`, as other control characters are,
/// by `query`, `diff` and `history` alike: one line per value for any line-oriented reader, and
/// no terminal escape. `--csv`, `--json` and `--sql` keep them exactly.
#[test]
fn c1_controls_and_line_separators_in_values_are_escaped() {
    let mut r = Repo::new(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v);
         INSERT INTO t VALUES (1, 'a'||char(133)||'b'), (2, 'a'||char(8232)||'b'),
                              (3, 'a'||char(155)||'31mb'), (4, char(8233));
         CREATE TABLE w(k TEXT PRIMARY KEY, v) WITHOUT ROWID;",
    );
    r.change("UPDATE t SET v = v || '!'; INSERT INTO w VALUES ('k'||char(133), 1);");
    let raw = |c: char| ('\u{80}'..='\u{9f}').contains(&c) || matches!(c, '\u{2028}' | '\u{2029}');
    let query = r.run(&["query", "SELECT id, v FROM t"]).success();
    let diff = r.diff(&[], 1);
    let history = r.run(&["history", "t", "3"]).success();
    for run in [&query, &diff, &history] {
        let out = run.stdout_str();
        assert!(!out.chars().any(raw), "raw characters in:\n{out}");
    }
    let q = query.stdout_str();
    for want in [
        "'a'||char(133)||'b!'",
        "'a'||char(8232)||'b!'",
        "'a'||char(155)||'31mb!'",
        "char(8233)||'!'",
    ] {
        assert!(q.contains(want), "{want} not in\n{q}");
    }
    assert_eq!(q.lines().count(), 3 + 4 + 1, "{q}");
    assert!(
        row_lines(&diff)
            .contains(&"  ~ id=1  v: 'a'||char(133)||'b' → 'a'||char(133)||'b!'".into()),
        "{}",
        diff.stdout_str()
    );
    assert!(
        history
            .stdout_str()
            .contains("v: 'a'||char(155)||'31mb' → 'a'||char(155)||'31mb!'"),
        "{}",
        history.stdout_str()
    );
    // A key shown that way is taken back by history.
    assert!(row_lines(&diff).contains(&"  + k='k'||char(133)  v=1".into()));
    r.run(&["history", "w", "'k'||char(133)"]).success();
    // The exact encodings keep the characters themselves.
    let csv = r
        .run(&["query", "SELECT v FROM t WHERE id = 1", "--csv"])
        .success();
    assert_eq!(csv.stdout_str(), "v\r\na\u{85}b!\r\n");
    let json = json_of(
        &r.run(&["query", "SELECT v FROM t WHERE id = 2", "--json"])
            .success(),
    );
    assert_eq!(json, json!([{"v": "a\u{2028}b!"}]));
    let h = json_of(&r.run(&["history", "t", "3", "--json"]).success());
    assert_eq!(h[0]["new"], json!({"v": "a\u{9b}31mb!"}), "{h:#}");
    r.patch_gives_head();
}

/// The schema part of a diff shows each object's SQL as sqlite_schema holds it, never the
/// dump's restore steps: not the stand-in column name a table whose rowid aliases are all
/// columns is filled under, nor, for text holding a CR, the one-line stand-in and the
/// `.dbconfig` / `PRAGMA writable_schema` / `UPDATE sqlite_schema` lines that put the exact
/// text back (tables, indexes, views and triggers alike). A CR is shown as `\x0d`.
#[test]
fn schema_changes_show_the_stored_sql_not_the_restore_steps() {
    let mut r = Repo::new(
        "CREATE TABLE t(a, b); INSERT INTO t VALUES (1, 'x'), (2, 'y'), (2, 'y');
         CREATE TABLE c(id INTEGER PRIMARY KEY,\r v TEXT);",
    );
    r.change(
        "ALTER TABLE t ADD COLUMN rowid; ALTER TABLE t ADD COLUMN oid;
         ALTER TABLE t ADD COLUMN _rowid_; UPDATE t SET b = 'Y' WHERE a = 1;
         ALTER TABLE c ADD COLUMN w; CREATE INDEX ci ON c(\r v);
         CREATE VIEW cv AS SELECT\r 1; CREATE TRIGGER ct AFTER INSERT ON c BEGIN\r SELECT 1; END;",
    );
    let out = r.diff(&[], 1).stdout_str();
    for want in [
        "  -CREATE TABLE t(a, b);\n",
        "  +CREATE TABLE t(a, b, rowid, oid, _rowid_);\n",
        "  -CREATE TABLE c(id INTEGER PRIMARY KEY,\\x0d v TEXT);\n",
        "  +CREATE TABLE c(id INTEGER PRIMARY KEY,\\x0d v TEXT, w);\n",
        "  +CREATE INDEX ci ON c(\\x0d v);\n",
        "  +CREATE VIEW cv AS SELECT\\x0d 1;\n",
        "  +CREATE TRIGGER ct AFTER INSERT ON c BEGIN\\x0d SELECT 1; END;\n",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    for plumbing in [
        "sqlgit_rowid",
        "writable_schema",
        "dbconfig",
        "sqlite_schema",
    ] {
        assert!(!out.contains(plumbing), "{plumbing} in\n{out}");
    }
    r.patch_gives_head();
}
