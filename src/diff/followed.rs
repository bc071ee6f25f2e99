//! The row `sqlgit history` follows from one snapshot back to the one before, as `diff` pairs
//! rows across that step.
//!
//! KEY, as the user typed it, is read once: in the newest version of the table that holds the
//! row, in that version's key collations (`alice` finds `'Alice'` under NOCASE). From then on
//! the row is followed by its stored key values, never by KEY again: a row of the older version
//! is the same row when its key equals the newer row's key as `diff` compares the two versions'
//! keys — in the collation both share, else BINARY, and a renamed key column by its exact
//! literal ([`super::pairing`]). So a table rebuilt with another collation (BINARY `'a'` and
//! `'A'` made one NOCASE key `'A'`) shows the row `diff` shows, not another one spelled as KEY.
//! In the snapshots where the row does not exist (before its insert, after its delete) the key
//! is carried over with the comparison narrowed to what every step it crossed shares, so a row
//! met there again is the one each step's `diff` would pair with it.

use super::keymatch;
use super::keyvalue::{Collation, Encoding, key_bytes};
use super::rows::RowRef;
use super::shape::Shape;

/// What is known of the followed row in the version of the table looked at last.
#[derive(Clone, Debug)]
pub enum Followed {
    /// Not met yet: KEY as typed, compared per value in these collations (None: in the first
    /// version's own).
    Typed(Option<Vec<Collation>>),
    /// The row's stored key literals (per KEY value) in a database of encoding `enc`, compared
    /// in these collations; `present`: the row exists in that version.
    Stored {
        lits: Vec<Vec<u8>>,
        enc: Encoding,
        colls: Vec<Collation>,
        present: bool,
    },
}

/// How rows of one version are tested for the followed key (the rows cache is keyed by it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Filter {
    /// Per KEY value: how its column's values compare here.
    colls: Vec<Collation>,
    /// The key's bytes as compared ([`key_bytes`] per value), or None for KEY as typed.
    stored: Option<Vec<Vec<u8>>>,
    /// The text encoding of the rows tested.
    enc: Encoding,
}

/// The comparison two collations share; an exact literal stays exact.
fn meet(a: Collation, b: Collation) -> Collation {
    if a == Collation::Exact || b == Collation::Exact {
        Collation::Exact
    } else {
        Collation::shared(a, b)
    }
}

impl Followed {
    /// How to find the row in a version of shape `shape` whose KEY value `j` is at `pairs`'
    /// position (value position, j); `renamed[j]`: that key column was renamed since the
    /// version looked at last.
    pub fn filter(&self, shape: &Shape, pairs: &[(usize, usize)], renamed: &[bool]) -> Filter {
        let mut colls = vec![Collation::Binary; pairs.len()];
        for &(p, j) in pairs {
            let here = shape.collation_at(p);
            colls[j] = match self {
                Followed::Stored { .. } if renamed.get(j).copied().unwrap_or(false) => {
                    Collation::Exact
                }
                Followed::Typed(None) => here,
                Followed::Typed(Some(c)) | Followed::Stored { colls: c, .. } => {
                    c.get(j).map_or(here, |&c| meet(c, here))
                }
            };
        }
        let stored = match self {
            Followed::Typed(_) => None,
            Followed::Stored { lits, enc, .. } => Some(
                lits.iter()
                    .zip(&colls)
                    .map(|(lit, &c)| one_key(lit, c, *enc))
                    .collect(),
            ),
        };
        Filter {
            colls,
            stored,
            enc: shape.encoding,
        }
    }

    /// Whether KEY, still as typed (no row found yet), compares otherwise in the older side
    /// (`old`: its shape and KEY's positions) than in the newer: then whether the newer side
    /// has the row must be known first.
    pub fn narrows(
        &self,
        new: Option<(&Shape, &[(usize, usize)])>,
        old: Option<(&Shape, &[(usize, usize)])>,
        renamed: &[bool],
    ) -> bool {
        match (self, new, old) {
            (Followed::Typed(_), Some((new, np)), Some((old, op))) => {
                self.filter(new, np, &[]).colls != self.filter(old, op, renamed).colls
            }
            _ => false,
        }
    }

    /// Whether the row is known to exist in the version looked at last.
    pub fn present(&self) -> bool {
        matches!(self, Followed::Stored { present: true, .. })
    }

    /// The row was found in a version (`pairs`: KEY's positions there): follow its stored key.
    pub fn found(&mut self, shape: &Shape, pairs: &[(usize, usize)], row: RowRef) {
        let mut lits = vec![Vec::new(); pairs.len()];
        let mut colls = vec![Collation::Binary; pairs.len()];
        for &(p, j) in pairs {
            lits[j] = row.value(p).to_vec();
            colls[j] = shape.collation_at(p);
        }
        *self = Followed::Stored {
            lits,
            enc: shape.encoding,
            colls,
            present: true,
        };
    }

    /// The row is not among the rows searched in a version (`filter`: how it was searched;
    /// `here`: the version's shape and KEY's positions, None without the table). `unseen`: the
    /// row is there all the same, unchanged in a chunk both versions of the step share, so it
    /// stays present with the same literals. Else its key is kept, compared from now on only as
    /// every step crossed so far compares it.
    pub fn missed(
        &mut self,
        filter: Option<&Filter>,
        here: Option<(&Shape, &[(usize, usize)])>,
        unseen: bool,
    ) {
        match self {
            Followed::Typed(c) => {
                if let Some(f) = filter {
                    *c = Some(f.colls.clone());
                }
            }
            Followed::Stored { colls, present, .. } => {
                *present = unseen && here.is_some();
                match (here, filter) {
                    (Some((shape, pairs)), _) if *present => {
                        for &(p, j) in pairs {
                            colls[j] = shape.collation_at(p);
                        }
                    }
                    (_, Some(f)) => *colls = f.colls.clone(),
                    _ => {}
                }
            }
        }
    }
}

impl Filter {
    /// Whether `row` holds the followed key (`key`: KEY as typed, `pairs` as for
    /// [`Followed::filter`]).
    pub fn accepts(
        &self,
        shape: &Shape,
        pairs: &[(usize, usize)],
        key: &[String],
        row: RowRef,
    ) -> bool {
        pairs.iter().all(|&(p, j)| {
            let c = self.colls[j];
            match &self.stored {
                Some(bytes) => one_key(row.value(p), c, self.enc) == bytes[j],
                None => {
                    let untyped = shape.untyped.get(p).copied().unwrap_or(false);
                    keymatch::matches(row.value(p), &key[j], untyped, (c, self.enc))
                }
            }
        })
    }
}

fn one_key(lit: &[u8], coll: Collation, enc: Encoding) -> Vec<u8> {
    let mut key = Vec::new();
    key_bytes(&mut key, lit, coll, enc);
    key
}
