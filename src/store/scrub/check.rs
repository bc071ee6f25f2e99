//! Checking packs against their indexes: every entry's CRC-32, read front to back in one pass;
//! the pack's header and trailer (git refuses a pack whose either is wrong); and the index's own
//! checksum, since an index that is itself damaged cannot judge its pack. Deltas of a damaged
//! entry count as damaged too: git cannot build them.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use git2::Oid;
use sha1::{Digest, Sha1};

use super::{Damage, DamagedPack};
use crate::store::delta::ofs_base;
use crate::store::pack::{IDX_IDS_AT, IDX_V2_MAGIC, idx_offset};
use crate::store::packread::entry_header;

const HEADER: u64 = IDX_IDS_AT as u64;
/// Bytes read from a pack (or an index) at a time.
pub(super) const BLOCK: usize = 1 << 20;

/// One index entry of the pack being checked.
#[derive(Clone, Copy)]
struct Entry {
    offset: u64,
    crc: u32,
    /// Its position in the index (where its id is).
    index: u32,
}

/// Check every entry of every `pack-*.pack` under `objects_dir` against the CRC-32 its version 2
/// index records. A pack whose index cannot be trusted (unreadable, or its own checksum does
/// not match) is an error: its CRCs say nothing.
pub fn damaged(objects_dir: &Path) -> Result<Damage> {
    let dir = objects_dir.join("pack");
    let listing = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Damage::default()),
        listing => listing.with_context(|| format!("read {}", dir.display()))?,
    };
    let mut indexes: Vec<PathBuf> = listing
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("pack-"))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .collect();
    indexes.sort();
    let mut buf = vec![0u8; BLOCK];
    let mut damage = Damage::default();
    for idx in indexes {
        let checked = match check_pack(&idx, &mut buf) {
            // An index that cannot be trusted says nothing of its pack: rebuild it from the
            // pack (which must then be whole), and check again. One that cannot be read (a
            // permission, an I/O error) is not damaged: that is a failure, and nothing is done.
            Err(e)
                if is_damage(&e) && Index::open(&idx, &mut buf).is_err_and(|e| is_damage(&e)) =>
            {
                let context = || format!("pack index {}", idx.display());
                rebuild_index(&idx)
                    .map_err(|r| e.context(format!("rebuild it: {r:#}")))
                    .with_context(context)?;
                damage.rebuilt.push(idx.clone());
                check_pack(&idx, &mut buf)
            }
            checked => checked,
        };
        if let Some(pack) = checked.with_context(|| format!("pack index {}", idx.display()))? {
            damage.packs.push(pack);
        }
    }
    Ok(damage)
}

/// Rebuild the index `idx` of its pack with `git index-pack`, which reads the whole pack and
/// checks every object (it fails on a damaged pack). The damaged index is copied to the
/// repository's `sqlgit-damaged/` first; the new one replaces it in one rename, so the pack is
/// never without an index (a pack without one is removed as a leftover).
fn rebuild_index(idx: &Path) -> Result<()> {
    let dir = idx.parent().context("no pack folder")?;
    let tmp = crate::store::reindex::index_pack(idx)?;
    // The repository is two folders up (objects/pack).
    let repo = dir
        .parent()
        .and_then(Path::parent)
        .context("no repository")?;
    let kept = crate::store::headrepair::damaged_dir(repo)?;
    let name = idx.file_name().context("no index name")?;
    std::fs::copy(idx, kept.join(name)).context("keep the damaged index")?;
    std::fs::rename(&tmp, idx).context("replace the damaged index")?;
    Ok(())
}

