//! Geometric pack maintenance: every run writes one pack, so without it a repository snapshotted
//! every five minutes holds thousands of packs within weeks, and every object lookup (the
//! writer's, libgit2's, git's) searches each of them: runs slow down with the length of history
//! rather than with the change.
//!
//! Once there are more than [`MIN_PACKS`] packs, the smallest are merged so that the packs
//! left, ordered by size, each hold at least twice the one before (git's `repack --geometric=2`
//! rule): the count stays logarithmic in the repository's size, and each byte is copied a
//! logarithmic number of times over its life. Entries are copied byte for byte, as pruning does
//! (`copy`), and old versions whose successors the merged packs hold become deltas of them
//! (`deltify`); packs with a `.keep` file are left alone.
//!
//! Each run's commit is written loose (by libgit2), one file per run: once there are more than
//! [`MAX_LOOSE`] loose objects they are written into a pack of their own and the files
//! deleted, so that a repository that is never pruned does not gather a file per snapshot
//! forever, and the daily scrub, which checks pack entries, checks the commits too.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::Store;
use super::copy::{Ids, PackCopy, in_several};
use super::deltify;
use super::garbage::{loose_objects, remove_pack};
use super::pack::{Compressor, Kind, PackWriter, index_ids, read_index};

/// Below this many packs nothing is merged (most runs then do nothing at all).
const MIN_PACKS: usize = 16;

/// Loose objects are packed once there are more than this many (git's `gc --auto` waits for
/// 6,700; a few hundred files cost nothing, tens of thousands slow every directory scan).
const MAX_LOOSE: usize = 256;

/// The packs merged plus the loose objects packed (0: nothing was done).
pub fn maintain(store: &Store) -> Result<usize> {
    // Each goes ahead when the other fails (an unreadable loose object must not stop packs
    // from being merged).
    let packed = pack_loose(store).context("pack loose objects");
    let merged = merge_small_packs(store);
    Ok(packed? + merged?)
}

/// Write the loose commits, trees and blobs into one new pack, then delete their files, once
/// there are more than [`MAX_LOOSE`] of them. Returns how many were packed.
fn pack_loose(store: &Store) -> Result<usize> {
    let objects = store.objects_dir();
    let loose = loose_objects(&objects)?;
    if loose.len() <= MAX_LOOSE {
        return Ok(0);
    }
    let odb = store.repo.odb()?;
    let mut out = PackWriter::new(&objects)?;
    let mut z = Compressor::default();
    let mut packed = Vec::with_capacity(loose.len());
    let written = loose.iter().try_for_each(|(id, path)| -> Result<()> {
        // libgit2 checks the object against its id as it reads it.
        let object = odb
            .read(*id)
            .with_context(|| format!("read loose object {id}"))?;
        let Some(kind) = Kind::of(object.kind()) else {
            return Ok(()); // a tag someone made here stays loose
        };
        out.append(*id, &z.entry(kind, object.data(), false)?)?;
        packed.push(path);
        Ok(())
    });
    if let Err(e) = written {
        out.discard();
        return Err(e);
    }
    // The pack is synced and in place before any file goes: a reader finds every object in
    // one place or the other.
    out.finish()?;
    for path in &packed {
        std::fs::remove_file(path).with_context(|| format!("remove {}", path.display()))?;
        if let Some(dir) = path.parent() {
            let _ = std::fs::remove_dir(dir); // only once empty
        }
    }
    Ok(packed.len())
}

/// Merge the smallest packs geometrically; the packs merged (0: none).
fn merge_small_packs(store: &Store) -> Result<usize> {
    let pack_dir = store.objects_dir().join("pack");
    let mut packs: Vec<(PathBuf, u64)> = Vec::new();
    for entry in std::fs::read_dir(&pack_dir)?.flatten() {
        let idx = entry.path();
        if idx.extension().is_some_and(|e| e == "idx")
            && !idx.with_extension("keep").exists()
            && let Ok(meta) = std::fs::metadata(idx.with_extension("pack"))
        {
            packs.push((idx, meta.len()));
        }
    }
    if packs.len() <= MIN_PACKS {
        return Ok(0);
    }
    let sizes: Vec<u64> = {
        packs.sort_by_key(|&(_, size)| size);
        packs.iter().map(|&(_, size)| size).collect()
    };
    let merge = geometric_split(&sizes);
    if merge < 2 {
        return Ok(0);
    }
    let merged: Vec<&Path> = packs[..merge]
        .iter()
        .map(|(idx, _)| idx.as_path())
        .collect();
    merge_packs(store, &merged)?;
    Ok(merge)
}

/// How many of the smallest packs (sizes ascending) to merge so that the rest, with the merged
/// one, each hold at least twice the one before.
fn geometric_split(sizes: &[u64]) -> usize {
    // From the largest down, the packs that already form the progression.
    let mut split = sizes.len();
    while split > 1 && sizes[split - 1] >= 2 * sizes[split - 2] {
        split -= 1;
    }
    if split == 1 {
        // The smallest pack is half the next or less: nothing to merge.
        return 0;
    }
    // Merging the first `split` packs makes one of their total size, which must itself be at
    // most half the next: take the next ones in while it is not.
    let mut total: u64 = sizes[..split].iter().sum();
    while split < sizes.len() && sizes[split] < 2 * total {
        total += sizes[split];
        split += 1;
    }
    split
}

/// Copy every entry of `packs` (their `.idx` paths) into one new pack, old versions of what
/// the packs hold newer versions of as deltas (see `deltify`), then delete them. Returns how
/// many objects became deltas.
fn merge_packs(store: &Store, packs: &[&Path]) -> Result<usize> {
    let objects = store.objects_dir();
    let mut lists: Vec<Ids> = Vec::with_capacity(packs.len());
    for idx in packs {
        lists.push(Box::new(index_ids(idx)?));
    }
    let shared = in_several(lists)?;
    let plan = deltify::plan(&store.repo, packs).context("find old versions")?;
    let mut out = PackCopy::new(&store.repo, &objects, plan, shared)?;
    for idx in packs {
        let copied = read_index(idx)
            .and_then(|index| out.pack(&idx.with_extension("pack"), index, &|_| true));
        if let Err(e) = copied {
            out.discard();
            return Err(e);
        }
        crate::failpoint::hit("merge-copying");
    }
    let deltified = out.deltified;
    let (_, name) = out.finish()?;
    crate::failpoint::hit("merge-written");
    let kept = name.map(|n| objects.join("pack").join(format!("{n}.idx")));
    for idx in packs {
        if Some(*idx) != kept.as_deref() {
            remove_pack(idx)?;
            crate::failpoint::hit("merge-removing");
        }
    }
    Ok(deltified)
}

#[cfg(test)]
mod tests {
    use super::geometric_split;

    #[test]
    fn the_smallest_packs_merge_until_each_is_twice_the_one_before() {
        // Already a progression: nothing.
        assert_eq!(geometric_split(&[1, 2, 4, 8, 100]), 0);
        // Two equal small packs merge into one (2), which is then at most half of 100.
        assert_eq!(geometric_split(&[10, 10, 100]), 2);
        // The merged 20 is not half of 20: that one joins, and 40 is under half of 100.
        assert_eq!(geometric_split(&[10, 10, 20, 100]), 3);
        // Everything about the same size: all merge.
        assert_eq!(geometric_split(&[5, 5, 5, 5, 5]), 5);
        // A big first snapshot and many small runs: the small ones merge, the big one stays.
        let mut sizes = vec![1; 20];
        sizes.push(1000);
        assert_eq!(geometric_split(&sizes), 20);
    }
}
