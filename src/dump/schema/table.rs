//! One table as a dump reads and writes it: its columns (generated ones are not written), how
//! its rows are keyed (rowid, INTEGER PRIMARY KEY, or a WITHOUT ROWID primary key), the SELECTs
//! that read them in b-tree order (a WITHOUT ROWID table by an ORDER BY its key, also from a key
//! on when every key column ascends) and the `INSERT` that writes them back.

use anyhow::{Context, Result};
use rusqlite::Connection;

use super::{Entry, Filters, Key, MAX_COLUMNS, Placeholder, RowidFrom, Table, free_name};
use crate::dump::affinity::Affinity;
use crate::dump::literal::{quote_ident, quote_name};
use crate::dump::path::table_dir;

struct Column {
    name: String,
    pk: i64,
    notnull: bool,
    generated: bool,
    decl: String,
}

/// The `ORDER BY` terms of a WITHOUT ROWID table's b-tree order: each primary key column with
/// the key's collation, and `DESC` where the key descends. A plain scan is not that order: SQLite
/// answers it from a covering index whenever one exists (`NOT INDEXED` does not stop that on a
/// WITHOUT ROWID table), while this ORDER BY is met by the table's own b-tree, without a sort.
fn btree_order(conn: &Connection, name: &str) -> Result<Vec<String>> {
    conn.prepare(
        "SELECT x.name, x.\"desc\", x.coll FROM pragma_index_list(?1) AS l, \
         pragma_index_xinfo(l.name) AS x \
         WHERE l.origin = 'pk' AND x.key AND x.name NOT NULL ORDER BY x.seqno",
    )
    .and_then(|mut s| {
        s.query_map([name], |r| {
            let (col, desc, coll): (String, i64, Option<String>) =
                (r.get(0)?, r.get(1)?, r.get(2)?);
            let coll = quote_name(coll.as_deref().unwrap_or("BINARY"));
            let desc = if desc != 0 { " DESC" } else { "" };
            Ok(format!("{} COLLATE {coll}{desc}", quote_name(&col)))
        })?
        .collect()
    })
    .with_context(|| format!("read the key of table {name}"))
}

