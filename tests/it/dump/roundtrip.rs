//! Restores beyond the fixtures: with foreign keys enforced, through a real pipe into `sqlite3`,
//! the real-world corpus when present, and `sqlite_stat4` kept.

use super::*;

/// A dump restores the same with `PRAGMA foreign_keys=ON` in effect (child tables sort before their
/// parents, and the schema fixture has a dangling reference).
#[test]
fn restore_with_foreign_keys_on() {
    let env = TestEnv::new();
    let db = env.fixture_db("schema");
    let dump = dump_stdout(&env, &db);
    let restored = env.path("fk.db");
    env.sqlite3_args(&["-cmd", "PRAGMA foreign_keys=ON"], &restored, &dump)
        .success()
        .assert_quiet();
    compare_databases(&db, &restored);
}

/// `sqlgit dump DB | sqlite3 new.db` as in the spec, through a real pipe.
#[test]
fn dump_piped_into_sqlite3() {
    let env = TestEnv::new();
    let db = env.fixture_db("demo");
    let mut dump = env.sqlgit_cmd(&[Path::new("dump"), &db]);
    let mut child = dump.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let restored = env.path("piped.db");
    let mut sqlite = env.command(crate::env::sqlite3_bin());
    sqlite.arg(&restored).stdin(child.stdout.take().unwrap());
    let out = sqlite.output().unwrap();
    assert!(child.wait().unwrap().success(), "sqlgit dump failed");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    compare_databases(&db, &restored);
}

/// The real-world databases of `../shared/corpus/` (Chinook), when present; not copied into the repo.
#[test]
fn corpus_roundtrip() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let Ok(entries) = std::fs::read_dir(&corpus) else {
        eprintln!("skipped: no corpus at {}", corpus.display());
        return;
    };
    let env = TestEnv::new();
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "sqlite" | "db" | "sqlite3"))
        {
            let local = env.path(path.file_name().unwrap());
            std::fs::copy(&path, &local).unwrap();
            assert_roundtrip(&env, &local);
            n += 1;
        }
    }
    eprintln!("round-tripped {n} corpus databases");
}

/// `ANALYZE` by a SQLite built with STAT4 (like rusqlite's bundled one, or many apps') also fills
/// `sqlite_stat4`; a restore that drops it changes query plans. The sqlite3 3.40 CLI has no
/// STAT4: the table is created the way `writable_schema` makes one, and keeps its rows.
#[test]
fn stat4_is_kept() {
    let env = TestEnv::new();
    let db = env.path("stat4.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE t(a, b); CREATE INDEX t_a ON t(a);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500)
             INSERT INTO t SELECT x % 13, x FROM c;
             ANALYZE;",
        )
        .unwrap();
    assert_roundtrip(&env, &db);
}
