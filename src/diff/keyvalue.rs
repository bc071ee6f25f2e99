//! Key values compared as SQLite compares the keys of a WITHOUT ROWID table.
//!
//! The dump spells each stored value as one SQL literal, but SQLite's key comparison is looser
//! than the literal's bytes: an INTEGER and a REAL are equal when the real is exactly that
//! integer (`1` and `1.0` are one key in an untyped column), and text compares with the key
//! column's collation (`'alice'` and `'Alice'` are one key under NOCASE, `'a'` and `'a  '` under
//! RTRIM). Text is never equal to a number or a blob. [`Collation`] names the built-in
//! collations; a key with another (the application's own) cannot be snapshotted at all (the
//! dump refuses it), and should one still be met it compares as BINARY, which never takes two
//! keys SQLite keeps apart for one. [`key_bytes`] turns a literal into bytes that are equal
//! exactly when SQLite calls the values equal, for hashing rows by key; [`Value`] reads a
//! literal's value.

use super::keymatch::{Number, number};
use super::rows::decode_text;

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
        if name.eq_ignore_ascii_case("NOCASE") {
            Collation::Nocase
        } else if name.eq_ignore_ascii_case("RTRIM") {
            Collation::Rtrim
        } else {
            Collation::Binary
        }
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
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl Value {
    /// The value of a dump literal: a number (`1`, `-2.5e3`, `ieee754(M,E)`, `-1e999`), text
    /// (`'a'`, `'a'||char(0)`, `replace('a\r','\r',char(13))`) or a blob (`X'00ff'`); None for
    /// anything else (NULL, text that is not UTF-8 as `CAST(X'..' AS TEXT)`), which is compared
    /// by its literal.
    pub fn of_literal(lit: &[u8]) -> Option<Value> {
        match lit.first()? {
            b'\'' | b'c' | b'(' | b'r' => decode_text(lit).map(Value::Text),
            b'X' | b'x' => blob(lit).map(Value::Blob),
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

    /// Whether SQLite calls the two values equal, comparing text with `coll`.
    pub fn equal(&self, other: &Value, coll: Collation) -> bool {
        match (self, other) {
            (Value::Text(a), Value::Text(b)) => {
                let (mut a, mut b) = (a.clone(), b.clone());
                coll.fold(&mut a);
                coll.fold(&mut b);
                a == b
            }
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

/// Append to `key` bytes for the literal `lit` of a key column compared with `coll`: equal
/// exactly when SQLite calls the values equal. Each value is tagged and length-prefixed, so
/// the values of a composite key cannot run into each other.
pub fn key_bytes(key: &mut Vec<u8>, lit: &[u8], coll: Collation) {
    let value = match coll {
        Collation::Exact => None,
        _ => Value::of_literal(lit),
    };
    let (tag, mut bytes) = match value {
        Some(Value::Int(i)) => (b'i', i.to_be_bytes().to_vec()),
        Some(Value::Real(r)) => (b'r', r.to_bits().to_be_bytes().to_vec()),
        Some(Value::Text(t)) => (b't', t),
        Some(Value::Blob(b)) => (b'b', b),
        None => (b'l', lit.to_vec()),
    };
    if tag == b't' {
        coll.fold(&mut bytes);
    }
    key.push(tag);
    key.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    key.extend_from_slice(&bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(lit: &str, coll: Collation) -> Vec<u8> {
        let mut k = Vec::new();
        key_bytes(&mut k, lit.as_bytes(), coll);
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
            key_bytes(&mut k, b.as_bytes(), Binary);
            k
        };
        assert_ne!(two("'a'", "'bc'"), two("'ab'", "'c'"));
    }
}
