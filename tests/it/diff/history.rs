//! The random history the diff tests run on: a schema with every kind of key, populated and then
//! changed in seeded random steps (rows, and the schema changes listed in [`mutate`]), with a
//! snapshot after each step at a pinned `SQLGIT_NOW`.

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rusqlite::types::Value;
use rusqlite::{Connection, params};

use super::oracle::{State, read_state};
use crate::env::{Run, TestEnv};

/// `SQLGIT_NOW` of the first snapshot; each snapshot is `STEP` seconds later.
pub const T0: u64 = 1_800_000_000;
pub const STEP: u64 = 600;
pub const SNAPSHOTS: usize = 8;
/// The first snapshots are written in format 1 (`SQLGIT_SNAPSHOT_FORMAT=1`), the rest in the
/// current format: every pair across the boundary is diffed too.
pub const FORMAT_1_SNAPSHOTS: usize = 4;

pub struct History {
    pub env: TestEnv,
    pub db: PathBuf,
    pub repo: PathBuf,
    pub commits: Vec<String>,
    pub states: Vec<State>,
    /// `sqlgit dump` of the database at each snapshot (the current format, whatever format the
    /// snapshot is in): the dump a patch must reproduce.
    pub dumps: Vec<Vec<u8>>,
}

impl History {
    pub fn sqlgit(&self, args: &[&str]) -> Run {
        self.env.sqlgit(args)
    }

