//! Key values compared as SQLite compares the keys of a WITHOUT ROWID table.
//!
//! The dump spells each stored value as one SQL literal, but SQLite's key comparison is looser
//! than the literal's bytes: an INTEGER and a REAL are equal when the real is exactly that
//! integer (`1` and `1.0` are one key in an untyped column), and text compares with the key
//! column's collation (`'alice'` and `'Alice'` are one key under NOCASE, `'a'` and `'a  '` under
//! RTRIM). Text is never equal to a number or a blob. [`Collation`] names the built-in
//! collations; a key with another (the application's own) cannot be snapshotted at all (the
//! dump refuses it), and a diff refuses it too (`super::shape::analyze`). [`key_bytes`] turns a literal into bytes that are equal
//! exactly when SQLite calls the values equal, for hashing rows by key; [`Value`] reads a
//! literal's value.

use super::keymatch::{Number, number};
use super::rows::decode_text;
pub use crate::dump::stmt::Encoding;

/// How a key column compares text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Collation {
    Binary,
    /// ASCII letters of either case are equal (SQLite folds only A-Z).
    Nocase,
    /// Trailing spaces (U+0020 only) are ignored.
    Rtrim,
    /// The literal's bytes, no value read: for a key column renamed between two versions of a
    /// table, whose values no row comparison looks at, so rows match only when it did not
    /// change at all.
    Exact,
}

impl Collation {
    /// The collation SQLite reports by `name` (any case); BINARY for one sqlgit does not know.
    pub fn named(name: &str) -> Collation {
        Collation::known(name).unwrap_or(Collation::Binary)
    }

    /// The built-in collation `name` (any case), None for the application's own.
    pub fn known(name: &str) -> Option<Collation> {
        [
            ("BINARY", Collation::Binary),
            ("NOCASE", Collation::Nocase),
            ("RTRIM", Collation::Rtrim),
        ]
        .into_iter()
        .find(|(n, _)| name.eq_ignore_ascii_case(n))
        .map(|(_, c)| c)
    }

    /// The comparison two versions of a key column share: their collation when both have the
    /// same one, else BINARY (values equal under both of two different built-in collations
    /// are equal under BINARY).
    pub fn shared(a: Collation, b: Collation) -> Collation {
        if a == b { a } else { Collation::Binary }
    }

    /// `text` in the form equal texts share under this collation.
    fn fold(self, text: &mut Vec<u8>) {
        match self {
            Collation::Nocase => text.make_ascii_lowercase(),
            Collation::Rtrim => {
                let kept = text.len() - text.iter().rev().take_while(|&&b| b == b' ').count();
                text.truncate(kept);
            }
            Collation::Binary | Collation::Exact => {}
        }
    }
}

/// A key value as SQLite compares it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An integer, or a real that is exactly one (SQLite calls them equal).
    Int(i64),
    /// Any other real (never NaN: SQLite stores NaN as NULL).
    Real(f64),
    Text(Text),
    Blob(Vec<u8>),
}

/// Text as SQLite's collations see it. BINARY compares the stored bytes; NOCASE and RTRIM
/// are defined on UTF-8 only, so in a UTF-16 database SQLite converts both values first.
#[derive(Clone, Debug, PartialEq)]
pub struct Text {
    /// The UTF-8 NOCASE and RTRIM compare: the stored bytes of a UTF-8 database (valid or not);
    /// of a UTF-16 one, SQLite's own conversion ([`sqlite_utf8`]).
    utf8: Vec<u8>,
    /// The stored UTF-16 code units when they are not valid UTF-16, for BINARY (valid UTF-16
    /// and its UTF-8 are equal exactly when the other encoding's forms are).
    units: Option<Vec<u16>>,
}

impl Text {
    /// Text stored as `bytes` in a database of encoding `enc`.
    pub fn stored(bytes: &[u8], enc: Encoding) -> Text {
        let units: Vec<u16> = match enc {
            Encoding::Utf8 => {
                return Text {
                    utf8: bytes.to_vec(),
                    units: None,
                };
            }
            Encoding::Utf16Le => (bytes.chunks_exact(2))
                .map(|u| u16::from_le_bytes([u[0], u[1]]))
                .collect(),
            Encoding::Utf16Be => (bytes.chunks_exact(2))
                .map(|u| u16::from_be_bytes([u[0], u[1]]))
                .collect(),
        };
        match String::from_utf16(&units) {
            Ok(text) => Text {
                utf8: text.into_bytes(),
                units: None,
            },
            Err(_) => Text {
                utf8: sqlite_utf8(&units),
                units: Some(units),
            },
        }
    }

    /// Text a dump literal spells in UTF-8 (in a UTF-16 database, always valid UTF-8).
    fn utf8(bytes: Vec<u8>) -> Text {
        Text {
            utf8: bytes,
            units: None,
        }
    }

