//! SQL literals for every SQLite value, exact for the `sqlite3` CLI (3.40 and newer).
//!
//! Plain literals wherever they read back exactly (readable dumps, small diffs); SQL expressions
//! where no plain literal exists: text with NUL bytes becomes `'a'||char(0)||'b'` (sqlite3's
//! `.dump` truncates it), REAL values go through [`super::real`].

use rusqlite::types::ValueRef;

use super::real::write_real;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Append the SQL spelling of `value` to `out`.
pub fn write_value(out: &mut Vec<u8>, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => out.extend_from_slice(b"NULL"),
        ValueRef::Integer(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        ValueRef::Real(f) => write_real(out, f),
        ValueRef::Text(t) => write_text(out, t),
        ValueRef::Blob(b) => write_blob(out, b),
    }
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
    let mut first = true;
    let mut rest = text;
    while !rest.is_empty() {
        if !first {
            out.extend_from_slice(b"||");
        }
        first = false;
        // sqlite3 3.40 accepts at most 127 arguments per function call.
        let special = rest.iter().take_while(|&&b| needs_char(b)).count().min(100);
        if special > 0 {
            out.extend_from_slice(b"char(");
            for (i, &b) in rest[..special].iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(if b == 0 { b"0" } else { b"13" });
            }
            out.push(b')');
            rest = &rest[special..];
        } else {
            let len = rest
                .iter()
                .position(|&b| needs_char(b))
                .unwrap_or(rest.len());
            write_quoted(out, &rest[..len]);
            rest = &rest[len..];
        }
    }
}

fn write_quoted(out: &mut Vec<u8>, text: &[u8]) {
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

/// An identifier in double quotes, inner quotes doubled: safe for any name.
pub fn write_ident(out: &mut Vec<u8>, name: &str) {
    out.push(b'"');
    for piece in name.as_bytes().split_inclusive(|&b| b == b'"') {
        out.extend_from_slice(piece);
        if piece.last() == Some(&b'"') {
            out.push(b'"');
        }
    }
    out.push(b'"');
}

/// `write_ident` into a new String, for building queries.
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
    fn blob_literal() {
        let mut out = Vec::new();
        write_blob(&mut out, &[0, 0xab, 0xff]);
        assert_eq!(out, b"X'00abff'");
    }
}
