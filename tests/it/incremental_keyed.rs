//! Incremental snapshots of WITHOUT ROWID tables, which a partial read reads by key: whole
//! group folders reused, and a changed row in an interior page (an index b-tree keeps whole
//! rows there) reads its own chunk, not the key range below the page.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rusqlite::{Connection, params};
use sqlgit::store::Store;

use crate::env::TestEnv;
use crate::incremental::{check_run, snapshot_json};

/// WITHOUT ROWID tables of hundreds of chunks (several levels of group folders): after every
/// random step (rows growing and shrinking so that chunks appear and go away, inserts before
/// the first key and after the last, deletes of whole runs) the incremental tree equals the
/// whole read's, and untouched group folders are reused whole, not chunk by chunk.
#[test]
fn keyed_tables_reuse_whole_folders() {
    let env = TestEnv::new();
    let path = env.path("keyed.db");
    let repo = env.path("keyed.sqlgit");
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "PRAGMA page_size=1024;
         CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
         CREATE TABLE ck(a INTEGER, b TEXT COLLATE NOCASE, v, PRIMARY KEY(a, b)) WITHOUT ROWID;
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 30000)
         INSERT INTO kv SELECT printf('k%06d', i * 3), printf('value %d %s', i, hex(randomblob(8))) FROM c;
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20000)
         INSERT INTO ck SELECT i % 50, printf('%s%d', substr('xXyY', 1 + i % 4, 1), i), i FROM c;",
    )
    .unwrap();
    let store = Store::open_or_create(&repo).unwrap();
    check_run(&store.path, &path, "first");
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x6b65);
    let mut folders_reused = 0;
    let mut chunks_reused = 0;
    for step in 0..60 {
        for _ in 0..rng.random_range(1..5) {
            let k = rng.random_range(0..95_000i64);
            match rng.random_range(0..7) {
                0 => db.execute(
                    "UPDATE kv SET v = printf('%.*c', ?2, 'w') WHERE k = printf('k%06d', ?1)",
                    params![k / 3 * 3, rng.random_range(0..400i64)],
                ),
                1 => db.execute(
                    "INSERT OR REPLACE INTO kv VALUES (printf('k%06d', ?1), ?1)",
                    params![k],
                ),
                2 => db.execute(
                    "DELETE FROM kv WHERE k >= printf('k%06d', ?1) AND k < printf('k%06d', ?1 + 40)",
                    params![k],
                ),
                3 => db.execute(
                    "INSERT OR REPLACE INTO kv VALUES (?1, 'edge')",
                    params![if k % 2 == 0 { "a-first" } else { "z-last" }],
                ),
                4 => db.execute(
                    "DELETE FROM kv WHERE k IN ('a-first', 'z-last')",
                    params![],
                ),
                5 => db.execute(
                    "UPDATE ck SET v = hex(randomblob(?2)) WHERE a = ?1 % 50 AND v % 97 = ?1 % 97",
                    params![k, rng.random_range(1..60i64)],
                ),
                _ => db.execute(
                    "INSERT OR REPLACE INTO ck VALUES (?1 % 50, printf('Y%d', ?1), ?1)",
                    params![k],
                ),
            }
            .unwrap();
        }
        let outcome = check_run(&store.path, &path, &format!("step {step}"));
        assert!(
            outcome.mismatch.is_none(),
            "step {step}: {}",
            outcome.mismatch.unwrap()
        );
        folders_reused += outcome.reuse.folders_reused;
        chunks_reused += outcome.reuse.chunks_reused;
    }
    assert!(
        folders_reused * 32 > chunks_reused,
        "{folders_reused} folders and {chunks_reused} chunks reused one by one"
    );
}

