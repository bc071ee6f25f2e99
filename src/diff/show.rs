//! Values and names for people, as `diff` and `history` print them: one line each, and never
//! the same text for two different things.
//!
//! A value is shown as the SQL literal `sqlgit query` prints for it (control characters in text
//! as `char(N)` pieces, `'p'||char(10)||'q'`; text that is not UTF-8 as `CAST(X'..' AS TEXT)`),
//! REALs the dump writes as `ieee754(M,E)` as the decimal `query` prints),
//! so a real line feed and the two characters `\n` look different, and a key shown this way can
//! be given back to `sqlgit history`. Long values are cut; two values of an update are cut
//! around the first place they differ, so the difference always shows. A name is shown bare when
//! it is a plain identifier, else in double quotes.

use super::keymatch::{Number, number};
use super::rows::decode_text;
use crate::query::Cell;
use crate::query::print::{literal as query_literal, needs_escape};

/// Longest value shown, in characters (keys are shown whole).
pub const MAX_VALUE: usize = 60;

/// A dump literal as the one-line SQL literal `query` prints for the same value.
pub fn literal(lit: &[u8]) -> String {
    if let Some(bytes) = decode_text(lit) {
        return query_literal(&Cell::Text(bytes));
    }
    // A REAL the dump writes as `ieee754(M,E)` (exact under any SQLite): the decimal `query`
    // prints, which reads back to the same bits.
    if lit.starts_with(b"ieee754(")
        && let Some(Number::Real(v)) = std::str::from_utf8(lit).ok().and_then(number)
    {
        return query_literal(&Cell::Real(v));
    }
    // NULL, numbers, `ieee754(…)`, `X'…'`, `CAST(X'…' AS TEXT)`: ASCII on one line already;
    // anything else is escaped so that it stays on one line.
    escape_controls(&String::from_utf8_lossy(lit))
}

/// A value cut at `max` characters (with `…`).
pub fn value(lit: &[u8], max: usize) -> String {
    window(&literal(lit), 0, max)
}

/// The old and new value of an update: when either is longer than `max`, both are cut to the
/// same window, which starts a little before the first character where they differ. Only the
/// two literals are held (no per-character copies: a value may be hundreds of MB).
pub fn pair(old: &[u8], new: &[u8], max: usize) -> (String, String) {
    let (a, b) = (literal(old), literal(new));
    let longer = |text: &str| text.chars().nth(max).is_some();
    if !longer(&a) && !longer(&b) {
        return (a, b);
    }
    let first_difference = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    // The difference is inside the window on both sides (less than `max` after its start), so
    // the two cut texts differ there, or one ends where the other goes on.
    let start = if first_difference < max / 2 {
        0
    } else {
        first_difference - max / 3
    };
    (window(&a, start, max), window(&b, start, max))
}

/// `max` characters of `text` from character `start`, with `…` where text was left out.
fn window(text: &str, start: usize, max: usize) -> String {
    let mut rest = text.chars();
    let skipped = rest.by_ref().take(start).count();
    let mut out = String::new();
    if skipped > 0 {
        out.push('…');
    }
    out.extend(rest.by_ref().take(max));
    if rest.next().is_some() {
        out.push('…');
    }
    out
}

/// A table or column name: bare when it is a plain identifier (`id`, `user_name`), else
/// quoted as SQL quotes it (`"x=1, y"`, `" "`, `"it""s"`), control characters escaped.
pub fn name(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        return name.to_string();
    }
    escape_controls(&crate::dump::literal::quote_name(name))
}

/// `text` with each character [`needs_escape`] says as `\xNN`.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_sql_literals() {
        assert_eq!(literal(b"'p\nq'"), "'p'||char(10)||'q'");
        assert_eq!(literal(b"'p\\nq'"), "'p\\nq'");
        assert_eq!(literal(b"'a\tb'"), "'a'||char(9)||'b'");
        assert_eq!(literal(b"'a'||char(0)||'b'"), "'a'||char(0)||'b'");
        assert_eq!(literal(b"'it''s'"), "'it''s'");
        assert_eq!(
            literal("'a\u{85}b\u{2028}'".as_bytes()),
            "'a'||char(133)||'b'||char(8232)"
        );
        assert_eq!(literal(b"'\xff'"), "CAST(X'ff' AS TEXT)");
        assert_eq!(literal(b"X'00ab'"), "X'00ab'");
        assert_eq!(literal(b"-1.5"), "-1.5");
        assert_eq!(
            literal(b"ieee754(1968564498370125,-46)"),
            "27.974984083842358"
        );
        assert_eq!(value(b"'abcdef'", 3), "'ab…");
    }

    #[test]
    fn an_update_shows_where_the_values_differ() {
        let a = format!("'{}X'", "a".repeat(1000));
        let b = format!("'{}Y'", "a".repeat(1000));
        let (x, y) = pair(a.as_bytes(), b.as_bytes(), 60);
        assert_ne!(x, y);
        assert!(x.starts_with('…') && x.ends_with("aX'"), "{x}");
        assert!(y.ends_with("aY'"), "{y}");
        // One a prefix of the other, short and long, different early.
        for (a, b) in [
            (
                format!("'{}'", "a".repeat(100)),
                format!("'{}b'", "a".repeat(100)),
            ),
            ("'a'".to_string(), format!("'{}'", "a".repeat(100))),
            (
                format!("'b{}'", "a".repeat(100)),
                format!("'c{}'", "a".repeat(100)),
            ),
        ] {
            let (x, y) = pair(a.as_bytes(), b.as_bytes(), 60);
            assert_ne!(x, y, "{a} {b}");
            assert!(x.chars().count() <= 62 && y.chars().count() <= 62);
        }
        assert_eq!(pair(b"1", b"2", 60), ("1".into(), "2".into()));
    }

    #[test]
    fn names_are_quoted_when_needed() {
        assert_eq!(name("id"), "id");
        assert_eq!(name("_x9"), "_x9");
        assert_eq!(name("x=1, y"), "\"x=1, y\"");
        assert_eq!(name(" "), "\" \"");
        assert_eq!(name("it\"s"), "\"it\"\"s\"");
        assert_eq!(name("9a"), "\"9a\"");
        assert_eq!(name("a\nb"), "\"a\\x0ab\"");
        assert_eq!(name("a\u{9b}b\u{2029}"), "\"a\\x9bb\\x2029\"");
    }
}