/// The damage of one pack, if any.
pub(super) fn check_pack(idx_path: &Path, buf: &mut [u8]) -> Result<Option<DamagedPack>> {
    let index = Index::open(idx_path, buf)?;
    let mut entries = index.entries()?;
    entries.sort_unstable_by_key(|e| e.offset);
    // Only bytes read and found wrong are damage: a pack that cannot be opened or read (a
    // permission, EIO, too many open files) is a failure that marks nothing, or an intact pack
    // would be rewritten without its entries. A pack that is gone holds nothing to read.
    let pack_path = idx_path.with_extension("pack");
    let (own, bad, framing) = match File::open(&pack_path) {
        Ok(pack) => {
            let read = || format!("read {}", pack_path.display());
            let len = pack.metadata().with_context(read)?.len();
            let framing =
                !framing_intact(&pack, len, entries.len(), &index.pack_sum).with_context(read)?;
            let own = crc_mismatches(&pack, len, &entries, buf).with_context(read)?;
            let mut bad = own.clone();
            if bad.contains(&true) {
                spread_to_deltas(&pack, &index, &entries, &mut bad).with_context(read)?;
            }
            (own, bad, framing)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (vec![true; entries.len()], vec![true; entries.len()], true)
        }
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", pack_path.display())),
    };
    if !framing && !bad.contains(&true) {
        return Ok(None);
    }
    let marked = |keep: &dyn Fn(usize) -> bool| -> Result<Vec<Oid>> {
        (0..entries.len())
            .filter(|&i| keep(i))
            .map(|i| index.id(entries[i].index))
            .collect()
    };
    Ok(Some(DamagedPack {
        idx: idx_path.to_path_buf(),
        ids: marked(&|i| bad[i])?,
        dependents: marked(&|i| bad[i] && !own[i])?,
        framing,
    }))
}

/// A version 2 pack index whose own checksum matched, read by position.
struct Index {
    file: File,
    count: u64,
    /// The checksum of the pack it describes (the pack's trailer).
    pack_sum: [u8; 20],
}

impl Index {
    fn open(path: &Path, buf: &mut [u8]) -> Result<Index> {
        let file = File::open(path).context("open")?;
        let len = file.metadata().context("read")?.len();
        let mut head = [0u8; IDX_IDS_AT];
        file.read_exact_at(&mut head, 0).context("read")?;
        if head[..8] != *IDX_V2_MAGIC {
            bail!("not a version 2 pack index");
        }
        let count = u64::from(u32::from_be_bytes(head[IDX_IDS_AT - 4..].try_into()?));
        let tables = HEADER + count * 28;
        if len < tables + 40 || !(len - tables - 40).is_multiple_of(8) {
            bail!("damaged: its size does not fit its {count} objects");
        }
        // The last 20 bytes are the SHA-1 of everything before them.
        let mut hasher = Sha1::new();
        let mut at = 0;
        while at < len - 20 {
            let n = buf.len().min((len - 20 - at) as usize);
            file.read_exact_at(&mut buf[..n], at).context("read")?;
            hasher.update(&buf[..n]);
            at += n as u64;
        }
        let mut sums = [0u8; 40];
        file.read_exact_at(&mut sums, len - 40).context("read")?;
        if hasher.finalize()[..] != sums[20..] {
            bail!("damaged: its checksum does not match");
        }
        Ok(Index {
            file,
            count,
            pack_sum: sums[..20].try_into()?,
        })
    }

    /// Offset and CRC of every object, in index order.
    fn entries(&self) -> Result<Vec<Entry>> {
        let n = self.count;
        let mut entries = Vec::with_capacity(n as usize);
        let mut crcs = vec![0u8; 4 << 10];
        let mut offsets = vec![0u8; 4 << 10];
        for first in (0..n).step_by(crcs.len() / 4) {
            let count = (crcs.len() as u64 / 4).min(n - first) as usize;
            let (crcs, offsets) = (&mut crcs[..count * 4], &mut offsets[..count * 4]);
            self.file
                .read_exact_at(crcs, HEADER + n * 20 + first * 4)
                .context("read")?;
            self.file
                .read_exact_at(offsets, HEADER + n * 24 + first * 4)
                .context("read")?;
            for (i, (crc, small)) in crcs
                .chunks_exact(4)
                .zip(offsets.chunks_exact(4))
                .enumerate()
            {
                let small = u32::from_be_bytes(small.try_into()?);
                let offset = idx_offset(&self.file, n, small).context("read large offset")?;
                entries.push(Entry {
                    offset,
                    crc: u32::from_be_bytes(crc.try_into()?),
                    index: (first as usize + i) as u32,
                });
            }
        }
        Ok(entries)
    }

    /// The id at position `at`.
    fn id(&self, at: u32) -> Result<Oid> {
        let mut id = [0u8; 20];
        self.file
            .read_exact_at(&mut id, HEADER + u64::from(at) * 20)
            .context("read")?;
        Ok(Oid::from_bytes(&id)?)
    }
}

