//! An index whose keys the database's own SQLite and sqlgit's bundled SQLite compute
//! differently: `restore --to` cannot build it, and its error must say why and how to restore.

use std::path::Path;

use crate::env::TestEnv;

/// 0.1+0.2 and the text '0.30000000000000004' are two keys of `x||''` for SQLite 3.40 ('0.3'
/// and the text), one key for SQLite 3.47 and later, which spell the REAL with 17 digits.
#[test]
fn an_index_the_bundled_sqlite_keys_otherwise_names_the_cause_and_the_fix() {
    let env = TestEnv::new();
    let db = env.path("app.db");
    let made = env.sqlite3(
        &db,
        "CREATE TABLE t(id INTEGER PRIMARY KEY, x);
         INSERT INTO t VALUES (1, 0.1 + 0.2), (2, '0.30000000000000004');
         CREATE UNIQUE INDEX u ON t(x || '');",
    );
    if made.code() != Some(0) {
        // This sqlite3 spells REALs as the bundled SQLite does: no such database exists here.
        eprintln!("skipped: {}", made.stderr_str());
        return;
    }
    let repo = env.path("r.sqlgit");
    let snapshot = [Path::new("snapshot"), &db, Path::new("--repo"), &repo];
    env.sqlgit(&snapshot).success();
    let to = env.path("to.db");
    let restore = [
        Path::new("restore"),
        Path::new("--repo"),
        &repo,
        Path::new("--to"),
        &to,
    ];
    let err = env.sqlgit(&restore).failure().stderr_str();
    assert!(
        err.contains("UNIQUE constraint failed: index 'u'")
            && err.contains("computes its keys differently")
            && err.contains("sqlgit cat … | sqlite3 NEW.db"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
