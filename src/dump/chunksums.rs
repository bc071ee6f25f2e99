//! Which chunks around a changed page really changed: each chunk's rows, summed as stored.
//!
//! An incremental run knows from the page map which leaves changed, and a leaf holds about 50
//! rows where a chunk file holds about 30: one changed row made it read every chunk its leaf
//! touched (2–3), formatting each row of them again to find the one that differed. The map
//! also keeps, for each chunk of a rowid table, its first rowid and the sum of its cells' keyed
//! hashes (see [`Pages::range_sums`]). Summing the same rowid range in the database as it is
//! now tells whether the chunk's rows are still the same bytes: only chunks whose sum changed
//! are read again. Rows that are the same bytes make the same SQL (the schema, encoding and
//! format are in the map's fingerprint), so a chunk whose sum is the same is the same file.
//!
//! A sum is a wrapping sum of 64-bit keyed hashes of the cells (rowid and record included),
//! so rows added, removed or changed all change it, but for a 2^-64 chance — the same odds the
//! page hashes already take. Overflow pages are not summed: a changed overflow page marks its
//! row's range as changed on its own, as before.

use anyhow::{Result, bail};

use super::pagelist::{put_varint, unzigzag, zigzag};
use super::pages::Pages;

/// A rowid table's chunks in order: each one's first rowid and the sum of its rows' cells.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChunkSums {
    /// Per chunk: the first rowid's difference from the one before (zigzag varint), the sum.
    bytes: Vec<u8>,
    len: usize,
    last: i64,
}

impl ChunkSums {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Add the next chunk (`first` above every chunk's before it).
    pub fn push(&mut self, first: i64, sum: u64) {
        put_varint(&mut self.bytes, zigzag(first.wrapping_sub(self.last)));
        self.bytes.extend_from_slice(&sum.to_le_bytes());
        self.last = first;
        self.len += 1;
    }

    /// The chunks: (first rowid, sum), in order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        let mut at = 0usize;
        let mut last = 0i64;
        (0..self.len).map(move |_| {
            let (delta, n) = get_varint(&self.bytes[at..]).expect("checked when made");
            last = last.wrapping_add(unzigzag(delta));
            let sum = u64::from_le_bytes(self.bytes[at + n..at + n + 8].try_into().expect("8"));
            at += n + 8;
            (last, sum)
        })
    }

    /// The bytes [`ChunkSums::from_bytes`] reads back.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// `len` chunks from `bytes` (as [`ChunkSums::as_bytes`] gave them); an error unless they
    /// are exactly that many, in ascending order.
    pub fn from_bytes(bytes: Vec<u8>, len: usize) -> Result<ChunkSums> {
        let (mut at, mut last) = (0usize, 0i64);
        for i in 0..len {
            let Some((delta, n)) = get_varint(&bytes[at.min(bytes.len())..]) else {
                bail!("chunk sums end early");
            };
            let first = last.wrapping_add(unzigzag(delta));
            if (i > 0 && first <= last) || at + n + 8 > bytes.len() {
                bail!("chunk sums out of order or cut short");
            }
            (at, last) = (at + n + 8, first);
        }
        if at != bytes.len() {
            bail!("chunk sums longer than their count");
        }
        Ok(ChunkSums { bytes, len, last })
    }

    /// Each chunk's rowid range (inclusive; the last one's to the largest rowid) and sum,
    /// after the range before the first chunk, which has no rows (sum 0).
    fn ranges(&self) -> impl Iterator<Item = ((i64, i64), u64)> + '_ {
        // Nothing lies before a first chunk that starts at the smallest rowid.
        let before = self.iter().next().is_none_or(|(first, _)| first > i64::MIN);
        with_ranges(
            before
                .then_some((i64::MIN, 0))
                .into_iter()
                .chain(self.iter()),
        )
    }
}

/// What [`narrow`] found.
pub struct Narrowed {
    /// The ranges of the previous chunks whose rows changed: the only ones to read.
    pub changed: Vec<(i64, i64)>,
    /// Every range summed, with its sum now (in order): a chunk read that came out with the
    /// same range needs no summing again.
    pub summed: Vec<((i64, i64), u64)>,
}

