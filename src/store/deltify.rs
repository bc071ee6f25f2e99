//! Which objects a merge of packs stores as deltas: every run writes the chunks and folders it
//! changed whole (so that a snapshot is written fast and the newest one reads fast), and the
//! versions they replace stay whole in older packs. Once a version and the one that replaced
//! it are in packs merged together, the old one becomes a delta of the new one — a few dozen
//! bytes for a folder with one changed entry, about a row for a chunk with one changed row —
//! and the repository grows by what changed rather than by the files that hold it.
//!
//! Old versions are deltas of newer ones (as git's own repacking prefers): the newest snapshot
//! stays whole, and history pruned away takes only deltas with it. Pairs come from comparing
//! each snapshot with the one before, path by path, for the snapshots whose folders the merged
//! packs hold.
//!
//! A folder becomes a delta only once every version under it found the version that replaced
//! it in the packs merged; a later merge then takes an old folder stored as a delta as compared
//! and skips it, so a merge compares only what changed since, and reads no folder through a
//! delta but where a comparison was left incomplete (a version replaced by one in a pack not
//! merged yet, typically the first snapshot's).
//!
//! No cycle can form: in the new pack every delta comes after its base (an offset delta points
//! back), and an object whose base is not written yet when its turn comes is stored whole.
//! Pairs are chosen so that chains run from old versions to newer ones: an object is a delta of
//! what replaced it the last time it was replaced (that one may be a delta already), and stays
//! whole when it came back (at any path compared) at or after that time. Chains stay at most
//! [`MAX_DEPTH`] long, counting the deltas the packs held.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};
use git2::{ObjectType, Oid, Repository};

use super::delta::ofs_base;
use super::pack::{OFS_DELTA, read_index};
use super::packread::{PackReader, entry_header, read_some_at};
use super::previous::parse_tree;

/// The longest chain of deltas a merge makes (git's `pack.depth` default).
const MAX_DEPTH: u32 = 50;

/// (object, base) pairs to store as deltas, each base before the objects that are deltas of it.
/// `packs`: the `.idx` paths of the packs merged.
pub(super) fn plan(repo: &Repository, packs: &[&Path]) -> Result<Vec<(Oid, Oid)>> {
    // The objects of the packs merged (a chance match only costs a pair that the copy then
    // finds no entry for).
    let mut merged = Prefixes::default();
    let mut chains = Chains::default();
    for idx in packs {
        let index = read_index(idx)?;
        merged.0.extend(index.iter().map(|(id, _)| prefix(id)));
        chains.read(idx, index)?;
    }
    merged.seal();
    chains.deltas.seal();
    // A handle of its own: what libgit2 caches while reading folders goes with it.
    let repo = super::open_git_dir(repo.path())?;
    let mut pairs = Pairs {
        repo: &repo,
        reader: PackReader::open(&repo.path().join("objects")),
        merged,
        chains: &chains,
        found: Vec::new(),
    };
    pairs.compare_snapshots()?;
    let Pairs {
        found: mut chosen,
        reader,
        ..
    } = pairs;
    drop(repo);
    // The last time each object replaced another (sorted by object).
    let mut added: Vec<(Oid, u32)> = chosen.iter().map(|&(_, new, time)| (new, time)).collect();
    added.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    added.dedup_by_key(|a| a.0);
    // The last time each object was replaced, and by what; left whole if it came back then
    // or later (time 0: it is in the newest snapshot).
    chosen.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.2.cmp(&a.2)));
    chosen.dedup_by_key(|c| c.0);
    chosen.retain(|&(id, _, time)| {
        let came_back = added.binary_search_by_key(&id, |a| a.0).map(|i| added[i].1);
        time > 0 && came_back.ok().is_none_or(|back| back < time)
    });
    drop(added);
    chosen.shrink_to_fit();
    // A base stored as a delta already: its chain counts too (read from its pack).
    let existing_depth = |id: &Oid| -> u32 {
        if !chains.is_delta(id) {
            return 0;
        }
        reader.chain_depth(*id).ok().flatten().unwrap_or(MAX_DEPTH)
    };
    let kept = bounded_chains(&chosen, &chains, &existing_depth);
    let mut k = kept.iter();
    chosen.retain(|_| *k.next().expect("one flag a pair"));
    drop(kept);
    Ok(chain_order(chosen))
}

