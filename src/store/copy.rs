//! Copying the entries of old packs into one new pack: what pruning keeps of mostly dead packs,
//! and what merging packs (`repack`) combines. Entries are copied byte for byte, one at a time
//! (memory bounded by an entry), deltas included when their base comes along: their offset is
//! rewritten, the compressed delta copied. A delta whose base does not come along is stored
//! whole.
//!
//! A merge also stores old versions as new deltas of their successors (the plan of `deltify`):
//! those, and the deltas of theirs the old packs held, are written after everything else, so
//! that each base comes before its deltas, as an offset delta needs.
//!
//! Every entry is checked against the CRC-32 its old `.idx` records before it is copied, and
//! every object inflated to make a new delta against its id: the new `.idx` records a CRC of
//! the bytes copied, so a damaged entry copied as it is would pass every later scrub. A damaged
//! entry stops the copy ([`DamagedEntry`]): its pack is left as it is, for the scrub of the
//! next run that reads everything to find and repair.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use git2::{Odb, Oid, Repository};

use super::delta::{encode, ofs_base, ofs_len};
use super::pack::{Compressor, Kind, OFS_DELTA, PackWriter, index_crcs, object_id};
use super::packread::{entry_header, inflate_entry};

/// A new delta is kept only when its entry is at most this fraction of the whole entry.
const DELTA_AT_MOST: f64 = 0.5;

/// Where an entry is in one of the packs copied.
#[derive(Clone, Copy)]
struct Source {
    pack: u32,
    len: u32,
    offset: u64,
    /// The CRC-32 the old `.idx` records for the entry.
    crc: u32,
}

/// A source entry whose bytes do not match the CRC-32 its `.idx` records, or that does not
/// inflate to its object: nothing of the copy may be kept.
#[derive(Debug)]
pub struct DamagedEntry {
    /// The pack's index (`objects/pack/pack-….idx`).
    pub idx: PathBuf,
    pub id: Oid,
}

impl std::fmt::Display for DamagedEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.idx.file_stem().unwrap_or_default().to_string_lossy();
        write!(
            f,
            "pack {name}: object {} is damaged (its entry does not match what its index \
             records): the pack is left as it is; the next run that reads everything, `sqlgit \
             snapshot --full`, repairs it",
            self.id
        )
    }
}

impl std::error::Error for DamagedEntry {}

/// The damaged entry `e` names, if it is one (see [`DamagedEntry`]).
pub(super) fn damaged_entry(e: &anyhow::Error) -> Option<&DamagedEntry> {
    e.chain().find_map(|c| c.downcast_ref::<DamagedEntry>())
}

/// What became of a source entry: written at an offset of the new pack, left for the end, or
/// not copied.
#[derive(Clone, Copy, PartialEq)]
enum Copied {
    Not,
    At(u64),
    Later,
}

impl Copied {
    /// In 8 bytes: the offset, or one of two that no pack reaches.
    fn code(self) -> u64 {
        match self {
            Copied::Not => u64::MAX,
            Copied::Later => u64::MAX - 1,
            Copied::At(at) => at,
        }
    }

    fn of(code: u64) -> Copied {
        match code {
            u64::MAX => Copied::Not,
            c if c == u64::MAX - 1 => Copied::Later,
            at => Copied::At(at),
        }
    }
}

/// What is written at the end: a new delta of the plan (its place among the nodes), or an old
/// delta whose base is written at the end (id, entry, base).
enum Later {
    New(u32),
    Old(Oid, Source, Oid),
}

/// An object of the plan (a new delta, a base, or both): its base's place among the nodes (if
/// it is to be a delta), its whole entry in the packs copied, and its offset in the new pack.
#[derive(Clone, Copy)]
struct Node {
    base: u32,
    source: Source,
    at: u64,
}

/// What a [`Node`] does not know yet.
const UNKNOWN: u32 = u32::MAX;
const NOWHERE: u64 = u64::MAX;

impl Node {
    fn source(&self) -> Option<Source> {
        (self.source.pack != UNKNOWN).then_some(self.source)
    }

    fn at(&self) -> Option<u64> {
        (self.at != NOWHERE).then_some(self.at)
    }
}

