//! SQL literals for every SQLite value, exact for the `sqlite3` CLI (3.40 and newer).
//!
//! Plain literals wherever they read back exactly (readable dumps, small diffs); SQL expressions
//! where no plain literal exists: text with NUL bytes becomes `'a'||char(0)||'b'` (sqlite3's
//! `.dump` truncates it), or `replace('…','\0',char(0))` in a value with many of them
//! ([`super::textlit`]); REAL values go through [`super::real`].

use super::real::write_real;
use super::stmt::Cell;
use super::textlit::write_value_text;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Append the SQL spelling of a value read by [`super::stmt::RawStmt`] to `out`.
pub fn write_cell(out: &mut Vec<u8>, cell: Cell<'_>) {
    match cell {
        Cell::Null => out.extend_from_slice(b"NULL"),
        Cell::Integer(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        Cell::Real(f) => write_real(out, f),
        Cell::Text(t) => write_value_text(out, t),
        Cell::Text16 { bytes, big_endian } => write_text16(out, bytes, big_endian),
        Cell::Blob(b) => write_blob(out, b),
    }
}

/// Text of a UTF-16 database. A literal in the SQL (UTF-8) reaches the database through
/// SQLite's UTF-8 to UTF-16 conversion, which turns unpaired surrogates, U+FFFE and U+FFFF into
/// U+FFFD; such text is written as its stored bytes instead, `CAST(X'..' AS TEXT)`, which SQLite
/// takes as text in the database's encoding without conversion.
pub fn write_text16(out: &mut Vec<u8>, bytes: &[u8], big_endian: bool) {
    match utf16_to_utf8(bytes, big_endian) {
        Some(text) => write_value_text(out, text.as_bytes()),
        None => {
            out.extend_from_slice(b"CAST(");
            write_blob(out, bytes);
            out.extend_from_slice(b" AS TEXT)");
        }
    }
}

/// The UTF-8 form of UTF-16 text when converting it back gives exactly `bytes`.
pub fn utf16_to_utf8(bytes: &[u8], big_endian: bool) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units = bytes.chunks_exact(2).map(|u| {
        if big_endian {
            u16::from_be_bytes([u[0], u[1]])
        } else {
            u16::from_le_bytes([u[0], u[1]])
        }
    });
    let mut out = String::with_capacity(bytes.len());
    for c in char::decode_utf16(units) {
        let c = c.ok()?;
        if c == '\u{fffe}' || c == '\u{ffff}' {
            return None;
        }
        out.push(c);
    }
    Some(out)
}

/// Bytes that cannot stand inside a quoted literal: NUL (sqlite3's `.dump` truncates at it) and
/// CR (the sqlite3 shell drops a CR before a line end when it reads a script).
fn needs_char(b: u8) -> bool {
    b == 0 || b == b'\r'
}

/// Text as a quoted literal; runs of NUL/CR bytes become `char(0,13,...)` joined with `||`.
pub fn write_text(out: &mut Vec<u8>, text: &[u8]) {
    if !text.iter().any(|&b| needs_char(b)) {
        write_quoted(out, text);
        return;
    }
    // Split into pieces: quoted runs and char() runs (3.40 takes at most 127 arguments).
    let mut pieces: Vec<(bool, &[u8])> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let special = rest.iter().take_while(|&&b| needs_char(b)).count().min(100);
        let len = if special > 0 {
            special
        } else {
            rest.iter()
                .position(|&b| needs_char(b))
                .unwrap_or(rest.len())
        };
        pieces.push((special > 0, &rest[..len]));
        rest = &rest[len..];
    }
    write_concat(out, &pieces);
}

/// `a||b||c…`, parenthesised in groups so that a text with thousands of pieces stays within
/// sqlite3's expression depth limit (1000) and parser stack.
fn write_concat(out: &mut Vec<u8>, pieces: &[(bool, &[u8])]) {
    const FANOUT: usize = 32;
    if pieces.len() <= FANOUT {
        for (i, &(special, bytes)) in pieces.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b"||");
            }
            if special {
                out.extend_from_slice(b"char(");
                for (j, &b) in bytes.iter().enumerate() {
                    if j > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(if b == 0 { b"0" } else { b"13" });
                }
                out.push(b')');
            } else {
                write_quoted(out, bytes);
            }
        }
        return;
    }
    let group = pieces.len().div_ceil(FANOUT).max(FANOUT);
    for (i, chunk) in pieces.chunks(group).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"||");
        }
        out.push(b'(');
        write_concat(out, chunk);
        out.push(b')');
    }
}

pub(super) fn write_quoted(out: &mut Vec<u8>, text: &[u8]) {
    out.reserve(text.len() + 2);
    out.push(b'\'');
    for piece in text.split_inclusive(|&b| b == b'\'') {
        out.extend_from_slice(piece);
        if piece.last() == Some(&b'\'') {
            out.push(b'\'');
        }
    }
    out.push(b'\'');
}

/// A blob as `X'hex'`.
pub fn write_blob(out: &mut Vec<u8>, blob: &[u8]) {
    out.reserve(blob.len() * 2 + 3);
    out.extend_from_slice(b"X'");
    for &b in blob {
        out.push(HEX[(b >> 4) as usize]);
        out.push(HEX[(b & 15) as usize]);
    }
    out.push(b'\'');
}

