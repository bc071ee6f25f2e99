//! What in a restored database SQL cannot make exact, found in its schema: values the SQLite
//! that restores or reads it computes (STORED generated columns, indexes on expressions, partial
//! indexes, indexes on VIRTUAL generated columns, defaults of columns added by ALTER TABLE
//! that SQLite versions read differently), and virtual tables whose module this SQLite lacks,
//! which are checked through their shadow tables only. Each is a warning line, not a failure.

use std::path::Path;

use anyhow::Result;
use rusqlite::Connection;

/// The tables to look into. Virtual tables are left out: their columns and indexes are their
/// module's (which may be missing here: then reading them fails), and none is generated or
/// partial.
const TABLES: &str = "t.type = 'table' AND t.sql NOT LIKE 'CREATE VIRTUAL%'";

/// One warning line per kind of object that SQL cannot restore exactly.
pub fn inexact(db: &Path) -> Result<Vec<String>> {
    let conn = Connection::open(db)?;
    let list = |sql: &str| -> Result<Vec<String>> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    };
    let stored = list(&format!(
        "SELECT t.name || '.' || c.name FROM sqlite_schema t, pragma_table_xinfo(t.name) c \
         WHERE {TABLES} AND c.hidden = 3 ORDER BY 1"
    ))?;
    let expr = list(
        "SELECT DISTINCT i.name FROM sqlite_schema i, pragma_index_xinfo(i.name) x \
         WHERE i.type = 'index' AND x.cid = -2 ORDER BY 1",
    )?;
    let partial = list(&format!(
        "SELECT DISTINCT l.name FROM sqlite_schema t, pragma_index_list(t.name) l \
         WHERE {TABLES} AND l.partial ORDER BY 1"
    ))?;
    let virtual_columns = list(
        "SELECT DISTINCT i.name FROM sqlite_schema i, pragma_index_xinfo(i.name) x, \
         pragma_table_xinfo(i.tbl_name) c \
         WHERE i.type = 'index' AND x.cid >= 0 AND c.cid = x.cid AND c.hidden = 2 ORDER BY 1",
    )?;
    let mut out = Vec::new();
    if !stored.is_empty() {
        out.push(format!(
            "STORED generated columns ({}) are computed again by the SQLite that restores them, \
             not copied: a different version may compute other values",
            stored.join(", ")
        ));
    }
    let computed = [
        ("indexes on expressions", expr),
        ("partial indexes", partial),
        ("indexes on virtual generated columns", virtual_columns),
    ];
    for (kind, names) in computed.iter().filter(|(_, n)| !n.is_empty()) {
        out.push(format!(
            "{kind} ({}) are computed again by the SQLite that restores them: a different \
             version may compute other keys or rows (`restore --to` builds them with SQLite {}, \
             `cat | sqlite3` with the CLI's; REINDEX with the SQLite your application uses)",
            names.join(", "),
            rusqlite::version()
        ));
    }
    let columns = float_defaults(&conn)?;
    if !columns.is_empty() {
        out.push(format!(
            "columns whose DEFAULT SQLite versions read differently ({}): in rows written before \
             ALTER TABLE ADD COLUMN added such a column, older SQLite versions (3.40 among them) \
             read a whole number written as a float in a column without a type, of type BLOB \
             or STRICT ANY as an INTEGER (1; 0 for -0.0), and TRUE/FALSE in a TEXT column as \
             INTEGER 1/0, and a hex number beyond 32 bits (0xFFFFFFFF) in any column as the TEXT \
             of its spelling; newer ones read a REAL, TEXT '1'/'0', and the number; the snapshot \
             holds, in every row, the value that SQLite {} read",
            columns.join(", "),
            rusqlite::version()
        ));
    }
    out.extend(missing_modules(&conn)?);
    Ok(out)
}

/// `table.column DEFAULT value` for each column whose default SQLite versions read differently
/// in rows stored without the column: a whole float in a column without affinity (see
/// [`read_by_version`]), or TRUE/FALSE in a TEXT-affinity column (3.40 reads INTEGER 1/0, newer
/// versions TEXT '1'/'0'). Types and defaults are read as bytes: they may be any encoding.
fn float_defaults(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT t.name, c.name, CAST(c.type AS BLOB), CAST(c.dflt_value AS BLOB), \
         (SELECT l.strict FROM pragma_table_list(t.name) l WHERE l.schema = 'main') \
         FROM sqlite_schema t, pragma_table_xinfo(t.name) c \
         WHERE {TABLES} AND c.dflt_value IS NOT NULL ORDER BY t.name, c.cid"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, Vec<u8>>(3)?,
            r.get::<_, Option<bool>>(4)?.unwrap_or(false),
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (table, column, kind, default, strict) = row?;
        let kind = String::from_utf8_lossy(&kind);
        let default = String::from_utf8_lossy(&default);
        let no_affinity = if strict {
            kind.eq_ignore_ascii_case("ANY")
        } else {
            blob_affinity(&kind)
        };
        let boolean = text_affinity(&kind) && is_true_false(&default);
        if (no_affinity && read_by_version(&default)) || boolean || wide_hex(&default) {
            out.push(format!("{table}.{column} DEFAULT {default}"));
        }
    }
    Ok(out)
}

/// Whether a column declared with type `kind` has BLOB affinity (SQLite's rules, in order).
fn blob_affinity(kind: &str) -> bool {
    let k = kind.to_ascii_uppercase();
    !["INT", "CHAR", "CLOB", "TEXT"]
        .iter()
        .any(|w| k.contains(w))
        && (k.is_empty() || k.contains("BLOB"))
}