/// See the module doc.
pub(super) struct PackCopy<'r> {
    odb: Odb<'r>,
    out: PackWriter,
    z: Compressor,
    /// Objects in more than one of the packs copied (see [`in_several`]), and which of those
    /// were copied already.
    shared: HashSet<Oid>,
    copied: HashSet<Oid>,
    /// The objects of the plan and their bases, sorted by id (a sorted list takes half the
    /// memory of a map).
    nodes: Vec<(Oid, Node)>,
    /// The new deltas (places in `nodes`), each base before its deltas.
    order: Vec<u32>,
    /// What is written at the end, by the object it waits for: at first the old deltas of
    /// objects left for the end.
    waiting: HashMap<Oid, Vec<Later>>,
    /// Where old deltas written at the end went (new ones: in `nodes`).
    written: HashMap<Oid, u64>,
    /// The content of the last new delta's object (the next one's base, most often).
    last: Option<(Oid, Vec<u8>)>,
    /// The packs copied, open.
    sources: Vec<(PathBuf, File)>,
    /// New deltas written (kept smaller than their whole entry).
    pub deltified: usize,
}

impl<'r> PackCopy<'r> {
    /// Copy into a new pack of `objects` (see [`PackWriter::new`]); `plan`: (object, base)
    /// pairs to store as new deltas, each base before the objects that are deltas of it;
    /// `shared`: the objects that more than one of the packs copied hold.
    pub fn new(
        repo: &'r Repository,
        objects: &Path,
        plan: Vec<(Oid, Oid)>,
        shared: HashSet<Oid>,
    ) -> Result<Self> {
        let (nodes, order) = nodes_of(plan);
        Ok(PackCopy {
            odb: repo.odb()?,
            out: PackWriter::new(objects)?,
            z: Compressor::default(),
            shared,
            copied: HashSet::new(),
            nodes,
            order,
            waiting: HashMap::new(),
            written: HashMap::new(),
            last: None,
            sources: Vec::new(),
            deltified: 0,
        })
    }

    /// Copy the entries of one pack whose objects `keep` accepts (each object once over all
    /// calls).
    pub fn pack(
        &mut self,
        pack_path: &Path,
        mut index: Vec<(Oid, u64)>,
        keep: &dyn Fn(&Oid) -> bool,
    ) -> Result<()> {
        let file =
            File::open(pack_path).with_context(|| format!("open {}", pack_path.display()))?;
        let end = file.metadata()?.len().saturating_sub(20);
        let crcs = index_crcs(&pack_path.with_extension("idx"))?;
        let pack = self.sources.len() as u32;
        self.sources
            .push((pack_path.to_path_buf(), file.try_clone()?));
        let by_offset = &mut index;
        by_offset.sort_unstable_by_key(|e| e.1);
        // What became of each entry, in the order of `by_offset` (see [`Copied::code`]).
        let mut fate = vec![Copied::Not.code(); by_offset.len()];
        let mut buf = Vec::new();
        for i in 0..by_offset.len() {
            let (id, offset) = by_offset[i];
            if !keep(&id) || (self.shared.contains(&id) && !self.copied.insert(id)) {
                continue;
            }
            let next = by_offset.get(i + 1).map(|&(_, o)| o).unwrap_or(end);
            if next <= offset {
                bail!("{}: damaged pack index", pack_path.display());
            }
            let len = usize::try_from(next - offset).context("pack entry too big")?;
            let crc = match crcs.binary_search_by_key(&offset, |c| c.0) {
                Ok(at) => crcs[at].1,
                Err(_) => bail!("{}: damaged pack index", pack_path.display()),
            };
            // Where to read it again (None: 4 GiB or more, which is then copied right away).
            let source = u32::try_from(len).ok().map(|len| Source {
                pack,
                len,
                offset,
                crc,
            });
            buf.resize(len, 0);
            file.read_exact_at(&mut buf, offset)
                .with_context(|| format!("read {}", pack_path.display()))?;
            if libdeflater::crc32(&buf) != crc {
                return Err(self.damaged(pack, id));
            }
            let (code, _, used) = entry_header(&buf)?;
            let mut planned = false;
            if (1..=4).contains(&code)
                && let Some(source) = source
                && let Some(node) = self.node(&id)
            {
                node.source = source;
                planned = node.base != UNKNOWN;
            }
            let copied = match code {
                1..=4 if planned => Copied::Later,
                1..=4 => Copied::At(self.append(id, &buf)?),
                OFS_DELTA => {
                    let base = ofs_base(offset, &buf[used..])
                        .and_then(|at| by_offset.binary_search_by_key(&at, |e| e.1).ok());
                    match (base.map(|b| (Copied::of(fate[b]), by_offset[b].0)), source) {
                        (Some((Copied::At(base_at), _)), _) => {
                            Copied::At(self.append_delta(id, &buf, base_at)?)
                        }
                        (Some((Copied::Later, base)), Some(source)) => {
                            let old = Later::Old(id, source, base);
                            self.waiting.entry(base).or_default().push(old);
                            Copied::Later
                        }
                        _ => Copied::At(self.append_whole(id)?),
                    }
                }
                _ => Copied::At(self.append_whole(id)?),
            };
            fate[i] = copied.code();
        }
        Ok(())
    }

