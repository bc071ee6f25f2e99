//! `history` follows a row back step by step as `diff` pairs rows across each step, also where
//! the table was rebuilt with another key collation: in seeded random change streams on a
//! WITHOUT ROWID table keyed by (g, k) whose k is rebuilt as BINARY, NOCASE or RTRIM (keeping
//! one row of those the new collation makes one key), the history of every key — as stored, or
//! spelled another way the newest collation calls equal — is the one an oracle derives from the
//! databases: KEY names a row in the newest snapshot (its collation), and each step pairs it
//! with the older row whose key is equal in the collation both versions share (else BINARY).
//! Each step's `diff --json` counts are checked against the same pairing, so the oracle is
//! `diff`'s rule, not a copy of `history`'s code.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rusqlite::Connection;
use serde_json::{Value, json};

use super::repo::Repo;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coll {
    Binary,
    Nocase,
    Rtrim,
}

impl Coll {
    const ALL: [Coll; 3] = [Coll::Binary, Coll::Nocase, Coll::Rtrim];

    fn name(self) -> &'static str {
        match self {
            Coll::Binary => "BINARY",
            Coll::Nocase => "NOCASE",
            Coll::Rtrim => "RTRIM",
        }
    }

    fn fold(self, k: &str) -> String {
        match self {
            Coll::Binary => k.to_string(),
            Coll::Nocase => k.to_ascii_lowercase(),
            Coll::Rtrim => k.trim_end_matches(' ').to_string(),
        }
    }

    /// The comparison two versions share, as `diff` pairs their keys.
    fn shared(self, other: Coll) -> Coll {
        if self == other { self } else { Coll::Binary }
    }
}

type Row = (i64, String, i64);

/// One snapshot: its rows and k's collation.
struct Snap {
    rows: Vec<Row>,
    coll: Coll,
}

impl Snap {
    fn find(&self, g: i64, k: &str, coll: Coll) -> Option<&Row> {
        let want = coll.fold(k);
        self.rows
            .iter()
            .find(|r| r.0 == g && coll.fold(&r.1) == want)
    }
}

const KEYS: [&str; 6] = ["a", "A", "a ", "b", "B", "b "];

fn create(name: &str, coll: Coll) -> String {
    format!(
        "CREATE TABLE {name}(g INT, k TEXT COLLATE {}, v INT, PRIMARY KEY(g, k)) WITHOUT ROWID;",
        coll.name()
    )
}

/// One random step's SQL (the collation it leaves the table with).
fn step(rng: &mut StdRng, snap: &Snap) -> (String, Coll) {
    // Something changes in every step (else no snapshot is made).
    let mut sql = "INSERT INTO tick VALUES(1);".to_string();
    let key = |rng: &mut StdRng| {
        let k = KEYS[rng.random_range(0..KEYS.len())];
        (rng.random_range(1..3), k.replace('\'', "''"))
    };
    for _ in 0..rng.random_range(1..4) {
        let (g, k) = key(rng);
        let v: i64 = rng.random_range(0..5);
        sql += &match rng.random_range(0..4) {
            0 => format!("INSERT OR REPLACE INTO w VALUES({g}, '{k}', {v});"),
            1 => format!("UPDATE w SET v = {v} WHERE g = {g} AND k = '{k}';"),
            2 => format!("DELETE FROM w WHERE g = {g} AND k = '{k}';"),
            _ => {
                let (_, to) = key(rng);
                format!("UPDATE OR IGNORE w SET k = '{to}' WHERE g = {g} AND k = '{k}';")
            }
        };
    }
    if !rng.random_bool(0.4) {
        return (sql, snap.coll);
    }
    let coll = Coll::ALL[rng.random_range(0..3)];
    let order = ["ASC", "DESC"][rng.random_range(0..2)];
    sql += &format!(
        "{} INSERT OR IGNORE INTO w2 SELECT * FROM w ORDER BY g, k {order}; DROP TABLE w; \
         ALTER TABLE w2 RENAME TO w;",
        create("w2", coll)
    );
    (sql, coll)
}

fn read(repo: &Repo, coll: Coll) -> Snap {
    let conn = Connection::open(&repo.db).unwrap();
    let mut st = conn.prepare("SELECT g, k, v FROM w").unwrap();
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)));
    let rows = rows.unwrap().collect::<Result<_, _>>().unwrap();
    Snap { rows, coll }
}

