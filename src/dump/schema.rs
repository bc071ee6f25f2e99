//! Reads what a dump needs to know about a database: its tables (with how to read their rows in
//! a stable order and how to write them back with their rowids), indexes, views, triggers, and
//! the header pragmas.

use anyhow::{Context, Result};
use rusqlite::Connection;

use super::affinity::{Affinity, Converted};
use super::filter::{Catalog, check};
pub use super::filter::{
    Filters, RedactionGap, glob_match, kept_tables, redaction_gaps, unmatched_exclusions,
};
use super::literal::write_text;

mod table;
use table::table;

/// Header values restored by the dump.
pub struct Pragmas {
    /// `UTF-8`, `UTF-16le` or `UTF-16be`.
    pub encoding: String,
    pub user_version: i64,
    pub application_id: i64,
    /// Bytes per page, and `auto_vacuum` (0 none, 1 full, 2 incremental): the file's layout,
    /// which a restore can only choose before its first table.
    pub page_size: i64,
    pub auto_vacuum: i64,
}

/// How a table's rows are keyed (the chunk names and boundaries come from the key).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Key {
    /// Rowid table; `emit` says whether the rowid is written into the INSERT before the
    /// columns (no INTEGER PRIMARY KEY holds it already).
    Rowid { emit: bool },
    /// WITHOUT ROWID table: rows are read in b-tree order and keyed by these selected columns
    /// (the primary key).
    Columns,
}

/// What a redacted column's values become (NULL values stay NULL).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Placeholder {
    /// NULL: the column allows it.
    Null,
    /// NOT NULL: one value of the value's storage class, the same in every row.
    Fixed,
    /// NOT NULL and keyed on by a UNIQUE index: a value made from the row's rowid (or its
    /// key's hash, WITHOUT ROWID), different in every row.
    PerRow,
}

/// Where the dump finds each row's rowid.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RowidFrom {
    /// Not a rowid table.
    Nowhere,
    /// This column of the SELECT (a rowid alias, or the INTEGER PRIMARY KEY column).
    Select(usize),
    /// The table's b-tree, read page by page (`sqlite_dbpage`) beside the SELECT: when no name
    /// reaches the rowid (`rowid`, `oid` and `_rowid_` are all columns) or one more result
    /// column would pass SQLite's column limit.
    Btree { rootpage: u32 },
}

/// A named schema object with its stored text (any bytes: SQLite keeps it as typed).
pub struct Object {
    pub name: String,
    pub sql: Vec<u8>,
}

pub struct Table {
    pub name: String,
    /// Folder name in the snapshot tree.
    pub dir: String,
    /// `CREATE TABLE` text as stored in sqlite_schema.
    pub sql: Vec<u8>,
    pub virtual_table: bool,
    /// The SELECT that streams the rows in dump order.
    pub select: String,
    /// The same SELECT from a rowid on (`?1`), when SQL reaches the rowid: an incremental
    /// snapshot re-reads only the rows from there.
    pub select_from: Option<String>,
    /// The same SELECT of the rowids from `?1` to `?2` (both included), when SQL reaches the
    /// rowid: a whole read of a big table reads ranges on two connections.
    pub select_between: Option<String>,
    /// WITHOUT ROWID with `key_order`: the same SELECT from a key on, in two halves that the
    /// key's parenthesized SQL literals go between.
    pub select_from_key: Option<(String, String)>,
    /// The table's b-tree root page (0 for a virtual table).
    pub rootpage: u32,
    /// WITHOUT ROWID with an ascending primary key: the key columns in b-tree order, each as
    /// `"name" COLLATE "coll"` (the index's collation), so SQL can read from a key on.
    pub key_order: Option<Vec<String>>,
    /// The text each INSERT starts with, up to and including `VALUES(`.
    pub insert_prefix: String,
    pub key: Key,
    pub rowid_from: RowidFrom,
    /// Positions (in the SELECT) of the columns written into the INSERT, in order.
    pub values: std::ops::Range<usize>,
    /// Positions (in the SELECT) of the columns that key the row when `key` is `Columns`.
    pub key_columns: Vec<usize>,
    /// Per entry of `key_columns`: the collation the primary key compares it with (BINARY,
    /// NOCASE or RTRIM; the column's own may differ), so a statement can find a row by its key.
    pub key_collations: Vec<String>,
    /// Positions (in the SELECT) of redacted columns, and what replaces their values.
    pub redacted: Vec<(usize, Placeholder)>,
    /// When every rowid alias is a column: a free temporary name the restore gives the column
    /// named `rowid` while it inserts rows with explicit rowids.
    pub rowid_column_temp: Option<String>,
    /// `CREATE INDEX` statements of this table, in sqlite_schema order ([`schema_order`]).
    pub indexes: Vec<Object>,
    /// Per entry of `values`: the column's name and affinity, and the values found that it
    /// converts on any write ([`affinity`](super::affinity)).
    pub stored_names: Vec<String>,
    pub affinities: Vec<Affinity>,
    pub converted: Converted,
}