/// The keys (first column, an integer) of the rows in the cells of index b-tree interior page
/// `pgno`, read from the page itself (SQLite's file format: cell pointers after a 12-byte
/// header; a cell is a child page number, the payload size, then the record).
fn interior_keys(db: &Connection, pgno: i64) -> Vec<i64> {
    let page: Vec<u8> = db
        .query_row(
            "SELECT data FROM sqlite_dbpage WHERE pgno = ?1",
            [pgno],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(page[0], 0x02, "page {pgno} is an index interior page");
    let varint = |at: &mut usize| -> u64 {
        let mut v = 0u64;
        for i in 0..9 {
            let b = page[*at];
            *at += 1;
            if i == 8 {
                return (v << 8) | u64::from(b);
            }
            v = (v << 7) | u64::from(b & 0x7f);
            if b < 0x80 {
                break;
            }
        }
        v
    };
    let cells = u16::from_be_bytes([page[3], page[4]]) as usize;
    (0..cells)
        .map(|i| {
            let mut at = u16::from_be_bytes([page[12 + 2 * i], page[13 + 2 * i]]) as usize + 4;
            varint(&mut at); // payload size
            let record = at;
            let header = varint(&mut at) as usize;
            let serial = varint(&mut at);
            let width = [0, 1, 2, 3, 4, 6, 8][serial as usize];
            let body = &page[record + header..record + header + width];
            body.iter()
                .fold(if body[0] & 0x80 != 0 { -1 } else { 0 }, |v, &b| {
                    (v << 8) | i64::from(b)
                })
        })
        .collect()
}

/// Rows kept in the root page of a WITHOUT ROWID table's b-tree change: each run reads the
/// chunks of those rows, not every chunk between the root's first and last key (nearly the
/// whole table), and the tree is the one a whole read writes.
#[test]
fn a_changed_row_in_an_interior_page_reads_its_own_chunk_only() {
    let env = TestEnv::new();
    let path = env.path("app.db");
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE w(k INTEGER PRIMARY KEY, v TEXT) WITHOUT ROWID;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO w SELECT i * 2, printf('%080d', i) FROM n;",
    )
    .unwrap();
    let root: i64 = db
        .query_row(
            "SELECT rootpage FROM sqlite_schema WHERE name = 'w'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let repo = env.path("app.sqlgit");
    let first = snapshot_json(&env, &path, &repo, &[]);
    let total = first["read"]["chunks_read"].as_u64().unwrap();
    for round in 0..3 {
        let keys = interior_keys(&db, root);
        assert!(keys.len() >= 4, "the root holds {keys:?}");
        // Three rows of the root, far apart; the text keeps its length.
        let changed: Vec<i64> = [0, keys.len() / 2, keys.len() - 1]
            .iter()
            .map(|&i| keys[i])
            .collect();
        for k in &changed {
            db.execute(
                "UPDATE w SET v = printf('%079d', ?2) || 'x' WHERE k = ?1",
                params![k, round],
            )
            .unwrap();
        }
        assert_eq!(
            interior_keys(&db, root),
            keys,
            "the rows stayed in the root"
        );
        let part = snapshot_json(&env, &path, &repo, &[]);
        let read = part["read"]["chunks_read"].as_u64().unwrap();
        assert!(
            (3..=8).contains(&read),
            "round {round}: {read} of {total} chunks read for rows {changed:?}: {part}"
        );
    }
    let full = snapshot_json(&env, &path, &repo, &["--full"]);
    assert_eq!(full["changed"], false, "{full}");
}

/// Keys are kept in memory for the whole run, so a table whose keys are long keeps none and is
/// read whole when it changes, while tables of short keys (integers, UUIDs as text) beside it
/// are still read in part; the trees are the ones a whole read writes.
#[test]
fn a_table_of_long_keys_is_read_whole() {
    let env = TestEnv::new();
    let path = env.path("app.db");
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE long(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
         CREATE TABLE short(k INTEGER PRIMARY KEY, v) WITHOUT ROWID;
         CREATE TABLE uuid(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO long SELECT printf('%0300d', i), i FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO short SELECT i, printf('%0300d', i) FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO uuid SELECT lower(format('%s-%s-%s-%s-%s', hex(randomblob(4)),
             hex(randomblob(2)), hex(randomblob(2)), hex(randomblob(2)), hex(randomblob(6)))),
             printf('%0100d', i) FROM n;",
    )
    .unwrap();
    let repo = env.path("app.sqlgit");
    snapshot_json(&env, &path, &repo, &[]);
    db.execute_batch(
        "UPDATE long SET v = -v WHERE v % 1000 = 7;
         UPDATE short SET v = 'changed' WHERE k % 1000 = 7;
         UPDATE uuid SET v = 'changed' WHERE CAST(v AS INTEGER) % 1000 = 7;",
    )
    .unwrap();
    let part = snapshot_json(&env, &path, &repo, &[]);
    assert_eq!(part["read"]["tables_read"], 1, "{part}");
    assert_eq!(part["read"]["tables_partial"], 2, "{part}");
    let full = snapshot_json(&env, &path, &repo, &["--full"]);
    assert_eq!(full["changed"], false, "{full}");
}

/// Tables with indexes that cover every column a dump reads: a WITHOUT ROWID table's index
/// holds its key, so an index on its other column covers it, and SQLite answers a plain scan
/// from the index (in the index's order) even with `NOT INDEXED`. Keys with NOCASE and DESC
/// columns, indexes with another collation, partial and expression indexes, rowid tables (one
/// whose rowid only the b-tree shows) with an index on every column.
const COVERED: &str = "
    CREATE TABLE m(k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID;
    CREATE TABLE d(a INTEGER, b TEXT, v, PRIMARY KEY(a, b DESC)) WITHOUT ROWID;
    CREATE TABLE n(k TEXT COLLATE NOCASE PRIMARY KEY, v) WITHOUT ROWID;
    CREATE TABLE r(a, b);
    CREATE TABLE h(rowid, oid, _rowid_, v);
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 5000)
    INSERT INTO m SELECT printf('key%06d', i), (i * 7919) % 5003 FROM c;
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 4000)
    INSERT INTO d SELECT i % 50, printf('b%05d', i), (i * 31) % 997 FROM c;
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 4000)
    INSERT INTO n SELECT printf('%s%05d', substr('aBcD', 1 + i % 4, 1), i), (i * 13) % 401 FROM c;
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 4000)
    INSERT INTO r SELECT (i * 7) % 101, i FROM c;
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000)
    INSERT INTO h SELECT i, i, i, (i * 17) % 211 FROM c;
    CREATE INDEX m_v ON m(v);
    CREATE INDEX m_e ON m(v + 1, k);
    CREATE INDEX d_v ON d(v);
    CREATE INDEX n_k ON n(k COLLATE BINARY, v);
    CREATE INDEX n_p ON n(v) WHERE v % 2 = 0;
    CREATE INDEX r_ba ON r(b, a);
    CREATE INDEX h_all ON h(v, rowid, oid, _rowid_);";

