//! The answers of `sqlgit query`, written three ways: an aligned table for people (values as
//! SQL literals, so a NULL, the text 'NULL', 1 and 1.0 all look different), JSON for programs
//! (an array of row objects; with several points an array of {"commit","time","rows"}), and
//! RFC 4180 CSV (header line, CRLF line ends). REAL values are the shortest text that reads back
//! to the same 64 bits in every format (infinities: `1e999`/`-1e999`, in JSON strings).

use std::io::Write;

use anyhow::{Result, bail};

use super::{Answer, Cell};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Output styles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Table,
    Json,
    Csv,
}

/// Write `answers` in `style`. JSON and CSV give the bare rows for one point; with several,
/// JSON labels each point and CSV adds `commit` and `time` columns in front.
pub fn write(answers: &[Answer], style: Style, out: &mut dyn Write) -> Result<()> {
    match style {
        Style::Table => {
            for (i, a) in answers.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                table(a, out)?;
            }
            Ok(())
        }
        Style::Json => json(answers, out),
        Style::Csv => csv(answers, out),
    }
}

/// One answer as a table: a label line, column names, a rule, rows, a count.
fn table(a: &Answer, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "snapshot {}", a.label())?;
    let cells: Vec<Vec<String>> = a
        .rows
        .iter()
        .map(|r| r.iter().map(literal).collect())
        .collect();
    let names: Vec<String> = a.columns.iter().map(|c| header(c)).collect();
    let mut widths: Vec<usize> = names.iter().map(|c| c.chars().count()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut dyn Write, items: &[String]| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (item, w)) in items.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(item);
            if i + 1 < items.len() {
                text.extend(std::iter::repeat_n(' ', w - item.chars().count()));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    if !a.columns.is_empty() {
        line(out, &names)?;
        let rules: Vec<String> = widths.iter().map(|w| "-".repeat((*w).max(1))).collect();
        line(out, &rules)?;
        for row in &cells {
            line(out, row)?;
        }
    }
    let n = a.rows.len();
    writeln!(out, "({n} row{})", if n == 1 { "" } else { "s" })?;
    Ok(())
}

/// Whether `c` is shown escaped, so that what is printed stays on one line and moves no
/// terminal: control characters (C0, DEL and the C1 controls U+0080–U+009F, among them NEL and
/// the 8-bit CSI) and the Unicode line and paragraph separators U+2028, U+2029.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// A column name on one line: as it is, or, when it holds a character [`needs_escape`] says,
/// double-quoted as SQL quotes it with those characters as `\xNN` (as `diff` shows names).
fn header(name: &str) -> String {
    if !name.chars().any(needs_escape) {
        return name.to_string();
    }
    let mut out = String::new();
    for c in crate::dump::literal::quote_name(name).chars() {
        match needs_escape(c) {
            true => out.push_str(&format!("\\x{:02x}", c as u32)),
            false => out.push(c),
        }
    }
    out
}

/// A value as an SQL literal on one line: `NULL`, `42`, `1.5`, `'it''s'`, `X'00ff'`; control
/// characters and line separators in text ([`needs_escape`]) as `char(N)` pieces of their code
/// points (`'a'||char(10)||'b'`, `'a'||char(133)||'b'`), text that is not UTF-8 as
/// `CAST(X'..' AS TEXT)`.
pub fn literal(cell: &Cell) -> String {
    match cell {
        Cell::Null => "NULL".into(),
        Cell::Int(v) => v.to_string(),
        Cell::Real(v) => real(*v),
        Cell::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => text_literal(s),
            Err(_) => format!("CAST(X'{}' AS TEXT)", hex(t)),
        },
        Cell::Text16 { bytes, .. } => format!("CAST(X'{}' AS TEXT)", hex(bytes)),
        Cell::Blob(b) => format!("X'{}'", hex(b)),
    }
}

