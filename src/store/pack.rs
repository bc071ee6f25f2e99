//! Writes new objects straight into one git pack file (+ its `.idx`) per run.
//!
//! One sequential file instead of thousands of loose objects: a first snapshot is written at
//! disk speed, an incremental one adds a single small file (no 4 KiB block per object), and the
//! pack is only made visible (renamed into `objects/pack/`) once complete and synced — a killed
//! run leaves at most a temporary file, which the next run removes.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use git2::Oid;
use sha1::{Digest, Sha1};

use super::packindex::PackIndex;

/// Prefix of temporary pack files; stale ones are removed by [`remove_leftovers`].
pub(crate) const TMP_PREFIX: &str = "tmp_sqlgit_";
/// A version 2 pack index starts with these 8 bytes, then 256 cumulative counts (the last is
/// the number of objects), then the ids from [`IDX_IDS_AT`].
pub(super) const IDX_V2_MAGIC: &[u8; 8] = b"\xfftOc\0\0\0\x02";
pub(super) const IDX_IDS_AT: usize = 8 + 256 * 4;

/// The type code of a pack entry that is a delta of the entry a distance before it.
pub const OFS_DELTA: u8 = 6;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Commit = 1,
    Tree = 2,
    Blob = 3,
}

impl Kind {
    /// The kind of a libgit2 object type (None: a tag, or anything else packs here never hold).
    pub fn of(kind: git2::ObjectType) -> Option<Kind> {
        match kind {
            git2::ObjectType::Commit => Some(Kind::Commit),
            git2::ObjectType::Tree => Some(Kind::Tree),
            git2::ObjectType::Blob => Some(Kind::Blob),
            _ => None,
        }
    }

    /// The kind of a pack entry's type code (None: a delta, or a tag).
    pub fn from_code(code: u8) -> Option<Kind> {
        match code {
            1 => Some(Kind::Commit),
            2 => Some(Kind::Tree),
            3 => Some(Kind::Blob),
            _ => None,
        }
    }

    fn name(self) -> &'static [u8] {
        match self {
            Kind::Commit => b"commit",
            Kind::Tree => b"tree",
            Kind::Blob => b"blob",
        }
    }
}

/// The git object id of `data` as an object of `kind`.
pub fn object_id(kind: Kind, data: &[u8]) -> Oid {
    let mut h = Sha1::new();
    h.update(kind.name());
    h.update(b" ");
    h.update(itoa::Buffer::new().format(data.len()).as_bytes());
    h.update(b"\0");
    h.update(data);
    Oid::from_bytes(&h.finalize()).expect("20 bytes")
}

pub struct PackWriter {
    dir: PathBuf,
    tmp: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    count: usize,
    /// Shared with the object writer, which reserves the objects it sends to be written.
    index: Arc<Mutex<PackIndex>>,
    /// Removes the temporary pack and index unless the pack was finished: a write that failed
    /// (a full disk) or a writer dropped on any error path leaves nothing behind to fill the
    /// disk. Last, so that `out` is closed first.
    temps: TempFiles,
}

/// Files removed when this is dropped, unless [`TempFiles::keep`] was called.
struct TempFiles(Vec<PathBuf>);

impl TempFiles {
    fn keep(&mut self) {
        self.0.clear();
    }
}

impl Drop for TempFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Encodes objects as pack entries (type and size header, then zlib). libdeflate compresses
/// whole buffers, which is what chunks are, several times faster than a streaming zlib.
pub struct Compressor {
    careful: libdeflater::Compressor,
    fast: libdeflater::Compressor,
}

impl Default for Compressor {
    fn default() -> Self {
        let level = |n| libdeflater::CompressionLvl::new(n).expect("valid level");
        Compressor {
            careful: libdeflater::Compressor::new(level(6)),
            fast: libdeflater::Compressor::new(level(1)),
        }
    }
}