/// With an index that covers the table, the rows are still read in the table's own b-tree
/// order (an ORDER BY the key that SQLite meets without a sort): an incremental run after a
/// one-row update writes the tree a whole read writes, and every row comes back.
#[test]
fn a_covering_index_does_not_reorder_the_rows() {
    let env = TestEnv::new();
    let db = env.db_from_script("app.db", COVERED.as_bytes());
    let (part, whole) = (env.path("part.sqlgit"), env.path("whole.sqlgit"));
    let d = db.to_str().unwrap();
    let snapshot = |repo: &std::path::Path, more: &[&str]| {
        let mut args = vec!["snapshot", d, "--repo", repo.to_str().unwrap(), "-q"];
        args.extend_from_slice(more);
        env.sqlgit(&args).success().assert_quiet();
    };
    snapshot(&part, &[]);
    snapshot(&whole, &["--full"]);
    let updates = [
        "UPDATE m SET v = -1 WHERE k = 'key002500'; UPDATE d SET v = -1 WHERE a = 7 AND b = 'b00107';
         UPDATE n SET v = -1 WHERE k = 'c02002'; UPDATE r SET a = -1 WHERE b = 1234;
         UPDATE h SET v = -1 WHERE _rowid_ = 1500;",
        "UPDATE m SET v = -2 WHERE k = 'key000010'; INSERT INTO m VALUES ('key002500x', 3);
         DELETE FROM n WHERE k = 'A00004';",
    ];
    let tree = |repo: &std::path::Path| env.git_in(repo, &["rev-parse", "main^{tree}"]);
    for (i, update) in updates.iter().enumerate() {
        env.sqlite3(&db, update).success().assert_quiet();
        snapshot(&part, &[]);
        snapshot(&whole, &["--full"]);
        assert_eq!(tree(&part), tree(&whole), "run {i}: incremental tree");
        let cat = env
            .sqlgit(&["cat", "--repo", part.to_str().unwrap()])
            .success();
        let dump = env.sqlgit(&["dump", d]).success();
        assert!(
            cat.stdout() == dump.stdout(),
            "run {i}: cat differs from dump"
        );
        let restored = env.restore(cat.stdout(), &format!("restored{i}.db"));
        crate::env::compare_databases(&db, &restored);
    }
}

/// Every SELECT a dump reads rows with (whole, and from a key on) uses the table's own b-tree
/// in the bundled SQLite: no covering index, no sort.
#[test]
fn rows_are_read_from_the_table_b_tree_without_a_sort() {
    let env = TestEnv::new();
    let path = env.db_from_script("app.db", COVERED.as_bytes());
    let db = Connection::open(&path).unwrap();
    let schema = sqlgit::dump::schema::read_schema(&db, &Default::default()).unwrap();
    let mut selects = Vec::new();
    for t in &schema.tables {
        selects.push(t.select.clone());
        if let Some((head, tail)) = &t.select_from_key {
            selects.push(format!("{head}('x'){tail}"));
        }
        selects.extend(t.select_from.clone());
        selects.extend(t.select_between.clone());
    }
    assert_eq!(selects.len(), 5 + 2 + 2, "{selects:#?}");
    for sql in selects {
        let sql = sql.replace("?1", "10").replace("?2", "100");
        let plan: Vec<String> = db
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let plan = plan.join("; ");
        assert!(
            !plan.contains("INDEX") && !plan.contains("TEMP B-TREE"),
            "{sql}: {plan}"
        );
    }
}
