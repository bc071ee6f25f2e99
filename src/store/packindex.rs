//! The objects of the pack being written — for the object writer's de-duplication and for the
//! `.idx` written at the end — in about 10 bytes of memory an object; the rest goes to unnamed
//! temporary files beside the pack (a first snapshot of a 2 GB database writes ~600k objects).
//!
//! - Reserved (the object writer found an object new): its id goes to a file, its number into
//!   an open-addressing table of 4-byte slots, and 4 bytes of a keyed hash of the id stay in
//!   memory to compare probes with; a match is confirmed against the file (a chance match of
//!   the 4 bytes costs one read).
//! - Written (a compressor appended it to the pack): its id, CRC and offset go to one of 16
//!   files by the id's first 4 bits. At the end each file is sorted in memory (1/16 of the
//!   objects at a time) and the index's sections are written at the places their sizes give.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use git2::Oid;
use sha1::{Digest, Sha1};
use xxhash_rust::xxh3::xxh3_64_with_seed;

const BUCKETS: usize = 16;
/// Bytes gathered before a temporary file is written to.
const BUFFER: usize = 32 << 10;
/// A written object: id, CRC (big-endian), offset (big-endian).
const RECORD: usize = 32;

/// An append-only temporary file read back by position.
struct Spill {
    file: File,
    pending: Vec<u8>,
    flushed: u64,
}

impl Spill {
    fn new(dir: &Path) -> Result<Spill> {
        Ok(Spill {
            file: tempfile::tempfile_in(dir).context("create temporary file")?,
            pending: Vec::new(),
            flushed: 0,
        })
    }

    /// Append `bytes` (whole records: a flush never splits one).
    fn push(&mut self, bytes: &[u8]) -> Result<()> {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.file
            .write_all_at(&self.pending, self.flushed)
            .context("write temporary file")?;
        self.flushed += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    fn read_at(&self, at: u64, out: &mut [u8]) -> Result<()> {
        if at >= self.flushed {
            let from = (at - self.flushed) as usize;
            out.copy_from_slice(&self.pending[from..from + out.len()]);
            return Ok(());
        }
        self.file
            .read_exact_at(out, at)
            .context("read temporary file")
    }
}

/// See the module doc.
pub struct PackIndex {
    dir: PathBuf,
    seed: u64,
    /// Ids of the reserved objects, by number.
    ids: Option<Spill>,
    /// A keyed hash of each reserved id (its low bits place it in `slots`).
    hashes: Vec<u32>,
    /// Object number + 1 (0: empty); a power of two long, at most 3/4 full.
    slots: Vec<u32>,
    buckets: Vec<Option<Spill>>,
    /// Written objects by the first byte of their id.
    fanout: [u32; 256],
    written: usize,
}

impl PackIndex {
    /// An empty index whose temporary files go to `dir`.
    pub fn new(dir: &Path) -> PackIndex {
        PackIndex {
            dir: dir.to_path_buf(),
            seed: crate::dump::pages::new_seed(),
            ids: None,
            hashes: Vec::new(),
            slots: Vec::new(),
            buckets: (0..BUCKETS).map(|_| None).collect(),
            fanout: [0; 256],
            written: 0,
        }
    }

    /// Number of objects written.
    pub fn len(&self) -> usize {
        self.written
    }

    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    fn hash(&self, oid: &Oid) -> u32 {
        xxh3_64_with_seed(oid.as_bytes(), self.seed) as u32
    }

    /// The slot holding `oid`, or the empty slot where it goes, and whether it is there.
    fn find(&self, oid: &Oid) -> Result<(usize, bool)> {
        let mask = self.slots.len() - 1;
        let hash = self.hash(oid);
        let mut at = hash as usize & mask;
        let mut id = [0u8; 20];
        loop {
            let n = self.slots[at] as usize;
            if n == 0 {
                return Ok((at, false));
            }
            if self.hashes[n - 1] == hash {
                let ids = self.ids.as_ref().expect("ids of reserved objects");
                ids.read_at((n as u64 - 1) * 20, &mut id)?;
                if id == oid.as_bytes() {
                    return Ok((at, true));
                }
            }
            at = (at + 1) & mask;
        }
    }

    /// Whether `oid` was reserved.
    pub fn contains(&self, oid: Oid) -> Result<bool> {
        if self.slots.is_empty() {
            return Ok(false);
        }
        Ok(self.find(&oid)?.1)
    }

    /// Reserve `oid` (about to be written); false when it was reserved already.
    pub fn reserve(&mut self, oid: Oid) -> Result<bool> {
        if (self.hashes.len() + 1) * 4 > self.slots.len() * 3 {
            self.grow()?;
        }
        let (at, found) = self.find(&oid)?;
        if found {
            return Ok(false);
        }
        if self.ids.is_none() {
            self.ids = Some(Spill::new(&self.dir)?);
        }
        self.ids.as_mut().expect("ids").push(oid.as_bytes())?;
        self.hashes.push(self.hash(&oid));
        self.slots[at] = self.hashes.len() as u32;
        Ok(true)
    }

    fn grow(&mut self) -> Result<()> {
        let size = (self.slots.len() * 2).max(1024);
        if size > u32::MAX as usize {
            bail!("too many objects for one pack");
        }
        self.slots = Vec::new();
        self.slots = vec![0; size];
        let mask = size - 1;
        for (i, &hash) in self.hashes.iter().enumerate() {
            let mut at = hash as usize & mask;
            while self.slots[at] != 0 {
                at = (at + 1) & mask;
            }
            self.slots[at] = i as u32 + 1;
        }
        Ok(())
    }