fn whole(r: &Row) -> Value {
    json!({"g": r.0, "k": r.1, "v": r.2})
}

/// The events `history w G K --json` must print (kind, old, new), newest first.
fn expected(snaps: &[Snap], g: i64, typed: &str) -> Vec<(String, Value, Value)> {
    let newest = snaps.last().unwrap();
    // The key followed, how it compares, and whether the row is in the snapshot looked at.
    let (mut k, mut coll, mut present) = match newest.find(g, typed, newest.coll) {
        Some(r) => (r.1.clone(), newest.coll, true),
        None => (typed.to_string(), newest.coll, false),
    };
    let mut events = Vec::new();
    for i in (0..snaps.len()).rev() {
        let (newer, older) = (&snaps[i], i.checked_sub(1).map(|o| &snaps[o]));
        let compare = older.map_or(coll, |o| coll.shared(o.coll));
        let old = older.and_then(|o| o.find(g, &k, compare));
        let new = newer.rows.iter().find(|r| present && r.0 == g && r.1 == k);
        match (old, new) {
            (Some(a), Some(b)) if a != b => {
                let (mut o, mut n) = (json!({}), json!({}));
                if a.1 != b.1 {
                    (o["k"], n["k"]) = (json!(a.1), json!(b.1));
                }
                if a.2 != b.2 {
                    (o["v"], n["v"]) = (json!(a.2), json!(b.2));
                }
                events.push(ev("updated", o, n));
            }
            (Some(a), None) => events.push(ev("deleted", whole(a), Value::Null)),
            (None, Some(b)) => events.push(ev("inserted", Value::Null, whole(b))),
            _ => {}
        }
        match (old, older) {
            (Some(a), Some(o)) => (k, coll, present) = (a.1.clone(), o.coll, true),
            _ => (coll, present) = (compare, false),
        }
    }
    events
}

/// (inserted, updated, deleted) of `w` between two snapshots, as `diff` pairs rows.
fn expected_counts(older: &Snap, newer: &Snap) -> (u64, u64, u64) {
    let coll = older.coll.shared(newer.coll);
    let mut counts = (0, 0, 0);
    for b in &newer.rows {
        match older.find(b.0, &b.1, coll) {
            Some(a) if a != b => counts.1 += 1,
            Some(_) => {}
            None => counts.0 += 1,
        }
    }
    counts.2 = (older.rows.iter())
        .filter(|a| newer.find(a.0, &a.1, coll).is_none())
        .count() as u64;
    counts
}

fn history_of(repo: &Repo, g: i64, k: &str) -> Vec<(String, Value, Value)> {
    history_of_key(repo, &[&g.to_string(), k])
}

/// `history w KEY… --json`: (kind, old, new) per event, newest first.
fn history_of_key(repo: &Repo, key: &[&str]) -> Vec<(String, Value, Value)> {
    let mut args = vec!["history", "w"];
    args.extend(key);
    args.push("--json");
    let run = repo.run(&args);
    let doc: Value =
        serde_json::from_slice(run.stdout()).unwrap_or_else(|e| run.fail(&e.to_string()));
    let events = doc.as_array().unwrap_or_else(|| run.fail("no JSON list"));
    events
        .iter()
        .map(|e| {
            let kind = e["kind"].as_str().unwrap().to_string();
            (kind, e["old"].clone(), e["new"].clone())
        })
        .collect()
}

