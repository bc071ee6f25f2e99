//! Which row `sqlgit history TABLE KEY` follows: exactly the key value asked for (the integer
//! 1, the text '1' and the real 1.5 are different keys where the column has no type; a REAL the
//! dump writes as `ieee754(M,E)` found from the decimal `query` prints), its key columns
//! followed by name across migrations that reorder the key and rename a key column, across a
//! rebuild of a rowid table as WITHOUT ROWID (and a clear error the other way), `--since` before
//! the first snapshot, and exact JSON for text that is not UTF-8. Keys compare as SQLite
//! compares them (collations, 1 = 1.0) in `diff` and `history` alike, and `diff` follows a
//! renamed key column as `history` does.

use serde_json::{Value, json};

use super::repo::{Repo, T0};

impl Repo {
    /// `history TABLE KEY… --json`: (kind, old, new) per event, newest first.
    fn history(&self, table_and_key: &[&str]) -> Vec<(String, Value, Value)> {
        let mut args = vec!["history"];
        args.extend(table_and_key);
        args.push("--json");
        let run = self.run(&args).success();
        let doc: Value = serde_json::from_slice(run.stdout()).unwrap();
        doc.as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let kind = e["kind"].as_str().unwrap().to_string();
                (kind, e["old"].clone(), e["new"].clone())
            })
            .collect()
    }

    /// `diff HEAD~1 HEAD --json`: TABLE's (inserted, updated, deleted).
    fn counts(&self, table: &str) -> (Value, Value, Value) {
        let run = self.run(&["diff", "HEAD~1", "HEAD", "--json"]);
        let doc: Value = serde_json::from_slice(run.stdout()).unwrap();
        let tables = doc["tables"].as_array().unwrap();
        let t = tables.iter().find(|t| t["name"] == table).unwrap();
        (
            t["inserted"].clone(),
            t["updated"].clone(),
            t["deleted"].clone(),
        )
    }
}

fn ev(kind: &str, old: Value, new: Value) -> (String, Value, Value) {
    (kind.to_string(), old, new)
}

#[test]
fn history_never_takes_another_key_value_for_the_one_asked() {
    let mut r = Repo::new(
        "CREATE TABLE k(k PRIMARY KEY, v) WITHOUT ROWID;
         INSERT INTO k VALUES (1, 'int'), ('1', 'text'), (X'31', 'blob'),
                              (27.974984083842358, 'real');",
    );
    r.change("DELETE FROM k WHERE k = 1;");
    r.change(
        "UPDATE k SET v = 'text2' WHERE k = '1'; UPDATE k SET v = 'blob2' WHERE k = X'31';
         UPDATE k SET v = 'real2' WHERE k = 27.974984083842358;",
    );
    assert_eq!(
        r.history(&["k", "1"]),
        [
            ev("deleted", json!({"k": 1, "v": "int"}), json!(null)),
            ev("inserted", json!(null), json!({"k": 1, "v": "int"})),
        ]
    );
    let text = r.history(&["k", "'1'"]);
    assert_eq!(text.len(), 2, "{text:?}");
    assert_eq!(
        text[0],
        ev("updated", json!({"v": "text"}), json!({"v": "text2"}))
    );
    let blob = r.history(&["k", "X'31'"]);
    assert_eq!(
        blob[0],
        ev("updated", json!({"v": "blob"}), json!({"v": "blob2"}))
    );
    // The dump writes this REAL as ieee754(M,E); query, diff and history show the decimal.
    let cat = r.run(&["cat"]).success().stdout_str();
    assert!(cat.contains("ieee754(1968564498370125,-46)"), "{cat}");
    let q = r.run(&["query", "SELECT k FROM k WHERE v = 'real2'", "--csv"]);
    let shown = q.success().stdout_str().lines().nth(1).unwrap().to_string();
    assert_eq!(shown, "27.974984083842358");
    let diff = r.run(&["diff", "HEAD~1", "HEAD"]).code_is(1).stdout_str();
    assert!(
        diff.contains("~ k=27.974984083842358  v: 'real' → 'real2'"),
        "{diff}"
    );
    let real = r.history(&["k", &shown]);
    assert_eq!(real.len(), 2, "{real:?}");
    assert_eq!(
        real[0],
        ev("updated", json!({"v": "real"}), json!({"v": "real2"}))
    );
    // Exact in JSON too (serde_json's own parser here is not correctly rounded: compare text).
    let raw = r
        .run(&["history", "k", &shown, "--json"])
        .success()
        .stdout_str();
    assert!(raw.contains("\"k\": 27.974984083842358,"), "{raw}");
    // In a typed column the text a number spells is found by the number, as documented.
    let mut t = Repo::new(
        "CREATE TABLE t(k TEXT PRIMARY KEY, v) WITHOUT ROWID; INSERT INTO t VALUES (7, 'a');",
    );
    t.change("UPDATE t SET v = 'b';");
    assert_eq!(t.history(&["t", "7"]).len(), 2);
}