    /// Note that `oid` went into the pack at `offset`.
    pub fn record(&mut self, oid: Oid, offset: u64, crc: u32) -> Result<()> {
        let id = oid.as_bytes();
        let bucket = &mut self.buckets[id[0] as usize * BUCKETS / 256];
        if bucket.is_none() {
            *bucket = Some(Spill::new(&self.dir)?);
        }
        let mut record = [0u8; RECORD];
        record[..20].copy_from_slice(id);
        record[20..24].copy_from_slice(&crc.to_be_bytes());
        record[24..].copy_from_slice(&offset.to_be_bytes());
        bucket.as_mut().expect("bucket").push(&record)?;
        self.fanout[id[0] as usize] += 1;
        self.written += 1;
        Ok(())
    }

    /// Write the version 2 index of the pack whose checksum is `pack_sum` to `path`.
    pub fn write(mut self, path: &Path, pack_sum: &[u8; 20]) -> Result<()> {
        if !self.hashes.is_empty() && self.hashes.len() != self.written {
            bail!("internal error: objects reserved for the pack were not written");
        }
        self.slots = Vec::new();
        self.hashes = Vec::new();
        self.ids = None;
        let file = super::pack::create_private(path)?;
        let n = self.written as u64;
        let mut head = super::pack::IDX_V2_MAGIC.to_vec();
        let mut total = 0u32;
        for count in self.fanout {
            total += count;
            head.extend_from_slice(&total.to_be_bytes());
        }
        file.write_all_at(&head, 0)?;
        let mut at = Sections {
            oids: head.len() as u64,
            crcs: head.len() as u64 + 20 * n,
            offsets: head.len() as u64 + 24 * n,
            large: head.len() as u64 + 28 * n,
            large_count: 0,
        };
        for bucket in self.buckets.iter_mut() {
            if let Some(mut bucket) = bucket.take() {
                write_bucket(&file, &mut bucket, &mut at)?;
            }
        }
        file.write_all_at(pack_sum, at.large)?;
        let end = at.large + 20;
        let mut hasher = Sha1::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut pos = 0u64;
        while pos < end {
            let len = buf.len().min((end - pos) as usize);
            file.read_exact_at(&mut buf[..len], pos)?;
            hasher.update(&buf[..len]);
            pos += len as u64;
        }
        let idx_sum: [u8; 20] = hasher.finalize().into();
        file.write_all_at(&idx_sum, end)?;
        file.sync_all()?;
        Ok(())
    }
}

/// Where the next entry of each section of the index goes.
struct Sections {
    oids: u64,
    crcs: u64,
    offsets: u64,
    large: u64,
    /// Large offsets written so far.
    large_count: u64,
}

/// Sort one bucket's objects by id and write them into the index's sections.
fn write_bucket(file: &File, bucket: &mut Spill, at: &mut Sections) -> Result<()> {
    bucket.flush()?;
    let mut records = vec![[0u8; RECORD]; (bucket.flushed as usize) / RECORD];
    bucket.read_at(0, records.as_flattened_mut())?;
    records.sort_unstable_by(|a, b| a[..20].cmp(&b[..20]));
    if records.windows(2).any(|w| w[0][..20] == w[1][..20]) {
        bail!("internal error: an object was written twice into the pack");
    }
    let (mut oids, mut crcs, mut offsets, mut large) = (vec![], vec![], vec![], vec![]);
    for r in &records {
        oids.extend_from_slice(&r[..20]);
        crcs.extend_from_slice(&r[20..24]);
        let offset = u64::from_be_bytes(r[24..].try_into().expect("8 bytes"));
        if offset < 0x8000_0000 {
            offsets.extend_from_slice(&(offset as u32).to_be_bytes());
        } else {
            let k = at.large_count + large.len() as u64 / 8;
            offsets.extend_from_slice(&(0x8000_0000u32 | k as u32).to_be_bytes());
            large.extend_from_slice(&offset.to_be_bytes());
        }
    }
    file.write_all_at(&oids, at.oids)?;
    file.write_all_at(&crcs, at.crcs)?;
    file.write_all_at(&offsets, at.offsets)?;
    file.write_all_at(&large, at.large)?;
    at.oids += oids.len() as u64;
    at.crcs += crcs.len() as u64;
    at.offsets += offsets.len() as u64;
    at.large += large.len() as u64;
    at.large_count += large.len() as u64 / 8;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::pack::{Kind, object_id, read_index};

    fn oid(n: u32) -> Oid {
        object_id(Kind::Blob, &n.to_le_bytes())
    }

    #[test]
    fn reserves_records_and_writes_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = PackIndex::new(dir.path());
        let n = 40_000u32;
        for i in 0..n {
            assert!(index.reserve(oid(i)).unwrap());
        }
        assert!(!index.reserve(oid(5)).unwrap());
        assert!(index.contains(oid(n - 1)).unwrap() && !index.contains(oid(n)).unwrap());
        // Offsets past 2 GiB need the index's table of large offsets.
        let offset = |i: u32| 12 + ((i as u64) << 17);
        for i in 0..n {
            index.record(oid(i), offset(i), i).unwrap();
        }
        let path = dir.path().join("x.idx");
        index.write(&path, &[7; 20]).unwrap();
        let read = read_index(&path).unwrap();
        assert_eq!(read.len(), n as usize);
        assert!(read.windows(2).all(|w| w[0].0 < w[1].0));
        let mut want: Vec<(Oid, u64)> = (0..n).map(|i| (oid(i), offset(i))).collect();
        want.sort();
        assert_eq!(read, want);
    }

    #[test]
    fn an_unwritten_object_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = PackIndex::new(dir.path());
        index.reserve(oid(1)).unwrap();
        index.reserve(oid(2)).unwrap();
        index.record(oid(1), 12, 0).unwrap();
        assert!(index.write(&dir.path().join("x.idx"), &[0; 20]).is_err());
    }
}
