//! What the packs hold, read from their indexes and entries with a few small `pread`s an object:
//! whether an object is there, its size, a tree's or a blob's content.
//!
//! An incremental snapshot subtracts the size of every changed chunk it replaces from the
//! table's byte count (all of a table's together: [`PackReader::sizes`]), reads the previous
//! snapshot's folders next to every change, and its object writer skips what is stored
//! already. Through libgit2 each lookup searched every pack's index, and
//! each read mapped a pack window and, under the small window cap that keeps memory bounded
//! (see [`super::configure_libgit2`]), unmapped another one: a third of a scattered-change run
//! went there. Here 8 bytes an object are kept in memory — the first 4 bytes of its id and its
//! offset, read from a pack's `.idx` (version 2) at the first lookup that reaches the pack — an
//! id found among them is confirmed by one read, and the entry is read with `pread`: its header
//! for a size (for a delta, the start of the delta data), the whole entry for a tree or blob
//! stored whole, or the chain of offset deltas down to one (merged packs store old versions
//! so), checked against its id. Entries read in the pack's order (a restore) share reads of
//! 256 KiB. Nothing is mapped; nothing of the files stays resident.
//! What is in no pack (loose, or in a pack written after this was opened) is not found, and an
//! object stored as a delta by id (packs git fetched) is `None`: callers ask libgit2.
//! Entries a scrub found damaged can be left out ([`PackReader::excluding`]): the writer then
//! stores those objects again instead of trusting the damaged copy.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result, bail};
use git2::Oid;

use super::delta::ofs_base;
use super::pack::{IDX_IDS_AT, IDX_V2_MAGIC, Kind, OFS_DELTA, idx_offset, object_id};
use super::scrub::Damage;

const HEADER: u64 = IDX_IDS_AT as u64;
/// Trees bigger than this are left to libgit2 (a snapshot's trees hold a few hundred entries;
/// a damaged header must not ask for gigabytes).
const MAX_TREE: usize = 16 << 20;

thread_local! {
    /// libdeflate's decompressor, made at a thread's first whole entry and kept.
    static INFLATE: std::cell::RefCell<Option<libdeflater::Decompressor>> =
        const { std::cell::RefCell::new(None) };
}

/// A pack entry inflated: its type code, its content (for an offset delta, the delta) and, for
/// an offset delta, where its base starts.
struct Entry {
    code: u8,
    data: Vec<u8>,
    base: Option<u64>,
}

/// One pack and its index.
struct Pack {
    /// The index's file name (`pack-….idx`).
    name: OsString,
    /// Objects whose entries here are damaged: as if the pack did not hold them.
    excluded: HashSet<Oid>,
    idx: File,
    pack: File,
    /// The pack's length in bytes.
    len: u64,
    count: u64,
    /// Read at the first lookup that reaches the pack (or why it could not be).
    table: OnceLock<Result<Table, String>>,
    window: Mutex<Window>,
}

/// Bytes of a pack read ahead of the entry that asked for them.
#[derive(Default)]
struct Window {
    /// Where they start in the pack.
    start: u64,
    data: Vec<u8>,
    /// Whether they reach the end of the file.
    to_eof: bool,
}

/// How much of a pack is read at once by entries read one after another.
const READ_AHEAD: usize = 256 << 10;

/// How far past the window an entry may start and still be read as the next one.
const NEAR: u64 = 4 << 10;

/// What is kept of a pack's index: 8 bytes an object.
struct Table {
    /// The first 4 bytes of every id, in the index's order.
    prefixes: Vec<u32>,
    /// Every entry's offset in the pack as the index's 4-byte table holds it (past 2 GiB, a
    /// position in its table of 8-byte offsets), in the same order.
    offsets: Vec<u32>,
}

/// The packs of one repository's object directory, biggest first.
pub struct PackReader {
    packs: Vec<Pack>,
}

impl PackReader {
    /// Open every `pack-*.idx` (version 2) with its `.pack` under `objects/pack`; a pack that
    /// cannot be read is left out (its objects are then `None`).
    pub fn open(objects: &Path) -> PackReader {
        let mut packs = Vec::new();
        if let Ok(entries) = std::fs::read_dir(objects.join("pack")) {
            for entry in entries.flatten() {
                let path = entry.path();
                // Not the temporary files of a pack being written (or left by a killed run).
                let named = entry.file_name().to_string_lossy().starts_with("pack-");
                if named
                    && path.extension().is_some_and(|e| e == "idx")
                    && let Ok(pack) = Pack::open(&path)
                {
                    packs.push(pack);
                }
            }
        }
        // Most objects live in the biggest packs: fewer packs are searched on average.
        packs.sort_by_key(|p| std::cmp::Reverse(p.count));
        PackReader { packs }
    }