#[test]
fn history_pairs_rows_as_diff_does_across_collation_rebuilds() {
    for seed in 0..3u64 {
        let mut rng = StdRng::seed_from_u64(0x0c01_1a7e + seed);
        let first = Coll::ALL[seed as usize];
        let mut repo = Repo::new(&format!(
            "{} INSERT INTO w VALUES(1, 'a', 1), (1, 'b', 2), (2, 'A', 3); CREATE TABLE tick(n);",
            create("w", first)
        ));
        let mut snaps = vec![read(&repo, first)];
        for _ in 0..6 {
            let (sql, coll) = step(&mut rng, snaps.last().unwrap());
            repo.change(&sql);
            snaps.push(read(&repo, coll));
            let (older, newer) = (&snaps[snaps.len() - 2], snaps.last().unwrap());
            let run = repo.run(&["diff", "HEAD~1", "HEAD", "--json"]);
            let doc: Value = serde_json::from_slice(run.stdout()).unwrap();
            let tables = doc["tables"].as_array().unwrap();
            let counts = tables
                .iter()
                .find(|t| t["name"] == "w")
                .map_or((0, 0, 0), |t| {
                    let n = |f: &str| t[f].as_u64().unwrap();
                    (n("inserted"), n("updated"), n("deleted"))
                });
            assert_eq!(counts, expected_counts(older, newer), "seed {seed}: {sql}");
        }
        // Every key ever stored, and each spelled another way.
        let mut asked: Vec<(i64, String)> = Vec::new();
        for r in snaps.iter().flat_map(|s| &s.rows) {
            for k in [
                r.1.clone(),
                r.1.to_ascii_uppercase(),
                r.1.trim_end().to_string(),
            ] {
                if !asked.contains(&(r.0, k.clone())) {
                    asked.push((r.0, k));
                }
            }
        }
        for (g, k) in asked {
            assert_eq!(
                history_of(&repo, g, &k),
                expected(&snaps, g, &k),
                "seed {seed}: history w {g} {k:?}"
            );
        }
    }
}

/// The tester's case: `w(k TEXT PRIMARY KEY)` holds 'a'=1 and 'A'=2, 'A' is set to 3, the table
/// is rebuilt as COLLATE NOCASE keeping only 'A', and 'A' is set to 4. `history w a` names the
/// NOCASE key 'A' and shows its past — not an update 'a' → 'A' at the rebuild, where `diff`
/// shows 'a' deleted. The same from a rowid table (its key a UNIQUE index) and, the other way,
/// a NOCASE key rebuilt as BINARY, where 'a' is no longer the row 'A' was.
#[test]
fn history_follows_the_row_diff_pairs_across_a_collation_rebuild() {
    for (without_rowid, inserted) in [
        (" WITHOUT ROWID", json!({"k": "A", "v": 2})),
        ("", json!({"rowid": 2, "k": "A", "v": 2})),
    ] {
        let a_and_then_capital_a = [
            ev("updated", json!({"v": 3}), json!({"v": 4})),
            ev("updated", json!({"v": 2}), json!({"v": 3})),
            ev("inserted", Value::Null, inserted),
        ];
        let mut r = Repo::new(&format!(
            "CREATE TABLE w(k TEXT PRIMARY KEY, v){without_rowid};
             INSERT INTO w VALUES('a', 1), ('A', 2);"
        ));
        r.change("UPDATE w SET v = 3 WHERE k = 'A';");
        r.change(
            "CREATE TABLE w2(k TEXT COLLATE NOCASE PRIMARY KEY, v) WITHOUT ROWID;
             INSERT INTO w2 SELECT k, v FROM w WHERE k = 'A'; DROP TABLE w;
             ALTER TABLE w2 RENAME TO w;",
        );
        r.change("UPDATE w SET v = 4 WHERE k = 'A';");
        for key in ["a", "A", "'a'"] {
            assert_eq!(
                history_of_key(&r, &[key]),
                a_and_then_capital_a,
                "{without_rowid} {key}"
            );
        }
    }
    // NOCASE made BINARY: 'A' kept, then 'a' inserted as another row.
    let mut r = Repo::new(
        "CREATE TABLE w(g INT, k TEXT COLLATE NOCASE, v, PRIMARY KEY(g, k)) WITHOUT ROWID;
         INSERT INTO w VALUES(1, 'A', 1);",
    );
    r.change(
        "CREATE TABLE w2(g INT, k TEXT, v, PRIMARY KEY(g, k)) WITHOUT ROWID;
         INSERT INTO w2 SELECT * FROM w; DROP TABLE w; ALTER TABLE w2 RENAME TO w;
         INSERT INTO w VALUES(1, 'a', 2);",
    );
    assert_eq!(
        history_of_key(&r, &["1", "a"]),
        [ev(
            "inserted",
            Value::Null,
            json!({"g": 1, "k": "a", "v": 2})
        )]
    );
    assert_eq!(
        history_of_key(&r, &["1", "A"]),
        [ev(
            "inserted",
            Value::Null,
            json!({"g": 1, "k": "A", "v": 1})
        )]
    );
}

fn ev(kind: &str, old: Value, new: Value) -> (String, Value, Value) {
    (kind.to_string(), old, new)
}
