//! Incremental snapshots (the page map): the tree a run writes from what changed must be the
//! tree a whole read writes, after any change — the property behind reading only what changed.
//!
//! In-process, for speed: each step changes the database at random (through a connection kept
//! open like an application's), then takes a snapshot in `Check` mode, which reads the changed
//! parts and then everything in the same read transaction and reports any difference.
//! Configurations cover WAL and rollback journals, small pages (deep b-trees), auto-vacuum
//! moving pages, rows on overflow pages (grown, shrunk, rewritten in place), WITHOUT ROWID
//! tables (read by key: text, composite with NOCASE and REAL parts; and a DESC key, read
//! whole), tables whose rowid only the b-tree shows, VACUUM and schema changes; and pages read
//! from the database file while a writer commits and checkpoints.

use std::path::Path;
use std::time::Duration;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rusqlite::{Connection, params};
use sqlgit::dump::Filters;
use sqlgit::snapshot::{self, Reading};
use sqlgit::store::Store;

use crate::env::TestEnv;

struct Config {
    journal: &'static str,
    page_size: u32,
    auto_vacuum: &'static str,
    steps: usize,
}

const CONFIGS: &[Config] = &[
    Config {
        journal: "wal",
        page_size: 1024,
        auto_vacuum: "none",
        steps: 300,
    },
    Config {
        journal: "delete",
        page_size: 4096,
        auto_vacuum: "none",
        steps: 250,
    },
    Config {
        journal: "wal",
        page_size: 512,
        auto_vacuum: "incremental",
        steps: 250,
    },
    Config {
        journal: "truncate",
        page_size: 1024,
        auto_vacuum: "full",
        steps: 250,
    },
];

const SCHEMA: &str = "
    CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, body BLOB);
    CREATE TABLE plain(a, b);
    CREATE TABLE shadowed(rowid TEXT, v);
    CREATE TABLE hidden(rowid, oid, _rowid_, v);
    CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
    CREATE TABLE ck(a INTEGER, b TEXT COLLATE NOCASE, c REAL, v, PRIMARY KEY(a, b, c)) WITHOUT ROWID;
    CREATE TABLE dk(k TEXT PRIMARY KEY DESC, v) WITHOUT ROWID;
    CREATE INDEX items_name ON items(name);
    -- Indexes that cover every column of their table: a plain scan may be answered from them.
    CREATE INDEX kv_v ON kv(v);
    CREATE INDEX dk_v ON dk(v);
    CREATE INDEX plain_ab ON plain(b, a);
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 4000)
    INSERT INTO kv SELECT 'k' || i, printf('value %d %.*c', i, i % 90, 'v') FROM c;
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000)
    INSERT INTO ck SELECT i % 7, substr('xXyY', 1 + i % 4, 1), i / 7.0, i FROM c;
    WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000)
    INSERT INTO dk SELECT 'd' || i, i FROM c;";

fn text(rng: &mut Xoshiro256PlusPlus) -> String {
    let len = match rng.random_range(0..10) {
        0 => rng.random_range(1000..9000), // spills onto overflow pages
        1 => 0,
        _ => rng.random_range(1..120),
    };
    let c = (b'a' + rng.random_range(0..26u8)) as char;
    let mut s = String::with_capacity(len);
    for i in 0..len {
        s.push(if i % 7 == 3 {
            c
        } else {
            (b'a' + (i % 26) as u8) as char
        });
    }
    s
}

