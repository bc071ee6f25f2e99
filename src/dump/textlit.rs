//! Text values with many CR or NUL bytes, spelled `replace('…','\r',char(13))`.
//!
//! A quoted literal cannot hold NUL (the sqlite3 CLI reads lines as C strings) or a CR before a
//! line end (the shell drops it), so [`super::literal::write_text`] joins quoted pieces with
//! `char(13)`/`char(0)` pieces. The sqlite3 3.40 parser spends kilobytes and much time on each
//! `||` piece, so a value with more than [`MAX_CHAR_PIECES`] of them is written as one quoted
//! literal in which each CR and NUL is a two-byte token, put back by `replace()`: NUL inside,
//! CR outside, `replace(replace('a\0b\rc','\0',char(0)),'\r',char(13))` (linear cost, like
//! sqlite3's own `.dump`). Line feeds stay real line ends inside the quotes, so a diff of the
//! file shows one line per text line. Values with few such bytes keep the `char()` spelling, so
//! their bytes do not change. `diff` and `verify` read a snapshot taken before this rule with
//! [`respelled`], so that a value spelled the old way compares equal to today's spelling.

use super::literal::{group_end, quoted_end, write_quoted, write_text};

/// More `char()` pieces than this (in the `||` spelling) and a text is written with `replace()`.
pub const MAX_CHAR_PIECES: usize = 8;

/// How text values are spelled, named in the page map's fingerprint (as `real::SPELLING`): a
/// map made when another rule spelled them describes chunks a dump no longer writes.
pub fn spelling() -> &'static str {
    match old_spelling() {
        true => "char() pieces only (SQLGIT_TEXT_SPELLING=1)",
        false => "replace() over 8 char() pieces, tokens \\r \\R \\c and \\0 \\z \\Z",
    }
}

/// `SQLGIT_TEXT_SPELLING=1` writes every text in the `char()` spelling of older sqlgit: only
/// for tests of snapshots those took.
fn old_spelling() -> bool {
    static OLD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OLD.get_or_init(|| std::env::var("SQLGIT_TEXT_SPELLING").as_deref() == Ok("1"))
}

/// Candidate token characters: a token is `\` and one of them. None is `\` or `'`.
const CR_TOKENS: &[u8] = b"rRc";
const NUL_TOKENS: &[u8] = b"0zZ";

/// A text value (a row's cell) as an SQL expression the sqlite3 CLI reads back exactly.
pub fn write_value_text(out: &mut Vec<u8>, text: &[u8]) {
    // Most texts hold neither byte: one scan, as before there were two spellings.
    let Some(first) = text.iter().position(|&b| b == 0 || b == b'\r') else {
        return write_quoted(out, text);
    };
    if old_spelling() || char_pieces(&text[first..]) <= MAX_CHAR_PIECES {
        return write_text(out, text);
    }
    let token = |present: bool, candidates: &[u8]| match present {
        false => Some(None),
        true => free_token(text, candidates).map(Some),
    };
    let (Some(nul), Some(cr)) = (
        token(text.contains(&0), NUL_TOKENS),
        token(text.contains(&b'\r'), CR_TOKENS),
    ) else {
        return write_text(out, text); // every candidate occurs in the text: not exact
    };
    // Why this is exact: a token `\X` (X not `\`) cannot overlap another occurrence of itself,
    // and an occurrence in the escaped text either starts at an inserted token (then it is
    // that token: two tokens differ in X) or at a `\` of the value, whose next escaped byte is
    // the value's next byte (so `\X` would occur in the value: it was chosen not to), or `\`
    // of an inserted token, or a NUL put back by the inner replace() (neither is X). So each
    // replace() finds exactly the tokens written for its byte.
    out.reserve(text.len() + text.len() / 8 + 48);
    for _ in 0..usize::from(nul.is_some()) + usize::from(cr.is_some()) {
        out.extend_from_slice(b"replace(");
    }
    out.push(b'\'');
    for &b in text {
        match b {
            b'\'' => out.extend_from_slice(b"''"),
            0 => out.extend_from_slice(&[b'\\', nul.unwrap_or(b'0')]),
            b'\r' => out.extend_from_slice(&[b'\\', cr.unwrap_or(b'r')]),
            _ => out.push(b),
        }
    }
    out.push(b'\'');
    for (token, code) in [(nul, &b"0"[..]), (cr, b"13")] {
        if let Some(x) = token {
            out.extend_from_slice(&[b',', b'\'', b'\\', x, b'\'']);
            out.extend_from_slice(b",char(");
            out.extend_from_slice(code);
            out.extend_from_slice(b"))");
        }
    }
}

/// How many `char()` pieces [`write_text`] writes for `text` (runs of NUL/CR, 100 a piece).
fn char_pieces(text: &[u8]) -> usize {
    let mut pieces = 0;
    let mut run = 0usize;
    for &b in text {
        if b == 0 || b == b'\r' {
            run += 1;
        } else if run > 0 {
            pieces += run.div_ceil(100);
            run = 0;
        }
    }
    pieces + run.div_ceil(100)
}

