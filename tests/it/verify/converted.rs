//! Values of another storage class than their column's affinity stores (a declared type changed
//! through `writable_schema`, rows of old software): no INSERT can store them, so every restore
//! gives them back converted. Snapshots, dumps and restores say so per column with the statement
//! that makes the source consistent; `verify` warns instead of failing, and still fails, naming
//! the row, on any other difference.

use rusqlite::Connection;

use super::{rewrite_file, s};
use crate::env::TestEnv;

/// TEXT '12' and '3.0' in INTEGER and REAL columns, INTEGER 12 and REAL 3.0 in TEXT and
/// INTEGER columns (the tester's database).
const RETYPED: &[u8] = b"CREATE TABLE t1(a TEXT, b TEXT); INSERT INTO t1 VALUES ('12','3.0');
CREATE TABLE t2(a INTEGER, b); INSERT INTO t2 VALUES (12, 3.0), (13, 'x');
PRAGMA writable_schema=ON;
UPDATE sqlite_schema SET sql='CREATE TABLE t1(a INTEGER, b REAL)' WHERE name='t1';
UPDATE sqlite_schema SET sql='CREATE TABLE t2(a TEXT, b INTEGER)' WHERE name='t2';";

const CLASSES: &str = "SELECT typeof(a)||' '||typeof(b) FROM t1 UNION ALL \
                       SELECT typeof(a)||' '||typeof(b) FROM t2";

fn classes(db: &std::path::Path) -> Vec<String> {
    let c = Connection::open(db).unwrap();
    let mut stmt = c.prepare(CLASSES).unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

/// The warnings name each column with its fix, once per column.
fn assert_names_columns(text: &str) {
    for (t, c) in [("t1", "a"), ("t1", "b"), ("t2", "a"), ("t2", "b")] {
        let line = format!("table \"{t}\" column \"{c}\"");
        let fix = format!("UPDATE \"{t}\" SET \"{c}\" = \"{c}\"");
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(&line)).collect();
        assert_eq!(lines.len(), 1, "{line} once: {text}");
        assert!(lines[0].contains(&fix), "{text}");
    }
    assert!(text.contains("1 value (e.g. TEXT '12')"), "{text}");
    assert!(text.contains("e.g. REAL 3.0"), "{text}");
}

#[test]
fn values_their_affinity_converts_are_warnings_everywhere() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", RETYPED);
    let source = classes(&db);
    assert_eq!(source, ["text text", "integer real", "integer text"]);
    let repo = env.path("app.sqlgit");
    let run = env
        .sqlgit(&["snapshot", &s(&db), "--repo", &s(&repo), "--json"])
        .success();
    let json: serde_json::Value = serde_json::from_slice(run.stdout()).unwrap();
    let warnings: Vec<&str> = (json["warnings"].as_array().unwrap().iter())
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_names_columns(&warnings.join("\n"));
    let dump = env.sqlgit(&["dump", &s(&db)]).success();
    assert_names_columns(&dump.stderr_str());

    // verify: warnings, not a failure.
    let run = env.sqlgit(&["-q", "verify", "--repo", &s(&repo)]).success();
    assert_names_columns(&run.stderr_str());

    // Every restore gives the documented result: the values as the affinity stores them.
    let converted = ["integer real", "text integer", "text text"];
    let to = env.path("to.db");
    let run = env
        .sqlgit(&["restore", "--repo", &s(&repo), "--to", &s(&to)])
        .success();
    assert_names_columns(&run.stderr_str());
    assert_eq!(classes(&to), converted);
    let into = env.db_from_script("into.db", b"CREATE TABLE x(y);");
    let run = env
        .sqlgit(&["restore", "--repo", &s(&repo), "--into", &s(&into)])
        .success();
    assert_names_columns(&run.stderr_str());
    assert_eq!(classes(&into), converted);
    let sql = env.sqlgit(&["cat", "--repo", &s(&repo)]).success();
    let cat = env.restore(sql.stdout(), "cat.db");
    assert_eq!(classes(&cat), converted);

    // The statements the warnings name make the source consistent (sqlite3 CLI): then nothing
    // is said and verify passes quietly.
    let fix =
        b"UPDATE t1 SET a = a; UPDATE t1 SET b = b; UPDATE t2 SET a = a; UPDATE t2 SET b = b;";
    env.sqlite3(&db, fix).success().assert_quiet();
    assert_eq!(classes(&db), converted);
    let run = env
        .sqlgit(&["snapshot", &s(&db), "--repo", &s(&repo), "--full"])
        .success();
    assert!(
        !run.stderr_str().contains("affinity"),
        "{}",
        run.stderr_str()
    );
    let run = env.sqlgit(&["-q", "verify", "--repo", &s(&repo)]).success();
    assert!(run.stderr().is_empty(), "{}", run.stderr_str());
}