    /// The same packs without the entries `damage` lists: those objects are then found only
    /// where another pack (or none) holds them.
    pub fn excluding(mut self, damage: &Damage) -> PackReader {
        let mut by_name: HashMap<&std::ffi::OsStr, &[Oid]> = HashMap::new();
        for pack in &damage.packs {
            if let Some(name) = pack.idx.file_name() {
                by_name.insert(name, &pack.ids);
            }
        }
        for pack in &mut self.packs {
            if let Some(ids) = by_name.get(pack.name.as_os_str()) {
                pack.excluded.extend(ids.iter().copied());
            }
        }
        self
    }

    /// Whether one of the packs holds object `oid`.
    pub fn contains(&self, oid: Oid) -> Result<bool> {
        for pack in &self.packs {
            if pack.find(oid)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The sizes of `oids` (None: in no pack). The index entries, then the pack entries, of all
    /// of them are asked of the kernel (`POSIX_FADV_WILLNEED`) before any is read: where the
    /// page cache does not hold a repository's packs (entries scattered over a pack of a GB),
    /// the disk reads then overlap instead of coming one after another.
    pub fn sizes(&self, oids: &[Oid]) -> Result<Vec<Option<u64>>> {
        for &oid in oids {
            for pack in &self.packs {
                if let Some(at) = pack.first_candidate(oid)? {
                    advise(&pack.idx, HEADER + at * 20, 20);
                }
            }
        }
        // Where each entry starts: its pack and offset.
        let mut found: Vec<Option<(usize, u64)>> = Vec::with_capacity(oids.len());
        for &oid in oids {
            let mut place = None;
            for (p, pack) in self.packs.iter().enumerate() {
                if let Some(at) = pack.find(oid)? {
                    let offset = pack.offset(at)?;
                    advise(&pack.pack, offset, 128);
                    place = Some((p, offset));
                    break;
                }
            }
            found.push(place);
        }
        found
            .into_iter()
            .map(|place| match place {
                Some((p, offset)) => self.packs[p].entry_size(offset).map(Some),
                None => Ok(None),
            })
            .collect()
    }

    /// How many offset deltas lead from object `oid` down to an entry stored whole (0: it is
    /// stored whole). None: in no pack, or stored as a delta by id.
    pub fn chain_depth(&self, oid: Oid) -> Result<Option<u32>> {
        for pack in &self.packs {
            if let Some(at) = pack.find(oid)? {
                let mut offset = pack.offset(at)?;
                let mut head = [0u8; 32];
                for depth in 0..10_000 {
                    let got = read_some_at(&pack.pack, &mut head, offset)?;
                    let (code, _, used) = entry_header(&head[..got])?;
                    match code {
                        1..=4 => return Ok(Some(depth)),
                        OFS_DELTA => match ofs_base(offset, &head[used..got]) {
                            Some(base) => offset = base,
                            None => return Ok(None),
                        },
                        _ => return Ok(None),
                    }
                }
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// The content of tree `oid` when a pack holds it whole (not as a delta), checked against
    /// its id. None: in no pack, a delta, bigger than a snapshot's trees get, or an entry that
    /// does not inflate (callers ask libgit2, which says what is wrong).
    pub fn whole_tree(&self, oid: Oid) -> Result<Option<Vec<u8>>> {
        self.whole(oid, Kind::Tree, MAX_TREE)
    }

    /// [`Self::whole_tree`] for a blob, of any size.
    pub fn whole_blob(&self, oid: Oid) -> Result<Option<Vec<u8>>> {
        self.whole(oid, Kind::Blob, usize::MAX)
    }

    fn whole(&self, oid: Oid, kind: Kind, max: usize) -> Result<Option<Vec<u8>>> {
        for pack in &self.packs {
            if let Some(at) = pack.find(oid)? {
                let data = pack.whole_entry(at, kind as u8, max)?;
                if let Some(data) = &data
                    && object_id(kind, data) != oid
                {
                    bail!("pack entry of object {oid} does not match its id");
                }
                return Ok(data);
            }
        }
        Ok(None)
    }
}

impl Pack {
    fn open(idx_path: &Path) -> Result<Pack> {
        let idx = File::open(idx_path)?;
        let pack = File::open(idx_path.with_extension("pack"))?;
        let mut header = vec![0u8; HEADER as usize];
        idx.read_exact_at(&mut header, 0)?;
        if header[..8] != *IDX_V2_MAGIC {
            bail!("not a version 2 pack index");
        }
        let last = &header[HEADER as usize - 4..];
        let count = u64::from(u32::from_be_bytes(last.try_into().expect("4 bytes")));
        let len = pack.metadata()?.len();
        Ok(Pack {
            name: idx_path.file_name().unwrap_or_default().to_os_string(),
            excluded: HashSet::new(),
            idx,
            len,
            pack,
            count,
            table: OnceLock::new(),
            window: Mutex::default(),
        })
    }

    /// The pack's table, read once (the object writer and the dump share the reader; the
    /// other waits while one reads it).
    fn table(&self) -> Result<&Table> {
        match self
            .table
            .get_or_init(|| self.read_table().map_err(|e| format!("{e:#}")))
        {
            Ok(table) => Ok(table),
            Err(e) => bail!("{e}"),
        }
    }

    /// Read the prefixes out of the index, with `pread` (the descriptor is shared
    /// between threads: no file position).
    fn read_table(&self) -> Result<Table> {
        let n = self.count as usize;
        let mut table = Table {
            prefixes: Vec::with_capacity(n),
            offsets: Vec::with_capacity(n),
        };
        let mut block = vec![0u8; 64 << 10];
        let mut each = |at: u64, size: usize, take: &mut dyn FnMut(&[u8])| -> Result<()> {
            let per_block = block.len() / size;
            for first in (0..n).step_by(per_block) {
                let count = per_block.min(n - first);
                let bytes = &mut block[..count * size];
                self.idx
                    .read_exact_at(bytes, at + (first * size) as u64)
                    .context("read pack index")?;
                bytes.chunks_exact(size).for_each(&mut *take);
            }
            Ok(())
        };
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        each(HEADER, 20, &mut |id| table.prefixes.push(be32(id)))?;
        let offsets_at = HEADER + 24 * n as u64;
        each(offsets_at, 4, &mut |o| table.offsets.push(be32(o)))?;
        Ok(table)
    }

    /// The first index position whose id starts as `oid` does (the id itself, if the pack
    /// has it, is there or just after).
    fn first_candidate(&self, oid: Oid) -> Result<Option<u64>> {
        let id = oid.as_bytes();
        let prefix = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
        let prefixes = &self.table()?.prefixes;
        let at = lower_bound(prefixes, prefix);
        Ok((prefixes.get(at) == Some(&prefix)).then_some(at as u64))
    }

    /// The position of `oid` in the index: among the candidates, the one whose whole id it is
    /// (None for an excluded one).
    fn find(&self, oid: Oid) -> Result<Option<u64>> {
        // Every lookup of the writer comes here, once a pack: hash only when a scrub excluded.
        if !self.excluded.is_empty() && self.excluded.contains(&oid) {
            return Ok(None);
        }
        let Some(mut at) = self.first_candidate(oid)? else {
            return Ok(None);
        };
        let prefixes = &self.table()?.prefixes;
        let prefix = prefixes[at as usize];
        let mut stored = [0u8; 20];
        while prefixes.get(at as usize) == Some(&prefix) {
            self.idx
                .read_exact_at(&mut stored, HEADER + at * 20)
                .context("read pack index")?;
            if stored == *oid.as_bytes() {
                return Ok(Some(at));
            }
            at += 1;
        }
        Ok(None)
    }

    /// Where the entry at index position `at` starts in the pack.
    fn offset(&self, at: u64) -> Result<u64> {
        let n = self.count;
        if at >= n {
            bail!("pack index position {at} out of range");
        }
        let small = self.table()?.offsets[at as usize];
        let offset = idx_offset(&self.idx, n, small).context("read pack index")?;
        Ok(offset)
    }

    /// The size of the object whose entry starts at `offset` in the pack.
    fn entry_size(&self, offset: u64) -> Result<u64> {
        let mut head = [0u8; 128];
        let got = read_some_at(&self.pack, &mut head, offset)?;
        let head = &head[..got];
        let (kind, size, mut used) = entry_header(head)?;
        match kind {
            1..=4 => return Ok(size),
            6 => {
                // Offset to the base: a varint of its own.
                while *head.get(used).context("short pack entry")? & 0x80 != 0 {
                    used += 1;
                }
                used += 1;
            }
            7 => used += 20,
            _ => bail!("pack entry of unknown type {kind}"),
        }
        let delta = head.get(used..).context("short pack entry")?;
        self.delta_result_size(offset + used as u64, delta)
    }

    /// The inflated content of the object at index position `at` when it is of type `kind` and
    /// at most `max` bytes: its entry stored whole, or a chain of offset deltas in this pack
    /// (what merging packs writes for old versions) applied to the whole entry it ends at.
    /// None: another type, bigger, a delta by id or a longer chain, or an entry that does not
    /// inflate (callers ask libgit2, which says what is wrong).
    fn whole_entry(&self, at: u64, kind: u8, max: usize) -> Result<Option<Vec<u8>>> {
        /// Longer chains are left to libgit2 (merging makes them at most 50 long).
        const MAX_CHAIN: usize = 64;
        let mut offset = self.offset(at)?;
        let mut deltas = Vec::new();
        let mut data = loop {
            let Some(Entry { code, data, base }) = self.entry_at(offset, max)? else {
                return Ok(None);
            };
            match base {
                Some(base) if deltas.len() < MAX_CHAIN => {
                    deltas.push(data);
                    offset = base;
                }
                Some(_) => return Ok(None),
                None if code == kind => break data,
                None => return Ok(None),
            }
        };
        for delta in deltas.iter().rev() {
            match super::delta::apply(&data, delta) {
                Ok(next) if next.len() <= max => data = next,
                _ => return Ok(None),
            }
        }
        Ok(Some(data))
    }

    /// The entry at `offset` inflated. None: bigger than `max` (a delta:
    /// bigger than 8 MiB), a delta by id, or an entry that does not inflate. The header and the
    /// compressed data come in one read for entries of a few KiB (a second one for bigger
    /// ones), inflated by libdeflate in one call: several times faster than a streaming zlib.
    /// The read's bound covers zlib's output for any data.
    fn entry_at(&self, offset: u64, max: usize) -> Result<Option<Entry>> {
        /// Objects bigger than this are inflated as their compressed bytes are read.
        const STREAM_FROM: usize = 8 << 20;
        /// The first read of an entry: its header, and all of a small one.
        const PROBE: usize = 8 << 10;
        let head = self.with_bytes(offset, PROBE, |input| -> Result<_> {
            let (code, size, mut used) = entry_header(input)?;
            let mut base = None;
            if code == OFS_DELTA {
                base = ofs_base(offset, &input[used..]);
                if base.is_none() {
                    return Ok(None);
                }
                used += super::delta::ofs_len(&input[used..]);
            } else if !(1..=4).contains(&code) {
                return Ok(None);
            }
            let Some(first) = input.get(used..) else {
                return Ok(None);
            };
            // What a big entry's stream starts with (a small one is read again, below).
            let first = (size > STREAM_FROM as u64).then(|| first.to_vec());
            Ok(Some((code, size, used, base, first)))
        })??;
        let Some((code, size, used, base, first)) = head else {
            return Ok(None);
        };
        // Deflate shrinks data at most ~1032 times: a size past that is a damaged header,
        // which must not ask for gigabytes.
        let left = self.len.saturating_sub(offset + used as u64);
        let size = usize::try_from(size).context("object too big")?;
        let limit = if base.is_some() {
            max.min(STREAM_FROM)
        } else {
            max
        };
        if size > limit || size as u64 > left.saturating_mul(1032) {
            return Ok(None);
        }
        if let Some(first) = first {
            // A big object (a row with a value of many MiB) is inflated from the pack as it is
            // read: holding its compressed bytes whole too would double the memory it takes.
            let mut out = vec![0u8; size];
            let stream = offset + used as u64;
            let (done, _) = self.inflate_at(stream, &first, &mut out, 1 << 20, |_| false)?;
            return Ok((done == size).then_some(Entry {
                code,
                data: out,
                base,
            }));
        }
        let bound = used + size + size / 8 + 64;
        let data = self.with_bytes(offset, bound, |input| {
            inflate_exact(input.get(used..).unwrap_or_default(), size)
        })?;
        Ok(data.map(|data| Entry { code, data, base }))
    }

    /// `f` on the pack's bytes from `offset` on: `len` of them (fewer at the end of the file).
    /// Entries read one after another (a restore reads a snapshot's files in the order they
    /// were written, which is the pack's) come out of one read of [`READ_AHEAD`] bytes, kept
    /// in the pack's [`Window`]: one `pread` for a hundred entries. Reads elsewhere read
    /// what they need. A window in use by another thread, or a bigger read, is not kept.
    fn with_bytes<R>(&self, offset: u64, len: usize, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let window = match self.window.try_lock() {
            Ok(w) if len <= READ_AHEAD => Some(w),
            _ => None,
        };
        let Some(mut w) = window else {
            let mut buf = vec![0u8; len];
            let got = read_some_at(&self.pack, &mut buf, offset)?;
            return Ok(f(&buf[..got]));
        };
        let end = w.start + w.data.len() as u64;
        let covered =
            w.start <= offset && (offset + len as u64 <= end || w.to_eof && offset <= end);
        if !covered {
            // Just past the window (an entry it held the start of, or the next one): reading
            // on through the pack. Entries further on are read alone: a run re-reading the
            // trees around scattered changes reads one every ~100 KB, and reading the pack
            // through a window would read all of it.
            let ahead = offset > w.start && offset <= end + NEAR;
            let size = if ahead { READ_AHEAD } else { len };
            w.data.resize(size, 0);
            let got = read_some_at(&self.pack, &mut w.data, offset)?;
            w.data.truncate(got);
            (w.start, w.to_eof) = (offset, got < size);
        }
        let from = (offset - w.start) as usize;
        let to = (from + len).min(w.data.len());
        Ok(f(&w.data[from..to]))
    }

    /// A delta's result size: the second varint of its inflated data.
    fn delta_result_size(&self, at: u64, first: &[u8]) -> Result<u64> {
        let mut out = [0u8; 32];
        let enough = |o: &[u8]| delta_sizes_end(o).is_some();
        let (done, _) = self.inflate_at(at, first, &mut out, 256, enough)?;
        let (base_end, result_end) =
            delta_sizes_end(&out[..done]).context("short delta in pack")?;
        Ok(varint_le(&out[base_end + 1..=result_end]))
    }

    /// Inflate the zlib stream at `at` in the pack into `out` — `first`: its bytes already read
    /// (any number), then `input` bytes a read — until it ends, `out` is full or `enough` holds
    /// for what came out. Returns the bytes out and whether the stream ended.
    fn inflate_at(
        &self,
        at: u64,
        first: &[u8],
        out: &mut [u8],
        input: usize,
        enough: impl Fn(&[u8]) -> bool,
    ) -> Result<(usize, bool)> {
        let mut inflate = flate2::Decompress::new(true);
        let mut buf = first.to_vec();
        let (mut pos, mut read_at) = (0, at + first.len() as u64);
        loop {
            if pos == buf.len() {
                buf.resize(input, 0);
                let got = read_some_at(&self.pack, &mut buf, read_at)?;
                buf.truncate(got);
                (pos, read_at) = (0, read_at + got as u64);
            }
            let (before_in, before_out) = (inflate.total_in(), inflate.total_out() as usize);
            let status = inflate
                .decompress(
                    &buf[pos..],
                    &mut out[before_out..],
                    flate2::FlushDecompress::None,
                )
                .context("inflate pack entry")?;
            pos += (inflate.total_in() - before_in) as usize;
            let done = inflate.total_out() as usize;
            if status == flate2::Status::StreamEnd {
                return Ok((done, true));
            }
            let stalled = inflate.total_in() == before_in && done == before_out;
            if enough(&out[..done]) || buf.is_empty() || stalled || done == out.len() {
                return Ok((done, false));
            }
        }
    }
}

/// Where a delta's two sizes (base, result) end in its first inflated bytes: each is a varint
/// ending at a byte without its top bit.
fn delta_sizes_end(data: &[u8]) -> Option<(usize, usize)> {
    let mut ends = (0..data.len()).filter(|&i| data[i] & 0x80 == 0);
    Some((ends.next()?, ends.next()?))
}

/// Type, size and header length of a pack entry.
pub(super) fn entry_header(head: &[u8]) -> Result<(u8, u64, usize)> {
    let mut byte = *head.first().context("short pack entry")?;
    let kind = (byte >> 4) & 7;
    let mut size = u64::from(byte & 15);
    let mut shift = 4;
    let mut used = 1;
    while byte & 0x80 != 0 {
        byte = *head.get(used).context("short pack entry")?;
        if shift > 57 {
            bail!("damaged pack entry header");
        }
        size |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        used += 1;
    }
    Ok((kind, size, used))
}

/// The type code and inflated content of a pack entry stored whole (`entry`: all its bytes).
pub(super) fn inflate_entry(entry: &[u8]) -> Result<(u8, Vec<u8>)> {
    let (code, size, used) = entry_header(entry)?;
    if !(1..=4).contains(&code) {
        bail!("pack entry is a delta");
    }
    let size = usize::try_from(size).context("object too big")?;
    if size as u64 > (entry.len() as u64).saturating_mul(1032) {
        bail!("damaged pack entry header");
    }
    match inflate_exact(&entry[used..], size) {
        Some(data) => Ok((code, data)),
        None => bail!("pack entry does not inflate"),
    }
}

/// `input`, a zlib stream, inflated by libdeflate in one call when it gives exactly `size`
/// bytes.
fn inflate_exact(input: &[u8], size: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; size];
    let done = INFLATE.with_borrow_mut(|inflate| {
        let inflate = inflate.get_or_insert_with(libdeflater::Decompressor::new);
        inflate.zlib_decompress(input, &mut out)
    });
    matches!(done, Ok(done) if done == size).then_some(out)
}

/// A little-endian base-128 number (a delta's sizes; bits past 64 are dropped).
fn varint_le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(10)
        .enumerate()
        .fold(0, |n, (i, b)| n | (u64::from(b & 0x7f) << (7 * i)))
}

/// Read what there is at `at` into `buf`, up to its length (less at the end of the file).
pub(super) fn read_some_at(file: &File, buf: &mut [u8], at: u64) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], at + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("read pack"),
        }
    }
    Ok(got)
}