/// Whether the pack starts with a header for `count` objects and ends with the checksum its
/// index names (libgit2 refuses a pack where either is wrong).
fn framing_intact(pack: &File, len: u64, count: usize, pack_sum: &[u8; 20]) -> Result<bool> {
    let (mut head, mut tail) = ([0u8; 12], [0u8; 20]);
    if len < 32 || !read_all_at(pack, &mut head, 0)? || !read_all_at(pack, &mut tail, len - 20)? {
        return Ok(false);
    }
    let version = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let objects = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    Ok(&head[..4] == b"PACK"
        && matches!(version, 2 | 3)
        && objects as usize == count
        && tail == *pack_sum)
}

/// Fill `buf` from `at`: false when the file ends first (damage: cut short), an error when it
/// cannot be read.
fn read_all_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<bool> {
    match file.read_exact_at(buf, at) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether `e` says something is damaged rather than that it could not be read: an I/O error
/// other than data that ends early or is malformed is never damage.
pub fn is_damage(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
    !e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| !matches!(io.kind(), InvalidData | InvalidInput | UnexpectedEof))
    })
}

/// For each entry (sorted by offset): whether its bytes fail its CRC or cannot be read. An entry
/// ends where the next begins, the last one at the pack's 20-byte trailer.
fn crc_mismatches(
    pack: &File,
    len: u64,
    entries: &[Entry],
    buf: &mut [u8],
) -> std::io::Result<Vec<bool>> {
    let end = len.saturating_sub(20);
    let mut reader = Sequential {
        file: pack,
        buf,
        start: 0,
        filled: 0,
    };
    let mut bad = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let next = entries.get(i + 1).map_or(end, |n| n.offset);
        let sane = e.offset >= 12 && e.offset < next && next <= end;
        bad.push(!sane || reader.crc(e.offset, next)? != Some(e.crc));
    }
    Ok(bad)
}

/// Reads a pack front to back in blocks of the buffer's size, whatever its entries' sizes.
struct Sequential<'a> {
    file: &'a File,
    buf: &'a mut [u8],
    /// Where the buffer's bytes come from, and how many there are.
    start: u64,
    filled: usize,
}

impl Sequential<'_> {
    /// The CRC-32 of the bytes from `from` to `to` (None: the pack ends before `to`).
    fn crc(&mut self, from: u64, to: u64) -> std::io::Result<Option<u32>> {
        let mut crc = libdeflater::Crc::new();
        let mut at = from;
        while at < to {
            if (at < self.start || at >= self.start + self.filled as u64) && !self.fill(at)? {
                return Ok(None);
            }
            let skip = (at - self.start) as usize;
            let n = ((self.filled - skip) as u64).min(to - at) as usize;
            crc.update(&self.buf[skip..skip + n]);
            at += n as u64;
        }
        Ok(Some(crc.sum()))
    }

    /// Read the block at `at` (false: nothing there; an error when it cannot be read).
    fn fill(&mut self, at: u64) -> std::io::Result<bool> {
        (self.start, self.filled) = (at, 0);
        loop {
            match self.file.read_at(self.buf, at) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.filled = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Mark the deltas whose base is marked: git cannot build them. An offset delta's base is an
/// earlier entry of the same pack; a reference delta's is named by id. (Packs sqlgit writes
/// hold no deltas; fetched ones do.)
fn spread_to_deltas(pack: &File, index: &Index, entries: &[Entry], bad: &mut [bool]) -> Result<()> {
    let mut ids: Option<HashMap<Oid, usize>> = None;
    let mut deltas = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let mut head = [0u8; 40];
        let got = pack.read_at(&mut head, e.offset)?;
        let Ok((kind, _, used)) = entry_header(&head[..got]) else {
            continue;
        };
        let base = match kind {
            6 => ofs_base(e.offset, &head[used..got])
                .and_then(|at| entries.binary_search_by_key(&at, |e| e.offset).ok()),
            7 if got >= used + 20 => {
                if ids.is_none() {
                    let mut map = HashMap::with_capacity(entries.len());
                    for (k, e) in entries.iter().enumerate() {
                        map.insert(index.id(e.index)?, k);
                    }
                    ids = Some(map);
                }
                let id = Oid::from_bytes(&head[used..used + 20])?;
                ids.as_ref().and_then(|m| m.get(&id).copied())
            }
            _ => None,
        };
        deltas.extend(base.map(|b| (i, b)));
    }
    // Chains: until nothing more is marked.
    let mut spread = true;
    while spread {
        spread = false;
        for &(delta, base) in &deltas {
            if bad[base] && !bad[delta] {
                bad[delta] = true;
                spread = true;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
