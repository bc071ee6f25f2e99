//! Which rows of two versions of a table are the same row: by rowid, by key values, or (no key
//! both sides share) as multisets of rows.
//!
//! Key columns pair by name through the [`Alignment`]; a key column renamed (removed on the
//! older side, added on the newer) pairs with the one left on the other side, else with the
//! one at its place in the table, as `history` follows a key back (see
//! [`super::keymatch::KeyColumns`]), so a migration that renames a key column matches rows as
//! before. Each pair of key columns compares values as SQLite compares that key
//! ([`super::keyvalue`]): `'alice'` and `'Alice'` are one key under NOCASE, `1` and `1.0` one
//! number. A renamed pair compares literals exactly: its values are in no row comparison (the
//! column was removed and added), so a value respelled there must not pass for no change.

use super::keymatch::pair_renamed;
use super::keyvalue::Collation;
use super::shape::{Alignment, KeyKind, Shape};

/// How rows of the two sides are matched.
#[derive(Debug, PartialEq, Eq)]
pub enum Matching {
    /// Both sides keyed by rowid, rows in rowid order: a streaming merge.
    Rowid { from: usize, to: usize },
    /// By primary key values: the older side's positions, the newer side's, and how each pair
    /// compares.
    Keyed {
        from: Vec<usize>,
        to: Vec<usize>,
        compare: Vec<Collation>,
    },
    /// As multisets of rows.
    Multiset,
}

impl Shape {
    /// How the key compares the value at `pos`: the collation of a WITHOUT ROWID table's key
    /// column, BINARY for any other value.
    pub fn collation_at(&self, pos: usize) -> Collation {
        match &self.key {
            KeyKind::Columns(positions) => positions
                .iter()
                .position(|&p| p == pos)
                .and_then(|n| self.key_collations.get(n))
                .map_or(Collation::Binary, |c| Collation::named(c)),
            _ => Collation::Binary,
        }
    }
}

impl Alignment {
    /// How to match rows of shapes `from` and `to` (both present): by rowid when both are
    /// rowid tables; else by the key columns both name alike (or renamed), in any order (a
    /// table rebuilt as WITHOUT ROWID keyed by its old INTEGER PRIMARY KEY, or back; a key
    /// whose columns were reordered or renamed); else as multisets of whole rows.
    pub fn matching(&self, from: &Shape, to: &Shape) -> Matching {
        if let (KeyKind::Rowid { pos: f, .. }, KeyKind::Rowid { pos: t, .. }) = (&from.key, &to.key)
        {
            return Matching::Rowid { from: *f, to: *t };
        }
        // A rowid table whose rowid is no column is matched by its declared key, if any.
        let columns = |shape: &Shape| match shape.key {
            KeyKind::Rowid { pos, .. } if shape.rowid_value == Some(pos) => {
                shape.declared_key.clone()
            }
            _ => shape.key_positions(),
        };
        let (f, t) = (columns(from), columns(to));
        if f.len() != t.len() || f.is_empty() {
            return Matching::Multiset;
        }
        // The to-side key column that is the same (union) column as each from-side one.
        let mut paired: Vec<Option<(usize, Collation)>> = f
            .iter()
            .map(|&fp| {
                let union = self.union_of_from(fp)?;
                let tp = t
                    .iter()
                    .copied()
                    .find(|&tp| self.union_of_to(tp) == Some(union))?;
                let compare = Collation::shared(from.collation_at(fp), to.collation_at(tp));
                Some((tp, compare))
            })
            .collect();
        self.pair_renamed(&f, &t, &mut paired);
        match paired.into_iter().collect::<Option<Vec<_>>>() {
            Some(pairs) => Matching::Keyed {
                from: f,
                to: pairs.iter().map(|p| p.0).collect(),
                compare: pairs.iter().map(|p| p.1).collect(),
            },
            None => Matching::Multiset,
        }
    }

    /// Pair the from-side key columns `f` left unpaired that the newer side removed with the
    /// to-side key columns `t` it added: the one left on each side, else the one at the same
    /// place in the table.
    fn pair_renamed(&self, f: &[usize], t: &[usize], paired: &mut [Option<(usize, Collation)>]) {
        let removed = |fp: usize| self.union_of_from(fp).is_some_and(|u| self.to[u].is_none());
        let added: Vec<usize> = (t.iter().copied())
            .filter(|&tp| self.union_of_to(tp).is_some_and(|u| self.from[u].is_none()))
            .collect();
        let left: Vec<usize> = (0..f.len())
            .filter(|&j| paired[j].is_none() && removed(f[j]))
            .collect();
        // Positions paired by name are no candidates; the rest pair as `history` follows them.
        let mut found: Vec<Option<usize>> = paired.iter().map(|p| p.map(|p| p.0)).collect();
        pair_renamed(&mut found, &left, &added, |j| f[j]);
        for j in left {
            paired[j] = found[j].map(|tp| (tp, Collation::Exact));
        }
    }

    fn union_of_from(&self, pos: usize) -> Option<usize> {
        self.from.iter().position(|&p| p == Some(pos))
    }

    fn union_of_to(&self, pos: usize) -> Option<usize> {
        self.to.iter().position(|&p| p == Some(pos))
    }
}