/// Which of `chosen` (object, base, time; sorted by object) to keep so that no chain passes
/// [`MAX_DEPTH`]: bases first (along a chain the times grow), each delta one deeper than its
/// base.
fn bounded_chains(
    chosen: &[(Oid, Oid, u32)],
    chains: &Chains,
    existing_depth: &dyn Fn(&Oid) -> u32,
) -> Vec<bool> {
    let mut by_time: Vec<u32> = (0..chosen.len() as u32).collect();
    by_time.sort_unstable_by(|&a, &b| {
        let (a, b) = (&chosen[a as usize], &chosen[b as usize]);
        b.2.cmp(&a.2).then(a.0.cmp(&b.0))
    });
    let mut depth = vec![0u32; chosen.len()];
    let mut kept = vec![false; chosen.len()];
    for i in by_time {
        let (id, base, _) = chosen[i as usize];
        let base_depth = match chosen.binary_search_by_key(&base, |c| c.0) {
            Ok(b) if kept[b] => depth[b],
            _ => existing_depth(&base),
        };
        if base_depth + 1 + chains.height(&id) <= MAX_DEPTH {
            depth[i as usize] = base_depth + 1;
            kept[i as usize] = true;
        }
    }
    kept
}

/// The pairs (object, base, time; sorted by object) as (object, base), each chain in turn
/// from its whole base down: the object written before a delta is most often its base, whose
/// content the copy then has at hand.
fn chain_order(mut accepted: Vec<(Oid, Oid, u32)>) -> Vec<(Oid, Oid)> {
    let is_delta =
        |accepted: &[(Oid, Oid, u32)], id: &Oid| accepted.binary_search_by_key(id, |c| c.0).is_ok();
    let mut stack: Vec<Oid> = (accepted.iter())
        .map(|c| c.1)
        .filter(|base| !is_delta(&accepted, base))
        .collect();
    stack.sort_unstable();
    stack.dedup();
    accepted.sort_unstable_by_key(|c| c.1);
    let mut plan = Vec::with_capacity(accepted.len());
    while let Some(base) = stack.pop() {
        let from = accepted.partition_point(|c| c.1 < base);
        for &(id, _, _) in accepted[from..].iter().take_while(|c| c.1 == base) {
            plan.push((id, base));
            stack.push(id);
        }
    }
    plan
}

/// A set of objects by the first 8 bytes of their ids (8 bytes an object): filled, sealed,
/// then asked.
#[derive(Default)]
struct Prefixes(Vec<u64>);

impl Prefixes {
    fn seal(&mut self) {
        self.0.sort_unstable();
        self.0.dedup();
    }

    fn holds(&self, id: &Oid) -> bool {
        self.0.binary_search(&prefix(id)).is_ok()
    }
}