impl Table {
    /// Warning lines for the values its rows held that restores give back converted.
    pub fn converted_lines(&self) -> Vec<String> {
        (self.converted).lines(&self.name, &self.stored_names, &self.affinities)
    }
}

pub struct Schema {
    pub pragmas: Pragmas,
    /// User tables (including virtual tables and their shadow tables), in dump order.
    pub tables: Vec<Table>,
    /// sqlite_sequence / sqlite_stat1 when present, dumped after all tables.
    pub sequence: Option<Table>,
    pub stat1: Option<Table>,
    /// A table name no object uses: the restore creates and drops an AUTOINCREMENT table of
    /// this name to make sqlite_sequence.
    pub sequence_maker: String,
    /// Views by name; triggers in sqlite_schema order ([`schema_order`]).
    pub views: Vec<Object>,
    pub triggers: Vec<Object>,
}

impl Schema {
    /// Whether the dump creates no table, view or trigger at all.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
            && self.sequence.is_none()
            && self.stat1.is_none()
            && self.views.is_empty()
            && self.triggers.is_empty()
    }
}

/// SQLite's default limit on result columns (`SQLITE_MAX_COLUMN`), which a table may reach.
const MAX_COLUMNS: usize = 2000;

/// One row of sqlite_schema.
struct Entry {
    kind: String,
    name: String,
    tbl_name: String,
    rootpage: i64,
    sql: Vec<u8>,
}

pub fn read_schema(conn: &Connection, filters: &Filters) -> Result<Schema> {
    let mut schema = read_text_schema(conn, filters).map_err(|e| match name_not_utf8(conn) {
        Some((what, fix)) => anyhow::anyhow!(
            "{what} is not valid UTF-8: sqlgit keeps names as text and cannot snapshot it \
             ({fix})"
        ),
        None => e,
    })?;
    // Held for the whole run: without the room a growing list leaves (up to 40%, 4 MiB for
    // 20,000 tables).
    schema.tables.shrink_to_fit();
    Ok(schema)
}

/// The first schema name that is not UTF-8 (SQLite stores what the C API was given), e.g.
/// `column "c\xfe" of table "t"`, and how to rename it.
fn name_not_utf8(conn: &Connection) -> Option<(String, &'static str)> {
    let mut stmt = conn
        .prepare(
            "SELECT s.type, s.name, c.name FROM sqlite_schema AS s \
             LEFT JOIN pragma_table_xinfo(s.name) AS c ON s.type = 'table'",
        )
        .ok()?;
    let mut rows = stmt.query([]).ok()?;
    let bytes =
        |v: rusqlite::types::ValueRef<'_>| v.as_bytes().map(<[u8]>::to_vec).unwrap_or_default();
    let shown = |b: &[u8]| format!("\"{}\"", b.escape_ascii());
    while let Ok(Some(row)) = rows.next() {
        let kind = String::from_utf8_lossy(&bytes(row.get_ref(0).ok()?)).into_owned();
        let object = bytes(row.get_ref(1).ok()?);
        let column = bytes(row.get_ref(2).ok()?);
        if std::str::from_utf8(&object).is_err() {
            let fix = match kind.as_str() {
                "table" => "rename it with ALTER TABLE … RENAME TO …",
                _ => "drop it and create it again under a UTF-8 name",
            };
            return Some((format!("the name of {kind} {}", shown(&object)), fix));
        }
        if std::str::from_utf8(&column).is_err() {
            let what = format!("column {} of {kind} {}", shown(&column), shown(&object));
            return Some((what, "rename it with ALTER TABLE … RENAME COLUMN …"));
        }
    }
    None
}

/// The header values a dump restores.
fn read_pragmas(conn: &Connection) -> Result<Pragmas> {
    let pragma = |name: &str| -> Result<rusqlite::types::Value> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .with_context(|| format!("read PRAGMA {name}"))
    };
    let encoding = match pragma("encoding")? {
        rusqlite::types::Value::Text(t) => t,
        _ => "UTF-8".into(),
    };
    let int = |v| match v {
        rusqlite::types::Value::Integer(i) => i,
        _ => 0,
    };
    Ok(Pragmas {
        encoding,
        user_version: int(pragma("user_version")?),
        application_id: int(pragma("application_id")?),
        page_size: int(pragma("page_size")?),
        auto_vacuum: int(pragma("auto_vacuum")?),
    })
}

