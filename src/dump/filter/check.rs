//! The checks that refuse a filter the dump could not honour (see [`super`]): a virtual table's
//! columns, a full-text index or view holding a left-out table's data, a redaction a UNIQUE
//! index or a foreign key would see through. Run before anything is read.

use anyhow::{Result, bail};
use rusqlite::Connection;

use super::super::shell::{content_option, index_mentions, mentions, table_option};
use super::super::viewreads::is_view;
use super::{Catalog, Filters, table_columns};

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
             text in its shadow tables; exclude {table} too (--exclude-table {})",
            crate::shellword::quote(table)
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
             its words in its shadow tables; exclude {table} too (--exclude-table {})",
            crate::shellword::quote(table)
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
    let why = match super::super::viewreads::tables_read(conn, view) {
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
         (--exclude-table {})",
        crate::shellword::quote(table)
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
        // Where the index reads it: in an expression of its keys (more mentions in the key
        // list than keys on the column itself), in a partial index's WHERE.
        let sql = sql.unwrap_or_default();
        let (in_expression, in_where) = match index_mentions(sql.as_bytes(), column) {
            Some((keys, clause)) => (expressions > 0 && keys as i64 > direct, clause > 0),
            None => {
                let any = (partial || expressions > 0) && mentions(sql.as_bytes(), column) > 0;
                (any, any)
            }
        };
        unique_key |= unique && notnull && direct > 0;
        let computes = match (in_expression, partial && in_where) {
            (_, true) => Some("the WHERE of this partial index reads it"),
            (true, false) => Some("an expression of its keys computes on it"),
            (false, false) => None,
        };
        if let Some(how) = computes.filter(|_| unique || notnull) {
            bail!(
                "index {index}: {how}, which the placeholder could make collide or fail on \
                 restore; leave the table out instead"
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
                 (--redact {})",
                crate::shellword::quote(&format!("{child}.{from}"))
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
