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

use anyhow::{Result, bail};
use rusqlite::Connection;

use super::shell::{content_option, mentions, table_option};
use super::viewreads::is_view;

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
fn table_columns(conn: &Connection) -> Result<Vec<(String, Vec<String>)>> {
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

/// Refuse filters the dump cannot honour (see the module's doc): run before anything is read.
/// Returns the redacted NOT NULL columns that a UNIQUE index keys on: they get a placeholder
/// of their own in every row (`(redacted ROWID)`, see `rows::write_redacted`).
pub fn check(
    conn: &Connection,
    filters: &Filters,
    catalog: &Catalog,
) -> Result<Vec<(String, String)>> {
    let mut per_row = Vec::new();
    if filters.redact.is_empty() && filters.exclude_tables.is_empty() {
        return Ok(per_row);
    }
    let tables = table_columns(conn)?;
    let kept = |t: &str| !filters.leaves_out(catalog, t);
    for (table, columns) in &tables {
        if !kept(table) || catalog.owner(table).is_some() {
            continue;
        }
        if catalog.is_virtual(table) {
            check_virtual(conn, filters, catalog, table, columns)?;
            continue;
        }
        for column in columns.iter().filter(|c| filters.redacts(table, c)) {
            let unique = check_redaction(conn, filters, catalog, table, column)
                .map_err(|e| e.context(format!("cannot redact {table}.{column}")))?;
            if unique {
                per_row.push((table.clone(), column.clone()));
            }
        }
    }
    Ok(per_row)
}

/// A virtual table's columns cannot be redacted (its data is in its shadow tables, in the
/// module's own format), and a full-text index of another table (`content=T`) holds that
/// table's text: T may be left out or redacted only with the index.
fn check_virtual(
    conn: &Connection,
    filters: &Filters,
    catalog: &Catalog,
    table: &str,
    columns: &[String],
) -> Result<()> {
    if let Some(column) = columns.iter().find(|c| filters.redacts(table, c)) {
        bail!(
            "cannot redact {table}.{column}: {table} is a virtual table, whose data its shadow \
             tables keep in the module's own format; leave it out instead (--exclude-table \
             {table})"
        );
    }
    let sql = table_sql(conn, table)?;
    let Some(content) = content_option(&sql) else {
        return Ok(());
    };
    if is_view(conn, &content)? {
        return check_view_content(conn, filters, catalog, table, &content);
    }
    if filters.leaves_out(catalog, &content) {
        bail!(
            "cannot exclude {content}: the full-text index {table} (content={content}) keeps its \
             text in its shadow tables; exclude {table} too (--exclude-table {table})"
        );
    }
    // Names as SQLite resolves them: ASCII case-insensitive. The content_rowid column's values
    // are the index's rowids.
    let rowid = table_option(&sql, "content_rowid");
    let indexed = |c: &String| {
        columns.is_empty()
            || columns.iter().any(|v| v.eq_ignore_ascii_case(c))
            || rowid.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(c))
    };
    let content_columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_xinfo(?1)")?
        .query_map([&content], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if let Some(c) = content_columns
        .iter()
        .find(|c| filters.redacts(&content, c) && indexed(c))
    {
        bail!(
            "cannot redact {content}.{c}: the full-text index {table} (content={content}) keeps \
             its words in its shadow tables; exclude {table} too (--exclude-table {table})"
        );
    }
    Ok(())
}

/// A full-text index whose content is the view `view` keeps the text of the tables the view
/// reads: none of them may be left out or redacted without the index, and when sqlgit cannot
/// tell which tables it reads, no filter is applied while the index is kept.
fn check_view_content(
    conn: &Connection,
    filters: &Filters,
    catalog: &Catalog,
    table: &str,
    view: &str,
) -> Result<()> {
    let filtered = |t: &str| -> Result<bool> {
        if filters.leaves_out(catalog, t) {
            return Ok(true);
        }
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_xinfo(?1)")?
            .query_map([t], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(columns.iter().any(|c| filters.redacts(t, c)))
    };
    let why = match super::viewreads::tables_read(conn, view) {
        Ok(tables) => {
            let mut hit = None;
            for t in tables {
                if filtered(&t)? {
                    hit = Some(t);
                    break;
                }
            }
            match hit {
                Some(t) => format!("it reads {t}, which the filters leave out or redact"),
                None => return Ok(()),
            }
        }
        Err(e) => format!("sqlgit cannot tell which tables the view reads ({e:#})"),
    };
    bail!(
        "cannot apply the filters: the full-text index {table} keeps the text of the view \
         {view} (content={view}) in its shadow tables, and {why}; exclude {table} too \
         (--exclude-table {table})"
    )
}

/// A redacted value is NULL, or in a NOT NULL column a placeholder: refuse where the
/// placeholder could not be restored (an index expression, partial index or generated column
/// computing on the column, which could collide or fail on it), or where another table keeps
/// the same values (a foreign key to the column). True when the column is NOT NULL and a
/// UNIQUE index keys on it (its placeholders must differ from row to row).
fn check_redaction(
    conn: &Connection,
    filters: &Filters,
    catalog: &Catalog,
    table: &str,
    column: &str,
) -> Result<bool> {
    let (cid, notnull, has_generated): (i64, bool, bool) = conn.query_row(
        "SELECT (SELECT cid FROM pragma_table_xinfo(?1) WHERE name = ?2), \
                (SELECT \"notnull\" FROM pragma_table_xinfo(?1) WHERE name = ?2), \
                (SELECT count(*) FROM pragma_table_xinfo(?1) WHERE hidden IN (2, 3))",
        [table, column],
        |r| {
            Ok((
                r.get::<_, Option<i64>>(0)?.unwrap_or(-1),
                r.get::<_, Option<bool>>(1)?.unwrap_or(false),
                r.get(2)?,
            ))
        },
    )?;
    let pk: bool = conn.query_row(
        "SELECT count(*) FROM pragma_table_xinfo(?1) WHERE name = ?2 AND pk > 0",
        [table, column],
        |r| r.get(0),
    )?;
    if pk {
        bail!("it is part of the primary key");
    }
    let mut stmt = conn.prepare(
        "SELECT l.name, l.\"unique\", l.partial, \
                (SELECT count(*) FROM pragma_index_xinfo(l.name) WHERE key AND cid = ?2), \
                (SELECT count(*) FROM pragma_index_xinfo(l.name) WHERE key AND cid = -2), \
                (SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = l.name) \
         FROM pragma_index_list(?1) AS l",
    )?;
    let mut rows = stmt.query(rusqlite::params![table, cid])?;
    let mut unique_key = false;
    while let Some(r) = rows.next()? {
        let (index, unique, partial): (String, bool, bool) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let (direct, expressions): (i64, i64) = (r.get(3)?, r.get(4)?);
        let sql: Option<String> = r.get(5)?;
        let computes =
            (partial || expressions > 0) && sql.is_some_and(|s| mentions(s.as_bytes(), column) > 0);
        unique_key |= unique && notnull && direct > 0;
        if computes && (unique || notnull) {
            bail!(
                "index {index} computes on it (an expression or WHERE), which the placeholder \
                 could make collide or fail on restore; leave the table out instead"
            );
        }
    }
    if has_generated {
        let sql = table_sql(conn, table)?;
        if mentions(&sql, column) > 1 {
            bail!(
                "a generated column of {table} may compute on it, which the placeholder could \
                 break on restore; leave the table out instead"
            );
        }
    }
    check_references(conn, filters, catalog, table, column)?;
    Ok(unique_key)
}

/// Refuse when a kept table's foreign key points at `table`.`column` without being redacted
/// itself: it holds the same values.
fn check_references(
    conn: &Connection,
    filters: &Filters,
    catalog: &Catalog,
    table: &str,
    column: &str,
) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT m.name, f.\"from\" FROM sqlite_schema AS m, pragma_foreign_key_list(m.name) AS f \
         WHERE m.type = 'table' AND f.\"table\" = ?1 COLLATE NOCASE \
           AND f.\"to\" = ?2 COLLATE NOCASE",
    )?;
    let refs: Vec<(String, String)> = stmt
        .query_map([table, column], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (child, from) in refs {
        if !filters.leaves_out(catalog, &child) && !filters.redacts(&child, &from) {
            bail!(
                "{child}.{from} references it and keeps the same values; redact it too \
                 (--redact {child}.{from})"
            );
        }
    }
    Ok(())
}

/// The CREATE text of table `table` as stored (bytes: any encoding); empty when it has none.
fn table_sql(conn: &Connection, table: &str) -> Result<Vec<u8>> {
    Ok(conn.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [table],
        |r| {
            Ok(r.get_ref(0)?
                .as_bytes()
                .map(<[u8]>::to_vec)
                .unwrap_or_default())
        },
    )?)
}
