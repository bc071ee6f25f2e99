//! `compare_databases`: the exactness oracle for every round-trip test.
//!
//! "Looks the same in `SELECT *`" is not enough: the dump must give back each value's storage class,
//! the exact bits of every float (-0.0, subnormals), text as raw bytes (embedded NULs, invalid
//! UTF-8), the rowids of rowid tables, the pragmas applications rely on, and the schema text. This
//! module reads both databases with rusqlite and asserts all of that value by value, printing the
//! table, rowid (or primary key) and both values on the first mismatch.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::fmt::Write as _;
use std::path::Path;

/// Assert that `expected` (the source) and `actual` (e.g. a restored dump) hold the same content.
#[track_caller]
pub fn compare_databases(expected: &Path, actual: &Path) {
    let a = open(expected);
    let b = open(actual);
    let ctx = format!(
        "comparing {} (expected) with {} (actual)",
        expected.display(),
        actual.display()
    );

    for pragma in [
        "user_version",
        "application_id",
        "encoding",
        "page_size",
        "auto_vacuum",
    ] {
        let va: String = pragma_text(&a, pragma);
        let vb: String = pragma_text(&b, pragma);
        assert!(
            va == vb,
            "{ctx}: PRAGMA {pragma} differs: expected {va}, got {vb}"
        );
    }

    let sa = schema(&a);
    let sb = schema(&b);
    if sa != sb {
        let mut msg = format!("{ctx}: sqlite_schema differs (type, name, tbl_name, sql)\n");
        let show = |e: &SchemaEntry| {
            let sql = e.3.as_deref().map(escape).unwrap_or_default();
            format!("({:?}, {:?}, {:?}, {sql})", e.0, e.1, e.2)
        };
        for e in sa.iter().filter(|e| !sb.contains(e)) {
            writeln!(msg, "  only in expected: {}", show(e)).unwrap();
        }
        for e in sb.iter().filter(|e| !sa.contains(e)) {
            writeln!(msg, "  only in actual:   {}", show(e)).unwrap();
        }
        panic!("{msg}");
    }

    let (oa, ob) = (object_order(&a), object_order(&b));
    assert!(
        oa == ob,
        "{ctx}: the order of a table's triggers or indexes differs (the order SQLite fires \
         them in, lists them and plans with them):\n  expected {oa:?}\n  actual   {ob:?}"
    );

    for entry in sa.iter().filter(|e| e.0 == "table") {
        compare_table(&ctx, &a, &b, &entry.1);
    }
}

/// Per table (by name, lower case): its triggers in the order SQLite fires them (newest in
/// sqlite_schema first) and its indexes as `PRAGMA index_list` lists them.
pub fn object_order(conn: &Connection) -> Vec<(String, Vec<String>, Vec<String>)> {
    let strings = |sql: &str, arg: &str| -> Vec<String> {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([arg], |r| r.get(0)).unwrap();
        rows.map(|r| r.unwrap()).collect()
    };
    let tables = strings(
        "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND ?1 = ?1 \
         ORDER BY lower(name)",
        "",
    );
    let order = |t: &String| {
        let triggers = strings(
            "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND lower(tbl_name) = \
             lower(?1) ORDER BY rowid DESC",
            t,
        );
        let indexes = strings("SELECT name FROM pragma_index_list(?1)", t);
        (t.to_lowercase(), triggers, indexes)
    };
    tables.iter().map(order).collect()
}

fn open(path: &Path) -> Connection {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    conn
}

fn pragma_text(conn: &Connection, pragma: &str) -> String {
    conn.query_row(&format!("PRAGMA {pragma}"), [], |r| {
        Ok(render(r.get_ref(0)?))
    })
    .unwrap_or_else(|e| panic!("PRAGMA {pragma}: {e}"))
}

type SchemaEntry = (String, String, String, Option<Vec<u8>>);

