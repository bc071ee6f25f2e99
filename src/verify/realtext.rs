//! REAL values and texts in rows' text, spelled one way, so that `verify` compares what a value
//! is rather than how the sqlgit that took the snapshot spelled it.
//!
//! A REAL is written as its shortest decimal literal when every sqlite3 CLI reads that back
//! exactly, else as `ieee754(M,E)` (see `dump::real`). Which CLIs count changed (3.43's and
//! later parsers were added): a snapshot taken before holds some values as decimals that a dump
//! made today writes as `ieee754()`. Both read back as the same 64 bits, so both are spelled as
//! today's dump spells those bits here, on both sides of the comparison. Likewise a text with
//! many CR or NUL bytes, which an older sqlgit joined from `char()` pieces and today's writes
//! with `replace()` (see `dump::textlit`).

use std::borrow::Cow;

use crate::dump::literal::{quoted_end, value_end};
use crate::dump::real::respelled;
use crate::dump::textlit;

/// `rows` (the values of INSERT statements) with every REAL literal — a number with a `.` or an
/// exponent, or `ieee754(M,E)`, with its sign — and every text literal spelled as today's dump
/// spells its value ([`respelled`] and [`textlit::respelled`], which `diff` reads rows with too).
pub fn canonical_values(rows: &[u8]) -> Cow<'_, [u8]> {
    let texts = rows.windows(5).any(|w| w == b"char(");
    if !texts && !rows.iter().any(|&b| b == b'.' || b == b'e' || b == b'E') {
        return Cow::Borrowed(rows);
    }
    let mut out = Vec::with_capacity(rows.len() + rows.len() / 8);
    let mut p = 0;
    while p < rows.len() {
        let b = rows[p];
        if texts
            && matches!(b, b'\'' | b'c' | b'(')
            && matches!(out.last(), Some(b'(' | b','))
            && let Some(now) = value_end(rows, p).and_then(|end| {
                let now = textlit::respelled(&rows[p..end])?;
                Some((now, end))
            })
        {
            out.extend_from_slice(&now.0);
            p = now.1;
            continue;
        }
        let after_word = p > 0 && (rows[p - 1].is_ascii_alphanumeric() || rows[p - 1] == b'_');
        let token = match b {
            b'\'' | b'"' | b'`' => {
                let end = quoted_end(rows, p + 1, b).unwrap_or(rows.len());
                out.extend_from_slice(&rows[p..end]);
                p = end;
                continue;
            }
            b'0'..=b'9' | b'.' if !after_word => number_end(rows, p),
            b'i' if !after_word && rows[p..].starts_with(b"ieee754(") => {
                rows[p..].iter().position(|&c| c == b')').map(|n| p + n + 1)
            }
            _ => None,
        };
        match token {
            Some(end) => {
                // A unary minus right before the literal is part of the value.
                let start = if out.last() == Some(&b'-') && minus_is_sign(&out) {
                    out.pop();
                    p - 1
                } else {
                    p
                };
                match respelled(&rows[start..end]) {
                    Some(now) => out.extend_from_slice(&now),
                    None => out.extend_from_slice(&rows[start..end]),
                }
                p = end;
            }
            None => {
                out.push(b);
                p += 1;
            }
        }
    }
    Cow::Owned(out)
}

/// Whether the `-` that `out` ends with is a sign: it starts a value (after a `(`, `,`, space or
/// line start), rather than following one.
fn minus_is_sign(out: &[u8]) -> bool {
    let before = out.len().checked_sub(2).map(|i| out[i]);
    matches!(before, None | Some(b'(' | b',' | b' ' | b'\n'))
}

/// The end of the numeric literal at `p` when it is a REAL (has a `.` or an exponent).
fn number_end(s: &[u8], p: usize) -> Option<usize> {
    let mut q = p;
    let mut real = false;
    while q < s.len() && (s[q].is_ascii_digit() || s[q] == b'.') {
        real |= s[q] == b'.';
        q += 1;
    }
    if q < s.len() && (s[q] == b'e' || s[q] == b'E') {
        let mut r = q + 1;
        if r < s.len() && (s[r] == b'+' || s[r] == b'-') {
            r += 1;
        }
        if r < s.len() && s[r].is_ascii_digit() {
            while r < s.len() && s[r].is_ascii_digit() {
                r += 1;
            }
            q = r;
            real = true;
        }
    }
    let ends_word = q < s.len() && (s[q].is_ascii_alphanumeric() || s[q] == b'_');
    (real && !ends_word).then_some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        String::from_utf8(canonical_values(s.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn one_value_spelled_two_ways_reads_the_same() {
        let spelled = "ieee754(4758297580400197,86)";
        assert_eq!(
            canon("(1,3.681554433507594e41,'x'),"),
            canon(&format!("(1,{spelled},'x'),"))
        );
        assert_eq!(
            canon("(-3.681554433507594e41)"),
            canon("(ieee754(-4758297580400197,86))")
        );
        assert_eq!(canon("(2.5,-0.5)"), canon("(ieee754(5,-1),ieee754(-1,-1))"));
        // Other values differ; integers, text and blobs are left as they are.
        assert_ne!(canon("(2.5)"), canon("(2.25)"));
        assert_eq!(
            canon("(12,'1.5e3',X'2E65',NULL)"),
            "(12,'1.5e3',X'2E65',NULL)"
        );
        assert_eq!(canon("(\"a.5\",'it''s 1.5')"), "(\"a.5\",'it''s 1.5')");
    }

    /// A text an older sqlgit joined from `char()` pieces reads as today's `replace()`.
    #[test]
    fn old_text_spellings_read_as_today_s() {
        let text = "l\r\n".repeat(12);
        let (mut old, mut now) = (Vec::new(), Vec::new());
        crate::dump::literal::write_text(&mut old, text.as_bytes());
        crate::dump::textlit::write_value_text(&mut now, text.as_bytes());
        let (old, now) = (
            String::from_utf8(old).unwrap(),
            String::from_utf8(now).unwrap(),
        );
        assert_ne!(old, now);
        let row = |v: &str| format!("(1,{v},'char(13)',2.50),\n({v})");
        assert_eq!(canon(&row(&old)), row(&now).replace("2.50", "2.5"));
        assert_eq!(canon(&row(&now)), canon(&row(&old)));
        // Few pieces: today's spelling is the old one.
        assert_eq!(canon("(1,'a'||char(13))"), "(1,'a'||char(13))");
    }
}
