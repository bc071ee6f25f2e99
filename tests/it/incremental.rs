//! Incremental snapshots (the page map): the tree a run writes from what changed must be the
//! tree a whole read writes, after any change — the property behind reading only what changed.
//!
//! In-process, for speed: each step changes the database at random (through a connection kept
//! open like an application's), then takes a snapshot in `Check` mode, which reads the changed
//! parts and then everything in the same read transaction and reports any difference.
//! Configurations cover WAL and rollback journals, small pages (deep b-trees), auto-vacuum
//! moving pages, rows on overflow pages (grown, shrunk, rewritten in place), WITHOUT ROWID
//! tables, tables whose rowid only the b-tree shows, VACUUM and schema changes.

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
    CREATE INDEX items_name ON items(name);";

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
    let table = ["items", "plain", "shadowed", "hidden", "kv"][rng.random_range(0..5)];
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

/// Thousands of random steps: the incremental tree equals the whole read's after every one,
/// and most steps really are incremental.
#[test]
fn incremental_tree_equals_full_tree() {
    let env = TestEnv::new();
    let mut incremental_steps = 0;
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
            let store = Store::open(&store.path).unwrap();
            let outcome = snapshot::take(
                &store,
                std::slice::from_ref(&path),
                Duration::from_secs(5),
                &Filters::default(),
                Reading::Check,
            )
            .unwrap_or_else(|e| panic!("config {n} step {step}: {e:#}"));
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
        }
    }
    let total: usize = CONFIGS.iter().map(|c| c.steps).sum();
    assert!(
        incremental_steps * 2 > total,
        "only {incremental_steps} of {total} steps reused anything"
    );
}