impl Compressor {
    /// The pack entry for `data`; `bulk` trades size for speed (what snapshots write; prune
    /// and the scrub rewrite at the careful level).
    pub fn entry(&mut self, kind: Kind, data: &[u8], bulk: bool) -> Result<Vec<u8>> {
        self.encode(kind as u8, &[], data, bulk)
    }

    /// The pack entry of an offset delta whose base starts `distance` bytes before it.
    pub fn delta_entry(&mut self, distance: u64, delta: &[u8]) -> Result<Vec<u8>> {
        self.encode(OFS_DELTA, &super::delta::ofs_encode(distance), delta, true)
    }

    /// Type code and size header, `extra` (a delta's base), then `data` compressed.
    fn encode(&mut self, code: u8, extra: &[u8], data: &[u8], bulk: bool) -> Result<Vec<u8>> {
        let z = if bulk {
            &mut self.fast
        } else {
            &mut self.careful
        };
        let bound = z.zlib_compress_bound(data.len());
        let mut head = Vec::with_capacity(16 + extra.len());
        let mut size = data.len() as u64;
        let mut byte = (code << 4) | (size & 15) as u8;
        size >>= 4;
        while size > 0 {
            head.push(byte | 0x80);
            byte = (size & 0x7f) as u8;
            size >>= 7;
        }
        head.push(byte);
        head.extend_from_slice(extra);
        let header = head.len();
        // Zeroed by the allocator (a big block comes from the system already zero, and only
        // the pages the compressor writes become resident), not by filling it here.
        let mut out = vec![0u8; header + bound];
        out[..header].copy_from_slice(&head);
        let n = z
            .zlib_compress(data, &mut out[header..])
            .map_err(|e| anyhow::anyhow!("compress object: {e:?}"))?;
        out.truncate(header + n);
        Ok(out)
    }
}

impl PackWriter {
    /// Start a pack in `objects_dir/pack`.
    pub fn new(objects_dir: &Path) -> Result<PackWriter> {
        let dir = objects_dir.join("pack");
        std::fs::create_dir_all(&dir)?;
        // Unique within the process too: a checked snapshot writes two packs at once.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // No `.pack` suffix: git (fsck, gc) must never mistake a half-written file for a pack.
        let tmp = dir.join(format!("{TMP_PREFIX}{}_{n}_pack", std::process::id()));
        let file = create_private(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(b"PACK\0\0\0\x02\0\0\0\0")?; // the count is patched in finish()
        let index = Arc::new(Mutex::new(PackIndex::new(&dir)));
        let temps = TempFiles(vec![tmp.clone(), temp_idx_path(&tmp)]);
        Ok(PackWriter {
            dir,
            tmp,
            out,
            offset: 12,
            count: 0,
            index,
            temps,
        })
    }

    /// Append an object already encoded by a [`Compressor`].
    pub fn append(&mut self, oid: Oid, entry: &[u8]) -> Result<()> {
        // libdeflate's CRC-32 uses the CPU's carry-less multiply where there is one.
        let crc = libdeflater::crc32(entry);
        self.out.write_all(entry)?;
        let index = &mut self.index.lock().expect("pack index");
        index.record(oid, self.offset, crc)?;
        self.count += 1;
        self.offset += entry.len() as u64;
        Ok(())
    }

    /// Where the next entry goes.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The pack's objects (for reserving those about to be written).
    pub fn index(&self) -> Arc<Mutex<PackIndex>> {
        self.index.clone()
    }

    /// Number of objects in the pack.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Drop the pack unwritten (the run failed): its temporary files are removed.
    pub fn discard(self) {}

    /// Seal the pack, write its index and move both into place. Returns the pack's size in
    /// bytes (0 when there was nothing to write: then no file is left behind).
    pub fn finish(self) -> Result<u64> {
        Ok(self.finish_named()?.0)
    }

    /// [`Self::finish`], also returning the pack's name (`pack-<checksum>`; None: nothing was
    /// written). A pack with the same objects in the same order as one already there has its
    /// name, and replaces it: whoever deletes packs it copied must not delete that one.
    pub fn finish_named(mut self) -> Result<(u64, Option<String>)> {
        if self.count == 0 {
            return Ok((0, None)); // the temporary file goes with `self`
        }
        self.out.flush()?;
        let mut file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(8))?;
        file.write_all(&(self.count as u32).to_be_bytes())?;
        file.seek(SeekFrom::Start(0))?;
        let mut hasher = Sha1::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let pack_sum: [u8; 20] = hasher.finalize().into();
        file.seek(SeekFrom::End(0))?;
        file.write_all(&pack_sum)?;
        file.sync_all()?;
        drop(file);

        let name = format!("pack-{}", Oid::from_bytes(&pack_sum)?);
        // Nor an `.idx` suffix: a killed run's partial index would make git fsck fail.
        let idx_tmp = temp_idx_path(&self.tmp);
        let index = Arc::try_unwrap(self.index)
            .map_err(|_| anyhow::anyhow!("internal error: pack index still shared"))?
            .into_inner()
            .expect("pack index");
        if index.len() != self.count {
            anyhow::bail!("internal error: objects reserved for the pack were not written");
        }
        index.write(&idx_tmp, &pack_sum)?;
        let pack_path = self.dir.join(format!("{name}.pack"));
        std::fs::rename(&self.tmp, &pack_path)?;
        // The .idx makes the pack visible to git: it goes last.
        std::fs::rename(&idx_tmp, self.dir.join(format!("{name}.idx")))?;
        self.temps.keep();
        File::open(&self.dir)?.sync_all()?;
        Ok((self.offset + 20, Some(name)))
    }
}

