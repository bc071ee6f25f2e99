//! The page map's file: `PageMap::save` and `PageMap::load`.
//!
//! Little-endian binary, with a checksum (XXH3-128) of everything before it at the end: a map
//! that does not read back exactly is no map (the next snapshot reads everything). Written to a
//! temporary file (0600) and renamed into place, so a reader never sees half a map.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use xxhash_rust::xxh3::Xxh3;

use super::chunksums::ChunkSums;
use super::keylist::{self, KeyList, PageKeys};
use super::pages::{Keys, Kind, Mapped, Page, PageMap, TableMap};

const MAGIC: &[u8] = b"sqlgit page map 9\n";
/// The format before the database's identity was kept (read as a map without one).
const MAGIC_8: &[u8] = b"sqlgit page map 8\n";
/// Bytes of one page's record: number, kind, hash, first and last rowid.
const PAGE_RECORD: usize = 4 + 1 + 8 + 8 + 8;
/// Page records read or written (and checksummed) together.
const BLOCK_PAGES: usize = 4096;

impl PageMap {
    /// The map of the table at `rootpage`. `tables` is kept sorted by root page (a schema of
    /// thousands of tables looks each one up); a table not found is read whole, so an unsorted
    /// list only costs time.
    pub fn table(&self, rootpage: u32) -> Option<&Arc<TableMap>> {
        let at = self.tables.binary_search_by_key(&rootpage, |t| t.rootpage);
        at.ok().map(|i| &self.tables[i])
    }

