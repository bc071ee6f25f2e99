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
//!
//! Here: the reader and what it keeps of each pack; looking an id up in a pack's index is in
//! `index`, reading and inflating a pack's entries in `entry`.

mod entry;
mod index;

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result, bail};
use git2::Oid;

use super::delta::ofs_base;
use super::pack::{IDX_IDS_AT, Kind, OFS_DELTA, object_id};
use super::scrub::Damage;

pub(super) use entry::{entry_header, inflate_entry};

const HEADER: u64 = IDX_IDS_AT as u64;
/// Trees bigger than this are left to libgit2 (a snapshot's trees hold a few hundred entries;
/// a damaged header must not ask for gigabytes).
const MAX_TREE: usize = 16 << 20;

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

#[cfg(test)]
mod tests;