    /// Write what was left for the end, seal the pack and move it into place (see
    /// [`PackWriter::finish_named`]).
    pub fn finish(mut self) -> Result<(u64, Option<String>)> {
        match self.write_later() {
            Ok(()) => self.out.finish_named(),
            Err(e) => {
                self.out.discard();
                Err(e)
            }
        }
    }

    /// Whether object `id`, one of `shared`, was copied already.
    pub fn holds(&self, id: &Oid) -> bool {
        self.copied.contains(id)
    }

    /// Add object `id` of `kind` (whole, `data`), unless it was copied already (it must be
    /// one of `shared`).
    pub fn add(&mut self, id: Oid, kind: Kind, data: &[u8]) -> Result<()> {
        if self.copied.insert(id) {
            let entry = self.z.entry(kind, data, false)?;
            self.append(id, &entry)?;
        }
        Ok(())
    }

    /// Drop the new pack unwritten.
    pub fn discard(self) {
        self.out.discard();
    }

    /// Write the new deltas in the plan's order and the old deltas of objects left for the end,
    /// each once its base is written: one whose base is not written yet waits for it (a new
    /// delta can be based on an old delta whose own base is a new delta), and what is still
    /// waiting at the end (its base was not copied) is stored whole.
    fn write_later(&mut self) -> Result<()> {
        let mut waiting = std::mem::take(&mut self.waiting);
        let mut buf = Vec::new();
        for i in 0..self.order.len() {
            let node = self.order[i];
            let (_, n) = self.nodes[node as usize];
            if n.source().is_none() {
                continue; // in none of the packs copied
            }
            let base = self.nodes[n.base as usize].0;
            let ready = vec![Later::New(node)];
            match self.at_of(&base) {
                Some(_) => self.write_ready(ready, &mut waiting, &mut buf)?,
                None => waiting.entry(base).or_default().extend(ready),
            }
        }
        // Bases never written: store what waits for them whole.
        while let Some(&base) = waiting.keys().next() {
            let items = waiting.remove(&base).unwrap_or_default();
            for item in items {
                let id = match item {
                    Later::New(node) => {
                        let (id, n) = self.nodes[node as usize];
                        self.read(id, n.source().expect("checked"), &mut buf)?;
                        self.append(id, &buf)?;
                        id
                    }
                    Later::Old(id, _, _) => {
                        let at = self.append_whole(id)?;
                        self.written.insert(id, at);
                        id
                    }
                };
                let next = waiting.remove(&id).unwrap_or_default();
                self.write_ready(next, &mut waiting, &mut buf)?;
            }
        }
        Ok(())
    }

