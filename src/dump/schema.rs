//! Reads what a dump needs to know about a database: its tables (with how to read their rows in
//! a stable order and how to write them back with their rowids), indexes, views, triggers, and
//! the header pragmas.

use anyhow::{Context, Result};
use rusqlite::Connection;

use super::literal::quote_ident;
use super::path::table_dir;

/// Header values restored by the dump.
pub struct Pragmas {
    /// `UTF-8`, `UTF-16le` or `UTF-16be`.
    pub encoding: String,
    pub user_version: i64,
    pub application_id: i64,
}

/// How a table's rows are keyed (the chunk names and boundaries come from the key).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Key {
    /// Rowid table: the first selected column is the rowid; `emit` says whether it is written
    /// into the INSERT (no INTEGER PRIMARY KEY holds it already).
    Rowid { emit: bool },
    /// WITHOUT ROWID table, or a rowid table whose rowid no name can reach: rows are read in
    /// b-tree order and keyed by these selected columns (the primary key, or all columns).
    Columns,
}

pub struct Table {
    pub name: String,
    /// Folder name in the snapshot tree.
    pub dir: String,
    /// `CREATE TABLE` text as stored in sqlite_schema.
    pub sql: String,
    pub virtual_table: bool,
    /// The SELECT that streams the rows in dump order.
    pub select: String,
    /// The text each INSERT starts with, up to and including `VALUES(`.
    pub insert_prefix: String,
    pub key: Key,
    /// Positions (in the SELECT) of the columns that key the row when `key` is `Columns`.
    pub key_columns: Vec<usize>,
    /// Positions (in the SELECT) of redacted columns, and whether each is NOT NULL.
    pub redacted: Vec<(usize, bool)>,
    /// `CREATE INDEX` statements of this table, by index name.
    pub indexes: Vec<String>,
}

pub struct Schema {
    pub pragmas: Pragmas,
    /// User tables (including virtual tables and their shadow tables), in dump order.
    pub tables: Vec<Table>,
    /// sqlite_sequence / sqlite_stat1 when present, dumped after all tables.
    pub sequence: Option<Table>,
    pub stat1: Option<Table>,
    /// Whether a table still declares AUTOINCREMENT (else sqlite_sequence must be made).
    pub has_autoincrement: bool,
    pub views: Vec<String>,
    pub triggers: Vec<String>,
}

/// What to leave out of a dump: whole tables (glob patterns, ASCII case-insensitive, like
/// SQLite's names) and column values (`table.column`; `*` matches any table).
#[derive(Clone, Debug, Default)]
pub struct Filters {
    pub exclude_tables: Vec<String>,
    pub redact: Vec<String>,
}

impl Filters {
    pub fn excludes(&self, table: &str) -> bool {
        self.exclude_tables.iter().any(|p| glob_match(p, table))
    }