fn read_text_schema(conn: &Connection, filters: &Filters) -> Result<Schema> {
    let pragmas = read_pragmas(conn)?;
    let mut stmt = conn.prepare(
        "SELECT type, name, tbl_name, rootpage, sql FROM sqlite_schema WHERE sql IS NOT NULL \
         ORDER BY rowid",
    )?;
    let mut entries: Vec<Entry> = stmt
        .query_map([], |r| {
            Ok(Entry {
                kind: r.get(0)?,
                name: r.get(1)?,
                tbl_name: r.get(2)?,
                rootpage: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                // Schema text is kept as stored, whatever its bytes.
                sql: r
                    .get_ref(4)?
                    .as_bytes()
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default(),
            })
        })?
        .collect::<rusqlite::Result<_>>()
        .context("read sqlite_schema")?;
    entries.sort_by(schema_order);
    let all_names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()
        .context("read sqlite_schema")?;

    let mut schema = Schema {
        pragmas,
        tables: Vec::with_capacity(entries.iter().filter(|e| e.kind == "table").count()),
        sequence: None,
        stat1: None,
        sequence_maker: free_name("sqlgit_make_sequence", &all_names),
        views: Vec::new(),
        triggers: Vec::new(),
    };
    let none = Filters::default();
    let catalog = Catalog::read(conn, filters).context("read schema")?;
    let per_row = check(conn, filters, &catalog)?;
    // Asked once for all: `pragma_table_list(name)` looks at every table for each name, which
    // made reading the schema of 5,000 tables take a second.
    let without_rowid: std::collections::HashSet<String> = conn
        .prepare("SELECT name FROM pragma_table_list WHERE schema = 'main' AND wr")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()
        .context("read schema")?;
    let strict: std::collections::HashSet<String> = conn
        .prepare("SELECT name FROM pragma_table_list WHERE schema = 'main' AND strict")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()
        .context("read schema")?;
    let table = |e: &Entry, virtual_table: bool, filters: &Filters, rows: Option<String>| {
        let wr = (without_rowid.contains(&e.name), strict.contains(&e.name));
        let per_row: Vec<&str> = per_row
            .iter()
            .filter(|(t, _)| *t == e.name)
            .map(|(_, c)| c.as_str())
            .collect();
        table(conn, e, virtual_table, filters, (wr, &per_row), rows)
    };
    let left_out = |e: &Entry| {
        filters.leaves_out(&catalog, &e.tbl_name) || filters.leaves_out(&catalog, &e.name)
    };
    // Tables whose names sqlite_stat1 and sqlite_sequence must not show, and whose values the index samples of
    // sqlite_stat2/3/4 must not hold (samples are whole index keys).
    let excluded: Vec<&str> = entries
        .iter()
        .filter(|e| e.kind == "table" && left_out(e))
        .map(|e| e.name.as_str())
        .collect();
    let filtered = !filters.redact.is_empty() || !filters.exclude_tables.is_empty();
    let mut samples: Vec<&Entry> = Vec::new();
    for e in &entries {
        if left_out(e) {
            continue;
        }
        let object = || Object {
            name: e.name.clone(),
            sql: e.sql.clone(),
        };
        let stat = e.name.to_ascii_lowercase();
        match e.kind.as_str() {
            "table" if e.name == "sqlite_sequence" => {
                let rows = stat_rows(conn, e, filtered, &excluded)?;
                schema.sequence = Some(table(e, false, &none, rows)?)
            }
            "table" if e.name == "sqlite_stat1" => {
                let rows = stat_rows(conn, e, filtered, &excluded)?;
                schema.stat1 = Some(table(e, false, &none, rows)?)
            }
            "table"
                if matches!(
                    stat.as_str(),
                    "sqlite_stat2" | "sqlite_stat3" | "sqlite_stat4"
                ) =>
            {
                samples.push(e)
            }
            // Other `sqlite_` names (tables made with writable_schema) are kept as tables,
            // created the way writable_schema makes them (see shell::write_object). A shadow
            // table is dumped whole: filters name its virtual table.
            "table" => {
                let filters = if catalog.owner(&e.name).is_some() {
                    &none
                } else {
                    filters
                };
                schema
                    .tables
                    .push(table(e, e.rootpage == 0, filters, None)?)
            }
            "view" => schema.views.push(object()),
            "trigger" => schema.triggers.push(object()),
            _ => {}
        }
    }
    // stat2/3/4 of a SQLite built with them: a restore by a SQLite without STAT4 keeps their
    // rows. Samples of tables with redacted columns are left out with those of excluded tables.
    let mut hidden = excluded.clone();
    hidden.extend(
        schema
            .tables
            .iter()
            .filter(|t| !t.redacted.is_empty())
            .map(|t| t.name.as_str()),
    );
    let mut stats = Vec::new();
    for e in samples {
        let rows = stat_rows(conn, e, filtered, &hidden)?;
        stats.push(table(e, false, &none, rows)?);
    }
    schema.tables.extend(stats);
    // Looked up by name, not searched: 20,000 tables of an index each were 200 million
    // comparisons.
    let mut by_name = std::collections::HashMap::new();
    for (i, t) in schema.tables.iter().enumerate() {
        by_name.entry(t.name.clone()).or_insert(i);
    }
    for e in &entries {
        if e.kind == "index"
            && let Some(&i) = by_name.get(&e.tbl_name)
        {
            let t = &mut schema.tables[i];
            t.indexes.push(Object {
                name: e.name.clone(),
                sql: e.sql.clone(),
            });
        }
    }
    // Dump order is the order git sorts the table folders in (a folder sorts as "name/").
    // Folder names are unique; unstable sorting needs no copy of the list.
    (schema.tables).sort_unstable_by(|a, b| folder_order(&a.dir, &b.dir));
    Ok(schema)
}