    /// Write `ready` (their bases are written), then whatever waited for them, and so on.
    fn write_ready(
        &mut self,
        mut ready: Vec<Later>,
        waiting: &mut HashMap<Oid, Vec<Later>>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        while let Some(item) = ready.pop() {
            let id = match item {
                Later::New(node) => {
                    let (id, n) = self.nodes[node as usize];
                    let base = self.nodes[n.base as usize].0;
                    let base_at = self.at_of(&base).expect("its base is written");
                    let source = n.source().expect("checked");
                    self.read(id, source, buf)?;
                    self.append_new_delta(id, source, buf, base, base_at)?;
                    id
                }
                Later::Old(id, source, base) => {
                    self.read(id, source, buf)?;
                    let base_at = self.at_of(&base).expect("its base is written");
                    let at = self.append_delta(id, buf, base_at)?;
                    self.written.insert(id, at);
                    id
                }
            };
            ready.extend(waiting.remove(&id).unwrap_or_default());
        }
        Ok(())
    }

    /// Where object `id` went in the new pack, if it is written.
    fn at_of(&mut self, id: &Oid) -> Option<u64> {
        match self.written.get(id) {
            Some(&at) => Some(at),
            None => self.node(id).and_then(|n| n.at()),
        }
    }

    fn node(&mut self, id: &Oid) -> Option<&mut Node> {
        let i = self.nodes.binary_search_by_key(id, |n| n.0).ok()?;
        Some(&mut self.nodes[i].1)
    }

    /// Read again the entry of object `id` at `source`, checked against its CRC-32.
    fn read(&self, id: Oid, source: Source, buf: &mut Vec<u8>) -> Result<()> {
        let (path, file) = &self.sources[source.pack as usize];
        buf.resize(source.len as usize, 0);
        file.read_exact_at(buf, source.offset)
            .with_context(|| format!("read {}", path.display()))?;
        if libdeflater::crc32(buf) != source.crc {
            return Err(self.damaged(source.pack, id));
        }
        Ok(())
    }

    /// The error of a damaged entry of object `id` in the copied pack `pack`.
    fn damaged(&self, pack: u32, id: Oid) -> anyhow::Error {
        let idx = self.sources[pack as usize].0.with_extension("idx");
        anyhow::Error::new(DamagedEntry { idx, id })
    }

    /// The object `entry` (whole) holds, checked against its id `id`.
    fn inflate(&self, id: Oid, source: Source, entry: &[u8]) -> Result<Vec<u8>> {
        match inflate_entry(entry) {
            Ok((code, data))
                if Kind::from_code(code).is_some_and(|k| object_id(k, &data) == id) =>
            {
                Ok(data)
            }
            _ => Err(self.damaged(source.pack, id)),
        }
    }

    /// Append an entry as it is; its offset.
    fn append(&mut self, id: Oid, entry: &[u8]) -> Result<u64> {
        let at = self.out.offset();
        self.out.append(id, entry)?;
        if let Some(node) = self.node(&id) {
            node.at = at;
        }
        Ok(at)
    }

    /// Append an offset delta whose base now is at `base_at`: its header, the new distance,
    /// then its compressed delta as it was.
    fn append_delta(&mut self, id: Oid, entry: &[u8], base_at: u64) -> Result<u64> {
        let (_, _, used) = entry_header(entry)?;
        let data_at = used + ofs_len(&entry[used..]);
        let mut moved = entry[..used].to_vec();
        moved.extend(super::delta::ofs_encode(self.out.offset() - base_at));
        moved.extend_from_slice(&entry[data_at..]);
        self.append(id, &moved)
    }

    /// Append object `id` whole, as libgit2 reads it (a delta whose base is not copied).
    fn append_whole(&mut self, id: Oid) -> Result<u64> {
        let object = self.odb.read(id)?;
        let Some(kind) = Kind::of(object.kind()) else {
            bail!("cannot repack a {} object", object.kind());
        };
        let entry = self.z.entry(kind, object.data(), false)?;
        drop(object);
        self.append(id, &entry)
    }