fn prefix(id: &Oid) -> u64 {
    u64::from_be_bytes(id.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// git's order of tree entries: by name, a folder's name as if it ended in `/`.
fn git_order(a: &(String, Oid, bool), b: &(String, Oid, bool)) -> Ordering {
    let (x, y) = (a.0.as_bytes(), b.0.as_bytes());
    let n = x.len().min(y.len());
    x[..n].cmp(&y[..n]).then_with(|| {
        let end = |name: &[u8], folder: bool| {
            name.get(n)
                .copied()
                .unwrap_or(if folder { b'/' } else { 0 })
        };
        end(x, a.2).cmp(&end(y, b.2))
    })
}

/// The deltas the packs hold already, by the first 8 bytes of ids (a chance match only leaves
/// an object whole or its chain shorter).
#[derive(Default)]
struct Chains {
    /// Objects stored as deltas, sorted.
    deltas: Prefixes,
    /// For objects some delta is based on: the longest chain of deltas above them.
    heights: HashMap<u64, u32>,
}

impl Chains {
    /// Add the deltas of pack `idx`, whose objects are `index`.
    fn read(&mut self, idx: &Path, mut index: Vec<(Oid, u64)>) -> Result<()> {
        let mut head = [0u8; 32];
        let path = idx.with_extension("pack");
        let file = File::open(&path).with_context(|| format!("open {}", path.display()))?;
        let by_offset = &mut index;
        by_offset.sort_unstable_by_key(|e| e.1);
        let mut edges = Vec::new(); // (delta's offset, base's offset)
        for &(id, at) in by_offset.iter() {
            let got = read_some_at(&file, &mut head, at)?;
            let (code, _, used) = entry_header(&head[..got])?;
            if code < 5 {
                continue;
            }
            self.deltas.0.push(prefix(&id));
            if code == OFS_DELTA
                && let Some(base) = ofs_base(at, &head[used..got])
            {
                edges.push((at, base));
            }
        }
        // A base comes before its deltas: from the last entry back, each delta's height is
        // final when it is reached.
        let mut above: HashMap<u64, u32> = HashMap::new();
        for &(at, base) in edges.iter().rev() {
            let h = above.get(&at).copied().unwrap_or(0) + 1;
            let slot = above.entry(base).or_insert(0);
            *slot = (*slot).max(h);
        }
        for (at, h) in above {
            if let Ok(i) = by_offset.binary_search_by_key(&at, |e| e.1) {
                let id = prefix(&by_offset[i].0);
                let slot = self.heights.entry(id).or_insert(0);
                *slot = (*slot).max(h);
            }
        }
        Ok(())
    }

    fn is_delta(&self, id: &Oid) -> bool {
        self.deltas.holds(id)
    }

    fn height(&self, id: &Oid) -> u32 {
        self.heights.get(&prefix(id)).copied().unwrap_or(0)
    }
}

/// What comparing the snapshots found.
struct Pairs<'a> {
    repo: &'a Repository,
    reader: PackReader,
    /// The objects of the packs merged.
    merged: Prefixes,
    chains: &'a Chains,
    /// (object, what replaced it, when), both stored whole; time 0: the object is in the
    /// newest snapshot.
    found: Vec<(Oid, Oid, u32)>,
}

impl Pairs<'_> {
    /// Compare each snapshot whose root folder the packs hold with the one before, oldest
    /// first (times are positions in the history).
    fn compare_snapshots(&mut self) -> Result<()> {
        let Ok(head) = self.repo.head().and_then(|h| h.peel_to_commit()) else {
            return Ok(());
        };
        let mut trees = vec![head.tree_id()];
        let mut commit = head;
        // A shallow history ends where the parent is missing.
        while let Ok(parent) = commit.parent(0) {
            trees.push(parent.tree_id());
            commit = parent;
        }
        trees.reverse();
        for (time, pair) in trees.windows(2).enumerate() {
            let (old, new) = (pair[0], pair[1]);
            self.compare(old, new, time as u32 + 1)?;
        }
        if !self.found.is_empty()
            && let Some(&newest) = trees.last()
        {
            self.found.sort_unstable_by_key(|f| f.0);
            self.keep_whole(newest)?;
        }
        Ok(())
    }

    /// Leave every object of folder `id` whole: the newest snapshot stays fast to read even
    /// where an old version came back in a snapshot the packs merged do not hold. (`found`
    /// is sorted by object.)
    fn keep_whole(&mut self, id: Oid) -> Result<()> {
        self.mark_newest(id);
        for (_, entry, folder) in self.entries(id)? {
            if folder {
                self.keep_whole(entry)?;
            } else {
                self.mark_newest(entry);
            }
        }
        Ok(())
    }

    fn mark_newest(&mut self, id: Oid) {
        let from = self.found.partition_point(|f| f.0 < id);
        for f in self.found[from..].iter_mut().take_while(|f| f.0 == id) {
            f.2 = 0;
        }
    }

    /// Compare folder `old` with folder `new`, which replaced it at `time`. Returns whether
    /// every version under it found the one that replaced it in the packs merged: only then
    /// may the folder become a delta, which later merges take as "compared" and skip (a
    /// version replaced by one in a pack merged later is paired then).
    fn compare(&mut self, old: Oid, new: Oid, time: u32) -> Result<bool> {
        if old == new || self.chains.is_delta(&old) {
            return Ok(true);
        }
        if !self.merged.holds(&old) || !self.merged.holds(&new) {
            return Ok(false);
        }
        let (before, after) = (self.entries(old)?, self.entries(new)?);
        let mut subfolders = Vec::new();
        let mut complete = true;
        // Both lists are in git's order: walk them side by side.
        let (mut i, mut j) = (0, 0);
        while i < before.len() && j < after.len() {
            let ((_, was, folder), (_, id, _)) = (&before[i], &after[j]);
            match git_order(&before[i], &after[j]) {
                Ordering::Less => i += 1,
                Ordering::Greater => j += 1,
                Ordering::Equal => {
                    if was != id && *folder {
                        subfolders.push((*was, *id));
                    } else if was != id && !self.chains.is_delta(was) {
                        if self.merged.holds(was) && self.merged.holds(id) {
                            self.replaced(*was, *id, time);
                        } else {
                            complete = false;
                        }
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        drop((before, after));
        for (old, new) in subfolders {
            complete &= self.compare(old, new, time)?;
        }
        if complete {
            self.replaced(old, new, time);
        }
        Ok(complete)
    }

    /// The entries of folder `id`: (name, id, whether it is a folder).
    fn entries(&self, id: Oid) -> Result<Vec<(String, Oid, bool)>> {
        if let Some(data) = self.reader.whole_tree(id)?
            && let Ok(entries) = parse_tree(&data)
        {
            return Ok(entries);
        }
        let tree = self.repo.find_tree(id)?;
        Ok(tree
            .iter()
            .map(|e| {
                let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
                (name, e.id(), e.kind() == Some(ObjectType::Tree))
            })
            .collect())
    }

    /// `old` (stored whole) was replaced by `new` at `time` (both in the packs merged; `new`
    /// may be a delta already, of a version that replaced it in turn).
    fn replaced(&mut self, old: Oid, new: Oid, time: u32) {
        self.found.push((old, new, time));
    }
}
