//! What changed between a table's pages at the last snapshot and now: the pages that differ,
//! and the rowid ranges of the rows they hold (where a partial read has to look).

use super::{Kind, Page};
use crate::dump::pagelist::PageList;

/// Inclusive rowid ranges.
pub type Ranges = Vec<(i64, i64)>;

/// The rowid ranges (inclusive, sorted, merged) in which rows may differ between a table's
/// pages at the last snapshot (`old`) and now (`new`): those of leaves and overflow pages that
/// changed, appeared or went away. Every other row is in an unchanged leaf, with an unchanged
/// overflow chain, in both.
pub fn changed_ranges(old: &PageList, new: &PageList) -> Vec<(i64, i64)> {
    let (leaves, overflow) = changed_ranges_split(old, new);
    merge_ranges(leaves.into_iter().chain(overflow).collect())
}

/// [`changed_ranges`] in two: the ranges of the leaves, and those of the overflow pages (rows
/// whose overflow chain changed, where the leaf holding them may not have).
pub fn changed_ranges_split(old: &PageList, new: &PageList) -> (Ranges, Ranges) {
    let same = |o: &Page, n: &Page| (o.kind, o.hash, o.lo) == (n.kind, n.hash, n.lo);
    let (mut leaves, mut overflow) = (Vec::new(), Vec::new());
    for (_, p) in changed_pages(old, new, same) {
        match p.kind {
            Kind::Leaf if p.lo <= p.hi => leaves.push((p.lo, p.hi)),
            Kind::Overflow if p.lo <= p.hi => overflow.push((p.lo, p.hi)),
            _ => {}
        }
    }
    (merge_ranges(leaves), merge_ranges(overflow))
}

/// Inclusive ranges sorted, and merged where they overlap or touch.
pub fn merge_ranges(mut ranges: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    ranges.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
}

/// Which map a page of [`changed_pages`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Old,
    New,
}

/// The pages of `old` and `new` (both in page number order, walked side by side) that are not
/// `same` at the same page number: both sides of a changed page, an old page gone, a new one.
pub fn changed_pages(
    old: &PageList,
    new: &PageList,
    same: impl Fn(&Page, &Page) -> bool,
) -> Vec<(Side, Page)> {
    let mut out = Vec::new();
    let (mut old, mut new) = (old.iter().peekable(), new.iter().peekable());
    loop {
        match (old.peek().copied(), new.peek().copied()) {
            (None, None) => break,
            (Some(o), Some(n)) if o.pgno == n.pgno => {
                if !same(&o, &n) {
                    out.push((Side::Old, o));
                    out.push((Side::New, n));
                }
                old.next();
                new.next();
            }
            (Some(o), Some(n)) if o.pgno > n.pgno => {
                out.push((Side::New, n));
                new.next();
            }
            (Some(o), _) => {
                out.push((Side::Old, o));
                old.next();
            }
            (None, Some(n)) => {
                out.push((Side::New, n));
                new.next();
            }
        }
    }
    out
}