    /// Append object `id` (whole in `entry`, read from `source`) as a delta of `base`, written
    /// at `base_at`, when that is much smaller; otherwise `entry` as it is. An entry (or a
    /// base's) that does not inflate to its object is damage: the copy stops.
    fn append_new_delta(
        &mut self,
        id: Oid,
        source: Source,
        entry: &[u8],
        base: Oid,
        base_at: u64,
    ) -> Result<u64> {
        let data = self.inflate(id, source, entry)?;
        // The base as its entry in the new pack reads (copied from the old one byte for byte);
        // most often the object written just before.
        let base_data = match self.last.take() {
            Some((last, data)) if last == base => data,
            _ => {
                let whole = match self.node(&base).and_then(|b| b.source()) {
                    Some(source) => {
                        let mut base_entry = Vec::new();
                        self.read(base, source, &mut base_entry)?;
                        Some(self.inflate(base, source, &base_entry)?)
                    }
                    // A base stored as a delta: libgit2 follows its chain in the old packs.
                    None => self.odb.read(base).ok().map(|o| o.data().to_vec()),
                };
                match whole {
                    Some(data) => data,
                    None => return self.append(id, entry),
                }
            }
        };
        let delta = encode(&base_data, &data);
        self.last = Some((id, data));
        let distance = self.out.offset() - base_at;
        let delta_entry = self.z.delta_entry(distance, &delta)?;
        if delta_entry.len() as f64 > entry.len() as f64 * DELTA_AT_MOST {
            return self.append(id, entry);
        }
        self.deltified += 1;
        self.append(id, &delta_entry)
    }
}

/// The nodes of a plan, sorted by id, and the new deltas' places among them in the plan's order.
fn nodes_of(plan: Vec<(Oid, Oid)>) -> (Vec<(Oid, Node)>, Vec<u32>) {
    let unknown = Node {
        base: UNKNOWN,
        source: Source {
            pack: UNKNOWN,
            len: 0,
            offset: 0,
            crc: 0,
        },
        at: NOWHERE,
    };
    let mut ids: Vec<Oid> = Vec::with_capacity(plan.len() * 2);
    ids.extend(plan.iter().flat_map(|&(id, base)| [id, base]));
    ids.sort_unstable();
    ids.dedup();
    let mut nodes: Vec<(Oid, Node)> = ids.into_iter().map(|id| (id, unknown)).collect();
    let place = |nodes: &[(Oid, Node)], id: &Oid| {
        nodes
            .binary_search_by_key(id, |n| n.0)
            .expect("every id is a node") as u32
    };
    let mut order = Vec::with_capacity(plan.len());
    for (id, base) in plan {
        let (i, b) = (place(&nodes, &id), place(&nodes, &base));
        nodes[i as usize].1.base = b;
        order.push(i);
    }
    (nodes, order)
}

/// The ids some object lists give, each in ascending order.
pub(super) type Ids<'a> = Box<dyn Iterator<Item = Result<Oid>> + 'a>;

/// The objects that more than one of `lists` (each sorted by id: pack indexes) holds, read
/// side by side.
pub(super) fn in_several(lists: Vec<Ids<'_>>) -> Result<HashSet<Oid>> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut lists = lists;
    let mut heads = BinaryHeap::new();
    for (i, list) in lists.iter_mut().enumerate() {
        if let Some(id) = list.next() {
            heads.push(Reverse((id?, i)));
        }
    }
    let mut shared = HashSet::new();
    let mut last: Option<Oid> = None;
    while let Some(Reverse((id, i))) = heads.pop() {
        if last == Some(id) {
            shared.insert(id);
        }
        last = Some(id);
        if let Some(next) = lists[i].next() {
            heads.push(Reverse((next?, i)));
        }
    }
    Ok(shared)
}

/// [`Ids`] of a pack index held in memory.
pub(super) fn ids_of(index: &[(Oid, u64)]) -> Ids<'_> {
    Box::new(index.iter().map(|e| Ok(e.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_in_several_indexes_are_found() {
        let id = |n: u8| Oid::from_bytes(&[n; 20]).unwrap();
        let a = [(id(1), 0), (id(3), 0), (id(5), 0)];
        let b = [(id(2), 0), (id(3), 0)];
        let c = [(id(5), 0), (id(6), 0)];
        let empty: [(Oid, u64); 0] = [];
        let lists = [&a[..], &b, &empty, &c].map(ids_of).into();
        assert_eq!(in_several(lists).unwrap(), HashSet::from([id(3), id(5)]));
        assert!(in_several(vec![ids_of(&a)]).unwrap().is_empty());
    }
}