/// One random change (or none) to the database.
fn change(db: &Connection, rng: &mut Xoshiro256PlusPlus, step: usize) {
    let table = ["items", "plain", "shadowed", "hidden", "kv", "ck", "dk"][rng.random_range(0..7)];
    let key: i64 = rng.random_range(-50..4000);
    let t = text(rng);
    let r = match rng.random_range(0..100) {
        0..=29 => {
            let n = rng.random_range(1..40);
            let mut ok = Ok(0);
            for i in 0..n {
                let k = key + i * rng.random_range(1..5);
                let t = text(rng);
                ok = match table {
                    "items" => db.execute(
                        "INSERT OR REPLACE INTO items VALUES(?1, ?2, randomblob(?3))",
                        params![k, t, k.rem_euclid(50)],
                    ),
                    "plain" => db.execute("INSERT INTO plain(a, b) VALUES(?1, ?2)", params![t, k]),
                    "shadowed" => db.execute("INSERT INTO shadowed VALUES(?1, ?2)", params![t, k]),
                    "hidden" => db.execute(
                        "INSERT INTO hidden VALUES(?1, ?2, ?3, ?4)",
                        params![k, k, k, t],
                    ),
                    "ck" => db.execute(
                        "INSERT OR REPLACE INTO ck VALUES(?1 % 7, ?2, ?3, ?4)",
                        params![
                            k,
                            ["x", "X", "y", "Y z", "é"][k.rem_euclid(5) as usize],
                            if k % 3 == 0 {
                                (k / 3) as f64
                            } else {
                                k as f64 / 7.0
                            },
                            t
                        ],
                    ),
                    "dk" => db.execute(
                        "INSERT OR REPLACE INTO dk VALUES(?1, ?2)",
                        params![format!("d{k}"), t],
                    ),
                    _ => db.execute(
                        "INSERT OR REPLACE INTO kv VALUES(?1, ?2)",
                        params![format!("k{k}"), t],
                    ),
                };
            }
            ok
        }
        30..=49 => {
            // Grow or shrink rows, onto or off overflow pages.
            let sql = match table {
                "items" => "UPDATE items SET name = ?2 WHERE id BETWEEN ?1 AND ?1 + 30",
                "plain" => "UPDATE plain SET a = ?2 WHERE rowid BETWEEN ?1 AND ?1 + 30",
                "shadowed" => "UPDATE shadowed SET v = ?2 WHERE _rowid_ BETWEEN ?1 AND ?1 + 30",
                "hidden" => "UPDATE hidden SET v = ?2 WHERE v < ?2 AND length(v) > ?1 % 50",
                "ck" => "UPDATE ck SET v = ?2 WHERE a = ?1 % 7 AND c < ?1",
                "dk" => "UPDATE dk SET v = ?2 WHERE k >= 'd' || ?1 AND k < 'd' || (?1 + 30)",
                _ => "UPDATE kv SET v = ?2 WHERE k >= 'k' || ?1 AND k < 'k' || (?1 + 30)",
            };
            db.execute(sql, params![key, t])
        }
        50..=59 => {
            // Same size, new bytes: SQLite may overwrite an overflow chain in place.
            db.execute(
                "UPDATE items SET name = upper(name) WHERE id BETWEEN ?1 AND ?1 + 10",
                params![key],
            )
            .and_then(|_| {
                db.execute(
                    "UPDATE plain SET a = lower(a) || '' WHERE rowid % 17 = ?1 % 17",
                    params![key],
                )
            })
            .and_then(|_| {
                // Single rows out of WITHOUT ROWID tables: some are a page's first or last.
                db.execute("DELETE FROM kv WHERE k = 'k' || ?1", params![key])?;
                db.execute("DELETE FROM ck WHERE a = ?1 % 7 AND c = ?1 / 7.0", params![key])
            })
            .and_then(|_| {
                // Only bytes on overflow pages change: the leaf page stays as it was.
                db.execute(
                    "UPDATE items SET name = substr(name, 1, 2500) || char(65 + (?1 + id) % 26)                      || substr(name, 2502) WHERE length(name) > 3000",
                    params![key],
                )
            })
        }
        60..=79 => {
            let sql = match table {
                "items" => "DELETE FROM items WHERE id BETWEEN ?1 AND ?1 + ?2",
                "plain" => "DELETE FROM plain WHERE rowid BETWEEN ?1 AND ?1 + ?2",
                "shadowed" => "DELETE FROM shadowed WHERE _rowid_ BETWEEN ?1 AND ?1 + ?2",
                "hidden" => "DELETE FROM hidden WHERE length(v) BETWEEN ?1 % 100 AND ?1 % 100 + ?2",
                "ck" => {
                    "DELETE FROM ck WHERE a = ?1 % 7 AND c BETWEEN ?1 / 7.0 AND (?1 + ?2) / 7.0"
                }
                "dk" => "DELETE FROM dk WHERE k >= 'd' || ?1 AND k < 'd' || (?1 + ?2)",
                _ => "DELETE FROM kv WHERE k >= 'k' || ?1 AND k < 'k' || (?1 + ?2)",
            };
            db.execute(sql, params![key, rng.random_range(0..200)])
        }
        80..=84 => db.execute_batch("PRAGMA incremental_vacuum(20)").map(|_| 0),
        85 if step.is_multiple_of(3) => db.execute_batch("VACUUM").map(|_| 0),
        86 => db
            .execute_batch(&format!(
                "ALTER TABLE plain ADD COLUMN c{step} DEFAULT 'd{step}';"
            ))
            .map(|_| 0),
        87 => db
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS extra{}(x); INSERT INTO extra{} VALUES({key});",
                step % 3,
                step % 3
            ))
            .map(|_| 0),
        88 => db
            .execute_batch(&format!("DROP TABLE IF EXISTS extra{}", step % 3))
            .map(|_| 0),
        89 => db
            .execute_batch("UPDATE items SET body = zeroblob(5000) WHERE id % 97 = 1")
            .map(|_| 0),
        _ => Ok(0), // no change at all
    };
    r.unwrap_or_else(|e| panic!("step {step}: change to {table}: {e}"));
}