#[test]
fn history_follows_key_columns_by_name_across_a_reorder_and_a_rename() {
    let mut r = Repo::new(
        "CREATE TABLE p(a, b, v, PRIMARY KEY(a, b)) WITHOUT ROWID;
         INSERT INTO p VALUES ('x', 'y', 1), ('y', 'x', 2);",
    );
    r.change("UPDATE p SET v = 10 WHERE a = 'x' AND b = 'y';");
    r.change(
        "CREATE TABLE p2(a, b, v, PRIMARY KEY(b, a)) WITHOUT ROWID; INSERT INTO p2 SELECT * FROM p;
         DROP TABLE p; ALTER TABLE p2 RENAME TO p; UPDATE p SET v = 100 WHERE a = 'x' AND b = 'y';",
    );
    r.change("ALTER TABLE p RENAME COLUMN a TO aa; UPDATE p SET v = 1000 WHERE aa = 'x';");
    // The newest key order is (b, aa).
    let h = r.history(&["p", "y", "x"]);
    let values: Vec<(&str, Value)> = h
        .iter()
        .map(|(k, _, n)| (k.as_str(), n["v"].clone()))
        .collect();
    assert_eq!(
        values,
        [
            ("updated", json!(1000)),
            ("updated", json!(100)),
            ("updated", json!(10)),
            ("inserted", json!(1)),
        ]
    );
    assert_eq!(h[3].2, json!({"a": "x", "b": "y", "v": 1}));
    let other = r.history(&["p", "x", "y"]);
    assert_eq!(other.len(), 1, "{other:?}");
    assert_eq!(other[0].2, json!({"a": "y", "b": "x", "v": 2}));
}

#[test]
fn history_crosses_a_rebuild_of_a_rowid_table_as_without_rowid() {
    let mut r = Repo::new(
        "CREATE TABLE t(k TEXT PRIMARY KEY, v); INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3);",
    );
    r.change("UPDATE t SET v = 3 WHERE k = 'b';");
    r.change(
        "CREATE TABLE t2(k TEXT PRIMARY KEY, v) WITHOUT ROWID; INSERT INTO t2 SELECT * FROM t;
         DROP TABLE t; ALTER TABLE t2 RENAME TO t; UPDATE t SET v = 20 WHERE k = 'b';",
    );
    let h = r.history(&["t", "b"]);
    let kinds: Vec<(&str, Value)> = h
        .iter()
        .map(|(k, _, n)| (k.as_str(), n["v"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("updated", json!(20)),
            ("updated", json!(3)),
            ("inserted", json!(2))
        ]
    );
    // The other way (a rowid table now, WITHOUT ROWID before): the error names the older
    // snapshot, and --since the newer one works.
    let mut back = Repo::new(
        "CREATE TABLE t(k TEXT PRIMARY KEY, v) WITHOUT ROWID; INSERT INTO t VALUES ('a', 1);",
    );
    back.change(
        "CREATE TABLE t2(k TEXT PRIMARY KEY, v); INSERT INTO t2 SELECT * FROM t;
         DROP TABLE t; ALTER TABLE t2 RENAME TO t;",
    );
    back.change("UPDATE t SET v = 5;");
    let log = back.run(&["log", "--json"]).success();
    let log: Value = serde_json::from_slice(log.stdout()).unwrap();
    let id = |i: usize| log[i]["id"].as_str().unwrap()[..12].to_string();
    let err = back.run(&["history", "t", "1"]).code_is(2).stderr_str();
    assert!(
        err.contains(&format!("snapshot {}", id(2)))
            && err.contains("WITHOUT ROWID table here")
            && err.contains(&format!("--since {}", id(1))),
        "{err}"
    );
    let since = back.history(&["t", "1", "--since", &id(1)]);
    assert_eq!(since[0].2, json!({"v": 5}));
}

#[test]
fn history_json_gives_text_that_is_not_utf8_exactly() {
    let r = Repo::new(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v); INSERT INTO t VALUES (1, CAST(X'ff41fe' AS TEXT));",
    );
    let h = r.history(&["t", "1"]);
    assert_eq!(h[0].2["v"], json!({"sql": "CAST(X'ff41fe' AS TEXT)"}));
}

