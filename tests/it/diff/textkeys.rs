//! WITHOUT ROWID keys whose text is no valid Unicode compare in `diff` and `history` exactly as
//! SQLite compares them: text that is not UTF-8 under NOCASE and RTRIM, and in a UTF-16 database
//! a lone surrogate beside a letter whose case changed (SQLite converts UTF-16 to UTF-8 for
//! NOCASE its own way). And a collation only the application defines is no obstacle to `diff`
//! and `history` of a rowid table; `query`, which restores the snapshot, names it.

use rusqlite::Connection;
use serde_json::{Value, json};

use super::repo::Repo;

impl Repo {
    /// `diff HEAD~1 HEAD --json`: TABLE's (inserted, updated, deleted).
    fn step_counts(&self, table: &str) -> (Value, Value, Value) {
        let run = self.run(&["diff", "HEAD~1", "HEAD", "--json"]).code_is(1);
        let doc: Value = serde_json::from_slice(run.stdout()).unwrap();
        let tables = doc["tables"].as_array().unwrap();
        let t = tables.iter().find(|t| t["name"] == table).unwrap();
        (
            t["inserted"].clone(),
            t["updated"].clone(),
            t["deleted"].clone(),
        )
    }

    /// The kinds of `history TABLE KEY`'s events, newest first.
    fn kinds(&self, table: &str, key: &str) -> Vec<String> {
        let run = self.run(&["history", table, key, "--json"]).success();
        let doc: Value = serde_json::from_slice(run.stdout()).unwrap();
        let events = doc.as_array().unwrap().iter();
        events
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect()
    }
}

/// One key SQLite calls equal before and after (a second insert of the old one fails UNIQUE):
/// one updated row in `diff`, and `history` of the old key says updated, never deleted.
#[test]
fn keys_sqlite_calls_equal_are_one_row_whatever_their_bytes() {
    let cases = [
        ("", "NOCASE", "616263ff", "414243ff"),
        ("", "RTRIM", "616263ff20", "616263ff"),
        (
            "PRAGMA encoding='UTF-16le';",
            "NOCASE",
            "410000dc",
            "610000dc",
        ),
        (
            "PRAGMA encoding='UTF-16be';",
            "NOCASE",
            "0061d800",
            "0041d800",
        ),
        (
            "PRAGMA encoding='UTF-16le';",
            "NOCASE",
            "00dc4100",
            "00d841dc",
        ),
    ];
    for (pragma, coll, old, new) in cases {
        let mut r = Repo::new(&format!(
            "{pragma} CREATE TABLE kn(k TEXT PRIMARY KEY COLLATE {coll}, v) WITHOUT ROWID;
             INSERT INTO kn VALUES (CAST(X'{old}' AS TEXT), 1);"
        ));
        r.change(&format!("UPDATE kn SET k = CAST(X'{new}' AS TEXT);"));
        let dup = format!("INSERT INTO kn VALUES (CAST(X'{old}' AS TEXT), 2);");
        let run = r.env.sqlite3(&r.db, dup.as_bytes());
        assert!(
            run.stderr_str().contains("UNIQUE"),
            "{pragma} {coll} {old}: not one key"
        );
        let what = format!("{pragma} {coll} {old} → {new}");
        assert_eq!(
            r.step_counts("kn"),
            (json!(0), json!(1), json!(0)),
            "{what}"
        );
        let key = format!("CAST(X'{old}' AS TEXT)");
        assert_eq!(r.kinds("kn", &key), ["updated", "inserted"], "{what}");
    }
}

/// Run `sql` on the database with the application's collation `mine` defined.
fn with_mine(r: &Repo, sql: &str) {
    let conn = Connection::open(&r.db).unwrap();
    conn.create_collation("mine", |a: &str, b: &str| a.cmp(b))
        .unwrap();
    conn.execute_batch(sql).unwrap();
}

#[test]
fn diff_and_history_need_no_application_collation() {
    let mut r = Repo::new("CREATE TABLE tick(x);");
    with_mine(
        &r,
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT COLLATE mine); CREATE INDEX i ON t(v);
         INSERT INTO t VALUES (1, 'a');",
    );
    r.snap();
    with_mine(&r, "UPDATE t SET v = 'b' WHERE id = 1;");
    r.snap();
    assert_eq!(r.step_counts("t"), (json!(0), json!(1), json!(0)));
    let out = r.run(&["diff", "HEAD~1", "HEAD"]).code_is(1).stdout_str();
    assert!(out.contains("v: 'a' → 'b'"), "{out}");
    assert_eq!(r.kinds("t", "1"), ["updated", "inserted"]);
    // A query runs on a restore, which needs the collation: the error names it.
    let run = r.run(&["query", "SELECT v FROM t"]).code_is(1);
    assert!(
        run.stderr_str()
            .contains("no such collation sequence: mine")
    );
}