fn open(path: &Path, c: &Config) -> Connection {
    let db = Connection::open(path).unwrap();
    db.execute_batch(&format!(
        "PRAGMA page_size={}; PRAGMA auto_vacuum={}; PRAGMA journal_mode={}; {SCHEMA}",
        c.page_size, c.auto_vacuum, c.journal
    ))
    .unwrap();
    db
}

/// A snapshot of `db` into the repository at `repo` that reads what changed and everything, in
/// one read transaction (`at` names the step in a failure).
pub(crate) fn check_run(repo: &Path, db: &Path, at: &str) -> snapshot::Outcome {
    let store = Store::open(repo).unwrap();
    snapshot::take(
        &store,
        std::slice::from_ref(&db.to_path_buf()),
        Duration::from_secs(10),
        &Filters::default(),
        Reading::Check,
        snapshot::Others::Keep,
        None,
    )
    .unwrap_or_else(|e| panic!("{at}: {e:#}"))
}

/// Thousands of random steps: the incremental tree equals the whole read's after every one,
/// and most steps really are incremental.
#[test]
fn incremental_tree_equals_full_tree() {
    let env = TestEnv::new();
    let mut incremental_steps = 0;
    let mut folders_reused = 0;
    for (n, c) in CONFIGS.iter().enumerate() {
        let path = env.path(format!("p{n}.db"));
        let repo = env.path(format!("p{n}.sqlgit"));
        let db = open(&path, c);
        let store = Store::open_or_create(&repo).unwrap();
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(0x5eed + n as u64);
        for step in 0..c.steps {
            for _ in 0..rng.random_range(1..4) {
                change(&db, &mut rng, step);
            }
            let outcome = check_run(&store.path, &path, &format!("config {n} step {step}"));
            assert!(
                outcome.mismatch.is_none(),
                "config {n} (journal {}, page size {}, auto_vacuum {}) step {step}: {}",
                c.journal,
                c.page_size,
                c.auto_vacuum,
                outcome.mismatch.unwrap()
            );
            if !outcome.read_whole || outcome.reuse.tables_reused + outcome.reuse.tables_partial > 0
            {
                incremental_steps += 1;
            }
            folders_reused += outcome.reuse.folders_reused;
        }
    }
    let total: usize = CONFIGS.iter().map(|c| c.steps).sum();
    assert!(
        incremental_steps * 2 > total,
        "only {incremental_steps} of {total} steps reused anything"
    );
    assert!(
        folders_reused > 100,
        "whole folders of chunks reused only {folders_reused} times"
    );
}

/// `sqlgit snapshot DB --repo REPO --json ARGS…` (must succeed): the report.
pub(crate) fn snapshot_json(
    env: &TestEnv,
    db: &Path,
    repo: &Path,
    args: &[&str],
) -> serde_json::Value {
    let mut all: Vec<&std::ffi::OsStr> = vec!["snapshot".as_ref(), db.as_os_str()];
    all.extend(["--repo".as_ref(), repo.as_os_str(), "--json".as_ref()]);
    all.extend(args.iter().map(std::ffi::OsStr::new));
    let run = env.sqlgit(&all).success();
    serde_json::from_slice(run.stdout()).unwrap()
}

fn small_db(env: &TestEnv) -> std::path::PathBuf {
    let path = env.path("app.db");
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode=wal;
         CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000)
         INSERT INTO t SELECT i, printf('row %d %s', i, hex(randomblob(30))) FROM c;
         CREATE TABLE u(x, y);
         INSERT INTO u SELECT v, id FROM t;",
    )
    .unwrap();
    path
}

fn map_file(repo: &Path) -> std::path::PathBuf {
    repo.join("sqlgit-pages/app.db.map")
}