#[test]
fn history_since_before_the_first_snapshot_shows_every_change() {
    let mut r =
        Repo::new("CREATE TABLE t(id INTEGER PRIMARY KEY, v); INSERT INTO t VALUES (1, 'a');");
    r.change("UPDATE t SET v = 'b';");
    let now = (T0 + 3600).to_string();
    let mut cmd = r.env.sqlgit_cmd(&[
        "history",
        "t",
        "1",
        "--since",
        "7days",
        "--repo",
        r.repo.to_str().unwrap(),
    ]);
    cmd.env("SQLGIT_NOW", &now);
    let run = r.env.run(cmd, b"").success();
    assert!(
        run.stdout_str()
            .starts_with("t 1: 2 changes in 2 snapshots\n"),
        "{}",
        run.stdout_str()
    );
    let err = run.stderr_str();
    assert!(
        err.contains("--since 7days: no snapshot is that old"),
        "{err}"
    );
    // diff and --until keep refusing a point before the first snapshot.
    let mut cmd = r
        .env
        .sqlgit_cmd(&["diff", "7days", "--repo", r.repo.to_str().unwrap()]);
    cmd.env("SQLGIT_NOW", &now);
    r.env.run(cmd, b"").code_is(2);
}

/// `diff` counts a row as `history` does across the same migrations: a rowid table rebuilt as
/// WITHOUT ROWID on its declared key (an INTEGER PRIMARY KEY or a non-alias one), and a
/// WITHOUT ROWID key whose columns were reordered, in the same snapshot as one row's change:
/// one update, not an insert and a delete.
#[test]
fn diff_matches_rows_on_the_key_both_shapes_share() {
    for (create, rebuilt) in [
        (
            "CREATE TABLE r(id INT PRIMARY KEY, k, v)",
            "CREATE TABLE r2(id INT PRIMARY KEY, k, v) WITHOUT ROWID",
        ),
        (
            "CREATE TABLE r(id INTEGER PRIMARY KEY, k, v)",
            "CREATE TABLE r2(id INTEGER PRIMARY KEY, k, v) WITHOUT ROWID",
        ),
        (
            "CREATE TABLE r(id, k, v, PRIMARY KEY(id, k)) WITHOUT ROWID",
            "CREATE TABLE r2(id, k, v, PRIMARY KEY(k, id)) WITHOUT ROWID",
        ),
    ] {
        let mut r = Repo::new(&format!(
            "{create}; INSERT INTO r VALUES (1, 'a', 'x'), (2, 'b', 'y'), (3, 'c', 'z');"
        ));
        r.change(&format!(
            "{rebuilt}; INSERT INTO r2 SELECT * FROM r; DROP TABLE r; \
             ALTER TABLE r2 RENAME TO r; UPDATE r SET v = 'y2' WHERE id = 2;"
        ));
        assert_eq!(
            r.counts("r"),
            (json!(0), json!(1), json!(0)),
            "{create} → {rebuilt}"
        );
    }
}

