//! Values of many MiB through `cat`, `restore` and `verify`, and a snapshot whose whole reads
//! take two connections writing the tree one connection writes.

use super::*;

/// Rows holding values of many MiB (a file kept in the database): each is one chunk, bigger
/// than the size from which the packs are read as a stream; every reader gives them back whole.
#[test]
fn values_of_many_mib_restore_through_cat_restore_and_verify() {
    let env = TestEnv::new();
    let db = env.path("files.db");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE f(id INTEGER PRIMARY KEY, name TEXT, data BLOB);
         INSERT INTO f VALUES (1, 'small', x'00ff');
         INSERT INTO f VALUES (2, 'big', randomblob(12 * 1024 * 1024));
         INSERT INTO f VALUES (3, printf('%.*c', 10 * 1024 * 1024, 'x'), NULL);",
    )
    .unwrap();
    drop(conn);
    let repo = env.path("files.sqlgit");
    snapshot_commit(&env, &db, &repo, Some(T));
    let expected = dump(&env, &db);
    assert!(expected.len() > 30 << 20);
    assert!(
        cat(&env, &repo, None, None) == expected,
        "cat differs from dump"
    );
    let restored = env.path("restored.db");
    env.sqlgit(&[
        OsStr::new("restore"),
        OsStr::new("--repo"),
        repo.as_os_str(),
        OsStr::new("--to"),
        restored.as_os_str(),
    ])
    .success();
    assert!(dump(&env, &restored) == expected, "restore differs");
    env.sqlgit(&[OsStr::new("verify"), OsStr::new("--repo"), repo.as_os_str()])
        .success();
}

/// A snapshot's whole reads take a second connection on machines of four cores or more
/// (`SQLGIT_TWO_READERS=1` here): the tree is the one a single connection writes, for the first
/// snapshot and for a `--full` run after a change.
#[test]
fn two_readers_write_the_tree_one_writes() {
    let env = TestEnv::new();
    let db = env.path("big.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "PRAGMA page_size=1024; PRAGMA journal_mode=WAL;
             CREATE TABLE t(id INTEGER PRIMARY KEY, r REAL, s TEXT, b BLOB);
             WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000)
             INSERT INTO t SELECT x * 7919 - 100000000, x / 7.0, 'row ' || x, randomblob(x % 70)
               FROM c;
             CREATE TABLE plain(a, b);
             INSERT INTO plain SELECT s, r FROM t;",
        )
        .unwrap();
    let tree = |repo: &Path, two: bool, args: &[&str]| {
        let mut all: Vec<&OsStr> = vec!["snapshot".as_ref(), db.as_os_str()];
        all.extend(["--repo".as_ref(), repo.as_os_str()]);
        all.extend(args.iter().map(OsStr::new));
        let mut cmd = env.sqlgit_cmd(&all);
        cmd.env(
            if two {
                "SQLGIT_TWO_READERS"
            } else {
                "SQLGIT_ONE_CORE"
            },
            "1",
        );
        env.run(cmd, b"").success();
        git_str(&env, repo, &["rev-parse", "main^{tree}"])
    };
    let (one, two) = (env.path("one.sqlgit"), env.path("two.sqlgit"));
    assert_eq!(
        tree(&one, false, &[]),
        tree(&two, true, &[]),
        "first snapshot"
    );
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "UPDATE t SET s = s || '!' WHERE id % 11 = 0; DELETE FROM plain WHERE rowid % 5 = 0;",
        )
        .unwrap();
    assert_eq!(
        tree(&one, false, &["--full"]),
        tree(&two, true, &["--full"]),
        "--full after a change"
    );
}
