//! Which stored key value a value given on the command line names (`sqlgit history TABLE KEY`).
//!
//! A key is matched exactly, by value and storage class, as SQLite compares keys: in a column
//! without a type (BLOB affinity) the integer `1`, the text `'1'` and the blob `X'31'` are three
//! different keys, so a history must never take one for another. What a user types is read
//! first as the SQL literal `diff` and `query` print (`'p'||char(10)||'q'`, `X'00ff'`, a number
//! — also a REAL the dump writes as `ieee754(M,E)`, found from the decimal `query` prints), and
//! a bare word as the text it spells. A number given for a typed column (TEXT, INTEGER, …) also
//! finds the text with those characters: there SQLite's affinity never keeps both.

use anyhow::{Result, bail};

use super::keyvalue::{Collation, Encoding, Value};
use super::rows::decode_text;
use super::shape::{KeyKind, Shape};
use super::show;
use crate::dump::real::ieee754_literal;

/// How to find the row KEY names in one version of its table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Probe {
    /// The value at `pos` is this rowid.
    Rowid { pos: usize, rowid: i64 },
    /// For each (value position, index in KEY): that value is KEY's.
    Values(Vec<(usize, usize)>),
}

/// A renamed key column: each of the key columns `left` (indices into `found`, not paired by
/// name) pairs with the one position of `candidates` no column took when one is left on each
/// side, else with its own place (`place(j)`) when no column took that. `diff` pairs two
/// versions' keys and `history` follows a key back by this one rule.
pub fn pair_renamed(
    found: &mut [Option<usize>],
    left: &[usize],
    candidates: &[usize],
    place: impl Fn(usize) -> usize,
) {
    let unpaired = |found: &[Option<usize>]| -> Vec<usize> {
        candidates
            .iter()
            .copied()
            .filter(|p| !found.contains(&Some(*p)))
            .collect()
    };
    if left.len() == 1 && unpaired(found).len() == 1 {
        found[left[0]] = Some(unpaired(found)[0]);
        return;
    }
    for &j in left {
        if unpaired(found).contains(&place(j)) {
            found[j] = Some(place(j));
        }
    }
}

/// Which columns hold KEY's values, followed from the newest snapshot back one version at a
/// time: a key column keeps its name, or (renamed) its place in the table.
pub struct KeyColumns<'a> {
    key: &'a [String],
    /// The newest version is keyed by rowid (KEY is one integer); else by column values.
    by_rowid: Option<bool>,
    /// For each KEY value, its column's name and value position in the version looked at last.
    last: Vec<(String, usize)>,
    /// For each KEY value: its column was renamed between the last two versions looked at.
    renamed: Vec<bool>,
}

impl<'a> KeyColumns<'a> {
    pub fn new(key: &'a [String]) -> KeyColumns<'a> {
        KeyColumns {
            key,
            by_rowid: None,
            last: Vec::new(),
            renamed: Vec::new(),
        }
    }

    pub fn key(&self) -> &'a [String] {
        self.key
    }

    /// For each KEY value: its column was paired by its place (renamed) in the last probe, not
    /// by name.
    pub fn renamed(&self) -> &[bool] {
        &self.renamed
    }

    /// Whether rows are found by column values (in the chunks that changed) rather than by
    /// rowid (in the one chunk named for it).
    pub fn by_values(&self) -> bool {
        self.by_rowid == Some(false)
    }

    /// How to find the row in a version of the table (call newest first, each version once or
    /// again right away).
    pub fn probe(&mut self, shape: &Shape) -> Result<Probe> {
        let name = &shape.name;
        let by_rowid = *self
            .by_rowid
            .get_or_insert(matches!(shape.key, KeyKind::Rowid { .. }));
        if shape.virtual_table {
            bail!(
                "table {name:?} is a virtual table here: its rows are stored in its shadow \
                 tables, ask for a row of one of them"
            );
        }
        match (&shape.key, by_rowid) {
            (KeyKind::Multiset, _) => bail!(
                "table {name:?} has no key a row can be named by (rowid, _rowid_ and oid are all \
                 column names)"
            ),
            (KeyKind::Rowid { pos, column }, true) => {
                let rowid = match self.key {
                    [k] => k.trim().parse::<i64>().ok(),
                    _ => None,
                };
                let Some(rowid) = rowid else {
                    bail!("table {name:?} is keyed by its rowid ({column}): give one integer");
                };
                Ok(Probe::Rowid { pos: *pos, rowid })
            }
            (KeyKind::Columns(positions), true) => bail!(
                "table {name:?} is a WITHOUT ROWID table here, keyed by {}: a rowid names none \
                 of its rows",
                names(shape, positions).join(", ")
            ),
            (KeyKind::Columns(positions), false) => {
                if self.last.is_empty() && positions.len() != self.key.len() {
                    bail!(
                        "table {name:?} has a primary key of {} column(s) ({}): give {} value(s)",
                        positions.len(),
                        names(shape, positions).join(", "),
                        positions.len()
                    );
                }
                self.follow(shape, positions)
            }
            // A rowid table here, WITHOUT ROWID in newer versions: its columns of those names.
            (KeyKind::Rowid { .. }, false) => {
                let all: Vec<usize> = (0..shape.columns.len())
                    .filter(|&p| Some(p) != shape.rowid_value)
                    .collect();
                self.follow(shape, &all)
            }
        }
    }

