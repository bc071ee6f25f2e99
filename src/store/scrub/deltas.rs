//! Deltas whose own bytes are intact but whose base entry was damaged (packs written by `git gc`
//! or a fetch hold deltas; sqlgit's own do not). git cannot build them from their pack any more,
//! yet they are not lost: once the run has stored a fresh copy of the base, each is rebuilt here
//! — its delta applied to the fresh base, or to another such rebuilt delta — and stored whole.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use git2::Oid;

use crate::store::delta::{apply, ofs_base, ofs_len};
use crate::store::pack::{Kind, read_index};
use crate::store::packread::PackReader;
use crate::store::packread::entry_header;

/// A pack read for rebuilding: its entries by id and by offset.
pub struct DeltaPack {
    file: File,
    /// (offset, id), by offset; an entry ends where the next begins.
    by_offset: Vec<(u64, Oid)>,
    offsets: HashMap<Oid, u64>,
    end: u64,
}

impl DeltaPack {
    pub fn open(idx: &Path) -> Result<DeltaPack> {
        let index = read_index(idx)?;
        let file = File::open(idx.with_extension("pack")).context("open pack")?;
        let end = file.metadata()?.len().saturating_sub(20);
        let mut by_offset: Vec<(u64, Oid)> = index.iter().map(|&(id, at)| (at, id)).collect();
        by_offset.sort();
        let offsets = index.into_iter().collect();
        Ok(DeltaPack {
            file,
            by_offset,
            offsets,
            end,
        })
    }

    /// Object `id` of this pack, whole: read from its entry, its delta chain followed down to
    /// an intact whole entry, or to a base that `fresh` (the packs without the damaged entries)
    /// holds whole. `damaged`: entries whose own bytes cannot be trusted.
    pub fn rebuild(
        &self,
        id: Oid,
        damaged: &dyn Fn(Oid) -> bool,
        fresh: &PackReader,
    ) -> Result<(Kind, Vec<u8>)> {
        // The chain, newest first, down to what can be read whole.
        let mut chain: Vec<Vec<u8>> = Vec::new();
        let mut at = id;
        let (kind, mut data) = loop {
            if chain.len() > 10_000 {
                bail!("delta chain too long");
            }
            if damaged(at) {
                break whole_from(fresh, at)?;
            }
            let offset = *self.offsets.get(&at).context("not in the pack")?;
            match self.entry(offset)? {
                Entry::Whole(kind, data) => break (kind, data),
                Entry::Delta(base, delta) => {
                    chain.push(delta);
                    at = base;
                }
            }
        };
        for delta in chain.iter().rev() {
            data = apply(&data, delta)?;
        }
        Ok((kind, data))
    }

    fn entry(&self, offset: u64) -> Result<Entry> {
        let next = match self.by_offset.binary_search_by_key(&offset, |e| e.0) {
            Ok(i) => self.by_offset.get(i + 1).map_or(self.end, |e| e.0),
            Err(_) => bail!("no entry at offset {offset}"),
        };
        let mut raw = vec![0u8; next.checked_sub(offset).context("bad offsets")? as usize];
        self.file
            .read_exact_at(&mut raw, offset)
            .context("read pack")?;
        let (kind, size, used) = entry_header(&raw)?;
        let (base, data_at) = match kind {
            6 => {
                let base_at = ofs_base(offset, &raw[used..]).context("bad delta offset")?;
                let len = ofs_len(&raw[used..]);
                let i = self
                    .by_offset
                    .binary_search_by_key(&base_at, |e| e.0)
                    .ok()
                    .context("delta base not in the pack")?;
                (Some(self.by_offset[i].1), used + len)
            }
            7 => {
                let id = raw.get(used..used + 20).context("short entry")?;
                (Some(Oid::from_bytes(id)?), used + 20)
            }
            _ => (None, used),
        };
        let mut data = Vec::with_capacity(size as usize);
        flate2::read::ZlibDecoder::new(&raw[data_at..])
            .read_to_end(&mut data)
            .context("inflate")?;
        if data.len() as u64 != size {
            bail!("entry size does not match");
        }
        Ok(match base {
            Some(base) => Entry::Delta(base, data),
            None => Entry::Whole(kind_of(kind)?, data),
        })
    }
}

enum Entry {
    Whole(Kind, Vec<u8>),
    /// The base's id and the delta.
    Delta(Oid, Vec<u8>),
}

fn kind_of(code: u8) -> Result<Kind> {
    Ok(match code {
        1 => Kind::Commit,
        2 => Kind::Tree,
        3 => Kind::Blob,
        other => bail!("cannot rebuild a pack object of type {other}"),
    })
}

/// A damaged base, as the run stored it again (whole, in a pack of its own).
fn whole_from(fresh: &PackReader, id: Oid) -> Result<(Kind, Vec<u8>)> {
    if let Some(data) = fresh.whole_blob(id)? {
        return Ok((Kind::Blob, data));
    }
    if let Some(data) = fresh.whole_tree(id)? {
        return Ok((Kind::Tree, data));
    }
    bail!("its base {id} was damaged and not stored again")
}
