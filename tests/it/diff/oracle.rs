//! The independent oracle of the diff tests: the database itself, read with rusqlite at each
//! snapshot, and the changes between two such readings counted the way `sqlgit diff` must count
//! them (rows by rowid, by primary key, or as a multiset — bag, whose columns shadow every
//! rowid alias; only the columns both sides have are compared: the others were added or
//! removed).

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Connection;
use rusqlite::types::ValueRef;

/// A value, compared exactly (storage class, float bits, bytes).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum V {
    Int(i64),
    Real(u64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

/// A row: column (lowercase) → value, NULLs left out (a column one side lacks reads as NULL).
pub type Row = BTreeMap<String, V>;

fn value(v: ValueRef) -> Option<V> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(V::Int(i)),
        ValueRef::Real(f) => Some(V::Real(f.to_bits())),
        ValueRef::Text(t) => Some(V::Text(t.to_vec())),
        ValueRef::Blob(b) => Some(V::Blob(b.to_vec())),
    }
}

/// A table at one moment: rows by key (None: the multiset table), and its schema SQL.
#[derive(Debug, Default)]
pub struct TableState {
    /// The columns (lowercase).
    pub columns: BTreeSet<String>,
    pub keyed: BTreeMap<Vec<V>, Row>,
    pub multiset: BTreeMap<Row, u64>,
    pub schema: Vec<String>,
}

/// The database at one snapshot.
#[derive(Debug)]
pub struct State {
    pub tables: BTreeMap<String, TableState>,
    pub views: Vec<String>,
    pub triggers: Vec<String>,
    pub pragmas: (i64, i64),
}

pub fn strings(conn: &Connection, sql: &str, arg: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([arg], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

pub fn read_state(conn: &Connection) -> State {
    let mut tables = BTreeMap::new();
    for name in strings(
        conn,
        // Every table, sqlite_stat4 (of the bundled SQLite, built with STAT4) included.
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name <> ?1",
        "",
    ) {
        let mut t = TableState {
            schema: strings(
                conn,
                "SELECT sql FROM sqlite_schema WHERE tbl_name = ?1 AND sql IS NOT NULL \
                 AND type IN ('table', 'index') ORDER BY type = 'index', rowid",
                &name,
            ),
            ..TableState::default()
        };
        let (sql, skip) = match name.as_str() {
            // No name reaches bag's rowid: its rows are a multiset of their values.
            "pairs" | "bag" => (format!("SELECT * FROM \"{name}\""), 0),
            _ => (format!("SELECT rowid, * FROM \"{name}\""), 1),
        };
        let mut stmt = conn.prepare(&sql).unwrap();
        let cols: Vec<String> = stmt.column_names().map(|c| c.to_lowercase()).collect();
        t.columns = cols.iter().skip(skip).cloned().collect();
        let mut rows = stmt.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let mut row = Row::new();
            for (i, c) in cols.iter().enumerate().skip(skip) {
                if let Some(v) = value(r.get_ref(i).unwrap()) {
                    row.insert(c.clone(), v);
                }
            }
            match name.as_str() {
                "pairs" => {
                    let key = vec![row["a"].clone(), row["b"].clone()];
                    t.keyed.insert(key, row);
                }
                "bag" => *t.multiset.entry(row).or_default() += 1,
                _ => {
                    t.keyed
                        .insert(vec![value(r.get_ref(0).unwrap()).unwrap()], row);
                }
            }
        }
        drop(rows);
        drop(stmt);
        tables.insert(name, t);
    }
    let pragma = |p: &str| {
        conn.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
            .unwrap()
    };
    State {
        tables,
        views: strings(
            conn,
            "SELECT sql FROM sqlite_schema WHERE type = 'view' AND ?1 = ?1 ORDER BY name",
            "",
        ),
        triggers: strings(
            conn,
            // In the order a table's triggers fire in (grouped by table).
            "SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND ?1 = ?1 \
             ORDER BY lower(tbl_name), rowid",
            "",
        ),
        pragmas: (pragma("user_version"), pragma("application_id")),
    }
}

/// (inserted, updated, deleted, schema_changed) per table.
pub type Changes = BTreeMap<String, (u64, u64, u64, bool)>;

/// What changed per table between two states, for tables where anything changed.
pub fn expected_changes(a: &State, b: &State) -> Changes {
    let empty = TableState::default();
    let names: BTreeSet<&String> = a.tables.keys().chain(b.tables.keys()).collect();
    let mut out = BTreeMap::new();
    for name in names {
        let (ta, tb) = (
            a.tables.get(name).unwrap_or(&empty),
            b.tables.get(name).unwrap_or(&empty),
        );
        // A table on both sides compares the columns both have.
        let shared: BTreeSet<&String> =
            if a.tables.contains_key(name) && b.tables.contains_key(name) {
                ta.columns.intersection(&tb.columns).collect()
            } else {
                ta.columns.union(&tb.columns).collect()
            };
        let project = |row: &Row| -> Row {
            row.iter()
                .filter(|(c, _)| shared.contains(c))
                .map(|(c, v)| (c.clone(), v.clone()))
                .collect()
        };
        let (mut ins, mut upd, mut del) = (0, 0, 0);
        for (k, row) in &tb.keyed {
            match ta.keyed.get(k) {
                None => ins += 1,
                Some(old) if project(old) != project(row) => upd += 1,
                Some(_) => {}
            }
        }
        del += ta
            .keyed
            .keys()
            .filter(|k| !tb.keyed.contains_key(*k))
            .count() as u64;
        let bag = |t: &TableState| {
            let mut out: BTreeMap<Row, u64> = BTreeMap::new();
            for (row, n) in &t.multiset {
                *out.entry(project(row)).or_default() += n;
            }
            out
        };
        let (ma, mb) = (bag(ta), bag(tb));
        for (row, &n) in &mb {
            ins += n.saturating_sub(*ma.get(row).unwrap_or(&0));
        }
        for (row, &n) in &ma {
            del += n.saturating_sub(*mb.get(row).unwrap_or(&0));
        }
        let schema = ta.schema != tb.schema;
        if ins + upd + del > 0 || schema {
            out.insert(name.clone(), (ins, upd, del, schema));
        }
    }
    out
}
