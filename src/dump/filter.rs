//! `--exclude-table` and `--redact`: which tables and values a dump leaves out, and the checks
//! that refuse a filter the dump could not honour — one that would leave the data in by another
//! path (a virtual table's shadow tables, a full-text index of the data, a foreign key holding
//! the same values) or make the snapshot unrestorable (a placeholder that breaks a UNIQUE index).
//!
//! Virtual tables keep their rows in shadow tables (FTS5 `t_data`, `t_content`, …, rtree
//! `t_node`, …), which are dumped as plain tables. Filters name the virtual table: a shadow
//! table is left out with its virtual table and never matched by a pattern on its own (a glob
//! such as `*.data` would otherwise rewrite and corrupt them).

use std::collections::HashMap;

use anyhow::Result;
use rusqlite::Connection;

/// What to leave out of a dump: whole tables (glob patterns, ASCII case-insensitive, like
/// SQLite's names) and column values (`table.column`; `*` matches any table).
#[derive(Clone, Debug, Default)]
pub struct Filters {
    pub exclude_tables: Vec<String>,
    pub redact: Vec<String>,
}

impl Filters {
    /// Whether a pattern names `table` (a virtual table or a plain one; see
    /// [`Filters::leaves_out`] for shadow tables).
    pub fn excludes(&self, table: &str) -> bool {
        self.exclude_tables.iter().any(|p| glob_match(p, table))
    }

    /// Whether the dump leaves `table` out: a shadow table goes with its virtual table.
    pub fn leaves_out(&self, catalog: &Catalog, table: &str) -> bool {
        self.excludes(catalog.owner(table).unwrap_or(table))
    }

    /// Whether an `--exclude-table` pattern or a `--redact` pattern's table is `table` itself,
    /// without `*` or `?`.
    fn names_exactly(&self, table: &str) -> bool {
        let tables = self
            .redact
            .iter()
            .filter_map(|s| s.rsplit_once('.').map(|(t, _)| t));
        let exact = |p: &str| !p.contains(['*', '?']) && p.eq_ignore_ascii_case(table);
        self.exclude_tables
            .iter()
            .map(String::as_str)
            .chain(tables)
            .any(exact)
    }

    pub fn redacts(&self, table: &str, column: &str) -> bool {
        self.redact
            .iter()
            .any(|spec| redaction_matches(spec, table, column))
    }
}

/// The virtual tables of a database and the shadow tables that hold their data.
#[derive(Default)]
pub struct Catalog {
    /// Virtual table names.
    virtual_tables: Vec<String>,
    /// Shadow table name (ASCII lower case) → its virtual table's name.
    owners: HashMap<String, String>,
}