/// Where the index of the temporary pack `tmp` (`…_pack`) is written (`…_idx`).
fn temp_idx_path(tmp: &Path) -> PathBuf {
    let name = tmp.file_name().unwrap_or_default().to_string_lossy();
    tmp.with_file_name(format!("{}_idx", name.trim_end_matches("_pack")))
}

pub use super::leftovers::remove_leftovers;

/// An object's offset in its pack from its 4-byte entry of the `.idx` (version 2) `idx` of a pack
/// of `count` objects: the entry itself, or (high bit set) the 8-byte offset it points to.
pub(super) fn idx_offset(idx: &File, count: u64, small: u32) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    if small & 0x8000_0000 == 0 {
        return Ok(u64::from(small));
    }
    let mut large = [0u8; 8];
    let slot = u64::from(small & 0x7fff_ffff);
    idx.read_exact_at(&mut large, IDX_IDS_AT as u64 + count * 28 + slot * 8)?;
    Ok(u64::from_be_bytes(large))
}

/// The ids of a version 2 pack index, in its (ascending) order, read as they are asked for.
pub fn index_ids(idx_path: &Path) -> Result<impl Iterator<Item = Result<Oid>> + use<>> {
    let context = format!("read {}", idx_path.display());
    let mut file = std::io::BufReader::new(File::open(idx_path).context(context.clone())?);
    let mut header = vec![0u8; IDX_IDS_AT];
    file.read_exact(&mut header).context(context.clone())?;
    if header[..8] != *IDX_V2_MAGIC {
        return Err(super::reindex::old_index(idx_path));
    }
    let count = u32::from_be_bytes(header[IDX_IDS_AT - 4..].try_into().expect("4 bytes"));
    Ok((0..count).map(move |_| {
        let mut id = [0u8; 20];
        file.read_exact(&mut id).context(context.clone())?;
        Ok(Oid::from_bytes(&id)?)
    }))
}

