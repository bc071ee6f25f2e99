//! Copying the entries of old packs into one new pack: what pruning keeps of mostly dead packs,
//! and what merging packs (`repack`) combines. Entries are copied byte for byte, one at a time
//! (memory bounded by an entry), deltas included when their base comes along: their offset is
//! rewritten, the compressed delta copied. A delta whose base does not come along is stored
//! whole.
//!
//! A merge also stores old versions as new deltas of their successors (the plan of `deltify`):
//! those, and the deltas of theirs the old packs held, are written after everything else, so
//! that each base comes before its deltas, as an offset delta needs.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use git2::{Odb, Oid, Repository};

use super::delta::{encode, ofs_distance, ofs_len};
use super::pack::{Compressor, Kind, OFS_DELTA, PackWriter};
use super::packread::{entry_header, inflate_entry};

/// A new delta is kept only when its entry is at most this fraction of the whole entry.
const DELTA_AT_MOST: f64 = 0.5;

/// Where an entry is in one of the packs copied.
#[derive(Clone, Copy)]
struct Source {
    pack: u32,
    len: u32,
    offset: u64,
}

/// What became of a source entry: written at an offset of the new pack, left for the end, or
/// not copied.
#[derive(Clone, Copy, PartialEq)]
enum Copied {
    Not,
    At(u64),
    Later,
}

/// A base of the plan: its whole entry in the packs copied, and its offset in the new pack.
#[derive(Default)]
struct Base {
    source: Option<Source>,
    at: Option<u64>,
}