/// The chunks of `old` that hold a row of `changed` (inclusive rowid ranges, sorted and
/// merged, from leaves whose hash changed), summed again in the table at `rootpage`.
pub fn narrow(
    pages: &mut Pages,
    rootpage: u32,
    old: &ChunkSums,
    changed: &[(i64, i64)],
) -> Result<Narrowed> {
    let touched: Vec<((i64, i64), u64)> = overlapping(old.ranges(), changed).collect();
    let ranges: Vec<(i64, i64)> = touched.iter().map(|t| t.0).collect();
    let now = pages.range_sums(rootpage, &ranges)?;
    let changed = touched
        .iter()
        .zip(&now)
        .filter(|((_, was), is)| was != *is)
        .map(|(t, _)| t.0)
        .collect();
    Ok(Narrowed {
        changed,
        summed: ranges.into_iter().zip(now).collect(),
    })
}

/// The sums of the chunks a partial read left: the previous chunks outside what it read
/// (`read`: inclusive ranges, each from a previous chunk's start to the next one kept) with
/// their sums, and the chunks it read (`firsts`, in order): their sums from `summed` where
/// [`narrow`] summed the same range, else summed in the table at `rootpage`.
///
/// A chunk kept lies outside every range the read was given, so its rows are the same: those
/// next to a changed leaf were just summed again by [`narrow`] and found the same, and those
/// next to a changed overflow page were read. A kept chunk whose range is not what it was (the
/// chunk after it is another one now) is summed again all the same.
pub fn after_partial_read(
    pages: &mut Pages,
    rootpage: u32,
    old: &ChunkSums,
    read: &[(i64, i64)],
    firsts: &[i64],
    summed: &[((i64, i64), u64)],
) -> Result<ChunkSums> {
    let chunks = || kept_and_read(old, read, firsts);
    let known = |range: (i64, i64), kept: Kept| -> Option<u64> {
        match kept {
            Some((was, sum)) if was == range => Some(sum),
            _ => {
                let at = summed.binary_search_by_key(&range, |s| s.0).ok()?;
                Some(summed[at].1)
            }
        }
    };
    let fresh: Vec<(i64, i64)> = with_ranges(chunks())
        .filter(|(range, kept)| known(*range, *kept).is_none())
        .map(|(range, _)| range)
        .collect();
    let mut fresh = pages.range_sums(rootpage, &fresh)?.into_iter();
    let mut out = ChunkSums::default();
    for (range, kept) in with_ranges(chunks()) {
        let sum = match known(range, kept) {
            Some(sum) => sum,
            None => fresh.next().expect("a sum for each chunk summed"),
        };
        out.push(range.0, sum);
    }
    Ok(out)
}

/// The chunks of a table read whole: their first rowids (in order) and sums (as the walk of
/// the table's pages summed them, see [`super::pages::What::firsts`]).
pub fn whole(firsts: &[i64], sums: &[u64]) -> ChunkSums {
    let mut out = ChunkSums::default();
    for (first, sum) in firsts.iter().zip(sums) {
        out.push(*first, *sum);
    }
    out
}

/// A previous chunk kept: its range and sum then (None: a chunk read).
type Kept = Option<((i64, i64), u64)>;

/// The previous chunks not inside `read` (with their ranges and sums then) and the chunks
/// read (`firsts`, without), merged in order.
fn kept_and_read<'a>(
    old: &'a ChunkSums,
    read: &'a [(i64, i64)],
    firsts: &'a [i64],
) -> impl Iterator<Item = (i64, Kept)> + 'a {
    let mut span = 0usize;
    let kept = with_ranges(old.iter()).filter(move |((first, _), _)| {
        while span < read.len() && read[span].1 < *first {
            span += 1;
        }
        !(span < read.len() && read[span].0 <= *first)
    });
    let mut kept = kept
        .map(|(range, sum)| (range.0, Some((range, sum))))
        .peekable();
    let mut read_firsts = firsts.iter().map(|&f| (f, None)).peekable();
    std::iter::from_fn(move || match (kept.peek(), read_firsts.peek()) {
        (Some(k), Some(r)) if k.0 < r.0 => kept.next(),
        (Some(_), Some(_)) | (None, Some(_)) => read_firsts.next(),
        (Some(_), None) => kept.next(),
        (None, None) => None,
    })
}

