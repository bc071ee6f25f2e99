//! The objects of the pack being written, kept small: one 29-byte entry an object (its id, and
//! once written its CRC and offset), stored in fixed blocks so that growing never copies or
//! over-allocates, and an open-addressing table of 4-byte entry numbers to find an id again.
//! About 35 bytes an object in all (a first snapshot of a 2 GB database writes ~600k), where a
//! `HashSet` of ids beside a `Vec` of entries took ~90 and twice that while growing.
//!
//! The object writer reserves an entry when it decides an object is new (so that a second
//! copy of it is not written), the compressors record where it went in the pack, and the index
//! file is written from the entries in id order at the end.

use anyhow::{Result, bail};
use git2::Oid;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Entries per block (~0.9 MiB).
const BLOCK: usize = 1 << 15;
/// Offsets are kept in 40 bits: packs up to 1 TiB.
const MAX_OFFSET: u64 = 1 << 40;

#[derive(Clone, Copy, Default)]
pub struct Entry {
    pub oid: [u8; 20],
    crc: [u8; 4],
    /// 0 until written (a pack's first object is at 12).
    offset: [u8; 5],
}

impl Entry {
    pub fn crc(&self) -> u32 {
        u32::from_le_bytes(self.crc)
    }

    pub fn offset(&self) -> u64 {
        let mut b = [0u8; 8];
        b[..5].copy_from_slice(&self.offset);
        u64::from_le_bytes(b)
    }
}

pub struct PackIndex {
    blocks: Vec<Box<[Entry]>>,
    len: usize,
    /// Entry number + 1 (0: empty slot); a power of two long, at most 3/4 full.
    slots: Vec<u32>,
    seed: u64,
}

impl Default for PackIndex {
    fn default() -> Self {
        PackIndex {
            blocks: Vec::new(),
            len: 0,
            slots: Vec::new(),
            seed: crate::dump::pages::new_seed(),
        }
    }
}

impl PackIndex {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn get(&self, i: usize) -> &Entry {
        &self.blocks[i / BLOCK][i % BLOCK]
    }

    fn get_mut(&mut self, i: usize) -> &mut Entry {
        &mut self.blocks[i / BLOCK][i % BLOCK]
    }

    /// The slot holding `oid`, or the empty slot where it goes.
    fn slot(&self, oid: &[u8; 20]) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = xxh3_64_with_seed(oid, self.seed) as usize & mask;
        loop {
            match self.slots[at] {
                0 => return at,
                n if self.get(n as usize - 1).oid == *oid => return at,
                _ => at = (at + 1) & mask,
            }
        }
    }

    pub fn contains(&self, oid: Oid) -> bool {
        !self.slots.is_empty() && self.slots[self.slot(oid_bytes(&oid))] != 0
    }

    /// Add `oid` (not yet written); false when it is already there.
    pub fn reserve(&mut self, oid: Oid) -> Result<bool> {
        let oid = *oid_bytes(&oid);
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow()?;
        }
        let at = self.slot(&oid);
        if self.slots[at] != 0 {
            return Ok(false);
        }
        if self.len.is_multiple_of(BLOCK) {
            self.blocks
                .push(vec![Entry::default(); BLOCK].into_boxed_slice());
        }
        let i = self.len;
        self.len += 1;
        self.get_mut(i).oid = oid;
        self.slots[at] = self.len as u32;
        Ok(true)
    }

    fn grow(&mut self) -> Result<()> {
        let size = (self.slots.len() * 2).max(1024);
        if size > u32::MAX as usize {
            bail!("too many objects for one pack");
        }
        self.slots = vec![0; size];
        for i in 0..self.len {
            let at = self.slot(&self.get(i).oid);
            self.slots[at] = i as u32 + 1;
        }
        Ok(())
    }

    /// Note where `oid` went in the pack (reserving it first if need be).
    pub fn record(&mut self, oid: Oid, offset: u64, crc: u32) -> Result<()> {
        if offset >= MAX_OFFSET {
            bail!("pack larger than 1 TiB");
        }
        self.reserve(oid)?;
        let at = self.slot(oid_bytes(&oid));
        let i = self.slots[at] as usize - 1;
        let e = self.get_mut(i);
        if e.offset() != 0 {
            bail!("internal error: object {oid} written twice");
        }
        e.crc = crc.to_le_bytes();
        e.offset.copy_from_slice(&offset.to_le_bytes()[..5]);
        Ok(())
    }

    /// The entries in id order, for the index file; an error when one was never written.
    pub fn sorted(mut self) -> Result<SortedEntries> {
        self.slots = Vec::new();
        if (0..self.len).any(|i| self.get(i).offset() == 0) {
            bail!("internal error: an object reserved for the pack was not written");
        }
        let mut order: Vec<u32> = (0..self.len as u32).collect();
        order.sort_unstable_by_key(|&i| self.get(i as usize).oid);
        Ok(SortedEntries { index: self, order })
    }
}

fn oid_bytes(oid: &Oid) -> &[u8; 20] {
    oid.as_bytes().try_into().expect("20 bytes")
}

/// See [`PackIndex::sorted`].
pub struct SortedEntries {
    index: PackIndex,
    order: Vec<u32>,
}

impl SortedEntries {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.order.iter().map(|&i| self.index.get(i as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(n: u32) -> Oid {
        crate::store::pack::object_id(crate::store::pack::Kind::Blob, &n.to_le_bytes())
    }

    #[test]
    fn reserves_records_and_sorts() {
        let mut index = PackIndex::default();
        let n = 3 * BLOCK as u32 + 17;
        for i in 0..n {
            assert!(index.reserve(oid(i)).unwrap());
        }
        assert!(!index.reserve(oid(5)).unwrap());
        assert!(index.contains(oid(n - 1)) && !index.contains(oid(n)));
        for i in 0..n {
            index.record(oid(i), 12 + ((i as u64) << 20), i).unwrap();
        }
        assert!(index.record(oid(3), 99, 0).is_err());
        let sorted = index.sorted().unwrap();
        assert_eq!(sorted.len(), n as usize);
        let all: Vec<&Entry> = sorted.iter().collect();
        assert!(all.windows(2).all(|w| w[0].oid < w[1].oid));
        let e = all.iter().find(|e| e.oid == *oid_bytes(&oid(7))).unwrap();
        assert_eq!((e.offset(), e.crc()), (12 + (7 << 20), 7));
    }

    #[test]
    fn an_unwritten_object_is_an_error() {
        let mut index = PackIndex::default();
        index.reserve(oid(1)).unwrap();
        assert!(index.sorted().is_err());
    }
}