/// See the module doc.
pub(super) struct PackCopy<'r> {
    odb: Odb<'r>,
    out: PackWriter,
    z: Compressor,
    copied: HashSet<Oid>,
    /// New deltas: (object, base), each base before its deltas.
    plan: Vec<(Oid, Oid)>,
    /// The objects of the plan → their place in it.
    rank: HashMap<Oid, u32>,
    /// Where each object of the plan is stored whole in the packs copied, by its place.
    planned: Vec<Option<Source>>,
    bases: HashMap<Oid, Base>,
    /// Deltas of objects left for the end: (id, entry, base), in their packs' order.
    later: Vec<(Oid, Source, Oid)>,
    /// Where objects written at the end went, for the deltas in `later` based on them.
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
    /// pairs to store as new deltas, each base before the objects that are deltas of it.
    pub fn new(repo: &'r Repository, objects: &Path, plan: Vec<(Oid, Oid)>) -> Result<Self> {
        Ok(PackCopy {
            odb: repo.odb()?,
            out: PackWriter::new(objects)?,
            z: Compressor::default(),
            copied: HashSet::new(),
            rank: (plan.iter().enumerate())
                .map(|(i, &(id, _))| (id, i as u32))
                .collect(),
            planned: vec![None; plan.len()],
            bases: (plan.iter())
                .map(|&(_, base)| (base, Base::default()))
                .collect(),
            plan,
            later: Vec::new(),
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
        index: &[(Oid, u64)],
        keep: &dyn Fn(&Oid) -> bool,
    ) -> Result<()> {
        let file =
            File::open(pack_path).with_context(|| format!("open {}", pack_path.display()))?;
        let end = file.metadata()?.len().saturating_sub(20);
        let pack = self.sources.len() as u32;
        self.sources
            .push((pack_path.to_path_buf(), file.try_clone()?));
        let mut by_offset: Vec<(u64, Oid)> = index.iter().map(|&(id, off)| (off, id)).collect();
        by_offset.sort();
        let mut fate = vec![Copied::Not; by_offset.len()];
        let mut buf = Vec::new();
        for (i, &(offset, id)) in by_offset.iter().enumerate() {
            if !keep(&id) || !self.copied.insert(id) {
                continue;
            }
            let next = by_offset.get(i + 1).map(|&(o, _)| o).unwrap_or(end);
            if next <= offset {
                bail!("{}: damaged pack index", pack_path.display());
            }
            let source = Source {
                pack,
                len: u32::try_from(next - offset).context("pack entry too big")?,
                offset,
            };
            buf.resize(source.len as usize, 0);
            file.read_exact_at(&mut buf, offset)
                .with_context(|| format!("read {}", pack_path.display()))?;
            let (code, _, used) = entry_header(&buf)?;
            if (1..=4).contains(&code)
                && let Some(base) = self.bases.get_mut(&id)
            {
                base.source = Some(source);
            }
            fate[i] = match code {
                1..=4 if self.rank.contains_key(&id) => {
                    self.planned[self.rank[&id] as usize] = Some(source);
                    Copied::Later
                }
                1..=4 => Copied::At(self.append(id, &buf)?),
                OFS_DELTA => {
                    let base = ofs_distance(&buf[used..])
                        .and_then(|back| offset.checked_sub(back))
                        .and_then(|at| by_offset.binary_search_by_key(&at, |e| e.0).ok());
                    match base.map(|b| (fate[b], by_offset[b].1)) {
                        Some((Copied::At(base_at), _)) => {
                            Copied::At(self.append_delta(id, &buf, base_at)?)
                        }
                        Some((Copied::Later, base)) => {
                            self.later.push((id, source, base));
                            Copied::Later
                        }
                        _ => Copied::At(self.append_whole(id)?),
                    }
                }
                _ => Copied::At(self.append_whole(id)?),
            };
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

    /// Whether object `id` was copied already.
    pub fn holds(&self, id: &Oid) -> bool {
        self.copied.contains(id)
    }

    /// Add object `id` of `kind` (whole, `data`), unless it was copied already.
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

    fn write_later(&mut self) -> Result<()> {
        let later_bases: HashSet<Oid> = self.later.iter().map(|&(_, _, base)| base).collect();
        let mut buf = Vec::new();
        for i in 0..self.plan.len() {
            let Some(source) = self.planned[i] else {
                continue; // in none of the packs copied
            };
            let (id, base) = self.plan[i];
            self.read(source, &mut buf)?;
            let at = match self.bases.get(&base).and_then(|b| b.at) {
                Some(base_at) => self.append_new_delta(id, &buf, base, base_at)?,
                None => self.append(id, &buf)?,
            };
            if later_bases.contains(&id) {
                self.written.insert(id, at);
            }
        }
        for (id, source, base) in std::mem::take(&mut self.later) {
            self.read(source, &mut buf)?;
            let at = match self.written.get(&base) {
                Some(&base_at) => self.append_delta(id, &buf, base_at)?,
                None => self.append_whole(id)?,
            };
            self.written.insert(id, at);
        }
        Ok(())
    }

    fn read(&self, source: Source, buf: &mut Vec<u8>) -> Result<()> {
        let (path, file) = &self.sources[source.pack as usize];
        buf.resize(source.len as usize, 0);
        file.read_exact_at(buf, source.offset)
            .with_context(|| format!("read {}", path.display()))
    }

    /// Append an entry as it is; its offset.
    fn append(&mut self, id: Oid, entry: &[u8]) -> Result<u64> {
        let at = self.out.offset();
        self.out.append(id, entry)?;
        if let Some(base) = self.bases.get_mut(&id) {
            base.at = Some(at);
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

    /// Append object `id` (whole in `entry`) as a delta of `base`, written at `base_at`, when
    /// that is much smaller; otherwise `entry` as it is.
    fn append_new_delta(&mut self, id: Oid, entry: &[u8], base: Oid, base_at: u64) -> Result<u64> {
        let (_, data) = inflate_entry(entry).with_context(|| format!("read {id}"))?;
        // The base as its entry in the new pack reads (copied from the old one byte for byte);
        // most often the object written just before.
        let base_data = match self.last.take() {
            Some((last, data)) if last == base => data,
            _ => {
                let Some(source) = self.bases.get(&base).and_then(|b| b.source) else {
                    return self.append(id, entry);
                };
                let mut base_entry = Vec::new();
                self.read(source, &mut base_entry)?;
                inflate_entry(&base_entry)
                    .with_context(|| format!("read {base}"))?
                    .1
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