impl Catalog {
    /// SQLite says which tables are shadow tables of the modules it has (FTS3/4/5, rtree, …);
    /// for a module it lacks, tables named `VTAB_…` are taken for its shadow tables (SQLite's
    /// own naming rule for them), except one a filter names exactly (no `*` or `?`): that is a
    /// table the user knows as theirs (`documents_private` beside a `documents` of sqlite-vec),
    /// and leaving it whole would let in what the filter keeps out.
    pub fn read(conn: &Connection, filters: &Filters) -> Result<Catalog> {
        let mut catalog = Catalog::default();
        let mut shadows = Vec::new();
        let mut plain = Vec::new();
        let mut stmt =
            conn.prepare("SELECT name, type FROM pragma_table_list WHERE schema = 'main'")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (name, kind): (String, String) = (r.get(0)?, r.get(1)?);
            match kind.as_str() {
                "virtual" => catalog.virtual_tables.push(name),
                "shadow" => shadows.push(name),
                "table" => plain.push(name),
                _ => {}
            }
        }
        let modules: Vec<String> = conn
            .prepare("SELECT name FROM pragma_module_list")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut unknown = Vec::new();
        for v in &catalog.virtual_tables {
            let sql: Option<String> = conn
                .query_row("SELECT sql FROM sqlite_schema WHERE name = ?1", [v], |r| {
                    r.get(0)
                })
                .ok()
                .flatten();
            let module = sql.as_deref().and_then(module_name).unwrap_or_default();
            if !modules.iter().any(|m| m.eq_ignore_ascii_case(&module)) {
                unknown.push(v.clone());
            }
        }
        for s in shadows {
            if let Some((owner, _)) = s.rsplit_once('_') {
                let owner = catalog.virtual_name(owner).unwrap_or(owner).to_string();
                catalog.owners.insert(s.to_ascii_lowercase(), owner);
            }
        }
        for t in plain {
            let owner = unknown.iter().find(|v| {
                t.len() > v.len() + 1
                    && t.as_bytes()[v.len()] == b'_'
                    && t[..v.len()].eq_ignore_ascii_case(v)
            });
            if let Some(owner) = owner
                && !filters.names_exactly(&t)
            {
                catalog.owners.insert(t.to_ascii_lowercase(), owner.clone());
            }
        }
        Ok(catalog)
    }

    fn virtual_name(&self, name: &str) -> Option<&str> {
        self.virtual_tables
            .iter()
            .find(|v| v.eq_ignore_ascii_case(name))
            .map(String::as_str)
    }

    pub fn is_virtual(&self, table: &str) -> bool {
        self.virtual_name(table).is_some()
    }

    /// The virtual table whose data `table` holds, when it is a shadow table.
    pub fn owner(&self, table: &str) -> Option<&str> {
        self.owners
            .get(&table.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// The module of `CREATE VIRTUAL TABLE name USING module(…)`.
fn module_name(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    let at = lower.find(" using ")? + " using ".len();
    let rest = sql[at..].trim_start();
    let end = rest
        .find(|c: char| c == '(' || c.is_whitespace())
        .unwrap_or(rest.len());
    Some(
        rest[..end]
            .trim_matches(['"', '\'', '`', '[', ']'])
            .to_string(),
    )
}

/// Whether the `--redact` pattern `spec` (`table.column`) names `table`.`column`.
fn redaction_matches(spec: &str, table: &str, column: &str) -> bool {
    match spec.rsplit_once('.') {
        Some((t, c)) => glob_match(t, table) && glob_match(c, column),
        None => false,
    }
}

/// Every table with its columns (none for a virtual table whose module SQLite lacks).
pub fn table_columns(conn: &Connection) -> Result<Vec<(String, Vec<String>)>> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for name in names {
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_xinfo(?1)")
            .and_then(|mut s| s.query_map([&name], |r| r.get(0))?.collect())
            .unwrap_or_default();
        out.push((name, columns));
    }
    Ok(out)
}

/// How a `redact` pattern misses a database's data.
#[derive(Debug, PartialEq)]
pub enum RedactionGap {
    /// Its table part names kept tables (these), none with a column its column part names: a
    /// column renamed or dropped (its values would be committed under the new name), or a typo.
    NoColumn(Vec<String>),
    /// Its table part names only tables the dump leaves out: nothing of them is committed.
    LeftOut,
    /// Its table part names no table; with the shadow table it names, if any, and its owner.
    NoTable(Option<(String, String)>),
}

/// The `redact` patterns that redact nothing in this database, and how each misses.
pub fn redaction_gaps(conn: &Connection, filters: &Filters) -> Result<Vec<(String, RedactionGap)>> {
    let catalog = Catalog::read(conn, filters)?;
    let tables = table_columns(conn)?;
    let mut gaps = Vec::new();
    for spec in &filters.redact {
        let Some((t, c)) = spec.rsplit_once('.') else {
            continue;
        };
        let named: Vec<&(String, Vec<String>)> = tables
            .iter()
            .filter(|(name, _)| glob_match(t, name))
            .collect();
        let plain = |name: &str| catalog.owner(name).is_none();
        let kept: Vec<&(String, Vec<String>)> = named
            .iter()
            .filter(|(name, _)| plain(name) && !filters.excludes(name))
            .copied()
            .collect();
        if kept
            .iter()
            .any(|(_, cols)| cols.iter().any(|col| glob_match(c, col)))
        {
            continue;
        }
        let gap = if !kept.is_empty() {
            RedactionGap::NoColumn(kept.iter().map(|(name, _)| name.clone()).collect())
        } else if named.iter().any(|(name, _)| plain(name)) {
            RedactionGap::LeftOut
        } else {
            let shadow = named
                .iter()
                .find(|(name, _)| !filters.leaves_out(&catalog, name));
            let owner = |name: &String| (name.clone(), catalog.owner(name).unwrap_or("").into());
            RedactionGap::NoTable(shadow.map(|(name, _)| owner(name)))
        };
        gaps.push((spec.clone(), gap));
    }
    Ok(gaps)
}

/// The tables a dump keeps (not left out, not a shadow table), with their columns.
pub fn kept_tables(conn: &Connection, filters: &Filters) -> Result<Vec<(String, Vec<String>)>> {
    let catalog = Catalog::read(conn, filters)?;
    let mut tables = table_columns(conn)?;
    tables.retain(|(t, _)| catalog.owner(t).is_none() && !filters.leaves_out(&catalog, t));
    Ok(tables)
}

/// The `--exclude-table` patterns of `filters` that match no table of the database (shadow
/// tables are not matched on their own).
pub fn unmatched_exclusions(conn: &Connection, filters: &Filters) -> Result<Vec<String>> {
    let catalog = Catalog::read(conn, filters)?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?
        .into_iter()
        .filter(|t| catalog.owner(t).is_none())
        .collect();
    Ok(filters
        .exclude_tables
        .iter()
        .filter(|p| !tables.iter().any(|t| glob_match(p, t)))
        .cloned()
        .collect())
}

/// The kept triggers whose SQL names a table the dump leaves out, one warning line each: a
/// restore keeps the trigger without the table, so every statement that fires it fails there.
/// (A name in the trigger's text, bare or quoted: a column of that name is taken for it too.)
pub fn dangling_triggers(conn: &Connection, filters: &Filters) -> Result<Vec<String>> {
    if filters.exclude_tables.is_empty() {
        return Ok(Vec::new());
    }
    let catalog = Catalog::read(conn, filters)?;
    let rows: Vec<(String, String, String, Option<String>)> = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let left_out: Vec<&str> = rows
        .iter()
        .filter(|(kind, name, ..)| kind == "table" && filters.leaves_out(&catalog, name))
        .map(|(_, name, ..)| name.as_str())
        .collect();
    let mut lines = Vec::new();
    for (kind, name, table, sql) in &rows {
        if kind != "trigger" || filters.leaves_out(&catalog, table) {
            continue;
        }
        let sql = sql.as_deref().unwrap_or_default().as_bytes();
        if let Some(gone) = left_out.iter().find(|t| super::shell::mentions(sql, t) > 0) {
            lines.push(format!(
                "trigger {name} on {table} names the excluded table {gone}: a restore keeps the \
                 trigger without the table, so every statement that fires it fails there (no \
                 such table); exclude {table} too, keep {gone}, or drop the trigger"
            ));
        }
    }
    Ok(lines)
}

/// `*` and `?` globbing, ASCII case-insensitive.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let n: Vec<char> = name.chars().map(|c| c.to_ascii_lowercase()).collect();
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

mod check;
pub use check::check;