/// What the runs read: the first whole, then only the changed table in part, an unchanged
/// database nothing; `--full` reads everything; the map is private and tied to its commit.
#[test]
fn runs_read_only_what_changed() {
    let env = TestEnv::new();
    let db = small_db(&env);
    let repo = env.path("app.sqlgit");
    let first = snapshot_json(&env, &db, &repo, &[]);
    assert_eq!(first["read"]["whole"], true, "{first}");
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&map_file(&repo)), 0o600);
    assert_eq!(mode(map_file(&repo).parent().unwrap()), 0o700);

    let same = snapshot_json(&env, &db, &repo, &[]);
    assert_eq!(same["changed"], false);
    assert_eq!(same["read"]["tables_reused"], 2, "{same}");
    assert_eq!(same["read"]["chunks_read"], 0, "{same}");

    Connection::open(&db)
        .unwrap()
        .execute_batch("UPDATE t SET v = 'changed' WHERE id IN (10, 2500)")
        .unwrap();
    let part = snapshot_json(&env, &db, &repo, &[]);
    assert_eq!(part["changed"], true);
    assert_eq!(part["read"]["whole"], false, "{part}");
    assert_eq!(part["read"]["tables_reused"], 1, "{part}");
    assert_eq!(part["read"]["tables_partial"], 1, "{part}");
    let read = part["read"]["chunks_read"].as_u64().unwrap();
    let reused = part["read"]["chunks_reused"].as_u64().unwrap();
    // Two changed leaves of ~50 rows each: a few chunks around each, the rest reused.
    assert!(read <= 16 && reused > 3 * read, "{part}");
    assert_eq!(
        part["rows"], first["rows"],
        "row count of a partly read table"
    );

    let full = snapshot_json(&env, &db, &repo, &["--full"]);
    assert_eq!(full["read"]["whole"], true);
    assert_eq!(
        full["changed"], false,
        "a whole read gives the same tree: {full}"
    );
    assert_eq!(
        full["bytes"], part["bytes"],
        "bytes of SQL counted by the partial read"
    );
    // The map that whole read wrote finds the next change in one place (its page hashes are
    // the ones the next run computes).
    Connection::open(&db)
        .unwrap()
        .execute_batch("UPDATE t SET v = 'again' WHERE id = 1500")
        .unwrap();
    let next = snapshot_json(&env, &db, &repo, &[]);
    let read = next["read"]["chunks_read"].as_u64().unwrap();
    assert!(read <= 8 && next["read"]["tables_reused"] == 1, "{next}");

    // A map of another commit (left by a run killed after its commit) is not trusted.
    let old_map = std::fs::read(map_file(&repo)).unwrap();
    Connection::open(&db)
        .unwrap()
        .execute_batch("DELETE FROM u WHERE rowid % 7 = 0")
        .unwrap();
    snapshot_json(&env, &db, &repo, &[]);
    std::fs::write(map_file(&repo), &old_map).unwrap();
    let stale = snapshot_json(&env, &db, &repo, &[]);
    assert_eq!(stale["read"]["whole"], true, "{stale}");
    // A damaged map is read past, not fatal.
    let mut bad = std::fs::read(map_file(&repo)).unwrap();
    let at = bad.len() / 2;
    bad[at] ^= 0x55;
    std::fs::write(map_file(&repo), &bad).unwrap();
    let damaged = snapshot_json(&env, &db, &repo, &[]);
    assert_eq!(damaged["read"]["whole"], true, "{damaged}");
}

/// A leaf holds more rows than a chunk file (here about 120 rows a page, 60 a chunk): a changed
/// row makes the run read its own chunk, not every chunk its leaf touches — the chunks next to
/// it are found unchanged by their sums (the page map keeps one per chunk).
#[test]
fn a_changed_row_reads_its_own_chunk_only() {
    let env = TestEnv::new();
    let path = env.path("app.db");
    let db = Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE m(id INTEGER PRIMARY KEY, a REAL, b REAL, c INTEGER);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO m SELECT i, i / 7.0, i * 0.001, i * 1000003 FROM n;",
    )
    .unwrap();
    let repo = env.path("app.sqlgit");
    snapshot_json(&env, &path, &repo, &[]);
    let changed = 30;
    // Each run's sums come from the run before (a partial read's, after the first).
    for round in 0..3 {
        // One row in each of 30 leaves far apart; its text keeps its length.
        db.execute(
            "UPDATE m SET c = c + 1 WHERE id % 650 = 300 + ?1",
            params![round],
        )
        .unwrap();
        let part = snapshot_json(&env, &path, &repo, &[]);
        let read = part["read"]["chunks_read"].as_u64().unwrap();
        assert!(
            (changed..=changed + 4).contains(&read),
            "round {round}: {read} chunks read for {changed} rows: {part}"
        );
    }
    let full = snapshot_json(&env, &path, &repo, &["--full"]);
    assert_eq!(full["changed"], false, "{full}");
}

