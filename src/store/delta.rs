//! git's delta format, both ways: [`encode`] writes one (an old version of a chunk or a folder
//! as copies from its newer version plus the bytes that differ), [`apply`] reads one. Merged
//! packs store superseded versions this way (see `repack`), and the scrub rebuilds deltas whose
//! base was damaged. Also the offset field of an offset delta's pack entry.
//!
//! A delta starts with the base's and the result's sizes (little-endian base-128), then
//! instructions: a byte with the top bit set copies from the base (bits 0–3 say which offset
//! bytes follow, bits 4–6 which size bytes; size 0 means 0x10000), a byte 1–127 inserts that
//! many literal bytes.

use anyhow::{Context, Result, bail};

/// Bytes compared at a time when looking for copies (git's `diff-delta` uses 16 too).
const BLOCK: usize = 16;
/// The most one copy instruction copies.
const MAX_COPY: usize = 0x10000;
/// The most one insert instruction carries.
const MAX_INSERT: usize = 127;

/// A delta that turns `base` into `target`. The base is indexed by its 16-byte blocks (at
/// multiples of 16); every position of the target is looked up, a match is extended both ways,
/// and what matches nothing is inserted.
pub fn encode(base: &[u8], target: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + target.len() / 8);
    put_size(&mut out, base.len() as u64);
    put_size(&mut out, target.len() as u64);
    let table = BlockTable::new(base);
    let mut pending = 0; // start of the bytes not yet encoded
    let mut at = 0;
    while at + BLOCK <= target.len() {
        let Some(from) = table.find(base, &target[at..at + BLOCK]) else {
            at += 1;
            continue;
        };
        // Extend backwards over bytes that would otherwise be inserted, then forwards.
        let (mut from, mut start) = (from, at);
        while start > pending && from > 0 && base[from - 1] == target[start - 1] {
            from -= 1;
            start -= 1;
        }
        let mut end = at + BLOCK;
        let mut base_end = from + (end - start);
        while end < target.len() && base_end < base.len() && base[base_end] == target[end] {
            end += 1;
            base_end += 1;
        }
        insert(&mut out, &target[pending..start]);
        copy(&mut out, from, end - start);
        pending = end;
        at = end;
    }
    insert(&mut out, &target[pending..]);
    out
}

/// Where base blocks start, by a hash of their bytes (the first block with a hash wins).
struct BlockTable {
    slots: Vec<u32>,
    mask: usize,
}

impl BlockTable {
    fn new(base: &[u8]) -> BlockTable {
        let blocks = base.len() / BLOCK;
        let size = (blocks * 2).next_power_of_two().max(16);
        let mut table = BlockTable {
            slots: vec![u32::MAX; size],
            mask: size - 1,
        };
        for b in (0..blocks).rev() {
            let at = b * BLOCK;
            let slot = table.slot(&base[at..at + BLOCK]);
            table.slots[slot] = at as u32;
        }
        table
    }

    fn slot(&self, block: &[u8]) -> usize {
        let a = u64::from_le_bytes(block[..8].try_into().expect("8 bytes"));
        let b = u64::from_le_bytes(block[8..16].try_into().expect("8 bytes"));
        let h = (a ^ b.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 40) as usize & self.mask
    }

    /// Where in `base` the 16 bytes `block` are found (None: nowhere this table knows).
    fn find(&self, base: &[u8], block: &[u8]) -> Option<usize> {
        let at = self.slots[self.slot(block)];
        let at = usize::try_from(at)
            .ok()
            .filter(|&a| a != u32::MAX as usize)?;
        (base[at..at + BLOCK] == *block).then_some(at)
    }
}