/// The control: a row that restores differently for another reason fails verify, naming the
/// table and the row, even beside a value its affinity converts; the conversion alone warns.
#[test]
fn any_other_difference_still_fails_verify_naming_the_row() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(a INTEGER, b BLOB); INSERT INTO t VALUES (12, 2), (5, 6);",
    );
    let repo = env.path("app.sqlgit");
    super::snapshot(&env, &db, &repo);
    let files = env.git_in(&repo, &["ls-tree", "-r", "--name-only", "main"]);
    let chunk = (files.lines())
        .find(|f| f.contains("/1-rows/"))
        .unwrap()
        .to_string();
    let text = String::from_utf8(
        env.git_in(&repo, &["show", &format!("main:{chunk}")])
            .into(),
    )
    .unwrap()
        + "\n";
    assert!(text.contains("(1,12,2)"), "{text}");

    // `1+1` restores as 2: not a value an affinity converted.
    rewrite_file(
        &env,
        &repo,
        &chunk,
        text.replace("(1,12,2)", "(1,'12',1+1)").as_bytes(),
    );
    let run = env
        .sqlgit(&["-q", "verify", "--repo", &s(&repo)])
        .code_is(1);
    let err = run.stderr_str();
    assert!(err.contains("does not dump back to the snapshot"), "{err}");
    assert!(
        err.contains(
            "table t: row 1 of the snapshot is (1,'12',1+1), the restored database's is (1,12,2)"
        ),
        "{err}"
    );

    // The conversion alone: a warning naming the column.
    rewrite_file(
        &env,
        &repo,
        &chunk,
        text.replace("(1,12,2)", "(1,'12',2)").as_bytes(),
    );
    let run = env.sqlgit(&["-q", "verify", "--repo", &s(&repo)]).success();
    let err = run.stderr_str();
    assert!(
        err.contains("table \"t\" column \"a\": 1 value (e.g. TEXT '12')")
            && err.contains("UPDATE \"t\" SET \"a\" = \"a\""),
        "{err}"
    );
}

/// REAL -0.0 in a column retyped to REAL (stored as 0.0 by every restore, its storage class
/// unchanged), REAL 1.0/3 in a column retyped to TEXT and a long decimal TEXT in one retyped to
/// REAL (converted differently by 3.40 and newer SQLite): snapshot, `restore --to` and `verify`
/// warn naming each column; verify does not fail on what its `sqlite3` restore made of them.
#[test]
fn the_sign_of_zero_and_version_dependent_conversions_are_warnings() {
    let env = TestEnv::new();
    let db = env.db_from_script(
        "app.db",
        b"CREATE TABLE t(id INTEGER PRIMARY KEY, d, x, y);
INSERT INTO t VALUES (1, -0.0, 1.0/3, '4.83087327751693869e+187'), (2, 1.5, 0.1, '2.5');
PRAGMA writable_schema=ON;
UPDATE sqlite_schema SET sql='CREATE TABLE t(id INTEGER PRIMARY KEY, d REAL, x TEXT, y REAL)'
 WHERE name='t';",
    );
    let repo = env.path("app.sqlgit");
    let run = env
        .sqlgit(&["-q", "snapshot", &s(&db), "--repo", &s(&repo)])
        .success();
    let warned = |text: &str, column: &str, count: u32, example: &str| {
        let line = format!("table \"t\" column \"{column}\": {count} value");
        let fix = format!("UPDATE \"t\" SET \"{column}\" = \"{column}\"");
        assert!(
            text.lines()
                .any(|l| l.contains(&line) && l.contains(example) && l.contains(&fix)),
            "{line} {example}: {text}"
        );
    };
    let err = run.stderr_str();
    warned(&err, "d", 1, "e.g. REAL -0.0");
    warned(&err, "x", 2, "e.g. REAL");
    warned(&err, "y", 2, "e.g. TEXT '4.83087327751693869e+187'");
    let to = env.path("to.db");
    let run = env
        .sqlgit(&["-q", "restore", "--repo", &s(&repo), "--to", &s(&to)])
        .success();
    warned(&run.stderr_str(), "d", 1, "e.g. REAL -0.0");
    let run = env.sqlgit(&["-q", "verify", "--repo", &s(&repo)]).success();
    let err = run.stderr_str();
    warned(&err, "d", 1, "e.g. REAL -0.0");
    warned(&err, "x", 2, "e.g. REAL");
    warned(&err, "y", 2, "e.g. TEXT '4.83087327751693869e+187'");
}

/// Table and column names with an ESC sequence, an OSC and a line feed: snapshot, restore and
/// verify name them in the warning escaped (`\x1b`, `\x0a`), one line each, as errors and `diff`
/// do, so nothing from the database reaches the terminal as a control sequence.
#[test]
fn names_in_the_warning_are_escaped() {
    let env = TestEnv::new();
    let db = env.path("app.db");
    let c = Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE \"t\x1b[2J\" (\"a\x1b]0;owned\x07\nb\" TEXT);
         INSERT INTO \"t\x1b[2J\" VALUES ('12');
         PRAGMA writable_schema=ON;
         UPDATE sqlite_schema SET sql = replace(sql, ' TEXT)', ' INTEGER)') WHERE type='table';",
    )
    .unwrap();
    drop(c);
    let repo = env.path("app.sqlgit");
    let to = env.path("to.db");
    let runs = [
        env.sqlgit(&["-q", "snapshot", &s(&db), "--repo", &s(&repo)]),
        env.sqlgit(&["-q", "restore", "--repo", &s(&repo), "--to", &s(&to)]),
        env.sqlgit(&["-q", "verify", "--repo", &s(&repo)]),
    ];
    for run in runs {
        let err = run.success().stderr_str();
        assert!(!err.contains('\x1b') && !err.contains('\x07'), "{err:?}");
        let want = "table \"t\\x1b[2J\" column \"a\\x1b]0;owned\\x07\\x0ab\"";
        assert!(err.lines().any(|l| l.contains(want)), "{err}");
    }
}