fn text_literal(s: &str) -> String {
    let control = needs_escape;
    if !s.chars().any(control) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    let mut pieces: Vec<String> = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !control(c)).unwrap_or(rest.len());
        if n > 0 {
            let codes: Vec<String> = rest[..n].chars().map(|c| (c as u32).to_string()).collect();
            pieces.push(format!("char({})", codes.join(",")));
            rest = &rest[n..];
            continue;
        }
        let n = rest.find(control).unwrap_or(rest.len());
        pieces.push(format!("'{}'", rest[..n].replace('\'', "''")));
        rest = &rest[n..];
    }
    pieces.join("||")
}

/// The shortest decimal that reads back to the same 64 bits; `±1e999` for infinities.
pub fn real(v: f64) -> String {
    if v.is_nan() {
        "NULL".into() // SQLite stores NaN as NULL: not reached
    } else if v.is_infinite() {
        if v < 0.0 { "-1e999" } else { "1e999" }.into()
    } else {
        ryu::Buffer::new().format_finite(v).to_string()
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// JSON: null, numbers (integers exact, REALs as [`real`], infinities as the strings
/// `"Infinity"` and `"-Infinity"`), strings (text; invalid UTF-8 replaced by U+FFFD), blobs as
/// lowercase hex strings.
fn json(answers: &[Answer], out: &mut dyn Write) -> Result<()> {
    if let [one] = answers {
        json_rows(one, "", out)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "[")?;
    for (i, a) in answers.iter().enumerate() {
        write!(
            out,
            "  {{\"commit\": \"{}\", \"time\": \"{}\", \"rows\": ",
            a.commit,
            a.time_text()
        )?;
        json_rows(a, "  ", out)?;
        writeln!(out, "}}{}", if i + 1 < answers.len() { "," } else { "" })?;
    }
    writeln!(out, "]")?;
    Ok(())
}

/// Distinct JSON keys for `columns`: a name a column before has is given `:1` (`:2`, …), as
/// SQLite names the columns of `CREATE TABLE … AS SELECT b.id, a.id` (`id`, `id:1`). Parsers
/// keep one value per key, so a repeated key would lose a column.
fn json_keys(columns: &[String]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::with_capacity(columns.len());
    for name in columns {
        let mut key = name.clone();
        let mut n = 0;
        while keys.contains(&key) {
            n += 1;
            key = format!("{name}:{n}");
        }
        keys.push(key);
    }
    keys
}

/// The rows as an array of objects, one per line.
fn json_rows(a: &Answer, indent: &str, out: &mut dyn Write) -> Result<()> {
    if a.rows.is_empty() {
        write!(out, "[]")?;
        return Ok(());
    }
    let keys = json_keys(&a.columns);
    writeln!(out, "[")?;
    for (i, row) in a.rows.iter().enumerate() {
        write!(out, "{indent}  {{")?;
        for (j, (name, cell)) in keys.iter().zip(row).enumerate() {
            if j > 0 {
                write!(out, ", ")?;
            }
            serde_json::to_writer(&mut *out, name)?;
            write!(out, ": ")?;
            match cell {
                Cell::Null => write!(out, "null")?,
                Cell::Int(v) => write!(out, "{v}")?,
                Cell::Real(v) if v.is_nan() => write!(out, "null")?,
                // Many parsers (Rust's, Go's) refuse a number out of range, such as 1e999.
                Cell::Real(v) if v.is_infinite() => write!(
                    out,
                    "{}",
                    if *v < 0.0 {
                        "\"-Infinity\""
                    } else {
                        "\"Infinity\""
                    }
                )?,
                Cell::Real(v) => write!(out, "{}", real(*v))?,
                Cell::Text(_) | Cell::Text16 { .. } => {
                    serde_json::to_writer(&mut *out, &cell.lossy_text())?
                }
                Cell::Blob(b) => write!(out, "\"{}\"", hex(b))?,
            }
        }
        writeln!(out, "}}{}", if i + 1 < a.rows.len() { "," } else { "" })?;
    }
    write!(out, "{indent}]")?;
    Ok(())
}

/// CSV (RFC 4180): a header line, CRLF line ends, fields quoted when they hold `,`, `"`, CR or
/// LF. NULL is an empty field; text as its bytes; blobs as lowercase hex.
fn csv(answers: &[Answer], out: &mut dyn Write) -> Result<()> {
    let several = answers.len() > 1;
    let Some(first) = answers.first() else {
        return Ok(());
    };
    if let Some(other) = answers.iter().find(|a| a.columns != first.columns) {
        bail!(
            "the statement gives other columns at {} than at {}; CSV needs one header (use \
             --json, or name the columns)",
            &other.commit[..12],
            &first.commit[..12]
        );
    }
    let mut header: Vec<&[u8]> = Vec::new();
    if several {
        header.extend([&b"commit"[..], b"time"]);
    }
    header.extend(first.columns.iter().map(|c| c.as_bytes()));
    csv_line(&header, out)?;
    for a in answers {
        let time = a.time_text();
        for row in &a.rows {
            let values: Vec<Vec<u8>> = row
                .iter()
                .map(|c| match c {
                    Cell::Null => Vec::new(),
                    Cell::Int(v) => v.to_string().into_bytes(),
                    Cell::Real(v) => real(*v).into_bytes(),
                    Cell::Text(t) => t.clone(),
                    Cell::Text16 { .. } => c.lossy_text().unwrap_or_default().into_bytes(),
                    Cell::Blob(b) => hex(b).into_bytes(),
                })
                .collect();
            let mut fields: Vec<&[u8]> = Vec::new();
            if several {
                fields.extend([a.commit.as_bytes(), time.as_bytes()]);
            }
            fields.extend(values.iter().map(Vec::as_slice));
            csv_line(&fields, out)?;
        }
    }
    Ok(())
}

fn csv_line(fields: &[&[u8]], out: &mut dyn Write) -> Result<()> {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        if f.iter().any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n')) {
            out.write_all(b"\"")?;
            for piece in f.split_inclusive(|&b| b == b'"') {
                out.write_all(piece)?;
                if piece.last() == Some(&b'"') {
                    out.write_all(b"\"")?;
                }
            }
            out.write_all(b"\"")?;
        } else {
            out.write_all(f)?;
        }
    }
    out.write_all(b"\r\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        assert_eq!(literal(&Cell::Text(b"it's".to_vec())), "'it''s'");
        assert_eq!(
            literal(&Cell::Text(b"a\nb\r".to_vec())),
            "'a'||char(10)||'b'||char(13)"
        );
        assert_eq!(literal(&Cell::Text(vec![0xff])), "CAST(X'ff' AS TEXT)");
        assert_eq!(
            literal(&Cell::Text("a\u{85}\u{9b}b\u{2028}\u{2029}é".into())),
            "'a'||char(133,155)||'b'||char(8232,8233)||'é'"
        );
        assert_eq!(literal(&Cell::Blob(vec![0, 0xab])), "X'00ab'");
        assert_eq!(literal(&Cell::Real(1.0)), "1.0");
        assert_eq!(literal(&Cell::Real(-0.0)), "-0.0");
        assert_eq!(literal(&Cell::Real(f64::NEG_INFINITY)), "-1e999");
        assert_eq!(literal(&Cell::Real(0.1 + 0.2)), "0.30000000000000004");
    }

    #[test]
    fn column_names_stay_on_one_line() {
        assert_eq!(header("id"), "id");
        assert_eq!(header("a b"), "a b");
        assert_eq!(header("a\nb"), "\"a\\x0ab\"");
        assert_eq!(header("a\u{2028}b"), "\"a\\x2028b\"");
        assert_eq!(header("a\u{85}b"), "\"a\\x85b\"");
    }

    #[test]
    fn json_keys_are_distinct() {
        let cols = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            json_keys(&cols(&["id", "id", "id"])),
            cols(&["id", "id:1", "id:2"])
        );
        assert_eq!(
            json_keys(&cols(&["id:1", "id", "id"])),
            cols(&["id:1", "id", "id:2"])
        );
        assert_eq!(json_keys(&cols(&["a", "b"])), cols(&["a", "b"]));
    }

    #[test]
    fn csv_quotes() {
        let mut out = Vec::new();
        csv_line(&[b"a,b", b"say \"hi\"", b"plain", b""], &mut out).unwrap();
        assert_eq!(out, b"\"a,b\",\"say \"\"hi\"\"\",plain,\r\n");
    }
}