fn put_size(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn insert(out: &mut Vec<u8>, bytes: &[u8]) {
    for piece in bytes.chunks(MAX_INSERT) {
        out.push(piece.len() as u8);
        out.extend_from_slice(piece);
    }
}

fn copy(out: &mut Vec<u8>, mut from: usize, mut len: usize) {
    while len > 0 {
        let n = len.min(MAX_COPY);
        let op_at = out.len();
        out.push(0x80);
        for i in 0..4 {
            let byte = (from >> (8 * i)) as u8;
            if byte != 0 {
                out[op_at] |= 1 << i;
                out.push(byte);
            }
        }
        if n != MAX_COPY {
            for i in 0..3 {
                let byte = (n >> (8 * i)) as u8;
                if byte != 0 {
                    out[op_at] |= 0x10 << i;
                    out.push(byte);
                }
            }
        }
        from += n;
        len -= n;
    }
}

/// Apply a git delta (base size, result size, then copy and insert instructions) to `base`.
pub fn apply(base: &[u8], delta: &[u8]) -> Result<Vec<u8>> {
    let mut at = 0;
    let mut size = || -> Result<u64> {
        let mut n = 0u64;
        let mut shift = 0;
        loop {
            let byte = *delta.get(at).context("short delta")?;
            at += 1;
            n |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 || shift > 63 {
                return Ok(n);
            }
        }
    };
    let (base_size, result_size) = (size()?, size()?);
    if base_size != base.len() as u64 {
        bail!("delta base size does not match");
    }
    let mut out = Vec::with_capacity(result_size as usize);
    while at < delta.len() {
        let op = delta[at];
        at += 1;
        if op & 0x80 != 0 {
            let mut field = |bits: u8, bytes: usize| -> Result<usize> {
                let mut n = 0usize;
                for i in 0..bytes {
                    if bits & (1 << i) != 0 {
                        n |= usize::from(*delta.get(at).context("short delta")?) << (8 * i);
                        at += 1;
                    }
                }
                Ok(n)
            };
            let offset = field(op & 0x0f, 4)?;
            let len = match field((op >> 4) & 0x07, 3)? {
                0 => 0x10000,
                n => n,
            };
            let piece = base
                .get(offset..offset.checked_add(len).context("bad copy")?)
                .context("delta copies past its base")?;
            out.extend_from_slice(piece);
        } else if op != 0 {
            let piece = delta.get(at..at + usize::from(op)).context("short delta")?;
            out.extend_from_slice(piece);
            at += usize::from(op);
        } else {
            bail!("bad delta instruction");
        }
    }
    if out.len() as u64 != result_size {
        bail!("delta result size does not match");
    }
    Ok(out)
}

/// Where the base of the offset delta whose entry starts at `entry_at` starts, from the bytes
/// after the entry's type and size (None: a damaged field, or a base before the pack).
pub fn ofs_base(entry_at: u64, bytes: &[u8]) -> Option<u64> {
    entry_at.checked_sub(ofs_distance(bytes)?)
}

/// The distance back to an offset delta's base (git's offset encoding), from the bytes after
/// the entry's type and size.
fn ofs_distance(bytes: &[u8]) -> Option<u64> {
    let mut bytes = bytes.iter();
    let mut byte = *bytes.next()?;
    let mut n = u64::from(byte & 0x7f);
    while byte & 0x80 != 0 {
        byte = *bytes.next()?;
        n = n.checked_add(1)?.checked_mul(128)? | u64::from(byte & 0x7f);
    }
    Some(n)
}

/// Bytes of an offset delta's distance field.
pub fn ofs_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|b| b & 0x80 == 0)
        .map_or(bytes.len(), |i| i + 1)
}

/// The distance field that [`ofs_distance`] reads as `n` (most significant group first, each
/// group but the last one less than it stands for).
pub fn ofs_encode(mut n: u64) -> Vec<u8> {
    let mut bytes = vec![(n & 0x7f) as u8];
    n >>= 7;
    while n > 0 {
        n -= 1;
        bytes.push(0x80 | (n & 0x7f) as u8);
        n >>= 7;
    }
    bytes.reverse();
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_and_inserts() {
        let base = b"hello world, hello sqlgit";
        // base 25, result 16; copy 6 bytes at 0 ("hello "), insert "there", copy 5 at 6.
        let delta = [
            25u8, 16, 0x91, 0, 6, 5, b't', b'h', b'e', b'r', b'e', 0x91, 6, 5,
        ];
        assert_eq!(apply(base, &delta).unwrap(), b"hello thereworld");
        assert!(apply(b"short", &delta).is_err());
    }

    /// A small xorshift generator: the tests are the same every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Random bases edited at random places (insertions, deletions, replacements, moves) give
    /// back the edited text, and a small edit gives a small delta.
    #[test]
    fn encoded_deltas_rebuild_the_target() {
        let mut rng = Rng(0x5eed);
        for round in 0..400 {
            let len = [0, 1, 15, 16, 17, 100, 4096, 70_000, 200_000][round % 9];
            let base: Vec<u8> = (0..len).map(|_| b"abcdefgh"[rng.below(8)]).collect();
            let mut target = base.clone();
            let edits = rng.below(5);
            for _ in 0..edits {
                let at = rng.below(target.len() + 1);
                match rng.below(3) {
                    0 => {
                        let n = rng.below(300);
                        let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                        target.splice(at..at, bytes);
                    }
                    1 => {
                        let end = (at + rng.below(300)).min(target.len());
                        target.drain(at..end);
                    }
                    _ => {
                        let end = (at + rng.below(50)).min(target.len());
                        for b in &mut target[at..end] {
                            *b = rng.next() as u8;
                        }
                    }
                }
            }
            let delta = encode(&base, &target);
            assert_eq!(apply(&base, &delta).unwrap(), target, "round {round}");
            if len >= 4096 && edits == 1 {
                assert!(delta.len() < 700, "round {round}: {} bytes", delta.len());
            }
        }
    }

    /// A version of a folder listing with one entry changed is a delta of a few dozen bytes.
    #[test]
    fn one_changed_entry_of_a_tree_is_a_small_delta() {
        let mut base = Vec::new();
        for i in 0..200u32 {
            base.extend_from_slice(format!("100644 chunk-{i:05}\0").as_bytes());
            base.extend((0..20).map(|j| (i * 31 + j * 7) as u8));
        }
        let mut target = base.clone();
        let at = 100 * 33 + 19;
        target[at..at + 20].copy_from_slice(&[0xab; 20]);
        let delta = encode(&base, &target);
        assert_eq!(apply(&base, &delta).unwrap(), target);
        assert!(delta.len() < 40, "{} bytes", delta.len());
    }

    #[test]
    fn offsets_round_trip() {
        for n in [
            0u64,
            1,
            127,
            128,
            129,
            16_383,
            16_384,
            16_512,
            1 << 32,
            u64::MAX >> 8,
        ] {
            let bytes = ofs_encode(n);
            assert_eq!(ofs_distance(&bytes), Some(n), "{n}");
            assert_eq!(ofs_len(&bytes), bytes.len(), "{n}");
        }
    }
}