    pub fn diff(&self, args: &[&str]) -> Run {
        let repo = self.repo.to_str().unwrap();
        let mut all = vec!["diff"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--repo", repo]);
        self.sqlgit(&all)
    }

    fn snapshot(&mut self, conn: &Connection, now: u64) {
        let mut cmd = self.env.sqlgit_cmd(&[
            Path::new("snapshot"),
            &self.db,
            Path::new("--repo"),
            &self.repo,
        ]);
        cmd.env("SQLGIT_NOW", now.to_string());
        let format_1 = self.commits.len() < FORMAT_1_SNAPSHOTS;
        if format_1 {
            cmd.env("SQLGIT_SNAPSHOT_FORMAT", "1");
        }
        let run = self.env.run(cmd, b"").success();
        let out = run.stdout_str();
        let id = out
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        if id.len() != 40 {
            run.fail("snapshot made no commit");
        }
        let repo = self.repo.to_str().unwrap();
        let cat = self
            .sqlgit(&["cat", &id, "--repo", repo])
            .success()
            .output
            .stdout;
        let dump = self
            .env
            .sqlgit(&[Path::new("dump"), &self.db])
            .success()
            .output
            .stdout;
        let marked = cat.starts_with(b"-- sqlgit snapshot format 2\n");
        assert_eq!(marked, !format_1, "snapshot {} is in the wrong format", id);
        if !format_1 {
            assert!(
                cat == dump,
                "a format-2 snapshot is the dump of the database"
            );
        }
        self.commits.push(id);
        self.states.push(read_state(conn));
        self.dumps.push(dump);
    }
}

const SCHEMA: &str = "
CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, avatar BLOB);
CREATE TABLE tags(tag TEXT PRIMARY KEY, note TEXT);
CREATE UNIQUE INDEX tags_note ON tags(note);
CREATE TABLE pairs(a INTEGER NOT NULL, b TEXT NOT NULL, v, PRIMARY KEY(a, b)) WITHOUT ROWID;
CREATE TABLE logs(msg TEXT, n);
CREATE TABLE bag(\"rowid\", \"_rowid_\", \"oid\", v);
CREATE TABLE audit(id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER, old_score, new_score);
CREATE INDEX users_name ON users(name);
CREATE VIEW rich AS SELECT id, name FROM users WHERE score > 50;
CREATE TRIGGER users_audit AFTER UPDATE OF score ON users BEGIN
  INSERT INTO audit(user_id, old_score, new_score) VALUES (old.id, old.score, new.score);
END;
";

fn real(rng: &mut StdRng) -> f64 {
    const SPECIAL: [f64; 10] = [
        0.1,
        -0.0,
        1e300,
        5e-324,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1.0 / 3.0,
        -2.5e-7,
        123456.789,
        1152921504606846976.0,
    ];
    if rng.random_bool(0.3) {
        SPECIAL[rng.random_range(0..SPECIAL.len())]
    } else {
        (rng.random::<f64>() - 0.3) * 100.0
    }
}

fn text(rng: &mut StdRng) -> String {
    const PIECES: [&str; 10] = [
        "a",
        "it's",
        "two\nlines",
        "cr\r",
        "nul\0byte",
        "ünï",
        "😀",
        ",",
        ")",
        "');\n",
    ];
    (0..rng.random_range(1..4))
        .map(|_| PIECES[rng.random_range(0..PIECES.len())])
        .collect()
}

fn any(rng: &mut StdRng) -> Value {
    match rng.random_range(0..6) {
        0 => Value::Null,
        1 => Value::Integer([i64::MIN, i64::MAX, 0, -1, 42][rng.random_range(0..5)]),
        2 => Value::Real(real(rng)),
        3 => Value::Text(text(rng)),
        4 => Value::Blob((0..rng.random_range(0..12)).map(|_| rng.random()).collect()),
        _ => Value::Integer(rng.random_range(-1000..1000)),
    }
}

fn pick(rng: &mut StdRng, conn: &Connection, sql: &str) -> Option<Value> {
    let mut stmt = conn.prepare(sql).unwrap();
    let all: Vec<Value> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    (!all.is_empty()).then(|| all[rng.random_range(0..all.len())].clone())
}

fn populate(rng: &mut StdRng, conn: &Connection) {
    conn.execute_batch(SCHEMA).unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    for i in 1..=3000i64 {
        let avatar = rng.random_bool(0.2).then(|| vec![i as u8; 3]);
        tx.execute(
            "INSERT INTO users(id, name, score, avatar) VALUES (?1, ?2, ?3, ?4)",
            params![i * 2, format!("user {i} {}", text(rng)), real(rng), avatar],
        )
        .unwrap();
    }
    for i in 0..200 {
        tx.execute(
            "INSERT INTO tags VALUES (?1, ?2)",
            params![format!("tag{i}"), format!("note {i}")],
        )
        .unwrap();
    }
    for i in 0..1500i64 {
        tx.execute(
            "INSERT INTO pairs VALUES (?1, ?2, ?3)",
            params![i % 97, format!("b{}", i / 97), any(rng)],
        )
        .unwrap();
    }
    for i in 0..500 {
        tx.execute(
            "INSERT INTO logs VALUES (?1, ?2)",
            params![format!("log {i}"), any(rng)],
        )
        .unwrap();
    }
    tx.execute("INSERT INTO logs VALUES (CAST(X'ff41c3' AS TEXT), 1)", [])
        .unwrap();
    for i in 0..100 {
        tx.execute(
            "INSERT INTO bag VALUES (?1, ?2, ?3, ?4)",
            params![i % 3, i % 5, i % 7, any(rng)],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

/// One step of random row changes (and this step's schema changes).
fn mutate(rng: &mut StdRng, conn: &Connection, step: usize, next_id: &mut i64) {
    match step {
        2 => conn.execute_batch("ALTER TABLE users ADD COLUMN email TEXT;").unwrap(),
        3 => conn
            .execute_batch(
                "CREATE INDEX pairs_v ON pairs(v);
                 CREATE TABLE extra(k INTEGER PRIMARY KEY, x);
                 INSERT INTO extra VALUES (1, 'one'), (2, 2.5), (3, NULL);",
            )
            .unwrap(),
        4 => conn
            .execute_batch(
                "DROP VIEW rich; CREATE VIEW rich AS SELECT id, name, score FROM users WHERE score > 60;
                 PRAGMA user_version = 4;",
            )
            .unwrap(),
        5 => conn
            .execute_batch("DROP INDEX users_name; ALTER TABLE logs ADD COLUMN extra DEFAULT 7; ANALYZE;")
            .unwrap(),
        6 => conn
            .execute_batch(
                "DROP TABLE extra; DROP TRIGGER users_audit;
                 CREATE TRIGGER users_audit AFTER UPDATE OF score ON users WHEN new.score IS NOT old.score BEGIN
                   INSERT INTO audit(user_id, new_score) VALUES (new.id, new.score);
                 END;",
            )
            .unwrap(),
        7 => conn.execute_batch("CREATE INDEX users_name ON users(name, score);").unwrap(),
        _ => {}
    }
    let tx = conn.unchecked_transaction().unwrap();
    for _ in 0..5 {
        // Odd ids land between existing rows; some go past the end.
        let id = if rng.random_bool(0.5) {
            rng.random_range(0..3000i64) * 2 + 1
        } else {
            *next_id += 1;
            *next_id
        };
        tx.execute(
            "INSERT OR IGNORE INTO users(id, name, score) VALUES (?1, ?2, ?3)",
            params![id, text(rng), real(rng)],
        )
        .unwrap();
    }
    for _ in 0..8 {
        let id = pick(rng, &tx, "SELECT id FROM users").unwrap();
        tx.execute(
            "UPDATE users SET score = ?1 WHERE id = ?2",
            params![real(rng), id],
        )
        .unwrap();
    }
    for _ in 0..4 {
        let id = pick(rng, &tx, "SELECT id FROM users").unwrap();
        tx.execute(
            "UPDATE users SET name = ?1 WHERE id = ?2",
            params![text(rng), id],
        )
        .unwrap();
        if step >= 2 {
            tx.execute(
                "UPDATE users SET email = ?1 WHERE id = ?2",
                params![text(rng), id],
            )
            .unwrap();
        }
    }
    for _ in 0..5 {
        let id = pick(rng, &tx, "SELECT id FROM users").unwrap();
        tx.execute("DELETE FROM users WHERE id = ?1", [id]).unwrap();
    }
    // tags: the unique note index makes a swap need delete-before-insert in a patch.
    for i in 0..3 {
        tx.execute(
            "INSERT INTO tags VALUES (?1, ?2)",
            params![format!("new{step}.{i}"), format!("fresh {step}.{i}")],
        )
        .unwrap();
    }
    let a = pick(rng, &tx, "SELECT tag FROM tags").unwrap();
    let b = pick(rng, &tx, "SELECT tag FROM tags").unwrap();
    tx.execute_batch("CREATE TEMP TABLE IF NOT EXISTS swap(t, n); DELETE FROM swap;")
        .unwrap();
    tx.execute(
        "INSERT INTO swap SELECT tag, note FROM tags WHERE tag IN (?1, ?2)",
        [&a, &b],
    )
    .unwrap();
    tx.execute(
        "UPDATE tags SET note = NULL WHERE tag IN (?1, ?2)",
        [&a, &b],
    )
    .unwrap();
    for (x, y) in [(&a, &b), (&b, &a)] {
        tx.execute(
            "UPDATE tags SET note = (SELECT n FROM swap WHERE t = ?2) WHERE tag = ?1",
            [x, y],
        )
        .unwrap();
    }
    let a = pick(rng, &tx, "SELECT tag FROM tags").unwrap();
    tx.execute("DELETE FROM tags WHERE tag = ?1", [a]).unwrap();
    // pairs
    for _ in 0..4 {
        tx.execute(
            "INSERT OR REPLACE INTO pairs VALUES (?1, ?2, ?3)",
            params![rng.random_range(-5..120i64), text(rng), any(rng)],
        )
        .unwrap();
    }
    for _ in 0..3 {
        let a = pick(rng, &tx, "SELECT a FROM pairs").unwrap();
        tx.execute(
            "UPDATE pairs SET v = ?1 WHERE a = ?2 AND b = (SELECT min(b) FROM pairs WHERE a = ?2)",
            params![any(rng), a],
        )
        .unwrap();
        let a = pick(rng, &tx, "SELECT a FROM pairs").unwrap();
        tx.execute(
            "DELETE FROM pairs WHERE a = ?1 AND b = (SELECT max(b) FROM pairs WHERE a = ?1)",
            [a],
        )
        .unwrap();
    }
    // logs (rowid, no key)
    for _ in 0..3 {
        tx.execute(
            "INSERT INTO logs(msg, n) VALUES (?1, ?2)",
            params![text(rng), any(rng)],
        )
        .unwrap();
    }
    for _ in 0..2 {
        let r = pick(rng, &tx, "SELECT rowid FROM logs").unwrap();
        tx.execute(
            "UPDATE logs SET n = ?1 WHERE rowid = ?2",
            params![any(rng), r],
        )
        .unwrap();
        let r = pick(rng, &tx, "SELECT rowid FROM logs").unwrap();
        tx.execute("DELETE FROM logs WHERE rowid = ?1", [r])
            .unwrap();
    }
    // bag (every rowid alias a column): duplicates in, one group out, one changed.
    tx.execute("INSERT INTO bag SELECT * FROM bag LIMIT 1", [])
        .unwrap();
    tx.execute(
        "INSERT INTO bag VALUES (?1, ?2, ?3, ?4)",
        params![step as i64, 0, 0, any(rng)],
    )
    .unwrap();
    let v = pick(rng, &tx, "SELECT \"rowid\" FROM bag").unwrap();
    tx.execute(
        "DELETE FROM bag WHERE \"rowid\" = ?1 AND \"_rowid_\" = 1",
        [&v],
    )
    .unwrap();
    tx.execute(
        "UPDATE bag SET v = ?1 WHERE \"oid\" = ?2",
        params![any(rng), (step % 7) as i64],
    )
    .unwrap();
    tx.commit().unwrap();
}

pub fn build_history() -> History {
    let env = TestEnv::new();
    let db = env.path("app.db");
    let repo = env.path("app.sqlgit");
    let mut h = History {
        env,
        db,
        repo,
        commits: Vec::new(),
        states: Vec::new(),
        dumps: Vec::new(),
    };
    let mut rng = StdRng::seed_from_u64(0x0d1f_f2026);
    let conn = Connection::open(&h.db).unwrap();
    populate(&mut rng, &conn);
    h.snapshot(&conn, T0);
    let mut next_id = 6000;
    for step in 1..SNAPSHOTS {
        mutate(&mut rng, &conn, step, &mut next_id);
        h.snapshot(&conn, T0 + step as u64 * STEP);
    }
    h
}