/// Whether a column declared with type `kind` has TEXT affinity (SQLite's rules, in order).
fn text_affinity(kind: &str) -> bool {
    let k = kind.to_ascii_uppercase();
    !k.contains("INT") && ["CHAR", "CLOB", "TEXT"].iter().any(|w| k.contains(w))
}

/// A default without the parentheses around it and the spaces inside them (`( (2.0) )` → `2.0`).
fn unparenthesized(value: &str) -> &str {
    let mut v = value.trim();
    while let Some(inner) = v.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
        v = inner.trim();
    }
    v
}

/// Whether a default is the literal TRUE or FALSE (any case, in parentheses or not).
fn is_true_false(value: &str) -> bool {
    let v = unparenthesized(value);
    v.eq_ignore_ascii_case("TRUE") || v.eq_ignore_ascii_case("FALSE")
}

/// Whether the default `value` is a hex literal (in parentheses, with one sign or none) whose
/// magnitude needs more than 32 bits (`0x80000000`, `-0xFFFFFFFF`, `(0x100000000)`): in rows
/// that lack the column, 3.40 reads it, whatever the column's type, as the TEXT it is spelled
/// with (`'0xFFFFFFFF'`); newer versions read the number.
fn wide_hex(value: &str) -> bool {
    let v = unparenthesized(value);
    let v = v.strip_prefix(['+', '-']).map_or(v, str::trim_start);
    let Some(digits) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) else {
        return false;
    };
    let digits = digits.trim_start_matches('0');
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_hexdigit())
        && (digits.len() > 8 || u32::from_str_radix(digits, 16).is_ok_and(|n| n > 0x7FFF_FFFF))
}

/// Whether SQLite versions read the default `value` differently in rows that lack the column
/// (in a column of BLOB affinity): a float literal of a whole value that fits in an integer
/// (`1.0e0`, `-0.0`, `(2.)`), to which older versions gave NUMERIC affinity (an INTEGER) and
/// newer ones none (a REAL).
fn read_by_version(value: &str) -> bool {
    let v = unparenthesized(value);
    let digits = v.trim_start_matches(['+', '-']);
    let float = digits.contains(['.', 'e', 'E'])
        && !digits.starts_with("0x")
        && !digits.starts_with("0X")
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    float
        && digits.parse::<f64>().is_ok_and(|x| {
            x.fract() == 0.0 && x > -9.223_372_036_854_775e18 && x < 9.223_372_036_854_775e18
        })
}

/// A warning per virtual table whose module this SQLite lacks: restored (its shadow tables hold
/// its data, and they are checked), but never opened here.
fn missing_modules(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL%' \
         ORDER BY 1",
    )?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut out = Vec::new();
    for name in names {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let opened = conn.prepare(&format!("SELECT 1 FROM {quoted} LIMIT 0"));
        if let Err(e) = opened {
            let why = e.to_string();
            if why.contains("no such module") {
                out.push(format!(
                    "virtual table {name}: {why} in SQLite {} here; its shadow tables (which hold \
                     its data) were restored and checked, the table itself was not opened \
                     (querying it needs the module)",
                    rusqlite::version()
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_defaults_of_whole_values_are_read_by_version() {
        for yes in ["1.0e0", "-0.0", "(4.0)", "+5.0", "1e3", "-1.0", "2."] {
            assert!(read_by_version(yes), "{yes}");
        }
        for no in [
            "1",
            "1.5",
            "1e20",
            "0x10",
            "'1.0'",
            "9223372036854775807.0",
            "X'10'",
        ] {
            assert!(!read_by_version(no), "{no}");
        }
    }

    #[test]
    fn hex_defaults_beyond_32_bits_are_read_by_version() {
        for yes in [
            "0x80000000",
            "0xFFFFFFFF",
            "-0x80000000",
            "(0x100000000)",
            "+0X1_0",
        ] {
            assert_eq!(wide_hex(yes), !yes.contains('_'), "{yes}");
        }
        assert!(wide_hex("- 0xFFFFFFFF") && wide_hex("(-0x0000000080000000)"));
        for no in [
            "0x7FFFFFFF",
            "0x0000007f",
            "-0x10",
            "- 0x10",
            "'0xFFFFFFFF'",
            "0x",
            "12",
        ] {
            assert!(!wide_hex(no), "{no}");
        }
        assert!(wide_hex("( 0x000000FFFFFFFFFFFFFFFF )"));
    }

    #[test]
    fn true_false_defaults_of_text_columns() {
        for yes in ["TEXT", "varchar(5)", "CLOB", "NCHAR"] {
            assert!(text_affinity(yes), "{yes}");
        }
        for no in ["", "BLOB", "INT", "CHARINT", "REAL"] {
            assert!(!text_affinity(no), "{no}");
        }
        assert!(is_true_false("TRUE") && is_true_false("( false )"));
        assert!(!is_true_false("'TRUE'") && !is_true_false("1"));
    }

    #[test]
    fn only_blob_affinity_columns_read_defaults_by_version() {
        for yes in ["", "BLOB", "blob data"] {
            assert!(blob_affinity(yes), "{yes}");
        }
        for no in [
            "INT", "TEXT", "REAL", "NUMERIC", "FOO", "BLOBINT", "VARCHAR",
        ] {
            assert!(!blob_affinity(no), "{no}");
        }
    }
}