    /// The form equal texts share under `coll`, tagged so the two kinds never meet.
    fn form(&self, coll: Collation) -> (u8, Vec<u8>) {
        match (&self.units, coll) {
            (Some(units), Collation::Binary | Collation::Exact) => {
                (b'w', units.iter().flat_map(|u| u.to_le_bytes()).collect())
            }
            _ => {
                let mut text = self.utf8.clone();
                coll.fold(&mut text);
                (b't', text)
            }
        }
    }
}

/// UTF-16 code units as SQLite converts them to UTF-8 (`sqlite3VdbeMemTranslate`, built
/// without SQLITE_REPLACE_INVALID_UTF as the sqlite3 CLI and sqlgit are): a surrogate takes
/// the unit after it whatever that is, and a lone one at the end is kept (3 bytes). So
/// U+DC00 'A' and U+D800 U+DC41 are one NOCASE key to SQLite, 'A' U+DC00 and 'a' U+DC00 too.
fn sqlite_utf8(units: &[u16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(units.len() * 3);
    let mut i = 0;
    while i < units.len() {
        let mut c = u32::from(units[i]);
        i += 1;
        if (0xd800..0xe000).contains(&c) && i < units.len() {
            let c2 = u32::from(units[i]);
            i += 1;
            c = (c2 & 0x3ff) + ((c & 0x3f) << 10) + (((c & 0x3c0) + 0x40) << 10);
        }
        let n = match c {
            0..0x80 => {
                out.push(c as u8);
                continue;
            }
            0x80..0x800 => 1,
            0x800..0x10000 => 2,
            _ => 3,
        };
        out.push([0xc0u8, 0xe0, 0xf0][n - 1] | (c >> (6 * n)) as u8);
        for k in (0..n).rev() {
            out.push(0x80 | ((c >> (6 * k)) & 0x3f) as u8);
        }
    }
    out
}

impl Value {
    /// The value of a dump literal of a database of encoding `enc`: a number (`1`, `-2.5e3`,
    /// `ieee754(M,E)`, `-1e999`), text (`'a'`, `'a'||char(0)`, `replace('a\r','\r',char(13))`,
    /// the stored bytes `CAST(X'..' AS TEXT)`) or a blob (`X'00ff'`); None for anything else
    /// (NULL), which is compared by its literal.
    pub fn of_literal(lit: &[u8], enc: Encoding) -> Option<Value> {
        match lit.first()? {
            b'\'' | b'c' | b'(' | b'r' => decode_text(lit).map(|t| Value::Text(Text::utf8(t))),
            b'X' | b'x' => blob(lit).map(Value::Blob),
            b'C' => cast_text(lit).map(|b| Value::Text(Text::stored(&b, enc))),
            _ => std::str::from_utf8(lit)
                .ok()
                .and_then(number)
                .map(Value::of),
        }
    }

    /// A number as SQLite compares it.
    pub fn of(n: Number) -> Value {
        const MIN: f64 = i64::MIN as f64; // -2^63, exactly
        match n {
            Number::Int(i) => Value::Int(i),
            // [-2^63, 2^63): where a whole real is exactly an i64 (-0.0 is 0).
            Number::Real(r) if r.fract() == 0.0 && (MIN..-MIN).contains(&r) => Value::Int(r as i64),
            Number::Real(r) => Value::Real(r),
        }
    }

    /// Text a user typed (a bare word), in UTF-8.
    pub fn typed(text: &str) -> Value {
        Value::Text(Text::utf8(text.as_bytes().to_vec()))
    }

    /// Whether SQLite calls the two values equal, comparing text with `coll`.
    pub fn equal(&self, other: &Value, coll: Collation) -> bool {
        match (self, other) {
            (Value::Text(a), Value::Text(b)) => a.form(coll) == b.form(coll),
            (a, b) => a == b,
        }
    }
}

/// The bytes of `X'hex'`.
fn blob(lit: &[u8]) -> Option<Vec<u8>> {
    let hex = lit.get(2..lit.len().checked_sub(1)?)?;
    if !lit[1..].starts_with(b"'") || !lit.ends_with(b"'") || hex.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16);
    hex.chunks(2)
        .map(|p| Some((digit(p[0])? * 16 + digit(p[1])?) as u8))
        .collect()
}

/// The bytes of `CAST(X'hex' AS TEXT)` (any case, as a user may type it).
fn cast_text(lit: &[u8]) -> Option<Vec<u8>> {
    let upper = lit.to_ascii_uppercase();
    let inner = upper.strip_prefix(b"CAST(")?.strip_suffix(b" AS TEXT)")?;
    blob(inner.trim_ascii())
}

