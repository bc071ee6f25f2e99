//! Values that no INSERT can write back as they are. SQLite applies a column's affinity to every
//! value an INSERT or UPDATE stores, but a database can hold values the affinity would have
//! converted: a column's declared type changed through `writable_schema`, or rows written by old
//! software. TEXT `'12'` in an INTEGER column, INTEGER `12` in a TEXT column, REAL `3.0` in a
//! NUMERIC one: every restore (the dump's INSERTs, whatever runs them) gives these back
//! converted. SQL has no statement that stores them unconverted, so the dump cannot be exact
//! for them; this finds them where rows are written, so a run names each column and the one
//! statement that makes the source consistent (`UPDATE "t" SET "c" = "c"` stores every value
//! of the column through its affinity).

use std::sync::Mutex;

use super::literal::{quote_ident, write_cell};
use super::stmt::Cell;

/// A column's type affinity (SQLite's rules for a declared type); `Blob` is "none".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affinity {
    Text,
    Numeric,
    Integer,
    Real,
    Blob,
}

impl Affinity {
    /// The affinity of a column declared `decl` (`strict`: a STRICT table, where ANY has none).
    pub fn of_declared(decl: &str, strict: bool) -> Affinity {
        let d = decl.to_ascii_uppercase();
        if d.contains("INT") {
            Affinity::Integer
        } else if ["CHAR", "CLOB", "TEXT"].iter().any(|s| d.contains(s)) {
            Affinity::Text
        } else if d.contains("BLOB") || d.trim().is_empty() || (strict && d.trim() == "ANY") {
            Affinity::Blob
        } else if ["REAL", "FLOA", "DOUB"].iter().any(|s| d.contains(s)) {
            Affinity::Real
        } else {
            Affinity::Numeric
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Affinity::Text => "TEXT",
            Affinity::Numeric => "NUMERIC",
            Affinity::Integer => "INTEGER",
            Affinity::Real => "REAL",
            Affinity::Blob => "BLOB",
        }
    }

    /// Whether storing `cell` in a column of this affinity changes it: its storage class, or
    /// (REAL affinity, which keeps an integral REAL as an integer in the record) the sign of a
    /// REAL -0.0, which every numeric affinity stores as 0. The common case costs a branch;
    /// only TEXT in a numeric column is looked at.
    pub fn converts(self, cell: &Cell<'_>) -> bool {
        match (self, cell) {
            (Affinity::Blob, _) | (_, Cell::Null | Cell::Blob(_)) => false,
            (Affinity::Text, Cell::Integer(_) | Cell::Real(_)) => true,
            (Affinity::Text, _) => false,
            (_, Cell::Text(t)) => text_is_numeric(t),
            (_, &Cell::Text16 { bytes, big_endian }) => text16_is_numeric(bytes, big_endian),
            (Affinity::Real, Cell::Integer(_)) => true,
            (Affinity::Real, &Cell::Real(r)) => is_negative_zero(r),
            (_, Cell::Integer(_)) => false,
            (_, &Cell::Real(r)) => real_becomes_integer(r),
        }
    }
}

impl Affinity {
    /// [`Affinity::converts`] by the SQLite built into sqlgit (3.54, what `restore --to/--into`
    /// store with), which also reads a number up to a NUL byte: TEXT '1'||char(0)||'2' in a
    /// numeric column is stored as 1, where sqlite3 3.40 (a `cat | sqlite3` restore) keeps it.
    pub fn converts_when_bound(self, cell: &Cell<'_>) -> bool {
        self.converts(cell)
            || match (self, cell) {
                (Affinity::Text | Affinity::Blob, _) => false,
                (_, Cell::Text(t)) => t
                    .iter()
                    .position(|&b| b == 0)
                    .is_some_and(|nul| text_is_numeric(&t[..nul])),
                _ => false,
            }
    }
}

/// SQLite's `sqlite3VdbeIntegerAffinity`: an integral REAL strictly between -2^63 and 2^63-1
/// becomes an INTEGER (−0.0 too).
pub fn real_becomes_integer(r: f64) -> bool {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    r > -TWO63 && r < TWO63 && r.fract() == 0.0
}

/// REAL -0.0, which a column of REAL affinity stores as +0.0 (as the integer 0 in the record).
pub fn is_negative_zero(r: f64) -> bool {
    r == 0.0 && r.is_sign_negative()
}