/// The (type, name, tbl_name, sql) rows of sqlite_schema, sorted, the text as its raw bytes;
/// rootpage is storage detail.
fn schema(conn: &Connection) -> Vec<SchemaEntry> {
    let mut stmt = conn
        .prepare(
            "SELECT type, name, tbl_name, CAST(sql AS BLOB) FROM sqlite_schema ORDER BY type, name",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap();
    let mut v: Vec<SchemaEntry> = rows.map(|r| r.unwrap()).collect();
    v.sort();
    v
}

pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// How to read a table in a stable order: `SELECT <key>, * FROM t ORDER BY <order>`.
struct Plan {
    select: String,
    /// Number of leading key columns in the select (0 or 1 for the rowid).
    key_cols: usize,
    /// Column indexes (in the select) that identify a row in messages.
    ident_cols: Vec<usize>,
    /// For tables too wide to select the rowid beside every column: the rowids, in order,
    /// compared on their own.
    rowids: Option<String>,
}

fn plan(conn: &Connection, table: &str) -> Plan {
    let q = quote_ident(table);
    let (kind, without_rowid): (String, bool) = conn
        .query_row(
            "SELECT type, wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
            [table],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap_or_else(|e| panic!("pragma_table_list for {q}: {e}"));
    // (name, pk position) of every column, including generated ones.
    let cols: Vec<(String, i64)> = conn
        .prepare(
            "SELECT name, pk FROM pragma_table_xinfo(?1) WHERE hidden IN (0, 2, 3) ORDER BY cid",
        )
        .unwrap()
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    if without_rowid {
        let mut pk: Vec<(i64, usize)> = cols
            .iter()
            .enumerate()
            .filter(|c| c.1.1 > 0)
            .map(|(i, c)| (c.1, i))
            .collect();
        pk.sort();
        let order: Vec<String> = pk.iter().map(|&(_, i)| quote_ident(&cols[i].0)).collect();
        return Plan {
            select: format!("SELECT * FROM {q} ORDER BY {}", order.join(", ")),
            key_cols: 0,
            ident_cols: pk.iter().map(|&(_, i)| i).collect(),
            rowids: None,
        };
    }
    let shadowed = |alias: &str| cols.iter().any(|c| c.0.eq_ignore_ascii_case(alias));
    match ["rowid", "_rowid_", "oid"]
        .into_iter()
        .find(|a| !shadowed(a))
    {
        // One more column than SQLite's limit (2000): the rowids on their own.
        Some(alias) if cols.len() >= 2000 => Plan {
            select: format!("SELECT * FROM {q} ORDER BY {alias}"),
            key_cols: 0,
            ident_cols: vec![],
            rowids: Some(format!("SELECT {alias} FROM {q} ORDER BY {alias}")),
        },
        Some(alias) => Plan {
            select: format!("SELECT {alias}, * FROM {q} ORDER BY {alias}"),
            key_cols: 1,
            ident_cols: vec![0],
            rowids: None,
        },
        // Every rowid alias is a column name: the rowid cannot be named in SQL, so it cannot be
        // compared either; a plain scan of a rowid table still walks it in rowid order.
        None => {
            assert!(
                kind == "table",
                "{q}: {kind} with every rowid alias shadowed"
            );
            Plan {
                select: format!("SELECT * FROM {q}"),
                key_cols: 0,
                ident_cols: vec![],
                rowids: None,
            }
        }
    }
}

#[track_caller]
fn compare_table(ctx: &str, a: &Connection, b: &Connection, table: &str) {
    let plan = plan(a, table);
    if let Some(query) = &plan.rowids {
        let list = |c: &Connection| -> Vec<i64> {
            let mut stmt = c.prepare(query).unwrap();
            let rows = stmt.query_map([], |r| r.get(0)).unwrap();
            rows.map(Result::unwrap).collect()
        };
        assert!(
            list(a) == list(b),
            "{ctx}: table {}: rowids differ",
            quote_ident(table)
        );
    }
    let mut sa = a
        .prepare(&plan.select)
        .unwrap_or_else(|e| panic!("{}: {e}", plan.select));
    let mut sb = b
        .prepare(&plan.select)
        .unwrap_or_else(|e| panic!("{}: {e}", plan.select));
    let names: Vec<String> = sa.column_names().map(String::from).collect();
    let names_b: Vec<String> = sb.column_names().map(String::from).collect();
    assert!(
        names == names_b,
        "{ctx}: table {}: columns differ: {names:?} vs {names_b:?}",
        quote_ident(table)
    );
    let mut ra = sa.query([]).unwrap();
    let mut rb = sb.query([]).unwrap();
    let mut n = 0usize;
    loop {
        let row_a = ra
            .next()
            .unwrap_or_else(|e| panic!("{ctx}: reading expected {table:?}: {e}"));
        let row_b = rb
            .next()
            .unwrap_or_else(|e| panic!("{ctx}: reading actual {table:?}: {e}"));
        let (row_a, row_b) = match (row_a, row_b) {
            (None, None) => return,
            (Some(r), None) => panic!(
                "{ctx}: table {}: actual has only {n} rows; expected has more, next: {}",
                quote_ident(table),
                describe_row(r, &names)
            ),
            (None, Some(r)) => panic!(
                "{ctx}: table {}: expected has {n} rows; actual has more, next: {}",
                quote_ident(table),
                describe_row(r, &names)
            ),
            (Some(x), Some(y)) => (x, y),
        };
        for (i, name) in names.iter().enumerate() {
            let va = row_a.get_ref(i).unwrap();
            let vb = row_b.get_ref(i).unwrap();
            if !same(va, vb) {
                let id: Vec<String> = plan
                    .ident_cols
                    .iter()
                    .map(|&c| format!("{}={}", names[c], render(row_a.get_ref(c).unwrap())))
                    .collect();
                let what = if i < plan.key_cols { "rowid" } else { "column" };
                panic!(
                    "{ctx}: table {}, row #{n} ({}), {what} {}:\n  expected {}\n  got      {}{}",
                    quote_ident(table),
                    if id.is_empty() {
                        "no rowid name available".into()
                    } else {
                        id.join(", ")
                    },
                    quote_ident(name),
                    render(va),
                    render(vb),
                    first_byte_difference(va, vb)
                );
            }
        }
        n += 1;
    }
}

/// Same storage class and same value; REAL by bits, TEXT and BLOB by bytes.
fn same(a: ValueRef<'_>, b: ValueRef<'_>) -> bool {
    match (a, b) {
        (ValueRef::Null, ValueRef::Null) => true,
        (ValueRef::Integer(x), ValueRef::Integer(y)) => x == y,
        (ValueRef::Real(x), ValueRef::Real(y)) => x.to_bits() == y.to_bits(),
        (ValueRef::Text(x), ValueRef::Text(y)) => x == y,
        (ValueRef::Blob(x), ValueRef::Blob(y)) => x == y,
        _ => false,
    }
}

fn describe_row(row: &rusqlite::Row<'_>, names: &[String]) -> String {
    let parts: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{n}={}", render(row.get_ref(i).unwrap())))
        .collect();
    parts.join(", ")
}

/// A value with its storage class, exact enough to see why two differ.
pub fn render(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(i) => format!("INTEGER {i}"),
        ValueRef::Real(f) => format!("REAL {f:e} (bits {:#018x})", f.to_bits()),
        ValueRef::Text(t) => format!("TEXT({} bytes) {}", t.len(), escape(t)),
        ValueRef::Blob(b) => {
            let hex: String = b.iter().take(32).map(|x| format!("{x:02x}")).collect();
            format!(
                "BLOB({} bytes) x'{hex}{}'",
                b.len(),
                if b.len() > 32 { "..." } else { "" }
            )
        }
    }
}

/// For two TEXT or two BLOB values: where they first differ, with some bytes around it.
fn first_byte_difference(a: ValueRef<'_>, b: ValueRef<'_>) -> String {
    let (x, y) = match (a, b) {
        (ValueRef::Text(x), ValueRef::Text(y)) | (ValueRef::Blob(x), ValueRef::Blob(y)) => (x, y),
        _ => return String::new(),
    };
    let at = x
        .iter()
        .zip(y)
        .position(|(p, q)| p != q)
        .unwrap_or(x.len().min(y.len()));
    let window = |v: &[u8]| {
        let from = at.saturating_sub(16).min(v.len());
        v[from..(at + 16).min(v.len())].escape_ascii().to_string()
    };
    format!(
        "\n  first difference at byte {at}: expected ...{}... got ...{}...",
        window(x),
        window(y)
    )
}

fn escape(t: &[u8]) -> String {
    let shown = &t[..t.len().min(200)];
    let mut s: String = shown.escape_ascii().to_string();
    if let Ok(utf8) = std::str::from_utf8(shown)
        && !utf8.is_ascii()
    {
        write!(s, " = {utf8:?}").unwrap();
    }
    if t.len() > 200 {
        s.push_str("...");
    }
    format!("\"{s}\"")
}