/// Chunks (first rowid, anything) in order, with each one's rowid range (to the next one's).
fn with_ranges<T>(chunks: impl Iterator<Item = (i64, T)>) -> impl Iterator<Item = ((i64, i64), T)> {
    let mut chunks = chunks.peekable();
    std::iter::from_fn(move || {
        let (first, x) = chunks.next()?;
        let upto = chunks
            .peek()
            .map_or(i64::MAX, |next| next.0.saturating_sub(1));
        Some(((first, upto), x))
    })
}

/// The items of `ranges` (in order) that overlap one of `changed` (sorted, disjoint).
fn overlapping<'a, T: 'a>(
    ranges: impl Iterator<Item = ((i64, i64), T)> + 'a,
    changed: &'a [(i64, i64)],
) -> impl Iterator<Item = ((i64, i64), T)> + 'a {
    let mut c = 0usize;
    ranges.filter(move |((lo, hi), _)| {
        while c < changed.len() && changed[c].1 < *lo {
            c += 1;
        }
        c < changed.len() && changed[c].0 <= *hi
    })
}

fn get_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut n = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((n, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_round_trip_through_their_bytes() {
        let mut s = ChunkSums::default();
        for (first, sum) in [
            (i64::MIN, 1),
            (-5, u64::MAX),
            (0, 0),
            (1 << 40, 7),
            (i64::MAX, 9),
        ] {
            s.push(first, sum);
        }
        let back = ChunkSums::from_bytes(s.as_bytes().to_vec(), s.len()).unwrap();
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            s.iter().collect::<Vec<_>>()
        );
        assert!(ChunkSums::from_bytes(s.as_bytes().to_vec(), s.len() + 1).is_err());
        assert!(ChunkSums::from_bytes(s.as_bytes()[..5].to_vec(), s.len()).is_err());
    }

    #[test]
    fn ranges_cover_every_rowid_once() {
        let mut s = ChunkSums::default();
        s.push(10, 1);
        s.push(20, 2);
        let r: Vec<_> = s.ranges().collect();
        assert_eq!(
            r,
            vec![((i64::MIN, 9), 0), ((10, 19), 1), ((20, i64::MAX), 2)]
        );
        let mut from_min = ChunkSums::default();
        from_min.push(i64::MIN, 3);
        assert_eq!(
            from_min.ranges().collect::<Vec<_>>(),
            vec![((i64::MIN, i64::MAX), 3)]
        );
    }

    #[test]
    fn a_partial_read_replaces_the_chunks_inside_what_it_read() {
        let mut old = ChunkSums::default();
        for (f, s) in [(1, 11), (10, 12), (20, 13), (30, 14)] {
            old.push(f, s);
        }
        let merged: Vec<_> = kept_and_read(&old, &[(10, 29)], &[12, 25]).collect();
        assert_eq!(
            merged,
            vec![
                (1, Some(((1, 9), 11))),
                (12, None),
                (25, None),
                (30, Some(((30, i64::MAX), 14)))
            ]
        );
        let to_end: Vec<_> = kept_and_read(&old, &[(20, i64::MAX)], &[20]).collect();
        let firsts: Vec<i64> = to_end.iter().map(|c| c.0).collect();
        assert_eq!(firsts, vec![1, 10, 20]);
        assert_eq!(to_end[1].1, Some(((10, 19), 12)));
    }

    #[test]
    fn only_chunks_next_to_a_change_are_looked_at() {
        let ranges = [
            ((1, 9), 'a'),
            ((10, 19), 'b'),
            ((20, 29), 'c'),
            ((30, 99), 'd'),
        ];
        let hit: Vec<char> = overlapping(ranges.into_iter(), &[(12, 21), (95, 200)])
            .map(|(_, x)| x)
            .collect();
        assert_eq!(hit, vec!['b', 'c', 'd']);
    }
}