/// Append to `key` bytes for the literal `lit` of a key column compared with `coll`, in a
/// database of encoding `enc`: equal exactly when SQLite calls the values equal. Each value is
/// tagged and length-prefixed, so the values of a composite key cannot run into each other.
pub fn key_bytes(key: &mut Vec<u8>, lit: &[u8], coll: Collation, enc: Encoding) {
    let value = match coll {
        Collation::Exact => None,
        _ => Value::of_literal(lit, enc),
    };
    let (tag, bytes) = match value {
        Some(Value::Int(i)) => (b'i', i.to_be_bytes().to_vec()),
        Some(Value::Real(r)) => (b'r', r.to_bits().to_be_bytes().to_vec()),
        Some(Value::Text(t)) => t.form(coll),
        Some(Value::Blob(b)) => (b'b', b),
        None => (b'l', lit.to_vec()),
    };
    key.push(tag);
    key.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    key.extend_from_slice(&bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(lit: &str, coll: Collation) -> Vec<u8> {
        let mut k = Vec::new();
        key_bytes(&mut k, lit.as_bytes(), coll, Encoding::Utf8);
        k
    }

    #[test]
    fn keys_are_equal_as_sqlite_compares_them() {
        use Collation::*;
        let same = |a: &str, b: &str, c| key(a, c) == key(b, c);
        assert!(same("1", "1.0", Binary));
        assert!(same(
            "replace('a\\rb','\\r',char(13))",
            "'a'||char(13)||'b'",
            Binary
        ));
        assert!(same("0", "-0.0", Binary));
        assert!(same("-2500", "-2.5e3", Binary));
        assert!(same("ieee754(1,1)", "2", Binary));
        assert!(!same("9007199254740993", "9007199254740992.0", Binary));
        assert!(!same(
            "9223372036854775807",
            "9.223372036854775808e18",
            Binary
        ));
        assert!(!same("1", "'1'", Binary));
        assert!(!same("'1'", "X'31'", Nocase));
        assert!(same("'alice'", "'Alice'", Nocase));
        assert!(!same("'alice'", "'Alice'", Binary));
        assert!(!same("'alice'", "'Alice'", Rtrim));
        assert!(!same("'é'", "'É'", Nocase));
        assert!(same("'a  '", "'a'", Rtrim));
        assert!(!same("' a'", "'a'", Rtrim));
        assert!(!same("'a '", "'a'", Nocase));
        assert!(same("'a'||char(0)", "('a'||char(0))", Binary));
        assert!(same("X'00AB'", "X'00ab'", Binary));
        assert!(!same("1", "1.0", Exact));
        // Composite keys cannot shift bytes between values.
        let two = |a: &str, b: &str| {
            let mut k = key(a, Binary);
            key_bytes(&mut k, b.as_bytes(), Binary, Encoding::Utf8);
            k
        };
        assert_ne!(two("'a'", "'bc'"), two("'ab'", "'c'"));
    }

    /// As the sqlite3 CLI answers for a UTF-16 WITHOUT ROWID key (a second insert fails
    /// UNIQUE exactly for the pairs called equal), and text that is not UTF-8 in a UTF-8 one.
    #[test]
    fn text_that_is_no_valid_unicode_compares_as_sqlite_does() {
        use Collation::*;
        let same = |a: &str, b: &str, c, enc| {
            let k = |lit: &str| {
                let mut k = Vec::new();
                key_bytes(&mut k, lit.as_bytes(), c, enc);
                k
            };
            k(a) == k(b)
        };
        let cast = |hex: &str| format!("CAST(X'{hex}' AS TEXT)");
        let le = Encoding::Utf16Le;
        let pairs = [
            ("410000DC", "610000DC", Nocase, true),
            ("610000D8", "410000D8", Nocase, true),
            ("00D84100", "00D86100", Nocase, false),
            ("00DC4100", "00D841DC", Nocase, true),
            ("00DC4100", "00D841DC", Binary, false),
            ("00D82000", "00D8", Rtrim, false),
            ("00D8", "00D800DC", Nocase, false),
            ("410000DC", "410000DC", Binary, true),
        ];
        for (a, b, c, want) in pairs {
            assert_eq!(same(&cast(a), &cast(b), c, le), want, "{a} {b} {c:?}");
        }
        // Big-endian bytes, and valid UTF-16 as its UTF-8 literal.
        let be = Encoding::Utf16Be;
        assert!(same(&cast("0041DC00"), &cast("0061DC00"), Nocase, be));
        assert!(same(&cast("4100"), "'a'", Nocase, le));
        assert!(same(&cast("3DD800DE"), "'\u{1f600}'", Binary, le));
        // UTF-8: the bytes, folded in ASCII only.
        let u8 = Encoding::Utf8;
        assert!(same("'abc\u{ff}'", &cast("616263c3bf"), Binary, u8));
        assert!(same(&cast("616263ff"), &cast("414243ff"), Nocase, u8));
        assert!(same(&cast("616263ff2020"), &cast("616263ff"), Rtrim, u8));
        assert!(!same(&cast("616263ff"), &cast("414243ff"), Binary, u8));
    }
}
