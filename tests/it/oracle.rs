//! Tests of the test oracle itself: `compare_databases` must accept identical content and reject
//! every kind of difference the dump tests rely on it to catch.
//!
//! These run without the `sqlgit` binary. The strongest check uses the known-inexact
//! `sqlite3 .dump`: if the comparison could not tell its restores apart from the originals, every
//! round-trip test built on it would be worthless.

use crate::env::{TestEnv, compare_databases};
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

/// Assert that comparing `a` with `b` fails, and that the message contains `needle`.
#[track_caller]
fn assert_differs(a: &Path, b: &Path, needle: &str) {
    let result = catch_unwind(AssertUnwindSafe(|| compare_databases(a, b)));
    let err = result.expect_err("compare_databases accepted databases that differ");
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        msg.contains(needle),
        "expected the mismatch message to mention {needle:?}, got:\n{msg}"
    );
}

fn copy(env: &TestEnv, db: &Path, name: &str) -> std::path::PathBuf {
    let to = env.path(name);
    std::fs::copy(db, &to).unwrap();
    to
}

#[test]
fn identical_copies_compare_equal() {
    let env = TestEnv::new();
    for fixture in [
        "types",
        "rowids",
        "schema",
        "virtual",
        "identifiers",
        "utf16",
    ] {
        let db = env.fixture_db(fixture);
        let other = copy(&env, &db, &format!("{fixture}.copy.db"));
        compare_databases(&db, &other);
    }
}

#[test]
fn value_differences_are_caught() {
    let env = TestEnv::new();
    let db = env.fixture_db("floats");
    let edit = |name: &str, sql: &str| {
        let other = copy(&env, &db, name);
        Connection::open(&other)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        other
    };
    // One ulp on one float.
    let other = copy(&env, &db, "ulp.db");
    let next_after_0_1 = f64::from_bits(0.1f64.to_bits() + 1);
    Connection::open(&other)
        .unwrap()
        .execute(
            "UPDATE specials SET v = ?1 WHERE name = '0.1'",
            [next_after_0_1],
        )
        .unwrap();
    assert_differs(&db, &other, "column \"v\"");
    // -0.0 versus 0.0.
    let other = edit(
        "zero.db",
        "UPDATE specials SET v = 0.0 WHERE name = 'negative zero';",
    );
    assert_differs(&db, &other, "bits 0x8000000000000000");
    // Same number, other storage class.
    let other = edit(
        "class.db",
        "UPDATE specials SET v = 100 WHERE name = '100.0';",
    );
    assert_differs(&db, &other, "INTEGER 100");
    // A pragma.
    let other = edit("pragma.db", "PRAGMA user_version = 1;");
    assert_differs(&db, &other, "user_version");
    // Schema text.
    let other = edit("schema.db", "CREATE INDEX extra ON specials(name);");
    assert_differs(&db, &other, "extra");
    // A missing row.
    let other = edit(
        "row.db",
        "DELETE FROM decimals WHERE id = (SELECT max(id) FROM decimals);",
    );
    assert_differs(&db, &other, "decimals");
}

#[test]
fn text_is_compared_as_bytes() {
    let env = TestEnv::new();
    let db = env.fixture_db("text");
    let other = copy(&env, &db, "other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("UPDATE texts SET t = CAST(X'61' AS TEXT) WHERE label = 'nul inside';")
        .unwrap();
    assert_differs(&db, &other, "TEXT(3 bytes) \"a\\x00b\"");
}

#[test]
fn hidden_rowids_are_compared() {
    let env = TestEnv::new();
    let db = env.fixture_db("rowids");
    let other = copy(&env, &db, "other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("UPDATE plain SET rowid = -6 WHERE rowid = -5;")
        .unwrap();
    assert_differs(&db, &other, "rowid");
}

/// `sqlite3 .dump` is inexact in the ways the spec lists; the oracle must see each of them.
#[test]
fn sqlite3_dump_restores_are_caught() {
    let env = TestEnv::new();
    for (fixture, needle) in [
        ("text", "texts"),    // truncated at NUL
        ("floats", "REAL"),   // -0.0 printed as 0.0, 20-digit floats
        ("rowids", "PRAGMA"), // user_version dropped
    ] {
        let db = env.fixture_db(fixture);
        let dump = env.sqlite3(&db, ".dump\n").success();
        let restored = env.path(format!("{fixture}.sqlite3-dump.db"));
        env.sqlite3(&restored, dump.stdout()); // may complain; only the result matters
        assert_differs(&db, &restored, needle);
    }
}