/// Ask the kernel to read `len` bytes at `offset` of `file` into its cache, without waiting.
fn advise(file: &File, offset: u64, len: u64) {
    use std::os::unix::io::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a hint about our own open descriptor; nothing is read or written.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_WILLNEED);
    }
}

/// The first position in `prefixes` (sorted) whose value is `prefix` or more. Object ids are
/// uniformly distributed, so the position is guessed from the value and the search widens from
/// there: a few neighbouring cache lines instead of ~20 scattered reads of a binary search, for
/// every pack a lookup passes through.
fn lower_bound(prefixes: &[u32], prefix: u32) -> usize {
    let n = prefixes.len();
    if n == 0 {
        return 0;
    }
    let guess = ((u64::from(prefix) * n as u64) >> 32) as usize; // < n
    let mut step = 32usize;
    // The answer lies in (lo, hi]: prefixes[lo] < prefix (lo = None: before the start), and
    // hi == n or prefixes[hi] >= prefix.
    let (lo, hi) = if prefixes[guess] < prefix {
        let (mut lo, mut hi) = (guess, guess.saturating_add(step).min(n));
        while hi < n && prefixes[hi] < prefix {
            lo = hi;
            step *= 2;
            hi = hi.saturating_add(step).min(n);
        }
        (Some(lo), hi)
    } else {
        let mut hi = guess;
        loop {
            let Some(lo) = hi.checked_sub(step) else {
                break (None, hi);
            };
            if prefixes[lo] < prefix {
                break (Some(lo), hi);
            }
            hi = lo;
            step *= 2;
        }
    };
    let start = lo.map_or(0, |l| l + 1);
    start + prefixes[start..hi].partition_point(|&p| p < prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_bound_agrees_with_a_binary_search() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for n in [0usize, 1, 2, 3, 31, 32, 33, 100, 5000] {
            let mut prefixes: Vec<u32> = (0..n).map(|_| next() as u32).collect();
            // Skewed and repeated values too.
            if n > 10 {
                prefixes[..n / 3].iter_mut().for_each(|p| *p %= 1000);
                prefixes[n / 2] = prefixes[n / 2 + 1];
            }
            prefixes.sort_unstable();
            let mut probes: Vec<u32> = prefixes.clone();
            probes.extend([0, 1, u32::MAX, u32::MAX - 1, 999, 1000]);
            probes.extend((0..200).map(|_| next() as u32));
            for p in probes {
                let want = prefixes.partition_point(|&v| v < p);
                assert_eq!(lower_bound(&prefixes, p), want, "n={n} p={p}");
            }
        }
    }

    /// `git pack-objects` of `ids` into `dir`'s object directory (deltas between similar ones,
    /// naming their bases by id).
    fn pack(dir: &Path, ids: &[Oid]) {
        pack_with(dir, ids, &[]);
    }

    /// [`pack`] with more arguments to `git pack-objects`.
    fn pack_with(dir: &Path, ids: &[Oid], args: &[&str]) {
        use std::io::Write as _;
        let list: String = ids.iter().map(|id| format!("{id}\n")).collect();
        let mut child = std::process::Command::new("git")
            .args(["pack-objects", "-q"])
            .args(args)
            .arg("objects/pack/pack")
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(list.as_bytes()).unwrap();
        drop(stdin);
        assert!(child.wait().unwrap().success());
    }

    /// `count` blobs of a text that grows by `line(i)` each time (git stores most as deltas),
    /// and the whole text.
    fn growing_blobs(
        repo: &git2::Repository,
        count: usize,
        line: impl Fn(usize) -> String,
    ) -> (Vec<Oid>, String) {
        let mut text = String::new();
        let ids = (0..count)
            .map(|i| {
                text.push_str(&line(i));
                repo.blob(text.as_bytes()).unwrap()
            })
            .collect();
        (ids, text)
    }

    /// Objects of two packs, deltas among them, have the sizes libgit2 reads.
    #[test]
    fn sizes_match_libgit2_with_and_without_deltas() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let (mut ids, _) = growing_blobs(&repo, 400, |i| {
            format!("line {i} of a file that changes a little\n")
        });
        ids.push(repo.blob(&vec![7u8; 100_000]).unwrap());
        pack(dir.path(), &ids);
        // A second, smaller pack: its objects are found after a miss in the first.
        let more: Vec<Oid> = (0..50)
            .map(|i| repo.blob(format!("other {i}").as_bytes()).unwrap())
            .collect();
        pack(dir.path(), &more);
        let sizes = PackReader::open(&dir.path().join("objects"));
        assert_eq!(sizes.packs.len(), 2);
        let big = &sizes.packs[0];
        let deltas = ids
            .iter()
            .filter(|id| {
                let offset = big.offset(big.find(**id).unwrap().unwrap()).unwrap();
                let mut head = [0u8; 16];
                read_some_at(&big.pack, &mut head, offset).unwrap();
                entry_header(&head).unwrap().0 >= 6
            })
            .count();
        assert!(
            deltas > 100,
            "only {deltas} deltas: the test checks too little"
        );
        let odb = repo.odb().unwrap();
        for id in ids.iter().chain(&more) {
            let (want, _) = odb.read_header(*id).unwrap();
            assert_eq!(sizes.sizes(&[*id]).unwrap(), [Some(want as u64)], "{id}");
        }
        let absent = Oid::from_str("0123456789abcdef0123456789abcdef01234567").unwrap();
        assert_eq!(sizes.sizes(&[absent]).unwrap(), [None]);
        assert_eq!(sizes.whole_tree(absent).unwrap(), None);
        // All at once: the same, in the order asked, absent ones None.
        let mut asked: Vec<Oid> = more.iter().chain(&ids).copied().collect();
        asked.insert(3, absent);
        let together = sizes.sizes(&asked).unwrap();
        for (id, size) in asked.iter().zip(together) {
            assert_eq!([size], *sizes.sizes(&[*id]).unwrap(), "{id}");
        }
    }

    /// Trees packed whole read back as libgit2 reads them; a tree stored as a delta is None.
    #[test]
    fn whole_trees_match_libgit2() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let mut trees = Vec::new();
        let mut builder = repo.treebuilder(None).unwrap();
        for i in 0..60 {
            let blob = repo.blob(format!("chunk {i}").as_bytes()).unwrap();
            builder
                .insert(format!("{i:016x}.sql"), blob, 0o100644)
                .unwrap();
            trees.push(builder.write().unwrap());
        }
        // A tree bigger than the first read of an entry (ids do not compress).
        for i in 60..1000 {
            let blob = repo.blob(format!("chunk {i}").as_bytes()).unwrap();
            builder
                .insert(format!("{i:016x}.sql"), blob, 0o100644)
                .unwrap();
        }
        let big = builder.write().unwrap();
        pack(dir.path(), &trees);
        pack(dir.path(), &[big]); // alone in its pack: stored whole
        let packs = PackReader::open(&dir.path().join("objects"));
        let whole = read_as_libgit2(&repo, &trees, |id| packs.whole_tree(id).unwrap());
        assert!(
            whole > 0 && whole < trees.len(),
            "{whole} of {} whole",
            trees.len()
        );
    }

    /// Chains of offset deltas (what merging packs writes, and `git repack`) are followed to
    /// their whole base: every blob and tree reads as libgit2 reads it.
    #[test]
    fn offset_delta_chains_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let (mut ids, _) = growing_blobs(&repo, 300, |i| format!("(row {i}, 'v'),\n"));
        let mut builder = repo.treebuilder(None).unwrap();
        for (i, &blob) in ids.clone().iter().enumerate().take(120) {
            builder
                .insert(format!("{i:05}.sql"), blob, 0o100644)
                .unwrap();
            ids.push(builder.write().unwrap());
        }
        pack_with(dir.path(), &ids, &["--delta-base-offset", "--depth=40"]);
        let packs = PackReader::open(&dir.path().join("objects"));
        let blobs = read_as_libgit2(&repo, &ids[..300], |id| packs.whole_blob(id).unwrap());
        let trees = read_as_libgit2(&repo, &ids[300..], |id| packs.whole_tree(id).unwrap());
        assert_eq!((blobs, trees), (300, 120));
        let sizes = packs.sizes(&ids).unwrap();
        assert!(sizes.iter().all(Option::is_some));
    }

    /// How many of `ids` `read` gives, each the content libgit2 reads.
    fn read_as_libgit2(
        repo: &git2::Repository,
        ids: &[Oid],
        read: impl Fn(Oid) -> Option<Vec<u8>>,
    ) -> usize {
        let odb = repo.odb().unwrap();
        let read_whole = ids.iter().filter_map(|&id| Some((id, read(id)?)));
        read_whole
            .inspect(|(id, data)| assert_eq!(data, odb.read(*id).unwrap().data(), "{id}"))
            .count()
    }

    /// Blobs read whole (and as `None` when stored as deltas) are what libgit2 reads: growing
    /// texts (deltas among them), an empty blob, random bytes (zlib stores them) and a blob of a
    /// few MiB; a damaged entry is not passed off as content.
    #[test]
    fn whole_blobs_match_libgit2() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let (mut ids, text) = growing_blobs(&repo, 300, |i| {
            format!("(row {i}, 'value {}'),\n", i * 7919 % 1000)
        });
        ids.push(repo.blob(b"").unwrap());
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let noise_id = repo.blob(&noise).unwrap();
        ids.push(noise_id);
        ids.push(repo.blob(&text.repeat(300).into_bytes()).unwrap());
        pack(dir.path(), &ids);
        let packs = PackReader::open(&dir.path().join("objects"));
        let whole = read_as_libgit2(&repo, &ids, |id| packs.whole_blob(id).unwrap());
        assert!(
            whole >= 3 && whole < ids.len(),
            "{whole} of {} read whole",
            ids.len()
        );
        assert!(packs.whole_blob(noise_id).unwrap().is_some());
        let absent = Oid::from_str("0123456789012345678901234567890123456789").unwrap();
        assert_eq!(packs.whole_blob(absent).unwrap(), None);

        // Flip a byte inside the random blob's entry: never its content.
        let pack_path = std::fs::read_dir(dir.path().join("objects/pack"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "pack"))
            .unwrap();
        let mut bytes = std::fs::read(&pack_path).unwrap();
        let at = bytes
            .windows(64)
            .position(|w| w == &noise[1000..1064])
            .unwrap();
        bytes[at + 10] ^= 0x55;
        std::fs::write(&pack_path, &bytes).unwrap();
        let packs = PackReader::open(&dir.path().join("objects"));
        assert!(matches!(packs.whole_blob(noise_id), Ok(None) | Err(_)));
    }
}
