//! Looking an object up in one pack's index (version 2): the table of id prefixes and offsets
//! kept in memory, read at the first lookup that reaches the pack, and the search in it.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result, bail};
use git2::Oid;

use super::super::pack::{IDX_V2_MAGIC, idx_offset};
use super::{HEADER, Pack, Table};

impl Pack {
    pub(super) fn open(idx_path: &Path) -> Result<Pack> {
        let idx = File::open(idx_path)?;
        let pack = File::open(idx_path.with_extension("pack"))?;
        let mut header = vec![0u8; HEADER as usize];
        idx.read_exact_at(&mut header, 0)?;
        if header[..8] != *IDX_V2_MAGIC {
            return Err(crate::store::reindex::old_index(idx_path));
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
    pub(super) fn first_candidate(&self, oid: Oid) -> Result<Option<u64>> {
        let id = oid.as_bytes();
        let prefix = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
        let prefixes = &self.table()?.prefixes;
        let at = lower_bound(prefixes, prefix);
        Ok((prefixes.get(at) == Some(&prefix)).then_some(at as u64))
    }

    /// The position of `oid` in the index: among the candidates, the one whose whole id it is
    /// (None for an excluded one).
    pub(super) fn find(&self, oid: Oid) -> Result<Option<u64>> {
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
    pub(super) fn offset(&self, at: u64) -> Result<u64> {
        let n = self.count;
        if at >= n {
            bail!("pack index position {at} out of range");
        }
        let small = self.table()?.offsets[at as usize];
        let offset = idx_offset(&self.idx, n, small).context("read pack index")?;
        Ok(offset)
    }
}

/// The first position in `prefixes` (sorted) whose value is `prefix` or more. Object ids are
/// uniformly distributed, so the position is guessed from the value and the search widens from
/// there: a few neighbouring cache lines instead of ~20 scattered reads of a binary search, for
/// every pack a lookup passes through.
pub(super) fn lower_bound(prefixes: &[u32], prefix: u32) -> usize {
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