/// SQLite's `sqlite3AtoF` accepting the whole text as a number (what numeric affinity
/// converts): optional spaces, a sign, digits with at most one point (at least one digit), an
/// optional exponent with digits, optional spaces. No hex, no `inf`.
pub fn text_is_numeric(t: &[u8]) -> bool {
    let space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let mut i = 0;
    let n = t.len();
    while i < n && space(t[i]) {
        i += 1;
    }
    if i < n && (t[i] == b'-' || t[i] == b'+') {
        i += 1;
    }
    let mut digits = 0;
    while i < n && t[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < n && t[i] == b'.' {
        i += 1;
        while i < n && t[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if i < n && (t[i] == b'e' || t[i] == b'E') {
        i += 1;
        if i < n && (t[i] == b'-' || t[i] == b'+') {
            i += 1;
        }
        let start = i;
        while i < n && t[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    while i < n && space(t[i]) {
        i += 1;
    }
    i == n && digits > 0
}

/// [`text_is_numeric`] for UTF-16 code units: SQLite takes any unit above 0xFF as not a number.
fn text16_is_numeric(bytes: &[u8], big_endian: bool) -> bool {
    bytes.len().is_multiple_of(2) && narrow(bytes, big_endian).is_some_and(|t| text_is_numeric(&t))
}

fn narrow(bytes: &[u8], big_endian: bool) -> Option<Vec<u8>> {
    bytes
        .chunks_exact(2)
        .map(|u| {
            let (hi, lo) = if big_endian {
                (u[0], u[1])
            } else {
                (u[1], u[0])
            };
            (hi == 0 && lo < 0x80).then_some(lo)
        })
        .collect()
}

/// What a dump found in one column: values its affinity converts on any write.
#[derive(Debug, Clone)]
struct Found {
    column: usize,
    count: u64,
    /// The first one, as `TEXT '12'`.
    example: String,
}

/// The values of one table that restores give back converted, noted while its rows are
/// written (by any thread: a lock is taken only for such a value).
#[derive(Debug, Default)]
pub struct Converted {
    found: Mutex<Vec<Found>>,
}

impl Converted {
    /// Note `cell`, a value of stored column `column` that its affinity converts.
    pub fn note(&self, column: usize, cell: &Cell<'_>) {
        let Ok(mut found) = self.found.lock() else {
            return;
        };
        if let Some(f) = found.iter_mut().find(|f| f.column == column) {
            f.count += 1;
            return;
        }
        found.push(Found {
            column,
            count: 1,
            example: example(cell),
        });
    }

    /// One warning line per column (empty when none): `names` and `affinities` are the
    /// table's stored columns.
    pub fn lines(&self, table: &str, names: &[String], affinities: &[Affinity]) -> Vec<String> {
        let mut found = self.found.lock().map(|f| f.clone()).unwrap_or_default();
        found.sort_by_key(|f| f.column);
        found
            .into_iter()
            .map(|f| {
                let column = names.get(f.column).map_or("?", |s| s.as_str());
                let affinity = affinities.get(f.column).map_or("?", |a| a.name());
                warning_line(table, column, affinity, f.count, &f.example)
            })
            .collect()
    }
}

/// The warning for `count` values of `table`.`column` that restores give back converted.
pub fn warning_line(
    table: &str,
    column: &str,
    affinity: &str,
    count: u64,
    example: &str,
) -> String {
    // Names as diff and query show them: a name's ESC or line feed as `\x1b`, `\x0a`.
    let escaped = |name: &str| crate::diff::show::escape_controls(&quote_ident(name));
    let (t, c) = (escaped(table), escaped(column));
    let values = if count == 1 { "value" } else { "values" };
    format!(
        "table {t} column {c}: {count} {values} (e.g. {example}) that its {affinity} affinity \
         does not store as they are (another storage class, or the sign of REAL -0.0); no INSERT \
         can store them as they are, so every restore gives them back converted; to make the \
         source database consistent, run on it: UPDATE {t} SET {c} = {c}"
    )
}

/// A value as `TEXT '12'`, at most about 60 bytes.
fn example(cell: &Cell<'_>) -> String {
    let class = match cell {
        Cell::Integer(_) => "INTEGER",
        Cell::Real(_) => "REAL",
        Cell::Text(_) | Cell::Text16 { .. } => "TEXT",
        Cell::Blob(_) => "BLOB",
        Cell::Null => "NULL",
    };
    let mut sql = Vec::new();
    write_cell(&mut sql, *cell);
    let mut text = String::from_utf8_lossy(&sql).into_owned();
    if text.len() > 60 {
        let cut = (0..=60)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    format!("{class} {text}")
}

#[cfg(test)]
mod tests;