    /// Write to `path` atomically (a temporary file renamed into place), mode 0600.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("tmp");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode_0600()
            .open(&tmp)
            .with_context(|| format!("write {}", tmp.display()))?;
        let mut out = Checked::new(BufWriter::new(file));
        out.put(MAGIC)?;
        out.put(&self.commit)?;
        out.put(&self.fingerprint.to_le_bytes())?;
        out.put(&self.seed.to_le_bytes())?;
        out.put(&self.owner.to_le_bytes())?;
        out.put_bytes(&self.identity)?;
        // A table whose b-tree map was taken (by a read of the run that loaded this map) is
        // left out: the next run reads it whole.
        let tables: Vec<_> = self.tables.iter().map(|t| (t, t.mapped())).collect();
        let kept = tables.iter().filter(|(_, m)| m.is_some()).count();
        out.put(&(kept as u64).to_le_bytes())?;
        for (t, mapped) in &tables {
            let Some(mapped) = mapped.as_ref() else {
                continue;
            };
            out.put(&t.rootpage.to_le_bytes())?;
            out.put(&t.rows.to_le_bytes())?;
            out.put(&t.bytes.to_le_bytes())?;
            out.put(&(mapped.pages.len() as u64).to_le_bytes())?;
            // Page records a block at a time: one checksum update per block, not per field.
            let mut block = Vec::with_capacity(PAGE_RECORD * BLOCK_PAGES);
            let mut pages = mapped.pages.iter().peekable();
            while pages.peek().is_some() {
                block.clear();
                for p in pages.by_ref().take(BLOCK_PAGES) {
                    block.extend_from_slice(&p.pgno.to_le_bytes());
                    block.push(p.kind as u8);
                    block.extend_from_slice(&p.hash.to_le_bytes());
                    block.extend_from_slice(&p.lo.to_le_bytes());
                    block.extend_from_slice(&p.hi.to_le_bytes());
                }
                out.put(&block)?;
            }
            match &mapped.keys {
                None => out.put(&[0])?,
                Some(keys) => {
                    out.put(&[1])?;
                    out.put(&(keys.pages.len() as u64).to_le_bytes())?;
                    for (pgno, entries) in keys.pages.entries() {
                        out.put(&pgno.to_le_bytes())?;
                        out.put(&(entries.len() as u32).to_le_bytes())?;
                        for entry in entries {
                            out.put_bytes(entry)?;
                        }
                    }
                    out.put(&(keys.chunks.len() as u64).to_le_bytes())?;
                    for k in keys.chunks.iter() {
                        out.put_bytes(k)?;
                    }
                }
            }
            match &mapped.sums {
                None => out.put(&[0])?,
                Some(sums) => {
                    out.put(&[1])?;
                    out.put(&(sums.len() as u64).to_le_bytes())?;
                    out.put_bytes(sums.as_bytes())?;
                }
            }
        }
        let sum = out.hash.digest128();
        let mut file = out.inner.into_inner().context("write page map")?;
        file.write_all(&sum.to_le_bytes())?;
        // Not synced: after a crash a map that did not reach the disk whole fails its checksum,
        // and one of an older commit is not trusted — the next run reads everything.
        std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))?;
        Ok(())
    }

    /// Read a map written by [`PageMap::save`]; None when there is none, an error when it is
    /// damaged (callers treat both as "no map").
    pub fn load(path: &Path) -> Result<Option<PageMap>> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        let len = file.metadata()?.len();
        let mut input = Checked::new(BufReader::new(file));
        let mut magic = vec![0u8; MAGIC.len()];
        input.get(&mut magic)?;
        if (magic != MAGIC && magic != MAGIC_8) || len < 16 {
            bail!("{}: not a page map", path.display());
        }
        let mut map = PageMap {
            commit: input.array()?,
            fingerprint: u128::from_le_bytes(input.array()?),
            seed: u64::from_le_bytes(input.array()?),
            owner: u64::from_le_bytes(input.array()?),
            identity: Vec::new(),
            tables: Vec::new(),
        };
        if magic == MAGIC {
            map.identity = input.get_bytes(len)?;
        }
        let tables = u64::from_le_bytes(input.array()?);
        // One block for all tables: allocated and zeroed per table, it cost 20,000 one-page
        // tables 2.4 GB of memset (6% of an unchanged run).
        let mut block = vec![0u8; PAGE_RECORD * BLOCK_PAGES];
        for _ in 0..tables {
            let rootpage = u32::from_le_bytes(input.array()?);
            let rows = u64::from_le_bytes(input.array()?);
            let bytes = u64::from_le_bytes(input.array()?);
            let mut mapped = Mapped::default();
            let list = &mut mapped.pages;
            let pages = u64::from_le_bytes(input.array()?);
            if pages.saturating_mul(PAGE_RECORD as u64) > len {
                bail!("{}: damaged page map", path.display());
            }
            let mut left = pages as usize;
            let mut last_pgno = None;
            while left > 0 {
                let n = left.min(BLOCK_PAGES);
                let records = &mut block[..n * PAGE_RECORD];
                input.get(records)?;
                for r in records.chunks_exact(PAGE_RECORD) {
                    let field = |at: usize| -> [u8; 8] { r[at..at + 8].try_into().expect("8") };
                    let pgno = u32::from_le_bytes(r[..4].try_into().expect("4 bytes"));
                    if last_pgno.is_some_and(|last| last >= pgno) {
                        bail!("{}: damaged page map", path.display());
                    }
                    last_pgno = Some(pgno);
                    list.push(Page {
                        pgno,
                        kind: Kind::from_u8(r[4])?,
                        hash: u64::from_le_bytes(field(5)),
                        lo: i64::from_le_bytes(field(13)),
                        hi: i64::from_le_bytes(field(21)),
                    });
                }
                left -= n;
            }
            list.shrink_to_fit();
            let [has_keys] = input.array()?;
            if has_keys == 1 {
                let mut keys = Keys::default();
                let pages = &mut keys.pages;
                let n = u64::from_le_bytes(input.array()?);
                *pages = PageKeys::with_capacity(n.min(len / 12) as usize);
                for _ in 0..n.min(len) {
                    let pgno = u32::from_le_bytes(input.array()?);
                    let count = u32::from_le_bytes(input.array()?);
                    if count < 2 {
                        bail!("{}: a page without its first and last key", path.display());
                    }
                    let mut entries = Vec::with_capacity(count.min(64) as usize);
                    for _ in 0..count {
                        entries.push(input.get_bytes(len)?);
                    }
                    let more: usize = entries.iter().map(Vec::len).sum();
                    if pages.bytes() + more > keylist::MAX_BYTES {
                        bail!("{}: page keys over their limit", path.display());
                    }
                    pages.push_entries(pgno, entries.iter().map(Vec::as_slice));
                }
                pages.shrink_to_fit();
                let n = u64::from_le_bytes(input.array()?);
                keys.chunks = KeyList::with_capacity(n.min(len / 4) as usize);
                for _ in 0..n.min(len) {
                    let key = input.get_bytes(len)?;
                    if keys.chunks.bytes() + key.len() > keylist::MAX_BYTES {
                        bail!("{}: chunk keys over their limit", path.display());
                    }
                    keys.chunks.push(&key);
                }
                keys.chunks.shrink_to_fit();
                mapped.keys = Some(keys);
            }
            let [has_sums] = input.array()?;
            if has_sums == 1 {
                let n = u64::from_le_bytes(input.array()?);
                let bytes = input.get_bytes(len)?;
                let sums = ChunkSums::from_bytes(bytes, n.min(len) as usize)?;
                mapped.sums = Some(sums);
            }
            map.tables
                .push(Arc::new(TableMap::new(rootpage, (rows, bytes), mapped)));
        }
        map.tables.sort_by_key(|t| t.rootpage);
        let sum = input.hash.digest128();
        let mut stored = [0u8; 16];
        input.inner.read_exact(&mut stored)?;
        if u128::from_le_bytes(stored) != sum {
            bail!("{}: page map checksum mismatch", path.display());
        }
        Ok(Some(map))
    }
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