/// An identifier in double quotes, inner quotes doubled: safe for any name. A CR before a line
/// end is written twice, because the sqlite3 shell drops one (see [`super::shell`]); SQL has no
/// other way to spell it in a name.
pub fn write_ident(out: &mut Vec<u8>, name: &str) {
    out.push(b'"');
    let bytes = name.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        out.push(b);
        if b == b'"' || (b == b'\r' && bytes.get(i + 1) == Some(&b'\n')) {
            out.push(b);
        }
    }
    out.push(b'"');
}

/// An identifier for SQL that SQLite runs directly (the dump's own queries): no shell between.
pub fn quote_name(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `write_ident` into a new String, for statements of a dump or patch.
pub fn quote_ident(name: &str) -> String {
    let mut out = Vec::with_capacity(name.len() + 2);
    write_ident(&mut out, name);
    String::from_utf8(out).expect("quoting keeps UTF-8")
}

/// A string literal into a new String, for building statements (names, schema SQL).
pub fn quote_str(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len() + 2);
    write_text(&mut out, text.as_bytes());
    String::from_utf8(out).expect("quoting keeps UTF-8")
}

/// Reading literals back (the diff and the restore's fast path): from just inside a token
/// quoted by `q` (`'`, `"`, `` ` ``), the index just past its closing quote (doubled quotes are
/// part of the token).
pub fn quoted_end(sql: &[u8], mut p: usize, q: u8) -> Option<usize> {
    loop {
        p += sql.get(p..)?.iter().position(|&b| b == q)?;
        if sql.get(p + 1) == Some(&q) {
            p += 2;
        } else {
            return Some(p + 1);
        }
    }
}

/// The index of the `,` or `)` that ends the value starting at `p` in a row's values (`'…'`
/// literals and parentheses followed).
pub fn value_end(sql: &[u8], mut p: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match *sql.get(p)? {
            b'\'' => p = quoted_end(sql, p + 1, b'\'')?,
            b'(' => {
                depth += 1;
                p += 1;
            }
            b')' if depth == 0 => return Some(p),
            b')' => {
                depth -= 1;
                p += 1;
            }
            b',' if depth == 0 => return Some(p),
            _ => p += 1,
        }
    }
}

/// The index of the `)` that closes the `(` at `open` (`'…'` literals followed).
pub fn group_end(sql: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut p = open;
    loop {
        match *sql.get(p)? {
            b'\'' => p = quoted_end(sql, p + 1, b'\'')?,
            b'(' => {
                depth += 1;
                p += 1;
            }
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(p);
                }
                p += 1;
            }
            _ => p += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &[u8]) -> String {
        let mut out = Vec::new();
        write_text(&mut out, t);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_literals() {
        assert_eq!(text(b"it's"), "'it''s'");
        assert_eq!(text(b""), "''");
        assert_eq!(text(b"a\0b"), "'a'||char(0)||'b'");
        assert_eq!(text(b"\0\0x\0"), "char(0,0)||'x'||char(0)");
        assert_eq!(text(b"a\r\nb"), "'a'||char(13)||'\nb'");
        let many = text(&[0u8; 250]);
        assert_eq!(many.matches("char(").count(), 3, "{many}");
        assert_eq!(quote_ident("x\"; DROP"), "\"x\"\"; DROP\"");
    }

    #[test]
    fn utf16_text_that_utf8_cannot_carry_is_written_as_bytes() {
        let lit = |units: &[u16], be: bool| {
            let bytes: Vec<u8> = units
                .iter()
                .flat_map(|u| if be { u.to_be_bytes() } else { u.to_le_bytes() })
                .collect();
            let mut out = Vec::new();
            write_text16(&mut out, &bytes, be);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            lit(&[0x61, 0xe9, 0xd83d, 0xde00], false),
            "'a\u{e9}\u{1f600}'"
        );
        assert_eq!(lit(&[0x61, 0xd800], false), "CAST(X'610000d8' AS TEXT)");
        assert_eq!(lit(&[0xdc00, 0x61], true), "CAST(X'dc000061' AS TEXT)");
        assert_eq!(lit(&[0xfffe], true), "CAST(X'fffe' AS TEXT)");
        assert_eq!(lit(&[0xffff], false), "CAST(X'ffff' AS TEXT)");
        assert_eq!(lit(&[0x61, 0, 0x62], false), "'a'||char(0)||'b'");
    }

    /// A row's text cell with many CR pieces takes the `replace()` spelling; names and schema
    /// text (`write_text`) keep `char()`.
    #[test]
    fn cells_with_many_crs_use_replace() {
        let t = "a\r".repeat(9);
        let mut cell = Vec::new();
        write_cell(&mut cell, Cell::Text(t.as_bytes()));
        assert_eq!(
            cell,
            format!("replace('{}','\\r',char(13))", "a\\r".repeat(9)).as_bytes()
        );
        assert_eq!(text(t.as_bytes()).matches("char(13)").count(), 9);
    }

    #[test]
    fn blob_literal() {
        let mut out = Vec::new();
        write_blob(&mut out, &[0, 0xab, 0xff]);
        assert_eq!(out, b"X'00abff'");
    }
}