/// A WITHOUT ROWID key changed to a value SQLite's key comparison calls equal is the same row:
/// `'alice'` made `'Alice'` under NOCASE, `'b'` made `'b  '` under RTRIM, the integer `1` made
/// the real `1.0` in an untyped key. `diff` counts one update showing the key column's change,
/// `history` finds the row by either spelling with its whole past, and the patch stays exact.
#[test]
fn diff_and_history_compare_keys_as_sqlite_does() {
    let mut r = Repo::new(
        "CREATE TABLE u(k PRIMARY KEY, v) WITHOUT ROWID; INSERT INTO u VALUES (1, 'one'), (2, 'two');
         CREATE TABLE nc(k TEXT COLLATE NOCASE PRIMARY KEY, v) WITHOUT ROWID;
         INSERT INTO nc VALUES ('alice', 1), ('bob', 2);
         CREATE TABLE rt(a INT, b TEXT COLLATE RTRIM, v, PRIMARY KEY(a, b)) WITHOUT ROWID;
         INSERT INTO rt VALUES (1, 'b', 1), (2, 'b', 2);
         CREATE TABLE bin(k TEXT PRIMARY KEY, v) WITHOUT ROWID; INSERT INTO bin VALUES ('x', 1);",
    );
    r.change(
        "UPDATE u SET k = 1.0, v = 'one!' WHERE k = 1;
         UPDATE nc SET k = 'Alice', v = 10 WHERE k = 'alice';
         UPDATE rt SET b = 'b  ' WHERE a = 1;
         UPDATE bin SET k = 'X' WHERE k = 'x';",
    );
    for table in ["u", "nc", "rt"] {
        assert_eq!(r.counts(table), (json!(0), json!(1), json!(0)), "{table}");
    }
    // BINARY keeps 'x' and 'X' apart: another row.
    assert_eq!(r.counts("bin"), (json!(1), json!(0), json!(1)));
    let out = r.diff(&[], 1).stdout_str();
    assert!(out.contains("k: 'alice' → 'Alice'"), "{out}");
    r.patch_gives_head();
    let alice = [
        ev(
            "updated",
            json!({"k": "alice", "v": 1}),
            json!({"k": "Alice", "v": 10}),
        ),
        ev("inserted", json!(null), json!({"k": "alice", "v": 1})),
    ];
    for key in ["alice", "Alice", "'ALICE'"] {
        assert_eq!(r.history(&["nc", key]), alice, "{key}");
    }
    let one = r.history(&["u", "1"]);
    assert_eq!(
        one[0],
        ev(
            "updated",
            json!({"k": 1, "v": "one"}),
            json!({"k": 1.0, "v": "one!"})
        )
    );
    assert_eq!(one.len(), 2, "{one:?}");
    assert_eq!(r.history(&["rt", "1", "b"])[0].0, "updated");
}

/// A WITHOUT ROWID table rebuilt with a key column renamed (`cur` → `currency`, moved too) in
/// the snapshot that changes one row and deletes another: `diff` follows the renamed key column
/// as `history` does, one update and one delete, and the patch stays exact.
#[test]
fn diff_follows_a_renamed_key_column_as_history_does() {
    let mut r = Repo::new(
        "CREATE TABLE p(cur TEXT, day TEXT, rate REAL, PRIMARY KEY(cur, day)) WITHOUT ROWID;
         INSERT INTO p VALUES ('EUR', 'd1', 1.0), ('USD', 'd1', 2.0), ('EUR', 'd2', 1.5),
                              ('GBP', 'd1', 3.0);",
    );
    r.change(
        "CREATE TABLE p2(day TEXT, currency TEXT, rate REAL, PRIMARY KEY(day, currency))
             WITHOUT ROWID;
         INSERT INTO p2 SELECT day, cur, rate FROM p; DROP TABLE p; ALTER TABLE p2 RENAME TO p;
         UPDATE p SET rate = 9.9 WHERE currency = 'USD'; DELETE FROM p WHERE currency = 'GBP';",
    );
    assert_eq!(r.counts("p"), (json!(0), json!(1), json!(1)));
    assert_eq!(
        r.history(&["p", "d1", "USD"])[0],
        ev("updated", json!({"rate": 2.0}), json!({"rate": 9.9}))
    );
    let out = r.diff(&[], 1).stdout_str();
    assert!(out.contains("rate: 2.0 → 9.9"), "{out}");
    r.patch_gives_head();
}