/// A reader or writer that hashes what passes through it.
struct Checked<T> {
    inner: T,
    hash: Xxh3,
}

impl<T> Checked<T> {
    fn new(inner: T) -> Checked<T> {
        Checked {
            inner,
            hash: Xxh3::new(),
        }
    }
}

impl<W: Write> Checked<W> {
    fn put(&mut self, data: &[u8]) -> Result<()> {
        self.hash.update(data);
        self.inner.write_all(data).context("write page map")
    }

    /// A length (u32) and the bytes.
    fn put_bytes(&mut self, data: &[u8]) -> Result<()> {
        let Ok(len) = u32::try_from(data.len()) else {
            bail!("page map: a field of 4 GiB or more");
        };
        self.put(&len.to_le_bytes())?;
        self.put(data)
    }
}

impl<R: Read> Checked<R> {
    fn get(&mut self, buf: &mut [u8]) -> Result<()> {
        self.inner.read_exact(buf).context("read page map")?;
        self.hash.update(buf);
        Ok(())
    }

    /// What [`Checked::put_bytes`] wrote (at most `limit` bytes).
    fn get_bytes(&mut self, limit: u64) -> Result<Vec<u8>> {
        let n = u32::from_le_bytes(self.array()?) as u64;
        if n > limit {
            bail!("damaged page map");
        }
        let mut buf = vec![0u8; n as usize];
        self.get(&mut buf)?;
        Ok(buf)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.get(&mut buf)?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rootpage: u32) -> Arc<TableMap> {
        let rows = u64::from(rootpage);
        Arc::new(TableMap::new(rootpage, (rows, 0), Mapped::default()))
    }

    /// Tables are found by root page however the map was written (older maps are in dump
    /// order, not sorted).
    #[test]
    fn tables_are_found_by_root_page_after_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.map");
        let map = PageMap {
            tables: [9, 2, 40, 7].into_iter().map(table).collect(),
            ..PageMap::default()
        };
        map.save(&path).unwrap();
        let loaded = PageMap::load(&path).unwrap().unwrap();
        for rootpage in [2, 7, 9, 40] {
            assert_eq!(loaded.table(rootpage).unwrap().rows, u64::from(rootpage));
        }
        assert!(loaded.table(3).is_none());
    }

    /// A table whose pages a run took out of the map it loaded is not written again: the next
    /// run finds no map of it and reads it whole, instead of trusting an empty page list.
    #[test]
    fn a_table_whose_pages_were_taken_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.map");
        let map = PageMap {
            tables: [2, 7].into_iter().map(table).collect(),
            ..PageMap::default()
        };
        assert!(map.tables[1].take_mapped().is_some());
        assert!(map.tables[1].take_mapped().is_none());
        map.save(&path).unwrap();
        let loaded = PageMap::load(&path).unwrap().unwrap();
        assert!(loaded.table(2).is_some());
        assert!(loaded.table(7).is_none());
    }

    /// The database's identity reads back; a map of the format before it (8) is read as a map
    /// without one, so the first run after the upgrade still reads only what changed.
    #[test]
    fn identity_round_trips_and_older_maps_have_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.map");
        let map = PageMap {
            identity: b"same moment".to_vec(),
            tables: [3].into_iter().map(table).collect(),
            ..PageMap::default()
        };
        map.save(&path).unwrap();
        let loaded = PageMap::load(&path).unwrap().unwrap();
        assert_eq!(loaded.identity, b"same moment");
        // The same map as format 8 wrote it: no identity field, its own checksum.
        let bytes = std::fs::read(&path).unwrap();
        let at = MAGIC.len() + 20 + 16 + 8 + 8;
        let mut old = MAGIC_8.to_vec();
        old.extend_from_slice(&bytes[MAGIC.len()..at]);
        old.extend_from_slice(&bytes[at + 4 + 11..bytes.len() - 16]);
        let sum = xxhash_rust::xxh3::xxh3_128(&old);
        old.extend_from_slice(&sum.to_le_bytes());
        std::fs::write(&path, &old).unwrap();
        let loaded = PageMap::load(&path).unwrap().unwrap();
        assert!(loaded.identity.is_empty());
        assert_eq!(loaded.table(3).unwrap().rows, 3);
    }
}