/// The primary key of a WITHOUT ROWID table in b-tree order, when every key column ascends.
fn key_order(conn: &Connection, name: &str) -> Result<Option<Vec<String>>> {
    let index: Option<String> = conn
        .query_row(
            "SELECT name FROM pragma_index_list(?1) WHERE origin = 'pk'",
            [name],
            |r| r.get(0),
        )
        .ok();
    let Some(index) = index else {
        return Ok(None);
    };
    let mut stmt = conn.prepare(
        "SELECT name, \"desc\", coll FROM pragma_index_xinfo(?1) WHERE key = 1 ORDER BY seqno",
    )?;
    let cols: Vec<(Option<String>, i64, Option<String>)> = stmt
        .query_map([&index], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut order = Vec::new();
    for (col, desc, coll) in cols {
        match (col, desc, coll) {
            (Some(col), 0, Some(coll)) => order.push(format!(
                "{} COLLATE {}",
                quote_name(&col),
                quote_name(&coll)
            )),
            _ => return Ok(None),
        }
    }
    Ok((!order.is_empty()).then_some(order))
}

/// The columns of the primary key of WITHOUT ROWID table `name`, each with its collation.
fn key_collations(conn: &Connection, name: &str) -> Result<Vec<(String, String)>> {
    conn.prepare(
        "SELECT x.name, x.coll FROM pragma_index_list(?1) AS l, pragma_index_xinfo(l.name) AS x \
         WHERE l.origin = 'pk' AND x.key AND x.name NOT NULL AND x.coll NOT NULL ORDER BY x.seqno",
    )
    .and_then(|mut s| {
        s.query_map([name], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    })
    .with_context(|| format!("read the key of table {name}"))
}

/// Fail, naming it, when the primary key of WITHOUT ROWID table `name` uses a collation this
/// SQLite does not have (the application's own): its rows cannot be read in key order.
fn missing_collation(conn: &Connection, name: &str) -> Result<()> {
    let colls: Vec<String> = conn
        .prepare(
            "SELECT DISTINCT x.coll FROM pragma_index_list(?1) AS l, \
             pragma_index_xinfo(l.name) AS x WHERE l.origin = 'pk' AND x.key AND x.coll NOT NULL",
        )
        .and_then(|mut s| s.query_map([name], |r| r.get(0))?.collect())
        .with_context(|| format!("read the key of table {name}"))?;
    // SQLite lists a collation the schema names even without its code: try it.
    let missing = colls.into_iter().find(|coll| {
        let probe = format!("SELECT 'a' < 'b' COLLATE {}", quote_name(coll));
        conn.prepare(&probe).is_err()
    });
    match missing {
        Some(coll) => anyhow::bail!(
            "table {name}: its key uses collation {coll}, which only the application defines, \
             so sqlgit cannot read the table (leave it out with --exclude-table {}, or \
             change the key to a built-in collation: BINARY, NOCASE, RTRIM)",
            crate::shellword::quote(name)
        ),
        None => Ok(()),
    }
}

fn columns(conn: &Connection, name: &str) -> Result<(Vec<Column>, bool)> {
    let ctx = || format!("read columns of table {name}");
    let columns: Vec<Column> = conn
        .prepare("SELECT name, pk, hidden, \"notnull\", type FROM pragma_table_xinfo(?1)")
        .and_then(|mut s| {
            s.query_map([name], |r| {
                Ok(Column {
                    name: r.get(0)?,
                    pk: r.get(1)?,
                    generated: matches!(r.get::<_, i64>(2)?, 2 | 3),
                    notnull: r.get::<_, i64>(3)? != 0,
                    decl: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                })
            })?
            .collect()
        })
        .with_context(ctx)?;
    let pk_index = conn
        .query_row(
            "SELECT count(*) FROM pragma_index_list(?1) WHERE origin = 'pk'",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .with_context(ctx)?
        > 0;
    Ok((columns, pk_index))
}

pub(super) fn table(
    conn: &Connection,
    e: &Entry,
    virtual_table: bool,
    filters: &Filters,
    ((without_rowid, strict), per_row): ((bool, bool), &[&str]),
    rows: Option<String>,
) -> Result<Table> {
    let name = e.name.as_str();
    let mut t = Table {
        name: name.to_string(),
        dir: table_dir(name),
        sql: e.sql.clone(),
        virtual_table,
        select: String::new(),
        select_from: None,
        select_between: None,
        select_from_key: None,
        rootpage: u32::try_from(e.rootpage).unwrap_or(0),
        key_order: None,
        insert_prefix: String::new(),
        key: Key::Columns,
        rowid_from: RowidFrom::Nowhere,
        values: 0..0,
        key_columns: Vec::new(),
        key_collations: Vec::new(),
        redacted: Vec::new(),
        rowid_column_temp: None,
        indexes: Vec::new(),
        stored_names: Vec::new(),
        affinities: Vec::new(),
        converted: Default::default(),
    };
    if virtual_table {
        return Ok(t); // its data lives in its shadow tables, which are dumped as tables
    }
    let (columns, pk_index) = columns(conn, name)?;
    let ipk = (!without_rowid && !pk_index)
        .then(|| {
            columns
                .iter()
                .filter(|c| !c.generated)
                .position(|c| c.pk > 0)
        })
        .flatten();
    let stored: Vec<&Column> = columns.iter().filter(|c| !c.generated).collect();
    let any_generated = stored.len() != columns.len();
    let alias = ["rowid", "_rowid_", "oid"]
        .into_iter()
        .find(|alias| !columns.iter().any(|c| c.name.eq_ignore_ascii_case(alias)));

    let mut quoted: Vec<String> = stored.iter().map(|c| quote_ident(&c.name)).collect();
    let table = quote_ident(name);
    let mut select_cols: Vec<String> = Vec::new();
    let mut insert_cols: Vec<String> = Vec::new();
    let mut order_by = String::new();
    // The expression that is the rowid, when SQL reaches it.
    let mut rowid_expr: Option<String> = None;
    if without_rowid {
        t.key = Key::Columns;
        let mut pk: Vec<(i64, usize)> = stored
            .iter()
            .enumerate()
            .filter(|(_, c)| c.pk > 0)
            .map(|(i, c)| (c.pk, i))
            .collect();
        pk.sort();
        t.key_columns = pk.into_iter().map(|(_, i)| i).collect();
        missing_collation(conn, name)?;
        let colls = key_collations(conn, name)?;
        t.key_collations = (t.key_columns.iter())
            .map(|&i| {
                let coll = colls.iter().find(|(c, _)| *c == stored[i].name);
                coll.map_or_else(|| "BINARY".to_string(), |(_, k)| k.clone())
            })
            .collect();
        t.key_order = key_order(conn, name)?;
        order_by = format!(" ORDER BY {}", btree_order(conn, name)?.join(","));
    } else if let Some(pos) = ipk {
        // The INTEGER PRIMARY KEY column is the rowid.
        t.key = Key::Rowid { emit: false };
        t.rowid_from = RowidFrom::Select(pos);
        order_by = format!(" ORDER BY {}", quote_name(&stored[pos].name));
        rowid_expr = Some(quote_name(&stored[pos].name));
    } else {
        t.key = Key::Rowid { emit: true };
        match alias {
            Some(alias) if stored.len() < MAX_COLUMNS => {
                t.rowid_from = RowidFrom::Select(0);
                select_cols.push(alias.to_string());
                order_by = format!(" ORDER BY {alias}");
                rowid_expr = Some(alias.to_string());
            }
            _ => {
                // Rows come in b-tree (rowid) order from a plain scan; the b-tree gives the rowids.
                let rootpage = u32::try_from(e.rootpage)
                    .with_context(|| format!("table {name} has no root page"))?;
                t.rowid_from = RowidFrom::Btree { rootpage };
            }
        }
        let alias = match alias {
            Some(a) => a,
            None => {
                // Free `rowid` while restoring: rename the column, insert, rename it back.
                let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
                let temp = free_name("sqlgit_rowid", &names);
                for (q, c) in quoted.iter_mut().zip(&stored) {
                    if c.name.eq_ignore_ascii_case("rowid") {
                        *q = quote_ident(&temp);
                    }
                }
                t.rowid_column_temp = Some(temp);
                "rowid"
            }
        };
        insert_cols.push(alias.to_string());
    }
    let offset = select_cols.len();
    t.values = offset..offset + stored.len();
    t.stored_names = stored.iter().map(|c| c.name.clone()).collect();
    t.affinities = (stored.iter())
        .map(|c| Affinity::of_declared(&c.decl, strict))
        .collect();
    for (i, c) in stored.iter().enumerate() {
        if filters.redacts(name, &c.name) {
            if c.pk > 0 {
                anyhow::bail!(
                    "cannot redact {name}.{}: it is part of the primary key",
                    c.name
                );
            }
            let placeholder = match c.notnull {
                false => Placeholder::Null,
                true if per_row.contains(&c.name.as_str()) => Placeholder::PerRow,
                true => Placeholder::Fixed,
            };
            t.redacted.push((offset + i, placeholder));
        }
    }
    let read_cols: Vec<String> = stored.iter().map(|c| quote_name(&c.name)).collect();
    select_cols.extend(read_cols);
    // Only the rows that `rows` keeps (statistics of tables the dump leaves out are left out).
    let only = rows
        .as_ref()
        .map(|c| format!(" WHERE {c}"))
        .unwrap_or_default();
    t.select = format!(
        "SELECT {} FROM {} NOT INDEXED{only}{order_by}",
        select_cols.join(","),
        quote_name(name)
    );
    // The same SELECT of some rowids only.
    let select_where = |condition: String| {
        let also = rows
            .as_ref()
            .map(|c| format!(" AND ({c})"))
            .unwrap_or_default();
        format!(
            "SELECT {} FROM {} NOT INDEXED WHERE {condition}{also}{order_by}",
            select_cols.join(","),
            quote_name(name)
        )
    };
    // A table whose rows are filtered is read whole: reads in part and by ranges count rows by
    // the b-tree's cells.
    let rowid_expr = rowid_expr.filter(|_| rows.is_none());
    t.select_from = rowid_expr
        .as_ref()
        .map(|key| select_where(format!("{key} >= ?1")));
    t.select_between = rowid_expr.map(|key| select_where(format!("{key} >= ?1 AND {key} <= ?2")));
    // From a key on: the key's literals go between the two halves.
    t.select_from_key = t.key_order.as_ref().map(|order| {
        let also = rows
            .as_ref()
            .map(|c| format!(" AND ({c})"))
            .unwrap_or_default();
        let head = format!(
            "SELECT {} FROM {} NOT INDEXED WHERE ({}) >= ",
            select_cols.join(","),
            quote_name(name),
            order.join(",")
        );
        (head, format!("{also}{order_by}"))
    });
    let explicit_columns = !insert_cols.is_empty() || any_generated;
    insert_cols.extend(quoted);
    t.insert_prefix = if explicit_columns {
        format!("INSERT INTO {table}({}) VALUES(", insert_cols.join(","))
    } else {
        format!("INSERT INTO {table} VALUES(")
    };
    Ok(t)
}