    /// Pair KEY's columns (as named in the version looked at last) with `candidates` of this
    /// version: by name, then a renamed one by its place.
    fn follow(&mut self, shape: &Shape, candidates: &[usize]) -> Result<Probe> {
        if self.last.is_empty() {
            self.last = candidates
                .iter()
                .map(|&p| (shape.columns[p].clone(), p))
                .collect();
        }
        let keyed = matches!(shape.key, KeyKind::Columns(_));
        self.renamed = vec![false; self.last.len()];
        let mut found: Vec<Option<usize>> = self
            .last
            .iter()
            .map(|(n, _)| {
                candidates
                    .iter()
                    .copied()
                    .find(|&p| shape.columns[p].eq_ignore_ascii_case(n))
            })
            .collect();
        if keyed {
            let left: Vec<usize> = (0..found.len()).filter(|&j| found[j].is_none()).collect();
            pair_renamed(&mut found, &left, candidates, |j| self.last[j].1);
            for j in left {
                self.renamed[j] = found[j].is_some();
            }
        }
        let missing: Vec<&str> = (0..found.len())
            .filter(|&j| found[j].is_none())
            .map(|j| self.last[j].0.as_str())
            .collect();
        if !missing.is_empty() || (keyed && candidates.len() != found.len()) {
            bail!(
                "table {:?} has no key column(s) here that {} became (its key here: {}): \
                 cannot tell which row KEY names",
                shape.name,
                missing.join(", "),
                match &shape.key {
                    KeyKind::Columns(p) => names(shape, p).join(", "),
                    _ => "the rowid".to_string(),
                }
            );
        }
        let found: Vec<usize> = found.into_iter().flatten().collect();
        self.last = found
            .iter()
            .map(|&p| (shape.columns[p].clone(), p))
            .collect();
        Ok(Probe::Values(
            found.into_iter().enumerate().map(|(j, p)| (p, j)).collect(),
        ))
    }
}

fn names(shape: &Shape, positions: &[usize]) -> Vec<String> {
    positions
        .iter()
        .map(|&p| show::name(&shape.columns[p]))
        .collect()
}

/// A numeric SQL literal's value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number {
    Int(i64),
    Real(f64),
}

/// The value of a decimal numeral (`42`, `-2.5e3`) or of `ieee754(M,E)`.
pub fn number(lit: &str) -> Option<Number> {
    let lit = lit.trim();
    if lit.starts_with("ieee754(") {
        return ieee754_literal(lit).map(Number::Real);
    }
    // An older sqlgit negated the literal: `-ieee754(M,E)`.
    if let Some(v) = lit
        .strip_prefix("-ieee754(")
        .and_then(|_| ieee754_literal(&lit[1..]))
    {
        return Some(Number::Real(-v));
    }
    let numeral = !lit.is_empty()
        && lit
            .bytes()
            .all(|c| c.is_ascii_digit() || b"+-.eE".contains(&c))
        && lit.bytes().any(|c| c.is_ascii_digit());
    if !numeral {
        return None;
    }
    match lit.parse::<i64>() {
        Ok(i) => Some(Number::Int(i)),
        Err(_) => lit.parse::<f64>().ok().map(Number::Real),
    }
}

/// Whether `given` is spelled as a text or blob literal (`'a'`, `'a'||char(10)`, `char(9)`,
/// `X'00'`, `CAST(X'ff' AS TEXT)`): then it names that value only, never the text of its
/// spelling.
fn quoted_literal(given: &str) -> bool {
    let g = given.trim();
    let blob = (g.starts_with("X'") || g.starts_with("x'"))
        && g.ends_with('\'')
        && g.len() >= 3
        && g[2..g.len() - 1].bytes().all(|b| b.is_ascii_hexdigit());
    blob || g.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("CAST("))
        || decode_text(g.as_bytes()).is_some()
}