/// The objects of a version 2 pack index, with their offsets in the pack. Read as a stream (a
/// 2 GB database's first pack has an index of 17 MB, which is not held besides the list).
pub fn read_index(idx_path: &Path) -> Result<Vec<(Oid, u64)>> {
    let context = || format!("read {}", idx_path.display());
    let file = File::open(idx_path).with_context(context)?;
    let len = file.metadata().with_context(context)?.len();
    let mut ids = index_ids(idx_path)?;
    let count = ids.size_hint().0 as u64;
    let offsets_at = IDX_IDS_AT as u64 + count * 24;
    if len < offsets_at + count * 4 + 40 {
        return Err(super::reindex::old_index(idx_path));
    }
    let mut out = Vec::with_capacity(count as usize);
    for id in &mut ids {
        out.push((id?, 0));
    }
    let mut offsets = std::io::BufReader::new(&file);
    offsets
        .seek(SeekFrom::Start(offsets_at))
        .with_context(context)?;
    for entry in &mut out {
        let mut small = [0u8; 4];
        offsets.read_exact(&mut small).with_context(context)?;
        entry.1 = idx_offset(&file, count, u32::from_be_bytes(small)).with_context(context)?;
    }
    Ok(out)
}

/// The (offset, CRC-32) of every entry of a version 2 pack index, sorted by offset: what each
/// entry's bytes were when the pack was written, for whoever copies them (see `copy`).
pub(super) fn index_crcs(idx_path: &Path) -> Result<Vec<(u64, u32)>> {
    use std::os::unix::fs::FileExt;
    let context = || format!("read {}", idx_path.display());
    let file = File::open(idx_path).with_context(context)?;
    let count = index_ids(idx_path)?.size_hint().0 as u64;
    let table = |at: u64| -> Result<Vec<u32>> {
        let mut bytes = vec![0u8; count as usize * 4];
        file.read_exact_at(&mut bytes, at).with_context(context)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
            .collect())
    };
    let crcs = table(IDX_IDS_AT as u64 + count * 20)?;
    let smalls = table(IDX_IDS_AT as u64 + count * 24)?;
    let mut out = Vec::with_capacity(count as usize);
    for (crc, small) in crcs.into_iter().zip(smalls) {
        out.push((idx_offset(&file, count, small).with_context(context)?, crc));
    }
    out.sort_unstable();
    Ok(out)
}

/// Create (or empty) the file at `path`, readable and writable by its owner only.
pub(super) fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .read(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The file names in `dir`, sorted (also for `leftovers`' tests).
    pub(in crate::store) fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// git fsck reads every `*.idx` in `objects/pack`: a run killed while writing must leave
    /// only files git ignores, and that the next run removes.
    #[test]
    fn a_writer_dropped_unfinished_leaves_nothing_behind() {
        let objects = tempfile::tempdir().unwrap();
        let mut writer = PackWriter::new(objects.path()).unwrap();
        let id = object_id(Kind::Blob, b"data");
        let entry = Compressor::default()
            .entry(Kind::Blob, b"data", true)
            .unwrap();
        writer.append(id, &entry).unwrap();
        assert_eq!(names(&objects.path().join("pack")).len(), 1);
        drop(writer); // as on any error path before `finish`
        assert_eq!(names(&objects.path().join("pack")), Vec::<String>::new());
    }

    #[test]
    fn temporary_files_are_never_named_like_a_pack_or_its_index() {
        let objects = tempfile::tempdir().unwrap();
        let mut writer = PackWriter::new(objects.path()).unwrap();
        let data = b"hello";
        let entry = Compressor::default().entry(Kind::Blob, data, true).unwrap();
        writer.append(object_id(Kind::Blob, data), &entry).unwrap();
        let pack_dir = objects.path().join("pack");
        let idx_tmp = temp_idx_path(&writer.tmp);
        for name in names(&pack_dir).into_iter().chain([idx_tmp
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()])
        {
            assert!(name.starts_with(TMP_PREFIX), "{name}");
            assert!(
                !name.ends_with(".pack") && !name.ends_with(".idx"),
                "{name}"
            );
        }
        let (_, name) = writer.finish_named().unwrap();
        let name = name.unwrap();
        assert_eq!(
            names(&pack_dir),
            [format!("{name}.idx"), format!("{name}.pack")]
        );
    }
}