/// A map that lies (it says the changed pages are the old ones) makes the incremental read
/// wrong; the check run reads everything too, commits the whole read, and fails loudly.
#[test]
fn a_check_run_fails_loudly_when_the_incremental_tree_differs() {
    let env = TestEnv::new();
    let db = small_db(&env);
    let repo = env.path("app.sqlgit");
    snapshot_json(&env, &db, &repo, &[]);
    let head = |repo: &Path| {
        let out = std::process::Command::new("git")
            .args(["-C", repo.to_str().unwrap(), "rev-parse", "main"])
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let c1 = head(&repo);
    Connection::open(&db)
        .unwrap()
        .execute_batch("UPDATE t SET v = 'changed' WHERE id = 1234")
        .unwrap();
    // The map of the changed database, relabelled as the map of the commit before the change.
    let twin = env.path("twin.sqlgit");
    copy_dir(&repo, &twin);
    snapshot_json(&env, &db, &twin, &[]);
    let mut map = std::fs::read(twin.join("sqlgit-pages/app.db.map")).unwrap();
    let magic = b"sqlgit page map 1\n".len();
    map[magic..magic + 20].copy_from_slice(&hex(&c1));
    let body = map.len() - 16;
    let sum = xxhash_rust::xxh3::xxh3_128(&map[..body]);
    map[body..].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(map_file(&repo), &map).unwrap();

    let mut args: Vec<&std::ffi::OsStr> = vec!["snapshot".as_ref(), db.as_os_str()];
    args.extend([
        "--repo".as_ref(),
        repo.as_os_str(),
        "--full-every".as_ref(),
        "0s".as_ref(),
    ]);
    let run = env.sqlgit(&args).code_is(1);
    let err = run.stderr_str();
    assert!(
        err.contains("differs from a full read") && err.lines().count() == 1,
        "{err}"
    );
    // What was committed is the whole read: the changed row is there.
    let cat = env
        .sqlgit(&["cat", "--repo", repo.to_str().unwrap()])
        .success();
    assert!(
        cat.stdout_str().contains("(1234,'changed')"),
        "the committed snapshot lacks the change"
    );
    // The state file and the next run know it failed / recover: the next check passes.
    let state = std::fs::read_to_string(repo.join("sqlgit-state.json")).unwrap();
    assert!(state.contains("differs from a full read"), "{state}");
    env.sqlgit(&args).success();
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .args(["-a", from.to_str().unwrap(), to.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Pages are read from the database file where that is the transaction's view (the WAL's pages
/// through SQLite): under a writer committing and checkpointing (PASSIVE, RESTART, TRUNCATE) as
/// fast as it can, every check run's incremental tree equals its whole read.
#[test]
fn file_reads_match_the_transaction_under_a_writer_and_checkpoints() {
    let env = TestEnv::new();
    for journal in ["wal", "delete"] {
        let path = env.path(format!("w-{journal}.db"));
        let repo = env.path(format!("w-{journal}.sqlgit"));
        let db = Connection::open(&path).unwrap();
        db.execute_batch(&format!(
            "PRAGMA page_size=1024; PRAGMA journal_mode={journal};
             CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
             CREATE TABLE kv(k TEXT PRIMARY KEY, v) WITHOUT ROWID;
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 6000)
             INSERT INTO t SELECT i, printf('row %d %s', i, hex(randomblob(20))) FROM c;
             INSERT INTO kv SELECT 'k' || id, v FROM t WHERE id % 2 = 0;"
        ))
        .unwrap();
        drop(db);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let db = Connection::open(&path).unwrap();
                db.busy_timeout(Duration::from_secs(10)).unwrap();
                let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
                let mut commits = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let id = rng.random_range(1..6000i64);
                    db.execute("UPDATE t SET v = v || 'x' WHERE id = ?1", params![id])
                        .unwrap();
                    db.execute(
                        "INSERT OR REPLACE INTO kv VALUES ('k' || ?1, ?2)",
                        params![id, commits as i64],
                    )
                    .unwrap();
                    commits += 1;
                    if journal == "wal" {
                        let mode = ["PASSIVE", "RESTART", "TRUNCATE"][commits as usize % 3];
                        let _ =
                            db.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()));
                    } else {
                        // A rollback journal's writer that commits again at once keeps a new
                        // reader's lock out for good (SQLite's busy handler polls): leave a gap,
                        // as any application's writes have.
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                commits
            })
        };
        let store = Store::open_or_create(&repo).unwrap();
        for round in 0..25 {
            let outcome = check_run(&store.path, &path, &format!("{journal} round {round}"));
            assert!(
                outcome.mismatch.is_none(),
                "{journal} round {round}: {}",
                outcome.mismatch.unwrap()
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let commits = writer.join().unwrap();
        assert!(
            commits > 25,
            "{journal}: the writer committed only {commits} times"
        );
    }
}