/// Whether the dump literal `literal` of a key column is the value `given` names, as the key
/// compares values (`coll`: `'alice'` and `alice` find `'Alice'` under NOCASE) in a database
/// of encoding `enc` (what `CAST(X'..' AS TEXT)` spells, stored or given). `untyped`: the
/// column has BLOB affinity (no declared type), where a number and the text spelling it are
/// different keys.
pub fn matches(
    literal: &[u8],
    given: &str,
    untyped: bool,
    (coll, enc): (Collation, Encoding),
) -> bool {
    // The shown literal differs from the dump's where it spells text with char() or CAST, and
    // REALs the dump writes as ieee754(M,E).
    if literal == given.as_bytes() || show::literal(literal) == given {
        return true;
    }
    let stored = Value::of_literal(literal, enc);
    let given_number = number(given);
    let named = match given_number {
        Some(n) => Some(Value::of(n)),
        None if quoted_literal(given) => Value::of_literal(given.trim().as_bytes(), enc),
        // A bare word: the text it spells.
        None => Some(Value::typed(given)),
    };
    if let (Some(s), Some(n)) = (&stored, &named)
        && s.equal(n, coll)
    {
        return true;
    }
    // In a typed column a number also names the text it spells.
    let spelled = Value::typed(given);
    given_number.is_some() && !untyped && stored.is_some_and(|s| s.equal(&spelled, coll))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_match_literals_and_the_text_they_hold() {
        for untyped in [false, true] {
            let m = |l: &[u8], g: &str| matches(l, g, untyped, (Collation::Binary, Encoding::Utf8));
            assert!(m(b"42", "42"));
            assert!(m(b"'k 7'", "k 7"));
            assert!(m(b"'it''s'", "it's"));
            assert!(m(b"'it''s'", "'it''s'"));
            assert!(m(b"X'00ab'", "X'00ab'"));
            // As diff shows it: control characters as char(N).
            assert!(m(b"'\n'", "char(10)"));
            assert!(m(b"'p\nq'", "'p'||char(10)||'q'"));
            assert!(!m(b"'p\nq'", "'p\\nq'"));
            assert!(!m(b"'42'", "4"));
            assert!(!m(b"NULL", "null"));
            // Numbers by value, as SQL compares them.
            assert!(m(b"1.0", "1"));
            assert!(m(b"10", "10.0"));
            assert!(m(b"-2.5e3", "-2500"));
            assert!(!m(b"'1.0'", "1"));
            assert!(!m(b"9007199254740993", "9007199254740992"));
            assert!(!m(b"9007199254740993", "9007199254740992.0"));
            assert!(!m(b"1.5", "1"));
            // A literal names its value, not the text of its spelling.
            assert!(!m(b"'''a'''", "'a'"));
            assert!(!m(b"'X''31'''", "X'31'"));
            assert!(!m(b"X'31'", "1"));
        }
        // REALs the dump writes as ieee754(M,E), by the decimal query prints.
        let lit = b"ieee754(1968564498370125,-46)";
        assert!(matches(
            lit,
            "27.974984083842358",
            true,
            (Collation::Binary, Encoding::Utf8)
        ));
        assert!(matches(
            lit,
            "ieee754(1968564498370125,-46)",
            true,
            (Collation::Binary, Encoding::Utf8)
        ));
        assert!(!matches(
            lit,
            "27.97498408384236",
            true,
            (Collation::Binary, Encoding::Utf8)
        ));
        // 1 and '1' are different keys in an untyped column; in a typed one only one exists.
        assert!(!matches(
            b"'1'",
            "1",
            true,
            (Collation::Binary, Encoding::Utf8)
        ));
        assert!(matches(
            b"'1'",
            "1",
            false,
            (Collation::Binary, Encoding::Utf8)
        ));
        assert!(matches(
            b"'1'",
            "'1'",
            true,
            (Collation::Binary, Encoding::Utf8)
        ));
        assert!(!matches(
            b"1",
            "'1'",
            false,
            (Collation::Binary, Encoding::Utf8)
        ));
        // Text as the key's collation compares it.
        let nocase = |l: &[u8], g: &str| matches(l, g, false, (Collation::Nocase, Encoding::Utf8));
        assert!(nocase(b"'Alice'", "alice"));
        assert!(nocase(b"'Alice'", "'ALICE'"));
        assert!(!nocase(b"'Alice'", "'Alice '"));
        assert!(!matches(
            b"'Alice'",
            "alice",
            false,
            (Collation::Binary, Encoding::Utf8)
        ));
        assert!(matches(
            b"'a  '",
            "a",
            false,
            (Collation::Rtrim, Encoding::Utf8)
        ));
        assert!(!matches(
            b"1",
            "-0.0",
            true,
            (Collation::Binary, Encoding::Utf8)
        ));
        assert!(matches(
            b"0",
            "-0.0",
            true,
            (Collation::Binary, Encoding::Utf8)
        ));
    }
}