/// The order the dump writes sqlite_schema's rows in (a stable sort of them in rowid order).
/// Triggers and indexes keep sqlite_schema's order, which SQLite loads them in: it fires a
/// table's triggers for one event newest first, and lists a table's indexes (`PRAGMA
/// index_list`, and the planner's pick between indexes of equal cost) newest first, so a restore
/// that creates them in that order behaves the same. The rest by name (tables are placed by
/// folder name later; the order of views changes nothing).
fn schema_order(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    let kept = |e: &Entry| matches!(e.kind.as_str(), "trigger" | "index");
    match (kept(a), kept(b)) {
        (true, true) => std::cmp::Ordering::Equal,
        (false, false) => a.name.as_bytes().cmp(b.name.as_bytes()),
        (a, b) => a.cmp(&b),
    }
}

/// How git orders two folders: as their names followed by "/".
fn folder_order(a: &str, b: &str) -> std::cmp::Ordering {
    let slash = std::iter::once(b'/');
    a.bytes().chain(slash.clone()).cmp(b.bytes().chain(slash))
}

/// The condition that keeps the rows of a statistics table (or sqlite_sequence) about kept
/// tables only, when filters are on (None without filters: every row is kept, as stored, or
/// when the table has no `tbl`/`name` column). A row's table is what its `tbl` (`name`) says
/// and, for an index's row, the table its `idx` belongs to now: ALTER TABLE RENAME leaves the
/// old name in `tbl`, so a row naming no current table, or an index of no table, is left out
/// (its samples are whole index keys of a table that may be hidden). Names compare ASCII
/// case-insensitively, as SQLite's do.
fn stat_rows(
    conn: &Connection,
    e: &Entry,
    filtered: bool,
    hidden: &[&str],
) -> Result<Option<String>> {
    let has = |column: &str| -> Result<bool> {
        conn.query_row(
            "SELECT count(*) FROM pragma_table_xinfo(?1) WHERE name = ?2",
            [&e.name, column],
            |r| r.get(0),
        )
        .with_context(|| format!("read columns of table {}", e.name))
    };
    if !filtered {
        return Ok(None);
    }
    let table = match e.name.eq_ignore_ascii_case("sqlite_sequence") {
        true => "name",
        false => "tbl",
    };
    if !has(table)? {
        return Ok(None);
    }
    let mut list = Vec::new();
    for (i, name) in hidden.iter().enumerate() {
        if i > 0 {
            list.push(b',');
        }
        write_text(&mut list, name.as_bytes());
    }
    let list = String::from_utf8_lossy(&list);
    let not_hidden = |column: &str| match hidden.is_empty() {
        true => String::new(),
        false => format!(" AND {column} COLLATE NOCASE NOT IN ({list})"),
    };
    let mut condition = format!(
        "(EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = {table} COLLATE \
         NOCASE){}",
        not_hidden(table)
    );
    if table == "tbl" && has("idx")? {
        // The primary key of a WITHOUT ROWID table has the table's name as `idx`.
        condition.push_str(&format!(
            " AND (idx IS NULL OR idx = tbl COLLATE NOCASE OR EXISTS (SELECT 1 FROM \
             sqlite_schema WHERE type = 'index' AND name = idx COLLATE NOCASE{}))",
            not_hidden("tbl_name")
        ));
    }
    condition.push(')');
    Ok(Some(condition))
}

/// `base`, or `base_2`, `base_3`, … : the first that is not in `taken` (ASCII case-insensitive,
/// as SQLite compares names).
pub fn free_name(base: &str, taken: &[String]) -> String {
    let used = |n: &str| taken.iter().any(|t| t.eq_ignore_ascii_case(n));
    if !used(base) {
        return base.to_string();
    }
    (2..)
        .map(|i| format!("{base}_{i}"))
        .find(|n| !used(n))
        .expect("some name is free")
}