/// The first candidate `X` whose `\X` does not occur in `text`.
fn free_token(text: &[u8], candidates: &[u8]) -> Option<u8> {
    let mut used = [false; 256];
    for w in text.windows(2).filter(|w| w[0] == b'\\') {
        used[w[1] as usize] = true;
    }
    candidates.iter().copied().find(|&x| !used[x as usize])
}

/// A text literal in any spelling the dump writes or wrote — `'…'` pieces, `char(c,…)`,
/// parenthesised groups joined by `||`, and `replace(…)` — as its bytes; None for anything
/// else. `char()` codes are taken as bytes (the dump writes only 0 and 13).
pub fn decode(lit: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut p = 0;
    loop {
        if lit.get(p) == Some(&b'\'') {
            let end = quoted_end(lit, p + 1, b'\'')?;
            unquote_into(&lit[p + 1..end - 1], &mut out);
            p = end;
        } else if lit[p..].starts_with(b"char(") {
            let close = p + lit[p..].iter().position(|&b| b == b')')?;
            for code in lit[p + 5..close].split(|&b| b == b',') {
                out.push(std::str::from_utf8(code).ok()?.trim().parse::<u8>().ok()?);
            }
            p = close + 1;
        } else if lit[p..].starts_with(b"replace(") {
            let (bytes, end) = decode_replace(lit, p)?;
            out.extend_from_slice(&bytes);
            p = end;
        } else if lit.get(p) == Some(&b'(') {
            let close = group_end(lit, p)?;
            out.extend(decode(&lit[p + 1..close])?);
            p = close + 1;
        } else {
            return None;
        }
        if p == lit.len() {
            return Some(out);
        }
        if !lit[p..].starts_with(b"||") {
            return None;
        }
        p += 2;
    }
}

/// The body of a quoted literal (`''` for a quote) appended to `out`.
fn unquote_into(inner: &[u8], out: &mut Vec<u8>) {
    let mut rest = inner;
    while let Some(i) = rest.iter().position(|&b| b == b'\'') {
        out.extend_from_slice(&rest[..=i]);
        rest = rest.get(i + 2..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
}

/// `replace(X,'T',char(N))` at `p` — X a quoted literal or another such `replace`, T not
/// empty, N an ASCII code — as the bytes SQLite computes, and the index just past it.
pub fn decode_replace(lit: &[u8], p: usize) -> Option<(Vec<u8>, usize)> {
    let open = p + b"replace".len();
    if !lit.get(p..)?.starts_with(b"replace(") {
        return None;
    }
    let close = group_end(lit, open)?;
    let mut q = open + 1;
    let value = if lit.get(q) == Some(&b'\'') {
        let end = quoted_end(lit, q + 1, b'\'')?;
        let mut v = Vec::with_capacity(end - q);
        unquote_into(&lit[q + 1..end - 1], &mut v);
        q = end;
        v
    } else {
        let (v, end) = decode_replace(lit, q)?;
        q = end;
        v
    };
    let rest = lit[q..close].strip_prefix(b",'")?;
    let token_end = quoted_end(rest, 0, b'\'')?;
    let mut token = Vec::new();
    unquote_into(&rest[..token_end - 1], &mut token);
    let code = rest[token_end..]
        .strip_prefix(b",char(")?
        .strip_suffix(b")")?;
    if token.is_empty() || code.is_empty() || code.len() > 3 || !code.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let code: u8 = std::str::from_utf8(code).ok()?.parse().ok()?;
    if !code.is_ascii() {
        return None; // char(128…) is a UTF-8 sequence
    }
    Some((replace_all(&value, &token, code), close + 1))
}

/// SQLite's `replace(X,Y,Z)` for a one-byte Z: occurrences of `token` left to right, none
/// overlapping.
fn replace_all(value: &[u8], token: &[u8], with: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if value[i] == token[0] && value[i..].starts_with(token) {
            out.push(with);
            i += token.len();
        } else {
            out.push(value[i]);
            i += 1;
        }
    }
    out
}

/// Today's spelling of a text literal an older sqlgit wrote with `char()` pieces, when that is
/// other text; None for every other literal. Only literals that hold `char(` are decoded, and
/// only one that is exactly the old spelling of its bytes is respelled.
pub fn respelled(lit: &[u8]) -> Option<Vec<u8>> {
    if !matches!(lit.first(), Some(b'\'' | b'c' | b'(')) || !lit.windows(5).any(|w| w == b"char(") {
        return None;
    }
    let bytes = decode(lit)?;
    let mut old = Vec::with_capacity(lit.len());
    write_text(&mut old, &bytes);
    if old != lit {
        return None;
    }
    let mut now = Vec::with_capacity(lit.len());
    write_value_text(&mut now, &bytes);
    (now != lit).then_some(now)
}

#[cfg(test)]
mod tests;