    fn redacts(&self, table: &str, column: &str) -> bool {
        self.redact.iter().any(|spec| match spec.rsplit_once('.') {
            Some((t, c)) => glob_match(t, table) && glob_match(c, column),
            None => false,
        })
    }
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

pub fn read_schema(conn: &Connection, filters: &Filters) -> Result<Schema> {
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
    let pragmas = Pragmas {
        encoding,
        user_version: int(pragma("user_version")?),
        application_id: int(pragma("application_id")?),
    };

    let mut stmt = conn.prepare(
        "SELECT type, name, tbl_name, rootpage, sql FROM sqlite_schema WHERE sql IS NOT NULL",
    )?;
    let mut entries: Vec<(String, String, String, i64, String)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()
        .context("read sqlite_schema")?;
    entries.sort_by(|a, b| a.1.as_bytes().cmp(b.1.as_bytes()));

    let mut schema = Schema {
        pragmas,
        tables: Vec::new(),
        sequence: None,
        stat1: None,
        has_autoincrement: false,
        views: Vec::new(),
        triggers: Vec::new(),
    };
    for (kind, name, tbl_name, rootpage, sql) in &entries {
        if filters.excludes(tbl_name) || filters.excludes(name) {
            continue;
        }
        match kind.as_str() {
            "table" if name == "sqlite_sequence" => {
                schema.sequence = Some(table(conn, name, sql, false, &Filters::default())?)
            }
            "table" if name == "sqlite_stat1" => {
                schema.stat1 = Some(table(conn, name, sql, false, &Filters::default())?)
            }
            "table" if name.starts_with("sqlite_") => {} // stat2/3/4: build-specific, not restorable
            "table" => {
                schema.has_autoincrement |= sql.to_ascii_uppercase().contains("AUTOINCREMENT");
                schema
                    .tables
                    .push(table(conn, name, sql, *rootpage == 0, filters)?)
            }
            "view" => schema.views.push(sql.clone()),
            "trigger" => schema.triggers.push(sql.clone()),
            _ => {}
        }
    }
    for (kind, _, tbl_name, _, sql) in &entries {
        if kind == "index"
            && let Some(t) = schema.tables.iter_mut().find(|t| t.name == *tbl_name)
        {
            t.indexes.push(sql.clone());
        }
    }
    // Dump order is the order git sorts the table folders in (a folder sorts as "name/").
    schema
        .tables
        .sort_by(|a, b| format!("{}/", a.dir).cmp(&format!("{}/", b.dir)));
    Ok(schema)
}

struct Column {
    name: String,
    pk: i64,
    notnull: bool,
    generated: bool,
}

fn table(
    conn: &Connection,
    name: &str,
    sql: &str,
    virtual_table: bool,
    filters: &Filters,
) -> Result<Table> {
    let mut t = Table {
        name: name.to_string(),
        dir: table_dir(name),
        sql: sql.to_string(),
        virtual_table,
        select: String::new(),
        insert_prefix: String::new(),
        key: Key::Columns,
        key_columns: Vec::new(),
        redacted: Vec::new(),
        indexes: Vec::new(),
    };
    if virtual_table {
        return Ok(t); // its data lives in its shadow tables, which are dumped as tables
    }
    let ctx = || format!("read columns of table {name}");
    let columns: Vec<Column> = conn
        .prepare("SELECT name, pk, hidden, \"notnull\" FROM pragma_table_xinfo(?1)")
        .and_then(|mut s| {
            s.query_map([name], |r| {
                Ok(Column {
                    name: r.get(0)?,
                    pk: r.get(1)?,
                    generated: matches!(r.get::<_, i64>(2)?, 2 | 3),
                    notnull: r.get::<_, i64>(3)? != 0,
                })
            })?
            .collect()
        })
        .with_context(ctx)?;
    let pk_index: bool = conn
        .query_row(
            "SELECT count(*) FROM pragma_index_list(?1) WHERE origin = 'pk'",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .with_context(ctx)?
        > 0;
    let without_rowid = conn
        .query_row("SELECT wr FROM pragma_table_list(?1)", [name], |r| {
            r.get::<_, i64>(0)
        })
        .with_context(ctx)?
        != 0;
    let has_ipk = !without_rowid && !pk_index && columns.iter().any(|c| c.pk > 0);
    let stored: Vec<&Column> = columns.iter().filter(|c| !c.generated).collect();
    let any_generated = stored.len() != columns.len();
    let rowid_alias = ["rowid", "_rowid_", "oid"]
        .into_iter()
        .find(|alias| !columns.iter().any(|c| c.name.eq_ignore_ascii_case(alias)));

    let quoted: Vec<String> = stored.iter().map(|c| quote_ident(&c.name)).collect();
    let table = quote_ident(name);
    let mut select_cols = Vec::new();
    let mut insert_cols = Vec::new();
    let mut order_by = String::new();
    match (without_rowid, rowid_alias) {
        (false, Some(alias)) => {
            t.key = Key::Rowid { emit: !has_ipk };
            select_cols.push(alias.to_string());
            if !has_ipk {
                insert_cols.push(alias.to_string());
            }
            order_by = format!(" ORDER BY {alias}");
        }
        _ => {
            // b-tree order: primary key order for WITHOUT ROWID, rowid order otherwise.
            t.key = Key::Columns;
            let mut pk: Vec<(i64, usize)> = stored
                .iter()
                .enumerate()
                .filter(|(_, c)| c.pk > 0)
                .map(|(i, c)| (c.pk, i))
                .collect();
            pk.sort();
            t.key_columns = if pk.is_empty() {
                (0..stored.len()).collect()
            } else {
                pk.into_iter().map(|(_, i)| i).collect()
            };
        }
    }
    let offset = select_cols.len();
    for (i, c) in stored.iter().enumerate() {
        if filters.redacts(name, &c.name) {
            if c.pk > 0 {
                anyhow::bail!(
                    "cannot redact {name}.{}: it is part of the primary key",
                    c.name
                );
            }
            t.redacted.push((offset + i, c.notnull));
        }
    }
    select_cols.extend(quoted.iter().cloned());
    t.select = format!(
        "SELECT {} FROM {table} NOT INDEXED{order_by}",
        select_cols.join(",")
    );
    let explicit_columns = !insert_cols.is_empty() || any_generated;
    insert_cols.extend(quoted);
    t.insert_prefix = if explicit_columns {
        format!("INSERT INTO {table}({}) VALUES(", insert_cols.join(","))
    } else {
        format!("INSERT INTO {table} VALUES(")
    };
    Ok(t)
}
